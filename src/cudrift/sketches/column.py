"""Per-column profiles: every sketch of one numeric or categorical column, fed in one pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from cudrift.errors import FormatError, IncompatibleSketchError, SchemaError
from cudrift.sketches import _format
from cudrift.sketches._common import as_float, describe_array
from cudrift.sketches.categorical import (
    DEFAULT_MAX_CATEGORIES,
    CategoryCounts,
    Key,
    _key_type,
    count_categories,
    _decode_keys,
)
from cudrift.sketches.histogram import Histogram
from cudrift.sketches.moments import Moments
from cudrift.sketches.quantiles import DEFAULT_K, QuantileSketch
from cudrift.sketches.sample import DEFAULT_SIZE, Sample

__all__ = ["NumericColumnProfile", "CategoricalColumnProfile", "MAX_BATCH_ROWS"]

NUMERIC_KIND = "cudrift.column.numeric"
CATEGORICAL_KIND = "cudrift.column.categorical"
VERSION = 1

#: Rows of the longest batch one quantile summary is made of. A longer batch
#: is profiled as consecutive pieces of this many rows (the last one
#: shorter), on the CPU by :meth:`NumericColumnProfile.update` and on the GPU
#: by cutting its units at the same rows, so that a profile's quantile sketch,
#: and a reference's equal-mass edges taken from it, do not depend on the
#: backend or on how much memory its device has (a device with room for a
#: piece: 2**27 float64 values need about 9 GB free). Each piece adds at most
#: one level of ``1 / (2 k)`` to the sketch's rank error (0.1% for 1e9 rows
#: at the default k); columns up to this length are one batch, as before.
MAX_BATCH_ROWS = 1 << 27


def _prefix(name: str | None) -> str:
    return f"column {name!r}: " if name is not None else ""


def _check_null_count(null_count: object, name: str | None) -> int:
    if isinstance(null_count, bool) or not isinstance(null_count, (int, np.integer)) or null_count < 0:
        raise ValueError(f"{_prefix(name)}Invalid value for null_count: {null_count!r} (expected an integer >= 0)")
    return int(null_count)


def _merge_dtype(a: str | None, b: str | None) -> str | None:
    # Symmetric and associative, so merged profiles stay order-independent. "null" (a batch in which the
    # column held only nulls) says nothing about its type: it joins another dtype as the identity, so that a
    # window streamed in batches reads as one profiled at once, not as a dtype change.
    if not a or not b or a == b:
        return a or b
    parts = set(a.split("|")) | set(b.split("|"))
    if len(parts) > 1:
        parts.discard("null")
    return "|".join(sorted(parts))


def _as_bytes_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


def _nested_bytes(arrays: dict[str, np.ndarray], name: str, kind: str) -> bytes:
    """The bytes of the nested sketch ``name`` (written by :func:`_as_bytes_array`); FormatError otherwise."""
    a = arrays[name]
    if a.dtype != np.uint8 or a.ndim != 1:
        raise FormatError(f"corrupted {kind} bytes: {name} is a {a.ndim}-D {a.dtype} array, expected 1-D uint8")
    return a.tobytes()


def _check_counts(meta: dict[str, Any], names: tuple[str, ...], kind: str) -> list[int]:
    """The counts ``names`` of ``meta``: integers in int64's range (a JSON bool or float is none)."""
    counts = [meta[k] for k in names]
    for k, c in zip(names, counts):
        if not _format.json_count(c):
            raise FormatError(f"corrupted {kind} bytes: bad {k} {c!r} (expected an integer in [0, 2**63))")
    return counts


def _describe_hist(h: Histogram | None) -> str:
    return "no edges" if h is None else describe_array(h.edges, "edges")


