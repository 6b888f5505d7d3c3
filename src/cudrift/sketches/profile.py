"""``Profile``: per-column sketches of a window, and ``profile()`` to build one.

A profile is a monoid like each of its sketches: ``Profile.empty_like(ref)``
is the identity, ``merge`` (also ``+``) combines windows, shards or requests,
and ``to_bytes`` / ``save`` write a versioned, pickle-free format.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from cudrift.backends import resolve_backend, submit, worker_pool
from cudrift.errors import EmptyInputError, FormatError, IncompatibleSketchError, SchemaError, UnreadableColumnsError
from cudrift.io import ColumnData, ColumnInfo, TableSource, as_source
from cudrift.io._atomic import write_atomic
from cudrift.io._source import check_errors
from cudrift.sketches import _format
from cudrift.sketches.categorical import CategoryCounts, count_categories
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile, _merge_dtype
from cudrift.sketches.config import CATEGORICAL, NUMERICAL, ProfileConfig, Schema
from cudrift.sketches.histogram import column_precision, equal_mass_edges
from cudrift.sketches.sample import _check_skip

ColumnProfile = Union[NumericColumnProfile, CategoricalColumnProfile]

_KIND = "cudrift.profile"
_VERSION = 1


class Profile:
    """Sketches of every column of a window.

    Attributes
    ----------
    columns
        Column name → :class:`NumericColumnProfile` or
        :class:`CategoricalColumnProfile`, in input order.
    kinds
        Column name → ``"numerical"`` or ``"categorical"``.
    dtypes
        Column name → dtype string seen in the input (``"float32"``, ``"string"``...).
    n_rows
        Rows profiled (all columns see every row; nulls are counted per column).
    config
        The :class:`ProfileConfig` its sketches were built with.
    errors
        Column name → why it could not be profiled (only with
        ``profile(..., errors="report")``; such columns are left out).
    window
        True for a window: a profile made ``like=`` a reference
        (``profile(..., like=)``, :meth:`empty_like`, their merges and
        updates), whose numeric columns keep the reference's edges, or none.
        False for a reference, whose :meth:`update` may fix edges still
        missing. None when not known: a profile of numeric columns only saved
        before profiles said which they are (its :meth:`update` fixes no
        edges, as then).
    """

    def __init__(
        self,
        columns: dict[str, ColumnProfile],
        kinds: dict[str, str],
        dtypes: dict[str, str],
        n_rows: int,
        config: ProfileConfig,
        errors: dict[str, str] | None = None,
        window: bool | None = False,
    ):
        self.columns = columns
        self.kinds = kinds
        self.dtypes = dtypes
        self.n_rows = int(n_rows)
        self.config = config
        self.errors = dict(errors or {})
        self.window = None if window is None else bool(window)

    # ------------------------------------------------------------------ basics
    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __repr__(self) -> str:
        nn = sum(k == NUMERICAL for k in self.kinds.values())
        return (f"Profile(n_rows={self.n_rows}, columns={len(self.columns)} ({nn} numerical, "
                f"{len(self.columns) - nn} categorical))")

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __iter__(self):
        """The column names, as a dict's keys (``for name in profile``, ``list(profile)``)."""
        return iter(self.columns)

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"no column {name!r} in profile; columns are {self.names}") from None

    def edges(self, name: str) -> np.ndarray | None:
        col = self.columns[name]
        if isinstance(col, NumericColumnProfile) and col.histogram is not None:
            return col.histogram.edges
        return None

    def categories(self, name: str) -> frozenset | None:
        col = self.columns[name]
        if isinstance(col, CategoricalColumnProfile):
            return frozenset(col.counts.keys())
        return None

    @classmethod
    def empty(cls, like: "Profile") -> "Profile":
        """The identity of merge for profiles like ``like`` (same as :meth:`empty_like`)."""
        return cls.empty_like(like)

    @classmethod
    def empty_like(cls, reference: "Profile", skip: int = 0) -> "Profile":
        """An empty profile with the reference's columns, edges and dictionaries (the identity of merge).

        Its samples' indices continue the reference's, ``skip`` indices on: a
        window that skips at least the values of the windows before it draws
        no index they drew (the Triton monitor's sliding windows).

        Raises
        ------
        ValueError
            If ``skip`` is not an integer >= 0.
        """
        skip = _check_skip(skip)
        cols: dict[str, ColumnProfile] = {}
        for name, kind in reference.kinds.items():
            cols[name] = _empty_column(kind, reference, name, reference.config, reference.dtypes[name], skip=skip)
        return cls(cols, dict(reference.kinds), dict(reference.dtypes), 0, reference.config, window=True)

    # ------------------------------------------------------------------ merge
    def _takes_columns_of(self, other: "Profile") -> bool:
        """Whether this is an empty window (``Profile.empty_like(ref)``, README's stream) and ``other`` a window
        with its columns, in its order, and more: columns new to the reference, which ``profile(batch, like=w)``
        profiles too (a request id). Merging them took the extra columns as "different columns"."""
        shared = [n for n in other.kinds if n in self.kinds]
        return (self.n_rows == 0 and self.window is True and other.window is True and len(other.kinds) > len(shared)
                and shared == list(self.kinds) and all(other.kinds[n] == self.kinds[n] for n in shared))

    def _with_columns_of(self, other: "Profile") -> "Profile":
        """This empty window with the columns of ``other`` it lacks, empty as ``Profile.empty_like(other)`` makes
        them, in ``other``'s order."""
        cols = {n: self.columns[n] if n in self.columns else _empty_column(k, other, n, other.config, other.dtypes[n])
                for n, k in other.kinds.items()}
        dtypes = {n: self.dtypes.get(n, other.dtypes[n]) for n in other.kinds}
        return Profile(cols, dict(other.kinds), dtypes, 0, self.config, dict(self.errors), window=True)

    def merge(self, other: "Profile") -> "Profile":
        """Combine two profiles of the same columns and settings into a new one.

        Raises
        ------
        IncompatibleSketchError
            If the settings, columns, edges or dictionaries differ, or if a
            reference column past ``max_categories`` (counted exactly by
            ``profile()``'s second pass) would hold estimates: a merge could
            only reduce its counts the heavy-hitters way (profile the union
            in one pass). Windows merge however many categories they see.
        """
        merged = self._merge(other)
        # Only a recounted reference column past the cap (exact counts, folded keys: windows never recount)
        # turns exact counts into estimates the detector would read as exact. Parts of a window, each exact,
        # whose column new to the reference outgrows the cap together must still merge (in any order).
        n = next((n for n in _estimated_reference_columns(merged, self, other)
                  if self.columns[n].counts.recounted or other.columns[n].counts.recounted), None)
        if n is not None:
            raise IncompatibleSketchError(
                f"column {n!r}: these reference profiles together hold more than max_categories="
                f"{self.config.max_categories} categories, whose counts a merge could only estimate (a reference "
                "counts its dictionary exactly: the detector reads its counts as exact); profile the union of "
                "their data in one pass (cudrift.profile of all its parts: a list of Parquet files, say), or "
                "profile each part with a larger max_categories"
            )
        return merged

    def _merge(self, other: "Profile") -> "Profile":
        if not isinstance(other, Profile):
            raise TypeError(f"cannot merge a Profile with a {type(other).__name__}")
        if self._takes_columns_of(other):
            return self._with_columns_of(other)._merge(other)
        if other._takes_columns_of(self):
            return self._merge(other._with_columns_of(self))
        self.config.check_mergeable(other.config)
        if self.kinds == other.kinds and list(self.kinds) != list(other.kinds):
            raise IncompatibleSketchError(
                f"cannot merge profiles of the same columns in another order: {list(self.kinds)} vs "
                f"{list(other.kinds)}; profile the parts like= one reference (which orders their columns as "
                "its own), or from inputs with their columns in one order"
            )
        if self.kinds != other.kinds:
            # a column one part could not read (errors="report") is the usual cause: say why it was left out
            why = "".join(f"; {n!r} was left out of {which} profile: {p.errors[n]}"
                          for which, p, q in (("the first", self, other), ("the second", other, self))
                          for n in p.errors if n in q.kinds and n not in p.kinds)
            raise IncompatibleSketchError(
                f"cannot merge profiles with different columns: {_describe(self)} vs {_describe(other)}{why}"
            )
        cols = {}
        for name in self.columns:
            try:
                cols[name] = self.columns[name].merge(other.columns[name])
            except (IncompatibleSketchError, SchemaError) as exc:  # (categorical key types: a SchemaError)
                raise type(exc)(f"column {name!r}: {exc}") from None
        # a profile of no rows read none and saw no dtype: merging it changes neither, nor makes a reference a
        # window (empty_like is an identity); else batch_rows, which only says how the data was read, is the
        # smaller, so that a + b and b + a are one profile, and a window merged with any profile is one
        if self.n_rows == 0 < other.n_rows:
            config, dtypes, window = other.config, dict(other.dtypes), other.window
        elif other.n_rows == 0 < self.n_rows:
            config, dtypes, window = self.config, dict(self.dtypes), self.window
        else:
            config = self.config.with_batch_rows(min(self.config.batch_rows, other.config.batch_rows))
            dtypes = {n: _merge_dtype(self.dtypes[n], other.dtypes[n]) for n in self.columns}
            window = True if True in (self.window, other.window) else (
                False if self.window is False and other.window is False else None)
        return Profile(cols, dict(self.kinds), dtypes, self.n_rows + other.n_rows, config,
                       {**other.errors, **self.errors}, window)

    def __add__(self, other: "Profile") -> "Profile":
        if not isinstance(other, Profile):
            return NotImplemented
        return self.merge(other)

    def update(self, data: Any, columns: Sequence[str] | None = None) -> "Profile":
        """Profile more rows into this profile in place (streaming windows); returns self.

        All or nothing: rows refused in one column leave every column (and
        ``n_rows``) as they were.

        The data must hold this profile's columns, readable as they were
        profiled: a numerical column refuses booleans and text (``compare()``
        reports such a window's column as a kind change; counted as 0 and 1
        they would be tested as numbers). The data's other columns are not
        profiled, so one that cannot be read (a timestamp column the
        reference's schema ignored) is no obstacle.

        Bin edges and category dictionaries stay those of the profile: a
        numeric column keeps the edges fixed from the first rows profiled,
        so rows of a reference past their range fill its outer (underflow
        and overflow) bins; profile all the rows in one pass for edges that
        fit them all. One exception: a column of a reference (not a
        :attr:`window`) that has no edges because it held no finite value
        yet (all NaN, say) gets equal-mass edges from the merged quantile
        sketch once finite values arrive, as :func:`profile` fixes them
        (exactly, since the rows before held no finite value). Windows
        profiled ``like=`` the reference before that keep no edges for it,
        and still merge with one another (their histogram tests need
        windows profiled like the updated reference).

        Raises
        ------
        SchemaError
            If the data lacks one of the profile's columns, or one of them
            cannot be read or profiled as it was (the message names it).
        IncompatibleSketchError
            If a reference column would pass ``max_categories``.
        """
        # errors="report": the data's other columns are not profiled, so their errors are no concern of this one
        src = as_source(data, columns=columns, batch_rows=self.config.batch_rows, errors="report")
        missing = [n for n in self.columns if n not in src.names]
        if missing:
            raise SchemaError(f"data lacks profiled columns {missing}; it has {src.names}")
        for n, kind in self.kinds.items():
            info = src.info(n)
            if info.family == "invalid":
                raise SchemaError(info.error)
            if kind == NUMERICAL and not _reads_as_numerical(info):
                raise SchemaError(
                    f"column {n!r} is numerical in this profile, but the data holds "
                    f"{'booleans' if info.family == 'boolean' else 'text'} in it (dtype {info.dtype}): they are not "
                    "counted as numbers (compare() reports such a column as a kind change); cast it to numbers first"
                )
        # all or nothing: a batch that fails in one column must not leave the
        # other columns (and n_rows) counted
        dtypes = {n: src.info(n).dtype for n in self.columns}
        # a reference counts every category: so does the part that extends it (same_dictionary)
        part = Profile({n: _empty_column(k, self, n, self.config, dtypes[n], same_dictionary=True)
                        for n, k in self.kinds.items()}, dict(self.kinds), dtypes, 0, self.config,
                       window=self.window)
        _consume(part, src, list(self.columns))
        merged = self._merge(part)
        for n in _estimated_reference_columns(merged, self, part):
            # profile() recounts an outgrown reference's dictionary exactly in a second pass over the
            # data; update() has no such pass, and windows profiled like= it count exactly
            raise IncompatibleSketchError(
                f"column {n!r}: with these rows the reference holds more than max_categories="
                f"{self.config.max_categories} categories, whose counts update() could only estimate; "
                "profile the whole reference in one pass (cudrift.profile of all its parts: a list of "
                "Parquet files, say), which counts its dictionary exactly"
            )
        if self.window is False:
            # a reference column that held no finite value had no edges to fix (profile() gives it none); the
            # first finite values fix them, from the merged sketch, which holds those values only
            need = [n for n, c in self.columns.items() if isinstance(c, NumericColumnProfile)
                    and c.histogram is None and c.finite_count == 0 and merged.columns[n].quantiles.n]
            for n in need:
                merged.columns[n] = merged.columns[n].with_edges(
                    equal_mass_edges(merged.columns[n].quantiles, self.config.n_bins))
            if need:
                _count_histograms(merged, src, need)
        self.columns, self.n_rows, self.dtypes = merged.columns, merged.n_rows, merged.dtypes
        return self

    # -------------------------------------------------------------- serialize
    def to_bytes(self) -> bytes:
        names = list(self.columns)
        meta = {
            "columns": names,
            "kinds": [self.kinds[n] for n in names],
            "dtypes": [self.dtypes[n] for n in names],
            "n_rows": self.n_rows,
            "config": self.config.to_dict(),
            "errors": self.errors,
            "window": self.window,
        }
        arrays = {f"c{i}": np.frombuffer(self.columns[n].to_bytes(), dtype=np.uint8) for i, n in enumerate(names)}
        return _format.pack(_KIND, _VERSION, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Profile":
        _, meta, arrays = _format.unpack(data, _KIND, _VERSION)
        try:
            names = [str(n) for n in meta["columns"]]
            if len(set(names)) != len(names):
                raise ValueError(f"repeated column names in {names}")
            if len(meta["kinds"]) != len(names) or len(meta["dtypes"]) != len(names):
                raise ValueError("kinds and dtypes must list one entry per column")
            kinds = dict(zip(names, meta["kinds"]))
            bad = [k for k in kinds.values() if k not in (NUMERICAL, CATEGORICAL)]
            if bad:
                raise ValueError(f"unknown column kinds {bad}")
            dtypes = dict(zip(names, (str(d) for d in meta["dtypes"])))
            config = ProfileConfig.from_dict(meta["config"])
            n_rows = meta["n_rows"]
            if not isinstance(n_rows, int) or isinstance(n_rows, bool) or n_rows < 0:
                raise ValueError(f"n_rows must be an integer >= 0, got {n_rows!r}")
            errors = {str(k): str(v) for k, v in meta.get("errors", {}).items()}
            window = meta.get("window")
            if window is not None and not isinstance(window, bool):
                raise ValueError(f"window must be a bool, got {window!r}")
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise FormatError(f"corrupted profile metadata: {exc!r}") from None
        cols: dict[str, ColumnProfile] = {}
        for i, n in enumerate(names):
            raw = arrays.get(f"c{i}")
            if raw is None:
                raise FormatError(f"profile bytes lack column {n!r}")
            cls_ = NumericColumnProfile if kinds[n] == NUMERICAL else CategoricalColumnProfile
            try:
                cols[n] = cls_.from_bytes(raw.tobytes())
            except FormatError as exc:
                raise FormatError(f"column {n!r}: {exc}") from None
            except MemoryError:
                raise  # (out of memory is not a corrupt file: a checkpoint must not be set aside for it)
            except Exception as exc:  # noqa: BLE001 - bytes that pass their checksum but hold nonsense
                raise FormatError(f"corrupted profile bytes in column {n!r}: {type(exc).__name__}: {exc}") from None
        short = [n for n, c in cols.items() if c.count > n_rows]  # (each column counts every row it saw)
        if short:
            raise FormatError(f"corrupted profile metadata: n_rows {n_rows} is fewer than column {short[0]!r} "
                              f"counts ({cols[short[0]].count})")
        if window is None:
            # written before profiles said which they are: a window carries its reference's dictionary in its
            # categorical columns; one of numeric columns only could be either (None)
            if any(isinstance(c, CategoricalColumnProfile) and c.reference_categories is not None
                   for c in cols.values()):
                window = True
            elif any(isinstance(c, CategoricalColumnProfile) for c in cols.values()):
                window = False
        return cls(cols, kinds, dtypes, n_rows, config, errors, window)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the profile atomically (temporary file, fsync, rename)."""
        return write_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Profile":
        """Read a profile written by :meth:`save`."""
        with open(path, "rb") as f:
            data = f.read()
        try:
            return cls.from_bytes(data)
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from None


def _estimated_reference_columns(merged: Profile, a: Profile, b: Profile) -> list[str]:
    """Reference columns whose counts became estimates by merging ``a`` and ``b`` into ``merged``.

    A reference counts its dictionary exactly (``profile()`` recounts a column
    past ``max_categories`` in a second pass); past the cap, a merge can only
    reduce the counts the heavy-hitters way, leaving them undercounted (every
    counter cleared where many categories tie), which the detector would read
    as exact. A window profiled ``like=`` a reference is not one: it carries the
    reference's dictionary in its categorical columns and counts those
    categories exactly however many others it sees; a column new to its
    reference is not tested, so its counts may be estimates. A merge with a
    column of no keys (``Profile.empty_like``, a batch of nulls) changes no
    count and is left alone.
    """
    if a.window or b.window or any(isinstance(c, CategoricalColumnProfile) and c.reference_categories is not None
                                   for p in (a, b) for c in p.columns.values()):
        return []  # (a window of a numeric reference has no dictionary to carry: its flag says what it is)
    return [n for n, col in merged.columns.items()
            if isinstance(col, CategoricalColumnProfile) and col.reference_categories is None
            and col.counts.max_count_error > 0 and a.columns[n].counts.n and b.columns[n].counts.n]


def _describe(p: Profile) -> str:
    return "[" + ", ".join(f"{n}:{k[:3]}" for n, k in p.kinds.items()) + "]"


def _empty_column(kind: str, like: Profile | None, name: str, config: ProfileConfig, dtype: str,
                  same_dictionary: bool = False, skip: int = 0) -> ColumnProfile:
    """An empty column that merges with ``like``'s profiles: its edges, its sample continuing ``like``'s
    (``skip`` indices on), and the dictionary a window of ``like`` gets (with ``same_dictionary``: ``like``'s
    own, none for a reference, so that it merges with ``like`` itself). ``config`` is ``like``'s when given.
    """
    if kind == NUMERICAL:
        extends = like is not None and name in like.columns and like.kinds.get(name) == NUMERICAL
        col = NumericColumnProfile.empty(
            edges=like.edges(name) if extends else None, quantile_k=config.quantile_k,
            sample_size=config.sample_size, seed=config.seed, dtype=dtype
        )
        if extends:
            # the part continues like's sample indices: a window grown from many small parts samples as one
            # pass over its rows would, instead of every part drawing the same positions
            col.sample = like.columns[name].sample.continuing(skip)
        return col
    ref_cats = None
    if like is not None and name in like.columns and like.kinds.get(name) == CATEGORICAL:
        # a window profile passes on its own reference's dictionary; a column of a window that its reference does
        # not have has none, and neither has the part (README's loop, w = w + profile(batch, like=w), refused a
        # window's extra text column: "different reference dictionaries")
        ref_cats = like.columns[name].reference_categories
        if ref_cats is None and not same_dictionary and not like.window:
            ref_cats = like.categories(name)
    return CategoricalColumnProfile.empty(max_categories=config.max_categories, reference_categories=ref_cats)


def _unreadable(origin: str, errors: dict[str, str]) -> UnreadableColumnsError:
    return UnreadableColumnsError(f"no column of {origin} could be read: "
                                  + "; ".join(f"{n!r}: {e}" for n, e in errors.items()), errors)


def _infer_kinds(src: TableSource, schema: Schema, like: Profile | None, config: ProfileConfig,
                 unreadable: dict[str, str]) -> dict[str, str]:
    """Each column's kind (``unreadable``: the columns that cannot be read, for the error where none can)."""
    kinds: dict[str, str] = {}
    for info in src.columns:
        name = info.name
        if name in schema.ignore or info.family == "invalid":
            continue
        forced = schema.forced_kind(name)
        if forced == NUMERICAL and info.family in ("string", "boolean"):
            raise SchemaError(f"column {name!r} is forced numerical but has dtype {info.dtype}")
        if forced is not None:
            kinds[name] = forced
            continue
        if like is not None and name in like.kinds:
            ref_kind = like.kinds[name]
            # Follow the reference where the data can be read that way; a
            # float reference column arriving as strings keeps its own kind so
            # the detector can report the dtype change instead of failing.
            # (integers as a pandas Categorical, too: their categories are the numbers)
            if ref_kind == NUMERICAL and _reads_as_numerical(info):
                kinds[name] = NUMERICAL
                continue
            # float: an integer column that gained a missing value in pandas
            # arrives as float64; its integral values are read as the codes
            if ref_kind == CATEGORICAL and info.family in ("integer", "boolean", "string", "null", "float"):
                kinds[name] = CATEGORICAL
                continue
        if info.family in ("float", "null"):
            kinds[name] = NUMERICAL
        elif info.family in ("boolean", "string"):
            kinds[name] = CATEGORICAL
        else:  # integer: few distinct values over the whole reference → categories
            distinct = _count_distinct(src, name, config.categorical_max_distinct + 1)
            kinds[name] = CATEGORICAL if 0 < distinct <= config.categorical_max_distinct else NUMERICAL
    if not kinds:
        if unreadable:
            raise _unreadable(src.origin, unreadable)
        raise EmptyInputError(f"no columns to profile in {src.origin}")
    return kinds


def _reads_as_numerical(info: ColumnInfo) -> bool:
    """Whether a window's column is profiled as numerical where its reference's is: numbers, nulls, and integers
    as a pandas Categorical (its categories are the numbers). Booleans and text are categories."""
    return info.family in ("float", "integer", "null") or info.values == "integer"


def _count_distinct(src: TableSource, name: str, cap: int) -> int:
    """Distinct values of an integer column over all batches, counting no further than ``cap``."""
    seen = None
    for batch in src.iter_batches():
        v = np.asarray(batch[name]().values)
        if v.size:
            u = np.unique(v)
            if seen is not None and seen.dtype != u.dtype:
                common = np.result_type(seen.dtype, u.dtype)
                # exact integers: uint64 with int64 promotes to float64, which merges values past 2**53
                seen, u = (seen.astype(object), u.astype(object)) if common.kind == "f" else (seen, u)
            seen = u if seen is None else np.union1d(seen, u)
            if seen.size >= cap:
                return int(seen.size)
    return 0 if seen is None else int(seen.size)


def _label_batch(name: str, data: ColumnData) -> tuple[Any, int]:
    """Values and null count of one batch of a categorical column, ready for ``update``.

    An all-null batch has no label type of its own (an empty object array
    stands in), and float values (an integer column that gained a missing
    value in pandas) become integer labels with their NaNs read as nulls:
    int64, or uint64 where some lie past int64 and none is negative (a
    uint64 column's keys), Python ints for a batch holding both.

    Raises
    ------
    SchemaError
        If a float value is not a whole number, or lies past the 64-bit
        integer range (no int64 or uint64 column holds it).
    """
    values = data.values
    if not isinstance(values, np.ndarray):
        return values, data.null_count
    if values.size == 0:
        return np.zeros(0, dtype=object), data.null_count
    if values.dtype.kind != "f":
        return values, data.null_count
    nan = np.isnan(values)
    v = values[~nan]
    bad = v[(v != np.round(v)) | ~np.isfinite(v)]
    if bad.size:
        raise SchemaError(
            f"column {name!r} is categorical but holds non-integer values (e.g. {float(bad[0])!r}): category "
            "keys are strings, integers or booleans, and a float column is read as integer keys only when its "
            "values are whole numbers (profile it as numerical instead)"
        )
    nulls = data.null_count + int(nan.sum())
    if not v.size:
        return v.astype(np.int64), nulls
    lo, hi = v.min(), v.max()
    # (2.0**63 and 2.0**64 are exact floats: int64 holds [-2**63, 2**63), uint64 [0, 2**64))
    if lo < -2.0**63 or hi >= 2.0**64:
        past = lo if lo < -2.0**63 else hi
        raise SchemaError(
            f"column {name!r} is categorical but holds {float(past)!r}, past the 64-bit integer range: category "
            "keys are strings, booleans or integers of int64 or uint64 (profile it as numerical instead)"
        )
    if hi < 2.0**63:
        return v.astype(np.int64), nulls
    if lo >= 0:
        return v.astype(np.uint64), nulls
    # whole numbers of an int64 column and of a uint64 one in one batch: each is a 64-bit key, as it would be
    # in batches of its own
    return np.array([int(x) for x in v.tolist()], dtype=object), nulls


def _consume(
    prof: Profile, src: TableSource, names: list[str], errors: str = "raise",
    keep_sorted: dict[str, list[np.ndarray]] | None = None,
) -> None:
    """Feed every batch of ``src`` into the profile's columns (columns in parallel).

    With ``errors="report"`` a column whose values cannot be read (mixed
    types found in a later batch, say) is dropped from the profile and its
    error recorded; the other columns go on. ``keep_sorted`` collects the
    sorted finite batches of the numeric columns named in it.
    """
    rows = 0

    def feed(name, loader, col):
        data = loader()
        if isinstance(col, CategoricalColumnProfile):
            values, nulls = _label_batch(name, data)
        else:
            values, nulls = data.values, data.null_count
        if keep_sorted is not None and name in keep_sorted:
            col.update(values, null_count=nulls, name=name, sorted_out=keep_sorted[name])
        else:
            col.update(values, null_count=nulls, name=name)
        return len(data)

    with worker_pool(len(names)) as pool:
        for batch in src.iter_batches():
            futures = {n: submit(pool, feed, n, batch[n], prof.columns[n]) for n in names}
            lens = {}
            for n, f in futures.items():
                try:
                    lens[n] = f.result()
                except SchemaError as exc:
                    if errors == "raise":
                        raise
                    prof.errors[n] = str(exc)
            for n in [n for n in names if n in prof.errors]:
                prof.columns.pop(n, None)
                prof.kinds.pop(n, None)
                prof.dtypes.pop(n, None)
            names = [n for n in names if n not in prof.errors]
            if len(set(lens.values())) > 1:
                raise SchemaError(f"columns have different lengths in one batch: {lens}")
            rows += next(iter(lens.values()), 0)
    prof.n_rows += rows


def check_settings(config: Any, schema: Any) -> None:
    """Refuse a ``config=`` that is not a :class:`ProfileConfig` or a ``schema=`` that is not a :class:`Schema`
    (None allowed), naming it: a dict of settings failed later with "'dict' object has no attribute"."""
    for arg, value, cls in (("config", config, ProfileConfig), ("schema", schema, Schema)):
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{arg}= must be a {cls.__name__} (or None), got {type(value).__name__}"
                            + (f": {cls.__name__}(**{arg})" if isinstance(value, dict) else ""))


