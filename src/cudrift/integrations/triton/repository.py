"""Write a Triton model repository with the drift monitor (``cudrift triton repo``).

The repository holds:

- ``<name>/``: the monitor, a python-backend model: ``config.pbtxt``,
  ``1/model.py`` (re-exports :class:`cudrift.integrations.triton.TritonPythonModel`)
  and ``reference.cdp``, the reference profile;
- with a served model: that model (copied in unless it is already there)
  and an ensemble ``<served>_monitored`` whose first step runs the served
  model and whose second step feeds the served model's feature inputs (and
  the outputs named like reference columns: prediction drift) into the
  monitor. The ensemble returns the served model's outputs unchanged plus
  ``CUDRIFT_DRIFT_SHARE``.

Feature names and order come from the reference profile (see
:class:`~cudrift.integrations.triton.FeatureLayout`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cudrift.errors import SchemaError
from cudrift.integrations.triton._config import MonitorSettings
from cudrift.integrations.triton._layout import OUTPUT_NAME, FeatureLayout, InputGroup, int64_unsafe_columns
from cudrift.sketches.profile import Profile

__all__ = ["write_repository", "Repository", "ServedModel", "read_model_config", "ENSEMBLE_OUTPUT"]

#: Name of the monitor's output in the ensemble.
ENSEMBLE_OUTPUT = "CUDRIFT_DRIFT_SHARE"

_MODEL_PY = '''"""cudrift drift monitor for Triton's python backend (written by `cudrift triton repo`).

The implementation lives in the cudrift package of the server's Python
environment (pip install 'cudrift[triton]'); this file only points at it, so
upgrading cudrift upgrades the monitor.
"""

from cudrift.integrations.triton.model import TritonPythonModel  # noqa: F401
'''


@dataclass(frozen=True)
class TensorSpec:
    """An input or output of a served model: name, config data type, dims (without the batch dimension)."""

    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ServedModel:
    """What the ensemble needs to know about the served model (read from its ``config.pbtxt``)."""

    name: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: ``model_transaction_policy { decoupled: true }``: any number of responses per request.
    decoupled: bool = False

    def row_dims(self, spec: TensorSpec) -> tuple[int, ...]:
        """A tensor's per-row dims: without the leading batch dimension when the model does not batch."""
        return spec.dims if self.max_batch_size > 0 else spec.dims[1:]

    def row_width(self, spec: TensorSpec) -> int | None:
        """Values per row for a 1-D row shape (``None`` when variable or not 1-D)."""
        row = self.row_dims(spec)
        return row[0] if len(row) == 1 and row[0] > 0 else None


@dataclass(frozen=True)
class Repository:
    """What :func:`write_repository` wrote.

    Attributes
    ----------
    root
        The repository folder (``--model-repository``).
    monitor
        Name of the monitor model.
    layout
        The monitor's inputs.
    settings
        The monitor's settings (its ``cudrift_*`` parameters).
    served
        The served model, or ``None`` for a monitor-only repository.
    ensemble
        Name of the ensemble, or ``None``.
    feeds
        Monitor input → ensemble tensor that feeds it (empty without an ensemble).
    """

    root: Path
    monitor: str
    layout: FeatureLayout
    settings: MonitorSettings
    served: ServedModel | None = None
    ensemble: str | None = None
    feeds: dict[str, str] = field(default_factory=dict)


