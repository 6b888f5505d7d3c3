"""The monitor's TritonPythonModel driven in-process, with a stand-in for ``triton_python_backend_utils``.

These tests reach what a real server never lets through to the model
(requests Triton itself refuses: wrong data type, mismatched batch sizes)
and check the model's own logic quickly; ``test_triton_server.py`` runs the
same model inside a real Triton server.
"""

import json
import sys
import time
import types

import numpy as np
import pytest

import cudrift
from cudrift.integrations.triton import BAD_REQUEST_REASONS, TritonPythonModel, write_repository
from cudrift.integrations.triton._state import WindowState

pytest.importorskip("tritonclient.grpc", reason="reading config.pbtxt needs tritonclient[grpc] (test extra)")
from google.protobuf import json_format, text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402


# ---------------------------------------------------------------- stand-in pb_utils


class FakeTensor:
    def __init__(self, name, array):
        self._name = name
        self._a = array

    @staticmethod
    def from_dlpack(name, obj):
        return FakeTensor(name, np.from_dlpack(obj))

    def name(self):
        return self._name

    def as_numpy(self):
        return self._a

    def is_cpu(self):
        return True

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class FakeMetric:
    """A ``pb_utils.Metric``. As in Triton, a family's series is one per labels whichever instance made it (a
    reloaded model's new and old instance share it), and deleting any instance's Metric object removes it."""

    def __init__(self, family, labels):
        self.family, self.labels = family, dict(labels)
        self._cell = family.series.setdefault(frozenset(self.labels.items()), {"v": 0.0})

    def increment(self, v):
        assert self.family.kind == "COUNTER" and v >= 0
        self._cell["v"] += v

    def set(self, v):
        assert self.family.kind == "GAUGE"
        self._cell["v"] = v

    def value(self):
        return self._cell["v"]

    def __del__(self):
        key = frozenset(self.labels.items())
        if self.family.series.get(key) is self._cell:
            del self.family.series[key]


def make_pb(registry, logs, kinds=None):
    pb = types.ModuleType("triton_python_backend_utils")
    kinds = {} if kinds is None else kinds  # family name -> kind, of every family made

    class MetricFamily:
        COUNTER, GAUGE = "COUNTER", "GAUGE"

        def __init__(self, name, description, kind):
            self.name, self.kind = name, kind
            self.series = registry.setdefault(name, {})
            kinds[name] = kind

        def Metric(self, labels=None):  # noqa: N802 - Triton's spelling
            return FakeMetric(self, labels or {})

    class Logger:
        log_info = staticmethod(lambda m: logs.append(("info", m)))
        log_warn = staticmethod(lambda m: logs.append(("warn", m)))
        log_error = staticmethod(lambda m: logs.append(("error", m)))

    class TritonError:
        def __init__(self, message):
            self._m = message

        def message(self):
            return self._m

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self.output_tensors, self.error = output_tensors, error

    class TritonModelException(Exception):
        pass

    pb.MetricFamily, pb.Logger, pb.TritonError = MetricFamily, Logger, TritonError
    pb.InferenceResponse, pb.TritonModelException, pb.Tensor = InferenceResponse, TritonModelException, FakeTensor
    pb.get_input_tensor_by_name = lambda request, name: request.get(name)
    pb.kinds = kinds
    return pb


@pytest.fixture
def pb(monkeypatch):
    registry, logs = {}, []
    mod = make_pb(registry, logs)
    mod.registry, mod.logs = registry, logs
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", mod)
    return mod


def value(pb, name, **labels):
    for key, cell in list(pb.registry.get(name, {}).items()):
        if all((k, v) in key for k, v in labels.items()):
            return cell["v"]
    return None


def wait_for(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(11)
    n = 4000
    return cudrift.profile({
        "a": rng.normal(0, 1, n).astype(np.float32),
        "b": rng.uniform(0, 10, n).astype(np.float32),
        "c": rng.exponential(2, n).astype(np.float32),
        "city": np.array(rng.choice(["paris", "rome", "oslo"], n), dtype=object),
        "region": rng.integers(0, 5, n),
    })


def model_args(repo, instance_kind="CPU"):
    text = (repo.root / repo.monitor / "config.pbtxt").read_text()
    cfg = json_format.MessageToDict(text_format.Parse(text, model_config_pb2.ModelConfig()),
                                    preserving_proto_field_name=True)
    return {"model_config": json.dumps(cfg), "model_name": repo.monitor,
            "model_repository": str(repo.root / repo.monitor), "model_version": "1",
            "model_instance_kind": instance_kind, "model_instance_device_id": "0"}


def request(rng, n, shift=0.0, city=("paris", "rome", "oslo")):
    x = np.stack([rng.normal(0, 1, n), rng.uniform(0, 10, n) + shift, rng.exponential(2, n)], axis=1)
    return {
        "NUMERIC": FakeTensor("NUMERIC", x.astype(np.float32)),
        "CATEGORICAL": FakeTensor("CATEGORICAL",
                                  np.array([c.encode() for c in rng.choice(city, n)], dtype=object).reshape(n, 1)),
        "CATEGORICAL_INT": FakeTensor("CATEGORICAL_INT", rng.integers(0, 5, (n, 1)).astype(np.int64)),
    }


@pytest.fixture
def monitor(tmp_path, reference, pb):
    repo = write_repository(tmp_path / "repo", reference, window_rows=500, checkpoint=str(tmp_path / "w.ckpt"),
                            checkpoint_seconds=0.2)
    models = []

    def start():
        m = TritonPythonModel()
        m.initialize(model_args(repo))
        models.append(m)
        return m

    yield repo, start
    for m in models:
        if m._worker.is_alive():
            m.finalize()


# ---------------------------------------------------------------- tests


def test_windows_close_and_publish_drift_only_for_shifted_features(tmp_path, reference, pb):
    # 1000-row windows and a fixed seed: the normalised Wasserstein distance of
    # a 500-row sample from the reference's own distribution passes the 0.1
    # threshold about one time in ten, which would make this test flaky.
    rng = np.random.default_rng(4321)
    repo = write_repository(tmp_path / "repo", reference, window_rows=1000, checkpoint="")
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        # closed windows are compared on the worker's own thread (one GIL contender against execute())
        assert m.detector.workers == 1
        assert value(pb, "cudrift_monitor_backend", backend="cpu") == 1
        assert value(pb, "cudrift_monitor_backend", backend="gpu") == 0
        # before any window: the dataset gauges' series exist, NaN, and so do the features', under the tests
        # the detector picks for them
        assert np.isnan(value(pb, "cudrift_dataset_drift")) and np.isnan(value(pb, "cudrift_dataset_drift_share"))
        for f in ("a", "b", "c", "city", "region"):
            test = m.detector.test_for(f)
            assert np.isnan(value(pb, "cudrift_feature_drift_score", feature=f, test=test))
            assert np.isnan(value(pb, "cudrift_feature_drifted", feature=f, test=test))
        out = m.execute([request(rng, 250) for _ in range(8)])  # windows 0 and 1: like the reference
        assert all(r.error is None for r in out)
        share = np.from_dlpack(out[0].output_tensors[0])
        assert share.shape == (250, 1) and np.isnan(share).all()  # no window closed before this request
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
        assert {f: value(pb, "cudrift_feature_drifted", feature=f) for f in "abc"} == {"a": 0, "b": 0, "c": 0}
        m.execute([request(rng, 250, shift=5.0, city=("lima",)) for _ in range(8)] + [request(rng, 100)])
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 4)
        features = ("a", "b", "c", "city", "region")
        assert {f for f in features if value(pb, "cudrift_feature_drifted", feature=f) == 1} == {"b", "city"}
        assert value(pb, "cudrift_feature_drift_score", feature="b") > 0.5
        assert value(pb, "cudrift_feature_unseen_categories_total", feature="city") == 2000
        assert value(pb, "cudrift_feature_out_of_range_total", feature="b") > 0
        assert value(pb, "cudrift_dataset_drift_share") == pytest.approx(2 / 5)
        # rows are counted when accepted, requests when answered: wait for both
        wait_for(lambda: value(pb, "cudrift_window_rows_total") == 4100
                 and value(pb, "cudrift_window_open_rows") == 100 and value(pb, "cudrift_requests_total") == 17)
        shares = np.from_dlpack(m.execute([request(rng, 10)])[0].output_tensors[0])
        assert float(shares[0, 0]) == pytest.approx(0.4)
    finally:
        m.finalize()
    # the series stay, at their last values (a reloaded model's new instance shares them)
    assert value(pb, "cudrift_window_rows_total") == 4110 and value(pb, "cudrift_dataset_drift_share") == 0.4


def test_no_metric_family_is_named_like_another_less_its_total(monitor, pb):
    """OpenMetrics names a counter's family without the ``_total`` its samples carry: a gauge named like a counter
    less ``_total`` (``cudrift_window_close_duration_seconds``) made a second family of the same name, which
    OpenMetrics parsers refuse and collectors that strip ``_total`` merge with the counter."""
    repo, start = monitor
    start()
    assert len(pb.kinds) > 20
    counters = [n for n, k in pb.kinds.items() if k == "COUNTER"]
    assert all(n.endswith("_total") for n in counters)
    families = {n.removesuffix("_total") if k == "COUNTER" else n for n, k in pb.kinds.items()}
    assert len(families) == len(pb.kinds), sorted(pb.kinds)


