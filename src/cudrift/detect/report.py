"""Result objects of a drift comparison: ``FeatureDrift``, ``Finding``, ``DriftReport``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cudrift.errors import FormatError

REPORT_FORMAT = "cudrift.report"
REPORT_VERSION = 1

#: ``FeatureDrift.status`` values.
STATUS_OK = "ok"
STATUS_NO_DATA = "no_data"
STATUS_MISSING = "missing"
STATUS_ERROR = "error"


@dataclass(frozen=True)
class FeatureDrift:
    """Drift verdict for one column.

    Attributes
    ----------
    column, kind
        Column name and ``"numerical"`` / ``"categorical"``.
    test
        Registry name of the test used (``"ks"``, ``"wasserstein_normalized"``...).
    statistic, pvalue
        The test's value; ``pvalue`` is ``None`` for distances.
    pvalue_adjusted
        The p-value after the multiple-testing correction (equal to
        ``pvalue`` without one).
    threshold
        p-value tests drift when the (adjusted) p-value is below it, distances
        when the statistic is at or above it.
    drifted
        The verdict.
    n_reference, n_current
        Non-null, finite values used.
    statistic_error
        Bound on the distance to the exact statistic (0 when exact).
    status, message
        ``"ok"``, ``"no_data"`` (nothing to test in the current window),
        ``"missing"`` (column absent) or ``"error"`` (see ``message``).
    """

    column: str
    kind: str
    test: str | None
    statistic: float | None
    pvalue: float | None
    threshold: float | None
    drifted: bool
    n_reference: int
    n_current: int
    pvalue_adjusted: float | None = None
    statistic_error: float = 0.0
    status: str = STATUS_OK
    message: str = ""


@dataclass(frozen=True)
class Finding:
    """A data-quality observation about one column (or the whole window when ``column`` is None).

    ``check`` is one of ``missing_column``, ``extra_column``, ``dtype_change``,
    ``kind_mismatch``, ``null_share_change``, ``out_of_range``,
    ``unseen_categories``, ``constant_column``, ``no_data``, ``nonfinite``,
    ``test_error``; ``value`` is the measured quantity (a share or a count).
    """

    check: str
    column: str | None
    message: str
    value: float | None = None
    reference_value: float | None = None


def _clean(x: Any) -> Any:
    """JSON has no NaN/inf: write them as strings that ``_unclean`` reads back."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _unfloat(x: Any) -> Any:
    return _SPECIAL.get(x, x) if isinstance(x, str) else x


@dataclass(frozen=True)
class DriftReport:
    """Outcome of :meth:`DriftDetector.compare`.

    Attributes
    ----------
    features
        One :class:`FeatureDrift` per reference column, in reference order.
    findings
        Data-quality :class:`Finding` objects.
    dataset_drift
        ``share_drifted >= drift_share`` (and at least one column tested).
    drift_share
        The share of drifted columns that makes the dataset drifted.
    share_drifted, n_drifted, n_tested
        Among the columns that could be tested.
    n_reference_rows, n_current_rows
        Rows in the two windows.
    correction
        Multiple-testing correction used (``None``, ``"bonferroni"``, ``"bh"``).
    exact
        True when every rank statistic was computed exactly from raw values.
    """

    features: tuple[FeatureDrift, ...]
    findings: tuple[Finding, ...]
    dataset_drift: bool
    drift_share: float
    share_drifted: float
    n_drifted: int
    n_tested: int
    n_reference_rows: int
    n_current_rows: int
    correction: str | None = None
    exact: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, column: str) -> FeatureDrift:
        for f in self.features:
            if f.column == column:
                return f
        raise KeyError(f"no column {column!r} in report; columns are {[f.column for f in self.features]}")

    @property
    def drifted_columns(self) -> list[str]:
        return [f.column for f in self.features if f.drifted]

    def findings_for(self, column: str | None) -> list[Finding]:
        return [f for f in self.findings if f.column == column]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = REPORT_FORMAT
        d["version"] = REPORT_VERSION
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(_clean(self.to_dict()), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DriftReport":
        if d.get("format") != REPORT_FORMAT:
            raise FormatError(f"not a cudrift report: format is {d.get('format')!r}")
        if not isinstance(d.get("version"), int) or d["version"] > REPORT_VERSION:
            raise FormatError(f"report version {d.get('version')!r} is not supported (reads up to {REPORT_VERSION})")
        try:
            feats = tuple(
                FeatureDrift(**{k: _unfloat(v) for k, v in f.items()}) for f in d["features"]
            )
            finds = tuple(Finding(**{k: _unfloat(v) for k, v in f.items()}) for f in d["findings"])
            rest = {k: _unfloat(v) for k, v in d.items() if k not in ("features", "findings", "format", "version")}
            return cls(features=feats, findings=finds, **rest)
        except (KeyError, TypeError) as exc:
            raise FormatError(f"malformed cudrift report: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> "DriftReport":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"report is not valid JSON: {exc}") from None
        return cls.from_dict(d)

    def summary_table(self) -> str:
        """The per-column table printed by ``cudrift compare`` and ``cudrift demo``."""
        head = ("column", "kind", "test", "statistic", "p-value", "threshold", "drifted")
        rows = []
        for f in self.features:
            stat = "-" if f.statistic is None else f"{f.statistic:.4g}"
            if f.statistic is not None and f.statistic_error:
                stat += f" ±{f.statistic_error:.2g}"
            p = "-" if f.pvalue is None else f"{f.pvalue:.3g}"
            if f.pvalue is not None and f.pvalue_adjusted is not None and f.pvalue_adjusted != f.pvalue:
                p += f" (adj {f.pvalue_adjusted:.3g})"
            thr = "-" if f.threshold is None else f"{f.threshold:g}"
            drifted = "YES" if f.drifted else ("no" if f.status == STATUS_OK else f.status.replace("_", " "))
            rows.append((f.column, {"numerical": "num", "categorical": "cat"}.get(f.kind, f.kind), f.test or "-", stat, p, thr, drifted))
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        out = [line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        verdict = "DRIFT" if self.dataset_drift else "no drift"
        out.append("")
        out.append(
            f"dataset: {verdict} — {self.n_drifted} of {self.n_tested} columns drifted "
            f"(share {self.share_drifted:.2f}, threshold {self.drift_share:g})"
        )
        return "\n".join(out)