def read_model_config(path: str | os.PathLike) -> ServedModel:
    """Read the name, batching, inputs, outputs and transaction policy of a model's ``config.pbtxt``.

    Parameters
    ----------
    path
        A model directory (holding ``config.pbtxt``) or the file itself.

    Raises
    ------
    FileNotFoundError
        Without a ``config.pbtxt``.
    SchemaError
        If the config lists no input or no output (a config left to Triton's
        auto-completion cannot be wired into an ensemble).
    ImportError
        Without ``tritonclient[grpc]``, which carries Triton's config schema.
    """
    p = Path(path)
    cfg_path = p / "config.pbtxt" if p.is_dir() else p
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no config.pbtxt in {p}")
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2 as mc
    except ImportError as exc:
        raise ImportError(
            f"reading a served model's config.pbtxt needs tritonclient[grpc] ({exc}); pip install 'cudrift[triton]'"
        ) from None
    try:
        cfg = text_format.Parse(cfg_path.read_text(encoding="utf-8"), mc.ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError) as exc:  # (Triton reads it as UTF-8 text too)
        raise SchemaError(f"{cfg_path}: not a valid Triton model config: {exc}") from None
    name = cfg.name or cfg_path.parent.name

    def spec(t: Any) -> TensorSpec:
        return TensorSpec(t.name, mc.DataType.Name(t.data_type), tuple(int(d) for d in t.dims))

    if not cfg.input or not cfg.output:
        raise SchemaError(f"{cfg_path}: the config must list the model's inputs and outputs to build an ensemble")
    # read from the parsed message, so every spelling the text format allows counts (``decoupled: 1``, ``< >``)
    return ServedModel(name, int(cfg.max_batch_size), tuple(spec(t) for t in cfg.input),
                       tuple(spec(t) for t in cfg.output), bool(cfg.model_transaction_policy.decoupled))


# ---------------------------------------------------------------------- config text


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dims(d: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(x) for x in d) + " ]"


def _tensor_block(name: str, data_type: str, dims: tuple[int, ...], optional: bool = False) -> str:
    lines = [f"    name: {_q(name)}", f"    data_type: {data_type}", f"    dims: {_dims(dims)}"]
    if optional:
        lines.append("    optional: true")
    return "  {\n" + "\n".join(lines) + "\n  }"


def _parameters(params: Mapping[str, str]) -> str:
    return "\n".join(
        f"parameters {{\n  key: {_q(k)}\n  value {{ string_value: {_q(v)} }}\n}}" for k, v in params.items()
    )


def monitor_config(name: str, layout: FeatureLayout, settings: MonitorSettings, max_batch_size: int,
                   kind: str = "cpu", flat: Collection[str] = ()) -> str:
    """The monitor's ``config.pbtxt``.

    Inputs have a variable width (``dims: [-1]``) and are optional, so that a
    request with a missing input or the wrong number of features reaches the
    monitor, which refuses it with a message naming the features and counts
    it in ``cudrift_bad_requests_total``. The prediction inputs named in
    ``flat`` have no width: an unbatched served model's output of one value
    per row (``dims: [-1]``), which the ensemble can only pass to an input of
    the same rank.
    """
    lead = () if max_batch_size > 0 else (-1,)
    inputs = [_tensor_block(g.name, g.data_type, lead if g.name in flat else (*lead, -1), optional=True)
              for g in layout.groups]
    output = _tensor_block(OUTPUT_NAME, "TYPE_FP32", (*lead, 1))
    params = dict(settings.to_parameters())
    if kind == "gpu":
        group = "instance_group [\n  {\n    kind: KIND_GPU\n    count: 1\n    gpus: [ 0 ]\n  }\n]"
        # Inputs stay where the ensemble left them; on the GPU they are read
        # through DLPack as CuPy arrays without a host copy.
        params["FORCE_CPU_ONLY_INPUT_TENSORS"] = "no"
    else:
        group = "instance_group [\n  {\n    kind: KIND_CPU\n    count: 1\n  }\n]"
    return "\n".join([
        "# cudrift drift monitor (written by `cudrift triton repo`). One instance: it owns the window.",
        f"name: {_q(name)}",
        'backend: "python"',
        f"max_batch_size: {max_batch_size}",
        "input [", ",\n".join(inputs), "]",
        "output [", output, "]",
        group,
        _parameters(params),
    ]) + "\n"


