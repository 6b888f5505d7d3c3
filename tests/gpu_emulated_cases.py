"""The GPU backend's host logic on small inputs, with CuPy emulated by NumPy and the kernels in the simulator.

Run by ``test_gpu_emulated.py`` in a process of its own (``fake_cupy``
replaces CuPy there); not collected by the main test run. Each case runs the
GPU path and the NumPy path on the same fresh data and holds them to the
same equalities as the ``gpu`` tests of ``test_gpu_backend.py`` do on a card:
what can go wrong here is cudrift's own orchestration (units and groups,
staging offsets, the staging thread, read-backs, block merges, batched
summaries and rank statistics, the detector's device path).
"""

import math
import os
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
sys.path.insert(0, os.path.dirname(__file__))

import fake_cupy  # noqa: E402

cupy = fake_cupy.install()

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pac  # noqa: E402 - (pc names CPU profiles here)
import pytest  # noqa: E402
from test_gpu_backend import (  # noqa: E402
    _assert_profiles_match,
    _assert_cut_units_match,
    _assert_reports_match,
    _grouped_host_table,
    _host_window,
    _launch_widths,
    _with_specials,
)

import cudrift  # noqa: E402
from cudrift import DriftDetector, ProfileConfig  # noqa: E402
from cudrift.backends import _gpu, gpu_status  # noqa: E402

CFG = ProfileConfig(quantile_k=32, sample_size=64)  # summaries and samples that small inputs exercise fully


def test_the_fake_device_is_what_the_backend_sees():
    from cudrift.backends._gpu_source import device_source

    assert gpu_status()[0]
    x = cupy.zeros((4, 2))
    assert _gpu._on_device(x) and not _gpu._on_device(np.zeros(3))
    src = device_source(x, ["a", "b"])  # read in place, as device data
    assert next(iter(src.iter_batches()))["b"]().values.data.ptr == x[:, 1].data.ptr
    assert device_source(np.zeros((4, 2)), ["a", "b"]) is None


def test_host_window_matches_numpy(rng):
    data = _host_window(rng, 400)
    pc = cudrift.profile(data, config=CFG, backend="cpu")
    _assert_profiles_match(pc, cudrift.profile(data, config=CFG, backend="gpu"))
    cur = _host_window(rng, 300)
    _assert_profiles_match(cudrift.profile(cur, like=pc, backend="cpu"), cudrift.profile(cur, like=pc, backend="gpu"))


def test_moments_of_columns_far_from_zero_match_the_cpu(rng):
    """Host and device columns whose mean is 1e12 times their spread (float64, a NaN first value), int64 near
    2**62: moments within 1e-9 of the NumPy path's (they were 1.2e-5 off at 1e12, 1.7e-2 at 1e15)."""
    n = 300
    data = {"big": 1e12 + rng.normal(size=n), "huge": -1e15 + rng.normal(size=n) * 3,
            "ints": 2**62 + rng.integers(-10**6, 10**6, size=n)}
    data["big"][0] = np.nan
    pc = cudrift.profile(data, config=CFG, backend="cpu")
    _assert_profiles_match(pc, cudrift.profile(data, config=CFG, backend="gpu"))
    dev = {k: cupy.asarray(v) for k, v in data.items()}
    _assert_profiles_match(pc, cudrift.profile(dev, config=CFG, backend="gpu"))


def test_moments_from_an_origin_far_out_are_taken_again_from_the_sorted_values(rng):
    """No usable value among a column's first 8 rows (leading NaN or inf: a lag feature), or an outlier there
    (a placeholder 0 before values near 1e12): the kernels' origin is far from the mean and their moments were
    1e-5 off; they are taken again from the sorted column, within 1e-9 of the NumPy path's."""
    n = 400
    data = {"lag": 1e12 + rng.normal(size=n), "late": 1.7e9 + rng.normal(size=n), "zero": 1e12 + rng.normal(size=n),
            "plain": rng.normal(size=n)}
    data["lag"][:8] = np.nan
    data["late"][:10] = np.inf
    data["zero"][0] = 0.0
    pc = cudrift.profile(data, config=CFG, backend="cpu")
    _assert_profiles_match(pc, cudrift.profile(data, config=CFG, backend="gpu"))
    dev = {k: cupy.asarray(v) for k, v in data.items()}
    _assert_profiles_match(pc, cudrift.profile(dev, config=CFG, backend="gpu"))
    ref = {k: v + 0.05 for k, v in data.items()}  # and the detector's t-test from the profiles' moments
    rc = DriftDetector(ref, policy="ttest", exact="never", config=CFG, backend="cpu").compare(data)
    rg = DriftDetector(ref, policy="ttest", exact="never", config=CFG, backend="gpu").compare(dev)
    _assert_reports_match(rc, rg, rel=1e-6)


def test_moments_of_discrete_values_behind_an_outlier_origin_hold_over_long_thread_runs(rng, monkeypatch):
    """Discrete values (prices in steps of 0.1) behind a first row 85 standard deviations out, one thread
    reading all 30,000 rows: the kernels' one run of sums per thread rounds the same few squares over and over
    (M2 2e-9 to 4e-9 off, the contract is 1e-9), and the outlier is too close for the 100-deviation rule before;
    the backend learns the run from launch_profile and takes these moments again from the sorted column
    (_host.moments_need_sorted). M2 is checked against exact rational arithmetic, as well as the CPU's."""
    from fractions import Fraction

    from cudrift.kernels import _launch

    monkeypatch.setattr(_launch, "threads_per_block", lambda: 1)
    monkeypatch.setattr(_launch, "row_blocks", lambda *a, **k: 1)
    n = 30_000
    x = 20.0 + 0.1 * rng.integers(0, 3, size=n)
    x[0] = 27.0  # 85 standard deviations above the mean
    exact = [Fraction(float(v)) for v in x]
    mean = sum(exact) / n
    m2 = float(sum((v - mean) ** 2 for v in exact))
    for data in ({"price": x}, {"price": cupy.asarray(x)}):
        col = cudrift.profile(data, config=CFG, backend="gpu").columns["price"]
        assert col.moments.m2 == pytest.approx(m2, rel=1e-9, abs=0)
    _assert_profiles_match(cudrift.profile({"price": x}, config=CFG, backend="cpu"),
                           cudrift.profile({"price": x}, config=CFG, backend="gpu"))


