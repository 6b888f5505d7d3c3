"""Exact two-sample rank statistics from two sorted columns, by merge path (no concatenate-and-sort).

All statistics are functions of the counting functions ``A(x) = #{a <= x}``
and ``B(x) = #{b <= x}`` (``a`` the reference, ``b`` the current sample) read
at the distinct values ``z`` of the pooled sample, as
``cudrift.stats._grid`` defines them: the counts are read at the last
element of each run of equal values. Merging the two sorted arrays (the
reference first on ties) visits the pooled values in order; the merged
sequence is cut into tiles by binary search on its diagonals (merge path:
:func:`rank_splits_kernel`, one thread per tile boundary, all searches at
once), each tile is staged in shared memory and cut again per thread, so
every thread walks a contiguous stretch of the merged order without any
thread having merged what precedes it.

At each distinct value ``v`` (``m = len(a)``, ``n = len(b)``, ``N = m + n``),
with ``A, B`` the counts at ``v``, ``A', B'`` those just below it,
``a = A - A'``, ``b = B - B'``, ``t = a + b``, ``D = n A - m B`` and
``D' = n A' - m B'``, and ``w`` the distance to the next distinct value:

* KS: the extremes of the exact integer key ``D`` (with ``A, B`` there);
* Wasserstein-1 / energy: ``|A/m - B/n| w`` and ``(A/m - B/n)**2 w``;
* Cramér–von Mises (SciPy's midrank ``T``, in the cancellation-free form of
  ``cudrift.stats.rank._cvm_bounds``): ``t (D'^2 + D' D + D^2)`` and
  ``t (a - b)(m a - n b) - (m a + n b)``;
* Anderson–Darling (SciPy's midrank ``A2akN``): ``t ((D' + D)/2)**2 /
  (L R + t (N - t)/4)`` with ``L = A' + B'`` and ``R = N - A - B``.

Each block writes its partial sums and KS extremes; the host adds them and
forms the statistics (:func:`cudrift.kernels._host.rank_statistics`).
"""

from __future__ import annotations

import math

import numpy as np

from . import _launch
from ._cuda import cuda, float64, int64
from ._host import WANT_AD, WANT_ALL, WANT_CVM, WANT_DISTANCES
from ._reduce import tree_start
from .quantiles import lower_bound

__all__ = [
    "rank_kernel",
    "rank_splits_kernel",
    "launch_rank",
    "launch_rank_many",
    "split_offsets",
    "merge_split",
    "rank_shared_bytes",
    "rank_tiles",
    "N_FLOAT_PARTIALS",
    "N_INT_PARTIALS",
]

#: Float64 partial sums per block: Wasserstein-1, energy integral, CvM main
#: sum, CvM tie term, Anderson-Darling sum.
N_FLOAT_PARTIALS = 5
#: Int64 KS entries per block: max key, A and B there, min key, A and B there.
N_INT_PARTIALS = 6


@cuda.jit(device=True, inline=True)
def merge_split(a, a0, na, b, b0, nb, d):
    """How many of the first ``d`` merged values come from ``a`` (``a[a0:a0+na]`` wins ties).

    The merge-path search: the answer ``i`` is the smallest one such that
    ``a[a0 + i]`` comes after ``b[b0 + d - i - 1]`` in the merged order.
    """
    lo = max(0, d - nb)
    hi = min(d, na)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[a0 + mid] <= b[b0 + d - mid - 1]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@cuda.jit(device=True, inline=True)
def _head(sh, off, local, n_local, arr, glob, n):
    """The next unmerged value of one sample: from shared memory inside the tile, else global, else +inf."""
    if local < n_local:
        return sh[off + local]
    if glob < n:
        return np.float64(arr[glob])
    return math.inf


@cuda.jit(device=True, inline=True)
def _count_below(arr, n, sh, off, n_local, g0, v):
    """``#{arr < v}`` for a value ``v`` of the current tile, whose part of ``arr`` is ``sh[off:off+n_local]``.

    Everything of ``arr`` after the tile is ``>= v``, and everything before
    it is ``< v`` unless the run of ``v`` reaches back past the tile's start
    (``arr[g0 - 1] == v``); only then is the global array searched.
    """
    if g0 == 0 or arr[g0 - 1] < v:
        return g0 + lower_bound(sh[off : off + n_local], n_local, v)
    return lower_bound(arr, n, v)


