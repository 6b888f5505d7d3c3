"""Profiles: like=, merge laws at the profile level, serialization, kinds."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import cudrift
from cudrift import FormatError, IncompatibleSketchError, Profile, ProfileConfig, Schema


def _data(rng, n, shift=0.0):
    return {
        "x": rng.normal(shift, 1.0, size=n),
        "f": rng.exponential(size=n).astype(np.float32),
        "k": rng.integers(0, 6, size=n),
        "s": rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n, p=[0.5, 0.3, 0.2]),
    }


def test_like_reuses_edges_and_dictionary(rng):
    ref = cudrift.profile(_data(rng, 4000))
    cur = cudrift.profile(_data(rng, 1000, shift=10.0), like=ref)
    np.testing.assert_array_equal(ref.edges("x"), cur.edges("x"))
    assert cur["s"].reference_categories == frozenset({"red", "green", "blue"})
    # shifted far right: most current values overflow the reference range
    assert cur["x"].histogram.counts[-1] > 800
    assert sum(cur["x"].histogram.counts) == cur["x"].moments.count == 1000


def test_reference_histogram_is_equal_mass(rng):
    x = rng.normal(size=20_000)
    p = cudrift.profile({"x": x})
    h = p["x"].histogram
    assert len(h.edges) == 101
    assert h.counts[0] == 0 and h.counts[-1] == 0
    np.testing.assert_array_equal(h.counts[1:-1], np.histogram(x, bins=h.edges)[0])
    # every bin holds about 1% of the data (rank error of the sketch allows a little slack)
    assert h.counts[1:-1].min() >= 150 and h.counts[1:-1].max() <= 250


def test_merge_of_windows_equals_profile_of_concatenation(rng):
    ref = cudrift.profile(_data(rng, 3000))
    parts = [_data(rng, n) for n in (700, 1300, 1)]
    merged = Profile.empty_like(ref)
    for part in parts:
        merged = merged + cudrift.profile(part, like=ref)
    whole = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    direct = cudrift.profile(whole, like=ref)
    assert merged.n_rows == direct.n_rows == 2001
    for n in ("x", "f"):
        np.testing.assert_array_equal(merged[n].histogram.counts, direct[n].histogram.counts)
        np.testing.assert_allclose(merged[n].moments.mean, direct[n].moments.mean, rtol=1e-12)
        np.testing.assert_allclose(merged[n].moments.variance, direct[n].moments.variance, rtol=1e-10)
    for n in ("k", "s"):
        assert dict(merged[n].counts.items()) == dict(direct[n].counts.items())
    # update() in place streams the same rows
    streamed = Profile.empty_like(ref)
    for part in parts:
        streamed.update(part)
    np.testing.assert_array_equal(streamed["x"].histogram.counts, direct["x"].histogram.counts)
    assert streamed.n_rows == 2001


def test_shards_far_from_zero_merge_to_the_moments_of_the_whole(rng):
    """Shards profiled apart and merged (README's "Scaling out") keep the variance of values far from zero:
    with rounded means each merge cost ``1e-16 * |mean| / std`` of it, 10% of the standard deviation here."""
    x = 1e9 + rng.normal(0, 1e-6, 40_000)
    ref = cudrift.profile({"x": x[:5000]})
    merged = Profile.empty_like(ref)
    for part in np.array_split(x, 80):
        merged = merged + cudrift.profile({"x": part}, like=ref)
    d = x - 1e9  # exact (Sterbenz): the deviations' own statistics are the column's, shifted
    assert merged["x"].moments.std == pytest.approx(np.std(d), rel=1e-9)
    assert merged["x"].moments.mean - 1e9 + merged["x"].moments.mean_lo == pytest.approx(np.mean(d), rel=1e-6)


def test_empty_like_is_identity(rng):
    ref = cudrift.profile(_data(rng, 500))
    cur = cudrift.profile(_data(rng, 300), like=ref)
    for m in (cur + Profile.empty_like(ref), Profile.empty_like(ref) + cur):
        assert m.n_rows == cur.n_rows
        np.testing.assert_array_equal(m["x"].histogram.counts, cur["x"].histogram.counts)
        assert dict(m["s"].counts.items()) == dict(cur["s"].counts.items())


def test_empty_like_is_identity_for_the_reference_itself(rng):
    ref = cudrift.profile(_data(rng, 500))
    for m in (ref + Profile.empty_like(ref), Profile.empty_like(ref) + ref):
        assert m.n_rows == ref.n_rows and m.dtypes == ref.dtypes
        assert all(m[n] == ref[n] for n in ref.columns)


def test_reference_update_adds_rows_and_new_categories(rng):
    """A reference grown with update() counts like one profile of all its rows (its bin edges stay)."""
    first, more = _data(rng, 800), _data(rng, 400)
    more["s"] = np.array(list(more["s"][:-3]) + ["new", "new", None], dtype=object)
    ref = cudrift.profile(first)
    ref.update(more)
    whole = cudrift.profile({k: np.concatenate([first[k], more[k]]) for k in first})
    assert ref.n_rows == 1200 and ref["s"].reference_categories is None
    for n in ("k", "s"):
        assert dict(ref[n].counts.items()) == dict(whole[n].counts.items())
        assert ref[n].null_count == whole[n].null_count
    assert ref["s"].counts["new"] == 2
    x = np.concatenate([first["x"], more["x"]])
    assert ref["x"].moments.count == np.isfinite(x).sum()
    np.testing.assert_array_equal(ref["x"].histogram.counts[1:-1], np.histogram(x, bins=ref["x"].histogram.edges)[0])


def test_merging_a_reference_with_a_window_of_it_says_what_to_do(rng):
    ref = cudrift.profile(_data(rng, 500))
    cur = cudrift.profile(_data(rng, 100), like=ref)
    with pytest.raises(IncompatibleSketchError, match=r"column 'k'.*reference\.update\(data\)"):
        ref + cur


def test_update_records_the_dtype_of_the_rows_it_adds(rng):
    """update() and + agree: a float32 batch into a float64 reference's window is a dtype change."""
    ref = cudrift.profile({"x": rng.normal(size=500)})
    streamed = Profile.empty_like(ref)
    streamed.update({"x": rng.normal(size=100).astype(np.float32)})
    added = Profile.empty_like(ref) + cudrift.profile({"x": rng.normal(size=100).astype(np.float32)}, like=ref)
    assert streamed.dtypes == added.dtypes == {"x": "float32"}  # the empty start saw no dtype
    # merging the same dtypes again does not repeat them
    again = added + cudrift.profile({"x": rng.normal(size=10)}, like=ref) + added
    assert again.dtypes == {"x": "float32|float64"}
    finding = next(f for f in cudrift.DriftDetector(ref).compare(streamed).findings if f.check == "dtype_change")
    assert "float64 → float32" in finding.message and "|" not in finding.message


def test_a_window_grown_from_small_parts_samples_as_one_pass(rng):
    """Parts made like= a window, or added by update(), continue its sample's indices: the sample is the one a
    single pass over the rows gives, not the same few positions drawn in every part."""
    cfg = ProfileConfig(sample_size=300)
    ref = cudrift.profile({"x": rng.normal(size=5000)}, config=cfg)
    rows = rng.normal(size=2400)
    whole = cudrift.profile({"x": rows}, like=ref)
    grown, added = Profile.empty_like(ref), Profile.empty_like(ref)
    for part in np.array_split(rows, 800):  # 3 rows a part
        grown.update({"x": part})
        added = added + cudrift.profile({"x": part}, like=added)
    assert grown["x"].sample == whole["x"].sample == added["x"].sample
    report = cudrift.DriftDetector(ref, policy="mannwhitneyu").compare(grown)
    assert not report["x"].drifted, report["x"]


def test_merged_one_row_profiles_sample_without_favouring_small_values(rng):
    """Shards that do not continue each other share their priorities; ties are broken by a hash of the value,
    so 1-row shards give a sample spread like the data (the value itself once broke ties: the smallest won)."""
    cfg = ProfileConfig(sample_size=300)
    ref = cudrift.profile({"x": rng.normal(size=5000)}, config=cfg)
    w = Profile.empty_like(ref)
    for v in rng.normal(size=1200):
        w = w + cudrift.profile({"x": np.array([v])}, like=ref)
    s = w["x"].sample.values
    assert s.size == 300 and abs(s.mean()) < 4 / np.sqrt(300)  # N(0, 1) rows; the 300 smallest average -1.2
    assert abs(s.std() - 1) < 0.2


def test_merge_incompatible(rng):
    a = cudrift.profile(_data(rng, 500))
    b = cudrift.profile(_data(rng, 500))  # its own edges
    with pytest.raises(IncompatibleSketchError, match="edges"):
        a + b
    c = cudrift.profile(_data(rng, 500), config=ProfileConfig(quantile_k=512))
    with pytest.raises(IncompatibleSketchError, match=r"quantile_k=2048 vs quantile_k=512"):
        a + c
    d = cudrift.profile({"x": rng.normal(size=10)})
    with pytest.raises(IncompatibleSketchError, match="different columns"):
        a + d
    # a part that could not read a column (errors="report") says why it was left out
    ref = cudrift.profile({"x": rng.normal(size=50), "t": rng.normal(size=50)})
    good = cudrift.profile({"x": rng.normal(size=5), "t": rng.normal(size=5)}, like=ref)
    bad = cudrift.profile({"x": rng.normal(size=5), "t": np.arange(5).astype("datetime64[s]")}, like=ref,
                          errors="report")
    with pytest.raises(IncompatibleSketchError, match=r"different columns.*'t' was left out of the second profile: "
                                                      r"column 't' has unsupported dtype datetime64"):
        good + bad


def test_a_window_grown_like_itself_keeps_columns_new_to_its_reference(rng):
    """README's loop, w = w + cudrift.profile(batch, like=w), refused a window's text column that its reference does
    not have ("different reference dictionaries": the part took the window's own categories as a dictionary).
    Grown so, the window holds what one profile of all its rows holds."""
    ref = cudrift.profile({"x": rng.normal(size=1000)})
    batches = [pd.DataFrame({"x": rng.normal(size=100), "e": rng.choice(["a", "b", "c"], 100),
                             "z": rng.normal(size=100)}) for _ in range(4)]
    whole = cudrift.profile(pd.concat(batches, ignore_index=True), like=ref)
    # from the first batch's window, and from Profile.empty_like(ref) as README's loop starts (its merge with the
    # first part refused the columns the part added: "different columns")
    for w in (cudrift.profile(batches[0], like=ref), cudrift.Profile.empty_like(ref)):
        for batch in batches[1:] if w.n_rows else batches:
            w = w + cudrift.profile(batch, like=w)
        assert w.n_rows == 400 and w.names == whole.names == ["x", "e", "z"]
        assert dict(w["e"].counts.items()) == dict(whole["e"].counts.items())
        assert w["x"].histogram == whole["x"].histogram and w["z"].moments.count == 400
        rep = cudrift.DriftDetector(ref).compare(w)
        assert {("extra_column", "e"), ("extra_column", "z")} <= {(f.check, f.column) for f in rep.findings}
    # either order, and an empty window still refuses what is not its reference's window
    part = cudrift.profile(batches[0], like=ref)
    assert (part + cudrift.Profile.empty_like(ref)).names == ["x", "e", "z"]
    with pytest.raises(IncompatibleSketchError, match="different columns"):
        cudrift.Profile.empty_like(ref) + cudrift.profile(pd.DataFrame({"y": rng.normal(size=10)}))


def test_a_window_of_a_numeric_reference_updates_with_a_text_column_past_max_categories(rng):
    """update() on a window refused rows saying "the reference holds more than max_categories" where the window's
    text column new to its numeric reference (a request id) passed the cap: a window's counts of such a column
    may be estimates (it is not tested)."""
    ref = cudrift.profile({"x": rng.normal(size=1000)}, config=ProfileConfig(max_categories=50))
    ids = np.array([f"r{i}" for i in range(200)], dtype=object)
    w = cudrift.profile({"x": rng.normal(size=100), "rid": ids[:100]}, like=ref)
    w.update({"x": rng.normal(size=100), "rid": ids[100:]})
    assert w.n_rows == 200 and w["rid"].counts.n == 200
    with pytest.raises(IncompatibleSketchError, match="more than max_categories=50"):  # a reference still refuses
        cudrift.profile({"rid": ids[:40]}, config=ProfileConfig(max_categories=50)).update({"rid": ids[40:]})


def test_settings_of_the_wrong_type_or_size_are_refused_by_name(rng):
    """A dict for config= or schema= failed with "'dict' object has no attribute 'batch_rows'"; n_bins and
    batch_rows past what can hold them failed deep in NumPy or Arrow; NumPy integers (as the sketches take them)
    were refused as "expected an integer"; a Schema of None failed iterating it."""
    data = {"x": rng.normal(size=50)}
    for kwargs, message in (({"config": {"n_bins": 5}}, r"config= must be a ProfileConfig.*ProfileConfig\(\*\*config\)"),
                            ({"schema": {"ignore": ["x"]}}, r"schema= must be a Schema.*Schema\(\*\*schema\)")):
        with pytest.raises(TypeError, match=message):
            cudrift.profile(data, **kwargs)
        with pytest.raises(TypeError, match=message):
            cudrift.DriftDetector(data, **kwargs)
    for name in ("n_bins", "batch_rows"):
        with pytest.raises(ValueError, match=f"Invalid value for {name}"):
            ProfileConfig(**{name: 10**30})
    with pytest.raises(TypeError, match=r"Schema\(numerical=...\) takes column names"):
        cudrift.Schema(numerical=None)
    config = ProfileConfig(n_bins=np.int64(7), seed=np.uint64(3))
    assert (config.n_bins, config.seed) == (7, 3) and type(config.n_bins) is int
    assert ProfileConfig.from_dict(config.to_dict()) == config
    # a profile is a mapping of its columns for `in` and iteration too
    p = cudrift.profile({"x": rng.normal(size=20), "c": list("ab") * 10})
    assert "x" in p and "z" not in p and list(p) == ["x", "c"] == p.names


def test_windows_merge_whatever_order_their_columns_new_to_the_reference_came_in(rng):
    """Windows profiled like= one reference hold its columns in its order and the columns new to it by name:
    two parts whose extra columns came in other orders merged only one way (README: "in any order")."""
    ref = cudrift.profile(pd.DataFrame({"a": rng.normal(size=50)}))
    part = {"a": rng.normal(size=5), "x": rng.normal(size=5), "y": list("abcde")}
    w1 = cudrift.profile(pd.DataFrame(part), like=ref)
    w2 = cudrift.profile(pd.DataFrame({k: part[k] for k in ("y", "a", "x")}), like=ref)
    assert list(w1.kinds) == list(w2.kinds) == ["a", "x", "y"]
    assert (w1 + w2).to_bytes() == (w2 + w1).to_bytes() and (w1 + w2).n_rows == 10
    # two references of one set of columns in other orders: refused for what it is (it said "different columns")
    a = cudrift.profile(pd.DataFrame({"a": np.arange(5.0), "y": list("abcde")}))
    b = cudrift.profile(pd.DataFrame({"y": list("abcde"), "a": np.arange(5.0)}))
    with pytest.raises(IncompatibleSketchError, match=r"same columns in another order: \['a', 'y'\] vs \['y', 'a'\]"):
        a + b


def test_save_load_roundtrip(rng, tmp_path):
    ref = cudrift.profile(_data(rng, 2000))
    path = ref.save(tmp_path / "ref.cdp")
    back = Profile.load(path)
    assert back.to_bytes() == ref.to_bytes()
    assert back.kinds == ref.kinds and back.dtypes == ref.dtypes and back.n_rows == ref.n_rows
    cur = cudrift.profile(_data(rng, 100), like=back)
    np.testing.assert_array_equal(cur.edges("x"), ref.edges("x"))
    raw = path.read_bytes()
    (tmp_path / "trunc.cdp").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError, match="trunc.cdp"):
        Profile.load(tmp_path / "trunc.cdp")
    (tmp_path / "foreign.cdp").write_bytes(b"PK\x03\x04" + raw[4:])
    with pytest.raises(FormatError, match="magic"):
        Profile.load(tmp_path / "foreign.cdp")
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    with pytest.raises(FormatError):
        Profile.from_bytes(bytes(flipped))


