"""Histogram and edge helpers: NumPy agreement, sorted fast path, float32 edges, merge laws, bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cudrift.errors import EmptyInputError, FormatError, IncompatibleSketchError
from cudrift.sketches.histogram import Histogram, equal_mass_edges, uniform_edges
from cudrift.sketches.quantiles import QuantileSketch


def expected_counts(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Underflow, np.histogram's bins, overflow, all on exact float64 values; float32 ``x`` at its own precision,
    on the edges rounded to the nearest float32 (a float32 value stands for every real that rounds to it)."""
    if np.asarray(x).dtype == np.float32:
        edges = np.asarray(edges, dtype=np.float64).astype(np.float32).astype(np.float64)
    x = np.asarray(x, dtype=np.float64)
    inner, _ = np.histogram(x, bins=edges)
    return np.r_[np.sum(x < edges[0]), inner, np.sum(x > edges[-1])]


edges_st = st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=12, unique=True).map(sorted)
values_st = st.lists(
    st.one_of(st.floats(-150, 150, allow_nan=False), st.sampled_from([-100.0, 0.0, 1.0, 100.0])), max_size=80
)


@settings(max_examples=150, deadline=None)
@given(edges=edges_st, values=values_st, use_f32=st.booleans())
def test_counts_match_numpy_both_paths(edges, values, use_f32):
    e = np.array(edges)
    x = np.array(values, dtype=np.float32 if use_f32 else np.float64)
    # Put some values exactly on the edges (as representable in x's dtype).
    x = np.r_[x, e.astype(x.dtype)]
    want = expected_counts(x, e)
    a = Histogram.empty(e).update(x)
    b = Histogram.empty(e).update_sorted(np.sort(x))
    np.testing.assert_array_equal(a.counts, want)
    np.testing.assert_array_equal(b.counts, want)
    assert a.n == x.size and a.underflow == want[0] and a.overflow == want[-1]
    np.testing.assert_array_equal(a.bin_counts, want[1:-1])


def test_float32_values_next_to_unrepresentable_edges():
    e = np.array([0.1, 0.2, 0.3, 0.7, 0.8])  # none is a float32; float32(0.7) lies below 0.7, the others above
    f = e.astype(np.float32)
    x = np.concatenate([f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))])
    want = expected_counts(x, e)
    np.testing.assert_array_equal(Histogram.empty(e).update_sorted(np.sort(x)).counts, want)
    np.testing.assert_array_equal(Histogram.empty(e).update(x).counts, want)
    # each edge's own float32 opens its bin, as the edge opens it for float64 values (float32(0.7) fell in the bin
    # below: every atom of a rounded float64 feature whose float32 lies under it moved a bin)
    assert Histogram.empty(e).update(f).counts.tolist() == [0, 1, 1, 1, 2, 0]
    assert Histogram.empty(e).update(e).counts.tolist() == [0, 1, 1, 1, 2, 0]
    assert Histogram.empty(e).update_sorted(f).counts.tolist() == [0, 1, 1, 1, 2, 0]


def test_edges_beyond_float32_range():
    e = np.array([-1e300, 0.0, 1e300])
    x = np.array([-3e38, -1.0, 0.0, 3e38], dtype=np.float32)
    want = expected_counts(x, e)
    np.testing.assert_array_equal(Histogram.empty(e).update_sorted(np.sort(x)).counts, want)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_, np.float16])
def test_other_dtypes(dtype, rng):
    x = rng.integers(0, 3, 500).astype(dtype)
    e = np.array([0.0, 0.5, 1.0, 2.0])
    want = expected_counts(x, e)
    np.testing.assert_array_equal(Histogram.empty(e).update(x).counts, want)
    np.testing.assert_array_equal(Histogram.empty(e).update_sorted(np.sort(x)).counts, want)


