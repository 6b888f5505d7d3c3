"""``cudrift triton repo``: the monitor's and the ensemble's config.pbtxt, wiring, errors."""

import numpy as np
import pytest

import cudrift
from cudrift.cli.main import main
from cudrift.errors import SchemaError
from cudrift.integrations.triton import MonitorSettings, read_model_config, write_repository

pytest.importorskip("tritonclient.grpc", reason="Triton's config schema comes with tritonclient[grpc] (test extra)")
from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2 as mc  # noqa: E402


def parse(path):
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def params(cfg):
    return {k: v.string_value for k, v in cfg.parameters.items()}


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(3)
    n = 2000
    return cudrift.profile({
        "a": rng.normal(size=n).astype(np.float32),
        "b": rng.uniform(size=n).astype(np.float32),
        "region": rng.integers(0, 4, n),
        "SCORE": rng.normal(size=n).astype(np.float32),
    })


def served_model(root, name="scorer", max_batch_size=64, inputs=None, outputs=None):
    # SCORE is also a reference column: it becomes a prediction column, so the
    # numeric features are a and b
    inputs = inputs or [("FEATURES", "TYPE_FP32", [2]), ("REGION", "TYPE_INT64", [1])]
    outputs = outputs or [("SCORE", "TYPE_FP32", [1])]

    def block(items):
        return ",\n".join(f'{{ name: "{n}" data_type: {t} dims: {d} }}' for n, t, d in items)

    d = root / name
    (d / "1").mkdir(parents=True)
    (d / "1" / "model.py").write_text("# served model\n")
    (d / "config.pbtxt").write_text(
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: {max_batch_size}\n'
        f"input [\n{block(inputs)}\n]\noutput [\n{block(outputs)}\n]\n"
    )
    return d


def test_monitor_only_repository(tmp_path, reference):
    repo = write_repository(tmp_path / "repo", reference, window_rows=700, sliding_windows=2)
    mon = tmp_path / "repo" / "cudrift_monitor"
    assert (mon / "1" / "model.py").read_text().count("from cudrift.integrations.triton.model import") == 1
    assert cudrift.Profile.load(mon / "reference.cdp").to_bytes() == reference.to_bytes()
    cfg = parse(mon / "config.pbtxt")
    assert (cfg.name, cfg.backend, cfg.max_batch_size) == ("cudrift_monitor", "python", 1024)
    assert [(i.name, mc.DataType.Name(i.data_type), list(i.dims), i.optional) for i in cfg.input] == [
        ("NUMERIC", "TYPE_FP32", [-1], True), ("CATEGORICAL_INT", "TYPE_INT64", [-1], True),
    ]
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("DRIFT_SHARE", [1])]
    assert [(g.kind, g.count) for g in cfg.instance_group] == [(mc.ModelInstanceGroup.KIND_CPU, 1)]
    settings = MonitorSettings.from_parameters({k: {"string_value": v} for k, v in params(cfg).items()})
    assert settings == repo.settings
    assert (settings.window_rows, settings.sliding_windows, settings.backend) == (700, 2, "cpu")
    # the checkpoint lives next to the repository, not in a model folder
    assert settings.checkpoint == str(tmp_path / "repo-state" / "cudrift_monitor.ckpt")
    assert repo.ensemble is None and repo.feeds == {}


def test_a_relative_checkpoint_is_taken_from_the_current_directory(tmp_path, reference, monkeypatch):
    """As any path on a command line: the server would read it from the monitor's folder, in the repository."""
    monkeypatch.chdir(tmp_path)
    repo = write_repository(tmp_path / "repo", reference, checkpoint="state/monitor.ckpt")
    assert repo.settings.checkpoint == str(tmp_path / "state" / "monitor.ckpt")
    kept = write_repository(tmp_path / "repo", reference, checkpoint="$STATE_DIR/monitor.ckpt")
    assert kept.settings.checkpoint == "$STATE_DIR/monitor.ckpt"  # expanded by the server's environment