def test_kind_inference_and_schema(rng):
    n = 500
    d = {"few": rng.integers(0, 5, size=n), "many": rng.integers(0, 10_000, size=n),
         "flag": rng.random(n) < 0.3, "z": rng.normal(size=n)}
    p = cudrift.profile(d)
    assert p.kinds == {"few": "categorical", "many": "numerical", "flag": "categorical", "z": "numerical"}
    p2 = cudrift.profile(d, schema=Schema(numerical=["few"], categorical=["many"], ignore=["z"]))
    assert p2.kinds == {"few": "numerical", "many": "categorical", "flag": "categorical"}
    with pytest.raises(cudrift.SchemaError, match=r"\['nope'\]"):
        cudrift.profile(d, schema=Schema(numerical=["nope"]))  # a kind forced on no column: a typo
    # a column to ignore that is absent is not there to ignore (one list serves a reference and its windows)
    assert cudrift.profile(d, schema=Schema(ignore=["nope"])).kinds == p.kinds
    with pytest.raises(cudrift.SchemaError, match="both"):
        Schema(numerical=["a"], categorical=["a"])


def test_single_distinct_value_and_discrete_bins(rng):
    p = cudrift.profile({"c": np.full(1000, 3.5), "d": rng.integers(0, 3, size=1000).astype(np.float64)})
    assert p["c"].histogram.counts.sum() == 1000
    assert p["c"].moments.min == p["c"].moments.max == 3.5
    # three distinct values: each gets a bin of its own
    h = p["d"].histogram
    nonzero = h.counts[h.counts > 0]
    assert len(nonzero) == 3
    vals, cnt = np.unique(cudrift.profile({"d": np.array([0.0, 1, 2])})["d"].histogram.counts, return_counts=True)
    assert vals.max() == 1


