"""Dockerfile.cuda's example, built and served here as the image would build and serve it.

No image can be built on this machine (no Docker daemon, no NGC registry), so
this test takes the Dockerfile's own build steps out of the file and runs them:
the example script that writes the reference profile and the served model,
then the ``cudrift triton repo`` command with its flags as written (only the
image paths move under a temporary folder, and ``CUDRIFT_KIND`` is ``cpu``:
no GPU here). It then serves the resulting ``/models`` with the local
``tritonserver`` (nvidia-pytriton's, Triton 2.51 as in the image's NGC 24.10
tag), sends traffic through the ensemble and reads the drift metrics. What
stays unchecked: the base image itself, the pip line inside it, and
``KIND_GPU`` (see README, "Triton deployment").
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cudrift.cli.main import main
from cudrift.integrations.triton.local_server import LocalTritonServer, find_tritonserver, metric_value, wait_metrics

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.cuda"


def _instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, heredoc bodies kept."""
    out: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        word, _, rest = line.strip().partition(" ")
        heredoc = re.search(r"<<-?'?(\w+)'?", rest)
        if heredoc:
            body = []
            while lines[i] != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            rest = rest + "\n" + "\n".join(body)
        out.append((word.upper(), rest))
    return out


def _args(steps, name: str) -> dict[str, str]:
    return dict(a.partition("=")[::2] for w, a in steps if w == name)


def test_dockerfile_steps_refer_to_what_the_project_has():
    steps = _instructions(DOCKERFILE.read_text())
    words = [w for w, _ in steps]
    assert words[0] == "ARG" and "FROM" in words
    assert _args(steps, "ARG")["CUDRIFT_KIND"] == "gpu"
    for w, a in steps:
        if w == "COPY":
            assert (ROOT / a.split()[0]).exists(), a
    pyproject = (ROOT / "pyproject.toml").read_text()
    install = next(a for w, a in steps if w == "RUN" and "pip install" in a)
    args = _args(steps, "ARG")
    assert args["CUDRIFT_CUDA"] == "cuda12"  # the 24.10 base image ships CUDA 12.6
    extras = re.search(r"""['"]\.\[([\w,${}]+)\]['"]""", install).group(1).replace("${CUDRIFT_CUDA}", "cuda12")
    for extra in extras.split(",") + ["cuda13"]:
        assert re.search(rf"^{extra} = \[", pyproject, re.M), f"extra {extra!r} is not in pyproject.toml"
    for major in ("12", "13"):
        # plain numba-cuda resolves to CUDA 13 bindings and no NVVM: its cu12 / cu13 extra brings both
        assert re.search(rf'^cuda{major} = \[.*"numba-cuda\[cu{major}\]', pyproject, re.M), major
    assert "'numpy<2'" in install  # the stub of the image's python backend is built against NumPy 1.x
    cmd = next(a for w, a in steps if w == "CMD")
    repo = next(a for w, a in steps if w == "RUN" and a.startswith("cudrift triton repo"))
    assert "--model-repository=/models" in cmd and shlex.split(repo)[3] == "/models"


def test_dockerfile_example_repository_serves_drift_metrics(tmp_path):
    install, why = find_tritonserver()
    if install is None:
        pytest.skip(f"no Triton server: {why}")
    httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http,grpc] is not installed")
    steps = _instructions(DOCKERFILE.read_text())
    script = next(a for w, a in steps if w == "RUN" and a.startswith("python3 - <<")).split("\n", 1)[1]
    repo_cmd = next(a for w, a in steps if w == "RUN" and a.startswith("cudrift triton repo"))

    example = tmp_path / "example"
    example.mkdir()
    subprocess.run([sys.executable, "-c", script], cwd=example, check=True, timeout=300)
    models, state = tmp_path / "models", tmp_path / "state"
    argv = shlex.split(repo_cmd.replace("${CUDRIFT_KIND}", "cpu"))[1:]
    argv = [a.replace("/models", str(models)).replace("/var/lib/cudrift", str(state)) for a in argv]
    argv = [str(example / a) if (example / a).exists() else a for a in argv]  # the build's WORKDIR
    assert main(argv) == 0
    state.mkdir()

    server = LocalTritonServer(models, workdir=tmp_path / "work")
    try:
        server.start()
        client = httpclient.InferenceServerClient(server.http_url)
        rng = np.random.default_rng(11)
        try:
            for shift in (0.0, 3.0):  # one window (10,000 rows) like the reference, then one with 'b' shifted
                for _ in range(10):
                    n = 1000
                    x = np.stack([rng.normal(0, 1, n), rng.uniform(0, 10, n) + shift, rng.exponential(2, n),
                                  rng.normal(100, 5, n)], axis=1).astype(np.float32)
                    inputs = []
                    for name, arr, dt in (("FEATURES", x, "FP32"),
                                          ("REGION", rng.integers(0, 5, (n, 1)).astype(np.int64), "INT64")):
                        i = httpclient.InferInput(name, list(arr.shape), dt)
                        i.set_data_from_numpy(arr)
                        inputs.append(i)
                    res = client.infer("scorer_monitored", inputs)
                    np.testing.assert_allclose(res.as_numpy("SCORE")[:, 0], x.sum(axis=1), rtol=1e-5)
        finally:
            client.close()
        # up to a minute for the second window to close on a loaded machine
        metrics = wait_metrics(server, lambda m: metric_value(m, "cudrift_windows_closed_total", model="scorer") == 2)
        closed = metrics["cudrift_windows_closed_total"]
        assert list(closed.values()) == [2.0], (closed, server.log_tail())
        drifted = {dict(k)["feature"] for k, v in metrics["cudrift_feature_drifted"].items() if v == 1}
        assert "b" in drifted and "a" not in drifted and "d" not in drifted, drifted
        assert (state / "cudrift_monitor.ckpt").exists()  # --checkpoint as the image writes it, on each close
        assert server.stop() == 0
    finally:
        server.stop()
