"""Rank-spaced points of a sorted column, with exact counts: the level-0 quantile summary.

``QuantileSketch`` turns one sorted batch of ``m`` finite values into a
summary (``cudrift.sketches.quantiles._summarize_sorted``):

* ``m <= k + 1``: exact, the distinct values and their counts ``<=``;
* otherwise the values at positions ``(t * m) // k`` (``t < k``) and
  ``m - 1``, duplicates dropped, with ``lo = #{x <= v}`` and
  ``hi[i] = #{x < v[i+1]}`` (``hi[-1] = m``); when ``hi == lo`` that summary is
  exact as it stands, and when some points coincided (low cardinality) and
  the batch has at most ``k + 1`` distinct values, the exact summary replaces it.

:func:`quantile_points_kernel` computes the ``k + 1`` points and both counts
of each by binary search; :func:`run_ends_kernel` finds the distinct values
(the last index of each run of equal values) and counts them. The
decisions between the cases above need a handful of numbers and run on the
host (:func:`cudrift.kernels._host.summary_from_points` and
:func:`cudrift.kernels._host.summary_from_run_ends`), which reproduce the
CPU summary bit for bit.
"""

from __future__ import annotations

import numpy as np

from . import _launch
from ._cuda import cuda, int64

__all__ = [
    "quantile_points_kernel",
    "quantile_points_many_kernel",
    "run_ends_kernel",
    "launch_quantile_points",
    "launch_quantile_points_many",
    "launch_run_ends",
    "lower_bound",
    "upper_bound",
]


@cuda.jit(device=True, inline=True)
def lower_bound(x, n, v):
    """``#{x[i] < v}`` for sorted ``x[:n]`` (``searchsorted(x, v, "left")``)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if x[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@cuda.jit(device=True, inline=True)
def upper_bound(x, n, v):
    """``#{x[i] <= v}`` for sorted ``x[:n]`` (``searchsorted(x, v, "right")``)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if x[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@cuda.jit(device=True, inline=True)
def point(x, m, k, t, values, count_lt, count_le, at):
    """Point ``t`` of sorted ``x[:m]`` and its counts, written at ``at`` (the CPU summary's position rule)."""
    pos = (t * m) // k if t < k else m - 1
    v = x[pos]
    values[at] = np.float64(v)
    count_lt[at] = lower_bound(x, m, v)
    count_le[at] = upper_bound(x, m, v)


@cuda.jit
def quantile_points_kernel(x, k, values, count_lt, count_le):
    """Values at ``k + 1`` evenly spaced positions of sorted ``x`` and their exact counts.

    Thread mapping: one thread per point ``t`` in ``0 .. k`` (grid-stride);
    position ``(t * m) // k`` for ``t < k`` and ``m - 1`` for ``t = k``, as the
    CPU summary picks them (requires ``m >= 1``).

    Shared memory: none. Atomics: none.

    Writes: ``values[t]`` (float64, exact for float32 input),
    ``count_lt[t] = #{x < v}`` and ``count_le[t] = #{x <= v}`` (int64), by
    binary search of ``v`` in ``x`` in ``x``'s own dtype.
    """
    m = x.shape[0]
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, k + 1, stride):
        point(x, m, k, t, values, count_lt, count_le, t)


@cuda.jit
def quantile_points_many_kernel(x, starts, lengths, k, values, count_lt, count_le):
    """:func:`quantile_points_kernel` for many sorted columns held in one buffer, in one launch.

    Column ``c`` is ``x[starts[c] : starts[c] + lengths[c]]`` (sorted,
    finite, ``lengths[c] >= 1``). Thread mapping: ``blockIdx.y`` is the
    column; the x-dimension of the grid strides over its points ``0 .. k``.
    One launch serves every column of a batch: per-column launches cost
    more host time (argument wrapping, three read-backs each) than the
    ``k + 1`` binary searches cost on the device.

    Shared memory: none. Atomics: none.

    Writes: ``values``, ``count_lt`` and ``count_le`` at ``c * (k + 1) + t``.
    """
    c = cuda.blockIdx.y
    m = lengths[c]
    xc = x[starts[c] : starts[c] + m]
    row = c * (k + 1)
    for t in range(cuda.grid(1), k + 1, cuda.gridsize(1)):
        point(xc, m, k, t, values, count_lt, count_le, row + t)


