"""The GPU backend: profiles and exact rank statistics computed by the CUDA kernels, glued with CuPy.

Importing this module needs CuPy and numba-cuda and a CUDA device that
Numba can reach outside its simulator; otherwise it raises ImportError
saying which is missing (:func:`cudrift.backends.gpu_status` reports it).

What runs where
---------------
Numeric columns
    One fused pass of :func:`cudrift.kernels.profile.launch_profile` per
    device array (all columns of a 2-D array at once): null / NaN / ±inf
    counts, min / max, histogram counts on the column's edges and per-block
    moments, merged on the host with Chan's formula. Each column is then
    sorted as a 1-D array (``ndarray.sort``: CUB radix sort), its finite
    part summarized by the quantile kernels into exactly the CPU's level-0
    summary, and the bottom-k sample's candidates are hashed on the device
    (priorities depend only on the index) and gathered there; the host keeps
    the k smallest. The results fold into the same
    :class:`~cudrift.sketches.column.NumericColumnProfile` objects the CPU
    builds, so GPU- and CPU-made profiles merge and serialize alike.
Categorical columns
    Integer and boolean device columns are counted by
    :func:`cudrift.kernels.categorical.launch_categorical` on dense codes
    (``key - min``); string columns, and categorical columns that arrive on
    the host, stay on the CPU path (a hash pass on the host is what encoding
    them to codes would cost anyway), on threads next to the device work.
Host windows
    Numeric host columns are copied by a staging thread through two pinned
    buffers on a copy stream while the caller's thread works on the
    previous group. Whole columns of one dtype and length go together into
    one column-major device block (:data:`GROUP_BYTES` at a time: one
    profile launch, one read-back and one summary launch per group); a
    column that fits on the device is copied once and is one sketch batch
    (the CPU's exact quantile summary), a longer one is cut into units
    staged one at a time. A group of evenly spaced columns of one C-ordered
    matrix is staged a block of rows at a time
    (:func:`_gpu_host.row_block`), each row's values read once.
Device windows
    CuPy arrays, cuDF frames and anything exporting
    ``__cuda_array_interface__`` or CUDA DLPack are read in place.
Rank statistics
    KS, Wasserstein-1, energy, Cramér–von Mises and Anderson–Darling from
    :func:`cudrift.kernels.rank.launch_rank` on the sorted reference kept on
    the device and the sorted current column; p-values on the host with the
    CPU path's null distributions. MMD by :func:`cudrift.kernels.mmd.launch_mmd`.

All device work of a call runs on one non-blocking compute stream (plus a
copy stream for host input), after the caller's current stream, and every
public function here synchronizes before it returns. Calls are serialized
by a lock, so the detector's worker threads may call in concurrently.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

_HINT = "install a CUDA extra: pip install 'cudrift[cuda12]' or 'cudrift[cuda13]'"
try:
    import cupy
except ImportError as _exc:
    raise ImportError(f"the GPU backend needs CuPy ({_exc}); {_HINT}") from _exc
try:
    import numba_cuda  # noqa: F401  (the numba-cuda package, not numba's deprecated built-in target)
    from cudrift.kernels import _cuda
except Exception as _exc:  # ImportError, or a broken llvmlite / CUDA binding raising anything
    raise ImportError(f"the GPU backend needs numba-cuda ({type(_exc).__name__}: {_exc}); {_HINT}") from _exc
if _cuda.SIMULATOR:
    raise ImportError(
        "Numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1 when Numba was first imported); the GPU backend "
        "needs a real device: set NUMBA_ENABLE_CUDASIM=0 before anything imports Numba"
    )
if not _cuda.cuda.is_available():
    raise ImportError("numba-cuda cannot use the CUDA driver or found no device (numba.cuda.is_available() is False)")

from cudrift.backends import _gpu_host as gh  # noqa: E402
from cudrift.backends import submit, usable_cpus, worker_pool  # noqa: E402
from cudrift.backends._gpu_source import as_cupy, device_source  # noqa: E402
from cudrift.backends._gpu_summary import sorted_summaries, sorted_summary  # noqa: E402
from cudrift.errors import SchemaError  # noqa: E402
from cudrift.io import ColumnData, TableSource, as_source as _host_source  # noqa: E402
from cudrift.kernels import _host, _launch  # noqa: E402
from cudrift.kernels.categorical import launch_categorical  # noqa: E402
from cudrift.kernels.mmd import launch_mmd  # noqa: E402
from cudrift.kernels.profile import SHIFT_ROWS, launch_profile, profile_outputs, rows_layout  # noqa: E402
from cudrift.kernels.rank import N_FLOAT_PARTIALS, N_INT_PARTIALS, launch_rank_many, split_offsets  # noqa: E402
from cudrift.sketches import column as _column  # noqa: E402
from cudrift.sketches import moments as _moments  # noqa: E402
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile  # noqa: E402
from cudrift.sketches.histogram import column_precision  # noqa: E402
from cudrift.sketches.profile import _label_batch  # noqa: E402
from cudrift.stats import TESTS, TestResult  # noqa: E402
from cudrift.stats import multivariate as _mv  # noqa: E402
from cudrift.stats._validation import dropped_details  # noqa: E402
from cudrift.stats.univariate import _usable_std  # noqa: E402

cuda = _cuda.cuda

__all__ = [
    "as_source",
    "pack_columns",
    "rank_statistics_many",
    "rank_tests_many",
    "host_view",
    "distinct_view",
    "consume",
    "count_histograms",
    "distinct_sorted",
    "n_unique_sorted",
    "run_sorted_test",
    "mmd",
    "sample_test",
    "to_host",
    "warm_up",
    "device_info",
]

#: Bytes of one pinned staging buffer (two are used, alternately).
PIECE_BYTES = 32 << 20
#: Bytes of whole host columns staged and profiled together: one column-major
#: device block, one profile launch, one read-back of its outputs and one
#: summary launch for the group, instead of one of each per column. Several
#: groups per window keep the staging of the next group overlapping the work
#: on this one. 0: every column alone.
GROUP_BYTES = 256 << 20
#: Rows per unit of a host column; None: as many as fit the free device memory.
MAX_UNIT_ROWS: int | None = None
# Share of free device memory a unit's working set may take: the unit, the
# next unit being copied in, the sorted copy and the sort's scratch.
_UNIT_SHARE = 0.6
# Share of free device memory that sorted columns kept for the detector or
# for the reference's histogram pass may take.
_KEEP_SHARE = 0.5
# Widest range of integer keys counted by dense codes; wider columns are
# counted by a device sort (cupy.unique).
_MAX_CODE_SPAN = 1 << 20
# Indices hashed per block when choosing sample candidates (32 MiB of priorities).
_HASH_BLOCK = 1 << 22
_U64 = 1 << 64
# Column pairs per rank-kernel launch (CUDA's gridDim.y limit).
_MAX_PAIRS = _launch.MAX_GRID_Y

# Conversion to the sort dtype with every NaN made the positive quiet NaN:
# the radix sort orders by bits, so a NaN with its sign bit set would land
# before -inf instead of after +inf.
_SORT_KEY = cupy.ElementwiseKernel(
    "T x",
    "S y",
    "S v = (S)x; y = (v != v) ? cudrift_qnan(v) : v;",
    "cudrift_sort_key",
    preamble="""
    __device__ float cudrift_qnan(float) { return __int_as_float(0x7fc00000); }
    __device__ double cudrift_qnan(double) { return __longlong_as_double(0x7ff8000000000000LL); }
    """,
)

# splitmix64(key ^ (start + i)) mod 2**64, as cudrift.sketches.sample hashes indices (key: sample.seed_key).
_PRIORITY = cupy.ElementwiseKernel(
    "uint64 start, uint64 key",
    "uint64 z",
    """
    unsigned long long v = (start + (unsigned long long)i) ^ key;
    v += 0x9E3779B97F4A7C15ULL;
    v ^= v >> 30; v *= 0xBF58476D1CE4E5B9ULL;
    v ^= v >> 27; v *= 0x94D049BB133111EBULL;
    v ^= v >> 31;
    z = v;
    """,
    "cudrift_splitmix64",
)


# ---------------------------------------------------------------- device state


class _Pinned:
    """A pinned host staging buffer and the event of the last copy out of it."""

    def __init__(self, nbytes: int):
        self.nbytes = nbytes
        self._mem = cupy.cuda.alloc_pinned_memory(nbytes)
        self._bytes = np.frombuffer(self._mem, dtype=np.uint8, count=nbytes)
        self.done = cupy.cuda.Event(disable_timing=True)

    def view(self, dtype: np.dtype, n: int) -> np.ndarray:
        return self._bytes[: n * np.dtype(dtype).itemsize].view(dtype)


class _Device:
    """Streams, pinned buffers and the staging pool of the current device."""

    def __init__(self) -> None:
        self.id = cupy.cuda.Device().id
        self.compute = cupy.cuda.Stream(non_blocking=True)
        self.copy = cupy.cuda.Stream(non_blocking=True)
        # Numba launches go to the same stream as CuPy's work.
        self.nstream = cuda.external_stream(self.compute.ptr)
        self._pinned: list[_Pinned] = []
        # Host copies into the pinned buffers: a few threads, as host memory bandwidth allows.
        self.copy_threads = max(2, min(8, usable_cpus() // 2))
        self.pool = ThreadPoolExecutor(max_workers=self.copy_threads, thread_name_prefix="cudrift-stage")
        # Stages the next group of a host window while the caller's thread works on this one.
        self.stager = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cudrift-stager")

    def pinned(self) -> list[_Pinned]:
        nbytes = max(int(PIECE_BYTES), 8)  # a piece holds at least one value (plan_pieces plans one row)
        if not self._pinned or self._pinned[0].nbytes != nbytes:
            self._pinned = [_Pinned(nbytes), _Pinned(nbytes)]
        return self._pinned

    def free_bytes(self) -> int:
        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(free) + int(cupy.get_default_memory_pool().free_bytes())


_LOCK = threading.RLock()
_DEVICES: dict[int, _Device] = {}
# A forked child's copies of the parent's devices, never used nor destroyed: their streams, pinned buffers and
# staging threads belong to the parent (freeing them would call into a CUDA context the child cannot use).
_INHERITED: list[dict[int, _Device]] = []


def _forget_devices_in_child() -> None:
    """After fork, in the child: a fresh lock (another parent thread may have held this one at the fork, and
    would never release it here) and no devices (``gpu_status`` probes again, and refuses a forked child)."""
    global _LOCK, _DEVICES
    _LOCK = threading.RLock()
    _INHERITED.append(_DEVICES)
    _DEVICES = {}


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_devices_in_child)


@contextlib.contextmanager
def _section():
    """Serialize, order after the caller's stream, run on the compute stream, synchronize at the end."""
    with _LOCK:
        dev_id = cupy.cuda.Device().id
        dev = _DEVICES.get(dev_id)
        if dev is None:
            dev = _DEVICES[dev_id] = _Device()
        caller = cupy.cuda.get_current_stream()
        ready = cupy.cuda.Event(disable_timing=True)
        ready.record(caller)
        dev.compute.wait_event(ready)
        try:
            with dev.compute:
                yield dev
        finally:
            dev.compute.synchronize()
            dev.copy.synchronize()


