"""Fixed-edge histogram with underflow and overflow bins, and edge helpers.

Bins follow NumPy's convention: ``[e_i, e_{i+1})`` for every bin but the
last, which is closed ``[e_{n-1}, e_n]``. Values below ``edges[0]`` go to the
underflow bin (index 0), values above ``edges[-1]`` to the overflow bin (last
index). Edges are fixed once (usually equal-mass on the reference, see
:func:`equal_mass_edges`) so that counts of any two windows are directly
comparable and merge by addition: exactly associative and commutative.
"""

from __future__ import annotations

import numpy as np

from cudrift.errors import EmptyInputError, FormatError, IncompatibleSketchError
from cudrift.kernels._host import nearest_float_edges  # NumPy only; the GPU kernels bin on the same edges
from cudrift.sketches import _format
from cudrift.sketches._common import as_float, as_numeric_1d, describe_array, require_finite, require_sorted_finite

__all__ = ["Histogram", "equal_mass_edges", "uniform_edges"]

KIND = "cudrift.histogram"
VERSION = 1


def _check_edges(edges: object) -> np.ndarray:
    e = np.array(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"Invalid value for edges: expected a 1-D array of at least 2 edges, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError(f"Invalid value for edges: edges must be finite, got {e[~np.isfinite(e)][0].item()!r}")
    if not np.all(e[1:] > e[:-1]):
        i = int(np.flatnonzero(~(e[1:] > e[:-1]))[0])
        raise ValueError(
            f"Invalid value for edges: edges must be strictly increasing, got edges[{i}]={e[i].item()!r} "
            f">= edges[{i + 1}]={e[i + 1].item()!r}"
        )
    e += 0.0  # -0.0 → +0.0 so that equal edges also have equal bytes
    e.setflags(write=False)
    return e


def _narrow_thresholds(edges: np.ndarray, precision) -> tuple[np.ndarray, np.float32]:
    """The edges data of ``precision`` (float32, float16) is binned on: each rounded to the nearest value of that
    type (:func:`cudrift.kernels._host.nearest_float_edges`, which says why), as float32 ``(left thresholds,
    closing edge)``, float16 values being compared as float32. A value counts at its own precision: one equal
    to a rounded edge lies in the bin that edge opens, one equal to the rounded last edge in the closed last
    bin.
    """
    e = nearest_float_edges(edges, precision).astype(np.float32)
    return e, e[-1]


def _precision(dtype: np.dtype):
    """The narrow float type data of ``dtype`` is binned at (float32, float16), or None for float64 (and the
    integers and booleans, read as float64)."""
    return np.float16 if dtype == np.float16 else np.float32 if dtype == np.float32 else None


def column_precision(dtype: str | None):
    """The narrow float type every value of a column of profile dtype ``dtype`` is binned at, whatever type its
    values arrive as in a counting pass (float16 widened to float32 by a reader, float32 kept sorted as
    float64): float16 for ``"float16"``, float32 for ``"float32"``; None for any other (each batch at its own)."""
    return {"float16": np.float16, "float32": np.float32}.get(dtype or "")


class Histogram:
    """Counts on fixed edges plus underflow and overflow.

    ``counts`` has ``len(edges) + 1`` int64 entries: index 0 counts
    ``x < edges[0]``, index ``i`` (1 .. ``len(edges) - 1``) counts bin
    ``[edges[i-1], edges[i])`` (the last bin closed), and the last index
    counts ``x > edges[-1]``. float32 and float16 values are compared at
    their own precision, with the edges rounded to the nearest value of their
    type (:func:`_narrow_thresholds`): ``float32(0.7)`` is in the bin 0.7
    opens.

    On an empty histogram every count is 0 and :attr:`n` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> h = Histogram.empty([0.0, 1.0, 2.0]).update(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]))
    >>> h.counts.tolist()
    [1, 2, 2, 1]
    """

    __slots__ = ("_edges", "_counts", "_narrow")

    def __init__(self, edges: np.ndarray, counts: np.ndarray) -> None:
        self._edges = edges
        self._counts = counts
        self._narrow: dict[str, tuple[np.ndarray, np.float32]] = {}  # _narrow_thresholds by type, made once

    @classmethod
    def empty(cls, edges: np.ndarray) -> "Histogram":
        """Histogram with zero counts on ``edges``.

        Parameters
        ----------
        edges
            At least two finite, strictly increasing values (stored as float64).
        """
        e = _check_edges(edges)
        return cls(e, np.zeros(e.size + 1, dtype=np.int64))

    def update(self, values: np.ndarray) -> "Histogram":
        """Count a batch of finite values in any order; returns ``self``.

        Raises
        ------
        ValueError
            If a value is NaN or infinite (count those separately).
        """
        given = as_numeric_1d(values, "Histogram.update")
        x = as_float(given)
        require_finite(x, "Histogram.update")
        if x.size == 0:
            return self
        # float32 and float16 values at their own precision, on the edges rounded to that type (_narrow_thresholds)
        precision = _precision(given.dtype)
        edges = self._edges if precision is None else self._thresholds(precision)[0]
        # side="right" puts x in [e_i, e_{i+1}) at index i + 1; values equal
        # to the last edge belong to the closed last bin, not to overflow.
        idx = np.searchsorted(edges, x, side="right")
        top = np.flatnonzero(idx == edges.size)
        if top.size:
            # x == last edge, decided by searchsorted (comparisons in the edges' dtype: NumPy 1.x compares a
            # float32 array with a float64 scalar in float32, where a tiny last edge equals 0)
            on_last = np.searchsorted(edges[-1:], x[top], side="left") == 0
            idx[top[on_last]] -= 1
        self._counts += np.bincount(idx, minlength=self._counts.size)
        return self

    def update_sorted(self, sorted_values: np.ndarray) -> "Histogram":
        """Count a batch of finite values sorted ascending; returns ``self``.

        Costs ``len(edges)`` binary searches instead of one per value.

        Raises
        ------
        ValueError
            If the values are not sorted or not finite.
        """
        given = as_numeric_1d(sorted_values, "Histogram.update_sorted")
        x = as_float(given)
        require_sorted_finite(x, "Histogram.update_sorted")
        return self._update_sorted_trusted(x, _precision(given.dtype))

    def _update_sorted_trusted(self, x: np.ndarray, precision=None) -> "Histogram":
        """Count a sorted finite float32/float64 batch without validation (column profile path); ``precision``:
        the type its values are binned at (default float32 for a float32 batch; float16 for float16 values
        widened to float32)."""
        if x.size == 0:
            return self
        precision = precision or _precision(x.dtype)
        if precision is not None:
            left, last = self._thresholds(precision)
        else:
            left, last = self._edges, self._edges[-1]
        bounds = np.empty(self._counts.size + 1, dtype=np.int64)
        bounds[0] = 0
        bounds[1:-2] = np.searchsorted(x, left[:-1], side="left")
        bounds[-2] = np.searchsorted(x, last, side="right")
        bounds[-1] = x.size
        self._counts += np.diff(bounds)
        return self

    def _thresholds(self, precision) -> tuple[np.ndarray, np.float32]:
        """:func:`_narrow_thresholds` of the edges for ``precision``, made once: the edges such data is binned
        on."""
        key = np.dtype(precision).char
        if key not in self._narrow:
            self._narrow[key] = _narrow_thresholds(self._edges, precision)
        return self._narrow[key]

    # monoid ---------------------------------------------------------------
    def merge(self, other: "Histogram") -> "Histogram":
        """New histogram with the summed counts; neither input changes.

        Raises
        ------
        IncompatibleSketchError
            If the edges differ; the message describes both.
        """
        if not isinstance(other, Histogram):
            raise TypeError(f"cannot merge Histogram with {type(other).__name__}")
        if not np.array_equal(self._edges, other._edges):
            a, b = describe_array(self._edges, "edges"), describe_array(other._edges, "edges")
            detail = ""
            if a == b:
                i = int(np.flatnonzero(self._edges != other._edges)[0])
                detail = f" (first difference at edges[{i}]: {self._edges[i].item()!r} vs {other._edges[i].item()!r})"
            raise IncompatibleSketchError(f"cannot merge histograms with different edges: {a} vs {b}{detail}")
        return Histogram(self._edges, self._counts + other._counts)

    def __add__(self, other: "Histogram") -> "Histogram":
        return self.merge(other)

    def copy(self) -> "Histogram":
        """Independent copy (edges are shared: they are read-only)."""
        return Histogram(self._edges, self._counts.copy())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return bool(np.array_equal(self._edges, other._edges) and np.array_equal(self._counts, other._counts))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Histogram({describe_array(self._edges, 'edges')}, n={self.n})"

    # serialization --------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned, CRC-checked bytes (kind ``"cudrift.histogram"``, version 1)."""
        return _format.pack(KIND, VERSION, {}, {"edges": self._edges, "counts": self._counts})

    @classmethod
    def from_bytes(cls, data: bytes) -> "Histogram":
        """Read bytes written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            If the bytes are truncated, corrupted, foreign or inconsistent.
        """
        _, _, arrays = _format.unpack(data, KIND, VERSION)
        edges, counts = arrays.get("edges"), arrays.get("counts")
        if edges is None or counts is None:
            raise FormatError(f"corrupted {KIND} bytes: missing edges or counts")
        if edges.dtype != np.float64:
            raise FormatError(f"corrupted {KIND} bytes: edges of dtype {edges.dtype}, expected float64")
        try:
            e = _check_edges(edges)
        except ValueError as exc:
            raise FormatError(f"corrupted {KIND} bytes: {exc}") from None
        if counts.dtype != np.int64 or counts.shape != (e.size + 1,) or np.any(counts < 0):
            raise FormatError(f"corrupted {KIND} bytes: counts do not fit {e.size} edges")
        total = sum(counts.tolist())  # (in Python ints: the int64 sum that n takes wraps past 2**63)
        if total > np.iinfo(np.int64).max:
            raise FormatError(f"corrupted {KIND} bytes: counts total {total}, past int64")
        return cls(e, counts)

    # queries --------------------------------------------------------------
    @property
    def edges(self) -> np.ndarray:
        """Bin edges (float64, read-only)."""
        return self._edges

    @property
    def counts(self) -> np.ndarray:
        """All ``len(edges) + 1`` counts: underflow, bins, overflow (a copy)."""
        return self._counts.copy()

    @property
    def bin_counts(self) -> np.ndarray:
        """Counts of the ``len(edges) - 1`` interior bins (a copy)."""
        return self._counts[1:-1].copy()

    @property
    def underflow(self) -> int:
        """Values below ``edges[0]``."""
        return int(self._counts[0])

    @property
    def overflow(self) -> int:
        """Values above ``edges[-1]``."""
        return int(self._counts[-1])

    @property
    def n_bins(self) -> int:
        """Number of interior bins, ``len(edges) - 1``."""
        return self._edges.size - 1

    @property
    def n(self) -> int:
        """Values counted, underflow and overflow included."""
        return int(self._counts.sum())


def _single_value_edges(v: float) -> np.ndarray:
    # [v, v] is not strictly increasing; [v, next float] is the narrowest
    # bin that holds v (in the closed last bin) and nothing else; for the
    # largest float, whose next is inf, [previous float, v] (v then in the
    # closed last bin as its right edge).
    if v == np.finfo(np.float64).max:
        return np.array([np.nextafter(v, -np.inf), v], dtype=np.float64)
    return np.array([v, np.nextafter(v, np.inf)], dtype=np.float64)


def _dedup(edges: np.ndarray) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64) + 0.0
    e = e[np.r_[True, e[1:] > e[:-1]]]
    return _single_value_edges(float(e[0])) if e.size == 1 else e


