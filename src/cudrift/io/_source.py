"""Adapters from user data to :class:`TableSource` (see package docstring)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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
    if pa.types.is_floating(typ):
        return "float"
    if pa.types.is_integer(typ):
        return "integer"
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or getattr(pa.types, "is_string_view", lambda t: False)(typ):
        return "string"
    if pa.types.is_null(typ):
        return "null"
    raise _unsupported(name, typ)


def _arrow_dtype_str(typ: pa.DataType) -> str:
    if pa.types.is_dictionary(typ):
        return _arrow_dtype_str(typ.value_type)
    if pa.types.is_floating(typ) or pa.types.is_integer(typ):
        return np.dtype(typ.to_pandas_dtype()).name
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
    return SchemaError(f"column {name!r} mixes value types {seen}; a column must hold one type (cast it first)")


def _unreadable_objects(name: str, exc: Exception) -> SchemaError:
    """What Arrow refused in an object column besides mixed types: an integer past 64 bits, invalid text."""
    if isinstance(exc, OverflowError):
        return SchemaError(f"column {name!r} holds an integer that does not fit in 64 bits ({exc}); category "
                           "keys and numbers are 64-bit (cast the column to str to count such keys)")
    return SchemaError(f"column {name!r} holds text that is not valid Unicode ({exc})")


def _labels_from_objects(name: str, values: np.ndarray) -> pa.Array:
    """Object/str NumPy array → Arrow array of one label type (nulls kept)."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _mixed_types_error(name, values) from None
    except (OverflowError, UnicodeError) as exc:
        raise _unreadable_objects(name, exc) from None
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        try:
            arr = arr.cast(pa.string())
        except pa.ArrowInvalid:
            raise SchemaError(f"column {name!r} holds bytes that are not UTF-8 text") from None
    family = _arrow_family(name, arr.type)
    if family == "float":
        # floats in an object column: a string column with a stray number is
        # the usual cause; both types present → mixed.
        raise _mixed_types_error(name, values) if any(isinstance(v, str) for v in values[:1000]) else SchemaError(
            f"column {name!r} has dtype object holding floats; cast it to a float dtype"
        )
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
    family = _arrow_family(name, arr.type)
    if family in ("float", "integer"):
        return ColumnData(arr.to_numpy(zero_copy_only=False), nulls)
    if family == "boolean":
        return ColumnData(arr.to_numpy(zero_copy_only=False).astype(bool, copy=False), nulls)
    if family == "null":
        return ColumnData(np.zeros(0, dtype=np.float64), nulls)
    return ColumnData(arr, nulls)


# ------------------------------------------------------------------- sources


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


def _visible(names: list[str]) -> list[str]:
    # pandas writes its index into Arrow tables and Parquet files under these names
    return [n for n in names if not n.startswith("__index_level_")]


def _arrow_table_source(table: pa.Table, columns: Sequence[str] | None, origin: str, errors: str) -> TableSource:
    names = _select(_visible([str(n) for n in table.column_names]), columns, origin)
    _check_unique(names, origin)
    def info(n: str) -> ColumnInfo:
        typ = table.schema.field(n).type
        return _arrow_info(n, typ)

    infos = _collect(names, info, errors)

    def batches():
        yield {n: (lambda n=n: _column_from_arrow(n, table.column(n))) for n in names}

    return TableSource(infos, batches, table.num_rows, origin)


def _pandas_source(df: Any, columns: Sequence[str] | None, errors: str) -> TableSource:
    names = _select([str(c) for c in df.columns], columns, "the pandas DataFrame")
    _check_unique([str(c) for c in df.columns], "the pandas DataFrame")
    by_name = {str(c): c for c in df.columns}
    plain: dict[str, bool] = {}

    def info(n: str) -> ColumnInfo:
        s = df[by_name[n]]
        dt = s.dtype
        np_dt = dt if isinstance(dt, np.dtype) else None
        if np_dt is not None and np_dt.kind in "fiub":
            plain[n] = True
            return ColumnInfo(n, str(np_dt), _numpy_family(n, np_dt))
        if np_dt is not None and np_dt.kind in "mM":
            raise _unsupported(n, dt)
        # Extension dtypes (nullable ints, strings, categoricals) and object
        # columns go through Arrow, which keeps nulls apart and rejects mixes.
        arr = _pandas_to_arrow(n, s)
        plain[n] = False
        return _arrow_info(n, arr.type)

    infos = _collect(names, info, errors)

    def load(n: str) -> ColumnData:
        s = df[by_name[n]]
        if plain[n]:
            return _column_from_numpy(n, s.to_numpy())
        return _column_from_arrow(n, _pandas_to_arrow(n, s))

    def batches():
        yield {n: (lambda n=n: load(n)) for n in names}

    return TableSource(infos, batches, len(df), "the pandas DataFrame")


