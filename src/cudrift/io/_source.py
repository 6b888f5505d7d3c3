"""Adapters from user data to :class:`TableSource` (see package docstring)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import numpy as np
import pyarrow as pa

from cudrift.errors import EmptyInputError, SchemaError

#: Families of column dtypes. ``numeric`` columns are profiled with numeric
#: sketches, ``integer`` ones too unless they have few distinct values,
#: ``boolean`` and ``string`` ones as categories. ``null`` is a column with no
#: value at all (an all-null Arrow column).
FAMILIES = ("float", "integer", "boolean", "string", "null")

DEFAULT_BATCH_ROWS = 1 << 20


@dataclass(frozen=True)
class ColumnInfo:
    """Name, dtype (as a short string) and family of one input column.

    ``family == "invalid"`` marks a column that cannot be profiled (unsupported
    dtype, mixed value types); ``error`` says why.
    """

    name: str
    dtype: str
    family: str
    error: str = ""
    #: the family of a dictionary's values (a pandas Categorical's categories): "" for other columns
    values: str = ""


@dataclass
class ColumnData:
    """Non-null values of one column in one batch.

    ``values`` is a 1-D NumPy array (numeric families) or a NumPy/Arrow array
    of labels (``boolean``/``string``); ``null_count`` counts the nulls removed.
    NaN in float columns is *not* a null: numeric sketches count it apart.
    """

    values: Any
    null_count: int

    def __len__(self) -> int:
        return len(self.values) + self.null_count


class TableSource:
    """A re-iterable view of tabular input as column batches."""

    def __init__(
        self,
        columns: list[ColumnInfo],
        batches: Callable[[], Iterator[Mapping[str, Callable[[], ColumnData]]]],
        n_rows: int | None,
        origin: str,
    ):
        self.columns = columns
        self._batches = batches
        self.n_rows = n_rows
        self.origin = origin

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def info(self, name: str) -> ColumnInfo:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(f"no column {name!r}; columns are {self.names}")

    def iter_batches(self) -> Iterator[Mapping[str, Callable[[], ColumnData]]]:
        """Yield batches; each maps a column name to a zero-argument loader.

        Columns are converted lazily, one at a time, so a wide window never
        holds more than one converted column besides the input itself.
        """
        return self._batches()


# ---------------------------------------------------------------- conversions


def _numpy_family(name: str, dtype: np.dtype) -> str:
    kind = dtype.kind
    if kind == "f":
        return "float"
    if kind in "iu":
        return "integer"
    if kind == "b":
        return "boolean"
    if kind in "OUST":
        return "string"
    raise _unsupported(name, dtype)


def _arrow_info(name: str, typ: pa.DataType) -> ColumnInfo:
    values = _arrow_family(name, typ.value_type) if pa.types.is_dictionary(typ) else ""
    return ColumnInfo(name, _arrow_dtype_str(typ), _arrow_family(name, typ), values=values)


def _arrow_family(name: str, typ: pa.DataType) -> str:
    if pa.types.is_dictionary(typ):
        # a dictionary (pandas Categorical) type declares categories, whatever
        # the type of its values
        value = _arrow_family(name, typ.value_type)
        return "string" if value in ("integer", "string", "boolean") else value
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return "string"  # decoded as UTF-8 when read
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "float"  # decimals (Spark and warehouse exports) are read as float64
    if pa.types.is_integer(typ):
        return "integer"
    if pa.types.is_boolean(typ):
        return "boolean"
    if (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or getattr(pa.types, "is_string_view", lambda t: False)(typ)):
        return "string"
    if pa.types.is_null(typ):
        return "null"
    raise _unsupported(name, typ)


def _arrow_dtype_str(typ: pa.DataType) -> str:
    if pa.types.is_dictionary(typ):
        return _arrow_dtype_str(typ.value_type)
    if pa.types.is_floating(typ) or pa.types.is_integer(typ):
        return np.dtype(typ.to_pandas_dtype()).name
    if pa.types.is_decimal(typ):
        # the values are read as float64, the dtype says what they were. Precision and scale are left out: Arrow
        # infers them from pandas' decimal.Decimal objects, so a window of prices reaching 10.50 would be
        # decimal128(4, 2) against a reference's decimal128(3, 2), a change of values, not of type
        return "decimal"
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_null(typ):
        return "null"
    return "string"


def _unsupported(name: str, dtype: Any) -> SchemaError:
    return SchemaError(
        f"column {name!r} has unsupported dtype {dtype}: cudrift profiles numbers, booleans and strings "
        "(leave it out with Schema(ignore=...) or --ignore, or convert it, e.g. timestamps to numbers)"
    )


def _mixed_types_error(name: str, values: Any) -> SchemaError:
    seen: list[str] = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            continue
        t = type(v).__name__
        if t not in seen:
            seen.append(t)
        if len(seen) >= 4:
            break
    if seen == ["Decimal"]:
        # (decimal.Decimal is read, as Arrow's decimals: these are past them)
        return SchemaError(
            f"column {name!r} holds decimal.Decimal values Arrow's decimals cannot hold (more than 76 digits, an "
            "exponent past their range, or an infinity): convert the column to float, or leave it out with "
            "Schema(ignore=...) or --ignore"
        )
    if len(seen) == 1:
        # one type that Arrow cannot read (fractions.Fraction, complex, a class of the caller's): no mix to undo
        return SchemaError(
            f"column {name!r} holds Python objects of unsupported type {seen[0]}: an object column may hold str, "
            "bytes, int, bool or decimal.Decimal values (None for a missing one); convert it (to float or str, "
            "say) or leave it out with Schema(ignore=...) or --ignore"
        )
    return SchemaError(f"column {name!r} mixes value types {seen}; a column must hold one type (cast it first)")


def _unreadable_objects(name: str, exc: Exception) -> SchemaError:
    """What Arrow refused in an object column besides mixed types: an integer past 64 bits, invalid text."""
    if isinstance(exc, OverflowError):
        return SchemaError(f"column {name!r} holds an integer that does not fit in 64 bits ({exc}); category "
                           "keys and numbers are 64-bit (cast the column to str to count such keys)")
    return SchemaError(f"column {name!r} holds text that is not valid Unicode ({exc})")


def _labels_from_objects(name: str, values: np.ndarray) -> pa.Array:
    """Object/str NumPy array → Arrow array of one type (nulls kept): labels, or numbers where it holds only
    numbers (floats in object form are read as a pandas object column's are)."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, TypeError):  # (pa.ArrowTypeError is one; a Decimal infinity raises a plain one)
        raise _mixed_types_error(name, values) from None
    except (OverflowError, UnicodeError) as exc:
        raise _unreadable_objects(name, exc) from None
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        try:
            arr = arr.cast(pa.string())
        except pa.ArrowInvalid:
            raise SchemaError(f"column {name!r} holds bytes that are not UTF-8 text") from None
    # (floats in an object column are numbers, as a pandas object column's are: Arrow refused any text among them)
    return arr


def _column_from_numpy(name: str, values: np.ndarray) -> ColumnData:
    if values.ndim != 1:
        raise SchemaError(f"column {name!r} must be 1-D, got shape {values.shape}")
    kind = values.dtype.kind
    if kind in "fiub":
        if values.dtype == np.float16:
            values = values.astype(np.float32)
        return ColumnData(values, 0)
    if kind in "OUS":
        arr = _labels_from_objects(name, values)
        return _column_from_arrow(name, arr)
    raise SchemaError(f"column {name!r} has unsupported dtype {values.dtype}")


def _column_from_arrow(name: str, arr: pa.Array | pa.ChunkedArray) -> ColumnData:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if getattr(pa.types, "is_string_view", lambda t: False)(arr.type):
        arr = arr.cast(pa.large_string())  # Arrow has no null filter for string_view
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        try:
            arr = arr.cast(pa.large_string() if pa.types.is_large_binary(arr.type) else pa.string())
        except pa.ArrowInvalid:
            raise SchemaError(f"column {name!r} holds bytes that are not UTF-8 text") from None
    nulls = arr.null_count
    if nulls:
        arr = arr.drop_null()
    if pa.types.is_decimal(arr.type):
        # (safe=False: a decimal with more digits than float64 holds becomes the nearest float64)
        arr = arr.cast(pa.float64(), safe=False)
    family = _arrow_family(name, arr.type)
    if family in ("float", "integer"):
        return ColumnData(arr.to_numpy(zero_copy_only=False), nulls)
    if family == "boolean":
        return ColumnData(arr.to_numpy(zero_copy_only=False).astype(bool, copy=False), nulls)
    if family == "null":
        return ColumnData(np.zeros(0, dtype=np.float64), nulls)
    return ColumnData(arr, nulls)


# ------------------------------------------------------------------- sources


#: the values of ``errors=`` (how a column that cannot be read is dealt with)
ERRORS = ("raise", "report")


def check_errors(errors: object) -> str:
    """``errors`` if it is one of :data:`ERRORS`; checked at every public entry point that takes it (anything
    else would be read as ``"report"`` and drop the columns the caller wanted refused)."""
    if errors not in ERRORS:
        raise ValueError(f"Invalid value for errors: {errors!r} (expected 'raise' or 'report')")
    return errors


def _collect(names: list[str], make_info: Callable[[str], ColumnInfo], errors: str) -> list[ColumnInfo]:
    """Column infos; with ``errors="report"`` a bad column becomes an ``invalid`` info instead of raising."""
    infos = []
    for n in names:
        try:
            infos.append(make_info(n))
        except SchemaError as exc:
            if errors == "raise":
                raise
            infos.append(ColumnInfo(n, "?", "invalid", str(exc)))
    return infos


def _select(names: list[str], columns: Sequence[str] | None, origin: str) -> list[str]:
    if columns is None:
        return names
    columns = [str(c) for c in columns]  # names are read as text (a pandas column 1 is "1")
    missing = [c for c in columns if c not in names]
    if missing:
        raise SchemaError(f"columns {missing} not found in {origin}; available: {names}")
    return list(columns)


def _check_unique(names: list[str], origin: str) -> None:
    seen: set[str] = set()
    dup = [n for n in names if n in seen or seen.add(n)]
    if dup:
        raise SchemaError(f"{origin} has duplicate column names {dup}")


def _visible(schema: pa.Schema) -> list[str]:
    """The column names of ``schema`` less the pandas index that ``pa.Table.from_pandas`` and ``to_parquet`` store
    as columns: a DataFrame passed as it is does not profile its index, nor does its Parquet file or Arrow table.

    An unnamed index is stored as ``__index_level_0__``; a named one under its name, which the schema's pandas
    metadata lists in ``index_columns`` (a RangeIndex is listed as a dict there, and not stored).
    """
    meta = schema.pandas_metadata or {}
    index = {c for c in meta.get("index_columns", ()) if isinstance(c, str)}
    return [n for n in (str(n) for n in schema.names) if n not in index and not n.startswith("__index_level_")]


def _arrow_table_source(table: pa.Table, columns: Sequence[str] | None, origin: str, errors: str,
                        check_text: Callable[[str, pa.ChunkedArray], None] | None = None) -> TableSource:
    """``check_text(name, values)``, where given, may refuse a text column by raising :class:`SchemaError`."""
    names = _select(_visible(table.schema), columns, origin)
    _check_unique(names, origin)
    decoded: dict[str, pa.ChunkedArray] = {}

    def info(n: str) -> ColumnInfo:
        typ = table.schema.field(n).type
        if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            # the table is in memory: text that is not UTF-8 is refused now, with its origin (a CSV
            # file's bytes in another encoding), rather than midway through a profile; the text is kept,
            # so batches are not decoded a second time
            try:
                decoded[n] = table.column(n).cast(pa.large_string() if pa.types.is_large_binary(typ) else pa.string())
            except pa.ArrowInvalid:
                raise SchemaError(f"column {n!r} of {origin} holds bytes that are not UTF-8 text") from None
        info = _arrow_info(n, typ)
        if check_text is not None and info.family == "string":
            check_text(n, decoded[n] if n in decoded else table.column(n))
        return info

    infos = _collect(names, info, errors)

    def batches():
        yield {n: (lambda n=n: _column_from_arrow(n, decoded[n] if n in decoded else table.column(n))) for n in names}

    return TableSource(infos, batches, table.num_rows, origin)


#: pandas' default ``na_values`` (``pandas._libs.parsers.STR_NA_VALUES``): Arrow's defaults lack
#: ``None`` and ``<NA>``, the text of a missing value written with str() (None, pandas.NA)
PANDAS_NA_VALUES = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)


