"""Result objects of a drift comparison: ``FeatureDrift``, ``Finding``, ``DriftReport``."""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from cudrift.errors import FormatError

REPORT_FORMAT = "cudrift.report"
REPORT_VERSION = 1

#: ``FeatureDrift.status`` values.
STATUS_OK = "ok"
STATUS_NO_DATA = "no_data"
STATUS_MISSING = "missing"
STATUS_ERROR = "error"


class _NanEqual:
    """Equality of a frozen result dataclass (``eq=False``) field by field, a NaN equal to a NaN: a report read
    back from JSON holds ``math.nan``, not the NaN objects its test computed, and compared unequal to itself."""

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(_nan_key(getattr(self, f.name)) == _nan_key(getattr(other, f.name)) for f in fields(self))

    def __hash__(self) -> int:
        return hash(tuple(_nan_key(getattr(self, f.name)) for f in fields(self)))


_NAN_KEY = object()


def _nan_key(x: Any) -> Any:
    return _NAN_KEY if isinstance(x, (float, np.floating)) and math.isnan(x) else x


@dataclass(frozen=True, eq=False)
class FeatureDrift(_NanEqual):
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
        ``"ok"``, ``"no_data"`` (nothing to test in the current window or
        in the reference),
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


@dataclass(frozen=True, eq=False)
class Finding(_NanEqual):
    """A data-quality observation about one column (or the whole window when ``column`` is None).

    ``check`` is one of ``bad_column`` (a column of either window that
    cannot be read), ``missing_column``, ``extra_column``, ``dtype_change``,
    ``kind_mismatch``, ``null_share_change``, ``out_of_range``,
    ``unseen_categories``, ``constant_column``, ``no_data``, ``nonfinite``,
    ``test_error``, ``pvalue_floor`` (a test at its smallest p-value that
    cannot show drift at its threshold, or that a multiple-testing
    correction left above it), ``distance_noise`` (a histogram distance at
    or past its threshold that windows of these sizes drawn from one
    distribution give 5% of the time or more); ``value`` is the measured
    quantity (a share or a count; for ``out_of_range`` estimated from a
    sketch, the lower end of the interval the message gives; for
    ``pvalue_floor`` the adjusted p-value; for ``distance_noise`` that
    share), ``reference_value`` the reference's where one is compared (the
    null share; the share outside the dictionary for ``unseen_categories``
    against a reference that had such values; for ``pvalue_floor`` the
    floor; for ``distance_noise`` the distance such windows stay below 95%
    of the time).
    """

    check: str
    column: str | None
    message: str
    value: float | None = None
    reference_value: float | None = None


def _clean(x: Any) -> Any:
    """JSON has no NaN/inf: write them as strings that ``_unclean`` reads back (NumPy scalars as Python's)."""
    if isinstance(x, np.generic):
        x = x.item()
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


# Field types of the report objects, checked when a report is read back; only
# the float fields turn "NaN"/"Infinity" strings back into floats (a column
# may well be named "NaN").
_FLOAT, _OPT_FLOAT, _INT, _BOOL, _STR, _OPT_STR = "float", "float?", "int", "bool", "str", "str?"
_FIELDS: dict[str, dict[str, str]] = {
    "FeatureDrift": {
        "column": _STR, "kind": _STR, "test": _OPT_STR, "statistic": _OPT_FLOAT, "pvalue": _OPT_FLOAT,
        "threshold": _OPT_FLOAT, "drifted": _BOOL, "n_reference": _INT, "n_current": _INT,
        "pvalue_adjusted": _OPT_FLOAT, "statistic_error": _FLOAT, "status": _STR, "message": _STR,
    },
    "Finding": {"check": _STR, "column": _OPT_STR, "message": _STR, "value": _OPT_FLOAT,
                "reference_value": _OPT_FLOAT},
    "DriftReport": {
        "dataset_drift": _BOOL, "drift_share": _FLOAT, "share_drifted": _FLOAT, "n_drifted": _INT,
        "n_tested": _INT, "n_reference_rows": _INT, "n_current_rows": _INT, "correction": _OPT_STR, "exact": _BOOL,
    },
}