def _pandas_to_arrow(name: str, s: Any) -> pa.Array:
    try:
        arr = pa.array(s, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _mixed_types_error(name, s.to_numpy(dtype=object)) from None
    except (OverflowError, UnicodeError) as exc:
        raise _unreadable_objects(name, exc) from None
    except pa.ArrowNotImplementedError as exc:
        raise SchemaError(f"column {name!r} has unsupported dtype {s.dtype}: {exc}") from None
    if pa.types.is_timestamp(arr.type) or pa.types.is_duration(arr.type) or pa.types.is_date(arr.type):
        raise _unsupported(name, s.dtype)
    _arrow_family(name, arr.type)  # raises for other unsupported types
    return arr


def _dict_source(data: Mapping[str, Any], columns: Sequence[str] | None, errors: str) -> TableSource:
    keys = [str(k) for k in data.keys()]
    _check_unique(keys, "the dict of arrays")  # keys 1 and "1" are one name
    names = _select(keys, columns, "the dict of arrays")
    by_name = {str(k): k for k in data.keys()}
    arrays: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    def info(n: str) -> ColumnInfo:
        v = data[by_name[n]]
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            lengths[n] = len(v)
            arrays[n] = v
            return _arrow_info(n, v.type)
        a = np.asarray(v)
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
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            return _column_from_arrow(n, v)
        return _column_from_numpy(n, v)

    def batches():
        yield {n: (lambda n=n: load(n)) for n in names}

    n_rows = next(iter(lengths.values()), 0)
    return TableSource(infos, batches, n_rows, "the dict of arrays")


def matrix_columns(shape: tuple[int, ...], columns: Sequence[str] | None, what: str) -> list[str]:
    """Validated column names of a 2-D ``what`` (host or device array) of ``shape``."""
    if len(shape) != 2:
        raise SchemaError(f"a {what} input must be 2-D (rows × columns), got shape {shape}")
    if columns is None:
        raise SchemaError(f"a 2-D {what} array needs columns=[...] naming its {shape[1]} columns")
    names = [str(c) for c in columns]
    if len(names) != shape[1]:
        raise SchemaError(f"columns= names {len(names)} columns but the array has shape {shape}")
    _check_unique(names, "columns=")
    return names


def _ndarray_source(data: np.ndarray, columns: Sequence[str] | None) -> TableSource:
    columns = matrix_columns(data.shape, columns, "NumPy")
    family = _numpy_family(columns[0], data.dtype)
    infos = [ColumnInfo(c, str(data.dtype), family) for c in columns]

    def batches():
        yield {c: (lambda j=j, c=c: _column_from_numpy(c, data[:, j])) for j, c in enumerate(columns)}

    return TableSource(infos, batches, data.shape[0], "the 2-D array")


def _parquet_source(paths: list[Path], columns: Sequence[str] | None, batch_rows: int, errors: str) -> TableSource:
    import pyarrow.parquet as pq

    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"Parquet file not found: {p}")
    schemas = []
    for p in paths:
        try:
            schemas.append(pq.read_schema(p))
        except (pa.ArrowInvalid, OSError) as exc:
            hint = ""
            if p.suffix.lower() in (".cdp", ".profile"):
                hint = "; a saved profile is read with cudrift.Profile.load(path)"
            elif p.suffix.lower() != ".parquet":
                hint = "; paths are read as Parquet (load other formats with pandas, polars or pyarrow first)"
            raise SchemaError(f"cannot read Parquet schema of {p}: {exc}{hint}") from None
    first = schemas[0]
    for p, s in zip(paths[1:], schemas[1:]):
        if _visible(s.names) != _visible(first.names):  # (pandas' index columns are not read)
            raise SchemaError(f"Parquet files disagree on columns: {paths[0]} has {first.names}, {p} has {s.names}")
        for name in _visible(first.names):
            t0, t = first.field(name).type, s.field(name).type
            if t0 != t:
                raise SchemaError(f"Parquet files disagree on column {name!r}: {paths[0]} has {t0}, {p} has {t}")
    names = _select(_visible(list(first.names)), columns, f"Parquet file {paths[0]}")
    def info(n: str) -> ColumnInfo:
        typ = first.field(n).type
        return _arrow_info(n, typ)

    infos = _collect(names, info, errors)
    n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)

    def batches():
        for p in paths:
            f = pq.ParquetFile(p)
            for rb in f.iter_batches(batch_size=batch_rows, columns=names):
                yield {n: (lambda n=n, rb=rb: _column_from_arrow(n, rb.column(n))) for n in names}

    return TableSource(infos, batches, n_rows, f"Parquet files {[str(p) for p in paths]}")


def _parquet_files(path: Path) -> list[Path]:
    """A Parquet file, or the ``*.parquet`` files of a directory (sorted by name)."""
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"no *.parquet files in directory {path}")
        return files
    return [path]


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
        of paths.
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
    if errors not in ("raise", "report"):
        raise ValueError(f"Invalid value for errors: {errors!r} (expected 'raise' or 'report')")
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
        return _arrow_table_source(data.to_arrow(), columns, "the polars DataFrame", errors)
    if isinstance(data, Mapping):
        if not data:
            raise EmptyInputError("the dict of arrays has no columns")
        return _dict_source(data, columns, errors)
    if isinstance(data, np.ndarray):
        return _ndarray_source(data, columns)
    raise SchemaError(
        f"unsupported input type {type(data).__module__}.{type(data).__name__}: pass a pandas or polars "
        "DataFrame, a pyarrow Table, a dict of 1-D arrays, a 2-D NumPy array with columns=, or Parquet path(s)"
    )
