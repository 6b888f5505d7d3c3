"""Counts per category: exact up to a cap, then a deterministic Misra–Gries summary.

While at most ``max_categories`` distinct keys have been seen the table is
exact. Past that, the table is reduced the Misra–Gries way, in the mergeable
form of Agarwal et al. 2012 ("Mergeable summaries"): after adding counters,
subtract the ``(max_categories + 1)``-th largest count from every counter and
drop those that reach zero or below. ``folded`` records everything removed
from the table; ``max_count_error`` (the sum of the subtracted amounts over
every reduction, summed over merged sketches) bounds how much any category
is undercounted, and, in counts made by updates and merges alone, never
exceeds ``folded / (max_categories + 1)``.

A reference profile recounts its table exactly in a second pass over its
data (``cudrift.sketches.profile``): its counts have ``max_count_error`` 0
and ``folded > 0``, every key held is exact, and a key not held may have any
count up to ``folded`` (:meth:`CategoryCounts.bounds` says so). A merge that
reduces such counts, or joins them with counts that carry an error, adds
their ``folded`` to ``max_count_error``: the bound then covers what the
recount left out.

Keys are ``str``, ``int`` or ``bool`` (bytes are decoded as UTF-8); one
sketch holds one key type. The reduction depends only on the combined
counts, so merges are exactly commutative, and exactly associative while no
reduction happens; after reductions every grouping stays within its own
error bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cudrift.errors import FormatError, IncompatibleSketchError, SchemaError
from cudrift.sketches import _format

__all__ = ["CategoryCounts", "Key", "count_categories"]

KIND = "cudrift.categories"
VERSION = 1
DEFAULT_MAX_CATEGORIES = 10_000

Key = Union[str, int, bool]
_KEY_TYPES = ("str", "int", "bool")


def _prefix(name: str | None) -> str:
    return f"column {name!r}: " if name is not None else ""


def _key_type(key: object) -> str:
    # bool before int: bool is a subclass of int in Python.
    if isinstance(key, (bool, np.bool_)):
        return "bool"
    if isinstance(key, (int, np.integer)):
        return "int"
    if isinstance(key, str):
        return "str"
    return type(key).__name__


def _object_types(values: np.ndarray) -> list[str]:
    """Names of the Python types in an object array, nulls (None, NaN) left out."""
    names = set()
    for v in values.tolist():
        if v is None or (isinstance(v, float) and v != v):
            continue
        names.add("str" if isinstance(v, (bytes, bytearray)) else _key_type(v))
    return sorted(names)


def _arrow_counts(arr: pa.Array | pa.ChunkedArray, name: str | None) -> tuple[str | None, list, np.ndarray, int]:
    """Hash-count a pyarrow array: ``(key_type, keys, counts, nulls)``."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = t.value_type
    if pa.types.is_null(t):
        return None, [], np.zeros(0, dtype=np.int64), len(arr)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        key_type = "str"
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        key_type = "bytes"
    elif pa.types.is_integer(t):
        key_type = "int"
    elif pa.types.is_boolean(t):
        key_type = "bool"
    else:
        raise SchemaError(f"{_prefix(name)}category keys must be str, int or bool, got arrow type {t}")
    nulls = arr.null_count
    vc = pc.value_counts(arr)
    keys_arr, counts_arr = vc.field("values"), vc.field("counts")
    if keys_arr.null_count:
        valid = pc.is_valid(keys_arr)
        keys_arr, counts_arr = pc.filter(keys_arr, valid), pc.filter(counts_arr, valid)
    keys = keys_arr.to_pylist()
    if key_type == "bytes":
        try:
            keys = [k.decode("utf-8") for k in keys]
        except UnicodeDecodeError as exc:
            raise SchemaError(f"{_prefix(name)}category bytes are not valid UTF-8: {exc}") from None
        key_type = "str"
    return key_type, keys, counts_arr.to_numpy(zero_copy_only=False).astype(np.int64), nulls


def _python_counts(x: np.ndarray, key_type: str, name: str | None) -> tuple[str, list, np.ndarray, int]:
    counts: dict = {}
    nulls = 0
    for v in x.tolist():
        if v is None or (isinstance(v, float) and v != v):
            nulls += 1
            continue
        if isinstance(v, (bytes, bytearray)):
            try:
                v = bytes(v).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SchemaError(f"{_prefix(name)}category bytes are not valid UTF-8: {exc}") from None
        elif key_type == "int":
            v = int(v)
        counts[v] = counts.get(v, 0) + 1
    return key_type, list(counts), np.array(list(counts.values()), dtype=np.int64), nulls


