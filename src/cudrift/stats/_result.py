"""Result objects returned by every statistic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TestResult:
    """Outcome of a two-sample test or distance.

    Attributes
    ----------
    statistic
        The test statistic or distance.
    pvalue
        p-value, or ``None`` for pure distances (PSI, Wasserstein, ...).
    method
        Name of the test as accepted by :func:`cudrift.stats.get_test`
        (for example ``"ks"``, ``"wasserstein_normalized"``).
    n_reference, n_current
        Sample sizes actually used (non-null, finite values).
    statistic_error
        Bound on ``|statistic - exact statistic|`` when computed from
        sketches; ``0.0`` when exact.
    details
        Extra scalars specific to a test (degrees of freedom, p-value method,
        whether the value is a distance or a divergence, ...).
    """

    __test__ = False  # keep pytest from collecting this class

    statistic: float
    pvalue: float | None
    method: str
    n_reference: int
    n_current: int
    statistic_error: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "method": self.method,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "statistic_error": self.statistic_error,
            "details": dict(self.details),
        }