def test_huge_category_counts_fold_deterministically(rng):
    n = 60_000
    labels = np.array([f"id{i}" for i in rng.integers(0, 30_000, size=n)], dtype=object)
    labels[:20_000] = "hot"  # a heavy hitter the tail sketch must keep
    cfg = ProfileConfig(max_categories=1000)
    p1 = cudrift.profile({"u": labels}, config=cfg)
    p2 = cudrift.profile({"u": labels}, config=cfg)
    c = p1["u"].counts
    assert len(c) <= 1000
    assert c.folded > 0
    assert c["hot"] >= 20_000 - c.max_count_error
    assert p1.to_bytes() == p2.to_bytes()


@pytest.mark.parametrize("batch_rows", [None, 700])
def test_a_reference_of_equally_frequent_categories_past_the_cap_keeps_a_full_dictionary(rng, tmp_path, batch_rows):
    """Ties at the heavy-hitters cut drop every counter; the recount fills the dictionary with exact counts."""
    import collections

    cap = 9
    labels = np.array(list("abcdefghij") * 300, dtype=object)  # 10 categories of 300 rows: none is a heavy hitter
    rng.shuffle(labels)
    data = {"c": labels}
    if batch_rows:  # several batches: keys enter the dictionary in the order the data first shows them
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = tmp_path / "r.parquet"
        pq.write_table(pa.table({"c": labels.astype(str)}), data, row_group_size=batch_rows)
    ref = cudrift.profile(data, config=ProfileConfig(max_categories=cap, batch_rows=batch_rows or 1 << 20))
    c = ref["c"].counts
    exact = collections.Counter(labels.tolist())
    assert len(c) == cap and all(c[k] == exact[k] for k in c.keys())
    assert c.folded == 3000 - sum(c[k] for k in c.keys()) == 300 and c.max_count_error == 0
    assert cudrift.profile(data, config=ProfileConfig(max_categories=cap, batch_rows=batch_rows or 1 << 20)
                           ).to_bytes() == ref.to_bytes()  # deterministic
    kept = sorted(c.keys())[0]
    cur = {"c": np.array([kept] * 500, dtype=object)}
    rep = cudrift.DriftDetector(ref).compare(cudrift.profile(cur, like=ref))
    assert rep["c"].drifted and rep["c"].statistic > 0.5  # before: every row "other" on both sides, 0.0
    same = {"c": rng.permutation(labels)[:1500]}
    assert not cudrift.DriftDetector(ref).compare(cudrift.profile(same, like=ref))["c"].drifted


