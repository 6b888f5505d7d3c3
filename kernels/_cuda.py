"""The one module that imports the Numba CUDA front end.

Every kernel module takes ``cuda`` from here, so moving to another Numba
CUDA front end (the built-in ``numba.cuda``, the ``numba-cuda`` package, a
fork) is a change to the import below and nothing else. The name must stay
``cuda`` in the kernel modules: the simulator swaps a module of that name
into each kernel's globals while it runs.

The element types of shared and local arrays (``float64``, ``int32``,
``int64``, ``uint8``) come from here too: the simulator does not accept NumPy scalar
types there.

``NUMBA_ENABLE_CUDASIM=1`` has to be in the environment before Numba is first
imported for the simulator to be used; :data:`SIMULATOR` records what Numba
decided.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as _np

if not hasattr(_np, "row_stack"):
    # numba-cuda 0.30 registers an overload for np.row_stack, an alias of
    # np.vstack that NumPy 2.5 removed, while loading its typing registries
    # at the first kernel compile; without the alias every compile fails
    # with "module 'numpy' has no attribute 'row_stack'" (seen on an H200
    # with numba-cuda 0.30.4 and NumPy 2.5.2). Restore the alias as it was.
    _np.row_stack = _np.vstack

from numba import config as _config
from numba import cuda
from numba.cuda import boolean, float64, int32, int64, uint8

__all__ = ["cuda", "boolean", "float64", "int32", "int64", "uint8", "SIMULATOR", "device_limits", "shared_per_sm"]

#: True when kernels run in Numba's CUDA simulator (one Python thread per CUDA thread).
SIMULATOR: bool = bool(_config.ENABLE_CUDASIM)

# The simulator has no device attributes; these stand in for a small GPU so
# that launch geometry still spreads work over a few blocks.
_SIM_SM_COUNT = 2
_SIM_SHARED_BYTES = 48 * 1024
# per SM: an H100's
_SIM_SHARED_PER_SM = 228 * 1024


#: The device attribute :func:`shared_per_sm` reads (numba-cuda looks up ``CU_DEVICE_ATTRIBUTE_`` + this).
SM_SHARED_ATTRIBUTE = "MAX_SHARED_MEMORY_PER_MULTIPROCESSOR"


@lru_cache(maxsize=None)
def _limits_of(device_id: int) -> tuple[int, int, int]:
    """``(sm_count, shared per block, shared per SM)`` of a device, queried once."""
    dev = cuda.get_current_device()
    return int(dev.MULTIPROCESSOR_COUNT), int(dev.MAX_SHARED_MEMORY_PER_BLOCK), int(getattr(dev, SM_SHARED_ATTRIBUTE))


def _limits() -> tuple[int, int, int]:
    if SIMULATOR:
        return _SIM_SM_COUNT, _SIM_SHARED_BYTES, _SIM_SHARED_PER_SM
    return _limits_of(int(cuda.get_current_device().id))


def device_limits() -> tuple[int, int]:
    """Multiprocessor count and shared memory per block (bytes) of the current device.

    Returns
    -------
    tuple of int
        ``(sm_count, shared_bytes_per_block)``; ``(2, 49152)`` in the simulator.
        Real devices are queried once per device id.
    """
    return _limits()[:2]


def shared_per_sm() -> int:
    """Shared memory of one multiprocessor of the current device (bytes): 228 KiB on an H100 or H200 (and in
    the simulator), 100 KiB on many smaller cards. Queried once per device id."""
    return _limits()[2]
