"""One fused profiling pass over a (rows x columns) chunk: every numeric sketch input from one read.

Per column the pass counts nulls, NaN, +inf and -inf, takes the minimum and
maximum of the finite values, counts them into that column's histogram
(``Histogram.counts`` layout: underflow, bins, overflow; the last bin closed
as in NumPy) and writes per-block partial moments (count, mean, M2 in
float64; the means relative to one of the column's first values, see
:func:`moment_shift`) that the caller merges with Chan's formula
(:func:`cudrift.kernels._host.merge_block_moments`) and shifts back
(:func:`cudrift.kernels._host.moment_shifts`).

Two thread mappings, chosen by :func:`launch_profile` from the layout:

* :func:`profile_rows_kernel` for a row-major chunk (each row's values
  adjacent): a block covers a slab of columns, consecutive threads read
  consecutive values of a row, so every warp load is one contiguous segment;
* :func:`profile_kernel` for any other strides (column-major above all): a
  block per (column, row range), consecutive threads read consecutive rows
  of one column.

Both read each value once, unrolled :data:`UNROLL` loads deep so that
enough loads are in flight to cover memory latency, and keep the moments
as per-thread sums of the values' differences from the column's origin
(:func:`moment_shift`, one of its first values) and of their squares, in
float64, which the block merges with Chan's formula: two additions per
value, no division. The pass is bound by the instructions and registers it
spends per value, not by the reads (a read-only kernel with the same
mapping reads the window at 83% of the copy rate; ``benchmarks/RESULTS.md``).

Each mapping has two kernels with one body (:func:`row_pass`,
:func:`column_pass`): a fast one, histograms privatized in shared memory
and no null mask (:func:`profile_rows_kernel`, :func:`profile_kernel`:
every launch the library makes, as nulls are counted on the host and
``pack_edges`` gives every launch at least one edge column to privatize),
and a general one that also takes a null mask and counts histograms by
global atomics where the edges are too many for shared memory (or there is
no edge column at all) (:func:`profile_rows_general_kernel`,
:func:`profile_general_kernel`); compiled apart, so that the general one's
pointers are not live in the fast one's read loop.
"""

from __future__ import annotations

import math

import numpy as np

from . import _launch
from ._cuda import SIMULATOR, boolean, cuda, float64, int32, int64, uint8
from ._host import MOMENT_HUGE
from ._reduce import tree_start
from .quantiles import upper_bound

__all__ = [
    "profile_kernel",
    "profile_general_kernel",
    "profile_rows_kernel",
    "profile_rows_general_kernel",
    "launch_profile",
    "profile_shared_bytes",
    "profile_outputs",
    "rows_layout",
    "GROUP",
    "UNROLL",
]

# float64 slots per thread in the reduction scratch: mean, m2, min, max.
_F_SLOTS = 4
# int64 slots per thread: count, null, nan, +inf, -inf.
_I_SLOTS = 5
#: Values per group of the moments' shifted sums (at least; see :func:`moments_add`), each group with its first
#: value as its own origin and folded into a running (count, mean, M2) by Chan's formula; 0: no groups, one run
#: of sums per thread from the column's origin (:func:`moment_shift`). 0 is the library's: 14 fewer registers
#: and no division in the loop (``benchmarks/kernel_sass.py``, ptxas 12.9, sm_90: the row kernel's float32 loop
#: 1,712 -> 1,496 instructions, 79 -> 24 float64 ones; groups of 512 gave most of the registers back). Its
#: rounding grows with the run and with the origin's distance from the mean, about ``eps * run * (1 + k**2) / 4``
#: of M2 for ``k`` standard deviations (on discrete data, where the roundings do not cancel): the caller learns
#: the run from :func:`launch_profile` and takes the moments again from the sorted column where that bound
#: passes 1e-10 (:func:`cudrift.kernels._host.moments_need_sorted`), an origin that is an outlier among long
#: runs. 16 is the scheme before (2026-11-27), kept for ``benchmarks/profile_sweep.py --variants "4,16"`` to time
#: against; the library's launches never take it (``if GROUP`` below is constant there).
GROUP = 0
#: Loads each thread issues before using them.
UNROLL = 4
#: Whether each thread issues the loads of its next :data:`UNROLL` values
#: before working on the current ones (software pipelining: loads stay in
#: flight during the arithmetic, for UNROLL more registers). Off until a
#: card says it pays (``benchmarks/profile_sweep.py --registers 0,64,80``
#: times it under each register cap).
PREFETCH = False
# Finite values at least this large (float64 windows only) would overflow the sums of squares: with GROUP 0 they
# are counted only, and the caller takes the column's moments from its sorted values (see fold_run); with groups
# they take the overflow-safe Welford step. Counted only, the float64 kernels lost the Welford step's registers and
# division from their loop (kernel_sass.py, ptxas 12.9, sm_90: the row kernel 122 -> 96 registers uncapped, 1,487
# -> 1,117 loop instructions, 108 -> 39 spill loads/stores in the loop at cap 64; the column kernel 109 -> 86, and
# 26 -> 4 at cap 64).
_HUGE = MOMENT_HUGE
# Rows a thread may read: its counts are int32 (fewer registers than int64, see read_column).
_THREAD_ROWS = 2**31 - 1
#: Rows :func:`moment_shift` looks through for a column's origin (a null or NaN first row is common).
SHIFT_ROWS = 8


@cuda.jit(device=True, inline=True)
def bin_scale(e, n_edges):
    """``n_bins / (last / 2 - first / 2)`` of edges ``e[:n_edges]`` in their dtype: the closed-form factor."""
    half = e.dtype.type(0.5)
    return e.dtype.type(n_edges - 1) / (e[n_edges - 1] * half - e[0] * half)


@cuda.jit(device=True, inline=True)
def bin_index_at(v, first, top, closed, e, off, p, n_edges, uniform, scale):
    """Index of finite ``v`` in the counts of edges ``e[off:off + n_edges * p:p]`` (``Histogram.counts`` layout).

    Equals ``searchsorted(edges, v, side="right")`` with a value equal to the
    last edge moved into the closed last bin. For ``uniform`` edges the bin
    is first estimated in closed form (``scale`` from :func:`bin_scale`) and
    then moved until the edges bracket ``v``: linspace edges are not exactly
    ``e0 + i * step`` and the estimate can be off by one either way at a
    boundary, so the answer comes from the same comparisons as the binary
    search and is identical to it (for any edges; the estimate only makes it
    fast when the edges are uniform).

    ``e`` holds the edges in the dtype the comparisons run in: the float64
    edges, or for float32 values the edges rounded up to float32
    (:func:`cudrift.kernels._host.float32_edges`; exact, since for a float32 ``v``, ``v < edge``
    exactly when ``v < ceil32(edge)``), and ``v`` is in that dtype. (The GPU
    backend gives float32 data edges already rounded to the nearest float32,
    :func:`cudrift.kernels._host.nearest_float_edges`, which that leaves
    as they are: float32 values are binned at their own precision.)
    ``first`` and ``top`` are ``e``'s first and last entries: ``v >= top``
    means ``v >= last`` (the last float64 edge), and ``closed`` (whether
    ``top`` equals ``last``, :func:`edge_constants`) decides between the
    closed last bin and overflow: ``v == last`` exactly when ``closed`` and
    ``v == top``, since a ``top`` rounded up from ``last`` equals no value
    of ``v``'s dtype that ``last`` does.
    ``p`` is the pitch between a column's consecutive edges: 1, or the
    kernels' interleaved layouts (see :func:`slab_offsets`).

    The kernels keep ``first``, ``top``, ``closed`` and ``scale`` of their
    column in registers: read from shared memory they would be more loads
    per value, which the compiler cannot hoist past the histogram's atomics
    on the same buffer.
    """
    if v < first:
        return 0
    if v >= top:
        return n_edges - 1 if closed and v == top else n_edges
    # Here first <= v < last: find j with e[j] <= v < e[j + 1], answer j + 1.
    if uniform:
        n_bins = n_edges - 1
        half = e.dtype.type(0.5)
        # Halving both sides first keeps (v - first) and the range finite
        # when the edges span more than the largest float.
        h = (v * half - first * half) * scale
        j = int32(h) if h < e.dtype.type(n_bins) else int32(n_bins - 1)
        while v < e[np.uint64(off + j * p)]:
            j -= 1
        while v >= e[np.uint64(off + (j + 1) * p)]:
            j += 1
        return j + 1
    lo = 0
    hi = n_edges - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if e[np.uint64(off + mid * p)] <= v:
            lo = mid
        else:
            hi = mid
    return lo + 1


