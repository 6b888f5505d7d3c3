"""The NumPy finishing steps of ``cudrift.kernels._host``; they need no numba-cuda."""

import doctest

import numpy as np
import pytest

from cudrift.kernels import _host
from cudrift.sketches.moments import Moments


def test_docstring_examples():
    assert doctest.testmod(_host).failed == 0


def _block_moments(blocks):
    counts = [b.size for b in blocks]
    means = [float(b.mean()) if b.size else 0.0 for b in blocks]
    m2s = [float(((b - b.mean()) ** 2).sum()) if b.size else 0.0 for b in blocks]
    return counts, means, m2s


def test_merge_block_moments_is_moments_merge():
    rng = np.random.default_rng(61)
    blocks = [np.zeros(0), rng.normal(3.0, size=7), np.zeros(0), rng.normal(-1.0, 4.0, size=11), rng.normal(size=1)]
    counts, means, m2s = _block_moments(blocks)
    ref = Moments.empty()
    for b in blocks:
        if b.size:
            ref = ref.merge(Moments(b.size, float(b.mean()), float(((b - b.mean()) ** 2).sum()), 0.0, 0.0))
    n, mean, m2 = _host.merge_block_moments(counts, means, m2s)
    assert n == ref.count
    assert mean == pytest.approx(ref.mean, rel=1e-14) and m2 == pytest.approx(ref.m2, rel=1e-14)


@pytest.mark.parametrize("n_blocks", [1, 2, 3, 1000, 1057])
def test_merge_block_moments_many_blocks_against_numpy(n_blocks):
    """Grids of a thousand blocks (the row kernel's), some empty: the formula of np.mean / np.var."""
    rng = np.random.default_rng(63 + n_blocks)
    sizes = rng.integers(0, 6, size=(3, n_blocks))
    sizes[2] = 0  # an empty column
    data = [[rng.normal(1e3 * j, 1.0 + j, size=s) for s in row] for j, row in enumerate(sizes)]
    parts = [_block_moments(row) for row in data]
    n, mean, m2 = _host.merge_block_moments(*(np.array([p[i] for p in parts]) for i in range(3)))
    for j in range(2):
        flat = np.concatenate(data[j])
        assert n[j] == flat.size
        assert mean[j] == pytest.approx(flat.mean(), rel=1e-13)
        assert m2[j] == pytest.approx(flat.var() * flat.size, rel=1e-11)
    assert n[2] == 0 and np.isnan(mean[2]) and m2[2] == 0.0


def test_merge_block_moments_by_column():
    rng = np.random.default_rng(62)
    cols = [[rng.normal(size=5), np.zeros(0), rng.normal(size=3)], [np.zeros(0)] * 3]
    parts = [_block_moments(c) for c in cols]
    n, mean, m2 = _host.merge_block_moments(*(np.array([p[i] for p in parts]) for i in range(3)))
    assert n.tolist() == [8, 0]
    data = np.concatenate(cols[0])
    assert mean[0] == pytest.approx(data.mean(), rel=1e-14)
    assert m2[0] == pytest.approx(((data - data.mean()) ** 2).sum(), rel=1e-13)
    assert np.isnan(mean[1]) and m2[1] == 0.0


def test_run_ends_over_capacity_raise():
    with pytest.raises(ValueError, match="n_runs"):
        _host.summary_from_run_ends([0, 1], [0.0, 1.0], 3)


def test_rank_statistics_from_partials():
    # a = [0, 1], b = [0.5]: grid 0 (A=1, B=0), 0.5 (1, 1), 1 (2, 1).
    fpart = np.array([[0.25, 0.125, 0.0, 0.0, 0.0], [0.25, 0.125, 0.0, 0.0, 0.0]])
    ipart = np.array([[1, 1, 0, -1, 1, 1], [0, 0, 0, 0, 0, 0]])
    r = _host.rank_statistics(fpart, ipart, 2, 1)
    assert (r.ks_plus, r.ks_minus, r.ks) == (0.5, 0.5, 0.5)
    assert r.wasserstein == 0.5 and r.energy == pytest.approx(np.sqrt(0.5))


def test_mmd_pvalue_tolerance_and_no_permutations():
    assert _host.mmd_pvalue([0.3]) == (0.3, None)
    obs = 0.1  # a relabeling within MMD_TIE (absolute: MMD² is a difference of kernel means of at most 1) ties
    assert _host.mmd_pvalue([obs, obs - 0.5 * _host.MMD_TIE, obs - 2 * _host.MMD_TIE])[1] == pytest.approx(2 / 3)
    assert _host.mmd_pvalue([1e-13, 0.0, -1e-13])[1] == 1.0  # a tiny MMD² ties with rounding around it


@pytest.mark.parametrize("run", [100, 3000, 20000])
def test_moments_the_kernels_keep_are_within_the_budget_where_no_recount_is_asked(run):
    """The kernels' moments (one run of sums of ``v - origin`` and its square per thread, here one thread, its
    sums accumulated left to right as the kernel does) against exact rational arithmetic: wherever
    moments_need_sorted keeps them, M2 is within the 1e-9 contract; on discrete data, the case that rounds
    worst, with the origin 0 to 85 standard deviations from the mean."""
    from fractions import Fraction

    rng = np.random.default_rng(run)
    kept = 0
    for k in (0.0, 3.0, 10.0, 30.0, 85.0):
        x = 20.0 + 0.1 * rng.integers(0, 3, size=run)
        x[0] = float(np.mean(x[1:]) + k * np.std(x[1:]))  # the origin: the first row
        d = x - x[0]
        s1, s2 = np.cumsum(d)[-1], np.cumsum(d * d)[-1]
        mean, m2 = x[0] + s1 / run, s2 - s1 * (s1 / run)
        exact = [Fraction(float(v)) for v in x]
        mu = sum(exact) / run
        m2_exact = float(sum((v - mu) ** 2 for v in exact))
        if not _host.moments_need_sorted(mean, float(x[0]), m2, run, run):
            kept += 1
            assert abs(m2 - m2_exact) <= 1e-9 * m2_exact, (run, k)
    assert kept >= 2  # (the origin near the mean is kept at every run length)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nearest_float_edges_round_each_edge_to_the_nearest_value_of_the_type(dtype):
    """The edges float32 and float16 data is binned on (NumPy only; the kernels receive them): each edge's nearest
    value of the type, written out here with np.nextafter; past the type's range inf above, its most negative
    value below; float32_edges of them changes nothing."""
    rng = np.random.default_rng(7)
    big = float(np.finfo(dtype).max)
    edges = np.sort(np.r_[-1e300, -2 * big, rng.normal(0, 100, 40), 0.1, 0.7, big * 1.5, 1e300])
    got = _host.nearest_float_edges(edges, dtype)
    for e, g in zip(edges, got):
        if e > big:
            assert g == np.inf
        elif e < -big:
            assert g == -big
        else:
            down = dtype(e) if float(dtype(e)) <= e else np.nextafter(dtype(e), dtype(-np.inf))
            up = np.nextafter(down, dtype(np.inf)) if float(down) < e else down
            nearest = min((abs(float(down) - e), float(down)), (abs(float(up) - e), float(up)))[1]
            assert g == nearest or abs(float(up) - e) == abs(float(down) - e), (e, g, down, up)
    assert np.array_equal(_host.float32_edges(got), got.astype(np.float32))