#: delimiters tried, in this order, on a CSV file that does not read as a table under ","
OTHER_DELIMITERS = (";", "\t", "|")
_SNIFF_BYTES = 1 << 16
_SNIFF_ROWS = 100
#: a number written with a decimal comma, as Arrow reads it with ``decimal_point=","`` ("1,5", "-,5", "2,5e3")
_DECIMAL_COMMA = r"^\s*[+-]?([0-9]+,[0-9]*|,[0-9]+)([eE][+-]?[0-9]+)?\s*$"
#: a number written with a decimal point (what ``decimal_point=","`` leaves as text)
_DECIMAL_POINT = r"^\s*[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
#: a number with thousands separators ("1,234", "12,345,678", "1,234.50")
_THOUSANDS = r"^\s*[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?\s*$"
_INTEGER = r"^\s*[+-]?[0-9]+\s*$"


def _widths(text: str, delimiter: str, whole: bool) -> set[int]:
    """The numbers of fields of ``text``'s rows (header first, at most ``_SNIFF_ROWS`` more) under ``delimiter``.

    Empty: fewer than two rows, or text the csv module refuses. ``whole``: ``text`` is the whole file;
    otherwise its last row may have been cut and is not counted.
    """
    import csv
    import io

    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]
    except csv.Error:
        return set()
    rows = rows[:_SNIFF_ROWS + 1] if whole or len(rows) > _SNIFF_ROWS + 1 else rows[:-1]
    return {len(r) for r in rows} if len(rows) >= 2 else set()


