"""The test registry, the decision rule, and the p-value helpers shared by both paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import smirnov
from scipy.stats import kstwo

from cudrift.stats import TESTS, TestResult, TestSpec, get_test
from cudrift.stats._dist import _smirnov_sf_sum, kstwo_sf

NAMES = {
    "ks", "anderson", "cramervonmises", "epps_singleton", "mannwhitneyu", "ttest", "wasserstein",
    "wasserstein_normalized", "energy_distance", "chisquare", "fisher_exact", "ztest", "psi", "kl_div",
    "jensenshannon", "hellinger", "tvd", "mmd",
}


def test_registry_names_and_fields():
    assert set(TESTS) == NAMES
    for name, spec in TESTS.items():
        assert isinstance(spec, TestSpec) and spec.name == name
        assert spec.kind in ("numerical", "categorical", "binary", "any")
        assert spec.input in ("sample", "counts", "points")
        assert (spec.func_sorted is not None) == (spec.input == "sample")
        if spec.is_pvalue:
            assert spec.default_threshold == 0.05
        else:
            assert spec.default_threshold == 0.1
    assert TESTS["chisquare"].kind == "categorical"
    assert TESTS["fisher_exact"].kind == TESTS["ztest"].kind == "binary"
    assert TESTS["psi"].kind == "any" and TESTS["mmd"].input == "points"


def _inputs(spec, rng):
    if spec.input == "sample":
        return rng.normal(size=60), rng.normal(0.5, 1.0, size=50)
    if spec.input == "points":
        return rng.normal(size=(30, 2)), rng.normal(0.5, 1.0, size=(25, 2))
    if spec.kind == "binary":
        return [40, 20], [25, 35]
    return [40, 20, 10, 0], [25, 35, 5, 3]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_test_reports_its_registry_name(rng, name):
    spec = get_test(name)
    res = spec.func(*_inputs(spec, rng))
    assert isinstance(res, TestResult) and res.method == name
    assert (res.pvalue is None) == (not spec.is_pvalue)
    assert math.isfinite(res.statistic)


def test_get_test_lists_valid_names():
    with pytest.raises(ValueError, match="Invalid value for test: 'kolmogorov'.*ks.*wasserstein"):
        get_test("kolmogorov")
    with pytest.raises(ValueError, match="Invalid value for test"):
        get_test(None)


def test_decision_rule():
    ks, psi = TESTS["ks"], TESTS["psi"]
    assert ks.drifted(TestResult(0.2, 0.01, "ks", 10, 10))
    assert not ks.drifted(TestResult(0.2, 0.05, "ks", 10, 10))
    assert not ks.drifted(TestResult(0.2, float("nan"), "ks", 10, 10))
    assert ks.drifted(TestResult(0.2, 0.04, "ks", 10, 10), threshold=0.045)
    assert psi.drifted(TestResult(0.1, None, "psi", 10, 10))
    assert not psi.drifted(TestResult(0.09, None, "psi", 10, 10))
    assert not psi.drifted(TestResult(float("nan"), None, "psi", 10, 10))


@pytest.mark.parametrize("n", [141, 500, 4000, 60_000])
def test_vectorized_smirnov_tail_matches_scipy(rng, n):
    for nx2 in np.r_[2.2, rng.uniform(2.2, 350.0, 4)]:
        x = math.sqrt(nx2 / n)
        if x >= 0.5:
            continue
        np.testing.assert_allclose(_smirnov_sf_sum(n, x), smirnov(n, x), rtol=1e-11)


@pytest.mark.parametrize("n", [50, 141, 5000, 200_000, 3_000_000])
def test_kstwo_sf_matches_scipy_on_every_branch(n):
    for nx2 in (0.01, 0.4, 1.0, 2.19, 2.2, 10.0, 100.0, 369.0, 371.0):
        d = math.sqrt(nx2 / n)
        if d >= 1:
            continue
        np.testing.assert_allclose(kstwo_sf(d, n), kstwo.sf(d, n), rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize(
    "module",
    ["cudrift.stats", "cudrift.stats.univariate", "cudrift.stats.categorical", "cudrift.stats.distances",
     "cudrift.stats.multivariate", "cudrift.stats.rank"],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
