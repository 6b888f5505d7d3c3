"""The tiled MMD kernels against the direct NumPy formula and ``cudrift.stats.mmd``.

Runs in Numba's CUDA simulator by default: ``NUMBA_ENABLE_CUDASIM`` is set to 1
before Numba is imported unless the environment already says otherwise (a
real GPU run sets ``NUMBA_ENABLE_CUDASIM=0``).
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

from conftest_kernels import check_mmd, mmd_inputs, run_mmd, skip_unless_usable  # noqa: E402

skip_unless_usable()


@pytest.mark.parametrize(
    "n, m, d, n_permutations",
    [
        (20, 12, 1, 5),  # one tile, padded
        (40, 30, 3, 9),  # three tiles, sizes not multiples of the tile
        (33, 31, 20, 3),  # two feature chunks
        (25, 20, 2, 40),  # more labelings than threads: each thread takes two
    ],
)
def test_against_direct_formula_and_cpu(n, m, d, n_permutations):
    rng = np.random.default_rng(51 + n)
    x = rng.normal(size=(n, d)) if d > 1 else rng.normal(size=n)
    y = rng.normal(0.4, 1.1, size=(m, d)) if d > 1 else rng.normal(0.4, 1.1, size=m)
    check_mmd(x, y, sigma=1.3, n_permutations=n_permutations, seed=7)


def test_duplicate_points_and_no_permutations():
    x = np.repeat(np.arange(5.0), 4)[:, None]
    y = np.repeat(np.arange(3.0), 5)[:, None]
    check_mmd(x, y, sigma=0.8, n_permutations=0, seed=0)


def test_swapping_samples_keeps_the_statistic():
    rng = np.random.default_rng(52)
    x, y = rng.normal(size=(30, 2)), rng.normal(1.0, size=(26, 2))
    zx, lx = mmd_inputs(x, y, 0, 0)
    zy, ly = mmd_inputs(y, x, 0, 0)
    a = run_mmd(zx, lx, 30, 1.0)[0]
    b = run_mmd(zy, ly, 26, 1.0)[0]
    assert abs(a - b) <= 1e-12 * abs(a)
