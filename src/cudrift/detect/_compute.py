"""Run one registered test on a column, from raw sorted values or from sketches.

The detector hands over the two column profiles and, when the reference is
kept sorted, both sorted finite samples. Each test takes the cheapest exact
route available:

* rank tests with both samples sorted → the ``*_sorted`` fast paths (exact);
* KS, Wasserstein, Cramér–von Mises, Anderson–Darling without them → from
  the quantile sketches' :class:`CdfBounds`, with ``statistic_error``;
* Welch's t-test → from the moments sketches (exact either way);
* Mann–Whitney, Epps–Singleton, energy distance without raw values, and MMD
  always → on the bounded deterministic samples (``details["from_sample"]``;
  ``statistic_error`` is NaN because a sample carries no bound);
* count tests → category counts (exact), or for numerical columns the
  counts of each distinct value where both windows together hold at most
  :data:`~cudrift.detect.policy.FEW_DISTINCT` values (exact from sorted
  values; from the quantile sketches otherwise), else histogram counts.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cudrift.detect.policy import FEW_DISTINCT
from cudrift.errors import CudriftError, EmptyInputError, SchemaError
from cudrift.sketches._cdf import CdfBounds
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile
from cudrift.sketches.config import CATEGORICAL, NUMERICAL
from cudrift.stats import TESTS, TestResult
from cudrift.stats.rank import anderson_from_cdf, cramervonmises_from_cdf, ks_from_cdf, wasserstein_from_cdf
from cudrift.stats.univariate import _std, _ttest_ind_from_stats, _usable_std

_FROM_CDF = {
    "ks": lambda r, c, std: ks_from_cdf(r, c),
    "wasserstein": lambda r, c, std: wasserstein_from_cdf(r, c),
    "wasserstein_normalized": lambda r, c, std: wasserstein_from_cdf(r, c, normalize_by=std),
    "cramervonmises": lambda r, c, std: cramervonmises_from_cdf(r, c),
    "anderson": lambda r, c, std: anderson_from_cdf(r, c),
}


#: Values of both windows together up to which exact sketches are expanded back into their data.
_EXPAND_MAX = 1 << 20


def _expand(cdf: CdfBounds) -> np.ndarray:
    """The sorted data an exact :class:`CdfBounds` describes."""
    return np.repeat(cdf.values, np.diff(np.r_[0, cdf.lo]))


def applies(test: str, kind: str) -> bool:
    """Whether a blanket policy test fits a column kind."""
    spec_kind = TESTS[test].kind
    if spec_kind == "any":
        return True
    if spec_kind == "numerical":
        return kind == NUMERICAL
    return kind == CATEGORICAL


def n_unique(kind: str, rc, cc, ref_sorted, cur_sorted, ref_distinct: int | None, cap: int = 6) -> int:
    """Distinct values over reference and current, counted up to ``cap`` (all the auto rule needs).

    ``ref_distinct``: the reference's own, counted up to ``cap`` at the precision the two are compared at
    (:meth:`DriftDetector._distinct_at`), or None.
    """
    if kind == CATEGORICAL:
        # values outside the reference dictionary (in either window: a reference may be a window profiled
        # like= another) are at least one more value
        return len(set(rc.counts.keys()) | set(cc.counts.keys())) + (1 if cc.unseen_count or rc.unseen_count else 0)
    # values are told apart at the precision of the less precise window (see _few_value_counts)
    rounding = _coarsest_float(rc.dtype, cc.dtype)
    if ref_sorted is not None and cur_sorted is not None:
        if ref_distinct is not None and ref_distinct >= cap:
            return cap
        if _on_device(ref_sorted):
            from cudrift.backends._gpu import n_unique_sorted
            return n_unique_sorted(ref_sorted, cur_sorted, cap, rounding)
        r = ref_sorted[np.r_[True, ref_sorted[1:] != ref_sorted[:-1]]] if ref_sorted.size else ref_sorted
        c = cur_sorted[np.r_[True, cur_sorted[1:] != cur_sorted[:-1]]] if cur_sorted.size else cur_sorted
        return int(min(cap, np.union1d(_rounded(r, rounding), _rounded(c, rounding)).size))
    # Sketch values are real data values, so their union is a lower bound on
    # the distinct count (and exact for the few-values case that matters). A
    # reference sketch that is not exact holds fewer points than the reference
    # has values (quantile_k 2 keeps 3 of 101): not a few-valued column.
    rb = rc.quantiles.cdf_bounds()
    if not rb.is_exact:
        return cap
    vals = np.union1d(_rounded(rb.values, rounding),
                      _rounded(cc.quantiles.cdf_bounds().values, rounding))
    return int(min(cap, vals.size))


def _aligned_category_counts(rc: CategoricalColumnProfile,
                             cc: CategoricalColumnProfile) -> tuple[np.ndarray, np.ndarray]:
    """Counts on the reference's categories plus one "other" bin.

    A current window profiled like the reference counts the reference's
    categories exactly and everything else as ``unseen_count``; the
    reference's own rare tail (folded past ``max_categories``) is the same
    "not in the dictionary" mass, and so is the ``unseen_count`` of a
    reference that is itself such a window (last week's, profiled like= the
    same reference): each side's mass meets the other's in the "other" bin.
    """
    keys = list(rc.counts.keys())
    r = np.array([rc.counts[k] for k in keys], dtype=np.float64)
    c = np.array([cc.counts[k] if k in cc.counts else 0 for k in keys], dtype=np.float64)
    r_other, c_other = rc.unseen_count + rc.counts.folded, cc.unseen_count + cc.counts.folded
    if r_other or c_other:
        r = np.append(r, r_other)
        c = np.append(c, c_other)
    return r, c


def _value_counts(b: CdfBounds) -> tuple[np.ndarray, np.ndarray]:
    """Each support point of ``b`` and its count: exact for exact bounds, else from the bounds' midpoints."""
    return b.values, np.diff(np.r_[0.0, (b.lo + b.hi) / 2.0])


