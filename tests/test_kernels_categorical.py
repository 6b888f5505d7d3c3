"""The categorical counting kernel against ``np.bincount`` and ``count_categories``.

Runs in Numba's CUDA simulator by default: ``NUMBA_ENABLE_CUDASIM`` is set to 1
before Numba is imported unless the environment already says otherwise (a
real GPU run sets ``NUMBA_ENABLE_CUDASIM=0``).
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

from conftest_kernels import check_categorical, run_categorical, skip_unless_usable  # noqa: E402

from cudrift.kernels import _launch  # noqa: E402
from cudrift.kernels.categorical import categorical_shared_bytes  # noqa: E402

skip_unless_usable()


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
@pytest.mark.parametrize("privatize", [True, False])
def test_codes_with_nulls_and_invalid(dtype, privatize):
    rng = np.random.default_rng(21)
    n_categories = [5, 1, 12]
    codes = np.stack([rng.integers(-1, k, size=77) for k in n_categories], axis=1).astype(dtype)
    codes[3, 0] = 5  # one past the dictionary
    codes[4, 2] = -7  # negative but not the null code
    check_categorical(codes, n_categories, threads=32, row_blocks=2, privatize=privatize)


def test_column_major_and_odd_block_size():
    rng = np.random.default_rng(22)
    codes = np.asfortranarray(rng.integers(-1, 3, size=(101, 2)).astype(np.int16))
    check_categorical(codes, [3, 3], threads=48, row_blocks=3)


def test_empty_chunk_and_all_null_column():
    check_categorical(np.zeros((0, 2), dtype=np.int32), [4, 2], threads=32, row_blocks=1)
    codes = np.full((40, 2), -1, dtype=np.int32)
    codes[:, 1] = 0
    counts, other = run_categorical(codes, [3, 2], threads=32, row_blocks=2)
    assert counts.tolist() == [[0, 0, 0], [40, 0, 0]]
    assert other.tolist() == [[40, 0], [0, 0]]


def test_large_dictionary_uses_global_atomics():
    # 20000 int32 counters exceed the 48 KB of shared memory a block gets by default.
    assert categorical_shared_bytes(20000, 32, True) > _launch.shared_limit()
    rng = np.random.default_rng(23)
    codes = rng.integers(-1, 20000, size=(50, 1)).astype(np.int32)
    check_categorical(codes, [20000], threads=32, row_blocks=2)
