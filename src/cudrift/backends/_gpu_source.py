"""Device-resident inputs as :class:`~cudrift.io.TableSource`: the data stays where it is.

Accepted: a 2-D CuPy array (or anything exporting
``__cuda_array_interface__`` or CUDA DLPack) with ``columns=[...]``; a dict
whose values are such 1-D arrays, cuDF Series, or host arrays (mixed dicts
are fine: host columns go through the usual host adapters); a cuDF
DataFrame or Series. Numeric device columns are wrapped as CuPy arrays
without a copy (a column with nulls is compacted on the device, as the host
adapters drop nulls; a float column whose nulls cuDF cannot drop apart from
its NaN is read on the host instead, with a warning); string and
categorical cuDF columns are read to the host as Arrow arrays, where the
CPU path counts them.

Loaders return :class:`~cudrift.io.ColumnData` whose ``values`` is a CuPy
array for device columns; the GPU profile pass tells them apart by that.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import cupy
import numpy as np

from cudrift.backends._gpu_host import is_device_array
from cudrift.errors import SchemaError
from cudrift.io import ColumnData, ColumnInfo, TableSource, as_source
from cudrift.io._source import (
    _arrow_info,
    _check_unique,
    _collect,
    _column_from_arrow,
    _numpy_family,
    matrix_columns,
    _select,
)

__all__ = ["MatrixSource", "device_source", "as_cupy"]


def as_cupy(obj: Any) -> cupy.ndarray:
    """A CuPy view of device array data (no copy): CUDA array interface first, then DLPack."""
    if isinstance(obj, cupy.ndarray):
        return obj
    if hasattr(obj, "__cuda_array_interface__"):
        return cupy.asarray(obj)
    return cupy.from_dlpack(obj)


def _is_cudf(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "cudf"


class MatrixSource(TableSource):
    """A 2-D device array as a one-batch source; :attr:`matrix` lets the profile pass read it in one launch.

    Attributes
    ----------
    matrix
        The ``(rows, columns)`` CuPy array (float16 already widened to float32).
    """

    def __init__(self, matrix: cupy.ndarray, names: list[str], dtype: str):
        self.matrix = matrix
        family = _numpy_family(names[0], np.dtype(matrix.dtype))
        infos = [ColumnInfo(n, dtype, family) for n in names]

        def batches():
            yield {n: (lambda j=j: ColumnData(matrix[:, j], 0)) for j, n in enumerate(names)}

        super().__init__(infos, batches, int(matrix.shape[0]), "the 2-D device array")


def _matrix_source(data: Any, columns: Sequence[str] | None) -> MatrixSource:
    x = as_cupy(data)
    names = matrix_columns(tuple(x.shape), columns, "device")
    dtype = str(x.dtype)
    if x.dtype == np.float16:
        # as the host adapter does: float16 is profiled as float32
        x = x.astype(np.float32)
    return MatrixSource(x, names, dtype)


def _device_column(name: str, v: Any) -> tuple[ColumnInfo, Any, int]:
    """Info, loader and length of one device column (a device array or a cuDF Series)."""
    if _is_cudf(v):
        return _cudf_column(name, v)
    x = as_cupy(v)
    if x.ndim != 1:
        raise SchemaError(f"column {name!r} must be 1-D, got shape {x.shape}")
    info = ColumnInfo(name, str(x.dtype), _numpy_family(name, np.dtype(x.dtype)))
    values = x.astype(np.float32) if x.dtype == np.float16 else x
    return info, (lambda: ColumnData(values, 0)), int(x.shape[0])


def _without_nulls(s: Any, nulls: int) -> cupy.ndarray | None:
    """A numeric cuDF Series' values on the device with its nulls dropped and its NaN kept; None if that failed.

    cuDF's ``dropna`` (and ``isna``) take NaN for null in float columns,
    while cudrift counts NaN apart from nulls (``null_count`` counts only the
    null mask). So for floats the kept rows are those whose comparison with
    themselves is not null: ``v == v`` or ``v != v`` is True for every value,
    NaN included, and null for a null (outside cuDF's pandas-compatible mode,
    where a null compares as pandas' NaN does: the mode is switched off
    here). Checked by length (``len(s) - nulls`` rows must remain), so a
    cuDF that behaves otherwise is caught.
    """
    if not nulls:
        return s.values
    if s.dtype.kind == "f":
        cudf = sys.modules.get("cudf")  # loaded: s is one of its Series
        mode = getattr(cudf, "option_context", None)
        with mode("mode.pandas_compatible", False) if mode else contextlib.nullcontext():
            kept = s[((s == s) | (s != s)).fillna(False)]
    else:
        kept = s.dropna()
    return kept.values if len(kept) == len(s) - nulls else None


def _cudf_column(name: str, s: Any) -> tuple[ColumnInfo, Any, int]:
    """A cuDF Series: numbers stay on the device (nulls compacted away), labels go to the host."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        info = ColumnInfo(name, str(dtype), _numpy_family(name, dtype))

        def load() -> ColumnData:
            nulls = int(s.null_count)
            x = _without_nulls(s, nulls)
            if x is None:  # this cuDF could not drop nulls alone: the host path counts the column right
                warnings.warn(f"cuDF column {name!r}: its nulls could not be dropped on the device apart from its "
                              "NaN; it is read through the host instead (slower, same counts)", stacklevel=2)
                return _column_from_arrow(name, s.to_arrow())
            return ColumnData(x.astype(np.float32) if x.dtype == np.float16 else x, nulls)

        return info, load, len(s)
    # Strings and categoricals: the type is read from an empty slice, the
    # values only when the batch is loaded.
    typ = s.iloc[:0].to_arrow().type
    info = _arrow_info(name, typ)  # (a categorical's value family too: integers follow a numerical reference)
    return info, (lambda: _column_from_arrow(name, s.to_arrow())), len(s)


