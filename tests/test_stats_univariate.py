"""Raw-array two-sample tests against scipy.stats, their sorted fast paths, and input validation.

Data is fresh per test (the ``rng`` fixture seeds from the test id and a
per-process hash seed), with ties, discrete values and heavy tails, in
float32 and float64, small sizes (exact p-values) and large ones. SciPy is
always run on the float64 values we compute on (for float32 input SciPy
computes some tests in float32).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

from cudrift.errors import EmptyInputError, SchemaError
from cudrift.stats import (
    TESTS,
    anderson_ksamp,
    cramervonmises_2samp,
    energy_distance,
    epps_singleton_2samp,
    ks_2samp,
    ks_2samp_sorted,
    mannwhitneyu,
    ttest_ind,
    wasserstein_distance,
    wasserstein_normalized,
)

RTOL = 1e-9
# SciPy's p-values reach subnormal numbers, where relative accuracy ends
ATOL = 1e-300


def close(ours, theirs, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(float(ours), float(theirs), rtol=rtol, atol=atol, equal_nan=True)


def _gen(kind: str, rng, n: int, shift: float) -> np.ndarray:
    if kind == "normal":
        x = rng.normal(shift, 1.0, n)
    elif kind == "ties":
        x = np.round(rng.normal(shift, 1.0, n), 1)
    elif kind == "discrete":
        x = rng.integers(0, 6, n) + np.round(shift)
    elif kind == "cauchy":
        x = rng.standard_cauchy(n) + shift
    elif kind == "pareto":
        x = rng.pareto(1.2, n) * (1.0 + shift)
    else:
        raise AssertionError(kind)
    return x


KINDS = ["normal", "ties", "discrete", "cauchy", "pareto"]
SMALL = [(5, 7), (8, 8), (12, 20), (25, 30)]
MEDIUM = [(400, 300)]
LARGE = [(20_000, 15_000)]


def _pair(rng, kind, sizes, dtype, shift=None):
    n1, n2 = sizes
    if shift is None:
        shift = float(rng.choice([0.0, 0.3]))
    x = _gen(kind, rng, n1, 0.0).astype(dtype)
    y = _gen(kind, rng, n2, shift).astype(dtype)
    return x, y, x.astype(np.float64), y.astype(np.float64)


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


cases = pytest.mark.parametrize(
    "kind,sizes,dtype",
    [(k, s, d) for k in KINDS for s in SMALL + MEDIUM + LARGE for d in (np.float64, np.float32)],
)


@cases
def test_ks_matches_scipy(rng, kind, sizes, dtype):
    x, y, x64, y64 = _pair(rng, kind, sizes, dtype)
    methods = ["auto", "asymp"] + (["exact"] if max(sizes) <= 400 else [])
    for alternative in ("two-sided", "less", "greater"):
        for method in methods:
            ours = ks_2samp(x, y, alternative, method)
            ref = _quiet(st.ks_2samp, x64, y64, alternative, method)
            close(ours.statistic, ref.statistic)
            close(ours.pvalue, ref.pvalue)
            assert ours.method == "ks"
            assert (ours.n_reference, ours.n_current) == sizes


@cases
def test_anderson_matches_scipy(rng, kind, sizes, dtype):
    x, y, x64, y64 = _pair(rng, kind, sizes, dtype)
    for variant in ("midrank", "right", "continuous"):
        ours = anderson_ksamp(x, y, variant=variant)
        ref = _quiet(st.anderson_ksamp, [x64, y64], variant=variant)
        # A2 = (A2kN - 1) / sigma cancels near 0; SciPy's own value carries
        # an absolute rounding error of that size
        close(ours.statistic, ref.statistic, atol=1e-12)
        close(ours.pvalue, ref.pvalue)
        assert ours.details["pvalue_clipped"] == (ref.pvalue in (0.25, 0.001))


@cases
def test_cramervonmises_matches_scipy(rng, kind, sizes, dtype):
    x, y, x64, y64 = _pair(rng, kind, sizes, dtype)
    methods = ["auto", "asymptotic"] + (["exact"] if max(sizes) <= 20 else [])
    for method in methods:
        ours = cramervonmises_2samp(x, y, method)
        ref = st.cramervonmises_2samp(x64, y64, method)
        close(ours.statistic, ref.statistic)
        if ours.details["pvalue_method"] == "exact" or ref.pvalue >= 1e-3:
            close(ours.pvalue, ref.pvalue)
        else:
            # SciPy's 1 - cdf has lost digits here (1e-8 relative at 1e-5, all of them past 1e-11)
            close(ours.pvalue, _cvm_sf_reference(_cvm_normalized(ours.statistic, *sizes)), rtol=1e-12)


@cases
def test_epps_singleton_matches_scipy(rng, kind, sizes, dtype):
    x, y, x64, y64 = _pair(rng, kind, sizes, dtype)
    if st.iqr(np.concatenate((x64, y64))) == 0:
        with pytest.raises(ValueError, match="interquartile range"):
            epps_singleton_2samp(x, y)
        return
    ours = epps_singleton_2samp(x, y)
    ref = _quiet(st.epps_singleton_2samp, x64, y64)
    close(ours.statistic, ref.statistic)
    close(ours.pvalue, ref.pvalue)


@cases
def test_mannwhitneyu_matches_scipy(rng, kind, sizes, dtype):
    x, y, x64, y64 = _pair(rng, kind, sizes, dtype)
    methods = ["auto", "asymptotic"] + (["exact"] if max(sizes) <= 30 else [])
    for alternative in ("two-sided", "less", "greater"):
        for method in methods:
            for cont in (True, False):
                ours = mannwhitneyu(x, y, cont, alternative, method)
                ref = st.mannwhitneyu(x64, y64, cont, alternative, method=method)
                close(ours.statistic, ref.statistic)
                close(ours.pvalue, ref.pvalue)


@cases
def test_ttest_matches_scipy(rng, kind, sizes, dtype):
    x, y, x64, y64 = _pair(rng, kind, sizes, dtype)
    for alternative in ("two-sided", "less", "greater"):
        for equal_var in (False, True):
            ours = ttest_ind(x, y, equal_var, alternative)
            ref = _quiet(st.ttest_ind, x64, y64, equal_var=equal_var, alternative=alternative)
            close(ours.statistic, ref.statistic)
            close(ours.pvalue, ref.pvalue)
            close(ours.details["df"], ref.df)


def test_ttest_default_is_welch(rng):
    x, y = rng.normal(0, 1, 50), rng.normal(0, 3, 80)
    close(ttest_ind(x, y).pvalue, st.ttest_ind(x, y, equal_var=False).pvalue)


@cases
def test_distances_match_scipy(rng, kind, sizes, dtype):
    x, y, x64, y64 = _pair(rng, kind, sizes, dtype)
    close(wasserstein_distance(x, y).statistic, st.wasserstein_distance(x64, y64))
    close(energy_distance(x, y).statistic, st.energy_distance(x64, y64))
    close(wasserstein_normalized(x, y).statistic, st.wasserstein_distance(x64, y64) / np.std(x64))
    wx, wy = rng.random(x.size), rng.random(y.size)
    close(wasserstein_distance(x, y, wx, wy).statistic, st.wasserstein_distance(x64, y64, wx, wy))
    close(energy_distance(x, y, wx, wy).statistic, st.energy_distance(x64, y64, wx, wy))
    for res in (wasserstein_distance(x, y), energy_distance(x, y)):
        assert res.pvalue is None and res.details["kind"] == "distance"


@pytest.mark.parametrize("kind", ["normal", "ties", "discrete"])
def test_large_samples_use_several_merge_chunks(rng, kind):
    # sizes past the threaded chunked merge, with runs of ties across chunk cuts
    x, y, x64, y64 = _pair(rng, kind, (150_000, 90_000), np.float64, shift=0.02)
    for alternative in ("two-sided", "less", "greater"):
        ours, ref = ks_2samp(x, y, alternative), st.ks_2samp(x64, y64, alternative)
        close(ours.statistic, ref.statistic)
        close(ours.pvalue, ref.pvalue)
    close(mannwhitneyu(x, y).pvalue, st.mannwhitneyu(x64, y64).pvalue)
    close(cramervonmises_2samp(x, y).statistic, st.cramervonmises_2samp(x64, y64).statistic)
    close(anderson_ksamp(x, y).statistic, _quiet(st.anderson_ksamp, [x64, y64], variant="midrank").statistic)
    close(wasserstein_distance(x, y).statistic, st.wasserstein_distance(x64, y64))


def test_ks_exact_falls_back_like_scipy(rng):
    # lcm(50021, 50023) overflows SciPy's exact path: both switch to asymp
    x, y = rng.normal(size=50021), rng.normal(0.01, 1, size=50023)
    ours = ks_2samp(x, y, method="exact")
    ref = _quiet(st.ks_2samp, x, y, method="exact")
    close(ours.statistic, ref.statistic)
    close(ours.pvalue, ref.pvalue)
    assert ours.details["pvalue_method"] == "asymp"


def test_ks_accepts_scipy_abbreviations(rng):
    x, y = rng.normal(size=40), rng.normal(size=30)
    assert ks_2samp(x, y, "g").pvalue == ks_2samp(x, y, "greater").pvalue
    assert ks_2samp(x, y, "Less").details["statistic_sign"] == -1


def test_anderson_permutation_method_delegates(rng):
    x, y = rng.normal(size=30), rng.normal(0.5, 1, size=25)
    ours = anderson_ksamp(x, y, method=st.PermutationMethod(n_resamples=99, rng=np.random.default_rng(7)))
    ref = _quiet(
        st.anderson_ksamp, [x, y], variant="midrank",
        method=st.PermutationMethod(n_resamples=99, rng=np.random.default_rng(7)),
    )
    close(ours.pvalue, ref.pvalue)
    assert ours.details["pvalue_clipped"] is False


def test_anderson_normalization_of_a_billion_rows_needs_no_memory_per_row():
    """The Anderson-Darling variance's harmonic sums (Scholz & Stephens eq. 4): added up as SciPy adds them up
    to 2**20 pooled values, in closed form past that; both formulas agree, written out here as sums, and a
    profile of 1e9 rows is standardized without an array per row (SciPy's sums take 8 GB there)."""
    import tracemalloc

    from cudrift.stats import _dist

    def by_sums(N):
        h = sum(1.0 / i for i in range(1, N))
        g = sum(sum(1.0 / j for j in range(i + 1, N)) / (N - i) for i in range(1, N - 1))
        return h, g

    for N in (5, 40, 300):
        assert np.allclose(_dist._ad_harmonic_sums(N), by_sums(N), rtol=1e-13)
    N = _dist._AD_SUM_MAX + 1  # the closed form, against the sums one past its threshold
    hs_cs = (1.0 / np.arange(N - 1, 1, -1)).cumsum()
    assert np.allclose(_dist._ad_harmonic_sums(N), (hs_cs[-1] + 1, (hs_cs / np.arange(2, N)).sum()), rtol=1e-13)
    tracemalloc.start()
    try:
        a2 = _dist.anderson_2samp_normalize(3.0, 6 * 10**8, 4 * 10**8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20 and np.isfinite(a2), peak
    # the standardized statistic tends to (A2akN - 1) / sqrt(var) with var -> 2 (pi^2 - 9) / 3 for k = 2
    assert a2 == pytest.approx((3.0 - 1.0) / np.sqrt(2 * (np.pi**2 - 9) / 3), rel=1e-6)


def test_anderson_clipping_is_reported_not_warned(rng):
    x, y = rng.normal(size=300), rng.normal(2.0, 1, size=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = anderson_ksamp(x, y)
    assert res.pvalue == 0.001 and res.details["pvalue_clipped"] is True


def test_wasserstein_normalized_constant_reference_divides_by_one():
    res = wasserstein_normalized([5.0, 5.0, 5.0], [5.0, 7.0])
    assert res.statistic == pytest.approx(1.0)
    assert res.details["reference_std"] == 0.0 and res.details["normalizer"] == 1.0


# --------------------------------------------------------------------------- fast paths


SAMPLE_TESTS = sorted(name for name, spec in TESTS.items() if spec.input == "sample")


@pytest.mark.parametrize("name", SAMPLE_TESTS)
@pytest.mark.parametrize("kind", ["normal", "ties", "cauchy"])
def test_sorted_fast_path_equals_raw(rng, name, kind):
    x, y, _, _ = _pair(rng, kind, (300, 250), np.float64)
    x[[3, 17]] = [np.nan, np.inf]
    y[5] = -np.inf
    spec = TESTS[name]
    raw = _quiet(spec.func, x, y)
    xs, ys = np.sort(x[np.isfinite(x)]), np.sort(y[np.isfinite(y)])
    fast = _quiet(spec.func_sorted, xs, ys, n_dropped=(2, 1))
    assert raw.method == fast.method == name
    assert raw.details.keys() == fast.details.keys()
    assert raw.details["n_dropped_reference"] == 2 and raw.details["n_dropped_current"] == 1
    assert (raw.n_reference, raw.n_current) == (298, 249)
    if name in ("ttest", "epps_singleton"):
        # these do not sort; the sorted input only changes summation order
        close(fast.statistic, raw.statistic, rtol=1e-12)
        close(fast.pvalue, raw.pvalue, rtol=1e-12)
    else:
        assert fast.statistic == raw.statistic
        assert fast.pvalue == raw.pvalue
        assert fast.details == raw.details


def test_sorted_path_skips_validation_but_checks_options(rng):
    xs, ys = np.sort(rng.normal(size=50)), np.sort(rng.normal(size=40))
    with pytest.raises(ValueError, match="Invalid value for alternative: 'sideways'"):
        ks_2samp_sorted(xs, ys, alternative="sideways")


# --------------------------------------------------------------------------- validation


RAW = {
    "ks": lambda x, y: ks_2samp(x, y),
    "anderson": lambda x, y: anderson_ksamp(x, y),
    "cramervonmises": lambda x, y: cramervonmises_2samp(x, y),
    "epps_singleton": lambda x, y: epps_singleton_2samp(x, y),
    "mannwhitneyu": lambda x, y: mannwhitneyu(x, y),
    "ttest": lambda x, y: ttest_ind(x, y),
    "wasserstein": lambda x, y: wasserstein_distance(x, y),
    "wasserstein_normalized": lambda x, y: wasserstein_normalized(x, y),
    "energy_distance": lambda x, y: energy_distance(x, y),
}
GOOD = np.linspace(-1.0, 1.0, 12)


@pytest.mark.parametrize("name", sorted(RAW))
@pytest.mark.parametrize(
    "bad,what",
    [([], "empty"), ([np.nan, np.nan], "NaN"), ([np.inf, -np.inf], "inf"), ([np.nan, np.inf], "mixed")],
)
def test_empty_after_cleaning_names_the_sample(name, bad, what):
    with pytest.raises(EmptyInputError, match="current"):
        RAW[name](GOOD, bad)
    with pytest.raises(EmptyInputError, match="reference"):
        RAW[name](bad, GOOD)


@pytest.mark.parametrize("name", sorted(RAW))
def test_two_dimensional_input_is_rejected(name):
    with pytest.raises(SchemaError, match="1-D"):
        RAW[name](GOOD.reshape(3, 4), GOOD)


@pytest.mark.parametrize("name", sorted(RAW))
def test_non_numeric_input_is_rejected(name):
    with pytest.raises(ValueError, match="real numbers"):
        RAW[name](np.array(["a", "b", "c"]), GOOD)


@pytest.mark.parametrize("name", sorted(RAW))
def test_text_that_parses_as_numbers_is_rejected_in_any_container(name):
    """Text in an object array or a pandas Series was parsed ("1_000" as 1000, " 7 " as 7, "nan" dropped) where
    the same text in a NumPy string array is refused."""
    pd = pytest.importorskip("pandas")
    text = ["1.5", "nan", "1_000", " 7 ", "2"]
    for x in (np.array(text, dtype=object), pd.Series(text), pd.Series(text, dtype="string")):
        with pytest.raises(ValueError, match="real numbers, got text such as '1.5'"):
            RAW[name](x, GOOD)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: ks_2samp(GOOD, GOOD, alternative="sideways"), "Invalid value for alternative: 'sideways'"),
        (lambda: ks_2samp(GOOD, GOOD, alternative=3), "Invalid value for alternative: 3"),
        (lambda: ks_2samp(GOOD, GOOD, method="fast"), "Invalid value for method: 'fast'"),
        (lambda: anderson_ksamp(GOOD, GOOD, variant="left"), "Invalid value for variant: 'left'"),
        (lambda: anderson_ksamp(GOOD, GOOD, method="perm"), "Invalid value for method: 'perm'"),
        (lambda: cramervonmises_2samp(GOOD, GOOD, "asymp"), "Invalid value for method: 'asymp'"),
        (lambda: mannwhitneyu(GOOD, GOOD, alternative="sideways"), "Invalid value for alternative: 'sideways'"),
        (lambda: mannwhitneyu(GOOD, GOOD, method="perm"), "Invalid value for method: 'perm'"),
        (lambda: mannwhitneyu(GOOD, GOOD, use_continuity=1), "Invalid value for use_continuity: 1"),
        (lambda: ttest_ind(GOOD, GOOD, alternative="sideways"), "Invalid value for alternative: 'sideways'"),
        (lambda: ttest_ind(GOOD, GOOD, equal_var="yes"), "Invalid value for equal_var: 'yes'"),
        (lambda: epps_singleton_2samp(GOOD, GOOD, t=(0.4, -1.0)), "Invalid value for t"),
        (lambda: epps_singleton_2samp(GOOD, GOOD, t=[[0.4]]), "t must be 1d"),
        (lambda: wasserstein_distance(GOOD, GOOD, [1.0, 2.0]), "weights"),
        (lambda: wasserstein_distance(GOOD, GOOD, -np.ones(12)), "non-negative"),
        (lambda: energy_distance(GOOD, GOOD, None, np.zeros(12)), "positive sum"),
    ],
)
def test_bad_options_raise_value_error_echoing_the_value(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: cramervonmises_2samp([1.0], [1.0, 2.0]), "at least 2 values"),
        (lambda: epps_singleton_2samp([1.0, 2.0, 3.0, 4.0], GOOD), "at least 5 values"),
        (lambda: epps_singleton_2samp(np.zeros(10), np.r_[np.zeros(9), 1.0]), "interquartile range"),
        (lambda: anderson_ksamp([1.0], [2.0, 3.0]), "at least 4 observations"),
        (lambda: anderson_ksamp([1.0, 1.0], [1.0, 1.0]), "more than one distinct"),
    ],
)
def test_too_little_data_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_nonfinite_values_are_dropped_and_counted(rng):
    x = rng.normal(size=100)
    y = rng.normal(size=80)
    xd = np.r_[x, np.nan, np.inf]
    yd = np.r_[-np.inf, y, np.nan, np.nan]
    res = ks_2samp(xd, yd)
    assert res.details["n_dropped_reference"] == 2 and res.details["n_dropped_current"] == 3
    assert (res.n_reference, res.n_current) == (100, 80)
    assert res.statistic == ks_2samp(x, y).statistic


