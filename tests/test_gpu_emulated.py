"""The GPU backend's host logic, run on this machine: CuPy emulated by NumPy, the kernels in Numba's simulator.

``gpu_emulated_cases.py`` holds the cases; they run in a pytest process of
their own, since ``fake_cupy`` replaces CuPy for the whole process (see its
docstring for what this does and does not check). On a machine with a real
GPU the ``gpu`` tests of ``test_gpu_backend.py`` cover the same paths on the
device at full size.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

HERE = Path(__file__).resolve().parent


def test_gpu_backend_host_logic_under_emulation():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CUDRIFT_BACKEND="auto")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "gpu_emulated_cases.py"), "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", "--timeout=600", "-o", "addopts=-ra --strict-markers"],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