def ensemble_config(name: str, served: ServedModel, monitor: str, feeds: Mapping[str, str]) -> str:
    """The ensemble's ``config.pbtxt``: served model first, monitor second."""
    inputs = [_tensor_block(t.name, t.data_type, t.dims) for t in served.inputs]
    lead = () if served.max_batch_size > 0 else (-1,)
    outputs = [_tensor_block(t.name, t.data_type, t.dims) for t in served.outputs]
    outputs.append(_tensor_block(ENSEMBLE_OUTPUT, "TYPE_FP32", (*lead, 1)))

    def maps(kind: str, pairs: list[tuple[str, str]]) -> str:
        return "\n".join(f"      {kind} {{ key: {_q(k)} value: {_q(v)} }}" for k, v in pairs)

    served_step = (
        f"    {{\n      model_name: {_q(served.name)}\n      model_version: -1\n"
        + maps("input_map", [(t.name, t.name) for t in served.inputs]) + "\n"
        + maps("output_map", [(t.name, t.name) for t in served.outputs]) + "\n    }"
    )
    monitor_step = (
        f"    {{\n      model_name: {_q(monitor)}\n      model_version: -1\n"
        + maps("input_map", list(feeds.items())) + "\n"
        + maps("output_map", [(OUTPUT_NAME, ENSEMBLE_OUTPUT)]) + "\n    }"
    )
    return "\n".join([
        f"# {served.name} with the cudrift drift monitor (written by `cudrift triton repo`).",
        f"name: {_q(name)}",
        'platform: "ensemble"',
        f"max_batch_size: {served.max_batch_size}",
        "input [", ",\n".join(inputs), "]",
        "output [", ",\n".join(outputs), "]",
        "ensemble_scheduling {", "  step [", f"{served_step},", monitor_step, "  ]", "}",
    ]) + "\n"


# ---------------------------------------------------------------------- wiring


def _feeds(layout: FeatureLayout, served: ServedModel, explicit: Mapping[str, str]) -> dict[str, str]:
    """Monitor input → served tensor, by explicit map, else by data type and width."""
    by_name = {t.name: t for t in (*served.inputs, *served.outputs)}
    out: dict[str, str] = {}
    for g in layout.groups:
        if g.name in explicit:
            src = explicit[g.name]
            if src not in by_name:
                raise SchemaError(f"--map {g.name}={src}: {served.name} has no input or output {src!r}; "
                                  f"it has {sorted(by_name)}")
            t = by_name[src]
            if t.data_type != g.data_type:
                raise SchemaError(f"--map {g.name}={src}: {src!r} is {t.data_type}, {g.name!r} needs {g.data_type}")
            width = served.row_width(t)
            if not g.prediction and width is not None and width != len(g.columns):
                raise SchemaError(f"--map {g.name}={src}: {src!r} has {width} values per row "
                                  f"(dims {list(t.dims)}); {g.name!r} takes {len(g.columns)}: {', '.join(g.columns)}")
            out[g.name] = src
            continue
        if g.prediction:
            out[g.name] = g.name  # prediction groups were made from outputs of this name
            continue
        out[g.name] = _match_input(g, served)
    return out


def _match_input(g: InputGroup, served: ServedModel) -> str:
    width = len(g.columns)
    fits = [t for t in served.inputs
            if t.data_type == g.data_type and served.row_width(t) == width]
    if len(fits) == 1:
        return fits[0].name
    seen = ", ".join(f"{t.name} ({t.data_type} {list(t.dims)})" for t in served.inputs)
    what = f"{g.data_type} with {width} values per row ({', '.join(g.columns)})"
    if not fits:
        raise SchemaError(f"{served.name} has no input of {what} to feed the monitor's {g.name!r}; its inputs: "
                          f"{seen}. Name one with --map {g.name}=INPUT")
    raise SchemaError(f"{served.name} has several inputs of {what}: {[t.name for t in fits]}; "
                      f"choose with --map {g.name}=INPUT")


