"""MMD and multivariate energy distance against direct small-n formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import cdist

from cudrift.errors import EmptyInputError, SchemaError
from cudrift.stats import energy_distance_nd, median_heuristic, mmd
from cudrift.stats import multivariate as mv


def _unbiased_mmd2(K, n):
    """Unbiased MMD^2 from a full pooled kernel matrix, written out directly."""
    m = K.shape[0] - n
    kxx, kyy, kxy = K[:n, :n], K[n:, n:], K[:n, n:]
    xx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return xx + yy - 2.0 * kxy.mean()


def _direct_mmd(x, y, sigma, n_perm, seed):
    z = np.concatenate((x, y))
    K = np.exp(-cdist(z, z, "sqeuclidean") / (2 * sigma**2))
    n, N = x.shape[0], z.shape[0]
    observed = _unbiased_mmd2(K, n)
    rng = np.random.default_rng(seed)
    perms = []
    for _ in range(n_perm):
        idx = rng.permutation(N)
        take = np.zeros(N, bool)
        take[idx[:n]] = True
        order = np.r_[np.flatnonzero(take), np.flatnonzero(~take)]
        perms.append(_unbiased_mmd2(K[np.ix_(order, order)], n))
    perms = np.array(perms)
    p = (1 + np.sum(perms >= observed - abs(1e-14 * observed))) / (1 + n_perm)
    return observed, p


@pytest.mark.parametrize("d", [1, 3, 20])
@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_mmd_matches_direct_formula(rng, d, shift):
    x = rng.normal(size=(40, d))
    y = rng.normal(shift, 1.0, size=(33, d))
    res = mmd(x, y, bandwidth=1.3, n_permutations=30, seed=5)
    stat, p = _direct_mmd(x, y, 1.3, 30, 5)
    np.testing.assert_allclose(res.statistic, stat, rtol=1e-9, atol=1e-13)
    assert res.pvalue == pytest.approx(p)
    assert res.method == "mmd" and res.details["bandwidth"] == 1.3


def test_mmd_tiles_agree_with_one_tile(rng, monkeypatch):
    x = rng.normal(size=(70, 2))
    y = rng.normal(0.3, 1.0, size=(50, 2))
    whole = mmd(x, y, n_permutations=20)
    monkeypatch.setattr(mv, "TILE", 16)
    tiled = mmd(x, y, n_permutations=20)
    np.testing.assert_allclose(tiled.statistic, whole.statistic, rtol=1e-10, atol=1e-14)
    assert tiled.pvalue == whole.pvalue


def test_mmd_median_heuristic_and_1d_input(rng):
    x = rng.normal(size=60)
    y = rng.normal(0.5, 1.0, size=45)
    z = np.concatenate((x, y))[:, None]
    d = cdist(z, z)
    sigma = np.median(d[np.triu_indices(z.shape[0], 1)])
    res = mmd(x, y, n_permutations=10)
    assert res.details["bandwidth"] == pytest.approx(sigma, rel=1e-12)
    np.testing.assert_allclose(res.statistic, _direct_mmd(x[:, None], y[:, None], sigma, 0, 0)[0], rtol=1e-9)


def test_mmd_detects_shift_and_is_reproducible(rng):
    x = rng.normal(size=(150, 4))
    y = rng.normal(0.6, 1.0, size=(120, 4))
    a = mmd(x, y, n_permutations=50, seed=3)
    assert a.pvalue == pytest.approx(1 / 51)
    assert mmd(x, y, n_permutations=50, seed=3) == a
    assert mmd(x, y, n_permutations=0).pvalue is None


def test_median_heuristic_fallbacks():
    assert median_heuristic(np.zeros((5, 2))) == 1.0
    pts = np.array([[0.0], [0.0], [0.0], [0.0], [2.0]])
    assert median_heuristic(pts) == 2.0


@pytest.mark.parametrize("d", [1, 2, 20])
def test_energy_nd_matches_direct_formula(rng, d):
    x = rng.normal(size=(50, d))
    y = rng.standard_t(3, size=(37, d)) + 0.2
    res = energy_distance_nd(x, y)
    e = 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    np.testing.assert_allclose(res.statistic, e, rtol=1e-9, atol=1e-12)
    assert res.pvalue is None and res.details["distance"] == pytest.approx(np.sqrt(e))


def test_energy_nd_in_one_dimension_is_scipy_squared(rng):
    x = rng.normal(size=300)
    y = rng.normal(0.2, 1.5, size=200)
    res = energy_distance_nd(x, y)
    np.testing.assert_allclose(res.details["distance"], st.energy_distance(x, y), rtol=1e-9)


def test_energy_nd_tiled(rng, monkeypatch):
    x = rng.normal(size=(45, 3))
    y = rng.normal(size=(30, 3))
    whole = energy_distance_nd(x, y).statistic
    monkeypatch.setattr(mv, "TILE", 8)
    np.testing.assert_allclose(energy_distance_nd(x, y).statistic, whole, rtol=1e-10)


@pytest.mark.parametrize("func", [mmd, energy_distance_nd])
def test_point_validation(func, rng):
    x = rng.normal(size=(10, 2))
    with pytest.raises(SchemaError, match="same number of features"):
        func(x, rng.normal(size=(10, 3)))
    with pytest.raises(SchemaError, match="1-D or 2-D"):
        func(np.zeros((2, 2, 2)), x)
    with pytest.raises(EmptyInputError, match="current"):
        func(x, np.full((3, 2), np.nan))
    with pytest.raises(EmptyInputError, match="reference"):
        func(np.empty((0, 2)), x)
    res = func(np.r_[x, [[np.nan, 1.0]]], x[:6])
    assert res.details["n_dropped_reference"] == 1 and res.n_reference == 10


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"bandwidth": 0.0}, "Invalid value for bandwidth: 0.0"),
        ({"bandwidth": "auto"}, "Invalid value for bandwidth: 'auto'"),
        ({"n_permutations": -1}, "Invalid value for n_permutations: -1"),
        ({"n_permutations": 2.5}, "Invalid value for n_permutations: 2.5"),
        ({"seed": "x"}, "Invalid value for seed: 'x'"),
    ],
)
def test_mmd_bad_options(rng, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mmd(rng.normal(size=10), rng.normal(size=10), **kwargs)


def test_mmd_needs_two_points_per_sample(rng):
    with pytest.raises(ValueError, match="at least 2 points"):
        mmd([1.0], rng.normal(size=5))


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e307])
def test_far_scales_give_the_unit_scale_results(rng, scale):
    """Squared distances of points near 1e200 overflow and near 1e-200 underflow: the statistics follow the
    scale of the points instead (a NaN MMD once came with the smallest p-value, i.e. drift)."""
    x, y = rng.normal(size=(120, 2)), rng.normal(size=(100, 2)) + [0.4, 0.0]
    unit, far = mmd(x, y, n_permutations=49), mmd(x * scale, y * scale, n_permutations=49)
    assert far.statistic == pytest.approx(unit.statistic, rel=1e-12) and far.pvalue == unit.pvalue
    assert far.details["bandwidth"] == pytest.approx(unit.details["bandwidth"] * scale, rel=1e-12)
    given = mmd(x * scale, y * scale, bandwidth=0.7 * scale, n_permutations=0)
    assert given.statistic == pytest.approx(mmd(x, y, bandwidth=0.7, n_permutations=0).statistic, rel=1e-12)
    a, b = x[:, 0] * scale, y[:, 0] * scale
    assert energy_distance_nd(a, b).details["distance"] == pytest.approx(st.energy_distance(a, b), rel=1e-9)


def test_a_nan_mmd_has_no_pvalue():
    from cudrift.kernels._host import mmd_pvalue

    observed, p = mmd_pvalue([np.nan, 0.1, 0.2])
    assert np.isnan(observed) and np.isnan(p)


def test_mmd_pvalue_counts_tied_labelings_on_discrete_data(rng):
    """Values 0, 1, 2: many relabelings tie with the observed MMD² in exact arithmetic. The p-value is the one
    counted with 40-digit decimals (float sums in another order once counted some ties and missed others)."""
    from decimal import Decimal, localcontext

    def exact_pvalue(a, b, n_perm):
        inp = mv.mmd_inputs(a, b, None, n_perm, 0)
        n, m = len(a), len(b)
        with localcontext() as ctx:
            ctx.prec = 40
            z = [Decimal(float(v)) for v in inp.z[:, 0]]
            g = -1 / (2 * Decimal(float(inp.sigma)) ** 2)
            k = [[(g * (zi - zj) ** 2).exp() for zj in z] for zi in z]

            def mmd2(lab):
                xs = [i for i in range(n + m) if lab[i] == 1]
                ys = [i for i in range(n + m) if lab[i] == 0]
                kxx = sum(k[i][j] for i in xs for j in xs if i != j) / (n * (n - 1))
                kyy = sum(k[i][j] for i in ys for j in ys if i != j) / (m * (m - 1))
                return kxx + kyy - 2 * sum(k[i][j] for i in xs for j in ys) / (n * m)

            v = [mmd2(inp.labels[:, p]) for p in range(n_perm + 1)]
            return (1 + sum(1 for x in v[1:] if x >= v[0] - Decimal("1e-30"))) / len(v)

    for _ in range(6):
        a, b = rng.integers(0, 3, 12).astype(float), rng.integers(0, 3, 10).astype(float)
        assert mmd(a, b, n_permutations=40).pvalue == pytest.approx(exact_pvalue(a, b, 40), abs=1e-12)
