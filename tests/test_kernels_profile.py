"""The fused profiling kernel against ``NumericColumnProfile.update`` (its CPU twin).

Runs in Numba's CUDA simulator by default: ``NUMBA_ENABLE_CUDASIM`` is set to 1
before Numba is imported unless the environment already says otherwise (a
real GPU run sets ``NUMBA_ENABLE_CUDASIM=0``). Inputs stay small because the
simulator runs every CUDA thread as a Python thread.
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

from conftest_kernels import check_profile, run_profile, skip_unless_usable  # noqa: E402
from numba import cuda  # noqa: E402

from cudrift.backends._gpu_host import pack_edges  # noqa: E402
from cudrift.kernels import _cuda, _launch  # noqa: E402
from cudrift.kernels._host import float32_edges  # noqa: E402
from cudrift.kernels.profile import profile_shared_bytes, stage_slab  # noqa: E402
from cudrift.sketches.column import NumericColumnProfile  # noqa: E402
from cudrift.sketches.histogram import equal_mass_edges, uniform_edges  # noqa: E402

skip_unless_usable()


def _sprinkle(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Put NaN, +inf and -inf at a few random places of a float array."""
    x = x.copy()
    for v in (np.nan, np.inf, -np.inf):
        idx = rng.integers(0, x.size, size=3)
        x.flat[idx] = v
    return x


def test_mixed_columns_on_edges_and_specials():
    rng = np.random.default_rng(11)
    n_rows = 97  # not a multiple of the block size
    x = rng.normal(size=(n_rows, 4))
    e0 = equal_mass_edges(np.sort(x[:, 0]), 6)
    e1 = uniform_edges(-2.0, 2.0, 8)
    e3 = np.array([0.0, 1.0])
    # values exactly on every edge, the last edge included (closed last bin)
    x[: e0.size, 0] = e0
    x[: e1.size, 1] = e1
    x[:4, 3] = [0.0, 1.0, -0.0, np.nextafter(1.0, 2.0)]
    x[10:, :] = _sprinkle(x[10:, :], rng)
    check_profile(x, [e0, e1, None, e3], uniform=[0, 1, 0, 0], threads=32, row_blocks=2)


@pytest.mark.parametrize(
    "dtype, order",
    [(np.float32, "C"), (np.float32, "F"), (np.float64, "F"), (np.int64, "F"), (np.int8, "C"), (np.bool_, "C")],
)
def test_dtypes_and_layouts(dtype, order):
    rng = np.random.default_rng(12)
    if dtype == np.bool_:
        raw = rng.integers(0, 2, size=(70, 2)).astype(bool)
    elif np.issubdtype(dtype, np.integer):
        raw = rng.integers(-50, 50, size=(70, 2)).astype(dtype)
    else:
        raw = _sprinkle(rng.normal(scale=3.0, size=(70, 2)), rng).astype(dtype)
    x = np.asarray(raw, order=order)
    edges = [uniform_edges(-4.0, 4.0, 5), np.array([-10.0, -1.0, 0.0, 0.5, 1.0, 30.0])]
    check_profile(x, edges, uniform=[1, 0], threads=32, row_blocks=2)


@pytest.mark.parametrize("order", ["C", "F"])  # the row kernel and the column kernel
def test_null_mask_wins_over_nan_and_odd_block_size(order):
    rng = np.random.default_rng(13)
    x = np.asarray(_sprinkle(rng.uniform(-1.0, 1.0, size=(90, 3)), rng), order=order)
    mask = rng.random(size=x.shape) < 0.2
    mask[np.isnan(x)] |= rng.random(size=int(np.isnan(x).sum())) < 0.5
    edges = [uniform_edges(-1.0, 1.0, 4)] * 3
    check_profile(x, edges, uniform=[1, 0, 1], null_mask=mask, threads=48, row_blocks=3)


def test_empty_chunk_writes_identities():
    x = np.zeros((0, 2))
    res = check_profile(x, [np.array([0.0, 1.0]), None], threads=32, row_blocks=1)
    assert res["blk_count"].tolist() == [[0], [0]]
    assert np.all(res["mins"] == np.inf) and np.all(res["maxs"] == -np.inf)


def test_all_nan_and_all_infinite_columns():
    x = np.full((40, 3), np.nan)
    x[:, 1] = np.inf
    x[::2, 2] = -np.inf
    res = check_profile(x, [np.array([0.0, 1.0])] * 3, threads=32, row_blocks=2)
    assert res["special"].tolist() == [[0, 40, 0, 0], [0, 0, 40, 0], [0, 20, 0, 20]]
    assert res["count"].tolist() == [0, 0, 0]


# The simulator computes with NumPy scalars, which warn where CUDA silently
# overflows to inf (as the CPU twin does, quietly).
_OVERFLOW_OK = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


@_OVERFLOW_OK
@pytest.mark.parametrize(
    "lo, hi, n_bins",
    [(0.1, 0.7, 7), (-3.0, 1e-3, 10), (1e-300, 3e-300, 3), (-8e307, 8e307, 4), (5.0, 5.0 + 2**-40, 6)],
)
def test_uniform_closed_form_equals_binary_search(lo, hi, n_bins):
    edges = uniform_edges(lo, hi, n_bins)
    probes = np.concatenate(
        (
            edges,
            np.nextafter(edges, np.inf),
            np.nextafter(edges, -np.inf),
            np.linspace(lo, hi, 23),
            [lo - abs(lo) - 1.0, hi + abs(hi) + 1.0],
        )
    )
    x = np.stack((probes, probes), axis=1)
    res = check_profile(x, [edges, edges], uniform=[1, 0], threads=32, row_blocks=2)
    assert res["hist"][0].tolist() == res["hist"][1].tolist()