def count_categories(values: Any, name: str | None = None) -> tuple[str | None, list, np.ndarray, int]:
    """Exact counts of one batch of category keys.

    Parameters
    ----------
    values
        pyarrow Array / ChunkedArray, NumPy array (str, bytes, object, int,
        uint or bool) or a Python sequence.
    name
        Column name used as a prefix in error messages.

    Returns
    -------
    tuple
        ``(key_type, keys, counts, nulls)``: ``key_type`` is ``"str"``,
        ``"int"``, ``"bool"`` or ``None`` when no key was present; ``keys``
        are distinct Python values, ``counts`` an int64 array, and ``nulls``
        the number of missing entries found (pyarrow nulls, ``None`` and
        float NaN in object arrays).

    Raises
    ------
    SchemaError
        For float keys or several key types in one batch (the message names
        the types found).
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _arrow_counts(values, name)
    x = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if x.ndim != 1:
        raise SchemaError(f"{_prefix(name)}expected a 1-D array of categories, got shape {x.shape}")
    kind = x.dtype.kind
    if kind in "biu":
        uniq, counts = np.unique(x, return_counts=True)
        key_type = "bool" if kind == "b" else "int"
        return (key_type if uniq.size else None), uniq.tolist(), counts.astype(np.int64), 0
    if kind == "S":
        return _arrow_counts(pa.array(x), name)
    if kind == "U":
        try:
            return _arrow_counts(pa.array(x), name)
        except UnicodeError:
            # Lone surrogates cannot be converted for Arrow; count in Python.
            return _python_counts(x, "str", name)
    if kind == "O":
        try:
            arr = pa.array(x, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError) as exc:
            types = _object_types(x)
            if len(types) > 1:
                raise SchemaError(
                    f"{_prefix(name)}mixed category key types in one column: {', '.join(types)}"
                ) from None
            if types and types[0] in ("int", "str"):
                # Keys Arrow cannot hold (ints beyond 64 bits, str with lone
                # surrogates) are still valid categories: count them in Python.
                return _python_counts(x, types[0], name)
            raise SchemaError(f"{_prefix(name)}cannot read categories of type {', '.join(types)}: {exc}") from None
        if pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
            types = _object_types(x)
            raise SchemaError(
                f"{_prefix(name)}category keys must be str, int or bool, got {', '.join(types)}"
                + (" (mixed key types in one column)" if len(types) > 1 else "")
            )
        # A str/bytes mix arrives as binary (str encoded as UTF-8): both spell str keys.
        return _arrow_counts(arr, name)
    raise SchemaError(f"{_prefix(name)}category keys must be str, int or bool, got dtype {x.dtype}")


def _check_cap(max_categories: object) -> int:
    if isinstance(max_categories, bool) or not isinstance(max_categories, (int, np.integer)) or max_categories < 1:
        raise ValueError(f"Invalid value for max_categories: {max_categories!r} (expected a positive integer)")
    return int(max_categories)


class CategoryCounts:
    """Counts per category, exact up to ``max_categories`` keys, Misra–Gries beyond.

    Read-only mapping interface: ``counts[key]`` (0 for an unknown key),
    ``key in counts``, ``len(counts)`` (categories held), ``keys()``,
    ``items()``. On an empty sketch ``n``, ``folded`` and
    ``max_count_error`` are 0, ``key_type`` is ``None`` and no key is held.

    Examples
    --------
    >>> import numpy as np
    >>> c = CategoryCounts.empty().update(np.array(["a", "b", "a"], dtype=object))
    >>> dict(c.items()), c.n, c.is_exact
    ({'a': 2, 'b': 1}, 3, True)
    """

    __slots__ = ("_cap", "_key_type", "_table", "_n", "_folded", "_error")

    def __init__(self, cap: int, key_type: str | None, table: dict, n: int, folded: int, error: int) -> None:
        self._cap = cap
        self._key_type = key_type
        self._table = table
        self._n = n
        self._folded = folded
        self._error = error

    @classmethod
    def empty(cls, max_categories: int = DEFAULT_MAX_CATEGORIES) -> "CategoryCounts":
        """Counts of no values; at most ``max_categories`` keys are kept."""
        return cls(_check_cap(max_categories), None, {}, 0, 0, 0)

    def update(self, values: Any, name: str | None = None) -> "CategoryCounts":
        """Count a batch of keys; returns ``self``. Nulls in ``values`` are skipped.

        Parameters
        ----------
        values
            See :func:`count_categories`.
        name
            Column name used as a prefix in error messages.

        Raises
        ------
        SchemaError
            For unsupported or mixed key types, or a key type different from
            the one already counted.
        """
        key_type, keys, counts, _ = count_categories(values, name)
        return self._add_counts(key_type, keys, counts, name)

    def _add_counts(
        self, key_type: str | None, keys: list, counts: np.ndarray, name: str | None = None
    ) -> "CategoryCounts":
        if not keys:
            return self
        table: dict = {}
        for k, c in zip(keys, counts.tolist()):
            table[k] = table.get(k, 0) + c  # (keys read as a reference's may repeat: "true" and "True")
        merged = self._merged(key_type, table, int(counts.sum()), 0, 0, name)
        self._key_type, self._table, self._n, self._folded, self._error = (
            merged._key_type, merged._table, merged._n, merged._folded, merged._error
        )
        return self

    def _merged(
        self, key_type: str | None, table: dict, n: int, folded: int, error: int, name: str | None = None
    ) -> "CategoryCounts":
        if key_type is not None and self._key_type is not None and key_type != self._key_type:
            raise SchemaError(
                f"{_prefix(name)}cannot count categories of different key types: {self._key_type} vs {key_type}"
            )
        out = dict(self._table)
        for k, c in table.items():
            out[k] = out.get(k, 0) + c
        total_folded, total_error = self._folded + folded, self._error + error
        # counts recounted exactly (folded with no error): a key they do not hold may have all they folded
        recounted = [(t, f) for t, f, e in ((self._table, self._folded, self._error), (table, folded, error))
                     if f and not e]
        if len(out) > self._cap:
            keys = list(out)
            counts = np.fromiter(out.values(), dtype=np.int64, count=len(keys))
            # (cap + 1)-th largest count: subtracting it leaves at most cap
            # positive counters, and every category loses the same amount.
            cut = int(np.partition(counts, counts.size - self._cap - 1)[counts.size - self._cap - 1])
            reduced = counts - cut
            keep = reduced > 0
            total_folded += int(counts.sum() - reduced[keep].sum())
            total_error += cut
            out = {keys[i]: int(reduced[i]) for i in np.flatnonzero(keep).tolist()}
        if recounted and (total_error or any(not out.keys() <= t.keys() for t, _ in recounted)):
            # a key held now that a recount folded, or one folded now, may be undercounted by what it folded
            total_error += sum(f for _, f in recounted)
        return CategoryCounts(self._cap, self._key_type or key_type, out, self._n + n, total_folded, total_error)

    # monoid ---------------------------------------------------------------
    def merge(self, other: "CategoryCounts") -> "CategoryCounts":
        """New counts of both inputs; neither input changes.

        Raises
        ------
        IncompatibleSketchError
            If ``max_categories`` differ.
        SchemaError
            If the key types differ.
        """
        if not isinstance(other, CategoryCounts):
            raise TypeError(f"cannot merge CategoryCounts with {type(other).__name__}")
        if self._cap != other._cap:
            raise IncompatibleSketchError(
                f"cannot merge category counts with different max_categories: "
                f"max_categories={self._cap} vs max_categories={other._cap}"
            )
        return self._merged(other._key_type, other._table, other._n, other._folded, other._error)

    def __add__(self, other: "CategoryCounts") -> "CategoryCounts":
        return self.merge(other)

    def copy(self) -> "CategoryCounts":
        """Independent copy."""
        return CategoryCounts(self._cap, self._key_type, dict(self._table), self._n, self._folded, self._error)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoryCounts):
            return NotImplemented
        return (self._cap, self._key_type, self._n, self._folded, self._error) == (
            other._cap, other._key_type, other._n, other._folded, other._error
        ) and self._table == other._table

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"CategoryCounts(max_categories={self._cap}, key_type={self._key_type}, categories={len(self._table)}, "
            f"n={self._n}, folded={self._folded}, max_count_error={self._error})"
        )

    # mapping --------------------------------------------------------------
    def __getitem__(self, key: Key) -> int:
        return self._table.get(key, 0) if _key_type(key) == self._key_type else 0

    def __contains__(self, key: object) -> bool:
        return _key_type(key) == self._key_type and key in self._table

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[Key]:
        return iter(sorted(self._table))

    def keys(self) -> list[Key]:
        """Categories held, sorted."""
        return sorted(self._table)

    def items(self) -> list[tuple[Key, int]]:
        """``(key, count)`` pairs, sorted by key."""
        return [(k, self._table[k]) for k in sorted(self._table)]

    def most_common(self, n: int | None = None) -> list[tuple[Key, int]]:
        """The ``n`` largest counts (all when ``None``), ties by key."""
        pairs = sorted(self.items(), key=lambda kv: -kv[1])
        return pairs if n is None else pairs[:n]

    def bounds(self, key: Key) -> tuple[int, int]:
        """``(lo, hi)`` with ``lo <= true count <= hi`` (``lo == hi`` while exact).

        A key held is undercounted by at most :attr:`max_count_error`; a key
        not held has at most that, or, where a reference's second pass
        recounted the table exactly (``max_count_error`` 0), at most
        :attr:`folded`, the count of every key it left out.

        Examples
        --------
        >>> c = CategoryCounts(2, "str", {"a": 5, "b": 5}, 15, 5, 0)  # a reference's recount of "abc" * 5
        >>> c.bounds("a"), c.bounds("c")
        ((5, 5), (0, 5))
        """
        if key in self:
            lo = self._table[key]
            return lo, lo + self._error
        return 0, self._error or self._folded

    # queries --------------------------------------------------------------
    @property
    def max_categories(self) -> int:
        """Most categories kept (the setting)."""
        return self._cap

    @property
    def key_type(self) -> str | None:
        """``"str"``, ``"int"``, ``"bool"`` or ``None`` before the first key."""
        return self._key_type

    @property
    def n(self) -> int:
        """Keys counted, folded ones included (nulls excluded)."""
        return self._n

    @property
    def folded(self) -> int:
        """Total count removed from the table by reductions."""
        return self._folded

    @property
    def recounted(self) -> bool:
        """Whether these are a reference's counts past the cap, recounted exactly (keys folded, no error):
        ``profile()``'s second pass makes them; windows never have them."""
        return bool(self._folded) and not self._error

    @property
    def max_count_error(self) -> int:
        """Bound on the undercount of any category held (0 while exact, and after a reference's recount).

        A category not held may have up to ``bounds(key)[1]``: past a recount,
        ``folded``.
        """
        return self._error

    @property
    def is_exact(self) -> bool:
        """Whether every count is exact (no reduction happened)."""
        return self._folded == 0 and self._error == 0

    # serialization --------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned, CRC-checked bytes (kind ``"cudrift.categories"``, version 1).

        Keys are written as a JSON list with their type, so ``"1"``, ``1``
        and ``True`` come back as what they were.
        """
        keys = sorted(self._table)
        meta = {
            "max_categories": self._cap,
            "key_type": self._key_type,
            "keys": keys,
            "n": self._n,
            "folded": self._folded,
            "max_count_error": self._error,
        }
        counts = np.array([self._table[k] for k in keys], dtype=np.int64)
        return _format.pack(KIND, VERSION, meta, {"counts": counts})

    @classmethod
    def from_bytes(cls, data: bytes) -> "CategoryCounts":
        """Read bytes written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            If the bytes are truncated, corrupted, foreign or inconsistent.
        """
        _, meta, arrays = _format.unpack(data, KIND, VERSION)
        try:
            cap = _check_cap(meta["max_categories"])
            key_type = meta["key_type"]
            keys = meta["keys"]
            n, folded, error = (meta[k] for k in ("n", "folded", "max_count_error"))
            counts = arrays["counts"]
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"corrupted {KIND} bytes: {exc!r}") from None
        table = _decode_keys(keys, key_type, KIND)
        # (counts are int64, as every other sketch's, and summed in Python ints: an int64 sum wraps)
        ints_ok = all(_format.json_count(v) for v in (n, folded, error))
        if (
            not ints_ok
            or counts.dtype != np.int64
            or counts.shape != (len(table),)
            or len(set(table)) != len(table)
            or len(table) > cap
            or np.any(counts <= 0)
            or sum(counts.tolist()) + folded != n
        ):
            raise FormatError(f"corrupted {KIND} bytes: inconsistent counts")
        return cls(cap, key_type, dict(zip(table, counts.tolist())), n, folded, error)


def _decode_keys(keys: object, key_type: object, kind: str) -> list:
    """Validate keys read from JSON against their recorded type (FormatError otherwise)."""
    if key_type is None and keys == []:
        return []
    if key_type not in _KEY_TYPES or not isinstance(keys, list) or not all(_key_type(k) == key_type for k in keys):
        raise FormatError(f"corrupted {kind} bytes: keys do not match key type {key_type!r}")
    return keys
