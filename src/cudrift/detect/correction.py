"""Multiple-testing corrections across the columns of one comparison."""

from __future__ import annotations

import numpy as np

CORRECTIONS = (None, "bonferroni", "bh")


def adjust_pvalues(pvalues: np.ndarray | list[float], method: str | None) -> np.ndarray:
    """Adjusted p-values (capped at 1) for ``method`` in ``None | "bonferroni" | "bh"``.

    ``"bh"`` is Benjamini–Hochberg step-up (false discovery rate), the same
    numbers as ``scipy.stats.false_discovery_control(p, method="bh")``.

    Examples
    --------
    >>> adjust_pvalues([0.01, 0.04, 0.03], "bonferroni").round(2).tolist()
    [0.03, 0.12, 0.09]
    """
    if method not in CORRECTIONS:
        raise ValueError(f"Invalid value for correction: {method!r} (expected one of {CORRECTIONS})")
    p = np.asarray(pvalues, dtype=np.float64)
    if p.size == 0 or method is None:
        return p.copy()
    if np.any((p < 0) | (p > 1) | np.isnan(p)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[(p < 0) | (p > 1) | np.isnan(p)][:5].tolist()}")
    m = p.size
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    # step-up: each adjusted value is the minimum over the larger p-values
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(ranked, 1.0)
    return out
