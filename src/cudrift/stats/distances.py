"""Distances and divergences between two aligned count vectors.

The vectors are the counts of the same bins in the same order: a profile's
histogram bins (including its underflow and overflow bins) or the category
counts of a categorical column. Two pandas Series (``ref.value_counts()``
and ``cur.value_counts()``, each sorted by frequency) are aligned on their
index labels instead, a label missing from one counting 0 there (see
:func:`~cudrift.stats._validation.as_count_pair`). Each is turned into
proportions ``p = ref / sum(ref)`` (reference) and ``q = cur / sum(cur)``
(current).

Empty bins: PSI and KL divide by a proportion, so a zero proportion is
replaced by ``eps`` (default ``1e-4``, Evidently's choice, so numbers are
comparable with Evidently reports); Jensen-Shannon, Hellinger and total
variation are finite with empty bins and use the proportions as they are.
Every result has ``pvalue=None`` and says in ``details["kind"]`` whether the
value is a distance (a metric) or a divergence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from ._result import TestResult
from ._validation import as_count_pair, pow2_above

__all__ = ["psi", "kl_divergence", "jensenshannon", "hellinger", "tvd"]

DEFAULT_EPS = 1e-4


def _proportions(ref_counts: Any, cur_counts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r, c = as_count_pair(ref_counts, cur_counts)
    return r, c, r / r.sum(), c / c.sum()


def _check_eps(eps: Any) -> float:
    if isinstance(eps, (int, float, np.integer, np.floating)) and not isinstance(eps, bool):
        if 0.0 < float(eps) < 1.0:
            return float(eps)
    raise ValueError(f"Invalid value for eps: {eps!r}; expected a number in (0, 1).")


def _check_base(base: Any) -> float | None:
    if base is None:
        return None
    if isinstance(base, (int, float, np.integer, np.floating)) and not isinstance(base, bool):
        if math.isfinite(float(base)) and float(base) > 0 and float(base) != 1.0:
            return float(base)
    raise ValueError(f"Invalid value for base: {base!r}; expected None or a positive number other than 1.")


def _details(kind: str, r: np.ndarray, c: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "n_bins": int(r.size),
        "n_empty_reference": int(np.count_nonzero(r == 0)),
        "n_empty_current": int(np.count_nonzero(c == 0)),
        **extra,
    }


def _n(counts: np.ndarray) -> int:
    return int(round(float(counts.sum())))


def psi(ref_counts: Any, cur_counts: Any, eps: float = DEFAULT_EPS) -> TestResult:
    """Population stability index.

    ``PSI = sum_i (q_i - p_i) ln(q_i / p_i)``, with zero proportions replaced
    by ``eps`` (not renormalized, as in Evidently). Symmetric in the two
    samples; 0 for identical distributions. Common reading: < 0.1 stable,
    0.1-0.25 moderate shift, > 0.25 large shift.

    Parameters
    ----------
    ref_counts, cur_counts
        Aligned non-negative counts (histogram bins or categories), or two
        pandas Series of counts, aligned on their index labels.
    eps
        Proportion substituted for an empty bin, in (0, 1).

    Returns
    -------
    TestResult
        ``method="psi"``, ``pvalue=None``, ``details["kind"] = "divergence"``.

    Examples
    --------
    >>> from cudrift.stats import psi
    >>> round(psi([10, 20, 30, 40], [10, 20, 30, 40]).statistic, 12)
    0.0
    """
    eps = _check_eps(eps)
    r, c, p, q = _proportions(ref_counts, cur_counts)
    p_ = np.where(p == 0, eps, p)
    q_ = np.where(q == 0, eps, q)
    value = float(np.sum((q_ - p_) * np.log(q_ / p_)))
    return TestResult(value, None, "psi", _n(r), _n(c), 0.0, _details("divergence", r, c, eps=eps))


def kl_divergence(ref_counts: Any, cur_counts: Any, eps: float = DEFAULT_EPS, base: float | None = None) -> TestResult:
    """Kullback-Leibler divergence ``KL(reference || current)``.

    ``sum_i p_i log(p_i / q_i)`` after replacing zero proportions by ``eps``
    and renormalizing both vectors to sum to 1, which is
    ``scipy.stats.entropy(p_eps, q_eps, base=base)`` (Evidently's
    definition). Natural log unless ``base`` is given. Not symmetric.

    Parameters
    ----------
    ref_counts, cur_counts
        Aligned non-negative counts.
    eps
        Proportion substituted for an empty bin, in (0, 1).
    base
        Logarithm base; None for the natural log.

    Examples
    --------
    >>> from cudrift.stats import kl_divergence
    >>> round(kl_divergence([1, 1], [1, 3]).statistic, 6)
    0.143841
    """
    eps = _check_eps(eps)
    base = _check_base(base)
    r, c, p, q = _proportions(ref_counts, cur_counts)
    p_ = np.where(p == 0, eps, p)
    q_ = np.where(q == 0, eps, q)
    p_ = p_ / p_.sum()
    q_ = q_ / q_.sum()
    value = float(np.sum(special.rel_entr(p_, q_)))
    if base is not None:
        value /= math.log(base)
    return TestResult(value, None, "kl_div", _n(r), _n(c), 0.0, _details("divergence", r, c, eps=eps, base=base))


def jensenshannon(ref_counts: Any, cur_counts: Any, base: float | None = None) -> TestResult:
    """Jensen-Shannon distance, as ``scipy.spatial.distance.jensenshannon``.

    ``sqrt((KL(p || m) + KL(q || m)) / 2)`` with ``m = (p + q) / 2``: the
    square root of the Jensen-Shannon divergence, hence a metric. Natural
    log by default (range ``[0, sqrt(ln 2)]``); ``base=2`` gives ``[0, 1]``.
    Empty bins need no ``eps``. Summed without cancellation, so nearly
    equal distributions keep full relative accuracy (SciPy's sum can round
    to 0, or to a tiny negative and a NaN distance, there).

    Examples
    --------
    >>> from cudrift.stats import jensenshannon
    >>> round(jensenshannon([1, 0], [0, 1], base=2).statistic, 12)
    1.0
    """
    base = _check_base(base)
    r, c, p, q = _proportions(ref_counts, cur_counts)
    # sum_i p_i log(p_i / m_i) + q_i log(q_i / m_i) is 0 for equal distributions, and as a sum of terms of
    # either sign it is left with rounding errors of ~1e-16 per term: nearly equal windows of 10^6 counts
    # (a divergence near 1e-17) came out negative, a NaN distance. Per bin, with d = (p - q) / (p + q),
    # the two terms are (p + q) / 2 * f(d), f(d) = (1 + d) log(1 + d) + (1 - d) log(1 - d) >= 0,
    # and d is taken from the counts with exact products, so each term keeps its relative accuracy.
    js = float(np.sum((p + q) * _js_f(_relative_difference(r, c)))) / 2.0
    if base is not None:
        js /= math.log(base)
    value = math.sqrt(js / 2.0)
    return TestResult(value, None, "jensenshannon", _n(r), _n(c), 0.0, _details("distance", r, c, base=base))


def _two_product(a: np.ndarray, b: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``(h, l)`` with ``h + l == a * b`` exactly (Dekker's product; |a|, |b| <= 1, so nothing overflows)."""
    h = a * b
    split = 134217729.0  # 2**27 + 1
    ta, tb = a * split, b * split
    a1, b1 = ta - (ta - a), tb - (tb - b)
    a2, b2 = a - a1, b - b1
    return h, ((a1 * b1 - h) + a1 * b2 + a2 * b1) + a2 * b2


