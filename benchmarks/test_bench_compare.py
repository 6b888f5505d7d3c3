"""``DriftDetector.compare`` against a plain SciPy loop and against Evidently 0.7.

Default size 1e6 rows x 20 float32 columns, half of them shifted by 0.1 sd in
the current window (``_benchdata.py``). The reference detector is built ONCE
outside the timed part; the timed part is ``detector.compare(current)``.

Contenders (in this order, so later tests reuse earlier timings for ratios):

* SciPy KS loop: ``scipy.stats.ks_2samp(ref[:, j], cur[:, j])`` per column.
* SciPy Wasserstein loop: ``wasserstein_distance(ref[:, j], cur[:, j]) / std(ref[:, j])``
  per column, the statistic ``policy="auto"`` picks at this size (as Evidently does).
* cudrift ``compare`` with ``policy="auto"`` (exact statistics) and with ``policy="ks"``.
* cudrift end to end: ``DriftDetector(reference).compare(current)``.
* Evidently 0.7 ``Report([DataDriftPreset()]).run(current, reference)``, run by
  ``evidently_baseline.py`` in the interpreter named by ``$CUDRIFT_EVIDENTLY_PYTHON``
  (skipped when it is not set).

Ratios (contender seconds / cudrift seconds, best of the rounds) go into
``benchmark.extra_info`` and the summary printed at the end. The issue's
targets (>= 4x over the SciPy KS loop, >= 100x over Evidently) are recorded
next to them, never asserted. Correctness is checked: cudrift's KS and
Wasserstein statistics must match SciPy's on the same data.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from _benchdata import fingerprint
from _benchutil import resolved_backend, size_info

cudrift = pytest.importorskip("cudrift")

HERE = Path(__file__).resolve().parent
TARGET_VS_SCIPY = 4.0
TARGET_VS_EVIDENTLY = 100.0

SCIPY_KS = "scipy ks_2samp loop"
SCIPY_WD = "scipy wasserstein loop"
CUDRIFT_AUTO = "cudrift compare(policy=auto)"
CUDRIFT_KS = "cudrift compare(policy=ks)"
CUDRIFT_E2E = "cudrift DriftDetector+compare(auto)"
EVIDENTLY = "evidently DataDriftPreset"

# Return values of the timed callables (kept for the correctness checks).
_OUTPUTS: dict[str, object] = {}


# ------------------------------------------------------------------ contenders
def scipy_ks_loop(ref: np.ndarray, cur: np.ndarray) -> list[tuple[float, float]]:
    out = []
    for j in range(ref.shape[1]):
        r = scipy.stats.ks_2samp(ref[:, j], cur[:, j])
        out.append((float(r.statistic), float(r.pvalue)))
    return out


def scipy_wasserstein_loop(ref: np.ndarray, cur: np.ndarray) -> list[float]:
    out = []
    for j in range(ref.shape[1]):
        r = ref[:, j]
        out.append(float(scipy.stats.wasserstein_distance(r, cur[:, j]) / np.std(r, dtype=np.float64)))
    return out


def _run_rounds(benchmark, fn, bench_size, *args, **kwargs):
    return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=bench_size["rounds"],
                              iterations=1, warmup_rounds=0)


def _base_info(benchmark, bench_size, name: str, best: float) -> None:
    benchmark.extra_info.update(size_info(bench_size))
    benchmark.extra_info["contender"] = name
    benchmark.extra_info["best_seconds"] = best
    benchmark.extra_info["values_per_second"] = bench_size["n_rows"] * bench_size["n_cols"] / best


def _scipy_ks_outputs(windows):
    if SCIPY_KS not in _OUTPUTS:
        ref, cur, _ = windows
        _OUTPUTS[SCIPY_KS] = scipy_ks_loop(ref, cur)
    return _OUTPUTS[SCIPY_KS]


def _scipy_wd_outputs(windows):
    if SCIPY_WD not in _OUTPUTS:
        ref, cur, _ = windows
        _OUTPUTS[SCIPY_WD] = scipy_wasserstein_loop(ref, cur)
    return _OUTPUTS[SCIPY_WD]


def _baseline_seconds(bench_store, bench_size, windows, name: str) -> float:
    """Best seconds of a SciPy loop: its own benchmark's, or timed here when it was deselected."""
    ref, cur, _ = windows
    loop = {SCIPY_KS: scipy_ks_loop, SCIPY_WD: scipy_wasserstein_loop}[name]
    return bench_store.seconds(name, lambda: _OUTPUTS.__setitem__(name, loop(ref, cur)),
                               rounds=bench_size["rounds"])


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def detector_auto(windows):
    ref, _, names = windows
    det = cudrift.DriftDetector(ref, policy="auto", columns=names, backend="auto")
    assert det.is_exact, "policy='auto' benchmark expects exact statistics (sorted reference kept)"
    return det