def test_non_uniform_edges_flagged_uniform_still_exact():
    # The closed form is only a first guess; the edges decide.
    rng = np.random.default_rng(14)
    edges = np.array([-5.0, -4.9, -1.0, 0.0, 0.001, 2.0, 40.0])
    x = np.concatenate((edges, rng.uniform(-6.0, 41.0, size=50)))[:, None]
    check_profile(x, [edges], uniform=[1], threads=32, row_blocks=2)


@pytest.mark.parametrize("order", ["C", "F"])
def test_global_histogram_path(order):
    """Both mappings' general kernels (profile_rows_general_kernel, profile_general_kernel): global atomics and a
    null mask."""
    rng = np.random.default_rng(15)
    x = np.asarray(rng.normal(size=(60, 2)), order=order)
    x[::7, 1] = np.nan
    edges = [equal_mass_edges(np.sort(x[:, 0]), 9), uniform_edges(-2.0, 2.0, 5)]
    private = run_profile(x, edges, uniform=[0, 1], threads=32, row_blocks=2, privatize=True)
    nulls = np.zeros(x.shape, dtype=bool)
    nulls[::5, 0] = True
    check_profile(x, edges, uniform=[0, 1], null_mask=np.asarray(nulls, order=order), threads=32, row_blocks=2,
                  privatize=False)
    shared = run_profile(x, edges, uniform=[0, 1], threads=32, row_blocks=2, privatize=False)
    assert private["hist"].tolist() == shared["hist"].tolist()


def test_launches_report_the_longest_thread_run_and_refuse_one_past_int32():
    """launch_profile returns the most rows one thread reads (what bounds the moments' rounding, see
    _host.moments_need_sorted); each thread counts its rows in 32 bits, so a grid that would give one thread
    2**31 rows is refused by name."""
    from cudrift.kernels.profile import _thread_run

    x = np.random.default_rng(3).normal(size=(100, 2))
    # column kernel: 2 row blocks of 32 threads read 64 rows a step; row kernel: 16 rows of 2 columns a step
    assert check_profile(np.asfortranarray(x), [None, None], threads=32, row_blocks=2)["run"] == 2
    assert check_profile(x, [None, None], threads=32, row_blocks=2)["run"] == 4
    assert _thread_run(2**31 - 1, 1, 1) == 2**31 - 1
    with pytest.raises(ValueError, match=r"2147483648 rows in 1 row blocks: a thread would read 2147483648 rows"):
        _thread_run(2**31, 1, 1)


def test_too_many_edges_for_shared_memory_falls_back():
    # 5000 edges need ~60 KB of shared memory, above the 48 KB default.
    assert profile_shared_bytes(5000, 32, True) > _launch.shared_limit()
    rng = np.random.default_rng(16)
    x = rng.uniform(0.0, 1.0, size=(40, 1))
    edges = uniform_edges(0.0, 1.0, 4999)
    check_profile(x, [edges], uniform=[1], threads=32, row_blocks=1)


@_OVERFLOW_OK
def test_signed_zero_and_huge_values():
    x = np.zeros((6, 3))
    x[:, 0] = [-0.0, -0.0, 0.0, -0.0, 0.0, -0.0]
    x[:, 1] = [1e300, -1e300, 1e300, -1e300, 5.0, -5.0]  # M2 overflows on both paths
    x[:, 2] = 1e200 * (1.0 + np.arange(6) * 1e-12)  # the CPU twin rescales these
    res = check_profile(x, [None, None, None], threads=32, row_blocks=1)
    assert not np.signbit(res["mins"][0]) and not np.signbit(res["maxs"][0])


def test_geometry_changes_no_count():
    rng = np.random.default_rng(17)
    x = _sprinkle(rng.normal(size=(75, 2)), rng)
    edges = [uniform_edges(-2.0, 2.0, 6), equal_mass_edges(np.sort(x[np.isfinite(x[:, 1]), 1]), 5)]
    results = [
        check_profile(x, edges, uniform=[1, 0], threads=t, row_blocks=rb) for t, rb in ((32, 1), (64, 2), (40, 3))
    ]
    for r in results[1:]:
        for key in ("hist", "special", "mins", "maxs", "count"):
            assert r[key].tolist() == results[0][key].tolist()


@pytest.mark.parametrize("group", [0, 16])
@pytest.mark.parametrize("order", ["C", "F"])
def test_long_columns_fold_many_groups(order, group, monkeypatch):
    """Hundreds of values per thread, next to huge values: one run of shifted sums per thread (``GROUP`` 0, the
    library's), and groups of 16 folded many times (the scheme ``benchmarks/profile_sweep.py`` times against it).
    The simulator reads the module's constants as it runs, so the patch takes effect."""
    from cudrift.kernels import _cuda
    from cudrift.kernels import profile as kp

    if group != kp.GROUP and not _cuda.SIMULATOR:
        pytest.skip("a compiled kernel keeps the GROUP it was compiled with (the simulator reads it as it runs)")
    monkeypatch.setattr(kp, "GROUP", group)
    rng = np.random.default_rng(18)
    x = np.empty((3000, 3))
    x[:, 0] = rng.normal(1e4, 0.1, size=3000)  # mean 1e5 spreads away: cancellation-prone
    x[:, 1] = rng.standard_t(2, size=3000)
    x[:, 2] = rng.normal(size=3000)
    x[::97, 2] = 1e200  # the overflow-safe path, interleaved with groups
    x = _sprinkle(x, rng)
    x = np.asarray(x, order=order)
    assert x.shape[0] // 32 > 4 * 16
    edges = [uniform_edges(1e4 - 0.2, 1e4 + 0.2, 20), equal_mass_edges(np.sort(x[np.isfinite(x[:, 1]), 1]), 16), None]
    with np.errstate(over="ignore", invalid="ignore"):
        check_profile(x, edges, uniform=[1, 0, 0], threads=32, row_blocks=1)


