"""Runners and twin checks shared by the kernel tests (simulator and GPU).

Each ``run_*`` copies inputs to the device, allocates outputs the way the
Python layer would, launches one kernel family and returns host results;
each ``check_*`` holds those results to the CPU twin (the cudrift sketch or
statistic, SciPy, or a direct NumPy formula): counts exactly equal, floats
within the tolerance stated next to the check.

Importing this module needs ``numba-cuda``; the test modules import it only
after ``pytest.importorskip``. ``NUMBA_ENABLE_CUDASIM`` defaults to 1 here as
in the test modules (a real GPU run sets it to 0 before pytest starts).
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

from numba import cuda  # noqa: E402
from scipy import stats as st  # noqa: E402

from cudrift.kernels import _cuda, _host, _launch  # noqa: E402
from cudrift.kernels.categorical import launch_categorical  # noqa: E402
from cudrift.kernels.mmd import launch_mmd  # noqa: E402
from cudrift.kernels import profile as _kernel_profile  # noqa: E402
from cudrift.kernels.profile import SHIFT_ROWS, launch_profile, profile_outputs, rows_layout  # noqa: E402
from cudrift.kernels.quantiles import launch_quantile_points, launch_run_ends  # noqa: E402
from cudrift.kernels.rank import N_FLOAT_PARTIALS, N_INT_PARTIALS, launch_rank  # noqa: E402
from cudrift.sketches.categorical import count_categories  # noqa: E402
from cudrift.sketches.column import NumericColumnProfile  # noqa: E402
from cudrift.sketches.quantiles import _summarize_sorted  # noqa: E402
from cudrift.stats import mmd as cpu_mmd  # noqa: E402
from cudrift.stats._dist import anderson_2samp_normalize  # noqa: E402

#: True when the kernels run in Numba's CUDA simulator.
SIMULATOR = _cuda.SIMULATOR
if SIMULATOR:
    from fake_cupy import _lock_static_shared_arrays

    _lock_static_shared_arrays()  # (the simulator's static shared arrays race between a block's threads)

# Relative tolerance of the rank statistics and MMD against their twins.
RTOL = 1e-9


def skip_unless_usable() -> None:
    """Skip the calling module when neither the simulator nor a GPU can run kernels."""
    if not SIMULATOR and not cuda.is_available():
        pytest.skip(
            "the CUDA simulator is off (NUMBA_ENABLE_CUDASIM was "
            f"{os.environ.get('NUMBA_ENABLE_CUDASIM')!r} or Numba was imported before it was set) "
            "and no CUDA GPU answers",
            allow_module_level=True,
        )


def close(ours: float, ref: float, rtol: float = RTOL, atol: float = 1e-12) -> None:
    assert abs(ours - ref) <= rtol * abs(ref) + atol, (ours, ref)


# ------------------------------------------------------------------ profile


def pad_edges(edge_list) -> tuple[np.ndarray, np.ndarray]:
    """Per-column edges (or None) -> padded ``(cols, max_edges)`` float64 and edge counts."""
    width = max((len(e) for e in edge_list if e is not None), default=0)
    edges = np.zeros((len(edge_list), width))
    n_edges = np.zeros(len(edge_list), dtype=np.int64)
    for c, e in enumerate(edge_list):
        if e is not None:
            edges[c, : len(e)] = e
            n_edges[c] = len(e)
    return edges, n_edges


def nearest_edges(edge_list):
    """Each column's edges (or None) rounded to the nearest float32, as the GPU backend bins float32 data on."""
    return [None if e is None else _host.nearest_float_edges(e) for e in edge_list]