@pytest.fixture(scope="module")
def detector_ks(windows):
    ref, _, names = windows
    det = cudrift.DriftDetector(ref, policy="ks", columns=names, backend="auto")
    assert det.is_exact
    return det


# ---------------------------------------------------------------------- SciPy
def test_scipy_ks_loop(benchmark, windows, bench_size, bench_store):
    ref, cur, _ = windows
    _OUTPUTS[SCIPY_KS] = _run_rounds(benchmark, scipy_ks_loop, bench_size, ref, cur)
    _base_info(benchmark, bench_size, SCIPY_KS, bench_store.record(SCIPY_KS, benchmark))
    benchmark.extra_info["scipy"] = scipy.__version__


def test_scipy_wasserstein_loop(benchmark, windows, bench_size, bench_store):
    ref, cur, _ = windows
    _OUTPUTS[SCIPY_WD] = _run_rounds(benchmark, scipy_wasserstein_loop, bench_size, ref, cur)
    _base_info(benchmark, bench_size, SCIPY_WD, bench_store.record(SCIPY_WD, benchmark))
    benchmark.extra_info["scipy"] = scipy.__version__


# -------------------------------------------------------------------- cudrift
def _report_info(benchmark, report) -> None:
    benchmark.extra_info["backend"] = report.metadata.get("backend", resolved_backend())
    benchmark.extra_info["tests"] = sorted({f.test for f in report.features if f.test})
    benchmark.extra_info["exact"] = bool(report.exact)
    benchmark.extra_info["n_drifted"] = int(report.n_drifted)
    benchmark.extra_info["n_tested"] = int(report.n_tested)
    benchmark.extra_info["dataset_drift"] = bool(report.dataset_drift)


def test_compare_auto(benchmark, windows, bench_size, bench_store, detector_auto):
    """``compare`` with ``policy="auto"``: normalised Wasserstein at this size, exact."""
    ref, cur, names = windows
    report = _run_rounds(benchmark, detector_auto.compare, bench_size, cur, columns=names)
    best = bench_store.record(CUDRIFT_AUTO, benchmark)
    _base_info(benchmark, bench_size, CUDRIFT_AUTO, best)
    _report_info(benchmark, report)
    assert report.n_tested == bench_size["n_cols"]
    assert report.exact

    # Same statistic as SciPy where the auto rule picked the normalised Wasserstein distance.
    wd = _scipy_wd_outputs(windows)
    diffs = [abs(f.statistic - wd[names.index(f.column)])
             for f in report.features if f.test == "wasserstein_normalized"]
    if diffs:
        benchmark.extra_info["max_abs_diff_vs_scipy_wasserstein"] = max(diffs)
        assert max(diffs) < 1e-4, f"cudrift's normalised Wasserstein differs from SciPy's by {max(diffs)}"

    if math.isnan(best):  # --benchmark-disable: correctness only
        return
    ks_s = _baseline_seconds(bench_store, bench_size, windows, SCIPY_KS)
    wd_s = _baseline_seconds(bench_store, bench_size, windows, SCIPY_WD)
    benchmark.extra_info["ratio_vs_scipy_ks_loop"] = bench_store.ratio(
        f"{SCIPY_KS} / {CUDRIFT_AUTO}", ks_s / best, f"target >= {TARGET_VS_SCIPY:g}x")
    benchmark.extra_info["ratio_vs_scipy_wasserstein_loop"] = bench_store.ratio(
        f"{SCIPY_WD} / {CUDRIFT_AUTO}", wd_s / best, "same statistic as auto")
    benchmark.extra_info["target_ratio_vs_scipy_ks_loop"] = TARGET_VS_SCIPY


