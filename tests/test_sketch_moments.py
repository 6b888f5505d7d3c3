"""Moments: agreement with NumPy, Chan merge laws, float32 accuracy, bytes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cudrift.errors import FormatError
from cudrift.sketches.moments import Moments

values_st = st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), max_size=50)


def close(a: Moments, b: Moments, scale: float) -> None:
    assert a.count == b.count
    if a.count == 0:
        assert b.count == 0 and math.isnan(a.mean) and math.isnan(b.mean)
        return
    assert a.mean == pytest.approx(b.mean, rel=1e-12, abs=1e-12 * scale)
    assert a.m2 == pytest.approx(b.m2, rel=1e-11, abs=1e-11 * scale * scale * a.count)
    assert a.min == b.min and a.max == b.max


def of(values) -> Moments:
    return Moments.empty().update(np.array(values, dtype=np.float64))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int8, np.uint16, np.bool_])
def test_matches_numpy(dtype, rng):
    for n in (1, 2, 17, 10_000):
        x = (rng.standard_normal(n) * 50 + 3).astype(dtype)
        m = Moments.empty().update(x)
        ref = x.astype(np.float64)
        assert m.count == n
        assert m.mean == pytest.approx(np.mean(ref), rel=1e-13, abs=1e-13)
        assert m.variance == pytest.approx(np.var(ref), rel=1e-11, abs=1e-12)
        if n > 1:
            assert m.var(1) == pytest.approx(np.var(ref, ddof=1), rel=1e-11, abs=1e-12)
        else:
            assert math.isnan(m.var(1))
        assert m.std == pytest.approx(np.std(ref), rel=1e-11, abs=1e-12)
        assert m.min == ref.min() and m.max == ref.max()


def test_float32_accumulates_in_float64(rng):
    # A large offset and a small spread: float32 accumulation would lose the variance.
    x = (1e4 + rng.standard_normal(1_000_000) * 1e-2).astype(np.float32)
    ref = x.astype(np.float64)
    for m in (Moments.empty().update(x), Moments.empty()._update_sorted_trusted(np.sort(x))):
        assert m.mean == pytest.approx(ref.mean(), rel=1e-14)
        assert m.variance == pytest.approx(ref.var(), rel=1e-9)


def test_sorted_one_pass_matches_two_pass(rng):
    for x in (rng.standard_normal(5000), rng.pareto(1.5, 5000) * 1e8, np.full(100, 7.5), rng.integers(0, 3, 999) * 1.0):
        a = Moments.empty().update(x)
        b = Moments.empty()._update_sorted_trusted(np.sort(x))
        close(a, b, float(np.max(np.abs(x))))


@settings(max_examples=100, deadline=None)
@given(a=values_st, b=values_st, c=values_st)
def test_merge_laws(a, b, c):
    ma, mb, mc = of(a), of(b), of(c)
    scale = max([1.0] + [abs(v) for v in a + b + c])
    # Commutative to the bit, identity exact, associative to rounding.
    assert (ma + mb) == (mb + ma)
    assert (ma + Moments.empty()) == ma == (Moments.empty() + ma)
    close((ma + mb) + mc, ma + (mb + mc), scale)
    close((ma + mb) + mc, of(a + b + c), scale)


@settings(max_examples=50, deadline=None)
@given(batches=st.lists(values_st, min_size=1, max_size=8))
def test_streaming_matches_concatenation(batches):
    m = Moments.empty()
    for b in batches:
        m.update(np.array(b, dtype=np.float64))
    allv = [v for b in batches for v in b]
    scale = max([1.0] + [abs(v) for v in allv])
    close(m, of(allv), scale)


def test_zero_sign_does_not_break_commutativity():
    a, b = of([-0.0]), of([0.0])
    assert (a + b).to_bytes() == (b + a).to_bytes()


def test_huge_finite_values_do_not_overflow():
    x = np.array([1e300, -1e300, 3e299, 1.7e308, -1.7e308])
    for m in (Moments.empty().update(x), Moments.empty()._update_sorted_trusted(np.sort(x))):
        assert m.mean == pytest.approx(6e298, abs=1e-14 * 1.7e308)  # cancellation of the ±1.7e308 pair
        assert m.variance == np.inf  # true variance exceeds float64's range
        assert m.min == -1.7e308 and m.max == 1.7e308
    big = np.array([3e200, 1e200, 2e200])
    m = Moments.empty().update(big)
    assert m.mean == pytest.approx(2e200, rel=1e-14)
    assert m.variance == pytest.approx(np.var(big / 1e200) * 1e400, rel=1e-12)
    assert Moments.from_bytes(m.to_bytes()) == m
    mi = Moments.empty().update(x)
    assert Moments.from_bytes(mi.to_bytes()) == mi


def test_empty():
    m = Moments.empty()
    assert m.count == 0 and math.isnan(m.mean) and math.isnan(m.variance) and math.isnan(m.std)
    assert m.min == math.inf and m.max == -math.inf and m.sum == 0.0
    assert m.update(np.zeros(0)) == Moments.empty()


def test_rejects_non_finite():
    for bad in ([1.0, np.nan], [np.inf], [-np.inf, 1.0]):
        with pytest.raises(ValueError, match="finite"):
            Moments.empty().update(np.array(bad))
    m = of([1.0, 2.0])
    with pytest.raises(ValueError):
        m.update(np.array([np.nan]))
    assert m == of([1.0, 2.0]), "a rejected batch leaves the sketch unchanged"


@settings(max_examples=30, deadline=None)
@given(a=values_st)
def test_bytes_round_trip(a):
    m = of(a)
    back = Moments.from_bytes(m.to_bytes())
    assert back == m and back.to_bytes() == m.to_bytes()


def test_bytes_errors():
    data = of([1.0, 2.0, 3.0]).to_bytes()
    with pytest.raises(FormatError):
        Moments.from_bytes(data[:-3])
    bad = bytearray(data)
    bad[-10] ^= 0x55
    with pytest.raises(FormatError):
        Moments.from_bytes(bytes(bad))
    from cudrift.sketches.histogram import Histogram

    with pytest.raises(FormatError, match="cudrift.moments"):
        Moments.from_bytes(Histogram.empty([0.0, 1.0]).to_bytes())


def test_constant_values_have_zero_spread_however_merged():
    """Float sums of 0.1 leave m2 at ~1e-33; the variance of a constant column is still exactly 0."""
    parts = [Moments.empty().update(np.full(n, 0.1)) for n in (7, 1000, 33)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    for m in (*parts, merged):
        assert m.var(0) == 0.0 and m.var(1) == 0.0 and m.std == 0.0
    assert np.isnan(Moments.empty().update(np.full(1, 0.1)).var(1))


def _exact_mean_m2(x: np.ndarray) -> tuple[float, float]:
    """Mean and M2 of ``x`` to float64 rounding, by exact sums (math.fsum) of the values and of the squared
    deviations from the rounded mean, corrected for that mean's own error."""
    n = x.size
    mean = math.fsum(x) / n
    d = x - mean  # exact: every value is within a factor 2 of the mean here (Sterbenz)
    s1 = math.fsum(d)
    return mean + s1 / n, math.fsum(d * d) - s1 * s1 / n


