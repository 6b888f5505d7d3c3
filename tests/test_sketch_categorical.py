"""CategoryCounts: exact counting, input kinds, Misra–Gries bound, merge laws, typed keys in bytes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cudrift.errors import FormatError, IncompatibleSketchError, SchemaError
from cudrift.sketches.categorical import CategoryCounts


def of(keys, cap=10_000) -> CategoryCounts:
    return CategoryCounts.empty(cap).update(np.array(keys, dtype=object))


def assert_mg_bound(c: CategoryCounts, truth: Counter) -> None:
    """Misra–Gries: lower estimates, undercount at most max_count_error <= folded / (cap + 1)."""
    assert c.n == sum(truth.values())
    assert sum(c[k] for k in c.keys()) + c.folded == c.n
    assert c.max_count_error <= c.folded / (c.max_categories + 1) + 1e-9
    assert len(c) <= c.max_categories
    for key, true in truth.items():
        est = c[key]
        assert true - c.max_count_error <= est <= true
        lo, hi = c.bounds(key)
        assert lo <= true <= hi
    for key in c.keys():
        assert key in truth


str_keys = st.lists(st.sampled_from(list("abcdefghij")) | st.text(max_size=3), max_size=60)
int_keys = st.lists(st.integers(-5, 30) | st.integers(-(2**63), 2**64 - 1), max_size=60)


@settings(max_examples=80, deadline=None)
@given(keys=str_keys | int_keys)
def test_exact_counts(keys):
    c = of(keys)
    assert dict(c.items()) == dict(Counter(keys))
    assert c.is_exact and c.n == len(keys)


@pytest.mark.parametrize(
    "values, expected",
    [
        (np.array(["a", "b", "a"]), {"a": 2, "b": 1}),
        (np.array([b"a", b"b", b"a"]), {"a": 2, "b": 1}),
        (np.array(["a", b"a", None, np.nan], dtype=object), {"a": 2}),
        (np.array([3, 1, 3], dtype=np.int64), {1: 1, 3: 2}),
        (np.array([3, 1, 3], dtype=np.uint8), {1: 1, 3: 2}),
        (np.array([True, False, True]), {False: 1, True: 2}),
        (np.array([True, None, True], dtype=object), {True: 2}),
        (pa.array(["x", None, "y", "x"]), {"x": 2, "y": 1}),
        (pa.array(["x", "y", "x"]).dictionary_encode(), {"x": 2, "y": 1}),
        (pa.chunked_array([["x"], ["x", "z"]]), {"x": 2, "z": 1}),
        (pa.array([b"\xc3\xa9", b"e"]), {"é": 1, "e": 1}),
        (pa.array([5, 5, None], type=pa.int16()), {5: 2}),
        (pa.array([2**64 - 1], type=pa.uint64()), {2**64 - 1: 1}),
        (["p", "q", "p"], {"p": 2, "q": 1}),
        (np.array(["\ud800", "a", "a"]), {"\ud800": 1, "a": 2}),  # lone surrogate: Arrow cannot hold it
        (np.array([2**70, 2**70, 1], dtype=object), {2**70: 2, 1: 1}),  # beyond 64 bits
    ],
)
def test_input_kinds(values, expected):
    c = CategoryCounts.empty().update(values)
    assert dict(c.items()) == expected
    for k in expected:
        assert type(k) is type(c.keys()[c.keys().index(k)])


@pytest.mark.parametrize(
    "values, types",
    [
        ([1, "a"], "int, str"),
        ([True, 2], "bool, int"),
        (["x", 1.5], "float, str"),
    ],
)
def test_mixed_types_raise_naming_the_types(values, types):
    with pytest.raises(SchemaError, match=types):
        CategoryCounts.empty().update(np.array(values, dtype=object))
    with pytest.raises(SchemaError, match=f"column 'city': .*{types}"):
        CategoryCounts.empty().update(np.array(values, dtype=object), name="city")


def test_unsupported_types():
    with pytest.raises(SchemaError, match="float"):
        CategoryCounts.empty().update(np.array([1.5, 2.5]))
    with pytest.raises(SchemaError, match="float"):
        CategoryCounts.empty().update(np.array([1.5, 2.5], dtype=object))
    with pytest.raises(SchemaError, match="UTF-8"):
        CategoryCounts.empty().update(pa.array([b"\xff"]))
    c = of(["a"])
    with pytest.raises(SchemaError, match="str vs int"):
        c.update(np.array([1, 2]))
    assert dict(c.items()) == {"a": 1}
    with pytest.raises(SchemaError, match="str vs int"):
        c + of([1])


def test_true_and_one_stay_distinct():
    ints, bools, strs = of([1, 1]), of([True]), of(["1"])
    assert ints[1] == 2 and ints[True] == 0 and True not in ints
    assert bools[True] == 1 and bools[1] == 0
    for c in (ints, bools, strs):
        back = CategoryCounts.from_bytes(c.to_bytes())
        assert back == c and [type(k) for k in back.keys()] == [type(k) for k in c.keys()]


@settings(max_examples=60, deadline=None)
@given(a=str_keys, b=str_keys, c=str_keys, cap=st.integers(1, 6))
def test_merge_laws_and_misra_gries_bound(a, b, c, cap):
    ca, cb, cc = of(a, cap), of(b, cap), of(c, cap)
    truth = Counter(a + b + c)
    assert (ca + cb).to_bytes() == (cb + ca).to_bytes()
    e = CategoryCounts.empty(cap)
    assert (ca + e) == ca == (e + ca)
    left, right = (ca + cb) + cc, ca + (cb + cc)
    assert_mg_bound(left, truth)
    assert_mg_bound(right, truth)
    streamed = CategoryCounts.empty(cap)
    for part in (a, b, c):
        streamed.update(np.array(part, dtype=object))
    assert_mg_bound(streamed, truth)
    if len(truth) <= cap:
        assert left == right == of(a + b + c, cap)
        assert left.is_exact


def test_heavy_hitters_survive_a_long_tail(rng):
    cap = 50
    heavy = rng.choice(10, 200_000)  # ten frequent keys
    tail = rng.integers(1_000, 1_000_000, 300_000)  # many rare keys
    keys = rng.permutation(np.r_[heavy, tail])
    c = CategoryCounts.empty(cap)
    for part in np.array_split(keys, 20):
        c.update(part)
    truth = Counter(keys.tolist())
    assert not c.is_exact and c.folded > 0
    assert_mg_bound(c, truth)
    top = {k for k, _ in c.most_common(10)}
    assert top == set(range(10))


def test_incompatible_cap_names_both():
    with pytest.raises(IncompatibleSketchError, match="max_categories=10 vs max_categories=20"):
        CategoryCounts.empty(10).merge(CategoryCounts.empty(20))


def test_empty():
    c = CategoryCounts.empty()
    assert c.n == 0 and c.folded == 0 and c.max_count_error == 0 and c.key_type is None and len(c) == 0
    assert c["anything"] == 0 and c.keys() == []
    assert c.update(np.array([], dtype=object)) == CategoryCounts.empty()
    assert c.update(np.array([None, None], dtype=object)).n == 0
    with pytest.raises(ValueError, match="max_categories"):
        CategoryCounts.empty(0)


def test_bytes_round_trip_and_errors(rng):
    c = CategoryCounts.empty(5).update(rng.integers(0, 20, 1000))
    back = CategoryCounts.from_bytes(c.to_bytes())
    assert back == c and back.to_bytes() == c.to_bytes()
    odd = of(["\ud800", "é", "", "a\x00b"])  # a lone surrogate, unicode, empty, NUL
    assert CategoryCounts.from_bytes(odd.to_bytes()) == odd
    data = c.to_bytes()
    with pytest.raises(FormatError):
        CategoryCounts.from_bytes(data[:-1])
    flipped = bytearray(data)
    flipped[30] ^= 0x01
    with pytest.raises(FormatError):
        CategoryCounts.from_bytes(bytes(flipped))
    from cudrift.sketches.moments import Moments

    with pytest.raises(FormatError, match="cudrift.categories"):
        CategoryCounts.from_bytes(Moments.empty().to_bytes())


def assert_bounds_hold(c: CategoryCounts, truth: Counter) -> None:
    """Every key's ``bounds`` contain its true count, held or not; the folded mass adds up."""
    assert c.n == sum(truth.values()) and sum(c[k] for k in c.keys()) + c.folded == c.n
    for key, true in truth.items():
        lo, hi = c.bounds(key)
        assert lo <= true <= hi, (key, true, lo, hi, c)


