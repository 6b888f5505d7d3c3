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
from numba import cuda  # noqa: E402

from cudrift.sketches.quantiles import _summarize_sorted  # noqa: E402

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


class _SimOps:
    """:class:`cudrift.backends._gpu_summary.DeviceOps` over Numba device arrays (simulator or GPU)."""

    stream = 0

    def zeros(self, n, dtype):
        return cuda.to_device(np.zeros(n, dtype=dtype))

    def arg(self, a):
        return a

    def to_host(self, a):
        return a.copy_to_host()

    def from_host(self, a):
        return cuda.to_device(np.ascontiguousarray(a))


def _columns_in_one_buffer(rng, dtype):
    """Sorted columns of assorted sizes and cardinalities laid out in one buffer with gaps between them."""
    cols = [
        np.sort(rng.normal(size=257)),            # not a multiple of the block size
        np.sort(rng.integers(0, 5, size=120)).astype(np.float64),   # few distinct: exact summary from runs
        np.sort(rng.integers(0, 40, size=300)).astype(np.float64),  # repeated points, too many runs
        np.array([3.5]),                          # one value
        np.sort(rng.normal(size=9)),              # m <= k + 1: exact, summarized one by one
        np.sort(rng.exponential(size=1000)),
        np.array([-0.0, 0.0] * 20 + [1.0] * 5),   # signed zeros
    ]
    cols = [c.astype(dtype) for c in cols]
    gap = np.full(3, np.nan, dtype=dtype)  # never read: a stray read would break the summaries
    parts, starts, at = [], [], 0
    for c in cols:
        parts += [gap, c]
        starts.append(at + gap.size)
        at += gap.size + c.size
    return np.concatenate(parts), np.array(starts), np.array([c.size for c in cols]), cols


@pytest.mark.parametrize("dtype, grid_y", [(np.float64, None), (np.float32, None), (np.float64, 2)])
def test_points_of_many_columns_equal_the_one_column_kernel(dtype, grid_y, monkeypatch):
    from cudrift.kernels import _launch
    from cudrift.kernels.quantiles import launch_quantile_points, launch_quantile_points_many

    if grid_y is not None:  # columns split over several launches, as past CUDA's 65,535 grid rows
        monkeypatch.setattr(_launch, "MAX_GRID_Y", grid_y)
    rng = np.random.default_rng(33)
    buf, starts, lengths, cols = _columns_in_one_buffer(rng, dtype)
    k = 8
    n = starts.size
    values = cuda.to_device(np.full(n * (k + 1), -7.0))
    lt = cuda.to_device(np.full(n * (k + 1), -7, dtype=np.int64))
    le = cuda.to_device(np.full(n * (k + 1), -7, dtype=np.int64))
    launch_quantile_points_many(cuda.to_device(buf), cuda.to_device(starts.astype(np.int64)),
                                cuda.to_device(lengths.astype(np.int64)), k, values, lt, le, threads=32)
    got = [a.copy_to_host().reshape(n, k + 1) for a in (values, lt, le)]
    for c, x in enumerate(cols):
        m = x.size
        pos = np.array([(t * m) // k for t in range(k)] + [m - 1])
        v = x[pos]
        assert np.array_equal(got[0][c], v.astype(np.float64))
        assert np.array_equal(got[1][c], np.searchsorted(x, v, side="left"))
        assert np.array_equal(got[2][c], np.searchsorted(x, v, side="right"))
        one = [cuda.to_device(np.zeros(k + 1, dtype=d)) for d in (np.float64, np.int64, np.int64)]
        launch_quantile_points(cuda.to_device(x), k, *one, threads=32)
        for g, o in zip(got, one):
            assert np.array_equal(g[c], o.copy_to_host())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_summaries_of_many_columns_equal_the_cpu_summaries(dtype):
    from cudrift.backends._gpu_summary import sorted_summaries

    rng = np.random.default_rng(34)
    buf, starts, lengths, cols = _columns_in_one_buffer(rng, dtype)
    ours = sorted_summaries(cuda.to_device(buf), starts, lengths, 16, _SimOps(), threads=32)
    assert len(ours) == len(cols)
    for x, got in zip(cols, ours):
        for a, b in zip(got, _summarize_sorted(x, 16)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (x[:5], a, b)