def test_a_window_like_a_reference_releases_the_sorted_columns_no_edges_pass_needs(rng):
    """Numeric columns new to the reference get no edges (so parts of a window merge); the sorted device copies
    the backend kept for an edges pass were then held for as long as the profile lived (8 bytes a value)."""
    ref = cudrift.profile({"c": np.array(["a", "b"] * 100, dtype=object), "x": rng.normal(size=200)},
                          config=CFG, backend="cpu")
    window = {"c": np.array(["a", "b"] * 100, dtype=object), "z": rng.normal(size=200), "y": rng.normal(size=200)}
    prof = cudrift.profile(window, like=ref, backend="gpu")
    assert prof.columns["z"].histogram is None and prof not in _gpu._FOR_EDGES
    _assert_profiles_match(cudrift.profile(window, like=ref, backend="cpu"), prof)


def test_host_categorical_columns_are_read_on_the_calling_thread_under_a_limit_of_one(rng, monkeypatch):
    """thread_limit(1) (DriftDetector(workers=1)) keeps the CPU work on the calling thread: the GPU profile pass
    started a pool of its own for the host categorical columns anyway."""
    import threading

    from cudrift.backends import thread_limit

    threads = []
    read = _gpu._host_categorical
    monkeypatch.setattr(_gpu, "_host_categorical", lambda *a: threads.append(threading.get_ident()) or read(*a))
    data = {"c": rng.choice(np.array(["a", "b", "c"], dtype=object), 300),
            "d": rng.choice(np.array(["u", "v"], dtype=object), 300), "x": rng.normal(size=300)}
    with thread_limit(1):
        prof = cudrift.profile(data, config=CFG, backend="gpu")
    assert threads == [threading.get_ident()] * 2
    _assert_profiles_match(cudrift.profile(data, config=CFG, backend="cpu"), prof)


def test_exact_always_refuses_a_window_the_device_cannot_keep_sorted(rng, monkeypatch):
    """exact="always" on the GPU: a window whose sorted columns do not fit the device raised nothing and was
    tested from its sketches (Mann-Whitney's U from the sample); now it is refused, naming the bytes. "auto"
    still falls back, and says so (statistic_error NaN, report not exact)."""
    monkeypatch.setattr(_gpu, "_KEEP_SHARE", 10_000 / _gpu._Device().free_bytes())  # 10,000 bytes may be kept
    ref = {"x": rng.normal(size=300), "y": rng.normal(size=300)}  # 4,800 bytes sorted
    cur = {"x": rng.normal(size=1000) + 0.2, "y": rng.normal(size=1000)}  # 16,000 bytes
    det = DriftDetector(ref, exact="always", config=CFG, backend="gpu", policy="mannwhitneyu")
    assert det.is_exact
    with pytest.raises(ValueError, match=r"16,000 bytes, over the 10,000 bytes.*backend='cpu'"):
        det.compare(cur)
    assert det.compare({k: v[:300] for k, v in cur.items()}).exact  # a window that fits is still compared
    auto = DriftDetector(ref, config=CFG, backend="gpu", policy="mannwhitneyu").compare(cur)
    assert not auto.exact and math.isnan(auto["x"].statistic_error)
    with pytest.raises(ValueError, match="over the 10,000 bytes"):  # the reference itself, on the device
        DriftDetector(cur, exact="always", config=CFG, backend="gpu")


def test_samples_of_a_nonzero_seed_match_the_cpu(rng):
    """The device hashes sample positions with the seed's key (splitmix64(seed) ^ splitmix64(0)) as the CPU
    does: host and device windows of seed 5 sample what the NumPy path samples."""
    cfg = ProfileConfig(quantile_k=32, sample_size=64, seed=5)
    data = {"x": rng.normal(size=700), "y": rng.integers(-50, 50, size=700).astype(np.float64)}
    pc = cudrift.profile(data, config=cfg, backend="cpu")
    for window in (data, {k: cupy.asarray(v) for k, v in data.items()}):
        pg = cudrift.profile(window, config=cfg, backend="gpu")
        _assert_profiles_match(pc, pg)
        assert pg.columns["x"].sample == pc.columns["x"].sample


def test_columns_past_1e154_profile_and_compare_as_on_the_cpu(rng):
    """Values whose squares overflow (1e160, a DBL_MAX sentinel): the far-origin check must not raise
    (Python floats raise OverflowError on ** past 1e154) and the GPU gives the CPU's profile and report."""
    n = 300
    sentinel = np.zeros(n)
    sentinel[::10] = np.finfo(np.float64).max
    data = {"vast": rng.normal(size=n) * 1e160, "sentinel": sentinel}
    pc = cudrift.profile(data, config=CFG, backend="cpu")
    _assert_profiles_match(pc, cudrift.profile(data, config=CFG, backend="gpu"))
    ref = {"vast": rng.normal(size=n) * 1e160, "sentinel": np.zeros(n)}
    _assert_reports_match(DriftDetector(ref, config=CFG, backend="cpu").compare(data),
                          DriftDetector(ref, config=CFG, backend="gpu").compare(data), rel=1e-6)


def test_a_device_dict_with_keys_1_and_str_1_is_refused_as_on_the_cpu():
    from cudrift import SchemaError

    a = np.arange(50.0)
    for data in ({1: cupy.asarray(a), "1": cupy.asarray(a + 100)}, {1: a, "1": cupy.asarray(a)}):
        with pytest.raises(SchemaError, match=r"the dict of arrays has duplicate column names \['1'\]"):
            cudrift.profile(data, backend="gpu")


