"""Triton monitor internals without a server: feature layout, settings, windows, checkpoints."""

import hashlib

import numpy as np
import pytest

import cudrift
from cudrift.errors import FormatError, SchemaError
from cudrift.integrations.triton import FeatureLayout, MonitorSettings, WindowState
from cudrift.integrations.triton._state import CHECKPOINT_KIND, AdoptError
from cudrift.sketches import _format


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(7)
    n = 3000
    return cudrift.profile({
        "a": rng.normal(0, 1, n).astype(np.float32),
        "city": np.array(rng.choice(["paris", "rome", "oslo"], n), dtype=object),
        "b": rng.uniform(0, 10, n).astype(np.float32),
        "region": rng.integers(0, 5, n),
        "flag": rng.random(n) < 0.3,
        "score": rng.exponential(2, n).astype(np.float32),
    })


def _batch(rng, n, shift=0.0):
    return {
        "NUMERIC": np.stack([rng.normal(0, 1, n), rng.uniform(0, 10, n) + shift, rng.exponential(2, n)],
                            axis=1).astype(np.float32),
        "CATEGORICAL": np.array(rng.choice(["paris", "rome", "oslo"], (n, 1)), dtype=object),
        "CATEGORICAL_INT": np.stack([rng.integers(0, 5, n), (rng.random(n) < 0.3)], axis=1).astype(np.int64),
    }


def _folded(reference, lay, rng, rows, **settings):
    """A state of ``settings`` that accepted ``rows`` rows and folded them (what a checkpoint then holds)."""
    st = WindowState(reference, lay, **settings)
    st.accept(_batch(rng, rows), rows)
    st.fold(force=True)
    return st


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


# ------------------------------------------------------------------ layout


def test_layout_groups_follow_reference_order_and_key_types(reference):
    lay = FeatureLayout.from_profile(reference)
    assert [(g.name, g.data_type, g.columns) for g in lay.groups] == [
        ("NUMERIC", "TYPE_FP32", ("a", "b", "score")),
        ("CATEGORICAL", "TYPE_STRING", ("city",)),
        ("CATEGORICAL_INT", "TYPE_INT64", ("region", "flag")),
    ]
    assert lay.key_types(reference) == {"city": "str", "region": "int", "flag": "bool"}
    assert lay.group("CATEGORICAL").client_data_type == "BYTES"


def test_layout_prediction_columns_get_their_own_tensor(reference):
    lay = FeatureLayout.from_profile(reference, {"score": "TYPE_FP32", "region": "TYPE_INT32"})
    assert lay.group("NUMERIC").columns == ("a", "b")
    assert lay.group("score").prediction and lay.group("score").columns == ("score",)
    assert lay.group("CATEGORICAL_INT").columns == ("flag",)
    assert lay.group("region").data_type == "TYPE_INT32"


@pytest.mark.parametrize("pred, message", [
    ({"score": "TYPE_STRING"}, "expected a numeric type"),
    ({"city": "TYPE_FP32"}, "expected TYPE_STRING"),
    ({"nope": "TYPE_FP32"}, "not in the reference"),
])
def test_layout_rejects_bad_prediction_columns(reference, pred, message):
    with pytest.raises(SchemaError, match=message):
        FeatureLayout.from_profile(reference, pred)


# ------------------------------------------------------------------ settings


def test_settings_round_trip_through_config_parameters():
    s = MonitorSettings(window_rows=500, window_seconds=2.5, sliding_windows=3, checkpoint="/x/y.ckpt",
                        predictions=("score",), policy="ks")
    params = {k: {"string_value": v} for k, v in s.to_parameters().items()}
    params["FORCE_CPU_ONLY_INPUT_TENSORS"] = {"string_value": "no"}  # not ours: ignored
    assert MonitorSettings.from_parameters(params) == s


@pytest.mark.parametrize("params, message", [
    ({"cudrift_window_rows": "0"}, "window_rows > 0 or window_seconds > 0"),
    ({"cudrift_window_rows": "ten"}, "Invalid value for cudrift_window_rows"),
    ({"cudrift_sliding_windows": "0"}, "sliding_windows"),
    ({"cudrift_windw_rows": "5"}, "unknown monitor parameters"),
    ({"cudrift_backend": "tpu"}, "backend"),
    ({"cudrift_policy": "nosuch"}, "Invalid value for policy"),
])
def test_settings_refuse_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        MonitorSettings.from_parameters({k: {"string_value": v} for k, v in params.items()})


# ------------------------------------------------------------------ windows


def test_row_windows_split_requests_at_the_boundary(reference, rng):
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=400, fold_rows=10**9)
    sizes = [150, 300, 90, 500, 260]  # 1300 rows: three windows of 400, 100 left open
    for n in sizes:
        st.accept(_batch(rng, n), n)
    closed = []
    while (w := st.close_next()) is not None:
        closed.append(w)
    assert [w.window_id for w in closed] == [0, 1, 2]
    assert [w.rows for w in closed] == [400, 400, 400]
    assert all(w.own.n_rows == 400 and w.merged is w.own for w in closed)
    assert st.open_rows == 100 and st.rows_total == 1300
    assert st.windows_closed == 3