@settings(max_examples=80, deadline=None)
@given(edges=edges_st, a=values_st, b=values_st, c=values_st)
def test_merge_laws_and_concatenation(edges, a, b, c):
    e = np.array(edges)
    ha, hb, hc = (Histogram.empty(e).update(np.array(v, dtype=np.float64)) for v in (a, b, c))
    assert (ha + hb) == (hb + ha)
    assert ((ha + hb) + hc) == (ha + (hb + hc))
    assert (ha + Histogram.empty(e)) == ha == (Histogram.empty(e) + ha)
    whole = Histogram.empty(e).update(np.array(a + b + c, dtype=np.float64))
    assert (ha + hb + hc) == whole
    before = ha.counts
    ha.merge(hb)
    np.testing.assert_array_equal(ha.counts, before)


def test_incompatible_edges_message_names_both():
    a = Histogram.empty(np.linspace(0, 9.9, 101))
    b = Histogram.empty(np.linspace(0, 5.0, 51))
    with pytest.raises(IncompatibleSketchError, match=r"101 edges \[0.0 .. 9.9\] vs 51 edges \[0.0 .. 5.0\]"):
        a.merge(b)
    c = Histogram.empty([0.0, 0.5, 1.0])
    d = Histogram.empty([0.0, 0.25, 1.0])
    with pytest.raises(IncompatibleSketchError, match=r"edges\[1\]: 0.5 vs 0.25"):
        c + d


def test_edge_validation():
    for bad in ([1.0], [[0.0, 1.0]], [0.0, 0.0], [1.0, 0.0], [0.0, np.inf], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="edges"):
            Histogram.empty(bad)