def test_bad_requests_get_their_own_error_and_are_counted(monitor, pb, rng):
    repo, start = monitor
    m = start()
    good = request(rng, 50)
    missing = {k: v for k, v in request(rng, 50).items() if k != "CATEGORICAL_INT"}
    wide = {**request(rng, 50), "NUMERIC": FakeTensor("NUMERIC", np.zeros((50, 4), np.float32))}
    dtype = {**request(rng, 50), "NUMERIC": FakeTensor("NUMERIC", np.zeros((50, 3), np.float64))}
    mismatch = {**request(rng, 50), "CATEGORICAL_INT": FakeTensor("CATEGORICAL_INT", np.zeros((40, 1), np.int64))}
    nan = {**request(rng, 50), "NUMERIC": FakeTensor("NUMERIC", np.full((50, 3), np.nan, np.float32))}
    empty = request(rng, 0)
    latin1 = {**request(rng, 2), "CATEGORICAL": FakeTensor("CATEGORICAL", np.array([[b"caf\xe9"], [b"x"]], dtype=object))}
    batch = [good, missing, wide, dtype, mismatch, nan, empty, latin1, request(rng, 30)]
    out = m.execute(batch)
    assert [r.error is None for r in out] == [True] + [False] * 7 + [True]
    errors = [r.error.message() for r in out[1:8]]
    assert "missing input 'CATEGORICAL_INT'" in errors[0] and "region" in errors[0]
    assert "shape [50, 4]" in errors[1] and "a, b, c" in errors[1]
    assert "dtype float64" in errors[2]
    assert "40 rows" in errors[3]
    assert "NaN" in errors[4] and "no rows" in errors[5] and "UTF-8" in errors[6]
    wait_for(lambda: value(pb, "cudrift_requests_total") == 9)
    reasons = {r: value(pb, "cudrift_bad_requests_total", reason=r) for r in BAD_REQUEST_REASONS}
    assert reasons == {"missing_input": 1, "wrong_dtype": 1, "wrong_width": 1, "batch_mismatch": 1,
                       "empty_batch": 1, "nan_only": 1, "unreadable": 1, "internal": 0}
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 80)  # good rows only


def test_finalize_checkpoints_and_a_new_instance_resumes(monitor, pb, rng):
    repo, start = monitor
    m = start()
    m.execute([request(rng, 300), request(rng, 320)])  # window 0 closes at 500, 120 rows open
    m.finalize()
    assert ("info", "cudrift monitor cudrift_monitor: stopped with 120 rows in the open window") in pb.logs
    pb.registry.clear()
    m2 = start()
    assert (m2.state.open_rows, m2.state.rows_total, m2.state.windows_closed) == (120, 620, 1)
    assert value(pb, "cudrift_window_rows_total") == 620 and value(pb, "cudrift_windows_closed_total") == 1
    assert value(pb, "cudrift_requests_total") == 2
    m2.execute([request(rng, 380)])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
    assert value(pb, "cudrift_window_open_rows") == 0


def _counters(pb):
    """Every counter series: {(family, labels): value}."""
    return {(name, key): cell["v"] for name, kind in pb.kinds.items() if kind == "COUNTER"
            for key, cell in pb.registry.get(name, {}).items()}


def test_after_a_crash_counters_restart_at_zero_and_after_a_clean_shutdown_they_continue(monitor, pb, rng,
                                                                                          tmp_path):
    """A crash's checkpoint holds counters that went on after it: continued from it they came back lower than
    shown but not at zero (window rows 3200 -> 3000, bad requests 3 -> 0), and Prometheus counts such a reset
    as an increase of everything they hold (a false alert on any increase). After a crash they restart at 0,
    as Triton's own counters do, the window and the gauges resumed; after a clean shutdown they continue
    exactly as shown; and a clean shutdown's checkpoint continues them once only."""
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    m = start()
    m.execute([request(rng, 300), request(rng, 320)])  # window 0 closes at 500, 120 rows open
    wait_for(lambda: ckpt.exists() and _checkpoint_rows(m, ckpt) == 120)
    wide = {**request(rng, 50), "NUMERIC": FakeTensor("NUMERIC", np.zeros((50, 4), np.float32))}
    m.execute([wide, wide, wide])  # counted after that checkpoint
    wait_for(lambda: value(pb, "cudrift_bad_requests_total", reason="wrong_width") == 3)
    assert value(pb, "cudrift_window_rows_total") == 620 and value(pb, "cudrift_requests_total") == 5
    gauges = ("cudrift_window_open_rows", "cudrift_dataset_drift_share", "cudrift_last_window_close_timestamp_seconds")
    shown = {n: value(pb, n) for n in gauges}
    m._checkpoint = None  # a crash: the worker stops without writing a last checkpoint
    m.finalize()
    pb.registry.clear()  # and the server with it: its series start afresh

    m2 = start()
    assert (m2.state.rows_total, m2.state.open_rows, m2.state.windows_closed) == (620, 120, 1)
    counters = _counters(pb)
    assert len(counters) > 10 and set(counters.values()) == {0}, {k: v for k, v in counters.items() if v}
    assert {n: value(pb, n) for n in gauges} == shown and shown["cudrift_window_open_rows"] == 120
    m2.execute([request(rng, 380), wide])  # closes window 1: only what this run accepted is counted
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1 and value(pb, "cudrift_requests_total") == 2)
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 380)
    assert value(pb, "cudrift_bad_requests_total", reason="wrong_width") == 1
    shown = _counters(pb)
    m2.finalize()  # a clean shutdown
    pb.registry.clear()

    m3 = start()
    assert _counters(pb) == shown, "after a clean shutdown the counters continue as they were shown"
    m3._checkpoint = None  # a crash of the run that continued them
    m3.finalize()
    pb.registry.clear()
    m4 = start()
    assert m4.state.rows_total == 1000 and set(_counters(pb).values()) == {0}


def test_a_reload_keeps_the_series_and_counts_nothing_twice(monitor, pb, rng, tmp_path):
    """Triton reloads a model by starting the new instance, then finalizing the old: they share their series."""
    repo, start = monitor
    old = start()
    old.execute([request(rng, 300), request(rng, 320)])  # window 0 closes at 500
    ckpt = tmp_path / "w.ckpt"
    wait_for(lambda: ckpt.exists() and _checkpoint_rows(old, ckpt) == 120)
    new = start()  # takes the series as they are (its window once the old one has finalized)
    assert value(pb, "cudrift_window_rows_total") == 620 and value(pb, "cudrift_windows_closed_total") == 1
    assert value(pb, "cudrift_requests_total") == 2, "the new instance neither adds the checkpoint's counts nor resets"
    old.execute([{**request(rng, 5), "NUMERIC": FakeTensor("NUMERIC", np.zeros((5, 4), np.float32))}])  # refused
    old.finalize()
    assert value(pb, "cudrift_window_rows_total") == 620, "the old instance's finalize keeps the shared series"
    assert value(pb, "cudrift_requests_total") == 3  # the old instance's last request
    assert value(pb, "cudrift_feature_nulls_total", feature="a") == 0
    new.execute([request(rng, 380)])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 1000 and value(pb, "cudrift_requests_total") == 4)
    assert value(pb, "cudrift_window_open_rows") == 0
    assert 0.0 <= value(pb, "cudrift_dataset_drift_share") <= 1.0
    # a clean shutdown after the reload: the counters continue as the endpoint showed them, the old instance's
    # request included (the new one never counted it)
    shown = _counters(pb)
    new.finalize()
    pb.registry.clear()
    start()
    assert _counters(pb) == shown


def test_counters_that_change_alone_reach_the_periodic_checkpoint(monitor, pb, rng, tmp_path):
    """Refused requests change counters, not rows, and periodic checkpoints were written only when rows changed.
    After a reload, the old instance's finalize leaves a clean shutdown's checkpoint; with only refused requests
    after it, a crash restored the counters from it, below what was shown (requests 4 -> 1) but not at zero."""
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    old = start()
    old.execute([request(rng, 120)])
    wait_for(lambda: ckpt.exists() and _checkpoint_rows(old, ckpt) == 120)
    new = start()  # a reload: the new instance first, then the old one's finalize
    old.finalize()
    wide = {**request(rng, 5), "NUMERIC": FakeTensor("NUMERIC", np.zeros((5, 4), np.float32))}
    new.execute([wide, wide, wide])

    def saved():
        return WindowState(new.reference, new.layout, window_rows=500).restore(ckpt.read_bytes())

    wait_for(lambda: saved()["requests"] == 4 and not saved()["clean_shutdown"])
    assert saved()["bad"]["wrong_width"] == 3
    new._checkpoint = None  # a crash
    new.finalize()
    pb.registry.clear()
    start()
    assert set(_counters(pb).values()) == {0}


def _saved(m, path):
    """(rows_total, windows_closed, open_rows) of the checkpoint at ``path``."""
    st = WindowState(m.reference, m.layout, window_rows=m.settings.window_rows)
    st.restore(path.read_bytes())
    return st.rows_total, st.windows_closed, st.open_rows


def _owner_of_120_rows(start, rng, ckpt):
    """A started monitor instance whose checkpoint ``ckpt`` holds 120 open rows (a reload's old instance)."""
    old = start()
    old.execute([request(rng, 120)])
    wait_for(lambda: ckpt.exists() and _saved(old, ckpt) == (120, 0, 120))
    return old