def _compression(path: str | os.PathLike) -> str:
    """The codec of a CSV file by its extension, in any case (Arrow's ``"detect"`` knows ``.gz``, not ``.GZ``)."""
    return {".gz": "gzip", ".bz2": "bz2"}.get(Path(path).suffix.lower(), "detect")


def sniff_delimiter(path: str | os.PathLike) -> str:
    """The delimiter of a CSV file: ``","``, unless its head is no table under ``","`` and is one under exactly one
    of :data:`OTHER_DELIMITERS`.

    A table under a delimiter: the header and the first data rows (up to 100) split into the same number of
    fields, more than one. So a one-column file keeps ``","`` even where its values hold ``;``, unless its
    header and every row it starts with hold the same number of them.

    Raises
    ------
    SchemaError
        If the head is a table under several of :data:`OTHER_DELIMITERS` and not under ``","``: read under
        ``","`` it would be one column of joined fields, so the caller must choose (``delimiter=``,
        ``--delimiter``).
    """
    try:
        with pa.input_stream(os.fspath(path), compression=_compression(path)) as f:
            head = f.read(_SNIFF_BYTES)
    except (pa.ArrowInvalid, OSError):
        return ","  # (reading the file says what is wrong with it, and names it)
    whole = len(head) < _SNIFF_BYTES
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")

    def is_table(delimiter: str) -> bool:
        widths = _widths(text, delimiter, whole)
        return len(widths) == 1 and widths != {1}

    if is_table(","):
        return ","
    found = [d for d in OTHER_DELIMITERS if is_table(d)]
    if len(found) > 1:
        raise SchemaError(f"{path}: cannot tell this CSV file's delimiter: its first rows are a table under each "
                          f"of {', '.join(repr(d) for d in found)}; choose one with --delimiter (delimiter=)")
    return found[0] if found else ","