def test_compare_ks(benchmark, windows, bench_size, bench_store, detector_ks):
    """``compare`` with ``policy="ks"``: the same test as the SciPy loop (apples to apples)."""
    ref, cur, names = windows
    report = _run_rounds(benchmark, detector_ks.compare, bench_size, cur, columns=names)
    best = bench_store.record(CUDRIFT_KS, benchmark)
    _base_info(benchmark, bench_size, CUDRIFT_KS, best)
    _report_info(benchmark, report)
    assert report.n_tested == bench_size["n_cols"]
    assert {f.test for f in report.features} == {"ks"}

    expected = _scipy_ks_outputs(windows)
    d_stat = max(abs(f.statistic - expected[names.index(f.column)][0]) for f in report.features)
    d_p = max(abs(f.pvalue - expected[names.index(f.column)][1]) for f in report.features)
    benchmark.extra_info["max_abs_diff_vs_scipy_ks_statistic"] = d_stat
    benchmark.extra_info["max_abs_diff_vs_scipy_ks_pvalue"] = d_p
    assert d_stat < 1e-9, f"cudrift's KS statistic differs from SciPy's by {d_stat}"
    assert d_p < 1e-6, f"cudrift's KS p-value differs from SciPy's by {d_p}"

    if math.isnan(best):  # --benchmark-disable: correctness only
        return
    ks_s = _baseline_seconds(bench_store, bench_size, windows, SCIPY_KS)
    benchmark.extra_info["ratio_vs_scipy_ks_loop"] = bench_store.ratio(
        f"{SCIPY_KS} / {CUDRIFT_KS}", ks_s / best, f"target >= {TARGET_VS_SCIPY:g}x")
    benchmark.extra_info["target_ratio_vs_scipy_ks_loop"] = TARGET_VS_SCIPY


def test_detector_end_to_end_auto(benchmark, windows, bench_size, bench_store):
    """``DriftDetector(reference).compare(current)``: what Evidently's one call does."""
    ref, cur, names = windows

    def end_to_end():
        return cudrift.DriftDetector(ref, policy="auto", columns=names, backend="auto").compare(cur, columns=names)

    report = _run_rounds(benchmark, end_to_end, bench_size)
    best = bench_store.record(CUDRIFT_E2E, benchmark)
    _base_info(benchmark, bench_size, CUDRIFT_E2E, best)
    _report_info(benchmark, report)
    if math.isnan(best):  # --benchmark-disable: correctness only
        return
    ks_s = _baseline_seconds(bench_store, bench_size, windows, SCIPY_KS)
    benchmark.extra_info["ratio_vs_scipy_ks_loop"] = bench_store.ratio(f"{SCIPY_KS} / {CUDRIFT_E2E}", ks_s / best)


# ------------------------------------------------------------------ Evidently
def _evidently_python() -> str | None:
    py = os.environ.get("CUDRIFT_EVIDENTLY_PYTHON", "").strip()
    return py or None


