"""``backend=`` on the two-sample statistics: the choice of device, its errors, and the GPU path against NumPy.

The CPU tests run anywhere; the ``gpu``-marked class needs a usable GPU and
is skipped with the reason otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from cudrift import BackendUnavailableError, EmptyInputError
from cudrift.backends import gpu_status
from cudrift.stats import (
    anderson_ksamp,
    cramervonmises_2samp,
    energy_distance,
    ks_2samp,
    mmd,
    wasserstein_distance,
    wasserstein_normalized,
)
from cudrift.stats import _backend

GPU_OK, GPU_REASON = gpu_status()

# (function, extra keyword arguments, SciPy twin or None)
SAMPLE_TESTS = [
    (ks_2samp, {}, lambda a, b: scipy.stats.ks_2samp(a, b)),
    (cramervonmises_2samp, {}, lambda a, b: scipy.stats.cramervonmises_2samp(a, b)),
    (anderson_ksamp, {}, None),
    (wasserstein_distance, {}, lambda a, b: scipy.stats.wasserstein_distance(a, b)),
    (energy_distance, {}, lambda a, b: scipy.stats.energy_distance(a, b)),
    (wasserstein_normalized, {}, None),
    (mmd, {"n_permutations": 20}, None),
]
IDS = [f[0].__name__ for f in SAMPLE_TESTS]


class _FakeDeviceArray:
    """Something that says it lives in GPU memory, as a CuPy or cuDF array would."""

    def __init__(self, values):
        self.values = np.asarray(values)
        self.__cuda_array_interface__ = {"shape": self.values.shape, "typestr": "<f8", "data": (0, False),
                                         "version": 3}


@pytest.mark.parametrize("func, kwargs, _", SAMPLE_TESTS, ids=IDS)
def test_invalid_backend_is_named(rng, func, kwargs, _):
    with pytest.raises(ValueError, match="backend"):
        func(rng.normal(size=50), rng.normal(size=40), backend="tpu", **kwargs)


@pytest.mark.skipif(GPU_OK, reason="a GPU is usable here: this checks a machine without one")
@pytest.mark.parametrize("func, kwargs, _", SAMPLE_TESTS, ids=IDS)
def test_gpu_without_a_device_says_why(rng, func, kwargs, _, monkeypatch):
    a, b = rng.normal(size=50), rng.normal(size=40)
    with pytest.raises(BackendUnavailableError, match="not usable here"):
        func(a, b, backend="gpu", **kwargs)
    # the environment's default applies to "auto" too
    monkeypatch.setenv("CUDRIFT_BACKEND", "gpu")
    with pytest.raises(BackendUnavailableError):
        func(a, b, **kwargs)
    monkeypatch.setenv("CUDRIFT_BACKEND", "cpu")
    assert func(a, b, **kwargs).statistic == func(a, b, backend="cpu", **kwargs).statistic


@pytest.mark.parametrize("func, kwargs, twin", SAMPLE_TESTS, ids=IDS)
def test_host_samples_stay_on_the_cpu_with_auto(rng, func, kwargs, twin, monkeypatch):
    """``auto`` never moves host samples to a device for one test: same result as ``cpu``, and as SciPy."""
    monkeypatch.delenv("CUDRIFT_BACKEND", raising=False)
    a, b = rng.normal(size=300), rng.normal(0.2, size=250)
    auto, cpu = func(a, b, **kwargs), func(a, b, backend="cpu", **kwargs)
    assert (auto.statistic, auto.pvalue) == (cpu.statistic, cpu.pvalue)
    if twin is not None:
        ref = twin(a, b)
        assert auto.statistic == pytest.approx(getattr(ref, "statistic", ref), rel=1e-9)


@pytest.mark.skipif(GPU_OK, reason="a GPU is usable here: this checks a machine without one")
def test_options_the_device_lacks_need_no_gpu(rng):
    """A one-sided KS, weights, another variant: NumPy computes them even with backend="gpu"."""
    a, b = rng.normal(size=200), rng.normal(0.3, size=150)
    res = ks_2samp(a, b, alternative="less", backend="gpu")
    assert res.statistic == pytest.approx(scipy.stats.ks_2samp(a, b, alternative="less").statistic, rel=1e-12)
    w = rng.random(size=200)
    assert wasserstein_distance(a, b, reference_weights=w, backend="gpu").statistic == pytest.approx(
        scipy.stats.wasserstein_distance(a, b, u_weights=w), rel=1e-12)
    assert anderson_ksamp(a, b, variant="right", backend="gpu").method == "anderson"
    with pytest.raises(ValueError, match="backend"):
        ks_2samp(a, b, alternative="less", backend="tpu")


def test_host_readable_arrays_that_export_the_cuda_interface_need_no_cupy(rng, monkeypatch):
    """Numba's mapped / managed arrays are NumPy arrays with a CUDA array interface: device data, host-readable."""

    class Mapped(np.ndarray):
        @property
        def __cuda_array_interface__(self):
            return {**self.__array_interface__, "version": 3}

    a = rng.normal(size=300).view(Mapped)
    assert _backend.is_device_array(a)
    monkeypatch.setitem(__import__("sys").modules, "cupy", None)  # no CuPy: the CPU path still reads it
    assert _backend.to_host(a) is a
    b = rng.normal(0.2, size=250)
    res = ks_2samp(a, b, backend="cpu")
    assert res.statistic == pytest.approx(scipy.stats.ks_2samp(np.asarray(a), b).statistic, rel=1e-12)