def _closed_windows(pb):
    """(window id, rows) of every window the log says was closed, in order."""
    import re

    return [(int(m.group(1)), int(m.group(2))) for _, msg in pb.logs
            if (m := re.search(r"window (\d+) closed \((\d+) rows", msg))]


def test_a_reload_hands_the_window_over_so_every_row_is_in_one_window(monitor, pb, rng, tmp_path):
    """Triton loads a reloaded model's new instance before it finalizes the old one, which answers requests
    until then. The new one resumed the old one's last periodic checkpoint in initialize: its 120 open rows were
    compared by both instances (window 1 closed twice), the final checkpoint and the counters disagreed
    (checkpoint 1000 rows and 2 windows, series 1380 and 3), and the new one's next periodic checkpoint replaced
    the old one's final one. The new instance now leaves the checkpoint to the old one until it is finalized,
    then adopts its last checkpoint and takes the rows it accepted meanwhile after its rows."""
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    old = start()
    old.execute([request(rng, 300), request(rng, 320)])  # window 0 closes at 500, 120 rows open
    wait_for(lambda: ckpt.exists() and _saved(old, ckpt) == (620, 1, 120))
    new = start()
    assert new.state.rows_total == 0, "the new instance resumed a checkpoint the old one still writes"
    new.execute([request(rng, 200)])  # the new instance's first rows, while the old one still serves
    old.execute([request(rng, 380)])  # window 1: the old one's 120 open rows and these
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2 and _saved(old, ckpt) == (1000, 2, 0))
    time.sleep(0.5)  # periodic checkpoints are due: only the old instance writes them
    assert _saved(old, ckpt) == (1000, 2, 0) and value(pb, "cudrift_window_rows_total") == 1000
    old.finalize()
    wait_for(lambda: any("took over" in msg for _, msg in pb.logs))
    new.execute([request(rng, 380)])  # window 2: the 200 rows accepted during the reload, and 300 of these
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 3 and value(pb, "cudrift_requests_total") == 5)
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 1580 and value(pb, "cudrift_window_open_rows") == 80)
    new.finalize()
    assert _saved(new, ckpt) == (1580, 3, 80)
    assert _closed_windows(pb) == [(0, 500), (1, 500), (2, 500)]


def test_the_hand_over_wait_starts_after_the_new_instances_warm_up(monitor, pb, rng, tmp_path, monkeypatch):
    """Triton finalizes a reload's old instance only once the new one's initialize has returned: the wait was
    counted from before the warm-up (kernel compiles, on a GPU), so a slow warm-up gave up a hand-over the old
    instance then made at once."""
    from cudrift.integrations.triton import model as model_module

    monkeypatch.setattr(model_module, "HANDOVER_SECONDS", 1.0)
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    old = _owner_of_120_rows(start, rng, ckpt)
    warm_up = TritonPythonModel._warm_up
    monkeypatch.setattr(TritonPythonModel, "_warm_up", lambda self: (time.sleep(1.2), warm_up(self))[1])
    new = start()
    monkeypatch.setattr(TritonPythonModel, "_warm_up", warm_up)
    new.execute([request(rng, 10)])
    time.sleep(0.3)
    old.finalize()
    wait_for(lambda: any("took over" in msg for _, msg in pb.logs))
    assert not any("going on without its state" in msg for _, msg in pb.logs)
    assert new.state.rows_total == 130
    new.finalize()


def test_a_new_instance_waits_for_the_checkpoints_owner_a_bounded_time(monitor, pb, rng, tmp_path, monkeypatch):
    """The old instance of a reload may never finalize in time: the new one goes on without its state after
    HANDOVER_SECONDS (logged), writes no checkpoint while the old one owns the file, and its own once it does."""
    from cudrift.integrations.triton import model as model_module

    monkeypatch.setattr(model_module, "HANDOVER_SECONDS", 0.3)
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    old = _owner_of_120_rows(start, rng, ckpt)
    new = start()
    new.execute([request(rng, 100)])
    wait_for(lambda: any(level == "error" and "going on without its state" in msg for level, msg in pb.logs))
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 220)  # its rows are counted now
    wait_for(lambda: any(level == "error" and "does not own it" in msg for level, msg in pb.logs))
    old.execute([request(rng, 30)])
    wait_for(lambda: _saved(old, ckpt) == (150, 0, 150))
    old.finalize()
    assert _saved(old, ckpt) == (150, 0, 150)
    wait_for(lambda: any("now owns checkpoint" in msg for _, msg in pb.logs))
    wait_for(lambda: _saved(new, ckpt) == (100, 0, 100))  # its own state, over the old one's
    new.finalize()
    assert _saved(new, ckpt) == (100, 0, 100)


def test_a_new_instance_that_holds_max_backlog_rows_stops_waiting(tmp_path, reference, pb, rng):
    """Rows accepted during the hand-over are kept unprofiled: past max_backlog_rows the new instance stops
    waiting rather than holding the requests back."""
    repo = write_repository(tmp_path / "repo", reference, window_rows=500, checkpoint=str(tmp_path / "w.ckpt"),
                            max_backlog_rows=300)
    old, new = TritonPythonModel(), TritonPythonModel()
    old.initialize(model_args(repo))
    new.initialize(model_args(repo))
    try:
        t0 = time.monotonic()
        new.execute([request(rng, 200), request(rng, 200)])
        assert time.monotonic() - t0 < 5  # not the backpressure bound (10 s)
        assert any("rows accepted meanwhile are over max_backlog_rows" in msg for _, msg in pb.logs)
        wait_for(lambda: new.state.backlog_rows == 0)
    finally:
        old.finalize()
        new.finalize()


def test_a_new_instance_finalized_before_the_owner_leaves_its_checkpoint_alone(monitor, pb, rng, tmp_path):
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    old = _owner_of_120_rows(start, rng, ckpt)
    new = start()
    new.execute([request(rng, 450)])
    new.finalize()
    assert any(level == "error" and "finalized before the owner" in msg and "450 rows" in msg
               for level, msg in pb.logs)
    assert _closed_windows(pb) == [] and _saved(old, ckpt) == (120, 0, 120)
    old.execute([request(rng, 380)])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
    old.finalize()
    assert _saved(old, ckpt) == (500, 1, 0) and _closed_windows(pb) == [(0, 500)]


def test_after_a_reload_whose_old_instance_crashed_the_new_one_adopts_its_last_checkpoint(monitor, pb, rng,
                                                                                          tmp_path):
    """A crash releases the lock without a last checkpoint: the new instance adopts the last periodic one (the
    old instance's rows since then are lost, as in any crash) and takes its own rows after it; the counters go on
    as the series have them."""
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    old = _owner_of_120_rows(start, rng, ckpt)
    new = start()
    new.execute([request(rng, 100)])
    old._checkpoint = None  # a crash: the worker stops without writing a last checkpoint
    old.execute([request(rng, 50)])
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 170)
    old.finalize()
    wait_for(lambda: any("took over" in msg for _, msg in pb.logs))
    wait_for(lambda: _saved(new, ckpt) == (220, 0, 220))
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 270)  # 170 shown, and the new instance's 100


def test_a_checkpoint_owned_by_another_monitor_is_neither_resumed_nor_overwritten(tmp_path, reference, pb, rng):
    """Two monitors given one checkpoint file (in two repositories: cudrift triton repo refuses it within one)
    resumed and overwrote each other's window. The second to load keeps off it, says so, and is not kept
    waiting for a hand-over."""
    ckpt = tmp_path / "w.ckpt"
    first = write_repository(tmp_path / "r1", reference, window_rows=500, checkpoint=str(ckpt),
                             checkpoint_seconds=0.2)
    second = write_repository(tmp_path / "r2", reference, name="other_monitor", window_rows=500,
                              checkpoint=str(ckpt), checkpoint_seconds=0.2)
    a, b = TritonPythonModel(), TritonPythonModel()
    a.initialize(model_args(first))
    a.execute([request(rng, 120)])
    wait_for(lambda: ckpt.exists() and _saved(a, ckpt) == (120, 0, 120))
    b.initialize(model_args(second))
    try:
        assert b.state.rows_total == 0
        assert any(level == "error" and "owned by monitor 'cudrift_monitor'" in msg for level, msg in pb.logs)
        b.execute([request(rng, 500)])
        wait_for(lambda: b.state.windows_closed == 1)  # its own windows, at once
        a.execute([request(rng, 10)])
        wait_for(lambda: _saved(a, ckpt) == (130, 0, 130))
        a.finalize()
        b.execute([request(rng, 10)])
    finally:
        b.finalize()
    assert _saved(a, ckpt) == (130, 0, 130), "the other monitor's checkpoint was overwritten once it was free"