def test_folded_window_matches_one_profile_of_the_same_rows(reference, rng):
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=1000, fold_rows=200)
    batches = [_batch(rng, 120) for _ in range(5)]
    for b in batches:
        st.accept(b, 120)
        st.fold()
    st.fold(force=True)
    st.accept(_batch(rng, 400), 400)  # 600 + 400 rows: the window closes at exactly 1000
    w = st.close_next()
    assert w.rows == 1000 and w.own.n_rows == 1000
    # the numeric sketches saw exactly the accepted values
    a = np.concatenate([b["NUMERIC"][:, 0] for b in batches]).astype(np.float64)
    assert w.own["a"].moments.count == 1000
    counts = w.own["city"].counts
    assert sum(counts[k] for k in ("paris", "rome", "oslo")) == 1000
    assert w.own["flag"].counts[True] + w.own["flag"].counts[False] == 1000
    assert w.own["a"].moments.min <= a.min()


def test_time_windows_close_on_the_clock_and_skip_empty_ones(reference, rng):
    clock = FakeClock()
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_seconds=10, clock=clock)
    clock.t += 11
    assert not st.seal_expired() and st.close_next() is None  # nothing accepted: no empty window
    st.accept(_batch(rng, 50), 50)
    clock.t += 5
    assert not st.seal_expired()
    clock.t += 6
    assert st.needs_work()
    assert st.seal_expired()
    w = st.close_next()
    assert (w.window_id, w.rows, w.closed_at - w.opened_at) == (0, 50, 11)


def test_a_time_windows_clock_starts_at_its_first_row(reference, rng):
    """Neither an idle spell nor a restart shortens the window after it: its clock starts at its first row (the
    first window after either once closed at once, with a handful of rows, and read as drifted)."""
    lay = FeatureLayout.from_profile(reference)
    clock = FakeClock()
    st = WindowState(reference, lay, window_seconds=10, clock=clock)
    st.accept(_batch(rng, 50), 50)
    clock.t += 10
    assert st.seal_expired() and st.close_next().rows == 50  # window 1 opens, empty
    st.fold(force=True)
    saved = st.to_bytes()
    clock.t += 25
    assert not st.seal_expired() and not st.needs_work()  # a worker pass while idle: nothing to do
    clock.t += 9.5
    again = WindowState(reference, lay, window_seconds=10, clock=clock)
    again.restore(saved)  # a restart after as long a downtime as st's idle spell
    for s_ in (st, again):
        s_.accept(_batch(rng, 10), 10)
    clock.t += 9
    assert not st.seal_expired() and not again.seal_expired()
    clock.t += 1
    for s_ in (st, again):
        assert s_.seal_expired()
        w = s_.close_next()
        assert (w.window_id, w.rows, w.closed_at - w.opened_at) == (1, 10, 10)


def test_a_clock_stepped_back_does_not_hold_a_time_window_open(reference, rng):
    clock = FakeClock()
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_seconds=60, clock=clock)
    st.accept(_batch(rng, 50), 50)
    clock.t -= 3600  # an NTP correction: the window opened "an hour from now"
    assert not st.seal_expired()
    clock.t += 59
    assert not st.seal_expired()
    clock.t += 1  # a minute after the step: the window's time is up, not an hour and a minute later
    assert st.seal_expired() and st.close_next().rows == 50


def test_windows_and_restored_windows_never_draw_the_same_sample_indices(reference, rng):
    """Each window's samples start past every row accepted before it, also across a checkpoint: the merged
    windows of a sliding comparison are not stratified by position (all windows once drew the same ones)."""
    lay = FeatureLayout.from_profile(reference)
    st = WindowState(reference, lay, window_rows=100, sliding_windows=3, fold_rows=30)
    st.accept(_batch(rng, 250), 250)
    for _ in range(2):
        st.close_next()
    st.fold(force=True)
    data, _, _ = st.snapshot()
    again = WindowState(reference, lay, window_rows=100, sliding_windows=3, fold_rows=30)
    again.restore(data)
    for s_ in (st, again):
        s_.accept(_batch(rng, 100), 100)
        w = s_.close_next()
        pri = w.merged["a"].sample.priorities
        assert w.merged.n_rows == 300 and np.unique(pri).size == pri.size == 300, (s_, np.unique(pri).size)


def test_sliding_windows_merge_the_last_k(reference, rng):
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=100, sliding_windows=3)
    st.accept(_batch(rng, 500), 500)
    merged = []
    while (w := st.close_next()) is not None:
        merged.append((w.own.n_rows, w.merged.n_rows))
    assert merged == [(100, 100), (100, 200), (100, 300), (100, 300), (100, 300)]


