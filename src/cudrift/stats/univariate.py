"""Two-sample tests and distances on raw numeric samples (reference first, current second).

Every test has two entry points:

- the public function (``ks_2samp`` ...) takes anything array-like, converts
  it to 1-D float64, removes NaN and ±inf (counted in
  ``details["n_dropped_reference"]`` / ``details["n_dropped_current"]``),
  sorts, and calls
- the fast entry point (``ks_2samp_sorted`` ...), which trusts its caller to
  pass sorted, finite, 1-D float64 arrays. A drift detector sorts its
  reference once and each current column once and calls these directly.

Statistics and p-values reproduce ``scipy.stats`` (1.17) on float64 data:
same options, same defaults (except ``ttest_ind``, Welch by default), same
tie handling, same automatic switch between exact and asymptotic p-values.
The rank statistics are computed from the two counting functions on the
merged sample (:mod:`cudrift.stats._grid`), the same formulas the sketch path
(:mod:`cudrift.stats.rank`) uses. Where SciPy's exact small-sample p-value
needs its internal algorithm, that small case is delegated to the SciPy
function itself.

Inputs are always computed in float64: for float32 data SciPy computes some
tests (``ttest_ind``, ``mannwhitneyu``) in float32, so results agree with
SciPy run on the same values cast to float64.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import replace
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.stats
from scipy import special

from ._dist import (
    anderson_2samp_normalize,
    anderson_critical_values,
    anderson_pvalue,
    cvm_asymptotic_pvalue,
    ks_asymp_pvalue,
)
from ._grid import (
    FAST_MIN,
    Grid,
    anderson_a2kn_exact,
    cvm_scipy,
    grid_from_sorted,
    ks_bounds,
    ks_sorted_fast,
    lp_integral_bounds,
    lp_integral_bounds_scaled,
    mannwhitney_u1_ties,
    wasserstein1_sorted_fast,
)
from ._backend import check_backend, to_host, use_gpu
from ._result import TestResult
from ._validation import _to_float_array, as_sample, check_bool, check_option, dropped_details, pow2_above, unit_scale

__all__ = [
    "ks_2samp",
    "ks_2samp_sorted",
    "anderson_ksamp",
    "anderson_ksamp_sorted",
    "cramervonmises_2samp",
    "cramervonmises_2samp_sorted",
    "epps_singleton_2samp",
    "epps_singleton_2samp_sorted",
    "mannwhitneyu",
    "mannwhitneyu_sorted",
    "ttest_ind",
    "ttest_ind_sorted",
    "wasserstein_distance",
    "wasserstein_distance_sorted",
    "wasserstein_normalized",
    "wasserstein_normalized_sorted",
    "energy_distance",
    "energy_distance_sorted",
]

_ALTERNATIVES = ("two-sided", "less", "greater")
#: Largest sample for which KS's ``method="auto"`` takes the exact p-value (SciPy's rule).
KS_EXACT_MAX = 10_000
#: Largest sample for which Cramér-von Mises's ``method="auto"`` takes the exact p-value (SciPy's rule).
CVM_EXACT_MAX = 20


def ks_asymptotic(n_a: int, n_b: int) -> bool:
    """Whether the KS p-value of samples of these sizes is the asymptotic one.

    It is past :data:`KS_EXACT_MAX` values on a side (SciPy's
    ``method="auto"``). That p-value depends on the statistic and the sizes
    only (the GPU backend forms it from the device's rank statistics);
    smaller samples get the exact one, computed from the samples.

    Examples
    --------
    >>> ks_asymptotic(10_000, 3), ks_asymptotic(10_001, 3)
    (False, True)
    """
    return max(n_a, n_b) > KS_EXACT_MAX


def _pair(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    a, da = as_sample(reference, "reference")
    b, db = as_sample(current, "current")
    return a, b, (da, db)


def _sorted_pair(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    a, b, dropped = _pair(reference, current)
    return np.sort(a), np.sort(b), dropped


def _device_path(backend: Any, supported: bool, reference: Any, current: Any) -> bool:
    """Whether to run on the device: the options are ones it implements and the backend says so.

    Options it does not implement run on NumPy whatever the backend (no GPU
    needed); the backend's name is checked either way.
    """
    check_backend(backend)
    return supported and use_gpu(backend, reference, current)


def _on_gpu(test: str, reference: Any, current: Any) -> TestResult:
    """``test`` with the samples sorted and the rank statistics computed on the device."""
    from cudrift.backends import _gpu

    return _gpu.sample_test(test, reference, current)


def _ks_alternative(alternative: Any) -> str:
    # SciPy's ks_2samp accepts any word starting with t/g/l ("two-sided", "greater", "less")
    if isinstance(alternative, str) and alternative:
        alternative = {"t": "two-sided", "g": "greater", "l": "less"}.get(
            alternative.lower()[0], alternative
        )
    return check_option("alternative", alternative, _ALTERNATIVES)


#: ``catch_warnings`` saves and restores the process's warning filters and display hook, not a thread's (before
#: Python 3.14): two of the detector's column threads that entered and left it interleaved left the "always" filter
#: and the recording hook in place for good, and every later warning of the process went to a list nobody read.
_WARNINGS_LOCK = threading.Lock()


def _new_warnings_lock() -> None:
    # a child forked while another of its parent's threads held the lock would wait on it for good
    global _WARNINGS_LOCK
    _WARNINGS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_new_warnings_lock)


def _record_warnings(func, *args, **kwargs):
    """Call a SciPy function, returning its result and the warning messages it raised.

    Our API reports in ``details`` what SciPy reports as warnings, so the
    warnings themselves are kept from the caller. One call at a time (see
    ``_WARNINGS_LOCK``); a thread outside cudrift that changes the warning
    filters meanwhile can still interleave with it, as with any
    ``catch_warnings`` before Python 3.14.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = func(*args, **kwargs)
    return res, [str(w.message) for w in caught]


# --------------------------------------------------------------------------- KS


def ks_2samp(
    reference: Any, current: Any, alternative: str = "two-sided", method: str = "auto", *, backend: str = "auto"
) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test, as ``scipy.stats.ks_2samp``.

    Parameters
    ----------
    reference, current
        1-D samples; NaN and ±inf are removed and counted.
    alternative
        ``"two-sided"`` (default), ``"less"`` or ``"greater"`` (SciPy's
        meaning: ``"greater"`` tests whether the reference CDF lies above the
        current one somewhere; statistic ``max(F_ref - F_cur)``).
    method
        ``"auto"`` (exact p-value when both samples have at most 10000
        values, else asymptotic), ``"exact"`` or ``"asymp"``.
    backend
        ``"auto"`` (default: the GPU when an input is already on one),
        ``"cpu"`` or ``"gpu"``; see :mod:`cudrift.stats._backend`.

    Returns
    -------
    TestResult
        ``method="ks"``; ``details`` holds ``statistic_location``,
        ``statistic_sign`` and ``pvalue_method`` (the method actually used:
        SciPy falls back from exact to asymptotic when the exact computation
        fails, and so do we). ``statistic_location`` is a pooled value at
        which the statistic is attained (the smallest, on the CPU); where it
        is attained at several, SciPy's may be another (the first among the
        reference's values, then the current's).

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import ks_2samp
    >>> rng = np.random.default_rng(0)
    >>> res = ks_2samp(rng.normal(size=500), rng.normal(0.3, size=400))
    >>> res.pvalue < 0.05
    True
    """
    alternative = _ks_alternative(alternative)
    method = check_option("method", method, ("auto", "exact", "asymp"))
    if _device_path(backend, alternative == "two-sided" and method == "auto", reference, current):
        return _on_gpu("ks", reference, current)
    a, b, dropped = _sorted_pair(reference, current)
    return ks_2samp_sorted(a, b, alternative, method, n_dropped=dropped)


def ks_2samp_sorted(
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    alternative: str = "two-sided",
    method: str = "auto",
    *,
    n_dropped: tuple[int, int] = (0, 0),
) -> TestResult:
    """Fast entry point of :func:`ks_2samp` for sorted, finite, non-empty float64 arrays.

    No data validation is done; ``n_dropped`` is copied into ``details``.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import ks_2samp_sorted
    >>> ks_2samp_sorted(np.array([1.0, 2.0, 3.0]), np.array([2.5, 4.0])).statistic
    0.6666666666666666
    """
    alternative = _ks_alternative(alternative)
    method = check_option("method", method, ("auto", "exact", "asymp"))
    n1, n2 = ref_sorted.size, cur_sorted.size
    if n1 + n2 >= FAST_MIN and (method == "asymp" or (method == "auto" and ks_asymptotic(n1, n2))):
        d, loc, sign = ks_sorted_fast(ref_sorted, cur_sorted, alternative)
        details = dropped_details(n_dropped)
        details.update(statistic_location=loc, statistic_sign=sign, pvalue_method="asymp")
        return TestResult(d, float(ks_asymp_pvalue(d, n1, n2, alternative)), "ks", n1, n2, 0.0, details)
    g = grid_from_sorted(ref_sorted, cur_sorted)
    return _ks_from_grid(g, alternative, method, ref_sorted, cur_sorted, n_dropped)


def _ks_from_grid(
    g: Grid,
    alternative: str,
    method: str,
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    n_dropped: tuple[int, int],
) -> TestResult:
    n1, n2 = g.n_a, g.n_b
    d, _, idx, sign = ks_bounds(g, alternative)
    mode = method
    if mode == "auto":
        mode = "asymp" if ks_asymptotic(n1, n2) else "exact"
    elif mode == "exact":
        g_ = math.gcd(n1, n2)
        if n1 // g_ >= np.iinfo(np.int32).max / (n2 // g_):
            mode = "asymp"
    if mode == "exact":
        # The exact null distribution lives in SciPy's private (partly
        # compiled) path-counting code, so the small case goes to SciPy itself.
        res, msgs = _record_warnings(
            scipy.stats.ks_2samp, ref_sorted, cur_sorted, alternative=alternative, method="exact"
        )
        d, p = float(res.statistic), float(res.pvalue)
        if any("Switching" in m for m in msgs):
            mode = "asymp"
    else:
        p = ks_asymp_pvalue(d, n1, n2, alternative)
    details = dropped_details(n_dropped)
    details.update(
        statistic_location=float(g.z[idx]), statistic_sign=int(sign), pvalue_method=mode
    )
    return TestResult(float(d), float(p), "ks", n1, n2, 0.0, details)


# --------------------------------------------------------------------------- Anderson-Darling


def _check_anderson_variant(variant: Any) -> str:
    return check_option("variant", variant, ("midrank", "right", "continuous"))


def anderson_ksamp(
    reference: Any, current: Any, *, variant: str = "midrank", method: Any = None, backend: str = "auto"
) -> TestResult:
    """Two-sample Anderson-Darling test, as ``scipy.stats.anderson_ksamp([ref, cur])``.

    Parameters
    ----------
    reference, current
        1-D samples; NaN and ±inf are removed and counted.
    variant
        ``"midrank"`` (default, SciPy's default ``midrank=True``: valid for
        continuous and discrete data), ``"right"`` or ``"continuous"``.
    method
        ``None`` (default): p-value interpolated from Scholz & Stephens'
        table, floored at 0.001 and capped at 0.25 exactly as SciPy does;
        when that happens ``details["pvalue_clipped"]`` is True (SciPy warns
        instead). A ``scipy.stats.PermutationMethod`` runs SciPy's
        permutation test.
    backend
        ``"auto"`` (default: the GPU when an input is already on one),
        ``"cpu"`` or ``"gpu"``; see :mod:`cudrift.stats._backend`.

    Returns
    -------
    TestResult
        ``method="anderson"``; the statistic is SciPy's normalized ``A2``;
        ``details`` holds ``critical_values`` (25% ... 0.1%),
        ``pvalue_clipped`` and ``variant``.

    Raises
    ------
    ValueError
        If the pooled sample has fewer than 4 values (SciPy returns NaN for 3
        and fails for 2) or only one distinct value.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import anderson_ksamp
    >>> rng = np.random.default_rng(0)
    >>> res = anderson_ksamp(rng.normal(size=300), rng.normal(1.0, size=300))
    >>> res.pvalue
    0.001
    >>> res.details["pvalue_clipped"]
    True
    """
    variant = _check_anderson_variant(variant)
    _check_permutation_method(method)
    if _device_path(backend, variant == "midrank" and method is None, reference, current):
        return _on_gpu("anderson", reference, current)
    a, b, dropped = _pair(reference, current)
    res = anderson_ksamp_sorted(np.sort(a), np.sort(b), variant=variant, n_dropped=dropped)
    if method is None:
        return res
    # the permutations depend on the order of the values: give SciPy the caller's order
    perm, _ = _record_warnings(scipy.stats.anderson_ksamp, [a, b], variant=variant, method=method)
    return replace(res, pvalue=float(perm.pvalue), details={**res.details, "pvalue_clipped": False})


def _check_permutation_method(method: Any) -> None:
    if method is not None and not isinstance(method, scipy.stats.PermutationMethod):
        raise ValueError(
            f"Invalid value for method: {method!r}; expected None or a scipy.stats.PermutationMethod."
        )


def anderson_ksamp_sorted(
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    *,
    variant: str = "midrank",
    method: Any = None,
    n_dropped: tuple[int, int] = (0, 0),
) -> TestResult:
    """Fast entry point of :func:`anderson_ksamp` for sorted, finite float64 arrays.

    With a ``PermutationMethod`` the permutations resample the sorted arrays,
    so the p-value differs from the raw function's, which keeps the caller's
    order of the values (SciPy's resampling depends on it).

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import anderson_ksamp_sorted
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> round(anderson_ksamp_sorted(x, x + 0.5).statistic, 3)
    26.549
    """
    variant = _check_anderson_variant(variant)
    _check_permutation_method(method)
    n1, n2 = ref_sorted.size, cur_sorted.size
    N = n1 + n2
    if N < 4:
        raise ValueError(f"anderson_ksamp needs at least 4 observations in total, got {N}.")
    g = grid_from_sorted(ref_sorted, cur_sorted)
    if g.z.size < 2:
        raise ValueError("anderson_ksamp needs more than one distinct observation")
    a2kn = _anderson_a2kn(g, variant)
    a2 = anderson_2samp_normalize(a2kn, n1, n2)
    if method is None:
        p, clipped = anderson_pvalue(a2)
    else:
        res, _ = _record_warnings(
            scipy.stats.anderson_ksamp, [ref_sorted, cur_sorted], variant=variant, method=method
        )
        p, clipped = float(res.pvalue), False
    details = dropped_details(n_dropped)
    details.update(
        variant=variant,
        pvalue_clipped=clipped,
        critical_values=tuple(float(c) for c in anderson_critical_values()),
    )
    return TestResult(a2, p, "anderson", n1, n2, 0.0, details)


def _anderson_a2kn(g: Grid, variant: str) -> float:
    if variant == "midrank":
        return anderson_a2kn_exact(g)
    N = g.n_a + g.n_b
    a_mult = np.diff(g.a_lo, prepend=0)
    b_mult = np.diff(g.b_lo, prepend=0)
    total = 0.0
    if variant == "right":
        # Scholz & Stephens eq. 6, over the distinct values but the last
        lj = (a_mult + b_mult)[:-1]
        Bj = lj.cumsum()
        for cum, n_i in ((g.a_lo, g.n_a), (g.b_lo, g.n_b)):
            Mij = cum[:-1]
            inner = lj / float(N) * (N * Mij - Bj * n_i) ** 2 / (Bj * (N - Bj))
            total += inner.sum() / n_i
        return float(total)
    # continuous (eq. 3): one term per pooled observation but the last,
    # each seeing the counts at its own (possibly tied) value
    t = a_mult + b_mult
    j = np.arange(1, N)
    for cum, n_i in ((g.a_lo, g.n_a), (g.b_lo, g.n_b)):
        Mij = np.repeat(cum, t)[:-1]
        inner = (N * Mij - j * n_i) ** 2 / (j * (N - j))
        total += inner.sum() / n_i
    return float(total / N)


# --------------------------------------------------------------------------- Cramér-von Mises


def cramervonmises_2samp(reference: Any, current: Any, method: str = "auto", *, backend: str = "auto") -> TestResult:
    """Two-sample Cramér-von Mises test, as ``scipy.stats.cramervonmises_2samp``.

    Parameters
    ----------
    reference, current
        1-D samples with at least 2 finite values each.
    method
        ``"auto"`` (exact p-value when both samples have at most 20 values),
        ``"exact"`` or ``"asymptotic"``. Asymptotic p-values below 0.5 come
        from the limiting survival function itself, not SciPy's ``1 - cdf``,
        which loses their digits in the tail (see
        :func:`~cudrift.stats._dist.cvm_asymptotic_pvalue`).
    backend
        ``"auto"`` (default: the GPU when an input is already on one),
        ``"cpu"`` or ``"gpu"``; see :mod:`cudrift.stats._backend`.

    Returns
    -------
    TestResult
        ``method="cramervonmises"``; the statistic is SciPy's ``T`` (midranks
        for ties), formed term by term as SciPy forms it.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import cramervonmises_2samp
    >>> rng = np.random.default_rng(0)
    >>> res = cramervonmises_2samp(rng.normal(size=200), rng.normal(size=150))
    >>> res.pvalue > 0.05
    True
    """
    method = check_option("method", method, ("auto", "exact", "asymptotic"))
    if _device_path(backend, method == "auto", reference, current):
        return _on_gpu("cramervonmises", reference, current)
    a, b, dropped = _sorted_pair(reference, current)
    return cramervonmises_2samp_sorted(a, b, method, n_dropped=dropped)


def cramervonmises_2samp_sorted(
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    method: str = "auto",
    *,
    n_dropped: tuple[int, int] = (0, 0),
) -> TestResult:
    """Fast entry point of :func:`cramervonmises_2samp` for sorted, finite float64 arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import cramervonmises_2samp_sorted
    >>> res = cramervonmises_2samp_sorted(np.arange(10.0), np.arange(10.0) + 0.5)
    >>> round(res.statistic, 4)
    0.025
    """
    method = check_option("method", method, ("auto", "exact", "asymptotic"))
    nx, ny = ref_sorted.size, cur_sorted.size
    if nx < 2 or ny < 2:
        raise ValueError(
            f"cramervonmises_2samp needs at least 2 values in each sample, got {nx} and {ny}."
        )
    g = grid_from_sorted(ref_sorted, cur_sorted)
    t = cvm_scipy(g)
    if method == "auto":
        method = "asymptotic" if max(nx, ny) > CVM_EXACT_MAX else "exact"
    if method == "exact":
        # the exact null distribution is SciPy's private recursion (Xiao et al. 2006)
        res, _ = _record_warnings(scipy.stats.cramervonmises_2samp, ref_sorted, cur_sorted, method="exact")
        p = float(res.pvalue)
    else:
        p = cvm_asymptotic_pvalue(t, nx, ny)
    details = dropped_details(n_dropped)
    details["pvalue_method"] = method
    return TestResult(t, p, "cramervonmises", nx, ny, 0.0, details)


# --------------------------------------------------------------------------- Epps-Singleton


def _check_t(t: Any) -> np.ndarray:
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid value for t: {t!r}; expected positive numbers.") from None
    if arr.ndim > 1:
        raise ValueError(f"t must be 1d, but t.ndim equals {arr.ndim}.")
    arr = np.atleast_1d(arr)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"Invalid value for t: {t!r}; expected positive finite numbers.")
    return arr


def epps_singleton_2samp(reference: Any, current: Any, t: Any = (0.4, 0.8)) -> TestResult:
    """Epps-Singleton test on the empirical characteristic function, as SciPy's.

    Parameters
    ----------
    reference, current
        1-D samples with at least 5 finite values each.
    t
        Positive points at which the characteristic function is evaluated,
        rescaled by the semi-interquartile range of the pooled sample.

    Returns
    -------
    TestResult
        ``method="epps_singleton"``; ``details["covariance_rank"]`` is the
        rank of the estimated covariance (SciPy warns when it is below
        ``2 len(t)``; we set ``details["full_rank"] = False``).

    Raises
    ------
    ValueError
        If a sample has fewer than 5 values, or the pooled sample's
        interquartile range is 0 (the statistic is undefined; SciPy fails
        inside its linear algebra).

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import epps_singleton_2samp
    >>> rng = np.random.default_rng(0)
    >>> res = epps_singleton_2samp(rng.normal(size=200), rng.standard_t(2, size=200))
    >>> 0.0 <= res.pvalue <= 1.0
    True
    """
    t_arr = _check_t(t)
    a, b, dropped = _pair(reference, current)
    return _epps_singleton(a, b, t_arr, dropped)


def epps_singleton_2samp_sorted(
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    t: Any = (0.4, 0.8),
    *,
    n_dropped: tuple[int, int] = (0, 0),
) -> TestResult:
    """Fast entry point of :func:`epps_singleton_2samp` (order of the values does not matter).

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import epps_singleton_2samp_sorted
    >>> x = np.linspace(-2.0, 2.0, 40)
    >>> epps_singleton_2samp_sorted(x, x).statistic
    0.0
    """
    return _epps_singleton(ref_sorted, cur_sorted, _check_t(t), n_dropped)


def _epps_singleton(x: np.ndarray, y: np.ndarray, t: np.ndarray, n_dropped: tuple[int, int]) -> TestResult:
    nx, ny = x.size, y.size
    if nx < 5 or ny < 5:
        raise ValueError(
            f"epps_singleton_2samp needs at least 5 values in each sample, got {nx} and {ny}."
        )
    n = nx + ny
    sigma = float(scipy.stats.iqr(np.concatenate((x, y)))) / 2
    if sigma == 0:
        raise ValueError(
            "epps_singleton_2samp: the interquartile range of the pooled sample is 0, "
            "so the evaluation points t cannot be rescaled."
        )
    # t * (x / sigma), not (t / sigma) * x as SciPy: t / sigma overflowed for a subnormal sigma, and a phase of
    # a sentinel value (float64's largest) did, giving cos(inf) = NaN and "SVD did not converge"; phases past
    # float64's range are capped (where the cosine of a finite phase is as arbitrary as of a larger one)
    ts, cap = t.reshape(-1, 1), np.finfo(np.float64).max / max(1.0, float(np.max(t)))
    with np.errstate(over="ignore"):
        zx, zy = (np.clip(v / sigma, -cap, cap) for v in (x, y))
    gx = np.concatenate((np.cos(ts * zx), np.sin(ts * zx)), axis=0)
    gy = np.concatenate((np.cos(ts * zy), np.sin(ts * zy)), axis=0)
    # the test uses the biased covariance estimate
    cov_x = _cov(gx) * (nx - 1) / nx
    cov_y = _cov(gy) * (ny - 1) / ny
    est_cov = (n / nx) * cov_x + (n / ny) * cov_y
    est_cov_inv = np.linalg.pinv(est_cov)
    r = float(np.linalg.matrix_rank(est_cov_inv))
    g_diff = np.mean(gx, axis=-1, keepdims=True) - np.mean(gy, axis=-1, keepdims=True)
    w = float((n * np.matmul(g_diff.T, np.matmul(est_cov_inv, g_diff)))[0, 0])
    if max(nx, ny) < 25:
        # small-sample correction of Epps & Singleton (1986)
        w *= 1.0 / (1.0 + n ** (-0.45) + 10.1 * (nx ** (-1.7) + ny ** (-1.7)))
    p = float(special.chdtrc(r, w))
    details = dropped_details(n_dropped)
    details.update(covariance_rank=int(r), full_rank=bool(r >= 2 * t.size))
    return TestResult(w, p, "epps_singleton", nx, ny, 0.0, details)


def _cov(m: np.ndarray) -> np.ndarray:
    """Covariance of the rows, formed as ``array_api_extra.cov`` (used by SciPy) forms it."""
    m = m - np.mean(m, axis=-1, keepdims=True)
    c = np.matmul(m, m.T)
    c /= m.shape[-1] - 1
    return c


# --------------------------------------------------------------------------- Mann-Whitney U


def _check_mwu_options(use_continuity: Any, alternative: Any, method: Any) -> tuple[bool, str, str]:
    use_continuity = check_bool("use_continuity", use_continuity)
    alternative = check_option("alternative", alternative, _ALTERNATIVES, lower=True)
    method = check_option("method", method, ("auto", "exact", "asymptotic"), lower=True)
    return use_continuity, alternative, method


def mannwhitneyu(
    reference: Any,
    current: Any,
    use_continuity: bool = True,
    alternative: str = "two-sided",
    method: str = "auto",
) -> TestResult:
    """Mann-Whitney U rank test, as ``scipy.stats.mannwhitneyu``.

    Parameters
    ----------
    reference, current
        1-D samples; NaN and ±inf are removed and counted.
    use_continuity
        Continuity correction of the normal approximation.
    alternative
        ``"two-sided"``, ``"less"`` or ``"greater"``.
    method
        ``"auto"`` (exact when a sample has at most 8 values and there are
        no ties, else asymptotic with tie correction), ``"exact"`` or
        ``"asymptotic"``.

    Returns
    -------
    TestResult
        ``method="mannwhitneyu"``; the statistic is ``U1`` of the reference
        sample, like SciPy's.

    Examples
    --------
    >>> from cudrift.stats import mannwhitneyu
    >>> res = mannwhitneyu([1.0, 2.0, 3.0, 4.0], [3.5, 5.0, 6.0, 7.0])
    >>> res.statistic
    1.0
    """
    use_continuity, alternative, method = _check_mwu_options(use_continuity, alternative, method)
    a, b, dropped = _sorted_pair(reference, current)
    return mannwhitneyu_sorted(a, b, use_continuity, alternative, method, n_dropped=dropped)


def mannwhitneyu_sorted(
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    use_continuity: bool = True,
    alternative: str = "two-sided",
    method: str = "auto",
    *,
    n_dropped: tuple[int, int] = (0, 0),
) -> TestResult:
    """Fast entry point of :func:`mannwhitneyu` for sorted, finite float64 arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import mannwhitneyu_sorted
    >>> mannwhitneyu_sorted(np.array([1.0, 2.0]), np.array([1.5, 3.0])).statistic
    1.0
    """
    use_continuity, alternative, method = _check_mwu_options(use_continuity, alternative, method)
    n1, n2 = ref_sorted.size, cur_sorted.size
    g = grid_from_sorted(ref_sorted, cur_sorted)
    u1, tie_term = mannwhitney_u1_ties(g)
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, f = u1, 1
    elif alternative == "less":
        u, f = u2, 1  # the SF of U2 rather than the CDF of U1, by symmetry
    else:
        u, f = max(u1, u2), 2
    if method == "auto":
        if n1 > 8 and n2 > 8:
            method = "asymptotic"
        else:
            method = "asymptotic" if tie_term > 0 else "exact"
    if method == "exact":
        # the exact null distribution is SciPy's private _MWU recursion
        res, _ = _record_warnings(
            scipy.stats.mannwhitneyu,
            ref_sorted,
            cur_sorted,
            use_continuity=use_continuity,
            alternative=alternative,
            method="exact",
        )
        p = float(res.pvalue)
    else:
        mu = n1 * n2 / 2
        n = n1 + n2
        s = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        numerator = u - mu
        if use_continuity:
            numerator -= 0.5
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.float64(numerator) / s
        p = float(np.clip(special.ndtr(-z) * f, 0.0, 1.0))
    details = dropped_details(n_dropped)
    details["pvalue_method"] = method
    return TestResult(float(u1), p, "mannwhitneyu", n1, n2, 0.0, details)


# --------------------------------------------------------------------------- t-test


def ttest_ind(
    reference: Any, current: Any, equal_var: bool = False, alternative: str = "two-sided"
) -> TestResult:
    """Two-sample t-test on the means, as ``scipy.stats.ttest_ind``.

    Parameters
    ----------
    reference, current
        1-D samples; NaN and ±inf are removed and counted.
    equal_var
        ``False`` (default, **unlike SciPy**): Welch's test, which does not
        assume equal variances and is the safer default for drift, where a
        changed variance is common. ``True``: Student's pooled test.
    alternative
        ``"two-sided"``, ``"less"`` (reference mean below current) or ``"greater"``.

    Returns
    -------
    TestResult
        ``method="ttest"``; statistic ``(mean_ref - mean_cur) / se``;
        ``details`` holds ``df``, ``estimate`` and ``standard_error``. As in
        SciPy, a Welch test with a single-value sample, or two constant
        samples, gives NaN. The values are divided by a power of two first
        (exactly), so the result is the same at any scale of float64, where
        SciPy's squares overflow (values near 1e160) or underflow (1e-160).

    Examples
    --------
    >>> from cudrift.stats import ttest_ind
    >>> res = ttest_ind([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0])
    >>> res.statistic
    -1.0954451150103324
    """
    equal_var = check_bool("equal_var", equal_var)
    alternative = check_option("alternative", alternative, _ALTERNATIVES)
    a, b, dropped = _pair(reference, current)
    return _ttest(a, b, equal_var, alternative, dropped)


def ttest_ind_sorted(
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    equal_var: bool = False,
    alternative: str = "two-sided",
    *,
    n_dropped: tuple[int, int] = (0, 0),
) -> TestResult:
    """Fast entry point of :func:`ttest_ind` (order of the values does not matter).

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import ttest_ind_sorted
    >>> ttest_ind_sorted(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])).statistic
    0.0
    """
    equal_var = check_bool("equal_var", equal_var)
    alternative = check_option("alternative", alternative, _ALTERNATIVES)
    return _ttest(ref_sorted, cur_sorted, equal_var, alternative, n_dropped)


def _var_ddof1(x: np.ndarray, mean: float) -> float:
    # SciPy's _var: mean of squared deviations (from x's mean, given), then rescaled by n / (n - 1)
    n = np.float64(x.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean((x - mean) ** 2) * (n / (n - 1)))


def _ttest(a: np.ndarray, b: np.ndarray, equal_var: bool, alternative: str, n_dropped) -> TestResult:
    n1, n2 = a.size, b.size
    # Means and variances of the values shifted by one of them (the
    # variances do not move): far from zero (1e9 + small noise) the unshifted
    # means cancel in their difference, and summed over sorted values (the
    # detector's kept reference) they lost a digit more than SciPy's; shifted,
    # the estimate is nearer the exact one.
    c = float(a[0]) if n1 else 0.0
    def top(x, y):  # the largest magnitude of both (inf where a shift overflowed)
        return max(float(np.max(np.abs(x), initial=0.0)), float(np.max(np.abs(y), initial=0.0)))

    with np.errstate(over="ignore", invalid="ignore"):
        da, db = a - c, b - c
    largest = top(da, db)
    if not math.isfinite(largest):  # a shift across the float64 range: none
        da, db = a, b
        largest = top(da, db)
    # t is scale-free: divided by a power of two (exact) the deviations are below 2 in magnitude, so their
    # squares neither overflow (values near 1e160 gave t = 0, p = 1) nor underflow or go subnormal (near
    # 1e-200, t = inf, p = 0; near 1e-160, 1e-4 off). At ordinary scales nothing changes, to the bit.
    scale = pow2_above(largest)
    if scale != 1.0:
        da, db = da / scale, db / scale
    m1, m2 = float(np.mean(da)), float(np.mean(db))
    v1, v2 = _var_ddof1(da, m1), _var_ddof1(db, m2)
    return _ttest_from_stats(m1 - m2, v1, n1, v2, n2, equal_var, alternative, scale, dropped_details(n_dropped))


def _ttest_ind_from_stats(mean1: float, std1: float, n1: int, mean2: float, std2: float, n2: int,
                          equal_var: bool = False, alternative: str = "two-sided", diff_lo: float = 0.0) -> TestResult:
    """:func:`ttest_ind` from each sample's mean, standard deviation (``ddof=1``) and size.

    ``scipy.stats.ttest_ind_from_stats``, scaled by a power of two first, as
    :func:`ttest_ind` scales the values: SciPy squares the variances for
    Welch's degrees of freedom, which overflow for standard deviations past
    ~1e77 (and underflow below ~1e-77), and then takes 1 degree of freedom.
    The standard deviations must be accurate: those of moments whose squares
    overflowed or are subnormal are not (see :func:`_usable_std`). ``diff_lo`` is added to the means'
    difference: ``mean1_lo - mean2_lo`` of means kept as double-doubles (``Moments.mean_lo``), without which
    the difference of two means of 1e9 is rounded to 1e-7.
    """
    scale = pow2_above(max(abs(std1), abs(std2)))
    with np.errstate(over="ignore", invalid="ignore"):
        diff = float((np.float64(mean1) - np.float64(mean2)) + diff_lo) / scale
    v1, v2 = (std1 / scale) ** 2, (std2 / scale) ** 2
    return _ttest_from_stats(diff, v1, n1, v2, n2, equal_var, alternative, scale, {})


def _ttest_from_stats(diff: float, v1: float, n1: int, v2: float, n2: int, equal_var: bool, alternative: str,
                      scale: float, details: dict) -> TestResult:
    """The t-test of a difference of means and two variances (ddof=1), all in units of ``scale``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if equal_var:
            v1 = 0.0 if n1 == 1 else v1
            v2 = 0.0 if n2 == 1 else v2
            df = n1 + n2 - 2.0
            svar = ((n1 - 1) * v1 + (n2 - 1) * v2) / df if df > 0 else math.nan
            denom = float(np.sqrt(svar * (1.0 / n1 + 1.0 / n2)))
        else:
            vn1, vn2 = np.float64(v1) / n1, np.float64(v2) / n2
            df = float((vn1 + vn2) ** 2 / (vn1**2 / (n1 - 1) + vn2**2 / (n2 - 1))) if min(n1, n2) > 1 else math.nan
            # undefined df means zero variances; any non-NaN df gives the same p
            df = 1.0 if math.isnan(df) else df
            denom = float(np.sqrt(vn1 + vn2))
        t = float(np.divide(np.float64(diff), denom))
        estimate, standard_error = float(np.float64(diff) * scale), float(np.float64(denom) * scale)
    if alternative == "less":
        p = special.stdtr(df, t)
    elif alternative == "greater":
        p = special.stdtr(df, -t)
    else:
        p = 2 * special.stdtr(df, -abs(t))
    details.update(df=float(df), estimate=estimate, standard_error=standard_error, equal_var=equal_var)
    return TestResult(t, float(p), "ttest", n1, n2, 0.0, details)


