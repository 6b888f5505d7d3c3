"""``DriftDetector``: a reference, a test policy, and ``compare(current) -> DriftReport``."""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from cudrift.backends import cpu_workers, device_binder, resolve_backend, submit, thread_limit
from cudrift.detect import _compute
from cudrift.detect.correction import CORRECTIONS, adjust_pvalues
from cudrift.detect.policy import SMALL_REFERENCE, auto_test, normalize_policy
from cudrift.detect.report import (
    STATUS_ERROR,
    STATUS_MISSING,
    STATUS_NO_DATA,
    STATUS_OK,
    DriftReport,
    FeatureDrift,
    Finding,
)
from cudrift.errors import CudriftError, EmptyInputError, IncompatibleSketchError, SchemaError, UnreadableColumnsError
from cudrift.io import TableSource, as_source
from cudrift.sketches.categorical import CategoryCounts
from cudrift.sketches.column import NumericColumnProfile
from cudrift.sketches.config import CATEGORICAL, NUMERICAL, ProfileConfig, Schema
from cudrift.sketches.profile import Profile, check_settings, profile_keeping_sorted
from cudrift.stats import TESTS, ztest_proportions
from cudrift.stats._dist import anderson_pvalue

DEFAULT_MEMORY_BUDGET = 1 << 30
_EXACT = ("auto", "always", "never")
#: Significance at which a current window's share of values outside the dictionary counts as grown past a reference
#: window's own share (the unseen_categories finding against a reference that is itself a window).
_UNSEEN_GROWTH_ALPHA = 0.01


def _workers() -> int:
    return cpu_workers()


