"""The merge-path rank kernel against SciPy's two-sample statistics.

KS (all alternatives), Wasserstein-1, energy distance, Cramér–von Mises and
Anderson–Darling (midrank) agree within 1e-9 relative on float64 data, with
ties, disjoint and identical samples, and any launch geometry.

Runs in Numba's CUDA simulator by default: ``NUMBA_ENABLE_CUDASIM`` is set to 1
before Numba is imported unless the environment already says otherwise (a
real GPU run sets ``NUMBA_ENABLE_CUDASIM=0``).
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

from conftest_kernels import check_rank, close, run_rank, skip_unless_usable  # noqa: E402

from cudrift.stats._grid import cvm_scipy, grid_from_sorted, ks_bounds, lp_integral_bounds  # noqa: E402

skip_unless_usable()


@pytest.mark.parametrize("n_a, n_b", [(1, 1), (1, 6), (7, 2), (37, 53), (160, 131)])
def test_continuous(n_a, n_b):
    rng = np.random.default_rng(41 + n_a)
    check_rank(rng.normal(size=n_a), rng.normal(0.3, 1.2, size=n_b), threads=32)


@pytest.mark.parametrize("levels", [2, 5, 30])
def test_ties_within_and_across_samples(levels):
    rng = np.random.default_rng(42 + levels)
    a = rng.integers(0, levels, size=120).astype(np.float64)
    b = rng.integers(1, levels + 1, size=95).astype(np.float64)
    check_rank(a, b, threads=32)


def test_disjoint_identical_and_one_shared_value():
    check_rank(np.arange(20.0), np.arange(20.0) + 100.0, threads=32)
    x = np.random.default_rng(43).normal(size=50)
    r = check_rank(x, x.copy(), threads=32)
    assert r.ks == 0.0 and r.wasserstein == 0.0 and r.cramervonmises < 0.01
    check_rank(np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0]), threads=32)
    check_rank(np.full(10, 2.5), np.full(7, 2.5), threads=32)


def test_float32_input():
    rng = np.random.default_rng(44)
    check_rank(rng.normal(size=70).astype(np.float32), rng.normal(size=60).astype(np.float32), threads=32)


def test_geometry_changes_nothing_but_rounding():
    rng = np.random.default_rng(45)
    a = np.sort(np.round(rng.normal(size=140), 1))
    b = np.sort(np.round(rng.normal(0.2, size=110), 1))
    g = grid_from_sorted(a, b)
    runs = [
        run_rank(a, b, threads=t, items=i, blocks=nb) for t, i, nb in ((32, 4, 1), (32, 1, 3), (48, 3, 2), (64, 2, 7))
    ]
    for r in runs:
        assert r.ks == runs[0].ks == ks_bounds(g, "two-sided")[1]
        close(r.wasserstein, lp_integral_bounds(g, 1)[0])
        close(r.energy**2 / 2.0, lp_integral_bounds(g, 2)[0])
        close(r.cramervonmises, cvm_scipy(g))


@pytest.mark.parametrize("levels, items", [(2, 1), (3, 2), (50, 3)])
def test_runs_spanning_many_tiles_and_threads(levels, items):
    """Runs of equal values longer than a tile: the counts below a run come from before the tile."""
    rng = np.random.default_rng(46 + levels)
    a = rng.integers(0, levels, size=400).astype(np.float64)
    b = rng.integers(0, levels, size=300).astype(np.float32)
    for blocks in (1, 4):
        check_rank(a, b, threads=32, items=items, blocks=blocks)


def test_many_columns_in_one_launch():
    """Columns of different lengths back to back, one launch: each column's statistics as SciPy's."""
    import scipy.stats as st
    from numba import cuda

    from cudrift.kernels import _host
    from cudrift.kernels.rank import N_FLOAT_PARTIALS, N_INT_PARTIALS, launch_rank_many, split_offsets

    rng = np.random.default_rng(47)
    refs = [np.sort(rng.normal(size=n)) for n in (150, 3, 90, 40)]
    curs = [np.sort(rng.normal(0.2, size=n)).astype(np.float32) for n in (120, 70, 2, 40)]
    curs[3] = np.sort(np.round(curs[3] * 2) / 2)  # ties within and across
    refs[3] = np.sort(np.round(refs[3] * 2) / 2)
    nt, per, blocks = 32, 2, 3
    a_off = np.concatenate(([0], np.cumsum([r.size for r in refs]))).astype(np.int64)
    b_off = np.concatenate(([0], np.cumsum([c.size for c in curs]))).astype(np.int64)
    # (start, stop) pairs; the current's columns are given in reverse memory order
    a_bounds = np.stack((a_off[:-1], a_off[1:]), axis=1).ravel()
    b_flat = np.concatenate(curs[::-1])
    b_start = b_flat.size - b_off[1:]
    b_bounds = np.stack((b_start, b_start + np.diff(b_off)), axis=1).ravel()
    s_off = split_offsets([r.size + c.size for r, c in zip(refs, curs)], nt, per)
    fpart = cuda.to_device(np.full((4, blocks, N_FLOAT_PARTIALS), np.nan))
    ipart = cuda.to_device(np.full((4, blocks, N_INT_PARTIALS), -7, dtype=np.int64))
    launch_rank_many(cuda.to_device(np.concatenate(refs)), cuda.to_device(a_bounds), cuda.to_device(b_flat),
                     cuda.to_device(b_bounds), fpart, ipart, cuda.device_array(int(s_off[-1]), dtype=np.int64),
                     cuda.to_device(s_off), threads=nt, items=per)
    fp, ip = fpart.copy_to_host(), ipart.copy_to_host()
    for c, (a, b) in enumerate(zip(refs, curs)):
        r = _host.rank_statistics(fp[c], ip[c], a.size, b.size)
        b64 = b.astype(np.float64)
        assert r.ks == pytest.approx(st.ks_2samp(a, b64).statistic, rel=1e-12)
        assert r.wasserstein == pytest.approx(st.wasserstein_distance(a, b64), rel=1e-9)
        assert r.energy == pytest.approx(st.energy_distance(a, b64), rel=1e-9)


@pytest.mark.parametrize("seed", [48, 49])
def test_ks_counts_locate_the_extreme(seed):
    """The counts the kernel keeps name a point where |F_a - F_b| equals the KS statistic."""
    rng = np.random.default_rng(seed)
    a = np.sort(np.round(rng.normal(size=130), 1))
    b = np.sort(np.round(rng.normal(0.4, size=90), 1))
    r = run_rank(a, b, threads=32, items=2, blocks=3)
    ca, cb = r.ks_counts
    loc = max(a[ca - 1] if ca else -np.inf, b[cb - 1] if cb else -np.inf)
    assert (np.searchsorted(a, loc, "right"), np.searchsorted(b, loc, "right")) == (ca, cb)
    assert abs(ca / a.size - cb / b.size) == pytest.approx(r.ks, rel=1e-12)


@pytest.mark.parametrize("levels", [None, 4])
def test_want_computes_only_what_is_asked_and_the_same_values(levels):
    """Each ``want`` subset gives exactly the full launch's values for its statistics and NaN for the rest.

    The KS extremes and their counts are always there; the float sums a
    subset skips (and, without CvM and Anderson-Darling, the searches for
    the counts below a run) change nothing else, ties and runs across
    threads and tiles included.
    """
    import math

    from cudrift.kernels import _host

    rng = np.random.default_rng(50 + (levels or 0))
    if levels is None:
        a, b = np.sort(rng.normal(size=150)), np.sort(rng.normal(0.3, size=120))
    else:
        a = np.sort(rng.integers(0, levels, size=150).astype(np.float64))
        b = np.sort(rng.integers(0, levels, size=120).astype(np.float64))
    geometry = {"threads": 32, "items": 2, "blocks": 3}
    full = run_rank(a, b, **geometry)
    fields = {
        _host.WANT_KS: (),
        _host.WANT_DISTANCES: ("wasserstein", "energy"),
        _host.WANT_CVM: ("cramervonmises",),
        _host.WANT_AD: ("anderson_a2kn",),
    }
    # the kernel's float sums, in fpart's column order (N_FLOAT_PARTIALS)
    sums = {_host.WANT_DISTANCES: (0, 1), _host.WANT_CVM: (2, 3), _host.WANT_AD: (4,)}
    for want in (_host.WANT_KS, _host.WANT_DISTANCES, _host.WANT_CVM, _host.WANT_AD, _host.WANT_CVM | _host.WANT_AD,
                 _host.WANT_KS | _host.WANT_AD, _host.WANT_DISTANCES | _host.WANT_CVM):
        r, fpart = run_rank(a, b, want=want, raw=True, **geometry)
        skipped = [q for bit, cols in sums.items() if not want & bit for q in cols]
        assert not fpart[:, skipped].any(), want  # the kernel skipped that work, not only the host
        assert (r.ks, r.ks_plus, r.ks_minus, r.ks_counts) == (full.ks, full.ks_plus, full.ks_minus, full.ks_counts)
        wanted = {f for bit, names in fields.items() if want & bit for f in names}
        for f in ("wasserstein", "energy", "cramervonmises", "anderson_a2kn"):
            if f in wanted:
                assert getattr(r, f) == getattr(full, f), (want, f)
            else:
                assert math.isnan(getattr(r, f)), (want, f)
