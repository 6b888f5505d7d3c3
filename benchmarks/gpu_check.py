"""One command for a machine with a GPU: what the card is, whether the GPU tests pass, and how fast the GPU path is.

Run from the repository root, with the project installed
(``pip install --no-deps --no-build-isolation -e .``) next to CuPy for the
machine's CUDA, numba-cuda, pytest and nvidia-ml-py::

    python3 benchmarks/gpu_check.py --out gpu_check.json    # about 2 minutes on an H200
    python3 benchmarks/gpu_check.py --quick                 # smaller sizes, fewer tests
    python3 benchmarks/gpu_check.py --dry-run               # no GPU needed: checks imports, prints the plan
    python3 benchmarks/gpu_check.py --emulate --out /tmp/e.json   # no GPU needed: runs every step (~1 min)

``--emulate`` runs the benchmark steps on a machine without a GPU, before a
card run is spent on them: CuPy emulated by NumPy (``tests/fake_cupy.py``),
the kernels in Numba's CUDA simulator, tiny sizes, every timing once, no
GPU tests, no Triton step and no ``warm_up`` (its windows are too large for the
simulator). It checks this script's own code paths (a
step that fails there would fail on the card); its figures mean nothing.

Steps, in order; each is wrapped so that one failure is recorded and the
rest still run, and the JSON is rewritten after every step (a run cut short
still leaves what it measured):

1. the card (pynvml name, memory, driver), CuPy / numba-cuda / CUDA versions,
   ``cudrift.backends.gpu_status()``;
2. the GPU tests: ``tests/test_gpu_backend.py``, ``tests/test_stats_backend.py``
   and every ``tests/test_kernels_*.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=0``
   (so the kernel tests run on the device), on several xdist workers when
   pytest-xdist is installed, with a per-test timeout when pytest-timeout is;
   the full log goes to ``$OUT/gpu_tests.log`` (``--quick``: the backend's
   and the statistics' tests and ``tests/test_kernels_gpu.py``);
3. kernel compilation (``cudrift.backends._gpu.warm_up``);
4. the device-to-device copy rate, the bandwidth ceiling (read + write bytes
   of a large ``cupy`` copy per second);
5. timings, each next to the NumPy path on the same data at a size the CPU
   finishes quickly, scaled per value (per pair for MMD):

   - fused profile pass (the kernel alone on row- and column-major data, with
     equal-mass, uniform and no histogram edges, and ``cudrift.profile`` of
     the device window end to end) on up to 1e8 x 32 float32, and the column
     kernel on a float64 column-major window under its register cap and
     uncapped (A/B),
   - categorical counts (int32 codes, 1,000 categories),
   - per-column sort and quantile summary, and one 1-D radix sort per column,
   - exact KS on all columns from the sorted columns (one batched launch
     computing only KS, with a cProfile in ``$OUT/ks_all.prof.txt``; one
     launch per column; and one batched launch of all five rank statistics),
   - MMD, 20,000 points per side, 100 permutations,
   - ``DriftDetector.compare`` at 1e7 x 64 (device window; host window column-major and C-ordered),
     with a cProfile of each written to ``$OUT/compare_*.prof.txt``; its NumPy path is also timed
     at that full size when the deadline leaves room, and the target is then judged on that time (the
     scaled figure stays in the row as ``gpu_vs_cpu_scaled``);

6. where a ``tritonserver`` and tritonclient are found (see
   ``benchmarks/README.md`` for carrying them to a lent machine), the drift
   monitor on a ``KIND_GPU`` instance: ``tests/test_triton_server.py``'s GPU
   case and the per-request overhead benchmark ``benchmarks/test_bench_triton.py``
   (p50 / p99 added latency, 500 requests of 256 x 32), logged to
   ``$OUT/triton.log`` (``--skip-triton``: not).

A watchdog (``--deadline``, default 480 s) prints what was measured and
exits 3 if a device call hangs, so a leased machine's time limit is kept.

Sizes shrink with the device's free memory. Targets reported (never
asserted): profile pass >= 70% of the copy rate; exact KS on all columns
<= 1.5x one radix sort of the window; MMD < 1 s; ``compare`` at 1e7 x 64
>= 50x the NumPy path. The table is printed and written as JSON to
``--out`` (default ``gpu_check.json``) and, when ``$OUT`` is set, to
``$OUT/gpu_check.json`` as well.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import importlib.util
import json
import threading
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

# The kernels run on the device, not in Numba's simulator (unless --emulate,
# see _emulate); this has to be decided before anything imports Numba.
os.environ["NUMBA_ENABLE_CUDASIM"] = "0"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TARGET_PROFILE_FRACTION = 0.70
TARGET_KS_OVER_SORT = 1.5
TARGET_MMD_SECONDS = 1.0
TARGET_COMPARE_RATIO = 50.0


# ------------------------------------------------------------------ plan


def plan(quick: bool, free_bytes: float, tiny: bool = False) -> dict:
    """Sizes of every measurement, shrunk to the free device memory.

    Parameters
    ----------
    quick
        Smaller sizes and only the backend's own GPU tests (about 2 minutes).
    free_bytes
        Free device memory in bytes.
    tiny
        Sizes the Numba simulator runs in seconds (``--emulate``); the
        structure is the same, so every step still runs.

    Returns
    -------
    dict
        Rows and columns per measurement and the CPU baseline sizes.
    """
    if tiny:
        return {
            "quick": quick, "tiny": True, "copy_bytes": 1 << 16,
            "profile": {"rows": 64, "cols": 4, "bins": 20},
            "categorical": {"rows": 64, "cols": 3, "categories": 20},
            "window": {"rows": 100, "cols": 3},
            "mmd": {"points_per_side": 60, "permutations": 5, "cpu_points_per_side": 40},
            "compare": {"rows": 100, "cols": 3, "cpu_rows": 100},
            "cpu": {"rows": 300},
            "pytest": {"args": [], "timeout_s": 0},
        }

    def fit(rows: int, cols: int, bytes_per_value: float, share: float) -> int:
        most = int(share * free_bytes / (cols * bytes_per_value))
        return max(1 << 16, min(rows, most))

    profile_rows = fit(25_000_000 if quick else 100_000_000, 32, 4, 0.3)
    window_rows = fit(2_500_000 if quick else 10_000_000, 32, 4 + 8 + 4 + 8, 0.5)
    compare_rows = fit(2_500_000 if quick else 10_000_000, 64, 4 + 8 + 4 + 4 + 8, 0.5)
    cpu_rows = 250_000 if quick else 1_000_000
    return {
        "quick": quick,
        "copy_bytes": int(min(4 << 30, 0.2 * free_bytes)),
        "profile": {"rows": profile_rows, "cols": 32, "bins": 100},
        "categorical": {"rows": profile_rows, "cols": 16, "categories": 1000},
        "window": {"rows": window_rows, "cols": 32},
        "mmd": {"points_per_side": 20_000, "permutations": 100, "cpu_points_per_side": 2_000},
        "compare": {"rows": compare_rows, "cols": 64, "cpu_rows": cpu_rows // 4 if quick else cpu_rows},
        "cpu": {"rows": cpu_rows},
        "pytest": {
            # the backend's tests, and every kernel test module on the device
            # (they run in the simulator elsewhere; NUMBA_ENABLE_CUDASIM=0 moves them here)
            "args": ["-q", "--tb=short", "-rfEs", "tests/test_gpu_backend.py", "tests/test_kernels_gpu.py",
                     "tests/test_stats_backend.py"]
            + ([] if quick else sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_kernels_*.py")
                                       if p.name != "test_kernels_gpu.py")),
            "timeout_s": 120 if quick else 180,
        },
    }


# ------------------------------------------------------------------ bookkeeping


class Report:
    """Results of the run, rewritten to JSON after every step."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.data: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": {}, "benchmarks": []}
        self.t0 = time.perf_counter()
        self.deadline: float | None = None  # seconds from t0 at which the watchdog stops the run

    def seconds_left(self) -> float:
        """Seconds before the watchdog (infinite without one)."""
        return math.inf if self.deadline is None else self.deadline - (time.perf_counter() - self.t0)

    def step(self, name: str, fn, *args, **kwargs):
        """Run one step; a failure is recorded with its traceback and the run goes on."""
        t = time.perf_counter()
        print(f"--- {name}", flush=True)
        try:
            out = fn(*args, **kwargs)
            self.data["steps"][name] = {"ok": True, "seconds": round(time.perf_counter() - t, 3)}
            return out
        except BaseException as exc:  # noqa: BLE001 - one shot on the GPU: record and go on
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.format_exc()
            print(tb, flush=True)
            self.data["steps"][name] = {
                "ok": False, "seconds": round(time.perf_counter() - t, 3),
                "error": f"{type(exc).__name__}: {exc}", "traceback": tb[-4000:],
            }
            return None
        finally:
            self.save()

    def bench(self, row: dict) -> None:
        self.data["benchmarks"].append(row)
        self.save()

    def save(self) -> None:
        self.data["total_seconds"] = round(time.perf_counter() - self.t0, 2)
        text = json.dumps(self.data, indent=2, default=str)
        for p in self.paths:
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
            except OSError as exc:
                print(f"could not write {p}: {exc}", flush=True)