def run_profile(x, edge_list, uniform=None, null_mask=None, *, threads=None, row_blocks=None, privatize=None,
                edges32="auto", interleave=None, device=None, device_mask=None):
    """One :func:`launch_profile` on host arrays; returns the host outputs and merged moments.

    ``device``, ``device_mask``: device arrays holding ``x``'s values and ``null_mask``'s to launch on
    instead of copies of them.

    ``edges32``: ``"auto"`` does as the GPU backend does: for float32 ``x`` the
    edges rounded to the nearest float32 (:func:`nearest_edges`), passed as
    float64 edges and as ``edges32`` (float32 ``x`` is then binned in float32,
    at its own precision, as ``Histogram`` bins it); None those float64 edges
    only (compared in float64, to the same counts); an array is passed as it
    is, with the edges as given. ``interleave`` is the launcher's.
    """
    n_rows, n_cols = x.shape
    if (edges32 is None or isinstance(edges32, str)) and x.dtype == np.float32:
        edge_list = nearest_edges(edge_list)
    edges, n_edges = pad_edges(edge_list)
    if isinstance(edges32, str):
        edges32 = _host.float32_edges(edges)
    edges32 = None if edges32 is None else cuda.to_device(edges32)
    uni = np.zeros(n_cols, dtype=np.uint8) if uniform is None else np.asarray(uniform, dtype=np.uint8)
    nt = threads or _launch.threads_per_block()
    rb = row_blocks or _launch.row_blocks(n_rows, n_cols, nt, row_major=rows_layout(x))
    dev = {k: cuda.to_device(v) for k, v in profile_outputs(n_cols, edges.shape[1], rb, np.full).items()}
    mask = None if null_mask is None else cuda.to_device(null_mask) if device_mask is None else device_mask
    run = launch_profile(
        cuda.to_device(x) if device is None else device, cuda.to_device(edges), cuda.to_device(n_edges),
        cuda.to_device(uni),
        **dev, null_mask=mask, edges32=edges32, threads=nt, privatize=privatize, interleave=interleave,
    )
    res = {k: v.copy_to_host() for k, v in dev.items()}
    res["run"] = run
    res["count"], res["mean"], res["m2"] = _host.merge_block_moments(res["blk_count"], res["blk_mean"], res["blk_m2"])
    if n_rows:  # the kernels' block means are relative to one of the first rows (moment_shift)
        res["mean"] = res["mean"] + _host.moment_shifts(x[:SHIFT_ROWS])
    res["n_edges"] = n_edges
    return res


def check_profile(x, edge_list, uniform=None, null_mask=None, **geometry) -> dict:
    """Hold :func:`run_profile` to ``NumericColumnProfile.update`` column by column.

    Counts (histogram, null, NaN, ±inf, finite) and min / max are exactly
    equal; the mean agrees within 1e-12 of ``|mean| + std`` and M2 within
    1e-10 relative (Welford + Chan versus the CPU's shifted two-pass sum),
    except in a column holding values past 1e150 (with ``GROUP`` 0: NaN
    moments, for the caller to take again from the sorted values).
    """
    res = run_profile(x, edge_list, uniform, null_mask, **geometry)
    for c in range(x.shape[1]):
        col = x[:, c]
        nulls = 0
        if null_mask is not None:
            nulls = int(null_mask[:, c].sum())
            col = col[~null_mask[:, c]]
        prof = NumericColumnProfile.empty(edges=edge_list[c]).update(col, null_count=nulls)
        assert res["special"][c].tolist() == [nulls, prof.nan_count, prof.posinf_count, prof.neginf_count]
        mom = prof.moments
        assert res["count"][c] == mom.count
        if edge_list[c] is None:
            assert not res["hist"][c].any()
        else:
            ne = res["n_edges"][c]
            assert res["hist"][c, : ne + 1].tolist() == prof.histogram.counts.tolist()
            assert not res["hist"][c, ne + 1 :].any()
        assert res["mins"][c] == mom.min and res["maxs"][c] == mom.max
        assert np.signbit(res["mins"][c]) == np.signbit(mom.min)
        if mom.count == 0:
            assert np.isnan(res["mean"][c]) and res["m2"][c] == 0.0
            continue
        if _kernel_profile.GROUP == 0 and (np.abs(col[np.isfinite(col)]) >= _host.MOMENT_HUGE).any():
            # values past 1e150 are counted, not summed: the moments are NaN and the backend takes them again
            # from the sorted column (moments_need_sorted says so for a NaN M2)
            assert np.isnan(res["mean"][c]) and np.isnan(res["m2"][c])
            assert _host.moments_need_sorted(res["mean"][c], 0.0, res["m2"][c], int(res["count"][c]), res["run"])
            continue
        spread = np.sqrt(mom.variance) if np.isfinite(mom.m2) else np.inf
        assert abs(res["mean"][c] - mom.mean) <= 1e-12 * (abs(mom.mean) + spread)
        if np.isfinite(mom.m2):
            assert abs(res["m2"][c] - mom.m2) <= 1e-10 * mom.m2 + 1e-300
        else:
            assert res["m2"][c] == mom.m2
    return res


# ------------------------------------------------------------------ categorical


