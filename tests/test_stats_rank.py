"""Rank statistics from CdfBounds: exact inputs reproduce the raw tests, approximate ones bound them.

Approximate bounds are built from exact ones the way a sketch loses
information: keep only some support points (every j-th plus random extras);
on ``[kept_i, kept_{i+1})`` the count is then only known to lie between the
count at ``kept_i`` and the count just below ``kept_{i+1}``. Optionally the
bounds are widened further by random amounts that still contain the truth.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats as st

from cudrift.errors import EmptyInputError
from cudrift.sketches._cdf import CdfBounds
from cudrift.stats import (
    anderson_from_cdf,
    anderson_ksamp,
    cramervonmises_2samp,
    cramervonmises_from_cdf,
    ks_2samp,
    ks_from_cdf,
    wasserstein_distance,
    wasserstein_from_cdf,
    wasserstein_normalized,
)
from cudrift.stats import rank as rank_module
from cudrift.stats._grid import cvm_scipy


def coarsen(cb: CdfBounds, j: int, rng, widen: bool = False) -> CdfBounds:
    k = len(cb.values)
    keep = np.arange(0, k, j)
    extra = rng.choice(k, size=max(1, k // (3 * j)), replace=False)
    keep = np.unique(np.r_[0, keep, extra, k - 1])
    nxt = np.r_[keep[1:], k]
    lo = cb.lo[keep].astype(np.int64)
    hi = cb.lo[nxt - 1].astype(np.int64)
    if widen:
        # push the bounds out by a random amount, keeping them monotone and valid
        lo = np.maximum.accumulate(np.maximum(lo - rng.integers(0, 3 * j, lo.size), 0))
        hi = np.minimum.accumulate(np.minimum(hi + rng.integers(0, 3 * j, hi.size), cb.n)[::-1])[::-1]
        lo[-1] = hi[-1] = cb.n
        lo = np.minimum(lo, hi)
    return CdfBounds(cb.values[keep], lo, hi, cb.n)


def _gen(kind, rng, n, shift):
    if kind == "normal":
        return rng.normal(shift, 1.0, n)
    if kind == "ties":
        return np.round(rng.normal(shift, 1.0, n), 1)
    if kind == "discrete":
        return rng.integers(0, 12, n) + np.round(shift * 3)
    if kind == "cauchy":
        return rng.standard_cauchy(n) + shift
    return rng.pareto(1.5, n) * (1 + shift)


KINDS = ["normal", "ties", "discrete", "cauchy", "pareto"]


def _samples(rng, kind, n1, n2):
    shift = float(rng.choice([0.0, 0.2]))
    return np.sort(_gen(kind, rng, n1, 0.0)), np.sort(_gen(kind, rng, n2, shift))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sizes", [(40, 30), (2000, 3000)])
def test_exact_bounds_reproduce_raw_tests(rng, kind, sizes):
    x, y = _samples(rng, kind, *sizes)
    rb, cb = CdfBounds.from_sorted(x), CdfBounds.from_sorted(y)
    pairs = [
        (ks_from_cdf(rb, cb), ks_2samp(x, y, method="asymp")),
        (wasserstein_from_cdf(rb, cb), wasserstein_distance(x, y)),
        (wasserstein_from_cdf(rb, cb, normalize_by=np.std(x)), wasserstein_normalized(x, y)),
        (cramervonmises_from_cdf(rb, cb), cramervonmises_2samp(x, y, method="asymptotic")),
        (anderson_from_cdf(rb, cb), anderson_ksamp(x, y)),
    ]
    for sk, raw in pairs:
        assert sk.method == raw.method
        assert sk.statistic_error == 0.0 and sk.details["pvalue_from_sketch"] is False
        np.testing.assert_allclose(sk.statistic, raw.statistic, rtol=1e-9, atol=1e-12)
        if raw.pvalue is not None:
            np.testing.assert_allclose(sk.pvalue, raw.pvalue, rtol=1e-9, atol=1e-300)
    for alternative in ("less", "greater"):
        np.testing.assert_allclose(
            ks_from_cdf(rb, cb, alternative).statistic, ks_2samp(x, y, alternative).statistic, rtol=1e-12
        )


def _scipy_stats(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "ks": st.ks_2samp(x, y).statistic,
            "wasserstein": st.wasserstein_distance(x, y),
            "cramervonmises": st.cramervonmises_2samp(x, y).statistic,
            "anderson": st.anderson_ksamp([x, y], variant="midrank").statistic,
        }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sizes", [(150, 100), (3000, 5000)])
@pytest.mark.parametrize("j", [2, 9, 40])
@pytest.mark.parametrize("widen", [False, True])
def test_approximate_bounds_contain_the_scipy_statistic(rng, kind, sizes, j, widen):
    x, y = _samples(rng, kind, *sizes)
    rb, cb = CdfBounds.from_sorted(x), CdfBounds.from_sorted(y)
    ra, ca = coarsen(rb, j, rng, widen), coarsen(cb, j, rng, widen)
    truth = _scipy_stats(x, y)
    results = {
        "ks": ks_from_cdf(ra, ca),
        "wasserstein": wasserstein_from_cdf(ra, ca),
        "cramervonmises": cramervonmises_from_cdf(ra, ca),
        "anderson": anderson_from_cdf(ra, ca),
    }
    for name, res in results.items():
        assert abs(res.statistic - truth[name]) <= res.statistic_error, (name, res, truth[name])
        assert res.details["statistic_lower"] <= truth[name] + 1e-12 * abs(truth[name])
        assert truth[name] <= res.details["statistic_upper"] * (1 + 1e-12) + 1e-300
        if not (ra.is_exact and ca.is_exact):
            assert res.details["pvalue_from_sketch"] is True

    # not absurdly loose: the interval's width (statistic_error, from its lower end) within twice the two
    # rank errors for KS, and twice those rank errors times the data range for Wasserstein
    def allowance(res):  # the errors carry a 1e-9 relative allowance for rounding
        return 2e-9 * abs(res.details["statistic_upper"]) + 1e-12

    widening = ra.rank_error + ca.rank_error
    assert results["ks"].statistic_error <= 2 * widening + allowance(results["ks"])
    span = max(x[-1], y[-1]) - min(x[0], y[0])
    assert results["wasserstein"].statistic_error <= 2 * widening * span + allowance(results["wasserstein"])
    for res in results.values():  # every statistic from sketches is its interval's lower end
        assert res.statistic == res.details["statistic_lower"]


def test_cramervonmises_from_coarse_sketches_is_never_negative(rng):
    """T is nm/N times a sum of squared CDF differences, never negative; the interval's lower end from coarse
    sketches was (-6.6 for a T of 0.1, -1749 for 19.07), a statistic no data can give. It is clamped at 0,
    still at most the exact T, and the p-value of 0 is 1."""
    x, y = np.sort(rng.normal(size=3000)), np.sort(rng.normal(size=5000))
    truth = st.cramervonmises_2samp(x, y).statistic
    for j in (40, 200):
        res = cramervonmises_from_cdf(coarsen(CdfBounds.from_sorted(x), j, rng, True),
                                      coarsen(CdfBounds.from_sorted(y), j, rng, True))
        assert 0.0 <= res.statistic <= truth <= res.statistic + res.statistic_error
        assert res.details["statistic_lower"] == res.statistic


def test_one_side_exact_other_approximate(rng):
    x = np.sort(rng.normal(size=4000))
    y = np.sort(rng.normal(0.1, 1.0, size=2500))
    rb, ca = CdfBounds.from_sorted(x), coarsen(CdfBounds.from_sorted(y), 25, rng)
    truth = _scipy_stats(x, y)
    for name, func in (("ks", ks_from_cdf), ("wasserstein", wasserstein_from_cdf),
                       ("cramervonmises", cramervonmises_from_cdf), ("anderson", anderson_from_cdf)):
        res = func(rb, ca)
        assert abs(res.statistic - truth[name]) <= res.statistic_error


def test_interval_machinery_collapses_on_exact_grids(rng):
    # the approximate-path formulas, fed exact data, give the exact values
    for kind in ("normal", "ties", "discrete"):
        x, y = _samples(rng, kind, 300, 200)
        g = rank_module._grid(CdfBounds.from_sorted(x), CdfBounds.from_sorted(y))
        lo, hi = rank_module._cvm_bounds(g)
        np.testing.assert_allclose([lo, hi], cvm_scipy(g), rtol=1e-10)
        a_lo, a_hi = rank_module._anderson_bounds(g)
        from cudrift.stats._grid import anderson_a2kn_exact

        np.testing.assert_allclose([a_lo, a_hi], anderson_a2kn_exact(g), rtol=1e-10)


def test_normalize_by_zero_divides_by_one(rng):
    x = np.sort(rng.normal(size=50))
    rb = CdfBounds.from_sorted(x)
    res = wasserstein_from_cdf(rb, rb, normalize_by=0.0)
    assert res.method == "wasserstein_normalized" and res.details["normalizer"] == 1.0


@pytest.mark.parametrize("func", [ks_from_cdf, wasserstein_from_cdf, cramervonmises_from_cdf, anderson_from_cdf])
def test_bad_bounds(func):
    good = CdfBounds.from_sorted(np.arange(10.0))
    with pytest.raises(TypeError, match="CdfBounds"):
        func(np.arange(10.0), good)
    with pytest.raises(EmptyInputError, match="current"):
        func(good, CdfBounds.from_sorted(np.array([])))
    with pytest.raises(ValueError, match="strictly increasing"):
        func(good, CdfBounds(np.array([1.0, 1.0]), np.array([1, 2]), np.array([1, 2]), 2))
    with pytest.raises(ValueError, match="lo <= hi"):
        func(good, CdfBounds(np.array([1.0, 2.0]), np.array([2, 2]), np.array([1, 2]), 2))
    with pytest.raises(ValueError, match="must both equal n"):
        func(good, CdfBounds(np.array([1.0, 2.0]), np.array([1, 2]), np.array([1, 2]), 3))


def test_bad_options():
    good = CdfBounds.from_sorted(np.arange(10.0))
    with pytest.raises(ValueError, match="Invalid value for alternative: 'sideways'"):
        ks_from_cdf(good, good, alternative="sideways")
    with pytest.raises(ValueError, match="Invalid value for normalize_by: -1.0"):
        wasserstein_from_cdf(good, good, normalize_by=-1.0)
    one = CdfBounds.from_sorted(np.array([1.0]))
    with pytest.raises(ValueError, match="at least 2 values"):
        cramervonmises_from_cdf(one, good)
