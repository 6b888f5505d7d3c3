"""Input checks shared by every statistic.

Validation happens once, at the public boundary; the ``*_sorted`` fast paths
trust their caller. Messages name the parameter and echo the bad value the
way ``scipy.stats`` does, so a user never sees a bare NumPy traceback.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import EmptyInputError, SchemaError

__all__ = [
    "as_sample",
    "as_points",
    "as_counts",
    "as_count_pair",
    "check_option",
    "check_bool",
    "dropped_details",
    "is_missing",
]


def check_option(name: str, value: Any, allowed: Iterable[str], *, lower: bool = False) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError``.

    With ``lower=True`` the comparison ignores case, as SciPy does for the
    options of ``mannwhitneyu``.
    """
    allowed = tuple(allowed)
    if isinstance(value, str):
        key = value.lower() if lower else value
        if key in allowed:
            return key
    raise ValueError(
        f"Invalid value for {name}: {value!r}; expected one of {', '.join(map(repr, allowed))}."
    )


def check_bool(name: str, value: Any) -> bool:
    """Accept Python and NumPy booleans only (SciPy rejects ``0``/``1`` for flags)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"Invalid value for {name}: {value!r}; expected True or False.")


def _to_float_array(x: Any, name: str) -> np.ndarray:
    from ._backend import to_host  # device samples computed by NumPy are copied to the host

    try:
        arr = np.asarray(to_host(x))
    except Exception as exc:  # ragged lists and other objects NumPy cannot hold
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind in "OUSVMm" or arr.dtype.kind == "c":
        # strings, objects, datetimes and complex numbers have no order a
        # two-sample statistic can use; try a numeric view of objects first
        if arr.dtype.kind == "O":
            # (NumPy would parse text: "1_000" as 1000 and "nan" as a value to drop, where a NumPy array of the
            # same text is refused below)
            text = next((v for v in arr.ravel() if isinstance(v, (str, bytes))), None)
            if text is not None:
                raise ValueError(f"{name} must hold real numbers, got text such as {text!r}.")
            try:
                return arr.astype(np.float64)
            except (TypeError, ValueError):
                pass
            # pandas' missing value (a nullable boolean or integer Series with NA) reads as NaN, as None does
            missing = np.fromiter((v is None or type(v).__name__ == "NAType" for v in arr.ravel()), bool, arr.size)
            if missing.any():
                arr = arr.copy()
                arr[missing.reshape(arr.shape)] = np.nan
                try:
                    return arr.astype(np.float64)
                except (TypeError, ValueError):
                    pass
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    return arr.astype(np.float64, copy=False)


def as_sample(x: Any, name: str) -> tuple[np.ndarray, int]:
    """Convert one sample to a 1-D float64 array of finite values.

    Returns the cleaned array and the number of NaN/±inf values removed.

    Raises
    ------
    SchemaError
        If the input is not 1-D (a 0-d scalar counts as one value).
    EmptyInputError
        If no finite value is left.
    """
    arr = one_dimensional(_to_float_array(x, name), name)
    finite = np.isfinite(arr)
    n_dropped = int(arr.size - np.count_nonzero(finite))
    if n_dropped:
        arr = arr[finite]
    if arr.size == 0:
        raise empty_sample(name, n_dropped)
    return arr, n_dropped


def one_dimensional(arr: Any, name: str) -> Any:
    """``arr`` (NumPy or CuPy) as 1-D: a 0-d scalar is one value; more dimensions raise SchemaError."""
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise SchemaError(f"{name} must be 1-D, got an array of shape {arr.shape}.")
    return arr


def empty_sample(name: str, n_dropped: int) -> EmptyInputError:
    """The error for a sample left without finite values."""
    return EmptyInputError(
        f"{name} has no finite values" + (f" ({n_dropped} NaN/inf removed)." if n_dropped else " (it is empty).")
    )


def as_points(x: Any, name: str) -> tuple[np.ndarray, int]:
    """Convert a point cloud to a 2-D float64 ``(n, d)`` array of finite rows.

    1-D input is one feature (``(n,) -> (n, 1)``). Rows holding any NaN or
    ±inf are removed and counted.
    """
    arr = _to_float_array(x, name)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise SchemaError(f"{name} must be 1-D or 2-D (n, d), got an array of shape {arr.shape}.")
    if arr.shape[1] == 0:
        raise SchemaError(f"{name} has no features (shape {arr.shape}).")
    finite = np.isfinite(arr).all(axis=1)
    n_dropped = int(arr.shape[0] - np.count_nonzero(finite))
    if n_dropped:
        arr = arr[finite]
    if arr.shape[0] == 0:
        raise EmptyInputError(
            f"{name} has no finite rows"
            + (f" ({n_dropped} rows with NaN/inf removed)." if n_dropped else " (it is empty).")
        )
    return np.ascontiguousarray(arr), n_dropped


def as_counts(x: Any, name: str) -> np.ndarray:
    """Convert a count vector to 1-D float64; counts must be finite and >= 0.

    Counts are not samples: a NaN or negative count is an error, not a value
    to drop, because it means the histogram itself is broken.
    """
    arr = _to_float_array(x, name)
    if arr.ndim != 1:
        raise SchemaError(f"{name} must be a 1-D vector of counts, got shape {arr.shape}.")
    if arr.size == 0:
        raise EmptyInputError(f"{name} is empty.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite counts, got {arr[~np.isfinite(arr)][0]!r}.")
    if np.any(arr < 0):
        raise ValueError(f"{name} must hold non-negative counts, got {arr[arr < 0][0]!r}.")
    if arr.sum() <= 0:
        raise EmptyInputError(f"{name} has a total count of 0.")
    return arr


def as_count_pair(ref: Any, cur: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two aligned count vectors (same categories or bins, same order).

    Counts that both carry an index of labels with some label in common
    (two pandas Series such as ``ref.value_counts()`` and
    ``cur.value_counts()``, each sorted by frequency, one perhaps lacking a
    category) are aligned on their labels: on the union of the two indexes,
    sorted where the labels have an order (a missing label last), else in
    the order they are first seen, reference first; a label missing from one
    side counts 0 there. So a binary test's positive class is the larger
    label, as with label arrays (pass arrays for ``[n_negative,
    n_positive]`` in your own order). Anything else is aligned by position:
    arrays, lists, one Series, a default ``RangeIndex`` (positions, not
    labels), indexes with no label in common (rows of one long table, say
    ``df[df.window == 0]["n"]`` and ``df[df.window == 1]["n"]``), or an index
    with repeated or unhashable labels.
    """
    aligned = _align_on_index(ref, cur)
    if aligned is not None:
        ref, cur = aligned
    r = as_counts(ref, "reference counts")
    c = as_counts(cur, "current counts")
    if r.shape != c.shape:
        raise SchemaError(
            "reference and current counts must be aligned on the same categories: "
            f"got lengths {r.size} and {c.size}."
        )
    return r, c


