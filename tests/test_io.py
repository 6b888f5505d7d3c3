"""Every input form gives the same profile; bad input gets errors that name the column."""

import fractions
from decimal import Decimal

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cudrift
from cudrift import EmptyInputError, SchemaError


def _frame(rng, n=3000):
    x = rng.normal(size=n).astype(np.float32)
    y = rng.standard_cauchy(size=n)
    y[rng.random(n) < 0.05] = np.nan
    k = rng.integers(0, 4, size=n)  # few distinct ints → categorical
    c = rng.choice(np.array(["a", "b", "c", "d", "e"], dtype=object), size=n)
    return {"x": x, "y": y, "k": k, "c": c}


def _assert_same(p1, p2):
    assert p1.names == p2.names
    assert p1.kinds == p2.kinds
    assert p1.n_rows == p2.n_rows
    for n in p1.names:
        a, b = p1[n], p2[n]
        assert a.count == b.count and a.null_count == b.null_count
        if p1.kinds[n] == "numerical":
            assert a.nan_count == b.nan_count
            assert a.moments.count == b.moments.count
            np.testing.assert_allclose(a.moments.mean, b.moments.mean, rtol=1e-12)
            np.testing.assert_array_equal(a.histogram.edges, b.histogram.edges)
            np.testing.assert_array_equal(a.histogram.counts, b.histogram.counts)
        else:
            assert dict(a.counts.items()) == dict(b.counts.items())


def test_all_input_forms_agree(rng, tmp_path):
    d = _frame(rng)
    base = cudrift.profile(d)
    assert base.kinds == {"x": "numerical", "y": "numerical", "k": "categorical", "c": "categorical"}
    df = pd.DataFrame(d)
    _assert_same(base, cudrift.profile(df))
    polars = pl.DataFrame({k: (v.astype(str) if v.dtype == object else v) for k, v in d.items()})
    _assert_same(base, cudrift.profile(polars))
    tbl = pa.table({k: pa.array(v, from_pandas=v.dtype == object) for k, v in d.items()})
    _assert_same(base, cudrift.profile(tbl))
    path = tmp_path / "w.parquet"
    pq.write_table(tbl, path)
    _assert_same(base, cudrift.profile(path))
    _assert_same(base, cudrift.profile(str(path)))


def test_parquet_batches_and_many_files(rng, tmp_path):
    d = _frame(rng, 5000)
    tbl = pa.table({k: pa.array(v, from_pandas=v.dtype == object) for k, v in d.items()})
    paths = []
    for i in range(3):
        p = tmp_path / f"part{i}.parquet"
        pq.write_table(tbl.slice(i * 2000, 2000), p, row_group_size=700)
        paths.append(p)
    whole = cudrift.profile(d)
    small_batches = cudrift.profile(paths, config=cudrift.ProfileConfig(batch_rows=512))
    assert small_batches.n_rows == 5000
    for n in ("x", "y"):
        a, b = whole[n], small_batches[n]
        assert a.nan_count == b.nan_count and a.moments.count == b.moments.count
        np.testing.assert_allclose(a.moments.mean, b.moments.mean, rtol=1e-9)
        np.testing.assert_allclose(a.moments.variance, b.moments.variance, rtol=1e-9)
        assert a.moments.min == b.moments.min and a.moments.max == b.moments.max
        # edges come from the quantile sketch, so they may differ slightly;
        # the counts on each profile's own edges must be exact:
        finite = np.sort(np.asarray(d[n], dtype=np.float64)[np.isfinite(d[n])])
        e = b.histogram.edges
        expected = np.histogram(finite, bins=e)[0]
        np.testing.assert_array_equal(b.histogram.counts[1:-1], expected)
    assert dict(whole["c"].counts.items()) == dict(small_batches["c"].counts.items())


def test_2d_array_needs_columns(rng):
    a = rng.normal(size=(100, 3))
    with pytest.raises(SchemaError, match="columns="):
        cudrift.profile(a)
    with pytest.raises(SchemaError, match="3 columns|shape"):
        cudrift.profile(a, columns=["a", "b"])
    p = cudrift.profile(a, columns=["a", "b", "c"])
    assert p.names == ["a", "b", "c"] and p.n_rows == 100
    np.testing.assert_allclose(p["b"].moments.mean, a[:, 1].mean(), rtol=1e-12)


def test_nulls_are_kept_apart_from_nan():
    tbl = pa.table({"v": pa.array([1.0, None, float("nan"), 2.0, None, float("inf"), -float("inf"), 3.0])})
    p = cudrift.profile(tbl)
    col = p["v"]
    assert (col.count, col.null_count, col.nan_count, col.posinf_count, col.neginf_count) == (8, 2, 1, 1, 1)
    assert col.moments.count == 3
    np.testing.assert_allclose(col.moments.mean, 2.0)


def test_pandas_nullable_and_categorical_dtypes():
    df = pd.DataFrame({
        "i": pd.array([1, None, 3, 4, 5, 6, 7, 8, 9, 10] * 5, dtype="Int64"),
        "s": pd.Series(["a", None, "b", "a", "c"] * 10, dtype="string"),
        "cat": pd.Series(["x", "y"] * 25, dtype="category"),
        "b": [True, False] * 25,
    })
    p = cudrift.profile(df)
    assert p["i"].null_count == 5
    assert p["s"].null_count == 10
    assert dict(p["cat"].counts.items()) == {"x": 25, "y": 25}
    assert p.kinds["b"] == "categorical"
    assert dict(p["b"].counts.items()) == {True: 25, False: 25}


