"""Numba CUDA kernels, installed as ``cudrift.kernels``.

A leaf package: it imports ``numba.cuda`` (only through :mod:`._cuda`),
``math`` and NumPy dtypes, never ``cudrift``. Importing the package itself
imports nothing, so machines without ``numba-cuda`` can still use
:mod:`._host`.

Modules
-------
profile
    One fused pass per chunk: histogram counts, null / NaN / ±inf counts,
    min / max and per-block moments of every column.
categorical
    Category counts from integer codes.
quantiles
    Rank-spaced points with exact counts, and runs of equal values, of a
    sorted column (the quantile sketch's level-0 summary).
rank
    KS, Wasserstein-1, energy, Cramér–von Mises and Anderson–Darling partial
    results of two sorted columns by merge path.
mmd
    Unbiased RBF-kernel MMD² for many labelings at once, tile by tile.
_launch
    Launch geometry (block and grid sizes, tile constants).
_host
    NumPy finishing steps for the kernels' per-block outputs.

Every launcher takes device arrays (Numba device arrays or anything with
``__cuda_array_interface__``, such as CuPy arrays) and caller-allocated
outputs, launches asynchronously on the given stream and returns None.
Set ``NUMBA_ENABLE_CUDASIM=1`` before Numba is imported to run the kernels
in Numba's CUDA simulator.
"""