def test_pinned_pieces_smaller_than_a_value_still_stage_one_value_each(rng, monkeypatch):
    monkeypatch.setattr(_gpu, "PIECE_BYTES", 1)
    data = {"f": rng.normal(size=40), "i": rng.integers(0, 1000, size=40)}
    _assert_profiles_match(cudrift.profile(data, config=CFG, backend="cpu"),
                           cudrift.profile(data, config=CFG, backend="gpu"))


def test_big_endian_host_columns_reach_the_device_in_native_byte_order(rng, monkeypatch):
    """A '>f8' / '>i4' host column (a NumPy file or buffer from a big-endian machine): staged in native order,
    which Numba and CuPy need (the emulation would accept either, so the staged dtypes are checked), with the
    NumPy path's profile."""
    staged = []
    real = _gpu._stage
    monkeypatch.setattr(_gpu, "_stage", lambda dev, parts: staged.extend(v.dtype for v, _, _ in parts)
                        or real(dev, parts))
    data = {"f": rng.normal(size=200).astype(">f8"), "i": rng.integers(-50, 50, size=200).astype(">i4")}
    _assert_profiles_match(cudrift.profile(data, config=CFG, backend="cpu"),
                           cudrift.profile(data, config=CFG, backend="gpu"))
    assert staged and all(d.isnative for d in staged), staged