def on_union(ref: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two ``(values, counts)`` pairs as count vectors over the union of their values."""
    u = np.union1d(ref[0], cur[0])
    out = []
    for values, counts in (ref, cur):
        v = np.zeros(u.size, dtype=np.float64)
        v[np.searchsorted(u, values)] = counts
        out.append(v)
    return out[0], out[1]


def _few_value_counts(rc: NumericColumnProfile, cc: NumericColumnProfile, ref_sorted, cur_sorted,
                      cap: int = FEW_DISTINCT) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Counts of each distinct finite value over both windows, or None past ``cap`` distinct values.

    The reference histogram gives each of a few reference values a bin of
    its own, but a current value the reference never had lands in a
    neighbour's bin (0.2 in 0's, 0.8 in 1's), so tests on those bins cannot
    see the values change: counted per value, they can. Values are matched
    at the precision of the less precise window (a float32 window's 0.1 is
    the float64 reference's 0.1). Returns the two count vectors and whether
    they are exact (from sorted values, or from exact sketches); otherwise
    they are estimates from the quantile sketches, used only when the
    current window holds a value the reference lacks (where the histogram's
    exact counts see the same bins).
    """
    rounding = _coarsest_float(rc.dtype, cc.dtype)
    rb, cb = rc.quantiles.cdf_bounds(), cc.quantiles.cdf_bounds()
    # sketch points are data values: more than cap of them, more than cap distinct values
    if np.union1d(_rounded(rb.values, rounding), _rounded(cb.values, rounding)).size > cap:
        return None
    if ref_sorted is not None and cur_sorted is not None:
        if _on_device(ref_sorted):
            from cudrift.backends._gpu import distinct_with_counts_sorted
            r = distinct_with_counts_sorted(ref_sorted, cap, rounding)
            c = distinct_with_counts_sorted(cur_sorted, cap, rounding)
        else:
            r, c = (_value_counts(CdfBounds.from_sorted(x)) for x in (ref_sorted, cur_sorted))
        if r is None or c is None:
            return None
        r, c = _at_precision(r, rounding), _at_precision(c, rounding)
        if np.union1d(r[0], c[0]).size > cap:
            return None
        return (*on_union(r, c), True)
    if not rb.is_exact:
        return None  # more reference values than its sketch's points: not few (see n_unique)
    exact = cb.is_exact
    r, c = _at_precision(_value_counts(rb), rounding), _at_precision(_value_counts(cb), rounding)
    if r[0].size + c[0].size == 0 or (not exact and np.isin(c[0], r[0]).all()):
        return None
    return (*on_union(r, c), exact)


def _coarsest_float(*dtypes: str | None):
    """float16 or float32 when a window's dtype (``"float32"``, ``"float32|float64"``...) has one, else None."""
    names = "|".join(d or "" for d in dtypes)
    return np.float16 if "float16" in names else np.float32 if "float32" in names else None


def held_at(dtype: str | None, rounding) -> bool:
    """Whether every value of a column of profile dtype ``dtype`` (``"float32"``, ``"float16|float32"``...) is a
    value of the float type ``rounding``: rounding its values changes nothing (a float32 reference kept sorted
    as float64, compared with a float32 window)."""
    return rounding is not None and all(
        part in ("float16", "float32") and np.dtype(part).itemsize <= np.dtype(rounding).itemsize
        for part in (dtype or "").split("|"))


def _rounded(values: np.ndarray, dtype) -> np.ndarray:
    """Values in any order rounded to ``dtype`` (None: as they are), as float64; those past its range keep their
    own (see :func:`sorted_at_precision`)."""
    if dtype is None:
        return values
    values = np.asarray(values)
    with np.errstate(over="ignore"):
        r = values.astype(dtype).astype(np.float64)
    return _past_range_kept(values, r, np)


def _past_range_kept(x, r, xp):
    """``r`` (``x`` rounded to a narrower float type) with the values past that type's range, which rounding made
    infinite, back to their own."""
    return xp.where(xp.isinf(r) & ~xp.isinf(x), x, r)


def sorted_at_precision(x, dtype):
    """Sorted values (host or device) rounded to ``dtype`` (None: as they are), as float64: still sorted, since
    rounding is monotone. A float32 window's values and a float64 reference's are compared this way at the
    window's precision: its 0.1 is the reference's 0.1, where a rank test saw two values (a KS of 0.04 between
    two windows of one rounded feature, and PSI 0.63 before the histograms were counted so too). Values past
    ``dtype``'s range keep their own (no value of ``dtype`` equals them, so the order and the ties stay)."""
    if dtype is None or x.dtype == dtype:
        return x
    with np.errstate(over="ignore"):
        r = x.astype(dtype).astype(np.float64)
    if r.size and (bool(r[0] == -np.inf) or bool(r[-1] == np.inf)):
        # (sorted: only the ends can pass the type's range; the rare case pays the passes over the whole array)
        r = _past_range_kept(x, r, np if isinstance(x, np.ndarray) else __import__("cupy"))
    return r


def _cdf_at_precision(b: CdfBounds, dtype) -> CdfBounds:
    """``b`` for its data rounded to ``dtype``: the bounds at the last point of each run of points that round to
    one value (rounding is monotone, so the data between two points rounds between their rounded values)."""
    if dtype is None or b.values.size == 0:
        return b
    v = _rounded(b.values, dtype)
    last = np.flatnonzero(np.r_[v[1:] != v[:-1], True])
    return CdfBounds(v[last], b.lo[last], b.hi[last], b.n)


def _at_precision(pair: tuple[np.ndarray, np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(values, counts)`` with the values rounded to ``dtype`` and the counts of equal ones added."""
    if dtype is None:
        return pair
    u, inv = np.unique(_rounded(pair[0], dtype), return_inverse=True)
    return u, np.bincount(inv, weights=pair[1], minlength=u.size)


def _coarser_window(rc: NumericColumnProfile, cc: NumericColumnProfile):
    """The float type a window holds more coarsely than its reference (float32, float16), or None: the window's
    values were binned at that precision (float32 thresholds), the reference's (float64, int64, float32 for a
    float16 window, or some of each) were not. A window of some float32 and some float64 parts (``"float32|float64"``, merged) gives its type too:
    only some of its values were binned so."""
    coarse = _coarsest_float(cc.dtype)
    # (a float32 reference is finer than a float16 window: its values are not all float16 values)
    return coarse if coarse is not None and not held_at(rc.dtype, coarse) else None


def _histogram_counts(rc: NumericColumnProfile, cc: NumericColumnProfile,
                      ref_sorted=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """The two histograms' counts, the reference's at a coarser window's precision, and whether that is exact.

    A float32 (or float16) window's values are binned on the edges rounded
    to float32 (``Histogram``); a float64 reference finer than that was
    binned on the edges themselves. With its sorted values, the reference is
    counted again as the window would hold it (rounded, on the window's
    thresholds): exact. From its profile alone, bins whose opening edges
    round to one float32 are merged in both (the window's bins between them
    are empty by construction): values near an edge may still have rounded
    across it, so the counts are estimates (a float32 window of values about
    1e6 with a spread of 0.5, finer than float32's 0.0625 there, gave PSI
    3.79 with the float64 counts, 0.015 merged, 0 recounted).
    """
    if rc.histogram is None or cc.histogram is None:
        if (rc.histogram is None and rc.finite_count == 0) or (cc.histogram is None and cc.finite_count == 0):
            raise EmptyInputError("the reference column has no histogram (no finite reference values)")
        # both hold values: a column new to the reference both windows were profiled like= gets no edges
        raise EmptyInputError("the column has no histogram edges: it is new to the reference profile its windows "
                              "were made like=, so only a test from the quantile sketch (ks, wasserstein, "
                              "cramervonmises, anderson) or the moments (ttest) compares it")
    r, c = rc.histogram.counts.astype(np.float64), cc.histogram.counts.astype(np.float64)
    coarse = _coarser_window(rc, cc)
    if coarse is None:
        return r, c, True
    if ref_sorted is not None and cc.dtype in ("float32", "float16"):
        # (a window of float32 and float64 parts binned only some values so: no recount is its counterpart)
        return _recounted(rc.histogram.edges, ref_sorted, coarse), c, True
    t = rc.histogram._thresholds(coarse)[0]  # (the edges the window's values were binned on)
    # bins 1..k-1 are opened by t[0..k-2]; one whose opening edge equals the last one's starts no group
    opens = np.r_[True, True, t[1:-1] != t[:-2], True]
    starts = np.flatnonzero(opens)
    return np.add.reduceat(r, starts), np.add.reduceat(c, starts), bool(opens.all())


def _recounted(edges: np.ndarray, ref_sorted, coarse) -> np.ndarray:
    """Histogram counts of sorted reference values (host or device) already rounded to the window's float type
    ``coarse`` (:func:`sorted_at_precision`), binned as its values are (``Histogram``'s thresholds for it)."""
    from cudrift.backends import _gpu_host as gh
    from cudrift.sketches.histogram import Histogram

    h = Histogram.empty(edges)
    # (on the thresholds of the window's type: the rounded values are compared with them as they are, values
    # past the type's range falling in the overflow bin as a window's infinities would)
    if isinstance(ref_sorted, np.ndarray):
        h._update_sorted_trusted(ref_sorted, coarse)
    else:
        import cupy

        from cudrift.backends import _gpu

        counts = cupy.asnumpy(cupy.concatenate(_gpu.histogram_search(h, ref_sorted, precision=coarse)))
        gh.add_histogram_bounds(h, counts[:-1], int(counts[-1]), int(ref_sorted.shape[0]))
    return h.counts.astype(np.float64)


def _binary(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used = np.flatnonzero((r + c) > 0)
    if used.size > 2:
        raise SchemaError(f"a binary test needs at most 2 distinct values, the column has {used.size}")
    if used.size == 1:
        return np.array([r[used[0]], 0.0]), np.array([c[used[0]], 0.0])
    return r[used], c[used]


# Sample tests that reach _from_sample (not in _FROM_CDF) and whose public function takes ``backend=``.
_BACKEND_AWARE = frozenset({"energy_distance", "mmd"})


def _ttest_from_moments(rc: NumericColumnProfile, cc: NumericColumnProfile) -> TestResult:
    a, b = rc.moments, cc.moments
    if a.count < 2 or b.count < 2:
        raise EmptyInputError("Welch's t-test needs at least 2 finite values in each window")
    if _rounding_moves_the_mean(a, b, _coarsest_float(rc.dtype, cc.dtype) if rc.dtype != cc.dtype else None):
        # one window holds the other's values more coarsely, by enough to move the t statistic (1e6 + {0, 0.01}
        # in float32 is 1e6: t 141 on one distribution): the samples are compared at the coarser precision
        res = _from_sample("ttest", rc, cc)
        return dataclasses.replace(res, details={**res.details, "moments_at_other_precisions": True})
    if not (_usable_std(a.std, lambda: a.min == a.max) and _usable_std(b.std, lambda: b.min == b.max)):
        # the moments' squares overflowed (values past ~1e154) or are subnormal (spread below ~1e-154): their
        # variance is inf, 0 or a few digits off, so the t-test runs on the samples (which rescale their values;
        # statistic_error NaN unless a sample is its whole window)
        res = _from_sample("ttest", rc, cc)
        return dataclasses.replace(res, details={**res.details, "moments_unusable": True})
    res = _ttest_ind_from_stats(a.mean, math.sqrt(a.var(ddof=1)), int(a.count),
                                b.mean, math.sqrt(b.var(ddof=1)), int(b.count), diff_lo=a.mean_lo - b.mean_lo)
    return dataclasses.replace(res, details={**res.details, "from_moments": True})


def _rounding_moves_the_mean(a, b, coarse) -> bool:
    """Whether rounding to ``coarse`` (None: no rounding) is coarse against the data's spread: half the type's
    spacing at the largest magnitude past 1% of the smaller standard deviation (N(50, 5) in float32: 2e-6
    against 5; 1e6 + {0, 0.01}: 0.03 against 0.005). Below that, rounding moves values by amounts that average
    out, as any measurement noise; past it, the values' own steps are rounded away and the mean moves."""
    if coarse is None:
        return False
    big = max(abs(a.min), abs(a.max), abs(b.min), abs(b.max))
    with np.errstate(over="ignore"):
        half = float(np.spacing(coarse(big))) / 2  # (inf past the type's range)
    return not half <= 0.01 * min(a.std, b.std)


def _from_sample(test: str, rc: NumericColumnProfile, cc: NumericColumnProfile, backend: str = "cpu") -> TestResult:
    rounding = _coarsest_float(rc.dtype, cc.dtype)  # (ties matter to the rank tests run on samples)
    x, y = _rounded(rc.sample.values, rounding), _rounded(cc.sample.values, rounding)
    if x.size == 0 or y.size == 0:
        raise EmptyInputError("no sampled values to test")
    func = TESTS[test].func
    if test in _BACKEND_AWARE:
        # the samples are host arrays: only MMD (pairs of all points) goes to
        # the detector's GPU; CUDRIFT_BACKEND never overrides the detector
        res = func(x, y, backend=backend if test == "mmd" else "cpu")
    else:
        res = func(x, y)
    details = {**res.details, "from_sample": True, "sample_sizes": [int(x.size), int(y.size)]}
    exact = x.size == rc.moments.count and y.size == cc.moments.count
    statistic, n_ref, n_cur = res.statistic, res.n_reference, res.n_current
    if test == "mannwhitneyu" and not exact:
        # U counts pairs, so on samples it is on the samples' scale (at most their sizes' product): scaled to
        # the windows' sizes it estimates the windows' U, comparable across windows and with an exact result,
        # and reported with those sizes (U / (n_reference * n_current) stays the probability it estimates)
        statistic *= (rc.moments.count / x.size) * (cc.moments.count / y.size)
        n_ref, n_cur = rc.moments.count, cc.moments.count
        details["statistic_scaled_from"] = float(res.statistic)
    return TestResult(statistic, res.pvalue, res.method, n_ref, n_cur, 0.0 if exact else math.nan, details)


def reads_sorted(test: str, both_kept: bool) -> bool:
    """Whether :func:`run_test` reads a column's sorted reference values for ``test`` (so that they are worth
    rounding to a window's precision first): the count and CDF tests always, MMD never (it runs on the
    samples), the others only where the window is kept sorted too (else the t-test reads the moments and the
    rank tests the samples)."""
    if test == "mmd":
        return False
    return TESTS[test].input == "counts" or test in _FROM_CDF or both_kept


#: Windows drawn from one distribution per :func:`null_drift` estimate (a share near 5% is then known to about
#: +-1.5%, its binomial standard error); fewer over many categories (50 over 10,000). The first
#: ``_NULL_FIRST`` decide whether the rest are needed.
_NULL_DRAWS = 200
_NULL_FIRST = 50
_NULL_VALUES = 500_000


def null_drift(test: str, r: np.ndarray, c: np.ndarray, statistic: float) -> tuple[float, float]:
    """How often two windows of these sizes drawn from one distribution give ``statistic`` or more under the count
    distance ``test`` (in effect the distance's p-value), and the distance such windows stay below 95% of the
    time.

    A histogram distance has a floor of noise that grows with the bins (or
    categories) holding values and shrinks with the windows: PSI over k
    equally filled bins averages about ``(k - 1) * (1/n + 1/m)`` between
    windows of n and m values of one distribution (0.13 for 100 bins and
    1,500 values a side, past Evidently's threshold of 0.1), and the
    Jensen-Shannon distance about the square root of an eighth of that. The
    two count vectors are drawn again, multinomial with their own totals,
    from their pooled shares (the distribution they would share without
    drift; a fixed seed, so that a report is reproducible), and measured as
    ``r`` and ``c`` were. Where none of the first ``_NULL_FIRST`` draws
    reaches ``statistic`` (a real shift, far past the noise) the rest are
    not drawn: the share is below 5% but for a 1-in-13 chance. Over sparse
    categories the pooled shares are rougher than the distribution's, and
    the noise is then underestimated.
    """
    r, c = np.asarray(r, dtype=np.float64), np.asarray(c, dtype=np.float64)
    n, m = int(round(r.sum())), int(round(c.sum()))  # (estimated counts are not whole)
    if n < 1 or m < 1 or math.isnan(statistic):
        return math.nan, math.nan
    pooled = (r + c) / (r.sum() + c.sum())
    pooled /= pooled.sum()
    rng = np.random.default_rng(0x5EED)
    func = TESTS[test].func
    draws = max(_NULL_FIRST, min(_NULL_DRAWS, _NULL_VALUES // max(pooled.size, 1)))
    stats = []
    for i in range(draws):
        if i == _NULL_FIRST and max(stats) < statistic:
            break
        stats.append(func(rng.multinomial(n, pooled), rng.multinomial(m, pooled)).statistic)
    stats = np.array(stats, dtype=np.float64)
    return float(np.mean(stats >= statistic)), float(np.nanpercentile(stats, 95))


def _count_test(test: str, kind: str, rc, cc, ref_sorted, cur_sorted) -> tuple[TestResult, np.ndarray, np.ndarray]:
    """A count test's result, and the two count vectors it was computed on."""
    spec = TESTS[test]
    few = _few_value_counts(rc, cc, ref_sorted, cur_sorted) if kind == NUMERICAL else None
    if few is not None:
        r, c, exact = few
    elif kind == NUMERICAL:
        r, c, exact = _histogram_counts(rc, cc, ref_sorted)
    else:
        # (a reference saved before profile() recounted a column past max_categories holds estimated counts)
        (r, c), exact = _aligned_category_counts(rc, cc), rc.counts.max_count_error == 0
    if spec.kind == "binary":
        r, c = _binary(r, c)
    res = spec.func(r, c)
    if few is not None:
        note = {"counts": "per value" if exact else "per value, from sketches"}
    elif exact:
        return res, r, c
    elif kind == CATEGORICAL:
        note = {"reference_counts_estimated": True}
    else:
        note = {"reference_counts": "bins merged at the window's precision"}
    return dataclasses.replace(res, statistic_error=res.statistic_error if exact else math.nan,
                               details={**res.details, **note}), r, c


def run_test(test: str, kind: str, rc, cc, ref_sorted: np.ndarray | None, cur_sorted: np.ndarray | None,
             backend: str = "cpu", rank_stats=None, threshold: float | None = None) -> TestResult:
    """Run ``test`` on one column from its profiles and, where kept, its sorted values.

    Values are compared at the precision of the less precise window (see
    :func:`sorted_at_precision`): the sorted values the caller passes must
    be rounded so already; sketches and samples are rounded here.

    ``rank_stats`` is this column's result of the GPU backend's batched
    ``rank_tests_many`` (device-sorted columns only): its rank statistics
    and KS p-value (or None), used instead of a launch of its own.

    ``threshold``: where a count distance (PSI, Jensen-Shannon, ...) reaches
    it, ``details`` gets how often windows of these sizes drawn from one
    distribution give as much (:func:`null_drift`).
    """
    spec = TESTS[test]
    if spec.input == "counts":
        res, r, c = _count_test(test, kind, rc, cc, ref_sorted, cur_sorted)
        if threshold is not None and not spec.is_pvalue and spec.drifted(res, threshold):
            try:
                share, q95 = null_drift(test, r, c, res.statistic)
            except (CudriftError, ValueError, FloatingPointError):  # (an estimate about the verdict, never its end)
                share = q95 = math.nan
            res = dataclasses.replace(res, details={**res.details, "null_share": share, "null_statistic_q95": q95,
                                                    "n_counts": int(np.count_nonzero(r + c))})
        return res
    if kind != NUMERICAL:
        raise SchemaError(f"{test} needs a numerical column, this one is categorical")
    if test == "ttest" and ref_sorted is not None and cur_sorted is not None and min(ref_sorted.size,
                                                                                       cur_sorted.size) < 2:
        # as _ttest_from_moments says it (before the device branch: the GPU path must say it too)
        raise EmptyInputError("Welch's t-test needs at least 2 finite values in each window")
    if ref_sorted is not None and _on_device(ref_sorted):
        # the GPU backend keeps sorted columns on the device and tests them there
        from cudrift.backends import _gpu
        if cur_sorted is not None and test != "mmd":
            stats, ks_pvalue = rank_stats if rank_stats is not None else (None, None)
            return _gpu.run_sorted_test(test, ref_sorted, cur_sorted, rc.moments.std, stats=stats,
                                        ks_pvalue=ks_pvalue)
        # below, only the CDF-bound tests read the reference's values (MMD and
        # the sample tests use the samples, the t-test the moments)
        ref_sorted = _gpu.to_host(ref_sorted) if test in _FROM_CDF else None
    if test == "ttest":
        if ref_sorted is not None and cur_sorted is not None:
            return spec.func_sorted(_f64(ref_sorted), _f64(cur_sorted))  # exact, as SciPy on the values
        return _ttest_from_moments(rc, cc)
    if test == "mmd":
        return _from_sample(test, rc, cc, backend)
    if ref_sorted is not None and cur_sorted is not None:
        if test == "wasserstein_normalized":
            return spec.func_sorted(_f64(ref_sorted), _f64(cur_sorted), reference_std=rc.moments.std)
        return spec.func_sorted(_f64(ref_sorted), _f64(cur_sorted))
    if test in _FROM_CDF:
        rounding = _coarsest_float(rc.dtype, cc.dtype)
        ref_cdf = CdfBounds.from_sorted(ref_sorted) if ref_sorted is not None else _cdf_at_precision(
            rc.quantiles.cdf_bounds(), rounding)
        cur_cdf = _cdf_at_precision(cc.quantiles.cdf_bounds(), rounding)
        if ref_cdf.is_exact and cur_cdf.is_exact and ref_cdf.n + cur_cdf.n <= _EXPAND_MAX:
            # Exact sketches hold every value with its count: the raw-data path, small-sample p-values
            # included (the CDF path's asymptotic ones are poor at a few values per side).
            a, b = _expand(ref_cdf), _expand(cur_cdf)
            if test == "wasserstein_normalized":
                return spec.func_sorted(a, b, reference_std=rc.moments.std)
            return spec.func_sorted(a, b)
        std = rc.moments.std
        if test != "wasserstein_normalized" or _usable_std(std, lambda: rc.moments.min == rc.moments.max):
            return _FROM_CDF[test](ref_cdf, cur_cdf, std)  # (only the normalized distance reads std)
        # the moments' squares overflowed (|values| past ~1e154) or are subnormal (spread below ~1e-154):
        # take the scale from the kept points instead, scaled so the squares stay finite and normal
        if ref_sorted is not None:
            return _FROM_CDF[test](ref_cdf, cur_cdf, _std(ref_sorted))
        # From the reference's sample the scale is an estimate that no bound covers: the distance's bound
        # (statistic_error) then no longer holds, so it is NaN, as for the tests run on samples.
        res = _FROM_CDF[test](ref_cdf, cur_cdf, _std(np.sort(rc.sample.values)))
        return dataclasses.replace(res, statistic_error=math.nan,
                                   details={**res.details, "reference_std_from_sample": True})
    return _from_sample(test, rc, cc)


def _on_device(x: object) -> bool:
    """Whether sorted values are a device array (kept by the GPU backend)."""
    return hasattr(x, "__cuda_array_interface__")


def _f64(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.float64 else x.astype(np.float64)