@cuda.jit(device=True, inline=True)
def cell_at(loff, p, g):
    """Byte index of cell ``g`` in a cell table at byte ``loff`` with pitch ``p``.

    Four cells per 4-byte word, consecutive words ``p`` words apart: with
    ``p = 1`` the table is ``cells`` consecutive bytes; in the kernels'
    interleaved layouts (:func:`slab_offsets`) a column's words are every
    ``p``-th word, so they all sit in one shared-memory bank.
    """
    return np.uint64(loff + (g >> 2) * (4 * p) + (g & 3))


@cuda.jit(device=True, inline=True)
def build_cells(e, off, p, n_edges, lut, loff, cells, t, nt):
    """Fill the cell table at ``lut[loff]`` (pitch ``p``, :func:`cell_at`): for each equal-width cell of the
    edges' range, the bin its low end is in.

    The edges are ``e[off:off + n_edges * p:p]``. Threads ``t`` of ``nt``
    share the work (the caller synchronizes after). Entries are clamped to
    ``[0, n_edges - 2]`` and need not be exact: the lookup walks from them
    to the bracketing edges.
    """
    first = e[off]
    half = e[off + (n_edges - 1) * p] * 0.5 - first * 0.5
    inner = e[off : off + (n_edges - 1) * p : p]  # every edge but the last: entries stay <= n_edges - 2
    for g in range(t, cells, nt):
        low = first + 2.0 * (half * (g / cells))
        lut[cell_at(loff, p, g)] = max(upper_bound(inner, n_edges - 1, low) - 1, 0)


@cuda.jit(device=True, inline=True)
def bin_index_cells(v, first, top, closed, e, off, p, n_edges, lut, loff, cells, gscale):
    """:func:`bin_index_at` through a cell table from :func:`build_cells` (both at pitch ``p``).

    ``gscale`` is :func:`bin_scale` times ``cells / n_bins``; the caller
    holds ``first``, ``top`` and ``closed`` (as :func:`bin_index_at`, whose
    dtype rules apply).

    The value's cell gives a bin near its own; the answer is then found by
    the same edge comparisons as the binary search (walking down while
    ``v < e[j]``, up while ``v >= e[j + 1]``), so it is identical to it for
    any table, and takes one or two steps when the cells are finer than the
    bins.
    """
    if v < first:
        return 0
    if v >= top:
        return n_edges - 1 if closed and v == top else n_edges
    half = e.dtype.type(0.5)
    h = (v * half - first * half) * gscale
    g = int32(h) if h < e.dtype.type(cells) else int32(cells - 1)
    j = int32(lut[cell_at(loff, p, g)])
    while v < e[np.uint64(off + j * p)]:
        j -= 1
    while v >= e[np.uint64(off + (j + 1) * p)]:
        j += 1
    return j + 1


@cuda.jit(device=True, inline=True)
def edge_constants(crow, edges, c, ne, cells):
    """Column ``c``'s per-thread constants of the bin search: ``scale, gscale, first, top, closed``.

    ``crow`` is the column's row of comparison edges (the dtype of the
    first four results); ``scale`` is :func:`bin_scale`, ``gscale`` the cell
    table's factor (see :func:`bin_index_cells`), ``closed`` whether the
    last comparison edge ``top`` is the last float64 edge itself (always for
    float64 edges; for float32 ones, when it was exact in float32). Zeros
    for a column without a histogram (``ne < 2``).
    """
    ct = crow.dtype.type
    if ne < 2:
        return ct(0.0), ct(0.0), ct(0.0), ct(0.0), False
    scale = bin_scale(crow, ne)
    top = crow[ne - 1]
    return scale, scale * ct(cells / (ne - 1)), crow[0], top, np.float64(top) == edges[c, ne - 1]


@cuda.jit(device=True, inline=True)
def column_bins(crow, edges, c, ne, uni, private, cells, slot, me, pitch, ho, lo8):
    """:func:`add_value`'s ``bins`` for column ``c`` (comparison edges ``crow``, ``ne`` of them, ``uni`` if
    uniform) counted in slot ``slot`` of its block's slab (:func:`slab_offsets`; regions ``ho`` / ``lo8``
    from :func:`slab_regions`), privatized or not, with a cell table of ``cells`` (0: none)."""
    scale, gscale, first, top, closed = edge_constants(crow, edges, c, ne, cells)
    use_cells = private and cells > 0 and ne >= 2 and not uni
    eo, hc, lc, p = slab_offsets(slot, me, cells, pitch)
    # Offsets, counts and the column in 32 bits, and one scale (a column uses the cell table's or the closed
    # form's): the constants stay in registers all through the read, so fewer of them means fewer spills.
    return (first, top, closed, int32(eo), int32(p), int32(ne), uni, gscale if use_cells else scale,
            int32(lo8 + lc), int32(cells), use_cells, private, int32(ho + hc), int32(c))


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
    """Chan et al.'s merge of two (count, mean, M2).

    The mean moves from ``ma`` by ``d * nb / n``, so equal means stay
    exactly equal (a constant column keeps M2 = 0 however many merges);
    only when ``d = mb - ma`` overflows (huge means of opposite signs) is it
    the weighted form ``ma * na / n + mb * nb / n``, as ``Moments.merge``.
    """
    if nb == 0:
        return na, ma, qa
    if na == 0:
        return nb, mb, qb
    n = na + nb
    d = mb - ma
    if math.isinf(d):
        mean = ma * (na / n) + mb * (nb / n)
    else:
        mean = ma + d * (nb / n)
    m2 = (qa + qb) + d * d * (float(na) * float(nb) / n)
    return n, mean, m2


@cuda.jit(device=True, inline=True)
def fold_group(count, mean, m2, gn, gk, gs1, gs2):
    """Fold a group's shifted sums (``gn`` values, shift ``gk``) into a running (count, mean, M2)."""
    if gn == 0:
        return count, mean, m2
    gm = gk + gs1 / gn
    gq = max(gs2 - gs1 * (gs1 / gn), 0.0)
    return chan_combine(count, mean, m2, gn, gm, gq)


@cuda.jit(device=True, inline=True)
def fold_run(count, mean, m2, gn, gk, gs1, gs2):
    """A thread's moments at the end of its read: the open group folded (:func:`fold_group`). With ``GROUP`` 0,
    ``count`` holds only the huge values seen (:func:`moments_add`): when there are any, the moments are
    ``(count + gn, NaN, NaN)``, which every merge keeps NaN and the caller retakes from the sorted values."""
    if not GROUP and count > 0:
        return count + gn, math.nan, math.nan
    return fold_group(count, mean, m2, gn, gk, gs1, gs2)


@cuda.jit(device=True, inline=True)
def count_nonfinite(v, n_nan, n_pinf, n_ninf):
    """Count non-finite ``v`` as NaN, +inf or -inf."""
    if v != v:
        n_nan = int32(n_nan + 1)
    elif v > 0:
        n_pinf = int32(n_pinf + 1)
    else:
        n_ninf = int32(n_ninf + 1)
    return n_nan, n_pinf, n_ninf