def test_host_columns_staged_in_groups(rng, monkeypatch):
    monkeypatch.setattr(_gpu, "GROUP_BYTES", 3 * 4 * 300)  # groups of up to 3 float32 columns: several groups
    monkeypatch.setattr(_gpu, "PIECE_BYTES", 512)  # several pinned transfers per column, both buffers reused
    widths = _launch_widths(monkeypatch)
    table = _grouped_host_table(rng, 300)
    pc = cudrift.profile(table, config=CFG, backend="cpu")
    _assert_profiles_match(pc, cudrift.profile(table, config=CFG, backend="gpu"))
    assert max(widths) == 3 and len(widths) < len(table.column_names), widths
    cur = _grouped_host_table(rng, 200, shift=0.2)
    _assert_profiles_match(cudrift.profile(cur, like=pc, backend="cpu"), cudrift.profile(cur, like=pc, backend="gpu"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_major_host_matrix_staged_a_row_block_at_a_time(rng, monkeypatch, dtype):
    """A C-ordered host matrix: its columns grouped by whole cache lines, each group staged as row blocks
    (several pieces of all the group's columns, both pinned buffers reused), profiles and detector results
    equal to the NumPy path's; a column subset that is not evenly spaced is staged column by column, with the
    same results."""
    from cudrift.backends import _gpu_host as gh

    item = np.dtype(dtype).itemsize
    monkeypatch.setattr(_gpu, "GROUP_BYTES", 3 * item * 300)  # a budget of 3 columns
    monkeypatch.setattr(gh, "LINE_BYTES", 2 * item)  # "lines" of two columns: the 3-column budget ends inside one
    monkeypatch.setattr(_gpu, "PIECE_BYTES", 3 * item * 64)  # pieces of 48 rows of 4 columns, 64 rows of 3
    blocks = []
    real = gh.stage_block
    monkeypatch.setattr(gh, "stage_block", lambda dst, src, *a, **k: blocks.append(src.shape) or real(dst, src, *a, **k))
    widths = _launch_widths(monkeypatch)
    names = [f"c{j}" for j in range(7)]
    x = _with_specials(rng.normal(size=(300, 7)) + np.arange(7), rng).astype(dtype)  # each column its own mean
    assert x.flags.c_contiguous and x.ctypes.data % 16 == 0  # (rows start at a "line": pairs 0-1, 2-3, 4-5)
    pc = cudrift.profile(x, columns=names, config=CFG, backend="cpu")
    _assert_profiles_match(pc, cudrift.profile(x, columns=names, config=CFG, backend="gpu"))
    # columns 0-2 fill the budget; 3 shares its line with 2, so it joins them; 4-6 fill the next budget
    assert widths == [4, 3] and blocks == [(48, 4)] * 6 + [(12, 4), (64, 3), (64, 3), (64, 3), (64, 3), (44, 3)], \
        (widths, blocks)
    cur = _with_specials(rng.normal(0.6, size=(200, 7)) + np.arange(7), rng).astype(dtype)
    _assert_profiles_match(cudrift.profile(cur, columns=names, like=pc, backend="cpu"),
                           cudrift.profile(cur, columns=names, like=pc, backend="gpu"))
    if dtype == np.float64:  # (the staging is what depends on the item size; the rest costs simulator time)
        return
    rc = DriftDetector(x, columns=names, config=CFG, backend="cpu").compare(cur, columns=names)
    rg = DriftDetector(x, columns=names, config=CFG, backend="gpu").compare(cur, columns=names)
    assert rg.metadata["backend"] == "gpu" and sum(f.drifted for f in rg.features) >= 4  # shifted by 0.6 sd
    _assert_reports_match(rc, rg, rel=1e-9)
    # columns 0, 1, 3 of a wider matrix: not evenly spaced, so column by column
    blocks.clear()
    sub = cur[:, [0, 1, 3]]  # (a copy: the same values, evenly spaced) and a strided view that is not
    uneven = [cur[:, 0], cur[:, 1], cur[:, 3]]
    ref3 = cudrift.profile(x[:, [0, 1, 3]], columns=["a", "b", "d"], config=CFG, backend="cpu")
    want = cudrift.profile(sub, columns=["a", "b", "d"], like=ref3, backend="cpu")
    got = cudrift.profile(dict(zip("abd", uneven)), like=ref3, backend="gpu")
    _assert_profiles_match(want, got)
    assert not blocks


def test_long_host_columns_are_cut_into_units(rng, monkeypatch):
    names = ["a", "b"]
    ref = cudrift.profile(rng.normal(size=(800, 2)).astype(np.float32), columns=names, config=CFG, backend="cpu")
    cur = _with_specials(rng.normal(0.2, size=(500, 2)), rng, share=0.02).astype(np.float32)
    pc = cudrift.profile(cur, columns=names, like=ref, backend="cpu")
    monkeypatch.setattr(_gpu, "MAX_UNIT_ROWS", 130)  # 4 units per column
    monkeypatch.setattr(_gpu, "PIECE_BYTES", 200)
    pg = cudrift.profile(cur, columns=names, like=ref, backend="gpu")
    _assert_cut_units_match(pc, pg, cur, names, n_batches=4, rel=1e-12)


@pytest.mark.parametrize("where", ["host", "device"])
def test_a_reference_past_max_batch_rows_gets_the_cpu_edges(rng, monkeypatch, where):
    """Pieces of MAX_BATCH_ROWS, cut at the same rows on both paths: equal sketches and edges, so the profiles merge."""
    from cudrift.sketches import column

    monkeypatch.setattr(column, "MAX_BATCH_ROWS", 130)
    monkeypatch.setattr(_gpu, "PIECE_BYTES", 256)
    names = ["a", "b", "c"]
    x = _with_specials(rng.normal(size=(500, 3)), rng, share=0.02)
    x[:, 2] = np.round(x[:, 2], 1)  # ties
    x = x.astype(np.float32)
    pc = cudrift.profile(x, columns=names, config=CFG, backend="cpu")
    xg = x if where == "host" else cupy.asarray(x)
    pg = cudrift.profile(xg, columns=names, config=CFG, backend="gpu")
    _assert_profiles_match(pc, pg)
    for n in names:
        assert pg.columns[n].quantiles.n_batches == 4  # 130, 130, 130, 110 rows
        np.testing.assert_array_equal(pc.edges(n), pg.edges(n))
    merged = pc + pg  # edges equal: CPU and GPU references merge
    assert merged.n_rows == 1000
    cur = (x[:300] + np.float32(0.5)).astype(np.float32)
    _assert_reports_match(DriftDetector(x, columns=names, config=CFG, backend="cpu").compare(cur, columns=names),
                          DriftDetector(xg, columns=names, config=CFG, backend="gpu").compare(cur, columns=names),
                          rel=1e-9)  # (the kept sorted reference: the pieces' sorted values, merged)


@pytest.mark.parametrize("order", ["C", "F", "slab"])  # the row kernel, the column kernel, rows with gaps
def test_device_matrix_matches_numpy(rng, order):
    x = _with_specials(rng.normal(size=(300, 4)), rng).astype(np.float32)
    x = np.asarray(x, order="F" if order == "F" else "C")
    names = list("abcd")
    pc = cudrift.profile(x, columns=names, config=CFG, backend="cpu")
    if order == "slab":
        # columns 1..4 of a wider row-major matrix: read in place by the row kernel, each row's values adjacent
        wide = cupy.zeros((300, 6), dtype=np.float32)
        wide[:, 1:5] = x
        dev = wide[:, 1:5]
        assert not dev.flags.c_contiguous
    else:
        dev = cupy.asarray(x, order=order)
    _assert_profiles_match(pc, cudrift.profile(dev, columns=names, config=CFG, backend="gpu"))


def test_device_columns_and_the_reread_histogram_pass(rng, monkeypatch):
    """Device columns (categories counted on the device too), edges counted by reading the source again."""
    monkeypatch.setattr(_gpu, "_keep_fits", lambda *a: (True, False))
    data = _host_window(rng, 200)
    dev = {k: (v if v.dtype == object else cupy.asarray(v)) for k, v in data.items()}
    pc = cudrift.profile(data, config=CFG, backend="cpu")
    _assert_profiles_match(pc, cudrift.profile(dev, config=CFG, backend="gpu"))
    _assert_profiles_match(pc, cudrift.profile(data, config=CFG, backend="gpu"))


def test_detector_matches_numpy_on_host_and_device_windows(rng):
    names = [f"c{j}" for j in range(5)]
    ref = rng.normal(size=(300, 5)).astype(np.float32)
    cur = rng.normal(size=(250, 5)).astype(np.float32)
    cur[:, :2] += np.float32(0.4)
    # a test per column: one rank launch for the union of their sums, the KS p-values batched
    policy = dict(zip(names, ["ks", "anderson", "cramervonmises", "wasserstein_normalized", "ks"]))
    rc = DriftDetector(ref, columns=names, policy=policy, config=CFG, backend="cpu").compare(cur, columns=names)
    for reference, windows in ((ref, (np.asfortranarray(cur),)), (cupy.asarray(ref), (cupy.asarray(cur),))):
        dg = DriftDetector(reference, columns=names, policy=policy, config=CFG, backend="gpu")
        for window in windows:
            rg = dg.compare(window, columns=names)
            assert rg.metadata["backend"] == "gpu"
            _assert_reports_match(rc, rg, rel=1e-9)


def test_a_float32_window_of_a_float64_reference_is_compared_at_float32_on_the_device(rng):
    """Rank tests on the device-sorted columns and the histogram recount, at the float32 window's precision, as
    the NumPy path: a rounded feature, and values finer than float32 tells apart (about 1e6, spread 0.5)."""
    names = ["price", "fine", "shift"]
    n = 600
    ref = np.stack([np.round(rng.normal(50, 5, n), 1), rng.normal(1e6, 0.5, n), rng.normal(size=n)], axis=1)
    cur = np.stack([np.round(rng.normal(50, 5, n), 1), rng.normal(1e6, 0.5, n), rng.normal(0.5, 1, n)],
                   axis=1).astype(np.float32)
    for policy in ("ks", "psi", "cramervonmises"):
        rc = DriftDetector(ref, columns=names, policy=policy, config=CFG, backend="cpu").compare(cur, columns=names)
        assert not rc["price"].drifted and rc["shift"].drifted
        for reference, window in ((ref, np.asfortranarray(cur)), (cupy.asarray(ref), cupy.asarray(cur))):
            rg = DriftDetector(reference, columns=names, policy=policy, config=CFG, backend="gpu").compare(
                window, columns=names)
            assert rg.metadata["backend"] == "gpu"
            _assert_reports_match(rc, rg, rel=1e-9)


def test_the_device_picks_the_cpus_test_for_values_a_coarser_window_merges(rng):
    """The auto rule counts distinct values at the compared precision: a float64 reference of 0.1, 0.2, 0.3 plus
    noise below float32's step is three values to a float32 window. The device counted the reference at full
    precision (six or more: Wasserstein where the CPU chose Jensen-Shannon), and merged values past float16's
    range into inf (1, 2, 70000, 80000 against a float16 window: three values where the CPU has four)."""
    ref = rng.choice([0.1, 0.2, 0.3], 2000) + rng.normal(0, 1e-12, 2000)
    cur = rng.choice([0.1, 0.2, 0.3], 1500).astype(np.float32)
    for reference, window in (({"x": ref}, {"x": cur}), ({"x": cupy.asarray(ref)}, {"x": cupy.asarray(cur)})):
        rc = DriftDetector({"x": ref}, config=CFG, backend="cpu").compare({"x": cur})
        rg = DriftDetector(reference, config=CFG, backend="gpu").compare(window)
        assert rc["x"].test == rg["x"].test == "jensenshannon"
        _assert_reports_match(rc, rg, rel=1e-9)
    big = rng.choice([1.0, 2.0, 70_000.0, 80_000.0], 600)
    with np.errstate(over="ignore"):
        small = rng.choice([1.0, 2.0, 70_000.0, 80_000.0], 500).astype(np.float16)  # (past 65504: inf in float16)
        dev_big, dev_small = cupy.asarray(np.sort(big)), cupy.asarray(np.sort(small))
        # 1, 2, 70000 and 80000 (kept: no float16 equals them), and the window's inf, as on the CPU
        assert _gpu.n_unique_sorted(dev_big, dev_small, 6, np.float16) == 5
        values, counts = _gpu.distinct_with_counts_sorted(dev_big, 6, np.float16)
    assert values.tolist() == [1.0, 2.0, 70_000.0, 80_000.0] and counts.sum() == 600


@pytest.mark.parametrize("ref_dtype", [np.float32, np.float64])
def test_a_float32_window_is_tested_in_one_rank_launch(rng, monkeypatch, ref_dtype):
    """A float32 reference is kept sorted as float64; rounded to a float32 window's precision (which changes none
    of its values), each column was copied on every compare, and the copies, separate allocations, each took a
    rank launch of their own instead of one for the window. A float64 reference is rounded, into one allocation
    for all its columns."""
    from cudrift.detect import _compute

    launches, rounded = [], []
    group, at = _gpu._rank_group, _compute.sorted_at_precision
    monkeypatch.setattr(_gpu, "_rank_group", lambda pairs, *a: launches.append(len(pairs)) or group(pairs, *a))

    def counted(x, dtype):
        if dtype is not None:  # (rounded to a float type: a copy)
            rounded.append(x.size)
        return at(x, dtype)

    monkeypatch.setattr(_compute, "sorted_at_precision", counted)
    ref = np.round(rng.normal(size=(500, 4)), 2).astype(ref_dtype)  # (ties that float32 keeps, and makes)
    cur = np.round(rng.normal(size=(400, 4)) + [0, 0, 0.5, 1], 2).astype(np.float32)
    names = ["a", "b", "c", "d"]
    rc = DriftDetector(ref, columns=names, policy="ks", config=CFG, backend="cpu").compare(cur, columns=names)
    rg = DriftDetector(cupy.asarray(ref), columns=names, policy="ks", config=CFG, backend="gpu").compare(
        cupy.asarray(cur), columns=names)
    assert launches == [4] and (500 in rounded) == (ref_dtype == np.float64)
    _assert_reports_match(rc, rg, rel=1e-9)
    assert rc["c"].drifted and rc["d"].drifted


def test_a_drifted_distance_within_its_noise_says_so_on_the_device(rng):
    """The distance_noise finding from the device path's counts, as from the NumPy path's (100 bins)."""
    ref, cur = rng.normal(size=(800, 2)), rng.normal(size=(800, 2)) + [0.0, 2.0]  # (PSI noise about 0.25)
    names = ["same", "shifted"]
    rc = DriftDetector(ref, columns=names, policy="psi", backend="cpu").compare(cur, columns=names)
    assert [f.column for f in rc.findings if f.check == "distance_noise"] == ["same"]
    for reference, window in ((ref, cur), (cupy.asarray(ref), cupy.asarray(cur))):
        rg = DriftDetector(reference, columns=names, policy="psi", backend="gpu").compare(
            window, columns=names)
        _assert_reports_match(rc, rg, rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_reference_of_neighbouring_narrow_floats_is_counted_as_its_windows_are_on_the_device(rng, dtype):
    """The device's counting pass of a reference kept sorted as float64 searched the float64 edges: identical data
    of neighbouring float16 (float32) values drifted (PSI 3.7). Searched on the thresholds of the column's type."""
    values = dtype(1) + np.arange(10, dtype=dtype) * np.finfo(dtype).eps
    x = rng.choice(values, 600).astype(dtype)
    rc = DriftDetector({"x": x}, policy="psi", config=CFG, backend="cpu").compare({"x": x})
    assert rc["x"].statistic == 0.0
    for data in (x, cupy.asarray(x)):
        rg = DriftDetector({"x": data}, policy="psi", config=CFG, backend="gpu").compare({"x": data})
        _assert_reports_match(rc, rg, rel=1e-9)
        _assert_profiles_match(cudrift.profile({"x": x}, config=CFG, backend="cpu"),
                               cudrift.profile({"x": data}, config=CFG, backend="gpu"))


def test_few_valued_columns_counted_per_value_on_the_device(rng):
    """Count tests of few-valued numeric columns count each value of either window, from device-sorted columns too."""
    names = ["moved", "same", "x"]
    ref = np.stack([rng.choice([0.0, 1.0], 400), rng.choice([1.0, 2.0, 3.0], 400), rng.normal(size=400)], axis=1)
    cur = np.stack([rng.choice([0.0, 0.2, 0.8], 400), rng.choice([1.0, 2.0, 3.0], 400), rng.normal(size=400)], axis=1)
    # a float32 window against a float64 reference too: values matched at float32 (the float32 reference
    # against a float64 window is the next case's)
    for rdt, cdt in ((np.float64, np.float64), (np.float64, np.float32)):
        r, c = ref.astype(rdt), cur.astype(cdt)
        rc = DriftDetector(r, columns=names, config=CFG, backend="cpu").compare(c, columns=names)
        assert rc["moved"].test == "chisquare" and rc["moved"].drifted and not rc["same"].drifted
        for reference, window in ((r, np.asfortranarray(c)), (cupy.asarray(r), cupy.asarray(c))):
            rg = DriftDetector(reference, columns=names, config=CFG, backend="gpu").compare(window, columns=names)
            assert rg.metadata["backend"] == "gpu"
            _assert_reports_match(rc, rg, rel=1e-9)


def test_values_equal_at_float32_are_counted_together_on_the_device(rng):
    """A float64 window against a float32 reference: distinct only below float32 precision is one value."""
    ref = rng.integers(0, 2, (300, 1)).astype(np.float32)
    cur = np.where(rng.random((200, 1)) < 0.5, 0.0, 1.0)
    cur[:6, 0] = 1.0 + np.arange(1, 7) * 1e-9  # 1.0 in float32
    cur[6:20, 0] = 0.5 + np.arange(14) * 1e-10  # 0.5 in float32: a value the reference lacks
    for policy in ("auto", "psi"):
        rc = DriftDetector(ref, columns=["x"], policy=policy, config=CFG, backend="cpu").compare(cur, columns=["x"])
        assert rc["x"].test == ("chisquare" if policy == "auto" else "psi") and rc["x"].drifted
        for reference, window in ((ref, cur), (cupy.asarray(ref), cupy.asarray(cur))):
            dg = DriftDetector(reference, columns=["x"], policy=policy, config=CFG, backend="gpu")
            _assert_reports_match(rc, dg.compare(window, columns=["x"]), rel=1e-9)


def test_uint64_keys_past_2_63_keep_their_values_on_the_device():
    u = np.array([2**64 - 1, 2**64 - 2, 2**64 - 3], dtype=np.uint64)[np.arange(200) % 3]
    pc = cudrift.profile({"u": u}, backend="cpu")
    pg = cudrift.profile({"u": cupy.asarray(u)}, backend="gpu")
    assert dict(pg["u"].counts.items()) == dict(pc["u"].counts.items())
    assert max(pg["u"].counts.keys()) == 2**64 - 1
    f = DriftDetector(pc, backend="gpu").compare({"u": cupy.asarray(u)})["u"]  # the reference's own data
    assert f.status == "ok" and f.statistic == 0.0 and not f.drifted


def test_welch_t_with_one_value_is_an_error_on_the_device(rng):
    ref = cupy.asarray(rng.normal(size=(20, 1)))
    det = DriftDetector(ref, columns=["x"], policy="ttest", config=CFG, backend="gpu")
    f = det.compare(cupy.asarray(np.array([[0.5]])), columns=["x"])["x"]
    assert f.status == "error" and "at least 2 finite values" in f.message


@pytest.mark.parametrize("scale", [1e-200, 1e-161])
def test_normalized_wasserstein_near_1e_200_on_the_device(rng, scale):
    """The moments' squares underflow to 0 there (at 1e-161 they are subnormal, a std 0.2% off): the device path
    rescales as the CPU does, not divide by 1 or by that std."""
    from cudrift.stats import wasserstein_normalized

    a0, b0 = rng.normal(size=60), rng.normal(0.8, 1, 50)
    a, b = a0 * scale, b0 * scale
    want = wasserstein_normalized(a, b, backend="cpu").statistic
    assert want == pytest.approx(wasserstein_normalized(a0, b0, backend="cpu").statistic, rel=1e-12)
    assert want > 0.3
    got = wasserstein_normalized(cupy.asarray(a), cupy.asarray(b), backend="gpu").statistic
    det = DriftDetector(cupy.asarray(a[:, None]), columns=["x"], policy="wasserstein_normalized", backend="gpu")
    f = det.compare(cupy.asarray(b[:, None]), columns=["x"])["x"]
    assert got == pytest.approx(want, rel=1e-9) and f.statistic == pytest.approx(want, rel=1e-9) and f.drifted


def test_rank_statistics_refuse_sizes_whose_product_passes_the_int64_keys():
    """The rank kernel's exact keys n_b * F_a - n_a * F_b reach len(a) * len(b): past 2**63 they wrapped and the
    KS maximum was missed (two 4e9-row columns fit an H200). Such pairs are refused, naming the sizes, before
    anything is launched (columns that large cannot be built here: stand-ins with their shapes)."""
    from types import SimpleNamespace

    big = SimpleNamespace(shape=(3_100_000_000,))
    with pytest.raises(ValueError, match=r"3,100,000,000 against 3,100,000,000 values.*2\*\*63.*exact='never'"):
        _gpu.rank_statistics_many([(big, big)])


def test_rank_tests_many_batches_the_ks_pvalues(rng, monkeypatch):
    """One launch for every pair; each asymptotic KS p-value as finish_rank_test would form it alone."""
    from cudrift.backends import _gpu_host as gh
    from cudrift.kernels import _host
    from cudrift.stats import univariate

    monkeypatch.setattr(univariate, "KS_EXACT_MAX", 200)  # samples this small take the asymptotic p-value here
    sizes = [(300, 250), (150, 120), (260, 90)]
    tests = ["ks", "ks", "wasserstein"]
    pairs = [(cupy.asarray(np.sort(rng.normal(size=m))), cupy.asarray(np.sort(rng.normal(0.3, size=n))))
             for m, n in sizes]
    got = _gpu.rank_tests_many(pairs, tests)
    want = _host.WANT_KS | _host.WANT_DISTANCES  # what these tests need
    np.testing.assert_equal([s for s, _ in got], _gpu.rank_statistics_many(pairs, want))
    (s0, p0), (_, p1), (s2, p2) = got
    assert p0 == gh.finish_rank_test("ks", s0, *sizes[0]).pvalue and p1 is None and p2 is None
    assert np.isnan(s2.cramervonmises)  # no test asked for it
    full = _gpu.rank_tests_many(pairs, tests, want=_host.WANT_ALL)
    assert [p for _, p in full] == [p0, None, None] and not np.isnan(full[2][0].cramervonmises)


def test_triton_gpu_instance_profiles_device_tensors(tmp_path, monkeypatch):
    """A KIND_GPU monitor (stand-in pb_utils): device tensors read through DLPack and profiled by the GPU path."""
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[http,grpc] is not installed")
    from test_triton_model import FakeTensor, make_pb, model_args, value, wait_for

    from cudrift.integrations.triton import write_repository
    from cudrift.integrations.triton.model import TritonPythonModel

    registry, logs = {}, []
    pb = make_pb(registry, logs)
    pb.registry, pb.logs = registry, logs
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)

    class DeviceTensor(FakeTensor):  # what the stub hands over with FORCE_CPU_ONLY_INPUT_TENSORS "no"
        def is_cpu(self):
            return False

    rng = np.random.default_rng(2024)
    n = 2000
    reference = cudrift.profile({"a": rng.normal(0, 1, n).astype(np.float32),
                                 "b": rng.uniform(0, 10, n).astype(np.float32),
                                 "region": rng.integers(0, 5, n)}, backend="cpu")
    repo = write_repository(tmp_path / "repo", reference, window_rows=600, checkpoint="", kind="gpu")
    m = TritonPythonModel()
    m.initialize(model_args(repo, instance_kind="GPU"))
    try:
        assert m.backend == "gpu"

        sent = []

        def req(k, shift=0.0):
            x = np.stack([rng.normal(0, 1, k), rng.uniform(0, 10, k) + shift], axis=1).astype(np.float32)
            region = rng.integers(0, 5, (k, 1))
            sent.append({"a": x[:, 0], "b": x[:, 1], "region": region[:, 0]})
            return {"NUMERIC": DeviceTensor("NUMERIC", cupy.asarray(x)),
                    "CATEGORICAL_INT": DeviceTensor("CATEGORICAL_INT", cupy.asarray(region))}

        def cpu_verdict(parts):  # the same rows through the NumPy path
            window = {f: np.concatenate([p[f] for p in parts]) for f in ("a", "b", "region")}
            rep = DriftDetector(reference, backend="cpu").compare(window)
            return {f.column: (f.statistic, f.drifted) for f in rep.features}

        def published():
            return {f: (value(pb, "cudrift_feature_drift_score", feature=f),
                        value(pb, "cudrift_feature_drifted", feature=f) == 1) for f in ("a", "b", "region")}

        for w, shift in enumerate((0.0, 5.0)):
            out = m.execute([req(300, shift) for _ in range(2)])
            assert all(r.error is None for r in out)
            wait_for(lambda: value(pb, "cudrift_windows_closed_total") == w + 1, timeout=120)
            want, got = cpu_verdict(sent[2 * w :]), published()
            for f in want:
                assert got[f][0] == pytest.approx(want[f][0], rel=1e-9) and got[f][1] == want[f][1], (f, got, want)
        assert got["b"][1] and value(pb, "cudrift_window_rows_total") == 1200
    finally:
        m.finalize()
    assert any("backend gpu," in line for _, line in logs), logs


def test_triton_gpu_window_state_counts_values_outside_a_window_references_range():
    """Device batches folded against a window given as the reference: the values outside its own range are
    counted on the device, as the NumPy path counts them."""
    from cudrift.integrations.triton import FeatureLayout, WindowState

    rng = np.random.default_rng(77)
    wide = cudrift.profile({"a": rng.normal(size=3000), "b": rng.normal(size=3000)}, backend="cpu")
    ref = cudrift.profile({"a": rng.uniform(-1, 1, 500), "b": rng.uniform(-1, 1, 500)}, like=wide, backend="cpu")
    x = rng.uniform(-1.5, 1.5, (400, 2)).astype(np.float32)
    x[:2, 0] = [np.inf, np.nan]
    got = {}
    for backend, arr in (("gpu", cupy.asarray(x)), ("cpu", x)):
        st = WindowState(ref, FeatureLayout.from_profile(ref), window_rows=400, backend=backend)
        st.accept({"NUMERIC": arr}, 400)
        got[backend] = st.close_next().outside
    want = {n: int(np.sum((x[:, j] < ref[n].moments.min) | (x[:, j] > ref[n].moments.max)))
            for j, n in enumerate(("a", "b"))}
    assert got["gpu"] == got["cpu"] == want and want["a"] > 50


# ---------------------------------------------------------------- cuDF, as far as cudrift reads it


class _CategoricalDtype:
    """Stands for ``cudf.CategoricalDtype``: not a NumPy dtype, so the column is read through Arrow."""


class _Iloc:
    def __init__(self, s):
        self.s = s

    def __getitem__(self, key):
        return _FakeSeries(self.s.name, self.s.arrow[key])


class _FakeSeries:
    """A cuDF Series over an Arrow array: what cudrift reads of one (dtype, null_count, values, iloc, ...).

    As in cuDF: nulls are a mask apart from the values (a float column keeps
    its NaN as values, and ``null_count`` counts the mask alone); ``values``
    is a device array and refuses a column with nulls; ``dropna`` drops
    NaN too in a float column (cuDF turns NaN to nulls first); comparisons
    give null for a null (IEEE for NaN), ``|`` is null where either side is
    (libcudf's bitwise or), ``fillna`` fills nulls, and a boolean Series
    selects rows.
    """

    def __init__(self, name, arrow):
        self.name, self.arrow = name, arrow

    @property
    def dtype(self):
        t = self.arrow.type
        if pa.types.is_dictionary(t):
            return _CategoricalDtype()
        return np.dtype(object) if pa.types.is_string(t) else np.dtype(t.to_pandas_dtype())

    @property
    def null_count(self):
        return self.arrow.null_count

    def dropna(self):
        if pa.types.is_floating(self.arrow.type):
            return _FakeSeries(self.name, self.arrow.filter(pac.fill_null(pac.invert(pac.is_nan(self.arrow)), False)))
        return _FakeSeries(self.name, self.arrow.drop_null())

    def _op(self, fn, other):
        return _FakeSeries(self.name, fn(self.arrow, other.arrow))

    def __eq__(self, other):
        return self._op(pac.equal, other)

    def __ne__(self, other):
        return self._op(pac.not_equal, other)

    def __or__(self, other):
        return self._op(pac.or_, other)

    def fillna(self, value):
        return _FakeSeries(self.name, pac.fill_null(self.arrow, value))

    def __getitem__(self, mask):
        if mask.arrow.null_count:
            raise ValueError("cannot mask with boolean_mask containing null values")
        return _FakeSeries(self.name, self.arrow.filter(mask.arrow))

    @property
    def values(self):
        if self.arrow.null_count:
            raise ValueError("Column must have no nulls.")
        return cupy.asarray(self.arrow.to_numpy(zero_copy_only=False))

    @property
    def iloc(self):
        return _Iloc(self)

    def to_arrow(self):
        return self.arrow

    def to_frame(self):
        return _FakeFrame(pa.table({self.name: self.arrow}))

    def __len__(self):
        return len(self.arrow)


class _FakeFrame:
    def __init__(self, table):
        self.table = table

    @property
    def columns(self):
        return list(self.table.column_names)

    def __getitem__(self, name):
        return _FakeSeries(name, self.table.column(name).combine_chunks())

    def __len__(self):
        return self.table.num_rows


for _cls in (_CategoricalDtype, _Iloc, _FakeSeries, _FakeFrame):
    _cls.__module__ = "cudf.core.fake"  # cudrift recognizes cuDF objects by their module


def _cudf_table(rng, n: int, shift: float = 0.0):
    """Float columns with nulls and NaN/inf, integers with nulls, booleans, strings with nulls, a dictionary column."""
    def nulls(share):
        return rng.random(n) < share

    f32 = _with_specials(rng.normal(shift, size=n), rng).astype(np.float32)
    return pa.table({
        "f32": pa.array(f32, mask=nulls(0.05)),
        "f64": pa.array(rng.standard_t(3, size=n) + shift, mask=nulls(0.1)),
        "i64": pa.array(rng.integers(-50, 50, size=n), mask=nulls(0.05)),
        "flag": pa.array(rng.random(n) < 0.3),
        "label": pa.array(np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, size=n)], mask=nulls(0.1)),
        "cat": pa.array(np.array(["x", "y"], dtype=object)[rng.integers(0, 2, size=n)]).dictionary_encode(),
    })