@pytest.mark.parametrize("offset, spread", [(1e9, 1e-6), (-3e12, 1e-2), (1e15, 1.0)])
def test_merges_keep_the_variance_of_values_far_from_zero(offset, spread, rng):
    """Merging subtracts the parts' means: rounded to float64 they cost ``1e-16 * |mean| / std`` of the variance
    a merge (1e9 + N(0, 1e-6) in batches of 1,000 rows: the standard deviation 2.6% off). Kept as double-doubles
    (``mean + mean_lo``), the variance is right to 1e-12 however the batches are merged."""
    x = offset + rng.normal(0, spread, 60_000)
    want_mean, want_m2 = _exact_mean_m2(x)
    streamed = Moments.empty()
    for b in np.array_split(x, 60):
        streamed.update(b)
    parts = [Moments.empty()._update_sorted_trusted(np.sort(b)) for b in np.array_split(x, 97)]
    while len(parts) > 1:  # a random merge tree, as shards meet
        i, j = sorted(rng.choice(len(parts), 2, replace=False))
        parts[i] = parts[i] + parts.pop(j)
    for m in (streamed, parts[0]):
        assert m.count == x.size
        assert m.mean + m.mean_lo == pytest.approx(want_mean, rel=1e-15, abs=spread * 1e-12)
        assert m.m2 == pytest.approx(want_m2, rel=1e-12)
        assert Moments.from_bytes(m.to_bytes()) == m