def _plans(monkeypatch) -> list:
    """Record every ``_rows_plan`` result (slab, private, cells, pitch) of the launches that follow."""
    from cudrift.kernels import profile as kp

    plans = []
    real = kp._rows_plan
    monkeypatch.setattr(kp, "_rows_plan", lambda *a: plans.append(real(*a)) or plans[-1])
    return plans


def test_row_major_slabs_and_wide_matrices(monkeypatch):
    """A C-ordered matrix wider than a block, and private histograms that fit a few columns at a time."""
    from cudrift.kernels import profile as kp

    launched = _plans(monkeypatch)
    rng = np.random.default_rng(19)
    x = _sprinkle(rng.normal(size=(90, 40)), rng)
    edges = [uniform_edges(-2.0, 2.0, 9) if j % 3 else None for j in range(40)]
    check_profile(x, edges, uniform=[1] * 40, threads=32, row_blocks=3)
    assert launched[-1][:2] == (20, True)  # 40 columns over 32 threads: two slabs of 20
    wide = [uniform_edges(-3.0 - 0.1 * j, 3.0, 600) for j in range(10)]
    y = np.ascontiguousarray(x[:, :10])
    check_profile(y, wide, uniform=[1] * 10, threads=32, row_blocks=2, privatize=True)
    assert launched[-1][0] < 10 and launched[-1][1]  # private histograms of 601 edges: a few columns per slab
    # two of those columns taken as not uniform: the binary search (no cell table past 257 edges), interleaved
    check_profile(np.ascontiguousarray(y[:, :2]), wide[:2], uniform=[0, 0], threads=32, row_blocks=2,
                  privatize=True)
    assert launched[-1] == (2, True, 0, 2)
    check_profile(y, wide, uniform=[0] * 10, threads=32, row_blocks=2, privatize=False)
    # a column slice of a C-ordered matrix keeps the row mapping
    assert kp.rows_layout(x[:, 5:9]) and not kp.rows_layout(np.asfortranarray(x)) and not kp.rows_layout(x[:, :1])


def test_column_ranges_of_a_device_window_are_cut_without_walking_its_rows(monkeypatch):
    """A column range of a wider device window (a view that is not contiguous), wider than a slab.

    Numba's own slicing lists one contiguous extent per row of such a view:
    at 1e8 rows the launch took minutes in Python before the kernel ran (the
    card run of 2026-11-27 stopped there). The slabs are now cut as views
    (:func:`_launch.column_range`); on a card, listing the extents of a view
    that is not contiguous fails this test. Counts as the CPU's.
    """
    from numba.cuda.cudadrv import dummyarray

    if not _cuda.SIMULATOR:  # (simulator arrays slice as NumPy does; it has no dummyarray.Array)
        real = dummyarray.Array.iter_contiguous_extent

        def contiguous_only(self):
            assert self.is_c_contig or self.is_f_contig, f"Numba walked the rows of a {self.shape} view"
            return real(self)

        monkeypatch.setattr(dummyarray.Array, "iter_contiguous_extent", contiguous_only)
    launched = _plans(monkeypatch)
    rng = np.random.default_rng(43)
    big = _sprinkle(rng.normal(size=(70, 48)), rng).astype(np.float32)
    d = cuda.to_device(big)
    for j0, j1 in ((4, 44), (40, 48), (0, 40)):
        view = _launch.column_range(d, j0, j1)
        assert view.shape == (70, j1 - j0) and tuple(view.strides) == tuple(d.strides)
        edges = [uniform_edges(-2.0, 2.0, 9) if j % 3 else equal_mass_edges(np.sort(rng.normal(size=200)), 7)
                 for j in range(j0, j1)]
        mask = rng.random(size=(70, j1 - j0)) < 0.1
        # the null mask a column range of a wider device mask, cut the same way
        wide_mask = np.zeros((70, 48), dtype=bool)
        wide_mask[:, j0:j1] = mask
        mask_view = _launch.column_range(cuda.to_device(wide_mask), j0, j1)
        check_profile(big[:, j0:j1], edges, uniform=[1 if j % 3 else 0 for j in range(j0, j1)], null_mask=mask,
                      threads=32, row_blocks=3, device=view, device_mask=mask_view)
    assert launched[-1][0] == 20  # 40 columns over 32 threads: two slabs of 20, each a range of the view
    assert _launch.column_range(d, 0, 48) is d


@pytest.mark.parametrize("order", ["C", "F"])
def test_moments_of_columns_far_from_zero_keep_their_precision(order):
    """Columns whose mean is 1e8 to 1e15 times their spread, float64 and int64 near 2**62, a NaN in row 0 (no
    shift) and a huge first value: M2 within 1e-10 of the CPU's exact two-pass sum and the mean exact to an
    ulp (check_profile). With each group's mean kept absolute, 1e12 + N(0, 1) had M2 1.2e-5 off and 1e15 1.7e-2;
    the kernels now accumulate from the column's row 0 (moment_shift)."""
    rng = np.random.default_rng(53)
    n = 150
    cols = [1e8 + rng.normal(size=n), 1e12 + rng.normal(size=n), -1e15 + rng.normal(size=n) * 3]
    x = np.asarray(np.stack(cols, axis=1), order=order)
    check_profile(x, [None, uniform_edges(1e12 - 3, 1e12 + 3, 9), None], uniform=[0, 1, 0], threads=32, row_blocks=3)
    nan_first = x.copy(order=order)
    nan_first[0, 1] = np.nan
    nan_first[0, 2] = 1e200  # a first value too large to shift from: the moments as before
    check_profile(nan_first, [None] * 3, threads=32, row_blocks=3)
    ints = np.asarray(2**62 + rng.integers(-1000, 1000, size=(n, 2)), order=order)
    check_profile(ints, [None, None], threads=32, row_blocks=3)


