"""QuantileSketch: the CdfBounds guarantee on adversarial data, merge laws, queries, bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cudrift.errors import FormatError, IncompatibleSketchError
from cudrift.sketches.quantiles import QuantileSketch, worst_case_rank_error


def assert_bounds_hold(sketch: QuantileSketch, data: np.ndarray) -> None:
    """The sketch's CdfBounds must contain the true F(x) = #{data <= x} for every x.

    F is a nondecreasing step function, so it is enough to check, on every
    interval [v_i, v_{i+1}), F at its left end (the smallest value there) and
    F just below its right end (the largest), plus every data point.
    """
    x = np.sort(np.asarray(data, dtype=np.float64))
    n = x.size
    b = sketch.cdf_bounds()
    assert b.n == n == sketch.n
    if n == 0:
        assert b.values.size == 0
        return
    v, lo, hi = b.values, b.lo, b.hi
    assert v.dtype == np.float64 and lo.dtype == np.int64 and hi.dtype == np.int64
    assert np.all(v[1:] > v[:-1]), "support points must be strictly increasing"
    assert v[0] == x[0] and v[-1] == x[-1], "min and max must be exact"
    assert np.all(lo <= hi) and np.all(lo[1:] >= lo[:-1]) and np.all(hi[1:] >= hi[:-1])
    assert lo[-1] == hi[-1] == n
    f_left = np.searchsorted(x, v, side="right")  # F(v_i)
    f_right = np.r_[np.searchsorted(x, v[1:], side="left"), n]  # F just below v_{i+1}
    assert np.all(lo <= f_left), "lower bound violated at a support point"
    assert np.all(f_right <= hi), "upper bound violated just below the next support point"
    f_data = np.searchsorted(x, x, side="right")
    blo, bhi = b.evaluate(x)
    assert np.all(blo <= f_data) and np.all(f_data <= bhi)
    with np.errstate(over="ignore"):
        below = b.evaluate(np.array([np.nextafter(x[0], -np.inf)]))
    assert below[0][0] == 0 and below[1][0] == 0
    reported = sketch.normalized_rank_error
    assert reported == pytest.approx(float(np.max(hi - lo)) / (2 * n), abs=0, rel=0)
    assert reported <= worst_case_rank_error(sketch.k, sketch.n_batches) + 1e-15


def assert_queries_within_bound(sketch: QuantileSketch, data: np.ndarray) -> None:
    x = np.sort(np.asarray(data, dtype=np.float64))
    n = x.size
    eps = sketch.normalized_rank_error
    q = np.linspace(0.0, 1.0, 41)
    vals = sketch.quantile(q)
    f = np.searchsorted(x, vals, side="right")
    g = np.searchsorted(x, vals, side="left")
    # F(v) >= (q - eps) n and #{x < v} < (q + eps) n, up to float rounding of q*n.
    assert np.all(f >= (q - eps) * n - 1e-9 * n)
    assert np.all(g < (q + eps) * n + 1e-9 * n + 1e-12)
    with np.errstate(over="ignore"):
        probes = np.r_[x, x[:-1] / 2 + x[1:] / 2, x[0] - 1.0, x[-1] + 1.0]
    est = sketch.rank(probes)
    true = np.searchsorted(x, probes, side="right") / n
    assert np.all(np.abs(est - true) <= eps + 1e-12)
    assert sketch.min == x[0] and sketch.max == x[-1]


def build(batches: list[np.ndarray], k: int, sorted_path: bool = False) -> QuantileSketch:
    s = QuantileSketch.empty(k)
    for b in batches:
        if sorted_path:
            s.update_sorted(np.sort(b))
        else:
            s.update(b)
    return s


# Few distinct values (many ties), wide magnitudes, both zeros.
tie_values = st.sampled_from([-3.5, -1.0, -0.0, 0.0, 0.25, 1.0, 2.0, 1e300, -1e-300, 7.0])
any_finite = st.floats(allow_nan=False, allow_infinity=False)
batch_st = st.lists(st.one_of(tie_values, any_finite), min_size=0, max_size=60)
batches_st = st.lists(batch_st, min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(batches=batches_st, k=st.integers(2, 12), sorted_path=st.booleans())
def test_bounds_hold_on_adversarial_batches(batches, k, sorted_path):
    arrays = [np.array(b, dtype=np.float64) for b in batches]
    s = build(arrays, k, sorted_path)
    data = np.concatenate(arrays)
    assert_bounds_hold(s, data)
    if data.size:
        assert_queries_within_bound(s, data)


@settings(max_examples=150, deadline=None)
@given(batches=batches_st, k=st.integers(2, 10), order_seed=st.integers(0, 2**32 - 1))
def test_bounds_hold_for_random_merge_trees(batches, k, order_seed):
    rng = np.random.default_rng(order_seed)
    sketches = [QuantileSketch.empty(k).update(np.array(b, dtype=np.float64)) for b in batches]
    data = np.concatenate([np.array(b, dtype=np.float64) for b in batches])
    while len(sketches) > 1:
        i, j = sorted(rng.choice(len(sketches), size=2, replace=False))
        merged = sketches[i] + sketches[j]
        sketches = [s for t, s in enumerate(sketches) if t not in (i, j)] + [merged]
    assert_bounds_hold(sketches[0], data)


@pytest.mark.parametrize(
    "kind", ["sorted", "reverse", "constant", "two_values", "heavy_dup", "normal32", "integers", "tiny_batches"]
)
def test_bounds_hold_on_structured_streams(kind, rng):
    n = 30_000
    if kind == "sorted":
        data = np.arange(n, dtype=np.float64)
    elif kind == "reverse":
        data = np.arange(n, 0, -1, dtype=np.float64)
    elif kind == "constant":
        data = np.full(n, 3.25)
    elif kind == "two_values":
        data = np.where(rng.random(n) < 0.001, 1.0, 0.0)
    elif kind == "heavy_dup":
        data = np.r_[np.zeros(n // 2), rng.standard_normal(n // 2)]
    elif kind == "normal32":
        data = rng.standard_normal(n).astype(np.float32)
    elif kind == "integers":
        data = rng.integers(0, 5000, n).astype(np.float64)
    else:
        data = rng.standard_normal(n)
    size = 7 if kind == "tiny_batches" else 1000
    batches = [data[i : i + size] for i in range(0, n, size)]
    s = QuantileSketch.empty(32)
    for b in batches:
        s.update(b)
    assert_bounds_hold(s, data)
    assert_queries_within_bound(s, data)
    assert s.num_levels <= int(len(batches)).bit_length()


def test_many_batches_stay_logarithmic_and_within_worst_case(rng):
    k = 16
    s = QuantileSketch.empty(k)
    chunks = []
    for _ in range(1500):
        b = rng.standard_normal(int(rng.integers(1, 200))) * rng.choice([1.0, 1e6])
        chunks.append(b)
        s.update(b)
    data = np.concatenate(chunks)
    assert_bounds_hold(s, data)
    assert s.num_levels <= 1500 .bit_length()
    assert s.normalized_rank_error <= worst_case_rank_error(k, 1500)


def test_float32_input_matches_float64_of_same_values(rng):
    x = rng.standard_normal(50_000).astype(np.float32)
    a = QuantileSketch.empty(64).update(x)
    b = QuantileSketch.empty(64).update(x.astype(np.float64))
    assert a.to_bytes() == b.to_bytes()
    assert_bounds_hold(a, x)


def test_exact_while_small_and_matches_numpy_quantiles(rng):
    x = rng.integers(-50, 50, 3000).astype(np.float64)
    s = QuantileSketch.empty(256)
    for part in np.array_split(x, 7):
        s.update(part)
    assert s.normalized_rank_error == 0.0 and s.cdf_bounds().is_exact
    q = np.linspace(0, 1, 101)
    np.testing.assert_array_equal(s.quantile(q), np.quantile(x, q, method="inverted_cdf"))
    # Low-cardinality batches larger than k stay exact too.
    big = QuantileSketch.empty(256).update(rng.integers(0, 100, 100_000))
    assert big.normalized_rank_error == 0.0


def test_large_batch_error_is_below_one_over_2k(rng):
    x = rng.standard_normal(200_000)
    s = QuantileSketch.from_sorted(np.sort(x), k=128)
    assert 0 < s.normalized_rank_error <= 1 / 256
    assert s.num_retained <= 129
    assert_bounds_hold(s, x)


@settings(max_examples=80, deadline=None)
@given(a=batches_st, b=batches_st, k=st.integers(2, 10))
def test_merge_commutative_to_the_byte_and_empty_identity(a, b, k):
    sa = build([np.array(x, dtype=np.float64) for x in a], k)
    sb = build([np.array(x, dtype=np.float64) for x in b], k)
    assert (sa + sb).to_bytes() == (sb + sa).to_bytes()
    e = QuantileSketch.empty(k)
    assert (sa + e).to_bytes() == sa.to_bytes() == (e + sa).to_bytes()
    before = sa.to_bytes()
    sa.merge(sb)
    assert sa.to_bytes() == before, "merge must not mutate its inputs"


@settings(max_examples=80, deadline=None)
@given(a=batches_st, b=batches_st, c=batches_st, k=st.integers(2, 10))
def test_merge_associative_within_reported_bounds(a, b, c, k):
    parts = [[np.array(x, dtype=np.float64) for x in p] for p in (a, b, c)]
    sa, sb, sc = (build(p, k) for p in parts)
    left, right = (sa + sb) + sc, sa + (sb + sc)
    data = np.concatenate([np.concatenate(p) for p in parts])
    assert_bounds_hold(left, data)
    assert_bounds_hold(right, data)
    if left.normalized_rank_error == 0.0 and right.normalized_rank_error == 0.0:
        b1, b2 = left.cdf_bounds(), right.cdf_bounds()
        np.testing.assert_array_equal(b1.values, b2.values)
        np.testing.assert_array_equal(b1.lo, b2.lo)


def test_merged_sketch_matches_concatenation_within_error(rng):
    parts = [rng.gamma(2.0, size=int(rng.integers(500, 20_000))) for _ in range(9)]
    merged = QuantileSketch.empty(64)
    for p in parts:
        merged = merged + QuantileSketch.empty(64).update(p)
    whole = QuantileSketch.empty(64).update(np.concatenate(parts))
    data = np.concatenate(parts)
    assert_bounds_hold(merged, data)
    q = np.linspace(0, 1, 21)
    x = np.sort(data)
    rank_m = np.searchsorted(x, merged.quantile(q), side="right") / x.size
    rank_w = np.searchsorted(x, whole.quantile(q), side="right") / x.size
    tol = merged.normalized_rank_error + whole.normalized_rank_error + 2 / x.size
    assert np.all(np.abs(rank_m - rank_w) <= tol + 1e-12)


def test_incompatible_k_names_both():
    with pytest.raises(IncompatibleSketchError, match=r"k=2048 vs k=1024"):
        QuantileSketch.empty(2048).merge(QuantileSketch.empty(1024))


def test_empty_queries():
    s = QuantileSketch.empty()
    assert s.n == 0 and s.is_empty and s.normalized_rank_error == 0.0
    assert np.isnan(s.quantile(0.5)) and np.isnan(s.min) and np.isnan(s.max) and np.isnan(s.rank(1.0))
    assert np.all(np.isnan(s.quantile([0.1, 0.9])))
    assert s.update(np.zeros(0)).n_batches == 0


def test_query_validation_and_shapes(rng):
    s = QuantileSketch.empty(32).update(rng.standard_normal(1000))
    with pytest.raises(ValueError, match="1.5"):
        s.quantile(1.5)
    with pytest.raises(ValueError, match="nan"):
        s.quantile([0.5, np.nan])
    assert isinstance(s.quantile(0.5), float)
    assert s.quantile(np.zeros((2, 3))).shape == (2, 3)
    assert s.quantile(0.0) == s.min and s.quantile(1.0) == s.max
    assert s.rank(s.max) == 1.0 and s.rank(s.min - 1) == 0.0 and np.isnan(s.rank(np.nan))
    assert s.cdf(0.0) == s.rank(0.0)


def test_input_validation():
    with pytest.raises(ValueError, match="finite"):
        QuantileSketch.empty().update(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="finite"):
        QuantileSketch.empty().update_sorted(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="not sorted"):
        QuantileSketch.empty().update_sorted(np.array([2.0, 1.0]))
    with pytest.raises(ValueError, match="k"):
        QuantileSketch.empty(1)


@settings(max_examples=40, deadline=None)
@given(batches=batches_st, k=st.integers(2, 10))
def test_bytes_round_trip(batches, k):
    s = build([np.array(b, dtype=np.float64) for b in batches], k)
    back = QuantileSketch.from_bytes(s.to_bytes())
    assert back == s and back.to_bytes() == s.to_bytes()
    assert back.normalized_rank_error == s.normalized_rank_error


def test_from_bytes_rejects_bad_input(rng):
    data = QuantileSketch.empty(16).update(rng.standard_normal(500)).to_bytes()
    with pytest.raises(FormatError):
        QuantileSketch.from_bytes(data[:-9])
    corrupted = bytearray(data)
    corrupted[len(data) // 2] ^= 0xFF
    with pytest.raises(FormatError):
        QuantileSketch.from_bytes(bytes(corrupted))
    from cudrift.sketches.moments import Moments

    with pytest.raises(FormatError, match="cudrift.quantiles"):
        QuantileSketch.from_bytes(Moments.empty().to_bytes())
    with pytest.raises(FormatError):
        QuantileSketch.from_bytes(b"not a sketch")


def test_from_bytes_rejects_invalid_summary(rng):
    from cudrift.sketches import _format

    s = QuantileSketch.empty(16).update(rng.standard_normal(100))
    _, meta, arrays = _format.unpack(s.to_bytes(), "cudrift.quantiles", 1)
    arrays["lo"] = arrays["lo"][::-1].copy()  # no longer nondecreasing
    with pytest.raises(FormatError, match="valid summary"):
        QuantileSketch.from_bytes(_format.pack("cudrift.quantiles", 1, meta, arrays))


def test_worst_case_formula():
    assert worst_case_rank_error(2048, 0) == 0.0
    assert worst_case_rank_error(2048, 1) == 1 / 4096
    assert worst_case_rank_error(2048, 2**19) == 20 / 4096 <= 0.005


@pytest.mark.parametrize("name", ["sizes", "values", "lo", "hi"])
def test_from_bytes_rejects_arrays_of_another_shape_or_dtype(name, rng):
    """Each array 1-D of its own dtype: a 2-D one (a truth value of an array, a TypeError, or a sketch that
    failed at its next merge) or a retyped one is a FormatError naming it."""
    from cudrift.sketches import _format

    s = QuantileSketch.empty(8).update(rng.standard_normal(100)).update(rng.standard_normal(30))
    _, meta, arrays = _format.unpack(s.to_bytes(), "cudrift.quantiles", 1)
    for bad in (arrays[name][None], arrays[name].reshape(-1, 1), arrays[name].astype(np.float32)):
        with pytest.raises(FormatError, match=name):
            QuantileSketch.from_bytes(_format.pack("cudrift.quantiles", 1, meta, {**arrays, name: bad}))


@pytest.mark.parametrize("key, value", [("levels", [0.0]), ("levels", [True]), ("levels", "0"),
                                        ("n_batches", 1.5), ("n_batches", "3"), ("n_batches", -1)])
def test_from_bytes_rejects_meta_that_is_not_integers(key, value, rng):
    """(``int()`` read 1.5 as 1 and ``"3"`` as 3.)"""
    from cudrift.sketches import _format

    s = QuantileSketch.empty(8).update(rng.standard_normal(5))
    _, meta, arrays = _format.unpack(s.to_bytes(), "cudrift.quantiles", 1)
    with pytest.raises(FormatError, match="levels" if key == "levels" else "n_batches"):
        QuantileSketch.from_bytes(_format.pack("cudrift.quantiles", 1, {**meta, key: value}, arrays))