def _arg(a: Any) -> Any:
    """A CuPy array as a Numba kernel argument, without the CUDA-array-interface stream sync.

    Ordering comes from launching on the compute stream that produced the data.
    """
    return cuda.as_cuda_array(a, sync=False)


class _Ops:
    """:class:`cudrift.backends._gpu_summary.DeviceOps` over CuPy buffers on the compute stream."""

    def __init__(self, dev: _Device):
        self.stream = dev.nstream

    def zeros(self, n: int, dtype: Any) -> cupy.ndarray:
        return cupy.zeros(n, dtype=dtype)

    def arg(self, a: Any) -> Any:
        return _arg(a)

    def to_host(self, a: cupy.ndarray) -> np.ndarray:
        return cupy.asnumpy(a)

    def from_host(self, a: np.ndarray) -> cupy.ndarray:
        # CuPy copies on its current stream: the compute stream inside _section, as the protocol asks
        return cupy.asarray(a)


def to_host(a: Any) -> np.ndarray:
    """A NumPy copy of a device array (synchronizes)."""
    with _section():
        return cupy.asnumpy(as_cupy(a))


def device_info() -> dict:
    """Name, memory, compute capability and library versions of the current device."""
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    free, total = cupy.cuda.runtime.memGetInfo()
    name = props["name"]
    return {
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "device_id": dev.id,
        "compute_capability": dev.compute_capability,
        "memory_total_bytes": int(total),
        "memory_free_bytes": int(free),
        "multiprocessors": int(props["multiProcessorCount"]),
        "driver_version": int(cupy.cuda.runtime.driverGetVersion()),
        "runtime_version": int(cupy.cuda.runtime.runtimeGetVersion()),
        "cupy": cupy.__version__,
        "numba_cuda": getattr(numba_cuda, "__version__", "?"),
    }


# ---------------------------------------------------------------- sources


def as_source(data: Any, columns=None, batch_rows: int = 1 << 20, errors: str = "raise") -> TableSource:
    """:func:`cudrift.io.as_source` that also accepts device data (read in place)."""
    if isinstance(data, TableSource):
        return data
    src = device_source(data, columns, errors)
    if src is not None:
        return src
    return _host_source(data, columns=columns, batch_rows=batch_rows, errors=errors)


def _on_device(values: Any) -> bool:
    return isinstance(values, cupy.ndarray)


def _view(src: TableSource, convert) -> TableSource:
    """The same source with every device column's values passed through ``convert`` (lazily, per load)."""
    def load(loader):
        data = loader()
        if not _on_device(data.values):
            return data
        return ColumnData(convert(data.values), data.null_count)

    def batches():
        for batch in src.iter_batches():
            yield {n: (lambda f=f: load(f)) for n, f in batch.items()}

    return TableSource(src.columns, batches, src.n_rows, src.origin)


def host_view(src: TableSource) -> TableSource:
    """``src`` with device columns copied to the host when loaded, for the host-only passes.

    The profile's recount of categories past ``max_categories`` reads
    through it; it synchronizes on every device column it loads.
    """
    return _view(src, cupy.asnumpy)


def distinct_view(src: TableSource) -> TableSource:
    """``src`` whose device columns load as their distinct values (found on the device), for kind inference.

    Inference only counts an integer column's distinct values, so only
    those cross to the host; the counts are the same as over all values.
    """
    return _view(src, lambda v: cupy.asnumpy(cupy.unique(v)))


# ---------------------------------------------------------------- numeric columns


class _Job:
    """One numeric column of one batch (or one unit of a long host column) on the device."""

    __slots__ = ("name", "col", "x", "n", "nulls", "dtype", "keep", "sorted", "offset")

    def __init__(self, name: str, col: NumericColumnProfile, x: Any, nulls: int, dtype: str, keep: list | None):
        self.name = name
        self.col = col
        self.x = x  # 1-D device values (any numeric dtype, any stride), nulls removed
        self.n = int(x.shape[0])
        self.nulls = nulls
        self.dtype = dtype
        self.keep = keep  # where the sorted finite values go, or None
        self.sorted = None
        self.offset = 0  # where ``sorted`` starts in its group's shared allocation


class _Candidates:
    """Sample candidates by index range, shared by the columns of a batch with the same finite count."""

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, start: int, m: int, key: int, below: int | None) -> tuple[np.ndarray, np.ndarray]:
        thr = None if below is None or below >= _U64 else int(below)
        cached = (start, m, key, thr)
        hit = self._cache.get(cached)
        if hit is not None:
            return hit
        pos_parts, pri_parts = [], []
        z = cupy.empty(min(_HASH_BLOCK, m), dtype=np.uint64)
        for s0 in range(0, m, _HASH_BLOCK):
            zz = z[: min(_HASH_BLOCK, m - s0)]
            # Indices wrap mod 2**64 like the hash itself.
            _PRIORITY(np.uint64((start + s0) % _U64), np.uint64(key), zz)
            if thr is None:
                pos_parts.append(cupy.arange(s0, s0 + zz.size, dtype=np.int64))
                pri_parts.append(zz.copy())
            else:
                keep = cupy.flatnonzero(zz < np.uint64(thr))
                pos_parts.append(keep + s0)
                pri_parts.append(zz[keep])
        pos = cupy.asnumpy(cupy.concatenate(pos_parts)).astype(np.int64)
        pri = cupy.asnumpy(cupy.concatenate(pri_parts))
        # In priority order (the hash is a bijection, so priorities are
        # distinct): every column of the batch then merges them into its
        # sample in linear time (a stable sort of sorted runs) instead of
        # sorting them again.
        order = np.argsort(pri, kind="stable")
        out = (pos[order], pri[order])
        self._cache[cached] = out
        return out


