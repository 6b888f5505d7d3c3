"""Per-request overhead of the Triton drift monitor (CPU instance; GPU instance where a GPU is usable).

One Triton server (the ``tritonserver`` of the nvidia-pytriton wheel, see
:mod:`cudrift.integrations.triton.local_server`) serves two ensembles over
the same python-backend model (``SCORE`` = sum of 32 float32 features):

- ``echo_plain``: the served model alone, in a one-step ensemble;
- ``echo_monitored``: the same model followed by the cudrift monitor, as
  written by ``cudrift triton repo`` (10,000-row tumbling windows, so
  windows close and are compared during the run; checkpoint every 30 s).

A gRPC client sends batches of 256 rows, alternating between the two
ensembles so that both see the same machine state; the monitor's added
latency is the difference of the two latency percentiles. Rows per second
are for that one sequential client. The pytest-benchmark row is the
monitored ensemble's request. After the run the benchmark waits until the
monitor's worker has profiled every accepted row and reports how long that
took. Figures go to ``extra_info`` and to the summary printed at the end;
nothing is asserted on a timing.

The run is made once with the monitor on a ``KIND_CPU`` instance (NumPy
path) and, where the GPU backend is usable, once on a ``KIND_GPU`` instance
(inputs taken through DLPack as CuPy arrays, profiled by the GPU kernels);
the served model stays on the CPU in both.

``CUDRIFT_BENCH_TRITON_REQUESTS`` (default 1000) sets the requests per
ensemble. Run::

    .venv/bin/python -m pytest benchmarks/test_bench_triton.py -p no:cacheprovider --benchmark-only
    NUMBA_ENABLE_CUDASIM=0 python3 -m pytest benchmarks/test_bench_triton.py -k gpu --benchmark-only   # GPU machine
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import pytest
from _benchdata import env_int

cudrift = pytest.importorskip("cudrift")
from cudrift.errors import BackendUnavailableError  # noqa: E402
from cudrift.integrations.triton import write_repository  # noqa: E402
from cudrift.integrations.triton.local_server import (  # noqa: E402
    SUM_SCORER_PY,
    LocalTritonServer,
    find_tritonserver,
    instance_env,
    metric_value,
    wait_log,
    wait_metrics,
)

INSTALL, WHY = find_tritonserver()
if INSTALL is None:
    pytest.skip(f"no Triton server: {WHY}", allow_module_level=True)
grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")

# start-up (kernel compilation on a GPU instance), 1,300 requests per ensemble and the drain
pytestmark = pytest.mark.timeout(240)

N_FEATURES = 32
BATCH = 256
TARGET_P99_ADDED_MS = 2.0



def _tensor(name, t, dims):
    return f'{{ name: "{name}" data_type: {t} dims: [ {dims} ] }}'


@pytest.fixture(scope="module", params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def triton_bench(request, tmp_path_factory):
    kind = request.param
    try:
        env = instance_env(kind)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp(f"triton-bench-{kind}")
    rng = np.random.default_rng(20240611)
    names = [f"f{i:02d}" for i in range(N_FEATURES)]
    ref = cudrift.profile(rng.normal(size=(20_000, N_FEATURES)).astype(np.float32), columns=names)
    echo = root / "models" / "echo"
    (echo / "1").mkdir(parents=True)
    (echo / "1" / "model.py").write_text(SUM_SCORER_PY)
    (echo / "config.pbtxt").write_text(
        f'name: "echo"\nbackend: "python"\nmax_batch_size: {BATCH}\n'
        f'input [ {_tensor("FEATURES", "TYPE_FP32", N_FEATURES)} ]\n'
        f'output [ {_tensor("SCORE", "TYPE_FP32", 1)} ]\n'
        "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
    )
    repo = write_repository(root / "repo", ref, model=echo, window_rows=10_000,
                            checkpoint=str(root / "state" / "monitor.ckpt"), checkpoint_seconds=30, kind=kind)
    plain = repo.root / "echo_plain"
    (plain / "1").mkdir(parents=True)
    (plain / "config.pbtxt").write_text(
        f'name: "echo_plain"\nplatform: "ensemble"\nmax_batch_size: {BATCH}\n'
        f'input [ {_tensor("FEATURES", "TYPE_FP32", N_FEATURES)} ]\n'
        f'output [ {_tensor("SCORE", "TYPE_FP32", 1)} ]\n'
        'ensemble_scheduling { step [ { model_name: "echo" model_version: -1 '
        'input_map { key: "FEATURES" value: "FEATURES" } output_map { key: "SCORE" value: "SCORE" } } ] }\n'
    )
    server = LocalTritonServer(repo.root, workdir=root / "work", env=env)
    try:
        server.start()
        wait_log(server, f"backend {kind},")  # the path that profiles the traffic
        yield server, repo, rng, kind
    finally:
        server.stop()


def _infer(client, model, inp):
    return client.infer(model, [inp])


def test_triton_monitor_overhead(benchmark, triton_bench, bench_store):
    server, repo, rng, kind = triton_bench
    n = env_int("CUDRIFT_BENCH_TRITON_REQUESTS", 1000)
    x = rng.normal(size=(BATCH, N_FEATURES)).astype(np.float32)
    inp = grpcclient.InferInput("FEATURES", [BATCH, N_FEATURES], "FP32")
    inp.set_data_from_numpy(x)
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        for _ in range(100):  # warm-up: connections, first-call paths, a first fold
            _infer(client, "echo_plain", inp)
            _infer(client, "echo_monitored", inp)
        lat = {"echo_plain": [], "echo_monitored": []}
        order = ("echo_plain", "echo_monitored")
        for i in range(n):
            for model in (order if i % 2 == 0 else order[::-1]):
                t0 = time.perf_counter()
                _infer(client, model, inp)
                lat[model].append(time.perf_counter() - t0)
        timed = []  # (--benchmark-disable runs it once, not 200 rounds)
        res = benchmark.pedantic(lambda: timed.append(1) or _infer(client, "echo_monitored", inp), rounds=200,
                                 iterations=1, warmup_rounds=0)
        np.testing.assert_allclose(res.as_numpy("SCORE")[:, 0], x.sum(axis=1), rtol=1e-5)
    finally:
        client.close()
    # The worker profiles and closes windows behind the requests: wait until it
    # has caught up (every accepted row profiled), and say how long that took.
    expected_rows = (100 + n + len(timed)) * BATCH
    t_end = time.perf_counter()
    try:
        metrics = wait_metrics(server, lambda m: metric_value(m, "cudrift_window_rows_total") == expected_rows
                               and metric_value(m, "cudrift_backlog_rows") == 0, timeout=300)
    except AssertionError:  # not caught up in 180 s (inside the test timeout): the figures below say how far it got
        metrics = server.scrape()
    drain_s = time.perf_counter() - t_end

    def metric(name):
        v = metric_value(metrics, name)
        return float("nan") if v is None else v

    base = np.array(lat["echo_plain"]) * 1e3
    mon = np.array(lat["echo_monitored"]) * 1e3
    p = {k: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for k, v in (("plain", base), ("mon", mon))}
    added50, added99 = p["mon"][0] - p["plain"][0], p["mon"][1] - p["plain"][1]
    in_model_ms = 1e3 * metric("cudrift_request_duration_seconds_total") / metric("cudrift_requests_total")
    info = {
        "batch_rows": BATCH, "features": N_FEATURES, "requests_per_ensemble": n, "client": "gRPC, sequential",
        "p50_ms_plain": p["plain"][0], "p99_ms_plain": p["plain"][1],
        "p50_ms_monitored": p["mon"][0], "p99_ms_monitored": p["mon"][1],
        "p50_ms_added": added50, "p99_ms_added": added99, "target_p99_ms_added": TARGET_P99_ADDED_MS,
        "rows_per_second_plain": BATCH / base.mean() * 1e3, "rows_per_second_monitored": BATCH / mon.mean() * 1e3,
        "monitor_execute_ms_mean": in_model_ms,
        "windows_closed": metric("cudrift_windows_closed_total"),
        "rows_accepted": metric("cudrift_window_rows_total"),
        "seconds_to_drain_backlog_after_the_run": drain_s,
        "backpressure_seconds": metric("cudrift_backpressure_seconds_total"),
        "window_close_ms_mean": 1e3 * metric("cudrift_window_close_duration_seconds_total")
        / max(metric("cudrift_windows_closed_total"), 1),
        "instance_kind": f"KIND_{kind.upper()}", "triton": "2.51 (nvidia-pytriton 0.7.0)",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    benchmark.extra_info.update(info)
    bench_store.figure(f"triton [{kind}] p50 / p99 ms, plain ensemble",
                       f"{p['plain'][0]:.3f} / {p['plain'][1]:.3f}")
    bench_store.figure(f"triton [{kind}] p50 / p99 ms, with monitor", f"{p['mon'][0]:.3f} / {p['mon'][1]:.3f}")
    bench_store.figure(f"triton [{kind}] monitor added p50 / p99 ms",
                       f"{added50:.3f} / {added99:.3f} (target p99 < {TARGET_P99_ADDED_MS} ms)")
    bench_store.figure(f"triton [{kind}] rows/s plain / with monitor",
                       f"{info['rows_per_second_plain']:,.0f} / {info['rows_per_second_monitored']:,.0f}")
    bench_store.figure(f"triton [{kind}] monitor execute() mean ms", f"{in_model_ms:.3f}")
    bench_store.figure(f"triton [{kind}] windows closed / mean close ms",
                       f"{info['windows_closed']:.0f} / {info['window_close_ms_mean']:.1f}")
    bench_store.figure(f"triton [{kind}] rows / drain after run s / waited s",
                       f"{info['rows_accepted']:,.0f} / {drain_s:.2f} / {info['backpressure_seconds']:.3f}")