def test_cudrift_triton_repo_refuses_a_checkpoint_another_monitor_uses(tmp_path, reference):
    ckpt = tmp_path / "state" / "w.ckpt"
    write_repository(tmp_path / "repo", reference, checkpoint=str(ckpt))
    with pytest.raises(ValueError, match="monitor 'cudrift_monitor' of this repository checkpoints to that file"):
        write_repository(tmp_path / "repo", reference, name="second", checkpoint=str(ckpt))
    assert not (tmp_path / "repo" / "second").exists()
    write_repository(tmp_path / "repo", reference, checkpoint=str(ckpt))  # rewriting the same monitor is fine
    write_repository(tmp_path / "repo", reference, name="second")  # its own file: <repository>-state/second.ckpt
    # another model's model.py need not be UTF-8 (nor readable): it is not a monitor, and no reason to fail
    other = tmp_path / "repo" / "legacy_model"
    (other / "1").mkdir(parents=True)
    (other / "config.pbtxt").write_text('name: "legacy_model"\nbackend: "python"\n')
    (other / "1" / "model.py").write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n")
    write_repository(tmp_path / "repo", reference, name="third", checkpoint=str(tmp_path / "third.ckpt"))


def test_without_flock_a_new_instance_resumes_the_checkpoint_at_once(monitor, pb, rng, tmp_path, monkeypatch):
    """Where there is no fcntl (Windows) there is no hand-over: a reload's new instance resumes the last
    checkpoint in initialize, as before."""
    from cudrift.integrations.triton import model as model_module

    monkeypatch.setattr(model_module, "fcntl", None)
    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    _owner_of_120_rows(start, rng, ckpt)  # the old instance, still serving
    new = start()
    assert new.state.rows_total == 120 and not (tmp_path / "w.ckpt.owner").exists()


def test_one_execute_call_waits_for_a_stalled_worker_once_not_once_per_request(tmp_path, reference, pb, rng,
                                                                               monkeypatch):
    """The backpressure wait is bounded so that a stalled worker cannot hang the server, but execute gave each
    request the whole bound: a dynamically batched call of 4 requests waited 40 s. Its requests share one."""
    import threading

    from cudrift.integrations.triton import model as model_module

    monkeypatch.setattr(model_module, "BACKPRESSURE_SECONDS", 0.5)
    repo = write_repository(tmp_path / "repo", reference, window_rows=10_000, checkpoint="", max_backlog_rows=100)
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    stalled, profile_ = threading.Event(), m.state._profile
    monkeypatch.setattr(m.state, "_profile", lambda batches, window: stalled.wait(60) and profile_(batches, window))
    t0 = time.monotonic()
    out = m.execute([request(rng, 200) for _ in range(4)])
    elapsed = time.monotonic() - t0
    stalled.set()
    try:
        assert all(r.error is None for r in out) and m.state.rows_total == 800
        assert 0.5 <= elapsed < 1.5, elapsed  # the bound once, not four times (2 s), nor 10 s each
        wait_for(lambda: m.state.backlog_rows == 0)
    finally:
        m.finalize()
    assert 0.5 <= value(pb, "cudrift_backpressure_seconds_total") < 1.5


def test_periodic_checkpoint_holds_rows_accepted_before_it(monitor, pb, rng, tmp_path):
    repo, start = monitor
    m = start()
    m.execute([request(rng, 200)])
    ckpt = tmp_path / "w.ckpt"
    wait_for(lambda: ckpt.exists() and _checkpoint_rows(m, ckpt) == 200)


def _beside_checkpoint(folder):
    """The files of the checkpoint's folder, less the owner's lock file (``w.ckpt.owner``, always there)."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith(".owner"))


def _checkpoint_rows(m, path):
    st = WindowState(m.reference, m.layout, window_rows=500)
    st.restore(path.read_bytes())
    return st.open_rows


def test_unusable_checkpoint_is_set_aside(monitor, pb, tmp_path):
    repo, start = monitor
    (tmp_path / "w.ckpt").write_bytes(b"CDRF not really")
    m = start()
    assert m.state.open_rows == 0
    assert [n.startswith("w.ckpt.unusable-") for n in _beside_checkpoint(tmp_path)] == [True]
    assert any(level == "error" and "not resumed" in msg for level, msg in pb.logs)


def test_initialize_refuses_several_instances(monitor, pb):
    repo, _ = monitor
    args = model_args(repo)
    cfg = json.loads(args["model_config"])
    cfg["instance_group"][0]["count"] = 2
    with pytest.raises(pb.TritonModelException, match="needs exactly one"):
        TritonPythonModel().initialize({**args, "model_config": json.dumps(cfg)})


def test_initialize_refuses_bytes_inputs_when_as_numpy_misreads(monitor, pb, monkeypatch):
    repo, _ = monitor

    class Misread(FakeTensor):  # what a stub built for NumPy 1 does under NumPy 2
        @staticmethod
        def from_dlpack(name, obj):
            a = np.from_dlpack(obj)
            return Misread(name, np.broadcast_to(a.flat[0], a.shape))

    monkeypatch.setattr(pb, "Tensor", Misread)
    monkeypatch.setattr("cudrift.integrations.triton.model._NUMPY2", True)
    with pytest.raises(pb.TritonModelException, match="numpy<2"):
        TritonPythonModel().initialize(model_args(repo))


def test_gpu_instance_without_cupy_says_what_to_install(monitor, pb, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    repo, _ = monitor
    with pytest.raises(pb.TritonModelException, match=r"needs CuPy.*cudrift\[cuda12\]"):
        TritonPythonModel().initialize(model_args(repo, instance_kind="GPU"))


def test_a_gpu_instance_whose_warm_up_fails_profiles_on_the_cpu(tmp_path, reference, pb, rng, monkeypatch):
    """The GPU warm-up compiles the kernels in initialize: a CUDA setup problem there (no NVVM, bindings for
    another driver) failed the monitor's load, and with its served model in an ensemble Triton stopped the
    server. The monitor now profiles on the CPU, says why and what to install, and shows it on the metrics port."""
    import cudrift.detect.detector as detector_mod
    import cudrift.integrations.triton.model as model_mod

    class NvvmSupportError(Exception):  # numba-cuda's, when libNVVM cannot be found
        pass

    real_profile = model_mod.profile

    def profile(data, like, backend):
        if backend == "gpu":
            raise NvvmSupportError("libNVVM cannot be found")
        return real_profile(data, like=like, backend=backend)

    # a KIND_GPU instance whose GPU backend looks usable (CuPy imports, a device is there) until it compiles
    device = types.SimpleNamespace(use=lambda: None)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(asarray=np.asarray,
                                                                   cuda=types.SimpleNamespace(Device=lambda i: device)))
    for mod in (model_mod, detector_mod):
        monkeypatch.setattr(mod, "resolve_backend", lambda name: name)
    monkeypatch.setattr(model_mod, "profile", profile)
    repo = write_repository(tmp_path / "repo", reference, window_rows=500, checkpoint="", kind="gpu")
    m = TritonPythonModel()
    m.initialize(model_args(repo, instance_kind="GPU"))
    try:
        assert (m.backend, m.state.backend, m.detector.backend) == ("cpu", "cpu", "cpu")
        errors = [msg for level, msg in pb.logs if level == "error"]
        assert len(errors) == 1 and "NvvmSupportError: libNVVM cannot be found" in errors[0]
        assert "profiling on the CPU" in errors[0] and "cudrift[cuda12]" in errors[0]
        assert value(pb, "cudrift_monitor_backend", backend="cpu") == 1
        assert value(pb, "cudrift_monitor_backend", backend="gpu") == 0
        assert all(r.error is None for r in m.execute([request(rng, 300), request(rng, 300)]))
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
    finally:
        m.finalize()


def test_checkpoint_that_cannot_be_written_is_logged_and_serving_goes_on(tmp_path, reference, pb, rng):
    (tmp_path / "blocker").write_text("a file where the checkpoint folder should be")
    repo = write_repository(tmp_path / "repo", reference, window_rows=300,
                            checkpoint=str(tmp_path / "blocker" / "w.ckpt"), checkpoint_seconds=30)
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        for _ in range(3):
            assert all(r.error is None for r in m.execute([request(rng, 250)]))
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
        time.sleep(0.6)  # a few more worker passes: no retry before checkpoint_seconds
        errors = [msg for level, msg in pb.logs if level == "error"]
        assert len(errors) == 1 and "not written" in errors[0]
    finally:
        m.finalize()


def test_initialize_counts_gpu_instances_per_listed_gpu(monitor, pb):
    """``count: 1`` on two GPUs is two instances, which would share one window and checkpoint."""
    repo, _ = monitor
    args = model_args(repo)
    cfg = json.loads(args["model_config"])
    cfg["instance_group"] = [{"kind": "KIND_GPU", "count": 1, "gpus": [0, 1]}]
    with pytest.raises(pb.TritonModelException, match="2 instances configured"):
        TritonPythonModel().initialize({**args, "model_config": json.dumps(cfg)})


def test_a_window_whose_comparison_fails_is_counted_and_the_monitor_goes_on(monitor, pb, rng, tmp_path):
    repo, start = monitor
    m = start()
    real, calls = m.detector.compare, []

    def compare(p):
        calls.append(p.n_rows)
        if len(calls) == 1:
            raise RuntimeError("simulated failure")
        return real(p)

    m.detector.compare = compare
    m.execute([request(rng, 500), request(rng, 120)])
    # the failure is published as the window closes, the closed count at the end of that worker pass
    wait_for(lambda: value(pb, "cudrift_window_compare_failures_total") == 1
             and value(pb, "cudrift_windows_closed_total") == 1)
    assert np.isnan(value(pb, "cudrift_dataset_drift_share"))
    assert any(level == "error" and "comparison failed" in msg and "simulated" in msg for level, msg in pb.logs)
    # the rest of that pass ran: the open window's rows reached the checkpoint
    wait_for(lambda: (tmp_path / "w.ckpt").exists() and _checkpoint_rows(m, tmp_path / "w.ckpt") == 120)
    # the data-quality counters still count the failed window's rows
    assert value(pb, "cudrift_feature_nulls_total", feature="a") == 0
    m.execute([request(rng, 380)])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
    wait_for(lambda: not np.isnan(value(pb, "cudrift_dataset_drift_share")))
    assert value(pb, "cudrift_window_compare_failures_total") == 1 and calls == [500, 500]


def test_rows_that_cannot_be_profiled_are_dropped_counted_and_logged(monitor, pb, rng):
    repo, start = monitor
    m = start()
    real = m.state._profile

    def profile(batches, window):
        if any((b["NUMERIC"] == 12345.0).any() for b in batches):
            raise MemoryError("simulated")
        return real(batches, window)

    m.state._profile = profile
    poison = request(rng, 40)
    poison["NUMERIC"]._a[3, 1] = 12345.0
    assert all(r.error is None for r in m.execute([request(rng, 300), poison, request(rng, 160)]))
    wait_for(lambda: value(pb, "cudrift_window_dropped_rows_total") == 40)
    assert value(pb, "cudrift_window_rows_total") == 500 and value(pb, "cudrift_windows_closed_total") == 1
    assert any(level == "error" and "40 accepted rows dropped" in msg for level, msg in pb.logs)
    m.finalize()
    pb.registry.clear()
    m2 = start()  # the checkpoint (window 0 held 460 rows) resumes, counters included
    assert (m2.state.rows_total, m2.state.rows_dropped, m2.state.windows_closed) == (500, 40, 1)
    assert value(pb, "cudrift_window_dropped_rows_total") == 40


def test_finalize_checkpoints_even_when_its_last_pass_fails(monitor, pb, rng, tmp_path):
    repo, start = monitor
    m = start()
    m.execute([request(rng, 110)])

    def broken(*args, **kwargs):
        raise RuntimeError("simulated")

    m.state.seal_expired = broken  # the final pass fails before reaching its checkpoint
    m.finalize()
    assert any(level == "error" and "worker pass failed" in msg for level, msg in pb.logs)
    assert _checkpoint_rows(m, tmp_path / "w.ckpt") == 110


def test_periodic_checkpoint_marks_saved_only_the_rows_it_holds(monitor, pb, rng, tmp_path, monkeypatch):
    """Rows accepted while a checkpoint is written are not in it: a later periodic one must still take them."""
    import cudrift.integrations.triton.model as model_mod

    repo, start = monitor
    m = start()
    real, writes = model_mod.write_atomic, []

    def write(path, data):
        if not writes:
            m.state.accept({k: v._a.copy() if k == "NUMERIC" else _read(m, v, k)
                            for k, v in request(rng, 50).items()}, 50)  # a request during the write
        writes.append(len(data))
        return real(path, data)

    monkeypatch.setattr(model_mod, "write_atomic", write)
    m.execute([request(rng, 100)])
    ckpt = tmp_path / "w.ckpt"
    wait_for(lambda: ckpt.exists() and _checkpoint_rows(m, ckpt) == 150)  # no traffic after the write
    assert m.state.rows_total == 150


def _read(m, tensor, name):
    g = next(g for g in m.layout.groups if g.name == name)
    return m._array(tensor, g)


def test_a_request_answered_with_an_error_leaves_no_rows_in_the_window(monitor, pb, rng, monkeypatch):
    import cudrift.integrations.triton.model as model_mod

    repo, start = monitor
    m = start()
    real, calls = model_mod._output_tensor, []

    def output(*args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated")
        return real(*args)

    monkeypatch.setattr(model_mod, "_output_tensor", output)
    out = m.execute([request(rng, 30), request(rng, 20)])
    assert "internal error" in out[0].error.message() and out[1].error is None
    assert m.state.rows_total == 20  # a retry of the failed request will not count its rows twice
    wait_for(lambda: value(pb, "cudrift_bad_requests_total", reason="internal") == 1)


def test_a_restarted_monitor_shows_the_last_windows_gauges_again(monitor, pb, rng):
    """Alerts on the drift gauges and on the last close's timestamp keep their series across a restart."""
    repo, start = monitor
    m = start()
    m.execute([request(rng, 500, shift=5.0, city=("lima",)), request(rng, 100)])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
    names = ("cudrift_dataset_drift_share", "cudrift_dataset_drift", "cudrift_last_window_close_timestamp_seconds",
             "cudrift_last_window_close_duration_seconds")
    before = {n: value(pb, n) for n in names}
    drifted = {f: value(pb, "cudrift_feature_drifted", feature=f) for f in ("a", "b", "c", "city", "region")}
    score_b = value(pb, "cudrift_feature_drift_score", feature="b")
    assert drifted["b"] == 1 and drifted["city"] == 1 and before["cudrift_dataset_drift_share"] > 0
    m.finalize()
    pb.registry.clear()
    m2 = start()
    assert {n: value(pb, n) for n in names} == before
    assert {f: value(pb, "cudrift_feature_drifted", feature=f) for f in drifted} == drifted
    assert value(pb, "cudrift_feature_drift_score", feature="b") == score_b
    share = np.from_dlpack(m2.execute([request(rng, 5)])[0].output_tensors[0])
    assert float(share[0, 0]) == pytest.approx(before["cudrift_dataset_drift_share"])


