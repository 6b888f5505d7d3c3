"""The GPU backend's host logic, run on this machine: CuPy emulated by NumPy, the kernels in Numba's simulator.

``gpu_emulated_cases.py`` holds the cases; they run in a pytest process of
their own, since ``fake_cupy`` replaces CuPy for the whole process (see its
docstring for what this does and does not check). On a machine with a real
GPU the ``gpu`` tests of ``test_gpu_backend.py`` cover the same paths on the
device at full size.

``benchmarks/gpu_check.py --emulate`` runs every benchmark step of the card
check the same way, so that a step broken by a change fails here rather than
on a lent card's few minutes.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@pytest.fixture(scope="module")
def emulated_gpu_check(tmp_path_factory):
    """``gpu_check.py --emulate``, started first so that it runs beside the cases (on CI's second core)."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    log = open(tmp / "log.txt", "w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--emulate", "--out", str(tmp / "check.json")],
        cwd=ROOT, env=dict(os.environ, OUT=""), stdout=log, stderr=subprocess.STDOUT,
    )
    yield proc, tmp
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def test_gpu_backend_host_logic_under_emulation(emulated_gpu_check):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CUDRIFT_BACKEND="auto")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "gpu_emulated_cases.py"), "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", "--timeout=600", "-o", "addopts=-ra --strict-markers"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary


def test_gpu_check_runs_every_step_under_emulation(emulated_gpu_check):
    proc, tmp = emulated_gpu_check
    rc = proc.wait(timeout=900)
    log = (tmp / "log.txt").read_text()
    assert rc == 0, log[-6000:]
    data = json.loads((tmp / "check.json").read_text())
    assert data["emulated"] is True
    failed = {k: v["error"] for k, v in data["steps"].items() if not v["ok"]}
    assert not failed, failed
    for step in ("profile", "categorical", "window", "mmd", "compare"):
        assert data["steps"][step]["ok"], step
    rows = {r["name"]: r for r in data["benchmarks"]}
    # one row per measurement the card run reports (names as RESULTS.md quotes them), each timed
    assert len(rows) == len(data["benchmarks"]) == 17, sorted(rows)
    for r in rows.values():
        assert math.isfinite(r["gpu_seconds"]) and r["gpu_seconds"] > 0, r
    # the A/B rows' own checks: float64 binning counts what float32 binning counts, the GPU MMD is the CPU's
    assert rows["fused pass, row-major float32, float64 bins (before)"]["note"].startswith("histogram equal to")
    agree = rows["MMD, RBF, 5 permutations (1 feature)"]["agreement"]
    assert agree["same_pvalue"] and agree["statistic_rel_diff"] < 1e-9, agree
    assert "EMULATED" in log and "steps failed: none" in log
