"""Benchmark data shared by the pytest-benchmark suite and ``evidently_baseline.py``.

Pure NumPy on purpose: ``evidently_baseline.py`` imports this module from a
separate interpreter (its own venv with pandas<3), so both sides build the
very same windows from the same seed. ``fingerprint`` lets the suite check
that they did.

Windows: ``n_rows`` x ``n_cols`` float32, standard normal. The current window
comes from a fresh ``default_rng(seed + 1)``; its first ``n_cols // 2``
columns are shifted by ``shift`` (in units of the standard deviation, 1).
Arrays are (n_rows, n_cols) in Fortran order: each column is contiguous, as in
a columnar table (Arrow, Parquet, a pandas float block), so per-column work
(``a[:, j]``) reads contiguous memory for every contender.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

DEFAULT_ROWS = 1_000_000
DEFAULT_COLS = 20
DEFAULT_SEED = 20240611
SHIFT = 0.1


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    value = int(float(raw))  # accepts 1e6
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


def bench_rows() -> int:
    return env_int("CUDRIFT_BENCH_ROWS", DEFAULT_ROWS)


def bench_cols() -> int:
    return env_int("CUDRIFT_BENCH_COLS", DEFAULT_COLS)


def bench_seed() -> int:
    return env_int("CUDRIFT_BENCH_SEED", DEFAULT_SEED)


def column_names(n_cols: int) -> list[str]:
    return [f"f{j:03d}" for j in range(n_cols)]


def shifted_columns(n_cols: int) -> list[str]:
    return column_names(n_cols)[: n_cols // 2]


def make_windows(n_rows: int, n_cols: int, seed: int = DEFAULT_SEED, shift: float = SHIFT):
    """(reference, current) float32 arrays of shape (n_rows, n_cols), Fortran order."""
    ref = np.random.default_rng(seed).standard_normal((n_cols, n_rows), dtype=np.float32).T
    cur = np.random.default_rng(seed + 1).standard_normal((n_cols, n_rows), dtype=np.float32).T
    cur[:, : n_cols // 2] += np.float32(shift)
    return ref, cur


def fingerprint(a: np.ndarray) -> str:
    """Short SHA-256 of the array's bytes in column order (same data ⇔ same string)."""
    return hashlib.sha256(np.asfortranarray(a).tobytes(order="F")).hexdigest()[:16]
