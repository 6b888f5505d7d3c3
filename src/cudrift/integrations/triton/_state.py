"""Window state of the Triton monitor: accepted rows → window profiles, and checkpoints.

Rows go through three stages:

1. **accepted** (request thread, :meth:`WindowState.accept`): a request's
   validated arrays are copied into the open window's pending list. A
   window that reaches ``window_rows`` is *sealed* there and then, and the
   rest of the request starts the next window, so every row-closed window
   holds exactly ``window_rows`` rows.
2. **folded** (worker thread, :meth:`WindowState.fold`): pending rows are
   profiled ``like=`` the reference and merged (``+``) into their window's
   profile. Profiling a few thousand rows at once costs little more than
   profiling one request (the per-call overhead dominates small batches),
   so the request path never profiles.
3. **closed** (worker thread, :meth:`WindowState.close_next`): a sealed
   window is folded completely and handed back as a :class:`ClosedWindow`;
   with ``sliding_windows=K`` its profile is merged with the K-1 windows
   closed before it.

A fold that fails (the GPU out of memory, a batch the profiler refuses) is
retried batch by batch; a batch that fails on its own is dropped, counted in
:attr:`WindowState.rows_dropped` and reported through
:attr:`WindowState.on_drop`, and its rows leave their window's row count, so
a window's count always equals the rows its profile holds. Every other row is
kept: a failure never loses a whole fold or a whole window.

A checkpoint (:meth:`WindowState.to_bytes`) holds the folded profile of every
window not closed yet, the K-1 most recent closed profiles, and the
counters; rows still pending are not in it. :func:`cudrift.io._atomic.write_atomic` writes it
to a temporary file, fsyncs it and renames it over the previous one, so a
crash leaves either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import math
import reprlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cudrift.errors import FormatError, IncompatibleSketchError
from cudrift.integrations.triton._layout import FeatureLayout
from cudrift.sketches import _format
from cudrift.sketches.column import NumericColumnProfile
from cudrift.sketches.config import ProfileConfig
from cudrift.sketches.profile import Profile, profile

__all__ = ["WindowState", "ClosedWindow", "reference_digest", "CHECKPOINT_KIND", "CHECKPOINT_VERSION"]

CHECKPOINT_KIND = "cudrift.triton.window"
CHECKPOINT_VERSION = 1


def reference_digest(reference: Profile) -> str:
    """SHA-256 of what a window's profile takes from the reference: its columns in order, their kinds, histogram
    edges and category dictionaries, and the settings windows share with it (``ProfileConfig.MERGE_KEYS``).

    Take it of the reference windows are profiled like (the monitor's, with the edges it widened to its inputs'
    precision), not of the file it came from: the same file under another input layout profiles windows against
    other edges, and their profiles do not merge. It does not hash the reference's bytes, which change with the
    profile format. Checkpoints record it for their readers; resuming one depends on its windows merging with
    the reference's, not on this digest.
    """
    h = hashlib.sha256(json.dumps({k: getattr(reference.config, k) for k in ProfileConfig.MERGE_KEYS},
                                  sort_keys=True).encode())
    for name, kind in reference.kinds.items():
        col = reference.columns[name]
        if isinstance(col, NumericColumnProfile):
            edges = None if col.histogram is None else [float(e).hex() for e in col.histogram.edges]
            part = [name, kind, edges]
        else:
            part = [name, kind, sorted((repr(k) for k in col._passed_on()))]
        item = json.dumps(part).encode()
        h.update(len(item).to_bytes(8, "little") + item)
    return h.hexdigest()


class AdoptError(RuntimeError):
    """:meth:`WindowState.adopt` of a state that folded rows already: the caller's mistake, not the checkpoint's."""


@dataclass
class ClosedWindow:
    """A window handed back by :meth:`WindowState.close_next`.

    Attributes
    ----------
    window_id
        Sequence number of the window (0, 1, 2... across restarts).
    rows
        Rows the window holds.
    opened_at, closed_at
        Wall-clock times (seconds since the epoch).
    own
        Profile of this window's rows only (data-quality counters use it).
    merged
        Profile compared with the reference: ``own`` merged with the
        ``sliding_windows - 1`` windows closed before it.
    outside
        Values of this window's rows outside the reference's [min, max]
        (infinities included), counted as the rows were folded, for the
        numerical columns whose reference histogram edges are not its range
        (:attr:`WindowState.counted_ranges`); the other columns' outer bins
        count them.
    """

    window_id: int
    rows: int
    opened_at: float
    closed_at: float
    own: Profile
    merged: Profile
    outside: dict[str, int] = field(default_factory=dict)


@dataclass
class _Window:
    window_id: int
    opened_at: float
    profile: Profile
    rows: int = 0  # accepted (folded + pending)
    pending: list[dict[str, Any]] = field(default_factory=list)
    pending_rows: int = 0
    closed_at: float | None = None
    outside: dict[str, int] = field(default_factory=dict)  # folded rows' values outside counted_ranges


@dataclass
class _Saved:
    """A checkpoint read and checked, not installed yet (:meth:`WindowState._read`)."""

    open_: _Window
    sealed: list[_Window]
    history: list[Profile]
    history_ids: list[int]
    rows_total: int
    windows_closed: int
    rows_dropped: int
    extra: dict[str, Any]


class WindowState:
    """Tumbling or sliding windows of accepted rows, profiled like the reference.

    Parameters
    ----------
    reference
        The reference profile: columns, bin edges and category dictionaries.
    layout
        Which columns each input tensor carries.
    window_rows
        A window closes once it holds this many rows (0: no row limit).
    window_seconds
        A window closes this many seconds after its first row (0: no time
        limit): its clock starts when a row joins it empty, so a window never
        closes empty and the time it spends empty (an idle spell, a restart)
        does not count.
    sliding_windows
        Closed windows merged for each comparison (1: tumbling windows).
    fold_rows
        Pending rows of the open window that trigger a fold.
    max_backlog_rows
        Accepted rows not profiled yet above which :meth:`accept` waits for
        the worker (backpressure: a monitor that cannot keep up slows the
        requests down instead of holding ever more rows); 0: no limit. Over
        it, the open window is due for a fold whatever ``fold_rows`` says, so
        a limit below ``fold_rows`` cannot stall the requests.
    backend
        ``"cpu"`` or ``"gpu"``: passed to :func:`cudrift.profile`.
    clock
        Wall clock (seconds since the epoch); tests pass a fake one.
    counted_ranges
        ``{column: (lo, hi)}``: numerical columns whose values outside
        ``[lo, hi]`` the fold counts (:attr:`ClosedWindow.outside`), because
        the reference's outer histogram edges are not that range. By default
        those of ``reference`` whose edges are not its [min, max]; the
        monitor passes its own, taken before it widens the edges to its
        inputs' precision.

    Notes
    -----
    :meth:`accept` is called from Triton's ``execute`` thread, everything
    else from the monitor's worker thread. A lock guards the windows' row
    counts and pending lists; window profiles are touched by the worker only.

    Examples
    --------
    >>> import numpy as np, cudrift
    >>> ref = cudrift.profile({"x": np.arange(1000.0), "y": np.arange(1000.0)})
    >>> st = WindowState(ref, FeatureLayout.from_profile(ref), window_rows=300)
    >>> waited = st.accept({"NUMERIC": np.zeros((500, 2), np.float32)}, 500)
    >>> w = st.close_next()
    >>> (w.window_id, w.rows, w.merged.n_rows), st.close_next(), st.open_rows
    ((0, 300, 300), None, 200)
    """

    def __init__(
        self,
        reference: Profile,
        layout: FeatureLayout,
        window_rows: int = 0,
        window_seconds: float = 0.0,
        sliding_windows: int = 1,
        fold_rows: int = 4096,
        backend: str = "cpu",
        clock: Callable[[], float] = time.time,
        max_backlog_rows: int = 0,
        counted_ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        if not isinstance(window_rows, int) or window_rows < 0:
            raise ValueError(f"Invalid value for window_rows: {window_rows!r} (expected an integer >= 0)")
        if not (isinstance(window_seconds, (int, float)) and window_seconds >= 0):
            raise ValueError(f"Invalid value for window_seconds: {window_seconds!r} (expected a number >= 0)")
        if window_rows == 0 and window_seconds == 0:
            raise ValueError("a window needs window_rows > 0 or window_seconds > 0 (both are 0)")
        if not isinstance(sliding_windows, int) or sliding_windows < 1:
            raise ValueError(f"Invalid value for sliding_windows: {sliding_windows!r} (expected an integer >= 1)")
        if not isinstance(fold_rows, int) or fold_rows < 1:
            raise ValueError(f"Invalid value for fold_rows: {fold_rows!r} (expected an integer >= 1)")
        if not isinstance(max_backlog_rows, int) or max_backlog_rows < 0:
            raise ValueError(f"Invalid value for max_backlog_rows: {max_backlog_rows!r} (expected an integer >= 0)")
        self.reference = reference
        #: What checkpoints record as the reference's identity (:func:`reference_digest` of ``reference``), for
        #: whoever reads one: a checkpoint is resumed where its windows merge with this reference's, whatever
        #: digest it carries (earlier monitors named their reference otherwise).
        self.digest = reference_digest(reference)
        self.layout = layout
        self.window_rows = window_rows
        self.window_seconds = float(window_seconds)
        self.sliding_windows = sliding_windows
        self.fold_rows = fold_rows
        self.max_backlog_rows = max_backlog_rows
        self.backend = backend
        self.clock = clock
        #: Called (without arguments) when :meth:`accept` starts to wait for
        #: the worker, so that the worker need not notice on its next tick.
        self.wake: Callable[[], None] | None = None
        #: Called as ``on_drop(rows, error)`` from the worker when a batch of
        #: ``rows`` accepted rows could not be profiled and was dropped.
        self.on_drop: Callable[[int, BaseException], None] | None = None
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)  # notified when the worker has profiled rows
        self._backlog = 0  # accepted rows not profiled yet, all windows together
        self._open = _Window(0, clock(), Profile.empty_like(reference))
        self._sealed: deque[_Window] = deque()
        # The K-1 windows closed last, newest first (maxlen 0 for tumbling windows).
        self._history: deque[Profile] = deque(maxlen=sliding_windows - 1)
        self._history_ids: deque[int] = deque(maxlen=sliding_windows - 1)
        self.rows_total = 0
        self.windows_closed = 0
        #: Accepted rows that could not be profiled (see the module's docstring); in ``rows_total``.
        self.rows_dropped = 0
        # Bool-keyed categorical columns travel as INT64 (Triton has no
        # mixed-type tensor); 0 and 1 are turned back into bools (see _profile).
        self._bool_columns = {c for c, kt in layout.key_types(reference).items() if kt == "bool"}
        #: Numerical columns whose reference's outer histogram edges are not its [min, max] (a window, or a
        #: reference grown by ``update()``, given as the reference), as ``{name: (min, max)}``: a window's outer
        #: bins do not count the values outside that range, so the fold counts them (:attr:`ClosedWindow.outside`).
        self.counted_ranges = dict(unspanned_ranges(reference) if counted_ranges is None else counted_ranges)

    # ------------------------------------------------------------ request path
    def accept(self, arrays: Mapping[str, Any], n_rows: int, max_wait: float = 10.0) -> float:
        """Take a validated request: ``arrays`` maps each input tensor name to a ``[n_rows, width]`` array.

        The arrays must be owned by the caller (copies of the request's
        tensors): they are kept until the worker folds them. Over
        ``max_backlog_rows`` this waits for the worker, at most ``max_wait``
        seconds (so that a stalled worker cannot hang the server: the monitor
        gives the requests of one ``execute`` call one deadline, and each the
        time left of it); returns the seconds waited.
        """
        with self._lock:
            self._take_locked(arrays, n_rows)
            if not self.max_backlog_rows or self._backlog <= self.max_backlog_rows:
                return 0.0
            t0 = time.monotonic()
            if self.wake is not None:
                self.wake()
            self._drained.wait_for(lambda: self._backlog <= self.max_backlog_rows, timeout=max_wait)
            return time.monotonic() - t0

    def _take_locked(self, arrays: Mapping[str, Any], n_rows: int, first_row_at: float | None = None) -> None:
        """Append a batch to the open window, sealing windows at ``window_rows`` (the rest starts the next one).

        ``first_row_at``: when the batch's first row arrived, if not now (rows taken again by :meth:`adopt`).
        """
        start = 0
        while start < n_rows:
            w = self._open
            if self.window_seconds > 0 and w.rows == 0:
                # a time window spans window_seconds of traffic from its first row: the time it spent empty
                # (idle, or the downtime before a restored checkpoint) must not count, or the first window
                # after it would close at once with a handful of rows
                w.opened_at = self.clock() if first_row_at is None or start else first_row_at
            room = n_rows - start if self.window_rows == 0 else min(self.window_rows - w.rows, n_rows - start)
            stop = start + room
            part = arrays if (start == 0 and stop == n_rows) else {k: v[start:stop] for k, v in arrays.items()}
            w.pending.append(part)
            w.pending_rows += room
            w.rows += room
            self.rows_total += room
            self._backlog += room
            start = stop
            if self.window_rows and w.rows >= self.window_rows:
                self._seal_locked(self.clock())

    @property
    def backlog_rows(self) -> int:
        """Accepted rows the worker has not profiled yet."""
        with self._lock:
            return self._backlog

    def _fold_into(self, w: _Window, batches: list[dict[str, Any]], n: int) -> None:
        """Profile ``batches`` (``n`` rows taken from ``w``'s pending list) into ``w``'s profile; never raises.

        One profiling call for all of them; if it fails, one call per batch,
        and a batch that fails on its own is dropped (its rows leave ``w.rows``
        and go to :attr:`rows_dropped`). Either way the rows leave the backlog.
        """
        dropped, failures = 0, []
        try:
            try:
                self._add(w, *self._profile(batches, w.profile))
            except Exception:  # noqa: BLE001 - retried batch by batch below
                for b in batches:
                    try:
                        self._add(w, *self._profile([b], w.profile))
                    except Exception as exc:  # noqa: BLE001 - drop this batch only
                        rows = _batch_rows(b)
                        dropped += rows
                        failures.append((rows, exc))
        finally:
            # the books first, whatever happens: a backlog that never drains would stall every request
            with self._lock:
                w.rows -= dropped
                self.rows_dropped += dropped
                self._backlog -= n
                self._drained.notify_all()
        if self.on_drop is not None:
            for rows, exc in failures:
                self.on_drop(rows, exc)

    @staticmethod
    def _add(w: _Window, prof: Profile, outside: dict[str, int]) -> None:
        w.profile = w.profile + prof
        for name, n in outside.items():
            w.outside[name] = w.outside.get(name, 0) + n

    def _seal_locked(self, now: float) -> None:
        self._sealed.append(self._open)
        self._open = self._next_window(self._open, now, self.rows_total)

    def _next_window(self, w: _Window, now: float, rows_total: int) -> _Window:
        """Close ``w`` at ``now``; the window that follows it, open and empty. Its samples start past every row
        accepted so far (``rows_total``): the windows a sliding comparison merges never draw the same sample
        indices (a window has at most as many values in a column as rows)."""
        w.closed_at = now
        return _Window(w.window_id + 1, now, Profile.empty_like(self.reference, skip=rows_total))

    # ------------------------------------------------------------ worker
    @property
    def open_rows(self) -> int:
        """Rows accepted into the open window."""
        with self._lock:
            return self._open.rows

    @property
    def open_window_id(self) -> int:
        with self._lock:
            return self._open.window_id

    def needs_work(self, now: float | None = None) -> bool:
        """True when a window is sealed, a time window is due, or enough rows are pending to fold."""
        now = self.clock() if now is None else now
        with self._lock:
            return bool(self._sealed) or self._fold_due_locked() or self._expired_locked(now)

    def _fold_due_locked(self) -> bool:
        over = bool(self.max_backlog_rows) and self._backlog > self.max_backlog_rows
        return self._open.pending_rows >= self.fold_rows or (over and self._open.pending_rows > 0)

    def _expired_locked(self, now: float) -> bool:
        if self.window_seconds <= 0 or self._open.rows == 0:
            return False  # an empty window's clock has not started (accept starts it)
        if now < self._open.opened_at:
            # the wall clock stepped back (an NTP correction, a restored VM): restart the window's clock, or it
            # would not close before the clock caught up again (opening times are wall-clock: they survive
            # restarts in the checkpoint)
            self._open.opened_at = now
        return now - self._open.opened_at >= self.window_seconds

    def seal_expired(self, now: float | None = None) -> bool:
        """Seal the open window if its time is up; returns whether it did.

        A window with no rows never expires (its clock starts at its first
        row), so an idle server does not close empty windows.
        """
        now = self.clock() if now is None else now
        with self._lock:
            if not self._expired_locked(now):
                return False
            self._seal_locked(now)
            return True

    @property
    def sealed_windows(self) -> int:
        """Windows sealed and not closed yet (:meth:`close_next` takes the oldest)."""
        with self._lock:
            return len(self._sealed)

    def fold(self, force: bool = False) -> int:
        """Profile pending rows into their window's profile; returns the rows folded.

        Without ``force``: the open window's, once it has ``fold_rows``
        pending rows or the backlog is over ``max_backlog_rows``. With ``force``: every unclosed window's (before a
        checkpoint, so that it holds every row accepted so far).
        """
        with self._lock:
            if force:
                windows = [w for w in (*self._sealed, self._open) if w.pending]
            else:
                windows = [self._open] if self._fold_due_locked() else []
            work = []
            for w in windows:
                work.append((w, w.pending, w.pending_rows))
                w.pending, w.pending_rows = [], 0
        # A request may seal the open window while this runs; window profiles
        # are still only touched by this thread, where close_next runs too.
        for w, batches, n in work:
            self._fold_into(w, batches, n)
        return sum(n for _, _, n in work)

    def close_next(self) -> ClosedWindow | None:
        """Fold and close the oldest sealed window; ``None`` when none is sealed.

        A sealed window left with no rows (every one of them dropped) is
        discarded, not closed: there is nothing to compare.
        """
        while True:
            with self._lock:
                if not self._sealed:
                    return None
                w = self._sealed.popleft()
                batches, n, w.pending, w.pending_rows = w.pending, w.pending_rows, [], 0
            if batches:
                self._fold_into(w, batches, n)
            if w.rows > 0:
                break
        merged = w.profile
        for past in self._history:
            merged = merged + past
        self._history.appendleft(w.profile)
        self._history_ids.appendleft(w.window_id)
        self.windows_closed += 1
        return ClosedWindow(w.window_id, w.rows, w.opened_at, w.closed_at or self.clock(), w.profile, merged,
                            dict(w.outside))

    def _profile(self, batches: list[dict[str, Any]], window: Profile) -> tuple[Profile, dict[str, int]]:
        """One profile of a list of accepted batches (the fold's single profiling call), made like ``window``
        (the reference's edges and dictionaries; its samples' indices continue the window's), and their values
        outside :attr:`counted_ranges`."""
        columns: dict[str, Any] = {}
        for g in self.layout.groups:
            parts = [b[g.name] for b in batches]
            xp = _array_module(parts[0])
            block = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0)
            for j, name in enumerate(g.columns):
                col = xp.ascontiguousarray(block[:, j])
                if name in self._bool_columns:
                    col = _as_bool_keys(col)
                columns[name] = col
        # Profiles merge only with the same column order: the reference's.
        ordered = {name: columns[name] for name in self.reference.kinds}
        prof = profile(ordered, like=window, backend=self.backend)
        outside = {}
        for name, (lo, hi) in self.counted_ranges.items():
            xp = _array_module(columns[name])
            # the input's values, widened, against the range the monitor widened outward to the input's float
            # (counted_ranges; a scalar against an FP32 array would be rounded to FP32 first)
            # (the range is finite, so infinities are outside it too; NaN is not)
            col = columns[name].astype(xp.float64, copy=False)
            outside[name] = int(xp.count_nonzero((col < lo) | (col > hi)))
        # Every column's dtype is the reference's: the tensors' types are the layout's, not the data's (a
        # float64 reference column arrives as FP32, an int32 category as INT64, a boolean one as INT64 that
        # _as_bool_keys may keep as int64), and the window's own would be a false dtype_change in every report.
        for name in prof.dtypes:
            if name in self.reference.dtypes:
                prof.dtypes[name] = self.reference.dtypes[name]
        return prof, outside

    # ------------------------------------------------------------ checkpoint
    def to_bytes(self, extra: Mapping[str, Any] | None = None) -> bytes:
        """Checkpoint: every unclosed window's folded profile, the sliding history and the counters.

        Call it from the worker thread. Rows not folded yet are not in it;
        ``extra`` is stored as JSON next to the state (counters of the caller).
        """
        return self.snapshot(extra)[0]

    def snapshot(self, extra: Mapping[str, Any] | None = None) -> tuple[bytes, int, int]:
        """:meth:`to_bytes`, with the ``rows_total`` and ``windows_closed`` the checkpoint holds.

        Rows accepted while it is written are pending, so not in it: a caller
        that tracks what was saved must use these counts, not the live ones.
        """
        with self._lock:
            windows = [*self._sealed, self._open]
            info = [
                {"id": w.window_id, "opened_at": w.opened_at, "closed_at": w.closed_at,
                 "rows": w.rows - w.pending_rows, "outside": dict(w.outside)}
                for w in windows
            ]
            profiles = [w.profile for w in windows]
            rows_total = self.rows_total - sum(w.pending_rows for w in windows)
        arrays = {f"w{i}": np.frombuffer(p.to_bytes(), dtype=np.uint8) for i, p in enumerate(profiles)}
        arrays.update({f"h{i}": np.frombuffer(p.to_bytes(), dtype=np.uint8) for i, p in enumerate(self._history)})
        meta = {
            "reference_sha256": self.digest,
            "windows": info,
            "history": list(self._history_ids),
            "rows_total": rows_total,
            "rows_dropped": self.rows_dropped,
            "windows_closed": self.windows_closed,
            "saved_at": self.clock(),
            "extra": dict(extra or {}),
        }
        return _format.pack(CHECKPOINT_KIND, CHECKPOINT_VERSION, meta, arrays), rows_total, self.windows_closed

    def restore(self, data: bytes) -> dict[str, Any]:
        """Resume from checkpoint bytes; returns the ``extra`` dict saved with them.

        Call it before the first :meth:`accept`. If it raises, the state is
        left as it was: every field is checked and the new state built aside
        before any of it replaces the current one. Restored windows keep their
        opening times (wall-clock time, downtime included): an open window
        holding rows whose time ran out while the server was down is due at
        once, and :meth:`seal_expired` right after this seals it before new
        rows can join it; an empty one starts its clock at its first row.

        Raises
        ------
        FormatError
            If the bytes are not a readable checkpoint (counts that are not
            integers >= 0, times that are not finite numbers, ...), were
            written against a different reference profile, or hold windows
            that do not merge with this one's (profiled against other edges
            or dictionaries).
        MemoryError
            As it comes: out of memory says nothing about the checkpoint.
        """
        saved = self._read(data)
        with self._lock:  # nothing below can fail
            self._install_locked(saved)
        return saved.extra

    def adopt(self, data: bytes) -> tuple[dict[str, Any], tuple[int, int, int]]:
        """Resume from checkpoint bytes beneath the rows accepted so far, which are taken again after its rows.

        For a monitor that started while another instance still owned the
        checkpoint (Triton loads a reloaded model's new instance before it
        finalizes the old one): it accepts rows without folding any until the
        owner has written its last checkpoint, then adopts it. The rows
        accepted meanwhile join the checkpoint's open window in the order they
        came, as if they arrived after its rows (an open window whose time ran
        out is sealed first, a time window they open starts at the first of
        them), and are split at its window boundaries as :meth:`accept` splits
        requests: every row is in one window, and window ids go on from the
        checkpoint's.

        Returns the ``extra`` dict saved with the checkpoint and the counts it
        holds (``rows_total``, ``windows_closed``, ``rows_dropped``), those of
        the state before the rows taken again were added.

        Raises
        ------
        FormatError, MemoryError
            As :meth:`restore`; the state is left as it was.
        AdoptError
            If rows of this state were folded or windows closed: a profile
            cannot be split at the checkpoint's window boundaries (a caller's
            mistake, not the checkpoint's).
        """
        saved = self._read(data)
        with self._lock:
            windows = [*self._sealed, self._open]
            if self.windows_closed or self._history or any(w.rows != w.pending_rows for w in windows):
                raise AdoptError("rows of this state were folded already; they cannot be taken again beneath a "
                                 "checkpoint")
            batches = [b for w in windows for b in w.pending]
            first_row_at = next((w.opened_at for w in windows if w.rows), None)
            self._install_locked(saved)
            counts = (self.rows_total, self.windows_closed, self.rows_dropped)
            now = self.clock()
            if self._expired_locked(now):
                self._seal_locked(now)
            self._backlog = 0  # the checkpoint's windows are folded; the rows taken again count once more below
            for i, b in enumerate(batches):
                self._take_locked(b, _batch_rows(b), first_row_at if i == 0 else None)
        return saved.extra, counts

    def saved_extra(self, data: bytes) -> dict[str, Any]:
        """The ``extra`` dict of checkpoint bytes, without loading their windows (nor so checking their reference:
        a reload's waiting instance shows the gauges its old instance last published).

        Raises
        ------
        FormatError
            If the bytes are not a checkpoint.
        """
        _, meta, _ = _format.unpack(data, CHECKPOINT_KIND, CHECKPOINT_VERSION)
        try:
            return _extra(meta)
        except TypeError as exc:
            raise FormatError(f"corrupted {CHECKPOINT_KIND} checkpoint: {exc}") from None

    def _read(self, data: bytes) -> _Saved:
        """A checkpoint's windows, history and counts, every field checked (:meth:`restore`'s errors)."""
        _, meta, arrays = _format.unpack(data, CHECKPOINT_KIND, CHECKPOINT_VERSION)
        try:
            digest = meta["reference_sha256"]
            if not isinstance(digest, str):
                raise TypeError(f"reference_sha256 is {type(digest).__name__}, not str")
            info = _json_list(meta["windows"], "windows")
            hist_ids = [_count(i, "history id") for i in _json_list(meta["history"], "history")]
            rows_total = _count(meta["rows_total"], "rows_total")
            windows_closed = _count(meta["windows_closed"], "windows_closed")
            # (rows_dropped is not in checkpoints written before it was counted)
            rows_dropped = _count(meta.get("rows_dropped", 0), "rows_dropped")
            extra = _extra(meta)
            windows = []
            for i, w in enumerate(info):
                if not isinstance(w, dict):
                    raise TypeError(f"window entry {i} is {type(w).__name__}, not a JSON object")
                window_id = _count(w["id"], "window id")
                opened_at = _time(w["opened_at"], f"opened_at of window {window_id}")
                closed_at = w["closed_at"]
                closed_at = None if closed_at is None else _time(closed_at, f"closed_at of window {window_id}")
                rows = _count(w["rows"], f"rows of window {window_id}")
                prof = Profile.from_bytes(arrays[f"w{i}"].tobytes())
                outside = self._outside(w.get("outside"), prof, window_id)
                windows.append(_Window(window_id, opened_at, prof, rows=rows, closed_at=closed_at, outside=outside))
            history = [Profile.from_bytes(arrays[f"h{i}"].tobytes()) for i in range(len(hist_ids))]
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"corrupted {CHECKPOINT_KIND} checkpoint: {exc!r}") from None
        if not windows:
            raise FormatError(f"corrupted {CHECKPOINT_KIND} checkpoint: no open window")
        for w in windows:
            if w.profile.n_rows != w.rows:
                raise FormatError(
                    f"corrupted {CHECKPOINT_KIND} checkpoint: window {w.window_id} says {w.rows} rows, "
                    f"its profile holds {w.profile.n_rows}"
                )
        empty = Profile.empty_like(self.reference)
        for what, prof in [*((f"window {w.window_id}", w.profile) for w in windows),
                           *((f"closed window {i}", h) for i, h in zip(hist_ids, history))]:
            try:
                empty.merge(prof)  # same columns, edges and dictionaries
            except (IncompatibleSketchError, TypeError, ValueError) as exc:
                raise FormatError(f"the checkpoint was written against a different reference profile: its {what} "
                                  f"does not merge with the reference: {exc}") from None
        *sealed, open_ = windows
        # A window still open in the checkpoint but full under the current settings (window_rows lowered since)
        # is sealed here, as the next accept would, keeping the invariant "open window below the limit" (built
        # aside: the state changes only in _install_locked).
        if self.window_rows and open_.rows >= self.window_rows:
            sealed.append(open_)
            open_ = self._next_window(open_, self.clock(), rows_total)
        return _Saved(open_, sealed, history, hist_ids, rows_total, windows_closed, rows_dropped, extra)

    def _outside(self, saved: Any, prof: Profile, window_id: int) -> dict[str, int]:
        """A checkpointed window's counts outside :attr:`counted_ranges`. A checkpoint written before they were
        counted (or under a reference whose edges were its range) has none: its folded rows' outer bins and
        infinities stand in for them, as the counter took them then."""
        saved = {} if saved is None else saved
        if not isinstance(saved, dict):
            raise TypeError(f"outside counts of window {window_id} are {type(saved).__name__}, not a JSON object")
        out = {}
        for name in self.counted_ranges:
            if name in saved:
                out[name] = _count(saved[name], f"outside count of {name!r} in window {window_id}")
            elif isinstance(col := prof.columns.get(name), NumericColumnProfile):
                out[name] = col.outside_edges
        return out

    def _install_locked(self, saved: _Saved) -> None:
        """Replace the windows and counts with a checkpoint's (read by :meth:`_read`); cannot fail."""
        keep = self.sliding_windows - 1  # saved newest first; keep the K-1 newest under the current setting
        self._open = saved.open_
        self._sealed = deque(saved.sealed)
        self._history.clear()
        self._history.extend(saved.history[:keep])
        self._history_ids.clear()
        self._history_ids.extend(saved.history_ids[:keep])
        self.rows_total = saved.rows_total
        self.windows_closed = saved.windows_closed
        self.rows_dropped = saved.rows_dropped


def unspanned_ranges(reference: Profile) -> dict[str, tuple[float, float]]:
    """``{column: (min, max)}`` of the reference's numerical columns whose outer histogram edges are not their
    range (:attr:`NumericColumnProfile.edges_are_range`), where a window's outer bins cannot count the values
    outside it."""
    return {name: (col.moments.min, col.moments.max) for name, col in reference.columns.items()
            if isinstance(col, NumericColumnProfile) and col.moments.count and not col.edges_are_range}


def _as_bool_keys(col: Any) -> Any:
    """A boolean category's INT64 column as bools when it holds only 0 and 1.

    Otherwise the integers themselves: profiled against the reference's boolean dictionary, 0 and 1 count as
    False and True and any other value as an unseen category (7 is not True); ``WindowState._profile`` then
    records the column's dtype as the reference's.
    """
    return col != 0 if bool(((col == 0) | (col == 1)).all()) else col


def _extra(meta: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``extra`` (the monitor's counters and gauges): a JSON object, {} where absent."""
    extra = meta.get("extra") or {}
    if not isinstance(extra, dict):
        raise TypeError(f"extra is {type(extra).__name__}, not a JSON object")
    return extra


def _count(value: Any, what: str) -> int:
    """A checkpoint's count: an integer in 0..2**63-1 (not a bool, a float or a string that would convert; no
    count this monitor makes passes int64, sample indices being 64-bit)."""
    if not _format.json_count(value):
        raise ValueError(f"{what} is {reprlib.repr(value)}, not an integer >= 0")
    return value


def finite(value: Any) -> float | None:
    """A JSON number as a finite float (not a bool); None for anything else, an integer past float's range too."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            t = float(value)
        except OverflowError:
            return None
        if math.isfinite(t):
            return t
    return None


def _time(value: Any, what: str) -> float:
    """A checkpoint's wall-clock time: a finite number of seconds."""
    t = finite(value)
    if t is None:
        raise ValueError(f"{what} is {reprlib.repr(value)}, not a finite number")
    return t


def _json_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{what} is {type(value).__name__}, not a JSON array")
    return value


def _batch_rows(batch: Mapping[str, Any]) -> int:
    """Rows of an accepted batch (its arrays all have as many)."""
    return int(next(iter(batch.values())).shape[0])


def _array_module(a: Any):
    """NumPy, or CuPy for device arrays (the GPU instance path keeps inputs on the device)."""
    if isinstance(a, np.ndarray):
        return np
    import cupy

    return cupy