def _launch_group(dev: _Device, x2d: cupy.ndarray, jobs: list[_Job], *, hist_only: bool = False) -> dict:
    """Queue the fused profile pass over ``x2d`` (one column per job) and, unless ``hist_only``, each column's sort."""
    n_rows, n_cols = x2d.shape
    edge_list = [None if j.col.histogram is None else j.col.histogram.edges for j in jobs]
    # (whether the edges are linspace, for the closed-form estimate: judged on the edges themselves)
    edges, n_edges, uniform = gh.pack_edges(edge_list)
    if x2d.dtype == np.float32:
        # float32 values are binned at their own precision, on the Histogram's thresholds for them (the edges
        # rounded to the nearest float32, float16 ones' to float16: nearest_float_edges says why); float32_edges
        # of those is exact. An infinite top edge (float16's range is 65504) leaves no closed form.
        edges = gh.pack_edges([None if j.col.histogram is None else
                               j.col.histogram._thresholds(np.float16 if j.dtype == "float16" else np.float32)[0]
                               for j in jobs])[0]
        uniform &= np.isfinite(edges[np.arange(n_cols), np.maximum(n_edges - 1, 0)])
    nt = _launch.threads_per_block()
    rb = _launch.row_blocks(n_rows, n_cols, nt, row_major=rows_layout(x2d))
    out = profile_outputs(n_cols, edges.shape[1], rb, cupy.full)
    edges32 = _arg(cupy.asarray(_host.float32_edges(edges))) if x2d.dtype == np.float32 else None
    run = launch_profile(
        _arg(x2d), _arg(cupy.asarray(edges)), _arg(cupy.asarray(n_edges)), _arg(cupy.asarray(uniform)),
        **{k: _arg(v) for k, v in out.items()}, edges32=edges32, threads=nt, stream=dev.nstream,
    )
    # the first rows, where the kernel's block means take their origin (moment_shift): read back with the outputs
    first = cupy.ascontiguousarray(x2d[:SHIFT_ROWS]) if n_rows else cupy.zeros((1, n_cols), dtype=np.float64)
    flat = None
    if not hist_only:
        # One allocation for the group's sorted columns: the rank kernel then
        # reads every column of the window in place (see _packed), and one
        # launch summarizes them all (_finish_group).
        dtypes = {gh.sort_dtype(j.x.dtype) for j in jobs}
        flat = cupy.empty(sum(j.n for j in jobs), dtype=dtypes.pop()) if len(dtypes) == 1 else None
        at = 0
        for j in jobs:
            s = cupy.empty(j.n, dtype=gh.sort_dtype(j.x.dtype)) if flat is None else flat[at : at + j.n]
            j.offset = at
            at += j.n
            _SORT_KEY(j.x, s)
            s.sort()  # 1-D: CUB radix sort, NaN (now all positive) after +inf
            j.sorted = s
    return {"out": out, "jobs": jobs, "n_edges": n_edges, "flat": flat, "first": first, "run": run}


def _finish_group(dev: _Device, launched: dict, cands: _Candidates, internal: dict | None) -> None:
    """Read back one profile pass and finish its columns (summary, sample, kept values); synchronizes."""
    h = {k: cupy.asnumpy(v) for k, v in (*launched["out"].items(), ("first", launched["first"]))}
    count, mean, m2 = _host.merge_block_moments(h["blk_count"], h["blk_mean"], h["blk_m2"])
    shifts = _host.moment_shifts(h["first"])  # the block means' origin
    # the means as double-doubles (Moments.mean_lo): the shift is exact, the block means' merge small numbers
    mean, mean_lo = _moments.two_sum(mean, shifts)
    mean_lo[~np.isfinite(mean_lo)] = 0.0  # (NaN moments, retaken below, and columns of no finite value)
    ops = _Ops(dev)
    jobs = launched["jobs"]
    summaries = _summaries(launched["flat"], jobs, count, h["special"][:, 3], ops)
    for i, job in enumerate(jobs):
        col = job.col
        _, nan, posinf, neginf = (int(v) for v in h["special"][i])
        c = int(count[i])
        ne = int(launched["n_edges"][i])
        fs = job.sorted[neginf : neginf + c]
        if _host.moments_need_sorted(float(mean[i]), float(shifts[i]), float(m2[i]), c, launched["run"]):
            mean[i], m2[i], mean_lo[i] = _moments.sorted_moments(fs, cupy)  # from the median, as the CPU takes them
        summary = summaries[i]
        gh.absorb_numeric(col, gh.NumericParts(
            job.n, job.nulls, nan, posinf, neginf, c, float(mean[i]), float(m2[i]), float(h["mins"][i]),
            float(h["maxs"][i]), h["hist"][i, : ne + 1].copy() if ne else None, summary, job.dtype,
            float(mean_lo[i]),
        ))
        gh.sample_update(col.sample, c, cands, _gatherer(job.x, c))
        if job.keep is not None and c:
            job.keep.append(fs)
        elif internal is not None and col.histogram is None and c:
            internal.setdefault(job.name, []).append(fs)
        job.sorted = None


def _summaries(flat, jobs: list[_Job], count: np.ndarray, neginf: np.ndarray, ops: _Ops) -> list:
    """Each job's quantile summary of its finite sorted values (None when it has none).

    Columns sorted into one allocation, grouped by their sketches' ``k``,
    are summarized by one launch per ``k``; the others one by one.
    """
    out: list = [None] * len(jobs)
    by_k: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        if count[i] == 0:
            continue
        if flat is None:
            fs = job.sorted[int(neginf[i]) : int(neginf[i]) + int(count[i])]
            out[i] = sorted_summary(fs, job.col.quantiles.k, ops)
        else:
            by_k.setdefault(job.col.quantiles.k, []).append(i)
    for k, idx in by_k.items():
        starts = np.array([jobs[i].offset + int(neginf[i]) for i in idx], dtype=np.int64)
        found = sorted_summaries(flat, starts, count[idx].astype(np.int64), k, ops)
        for i, s in zip(idx, found):
            out[i] = s
    return out


def _gatherer(x: cupy.ndarray, n_finite: int):
    """``gather(positions)``: the finite values of ``x`` (in their order) at those positions, to the host."""
    def gather(pos: np.ndarray) -> np.ndarray:
        idx = cupy.asarray(pos)
        if n_finite != x.shape[0]:
            idx = cupy.flatnonzero(cupy.isfinite(x))[idx]
        return cupy.asnumpy(x[idx])

    return gather


def _check_numeric(name: str, values: Any) -> None:
    if values.ndim != 1:
        raise SchemaError(f"column {name!r}: expected a 1-D array, got shape {values.shape}")
    if np.dtype(values.dtype).kind not in "biuf":
        raise SchemaError(
            f"column {name!r}: expected a numeric dtype (bool, int, uint, float), got {values.dtype}"
        )


def _matrix_runs(matrix: cupy.ndarray, names: list[str], jobs: list[_Job]) -> tuple[list, list[_Job]]:
    """Jobs that are consecutive columns of the source matrix, as ``(x2d, jobs)`` runs, and the others."""
    index = {n: j for j, n in enumerate(names)}
    on_matrix = sorted((j for j in jobs if j.name in index), key=lambda j: index[j.name])
    rest = [j for j in jobs if j.name not in index]
    runs: list[tuple[cupy.ndarray, list[_Job]]] = []
    start = 0
    while start < len(on_matrix):
        stop = start + 1
        while stop < len(on_matrix) and index[on_matrix[stop].name] == index[on_matrix[stop - 1].name] + 1:
            stop += 1
        j0 = index[on_matrix[start].name]
        runs.append((matrix[:, j0 : j0 + stop - start], on_matrix[start:stop]))
        start = stop
    return runs, rest


