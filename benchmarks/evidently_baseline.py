"""Evidently 0.7 DataDriftPreset on the benchmark windows: a standalone timing script.

Evidently 0.7 does not import with pandas 3, so this script runs in its own
interpreter (see ``benchmarks/README.md``)::

    python3 -m venv /tmp/evenv
    /tmp/evenv/bin/pip install 'evidently==0.7.*' 'pandas<3'
    /tmp/evenv/bin/python benchmarks/evidently_baseline.py --rows 1000000 --cols 20

It builds the same windows as the pytest-benchmark suite (``_benchdata.py``,
same seed, pure NumPy), wraps them in pandas DataFrames (not timed), and times
``Report([DataDriftPreset()]).run(current, reference)`` once with
``time.perf_counter``. The last line of stdout is one JSON object::

    {"seconds": ..., "n_rows": ..., "n_cols": ..., "evidently_version": ..., ...}

Extra keys: data fingerprints (so the caller can check both sides used the
same data), the per-column drift values Evidently computed and how many
columns it flagged, the pandas/numpy versions, and the import time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchdata  # noqa: E402  (pure NumPy, shared with the pytest suite)


def _summarize(snapshot) -> dict:
    """Per-column drift values and the drifted-columns count from a 0.7 snapshot."""
    out: dict = {"column_values": {}, "methods": set(), "drifted_count": None, "drifted_share": None}
    try:
        d = snapshot.dict()
    except Exception as exc:  # the timing is what matters; keep going
        return {"summary_error": f"{type(exc).__name__}: {exc}"}
    for m in d.get("metrics", []):
        cfg = m.get("config", {})
        kind = str(cfg.get("type", ""))
        if kind.endswith("DriftedColumnsCount"):
            v = m.get("value") or {}
            out["drifted_count"] = v.get("count")
            out["drifted_share"] = v.get("share")
        elif kind.endswith("ValueDrift"):
            out["column_values"][cfg.get("column")] = m.get("value")
            out["methods"].add(cfg.get("method"))
    out["methods"] = sorted(x for x in out["methods"] if x)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=_benchdata.bench_rows())
    ap.add_argument("--cols", type=int, default=_benchdata.bench_cols())
    ap.add_argument("--seed", type=int, default=_benchdata.bench_seed())
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    import evidently
    import numpy as np
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    import_seconds = time.perf_counter() - t0

    ref, cur = _benchdata.make_windows(args.rows, args.cols, args.seed)
    names = _benchdata.column_names(args.cols)
    fp = {"reference": _benchdata.fingerprint(ref), "current": _benchdata.fingerprint(cur)}
    ref_df = pd.DataFrame(ref, columns=names, copy=False)
    cur_df = pd.DataFrame(cur, columns=names, copy=False)

    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(cur_df, ref_df)
    seconds = time.perf_counter() - t0

    result = {
        "seconds": seconds,
        "n_rows": args.rows,
        "n_cols": args.cols,
        "seed": args.seed,
        "evidently_version": evidently.__version__,
        "pandas_version": pd.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "import_seconds": import_seconds,
        "fingerprint": fp,
        "timed": "Report([DataDriftPreset()]).run(current_df, reference_df), 1 repetition",
    }
    result.update(_summarize(snapshot))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
