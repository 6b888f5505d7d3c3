"""Input validation shared by the numeric sketches.

Public ``update`` methods validate here, once; the column profile calls the
sketches' private fast paths with batches it has already checked and sorted.
"""

from __future__ import annotations

import numpy as np

from cudrift.errors import SchemaError

__all__ = ["as_numeric_1d", "as_float", "require_finite", "require_sorted", "require_sorted_finite", "describe_array"]


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` of two 1-D NumPy arrays, by NumPy's own loop (``einsum``), never BLAS.

    BLAS's dot depends on its thread count (a profile's bytes and a
    statistic's last digits differed between ``OPENBLAS_NUM_THREADS=1`` and
    2, so a Dask worker and its driver disagreed), and OpenBLAS's threads
    hang a process forked while another of its threads is inside one. About
    20% slower than BLAS's on 1e7 values.
    """
    return float(np.einsum("i,i->", a, b))


def as_numeric_1d(values: object, what: str) -> np.ndarray:
    """Return ``values`` as a 1-D NumPy array of a bool, integer or float dtype.

    Raises
    ------
    SchemaError
        When the array is not 1-D or its dtype is not numeric.
    """
    x = np.asarray(values)
    if x.ndim != 1:
        raise SchemaError(f"{what}: expected a 1-D array, got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise SchemaError(f"{what}: expected a numeric dtype (bool, int, uint, float), got {x.dtype}")
    return x


def as_float(x: np.ndarray) -> np.ndarray:
    """View ``x`` as float32 or float64 without losing precision.

    float32 stays float32 (sorting and searching it is about twice as fast as
    float64); float16 widens exactly to float32; bool and integers go to
    float64 (exact below 2**53).
    """
    if x.dtype == np.float64 or x.dtype == np.float32:
        return x
    if x.dtype == np.float16:
        return x.astype(np.float32)
    return x.astype(np.float64)


def require_finite(x: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` when ``x`` holds NaN or an infinity."""
    if x.dtype.kind == "f" and x.size and not np.isfinite(x).all():
        bad = x[~np.isfinite(x)][0]
        raise ValueError(f"{what}: values must be finite (remove NaN/inf first), got {bad.item()!r}")


def require_sorted(x: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` when ``x`` is not sorted ascending."""
    if x.size > 1 and not bool(np.all(x[1:] >= x[:-1])):
        i = int(np.flatnonzero(~(x[1:] >= x[:-1]))[0])
        raise ValueError(
            f"{what}: values are not sorted ascending (x[{i}]={x[i].item()!r} > x[{i + 1}]={x[i + 1].item()!r})"
        )


def require_sorted_finite(x: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` unless ``x`` is sorted ascending and finite.

    In sorted order ``-inf`` comes first and ``+inf`` and NaN last, so once
    the order is checked the two ends decide finiteness.
    """
    if x.dtype.kind == "f" and x.size and not (np.isfinite(x[0]) and np.isfinite(x[-1])):
        raise ValueError(f"{what}: values must be finite, got {x[0].item()!r} .. {x[-1].item()!r} at the ends")
    require_sorted(x, what)


def describe_array(a: np.ndarray, noun: str) -> str:
    """Short description such as ``'101 edges [0.0 .. 9.9]'`` used in merge errors."""
    if a.size == 0:
        return f"0 {noun}"
    return f"{a.size} {noun} [{float(a[0])!r} .. {float(a[-1])!r}]"
