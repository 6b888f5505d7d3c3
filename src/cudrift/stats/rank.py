"""Rank statistics from profiles: KS, Wasserstein, Cramér-von Mises and Anderson-Darling from CDF bounds.

Each function takes two :class:`~cudrift.sketches._cdf.CdfBounds` (reference
first): exact ones from sorted data, or approximate ones from a quantile
sketch, which only bound the counting function ``F(x) = #{values <= x}``.
Both are laid on the union of their support points (a
:class:`~cudrift.stats._grid.Grid`); on each segment between consecutive
points the two counting functions lie in known intervals, and interval
arithmetic over the segments gives a lower and an upper bound on the
statistic that hold for every data set compatible with the bounds. The
result reports the lower end as ``statistic`` and the width as
``statistic_error``, a rigorous bound on ``exact statistic - statistic``
(which is never negative; up to a relative 1e-9 allowance for
floating-point rounding). From the lower end, a drift is reported only
where the sketches show one: the midpoint, reported before 2026-11-27 for
KS and Wasserstein, reported drift on identical data where the bounds are
wide (normalized Wasserstein 0.194 against an exact 0.0024 on 1e6 lognormal
rows, whose top segment spans most of the range; KS p = 0.003 against an
exact 0.098 on 2e6 normal rows profiled in 200 merged shards).

For exact inputs the statistic is computed by the very formula the
raw-array functions use and equals theirs; ``statistic_error`` is 0.

p-values come from the statistic with the asymptotic distribution of the
raw test (exact small-sample p-values need the data). When the inputs are
approximate, ``details["pvalue_from_sketch"]`` is True: the p-value is the
one of the lower end, the largest the sketches allow (every test's p-value
falls as its statistic grows).

Tightness. The KS error is at most the sum of the two rank errors and the
Wasserstein error at most that times the data range. Cramér-von Mises and
Anderson-Darling use midranks, so their value depends on how many
observations share a value and exactly where each falls; a sketch cannot
tell a run of equal values from distinct values inside one segment, so
their bounds cover every tie pattern and placement the counts allow. They
are informative when segments hold a few observations each, and can be
orders of magnitude wider than the statistic for coarse sketches or
heavily tied data; the reported error says so rather than hiding it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import EmptyInputError
from ..sketches._cdf import CdfBounds
from ..sketches._common import dot
from ._dist import (
    anderson_2samp_normalize,
    anderson_pvalue,
    cvm_asymptotic_pvalue,
    ks_asymp_pvalue,
)
from ._grid import Grid, anderson_a2kn_exact, cvm_scipy, ks_bounds, lp_integral_bounds
from ._result import TestResult
from ._validation import check_option
from .univariate import _normalizer

__all__ = ["ks_from_cdf", "wasserstein_from_cdf", "cramervonmises_from_cdf", "anderson_from_cdf"]

# relative allowance for rounding in the computed bounds
_ROUNDING = 1e-9


def _check_bounds(cb: Any, name: str) -> None:
    if not isinstance(cb, CdfBounds):
        raise TypeError(f"{name} must be a CdfBounds, got {type(cb).__name__}.")
    if cb.n <= 0 or len(cb.values) == 0:
        raise EmptyInputError(f"{name} describes no values.")
    v, lo, hi = np.asarray(cb.values), np.asarray(cb.lo), np.asarray(cb.hi)
    if v.ndim != 1 or lo.shape != v.shape or hi.shape != v.shape:
        raise ValueError(f"{name}: values, lo and hi must be 1-D of equal length.")
    if not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
        raise ValueError(f"{name}: values must be finite and strictly increasing.")
    if np.any(lo > hi) or np.any(np.diff(lo) < 0) or np.any(np.diff(hi) < 0) or lo[0] < 0:
        raise ValueError(f"{name}: lo and hi must be nondecreasing, non-negative, with lo <= hi.")
    if lo[-1] != cb.n or hi[-1] != cb.n:
        raise ValueError(f"{name}: the bounds at the last value must both equal n={cb.n}.")


def _grid(ref: CdfBounds, cur: CdfBounds) -> Grid:
    _check_bounds(ref, "reference")
    _check_bounds(cur, "current")
    z = np.union1d(ref.values, cur.values)
    a_lo, a_hi = ref.evaluate(z)
    b_lo, b_hi = cur.evaluate(z)
    a_lo = a_lo.astype(np.int64)
    b_lo = b_lo.astype(np.int64)
    # exact bounds share one array, which is how a Grid says "exact"
    a_hi = a_lo if ref.is_exact else a_hi.astype(np.int64)
    b_hi = b_lo if cur.is_exact else b_hi.astype(np.int64)
    return Grid(z, a_lo, a_hi, b_lo, b_hi, int(ref.n), int(cur.n))


def _lower_end(lo: float, hi: float, approximate: bool) -> tuple[float, float]:
    """The interval's lower end and its distance to the upper end: the statistic of every test from sketches,
    whose p-value is then the largest the sketches allow.

    Bounds widen with n / k, and where a segment spans much of the range
    (the tails of skewed data): at 1e6 rows and more the midpoint of a
    window's interval against its own rows was past the 1% critical value
    (Anderson-Darling 27.98 in [-1.31, 57.3]: drift on identical data), and
    so was the normalized Wasserstein distance's of lognormal data. From the
    lower end a drift is reported only where the sketches show one.
    """
    if not approximate:
        return float(lo), 0.0
    return float(lo), float((hi - lo) + _ROUNDING * max(abs(lo), abs(hi)))


def _details(lo: float, hi: float, approximate: bool, **extra: Any) -> dict[str, Any]:
    return {
        "statistic_lower": float(lo),
        "statistic_upper": float(hi),
        "pvalue_from_sketch": bool(approximate),
        **extra,
    }


def ks_from_cdf(ref: CdfBounds, cur: CdfBounds, alternative: str = "two-sided") -> TestResult:
    """Kolmogorov-Smirnov statistic from two CDF bounds.

    On every segment ``F_ref/n_ref - F_cur/n_cur`` lies in a known interval
    at every point, so the supremum of its (signed or absolute) value lies
    between the largest lower bound and the largest upper bound.

    Parameters
    ----------
    ref, cur
        Bounds on the reference and current counting functions.
    alternative
        ``"two-sided"``, ``"less"`` or ``"greater"`` (as :func:`ks_2samp`).

    Returns
    -------
    TestResult
        ``method="ks"``; asymptotic p-value (``details["pvalue_method"]``).
        From approximate bounds, the statistic is the lower end of its
        interval and the p-value the largest the sketches allow.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.sketches._cdf import CdfBounds
    >>> from cudrift.stats import ks_from_cdf
    >>> ref = CdfBounds.from_sorted(np.array([1.0, 2.0, 3.0]))
    >>> cur = CdfBounds.from_sorted(np.array([2.5, 4.0]))
    >>> res = ks_from_cdf(ref, cur)
    >>> res.statistic, res.statistic_error
    (0.6666666666666666, 0.0)
    """
    alternative = check_option("alternative", alternative, ("two-sided", "less", "greater"))
    g = _grid(ref, cur)
    approx = not g.exact
    lo, hi, idx, sign = ks_bounds(g, alternative)
    stat, err = _lower_end(lo, hi, approx)
    p = ks_asymp_pvalue(stat, g.n_a, g.n_b, alternative)
    details = _details(lo, hi, approx, statistic_location=float(g.z[idx]), statistic_sign=int(sign),
                       pvalue_method="asymp")
    return TestResult(stat, p, "ks", g.n_a, g.n_b, err, details)


def wasserstein_from_cdf(ref: CdfBounds, cur: CdfBounds, normalize_by: float | None = None) -> TestResult:
    """Wasserstein-1 distance ``integral |F_ref/n_ref - F_cur/n_cur| dx`` from two CDF bounds.

    Parameters
    ----------
    ref, cur
        Bounds on the reference and current counting functions.
    normalize_by
        ``None``: the plain distance (``method="wasserstein"``). A number:
        the distance divided by it (``method="wasserstein_normalized"``);
        pass the reference standard deviation (ddof=0, e.g. from the moments
        sketch) to match :func:`wasserstein_normalized`, including its rule
        that a zero standard deviation divides by 1.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.sketches._cdf import CdfBounds
    >>> from cudrift.stats import wasserstein_from_cdf
    >>> ref = CdfBounds.from_sorted(np.array([0.0, 1.0, 3.0]))
    >>> cur = CdfBounds.from_sorted(np.array([5.0, 6.0, 8.0]))
    >>> wasserstein_from_cdf(ref, cur).statistic
    5.0
    """
    method = "wasserstein"
    norm = 1.0
    if normalize_by is not None:
        ok = isinstance(normalize_by, (int, float, np.integer, np.floating)) and not isinstance(normalize_by, bool)
        if not (ok and math.isfinite(float(normalize_by)) and float(normalize_by) >= 0):
            raise ValueError(f"Invalid value for normalize_by: {normalize_by!r}; expected None or a number >= 0.")
        norm = _normalizer(float(normalize_by))
        method = "wasserstein_normalized"
    g = _grid(ref, cur)
    approx = not g.exact
    lo, hi = lp_integral_bounds(g, 1)
    lo, hi = lo / norm, hi / norm
    stat, err = _lower_end(lo, hi, approx)
    details = _details(lo, hi, approx, kind="distance", normalizer=norm)
    return TestResult(stat, None, method, g.n_a, g.n_b, err, details)


# --------------------------------------------------------------------------- interval machinery


class _Segments:
    """Per-segment facts shared by the Cramér-von Mises and Anderson-Darling bounds.

    Segment k is ``[z[k], z[k+1])``; "prev" refers to segment k-1 (before the
    first point both counts are 0). An observation in segment k sits at
    ``z[k]`` (its left limit then falls in segment k-1) or inside (left limit
    in segment k), so left-limit quantities use the hull of both segments.
    """

    def __init__(self, g: Grid):
        m, n = g.n_a, g.n_b
        f = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
        prev = lambda v: np.concatenate(([0.0], v[:-1]))  # noqa: E731
        self.alo, self.ahi, self.blo, self.bhi = f(g.a_lo), f(g.a_hi), f(g.b_lo), f(g.b_hi)
        self.alo_p, self.ahi_p = prev(self.alo), prev(self.ahi)
        self.blo_p, self.bhi_p = prev(self.blo), prev(self.bhi)
        self.exact = (
            (self.alo == self.ahi) & (self.blo == self.bhi) & (self.alo_p == self.ahi_p) & (self.blo_p == self.bhi_p)
        )
        self.plo, self.phi = self.alo + self.blo, self.ahi + self.bhi
        self.plo_p, self.phi_p = self.alo_p + self.blo_p, self.ahi_p + self.bhi_p
        # largest possible multiplicity of one value inside the segment
        self.wa = self.ahi - self.alo_p
        self.wb = self.bhi - self.blo_p
        self.wt = self.wa + self.wb
        # D = n F_ref - m F_cur at and just before a point of the segment
        e_lo, e_hi = n * self.alo - m * self.bhi, n * self.ahi - m * self.blo
        e_lo_p, e_hi_p = n * self.alo_p - m * self.bhi_p, n * self.ahi_p - m * self.blo_p
        self.e_exact, self.e_exact_p = e_lo, e_lo_p  # valid where self.exact
        h_lo, h_hi = np.minimum(e_lo, e_lo_p), np.maximum(e_hi, e_hi_p)
        self.sq_hi = np.maximum(h_lo * h_lo, h_hi * h_hi)
        self.sq_lo = np.where((h_lo <= 0) & (h_hi >= 0), 0.0, np.minimum(h_lo * h_lo, h_hi * h_hi))


class _RangeExtrema:
    """Maxima of ``values`` over many index ranges ``[l, r]``, in O(K) memory.

    Blocks of 16: within-block ranges are reduced directly, longer ones
    combine a block suffix, a block prefix and a sparse table over the block
    maxima (which is small: K/16 entries per level).
    """

    _B = 16

    def __init__(self, values: np.ndarray):
        b = self._B
        k = values.size
        pad = (-k) % b
        self.values = values
        blocks = np.concatenate((values, np.full(pad, -np.inf))).reshape(-1, b)
        self.prefix = np.maximum.accumulate(blocks, axis=1).ravel()[:k]
        self.suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()[:k]
        self.table = [blocks.max(axis=1)]
        while 2 ** len(self.table) <= self.table[0].size:
            prev, half = self.table[-1], 2 ** (len(self.table) - 1)
            self.table.append(np.maximum(prev[:-half], prev[half:]))

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        b = self._B
        out = np.full(lo.shape, -np.inf)
        blo, bhi = lo // b, hi // b
        same = blo == bhi
        if same.any():
            lengths = hi[same] - lo[same] + 1
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            idx = np.repeat(lo[same] - starts, lengths) + np.arange(lengths.sum())
            out[same] = np.maximum.reduceat(self.values[idx], starts)
        far = ~same
        res = np.maximum(self.suffix[lo[far]], self.prefix[hi[far]])
        first, last = blo[far] + 1, bhi[far] - 1
        inner = first <= last
        if inner.any():
            f, l_ = first[inner], last[inner]
            level = np.floor(np.log2(l_ - f + 1)).astype(np.int64)
            mids = np.empty(f.size)
            for lev in np.unique(level):
                sel = level == lev
                t = self.table[lev]
                mids[sel] = np.maximum(t[f[sel]], t[l_[sel] - 2**lev + 1])
            res[inner] = np.maximum(res[inner], mids)
        out[far] = res
        return out


def _rank_intervals(s: _Segments, N: float):
    """Ranks of the merged sample not accounted for by exact segments, as elementary intervals.

    An observation in approximate segment k has merged rank ``r`` (1-based,
    ties in any order) with ``P(z[k]-) < r <= P(z[k+1]-)``, so
    ``plo_prev[k] < r <= phi[k]``. Between consecutive window edges the set
    of candidate segments is a fixed index range; each interval comes with
    its first rank, its number of ranks and the extreme per-observation
    quantities over its candidates. Exact segments own their ranks exactly
    and no approximate window reaches into them.
    """
    ap = np.flatnonzero(~s.exact)
    if ap.size == 0:
        return (np.zeros(0),) * 7
    w_lo, w_hi = s.plo_p[ap] + 1, s.phi[ap]
    edges = np.unique(np.concatenate((w_lo, w_hi + 1)))
    starts, stops = edges[:-1], edges[1:]
    first = np.searchsorted(w_hi, starts, "left")
    last = np.searchsorted(w_lo, starts, "right") - 1
    keep = first <= last
    starts, stops, first, last = starts[keep], stops[keep], first[keep], last[keep]
    sq_hi = _RangeExtrema(s.sq_hi[ap]).query(first, last)
    sq_lo = -_RangeExtrema(-s.sq_lo[ap]).query(first, last)
    wt = _RangeExtrema(s.wt[ap]).query(first, last)
    # pooled counts below / at the value of any candidate observation
    below_min, upto_max = s.plo_p[ap][first], s.phi[ap][last]
    return starts, stops - starts, sq_lo, sq_hi, wt, below_min, upto_max


def _sum_inverse_linear(l1: np.ndarray, l2: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Upper bound on ``sum_{s=s1}^{s2} 1/l(s)`` for ``l`` linear and positive, ``l(s1)=l1``, ``l(s2)=l2``.

    A monotone function summed over integers is at most its integral plus
    its largest endpoint value; ``width = s2 - s1``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = l2 / l1
        integral = np.where(
            np.abs(l2 - l1) > 1e-12 * np.maximum(l1, l2), width * np.log(ratio) / (l2 - l1), width / l1
        )
    return integral + 1.0 / np.minimum(l1, l2)


def _ad_denominator_min(r, T, N, below_min, upto_max):
    """Smallest ``L R + t (N - t)/4`` for the observation of merged rank ``r``.

    With ``u = L`` (pooled count below its value) and ``w = N - R`` (count up
    to and including it): ``u <= r - 1 < r <= w``, ``w - u = t <= T``,
    ``u >= below_min``, ``w <= upto_max``; the denominator equals
    ``s (N - s)/4 + N u / 2`` with ``s = u + w``, a concave function, so its
    minimum over this polygon is at one of the vertices tried here.
    """
    u0 = np.maximum(np.maximum(r - T, 0.0), below_min)
    u1 = r - 1.0
    w0 = r
    w1 = np.minimum(np.minimum(r - 1.0 + T, N), upto_max)
    cand = [(u0, w0), (u1, w0), (u1, w1), (u0, w1), (u0, u0 + T), (u1, u1 + T), (w0 - T, w0), (w1 - T, w1)]
    best = np.full(np.shape(r), np.inf)
    for cu, cw in cand:
        ok = (cu >= u0) & (cu <= u1) & (cw >= w0) & (cw <= w1) & (cw - cu <= T)
        sv = cu + cw
        best = np.where(ok, np.minimum(best, sv * (N - sv) / 4.0 + N * cu / 2.0), best)
    return best


def _ad_inverse_denominator_bounds(start, count, T, N, below_min, upto_max):
    """Bounds on ``sum_r 1/(L R + t (N - t)/4)`` over ranks ``r = start .. start+count-1``.

    Upper bound: the smallest denominator of rank r (:func:`_ad_denominator_min`)
    is a minimum of vertex values that are concave in r as long as the same
    constraints bind, i.e. between the breakpoints ``T``, ``N - T + 1``,
    ``below_min + T`` and ``upto_max - T + 1``. On each such piece it lies
    above its chord, and a monotone ``1/chord`` summed over integers is at
    most its integral plus its larger endpoint value.

    Lower bound: the denominator is at most ``(r - 1)(N - r) + max_t t (N - t)/4``
    (``L <= r - 1``, ``R <= N - r``), largest at ``r = (N + 1)/2``.
    """
    end = start + count - 1
    cuts = np.stack((T, N - T + 1, below_min + T, upto_max - T + 1), axis=1)
    bounds = np.concatenate((start[:, None], np.sort(cuts, axis=1), end[:, None] + 1), axis=1)
    upper = np.zeros(start.shape)
    for j in range(bounds.shape[1] - 1):
        p1 = np.clip(bounds[:, j], start, end + 1)
        p2 = np.clip(bounds[:, j + 1], start, end + 1) - 1
        live = p2 >= p1
        if not live.any():
            continue
        args = (T[live], N, below_min[live], upto_max[live])
        d1 = _ad_denominator_min(p1[live].astype(float), *args)
        d2 = _ad_denominator_min(p2[live].astype(float), *args)
        upper[live] += _sum_inverse_linear(d1, d2, (p2 - p1)[live])
    h_t = np.where(T <= N / 2.0, T * (N - T) / 4.0, N * N / 16.0)
    r_star = np.clip((N + 1.0) / 2.0, start, end)
    lower = count / ((r_star - 1.0) * (N - r_star) + h_t)
    return lower, upper


def _cvm_bounds(g: Grid) -> tuple[float, float]:
    """Bounds on the two-sample Cramér-von Mises ``T`` (SciPy's midrank definition).

    SciPy computes ``U = m sum (r_i - i)^2 + n sum (s_j - j)^2`` with midranks
    and ``T = U / (m n N) - (4 m n - 1) / (6 N)``, which cancels two numbers
    of size ~m n / N. Summing SciPy's terms block by block over the distinct
    values gives the same ``T`` without the cancellation. With
    ``D = n F_ref - m F_cur`` just before (``D``) and at (``D'``) a value
    held by ``a`` reference and ``b`` current observations (``t = a + b``):

        m n N T = 1/(3N) sum t (D^2 + D D' + D'^2)
                  + 1/12 sum [t (a - b)(m a - n b) - (m a + n b)] + m n / 6.

    The first sum is ``(1/N) sum_obs ms``, ``ms`` being the mean of ``D^2``
    along the step of the merged sample through the observation; the second
    (``psi``, the tie term) vanishes without ties.

    Exact segments contribute exactly. Elsewhere each merged rank is held by
    an observation of one of the segments whose rank window contains it, so
    its ``ms`` lies between the smallest and largest square of ``D`` over
    those segments' hulls (:func:`_rank_intervals`); with at most ``Wa``/``Wb``
    equal values per sample in a segment,
    ``-(m-n)^2 t^3 / (8N) - (m a + n b) <= psi <= t (m a^2 + n b^2)`` bounds
    the tie terms.
    """
    s = _Segments(g)
    m, n = float(g.n_a), float(g.n_b)
    N = m + n
    ex = s.exact
    a = s.alo[ex] - s.alo_p[ex]
    b = s.blo[ex] - s.blo_p[ex]
    t = a + b
    d, d2 = s.e_exact_p[ex], s.e_exact[ex]
    main_ex = dot(t, d * d + d * d2 + d2 * d2) / 3.0
    psi_ex = float(np.sum(t * (a - b) * (m * a - n * b) - (m * a + n * b)))
    _, count, sq_lo, sq_hi, _, _, _ = _rank_intervals(s, N)
    main_lo, main_hi = dot(count, sq_lo), dot(count, sq_hi)
    ap = ~ex
    wa, wb, wt = s.wa[ap], s.wb[ap], s.wt[ap]
    psi_hi = float(np.sum(wt * (m * wa * wa + n * wb * wb)))
    psi_lo = float(np.sum(-((m - n) ** 2) / (8.0 * N) * wt * wt * (wa + wb) - (m * wa + n * wb)))
    scale = m * n * N
    lo = ((main_ex + main_lo) / N + (psi_ex + psi_lo) / 12.0 + m * n / 6.0) / scale
    hi = ((main_ex + main_hi) / N + (psi_ex + psi_hi) / 12.0 + m * n / 6.0) / scale
    # T = nm/N * sum of squared CDF differences over the pooled points, never negative: interval arithmetic's
    # lower end can be far below (-1749 against an exact 19.07 from coarse sketches), which says nothing
    return max(lo, 0.0), hi


def _anderson_bounds(g: Grid) -> tuple[float, float]:
    """Bounds on SciPy's midrank ``A2akN`` for two samples.

    For two samples SciPy's sum over samples collapses to one term per
    distinct value ``x`` holding ``t`` observations:
    ``A2akN = (N-1)/(N m n) sum t ((D + D')/2)^2 / (L R + t (N - t)/4)``,
    with ``D``/``D'`` as in :func:`_cvm_bounds` and ``L``/``R`` the pooled
    counts below/above ``x``. Exact segments contribute exactly; elsewhere
    the observation of merged rank r contributes between (smallest
    numerator)/(largest denominator) and (largest numerator)/(smallest
    denominator), with numerators from the candidate segments of its rank
    and denominators from the rank itself
    (:func:`_ad_inverse_denominator_bounds`).
    """
    s = _Segments(g)
    m, n = float(g.n_a), float(g.n_b)
    N = m + n
    ex = s.exact
    t = s.plo[ex] - s.plo_p[ex]
    L, R = s.plo_p[ex], N - s.plo[ex]
    num = ((s.e_exact_p[ex] + s.e_exact[ex]) / 2.0) ** 2
    has = t > 0
    exact_sum = float(np.sum(t[has] * num[has] / (L[has] * R[has] + t[has] * (N - t[has]) / 4.0)))
    start, count, sq_lo, sq_hi, wt, below_min, upto_max = _rank_intervals(s, N)
    inv_lo, inv_hi = _ad_inverse_denominator_bounds(
        start, count, np.minimum(wt, N - 1.0), N, below_min, upto_max
    )
    factor = (N - 1.0) / (N * m * n)
    return factor * (exact_sum + dot(sq_lo, inv_lo)), factor * (exact_sum + dot(sq_hi, inv_hi))


def cramervonmises_from_cdf(ref: CdfBounds, cur: CdfBounds) -> TestResult:
    """Two-sample Cramér-von Mises ``T`` from two CDF bounds (SciPy's midrank definition).

    Both samples need at least 2 values. See :func:`_cvm_bounds` for the
    interval argument. From inexact sketches the statistic is the
    interval's lower end (:func:`_lower_end`; ``statistic_error`` its width)
    and the p-value the asymptotic one for it (:func:`cvm_asymptotic_pvalue`,
    accurate in the tail): the largest the sketches allow.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.sketches._cdf import CdfBounds
    >>> from cudrift.stats import cramervonmises_from_cdf
    >>> x = np.arange(10.0)
    >>> res = cramervonmises_from_cdf(CdfBounds.from_sorted(x), CdfBounds.from_sorted(x + 0.5))
    >>> round(res.statistic, 4), res.statistic_error
    (0.025, 0.0)
    """
    g = _grid(ref, cur)
    if g.n_a < 2 or g.n_b < 2:
        raise ValueError(
            f"cramervonmises needs at least 2 values in each sample, got {g.n_a} and {g.n_b}."
        )
    approx = not g.exact
    lo, hi = _cvm_bounds(g) if approx else (cvm_scipy(g),) * 2
    stat, err = _lower_end(lo, hi, approx)
    p = cvm_asymptotic_pvalue(stat, g.n_a, g.n_b)
    details = _details(lo, hi, approx, pvalue_method="asymptotic")
    return TestResult(stat, p, "cramervonmises", g.n_a, g.n_b, err, details)


def anderson_from_cdf(ref: CdfBounds, cur: CdfBounds) -> TestResult:
    """Two-sample Anderson-Darling statistic (SciPy's normalized midrank ``A2``) from two CDF bounds.

    From inexact sketches the statistic is the interval's lower end
    (:func:`_lower_end`; ``statistic_error`` its width). The p-value is
    SciPy's interpolated one for the statistic, floored at 0.001 and capped
    at 0.25 (``details["pvalue_clipped"]``).

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.sketches._cdf import CdfBounds
    >>> from cudrift.stats import anderson_from_cdf
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> res = anderson_from_cdf(CdfBounds.from_sorted(x), CdfBounds.from_sorted(x + 0.5))
    >>> round(res.statistic, 3), res.pvalue
    (26.549, 0.001)
    """
    g = _grid(ref, cur)
    N = g.n_a + g.n_b
    if N < 4:
        raise ValueError(f"anderson_ksamp needs at least 4 observations in total, got {N}.")
    if g.z.size < 2:
        raise ValueError("anderson_ksamp needs more than one distinct observation")
    approx = not g.exact
    a_lo, a_hi = _anderson_bounds(g) if approx else (anderson_a2kn_exact(g),) * 2
    lo = anderson_2samp_normalize(a_lo, g.n_a, g.n_b)
    hi = anderson_2samp_normalize(a_hi, g.n_a, g.n_b) if approx else lo
    stat, err = _lower_end(lo, hi, approx)
    p, clipped = anderson_pvalue(stat)
    details = _details(lo, hi, approx, pvalue_clipped=clipped, variant="midrank")
    return TestResult(stat, p, "anderson", g.n_a, g.n_b, err, details)
