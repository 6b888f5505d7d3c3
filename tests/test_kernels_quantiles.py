"""Rank-spaced points and runs of a sorted column against ``QuantileSketch``'s level-0 summary.

The GPU path (kernels for the O(m) work, ``cudrift.kernels._host`` for the
O(k) decisions) must build the very summary ``_summarize_sorted`` builds:
same values, same counts, same bytes.

Runs in Numba's CUDA simulator by default: ``NUMBA_ENABLE_CUDASIM`` is set to 1
before Numba is imported unless the environment already says otherwise (a
real GPU run sets ``NUMBA_ENABLE_CUDASIM=0``).
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

from conftest_kernels import check_quantiles, device_summary, run_run_ends, skip_unless_usable  # noqa: E402

skip_unless_usable()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, k", [(1, 8), (9, 8), (10, 8), (257, 16), (300, 7)])
def test_continuous(dtype, m, k):
    rng = np.random.default_rng(31)
    check_quantiles(np.sort(rng.normal(size=m)).astype(dtype), k, threads=32)


@pytest.mark.parametrize(
    "distinct, k",
    [
        (1, 8),  # one value repeated: the points are exact, one of them kept
        (5, 8),  # every value is among the points: exact without counting runs
        (9, 8),
        (12, 8),  # more than k distinct points: the pruned summary
        (40, 8),
    ],
)
def test_ties_and_low_cardinality(distinct, k):
    rng = np.random.default_rng(32)
    x = np.sort(rng.integers(0, distinct, size=200).astype(np.float64))
    check_quantiles(x, k, threads=32)


def test_heavy_run_makes_points_exact():
    # Points land on distinct values with nothing between them: exact without a run count.
    x = np.repeat([1.0, 2.0, 3.0], [90, 5, 90])
    check_quantiles(x, 4, threads=32)


def test_repeated_points_but_too_many_runs():
    # Positions 0, 50, 100, 150, 199 hold 0, 0, 1, 10, 10: three points, not
    # exact; the run count (8 > k + 1) keeps the pruned summary.
    x = np.concatenate((np.zeros(100), np.arange(1.0, 7.0), np.full(94, 10.0)))
    values, _, _ = device_summary(x, 4, threads=32)
    assert values.tolist() == [0.0, 1.0, 10.0]
    check_quantiles(x, 4, threads=32)


def test_rare_value_between_points_needs_the_run_count():
    # Positions 0, 50, 100, 150, 199 hold 0, 0, 1, 3, 3: the value 2 is missed,
    # the points are not exact, and the run count (4 <= k + 1) restores it.
    x = np.repeat([0.0, 1.0, 2.0, 3.0], [100, 1, 1, 98])
    values, lo, _ = device_summary(x, 4, threads=32)
    assert values.tolist() == [0.0, 1.0, 2.0, 3.0] and lo.tolist() == [100, 101, 102, 200]
    check_quantiles(x, 4, threads=32)


def test_signed_zeros_are_stored_as_positive():
    x = np.array([-1.0, -0.0, -0.0, 0.0, 0.0, -0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    check_quantiles(x, 4, threads=32)
    check_quantiles(x[:5], 8, threads=32)


def test_run_ends_beyond_capacity_are_counted():
    x = np.arange(100.0)
    ends, values, n_runs = run_run_ends(x, 10, threads=32)
    assert n_runs == 100
    assert np.all((ends >= 0) & (ends < 100))
    assert np.array_equal(values, x[ends])
    assert np.unique(ends).size == 10
