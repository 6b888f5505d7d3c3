"""The kernel checks at realistic sizes on a real CUDA GPU (marker ``gpu``).

Every kernel test module defaults ``NUMBA_ENABLE_CUDASIM`` to 1 so that it
runs anywhere; a GPU run sets ``NUMBA_ENABLE_CUDASIM=0`` before pytest
starts, which moves those modules onto the device and enables this one::

    NUMBA_ENABLE_CUDASIM=0 python -m pytest tests/test_kernels_*.py

Skipped (with the reason) in the simulator, without numba-cuda, or when no
GPU answers.
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

from conftest_kernels import (  # noqa: E402
    SIMULATOR,
    check_categorical,
    check_mmd,
    check_profile,
    check_quantiles,
    check_rank,
)
from numba import cuda  # noqa: E402

from cudrift.sketches.histogram import equal_mass_edges, uniform_edges  # noqa: E402

pytestmark = pytest.mark.gpu

if SIMULATOR:
    pytest.skip(
        "kernels run in the CUDA simulator here; set NUMBA_ENABLE_CUDASIM=0 to run them on a GPU",
        allow_module_level=True,
    )
if not cuda.is_available():
    pytest.skip("no CUDA GPU answers (numba.cuda.is_available() is False)", allow_module_level=True)


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def _with_specials(x: np.ndarray, rng: np.random.Generator, share: float = 1e-3) -> np.ndarray:
    x = x.copy()
    for v in (np.nan, np.inf, -np.inf):
        x[rng.random(size=x.shape) < share] = v
    return x


@pytest.mark.parametrize("dtype, order", [(np.float32, "C"), (np.float64, "F")])
def test_profile_large_chunk(rng, dtype, order):
    x = np.asarray(_with_specials(rng.normal(size=(200_000, 6)), rng).astype(dtype), order=order)
    finite = np.sort(x[np.isfinite(x[:, 0]), 0].astype(np.float64))
    edges = [equal_mass_edges(finite, 64), uniform_edges(-3.0, 3.0, 100), None] * 2
    mask = rng.random(size=x.shape) < 0.01
    check_profile(x, edges, uniform=[0, 1, 0] * 2, null_mask=mask)
    check_profile(x, edges, uniform=[0, 1, 0] * 2, privatize=False)


def test_profile_many_edges_falls_back_to_global(rng):
    x = rng.uniform(size=(100_000, 2))
    check_profile(x, [uniform_edges(0.0, 1.0, 9_999), None], uniform=[1, 0])


def test_categorical_large(rng):
    sizes = [10, 1000, 20_000, 2]
    codes = np.stack([rng.integers(-1, k, size=500_000) for k in sizes], axis=1).astype(np.int32)
    check_categorical(codes, sizes)
    check_categorical(codes, sizes, privatize=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantiles_large(rng, dtype):
    check_quantiles(np.sort(rng.normal(size=1_000_000)).astype(dtype), 2048)
    check_quantiles(np.sort(rng.integers(0, 100, size=1_000_000)).astype(dtype), 2048)
    check_quantiles(np.sort(rng.integers(0, 3000, size=300_000)).astype(dtype), 2048)


def test_rank_large(rng):
    check_rank(rng.normal(size=200_000), rng.normal(0.01, size=150_000))
    a = rng.integers(0, 50, size=100_000).astype(np.float64)
    check_rank(a, rng.integers(0, 51, size=80_000).astype(np.float64))


def test_mmd_large(rng):
    x, y = rng.normal(size=(1500, 4)), rng.normal(0.05, size=(1200, 4))
    check_mmd(x, y, sigma=2.0, n_permutations=50, seed=3, direct=False)
