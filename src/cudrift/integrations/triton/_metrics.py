"""Triton custom metrics of the drift monitor (``pb_utils.MetricFamily``).

Every label value is bounded: ``monitor`` (the monitor model's own name) and
``model`` (the served model's) are fixed per monitor, ``backend`` is cpu or
gpu, ``feature`` comes from the reference profile, ``test`` from cudrift's test registry and
``reason`` from :data:`BAD_REQUEST_REASONS`. Nothing from request data ever
becomes a label.

Each metric update is an IPC round trip from the python-backend stub to the
server, so the monitor makes them from its worker thread, never from
``execute``: request counts are accumulated and published in batches.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cudrift.detect.report import STATUS_OK, DriftReport
from cudrift.errors import FormatError
from cudrift.integrations.triton._layout import FeatureLayout
from cudrift.integrations.triton._state import ClosedWindow, finite
from cudrift.sketches import _format
from cudrift.sketches.column import NumericColumnProfile
from cudrift.stats import TESTS

__all__ = ["MonitorMetrics", "BAD_REQUEST_REASONS", "METRIC_NAMES"]

#: Why a request was refused (the ``reason`` label of ``cudrift_bad_requests_total``).
BAD_REQUEST_REASONS = (
    "missing_input",  # an input tensor the layout needs is absent
    "wrong_dtype",  # a tensor's data type is not the configured one
    "wrong_width",  # a tensor's second axis does not match its feature count
    "batch_mismatch",  # input tensors disagree on the number of rows
    "empty_batch",  # zero rows
    "nan_only",  # every numeric value of the request is NaN
    "unreadable",  # the values could not be read (e.g. bytes that are not UTF-8)
    "internal",  # an unexpected error while handling the request
)

# name: (kind, description)
_FAMILIES: dict[str, tuple[str, str]] = {
    "cudrift_feature_drift_score": (
        "GAUGE", "Drift statistic of the last closed window, per feature and test (NaN: the feature was not tested)"
    ),
    "cudrift_feature_drift_pvalue": (
        "GAUGE", "p-value of the last closed window, per feature (p-value tests only; NaN: not tested)"
    ),
    "cudrift_feature_drifted": (
        "GAUGE", "1 if the feature drifted in the last closed window, 0 if not, NaN if it could not be tested"
    ),
    "cudrift_dataset_drift_share": (
        "GAUGE", "Share of tested features that drifted in the last closed window (NaN: no feature tested)"
    ),
    "cudrift_dataset_drift": (
        "GAUGE", "1 if the last closed window drifted as a whole (share >= drift_share), NaN if no feature was tested"
    ),
    "cudrift_window_rows_total": ("COUNTER", "Rows accepted into drift windows"),
    "cudrift_window_open_rows": ("GAUGE", "Rows accepted into the window that is still open"),
    "cudrift_backlog_rows": ("GAUGE", "Rows accepted but not profiled yet (the worker's queue)"),
    "cudrift_windows_closed_total": (
        "COUNTER", "Drift windows closed (each compared with the reference, or counted as a compare failure)"
    ),
    "cudrift_window_compare_failures_total": (
        "COUNTER", "Closed windows whose comparison with the reference failed (logged; drift gauges set to NaN)"
    ),
    "cudrift_window_dropped_rows_total": (
        "COUNTER", "Accepted rows dropped because they could not be profiled (logged; in cudrift_window_rows_total)"
    ),
    "cudrift_feature_nulls_total": ("COUNTER", "Null or NaN values in closed windows, per feature"),
    "cudrift_feature_out_of_range_total": (
        "COUNTER", "Numeric values outside the reference range (infinities included) in closed windows, per feature"
    ),
    "cudrift_feature_unseen_categories_total": (
        "COUNTER", "Categorical values absent from the reference in closed windows, per feature"
    ),
    "cudrift_bad_requests_total": ("COUNTER", "Requests refused by the drift monitor, per reason"),
    "cudrift_requests_total": ("COUNTER", "Requests handled by the drift monitor (accepted or refused)"),
    "cudrift_request_duration_seconds_total": ("COUNTER", "Time spent by the drift monitor in requests"),
    "cudrift_backpressure_seconds_total": (
        "COUNTER", "Time requests waited for the worker because the backlog was full (included in the above)"
    ),
    "cudrift_window_close_duration_seconds_total": (
        "COUNTER", "Time spent closing windows (last fold, comparison, publication)"
    ),
    # not cudrift_window_close_duration_seconds: OpenMetrics names the counter above's family that (its samples
    # add _total), and two families of one name are refused by OpenMetrics parsers and merged by collectors
    "cudrift_last_window_close_duration_seconds": ("GAUGE", "Time spent closing the last window"),
    "cudrift_last_window_close_timestamp_seconds": ("GAUGE", "Unix time at which the last window closed"),
    "cudrift_monitor_backend": (
        "GAUGE", "1 for the backend (cpu or gpu) windows are profiled and compared on, 0 for the other "
                 "(cpu on a KIND_GPU instance: the GPU backend is unavailable or failed its warm-up, logged)"
    ),
}

#: Every metric family the monitor publishes.
METRIC_NAMES = tuple(_FAMILIES)

_DRIFT_FAMILIES = ("cudrift_feature_drift_score", "cudrift_feature_drift_pvalue", "cudrift_feature_drifted")

# The counters MonitorMetrics keeps the values of (in _totals, under key) for the checkpoint: (key, family, type)
_SCALAR_COUNTERS = (
    ("requests", "cudrift_requests_total", int),
    ("request_seconds", "cudrift_request_duration_seconds_total", float),
    ("waited_seconds", "cudrift_backpressure_seconds_total", float),
    ("close_seconds", "cudrift_window_close_duration_seconds_total", float),
    ("compare_failures", "cudrift_window_compare_failures_total", int),
)
# and (key, family, label) of those with one series per reason or feature.
_LABELLED_COUNTERS = (
    ("bad", "cudrift_bad_requests_total", "reason"),
    ("nulls", "cudrift_feature_nulls_total", "feature"),
    ("out_of_range", "cudrift_feature_out_of_range_total", "feature"),
    ("unseen", "cudrift_feature_unseen_categories_total", "feature"),
)
# The counters that follow WindowState's counts (rows_total, windows_closed, rows_dropped): (key, family).
_STATE_COUNTERS = (
    ("rows", "cudrift_window_rows_total"),
    ("windows", "cudrift_windows_closed_total"),
    ("dropped", "cudrift_window_dropped_rows_total"),
)


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


class MonitorMetrics:
    """The monitor's metric families and series.

    Parameters
    ----------
    pb
        The ``triton_python_backend_utils`` module (or an object with the same
        ``MetricFamily`` API).
    model
        Value of the ``model`` label: the monitored model's name.
    layout
        The monitor's input layout: its columns are the ``feature`` labels.
    untested_test
        ``untested_test(feature)``: the test the detector would pick for a
        feature in a window that adds no value to the reference's (None if
        unknown). Each feature's drift series are made under that test from
        the start, NaN until a window tests it; without it (or on None) they
        appear at the first window that tests it.
    monitor
        Value of the ``monitor`` label: the monitor model's own name (default
        ``model``). Two monitors of one served model (another reference, say)
        are told apart by it: without it they would write the same series.
    backend
        The backend windows are profiled on (``cudrift_monitor_backend``).

    Notes
    -----
    Counters are created at zero for every feature and reason, so a scrape
    shows the full, bounded set of series from the start. :meth:`totals`
    returns the counters' values for the checkpoint. After a clean shutdown
    (its checkpoint written by ``finalize``, :meth:`totals` with
    ``shutdown=True``) :meth:`restore` continues them from the values the
    endpoint showed. A checkpoint written while serving holds counters that
    have gone on since: continued from it after a crash, they would come
    back lower than they were shown, but not at zero, and Prometheus would
    count that reset as an increase of everything they hold. After a crash
    they restart at zero instead, as Triton's own counters do (a reset
    ``rate()`` and ``increase()`` handle); the window and the gauges are
    resumed either way.
    """

    def __init__(self, pb: Any, model: str, layout: FeatureLayout,
                 untested_test: Callable[[str], str | None] | None = None, *, monitor: str | None = None,
                 backend: str = "cpu") -> None:
        self._pb = pb
        self.model = model
        self.monitor = model if monitor is None else monitor
        self._families = {
            name: pb.MetricFamily(name=name, description=desc, kind=getattr(pb.MetricFamily, kind))
            for name, (kind, desc) in _FAMILIES.items()
        }
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
        self._tests: dict[str, str] = {}  # feature -> test of its current drift series
        self._numeric = {c for g in layout.groups if g.kind == "numerical" for c in g.columns}
        self._features = layout.columns
        self._totals: dict[str, Any] = {
            "requests": 0, "request_seconds": 0.0, "close_seconds": 0.0, "waited_seconds": 0.0,
            "compare_failures": 0,
            "bad": {r: 0 for r in BAD_REQUEST_REASONS},
            "nulls": {f: 0 for f in self._features},
            "out_of_range": {f: 0 for f in self._features if f in self._numeric},
            "unseen": {f: 0 for f in self._features if f not in self._numeric},
        }
        # WindowState's counts (rows_total, windows_closed, rows_dropped) published so far, and what they exceed
        # their counters by (the counts restored from a crash's checkpoint, which their counters restart without)
        self._published = {key: 0 for key, _ in _STATE_COUNTERS}
        self._offsets = {key: 0 for key, _ in _STATE_COUNTERS}
        # the last closed window's gauges, kept for the checkpoint: a restarted server shows them again
        self._last: dict[str, Any] = {}
        for _, family, labels, _ in self._counters():  # every counter kept in _totals, one series per label
            self._metric(family, **labels)
        for _, family in _STATE_COUNTERS:
            self._metric(family)
        self._metric("cudrift_window_open_rows")
        self._metric("cudrift_backlog_rows")
        for b in ("cpu", "gpu"):
            self._metric("cudrift_monitor_backend", backend=b).set(1.0 if b == backend else 0.0)
        # the dataset gauges exist from the start (NaN: no window compared yet), so a scrape shows their series
        self._metric("cudrift_dataset_drift_share").set(math.nan)
        self._metric("cudrift_dataset_drift").set(math.nan)
        # and so do the features' drift gauges, under the test the detector would pick (an alert on a feature's
        # series then has it to read before the first window closes)
        for f in self._features:
            test = untested_test(f) if untested_test is not None else None
            if test is not None:
                self._tests[f] = test
                self._metric("cudrift_feature_drift_score", feature=f, test=test).set(math.nan)
                if _is_pvalue(test):
                    self._metric("cudrift_feature_drift_pvalue", feature=f, test=test).set(math.nan)
                self._metric("cudrift_feature_drifted", feature=f, test=test).set(math.nan)

    def _metric(self, family: str, **labels: str) -> Any:
        key = (family, tuple(sorted(labels.items())))
        m = self._series.get(key)
        if m is None:
            m = self._families[family].Metric(labels={"monitor": self.monitor, "model": self.model, **labels})
            self._series[key] = m
        return m

    def _blank(self, family: str, **labels: str) -> None:
        """Set a gauge series that no longer describes the last window to NaN.

        Not deleted: a reloaded model's other instance may hold the same
        series (see :meth:`close`), and deleting it here would free it under
        that instance.
        """
        m = self._series.get((family, tuple(sorted(labels.items()))))
        if m is not None:
            m.set(math.nan)

    # ------------------------------------------------------------ updates
    def record_requests(self, n: int, seconds: float, bad: Mapping[str, int], waited: float = 0.0) -> None:
        """Add a batch of handled requests: how many, time spent (waits included), refusals per reason."""
        if n:
            self._metric("cudrift_requests_total").increment(n)
            self._metric("cudrift_request_duration_seconds_total").increment(seconds)
            self._totals["requests"] += n
            self._totals["request_seconds"] += seconds
        if waited:
            self._metric("cudrift_backpressure_seconds_total").increment(waited)
            self._totals["waited_seconds"] += waited
        for reason, k in bad.items():
            if k:
                self._metric("cudrift_bad_requests_total", reason=reason).increment(k)
                self._totals["bad"][reason] = self._totals["bad"].get(reason, 0) + k

    def record_rows(self, rows_total: int, open_rows: int, windows_closed: int, backlog_rows: int = 0,
                    rows_dropped: int = 0) -> None:
        """Publish the window counters (totals; the counters advance by the difference) and gauges."""
        for (key, family), count in zip(_STATE_COUNTERS, (rows_total, windows_closed, rows_dropped)):
            if count > self._published[key]:
                self._metric(family).increment(count - self._published[key])
                self._published[key] = count
        self._metric("cudrift_window_open_rows").set(open_rows)
        self._metric("cudrift_backlog_rows").set(backlog_rows)

    def publish_window(self, closed: ClosedWindow, report: DriftReport) -> None:
        """Publish a closed window: drift per feature, dataset share, data quality (then :meth:`record_close`)."""
        features = {}
        for f in report.features:
            test = f.test or self._tests.get(f.column)  # (the latter made at start, see untested_test)
            if test is None:
                continue  # never tested, and no test to name its series after: none yet
            if f.status != STATUS_OK:
                # no result in this window (nothing to test, or the test failed): every gauge says so, none
                # keeps the last tested window's value
                features[f.column] = [test, math.nan, math.nan if _is_pvalue(test) else None, math.nan]
                continue
            pvalue = None if f.pvalue is None else _num(f.pvalue_adjusted if f.pvalue_adjusted is not None
                                                        else f.pvalue)
            features[f.column] = [test, _num(f.statistic), pvalue, 1.0 if f.drifted else 0.0]
        if report.n_tested:
            share, dataset_drift = float(report.share_drifted), 1.0 if report.dataset_drift else 0.0
        else:
            # no feature could be tested: no verdict, as after a failed comparison (a share of 0 would read "no
            # drift" for a window of nothing but infinities, say)
            share = dataset_drift = math.nan
        self._show({"share": share, "dataset_drift": dataset_drift, "features": features})
        self._publish_quality(closed)

    def window_failed(self, closed: ClosedWindow) -> None:
        """Publish a closed window whose comparison failed: data quality as usual, drift gauges NaN (then
        :meth:`record_close`).

        The drift gauges describe the last closed window; left alone they
        would describe an older one.
        """
        nan = math.nan
        self._show({"share": nan, "dataset_drift": nan,
                    "features": {f: [t, nan, None if p is None else nan, nan]
                                 for f, (t, _, p, _) in self._last.get("features", {}).items()}})
        self._metric("cudrift_window_compare_failures_total").increment(1)
        self._totals["compare_failures"] += 1
        self._publish_quality(closed)

    @property
    def last_share(self) -> float:
        """Drift share of the last closed window (NaN before the first, after a failed comparison, or when no
        feature could be tested)."""
        return float(self._last.get("share", math.nan))

    def _show(self, last: dict[str, Any]) -> None:
        """Set the last closed window's drift gauges (``features``: feature -> [test, score, p-value or None,
        drifted]) and keep them for the checkpoint. A feature whose test changed has its old series set to NaN."""
        for f, (test, score, pvalue, drifted) in last["features"].items():
            old = self._tests.get(f)
            if old is not None and old != test:
                for fam in _DRIFT_FAMILIES:
                    self._blank(fam, feature=f, test=old)
            self._tests[f] = test
            self._metric("cudrift_feature_drift_score", feature=f, test=test).set(score)
            if pvalue is not None:
                self._metric("cudrift_feature_drift_pvalue", feature=f, test=test).set(pvalue)
            self._metric("cudrift_feature_drifted", feature=f, test=test).set(drifted)
        self._metric("cudrift_dataset_drift_share").set(last["share"])
        self._metric("cudrift_dataset_drift").set(last["dataset_drift"])
        self._last = last

    def _publish_quality(self, closed: ClosedWindow) -> None:
        """The data-quality counters of a closed window (its own rows)."""
        for name, col in closed.own.columns.items():
            if name not in self._totals["nulls"]:
                continue
            if isinstance(col, NumericColumnProfile):
                nulls = col.null_count + col.nan_count
                # a reference whose edges are not its range: counted as folded; else its outer bins count them
                outside = closed.outside.get(name, col.outside_edges)
                self._add("cudrift_feature_out_of_range_total", "out_of_range", name, outside)
            else:
                nulls = col.null_count
                self._add("cudrift_feature_unseen_categories_total", "unseen", name, col.unseen_count)
            self._add("cudrift_feature_nulls_total", "nulls", name, nulls)

    def record_close(self, closed: ClosedWindow, seconds: float) -> None:
        """The time a window's close took (last fold, comparison, and the publication of its drift gauges and
        data-quality counters: call it after :meth:`publish_window` or :meth:`window_failed`) and when it closed."""
        self._metric("cudrift_window_close_duration_seconds_total").increment(seconds)
        self._metric("cudrift_last_window_close_duration_seconds").set(seconds)
        self._metric("cudrift_last_window_close_timestamp_seconds").set(closed.closed_at)
        self._totals["close_seconds"] += seconds
        self._last.update(close_seconds=seconds, closed_at=closed.closed_at)

    def _add(self, family: str, total: str, feature: str, value: int) -> None:
        if value:
            self._metric(family, feature=feature).increment(value)
            self._totals[total][feature] += int(value)

    # ------------------------------------------------------------ persistence
    @property
    def requests(self) -> int:
        """Requests counted so far (``cudrift_requests_total``): every counter that changes between window
        closes changes with it."""
        return int(self._totals["requests"])

    def totals(self, shutdown: bool = False) -> dict[str, Any]:
        """Counter values, and the last closed window's gauges, to keep in a checkpoint (JSON-able).

        ``shutdown``: for the checkpoint ``finalize`` writes, the one :meth:`restore` continues the counters from.
        The counters are then read from their series, which a reloaded model's other instance may have advanced
        too, so that they come back as the endpoint showed them.
        """
        if shutdown:
            for path, family, labels, kind in self._counters():
                shown = _read(self._metric(family, **labels))
                if shown is not None:
                    _assign(self._totals, path, kind(shown))
            for key, family in _STATE_COUNTERS:
                shown = _read(self._metric(family))
                if shown is not None:
                    self._offsets[key] = self._published[key] - int(shown)
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._totals.items()}
        out["offsets"] = dict(self._offsets)
        out["clean_shutdown"] = shutdown
        if self._last:
            out["last_window"] = {**self._last, "features": dict(self._last.get("features", {}))}
        return out

    def restore(self, totals: Mapping[str, Any], rows_total: int, windows_closed: int, rows_dropped: int = 0) -> bool:
        """Resume from a checkpoint's :meth:`totals` and WindowState counts; returns whether the counters continue.

        After a clean shutdown (a checkpoint :meth:`totals` made with ``shutdown=True``, or one older than the
        flag) each counter is raised to its saved value, not incremented by it: when Triton reloads the model,
        the new instance starts while the old one still runs, and both instances' metrics are the same series,
        already at (or past) the checkpoint's values. After any other checkpoint (a crash) the counters are left
        as they are: at zero in a new server process, or where the running instance of a reload has them. The
        last closed window's gauges come back either way, and the WindowState counts restored count as
        published, so that only what comes after them is added.

        Raises
        ------
        FormatError
            If a value it would read is not what :meth:`totals` writes (a counter that is not a finite number
            >= 0, an offset that is not an integer, a number where a dict of them belongs, a
            ``clean_shutdown`` that is not a bool). Nothing is changed then: ``restore({"clean_shutdown":
            False}, ...)`` restarts the counters as after a crash. The gauges' entry is read leniently (an
            unreadable one only costs the gauges until the next close).
        """
        clean = totals.get("clean_shutdown", True)
        if not isinstance(clean, bool):
            raise FormatError(f"checkpoint counters: clean_shutdown is {reprlib.repr(clean)}, not a bool")
        counters = list(self._counters())
        saved, offsets = [None] * len(counters), [None] * len(_STATE_COUNTERS)
        if clean:  # (a crash's counters are not read) all read before any series changes
            saved = [_saved_count(totals, path, kind) for path, _, _, kind in counters]
            node = totals.get("offsets", {})
            if not isinstance(node, Mapping):
                raise FormatError(f"checkpoint counters: offsets is {type(node).__name__}, not a dict")
            offsets = [_saved_offset(node, key) for key, _ in _STATE_COUNTERS]
        for (path, family, labels, kind), value in zip(counters, saved):
            _assign(self._totals, path, kind(self._resume(family, labels, value)))
        for (key, family), count, offset in zip(_STATE_COUNTERS, (rows_total, windows_closed, rows_dropped), offsets):
            shown = self._resume(family, {}, None if offset is None else count - offset)
            self._published[key] = count
            self._offsets[key] = count - int(shown)
        self._restore_gauges(totals.get("last_window"))
        return clean

    def _resume(self, family: str, labels: dict[str, str], saved: float | None) -> float:
        """A counter series' value once raised to ``saved`` (None: left as it is); series that cannot be read
        count as 0."""
        metric = self._metric(family, **labels)
        shown = _read(metric) or 0.0
        if saved is not None and saved > shown:
            metric.increment(saved - shown)
            shown = saved
        return shown

    def _counters(self) -> Iterator[tuple[tuple[str, ...], str, dict[str, str], type]]:
        """(path in ``_totals``, family, labels, type) of each counter series kept in ``_totals``."""
        for key, family, kind in _SCALAR_COUNTERS:
            yield (key,), family, {}, kind
        for key, family, label in _LABELLED_COUNTERS:
            for value in self._totals[key]:
                yield (key, value), family, {label: value}, int

    def _restore_gauges(self, last: Any) -> None:
        """Publish the last closed window's gauges again, as saved with the checkpoint (alerts keep their series)."""
        if not isinstance(last, Mapping):
            return
        try:
            features = {str(f): [str(v[0]), float(v[1]), None if v[2] is None else float(v[2]), float(v[3])]
                        for f, v in dict(last.get("features", {})).items() if f in self._features}
            share, drift = float(last["share"]), float(last["dataset_drift"])
            close, closed_at = last.get("close_seconds"), last.get("closed_at")
            close, closed_at = (None, None) if close is None or closed_at is None else (float(close), float(closed_at))
        except (KeyError, TypeError, ValueError, IndexError):
            return  # an unreadable entry only costs the gauges until the next close
        self._show({"share": share, "dataset_drift": drift, "features": features})
        if closed_at is not None:
            self._metric("cudrift_last_window_close_duration_seconds").set(close)
            self._metric("cudrift_last_window_close_timestamp_seconds").set(closed_at)
            self._last.update(close_seconds=close, closed_at=closed_at)

    def close(self) -> None:
        """Stop publishing, leaving every series to the server.

        The series are not deleted. When Triton reloads a model it starts the
        new instance before it finalizes the old one, and series of the same
        name and labels are one series in Triton's registry whichever
        instance made them, but each instance's family counts only its own
        references. Deleting them here would remove the new instance's
        series from the metrics endpoint, and leave it writing to freed ones.
        So the ``pb_utils`` objects are kept for the life of the process
        (the stub's, which ends with the instance): the series keep their last
        values until the server restarts or a new instance updates them.
        """
        _KEPT.append((self._families, self._series))
        self._families, self._series = {}, {}