def _reference_counts(keys: list, cap: int) -> CategoryCounts:
    """The counts of a reference profile: its heavy-hitters pass recounted exactly."""
    import cudrift
    from cudrift import ProfileConfig, Schema

    return cudrift.profile({"c": np.array(keys, dtype=object)}, config=ProfileConfig(max_categories=cap),
                           schema=Schema(categorical=["c"]))["c"].counts


def test_bounds_of_a_recounted_reference_cover_the_keys_it_folded(rng):
    """The reference's second pass counts its dictionary exactly and stored error 0: bounds('c') was (0, 0)
    for a key of 5 rows it had folded. A key not held may have up to folded; held keys stay exact."""
    c = _reference_counts(list("abc") * 5, cap=2)
    assert c.bounds("a") == (5, 5) and c.bounds("b") == (5, 5) and c.bounds("c") == (0, 5)
    assert c.max_count_error == 0 and c.folded == 5 and not c.is_exact
    for n_keys, cap in ((80, 40), (300, 25), (12, 11)):
        p = 1 / np.arange(1, n_keys + 1)
        keys = rng.choice(n_keys, 3000, p=p / p.sum()).tolist()
        for data in (keys, [f"k{k}" for k in keys]):
            c = _reference_counts(data, cap)
            truth = Counter(data)
            assert c.max_count_error == 0 and len(c) == min(cap, len(truth))
            assert all(c[k] == truth[k] for k in c.keys())  # held: exact
            assert_bounds_hold(c, truth)
            back = CategoryCounts.from_bytes(c.to_bytes())
            assert back == c and back.bounds(data[0]) == c.bounds(data[0])


@settings(max_examples=60, deadline=None)
@given(a=str_keys.filter(bool), b=str_keys.filter(bool), c=str_keys, cap=st.integers(1, 6), recount_b=st.booleans())
def test_bounds_hold_through_merges_with_recounted_counts(a, b, c, cap, recount_b):
    """Recounted counts merged with recounted or one-pass counts, reduced or not, then updated: every key's
    bounds contain its true count; a merge that stays exact keeps the error at 0 (Profile.merge accepts it)."""
    ra = _reference_counts(a, cap)
    rb = _reference_counts(b, cap) if recount_b else of(b, cap)
    merged = ra + rb
    assert merged.to_bytes() == (rb + ra).to_bytes()
    assert_bounds_hold(merged, Counter(a + b))
    if not merged.max_count_error:
        assert all(merged[k] == Counter(a + b)[k] for k in merged.keys())
    merged.update(np.array(c, dtype=object))
    assert_bounds_hold(merged, Counter(a + b + c))
    assert_bounds_hold(merged + of(c, cap), Counter(a + b + c + c))
