"""Sample: bottom-k by splitmix64 priorities, checked against a brute-force model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cudrift.errors import FormatError, IncompatibleSketchError
from cudrift.sketches.sample import Sample, splitmix64

M64 = (1 << 64) - 1


def splitmix64_py(x: int) -> int:
    """Reference SplitMix64 output function in pure Python integers."""
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def model(streams: list[list[float]], size: int, seed: int) -> list[tuple[int, float]]:
    """Bottom-k over several streams, each indexed from 0: by priority, then the value's hash, then the value."""
    def bits(v: float) -> int:
        return int(np.array([v], dtype=np.float64).view(np.uint64)[0])

    key = splitmix64_py(seed) ^ splitmix64_py(0)  # the seed's key: 0 for seed 0
    entries = [(splitmix64_py(key ^ i), float(v) + 0.0) for s in streams for i, v in enumerate(s)]
    return sorted(entries, key=lambda e: (e[0], splitmix64_py(bits(e[1])), e[1]))[:size]


def pairs(s: Sample) -> list[tuple[int, float]]:
    return list(zip(s.priorities.tolist(), s.values.tolist()))


def test_splitmix64_known_values():
    # First outputs of the SplitMix64 generator seeded with 0 (state 0, 1*gamma, ...).
    assert int(splitmix64(np.array([0], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    xs = np.array([0, 1, 2**63, M64, 123456789], dtype=np.uint64)
    assert splitmix64(xs).tolist() == [splitmix64_py(int(v)) for v in xs]


values_st = st.lists(st.sampled_from([-1.0, -0.0, 0.0, 0.5, 3.0]) | st.floats(-1e9, 1e9), max_size=40)


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(values_st, max_size=6), size=st.integers(1, 12), seed=st.integers(0, M64))
def test_matches_brute_force_model(batches, size, seed):
    s = Sample.empty(size, seed)
    for b in batches:
        s.update(np.array(b, dtype=np.float64))
    flat = [v for b in batches for v in b]
    assert pairs(s) == model([flat], size, seed)
    assert s.n_seen == len(flat) and len(s) == min(size, len(flat))


@settings(max_examples=100, deadline=None)
@given(a=values_st, b=values_st, c=values_st, size=st.integers(1, 10), seed=st.integers(0, 2**20))
def test_merge_laws_exact(a, b, c, size, seed):
    sa, sb, sc = (Sample.empty(size, seed).update(np.array(v, dtype=np.float64)) for v in (a, b, c))
    assert (sa + sb).to_bytes() == (sb + sa).to_bytes()
    assert ((sa + sb) + sc).to_bytes() == (sa + (sb + sc)).to_bytes()
    e = Sample.empty(size, seed)
    assert (sa + e) == sa == (e + sa)
    assert pairs(sa + sb + sc) == model([a, b, c], size, seed)
    assert (sa + sb + sc).n_seen == len(a) + len(b) + len(c)


def test_large_batches_match_model_and_are_a_subset(rng):
    size, seed = 500, 99
    x = rng.standard_normal(200_000).astype(np.float32)
    s = Sample.empty(size, seed)
    for part in np.array_split(x, 7):
        s.update(part)
    whole = Sample.empty(size, seed).update(x)
    # The global index continues across batches, so batching does not matter.
    assert s == whole
    idx = np.arange(x.size, dtype=np.uint64)
    pri = splitmix64(idx ^ np.uint64(splitmix64_py(seed) ^ splitmix64_py(0)))  # the seed's key
    best = np.argsort(pri)[:size]
    np.testing.assert_array_equal(s.priorities, pri[best])
    np.testing.assert_array_equal(s.values, x[best].astype(np.float64))
    assert np.isin(s.values, x.astype(np.float64)).all()


def test_second_selection_pass_gives_the_same_answer(rng, monkeypatch):
    import cudrift.sketches.sample as sample_mod

    x = rng.standard_normal(50_000)
    want = Sample.empty(300, 4).update(x)
    # A guess far too low forces the exact second pass.
    monkeypatch.setattr(sample_mod, "_SIGMAS", -10.0)
    monkeypatch.setattr(sample_mod, "_SLACK", -200.0)
    got = Sample.empty(300, 4)
    for part in np.array_split(x, 3):
        got.update(part)
    assert got == want


def test_same_input_same_sample_different_order_different_sample(rng):
    x = rng.standard_normal(5000)
    a = Sample.empty(100, 1).update(x)
    b = Sample.empty(100, 1).update(x.copy())
    c = Sample.empty(100, 1).update(x[::-1].copy())
    assert a == b
    assert set(a.values) != set(c.values)


def test_uniform_inclusion(rng):
    # Each position should be included with probability size/n; check the
    # sample's mean index is near the middle and its spread is uniform-like.
    n, size = 100_000, 2000
    s = Sample.empty(size, 5).update(np.arange(n, dtype=np.float64))
    v = s.values
    assert abs(v.mean() - n / 2) < 4 * n / np.sqrt(12 * size)
    hist = np.histogram(v, bins=10, range=(0, n))[0]
    assert np.all(np.abs(hist - size / 10) < 5 * np.sqrt(size / 10))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.uint64, np.bool_])