def _predictions(reference: Profile, served: ServedModel, explicit: Mapping[str, str]) -> dict[str, str]:
    """Reference column → data type of the served output feeding it (same name, or ``--map COLUMN=OUTPUT``)."""
    outputs = {t.name: t for t in served.outputs}
    pred: dict[str, str] = {}
    for col in reference.kinds:
        src = explicit.get(col, col if col in outputs else None)
        if src is None:
            continue
        if src not in outputs:
            raise SchemaError(f"--map {col}={src}: {served.name} has no output {src!r}; outputs: {sorted(outputs)}")
        t = outputs[src]
        row = served.row_dims(t)
        if row not in ((), (1,), (-1,)):
            raise SchemaError(f"output {src!r} of {served.name} has dims {list(t.dims)}; a prediction column "
                              "needs one value per row")
        pred[col] = t.data_type
    return pred


# The monitor's settings are defaulted in one place, MonitorSettings.
_DEFAULTS = MonitorSettings()


def write_repository(
    out_dir: str | os.PathLike,
    reference: Profile | str | os.PathLike,
    model: str | os.PathLike | None = None,
    name: str = "cudrift_monitor",
    window_rows: int = _DEFAULTS.window_rows,
    window_seconds: float = _DEFAULTS.window_seconds,
    sliding_windows: int = _DEFAULTS.sliding_windows,
    kind: str = "cpu",
    max_batch_size: int = 1024,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = _DEFAULTS.checkpoint_seconds,
    fold_rows: int = _DEFAULTS.fold_rows,
    max_backlog_rows: int = _DEFAULTS.max_backlog_rows,
    policy: str | Mapping[str, str] = _DEFAULTS.policy,
    drift_share: float = _DEFAULTS.drift_share,
    mapping: Mapping[str, str] | None = None,
    ensemble: str | None = None,
    bad_requests: str = _DEFAULTS.bad_requests,
) -> Repository:
    """Write the monitor (and, with ``model``, the served model and an ensemble) into ``out_dir``.

    Parameters
    ----------
    out_dir
        The model repository folder; created if needed. Models written
        before are overwritten, other folders are left alone.
    reference
        The reference profile (or its ``.cdp`` file); it is copied into the
        monitor's folder.
    model
        The served model: a model folder (copied into ``out_dir`` unless it is
        already there) or the name of a model folder in ``out_dir``. ``None``
        writes the monitor alone, for clients that call it directly. A
        decoupled model is refused (:class:`~cudrift.errors.SchemaError`):
        Triton cannot load an ensemble of it and the monitor.
    name
        Name of the monitor model.
    window_rows, window_seconds, sliding_windows
        Window settings (see :class:`~cudrift.integrations.triton.MonitorSettings`).
    kind
        ``"cpu"`` (``KIND_CPU``) or ``"gpu"`` (``KIND_GPU`` on device 0, inputs
        left on the device).
    max_batch_size
        Of the monitor alone; with a served model its own is used.
    checkpoint
        Checkpoint file; ``None``: ``<out_dir>-state/<name>.ckpt`` next to the
        repository (outside it: Triton's ``poll`` mode reloads a model whose
        folder changes); ``""``: no checkpoint.
    checkpoint_seconds, fold_rows, max_backlog_rows, policy, drift_share
        Monitor settings.
    mapping
        Explicit wiring, ``{"NUMERIC": "served_input", "column": "served_output"}``.
    ensemble
        Name of the ensemble; default ``<served>_monitored``.
    bad_requests
        ``"error"`` or ``"pass"``: how the monitor answers a request it
        refuses (:attr:`MonitorSettings.bad_requests`).

    Returns
    -------
    Repository

    Examples
    --------
    >>> import tempfile, numpy as np, cudrift
    >>> ref = cudrift.profile({"a": np.arange(100.0), "b": np.arange(100.0)})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     repo = write_repository(d, ref, window_rows=500, checkpoint="")
    ...     sorted(p.name for p in (repo.root / repo.monitor).rglob("*"))
    ['1', 'config.pbtxt', 'model.py', 'reference.cdp']
    """
    if kind not in ("cpu", "gpu"):
        raise ValueError(f"Invalid value for kind: {kind!r} (expected 'cpu' or 'gpu')")
    _check_model_name(name, "monitor")
    if ensemble is not None:
        _check_model_name(ensemble, "ensemble")
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 0:
        raise ValueError(f"Invalid value for max_batch_size: {max_batch_size!r} (expected an integer >= 0)")
    root = Path(out_dir).resolve()
    ref = reference if isinstance(reference, Profile) else Profile.load(reference)
    mapping = dict(mapping or {})
    served = None
    feeds: dict[str, str] = {}
    if model is not None:
        served, served_dir = _locate_served(root, model)
        if served.decoupled:
            # A model that fails to load stops the whole server (Triton's default --exit-on-error).
            raise SchemaError(
                f"served model {served.name!r} is decoupled (model_transaction_policy {{ decoupled: true }}): "
                "Triton refuses to load an ensemble that returns a decoupled model's outputs next to the "
                "monitor's (\"receives inputs originated from different decoupled models\"); write the monitor "
                "alone (without --model) and have the client send it the features (and predictions)"
            )
        predictions = _predictions(ref, served, mapping)
        layout = FeatureLayout.from_profile(ref, predictions)
        unknown = [k for k in mapping if k not in {g.name for g in layout.groups}]
        if unknown:
            raise SchemaError(f"--map names {unknown}, which are neither monitor inputs nor reference columns "
                              f"fed by {served.name}; monitor inputs: {[g.name for g in layout.groups]}")
        feeds = _feeds(layout, served, mapping)
        max_batch_size = served.max_batch_size
    else:
        if mapping:
            raise SchemaError("--map needs a served model (--model)")
        predictions = {}
        layout = FeatureLayout.from_profile(ref)
    unsafe = int64_unsafe_columns(ref, layout)
    if unsafe:
        raise SchemaError(f"categorical columns {unsafe} have keys past 2**63 (uint64), which the monitor's INT64 "
                          "input carries as negative numbers, unseen categories; profile them as strings (cast "
                          "the keys to str) or as numerical")
    ens_name = None
    if served is not None:
        ens_name = ensemble or f"{served.name}_monitored"
        if name == served.name:
            raise ValueError(f"the monitor's name {name!r} is the served model's: choose another with --name")
        if ens_name in (name, served.name):
            raise ValueError(f"the ensemble name {ens_name!r} is taken by another model of the repository")
    # Nothing is written before every folder is known to be free or ours (written by an earlier run).
    _check_overwritable(root / name, "monitor", _is_monitor)
    _check_monitor_owner(root / name, served.name if served is not None else None)
    if ens_name is not None:
        _check_overwritable(root / ens_name, "ensemble", _is_ensemble)
        _check_ensemble_owner(root, ens_name, name)
    if checkpoint is None:
        checkpoint = root.parent / f"{root.name}-state" / f"{name}.ckpt"
    elif str(checkpoint) and not str(checkpoint).startswith("$"):
        # from where the command runs, as any path on a command line; the server would take a relative path
        # from the monitor's folder, i.e. inside the repository. $VARS are expanded when the server loads it.
        checkpoint = Path(checkpoint).absolute()
    _check_checkpoint_outside(root, str(checkpoint))
    _check_checkpoint_free(root, name, str(checkpoint))
    settings = MonitorSettings(
        reference="reference.cdp", monitored_model=served.name if served else name, window_rows=window_rows,
        window_seconds=float(window_seconds), sliding_windows=sliding_windows, fold_rows=fold_rows,
        max_backlog_rows=max_backlog_rows,
        checkpoint=str(checkpoint), checkpoint_seconds=float(checkpoint_seconds),
        backend="gpu" if kind == "gpu" else "cpu", policy=policy, drift_share=drift_share,
        predictions=tuple(predictions), bad_requests=bad_requests,
    )
    mon = root / name
    (mon / "1").mkdir(parents=True, exist_ok=True)
    ref.save(mon / "reference.cdp")
    (mon / "1" / "model.py").write_text(_MODEL_PY)
    flat = ()
    if served is not None and served.max_batch_size == 0:
        tensors = {t.name: t for t in (*served.inputs, *served.outputs)}
        flat = {g.name for g in layout.groups if g.prediction and len(tensors[feeds[g.name]].dims) == 1}
    (mon / "config.pbtxt").write_text(monitor_config(name, layout, settings, max_batch_size, kind, flat))
    if served is not None:
        if served_dir.parent != root:
            shutil.copytree(served_dir, root / served.name)
        ens = root / ens_name
        (ens / "1").mkdir(parents=True, exist_ok=True)  # Triton wants a version folder, even an empty one
        (ens / "config.pbtxt").write_text(ensemble_config(ens_name, served, name, feeds))
    return Repository(root, name, layout, settings, served, ens_name, feeds)