def test_accept_does_not_profile_until_the_worker_folds(reference, rng):
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=10_000, fold_rows=250)
    st.accept(_batch(rng, 200), 200)
    assert not st.needs_work()
    st.accept(_batch(rng, 100), 100)
    assert st.needs_work()
    assert st.fold() == 300 and st.fold() == 0


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_resumes_windows_history_and_counters(reference, rng):
    lay = FeatureLayout.from_profile(reference)
    st = WindowState(reference, lay, window_rows=300, sliding_windows=2)
    st.accept(_batch(rng, 700), 700)  # windows 0, 1 sealed, 100 rows open
    assert st.close_next().window_id == 0  # window 1 stays sealed: it must survive the checkpoint
    assert st.fold(force=True) == 400
    data = st.to_bytes({"requests": 7})

    again = WindowState(reference, lay, window_rows=300, sliding_windows=2)
    assert again.restore(data) == {"requests": 7}
    assert (again.rows_total, again.windows_closed, again.open_rows, again.open_window_id) == (700, 1, 100, 2)
    w = again.close_next()
    assert (w.window_id, w.rows, w.own.n_rows, w.merged.n_rows) == (1, 300, 300, 600)
    again.accept(_batch(rng, 200), 200)
    w = again.close_next()
    assert (w.window_id, w.rows) == (2, 300)


def test_adopt_takes_the_rows_accepted_meanwhile_after_the_checkpoints_in_its_windows(reference, rng):
    """A reloaded monitor's new instance accepts rows while the old one still owns the checkpoint, then adopts
    the old one's last checkpoint: its rows follow the checkpoint's, split at the checkpoint's boundaries (not at
    its own), and the window ids go on from the checkpoint's; every row is in exactly one window."""
    lay = FeatureLayout.from_profile(reference)
    old = WindowState(reference, lay, window_rows=300)
    old.accept(_batch(rng, 700), 700)  # windows 0, 1 sealed, 100 rows open
    assert old.close_next().window_id == 0
    old.fold(force=True)
    data = old.to_bytes({"requests": 3})

    new = WindowState(reference, lay, window_rows=300, fold_rows=10**9)
    new.accept(_batch(rng, 250), 250)
    new.accept(_batch(rng, 200), 200)  # its own window 0 sealed at 300 rows: rows split at the wrong boundary
    extra, counts = new.adopt(data)
    assert extra == {"requests": 3} and counts == (700, 1, 0)
    assert (new.rows_total, new.windows_closed, new.backlog_rows) == (1150, 1, 450)
    closed = [new.close_next() for _ in range(2)]
    assert [(w.window_id, w.rows, w.own.n_rows) for w in closed] == [(1, 300, 300), (2, 300, 300)]
    assert new.close_next() is None
    assert (new.open_window_id, new.open_rows) == (3, 250)
    new.fold(force=True)
    again = WindowState(reference, lay, window_rows=300)
    again.restore(new.to_bytes())
    assert (again.rows_total, again.windows_closed, again.open_rows) == (1150, 3, 250)


def test_adopt_seals_an_expired_time_window_first_and_opens_the_next_at_the_first_row_taken(reference, rng):
    lay = FeatureLayout.from_profile(reference)
    clock = FakeClock(1000.0)
    old = WindowState(reference, lay, window_seconds=10, clock=clock)
    old.accept(_batch(rng, 40), 40)  # opened at 1000
    old.fold(force=True)
    data = old.to_bytes()
    clock.t = 1004.0
    new = WindowState(reference, lay, window_seconds=10, clock=clock)
    new.accept(_batch(rng, 30), 30)  # arrived at 1004, within the old window's time
    clock.t = 1012.0  # the old window's time ran out while the old instance was finalized
    new.adopt(data)
    w = new.close_next()
    assert (w.window_id, w.rows, w.opened_at, w.closed_at) == (0, 40, 1000.0, 1012.0)
    assert (new.open_window_id, new.open_rows) == (1, 30)
    clock.t = 1013.9
    assert not new.seal_expired()
    clock.t = 1014.0  # ten seconds after its first row arrived, not after the adoption
    assert new.seal_expired()


def test_adopt_refuses_a_state_whose_rows_were_folded_and_leaves_it_alone(reference, rng):
    lay = FeatureLayout.from_profile(reference)
    old = _folded(reference, lay, rng, 100, window_rows=300)
    new = _folded(reference, lay, rng, 50, window_rows=300)
    with pytest.raises(AdoptError, match="folded already"):
        new.adopt(old.to_bytes())
    assert (new.rows_total, new.open_rows) == (50, 50)
    with pytest.raises(FormatError):
        WindowState(reference, lay, window_rows=300).adopt(b"CDRF not really")


def test_checkpoint_leaves_out_rows_not_folded_yet(reference, rng):
    lay = FeatureLayout.from_profile(reference)
    st = WindowState(reference, lay, window_rows=1000, fold_rows=10**9)
    st.accept(_batch(rng, 200), 200)
    st.fold(force=True)
    st.accept(_batch(rng, 50), 50)  # pending: "rows since the last checkpoint"
    again = WindowState(reference, lay, window_rows=1000)
    again.restore(st.to_bytes())
    assert again.open_rows == 200 and again.rows_total == 200