class DriftDetector:
    """Compare windows of data with a reference.

    Parameters
    ----------
    reference
        Reference data (any input :func:`cudrift.profile` accepts) or a
        reference :class:`Profile`.
    policy
        ``"auto"`` (see :mod:`cudrift.detect.policy`), one test name for
        every column it applies to, or a dict column → test name.
    thresholds
        One number for every test, or a dict keyed by column or by test name
        (column wins). Defaults: 0.05 for p-value tests, 0.1 for distances.
    correction
        ``None``, ``"bonferroni"`` or ``"bh"`` across the p-value tests of a
        comparison.
    drift_share
        The dataset drifts when at least this share of tested columns drifted.
    exact
        ``"auto"``: keep the numeric reference columns sorted while they fit
        ``memory_budget`` and compute rank tests exactly (a current window
        whose numeric columns do not fit it either is compared from its
        sketches); ``"always"``: the same, raising if the reference does not
        fit, and keeping every current window sorted whatever its size (on
        the GPU backend, ``compare`` raises ``ValueError`` for a window
        whose sorted columns would take over half the free device memory);
        ``"never"``: always use sketches (results carry ``statistic_error``).
    backend
        ``"auto"``, ``"cpu"`` or ``"gpu"``.
    schema, config, columns
        Passed to :func:`cudrift.profile` for the reference. ``columns``
        selects columns of a reference Profile too (``config`` does not
        apply to one: its settings are fixed); the other columns of the
        data are the user's choice, not reported as extra in a current window.
    memory_budget
        Bytes the sorted numeric reference may hold, at 8 bytes per value
        (it is kept as float64; default 1 GiB); and the sorted numeric
        columns of a current window, except with ``exact="always"``.
    null_share_tolerance
        A change of the null share larger than this (absolute) is reported.
    workers
        Threads that test the columns of a comparison (default: one per
        core, at most 8); also the most that profile the reference and a
        window of data. 1 does all of the detector's work on the calling
        thread (profiles, tests, the exact grid of a large rank test): what
        a server that compares in the background wants, so that the
        comparison holds the GIL from one thread, not several, against the
        request threads (the Triton monitor does this). With
        ``backend="gpu"`` cudrift's staging threads still copy host data to
        the device, and one helper thread counts its categorical columns.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = DriftDetector({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    >>> rep = det.compare({"a": rng.normal(size=2000), "b": rng.normal(1.0, size=2000)})
    >>> rep.drifted_columns
    ['b']
    """

    def __init__(
        self,
        reference: Any,
        policy: str | Mapping[str, str] | None = "auto",
        thresholds: float | Mapping[str, float] | None = None,
        correction: str | None = None,
        drift_share: float = 0.5,
        exact: str | bool = "auto",
        backend: str = "auto",
        schema: Schema | None = None,
        config: ProfileConfig | None = None,
        columns: Sequence[str] | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        null_share_tolerance: float = 0.1,
        workers: int | None = None,
    ):
        if workers is not None and not (isinstance(workers, (int, np.integer)) and not isinstance(workers, bool)
                                        and workers >= 1):
            raise ValueError(f"Invalid value for workers: {workers!r} (expected a whole number >= 1, or None)")
        self.workers = None if workers is None else int(workers)
        self.backend = resolve_backend(backend)
        self._all_test, self._column_tests = normalize_policy(policy, TESTS)
        self.policy = policy
        if correction not in CORRECTIONS:
            raise ValueError(f"Invalid value for correction: {correction!r} (expected one of {CORRECTIONS})")
        self.correction = correction
        if not (_is_number(drift_share) and 0 < drift_share <= 1):
            raise ValueError(f"Invalid value for drift_share: {drift_share!r} (expected a number in (0, 1])")
        self.drift_share = float(drift_share)
        if exact is True:
            exact = "always"
        elif exact is False:
            exact = "never"
        if exact not in _EXACT:
            raise ValueError(f"Invalid value for exact: {exact!r} (expected one of {_EXACT} or a bool)")
        self.exact = exact
        self._thresholds = _normalize_thresholds(thresholds)
        if not (isinstance(null_share_tolerance, (int, float)) and 0 <= null_share_tolerance <= 1):
            raise ValueError(f"Invalid value for null_share_tolerance: {null_share_tolerance!r}")
        self.null_share_tolerance = float(null_share_tolerance)
        self.memory_budget = int(memory_budget)
        check_settings(config, schema)
        self._ref_sorted: dict[str, np.ndarray] = {}
        # columns the user left out of the reference: not "extra" in a current window
        self._ignored = frozenset(schema.ignore) if schema is not None else frozenset()
        # with columns=, the user chose which columns to compare: the ones left out are not "extra" either
        # (a 2-D array's columns= only names them: none is left out)
        if columns is not None:
            chosen = {str(c) for c in columns}
            names = reference.names if isinstance(reference, Profile) else _input_names(reference)
            self._ignored |= frozenset(n for n in names if n not in chosen)

        if isinstance(reference, Profile):
            if exact == "always":
                raise ValueError("exact='always' needs reference data, not a Profile")
            if config is not None:
                raise ValueError("config applies when profiling data; this reference is a Profile whose settings "
                                 f"are fixed ({reference.config}): profile the reference with that config instead")
            self.reference = _without(_select_columns(reference, columns), self._ignored, schema)
        else:
            src = _as_source(reference, self.backend, columns=columns,
                             batch_rows=(config or ProfileConfig()).batch_rows, errors="report")
            budget = 0 if exact == "never" else self.memory_budget
            # errors="report": a reference column that cannot be read is reported by every
            # comparison (status "error"); the others are compared
            with self._thread_limit():
                self.reference, self._ref_sorted = profile_keeping_sorted(
                    src, config=config, schema=schema, backend=backend, keep_sorted_budget=budget,
                    keep_float64=True,  # converted once here rather than on every compare
                    errors="report", keep_required=exact == "always",
                )
            numeric = [n for n, k in self.reference.kinds.items() if k == NUMERICAL]
            if exact == "always" and numeric and not self._ref_sorted:
                need = sum(src.n_rows * 8 for n in numeric)
                raise ValueError(
                    f"exact='always': the sorted numeric reference needs {need:,} bytes, over memory_budget="
                    f"{self.memory_budget:,}"
                )
        for col, test in self._column_tests.items():
            if col not in self.reference.columns:
                raise SchemaError(f"policy names column {col!r}, which is not in the reference {self.reference.names}")
            kind = self.reference.kinds[col]
            if TESTS[test].kind == "numerical" and kind != NUMERICAL:
                raise SchemaError(f"policy asks for {test!r} on column {col!r}, but {test} needs a numerical "
                                  f"column and {col!r} is {kind}")
        if isinstance(self._thresholds, dict):
            unknown = [k for k in self._thresholds if k not in self.reference.columns and k not in TESTS]
            if unknown:
                raise ValueError(f"thresholds names {unknown}, which are neither reference columns "
                                 f"{self.reference.names} nor tests {sorted(TESTS)}")
            for k, v in self._thresholds.items():
                if k in TESTS and TESTS[k].is_pvalue and v > 1:
                    raise ValueError(f"Invalid threshold for {k!r}: {v!r} (a p-value threshold lies in [0, 1])")
        elif isinstance(self._thresholds, float) and self._thresholds > 1 and self._all_test is not None \
                and TESTS[self._all_test].is_pvalue:
            raise ValueError(f"Invalid value for thresholds: {self._thresholds!r} (a p-value threshold lies in [0, 1])")
        self._check_pvalue_thresholds()
        self._ref_distinct = {n: _distinct_sorted(v, 6) for n, v in self._ref_sorted.items()}

    @property
    def is_exact(self) -> bool:
        """True when rank tests on numeric columns are computed from the sorted reference."""
        numeric = [n for n, k in self.reference.kinds.items() if k == NUMERICAL]
        return all(n in self._ref_sorted for n in numeric)

    def _check_pvalue_thresholds(self) -> None:
        """Refuse a threshold above 1 for a column whose test is sure to give a p-value (it would always drift)."""
        t = self._thresholds
        for col, kind in self.reference.kinds.items():
            v = t if isinstance(t, float) else t.get(col)
            if v is None or v <= 1:
                continue
            test, named = self._policy_test(col, kind)
            # the auto rule's p-value tests (a column with no reference values is never tested)
            small = 0 < _n_valid(self.reference.columns[col]) <= SMALL_REFERENCE
            if test is None:
                sure, which = small, "the auto rule's test for a reference of at most 1000 values"
            else:
                # a blanket two-category test may give way to the auto rule on a column with more values
                fallback = not named and TESTS[test].kind == "binary"
                sure, which = TESTS[test].is_pvalue and (small or not fallback), test
            if sure:
                raise ValueError(f"Invalid threshold for column {col!r}: {v!r}; its test ({which}) gives a p-value, "
                                 "whose threshold lies in [0, 1]")

    def threshold_for(self, column: str, test: str) -> float:
        t = self._thresholds
        if isinstance(t, float):
            return t
        if column in t:
            return t[column]
        if test in t:
            return t[test]
        return float(TESTS[test].default_threshold)

    # ------------------------------------------------------------- compare
    def compare(self, current: Any, columns: Sequence[str] | None = None) -> DriftReport:
        """Test every reference column of ``current`` against the reference.

        ``current`` is data (any input :func:`cudrift.profile` accepts) or a
        :class:`Profile` made with ``like=`` the reference (merged windows,
        shards and streams are compared the same way). ``columns`` names a
        2-D array's columns, or the columns of ``current`` to read; a
        reference column it leaves out is reported as missing from the
        window (to compare some columns only, give ``columns=`` to the
        detector).
        """
        with self._thread_limit():
            return self._compare(current, columns)

    def _thread_limit(self) -> Any:
        """``workers`` as the :func:`~cudrift.backends.thread_limit` of this detector's work; none of its own (a
        caller's kept) where it is None."""
        return contextlib.nullcontext() if self.workers is None else thread_limit(self.workers)

    def _compare(self, current: Any, columns: Sequence[str] | None) -> DriftReport:
        ref = self.reference
        cur_sorted: dict[str, np.ndarray] = {}
        if isinstance(current, Profile):
            cur = current
            _check_like(ref, cur)
            cur_names = [*cur.columns, *cur.errors]
        else:
            # errors="report": one unreadable column is reported on its own
            # line; the rest of the window is still compared.
            src = _as_source(current, self.backend, columns=columns, batch_rows=ref.config.batch_rows,
                             errors="report")
            common = [n for n in src.names if n in ref.columns]
            if not common:
                raise SchemaError(
                    f"the current window shares no column with the reference: reference has {ref.names}, "
                    f"current has {src.names}"
                )
            # The current window is sorted once, by the profile pass itself; columns the reference
            # lacks are not profiled (they are not tested).
            others = [n for n in src.names if n not in ref.columns]
            # exact="always" keeps the window sorted whatever its size: the user asked for exact tests
            budget = (sys.maxsize if self.exact == "always" else self.memory_budget) if self._ref_sorted else 0
            cur, cur_sorted = self._profile_window(src, others, budget)
            cur_names = src.names
        if cur.n_rows == 0:
            raise EmptyInputError("the current window is empty (0 rows): nothing to compare")

        findings: list[Finding] = []
        bad = {n: e for n, e in cur.errors.items() if n in ref.columns}
        missing = [n for n in ref.columns if n not in cur.columns and n not in bad]
        extra = [n for n in cur_names if n not in ref.columns and n not in ref.errors and n not in self._ignored]
        for n, err in ref.errors.items():
            findings.append(Finding("bad_column", n, f"column {n!r} of the reference could not be read: {err}"))
        for n, err in bad.items():
            findings.append(Finding("bad_column", n, f"column {n!r} could not be read: {err}"))
        for n in missing:
            findings.append(Finding("missing_column", n, f"column {n!r} of the reference is missing from the current window"))
        for n in extra:
            findings.append(Finding("extra_column", n, f"column {n!r} is not in the reference; it is not tested"))

        names = [n for n in ref.columns if n in cur.columns]
        tests, rank_stats, rounded = self._device_rank_statistics(names, cur, cur_sorted)
        on_device = device_binder(self.backend)  # pool threads start on device 0, not on the caller's

        total = self.workers or _workers()
        workers = min(total, len(names))
        # each column's own pools (a large rank test's exact grid) share what the column threads leave, so that
        # the comparison runs at most `total` threads (each column's could start `total` more)
        inner = max(1, total // max(workers, 1))

        def column(n: str):
            with on_device(), thread_limit(inner):
                return self._column(n, cur, cur_sorted.get(n), tests.get(n), rank_stats.get(n), rounded.pop(n, None))

        if workers <= 1:
            results = [column(n) for n in names]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = [f.result() for f in [submit(pool, column, n) for n in names]]
        by_name = dict(zip(names, results))

        features: list[FeatureDrift] = []
        floors: dict[str, float | None] = {}
        for n in ref.columns:
            if n in bad:
                features.append(FeatureDrift(n, ref.kinds[n], None, None, None, None, False,
                                             _n_valid(ref.columns[n]), 0, status=STATUS_ERROR, message=bad[n]))
                continue
            if n in missing:
                features.append(FeatureDrift(n, ref.kinds[n], None, None, None, None, False,
                                             _n_valid(ref.columns[n]), 0, status=STATUS_MISSING,
                                             message="column missing from the current window"))
                continue
            fd, col_findings, floors[n] = by_name[n]
            features.append(fd)
            findings.extend(col_findings)
        for n, err in ref.errors.items():
            features.append(FeatureDrift(n, "unknown", None, None, None, None, False, 0, 0, status=STATUS_ERROR,
                                         message=f"the reference column could not be read: {err}"))
        features = self._apply_correction(features, floors, findings)
        tested = [f for f in features if f.status == STATUS_OK]
        n_drifted = sum(f.drifted for f in tested)
        share = n_drifted / len(tested) if tested else 0.0
        exact_all = all(f.statistic_error == 0.0 for f in tested)
        return DriftReport(
            features=tuple(features),
            findings=tuple(findings),
            dataset_drift=bool(tested) and share >= self.drift_share,
            drift_share=self.drift_share,
            share_drifted=share,
            n_drifted=n_drifted,
            n_tested=len(tested),
            n_reference_rows=ref.n_rows,
            n_current_rows=cur.n_rows,
            correction=self.correction,
            exact=exact_all,
            metadata={"backend": self.backend, "policy": self.policy if isinstance(self.policy, str) else (
                "auto" if self.policy is None else "custom")},
        )

    def _profile_window(self, src: TableSource, others: list[str],
                        budget: int) -> tuple[Profile, dict[str, np.ndarray]]:
        """The window's profile like the reference, and its kept sorted columns.

        A window none of whose shared columns can be read is still a window:
        ``profile()`` refuses it (there is nothing to profile), but the
        comparison reports each such column as an error row, as it does one
        unreadable column among others. Its profile is then one of no
        columns, whose ``errors`` give each column's reason. A window of no
        rows is refused as before.
        """
        ref = self.reference
        try:
            return profile_keeping_sorted(
                src, like=ref, backend=self.backend, errors="report", schema=Schema(ignore=others),
                keep_sorted_budget=budget, keep_required=self.exact == "always",
            )
        except UnreadableColumnsError as exc:
            if not src.n_rows:
                raise
            return Profile({}, {}, {}, src.n_rows, ref.config, exc.errors, window=True), {}

    def _at_precision(self, name: str, cur: Profile, ref_sorted, cur_sorted) -> tuple[Any, Any]:
        """A numerical column's sorted reference and window values at the precision of the less precise of the
        two (:func:`_compute.sorted_at_precision`: a float32 window's 0.1 is a float64 reference's 0.1). Made
        for each comparison, not kept: a copy of the reference per float type would be past ``memory_budget``."""
        if ref_sorted is None:
            return ref_sorted, cur_sorted
        return tuple(x if x is None else _compute.sorted_at_precision(x, r)
                     for x, r in zip((ref_sorted, cur_sorted), self._roundings(name, cur)))

    def _roundings(self, name: str, cur: Profile) -> tuple[Any, Any]:
        """The float types a column's sorted reference and window values are rounded to for a comparison (None:
        as they are). A side whose values are all of the coarser type is kept as it is: a float32 reference kept
        sorted as float64 is not copied for a float32 window, and stays in the packed buffer the batched rank
        launch reads."""
        rc, cc = self.reference.columns[name], cur.columns[name]
        if not (isinstance(rc, NumericColumnProfile) and isinstance(cc, NumericColumnProfile)):
            return None, None
        rounding = _compute._coarsest_float(rc.dtype, cc.dtype)
        return tuple(None if _compute.held_at(col.dtype, rounding) else rounding for col in (rc, cc))

    def _device_rank_statistics(self, names: list[str], cur: Profile,
                                cur_sorted: dict) -> tuple[dict, dict, dict]:
        """Tests of the columns kept sorted on the device, and their rank statistics from one batched launch.

        Returns ``(tests, stats, rounded)``: the test each such column gets
        (chosen as :meth:`_column` chooses it, so that it is not chosen
        twice) and, for those whose test is a rank test, their entries of
        the GPU backend's ``rank_tests_many`` (rank statistics, KS p-value or
        None) and the sorted pair they were computed on (:meth:`_at_precision`,
        for :meth:`_column` to use rather than round again). All empty on the
        CPU path. A failure of the batched launch leaves ``stats`` and
        ``rounded`` empty: each column then computes its own (a column that
        runs out of device memory then fails alone, with a finding).
        """
        if self.backend != "gpu":
            return {}, {}, {}
        from cudrift.backends import _gpu_host as gh

        on_device = _compute._on_device
        tests, wanted = {}, []
        for n in names:
            r, c = self._ref_sorted.get(n), cur_sorted.get(n)
            if r is None or c is None or not (on_device(r) and on_device(c)) or not (r.size and c.size):
                continue
            if cur.kinds[n] != self.reference.kinds[n]:
                continue  # not tested (kind mismatch)
            tests[n] = test = self._test_for(n, cur, c)
            if test in gh.RANK_TESTS:
                wanted.append(n)
        if not wanted:
            return tests, {}, {}
        from cudrift.backends import _gpu

        try:
            # at the compared precision (as _at_precision), each side's rounded columns in one allocation
            roundings = [self._roundings(n, cur) for n in wanted]
            refs = _gpu.rounded_together([(self._ref_sorted[n], r) for n, (r, _) in zip(wanted, roundings)])
            curs = _gpu.rounded_together([(cur_sorted[n], r) for n, (_, r) in zip(wanted, roundings)])
            pairs = list(zip(refs, curs))
            stats = _gpu.rank_tests_many(pairs, [tests[n] for n in wanted])
        except Exception:  # noqa: BLE001 - device trouble: fall back to the per-column path, which reports it
            return tests, {}, {}
        return tests, dict(zip(wanted, stats)), dict(zip(wanted, pairs))

    def test_for(self, column: str) -> str:
        """The test this detector runs on ``column`` for a window that adds no distinct value to the reference's.

        The policy's test, or the auto rule's on the reference's own distinct
        values (a window with new values may move the auto rule to another
        test). A monitor names the series of a column that no window has
        tested yet after it.

        Raises
        ------
        KeyError
            If the reference has no such column.

        Examples
        --------
        >>> import numpy as np, cudrift
        >>> cudrift.DriftDetector({"x": np.arange(1000.0)}).test_for("x")  # the auto rule, 1,000 values
        'ks'
        >>> cudrift.DriftDetector({"x": np.arange(1000.0)}, policy="psi").test_for("x")
        'psi'
        """
        if column not in self.reference.kinds:
            raise KeyError(f"the reference has no column {column!r} (columns: {self.reference.names})")
        return self._test_for(column, self.reference, None)

    def _test_for(self, name: str, cur: Profile, cur_sorted) -> str:
        """The test a testable column gets: its policy's, or the auto rule's (from the distinct values)."""
        kind = self.reference.kinds[name]
        rc = self.reference.columns[name]
        test, named = self._policy_test(name, kind)
        n_unique = None
        if test is not None and not named and TESTS[test].kind == "binary":
            # a blanket two-category test fits only columns with at most two values; named for a
            # column, it is the user's choice and reports the column's error
            n_unique = self._n_unique(name, kind, cur, cur_sorted)
            if n_unique > 2:
                test = None
        if test is None:
            if n_unique is None:
                n_unique = self._n_unique(name, kind, cur, cur_sorted)
            test = auto_test(kind, _n_valid(rc), n_unique)
        return test

    def _policy_test(self, name: str, kind: str) -> tuple[str | None, bool]:
        """The policy's test for a column (None: the auto rule's, also for a blanket test that does not fit its
        kind), and whether the policy names the column."""
        named = name in self._column_tests
        test = self._column_tests.get(name) or self._all_test
        # a test named for this column runs (a count test counts a numerical column's values, as the auto rule's
        # does for few-valued ones; one that cannot run makes an error row), never silently another one
        return (test if test is None or named or _compute.applies(test, kind) else None), named

    def _n_unique(self, name: str, kind: str, cur: Profile, cur_sorted) -> int:
        rc, cc = self.reference.columns[name], cur.columns[name]
        ref_sorted = self._ref_sorted.get(name)
        distinct = self._distinct_at(name, cur) if kind == NUMERICAL and ref_sorted is not None else None
        return _compute.n_unique(kind, rc, cc, ref_sorted, cur_sorted, distinct)

    def _distinct_at(self, name: str, cur: Profile) -> int:
        """The sorted reference column's distinct values, up to 6, at the precision it is compared at with a
        window (float32 may make fewer of them): counted once per float type and kept."""
        rounding = self._roundings(name, cur)[0]
        key = name if rounding is None else (name, rounding)
        if key not in self._ref_distinct:
            self._ref_distinct[key] = _distinct_sorted(
                _compute.sorted_at_precision(self._ref_sorted[name], rounding), 6)
        return self._ref_distinct[key]

    # ------------------------------------------------------------ per column
    def _column(self, name: str, cur: Profile, cur_sorted: np.ndarray | None, test: str | None = None,
                rank_stats=None, pair=None) -> tuple[FeatureDrift, list[Finding], float | None]:
        """One column's result; ``pair``: its sorted values already at the compared precision (from the batched
        rank launch), else they are made here."""
        ref = self.reference
        kind = ref.kinds[name]
        rc, cc = ref.columns[name], cur.columns[name]
        findings = _quality_findings(name, ref, cur, self.null_share_tolerance)
        n_ref, n_cur = _n_valid(rc), _n_valid(cc)

        def fail(status: str, message: str, test: str | None = None) -> tuple[FeatureDrift, list[Finding], None]:
            return FeatureDrift(name, kind, test, None, None, None, False, n_ref, n_cur,
                                status=status, message=message), findings, None

        if cur.kinds[name] != kind:
            findings.append(Finding("kind_mismatch", name,
                                    f"column {name!r} is {kind} in the reference but {cur.kinds[name]} now "
                                    f"(dtype {ref.dtypes[name]} → {cur.dtypes[name]}); not tested"))
            return fail(STATUS_ERROR, f"kind changed from {kind} to {cur.kinds[name]}")
        for n, col, where in ((n_cur, cc, "the current window"), (n_ref, rc, "the reference")):
            if n == 0:
                what = _nothing_to_test(col)
                findings.append(Finding("no_data", name, f"column {name!r} has {what} in {where}", value=0.0))
                return fail(STATUS_NO_DATA, f"{what} in {where}")
        if test is None:
            test = self._test_for(name, cur, cur_sorted)
        threshold = self.threshold_for(name, test)
        try:
            # (rounded here, where running out of memory fails this column alone; not where the test reads
            # neither, as MMD)
            ref_sorted = self._ref_sorted.get(name)
            if pair is not None:
                ref_sorted, cur_sorted = pair
            elif _compute.reads_sorted(test, ref_sorted is not None and cur_sorted is not None):
                ref_sorted, cur_sorted = self._at_precision(name, cur, ref_sorted, cur_sorted)
            res = _compute.run_test(test, kind, rc, cc, ref_sorted, cur_sorted if ref_sorted is not None else None,
                                    backend=self.backend, rank_stats=rank_stats, threshold=threshold)
        except (CudriftError, ValueError, MemoryError) as exc:
            # a test that cannot run on this column's data (constant values
            # for Anderson-Darling, one row for Cramer-von Mises, ...), or
            # that runs out of (device) memory, fails this column only; the
            # report goes on
            findings.append(Finding("test_error", name, f"{test} on column {name!r} failed: {exc}"))
            return fail(STATUS_ERROR, str(exc), test)
        spec = TESTS[test]
        if spec.is_pvalue and threshold > 1:
            # refused up front where the test was sure; here a blanket two-category test the column fits after all
            message = (f"threshold {threshold:g} for column {name!r} is not a p-value threshold, and its test "
                       f"({test}) gives a p-value: the column would always drift")
            findings.append(Finding("test_error", name, message))
            return fail(STATUS_ERROR, message, test)
        stat = float(res.statistic)
        pv = None if res.pvalue is None else float(res.pvalue)
        drifted = spec.drifted(res, threshold)
        share = res.details.get("null_share", math.nan)
        if drifted and share >= _NOISE_RATE:
            q95, k = res.details["null_statistic_q95"], res.details["n_counts"]
            findings.append(Finding(
                "distance_noise", name,
                f"{test} on column {name!r} is {stat:.3g}, at or past its threshold {threshold:g}, but two windows "
                f"of {res.n_reference:,} and {res.n_current:,} values over {k:,} "
                f"{'categories' if kind == CATEGORICAL else 'bins'} drawn from one distribution give as much "
                f"{share:.0%} of the time (95% of them stay below {q95:.3g}): this verdict may be noise. Compare "
                f"larger windows, {'' if kind == CATEGORICAL else 'fewer bins (ProfileConfig.n_bins), '}a test "
                f"that gives a p-value ({'chisquare' if kind == CATEGORICAL else 'ks'}), or a threshold above "
                f"{q95:.3g}", share, q95))
        return FeatureDrift(name, kind, test, stat, pv, threshold, bool(drifted), res.n_reference, res.n_current,
                            pvalue_adjusted=pv, statistic_error=float(res.statistic_error)), findings, \
            _pvalue_floor(res)

    def _apply_correction(self, features: list[FeatureDrift], floors: dict[str, float | None],
                          findings: list[Finding]) -> list[FeatureDrift]:
        """The multiple-testing correction's adjusted p-values and verdicts.

        A p-value at its test's floor (Anderson-Darling's 0.001, a permutation
        test's ``1 / (1 + permutations)``) bounds the true one from above
        only; where the correction leaves such a column below drift although
        the floor itself is below its threshold, the test cannot tell, and a
        ``pvalue_floor`` finding says so and what to use instead (appended to
        ``findings``): 60 columns shifted by 5 standard deviations under
        Anderson-Darling and Bonferroni read "no drift" without a word.
        With a correction or without, the same holds for a threshold at or
        below the floor (Anderson-Darling with threshold 0.0005).
        """
        out = list(features)
        if self.correction is not None:
            # NaN p-values (a degenerate test) take no part in the adjustment
            idx = [i for i, f in enumerate(features)
                   if f.status == STATUS_OK and f.pvalue is not None and not math.isnan(f.pvalue)]
            adj = adjust_pvalues([features[i].pvalue for i in idx], self.correction) if idx else []
            for i, a in zip(idx, adj):
                out[i] = FeatureDrift(**{**out[i].__dict__, "pvalue_adjusted": float(a),
                                         "drifted": bool(a < out[i].threshold)})
        for f in out:
            floor = floors.get(f.column)
            if floor is None or f.status != STATUS_OK or f.drifted:
                continue
            if floor >= f.threshold:  # (with a correction or without)
                why = f"not below the threshold {f.threshold:g}: this test cannot show drift at this threshold"
                instead = f"a threshold above {floor:g}"
            elif self.correction is not None:
                why = (f"which the {self.correction} correction over {len(idx)} tests raises to "
                       f"{f.pvalue_adjusted:g}, not below the threshold {f.threshold:g}: this test cannot show "
                       f"drift here")
                instead = "fewer tested columns, or no correction"
            else:
                continue
            findings.append(Finding(
                "pvalue_floor", f.column,
                f"{f.test} on column {f.column!r} gave the smallest p-value it can ({floor:g}; the true one is at "
                f"most that), {why}; use a test without a floor (ks, cramervonmises), {instead}",
                f.pvalue_adjusted, floor))
        return out


# ------------------------------------------------------------------ helpers


#: The share of windows of one distribution reaching a drifted count distance at which its column gets a
#: ``distance_noise`` finding (:func:`_compute.null_drift`): a p-value test's 0.05.
_NOISE_RATE = 0.05
_AD_FLOOR = anderson_pvalue(math.inf)[0]  # Anderson-Darling's smallest p-value (0.001, as SciPy's)


def _pvalue_floor(res: Any) -> float | None:
    """The p-value ``res`` gave when it is the smallest its test can give (so the true one is at most that), else
    None: Anderson-Darling's interpolation floored at 0.001 (as SciPy's), a permutation test's
    ``1 / (1 + permutations)``."""
    p, details = res.pvalue, res.details or {}
    if p is None or math.isnan(p):
        return None
    if details.get("pvalue_clipped") and p <= _AD_FLOOR:
        return float(p)
    perms = details.get("n_permutations")
    if perms and p <= 1.0 / (1 + perms) * (1 + 1e-12):
        return float(p)
    return None


def _is_number(x: Any) -> bool:
    """A real number, NumPy scalars included, but not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _normalize_thresholds(thresholds: Any) -> float | dict[str, float]:
    if thresholds is None:
        return {}
    if _is_number(thresholds):
        if not math.isfinite(thresholds) or thresholds < 0:
            raise ValueError(f"Invalid value for thresholds: {thresholds!r}")
        return float(thresholds)
    if isinstance(thresholds, Mapping):
        out = {}
        for k, v in thresholds.items():
            if not _is_number(v) or not math.isfinite(v) or v < 0:
                raise ValueError(f"Invalid threshold for {k!r}: {v!r}")
            out[str(k)] = float(v)
        return out
    raise TypeError(f"thresholds must be a number or a dict, got {type(thresholds).__name__}")


def _as_source(data: Any, backend: str, **kwargs: Any):
    """The host input adapters, or on the GPU backend its own, which also read device data in place."""
    if backend == "gpu":
        from cudrift.backends._gpu import as_source as device_as_source
        return device_as_source(data, **kwargs)
    return as_source(data, **kwargs)


def _distinct_sorted(v: np.ndarray, cap: int) -> int:
    """Distinct values of a sorted array, counting up to ``cap`` (enough for the auto rule)."""
    if v.size == 0:
        return 0
    if _compute._on_device(v):  # kept on the device by the GPU backend
        from cudrift.backends._gpu import distinct_sorted
        return distinct_sorted(v, cap)
    return int(min(cap, np.count_nonzero(v[1:] != v[:-1]) + 1))


def _n_valid(col: Any) -> int:
    if isinstance(col, NumericColumnProfile):
        return int(col.moments.count)
    return int(col.count - col.null_count)


def _input_names(data: Any) -> list[str]:
    """The column names of tabular input without reading it (empty where they cannot be had cheaply: a 2-D
    array, whose ``columns=`` names every column, Parquet paths, device matrices)."""
    if isinstance(data, Mapping):
        return [str(k) for k in data.keys()]
    for attr in ("column_names", "columns"):  # Arrow tables; pandas, polars and cuDF frames
        names = getattr(data, attr, None)
        if names is not None and not callable(names) and not isinstance(data, np.ndarray):
            try:
                return [str(n) for n in names]
            except TypeError:
                return []
    return []


def _select_columns(reference: Profile, columns: Sequence[str] | None) -> Profile:
    """The columns ``columns`` of a reference profile, in that order (all of them for None)."""
    if columns is None:
        return reference
    names = [str(c) for c in columns]
    unknown = [n for n in names if n not in reference.columns and n not in reference.errors]
    if unknown:
        raise SchemaError(f"columns {unknown} not found in the reference profile; it has {reference.names}")
    keep = [n for n in names if n in reference.columns]
    if not keep:
        raise EmptyInputError(f"columns= {names} names no readable column of the reference profile")
    return _subset(reference, keep, [n for n in reference.errors if n in names])


def _without(reference: Profile, ignored: frozenset, schema: Schema | None) -> Profile:
    """A reference profile less the columns the schema ignores (its kinds were fixed when it was made)."""
    if schema is not None and (schema.numerical or schema.categorical):
        raise ValueError("schema kinds (numerical=, categorical=) apply when profiling data; this reference is a "
                         "Profile whose kinds are fixed: profile the reference with that schema instead")
    drop = [n for n in reference.columns if n in ignored]
    if not drop:
        return reference
    keep = [n for n in reference.columns if n not in ignored]
    if not keep:
        raise EmptyInputError(f"schema ignores every column of the reference profile {reference.names}")
    return _subset(reference, keep, [n for n in reference.errors if n not in ignored])


def _subset(reference: Profile, keep: list[str], errors: list[str]) -> Profile:
    """The reference profile's columns ``keep`` (in that order) and its unreadable columns ``errors``."""
    return Profile({n: reference.columns[n] for n in keep}, {n: reference.kinds[n] for n in keep},
                   {n: reference.dtypes[n] for n in keep}, reference.n_rows, reference.config,
                   {n: reference.errors[n] for n in errors}, reference.window)


def _check_like(ref: Profile, cur: Profile) -> None:
    ref.config.check_mergeable(cur.config)
    if not any(n in ref.columns or n in ref.errors for n in (*cur.columns, *cur.errors)):
        raise SchemaError(f"the current profile shares no column with the reference: reference has {ref.names}, "
                          f"current has {list(cur.columns)}")
    for n, k in ref.kinds.items():
        if n not in cur.kinds or cur.kinds[n] != k:
            continue
        if k == NUMERICAL:
            a, b = ref.edges(n), cur.edges(n)
            if a is not None and (b is None or a.shape != b.shape or not np.array_equal(a, b)):
                what = "no histogram" if b is None else (
                    f"{len(b)} edges vs the reference's {len(a)}" if a.shape != b.shape else "other edge values")
                raise IncompatibleSketchError(
                    f"column {n!r}: the current profile's histogram edges differ from the reference's ({what}); "
                    "profile it with like=reference (cudrift profile --like)"
                )
        elif cur.columns[n].reference_categories is None:
            raise IncompatibleSketchError(
                f"column {n!r}: the current profile was not made with like=reference, so unseen categories "
                "cannot be counted; profile it with like=reference (cudrift profile --like)"
            )
        elif cur.columns[n]._ref_typed != ref.columns[n]._passed_on():
            # profiled like= another reference (or this one before update() added categories): its values of
            # this reference's other categories were counted as unseen, which the count tests would read as drift
            want, got = ref.columns[n]._passed_on(), cur.columns[n]._ref_typed
            raise IncompatibleSketchError(
                f"column {n!r}: the current profile was made like= a profile of other categories "
                f"({len(got - want)} not in this reference's dictionary, {len(want - got)} of it missing; "
                f"{len(want)} in it); profile it with like=reference (cudrift profile --like)"
            )


def _dtype_name(dtype: str | None) -> str | None:
    """A recorded dtype as compared: NumPy text dtypes (``<U5``, ``|S3``) as ``string``, which 2-D text arrays
    record since they are read as a dict's columns are (references saved before then say ``<U…``)."""
    if dtype and dtype[:2] in ("<U", ">U", "|S", "=U"):
        return "string"
    return dtype


def _quality_findings(name: str, ref: Profile, cur: Profile, null_tol: float) -> list[Finding]:
    out: list[Finding] = []
    rc, cc = ref.columns[name], cur.columns[name]
    if _dtype_name(ref.dtypes[name]) != _dtype_name(cur.dtypes[name]) and cur.dtypes[name] != "null":
        out.append(Finding("dtype_change", name, f"column {name!r} changed dtype: {ref.dtypes[name]} → {cur.dtypes[name]}"))
    r_missing = _missing_share(rc)
    c_missing = _missing_share(cc)
    # (a change of exactly the tolerance is not reported: 0.8 - 0.7 is 0.10000000000000009 in floats)
    if c_missing is not None and r_missing is not None and abs(c_missing - r_missing) > null_tol + 1e-12:
        out.append(Finding("null_share_change", name,
                           f"column {name!r} missing share changed from {r_missing:.3f} to {c_missing:.3f}",
                           value=c_missing, reference_value=r_missing))
    if isinstance(cc, NumericColumnProfile) and isinstance(rc, NumericColumnProfile):
        bad = cc.posinf_count + cc.neginf_count
        if bad and not (rc.posinf_count + rc.neginf_count):
            out.append(Finding("nonfinite", name, f"column {name!r} has {bad} infinite values (excluded from tests)",
                               value=float(bad)))
        if cc.moments.count > 0 and rc.moments.count > 0:
            out.extend(_out_of_range(name, rc, cc))
        for label, col in (("reference", rc), ("current", cc)):
            if col.moments.count > 1 and col.moments.min == col.moments.max:
                out.append(Finding("constant_column", name, f"column {name!r} is constant ({col.moments.min:.6g}) "
                                                             f"in the {label} window", value=col.moments.min))
    elif not isinstance(cc, NumericColumnProfile) and not isinstance(rc, NumericColumnProfile):
        valid, r_valid = cc.count - cc.null_count, rc.count - rc.null_count
        # the reference's own values outside the categories the current window was profiled with: a window
        # profiled like= a reference counted them as unseen, a reference past max_categories folded its rare ones
        r_outside = rc.unseen_count + rc.counts.folded
        if cc.unseen_count and valid and r_outside and r_valid:
            # which categories those were is not kept, so only the two shares can be compared; reported where
            # the current share is larger beyond sampling noise (one-sided two-proportion z-test): two windows of
            # one distribution differ by a little either way, and a finding on every other window would be noise.
            # A reference that folded chose the categories it kept by its own counts, so its share outside them
            # is biased low (a current window of its distribution had 89.6% outside against its 85%): the mass of
            # kept categories that may have been kept by chance is allowed on top of its share
            share, r_share = cc.unseen_count / valid, r_outside / r_valid
            allowed = min(r_outside + _kept_by_chance(rc.counts), r_valid)
            grew = ztest_proportions([r_valid - allowed, allowed],
                                     [valid - cc.unseen_count, cc.unseen_count], alternative="less")
            if grew.pvalue < _UNSEEN_GROWTH_ALPHA:
                had = ("values of rare categories it folded past "
                       f"max_categories={rc.counts.max_categories}" if rc.counts.folded else "such values too")
                past = (f"{_pct(allowed / r_valid)} allowed for categories kept by chance, "
                        if allowed > r_outside else "")
                out.append(Finding("unseen_categories", name,
                                   f"column {name!r}: {cc.unseen_count} current values ({_pct(share)}) are outside "
                                   f"the categories both windows were profiled with, against {_pct(r_share)} of the "
                                   f"reference's: the reference had {had}, so at most this many are "
                                   f"categories it never had ({past}one-sided z-test p {_p_text(grew.pvalue)})",
                                   value=share, reference_value=r_share))
        elif cc.unseen_count and valid:
            out.append(Finding("unseen_categories", name,
                               f"column {name!r}: {cc.unseen_count} current values "
                               f"({_pct(cc.unseen_count / valid)}) are categories the reference never had",
                               value=cc.unseen_count / valid))
        for label, col in (("reference", rc), ("current", cc)):
            if col.count - col.null_count > 1 and len(col.counts) == 1 and not getattr(col, "unseen_count", 0):
                only = next(iter(col.counts.keys()))
                out.append(Finding("constant_column", name, f"column {name!r} is constant ({only!r}) in the {label} window"))
    return out


def _kept_by_chance(counts: CategoryCounts) -> int:
    """A bound on how far a folded reference's kept counts came out high by chance (0 where nothing was folded).

    Past ``max_categories`` a reference keeps the categories its Misra-Gries
    summary held, chosen by its own counts, so those near the cut tend to be
    ones that came out high, and its share outside them is biased low.
    A key held for its counts alone has about ``T = folded / (max_categories
    + 1)`` (the summary keeps every key past that); each held key whose count
    is within three Poisson standard deviations of ``T`` is allowed two
    standard deviations of its count (at most the count itself). Checked by
    simulation on uniform and Zipf(0.5, 1, 1.5) distributions of 5,000
    categories, 40,000 and 200,000 rows, 50 to 2,000 kept: the bias was below
    this in all but one case (uniform, 50 kept: 1.00% against 0.94%), which
    the z-test's noise allowance covers.
    """
    if not counts.folded or not len(counts):
        return 0
    kept = np.fromiter((c for _, c in counts.items()), dtype=np.float64, count=len(counts))
    cut = counts.folded / (counts.max_categories + 1)
    near = kept[kept <= cut + 3.0 * math.sqrt(cut)]
    return int(np.minimum(near, 2.0 * np.sqrt(near)).sum())


def _out_of_range(name: str, rc: NumericColumnProfile, cc: NumericColumnProfile) -> list[Finding]:
    """The ``out_of_range`` finding: the current share of finite values outside the reference's [min, max].

    Where the reference's outer histogram edges are its minimum and maximum
    (a reference profiled from data; a constant one's single bin ends just
    past its value), the current window's underflow and overflow bins count
    the values outside them exactly.
    Edges come from the profile a window was made like=, so they need not
    span a reference that is such a window, or one grown by ``update()``:
    the share outside its [min, max] then comes from the current quantile
    sketch, as the interval its bounds allow (``value`` its lower end, as a
    statistic from sketches is reported), and is reported only where the
    sketch shows such values.
    """
    lo_ref, hi_ref = rc.moments.min, rc.moments.max
    n = cc.moments.count
    rng = f"the reference range [{_distinct(lo_ref, hi_ref)}]"
    rounding = _compute._coarsest_float(rc.dtype, cc.dtype)
    # (a window finer than its reference, float64 against float32, was binned exactly: its 0.1 lies under the
    # reference's float32 0.1, so it is measured from its sketch at the reference's precision)
    if rc.edges_are_range and cc.histogram is not None and _compute._coarsest_float(cc.dtype) == rounding:
        least = most = int(cc.histogram.counts[0] + cc.histogram.counts[-1])
    else:
        # at the precision of the less precise window (a float32 window's 0.7 is the float64 reference's minimum
        # 0.7, not a value below it); F(x) counts values <= x: below the minimum is F just under it, above the
        # maximum n - F(maximum)
        b = _compute._cdf_at_precision(cc.quantiles.cdf_bounds(), rounding)
        lo, hi = _compute._rounded(np.array([lo_ref, hi_ref]), rounding)
        (below_lo, max_lo), (below_hi, max_hi) = b.evaluate(np.array([np.nextafter(lo, -np.inf), hi]))
        least, most = int(below_lo + n - max_hi), int(below_hi + n - max_lo)
    if not least:
        return []
    if least == most:
        return [Finding("out_of_range", name, f"column {name!r}: {_pct(least / n)} of current values lie outside "
                                              f"{rng}", value=least / n)]
    share = (f"about {_pct(least / n)}" if _pct(least / n) == _pct(most / n)
             else f"between {_pct(least / n)} and {_pct(most / n)}")
    return [Finding("out_of_range", name,
                    f"column {name!r}: {share} of current values lie outside "
                    f"{rng} (estimated from the current quantile sketch: the histogram edges are not the "
                    f"reference's minimum and maximum)", value=least / n)]


def _distinct(lo: float, hi: float) -> str:
    """``"lo, hi"`` to 6 significant digits, or as many more as tell two different ends apart (a range of
    1 + U(0, 1e-9) printed as [1, 1], a constant's)."""
    for digits in range(6, 17):
        a, b = f"{lo:.{digits}g}", f"{hi:.{digits}g}"
        if a != b or lo == hi:
            return f"{a}, {b}"
    return f"{lo!r}, {hi!r}"  # (the shortest digits that give each back)


def _p_text(p: float) -> str:
    """``"= 3.1e-05"``, or ``"< 1e-300"`` for a p-value that underflowed to 0."""
    return f"= {p:.2g}" if p > 0 else "< 1e-300"


def _nothing_to_test(col: Any) -> str:
    """Why a column holds no value to test: "no non-null values", or for numbers "no finite values (2 infinite,
    1 NaN)" where it holds infinities or NaN."""
    if isinstance(col, NumericColumnProfile) and (col.nan_count or col.posinf_count or col.neginf_count):
        inf = col.posinf_count + col.neginf_count
        held = [f"{inf} infinite" if inf else "", f"{col.nan_count} NaN" if col.nan_count else "",
                f"{col.null_count} null" if col.null_count else ""]
        return f"no finite values ({', '.join(h for h in held if h)})"
    return "no non-null values"


def _pct(share: float) -> str:
    return f"{100 * share:.3g}%"


def _missing_share(col: Any) -> float | None:
    if col.count == 0:
        return None
    missing = col.null_count + (col.nan_count if isinstance(col, NumericColumnProfile) else 0)
    return missing / col.count