def _one_bin_per_value(distinct: np.ndarray, n_bins: int) -> np.ndarray | None:
    """Edges that put each of at most ``n_bins`` distinct values in a bin of its own.

    Equal-mass quantile edges on discrete data land *on* the values, and the
    closed last bin then holds the two largest values together; a test on
    such bins could not see mass move between them. Midpoints keep every
    value apart. Returns None when there are too many values (or fewer than
    two, which the caller handles).
    """
    d = np.asarray(distinct, dtype=np.float64)
    if not 2 <= d.size <= n_bins:
        return None
    mids = d[:-1] + (d[1:] - d[:-1]) / 2.0
    edges = np.concatenate(([d[0]], mids, [d[-1]]))
    if np.any(np.diff(edges) <= 0):  # adjacent floats: no room for a midpoint
        return None
    return edges


def equal_mass_edges(source: object, n_bins: int) -> np.ndarray:
    """Edges at the reference quantiles ``linspace(0, 1, n_bins + 1)``.

    Parameters
    ----------
    source
        A sorted 1-D array of finite values, or a
        :class:`~cudrift.sketches.quantiles.QuantileSketch`.
    n_bins
        Number of bins wanted (>= 1).

    Returns
    -------
    numpy.ndarray
        Strictly increasing float64 edges; the first is the minimum and the
        last the maximum. Quantiles use the inverted-CDF convention (the
        smallest data value whose count ``<=`` reaches ``q * n``), so edges
        are data values and an exact sketch gives the same edges as its
        sorted data. Repeated quantiles are merged. When the data holds at
        most ``n_bins`` distinct values the edges are the midpoints between
        them (plus the minimum and maximum), one bin per value; when all values are equal to ``v`` the edges are
        ``[v, nextafter(v, inf)]`` (one bin holding every value; ``[nextafter(v, -inf), v]`` for the
        largest float64).

    Raises
    ------
    EmptyInputError
        If ``source`` holds no values.
    ValueError
        If ``n_bins`` is not a positive integer or the array is not sorted
        and finite.

    Examples
    --------
    >>> import numpy as np
    >>> equal_mass_edges(np.arange(10.0), 2).tolist()
    [0.0, 4.0, 9.0]
    """
    from cudrift.sketches.quantiles import QuantileSketch

    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"Invalid value for n_bins: {n_bins!r} (expected a positive integer)")
    q = np.linspace(0.0, 1.0, int(n_bins) + 1)
    if isinstance(source, QuantileSketch):
        if source.n == 0:
            raise EmptyInputError("cannot compute equal-mass edges of an empty quantile sketch")
        if source.normalized_rank_error == 0.0:
            few = _one_bin_per_value(source.cdf_bounds().values, n_bins)
            if few is not None:
                return few
        edges = np.asarray(source.quantile(q), dtype=np.float64)
        edges[0], edges[-1] = source.min, source.max
        return _dedup(edges)
    x = as_numeric_1d(source, "equal_mass_edges")
    if x.size == 0:
        raise EmptyInputError("cannot compute equal-mass edges of an empty array")
    require_sorted_finite(x, "equal_mass_edges")
    few = _one_bin_per_value(x[np.r_[True, x[1:] != x[:-1]]], n_bins)
    if few is not None:
        return few
    # Smallest position p with p + 1 >= q * n: the same comparison the
    # sketch makes, so both paths agree on exact data.
    pos = np.clip(np.ceil(q * x.size).astype(np.int64) - 1, 0, x.size - 1)
    edges = x[pos].astype(np.float64)
    edges[0], edges[-1] = x[0], x[-1]
    return _dedup(edges)