def test_checkpoint_refuses_another_reference_and_corruption(reference, rng):
    lay = FeatureLayout.from_profile(reference)
    st = _folded(reference, lay, rng, 100, window_rows=1000)
    data = st.to_bytes()
    other_ref = cudrift.profile({**{n: np.arange(100.0, dtype=np.float32) for n in ("a", "b", "score")},
                                 "city": np.array(["x"] * 100, dtype=object), "region": np.arange(100) % 3,
                                 "flag": np.arange(100) % 2 == 0})
    other = WindowState(other_ref, FeatureLayout.from_profile(other_ref), window_rows=1000)
    with pytest.raises(FormatError, match="different reference"):
        other.restore(data)
    broken = bytearray(data)
    broken[len(broken) // 2] ^= 0xFF
    with pytest.raises(FormatError):
        WindowState(reference, lay, window_rows=1000).restore(bytes(broken))
    with pytest.raises(FormatError):
        WindowState(reference, lay, window_rows=1000).restore(data[:100])
    # the container is cudrift's versioned one, no pickle
    assert _format.peek_kind(data) == (CHECKPOINT_KIND, 1)


def test_backpressure_waits_for_the_worker_and_gives_up_after_max_wait(reference, rng):
    import threading

    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=10_000, fold_rows=10**9,
                     max_backlog_rows=100)
    assert st.accept(_batch(rng, 100), 100) == 0.0  # at the limit, not over it
    waited = []
    t = threading.Thread(target=lambda: waited.append(st.accept(_batch(rng, 50), 50)))
    t.start()
    t.join(0.3)
    assert t.is_alive() and st.backlog_rows == 150  # accepted, waiting for the worker
    assert st.fold(force=True) == 150
    t.join(5)
    assert not t.is_alive() and waited[0] >= 0.3 and st.backlog_rows == 0
    # a stalled worker cannot hang requests: the wait is bounded
    assert 0.2 <= st.accept(_batch(rng, 200), 200, max_wait=0.2) < 2
    assert st.rows_total == 350


def test_backlog_limit_below_fold_rows_makes_the_fold_due_and_wakes_the_worker(reference, rng):
    """A backlog limit under ``fold_rows`` must not stall requests until ``max_wait``: the fold is due over it."""
    import threading
    import time

    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=10_000, fold_rows=1000,
                     max_backlog_rows=500)
    woken = threading.Event()
    st.wake = woken.set
    assert st.accept(_batch(rng, 400), 400) == 0.0
    assert not st.needs_work() and st.fold() == 0  # under both limits: nothing due yet

    def worker():
        woken.wait(5)
        while st.needs_work():
            st.fold()

    t = threading.Thread(target=worker)
    t.start()
    t0 = time.monotonic()
    waited = st.accept(_batch(rng, 200), 200, max_wait=10.0)  # 600 > 500: waits until the worker folds
    t.join(5)
    assert woken.is_set() and waited < 5 and time.monotonic() - t0 < 5
    assert st.backlog_rows == 0 and st.rows_total == 600


# ------------------------------------------------------------------ failures while profiling


def _failing_profile(st, fail):
    """Make ``st._profile`` raise for the batch lists ``fail(batches)`` picks; returns the calls made."""
    real, calls = st._profile, []

    def profile(batches, window):
        calls.append(len(batches))
        if fail(batches):
            raise MemoryError("out of device memory (simulated)")
        return real(batches, window)

    st._profile = profile
    return calls


def test_a_fold_that_fails_as_a_whole_keeps_every_row(reference, rng):
    """A failure of the one profiling call (device memory, say) is retried batch by batch: nothing is lost."""
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=1000, fold_rows=150)
    batches = [_batch(rng, 60) for _ in range(3)]
    for b in batches:
        st.accept(b, 60)
    calls = _failing_profile(st, lambda bs: len(bs) > 1)
    assert st.fold() == 180
    assert calls == [3, 1, 1, 1] and st.rows_dropped == 0 and st.backlog_rows == 0
    rest = _batch(rng, 820)
    st.accept(rest, 820)
    w = st.close_next()
    assert (w.rows, w.own.n_rows) == (1000, 1000)
    # the window holds exactly the accepted values: the retried batches' among them
    b = np.concatenate([x["NUMERIC"][:, 1] for x in (*batches, rest)]).astype(np.float64)
    assert w.own["b"].moments.count == 1000
    assert w.own["b"].moments.mean == pytest.approx(b.mean(), rel=1e-9)
    assert (w.own["b"].moments.min, w.own["b"].moments.max) == (b.min(), b.max())


def test_a_batch_that_cannot_be_profiled_is_dropped_alone_and_counted(reference, rng):
    """Only the failing batch goes: its window's count stays equal to its profile's, and the checkpoint loads."""
    lay = FeatureLayout.from_profile(reference)
    st = WindowState(reference, lay, window_rows=300, fold_rows=10**9)
    drops = []
    st.on_drop = lambda rows, exc: drops.append((rows, type(exc).__name__))
    poison = _batch(rng, 70)
    poison["NUMERIC"][0, 0] = 12345.0  # the marker the failing profiler looks for
    st.accept(_batch(rng, 100), 100)
    st.accept(poison, 70)
    st.accept(_batch(rng, 200), 200)  # window 0 sealed at 300 (130 of these), 70 open
    _failing_profile(st, lambda bs: any((b["NUMERIC"] == 12345.0).any() for b in bs))
    w = st.close_next()
    assert drops == [(70, "MemoryError")] and st.rows_dropped == 70
    assert (w.window_id, w.rows, w.own.n_rows) == (0, 230, 230)
    assert st.backlog_rows == 70 and st.rows_total == 370
    st.fold(force=True)
    again = WindowState(reference, lay, window_rows=300)
    again.restore(st.to_bytes())  # refused if a window's count and its profile disagreed
    assert (again.open_rows, again.rows_total, again.rows_dropped, again.windows_closed) == (70, 370, 70, 1)


