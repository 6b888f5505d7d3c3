"""Settings of the monitor model, kept in its ``config.pbtxt`` ``parameters``.

The repository writer turns :class:`MonitorSettings` into ``parameters``
entries and the model reads them back, so both sides share one list of keys,
types and defaults.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from cudrift.backends import BACKENDS
from cudrift.detect.policy import normalize_policy
from cudrift.stats import TESTS

__all__ = ["MonitorSettings", "PARAMETER_PREFIX"]

PARAMETER_PREFIX = "cudrift_"

#: How the monitor answers a request it refuses (:attr:`MonitorSettings.bad_requests`).
BAD_REQUEST_ANSWERS = ("error", "pass")


@dataclass(frozen=True)
class MonitorSettings:
    """What the monitor model needs besides its inputs.

    Attributes
    ----------
    reference
        Reference profile file, relative to the model directory (or absolute).
    monitored_model
        Value of the ``model`` label on every metric; empty: the monitor's
        own model name.
    window_rows, window_seconds
        A window closes after this many rows or seconds, whichever comes
        first (0 disables that limit; at least one must be > 0).
    sliding_windows
        Windows merged per comparison (1: tumbling windows).
    fold_rows
        Accepted rows buffered before they are profiled (by the worker
        thread, off the request path).
    max_backlog_rows
        Accepted rows not profiled yet above which requests wait for the
        worker (backpressure instead of unbounded memory); 0: no limit.
    checkpoint
        Checkpoint file, relative to the model directory (or absolute);
        empty: no checkpoint.
    checkpoint_seconds
        Seconds between periodic checkpoints; at most the rows accepted
        since the last checkpoint are lost by a crash.
    backend
        ``"auto"``, ``"cpu"`` or ``"gpu"``: where windows are profiled. A GPU
        instance tries the GPU and falls back to the CPU with a log line.
    policy
        Test policy of the :class:`~cudrift.DriftDetector`: a test name,
        ``"auto"``, or a dict of column → test (kept as JSON in the config).
    drift_share
        Share of drifted features that marks the whole window as drifted.
    predictions
        Reference columns fed by the served model's outputs.
    bad_requests
        ``"error"``: a refused request gets an error response (inside an
        ensemble the whole request fails, served outputs included).
        ``"pass"``: it is counted the same way, its rows are left out, and it
        is answered with a NaN drift share, so an ensemble still returns the
        served model's outputs. A request whose row count cannot be told
        still gets an error: one whose inputs disagree on it
        (``batch_mismatch``), or none of whose inputs is present.
    """

    reference: str = "reference.cdp"
    monitored_model: str = ""
    window_rows: int = 10_000
    window_seconds: float = 0.0
    sliding_windows: int = 1
    fold_rows: int = 4096
    max_backlog_rows: int = 262_144
    checkpoint: str = ""
    checkpoint_seconds: float = 30.0
    backend: str = "auto"
    policy: str | Mapping[str, str] = "auto"
    drift_share: float = 0.5
    predictions: tuple[str, ...] = ()
    bad_requests: str = "error"

    def __post_init__(self) -> None:
        for name in ("window_rows", "sliding_windows", "fold_rows", "max_backlog_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name in ("sliding_windows", "fold_rows") else 0):
                raise ValueError(f"Invalid value for {name}: {v!r}")
        for name in ("window_seconds", "checkpoint_seconds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"Invalid value for {name}: {v!r} (expected a number >= 0)")
        if self.window_rows == 0 and self.window_seconds == 0:
            raise ValueError("a window needs window_rows > 0 or window_seconds > 0 (both are 0)")
        if self.checkpoint and self.checkpoint_seconds <= 0:
            raise ValueError(f"Invalid value for checkpoint_seconds: {self.checkpoint_seconds!r} (expected > 0)")
        if self.bad_requests not in BAD_REQUEST_ANSWERS:
            raise ValueError(f"Invalid value for bad_requests: {self.bad_requests!r} "
                             f"(expected one of {BAD_REQUEST_ANSWERS})")
        if self.backend not in BACKENDS:
            raise ValueError(f"Invalid value for backend: {self.backend!r} (expected one of {BACKENDS})")
        # the detector's own check, so a misspelt test fails here (`cudrift triton repo`), not at model load
        normalize_policy(self.policy, TESTS)
        if isinstance(self.policy, Mapping):
            object.__setattr__(self, "policy", {str(k): v for k, v in self.policy.items()})
        if not (0 < self.drift_share <= 1):
            raise ValueError(f"Invalid value for drift_share: {self.drift_share!r} (expected a number in (0, 1])")
        object.__setattr__(self, "predictions", tuple(str(c) for c in self.predictions))

    def to_parameters(self) -> dict[str, str]:
        """``config.pbtxt`` parameters (every value a string, as Triton wants)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            # the containers as JSON, which from_parameters reads back (str() of a dict is Python's repr)
            if f.name == "predictions":
                v = json.dumps(list(v))
            elif isinstance(v, Mapping):
                v = json.dumps(dict(v))
            out[PARAMETER_PREFIX + f.name] = str(v)
        return out

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> "MonitorSettings":
        """Read the ``parameters`` of a model config (JSON form: ``{key: {"string_value": ...}}``).

        Unknown ``cudrift_`` keys raise, so that a misspelt setting is not
        silently ignored; missing ones take their defaults.
        """
        values: dict[str, str] = {}
        for key, v in parameters.items():
            if not key.startswith(PARAMETER_PREFIX):
                continue
            # JSON printers may leave out an empty string_value (proto3 default)
            values[key[len(PARAMETER_PREFIX):]] = v.get("string_value", "") if isinstance(v, Mapping) else str(v)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"unknown monitor parameters {[PARAMETER_PREFIX + k for k in unknown]}; "
                f"known: {[PARAMETER_PREFIX + k for k in known]}"
            )
        kwargs: dict[str, Any] = {}
        for name, text in values.items():
            default = known[name].default
            try:
                if name == "predictions":
                    kwargs[name] = tuple(json.loads(text)) if text.strip() else ()
                elif name == "policy" and text.lstrip().startswith("{"):
                    # a dict of column → test (a test's name never starts with "{")
                    kwargs[name] = json.loads(text)
                elif isinstance(default, int):
                    kwargs[name] = int(text)
                elif isinstance(default, float):
                    kwargs[name] = float(text)
                else:
                    kwargs[name] = text
            except (ValueError, TypeError, json.JSONDecodeError):
                raise ValueError(f"Invalid value for {PARAMETER_PREFIX}{name}: {text!r}") from None
        return cls(**kwargs)
