"""Run a Triton server on loopback from the ``nvidia-pytriton`` wheel (tests, benchmarks, local trials).

The wheel carries a ``tritonserver`` binary with its python backend and a
backend stub per Python version; it serves CPU python-backend models on a
machine without a GPU. Install it without its dependencies (it pins
``numpy<2``, which would downgrade the environment)::

    pip install --no-deps nvidia-pytriton==0.7.0

What :class:`LocalTritonServer` sets up:

- a backend folder ``<workdir>/backends/python/`` holding
  ``libtriton_python.so``, ``triton_python_backend_utils.py`` and the stub
  built for the running Python (``--backend-directory``);
- ``LD_LIBRARY_PATH`` pointing at the wheel's ``nvidia_pytriton.libs`` and at
  the running Python's ``LIBDIR`` (the stub links ``libpython3.X.so``);
- ``PATH`` starting with the running interpreter's ``bin`` folder: the
  stub's embedded Python takes its environment from the first ``python3``
  on ``PATH`` (a virtual environment's ``pyvenv.cfg`` included), which is
  how the models can import cudrift;
- free loopback ports, a shared-memory prefix of its own (so that two
  servers never share python-backend regions), its own process group (so
  that stopping it also stops the stub processes).

``CUDRIFT_TRITONSERVER`` may name another ``tritonserver`` binary, e.g.
``/opt/tritonserver/bin/tritonserver`` in NVIDIA's images; its backends are
then taken from ``../backends`` next to the binary.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cudrift.errors import BackendUnavailableError

__all__ = ["TritonInstall", "find_tritonserver", "instance_env", "LocalTritonServer", "ServerError", "parse_metrics",
           "metric_value", "wait_log", "wait_metrics", "SUM_SCORER_PY"]

#: ``model.py`` of a python-backend model for tests and benchmarks: input
#: ``FEATURES`` [batch, k] FP32, output ``SCORE`` [batch, 1] = row sums. It
#: moves tensors as the monitor does (DLPack under NumPy 2).
SUM_SCORER_PY = '''import numpy as np
import triton_python_backend_utils as pb_utils

NUMPY2 = int(np.__version__.split(".")[0]) >= 2


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = np.from_dlpack(pb_utils.get_input_tensor_by_name(r, "FEATURES"))
            y = np.ascontiguousarray(x.sum(axis=1, keepdims=True, dtype=np.float32))
            t = pb_utils.Tensor.from_dlpack("SCORE", y) if NUMPY2 else pb_utils.Tensor("SCORE", y)
            out.append(pb_utils.InferenceResponse([t]))
        return out
'''

_instances = itertools.count()


class ServerError(RuntimeError):
    """The server did not start, or died; the message ends with its log."""


@dataclass(frozen=True)
class TritonInstall:
    """Where a usable ``tritonserver`` and its python backend are.

    Attributes
    ----------
    binary
        The ``tritonserver`` executable.
    backends
        A ``--backend-directory`` holding ``python/`` (prepared in place for
        the wheel, see :meth:`LocalTritonServer.start`), or ``None`` when it
        must be assembled from ``python_backend``, ``utils`` and ``stub``.
    python_backend, utils, stub
        ``libtriton_python.so``, ``triton_python_backend_utils.py`` and the
        stub for the running Python (wheel layout).
    libs
        Folder for ``LD_LIBRARY_PATH`` (the wheel's bundled libraries), or ``None``.
    """

    binary: Path
    backends: Path | None = None
    python_backend: Path | None = None
    utils: Path | None = None
    stub: Path | None = None
    libs: Path | None = None


def find_tritonserver() -> tuple[TritonInstall | None, str]:
    """Locate a server: ``$CUDRIFT_TRITONSERVER``, else the ``nvidia-pytriton`` wheel.

    Returns
    -------
    (install, reason)
        ``install`` is ``None`` when none is usable; ``reason`` says why (or
        where the server was found).
    """
    env = os.environ.get("CUDRIFT_TRITONSERVER")
    if env:
        binary = Path(env)
        if not os.access(binary, os.X_OK):
            return None, f"CUDRIFT_TRITONSERVER={env} is not an executable file"
        backends = binary.resolve().parent.parent / "backends"
        if not (backends / "python" / "libtriton_python.so").is_file():
            return None, f"no python backend in {backends} (expected next to {binary})"
        return TritonInstall(binary, backends=backends), f"tritonserver from CUDRIFT_TRITONSERVER={env}"
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None, ("nvidia-pytriton is not installed; pip install --no-deps nvidia-pytriton==0.7.0 "
                      "(or set CUDRIFT_TRITONSERVER to a tritonserver binary)")
    pkg = Path(next(iter(spec.submodule_search_locations)))
    dist = pkg / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(
        binary=dist / "bin" / "tritonserver",
        python_backend=dist / "backends" / "python" / "libtriton_python.so",
        utils=dist / "backends" / "python" / "triton_python_backend_utils.py",
        stub=dist / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=pkg.parent / "nvidia_pytriton.libs",
    )
    missing = [str(p) for p in (install.binary, install.python_backend, install.utils, install.stub, install.libs)
               if not p.exists()]
    if missing:
        return None, f"the nvidia-pytriton wheel lacks {missing} (no stub for Python {version}?)"
    unresolved = _unresolved_libraries(install.stub, _library_path(install))
    if unresolved:
        return None, (f"the python-backend stub for Python {version} cannot load {unresolved} "
                      "(a Python built without its shared library?)")
    return install, f"tritonserver from nvidia-pytriton at {pkg}"


def instance_env(kind: str) -> dict[str, str]:
    """Variables a server needs, on top of this process's environment, to run the monitor on a ``kind`` instance.

    Parameters
    ----------
    kind
        ``"cpu"`` or ``"gpu"``, the monitor's ``--kind``.

    Returns
    -------
    dict
        ``env`` for :class:`LocalTritonServer`: none for ``"cpu"``;
        ``NUMBA_ENABLE_CUDASIM=0`` for ``"gpu"``, since the monitor's stub
        inherits the server's environment and its kernels must run on the
        device, never in the simulator that kernel tests may have asked for.

    Raises
    ------
    BackendUnavailableError
        For ``"gpu"`` when the GPU backend is not usable here; the message
        says why (:func:`cudrift.backends.gpu_status`).
    ValueError
        For any other ``kind``.

    Examples
    --------
    >>> instance_env("cpu")
    {}
    """
    if kind == "cpu":
        return {}
    if kind != "gpu":
        raise ValueError(f"Invalid value for kind: {kind!r} (expected 'cpu' or 'gpu')")
    from cudrift.backends import gpu_status

    ok, why = gpu_status()
    if not ok:
        raise BackendUnavailableError(f"GPU backend not usable: {why}")
    return {"NUMBA_ENABLE_CUDASIM": "0"}


def _library_path(install: TritonInstall) -> str:
    parts = [str(install.libs)] if install.libs is not None else []
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        parts.append(libdir)
    if os.environ.get("LD_LIBRARY_PATH"):
        parts.append(os.environ["LD_LIBRARY_PATH"])
    return os.pathsep.join(parts)


def _unresolved_libraries(binary: Path, library_path: str) -> list[str]:
    """Shared libraries ``ldd`` cannot find for ``binary`` (empty when ``ldd`` is not there to ask)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    env = {**os.environ, "LD_LIBRARY_PATH": library_path}
    try:
        out = subprocess.run([ldd, str(binary)], env=env, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line]


_SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    r"""Prometheus text format → ``{metric: {sorted (label, value) pairs: sample value}}``.

    Examples
    --------
    >>> m = parse_metrics('# TYPE x gauge\nx{model="m",feature="a"} 1.5\ny 2\n')
    >>> m["x"][(("feature", "a"), ("model", "m"))], m["y"][()]
    (1.5, 2.0)
    """
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        key = tuple(sorted(_LABEL.findall(labels or "")))
        out.setdefault(name, {})[key] = math.nan if value == "NaN" else float(value)
    return out


def _answers(url: str) -> bool:
    """Whether ``GET url`` answered 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def metric_value(metrics: dict, name: str, **labels) -> float | None:
    """The value of metric ``name`` (from :func:`parse_metrics`) whose labels include ``labels``; None if none does.

    Examples
    --------
    >>> m = parse_metrics('cudrift_feature_drifted{model="m",feature="b",test="ks"} 1')
    >>> metric_value(m, "cudrift_feature_drifted", feature="b"), metric_value(m, "cudrift_feature_drifted", feature="a")
    (1.0, None)
    """
    for key, v in metrics.get(name, {}).items():
        if all((k, str(x)) in key for k, x in labels.items()):
            return v
    return None


def wait_metrics(server: "LocalTritonServer", ok, timeout: float = 60.0) -> dict:
    """Scrape ``server``'s metrics until ``ok(metrics)`` holds and return them (the monitor publishes from a worker).

    Raises
    ------
    AssertionError
        If ``ok`` does not hold within ``timeout`` seconds; the message shows
        the cudrift metrics last seen and the log's tail.
    """
    deadline = time.monotonic() + timeout
    m: dict = {}
    while time.monotonic() < deadline:
        m = server.scrape()
        if ok(m):
            return m
        time.sleep(0.1)
    shown = {k: v for k, v in m.items() if k.startswith("cudrift")}
    raise AssertionError(f"metrics did not reach the expected state in {timeout:.0f} s: {shown}\n{server.log_tail()}")


def wait_log(server: "LocalTritonServer", text: str, timeout: float = 10.0) -> None:
    """Wait until ``text`` appears in the server's log (models log through a queue, written asynchronously).

    Raises
    ------
    AssertionError
        If it does not appear within ``timeout`` seconds; the message ends
        with the log's tail.
    """
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the server log after {timeout:.0f} s\n{server.log_tail()}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalTritonServer:
    """A ``tritonserver`` process on loopback ports, for one model repository.

    Parameters
    ----------
    model_repository
        The ``--model-repository`` folder.
    install
        Where the server is; default :func:`find_tritonserver`.
    workdir
        Folder for the backend folder and the log; default a new temporary one.
    python_bin
        Folder put first on the server's ``PATH`` (its ``python3`` gives the
        stubs their environment); default the running interpreter's.
    exit_timeout
        Seconds Triton waits for in-flight work when asked to stop.
    extra_args
        More ``tritonserver`` arguments.
    env
        Variables set for the server and its stubs on top of this process's
        environment (e.g. ``NUMBA_ENABLE_CUDASIM="0"``).

    Examples
    --------
    ::

        with LocalTritonServer("/path/to/repo") as server:
            client = tritonclient.http.InferenceServerClient(server.http_url)
            ...
            text = server.metrics()
    """

    def __init__(
        self,
        model_repository: str | os.PathLike,
        install: TritonInstall | None = None,
        workdir: str | os.PathLike | None = None,
        python_bin: str | os.PathLike | None = None,
        exit_timeout: int = 15,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        if install is None:
            install, reason = find_tritonserver()
            if install is None:
                raise ServerError(reason)
        self.install = install
        self.model_repository = Path(model_repository)
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cudrift-triton-"))
        self.python_bin = Path(python_bin) if python_bin is not None else Path(sys.executable).parent
        self.exit_timeout = exit_timeout
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.log_path = self.workdir / "tritonserver.log"
        self._log_file = None

    # ------------------------------------------------------------ addresses
    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    # ------------------------------------------------------------ lifecycle
    def _backends(self) -> Path:
        if self.install.backends is not None:
            return self.install.backends
        folder = self.workdir / "backends" / "python"
        folder.mkdir(parents=True, exist_ok=True)
        for src in (self.install.python_backend, self.install.utils, self.install.stub):
            # Once per workdir: a restart must not rewrite a stub that a
            # killed server's stub process may still be executing.
            if not (folder / src.name).exists():
                shutil.copy2(src, folder / src.name)
        return folder.parent

    def command(self) -> list[str]:
        """The ``tritonserver`` command line (ports must be set)."""
        prefix = f"cudrift{os.getpid()}x{next(_instances)}"
        return [
            str(self.install.binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={self._backends()}",
            "--http-address=127.0.0.1", f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
            "--metrics-address=127.0.0.1", f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true", "--allow-cpu-metrics=false", "--allow-gpu-metrics=false",
            f"--exit-timeout-secs={self.exit_timeout}",
            # Python-backend shared-memory regions are named after this prefix;
            # a server of its own never collides with one still shutting down.
            f"--backend-config=python,shm-region-prefix-name={prefix}",
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        """The server's environment: bundled libraries and the stubs' Python first."""
        env = {**os.environ, **self.env}
        env["LD_LIBRARY_PATH"] = _library_path(self.install)
        env["PATH"] = os.pathsep.join(p for p in (str(self.python_bin), env.get("PATH", "")) if p)
        return env

    def start(self, timeout: float = 90.0) -> "LocalTritonServer":
        """Start the server on free ports and wait until it is ready (all models loaded, metrics port answering).

        Triton opens its metrics port after the HTTP endpoint reports ready
        (tens of milliseconds later, more on a busy machine), so both are
        waited for: a scrape right after ``start`` must not be refused.

        Raises
        ------
        ServerError
            If it exits or is not ready within ``timeout`` seconds; it is
            stopped first, and the message ends with its log.
        """
        if self.process is not None and self.process.poll() is None:
            raise ServerError("the server is already running")
        self.http_port, self.grpc_port, self.metrics_port = _free_port(), _free_port(), _free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(), env=self.environment(), stdout=self._log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._close_log()
                raise ServerError(f"tritonserver exited with status {code} while starting\n{self.log_tail()}")
            if self.is_ready() and self._metrics_up():
                return self
            time.sleep(0.2)
        self.kill()
        raise ServerError(f"tritonserver was not ready after {timeout:.0f} s (HTTP ready: {self.is_ready()}, "
                          f"metrics port {self.metrics_port} answering: {self._metrics_up()})\n{self.log_tail()}")

    def is_ready(self) -> bool:
        """``GET /v2/health/ready`` answered 200."""
        return _answers(f"http://{self.http_url}/v2/health/ready")

    def _metrics_up(self) -> bool:
        return _answers(self.metrics_url)

    def stop(self, timeout: float | None = None) -> int | None:
        """Ask the server to stop (SIGTERM: models are finalized) and wait; kill it past ``timeout``.

        Returns the exit status (``None`` if it was not running).
        """
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(self.exit_timeout + 15 if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        # Stubs left behind by a server that died are killed with it: they
        # are in its process group, which no one else shares.
        self._signal(signal.SIGKILL)
        self._close_log()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the server and its stubs at once (a crash: nothing is finalized)."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)  # the stubs too: the whole process group
        self.process.wait()
        self._close_log()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # ------------------------------------------------------------ inspection
    def metrics(self) -> str:
        """The text of the metrics endpoint."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return r.read().decode("utf-8")

    def scrape(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """The metrics endpoint, parsed by :func:`parse_metrics`."""
        return parse_metrics(self.metrics())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def __enter__(self) -> "LocalTritonServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
