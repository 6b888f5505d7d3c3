"""Doctest collection of the backends package (``--doctest-modules`` walks ``src/cudrift``).

The GPU modules import only where the GPU path is usable: ``_gpu`` raises
ImportError by design elsewhere (that is how ``gpu_status`` learns why), and
the modules next to it need CuPy or numba-cuda. Where the GPU path is not
usable they are left out of collection instead of failing it.
"""

from cudrift.backends import gpu_status

collect_ignore = [] if gpu_status()[0] else ["_gpu.py", "_gpu_source.py", "_gpu_summary.py"]