def _device_numeric(dev, jobs: list[_Job], matrix, matrix_names, cands, internal, hist_only=False) -> None:
    """Profile device columns in place: one fused launch per run of matrix columns, one per other column.

    Columns longer than :data:`~cudrift.sketches.column.MAX_BATCH_ROWS` are
    profiled piece by piece, cut at the rows where the CPU path cuts them.
    """
    if not hist_only:
        for j in jobs:
            if j.n == 0:
                _absorb_empty(j)
    jobs = [j for j in jobs if j.n]
    limit = _column.MAX_BATCH_ROWS
    if any(j.n > limit for j in jobs):
        for a in range(0, max(j.n for j in jobs), limit):
            piece = [_Job(j.name, j.col, j.x[a : a + limit], j.nulls if a == 0 else 0, j.dtype, j.keep)
                     for j in jobs if j.n > a]
            _device_numeric(dev, piece, None if matrix is None else matrix[a : a + limit], matrix_names, cands,
                            internal, hist_only)
        return
    runs: list[tuple[cupy.ndarray, list[_Job]]] = []
    rest = jobs
    if matrix is not None:
        runs, rest = _matrix_runs(matrix, matrix_names, jobs)
    runs += [(cupy.ascontiguousarray(j.x).reshape(-1, 1), [j]) for j in rest]
    for x2d, group in runs:
        launched = _launch_group(dev, x2d, group, hist_only=hist_only)
        if hist_only:
            _finish_histograms(launched)
        else:
            _finish_group(dev, launched, cands, internal)


def _absorb_empty(job: _Job) -> None:
    """A batch without values (all null): only the column's counts change."""
    gh.absorb_numeric(job.col, gh.NumericParts(0, job.nulls, 0, 0, 0, 0, math.nan, 0.0, math.inf, -math.inf,
                                               None, None, job.dtype))


def _finish_histograms(launched: dict) -> None:
    hist = cupy.asnumpy(launched["out"]["hist"])
    for i, job in enumerate(launched["jobs"]):
        ne = int(launched["n_edges"][i])
        if ne and job.col.histogram is not None:
            job.col.histogram._counts += hist[i, : ne + 1]


def _unit_rows(dev: _Device, dtype: np.dtype) -> int:
    if MAX_UNIT_ROWS is not None:
        return int(MAX_UNIT_ROWS)
    per_value = 2 * np.dtype(dtype).itemsize + 2 * gh.sort_dtype(dtype).itemsize + 8
    return max(1, int(_UNIT_SHARE * dev.free_bytes() / per_value))


def _stage(dev: _Device, parts: list[tuple[np.ndarray, int, int]]) -> tuple[cupy.ndarray, Any]:
    """Copy each ``values[start:stop]`` into one column of a new column-major device block; returns it and its event.

    The parts have one dtype and one length. Runs on the staging thread:
    the host copies piece p+1 into one pinned buffer while the copy stream
    moves piece p out of the other. Columns of one row-major host array
    (:func:`_gpu_host.row_block`) are copied a range of rows of all of them
    at a time, each row's values read once; other columns one by one.
    """
    dtype = parts[0][0].dtype
    n = parts[0][2] - parts[0][1]
    k = len(parts)
    item = dtype.itemsize
    start = parts[0][1]
    whole_rows = all(a == start for _, a, _ in parts) and k * item <= PIECE_BYTES  # a piece holds a row
    block = gh.row_block([v for v, _, _ in parts]) if whole_rows else None
    with cupy.cuda.Device(dev.id):
        # Allocated on the copy stream: CuPy's pool hands a block freed on a
        # stream back to that stream only, and a block freed on the compute
        # stream may still be read by queued kernels (a sort's scratch, say),
        # which this copy would overwrite.
        with dev.copy:
            d = cupy.empty((n, k), dtype=dtype, order="F")
        bufs = dev.pinned()
        # (column, rows a..b): a piece of one column, or of all k columns (None) of a row block
        if block is not None:
            pieces = [(None, a, b) for a, b in gh.plan_pieces(n, k * item, PIECE_BYTES)]
        else:
            pieces = [(i, a, b) for i in range(k) for a, b in gh.plan_pieces(n, item, PIECE_BYTES)]
        for p, (i, a, b) in enumerate(pieces):
            buf = bufs[p % 2]
            buf.done.synchronize()  # the previous copy out of this buffer has finished
            if i is None:
                view = buf.view(dtype, k * (b - a)).reshape(k, b - a)
                gh.stage_block(view, block[start + a : start + b], dev.pool, parts=dev.copy_threads)
                rows = list(enumerate(view))  # device column j, its rows a..b
            else:
                view = buf.view(dtype, b - a)
                values, first, _ = parts[i]  # (each part from its own first row, as before row blocks)
                gh.stage_copy(view, values[first + a : first + b], dev.pool, parts=dev.copy_threads)
                rows = [(i, view)]
            for j, v in rows:
                cupy.cuda.runtime.memcpyAsync(d.data.ptr + (j * n + a) * item, v.ctypes.data, v.nbytes,
                                              cupy.cuda.runtime.memcpyHostToDevice, dev.copy.ptr)
            buf.done.record(dev.copy)
        ready = cupy.cuda.Event(disable_timing=True)
        ready.record(dev.copy)
    return d, ready


def _device_ready(v: np.ndarray) -> np.ndarray:
    """A host column in a dtype the kernels take: float16 as float32, a big-endian (non-native) one in native
    byte order (Numba and CuPy refuse ``>f8``; a NumPy file or buffer written on another machine has it)."""
    if v.dtype == np.float16:
        return v.astype(np.float32)
    if not v.dtype.isnative:
        return v.astype(v.dtype.newbyteorder("="))
    return v


def _host_numeric(dev, jobs: list[tuple[str, Any, np.ndarray, int, str, list | None]], cands, internal,
                  hist_only: bool = False) -> None:
    """Stream host columns group by group: the staging thread copies group g+1 while group g is worked on.

    Whole columns of one dtype and length are staged together into one
    column-major block (:data:`GROUP_BYTES` at a time) and profiled by one
    launch; a column longer than a unit is cut into units, one at a time.
    """
    cols = [(n, c, _device_ready(v), nl, dt, kp) for n, c, v, nl, dt, kp in jobs]
    if not cols:
        return
    lengths = [c[2].shape[0] for c in cols]
    dtypes = [c[2].dtype for c in cols]
    unit_rows = {dt: _unit_rows(dev, dt) for dt in set(dtypes)}  # one free-memory query per dtype
    units = []
    for i, (n, dt) in enumerate(zip(lengths, dtypes)):
        units += [(i, a, b) for _, a, b in gh.plan_units([n], unit_rows[dt], _column.MAX_BATCH_ROWS)]
    # a C-ordered matrix's columns grouped by whole cache lines (gh.row_neighbours), each line read once
    groups = gh.group_units(units, lengths, dtypes, min(unit_rows.values()), GROUP_BYTES,
                            gh.row_neighbours([c[2] for c in cols]))

    def stage(g: int):
        parts = [(cols[i][2], a, b) for i, a, b in groups[g]]
        return _stage(dev, parts) if parts[0][2] > parts[0][1] else None

    pending = dev.stager.submit(stage, 0)
    try:
        for g, group in enumerate(groups):
            staged = pending.result()
            pending = dev.stager.submit(stage, g + 1) if g + 1 < len(groups) else None
            group_jobs = []
            for k, (i, a, b) in enumerate(group):
                name, col, _, nulls, dtype, keep = cols[i]
                x = staged[0][:, k] if staged is not None else cupy.empty(0, dtype=dtypes[i])
                group_jobs.append(_Job(name, col, x, nulls if a == 0 else 0, dtype, keep))
            if staged is None:  # an empty column: only its nulls count
                if not hist_only:
                    _absorb_empty(group_jobs[0])
                continue
            dev.compute.wait_event(staged[1])
            launched = _launch_group(dev, staged[0], group_jobs, hist_only=hist_only)
            if hist_only:
                _finish_histograms(launched)
            else:
                _finish_group(dev, launched, cands, internal)
            # Finishing synchronized the compute stream, so nothing queued
            # still reads this block: dropping it now hands it back to the
            # copy stream's pool for a later group (whose copy is not ordered
            # after the compute stream) and keeps the working set at what
            # _unit_rows budgets (this block, the next one, one sorted copy).
            staged = group_jobs = launched = None
    finally:
        if pending is not None and not pending.cancel():
            concurrent.futures.wait([pending])  # never leave a copy running past the call


