"""Test selection per column: the ``policy="auto"`` rule and user overrides.

The auto rule is the one users of Evidently know (its DataDriftPreset
defaults), stated on our counts:

* ``n_reference`` is the number of non-null (finite) reference values of the
  column; ``n_unique`` is the number of distinct values over reference and
  current together.
* ``n_reference <= 1000``:

  - numerical with ``n_unique > 5`` → two-sample Kolmogorov–Smirnov (``"ks"``), p < 0.05;
  - binary (``n_unique <= 2``) → two-proportion Z-test (``"ztest"``), p < 0.05;
  - otherwise (categorical, or numerical with ≤ 5 distinct values) → chi-square
    (``"chisquare"``), p < 0.05.

* ``n_reference > 1000``:

  - numerical with ``n_unique > 5`` → Wasserstein-1 distance divided by the
    reference standard deviation (``"wasserstein_normalized"``), drift when ≥ 0.1;
  - otherwise → Jensen–Shannon distance (``"jensenshannon"``), drift when ≥ 0.1.

Numerical columns with few distinct values are tested on their histogram,
whose edges put each distinct reference value in a bin of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from cudrift.sketches.config import CATEGORICAL, NUMERICAL

SMALL_REFERENCE = 1000
FEW_DISTINCT = 5


def auto_test(kind: str, n_reference: int, n_unique: int) -> str:
    """The test ``policy="auto"`` picks for a column.

    Examples
    --------
    >>> auto_test("numerical", 500, 40), auto_test("numerical", 50_000, 40)
    ('ks', 'wasserstein_normalized')
    >>> auto_test("categorical", 500, 2), auto_test("categorical", 500, 7), auto_test("categorical", 5000, 7)
    ('ztest', 'chisquare', 'jensenshannon')
    """
    if kind not in (NUMERICAL, CATEGORICAL):
        raise ValueError(f"Invalid value for kind: {kind!r}")
    many = kind == NUMERICAL and n_unique > FEW_DISTINCT
    if n_reference <= SMALL_REFERENCE:
        if many:
            return "ks"
        if n_unique <= 2:
            return "ztest"
        return "chisquare"
    return "wasserstein_normalized" if many else "jensenshannon"


def normalize_policy(policy: str | Mapping[str, str] | None, valid: Mapping[str, object]) -> tuple[str | None, dict[str, str]]:
    """Split a policy into (test for every column or None for auto, per-column tests)."""
    if policy is None or policy == "auto":
        return None, {}
    if isinstance(policy, str):
        if policy not in valid:
            raise ValueError(f"Invalid value for policy: {policy!r} (expected 'auto', a dict, or one of {sorted(valid)})")
        return policy, {}
    if isinstance(policy, Mapping):
        out: dict[str, str] = {}
        for col, test in policy.items():
            if test != "auto" and test not in valid:
                raise ValueError(f"Invalid test {test!r} for column {col!r} (expected 'auto' or one of {sorted(valid)})")
            if test != "auto":
                out[str(col)] = test
        return None, out
    raise TypeError(f"policy must be 'auto', a test name or a dict of column → test, got {type(policy).__name__}")