def _count_sorted(col: NumericColumnProfile, sorted_values: np.ndarray) -> None:
    """Count sorted finite values into ``col``'s histogram at the precision its windows' values are binned at
    (:func:`~cudrift.sketches.histogram.column_precision`): a float16 reference read widened to float32, or a
    float32 one kept sorted as float64, was counted finer than a window of the same rows (PSI 3.7 on identical
    data of neighbouring float16 values)."""
    precision = column_precision(col.dtype)
    if precision is None:
        col.histogram.update_sorted(sorted_values)
    else:
        x = sorted_values if sorted_values.dtype in (np.float32, np.float64) else sorted_values.astype(np.float64)
        col.histogram._update_sorted_trusted(x, precision)


def _count_histograms(prof: Profile, src: TableSource, names: list[str],
                      kept: dict[str, np.ndarray] | None = None) -> None:
    """Second pass over a reference: count each numeric column on its fixed edges.

    Columns whose sorted values were kept are counted from them (no re-read).
    """
    kept = kept or {}
    for n in [n for n in names if n in kept]:
        _count_sorted(prof.columns[n], kept[n])
    names = [n for n in names if n not in kept]
    if not names:
        return

    def count(loader, col):
        values = np.asarray(loader().values)
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        _count_sorted(col, np.sort(values))

    with worker_pool(len(names)) as pool:
        for batch in src.iter_batches():
            for f in [submit(pool, count, batch[n], prof.columns[n]) for n in names]:
                f.result()


