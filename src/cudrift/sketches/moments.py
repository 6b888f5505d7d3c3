"""Count, mean, variance, min and max, accumulated in float64 and merged exactly by Chan's formula."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cudrift.errors import FormatError
from cudrift.sketches import _format
from cudrift.sketches._common import as_numeric_1d, dot, require_finite

__all__ = ["Moments"]

KIND = "cudrift.moments"
#: 2: ``mean_lo`` (the mean's remainder); version 1 bytes load with it 0.
VERSION = 2


# Finite values beyond 2**500 in magnitude are scaled by 2**-600 (exactly,
# a power of two) before squaring, so that no finite input overflows.
_BIG = 2.0**500
_SCALE = 2.0**-600


def _scale_for(lo: float, hi: float) -> float:
    return _SCALE if max(abs(lo), abs(hi)) > _BIG else 1.0


def two_sum(a: float, b: float) -> tuple[float, float]:
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e == a + b`` exactly (Knuth's TwoSum; finite inputs)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _centered(x: Any, center: float, scale: float, xp: Any = np) -> tuple[float, float, float]:
    """``(mean, m2, mean_lo)`` of a batch from its deviations from ``center`` (``scale``: see
    :func:`_scale_for`); ``mean + mean_lo`` is the mean to the deviations' rounding (:class:`Moments`).

    ``xp`` is the array module of ``x``: NumPy, or CuPy for the GPU path's
    sorted device columns (:func:`sorted_moments`), so both take a batch the
    same way.
    """
    m = x.shape[0]
    if scale == 1.0:
        d = xp.subtract(x, center, dtype=np.float64)
    else:
        d = xp.subtract(xp.multiply(x, scale, dtype=np.float64), center * scale)
    s1 = float(d.sum())
    with np.errstate(over="ignore"):
        # Divide by scale twice: scale**2 would underflow to 0. A variance
        # beyond float64's range legitimately becomes +inf.
        # s1 * (s1 / m), not s1 * s1 / m: deviations of values near 2**500 (scaled only past it) sum to more than
        # sqrt(float64 max), and s1 * s1 overflowed (a variance of 0, or NaN; the GPU kernel divides first too)
        m2 = ((dot(d, d) if xp is np else float(d @ d)) - s1 * (s1 / m)) / scale / scale
    mean, lo = two_sum(center, s1 / m / scale)
    return mean, max(m2, 0.0), lo if math.isfinite(lo) else 0.0


def sorted_moments(x: Any, xp: Any = np) -> tuple[float, float, float]:
    """``(mean, m2, mean_lo)`` of a sorted, finite, non-empty batch, as :class:`Moments` takes one (from its
    median).

    ``xp``: the array module of ``x`` (NumPy, or CuPy for sorted device
    columns).
    """
    lo, hi = float(x[0]), float(x[-1])
    return _centered(x, float(x[x.shape[0] // 2]), _scale_for(lo, hi), xp)


def _order_key(m: "Moments") -> tuple:
    """A total order of non-empty moments on every field a merge reads (none NaN past ``empty``)."""
    return (m.mean, m.mean_lo, m.count, m.m2, m.min, m.max)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class Moments:
    """Streaming moments of finite values.

    Attributes
    ----------
    count
        Number of values.
    mean
        Mean; NaN when empty.
    mean_lo
        The mean's remainder: ``mean + mean_lo`` is the mean to far better
        than ``mean``'s own rounding, and merges work from it (see below);
        0.0 when empty.
    m2
        Sum of squared deviations from the mean; 0.0 when empty.
    min, max
        Extremes; ``+inf`` and ``-inf`` when empty (the identities of min and max).

    Every batch is reduced in float64 (float32 input included) with a shifted
    formula (values beyond 2**500 in magnitude are scaled by a power of two
    first, so no finite input overflows; a variance beyond float64's range
    is ``+inf``), and batches are combined with Chan et al.'s parallel update,
    on operands put in one order so that ``a + b`` and ``b + a`` are
    bit-identical; associativity holds to rounding, about 1e-15 relative in
    the mean and the variance. The update subtracts the parts' means, which
    rounded to ``mean``'s precision would cost ``1e-16 * |mean| / std`` of the
    variance a merge (a column of 1e9 + N(0, 1e-6) read in batches of 1,000
    rows had its standard deviation 2.6% off): each mean is therefore kept as
    the unevaluated sum ``mean + mean_lo`` (a double-double), whose parts'
    difference is exact to the deviations' rounding, whatever the offset.

    Examples
    --------
    >>> import numpy as np
    >>> m = Moments.empty().update(np.array([1.0, 2.0, 3.0, 4.0]))
    >>> m.count, m.mean, m.variance
    (4, 2.5, 1.25)
    """

    __slots__ = ("count", "mean", "m2", "min", "max", "mean_lo")

    def __init__(self, count: int, mean: float, m2: float, min: float, max: float, mean_lo: float = 0.0) -> None:
        self.count = count
        self.mean = mean
        self.m2 = m2
        self.min = min
        self.max = max
        self.mean_lo = mean_lo

    @classmethod
    def empty(cls) -> "Moments":
        """Moments of no values: count 0, mean NaN, m2 0.0, min +inf, max -inf."""
        return cls(0, math.nan, 0.0, math.inf, -math.inf)

    def update(self, values: np.ndarray) -> "Moments":
        """Add a batch of finite values; returns ``self``.

        The batch mean is computed first and the squared deviations from it
        second (two passes), so float32 data loses nothing to cancellation.

        Raises
        ------
        ValueError
            If the batch holds NaN or an infinity.
        """
        x = as_numeric_1d(values, "Moments.update")
        require_finite(x, "Moments.update")
        if x.size == 0:
            return self
        lo, hi = float(x.min()), float(x.max())
        scale = _scale_for(lo, hi)
        scaled = x if scale == 1.0 else np.multiply(x, scale, dtype=np.float64)
        center = float(np.sum(scaled, dtype=np.float64)) / x.size / scale
        return self._add_batch(x, center, lo, hi, scale)

    def _update_sorted_trusted(self, x: np.ndarray) -> "Moments":
        """Add a sorted finite float batch in one pass (column profile path).

        Deviations are taken from the batch median ``c``: ``m2 = S2 - S1**2/m``
        with ``S1 = sum(x - c)``, ``S2 = sum((x - c)**2)``. Its relative error
        is about ``eps * (1 + (mean - c)**2 / var)``, and ``|mean - median|``
        never exceeds the standard deviation, so the one pass is as accurate
        as two.
        """
        if x.size == 0:
            return self
        lo, hi = float(x[0]), float(x[-1])
        return self._add_batch(x, float(x[x.size // 2]), lo, hi, _scale_for(lo, hi))

    def _add_batch(self, x: np.ndarray, center: float, lo: float, hi: float, scale: float) -> "Moments":
        """Fold in a batch, with deviations taken from ``center`` (``scale``: see :func:`_scale_for`)."""
        mean, m2, mean_lo = _centered(x, center, scale)
        return self.absorb(Moments(x.size, mean, m2, lo + 0.0, hi + 0.0, mean_lo))

    def absorb(self, other: "Moments") -> "Moments":
        """Merge ``other`` into these moments in place; returns ``self``."""
        merged = self.merge(other)
        for k in self.__slots__:
            setattr(self, k, getattr(merged, k))
        return self

    # monoid ---------------------------------------------------------------
    def merge(self, other: "Moments") -> "Moments":
        """New moments of both inputs' values; neither input changes."""
        if not isinstance(other, Moments):
            raise TypeError(f"cannot merge Moments with {type(other).__name__}")
        if other.count == 0:
            return self.copy()
        if self.count == 0:
            return other.copy()
        # One order of the operands (a total one on what the arithmetic reads), so that a + b and b + a are
        # bit-identical.
        a, b = (self, other) if _order_key(self) <= _order_key(other) else (other, self)
        na, nb = a.count, b.count
        n = na + nb
        # The means' difference from their double-doubles: exact to their rounding however large the means
        # (a.mean and b.mean are within a factor 2 of each other wherever their difference could cancel)
        delta = (b.mean - a.mean) + (b.mean_lo - a.mean_lo)
        if math.isfinite(delta):
            mean, mean_lo = two_sum(a.mean, a.mean_lo + delta * (nb / n))
            if not math.isfinite(mean_lo):  # (the mean rounded to float64's largest: no remainder)
                mean_lo = 0.0
        else:
            # huge means of opposite signs: weights below 1 keep the weighted mean from overflowing (M2 then
            # legitimately becomes +inf)
            mean, mean_lo = a.mean * (na / n) + b.mean * (nb / n), 0.0
        m2 = (a.m2 + b.m2) + delta * delta * (na * nb / n)
        # +0.0 maps -0.0 to +0.0: min(-0.0, 0.0) would depend on the order.
        return Moments(n, mean, m2, min(a.min, b.min) + 0.0, max(a.max, b.max) + 0.0, mean_lo)

    def __add__(self, other: "Moments") -> "Moments":
        return self.merge(other)

    def copy(self) -> "Moments":
        """Independent copy."""
        return Moments(self.count, self.mean, self.m2, self.min, self.max, self.mean_lo)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Moments):
            return NotImplemented
        return self.count == other.count and all(
            _same(getattr(self, f), getattr(other, f)) for f in ("mean", "m2", "min", "max", "mean_lo")
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Moments(count={self.count}, mean={self.mean!r}, std={self.std!r}, min={self.min!r}, max={self.max!r})"

    # queries --------------------------------------------------------------
    def var(self, ddof: int = 0) -> float:
        """Variance ``m2 / (count - ddof)``; NaN when ``count <= ddof``.

        Exactly 0.0 when every value is the same (``min == max``): float
        sums of a constant such as 0.1 leave ``m2`` at ~1e-33 rather than 0,
        which would give a constant column a scale of ~1e-17.
        """
        if self.count <= ddof:
            return math.nan
        if self.min == self.max:
            return 0.0
        return self.m2 / (self.count - ddof)

    @property
    def variance(self) -> float:
        """Population variance (``ddof=0``); NaN when empty."""
        return self.var(0)

    @property
    def std(self) -> float:
        """Population standard deviation; NaN when empty."""
        return math.sqrt(self.variance) if self.count else math.nan

    @property
    def sum(self) -> float:
        """Sum of the values (``mean * count``); 0.0 when empty."""
        return self.mean * self.count if self.count else 0.0

    # serialization --------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned, CRC-checked bytes (kind ``"cudrift.moments"``, version 2)."""
        meta = {"count": self.count, "mean": self.mean, "m2": self.m2, "min": self.min, "max": self.max,
                "mean_lo": self.mean_lo}
        return _format.pack(KIND, VERSION, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Moments":
        """Read bytes written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            If the bytes are truncated, corrupted, foreign or inconsistent.
        """
        version, meta, _ = _format.unpack(data, KIND, VERSION)
        try:
            count = meta["count"]
            mean, m2, lo, hi = (float(meta[k]) for k in ("mean", "m2", "min", "max"))
            mean_lo = float(meta["mean_lo"]) if version >= 2 else 0.0
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: float(10**400)
            raise FormatError(f"corrupted {KIND} bytes: {exc!r}") from None
        # (past int64 a count is no count of values, and a mean weighted by it overflows a float)
        if not _format.json_count(count):
            raise FormatError(f"corrupted {KIND} bytes: bad count {count!r}")
        if count == 0:
            return cls.empty()
        if not (math.isfinite(mean) and m2 >= 0 and math.isfinite(lo) and math.isfinite(hi) and lo <= hi
                and abs(mean_lo) <= abs(mean) * 2.0**-52):
            raise FormatError(f"corrupted {KIND} bytes: inconsistent moments")
        return cls(count, mean, m2, lo, hi, mean_lo)
