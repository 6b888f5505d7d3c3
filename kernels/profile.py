"""One fused profiling pass over a (rows x columns) chunk: every numeric sketch input from one read.

Per column the pass counts nulls, NaN, +inf and -inf, takes the minimum and
maximum of the finite values, counts them into that column's histogram
(``Histogram.counts`` layout: underflow, bins, overflow; the last bin closed
as in NumPy) and writes per-block partial moments (count, mean, M2 in
float64) that the caller merges with Chan's formula
(:func:`cudrift.kernels._host.merge_block_moments`).

The chunk may be row-major or column-major (or any strides): Numba indexes
through the array's strides. Blocks of one row range are launched next to
each other for all columns (``blockIdx.x`` is the column), so on a row-major
chunk the columns that share a cache line are read by blocks that run
together and the line comes from DRAM once.
"""

from __future__ import annotations

import math

import numpy as np

from . import _launch
from ._cuda import cuda, float64, int32, int64
from ._reduce import tree_start

__all__ = ["profile_kernel", "launch_profile", "bin_index", "profile_shared_bytes"]

# float64 slots per thread in the reduction scratch: mean, m2, min, max.
_F_SLOTS = 4
# int64 slots per thread: count, null, nan, +inf, -inf.
_I_SLOTS = 5


@cuda.jit(device=True, inline=True)
def bin_index(v, e, n_edges, uniform):
    """Index of finite ``v`` in the counts of edges ``e[:n_edges]`` (``Histogram.counts`` layout).

    Equals ``searchsorted(e, v, side="right")`` with a value equal to the last
    edge moved into the closed last bin. For ``uniform`` edges the bin is
    first estimated in closed form and then moved until the edges bracket
    ``v``: linspace edges are not exactly ``e0 + i * step`` and the estimate
    can be off by one either way at a boundary, so the answer comes from the
    same comparisons as the binary search and is identical to it (for any
    edges; the estimate only makes it fast when the edges are uniform).
    """
    first = e[0]
    last = e[n_edges - 1]
    if v < first:
        return 0
    if v > last:
        return n_edges
    if v == last:
        return n_edges - 1
    # Here first <= v < last: find j with e[j] <= v < e[j + 1], answer j + 1.
    if uniform:
        n_bins = n_edges - 1
        # Halving both sides first keeps (v - first) and the range finite
        # when the edges span more than the largest float.
        h = (v * 0.5 - first * 0.5) / (last * 0.5 - first * 0.5) * n_bins
        j = int(h) if h < n_bins else n_bins - 1
        while v < e[j]:
            j -= 1
        while v >= e[j + 1]:
            j += 1
        return j + 1
    lo = 0
    hi = n_edges - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if e[mid] <= v:
            lo = mid
        else:
            hi = mid
    return lo + 1


@cuda.jit(device=True, inline=True)
def welford_add(count, mean, m2, v):
    """Add ``v`` to a running (count, mean, M2)."""
    count += 1
    d = v - mean
    if math.isinf(d):
        # v and the mean are huge and of opposite signs; the weighted form
        # cannot overflow (M2 then legitimately becomes +inf).
        mean = mean * ((count - 1) / count) + v / count
    else:
        mean = mean + d / count
    m2 = m2 + d * (v - mean)
    return count, mean, m2


@cuda.jit(device=True, inline=True)
def chan_combine(na, ma, qa, nb, mb, qb):
    """Chan et al.'s merge of two (count, mean, M2), written as ``Moments.merge`` writes it."""
    if nb == 0:
        return na, ma, qa
    if na == 0:
        return nb, mb, qb
    n = na + nb
    # Weights below 1 keep the mean from overflowing.
    mean = ma * (na / n) + mb * (nb / n)
    d = mb - ma
    m2 = (qa + qb) + d * d * (float(na) * float(nb) / n)
    return n, mean, m2


