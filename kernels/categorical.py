"""Category counts from integer codes, per column of a (rows x columns) chunk.

Codes index each column's dictionary: ``0 <= code < n_categories[c]``, and
``-1`` is null. The Python layer maps keys to codes (Arrow dictionary
arrays, cuDF categoricals and ``factorize`` give them directly) and keys back
to the counts; the kernel only counts.
"""

from __future__ import annotations

import numpy as np

from . import _launch
from ._cuda import cuda, int32, int64
from ._reduce import tree_start

__all__ = ["categorical_kernel", "launch_categorical", "categorical_shared_bytes"]

# int64 slots per thread in the reduction scratch: nulls, invalid codes.
_I_SLOTS = 2


@cuda.jit
def categorical_kernel(codes, n_categories, shared_slots, counts, other):
    """Count codes per column.

    Thread mapping: block ``(c, rb)`` = column ``c`` (``blockIdx.x``) and row
    block ``rb`` (``blockIdx.y``); thread ``t`` reads rows
    ``rb * T + t + k * gridDim.y * T``.

    Shared memory (dynamic): per thread the null and invalid-code counts for
    the block reduction (int64), then, when ``shared_slots > 0``, the block's
    private int32 count per category of column ``c``.

    Atomics: int32 adds on the private counts (int64 adds on ``counts``
    directly when the dictionary does not fit); afterwards one int64 add per
    non-zero category and per non-zero null / invalid total.

    Writes: adds into ``counts[c, :n_categories[c]]`` and ``other[c, 0]``
    (codes equal to -1) and ``other[c, 1]`` (codes outside
    ``[-1, n_categories[c])``, which are not counted anywhere else).
    """
    c = cuda.blockIdx.x
    rb = cuda.blockIdx.y
    n_rb = cuda.gridDim.y
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_rows = codes.shape[0]
    k = n_categories[c]
    private = shared_slots > 0

    i64 = cuda.shared.array(0, dtype=int64)
    i32 = cuda.shared.array(0, dtype=int32)
    co = 2 * _I_SLOTS * nt  # private counts, in 4-byte units

    if private:
        for q in range(t, k, nt):
            i32[co + q] = 0
    cuda.syncthreads()

    n_null = 0
    n_bad = 0
    for r in range(rb * nt + t, n_rows, n_rb * nt):
        code = np.int64(codes[r, c])
        if code == -1:
            n_null += 1
        elif code < 0 or code >= k:
            n_bad += 1
        elif private:
            cuda.atomic.add(i32, co + code, 1)
        else:
            cuda.atomic.add(counts, (c, code), 1)

    i64[t] = n_null
    i64[nt + t] = n_bad
    cuda.syncthreads()
    s = tree_start(nt)
    while s > 0:
        if t < s and t + s < nt:
            i64[t] += i64[t + s]
            i64[nt + t] += i64[nt + t + s]
        cuda.syncthreads()
        s //= 2

    if t == 0:
        if i64[0] != 0:
            cuda.atomic.add(other, (c, 0), i64[0])
        if i64[nt] != 0:
            cuda.atomic.add(other, (c, 1), i64[nt])
    if private:
        for q in range(t, k, nt):
            if i32[co + q] != 0:
                cuda.atomic.add(counts, (c, q), np.int64(i32[co + q]))


def categorical_shared_bytes(max_categories: int, threads: int, privatize: bool) -> int:
    """Dynamic shared memory of one :func:`categorical_kernel` block (bytes)."""
    scratch = 8 * _I_SLOTS * threads
    return scratch + (4 * max_categories if privatize else 0)


def launch_categorical(
    codes,
    n_categories,
    counts,
    other,
    row_blocks: int | None = None,
    *,
    threads: int | None = None,
    privatize: bool | None = None,
    stream=0,
) -> None:
    """Count integer codes per column into caller-allocated device outputs; asynchronous.

    Parameters
    ----------
    codes
        ``(rows, cols)`` signed integer device array, any strides; -1 is null.
    n_categories
        ``(cols,)`` int64 dictionary sizes.
    counts
        ``(cols, max_categories)`` int64, added to (zero it for a fresh chunk);
        ``max_categories >= n_categories.max()``.
    other
        ``(cols, 2)`` int64, added to: nulls and codes out of range.
    row_blocks
        Row blocks per column (default :func:`cudrift.kernels._launch.row_blocks`).
    threads
        Block size (default :func:`cudrift.kernels._launch.threads_per_block`).
    privatize
        Count in shared memory per block; default: when the dictionary fits.
    stream
        Numba stream to launch on (0: the default stream).
    """
    n_rows, n_cols = codes.shape
    if n_cols == 0:
        return
    nt = threads or _launch.threads_per_block()
    n_rb = row_blocks or _launch.row_blocks(n_rows, n_cols, nt)
    max_categories = counts.shape[1]
    if privatize is None:
        privatize = categorical_shared_bytes(max_categories, nt, True) <= _launch.shared_limit()
    slots = max_categories if privatize else 0
    nbytes = categorical_shared_bytes(max_categories, nt, privatize)
    categorical_kernel[(n_cols, n_rb), nt, stream, nbytes](codes, n_categories, slots, counts, other)
