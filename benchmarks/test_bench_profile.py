"""Profiling throughput: ``cudrift.profile`` over a float32 window.

Default size 1e6 rows x 20 float32 columns (``CUDRIFT_BENCH_ROWS`` /
``CUDRIFT_BENCH_COLS`` to change it). Reported in ``extra_info``:
values per second and seconds per (1e6 rows x 20 columns); the issue's
target is < 0.5 s per 1e6 x 20. ``backend="auto"`` (set ``CUDRIFT_BACKEND=cpu``
or ``gpu`` to force one); the backend used is recorded. No timing is asserted.
"""

from __future__ import annotations

import math

import pytest
from _benchutil import resolved_backend, size_info

cudrift = pytest.importorskip("cudrift")

TARGET_S_PER_1M_X20 = 0.5


@pytest.fixture(scope="module")
def reference_profile(windows):
    ref, _, names = windows
    return cudrift.profile(ref, columns=names, backend="auto")


def _throughput(benchmark, bench_store, bench_size, name: str) -> None:
    best = bench_store.record(name, benchmark)
    if math.isnan(best):  # --benchmark-disable: correctness only
        return
    values = bench_size["n_rows"] * bench_size["n_cols"]
    per_1m_x20 = best * (1_000_000 * 20) / values
    benchmark.extra_info.update(size_info(bench_size))
    benchmark.extra_info["backend"] = resolved_backend()
    benchmark.extra_info["best_seconds"] = best
    benchmark.extra_info["values_per_second"] = values / best
    benchmark.extra_info["seconds_per_1M_rows_x_20_cols"] = per_1m_x20
    benchmark.extra_info["target_seconds_per_1M_rows_x_20_cols"] = TARGET_S_PER_1M_X20
    bench_store.figure(f"{name} values/s", f"{values / best:,.0f}")
    bench_store.figure(
        f"{name} s per 1e6x20", f"{per_1m_x20:.4f} s (target < {TARGET_S_PER_1M_X20} s)"
    )


def test_profile_reference(benchmark, windows, bench_size, bench_store):
    """Profile of the reference window (edges are chosen: quantile pass + counting pass)."""
    ref, _, names = windows
    prof = benchmark.pedantic(
        cudrift.profile, args=(ref,), kwargs={"columns": names, "backend": "auto"},
        rounds=bench_size["rounds"], iterations=1, warmup_rounds=0,
    )
    assert prof.n_rows == bench_size["n_rows"]
    assert len(prof.columns) == bench_size["n_cols"]
    _throughput(benchmark, bench_store, bench_size, "profile(reference)")


def test_profile_current_like_reference(benchmark, windows, bench_size, bench_store, reference_profile):
    """Profile of the current window on the reference's edges (``like=reference``): one pass."""
    _, cur, names = windows
    prof = benchmark.pedantic(
        cudrift.profile, args=(cur,),
        kwargs={"columns": names, "like": reference_profile, "backend": "auto"},
        rounds=bench_size["rounds"], iterations=1, warmup_rounds=0,
    )
    assert prof.n_rows == bench_size["n_rows"]
    _throughput(benchmark, bench_store, bench_size, "profile(current, like=ref)")