@cuda.jit
def profile_kernel(
    x, null_mask, has_mask, edges, n_edges, uniform, shared_edges,
    hist, special, mins, maxs, blk_count, blk_mean, blk_m2,
):
    """Fused per-column profile of one chunk.

    Thread mapping: block ``(c, rb)`` = column ``c`` (``blockIdx.x``) and row
    block ``rb`` (``blockIdx.y``); thread ``t`` reads rows
    ``rb * T + t + k * gridDim.y * T`` (consecutive threads, consecutive rows).

    Shared memory (dynamic, one buffer viewed as float64 / int64 / int32):
    the column's edges (``shared_edges`` slots, 0 when not privatized), per
    thread ``mean, m2, min, max`` and ``count, null, nan, +inf, -inf`` for
    the block reduction, and the block's private histogram (int32).

    Atomics: int32 adds on the shared histogram (global int64 adds on
    ``hist`` when it is not privatized); after the block reduction one int64
    add per histogram bin and special count, one float64 min and max per
    block on ``mins`` / ``maxs``.

    Writes: adds into ``hist[c, :n_edges[c] + 1]`` and ``special[c, :]``
    (null, NaN, +inf, -inf), lowers ``mins[c]`` / raises ``maxs[c]`` (caller
    initializes them to +inf / -inf, adding 0.0 turns -0.0 into +0.0 as
    ``Moments`` does), and writes ``blk_count[c, rb]``, ``blk_mean[c, rb]``,
    ``blk_m2[c, rb]`` (mean 0.0 for a block without finite values). A column
    with ``n_edges[c] == 0`` gets no histogram.
    """
    c = cuda.blockIdx.x
    rb = cuda.blockIdx.y
    n_rb = cuda.gridDim.y
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_rows = x.shape[0]
    ne = n_edges[c]
    uni = uniform[c] != 0
    private = shared_edges > 0

    f64 = cuda.shared.array(0, dtype=float64)
    i64 = cuda.shared.array(0, dtype=int64)
    i32 = cuda.shared.array(0, dtype=int32)
    fo = shared_edges  # float64 scratch after the staged edges
    io = fo + _F_SLOTS * nt  # int64 scratch, in 8-byte units
    ho = 2 * (io + _I_SLOTS * nt)  # private histogram, in 4-byte units

    if private:
        for q in range(t, ne, nt):
            f64[q] = edges[c, q]
        for q in range(t, ne + 1, nt):
            i32[ho + q] = 0
    cuda.syncthreads()

    erow = edges[c]
    count = 0
    mean = 0.0
    m2 = 0.0
    lo = math.inf
    hi = -math.inf
    n_null = 0
    n_nan = 0
    n_pinf = 0
    n_ninf = 0
    for r in range(rb * nt + t, n_rows, n_rb * nt):
        if has_mask and null_mask[r, c]:
            n_null += 1
            continue
        v = np.float64(x[r, c])
        if v != v:
            n_nan += 1
        elif v == math.inf:
            n_pinf += 1
        elif v == -math.inf:
            n_ninf += 1
        else:
            count, mean, m2 = welford_add(count, mean, m2, v)
            lo = min(lo, v + 0.0)
            hi = max(hi, v + 0.0)
            if ne >= 2:
                if private:
                    cuda.atomic.add(i32, ho + bin_index(v, f64, ne, uni), 1)
                else:
                    cuda.atomic.add(hist, (c, bin_index(v, erow, ne, uni)), 1)

    f64[fo + t] = mean
    f64[fo + nt + t] = m2
    f64[fo + 2 * nt + t] = lo
    f64[fo + 3 * nt + t] = hi
    i64[io + t] = count
    i64[io + nt + t] = n_null
    i64[io + 2 * nt + t] = n_nan
    i64[io + 3 * nt + t] = n_pinf
    i64[io + 4 * nt + t] = n_ninf
    cuda.syncthreads()

    # Tree reduction for any block size: the first step folds the part
    # above the largest power of two below nt.
    s = tree_start(nt)
    while s > 0:
        if t < s and t + s < nt:
            o = t + s
            n, mu, q = chan_combine(
                i64[io + t], f64[fo + t], f64[fo + nt + t], i64[io + o], f64[fo + o], f64[fo + nt + o]
            )
            i64[io + t] = n
            f64[fo + t] = mu
            f64[fo + nt + t] = q
            f64[fo + 2 * nt + t] = min(f64[fo + 2 * nt + t], f64[fo + 2 * nt + o])
            f64[fo + 3 * nt + t] = max(f64[fo + 3 * nt + t], f64[fo + 3 * nt + o])
            for k in range(1, _I_SLOTS):
                i64[io + k * nt + t] += i64[io + k * nt + o]
        cuda.syncthreads()
        s //= 2

    if t == 0:
        blk_count[c, rb] = i64[io]
        blk_mean[c, rb] = f64[fo]
        blk_m2[c, rb] = f64[fo + nt]
        if i64[io] > 0:
            cuda.atomic.min(mins, c, f64[fo + 2 * nt])
            cuda.atomic.max(maxs, c, f64[fo + 3 * nt])
        for k in range(1, _I_SLOTS):
            if i64[io + k * nt] != 0:
                cuda.atomic.add(special, (c, k - 1), i64[io + k * nt])
    if private and ne >= 2:
        for q in range(t, ne + 1, nt):
            if i32[ho + q] != 0:
                cuda.atomic.add(hist, (c, q), np.int64(i32[ho + q]))