def test_a_bad_environment_default_is_named(rng, monkeypatch):
    monkeypatch.setenv("CUDRIFT_BACKEND", "tpu")
    with pytest.raises(ValueError, match="CUDRIFT_BACKEND"):
        ks_2samp(rng.normal(size=20), rng.normal(size=20))


@pytest.mark.parametrize("policy", ["mmd", "energy_distance", "ks"])
def test_the_environment_never_overrides_a_cpu_detector(rng, monkeypatch, policy):
    """A detector built with backend="cpu" tests its sampled values on NumPy whatever CUDRIFT_BACKEND says."""
    from cudrift import DriftDetector, profile

    ref = profile({"x": rng.normal(size=3000)}, backend="cpu")
    cur = profile({"x": rng.normal(0.5, size=3000)}, like=ref, backend="cpu")
    det = DriftDetector(ref, policy=policy, backend="cpu")
    monkeypatch.setenv("CUDRIFT_BACKEND", "gpu")
    f = det.compare(cur).features[0]
    assert f.status == "ok" and f.drifted, f


def test_constant_reference_normalizes_by_one(rng):
    """np.std of a constant float sample is ~1e-17, not 0: the normalized distance must still divide by 1."""
    ref, cur = np.full(1000, 0.1), np.full(1000, 0.2)
    assert np.std(ref) != 0.0  # the trap
    res = wasserstein_normalized(ref, cur)
    assert res.statistic == pytest.approx(0.1, rel=1e-12)
    assert res.details["normalizer"] == 1.0 and res.details["reference_std"] == 0.0
    from cudrift import DriftDetector

    for exact in (True, False):
        f = DriftDetector({"c": ref}, policy="wasserstein_normalized", exact=exact).compare({"c": cur}).features[0]
        assert f.statistic == pytest.approx(0.1, rel=1e-9), (exact, f)


def test_device_arrays_are_recognized():
    assert _backend.is_device_array(_FakeDeviceArray([1.0, 2.0]))
    assert not _backend.is_device_array(np.arange(3.0))

    class CudaDLPack:
        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA, device 0

    class BrokenDLPack:
        def __dlpack_device__(self):
            raise RuntimeError("no")

    assert _backend.is_device_array(CudaDLPack())
    assert not _backend.is_device_array(BrokenDLPack())
    assert not _backend.is_device_array([1.0, 2.0])


@pytest.mark.skipif(GPU_OK, reason="a GPU is usable here: this checks a machine without one")
def test_device_input_on_a_machine_without_cupy_is_a_clear_error(monkeypatch):
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy imports here")
    monkeypatch.delenv("CUDRIFT_BACKEND", raising=False)
    with pytest.raises(ValueError, match="CuPy"):
        ks_2samp(_FakeDeviceArray([1.0, 2.0, 3.0]), [1.0, 2.0], backend="cpu")


