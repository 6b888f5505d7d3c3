"""A NumPy-backed stand-in for CuPy, so the GPU backend's host logic runs on a machine without a GPU.

``install()`` puts a ``cupy`` module into ``sys.modules`` whose arrays are
host NumPy arrays (an ``ndarray`` subclass with CuPy's ``data.ptr`` /
``data.mem`` / ``get()`` and a ``__cuda_array_interface__``, so cudrift sees
them as device arrays), whose kernels run at once, whose
``runtime.memcpyAsync`` really copies bytes between the raw pointers it is
given (so offsets into staged blocks are checked for real) and, on a stream
other than the null one, only at that stream's next synchronization (so a
pinned buffer refilled before its copy was waited for sends the wrong
bytes, as it can on a card), and whose two
element-wise kernels cudrift defines are their NumPy twins. The Numba kernels
run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` must be set before
Numba is imported); ``install()`` gives the simulator the two entry points it
lacks (external streams, ``as_cuda_array``), makes its static shared
arrays safe between the block's threads (:func:`_lock_static_shared_arrays`) and lets
``cudrift.backends._gpu`` import there.

What this exercises is cudrift's orchestration (units and groups, staging
offsets and threads, read-backs, merges, summaries, rank batching, the
detector's GPU path) on small inputs. It says nothing about CuPy or the
device: radix sorts, the ordering of kernels between streams, memory pools and real kernels are
checked by the ``gpu`` tests on a real card. Used by ``gpu_emulated_cases.py``
in a subprocess of its own (``test_gpu_emulated.py``) and by
``benchmarks/gpu_check.py --emulate`` / ``benchmarks/profile_sweep.py
--emulate``; the main test process imports this module only to collect its
(absent) doctests and never calls ``install()`` there.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import sys
import threading
import time
import types

import numpy as np

__all__ = ["install"]

_STREAM_IDS = itertools.count(0x1000)


class ndarray(np.ndarray):  # noqa: N801 - CuPy's name
    """A host array that cudrift treats as device memory; every allocation is one of these (its ``.base``-most owner)."""

    def __new__(cls, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is None:
            return np.ndarray.__new__(cls, shape, dtype=dtype, order=order)
        return np.ndarray.__new__(cls, shape, dtype=dtype, buffer=memptr.mem, offset=memptr.offset, strides=strides)

    @property
    def ptr(self) -> int:
        return self.__array_interface__["data"][0]

    @property
    def data(self):  # CuPy: a MemoryPointer with .ptr and .mem (the allocation, the same object for every view)
        root = self
        while isinstance(root.base, ndarray):
            root = root.base
        return MemoryPointer(root, self.ptr - root.ptr)

    @property
    def __cuda_array_interface__(self):
        d = dict(self.__array_interface__)
        d.update(version=3, stream=None)
        return d


class MemoryPointer:
    def __init__(self, mem, offset):
        self.mem = mem
        self.offset = int(offset)
        self.ptr = mem.ptr + self.offset


def _dev(a, order="K") -> ndarray:
    """``a`` as a fake device array: fake arrays as they are, anything else copied into a new allocation."""
    if isinstance(a, ndarray):
        return a
    a = np.asarray(a)
    out = ndarray(a.shape, dtype=a.dtype, order="F" if order == "F" or (order == "K" and a.flags.f_contiguous
                                                                          and not a.flags.c_contiguous) else "C")
    out[...] = a
    return out


def asarray(a, dtype=None, order=None, blocking=False):
    if isinstance(a, ndarray) and (dtype is None or np.dtype(dtype) == a.dtype) and order is None:
        return a
    # a host array is copied to the device: later device writes never reach it
    return _dev(np.array(a, dtype=dtype, order=order or "K", copy=True), order or "K")




def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    return np.array(a, order=order).view(np.ndarray) if isinstance(a, np.ndarray) else np.asarray(a)


def copyto(dst, src, casting="same_kind", where=True):
    np.copyto(dst, src, casting=casting, where=where)


def _random_module() -> types.ModuleType:
    """``cupy.random``'s two generators that gpu_check uses, from a fixed NumPy generator."""
    gen = np.random.default_rng(0)

    def standard_normal(size=None, dtype=np.float64):
        return _dev(gen.standard_normal(size, dtype=dtype))

    def randint(low, high=None, size=None, dtype=int):
        return _dev(gen.integers(low, high, size=size, dtype=dtype))

    return _module("cupy.random", standard_normal=standard_normal, randint=randint)


def from_dlpack(x):
    return _dev(np.from_dlpack(x))