# ---------------------------------------------------------------- categorical columns


def _device_categorical(dev: _Device, name: str, col: CategoricalColumnProfile, x: cupy.ndarray, nulls: int) -> None:
    """Count integer or boolean keys on the device and fold them into the profile."""
    n = int(x.shape[0])
    kind = np.dtype(x.dtype).kind
    if kind not in "biu":
        raise SchemaError(f"column {name!r}: category keys on the device must be int or bool, got {x.dtype}")
    if n == 0:
        gh.absorb_categorical(col, None, [], np.zeros(0, dtype=np.int64), 0, nulls, name)
        return
    if kind == "b":
        key_type, codes, offset, span = "bool", x.astype(np.int8), 0, 2
    else:
        key_type = "int"
        # in the keys' own dtype: uint64 keys past 2**63 would wrap in int64
        lo, hi = (int(v) for v in cupy.asnumpy(cupy.stack([x.min(), x.max()])))
        fits = hi - lo < _MAX_CODE_SPAN and hi <= np.iinfo(np.int64).max  # codes are formed in int64
        offset = gh.int_code_offset(lo, hi, _MAX_CODE_SPAN) if fits else None
        if offset is None:
            keys, counts = cupy.unique(x, return_counts=True)
            gh.absorb_categorical(col, key_type, cupy.asnumpy(keys).tolist(), cupy.asnumpy(counts).astype(np.int64),
                                  n, nulls, name)
            return
        codes, span = (x if offset == 0 else x.astype(np.int64) - offset), hi - offset + 1
    counts = cupy.zeros((1, span), dtype=np.int64)
    other = cupy.zeros((1, 2), dtype=np.int64)
    launch_categorical(_arg(cupy.ascontiguousarray(codes).reshape(-1, 1)), _arg(cupy.asarray([span], dtype=np.int64)),
                       _arg(counts), _arg(other), stream=dev.nstream)
    c = cupy.asnumpy(counts)[0]
    present = np.flatnonzero(c)
    keys = [bool(k) for k in present] if key_type == "bool" else (present + offset).tolist()
    gh.absorb_categorical(col, key_type, keys, c[present], n, nulls, name)


def _host_categorical(col: CategoricalColumnProfile, values: Any, nulls: int, name: str) -> None:
    """A host batch of a categorical column, prepared as the CPU profile pass prepares it."""
    values, nulls = _label_batch(name, ColumnData(values, nulls))
    col.update(values, null_count=nulls, name=name)


# ---------------------------------------------------------------- the profile pass


# Sorted columns kept by the first pass for the reference's histogram pass, by profile.
_FOR_EDGES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def release_for_edges(prof: Any) -> None:
    """Drop the sorted device columns kept for ``prof``'s edges pass (:func:`count_histograms`) when none follows:
    a window profiled ``like=`` a reference whose numeric columns all have the reference's edges, or are new to
    it (they get none), or hold no finite value. Held until then, they would live as long as the profile."""
    _FOR_EDGES.pop(prof, None)


def _keep_fits(dev: _Device, src: TableSource, prof, names: list[str], keep: dict | None,
               required: bool = False) -> tuple[bool, bool]:
    """Whether the requested sorted columns fit the device, and whether the reference's do for its histogram pass.

    Sorted columns are held for the histogram pass only while profiling a
    reference (no column has edges yet), the one case where that pass
    certainly follows. With ``required``, requested columns that do not fit
    raise ``ValueError`` (bytes needed and allowed) instead.
    """
    numeric = [n for n in names if isinstance(prof.columns[n], NumericColumnProfile)]
    reference = all(prof.columns[n].histogram is None for n in numeric)
    if src.n_rows is None:
        return keep is not None, False
    budget = _KEEP_SHARE * dev.free_bytes()
    need_keep = sum(8 * src.n_rows for n in numeric if keep is not None and n in keep)
    need_edges = sum(8 * src.n_rows for n in numeric
                     if prof.columns[n].histogram is None and not (keep is not None and n in keep))
    if required and keep and need_keep > budget:
        raise ValueError(
            f"exact tests need the numeric columns of {src.origin} kept sorted on the device: {need_keep:,} bytes, "
            f"over the {int(budget):,} bytes they may take ({_KEEP_SHARE:.0%} of the free device memory); "
            f"compare this window with backend='cpu', in smaller windows, or with exact='auto' (tests from sketches)"
        )
    return need_keep <= budget, reference and need_keep + need_edges <= budget


def consume(prof, src: TableSource, names: list[str], errors: str = "raise",
            keep: dict[str, list] | None = None, keep_required: bool = False) -> None:
    """Feed every batch of ``src`` into the profile's columns on the device (the GPU ``_consume``).

    Same contract as ``cudrift.sketches.profile._consume``: columns in
    ``keep`` collect their sorted finite values (here one sorted CuPy array
    per column; ``keep`` is emptied when they would not fit the device, or
    ``ValueError`` raised with ``keep_required``), and with ``errors="report"`` a column that cannot be read is dropped and
    the reason recorded in ``prof.errors``. Synchronizes the device.
    """
    with _section() as dev:
        keep_ok, edges_ok = _keep_fits(dev, src, prof, names, keep, keep_required)
        if keep is not None and not keep_ok:
            keep.clear()  # the caller then falls back to the sketches
        internal: dict[str, list] | None = {} if edges_ok else None
        matrix = getattr(src, "matrix", None)
        matrix_names = [c.name for c in src.columns] if matrix is not None else []
        rows = 0
        with worker_pool(len(names)) as pool:  # (None under thread_limit(1): all on this thread)
            for batch in src.iter_batches():
                failed: dict[str, str] = {}
                lens = _profile_batch(dev, prof, batch, names, keep, internal, matrix, matrix_names, pool,
                                      errors, failed)
                for n, err in failed.items():
                    prof.errors[n] = err
                    prof.columns.pop(n, None)
                    prof.kinds.pop(n, None)
                    prof.dtypes.pop(n, None)
                    if keep is not None:
                        keep.pop(n, None)
                names = [n for n in names if n not in failed]
                if len(set(lens.values())) > 1:
                    raise SchemaError(f"columns have different lengths in one batch: {lens}")
                rows += next(iter(lens.values()), 0)
        prof.n_rows += rows
        for store in (keep, internal):
            for parts in (store or {}).values():
                if len(parts) > 1:
                    merged = cupy.concatenate(parts)
                    merged.sort()
                    parts[:] = [merged]

        if internal:
            _FOR_EDGES[prof] = {n: parts[0] for n, parts in internal.items() if parts}


def pack_columns(columns: dict[str, Any], dtype: Any = None) -> dict[str, Any]:
    """Device columns moved into one allocation per dtype (as views of it), converted to ``dtype`` if given.

    Host arrays and columns that already share one allocation stay as they
    are. The batched rank kernel then reads every column of a window in
    place (see :func:`_packed`): one copy here instead of one launch per
    column later.
    """
    out = dict(columns)
    groups: dict[str, list[str]] = {}
    for n, a in columns.items():
        if _on_device(a) and a.size:
            groups.setdefault(np.dtype(dtype or a.dtype).str, []).append(n)
    for key, names in groups.items():
        arrays = [columns[n] for n in names]
        if all(a.dtype.str == key for a in arrays) and len({id(a.data.mem) for a in arrays}) == 1:
            continue
        try:
            with _section():
                # filled column by column (converting as it copies): the
                # peak is the columns plus one packed copy
                flat = cupy.empty(sum(a.size for a in arrays), dtype=key)
                at = 0
                for n, a in zip(names, arrays):
                    flat[at : at + a.size] = a
                    at += a.size
        except cupy.cuda.memory.OutOfMemoryError:
            # no room for the packed copy: keep the columns where they are (the rank
            # kernel then takes them one launch per column) and convert them one by one
            flat = None
            cupy.get_default_memory_pool().free_all_blocks()
        at = 0
        for n, a in zip(names, arrays):
            if flat is None:
                try:
                    out[n] = a if a.dtype.str == key else a.astype(key)
                except cupy.cuda.memory.OutOfMemoryError:
                    out[n] = a  # the rank kernel reads float32 as well
            else:
                out[n] = flat[at : at + a.size]
            at += a.size
    return out


