"""The GPU backend's host logic, run on this machine: CuPy emulated by NumPy, the kernels in Numba's simulator.

``gpu_emulated_cases.py`` holds the cases; they run in a pytest process of
their own, since ``fake_cupy`` replaces CuPy for the whole process (see its
docstring for what this does and does not check). On a machine with a real
GPU the ``gpu`` tests of ``test_gpu_backend.py`` cover the same paths on the
device at full size.

``benchmarks/gpu_check.py --emulate`` runs every benchmark step of the card
check the same way, and ``benchmarks/profile_sweep.py --emulate`` the
register/prefetch sweep that ``benchmarks/gpu_session.sh`` runs after it, so
that a step broken by a change fails here rather than in a lent card's few
minutes. The three run side by side (CI has two cores).
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _in_background(tmp_path_factory, script: str, *args: str):
    """Fixture body: ``benchmarks/<script> --emulate ARGS --out <tmp>/out.json`` running; yields (process, tmp)."""
    tmp = tmp_path_factory.mktemp(script.split(".")[0])
    with open(tmp / "log.txt", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / script), "--emulate", *args, "--out", str(tmp / "out.json")],
            cwd=ROOT, env=dict(os.environ, OUT=""), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: _stop ends its children too
        )
    yield proc, tmp
    _stop(proc)


def _stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _finished(proc, tmp, timeout=900) -> str:
    """Wait for a process of :func:`_in_background`; its log, after checking it exited 0."""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = f"still running after {timeout} s"
    finally:
        _stop(proc)
    log = (tmp / "log.txt").read_text()
    assert rc == 0, f"{rc}: {log[-6000:]}"
    return log


#: ``CUDRIFT_EMULATE_BENCHMARKS=0`` leaves out the two benchmark scripts (they run on the card's NumPy 2; CI's
#: second pass, in the NumPy 1 environment of the Triton image, runs only the cases).
BENCHMARKS = os.environ.get("CUDRIFT_EMULATE_BENCHMARKS", "1") != "0"
needs_benchmarks = pytest.mark.skipif(not BENCHMARKS, reason="CUDRIFT_EMULATE_BENCHMARKS=0: the benchmark scripts "
                                      "are checked in the NumPy 2 environment")
#: The cases run as this many processes side by side (CI has two cores; the simulator holds one each).
SHARDS = 2


@pytest.fixture(scope="module")
def emulated_gpu_check(tmp_path_factory):
    if not BENCHMARKS:
        yield None
        return
    yield from _in_background(tmp_path_factory, "gpu_check.py")


@pytest.fixture(scope="module")
def emulated_sweep(tmp_path_factory):
    if not BENCHMARKS:
        yield None
        return
    # the register part only, as gpu_session.sh runs it (the simulator takes no cap: one is enough), at 64 x 4
    yield from _in_background(tmp_path_factory, "profile_sweep.py", "--variants", "", "--registers", "0",
                              "--timeout", "600")


def test_gpu_backend_host_logic_under_emulation(emulated_gpu_check, emulated_sweep, tmp_path):
    # (the two fixtures start the benchmark scripts first, so that they run beside these cases)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CUDRIFT_BACKEND="auto")
    procs = []
    for k in range(SHARDS):
        out = open(tmp_path / f"shard{k}.txt", "w+")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "pytest", str(HERE / "gpu_emulated_cases.py"), "-q", "-p", "no:cacheprovider",
             "-p", "no:randomly", "--timeout=600", "-o", "addopts=-ra --strict-markers", f"--shard={k}/{SHARDS}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        ), out))
    passed, collected = 0, set()
    for proc, out in procs:
        try:
            rc = proc.wait(timeout=1200)
        finally:
            _stop(proc)
        out.seek(0)
        log = out.read()
        out.close()
        assert rc == 0, log[-10000:]
        summary = log.strip().splitlines()[-1]
        assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
        counts = {w: int(n) for n, w in re.findall(r"(\d+) (passed|deselected)", summary)}
        passed += counts["passed"]
        collected.add(counts["passed"] + counts.get("deselected", 0))
    # every case ran in exactly one shard: the shards' passes add up to what each collected
    assert len(collected) == 1 and passed == collected.pop(), (passed, collected)


@needs_benchmarks
def test_gpu_check_runs_every_step_under_emulation(emulated_gpu_check):
    proc, tmp = emulated_gpu_check
    log = _finished(proc, tmp)
    data = json.loads((tmp / "out.json").read_text())
    assert data["emulated"] is True
    failed = {k: v["error"] for k, v in data["steps"].items() if not v["ok"]}
    assert not failed, failed
    for step in ("profile", "categorical", "window", "mmd", "compare"):
        assert data["steps"][step]["ok"], step
    rows = {r["name"]: r for r in data["benchmarks"]}
    # one row per measurement the card run reports (names as RESULTS.md quotes them), each timed
    assert len(rows) == len(data["benchmarks"]) == 22, sorted(rows)
    for r in rows.values():
        assert math.isfinite(r["gpu_seconds"]) and r["gpu_seconds"] > 0, r
    # the A/B rows' own checks: the column kernel counts the same capped and uncapped, the GPU MMD is the CPU's
    for label in ("capped at 64 (library)", "uncapped (A/B)"):
        row = rows[f"fused pass, column-major float64, column kernel {label}"]
        assert row["note"] == "histogram equal between the two", row
    # the compare target is judged on the NumPy path timed at the full size when there is time (here there is)
    full = rows["DriftDetector.compare, NumPy path at the compare rows' size"]["gpu_seconds"]
    compare_rows = [r for n, r in rows.items() if n.startswith("DriftDetector.compare, ") and "NumPy path" not in n]
    assert len(compare_rows) == 5
    for r in compare_rows:
        assert r["cpu_timed_at_full_size"] is True and r["cpu_seconds"] == full, r
        assert r["gpu_vs_cpu"] == full / r["gpu_seconds"] and r["gpu_vs_cpu_scaled"] > 0, r
        assert r["cpu_note"].startswith("DriftDetector(backend='cpu').compare timed at this size, best of 2"), r
    for r in compare_rows[:2]:
        assert r["met"] == (r["gpu_vs_cpu"] >= 50), r
    agree = rows["MMD, RBF, 5 permutations (1 feature)"]["agreement"]
    assert agree["same_pvalue"] and agree["statistic_rel_diff"] < 1e-9, agree
    assert "EMULATED" in log and "steps failed: none" in log


@needs_benchmarks
def test_profile_sweep_registers_part_runs_under_emulation(emulated_sweep):
    proc, tmp = emulated_sweep
    _finished(proc, tmp)
    (res,) = json.loads((tmp / "out.json").read_text())
    assert "error" not in res, res.get("error")
    runs = res["runs"]
    for r in runs:
        assert "error" not in r and math.isfinite(r["seconds"]) and r["seconds"] > 0, r
        # every launch with a histogram is checked: each column's counts add up to its rows
        assert r.get("counts_ok") is True or r["edges"] == "none", r
    seen = {(r["kernel"], r["edges"], r["binning"], r["prefetch"]) for r in runs}
    for kernel in ("profile_rows_kernel", "profile_kernel"):
        assert {(kernel, "equal-mass", "float32", False), (kernel, "none", "float32", False),
                (kernel, "equal-mass", "float64", False), (kernel, "equal-mass", "float32", True)} <= seen, seen
    for kernel, other in (("profile_rows_kernel", "column after column"), ("profile_kernel", "one copy")):
        layouts = {r["shared_layout"] for r in runs if r["kernel"] == kernel and r["edges"] == "equal-mass"}
        assert layouts == {"interleaved", other}, (kernel, layouts)
