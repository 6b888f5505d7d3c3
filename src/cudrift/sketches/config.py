"""Profile settings and column-kind overrides."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from cudrift.errors import IncompatibleSketchError, SchemaError
from cudrift.sketches.quantiles import _MAX_K

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
KINDS = (NUMERICAL, CATEGORICAL)


@dataclass(frozen=True)
class ProfileConfig:
    """Settings of every sketch in a profile.

    Attributes
    ----------
    n_bins
        Histogram bins per numeric column, equal-mass on the reference
        (fewer when the reference has fewer distinct values, and at most
        ``quantile_k``: the edges come from the quantile summary), plus an
        underflow and an overflow bin.
    quantile_k
        Entries kept per quantile summary; the normalized rank error is at
        most ``(levels + 1) / (2 * quantile_k)`` (≤ 0.5% for the default 2048
        and up to 2**19 batches or merges) and is tracked exactly.
    sample_size
        Points kept per numeric column by the deterministic bottom-k sample.
    max_categories
        Distinct categories counted exactly per column; the tail goes to a
        deterministic heavy-hitters summary that records what it folded.
    categorical_max_distinct
        An integer column whose reference has at most this many distinct
        values is profiled as categorical.
    batch_rows
        Rows per record batch when reading Parquet. It says how data is
        read: it is no merge key (a merge keeps the smaller of the two), and
        ``profile(data, like=ref, config=...)`` reads with the ``config``'s.
        Each batch is one more summary merged into the quantile sketch, so
        smaller batches give a larger (tracked) rank error and, for a
        reference, slightly different equal-mass edges.
    seed
        Seed of the sample's hash priorities.
    """

    n_bins: int = 100
    quantile_k: int = 2048
    sample_size: int = 10_000
    max_categories: int = 10_000
    categorical_max_distinct: int = 20
    batch_rows: int = 1 << 20
    seed: int = 0

    #: Settings that change what a sketch holds, or how a reference fixed its edges and column kinds (which
    #: its windows share); profiles merge only when they are equal.
    MERGE_KEYS = ("n_bins", "quantile_k", "sample_size", "max_categories", "categorical_max_distinct", "seed")

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.integer):  # (as the sketches take them)
                v = int(v)
                object.__setattr__(self, f.name, v)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"Invalid value for {f.name}: {v!r} (expected an integer)")
            if f.name != "seed" and v < (1 if f.name != "categorical_max_distinct" else 0):
                raise ValueError(f"Invalid value for {f.name}: {v!r}")
        # checked here as the sketches check them, so that a bad setting is named as the user spelled it
        # (and never saved with a profile whose later windows would then fail)
        for name, cap in (("n_bins", _MAX_K), ("batch_rows", 2**31 - 1)):  # (more bins than the edges could hold)
            if getattr(self, name) > cap:
                raise ValueError(f"Invalid value for {name}: {getattr(self, name)!r} (expected an integer in "
                                 f"[1, {cap}])")
        if not 2 <= self.quantile_k <= _MAX_K:
            raise ValueError(f"Invalid value for quantile_k: {self.quantile_k!r} "
                             f"(expected an integer in [2, {_MAX_K}])")
        if self.sample_size >= 2**63:  # (no array holds as many: Sample.empty refuses it)
            raise ValueError(f"Invalid value for sample_size: {self.sample_size!r} (expected an integer in [1, 2**63))")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"Invalid value for seed: {self.seed!r} (expected an integer in [0, 2**64))")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProfileConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        try:
            return cls(**values)
        except ValueError:
            # a profile saved before quantile_k and seed were checked here (one of categorical columns only,
            # whose sketches never read them) keeps what it was saved with; other settings are checked as ever
            loose = cls(**{**values, "quantile_k": cls.quantile_k, "seed": cls.seed})
            kept = {k: values[k] for k in ("quantile_k", "seed") if k in values}
            return loose._unchecked(**{k: v for k, v in kept.items() if isinstance(v, int) and not isinstance(v, bool)})

    def with_batch_rows(self, batch_rows: int) -> "ProfileConfig":
        """These settings reading ``batch_rows`` rows per batch (checked as the constructor checks it; a loaded
        profile's unchecked settings kept)."""
        if batch_rows == self.batch_rows:
            return self
        if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
            raise ValueError(f"Invalid value for batch_rows: {batch_rows!r} (expected a positive integer)")
        return self._unchecked(batch_rows=batch_rows)

    def _unchecked(self, **values: int) -> "ProfileConfig":
        """A copy with ``values`` set past ``__post_init__``'s checks."""
        new = copy.copy(self)
        for k, v in values.items():
            object.__setattr__(new, k, v)
        return new

    def check_mergeable(self, other: "ProfileConfig") -> None:
        diff = [k for k in self.MERGE_KEYS if getattr(self, k) != getattr(other, k)]
        if diff:
            a = ", ".join(f"{k}={getattr(self, k)}" for k in diff)
            b = ", ".join(f"{k}={getattr(other, k)}" for k in diff)
            raise IncompatibleSketchError(f"cannot merge profiles with different settings: {a} vs {b}")


@dataclass(frozen=True)
class Schema:
    """Overrides of inferred column kinds.

    Parameters
    ----------
    numerical, categorical
        Columns forced to that kind.
    ignore
        Columns left out of profiles and reports.

    Examples
    --------
    >>> Schema(categorical=["zip_code"], ignore=["row_id"])
    Schema(numerical=(), categorical=('zip_code',), ignore=('row_id',))
    """

    numerical: tuple[str, ...] = field(default_factory=tuple)
    categorical: tuple[str, ...] = field(default_factory=tuple)
    ignore: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("numerical", "categorical", "ignore"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = (v,)
            if v is None or not isinstance(v, Iterable):
                raise TypeError(f"Schema({name}=...) takes column names (a list), got {type(v).__name__}")
            object.__setattr__(self, name, tuple(str(c) for c in v))
        both = sorted(set(self.numerical) & set(self.categorical))
        if both:
            raise SchemaError(f"columns {both} are listed as both numerical and categorical")

    def forced_kind(self, column: str) -> str | None:
        if column in self.numerical:
            return NUMERICAL
        if column in self.categorical:
            return CATEGORICAL
        return None