# What a forking script starts with: in_child(expr) forks, evaluates expr in the child, sends back its repr (or
# the error it raised) through a pipe (the child leaves by os._exit) and waits for the child.
_FORKING = """
import os

def in_child(expr):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            try:
                got = repr(eval(expr))
            except Exception as exc:
                got = f"{type(exc).__name__}: {exc}"
            os.write(w, got.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = f.read()
    os.waitpid(pid, 0)
    return got
"""
# A stand-in CuPy whose device count the script sets, and a stand-in for cudrift's GPU module.
_STUB_GPU = """
import sys, types
device = types.SimpleNamespace(count=1)
cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: device.count),
                             Device=lambda i: types.SimpleNamespace(compute_capability="90"))
sys.modules["cupy"] = types.SimpleNamespace(cuda=cuda)
sys.modules["cudrift.backends._gpu"] = types.ModuleType("cudrift.backends._gpu")
"""


def _run_forking(*scripts: str, env: dict | None = None) -> list[str]:
    """Run ``_FORKING`` and ``scripts`` in a fresh interpreter (they fork; pytest's process must not); its stdout
    lines."""
    import os
    import subprocess
    import sys
    import textwrap

    code = "".join(map(textwrap.dedent, (_FORKING, *scripts)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "CUDRIFT_BACKEND": "auto", **(env or {})}, cwd=os.path.dirname(__file__))
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_a_forked_child_probes_the_gpu_again():
    """The GPU probe is cached per process, and a forked child probes again: a parent that found no device
    leaves its child free to find one (CuPy and cudrift's GPU module are stand-ins here)."""
    lines = _run_forking(_STUB_GPU, """
        from cudrift.backends import gpu_status, resolve_backend
        device.count = 0
        print(gpu_status())
        device.count = 1  # the parent does not ask again: its answer is cached
        print(gpu_status(), in_child("(gpu_status(), resolve_backend('auto'))"))
    """)
    assert lines == ["(False, 'CuPy found no CUDA device')",
                     "(False, 'CuPy found no CUDA device') ((True, 'CUDA device 0 answered'), 'gpu')"]


def test_a_child_forked_after_the_parent_reached_the_gpu_runs_on_the_cpu():
    """A parent whose probe reached a device initialized CUDA, which does not survive fork: its forked children
    (and theirs) answer "not usable", saying why, and run backend="auto" on the CPU rather than fail with a
    CUDA error; backend="gpu" is refused with that reason."""
    lines = _run_forking(_STUB_GPU, """
        import numpy as np
        import cudrift
        from cudrift.backends import gpu_status, resolve_backend
        print(gpu_status(), resolve_backend("auto"))
        print(in_child("(resolve_backend('auto'), cudrift.profile({'x': np.arange(10.0)}).n_rows)"))
        print(in_child("gpu_status()"))
        print(in_child("in_child('gpu_status()')"))  # a grandchild
        print(in_child("resolve_backend('gpu')"))
    """)
    assert lines[0] == "(True, 'CUDA device 0 answered') gpu"
    assert lines[1] == "('cpu', 10)"
    assert lines[2].startswith("(False, ") and "CUDA was initialized in process " in lines[2]
    assert "was forked" in lines[2] and "'spawn'" in lines[2]
    assert "was forked" in lines[3]
    assert lines[4].startswith("BackendUnavailableError: backend='gpu' is not usable here: CUDA was initialized")


def test_a_forked_child_merges_large_samples_on_threads_of_its_own():
    """The exact rank tests merge large samples on a thread pool: a child forked after its parent used it
    inherits the pool but not its threads, and waited on them for good."""
    lines = _run_forking("""
        import numpy as np, scipy.stats as st
        from cudrift.stats import cramervonmises_2samp as cvm
        a, b = np.random.default_rng(0).normal(size=(2, 300_000))
        print(np.isclose(cvm(a, b).statistic, st.cramervonmises_2samp(a, b).statistic, rtol=1e-9))
        print(in_child("bool(np.isclose(cvm(a, b + 0.1).statistic, st.cramervonmises_2samp(a, b + 0.1).statistic, "
                       "rtol=1e-9))"))
    """)
    assert lines == ["True", "True"]