def test_the_window_close_duration_includes_publication(monitor, pb, rng):
    """Its help text says last fold, comparison and publication: publishing (one IPC round trip per series in
    Triton, many with many features) was left out, measured before it."""
    repo, start = monitor
    m = start()
    show = m.metrics._show

    def slow_show(last):  # publishing the drift gauges takes a second
        time.sleep(1.0)
        show(last)

    m.metrics._show = slow_show
    m.execute([request(rng, 500)])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
    assert value(pb, "cudrift_last_window_close_duration_seconds") >= 1.0
    assert value(pb, "cudrift_window_close_duration_seconds_total") >= 1.0


def test_bad_requests_pass_answers_nan_so_an_ensemble_keeps_its_outputs(tmp_path, reference, pb, rng):
    """With bad_requests="pass" a refused request is counted and left out of the window, but answered."""
    repo = write_repository(tmp_path / "repo", reference, window_rows=500, checkpoint="", bad_requests="pass")
    assert repo.settings.bad_requests == "pass"
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        nan = {**request(rng, 40), "NUMERIC": FakeTensor("NUMERIC", np.full((40, 3), np.nan, np.float32))}
        latin1 = {**request(rng, 2),
                  "CATEGORICAL": FakeTensor("CATEGORICAL", np.array([[b"caf\xe9"], [b"x"]], dtype=object))}
        # its first input missing: the others tell its row count
        missing = {k: v for k, v in request(rng, 5).items() if k != "NUMERIC"}
        # inputs that disagree, or none at all: the row count cannot be told, so no answer can stand in
        mismatch = {**request(rng, 7), "CATEGORICAL_INT": FakeTensor("CATEGORICAL_INT", np.zeros((6, 1), np.int64))}
        out = m.execute([nan, request(rng, 30), latin1, missing, request(rng, 0), mismatch, {}])
        assert [r.error is None for r in out] == [True, True, True, True, True, False, False]
        shapes = [np.from_dlpack(r.output_tensors[0]).shape for r in out if r.error is None]
        assert shapes == [(40, 1), (30, 1), (2, 1), (5, 1), (0, 1)]
        assert np.isnan(np.from_dlpack(out[0].output_tensors[0])).all()
        assert np.isnan(np.from_dlpack(out[3].output_tensors[0])).all()
        assert "6 rows, the others 7" in out[5].error.message() and "missing input 'NUMERIC'" in out[6].error.message()
        assert m.state.rows_total == 30  # only the good request's rows
        wait_for(lambda: value(pb, "cudrift_requests_total") == 7)
        reasons = {r: value(pb, "cudrift_bad_requests_total", reason=r) for r in BAD_REQUEST_REASONS}
        assert {r: v for r, v in reasons.items() if v} == {"nan_only": 1, "unreadable": 1, "missing_input": 2,
                                                           "empty_batch": 1, "batch_mismatch": 1}
    finally:
        m.finalize()


def test_the_references_own_values_sent_as_fp32_are_in_range(tmp_path, pb, rng):
    """A float64 reference, its own values through the FP32 input: rounding moves its extremes outward by an
    ulp, which must not count as out of range (every window of clean traffic did)."""
    x = rng.normal(size=(3000, 2))
    ref = cudrift.profile({"u": x[:, 0], "v": x[:, 1]})
    repo = write_repository(tmp_path / "repo", ref, window_rows=3000, checkpoint="")
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        out = m.execute([{"NUMERIC": FakeTensor("NUMERIC", x.astype(np.float32))}])
        assert out[0].error is None
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert value(pb, "cudrift_feature_out_of_range_total", feature="u") == 0
        assert value(pb, "cudrift_feature_out_of_range_total", feature="v") == 0
        assert value(pb, "cudrift_feature_drifted", feature="u") == 0
        # a value one float32 step past the reference's maximum (rounded up to float32) still is out of range
        top = np.float32(x[:, 0].max())
        top = np.nextafter(top, np.float32(np.inf)) if top < x[:, 0].max() else top
        hi = np.nextafter(top, np.float32(np.inf))
        m.execute([{"NUMERIC": FakeTensor("NUMERIC", np.tile([[hi, 0.0]], (3000, 1)).astype(np.float32))}])
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
        assert value(pb, "cudrift_feature_out_of_range_total", feature="u") >= 3000
    finally:
        m.finalize()


