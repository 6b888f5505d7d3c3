"""Two-sample tests on categorical and binary data.

Inputs are either two **count vectors aligned on the same categories** (same
order, e.g. the category counts of a reference and a current profile), or
two **label arrays** (the ``*_labels`` variants), which are counted here.
Two pandas Series of counts (``ref.value_counts()``, ``cur.value_counts()``,
each sorted by frequency) are aligned on their index labels, sorted where
they have an order, a label missing from one counting 0 there; so a binary
test's positive class is the larger label, as with label arrays.
In every 2 x k table the first row is the reference and the second the
current sample.

Label arrays: missing labels (``None``, any float NaN, pandas' ``NA`` and
``NaT``, NumPy's ``NaT``, and in float arrays ±inf) are removed and counted
in ``details["n_dropped_reference"/"n_dropped_current"]``; pandas is not
imported for this.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.stats
from scipy import special

from ..errors import EmptyInputError, SchemaError
from ._result import TestResult
from ._validation import as_count_pair, check_bool, check_option, dropped_details, is_missing

__all__ = [
    "chisquare_2samp",
    "chisquare_2samp_labels",
    "fisher_exact",
    "fisher_exact_labels",
    "ztest_proportions",
    "ztest_proportions_labels",
    "count_labels",
]

_ALTERNATIVES = ("two-sided", "less", "greater")
_LAMBDA_NAMES = ("pearson", "log-likelihood", "freeman-tukey", "mod-log-likelihood", "neyman", "cressie-read")


def _total(counts: np.ndarray) -> int:
    return int(round(float(counts.sum())))


# --------------------------------------------------------------------------- labels


def _clean_labels(labels: Any, name: str) -> tuple[np.ndarray, int]:
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise SchemaError(f"{name} must be 1-D, got an array of shape {arr.shape}.")
    if arr.dtype.kind == "f":
        keep = np.isfinite(arr)
    elif arr.dtype.kind in "mM":
        keep = ~np.isnat(arr)
    elif arr.dtype.kind == "O":
        # pandas' nullable arrays (string, boolean, Int64) hold pd.NA, and an object array any NaN (float32's
        # included, which np.unique could not order) or NaT: all missing, as None and float NaN are
        keep = np.fromiter((not is_missing(v) for v in arr), bool, arr.size)
    else:
        keep = np.ones(arr.size, dtype=bool)
    n_dropped = int(arr.size - np.count_nonzero(keep))
    arr = arr[keep]
    if arr.size == 0:
        raise EmptyInputError(
            f"{name} has no labels" + (f" ({n_dropped} missing removed)." if n_dropped else " (it is empty).")
        )
    return arr, n_dropped


def count_labels(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, list, tuple[int, int]]:
    """Count two label arrays on their common, sorted categories.

    Returns the reference counts, the current counts, the categories (in the
    order of the counts) and the numbers of missing labels removed. Labels
    of mixed types that cannot be ordered are ordered by ``repr``.

    Examples
    --------
    >>> from cudrift.stats import count_labels
    >>> r, c, cats, _ = count_labels(["a", "b", "b"], ["b", "c"])
    >>> cats, r.tolist(), c.tolist()
    (['a', 'b', 'c'], [1.0, 2.0, 0.0], [0.0, 1.0, 1.0])
    """
    ref, dr = _clean_labels(reference, "reference")
    cur, dc = _clean_labels(current, "current")
    try:
        cats, inv = np.unique(np.concatenate((ref, cur)), return_inverse=True)
        cats = cats.tolist()
    except TypeError:
        # labels such as a mix of str and int have no order; repr gives a stable one
        pooled = list(ref) + list(cur)
        uniq = sorted(set(pooled), key=repr)
        index = {v: i for i, v in enumerate(uniq)}
        inv = np.array([index[v] for v in pooled], dtype=np.int64)
        cats = uniq
    k = len(cats)
    r = np.bincount(inv[: ref.size], minlength=k).astype(np.float64)
    c = np.bincount(inv[ref.size :], minlength=k).astype(np.float64)
    return r, c, cats, (dr, dc)


# --------------------------------------------------------------------------- chi-square


def _check_lambda(lambda_: Any) -> Any:
    if lambda_ is None:
        return None
    if isinstance(lambda_, str):
        return check_option("lambda_", lambda_, _LAMBDA_NAMES)
    if isinstance(lambda_, (int, float, np.integer, np.floating)) and not isinstance(lambda_, bool):
        if math.isfinite(float(lambda_)):
            return float(lambda_)
    raise ValueError(f"Invalid value for lambda_: {lambda_!r}; expected a finite number or one of {_LAMBDA_NAMES}.")


def chisquare_2samp(
    ref_counts: Any, cur_counts: Any, correction: bool = True, lambda_: Any = None
) -> TestResult:
    """Chi-square test of homogeneity on the 2 x k table of two aligned count vectors.

    Categories with a zero count in both samples are dropped first (their
    expected frequency would be 0). The table then goes to
    ``scipy.stats.chi2_contingency``, so the semantics are SciPy's: Yates'
    continuity correction when ``correction`` is True and there is one
    degree of freedom (two categories left), ``lambda_`` selects a
    Cressie-Read power-divergence statistic, and a table with a single
    category left has 0 degrees of freedom, statistic 0 and p-value 1.

    Parameters
    ----------
    ref_counts, cur_counts
        Non-negative finite counts, one per category, same order; or two
        pandas Series of counts, aligned on their index labels.
    correction
        Yates' correction for 2 x 2 tables.
    lambda_
        ``None`` (Pearson), a number, or one of SciPy's names
        (``"log-likelihood"``, ``"cressie-read"``, ...).

    Returns
    -------
    TestResult
        ``method="chisquare"``; ``details`` holds ``dof`` and
        ``n_categories_dropped``.

    Examples
    --------
    >>> from cudrift.stats import chisquare_2samp
    >>> res = chisquare_2samp([50, 30, 20, 0], [40, 35, 25, 0])
    >>> res.details["dof"], res.details["n_categories_dropped"]
    (2, 1)
    """
    correction = check_bool("correction", correction)
    lambda_ = _check_lambda(lambda_)
    r, c = as_count_pair(ref_counts, cur_counts)
    return _chisquare(r, c, correction, lambda_, (0, 0))


def chisquare_2samp_labels(
    ref_labels: Any, cur_labels: Any, correction: bool = True, lambda_: Any = None
) -> TestResult:
    """:func:`chisquare_2samp` on two arrays of category labels.

    Examples
    --------
    >>> from cudrift.stats import chisquare_2samp_labels
    >>> res = chisquare_2samp_labels(["a"] * 30 + ["b"] * 70, ["a"] * 60 + ["b"] * 40)
    >>> res.pvalue < 0.001
    True
    """
    correction = check_bool("correction", correction)
    lambda_ = _check_lambda(lambda_)
    r, c, cats, dropped = count_labels(ref_labels, cur_labels)
    return _chisquare(r, c, correction, lambda_, dropped)


def _chisquare(r: np.ndarray, c: np.ndarray, correction: bool, lambda_: Any, dropped) -> TestResult:
    keep = (r + c) > 0
    table = np.vstack((r[keep], c[keep]))
    res = scipy.stats.chi2_contingency(table, correction=correction, lambda_=lambda_)
    details = dropped_details(dropped)
    details.update(
        dof=int(res.dof),
        n_categories=int(keep.sum()),
        n_categories_dropped=int((~keep).sum()),
        lambda_=lambda_,
    )
    return TestResult(float(res.statistic), float(res.pvalue), "chisquare", _total(r), _total(c), 0.0, details)


# --------------------------------------------------------------------------- binary


def _binary_counts(ref_counts: Any, cur_counts: Any, integral: bool) -> tuple[np.ndarray, np.ndarray]:
    r, c = as_count_pair(ref_counts, cur_counts)
    if r.size != 2:
        raise SchemaError(
            f"binary tests need two counts per sample ([negative, positive]), got {r.size}."
        )
    if integral and (np.any(r != np.round(r)) or np.any(c != np.round(c))):
        raise ValueError(f"counts must be whole numbers, got {r.tolist()} and {c.tolist()}.")
    return r, c


def _binary_label_counts(ref_labels: Any, cur_labels: Any):
    r, c, cats, dropped = count_labels(ref_labels, cur_labels)
    if len(cats) > 2:
        raise SchemaError(f"binary tests need at most two distinct labels, got {len(cats)}: {cats[:5]!r}.")
    if len(cats) == 1:
        # one label seen overall: treat it as the positive class if it is
        # truthy (True / 1), else as the negative one
        positive = bool(cats[0]) if isinstance(cats[0], (bool, int, float, np.bool_, np.number)) else True
        z = np.zeros(1)
        r, c = (np.r_[z, r], np.r_[z, c]) if positive else (np.r_[r, z], np.r_[c, z])
    return r, c, dropped


def fisher_exact(ref_counts: Any, cur_counts: Any, alternative: str = "two-sided") -> TestResult:
    """Fisher's exact test on the 2 x 2 table of two binary count pairs.

    The table is ``[[ref_negative, ref_positive], [cur_negative, cur_positive]]``
    and goes to ``scipy.stats.fisher_exact``; the statistic is SciPy's sample
    odds ratio ``(ref_neg * cur_pos) / (ref_pos * cur_neg)``, i.e. the odds
    of a positive in the current sample over those in the reference
    (``"greater"``: the current sample has larger odds).

    Parameters
    ----------
    ref_counts, cur_counts
        ``[n_negative, n_positive]`` for each sample; whole numbers >= 0. Two
        pandas Series are aligned on their index labels, the larger label
        being the positive one.
    alternative
        ``"two-sided"``, ``"less"`` or ``"greater"``.

    Examples
    --------
    >>> from cudrift.stats import fisher_exact
    >>> res = fisher_exact([90, 10], [70, 30])
    >>> round(res.statistic, 4), res.pvalue < 0.001
    (3.8571, True)
    """
    alternative = check_option("alternative", alternative, _ALTERNATIVES)
    r, c = _binary_counts(ref_counts, cur_counts, integral=True)
    return _fisher(r, c, alternative, (0, 0))


def fisher_exact_labels(ref_labels: Any, cur_labels: Any, alternative: str = "two-sided") -> TestResult:
    """:func:`fisher_exact` on two arrays of binary labels.

    The two labels are ordered (``False < True``, ``0 < 1``, or sorted) and
    the second one is the positive class.

    Examples
    --------
    >>> from cudrift.stats import fisher_exact_labels
    >>> fisher_exact_labels([0, 0, 1, 0], [1, 1, 0, 1]).details["table"]
    ((3, 1), (1, 3))
    """
    alternative = check_option("alternative", alternative, _ALTERNATIVES)
    r, c, dropped = _binary_label_counts(ref_labels, cur_labels)
    return _fisher(r, c, alternative, dropped)


def _fisher(r: np.ndarray, c: np.ndarray, alternative: str, dropped) -> TestResult:
    if max(float(np.max(r)), float(np.max(c))) >= 2.0**63:
        # (the cast to int64 wrapped them, and SciPy said the table held negative values)
        raise ValueError(f"fisher_exact: counts must be below 2**63, got {r.tolist()} and {c.tolist()}; with such "
                         "counts use chisquare or ztest_proportions")
    table = np.vstack((r, c)).astype(np.int64)
    res = scipy.stats.fisher_exact(table, alternative=alternative)
    details = dropped_details(dropped)
    details["table"] = tuple(tuple(int(v) for v in row) for row in table)
    return TestResult(float(res.statistic), float(res.pvalue), "fisher_exact", _total(r), _total(c), 0.0, details)


def ztest_proportions(ref_counts: Any, cur_counts: Any, alternative: str = "two-sided") -> TestResult:
    """Two-proportion z-test with pooled variance.

    With ``p1 = ref_pos / n1``, ``p2 = cur_pos / n2`` and the pooled
    ``p = (ref_pos + cur_pos) / (n1 + n2)``::

        z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2))

    two-sided p-value ``2 Phi(-|z|)``; ``"less"``: ``Phi(z)`` (reference
    proportion below current); ``"greater"``: ``Phi(-z)``. When both samples
    are all negative or all positive the proportions are equal and the
    variance is 0: we return ``z = 0`` and p-value 1 (no evidence of a
    difference) instead of NaN.

    Parameters
    ----------
    ref_counts, cur_counts
        ``[n_negative, n_positive]`` for each sample (two pandas Series: aligned
        on their index labels, the larger label being the positive one).
    alternative
        ``"two-sided"``, ``"less"`` or ``"greater"``.

    Examples
    --------
    >>> from cudrift.stats import ztest_proportions
    >>> res = ztest_proportions([80, 20], [70, 30])
    >>> round(res.statistic, 4)
    -1.633
    """
    alternative = check_option("alternative", alternative, _ALTERNATIVES)
    r, c = _binary_counts(ref_counts, cur_counts, integral=False)
    return _ztest(r, c, alternative, (0, 0))


def ztest_proportions_labels(ref_labels: Any, cur_labels: Any, alternative: str = "two-sided") -> TestResult:
    """:func:`ztest_proportions` on two arrays of binary labels (the larger label is positive).

    Examples
    --------
    >>> from cudrift.stats import ztest_proportions_labels
    >>> ztest_proportions_labels([True, False], [True, False]).statistic
    0.0
    """
    alternative = check_option("alternative", alternative, _ALTERNATIVES)
    r, c, dropped = _binary_label_counts(ref_labels, cur_labels)
    return _ztest(r, c, alternative, dropped)


def _ztest(r: np.ndarray, c: np.ndarray, alternative: str, dropped) -> TestResult:
    n1, n2 = float(r.sum()), float(c.sum())
    p1, p2 = r[1] / n1, c[1] / n2
    pooled = (r[1] + c[1]) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = 0.0 if se == 0 else float((p1 - p2) / se)
    if se == 0:
        p = 1.0
    elif alternative == "less":
        p = float(special.ndtr(z))
    elif alternative == "greater":
        p = float(special.ndtr(-z))
    else:
        p = float(min(2.0 * special.ndtr(-abs(z)), 1.0))
    details = dropped_details(dropped)
    details.update(
        proportion_reference=float(p1), proportion_current=float(p2), pooled_proportion=float(pooled),
        standard_error=se,
    )
    return TestResult(z, p, "ztest", _total(r), _total(c), 0.0, details)