def _check_model_name(name: str, what: str) -> None:
    """A model name Triton accepts as a folder of the repository."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"Invalid {what} name {name!r}: a model name is a folder name of the repository "
                         "(not empty, no '/')")


def _is_monitor(folder: Path) -> bool:
    """A monitor written by ``cudrift triton repo`` (of any version: its model.py only imports cudrift's)."""
    f = folder / "1" / "model.py"
    try:
        # (bytes: another model's model.py need not be UTF-8, nor readable, and is none of this command's business)
        return f.is_file() and b"from cudrift.integrations.triton" in f.read_bytes()
    except OSError:
        return False


def _parameter(folder: Path, key: str) -> str | None:
    """A string parameter of a monitor's ``config.pbtxt`` as written by :func:`monitor_config` (``None`` if
    absent)."""
    m = re.search(r'key:\s*"' + re.escape(key) + r'"\s*value\s*\{\s*string_value:\s*"((?:[^"\\]|\\.)*)"',
                  (folder / "config.pbtxt").read_text(errors="replace"))
    return None if m is None else re.sub(r"\\(.)", r"\1", m.group(1))


def _check_checkpoint_outside(root: Path, checkpoint: str) -> None:
    """Refuse a checkpoint file inside the model repository: Triton's ``poll`` mode reloads a model whose folder
    changes, and every checkpoint would restart the monitor. (``$VARIABLES`` are the server's to expand.)"""
    # (the folders before a $VARIABLE are known now; both as written, a link inside the repository pointing out
    # of it being reached through the repository's folders, and resolved)
    fixed = os.path.dirname(checkpoint.split("$", 1)[0]) if "$" in checkpoint else checkpoint
    if not fixed:
        return
    if any(Path(mine).is_relative_to(repo) for mine, repo in (
            (os.path.normpath(os.path.abspath(fixed)), os.path.normpath(os.path.abspath(root))),
            (os.path.realpath(fixed), os.path.realpath(root)))):
        raise ValueError(f"--checkpoint {checkpoint} is inside the model repository {root}: Triton's poll mode "
                         "reloads a model whose folder changes; give a path outside it (or leave it out for "
                         "<repository>-state/<name>.ckpt)")


def _check_checkpoint_free(root: Path, name: str, checkpoint: str) -> None:
    """Refuse a checkpoint file another monitor of the repository already checkpoints to.

    Each monitor owns its checkpoint: two would resume each other's window (or set it aside as another
    reference's) and overwrite each other's checkpoints; at run time the second to load keeps off a file the
    first holds, and so never checkpoints.
    """
    if not checkpoint or not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.name == name or not (folder / "config.pbtxt").is_file() or not _is_monitor(folder):
            continue
        theirs = _parameter(folder, "cudrift_checkpoint")
        if not theirs:
            continue
        # as the server resolves them: $VARIABLES compared as written, a relative path from the monitor's folder
        same = (theirs == checkpoint if "$" in theirs or "$" in checkpoint
                else os.path.normpath(folder / theirs) == os.path.normpath(checkpoint))
        if same:
            raise ValueError(f"--checkpoint {checkpoint}: monitor {folder.name!r} of this repository checkpoints "
                             "to that file; each monitor needs its own (give this one another --checkpoint, or "
                             "leave it out for <repository>-state/<name>.ckpt)")


def _check_monitor_owner(folder: Path, served: str | None) -> None:
    """Refuse to replace the monitor of one served model with another's (or with a monitor alone).

    Its ensemble would go on feeding it, and compare that model's traffic with the other reference. A monitor
    written alone (its ``monitored_model`` its own name) belongs to no ensemble: it may become a served model's.
    """
    if not folder.is_dir() or not (folder / "config.pbtxt").is_file():
        return
    owner = _parameter(folder, "cudrift_monitored_model")  # (None if absent)
    if owner is None or owner == folder.name or owner == served:
        return
    new = f"the monitor of {served!r}" if served is not None else "a monitor alone"
    example = f" (e.g. --name {served}_monitor)" if served is not None else ""
    raise FileExistsError(
        f"{folder} is the monitor of {owner!r} (its ensemble feeds it); writing {new} there would replace it, "
        f"and the traffic of {owner!r} would be compared with another reference: give each its own monitor with "
        f"--name{example}, or remove {folder} first"
    )


def _is_ensemble(folder: Path) -> bool:
    f = folder / "config.pbtxt"
    try:
        return f.is_file() and b'platform: "ensemble"' in f.read_bytes()  # (another model's need not be UTF-8)
    except OSError:
        return False


def _check_ensemble_owner(root: Path, ens_name: str, monitor: str) -> None:
    """Refuse to rewrite an ensemble of an earlier run that feeds another monitor of the repository: a second
    monitor of one served model (``--name mon2``) would take the first one's traffic, which stops closing
    windows while still loaded."""
    others = [m for m in _ensemble_steps(root / ens_name / "config.pbtxt") if m != monitor and _is_monitor(root / m)]
    if others:
        raise FileExistsError(f"ensemble {ens_name!r} feeds monitor {others[0]!r}; monitor {monitor!r} would take "
                              f"its traffic: give this one an ensemble of its own with --ensemble NAME (or remove "
                              f"{others[0]!r} first)")


def _ensemble_steps(config: Path) -> list[str]:
    """The models an ensemble's config.pbtxt runs, parsed as Triton parses it (none where it cannot be read;
    tritonclient is there: the served model's config was read with it)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    try:
        return [step.model_name for step in text_format.Parse(
            config.read_bytes().decode("utf-8"), mc.ModelConfig()).ensemble_scheduling.step]
    except (OSError, UnicodeDecodeError, text_format.ParseError):
        return []


def _check_overwritable(folder: Path, what: str, ours) -> None:
    """Refuse to write the ``what`` over a model folder that is not one written by an earlier run."""
    if folder.exists() and not ours(folder):
        raise FileExistsError(f"{folder} holds another model; the {what} would overwrite it: choose another name "
                              f"(--name for the monitor, --ensemble for the ensemble) or remove it")


def _locate_served(root: Path, model: str | os.PathLike) -> tuple[ServedModel, Path]:
    p = Path(model)
    if (p / "config.pbtxt").is_file():
        src = p.resolve()
    elif (root / str(model) / "config.pbtxt").is_file():
        src = root / str(model)
    else:
        raise FileNotFoundError(f"served model {str(model)!r}: neither a model folder with config.pbtxt nor a "
                                f"model of {root}")
    served = read_model_config(src)
    if served.name != src.name:
        raise SchemaError(f"{src}: the config names the model {served.name!r} but its folder is {src.name!r}; "
                          "Triton requires them to match")
    target = root / served.name
    if src.parent != root and target.exists():
        raise FileExistsError(f"{target} exists; remove it or pass the model by name ({served.name!r})")
    return served, src