def _refuse_misread_numbers(origin: str, delimiter: str, decimal: str | None
                            ) -> Callable[[str, pa.ChunkedArray], None] | None:
    """A check that refuses a text column whose values are all numbers in a notation the reading left as text:
    profiled as categories, such a column would be a wrong answer rather than an error.

    - no ``decimal`` given, a file delimited by another character than ``","``: numbers with a decimal comma
      (``1,5``), which ``--decimal ,`` reads;
    - no ``decimal`` given, a ``","`` file: numbers with thousands separators (``"1,234"``, ``"1,234.50"``), which
      nothing reads as numbers (and ``--decimal ,`` would misread, and turn the file's dot-decimal columns to
      text); a quoted ``"1,5"`` there is left as text (comma-joined labels look the same);
    - ``decimal=","``: numbers with a decimal point (``2.5``), which that reading leaves as text.

    None where nothing needs checking (``decimal="."``).
    """
    import pyarrow.compute as pc

    if decimal == ".":
        return None
    if decimal == ",":
        pattern, what, advice = _DECIMAL_POINT, "a decimal point", "--decimal , (decimal=',') does not read them"
    elif delimiter == ",":
        pattern, what = _THOUSANDS, "thousands separators"
        advice = "they are not read as numbers: remove the separators, or keep the column as text with --decimal ."
    else:
        pattern, what = _DECIMAL_COMMA, "a decimal comma"
        advice = "read them as numbers with --decimal , (or as text with --decimal .)"

    def check(name: str, values: pa.ChunkedArray) -> None:
        values = values.drop_null()
        hit = pc.match_substring_regex(values, pattern)
        if not pc.any(hit).as_py() or not pc.all(pc.or_(hit, pc.match_substring_regex(values, _INTEGER))).as_py():
            return
        example = values.filter(hit)[0].as_py()
        raise SchemaError(f"column {name!r} of {origin} holds numbers written with {what} ({example!r}): {advice}")

    return check


def _unnamed_columns(table: pa.Table) -> pa.Table:
    """A CSV table with its empty headers dealt with as pandas reads them back.

    An empty first header is the row labels that pandas' ``df.to_csv()`` writes (its index) and R's
    ``write.csv`` too (its row names): it is dropped, whatever its values. Profiled, row numbers would drift
    between any two files (a window ``df[df.ts > t0].to_csv()`` numbers its rows from where the reference's
    ended), and deciding from the values, file by file, could keep the column in a reference and drop it in a
    window. A column to profile there needs a header. Any other empty header is named as ``pd.read_csv``
    names it, ``Unnamed: <position>``, so that it can be left out by name; where the file has a header of that
    name already (``x,,Unnamed: 1``), ``.1`` is appended (``.2``... while that too is taken), as pandas does.
    """
    names = table.column_names
    if "" not in names:
        return table
    taken = set(names)
    named = []
    for i, n in enumerate(names):
        if not n and i:
            n = base = f"Unnamed: {i}"
            k = 0
            while n in taken:
                k += 1
                n = f"{base}.{k}"
            taken.add(n)
        named.append(n)
    table = table.rename_columns(named)
    return table.remove_column(0) if names[0] == "" else table


def csv_source(path: str | os.PathLike, errors: str = "raise", delimiter: str | None = None,
               decimal: str | None = None) -> TableSource:
    """A CSV file (``.csv``, ``.csv.gz``, ``.csv.bz2``) read whole with Arrow, missing values as pandas reads them.

    The tokens of :data:`PANDAS_NA_VALUES` are nulls in text columns too, as in numeric ones. The index
    pandas' ``df.to_csv()`` and R's ``write.csv`` write (the column under an empty first header, whatever its
    values: give it a header to profile it) is dropped, other empty headers are named ``Unnamed: <position>``
    (:func:`_unnamed_columns`). Errors name the file.

    Parameters
    ----------
    path
        The file.
    errors
        As in :func:`as_source`.
    delimiter
        The field delimiter (pandas' ``sep``); None: found by :func:`sniff_delimiter`.
    decimal
        The decimal mark of numbers, ``"."`` or ``","``. None: ``"."``. A column whose values are all numbers,
        some in a notation the reading leaves as text, is refused (an ``invalid`` column with
        ``errors="report"``) rather than profiled as categories: without ``decimal``, decimal commas in a file
        not delimited by ``","`` and thousands separators in one that is; with ``","``, decimal points
        (:func:`_refuse_misread_numbers`). ``"."`` checks nothing.
    """
    import pyarrow.csv as pacsv

    check_errors(errors)
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ValueError(f"Invalid value for delimiter: {delimiter!r} (expected one character, not a quote or newline)")
    if decimal not in (None, ".", ","):
        raise ValueError(f"Invalid value for decimal: {decimal!r} (expected '.' or ',')")
    _check_arrow_path(path)
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise EmptyInputError(f"{path} is empty")  # (not a matter of delimiters, which the error below suggests)
    sep = sniff_delimiter(path) if delimiter is None else delimiter
    options = pacsv.ConvertOptions(null_values=list(PANDAS_NA_VALUES), strings_can_be_null=True,
                                   decimal_point=decimal or ".")
    try:
        with pa.input_stream(os.fspath(path), compression=_compression(path)) as f:
            table = pacsv.read_csv(f, parse_options=pacsv.ParseOptions(delimiter=sep), convert_options=options)
    except (pa.ArrowInvalid, OSError) as exc:  # (OSError: a corrupt .gz or .bz2)
        if isinstance(exc, OSError) and exc.filename is not None:
            raise  # not found, permission denied: already named
        chosen = "given" if delimiter is not None else "found"
        raise SchemaError(f"{path}: cannot read CSV with the delimiter {sep!r} ({chosen}; --delimiter chooses "
                          f"another, --decimal , reads decimal commas): {exc}") from None
    try:
        table.column_names  # decoded from UTF-8 only when asked
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path}: cannot read CSV: its header is not UTF-8 text ({exc})") from None
    if table.num_rows == 0:
        raise EmptyInputError(f"{path} has no rows")
    table = _unnamed_columns(table)
    if not table.num_columns:
        raise EmptyInputError(f"{path} has no columns besides the row labels under its empty first header (which "
                              "are not profiled: give that header a name to profile them)")
    origin = f"CSV file {path}"
    check = _refuse_misread_numbers(origin, sep, decimal)
    return _arrow_table_source(table, None, origin, errors, check_text=check)