def test_snapshot_counts_what_the_checkpoint_holds(reference, rng):
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=1000, fold_rows=10**9)
    st.accept(_batch(rng, 200), 200)
    st.fold(force=True)
    st.accept(_batch(rng, 50), 50)  # pending: not in the checkpoint
    data, rows_total, windows_closed = st.snapshot()
    assert (rows_total, windows_closed, st.rows_total) == (200, 0, 250)
    again = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=1000)
    again.restore(data)
    assert again.rows_total == rows_total


def test_a_failing_drop_callback_cannot_stall_the_backlog(reference, rng):
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=1000, fold_rows=10**9)
    st.accept(_batch(rng, 40), 40)

    def on_drop(rows, exc):
        raise RuntimeError("logger down")

    st.on_drop = on_drop
    _failing_profile(st, lambda bs: True)
    with pytest.raises(RuntimeError, match="logger down"):
        st.fold(force=True)
    assert st.backlog_rows == 0 and st.rows_dropped == 40 and st.open_rows == 0


def test_a_sealed_window_whose_rows_were_all_dropped_is_discarded_not_closed(reference, rng):
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=100, fold_rows=10**9)
    poison = _batch(rng, 100)
    poison["NUMERIC"][:, 0] = 12345.0
    st.accept(poison, 100)  # window 0: only these rows
    st.accept(_batch(rng, 150), 150)  # window 1 sealed, 50 open
    _failing_profile(st, lambda bs: any((b["NUMERIC"] == 12345.0).any() for b in bs))
    w = st.close_next()
    assert (w.window_id, w.rows) == (1, 100) and st.windows_closed == 1 and st.rows_dropped == 100
    assert st.close_next() is None


def test_checkpoint_whose_windows_do_not_merge_with_the_reference_is_a_format_error(reference, rng):
    """Windows profiled against other edges (the same reference file under another input layout widens other
    columns): the restore says FormatError, which the monitor sets aside, never the merge's own error."""
    lay = FeatureLayout.from_profile(reference)
    st = _folded(reference, lay, rng, 100, window_rows=1000)
    data = st.to_bytes()
    a = reference.columns["a"].copy()
    edges = a.histogram.edges.copy()
    edges[-1] = np.nextafter(edges[-1], np.inf)
    a.histogram = type(a.histogram)(edges, a.histogram.counts)
    other_ref = cudrift.Profile({**reference.columns, "a": a}, dict(reference.kinds), dict(reference.dtypes),
                                reference.n_rows, reference.config)
    other = WindowState(other_ref, lay, window_rows=1000)
    assert other.digest != st.digest  # the digest covers the edges windows are profiled with
    with pytest.raises(FormatError, match="different reference"):
        other.restore(data)
    other.digest = st.digest  # a digest that says "same": the windows' own check still refuses them
    with pytest.raises(FormatError, match="window 0 does not merge with the reference: column .a."):
        other.restore(data)
    assert (other.open_rows, other.rows_total) == (0, 0)  # left as it was


def test_restore_into_a_lower_window_limit_keeps_sample_indices_apart(rng):
    """A saved open window over a lowered ``window_rows`` is sealed at restore; the window it opens draws its
    samples past every row saved, as any other, not from 0 again (the sliding merge had repeated indices)."""
    ref = cudrift.profile({"a": rng.normal(size=3000)})
    lay = FeatureLayout.from_profile(ref)

    def rows(k):
        return {"NUMERIC": rng.normal(size=(k, 1)).astype(np.float32)}

    st = WindowState(ref, lay, window_rows=100, sliding_windows=4)
    st.accept(rows(250), 250)  # windows 0, 1 and 50 rows open
    while st.close_next() is not None:
        pass
    st.fold(force=True)
    again = WindowState(ref, lay, window_rows=40, sliding_windows=4)
    again.restore(st.snapshot()[0])
    again.accept(rows(40), 40)
    closed = []
    while (w := again.close_next()) is not None:
        closed.append(w)
    assert [(w.window_id, w.rows, w.merged.n_rows) for w in closed] == [(2, 50, 250), (3, 40, 290)]
    for w in closed:
        pri = w.merged["a"].sample.priorities
        assert np.unique(pri).size == pri.size, w.window_id


def test_a_boolean_category_takes_only_0_and_1_the_rest_is_unseen(reference, rng):
    """Over CATEGORICAL_INT a boolean column's 0 and 1 are False and True; any other integer is an unseen
    category (counted as such), not True."""
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=100)
    b = _batch(rng, 100)
    flag = np.array([0] * 50 + [1] * 30 + [7] * 15 + [-1] * 5)
    b["CATEGORICAL_INT"][:, 1] = flag
    st.accept(b, 100)
    col = st.close_next().own["flag"]
    assert (col.counts[False], col.counts[True], col.unseen_count, col.count) == (50, 30, 20, 100)
    st.accept(_batch(rng, 100), 100)  # only 0 and 1: counted as the reference's booleans, nothing unseen
    w = st.close_next()
    assert w.own["flag"].unseen_count == 0 and w.own.dtypes["flag"] == reference.dtypes["flag"]