def test_gpu_kind_keeps_inputs_on_the_device(tmp_path, reference):
    write_repository(tmp_path / "repo", reference, kind="gpu", checkpoint="")
    cfg = parse(tmp_path / "repo" / "cudrift_monitor" / "config.pbtxt")
    g = cfg.instance_group[0]
    assert (g.kind, g.count, list(g.gpus)) == (mc.ModelInstanceGroup.KIND_GPU, 1, [0])
    p = params(cfg)
    assert p["FORCE_CPU_ONLY_INPUT_TENSORS"] == "no"
    assert p["cudrift_backend"] == "gpu" and p["cudrift_checkpoint"] == ""


def test_ensemble_feeds_inputs_and_outputs_into_the_monitor(tmp_path, reference):
    src = served_model(tmp_path / "models")
    repo = write_repository(tmp_path / "repo", reference, model=src, window_seconds=60, window_rows=0)
    assert (tmp_path / "repo" / "scorer" / "1" / "model.py").exists()
    assert repo.feeds == {"NUMERIC": "FEATURES", "CATEGORICAL_INT": "REGION", "SCORE": "SCORE"}
    mon = parse(tmp_path / "repo" / "cudrift_monitor" / "config.pbtxt")
    assert mon.max_batch_size == 64
    assert [i.name for i in mon.input] == ["NUMERIC", "CATEGORICAL_INT", "SCORE"]
    assert params(mon)["cudrift_predictions"] == '["SCORE"]'
    assert params(mon)["cudrift_monitored_model"] == "scorer"
    ens = parse(tmp_path / "repo" / "scorer_monitored" / "config.pbtxt")
    assert (ens.platform, ens.max_batch_size) == ("ensemble", 64)
    assert (tmp_path / "repo" / "scorer_monitored" / "1").is_dir()
    assert [i.name for i in ens.input] == ["FEATURES", "REGION"]
    assert [o.name for o in ens.output] == ["SCORE", "CUDRIFT_DRIFT_SHARE"]
    first, second = ens.ensemble_scheduling.step
    assert first.model_name == "scorer" and dict(first.output_map) == {"SCORE": "SCORE"}
    assert second.model_name == "cudrift_monitor"
    assert dict(second.input_map) == {"NUMERIC": "FEATURES", "CATEGORICAL_INT": "REGION", "SCORE": "SCORE"}
    assert dict(second.output_map) == {"DRIFT_SHARE": "CUDRIFT_DRIFT_SHARE"}


def test_served_model_already_in_the_repository_is_used_in_place(tmp_path, reference):
    served_model(tmp_path / "repo")
    repo = write_repository(tmp_path / "repo", reference, model="scorer", ensemble="live", checkpoint="")
    assert repo.ensemble == "live" and repo.served.name == "scorer"
    assert read_model_config(tmp_path / "repo" / "live").name == "live"


def test_unbatched_served_model(tmp_path, reference):
    src = served_model(tmp_path / "models", max_batch_size=0,
                       inputs=[("FEATURES", "TYPE_FP32", [-1, 2]), ("REGION", "TYPE_INT64", [-1, 1])],
                       outputs=[("SCORE", "TYPE_FP32", [-1, 1])])
    write_repository(tmp_path / "repo", reference, model=src, checkpoint="")
    mon = parse(tmp_path / "repo" / "cudrift_monitor" / "config.pbtxt")
    assert mon.max_batch_size == 0 and list(mon.input[0].dims) == [-1, -1] and list(mon.output[0].dims) == [-1, 1]
    ens = parse(tmp_path / "repo" / "scorer_monitored" / "config.pbtxt")
    assert list(ens.output[-1].dims) == [-1, 1]