class NumericColumnProfile:
    """Sketches of one numeric column.

    Attributes
    ----------
    count
        Rows seen, nulls, NaN and infinities included.
    null_count, nan_count, posinf_count, neginf_count
        Rows that were null (as reported by the caller), NaN, ``+inf``, ``-inf``.
    moments
        :class:`~cudrift.sketches.moments.Moments` of the finite values.
    histogram
        :class:`~cudrift.sketches.histogram.Histogram` of the finite values, or
        ``None`` while no edges are fixed (see :meth:`with_edges`).
    quantiles
        :class:`~cudrift.sketches.quantiles.QuantileSketch` of the finite values.
    sample
        :class:`~cudrift.sketches.sample.Sample` of the finite values.
    dtype
        The input dtype: the one given to :meth:`empty`, else the NumPy dtype
        of the first batch; merging profiles of different dtypes records both
        as ``"a|b"``.

    Integer inputs are converted to float64 (exact below 2**53); float16 to
    float32. An empty profile has every count 0 and empty sketches.

    Examples
    --------
    >>> import numpy as np
    >>> p = NumericColumnProfile.empty(edges=[0.0, 1.0, 2.0])
    >>> p = p.update(np.array([0.5, np.nan, 1.5, np.inf], dtype=np.float32), null_count=1)
    >>> p.count, p.null_count, p.nan_count, p.posinf_count, p.moments.count
    (5, 1, 1, 1, 2)
    """

    __slots__ = (
        "count",
        "null_count",
        "nan_count",
        "posinf_count",
        "neginf_count",
        "moments",
        "histogram",
        "quantiles",
        "sample",
        "dtype",
    )

    def __init__(
        self,
        count: int,
        null_count: int,
        nan_count: int,
        posinf_count: int,
        neginf_count: int,
        moments: Moments,
        histogram: Histogram | None,
        quantiles: QuantileSketch,
        sample: Sample,
        dtype: str | None,
    ) -> None:
        self.count = count
        self.null_count = null_count
        self.nan_count = nan_count
        self.posinf_count = posinf_count
        self.neginf_count = neginf_count
        self.moments = moments
        self.histogram = histogram
        self.quantiles = quantiles
        self.sample = sample
        self.dtype = dtype

    @classmethod
    def empty(
        cls,
        edges: np.ndarray | None = None,
        quantile_k: int = DEFAULT_K,
        sample_size: int = DEFAULT_SIZE,
        seed: int = 0,
        dtype: str | None = None,
    ) -> "NumericColumnProfile":
        """Profile of no rows.

        Parameters
        ----------
        edges
            Histogram edges, or ``None`` to profile without a histogram (the
            edges are usually fixed later from :attr:`quantiles`).
        quantile_k
            ``k`` of the quantile sketch.
        sample_size, seed
            Settings of the sample.
        dtype
            Input dtype to record; ``None`` takes the first batch's.
        """
        return cls(
            0,
            0,
            0,
            0,
            0,
            Moments.empty(),
            None if edges is None else Histogram.empty(edges),
            QuantileSketch.empty(quantile_k),
            Sample.empty(sample_size, seed),
            None if dtype is None else str(dtype),
        )

    def update(
        self, values: np.ndarray, null_count: int = 0, name: str | None = None, sorted_out: list | None = None
    ) -> "NumericColumnProfile":
        """Profile a batch in place; returns ``self``.

        Parameters
        ----------
        values
            1-D bool, integer or float array with nulls already removed.
        null_count
            How many nulls the caller removed from this batch.
        name
            Column name used as a prefix in error messages.
        sorted_out
            When a list is given, the batch's sorted finite values are
            appended to it (one array per piece of :data:`MAX_BATCH_ROWS`
            rows), so a caller that needs them (exact rank tests) does not
            sort the batch a second time.

        Raises
        ------
        SchemaError
            If ``values`` is not a 1-D numeric array.

        Notes
        -----
        The finite values are sorted once (float32 stays float32: its sort is
        twice as fast) and every sketch reads that sorted batch, except the
        sample, whose priorities depend on the original order.
        """
        x = np.asarray(values)
        if x.ndim != 1:
            raise SchemaError(f"{_prefix(name)}expected a 1-D array, got shape {x.shape}")
        if x.dtype.kind not in "biuf":
            raise SchemaError(f"{_prefix(name)}expected a numeric dtype (bool, int, uint, float), got {x.dtype}")
        nulls = _check_null_count(null_count, name)
        limit = MAX_BATCH_ROWS
        if x.size > limit:  # pieces of MAX_BATCH_ROWS, cut where the GPU path cuts its units
            for a in range(0, x.size, limit):
                self.update(x[a : a + limit], nulls if a == 0 else 0, name, sorted_out)
            return self
        if self.dtype is None:
            self.dtype = str(x.dtype)
        self.count += x.size + nulls
        self.null_count += nulls
        if x.size == 0:
            return self
        xf = as_float(x)
        s = np.sort(xf)
        m = s.size
        # NumPy sorts -inf first and +inf then NaN last, and searchsorted
        # uses the same order, so the non-finite counts cost O(log m). The
        # infinities are scalars of s's own dtype: a Python float would make
        # NumPy convert all of float32 s to float64 first.
        inf = s.dtype.type(np.inf)
        first = int(s.searchsorted(-inf, side="right"))
        inf_at = int(s.searchsorted(inf, side="left"))
        nan_at = int(s.searchsorted(inf, side="right"))
        self.neginf_count += first
        self.posinf_count += nan_at - inf_at
        self.nan_count += m - nan_at
        finite_sorted = s[first:inf_at]
        finite = xf if finite_sorted.size == m else xf[np.isfinite(xf)]
        self.moments._update_sorted_trusted(finite_sorted)
        if self.histogram is not None:
            # float16 values (widened to float32 here, or by the reader) are binned at float16 precision
            half = x.dtype == np.float16 or self.dtype == "float16"
            self.histogram._update_sorted_trusted(finite_sorted, np.float16 if half else None)
        self.quantiles._update_sorted_trusted(finite_sorted)
        self.sample._update_trusted(finite)
        if sorted_out is not None:
            sorted_out.append(finite_sorted)
        return self

    def with_edges(self, edges: np.ndarray) -> "NumericColumnProfile":
        """Copy whose histogram is reset to ``edges`` with zero counts (for a counting pass: until it has counted
        the finite values again, :meth:`from_bytes` refuses its bytes, whose histogram total is not its finite
        count)."""
        out = self.copy()
        out.histogram = Histogram.empty(edges)
        return out

    @property
    def finite_count(self) -> int:
        """Finite values profiled (``moments.count``)."""
        return self.moments.count

    @property
    def outside_edges(self) -> int:
        """Values past the outer histogram edges (its underflow and overflow bins), infinities included."""
        bins = int(self.histogram.counts[0] + self.histogram.counts[-1]) if self.histogram is not None else 0
        return bins + self.posinf_count + self.neginf_count

    @property
    def edges_are_range(self) -> bool:
        """Whether the outer histogram edges are this column's minimum and maximum, so that a window profiled
        like= it counts the values outside its range exactly in its outer bins: true of a reference profiled
        from data (a constant one's single bin ends just past its value), not of a window profiled like= a
        reference, nor of a reference grown by ``update()``, whose edges are another range's."""
        if self.histogram is None or not self.moments.count:
            return False
        lo, hi = self.moments.min, self.moments.max
        # (a constant column's edges are [v, nextafter(v)], as equal_mass_edges gives one value)
        top = hi if lo < hi else float(np.nextafter(hi, np.inf))
        edges = self.histogram.edges
        return bool(edges[0] == lo and edges[-1] == top)

    # monoid ---------------------------------------------------------------
    def merge(self, other: "NumericColumnProfile") -> "NumericColumnProfile":
        """New profile of both inputs' rows; neither input changes.

        A side without a histogram merges with a side that has one only when
        it holds no finite values (so an ``empty()`` profile is the identity).

        Raises
        ------
        IncompatibleSketchError
            If edges, quantile ``k`` or sample settings differ; the message
            names both settings.
        """
        if not isinstance(other, NumericColumnProfile):
            raise TypeError(f"cannot merge NumericColumnProfile with {type(other).__name__}")
        a, b = self.histogram, other.histogram
        if a is not None and b is not None:
            hist: Histogram | None = a.merge(b)
        elif a is None and b is None:
            hist = None
        elif (a is None and self.finite_count == 0) or (b is None and other.finite_count == 0):
            hist = (a or b).copy()  # type: ignore[union-attr]
        else:
            raise IncompatibleSketchError(
                f"cannot merge numeric column profiles with different edges: {_describe_hist(a)} vs {_describe_hist(b)}"
            )
        return NumericColumnProfile(
            self.count + other.count,
            self.null_count + other.null_count,
            self.nan_count + other.nan_count,
            self.posinf_count + other.posinf_count,
            self.neginf_count + other.neginf_count,
            self.moments.merge(other.moments),
            hist,
            self.quantiles.merge(other.quantiles),
            self.sample.merge(other.sample),
            # a side of no values (an empty_like part that carries its reference's dtype) adds no dtype
            _merge_dtype(self.dtype if self.count or not other.count else None,
                         other.dtype if other.count or not self.count else None),
        )

    def __add__(self, other: "NumericColumnProfile") -> "NumericColumnProfile":
        return self.merge(other)

    def copy(self) -> "NumericColumnProfile":
        """Independent copy."""
        return NumericColumnProfile(
            self.count,
            self.null_count,
            self.nan_count,
            self.posinf_count,
            self.neginf_count,
            self.moments.copy(),
            None if self.histogram is None else self.histogram.copy(),
            self.quantiles.copy(),
            self.sample.copy(),
            self.dtype,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericColumnProfile):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"NumericColumnProfile(count={self.count}, finite={self.finite_count}, nulls={self.null_count}, "
            f"nan={self.nan_count}, +inf={self.posinf_count}, -inf={self.neginf_count}, "
            f"histogram={_describe_hist(self.histogram)}, dtype={self.dtype})"
        )

    # serialization --------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned, CRC-checked bytes (kind ``"cudrift.column.numeric"``, version 1)."""
        meta = {
            "count": self.count,
            "null_count": self.null_count,
            "nan_count": self.nan_count,
            "posinf_count": self.posinf_count,
            "neginf_count": self.neginf_count,
            "dtype": self.dtype,
        }
        arrays = {
            "moments": _as_bytes_array(self.moments.to_bytes()),
            "quantiles": _as_bytes_array(self.quantiles.to_bytes()),
            "sample": _as_bytes_array(self.sample.to_bytes()),
        }
        if self.histogram is not None:
            arrays["histogram"] = _as_bytes_array(self.histogram.to_bytes())
        return _format.pack(NUMERIC_KIND, VERSION, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> "NumericColumnProfile":
        """Read bytes written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            If the bytes (or any nested sketch) are truncated, corrupted,
            foreign or inconsistent.
        """
        _, meta, arrays = _format.unpack(data, NUMERIC_KIND, VERSION)
        names = ("count", "null_count", "nan_count", "posinf_count", "neginf_count")
        try:
            counts = _check_counts(meta, names, NUMERIC_KIND)
            dtype = meta["dtype"]
            parts = {k: _nested_bytes(arrays, k, NUMERIC_KIND) for k in ("moments", "quantiles", "sample")}
        except KeyError as exc:
            raise FormatError(f"corrupted {NUMERIC_KIND} bytes: missing {exc}") from None
        if not (dtype is None or isinstance(dtype, str)):
            raise FormatError(f"corrupted {NUMERIC_KIND} bytes: bad dtype {dtype!r}")
        hist = Histogram.from_bytes(_nested_bytes(arrays, "histogram", NUMERIC_KIND)) if "histogram" in arrays else None
        out = cls(
            *counts,
            Moments.from_bytes(parts["moments"]),
            hist,
            QuantileSketch.from_bytes(parts["quantiles"]),
            Sample.from_bytes(parts["sample"]),
            dtype,
        )
        nonfinite = out.null_count + out.nan_count + out.posinf_count + out.neginf_count
        if out.count != nonfinite + out.finite_count:
            raise FormatError(
                f"corrupted {NUMERIC_KIND} bytes: count {out.count} is not nulls, NaN and infinities ({nonfinite}) "
                f"plus the {out.finite_count} finite values"
            )
        # Every sketch of a column holds its finite values, whatever made it (update, merge, empty_like with a
        # skip: a sample's n_seen counts the values offered to it, not the indices skipped).
        seen = {"quantiles n": out.quantiles.n, "sample n_seen": out.sample.n_seen}
        if hist is not None:
            seen["histogram total"] = hist.n
        for what, n in seen.items():
            if n != out.finite_count:
                raise FormatError(
                    f"corrupted {NUMERIC_KIND} bytes: {what} is {n}, the column has {out.finite_count} finite values"
                )
        return out


def _typed(keys: Iterable[Key]) -> frozenset[tuple[str, Key]]:
    # (type, key) pairs: True and 1 are equal in Python but not as categories.
    return frozenset((_key_type(k), k) for k in keys)


def _check_reference(reference: Iterable[Key] | None) -> frozenset | None:
    if reference is None:
        return None
    if isinstance(reference, (str, bytes)):
        raise ValueError(f"Invalid value for reference_categories: {reference!r} (expected a collection of keys)")
    ref = frozenset(reference)
    bad = [k for k in ref if _key_type(k) not in ("str", "int", "bool")]
    if bad:
        raise ValueError(f"Invalid value for reference_categories: key {bad[0]!r} is not str, int or bool")
    types = sorted({_key_type(k) for k in ref})
    if len(types) > 1:
        # (one column's counts hold one key type: such a dictionary could never be filled)
        raise ValueError(f"Invalid value for reference_categories: keys of types {types} (expected one type)")
    return ref


def _describe_ref(ref: frozenset | None) -> str:
    if ref is None:
        return "no reference dictionary"
    preview = sorted(ref, key=lambda k: (_key_type(k), k))[:3]
    more = ", ..." if len(ref) > 3 else ""
    return f"{len(ref)} categories [{', '.join(repr(k) for k in preview)}{more}]"


def _as_reference_keys(key_type: str | None, keys: list, ref: frozenset, ref_types: set[str]
                       ) -> tuple[str | None, list]:
    """A window's keys read as those of its reference dictionary ``ref`` (``(type, key)`` pairs): integers as
    their text against text, text that is an integer as that integer against integers (a CSV column whose type
    was inferred differently in one file: ``"3"`` and ``3`` are the same category), and booleans as 0/1 codes
    or as the text Arrow's CSV reader takes for them, either way. Several keys may become one (``ref_types``:
    the types in ``ref``, kept by the column)."""
    if ref_types == {"str"} and key_type == "bool":
        # each boolean as the text the reference holds for it ("true", "True", "1", ...)
        text = {v: next((t for t, b in _BOOL_TEXT.items() if b is v and ("str", t) in ref), str(v))
                for v in (True, False)}
        return "str", [text[k] for k in keys]
    if ref_types == {"str"} and key_type == "int":
        return "str", [str(k) for k in keys]
    if ref_types == {"int"} and key_type == "str":
        # only the keys the dictionary can hold: the others ("03", " 3", "+3", "x") stay text, unseen
        return "int", [int(k) if _int_text(k) else k for k in keys]
    # booleans against 0/1 codes, or the text Arrow's CSV reader takes for booleans: the same two categories
    if ref_types == {"bool"} and key_type == "int":
        return "bool", [bool(k) if k in (0, 1) else k for k in keys]
    if ref_types == {"bool"} and key_type == "str":
        return "bool", [_BOOL_TEXT.get(k, k) for k in keys]
    if ref_types == {"int"} and key_type == "bool":
        return "int", [int(k) for k in keys]
    return key_type, keys


_BOOL_TEXT = {"true": True, "True": True, "TRUE": True, "1": True, "false": False, "False": False, "FALSE": False,
              "0": False}


def _int_text(k: str) -> bool:
    """Whether ``k`` is an integer's own text (``str(int(k)) == k``)."""
    try:
        return str(int(k)) == k
    except ValueError:
        return False


class CategoricalColumnProfile:
    """Sketches of one categorical column.

    Attributes
    ----------
    count
        Rows seen, nulls included.
    null_count
        Nulls: those the caller removed plus missing entries still in the
        values (pyarrow nulls, ``None``, NaN in object arrays).
    counts
        :class:`~cudrift.sketches.categorical.CategoryCounts` of the keys.
        Profiled like a reference, only the reference's categories are
        counted here: there are at most ``max_categories`` of them, so their
        counts stay exact however many new categories a window brings.
    reference_categories
        The reference's dictionary when profiled like a reference, else ``None``.
    unseen_count
        Values whose category is not in ``reference_categories`` (exact, even
        past ``max_categories``); 0 without a reference.

    Examples
    --------
    >>> import numpy as np
    >>> p = CategoricalColumnProfile.empty(reference_categories={"a", "b"})
    >>> p = p.update(np.array(["a", "c", None, "c"], dtype=object))
    >>> p.count, p.null_count, p.unseen_count, p.counts["a"], "c" in p.counts
    (4, 1, 2, 1, False)
    """

    __slots__ = ("count", "null_count", "counts", "reference_categories", "unseen_count", "_ref_typed",
                 "_ref_types")

    def __init__(
        self,
        count: int,
        null_count: int,
        counts: CategoryCounts,
        reference_categories: frozenset | None,
        unseen_count: int,
    ) -> None:
        self.count = count
        self.null_count = null_count
        self.counts = counts
        self.reference_categories = reference_categories
        self.unseen_count = unseen_count
        self._ref_typed = None if reference_categories is None else _typed(reference_categories)
        self._ref_types = None if self._ref_typed is None else {t for t, _ in self._ref_typed}

    @classmethod
    def empty(
        cls, max_categories: int = DEFAULT_MAX_CATEGORIES, reference_categories: Iterable[Key] | None = None
    ) -> "CategoricalColumnProfile":
        """Profile of no rows.

        Parameters
        ----------
        max_categories
            Categories counted exactly (see :class:`CategoryCounts`).
        reference_categories
            The reference's categories; values outside them are counted in
            :attr:`unseen_count`.
        """
        return cls(0, 0, CategoryCounts.empty(max_categories), _check_reference(reference_categories), 0)

    def update(self, values: Any, null_count: int = 0, name: str | None = None) -> "CategoricalColumnProfile":
        """Profile a batch in place; returns ``self``.

        Parameters
        ----------
        values
            pyarrow or NumPy array (or sequence) of str, bytes, int or bool keys.
        null_count
            How many nulls the caller removed from this batch.
        name
            Column name used as a prefix in error messages.

        Raises
        ------
        SchemaError
            For float keys, mixed key types, or a key type other than the
            one already counted.
        """
        nulls = _check_null_count(null_count, name)
        key_type, keys, counts, found_nulls = count_categories(values, name)
        return self._add_counted(key_type, keys, counts, len(values), nulls, found_nulls, name)

    def _add_counted(
        self, key_type: str | None, keys: list, counts: np.ndarray, n_entries: int, nulls: int, found_nulls: int,
        name: str | None = None,
    ) -> "CategoricalColumnProfile":
        """Fold in one batch already counted by :func:`count_categories` (the GPU backend counts on the device).

        ``n_entries`` is the batch length, the ``found_nulls`` among them
        included; ``nulls`` were removed by the caller.
        """
        if self._ref_typed is not None and keys:
            ref = self._ref_typed
            key_type, keys = _as_reference_keys(key_type, keys, ref, self._ref_types)
            seen = np.fromiter(((key_type, k) in ref for k in keys), dtype=bool, count=len(keys))
            self.unseen_count += int(counts[~seen].sum())
            keys = [k for k, s_ in zip(keys, seen) if s_]
            counts = counts[seen]
        self.counts._add_counts(key_type, keys, counts, name)
        self.count += n_entries + nulls
        self.null_count += nulls + found_nulls
        return self

    # monoid ---------------------------------------------------------------
    def merge(self, other: "CategoricalColumnProfile") -> "CategoricalColumnProfile":
        """New profile of both inputs' rows; neither input changes.

        Raises
        ------
        IncompatibleSketchError
            If ``max_categories`` or the reference dictionaries differ; the
            message names both.
        """
        if not isinstance(other, CategoricalColumnProfile):
            raise TypeError(f"cannot merge CategoricalColumnProfile with {type(other).__name__}")
        if self._ref_typed != other._ref_typed:
            # A profile of no rows made like= a profile is the identity for that profile too
            # (Profile.empty_like(reference) + reference == reference).
            same_cap = other.counts.max_categories == self.counts.max_categories
            if same_cap and other._is_empty() and other._ref_typed == self._passed_on():
                return self.copy()
            if same_cap and self._is_empty() and self._ref_typed == other._passed_on():
                return other.copy()
            hint = ""
            if (self.reference_categories is None) != (other.reference_categories is None):
                hint = ("; one counts every category (profiled without like=, a reference), the other counts "
                        "categories outside its reference as unseen (profiled like= one): to add rows to a "
                        "reference, use reference.update(data), or profile every part like= the same reference")
            raise IncompatibleSketchError(
                "cannot merge categorical column profiles with different reference dictionaries: "
                f"{_describe_ref(self.reference_categories)} vs {_describe_ref(other.reference_categories)}{hint}"
            )
        return CategoricalColumnProfile(
            self.count + other.count,
            self.null_count + other.null_count,
            self.counts.merge(other.counts),
            self.reference_categories,
            self.unseen_count + other.unseen_count,
        )

    def __add__(self, other: "CategoricalColumnProfile") -> "CategoricalColumnProfile":
        return self.merge(other)

    def _passed_on(self) -> frozenset:
        """The dictionary a profile made ``like=`` this one gets: this one's, or its own categories."""
        return self._ref_typed if self._ref_typed is not None else _typed(self.counts.keys())

    def _is_empty(self) -> bool:
        return self.count == 0 and self.unseen_count == 0 and len(self.counts) == 0 and not self.counts.folded

    def copy(self) -> "CategoricalColumnProfile":
        """Independent copy."""
        return CategoricalColumnProfile(
            self.count, self.null_count, self.counts.copy(), self.reference_categories, self.unseen_count
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoricalColumnProfile):
            return NotImplemented
        return (self.count, self.null_count, self.unseen_count, self._ref_typed) == (
            other.count, other.null_count, other.unseen_count, other._ref_typed
        ) and self.counts == other.counts

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"CategoricalColumnProfile(count={self.count}, nulls={self.null_count}, categories={len(self.counts)}, "
            f"unseen={self.unseen_count}, reference={_describe_ref(self.reference_categories)})"
        )

    # serialization --------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned, CRC-checked bytes (kind ``"cudrift.column.categorical"``, version 1)."""
        ref = None
        if self.reference_categories is not None:
            pairs = sorted(self._ref_typed)  # type: ignore[arg-type]
            ref = {"types": [t for t, _ in pairs], "keys": [k for _, k in pairs]}
        meta = {
            "count": self.count,
            "null_count": self.null_count,
            "unseen_count": self.unseen_count,
            "reference": ref,
        }
        return _format.pack(CATEGORICAL_KIND, VERSION, meta, {"counts": _as_bytes_array(self.counts.to_bytes())})

    @classmethod
    def from_bytes(cls, data: bytes) -> "CategoricalColumnProfile":
        """Read bytes written by :meth:`to_bytes` (a window's, of cudrift's first versions, too).

        Raises
        ------
        FormatError
            If the bytes (or the nested counts) are truncated, corrupted,
            foreign or inconsistent, or are a window's of cudrift's first
            versions whose counts are estimates (profile it again).
        """
        _, meta, arrays = _format.unpack(data, CATEGORICAL_KIND, VERSION)
        try:
            count, null_count, unseen = _check_counts(meta, ("count", "null_count", "unseen_count"), CATEGORICAL_KIND)
            ref_meta = meta["reference"]
            raw = _nested_bytes(arrays, "counts", CATEGORICAL_KIND)
        except KeyError as exc:
            raise FormatError(f"corrupted {CATEGORICAL_KIND} bytes: missing {exc}") from None
        ref = None
        if ref_meta is not None:
            try:
                types, keys = ref_meta["types"], ref_meta["keys"]
                if not isinstance(types, list) or not isinstance(keys, list) or len(types) != len(keys):
                    raise TypeError("types and keys differ in length")
                if not all(isinstance(t, str) for t in types):
                    raise TypeError("key types must be strings")
            except (KeyError, TypeError) as exc:
                raise FormatError(f"corrupted {CATEGORICAL_KIND} bytes: bad reference: {exc}") from None
            for t in set(types):
                _decode_keys([k for tt, k in zip(types, keys) if tt == t], t, CATEGORICAL_KIND)
            ref = frozenset(keys)
        counts = CategoryCounts.from_bytes(raw)
        if ref is not None and unseen and count == counts.n + null_count and unseen <= counts.n:
            counts = _from_first_layout(counts, _typed(ref), unseen)
        # with a reference dictionary the unseen values are counted apart from ``counts``
        if count != counts.n + null_count + (unseen if ref is not None else 0) or (ref is None and unseen):
            raise FormatError(f"corrupted {CATEGORICAL_KIND} bytes: counts do not add up")
        return cls(count, null_count, counts, ref, unseen)