def test_evidently_data_drift_preset(benchmark, windows, bench_size, bench_store, detector_auto):
    """Evidently 0.7 DataDriftPreset on the same data, in its own interpreter (1 repetition).

    The benchmark row times the whole subprocess (interpreter start, imports,
    data generation); ``extra_info["evidently_run_seconds"]`` is the time of
    ``Report.run`` alone, measured inside the script, and the ratios use it.
    """
    py = _evidently_python()
    if py is None:
        reason = ("CUDRIFT_EVIDENTLY_PYTHON is not set: Evidently baseline skipped "
                  "(see benchmarks/README.md for its separate venv)")
        bench_store.notes.append(reason)
        print(f"\nSKIP: {reason}")
        pytest.skip(reason)
    if not Path(py).exists():
        pytest.fail(f"CUDRIFT_EVIDENTLY_PYTHON={py!r} does not exist")
    ref, cur, names = windows
    cmd = [py, str(HERE / "evidently_baseline.py"), "--rows", str(bench_size["n_rows"]),
           "--cols", str(bench_size["n_cols"]), "--seed", str(bench_size["seed"])]
    timeout = float(os.environ.get("CUDRIFT_EVIDENTLY_TIMEOUT", "3600"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    def run_evidently():
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    result = benchmark.pedantic(run_evidently, rounds=1, iterations=1, warmup_rounds=0)
    bench_store.record(EVIDENTLY + " (subprocess)", benchmark)
    ev_s = float(result["seconds"])
    bench_store.seconds_by_name[EVIDENTLY + " (Report.run)"] = ev_s

    auto_s = bench_store.seconds(CUDRIFT_AUTO, lambda: detector_auto.compare(cur, columns=names),
                                 rounds=bench_size["rounds"])
    e2e_s = bench_store.seconds(
        CUDRIFT_E2E,
        lambda: cudrift.DriftDetector(ref, policy="auto", columns=names).compare(cur, columns=names),
        rounds=bench_size["rounds"])
    same = result.get("fingerprint") == {"reference": fingerprint(ref), "current": fingerprint(cur)}
    info = benchmark.extra_info
    info.update(size_info(bench_size))
    info["contender"] = EVIDENTLY
    info["evidently_version"] = result.get("evidently_version")
    info["evidently_pandas_version"] = result.get("pandas_version")
    info["evidently_numpy_version"] = result.get("numpy_version")
    info["evidently_run_seconds"] = ev_s
    info["evidently_methods"] = result.get("methods")
    info["evidently_drifted_count"] = result.get("drifted_count")
    info["same_data_as_cudrift"] = same
    info["ratio_evidently_vs_cudrift_compare_auto"] = bench_store.ratio(
        f"evidently Report.run / {CUDRIFT_AUTO}", ev_s / auto_s, f"target >= {TARGET_VS_EVIDENTLY:g}x")
    info["ratio_evidently_vs_cudrift_end_to_end"] = bench_store.ratio(
        f"evidently Report.run / {CUDRIFT_E2E}", ev_s / e2e_s)
    info["target_ratio_vs_evidently"] = TARGET_VS_EVIDENTLY
    if not same:
        bench_store.notes.append("Evidently script generated different data (NumPy stream differs across "
                                 "interpreters); same distribution and size, ratio still indicative")
    # Cross-check: Evidently's normalised Wasserstein values vs cudrift's auto statistics.
    values = result.get("column_values") or {}
    if same and values:
        report = detector_auto.compare(cur, columns=names)
        diffs = [abs(f.statistic - values[f.column]) for f in report.features
                 if f.test == "wasserstein_normalized" and isinstance(values.get(f.column), (int, float))]
        if diffs:
            info["max_abs_diff_vs_evidently_statistic"] = max(diffs)
    print(f"\nEvidently {result.get('evidently_version')}: Report.run {ev_s:.2f} s at "
          f"{bench_size['n_rows']:,} x {bench_size['n_cols']} "
          f"({ev_s / auto_s:.0f}x cudrift compare, {ev_s / e2e_s:.0f}x cudrift end to end)", file=sys.stderr)
