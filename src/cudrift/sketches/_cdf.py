"""Bounds on an empirical CDF: the one interface between sketches and rank statistics.

Both an exact sorted column and a quantile sketch describe their data as a
:class:`CdfBounds`; every rank statistic "from profiles" is written against
it once, so the exact path and the sketch path share their formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CdfBounds:
    """Interval bounds on the counting function ``F(x) = #{values <= x}``.

    Attributes
    ----------
    values
        Strictly increasing finite float64 support points; ``values[0]`` is the
        minimum and ``values[-1]`` the maximum of the data (both exact).
    lo, hi
        int64 arrays, nondecreasing, ``lo <= hi``: for every ``x`` with
        ``values[i] <= x < values[i + 1]`` (``values[k] = +inf``),
        ``lo[i] <= F(x) <= hi[i]``. ``F(x) = 0`` below ``values[0]`` and
        ``lo[-1] == hi[-1] == n``.
    n
        Number of values described.

    For exact data ``lo == hi`` (the counts ``<= values[i]``).
    """

    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: int

    @property
    def is_exact(self) -> bool:
        return bool(np.array_equal(self.lo, self.hi))

    @property
    def rank_error(self) -> float:
        """Largest half-width of the bounds, as a fraction of ``n`` (0 for exact data)."""
        if self.n == 0 or len(self.values) == 0:
            return 0.0
        return float(np.max(self.hi - self.lo)) / (2.0 * self.n)

    @classmethod
    def from_sorted(cls, sorted_values: np.ndarray) -> "CdfBounds":
        """Exact bounds of a sorted, finite 1-D array."""
        x = np.asarray(sorted_values, dtype=np.float64)
        if x.size == 0:
            z = np.zeros(0, dtype=np.int64)
            return cls(np.zeros(0, dtype=np.float64), z, z, 0)
        last = np.flatnonzero(np.r_[x[1:] != x[:-1], True])
        counts = (last + 1).astype(np.int64)
        return cls(x[last], counts, counts.copy(), int(x.size))

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of ``F(x)`` at the points ``x`` (vectorized)."""
        x = np.asarray(x, dtype=np.float64)
        idx = np.searchsorted(self.values, x, side="right") - 1
        below = idx < 0
        idx = np.clip(idx, 0, max(len(self.values) - 1, 0))
        if len(self.values) == 0:
            z = np.zeros(x.shape, dtype=np.int64)
            return z, z
        lo = np.where(below, 0, self.lo[idx])
        hi = np.where(below, 0, self.hi[idx])
        return lo, hi
