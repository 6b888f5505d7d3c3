"""Unbiased RBF-kernel MMD² for many labelings of one pooled sample, tile by tile.

With the pooled points ``z`` (``N x d``, centered by the caller as
``cudrift.stats.mmd`` centers them), ``K[i, j] = exp(gamma |z_i - z_j|^2)``
off the diagonal and 0 on it, and a 0/1 labeling ``s`` marking the ``n``
points of the first sample (``m = N - n``):

    s^T K s = sum over first-sample pairs,   r = K 1 (row sums),
    MMD²(s) = s^T K s / (n (n-1)) + (1^T r - 2 s^T r + s^T K s) / (m (m-1))
              - 2 (s^T r - s^T K s) / (n m).

:func:`mmd_tiles_kernel` accumulates ``r`` and ``s_p^T K s_p`` for every
labeling ``p`` at once from ``TILE x TILE`` tiles of ``K`` held in shared
memory (no ``N x N`` matrix is ever stored); :func:`mmd_finalize_kernel`
forms MMD² per labeling. The permutation p-value is a count on the host
(:func:`cudrift.kernels._host.mmd_pvalue`).
"""

from __future__ import annotations

import math

import numpy as np

from . import _launch
from ._cuda import cuda, float64

__all__ = ["mmd_tiles_kernel", "mmd_finalize_kernel", "launch_mmd", "TILE"]

#: Points per tile side, and the tile kernel's block size.
TILE = _launch.MMD_TILE
_CHUNK = _launch.MMD_FEATURE_CHUNK
# Row stride of the shared kernel tile: one more than TILE so that threads
# walking their own rows hit different banks. A module constant because a
# shared array's shape must be known at compile time.
_KT_STRIDE = TILE + 1


@cuda.jit(device=True, inline=True)
def _tile_pair(q, n_tiles):
    """The ``q``-th pair ``(a, b)``, ``a <= b``, of the upper triangle of tiles, row by row."""
    ta = 0
    rem = q
    while rem >= n_tiles - ta:
        rem -= n_tiles - ta
        ta += 1
    return ta, ta + rem


@cuda.jit
def mmd_tiles_kernel(z, labels, gamma, row_sums, quad):
    """Row sums of ``K`` and ``s_p^T K s_p`` for every labeling, from tiles of ``K``.

    Thread mapping: block = one tile pair ``(a, b)``, ``a <= b``
    (``blockIdx.x`` strides over the pairs); block size must be :data:`TILE`.
    While the tile is built, thread ``t`` owns row ``a * TILE + t`` of it;
    while it is read, thread ``t`` owns labelings ``t, t + TILE, ...``.

    Shared memory: the ``TILE x TILE`` kernel tile (rows padded by one so
    that threads walking their own rows hit different banks) and
    ``TILE x 16`` features of tile ``b``'s points at a time. Squared
    distances are summed feature by feature in order, as the CPU twin sums
    them for up to 16 features.

    Atomics: float64 adds on ``row_sums`` (each row gets one per tile pair
    it is in) and on ``quad`` (one per labeling and tile pair); an
    off-diagonal pair counts twice, once for its mirror image.

    Writes: adds into ``row_sums[i]`` and ``quad[p]`` (caller zeroes both).
    """
    t = cuda.threadIdx.x
    n = z.shape[0]
    d = z.shape[1]
    n_perm = labels.shape[1]
    n_tiles = (n + TILE - 1) // TILE
    n_pairs = n_tiles * (n_tiles + 1) // 2
    kt = cuda.shared.array((TILE, _KT_STRIDE), dtype=float64)
    zb = cuda.shared.array((TILE, _CHUNK), dtype=float64)
    za = cuda.local.array(_CHUNK, dtype=float64)
    sb = cuda.local.array(TILE, dtype=float64)

    for q in range(cuda.blockIdx.x, n_pairs, cuda.gridDim.x):
        ta, tb = _tile_pair(q, n_tiles)
        a0 = ta * TILE
        b0 = tb * TILE
        i = a0 + t
        n_b = min(TILE, n - b0)
        for j in range(TILE):
            kt[t, j] = 0.0
        for f0 in range(0, d, _CHUNK):
            fl = min(_CHUNK, d - f0)
            if t < n_b:
                for f in range(fl):
                    zb[t, f] = z[b0 + t, f0 + f]
            if i < n:
                for f in range(fl):
                    za[f] = z[i, f0 + f]
            cuda.syncthreads()
            if i < n:
                for j in range(n_b):
                    acc = kt[t, j]
                    for f in range(fl):
                        diff = za[f] - zb[j, f]
                        acc += diff * diff
                    kt[t, j] = acc
            # zb is restaged by the next feature chunk.
            cuda.syncthreads()
        for j in range(TILE):
            if i < n and j < n_b and not (ta == tb and j == t):
                kt[t, j] = math.exp(gamma * kt[t, j])
            else:
                # Padding and the unbiased estimate's k(z_i, z_i) count as 0.
                kt[t, j] = 0.0
        cuda.syncthreads()

        if i < n:
            r = 0.0
            for j in range(TILE):
                r += kt[t, j]
            cuda.atomic.add(row_sums, i, r)
        if ta != tb and t < n_b:
            r = 0.0
            for ii in range(TILE):
                r += kt[ii, t]
            cuda.atomic.add(row_sums, b0 + t, r)
        weight = 1.0 if ta == tb else 2.0
        n_a = min(TILE, n - a0)
        for p in range(t, n_perm, TILE):
            for j in range(TILE):
                sb[j] = labels[b0 + j, p] if j < n_b else 0.0
            acc = 0.0
            for ii in range(n_a):
                s_i = labels[a0 + ii, p]
                if s_i != 0:
                    u = 0.0
                    for j in range(TILE):
                        u += kt[ii, j] * sb[j]
                    acc += s_i * u
            cuda.atomic.add(quad, p, weight * acc)
        # The next tile pair overwrites kt.
        cuda.syncthreads()