def test_out_of_range_against_a_window_reference_counts_its_own_range(tmp_path, pb, rng):
    """A window profiled like= another reference, given as the monitor's reference: the counter counts values
    outside the window's own [min, max] (it counted only those past the other reference's, none of these), and
    the window's own values sent as FP32 are not out of range."""
    wide = cudrift.profile({"u": rng.normal(size=5000), "v": rng.normal(size=5000)})
    x = rng.uniform(-1, 1, size=(3000, 2))
    ref = cudrift.profile({"u": x[:, 0], "v": x[:, 1]}, like=wide)
    repo = write_repository(tmp_path / "repo", ref, window_rows=3000, checkpoint="")
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        assert m.execute([{"NUMERIC": FakeTensor("NUMERIC", x.astype(np.float32))}])[0].error is None
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert value(pb, "cudrift_feature_out_of_range_total", feature="u") == 0
        assert value(pb, "cudrift_feature_out_of_range_total", feature="v") == 0
        y = rng.uniform(-1.5, 1.5, size=(3000, 2)).astype(np.float32)  # inside wide's edges, a third outside x's
        m.execute([{"NUMERIC": FakeTensor("NUMERIC", y)}])
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
        for j, name in enumerate(("u", "v")):
            lo, hi = ref[name].moments.min, ref[name].moments.max
            want = int(np.sum((y[:, j] < lo) | (y[:, j] > hi)))
            assert want > 800 and value(pb, "cudrift_feature_out_of_range_total", feature=name) == want
    finally:
        m.finalize()


@pytest.mark.parametrize("policy", ["psi", "ks"])
def test_fp32_traffic_of_a_rounded_float64_feature_does_not_drift(tmp_path, pb, rng, policy):
    """The NUMERIC input is FP32, and float32(0.7) is not 0.7: a feature rounded to one decimal in a float64
    reference drifted on every window of its own distribution (PSI 0.6; KS at every atom). Windows are compared
    at the input's precision."""
    ref = cudrift.profile({"price": np.round(rng.normal(50, 5, 20_000), 1),
                           "rate": rng.integers(0, 30, 20_000) * 0.1})
    repo = write_repository(tmp_path / "repo", ref, window_rows=5000, checkpoint="", policy=policy)
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        x = np.stack([np.round(rng.normal(50, 5, 5000), 1), rng.integers(0, 30, 5000) * 0.1], axis=1)
        assert m.execute([{"NUMERIC": FakeTensor("NUMERIC", x.astype(np.float32))}])[0].error is None
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        for f in ("price", "rate"):
            assert value(pb, "cudrift_feature_drifted", feature=f, test=policy) == 0
            assert value(pb, "cudrift_feature_drift_score", feature=f, test=policy) < 0.05
    finally:
        m.finalize()


def test_a_features_old_test_series_turn_nan_rather_than_vanish(pb, reference):
    """When a feature's test changes, its old series are set to NaN and kept: a reloaded model's other
    instance may hold the same series, which deleting would free under it."""
    from cudrift.integrations.triton._layout import FeatureLayout
    from cudrift.integrations.triton._metrics import MonitorMetrics

    metrics = MonitorMetrics(pb, "scorer", FeatureLayout.from_profile(reference))
    metrics._show({"share": 0.0, "dataset_drift": 0.0, "features": {"a": ["ks", 0.05, 0.4, 0.0]}})
    metrics._show({"share": 1.0, "dataset_drift": 1.0, "features": {"a": ["chisquare", 9.0, 0.001, 1.0]}})
    assert value(pb, "cudrift_feature_drift_score", feature="a", test="chisquare") == 9.0
    assert np.isnan(value(pb, "cudrift_feature_drift_score", feature="a", test="ks"))
    assert np.isnan(value(pb, "cudrift_feature_drifted", feature="a", test="ks"))


def _served_model(root, outputs, name="scorer", features=2):
    """A served model's folder (its config only matters: write_repository reads it)."""
    d = root / name
    (d / "1").mkdir(parents=True)
    (d / "1" / "model.py").write_text("# served model\n")
    outs = ",\n".join(f'{{ name: "{n}" data_type: {t} dims: [ 1 ] }}' for n, t in outputs)
    (d / "config.pbtxt").write_text(
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 512\n'
        f'input [ {{ name: "FEATURES" data_type: TYPE_FP32 dims: [ {features} ] }} ]\noutput [\n{outs}\n]\n'
    )
    return d


def test_two_monitors_of_one_served_model_publish_series_of_their_own(tmp_path, pb, rng):
    """Two monitors of served model s1 (two references, two ensembles) in one server: every series was labelled
    model="s1" only, so their row and window counters added up in one series and each gauge showed whichever
    monitor published last. The monitor label (the monitor model's name) tells them apart."""
    f = rng.normal(size=(3000, 2))
    ref = cudrift.profile({"a": f[:, 0], "b": f[:, 1], "SCORE": f.sum(axis=1)})
    ref_alt = cudrift.profile({"a": f[:, 0] + 5, "b": f[:, 1] + 5, "SCORE": f.sum(axis=1) + 10})
    root = tmp_path / "repo"
    served = _served_model(tmp_path / "models", [("SCORE", "TYPE_FP64")], name="s1")
    repos = [write_repository(root, ref, model=served, name="mon1", window_rows=100, checkpoint="", policy="ks"),
             write_repository(root, ref_alt, model="s1", name="mon1b", ensemble="s1_alt", window_rows=100,
                              checkpoint="", policy="ks")]
    monitors = []
    try:
        for repo in repos:
            monitors.append(TritonPythonModel())
            monitors[-1].initialize(model_args(repo))
        for m, windows in zip(monitors, (2, 3)):
            x = rng.normal(size=(100 * windows, 2))
            assert m.execute([{"NUMERIC": FakeTensor("NUMERIC", x.astype(np.float32)),
                               "SCORE": FakeTensor("SCORE", x.sum(axis=1, keepdims=True))}])[0].error is None
        for mon, windows in (("mon1", 2), ("mon1b", 3)):
            wait_for(lambda: value(pb, "cudrift_windows_closed_total", monitor=mon, model="s1") == windows
                     and value(pb, "cudrift_window_rows_total", monitor=mon, model="s1") == 100 * windows)
        # mon1's traffic is like its reference, far from mon1b's
        assert value(pb, "cudrift_dataset_drift_share", monitor="mon1") < 1
        assert value(pb, "cudrift_dataset_drift_share", monitor="mon1b") == 1
        for name, series in pb.registry.items():
            if not series:
                continue  # (no categorical feature: no unseen-categories series)
            assert {dict(k)["monitor"] for k in series} == {"mon1", "mon1b"}, name
            assert {dict(k)["model"] for k in series} == {"s1"}, name
    finally:
        for m in monitors:
            m.finalize()


def test_a_checkpoint_written_under_another_input_layout_is_set_aside(tmp_path, pb, rng):
    """One float64 reference, its SCORE first sent in NUMERIC (FP32: its outer edges widened to float32), then
    fed by an FP64 output (not widened): the saved windows do not merge with the new reference. The checkpoint
    is set aside and the monitor loads (it once refused to load, and Triton the ensemble with it)."""
    f = rng.normal(size=(3000, 2))
    ref = cudrift.profile({"a": f[:, 0], "b": f[:, 1], "SCORE": f.sum(axis=1)})
    ckpt = tmp_path / "w.ckpt"
    repo = write_repository(tmp_path / "repo", ref, window_rows=1000, checkpoint=str(ckpt))  # monitor alone
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    out = m.execute([{"NUMERIC": FakeTensor("NUMERIC", rng.normal(size=(300, 3)).astype(np.float32))}])
    assert out[0].error is None
    m.finalize()
    assert _checkpoint_rows(m, ckpt) == 300
    served = _served_model(tmp_path / "models", [("SCORE", "TYPE_FP64")])
    repo = write_repository(tmp_path / "repo", ref, model=served, window_rows=1000, checkpoint=str(ckpt))
    assert repo.layout.group("SCORE").data_type == "TYPE_FP64"
    m2 = TritonPythonModel()
    m2.initialize(model_args(repo))
    try:
        assert m2.state.open_rows == 0 and not ckpt.exists()
        assert [n.startswith("w.ckpt.unusable-") for n in _beside_checkpoint(tmp_path)] == [True]
        assert any(level == "error" and "not resumed" in msg and "different reference" in msg
                   for level, msg in pb.logs)
        x = rng.normal(size=(50, 2))
        out = m2.execute([{"NUMERIC": FakeTensor("NUMERIC", x.astype(np.float32)),
                           "SCORE": FakeTensor("SCORE", x.sum(axis=1, keepdims=True))}])
        assert out[0].error is None and m2.state.rows_total == 50
    finally:
        m2.finalize()


