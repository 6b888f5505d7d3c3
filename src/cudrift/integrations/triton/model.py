"""The drift monitor as a Triton python-backend model.

A repository written by ``cudrift triton repo`` holds ``1/model.py`` that
re-exports :class:`TritonPythonModel` from here, so upgrading cudrift in the
server's Python environment upgrades the monitor.

Life of a request (``execute``, Triton's thread): read every input tensor
(through DLPack; BYTES through ``as_numpy``, DLPack has no string type),
validate it, copy its rows into the open window, answer with the drift share
of the last closed window. Nothing else happens on the request path: a
worker thread folds buffered rows into the window profile, closes windows,
runs the :class:`~cudrift.DriftDetector`, publishes the metrics and writes
the checkpoints. A refused request gets an error response of its own and is
counted; the other requests of the same ``execute`` call go on.

This module imports ``triton_python_backend_utils`` only inside
:meth:`TritonPythonModel.initialize`, so it can be imported (and its
docstrings tested) outside Triton.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # (Windows) no flock: no hand-over between instances, see _Ownership
    fcntl = None

import numpy as np

from cudrift.backends import resolve_backend, thread_limit
from cudrift.detect.detector import DriftDetector
from cudrift.errors import BackendUnavailableError, FormatError
from cudrift.integrations.triton._config import MonitorSettings
from cudrift.integrations.triton._layout import NUMERIC, OUTPUT_NAME, FeatureLayout, InputGroup, int64_unsafe_columns
from cudrift.integrations.triton._metrics import MonitorMetrics
from cudrift.integrations.triton._state import AdoptError, WindowState, unspanned_ranges
from cudrift.io._atomic import write_atomic
from cudrift.sketches.column import NumericColumnProfile
from cudrift.sketches.histogram import Histogram
from cudrift.sketches.profile import Profile, profile

__all__ = ["TritonPythonModel", "BadRequest"]

#: Seconds between two passes of the worker when nothing wakes it earlier.
WORKER_TICK_SECONDS = 0.25

#: The longest one ``execute`` call waits for a worker that has fallen behind (backpressure), all its requests
#: together: a stalled worker cannot hang the server, however many requests Triton batches into one call.
BACKPRESSURE_SECONDS = 10.0

#: The longest a new instance keeps the rows it accepts unprofiled while the checkpoint's owner (a reloaded
#: monitor's old instance) still runs, waiting for its last checkpoint (see ``TritonPythonModel``).
HANDOVER_SECONDS = 60.0

# NumPy dtype each config data type arrives as.
_NUMPY_DTYPES = {
    "TYPE_BOOL": np.dtype(bool), "TYPE_UINT8": np.dtype(np.uint8), "TYPE_UINT16": np.dtype(np.uint16),
    "TYPE_UINT32": np.dtype(np.uint32), "TYPE_UINT64": np.dtype(np.uint64), "TYPE_INT8": np.dtype(np.int8),
    "TYPE_INT16": np.dtype(np.int16), "TYPE_INT32": np.dtype(np.int32), "TYPE_INT64": np.dtype(np.int64),
    "TYPE_FP16": np.dtype(np.float16), "TYPE_FP32": np.dtype(np.float32), "TYPE_FP64": np.dtype(np.float64),
}


class BadRequest(ValueError):
    """A request the monitor refuses; ``reason`` is one of :data:`~._metrics.BAD_REQUEST_REASONS`.

    ``rows``: the request's row count where it is known (an answer of that
    many rows can then stand in for the error: ``cudrift_bad_requests: pass``).
    """

    def __init__(self, reason: str, message: str, rows: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.rows = rows


class _Tally:
    """Request counts accumulated by ``execute`` and drained by the worker (no IPC on the request path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0
        self._seconds = 0.0
        self._waited = 0.0
        self._bad: Counter[str] = Counter()

    def add(self, seconds: float, reason: str | None, waited: float = 0.0) -> None:
        with self._lock:
            self._n += 1
            self._seconds += seconds
            self._waited += waited
            if reason is not None:
                self._bad[reason] += 1

    def drain(self) -> tuple[int, float, float, dict[str, int]]:
        with self._lock:
            out = (self._n, self._seconds, self._waited, dict(self._bad))
            self._n, self._seconds, self._waited, self._bad = 0, 0.0, 0.0, Counter()
        return out


class _Ownership:
    """An exclusive ``flock`` on ``<checkpoint>.owner``: the instance holding it owns the checkpoint.

    The owner holds it from ``initialize`` to the end of ``finalize``, after its last checkpoint; only the owner
    reads the checkpoint into its state or writes it. The file holds the owner's monitor name and process id
    (for the others' log lines); it is never removed, since another instance may be waiting on it.
    """

    def __init__(self, checkpoint: Path, monitor: str) -> None:
        self.path = checkpoint.with_name(checkpoint.name + ".owner")
        self._monitor = monitor
        self._held = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # OSError: the caller goes on without it

    def take(self) -> bool:
        """Try to take the lock without waiting; whether it is held now.

        Raises
        ------
        OSError
            Other than another holder's (a file system without locks).
        """
        if not self._held:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._held = True
            try:
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, json.dumps({"monitor": self._monitor, "pid": os.getpid()}).encode(), 0)
            except OSError:
                pass  # the name only serves the others' messages
        return True

    def holder(self) -> dict[str, Any]:
        """What the owner wrote into the file: ``monitor`` and ``pid`` ({} where it cannot be read)."""
        try:
            found = json.loads(os.pread(self._fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def release(self) -> None:
        """Release the lock (closing the file releases it) and the file."""
        os.close(self._fd)
        self._held = False


class _QuietDLPackCapsules:
    """``sys.unraisablehook`` that drops one known-harmless message of NumPy 2.

    ``pb_utils.Tensor.from_dlpack`` consumes NumPy's capsule and renames it
    in a way NumPy 2's capsule destructor does not recognise; the destructor
    then reports ``ValueError: PyCapsule_GetPointer called with incorrect
    name`` as unraisable (and does nothing else: the stub owns the tensor by
    then). Left alone it prints a traceback into the server log for every
    response. Any other unraisable error goes to the previous hook.
    """

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, unraisable: Any) -> None:
        exc = unraisable.exc_value
        if (unraisable.object is None and isinstance(exc, ValueError)
                and "PyCapsule_GetPointer called with incorrect name" in str(exc)):
            return
        self.previous(unraisable)


# The python-backend stub moves tensors between C++ and NumPy in two ways,
# and which one works depends on the NumPy of the server's environment
# (measured with the stub of Triton 2.51, built against NumPy 1.x):
# - NumPy 2: arrays the stub builds (Tensor.as_numpy(), and its own BYTES
#   deserialization) get wrong strides, every element reading as the first,
#   and outputs made with Tensor(name, ndarray) arrive empty; DLPack works
#   both ways.
# - NumPy 1: Tensor.from_dlpack(name, ndarray) never returns: the stub
#   renames the consumed capsule "used_dlpack", which NumPy 1's capsule
#   destructor does not recognise; it reports that as unraisable while
#   holding the dying capsule, which runs the destructor again, forever.
#   Tensor(name, ndarray) and as_numpy() work.
# Inputs are read through DLPack (np.from_dlpack) under both.
_NUMPY2 = int(np.__version__.split(".")[0]) >= 2


def _output_tensor(pb: Any, name: str, array: np.ndarray) -> Any:
    """A response tensor built the way this environment's stub accepts (see above)."""
    if _NUMPY2:
        return pb.Tensor.from_dlpack(name, array)
    return pb.Tensor(name, array)


def _as_numpy_is_sound(pb: Any) -> bool:
    """Whether ``Tensor.as_numpy()`` reads tensors correctly in this stub.

    BYTES tensors can only be read through ``as_numpy`` (and the stub
    deserializes them with the same arrays), so they need a sound one. Under
    NumPy 1 it is; under NumPy 2 it depends on the NumPy the stub was built
    against, so a small tensor made through DLPack is read back.
    """
    if not _NUMPY2:
        return True
    probe = np.arange(6, dtype=np.int64).reshape(2, 3)
    return bool(np.array_equal(pb.Tensor.from_dlpack("cudrift_probe", probe).as_numpy(), probe))


def _warmup_batch(reference: Profile, layout: FeatureLayout, rows: int = 64) -> dict[str, np.ndarray]:
    """A small batch drawn from the reference itself (its sample points and categories)."""
    out: dict[str, np.ndarray] = {}
    key_types = layout.key_types(reference)
    for name in layout.columns:
        col = reference.columns[name]
        if isinstance(col, NumericColumnProfile):
            pts = np.asarray(col.sample.values, dtype=np.float64)
            if pts.size == 0 and col.histogram is not None:
                pts = np.asarray(col.histogram.edges, dtype=np.float64)
            if pts.size == 0:
                pts = np.zeros(1)
            out[name] = np.resize(pts, rows).astype(np.float32)
        else:
            keys = list(col.counts) or ([False] if key_types[name] == "bool" else [0] if key_types[name] == "int"
                                        else [""])
            out[name] = np.array([keys[i % len(keys)] for i in range(rows)],
                                 dtype=object if key_types[name] == "str" else None)
    return out


class TritonPythonModel:
    """Drift monitor: windows of live traffic compared with a reference profile.

    Configured by its ``config.pbtxt`` (see :class:`MonitorSettings` for the
    ``cudrift_*`` parameters and :class:`FeatureLayout` for the inputs); one
    instance per model, which owns the window and its checkpoint.

    Triton reloads a model by loading the new instance before it finalizes
    the old one, which answers requests until then. The checkpoint has one
    owner at a time (:class:`_Ownership`): an instance that starts while
    another owns it neither reads the checkpoint into its state nor writes
    it. It accepts rows without profiling them and its worker keeps trying
    to take over; once the owner has finalized (its last checkpoint
    written), it adopts that checkpoint and takes its own rows again after
    the checkpoint's (:meth:`WindowState.adopt`). Every row is in one window
    and each window closes once. It waits at most :data:`HANDOVER_SECONDS`
    and at most ``max_backlog_rows`` rows: then it goes on without the
    owner's state (logged), and writes its own checkpoint once it owns the
    file. An owner of another name (another monitor given the same
    checkpoint file) is not waited for: this instance then never reads or
    writes the file.
    """

    # ------------------------------------------------------------------ initialize
    def initialize(self, args: dict[str, str]) -> None:
        """Parse the config, load the reference, resume the checkpoint, warm up, start the worker."""
        import triton_python_backend_utils as pb

        self._pb = pb
        self._log = pb.Logger
        config = json.loads(args["model_config"])
        self._name = args["model_name"]
        model_dir = Path(args["model_repository"])
        self.settings = MonitorSettings.from_parameters(config.get("parameters", {}))
        instances = sum(_instances(g) for g in config.get("instance_group", [])) or 1
        if instances > 1:
            raise pb.TritonModelException(
                f"{self._name}: {instances} instances configured; the drift monitor needs exactly one "
                "(one instance owns the window and its checkpoint): set instance_group count: 1"
            )
        self.reference = Profile.load(_resolve(model_dir, self.settings.reference))
        inputs = {i["name"]: i for i in config.get("input", [])}
        missing_pred = [c for c in self.settings.predictions if c not in inputs]
        if missing_pred:
            raise pb.TritonModelException(f"{self._name}: prediction columns {missing_pred} have no input tensor")
        self.layout = FeatureLayout.from_profile(
            self.reference, {c: inputs[c]["data_type"] for c in self.settings.predictions}
        )
        unsafe = int64_unsafe_columns(self.reference, self.layout)
        if unsafe:
            # (cudrift triton repo refuses such a reference; one written before it did still loads)
            self._log.log_warn(f"cudrift monitor {self._name}: categorical columns {unsafe} have keys past 2**63, "
                               "which arrive through INT64 as negative numbers: their values count as unseen")
        for g in self.layout.groups:
            have = inputs.get(g.name)
            if have is None or have["data_type"] != g.data_type:
                raise pb.TritonModelException(
                    f"{self._name}: the reference profile needs input {g.name!r} of {g.data_type} "
                    f"(columns {list(g.columns)}); the config has "
                    + (f"{have['data_type']}" if have else "no such input")
                )

        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = _QuietDLPackCapsules(self._previous_hook)
        strings = [g.name for g in self.layout.groups if g.data_type == "TYPE_STRING"]
        if strings and not _as_numpy_is_sound(pb):
            sys.unraisablehook = self._previous_hook
            raise pb.TritonModelException(
                f"{self._name}: inputs {strings} are BYTES, but this python-backend stub reads tensors wrongly "
                f"under NumPy {np.__version__} (a stub built against NumPy 1.x) and crashes on BYTES inputs; "
                "install numpy<2 (and pyarrow<26) in the server's Python environment"
            )

        self._cupy = None
        self.backend = "cpu"
        self._device_id = int(args.get("model_instance_device_id", "0"))
        if args.get("model_instance_kind") == "GPU":
            self._setup_gpu(self._device_id)
        elif self.settings.backend == "gpu":
            self._log.log_warn(f"cudrift monitor {self._name}: cudrift_backend is gpu but the instance is "
                               "KIND_CPU (inputs on the host): profiling on the CPU")

        # Windows are profiled like this widened reference, so checkpoints name it (WindowState's digest), not
        # the file: the same file under another layout widens other columns, and its windows would not merge.
        ranges = _ranges_at_input_precision(self.reference, self.layout)
        self.reference = _at_input_precision(self.reference, self.layout)
        self.detector = self._detector()
        self.state = WindowState(self.reference, self.layout, self.settings.window_rows, self.settings.window_seconds,
                                 self.settings.sliding_windows, self.settings.fold_rows, self.backend,
                                 max_backlog_rows=self.settings.max_backlog_rows, counted_ranges=ranges)
        # (resolved: a checkpoint reached through a link is locked and written as the file it names)
        self._checkpoint = (Path(os.path.realpath(_resolve(model_dir, self.settings.checkpoint)))
                            if self.settings.checkpoint else None)
        self._held = False  # the checkpoint could not be read (out of memory, I/O): not overwritten, see _save
        self._take_ownership()
        try:
            self._start(pb)
        except BaseException:
            if self._ownership is not None:
                self._ownership.release()
            raise

    def _start(self, pb: Any) -> None:
        """The rest of ``initialize``, once the checkpoint's owner is known (releases nothing if it raises)."""
        totals = (self._resume(self.state.restore) if self._owner else self._owners_gauges() if self._waiting
                  else None)
        # a resumed time window that holds rows and whose time ran out while the server was down closes now, as
        # it would have: new rows must not join it (they would be compared as part of a window they missed)
        self.state.seal_expired()
        self._warm_up()

        self.metrics = MonitorMetrics(pb, self.settings.monitored_model or self._name, self.layout,
                                      untested_test=self._untested_test, monitor=self._name, backend=self.backend)
        continued = self._restore_metrics(totals or {}, (self.state.rows_total, self.state.windows_closed,
                                                         self.state.rows_dropped))
        if not self._waiting:
            self._record_rows()  # (a waiting instance leaves the window's series to the owner)
        self._tally = _Tally()
        self._saved = (self.state.rows_total, self.state.windows_closed, self.metrics.requests)
        self._last_save = time.monotonic()
        self._retry_save_at = 0.0
        if totals and continued and self._owner:
            # A clean shutdown's checkpoint continues the counters once: replaced now, so that a crash of this
            # run does not bring them back at that shutdown's values, below what this run will have shown.
            self._save(self._last_save)

        # execute() and the worker share the GIL; a short switch interval
        # bounds how long a request waits while the worker profiles or
        # compares (the default 5 ms would show up in request latency). The
        # stub process runs this model only.
        sys.setswitchinterval(0.0005)
        self._wake = threading.Event()
        self.state.wake = self._wake.set  # a request over the backlog limit wakes the worker at once
        self.state.on_drop = self._dropped
        self._stopping = False
        # the hand-over's wait starts now, not before the warm-up: Triton finalizes the old instance only once
        # initialize has returned
        self._handover_until = time.monotonic() + HANDOVER_SECONDS
        self._worker = threading.Thread(target=self._run, name="cudrift-monitor", daemon=True)
        self._worker.start()
        self._log.log_info(
            f"cudrift monitor {self._name}: {len(self.layout.columns)} features "
            f"({', '.join(f'{g.name}[{len(g.columns)}]' for g in self.layout.groups)}), backend {self.backend}, "
            f"window rows={self.settings.window_rows} seconds={self.settings.window_seconds:g} "
            f"sliding={self.settings.sliding_windows}, checkpoint {self._checkpoint or 'off'}, "
            + (f"resumed window {self.state.open_window_id} with {self.state.open_rows} rows" if self._owner
               else "waiting for its owner's last checkpoint" if self._waiting else "not its owner")
        )

    def _take_ownership(self) -> None:
        """Take the checkpoint's ownership, or learn who has it (never waits: a model load must not hang).

        Sets ``_owner`` (this instance may read the checkpoint into its state and write it) and ``_waiting`` (an
        instance of this monitor owns it, a reload's old one: rows are kept unprofiled for the hand-over). Without
        flock (Windows), or where the lock file cannot be opened, this instance owns the checkpoint as if alone.
        """
        self._ownership: _Ownership | None = None
        self._owner, self._waiting = True, False
        if self._checkpoint is None or fcntl is None:
            return
        try:
            self._ownership = _Ownership(self._checkpoint, self._name)
            if self._ownership.take():
                return
        except OSError as exc:
            if self._ownership is not None:
                self._ownership.release()
                self._ownership = None
            self._log.log_warn(f"cudrift monitor {self._name}: cannot lock {self._checkpoint}.owner ({exc}): "
                               "resuming the checkpoint without knowing whether another instance (a reload's old "
                               "one) still writes it")
            return
        self._owner = False
        holder = self._ownership.holder()
        other = holder.get("monitor")
        if other in (None, self._name):
            self._waiting = True
            self._log.log_info(
                f"cudrift monitor {self._name}: checkpoint {self._checkpoint} is owned by another instance of "
                f"this monitor (process {holder.get('pid', '?')}; a reload's old instance, until it is finalized): "
                f"accepting rows meanwhile and taking them into its last checkpoint once it has written it "
                f"(waiting {HANDOVER_SECONDS:g} s at most)"
            )
        else:
            # not this monitor's file (whatever the other does): never read into this state, never written
            self._ownership.release()
            self._ownership = None
            self._log.log_error(
                f"cudrift monitor {self._name}: checkpoint {self._checkpoint} is owned by monitor {other!r} "
                f"(process {holder.get('pid', '?')}): two monitors are configured with one checkpoint file. This "
                "one starts a new window and writes no checkpoint in this run; give each monitor its own "
                "(cudrift triton repo --checkpoint)"
            )

    def _owners_gauges(self) -> dict[str, Any]:
        """An instance waiting for the checkpoint's owner shows the last closed window's gauges saved in it, as a
        resumed one would, and takes the counters as the series have them; nothing else is read, and a
        checkpoint that cannot be read is left to its owner."""
        try:
            extra = self.state.saved_extra(self._checkpoint.read_bytes())
        except (Exception, MemoryError):  # noqa: BLE001 - the gauges come with the owner's next window
            extra = {}
        return {"clean_shutdown": False, "last_window": extra.get("last_window")}

    def _restore_metrics(self, totals: dict[str, Any], counts: tuple[int, int, int]) -> bool:
        """``MonitorMetrics.restore`` from a resumed checkpoint's counters and counts; whether they continue."""
        try:
            return self.metrics.restore(totals, *counts)
        except FormatError as exc:
            # the window is sound (restore checked it): only the counters are lost, as in a crash
            self._log.log_error(f"cudrift monitor {self._name}: the counters of checkpoint {self._checkpoint} "
                                f"cannot be read ({exc}); resumed as after a crash: its window and gauges come "
                                "back, its counters are not continued (in a new server they restart at zero)")
            return self.metrics.restore({"clean_shutdown": False, "last_window": totals.get("last_window")},
                                        *counts)

    def _setup_gpu(self, device_id: int) -> None:
        """GPU instance: inputs stay on the device when the GPU backend works, else one copy to the host."""
        try:
            import cupy
        except ImportError as exc:
            raise self._pb.TritonModelException(
                f"{self._name}: a KIND_GPU instance receives GPU tensors and needs CuPy to read them ({exc}); "
                "install cudrift[cuda12] (or [cuda13]) in the server's environment, or write the repository "
                "with --kind cpu"
            ) from None
        self._cupy = cupy
        cupy.cuda.Device(device_id).use()
        requested = self.settings.backend if self.settings.backend != "auto" else "gpu"
        if requested == "cpu":
            return
        try:
            self.backend = resolve_backend("gpu")
        except BackendUnavailableError as exc:
            self._log.log_warn(f"cudrift monitor {self._name}: GPU backend unavailable, profiling on the CPU "
                               f"(GPU inputs are copied to the host): {exc}")

    def _resume(self, load: Any) -> Any:
        """Load the checkpoint if there is one with ``load`` (``WindowState.restore`` or ``adopt``) and return
        what it returns; None where there is none or it cannot be resumed. One that cannot be resumed is set
        aside and the monitor goes on with the state it has (a checkpoint must never keep the monitor, and with
        it the ensemble, from loading).

        One that cannot be read for want of memory, or through an I/O error, may be sound: it is left in place
        and held (see :meth:`_save`) rather than set aside, so that the next start reads it again.
        """
        if self._checkpoint is None:
            return None
        try:
            loaded = load(self._checkpoint.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None  # no checkpoint yet (or a file where its folder should be: _save says so)
        except AdoptError:
            raise  # (this code's mistake, which must not set the owner's checkpoint aside)
        except (MemoryError, OSError) as exc:
            self._held = True
            self._log.log_error(f"cudrift monitor {self._name}: checkpoint {self._checkpoint} not read "
                                f"({type(exc).__name__}: {exc}); it may be sound, so it is left in place and this "
                                "run writes no checkpoint over it (the next start reads it again; move it away to "
                                "let this run checkpoint); starting a new window")
            return None
        except Exception as exc:  # noqa: BLE001 - corrupt, another reference, or anything else the file holds;
            # restore leaves the state as it was when it raises
            aside = self._checkpoint.with_name(self._checkpoint.name + f".unusable-{int(time.time())}")
            try:
                os.replace(self._checkpoint, aside)
                where = f"moved to {aside}"
            except OSError as move:
                where = f"left in place (could not move it: {move})"
            self._log.log_error(f"cudrift monitor {self._name}: checkpoint {self._checkpoint} not resumed "
                                f"({type(exc).__name__}: {exc}); {where}, starting a new window")
            return None
        return loaded

    def _detector(self) -> DriftDetector:
        # workers=1: the worker compares each closed window on its own thread, one GIL contender against
        # execute() rather than a pool of them
        return DriftDetector(self.reference, policy=self.settings.policy, drift_share=self.settings.drift_share,
                             backend=self.backend, workers=1)

    def _warm_up(self) -> None:
        """Run the profile and compare paths once, so no request pays for first-call compilation and imports.

        On the GPU this compiles the kernels. A CUDA setup problem shows there (no NVVM, CUDA bindings that do
        not match the driver): the monitor then profiles on the CPU, logged as an error and shown by
        ``cudrift_monitor_backend``, rather than failing to load (and Triton, with the served model in an
        ensemble, stopping the server).
        """
        if self.backend == "gpu":
            try:
                self._run_once()
                return
            except Exception as exc:  # noqa: BLE001 - whatever CUDA raises, the CPU path still serves
                self._log.log_error(
                    f"cudrift monitor {self._name}: the GPU backend failed its warm-up ({type(exc).__name__}: "
                    f"{exc}); profiling on the CPU instead (GPU inputs are copied to the host). Install the CUDA "
                    "extra that matches the server's driver in its Python environment, e.g. cudrift[cuda12] "
                    "(cudrift[cuda13] for CUDA 13), or write the repository with --kind cpu"
                )
                self.backend = self.state.backend = "cpu"
                self.detector = self._detector()
        self._run_once()

    def _run_once(self) -> None:
        """One warm-up pass on the monitor's backend: a batch drawn from the reference, profiled and compared."""
        batch = _warmup_batch(self.reference, self.layout)
        if self.backend == "gpu":
            batch = {k: self._cupy.asarray(v) if v.dtype != object else v for k, v in batch.items()}
        self.detector.compare(profile(batch, like=self.reference, backend=self.backend))

    # ------------------------------------------------------------------ execute
    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request: the last window's drift share per row, or this request's error."""
        pb = self._pb
        responses = []
        deadline = time.monotonic() + BACKPRESSURE_SECONDS  # one wait for the whole call, however many requests
        for request in requests:
            t0 = time.perf_counter()
            reason = None
            waited = 0.0
            try:
                arrays, n = self._read(request)
                share = np.full((n, 1), self.metrics.last_share, dtype=np.float32)
                response = pb.InferenceResponse(output_tensors=[_output_tensor(pb, OUTPUT_NAME, share)])
                # Last: a request answered with an error must not have its rows in the window (a retry
                # would count them twice).
                waited = self.state.accept(arrays, n, max_wait=max(0.0, deadline - time.monotonic()))
                responses.append(response)
            except BadRequest as exc:
                reason = exc.reason
                if self.settings.bad_requests == "pass" and exc.rows is not None:
                    # counted, its rows left out, answered as a request before the first window: NaN, so that
                    # an ensemble still returns the served model's outputs
                    nan = np.full((exc.rows, 1), np.nan, dtype=np.float32)
                    responses.append(pb.InferenceResponse(output_tensors=[_output_tensor(pb, OUTPUT_NAME, nan)]))
                else:
                    responses.append(pb.InferenceResponse(output_tensors=[],
                                                          error=_client_error(pb, f"cudrift: {exc}")))
            except Exception as exc:  # noqa: BLE001 - one broken request must not take the others down
                reason = "internal"
                responses.append(pb.InferenceResponse(
                    output_tensors=[], error=pb.TritonError(f"cudrift: internal error: {type(exc).__name__}: {exc}")
                ))
            self._tally.add(time.perf_counter() - t0, reason, waited)
            if not self._waiting and self.state.needs_work():  # (waiting, the worker only tries the lock)
                self._wake.set()
        return responses

    def _read(self, request: Any) -> tuple[dict[str, Any], int]:
        """Validated copies of the request's inputs, ``[rows, width]`` each, and the row count.

        A refused request's :class:`BadRequest` carries its row count when its inputs tell it: a missing input
        is reported (the first problem in input order, as any other) once the inputs present are read; inputs
        that disagree on it leave it unknown. Inputs copied on the device are waited for (the current stream is
        synchronized) before it returns or raises.
        """
        arrays: dict[str, Any] = {}
        rows = None
        missing = None
        on_device = False
        try:
            for g in self.layout.groups:
                t = self._pb.get_input_tensor_by_name(request, g.name)
                if t is None:
                    missing = missing or g
                    continue
                on_device = on_device or (self.backend == "gpu" and not t.is_cpu())
                a = self._array(t, g, rows)
                if a.ndim == 1 and g.prediction:
                    a = a.reshape(-1, 1)
                if a.ndim != 2 or a.shape[1] != len(g.columns):
                    raise BadRequest("wrong_width", f"input {g.name!r} has shape {list(a.shape)}; expected "
                                     f"[batch, {len(g.columns)}] for {', '.join(g.columns)}", _rows_of(a, rows))
                if rows is not None and a.shape[0] != rows:
                    raise BadRequest("batch_mismatch", f"input {g.name!r} has {a.shape[0]} rows, the others {rows}")
                rows = a.shape[0]
                arrays[g.name] = a
        except BadRequest as exc:
            if missing is not None:  # an input missing before this one: the first problem in input order
                raise _missing_input(missing, exc.rows) from None
            raise
        finally:
            if on_device:
                # The device copies run asynchronously on the current stream, and Triton may release the input
                # buffers as soon as execute returns: wait for them, once per request.
                self._cupy.cuda.get_current_stream().synchronize()
        if missing is not None:
            raise _missing_input(missing, rows)
        if not rows:
            raise BadRequest("empty_batch", "the request has no rows", 0)
        numeric = arrays.get(NUMERIC)
        if numeric is not None:
            xp = np if isinstance(numeric, np.ndarray) else self._cupy
            if bool(xp.isnan(numeric).all()):
                raise BadRequest("nan_only", f"every value of input {NUMERIC!r} is NaN", rows)
        return arrays, rows

    def _array(self, t: Any, g: InputGroup, rows: int | None = None) -> Any:
        """An owned copy of an input tensor: NumPy, or CuPy when windows are profiled on the GPU.

        ``rows``: the row count of the request's inputs read before (for :class:`BadRequest`).
        """
        if g.data_type == "TYPE_STRING":
            # DLPack has no string type: BYTES come through as_numpy (sound
            # here, checked at initialize) as an object array of bytes.
            raw = t.as_numpy()
            try:
                return np.array([b.decode("utf-8") for b in raw.ravel()], dtype=object).reshape(raw.shape)
            except (UnicodeDecodeError, AttributeError) as exc:
                raise BadRequest("unreadable", f"input {g.name!r} holds values that are not UTF-8 text: {exc}",
                                 _rows_of(raw, rows)) from None
        if t.is_cpu():
            # DLPack, not as_numpy: as_numpy misreads tensors in stubs built against NumPy 1.x under NumPy 2.
            a = np.from_dlpack(t)
            if self.backend == "gpu":
                a = self._cupy.asarray(a)
            else:
                a = a.copy()
        else:
            d = self._cupy.from_dlpack(t)
            a = d.copy() if self.backend == "gpu" else self._cupy.asnumpy(d)
        want = _NUMPY_DTYPES.get(g.data_type)
        if a.dtype != want:
            raise BadRequest("wrong_dtype", f"input {g.name!r} has dtype {a.dtype}; expected {g.client_data_type}",
                             _rows_of(a, rows))
        return a

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        if self._cupy is not None:
            # CuPy's current device is per thread: the worker profiles on the instance's device.
            self._cupy.cuda.Device(self._device_id).use()
        # the window's folds too on this thread, as its comparisons (the detector's workers=1): one GIL contender
        # against execute, not a pool of them
        with thread_limit(1):
            self._loop()

    def _loop(self) -> None:
        while True:
            self._wake.wait(WORKER_TICK_SECONDS)
            self._wake.clear()
            final = self._stopping
            try:
                self._work(final)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive one bad pass
                self._log.log_error(f"cudrift monitor {self._name}: worker pass failed: {type(exc).__name__}: {exc}")
                if final and self._checkpoint is not None:
                    # The pass failed before its checkpoint: shutdown still saves what the state holds (not as a
                    # clean shutdown's: counters it may have left unpublished restart at zero, as after a crash).
                    try:
                        self._save(time.monotonic())
                    except Exception as exc2:  # noqa: BLE001
                        self._log.log_error(f"cudrift monitor {self._name}: final checkpoint failed: {exc2!r}")
            if final:
                return

    def _record_requests(self) -> None:
        """Publish the requests tallied since the last call (their count, time, backpressure and refusals)."""
        n, seconds, waited, bad = self._tally.drain()
        self.metrics.record_requests(n, seconds, bad, waited)

    def _work(self, final: bool) -> None:
        """One worker pass: close due windows, fold, publish counters, checkpoint when due.

        A pass closes at most the windows sealed when it starts, and stops
        early once a periodic checkpoint is due. Under sustained load requests
        seal new windows while it compares, and a pass that closed until none
        was left would never reach the counters and the checkpoint; the
        windows left stay queued, in order, for the next pass (and in the
        checkpoint, which holds sealed windows).
        """
        if not self._owner and self._ownership is not None:
            self._claim(final)
        if self._waiting:
            # rows stay as accepted (unprofiled, no window closed) for the hand-over; the window's series and the
            # checkpoint are the owner's
            self._record_requests()
            return
        self.state.seal_expired()
        for _ in range(self.state.sealed_windows):
            if not self._close_next():
                break
            t = time.monotonic()
            if (not final and self._checkpoint is not None and t >= self._retry_save_at
                    and t - self._last_save >= self.settings.checkpoint_seconds):
                break  # a checkpoint is due (and not waiting to retry a failed save): write it first
        self.state.fold()
        self._record_requests()
        now = time.monotonic()
        # periodically: rows, or only counters (refused requests), changed since the last one
        due = final or self._saved[1] != self.state.windows_closed or (
            now - self._last_save >= self.settings.checkpoint_seconds
            and (self._saved[0] != self.state.rows_total or self._saved[2] != self.metrics.requests)
        )
        if self._checkpoint is not None and due and (final or now >= self._retry_save_at):
            self._save(now, final)
        self._record_rows()
        if not final and self.state.needs_work():
            self._wake.set()  # windows sealed during this pass: the next pass starts at once, not at the next tick

    def _claim(self, final: bool) -> None:
        """Try to take the checkpoint's ownership; a waiting instance adopts the owner's last checkpoint then, or
        stops waiting once it has waited too long, holds too many rows, or is finalized itself."""
        try:
            taken = self._ownership.take()
        except OSError:
            taken = False  # (the lock worked at initialize) tried again next pass
        if taken:
            self._owner = True
            if self._waiting:
                self._waiting = False
                self._hand_over()
            else:
                self._log.log_warn(f"cudrift monitor {self._name}: now owns checkpoint {self._checkpoint}; the "
                                   "previous owner's state in it is replaced by this run's")
                self._save(time.monotonic())
            return
        if not self._waiting:
            return
        over = bool(self.state.max_backlog_rows) and self.state.backlog_rows > self.state.max_backlog_rows
        if final:
            # (still waiting: the last pass leaves the rows as they are, no window of them is closed)
            self._log.log_error(f"cudrift monitor {self._name}: finalized before the owner of checkpoint "
                                f"{self._checkpoint} (an older instance) was: the {self.state.rows_total} rows "
                                "this instance accepted are in no window and no checkpoint")
        elif over or time.monotonic() >= self._handover_until:
            self._waiting = False
            why = (f"{self.state.backlog_rows} rows accepted meanwhile are over max_backlog_rows" if over
                   else f"it has not finalized in {HANDOVER_SECONDS:g} s")
            self._log.log_error(
                f"cudrift monitor {self._name}: the owner of checkpoint {self._checkpoint} (an older instance of "
                f"this monitor, or a monitor of another server given the same file) still holds it and {why}: "
                "going on without its state (this run's windows are numbered from 0, its counts start at zero); "
                "this run writes its checkpoint once it owns the file, over the owner's"
            )

    def _hand_over(self) -> None:
        """Adopt the last checkpoint of the instance that owned it, beneath the rows accepted meanwhile."""
        meanwhile = self.state.rows_total
        adopted = self._resume(self.state.adopt)
        if adopted is None:  # none to resume (or set aside, or held: logged); this instance's rows go on alone
            self._log.log_info(f"cudrift monitor {self._name}: took over checkpoint {self._checkpoint} from the "
                               f"previous instance, with no state of it to resume; {meanwhile} rows accepted "
                               "meanwhile")
        else:
            totals, counts = adopted
            # the counts restored are published (by the owner) already; the rows taken again are added to them
            continued = self._restore_metrics(totals, counts)
            self._log.log_info(
                f"cudrift monitor {self._name}: took over checkpoint {self._checkpoint} from the previous "
                f"instance ({counts[0]} rows, windows closed: {counts[1]}, counters "
                f"{'continued' if continued else 'as the series have them'}); the {meanwhile} rows accepted "
                f"meanwhile follow its rows, window {self.state.open_window_id} open"
            )
        self._save(time.monotonic())  # the rows accepted meanwhile are in no checkpoint yet

    def _close_next(self) -> bool:
        """Close the oldest sealed window, compare it and publish; False when none is sealed.

        A comparison that fails is logged and counted
        (``cudrift_window_compare_failures_total``), the drift gauges go to NaN
        (they would describe an older window), and the worker goes on.
        """
        t0 = time.perf_counter()
        closed = self.state.close_next()
        if closed is None:
            return False
        try:
            report = self.detector.compare(closed.merged)
        except Exception as exc:  # noqa: BLE001 - one window must not stop the monitor
            self.metrics.window_failed(closed)
            self.metrics.record_close(closed, time.perf_counter() - t0)  # publication included
            self._log.log_error(f"cudrift monitor {self._name}: window {closed.window_id} ({closed.rows} rows) "
                                f"closed, but its comparison failed: {type(exc).__name__}: {exc}")
            return True
        self.metrics.publish_window(closed, report)
        self.metrics.record_close(closed, time.perf_counter() - t0)  # publication included
        drifted = ", ".join(report.drifted_columns) or "none"
        verdict = (f"drift share {report.share_drifted:.3f}, drifted: {drifted}" if report.n_tested
                   else "no feature could be tested (no verdict: drift share NaN)")
        self._log.log_info(
            f"cudrift monitor {self._name}: window {closed.window_id} closed ({closed.rows} rows"
            + (f", {closed.merged.n_rows} with the sliding windows" if closed.merged is not closed.own else "")
            + f"): {verdict}"
        )
        return True

    def _untested_test(self, column: str) -> str | None:
        """The test the detector picks for ``column`` in a window with no value of it: its policy's, or the auto
        rule's, whose distinct-value count is then the reference's alone (``MonitorMetrics`` names the NaN series
        of a feature no window has tested yet after it). None if it cannot be told."""
        try:
            return self.detector.test_for(column)  # the same rule as compare's
        except KeyError:  # only the series' test label is at stake: no series until one is tested
            return None

    def _save(self, now: float, final: bool = False) -> None:
        """Fold what is pending, then write the checkpoint (it then holds every row accepted so far).

        ``final``: ``finalize``'s, after which no request comes; the next start continues the counters from it.
        While a checkpoint this run could not read is held, none is written (it may hold an earlier run's window,
        which the next start may read), until the file is moved away.
        """
        if not self._owner:
            self._retry_save_at = now + self.settings.checkpoint_seconds
            self._log.log_error(f"cudrift monitor {self._name}: checkpoint {self._checkpoint} not written: this "
                                "instance does not own it (see the start of its log)")
            return
        if self._held:
            try:
                os.stat(self._checkpoint)
            except FileNotFoundError:
                self._held = False
                self._log.log_info(f"cudrift monitor {self._name}: the checkpoint left unread at {self._checkpoint} "
                                   "was moved away; writing this run's")
            except OSError:
                pass
        if self._held:
            self._retry_save_at = now + self.settings.checkpoint_seconds
            self._log.log_error(f"cudrift monitor {self._name}: checkpoint {self._checkpoint} not written: the "
                                "file there could not be read when this run started and is kept (move it away to "
                                "let this run checkpoint; a restart reads it again)")
            return
        self.state.fold(force=True)
        try:
            totals = self.metrics.totals(shutdown=final)
            data, rows_total, windows_closed = self.state.snapshot(totals)
            write_atomic(self._checkpoint, data)
        except OSError as exc:
            # Disk full, permissions: say so once per period, keep serving, try again later.
            self._retry_save_at = now + self.settings.checkpoint_seconds
            self._log.log_error(f"cudrift monitor {self._name}: checkpoint {self._checkpoint} not written: {exc}")
        else:
            # What the file holds, not the live counters: rows accepted while it was written are not in it.
            self._saved = (rows_total, windows_closed, totals["requests"])
            self._last_save = now

    def _record_rows(self) -> None:
        st = self.state
        self.metrics.record_rows(st.rows_total, st.open_rows, st.windows_closed, st.backlog_rows, st.rows_dropped)

    def _dropped(self, rows: int, exc: BaseException) -> None:
        """``WindowState.on_drop``: a batch of accepted rows could not be profiled."""
        self._log.log_error(f"cudrift monitor {self._name}: {rows} accepted rows dropped, they could not be "
                            f"profiled: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ finalize
    def finalize(self) -> None:
        """Stop the worker after a last pass (final checkpoint), then give the checkpoint up to the next instance;
        the metric series stay (see MonitorMetrics.close)."""
        self._stopping = True
        self._wake.set()
        self._worker.join()
        if self._ownership is not None:
            self._ownership.release()
        self.metrics.close()
        sys.unraisablehook = self._previous_hook
        self._log.log_info(f"cudrift monitor {self._name}: stopped with {self.state.open_rows} rows in the open window")


# The float types inputs arrive in below float64, whose rounding can move the reference's own extremes outward.
_NARROW_FLOATS = {"TYPE_FP16": np.dtype(np.float16), "TYPE_FP32": np.dtype(np.float32)}


def _at_input_precision(reference: Profile, layout: FeatureLayout) -> Profile:
    """The reference with the outer histogram edges of each column that arrives as a narrower float (NUMERIC:
    FP32; a prediction: its FP16 or FP32 output) widened outward to that float, so the reference's own extremes,
    rounded to the input's precision, are not out of range. FP64 and integer inputs hold the reference's values
    exactly: their columns are left alone.

    Equal-mass edges start and end at the reference's minimum and maximum, so no reference value lies in the
    added sliver and every count stays exact. Windows are profiled like this reference, and compared with it.
    """
    widened = dict(reference.columns)
    for name, dtype in _narrow_float_columns(layout):
        col = reference.columns[name]
        if not isinstance(col, NumericColumnProfile) or col.histogram is None:
            continue
        e = col.histogram.edges.copy()
        lo, hi = _outward(e[0], e[-1], dtype)
        if not (np.isfinite(lo) and np.isfinite(hi)) or (lo, hi) == (e[0], e[-1]):
            continue  # past the type's range (such values arrive as infinities), or already exact
        e[0], e[-1] = lo, hi
        e.flags.writeable = False
        col = col.copy()
        col.histogram = Histogram(e, col.histogram.counts)
        widened[name] = col
    if all(widened[n] is reference.columns[n] for n in widened):
        return reference
    return Profile(widened, dict(reference.kinds), dict(reference.dtypes), reference.n_rows, reference.config,
                   dict(reference.errors), reference.window)


def _ranges_at_input_precision(reference: Profile, layout: FeatureLayout) -> dict[str, tuple[float, float]]:
    """The ranges out of which the fold counts values (``WindowState.counted_ranges``): those of the reference's
    numerical columns whose outer edges are not their [min, max] (:func:`unspanned_ranges`; the others' outer bins
    count them), widened outward to the input's float as :func:`_at_input_precision` widens edges."""
    ranges = unspanned_ranges(reference)
    for name, dtype in _narrow_float_columns(layout):
        if name in ranges:
            lo, hi = _outward(*ranges[name], dtype)
            ranges[name] = (lo if np.isfinite(lo) else ranges[name][0], hi if np.isfinite(hi) else ranges[name][1])
    return ranges


def _narrow_float_columns(layout: FeatureLayout) -> Iterator[tuple[str, np.dtype]]:
    """``(column, float type)`` of the numerical columns that arrive as a float narrower than float64 (NUMERIC:
    FP32; a prediction: its FP16 or FP32 output)."""
    for g in layout.groups:
        dtype = _NARROW_FLOATS.get(g.data_type)
        if g.kind == "numerical" and dtype is not None:
            for name in g.columns:
                yield name, dtype


def _outward(lo: float, hi: float, dtype: np.dtype) -> tuple[float, float]:
    """``lo`` rounded down and ``hi`` rounded up to ``dtype`` (a float type), as float64: the float of that type
    at or below ``lo``, at or above ``hi`` (infinite past its range)."""
    with np.errstate(over="ignore"):
        r = np.array([lo, hi]).astype(dtype)
        if float(r[0]) > lo:
            r[0] = np.nextafter(r[0], dtype.type(-np.inf))
        if float(r[1]) < hi:
            r[1] = np.nextafter(r[1], dtype.type(np.inf))
    return float(r[0]), float(r[1])


def _missing_input(g: InputGroup, rows: int | None) -> BadRequest:
    return BadRequest("missing_input", f"missing input {g.name!r} ({g.client_data_type} "
                      f"[batch, {len(g.columns)}]: {', '.join(g.columns)})", rows)


def _rows_of(a: Any, rows: int | None) -> int | None:
    """A refused request's row count: the inputs' read before, else this array's first axis (None if 0-d)."""
    return rows if rows is not None else (int(a.shape[0]) if a.ndim else None)


def _client_error(pb: Any, message: str) -> Any:
    """An error for a request the client got wrong: INVALID_ARG (HTTP 400, gRPC INVALID_ARGUMENT) where the
    python backend takes error codes (Triton 23.09 and later), as Triton's own request checks answer."""
    code = getattr(pb.TritonError, "INVALID_ARG", None)
    return pb.TritonError(message) if code is None else pb.TritonError(message, code)


def _instances(group: dict[str, Any]) -> int:
    """Model instances an ``instance_group`` entry makes: ``count`` per listed GPU for ``KIND_GPU``.

    Triton hands the model its normalized config, in which a ``KIND_GPU`` group without ``gpus`` (and a
    ``KIND_AUTO`` group on a machine with GPUs) already lists every GPU it runs on.
    """
    count = int(group.get("count", 1))
    if group.get("kind") == "KIND_GPU":
        return count * max(1, len(group.get("gpus") or []))
    return count


def _resolve(model_dir: Path, path: str) -> Path:
    p = Path(os.path.expandvars(path))
    return p if p.is_absolute() else model_dir / p