def test_weights_of_dropped_values_are_dropped(rng):
    x, y = rng.normal(size=20), rng.normal(size=15)
    wx, wy = rng.random(20), rng.random(15)
    res = wasserstein_distance(np.r_[x, np.nan], y, np.r_[wx, 5.0], wy)
    close(res.statistic, st.wasserstein_distance(x, y, wx, wy))


def test_ttest_degenerate_samples_follow_scipy():
    for equal_var in (False, True):
        ours = ttest_ind([1.0], [2.0, 3.0, 4.5], equal_var=equal_var)
        ref = _quiet(st.ttest_ind, [1.0], [2.0, 3.0, 4.5], equal_var=equal_var)
        close(ours.statistic, ref.statistic)
        close(ours.pvalue, ref.pvalue)
    ours = ttest_ind([2.0, 2.0], [2.0, 2.0])
    assert np.isnan(ours.statistic) and np.isnan(ours.pvalue)


@pytest.mark.parametrize("name", SAMPLE_TESTS)
def test_float32_input_is_computed_in_float64(rng, name):
    x = rng.normal(size=200).astype(np.float32)
    y = rng.normal(0.2, 1.0, size=150).astype(np.float32)
    func = TESTS[name].func
    a, b = _quiet(func, x, y), _quiet(func, x.astype(np.float64), y.astype(np.float64))
    assert a.statistic == b.statistic and a.pvalue == b.pvalue


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_normalized_wasserstein_is_scale_free_at_far_scales(rng, scale):
    """Squares of values near 1e-200 underflow to 0: the reference is not constant for all that."""
    import cudrift

    a, b = rng.normal(size=700), rng.normal(0.4, 1, 500)
    unit = wasserstein_normalized(a, b).statistic
    assert wasserstein_normalized(a * scale, b * scale).statistic == pytest.approx(unit, rel=1e-9)
    ref, cur = {"x": a * scale}, {"x": b * scale}
    data = cudrift.DriftDetector(ref, policy="wasserstein_normalized").compare(cur)["x"]
    reference = cudrift.profile(ref)
    profiles = cudrift.DriftDetector(reference, policy="wasserstein_normalized").compare(
        cudrift.profile(cur, like=reference))["x"]
    assert data.statistic == pytest.approx(unit, rel=1e-9) and data.drifted
    assert abs(profiles.statistic - unit) <= profiles.statistic_error + 1e-9 and profiles.drifted


