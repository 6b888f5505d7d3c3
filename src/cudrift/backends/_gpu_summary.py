"""The level-0 quantile summary of a sorted device column, from the quantile kernels.

``QuantileSketch`` summarizes a sorted batch with
``cudrift.sketches.quantiles._summarize_sorted``; :func:`sorted_summary`
makes the same decisions with the kernels of :mod:`cudrift.kernels.quantiles`
doing the O(m) work on the device and :mod:`cudrift.kernels._host` the
O(k) rest on the host, so the arrays it returns are identical to the CPU
summary, dtypes and bytes included.

The module needs Numba CUDA but not CuPy: device memory comes from the
caller through a small :class:`DeviceOps` object, so the recipe runs on a
GPU with CuPy-owned buffers and in Numba's CUDA simulator alike.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from cudrift.kernels import _host
from cudrift.kernels.quantiles import launch_quantile_points, launch_quantile_points_many, launch_run_ends

__all__ = ["DeviceOps", "sorted_summary", "sorted_summaries"]


class DeviceOps(Protocol):
    """Where the recipe gets device buffers and how it reads them back.

    Attributes
    ----------
    stream
        Numba stream the kernels are launched on (0: the default stream).
    """

    stream: Any

    def zeros(self, n: int, dtype: Any) -> Any:
        """A zeroed 1-D device buffer of ``n`` elements."""

    def arg(self, a: Any) -> Any:
        """``a`` as a kernel argument (a Numba device array)."""

    def to_host(self, a: Any) -> np.ndarray:
        """A host copy of a buffer from :meth:`zeros`, after the work queued before it (synchronizes)."""

    def from_host(self, a: np.ndarray) -> Any:
        """A device copy of a small host array, ordered on :attr:`stream`."""


def _run_ends(x: Any, capacity: int, ops: DeviceOps, threads: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    ends = ops.zeros(capacity, np.int64)
    values = ops.zeros(capacity, np.float64)
    n_runs = ops.zeros(1, np.int64)
    launch_run_ends(ops.arg(x), ops.arg(ends), ops.arg(values), ops.arg(n_runs), threads=threads, stream=ops.stream)
    return ops.to_host(ends), ops.to_host(values), int(ops.to_host(n_runs)[0])


def sorted_summary(
    x: Any, k: int, ops: DeviceOps, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level-0 summary ``(values, lo, hi)`` of a sorted, finite, non-empty device column.

    Parameters
    ----------
    x
        Sorted 1-D float32/float64 device array (anything ``ops.arg`` accepts), no NaN or infinity.
    k
        The sketch's ``k``.
    ops
        Allocation, launch stream and read-back (see :class:`DeviceOps`).
    threads
        Block size of the kernels (default: the launch helpers' choice).

    Returns
    -------
    tuple of numpy.ndarray
        float64 values and int64 ``lo`` / ``hi``, identical to
        ``_summarize_sorted(x, k)`` on the same values.

    Notes
    -----
    Synchronizes the stream once for the ``k + 1`` points, and once more
    when the points hint at few distinct values.
    """
    m = int(x.shape[0])
    if m <= k + 1:
        return _host.summary_from_run_ends(*_run_ends(x, k + 1, ops, threads))
    values = ops.zeros(k + 1, np.float64)
    lt = ops.zeros(k + 1, np.int64)
    le = ops.zeros(k + 1, np.int64)
    launch_quantile_points(ops.arg(x), k, ops.arg(values), ops.arg(lt), ops.arg(le), threads=threads,
                           stream=ops.stream)
    s = _host.summary_from_points(ops.to_host(values), ops.to_host(lt), ops.to_host(le), m)
    return _settle(x, k, s, ops, threads)


def _settle(x: Any, k: int, s: Any, ops: DeviceOps, threads: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The summary the CPU keeps, given the points summary ``s`` of sorted ``x`` (``m > k + 1``)."""
    if s.exact or s.values.size > k:
        return s.values, s.lo, s.hi
    # Repeated points hint at low cardinality: with at most k + 1 distinct
    # values the CPU keeps the exact summary instead.
    ends, end_values, n_runs = _run_ends(x, k + 1, ops, threads)
    if n_runs <= k + 1:
        return _host.summary_from_run_ends(ends, end_values, n_runs)
    return s.values, s.lo, s.hi


def sorted_summaries(
    x: Any, starts: np.ndarray, lengths: np.ndarray, k: int, ops: DeviceOps, *, threads: int | None = None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`sorted_summary` of many sorted columns of one device buffer, with one launch and three read-backs.

    Parameters
    ----------
    x
        1-D float32/float64 device buffer (anything ``ops.arg`` accepts and
        that slices like an array).
    starts, lengths
        Host integer arrays: column ``c`` is ``x[starts[c] : starts[c] +
        lengths[c]]``, sorted, finite and non-empty.
    k, ops, threads
        As :func:`sorted_summary` (one ``k`` for all columns).

    Returns
    -------
    list of tuple of numpy.ndarray
        Per column, what :func:`sorted_summary` returns for it.

    Notes
    -----
    Synchronizes the stream once for the points of all columns, plus once
    or twice per column that is short (``<= k + 1`` values) or whose points
    hint at few distinct values (as :func:`sorted_summary`).
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out: list = [None] * starts.size
    long = np.flatnonzero(lengths > k + 1)
    if long.size:
        w = k + 1
        values = ops.zeros(long.size * w, np.float64)
        lt = ops.zeros(long.size * w, np.int64)
        le = ops.zeros(long.size * w, np.int64)
        launch_quantile_points_many(ops.arg(x), ops.arg(ops.from_host(starts[long])),
                                    ops.arg(ops.from_host(lengths[long])), k, ops.arg(values), ops.arg(lt),
                                    ops.arg(le), threads=threads, stream=ops.stream)
        hv, hlt, hle = (ops.to_host(a).reshape(long.size, w) for a in (values, lt, le))
        for i, c in enumerate(long):
            a, m = int(starts[c]), int(lengths[c])
            s = _host.summary_from_points(hv[i], hlt[i], hle[i], m)
            out[c] = _settle(x[a : a + m], k, s, ops, threads)
    for c in np.flatnonzero(lengths <= k + 1):
        a, m = int(starts[c]), int(lengths[c])
        out[c] = sorted_summary(x[a : a + m], k, ops, threads=threads)
    return out