def test_cudf_floats_read_on_the_host_where_nulls_cannot_be_dropped_alone(rng, monkeypatch, via_arrow):
    """Comparisons that treat a null as pandas' NaN (cuDF's pandas-compatible mode, which this stand-in cannot
    switch off): caught by the row count, the float columns read through Arrow with a warning, still right."""
    monkeypatch.setattr(_FakeSeries, "__eq__",
                        lambda a, b: a._op(lambda x, y: pac.fill_null(pac.equal(x, y), False), b))
    monkeypatch.setattr(_FakeSeries, "__ne__",
                        lambda a, b: a._op(lambda x, y: pac.fill_null(pac.not_equal(x, y), True), b))
    table = _cudf_table(rng, 200)
    with pytest.warns(UserWarning, match="read through the host"):
        pg = cudrift.profile(_FakeFrame(table), config=CFG, backend="gpu")
    _assert_profiles_match(cudrift.profile(table, config=CFG, backend="cpu"), pg)
    assert {"f32", "f64"} <= set(via_arrow) and "i64" not in via_arrow


def test_cudf_categorical_integers_follow_a_numerical_reference(rng):
    """A cuDF categorical of integers against a numerical reference is read as numbers, as on the CPU."""
    ref = pa.table({"i": pa.array(rng.integers(0, 50, 500))})
    cur = pa.table({"i": pa.array(rng.integers(0, 50, 300)).dictionary_encode()})
    rc = DriftDetector(ref, backend="cpu").compare(cur)
    rg = DriftDetector(ref, backend="gpu").compare(_FakeFrame(cur))
    assert rc["i"].status == rg["i"].status == "ok" and rg["i"].test == rc["i"].test == "ks"
    _assert_reports_match(rc, rg, rel=1e-9)


