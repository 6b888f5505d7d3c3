"""Device helpers shared by the block-wide tree reductions of the kernels."""

from __future__ import annotations

from ._cuda import cuda


@cuda.jit(device=True, inline=True)
def tree_start(nt):
    """Largest power of two below ``nt`` (0 for ``nt == 1``): the first stride of a tree reduction.

    Block sizes need not be powers of two; starting at this stride, the first
    step folds the part above the power of two (threads with ``t + s >= nt``
    have no partner and skip that step).
    """
    s = 1
    while s < nt:
        s *= 2
    return s // 2