def test_unbatched_prediction_of_one_value_per_row_keeps_its_rank(tmp_path, reference):
    """An unbatched model's ``SCORE dims [-1]`` feeds a monitor input of the same rank: Triton refuses to load an
    ensemble whose tensor has two shapes ([-1] against [-1, -1])."""
    src = served_model(tmp_path / "models", max_batch_size=0,
                       inputs=[("FEATURES", "TYPE_FP32", [-1, 2]), ("REGION", "TYPE_INT64", [-1, 1])],
                       outputs=[("SCORE", "TYPE_FP32", [-1])])
    write_repository(tmp_path / "repo", reference, model=src, checkpoint="")
    mon = parse(tmp_path / "repo" / "cudrift_monitor" / "config.pbtxt")
    dims = {t.name: list(t.dims) for t in mon.input}
    assert dims == {"NUMERIC": [-1, -1], "CATEGORICAL_INT": [-1, -1], "SCORE": [-1]}


def test_ambiguous_or_missing_inputs_ask_for_map(tmp_path, reference):
    two = served_model(tmp_path / "a", inputs=[("X1", "TYPE_FP32", [2]), ("X2", "TYPE_FP32", [2]),
                                                ("REGION", "TYPE_INT64", [1])])
    with pytest.raises(SchemaError, match=r"several inputs.*--map NUMERIC=INPUT"):
        write_repository(tmp_path / "r1", reference, model=two, checkpoint="")
    repo = write_repository(tmp_path / "r2", reference, model=two, mapping={"NUMERIC": "X2"}, checkpoint="")
    assert repo.feeds["NUMERIC"] == "X2"
    wide = served_model(tmp_path / "b", inputs=[("X", "TYPE_FP32", [3]), ("REGION", "TYPE_INT64", [1])])
    with pytest.raises(SchemaError, match=r"no input of TYPE_FP32 with 2 values per row \(a, b\)"):
        write_repository(tmp_path / "r3", reference, model=wide, checkpoint="")


def test_prediction_column_mapped_to_another_output(tmp_path, reference):
    src = served_model(tmp_path / "m", outputs=[("OUT0", "TYPE_FP32", [1])])
    repo = write_repository(tmp_path / "repo", reference, model=src, mapping={"SCORE": "OUT0"}, checkpoint="")
    assert repo.feeds == {"NUMERIC": "FEATURES", "CATEGORICAL_INT": "REGION", "SCORE": "OUT0"}
    wide = served_model(tmp_path / "w", outputs=[("SCORE", "TYPE_FP32", [2])])
    with pytest.raises(SchemaError, match="one value per row"):
        write_repository(tmp_path / "r2", reference, model=wide, checkpoint="")


