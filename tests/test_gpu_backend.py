"""The GPU backend against the NumPy path.

Two kinds of tests:

* CPU tests of the backend's host-side logic (:mod:`cudrift.backends._gpu_host`:
  folding device results into profiles, the sample's candidate protocol,
  chunk planning, rank-test finishing), of the quantile-summary recipe under
  Numba's CUDA simulator (in a subprocess, so the simulator cannot leak into
  a GPU run), of the import errors of :mod:`cudrift.backends._gpu`, and of
  ``benchmarks/gpu_check.py --dry-run``;
* ``gpu``-marked tests that run the GPU path and the NumPy path on the same
  fresh random data and hold them to the same answer: counts, histograms and
  quantile summaries identical, moments within 1e-9 relative, statistics
  within 1e-6 relative. Without a usable GPU they are skipped with
  ``gpu_status()``'s reason. On a GPU machine run them with
  ``NUMBA_ENABLE_CUDASIM=0 python -m pytest -m gpu tests/test_gpu_backend.py``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

import cudrift
from cudrift import DriftDetector, ProfileConfig
from cudrift.backends import _gpu_host as gh
from cudrift.backends import gpu_status
from cudrift.sketches import sample as sample_mod
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile
from cudrift.sketches.histogram import Histogram, equal_mass_edges, uniform_edges
from cudrift.sketches.quantiles import _summarize_sorted
from cudrift.stats import TESTS
from cudrift.stats._grid import anderson_a2kn_exact, grid_from_sorted

ROOT = Path(__file__).resolve().parents[1]
GPU_OK, GPU_REASON = gpu_status()


def _with_specials(x: np.ndarray, rng: np.random.Generator, share: float = 0.01) -> np.ndarray:
    x = x.copy()
    for v in (np.nan, np.inf, -np.inf):
        x[rng.random(size=x.shape) < share] = v
    return x


# ============================================================== host-side logic (CPU)


@pytest.mark.parametrize("size, batches", [(5, [50]), (50, [7, 3, 200, 0, 31]), (1000, [10_000, 5_000]), (3, [1, 1, 1, 2])])
def test_sample_update_follows_sample(rng, size, batches):
    seed = int(rng.integers(0, 2**63))
    ours = sample_mod.Sample.empty(size=size, seed=seed)
    ref = sample_mod.Sample.empty(size=size, seed=seed)
    for m in batches:
        x = rng.normal(size=m)
        gh.sample_update(ours, m, sample_mod._candidates, lambda pos, x=x: x[pos])
        ref.update(x)
        assert ours == ref


def _device_parts(col: NumericColumnProfile, values: np.ndarray, nulls: int, blocks: int = 3) -> gh.NumericParts:
    """What the device computes for one batch, computed with NumPy the way the kernels do it."""
    xf = values.astype(gh.sort_dtype(values.dtype))
    finite = xf[np.isfinite(xf)]
    # per-block moments merged with Chan's formula, as the profile kernel's blocks are
    parts = np.array_split(finite.astype(np.float64), blocks)
    counts = [p.size for p in parts]
    means = [p.mean() if p.size else 0.0 for p in parts]
    m2s = [float(((p - p.mean()) ** 2).sum()) if p.size else 0.0 for p in parts]
    from cudrift.kernels._host import merge_block_moments

    count, mean, m2 = merge_block_moments(counts, means, m2s)
    hist = None
    if col.histogram is not None:
        e = col.histogram.edges
        idx = np.searchsorted(e, finite.astype(np.float64), side="right")
        idx[finite == e[-1]] -= 1
        hist = np.bincount(idx, minlength=e.size + 1).astype(np.int64)
    summary = tuple(_summarize_sorted(np.sort(finite), col.quantiles.k)) if finite.size else None
    lo = float(finite.min()) if finite.size else math.inf
    hi = float(finite.max()) if finite.size else -math.inf
    return gh.NumericParts(values.size, nulls, int(np.isnan(xf).sum()), int((xf == np.inf).sum()),
                           int((xf == -np.inf).sum()), count, mean, m2, lo, hi, hist, summary, str(values.dtype))


def _assert_numeric_equal(a: NumericColumnProfile, b: NumericColumnProfile, rtol: float = 1e-9) -> None:
    """Every sketch identical, moments within ``rtol`` (Welford blocks vs the CPU's shifted sums)."""
    for f in ("count", "null_count", "nan_count", "posinf_count", "neginf_count", "histogram", "quantiles",
              "sample", "dtype"):
        assert getattr(a, f) == getattr(b, f), f
    ma, mb = a.moments, b.moments
    assert (ma.count, ma.min, ma.max) == (mb.count, mb.min, mb.max)
    if ma.count:
        spread = math.sqrt(ma.variance) if math.isfinite(ma.m2) else 0.0
        assert abs(ma.mean - mb.mean) <= rtol * (abs(ma.mean) + spread) + 1e-300
        assert ma.m2 == mb.m2 or abs(ma.m2 - mb.m2) <= rtol * ma.m2 + 1e-300  # (inf: squares past float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("with_edges", [True, False])
def test_absorb_numeric_follows_update(rng, dtype, with_edges):
    edges = uniform_edges(-2.0, 2.0, 16) if with_edges else None
    ours = NumericColumnProfile.empty(edges=edges, quantile_k=64, sample_size=100, seed=5)
    ref = NumericColumnProfile.empty(edges=edges, quantile_k=64, sample_size=100, seed=5)
    for m, nulls in ((2000, 3), (0, 4), (70, 0), (500, 1)):
        if dtype == np.bool_:
            x = rng.random(size=m) < 0.3
        elif np.issubdtype(dtype, np.integer):
            x = rng.integers(-5, 5, size=m).astype(dtype)
        else:
            x = _with_specials(rng.normal(size=m), rng).astype(dtype)
        gh.absorb_numeric(ours, _device_parts(ours, x, nulls))
        xf = x.astype(gh.sort_dtype(x.dtype))
        xf = xf[np.isfinite(xf)]  # the sample sees the finite values in their order
        gh.sample_update(ours.sample, xf.size, sample_mod._candidates, lambda pos, xf=xf: xf[pos])
        ref.update(x, null_count=nulls)
        _assert_numeric_equal(ref, ours, rtol=1e-12)


def test_absorb_categorical_follows_update(rng):
    ref_cats = {0, 1, 2}
    ours = CategoricalColumnProfile.empty(max_categories=4, reference_categories=ref_cats)
    ref = CategoricalColumnProfile.empty(max_categories=4, reference_categories=ref_cats)
    for _ in range(3):
        x = rng.integers(-2, 6, size=300)
        keys, counts = np.unique(x, return_counts=True)
        gh.absorb_categorical(ours, "int", keys.tolist(), counts.astype(np.int64), x.size, 2, "c")
        ref.update(x, null_count=2, name="c")
        assert ours == ref


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_bounds_follow_update_sorted(rng, dtype):
    edges = equal_mass_edges(np.sort(rng.normal(size=1000)), 20)
    x = np.sort(np.concatenate([rng.normal(size=3000), edges, np.nextafter(edges, np.inf)]).astype(dtype))
    ours, ref = Histogram.empty(edges), Histogram.empty(edges)
    left, last = gh.histogram_thresholds(ours, x.dtype)
    gh.add_histogram_bounds(ours, np.searchsorted(x, left, side="left"), int(np.searchsorted(x, last, side="right")),
                            x.size)
    ref.update_sorted(x)
    assert ours == ref


def test_pack_edges_marks_linspace_edges():
    e, n, u = gh.pack_edges([uniform_edges(0.0, 1.0, 7), None, np.array([0.0, 0.1, 1.0])])
    assert e.shape == (3, 8) and n.tolist() == [8, 0, 3] and u.tolist() == [1, 0, 0]
    assert gh.pack_edges([None])[0].shape == (1, 1)
    # a float16 column's thresholds past 65504 end in inf: not linspace, and no warning from trying
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gh.pack_edges([np.array([0.0, 3e4, np.inf])])[2].tolist() == [0]


def test_plan_units_and_pieces_cover_every_row():
    lengths = [0, 1, 999, 1000, 1001, 12_345]
    units = gh.plan_units(lengths, 1000)
    for c, n in enumerate(lengths):
        mine = [(a, b) for cc, a, b in units if cc == c]
        assert mine[0][0] == 0 and mine[-1][1] == n and all(x[1] == y[0] for x, y in zip(mine, mine[1:]))
        assert all(b - a <= 1000 for a, b in mine)
        assert len(mine) == max(1, -(-n // 1000))
    assert gh.plan_pieces(0, 4, 16) == []
    pieces = gh.plan_pieces(1001, 8, 800)
    assert pieces[0] == (0, 100) and pieces[-1] == (1000, 1001) and len(pieces) == 11
    with pytest.raises(ValueError, match="max_rows"):
        gh.plan_units([5], 0)


def test_stage_copy_copies_strided_columns_in_parallel(rng):
    x = rng.normal(size=(300_000, 3)).astype(np.float32)  # C order: each column strided
    dst = np.empty(300_000, dtype=np.float32)
    with ThreadPoolExecutor(4) as pool:
        gh.stage_copy(dst, x[:, 1], pool)
    assert np.array_equal(dst, x[:, 1])
    small = np.empty(10, dtype=np.float32)
    gh.stage_copy(small, x[:10, 2])
    assert np.array_equal(small, x[:10, 2])


def test_row_major_columns_are_staged_a_row_block_at_a_time(rng, monkeypatch):
    """Evenly spaced columns of one C-ordered host matrix are viewed as one (rows, k) block and staged tile by
    tile into a (k, rows) buffer; anything else is staged column by column."""
    x = rng.normal(size=(300_000, 7)).astype(np.float32)  # C order: each column strided
    block = gh.row_block([x[:, j] for j in range(1, 6)])
    assert np.array_equal(block, x[:, 1:6]) and not block.flags.writeable
    assert np.array_equal(gh.row_block([x[:, 0], x[:, 3], x[:, 6]]), x[:, ::3])
    f = np.asfortranarray(x)
    for cols in ([x[:, 2], x[:, 1]], [x[:, 0], x[:, 1], x[:, 3]], [x[:, 0], x[:, 1].copy()], [f[:, 0], f[:, 1]],
                 [x[:, 0]], [x[:, 0], rng.normal(size=(300_000, 7)).astype(np.float32)[:, 1]],
                 [x[:-1, 0], x[1:, 1]], [x[:, 0], x.view(np.int32)[:, 1]]):
        assert gh.row_block(cols) is None
    monkeypatch.setattr(gh, "TILE_BYTES", 4096)  # tiles of 146 rows: many per thread's range, a short last one
    dst = np.empty((5, 300_000), dtype=np.float32)
    with ThreadPoolExecutor(4) as pool:
        gh.stage_block(dst, block, pool)
    assert np.array_equal(dst, x[:, 1:6].T)
    small = np.empty((5, 100), dtype=np.float32)
    gh.stage_block(small, block[7:107])
    assert np.array_equal(small, x[7:107, 1:6].T)
    # a worker's failure is raised, after every range has finished
    with ThreadPoolExecutor(4) as pool, pytest.raises(TypeError):
        gh.stage_block(np.empty((5, 300_000)), block, pool)


def test_row_blocks_of_other_arrays_and_dtypes(rng, tmp_path):
    """Columns of a memory-mapped matrix (each a view of its own), of a read-only buffer, float64 and int64
    values, and a narrow group of a wide matrix (tiles sized by the group's own span, not the row's)."""
    x = rng.normal(size=(70_000, 9))
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    cols = [np.asarray(mm[:, j]) for j in range(2, 5)]  # as the NumPy source hands them over
    assert cols[0].base is not cols[1].base
    assert np.array_equal(gh.row_block(cols), x[:, 2:5])
    ro = np.frombuffer(x.astype(np.int64).tobytes(), dtype=np.int64).reshape(x.shape)
    assert np.array_equal(gh.row_block([ro[:, 0], ro[:, 4], ro[:, 8]]), x.astype(np.int64)[:, ::4])
    wide = rng.normal(size=(70_000, 1000)).astype(np.float32)
    block = gh.row_block([wide[:, j] for j in range(10, 16)])
    dst = np.empty((6, 70_000), dtype=np.float32)
    with ThreadPoolExecutor(2) as pool:
        gh.stage_block(dst, block, pool, parts=2)
    assert np.array_equal(dst, wide[:, 10:16].T)


def test_columns_of_a_c_ordered_matrix_are_grouped_by_whole_cache_lines(rng):
    """A group budget that holds 6 of a 64-column float32 matrix's columns: groups end at cache-line boundaries
    (16 columns each where rows start at a line), so that staging reads each line once, not 2.75-5.5 times;
    the device budget still holds; column-major columns, separate arrays, columns that are not adjacent and
    cut columns group as before."""
    same, nxt = gh.SAME_LINE, gh.NEXT_COLUMN
    n = 1000
    buf = np.zeros(n * 64 + 16, dtype=np.float32)
    first = (-buf.ctypes.data % 64) // 4
    m = buf[first:][: n * 64].reshape(n, 64)  # each row four whole lines
    links = gh.row_neighbours([m[:, j] for j in range(64)])
    assert links == [0] + [nxt if j % 16 == 0 else same for j in range(1, 64)]
    units = gh.plan_units([n] * 64, n)

    def widths(links, max_rows=64 * n, budget=6 * n * 4, order=range(64)):
        us = [units[j] for j in order]
        groups = gh.group_units(us, [n] * 64, ["f4"] * 64, max_rows, budget, links)
        assert [u for g in groups for u in g] == us  # every column once, in order
        return [len(g) for g in groups]

    assert widths(links) == [16] * 4
    assert widths(None) == widths([0] * 64) == [6] * 10 + [4]  # the budget alone
    assert widths(links, max_rows=10 * n) == [10, 6] * 4  # the device budget is never exceeded
    assert widths(links, budget=20 * n * 4) == [32, 32]  # past the budget, up to the next line
    assert widths(links, budget=0) == [1] * 64  # GROUP_BYTES = 0: every column alone, as documented
    # rows 16 bytes into a line: lines start at columns 12, 28, 44 and 60
    shifted = buf[first + 4 :][: (n - 1) * 64].reshape(n - 1, 64)
    links = gh.row_neighbours([shifted[:, j] for j in range(64)])
    assert links == [0] + [nxt if j % 16 == 12 else same for j in range(1, 64)]
    assert widths(links) == [12, 16, 16, 16, 4]
    # columns of a column-major matrix or of separate arrays are not neighbours; every other column is not
    f = np.asfortranarray(m)
    assert not any(gh.row_neighbours([f[:, j] for j in range(64)]))
    assert not any(gh.row_neighbours([rng.normal(size=n) for _ in range(4)]))
    assert not any(gh.row_neighbours([m[:, 0], m[:, 2], m[:, 4]]))
    # columns 0, 2, 4, 5, 6, 7 with a 3-column budget: the evenly spaced group 0, 2, 4 is not grown by 5
    # (it would no longer be one row block); 5, 6, 7 then group by the budget
    cols = [m[:, j] for j in (0, 2, 4, 5, 6, 7)]
    links = gh.row_neighbours(cols)
    assert links == [0, 0, 0, same, same, same]
    six = gh.plan_units([n] * 6, n)
    assert [len(g) for g in gh.group_units(six, [n] * 6, ["f4"] * 6, 6 * n, 3 * n * 4, links)] == [3, 3]
    # a column cut into units is never joined to its neighbour's group, nor its units to each other's
    cut = gh.group_units(gh.plan_units([3 * n, 3 * n], n), [3 * n] * 2, ["f4"] * 2, 3 * n, 4, [0, same])
    assert cut == [[(0, 0, n)], [(0, n, 2 * n)], [(0, 2 * n, 3 * n)], [(1, 0, n)], [(1, n, 2 * n)],
                   [(1, 2 * n, 3 * n)]]
    whole = gh.group_units(gh.plan_units([n, n], n), [n] * 2, ["f4"] * 2, 3 * n, 4, [0, same])
    assert whole == [[(0, 0, n), (1, 0, n)]]  # (the same two columns whole: joined)


def test_int_code_offset():
    assert gh.int_code_offset(0, 9, 10) == 0
    assert gh.int_code_offset(0, 10, 10) is None
    assert gh.int_code_offset(-3, 6, 10) == -3
    assert gh.int_code_offset(5, 5, 10) == 0


def _cpu_rank_statistics(a: np.ndarray, b: np.ndarray):
    """RankStatistics built from the CPU path's own functions (what the rank kernel reproduces)."""
    from cudrift.kernels._host import RankStatistics

    st = {alt: TESTS["ks"].func_sorted(a, b, alternative=alt).statistic for alt in ("two-sided", "greater", "less")}
    g = grid_from_sorted(a, b)
    return RankStatistics(st["greater"], st["less"], st["two-sided"], TESTS["wasserstein"].func_sorted(a, b).statistic,
                          TESTS["energy_distance"].func_sorted(a, b).statistic,
                          TESTS["cramervonmises"].func_sorted(a, b).statistic, anderson_a2kn_exact(g))


@pytest.mark.parametrize("n_a, n_b", [(12_000, 15_000), (300, 20_001)])
def test_finish_rank_test_gives_the_cpu_results(rng, n_a, n_b):
    a = np.sort(rng.normal(size=n_a))
    b = np.sort(rng.normal(0.03, size=n_b))
    stats = _cpu_rank_statistics(a, b)
    std = float(np.std(a))
    for test in gh.RANK_TESTS:
        ours = gh.finish_rank_test(test, stats, n_a, n_b, reference_std=std)
        spec = TESTS[test]
        ref = spec.func_sorted(a, b, reference_std=std) if test == "wasserstein_normalized" else spec.func_sorted(a, b)
        assert ours is not None, test
        assert (ours.method, ours.n_reference, ours.n_current) == (ref.method, ref.n_reference, ref.n_current)
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
        if ref.pvalue is None:
            assert ours.pvalue is None
        else:
            assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        assert {k: v for k, v in ref.details.items() if k in ours.details} == ours.details


def test_batched_ks_pvalues_equal_scipy_per_column(rng):
    """``ks_pvalues`` (one vectorized SciPy call) gives SciPy's asymptotic KS p-values, for KS columns only."""
    from cudrift.kernels._host import RankStatistics
    from cudrift.stats.univariate import ks_asymptotic

    sizes = [(20_000, 30_000), (12_000, 11_000), (1_500_000, 2_000_000), (400, 300), (30_000, 20_000)]
    tests = ["ks", "ks", "ks", "ks", "wasserstein_normalized"]
    stats, samples = [], []
    for i, (n_a, n_b) in enumerate(sizes):
        a = np.sort(rng.normal(size=n_a))
        b = np.sort(rng.normal(0.02 * i, size=n_b))
        d = scipy.stats.ks_2samp(a, b, method="asymp").statistic
        stats.append(RankStatistics(d, d, d, math.nan, math.nan, math.nan, math.nan))
        samples.append((a, b))
    pvalues = gh.ks_pvalues(stats, [n for n, _ in sizes], [n for _, n in sizes], tests)
    for r, p, (a, b) in zip(stats[:3], pvalues, samples):
        assert p == pytest.approx(scipy.stats.ks_2samp(a, b, method="asymp").pvalue, rel=1e-12, abs=1e-300)
        # the batch's value is the one finish_rank_test would have formed itself
        assert p == gh.finish_rank_test("ks", r, a.size, b.size).pvalue
    # small samples (exact p-value on the CPU) and other tests get none
    assert pvalues[3] is None and pvalues[4] is None
    assert [ks_asymptotic(n_a, n_b) for n_a, n_b in sizes] == [True, True, True, False, True]
    # finish_rank_test takes a batch's p-value when there is one
    assert gh.finish_rank_test("ks", stats[0], *sizes[0], ks_pvalue=0.125).pvalue == 0.125


def test_vectorized_kstwo_equals_the_scalar_function(rng):
    """``kstwo_sf_many`` equals ``kstwo_sf`` bit for bit, and ``ks_asymp_pvalues`` SciPy's asymp rule, edges included."""
    from cudrift.stats._dist import ks_asymp_pvalues, kstwo_sf, kstwo_sf_many

    d = np.concatenate(([0.0, 1e-9, 0.5, 0.999, 1.0], rng.uniform(0, 0.3, 60), rng.uniform(0, 0.01, 40)))
    n = np.concatenate(([1, 2, 141, 10_001, 3_000_000], rng.integers(1, 2_000_000, 100)))
    assert kstwo_sf_many(d, n).tolist() == [kstwo_sf(a, b) for a, b in zip(d, n)]
    n1 = np.concatenate(([10_001, 50_000, 2_000_000, 10_001, 7], rng.integers(10_001, 3_000_000, 100)))
    n2 = np.concatenate(([10_001, 20_000, 1_000_000, 3, 5], rng.integers(10_001, 3_000_000, 100)))
    # SciPy's two-sided asymp p-value: kstwo.sf(d, round(m n / (m + n))), m >= n, clipped to [0, 1]
    def rule(a, b, c):
        m, n = float(max(b, c)), float(min(b, c))
        return min(max(kstwo_sf(a, int(np.round(m * n / (m + n)))), 0.0), 1.0)

    assert ks_asymp_pvalues(d, n1, n2).tolist() == [rule(a, b, c) for a, b, c in zip(d, n1, n2)]


def test_rank_want_covers_each_test():
    from cudrift.kernels import _host

    assert gh.rank_want(["ks"]) == _host.WANT_KS
    assert gh.rank_want(["ks", "wasserstein_normalized"]) == _host.WANT_KS | _host.WANT_DISTANCES
    assert gh.rank_want(["anderson", "cramervonmises", "energy_distance"]) == (
        _host.WANT_AD | _host.WANT_CVM | _host.WANT_DISTANCES)
    assert set(gh.RANK_WANT) == set(gh.RANK_TESTS)
    # every rank test's statistic survives a launch with only its own bits
    fpart = np.ones((2, 5))
    ipart = np.array([[4, 3, 1, -2, 1, 2], [2, 2, 1, -5, 0, 1]], dtype=np.int64)
    full = _host.rank_statistics(fpart, ipart, 5, 4)
    for test, bits in gh.RANK_WANT.items():
        r = _host.rank_statistics(fpart, ipart, 5, 4, bits)
        field = {"ks": "ks", "wasserstein": "wasserstein", "wasserstein_normalized": "wasserstein",
                 "energy_distance": "energy", "cramervonmises": "cramervonmises", "anderson": "anderson_a2kn"}[test]
        assert getattr(r, field) == getattr(full, field), test


def test_finish_rank_test_leaves_small_samples_to_the_cpu(rng):
    a, b = np.sort(rng.normal(size=50)), np.sort(rng.normal(size=40))
    stats = _cpu_rank_statistics(a, b)
    assert gh.finish_rank_test("ks", stats, 50, 40) is None  # exact p-value needs the samples
    assert gh.finish_rank_test("cramervonmises", stats, 15, 20) is None
    assert gh.finish_rank_test("anderson", stats, 50, 40, distinct=False) is None
    assert gh.finish_rank_test("wasserstein_normalized", stats, 50, 40, reference_std=math.inf) is None
    assert gh.finish_rank_test("mannwhitneyu", stats, 50, 40) is None
    assert gh.finish_rank_test("wasserstein", stats, 50, 40) is not None


def test_is_device_array_reads_the_interfaces():
    class Cai:
        __cuda_array_interface__ = {"shape": (2,), "typestr": "<f8", "data": (0, False), "version": 3}

    class DLPack:
        def __init__(self, device_type):
            self.t = device_type

        def __dlpack__(self, stream=None):
            raise AssertionError("not called")

        def __dlpack_device__(self):
            return (self.t, 0)

    assert gh.is_device_array(Cai())
    assert gh.is_device_array(DLPack(2)) and gh.is_device_array(DLPack(13))
    assert not gh.is_device_array(DLPack(1)) and not gh.is_device_array(DLPack(3))
    assert not gh.is_device_array(np.zeros(3)) and not gh.is_device_array([1.0])


def _run(code: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=timeout)


def test_sorted_summary_recipe_under_the_simulator():
    """The summary recipe in src, run by the kernels in Numba's simulator, equals the CPU summary byte for byte."""
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")
    proc = _run("""
        import numpy as np
        from numba import cuda
        from cudrift.backends._gpu_summary import sorted_summary
        from cudrift.sketches.quantiles import _summarize_sorted

        class Ops:
            stream = 0
            def zeros(self, n, dtype): return cuda.to_device(np.zeros(n, dtype=dtype))
            def arg(self, a): return a
            def to_host(self, a): return a.copy_to_host()

        rng = np.random.default_rng(3)
        cases = [
            (np.sort(rng.normal(size=300)), 16),                            # k + 1 rank-spaced points
            (np.sort(rng.normal(size=300)).astype(np.float32), 16),
            (np.sort(rng.integers(0, 12, size=400)).astype(np.float64), 16),  # few distinct: exact summary
            (np.sort(rng.integers(0, 40, size=400)).astype(np.float32), 16),  # repeated points, too many values
            (np.sort(rng.normal(size=15)), 16),                             # m <= k + 1: exact
            (np.array([-0.0, 0.0, 0.0, 1.0] * 10), 4),                      # signed zeros
        ]
        for x, k in cases:
            ours = sorted_summary(cuda.to_device(x), k, Ops(), threads=32)
            ref = _summarize_sorted(x, k)
            for a, b in zip(ours, ref):
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (x.dtype, k, a, b)
        print("ok", len(cases))
    """, env={"NUMBA_ENABLE_CUDASIM": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok 6" in proc.stdout


def test_gpu_module_needs_cupy_numba_cuda_and_a_real_device():
    """Importing the GPU module fails with ImportError naming what is missing (what gpu_status reports)."""
    fake_cupy = "import sys, types; sys.modules['cupy'] = types.ModuleType('cupy')\n"
    cases = [
        ("import sys; sys.modules['cupy'] = None\n", {}, "needs CuPy"),
        (fake_cupy + "sys.modules['numba_cuda'] = None\n", {}, "needs numba-cuda"),
        (fake_cupy, {"NUMBA_ENABLE_CUDASIM": "1"}, "simulator is on"),
    ]
    for prefix, env, message in cases:
        proc = _run(prefix + textwrap.dedent("""
            try:
                import cudrift.backends._gpu
            except ImportError as exc:
                print("ImportError:", exc)
            else:
                print("imported")
        """), env=env)
        assert proc.returncode == 0, proc.stderr
        if message == "needs numba-cuda" and "numba_cuda" not in sys.modules:
            pytest.importorskip("numba_cuda")
        assert "ImportError:" in proc.stdout and message in proc.stdout, (message, proc.stdout, proc.stderr)
    usable, reason = gpu_status()
    assert isinstance(usable, bool) and reason


@pytest.mark.skipif(GPU_OK, reason="a GPU is usable here: this checks the error of a machine without one")
def test_backend_gpu_without_a_device_says_why():
    with pytest.raises(cudrift.BackendUnavailableError, match="not usable here"):
        cudrift.profile({"x": np.arange(10.0)}, backend="gpu")
    assert cudrift.profile({"x": np.arange(10.0)}, backend="auto").n_rows == 10


def test_gpu_check_dry_run_prints_the_plan():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--quick",
                           "--assume-free-gib", "4"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["dry_run"] and out["plan"]["quick"]
    assert out["steps"][:2] == ["card", "pytest"]
    assert "tests/test_gpu_backend.py" in out["plan"]["pytest"]["args"]
    # 4 GiB of free memory shrinks the profile pass below 1e8 x 32
    assert out["plan"]["profile"]["rows"] * 32 * 4 <= 0.3 * 4 * 2**30


# ============================================================== GPU against NumPy (marker gpu)


def _assert_profiles_match(pc, pg, rtol: float = 1e-9) -> None:
    assert list(pc.columns) == list(pg.columns) and pc.kinds == pg.kinds and pc.n_rows == pg.n_rows
    assert pc.errors == pg.errors
    for n in pc.columns:
        a, b = pc.columns[n], pg.columns[n]
        if isinstance(a, NumericColumnProfile):
            _assert_numeric_equal(a, b, rtol)
        else:
            assert a == b, n


def _host_window(rng, n: int) -> dict:
    return {
        "f32": _with_specials(rng.normal(size=n), rng).astype(np.float32),
        "f64": _with_specials(rng.standard_t(3, size=n), rng),
        "ints": rng.integers(-1000, 1000, size=n),
        "cat_int": rng.integers(-2, 5, size=n),
        "flag": rng.random(size=n) < 0.3,
        "label": np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, size=n)],
    }


def _assert_reports_match(rc, rg, rel: float) -> None:
    """Same columns, tests, statuses and verdicts; statistics to ``rel``, p-values to 1e-6 (NumPy ``rc``, GPU ``rg``)."""
    assert [f.column for f in rc.features] == [f.column for f in rg.features]
    for fa, fb in zip(rc.features, rg.features):
        assert (fa.test, fa.status, fa.drifted) == (fb.test, fb.status, fb.drifted), (fa, fb)
        if fa.statistic is None:  # not tested (a column with no values, a kind mismatch)
            assert fb.statistic is None, fb
        else:
            assert fb.statistic == pytest.approx(fa.statistic, rel=rel), fa.column
        if fa.pvalue is None:
            assert fb.pvalue is None
        else:
            assert fb.pvalue == pytest.approx(fa.pvalue, rel=1e-6, abs=1e-9)
    # the same findings (their values are estimates where the paths' sketches differ, as out_of_range's)
    assert sorted((f.check, f.column) for f in rc.findings) == sorted((f.check, f.column) for f in rg.findings)


def _assert_cut_units_match(pc, pg, cur: np.ndarray, names: list[str], n_batches: int, rel: float) -> None:
    """A window profiled in ``n_batches`` units per column (``pg``) against the NumPy path's one batch (``pc``)."""
    for n in names:
        a, b = pc.columns[n], pg.columns[n]
        for f in ("count", "nan_count", "posinf_count", "neginf_count", "histogram", "sample"):
            assert getattr(a, f) == getattr(b, f), f
        assert b.quantiles.n_batches == n_batches and b.quantiles.n == a.quantiles.n
        assert b.moments.mean == pytest.approx(a.moments.mean, rel=rel)
        assert b.moments.m2 == pytest.approx(a.moments.m2, rel=rel)
        # the multi-batch sketch stays within its own bound of the exact ranks
        q = np.linspace(0, 1, 11)
        finite = np.sort(cur[:, names.index(n)][np.isfinite(cur[:, names.index(n)])])
        ranks = np.searchsorted(finite, b.quantiles.quantile(q), side="right") / finite.size
        assert np.all(np.abs(ranks - q) <= b.quantiles.normalized_rank_error + 1.0 / finite.size)


def _launch_widths(monkeypatch) -> list[int]:
    """The number of columns of every profile launch of the GPU path from now on (appended as they happen)."""
    from cudrift.backends import _gpu

    widths: list[int] = []
    launch = _gpu._launch_group

    def spy(dev, x2d, jobs, **kw):
        widths.append(len(jobs))
        return launch(dev, x2d, jobs, **kw)

    monkeypatch.setattr(_gpu, "_launch_group", spy)
    return widths


def _grouped_host_table(rng, n: int, shift: float = 0.0):
    """Host columns that the GPU path stages in groups: runs of float32, other dtypes between, nulls, an empty one."""
    import pyarrow as pa

    cols = {f"f{j}": _with_specials(rng.normal(shift + 0.1 * j, size=n), rng).astype(np.float32) for j in range(5)}
    cols["no_finite"] = np.where(rng.random(n) < 0.5, np.nan, np.inf).astype(np.float32)  # grouped, nothing to summarize
    few = np.full(n, np.nan, dtype=np.float32)
    few[rng.choice(n, 7, replace=False)] = rng.normal(size=7)  # grouped, summarized exactly (<= k + 1 values)
    cols["few"] = few
    cols["wide"] = rng.standard_t(3, size=n) + shift  # float64 between float32 runs
    cols["half"] = rng.normal(shift, size=n).astype(np.float16)
    cols["g"] = rng.normal(shift, size=n).astype(np.float32)
    cols["ints"] = rng.integers(-50, 50, size=n)
    return pa.table({
        **cols,
        "with_nulls": pa.array(rng.normal(shift, size=n).astype(np.float32), mask=rng.random(n) < 0.1),
        "all_null": pa.nulls(n, type=pa.float32()),
        "tail": rng.exponential(size=n).astype(np.float32) + shift,
    })


@pytest.mark.gpu
@pytest.mark.skipif(not GPU_OK, reason=f"GPU backend not usable: {GPU_REASON}")
class TestOnGpu:
    """Each test runs the GPU path and the NumPy path on the same fresh data."""

    @pytest.mark.parametrize("n", [5_000, 60_000])
    def test_profile_host_window_matches_numpy(self, rng, n):
        cfg = ProfileConfig(quantile_k=256 if n < 10_000 else 2048)
        data = _host_window(rng, n)
        pc = cudrift.profile(data, config=cfg, backend="cpu")
        pg = cudrift.profile(data, config=cfg, backend="gpu")
        _assert_profiles_match(pc, pg)
        cur = _host_window(rng, n)
        _assert_profiles_match(cudrift.profile(cur, like=pc, backend="cpu"),
                               cudrift.profile(cur, like=pc, backend="gpu"))

    def test_device_inputs_are_read_in_place(self, rng):
        import cupy

        from cudrift.backends._gpu_source import device_source

        x = cupy.asarray(rng.normal(size=(1000, 3)))
        src = device_source(x, ["a", "b", "c"])
        batch = next(iter(src.iter_batches()))
        assert batch["b"]().values.data.ptr == x[:, 1].data.ptr
        col = cupy.asarray(rng.normal(size=1000))
        src = device_source({"v": col, "w": np.arange(1000.0)})
        batch = next(iter(src.iter_batches()))
        assert batch["v"]().values.data.ptr == col.data.ptr
        assert isinstance(batch["w"]().values, np.ndarray)

    @pytest.mark.parametrize("order", ["C", "F"])
    def test_device_matrix_matches_numpy(self, rng, order):
        import cupy

        x = np.asarray(_with_specials(rng.normal(size=(30_000, 5)), rng).astype(np.float32), order=order)
        names = list("abcde")
        pc = cudrift.profile(x, columns=names, backend="cpu")
        _assert_profiles_match(pc, cudrift.profile(cupy.asarray(x, order=order), columns=names, backend="gpu"))
        cur = rng.normal(0.1, size=(20_000, 5)).astype(np.float32)
        cc = cudrift.profile(cur, columns=names, like=pc, backend="cpu")
        _assert_profiles_match(cc, cudrift.profile(cupy.asarray(cur), columns=names, like=pc, backend="gpu"))
        # a slice of columns: one launch over a non-contiguous sub-matrix
        sub = cupy.asarray(x)[:, 1:4]
        _assert_profiles_match(cudrift.profile(x[:, 1:4], columns=list("bcd"), backend="cpu"),
                               cudrift.profile(sub, columns=list("bcd"), backend="gpu"))

    def test_device_dict_and_dlpack_inputs_match_numpy(self, rng):
        import cupy

        data = _host_window(rng, 20_000)
        pc = cudrift.profile(data, backend="cpu")
        dev = {k: (v if v.dtype == object else cupy.asarray(v)) for k, v in data.items()}
        _assert_profiles_match(pc, cudrift.profile(dev, backend="gpu"))

        class OnlyDLPack:  # a foreign device array that speaks DLPack only
            def __init__(self, a):
                self.a = a

            def __dlpack__(self, **kwargs):
                return self.a.__dlpack__(**kwargs)

            def __dlpack_device__(self):
                return self.a.__dlpack_device__()

        x = rng.normal(size=(5_000, 2))
        _assert_profiles_match(cudrift.profile(x, columns=["p", "q"], backend="cpu"),
                               cudrift.profile(OnlyDLPack(cupy.asarray(x)), columns=["p", "q"], backend="gpu"))

    def test_host_window_streams_in_units_and_pieces(self, rng, monkeypatch):
        from cudrift.backends import _gpu

        names = ["a", "b"]
        ref_x = rng.normal(size=(40_000, 2)).astype(np.float32)
        ref = cudrift.profile(ref_x, columns=names, backend="cpu")
        cur = _with_specials(rng.normal(0.2, size=(25_000, 2)), rng).astype(np.float32)
        pc = cudrift.profile(cur, columns=names, like=ref, backend="cpu")
        monkeypatch.setattr(_gpu, "MAX_UNIT_ROWS", 6_000)  # 5 units per column
        monkeypatch.setattr(_gpu, "PIECE_BYTES", 4_096)  # 1,024 values per pinned transfer
        pg = cudrift.profile(cur, columns=names, like=ref, backend="gpu")
        _assert_cut_units_match(pc, pg, cur, names, n_batches=5, rel=1e-9)

    def test_moments_far_from_their_first_values_match_numpy(self, rng):
        """1e12 + N(0, 1) behind leading NaN, or after a placeholder 0; int64 near 2**62: moments to 1e-9."""
        import cupy

        n = 200_000
        data = {"lag": 1e12 + rng.normal(size=n), "zero": 1e12 + rng.normal(size=n),
                "ints": 2**62 + rng.integers(-10**6, 10**6, size=n)}
        data["lag"][:1000] = np.nan
        data["zero"][0] = 0.0
        pc = cudrift.profile(data, backend="cpu")
        _assert_profiles_match(pc, cudrift.profile(data, backend="gpu"))
        _assert_profiles_match(pc, cudrift.profile({k: cupy.asarray(v) for k, v in data.items()}, backend="gpu"))

    @pytest.mark.parametrize("where", ["host", "device"])
    def test_a_reference_past_max_batch_rows_gets_the_cpu_edges(self, rng, monkeypatch, where):
        """Long columns are cut at the CPU path's MAX_BATCH_ROWS on the device too: same sketches, same edges."""
        import cupy

        from cudrift.sketches import column

        monkeypatch.setattr(column, "MAX_BATCH_ROWS", 7_000)
        names = ["a", "b"]
        x = _with_specials(rng.normal(size=(30_000, 2)), rng).astype(np.float32)
        pc = cudrift.profile(x, columns=names, backend="cpu")
        pg = cudrift.profile(x if where == "host" else cupy.asarray(x), columns=names, backend="gpu")
        _assert_profiles_match(pc, pg)
        assert pg.columns["a"].quantiles.n_batches == 5
        assert (pc + pg).n_rows == 60_000  # equal edges: CPU and GPU references merge

    @pytest.mark.parametrize("group_bytes", [0, 3 * 4 * 20_000, None])
    def test_host_columns_staged_in_groups_match_numpy(self, rng, monkeypatch, group_bytes):
        """Whole host columns of one dtype and length share a staged block and a launch; answers stay the CPU's."""
        from cudrift.backends import _gpu

        if group_bytes is not None:  # None: the default, every column of a dtype and length in one group
            monkeypatch.setattr(_gpu, "GROUP_BYTES", group_bytes)
        monkeypatch.setattr(_gpu, "PIECE_BYTES", 16_384)  # several pinned transfers per column
        widths = _launch_widths(monkeypatch)
        table = _grouped_host_table(rng, 20_000)
        pc = cudrift.profile(table, backend="cpu")
        pg = cudrift.profile(table, backend="gpu")
        _assert_profiles_match(pc, pg)
        assert max(widths) == (1 if group_bytes == 0 else (3 if group_bytes else 7)), widths
        cur = _grouped_host_table(rng, 15_000, shift=0.2)
        _assert_profiles_match(cudrift.profile(cur, like=pc, backend="cpu"),
                               cudrift.profile(cur, like=pc, backend="gpu"))
        _assert_reports_match(DriftDetector(table, backend="cpu").compare(cur),
                              DriftDetector(table, backend="gpu").compare(cur), rel=1e-6)

    @pytest.mark.parametrize("keep_for_edges", [True, False])
    def test_reference_histogram_pass(self, rng, monkeypatch, keep_for_edges):
        """Edges from the sketch, then the counting pass: from kept sorted columns or by reading again."""
        from cudrift.backends import _gpu

        if not keep_for_edges:
            monkeypatch.setattr(_gpu, "_keep_fits", lambda *a: (True, False))
        data = _host_window(rng, 30_000)
        import cupy

        dev = {k: (v if v.dtype == object else cupy.asarray(v)) for k, v in data.items()}
        pc = cudrift.profile(data, backend="cpu")
        _assert_profiles_match(pc, cudrift.profile(data, backend="gpu"))
        _assert_profiles_match(pc, cudrift.profile(dev, backend="gpu"))

    def test_signed_nan_and_zero_sort_like_numpy(self, rng):
        import cupy

        x = rng.normal(size=10_000).astype(np.float32)
        bits = x.view(np.uint32)
        bits[:30] = 0xFFC00000  # NaN with the sign bit set: the radix sort would put it first
        bits[30:60] = 0x80000000  # -0.0
        x[60:90] = 0.0
        pc = cudrift.profile({"x": x}, backend="cpu")
        _assert_profiles_match(pc, cudrift.profile({"x": cupy.asarray(x)}, backend="gpu"))

    def test_device_categories_match_numpy(self, rng):
        import cupy

        ref = {"small": rng.integers(-3, 4, size=8_000), "flag": rng.random(size=8_000) < 0.2,
               "wide": rng.integers(0, 5, size=8_000) * (1 << 40)}  # a span too wide for dense codes
        pc = cudrift.profile(ref, backend="cpu")
        assert all(k == "categorical" for k in pc.kinds.values())
        _assert_profiles_match(pc, cudrift.profile({k: cupy.asarray(v) for k, v in ref.items()}, backend="gpu"))
        cur = {"small": rng.integers(-4, 6, size=5_000), "flag": rng.random(size=5_000) < 0.6,
               "wide": rng.integers(0, 7, size=5_000) * (1 << 40)}
        _assert_profiles_match(cudrift.profile(cur, like=pc, backend="cpu"),
                               cudrift.profile({k: cupy.asarray(v) for k, v in cur.items()}, like=pc, backend="gpu"))
        # an integer-category column that gained NaN arrives as floats: read as integer labels
        fl = cur["small"].astype(np.float64)
        fl[:50] = np.nan
        _assert_profiles_match(cudrift.profile({"small": fl}, like=pc, columns=None, backend="cpu"),
                               cudrift.profile({"small": cupy.asarray(fl)}, like=pc, backend="gpu"))

    def test_profiles_merge_and_serialize_with_cpu_ones(self, rng):
        data = _host_window(rng, 10_000)
        ref = cudrift.profile(data, backend="cpu")
        a = cudrift.profile(_host_window(rng, 7_000), like=ref, backend="gpu")
        b = cudrift.profile(_host_window(rng, 9_000), like=ref, backend="cpu")
        merged = a + b
        back = cudrift.Profile.from_bytes(merged.to_bytes())
        _assert_profiles_match(merged, back, rtol=0.0)
        assert (b + a).n_rows == 16_000

    @pytest.mark.parametrize("policy", ["ks", "anderson", "cramervonmises", "wasserstein_normalized", "energy_distance",
                                        "wasserstein", "mannwhitneyu", "ttest", "auto", "psi", "mmd"])
    def test_detector_reports_match_numpy(self, rng, policy):
        import cupy

        n = 20_000
        ref = _host_window(rng, n)
        cur = _host_window(rng, n)
        cur["f32"] = cur["f32"] + np.float32(0.05)
        cfg = ProfileConfig(sample_size=2_000)  # MMD runs on the samples: keep the CPU twin quick
        dc = DriftDetector(ref, policy=policy, config=cfg, backend="cpu")
        dg = DriftDetector(ref, policy=policy, config=cfg, backend="gpu")
        assert dg.is_exact == dc.is_exact
        rc = dc.compare(cur)
        for window in (cur, {k: (v if v.dtype == object else cupy.asarray(v)) for k, v in cur.items()}):
            rg = dg.compare(window)
            _assert_reports_match(rc, rg, rel=1e-6)
            assert rg.dataset_drift == rc.dataset_drift and rg.metadata["backend"] == "gpu"
            assert [f.check for f in rg.findings] == [f.check for f in rc.findings]

    def test_small_samples_take_the_exact_cpu_p_values(self, rng):
        ref = {"x": rng.normal(size=400)}
        cur = {"x": rng.normal(0.3, size=300)}
        for policy in ("ks", "cramervonmises", "anderson"):
            a = DriftDetector(ref, policy=policy, backend="cpu").compare(cur).features[0]
            b = DriftDetector(ref, policy=policy, backend="gpu").compare(cur).features[0]
            assert (b.statistic, b.pvalue) == pytest.approx((a.statistic, a.pvalue), rel=1e-9)

    def test_sample_candidates_match_the_host_hash(self):
        from cudrift.backends import _gpu

        cands = _gpu._Candidates()
        for start, m, seed, below in [(0, 10_000, 0, None), (123, 50_000, 7, 1 << 54),
                                      (2**64 - 5, 20, 3, None), (10, (1 << 22) + 17, 99, 1 << 50)]:
            pos, pri = cands(start, m, seed, below)
            ref_pos, ref_pri = sample_mod._candidates(start, m, seed, below)
            assert np.all(pri[1:] > pri[:-1])  # handed over in priority order
            by_pos = np.argsort(pos)
            assert np.array_equal(pos[by_pos], ref_pos) and np.array_equal(pri[by_pos], ref_pri)

    def test_sorted_summary_on_the_device(self, rng):
        import cupy

        from cudrift.backends import _gpu
        from cudrift.backends._gpu_summary import sorted_summary

        for x in (np.sort(rng.normal(size=200_000)).astype(np.float32),
                  np.sort(rng.integers(0, 1000, size=100_000)).astype(np.float64)):
            with _gpu._section() as dev:
                ours = sorted_summary(cupy.asarray(x), 2048, _gpu._Ops(dev))
            for a, b in zip(ours, _summarize_sorted(x, 2048)):
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes()

    def test_rank_statistics_match_scipy(self, rng):
        import cupy

        from cudrift.backends import _gpu

        a = np.sort(rng.normal(size=30_000))
        b = np.sort(rng.normal(0.02, size=25_000)).astype(np.float32)
        r = _gpu.rank_statistics(cupy.asarray(a), cupy.asarray(b))
        b64 = b.astype(np.float64)
        assert r.ks == pytest.approx(scipy.stats.ks_2samp(a, b64).statistic, rel=1e-12)
        assert r.wasserstein == pytest.approx(scipy.stats.wasserstein_distance(a, b64), rel=1e-9)
        assert r.energy == pytest.approx(scipy.stats.energy_distance(a, b64), rel=1e-9)
        assert r.cramervonmises == pytest.approx(
            scipy.stats.cramervonmises_2samp(a, b64, method="asymptotic").statistic, rel=1e-9)

    def test_rank_statistics_of_many_columns_in_one_launch(self, rng):
        """Columns of one allocation (read in place), of separate ones (grouped) and of mixed dtypes."""
        import cupy

        from cudrift.backends import _gpu

        refs = [np.sort(rng.normal(size=n)) for n in (30_000, 5, 12_000)]
        curs = [np.sort(rng.normal(0.05, size=n)).astype(np.float32) for n in (20_000, 40_000, 3)]
        flat = cupy.asarray(np.concatenate(refs))
        ref_views = [flat[:30_000], flat[30_000:30_005], flat[30_005:]]
        packed = _gpu.pack_columns({str(i): cupy.asarray(c) for i, c in enumerate(curs)})
        cur_views = [packed[str(i)] for i in range(3)]
        assert len({id(v.data.mem) for v in cur_views}) == 1
        mixed = [cupy.asarray(curs[0].astype(np.float64)), cupy.asarray(curs[1]), cupy.asarray(curs[2])]
        for cur_side in (cur_views, mixed):
            got = _gpu.rank_statistics_many(list(zip(ref_views, cur_side)))
            for a, b, r in zip(refs, curs, got):
                b64 = b.astype(np.float64)
                assert r.ks == pytest.approx(scipy.stats.ks_2samp(a, b64).statistic, rel=1e-12)
                assert r.wasserstein == pytest.approx(scipy.stats.wasserstein_distance(a, b64), rel=1e-9)
                assert r.cramervonmises == pytest.approx(
                    scipy.stats.cramervonmises_2samp(a, b64, method="asymptotic").statistic, rel=1e-9)

    def test_detector_on_a_device_matrix_matches_numpy(self, rng):
        """A 2-D device window: the sorted columns share one allocation and are tested in one launch."""
        import cupy

        names = [f"c{j}" for j in range(6)]
        ref = rng.normal(size=(30_000, 6)).astype(np.float32)
        cur = rng.normal(size=(25_000, 6)).astype(np.float32)
        cur[:, :3] += np.float32(0.03)
        # a test per column: one launch computes the union of what they need, KS p-values batched
        mixed = dict(zip(names, ["ks", "anderson", "cramervonmises", "wasserstein_normalized", "energy_distance",
                                 "ks"]))
        for policy in ("ks", "auto", "cramervonmises", mixed):
            rc = DriftDetector(ref, columns=names, policy=policy, backend="cpu").compare(cur, columns=names)
            dg = DriftDetector(cupy.asarray(ref), columns=names, policy=policy, backend="gpu")
            for window in (cupy.asarray(cur), cupy.asfortranarray(cupy.asarray(cur))):
                _assert_reports_match(rc, dg.compare(window, columns=names), rel=1e-6)

    def test_few_valued_columns_counted_per_value(self, rng):
        """Few-valued numeric columns: each value of either window counted on the device, as the NumPy path does."""
        import cupy

        names = ["moved", "same", "x"]
        n = 50_000
        ref = np.stack([rng.choice([0.0, 1.0], n), rng.choice([1.0, 2.0, 3.0], n), rng.normal(size=n)], axis=1)
        cur = np.stack([rng.choice([0.0, 0.2, 0.8], n), rng.choice([1.0, 2.0, 3.0], n), rng.normal(size=n)], axis=1)
        for rdt, cdt in ((np.float32, np.float32), (np.float64, np.float64), (np.float64, np.float32)):
            r, c = ref.astype(rdt), cur.astype(cdt)
            rc = DriftDetector(r, columns=names, backend="cpu").compare(c, columns=names)
            assert rc["moved"].drifted and not rc["same"].drifted
            dg = DriftDetector(cupy.asarray(r), columns=names, backend="gpu")
            _assert_reports_match(rc, dg.compare(cupy.asarray(c), columns=names), rel=1e-9)

    def test_uint64_keys_past_2_63_match_numpy(self):
        import cupy

        u = np.array([2**64 - 1, 2**64 - 2, 2**64 - 3], dtype=np.uint64)[np.arange(3000) % 3]
        pc = cudrift.profile({"u": u}, backend="cpu")
        pg = cudrift.profile({"u": cupy.asarray(u)}, backend="gpu")
        assert dict(pg["u"].counts.items()) == dict(pc["u"].counts.items())
        assert not DriftDetector(pc, backend="gpu").compare({"u": cupy.asarray(u)})["u"].drifted

    def test_mmd_matches_numpy(self, rng):
        from cudrift.backends import _gpu
        from cudrift.stats import mmd

        x, y = rng.normal(size=(700, 3)), rng.normal(0.1, size=(600, 3))
        for bandwidth in (None, 1.5):
            a = mmd(x, y, bandwidth=bandwidth, n_permutations=60, seed=4)
            b = _gpu.mmd(x, y, bandwidth=bandwidth, n_permutations=60, seed=4)
            assert b.statistic == pytest.approx(a.statistic, rel=1e-9, abs=1e-12)
            assert b.pvalue == a.pvalue and b.details == a.details
        with pytest.raises(ValueError, match="bandwidth"):
            _gpu.mmd(x, y, bandwidth=-1.0)

    def test_cudf_input_matches_pandas(self, rng, via_arrow):
        cudf = pytest.importorskip("cudf", reason="cuDF is not installed")
        pd = pytest.importorskip("pandas")

        n = 10_000
        pdf = pd.DataFrame({"x": rng.normal(size=n), "k": rng.integers(0, 4, size=n),
                            "s": np.array(["u", "v", "w"], dtype=object)[rng.integers(0, 3, size=n)]})
        pdf.loc[::97, "x"] = None
        gdf = cudf.from_pandas(pdf)
        pc = cudrift.profile(pdf, backend="cpu")
        _assert_profiles_match(pc, cudrift.profile(gdf, backend="gpu"))
        _assert_profiles_match(cudrift.profile(pdf, like=pc, backend="cpu"),
                               cudrift.profile(gdf, like=pc, backend="gpu"))
        # NaN and nulls in one float column: cuDF's dropna would drop the NaN too; cudrift counts them apart
        import pyarrow as pa

        v = rng.normal(size=n)
        v[::31] = np.nan
        nulls = np.zeros(n, dtype=bool)
        nulls[::97] = True
        s = cudf.Series(v, nan_as_null=False)
        s[nulls] = None
        assert s.null_count == nulls.sum()
        host = cudrift.profile({"v": pa.array(v, mask=nulls)}, backend="cpu")
        dev = cudrift.profile({"v": s}, backend="gpu")
        _assert_profiles_match(host, dev)
        assert dev.columns["v"].nan_count == int(np.isnan(v[~nulls]).sum()) > 0
        assert via_arrow == []  # nulls dropped on the device, the NaN kept there

    def test_errors_report_keeps_the_other_columns(self, rng):
        import cupy

        data = {"ok": cupy.asarray(rng.normal(size=100)), "bad": cupy.asarray(rng.normal(size=100) * 1j)}
        prof = cudrift.profile(data, backend="gpu", errors="report")
        assert list(prof.columns) == ["ok"] and "bad" in prof.errors

    def test_warm_up_runs_once(self):
        from cudrift.backends import _gpu

        first = _gpu.warm_up()
        assert first >= 0.0 and _gpu.warm_up() == 0.0
