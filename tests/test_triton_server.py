"""The drift monitor inside a real Triton server (the ``tritonserver`` of the nvidia-pytriton wheel).

Each test writes a repository with ``cudrift triton repo`` (or its function), starts
the server on free loopback ports (CPU python-backend instances), sends
traffic through ``tritonclient`` (HTTP and gRPC) and reads the drift
metrics from Triton's metrics port. Servers are stopped even when a test
fails (fixtures with ``try/finally``; the server runs in its own process
group, stubs included).

Needs ``pip install --no-deps nvidia-pytriton==0.7.0`` and
``tritonclient[http,grpc]``; without them the module is skipped with the
reason. ``CUDRIFT_TRITON_STUB_PYTHON`` may name the ``bin`` folder of another
environment for the stubs (one with ``numpy<2`` exercises the BYTES path).
"""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import cudrift
from cudrift.cli.main import main
from cudrift.errors import BackendUnavailableError
from cudrift.integrations.triton import WindowState, write_repository
from cudrift.integrations.triton.local_server import (
    SUM_SCORER_PY,
    LocalTritonServer,
    ServerError,
    find_tritonserver,
    instance_env,
    wait_log,
    wait_metrics,
)
from cudrift.integrations.triton.local_server import metric_value as val

INSTALL, WHY = find_tritonserver()
if INSTALL is None:
    pytest.skip(f"no Triton server: {WHY}", allow_module_level=True)
httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http,grpc] is not installed")
grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[http,grpc] is not installed")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.timeout(240)

WINDOW = 1000
FEATURES = ("a", "b", "c", "d")

# A served model for the ensemble: SCORE = sum of the four features
# (local_server.SUM_SCORER_PY, which moves tensors as the monitor does).
SCORER_CONFIG = '''name: "scorer"
backend: "python"
max_batch_size: 512
input [ { name: "FEATURES" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "REGION" data_type: TYPE_INT64 dims: [ 1 ] } ]
output [ { name: "SCORE" data_type: TYPE_FP32 dims: [ 1 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
'''


