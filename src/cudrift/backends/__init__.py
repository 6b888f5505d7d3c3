"""Compute backend selection: NumPy everywhere, CuPy where a GPU answers.

``backend="auto" | "cpu" | "gpu"`` on every public entry point; the
environment variable ``CUDRIFT_BACKEND`` sets the default. ``auto`` picks the
GPU only when CuPy imports *and* a device answers. CuPy imports on machines
without a driver and fails only at its first device call, so detection makes
that call once per process and caches the answer (and the reason when it
fails); a forked child, which cannot use CUDA that its parent initialized,
probes again.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from cudrift.errors import BackendUnavailableError

__all__ = ["resolve_backend", "gpu_status", "check_backend", "env_backend", "BACKENDS", "usable_cpus",
           "cpu_workers", "thread_limit", "worker_pool", "submit", "device_binder"]

BACKENDS = ("auto", "cpu", "gpu")

_EXTRA_HINT = "install a CUDA extra: pip install 'cudrift[cuda12]' or 'cudrift[cuda13]'"


# The process whose probe reached a CUDA device, which initialized CUDA there. CUDA does not survive fork: a
# process forked from it (multiprocessing's or Dask's fork workers) can use neither its parent's context nor one
# of its own, and the probe must say so rather than answer the parent's "usable".
_CUDA_PID: int | None = None


@functools.lru_cache(maxsize=1)
def gpu_status() -> tuple[bool, str]:
    """Return ``(usable, reason)`` for the GPU backend, probing once per process (a forked child probes again)."""
    global _CUDA_PID
    if _CUDA_PID is not None and _CUDA_PID != os.getpid():
        return False, (f"CUDA was initialized in process {_CUDA_PID}, from which this process ({os.getpid()}) was "
                       "forked, and a forked child cannot use CUDA: start it with 'spawn' or 'forkserver' "
                       "(multiprocessing.get_context('spawn'))")
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA install raising anything
        return False, f"CuPy is not importable ({type(exc).__name__}: {exc}); {_EXTRA_HINT}"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            return False, "CuPy found no CUDA device"
        _CUDA_PID = os.getpid()
        cupy.cuda.Device(0).compute_capability  # first real device call
    except Exception as exc:
        return False, f"CuPy imported but no CUDA device answered ({type(exc).__name__}: {exc})"
    try:
        from cudrift.backends import _gpu  # noqa: F401
    except ImportError as exc:
        return False, f"a CUDA device answered but cudrift's GPU path is not available ({exc})"
    return True, "CUDA device 0 answered"


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=gpu_status.cache_clear)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity where the OS tells it (a container's CPU set, ``taskset``),
    else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not available on macOS / Windows
        return os.cpu_count() or 1


_THREAD_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("cudrift_thread_limit", default=None)


def cpu_workers(limit: int = 8) -> int:
    """Threads for work spread over columns or chunks: one per usable CPU, at most ``limit``, and at most the
    :func:`thread_limit` in effect."""
    n = max(1, min(limit, usable_cpus()))
    cap = _THREAD_LIMIT.get()
    return n if cap is None else min(n, cap)


@contextlib.contextmanager
def thread_limit(n: int | None) -> Iterator[None]:
    """Within the block, :func:`cpu_workers` answers at most ``n`` on this thread; ``None`` lifts the limit.

    The limit is a context variable: :func:`submit` runs each task in a
    copy of the caller's context, so work spread over a pool's threads keeps
    it. With ``n = 1`` the CPU path starts no thread: profiles
    (:func:`worker_pool`) and the exact grid run on the calling thread
    (``DriftDetector(workers=1)``).
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"Invalid value for thread_limit: {n!r} (expected an integer >= 1, or None)")
    token = _THREAD_LIMIT.set(n)
    try:
        yield
    finally:
        _THREAD_LIMIT.reset(token)


@contextlib.contextmanager
def worker_pool(n_tasks: int) -> Iterator[ThreadPoolExecutor | None]:
    """A pool of up to :func:`cpu_workers` threads for ``n_tasks`` pieces of work at a time, shut down on exit;
    None where one thread suffices (one task, one worker), and :func:`submit` then runs the work on the calling
    thread."""
    n = min(cpu_workers(), n_tasks)
    if n <= 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=n) as pool:
        yield pool


def submit(pool: ThreadPoolExecutor | None, fn, *args) -> Future:
    """``pool.submit(fn, *args)``, or ``fn(*args)`` run now on the calling thread, its outcome in a done future.

    On the calling thread where ``pool`` is None, and where the pool takes no
    new work because the interpreter is shutting down: an atexit handler or
    a daemon thread that flushes its last window then still gets its
    profile (``submit`` raises RuntimeError there, "cannot schedule new
    futures after interpreter shutdown", and no new thread may start).
    """
    if pool is not None and not sys.is_finalizing():
        try:
            # in a copy of this thread's context (one per task: a context runs on one thread at a time), so that
            # the work keeps the caller's thread_limit
            return pool.submit(contextvars.copy_context().run, fn, *args)
        except RuntimeError as exc:
            # raised before the work is queued; another RuntimeError (a thread that could not start) may
            # come after, and the work must not run twice
            if not str(exc).startswith("cannot schedule new futures"):
                raise
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except Exception as exc:  # as a pool's future holds it: raised by result()
        done.set_exception(exc)
    return done


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
