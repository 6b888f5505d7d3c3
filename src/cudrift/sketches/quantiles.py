"""Deterministic mergeable quantile sketch with a tracked, rigorous rank error.

Design
------
A *summary* of a multiset of ``n`` finite values is a triple of arrays
``(values, lo, hi)`` with the meaning of :class:`~cudrift.sketches._cdf.CdfBounds`:
``values`` are strictly increasing data values (the first is the exact
minimum, the last the exact maximum) and, writing ``F(x) = #{data <= x}``,

    ``lo[i] <= F(x) <= hi[i]``  for every ``x`` in ``[values[i], values[i+1])``

with ``lo[-1] == hi[-1] == n``. This is the step-function form of a
Greenwald–Khanna summary (entries ``(v, rmin, rmax)``; Greenwald & Khanna
2004, "Power-conserving computation of order-statistics over sensor
networks"), and it makes the two GK operations one-liners with a proof that
is checked by arithmetic, not assumed:

COMBINE
    ``F`` of a disjoint union is the sum of the parts' ``F``, so the bounds of
    the union are the pointwise sums of the parts' bounds on the union of
    their support points (integer arithmetic: exactly associative and
    commutative). The half-width ``(hi - lo) / 2`` of the sum, relative to
    ``n1 + n2``, is at most ``max(eps1, eps2)`` (GK's COMBINE lemma).
PRUNE
    Keep ``k + 1`` support points: the minimum, the maximum, and for every
    target rank ``t * n / k`` (``t = 1 .. k-1``) the first point whose upper
    bound reaches it. Between two kept points ``a < b`` the new bounds are
    ``lo[a]`` and ``hi[b - 1]`` (``F`` is nondecreasing), a width of at most
    ``n / k`` plus the width already at ``a``: the normalized half-width
    grows by at most ``1 / (2k)`` (GK's PRUNE lemma).

A batch of ``m`` values (sorted once by the caller) becomes a level-0
summary in O(m): kept exactly when it holds at most ``k + 1`` distinct values
(always when ``m <= k + 1``), otherwise as ``k + 1`` points at evenly spaced
positions of the sorted batch with exact counts from ``np.searchsorted``
(one prune).

Levels (a binary counter, as in KLL)
    Level ``i`` holds at most one summary, of at least ``2**i`` batches, that
    went through at most ``i + 1`` prunes. Adding summaries to level ``i``
    combines them; if the result still has at most ``k + 1`` points it stays
    at level ``i`` (no prune, no new error), otherwise it is pruned and
    carried to level ``i + 1``. :meth:`QuantileSketch.merge` adds two level
    stacks like binary addition, with the same rule.

Guarantee (what :attr:`QuantileSketch.normalized_rank_error` bounds)
    :meth:`QuantileSketch.cdf_bounds` combines every level without pruning.
    For every real ``x`` the true ``F(x)`` lies in the returned bounds; this
    follows from the two rules above by exact integer arithmetic and does not
    depend on the data (ties, sorted input, tiny batches) or the merge order.
    The sketch reports the *actual* half-width, ``max(hi - lo) / (2 n)``,
    which is 0.0 while the sketch is exact and never more than the worst case
    ``(floor(log2(B)) + 1) / (2 k)`` for ``B`` batches
    (:func:`worst_case_rank_error`). With the default ``k = 2048`` that is at
    most 0.49% of ``n`` for up to ``2**20 - 1`` batches (0.5% is reached at
    ``2**20``); in practice it is several times smaller.

Merge laws
    ``a + b`` and ``b + a`` are identical, down to ``to_bytes()``;
    ``empty()`` is an exact identity. Associativity holds exactly while no
    prune happens; otherwise ``(a + b) + c`` and ``a + (b + c)`` may prune at
    different points and differ, each staying within its own reported bound
    of the exact answer (the same property as DataSketches' KLL sketch).

Memory: at most ``k + 1`` points per level, ``O(k log B)`` in total.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from cudrift.errors import FormatError, IncompatibleSketchError
from cudrift.sketches import _format
from cudrift.sketches._cdf import CdfBounds
from cudrift.sketches._common import as_float, as_numeric_1d, require_finite, require_sorted_finite

__all__ = ["QuantileSketch", "worst_case_rank_error", "DEFAULT_K"]

KIND = "cudrift.quantiles"
VERSION = 1
DEFAULT_K = 2048
_MAX_K = 1 << 24


class _Summary(NamedTuple):
    """Bounds ``lo[i] <= F(x) <= hi[i]`` on ``[values[i], values[i+1])``; see the module docstring."""

    values: np.ndarray  # float64, strictly increasing, -0.0 stored as +0.0
    lo: np.ndarray  # int64, nondecreasing
    hi: np.ndarray  # int64, nondecreasing, lo <= hi, lo[-1] == hi[-1] == n

    @property
    def n(self) -> int:
        return int(self.hi[-1])


def _mk(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> _Summary:
    """Build a summary with read-only arrays: summaries are shared between sketches, never mutated."""
    for a in (values, lo, hi):
        a.setflags(write=False)
    return _Summary(values, lo, hi)


def worst_case_rank_error(k: int, n_batches: int) -> float:
    """Largest normalized rank error a sketch of ``n_batches`` batches can report.

    Parameters
    ----------
    k
        The sketch's ``k``.
    n_batches
        Number of non-empty batches added by ``update`` / ``update_sorted``
        over every sketch that was merged into it.

    Returns
    -------
    float
        ``(floor(log2(n_batches)) + 1) / (2 k)``; 0.0 for no batches.

    Examples
    --------
    >>> worst_case_rank_error(2048, 2**19)
    0.0048828125
    """
    if n_batches <= 0:
        return 0.0
    return (int(n_batches).bit_length()) / (2.0 * k)


def _exact_sorted(x: np.ndarray) -> _Summary:
    """Exact summary of a sorted finite batch: distinct values and their counts ``<=``."""
    last = np.flatnonzero(np.r_[x[1:] != x[:-1], True])
    counts = (last + 1).astype(np.int64)
    # Adding 0.0 turns -0.0 into +0.0 so the stored bytes never depend on
    # which of two equal zeros the sort happened to put last.
    return _mk(x[last].astype(np.float64) + 0.0, counts, counts.copy())


def _summarize_sorted(x: np.ndarray, k: int) -> _Summary:
    """Level-0 summary of a sorted, finite, non-empty batch (float32 or float64)."""
    m = x.size
    if m <= k + 1:
        return _exact_sorted(x)
    # k + 1 evenly spaced positions, the last one the maximum. Consecutive
    # positions are at most ceil(m / k) apart, so the width of every interval
    # G(next) - F(this) is below m / k.
    pos = np.empty(k + 1, dtype=np.int64)
    pos[:k] = (np.arange(k, dtype=np.int64) * m) // k
    pos[k] = m - 1
    v = x[pos]
    v = v[np.r_[True, v[1:] != v[:-1]]]
    # v keeps x's dtype so searchsorted compares without converting x.
    f = np.searchsorted(x, v, side="right").astype(np.int64)
    g = np.searchsorted(x, v, side="left").astype(np.int64)
    hi = np.empty_like(f)
    hi[:-1] = g[1:]
    hi[-1] = m
    if np.array_equal(hi, f):
        # No value lies between two kept points: the summary is already exact.
        return _mk(v.astype(np.float64) + 0.0, f, hi)
    if v.size <= k:
        # Duplicates among the kept points hint at low cardinality; one O(m)
        # pass decides whether an exact summary fits in k + 1 points.
        distinct = int(np.count_nonzero(x[1:] != x[:-1])) + 1
        if distinct <= k + 1:
            return _exact_sorted(x)
    return _mk(v.astype(np.float64) + 0.0, f, hi)


def _combine(parts: list[_Summary]) -> _Summary:
    """Summary of the disjoint union: pointwise sums of the bounds on the union of points."""
    if len(parts) == 1:
        return parts[0]
    values = np.unique(np.concatenate([p.values for p in parts]))
    lo = np.zeros(values.size, dtype=np.int64)
    hi = np.zeros(values.size, dtype=np.int64)
    for p in parts:
        idx = np.searchsorted(p.values, values, side="right") - 1
        inside = idx >= 0
        # Below a part's minimum its F is exactly 0, so it adds nothing there.
        lo[inside] += p.lo[idx[inside]]
        hi[inside] += p.hi[idx[inside]]
    return _mk(values, lo, hi)


def _prune(s: _Summary, k: int) -> _Summary:
    """Keep at most ``k + 1`` points (min, max and evenly spaced ranks); see PRUNE above."""
    size = s.values.size
    if size <= k + 1:
        return s
    n = s.n
    targets = np.arange(1, k, dtype=np.float64) * (n / k)
    picked = np.searchsorted(s.hi, targets, side="left")
    keep = np.unique(np.concatenate(([0], picked, [size - 1])))
    hi = np.empty(keep.size, dtype=np.int64)
    # On [values[a], values[b]) F is at most F just below values[b], which the
    # old interval ending there bounds by hi[b - 1].
    hi[:-1] = s.hi[keep[1:] - 1]
    hi[-1] = s.hi[-1]
    return _mk(s.values[keep], s.lo[keep], hi)


def _add_stacks(a: list[_Summary | None], b: list[_Summary | None], k: int) -> list[_Summary | None]:
    """Binary addition of two level stacks (symmetric in ``a`` and ``b``)."""
    out: list[_Summary | None] = []
    carry: _Summary | None = None
    depth = max(len(a), len(b))
    i = 0
    while i < depth or carry is not None:
        parts = [p for p in (a[i] if i < len(a) else None, b[i] if i < len(b) else None, carry) if p is not None]
        carry = None
        if not parts:
            out.append(None)
        else:
            total = _combine(parts)
            if total.values.size <= k + 1:
                out.append(total)
            else:
                out.append(None)
                carry = _prune(total, k)
        i += 1
    while out and out[-1] is None:
        out.pop()
    return out



def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= int(k) <= _MAX_K:
        raise ValueError(f"Invalid value for k: {k!r} (expected an integer in [2, {_MAX_K}])")
    return int(k)


class QuantileSketch:
    """Mergeable quantile sketch with a rigorous, tracked rank error.

    See the module docstring for the design and the guarantee. Build one
    with :meth:`empty` or :meth:`from_sorted`; feed it with :meth:`update`
    (unsorted) or :meth:`update_sorted`.

    Queries on an empty sketch: :attr:`n` is 0, :attr:`min`, :attr:`max`,
    :meth:`quantile` and :meth:`rank` return NaN, :attr:`normalized_rank_error`
    is 0.0 and :meth:`cdf_bounds` has no points.

    Examples
    --------
    >>> import numpy as np
    >>> s = QuantileSketch.empty(k=64).update(np.arange(1000.0))
    >>> s.n, s.min, s.max
    (1000, 0.0, 999.0)
    >>> abs(s.quantile(0.5) - 500) <= s.normalized_rank_error * 1000 + 1
    True
    """

    __slots__ = ("_k", "_levels", "_n_batches", "_bounds")

    def __init__(self, k: int, levels: list[_Summary | None], n_batches: int) -> None:
        self._k = k
        self._levels = levels
        self._n_batches = n_batches
        self._bounds: CdfBounds | None = None

    # construction ---------------------------------------------------------
    @classmethod
    def empty(cls, k: int = DEFAULT_K) -> "QuantileSketch":
        """Sketch of no values.

        Parameters
        ----------
        k
            Points kept per level (2 .. 2**24). The rank error is at most
            ``(floor(log2(batches)) + 1) / (2 k)``; memory is ``O(k log batches)``.
        """
        return cls(_check_k(k), [], 0)

    @classmethod
    def from_sorted(cls, sorted_values: np.ndarray, k: int = DEFAULT_K) -> "QuantileSketch":
        """Sketch of one sorted batch of finite values (see :meth:`update_sorted`)."""
        return cls.empty(k).update_sorted(sorted_values)

    def update(self, values: np.ndarray) -> "QuantileSketch":
        """Add a batch of finite values in any order; returns ``self``.

        Raises
        ------
        ValueError
            If a value is NaN or infinite.
        """
        x = as_float(as_numeric_1d(values, "QuantileSketch.update"))
        require_finite(x, "QuantileSketch.update")
        return self._update_sorted_trusted(np.sort(x))

    def update_sorted(self, sorted_values: np.ndarray) -> "QuantileSketch":
        """Add a batch of finite values sorted ascending; returns ``self``.

        The batch costs O(m) beyond the caller's sort (float32 input is
        searched as float32).

        Raises
        ------
        ValueError
            If the values are not sorted or not finite.
        """
        x = as_float(as_numeric_1d(sorted_values, "QuantileSketch.update_sorted"))
        require_sorted_finite(x, "QuantileSketch.update_sorted")
        return self._update_sorted_trusted(x)

    def _update_sorted_trusted(self, x: np.ndarray) -> "QuantileSketch":
        """Add a sorted finite float32/float64 batch without validation (column profile path)."""
        if x.size == 0:
            return self
        self._levels = _add_stacks(self._levels, [_summarize_sorted(x, self._k)], self._k)
        self._n_batches += 1
        self._bounds = None
        return self

    # monoid ---------------------------------------------------------------
    def merge(self, other: "QuantileSketch") -> "QuantileSketch":
        """New sketch of both inputs' values; neither input changes.

        Raises
        ------
        IncompatibleSketchError
            If the two sketches have different ``k``.
        """
        if not isinstance(other, QuantileSketch):
            raise TypeError(f"cannot merge QuantileSketch with {type(other).__name__}")
        if self._k != other._k:
            raise IncompatibleSketchError(
                f"cannot merge quantile sketches with different k: k={self._k} vs k={other._k}"
            )
        # Summaries are never mutated in place, so sharing them is safe.
        levels = _add_stacks(self._levels, other._levels, self._k)
        return QuantileSketch(self._k, levels, self._n_batches + other._n_batches)

    def __add__(self, other: "QuantileSketch") -> "QuantileSketch":
        return self.merge(other)

    def copy(self) -> "QuantileSketch":
        """Independent copy."""
        return QuantileSketch(self._k, list(self._levels), self._n_batches)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        if self._k != other._k or self._n_batches != other._n_batches or len(self._levels) != len(other._levels):
            return False
        for a, b in zip(self._levels, other._levels):
            if (a is None) != (b is None):
                return False
            if a is not None and not all(np.array_equal(x, y) for x, y in zip(a, b)):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(k={self._k}, n={self.n}, levels={self.num_levels}, "
            f"retained={self.num_retained}, normalized_rank_error={self.normalized_rank_error:.3g})"
        )

    # serialization --------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned, CRC-checked bytes (kind ``"cudrift.quantiles"``, version 1)."""
        present = [i for i, s in enumerate(self._levels) if s is not None]
        parts = [self._levels[i] for i in present]
        arrays = {
            "sizes": np.array([p.values.size for p in parts], dtype=np.int64),
            "values": np.concatenate([p.values for p in parts]) if parts else np.zeros(0),
            "lo": np.concatenate([p.lo for p in parts]) if parts else np.zeros(0, dtype=np.int64),
            "hi": np.concatenate([p.hi for p in parts]) if parts else np.zeros(0, dtype=np.int64),
        }
        meta = {"k": self._k, "levels": present, "n_batches": self._n_batches}
        return _format.pack(KIND, VERSION, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> "QuantileSketch":
        """Read bytes written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            If the bytes are truncated, corrupted, of another kind or version,
            or describe an invalid summary.
        """
        _, meta, arrays = _format.unpack(data, KIND, VERSION)
        try:
            k = _check_k(meta["k"])
            present, n_batches = meta["levels"], meta["n_batches"]
            sizes, values, lo, hi = (arrays[name] for name in ("sizes", "values", "lo", "hi"))
        except (KeyError, ValueError) as exc:
            raise FormatError(f"corrupted {KIND} bytes: {exc}") from None
        if not (
            isinstance(present, list)
            and all(_format.json_count(i, 64) for i in present)
            and sorted(set(present)) == present
        ):
            raise FormatError(f"corrupted {KIND} bytes: levels are not ascending integers in [0, 64)")
        if not _format.json_count(n_batches):
            raise FormatError(f"corrupted {KIND} bytes: bad n_batches {n_batches!r}")
        dtypes = {"sizes": np.int64, "values": np.float64, "lo": np.int64, "hi": np.int64}
        for name, a in zip(dtypes, (sizes, values, lo, hi)):
            if a.dtype != dtypes[name] or a.ndim != 1:
                raise FormatError(
                    f"corrupted {KIND} bytes: {name} is {a.ndim}-D {a.dtype}, expected 1-D {np.dtype(dtypes[name])}"
                )
        if (
            sizes.size != len(present)
            or np.any(sizes < 1)
            or sum(sizes.tolist()) != values.size  # (Python ints: int64 sums of crafted sizes wrap)
            or lo.size != values.size
            or hi.size != values.size
        ):
            raise FormatError(
                f"corrupted {KIND} bytes: inconsistent level layout ({len(present)} levels, sizes {sizes.size}, "
                f"values {values.size}, lo {lo.size}, hi {hi.size})"
            )
        levels: list[_Summary | None] = [None] * (present[-1] + 1 if present else 0)
        start = 0
        for level, size in zip(present, sizes.tolist()):
            s = _mk(values[start : start + size], lo[start : start + size], hi[start : start + size])
            start += size
            if not _valid(s, k):
                raise FormatError(f"corrupted {KIND} bytes: level {level} is not a valid summary")
            levels[level] = s
        return cls(k, levels, n_batches)

    # queries --------------------------------------------------------------
    @property
    def k(self) -> int:
        """Points kept per level."""
        return self._k

    @property
    def n(self) -> int:
        """Number of values summarized (0 when empty)."""
        return sum(s.n for s in self._levels if s is not None)

    @property
    def n_batches(self) -> int:
        """Non-empty batches added, summed over merged sketches."""
        return self._n_batches

    @property
    def is_empty(self) -> bool:
        return not any(s is not None for s in self._levels)

    @property
    def num_levels(self) -> int:
        """Height of the level stack."""
        return len(self._levels)

    @property
    def num_retained(self) -> int:
        """Support points stored over all levels."""
        return sum(s.values.size for s in self._levels if s is not None)

    @property
    def min(self) -> float:
        """Exact minimum; NaN when empty."""
        b = self.cdf_bounds()
        return float(b.values[0]) if b.n else math.nan

    @property
    def max(self) -> float:
        """Exact maximum; NaN when empty."""
        b = self.cdf_bounds()
        return float(b.values[-1]) if b.n else math.nan

    @property
    def normalized_rank_error(self) -> float:
        """Rigorous bound ``max(hi - lo) / (2 n)`` of :meth:`cdf_bounds`; 0.0 when exact or empty.

        For every ``x``, the midpoint estimate :meth:`rank` is within this
        fraction of the true ``F(x) / n``.
        """
        return self.cdf_bounds().rank_error

    def cdf_bounds(self) -> CdfBounds:
        """All levels combined (no prune) as :class:`~cudrift.sketches._cdf.CdfBounds`.

        ``values`` strictly increasing (first = exact min, last = exact max),
        and ``lo[i] <= F(x) <= hi[i]`` for ``x`` in ``[values[i], values[i+1])``
        hold for the true counting function of every value ever added.
        Empty sketch: zero points, ``n == 0``.
        """
        if self._bounds is None:
            parts = [s for s in self._levels if s is not None]
            if not parts:
                z = np.zeros(0, dtype=np.int64)
                self._bounds = CdfBounds(np.zeros(0, dtype=np.float64), z, z.copy(), 0)
            else:
                s = _combine(parts)
                self._bounds = CdfBounds(s.values, s.lo, s.hi, s.n)
        return self._bounds

    def quantile(self, q: float | np.ndarray) -> float | np.ndarray:
        """Estimate of the ``q``-quantile (inverted-CDF convention).

        Returns the first support value whose midpoint estimate of ``F``
        reaches ``q * n``. With error ``eps = normalized_rank_error`` the
        returned value ``v`` satisfies ``F(v) >= (q - eps) n`` and
        ``#{x < v} < (q + eps) n``; when the sketch is exact this is
        ``np.quantile(data, q, method="inverted_cdf")``.

        Parameters
        ----------
        q
            Scalar or array of levels in ``[0, 1]``.

        Returns
        -------
        float or numpy.ndarray
            Same shape as ``q``; NaN for an empty sketch.

        Raises
        ------
        ValueError
            If a level is outside ``[0, 1]`` or NaN.
        """
        qa = np.asarray(q, dtype=np.float64)
        bad = ~((qa >= 0.0) & (qa <= 1.0))
        if np.any(bad):
            raise ValueError(f"Invalid value for q: {qa[bad].flat[0].item()!r} (expected a level in [0, 1])")
        b = self.cdf_bounds()
        if b.n == 0:
            out = np.full(qa.shape, np.nan)
        else:
            # Compare 2F-estimates with 2qn in integers/floats without halving.
            idx = np.searchsorted(b.lo + b.hi, (qa * b.n) * 2.0, side="left")
            out = b.values[np.minimum(idx, b.values.size - 1)]
        return float(out) if out.ndim == 0 else out

    def rank(self, x: float | np.ndarray) -> float | np.ndarray:
        """Estimate of ``F(x) / n``, the fraction of values ``<= x``.

        Within :attr:`normalized_rank_error` of the truth; exactly 0 below the
        minimum and 1 at or above the maximum. NaN for NaN ``x`` or an empty
        sketch.
        """
        xa = np.asarray(x, dtype=np.float64)
        b = self.cdf_bounds()
        if b.n == 0:
            out = np.full(xa.shape, np.nan)
        else:
            lo, hi = b.evaluate(xa)
            out = np.where(np.isnan(xa), np.nan, (lo + hi) / (2.0 * b.n))
        return float(out) if out.ndim == 0 else out

    def cdf(self, x: float | np.ndarray) -> float | np.ndarray:
        """Alias of :meth:`rank`."""
        return self.rank(x)


def _valid(s: _Summary, k: int) -> bool:
    """Structural invariants of a stored summary (used on untrusted bytes)."""
    v, lo, hi = s
    return bool(
        1 <= v.size <= k + 1
        and np.all(np.isfinite(v))
        and np.all(v[1:] > v[:-1])
        and lo[0] >= 0
        and np.all(lo <= hi)
        and np.all(lo[1:] >= lo[:-1])
        and np.all(hi[1:] >= hi[:-1])
        and lo[-1] == hi[-1]
        and hi[-1] >= v.size
    )