def test_version_1_bytes_load_without_a_remainder():
    """Moments written before their mean's remainder (format version 1) load, with ``mean_lo`` 0."""
    from cudrift.sketches import _format

    m = of([1.0, 2.0, 4.0])
    v1 = _format.pack("cudrift.moments", 1, {k: getattr(m, k) for k in ("count", "mean", "m2", "min", "max")})
    back = Moments.from_bytes(v1)
    assert (back.count, back.mean, back.m2, back.min, back.max, back.mean_lo) == (3, m.mean, m.m2, 1.0, 4.0, 0.0)


def test_a_remainder_out_of_proportion_to_the_mean_is_refused():
    from cudrift.sketches import _format

    meta = {"count": 2, "mean": 1.0, "m2": 0.5, "min": 0.5, "max": 1.5, "mean_lo": 1e-3}
    with pytest.raises(FormatError, match="inconsistent"):
        Moments.from_bytes(_format.pack("cudrift.moments", 2, meta))


@pytest.mark.parametrize("key, value", [("mean", 10**400), ("m2", 10**400), ("mean_lo", -(10**400)),
                                        ("count", 10**400), ("count", 2**63)])
def test_numbers_past_a_float_or_an_int64_are_refused(key, value):
    """A JSON int past a float (``float()`` raises OverflowError) or a count past int64: FormatError."""
    from cudrift.sketches import _format

    meta = {"count": 2, "mean": 1.0, "m2": 0.5, "min": 0.5, "max": 1.5, "mean_lo": 0.0, key: value}
    with pytest.raises(FormatError, match="cudrift.moments"):
        Moments.from_bytes(_format.pack("cudrift.moments", 2, meta))


def test_profiles_and_statistics_do_not_depend_on_the_blas_thread_count(tmp_path):
    """BLAS's dot sums in an order set by its thread count: a profile's bytes and a statistic's last digits
    differed between OPENBLAS_NUM_THREADS=1 and 2 (a Dask worker, which sets 1, and its driver disagreed), and
    OpenBLAS's threads hang a fork made while another thread is inside one. Dots are NumPy's own loop now."""
    import os
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(
        "import hashlib, numpy as np, cudrift\n"
        "rng = np.random.default_rng(5)\n"
        "ref = cudrift.profile({'x': rng.normal(size=400_000)}, backend='cpu')\n"
        "rep = cudrift.DriftDetector({'x': rng.normal(size=400_000)}, policy='wasserstein', backend='cpu')"
        ".compare({'x': rng.normal(0.01, 1, size=150_000)})\n"
        "print(hashlib.sha256(ref.to_bytes()).hexdigest(), repr(ref['x'].moments.m2), repr(rep['x'].statistic))\n")
    out = []
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        out.append(run.stdout)
    assert out[0] == out[1]


@pytest.mark.parametrize("v, n", [(1e150, 15000), (3e150, 5000), (3.2e150, 200_000)])
def test_sorted_batches_of_values_near_2_to_the_500_keep_their_variance(v, n):
    """A sorted batch is centred on its median and scaled only past 2**500: the deviations of a skewed batch
    near 1e150 summed past sqrt(float64 max), and s1 * s1 overflowed (variance 0, or NaN that from_bytes then
    refused as inconsistent). Checked against the formula on the values divided by v."""
    from cudrift.sketches.column import NumericColumnProfile

    x = np.r_[np.full(n, -v), np.full(n + 1, v)]
    col = NumericColumnProfile.empty(None).update(x)
    m = col.moments
    y = x / v
    want = float(np.var(y)) * v * v  # (the population variance, as Moments.variance)
    assert m.variance == pytest.approx(want, rel=1e-12)
    assert NumericColumnProfile.from_bytes(col.to_bytes()).moments.variance == m.variance