@cuda.jit(device=True, inline=True)
def fold_if_full(count, mean, m2, gn, gk, gs1, gs2):
    """Fold the open group into the running moments once it holds :data:`GROUP` values, and open a new one."""
    if GROUP and gn >= GROUP:
        count, mean, m2 = fold_group(count, mean, m2, gn, gk, gs1, gs2)
        gn = int32(0)
        gs1 = 0.0
        gs2 = 0.0
    return count, mean, m2, gn, gs1, gs2


@cuda.jit(device=True, inline=True)
def load_batch(x, null_mask, has_mask, r0, step, n_rows, uc, buf, state):
    """Read rows ``r0 + u * step`` (``u < UNROLL``) of column ``uc`` into ``buf`` (converted to its dtype).

    ``state[u]``: whether ``buf[u]`` holds a value (False for a null, where
    ``has_mask`` and ``null_mask`` say so, and past the last row: the
    caller counts nulls as the rows it visited less the values it took).
    Row indices are unsigned, so Numba emits no negative-index wraparound
    (three integer instructions per index).
    """
    for u in range(UNROLL):
        r = r0 + u * step
        if r >= n_rows:
            state[u] = False
        elif has_mask and null_mask[np.uint64(r), uc]:
            state[u] = False
        else:
            state[u] = True
            buf[u] = x[np.uint64(r), uc]


@cuda.jit(device=True, inline=True)
def moment_shift(x, uc, n_rows, crow):
    """The origin column ``uc``'s moments are accumulated from: its first value among the chunk's first
    :data:`SHIFT_ROWS` rows, in the comparison dtype, that is finite and below 1e150 in magnitude (null or
    not: any such value will do), else 0. Every thread of the column computes the same one, and so does the
    host (:func:`cudrift.kernels._host.moment_shifts`), which adds it back to the merged mean.

    Group, thread and block means are then small numbers next to the
    column's spread: kept as absolute values, a column of 1e12 + N(0, 1)
    had each 16-value group's mean rounded to 1e-4 and its M2 came out
    1.2e-5 off (1e-9 is the contract), 1.7e-2 at 1e15.
    """
    one = cuda.local.array(1, crow.dtype)
    for r in range(min(n_rows, SHIFT_ROWS)):
        one[0] = x[np.uint64(r), uc]  # converted as load_batch converts the values
        s = np.float64(one[0])
        if abs(s) < _HUGE:  # (False for NaN and the infinities)
            return s
    return 0.0


@cuda.jit(device=True, inline=True)
def read_column(x, null_mask, has_mask, uc, start, step, n_rows, bins, ce, u8, i32, hist, crow):
    """One thread's pass over its rows ``start, start + step, ...`` of column ``uc``; both kernels' read loop.

    Reads :data:`UNROLL` rows at a time (:func:`load_batch`; with
    :data:`PREFETCH` the next batch's loads are issued before the current
    batch is worked on), takes each value in (:func:`add_value`, which
    counts the histogram through ``bins`` and the shared arrays) and, with
    :data:`GROUP` > 0, folds the moments' group once per batch once it is
    full. Returns ``(count, mean, m2, lo, hi, n_null, n_nan, n_pinf,
    n_ninf)``, the moments folded (:func:`fold_run`: NaN after a value past
    1e150), their mean relative to :func:`moment_shift`; identities when
    ``start >= n_rows``. Nulls are
    not counted as they are read: they are the rows visited less the values
    taken.
    """
    inf = crow.dtype.type(math.inf)  # values are bounded in the comparison edges' dtype
    count = int32(0)  # (with GROUP 0, the huge values seen: see moments_add)
    mean = 0.0
    m2 = 0.0
    gn = int32(0)
    gk = 0.0
    gs1 = 0.0
    gs2 = 0.0
    lo = inf
    hi = -inf
    # Per-thread counts in 32 bits (launch_profile keeps a thread's rows below 2**31): fewer registers.
    n_nan = int32(0)
    n_pinf = int32(0)
    n_ninf = int32(0)
    buf = cuda.local.array(UNROLL, crow.dtype)
    state = cuda.local.array(UNROLL, boolean)  # buf[u] holds a value
    nxt = cuda.local.array(UNROLL, crow.dtype)  # the next batch, with PREFETCH
    nst = cuda.local.array(UNROLL, boolean)
    shift = moment_shift(x, uc, n_rows, crow)
    if PREFETCH:
        load_batch(x, null_mask, has_mask, start, step, n_rows, uc, nxt, nst)
    for r0 in range(start, n_rows, step * UNROLL):
        if PREFETCH:
            for u in range(UNROLL):
                buf[u] = nxt[u]
                state[u] = nst[u]
            # the next batch's loads stay in flight while this one is worked on
            load_batch(x, null_mask, has_mask, r0 + step * UNROLL, step, n_rows, uc, nxt, nst)
        else:
            load_batch(x, null_mask, has_mask, r0, step, n_rows, uc, buf, state)
        for u in range(UNROLL):
            if state[u]:
                count, mean, m2, gn, gk, gs1, gs2, lo, hi, n_nan, n_pinf, n_ninf = add_value(
                    buf[u], (count, mean, m2, gn, gk, gs1, gs2, lo, hi, n_nan, n_pinf, n_ninf), bins,
                    ce, u8, i32, hist, crow, shift)
        count, mean, m2, gn, gs1, gs2 = fold_if_full(count, mean, m2, gn, gk, gs1, gs2)
    count, mean, m2 = fold_run(count, mean, m2, gn, gk, gs1, gs2)
    # Every row visited is a value taken, non-finite, or null (past the end is not visited).
    visited = (n_rows - 1 - start) // step + 1 if start < n_rows else 0
    n_null = visited - count - n_nan - n_pinf - n_ninf
    return count, mean, m2, lo, hi, n_null, n_nan, n_pinf, n_ninf


@cuda.jit(device=True, inline=True)
def add_value(v, acc, bins, ce, u8, i32, hist, crow, shift):
    """Take one read value into a thread's running state; both kernels' per-value step.

    ``v`` is the value (not null) in the comparison dtype. ``acc`` is ``(count,
    mean, m2, gn, gk, gs1, gs2, lo, hi, n_nan, n_pinf, n_ninf)``,
    returned updated: a finite value goes into the moments' open group
    (:func:`moments_add`, less the column's ``shift``: :func:`moment_shift`), the minimum, the maximum and
    the column's histogram, a non-finite one into its count. ``bins`` is ``(first, top,
    closed, off, p, ne, uniform, scale, loff, cells, use_cells, private,
    hoff, c)`` (``scale`` the cell table's ``gscale`` where ``use_cells``): the column's bin-search
    constants (:func:`edge_constants`),
    where its edges (``ce[off:]``), cell table (``u8[loff:]``) and private
    histogram (``i32[hoff:]``) start in shared memory and their pitch ``p``
    (entry ``k`` of each at ``k * p``; see :func:`slab_offsets`), and how it counts:
    through the cell table, by :func:`bin_index_at` on the shared edges, or
    without privatization into ``hist[c]`` on the edges ``crow``.
    """
    count, mean, m2, gn, gk, gs1, gs2, lo, hi, n_nan, n_pinf, n_ninf = acc
    if abs(v) < crow.dtype.type(math.inf):  # finite first: one test for most values
        # |v| >= 1e150, in v's dtype and written as the finiteness test above: for float32 values (never
        # that large) it is that test against inf, which the compiler then drops with the Welford path
        huge = not abs(v) < (crow.dtype.type(math.inf) if crow.itemsize == 4 else crow.dtype.type(_HUGE))
        count, mean, m2, gn, gk, gs1, gs2 = moments_add(count, mean, m2, gn, gk, gs1, gs2,
                                                         np.float64(v) - shift, huge)
        lo = min(lo, v)
        hi = max(hi, v)
        first, top, closed, off, p, ne, uni, scale, loff, cells, use_cells, private, hoff, c = bins
        if ne >= 2:
            if use_cells:
                k = bin_index_cells(v, first, top, closed, ce, off, p, ne, u8, loff, cells, scale)
                cuda.atomic.add(i32, hoff + k * p, 1)
            elif private:
                cuda.atomic.add(i32, hoff + bin_index_at(v, first, top, closed, ce, off, p, ne, uni, scale) * p, 1)
            else:
                cuda.atomic.add(hist, (c, bin_index_at(v, first, top, closed, crow, 0, 1, ne, uni, scale)), 1)
    else:
        n_nan, n_pinf, n_ninf = count_nonfinite(v, n_nan, n_pinf, n_ninf)
    return count, mean, m2, gn, gk, gs1, gs2, lo, hi, n_nan, n_pinf, n_ninf