def test_cli_writes_the_repository(tmp_path, reference, capsys):
    reference.save(tmp_path / "ref.cdp")
    src = served_model(tmp_path / "models")
    code = main(["triton", "repo", str(tmp_path / "repo"), "--reference", str(tmp_path / "ref.cdp"),
                 "--model", str(src), "--window-rows", "500", "--sliding-windows", "3",
                 "--checkpoint-seconds", "5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "input NUMERIC FP32 [batch, 2] <- FEATURES: a, b" in out
    assert "input SCORE FP32 [batch, 1] <- SCORE: SCORE" in out  # prediction drift
    assert "scorer_monitored/  ensemble" in out
    p = params(parse(tmp_path / "repo" / "cudrift_monitor" / "config.pbtxt"))
    assert (p["cudrift_window_rows"], p["cudrift_sliding_windows"], p["cudrift_checkpoint_seconds"]) == (
        "500", "3", "5.0")


def test_cli_reports_bad_input(tmp_path, reference, capsys):
    reference.save(tmp_path / "ref.cdp")
    assert main(["triton", "repo", str(tmp_path / "r"), "--reference", str(tmp_path / "nope.cdp")]) == 2
    assert main(["triton", "repo", str(tmp_path / "r"), "--reference", str(tmp_path / "ref.cdp"),
                 "--model", str(tmp_path / "missing")]) == 2
    assert main(["triton", "repo", str(tmp_path / "r"), "--reference", str(tmp_path / "ref.cdp"),
                 "--map", "NUMERIC"]) == 2
    err = capsys.readouterr().err
    assert "nope.cdp" in err and "missing" in err and "Invalid value for --map" in err


def test_a_checkpoint_inside_the_repository_is_refused(tmp_path, reference, capsys):
    """Triton's poll mode reloads a model whose folder changes: a checkpoint in the repository (in another model's
    folder, or the monitor's own) restarted the monitor on every save. Refused before anything is written; a
    $VARIABLE is the server's to expand."""
    root = tmp_path / "repo"
    served_model(root)
    (tmp_path / "outside").mkdir()
    (root / "statelink").symlink_to(tmp_path / "outside")  # (reached through the repository's folders)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for inside in (root / "scorer" / "state.ckpt", root / "cudrift_monitor" / "1" / "state.ckpt", root / "s.ckpt",
                   root / "statelink" / "x.ckpt", root / "st" / "$HOST.ckpt"):
        with pytest.raises(ValueError, match="is inside the model repository"):
            write_repository(root, reference, model="scorer", checkpoint=str(inside))
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert write_repository(root, reference, checkpoint="$STATE/m.ckpt").settings.checkpoint == "$STATE/m.ckpt"
    # --no-checkpoint says off, and does not go with --checkpoint
    reference.save(tmp_path / "ref.cdp")
    args = ["triton", "repo", str(tmp_path / "r2"), "--reference", str(tmp_path / "ref.cdp"), "--no-checkpoint"]
    assert main(args) == 0 and "checkpoint: off\n" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--checkpoint", str(tmp_path / "c.ckpt")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_served_model_config_that_is_not_utf8_is_named(tmp_path, reference):
    src = served_model(tmp_path / "models")
    (src / "config.pbtxt").write_bytes(b"\xff\xfe" + (src / "config.pbtxt").read_bytes())
    with pytest.raises(SchemaError, match=r"config.pbtxt: not a valid Triton model config: 'utf-8' codec"):
        write_repository(tmp_path / "repo", reference, model=src, checkpoint="")


def test_map_checks_the_width_of_the_tensor_it_names(tmp_path, reference):
    wide = served_model(tmp_path / "m", inputs=[("X", "TYPE_FP32", [3]), ("REGION", "TYPE_INT64", [1])])
    with pytest.raises(SchemaError, match=r"--map NUMERIC=X: 'X' has 3 values per row.*takes 2: a, b"):
        write_repository(tmp_path / "repo", reference, model=wide, mapping={"NUMERIC": "X"}, checkpoint="")
    assert not (tmp_path / "repo").exists()


def test_names_that_would_overwrite_a_model_are_refused_before_anything_is_written(tmp_path, reference):
    root = tmp_path / "repo"
    served_model(root)
    served_model(root, name="other")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for kwargs, message in (
        ({"name": "scorer"}, "the monitor's name 'scorer' is the served model's"),
        ({"ensemble": "other"}, "holds another model; the ensemble would overwrite it"),
        ({"name": "other"}, "holds another model; the monitor would overwrite it"),
        ({"name": "a/b"}, "Invalid monitor name"),
        ({"ensemble": ""}, "Invalid ensemble name"),
    ):
        with pytest.raises((ValueError, FileExistsError), match=message):
            write_repository(root, reference, model="scorer", checkpoint="", **kwargs)
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before, kwargs
    with pytest.raises(ValueError, match="max_batch_size"):
        write_repository(tmp_path / "r2", reference, max_batch_size=-3, checkpoint="")
    # a second run over its own repository rewrites its monitor and ensemble
    write_repository(root, reference, model="scorer", checkpoint="")
    repo = write_repository(root, reference, model="scorer", checkpoint="", window_rows=77)
    assert repo.settings.window_rows == 77


def test_a_second_served_model_does_not_take_over_the_first_ones_monitor(tmp_path, reference):
    """Two served models in one repository, both with the default monitor name: the second would replace the
    first's monitor (its ensemble would compare its traffic with the other's reference). Refused, naming both
    and --name; regenerating a model's own monitor, or one written alone, still works."""
    root = tmp_path / "repo"
    served_model(root)
    served_model(root, name="other")
    write_repository(root, reference, model="scorer", checkpoint="")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match=r"monitor of 'scorer'.*'other'.*--name"):
        write_repository(root, reference, model="other", checkpoint="")
    with pytest.raises(FileExistsError, match=r"monitor of 'scorer'.*--name"):
        write_repository(root, reference, checkpoint="")  # a monitor alone, under the same name
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    repo = write_repository(root, reference, model="other", name="other_monitor", checkpoint="")
    assert repo.settings.monitored_model == "other"
    assert write_repository(root, reference, model="scorer", checkpoint="", window_rows=77).settings.window_rows == 77
    # a second monitor of one served model gets an ensemble of its own: it took the first one's, whose windows
    # then stopped closing while it stayed loaded
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match=r"ensemble 'scorer_monitored' feeds monitor 'cudrift_monitor'.*"
                                              r"--ensemble"):
        write_repository(root, reference, model="scorer", name="mon2", checkpoint="")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    second = write_repository(root, reference, model="scorer", name="mon2", ensemble="scorer_mon2", checkpoint="")
    assert second.ensemble == "scorer_mon2" and 'model_name: "cudrift_monitor"' in (
        root / "scorer_monitored" / "config.pbtxt").read_text()
    # an ensemble written by hand is read as Triton reads it: single quotes count, a commented-out step does not
    hand = root / "scorer_monitored" / "config.pbtxt"
    steps = ('ensemble_scheduling {\n  step [\n    { model_name: "scorer" model_version: -1 },\n'
             "    # { model_name: \"mon2\" model_version: -1 },\n    { model_name : 'cudrift_monitor' "
             "model_version: -1 }\n  ]\n}\n")
    hand.write_text('name: "scorer_monitored"\nplatform: "ensemble"\n' + steps)
    with pytest.raises(FileExistsError, match="feeds monitor 'cudrift_monitor'.*or remove"):
        write_repository(root, reference, model="scorer", name="mon2", ensemble="scorer_monitored", checkpoint="")
    hand.write_text(hand.read_text().replace("'cudrift_monitor'", "'mon2'").replace('"mon2"', '"cudrift_monitor"'))
    write_repository(root, reference, model="scorer", name="mon2", ensemble="scorer_monitored", checkpoint="")
    # a monitor written alone first may become a served model's (same repository, the ensemble added)
    alone = tmp_path / "alone"
    served_model(alone)
    write_repository(alone, reference, checkpoint="")
    assert write_repository(alone, reference, model="scorer", checkpoint="").settings.monitored_model == "scorer"