def test_dtypes(dtype, rng):
    x = (rng.standard_normal(3000) * 100).astype(dtype)
    s = Sample.empty(50, 3).update(x)
    assert s.values.dtype == np.float64 and len(s) == 50
    assert np.isin(s.values, x.astype(np.float64)).all()


def test_incompatible_settings_name_both():
    with pytest.raises(IncompatibleSketchError, match=r"size=10, seed=0 vs size=20, seed=0"):
        Sample.empty(10, 0).merge(Sample.empty(20, 0))
    with pytest.raises(IncompatibleSketchError, match=r"seed=1 vs size=10, seed=2"):
        Sample.empty(10, 1) + Sample.empty(10, 2)


def test_validation_and_empty():
    s = Sample.empty()
    assert s.size == 10_000 and s.seed == 0 and s.n_seen == 0 and len(s) == 0 and s.values.size == 0
    assert s.update(np.zeros(0)).n_seen == 0
    with pytest.raises(ValueError, match="finite"):
        s.update(np.array([1.0, np.nan]))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="size"):
            Sample.empty(size=bad)
    with pytest.raises(ValueError, match="seed"):
        Sample.empty(seed=-1)


def test_bytes_round_trip_and_errors(rng):
    s = Sample.empty(64, 2**64 - 1).update(rng.standard_normal(1000))
    back = Sample.from_bytes(s.to_bytes())
    assert back == s and back.to_bytes() == s.to_bytes()
    data = s.to_bytes()
    with pytest.raises(FormatError):
        Sample.from_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[100] ^= 0x10
    with pytest.raises(FormatError):
        Sample.from_bytes(bytes(flipped))
    from cudrift.sketches.moments import Moments

    with pytest.raises(FormatError, match="cudrift.sample"):
        Sample.from_bytes(Moments.empty().to_bytes())


def test_a_continuing_sample_keeps_its_start_through_bytes_and_merges(rng):
    """A part that continues a stream starts past it; saved and read back it still does, and an empty sample
    of any start stays the identity."""
    x = rng.standard_normal(300)
    whole = Sample.empty(40, 3).update(x)
    first = Sample.empty(40, 3).update(x[:100])
    rest = first.continuing().update(x[100:])
    assert first + rest == whole
    back = Sample.from_bytes(first.to_bytes())
    assert back == first and back.continuing() == first.continuing()
    later = Sample.from_bytes(rest.to_bytes())
    assert later == rest and first + later == whole
    assert rest + Sample.empty(40, 3) == rest == Sample.empty(40, 3) + rest
    skipped = first.continuing(skip=50).update(x[100:])
    assert skipped != rest and not set(skipped.priorities) & set(first.priorities)  # indices 150.. vs 0..99