@cuda.jit(device=True, inline=True)
def store_partials(f64, i64, fo, io, nt, t, partial):
    """Write thread ``t``'s :func:`read_column` result to the block-reduction scratch.

    ``mean, m2, min, max`` at ``f64[fo + k * nt + t]`` and ``count, null,
    nan, +inf, -inf`` at ``i64[io + k * nt + t]``. Adding 0.0 turns a -0.0
    extreme into +0.0, as ``Moments`` does (in float64: the extremes keep
    the comparison dtype, which Numba would widen on reassignment).
    """
    count, mean, m2, lo, hi, n_null, n_nan, n_pinf, n_ninf = partial
    f64[fo + t] = mean
    f64[fo + nt + t] = m2
    f64[fo + 2 * nt + t] = np.float64(lo) + 0.0
    f64[fo + 3 * nt + t] = np.float64(hi) + 0.0
    i64[io + t] = count
    i64[io + nt + t] = n_null
    i64[io + 2 * nt + t] = n_nan
    i64[io + 3 * nt + t] = n_pinf
    i64[io + 4 * nt + t] = n_ninf


@cuda.jit(device=True, inline=True)
def moments_add(count, mean, m2, gn, gk, gs1, gs2, v, huge):
    """Add finite ``v`` to the open group (the caller folds it with :func:`fold_group` once it holds :data:`GROUP`;
    with ``GROUP`` 0, ``v`` is already relative to the column's origin and the thread's one run of sums is folded
    at the end of its read).

    With groups, the group's shift is its first value, so ``gs1**2 / gn <= (gn - 1) * M2``
    of the group and the subtraction loses at most ``gn - 1`` ulps. Huge
    values (``huge``: ``|v| >= 1e150``, tested by the caller in the
    comparison dtype, where for float32 it is never true) are only counted
    in ``count`` with ``GROUP`` 0 (:func:`fold_run` then makes the moments
    NaN, and the caller takes them from the sorted values); with groups they
    go straight into the running moments by the overflow-safe Welford step. The kernels check the group's size once per
    :data:`UNROLL` values rather than here, so that the fold's code is not
    repeated for every unrolled value; a group then holds fewer than
    ``GROUP + UNROLL`` values.
    """
    if huge:
        if GROUP:
            count, mean, m2 = welford_add(count, mean, m2, v)
        else:
            # counted only: the run's moments are then NaN (fold_run), and the caller takes them again from the
            # column's sorted values (cudrift.kernels._host.moments_need_sorted). The Welford step's registers
            # and division are out of the loop, where they cost every float64 window (huge values are rare).
            count = int32(count + 1)
        return count, mean, m2, gn, gk, gs1, gs2
    if GROUP and gn == 0:
        gk = v
    d = v - gk
    gs1 += d
    gs2 += d * d
    gn = int32(gn + 1)
    return count, mean, m2, gn, gk, gs1, gs2


# (see _launch.COLUMNS_MAX_REGISTERS)
_COLUMNS_JIT = {} if SIMULATOR else {"max_registers": _launch.COLUMNS_MAX_REGISTERS}


@cuda.jit(device=True, inline=True)
def column_pass(
    x, null_mask, has_mask, edges, cmp_edges, n_edges, uniform, private, cells, pitch,
    hist, special, mins, maxs, blk_count, blk_mean, blk_m2,
):
    """:func:`profile_kernel`'s and :func:`profile_general_kernel`'s body (see :func:`row_pass`)."""
    c = cuda.blockIdx.x
    rb = cuda.blockIdx.y
    n_rb = cuda.gridDim.y
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_rows = x.shape[0]
    me = edges.shape[1]
    ne = n_edges[c]
    uni = uniform[c] != 0

    f64 = cuda.shared.array(0, dtype=float64)
    i64 = cuda.shared.array(0, dtype=int64)
    i32 = cuda.shared.array(0, dtype=int32)
    u8 = cuda.shared.array(0, dtype=uint8)
    ce = cuda.shared.array(0, dtype=cmp_edges.dtype)
    # a slab of one column: its copies fill the slots (one slot when not interleaved)
    slots = slab_slots(1, pitch)
    ho, lo8 = slab_regions(pitch, me, cmp_edges.itemsize)  # histograms (4-byte units), cell tables (bytes)
    stage_slab(ce, i32, u8, cmp_edges, n_edges, uniform, private, c, 1, slots, me, ho, lo8, cells, pitch, t, nt)

    crow = cmp_edges[c]
    bins = column_bins(crow, edges, c, ne, uni, private, cells, slab_slot(t, 1, slots), me, pitch, ho, lo8)
    # Unsigned column index (and rows, in load_batch): no negative-index wraparound.
    partial = read_column(
        x, null_mask, has_mask, np.uint64(c), rb * nt + t, n_rb * nt, n_rows, bins, ce, u8, i32, hist, crow)
    if private:
        cuda.syncthreads()
        flush_slab(i32, ho, hist, c, 1, slots, me, cells, pitch, t, nt)
        cuda.syncthreads()  # the reduction scratch below takes the same bytes

    fo = 0  # float64 scratch
    io = _F_SLOTS * nt  # int64 scratch, in 8-byte units
    store_partials(f64, i64, fo, io, nt, t, partial)
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


@cuda.jit(**_COLUMNS_JIT)
def profile_kernel(
    x, edges, cmp_edges, n_edges, uniform, cells, pitch,
    hist, special, mins, maxs, blk_count, blk_mean, blk_m2,
):
    """Fused per-column profile of one chunk.

    Thread mapping: block ``(c, rb)`` = column ``c`` (``blockIdx.x``) and row
    block ``rb`` (``blockIdx.y``); thread ``t`` reads rows
    ``rb * T + t + k * gridDim.y * T`` (consecutive threads, consecutive rows).

    Values are compared with ``cmp_edges`` (``edges`` itself, or float32
    edges for float32 ``x``, see :func:`bin_index_at`) in that dtype; the
    minimum and maximum are taken in it too, the moments in float64.

    Shared memory (dynamic, one buffer viewed as float64 / int64 / int32 /
    uint8 and ``cmp_edges``' dtype): while reading, the
    column's comparison edges (``max_edges`` of ``cmp_edges``' dtype), a
    private histogram (``max_edges + 1`` int32) and, when ``cells > 0``, the
    cell table of :func:`bin_index_cells` (``cells`` uint8), laid out as a
    :func:`profile_rows_kernel` slab of one column: one copy (``pitch ==
    1``), or ``pitch`` copies interleaved, thread ``t`` on copy ``t %
    pitch`` (:func:`slab_slot`), so a warp's 32 threads never meet in a
    bank whichever bins their values fall in (with one copy they meet about
    2.5 times in the busiest bank for each of the cell lookup, the edge
    reads and the atomic; ``benchmarks/kernel_sass.py --banks``); after the
    histogram is flushed, the same bytes hold per-thread ``mean, m2, min,
    max`` (float64) and ``count, null, nan, +inf, -inf`` (int64) for the
    block reduction.

    Atomics: int32 adds on the shared histogram (:func:`profile_general_kernel`
    without ``private``: global int64 adds on ``hist`` instead); then one int64 add per nonzero bin (its
    copies added first) and special count, one float64 min and max per
    block on ``mins`` / ``maxs``.

    Writes: adds into ``hist[c, :n_edges[c] + 1]`` and ``special[c, :]``
    (null, NaN, +inf, -inf), lowers ``mins[c]`` / raises ``maxs[c]`` (caller
    initializes them to +inf / -inf, adding 0.0 turns -0.0 into +0.0 as
    ``Moments`` does), and writes ``blk_count[c, rb]``, ``blk_mean[c, rb]``,
    ``blk_m2[c, rb]`` (mean 0.0 for a block without finite values). A column
    with ``n_edges[c] == 0`` gets no histogram.
    """
    # (x stands in for the null mask that has_mask False never reads)
    column_pass(
        x, x, False, edges, cmp_edges, n_edges, uniform, True, cells, pitch, hist, special, mins, maxs,
        blk_count, blk_mean, blk_m2,
    )


