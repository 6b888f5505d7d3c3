"""The merge-free fast paths for KS and Wasserstein-1 equal SciPy on fresh data."""

import numpy as np
import pytest
import scipy.stats as st

from cudrift.stats import ks_2samp, wasserstein_distance
from cudrift.stats._grid import FAST_MIN, ks_sorted_fast, wasserstein1_sorted_fast


def _samples(rng, kind, n1, n2):
    if kind == "normal":
        return rng.normal(size=n1), rng.normal(0.05, 1.0, size=n2)
    if kind == "ties":
        return np.round(rng.normal(size=n1), 1), np.round(rng.normal(0.1, 1.0, size=n2), 1)
    if kind == "discrete":
        return rng.integers(0, 7, size=n1).astype(float), rng.integers(0, 8, size=n2).astype(float)
    if kind == "cauchy":
        return rng.standard_cauchy(size=n1), rng.standard_cauchy(size=n2) * 1.1
    return rng.normal(size=n1), rng.normal(size=n2)  # identical distributions


@pytest.mark.parametrize("kind", ["normal", "ties", "discrete", "cauchy", "same"])
@pytest.mark.parametrize("sizes", [(1, 1), (3, 7), (50, 50), (300, 211), (20_000, 33_000), (60_000, 60_000)])
def test_fast_paths_match_scipy(rng, kind, sizes):
    x, y = _samples(rng, kind, *sizes)
    a, b = np.sort(x), np.sort(y)
    assert wasserstein1_sorted_fast(a, b) == pytest.approx(st.wasserstein_distance(x, y), rel=1e-9, abs=1e-300)
    for alt in ("two-sided", "less", "greater"):
        d, loc, sign = ks_sorted_fast(a, b, alt)
        exp = st.ks_2samp(x, y, alternative=alt, method="asymp")
        assert d == pytest.approx(exp.statistic, rel=1e-12, abs=1e-15)
        if d > 0:
            # the statistic is reached at the reported location
            fa = np.searchsorted(a, loc, "right") / a.size
            fb = np.searchsorted(b, loc, "right") / b.size
            assert sign * (fa - fb) == pytest.approx(d, rel=1e-12)


def test_public_functions_take_the_fast_path_above_the_cutoff(rng):
    n = FAST_MIN
    x, y = rng.normal(size=n), rng.normal(0.02, 1.0, size=n + 17)
    res = ks_2samp(x, y)
    exp = st.ks_2samp(x, y)
    assert res.details["pvalue_method"] == "asymp"
    assert res.statistic == pytest.approx(exp.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(exp.pvalue, rel=1e-9)
    assert wasserstein_distance(x, y).statistic == pytest.approx(st.wasserstein_distance(x, y), rel=1e-9)