def _pandas_source(df: Any, columns: Sequence[str] | None, errors: str) -> TableSource:
    names = _select([str(c) for c in df.columns], columns, "the pandas DataFrame")
    _check_unique([str(c) for c in df.columns], "the pandas DataFrame")
    by_name = {str(c): c for c in df.columns}
    plain: dict[str, bool] = {}
    dense: dict[str, Any] = {}

    def column(n: str) -> Any:
        if n not in dense:
            dense[n] = _dense(df[by_name[n]])
        return dense[n]

    def info(n: str) -> ColumnInfo:
        col_info, plain[n] = _pandas_info(n, column(n))
        return col_info

    infos = _collect(names, info, errors)

    def batches():
        yield {n: (lambda n=n: _pandas_data(n, column(n), plain[n])) for n in names}

    return TableSource(infos, batches, len(df), "the pandas DataFrame")


def _dense(s: Any) -> Any:
    """A pandas Series as it is read: a sparse one (pd.arrays.SparseArray) as its dense values, as Arrow takes no
    sparse arrays."""
    return s.sparse.to_dense() if getattr(s.dtype, "name", "").startswith("Sparse[") else s


def _pandas_info(name: str, s: Any) -> tuple[ColumnInfo, bool]:
    """The info of a (dense) pandas Series, and whether it is read as its NumPy values rather than through Arrow.

    A column read through Arrow is converted here for its type and again when it is read (:func:`_pandas_data`):
    kept from here, every such column's Arrow copy would be held at once, from the schema pass to its read.
    """
    dt = s.dtype
    np_dt = dt if isinstance(dt, np.dtype) else None
    if np_dt is not None and np_dt.kind in "fiub":
        return ColumnInfo(name, str(np_dt), _numpy_family(name, np_dt)), True
    if np_dt is not None and np_dt.kind in "mM":
        raise _unsupported(name, dt)
    # Extension dtypes (nullable ints, strings, categoricals) and object
    # columns go through Arrow, which keeps nulls apart and rejects mixes.
    return _arrow_info(name, _pandas_to_arrow(name, s).type), False


def _pandas_data(name: str, s: Any, plain: bool) -> ColumnData:
    """The values of a pandas Series read as :func:`_pandas_info` says (``plain``)."""
    if plain:
        return _column_from_numpy(name, s.to_numpy())
    return _column_from_arrow(name, _pandas_to_arrow(name, s))


def _pandas_to_arrow(name: str, s: Any) -> pa.Array:
    try:
        arr = pa.array(s, from_pandas=True)
    except (pa.ArrowInvalid, TypeError):  # (pa.ArrowTypeError is one; a Decimal infinity raises a plain one)
        raise _mixed_types_error(name, s.to_numpy(dtype=object)) from None
    except (OverflowError, UnicodeError) as exc:
        raise _unreadable_objects(name, exc) from None
    except pa.ArrowNotImplementedError as exc:
        raise SchemaError(f"column {name!r} has unsupported dtype {s.dtype}: {exc}") from None
    if pa.types.is_timestamp(arr.type) or pa.types.is_duration(arr.type) or pa.types.is_date(arr.type):
        raise _unsupported(name, s.dtype)
    _arrow_family(name, arr.type)  # raises for other unsupported types
    return arr


def _polars_to_arrow(name: str, s: Any) -> pa.Array:
    """A polars Series as an Arrow array; a dtype Arrow cannot import (Int128, UInt128) is refused by the column's
    name and polars dtype."""
    try:
        return s.to_arrow()
    except pa.ArrowException as exc:
        raise SchemaError(f"column {name!r} has polars dtype {s.dtype}, which Arrow cannot read ({exc}): cast it "
                          "to Int64, UInt64 or Float64, or leave it out with Schema(ignore=...) or --ignore") from None


