"""The GPU backend against the NumPy path on the same windows (pytest-benchmark; skipped without a GPU).

Same data as the other suites (``_benchdata.py``: ``CUDRIFT_BENCH_ROWS`` x
``CUDRIFT_BENCH_COLS`` float32, Fortran order). Each GPU benchmark times
the GPU path and records, next to it, the CPU path's best time on the same
data and the ratio (``extra_info`` and the summary printed at the end):

* ``profile(current, like=reference)`` from the host window (streamed through
  pinned buffers) and from the window already on the device;
* ``DriftDetector.compare`` (``policy="auto"`` and ``"ks"``, exact) from the
  host window and from the device window, the detector built once;
* MMD with 5,000 points per side and 100 permutations.

Results are checked against the CPU path (statistics within 1e-6 relative,
the same drifted columns); no timing is asserted. For the full set of
measurements on one command, see ``benchmarks/gpu_check.py``::

    NUMBA_ENABLE_CUDASIM=0 PYTHONPATH=src python -m pytest benchmarks/test_bench_gpu.py -p no:cacheprovider --benchmark-only
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _benchutil import size_info  # noqa: E402

cudrift = pytest.importorskip("cudrift")
from cudrift.backends import gpu_status  # noqa: E402

GPU_OK, GPU_REASON = gpu_status()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not GPU_OK, reason=f"GPU backend not usable: {GPU_REASON}")]

MMD_POINTS = 5_000
MMD_PERMUTATIONS = 100


@pytest.fixture(scope="module")
def cupy():
    import cupy

    from cudrift.backends import _gpu

    _gpu.warm_up()  # compilation is not what these benchmarks measure
    return cupy


@pytest.fixture(scope="module")
def device_windows(windows, cupy):
    ref, cur, names = windows
    return cupy.asarray(ref, order="F"), cupy.asarray(cur, order="F"), names


@pytest.fixture(scope="module")
def reference_profile(windows):
    ref, _, names = windows
    return cudrift.profile(ref, columns=names, backend="cpu")


@pytest.fixture(scope="module", params=["auto", "ks"])
def detectors(request, windows):
    ref, _, names = windows
    cpu = cudrift.DriftDetector(ref, policy=request.param, columns=names, backend="cpu")
    gpu = cudrift.DriftDetector(ref, policy=request.param, columns=names, backend="gpu")
    assert cpu.is_exact and gpu.is_exact
    return request.param, cpu, gpu


def _ratio(benchmark, bench_store, bench_size, gpu_name: str, cpu_name: str, cpu_fn) -> None:
    best = bench_store.record(gpu_name, benchmark)
    benchmark.extra_info.update(size_info(bench_size))
    benchmark.extra_info["backend"] = "gpu"
    if math.isnan(best):  # --benchmark-disable: correctness only
        return
    cpu_s = bench_store.seconds(cpu_name, cpu_fn, rounds=bench_size["rounds"])
    benchmark.extra_info["gpu_seconds"] = best
    benchmark.extra_info["cpu_seconds"] = cpu_s
    benchmark.extra_info["values_per_second"] = bench_size["n_rows"] * bench_size["n_cols"] / best
    benchmark.extra_info["ratio_cpu_over_gpu"] = bench_store.ratio(f"{cpu_name} / {gpu_name}", cpu_s / best)


def _same_columns(pc, pg) -> None:
    for n, a in pc.columns.items():
        b = pg.columns[n]
        assert (a.count, a.nan_count, a.histogram, a.sample) == (b.count, b.nan_count, b.histogram, b.sample), n
        assert b.moments.mean == pytest.approx(a.moments.mean, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("where", ["host", "device"])
def test_gpu_profile_like_reference(benchmark, windows, device_windows, bench_size, bench_store, reference_profile,
                                    where):
    _, cur, names = windows
    data = cur if where == "host" else device_windows[1]
    prof = benchmark.pedantic(cudrift.profile, args=(data,),
                              kwargs={"columns": names, "like": reference_profile, "backend": "gpu"},
                              rounds=bench_size["rounds"], iterations=1, warmup_rounds=1)
    cpu_prof = cudrift.profile(cur, columns=names, like=reference_profile, backend="cpu")
    _same_columns(cpu_prof, prof)
    _ratio(benchmark, bench_store, bench_size, f"gpu profile(current, like=ref) [{where} window]",
           "cpu profile(current, like=ref)",
           lambda: cudrift.profile(cur, columns=names, like=reference_profile, backend="cpu"))


@pytest.mark.parametrize("where", ["host", "device"])
def test_gpu_compare(benchmark, windows, device_windows, bench_size, bench_store, detectors, where):
    policy, cpu, gpu = detectors
    _, cur, names = windows
    data = cur if where == "host" else device_windows[1]
    report = benchmark.pedantic(gpu.compare, args=(data,), kwargs={"columns": names},
                                rounds=bench_size["rounds"], iterations=1, warmup_rounds=1)
    expected = cpu.compare(cur, columns=names)
    assert report.exact and report.metadata["backend"] == "gpu"
    assert [f.drifted for f in report.features] == [f.drifted for f in expected.features]
    for a, b in zip(expected.features, report.features):
        assert b.statistic == pytest.approx(a.statistic, rel=1e-6), a.column
    benchmark.extra_info["policy"] = policy
    _ratio(benchmark, bench_store, bench_size, f"gpu compare(policy={policy}) [{where} window]",
           f"cpu compare(policy={policy})", lambda: cpu.compare(cur, columns=names))


def test_gpu_mmd(benchmark, bench_size, bench_store, cupy):
    from cudrift.backends import _gpu
    from cudrift.stats import mmd

    rng = np.random.default_rng(bench_size["seed"])
    x, y = rng.normal(size=MMD_POINTS), rng.normal(0.05, size=MMD_POINTS)
    res = benchmark.pedantic(_gpu.mmd, args=(x, y), kwargs={"n_permutations": MMD_PERMUTATIONS},
                             rounds=bench_size["rounds"], iterations=1, warmup_rounds=1)
    expected = mmd(x, y, n_permutations=MMD_PERMUTATIONS)
    assert res.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-12)
    assert res.pvalue == expected.pvalue
    benchmark.extra_info["points_per_side"] = MMD_POINTS
    benchmark.extra_info["permutations"] = MMD_PERMUTATIONS
    _ratio(benchmark, bench_store, bench_size, "gpu mmd", "cpu mmd",
           lambda: mmd(x, y, n_permutations=MMD_PERMUTATIONS))