def test_no_checkpoint_can_keep_the_monitor_from_loading(monitor, pb, rng, tmp_path, monkeypatch):
    """Whatever restoring a checkpoint raises (out of memory and I/O errors aside: see the next test), it is set
    aside with the reason logged, and a new window starts."""
    repo, start = monitor
    m = start()
    m.execute([request(rng, 120)])
    m.finalize()

    def restore(self, data):
        raise KeyError("simulated")

    monkeypatch.setattr(WindowState, "restore", restore)
    m2 = start()
    assert m2.state.open_rows == 0 and m2.state.rows_total == 0
    assert [n.startswith("w.ckpt.unusable-") for n in _beside_checkpoint(tmp_path)] == [True]
    assert any(level == "error" and "not resumed" in msg and "KeyError" in msg and "simulated" in msg
               for level, msg in pb.logs)


def test_a_feature_without_a_result_reads_nan_not_the_last_windows_values(tmp_path, pb, rng):
    """A window with nothing to test for a feature (all NaN): its p-value and verdict are NaN (no result), not
    the previous window's p-value next to a verdict of 0."""
    ref = cudrift.profile({c: rng.normal(size=3000).astype(np.float32) for c in "ab"})
    repo = write_repository(tmp_path / "repo", ref, window_rows=200, checkpoint="", policy="ks")
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        x = rng.normal(size=(200, 2)).astype(np.float32)
        m.execute([{"NUMERIC": FakeTensor("NUMERIC", x)}])
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert 0 < value(pb, "cudrift_feature_drift_pvalue", feature="b", test="ks") <= 1
        assert value(pb, "cudrift_feature_drifted", feature="b", test="ks") == 0
        x[:, 1] = np.nan
        m.execute([{"NUMERIC": FakeTensor("NUMERIC", x)}])
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
        for family in ("cudrift_feature_drift_score", "cudrift_feature_drift_pvalue", "cudrift_feature_drifted"):
            assert np.isnan(value(pb, family, feature="b", test="ks")), family
        assert 0 < value(pb, "cudrift_feature_drift_pvalue", feature="a", test="ks") <= 1
        assert value(pb, "cudrift_dataset_drift_share") == 0  # of the tested features
    finally:
        m.finalize()


@pytest.mark.parametrize("data_type, dtype", [("TYPE_FP16", np.float16), ("TYPE_FP32", np.float32),
                                              ("TYPE_FP64", np.float64)])
def test_the_references_own_predictions_at_the_outputs_precision_are_in_range(tmp_path, pb, rng, data_type, dtype):
    """A float64 reference's prediction column sent at the served output's own precision: its extremes, rounded
    to that precision, are in range (FP16 ones counted as out of range); one step past them is not."""
    p = rng.normal(size=3000)
    ref = cudrift.profile({"a": rng.normal(size=3000), "b": rng.normal(size=3000), "score": p})
    served = _served_model(tmp_path / "models", [("score", data_type)])
    repo = write_repository(tmp_path / "repo", ref, model=served, window_rows=3000, checkpoint="")
    assert repo.layout.group("score").data_type == data_type
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        numeric = FakeTensor("NUMERIC", rng.normal(size=(3000, 2)).astype(np.float32))
        out = m.execute([{"NUMERIC": numeric, "score": FakeTensor("score", p.astype(dtype).reshape(-1, 1))}])
        assert out[0].error is None
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert value(pb, "cudrift_feature_out_of_range_total", feature="score") == 0
        top = dtype(p.max())
        top = np.nextafter(top, dtype(np.inf)) if top < p.max() else top  # the reference's max rounded up
        past = np.full((3000, 1), np.nextafter(top, dtype(np.inf)), dtype=dtype)
        m.execute([{"NUMERIC": numeric, "score": FakeTensor("score", past)}])
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 2)
        assert value(pb, "cudrift_feature_out_of_range_total", feature="score") == 3000
    finally:
        m.finalize()


def test_a_restored_time_window_whose_time_ran_out_closes_before_new_rows_join_it(tmp_path, reference, pb, rng,
                                                                                   monkeypatch):
    """A window holding rows whose time ran out while the server was down is sealed by initialize, as it would
    have been: the first request after the restart starts the next window (its rows once joined the old one)."""
    import functools

    import cudrift.integrations.triton.model as model_mod

    clock = [1000.0]  # the windows' wall clock
    monkeypatch.setattr(model_mod, "WindowState", functools.partial(WindowState, clock=lambda: clock[0]))
    monkeypatch.setattr(model_mod, "WORKER_TICK_SECONDS", 60.0)  # the worker runs when woken only: no race
    repo = write_repository(tmp_path / "repo", reference, window_rows=0, window_seconds=60,
                            checkpoint=str(tmp_path / "w.ckpt"))
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    assert m.execute([request(rng, 40)])[0].error is None  # window 0 opens at 1000
    m.finalize()
    clock[0] += 3600  # an hour down
    m2 = TritonPythonModel()
    m2.initialize(model_args(repo))
    try:
        assert (m2.state.open_window_id, m2.state.open_rows, m2.state.sealed_windows) == (1, 0, 1)
        assert m2.execute([request(rng, 5)])[0].error is None
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert any("window 0 closed (40 rows)" in msg for _, msg in pb.logs)
        assert m2.state.open_rows == 5
        clock[0] += 59  # window 1 spans 60 s from its first row
        assert not m2.state.needs_work()
        clock[0] += 1
        assert m2.state.needs_work()
    finally:
        m2.finalize()


def test_a_worker_under_sustained_load_still_publishes_and_checkpoints(monitor, pb, rng, tmp_path, monkeypatch):
    """Each comparison lets the next full window arrive (requests faster than windows close): every worker pass
    still publishes the counters and writes its checkpoint (the worker once closed windows forever, publishing
    and saving nothing), and each window is closed once, in order."""
    import cudrift.integrations.triton.model as model_mod

    repo, start = monitor
    m = start()
    real_write, writes = model_mod.write_atomic, []

    def write(path, data):
        writes.append(len(data))
        return real_write(path, data)

    monkeypatch.setattr(model_mod, "write_atomic", write)
    real_compare, seen = m.detector.compare, []
    full = request(rng, 500)

    def compare(window):
        seen.append((len(writes), value(pb, "cudrift_requests_total")))  # what was saved and published so far
        if len(seen) < 12:
            assert m.execute([full])[0].error is None  # seals the next window
        return real_compare(window)

    m.detector.compare = compare
    m.execute([full])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 12)
    # window k is compared after k checkpoints, and after the requests of the k windows before it were counted
    assert [w for w, _ in seen] == list(range(12))
    assert [r for _, r in seen] == [0] + list(range(2, 13))
    closed = [msg.split(" closed ")[0].rsplit(" ", 1)[1] for _, msg in pb.logs if " closed (500 rows)" in msg]
    assert closed == [str(k) for k in range(12)]
    m.finalize()
    st = WindowState(m.reference, m.layout, window_rows=500)
    st.restore((tmp_path / "w.ckpt").read_bytes())
    assert (st.windows_closed, st.sealed_windows, st.rows_total) == (12, 0, 6000)


@pytest.mark.parametrize("policy, test", [("auto", "wasserstein_normalized"), ("ks", "ks")])
def test_a_window_in_which_no_feature_could_be_tested_gives_no_verdict(tmp_path, pb, rng, policy, test):
    """Nothing but infinities and NaN: no feature has a value to test. The dataset gauges and DRIFT_SHARE read NaN
    (no verdict, as after a failed comparison), not a share of 0 ("no drift"), and each feature never tested
    before gets its series, NaN, under the test its policy picks."""
    ref = cudrift.profile({c: rng.normal(size=3000).astype(np.float32) for c in "ab"})
    repo = write_repository(tmp_path / "repo", ref, window_rows=200, checkpoint="", policy=policy)
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        x = np.full((200, 2), np.inf, np.float32)
        x[:100, 1] = np.nan
        assert m.execute([{"NUMERIC": FakeTensor("NUMERIC", x)}])[0].error is None
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert np.isnan(value(pb, "cudrift_dataset_drift_share")) and np.isnan(value(pb, "cudrift_dataset_drift"))
        for f in "ab":
            assert np.isnan(value(pb, "cudrift_feature_drift_score", feature=f, test=test))
            assert np.isnan(value(pb, "cudrift_feature_drifted", feature=f, test=test))
            pvalue = value(pb, "cudrift_feature_drift_pvalue", feature=f)
            assert pvalue is None if test == "wasserstein_normalized" else np.isnan(pvalue)
        share = np.from_dlpack(m.execute([{"NUMERIC": FakeTensor("NUMERIC", x[:1])}])[0].output_tensors[0])
        assert np.isnan(share).all()
        assert any("window 0 closed" in msg and "no feature could be tested" in msg for _, msg in pb.logs)
    finally:
        m.finalize()


def test_a_per_column_policy_reaches_the_monitor(tmp_path, reference, pb, rng):
    """A dict policy (one test per column) is written to config.pbtxt as JSON and read back by initialize: column
    a is tested with ks, the others by the auto rule."""
    repo = write_repository(tmp_path / "repo", reference, window_rows=200, checkpoint="", policy={"a": "ks"})
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        assert m.settings.policy == {"a": "ks"} and m.settings == repo.settings
        assert m.execute([request(rng, 200)])[0].error is None
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert 0 <= value(pb, "cudrift_feature_drift_pvalue", feature="a", test="ks") <= 1
        assert np.isfinite(value(pb, "cudrift_feature_drift_score", feature="b", test="wasserstein_normalized"))
        assert value(pb, "cudrift_feature_drift_score", feature="b", test="ks") is None
    finally:
        m.finalize()


