"""Helpers of the benchmark suite (imported by conftest and the benchmark files)."""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path


class BenchStore:
    """Best (minimum) seconds per named measurement, shared across the session.

    A benchmark test records its own result with :meth:`record`; a test that
    needs another contender's time for a ratio calls :meth:`seconds`, which
    reuses the recorded figure or, when that benchmark was deselected, times
    the callable itself (``rounds`` repetitions, minimum kept).
    """

    def __init__(self) -> None:
        self.seconds_by_name: dict[str, float] = {}
        self.notes: list[str] = []
        self.ratios: list[tuple[str, float, str]] = []  # (label, value, note)
        self.figures: list[tuple[str, str]] = []  # (label, value)

    def record(self, name: str, benchmark) -> float:
        """Best seconds of a finished benchmark; NaN under ``--benchmark-disable`` (nothing timed)."""
        if getattr(benchmark, "stats", None) is None:
            return math.nan
        best = float(benchmark.stats.stats.min)
        self.seconds_by_name[name] = best
        return best

    def seconds(self, name: str, fn, rounds: int = 1) -> float:
        if name not in self.seconds_by_name:
            best = float("inf")
            for _ in range(rounds):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            self.seconds_by_name[name] = best
            self.notes.append(f"{name}: timed outside pytest-benchmark ({rounds} round(s)) for a ratio")
        return self.seconds_by_name[name]

    def ratio(self, label: str, value: float, note: str = "") -> float:
        self.ratios.append((label, float(value), note))
        return float(value)

    def figure(self, label: str, value: str) -> None:
        self.figures.append((label, value))


def size_info(bench_size: dict) -> dict:
    n, c = bench_size["n_rows"], bench_size["n_cols"]
    return {"n_rows": n, "n_cols": c, "values": n * c, "dtype": "float32", "seed": bench_size["seed"]}


def resolved_backend() -> str:
    """What ``backend="auto"`` resolves to here (honours ``$CUDRIFT_BACKEND``)."""
    from cudrift.backends import resolve_backend

    return resolve_backend("auto")


def source_digest() -> str:
    """Short SHA-256 over the cudrift sources that were imported (identifies an uncommitted tree)."""
    import hashlib

    try:
        import cudrift
    except Exception:
        return "unavailable"
    root = Path(cudrift.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