@cuda.jit(**_COLUMNS_JIT)
def profile_general_kernel(
    x, null_mask, has_mask, edges, cmp_edges, n_edges, uniform, private, cells, pitch,
    hist, special, mins, maxs, blk_count, blk_mean, blk_m2,
):
    """:func:`profile_kernel` with a null mask and either way of counting the histogram: privatized in shared
    memory (``private``), or by global int64 atomics on ``hist`` (shared memory then holds only the block
    reduction's scratch), for edges too many to privatize. :func:`launch_profile` takes it for a launch with
    a null mask or global histograms, the fast kernel for the others: see :func:`row_pass`.

    ``null_mask`` is ``(rows, cols)`` bool, True where the value is null, read when ``has_mask``.
    """
    column_pass(
        x, null_mask, has_mask, edges, cmp_edges, n_edges, uniform, private, cells, pitch, hist, special, mins, maxs,
        blk_count, blk_mean, blk_m2,
    )


@cuda.jit(device=True, inline=True)
def slab_offsets(v, me, cells, pitch):
    """Where slot ``v`` of a slab keeps its shared data: ``(edges, histogram, cell table, p)``, each relative
    to its array's start, and the pitch ``p`` of its entries.

    A slab is the shared data of a :func:`profile_rows_kernel` block's
    columns, or of a :func:`profile_kernel` block's one column. A slot
    holds one column's edges, private histogram and cell table; which
    column, and which thread uses which slot, is :func:`slab_slot`'s.
    ``pitch == 1``: column after column, one slot per column (edges at ``v
    * me``, histogram at ``v * (me + 1)``, cell table at byte ``v *
    cells``), entries adjacent. ``pitch > 1`` (a multiple of 32, or a
    power of two at least the slab's width where 32 slots do not fit a
    block or leave too little room on an SM; ``_interleave_pitch``):
    interleaved, entry ``k`` of slot ``v`` at ``k * pitch + v`` (the cell
    table's word ``k * pitch + v`` holds cells ``4k`` to ``4k + 3``, see
    :func:`cell_at`), so in bank ``(k * pitch + v) % 32``: two slots whose
    indices differ by less than 32 (or less than a smaller pitch) never
    share a bank, whichever bins their values fall in. Column after
    column, a row-kernel warp's 32 bins meet about 3.5 times in the busiest
    bank (one pass of the shared memory each) for each of the cell lookup,
    the edge reads and the atomic, and with one copy a column-kernel warp's
    about 2.5 times (``benchmarks/kernel_sass.py --banks``).
    """
    if pitch == 1:
        return v * me, v * (me + 1), v * cells, 1
    return v, v, 4 * v, pitch


@cuda.jit(device=True, inline=True)
def slab_regions(width, me, edge_bytes):
    """Where a slab's shared regions start: ``(histograms in 4-byte words, cell tables in bytes)``, after
    ``width`` slots of ``me`` edges of ``edge_bytes`` each (edges first, at 0)."""
    ho = (width * me * edge_bytes) // 4
    return ho, 4 * (ho + width * (me + 1))