# --------------------------------------------------------------------------- distances


def _weighted_grid(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> Grid:
    """Grid of two weighted samples: the "counts" are cumulative weights.

    The totals are the last cumulative sums, so both CDFs end at exactly 1.
    """
    pooled = np.concatenate((a, b))
    order = np.argsort(pooled, kind="stable")
    z_all = pooled[order]
    cum_a = np.cumsum(np.concatenate((wa, np.zeros_like(wb)))[order])
    cum_b = np.cumsum(np.concatenate((np.zeros_like(wa), wb))[order])
    last = np.append(np.flatnonzero(z_all[1:] != z_all[:-1]), z_all.size - 1)
    a_cnt, b_cnt = cum_a[last], cum_b[last]
    return Grid(z_all[last], a_cnt, a_cnt, b_cnt, b_cnt, float(cum_a[-1]), float(cum_b[-1]))


def _sample_with_mask(x: Any, name: str) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Like :func:`as_sample`, plus the mask of kept values (None if all kept) to align weights."""
    # one conversion for both: converting x again as float64 raised TypeError on objects such as pd.NA,
    # which the conversion maps to NaN
    values = _to_float_array(x, name)
    kept, n_dropped = as_sample(values, name)
    mask = np.isfinite(values.reshape(-1)) if n_dropped else None
    return kept, n_dropped, mask


def _aligned_weights(weights: Any, mask: np.ndarray | None, n_kept: int, name: str) -> np.ndarray:
    """Weights of the kept values, checked as SciPy checks them."""
    if weights is None:
        return np.ones(n_kept)
    try:
        w = np.asarray(to_host(weights), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold real numbers.") from None
    if w.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {w.shape}.")
    n_given = n_kept if mask is None else mask.size
    if w.size != n_given:
        raise ValueError(f"{name} has {w.size} weights for {n_given} values.")
    if mask is not None:
        w = w[mask]
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative.")
    if not w.sum() > 0:
        raise ValueError(f"{name} must have a positive sum.")
    return w


def _lp_distance(reference, current, reference_weights, current_weights, p: int):
    """``integral |F_ref - F_cur|^p dx`` of two raw (optionally weighted) samples, as ``(value, c)`` in units of
    ``c`` (a power of two, see :func:`lp_integral_bounds_scaled`), sizes and numbers of values dropped."""
    a, da, mask_a = _sample_with_mask(reference, "reference")
    b, db, mask_b = _sample_with_mask(current, "current")
    if reference_weights is None and current_weights is None:
        g = grid_from_sorted(np.sort(a), np.sort(b))
    else:
        wa = _aligned_weights(reference_weights, mask_a, a.size, "reference_weights")
        wb = _aligned_weights(current_weights, mask_b, b.size, "current_weights")
        g = _weighted_grid(a, wa, b, wb)
    value, _, c = lp_integral_bounds_scaled(g, p)
    return (value, c), a.size, b.size, (da, db)


def _energy_from_l2(l2: float, c: float) -> float:
    """``sqrt(2 l2 c)``, finite wherever it is in float64 even where ``l2 c`` is not (values spanning +-1e308)."""
    return float(np.sqrt(2) * np.sqrt(l2)) if c == 1.0 else math.sqrt(2.0 * l2) * math.sqrt(c)


def wasserstein_distance(
    reference: Any, current: Any, reference_weights: Any = None, current_weights: Any = None, *,
    backend: str = "auto",
) -> TestResult:
    """Wasserstein-1 distance between two 1-D samples, as ``scipy.stats.wasserstein_distance``.

    ``W1 = integral |F_ref(x) - F_cur(x)| dx``, in the units of the data.

    Parameters
    ----------
    reference, current
        1-D samples; NaN and ±inf are removed and counted.
    reference_weights, current_weights
        Optional weight per value (before removal; a weight whose value is
        NaN/inf is dropped with it), non-negative with a positive sum.
    backend
        ``"auto"`` (default: the GPU when an input is already on one),
        ``"cpu"`` or ``"gpu"``; see :mod:`cudrift.stats._backend`.

    Returns
    -------
    TestResult
        ``method="wasserstein"``, ``pvalue=None``.

    Examples
    --------
    >>> from cudrift.stats import wasserstein_distance
    >>> wasserstein_distance([0.0, 1.0, 3.0], [5.0, 6.0, 8.0]).statistic
    5.0
    """
    if _device_path(backend, reference_weights is None and current_weights is None, reference, current):
        return _on_gpu("wasserstein", reference, current)
    (w, c), n1, n2, dropped = _lp_distance(reference, current, reference_weights, current_weights, 1)
    with np.errstate(over="ignore"):
        w = float(np.float64(w) * c)
    return TestResult(w, None, "wasserstein", n1, n2, 0.0, {**dropped_details(dropped), "kind": "distance"})


def wasserstein_distance_sorted(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, *, n_dropped: tuple[int, int] = (0, 0)
) -> TestResult:
    """Fast entry point of :func:`wasserstein_distance` (unweighted) for sorted finite arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import wasserstein_distance_sorted
    >>> wasserstein_distance_sorted(np.array([0.0, 1.0]), np.array([2.0, 3.0])).statistic
    2.0
    """
    w = _w1_sorted(ref_sorted, cur_sorted)
    return TestResult(
        w, None, "wasserstein", ref_sorted.size, cur_sorted.size, 0.0,
        {**dropped_details(n_dropped), "kind": "distance"},
    )


def _w1_sorted(a: np.ndarray, b: np.ndarray) -> float:
    # Large samples take the merge-free closed form (same value, ~4x faster);
    # small ones the shared grid formula.
    if a.size + b.size >= FAST_MIN:
        return wasserstein1_sorted_fast(a, b)
    return lp_integral_bounds(grid_from_sorted(a, b), 1)[0]


def _std(x: np.ndarray) -> float:
    """Population standard deviation of a sorted sample that does not overflow for |x| near the float64 limit.

    Exactly 0.0 for a constant sample (``np.std`` of ``[0.1] * 1000`` is
    ~1e-17, which would make a normalized distance ~1e16 instead of the
    constant-reference rule's division by 1), as ``Moments.var``.
    """
    if x.size and x[0] == x[-1]:
        return 0.0
    top = max(abs(float(x[0])), abs(float(x[-1]))) if x.size else 1.0
    if 1e-100 < top < 1e100:
        # from the smallest value: far from zero (1e15 + small integers) the mean of unshifted values loses
        # digits that the deviations then carry (1e-6 of the std); the differences are exact there
        return float(np.std(x - x[0]))
    # squares of values past ~1e154 overflow, and of values below ~1e-162 underflow to 0 (a varying sample
    # would get the constant rule's normalizer 1): scale to about 1 first
    z, scale = unit_scale(x)
    return float(np.std(z - z[0])) * scale  # (from the smallest value too)


#: Below this standard deviation the moments' squared deviations are subnormal and lose bits (a variance under
#: float64's smallest normal, 2**-1022): at 1e-161 the std came out 0.2% low, with statistic_error 0.
_STD_SUBNORMAL = 2.0**-511


def _usable_std(std: float | None, constant: Callable[[], bool]) -> bool:
    """Whether a standard deviation from moments can normalize a reference: finite (squares past ~1e154
    overflow), at least :data:`_STD_SUBNORMAL` (squares below ~1e-154 are subnormal, and below ~1e-162 they
    underflow to 0), or 0 for a constant reference (``constant()``, asked only then: on the device it is a
    read of the sorted ends). Every path that normalizes a Wasserstein distance asks this."""
    return std is not None and math.isfinite(std) and (std >= _STD_SUBNORMAL or (std == 0 and constant()))


def _normalizer(std: float) -> float:
    # A constant reference has no scale of its own; dividing by 1 keeps the
    # distance finite and in data units rather than inventing a scale.
    return std if std > 0 else 1.0


def wasserstein_normalized(reference: Any, current: Any, *, backend: str = "auto") -> TestResult:
    """Wasserstein-1 distance divided by the reference standard deviation (ddof=0).

    Scale-free, so one threshold (default 0.1) fits every column. When the
    reference is constant (standard deviation 0) the distance is divided by
    1 instead, i.e. reported in data units; ``details["normalizer"]`` says
    which divisor was used and ``details["reference_std"]`` holds the std.

    Parameters
    ----------
    reference, current
        1-D samples; NaN and ±inf are removed and counted.
    backend
        ``"auto"`` (default: the GPU when an input is already on one),
        ``"cpu"`` or ``"gpu"``; see :mod:`cudrift.stats._backend`.

    Examples
    --------
    >>> from cudrift.stats import wasserstein_normalized
    >>> wasserstein_normalized([0.0, 2.0], [1.0, 3.0]).statistic
    1.0
    """
    if _device_path(backend, True, reference, current):
        return _on_gpu("wasserstein_normalized", reference, current)
    a, b, dropped = _sorted_pair(reference, current)
    return wasserstein_normalized_sorted(a, b, n_dropped=dropped)


def wasserstein_normalized_sorted(
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    *,
    n_dropped: tuple[int, int] = (0, 0),
    reference_std: float | None = None,
) -> TestResult:
    """Fast entry point of :func:`wasserstein_normalized` for sorted finite arrays.

    ``reference_std`` (ddof=0) may be passed by a caller that already knows
    it (a detector's reference moments) to skip one pass over the reference.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import wasserstein_normalized_sorted
    >>> wasserstein_normalized_sorted(np.array([5.0, 5.0]), np.array([5.0, 7.0])).statistic
    1.0
    """
    w = _w1_sorted(ref_sorted, cur_sorted)
    usable = ref_sorted.size and _usable_std(reference_std, lambda: ref_sorted[0] == ref_sorted[-1])
    std = float(reference_std) if usable else _std(ref_sorted)
    norm = _normalizer(std)
    details = {**dropped_details(n_dropped), "kind": "distance", "reference_std": std, "normalizer": norm}
    return TestResult(w / norm, None, "wasserstein_normalized", ref_sorted.size, cur_sorted.size, 0.0, details)


def energy_distance(
    reference: Any, current: Any, reference_weights: Any = None, current_weights: Any = None, *,
    backend: str = "auto",
) -> TestResult:
    """Energy distance between two 1-D samples, as ``scipy.stats.energy_distance``.

    ``sqrt(2 * integral (F_ref - F_cur)^2 dx)``, which equals
    ``sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|)`` over the empirical distributions
    (see :func:`cudrift.stats.energy_distance_nd` for points in d dimensions).

    Parameters
    ----------
    reference, current
        1-D samples; NaN and ±inf are removed and counted.
    reference_weights, current_weights
        Optional weights, as for :func:`wasserstein_distance`.
    backend
        ``"auto"`` (default: the GPU when an input is already on one),
        ``"cpu"`` or ``"gpu"``; see :mod:`cudrift.stats._backend`.

    Returns
    -------
    TestResult
        ``method="energy_distance"``, ``pvalue=None``.

    Examples
    --------
    >>> from cudrift.stats import energy_distance
    >>> round(energy_distance([0.0], [2.0]).statistic, 12)
    2.0
    """
    if _device_path(backend, reference_weights is None and current_weights is None, reference, current):
        return _on_gpu("energy_distance", reference, current)
    (l2, c), n1, n2, dropped = _lp_distance(reference, current, reference_weights, current_weights, 2)
    return TestResult(
        _energy_from_l2(l2, c), None, "energy_distance", n1, n2, 0.0,
        {**dropped_details(dropped), "kind": "distance"},
    )


def energy_distance_sorted(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, *, n_dropped: tuple[int, int] = (0, 0)
) -> TestResult:
    """Fast entry point of :func:`energy_distance` (unweighted) for sorted finite arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import energy_distance_sorted
    >>> round(energy_distance_sorted(np.array([0.0]), np.array([2.0])).statistic, 12)
    2.0
    """
    l2, _, c = lp_integral_bounds_scaled(grid_from_sorted(ref_sorted, cur_sorted), 2)
    return TestResult(
        _energy_from_l2(l2, c), None, "energy_distance", ref_sorted.size, cur_sorted.size, 0.0,
        {**dropped_details(n_dropped), "kind": "distance"},
    )
