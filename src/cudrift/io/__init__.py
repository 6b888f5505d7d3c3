"""Input adapters: anything tabular → named column batches on the host.

Accepted inputs: a pandas DataFrame, a polars DataFrame, a pyarrow Table or
RecordBatch, a dict of 1-D arrays, a 2-D NumPy array with ``columns=[...]``,
and a path (or list of paths) to Parquet files, read in record batches so a
window larger than memory is profiled batch by batch.

Every adapter yields the same thing: per batch, per column, a
:class:`ColumnData` holding the non-null values (a NumPy array for numeric
columns, a NumPy or Arrow array for categorical ones) and the number of
nulls removed. Errors name the column and dtype.
"""

from __future__ import annotations

from cudrift.io._source import (
    ColumnData,
    ColumnInfo,
    TableSource,
    as_source,
)

__all__ = ["ColumnData", "ColumnInfo", "TableSource", "as_source"]