def test_a_boolean_categorys_other_integers_leave_its_dtype_alone(reference, rng):
    """A window whose folds differ (one only 0 and 1, one with a 7) keeps the reference's bool dtype: no
    dtype_change finding, the 7s counted as unseen categories."""
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=200, fold_rows=100)
    st.accept(_batch(rng, 100), 100)
    assert st.fold() == 100
    b = _batch(rng, 100)
    b["CATEGORICAL_INT"][:5, 1] = 7
    st.accept(b, 100)
    w = st.close_next()
    assert w.own.dtypes["flag"] == w.merged.dtypes["flag"] == reference.dtypes["flag"] == "bool"
    col = w.own["flag"]
    assert (col.unseen_count, col.counts[False] + col.counts[True], col.count) == (5, 195, 200)
    report = cudrift.DriftDetector(reference).compare(w.merged)
    assert [f.check for f in report.findings if f.column == "flag"] == ["unseen_categories"]
    assert not [f for f in report.findings if f.check == "dtype_change"]


def test_columns_widened_by_the_layout_keep_the_reference_dtype(rng):
    """A float64 reference column arrives as FP32 and an int32 category as INT64 (the layout's tensor types):
    their windows reported float64 -> float32 and int32 -> int64 as a dtype_change in every comparison."""
    n = 2000
    ref = cudrift.profile({"x": rng.normal(size=n), "k": rng.integers(0, 4, n).astype(np.int32)})
    assert ref.dtypes == {"x": "float64", "k": "int32"}
    lay = FeatureLayout.from_profile(ref)
    st = WindowState(ref, lay, window_rows=300)
    st.accept({"NUMERIC": rng.normal(size=(300, 1)).astype(np.float32),
               "CATEGORICAL_INT": rng.integers(0, 4, (300, 1)).astype(np.int64)}, 300)
    w = st.close_next()
    assert w.merged.dtypes == ref.dtypes
    report = cudrift.DriftDetector(ref).compare(w.merged)
    assert not [f for f in report.findings if f.check == "dtype_change"]


def test_a_checkpoint_named_by_an_earlier_identity_resumes_when_its_windows_merge(reference, rng):
    """Checkpoints named their reference by the SHA-256 of its bytes, which change with the profile format: after
    an upgrade (Moments format 2, the profile's window flag) every monitor set its checkpoint aside as "written
    against a different reference" though the reference was the same file. A checkpoint is resumed where its
    windows merge with the reference's, whatever digest it carries; the digest names what windows take from the
    reference (columns, kinds, edges, dictionaries, merge settings), not its bytes."""
    from cudrift.integrations.triton._state import reference_digest

    lay = FeatureLayout.from_profile(reference)
    st = _folded(reference, lay, rng, 120, window_rows=1000)
    st.digest = hashlib.sha256(b"the reference's bytes as an earlier cudrift wrote them").hexdigest()
    again = WindowState(reference, lay, window_rows=1000)
    again.restore(st.to_bytes())
    assert again.open_rows == 120 and again.rows_total == 120
    # the digest: not of the bytes (a field no window reads changes them, not it), but of what windows read
    same = cudrift.Profile.from_bytes(reference.to_bytes())
    same.columns["a"].moments.mean_lo = 0.0
    same.n_rows += 1
    assert same.to_bytes() != reference.to_bytes() and reference_digest(same) == reference_digest(reference)
    a = reference.columns["a"].copy()
    edges = a.histogram.edges.copy()
    edges[1] = np.nextafter(edges[1], np.inf)
    a.histogram = type(a.histogram)(edges, a.histogram.counts)
    moved = cudrift.Profile({**reference.columns, "a": a}, dict(reference.kinds), dict(reference.dtypes),
                            reference.n_rows, reference.config)
    assert reference_digest(moved) != reference_digest(reference)


def _saved_with(data, **changes):
    """The checkpoint ``data`` with meta fields changed (``windows`` entries by ``window0_<field>``), its CRC
    valid: content a reader must judge, not the container."""
    _, meta, arrays = _format.unpack(data, CHECKPOINT_KIND, 1)
    for key, value in changes.items():
        if key.startswith("window0_"):
            meta["windows"][0][key[len("window0_"):]] = value
        else:
            meta[key] = value
    return _format.pack(CHECKPOINT_KIND, 1, meta, arrays)