def test_device_inputs_are_copied_before_execute_returns(tmp_path, pb, rng):
    """A GPU instance profiling on the device copies its inputs there with CuPy, asynchronously; Triton may release
    a request's input buffers once execute returns, so the copies are waited for by then (one stream
    synchronization per request), with no NUMERIC input whose NaN check would happen to wait, and for a refused
    request too."""
    calls = []

    class DeviceArray:  # a CuPy array: copy() is queued on the current stream
        def __init__(self, a):
            self.a = a

        def copy(self):
            calls.append("copy")
            return self.a.copy()

    class Stream:
        def synchronize(self):
            calls.append("synchronize")

    class DeviceTensor(FakeTensor):
        def is_cpu(self):
            return False

    cupy = types.SimpleNamespace(from_dlpack=lambda t: DeviceArray(np.from_dlpack(t)),
                                 cuda=types.SimpleNamespace(get_current_stream=Stream))
    ref = cudrift.profile({"region": rng.integers(0, 5, 1000), "zone": rng.integers(0, 3, 1000)})
    repo = write_repository(tmp_path / "repo", ref, window_rows=1000, checkpoint="")
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    m._cupy, m.backend = cupy, "gpu"  # what a KIND_GPU instance sets up with the GPU backend available
    try:
        good = {"CATEGORICAL_INT": DeviceTensor("CATEGORICAL_INT", rng.integers(0, 5, (20, 2)))}
        narrow = {"CATEGORICAL_INT": DeviceTensor("CATEGORICAL_INT", rng.integers(0, 5, (20, 1)))}
        for req, error in ((good, False), (narrow, True)):
            calls.clear()
            assert (m.execute([req])[0].error is not None) == error
            assert calls == ["copy", "synchronize"]
    finally:
        m.finalize()


def _rewrite_checkpoint(path, **extra):
    """Change the counters (``extra``) a checkpoint holds, its CRC left valid: content the monitor must judge."""
    from cudrift.integrations.triton._state import CHECKPOINT_KIND, CHECKPOINT_VERSION
    from cudrift.sketches import _format

    _, meta, arrays = _format.unpack(path.read_bytes(), CHECKPOINT_KIND, CHECKPOINT_VERSION)
    meta["extra"].update(extra)
    path.write_bytes(_format.pack(CHECKPOINT_KIND, CHECKPOINT_VERSION, meta, arrays))


@pytest.mark.parametrize("extra", [
    {"requests": "many"},
    {"requests": float("inf")},
    {"request_seconds": -1.0},
    {"compare_failures": [3]},
    {"bad": [1, 2]},
    {"nulls": {"a": float("nan")}},
    {"unseen": {"city": True}},
    {"offsets": [1, 2]},
    {"offsets": {"rows": float("inf")}},
    {"offsets": {"rows": "7"}},
    {"clean_shutdown": "no"},
], ids=lambda e: repr(e)[:40])
def test_a_checkpoint_with_unreadable_counters_resumes_its_window_and_restarts_the_counters(monitor, pb, rng,
                                                                                          tmp_path, extra):
    """Counters that are not finite numbers >= 0 (offsets: finite integers), or not where a dict is expected, in
    a checkpoint whose CRC and windows are sound: the monitor loads (initialize raised ValueError, TypeError,
    AttributeError or OverflowError), resumes the window, and restarts the counters as after a crash, logged."""
    repo, start = monitor
    m = start()
    m.execute([request(rng, 120)])
    m.finalize()  # a clean shutdown's checkpoint: its counters would continue
    ckpt = tmp_path / "w.ckpt"
    _rewrite_checkpoint(ckpt, **extra)
    pb.registry.clear()
    m2 = start()
    assert (m2.state.open_rows, m2.state.rows_total) == (120, 120)
    assert set(_counters(pb).values()) == {0}
    assert any(level == "error" and "counters are not continued" in msg for level, msg in pb.logs)
    assert _beside_checkpoint(tmp_path) == ["w.ckpt"]  # not set aside
    m2.execute([request(rng, 380)])
    wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1 and value(pb, "cudrift_requests_total") == 1)
    wait_for(lambda: value(pb, "cudrift_window_rows_total") == 380)


@pytest.mark.parametrize("error", [MemoryError(), OSError(5, "Input/output error")], ids=["MemoryError", "EIO"])
def test_a_checkpoint_that_cannot_be_read_for_now_is_kept_and_not_overwritten(monitor, pb, rng, tmp_path,
                                                                               monkeypatch, error):
    """Out of memory while loading a checkpoint's profiles, or an I/O error while reading the file, says nothing
    about it: it was set aside and the next periodic checkpoint took its name, so the saved window never came
    back. It stays in place now, the monitor loads with a new window and writes no checkpoint over it (said once
    per period); the next start reads it; moved away, checkpoints resume."""
    import pathlib

    repo, start = monitor
    ckpt = tmp_path / "w.ckpt"
    m = start()
    m.execute([request(rng, 120)])
    m.finalize()
    saved = ckpt.read_bytes()

    def failing():
        with monkeypatch.context() as mp:
            if isinstance(error, MemoryError):  # as the checkpoint's window profiles load (not the reference)
                restore, from_bytes, restoring = WindowState.restore, cudrift.Profile.from_bytes, []

                def restore_(self, data):
                    restoring.append(True)
                    return restore(self, data)

                def from_bytes_(data):
                    if restoring:
                        raise error
                    return from_bytes(data)

                mp.setattr(WindowState, "restore", restore_)
                mp.setattr(cudrift.Profile, "from_bytes", from_bytes_)
            else:
                read_bytes = pathlib.Path.read_bytes

                def read_bytes_(path):
                    if path == ckpt:
                        raise error
                    return read_bytes(path)

                mp.setattr(pathlib.Path, "read_bytes", read_bytes_)
            return start()

    m2 = failing()
    assert m2.state.open_rows == 0
    assert _beside_checkpoint(tmp_path) == ["w.ckpt"]  # not set aside
    assert any(level == "error" and "not read" in msg and type(error).__name__ in msg for level, msg in pb.logs)
    m2.execute([request(rng, 80)])
    wait_for(lambda: sum(level == "error" and "not written" in msg for level, msg in pb.logs) >= 2)
    m2.finalize()
    assert ckpt.read_bytes() == saved, "a checkpoint that could not be read was overwritten"

    m3 = start()  # memory back: the saved window resumes
    assert (m3.state.open_rows, m3.state.rows_total) == (120, 120)
    m3.finalize()

    m4 = failing()
    ckpt.rename(tmp_path / "kept.ckpt")  # the operator keeps it elsewhere: this run may checkpoint again
    m4.execute([request(rng, 30)])
    wait_for(lambda: ckpt.exists() and _checkpoint_rows(m4, ckpt) == 30)
    assert any(level == "info" and "moved away" in msg for level, msg in pb.logs)


def test_the_widened_reference_keeps_the_window_flag(rng):
    """_at_input_precision rebuilt the reference without its window flag: a window given as the reference read
    as one whose update() may fix edges."""
    from cudrift.integrations.triton._layout import FeatureLayout
    from cudrift.integrations.triton.model import _at_input_precision

    ref = cudrift.profile({"u": rng.normal(size=500)})
    w = cudrift.profile({"u": rng.normal(size=300)}, like=ref)
    for p in (ref, w):
        wide = _at_input_precision(p, FeatureLayout.from_profile(p))
        assert wide is not p and wide.window is p.window


def test_the_monitors_worker_folds_and_compares_on_its_own_thread(monitor, pb, rng, monkeypatch):
    """The detector compares with workers=1, one GIL contender against execute, but each fold profiled the
    window's rows on a pool of threads: the worker now does all of its work on its own thread."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from cudrift import backends

    monkeypatch.setattr(backends, "usable_cpus", lambda: 4)
    ran = []
    real = ThreadPoolExecutor.submit

    def recording(self, fn, /, *args, **kwargs):
        ran.append(threading.current_thread().name)
        return real(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", recording)
    repo, start = monitor
    m = start()
    try:
        m.execute([request(rng, 300), request(rng, 320)])
        wait_for(lambda: value(pb, "cudrift_windows_closed_total") == 1)
        assert not [n for n in ran if n == "cudrift-monitor"]
    finally:
        m.finalize()


def test_a_checkpoint_reached_through_a_link_is_locked_as_the_file_it_names(tmp_path, reference, pb, rng):
    """write_atomic writes a link's target, but the owner's lock was named after the link: two monitors, one
    given the file and one a link to it, each held a lock of their own and wrote one checkpoint."""
    import os

    real = tmp_path / "a.ckpt"
    os.symlink(real, tmp_path / "b.ckpt")
    repo = write_repository(tmp_path / "repo", reference, window_rows=1000, checkpoint=str(tmp_path / "b.ckpt"))
    m = TritonPythonModel()
    m.initialize(model_args(repo))
    try:
        m.execute([request(rng, 50)])
    finally:
        m.finalize()
    assert (tmp_path / "b.ckpt").is_symlink() and real.is_file()
    assert (tmp_path / "a.ckpt.owner").exists() and not (tmp_path / "b.ckpt.owner").exists()