def _relative_difference(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``(p - q) / (p + q)`` per bin, from the counts: ``(r C - c R) / (r C + c R)`` to a few ulps.

    The counts are divided by powers of two above their totals (exact), and
    the products are exact pairs, so nearly equal proportions do not lose
    the digits they share; 0 where both counts are 0.
    """
    tr, tc = float(r.sum()), float(c.sum())
    sr, sc = pow2_above(tr), pow2_above(tc)
    r, c = r / sr, c / sc
    R, C = tr / sr, tc / sc  # (exact: the scales are powers of two)
    ah, al = _two_product(r, C)
    bh, bl = _two_product(c, R)
    num = (ah - bh) + (al - bl)
    den = ah + bh
    return np.divide(num, den, out=np.zeros_like(den), where=den > 0)


def _js_f(d: np.ndarray) -> np.ndarray:
    """``(1 + d) log(1 + d) + (1 - d) log(1 - d)`` for ``|d| <= 1``, accurate to a few ulps.

    Near 0 (where it is ``d**2 + d**4 / 6 + ...``) as ``2 d atanh(d) + log(1 - d**2)``, whose two
    terms cancel by half at most; away from 0 as written, with ``0 log 0 = 0`` at ``|d| = 1``.
    """
    d = np.abs(d)
    small = d <= 0.5
    out = np.empty_like(d)
    ds = d[small]
    out[small] = 2.0 * ds * np.arctanh(ds) + np.log1p(-ds * ds)
    dl = d[~small]
    out[~small] = (1.0 + dl) * np.log1p(dl) + special.xlog1py(1.0 - dl, -dl)
    return out


def hellinger(ref_counts: Any, cur_counts: Any) -> TestResult:
    """Hellinger distance ``sqrt(sum_i (sqrt(p_i) - sqrt(q_i))^2 / 2)``, in ``[0, 1]``.

    Written as a sum of squares rather than ``sqrt(1 - sum sqrt(p q))``,
    which loses all precision for nearly equal distributions.

    Examples
    --------
    >>> from cudrift.stats import hellinger
    >>> hellinger([1, 0], [0, 1]).statistic
    1.0
    """
    r, c, p, q = _proportions(ref_counts, cur_counts)
    value = float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))
    return TestResult(value, None, "hellinger", _n(r), _n(c), 0.0, _details("distance", r, c))


def tvd(ref_counts: Any, cur_counts: Any) -> TestResult:
    """Total variation distance ``sum_i |p_i - q_i| / 2``, in ``[0, 1]``.

    Examples
    --------
    >>> from cudrift.stats import tvd
    >>> tvd([3, 1], [1, 3]).statistic
    0.5
    """
    r, c, p, q = _proportions(ref_counts, cur_counts)
    value = float(0.5 * np.sum(np.abs(p - q)))
    return TestResult(value, None, "tvd", _n(r), _n(c), 0.0, _details("distance", r, c))