@pytest.mark.parametrize("changes", [
    {"rows_total": -1},  # raised by the seal restore makes (window_rows lowered), once the state had changed
    {"rows_total": float("inf")},
    {"rows_total": 10**400},
    {"rows_total": "250"},
    {"rows_total": 250.5},
    {"rows_total": True},
    {"windows_closed": -2},
    {"rows_dropped": float("nan")},
    {"reference_sha256": ["not", "a", "digest"]},
    {"reference_sha256": None},
    {"history": [-1]},
    {"history": {"0": 1}},
    {"window0_rows": -250},
    {"window0_id": "zero"},
    {"window0_opened_at": 10**400},
    {"window0_opened_at": float("inf")},
    {"window0_closed_at": float("nan")},
    {"windows": [["not", "a", "window"]]},
    {"extra": [["requests", 1]]},
    {"extra": "counters"},
], ids=lambda c: repr(c)[:50])
def test_a_checkpoint_with_bad_content_is_a_format_error_and_leaves_the_state_as_it_was(reference, rng, changes):
    """Whatever a checkpoint with a valid CRC holds, restore raises FormatError (never OverflowError, TypeError or
    ValueError) and changes nothing: not the counters, not the windows (a seal that failed after the state was
    changed left the window both open and sealed)."""
    lay = FeatureLayout.from_profile(reference)
    st = _folded(reference, lay, rng, 250, window_rows=300)
    data = _saved_with(st.to_bytes({"requests": 1}), **changes)
    again = WindowState(reference, lay, window_rows=200)  # lowered: the saved open window is sealed at restore
    again.accept(_batch(rng, 50), 50)
    before = (again.rows_total, again.open_rows, again.open_window_id, again.sealed_windows, again.windows_closed,
              again.rows_dropped)
    with pytest.raises(FormatError, match="checkpoint"):
        again.restore(data)
    assert (again.rows_total, again.open_rows, again.open_window_id, again.sealed_windows, again.windows_closed,
            again.rows_dropped) == before
    again.accept(_batch(rng, 150), 150)
    w = again.close_next()
    assert (w.window_id, w.rows, again.open_rows) == (0, 200, 0)


def test_a_checkpoint_restored_whole_keeps_its_counts(reference, rng):
    """The counterpart of the above: the same checkpoint unchanged restores, sealing the window over the limit."""
    lay = FeatureLayout.from_profile(reference)
    st = _folded(reference, lay, rng, 250, window_rows=300)
    again = WindowState(reference, lay, window_rows=200)
    assert again.restore(_saved_with(st.to_bytes({"requests": 1}))) == {"requests": 1}
    assert (again.rows_total, again.open_rows, again.open_window_id, again.sealed_windows) == (250, 0, 1, 1)


# ------------------------------------------------------------------ checkpoint files

_WRITER = """
import os, signal, sys
from cudrift.io import _atomic

real, calls = os.fsync, []

def fsync(fd):  # the temporary file's fsync, before its rename: die there, or wait to be told to go on
    calls.append(fd)
    if len(calls) == 1:
        if sys.argv[2] == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        print("writing", flush=True)
        sys.stdin.readline()
    real(fd)

os.fsync = fsync
_atomic.write_atomic(sys.argv[1], b"from the other writer")
"""


def _writer(target, how):
    """A process writing ``target`` with write_atomic that is killed (``die``) or waits (``wait``) just before its
    rename: a real temporary file, by write_atomic's own naming."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _WRITER, str(target), how], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _aged(path, seconds):
    import os
    import time

    t = time.time() - seconds
    os.utime(path, (t, t))


def test_a_write_removes_the_temporary_files_of_writers_that_died(tmp_path):
    """A monitor killed between creating its temporary checkpoint and renaming it left ``w.ckpt.<random>.tmp``
    behind for good. The next successful write of ``w.ckpt`` removes such files once they are old, and only
    those: not a live writer's (another process, mid-write), not a fresh one, not other files."""
    from cudrift.io._atomic import STALE_SECONDS, write_atomic

    target = tmp_path / "w.ckpt"
    write_atomic(target, b"saved")
    killed = _writer(target, "die")
    assert killed.wait(30) == -9
    (dead,) = [p for p in tmp_path.iterdir() if p.name != "w.ckpt"]
    _aged(dead, STALE_SECONDS + 60)
    others = [tmp_path / "w.ckpt.20240101.tmp", tmp_path / "x.ckpt.cudrift-abcdefgh.tmp",
              tmp_path / "w.ckpt.cudrift-abcdefgh.tmp.keep"]
    for p in others:
        p.write_bytes(b"someone's")
        _aged(p, STALE_SECONDS + 60)
    live = _writer(target, "wait")
    try:
        assert live.stdout.readline() == "writing\n"
        (writing,) = [p for p in tmp_path.iterdir() if p not in (target, dead, *others)]
        _aged(writing, STALE_SECONDS + 60)  # old, but its writer holds it
        killed = _writer(target, "die")
        assert killed.wait(30) == -9
        (fresh,) = [p for p in tmp_path.iterdir() if p not in (target, dead, writing, *others)]

        write_atomic(target, b"next")
        assert target.read_bytes() == b"next"
        assert not dead.exists() and writing.exists() and fresh.exists()
        assert all(p.read_bytes() == b"someone's" for p in others)
    finally:
        live.stdin.write("\n")
        live.stdin.close()
    assert live.wait(30) == 0 and target.read_bytes() == b"from the other writer"  # its write went through
    assert not writing.exists()
    _aged(fresh, STALE_SECONDS + 60)
    write_atomic(target, b"last")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["w.ckpt", *(p.name for p in others)])