def _dict_source(data: Mapping[str, Any], columns: Sequence[str] | None, errors: str,
                 origin: str = "the dict of arrays") -> TableSource:
    keys = [str(k) for k in data.keys()]
    _check_unique(keys, origin)  # keys 1 and "1" are one name
    names = _select(keys, columns, origin)
    by_name = {str(k): k for k in data.keys()}
    arrays: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    #: a pandas column → whether it is read as its NumPy values (see _pandas_info)
    pandas_plain: dict[str, bool] = {}

    def info(n: str) -> ColumnInfo:
        v = data[by_name[n]]
        mod = type(v).__module__.split(".")[0]
        if mod == "polars" and hasattr(v, "to_arrow"):
            lengths[n] = len(v)  # (counted where the column cannot be read too: its rows are the frame's)
            arrays[n] = _polars_to_arrow(n, v)  # as a polars DataFrame's columns are read
            try:
                return _arrow_info(n, arrays[n].type)
            except SchemaError:
                raise _unsupported(n, f"{v.dtype} (polars)") from None
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            lengths[n] = len(v)
            arrays[n] = v
            return _arrow_info(n, v.type)
        if mod == "pandas" and getattr(v, "ndim", 1) == 1:
            # a Series, an ExtensionArray (pd.array(..., dtype="Int64"), a Categorical), an Index: read as a
            # DataFrame's column is, not through np.asarray (which makes a nullable Int64 float64, numerical)
            import pandas as pd

            s = _dense(v if isinstance(v, pd.Series) else pd.Series(v, copy=False))
            lengths[n] = len(s)
            arrays[n] = s
            col_info, pandas_plain[n] = _pandas_info(n, s)
            return col_info
        a = np.asarray(v)
        if a.dtype.kind in "US" and a.ndim == 1 and not isinstance(v, np.ndarray):
            # a list NumPy made text of: its NaN, None, numbers and booleans would be labels 'nan', '1.5',
            # 'True'; its values as they are, read as a pandas object column's (NaN null, mixed types refused)
            a = np.empty(len(v), dtype=object)
            a[:] = list(v)
        if a.ndim != 1:
            raise SchemaError(f"column {n!r} must be 1-D, got shape {a.shape}")
        lengths[n] = len(a)
        if a.dtype.kind in "OUS":
            arr = _labels_from_objects(n, a)
            arrays[n] = arr
            return _arrow_info(n, arr.type)
        arrays[n] = a
        return ColumnInfo(n, str(a.dtype), _numpy_family(n, a.dtype))

    infos = _collect(names, info, errors)
    if len(set(lengths.values())) > 1:
        raise SchemaError(f"columns have different lengths: {lengths}")

    def load(n: str) -> ColumnData:
        v = arrays[n]
        if n in pandas_plain:
            return _pandas_data(n, v, pandas_plain[n])
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            return _column_from_arrow(n, v)
        return _column_from_numpy(n, v)

    def batches():
        yield {n: (lambda n=n: load(n)) for n in names}

    n_rows = next(iter(lengths.values()), 0)
    return TableSource(infos, batches, n_rows, origin)


def matrix_columns(shape: tuple[int, ...], columns: Sequence[str] | None, what: str) -> list[str]:
    """Validated column names of a 2-D ``what`` (host or device array) of ``shape``."""
    if len(shape) != 2:
        raise SchemaError(f"a {what} input must be 2-D (rows × columns), got shape {shape}")
    if shape[1] == 0:
        raise EmptyInputError(f"the 2-D {what} array has no columns (shape {shape})")
    if columns is None:
        raise SchemaError(f"a 2-D {what} array needs columns=[...] naming its {shape[1]} columns")
    names = [str(c) for c in columns]
    if len(names) != shape[1]:
        raise SchemaError(f"columns= names {len(names)} columns but the array has shape {shape}")
    _check_unique(names, "columns=")
    return names


def _ndarray_source(data: np.ndarray, columns: Sequence[str] | None, errors: str = "raise") -> TableSource:
    if data.dtype.names is not None:
        # (a record array's fields are columns, but columns= would name its 1-D shape's)
        fields = list(data.dtype.names)
        raise SchemaError(f"a structured NumPy array (fields {fields}) is not read as a table: pass its fields as a "
                          "dict, {name: data[name] for name in data.dtype.names}, or a pandas DataFrame(data)")
    columns = matrix_columns(data.shape, columns, "NumPy")
    if data.dtype.kind in "OUS":
        # values checked column by column, as a dict's are: an object matrix of floats is refused by its columns'
        # names and what they hold, not read as text that every column then fails to load
        return _dict_source({c: data[:, j] for j, c in enumerate(columns)}, None, errors, "the 2-D array")
    infos = _collect(columns, lambda c: ColumnInfo(c, str(data.dtype), _numpy_family(c, data.dtype)), errors)

    def batches():
        yield {c: (lambda j=j, c=c: _column_from_numpy(c, data[:, j])) for j, c in enumerate(columns)}

    return TableSource(infos, batches, data.shape[0], "the 2-D array")


@dataclass(frozen=True)
class _ParquetFile:
    """One Parquet file of an input, with the Hive partition values of the directories it lies in."""

    path: Path
    #: ``(key, value)`` for each ``key=value`` directory between the folder given and the file (None:
    #: ``__HIVE_DEFAULT_PARTITION__``, the null that Hive, Spark and pyarrow write)
    partition: tuple[tuple[str, str | None], ...] = ()