def _dict_source(data: Mapping[str, Any], columns: Sequence[str] | None, errors: str) -> TableSource:
    _check_unique([str(k) for k in data.keys()], "the dict of arrays")  # keys 1 and "1" are one name
    names = _select([str(k) for k in data.keys()], columns, "the dict of arrays")
    by_name = {str(k): k for k in data.keys()}
    loaders: dict[str, Any] = {}
    lengths: dict[str, int] = {}

    def info(n: str) -> ColumnInfo:
        v = data[by_name[n]]
        if is_device_array(v) or _is_cudf(v):
            col_info, loader, length = _device_column(n, v)
        else:
            host = as_source({n: v}, errors="raise")
            col_info = host.columns[0]
            loader = next(iter(host.iter_batches()))[n]
            length = int(host.n_rows)
        loaders[n] = loader
        lengths[n] = length
        return col_info

    infos = _collect(names, info, errors)
    if len(set(lengths.values())) > 1:
        raise SchemaError(f"columns have different lengths: {lengths}")

    def batches():
        yield {n: loaders[n] for n in names if n in loaders}

    return TableSource(infos, batches, next(iter(lengths.values()), 0), "the dict of arrays")


def _cudf_source(df: Any, columns: Sequence[str] | None, errors: str) -> TableSource:
    if not hasattr(df, "columns"):
        df = df.to_frame()  # a Series: one column named after it
    _check_unique([str(c) for c in df.columns], "the cuDF DataFrame")
    names = _select([str(c) for c in df.columns], columns, "the cuDF DataFrame")
    by_name = {str(c): c for c in df.columns}
    loaders: dict[str, Any] = {}

    def info(n: str) -> ColumnInfo:
        col_info, loader, _ = _cudf_column(n, df[by_name[n]])
        loaders[n] = loader
        return col_info

    infos = _collect(names, info, errors)

    def batches():
        yield {n: loaders[n] for n in names if n in loaders}

    return TableSource(infos, batches, len(df), "the cuDF DataFrame")


def device_source(data: Any, columns: Sequence[str] | None = None, errors: str = "raise") -> TableSource | None:
    """A source over device-resident data, or None when ``data`` holds none (use the host adapters).

    Parameters
    ----------
    data
        A cuDF DataFrame or Series, a 2-D device array, or a dict with at least one device column.
    columns
        Names of a 2-D array's columns; for other inputs, a subset to read.
    errors
        ``"raise"`` or ``"report"``, as :func:`cudrift.io.as_source`.
    """
    if _is_cudf(data):
        return _cudf_source(data, columns, errors)
    if isinstance(data, Mapping) and any(is_device_array(v) or _is_cudf(v) for v in data.values()):
        return _dict_source(data, columns, errors)
    if is_device_array(data):
        return _matrix_source(data, columns)
    return None