def test_value_validation():
    h = Histogram.empty([0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        h.update(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="not sorted"):
        h.update_sorted(np.array([0.9, 0.1]))
    with pytest.raises(ValueError, match="finite"):
        h.update_sorted(np.array([0.1, np.inf]))
    assert h.n == 0


def test_empty_histogram():
    h = Histogram.empty([0.0, 1.0, 2.0])
    assert h.n == 0 and h.counts.tolist() == [0, 0, 0, 0] and h.n_bins == 2
    assert h.update(np.zeros(0)).update_sorted(np.zeros(0)).n == 0


def test_bytes_round_trip_and_errors(rng):
    h = Histogram.empty(np.sort(rng.standard_normal(20))).update(rng.standard_normal(1000))
    back = Histogram.from_bytes(h.to_bytes())
    assert back == h and back.to_bytes() == h.to_bytes()
    data = h.to_bytes()
    with pytest.raises(FormatError):
        Histogram.from_bytes(data[:20])
    flipped = bytearray(data)
    flipped[-20] ^= 1
    with pytest.raises(FormatError):
        Histogram.from_bytes(bytes(flipped))
    with pytest.raises(FormatError, match="cudrift.histogram"):
        Histogram.from_bytes(QuantileSketch.empty().to_bytes())


# equal-mass and uniform edges -------------------------------------------------


def test_equal_mass_edges_continuous(rng):
    x = np.sort(rng.standard_normal(100_000))
    e = equal_mass_edges(x, 10)
    assert e.size == 11 and e[0] == x[0] and e[-1] == x[-1] and np.all(np.diff(e) > 0)
    counts = Histogram.empty(e).update_sorted(x).bin_counts
    assert np.all(np.abs(counts - 10_000) <= 2)


def test_equal_mass_edges_sketch_matches_array_when_exact(rng):
    x = np.sort(rng.integers(0, 40, 5000).astype(np.float64))
    s = QuantileSketch.from_sorted(x, k=64)
    assert s.normalized_rank_error == 0
    for n_bins in (1, 3, 10, 100):
        np.testing.assert_array_equal(equal_mass_edges(s, n_bins), equal_mass_edges(x, n_bins))


def test_equal_mass_edges_from_approximate_sketch(rng):
    x = np.sort(rng.exponential(size=200_000))
    s = QuantileSketch.empty(128)
    for part in np.array_split(rng.permutation(x), 50):
        s.update(part)
    e = equal_mass_edges(s, 20)
    assert e[0] == x[0] and e[-1] == x[-1] and np.all(np.diff(e) > 0)
    counts = Histogram.empty(e).update_sorted(x).bin_counts / x.size
    # each bin's mass is 1/20 within twice the rank error (two edges) plus rounding
    assert np.all(np.abs(counts - 0.05) <= 2 * s.normalized_rank_error + 1e-4)


def test_equal_mass_edges_discrete_and_constant():
    x = np.repeat([1.0, 2.0, 3.0], 100)
    e = equal_mass_edges(x, 10)
    # few distinct values: midpoints, so each value has a bin of its own
    np.testing.assert_array_equal(e, [1.0, 1.5, 2.5, 3.0])
    assert Histogram.empty(e).update(x).bin_counts.tolist() == [100, 100, 100]
    np.testing.assert_array_equal(equal_mass_edges(QuantileSketch.from_sorted(x), 10), e)
    # more distinct values than bins: equal-mass quantile edges on the data
    np.testing.assert_array_equal(equal_mass_edges(x, 2), [1.0, 2.0, 3.0])
    e1 = equal_mass_edges(np.full(7, 2.5), 10)
    assert e1.tolist() == [2.5, np.nextafter(2.5, np.inf)]
    h = Histogram.empty(e1).update(np.full(7, 2.5))
    assert h.bin_counts.tolist() == [7] and h.overflow == 0
    s = QuantileSketch.from_sorted(np.full(7, 2.5))
    np.testing.assert_array_equal(equal_mass_edges(s, 4), e1)


def test_equal_mass_edges_validation():
    with pytest.raises(EmptyInputError):
        equal_mass_edges(np.zeros(0), 4)
    with pytest.raises(EmptyInputError):
        equal_mass_edges(QuantileSketch.empty(), 4)
    with pytest.raises(ValueError, match="n_bins"):
        equal_mass_edges(np.arange(3.0), 0)
    with pytest.raises(ValueError, match="not sorted"):
        equal_mass_edges(np.array([3.0, 1.0]), 2)


def test_uniform_edges():
    np.testing.assert_array_equal(uniform_edges(0.0, 1.0, 4), [0.0, 0.25, 0.5, 0.75, 1.0])
    assert uniform_edges(2.0, 2.0, 5).tolist() == [2.0, np.nextafter(2.0, np.inf)]
    tiny = uniform_edges(1.0, np.nextafter(1.0, 2.0), 10)
    assert np.all(np.diff(tiny) > 0) and tiny[0] == 1.0 and tiny[-1] == np.nextafter(1.0, 2.0)
    for args in ((1.0, 0.0, 3), (0.0, np.inf, 3), (0.0, 1.0, 0)):
        with pytest.raises(ValueError):
            uniform_edges(*args)


@pytest.mark.parametrize("lo, hi, n", [(-1e308, 1e308, 4), (-np.finfo(float).max, np.finfo(float).max, 1),
                                       (-1.5e308, 1e308, 3)])
def test_uniform_edges_over_a_range_past_float64s_are_finite(lo, hi, n):
    """hi - lo overflowed, and linspace gave NaN edges (then 'edges must be finite' from Histogram.empty)."""
    e = uniform_edges(lo, hi, n)
    assert np.isfinite(e).all() and e[0] == lo and e[-1] == hi and (np.diff(e) > 0).all() and e.size == n + 1
    # evenly spaced: each step is the range over n, computed here on halves
    np.testing.assert_allclose(np.diff(e / 2), (hi / 2 - lo / 2) / n, rtol=1e-12)
    Histogram.empty(e)


def test_float16_values_are_binned_at_their_precision():
    """float16(0.1) is 0.09998: against float32-rounded edges a float16 window's atoms fell a bin low (PSI 0.39
    on one distribution). They are binned on the edges rounded to float16, sorted or not, widened or not."""
    e = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    h = e.astype(np.float16)
    assert all(float(v) != x for v, x in zip(h, e))
    want = [0, 1, 1, 1, 2, 0]
    assert Histogram.empty(e).update(h).counts.tolist() == want
    assert Histogram.empty(e).update_sorted(h).counts.tolist() == want
    assert Histogram.empty(e)._update_sorted_trusted(h.astype(np.float32), np.float16).counts.tolist() == want
    # (as float32 values they are binned at float32: float16(0.1) lies under float32(0.1))
    assert Histogram.empty(e).update(h.astype(np.float32)).counts.tolist() != want