def is_profile_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with the bytes of a saved :class:`~cudrift.Profile` (whatever its name)."""
    from cudrift.sketches._format import MAGIC

    return starts_with(path, MAGIC)


def starts_with(path: str | os.PathLike, magic: bytes, unreadable: bool = False) -> bool:
    """Whether the file at ``path`` starts with the bytes ``magic``; ``unreadable`` where it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return unreadable


def _read_schema(p: Path) -> pa.Schema:
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(p)
    except (pa.ArrowInvalid, OSError) as exc:
        hint = ""
        if is_profile_file(p) or p.suffix.lower() in (".cdp", ".profile"):
            hint = "; a saved profile is read with cudrift.Profile.load(path)"
        elif p.suffix.lower() != ".parquet":
            hint = "; paths are read as Parquet (load other formats with pandas, polars or pyarrow first)"
        raise SchemaError(f"cannot read Parquet schema of {p}: {exc}{hint}") from None


def _partition_types(files: list[_ParquetFile]) -> dict[str, pa.DataType]:
    """Hive partition keys → int64 where every value is an integer (``yr=2020``), else string."""
    values: dict[str, list[str]] = {}
    for f in files:
        for k, v in f.partition:
            values.setdefault(k, []).extend(() if v is None else [v])
    return {k: (pa.null() if not vs else pa.int64() if all(re.fullmatch(r"-?[0-9]{1,18}", v) for v in vs)
                else pa.string()) for k, vs in values.items()}


def _read_as(name: str, typ: pa.DataType) -> str:
    """What the reader makes of a column of ``typ``: its family, and its labels' where they differ.

    Files that agree on this are read as one column whatever their exact Arrow types (string,
    large_string or a pandas Categorical of strings, int32 and int64, a Categorical's index width).
    """
    try:
        info = _arrow_info(name, typ)
    except SchemaError:
        return "unsupported"
    return info.family if info.values in ("", info.family) else f"categories of {info.values} values"


def _parquet_source(files: list[_ParquetFile], columns: Sequence[str] | None, batch_rows: int,
                    errors: str) -> TableSource:
    import pyarrow.parquet as pq

    for f in files:
        if not f.path.exists():
            raise FileNotFoundError(f"Parquet file not found: {f.path}")
    part_types = _partition_types(files)
    # each file's columns by name, partition keys included: files are read by name, so their order is free
    fields: list[dict[str, pa.DataType]] = []
    for f in files:
        schema = _read_schema(f.path)
        stored = _visible(schema)
        _check_unique([*stored, *(k for k, _ in f.partition)], f"Parquet file {f.path}")
        fields.append({**{n: schema.field(n).type for n in stored}, **{k: part_types[k] for k, _ in f.partition}})
    first = files[0].path
    for f, fs in zip(files[1:], fields[1:]):
        if set(fs) != set(fields[0]):
            raise SchemaError(f"Parquet files disagree on columns: {first} has {list(fields[0])}, "
                              f"{f.path} has {list(fs)}")
    names = _select(list(fields[0]), columns, f"Parquet file {first}")
    types: dict[str, pa.DataType] = {}

    def info(n: str) -> ColumnInfo:
        # an all-null column in one file (a day without values) takes the type of the others
        typed = [(f.path, fs[n]) for f, fs in zip(files, fields) if not pa.types.is_null(fs[n])]
        p0, t0 = typed[0] if typed else (first, fields[0][n])
        read0 = _read_as(n, t0)
        reads = {read0}
        for p, t in typed[1:]:
            read = _read_as(n, t)
            reads.add(read)
            if t != t0 and (read == "unsupported" or read != read0) and not reads <= {"integer", "float"}:
                raise SchemaError(f"Parquet files disagree on column {n!r}: {p0} has {t0} ({read0}), "
                                  f"{p} has {t} ({read}); write it with one type in every file")
        # integers in some files and floats in others (an integer column that gained a NaN one day): read
        # as float64 in every file, a numerical column
        types[n] = pa.float64() if reads == {"integer", "float"} else t0
        return _arrow_info(n, types[n])

    infos = _collect(names, info, errors)
    n_rows = sum(pq.ParquetFile(f.path).metadata.num_rows for f in files)

    def column(n: str, rb: pa.RecordBatch, f: _ParquetFile) -> ColumnData:
        partition = dict(f.partition)
        if n in partition:
            value = partition[n]
            if value is not None and pa.types.is_integer(types[n]):
                value = int(value)
            return _column_from_arrow(n, pa.repeat(pa.scalar(value, types[n]), rb.num_rows))
        arr = rb.column(n)
        cast = pa.types.is_null(arr.type) or (pa.types.is_floating(types[n]) and pa.types.is_integer(arr.type))
        # (safe=False: an int64 past 2**53 becomes the nearest float64, as "read as float64" says)
        return _column_from_arrow(n, arr.cast(types[n], safe=False) if cast else arr)

    def batches():
        for f in files:
            stored = [n for n in names if n not in dict(f.partition)]
            for rb in pq.ParquetFile(f.path).iter_batches(batch_size=batch_rows, columns=stored):
                yield {n: (lambda n=n, rb=rb, f=f: column(n, rb, f)) for n in names}

    return TableSource(infos, batches, n_rows, f"Parquet files {[str(f.path) for f in files]}")