def _profile_batch(dev, prof, batch, names, keep, internal, matrix, matrix_names, pool, errors, failed) -> dict:
    """One batch: host categories on threads, device columns in place, host numbers streamed; returns lengths."""
    lens: dict[str, int] = {}

    def guard(n: str, fn, *args):
        try:
            return fn(*args)
        except SchemaError as exc:
            if errors == "raise":
                raise
            failed[n] = str(exc)
            return None

    host_futures = {}
    dev_jobs: list[_Job] = []
    host_jobs: list[tuple] = []
    dev_cats: list[tuple] = []
    for n in names:
        data = guard(n, batch[n])
        if data is None:
            continue
        col = prof.columns[n]
        values = data.values
        if isinstance(col, NumericColumnProfile):
            guard(n, _check_numeric, n, values)
            if n in failed:
                continue
            kept = keep.get(n) if keep is not None else None
            dtype = col.dtype or str(values.dtype)
            if _on_device(values):
                dev_jobs.append(_Job(n, col, values, data.null_count, dtype, kept))
            else:
                host_jobs.append((n, col, np.asarray(values), data.null_count, dtype, kept))
        elif _on_device(values) and np.dtype(values.dtype).kind in "biu":
            dev_cats.append((n, col, values, data.null_count))
        else:
            if _on_device(values):
                values = cupy.asnumpy(values)  # float keys of an integer-category column: read on the host
            host_futures[n] = submit(pool, _host_categorical, col, values, data.null_count, n)
        lens[n] = len(data)
    cands = _Candidates()
    _device_numeric(dev, dev_jobs, matrix, matrix_names, cands, internal)
    _host_numeric(dev, host_jobs, cands, internal)
    for n, col, x, nulls in dev_cats:
        guard(n, _device_categorical, dev, n, col, x, nulls)
    for n, f in host_futures.items():
        guard(n, f.result)
    for n in failed:
        lens.pop(n, None)
    return lens


def histogram_search(h, s: cupy.ndarray, precision: Any = None) -> list:
    """The device searches that count sorted device column ``s`` into ``h`` (its thresholds for ``precision``,
    else for ``s``'s dtype): ``#{x < left[i]}`` then ``#{x <= last}``, for
    :func:`~cudrift.backends._gpu_host.add_histogram_bounds` once read back."""
    left, last = gh.histogram_thresholds(h, s.dtype, precision=precision)
    return [cupy.searchsorted(s, cupy.asarray(left, dtype=s.dtype), side="left"),
            cupy.searchsorted(s, cupy.asarray([last], dtype=s.dtype), side="right")]


def count_histograms(prof, src: TableSource, names: list[str], kept: dict | None = None) -> None:
    """Count the reference's numeric columns on their new edges (the GPU ``_count_histograms``).

    Columns whose sorted values are on the device (kept for the detector,
    or by the first pass when they fitted) are counted by binary search of
    the edges; the others by reading the source again with the profile
    kernel. Synchronizes the device.
    """
    kept = kept or {}
    held = _FOR_EDGES.pop(prof, {})
    with _section() as dev:
        rest, searched, found = [], [], []
        for n in names:
            s = kept.get(n)
            if s is None or not _on_device(s):
                s = held.get(n)
            if s is None:
                rest.append(n)
                continue
            h = prof.columns[n].histogram
            # read back with every other column's at once
            # (at the precision the column's windows are binned at: a float32 column is kept sorted as float64)
            found += histogram_search(h, s, precision=column_precision(prof.columns[n].dtype))
            searched.append((h, int(s.shape[0]), h.edges.size - 1))
        if searched:
            counts = cupy.asnumpy(cupy.concatenate(found))
            at = 0
            for h, size, k in searched:
                gh.add_histogram_bounds(h, counts[at : at + k], int(counts[at + k]), size)
                at += k + 1
        if not rest:
            return
        matrix = getattr(src, "matrix", None)
        matrix_names = [c.name for c in src.columns] if matrix is not None else []
        for batch in src.iter_batches():
            dev_jobs, host_jobs = [], []
            for n in rest:
                data = batch[n]()
                col = prof.columns[n]
                if _on_device(data.values):
                    dev_jobs.append(_Job(n, col, data.values, 0, col.dtype, None))
                else:
                    host_jobs.append((n, col, np.asarray(data.values), 0, col.dtype, None))
            _device_numeric(dev, dev_jobs, matrix, matrix_names, None, None, hist_only=True)
            _host_numeric(dev, host_jobs, None, None, hist_only=True)


# ---------------------------------------------------------------- detector: sorted columns


def distinct_sorted(v: cupy.ndarray, cap: int) -> int:
    """Distinct values of a sorted device array, counted up to ``cap`` (synchronizes)."""
    if v.size == 0:
        return 0
    with _section():
        return int(min(cap, int(cupy.count_nonzero(v[1:] != v[:-1])) + 1))


def _run_starts(v: cupy.ndarray) -> cupy.ndarray:
    """Where each run of equal values of a sorted, non-empty device array starts (device indices)."""
    return cupy.flatnonzero(cupy.concatenate((cupy.ones(1, dtype=bool), v[1:] != v[:-1])))


def _distinct_values(v: cupy.ndarray) -> np.ndarray:
    """The distinct values of a sorted device array, on the host."""
    if v.size == 0:
        return np.zeros(0, dtype=v.dtype)
    return cupy.asnumpy(v[_run_starts(v)])


def n_unique_sorted(ref: cupy.ndarray, cur: cupy.ndarray, cap: int, rounding=None) -> int:
    """Distinct values over two sorted device arrays, counted up to ``cap`` (as the CPU ``n_unique``).

    ``rounding`` (a NumPy float dtype, or None): tell values apart at that precision.
    """
    def distinct(x):
        """x's distinct values at the compared precision, on the host; None past ``cap``."""
        if distinct_sorted(x, cap) >= cap:
            # at full precision: rounded, the values may be fewer (the CPU path counts them rounded; a reference
            # of 0.1, 0.2, 0.3 plus noise below float32's step is three values to a float32 window)
            if rounding is None:
                return None
            x = _rounded_sorted(x, rounding)
            if distinct_sorted(x, cap) >= cap:
                return None
        with _section():
            return _rounded_sorted(_distinct_values(x).astype(np.float64), rounding)

    r = distinct(ref)
    c = None if r is None else distinct(cur)
    return cap if c is None else int(min(cap, np.union1d(r, c).size))


def _rounded_sorted(v, rounding):
    """A sorted float array (device or host) rounded to ``rounding`` (None: as it is) as the CPU path rounds
    it (:func:`cudrift.detect._compute.sorted_at_precision`: float64, values past the type's range keeping their
    own rather than merging into inf); rounding is monotonic, so it stays sorted."""
    if rounding is None or v.dtype.kind != "f" or np.dtype(v.dtype).itemsize <= np.dtype(rounding).itemsize:
        return v
    from cudrift.detect._compute import sorted_at_precision

    return sorted_at_precision(v, rounding)


def distinct_with_counts_sorted(v: cupy.ndarray, cap: int, rounding=None) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct values of a sorted device array (float64, on the host) and their counts; None past ``cap``.

    As ``CdfBounds.from_sorted`` gives them on the host, for the few-values count tests;
    ``rounding`` (a NumPy float dtype or None): values told apart at that precision.
    """
    v = _rounded_sorted(v, rounding)
    if distinct_sorted(v, cap + 1) > cap:
        return None
    if v.size == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
    with _section():
        start = _run_starts(v)
        values = cupy.asnumpy(v[start]).astype(np.float64)
        start = cupy.asnumpy(start).astype(np.int64)
    return values, np.diff(np.r_[start, v.size]).astype(np.int64)


def rounded_together(columns: list[tuple[cupy.ndarray, Any]]) -> list[cupy.ndarray]:
    """Sorted device columns, each rounded to its float type (or None: left as it is) as
    :func:`cudrift.detect._compute.sorted_at_precision` rounds it, the rounded ones written into one float64
    allocation, as views of it: one rank launch then reads them together (separate copies took a launch each).
    The peak is that allocation and one column's rounding; where it does not fit, each is rounded alone."""
    from cudrift.detect._compute import sorted_at_precision

    out = [x for x, _ in columns]
    todo = [i for i, (x, r) in enumerate(columns) if r is not None and x.dtype != r]
    if not todo:
        return out
    with _section():
        try:
            flat = cupy.empty(sum(int(columns[i][0].size) for i in todo), dtype=np.float64) if len(todo) > 1 \
                else None
        except cupy.cuda.memory.OutOfMemoryError:
            flat = None
            cupy.get_default_memory_pool().free_all_blocks()
        at = 0
        for i in todo:
            rounded = sorted_at_precision(*columns[i])
            if flat is None:
                out[i] = rounded
                continue
            flat[at : at + rounded.size] = rounded
            out[i] = flat[at : at + rounded.size]
            at += rounded.size
    return out