@cuda.jit
def run_ends_kernel(x, ends, end_values, n_runs):
    """Last index of every run of equal values in sorted ``x``, and the number of runs.

    Thread mapping: one thread per element ``i`` (block-stride loop over
    tiles of ``T`` elements): ``i`` ends a run when ``i == m - 1`` or
    ``x[i] != x[i + 1]``.

    Shared memory: the block's run-end counter and its base slot (int64).

    Atomics: an int64 add on the shared counter per run end (its slot within
    the tile), one int64 add on ``n_runs[0]`` per tile (the tile's base slot).

    Writes: adds the number of runs to ``n_runs[0]`` (caller zeroes it) and
    stores run ends in ``ends[slot]`` / ``end_values[slot]`` (float64) for
    slots below ``ends.size``, in no particular order: the caller sorts
    them, and knows from ``n_runs`` whether all fitted.
    """
    m = x.shape[0]
    cap = ends.shape[0]
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    sh = cuda.shared.array(2, dtype=int64)
    n_tiles = (m + nt - 1) // nt
    for tile in range(cuda.blockIdx.x, n_tiles, cuda.gridDim.x):
        if t == 0:
            sh[0] = 0
        cuda.syncthreads()
        i = tile * nt + t
        slot = -1
        if i < m and (i == m - 1 or x[i] != x[i + 1]):
            slot = cuda.atomic.add(sh, 0, 1)
        cuda.syncthreads()
        if t == 0:
            sh[1] = cuda.atomic.add(n_runs, 0, sh[0])
        cuda.syncthreads()
        if slot >= 0:
            g = sh[1] + slot
            if g < cap:
                ends[g] = i
                end_values[g] = np.float64(x[i])
        cuda.syncthreads()


def launch_quantile_points(x, k: int, values, count_lt, count_le, *, threads: int | None = None, stream=0) -> None:
    """Write the ``k + 1`` rank-spaced points of sorted ``x``; asynchronous.

    Parameters
    ----------
    x
        Sorted, finite, non-empty 1-D float32/float64 device array.
    k
        The sketch's ``k`` (>= 1).
    values, count_lt, count_le
        ``(k + 1,)`` float64 / int64 / int64 device outputs, overwritten.
    threads
        Block size (default :func:`cudrift.kernels._launch.threads_per_block`).
    stream
        Numba stream to launch on (0: the default stream).
    """
    nt = threads or _launch.threads_per_block()
    quantile_points_kernel[_launch.blocks_1d(k + 1, nt), nt, stream](x, k, values, count_lt, count_le)


def launch_quantile_points_many(x, starts, lengths, k: int, values, count_lt, count_le, *,
                                threads: int | None = None, stream=0) -> None:
    """Write the ``k + 1`` rank-spaced points of every column of ``x``; asynchronous.

    Parameters
    ----------
    x
        1-D float32/float64 device buffer holding the sorted columns.
    starts, lengths
        ``(n_cols,)`` int64 device arrays: column ``c`` is
        ``x[starts[c] : starts[c] + lengths[c]]``, finite, ``lengths[c] >= 1``.
    k
        The sketches' ``k`` (>= 1).
    values, count_lt, count_le
        ``(n_cols * (k + 1),)`` float64 / int64 / int64 device outputs,
        overwritten; column ``c``'s points at ``c * (k + 1) + t``.
    threads
        Block size (default :func:`cudrift.kernels._launch.threads_per_block`).
    stream
        Numba stream to launch on (0: the default stream).
    """
    n_cols = starts.shape[0]
    nt = threads or _launch.threads_per_block()
    gx = max(1, min(-(-(k + 1) // nt), _launch.target_blocks()))
    step = _launch.MAX_GRID_Y
    for c0 in range(0, n_cols, step):
        c1 = min(n_cols, c0 + step)
        o0, o1 = c0 * (k + 1), c1 * (k + 1)
        quantile_points_many_kernel[(gx, c1 - c0), nt, stream](
            x, starts[c0:c1], lengths[c0:c1], k, values[o0:o1], count_lt[o0:o1], count_le[o0:o1])


def launch_run_ends(x, ends, end_values, n_runs, *, threads: int | None = None, stream=0) -> None:
    """Find the runs of equal values of sorted ``x``; asynchronous.

    Parameters
    ----------
    x
        Sorted 1-D device array.
    ends, end_values
        ``(capacity,)`` int64 / float64 device outputs (e.g. ``capacity = k + 1``).
    n_runs
        ``(1,)`` int64 device array, zeroed by the caller; receives the run count.
    threads
        Block size (default :func:`cudrift.kernels._launch.threads_per_block`).
    stream
        Numba stream to launch on (0: the default stream).
    """
    if x.shape[0] == 0:
        return
    nt = threads or _launch.threads_per_block()
    run_ends_kernel[_launch.blocks_1d(x.shape[0], nt), nt, stream](x, ends, end_values, n_runs)
