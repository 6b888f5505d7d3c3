"""Count, mean, variance, min and max, accumulated in float64 and merged exactly by Chan's formula."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cudrift.errors import FormatError
from cudrift.sketches import _format
from cudrift.sketches._common import as_numeric_1d, require_finite

__all__ = ["Moments"]

KIND = "cudrift.moments"
VERSION = 1


# Finite values beyond 2**500 in magnitude are scaled by 2**-600 (exactly,
# a power of two) before squaring, so that no finite input overflows.
_BIG = 2.0**500
_SCALE = 2.0**-600


def _scale_for(lo: float, hi: float) -> float:
    return _SCALE if max(abs(lo), abs(hi)) > _BIG else 1.0


def _centered(x: Any, center: float, scale: float, xp: Any = np) -> tuple[float, float]:
    """``(mean, m2)`` of a batch from its deviations from ``center`` (``scale``: see :func:`_scale_for`).

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
        m2 = (float(d @ d) - s1 * s1 / m) / scale / scale
    return center + s1 / m / scale, max(m2, 0.0)


def sorted_moments(x: Any, xp: Any = np) -> tuple[float, float]:
    """``(mean, m2)`` of a sorted, finite, non-empty batch, as :class:`Moments` takes one (from its median).

    ``xp``: the array module of ``x`` (NumPy, or CuPy for sorted device
    columns).
    """
    lo, hi = float(x[0]), float(x[-1])
    return _centered(x, float(x[x.shape[0] // 2]), _scale_for(lo, hi), xp)


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
    m2
        Sum of squared deviations from the mean; 0.0 when empty.
    min, max
        Extremes; ``+inf`` and ``-inf`` when empty (the identities of min and max).

    Every batch is reduced in float64 (float32 input included) with a shifted
    formula (values beyond 2**500 in magnitude are scaled by a power of two
    first, so no finite input overflows; a variance beyond float64's range
    is ``+inf``), and batches are combined with Chan et al.'s parallel update,
    written symmetrically so that ``a + b`` and ``b + a`` are bit-identical;
    associativity holds to rounding: about 1e-15 relative in the mean, and in
    the variance about ``1e-16 * |mean| / std`` relative, since merges
    subtract the parts' means (values of 1e9 spread by 1e-3 keep about six
    digits of their variance through many merges).

    Examples
    --------
    >>> import numpy as np
    >>> m = Moments.empty().update(np.array([1.0, 2.0, 3.0, 4.0]))
    >>> m.count, m.mean, m.variance
    (4, 2.5, 1.25)
    """

    __slots__ = ("count", "mean", "m2", "min", "max")

    def __init__(self, count: int, mean: float, m2: float, min: float, max: float) -> None:
        self.count = count
        self.mean = mean
        self.m2 = m2
        self.min = min
        self.max = max

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
        return self._absorb(x, center, lo, hi, scale)

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
        return self._absorb(x, float(x[x.size // 2]), lo, hi, _scale_for(lo, hi))

    def _absorb(self, x: np.ndarray, center: float, lo: float, hi: float, scale: float) -> "Moments":
        """Fold in a batch, with deviations taken from ``center`` (``scale``: see :func:`_scale_for`)."""
        mean, m2 = _centered(x, center, scale)
        merged = self.merge(Moments(x.size, mean, m2, lo + 0.0, hi + 0.0))
        self.count, self.mean, self.m2 = merged.count, merged.mean, merged.m2
        self.min, self.max = merged.min, merged.max
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
        na, nb = self.count, other.count
        n = na + nb
        # Weighted mean and the Chan term are both symmetric in (a, b), so
        # the merge is commutative to the bit; weights below 1 keep the
        # weighted mean from overflowing.
        mean = self.mean * (na / n) + other.mean * (nb / n)
        delta = other.mean - self.mean
        m2 = (self.m2 + other.m2) + delta * delta * (na * nb / n)
        # +0.0 maps -0.0 to +0.0: min(-0.0, 0.0) would depend on the order.
        return Moments(n, mean, m2, min(self.min, other.min) + 0.0, max(self.max, other.max) + 0.0)

    def __add__(self, other: "Moments") -> "Moments":
        return self.merge(other)

    def copy(self) -> "Moments":
        """Independent copy."""
        return Moments(self.count, self.mean, self.m2, self.min, self.max)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Moments):
            return NotImplemented
        return self.count == other.count and all(
            _same(getattr(self, f), getattr(other, f)) for f in ("mean", "m2", "min", "max")
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
        """Versioned, CRC-checked bytes (kind ``"cudrift.moments"``, version 1)."""
        meta = {"count": self.count, "mean": self.mean, "m2": self.m2, "min": self.min, "max": self.max}
        return _format.pack(KIND, VERSION, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Moments":
        """Read bytes written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            If the bytes are truncated, corrupted, foreign or inconsistent.
        """
        _, meta, _ = _format.unpack(data, KIND, VERSION)
        try:
            count = meta["count"]
            mean, m2, lo, hi = (float(meta[k]) for k in ("mean", "m2", "min", "max"))
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"corrupted {KIND} bytes: {exc!r}") from None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise FormatError(f"corrupted {KIND} bytes: bad count {count!r}")
        if count == 0:
            return cls.empty()
        if not (math.isfinite(mean) and m2 >= 0 and math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise FormatError(f"corrupted {KIND} bytes: inconsistent moments")
        return cls(count, mean, m2, lo, hi)
