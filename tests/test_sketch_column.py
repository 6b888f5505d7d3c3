"""Column profiles: non-finite accounting, one sorted pass feeding every sketch, merge laws, bytes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cudrift.errors import FormatError, IncompatibleSketchError, SchemaError
from cudrift.sketches.categorical import CategoryCounts
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile
from cudrift.sketches.histogram import Histogram, equal_mass_edges
from cudrift.sketches.moments import Moments
from cudrift.sketches.quantiles import QuantileSketch
from cudrift.sketches.sample import Sample

EDGES = np.linspace(-3, 3, 13)


def numeric(values, null_count=0, edges=EDGES, **kw) -> NumericColumnProfile:
    return NumericColumnProfile.empty(edges=edges, quantile_k=16, sample_size=20, **kw).update(
        np.asarray(values), null_count=null_count
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_non_finite_counted_and_excluded(dtype, rng):
    finite = rng.standard_normal(1000).astype(dtype)
    x = np.r_[finite, [np.nan] * 3, [np.inf] * 2, [-np.inf] * 5].astype(dtype)
    x = rng.permutation(x)
    p = NumericColumnProfile.empty(edges=EDGES).update(x, null_count=4)
    assert (p.count, p.null_count, p.nan_count, p.posinf_count, p.neginf_count) == (1014, 4, 3, 2, 5)
    assert p.finite_count == 1000 and p.quantiles.n == 1000 and p.histogram.n == 1000
    assert p.sample.n_seen == 1000 and np.all(np.isfinite(p.sample.values))
    ref = finite.astype(np.float64)
    assert p.moments.mean == pytest.approx(ref.mean(), rel=1e-12, abs=1e-12)
    assert p.moments.variance == pytest.approx(ref.var(), rel=1e-11)
    np.testing.assert_array_equal(p.histogram.counts, Histogram.empty(EDGES).update(ref).counts)
    assert p.quantiles == QuantileSketch.empty(2048).update(ref)
    # The sample sees the finite values in their original order.
    assert p.sample == Sample.empty().update(x[np.isfinite(x)])
    assert p.dtype == np.dtype(dtype).name


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint32, np.bool_])
def test_integer_and_bool_inputs(dtype, rng):
    x = rng.integers(0, 2 if dtype is np.bool_ else 100, 5000).astype(dtype)
    p = NumericColumnProfile.empty(edges=[0.0, 0.5, 1.0, 50.0, 99.0]).update(x)
    ref = x.astype(np.float64)
    assert p.count == 5000 and p.nan_count == 0 and p.moments.count == 5000
    assert p.moments.mean == pytest.approx(ref.mean(), rel=1e-13)
    assert p.quantiles.normalized_rank_error == 0.0  # few distinct values stay exact
    assert p.quantiles.quantile(0.5) == np.quantile(ref, 0.5, method="inverted_cdf")
    assert p.dtype == np.dtype(dtype).name


def test_a_long_batch_is_summarized_in_pieces_of_max_batch_rows(rng, monkeypatch):
    """A batch past MAX_BATCH_ROWS is profiled as its consecutive pieces (the rows where the GPU path cuts units)."""
    from cudrift.sketches import column

    monkeypatch.setattr(column, "MAX_BATCH_ROWS", 100)
    x = rng.standard_normal(350)
    x[[5, 120, 340]] = [np.nan, np.inf, -np.inf]
    kept: list = []
    whole = NumericColumnProfile.empty(edges=EDGES, quantile_k=16, sample_size=20).update(
        x, null_count=7, sorted_out=kept)
    pieces = NumericColumnProfile.empty(edges=EDGES, quantile_k=16, sample_size=20)
    for a in range(0, 350, 100):
        pieces.update(x[a : a + 100], null_count=7 if a == 0 else 0)
    assert whole.quantiles.n_batches == 4 and whole == pieces
    assert whole.to_bytes() == pieces.to_bytes()
    assert (whole.count, whole.null_count, whole.nan_count, whole.posinf_count, whole.neginf_count) == (357, 7, 1, 1, 1)
    # every piece's sorted finite values, which together are the batch's
    assert [k.size for k in kept] == [99, 99, 100, 49]
    np.testing.assert_array_equal(np.sort(np.concatenate(kept)), np.sort(x[np.isfinite(x)]))
    # the sketch still bounds the exact ranks of the whole batch
    finite = np.sort(x[np.isfinite(x)])
    q = np.linspace(0, 1, 21)
    ranks = np.searchsorted(finite, whole.quantiles.quantile(q), side="right") / finite.size
    assert np.all(np.abs(ranks - q) <= whole.quantiles.normalized_rank_error + 1.0 / finite.size)


def test_only_non_finite_and_empty_batches():
    p = NumericColumnProfile.empty().update(np.array([np.nan, np.inf]), null_count=2)
    assert p.count == 4 and p.finite_count == 0 and p.quantiles.is_empty and p.histogram is None
    p.update(np.zeros(0, dtype=np.float32), null_count=1)
    assert p.count == 5 and p.null_count == 3


def test_bad_inputs():
    with pytest.raises(SchemaError, match="column 'x'.*numeric"):
        NumericColumnProfile.empty().update(np.array(["a"]), name="x")
    with pytest.raises(SchemaError, match="1-D"):
        NumericColumnProfile.empty().update(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="null_count"):
        NumericColumnProfile.empty().update(np.zeros(2), null_count=-1)


values_st = st.lists(
    st.one_of(st.floats(-5, 5, allow_nan=False), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0])), max_size=40
)


@settings(max_examples=60, deadline=None)
@given(a=values_st, b=values_st, c=values_st, na=st.integers(0, 3))
def test_merge_laws(a, b, c, na):
    pa_, pb, pc = numeric(a, na), numeric(b), numeric(c, 1)
    assert (pa_ + pb).to_bytes() == (pb + pa_).to_bytes()
    e = NumericColumnProfile.empty(edges=EDGES, quantile_k=16, sample_size=20)
    assert (pa_ + e) == pa_ == (e + pa_)
    left, right = (pa_ + pb) + pc, pa_ + (pb + pc)
    for f in ("count", "null_count", "nan_count", "posinf_count", "neginf_count", "histogram", "sample"):
        assert getattr(left, f) == getattr(right, f)
    assert left.moments.count == right.moments.count
    if left.moments.count:
        assert left.moments.mean == pytest.approx(right.moments.mean, abs=1e-12)
    # Matches one profile of the concatenation, except the sample, whose
    # global index restarts in every part.
    whole = numeric(a + b + c, na + 1)
    for f in ("count", "null_count", "nan_count", "posinf_count", "neginf_count", "histogram"):
        assert getattr(left, f) == getattr(whole, f)
    assert left.quantiles.n == whole.quantiles.n


def test_empty_without_edges_is_identity_for_profiles_with_edges(rng):
    p = numeric(rng.standard_normal(100))
    bare = NumericColumnProfile.empty(quantile_k=16, sample_size=20)
    assert (p + bare) == p == (bare + p)
    nonfinite_only = NumericColumnProfile.empty(quantile_k=16, sample_size=20).update(np.array([np.nan]))
    assert (p + nonfinite_only).histogram == p.histogram


def test_incompatible_merges_name_both_settings(rng):
    a = numeric(rng.standard_normal(10), edges=np.linspace(0, 9.9, 101))
    b = numeric(rng.standard_normal(10), edges=np.linspace(0, 5, 51))
    with pytest.raises(IncompatibleSketchError, match=r"101 edges \[0.0 .. 9.9\] vs 51 edges \[0.0 .. 5.0\]"):
        a + b
    no_edges = NumericColumnProfile.empty(quantile_k=16, sample_size=20).update(rng.standard_normal(5))
    with pytest.raises(IncompatibleSketchError, match=r"no edges vs 101 edges"):
        no_edges + a
    with pytest.raises(IncompatibleSketchError, match="k=16 vs k=32"):
        a + NumericColumnProfile.empty(edges=np.linspace(0, 9.9, 101), quantile_k=32, sample_size=20)
    with pytest.raises(IncompatibleSketchError, match="seed=0 vs size=20, seed=9"):
        a + NumericColumnProfile.empty(edges=np.linspace(0, 9.9, 101), quantile_k=16, sample_size=20, seed=9)


def test_with_edges_second_pass(rng):
    x = rng.standard_normal(10_000).astype(np.float32)
    p = NumericColumnProfile.empty().update(x)
    assert p.histogram is None
    edges = equal_mass_edges(p.quantiles, 10)
    q = p.with_edges(edges)
    assert p.histogram is None and q.histogram.n == 0 and q.quantiles == p.quantiles
    q.histogram.update_sorted(np.sort(x))
    assert q.histogram.n == 10_000 and np.all(np.abs(q.histogram.bin_counts - 1000) <= 1000 * 0.05)


def test_dtype_recording():
    p = NumericColumnProfile.empty().update(np.zeros(3, dtype=np.float32)).update(np.zeros(2))
    assert p.dtype == "float32"
    given_ = NumericColumnProfile.empty(dtype="double")
    assert given_.update(np.zeros(2, dtype=np.float32)).dtype == "double"
    a = NumericColumnProfile.empty(dtype="int64")
    b = NumericColumnProfile.empty(dtype="float64")
    assert (a + b).dtype == (b + a).dtype == "float64|int64"


def test_numeric_bytes_round_trip_and_errors(rng):
    for p in (
        numeric(np.r_[rng.standard_normal(500), np.nan, np.inf], null_count=3),
        NumericColumnProfile.empty(),
        NumericColumnProfile.empty(dtype="float32").update(rng.standard_normal(50).astype(np.float32)),
    ):
        back = NumericColumnProfile.from_bytes(p.to_bytes())
        assert back == p and back.to_bytes() == p.to_bytes()
    data = numeric(rng.standard_normal(100)).to_bytes()
    with pytest.raises(FormatError):
        NumericColumnProfile.from_bytes(data[:-50])
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x08
    with pytest.raises(FormatError):
        NumericColumnProfile.from_bytes(bytes(flipped))
    with pytest.raises(FormatError, match="cudrift.column.numeric"):
        NumericColumnProfile.from_bytes(CategoricalColumnProfile.empty().to_bytes())


# categorical -----------------------------------------------------------------


def test_categorical_counts_nulls_and_unseen():
    p = CategoricalColumnProfile.empty(reference_categories=frozenset({"a", "b"}))
    p.update(np.array(["a", "c", None, "c", "b"], dtype=object), null_count=2)
    p.update(pa.array(["d", None, "a"]))
    assert p.count == 10 and p.null_count == 4 and p.unseen_count == 3
    # profiled like a reference, only its categories are counted (exactly); the rest is unseen
    assert dict(p.counts.items()) == {"a": 2, "b": 1}


def test_unseen_respects_key_types():
    p = CategoricalColumnProfile.empty(reference_categories={1, 2})
    p.update(np.array([1, 2, 3, 1]))
    assert p.unseen_count == 1
    q = CategoricalColumnProfile.empty(reference_categories={True})
    q.update(np.array([1, 1, 3]))  # 0/1 codes are the booleans (a bool column that arrives as ints); 3 is not
    assert q.unseen_count == 1 and q.counts[True] == 2
    t = CategoricalColumnProfile.empty(reference_categories={"1", "x"})
    t.update(np.array([1, 1, 2]))  # against text, an integer is its text
    assert t.unseen_count == 1 and t.counts["1"] == 2


def test_unseen_is_exact_past_the_cap(rng):
    keys = rng.integers(0, 1000, 20_000)
    ref = set(range(500))
    p = CategoricalColumnProfile.empty(max_categories=10, reference_categories=ref).update(keys)
    assert not p.counts.is_exact
    assert p.unseen_count == int(np.sum(keys >= 500))


keys_st = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]) | st.none(), max_size=30)


@settings(max_examples=60, deadline=None)
@given(a=keys_st, b=keys_st, c=keys_st)
def test_categorical_merge_laws(a, b, c):
    ref = frozenset({"a", "b"})

    def of(keys):
        return CategoricalColumnProfile.empty(max_categories=3, reference_categories=ref).update(
            np.array(keys, dtype=object)
        )

    pa_, pb, pc = of(a), of(b), of(c)
    assert (pa_ + pb).to_bytes() == (pb + pa_).to_bytes()
    e = CategoricalColumnProfile.empty(max_categories=3, reference_categories=ref)
    assert (pa_ + e) == pa_ == (e + pa_)
    left, right = (pa_ + pb) + pc, pa_ + (pb + pc)
    whole = of(a + b + c)
    for p in (left, right):
        assert (p.count, p.null_count, p.unseen_count) == (whole.count, whole.null_count, whole.unseen_count)
        assert p.counts.n == whole.counts.n


def test_categorical_incompatible_merges():
    def counted(**kw):
        return CategoricalColumnProfile.empty(**kw).update(np.array(["a"], dtype=object))

    a = counted(reference_categories={"a", "b"})
    b = counted(reference_categories={"a"})
    with pytest.raises(IncompatibleSketchError, match=r"2 categories \['a', 'b'\] vs 1 categories \['a'\]"):
        a + b
    with pytest.raises(IncompatibleSketchError, match="vs no reference dictionary.*reference.update"):
        a + counted()
    with pytest.raises(IncompatibleSketchError, match="max_categories=5 vs max_categories=10000"):
        CategoricalColumnProfile.empty(max_categories=5) + CategoricalColumnProfile.empty()


def test_an_empty_profile_made_like_a_profile_is_its_identity():
    """``empty_like(reference) + reference == reference``, though the empty one carries the dictionary."""
    ref = CategoricalColumnProfile.empty().update(np.array(["a", "b", "a", None], dtype=object))
    empty = CategoricalColumnProfile.empty(reference_categories={"a", "b"})  # what empty_like(ref) holds
    assert ref + empty == ref and empty + ref == ref
    assert (empty + ref).reference_categories is None
    # any other dictionary still refuses: an empty profile is no wildcard
    for other in ({"a"}, {"a", "b", "c"}):
        with pytest.raises(IncompatibleSketchError, match="different reference dictionaries"):
            ref + CategoricalColumnProfile.empty(reference_categories=other)
    window = CategoricalColumnProfile.empty(reference_categories={"a"}).update(np.array(["a", "z"], dtype=object))
    with pytest.raises(IncompatibleSketchError):
        window + CategoricalColumnProfile.empty()


def test_categorical_mixed_types_name_column():
    p = CategoricalColumnProfile.empty()
    with pytest.raises(SchemaError, match="column 'city': mixed category key types in one column: int, str"):
        p.update(np.array(["x", 3], dtype=object), name="city")
    assert p.count == 0


def test_categorical_bytes_round_trip_and_errors():
    for ref in (None, frozenset({"x", "y"}), frozenset({1, 2}), frozenset({True})):
        p = CategoricalColumnProfile.empty(max_categories=4, reference_categories=ref)
        p.update(np.array(["x", "z", None], dtype=object) if ref is None or "x" in ref else np.array([1, 5]))
        back = CategoricalColumnProfile.from_bytes(p.to_bytes())
        assert back == p and back.to_bytes() == p.to_bytes()
        assert back.reference_categories == p.reference_categories
    data = p.to_bytes()
    with pytest.raises(FormatError):
        CategoricalColumnProfile.from_bytes(data[:-2])
    with pytest.raises(FormatError, match="cudrift.column.categorical"):
        CategoricalColumnProfile.from_bytes(CategoryCounts.empty().to_bytes())
    with pytest.raises(FormatError):
        CategoricalColumnProfile.from_bytes(Moments.empty().to_bytes())


def _first_layout(window: CategoricalColumnProfile, all_keys: list) -> CategoricalColumnProfile:
    """A window column as cudrift's first two commits (66fefa2, 061cb4e) held it: its counts had every
    category, the unseen ones too, so count == counts.n + null_count (saved as the same kind and version)."""
    counts = CategoryCounts.empty(window.counts.max_categories).update(np.array(all_keys, dtype=object))
    return CategoricalColumnProfile(window.count, window.null_count, counts, window.reference_categories,
                                    window.unseen_count)


def test_window_columns_saved_by_the_first_versions_load(rng):
    """Window bytes of 66fefa2 and 061cb4e failed with 'counts do not add up' (counts.n changed meaning in
    5d3fe0d, same version). Exact ones read as the window counted since; estimated ones (past max_categories)
    are refused by a message naming the old layout and saying to profile the window again."""
    keys = rng.choice(np.array(["a", "b", "c", "new", "other"], dtype=object), 500).tolist() + [None] * 7
    for ref in (frozenset({"a", "b", "c"}), frozenset({"a", "b", "c", "new", "other"}), frozenset({"zz"})):
        now = CategoricalColumnProfile.empty(max_categories=10, reference_categories=ref)
        now.update(np.array(keys, dtype=object), null_count=3)
        back = CategoricalColumnProfile.from_bytes(_first_layout(now, [k for k in keys if k is not None]).to_bytes())
        assert back == now and back.to_bytes() == now.to_bytes()
        assert dict(back.counts.items()) == {k: keys.count(k) for k in ref if k in keys}
        assert back.unseen_count == sum(k not in ref for k in keys if k is not None)
    ints = CategoricalColumnProfile.empty(reference_categories={0, 1}).update(np.array([0, 1, 1, 5, 6]))
    assert CategoricalColumnProfile.from_bytes(_first_layout(ints, [0, 1, 1, 5, 6]).to_bytes()) == ints

    big = CategoricalColumnProfile.empty(max_categories=3, reference_categories={"a", "b", "c"})
    big.update(np.array(keys, dtype=object))
    old = _first_layout(big, [k for k in keys if k is not None])
    with pytest.raises(FormatError, match=r"first versions \(commits 66fefa2, 061cb4e\).*profile the window again"):
        CategoricalColumnProfile.from_bytes(old.to_bytes())

    import cudrift
    from cudrift import Profile

    reference = cudrift.profile({"s": np.array(list("abc") * 20, dtype=object)}, config=cudrift.ProfileConfig(
        max_categories=3))
    window = cudrift.profile({"s": np.array(keys, dtype=object)}, like=reference)
    p = Profile(dict(window.columns), dict(window.kinds), dict(window.dtypes), window.n_rows, window.config)
    p.columns["s"] = old
    with pytest.raises(FormatError, match=r"^column 's': .*first versions"):
        Profile.from_bytes(p.to_bytes())


def test_every_numeric_column_the_library_writes_has_sketches_of_its_finite_values(rng):
    """What ``NumericColumnProfile.from_bytes`` holds a column to: its histogram's total (where it has one), its
    sample's ``n_seen`` and its quantiles' ``n`` are its finite count, in every profile cudrift writes."""
    import cudrift
    from cudrift import Profile

    def data(n):
        x = rng.normal(size=n)
        x[rng.random(n) < 0.2] = np.nan
        x[rng.random(n) < 0.1] = np.inf * rng.choice([-1.0, 1.0])
        return {"x": x, "nan": np.full(n, np.nan), "inf": np.where(rng.random(n) < 0.5, np.inf, -np.inf),
                "i": rng.integers(-5, 1000, n), "f32": rng.normal(size=n).astype(np.float32),
                "b": rng.random(n) < 0.3, "c": rng.choice(["a", "b"], n)}

    ref = cudrift.profile(data(400))
    w1, w2 = cudrift.profile(data(300), like=ref), cudrift.profile(data(40), like=ref)
    skipped = Profile.empty_like(ref, skip=1000)
    grown = Profile.empty_like(ref, skip=10).update(data(60)).update(data(25))
    only_nan = cudrift.profile({"x": np.full(20, np.nan)})
    profiles = [ref, w1, w2, w1.merge(w2), ref.merge(ref), Profile.empty_like(ref), skipped, grown,
                w1.merge(grown), only_nan, cudrift.profile({"x": rng.normal(size=20)}, like=only_nan)]
    for prof in profiles:
        for name, col in prof.columns.items():
            if isinstance(col, NumericColumnProfile):
                totals = {col.quantiles.n, col.sample.n_seen} | ({col.histogram.n} if col.histogram else set())
                assert totals == {col.finite_count}, name
        assert Profile.from_bytes(prof.to_bytes()).to_bytes() == prof.to_bytes()
    assert grown.columns["x"].sample.n_seen == grown.columns["x"].finite_count > 0  # n_seen: offered, not skipped


def test_a_column_whose_sketches_disagree_with_its_counts_is_refused(rng):
    """A valid CRC around sketches of other values than the column counted (a writer's bug, a crafted or
    spliced file) loaded and gave wrong results: a FormatError names the field and both numbers."""
    from cudrift.sketches import _format

    col = numeric(np.r_[rng.standard_normal(50), np.nan], null_count=2)
    other = numeric(rng.standard_normal(7))
    _, meta, arrays = _format.unpack(col.to_bytes(), "cudrift.column.numeric", 1)

    def load(**changed):
        return NumericColumnProfile.from_bytes(_format.pack("cudrift.column.numeric", 1, meta, {**arrays, **changed}))

    assert load() == col
    for name, sketch in (("sample", other.sample), ("histogram", other.histogram), ("quantiles", other.quantiles)):
        with pytest.raises(FormatError, match=rf"{name} (n_seen|total|n) is 7, the column has 50 finite values"):
            load(**{name: np.frombuffer(sketch.to_bytes(), dtype=np.uint8)})
    with pytest.raises(FormatError, match="count 53 is not nulls, NaN and infinities"):
        load(moments=np.frombuffer(other.moments.to_bytes(), dtype=np.uint8))
    # a column without a histogram holds no total to compare
    bare = NumericColumnProfile.empty(quantile_k=16, sample_size=20).update(rng.standard_normal(9))
    assert NumericColumnProfile.from_bytes(bare.to_bytes()) == bare


@pytest.mark.parametrize("cls", [NumericColumnProfile, CategoricalColumnProfile], ids=lambda c: c.__name__)
def test_column_counts_past_int64_and_nested_sketches_not_bytes_are_refused(cls, rng):
    from cudrift.sketches import _format

    col = numeric(rng.standard_normal(5)) if cls is NumericColumnProfile else CategoricalColumnProfile.empty().update(
        np.array(["a", "b"], dtype=object))
    kind = "cudrift.column.numeric" if cls is NumericColumnProfile else "cudrift.column.categorical"
    _, meta, arrays = _format.unpack(col.to_bytes(), kind, 1)
    big = {k: meta[k] + 2**63 for k in ("count", "null_count")}  # they still add up
    with pytest.raises(FormatError, match=r"bad count 92233720368547758\d\d \(expected an integer in \[0, 2\*\*63\)\)"):
        cls.from_bytes(_format.pack(kind, 1, {**meta, **big}, arrays))
    name = next(iter(arrays))
    for bad in (arrays[name][None], arrays[name].astype(np.int64)):
        with pytest.raises(FormatError, match=f"{name} is a"):
            cls.from_bytes(_format.pack(kind, 1, meta, {**arrays, name: bad}))


def test_a_reference_dictionary_of_two_key_types_is_refused():
    """Counts hold one key type: {'a', 1} was accepted, and the first update of the other type failed."""
    with pytest.raises(ValueError, match=r"reference_categories: keys of types \['int', 'str'\]"):
        CategoricalColumnProfile.empty(reference_categories={"a", 1})
    assert CategoricalColumnProfile.empty(reference_categories={True, False}).reference_categories == {True, False}