@cuda.jit
def mmd_finalize_kernel(labels, row_sums, quad, n_x, mmd2):
    """Unbiased MMD² per labeling from the row sums and quadratic forms.

    Thread mapping: one thread per labeling ``p`` (grid-stride); each sums
    ``1^T r`` and ``s_p^T r`` over the ``N`` rows in order (consecutive
    threads read consecutive labelings of one row).

    Shared memory: none. Atomics: none.

    Writes: ``mmd2[p]``.
    """
    n = row_sums.shape[0]
    m = n - n_x
    for p in range(cuda.grid(1), labels.shape[1], cuda.gridsize(1)):
        total = 0.0
        s_r = 0.0
        for i in range(n):
            r = row_sums[i]
            total += r
            s_r += labels[i, p] * r
        q = quad[p]
        xx = q / (n_x * (n_x - 1.0))
        yy = (total - 2.0 * s_r + q) / (m * (m - 1.0))
        xy = (s_r - q) / (n_x * np.float64(m))
        mmd2[p] = xx + yy - 2.0 * xy


def launch_mmd(z, labels, n_x: int, gamma: float, row_sums, quad, mmd2, *, stream=0) -> None:
    """MMD² of every labeling into caller-allocated device outputs; asynchronous.

    Parameters
    ----------
    z
        ``(N, d)`` float64 pooled points (first sample first, centered).
    labels
        ``(N, P)`` device array of 0/1 (any numeric dtype): column ``p`` marks
        the ``n_x`` points labeled as the first sample (column 0 the observed
        labeling).
    n_x
        Size of the first sample (``2 <= n_x <= N - 2``).
    gamma
        ``-1 / (2 sigma**2)``.
    row_sums, quad
        ``(N,)`` and ``(P,)`` float64 scratch, zeroed by the caller.
    mmd2
        ``(P,)`` float64 output, overwritten.
    stream
        Numba stream to launch on (0: the default stream).
    """
    n = z.shape[0]
    mmd_tiles_kernel[_launch.mmd_blocks(n), TILE, stream](z, labels, gamma, row_sums, quad)
    nt = _launch.threads_per_block()
    mmd_finalize_kernel[_launch.blocks_1d(labels.shape[1], nt), nt, stream](labels, row_sums, quad, n_x, mmd2)