def profile(
    data: Any,
    like: Profile | None = None,
    config: ProfileConfig | None = None,
    schema: Schema | None = None,
    columns: Sequence[str] | None = None,
    backend: str = "auto",
    errors: str = "raise",
) -> Profile:
    """Build the per-column sketches of a window.

    Parameters
    ----------
    data
        pandas or polars DataFrame, pyarrow Table, dict of 1-D arrays, 2-D
        NumPy array (with ``columns``), or Parquet path(s) read batch by batch.
    like
        A reference profile whose columns, kinds, bin edges and category
        dictionaries are reused, so that the result can be compared with it
        (and merged with other windows profiled the same way).
    config
        Sketch settings (defaults: :class:`ProfileConfig`). With ``like``
        the settings are ``like``'s, and a ``config`` given too must agree
        with them on every merge key; only its ``batch_rows`` is used.
    schema
        Kind overrides and ignored columns.
    columns
        Names for a 2-D array, or a subset of columns for other inputs.
    backend
        ``"auto"``, ``"cpu"`` or ``"gpu"``.
    errors
        ``"raise"`` (default): a column that cannot be profiled raises
        :class:`SchemaError` naming it; ``"report"``: it is left out and
        recorded in :attr:`Profile.errors`, the other columns are profiled.

    Raises
    ------
    ValueError
        If ``errors`` is neither ``"raise"`` nor ``"report"``.

    Examples
    --------
    >>> import numpy as np, cudrift
    >>> ref = cudrift.profile({"x": np.arange(1000.0)})
    >>> cur = cudrift.profile({"x": np.arange(500.0)}, like=ref)
    >>> ref.n_rows, cur.n_rows
    (1000, 500)
    """
    return profile_keeping_sorted(data, like, config, schema, columns, backend, errors, keep_sorted_budget=0)[0]


