"""Shared fixtures of the cudrift benchmark suite (pytest-benchmark).

Run (from the repository root)::

    PYTHONPATH=src python -m pytest benchmarks -p no:cacheprovider --benchmark-only

Sizes come from environment variables (see ``benchmarks/README.md``):
``CUDRIFT_BENCH_ROWS`` (default 1e6), ``CUDRIFT_BENCH_COLS`` (20),
``CUDRIFT_BENCH_ROUNDS`` (3), ``CUDRIFT_BENCH_SEED``. Ratios between
contenders go into each benchmark's ``extra_info`` and into a summary printed
at the end of the run. Nothing here asserts on a timing.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchdata  # noqa: E402
from _benchutil import BenchStore, cpu_model, source_digest  # noqa: E402

_STORE = BenchStore()


@pytest.fixture(scope="session")
def bench_store() -> BenchStore:
    return _STORE


@pytest.fixture(scope="session")
def bench_size() -> dict:
    return {
        "n_rows": _benchdata.bench_rows(),
        "n_cols": _benchdata.bench_cols(),
        "seed": _benchdata.bench_seed(),
        "rounds": _benchdata.env_int("CUDRIFT_BENCH_ROUNDS", 3),
    }


@pytest.fixture(scope="session")
def windows(bench_size):
    """(reference, current, column names) at the configured size."""
    ref, cur = _benchdata.make_windows(bench_size["n_rows"], bench_size["n_cols"], bench_size["seed"])
    return ref, cur, _benchdata.column_names(bench_size["n_cols"])


def pytest_benchmark_update_machine_info(config, machine_info):
    import scipy

    machine_info["cpu_model"] = cpu_model()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["numpy"] = np.__version__
    machine_info["scipy"] = scipy.__version__
    try:
        import cudrift

        machine_info["cudrift"] = cudrift.__version__
        machine_info["cudrift_source_digest"] = source_digest()
    except Exception as exc:  # the suite still reports the baselines
        machine_info["cudrift"] = f"not importable: {exc}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    s = _STORE
    if not (s.seconds_by_name or s.ratios or s.figures):
        return
    import scipy

    tr = terminalreporter
    tr.section("cudrift benchmark summary")
    tr.write_line(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} | {cpu_model()} x{os.cpu_count()} | "
        f"Python {platform.python_version()} numpy {np.__version__} scipy {scipy.__version__} | "
        f"rows={_benchdata.bench_rows():,} cols={_benchdata.bench_cols()} | "
        f"load average at the end {os.getloadavg()[0]:.2f} | cudrift sources {source_digest()}"
    )
    if s.seconds_by_name:
        tr.write_line("best seconds:")
        for name, sec in s.seconds_by_name.items():
            tr.write_line(f"  {name:<40s} {sec:10.4f} s")
    for label, value in s.figures:
        tr.write_line(f"  {label:<40s} {value}")
    if s.ratios:
        if (_benchdata.bench_rows(), _benchdata.bench_cols()) != (_benchdata.DEFAULT_ROWS, _benchdata.DEFAULT_COLS):
            tr.write_line("note: the targets are stated for 1,000,000 x 20; at other sizes they are only indicative")
        tr.write_line("ratios (higher = cudrift faster):")
        for label, value, note in s.ratios:
            tr.write_line(f"  {label:<60s} {value:10.2f}x" + (f"  ({note})" if note else ""))
    for note in s.notes:
        tr.write_line(f"  note: {note}")