@pytest.mark.parametrize("sizes", [(30_000, 20_000), (20_000, 20_000), (40_000, 3)])
def test_wasserstein_of_large_samples_near_the_float64_limit(rng, sizes):
    """The merge-free form (past FAST_MIN values) weights by up to n_a n_b: it must not overflow where SciPy
    does not."""
    import warnings as _warnings

    import cudrift
    from cudrift.stats import wasserstein_distance_sorted

    big = np.finfo(np.float64).max
    ref = np.sort(rng.normal(size=sizes[0]))
    cur = np.zeros(sizes[1])
    cur[: max(1, sizes[1] // 10)] = big  # a sentinel value in 10% of the rows
    cur = np.sort(cur)
    want = st.wasserstein_distance(ref, cur)
    assert np.isfinite(want)
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")  # no overflow warning either
        got = wasserstein_distance_sorted(ref, cur).statistic
    assert got == pytest.approx(want, rel=1e-12)
    assert wasserstein_distance(ref, cur).statistic == pytest.approx(want, rel=1e-12)
    wn = wasserstein_normalized(ref, cur).statistic
    assert wn == pytest.approx(want / np.std(ref), rel=1e-9)
    # and the detector counts it as drift, as it counts an infinite distance
    rep = cudrift.DriftDetector({"x": ref}, policy="wasserstein_normalized", backend="cpu").compare({"x": cur})
    assert rep["x"].statistic == pytest.approx(wn, rel=1e-9) and rep["x"].drifted


def test_an_infinite_distance_is_drift_and_nan_is_no_verdict():
    """Values of opposite sign near the limit: the distance itself is past float64 (inf, as SciPy's)."""
    from cudrift.stats import TESTS, TestResult

    a, b = np.full(50, -1e308), np.full(40, 1e308)
    with np.errstate(over="ignore"):
        assert st.wasserstein_distance(a, b) == np.inf
        assert wasserstein_distance(a, b).statistic == np.inf
    spec = TESTS["wasserstein"]
    assert spec.drifted(TestResult(np.inf, None, "wasserstein", 50, 40), threshold=1.0)
    assert not spec.drifted(TestResult(np.nan, None, "wasserstein", 50, 40), threshold=1.0)
    import cudrift

    with np.errstate(over="ignore"):
        rep = cudrift.DriftDetector({"x": a}, policy="wasserstein", thresholds={"x": 1.0}, backend="cpu").compare(
            {"x": b})
    assert rep["x"].statistic == np.inf and rep["x"].drifted


def test_ttest_far_from_zero_is_exact_to_rounding(rng):
    """1e9 + N(0, 1): the t statistic against exact rational arithmetic, raw and sorted (the detector's kept path)."""
    from decimal import Decimal, localcontext
    from fractions import Fraction

    from cudrift.stats import ttest_ind_sorted

    a, b = 1e9 + rng.normal(size=600), 1e9 + 0.1 + rng.normal(size=400)
    fa, fb = [Fraction(float(x)) for x in a], [Fraction(float(x)) for x in b]
    m1, m2 = sum(fa) / len(fa), sum(fb) / len(fb)
    v1 = sum((x - m1) ** 2 for x in fa) / (len(fa) - 1)
    v2 = sum((x - m2) ** 2 for x in fb) / (len(fb) - 1)
    num, den2 = m1 - m2, v1 / len(fa) + v2 / len(fb)  # Welch, the default
    with localcontext() as ctx:
        ctx.prec = 40
        exact = float(Decimal(num.numerator) / Decimal(num.denominator)
                      / (Decimal(den2.numerator) / Decimal(den2.denominator)).sqrt())
    for res in (ttest_ind(a, b), ttest_ind_sorted(np.sort(a), np.sort(b))):
        assert res.statistic == pytest.approx(exact, rel=1e-12)  # SciPy's own is ~1e-6 off here
        assert res.pvalue == pytest.approx(2 * st.t.sf(abs(exact), res.details["df"]), rel=1e-9)


@pytest.mark.parametrize("unit", [1.0, 2.0**-400, 2.0**400])  # in float64's middle range, and past 1e±100
def test_normalized_wasserstein_scale_far_from_zero(rng, unit):
    """1e15 + small integers: the reference's std is the integers' own (exactly representable there)."""
    k = rng.integers(0, 100, size=50_000).astype(np.float64)
    shift = rng.integers(0, 100, size=30_000).astype(np.float64) + 3.0
    want = st.wasserstein_distance(k, shift) / np.std(k)  # at small magnitude: exact to rounding
    got = wasserstein_normalized((1e15 + k) * unit, (1e15 + shift) * unit).statistic
    assert got == pytest.approx(want, rel=1e-12)


def test_pandas_missing_values_are_dropped_like_nan():
    """A nullable pandas Series (boolean, Int64) with NA: the NA is dropped and counted, as NaN and None are."""
    import pandas as pd

    from cudrift.stats import ks_2samp

    a = pd.Series([True, None, False, True, True], dtype="boolean")
    b = pd.Series([1, 0, pd.NA, 0], dtype="Int64")
    res = ks_2samp(a, b)
    want = st.ks_2samp([1.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0])
    assert res.statistic == pytest.approx(want.statistic) and res.pvalue == pytest.approx(want.pvalue)
    assert (res.n_reference, res.n_current) == (4, 3)


@pytest.mark.parametrize("exponent", [-1000, -660, -530, -300, 0, 300, 530, 660, 1000])
def test_ttest_is_scale_free_across_the_float64_range(rng, exponent):
    """Values times 2**k (exact): the t statistic and p-value are those of the unscaled values.

    Unscaled, the squares of values near 1e-200 underflowed (t = inf, p = 0: a false drift), near 1e-160 went
    subnormal (1e-4 off), and near 1e160 overflowed (t = 0, p = 1).
    """
    from cudrift.stats import ttest_ind_sorted

    x, y = rng.normal(size=500), rng.normal(0.1, 1.3, size=int(rng.integers(3, 700)))
    unit = 2.0**exponent
    for equal_var in (False, True):
        for alternative in ("two-sided", "less"):
            want = st.ttest_ind(x, y, equal_var=equal_var, alternative=alternative)
            for res in (ttest_ind(x * unit, y * unit, equal_var, alternative),
                        ttest_ind_sorted(np.sort(x) * unit, np.sort(y) * unit, equal_var, alternative)):
                close(res.statistic, want.statistic, rtol=1e-12)
                close(res.pvalue, want.pvalue, rtol=1e-11)
                close(res.details["estimate"], (x.mean() - y.mean()) * unit, rtol=1e-12)


@pytest.mark.parametrize("exponent", [-660, -530, 0, 300, 530, 660])
def test_ttest_from_moments_is_right_or_from_the_sample_at_extreme_scales(rng, exponent):
    """A profile reference: Welch's t-test from the moments where their variances hold, else from the samples.

    The moments' squares overflow past ~1e154 and go subnormal below ~1e-154 (their variance was inf or 0, and
    the t-test gave t = 0 or inf with statistic_error 0); SciPy's ttest_ind_from_stats squares the variances
    again for the degrees of freedom, which overflowed past std ~1e77 (1 degree of freedom, p 0.39 for 0.16).
    """
    import cudrift

    unit = 2.0**exponent
    for n in (400, 30_000):  # within the 10,000-point sample, and past it
        x, y = rng.normal(size=n), rng.normal(0.05, 1.2, size=n - 7)
        ref = cudrift.profile({"v": x * unit})
        f = cudrift.DriftDetector(ref, policy="ttest").compare(cudrift.profile({"v": y * unit}, like=ref))["v"]
        assert f.status == "ok"
        if abs(exponent) < 500 or n == 400:  # the moments, or samples that are the whole windows: exact
            want = st.ttest_ind(x, y, equal_var=False)
            close(f.statistic, want.statistic, rtol=1e-9)
            close(f.pvalue, want.pvalue, rtol=1e-9)
            assert f.statistic_error == 0.0
        else:
            xs = ref.columns["v"].sample.values / unit
            ys = cudrift.profile({"v": y * unit}, like=ref).columns["v"].sample.values / unit
            want = st.ttest_ind(xs, ys, equal_var=False)
            close(f.statistic, want.statistic, rtol=1e-12)
            close(f.pvalue, want.pvalue, rtol=1e-11)
            assert math.isnan(f.statistic_error)


def test_ttest_from_moments_far_from_zero_is_exact_to_rounding(rng):
    """Profiles of 1e9 + N(0, 1) read in batches: the t statistic from their moments against exact rational
    arithmetic. Each mean rounded to float64 is 6e-8 off at 1e9, which left a difference of 0.05 1e-6 off; the
    means' remainders (``Moments.mean_lo``) take it to rounding."""
    from decimal import Decimal, localcontext
    from fractions import Fraction

    import cudrift

    a, b = 1e9 + rng.normal(size=3000), 1e9 + 0.05 + rng.normal(size=2000)
    fa, fb = [Fraction(float(x)) for x in a], [Fraction(float(x)) for x in b]
    m1, m2 = sum(fa) / len(fa), sum(fb) / len(fb)
    v1 = sum((x - m1) ** 2 for x in fa) / (len(fa) - 1)
    v2 = sum((x - m2) ** 2 for x in fb) / (len(fb) - 1)
    num, den2 = m1 - m2, v1 / len(fa) + v2 / len(fb)
    with localcontext() as ctx:
        ctx.prec = 40
        exact = float(Decimal(num.numerator) / Decimal(num.denominator)
                      / (Decimal(den2.numerator) / Decimal(den2.denominator)).sqrt())
    cfg = cudrift.ProfileConfig(batch_rows=256)
    ref = cudrift.profile({"v": a}, config=cfg)
    f = cudrift.DriftDetector(ref, policy="ttest").compare(cudrift.profile({"v": b}, like=ref, config=cfg))["v"]
    assert f.statistic == pytest.approx(exact, rel=1e-9) and f.statistic_error == 0.0


def _cvm_normalized(t, nx, ny):
    """Cramér-von Mises ``T`` standardized as the limiting distribution takes it (Anderson 1962, eqs. 11, 14)."""
    k, n = nx * ny, nx + ny
    et = (1 + 1 / n) / 6
    vt = (n + 1) * (4 * k * n - 3 * (nx**2 + ny**2) - 2 * k) / (45 * n**2 * 4 * k)
    return 1 / 6 + (t - et) / math.sqrt(45 * vt)


def _cvm_sf_reference(x):
    """Limiting Cramér-von Mises survival function by Smirnov's formula, integrated by QUADPACK (qawse).

    ``P(W > x) = 1/pi sum_k (-1)^(k+1) int_a^b sqrt(-u / sin u) exp(-x u^2 / 2) 2/u du``,
    ``a = (2k-1) pi``, ``b = 2k pi`` (Anderson & Darling 1952, eq. 4.4): each integral is positive and the
    first dominates, so the tail comes without cancellation; the weight (u - a)^-1/2 (b - u)^-1/2 takes the
    endpoint singularities. Agrees with a 40-digit evaluation to 1e-13 for x in [0.1, 140].
    """
    from scipy import integrate

    total = 0.0
    for k in range(1, 60):
        a, b = (2 * k - 1) * math.pi, 2 * k * math.pi

        def g(u):
            d1, d2 = u - a, b - u
            m = min(d1, d2)  # (u - a)(b - u) / (-sin u), and -sin u = sin(u - a) = sin(b - u)
            r = d1 * d2 / math.sin(m) if m > 0 else max(d1, d2)
            return math.sqrt(r / u) * math.exp(-x * d1 * (u + a) / 2) * 2

        integral, _ = integrate.quad(g, a, b, weight="alg", wvar=(-0.5, -0.5), epsabs=0, epsrel=1e-13, limit=200)
        term = math.exp(-x * a * a / 2) * integral
        total += term if k % 2 else -term
        if term <= 1e-18 * total:
            break
    return total / math.pi


@pytest.mark.parametrize("sizes", [(30, 40), (500, 300), (10_000, 10_000)])
def test_cramervonmises_asymptotic_tail_is_accurate_and_monotone(rng, sizes):
    """p(T) against the limiting survival function integrated apart; non-increasing in T up to the float64 floor.

    SciPy's (and formerly our) 1 - cdf loses the p-value's digits and its series converges slowly for large T:
    two fully separated samples of 10,000 got p = 3.1e-7, and p grew again with T (1.3e-4 at T = 1e8).
    """
    from cudrift.stats._dist import cvm_asymptotic_pvalue

    nx, ny = sizes
    ts = np.sort(np.r_[rng.uniform(0.01, 1.0, 40), rng.uniform(1.0, 30.0, 60), np.geomspace(30.0, 1e9, 40)])
    ps = np.array([cvm_asymptotic_pvalue(t, nx, ny) for t in ts])
    assert np.all(np.diff(ps) <= 0) and ps[-1] == 0.0
    for t, p in zip(ts, ps):
        x = _cvm_normalized(t, nx, ny)
        if 0.12 <= x <= 140:
            close(p, _cvm_sf_reference(x), rtol=1e-12)
    x = np.arange(float(nx))
    res = cramervonmises_2samp(x, x + 2 * nx, method="asymptotic")  # fully separated
    z = _cvm_normalized(res.statistic, nx, nx)
    close(res.pvalue, _cvm_sf_reference(z) if z < 140 else 0.0, rtol=1e-12)


def test_cramervonmises_asymptotic_tail_is_nearer_the_exact_p_value(rng):
    """Where the exact null distribution is computable: the asymptotic tail is at least as near it as SciPy's."""
    for shift in (1.5, 2.5, 4.0):
        x, y = rng.normal(size=22), rng.normal(shift, 1.0, size=24)
        exact = st.cramervonmises_2samp(x, y, method="exact").pvalue
        scipy_asymptotic = st.cramervonmises_2samp(x, y, method="asymptotic").pvalue
        ours = cramervonmises_2samp(x, y, method="asymptotic").pvalue
        assert ours <= scipy_asymptotic
        assert abs(math.log(ours / exact)) <= abs(math.log(scipy_asymptotic / exact))


def test_cramervonmises_from_cdf_takes_the_same_tail_pvalue(rng):
    from cudrift.sketches._cdf import CdfBounds
    from cudrift.stats import cramervonmises_from_cdf

    x = np.sort(rng.normal(size=3000))
    for y in (np.sort(rng.normal(0.4, 1.0, 2000)), x + 100.0):
        res = cramervonmises_from_cdf(CdfBounds.from_sorted(x), CdfBounds.from_sorted(y))
        close(res.pvalue, cramervonmises_2samp(x, y).pvalue, rtol=1e-14)
        z = _cvm_normalized(res.statistic, x.size, y.size)
        close(res.pvalue, _cvm_sf_reference(z) if z < 140 else 0.0, rtol=1e-12)


def test_distances_drop_pandas_missing_values_with_their_weights(rng):
    """Object arrays holding pd.NA: Wasserstein and energy distance drop it (and its weight) as the other tests do.

    They raised TypeError: the weights' mask came from converting the sample to float64 a second time.
    """
    pd = pytest.importorskip("pandas")
    x, y = rng.normal(size=40), rng.normal(0.3, 1.0, size=30)
    wx, wy = rng.uniform(0.1, 2.0, size=40), rng.uniform(0.1, 2.0, size=30)
    gaps = rng.choice(40, size=5, replace=False)
    x_na = x.astype(object)
    x_na[gaps] = pd.NA
    keep = np.ones(40, bool)
    keep[gaps] = False
    y_na = pd.Series(np.r_[y, np.nan]).astype("Float64")  # a nullable Series: NA at the end
    y_na[len(y)] = pd.NA
    wy_na = np.r_[wy, 1.0]
    for ours, theirs in ((wasserstein_distance, st.wasserstein_distance), (energy_distance, st.energy_distance)):
        res = ours(x_na, y_na)
        close(res.statistic, theirs(x[keep], y), rtol=1e-12)
        assert (res.details["n_dropped_reference"], res.details["n_dropped_current"]) == (5, 1)
        close(ours(x_na, y_na, wx, wy_na).statistic, theirs(x[keep], y, wx[keep], wy), rtol=1e-12)


@pytest.mark.parametrize("sizes", [(5, 7), (300, 200), (40_000, 30_000)])
def test_distances_of_values_spanning_the_float64_range(rng, sizes):
    """Values up to +-1.7e308, times 2**1023 exactly: every path gives the unscaled distance times the scale.

    The segment widths of the merged grid overflowed (the span is past float64), so equal samples gave NaN and
    the raw Wasserstein path NaN where the merge-free sorted one was finite; the multivariate energy's means
    overflowed (inf for equal samples, exactly 0).
    """
    from cudrift.stats import energy_distance_nd, energy_distance_sorted, wasserstein_distance_sorted

    unit = 2.0**1023
    # two clusters, near -1.7e308 and 1.7e308 once scaled: the gap between them is past float64
    x = rng.choice([-1.0, 1.0], sizes[0]) * rng.uniform(1.5, 1.9, sizes[0])
    y = rng.choice([-1.0, 1.0], sizes[1], p=[0.3, 0.7]) * rng.uniform(1.4, 1.9, sizes[1])
    x[:2], y[:2] = (-1.9, 1.9), (-1.5, 1.5)
    xs, ys = np.sort(x) * unit, np.sort(y) * unit
    with np.errstate(over="raise", invalid="raise"):
        w, e = st.wasserstein_distance(x, y) * unit, st.energy_distance(x, y) * math.sqrt(unit)
    for got in (wasserstein_distance(x * unit, y * unit).statistic, wasserstein_distance_sorted(xs, ys).statistic):
        close(got, w, rtol=1e-12)
    for got in (energy_distance(x * unit, y * unit).statistic, energy_distance_sorted(xs, ys).statistic):
        close(got, e, rtol=1e-12)
    wx, wy = rng.uniform(0.5, 2.0, sizes[0]), rng.uniform(0.5, 2.0, sizes[1])
    close(wasserstein_distance(x * unit, y * unit, wx, wy).statistic, st.wasserstein_distance(x, y, wx, wy) * unit,
          rtol=1e-12)
    assert wasserstein_distance(xs, xs).statistic == 0.0 and energy_distance(xs, xs).statistic == 0.0
    if max(sizes) <= 300:
        nd = energy_distance_nd(x * unit, y * unit)
        close(nd.details["distance"], e, rtol=1e-10)
        assert energy_distance_nd(xs, xs).statistic == 0.0
        assert energy_distance_nd([-1e308, 1e308], [-1e308, 1e308]).statistic == 0.0


def test_compare_in_its_column_threads_leaves_the_warning_machinery_as_it_was(rng):
    """The SciPy exact paths record SciPy's warnings with catch_warnings, which saves and restores process-wide
    state: the detector's column threads interleaving it left an 'always' filter and a recording hook in place,
    and every later warning of the process was swallowed."""
    import warnings

    import cudrift

    filters, hook = list(warnings.filters), warnings._showwarnmsg_impl
    det = cudrift.DriftDetector({f"x{i}": rng.normal(size=500) for i in range(8)}, policy="ks", workers=4,
                                backend="cpu")
    for _ in range(25):
        det.compare({f"x{i}": rng.normal(size=300) for i in range(8)})
    assert warnings._showwarnmsg_impl is hook and warnings.filters == filters


def test_a_child_forked_while_a_thread_records_warnings_can_record_its_own(tmp_path):
    """SciPy's warnings are recorded under a lock: a child forked while another thread of its parent held it
    waited on it for good."""
    import subprocess
    import sys

    script = tmp_path / "fork.py"
    script.write_text(
        "import os, signal, threading, numpy as np\n"
        "import cudrift.stats.univariate as U\n"
        "from cudrift.stats import ks_2samp\n"
        "inside, release = threading.Event(), threading.Event()\n"
        "threading.Thread(target=lambda: U._record_warnings(lambda: (inside.set(), release.wait())), daemon=True)"
        ".start()\n"
        "inside.wait()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    signal.alarm(20)\n"
        "    ks_2samp(np.arange(20.0), np.arange(20.0) + 0.5, backend='cpu')\n"
        "    os._exit(0)\n"
        "release.set()\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"


def test_epps_singleton_takes_a_sentinel_value_and_a_subnormal_spread(rng):
    """Phases (t / sigma) * x overflowed, for float64's largest value (a common sentinel) and for a subnormal
    interquartile range: cos(inf) is NaN and the pseudo-inverse raised LinAlgError "SVD did not converge". The
    test is invariant under scaling: a subnormal pair is tested as the same pair scaled up."""
    a = rng.normal(size=100)
    b = rng.normal(size=80)
    a[0] = np.finfo(np.float64).max
    res = epps_singleton_2samp(a, b)
    assert np.isfinite(res.statistic) and 0.0 <= res.pvalue <= 1.0
    x, y = rng.normal(size=40), rng.normal(size=50) + 0.5
    xs, ys = np.ldexp(x, -1040), np.ldexp(y, -1040)  # subnormal, 16 of 52 bits lost
    tiny = epps_singleton_2samp(xs, ys)
    assert tiny.statistic == pytest.approx(st.epps_singleton_2samp(np.ldexp(xs, 1040), np.ldexp(ys, 1040)).statistic,
                                           rel=1e-9)