def profile_keeping_sorted(
    data: Any,
    like: Profile | None = None,
    config: ProfileConfig | None = None,
    schema: Schema | None = None,
    columns: Sequence[str] | None = None,
    backend: str = "auto",
    errors: str = "raise",
    keep_sorted_budget: int = 0,
    keep_float64: bool = False,
    keep_required: bool = False,
) -> tuple[Profile, dict[str, np.ndarray]]:
    """:func:`profile`, also returning each numeric column's sorted finite values.

    The values are kept (from the one sort the profile pass makes anyway)
    only when all numeric columns together fit ``keep_sorted_budget`` bytes;
    otherwise the dict is empty. This is how a detector gets exact rank
    tests without sorting a window twice. ``keep_float64`` converts the kept
    values to float64 (budgeted at 8 bytes each), for a reference that is
    compared many times. ``keep_required``: the GPU backend raises
    ``ValueError`` when values within the budget do not fit the device,
    rather than returning none (the detector's ``exact="always"``).
    """
    check_errors(errors)
    check_settings(config, schema)
    gpu = None
    if resolve_backend(backend) == "gpu":
        # same steps; the device module reads the batches and feeds the sketches
        from cudrift.backends import _gpu as gpu
    if like is not None:
        if not isinstance(like, Profile):
            raise TypeError(f"like= must be a Profile, got {type(like).__name__}")
        if config is not None:
            # the reference's settings, which its windows share; how the data is read is the caller's
            like.config.check_mergeable(config)
            config = like.config.with_batch_rows(config.batch_rows)
        else:
            config = like.config
    config = config or ProfileConfig()
    schema = schema or Schema()
    # the source reports unreadable columns and we raise here: one the schema ignores must not stop the profile
    src = (gpu.as_source if gpu else as_source)(data, columns=columns, batch_rows=config.batch_rows,
                                                errors="report")
    unreadable = {c.name: c.error for c in src.columns if c.family == "invalid" and c.name not in schema.ignore}
    if errors == "raise" and unreadable:
        raise SchemaError(next(iter(unreadable.values())))
    if not src.columns:
        raise EmptyInputError(f"no columns in {src.origin}")
    if src.n_rows == 0:
        raise EmptyInputError(f"no rows in {src.origin}: an empty window cannot be profiled")
    # (a column to ignore that is absent is not an error: one --ignore list serves a reference and its windows)
    unknown = [c for c in (*schema.numerical, *schema.categorical) if c not in src.names]
    if unknown:
        raise SchemaError(f"schema names columns {unknown} that are not in {src.origin} (columns: {src.names})")
    kinds = _infer_kinds(gpu.distinct_view(src) if gpu else src, schema, like, config, unreadable)
    if like is not None:
        # the reference's column order, then columns new to it by name, so windows profiled like it merge
        # whatever order their input had
        order = {n: i for i, n in enumerate(like.columns)}
        kinds = dict(sorted(kinds.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    dtypes = {n: src.info(n).dtype for n in kinds}
    cols = {n: _empty_column(k, like, n, config, dtypes[n]) for n, k in kinds.items()}
    prof = Profile(cols, kinds, dtypes, 0, config, unreadable, window=like is not None)
    numeric = [n for n, k in kinds.items() if k == NUMERICAL]
    keep: dict[str, list[np.ndarray]] | None = None
    if numeric and keep_sorted_budget > 0 and src.n_rows is not None:
        need = sum(src.n_rows * (8 if keep_float64 else _itemsize(dtypes[n])) for n in numeric)
        if need <= keep_sorted_budget:
            keep = {n: [] for n in numeric}
    if gpu:
        gpu.consume(prof, src, list(kinds), errors, keep, keep_required=keep_required)
    else:
        _consume(prof, src, list(kinds), errors, keep)
    kept: dict[str, np.ndarray] = {}
    if keep is not None:
        for n, parts in keep.items():
            if n not in prof.columns:
                continue  # dropped as unreadable
            if not parts:
                kept[n] = np.zeros(0, dtype=np.float64)
            else:
                kept[n] = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))
                if keep_float64 and kept[n].dtype != np.float64 and not gpu:
                    kept[n] = kept[n].astype(np.float64)
        if gpu:
            # one allocation for the device columns, so that the detector's
            # rank kernel reads them all in one launch
            kept = gpu.pack_columns(kept, np.float64 if keep_float64 else None)
    if not prof.columns and prof.errors:
        # rows are counted from the columns read: with none left, "no rows" would hide why
        raise _unreadable(src.origin, prof.errors)
    if prof.n_rows == 0:
        raise EmptyInputError(f"no rows in {src.origin}: an empty window cannot be profiled")
    # The columns of a reference get equal-mass edges from their quantile
    # sketch and a counting pass. (A column of a window profiled like= one
    # keeps the reference's edges, or none when the reference had no finite
    # value: windows profiled like it still merge.)
    # A column new to `like` gets none: edges of its own would differ from one part of a window to the next,
    # and parts profiled like= one reference must merge ("Scaling out" in README); the detector does not
    # test such a column anyway.
    need = [] if like is not None else [
        n for n, c in prof.columns.items()
        if isinstance(c, NumericColumnProfile) and c.histogram is None and c.quantiles.n > 0]
    for n in need:
        edges = equal_mass_edges(prof.columns[n].quantiles, config.n_bins)
        prof.columns[n] = prof.columns[n].with_edges(edges)
    if need:
        (gpu.count_histograms if gpu else _count_histograms)(prof, src, need, kept)
    elif gpu:
        gpu.release_for_edges(prof)  # sorted copies kept for an edges pass that is not needed
    if like is None:
        _recount_folded_categories(prof, gpu.host_view(src) if gpu else src)
    return prof, kept