def profile_shared_bytes(max_edges: int, threads: int, privatize: bool) -> int:
    """Dynamic shared memory of one :func:`profile_kernel` block (bytes).

    Parameters
    ----------
    max_edges
        Padded edge count (``edges.shape[1]``).
    threads
        Block size.
    privatize
        Whether the block keeps its own histogram and edges in shared memory.
    """
    scratch = 8 * (_F_SLOTS + _I_SLOTS) * threads
    if not privatize:
        return scratch
    return scratch + 8 * max_edges + 4 * (max_edges + 1)


_NO_MASK: dict = {}


def _no_mask():
    """A 1x1 device array passed where there is no null mask (never read); one per device."""
    key = getattr(cuda.get_current_device(), "id", 0)
    if key not in _NO_MASK:
        _NO_MASK[key] = cuda.device_array((1, 1), dtype=np.bool_)
    return _NO_MASK[key]


def launch_profile(
    x,
    edges,
    n_edges,
    uniform,
    hist,
    special,
    mins,
    maxs,
    blk_count,
    blk_mean,
    blk_m2,
    null_mask=None,
    *,
    threads: int | None = None,
    privatize: bool | None = None,
    stream=0,
) -> None:
    """Profile a (rows x columns) chunk into caller-allocated device outputs; asynchronous.

    Parameters
    ----------
    x
        ``(rows, cols)`` device array, any numeric dtype, any strides (float
        NaN counts as NaN, not as null).
    edges
        ``(cols, max_edges)`` float64: column ``c``'s strictly increasing
        edges in ``edges[c, :n_edges[c]]``, the rest padding.
    n_edges
        ``(cols,)`` int64 edge counts; 0 for a column without a histogram, else >= 2.
    uniform
        ``(cols,)`` uint8/bool; nonzero when the column's edges are equally
        spaced (``numpy.linspace``), which enables the closed-form bin.
    hist
        ``(cols, max_edges + 1)`` int64, added to (zero it for a fresh chunk).
    special
        ``(cols, 4)`` int64, added to: null, NaN, +inf, -inf counts.
    mins, maxs
        ``(cols,)`` float64, lowered / raised (start at +inf / -inf).
    blk_count, blk_mean, blk_m2
        ``(cols, row_blocks)`` int64 / float64 / float64 per-block partial
        moments, overwritten; ``row_blocks`` (their second dimension, e.g.
        :func:`cudrift.kernels._launch.row_blocks`) sets the grid.
    null_mask
        Optional ``(rows, cols)`` bool device array, True where the value is null.
    threads
        Block size (default :func:`cudrift.kernels._launch.threads_per_block`).
    privatize
        Keep per-block histograms in shared memory; default: when they fit.
    stream
        Numba stream to launch on (0: the default stream).
    """
    n_cols = x.shape[1]
    n_rb = blk_count.shape[1]
    if n_cols == 0 or n_rb == 0:
        return
    nt = threads or _launch.threads_per_block()
    max_edges = edges.shape[1]
    if privatize is None:
        privatize = profile_shared_bytes(max_edges, nt, True) <= _launch.shared_limit()
    shared_edges = max_edges if privatize else 0
    nbytes = profile_shared_bytes(max_edges, nt, privatize)
    has_mask = null_mask is not None
    mask = null_mask if has_mask else _no_mask()
    profile_kernel[(n_cols, n_rb), nt, stream, nbytes](
        x, mask, has_mask, edges, n_edges, uniform, shared_edges, hist, special, mins, maxs, blk_count, blk_mean, blk_m2
    )