def test_category_keys_the_int64_input_cannot_carry_are_refused_by_the_repository(tmp_path):
    """uint64 category keys past 2**63 arrive through an INT64 input (CATEGORICAL_INT, an INT64 prediction) as
    negative numbers: every value of those categories was counted as unseen. cudrift triton repo refuses such a
    reference by column; a monitor written before it did still loads (a warning), as a checkpoint never keeps it
    from loading."""
    from cudrift.integrations.triton import write_repository
    from cudrift.integrations.triton._layout import int64_unsafe_columns

    keys = np.array([2**63 + 5, 2**64 - 2048, 7] * 50, dtype=np.uint64)
    ref = cudrift.profile({"u": keys, "x": np.arange(150.0)}, schema=cudrift.Schema(categorical=["u"]))
    assert int64_unsafe_columns(ref, FeatureLayout.from_profile(ref)) == ["u"]
    assert int64_unsafe_columns(ref, FeatureLayout.from_profile(ref, {"u": "TYPE_INT64"})) == ["u"]
    assert int64_unsafe_columns(ref, FeatureLayout.from_profile(ref, {"u": "TYPE_UINT64"})) == []
    with pytest.raises(SchemaError, match=r"categorical columns \['u'\] have keys past 2\*\*63"):
        write_repository(tmp_path / "repo", ref, checkpoint="")
    assert not (tmp_path / "repo" / "cudrift_monitor").exists()
    small = cudrift.profile({"u": np.array([5, 7, 9] * 50, dtype=np.uint64), "x": np.arange(150.0)},
                            schema=cudrift.Schema(categorical=["u"]))
    assert int64_unsafe_columns(small, FeatureLayout.from_profile(small)) == []
    write_repository(tmp_path / "repo", small, checkpoint="")


def _window_reference(reference, rng):
    """A window profiled like= ``reference``, as a monitor's reference: its edges are ``reference``'s range, not
    its own (``a``'s own range is about [-2.6, 2.6] on edges about [-3.5, 3.5])."""
    return cudrift.profile({"a": rng.normal(0, 1, 500).astype(np.float32),
                            "city": np.array(rng.choice(["paris", "rome", "oslo"], 500), dtype=object),
                            "b": rng.uniform(1, 9, 500).astype(np.float32),
                            "region": rng.integers(0, 5, 500), "flag": rng.random(500) < 0.3,
                            "score": rng.exponential(2, 500).astype(np.float32)}, like=reference)


def _outside(ref, batches, name, j):
    x = np.concatenate([b["NUMERIC"][:, j] for b in batches]).astype(np.float64)
    lo, hi = ref[name].moments.min, ref[name].moments.max
    return int(np.sum((x < lo) | (x > hi) | np.isinf(x)))


def test_values_outside_a_window_references_own_range_are_counted_as_they_are_folded(reference, rng):
    """A window given as the reference has another profile's edges: its outer bins do not hold the values outside
    its own [min, max] (the counter took 0 of the 10% of b's values in [0, 1) against a window of b in [1, 9]), so
    the fold counts them, and a checkpoint carries the count."""
    ref = _window_reference(reference, rng)
    assert not ref["b"].edges_are_range and reference["b"].edges_are_range
    lay = FeatureLayout.from_profile(ref)
    st = WindowState(ref, lay, window_rows=1000, fold_rows=200)
    assert set(st.counted_ranges) == {"a", "b", "score"}
    batches = [_batch(rng, 250) for _ in range(4)]
    batches[1]["NUMERIC"][:3, 0] = [np.inf, -np.inf, np.nan]
    for b in batches[:2]:
        st.accept(b, 250)
    st.fold(force=True)
    again = WindowState(ref, lay, window_rows=1000, fold_rows=200)
    again.restore(st.to_bytes())
    for b in batches[2:]:
        again.accept(b, 250)
    w = again.close_next()
    want = {n: _outside(ref, batches, n, j) for j, n in enumerate(("a", "b", "score"))}
    assert w.outside == want and want["b"] > 50 and want["a"] >= 2
    # the outer bins hold only those past the edges (the reference's reference's range)
    assert int(w.own["b"].histogram.counts[0] + w.own["b"].histogram.counts[-1]) < want["b"]


def test_a_reference_profiled_from_data_counts_in_its_outer_bins_and_checkpoints_without_counts_resume(reference, rng):
    """A reference whose edges are its range needs no count (its windows' outer bins are exact); a checkpoint
    written before counts were kept resumes with its windows' outer bins and infinities standing in."""
    st = WindowState(reference, FeatureLayout.from_profile(reference), window_rows=1000)
    assert st.counted_ranges == {}
    st.accept(_batch(rng, 100), 100)
    assert st.close_next() is None
    ref = _window_reference(reference, rng)
    lay = FeatureLayout.from_profile(ref)
    st = WindowState(ref, lay, window_rows=1000)
    first = _batch(rng, 300)
    st.accept(first, 300)
    st.fold(force=True)
    _, meta, arrays = _format.unpack(st.to_bytes(), CHECKPOINT_KIND, 1)
    for w in meta["windows"]:
        del w["outside"]
    again = WindowState(ref, lay, window_rows=1000)
    again.restore(_format.pack(CHECKPOINT_KIND, 1, meta, arrays))
    rest = _batch(rng, 700)
    again.accept(rest, 700)
    w = again.close_next()
    col = st._open.profile["b"]
    bins = int(col.histogram.counts[0] + col.histogram.counts[-1]) + col.posinf_count + col.neginf_count
    assert w.outside["b"] == bins + _outside(ref, [rest], "b", 1)