def test_unsupported_dtype_names_column_and_dtype():
    df = pd.DataFrame({"ok": [1.0, 2.0], "when": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    with pytest.raises(SchemaError, match=r"'when'.*datetime"):
        cudrift.profile(df)
    # ignoring it works
    p = cudrift.profile(df, columns=["ok"])
    assert p.names == ["ok"]
    with pytest.raises(SchemaError, match=r"'z'.*complex"):
        cudrift.profile({"z": np.array([1 + 2j, 3j])})


def test_mixed_types_in_one_column():
    with pytest.raises(SchemaError, match=r"'m'.*mixes value types.*str.*int|'m'.*mixes value types.*int.*str"):
        cudrift.profile(pd.DataFrame({"m": ["a", 1, "b", 2]}))
    with pytest.raises(SchemaError, match=r"'m'"):
        cudrift.profile({"m": np.array(["a", 1.5, None], dtype=object)})


def test_empty_inputs():
    with pytest.raises(EmptyInputError, match="no rows"):
        cudrift.profile({"a": np.zeros(0)})
    with pytest.raises(EmptyInputError):
        cudrift.profile({})
    with pytest.raises(EmptyInputError):
        cudrift.profile(pd.DataFrame({"a": []}, dtype=float))


def test_column_lengths_and_unknown_inputs():
    with pytest.raises(SchemaError, match="different lengths"):
        cudrift.profile({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(SchemaError, match="unsupported input type"):
        cudrift.profile(42)
    with pytest.raises(SchemaError, match=r"\['nope'\] not found"):
        cudrift.profile({"a": np.zeros(3)}, columns=["nope"])
    with pytest.raises(FileNotFoundError):
        cudrift.profile("/nonexistent/file.parquet")


def test_write_atomic_replaces_the_file_whole(tmp_path):
    import os

    from cudrift.io._atomic import write_atomic

    target = tmp_path / "state" / "w.ckpt"
    write_atomic(target, b"one")
    write_atomic(target, b"two" * 1000)
    assert target.read_bytes() == b"two" * 1000
    assert os.listdir(target.parent) == ["w.ckpt"]  # no temporary file left behind


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_mode_open_would_give_them(tmp_path, umask, mode):
    """Profiles and checkpoints are read by other users (a Triton server, colleagues): not 0600 whatever the umask."""
    import os
    import stat

    old = os.umask(umask)
    try:
        path = cudrift.profile({"x": np.arange(10.0)}).save(tmp_path / "ref.cdp")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


_READ_ONLY_LEFTOVER = """
import os, sys, time
from cudrift.io._atomic import STALE_SECONDS, write_atomic
if os.geteuid() == 0:
    os.setuid(65534)  # (root opens a 0444 file for writing: a user does not)
d = sys.argv[1]
left = os.path.join(d, "p.cdp.cudrift-abcd1234.tmp")  # a writer killed before its rename, over a 0444 profile
with open(left, "wb") as f:
    f.write(b"half")
os.chmod(left, 0o444)
t = time.time() - STALE_SECONDS - 60
os.utime(left, (t, t))
write_atomic(os.path.join(d, "p.cdp"), b"whole")
print(sorted(os.listdir(d)))
"""


def test_a_read_only_leftover_of_a_dead_writer_is_removed_too():
    """A writer's temporary file takes the mode of the file it replaces (0444 for a read-only profile): the
    cleanup opened leftovers for writing to lock them, which a user may not, so those stayed for good."""
    import os
    import subprocess
    import sys
    import tempfile

    d = tempfile.mkdtemp()
    os.chmod(d, 0o777)  # (the child may run as nobody)
    run = subprocess.run([sys.executable, "-c", _READ_ONLY_LEFTOVER, d], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['p.cdp']"


def test_saving_over_a_file_keeps_its_mode(tmp_path):
    import os
    import stat

    path = tmp_path / "ref.cdp"
    prof = cudrift.profile({"x": np.arange(10.0)})
    prof.save(path)
    os.chmod(path, 0o640)
    prof.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("bad, says", [(np.array([2**70, 5, 5, 6], dtype=object), "does not fit in 64 bits"),
                                       (np.array(["a\ud800", "b", "b", "c"], dtype=object), "not valid Unicode")])
def test_object_columns_arrow_cannot_read_are_named(bad, says):
    ok = np.arange(4.0)
    with pytest.raises(SchemaError, match=f"column 'c' holds .*{says}"):
        cudrift.profile({"x": ok, "c": bad})
    assert says in cudrift.profile({"x": ok, "c": bad}, errors="report").errors["c"]
    f = cudrift.DriftDetector({"x": ok, "c": bad}).compare({"x": ok, "c": bad})["c"]
    assert f.status == "error" and says in f.message


def test_a_dict_of_lists_reads_its_values_as_a_pandas_object_column_does():
    """NumPy makes text of a list that holds a string: its NaN became a category 'nan' (identical data drifted,
    p 1.2e-4, against the same values from pandas), and ints, floats and booleans among strings became labels."""
    vals = ["x", "y"] * 40 + [float("nan")] * 18 + [None] * 2
    from_dict, from_pandas = cudrift.profile({"c": vals}), cudrift.profile(pd.DataFrame({"c": vals}))
    assert from_dict["c"].null_count == from_pandas["c"].null_count == 20
    assert dict(from_dict["c"].counts.items()) == dict(from_pandas["c"].counts.items()) == {"x": 40, "y": 40}
    rep = cudrift.DriftDetector(pd.DataFrame({"c": vals})).compare({"c": vals})
    assert rep["c"].statistic == 0.0 and not rep.findings
    for mixed, types in (([1, "x"], "'int', 'str'"), ([True, "x"], "'bool', 'str'"), (["x", 1.5], "'str', 'float'")):
        with pytest.raises(SchemaError, match=f"column 'c' mixes value types \\[{types}\\]"):
            cudrift.profile({"c": mixed * 5})
    # a text array given as such keeps its text; a string or nested lists are no column
    assert "nan" in cudrift.profile({"c": np.array(["x", "nan"] * 5)})["c"].counts
    for bad in ("xyz", b"xyz", [["a", "b"], ["c", "d"]]):
        with pytest.raises(SchemaError, match="column 'c' must be 1-D"):
            cudrift.profile({"a": np.arange(3.0), "c": bad})


@pytest.mark.parametrize("vals", [[0.5, None, 1.0], [1.5, pd.NA, 2.0], [1, 2.5, None]])
def test_floats_in_object_form_are_numbers_in_every_container(vals):
    """A dict's and a 2-D object array's floats among None were refused ("holding floats; cast it"), a pandas
    object column's and a polars column's read as numbers."""
    want = cudrift.profile(pd.DataFrame({"c": pd.Series(vals * 10, dtype=object)}))
    assert want.kinds == {"c": "numerical"}
    matrix = np.array([vals * 10, ["z"] * 30], dtype=object).T
    for got in (cudrift.profile({"c": vals * 10}), cudrift.profile(matrix, columns=["c", "z"])):
        assert got.kinds["c"] == "numerical"
        assert (got["c"].count, got["c"].null_count, got["c"].moments.mean) == (
            want["c"].count, want["c"].null_count, want["c"].moments.mean)


def test_a_2d_array_of_no_columns_or_unreadable_ones_is_refused_by_name():
    for empty in (np.zeros((3, 0)), np.zeros((3, 0), dtype=object)):  # (an object one was read as no columns)
        with pytest.raises(cudrift.errors.EmptyInputError,
                           match=r"the 2-D NumPy array has no columns \(shape \(3, 0\)\)"):
            cudrift.profile(empty, columns=[])
    days = np.array(["2020-01-01", "2020-01-02"] * 3, dtype="datetime64[D]").reshape(3, 2)
    with pytest.raises(SchemaError, match="column 'a' has unsupported dtype datetime64"):
        cudrift.profile(days, columns=["a", "b"])
    records = np.array([(1, 2.5), (2, 3.5)], dtype=[("i", "i8"), ("f", "f8")])
    with pytest.raises(SchemaError, match=r"a structured NumPy array \(fields \['i', 'f'\]\) is not read"):
        cudrift.profile(records)  # (it said "must be 2-D", and columns= could not help)
    # reported column by column, as a frame's: compare() gives each an error row (it raised)
    rep = cudrift.DriftDetector({"a": [1.0, 2.0], "b": [1.0, 2.0]}).compare(days, columns=["a", "b"])
    assert [(f.column, f.status) for f in rep] == [("a", "error"), ("b", "error")]


def test_dict_keys_that_name_one_column_twice_are_refused():
    with pytest.raises(SchemaError, match=r"the dict of arrays has duplicate column names \['1'\]"):
        cudrift.profile({1: np.arange(5.0), "1": np.arange(5.0) + 10})


def test_string_view_columns_with_nulls_read_as_strings():
    sv = pa.array(["a", None, "b", "a"], pa.string()).cast(pa.string_view())
    p = cudrift.profile(pa.table({"s": sv, "x": [1.0, 2.0, 3.0, 4.0]}))
    assert p["s"].null_count == 1 and dict(p["s"].counts.items()) == {"a": 2, "b": 1}


def test_a_polars_series_is_refused_clearly():
    with pytest.raises(SchemaError, match="unsupported input type polars"):
        cudrift.profile(pl.Series("x", [1.0, 2.0]))


def test_non_text_column_names_select_and_index_columns_in_a_directory(tmp_path):
    df = pd.DataFrame({1: [1.0, 2.0, 3.0], 2: [4.0, 5.0, 6.0]})
    assert cudrift.profile(df, columns=[1]).names == ["1"]
    x = pd.DataFrame({"x": np.arange(100.0)})
    x.to_parquet(tmp_path / "p0.parquet")  # a RangeIndex: metadata only
    x[x.x % 2 == 0].to_parquet(tmp_path / "p1.parquet", index=True)  # stored as __index_level_0__
    p = cudrift.profile(tmp_path)
    assert p.names == ["x"] and p.n_rows == 150


def _categorical(values, index_type):
    """A pandas Categorical as Parquet stores it: int8 indices up to 127 categories, int16 up to 32767."""
    return pa.array(values).dictionary_encode().cast(pa.dictionary(index_type, pa.string()))


def test_parquet_files_that_differ_only_harmlessly_read_as_one(tmp_path, rng):
    """Another column order, string vs large_string (pandas 2 vs 3), a Categorical's index width, int32 vs int64,
    an all-null column: one window, read by name. Numbers in one file and text in another are refused."""
    d = tmp_path / "days"
    d.mkdir()
    n = 400
    c1 = rng.choice(["a", "b"], n)
    c2 = rng.choice([f"k{i}" for i in range(300)], n)  # > 127 categories: int16 indices
    s1, s2 = rng.choice(["u", "v"], n), rng.choice(["u", "w"], n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    i1, i2 = rng.integers(0, 3, n), rng.integers(0, 3, n)
    pq.write_table(pa.table({"x": x1, "s": pa.array(s1, pa.string()), "c": _categorical(c1, pa.int8()),
                             "i": pa.array(i1, pa.int32()), "note": pa.array(["hi"] * n)}), d / "day1.parquet")
    pq.write_table(pa.table({"i": pa.array(i2, pa.int64()), "note": pa.nulls(n), "c": _categorical(c2, pa.int16()),
                             "s": pa.array(s2, pa.large_string()), "x": x2}), d / "day2.parquet")
    assert pq.read_schema(d / "day2.parquet").field("c").type.index_type == pa.int16()
    p = cudrift.profile(d)
    whole = cudrift.profile({"x": np.concatenate([x1, x2]), "s": np.concatenate([s1, s2]).astype(object),
                             "c": np.concatenate([c1, c2]).astype(object), "i": np.concatenate([i1, i2]),
                             "note": np.array(["hi"] * n + [None] * n, dtype=object)})
    assert p.names == ["x", "s", "c", "i", "note"] and p.n_rows == 2 * n
    _assert_same(cudrift.profile(d, columns=whole.names), whole)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.table({"x": x1, "k": s1}), mixed / "a.parquet")
    pq.write_table(pa.table({"k": s2, "x": x2.astype(str)}), mixed / "b.parquet")
    with pytest.raises(SchemaError, match=r"disagree on column 'x': .*a\.parquet has double \(float\), "
                                          r".*b\.parquet has (large_)?string \(string\)"):
        cudrift.profile(mixed)
    # a comparison reports that column as an error row and compares the rest
    rep = cudrift.DriftDetector(mixed).compare(mixed)
    assert rep["x"].status == "error" and "disagree on column 'x'" in rep["x"].message and rep["k"].status == "ok"
    # integers in one file, floats in another (an integer column that gained a NaN one day): one float column
    gained = tmp_path / "gained"
    gained.mkdir()
    f1, f2 = rng.integers(0, 1000, n), rng.integers(0, 1000, n).astype(np.float64)
    f1[0] = 2**60 + 1  # past 2**53: the nearest float64, as a float64 column holds it
    f2[:5] = np.nan
    pq.write_table(pa.table({"f": f1}), gained / "a.parquet")
    pq.write_table(pa.table({"f": f2}), gained / "b.parquet")
    p = cudrift.profile(gained)
    assert p.kinds["f"] == "numerical" and p.dtypes["f"] == "float64" and p["f"].nan_count == 5
    _assert_same(p, cudrift.profile({"f": np.concatenate([f1.astype(np.float64), f2])}))



def _table_of(source):
    """A CSV source's columns as Python lists, nulls left out."""
    batch = next(iter(source.iter_batches()))
    return {n: batch[n]().values.tolist() for n in source.names}


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_delimiter_is_found_from_the_header_and_first_rows(tmp_path, rng, sep):
    """A ';', tab or '|' file reads as the table it is, compressed too; a decimal '.' is a decimal '.' there."""
    from cudrift.io._source import csv_source, sniff_delimiter

    n = 5000
    df = pd.DataFrame({"x": rng.normal(size=n).round(6), "c": rng.choice(["a", "b;c", "d,e"], n),
                       "k": rng.integers(0, 10, n)})
    df.to_csv(tmp_path / "comma.csv", index=False)
    df.to_csv(tmp_path / "other.csv", index=False, sep=sep)  # ',' or ';' inside a value is quoted where needed
    df.to_csv(tmp_path / "other.csv.gz", index=False, sep=sep)
    # rows so wide that the 64 KiB read to find the delimiter holds fewer than 100 of them, the last one cut
    wide = pd.DataFrame({"t": ["w" * 1500] * 60, "k": np.arange(60)})
    wide.to_csv(tmp_path / "wide.csv", index=False, sep=sep)
    assert (tmp_path / "wide.csv").stat().st_size > 1 << 16
    assert sniff_delimiter(tmp_path / "wide.csv") == sep
    assert sniff_delimiter(tmp_path / "comma.csv") == ","
    expected = cudrift.profile(csv_source(tmp_path / "comma.csv"))
    assert expected.names == ["x", "c", "k"]
    for name in ("other.csv", "other.csv.gz"):
        assert sniff_delimiter(tmp_path / name) == sep
        _assert_same(cudrift.profile(csv_source(tmp_path / name)), expected)
    # an explicit delimiter wins: read with ',' the file is one column, named by its whole header
    assert csv_source(tmp_path / "wide.csv", delimiter=",").names == [f"t{sep}k"]
    with pytest.raises(ValueError, match=r"Invalid value for delimiter: ';;'"):
        csv_source(tmp_path / "wide.csv", delimiter=";;")


def test_a_one_column_csv_whose_values_hold_semicolons_stays_one_column(tmp_path):
    """Only a header and first rows that all split into the same number (> 1) of fields change the delimiter."""
    from cudrift.io._source import csv_source

    cases = {
        "note\na;b\nc;d\ne;f\n": ["note"],  # the header does not split
        "a;b\n1;2\n3\n4;5;6\n": ["a;b"],  # the rows disagree with the header
        "note\n\"x,y;z\"\n\"u,v;w\"\n": ["note"],  # quoted ',' inside one column
        "a,b\n\"x;y\",1\n\"u;v\",2\n": ["a", "b"],  # a comma table
    }
    for i, (text, names) in enumerate(cases.items()):
        path = tmp_path / f"f{i}.csv"
        path.write_text(text)
        assert csv_source(path).names == names, text
    # two delimiters fit: none is guessed, and one column of joined fields is not read either
    path = tmp_path / "both.csv"
    path.write_text("a;b|c\n1;2|3\n4;5|6\n")
    with pytest.raises(SchemaError, match=rf"{path}: cannot tell this CSV file's delimiter: its first rows are a "
                                          r"table under each of ';', '\|'; choose one with --delimiter"):
        csv_source(path)
    assert csv_source(path, delimiter="|").names == ["a;b", "c"]


def test_csv_decimal_commas_are_refused_unless_a_decimal_mark_is_chosen(tmp_path):
    """"1,5" in a ';' file is a number with a decimal comma: read as text it would be profiled as categories."""
    from cudrift.io._source import csv_source

    path = tmp_path / "eu.csv"
    path.write_text("x;n;s;k\n1,5;2;a;1,5\n-0,25;3;b;x\n2;4;c;3,5\n")
    with pytest.raises(SchemaError, match=rf"column 'x' of CSV file {path} holds numbers written with a decimal "
                                          r"comma \('1,5'\): read them as numbers with --decimal ,"):
        csv_source(path)
    src = csv_source(path, errors="report")
    assert [(c.name, c.family) for c in src.columns] == [("x", "invalid"), ("n", "integer"), ("s", "string"),
                                                         ("k", "string")]  # k holds text: it is text
    src = csv_source(path, decimal=",")
    assert [c.family for c in src.columns] == ["float", "integer", "string", "string"]
    assert _table_of(src)["x"] == [1.5, -0.25, 2.0]
    assert [c.family for c in csv_source(path, decimal=".").columns] == ["string", "integer", "string", "string"]
    # with --decimal , a column of decimal points would be text: refused the same way
    path.write_text("x;y\n1,5;2.5\n2;3.25\n")
    with pytest.raises(SchemaError, match=r"column 'y' .* holds numbers written with a decimal point \('2.5'\): "
                                          r"--decimal , \(decimal=','\) does not read them"):
        csv_source(path, decimal=",")
    # with ',' as delimiter: thousands separators (nothing reads them) are refused; a quoted "1,5" may be
    # comma-joined labels as well as a decimal comma, and stays text
    for amount in ('"1,234"', '"12,345,678"', '"1,234.50"'):
        path.write_text(f'x,amount,labels\n2.5,{amount},"0,1"\n3.25,17,"1,2"\n')
        shown = amount.strip('"').replace(".", "[.]")
        with pytest.raises(SchemaError, match=rf"column 'amount' .* holds numbers written with thousands "
                                              rf"separators \('{shown}'\): they are not read as numbers"):
            csv_source(path)
        src = csv_source(path, decimal=".")
        assert [c.family for c in src.columns] == ["float", "string", "string"], amount
    with pytest.raises(ValueError, match=r"Invalid value for decimal: ';'"):
        csv_source(path, decimal=";")


def test_a_csv_column_under_an_empty_first_header_is_dropped_whatever_its_values(tmp_path):
    """The first column was dropped only over distinct integers, decided file by file: a reference concatenated
    from two frames (row numbers repeated) kept 'Unnamed: 0' where a window dropped it. The row labels of
    pandas' ``to_csv()`` and R's ``write.csv`` are dropped whatever they hold; other empty headers are named."""
    from cudrift.io._source import csv_source

    for text in (",x\n0,0.5\n1,0.7\n0,0.1\n",              # a concatenated frame's index
                 '"","x"\n"a",0.5\n"b",0.7\n"c",0.1\n',     # R's row names
                 ",x\n7,0.5\n,0.7\n3.5,0.1\n"):             # labels with a gap, a float
        path = tmp_path / "f.csv"
        path.write_text(text)
        assert csv_source(path).names == ["x"], text
    path.write_text(",x,,y\n0,1,2,3\n0,4,5,6\n")
    assert csv_source(path).names == ["x", "Unnamed: 2", "y"]
    path.write_text('""\n0\n1\n')  # pd.DataFrame(index=range(2)).to_csv()
    with pytest.raises(EmptyInputError, match="no columns besides the row labels under its empty first header"):
        csv_source(path)


def test_csv_empty_headers_are_named_apart_from_the_headers_a_file_has(tmp_path):
    """An empty header named 'Unnamed: <position>' could take a name the file already had (``x,,Unnamed: 1``):
    the file, which pandas reads, was refused for duplicate column names. The name gets ``.1``, ``.2``... as
    pandas gives it."""
    from cudrift.io._source import csv_source

    path = tmp_path / "f.csv"
    for header, names in ((",Unnamed: 0,x", ["Unnamed: 0", "x"]),
                          ("x,,Unnamed: 1", ["x", "Unnamed: 1.1", "Unnamed: 1"]),
                          ("x,,,Unnamed: 1.1,Unnamed: 1",
                           ["x", "Unnamed: 1.2", "Unnamed: 2", "Unnamed: 1.1", "Unnamed: 1"]),
                          ("x,Unnamed: 2,", ["x", "Unnamed: 2", "Unnamed: 2.1"])):
        width = header.count(",") + 1
        path.write_text(header + "\n" + ",".join(str(j) for j in range(width)) + "\n")
        assert csv_source(path).names == names, header
        assert list(pd.read_csv(path, index_col=0 if header.startswith(",") else None).columns) == names


def test_a_named_pandas_index_in_parquet_or_arrow_is_not_a_column(tmp_path, rng):
    """``to_parquet`` and ``pa.Table.from_pandas`` store a named index as a column, listed in the pandas metadata's
    ``index_columns``: the same frame passed as it is does not profile its index, and neither do they."""
    n = 500
    ids = pd.DataFrame({"x": rng.normal(size=n)}, index=pd.Index(rng.permutation(n) * 7, name="row_id"))
    ids.to_parquet(tmp_path / "ids.parquet")
    assert pq.read_schema(tmp_path / "ids.parquet").names == ["x", "row_id"]
    times = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n)},
                         index=pd.date_range("2024-01-01", periods=n, freq="min", name="ts"))
    times.to_parquet(tmp_path / "times.parquet")
    for frame, stored in ((ids, tmp_path / "ids.parquet"), (times, tmp_path / "times.parquet")):
        direct = cudrift.profile(frame)
        assert direct.names == list(frame.columns)
        _assert_same(cudrift.profile(stored), direct)  # (a DatetimeIndex stopped the profile: unsupported dtype)
        _assert_same(cudrift.profile(pa.Table.from_pandas(frame)), direct)
    # a RangeIndex is metadata only, a MultiIndex is two columns: neither is profiled
    multi = ids.set_index(pd.Index(np.arange(n) % 3, name="k"), append=True)
    multi.to_parquet(tmp_path / "multi.parquet")
    assert cudrift.profile(tmp_path / "multi.parquet").names == ["x"]
    ids.reset_index(drop=True).to_parquet(tmp_path / "range.parquet")
    assert cudrift.profile(tmp_path / "range.parquet").names == ["x"]


def test_a_directory_reads_its_symlinked_subdirectories_once(tmp_path, rng):
    """A window assembled from links to a store's folders was read without them, silently. Links are followed;
    a link back to a folder above, or a second link to one folder, does not read it again (nor loop)."""
    store, window = tmp_path / "store", tmp_path / "window"
    (store / "jan").mkdir(parents=True)
    window.mkdir()
    pd.DataFrame({"x": rng.normal(size=300)}).to_parquet(store / "jan" / "part.parquet")
    pd.DataFrame({"x": rng.normal(size=200)}).to_parquet(window / "local.parquet")
    (window / "jan").symlink_to(store / "jan", target_is_directory=True)
    (window / "again").symlink_to(store / "jan", target_is_directory=True)
    (store / "jan" / "up").symlink_to(window, target_is_directory=True)  # a cycle
    assert cudrift.profile(window).n_rows == 500
    (window / "dt=2024-01").symlink_to(store / "jan", target_is_directory=True)  # a partition under its link's name
    (window / "jan").unlink()
    (window / "again").unlink()
    (window / "local.parquet").unlink()
    p = cudrift.profile(window)
    assert p.n_rows == 300 and p.names == ["x", "dt"]


class _Listing:
    """A directory listing in a chosen order, as ``os.scandir`` returns one (an iterator and context manager)."""

    def __init__(self, entries):
        self._entries = iter(entries)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._entries)

    def close(self):
        return None


@pytest.mark.parametrize("links_first", [True, False])
def test_a_link_inside_a_hive_tree_does_not_take_its_folders_place(tmp_path, rng, monkeypatch, links_first):
    """``latest -> dt=2024-01-02`` beside the partitions: the walk read that folder once, under whichever of its
    two names the listing gave first; under ``latest`` its files had no ``dt`` column and the directory was
    refused ("Parquet files disagree on columns"). A link to a folder of the tree is not followed, whatever the
    listing order; a link out of the tree still is."""
    import os

    root, outside = tmp_path / "hive", tmp_path / "elsewhere" / "day3"
    for day in ("2024-01-01", "2024-01-02"):
        (root / f"dt={day}").mkdir(parents=True)
        pd.DataFrame({"x": rng.normal(size=100)}).to_parquet(root / f"dt={day}" / "part.parquet")
    outside.mkdir(parents=True)
    pd.DataFrame({"x": rng.normal(size=50)}).to_parquet(outside / "part.parquet")
    for name in ("latest", "a_latest", "zz"):
        (root / name).symlink_to("dt=2024-01-02", target_is_directory=True)
    (root / "dt=2024-01-01" / "up").symlink_to("..", target_is_directory=True)
    (root / "dt=2024-01-03").symlink_to(outside, target_is_directory=True)
    listing = os.scandir

    def ordered(folder="."):
        with listing(folder) as entries:
            return _Listing(sorted(entries, key=lambda e: (e.is_symlink() != links_first, e.name)))

    monkeypatch.setattr(os, "scandir", ordered)
    from cudrift.io._source import _parquet_files

    files = _parquet_files(root)
    assert [f.path.relative_to(root).as_posix() for f in files] == [
        "dt=2024-01-01/part.parquet", "dt=2024-01-02/part.parquet", "dt=2024-01-03/part.parquet"]
    assert [f.partition for f in files] == [(("dt", "2024-01-01"),), (("dt", "2024-01-02"),), (("dt", "2024-01-03"),)]
    p = cudrift.profile(root)
    assert p.n_rows == 250 and p.names == ["x", "dt"]


def test_a_directory_finds_parquet_files_whatever_the_case_of_their_extension(tmp_path, rng):
    """Inputs are known by their extension in any case, but a directory of ``A.PARQUET`` files held "no *.parquet
    files"."""
    (tmp_path / "sub").mkdir()
    pd.DataFrame({"x": rng.normal(size=100)}).to_parquet(tmp_path / "A.PARQUET")
    pd.DataFrame({"x": rng.normal(size=50)}).to_parquet(tmp_path / "sub" / "b.Parquet")
    assert cudrift.profile(tmp_path).n_rows == 150


def test_a_dict_of_pandas_or_polars_series_reads_as_their_dataframe(rng):
    """A dict of pandas nullable Series went through np.asarray: Int64 with nulls became float64, numerical, while
    the same data in a DataFrame is int64, categorical; a reference and a window in the two forms then reported a
    dtype_change and used another test. Each Series now goes the DataFrame's way."""
    n = 600
    frame = pd.DataFrame({
        "i": pd.array([1, 2, None] * (n // 3), dtype="Int64"),
        "f": pd.array(np.r_[rng.normal(size=n - 1), [None]], dtype="Float64"),
        "b": pd.array([True, None, False] * (n // 3), dtype="boolean"),
        "s": pd.Series(["a", None, "b"] * (n // 3), dtype="string"),
        "cat": pd.Categorical(rng.integers(0, 3, n)),
        "sparse": pd.arrays.SparseArray(np.r_[np.zeros(n - 10), rng.normal(size=10)]),
    })
    direct = cudrift.profile(frame)
    assert direct.dtypes["i"] == "int64" and direct.kinds["i"] == "categorical"
    for form in ({c: frame[c] for c in frame}, {c: frame[c].array for c in frame}):
        p = cudrift.profile(form)
        _assert_same(p, direct)
        assert p.dtypes == direct.dtypes
        rep = cudrift.DriftDetector(frame).compare(form)
        assert not rep.findings and not rep.dataset_drift
    polars = pl.DataFrame({"i": [1, 2, None] * (n // 3), "s": pl.Series(["a", "b", None] * (n // 3),
                                                                        dtype=pl.Categorical)})
    direct = cudrift.profile(polars)
    p = cudrift.profile({c: polars[c] for c in polars.columns})
    _assert_same(p, direct)
    assert p.dtypes == direct.dtypes and p.kinds["i"] == "categorical"


def test_parquet_decimal_columns_are_numbers(tmp_path, rng):
    """decimal128/decimal256 columns (Spark and warehouse exports) were refused as an unsupported dtype. They are
    read as float64, numerical, the dtype recorded as ``decimal``: ks as scipy computes it on the same values."""
    import decimal

    from scipy import stats

    def prices(shift, n, typ):
        x = np.round(rng.normal(100 + shift, 15, n), 2)
        values = [None if i % 50 == 0 else decimal.Decimal(f"{v:.2f}") for i, v in enumerate(x)]
        return x[np.arange(n) % 50 != 0], pa.array(values, typ)

    x_ref, ref = prices(0.0, 3000, pa.decimal128(10, 2))
    x_cur, cur = prices(2.0, 2000, pa.decimal256(40, 2))
    pq.write_table(pa.table({"price": ref}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"price": cur}), tmp_path / "cur.parquet")
    det = cudrift.DriftDetector(str(tmp_path / "ref.parquet"), policy="ks")
    assert det.reference.kinds == {"price": "numerical"} and det.reference.dtypes == {"price": "decimal"}
    assert det.reference["price"].null_count == 60
    rep = det.compare(str(tmp_path / "cur.parquet"))
    assert not [f for f in rep.findings if f.check == "dtype_change"]  # another precision is no other type
    want = stats.ks_2samp(x_ref, x_cur)
    assert rep["price"].statistic == pytest.approx(want.statistic, rel=1e-12)
    assert rep["price"].pvalue == pytest.approx(want.pvalue, rel=1e-6)
    # a window of floats: the same numbers, a dtype_change said as for int64 → float64, the same test
    floats = det.compare(pa.table({"price": pa.array(x_cur)}))
    assert floats["price"].statistic == pytest.approx(want.statistic, rel=1e-12)
    assert [f.message for f in floats.findings if f.check == "dtype_change"] == [
        "column 'price' changed dtype: decimal → float64"]
    # files of one window that differ in precision read as one column; decimal.Decimal objects in pandas too
    d = tmp_path / "days"
    d.mkdir()
    pq.write_table(pa.table({"price": ref}), d / "a.parquet")
    pq.write_table(pa.table({"price": cur}), d / "b.parquet")
    days = cudrift.profile(d)["price"]
    assert days.count - days.null_count == len(x_ref) + len(x_cur) and days.moments.count == days.count - 100
    frame = pd.DataFrame({"price": [decimal.Decimal("1.5"), None, decimal.Decimal("2.25")]})
    p = cudrift.profile(frame)
    assert p.kinds == {"price": "numerical"} and p["price"].moments.mean == pytest.approx(1.875)
    # Arrow infers a precision from decimal.Decimal objects: prices up to 9.99 were decimal128(3, 2), a window
    # reaching 10.50 decimal128(4, 2), a dtype_change on every such window
    low = pd.DataFrame({"price": [decimal.Decimal(f"{v:.2f}") for v in rng.uniform(1, 9.99, 500)]})
    high = pd.DataFrame({"price": [decimal.Decimal(f"{v:.2f}") for v in rng.uniform(1, 10.5, 500)]})
    assert cudrift.profile(low).dtypes == cudrift.profile(high).dtypes == {"price": "decimal"}
    assert not [f for f in cudrift.DriftDetector(low).compare(high).findings if f.check == "dtype_change"]


@pytest.mark.parametrize("value, typ", [(fractions.Fraction(1, 3), "Fraction"), (1 + 2j, "complex"),
                                        (object(), "object")])
def test_an_object_column_of_one_unsupported_type_is_not_called_a_mix(value, typ):
    """A column of fractions.Fraction was said to "mix value types ['Fraction']": one type, no mix."""
    values = np.array([value, None, value], dtype=object)
    for data in ({"x": values}, pd.DataFrame({"x": values})):
        with pytest.raises(SchemaError) as info:
            cudrift.profile(data)
        msg = str(info.value)
        assert f"column 'x' holds Python objects of unsupported type {typ}" in msg
        assert "mixes" not in msg and "str, bytes, int, bool or decimal.Decimal" in msg
    # two types are still a mix
    with pytest.raises(SchemaError, match=r"mixes value types \['Fraction', 'complex'\]"):
        cudrift.profile({"x": np.array([fractions.Fraction(1, 3), 1j], dtype=object)})


@pytest.mark.parametrize("value", [Decimal("1e500"), Decimal("1." + "1" * 80), Decimal("Infinity")])
def test_decimals_arrow_cannot_hold_are_named_as_such(value):
    """Decimal values past Arrow's decimals were said to be "of unsupported type Decimal: an object column may hold
    ... decimal.Decimal values" (and an infinity raised a raw TypeError)."""
    values = np.array([value, Decimal(1), None], dtype=object)
    for data in ({"x": values}, pd.DataFrame({"x": values})):
        with pytest.raises(SchemaError, match="column 'x' holds decimal.Decimal values Arrow's decimals cannot hold"):
            cudrift.profile(data)


@pytest.mark.parametrize("dtype", [pl.Int128, pl.UInt128])
def test_a_polars_column_arrow_cannot_read_stops_only_itself(dtype, rng):
    """The whole polars frame went through to_arrow() first: an Int128 column stopped everything with a raw
    ArrowInvalid ("unsupported format string '_pli128'"), even when it was not selected or was ignored."""
    x = rng.normal(size=200)
    frame = pl.DataFrame({"x": x, "big": pl.Series(np.arange(200) % 7, dtype=dtype)})
    assert cudrift.profile(frame, columns=["x"]).names == ["x"]
    assert cudrift.profile(frame, schema=cudrift.Schema(ignore=["big"])).names == ["x"]
    says = f"column 'big' has polars dtype {frame['big'].dtype}, which Arrow cannot read"
    for data in (frame, {"x": frame["x"], "big": frame["big"]}):
        with pytest.raises(SchemaError, match=says):
            cudrift.profile(data)
        p = cudrift.profile(data, errors="report")
        assert p.names == ["x"] and p.n_rows == 200 and says in p.errors["big"]
        rep = cudrift.DriftDetector({"x": x, "big": np.arange(200) % 7}).compare(data)
        assert rep["big"].status == "error" and says in rep["big"].message
        assert rep["x"].status == "ok"
    # a frame of nothing readable says so, not "no rows" (UnreadableColumnsError, a SchemaError, with each reason)
    with pytest.raises(cudrift.UnreadableColumnsError, match="no column of .* could be read: 'big'") as info:
        cudrift.profile(frame.select("big"), errors="report")
    assert says in info.value.errors["big"]
    # Object columns (pointers in Arrow) and dates are named by their polars dtype
    odd = pl.DataFrame({"x": x[:2], "o": pl.Series([object(), object()], dtype=pl.Object),
                        "d": pl.Series(np.array(["2024-01-01"] * 2, dtype="datetime64[us]"))})
    errors = cudrift.profile(odd, errors="report").errors
    assert "unsupported dtype Object (polars)" in errors["o"] and "unsupported dtype Datetime" in errors["d"]


def test_write_atomic_follows_links_and_refuses_what_is_not_a_file(tmp_path):
    """The rename replaced whatever was at the path: a FIFO, a device (``--out /dev/full`` as root turned the
    device into a file), the link rather than its target. A link is followed; anything but a regular file is
    refused by name."""
    import os

    from cudrift.io._atomic import write_atomic

    target = tmp_path / "target.cdp"
    target.write_bytes(b"old")
    (tmp_path / "link.cdp").symlink_to(target)
    write_atomic(tmp_path / "link.cdp", b"new")
    assert (tmp_path / "link.cdp").is_symlink() and target.read_bytes() == b"new"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file") as info:
        write_atomic(tmp_path / "fifo", b"x")
    assert info.value.filename == str(tmp_path / "fifo")
    assert (tmp_path / "fifo").is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == [
        "fifo", "link.cdp", "target.cdp"]


def test_write_atomic_returns_and_names_the_path_as_given(tmp_path, monkeypatch):
    """Resolving every path named the user's relative path by its absolute target in errors and in what
    Profile.save returned; only a link is followed, and errors through it name its target."""
    from cudrift.io._atomic import write_atomic

    monkeypatch.chdir(tmp_path)
    assert write_atomic("rel.cdp", b"x") == Path("rel.cdp")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError) as info:
        write_atomic("afile/x.cdp", b"x")
    assert info.value.filename == "afile"