@cuda.jit(device=True, inline=True)
def slab_slots(n_cols, pitch):
    """Slots a slab of ``n_cols`` columns fills (:func:`slab_offsets`): its columns, repeated ``pitch // n_cols``
    times when interleaved (slot ``v`` holds column ``v % n_cols``)."""
    if pitch == 1:
        return n_cols
    return (pitch // n_cols) * n_cols


@cuda.jit(device=True, inline=True)
def slab_slot(t, n_cols, slots):
    """The slot thread ``t`` of a slab of ``n_cols`` columns in ``slots`` slots (:func:`slab_slots`) reads and
    counts in: a copy of its column ``t % n_cols``.

    A slab holds ``copies = slots // n_cols`` copies of its columns' data
    (one column after column; more when interleaved narrower than the
    pitch), and the threads of row ``r`` use copy ``r % copies``: when the
    width divides 32 a warp's 32 threads then use 32 different slots, one
    per bank, though it spans several rows (with one copy, the threads of
    one column in those rows would meet in a bank). The flush adds the
    copies' histograms together before its global atomics.
    """
    return ((t // n_cols) % (slots // n_cols)) * n_cols + t % n_cols


@cuda.jit(device=True, inline=True)
def copy_cell_tables(i32, lo8, n_edges, uniform, c0, n_cols, slots, cells, pitch, t, nt):
    """Copy the first copy's cell tables (slots ``0 .. n_cols - 1``, built) to the other slots of an interleaved
    slab of columns ``c0 .. c0 + n_cols - 1`` (slot ``v`` gets column ``c0 + v % n_cols``'s); threads ``t`` of
    ``nt`` share it, the caller synchronizes.

    Copies whole 4-byte words (``i32``: the shared buffer viewed as int32; ``lo8`` and ``cells`` are multiples
    of 4): the tables' word ``w`` (from ``lo8``) is word ``w // pitch`` of slot ``w % pitch`` (:func:`cell_at`),
    so it takes the word ``w - v + v % n_cols``. In storage order, consecutive threads on consecutive words; a
    copy costs far less than a build.
    """
    base = lo8 >> 2
    for w in range(t, pitch * (cells >> 2), nt):
        v = w % pitch
        if n_cols <= v < slots:
            cc = v % n_cols
            if n_edges[c0 + cc] >= 2 and uniform[c0 + cc] == 0:
                i32[base + w] = i32[base + w - v + cc]


@cuda.jit(device=True, inline=True)
def stage_slab(ce, i32, u8, cmp_edges, n_edges, uniform, private, c0, n_cols, slots, me, ho, lo8, cells, pitch,
               t, nt):
    """Fill the shared data of a slab of columns ``c0 .. c0 + n_cols - 1`` in ``slots`` slots
    (:func:`slab_slots`) before the read, when ``private``: the comparison edges, zeroed histograms, and the
    cell tables of non-uniform columns (the first copy's built, the others copied: :func:`copy_cell_tables`).

    ``ho`` / ``lo8`` are :func:`slab_regions`' of the slab's width (``n_cols``, or ``pitch`` when
    interleaved). Threads ``t`` of ``nt`` share the work, in storage order (consecutive threads, consecutive
    banks). Synchronizes the block (also when not ``private``: the same barriers either way, which gives the
    row kernel's register allocation under its cap fewer spills), so every thread must call it.
    """
    width = n_cols if pitch == 1 else pitch
    if private:
        for q in range(t, width * me, nt):
            v, j = slab_entry(q, me, pitch)
            if v < slots:
                ce[q] = cmp_edges[c0 + v % n_cols, j]
        for q in range(t, width * (me + 1), nt):
            i32[ho + q] = 0
    cuda.syncthreads()
    if private and cells > 0:
        for cc in range(n_cols):  # the first copy's tables (slots 0 .. n_cols - 1)
            if n_edges[c0 + cc] >= 2 and uniform[c0 + cc] == 0:
                eo, _, lc, p = slab_offsets(cc, me, cells, pitch)
                build_cells(ce, eo, p, n_edges[c0 + cc], u8, lo8 + lc, cells, t, nt)
    cuda.syncthreads()
    if private and cells > 0 and slots > n_cols:
        copy_cell_tables(i32, lo8, n_edges, uniform, c0, n_cols, slots, cells, pitch, t, nt)
    cuda.syncthreads()


@cuda.jit(device=True, inline=True)
def flush_slab(i32, ho, hist, c0, n_cols, slots, me, cells, pitch, t, nt):
    """Add a slab's private histograms (:func:`stage_slab`) into ``hist[c0 + cc, :]`` after the read: each
    (column, bin) once, its copies added in shared memory first, one global atomic per nonzero bin.

    Consecutive threads take consecutive shared words in either layout, and thread ``t`` starts its copies
    at its own bin's rotation, so when interleaved with a width that divides 32 the threads of a warp read
    different banks at every step. The caller synchronizes before and after.
    """
    copies = slots // n_cols
    for q in range(t, n_cols * (me + 1), nt):
        cc, j = (q // (me + 1), q % (me + 1)) if pitch == 1 else (q % n_cols, q // n_cols)
        k = 0
        r = j % copies
        for _ in range(copies):
            _, hq, _, p = slab_offsets(r * n_cols + cc, me, cells, pitch)
            k += i32[ho + hq + j * p]
            r = r + 1 if r + 1 < copies else 0
        if k != 0:
            cuda.atomic.add(hist, (c0 + cc, j), np.int64(k))


@cuda.jit(device=True, inline=True)
def slab_entry(q, length, pitch):
    """``(slot, entry)`` of position ``q`` of a slab's per-slot arrays of ``length`` entries (:func:`slab_offsets`)."""
    if pitch == 1:
        return q // length, q % length
    return q % pitch, q // pitch


# More resident warps beat the spills this cap causes (see _launch.ROWS_MAX_REGISTERS).
_ROWS_JIT = {} if SIMULATOR else {"max_registers": _launch.ROWS_MAX_REGISTERS}


@cuda.jit(device=True, inline=True)
def row_pass(
    x, null_mask, has_mask, edges, cmp_edges, n_edges, uniform, private, cells, pitch,
    hist, special, mins, maxs, blk_count, blk_mean, blk_m2,
):
    """:func:`profile_rows_kernel`'s and :func:`profile_rows_general_kernel`'s body.

    The fast kernel passes ``has_mask`` False and ``private`` True as constants, so its read loop holds
    only the privatized histogram's constants: with a mask and both ways of counting compiled in (kernel
    arguments), the null mask's and the global histogram's pointers and strides stayed live in the loop,
    and the row kernel's register cap spilled them (ptxas 12.9, sm_90, float32 binning, C-contiguous: 40
    spill loads and stores in the loop, 22 without the global way, 3 without the mask either). The
    library's own launches have neither (nulls are counted on the host); the general kernel keeps both
    for the kernel API.
    """
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    b = cuda.blockIdx.x
    n_b = cuda.gridDim.x
    n_rows = x.shape[0]
    n_cols = x.shape[1]
    rows_per_step = nt // n_cols
    c = t % n_cols
    active = t < rows_per_step * n_cols
    me = edges.shape[1]

    f64 = cuda.shared.array(0, dtype=float64)
    i64 = cuda.shared.array(0, dtype=int64)
    i32 = cuda.shared.array(0, dtype=int32)
    u8 = cuda.shared.array(0, dtype=uint8)
    ce = cuda.shared.array(0, dtype=cmp_edges.dtype)
    width = n_cols if pitch == 1 else pitch  # slots' worth of shared memory
    slots = slab_slots(n_cols, pitch)  # slot v holds column v % n_cols; the rest is padding
    ho, lo8 = slab_regions(width, me, cmp_edges.itemsize)  # histograms (4-byte units), cell tables (bytes)
    stage_slab(ce, i32, u8, cmp_edges, n_edges, uniform, private, 0, n_cols, slots, me, ho, lo8, cells, pitch, t, nt)

    ne = n_edges[c]
    uni = uniform[c] != 0
    crow = cmp_edges[c]
    # counted in this thread's copy of its column's edges, histogram and cell table
    bins = column_bins(crow, edges, c, ne, uni, private, cells, slab_slot(t, n_cols, slots), me, pitch, ho, lo8)
    # threads past the slab's rows read nothing (start at n_rows) and hold identities
    start = b * rows_per_step + t // n_cols if active else n_rows
    partial = read_column(
        x, null_mask, has_mask, np.uint64(c), start, n_b * rows_per_step, n_rows, bins, ce, u8, i32, hist, crow)
    cuda.syncthreads()
    if private:
        flush_slab(i32, ho, hist, 0, n_cols, slots, me, cells, pitch, t, nt)
    cuda.syncthreads()  # the reduction scratch below takes the same bytes

    fo = 0
    io = _F_SLOTS * nt
    store_partials(f64, i64, fo, io, nt, t, partial)
    cuda.syncthreads()
    if t < n_cols:
        n = i64[io + t]
        mu = f64[fo + t]
        q2 = f64[fo + nt + t]
        for k in range(1, rows_per_step):
            o = t + k * n_cols
            n, mu, q2 = chan_combine(n, mu, q2, i64[io + o], f64[fo + o], f64[fo + nt + o])
            f64[fo + 2 * nt + t] = min(f64[fo + 2 * nt + t], f64[fo + 2 * nt + o])
            f64[fo + 3 * nt + t] = max(f64[fo + 3 * nt + t], f64[fo + 3 * nt + o])
            for j in range(1, _I_SLOTS):
                i64[io + j * nt + t] += i64[io + j * nt + o]
        blk_count[t, b] = n
        blk_mean[t, b] = mu
        blk_m2[t, b] = q2
        if n > 0:
            cuda.atomic.min(mins, t, f64[fo + 2 * nt + t])
            cuda.atomic.max(maxs, t, f64[fo + 3 * nt + t])
        for j in range(1, _I_SLOTS):
            if i64[io + j * nt + t] != 0:
                cuda.atomic.add(special, (t, j - 1), i64[io + j * nt + t])


@cuda.jit(**_ROWS_JIT)
def profile_rows_kernel(
    x, edges, cmp_edges, n_edges, uniform, cells, pitch,
    hist, special, mins, maxs, blk_count, blk_mean, blk_m2,
):
    """Fused per-column profile of a row-major slab of ``S`` columns (``x.shape[1]``); same outputs as :func:`profile_kernel`.

    Thread mapping: ``R = blockDim.x // S`` rows per step; thread ``t``
    owns column ``t % S`` and reads rows ``blockIdx.x * R + t // S + k *
    gridDim.x * R`` (threads ``>= R * S`` idle), so a warp reads adjacent
    values of one or two rows: contiguous segments on a row-major chunk.

    Values are compared with ``cmp_edges`` in its dtype, as in
    :func:`profile_kernel`.

    Shared memory (dynamic, one buffer viewed as float64 / int64 / int32 /
    uint8 and ``cmp_edges``' dtype): while reading, the slab's comparison
    edges (``W * max_edges`` of ``cmp_edges``' dtype),
    private histograms (``W * (max_edges + 1)`` int32) and cell tables of
    :func:`bin_index_cells` (``W * cells`` uint8), in ``W``
    slots: one per column laid out column after column (``pitch == 1``,
    ``W = S``), or interleaved (``W = pitch``; the columns repeated to fill
    the slots, each thread on its row's copy: see :func:`slab_offsets` and
    :func:`slab_slot`; a warp's threads never meet in a bank when the
    width divides 32 or is a multiple of it); after the
    histograms are flushed, the same bytes hold per-thread ``mean, m2, min,
    max`` (float64) and ``count, null, nan, +inf, -inf`` (int64), which
    thread ``c < S`` combines over the block's ``R`` threads of column ``c``.

    Atomics: int32 adds on the shared histograms (:func:`profile_rows_general_kernel`
    without ``private``: global int64 adds on ``hist`` instead, and no histograms in
    shared memory); then one int64 add per nonzero bin (of each copy) and
    special count, and one float64 min and max per column and block.

    Writes: as :func:`profile_kernel`, with ``blk_*[c, blockIdx.x]``.
    """
    # (x stands in for the null mask that has_mask False never reads)
    row_pass(
        x, x, False, edges, cmp_edges, n_edges, uniform, True, cells, pitch, hist, special, mins, maxs,
        blk_count, blk_mean, blk_m2,
    )


@cuda.jit(**_ROWS_JIT)
def profile_rows_general_kernel(
    x, null_mask, has_mask, edges, cmp_edges, n_edges, uniform, private, cells, pitch,
    hist, special, mins, maxs, blk_count, blk_mean, blk_m2,
):
    """:func:`profile_rows_kernel` with a null mask and either way of counting the histograms: as
    :func:`profile_general_kernel` is to :func:`profile_kernel`.
    """
    row_pass(
        x, null_mask, has_mask, edges, cmp_edges, n_edges, uniform, private, cells, pitch, hist, special, mins, maxs,
        blk_count, blk_mean, blk_m2,
    )


def rows_layout(x) -> bool:
    """Whether ``x`` (2-D, with ``shape`` / ``strides`` / ``dtype``) is row-major enough for :func:`profile_rows_kernel`.

    True when each row's values are adjacent (unit column stride) and there
    are at least two columns; a slab of columns of a C-contiguous matrix
    qualifies.
    """
    if len(x.shape) != 2 or x.shape[1] < 2 or x.shape[0] < 2:
        return False
    item = np.dtype(x.dtype).itemsize
    return int(x.strides[1]) == item and int(x.strides[0]) >= item * x.shape[1]


def rows_shared_bytes(max_edges: int, slab: int, threads: int, privatize: bool, cells: int = 0,
                      edge_bytes: int = 8) -> int:
    """Dynamic shared memory of a profile kernel block with ``slab`` slots of column data (bytes): the row
    kernel's slab width, or the pitch when interleaved (:func:`profile_shared_bytes` for the column kernel).

    ``edge_bytes`` is the item size of the comparison edges (8, or 4 for float32 edges).
    """
    scratch = 8 * (_F_SLOTS + _I_SLOTS) * threads
    if not privatize:
        return scratch
    return max(scratch, slab * _column_bytes(max_edges, cells, edge_bytes))


#: Cell-table sizes tried, finest first (uint8 entries: bins up to 256).
_CELLS = (256, 64)


def _column_bytes(max_edges: int, cells: int, edge_bytes: int = 8) -> int:
    """Shared memory one privatized column takes: edges (padded to 8 bytes), histogram (int32), cell table (uint8)."""
    return 8 * -(-edge_bytes * max_edges // 8) + 4 * (max_edges + 1) + cells


def _cells_ok(max_edges: int) -> bool:
    return 3 <= max_edges <= 257


def _interleave_pitch(slab: int, column: int, limit: int) -> int:
    """Pitch of a slab's interleaved shared layout (:func:`slab_offsets`), or 1 where none fits.

    Whole banks (a multiple of 32; a slab narrower than 32 fills them with
    copies of its columns) where that fits a block, else the smallest power
    of two at least the slab's width. A pitch wider than the slab takes
    more shared memory than the layout column after column, so it must
    also leave room for :func:`cudrift.kernels._launch.resident_blocks`
    blocks on an SM.
    """
    for pitch in (32 * -(-slab // 32), 1 << (slab - 1).bit_length()):
        # CUDA keeps 1 KiB of an SM's shared memory per resident block (sm_80 and later)
        room = pitch == slab or _launch.resident_blocks() * (pitch * column + 1024) <= _launch.shared_per_sm()
        if pitch * column <= limit and room:
            return pitch
    return 1


def _too_many_edges(max_edges: int, limit: int) -> ValueError:
    """The planners' error for ``privatize=True`` when one column's private histogram does not fit."""
    return ValueError(f"{max_edges} edges per column do not fit {limit} bytes of shared memory; use privatize=False")


def _rows_plan(n_cols: int, max_edges: int, threads: int, privatize: bool | None,
               edge_bytes: int = 8, interleave: bool = True) -> tuple[int, bool, int, int]:
    """Columns per slab, whether slabs keep private histograms, their cell-table size, and the pitch of
    their shared layout (:func:`slab_offsets`: 1 column after column, else interleaved).

    With ``interleave`` the same slabs are interleaved where a pitch fits
    (:func:`_interleave_pitch`); the layout never changes how many slabs
    there are.
    """
    limit = _launch.shared_limit()
    want = min(n_cols, threads)
    private, cells, cap = False, 0, want
    if max_edges > 0 and privatize is not False:
        options = [(c, limit // _column_bytes(max_edges, c, edge_bytes))
                   for c in ((*_CELLS, 0) if _cells_ok(max_edges) else (0,))]
        # the finest table with which a slab still spans the columns (or 8 of them)
        cells, fit = next(((c, f) for c, f in options if f >= min(want, 8)), options[-1])
        # Private histograms pay when a slab still spans a few columns.
        if fit >= min(want, 8) or (privatize and fit >= 1):
            private, cap = True, min(want, fit)
        elif privatize:
            raise _too_many_edges(max_edges, limit)
    n_slabs = -(-n_cols // cap)
    slab = -(-n_cols // n_slabs)
    pitch = 1
    if private and interleave:
        pitch = _interleave_pitch(slab, _column_bytes(max_edges, cells, edge_bytes), limit)
    return slab, private, cells if private else 0, pitch


def profile_shared_bytes(max_edges: int, threads: int, privatize: bool, cells: int = 0, edge_bytes: int = 8,
                         pitch: int = 1) -> int:
    """Dynamic shared memory of one :func:`profile_kernel` block (bytes).

    Parameters
    ----------
    max_edges
        Padded edge count (``edges.shape[1]``).
    threads
        Block size.
    privatize
        Whether the block keeps its own histogram and edges in shared memory.
    cells
        Cell-table size (0: none).
    edge_bytes
        Item size of the comparison edges: 8, or 4 for float32 edges.
    pitch
        Copies of the column's shared data (1, or the interleaved pitch: :func:`_columns_plan`).
    """
    return rows_shared_bytes(max_edges, pitch, threads, privatize, cells, edge_bytes)


def _columns_plan(max_edges: int, threads: int, privatize: bool | None, edge_bytes: int = 8,
                  interleave: bool = True) -> tuple[bool, int, int]:
    """Whether :func:`profile_kernel`'s blocks keep a private histogram, their cell-table size, and the pitch
    of their shared layout (1: one copy of the column's data; else that many copies interleaved, one per lane
    of a warp: :func:`slab_offsets` for a slab of one column).

    With ``interleave`` the copies are taken where they fit (:func:`_interleave_pitch`) with the full
    256-cell table (or with 2 edges, which need none): a coarser table would cost a longer walk per value
    than the bank conflicts the copies save. Otherwise one copy, with the finest table that fits (up to
    1024 cells).
    """
    limit = _launch.shared_limit()
    scratch = rows_shared_bytes(max_edges, 1, threads, False)
    if scratch > limit:
        raise ValueError(f"blocks of {threads} threads need {scratch} bytes of shared memory for their reduction, "
                         f"above the {limit} available; use fewer threads")

    def fits(pitch, cells):
        return rows_shared_bytes(max_edges, pitch, threads, True, cells, edge_bytes) <= limit

    if max_edges == 0 or privatize is False:
        return False, 0, 1
    if not fits(1, 0):
        if privatize:
            raise _too_many_edges(max_edges, limit)
        return False, 0, 1
    ok = _cells_ok(max_edges)
    if interleave and threads >= 32:
        cells = _CELLS[0] if ok else 0
        if ok or max_edges < 3:
            pitch = _interleave_pitch(1, _column_bytes(max_edges, cells, edge_bytes), limit)
            if pitch > 1:
                return True, cells, pitch
    # one copy: room for a fine table
    return True, next((c for c in (1024, *_CELLS) if ok and fits(1, c)), 0), 1


def profile_outputs(n_cols: int, max_edges: int, row_blocks: int, full) -> dict:
    """Freshly initialized outputs of :func:`launch_profile`, allocated by ``full(shape, value, dtype)``.

    ``full`` is ``numpy.full``, ``cupy.full`` or any function of that
    signature; keys are the launcher's parameter names.
    """
    return {
        "hist": full((n_cols, max_edges + 1), 0, np.int64),
        "special": full((n_cols, 4), 0, np.int64),
        "mins": full(n_cols, np.inf, np.float64),
        "maxs": full(n_cols, -np.inf, np.float64),
        "blk_count": full((n_cols, row_blocks), 0, np.int64),
        "blk_mean": full((n_cols, row_blocks), 0.0, np.float64),
        "blk_m2": full((n_cols, row_blocks), 0.0, np.float64),
    }


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
    edges32=None,
    threads: int | None = None,
    privatize: bool | None = None,
    interleave: bool | None = None,
    stream=0,
) -> int:
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
        moments, overwritten; the means relative to one of the column's
        first values (:func:`moment_shift`: add
        :func:`cudrift.kernels._host.moment_shifts` of ``x``'s first
        :data:`SHIFT_ROWS` rows to the merged mean); a block that read a
        finite value past 1e150 (float64 ``x`` only) has mean and M2 NaN: the
        caller takes that column's moments from its sorted values (NaN
        stays NaN through :func:`cudrift.kernels._host.merge_block_moments`,
        and :func:`cudrift.kernels._host.moments_need_sorted` says so for
        it); ``row_blocks`` (their second dimension, e.g.
        :func:`cudrift.kernels._launch.row_blocks` with ``row_major=rows_layout(x)``)
        sets the grid; any value gives the same answer.
    null_mask
        Optional ``(rows, cols)`` bool device array, True where the value is null.
    edges32
        Optional :func:`cudrift.kernels._host.float32_edges` of ``edges`` (device, same shape). With
        float32 ``x`` the kernels then bin, bound and test values in float32
        (same counts, half the shared-memory traffic of the bin search, no
        float64 comparisons); ignored for other dtypes.
    threads
        Block size (default :func:`cudrift.kernels._launch.threads_per_block`).
    privatize
        Keep per-block histograms in shared memory; default: when they fit.
    interleave
        Lay the blocks' shared edges, histograms and cell tables out
        interleaved where they fit (:func:`slab_offsets`): row-major chunks
        by column (no shared-memory bank conflicts when the slab's width
        divides 32 or is a multiple of it, fewer otherwise), other chunks
        as one copy of the column per lane of a warp (none). False keeps
        one copy, column after column (the bank layout before, for A/B timing).
        None (default): interleaved for row-major chunks, one copy for the
        others, as an H200 timed them (2026-11-27: the row kernel 5% faster
        interleaved at 32 columns; the column kernel 1-1.5% slower with its
        32 copies, its bank conflicts not being what limits it).
        Same results either way.
    stream
        Numba stream to launch on (0: the default stream).

    Returns
    -------
    int
        The most rows one thread reads (0 without a launch): the length of
        the longest run of moment sums (:data:`GROUP` 0), which bounds their
        rounding (:func:`cudrift.kernels._host.moments_need_sorted`).
    """
    n_cols = x.shape[1]
    n_rb = blk_count.shape[1]
    if n_cols == 0 or n_rb == 0:
        return 0
    nt = threads or _launch.threads_per_block()
    max_edges = edges.shape[1]
    has_mask = null_mask is not None
    mask = null_mask if has_mask else _no_mask()
    if edges32 is not None and (tuple(edges32.shape) != tuple(edges.shape) or np.dtype(edges32.dtype) != np.float32):
        raise ValueError(f"edges32 must be float32 of the edges' shape {tuple(edges.shape)}, "
                         f"got {np.dtype(edges32.dtype)} {tuple(edges32.shape)}")
    cmp = edges32 if edges32 is not None and np.dtype(x.dtype) == np.float32 else edges
    eb = np.dtype(cmp.dtype).itemsize
    if rows_layout(x):
        interleaved = interleave is None or bool(interleave)  # (None: the row kernel's default)
        slab, private, cells, pitch = _rows_plan(n_cols, max_edges, nt, privatize, eb, interleaved)
        run = _thread_run(x.shape[0], n_rb, max(1, nt // slab))  # (the widest slab's threads read the most)
        for j0 in range(0, n_cols, slab):
            j1 = min(n_cols, j0 + slab)
            width = j1 - j0
            block = width * max(1, nt // width)
            nbytes = rows_shared_bytes(max_edges, width if pitch == 1 else pitch, block, private, cells, eb)

            def cut(a, j0=j0, j1=j1):
                # Numba refuses to slice an array without elements (edges of
                # a chunk without histograms); the kernel never reads those.
                return a if (j0 == 0 and j1 == n_cols) or a.size == 0 else a[j0:j1]

            # (column_range, not x[:, j0:j1]: Numba's slicing walks every row of a view that is not contiguous)
            view = _launch.column_range(x, j0, j1)
            outs = (cut(hist), cut(special), cut(mins), cut(maxs), cut(blk_count), cut(blk_mean), cut(blk_m2))
            if private and not has_mask:
                profile_rows_kernel[n_rb, block, stream, nbytes](
                    view, cut(edges), cut(cmp), cut(n_edges), cut(uniform), cells, pitch, *outs)
            else:
                profile_rows_general_kernel[n_rb, block, stream, nbytes](
                    view, _launch.column_range(mask, j0, j1) if has_mask else mask, has_mask, cut(edges), cut(cmp),
                    cut(n_edges), cut(uniform), private, cells, pitch, *outs)
        return run
    run = _thread_run(x.shape[0], n_rb, nt)
    private, cells, pitch = _columns_plan(max_edges, nt, privatize, eb, interleave is not None and bool(interleave))
    nbytes = profile_shared_bytes(max_edges, nt, private, cells, eb, pitch)
    outs = (hist, special, mins, maxs, blk_count, blk_mean, blk_m2)
    if private and not has_mask:
        profile_kernel[(n_cols, n_rb), nt, stream, nbytes](x, edges, cmp, n_edges, uniform, cells, pitch, *outs)
    else:
        profile_general_kernel[(n_cols, n_rb), nt, stream, nbytes](
            x, mask, has_mask, edges, cmp, n_edges, uniform, private, cells, pitch, *outs)
    return run


def _thread_run(n_rows: int, row_blocks: int, per_step: int) -> int:
    """The most rows one thread reads: ``ceil(rows / (row blocks * rows a block reads per step))``; refused
    past what its 32-bit counts hold (:func:`read_column`)."""
    run = -(-int(n_rows) // (int(row_blocks) * int(per_step)))
    if run > _THREAD_ROWS:
        raise ValueError(f"{n_rows} rows in {row_blocks} row blocks: a thread would read {run} rows, past the "
                         f"{_THREAD_ROWS} its 32-bit counts hold; launch more row blocks")
    return run
