"""Compute backend selection: NumPy everywhere, CuPy where a GPU answers.

``backend="auto" | "cpu" | "gpu"`` on every public entry point; the
environment variable ``CUDRIFT_BACKEND`` sets the default. ``auto`` picks the
GPU only when CuPy imports *and* a device answers. CuPy imports on machines
without a driver and fails only at its first device call, so detection makes
that call once and caches the answer (and the reason when it fails).
"""

from __future__ import annotations

import contextlib
import functools
import os

from cudrift.errors import BackendUnavailableError

__all__ = ["resolve_backend", "gpu_status", "check_backend", "env_backend", "BACKENDS", "usable_cpus",
           "cpu_workers", "device_binder"]

BACKENDS = ("auto", "cpu", "gpu")

_EXTRA_HINT = "install a CUDA extra: pip install 'cudrift[cuda12]' or 'cudrift[cuda13]'"


@functools.lru_cache(maxsize=1)
def gpu_status() -> tuple[bool, str]:
    """Return ``(usable, reason)`` for the GPU backend, probing once per process."""
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA install raising anything
        return False, f"CuPy is not importable ({type(exc).__name__}: {exc}); {_EXTRA_HINT}"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            return False, "CuPy found no CUDA device"
        cupy.cuda.Device(0).compute_capability  # first real device call
    except Exception as exc:
        return False, f"CuPy imported but no CUDA device answered ({type(exc).__name__}: {exc})"
    try:
        from cudrift.backends import _gpu  # noqa: F401
    except ImportError as exc:
        return False, f"a CUDA device answered but cudrift's GPU path is not available ({exc})"
    return True, "CUDA device 0 answered"


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity where the OS tells it (a container's CPU set, ``taskset``),
    else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not available on macOS / Windows
        return os.cpu_count() or 1


def cpu_workers(limit: int = 8) -> int:
    """Threads for work spread over columns or chunks: one per usable CPU, at most ``limit``."""
    return max(1, min(limit, usable_cpus()))


def device_binder(backend: str):
    """A zero-argument factory of context managers that make the calling thread's current CUDA device (CuPy's)
    current in whichever thread enters them; a no-op for the CPU backend.

    Worker threads start on device 0 whatever device their caller was using;
    work handed to them enters this first, so that it runs on the caller's
    device.
    """
    if backend != "gpu":
        return contextlib.nullcontext
    import cupy

    dev_id = cupy.cuda.Device().id
    return lambda: cupy.cuda.Device(dev_id)


def check_backend(backend: object) -> None:
    """Raise ValueError naming ``backend`` unless it is None, auto, cpu or gpu."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"Invalid value for backend: {backend!r} (expected one of {BACKENDS})")


def env_backend() -> str:
    """``$CUDRIFT_BACKEND`` (``"auto"`` when unset or empty); ValueError naming it when it is no backend."""
    env = os.environ.get("CUDRIFT_BACKEND", "auto").strip().lower() or "auto"
    if env not in BACKENDS:
        raise ValueError(f"Invalid value for CUDRIFT_BACKEND: {env!r} (expected one of {BACKENDS})")
    return env


def resolve_backend(backend: str | None = "auto") -> str:
    """Map ``"auto" | "cpu" | "gpu"`` (or ``None`` → ``$CUDRIFT_BACKEND``) to ``"cpu"`` or ``"gpu"``.

    Raises
    ------
    ValueError
        For a name other than auto, cpu or gpu.
    BackendUnavailableError
        For ``"gpu"`` when no GPU is usable; the message says why.
    """
    check_backend(backend)
    if backend is None or backend == "auto":
        backend = env_backend()
    if backend == "cpu":
        return "cpu"
    usable, reason = gpu_status()
    if backend == "gpu":
        if not usable:
            raise BackendUnavailableError(f"backend='gpu' is not usable here: {reason}")
        return "gpu"
    return "gpu" if usable else "cpu"