def _index_keys(x: Any) -> list | None:
    """The labels of ``x``'s index as dictionary keys, or None where they cannot align counts."""
    index = getattr(x, "index", None)
    if index is None or callable(index) or getattr(x, "ndim", 1) != 1:
        return None  # a list's ``index`` is a method
    try:
        if hasattr(index, "to_pandas"):  # cuDF's index cannot be iterated
            index = index.to_pandas()
        labels = list(index)
        if len(labels) != len(x):
            return None
        keys = [_label_key(v) for v in labels]
        if len(set(keys)) != len(keys):
            return None  # repeated labels: no one way to align them
    except TypeError:  # unhashable labels
        return None
    return keys


def _is_row_number(k: Any) -> bool:
    """Whether an index label can number a table's rows: an integer, not a bool (value_counts of a flag)."""
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _label_key(v: Any) -> Any:
    # every missing label (NaN, None, pd.NA, NaT) is one key, as value_counts(dropna=False) has it once
    return _MISSING if is_missing(v) else v


_MISSING = object()


def _align_on_index(ref: Any, cur: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``ref`` and ``cur`` as count arrays on the union of their index labels, or None to align by position."""
    if any(type(getattr(x, "index", None)).__name__ == "RangeIndex" for x in (ref, cur)):
        return None  # pandas' default index numbers positions: it labels nothing
    rk = _index_keys(ref)
    ck = _index_keys(cur) if rk is not None else None
    if ck is None:
        return None
    if set(rk).isdisjoint(ck) and all(_is_row_number(k) for k in rk + ck):
        # rows of one long table (0..3 and 4..7), or integer categories that all changed (HTTP status 200/404
        # becoming 500/503: total drift, which pairing them by position read as none); no way to tell
        raise SchemaError(
            f"the reference and current counts are Series whose integer index labels share none "
            f"({reprlib.repr(rk)} and {reprlib.repr(ck)}): as counts of categories, every category changed; as "
            "rows of one table, they pair by position. Say which: align categories on their union "
            "(ref.reindex(labels, fill_value=0)), or pass rows as arrays (.to_numpy())")
    union = [k for k in dict.fromkeys(rk + ck) if k is not _MISSING]
    try:
        union.sort()  # as count_labels orders labels: a binary test's positive class is the larger label
    except TypeError:
        pass  # labels without an order (str and int mixed) keep the order they are first seen in
    if _MISSING in rk or _MISSING in ck:
        union.append(_MISSING)
    pos = {k: i for i, k in enumerate(union)}
    out = []
    for x, keys, name in ((ref, rk, "reference counts"), (cur, ck, "current counts")):
        values = one_dimensional(_to_float_array(x, name), name)
        full = np.zeros(len(union))
        full[[pos[k] for k in keys]] = values
        out.append(full)
    return out[0], out[1]


def is_missing(v: Any) -> bool:
    """Whether one label is missing: None, pandas' NA and NaT, a float NaN, or a NumPy NaT.

    pandas is not imported; its missing values are recognized by type name.
    """
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(v != v)
    if isinstance(v, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(v))
    return type(v).__name__ in ("NAType", "NaTType")


def dropped_details(n_dropped: tuple[int, int]) -> dict[str, int]:
    return {"n_dropped_reference": int(n_dropped[0]), "n_dropped_current": int(n_dropped[1])}


def unit_scale(z: np.ndarray) -> tuple[np.ndarray, float]:
    """``z`` divided by the power of two ``c`` just above its largest magnitude, and ``c``.

    Dividing by a power of two is exact, and it keeps squares from
    overflowing (values near 1e200) or underflowing (near 1e-200): the
    kernel and energy sums, and a standard deviation, follow a common scale
    of the values exactly.
    """
    top = float(np.max(np.abs(z))) if z.size else 0.0
    c = pow2_above(top)
    return (z, 1.0) if c == 1.0 else (z / c, c)


def pow2_above(top: float) -> float:
    """The power of two just above ``top`` (>= 0), capped at 2**1023; 1.0 for 0 or a non-finite ``top``.

    Values divided by it are below 2 in magnitude, exactly (see :func:`unit_scale`).

    Examples
    --------
    >>> pow2_above(3.0), pow2_above(0.5), pow2_above(0.0)
    (4.0, 1.0, 1.0)
    """
    if not (top > 0 and math.isfinite(top)):
        return 1.0
    return math.ldexp(1.0, min(math.frexp(top)[1], 1023))  # 2**1024 is past float64: values up to it scale below 2