def uniform_edges(min: float, max: float, n_bins: int) -> np.ndarray:
    """``n_bins`` equal-width bins from ``min`` to ``max``.

    Returns
    -------
    numpy.ndarray
        ``np.linspace(min, max, n_bins + 1)`` with repeats removed (a range
        narrower than ``n_bins`` float steps gives fewer bins); for
        ``min == max`` the edges are ``[min, nextafter(min, inf)]`` (``[nextafter(max, -inf), max]`` at the
        largest float64).

    Raises
    ------
    ValueError
        If the bounds are not finite, ``min > max`` or ``n_bins < 1``.

    Examples
    --------
    >>> uniform_edges(0.0, 1.0, 4).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"Invalid value for n_bins: {n_bins!r} (expected a positive integer)")
    lo, hi = float(min), float(max)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"Invalid value for min/max: bounds must be finite, got {lo!r}, {hi!r}")
    if lo > hi:
        raise ValueError(f"Invalid value for min/max: min={lo!r} > max={hi!r}")
    if lo == hi:
        return _single_value_edges(lo)
    if not np.isfinite(hi - lo):
        # a range past float64's (-1e308 to 1e308): linspace's step overflowed and every edge was NaN; halves
        # are exact at such magnitudes, and the ends are set as given
        e = np.linspace(lo / 2, hi / 2, int(n_bins) + 1) * 2
        e[0], e[-1] = lo, hi
        return _dedup(e)
    return _dedup(np.linspace(lo, hi, int(n_bins) + 1))