def test_a_forked_child_gets_a_fresh_gpu_lock_and_no_devices_of_its_parent():
    """The GPU module's lock, held by another of the parent's threads at the fork, is never released in the
    child: the child gets a fresh one (its first GPU call would hang otherwise), and none of the parent's
    device state (streams, pinned buffers, staging threads). CuPy emulated by NumPy (tests/fake_cupy.py)."""
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")
    lines = _run_forking("""
        import threading
        import fake_cupy
        cupy = fake_cupy.install()
        from cudrift.backends import _gpu, gpu_status
        assert gpu_status()[0]
        _gpu.to_host(cupy.zeros(3))  # the parent's device state
        held, done = threading.Event(), threading.Event()

        def hold():
            with _gpu._LOCK:
                held.set()
                done.wait()

        threading.Thread(target=hold).start()
        held.wait()
        print(len(_gpu._DEVICES), in_child("(_gpu._LOCK.acquire(timeout=10), len(_gpu._DEVICES))"))
        done.set()
    """, env={"NUMBA_ENABLE_CUDASIM": "1"})
    assert lines == ["1 (True, 0)"]


@pytest.mark.gpu
@pytest.mark.skipif(not GPU_OK, reason=f"GPU backend not usable: {GPU_REASON}")
class TestOnGpu:
    """Host and device samples with ``backend="gpu"`` / ``"auto"`` against the NumPy path on the same data."""

    @pytest.mark.parametrize("n", [300, 30_000])
    @pytest.mark.parametrize("func, kwargs, twin", SAMPLE_TESTS, ids=IDS)
    def test_matches_numpy(self, rng, n, func, kwargs, twin):
        import cupy

        a = rng.normal(size=n)
        b = rng.standard_t(5, size=n - 7).astype(np.float32) + np.float32(0.05)
        a[::97] = np.nan
        b[::89] = np.inf
        cpu = func(a, b, backend="cpu", **kwargs)
        da, db = cupy.asarray(a), cupy.asarray(b)
        before = cupy.asnumpy(da).copy()
        for res in (func(a, b, backend="gpu", **kwargs), func(da, db, **kwargs)):
            assert res.method == cpu.method
            for key in ("n_dropped_reference", "n_dropped_current", "pvalue_method", "reference_std", "normalizer"):
                if key in cpu.details:
                    want = cpu.details[key]
                    assert res.details[key] == (pytest.approx(want, rel=1e-9) if isinstance(want, float) else want), key
            if func is ks_2samp:
                # a point where the statistic is attained (SciPy may name another one on ties)
                loc = res.details["statistic_location"]
                fa = np.searchsorted(np.sort(a[np.isfinite(a)]), loc, "right") / cpu.n_reference
                fb = np.searchsorted(np.sort(b[np.isfinite(b)].astype(np.float64)), loc, "right") / cpu.n_current
                assert abs(fa - fb) == pytest.approx(cpu.statistic, rel=1e-12)
            assert res.statistic == pytest.approx(cpu.statistic, rel=1e-6, abs=1e-12)
            if cpu.pvalue is None:
                assert res.pvalue is None
            else:
                assert res.pvalue == pytest.approx(cpu.pvalue, rel=1e-6, abs=1e-9)
            assert (res.n_reference, res.n_current) == (cpu.n_reference, cpu.n_current)
        assert np.array_equal(cupy.asnumpy(da), before, equal_nan=True)  # the caller's array is not sorted in place

    def test_options_the_device_lacks_run_on_the_cpu(self, rng):
        import cupy

        a, b = rng.normal(size=500), rng.normal(0.1, size=400)
        res = ks_2samp(cupy.asarray(a), cupy.asarray(b), alternative="less")
        assert res.statistic == pytest.approx(scipy.stats.ks_2samp(a, b, alternative="less").statistic)
        w = rng.random(size=500)
        res = wasserstein_distance(cupy.asarray(a), cupy.asarray(b), reference_weights=w, backend="gpu")
        assert res.statistic == pytest.approx(scipy.stats.wasserstein_distance(a, b, u_weights=w))

    def test_empty_after_dropping_is_named(self):
        with pytest.raises(EmptyInputError, match="current has no finite values"):
            ks_2samp(np.arange(5.0), np.array([np.nan, np.inf]), backend="gpu")