@pytest.mark.parametrize("policy", [
    "model_transaction_policy { decoupled: true }",
    "model_transaction_policy: { decoupled: True }",
    "model_transaction_policy < decoupled: 1 >",
])
def test_a_decoupled_served_model_is_refused_before_anything_is_written(tmp_path, reference, policy):
    """Triton refuses to load an ensemble returning a decoupled model's outputs next to the monitor's ("receives
    inputs originated from different decoupled models"), which takes the whole server down: the writer says so
    first, in each spelling of the flag the config's text format allows, and points at the monitor alone."""
    src = served_model(tmp_path / "models")
    (src / "config.pbtxt").write_text((src / "config.pbtxt").read_text() + policy + "\n")
    assert read_model_config(src).decoupled
    with pytest.raises(SchemaError, match=r"'scorer' is decoupled.*without --model"):
        write_repository(tmp_path / "repo", reference, model=src, checkpoint="")
    assert not (tmp_path / "repo").exists()
    # in the repository already, passed by name: nothing is added next to it
    root = tmp_path / "in_place"
    served_model(root)
    (root / "scorer" / "config.pbtxt").write_text((src / "config.pbtxt").read_text())
    with pytest.raises(SchemaError, match="decoupled"):
        write_repository(root, reference, model="scorer", checkpoint="")
    assert sorted(p.name for p in root.iterdir()) == ["scorer"]
    # decoupled: false is an ordinary model
    (src / "config.pbtxt").write_text((src / "config.pbtxt").read_text().replace(policy, "") +
                                      "model_transaction_policy { decoupled: false }\n")
    assert not read_model_config(src).decoupled
    assert write_repository(tmp_path / "repo", reference, model=src, checkpoint="").ensemble == "scorer_monitored"