def test_cudf_frames_and_series_match_the_arrow_table(rng, via_arrow):
    """cuDF numbers are profiled on the device (nulls dropped, NaN kept, as on the host), labels via Arrow."""
    table = _cudf_table(rng, 300)
    pc = cudrift.profile(table, config=CFG, backend="cpu")
    pg = cudrift.profile(_FakeFrame(table), config=CFG, backend="gpu")
    _assert_profiles_match(pc, pg)
    assert pg.columns["f32"].null_count > 0 and pg.columns["f32"].nan_count > 0  # both kinds of missing were there
    assert set(via_arrow) == {"label", "cat"}  # the numbers, nulls and NaN included, stayed on the device
    cur = _cudf_table(rng, 200, shift=0.3)
    _assert_profiles_match(cudrift.profile(cur, like=pc, backend="cpu"),
                           cudrift.profile(_FakeFrame(cur), like=pc, backend="gpu"))
    # a Series is a one-column frame named after it; a dict may mix cuDF and host columns
    s = _FakeFrame(cur)["f64"]
    _assert_profiles_match(cudrift.profile(cur.select(["f64"]), config=CFG, backend="cpu"),
                           cudrift.profile(s, config=CFG, backend="gpu"))
    mixed = {"f64": s, "label": cur.column("label").to_pylist()}
    _assert_profiles_match(cudrift.profile(cur.select(["f64", "label"]), config=CFG, backend="cpu"),
                           cudrift.profile(mixed, config=CFG, backend="gpu"))