@cuda.jit
def rank_splits_kernel(a_all, a_bounds, b_all, b_bounds, span, s_off, splits):
    """Merge-path splits of every tile boundary of every column pair.

    Column ``c = blockIdx.y`` pairs ``a_all[a_bounds[2c]:a_bounds[2c + 1]]``
    with ``b_all[b_bounds[2c]:b_bounds[2c + 1]]``; ``splits[s_off[c] + k]`` is how many
    values of its ``a`` are among the first ``k * span`` merged (boundaries
    past the end take the total). Thread mapping: the column's boundaries
    are spread over its row of blocks (grid-stride). No shared memory, no
    atomics.
    """
    c = cuda.blockIdx.y
    a = a_all[a_bounds[2 * c] : a_bounds[2 * c + 1]]
    b = b_all[b_bounds[2 * c] : b_bounds[2 * c + 1]]
    na = a.shape[0]
    nb = b.shape[0]
    n_all = na + nb
    s0 = s_off[c]
    n_split = s_off[c + 1] - s0
    for k in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, n_split, cuda.gridDim.x * cuda.blockDim.x):
        splits[s0 + k] = merge_split(a, 0, na, b, 0, nb, min(k * span, n_all))


@cuda.jit
def rank_kernel(a_all, a_bounds, b_all, b_bounds, items, splits, s_off, want, fpart, ipart):
    """Per-block partial rank statistics of sorted column pairs, all columns in one launch.

    Column ``c = blockIdx.y`` pairs sorted ``a = a_all[a_bounds[2c]:a_bounds[2c + 1]]``
    (reference) with sorted ``b = b_all[b_bounds[2c]:b_bounds[2c + 1]]`` (current).

    Thread mapping: the column's merged order (length ``N``) is cut into
    tiles of ``T * items`` values, whose merge-path splits are
    ``splits[s_off[c]:]`` (:func:`rank_splits_kernel`); block
    ``blockIdx.x`` of the column takes tiles ``blockIdx.x, blockIdx.x +
    gridDim.x, ...``; thread ``t`` walks merged
    positions ``t * items .. (t + 1) * items - 1`` of the tile and evaluates
    the statistics at each position that ends a run of equal values. The
    counts below a thread's first run come from its start position when
    the value before it differs (no search), else from a search in the tile
    (global only when the run began before the tile).

    Shared memory (dynamic, viewed as float64 / int64): the tile's values of
    ``a`` then of ``b`` (``T * items`` float64), then per thread the five
    float partial sums and the six KS entries for the block reduction.

    Atomics: none; every block writes its own row of ``fpart`` / ``ipart``.

    ``want`` (bits :data:`WANT_DISTANCES`, :data:`WANT_CVM`,
    :data:`WANT_AD`) says which float sums to accumulate; the others stay 0.

    Writes: ``fpart[c, blockIdx.x, :]`` (see :data:`N_FLOAT_PARTIALS`) and
    ``ipart[c, blockIdx.x, :]`` (see :data:`N_INT_PARTIALS`). KS entries start
    at key 0 with ``A = B = 0``: past the data both CDFs are 1, so neither
    extreme is on the wrong side of 0. Requires ``len(a), len(b) >= 1``,
    finite values and ``len(a) * len(b) < 2**63``.
    """
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    col = cuda.blockIdx.y
    a = a_all[a_bounds[2 * col] : a_bounds[2 * col + 1]]
    b = b_all[b_bounds[2 * col] : b_bounds[2 * col + 1]]
    sp = splits[s_off[col] : s_off[col + 1]]
    na = a.shape[0]
    nb = b.shape[0]
    n_all = na + nb
    span = nt * items
    n_tiles = (n_all + span - 1) // span

    f64 = cuda.shared.array(0, dtype=float64)
    i64 = cuda.shared.array(0, dtype=int64)
    fo = span  # float scratch after the tile values
    io = fo + N_FLOAT_PARTIALS * nt  # int scratch, in 8-byte units

    want_dist = (want & WANT_DISTANCES) != 0
    want_cvm = (want & WANT_CVM) != 0
    want_ad = (want & WANT_AD) != 0
    counts_below = want_cvm or want_ad
    fm = np.float64(na)
    fn = np.float64(nb)
    inv_mn = 1.0 / (fm * fn)
    f_all = np.float64(n_all)
    w1 = 0.0
    energy = 0.0
    cvm_main = 0.0
    cvm_ties = 0.0
    ad = 0.0
    k_max = 0
    a_max = 0
    b_max = 0
    k_min = 0
    a_min = 0
    b_min = 0

    for tile in range(cuda.blockIdx.x, n_tiles, cuda.gridDim.x):
        d_start = tile * span
        d_stop = min(d_start + span, n_all)
        ia0 = sp[tile]
        ib0 = d_start - ia0
        la = sp[tile + 1] - ia0
        lb = (d_stop - sp[tile + 1]) - ib0
        for q in range(t, la, nt):
            f64[q] = np.float64(a[ia0 + q])
        for q in range(t, lb, nt):
            f64[la + q] = np.float64(b[ib0 + q])
        cuda.syncthreads()

        d0 = min(t * items, la + lb)
        d1 = min(d0 + items, la + lb)
        if d0 < d1:
            i = merge_split(f64, 0, la, f64, la, lb, d0)
            j = d0 - i
            # The run of the first value starts here when the merged value
            # just before differs: the counts below it are the start position.
            before = -math.inf
            if i > 0:
                before = f64[i - 1]
            elif ia0 > 0:
                before = np.float64(a[ia0 - 1])
            if j > 0:
                before = max(before, f64[la + j - 1])
            elif ib0 > 0:
                before = max(before, np.float64(b[ib0 - 1]))
            # The next unmerged value of each sample, kept in registers: one
            # shared load per merged value instead of four.
            ha = _head(f64, 0, i, la, a, ia0 + i, na)
            hb = _head(f64, la, j, lb, b, ib0 + j, nb)
            known = min(ha, hb) > before
            a_prev = ia0 + i
            b_prev = ib0 + j
            for _ in range(d0, d1):
                if i < la and (j >= lb or ha <= hb):
                    v = ha
                    i += 1
                    ha = _head(f64, 0, i, la, a, ia0 + i, na)
                else:
                    v = hb
                    j += 1
                    hb = _head(f64, la, j, lb, b, ib0 + j, nb)
                ca = ia0 + i
                cb = ib0 + j
                nxt = min(ha, hb)
                if nxt > v:
                    if counts_below and not known:
                        # The run started in an earlier thread or tile.
                        a_prev = _count_below(a, na, f64, 0, la, ia0, v)
                        b_prev = _count_below(b, nb, f64, la, lb, ib0, v)
                        known = True
                    key = nb * ca - na * cb
                    if key > k_max:
                        k_max = key
                        a_max = ca
                        b_max = cb
                    if key < k_min:
                        k_min = key
                        a_min = ca
                        b_min = cb
                    if want_dist and nxt < math.inf:
                        # A/m - B/n from the exact integer key: zero where the
                        # CDFs meet, whatever the compiler contracts into FMAs
                        # (ca * inv_m - cb * inv_n left 1e-17 on equal samples).
                        diff = np.float64(key) * inv_mn
                        width = nxt - v
                        w1 += abs(diff) * width
                        energy += diff * diff * width
                    if counts_below:
                        ma = np.float64(ca - a_prev)
                        mb = np.float64(cb - b_prev)
                        tt = ma + mb
                        dp = np.float64(nb * a_prev - na * b_prev)
                        dc = np.float64(key)
                        if want_cvm:
                            cvm_main += tt * (dp * dp + dp * dc + dc * dc)
                            cvm_ties += tt * (ma - mb) * (fm * ma - fn * mb) - (fm * ma + fn * mb)
                        if want_ad:
                            den = np.float64(a_prev + b_prev) * (f_all - np.float64(ca + cb)) + tt * (f_all - tt) / 4.0
                            if den > 0.0:
                                h = (dp + dc) / 2.0
                                ad += tt * (h * h) / den
                        a_prev = ca
                        b_prev = cb
        # The next tile overwrites the staged values.
        cuda.syncthreads()

    f64[fo + t] = w1
    f64[fo + nt + t] = energy
    f64[fo + 2 * nt + t] = cvm_main
    f64[fo + 3 * nt + t] = cvm_ties
    f64[fo + 4 * nt + t] = ad
    i64[io + t] = k_max
    i64[io + nt + t] = a_max
    i64[io + 2 * nt + t] = b_max
    i64[io + 3 * nt + t] = k_min
    i64[io + 4 * nt + t] = a_min
    i64[io + 5 * nt + t] = b_min
    cuda.syncthreads()
    s = tree_start(nt)
    while s > 0:
        if t < s and t + s < nt:
            o = t + s
            for q in range(N_FLOAT_PARTIALS):
                f64[fo + q * nt + t] += f64[fo + q * nt + o]
            # Equal keys are equal differences; keeping the held entry makes the choice deterministic.
            if i64[io + o] > i64[io + t]:
                i64[io + t] = i64[io + o]
                i64[io + nt + t] = i64[io + nt + o]
                i64[io + 2 * nt + t] = i64[io + 2 * nt + o]
            if i64[io + 3 * nt + o] < i64[io + 3 * nt + t]:
                i64[io + 3 * nt + t] = i64[io + 3 * nt + o]
                i64[io + 4 * nt + t] = i64[io + 4 * nt + o]
                i64[io + 5 * nt + t] = i64[io + 5 * nt + o]
        cuda.syncthreads()
        s //= 2

    if t == 0:
        row = cuda.blockIdx.x
        for q in range(N_FLOAT_PARTIALS):
            fpart[col, row, q] = f64[fo + q * nt]
        for q in range(N_INT_PARTIALS):
            ipart[col, row, q] = i64[io + q * nt]