def _recount_folded_categories(prof: Profile, src: TableSource) -> None:
    """Second pass over a reference column that outgrew ``max_categories``.

    The heavy-hitters pass leaves its counts under-estimated, and it may
    keep fewer than ``max_categories`` keys, none at all where many are
    equally frequent (10,001 categories of 3 rows each: subtracting the
    10,001st largest count leaves every counter at 0). Windows profiled like
    this reference count the dictionary's keys exactly, so the reference
    must too, and a dictionary left empty would make every window's rows one
    "other" mass that no test can tell apart. This pass counts exactly the
    heavy hitters and then, while there is room, every other key batch by
    batch, in the order ``count_categories`` lists a batch's keys (first
    appearance for text, ascending for integers and booleans; a key first
    seen in a later batch cannot have been seen before), so the dictionary
    holds ``min(max_categories, distinct)`` keys; the rest is kept as the
    folded mass. The counts held are exact (``max_count_error`` 0, which
    ``update`` and ``merge`` keep while they add no key); a key left out may
    have up to ``folded`` rows, as ``CategoryCounts.bounds`` reports.
    """
    for name, col in list(prof.columns.items()):
        if not isinstance(col, CategoricalColumnProfile) or not col.counts.folded:
            continue
        cap = col.counts.max_categories
        table = dict.fromkeys(col.counts.keys(), 0)
        other = 0
        for batch in src.iter_batches():
            values, _ = _label_batch(name, batch[name]())
            _, keys, counts, _ = count_categories(values, name)
            for k, c in zip(keys, counts.tolist()):
                if k in table:
                    table[k] += c
                elif len(table) < cap:
                    table[k] = c
                else:
                    other += c
        table = {k: c for k, c in table.items() if c}
        counts = CategoryCounts(cap, col.counts.key_type, table, sum(table.values()) + other, other, 0)
        prof.columns[name] = CategoricalColumnProfile(
            col.count, col.null_count, counts, col.reference_categories, col.unseen_count
        )


def _itemsize(dtype: str) -> int:
    """Bytes per kept sorted value: float32 stays float32, everything else becomes float64."""
    return 4 if dtype in ("float32", "float16") else 8