def _from_first_layout(counts: CategoryCounts, ref: frozenset, unseen: int) -> CategoryCounts:
    """A window's counts saved by cudrift's first versions, as counted since.

    Until 5d3fe0d (in the first two commits, 66fefa2 and 061cb4e) a window
    profiled like= a reference counted every category, the ``unseen`` values
    of categories new to the reference too, all in one table (``count ==
    counts.n + null_count``; since then ``counts`` holds the reference's
    categories only, and ``count == counts.n + null_count + unseen``, so the
    two layouts never read alike while ``unseen > 0``). Exact counts convert:
    the reference's categories keep theirs. Counts past ``max_categories``
    are estimates where the window must count its reference's categories
    exactly: those are refused, saying to profile the window again.
    """
    kept = {k: c for k, c in counts.items() if (_key_type(k), k) in ref}
    if not counts.is_exact or counts.n - sum(kept.values()) != unseen:
        raise FormatError(
            f"{CATEGORICAL_KIND} bytes in the layout of cudrift's first versions (commits 66fefa2, 061cb4e), "
            f"whose window counts held the {unseen} values of categories new to the reference too, past "
            f"max_categories={counts.max_categories} as estimates: profile the window again like= its reference"
        )
    return CategoryCounts(counts.max_categories, counts.key_type if kept else None, kept, counts.n - unseen, 0, 0)
