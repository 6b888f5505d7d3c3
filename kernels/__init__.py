"""Numba CUDA kernels, installed as ``cudrift.kernels``.

A leaf package: it imports ``numba.cuda`` (through one shim module), ``math``
and NumPy dtypes, never ``cudrift``. The kernels arrive with the GPU path.
"""