#: Metric families and series of finalized monitors, never deleted (see :meth:`MonitorMetrics.close`).
_KEPT: list[Any] = []


def _read(metric: Any) -> float | None:
    """A series' value (``pb_utils.Metric.value``); None where the API has no way to read it."""
    read = getattr(metric, "value", None)
    return None if read is None else float(read())


def _saved_count(totals: Mapping[str, Any], path: tuple[str, ...], kind: type) -> float:
    """The counter at ``path`` in a checkpoint's totals, as ``kind``: 0 where it has none (a feature new to the
    layout). Raises FormatError unless it is a number >= 0 (an int counter's an integer below 2**63, a float
    counter's finite) under dicts."""
    node: Any = totals
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping):
            raise FormatError(f"checkpoint counters: {'/'.join(path[:depth])} is {type(node).__name__}, not a dict")
        node = node.get(key, 0 if depth == len(path) - 1 else {})
    if kind is int and _format.json_count(node):
        return node
    value = finite(node) if kind is float else None
    if value is not None and value >= 0:
        return value
    raise FormatError(f"checkpoint counters: {'/'.join(path)} is {reprlib.repr(node)}, not "
                      + ("an integer" if kind is int else "a finite number") + " >= 0")


def _saved_offset(offsets: Mapping[str, Any], key: str) -> int:
    """An offset of a checkpoint's totals (0 where it has none): an integer of either sign (a reload's old
    instance may have taken the shared series past what the new one published)."""
    value = offsets.get(key, 0)
    # (no count the monitor keeps reaches 2**63: a checkpoint's larger one is not its own)
    if not (isinstance(value, int) and not isinstance(value, bool) and abs(value) < _format.COUNT_LIMIT):
        raise FormatError(f"checkpoint counters: offsets/{key} is {reprlib.repr(value)}, not an integer")
    return value


def _assign(totals: dict[str, Any], path: tuple[str, ...], value: float) -> None:
    node = totals
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _is_pvalue(test: str) -> bool:
    """Whether ``test`` gives a p-value (and so a ``cudrift_feature_drift_pvalue`` series)."""
    spec = TESTS.get(test)
    return spec is not None and spec.is_pvalue