def run_categorical(codes, n_categories, *, threads=None, row_blocks=None, privatize=None):
    """One :func:`launch_categorical`; returns host ``(counts, other)``."""
    n_cols = codes.shape[1]
    width = int(max(n_categories, default=0))
    counts = cuda.to_device(np.zeros((n_cols, width), dtype=np.int64))
    other = cuda.to_device(np.zeros((n_cols, 2), dtype=np.int64))
    launch_categorical(
        cuda.to_device(codes), cuda.to_device(np.asarray(n_categories, dtype=np.int64)), counts, other,
        row_blocks, threads=threads, privatize=privatize,
    )
    return counts.copy_to_host(), other.copy_to_host()


def check_categorical(codes, n_categories, **geometry) -> None:
    """Hold :func:`run_categorical` to ``np.bincount`` and ``count_categories``: exactly equal."""
    counts, other = run_categorical(codes, n_categories, **geometry)
    for c, k in enumerate(n_categories):
        col = codes[:, c].astype(np.int64)
        valid = col[(col >= 0) & (col < k)]
        assert counts[c, :k].tolist() == np.bincount(valid, minlength=k).tolist()
        assert not counts[c, k:].any()
        assert other[c].tolist() == [int((col == -1).sum()), int(col.size - valid.size - (col == -1).sum())]
        _, keys, kc, _ = count_categories(valid)
        assert dict(zip(keys, kc.tolist())) == {i: int(n) for i, n in enumerate(counts[c, :k]) if n}


# ------------------------------------------------------------------ quantiles


def run_run_ends(x, capacity: int, *, threads=None):
    """One :func:`launch_run_ends`; returns host ``(ends, end_values, n_runs)``."""
    ends = cuda.to_device(np.full(capacity, -1, dtype=np.int64))
    values = cuda.to_device(np.zeros(capacity))
    n_runs = cuda.to_device(np.zeros(1, dtype=np.int64))
    launch_run_ends(cuda.to_device(x), ends, values, n_runs, threads=threads)
    return ends.copy_to_host(), values.copy_to_host(), int(n_runs.copy_to_host()[0])


def device_summary(x, k: int, *, threads=None):
    """The level-0 quantile summary of sorted ``x`` computed as the GPU path computes it.

    Follows ``_summarize_sorted``'s decisions with the kernels doing the
    O(m) work and :mod:`cudrift.kernels._host` the O(k) rest.
    """
    m = x.size
    if m <= k + 1:
        return _host.summary_from_run_ends(*run_run_ends(x, k + 1, threads=threads))
    values = cuda.to_device(np.zeros(k + 1))
    lt = cuda.to_device(np.zeros(k + 1, dtype=np.int64))
    le = cuda.to_device(np.zeros(k + 1, dtype=np.int64))
    launch_quantile_points(cuda.to_device(x), k, values, lt, le, threads=threads)
    s = _host.summary_from_points(values.copy_to_host(), lt.copy_to_host(), le.copy_to_host(), m)
    if s.exact or s.values.size > k:
        return s.values, s.lo, s.hi
    ends, end_values, n_runs = run_run_ends(x, k + 1, threads=threads)
    if n_runs <= k + 1:
        return _host.summary_from_run_ends(ends, end_values, n_runs)
    return s.values, s.lo, s.hi


def check_quantiles(x, k: int, **geometry) -> None:
    """Hold :func:`device_summary` to ``_summarize_sorted``: identical arrays, dtypes and bytes."""
    ours = device_summary(x, k, **geometry)
    ref = _summarize_sorted(x, k)
    for a, b in zip(ours, ref):
        assert a.dtype == b.dtype
        assert a.tobytes() == b.tobytes(), (a, b)


# ------------------------------------------------------------------ rank


def run_rank(a, b, *, threads=None, items=None, blocks=None, want=_host.WANT_ALL, raw=False):
    """One :func:`launch_rank` on two sorted host arrays, finished by :func:`_host.rank_statistics`.

    With ``raw``, ``(statistics, fpart)``: the kernel's per-block float sums too.
    """
    nt = threads or _launch.threads_per_block()
    per = items or _launch.rank_items()
    nb = blocks or _launch.rank_blocks(a.size + b.size, nt, per)
    fpart = cuda.to_device(np.zeros((nb, N_FLOAT_PARTIALS)))
    ipart = cuda.to_device(np.zeros((nb, N_INT_PARTIALS), dtype=np.int64))
    launch_rank(cuda.to_device(a), cuda.to_device(b), fpart, ipart, threads=nt, items=per, want=want)
    fp = fpart.copy_to_host()
    stats = _host.rank_statistics(fp, ipart.copy_to_host(), a.size, b.size, want)
    return (stats, fp) if raw else stats