def test_a_reference_past_the_cap_counts_heavy_hitters_first_and_exactly(rng):
    import collections

    ids = np.array([f"id{i}" for i in rng.integers(0, 50_000, size=60_000)], dtype=object)
    ids[rng.choice(60_000, 15_000, replace=False)] = "hot"
    ref = cudrift.profile({"u": ids}, config=ProfileConfig(max_categories=2_000))
    c = ref["u"].counts
    exact = collections.Counter(ids.tolist())
    assert len(c) == 2_000 and "hot" in c and c["hot"] == exact["hot"]
    assert all(c[k] == exact[k] for k in c.keys()) and c.folded == 60_000 - sum(c[k] for k in c.keys())


def test_windows_merge_whatever_their_column_order(rng):
    ref = cudrift.profile({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    w1 = cudrift.profile({"b": rng.normal(size=10), "a": rng.normal(size=10)}, like=ref)
    w2 = cudrift.profile({"a": rng.normal(size=10), "b": rng.normal(size=10)}, like=ref)
    assert w1.names == ["a", "b"] and (w1 + w2).n_rows == 20


def test_reference_update_refuses_what_it_could_only_estimate(rng):
    """Past max_categories, profile() recounts the dictionary exactly; update() cannot, so it says so."""
    cfg = ProfileConfig(max_categories=3)
    keys, p = np.array(list("abcdef"), dtype=object), [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]
    ref = cudrift.profile({"c": rng.choice(keys, 5000, p=p)}, config=cfg)
    before = dict(ref["c"].counts.items())
    with pytest.raises(IncompatibleSketchError, match=r"column 'c'.*max_categories=3.*one pass"):
        ref.update({"c": rng.choice(keys, 5000, p=p)})
    assert ref.n_rows == 5000 and dict(ref["c"].counts.items()) == before  # nothing half-applied
    # rows of the dictionary's own keys keep the counts exact: accepted
    ref.update({"c": np.array(["a", "b", "a"], dtype=object)})
    assert ref["c"].counts["a"] == before["a"] + 2 and ref.n_rows == 5003


def test_uint64_columns_count_their_distinct_values_exactly(rng):
    """1,000 distinct uint64 values past 2**53 are a numerical column (they once merged into one float)."""
    u = np.uint64(2**60) + rng.permutation(1000).astype(np.uint64)  # 4 distinct float64 values
    assert cudrift.profile({"u": u}).kinds["u"] == "numerical"
    few = np.array([2**63 + 1, 2**63 + 2, 2**63 + 3], dtype=np.uint64)[rng.integers(0, 3, 300)]
    assert cudrift.profile({"u": few}).kinds["u"] == "categorical"


def test_empty_like_is_identity_for_a_window_of_another_dtype(rng):
    ref = cudrift.profile({"f": rng.normal(size=3000)})  # float64
    w = cudrift.profile({"f": rng.normal(size=100).astype(np.float32)}, like=ref)
    assert (Profile.empty_like(ref) + w).to_bytes() == w.to_bytes() == (w + Profile.empty_like(ref)).to_bytes()
    assert (Profile.empty_like(ref) + w)["f"].dtype == "float32"


def test_sketch_fixes_of_the_thirteenth_session(rng):
    """A window streamed in batches, one of which holds a column only as nulls, has that column's dtype (not
    'null|string': the detector read it as a dtype change); parts profiled like= one reference merge though
    they hold a numeric column it lacks (each had edges of its own); a column of the largest float profiles;
    a categorical key-type clash names its column; merge refuses a non-Profile by name; bad settings are
    refused by ProfileConfig under their own names."""
    import pandas as pd

    from cudrift import DriftDetector, SchemaError

    ref = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    prof = cudrift.profile(ref, backend="cpu")
    b1 = pd.DataFrame({"x": rng.normal(size=100), "c": rng.choice(["a", "b"], 100)})
    b2 = pd.DataFrame({"x": rng.normal(size=100), "c": pd.Series([None] * 100, dtype=object)})
    w = cudrift.profile(b1, like=prof, backend="cpu") + cudrift.profile(b2, like=prof, backend="cpu")
    assert w.dtypes["c"] == cudrift.profile(pd.concat([b1, b2]), like=prof, backend="cpu").dtypes["c"]
    assert not [f for f in DriftDetector(prof, backend="cpu").compare(w).findings if f.check == "dtype_change"]

    parts = [pd.DataFrame({"x": rng.normal(size=150), "z": rng.normal(size=150) + k}) for k in range(3)]
    merged = sum((cudrift.profile(p, like=prof, backend="cpu") for p in parts[1:]),
                 cudrift.profile(parts[0], like=prof, backend="cpu"))
    assert merged.n_rows == 450 and merged.columns["z"].histogram is None

    big = cudrift.profile({"m": np.full(10, np.finfo(np.float64).max), "y": np.arange(10.0)}, backend="cpu")
    assert big.columns["m"].histogram.counts.sum() == 10 and big.columns["y"].moments.count == 10

    a = cudrift.profile({"k": np.array(["u", "v"] * 20, dtype=object)}, backend="cpu")
    b = cudrift.profile({"k": np.array([True, False] * 20)}, schema=Schema(categorical=["k"]), backend="cpu")
    with pytest.raises(SchemaError, match=r"^column 'k': cannot count categories of different key types"):
        a + b
    with pytest.raises(TypeError, match="cannot merge a Profile with a NumericColumnProfile"):
        prof.merge(prof.columns["x"])
    with pytest.raises(TypeError):
        prof + 1
    # a profile saved before these checks (categorical columns only, which never read them) still loads
    old = ProfileConfig.from_dict({**ProfileConfig().to_dict(), "quantile_k": 1, "seed": -1})
    assert (old.quantile_k, old.seed, old.n_bins) == (1, -1, 100)
    for bad, msg in (({"quantile_k": 1}, r"quantile_k: 1 \(expected an integer in \[2, "),
                     ({"seed": -1}, r"seed: -1 \(expected an integer in \[0, 2\*\*64\)\)"),
                     ({"seed": 2**64}, "seed: 18446744073709551616")):
        with pytest.raises(ValueError, match=rf"Invalid value for {msg}"):
            ProfileConfig(**bad)


def test_merged_references_past_max_categories_are_refused(rng):
    """Each reference recounts its dictionary exactly; a merge past max_categories could only estimate it
    (ties cleared every counter; Zipf counts came out low and the detector saw drift in a same-distribution
    window): Profile.merge refuses it and says what to do, while merges that stay exact, windows profiled
    like= a reference (however many categories they see) and the identity are accepted."""
    cfg = ProfileConfig(max_categories=2)
    a = cudrift.profile({"c": np.array(list("abc") * 5, dtype=object)}, config=cfg)
    b = cudrift.profile({"c": np.array(list("dec") * 5, dtype=object)}, config=cfg)
    for x, y in ((a, b), (b, a)):
        with pytest.raises(IncompatibleSketchError, match=r"column 'c'.*max_categories=2.*one pass.*max_categories"):
            x + y
    # Zipf categories, 80 of them, a cap of 40: the same refusal; one pass over the union is exact
    p = 1 / np.arange(1, 81)
    keys = np.array([f"k{i}" for i in range(80)], dtype=object)
    parts = [rng.choice(keys, 5000, p=p / p.sum()) for _ in range(2)]
    cfg = ProfileConfig(max_categories=40)
    za, zb = (cudrift.profile({"c": x}, config=cfg) for x in parts)
    with pytest.raises(IncompatibleSketchError, match="one pass"):
        za + zb
    whole = cudrift.profile({"c": np.concatenate(parts)}, config=cfg)["c"].counts
    truth = dict(zip(*np.unique(np.concatenate(parts), return_counts=True)))
    assert all(whole[k] == truth[k] for k in whole.keys()) and whole.max_count_error == 0

    # a merge that stays exact: a reference past the cap and rows of its own dictionary's keys
    cfg = ProfileConfig(max_categories=2)
    more = cudrift.profile({"c": np.array(list("ab") * 3, dtype=object)}, config=cfg)
    m = a + more
    assert dict(m["c"].counts.items()) == {"a": 8, "b": 8} and m["c"].counts.folded == 5
    assert (a + Profile.empty_like(a)).to_bytes() == a.to_bytes() == (Profile.empty_like(a) + a).to_bytes()
    # windows like= the reference count its dictionary exactly; a column new to it may be an estimate
    w = [cudrift.profile({"c": np.array(list(s), dtype=object),
                          "id": np.array([f"{s}{i}" for i in range(len(s))], dtype=object)}, like=a)
         for s in ("abcdefg", "gfedcbaab")]
    ww = w[0] + w[1]
    assert dict(ww["c"].counts.items()) == {"a": 3, "b": 3} and ww["c"].unseen_count == 10
    assert ww["id"].reference_categories is None and ww["id"].counts.max_count_error > 0
    # so do windows of a reference without categorical columns whose parts hold a new column past the cap, or
    # only together (README's Dask pattern with an id column), in any order of merges
    num = cudrift.profile({"x": rng.normal(size=50)}, config=ProfileConfig(max_categories=10))
    parts = [cudrift.profile({"x": rng.normal(size=n), "id": np.array([f"{s}{i}" for i in range(n)], dtype=object)},
                             like=num) for s, n in (("p", 12), ("q", 8), ("r", 7))]
    assert parts[0]["id"].counts.max_count_error > 0 and parts[1]["id"].counts.max_count_error == 0
    for merged in ((parts[0] + parts[1]) + parts[2], parts[0] + (parts[1] + parts[2]), parts[1] + parts[2]):
        assert merged["id"].counts.max_count_error > 0


def test_merge_is_commutative_in_its_settings(rng, tmp_path):
    """Merge kept the left profile's n_bins, categorical_max_distinct and batch_rows: a + b and b + a differed
    (the kind a column new to them got, and how a later window was cut into batches). n_bins and
    categorical_max_distinct are merge keys now; batch_rows, how data is read, is the smaller of the two, and
    profile(like=, config=) reads with the config's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def data(n):  # x of few values: equal edges whatever the rows, so references of it merge
        return {"c": rng.choice(np.array(["a", "b", "c"], dtype=object), n), "x": rng.integers(0, 5, n) * 1.0}

    a = cudrift.profile(data(3000), config=ProfileConfig(batch_rows=64))
    b = cudrift.profile(data(3000), config=ProfileConfig(batch_rows=1 << 20))
    ab, ba = a + b, b + a
    assert ab.to_bytes() == ba.to_bytes() and ab.config.batch_rows == ba.config.batch_rows == 64
    assert (Profile.empty_like(b) + a).to_bytes() == a.to_bytes() == (a + Profile.empty_like(b)).to_bytes()
    for key, other in (("n_bins", 50), ("categorical_max_distinct", 30)):
        c = cudrift.profile(data(3000), config=ProfileConfig(**{key: other}))
        for x, y in ((b, c), (c, b)):
            with pytest.raises(IncompatibleSketchError, match=rf"{key}=\d+ vs {key}=\d+"):
                x + y

    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({"x": rng.normal(2, 1.5, 5000)}), path)
    ref = cudrift.profile({"x": rng.normal(2, 1.5, 5000)}, config=ProfileConfig(quantile_k=16))
    w = cudrift.profile(path, like=ref, config=ProfileConfig(quantile_k=16, batch_rows=100))
    assert w.config.batch_rows == 100 and np.array_equal(w.edges("x"), ref.edges("x"))
    small = cudrift.profile({"x": rng.normal(size=10)}, config=ProfileConfig(quantile_k=16, batch_rows=100))
    assert w["x"].quantiles == cudrift.profile(path, like=small)["x"].quantiles  # read in 100-row batches
    assert w["x"].quantiles != cudrift.profile(path, like=ref)["x"].quantiles
    with pytest.raises(IncompatibleSketchError, match="n_bins=100 vs n_bins=3"):
        cudrift.profile(path, like=ref, config=ProfileConfig(quantile_k=16, n_bins=3))


def test_empty_like_refuses_a_skip_that_is_not_a_count(rng, tmp_path):
    """A negative skip gave a window whose sample started below index 0: it saved but did not load."""
    ref = cudrift.profile({"x": rng.normal(size=10), "c": np.array(list("ab") * 5, dtype=object)})
    only_cats = cudrift.profile({"c": np.array(list("ab") * 5, dtype=object)})
    for bad in (-100, -1, 1.5, True, "3", None):
        for like in (ref, only_cats):
            with pytest.raises(ValueError, match=rf"Invalid value for skip: {re.escape(repr(bad))} "
                                                 r"\(expected an integer >= 0\)"):
                Profile.empty_like(like, skip=bad)
    for ok in (0, 7, np.int64(7)):
        w = Profile.empty_like(ref, skip=ok) + cudrift.profile({"x": rng.normal(size=5),
                                                                 "c": np.array(["a"] * 5, dtype=object)}, like=ref)
        assert Profile.load(w.save(tmp_path / "w.cdp")).to_bytes() == w.to_bytes()


@pytest.mark.parametrize("errors", ["strict", "Raise", None, "ignore"])
def test_an_unknown_errors_value_is_refused_not_read_as_report(errors, tmp_path):
    """profile(..., errors="strict") was accepted and behaved as "report": the column the caller wanted refused
    was dropped without a word."""
    from cudrift.io._source import csv_source
    from cudrift.sketches.profile import profile_keeping_sorted

    data = {"x": np.arange(10.0), "m": np.array([1, "a"] * 5, dtype=object)}
    says = re.escape(f"Invalid value for errors: {errors!r} (expected 'raise' or 'report')")
    with pytest.raises(ValueError, match=says):
        cudrift.profile(data, errors=errors)
    with pytest.raises(ValueError, match=says):
        profile_keeping_sorted(data, errors=errors)
    with pytest.raises(ValueError, match=says):
        cudrift.io.as_source(data, errors=errors)
    path = tmp_path / "w.csv"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match=says):
        csv_source(path, errors=errors)


def test_whole_floats_past_64_bits_are_refused_as_category_keys_not_made_int64_min(rng):
    """Whole floats at or past 2**63 in a categorical column were cast to int64 unchecked: every one became the
    key -9223372036854775808 (with only a RuntimeWarning). Values of a uint64 column (2**63 to 2**64, arriving
    as float64 when pandas gave it a missing value) are its uint64 keys; past 2**64 no integer column holds them."""
    cat = Schema(categorical=["k"])
    bad = np.array([1e19, 2e19, 3e19, 5.0] * 25)
    with pytest.raises(cudrift.SchemaError, match=r"column 'k' is categorical but holds 3e\+19, past the 64-bit "
                                                  r"integer range"):
        cudrift.profile({"k": bad}, schema=cat)
    p = cudrift.profile({"k": bad, "x": np.arange(100.0)}, schema=cat, errors="report")
    assert p.names == ["x"] and "past the 64-bit integer range" in p.errors["k"]
    with pytest.raises(cudrift.SchemaError, match=r"holds -1e\+19, past the 64-bit"):
        cudrift.profile({"k": np.array([-1e19, 1.0])}, schema=cat)
    # update of a reference with an integer column: refused, the reference unchanged
    ref = cudrift.profile({"k": np.arange(100) % 3})
    before = dict(ref["k"].counts.items())
    with pytest.raises(cudrift.SchemaError, match=r"column 'k' is categorical but holds 2e\+19, past the 64-bit"):
        ref.update({"k": np.array([1.0, np.nan, 2e19])})
    assert ref.n_rows == 100 and dict(ref["k"].counts.items()) == before
    # the ends of the range are keys: int64's lowest, uint64's values past int64
    ends = cudrift.profile({"k": np.array([-2.0**63, 0.0, 2.0**63, 1e19, np.nan])}, schema=cat)["k"]
    assert dict(ends.counts.items()) == {-2**63: 1, 0: 1, 2**63: 1, 10**19: 1} and ends.null_count == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the unchecked cast warned "invalid value encountered in cast")
        cudrift.profile({"k": np.array([1e19, 2.0**63, np.nan])}, schema=cat)
    # a uint64 reference and its window read as float64 (a missing value): the same keys, none unseen
    keys = np.array([10**19, 2**63, 3], dtype=np.uint64)
    ref = cudrift.profile({"k": rng.choice(keys, 300)})
    window = cudrift.profile({"k": np.r_[keys.astype(np.float64), np.nan]}, like=ref)
    assert dict(window["k"].counts.items()) == {3: 1, 2**63: 1, 10**19: 1} and window["k"].unseen_count == 0
    # one batch of an int64 column's and a uint64 column's keys counts as those batches apart
    mixed = np.array([-1.0, 1e19, 5.0, 1e19])
    whole = cudrift.profile({"k": mixed}, schema=cat)["k"]
    parts = cudrift.profile({"k": mixed[:1]}, schema=cat)["k"] + cudrift.profile({"k": mixed[1:]}, schema=cat)["k"]
    assert dict(whole.counts.items()) == dict(parts.counts.items()) == {-1: 1, 5: 1, 10**19: 2}


def test_update_reads_only_the_columns_the_profile_profiles(rng):
    """update() read its data with errors="raise": a column the profile does not profile (a timestamp column the
    reference's schema ignored) refused every batch."""
    def frame(n):
        return pd.DataFrame({"x": rng.normal(size=n), "t": pd.date_range("2024-01-01", periods=n, freq="min")})

    ref = cudrift.profile(frame(300), schema=Schema(ignore=["t"]))
    assert ref.names == ["x"]
    ref.update(frame(200))
    assert ref.n_rows == ref["x"].count == 500
    window = Profile.empty_like(ref).update(frame(100))
    assert window.n_rows == window["x"].count == 100
    # a profiled column that cannot be read is refused by name, and nothing is counted
    with pytest.raises(cudrift.SchemaError, match=r"column 'x' mixes value types"):
        ref.update(frame(50).assign(x=["a", 1] * 25))
    assert ref.n_rows == ref["x"].count == 500


def test_update_refuses_booleans_in_a_numerical_column_as_compare_does(rng):
    """compare() of a window whose numerical column holds booleans reports a kind change, and profile(like=) makes
    it categorical; update() took them as 0 and 1, and compare() of that window tested them as numbers."""
    ref = cudrift.profile({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    bools = {"x": np.array([True, False] * 50), "y": rng.normal(size=100)}
    det = cudrift.DriftDetector(ref)
    assert det.compare(bools)["x"].status == "error" and "kind changed" in det.compare(bools)["x"].message
    like = cudrift.profile(bools, like=ref)
    assert like.kinds["x"] == "categorical" and det.compare(like)["x"].status == "error"
    says = r"column 'x' is numerical in this profile, but the data holds booleans in it \(dtype bool\)"
    for p in (Profile.empty_like(ref), ref):
        n, counts = p.n_rows, (p["x"].count, p["y"].count)
        with pytest.raises(cudrift.SchemaError, match=says):
            p.update(bools)
        assert p.n_rows == n and (p["x"].count, p["y"].count) == counts  # all or nothing
    with pytest.raises(cudrift.SchemaError, match=r"column 'x' .* holds text in it \(dtype string\)"):
        Profile.empty_like(ref).update({"x": np.array(["1.5", "2"] * 50, dtype=object), "y": rng.normal(size=100)})
    # integers as a pandas Categorical are numbers, as profile(like=) reads them
    w = Profile.empty_like(ref).update(pd.DataFrame({"x": pd.Categorical([1, 2] * 50), "y": rng.normal(size=100)}))
    assert w["x"].moments.count == 100 and det.compare(w)["x"].status == "ok"


def test_a_reference_column_of_no_finite_value_gets_edges_from_its_first_finite_update(rng, tmp_path):
    """A reference whose first rows held no finite value in a numeric column never got histogram edges there:
    updated with finite values, its histogram tests failed, saying the column was new to the reference."""
    def rows(n, x=None):
        return {"x": rng.normal(size=n) if x is None else x, "y": rng.normal(size=n)}

    first = rows(50, np.full(50, np.nan))
    ref = cudrift.profile(first)
    assert ref.edges("x") is None and not ref.window
    assert not (ref + Profile.empty_like(ref)).window and not (Profile.empty_like(ref) + ref).window
    y_edges = ref.edges("y")
    # windows of it profiled before: no edges for x, and they merge however they were made
    windows = [cudrift.profile(rows(80), like=ref), Profile.empty_like(ref).update(rows(70)),
               Profile.empty_like(ref).update(rows(5, np.full(5, np.nan))).update(rows(60))]
    assert all(w.window and w.edges("x") is None for w in windows)
    merged = windows[0] + windows[1] + windows[2]
    assert merged.window and merged.edges("x") is None and merged["x"].moments.count == 210
    loaded = Profile.from_bytes(windows[1].to_bytes())
    assert loaded.window and loaded.update(rows(10)).edges("x") is None
    # the reference gets the edges profile() gives all its rows, counted exactly; y keeps its first batch's
    more = rows(400)
    ref.update(more)
    whole = cudrift.profile({n: np.r_[first[n], more[n]] for n in first})
    np.testing.assert_array_equal(ref.edges("x"), whole.edges("x"))
    np.testing.assert_array_equal(ref["x"].histogram.counts, whole["x"].histogram.counts)
    assert ref["x"].histogram.counts.sum() == 400
    np.testing.assert_array_equal(ref.edges("y"), y_edges)
    rep = cudrift.DriftDetector(ref, policy="psi").compare(rows(300))
    assert rep["x"].status == "ok" and rep["x"].statistic is not None
    ref.save(tmp_path / "ref.cdp")
    assert not Profile.load(tmp_path / "ref.cdp").window


def test_profiles_saved_before_they_said_whether_they_are_windows_load_as_their_columns_tell(rng):
    """A profile written without the "window" flag is a window where its categorical columns carry a reference's
    dictionary (how merge tells them apart); a reference otherwise."""
    from cudrift.sketches import _format

    ref = cudrift.profile({"x": rng.normal(size=200), "k": rng.integers(0, 3, 200)})
    for p, window in ((ref, False), (cudrift.profile({"x": rng.normal(size=50), "k": [1] * 50}, like=ref), True),
                      (Profile.empty_like(ref), True)):
        version, meta, arrays = _format.unpack(p.to_bytes(), "cudrift.profile", 1)
        assert meta.pop("window") is window
        assert Profile.from_bytes(_format.pack("cudrift.profile", version, meta, arrays)).window is window
    # numeric columns only: either, so not known (None), and update() fixes no edges on it, as before the flag (an
    # old window of an all-NaN column given edges no longer merged with its sibling windows)
    ref = cudrift.profile({"x": np.full(100, np.nan), "y": rng.normal(size=100)})
    old = cudrift.profile({"x": np.full(50, np.nan), "y": rng.normal(size=50)}, like=ref)
    version, meta, arrays = _format.unpack(old.to_bytes(), "cudrift.profile", 1)
    del meta["window"]
    loaded = Profile.from_bytes(_format.pack("cudrift.profile", version, meta, arrays))
    assert loaded.window is None
    loaded.update({"x": rng.normal(size=50), "y": rng.normal(size=50)})
    assert loaded["x"].histogram is None and loaded.window is None
    merged = loaded + cudrift.profile({"x": rng.normal(size=50), "y": rng.normal(size=50)}, like=ref)
    assert merged.n_rows == 150 and merged.window is True
    assert Profile.from_bytes(loaded.to_bytes()).window is None


def test_profiles_are_built_in_an_atexit_handler():
    """Flushing the last window at exit: profile() (a reference of several columns, its edges counted in a
    second pass, and a window like= it) and Profile.update run while the interpreter shuts down, where a thread
    pool takes no new work ("cannot schedule new futures after interpreter shutdown"), and give the profile
    they give before it."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import atexit
        import numpy as np
        import cudrift

        rng = np.random.default_rng(0)
        data = {"x": rng.normal(size=5000), "y": rng.exponential(size=5000), "k": rng.integers(0, 4, 5000)}
        before = cudrift.profile(data, backend="cpu")
        window = cudrift.Profile.empty_like(before)

        def flush():
            ref = cudrift.profile(data, backend="cpu")
            one = cudrift.profile({"x": data["x"]}, like=ref, backend="cpu")
            window.update(data)
            print(ref.to_bytes() == before.to_bytes(), one.n_rows, window.n_rows,
                  window["x"].histogram.counts.tolist() == before["x"].histogram.counts.tolist())

        atexit.register(flush)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "5000", "5000", "True"], out.stderr


def test_one_column_is_profiled_on_the_calling_thread(rng, monkeypatch):
    """One column needs no thread pool: profile() (reference: both passes; window like= it) and Profile.update
    start none; several columns are spread over threads."""
    from concurrent.futures import ThreadPoolExecutor

    from cudrift import backends

    monkeypatch.setattr(backends, "usable_cpus", lambda: 4)
    pools = []
    real = ThreadPoolExecutor.__init__
    monkeypatch.setattr(ThreadPoolExecutor, "__init__", lambda self, *a, **k: pools.append(self) or real(self, *a, **k))
    ref = cudrift.profile({"x": rng.normal(size=1000)})
    cudrift.profile({"x": rng.normal(size=100)}, like=ref)
    Profile.empty_like(ref).update({"x": rng.normal(size=100)})
    assert pools == []
    cudrift.profile({"x": rng.normal(size=1000), "y": rng.normal(size=1000)})
    assert pools