def _packed(arrays: list[cupy.ndarray]) -> tuple[cupy.ndarray, np.ndarray]:
    """One 1-D device array holding every array of ``arrays``, and their ``(start, stop)`` bounds in it.

    Arrays carved from one allocation (the sorted columns of one profile
    pass are) are read where they are, in any order; others are copied
    together. Bounds come as ``(2 * len(arrays),)`` int64, as
    :func:`cudrift.kernels.rank.launch_rank_many` takes them.
    """
    first = arrays[0]
    dtype = first.dtype
    item = dtype.itemsize
    lens = np.array([int(a.size) for a in arrays], dtype=np.int64)
    bounds = np.empty(2 * len(arrays), dtype=np.int64)
    same = all(a.dtype == dtype and a.ndim == 1 and a.flags.c_contiguous and a.data.mem is first.data.mem
               for a in arrays)
    if same:
        ptrs = np.array([a.data.ptr for a in arrays], dtype=np.int64)
        lo = int(ptrs.min())
        hi = int((ptrs + lens * item).max())
        if np.all((ptrs - lo) % item == 0):
            mem = first.data.mem
            span = cupy.ndarray(((hi - lo) // item,), dtype=dtype, memptr=cupy.cuda.MemoryPointer(mem, lo - mem.ptr))
            bounds[0::2] = (ptrs - lo) // item
            bounds[1::2] = bounds[0::2] + lens
            return span, bounds
    common = np.result_type(*[a.dtype for a in arrays])
    flat = cupy.concatenate([a.astype(common, copy=False) for a in arrays])
    bounds[0::2] = np.cumsum(lens) - lens
    bounds[1::2] = np.cumsum(lens)
    return flat, bounds


def rank_statistics_many(pairs: list[tuple[cupy.ndarray, cupy.ndarray]],
                         want: int = _host.WANT_ALL) -> "list[_host.RankStatistics]":
    """Exact two-sample rank statistics of many (reference, current) pairs of sorted finite device columns.

    One launch of the splits kernel and one of the rank kernel serve every
    pair (a row of blocks per pair), and one read-back. Every array must be
    non-empty. ``want`` (:data:`cudrift.kernels._host.WANT_ALL` or a union
    of its bits, see :func:`cudrift.backends._gpu_host.rank_want`) says
    which statistics to compute, the others are NaN (the statistics and
    KS p-values that a batch of rank tests needs: :func:`rank_tests_many`).
    Synchronizes the device. Raises ``ValueError`` for a pair whose sizes'
    product reaches 2**63, past the kernel's exact int64 keys.
    """
    if not pairs:
        return []
    for a, b in pairs:
        # the kernel's exact integer keys (n_b * F_a - n_a * F_b) reach len(a) * len(b) in magnitude
        if int(a.shape[0]) * int(b.shape[0]) >= 2**63:
            raise ValueError(
                f"exact rank statistics of {a.shape[0]:,} against {b.shape[0]:,} values: their product passes "
                "2**63, the range of the rank kernel's exact int64 keys; compare smaller windows, or with "
                "exact='never' (tests from the sketches)")
    # One launch per group of pairs whose columns share an allocation and a
    # dtype on each side (one group for a window profiled in one pass).
    groups: dict[tuple, list[int]] = {}
    for i, (a, b) in enumerate(pairs):
        groups.setdefault((a.dtype.str, id(a.data.mem), b.dtype.str, id(b.data.mem)), []).append(i)
    out: list = [None] * len(pairs)
    for idx in groups.values():
        # a row of blocks per pair: gridDim.y caps a launch at 65,535 pairs
        for c0 in range(0, len(idx), _MAX_PAIRS):
            chunk = idx[c0 : c0 + _MAX_PAIRS]
            try:
                stats = _rank_group([pairs[i] for i in chunk], want)
            except cupy.cuda.memory.OutOfMemoryError:
                # no room to pack the columns together: one launch per pair, each read in place
                cupy.get_default_memory_pool().free_all_blocks()
                stats = [_rank_group([pairs[i]], want)[0] for i in chunk]
            for i, r in zip(chunk, stats):
                out[i] = r
    return out


def rank_tests_many(pairs: list[tuple[cupy.ndarray, cupy.ndarray]], tests: list[str],
                    want: int | None = None) -> list[tuple[_host.RankStatistics, float | None]]:
    """What the rank tests of many pairs of sorted finite device columns need, from one batched launch.

    Parameters
    ----------
    pairs
        ``(reference, current)`` sorted, finite, non-empty device columns.
    tests
        Each pair's test (rank tests: :data:`cudrift.backends._gpu_host.RANK_TESTS`).
    want
        The rank kernel's ``want`` bits; default the union of what the
        tests need (:func:`cudrift.backends._gpu_host.rank_want`). A
        superset (e.g. :data:`cudrift.kernels._host.WANT_ALL`) computes
        more than the tests read.

    Returns
    -------
    list of tuple
        Per pair, ``(stats, ks_pvalue)``: its
        :func:`rank_statistics_many` result and, for a ``"ks"`` test whose
        p-value is asymptotic, that p-value (all of them from one vectorized
        call, :func:`cudrift.backends._gpu_host.ks_pvalues`), else None;
        what :func:`run_sorted_test` takes as ``stats`` and ``ks_pvalue``.
        Synchronizes the device.
    """
    stats = rank_statistics_many(pairs, gh.rank_want(tests) if want is None else want)
    p = gh.ks_pvalues(stats, [int(a.size) for a, _ in pairs], [int(b.size) for _, b in pairs], tests)
    return list(zip(stats, p))


def _rank_group(pairs: list[tuple[cupy.ndarray, cupy.ndarray]], want: int) -> "list[_host.RankStatistics]":
    with _section() as dev:
        nt = _launch.threads_per_block()
        per = _launch.rank_items()
        a_all, a_bounds = _packed([p[0] for p in pairs])
        b_all, b_bounds = _packed([p[1] for p in pairs])
        a_lens = a_bounds[1::2] - a_bounds[0::2]
        b_lens = b_bounds[1::2] - b_bounds[0::2]
        n = len(pairs)
        merged = (a_lens + b_lens).tolist()
        s_host = split_offsets(merged, nt, per)
        splits = cupy.empty(int(s_host[-1]), dtype=np.int64)
        # A row of blocks per pair, the whole grid aiming at twice the device's fill.
        blocks = max(1, min(_launch.rank_blocks(max(merged), nt, per), -(-2 * _launch.target_blocks() // n)))
        fpart = cupy.zeros((n, blocks, N_FLOAT_PARTIALS))
        ipart = cupy.zeros((n, blocks, N_INT_PARTIALS), dtype=np.int64)
        launch_rank_many(_arg(a_all), _arg(cupy.asarray(a_bounds)), _arg(b_all), _arg(cupy.asarray(b_bounds)),
                         _arg(fpart), _arg(ipart), _arg(splits), _arg(cupy.asarray(s_host)), threads=nt, items=per,
                         want=want, stream=dev.nstream)
        fp, ip = cupy.asnumpy(fpart), cupy.asnumpy(ipart)
    return [_host.rank_statistics(fp[c], ip[c], int(a_lens[c]), int(b_lens[c]), want) for c in range(n)]


def rank_statistics(ref: cupy.ndarray, cur: cupy.ndarray, want: int = _host.WANT_ALL) -> "_host.RankStatistics":
    """Exact two-sample rank statistics of two sorted, finite, non-empty device arrays (synchronizes).

    ``want`` as :func:`rank_statistics_many`.
    """
    return rank_statistics_many([(ref, cur)], want)[0]


def _constant(v: cupy.ndarray) -> bool:
    """Whether a sorted non-empty device array holds one value."""
    with _section():
        ends = cupy.asnumpy(cupy.stack([v[0], v[-1]]))
    return bool(ends[0] == ends[1])


def _ks_location(ref: cupy.ndarray, cur: cupy.ndarray, counts: tuple) -> float:
    """The pooled value at which the KS extreme with these counts is attained: ``max(ref[A-1], cur[B-1])``.

    Where several points attain the same extreme, this is the one the
    kernel kept, which may differ from the one SciPy's argmax reports.
    """
    a, b = (int(c) for c in counts)
    if a == 0 and b == 0:
        return math.nan
    with _section():  # one read-back for both values
        ends = cupy.asnumpy(cupy.stack([ref[max(a, 1) - 1].astype(np.float64), cur[max(b, 1) - 1].astype(np.float64)]))
    return float(max(ends[0] if a else -math.inf, ends[1] if b else -math.inf))


def _pooled_distinct(ref: cupy.ndarray, cur: cupy.ndarray) -> bool:
    with _section():
        ends = cupy.asnumpy(cupy.stack([ref[0], ref[-1], cur[0], cur[-1]]).astype(np.float64))
    return bool(min(ends[0], ends[2]) < max(ends[1], ends[3]))


def run_sorted_test(test: str, ref: cupy.ndarray, cur: cupy.ndarray, reference_std: float,
                    stats: "_host.RankStatistics | None" = None, ks_pvalue: float | None = None) -> TestResult:
    """A registered sample test on two sorted finite device columns, as ``spec.func_sorted`` returns it.

    ``reference_std`` must be exactly 0.0 for a constant reference
    (``Moments.std`` is; :func:`sample_test` checks the sorted ends).
    Rank tests take their statistic from :func:`rank_statistics` (or from
    ``stats`` and ``ks_pvalue``, this pair's result of
    :func:`rank_tests_many`); where the CPU function needs the samples
    themselves (exact small-sample p-values, Mann–Whitney, Epps–Singleton)
    both columns are copied to the host and the CPU function runs.
    Synchronizes the device.
    """
    spec = TESTS[test]
    if test == "wasserstein_normalized" and ref.size and not _usable_std(reference_std, lambda: _constant(ref)):
        # squares overflowed, subnormal (values near 1e-161) or underflowed (1e-200): the CPU function
        # rescales the values themselves
        reference_std = math.nan
    if test in gh.RANK_TESTS and ref.size and cur.size:
        distinct = _pooled_distinct(ref, cur) if test == "anderson" else True
        stats = stats if stats is not None else rank_statistics(ref, cur, gh.RANK_WANT[test])
        res = gh.finish_rank_test(test, stats, int(ref.size), int(cur.size),
                                  reference_std=reference_std, distinct=distinct, ks_pvalue=ks_pvalue)
        if res is not None:
            if test == "ks":
                res.details["statistic_location"] = _ks_location(ref, cur, stats.ks_counts)
            return res
    a = to_host(ref).astype(np.float64, copy=False)
    b = to_host(cur).astype(np.float64, copy=False)
    if test == "wasserstein_normalized":
        return spec.func_sorted(a, b, reference_std=reference_std)
    return spec.func_sorted(a, b)


# ---------------------------------------------------------------- raw samples (cudrift.stats with backend="gpu")


def _finite_sorted(x: Any, name: str) -> tuple[cupy.ndarray, int]:
    """A sorted float64 device copy of a sample's finite values, and how many NaN/inf were removed.

    Host samples go through :func:`cudrift.stats._validation.as_sample` (its
    checks and messages; only finite values cross to the device); device
    samples get the same checks there.
    """
    from cudrift.stats._backend import is_device_array
    from cudrift.stats._validation import as_sample, empty_sample, one_dimensional

    if not is_device_array(x):
        host, n_dropped = as_sample(x, name)
        vals = cupy.asarray(host)
    else:
        arr = as_cupy(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
        vals = one_dimensional(arr, name).astype(np.float64, copy=True)  # never sort the caller's array
        finite = cupy.isfinite(vals)
        n_dropped = int(vals.size - int(cupy.count_nonzero(finite)))
        if n_dropped:
            vals = vals[finite]
        if vals.size == 0:
            raise empty_sample(name, n_dropped)
    vals.sort()
    return vals, n_dropped


def sample_test(test: str, reference: Any, current: Any) -> TestResult:
    """A registered two-sample test on raw samples (host or device) with the sorting and rank statistics on the device.

    The result is the CPU function's with its default options (statistic
    within rounding, the same p-value function), ``details`` counting the
    NaN/inf removed from each sample. Synchronizes the device.
    """
    import dataclasses

    with _section():
        a, da = _finite_sorted(reference, "reference")
        b, db = _finite_sorted(current, "current")
        std = None
        if test == "wasserstein_normalized":
            # as the CPU's _std: exactly 0 for a constant sample (sorted: ends equal), from the smallest value
            std = 0.0 if _constant(a) else float((a - a[0]).std())
    res = run_sorted_test(test, a, b, std if std is not None else math.nan)
    return dataclasses.replace(res, details={**res.details, **dropped_details((da, db))})


# ---------------------------------------------------------------- MMD


def mmd(reference: Any, current: Any, bandwidth: float | None = None, n_permutations: int = 100,
        seed: int = 0) -> TestResult:
    """:func:`cudrift.stats.mmd` with the kernel tiles on the device; same arguments, same result.

    The pooled sample, its centering, the bandwidth (median heuristic) and
    the permutations are prepared on the host exactly as the CPU function
    prepares them; :func:`cudrift.kernels.mmd.launch_mmd` evaluates every
    labeling in one pass over the kernel tiles. Synchronizes the device.
    """
    inp = _mv.mmd_inputs(reference, current, bandwidth, n_permutations, seed)
    k = inp.labels.shape[1]
    with _section() as dev:
        zd, ld = cupy.asarray(inp.z), cupy.asarray(inp.labels)
        row_sums = cupy.zeros(inp.n + inp.m)
        quad = cupy.zeros(k)
        out = cupy.zeros(k)
        launch_mmd(_arg(zd), _arg(ld), inp.n, -1.0 / (2.0 * inp.sigma * inp.sigma), _arg(row_sums), _arg(quad),
                   _arg(out), stream=dev.nstream)
        mmd2 = cupy.asnumpy(out)
    return _mv.mmd_result(mmd2, inp)


# ---------------------------------------------------------------- warm-up

_WARM = threading.Event()


def warm_up() -> float:
    """Compile every kernel and CuPy kernel the GPU path uses, once per process; returns the seconds spent.

    Numba compiles a kernel per argument type on first use (about a second
    each), and CuPy compiles its elementwise kernels on first use; a server
    calls this at startup so that no request pays for it. Runs a tiny
    profile (float32 and float64 columns, a 2-D array, integer and boolean
    categories, a host and a device window) and a detector comparison with
    every rank test and MMD. Synchronizes the device.
    """
    if _WARM.is_set():
        return 0.0
    from cudrift.detect.detector import DriftDetector
    from cudrift.sketches.profile import profile

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    # Above 10,000 values per side KS and Cramér–von Mises take the device path.
    n = 12_000
    host = {
        "f32": rng.normal(size=n).astype(np.float32),
        "f64": rng.normal(size=n),
        "ints": rng.integers(0, 5, size=n),
        "flag": rng.random(size=n) < 0.5,
    }
    device = {k: cupy.asarray(v) for k, v in host.items()}
    ref = profile(host, backend="gpu")
    profile(device, like=ref, backend="gpu")
    for dtype in (np.float32, np.float64):
        mat = cupy.asarray(rng.normal(size=(n, 3)).astype(dtype))
        profile(mat, columns=["a", "b", "c"], backend="gpu")
        profile(cupy.asfortranarray(mat), columns=["a", "b", "c"], backend="gpu")
        profile(mat[:, :2], columns=["a", "b"], backend="gpu")
    for test in ("ks", "wasserstein_normalized", "energy_distance", "cramervonmises", "anderson"):
        det = DriftDetector(host, backend="gpu", policy=test)
        det.compare(host)
        det.compare(device)
    mmd(host["f64"][:100], host["f64"][100:200], n_permutations=2)
    cupy.cuda.Device().synchronize()
    _WARM.set()
    return time.perf_counter() - t0