def _wrap(fn):
    def f(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(_dev(o) if isinstance(o, np.ndarray) else o for o in out)
        return _dev(out, kwargs.get("order", "K")) if isinstance(out, (np.ndarray, np.generic)) else out

    f.__name__ = getattr(fn, "__name__", "f")
    return f


class ElementwiseKernel:
    """cudrift's two CuPy element-wise kernels, by name, as their NumPy twins."""

    def __init__(self, in_params, out_params, operation, name, preamble="", **kwargs):
        if name not in ("cudrift_sort_key", "cudrift_splitmix64"):
            raise NotImplementedError(f"fake cupy has no twin for element-wise kernel {name!r}")
        self.name = name

    def __call__(self, *args):
        if self.name == "cudrift_sort_key":
            x, y = args
            v = np.asarray(x).astype(y.dtype)
            v[np.isnan(v)] = np.nan  # every NaN the positive quiet NaN, as the CUDA twin writes it
            y[...] = v
            return y
        from cudrift.sketches.sample import splitmix64  # the host path's mix, checked against a Python model

        start, seed, z = args
        with np.errstate(over="ignore"):
            z[...] = splitmix64((np.uint64(start) + np.arange(z.size, dtype=np.uint64)) ^ np.uint64(seed))
        return z


# ---------------------------------------------------------------- cupy.cuda

_local = threading.local()


# Copies queued on streams other than the null one (see _memcpy_async): stream ptr -> [(seq, dst, src, size)].
_QUEUED: dict[int, list] = {}
_QUEUE_LOCK = threading.Lock()
_SEQ = itertools.count(1)


def _run_queued(stream: int | None, upto: float = math.inf) -> None:
    """Run the copies queued on ``stream`` (None: every stream) up to sequence number ``upto``, in order."""
    with _QUEUE_LOCK:
        due = []
        for ptr in list(_QUEUED) if stream is None else [stream]:
            queue = _QUEUED.get(ptr, [])
            due += [c for c in queue if c[0] <= upto]
            _QUEUED[ptr] = [c for c in queue if c[0] > upto]
        for _, dst, src, size in sorted(due):
            ctypes.memmove(dst, src, size)


class Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.ptr = 0 if null else (ptr or next(_STREAM_IDS))

    def __enter__(self):
        stack = _local.__dict__.setdefault("streams", [])
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _local.streams.pop()

    def synchronize(self):
        _run_queued(self.ptr)

    def wait_event(self, event):
        # the device would order this stream's later work after the event's stream's copies up to it
        event.synchronize()


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    stack = getattr(_local, "streams", None)
    return stack[-1] if stack else Stream.null


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.t = None
        self._at = None  # (stream ptr, the last copy queued before the record)

    def record(self, stream=None):
        self.t = time.perf_counter()  # everything ran at once: the host clock is the device's
        with _QUEUE_LOCK:
            self._at = ((stream or get_current_stream()).ptr, next(_SEQ))

    def synchronize(self):
        if self._at is not None:
            _run_queued(*self._at)


def get_elapsed_time(start, end):
    """Milliseconds between two recorded events, as CuPy's."""
    return (end.t - start.t) * 1e3


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        self.compute_capability = "90"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def use(self):
        pass

    def synchronize(self):
        _run_queued(None)


def alloc_pinned_memory(nbytes):
    return bytearray(int(nbytes))


class _Pool:
    def free_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass


_POOL = _Pool()


def get_default_memory_pool():
    return _POOL


class OutOfMemoryError(MemoryError):
    pass


def _memcpy_async(dst, src, size, kind, stream=0):
    """A copy on the null stream runs at once; on another stream it is queued and runs at that stream's next
    synchronization (an event recorded after it synchronized or waited for, the stream or the device
    synchronized), reading its source then, as a card's copy engine may: a pinned buffer the host refills
    before the copy out of it was waited for then sends the wrong bytes."""
    if not stream:
        ctypes.memmove(int(dst), int(src), int(size))
        return
    with _QUEUE_LOCK:
        _QUEUED.setdefault(int(stream), []).append((next(_SEQ), int(dst), int(src), int(size)))


def _device_properties(device=0):
    return {"name": b"fake cupy (NumPy + Numba CUDA simulator)", "totalGlobalMem": 16 << 30,
            "multiProcessorCount": 2, "major": 9, "minor": 0, "clockRate": 1_000_000,
            "memoryClockRate": 1_000_000, "memoryBusWidth": 1024, "pciBusID": 0, "pciDeviceID": 0}


# ---------------------------------------------------------------- install


def _module(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def _lock_static_shared_arrays() -> None:
    """Make the simulator's static ``cuda.shared.array`` one array per block, whatever the thread timing.

    The simulator runs a block's CUDA threads as Python threads and hands each
    ``cuda.shared.array(shape, dtype)`` line the array it cached for that line,
    creating it on a miss; the lookup and the insert are not atomic, so two
    threads that both miss (one preempted between ``get`` and the insert) each
    keep an array of their own. Their writes then never meet:
    ``run_ends_kernel`` read ``sh[1]`` / its slot from another thread's
    uninitialized ``np.empty`` (IndexError on a garbage index). On a card the
    block has one shared array; here the miss and the insert go under one lock.
    Dynamic shared memory (shape 0) is one buffer made at launch: left as it is.
    """
    from numba.cuda.simulator import kernelapi

    shared = kernelapi.FakeCUDAShared
    if getattr(shared.array, "_cudrift_locked", False):
        return
    original = shared.array
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or (isinstance(shape, int) and shape == 0):
            return original(self, shape, dtype, alignment)  # (the caller's line plays no part there)
        if isinstance(dtype, kernelapi.types.Type):
            dtype = kernelapi.numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)  # the simulator's key: the line that asks (traceback.extract_stack()[-2])
        key = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            res = self._allocations.get(key)
            if res is None:
                res = self._allocations[key] = np.empty(shape, dtype)
        return res

    array._cudrift_locked = True
    shared.array = array


def install() -> types.ModuleType:
    """Register the fake ``cupy`` and let ``cudrift.backends._gpu`` import under the simulator; returns it."""
    import numba_cuda  # noqa: F401 - the real package must be there, as for the GPU backend
    from numba import cuda

    from cudrift.kernels import _cuda

    if not _cuda.SIMULATOR:
        raise RuntimeError("fake_cupy needs NUMBA_ENABLE_CUDASIM=1 set before Numba is imported")
    runtime = _module(
        "cupy.cuda.runtime", memcpyAsync=_memcpy_async, memcpyHostToDevice=1,
        deviceSynchronize=lambda: _run_queued(None), memGetInfo=lambda: (8 << 30, 16 << 30), getDeviceCount=lambda: 1,
        getDeviceProperties=_device_properties, driverGetVersion=lambda: 13000,
        runtimeGetVersion=lambda: 13000,
    )
    memory = _module("cupy.cuda.memory", OutOfMemoryError=OutOfMemoryError)
    cuda_mod = _module(
        "cupy.cuda", Stream=Stream, Event=Event,
        Device=Device, get_current_stream=get_current_stream, get_elapsed_time=get_elapsed_time,
        alloc_pinned_memory=alloc_pinned_memory, MemoryPointer=MemoryPointer,
        runtime=runtime, memory=memory,
    )
    # the array functions cudrift calls (a call to any other fails with AttributeError, not silently)
    names = ["zeros", "empty", "ones", "full", "arange", "concatenate", "stack", "unique", "searchsorted",
             "isfinite", "isinf", "flatnonzero", "count_nonzero", "ascontiguousarray", "asfortranarray", "empty_like",
             "subtract", "multiply"]
    random = _random_module()
    cupy = _module("cupy", __version__="0.0-fake", ndarray=ndarray, asarray=asarray,
                   asnumpy=asnumpy, from_dlpack=from_dlpack, copyto=copyto, random=random,
                   ElementwiseKernel=ElementwiseKernel, cuda=cuda_mod,
                   get_default_memory_pool=get_default_memory_pool, **{n: _wrap(getattr(np, n)) for n in names})
    sys.modules.update({"cupy": cupy, "cupy.random": random, "cupy.cuda": cuda_mod, "cupy.cuda.runtime": runtime,
                        "cupy.cuda.memory": memory})

    # what the simulator lacks: external streams (every launch runs at once) and as_cuda_array
    cuda.external_stream = lambda ptr: 0
    # a view of the array itself, as a real device array (the simulator copies a plain NumPy argument in and
    # out, which refuses strided views such as a slab of a row-major matrix's columns)
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    def as_cuda_array(obj, sync=True):
        if not hasattr(obj, "__cuda_array_interface__"):  # as Numba: host memory is no device array
            raise TypeError(f"{type(obj).__name__} does not export __cuda_array_interface__")
        return FakeCUDAArray(np.asarray(obj))

    cuda.as_cuda_array = as_cuda_array
    _lock_static_shared_arrays()
    # cudrift's GPU module refuses the simulator (right for users); let it import here,
    # with the kernels compiled for the simulator first (they read the flag at import)
    import cudrift.kernels.categorical
    import cudrift.kernels.mmd
    import cudrift.kernels.profile
    import cudrift.kernels.quantiles
    import cudrift.kernels.rank  # noqa: F401

    _cuda.SIMULATOR = False
    try:
        import cudrift.backends._gpu  # noqa: F401
    finally:
        _cuda.SIMULATOR = True
    return cupy

