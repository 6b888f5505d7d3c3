"""Where a two-sample statistic on raw samples is computed: ``backend="auto" | "cpu" | "gpu"``.

The statistics take the same ``backend`` argument as :func:`cudrift.profile`
and :class:`cudrift.DriftDetector`, with one difference in what ``"auto"``
means, because a single test is one short call rather than a pass over a
window:

``"cpu"``
    NumPy (device inputs are copied to the host first).
``"gpu"``
    The device: the samples' finite values are sorted there and the rank
    statistics come from the merge-path kernel, with the CPU path's p-values
    (:func:`cudrift.backends._gpu.sample_test`); raises
    :class:`~cudrift.errors.BackendUnavailableError` where no GPU is usable.
``"auto"`` (default)
    The device when an input already lives there (CuPy, cuDF, anything with
    ``__cuda_array_interface__`` or CUDA DLPack) and a GPU is usable, else
    NumPy: host samples are not copied to a device for one test.
    ``CUDRIFT_BACKEND=cpu`` or ``gpu`` overrides ``"auto"``.

Options that the device path does not implement (a one-sided KS, an exact
p-value method, weights, another Anderson-Darling variant) are computed by
NumPy whatever the backend (no GPU needed), on host copies of device
inputs; the result is the same either way. Internal callers (the detector)
pass their own backend explicitly, so ``CUDRIFT_BACKEND`` never overrides a
detector's choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cudrift.backends import check_backend, env_backend, gpu_status, resolve_backend

__all__ = ["is_device_array", "check_backend", "use_gpu", "to_host"]


def is_device_array(x: Any) -> bool:
    """Whether ``x`` is array data in GPU memory (CUDA array interface, or DLPack on CUDA or managed memory)."""
    from cudrift.backends._gpu_host import is_device_array as _is_device

    return _is_device(x)


def use_gpu(backend: str | None, *inputs: Any) -> bool:
    """Whether a statistic on ``inputs`` runs on the device (see the module docstring).

    Raises
    ------
    ValueError
        For a backend name other than auto, cpu or gpu (argument or ``CUDRIFT_BACKEND``).
    BackendUnavailableError
        For ``"gpu"`` (given, or from ``CUDRIFT_BACKEND``) where no GPU is usable.
    """
    check_backend(backend)
    if backend in (None, "auto") and env_backend() == "auto":
        return any(is_device_array(x) for x in inputs) and gpu_status()[0]
    return resolve_backend(backend) == "gpu"


def to_host(x: Any) -> Any:
    """``x`` itself, or a NumPy copy of it when it is device data (needs CuPy)."""
    if not is_device_array(x) or isinstance(x, np.ndarray):
        # NumPy arrays that also export the CUDA array interface (Numba's
        # mapped and managed arrays) are readable from the host as they are
        return x
    try:
        import cupy

        from cudrift.backends._gpu_source import as_cupy
    except ImportError as exc:
        raise ValueError(
            f"the sample is a device array ({type(x).__name__}) but CuPy is not importable ({exc}); "
            "install a CUDA extra: pip install 'cudrift[cuda12]' or 'cudrift[cuda13]'"
        ) from None
    return cupy.asnumpy(as_cupy(x))
