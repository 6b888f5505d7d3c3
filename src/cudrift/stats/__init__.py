"""Two-sample statistics: on raw arrays, on count vectors, on points, and from CDF bounds.

Every function takes the reference sample first and the current one second
and returns a :class:`TestResult` whose ``method`` is its name in
:data:`TESTS`, the registry a drift detector picks tests from.

Decision rule: for a p-value test (``TestSpec.is_pvalue``) drift is
``pvalue < threshold``; for a distance it is ``statistic >= threshold``
(:meth:`TestSpec.drifted`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._result import TestResult
from .categorical import (
    chisquare_2samp,
    chisquare_2samp_labels,
    count_labels,
    fisher_exact,
    fisher_exact_labels,
    ztest_proportions,
    ztest_proportions_labels,
)
from .distances import hellinger, jensenshannon, kl_divergence, psi, tvd
from .multivariate import energy_distance_nd, median_heuristic, mmd
from .rank import anderson_from_cdf, cramervonmises_from_cdf, ks_from_cdf, wasserstein_from_cdf
from .univariate import (
    anderson_ksamp,
    anderson_ksamp_sorted,
    cramervonmises_2samp,
    cramervonmises_2samp_sorted,
    energy_distance,
    energy_distance_sorted,
    epps_singleton_2samp,
    epps_singleton_2samp_sorted,
    ks_2samp,
    ks_2samp_sorted,
    mannwhitneyu,
    mannwhitneyu_sorted,
    ttest_ind,
    ttest_ind_sorted,
    wasserstein_distance,
    wasserstein_distance_sorted,
    wasserstein_normalized,
    wasserstein_normalized_sorted,
)

__all__ = [
    "TestResult",
    "TestSpec",
    "TESTS",
    "get_test",
    # univariate, raw arrays
    "ks_2samp",
    "anderson_ksamp",
    "cramervonmises_2samp",
    "epps_singleton_2samp",
    "mannwhitneyu",
    "ttest_ind",
    "wasserstein_distance",
    "wasserstein_normalized",
    "energy_distance",
    # univariate, sorted fast paths
    "ks_2samp_sorted",
    "anderson_ksamp_sorted",
    "cramervonmises_2samp_sorted",
    "epps_singleton_2samp_sorted",
    "mannwhitneyu_sorted",
    "ttest_ind_sorted",
    "wasserstein_distance_sorted",
    "wasserstein_normalized_sorted",
    "energy_distance_sorted",
    # categorical
    "chisquare_2samp",
    "chisquare_2samp_labels",
    "fisher_exact",
    "fisher_exact_labels",
    "ztest_proportions",
    "ztest_proportions_labels",
    "count_labels",
    # count distances
    "psi",
    "kl_divergence",
    "jensenshannon",
    "hellinger",
    "tvd",
    # points
    "mmd",
    "energy_distance_nd",
    "median_heuristic",
    # from CDF bounds (profiles)
    "ks_from_cdf",
    "wasserstein_from_cdf",
    "cramervonmises_from_cdf",
    "anderson_from_cdf",
]

Kind = Literal["numerical", "categorical", "binary", "any"]
InputKind = Literal["sample", "counts", "points"]


@dataclass(frozen=True)
class TestSpec:
    """How a detector may use one registered test.

    Attributes
    ----------
    name
        Registry key, equal to ``TestResult.method`` of its results.
    kind
        Column kind it applies to: ``"numerical"``, ``"categorical"``,
        ``"binary"`` or ``"any"`` (count vectors of either).
    input
        ``"sample"``: two 1-D numeric samples; ``"counts"``: two count vectors
        aligned on the same bins/categories; ``"points"``: two ``(n, d)`` arrays.
    is_pvalue
        True: drift when ``pvalue < threshold``; False: drift when
        ``statistic >= threshold``.
    default_threshold
        Threshold used when the policy gives none.
    func
        Public function, ``func(reference, current) -> TestResult``.
    func_sorted
        Fast entry point for pre-sorted finite float64 samples (``input ==
        "sample"`` only), ``func_sorted(ref_sorted, cur_sorted, *,
        n_dropped=(0, 0))``.
    """

    __test__ = False  # keep pytest from collecting this class

    name: str
    kind: Kind
    input: InputKind
    is_pvalue: bool
    default_threshold: float
    func: Callable[..., TestResult]
    func_sorted: Callable[..., TestResult] | None = None

    def drifted(self, result: TestResult, threshold: float | None = None) -> bool:
        """Apply the decision rule to a result (NaN never counts as drift; an infinite distance does).

        Examples
        --------
        >>> from cudrift.stats import TESTS, TestResult
        >>> TESTS["ks"].drifted(TestResult(0.3, 0.01, "ks", 100, 100))
        True
        """
        thr = self.default_threshold if threshold is None else float(threshold)
        if self.is_pvalue:
            return result.pvalue is not None and not math.isnan(result.pvalue) and result.pvalue < thr
        return not math.isnan(result.statistic) and result.statistic >= thr


def _spec(name, kind, input_, is_pvalue, threshold, func, func_sorted=None) -> tuple[str, TestSpec]:
    return name, TestSpec(name, kind, input_, is_pvalue, threshold, func, func_sorted)


# Distance thresholds: 0.1 for the scale-free ones (normalized Wasserstein,
# JS distance, PSI, KL, Hellinger, TVD), following Evidently's defaults.
# Plain Wasserstein and energy distance are in data units and have no
# natural scale; 0.1 is a placeholder that a policy should override per column.
TESTS: dict[str, TestSpec] = dict(
    [
        _spec("ks", "numerical", "sample", True, 0.05, ks_2samp, ks_2samp_sorted),
        _spec("anderson", "numerical", "sample", True, 0.05, anderson_ksamp, anderson_ksamp_sorted),
        _spec("cramervonmises", "numerical", "sample", True, 0.05, cramervonmises_2samp, cramervonmises_2samp_sorted),
        _spec("epps_singleton", "numerical", "sample", True, 0.05, epps_singleton_2samp, epps_singleton_2samp_sorted),
        _spec("mannwhitneyu", "numerical", "sample", True, 0.05, mannwhitneyu, mannwhitneyu_sorted),
        _spec("ttest", "numerical", "sample", True, 0.05, ttest_ind, ttest_ind_sorted),
        _spec("wasserstein", "numerical", "sample", False, 0.1, wasserstein_distance, wasserstein_distance_sorted),
        _spec(
            "wasserstein_normalized", "numerical", "sample", False, 0.1,
            wasserstein_normalized, wasserstein_normalized_sorted,
        ),
        _spec("energy_distance", "numerical", "sample", False, 0.1, energy_distance, energy_distance_sorted),
        _spec("chisquare", "categorical", "counts", True, 0.05, chisquare_2samp),
        _spec("fisher_exact", "binary", "counts", True, 0.05, fisher_exact),
        _spec("ztest", "binary", "counts", True, 0.05, ztest_proportions),
        _spec("psi", "any", "counts", False, 0.1, psi),
        _spec("kl_div", "any", "counts", False, 0.1, kl_divergence),
        _spec("jensenshannon", "any", "counts", False, 0.1, jensenshannon),
        _spec("hellinger", "any", "counts", False, 0.1, hellinger),
        _spec("tvd", "any", "counts", False, 0.1, tvd),
        _spec("mmd", "numerical", "points", True, 0.05, mmd),
    ]
)


def get_test(name: str) -> TestSpec:
    """Look up a registered test by name.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.

    Examples
    --------
    >>> from cudrift.stats import get_test
    >>> get_test("psi").default_threshold
    0.1
    """
    try:
        return TESTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Invalid value for test: {name!r}; expected one of {', '.join(sorted(TESTS))}.") from None