def _check_field(owner: str, name: str, kind: str, v: Any) -> Any:
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if v is None and optional:
        return None
    if base == "float":
        v = _unfloat(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                return float(v)
            except OverflowError:
                raise FormatError(f"malformed cudrift report: {owner}.{name} should be {kind}, got an integer of "
                                  f"{v.bit_length()} bits, past the float range") from None
    elif base == "int":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif base == "bool":
        if isinstance(v, bool):
            return v
    elif base == "str":
        if isinstance(v, str):
            return v
    raise FormatError(f"malformed cudrift report: {owner}.{name} should be {kind}, got {_shown(v)}")


def _shown(v: Any) -> str:
    """``repr(v)`` for an error message, within 80 characters (an int past Python's 4300 digits has no repr)."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 256:
        return f"an integer of {v.bit_length()} bits"
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _build(cls: type, d: Any, what: str) -> Any:
    if not isinstance(d, dict):
        raise FormatError(f"malformed cudrift report: a {what} should be an object, got {type(d).__name__}")
    spec = _FIELDS[cls.__name__]
    out = {}
    for k, v in d.items():
        out[k] = _check_field(cls.__name__, k, spec[k], v) if k in spec else v
    if cls.__name__ == "DriftReport" and not isinstance(out.get("metadata", {}), dict):
        raise FormatError("malformed cudrift report: metadata should be an object")
    return cls(**out)


@dataclass(frozen=True)
class DriftReport:
    """Outcome of :meth:`DriftDetector.compare`.

    Attributes
    ----------
    features
        One :class:`FeatureDrift` per reference column, in reference order
        (columns the reference could not read come last).
    findings
        Data-quality :class:`Finding` objects.
    dataset_drift
        ``share_drifted >= drift_share`` (and at least one column tested).
    drift_share
        The share of drifted columns that makes the dataset drifted.
    share_drifted, n_drifted, n_tested
        Among the columns that could be tested (``status="ok"``); with none
        (every shared column unreadable, say), ``n_tested`` is 0,
        ``share_drifted`` 0.0 and ``dataset_drift`` False: not compared.
    n_reference_rows, n_current_rows
        Rows in the two windows.
    correction
        Multiple-testing correction used (``None``, ``"bonferroni"``, ``"bh"``).
    exact
        True when every rank statistic was computed exactly from raw values.
    metadata
        Free-form JSON-like values (``compare`` records the backend and the
        policy). See :meth:`to_json` for what reads back.
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

    def __contains__(self, column: object) -> bool:
        return any(f.column == column for f in self.features)

    def __iter__(self):
        """The per-column results, as :attr:`features` lists them."""
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

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
        """The report as strict JSON, which :meth:`from_json` reads back (equal, but for metadata, below).

        JSON has no NaN or infinity: a float field holding one is written as
        the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` and read back
        as that float. :attr:`metadata` has no field types to tell such a
        string from text, so it reads back as JSON gives it: a NaN or infinite
        float in it as the string, a tuple as a list, a NumPy scalar as the
        Python number, a key as a string (the report then compares unequal);
        str, int, finite float, bool, None, list and dict values with string
        keys round-trip. A value JSON cannot hold (an array, a date) raises
        ``TypeError``.
        """
        return json.dumps(_clean(self.to_dict()), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DriftReport":
        if not isinstance(d, dict):
            raise FormatError(f"a cudrift report is a JSON object, got {type(d).__name__}")
        if d.get("format") != REPORT_FORMAT:
            raise FormatError(f"not a cudrift report: format is {d.get('format')!r}")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= REPORT_VERSION:
            raise FormatError(f"report version {version!r} is not supported (reads 1..{REPORT_VERSION})")
        try:
            feats = tuple(_build(FeatureDrift, f, "feature") for f in d["features"])
            finds = tuple(_build(Finding, f, "finding") for f in d["findings"])
            rest = {k: v for k, v in d.items() if k not in ("features", "findings", "format", "version")}
            return _build(cls, {**rest, "features": feats, "findings": finds}, "report")
        except (KeyError, TypeError) as exc:
            raise FormatError(f"malformed cudrift report: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> "DriftReport":
        try:
            d = json.loads(text)
        except ValueError as exc:  # JSONDecodeError, and an integer past Python's 4300 digits
            raise FormatError(f"report is not valid JSON: {exc}") from None
        except RecursionError:
            raise FormatError("report is not a cudrift report: its JSON is nested too deeply to read") from None
        return cls.from_dict(d)

    def summary_table(self) -> str:
        """The per-column table printed by ``cudrift compare`` and ``cudrift demo``."""
        head = ("column", "kind", "test", "statistic", "p-value", "threshold", "drifted")
        rows = []
        for f in self.features:
            stat = "-" if f.statistic is None else f"{f.statistic:.4g}"
            if f.statistic is not None and f.statistic_error != 0.0:
                # NaN: computed on the bounded samples, which carry no bound; else from sketches, the lower end
                # of an interval whose width the error is: the exact value lies in [statistic, statistic + error]
                stat += " (sample)" if math.isnan(f.statistic_error) else f" +{f.statistic_error:.2g}"
            p = "-" if f.pvalue is None else f"{f.pvalue:.3g}"
            adjusted = f.pvalue_adjusted
            if f.pvalue is not None and adjusted is not None and adjusted != f.pvalue and not math.isnan(adjusted):
                p += f" (adj {adjusted:.3g})"
            thr = "-" if f.threshold is None else f"{f.threshold:g}"
            drifted = "YES" if f.drifted else ("no" if f.status == STATUS_OK else f.status.replace("_", " "))
            rows.append((_printable(f.column), {"numerical": "num", "categorical": "cat"}.get(f.kind, f.kind),
                         f.test or "-", stat, p, thr, drifted))
        widths = [max(_display_width(r[i]) for r in [head, *rows]) for i in range(len(head))]
        line = lambda r: "  ".join(c + " " * (w - _display_width(c)) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        out = [line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        out.append("")
        if not self.n_tested:
            out.append(f"dataset: not compared — none of the {len(self.features)} columns could be tested")
            return "\n".join(out)
        verdict = "DRIFT" if self.dataset_drift else "no drift"
        out.append(
            f"dataset: {verdict} — {self.n_drifted} of {self.n_tested} columns drifted "
            f"(share {self.share_drifted:.2f}, threshold {self.drift_share:g})"
        )
        return "\n".join(out)


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``a\\nb``): a column name must not break its row."""
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)


def _display_width(text: str) -> int:
    """Terminal columns ``text`` takes: 2 for wide and fullwidth characters (CJK, emoji), 0 for combining marks."""
    width = 0
    for ch in text:
        if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue  # combining marks, zero-width joiners and variation selectors sit on the previous character
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width