@pytest.mark.parametrize("edges32", ["auto", None])
def test_interleaved_and_column_after_column_layouts_count_alike(edges32, monkeypatch):
    """The row kernel's two shared layouts (:func:`slab_offsets`) against the CPU twin and each other.

    Interleaved at pitch 32 with six copies of 5 columns (12 rows per block:
    rows share copies), with one copy of 20 columns and padding (blocks of
    three rows, a warp holding parts of two), and at pitch 64 (40 columns on
    64 threads);
    column after column when asked; cell tables, closed-form bins, columns
    without a histogram, nulls, values on the edges, float32 and float64
    binning.
    (The binary search, for edges past the cell tables' 257, is run
    interleaved by ``test_row_major_slabs_and_wide_matrices``.)
    """
    plans = _plans(monkeypatch)
    rng = np.random.default_rng(41)
    for n_cols, threads, pitch in ((5, 64, 32), (20, 64, 32), (40, 64, 64)):
        x = _sprinkle(rng.normal(size=(21, n_cols)), rng).astype(np.float32)
        edges, uniform = [], []
        for j in range(n_cols):
            kind = j % 4
            if kind == 3:
                edges.append(None)
            elif kind == 1:
                edges.append(uniform_edges(-2.0 + 0.1 * j, 2.5, 9 + j % 8))  # the closed form
            else:  # equal-mass: the cell table
                edges.append(equal_mass_edges(np.sort(rng.normal(size=500)), 12 + j % 8))
            uniform.append(1 if kind == 1 else 0)
            if edges[-1] is not None:
                x[: len(edges[-1]), j] = edges[-1]
        mask = rng.random(size=x.shape) < 0.05
        got = {}
        # None: the launcher's default, interleaved for the row kernel; 0 and np.True_ as the bools they are
        for interleave, want in ((True, pitch), (False, 1), (None, pitch), (0, 1), (np.True_, pitch)):
            got[interleave] = check_profile(x, edges, uniform=uniform, null_mask=mask, threads=threads, row_blocks=2,
                                            edges32=edges32, interleave=interleave)
            assert plans[-1][1] and plans[-1][3] == want, (interleave, plans[-1])
        for key in ("hist", "special", "mins", "maxs", "blk_count"):
            assert got[True][key].tolist() == got[False][key].tolist() == got[None][key].tolist(), key


@cuda.jit
def _stage_kernel(cmp_edges, n_edges, uniform, c0, n_cols, slots, me, ho, lo8, cells, pitch, ce, i32, u8):
    """The kernels' staging of a slab's shared data, into one global buffer (three views) that stands in for
    their shared memory."""
    stage_slab(ce, i32, u8, cmp_edges, n_edges, uniform, True, c0, n_cols, slots, me, ho, lo8, cells, pitch,
               cuda.threadIdx.x, cuda.blockDim.x)