def rank_shared_bytes(threads: int, items: int) -> int:
    """Dynamic shared memory of one :func:`rank_kernel` block (bytes)."""
    return 8 * (threads * items + (N_FLOAT_PARTIALS + N_INT_PARTIALS) * threads)


def rank_tiles(n_merged: int, threads: int, items: int) -> int:
    """Tiles of ``threads * items`` merged values; ``splits`` has one more entry than this."""
    span = threads * items
    return (n_merged + span - 1) // span


def split_offsets(n_merged, threads: int, items: int) -> np.ndarray:
    """Where each column's tile splits start in the shared ``splits`` array (one more entry than columns)."""
    counts = [rank_tiles(int(n), threads, items) + 1 for n in n_merged]
    return np.concatenate(([0], np.cumsum(counts, dtype=np.int64))).astype(np.int64)


def launch_rank_many(a_all, a_bounds, b_all, b_bounds, fpart, ipart, splits, s_off, *, threads: int | None = None,
                     items: int | None = None, want: int = WANT_ALL, stream=0) -> None:
    """Partial rank statistics of many sorted column pairs in one launch into caller-allocated outputs; asynchronous.

    Parameters
    ----------
    a_all, b_all
        1-D float32/float64 device arrays holding every column's sorted,
        finite values (reference, current).
    a_bounds, b_bounds
        ``(2 * cols,)`` int64 device arrays of ``(start, stop)`` pairs:
        column ``c`` is ``a_all[a_bounds[2c]:a_bounds[2c + 1]]``; every
        column non-empty on both sides.
    fpart
        ``(cols, blocks, 5)`` float64 (:data:`N_FLOAT_PARTIALS`), overwritten;
        ``blocks`` (e.g. :func:`cudrift.kernels._launch.rank_blocks` of the
        largest column) is the grid's width per column.
    ipart
        ``(cols, blocks, 6)`` int64 (:data:`N_INT_PARTIALS`), overwritten.
    splits, s_off
        int64 scratch of ``s_off[-1]`` entries and the device copy of
        :func:`split_offsets` for these columns and geometry.
    threads
        Block size (default :func:`cudrift.kernels._launch.threads_per_block`).
    items
        Merged values per thread (default :func:`cudrift.kernels._launch.rank_items`).
    want
        Which float sums to accumulate: :data:`WANT_ALL` or any union of
        :data:`WANT_DISTANCES`, :data:`WANT_CVM`, :data:`WANT_AD` (the KS
        entries are always written); the sums not wanted are left 0.
    stream
        Numba stream to launch on (0: the default stream).
    """
    n_cols = fpart.shape[0]
    if n_cols == 0:
        return
    nt = threads or _launch.threads_per_block()
    per = items or _launch.rank_items()
    blocks = fpart.shape[1]
    rank_splits_kernel[(blocks, n_cols), nt, stream](a_all, a_bounds, b_all, b_bounds, nt * per, s_off, splits)
    rank_kernel[(blocks, n_cols), nt, stream, rank_shared_bytes(nt, per)](
        a_all, a_bounds, b_all, b_bounds, per, splits, s_off, want, fpart, ipart
    )