def features(rng, n, shift_b=0.0, shift_c=0.0):
    """Columns with different distributions, so a read that mixes them up cannot pass."""
    return np.stack([rng.normal(0, 1, n), rng.uniform(0, 10, n) + shift_b, rng.exponential(2, n) + shift_c,
                     rng.normal(100, 5, n)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(2024)
    x = features(rng, 5000)
    cols = {name: x[:, j] for j, name in enumerate(FEATURES)}
    return cudrift.profile({**cols, "region": rng.integers(0, 5, 5000), "SCORE": x.sum(axis=1)})


def scorer(folder):
    d = folder / "scorer"
    (d / "1").mkdir(parents=True)
    (d / "config.pbtxt").write_text(SCORER_CONFIG)
    (d / "1" / "model.py").write_text(SUM_SCORER_PY)
    return d


def stub_python():
    return os.environ.get("CUDRIFT_TRITON_STUB_PYTHON") or None


def stub_numpy_major() -> int:
    """The NumPy major version of the environment the python-backend stubs run in."""
    folder = stub_python() or os.path.dirname(sys.executable)
    out = subprocess.run([os.path.join(folder, "python3"), "-c", "import numpy; print(numpy.__version__)"],
                         capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.strip().split(".")[0])


@pytest.fixture
def server_factory(tmp_path):
    """Start servers; every one is stopped at the end, whatever happens."""
    servers = []

    def start(repo_root, **kwargs):
        s = LocalTritonServer(repo_root, workdir=tmp_path / f"work{len(servers)}", python_bin=stub_python(), **kwargs)
        servers.append(s)
        return s.start()

    yield start
    for s in servers:
        s.stop()


def http_infer(client, model, inputs):
    ins = []
    for name, arr in inputs.items():
        dt = {np.float32: "FP32", np.float64: "FP64", np.int64: "INT64"}.get(arr.dtype.type, "BYTES")
        i = httpclient.InferInput(name, list(arr.shape), dt)
        i.set_data_from_numpy(arr)
        ins.append(i)
    return client.infer(model, ins)


def grpc_infer(client, model, inputs):
    ins = []
    for name, arr in inputs.items():
        dt = {np.float32: "FP32", np.int64: "INT64"}.get(arr.dtype.type, "BYTES")
        i = grpcclient.InferInput(name, list(arr.shape), dt)
        i.set_data_from_numpy(arr)
        ins.append(i)
    return client.infer(model, ins)


def test_instance_env_keeps_gpu_kernels_off_the_simulator():
    from cudrift.backends import gpu_status

    assert instance_env("cpu") == {}
    ok, why = gpu_status()
    if ok:
        assert instance_env("gpu") == {"NUMBA_ENABLE_CUDASIM": "0"}
    else:
        with pytest.raises(BackendUnavailableError) as exc:
            instance_env("gpu")
        assert why in str(exc.value)  # the reason a skip will print
    with pytest.raises(ValueError, match="'tpu'"):
        instance_env("tpu")


# ---------------------------------------------------------------- ensemble: drift metrics


@pytest.mark.parametrize("kind", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_ensemble_publishes_drift_for_shifted_features_only(tmp_path, reference, server_factory, kind):
    """The monitor in an ensemble; ``gpu``: its instance is KIND_GPU and profiles the device tensors on the GPU.

    The ``gpu`` case runs where a GPU is usable and the Triton build
    serves GPU instances (on a lent GPU machine: carry the nvidia-pytriton
    wheel, see benchmarks/README.md); elsewhere it is skipped with the reason.
    """
    try:
        env = instance_env(kind)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(5)
    reference.save(tmp_path / "reference.cdp")
    # the command line, as a user would write the repository
    assert main(["triton", "repo", str(tmp_path / "repo"), "--reference", str(tmp_path / "reference.cdp"),
                 "--model", str(scorer(tmp_path / "models")), "--window-rows", str(WINDOW), "--no-checkpoint",
                 "--kind", kind]) == 0
    server = server_factory(tmp_path / "repo", env=env)
    wait_log(server, f"backend {kind},")  # the monitor says which path profiles the traffic
    model = {"monitor": "cudrift_monitor", "model": "scorer"}  # the monitor's own name, the served model's
    all_features = (*FEATURES, "region", "SCORE")

    # 1. like the reference, over HTTP: 8 requests of 250 rows = 2 windows; 10 NaNs in 'a'
    http = httpclient.InferenceServerClient(server.http_url)
    try:
        for k in range(8):
            x = features(rng, 250)
            if k == 0:
                x[:10, 0] = np.nan
            region = rng.integers(0, 5, (250, 1)).astype(np.int64)
            res = http_infer(http, "scorer_monitored", {"FEATURES": x, "REGION": region})
            np.testing.assert_allclose(res.as_numpy("SCORE")[:, 0], x.sum(axis=1), rtol=1e-5)  # unchanged outputs
            assert res.as_numpy("CUDRIFT_DRIFT_SHARE").shape == (250, 1)
    finally:
        http.close()
    m = wait_metrics(server, lambda m: val(m, "cudrift_windows_closed_total", **model) == 2)
    assert {f: val(m, "cudrift_feature_drifted", feature=f, **model) for f in all_features} == dict.fromkeys(
        all_features, 0.0)
    calm = {f: val(m, "cudrift_feature_drift_score", feature=f, **model) for f in all_features}
    assert val(m, "cudrift_feature_nulls_total", feature="a", **model) == 10
    assert val(m, "cudrift_feature_nulls_total", feature="SCORE", **model) == 10  # NaN in, NaN predicted
    assert val(m, "cudrift_dataset_drift_share", **model) == 0

    # 2. shifted b and c, one region only plus an unseen one, over gRPC: 2 more windows
    grpc = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        unseen = 0
        for _ in range(8):
            region = np.where(rng.random((250, 1)) < 0.1, 9, 4).astype(np.int64)
            unseen += int((region == 9).sum())
            grpc_infer(grpc, "scorer_monitored", {"FEATURES": features(rng, 250, shift_b=5.0, shift_c=4.0),
                                                  "REGION": region})
        m = wait_metrics(server, lambda m: val(m, "cudrift_windows_closed_total", **model) == 4)
        drifted = {f for f in all_features if val(m, "cudrift_feature_drifted", feature=f, **model) == 1}
        assert drifted == {"b", "c", "region", "SCORE"}
        for f in ("b", "c", "region", "SCORE"):
            assert val(m, "cudrift_feature_drift_score", feature=f, **model) > 5 * calm[f]
        assert val(m, "cudrift_feature_unseen_categories_total", feature="region", **model) == unseen > 0
        assert val(m, "cudrift_feature_out_of_range_total", feature="b", **model) > 0
        assert val(m, "cudrift_dataset_drift_share", **model) == pytest.approx(4 / 6)
        assert val(m, "cudrift_dataset_drift", **model) == 1
        # 3. a last partial window; the response carries the last closed window's share
        res = grpc_infer(grpc, "scorer_monitored", {"FEATURES": features(rng, 100),
                                                    "REGION": rng.integers(0, 5, (100, 1)).astype(np.int64)})
        assert res.as_numpy("CUDRIFT_DRIFT_SHARE")[0, 0] == pytest.approx(4 / 6)
    finally:
        grpc.close()
    # rows are counted when accepted, requests when answered: wait for both
    m = wait_metrics(server, lambda m: val(m, "cudrift_window_rows_total", **model) == 4100
                     and val(m, "cudrift_requests_total", **model) == 17)
    assert val(m, "cudrift_windows_closed_total", **model) == 4
    assert val(m, "cudrift_window_open_rows", **model) == 100
    assert val(m, "cudrift_request_duration_seconds_total", **model) > 0
    assert val(m, "cudrift_window_close_duration_seconds_total", **model) > 0
    # every label value is bounded: features from the profile, tests from the registry
    labels = {dict(k).get("feature") for k in m["cudrift_feature_drift_score"]}
    assert labels == set(all_features)
    # one family per name once OpenMetrics drops the counters' _total (a gauge of that name was a second family)
    types = re.findall(r"^# TYPE (cudrift_\w+) \w+$", server.metrics(), re.M)
    assert len(types) > 20 and len({n.removesuffix("_total") for n in types}) == len(types), sorted(types)
    assert server.stop() == 0
    assert "cudrift monitor cudrift_monitor: stopped with 100 rows in the open window" in server.log()


# ---------------------------------------------------------------- bad requests


def test_bad_requests_fail_alone_and_are_counted(tmp_path, reference, server_factory):
    rng = np.random.default_rng(6)
    root = tmp_path / "repo"
    write_repository(root, reference, model=scorer(tmp_path / "models"), window_rows=WINDOW, checkpoint="")
    write_repository(root, reference, name="direct", window_rows=WINDOW, checkpoint="")  # called directly
    server = server_factory(root)
    direct = {"model": "direct"}

    def good(n=50):
        x = features(rng, n)
        return {"NUMERIC": np.concatenate([x, x.sum(axis=1, keepdims=True)], axis=1),
                "CATEGORICAL_INT": rng.integers(0, 5, (n, 1)).astype(np.int64)}

    bad = [
        ("missing_input", {"NUMERIC": good()["NUMERIC"]}),
        ("wrong_width", {**good(), "NUMERIC": np.zeros((50, 3), np.float32)}),
        ("nan_only", {**good(), "NUMERIC": np.full((50, 5), np.nan, np.float32)}),
        (None, {**good(), "NUMERIC": good()["NUMERIC"].astype(np.float64)}),  # refused by Triton itself
        (None, {**good(), "CATEGORICAL_INT": np.zeros((7, 1), np.int64)}),  # batch sizes differ
        (None, {"NUMERIC": np.zeros((0, 5), np.float32), "CATEGORICAL_INT": np.zeros((0, 1), np.int64)}),
    ]
    sent_rows = 0
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        for reason, inputs in bad:
            with pytest.raises(InferenceServerException) as err:
                http_infer(client, "direct", inputs)
            # the client's mistake, as Triton's own checks say it: 400, not 500
            assert err.value.status() == "400", (reason, err.value.status(), str(err.value))
            if reason == "missing_input":
                assert "missing input 'CATEGORICAL_INT'" in str(err.value) and "region" in str(err.value)
            if reason == "wrong_width":
                assert "a, b, c, d, SCORE" in str(err.value)
            res = http_infer(client, "direct", good())  # the next good request goes through
            assert res.as_numpy("DRIFT_SHARE").shape == (50, 1)
            sent_rows += 50
        # through the ensemble: Triton checks the ensemble's own input shapes
        with pytest.raises(InferenceServerException):
            http_infer(client, "scorer_monitored", {"FEATURES": np.zeros((5, 3), np.float32),
                                                    "REGION": np.zeros((5, 1), np.int64)})
        http_infer(client, "scorer_monitored", {"FEATURES": features(rng, 20),
                                                "REGION": np.zeros((20, 1), np.int64)})
    finally:
        client.close()
    m = wait_metrics(server, lambda m: val(m, "cudrift_window_rows_total", **direct) == sent_rows
                     and val(m, "cudrift_bad_requests_total", reason="nan_only", **direct) == 1
                     and val(m, "cudrift_window_rows_total", model="scorer") == 20)
    for reason in ("missing_input", "wrong_width", "nan_only"):
        assert val(m, "cudrift_bad_requests_total", reason=reason, **direct) == 1
    # The other three never reach the model: Triton refuses them while checking
    # the request against the config (Triton 2.51 does not count them either).
    for reason in ("wrong_dtype", "batch_mismatch", "empty_batch"):
        assert val(m, "cudrift_bad_requests_total", reason=reason, **direct) == 0
    assert val(m, "cudrift_bad_requests_total", reason="internal", **direct) == 0
    assert server.stop() == 0


# ---------------------------------------------------------------- checkpoint and restart


def test_restart_resumes_the_open_window_from_the_checkpoint(tmp_path, reference, server_factory):
    rng = np.random.default_rng(8)
    ckpt = tmp_path / "state" / "direct.ckpt"
    repo = write_repository(tmp_path / "repo", reference, name="direct", window_rows=WINDOW,
                            checkpoint=str(ckpt), checkpoint_seconds=0.5)
    direct = {"model": "direct"}

    def send(server, n):
        x = features(rng, n)
        client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            grpc_infer(client, "direct", {"NUMERIC": np.concatenate([x, x.sum(axis=1, keepdims=True)], axis=1),
                                          "CATEGORICAL_INT": rng.integers(0, 5, (n, 1)).astype(np.int64)})
        finally:
            client.close()

    def checkpoint_rows():
        st = WindowState(reference, repo.layout, window_rows=WINDOW)
        st.restore(ckpt.read_bytes())
        return st.open_rows

    # explicit model control: the test reloads the monitor below
    server = server_factory(repo.root, extra_args=("--model-control-mode=explicit", "--load-model=*"))
    send(server, 600)
    deadline = time.monotonic() + 30
    while not (ckpt.exists() and checkpoint_rows() == 600):
        assert time.monotonic() < deadline, "no periodic checkpoint with the 600 rows"
        time.sleep(0.1)
    server.kill()  # a crash: no finalize, no last checkpoint

    server.start()
    m = wait_metrics(server, lambda m: val(m, "cudrift_window_open_rows", **direct) == 600)
    # after a crash the counters restart at 0 (a reset Prometheus handles), not at the checkpoint's values
    assert val(m, "cudrift_window_rows_total", **direct) == 0 and val(m, "cudrift_requests_total", **direct) == 0
    send(server, 400)  # completes the resumed window at exactly 1000 rows
    m = wait_metrics(server, lambda m: val(m, "cudrift_windows_closed_total", **direct) == 1)
    assert val(m, "cudrift_window_open_rows", **direct) == 0
    assert val(m, "cudrift_window_rows_total", **direct) == 400
    # a reload (changed config): Triton starts the new instance, then finalizes the old one; they share series
    config = repo.root / "direct" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 1024", "max_batch_size: 2048"))
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        client.load_model("direct")
    finally:
        client.close()
    deadline = time.monotonic() + 30
    while server.log().count("cudrift monitor direct: stopped") < 1:  # the old instance is finalized
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.1)
    m = wait_metrics(server, lambda m: val(m, "cudrift_windows_closed_total", **direct) == 1)
    assert val(m, "cudrift_window_rows_total", **direct) == 400, "the series outlive the old instance, counted once"
    send(server, 300)
    m = wait_metrics(server, lambda m: val(m, "cudrift_window_rows_total", **direct) == 700)
    assert server.stop() == 0  # finalize writes the last checkpoint: nothing accepted is lost
    assert "cudrift monitor direct: stopped with 300 rows in the open window" in server.log()

    server.start()  # after a clean shutdown the counters continue as they were shown
    m = wait_metrics(server, lambda m: val(m, "cudrift_window_open_rows", **direct) == 300)
    assert val(m, "cudrift_window_rows_total", **direct) == 700 and val(m, "cudrift_requests_total", **direct) == 2
    assert val(m, "cudrift_windows_closed_total", **direct) == 1
    assert server.stop() == 0


# ---------------------------------------------------------------- BYTES inputs


def test_string_categoricals_over_bytes(tmp_path, server_factory):
    """BYTES work where the stub reads tensors soundly; elsewhere the monitor refuses to load, saying why.

    The stub of nvidia-pytriton 0.7.0 was built against NumPy 1.x: under
    NumPy 2 it crashes on any BYTES input, before the model runs. The monitor
    detects that at initialize and refuses to load with the fix in the
    message, instead of dying on the first request. With
    ``CUDRIFT_TRITON_STUB_PYTHON`` pointing at a ``numpy<2`` environment the
    BYTES path itself runs.
    """
    rng = np.random.default_rng(9)
    n = 3000
    ref = cudrift.profile({"x": rng.normal(size=n).astype(np.float32),
                           "city": np.array(rng.choice(["paris", "rome", "oslo"], n), dtype=object)})
    repo = write_repository(tmp_path / "repo", ref, window_rows=500, checkpoint="")
    try:
        server = server_factory(repo.root)
    except ServerError as exc:
        if stub_numpy_major() < 2:
            raise  # the stub reads tensors soundly here (the Triton image's setting): BYTES must work
        assert "are BYTES, but this python-backend stub reads tensors wrongly under NumPy 2." in str(exc)
        assert "install numpy<2" in str(exc)
        return
    assert stub_numpy_major() < 2, "a NumPy 2 stub must refuse BYTES inputs at load"
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        for cities in (["paris", "rome", "oslo"], ["paris", "rome", "oslo"], ["lima"], ["lima"]):
            http_infer(client, "cudrift_monitor", {
                "NUMERIC": rng.normal(size=(250, 1)).astype(np.float32),
                "CATEGORICAL": np.array(rng.choice(cities, (250, 1)), dtype=object),
            })
    finally:
        client.close()
    mon = {"model": "cudrift_monitor"}
    m = wait_metrics(server, lambda m: val(m, "cudrift_windows_closed_total", **mon) == 2)
    assert val(m, "cudrift_feature_drifted", feature="city", **mon) == 1
    assert val(m, "cudrift_feature_drifted", feature="x", **mon) == 0
    assert val(m, "cudrift_feature_unseen_categories_total", feature="city", **mon) == 500