@pytest.mark.parametrize("pitch, c0, n_cols", [(1, 0, 5), (32, 0, 5), (32, 2, 1)])
def test_staged_slab_sits_where_the_layout_says(pitch, c0, n_cols):
    """Each slot's edges, zeroed histogram and cell table, staged by :func:`stage_slab` in the regions of
    :func:`slab_regions` at the offsets of :func:`slab_offsets`, hold its column's data.

    The lookup walks from a table entry to the bracketing edges, so a table
    in the wrong place (or a wrong copy) would still count right, only
    slower; this reads the slab back at the positions the layout promises,
    written out here: edge ``j`` of slot ``v`` at ``v * me + j``, bin ``k``
    at word ``ho + v * (me + 1) + k`` and cell ``g`` at byte ``lo8 + v *
    cells + g`` column after column; at ``j * pitch + v``, ``ho + k * pitch +
    v`` and ``lo8 + 4 * ((g // 4) * pitch + v) + g % 4`` interleaved (so
    every word of a slot is in bank ``v % 32``). Interleaved, 5 columns fill
    30 slots with copies (slot ``v`` holds column ``v % 5``), and the column
    kernel's slab of one column (``c0 = 2`` of the edges) 32.
    """
    from cudrift.kernels.profile import slab_regions

    rng = np.random.default_rng(43)
    cells = 64
    edge_list = [equal_mass_edges(np.sort(rng.normal(size=300) * (1 + j)), 6 + 3 * j) for j in range(c0 + n_cols)]
    edge_list[0] = uniform_edges(-1.0, 1.0, 7)  # uniform: no table (outside the slab when c0 > 0)
    uniform = np.array([1] + [0] * (c0 + n_cols - 1), dtype=np.uint8)
    me = max(len(x) for x in edge_list)
    packed = np.full((c0 + n_cols, me), np.nan)
    for c, x in enumerate(edge_list):
        packed[c, : len(x)] = x
    width = n_cols if pitch == 1 else pitch
    slots = n_cols if pitch == 1 else (pitch // n_cols) * n_cols
    ho, lo8 = slab_regions.py_func(width, me, 8)
    buf = np.full(-(-(lo8 + width * cells) // 8) * 8, 0xAB, dtype=np.uint8)  # the kernel's one shared buffer
    dev = cuda.to_device(buf)
    n_edges = np.array([len(x) for x in edge_list], dtype=np.int64)
    _stage_kernel[1, 32](cuda.to_device(packed), cuda.to_device(n_edges), cuda.to_device(uniform), c0, n_cols,
                         slots, me, ho, lo8, cells, pitch, dev.view(np.float64), dev.view(np.int32), dev)
    got = dev.copy_to_host()
    e, words = got.view(np.float64), got.view(np.int32)
    written = np.zeros(got.size, dtype=bool)
    for v in range(slots):
        c = c0 + v % n_cols
        x = edge_list[c]
        at = [v * me + j if pitch == 1 else j * pitch + v for j in range(len(x))]
        assert e[at].tolist() == x.tolist(), v
        hist = [ho + (v * (me + 1) + k if pitch == 1 else k * pitch + v) for k in range(me + 1)]
        assert (words[hist] == 0).all(), v
        if uniform[c]:
            continue
        half = x[-1] * 0.5 - x[0] * 0.5
        for g in range(cells):
            want = max(int(np.searchsorted(x[:-1], x[0] + 2.0 * (half * (g / cells)), side="right")) - 1, 0)
            at = lo8 + (v * cells + g if pitch == 1 else 4 * ((g // 4) * pitch + v) + g % 4)
            assert got[at] == want, (v, g)
            written[at] = True
            if pitch > 1:
                assert (at // 4) % 32 == v % 32
    tables = got[lo8 : lo8 + width * cells]
    assert (tables[~written[lo8 : lo8 + width * cells]] == 0xAB).all()  # nothing else (nor the uniform column's)
    if slots < width:  # padding slots get no edges
        assert (e[[j * pitch + v for v in range(slots, width) for j in range(me)]].view(np.uint64)
                == 0xABABABABABABABAB).all()


def test_row_plan_interleaves_where_it_fits():
    """Pitches of the row kernel's slabs at the GPU's block size and the simulator's 48 KiB of shared memory."""
    from cudrift.kernels.profile import _rows_plan

    assert _launch.shared_limit() == 48 * 1024
    # 32 columns of 101 edges (100 bins) with their cell tables: one slab, pitch 32, float32 or float64 edges
    assert _rows_plan(32, 101, 256, None, 4) == (32, True, 256, 32)
    assert _rows_plan(32, 101, 256, None, 8) == (32, True, 256, 32)
    # 40 columns fit one slab (45 fit), but not at a pitch of 64: column after column, still one slab
    assert _rows_plan(40, 101, 256, None, 4) == (40, True, 256, 1) == _rows_plan(40, 101, 256, None, 4, False)
    # 64 columns: two slabs of 32, as before
    assert _rows_plan(64, 101, 256, None, 4) == (32, True, 256, 32)
    # narrower slabs: pitch 32 (copies of the columns) while four blocks' worth fits an SM's 228 KiB
    assert _rows_plan(5, 101, 256, None, 4) == (5, True, 256, 32)
    assert _rows_plan(5, 101, 256, None, 4, False) == (5, True, 256, 1)
    # 160 edges: 31 columns fit, so two slabs of 16; 32 slots do not fit, 16 do: pitch 16, no copies
    assert _rows_plan(32, 160, 256, None, 4) == (16, True, 256, 16)
    # 601 edges, private histograms asked for: 6 columns fit, two slabs of 5; neither 32 slots nor 8 fit
    assert _rows_plan(10, 601, 256, True, 8) == (5, True, 0, 1)
    assert _rows_plan(10, 601, 256, None, 8)[1] is False  # not asked for: not kept
    # no private histograms: nothing to lay out
    assert _rows_plan(32, 101, 256, False, 4)[1:] == (False, 0, 1)


def test_row_plan_keeps_copies_off_smaller_multiprocessors(monkeypatch):
    """Copies of a narrow slab's data take a 32-column slab's shared memory: not where that would leave room for
    fewer resident blocks (100 KiB per SM); the slab then takes the smallest power-of-two pitch."""
    from cudrift.kernels import _launch
    from cudrift.kernels.profile import _rows_plan

    monkeypatch.setattr(_launch, "shared_per_sm", lambda: 100 * 1024)
    assert _rows_plan(5, 101, 256, None, 4) == (5, True, 256, 8)
    assert _rows_plan(32, 101, 256, None, 4) == (32, True, 256, 32)  # no more memory than column after column


def test_column_plan_copies_the_column_per_lane(monkeypatch):
    """The column kernel's plan: 32 interleaved copies of its column's data (one per lane) where they fit a
    block and four blocks' worth fit an SM, else one copy with the finest table that fits."""
    from cudrift.kernels import _launch
    from cudrift.kernels.profile import _columns_plan

    assert _launch.shared_limit() == 48 * 1024
    # 101 edges (100 bins): 32 copies with 256-cell tables, float32 or float64 edges (46 KiB)
    assert _columns_plan(101, 256, None, 4) == _columns_plan(101, 256, None, 8) == (True, 256, 32)
    assert _columns_plan(101, 256, None, 4, False) == (True, 1024, 1)  # one copy: a finer table fits
    # 160 edges: 32 copies fit with 64-cell tables only, which would cost a longer walk: one copy, 1024 cells
    assert _columns_plan(160, 256, None, 4) == (True, 1024, 1)
    # 2 edges (one bin) need no table; fewer than 32 threads would leave copies unused
    assert _columns_plan(2, 256, None, 8) == (True, 0, 32)
    assert _columns_plan(101, 16, None, 4) == (True, 1024, 1)
    with pytest.raises(ValueError, match="1024 threads"):  # the block reduction alone takes 72 KiB
        _columns_plan(101, 1024, None, 4)
    # 601 edges: no cell table, and 32 copies do not fit
    assert _columns_plan(601, 256, None, 8) == (True, 0, 1)
    # nothing to privatize, or asked not to
    assert _columns_plan(0, 256, None, 8) == _columns_plan(101, 256, False, 4) == (False, 0, 1)
    # 5000 edges do not fit one copy: global atomics, unless private histograms are asked for
    assert _columns_plan(5000, 32, None, 8) == (False, 0, 1)
    with pytest.raises(ValueError, match="5000 edges"):
        _columns_plan(5000, 32, True, 8)
    monkeypatch.setattr(_launch, "shared_per_sm", lambda: 100 * 1024)
    assert _columns_plan(101, 256, None, 4) == (True, 1024, 1)  # four blocks of copies would not fit an SM


@pytest.mark.parametrize("edges32", ["auto", None])
def test_column_kernel_lane_copies_count_like_one_copy(edges32, monkeypatch):
    """The column kernel with 32 copies of its column's shared data (thread ``t`` on copy ``t % 32``) and with
    one, against the CPU twin and each other: cell tables (equal-mass, two sizes), the closed form, no
    histogram, nulls, values on the edges, two warps per block, float32 and float64 binning."""
    from cudrift.kernels import profile as kp

    plans = []
    real = kp._columns_plan
    monkeypatch.setattr(kp, "_columns_plan", lambda *a: plans.append(real(*a)) or plans[-1])
    rng = np.random.default_rng(47)
    x = np.asfortranarray(_sprinkle(rng.normal(size=(150, 4)), rng).astype(np.float32))
    edges = [equal_mass_edges(np.sort(rng.normal(size=500)), 12), uniform_edges(-2.0, 2.5, 9), None,
             equal_mass_edges(np.sort(rng.normal(size=500)), 40)]
    for j in (0, 1, 3):
        x[: len(edges[j]), j] = edges[j]
    mask = np.asfortranarray(rng.random(size=x.shape) < 0.05)
    got = {}
    for interleave in (True, False):
        got[interleave] = check_profile(x, edges, uniform=[0, 1, 0, 0], null_mask=mask, threads=64, row_blocks=2,
                                        edges32=edges32, interleave=interleave)
        assert plans[-1][0] and plans[-1][2] == (32 if interleave else 1), plans[-1]
    for key in ("hist", "special", "mins", "maxs", "blk_count"):
        assert got[True][key].tolist() == got[False][key].tolist(), key
    # by default the column kernel keeps one copy (an H200 timed the 32 copies 1-1.5% slower), the finest
    # table that fits
    assert check_profile(x, edges, uniform=[0, 1, 0, 0], null_mask=mask, threads=64, row_blocks=2,
                         edges32=edges32)["hist"].tolist() == got[True]["hist"].tolist()
    assert plans[-1] == (True, 1024, 1), plans[-1]
    check_profile(x, edges, uniform=[0, 1, 0, 0], threads=64, row_blocks=2, edges32=edges32, interleave=np.True_)
    assert plans[-1][2] == 32, plans[-1]  # a NumPy bool asks for the copies as True does
    # one bin per column (2 edges): copies without cell tables, the bin search on the interleaved edges
    two = [np.array([-0.5, 0.5]), np.array([-1.0, 2.0])]
    x2 = np.asfortranarray(x[:, :2])
    x2[:3, 0] = [-0.5, 0.5, np.nextafter(np.float32(0.5), np.float32(1))]
    check_profile(x2, two, uniform=[0, 1], null_mask=mask[:, :2], threads=64, row_blocks=2, edges32=edges32,
                  interleave=True)
    assert plans[-1] == (True, 0, 32), plans[-1]


def test_shared_per_sm_reads_a_real_device_attribute():
    """On a GPU ``shared_per_sm`` reads this attribute (the simulator has none to read): it must be CUDA's."""
    driver = pytest.importorskip("cuda.bindings.driver", reason="cuda-bindings (numba-cuda's) is not installed")
    assert hasattr(driver.CUdevice_attribute, "CU_DEVICE_ATTRIBUTE_" + _cuda.SM_SHARED_ATTRIBUTE)


@pytest.mark.parametrize("plan", [(32, 101, 256, 4), (5, 101, 256, 8), (20, 50, 64, 4), (40, 9, 64, 8),
                                  (32, 160, 256, 4), (2, 601, 32, 8), (1, 101, 256, 4), (1, 101, 256, 8)])
def test_slab_regions_hold_every_slot(plan):
    """Every slot's edges, histogram and cell table lie in their own region of the block's shared memory, no two
    entries on one byte, and the launch asks for enough (written out from ``slab_offsets`` / ``cell_at``).

    A slab of one column is the column kernel's layout (its 32 copies)."""
    from cudrift.kernels.profile import (_columns_plan, _rows_plan, cell_at, profile_shared_bytes, rows_shared_bytes,
                                         slab_offsets, slab_regions, slab_slots)

    n_cols, me, threads, eb = plan
    if n_cols == 1:  # the column kernel's plan and block
        slab, (private, cells, pitch) = 1, _columns_plan(me, threads, True, eb)
        total = profile_shared_bytes(me, threads, True, cells, eb, pitch)
    else:
        slab, private, cells, pitch = _rows_plan(n_cols, me, threads, True, eb)
        threads = slab * max(1, threads // slab)
        total = rows_shared_bytes(me, pitch, threads, True, cells, eb)
    assert private and pitch > 1, (plan, pitch)
    assert 8 * 9 * threads <= total  # the block reduction's float64 x 4 and int64 x 5 per thread, after the flush
    width = pitch
    ho, lo8 = slab_regions.py_func(width, me, eb)
    edge_bytes, hist_words, cell_bytes = set(), set(), set()
    for v in range(slab_slots.py_func(slab, pitch)):
        eo, hc, lc, p = slab_offsets.py_func(v, me, cells, pitch)
        edge_bytes.update((eo + j * p) * eb + b for j in range(me) for b in range(eb))
        hist_words.update(ho + hc + k * p for k in range(me + 1))
        cell_bytes.update(int(cell_at.py_func(lo8 + lc, p, g)) for g in range(cells))
    n_slots = slab_slots.py_func(slab, pitch)
    assert len(edge_bytes) == n_slots * me * eb and max(edge_bytes) < 4 * ho
    assert len(hist_words) == n_slots * (me + 1) and min(hist_words) >= ho and max(hist_words) < lo8 // 4
    assert len(cell_bytes) == n_slots * cells and (not cells or (min(cell_bytes) >= lo8 and max(cell_bytes) < total))
    assert lo8 + width * cells <= total


@pytest.mark.parametrize("group", [0, 16])
@pytest.mark.parametrize("order", ["C", "F"])
def test_constant_huge_columns_keep_zero_spread(order, group, monkeypatch):
    """A constant column near the float64 limit keeps M2 = 0: with groups (Welford steps merged by Chan's
    formula), since merging equal means never moves them; with the library's one run of sums, whose kernels
    only count values past 1e150, from the sorted values the backend then takes the moments from."""
    from cudrift.kernels import _cuda
    from cudrift.kernels import profile as kp

    if group != kp.GROUP and not _cuda.SIMULATOR:
        pytest.skip("a compiled kernel keeps the GROUP it was compiled with (the simulator reads it as it runs)")
    monkeypatch.setattr(kp, "GROUP", group)
    x = np.asarray(np.full((300, 3), 1.7e308), order=order)
    x[:, 1] = -3e300
    x[:, 2] = 5e200
    res = check_profile(x, [None, None, None], threads=32, row_blocks=3)
    if group:
        assert res["m2"].tolist() == [0.0, 0.0, 0.0]
        assert res["mean"].tolist() == [1.7e308, -3e300, 5e200]
    else:  # the kernels flag the columns (NaN moments); the backend takes them from the sorted values
        # (gpu_emulated_cases.py's test_columns_past_1e154_... holds that end to end to the CPU's moments)
        assert np.isnan(res["mean"]).all() and np.isnan(res["m2"]).all()


# ------------------------------------------------------------------ float32 values binned in float32


def _f32_neighbours(e: np.ndarray) -> np.ndarray:
    """The float32 values at and around each edge: nearest, the two float32 neighbours of the edge, and theirs."""
    with np.errstate(over="ignore"):
        near = e.astype(np.float32)
    out = [near]
    with np.errstate(over="ignore"):
        for direction in (np.inf, -np.inf):
            step = near
            for _ in range(2):
                step = np.nextafter(step, np.float32(direction))
                out.append(step)
    v = np.concatenate(out)
    return v[np.isfinite(v)]


def _f32_cases() -> list[np.ndarray]:
    """Edge sets a float32 comparison can get wrong if it rounds them the wrong way."""
    third = np.array([-1.0, -1 / 3, 0.1, 1 / 3, 0.7, 1.0 + 2**-30])  # ends and inner edges not float32
    exact_last = np.array([-2.0, 0.1, 0.2, 0.5])  # a float32 last edge: values on it go in the last bin
    tight = 1.0 + np.array([0.0, 2**-40, 2**-35, 2**-30, 2**-23])  # several edges round to one float32
    wide = np.array([-1e300, -1.0, 0.0, 1e-50, 1.0, 1e300])  # past float32's range, and below its subnormals
    uni = uniform_edges(-0.3, 0.9, 9)  # linspace: closed form and cell estimate
    uni_wide = np.linspace(-1e39, 1e39, 5)  # closed form with inf-wide float32 edges: its scale is 0
    uni_narrow = np.linspace(0.0, 3e-45, 4)  # a few subnormals wide: its float32 scale overflows to inf
    return [third, exact_last, tight, wide, uni, uni_wide, uni_narrow]


# inf-wide and subnormal-wide edges: NumPy warns where CUDA silently gives inf / NaN scales
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("privatize", [None, False])
def test_float32_values_binned_in_float32_equal_float64_binning(order, privatize):
    """Float32 data on float32 edges (the backend's, rounded to nearest): every count equals the CPU twin's, and
    the float64 comparisons' on the same edges."""
    rng = np.random.default_rng(31)
    cases = _f32_cases()
    cols = []
    for e in cases:
        lo, hi = max(e[0], -3e38), min(e[-1], 3e38)
        v = np.concatenate((_f32_neighbours(e), rng.uniform(lo, hi, 40).astype(np.float32),
                            np.float32([np.nan, np.inf, -np.inf, -0.0, 0.0])))
        cols.append(v)
    n = max(len(c) for c in cols)
    x = np.stack([np.resize(c, n) for c in cols], axis=1).astype(np.float32)
    x = np.asarray(x, order=order)
    uniform = pack_edges(cases)[2].tolist()  # the backend's own linspace test
    assert uniform[-3:] == [1, 1, 1]
    f32 = check_profile(x, cases, uniform=uniform, threads=64, row_blocks=2, privatize=privatize)
    f64 = run_profile(x, cases, uniform=uniform, threads=64, row_blocks=2, privatize=privatize, edges32=None)
    assert f32["hist"].tolist() == f64["hist"].tolist()
    assert f32["mins"].tolist() == f64["mins"].tolist() and f32["maxs"].tolist() == f64["maxs"].tolist()


@pytest.mark.parametrize("order", ["C", "F"])
def test_float32_path_through_the_cell_table(order):
    """Equal-mass edges (cell table) of float32 normal data, values on and beside every edge."""
    rng = np.random.default_rng(32)
    ref = np.sort(rng.normal(size=400))
    edges = equal_mass_edges(ref, 20)
    v = np.concatenate((_f32_neighbours(edges), rng.normal(size=150).astype(np.float32)))
    x = np.asarray(np.stack((v, v[::-1]), axis=1), order=order)
    f32 = check_profile(x, [edges, edges], uniform=[0, 0], threads=64, row_blocks=3)
    f64 = run_profile(x, [edges, edges], threads=64, row_blocks=3, edges32=None)
    assert f32["hist"].tolist() == f64["hist"].tolist()


def test_float32_edges_bound_every_float32_value_as_the_float64_edges():
    """``float32_edges``: for float32 ``v``, ``v < e`` exactly when ``v < r``, on random and extreme edges."""
    rng = np.random.default_rng(33)
    e = np.concatenate((rng.normal(size=200), rng.normal(size=50) * 1e-40, [1e300, -1e300, 3.4028235e38, 0.0,
                        -0.0, 1e-320, np.finfo(np.float32).max, -np.finfo(np.float32).max]))
    r = float32_edges(e)
    assert r.dtype == np.float32 and np.all(r.astype(np.float64) >= e)
    v = np.concatenate((_f32_neighbours(e), rng.normal(size=300).astype(np.float32),
                        np.float32([np.inf, -np.inf, 0.0, -0.0])))
    assert np.array_equal(v[:, None].astype(np.float64) < e[None, :], v[:, None] < r[None, :])
    assert np.array_equal(v[:, None].astype(np.float64) >= e[None, :], v[:, None] >= r[None, :])


def test_edges32_is_checked_and_ignored_for_other_dtypes():
    """A float64 window bins against the float64 edges whatever ``edges32`` says; a malformed one is refused."""
    x = np.array([[0.1], [0.2], [0.30000001], [1.0]])
    edges = np.array([0.0, 0.1, 0.2, 0.3, 1.0])
    nearest = edges[None, :].astype(np.float32)  # rounded to nearest: would misbin 0.1 and 0.2 if it were used
    res = run_profile(x, [edges], threads=32, row_blocks=1, edges32=nearest)
    expected = NumericColumnProfile.empty(edges=edges).update(x[:, 0]).histogram.counts
    assert res["hist"][0].tolist() == expected.tolist()
    for bad in (np.zeros((1, 4), np.float32), edges[None, :]):
        with pytest.raises(ValueError, match="edges32 must be float32"):
            run_profile(x, [edges], threads=32, row_blocks=1, edges32=bad)


@pytest.mark.parametrize("order", ["C", "F"])
def test_float32_windows_are_binned_against_edges32(order):
    """A float32 window is binned against ``edges32`` itself: on edges rounded up (``float32_edges``), as the
    float64 edges bin its values; on edges rounded to nearest (the backend's), as ``Histogram`` bins float32."""
    edges = np.array([0.0, 0.1, 0.7, 0.9, 1.0])
    # float32(0.7) < 0.7 and float32(0.9) < 0.9: below those edges, but on their nearest float32
    x = np.asarray(np.float32([[0.7, 0.7], [0.9, 0.9], [0.5, 0.5], [0.95, 0.95]]), order=order)
    assert float(np.float32(0.7)) < 0.7 and float(np.float32(0.9)) < 0.9

    def counts(e32):
        return run_profile(x, [edges, edges], threads=32, row_blocks=1, edges32=e32)["hist"]

    v = x[:, 0].astype(np.float64)  # (underflow, 4 bins, overflow), counted here on the float64 edges
    exact = np.bincount(np.searchsorted(edges, v, side="right"), minlength=6).tolist()
    assert exact == [0, 0, 2, 1, 1, 0]
    assert counts(float32_edges(np.array([edges] * 2))).tolist() == [exact, exact]
    # on the nearest float32 edges, float32(0.7) and float32(0.9) open the bins of 0.7 and 0.9, as Histogram has it
    at_precision = NumericColumnProfile.empty(edges=edges).update(x[:, 0]).histogram.counts.tolist()
    assert at_precision == [0, 0, 1, 1, 2, 0]
    assert counts(np.array([edges] * 2).astype(np.float32)).tolist() == [at_precision, at_precision]


@pytest.mark.parametrize("order", ["C", "F"])
def test_prefetched_loads_change_no_count(order, monkeypatch):
    """``PREFETCH`` (the next batch loaded before the current one is worked on): same results, nulls and tails too."""
    from cudrift.kernels import profile as kp

    if not _cuda.SIMULATOR:
        pytest.skip("a compiled kernel keeps the PREFETCH it was compiled with (profile_sweep.py times it on a GPU)")
    monkeypatch.setattr(kp, "PREFETCH", True)  # the simulator reads module constants as the kernel runs
    rng = np.random.default_rng(34)
    x = np.asarray(_sprinkle(rng.normal(size=(157, 3)), rng).astype(np.float32), order=order)
    mask = rng.random(size=x.shape) < 0.1
    edges = [equal_mass_edges(np.sort(rng.normal(size=300)), 12), uniform_edges(-2.0, 2.0, 7), None]
    for row_blocks in (1, 3):  # one block per column reads several batches; three leave a short last one
        check_profile(x, edges, uniform=[0, 1, 0], null_mask=mask, threads=32, row_blocks=row_blocks)
