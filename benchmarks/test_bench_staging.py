"""Host side of the GPU path's staging: a C-ordered host window's columns copied into a pinned-size buffer.

No GPU needed: this is the host copy that ``cudrift.backends._gpu._stage``
makes before each transfer, for one group of columns of a C-ordered float32
matrix (``CUDRIFT_BENCH_STAGE_ROWS`` rows, default 2e6, x 64 columns), on
as many staging threads as the backend uses. Contenders, in this order:

- column by column (``_gpu_host.stage_copy`` of each strided column, piece
  by piece: how every host column was staged before, and still is for
  columns that are not evenly spaced columns of one array);
- a block of rows at a time (``_gpu_host.row_block`` + ``stage_block``, tile
  by tile), reported as its speedup over the first.

Each group size is a parametrization: 6 columns (a 256 MiB group at 1e7
rows, what gpu_check's 64-column host window is staged in) and all 64. The
staged buffers are checked equal to the columns; no timing is asserted.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

gh = pytest.importorskip("cudrift.backends._gpu_host")

ROWS = int(os.environ.get("CUDRIFT_BENCH_STAGE_ROWS", 2_000_000))
COLS = 64
PIECE_BYTES = 32 << 20  # cudrift.backends._gpu.PIECE_BYTES (that module needs CuPy)
THREADS = max(2, min(8, (os.cpu_count() or 2) // 2))  # the backend's staging threads


@pytest.fixture(scope="module")
def staging():
    x = np.random.default_rng(5).standard_normal((ROWS, COLS), dtype=np.float32)
    with ThreadPoolExecutor(THREADS) as pool:
        yield x, np.empty(PIECE_BYTES // 4, dtype=np.float32), pool


def per_column(x, k, buf, pool):
    for j in range(k):
        for a, b in gh.plan_pieces(x.shape[0], 4, PIECE_BYTES):
            gh.stage_copy(buf[: b - a], x[a:b, j], pool, parts=THREADS)


def row_blocks(x, k, buf, pool):
    block = gh.row_block([x[:, j] for j in range(k)])
    for a, b in gh.plan_pieces(x.shape[0], 4 * k, PIECE_BYTES):
        gh.stage_block(buf[: k * (b - a)].reshape(k, b - a), block[a:b], pool, parts=THREADS)


@pytest.mark.parametrize("k", [6, 64])
def test_stage_column_by_column(benchmark, staging, bench_store, k):
    x, buf, pool = staging
    benchmark.pedantic(per_column, args=(x, k, buf, pool), rounds=3, iterations=1, warmup_rounds=1)
    a = (ROWS - 1) // (PIECE_BYTES // 4) * (PIECE_BYTES // 4)  # the last column's last piece
    assert np.array_equal(buf[: ROWS - a], x[a:, k - 1])
    best = bench_store.record(f"stage {k} C-ordered columns, column by column", benchmark)
    if not math.isnan(best):
        benchmark.extra_info["gb_per_s"] = ROWS * k * 4 / best / 1e9


@pytest.mark.parametrize("k", [6, 64])
def test_stage_row_blocks(benchmark, staging, bench_store, k):
    x, buf, pool = staging
    benchmark.pedantic(row_blocks, args=(x, k, buf, pool), rounds=3, iterations=1, warmup_rounds=1)
    rows = PIECE_BYTES // (4 * k)
    a = (ROWS - 1) // rows * rows  # the last piece
    assert np.array_equal(buf[: k * (ROWS - a)].reshape(k, ROWS - a), x[a:, :k].T)
    best = bench_store.record(f"stage {k} C-ordered columns, row blocks", benchmark)
    if math.isnan(best):
        return
    base = bench_store.seconds(f"stage {k} C-ordered columns, column by column", lambda: per_column(x, k, buf, pool),
                               rounds=2)
    benchmark.extra_info["gb_per_s"] = ROWS * k * 4 / best / 1e9
    benchmark.extra_info["speedup_vs_column_by_column"] = bench_store.ratio(
        f"staging {k} C-ordered columns: column by column / row blocks", base / best)


def whole_matrix(x, buf, pool, lines):
    """Every column of ``x`` staged group by group, grouped as the backend groups them with a budget of 6
    columns (``GROUP_BYTES`` at 1e7 rows), with or without :func:`_gpu_host.row_neighbours`."""
    n, k = x.shape
    units = gh.plan_units([n] * k, n)
    hint = gh.row_neighbours([x[:, j] for j in range(k)]) if lines else None
    for group in gh.group_units(units, [n] * k, [x.dtype] * k, k * n, 6 * n * x.dtype.itemsize, hint):
        j0, j1 = group[0][0], group[-1][0] + 1
        row_blocks(x[:, j0:j1], j1 - j0, buf, pool)


@pytest.mark.parametrize("lines", [False, True], ids=["budget", "lines"])
def test_stage_whole_matrix_grouped(benchmark, staging, bench_store, lines):
    """All 64 columns, in the groups the backend makes: by the byte budget alone (each group reading the
    cache lines of its 6 columns out of 16 for every row: each line read several times) or by whole lines."""
    x, buf, pool = staging
    benchmark.pedantic(whole_matrix, args=(x, buf, pool, lines), rounds=3, iterations=1, warmup_rounds=1)
    label = f"stage all {COLS} C-ordered columns, grouped by {'lines' if lines else 'budget'}"
    best = bench_store.record(label, benchmark)
    if math.isnan(best):
        return
    benchmark.extra_info["gb_per_s"] = ROWS * COLS * 4 / best / 1e9
    if lines:
        base = bench_store.seconds(f"stage all {COLS} C-ordered columns, grouped by budget",
                                   lambda: whole_matrix(x, buf, pool, False), rounds=2)
        benchmark.extra_info["speedup_vs_budget"] = bench_store.ratio(
            f"staging all {COLS} C-ordered columns: grouped by budget / by lines", base / best)