def _versions() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("scipy", "pyarrow", "cupy", "numba", "numba_cuda", "pynvml", "cudf", "cudrift"):
        try:
            m = importlib.import_module(mod)
            out[mod] = getattr(m, "__version__", "?")
        except Exception as exc:  # noqa: BLE001 - a missing library is a finding, not a failure
            out[mod] = f"not importable: {type(exc).__name__}: {exc}"
    return out


def _card() -> dict:
    import pynvml

    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(h)
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {
            "name": name.decode() if isinstance(name, bytes) else name,
            "memory_total_gib": round(mem.total / 2**30, 2),
            "memory_free_gib": round(mem.free / 2**30, 2),
            "driver": driver.decode() if isinstance(driver, bytes) else driver,
            "device_count": pynvml.nvmlDeviceGetCount(),
        }
    finally:
        pynvml.nvmlShutdown()


# ------------------------------------------------------------------ steps


def run_pytest(args: list[str], timeout_s: int, *, log: str = "gpu_tests.log", workers: bool = True,
               env_extra: dict | None = None) -> dict:
    """The GPU tests in a subprocess (kernels on the device); counts parsed from pytest's summary line.

    The whole output is appended to ``$OUT/<log>``; ``workers=False``
    runs without xdist (pytest-benchmark times nothing under xdist).
    """
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", **(env_extra or {}))
    extra = []
    if workers and importlib.util.find_spec("xdist") is not None:
        # Numba compiles each kernel per process: spread the tests (and the compiles) over a few workers.
        extra += ["-n", str(max(1, min(8, (os.cpu_count() or 2) // 2)))]
    if importlib.util.find_spec("pytest_timeout") is not None:
        extra += ["--timeout", str(max(30, timeout_s // 2))]
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra, *args]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        # SIGINT first: pytest then runs the fixtures' teardown, which stops
        # any Triton server a test started (it runs in a session of its own)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        out = (out or "") + f"\n[gpu_check] pytest stopped after {timeout_s} s"
        rc = None
    counts = {k: 0 for k in ("passed", "failed", "skipped", "errors", "deselected", "xfailed")}
    summary = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", ln)]
    if summary:
        for num, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed)", summary[-1]):
            counts["errors" if word.startswith("error") else word] = int(num)
    print(summary[-1] if summary else out[-2000:], flush=True)
    if os.environ.get("OUT"):
        try:
            with open(Path(os.environ["OUT"], log), "a") as fh:
                fh.write(f"$ {' '.join(cmd)}\n{out}\n")
        except OSError as exc:
            print(f"could not write the test log: {exc}", flush=True)
    return {"command": " ".join(cmd), "returncode": rc, "seconds": round(time.perf_counter() - t, 1),
            **counts, "tail": out[-6000:]}


def run_triton(timeout_s: int) -> dict:
    """The drift monitor on a ``KIND_GPU`` Triton instance: its server test and its overhead benchmark.

    Needs a ``tritonserver`` (:func:`cudrift.integrations.triton.local_server.find_tritonserver`:
    the nvidia-pytriton wheel, or ``CUDRIFT_TRITONSERVER``) and tritonclient;
    skipped with the reason otherwise. Both runs append to ``$OUT/triton.log``;
    the benchmark's summary lines (p50 / p99 added latency, rows per second)
    are returned.
    """
    from cudrift.integrations.triton.local_server import find_tritonserver

    install, why = find_tritonserver()
    if install is None:
        return {"skipped": f"no Triton server: {why}"}
    if importlib.util.find_spec("tritonclient") is None:
        return {"skipped": "tritonclient is not importable"}
    # Past its limit a run is interrupted (SIGINT), so its fixtures still stop the
    # server, which runs in a process group of its own.
    test = run_pytest(["-q", "--tb=short", "-rfEs", "tests/test_triton_server.py", "-k", "gpu"], timeout_s,
                      log="triton.log", workers=False)
    bench = run_pytest(["-q", "-rfEs", "benchmarks/test_bench_triton.py", "-k", "gpu", "--benchmark-only"],
                       timeout_s, log="triton.log", workers=False,
                       env_extra={"CUDRIFT_BENCH_TRITON_REQUESTS": "500"})
    figures = [ln.strip() for ln in bench["tail"].splitlines() if ln.strip().startswith("triton [gpu]")]
    return {"server_test": {k: test[k] for k in ("passed", "failed", "skipped", "errors", "returncode")},
            "benchmark": {k: bench[k] for k in ("passed", "failed", "skipped", "errors", "returncode")},
            "figures": figures}


#: At most this many runs per timing (``--emulate``: 1); None: as each step asks.
REPEAT_CAP: int | None = None


def _repeats(repeat: int) -> range:
    return range(min(repeat, REPEAT_CAP or repeat))


def _timed(fn, repeat: int = 3) -> float:
    """Best wall time of ``fn`` over ``repeat`` runs (fn synchronizes itself)."""
    best = math.inf
    for _ in _repeats(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _gpu_timed(cupy, fn, repeat: int = 3) -> float:
    """Best device time of ``fn`` between two events on the current stream."""
    best = math.inf
    for _ in _repeats(repeat):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        best = min(best, cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return best


def copy_rate(cupy, nbytes: int) -> dict:
    """Device-to-device copy: (read + write bytes) per second of ``dst[...] = src``."""
    n = nbytes // 4
    src = cupy.ones(n, dtype=np.float32)
    dst = cupy.empty_like(src)
    cupy.copyto(dst, src)
    sec = _gpu_timed(cupy, lambda: cupy.copyto(dst, src), repeat=5)
    return {"bytes": n * 4, "seconds": sec, "gb_per_s": 2 * n * 4 / sec / 1e9}


def _row(name, size, gpu_s, *, bytes_read=None, copy_gbs=None, cpu_s=None, target=None, met=None, **extra):
    row = {"name": name, "size": size, "gpu_seconds": gpu_s}
    if bytes_read is not None:
        row["gb_per_s"] = bytes_read / gpu_s / 1e9
        if copy_gbs:
            row["copy_fraction"] = row["gb_per_s"] / copy_gbs
    if cpu_s is not None:
        row["cpu_seconds"] = cpu_s  # scaled from a smaller size unless the row says cpu_timed_at_full_size
        row["gpu_vs_cpu"] = cpu_s / gpu_s
    if target is not None:
        row["target"] = target
        row["met"] = met
    row.update(extra)
    return row


def bench_profile(rep: Report, cupy, p: dict, copy_gbs: float | None) -> None:
    """Fused profile kernel alone and ``cudrift.profile`` end to end, against the CPU profile pass."""
    import cudrift
    from cudrift.backends import _gpu
    from cudrift.backends import _gpu_host as gh
    from numba import cuda

    from cudrift.kernels import _launch
    from cudrift.kernels import profile as kp
    from cudrift.kernels._host import float32_edges
    from cudrift.kernels.profile import launch_profile, profile_outputs
    from cudrift.sketches.histogram import equal_mass_edges

    rows, cols, bins = p["profile"]["rows"], p["profile"]["cols"], p["profile"]["bins"]
    names = [f"f{j:02d}" for j in range(cols)]
    rng = np.random.default_rng(7)
    ref_host = rng.normal(size=(p["cpu"]["rows"], cols)).astype(np.float32)
    ref = cudrift.profile(ref_host, columns=names, backend="cpu")
    edges = equal_mass_edges(np.sort(ref_host[:, 0]).astype(np.float64), bins)
    x = cupy.random.standard_normal((rows, cols), dtype=np.float32)
    nt = _launch.threads_per_block()
    # edges on the device once per kind: equal-mass (the cell table), uniform (closed-form bin), none
    # (and their float32 comparison edges, as the backend passes them for float32 windows)
    edge_sets = {
        label: [cupy.asarray(a) for a in packed] + [cupy.asarray(float32_edges(packed[0]))]
        for label, packed in (("equal-mass", gh.pack_edges([edges] * cols)),
                              ("uniform edges", gh.pack_edges([np.linspace(-4.0, 4.0, bins + 1)] * cols)),
                              ("no histogram", gh.pack_edges([None] * cols)))
    }

    def kernel(data, row_major, dev, f32=True, interleave=None):
        n = data.shape[1]
        rb = _launch.row_blocks(data.shape[0], n, nt, row_major=row_major)
        out = profile_outputs(n, dev[0].shape[1], rb, cupy.full)
        # the default stream, where _gpu_timed records its events
        launch_profile(*(_gpu._arg(a) for a in (data, *dev[:3])), **{k: _gpu._arg(v) for k, v in out.items()},
                       edges32=_gpu._arg(dev[3]) if f32 else None, threads=nt, interleave=interleave, stream=0)
        return out

    nbytes = rows * cols * 4
    cpu_x = rng.normal(size=(p["cpu"]["rows"], cols)).astype(np.float32)
    t_cpu = _timed(lambda: cudrift.profile(cpu_x, columns=names, like=ref, backend="cpu"), repeat=2)
    scale = rows / p["cpu"]["rows"]
    cpu = {"cpu_s": t_cpu * scale,
           "cpu_note": f"cudrift.profile(like=ref, backend='cpu') at {p['cpu']['rows']:,} rows, scaled per value"}
    # the same values column-major: the column mapping
    xf = cupy.asfortranarray(x)
    for data, row_major, label in ((xf, False, "column-major"), (x, True, "row-major")):
        dev = edge_sets["equal-mass"]
        kernel(data, row_major, dev)
        t = _gpu_timed(cupy, lambda: kernel(data, row_major, dev), repeat=3)
        rep.bench(_row(f"fused profile pass (kernel, {label} float32)", f"{rows:,} x {cols}", t,
                       bytes_read=nbytes, copy_gbs=copy_gbs,
                       target=f">= {TARGET_PROFILE_FRACTION:.0%} of the copy rate",
                       met=bool(copy_gbs is not None and nbytes / t / 1e9 >= TARGET_PROFILE_FRACTION * copy_gbs),
                       **(cpu if row_major else {})))
    del xf  # (the loop left `data` on the row-major window)
    # (Retired on 2026-11-27, answered by the eleventh session's card run: float32 against float64 binning, 1.49x;
    # the interleaved slab layouts against column after column, 5% at 32 columns, none at 8; the column
    # kernel's 32 per-lane copies, 1-1.5% slower. RESULTS.md has the figures.)
    # A/B in this process: the column kernel under its register cap (the library's, COLUMNS_MAX_REGISTERS,
    # since 2026-11-27) and uncapped, on a float64 column-major window (pandas' dtype; host windows are staged
    # column-major): ptxas fits the float32 build in 62 registers with no spill, but the float64 one spills at
    # the cap (109 registers uncapped), untimed until this row; histograms checked equal
    x64 = cupy.asfortranarray(x[: rows // 2].astype(np.float64))
    dev = edge_sets["equal-mass"]
    nbytes64 = x64.shape[0] * cols * 8
    capped = kp.profile_kernel
    times = {}
    hists = {}
    for label, compiled in (("capped at 64 (library)", capped), ("uncapped (A/B)", cuda.jit(capped.py_func))):
        kp.profile_kernel = compiled
        try:
            hists[label] = cupy.asnumpy(kernel(x64, False, dev, f32=False)["hist"])
            times[label] = _gpu_timed(cupy, lambda: kernel(x64, False, dev, f32=False), repeat=3)
        finally:
            kp.profile_kernel = capped
    same = all((h == hists["capped at 64 (library)"]).all() for h in hists.values())
    for label, t in times.items():
        rep.bench(_row(f"fused pass, column-major float64, column kernel {label}", f"{x64.shape[0]:,} x {cols}", t,
                       bytes_read=nbytes64, copy_gbs=copy_gbs,
                       note=f"histogram {'equal' if same else 'DIFFERENT'} between the two"))
    x64 = None  # (6.4 GB of device memory at the card size)
    # The same pass over uniform edges (the closed-form bin) and with no histogram: where the time goes.
    for label in ("uniform edges", "no histogram"):
        dev = edge_sets[label]
        kernel(x, True, dev)
        t = _gpu_timed(cupy, lambda: kernel(x, True, dev), repeat=3)
        rep.bench(_row(f"fused profile pass (kernel, row-major, {label})", f"{rows:,} x {cols}", t,
                       bytes_read=nbytes, copy_gbs=copy_gbs))
    # The pass without a histogram took 11.0 ms on an H200 when the kernel was compiled for float64 edges
    # only, 15.9 ms since float32 binning (2026-11-27): the same launch on the float64-edge compile
    dev = edge_sets["no histogram"]
    kernel(x, True, dev, f32=False)
    t = _gpu_timed(cupy, lambda: kernel(x, True, dev, f32=False), repeat=3)
    rep.bench(_row("fused pass, row-major, no histogram, float64-edge compile", f"{rows:,} x {cols}", t,
                   bytes_read=nbytes, copy_gbs=copy_gbs))
    t_end = _timed(lambda: cudrift.profile(x, columns=names, like=ref, backend="gpu"), repeat=2)
    rep.bench(_row("cudrift.profile(device window, like=ref) end to end", f"{rows:,} x {cols}", t_end,
                   bytes_read=nbytes, copy_gbs=copy_gbs, cpu_s=cpu["cpu_s"],
                   note="profile kernel + per-column radix sort, quantile summary and sample"))


def bench_categorical(rep: Report, cupy, p: dict, copy_gbs: float | None) -> None:
    from cudrift.backends import _gpu
    from cudrift.kernels.categorical import launch_categorical
    from cudrift.sketches.categorical import count_categories

    rows, cols, k = p["categorical"]["rows"], p["categorical"]["cols"], p["categorical"]["categories"]
    codes = cupy.random.randint(0, k, size=(rows, cols), dtype=np.int32)
    n_cat = cupy.full(cols, k, dtype=np.int64)

    def kernel():
        counts = cupy.zeros((cols, k), dtype=np.int64)
        other = cupy.zeros((cols, 2), dtype=np.int64)
        launch_categorical(_gpu._arg(codes), _gpu._arg(n_cat), _gpu._arg(counts), _gpu._arg(other))

    kernel()
    t = _gpu_timed(cupy, kernel)
    host = np.random.default_rng(3).integers(0, k, size=(p["cpu"]["rows"], cols)).astype(np.int32)
    t_cpu = _timed(lambda: [count_categories(np.ascontiguousarray(host[:, j])) for j in range(cols)], repeat=2)
    rep.bench(_row("categorical counts (kernel, int32 codes)", f"{rows:,} x {cols}, {k} categories", t,
                   bytes_read=rows * cols * 4, copy_gbs=copy_gbs, cpu_s=t_cpu * rows / p["cpu"]["rows"],
                   cpu_note="count_categories (np.unique) per column, scaled per value"))


def bench_window(rep: Report, cupy, p: dict, copy_gbs: float | None) -> None:
    """Per-column sort + quantile summary, one radix sort per column, exact KS on all columns."""
    from cudrift.backends import _gpu
    from cudrift.backends import _gpu_host as gh
    from cudrift.backends._gpu_summary import sorted_summaries, sorted_summary
    from cudrift.kernels import _host
    from cudrift.sketches.quantiles import _summarize_sorted
    from cudrift.stats import ks_2samp_sorted

    rows, cols = p["window"]["rows"], p["window"]["cols"]
    cur = cupy.random.standard_normal((rows, cols), dtype=np.float32)
    cur = cupy.asfortranarray(cur)  # columnar, as a cuDF frame or Arrow table holds it
    # The sorted reference as the detector keeps it: float64 columns in one allocation.
    ref_flat = cupy.random.standard_normal(rows * cols, dtype=np.float64) * 1.01
    ref_sorted = [ref_flat[j * rows : (j + 1) * rows] for j in range(cols)]
    for r in ref_sorted:
        r.sort()

    def radix_sorts():
        out = []
        for j in range(cols):
            s = cur[:, j].copy()
            s.sort()
            out.append(s)
        return out

    radix_sorts()
    t_sort = _gpu_timed(cupy, radix_sorts)

    with _gpu._section() as dev:
        ops = _gpu._Ops(dev)

        def sort_and_sketch(batched=True):
            # as the profile pass does it: columns sorted into one allocation,
            # one summary launch for all (batched) or one per column (before)
            flat = cupy.empty(rows * cols, dtype=np.float32)
            out = []
            for j in range(cols):
                s = flat[j * rows : (j + 1) * rows]
                _gpu._SORT_KEY(cur[:, j], s)
                s.sort()
                if not batched:
                    sorted_summary(s, 2048, ops)
                out.append(s)
            if batched:
                sorted_summaries(flat, np.arange(cols) * rows, np.full(cols, rows), 2048, ops)
            return out

        sort_and_sketch()
        t_sketch = _timed(sort_and_sketch, repeat=2)
        sort_and_sketch(False)
        t_sketch_cols = _timed(lambda: sort_and_sketch(False), repeat=2)
    # The sorted window as the profile pass leaves it: one allocation.
    cur_flat = cupy.empty(rows * cols, dtype=np.float32)
    cur_sorted = [cur_flat[j * rows : (j + 1) * rows] for j in range(cols)]
    for j, s in enumerate(cur_sorted):
        s[...] = cur[:, j]
        s.sort()

    ks_want = gh.rank_want(["ks"])  # what the detector asks for a KS column: no CvM / AD / distance sums

    def ks_all(want=None):
        # as the detector does it: one batched launch, the p-values in one SciPy call
        for rs, pvalue in _gpu.rank_tests_many(list(zip(ref_sorted, cur_sorted)), ["ks"] * cols, want=want):
            gh.finish_rank_test("ks", rs, rows, rows, ks_pvalue=pvalue)

    def ks_per_column():
        for j in range(cols):
            gh.finish_rank_test("ks", _gpu.rank_statistics(ref_sorted[j], cur_sorted[j], ks_want), rows, rows)

    ks_all()
    t_ks = _timed(ks_all, repeat=3)
    ks_all(_host.WANT_ALL)
    t_ks_every = _timed(lambda: ks_all(_host.WANT_ALL), repeat=2)
    _profile_calls(rep, "ks_all", ks_all)
    ks_per_column()
    t_ks_cols = _timed(ks_per_column, repeat=2)
    n_cpu = p["cpu"]["rows"]
    rng = np.random.default_rng(5)
    a = np.sort(rng.normal(size=n_cpu))
    b = np.sort(rng.normal(size=n_cpu).astype(np.float32))
    t_cpu_sketch = _timed(lambda: _summarize_sorted(np.sort(rng.normal(size=n_cpu).astype(np.float32)), 2048), 2)
    t_cpu_ks = _timed(lambda: ks_2samp_sorted(a, b.astype(np.float64)), 2)
    scale = rows / n_cpu
    size = f"{rows:,} x {cols} float32"
    rep.bench(_row("one 1-D radix sort per column (cupy ndarray.sort)", size, t_sort,
                   bytes_read=rows * cols * 4, copy_gbs=copy_gbs))
    rep.bench(_row("per-column sort + quantile summary", size, t_sketch, bytes_read=rows * cols * 4,
                   copy_gbs=copy_gbs, cpu_s=t_cpu_sketch * cols * scale,
                   cpu_note="np.sort + _summarize_sorted per column, scaled per value",
                   note="one summary launch for all columns (sorted_summaries)"))
    rep.bench(_row("per-column sort + quantile summary, one summary launch per column", size, t_sketch_cols,
                   bytes_read=rows * cols * 4, copy_gbs=copy_gbs, note="before batching: sorted_summary per column"))
    rep.bench(_row("exact KS, one launch per column", size, t_ks_cols, ks_over_sort=t_ks_cols / t_sort))
    rep.bench(_row("all five rank statistics, one batched launch", size, t_ks_every,
                   ks_over_sort=t_ks_every / t_sort, note="KS, Wasserstein, energy, CvM, Anderson-Darling sums"))
    rep.bench(_row("exact KS on all columns (sorted reference on the device)", size, t_ks,
                   cpu_s=t_cpu_ks * cols * scale, ks_over_sort=t_ks / t_sort,
                   target=f"<= {TARGET_KS_OVER_SORT}x one radix sort of the window",
                   met=bool(t_ks <= TARGET_KS_OVER_SORT * t_sort),
                   cpu_note="ks_2samp_sorted per column (merge-free fast path), scaled per value"))


def bench_mmd(rep: Report, cupy, p: dict) -> None:
    from cudrift.backends import _gpu
    from cudrift.stats import mmd as cpu_mmd

    n, perms, n_cpu = p["mmd"]["points_per_side"], p["mmd"]["permutations"], p["mmd"]["cpu_points_per_side"]
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=n), rng.normal(0.05, size=n)
    _gpu.mmd(x[:200], y[:200], n_permutations=perms)
    t = _timed(lambda: _gpu.mmd(x, y, n_permutations=perms), repeat=2)
    xs, ys = x[:n_cpu], y[:n_cpu]
    t_cpu = _timed(lambda: cpu_mmd(xs, ys, n_permutations=perms), repeat=1)
    g_small, c_small = _gpu.mmd(xs, ys, n_permutations=perms), cpu_mmd(xs, ys, n_permutations=perms)
    rep.bench(_row(f"MMD, RBF, {perms} permutations (1 feature)", f"{n:,} per side", t,
                   cpu_s=t_cpu * (n / n_cpu) ** 2, target=f"< {TARGET_MMD_SECONDS} s", met=bool(t < TARGET_MMD_SECONDS),
                   cpu_note=f"cudrift.stats.mmd at {n_cpu:,} per side, scaled by pairs",
                   agreement={"statistic_rel_diff": abs(g_small.statistic - c_small.statistic)
                              / max(abs(c_small.statistic), 1e-300),
                              "same_pvalue": g_small.pvalue == c_small.pvalue}))


def _profile_calls(rep: Report, name: str, fn) -> None:
    """Where the host time of one call goes (cProfile, top functions by own time); to ``$OUT/<name>.prof.txt``."""
    import cProfile
    import io
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(30)
    text = buf.getvalue()
    rep.data.setdefault("call_profiles", {})[name] = text[:8000]
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], f"{name}.prof.txt").write_text(text)


def bench_compare(rep: Report, cupy, p: dict, copy_gbs: float | None) -> None:
    from cudrift import DriftDetector

    rows, cols, n_cpu = p["compare"]["rows"], p["compare"]["cols"], p["compare"]["cpu_rows"]
    names = [f"f{j:02d}" for j in range(cols)]
    ref = cupy.asfortranarray(cupy.random.standard_normal((rows, cols), dtype=np.float32))
    cur = cupy.asfortranarray(cupy.random.standard_normal((rows, cols), dtype=np.float32))
    cur[:, : cols // 2] += 0.1
    budget = 1 << 40
    t = time.perf_counter()
    det = DriftDetector(ref, columns=names, backend="gpu", memory_budget=budget)
    t_build = time.perf_counter() - t
    det.compare(cur, columns=names)
    t_dev = _timed(lambda: det.compare(cur, columns=names), repeat=2)
    cur_host = np.asfortranarray(cupy.asnumpy(cur))
    det.compare(cur_host, columns=names)
    t_host = _timed(lambda: det.compare(cur_host, columns=names), repeat=2)
    from cudrift.backends import _gpu

    # the same values C-ordered (rows of a NumPy matrix, as most callers hold them): columns grouped by whole
    # cache lines (_gpu_host.row_neighbours), each group's staged a row block at a time (_gpu_host.row_block);
    # A/B: grouped by the byte budget alone, as before (0.890 s on an H200 on 2026-11-27, 1.295 s column by
    # column before that)
    cur_rows = np.ascontiguousarray(cur_host)
    t_host_rows = _timed(lambda: det.compare(cur_rows, columns=names), repeat=2)
    neighbours = _gpu.gh.row_neighbours
    _gpu.gh.row_neighbours = lambda columns: [0] * len(columns)
    try:
        t_host_rows_before = _timed(lambda: det.compare(cur_rows, columns=names), repeat=2)
    finally:
        _gpu.gh.row_neighbours = neighbours
    cur_rows = None  # (2.6 GB of host memory at the card size)
    # A/B in the same process: every host column staged and launched alone, as before grouping

    grouped = _gpu.GROUP_BYTES
    _gpu.GROUP_BYTES = 0
    try:
        t_host_alone = _timed(lambda: det.compare(cur_host, columns=names), repeat=2)
    finally:
        _gpu.GROUP_BYTES = grouped
    rng = np.random.default_rng(13)
    ref_c = np.asfortranarray(rng.normal(size=(n_cpu, cols)).astype(np.float32))
    cur_c = np.asfortranarray(rng.normal(size=(n_cpu, cols)).astype(np.float32))
    det_c = DriftDetector(ref_c, columns=names, backend="cpu", memory_budget=budget)
    t_cpu = _timed(lambda: det_c.compare(cur_c, columns=names), repeat=2) * rows / n_cpu
    rep_g = det.compare(cur_host[:n_cpu], columns=names)
    _profile_calls(rep, "compare_device", lambda: det.compare(cur, columns=names))
    _profile_calls(rep, "compare_host", lambda: det.compare(cur_host, columns=names))
    size = f"{rows:,} x {cols} float32"
    common = {"exact": bool(det.is_exact), "tests": sorted({f.test for f in rep_g.features if f.test}),
              "detector_build_seconds": t_build}
    # Every row is written first on the scaled figure, so that a watchdog stop in what follows loses none.
    scaled_note = f"DriftDetector(backend='cpu').compare at {n_cpu:,} rows, scaled per value"
    gpu_rows = [
        _row("DriftDetector.compare, device window (policy=auto)", size, t_dev, bytes_read=rows * cols * 4,
             copy_gbs=copy_gbs, cpu_s=t_cpu, target=f">= {TARGET_COMPARE_RATIO:g}x the NumPy path",
             met=bool(t_cpu / t_dev >= TARGET_COMPARE_RATIO), **common),
        _row("DriftDetector.compare, host window (pinned streaming)", size, t_host, bytes_read=rows * cols * 4,
             cpu_s=t_cpu, target=f">= {TARGET_COMPARE_RATIO:g}x the NumPy path",
             met=bool(t_cpu / t_host >= TARGET_COMPARE_RATIO), note=f"columns staged in groups of {grouped >> 20} MiB"),
        _row("DriftDetector.compare, host window, C-ordered", size, t_host_rows, bytes_read=rows * cols * 4,
             cpu_s=t_cpu, note="a C-ordered matrix: columns grouped by whole cache lines, each group's staged a "
                               "block of rows at a time"),
        _row("DriftDetector.compare, host window, C-ordered, grouped by budget (before)", size, t_host_rows_before,
             bytes_read=rows * cols * 4, cpu_s=t_cpu, note="the same C-ordered matrix, its columns grouped by "
                                                          "GROUP_BYTES alone"),
        _row("DriftDetector.compare, host window, one column per group", size, t_host_alone,
             bytes_read=rows * cols * 4, cpu_s=t_cpu,
             note="GROUP_BYTES = 0: isolates grouping; the staging thread still overlaps the copies"),
    ]
    for r in gpu_rows:
        r.update(cpu_note=scaled_note, cpu_timed_at_full_size=False, gpu_vs_cpu_scaled=r["gpu_vs_cpu"])
        rep.bench(r)
    # The target is stated at this size, where the NumPy path sorts 10x longer columns out of cache than at
    # n_cpu rows: timed here too when the deadline leaves room (its detector's build sorts every reference
    # column, about a compare's work, so about 3.5x the scaled figure in all), and the rows then judged on
    # it; best of two when there is time for a second.
    det = None  # (the GPU detector's device reference: memory the CPU run does not need)
    if rep.seconds_left() < 3.5 * t_cpu + 30:
        why = f"{rep.seconds_left():.0f} s left before the deadline, under the {3.5 * t_cpu + 30:.0f} s it needs"
        for r in gpu_rows:
            r["cpu_note"] += f" (not timed at this size: {why})"
        rep.save()
        return
    try:
        ref_host = np.asfortranarray(cupy.asnumpy(ref))
        ref = None
        t = time.perf_counter()
        det_full = DriftDetector(ref_host, columns=names, backend="cpu", memory_budget=budget)
        t_build_cpu = time.perf_counter() - t
        full = _timed(lambda: det_full.compare(cur_host, columns=names), repeat=1)
        timed = 1
        if rep.seconds_left() > 1.5 * full + 20:
            full = min(full, _timed(lambda: det_full.compare(cur_host, columns=names), repeat=1))
            timed = 2
    except Exception as exc:  # noqa: BLE001 - the GPU rows stand on the scaled figure; say why
        for r in gpu_rows:
            r["cpu_note"] += f" (timing it at this size failed: {type(exc).__name__}: {exc})"
        rep.save()
        return
    det_full = ref_host = None
    rep.bench(_row("DriftDetector.compare, NumPy path at the compare rows' size", size, full,
                   note=f"the CPU path itself (its seconds in the GPU s column), best of {timed}; its detector's "
                        f"build {t_build_cpu:.1f} s"))
    for r in gpu_rows:
        r.update(cpu_seconds=full, gpu_vs_cpu=full / r["gpu_seconds"], cpu_timed_at_full_size=True,
                 cpu_note=f"DriftDetector(backend='cpu').compare timed at this size, best of {timed} "
                          f"({scaled_note}: {t_cpu:.3f} s)")
        if "target" in r:
            r["met"] = bool(r["gpu_vs_cpu"] >= TARGET_COMPARE_RATIO)
    rep.save()


# ------------------------------------------------------------------ output


def _watchdog(rep: "Report", seconds: float) -> None:
    """After ``seconds``, print every thread's stack, the results so far and the table, and exit 3.

    A hung device call cannot be interrupted from Python; this keeps a run
    inside a lease's time limit with its results written.
    """
    def fire():
        print(f"\n[gpu_check] deadline of {seconds:.0f} s reached; stacks of all threads:", flush=True)
        faulthandler.dump_traceback(all_threads=True)
        rep.data["deadline_reached"] = seconds
        rep.save()
        print(f"card: {rep.data.get('card')}")
        print(table(rep.data["benchmarks"], rep.data.get("copy")), flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()



def table(rows: list[dict], copy: dict | None) -> str:
    head = f"{'measurement':<58} {'size':<28} {'GPU s':>9} {'GB/s':>8} {'of copy':>8} {'CPU s':>9} {'GPU/CPU':>9}  target"
    lines = [head, "-" * len(head)]
    if copy:
        lines.append(f"{'device-to-device copy (read + write)':<58} {copy['bytes']/2**30:.1f} GiB{'':<20} "
                     f"{copy['seconds']:9.4f} {copy['gb_per_s']:8.0f} {'1.00':>8}")

    def fmt(v, f):
        width = int(f.split(".")[0])
        return format(v, f) if isinstance(v, (int, float)) and not isinstance(v, bool) else "-".rjust(width)

    for r in rows:
        target = ""
        if "target" in r:
            target = f"{r['target']}: {'met' if r['met'] else 'NOT met'}"
        ratio = f"{r['gpu_vs_cpu']:.1f}x" if "gpu_vs_cpu" in r else "-"
        lines.append(f"{r['name'][:58]:<58} {r['size'][:28]:<28} {fmt(r['gpu_seconds'], '9.4f')} "
                     f"{fmt(r.get('gb_per_s'), '8.0f')} {fmt(r.get('copy_fraction'), '8.2f')} "
                     f"{fmt(r.get('cpu_seconds', r.get('cpu_seconds_scaled')), '9.3f')} {ratio:>9}  {target}")
    return "\n".join(lines)


def _emulate() -> None:
    """Install the NumPy stand-in for CuPy (``tests/fake_cupy.py``) with the kernels in Numba's simulator; time once."""
    global REPEAT_CAP
    if "numba" in sys.modules:
        raise RuntimeError("--emulate must be decided before Numba is imported")
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    sys.path.insert(0, str(ROOT / "tests"))
    import fake_cupy

    fake_cupy.install()
    REPEAT_CAP = 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu_check.json", help="JSON output path (default gpu_check.json)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes and only the backend's GPU tests (~2 min)")
    ap.add_argument("--dry-run", action="store_true", help="check imports and arguments, print the plan; no GPU needed")
    ap.add_argument("--emulate", action="store_true",
                    help="no GPU needed: every benchmark step at tiny sizes, CuPy emulated by NumPy and the kernels "
                         "in Numba's simulator (checks the script, not the card; implies --skip-tests --skip-triton)")
    ap.add_argument("--skip-tests", action="store_true", help="do not run the GPU tests")
    ap.add_argument("--skip-triton", action="store_true",
                    help="do not run the monitor on a KIND_GPU Triton instance (it runs only where a "
                         "tritonserver is found)")
    ap.add_argument("--deadline", type=float, default=None,
                    help="seconds after which the check prints what it has and exits 3, whatever is still running "
                         "(default 480; 240 with --quick)")
    ap.add_argument("--assume-free-gib", type=float, default=78.0,
                    help="free device memory assumed by --dry-run's plan (default 78)")
    args = ap.parse_args(argv)

    paths = [Path(args.out)]
    if os.environ.get("OUT"):
        out_dir = Path(os.environ["OUT"])
        if (out_dir / "gpu_check.json").resolve() != paths[0].resolve():
            paths.append(out_dir / "gpu_check.json")

    if args.dry_run:
        from cudrift.backends import gpu_status  # the package itself must import

        versions = _versions()
        p = plan(args.quick, args.assume_free_gib * 2**30)
        print(json.dumps({"dry_run": True, "versions": versions, "gpu_status": list(gpu_status()), "plan": p,
                          "steps": ["card", "pytest", "warm_up", "copy_rate", "profile", "categorical", "window",
                                    "mmd", "compare", "triton"], "out": [str(x) for x in paths]}, indent=2))
        return 0

    if args.emulate:
        _emulate()
        args.skip_tests = args.skip_triton = True
    rep = Report(paths)
    rep.data["emulated"] = args.emulate
    deadline = args.deadline if args.deadline is not None else (240 if args.quick else 480)
    rep.deadline = deadline
    _watchdog(rep, deadline)
    rep.data["versions"] = rep.step("versions", _versions)
    rep.data["card"] = {"name": "emulated (tests/fake_cupy.py)"} if args.emulate else rep.step("card", _card)
    cupy = rep.step("import_cupy", importlib.import_module, "cupy")
    free = rep.step("free_memory", lambda: float(cupy.cuda.runtime.memGetInfo()[0])) if cupy else None
    p = plan(args.quick, free or 8 * 2**30, tiny=args.emulate)
    rep.data["plan"] = p
    from cudrift.backends import gpu_status

    status = rep.step("gpu_status", gpu_status)
    rep.data["gpu_status"] = list(status) if status else None
    if not args.skip_tests:
        rep.data["tests"] = rep.step("pytest", run_pytest, p["pytest"]["args"], p["pytest"]["timeout_s"])
    usable = bool(cupy is not None and status and status[0])
    copy = None
    if usable:
        from cudrift.backends import _gpu

        rep.data["device"] = rep.step("device_info", _gpu.device_info)
        # (emulated, warm_up's 12,000-row windows would take the simulator minutes; the steps compile what they use)
        rep.data["warm_up_seconds"] = None if args.emulate else rep.step("warm_up", _gpu.warm_up)
        copy = rep.step("copy_rate", copy_rate, cupy, p["copy_bytes"])
        rep.data["copy"] = copy
        copy_gbs = copy["gb_per_s"] if copy else None
        for name, fn, extra in (("profile", bench_profile, (copy_gbs,)), ("categorical", bench_categorical, (copy_gbs,)),
                                ("window", bench_window, (copy_gbs,)), ("mmd", bench_mmd, ()),
                                ("compare", bench_compare, (copy_gbs,))):
            rep.step(name, fn, rep, cupy, p, *extra)
            cupy.get_default_memory_pool().free_all_blocks()
        if not args.skip_triton:
            # what is left before the watchdog, shared by the two pytest runs
            left = deadline - (time.perf_counter() - rep.t0) - 40
            if left >= 120:
                rep.data["triton"] = rep.step("triton", run_triton, int(min(270, left / 2)))
            else:
                rep.data["triton"] = {"skipped": f"{left + 40:.0f} s left before the --deadline: too little"}
    else:
        print(f"GPU path not usable, benchmarks skipped: {status}", flush=True)
    print()
    if args.emulate:
        print("EMULATED: CuPy by NumPy, kernels in the simulator; the figures below mean nothing")
    print(f"card: {rep.data.get('card')}")
    if rep.data.get("tests"):
        t = rep.data["tests"]
        print(f"tests: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped, {t['errors']} errors "
              f"(return code {t['returncode']}, {t['seconds']} s)")
    print(table(rep.data["benchmarks"], copy))
    tri = rep.data.get("triton")
    if tri:
        print(f"triton (KIND_GPU monitor): {tri.get('skipped') or tri}")
    failed = [k for k, v in rep.data["steps"].items() if not v["ok"]]
    print(f"steps failed: {failed or 'none'}; total {time.perf_counter() - rep.t0:.1f} s; JSON: "
          + ", ".join(str(x) for x in paths))
    rep.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