def _enter(folder: str, name: str, root: str, seen: set[str]) -> bool:
    """Whether the walk enters the subdirectory ``folder/name``: not yet entered (it is added to ``seen``), and
    where it is a symbolic link, one to a directory outside the tree whose real path is ``root`` (a directory
    whose real path lies under ``root`` is reached without links)."""
    full = os.path.join(folder, name)
    real = os.path.realpath(full)
    if real in seen or (os.path.islink(full) and os.path.commonpath([real, root]) == root):
        return False
    seen.add(real)
    return True


def _check_arrow_path(path: str | os.PathLike) -> None:
    """Refuse, naming it, a file whose name is not UTF-8 (the file system's bytes, which Python holds as
    surrogates): Arrow passes paths on as UTF-8 and failed with "surrogates not allowed", naming nothing."""
    name = os.fsdecode(path)  # (bytes given: as the file system's)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise SchemaError(f"cannot read {shown}: its name is not UTF-8, and pyarrow opens files by UTF-8 names; "
                          "rename it, or read it in Python and pass the table") from None


def _parquet_files(path: Path) -> list[_ParquetFile]:
    """A Parquet file, or the ``*.parquet`` files (the extension in any case, as the command line's inputs) of a
    directory and its subdirectories (sorted by path).

    Names starting with ``_`` or ``.`` are skipped (``_SUCCESS``, ``.ipynb_checkpoints``), as Spark and
    pyarrow skip them. Symbolic links to directories outside the folder given are followed, each directory
    read once; a link to a directory inside it (``latest -> dt=2024-01-02``) is not: that directory is read
    where it lies. A subdirectory named ``key=value`` (Hive partitioning, as pandas' ``partition_cols`` writes
    it) gives the files under it a column ``key``.
    """
    if not path.is_dir():
        _check_arrow_path(path)
        return [_ParquetFile(path)]
    found = []
    # links are followed (a window assembled from links to a store's days), but only out of the tree: a link
    # to one of its own folders would read that folder a second time, or, read once under whichever of its
    # two names came first, without the partition column its real name gives. Each directory is entered
    # once, so a link to a folder above ends the walk there instead of looping; names are walked in order,
    # so which of two links to one folder is read does not depend on the listing
    root = os.path.realpath(path)
    seen = {root}
    for folder, subfolders, names in os.walk(path, followlinks=True):
        subfolders[:] = [d for d in sorted(subfolders)
                         if not d.startswith(("_", ".")) and _enter(folder, d, root, seen)]
        found += [Path(folder, n) for n in names
                  if n.lower().endswith(".parquet") and not n.startswith(("_", "."))]
    if not found:
        raise FileNotFoundError(f"no *.parquet files in directory {path} or its subdirectories")
    files = []
    for p in sorted(found, key=lambda p: p.relative_to(path).parts):
        _check_arrow_path(p)
        keys = [d.split("=", 1) for d in p.relative_to(path).parent.parts if "=" in d]
        files.append(_ParquetFile(p, tuple((unquote(k), None if v == "__HIVE_DEFAULT_PARTITION__" else unquote(v))
                                           for k, v in keys)))
    return files


def as_source(
    data: Any,
    columns: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    errors: str = "raise",
) -> TableSource:
    """Wrap any supported tabular input as a :class:`TableSource`.

    Parameters
    ----------
    data
        pandas or polars DataFrame, pyarrow Table/RecordBatch, dict of 1-D
        arrays, 2-D NumPy array (with ``columns``), or a Parquet path or list
        of paths (a directory: its ``*.parquet`` files, in subdirectories too,
        with Hive ``key=value`` folder names as columns).
    columns
        Names of the 2-D array's columns; for other inputs, a subset of
        columns to read.
    batch_rows
        Rows per record batch when reading Parquet.
    errors
        ``"raise"``: a column that cannot be read raises :class:`SchemaError`;
        ``"report"``: it is kept as an ``invalid`` :class:`ColumnInfo` whose
        ``error`` says why, and the other columns are read as usual.
    """
    check_errors(errors)
    if isinstance(data, TableSource):
        return data
    if isinstance(data, (str, os.PathLike)):
        return _parquet_source(_parquet_files(Path(data)), columns, batch_rows, errors)
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data):
        return _parquet_source([f for p in data for f in _parquet_files(Path(p))], columns, batch_rows, errors)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return _arrow_table_source(data, columns, "the Arrow table", errors)
    mod = type(data).__module__.split(".")[0]
    if mod == "pandas" and hasattr(data, "columns"):
        return _pandas_source(data, columns, errors)
    if mod == "polars" and hasattr(data, "to_arrow") and hasattr(data, "columns"):
        # column by column, the chosen ones only: one column Arrow cannot read (Int128) must not stop the others
        names = _select(list(data.columns), columns, "the polars DataFrame")
        return _dict_source({n: data.get_column(n) for n in names}, None, errors, "the polars DataFrame")
    if isinstance(data, Mapping):
        if not data:
            raise EmptyInputError("the dict of arrays has no columns")
        return _dict_source(data, columns, errors)
    if isinstance(data, np.ndarray):
        return _ndarray_source(data, columns, errors)
    raise SchemaError(
        f"unsupported input type {type(data).__module__}.{type(data).__name__}: pass a pandas or polars "
        "DataFrame, a pyarrow Table, a dict of 1-D arrays, a 2-D NumPy array with columns=, or Parquet path(s)"
    )