def check_rank(a, b, **geometry) -> "_host.RankStatistics":
    """Hold :func:`run_rank` to SciPy within :data:`RTOL` relative.

    ``ks_2samp`` (all three alternatives), ``wasserstein_distance``,
    ``energy_distance``, ``cramervonmises_2samp`` (two values per sample at
    least) and ``anderson_ksamp(variant="midrank")`` (four values in total).
    """
    a, b = np.sort(a), np.sort(b)
    r = run_rank(a, b, **geometry)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with warnings.catch_warnings():
        # only the statistics are compared; SciPy's p-values warn on tiny samples
        warnings.simplefilter("ignore")
        ks = {
            alt: st.ks_2samp(a64, b64, alternative=alt, method="asymp").statistic
            for alt in ("two-sided", "greater", "less")
        }
    close(r.ks, ks["two-sided"])
    close(r.ks_plus, ks["greater"])
    close(r.ks_minus, ks["less"])
    close(r.wasserstein, st.wasserstein_distance(a64, b64))
    close(r.energy, st.energy_distance(a64, b64))
    if a.size >= 2 and b.size >= 2:
        close(r.cramervonmises, st.cramervonmises_2samp(a64, b64, method="asymptotic").statistic)
    if a.size + b.size >= 4 and np.unique(np.concatenate((a64, b64))).size > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = st.anderson_ksamp([a64, b64], variant="midrank").statistic
        close(anderson_2samp_normalize(r.anderson_a2kn, a.size, b.size), ref)
    return r


# ------------------------------------------------------------------ mmd


def mmd_inputs(x, y, n_permutations: int, seed: int):
    """Centered pooled points and the 0/1 labelings ``cudrift.stats.mmd`` draws (observed first)."""
    z = np.concatenate([v[:, None] if v.ndim == 1 else v for v in (x, y)]).astype(np.float64)
    z -= z.mean(axis=0)
    n, big_n = x.shape[0], z.shape[0]
    labels = np.zeros((big_n, n_permutations + 1))
    labels[:n, 0] = 1.0
    rng = np.random.default_rng(seed)
    for p in range(1, n_permutations + 1):
        labels[rng.permutation(big_n)[:n], p] = 1.0
    return z, labels


def run_mmd(z, labels, n_x: int, sigma: float) -> np.ndarray:
    """One :func:`launch_mmd`; returns MMD² per labeling."""
    big_n, n_lab = labels.shape
    row_sums = cuda.to_device(np.zeros(big_n))
    quad = cuda.to_device(np.zeros(n_lab))
    mmd2 = cuda.to_device(np.zeros(n_lab))
    launch_mmd(cuda.to_device(z), cuda.to_device(labels), n_x, -1.0 / (2.0 * sigma * sigma), row_sums, quad, mmd2)
    return mmd2.copy_to_host()


def numpy_mmd2(z, labels, n_x: int, sigma: float) -> np.ndarray:
    """Unbiased MMD² of every labeling from the full kernel matrix (the direct formula)."""
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    k = np.exp(-sq / (2.0 * sigma * sigma))
    np.fill_diagonal(k, 0.0)
    m = z.shape[0] - n_x
    out = []
    for p in range(labels.shape[1]):
        s = labels[:, p].astype(bool)
        xx = k[np.ix_(s, s)].sum() / (n_x * (n_x - 1))
        yy = k[np.ix_(~s, ~s)].sum() / (m * (m - 1))
        xy = k[np.ix_(s, ~s)].sum() / (n_x * m)
        out.append(xx + yy - 2.0 * xy)
    return np.array(out)


def check_mmd(x, y, sigma: float, n_permutations: int, seed: int, *, direct: bool = True) -> None:
    """Hold :func:`run_mmd` to the direct formula and to ``cudrift.stats.mmd``.

    MMD² agrees within :data:`RTOL` relative plus ``1e-12`` times the largest
    kernel sum term (MMD² is a difference of O(1) means and may be ~0); the
    permutation p-value is identical.
    """
    z, labels = mmd_inputs(x, y, n_permutations, seed)
    n_x = x.shape[0]
    ours = run_mmd(z, labels, n_x, sigma)
    if direct:
        ref = numpy_mmd2(z, labels, n_x, sigma)
        np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-12)
    res = cpu_mmd(x, y, bandwidth=sigma, n_permutations=n_permutations, seed=seed)
    observed, pvalue = _host.mmd_pvalue(ours)
    close(observed, res.statistic)
    assert pvalue == res.pvalue