def test_seeds_draw_independent_samples_and_old_bytes_keep_their_hashing():
    """Priorities are splitmix64(key ^ i) with key = splitmix64(seed) ^ splitmix64(0): seeds 1, 2, 3 drew
    seed 0's positions XOR-shifted under key = seed (on time-ordered values the sample means of 20 seeds
    spread 0.12 where independent draws spread thousands). Seed 0 is unchanged (key 0, version-1 bytes);
    bytes written before version 2 with another seed load with key = seed, continue with it, and are refused
    in a merge with a sample of the same seed made since."""
    from cudrift.errors import IncompatibleSketchError
    from cudrift.sketches import _format

    x = np.arange(100_000, dtype=np.float64)  # time-ordered: position is value
    means = [Sample.empty(100, seed).update(x).values.mean() for seed in range(20)]
    assert np.std(means) > 0.5 * x.std() / np.sqrt(100)  # independent draws: about x.std() / sqrt(100)
    assert Sample.empty(100, 0).update(x).priorities.tolist() == sorted(splitmix64_py(i) for i in range(100_000))[:100]

    zero, seven = Sample.empty(50, 0).update(x[:500]), Sample.empty(50, 7).update(x[:500])
    assert _format.peek_kind(zero.to_bytes())[1] == 1 and _format.peek_kind(seven.to_bytes())[1] == 2
    assert Sample.from_bytes(seven.to_bytes()) == seven and Sample.from_bytes(zero.to_bytes()) == zero
    # a seed-7 sample as written before version 2: key = seed
    old = sorted((splitmix64_py(7 ^ i), float(v)) for i, v in enumerate(x[:500]))[:50]
    pri, val = np.array([p for p, _ in old], dtype=np.uint64), np.array([v for _, v in old])
    legacy = Sample.from_bytes(_format.pack("cudrift.sample", 1, {"size": 50, "seed": 7, "n_seen": 500},
                                            {"priorities": pri, "values": val}))
    more = legacy.copy().update(x[500:600])  # continues with key = seed, as a version-1 sample did
    assert more.priorities.tolist() == sorted(splitmix64_py(7 ^ i) for i in range(600))[:50]
    assert _format.peek_kind(more.to_bytes())[1] == 1
    with pytest.raises(IncompatibleSketchError, match=r"seed=7 hashed two ways: one was written by a cudrift "
                                                      r"before sample payload version 2"):
        legacy + seven


def test_continuing_refuses_a_skip_that_is_not_a_count():
    """A negative skip started the indices below 0 (bytes that saved but did not load); 1.5 was cut to 1."""
    first = Sample.empty(40, 3).update(np.arange(100.0))
    for bad in (-101, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=r"Invalid value for skip: .* \(expected an integer >= 0\)"):
            first.continuing(skip=bad)
    later = first.continuing(skip=np.int64(5)).update(np.arange(10.0))
    assert Sample.from_bytes(later.to_bytes()) == later


def test_profile_config_refuses_a_sample_size_no_sample_takes():
    """ProfileConfig checks settings as the sketches do, so a bad one is named as the user spelled it and never
    saved with a profile: Sample.empty refuses sizes of 2**63 and more."""
    from cudrift import ProfileConfig

    assert ProfileConfig(sample_size=2**63 - 1).sample_size == 2**63 - 1
    with pytest.raises(ValueError, match=r"Invalid value for sample_size: 9223372036854775808 \(expected an integer"):
        ProfileConfig(sample_size=2**63)
    with pytest.raises(ValueError, match="size"):
        Sample.empty(size=2**63)


def test_with_batch_rows_checks_the_count():
    """with_batch_rows is public and went past the constructor's check: 0 was accepted, and the saved settings
    then failed to load."""
    from cudrift import ProfileConfig

    assert ProfileConfig().with_batch_rows(512).batch_rows == 512
    for bad in (0, -3, 2.5, True, "1024"):
        with pytest.raises(ValueError, match=f"Invalid value for batch_rows: {bad!r}"):
            ProfileConfig().with_batch_rows(bad)


def test_empty_is_the_identity_for_an_empty_continuing_sample():
    """empty() + s.continuing() took empty()'s first index 0: the window re-drew the reference's indices (with
    size 5000 all 1,000 of its priorities equal to the reference's), which continuing() exists to prevent."""
    x = np.random.default_rng(3).normal(size=2000)
    ref = Sample.empty(50).update(x[:1000])
    c = ref.continuing()
    assert Sample.empty(50) + c == c and c + Sample.empty(50) == c
    assert (Sample.empty(50) + c).to_bytes() == c.to_bytes()
    w = (Sample.empty(50) + c).update(x[1000:])
    assert ref + w == Sample.empty(50).update(x)