def launch_rank(a, b, fpart, ipart, *, threads: int | None = None, items: int | None = None, want: int = WANT_ALL,
                stream=0) -> None:
    """Partial rank statistics of one sorted pair (:func:`launch_rank_many` for one column); asynchronous.

    Parameters
    ----------
    a, b
        Sorted, finite, non-empty 1-D float32/float64 device arrays
        (reference, current).
    fpart
        ``(blocks, 5)`` float64 (:data:`N_FLOAT_PARTIALS`), overwritten; its
        first dimension is the grid size (e.g.
        :func:`cudrift.kernels._launch.rank_blocks`).
    ipart
        ``(blocks, 6)`` int64 (:data:`N_INT_PARTIALS`), overwritten.
    threads, items, want, stream
        As :func:`launch_rank_many`.
    """
    nt = threads or _launch.threads_per_block()
    per = items or _launch.rank_items()
    s_off = split_offsets([a.shape[0] + b.shape[0]], nt, per)
    a_off = cuda.to_device(np.array([0, a.shape[0]], dtype=np.int64), stream=stream)
    b_off = cuda.to_device(np.array([0, b.shape[0]], dtype=np.int64), stream=stream)
    splits = cuda.device_array(int(s_off[-1]), dtype=np.int64, stream=stream)
    launch_rank_many(a, a_off, b, b_off, fpart.reshape(1, *fpart.shape), ipart.reshape(1, *ipart.shape), splits,
                     cuda.to_device(s_off, stream=stream), threads=nt, items=per, want=want, stream=stream)
