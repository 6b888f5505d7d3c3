"""DriftDetector: auto policy, exactness against SciPy, sketches with bounds, reports, bad input."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon

import cudrift
from cudrift import DriftDetector, DriftReport, EmptyInputError, Profile, SchemaError
from cudrift.detect import _compute
from cudrift.detect.policy import auto_test


def _window(rng, n, shift=0.0, cat_p=(0.5, 0.3, 0.2)):
    return pd.DataFrame({
        "a": rng.normal(0.0, 1.0, size=n),
        "b": rng.normal(shift, 1.0, size=n).astype(np.float32),
        "c": rng.choice(["x", "y", "z"], size=n, p=cat_p),
        "flag": rng.random(n) < 0.3,
        "k": rng.integers(0, 4, size=n).astype(np.float64),  # numerical, 4 distinct values
    })


@pytest.mark.parametrize(
    "kind,n_ref,n_unique,expected",
    [("numerical", 1000, 6, "ks"), ("numerical", 1000, 5, "chisquare"), ("numerical", 1001, 6, "wasserstein_normalized"),
     ("numerical", 1001, 5, "jensenshannon"), ("categorical", 10, 2, "ztest"), ("categorical", 1000, 3, "chisquare"),
     ("categorical", 1001, 2, "jensenshannon"), ("numerical", 50, 2, "ztest")],
)
def test_auto_rule(kind, n_ref, n_unique, expected):
    assert auto_test(kind, n_ref, n_unique) == expected


def test_auto_policy_picks_tests_per_column(rng):
    small = DriftDetector(_window(rng, 800)).compare(_window(rng, 800))
    assert {f.column: f.test for f in small.features} == {
        "a": "ks", "b": "ks", "c": "chisquare", "flag": "ztest", "k": "chisquare"}
    large = DriftDetector(_window(rng, 5000)).compare(_window(rng, 3000))
    assert {f.column: f.test for f in large.features} == {
        "a": "wasserstein_normalized", "b": "wasserstein_normalized", "c": "jensenshannon",
        "flag": "jensenshannon", "k": "jensenshannon"}


@pytest.mark.parametrize("n", [800, 3000])
def test_test_for_names_the_test_compare_runs_on_a_window_of_the_references_values(rng, n):
    ref = _window(rng, n)
    det = DriftDetector(ref)
    rep = det.compare(_window(rng, 500))
    assert {f.column: det.test_for(f.column) for f in rep.features} == {f.column: f.test for f in rep.features}
    assert DriftDetector(ref, policy={"a": "psi"}).test_for("a") == "psi"
    with pytest.raises(KeyError, match="no column 'nope'"):
        det.test_for("nope")


def test_drift_only_in_shifted_columns(rng):
    ref = _window(rng, 20_000)
    det = DriftDetector(ref)
    same = det.compare(_window(rng, 20_000))
    assert same.drifted_columns == [] and not same.dataset_drift
    moved = det.compare(_window(rng, 20_000, shift=0.5, cat_p=(0.2, 0.3, 0.5)))
    assert moved.drifted_columns == ["b", "c"]
    assert not moved.dataset_drift  # 2 of 5 < 0.5
    assert DriftDetector(ref, drift_share=0.4).compare(_window(rng, 20_000, shift=0.5, cat_p=(0.2, 0.3, 0.5))).dataset_drift


def test_exact_statistics_match_scipy(rng):
    ref, cur = _window(rng, 900), _window(rng, 700, shift=0.2)
    rep = DriftDetector(ref).compare(cur)
    for col in ("a", "b"):
        f = rep[col]
        exp = st.ks_2samp(ref[col].to_numpy(np.float64), cur[col].to_numpy(np.float64))
        assert f.statistic == pytest.approx(exp.statistic, rel=1e-12)
        assert f.pvalue == pytest.approx(exp.pvalue, rel=1e-9)
        assert f.statistic_error == 0.0
    # chi-square on category counts, as a 2×k contingency table
    f = rep["c"]
    table = np.array([ref["c"].value_counts().reindex(["x", "y", "z"]).to_numpy(),
                      cur["c"].value_counts().reindex(["x", "y", "z"]).to_numpy()])
    exp = st.chi2_contingency(table)
    assert f.statistic == pytest.approx(exp.statistic, rel=1e-9)
    assert f.pvalue == pytest.approx(exp.pvalue, rel=1e-9)
    # two-proportion z-test written out
    p1, p2 = ref["flag"].mean(), cur["flag"].mean()
    n1, n2 = len(ref), len(cur)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    f = rep["flag"]
    assert abs(f.statistic) == pytest.approx(abs(z), rel=1e-9)
    assert f.pvalue == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-9)


def test_windows_past_max_batch_rows_still_test_exactly(rng, monkeypatch):
    """Columns profiled in pieces (MAX_BATCH_ROWS) keep exact rank tests: the pieces' sorted values are merged."""
    from cudrift.sketches import column

    monkeypatch.setattr(column, "MAX_BATCH_ROWS", 128)
    ref, cur = _window(rng, 900), _window(rng, 700, shift=0.2)
    det = DriftDetector(ref)
    assert det.reference["a"].quantiles.n_batches == 8  # 900 rows in pieces of 128
    rep = det.compare(cur)
    for col in ("a", "b"):
        exp = st.ks_2samp(ref[col].to_numpy(np.float64), cur[col].to_numpy(np.float64))
        assert rep[col].statistic == pytest.approx(exp.statistic, rel=1e-12) and rep[col].statistic_error == 0.0
        assert rep[col].pvalue == pytest.approx(exp.pvalue, rel=1e-9)


def test_large_reference_statistics_match_formulas(rng):
    ref, cur = _window(rng, 6000), _window(rng, 4000, shift=0.3, cat_p=(0.4, 0.4, 0.2))
    rep = DriftDetector(ref).compare(cur)
    for col in ("a", "b"):
        r, c = ref[col].to_numpy(np.float64), cur[col].to_numpy(np.float64)
        assert rep[col].statistic == pytest.approx(st.wasserstein_distance(r, c) / np.std(r), rel=1e-9)
    cats = ["x", "y", "z"]
    pr = ref["c"].value_counts().reindex(cats).to_numpy()
    pc = cur["c"].value_counts().reindex(cats).to_numpy()
    assert rep["c"].statistic == pytest.approx(jensenshannon(pr / pr.sum(), pc / pc.sum()), rel=1e-9)
    assert rep["b"].drifted and not rep["a"].drifted


def test_named_policy_and_thresholds(rng):
    ref, cur = _window(rng, 3000), _window(rng, 3000, shift=0.1)
    det = DriftDetector(ref, policy={"a": "anderson", "b": "cramervonmises", "c": "psi"},
                        thresholds={"c": 0.5, "ks": 0.01})
    rep = det.compare(cur)
    assert rep["a"].test == "anderson" and rep["b"].test == "cramervonmises" and rep["c"].test == "psi"
    assert rep["c"].threshold == 0.5
    r, c = ref["b"].to_numpy(np.float64), cur["b"].to_numpy(np.float64)
    exp = st.cramervonmises_2samp(r, c)
    assert rep["b"].statistic == pytest.approx(exp.statistic, rel=1e-9)
    assert rep["b"].pvalue == pytest.approx(exp.pvalue, rel=1e-9)
    all_ks = DriftDetector(ref, policy="ks", thresholds={"ks": 0.01}).compare(cur)
    assert all_ks["a"].test == "ks" and all_ks["a"].threshold == 0.01
    assert all_ks["c"].test in ("chisquare", "jensenshannon")  # ks does not apply to categories
    with pytest.raises(ValueError, match="sideways|Invalid value for policy"):
        DriftDetector(ref, policy="sideways")
    with pytest.raises(ValueError, match="Invalid test 'nope' for column 'a'"):
        DriftDetector(ref, policy={"a": "nope"})


def test_corrections(rng):
    ref = pd.DataFrame({f"x{i}": rng.normal(size=500) for i in range(8)})
    cur = pd.DataFrame({f"x{i}": rng.normal(0.15 * (i % 3 == 0), 1.0, size=500) for i in range(8)})
    raw = DriftDetector(ref, policy="ks").compare(cur)
    p = np.array([f.pvalue for f in raw.features])
    bonf = DriftDetector(ref, policy="ks", correction="bonferroni").compare(cur)
    np.testing.assert_allclose([f.pvalue_adjusted for f in bonf.features], np.minimum(p * 8, 1), rtol=1e-12)
    bh = DriftDetector(ref, policy="ks", correction="bh").compare(cur)
    np.testing.assert_allclose([f.pvalue_adjusted for f in bh.features],
                               st.false_discovery_control(p, method="bh"), rtol=1e-12)
    assert all(f.drifted == (f.pvalue_adjusted < 0.05) for f in bh.features)
    with pytest.raises(ValueError, match="correction"):
        DriftDetector(ref, correction="holm")


@pytest.mark.parametrize("odd", [False, True])
def test_ks_from_profiles_merged_past_int64_keeps_its_bound(odd):
    """Profiles merged until n_ref * n_cur passes 2**63 (1e10 x 6e9 rows): KS from the sketches stays within
    statistic_error of SciPy's on the raw values (the counts' integer keys had wrapped: KS 0.140 and 0.098
    against 0.142). Doubling a profile keeps its empirical CDF; ``odd`` adds one row to each side so that the
    counts share no factor and the keys are floats (one row in 1e10 moves the CDFs by 1e-10)."""
    rng = np.random.default_rng(0)  # (a draw where the wrapped keys gave 0.1398 for 0.1424)
    a, b = rng.normal(size=5000), rng.normal(0.3, 1.0, size=3000)
    ref = cudrift.profile({"x": a}, backend="cpu")
    cur = cudrift.profile({"x": b}, like=ref, backend="cpu")
    for _ in range(21):
        ref, cur = ref + ref, cur + cur
    if odd:
        ref = ref + cudrift.profile({"x": a[:1]}, like=ref, backend="cpu")
        cur = cur + cudrift.profile({"x": b[:1]}, like=ref, backend="cpu")
    f = DriftDetector(ref, policy="ks", backend="cpu").compare(cur)["x"]
    assert f.n_reference * f.n_current > 2**63
    exact = st.ks_2samp(a, b).statistic
    assert abs(f.statistic - exact) <= f.statistic_error + 1e-9 and f.statistic_error < 1e-3, (f.statistic, exact)


def test_normalized_wasserstein_claims_no_bound_when_its_scale_comes_from_the_sample(rng):
    """From profiles of values near 1e300 (or 1e-300) the moments' squares overflow (underflow), and the
    reference's scale is taken from its 10,000-point sample: an estimate no bound covers, so statistic_error is
    NaN there rather than a bound the exact distance can lie outside of (0.1105 +- 0.0085 for SciPy's 0.0921
    on this data); at scale 1 the bound holds."""
    base = rng.normal(size=40_000)
    base[rng.choice(base.size, 40, replace=False)] *= 30  # rare outliers a 10,000-point sample may miss
    cur = rng.normal(0.05, 1.1, size=30_000)
    for scale in (1.0, 1e300, 1e-300):
        a, b = base * scale, cur * scale
        ref = cudrift.profile({"x": a}, backend="cpu")
        f = DriftDetector(ref, policy="wasserstein_normalized", backend="cpu").compare(
            cudrift.profile({"x": b}, like=ref, backend="cpu"))["x"]
        exact = st.wasserstein_distance(a / scale, b / scale) / np.std(a / scale)
        if scale == 1.0:
            assert abs(f.statistic - exact) <= f.statistic_error
        else:
            assert np.isnan(f.statistic_error), (scale, f.statistic, f.statistic_error, exact)
            assert f.statistic == pytest.approx(exact, rel=0.5)  # an estimate, in the right range


def test_cvm_and_anderson_from_large_profiles_report_drift_only_where_the_sketches_show_it(rng):
    """Cramér-von Mises and Anderson-Darling from sketches of 2e6 rows: their bounds are loose (they widen with
    n / k), and the interval's midpoint flagged drift on a window of the reference's own rows (AD 5.1, p 0.003).
    The statistic is now the interval's lower end: identical windows do not drift, SciPy's value on the raw
    rows stays within statistic_error, and a 0.05-sd shift is still found."""
    import warnings

    a = rng.normal(size=2_000_000)
    ref = cudrift.profile({"x": a}, backend="cpu")
    same = cudrift.profile({"x": a}, like=ref, backend="cpu")
    b = a[:400_000] + 0.05
    shifted = cudrift.profile({"x": b}, like=ref, backend="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (SciPy's p-value capped at 0.25)
        exact = {"anderson": st.anderson_ksamp([a, a], variant="midrank").statistic,
                 "cramervonmises": st.cramervonmises_2samp(a, a).statistic}
    for test in ("anderson", "cramervonmises"):
        det = DriftDetector(ref, policy=test, backend="cpu")
        f = det.compare(same)["x"]
        assert f.statistic_error > 0 and not f.drifted, (test, f.statistic, f.pvalue)
        assert abs(f.statistic - exact[test]) <= f.statistic_error, (test, f.statistic, exact[test])
        g = det.compare(shifted)["x"]
        assert g.drifted and g.pvalue <= 0.01, (test, g.statistic, g.pvalue)


def test_normalized_wasserstein_of_values_whose_squares_are_subnormal(rng):
    """Values near 1e-161: their squared deviations are subnormal, so the moments' std came out 0.2% low and the
    exact (raw-data) path reported 0.4981 with statistic_error 0 for SciPy's 0.4971. The std is now taken
    from the sorted data there (exact), and from a profile the distance claims no bound."""
    a0, b0 = rng.normal(size=20_000), rng.normal(0.5, 1.0, size=20_000)
    exact = st.wasserstein_distance(a0, b0) / np.std(a0)  # scale-free
    a, b = a0 * 1e-161, b0 * 1e-161
    f = DriftDetector({"x": a}, policy="wasserstein_normalized", backend="cpu").compare({"x": b})["x"]
    assert f.statistic_error == 0.0 and f.statistic == pytest.approx(exact, rel=1e-9)
    assert cudrift.stats.wasserstein_normalized(a, b).statistic == pytest.approx(exact, rel=1e-9)
    ref = cudrift.profile({"x": a}, backend="cpu")
    g = DriftDetector(ref, policy="wasserstein_normalized", backend="cpu").compare(
        cudrift.profile({"x": b}, like=ref, backend="cpu"))["x"]
    assert np.isnan(g.statistic_error) and g.statistic == pytest.approx(exact, rel=0.05)


def test_profile_path_reports_error_bounds(rng):
    ref, cur = _window(rng, 30_000), _window(rng, 25_000, shift=0.05)
    exact = DriftDetector(ref, policy={"a": "ks", "b": "wasserstein_normalized"}).compare(cur)
    sk = DriftDetector(cudrift.profile(ref), policy={"a": "ks", "b": "wasserstein_normalized"})
    approx = sk.compare(cudrift.profile(cur, like=sk.reference))
    for col in ("a", "b"):
        e, a = exact[col], approx[col]
        assert e.statistic_error == 0.0
        assert a.statistic_error > 0.0
        assert abs(a.statistic - e.statistic) <= a.statistic_error
    assert not approx.exact and exact.exact
    # histogram and category tests are exact from profiles
    assert approx["c"].statistic == pytest.approx(exact["c"].statistic, rel=1e-12)
    # exact="never" on data uses the sketches too; a tiny memory budget as well
    never = DriftDetector(ref, exact="never").compare(cur)
    budget = DriftDetector(ref, memory_budget=1000).compare(cur)
    assert never["a"].statistic_error > 0 and budget["a"].statistic_error > 0
    with pytest.raises(ValueError, match="memory_budget"):
        DriftDetector(ref, exact="always", memory_budget=1000)


def test_current_profile_must_be_like_reference(rng):
    det = DriftDetector(_window(rng, 2000))
    own = cudrift.profile(_window(rng, 2000))
    with pytest.raises(cudrift.IncompatibleSketchError, match="like=reference"):
        det.compare(own)
    merged = Profile.empty_like(det.reference)
    for _ in range(3):
        merged = merged + cudrift.profile(_window(rng, 700), like=det.reference)
    rep = det.compare(merged)
    assert rep.n_current_rows == 2100 and rep.n_tested == 5


def test_report_json_roundtrip(rng, tmp_path):
    rep = DriftDetector(_window(rng, 1500)).compare(_window(rng, 1200, shift=1.0))
    text = rep.to_json()
    back = DriftReport.from_json(text)
    assert back == rep
    d = json.loads(text)
    assert d["format"] == "cudrift.report" and d["version"] == 1
    with pytest.raises(cudrift.FormatError):
        DriftReport.from_json('{"format": "other"}')
    with pytest.raises(cudrift.FormatError):
        DriftReport.from_json("not json")
    assert "dataset:" in rep.summary_table()


def test_data_quality_findings(rng):
    ref = _window(rng, 3000)
    ref["const"] = 1.0
    cur = _window(rng, 2000, shift=8.0)
    cur = cur.drop(columns=["k"])
    cur["new"] = 1.0
    cur["a"] = cur["a"].astype(np.float32)
    cur["flag"] = cur["flag"].astype(object)
    cur.loc[: 999, "flag"] = None  # null share 0 → 0.5
    cur["const"] = 1.0
    cur.loc[:9, "c"] = "w"  # unseen category
    rep = DriftDetector(ref).compare(cur)
    checks = {(f.check, f.column) for f in rep.findings}
    assert ("missing_column", "k") in checks
    assert ("extra_column", "new") in checks
    assert ("dtype_change", "a") in checks
    assert ("null_share_change", "flag") in checks
    assert ("out_of_range", "b") in checks
    assert ("unseen_categories", "c") in checks
    assert ("constant_column", "const") in checks
    assert rep["k"].status == "missing"
    unseen = [f for f in rep.findings if f.check == "unseen_categories"][0]
    assert unseen.value == pytest.approx(10 / 2000)
    oor = [f for f in rep.findings if f.check == "out_of_range" and f.column == "b"][0]
    b = cur["b"].to_numpy()
    assert oor.value == pytest.approx(np.mean((b < ref["b"].min()) | (b > ref["b"].max())))


def test_all_null_current_column_reports_no_data(rng):
    ref = _window(rng, 2000)
    cur = _window(rng, 2000)
    cur["a"] = np.nan
    cur["c"] = None
    rep = DriftDetector(ref).compare(cur)
    assert rep["a"].status == "no_data" and rep["c"].status == "no_data"
    assert rep["b"].status == "ok" and rep.n_tested == 3
    assert ("no_data", "a") in {(f.check, f.column) for f in rep.findings}


def test_nan_and_inf_are_counted_and_excluded(rng):
    ref = {"x": rng.normal(size=800)}
    cur_x = rng.normal(size=800)
    cur_x[:50] = np.nan
    cur_x[50:60] = np.inf
    cur_x[60:65] = -np.inf
    det = DriftDetector(ref)
    rep = det.compare({"x": cur_x})
    f = rep["x"]
    assert f.n_current == 735
    exp = st.ks_2samp(ref["x"], cur_x[65:])
    assert f.statistic == pytest.approx(exp.statistic, rel=1e-12)
    assert ("nonfinite", "x") in {(g.check, g.column) for g in rep.findings}


def test_bad_inputs_get_clear_errors(rng):
    det = DriftDetector(_window(rng, 500))
    with pytest.raises(SchemaError, match=r"shares no column.*\['a', 'b', 'c', 'flag', 'k'\].*\['zz'\]"):
        det.compare({"zz": np.zeros(10)})
    with pytest.raises(EmptyInputError):
        det.compare(_window(rng, 500).iloc[:0])
    with pytest.raises(EmptyInputError):
        DriftDetector({"a": np.zeros(0)})
    with pytest.raises(ValueError, match="drift_share"):
        DriftDetector(_window(rng, 50), drift_share=2)
    with pytest.raises(ValueError, match="exact"):
        DriftDetector(_window(rng, 50), exact="maybe")
    with pytest.raises(ValueError, match="backend"):
        DriftDetector(_window(rng, 50), backend="tpu")


def test_workers_one_tests_every_column_on_the_calling_thread(rng, monkeypatch):
    """workers=1 (what the Triton monitor uses): every column tested on the caller's thread, the report the
    same as with a pool of threads; a workers value that is not a whole number >= 1 is refused."""
    import threading

    from cudrift.detect import detector as dd

    ref, cur = _window(rng, 2000), _window(rng, 1500, shift=0.5)
    seen = []
    real = dd.DriftDetector._column
    monkeypatch.setattr(dd.DriftDetector, "_column",
                        lambda self, *a: seen.append(threading.get_ident()) or real(self, *a))
    monkeypatch.setattr(dd, "_workers", lambda: 4)
    pooled = DriftDetector(ref).compare(cur)
    assert len(seen) == 5 and threading.get_ident() not in seen  # a pool of 4
    seen.clear()
    det = DriftDetector(ref, workers=1)
    one = det.compare(cur)
    assert seen == [threading.get_ident()] * 5 and det.workers == 1
    assert one.to_dict()["features"] == pooled.to_dict()["features"] and "b" in one.drifted_columns
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match=f"Invalid value for workers: {bad!r}"):
            DriftDetector(ref, workers=bad)


@pytest.mark.parametrize("n", [500, 300_000])  # 300,000: past the size from which the exact grid uses threads
@pytest.mark.parametrize("as_profile", [False, True])
def test_workers_one_keeps_every_part_of_a_comparison_on_the_calling_thread(rng, monkeypatch, n, as_profile):
    """workers=1: no other thread runs any of the work, from profiling the reference and the window to the
    grid of an exact rank test (cramervonmises on data, ks from the sketches of a profile against a sorted
    reference); the default spreads each of them over threads, which the recorder sees."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from cudrift import backends

    monkeypatch.setattr(backends, "usable_cpus", lambda: 4)
    ran = []
    real = ThreadPoolExecutor.submit

    def recording(self, fn, /, *args, **kwargs):
        def work(*a, **k):
            ran.append(threading.current_thread())
            return fn(*a, **k)

        return real(self, work, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", recording)
    ref = {"a": rng.normal(size=n), "b": rng.normal(size=n)}
    cur = {"a": rng.normal(size=n), "b": rng.normal(0.5, size=n)}
    policy = {"a": "cramervonmises", "b": "ks"}
    reports = {}
    for workers in (None, 1):
        ran.clear()
        det = DriftDetector(ref, policy=policy, workers=workers)
        current = cudrift.profile(cur, like=det.reference) if as_profile else cur
        if as_profile:
            ran.clear()  # profile() outside a detector is not the detector's work
        reports[workers] = det.compare(current)
        others = {t.name for t in ran if t is not threading.current_thread()}
        if workers is None:
            assert others
        else:
            assert not others
    assert reports[1].to_dict()["features"] == reports[None].to_dict()["features"]


def test_a_thread_limit_reaches_the_pools_threads_and_a_detector_of_no_workers_keeps_it(rng, monkeypatch):
    """thread_limit is a context variable: a pool's threads did not see it (a column thread of workers=2 sized
    its exact grid for the machine), and DriftDetector(workers=None) lifted a caller's own limit. Each task now
    runs in a copy of its caller's context, and a detector without workers leaves the caller's limit be; a limit
    below 1 (which gave the grid no chunk to run, and an uninitialized result) is refused."""
    from cudrift import backends

    monkeypatch.setattr(backends, "usable_cpus", lambda: 8)
    seen = []
    with backends.thread_limit(2), backends.worker_pool(4) as pool:
        for f in [backends.submit(pool, lambda: seen.append(backends.cpu_workers())) for _ in range(4)]:
            f.result()
    assert seen == [2, 2, 2, 2]
    det = DriftDetector({"x": rng.normal(size=300)}, backend="cpu")
    with backends.thread_limit(1):
        with det._thread_limit():
            assert backends.cpu_workers() == 1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="Invalid value for thread_limit"):
            with backends.thread_limit(bad):
                pass


def test_compare_runs_in_an_atexit_handler():
    """A window compared while the interpreter shuts down (an atexit handler, where thread pools take no new
    work): with workers=1 and with the default, on data and on a profile, large enough for the exact grid's
    threads; each report is the one given before shutdown."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import atexit
        import numpy as np
        import cudrift

        rng = np.random.default_rng(0)
        n = 300_000
        ref = {"a": rng.normal(size=n), "b": rng.normal(size=n)}
        cur = {"a": rng.normal(size=n), "b": rng.normal(0.5, size=n)}
        policy = {"a": "cramervonmises", "b": "ks"}
        dets = [cudrift.DriftDetector(ref, policy=policy, backend="cpu", workers=w) for w in (1, None)]
        window = cudrift.profile(cur, like=dets[0].reference, backend="cpu")
        before = [d.compare(c).to_dict()["features"] for d in dets for c in (cur, window)]

        def flush():
            small = cudrift.DriftDetector({"x": np.arange(100.0)}, workers=1, backend="cpu")
            small.compare({"x": np.arange(50.0)})
            late = cudrift.DriftDetector(ref, policy=policy, backend="cpu")
            after = [d.compare(c).to_dict()["features"] for d in dets for c in (cur, window)]
            print(after == before, late.compare(cur).to_dict()["features"] == before[0])

        atexit.register(flush)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"], out.stderr


def test_pool_threads_test_on_the_callers_device(rng, monkeypatch):
    """A comparison's pool threads enter ``backends.device_binder``'s context (the caller's CUDA device, which
    new threads do not inherit: they start on device 0) around each column; with the CPU backend it is a
    no-op. The binder itself is checked against a stand-in CuPy whose current device is per thread."""
    import contextlib
    import sys
    import threading
    import types
    from concurrent.futures import ThreadPoolExecutor

    from cudrift import backends
    from cudrift.detect import detector as dd

    assert backends.device_binder("cpu") is contextlib.nullcontext
    local = threading.local()

    class Device:
        def __init__(self, i=None):
            self.id = getattr(local, "id", 0) if i is None else i

        def __enter__(self):
            self.prev, local.id = getattr(local, "id", 0), self.id
            return self

        def __exit__(self, *exc):
            local.id = self.prev

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(Device=Device)))
    with Device(3):
        bind = backends.device_binder("gpu")

    def in_thread():
        with bind():
            return Device().id, threading.get_ident()

    with ThreadPoolExecutor(2) as pool:
        dev, ident = pool.submit(in_thread).result()
        assert dev == 3 and ident != threading.get_ident()
        assert pool.submit(lambda: Device().id).result() == 0  # what a pool thread starts on
    monkeypatch.delitem(sys.modules, "cupy")
    # the detector enters it around every column, on whichever thread tests it
    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(threading.get_ident())
        yield

    monkeypatch.setattr(dd, "device_binder", lambda backend: recording)
    monkeypatch.setattr(dd, "_workers", lambda: 4)
    DriftDetector(_window(rng, 500)).compare(_window(rng, 400))
    assert len(entered) == 5


def test_kind_change_is_reported_not_raised(rng):
    ref = _window(rng, 1000)
    cur = _window(rng, 1000)
    cur["a"] = cur["a"].map(lambda v: f"{v:.2f}")
    rep = DriftDetector(ref).compare(cur)
    assert rep["a"].status == "error" and "kind changed" in rep["a"].message
    assert rep["b"].status == "ok"
    assert ("kind_mismatch", "a") in {(f.check, f.column) for f in rep.findings}


def test_single_distinct_value(rng):
    ref = {"c": np.full(2000, 7.0), "x": rng.normal(size=2000)}
    cur = {"c": np.full(1500, 7.0), "x": rng.normal(size=1500)}
    rep = DriftDetector(ref).compare(cur)
    assert rep["c"].status == "ok" and not rep["c"].drifted
    cur2 = {"c": np.full(1500, 9.0), "x": rng.normal(size=1500)}
    assert DriftDetector(ref).compare(cur2)["c"].drifted


def test_one_bad_column_does_not_stop_the_comparison(rng):
    ref = _window(rng, 1500)
    cur = _window(rng, 1500, shift=2.0)
    cur["c"] = cur["c"].astype(object)
    cur.loc[::2, "c"] = 7  # ints mixed into a string column
    cur["a"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(np.arange(1500), unit="s")  # unsupported dtype
    rep = DriftDetector(ref).compare(cur)
    assert rep["c"].status == "error" and "mixes value types" in rep["c"].message
    assert rep["a"].status == "error" and "datetime" in rep["a"].message
    assert rep["b"].status == "ok" and rep["b"].drifted
    assert {("bad_column", "c"), ("bad_column", "a")} <= {(f.check, f.column) for f in rep.findings}
    assert rep.n_tested == 3
    # profile() itself raises by default, and reports on request
    with pytest.raises(SchemaError, match="'a'.*datetime"):
        cudrift.profile(cur)
    with pytest.raises(SchemaError, match="'c'.*mixes"):
        cudrift.profile(cur.drop(columns=["a"]))
    p = cudrift.profile(cur, errors="report")
    assert set(p.errors) == {"a", "c"} and "b" in p.columns
    assert Profile.from_bytes(p.to_bytes()).errors == p.errors


def test_report_reader_rejects_malformed_json_and_keeps_odd_names(rng):
    det = DriftDetector({"NaN": rng.normal(size=300), "Infinity": rng.normal(size=300)})
    rep = det.compare({"NaN": rng.normal(size=300), "Infinity": rng.normal(2.0, 1.0, size=300)})
    back = DriftReport.from_json(rep.to_json())
    assert back == rep and back["NaN"].column == "NaN"
    for bad in ("null", "[]", "1", '{"format": "cudrift.report", "version": 0}',
                '{"format": "cudrift.report", "version": true}'):
        with pytest.raises(cudrift.FormatError):
            DriftReport.from_json(bad)
    d = json.loads(rep.to_json())
    d["features"][0]["statistic"] = "abc"
    with pytest.raises(cudrift.FormatError, match="statistic"):
        DriftReport.from_dict(d)
    d = json.loads(rep.to_json())
    d["features"][0] = 5
    with pytest.raises(cudrift.FormatError, match="object"):
        DriftReport.from_dict(d)


def test_edge_cases_from_review(rng):
    # a test that cannot run on one column (constant values for Anderson-Darling) fails that column only
    ref = {"a": np.full(100, 5.0), "b": rng.normal(size=100)}
    cur = {"a": np.full(50, 5.0), "b": rng.normal(size=50)}
    rep = DriftDetector(ref, policy="anderson").compare(cur)
    assert rep["a"].status == "error" and rep["b"].status == "ok"
    # NaN p-values take no part in the correction
    rep = DriftDetector(ref, policy="ttest", correction="bh").compare(cur)
    assert rep["b"].status == "ok"
    # a per-column test that cannot apply is refused up front
    with pytest.raises(SchemaError, match="needs a numerical column"):
        DriftDetector({"s": np.array(["a", "b"] * 50, dtype=object)}, policy={"s": "ks"})
    with pytest.raises(ValueError, match="neither reference columns"):
        DriftDetector(ref, thresholds={"nope": 0.1})
    with pytest.raises(ValueError, match="p-value threshold"):
        DriftDetector(ref, thresholds={"ks": 5.0})


def test_int_category_column_that_gained_nan_is_still_tested(rng):
    ref = pd.DataFrame({"k": rng.integers(0, 4, size=3000), "x": rng.normal(size=3000)})
    cur = pd.DataFrame({"k": rng.integers(0, 4, size=3000).astype(float), "x": rng.normal(size=3000)})
    cur.loc[:99, "k"] = np.nan
    rep = DriftDetector(ref).compare(cur)
    assert rep["k"].status == "ok" and rep["k"].kind == "categorical"
    assert rep["k"].n_current == 2900
    cur.loc[200, "k"] = 1.5
    rep = DriftDetector(ref).compare(cur)
    assert rep["k"].status == "error" and "non-integer" in rep["k"].message


def test_high_cardinality_categories_keep_the_folded_mass(rng):
    cfg = cudrift.ProfileConfig(max_categories=500)
    ids = rng.integers(0, 5000, size=40_000)
    ref = {"u": np.array([f"id{i}" for i in ids], dtype=object)}
    cur = {"u": np.array([f"id{i}" for i in rng.integers(0, 5000, size=20_000)], dtype=object)}
    rep = DriftDetector(ref, config=cfg).compare(cur)
    # same distribution: the folded tail is compared as one "other" bin, so no drift
    assert rep["u"].status == "ok" and not rep["u"].drifted
    # nor a finding of unseen categories: 89.6% of this window's values were outside the 500 kept against 85% of
    # the reference's, which kept the categories that came out high in its own counts
    assert not [f for f in rep.findings if f.check == "unseen_categories"]


def test_unseen_categories_against_a_folded_reference_allow_for_the_categories_it_kept_by_chance(rng):
    """Past max_categories a reference keeps categories chosen by its own counts, so its share outside them is
    biased low: the finding needs the current share past it plus an allowance of two Poisson standard deviations
    for each kept count near the cut (it fired on every window of the reference's own distribution)."""
    cfg = cudrift.ProfileConfig(max_categories=200)
    names = np.array([f"id{i}" for i in range(3000)] + ["new"], dtype=object)
    p = np.arange(1, 3001) ** -1.0
    p /= p.sum()
    ref = cudrift.profile({"u": names[rng.choice(3000, 30_000, p=p)]}, config=cfg, backend="cpu")
    det = DriftDetector(ref, backend="cpu")
    for _ in range(5):
        same = names[rng.choice(3000, 15_000, p=p)]
        assert not [f for f in det.compare({"u": same}).findings if f.check == "unseen_categories"]
    same[:1500] = "new"
    (f,) = [f for f in det.compare({"u": same}).findings if f.check == "unseen_categories"]
    counts = ref.columns["u"].counts
    kept = np.array([c for _, c in counts.items()], dtype=float)
    cut = counts.folded / (200 + 1)
    near = kept[kept <= cut + 3 * math.sqrt(cut)]
    allowed = counts.folded + np.minimum(near, 2 * np.sqrt(near)).sum().astype(int)
    outside = np.sum(~np.isin(same, list(counts.keys())))
    assert f.value == pytest.approx(outside / 15_000, rel=1e-12)
    assert f.reference_value == pytest.approx(counts.folded / 30_000, rel=1e-12)
    pool = (allowed + outside) / 45_000
    z = (allowed / 30_000 - outside / 15_000) / math.sqrt(pool * (1 - pool) * (1 / 30_000 + 1 / 15_000))
    assert f"p = {st.norm.cdf(z):.2g})" in f.message and "at most this many" in f.message
    assert f"{100 * allowed / 30_000:.3g}% allowed for categories kept by chance" in f.message


def test_all_nan_reference_column_windows_still_merge(rng):
    ref = cudrift.profile({"a": np.full(100, np.nan), "b": rng.normal(size=100)})
    w1 = cudrift.profile({"a": rng.normal(size=50), "b": rng.normal(size=50)}, like=ref)
    w2 = cudrift.profile({"a": rng.normal(size=50), "b": rng.normal(size=50)}, like=ref)
    assert (w1 + w2).n_rows == 100


def test_profile_update_is_all_or_nothing(rng):
    ref = cudrift.profile({"a": rng.normal(size=100), "s": np.array(["x", "y"] * 50, dtype=object)})
    w = Profile.empty_like(ref)
    w.update({"a": rng.normal(size=100), "s": np.array(["x", "y"] * 50, dtype=object)})
    with pytest.raises(SchemaError):
        w.update({"a": rng.normal(size=100), "s": np.array(["x", 1] * 50, dtype=object)})
    assert w.n_rows == 100 and w["a"].count == 100 and w["s"].count == 100


def test_huge_magnitudes_keep_a_finite_scale(rng):
    ref = {"x": rng.normal(size=3000) * 1e200}
    cur = {"x": (rng.normal(size=3000) + 3.0) * 1e200}
    exact = DriftDetector(ref).compare(cur)["x"]
    assert exact.test == "wasserstein_normalized" and exact.drifted
    assert exact.statistic == pytest.approx(
        st.wasserstein_distance(ref["x"] / 1e200, cur["x"] / 1e200) / np.std(ref["x"] / 1e200), rel=1e-9)
    approx = DriftDetector(ref, exact="never").compare(cur)["x"]
    assert approx.status == "ok" and approx.drifted


@pytest.mark.parametrize("n", [400, 4000])
@pytest.mark.parametrize("as_profiles", [False, True])
def test_few_valued_numeric_column_sees_its_values_change(rng, n, as_profiles):
    """A float column with a few values whose values move between the reference's: counted per value.

    On the reference's one-bin-per-value histogram 0.2 falls in 0's bin and
    0.8 in 1's, so the counts there could not see it.
    """
    ref = {"flag": rng.choice([0.0, 1.0], n), "x": rng.normal(size=n)}
    cur = {"flag": rng.choice([0.0, 0.2, 0.8, 1.0], n, p=[0.3, 0.2, 0.2, 0.3]), "x": rng.normal(size=n)}
    if as_profiles:
        ref_p = cudrift.profile(ref)
        report = DriftDetector(ref_p).compare(cudrift.profile(cur, like=ref_p))
    else:
        report = DriftDetector(ref).compare(cur)
    f = report["flag"]
    values = np.array([0.0, 0.2, 0.8, 1.0])
    r = np.array([(ref["flag"] == v).sum() for v in values], dtype=float)
    c = np.array([(cur["flag"] == v).sum() for v in values], dtype=float)
    if n <= 1000:
        assert f.test == "chisquare"
        keep = (r + c) > 0
        chi2, p, *_ = st.chi2_contingency(np.stack([r[keep], c[keep]]))
        assert f.statistic == pytest.approx(chi2, rel=1e-9) and f.pvalue == pytest.approx(p, rel=1e-6)
    else:
        assert f.test == "jensenshannon"
        assert f.statistic == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)
    assert f.drifted and f.statistic_error == 0.0
    assert report["x"].test == ("ks" if n <= 1000 else "wasserstein_normalized")  # the other column as before


@pytest.mark.parametrize("as_profiles", [False, True])
def test_few_valued_float32_window_against_a_float64_reference(rng, as_profiles):
    """A float32 window's 0.1 is the float64 reference's 0.1 (Triton sends FP32): no drift from precision."""
    n = 600
    ref = {"f": rng.choice([0.1, 0.7, 1.3], n)}
    same = {"f": rng.choice([0.1, 0.7, 1.3], n).astype(np.float32)}
    moved = {"f": rng.choice([0.1, 0.3, 1.3], n).astype(np.float32)}
    if as_profiles:
        ref_p = cudrift.profile(ref)
        det, same, moved = DriftDetector(ref_p), cudrift.profile(same, like=ref_p), cudrift.profile(moved, like=ref_p)
    else:
        det = DriftDetector(ref)
    keys = np.array([0.1, 0.3, 0.7, 1.3], dtype=np.float32)
    r = np.array([(ref["f"].astype(np.float32) == k).sum() for k in keys], dtype=float)
    for cur, drifted in ((same, False), (moved, True)):
        f = det.compare(cur)["f"]
        assert f.test == "chisquare" and f.drifted is drifted
    # the statistic is the contingency table of the values at float32
    f = DriftDetector(ref).compare({"f": (m := rng.choice([0.1, 0.3, 1.3], n).astype(np.float32))})["f"]
    c = np.array([(m == k).sum() for k in keys], dtype=float)
    keep = (r + c) > 0
    assert f.statistic == pytest.approx(st.chi2_contingency(np.stack([r[keep], c[keep]]))[0], rel=1e-9)


def test_few_valued_numeric_column_with_the_same_values_does_not_drift(rng):
    ref = {"k": rng.choice([1.0, 2.0, 3.0], 3000, p=[0.5, 0.3, 0.2])}
    cur = {"k": rng.choice([1.0, 2.0, 3.0], 3000, p=[0.5, 0.3, 0.2])}
    f = DriftDetector(ref).compare(cur)["k"]
    r = np.array([(ref["k"] == v).sum() for v in (1.0, 2.0, 3.0)], dtype=float)
    c = np.array([(cur["k"] == v).sum() for v in (1.0, 2.0, 3.0)], dtype=float)
    assert f.test == "jensenshannon" and not f.drifted
    assert f.statistic == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)


@pytest.mark.parametrize("test", ["fisher_exact", "ztest"])
def test_blanket_two_category_test_applies_only_to_columns_with_two_values(rng, test):
    n = 300
    ref = {"yes": rng.choice(np.array(["y", "n"], dtype=object), n),
           "color": rng.choice(np.array(["r", "g", "b", "k"], dtype=object), n)}
    cur = {"yes": rng.choice(np.array(["y", "n"], dtype=object), n, p=[0.8, 0.2]),
           "color": rng.choice(np.array(["r", "g", "b", "k"], dtype=object), n)}
    report = DriftDetector(ref, policy=test).compare(cur)
    assert report["yes"].test == test and report["yes"].status == "ok"
    assert report["color"].test == "chisquare" and report["color"].status == "ok"  # the auto rule's
    r = np.array([(ref["color"] == k).sum() for k in "rgbk"])
    c = np.array([(cur["color"] == k).sum() for k in "rgbk"])
    assert report["color"].pvalue == pytest.approx(st.chi2_contingency(np.stack([r, c]))[1], rel=1e-9)
    # named for that column, the test is the user's choice: the column reports why it cannot run
    named = DriftDetector(ref, policy={"color": test}).compare(cur)["color"]
    assert named.status == "error" and "at most 2 distinct values" in named.message


def test_p_value_thresholds_above_one_are_refused_where_the_test_is_sure_to_give_p_values(rng):
    small = {"x": rng.normal(size=500), "k": rng.choice(np.array(["a", "b"], dtype=object), 500)}
    with pytest.raises(ValueError, match=r"column 'x': 5\.0.*auto rule"):
        DriftDetector(small, thresholds=5.0)  # auto: KS / chi-square on a small reference
    with pytest.raises(ValueError, match=r"column 'x': 2\.0; its test \(ks\)"):
        DriftDetector({"x": rng.normal(size=5000)}, policy="ks", thresholds={"x": 2.0})
    # a column with no reference values is never tested: its threshold is not checked
    DriftDetector({**small, "z": np.full(500, np.nan)}, thresholds={"z": 5.0})
    # distances take any non-negative threshold
    big = DriftDetector({"x": rng.normal(size=5000)}, thresholds={"x": 2.0})
    assert big.threshold_for("x", "wasserstein_normalized") == 2.0
    # NumPy scalars are numbers
    d = DriftDetector(small, thresholds=np.float32(0.01))
    assert d.threshold_for("x", "ks") == pytest.approx(0.01)
    assert DriftDetector(small, thresholds={"x": np.float64(0.2)}).threshold_for("x", "ks") == 0.2
    with pytest.raises(ValueError, match="Invalid"):
        DriftDetector(small, thresholds={"x": np.bool_(True)})


def test_unreadable_reference_column_is_reported_and_the_rest_compared(rng):
    n = 400
    ref = pd.DataFrame({"x": rng.normal(size=n), "t": pd.date_range("2020-01-01", periods=n, freq="h")})
    cur = pd.DataFrame({"x": rng.normal(0.5, 1, size=n), "t": pd.date_range("2021-01-01", periods=n, freq="h"),
                        "when": pd.date_range("2022-01-01", periods=n, freq="h")})
    det = DriftDetector(ref)
    assert list(det.reference.columns) == ["x"] and "datetime" in det.reference.errors["t"]
    report = det.compare(cur)
    assert report["x"].status == "ok" and report["x"].drifted
    assert report["x"].pvalue == pytest.approx(st.ks_2samp(ref["x"], cur["x"]).pvalue, rel=1e-6)
    assert report["t"].status == "error" and "reference column could not be read" in report["t"].message
    checks = {(f.check, f.column) for f in report.findings}
    assert ("bad_column", "t") in checks and ("extra_column", "when") in checks
    assert ("extra_column", "t") not in checks
    assert report.n_tested == 1
    assert DriftReport.from_json(report.to_json())["t"].status == "error"


def test_columns_ignored_in_the_reference_are_not_reported_as_extra(rng):
    ref = {"x": rng.normal(size=300), "id": np.arange(300)}
    det = DriftDetector(ref, schema=cudrift.Schema(ignore=["id"]))
    report = det.compare({"x": rng.normal(size=300), "id": np.arange(300), "new": rng.normal(size=300)})
    assert {f.column for f in report.findings if f.check == "extra_column"} == {"new"}


@pytest.mark.parametrize("test", ["ks", "cramervonmises", "anderson", "wasserstein_normalized"])
def test_small_windows_compared_as_profiles_match_the_data_path_and_scipy(rng, test):
    """Exact sketches hold the data: the small-sample p-values are SciPy's, not the asymptotic ones."""
    a, b = rng.normal(size=12), rng.normal(0.8, 1, size=9)
    ref = cudrift.profile({"x": a})
    from_profiles = DriftDetector(ref, policy=test).compare(cudrift.profile({"x": b}, like=ref))["x"]
    from_data = DriftDetector({"x": a}, policy=test).compare({"x": b})["x"]
    assert from_profiles.statistic == from_data.statistic and from_profiles.pvalue == from_data.pvalue
    assert from_profiles.statistic_error == 0.0
    if test == "ks":
        assert from_profiles.pvalue == pytest.approx(st.ks_2samp(a, b).pvalue, rel=1e-12)  # exact method
    elif test == "cramervonmises":
        assert from_profiles.pvalue == pytest.approx(st.cramervonmises_2samp(a, b).pvalue, rel=1e-9)


def test_one_value_per_side_from_profiles_is_scipys_exact_ks(rng):
    ref = cudrift.profile({"x": np.array([1.0])})
    f = DriftDetector(ref, policy="ks").compare(cudrift.profile({"x": np.array([2.0, 3.0])}, like=ref))["x"]
    assert f.pvalue == pytest.approx(st.ks_2samp([1.0], [2.0, 3.0]).pvalue) and not f.drifted


def test_profiles_with_no_common_column_and_odd_settings_are_refused(rng):
    a = cudrift.profile({"x": rng.normal(size=50)})
    with pytest.raises(SchemaError, match="shares no column"):
        DriftDetector(a).compare(cudrift.profile({"y": rng.normal(size=50)}))
    with pytest.raises(ValueError, match="drift_share"):
        DriftDetector(a, drift_share=True)
    assert DriftDetector(a, drift_share=np.float32(0.25)).drift_share == 0.25


def test_a_float_column_forced_categorical_says_why_it_cannot_be(rng):
    with pytest.raises(SchemaError, match=r"column 'f' is categorical but holds non-integer values \(e\.g\. 0\.5"):
        cudrift.profile({"f": np.array([1.0, 0.5, 2.0])}, schema=cudrift.Schema(categorical=["f"]))
    p = cudrift.profile({"f": np.array([1.0, 2.0, np.nan])}, schema=cudrift.Schema(categorical=["f"]))
    assert dict(p["f"].counts.items()) == {1: 1, 2: 1} and p["f"].null_count == 1


def test_welch_t_with_one_value_is_an_error_on_both_paths(rng):
    ref = {"x": rng.normal(size=20)}
    for r, cur in ((ref, {"x": np.array([0.5])}),
                   (cudrift.profile(ref), None)):
        if cur is None:
            cur = cudrift.profile({"x": np.array([0.5])}, like=r)
        f = DriftDetector(r, policy="ttest").compare(cur)["x"]
        assert f.status == "error" and "at least 2 finite values" in f.message
    cur = rng.normal(size=5)
    ok = DriftDetector(ref, policy="ttest").compare({"x": cur})["x"]
    assert ok.status == "ok"
    assert ok.pvalue == pytest.approx(st.ttest_ind(ref["x"], cur, equal_var=False).pvalue, rel=1e-9)


def test_schema_with_a_profile_reference_drops_ignored_columns_and_refuses_kinds(rng):
    ref = cudrift.profile({"x": rng.normal(size=200), "id": np.arange(200.0)})
    det = DriftDetector(ref, schema=cudrift.Schema(ignore=["id"]))
    assert det.reference.names == ["x"] and ref.names == ["x", "id"]  # the caller's profile is left alone
    report = det.compare(cudrift.profile({"x": rng.normal(size=100), "id": np.arange(100.0)}, like=ref))
    assert [f.column for f in report.features] == ["x"] and not report.findings_for("id")
    with pytest.raises(ValueError, match="kinds are fixed"):
        DriftDetector(ref, schema=cudrift.Schema(categorical=["id"]))


def test_integer_and_text_category_keys_are_matched_by_their_text(rng):
    """The text "3" and the integer 3 are one category whichever side holds text; "03" and "+3" stay text."""
    ints = rng.integers(0, 5, 600)
    for ref, cur in ((ints.astype(str), rng.integers(0, 5, 500)), (ints, rng.integers(0, 5, 500).astype(str))):
        det = DriftDetector({"code": np.asarray(ref, dtype=object) if ref.dtype.kind == "U" else ref},
                            schema=cudrift.Schema(categorical=["code"]))
        f = det.compare({"code": np.asarray(cur, dtype=object) if cur.dtype.kind == "U" else cur})["code"]
        assert f.status == "ok" and not f.drifted, f
        want = st.chi2_contingency([np.bincount(ref.astype(int), minlength=5),
                                       np.bincount(cur.astype(int), minlength=5)], correction=False)
        assert f.pvalue == pytest.approx(want.pvalue, rel=1e-9)
    det = DriftDetector({"code": ints}, schema=cudrift.Schema(categorical=["code"]))
    rep = det.compare({"code": np.array(["03", "+3", "3"] * 100, dtype=object)})
    unseen = [x for x in rep.findings if x.check == "unseen_categories"]
    assert unseen and "200 current values" in unseen[0].message


def test_booleans_and_their_codes_are_one_category(rng):
    ref = {"b": rng.random(400) < 0.3}
    mixed = np.where(rng.random(300) < 0.3, rng.choice(["true", "True", "1"], 300), "false").astype(object)
    for cur in ({"b": (rng.random(300) < 0.3).astype(np.int64)}, {"b": mixed}):
        f = DriftDetector(ref).compare(cur)["b"]
        assert f.status == "ok" and not f.drifted and f.pvalue > 1e-3, f
    # several texts of one boolean add up, and the profile saves and loads
    w = cudrift.profile({"b": mixed}, like=cudrift.profile(ref))
    assert w["b"].counts[True] == int(np.isin(mixed, ["true", "True", "1"]).sum()) and w["b"].counts.n == 300
    assert Profile.from_bytes(w.to_bytes()).to_bytes() == w.to_bytes()
    # a text reference against a boolean window: each boolean as the reference's text for it
    text_ref = {"b": np.where(rng.random(400) < 0.3, "true", "false").astype(object)}
    f = DriftDetector(text_ref).compare({"b": rng.random(300) < 0.3})["b"]
    assert f.status == "ok" and not f.drifted and f.pvalue > 1e-3, f


def test_a_test_named_for_a_column_runs_there_or_says_why_not(rng):
    """Never silently another test: a count test counts a numerical column (on its bins, or its values when
    few), a two-category test on many values is an error row saying so."""
    ref, cur = {"f": rng.normal(size=300)}, {"f": rng.normal(0.5, 1, 300)}
    f = DriftDetector(ref, policy={"f": "chisquare"}).compare(cur)["f"]
    assert f.test == "chisquare" and f.status == "ok" and 0 <= f.pvalue <= 1
    z = DriftDetector(ref, policy={"f": "ztest"}).compare(cur)["f"]
    assert z.test == "ztest" and z.status == "error" and "at most 2 distinct values" in z.message
    y, w = rng.choice([0.0, 1.0, 2.0], 300), rng.choice([0.0, 1.0, 2.0], 300)
    named = DriftDetector({"y": y}, policy={"y": "chisquare"}).compare({"y": w})["y"]
    assert named.pvalue == DriftDetector({"y": y}).compare({"y": w})["y"].pvalue  # the auto rule's own test


def test_a_p_value_test_under_a_threshold_above_1_is_an_error_row(rng):
    """A blanket two-category test on a large reference may give way to the auto rule, so the threshold is let
    through at construction; where the test does run, the column is an error, not a drift that always fires."""
    det = DriftDetector({"c": rng.choice(["u", "v"], 2000)}, policy="ztest", thresholds={"c": 2.0})
    f = det.compare({"c": rng.choice(["u", "v"], 2000)})["c"]
    assert f.status == "error" and not f.drifted and "not a p-value threshold" in f.message


def test_reports_iterate_and_say_what_they_hold(rng):
    ref = {"a": rng.normal(size=300), "z": np.full(300, np.nan)}
    rep = DriftDetector(ref, policy="ttest").compare({"a": np.full(200, 1.5), "z": rng.normal(size=200)})
    assert [f.column for f in rep] == ["a", "z"] and len(rep) == 2 and "a" in rep and "q" not in rep
    assert rep["z"].status == "no_data"
    assert any(x.check == "no_data" and "reference" in x.message for x in rep.findings_for("z"))
    flat = DriftDetector({"a": np.full(50, 2.0)}, policy="ttest").compare({"a": np.full(40, 2.0)})
    assert np.isnan(flat["a"].pvalue) and "adj" not in flat.summary_table()
    rep2 = DriftReport(**{**{k: getattr(rep, k) for k in rep.__dataclass_fields__},
                          "metadata": {"n": np.int64(3), "share": np.float32(0.5)}})
    assert json.loads(rep2.to_json())["metadata"] == {"n": 3, "share": 0.5}


def test_integers_as_a_pandas_categorical_follow_a_numerical_reference(rng):
    """A window whose numbers arrive as a Categorical (or Parquet dictionary) is read as numbers, not refused
    as a changed kind."""
    ref = pd.DataFrame({"k": rng.integers(0, 30, 1000)})
    cur = pd.DataFrame({"k": rng.integers(0, 30, 800)}).astype({"k": "category"})
    f = DriftDetector(ref).compare(cur)["k"]
    want = st.ks_2samp(ref["k"], cur["k"].astype(int))
    assert f.status == "ok" and f.test == "ks" and f.pvalue == pytest.approx(want.pvalue, rel=1e-9)


def test_exact_always_keeps_a_current_window_larger_than_the_budget_exact(rng):
    """exact='always': a current window whose sorted columns pass memory_budget is still compared exactly (it
    was compared from its sketches, Mann-Whitney's U on the 10,000-point sample half the true value)."""
    ref, cur = rng.normal(size=1000), rng.normal(0.1, 1.0, size=20_000)
    det = DriftDetector({"x": ref}, policy="mannwhitneyu", exact="always", memory_budget=10_000, backend="cpu")
    rep = det.compare({"x": cur})
    f, want = rep["x"], st.mannwhitneyu(ref, cur)
    assert rep.exact and f.statistic_error == 0.0 and f.n_current == 20_000
    assert f.statistic == pytest.approx(want.statistic, rel=1e-12) and f.pvalue == pytest.approx(want.pvalue,
                                                                                                rel=1e-9)
    # "auto" keeps to the budget: the same window from its sketches, saying so
    auto = DriftDetector({"x": ref}, policy="mannwhitneyu", memory_budget=10_000, backend="cpu").compare({"x": cur})
    assert not auto.exact


def test_mann_whitney_from_samples_reports_u_on_the_windows_scale(rng):
    """A window past memory_budget is tested from its sample: U then counted sample pairs (10,000 x 1,000 here,
    half the windows' 20,000 x 1,000), not comparable with an exact U. It is scaled to the windows' sizes and
    estimates the exact U; the p-value is the samples' test, and the result says it is not exact."""
    ref, cur = rng.normal(size=1000), rng.normal(0.1, 1.0, size=20_000)
    det = DriftDetector({"x": ref}, policy="mannwhitneyu", memory_budget=10_000, backend="cpu")
    f = det.compare({"x": cur})["x"]
    assert f.statistic_error != 0.0 and (f.n_reference, f.n_current) == (1000, 20_000)
    assert f.statistic / (f.n_reference * f.n_current) <= 1.0
    # relative spread of the estimate over 20 seeds: 0.4% (at most 0.7%); unscaled it was 50% low
    assert f.statistic == pytest.approx(st.mannwhitneyu(ref, cur).statistic, rel=0.03)


def test_columns_select_a_reference_profile_and_leave_the_others_unreported(rng):
    """columns= picks the compared columns of a reference Profile as of reference data; the other columns of a
    window are the user's choice, not 'extra'; config= does not apply to a Profile and says so."""
    data = pd.DataFrame({"a": rng.normal(size=300), "s": rng.choice(list("ab"), 300), "z": rng.normal(size=300)})
    prof = cudrift.profile(data, backend="cpu")
    for ref in (data, prof):
        det = DriftDetector(ref, columns=["a", "s"], backend="cpu")
        assert det.reference.names == ["a", "s"]
        rep = det.compare(data)
        assert [f.column for f in rep] == ["a", "s"] and rep.n_tested == 2
        assert not [f for f in rep.findings if f.check == "extra_column"], rep.findings
    with pytest.raises(SchemaError, match=r"columns \['q'\] not found in the reference profile"):
        DriftDetector(prof, columns=["a", "q"], backend="cpu")
    with pytest.raises(ValueError, match="config applies when profiling data; this reference is a Profile"):
        DriftDetector(prof, config=cudrift.ProfileConfig(n_bins=5), backend="cpu")
    # without columns=, a column the reference lacks is still reported; and with a 2-D array, whose columns=
    # only names its columns
    rep = DriftDetector(data[["a", "s"]], backend="cpu").compare(data)
    assert [f.column for f in rep.findings if f.check == "extra_column"] == ["z"]
    rep = DriftDetector(data[["a", "z"]].to_numpy(), columns=["a", "z"], backend="cpu").compare(data)
    assert [f.column for f in rep.findings if f.check == "extra_column"] == ["s"]
    # two windows profiled like= the reference share a numeric column it lacks: a histogram test on it says why
    # it cannot run (it said "no finite reference values")
    ref = cudrift.profile(data[["a"]], backend="cpu")
    w1 = cudrift.profile(data[["a", "z"]], like=ref, backend="cpu")
    w2 = cudrift.profile(data[["a", "z"]], like=w1, backend="cpu")
    rep = DriftDetector(w1, policy="psi", backend="cpu").compare(w2)
    assert rep["z"].status == "error" and "new to the reference profile its windows were made like=" in \
        rep["z"].message, rep["z"]


def test_object_matrices_and_sparse_columns_are_read_or_refused_by_name(rng):
    """A 2-D object array is checked column by column as a dict's columns are (it was refused as having "no
    rows"), its floats read as numbers as a pandas object column's are (they were refused); a pandas Sparse
    column is read as its dense values (it was refused as mixing one type)."""
    x = rng.normal(size=(300, 2))
    det = DriftDetector(x, columns=["a", "b"], backend="cpu")
    rep = det.compare(x.astype(object), columns=["a", "b"])
    assert rep.n_tested == 2 and [(f.status, f.statistic) for f in rep] == [("ok", 0.0), ("ok", 0.0)]
    as_pandas = det.compare(pd.DataFrame(x, columns=["a", "b"]).astype(object))
    assert [f.statistic for f in as_pandas] == [0.0, 0.0]
    mixed = np.empty((300, 2), dtype=object)
    mixed[:, 0], mixed[:, 1] = x[:, 0], np.where(x[:, 1] > 0, "up", "down")
    rep = DriftDetector({"a": x[:, 0], "b": mixed[:, 1]}, backend="cpu").compare(mixed, columns=["a", "b"])
    assert rep["a"].status == "ok" and rep["a"].statistic == 0.0 and rep["b"].status == "ok"
    dense = x[:, 0].copy()
    dense[::3] = 0.0
    df = pd.DataFrame({"f": pd.arrays.SparseArray(dense)})
    prof = cudrift.profile(df, backend="cpu")
    assert prof.kinds == {"f": "numerical"}
    assert prof.columns["f"].moments.mean == pytest.approx(dense.mean(), rel=1e-12)


def test_a_reference_saved_from_a_2d_text_array_reads_its_dtype_as_string(rng):
    """2-D text arrays record dtype 'string' since they are read as a dict's columns are; a reference saved
    before then says '<U1': no dtype change is reported between the two."""
    from cudrift.detect.detector import _dtype_name

    text = rng.choice(["a", "b"], size=(200, 1))
    ref = cudrift.profile(text, columns=["t"], backend="cpu")
    assert ref.dtypes["t"] == "string" and _dtype_name("<U1") == _dtype_name("|S3") == "string"
    old = Profile(ref.columns, ref.kinds, {"t": "<U1"}, ref.n_rows, ref.config)
    assert not [f for f in DriftDetector(old, backend="cpu").compare(text, columns=["t"]).findings
                if f.check == "dtype_change"]


def test_a_correction_that_hides_floored_pvalues_says_so(rng):
    """Anderson-Darling's p-value stops at 0.001 (as SciPy's): under Bonferroni over 60 columns it is raised to 0.06,
    so 60 columns shifted by 5 standard deviations read "no drift". The verdict stays what the correction gives,
    but each such column gets a pvalue_floor finding naming the floor and what to use instead; uncorrected, or
    with a test that has no floor, the same columns drift."""
    names = [f"c{j}" for j in range(60)]
    ref = {n: rng.normal(size=500) for n in names}
    cur = {n: rng.normal(5.0, 1.0, size=500) for n in names}
    rep = DriftDetector(ref, policy="anderson", correction="bonferroni", backend="cpu").compare(cur)
    assert st.anderson_ksamp([ref["c0"], cur["c0"]]).pvalue == pytest.approx(0.001)  # SciPy's floor too
    assert rep.n_drifted == 0 and all(f.pvalue_adjusted == pytest.approx(0.06) for f in rep.features)
    floors = [f for f in rep.findings if f.check == "pvalue_floor"]
    assert sorted(f.column for f in floors) == sorted(names)
    assert floors[0].reference_value == pytest.approx(0.001) and "ks, cramervonmises" in floors[0].message
    assert DriftDetector(ref, policy="ks", correction="bonferroni", backend="cpu").compare(cur).n_drifted == 60
    assert not [f for f in DriftDetector(ref, policy="ks", correction="bonferroni", backend="cpu").compare(
        cur).findings if f.check == "pvalue_floor"]
    # a floored p-value the correction leaves below the threshold gives no finding
    few = DriftDetector({n: ref[n] for n in names[:3]}, policy="anderson", correction="bonferroni", backend="cpu")
    rep3 = few.compare({n: cur[n] for n in names[:3]})
    assert rep3.n_drifted == 3 and not [f for f in rep3.findings if f.check == "pvalue_floor"]
    # uncorrected, a threshold at or below the floor: no column can drift, and each says so
    strict = DriftDetector({"c0": ref["c0"]}, policy="anderson", thresholds=0.0005, backend="cpu")
    rep1 = strict.compare({"c0": cur["c0"]})
    floored = [f for f in rep1.findings if f.check == "pvalue_floor"]
    assert rep1.n_drifted == 0 and len(floored) == 1 and "threshold above 0.001" in floored[0].message
    # ... and corrected too (the finding was missing under a correction where the floor is past the threshold)
    strict = DriftDetector({n: ref[n] for n in names[:3]}, policy="anderson", thresholds=0.0005,
                           correction="bonferroni", backend="cpu")
    rep3 = strict.compare({n: cur[n] for n in names[:3]})
    floored = [f for f in rep3.findings if f.check == "pvalue_floor"]
    assert rep3.n_drifted == 0 and [f.column for f in floored] == names[:3]
    assert all("threshold above 0.001" in f.message for f in floored)


def test_a_null_share_change_of_exactly_the_tolerance_is_not_reported_whatever_the_shares(rng):
    """null_share_tolerance is "more than 0.1 absolute": 700 -> 800 nulls of 1,000 was reported (0.8 - 0.7 is
    0.10000000000000009 in floats) where 200 -> 300 was not."""
    def nulls(k):
        x = rng.normal(size=1000)
        x[:k] = np.nan
        return {"x": x}

    def changed(a, b):
        rep = DriftDetector(nulls(a), backend="cpu").compare(nulls(b))
        return [f.check for f in rep.findings if f.check == "null_share_change"] != []

    assert [changed(a, a + 100) for a in (0, 200, 600, 700, 800)] == [False] * 5
    assert changed(700, 801) and changed(0, 101) and changed(801, 700)


def test_reports_holding_nan_equal_their_json_and_name_the_auto_policy(rng):
    """A report read back from JSON holds math.nan where the test computed another NaN object, and compared
    unequal to itself; policy=None is the auto rule, and its metadata said "custom"."""
    rep = DriftDetector({"x": np.ones(300), "y": rng.normal(size=300)}, policy="ttest", backend="cpu").compare(
        {"x": np.ones(300), "y": rng.normal(size=300)})
    assert math.isnan(rep["x"].statistic)
    back = DriftReport.from_json(rep.to_json())
    assert back == rep and back.features == rep.features and hash(back["x"]) == hash(rep["x"])
    assert back != DriftReport.from_json(rep.to_json().replace('"NaN"', "1.5", 1))  # (still compared)
    for policy, name in ((None, "auto"), ("auto", "auto"), ("ks", "ks"), ({"y": "ks"}, "custom")):
        assert DriftDetector({"y": rng.normal(size=300)}, policy=policy, backend="cpu").compare(
            {"y": rng.normal(size=300)}).metadata["policy"] == name


@pytest.mark.parametrize("test", ["psi", "jensenshannon", "hellinger", "tvd"])
def test_null_drift_is_how_often_windows_of_one_distribution_reach_the_threshold(rng, test):
    """_compute.null_drift, from one pair of count vectors, against windows drawn afresh from the distribution they
    came from: the share reaching the threshold and the 95th percentile of the distance agree."""
    from cudrift import stats

    p = rng.dirichlet(np.full(40, 2.0))
    n, m = 3000, 1000
    fresh = np.array([stats.TESTS[test].func(rng.multinomial(n, p), rng.multinomial(m, p)).statistic
                      for _ in range(600)])
    threshold = np.quantile(fresh, 0.7)  # reached by 30% of them
    rate, q95 = _compute.null_drift(test, rng.multinomial(n, p), rng.multinomial(m, p), threshold)
    # (estimated counts, as bins merged at a window's precision give, are not whole)
    assert _compute.null_drift(test, rng.multinomial(n, p) + 0.3, rng.multinomial(m, p) + 0.1,
                               threshold)[0] == pytest.approx(0.3, abs=0.15)
    assert rate == pytest.approx(0.3, abs=0.15)
    assert q95 == pytest.approx(np.quantile(fresh, 0.95), rel=0.2)
    assert _compute.null_drift(test, rng.multinomial(n, p), rng.multinomial(m, p), 10 * q95)[0] == 0.0


def test_a_drifted_distance_within_its_noise_at_these_sizes_says_so(rng):
    """PSI over 100 bins averages about 99 * (1/n + 1/m) between windows of one distribution, 0.13 at 1,500 values a
    side, and the auto rule's Jensen-Shannon over 300 categories about 0.23: both drifted on every such window
    without a word. The verdict stays (it is the test's), with a distance_noise finding saying how often such
    windows reach the threshold; a real shift on large windows, and a p-value test, get none."""
    cats = np.array([f"c{i}" for i in range(300)], dtype=object)

    def windows(n, shift=0.0):
        return {"c": rng.choice(cats, n), "x": rng.normal(shift, 1.0, n)}

    rep = DriftDetector(windows(1500), policy={"x": "psi"}, backend="cpu").compare(windows(1500))
    assert rep["c"].test == "jensenshannon" and rep["c"].drifted and rep["x"].drifted
    noise = {f.column: f for f in rep.findings if f.check == "distance_noise"}
    assert set(noise) == {"c", "x"}
    assert noise["x"].value >= 0.05 and noise["x"].reference_value > 99 * (2 / 1500)  # (its mean, from the formula)
    assert "chisquare" in noise["c"].message and "n_bins" in noise["x"].message
    # a real shift: on large windows, and on these (PSI 4.5, 26 times the noise), no finding
    for n in (30_000, 1500):
        shifted = DriftDetector(windows(n), policy={"x": "psi"}, backend="cpu").compare(windows(n, 2.0))
        assert shifted["x"].drifted and "x" not in {f.column for f in shifted.findings if f.check == "distance_noise"}
    # a column nearly empty in the window (3 values): its drifted verdict stays (some redrawn windows of 3 values
    # had no value at all, and the column became an error)
    few = {"c": np.array(["c1"] * 3 + [None] * 997, dtype=object), "x": rng.normal(size=1000)}
    for policy in ("auto", "psi", "tvd", "kl_div"):
        got = DriftDetector(windows(5000), policy=policy, backend="cpu").compare(few)["c"]
        assert got.status == "ok" and got.drifted and got.n_current == 3, policy
    ks = DriftDetector(windows(1500), policy={"x": "ks", "c": "chisquare"}, backend="cpu").compare(windows(1500))
    assert not [f for f in ks.findings if f.check == "distance_noise"]
    assert DriftReport.from_json(rep.to_json()) == rep


def test_a_window_none_of_whose_columns_can_be_read_says_why(rng, tmp_path):
    """Rows are counted from the columns read: a window whose only column failed (float values against a
    categorical reference column) was refused as having 'no rows'; it now gets its error row naming the reason
    (see test_a_window_whose_shared_columns_are_all_unreadable_gets_error_rows), and a reference none of whose
    columns can be read is refused naming each column's reason."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    det = DriftDetector({"q": rng.integers(0, 5, 3000)}, backend="cpu")
    rep = det.compare({"q": rng.integers(0, 5, 3000) + 0.5})
    assert rep["q"].status == "error" and "non-integer" in rep["q"].message and rep.n_tested == 0
    with pytest.raises(SchemaError, match=r"no column .* could be read: 'b': .*not UTF-8"):
        pq.write_table(pa.table({"b": pa.array([b"\xff\xfe", b"ok"] * 50, pa.binary())}), tmp_path / "b.parquet")
        DriftDetector(str(tmp_path / "b.parquet"), backend="cpu")


def test_tests_from_sketches_report_drift_only_where_the_sketches_show_one(rng):
    """From sketches a statistic is known within an interval; its midpoint was reported for KS and Wasserstein.
    On heavy-tailed data the top segment of a quantile sketch spans most of the range, and the midpoint of
    the normalized Wasserstein distance between two lognormal windows of one distribution came out past the
    0.1 threshold (0.44 against an exact 0.04): drift on identical data. Every statistic from sketches is now
    the lower end (statistic_error the width), and its p-value the largest the sketches allow."""
    for _ in range(3):
        r, c = rng.lognormal(0, 3, 50_000), rng.lognormal(0, 3, 50_000)
        ref = cudrift.profile({"x": r})
        cur = cudrift.profile({"x": c}, like=ref)
        w = DriftDetector(ref, policy="wasserstein_normalized").compare(cur)["x"]
        exact = st.wasserstein_distance(r, c) / r.std()
        assert w.statistic <= exact * (1 + 1e-9) <= w.statistic + w.statistic_error and not w.drifted
        k = DriftDetector(ref, policy="ks").compare(cur)["x"]
        truth = st.ks_2samp(r, c)
        assert k.statistic <= truth.statistic + 1e-12 <= k.statistic + k.statistic_error + 2e-12
        assert k.pvalue >= st.kstwo.sf(truth.statistic, round(50_000 / 2)) * 0.9 and not k.drifted


def test_a_reference_read_in_batches_keeps_its_moments(rng, tmp_path):
    """Merging batches' moments subtracts their means, about 1e-16 * |mean| / std of the variance per merge when
    the means are rounded: a reference of 1e9 + N(0, 1e-6) read in batches of 200 rows had its standard
    deviation percents off, and the normalized Wasserstein distance, computed on exactly sorted values with
    statistic_error 0, was off by as much. Moments keep their means as double-doubles (Moments.mean_lo)."""
    r = 1e9 + rng.normal(0, 1e-6, 20_000)
    c = 1e9 + rng.normal(5e-7, 1e-6, 10_000)
    exact_std = np.std(r - 1e9)  # r - 1e9 is exact (Sterbenz), so this is the std to rounding
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": r}), tmp_path / "r.parquet")
    det = DriftDetector(str(tmp_path / "r.parquet"), config=cudrift.ProfileConfig(batch_rows=200),
                        policy="wasserstein_normalized", backend="cpu")
    assert det.reference["x"].moments.std == pytest.approx(exact_std, rel=1e-9)
    f = det.compare({"x": c})["x"]
    want = st.wasserstein_distance(r - 1e9, c - 1e9) / exact_std
    assert f.statistic_error == 0.0 and f.statistic == pytest.approx(want, rel=1e-9)


def test_a_coarse_reference_sketch_does_not_make_a_column_few_valued(rng):
    """With quantile_k 2 a sketch keeps 3 points of a 101-valued column: their union made the column look
    few-valued, and the auto rule counted 'each value' from sketch estimates (chisquare 491, p 3e-106, on two
    windows of one distribution). A reference sketch that is not exact now means many values."""
    cfg = cudrift.ProfileConfig(quantile_k=2)
    ref = cudrift.profile({"x": rng.integers(0, 101, 500).astype(float)}, config=cfg)
    assert not ref["x"].quantiles.cdf_bounds().is_exact
    for _ in range(3):
        f = DriftDetector(ref).compare(cudrift.profile({"x": rng.integers(0, 101, 500).astype(float)}, like=ref))["x"]
        assert f.test not in ("chisquare", "ztest") and not f.drifted
    # a few-valued reference (its sketch exact) is still counted per value, from a window's sketch too
    few = cudrift.profile({"x": rng.integers(0, 3, 500).astype(float)}, config=cfg)
    shifted = cudrift.profile({"x": rng.choice([0.0, 1.0, 2.5], 500)}, like=few)
    g = DriftDetector(few).compare(shifted)["x"]
    assert g.test in ("chisquare", "ztest") and g.drifted


def test_a_reference_with_estimated_category_counts_says_its_test_is_not_exact(rng):
    """References saved before profile() recounted a column past max_categories hold heavy-hitter estimates
    (max_count_error > 0); their count tests reported statistic_error 0. They now say the bound is unknown."""
    keys = np.array([f"k{i}" for i in range(30)], dtype=object)
    ref = cudrift.profile({"c": rng.choice(keys, 3000)}, config=cudrift.ProfileConfig(max_categories=10))
    cur = cudrift.profile({"c": rng.choice(keys, 3000)}, like=ref)
    assert DriftDetector(ref).compare(cur)["c"].statistic_error == 0.0  # recounted: exact
    ref["c"].counts._error = 40  # as such a reference was saved
    f = DriftDetector(ref).compare(cur)["c"]
    assert np.isnan(f.statistic_error) and f.status == "ok"


def _categories(rng, n, p):
    return rng.choice(["a", "b", "new"], size=n, p=p)


@pytest.mark.parametrize("n", [300, 5000])
def test_a_window_as_reference_puts_both_sides_values_outside_the_dictionary_in_one_bin(rng, n):
    """A window profiled like= a reference, used as the reference (last week's against this week's), counts
    values outside the dictionary as unseen too: they were dropped from its counts, so two windows of the same
    rows read as drifted (JS 0.47) with 50% "categories the reference never had" and 0.14% out of range."""
    ref0 = cudrift.profile({"c": rng.choice(["a", "b"], 5000), "x": rng.normal(size=5000)}, backend="cpu")
    day = {"c": _categories(rng, n, [0.25, 0.25, 0.5]), "x": rng.normal(size=n)}
    w1, w2 = (cudrift.profile(day, like=ref0, backend="cpu") for _ in range(2))
    rep = DriftDetector(w1, backend="cpu").compare(w2)
    assert rep["c"].statistic == 0.0 and rep["x"].statistic == 0.0 and not rep.drifted_columns
    assert rep.findings == ()
    # on other data: the counts are [a, b, outside the dictionary] on each side, as SciPy sees them
    other = _categories(rng, n, [0.4, 0.3, 0.3])
    rep = DriftDetector(w1, backend="cpu").compare(cudrift.profile({"c": other}, like=ref0, backend="cpu"))
    r = np.array([np.sum(day["c"] == k) for k in ("a", "b", "new")], dtype=float)
    c = np.array([np.sum(other == k) for k in ("a", "b", "new")], dtype=float)
    if n > 1000:
        assert rep["c"].test == "jensenshannon"
        assert rep["c"].statistic == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)
    else:
        assert rep["c"].test == "chisquare"
        exp = st.chi2_contingency(np.array([r, c]))
        assert rep["c"].statistic == pytest.approx(exp.statistic, rel=1e-9)
        assert rep["c"].pvalue == pytest.approx(exp.pvalue, rel=1e-9)
    # a current window with no value outside the dictionary still counts three values (the reference has them):
    # not a two-category test, which cannot take the reference's third bin
    two = rng.choice(["a", "b"], size=n)
    rep = DriftDetector(w1, backend="cpu").compare(cudrift.profile({"c": two}, like=ref0, backend="cpu"))
    c = np.array([np.sum(two == "a"), np.sum(two == "b"), 0.0])
    assert rep["c"].status == "ok", rep["c"].message
    if n <= 1000:
        assert rep["c"].test == "chisquare"
        assert rep["c"].statistic == pytest.approx(st.chi2_contingency(np.array([r, c])).statistic, rel=1e-9)


def test_unseen_categories_against_a_reference_that_had_values_outside_the_dictionary_compare_the_shares(rng):
    """Which categories a window's values outside the dictionary were is not kept: against such a reference the
    finding compares the two shares and says the count is an upper bound, and a share that did not grow is not
    reported (it said 50.7% were "categories the reference never had" of the reference's own rows)."""
    ref0 = cudrift.profile({"c": rng.choice(["a", "b"], 4000)}, backend="cpu")
    last = cudrift.profile({"c": _categories(rng, 4000, [0.4, 0.4, 0.2])}, like=ref0, backend="cpu")
    now = _categories(rng, 3000, [0.25, 0.25, 0.5])
    rep = DriftDetector(last, backend="cpu").compare(cudrift.profile({"c": now}, like=ref0, backend="cpu"))
    (f,) = [f for f in rep.findings if f.check == "unseen_categories"]
    r_share = last.columns["c"].unseen_count / 4000
    assert f.value == pytest.approx(np.mean(now == "new"), rel=1e-12)
    assert f.reference_value == pytest.approx(r_share, rel=1e-12) and 0.15 < r_share < 0.25
    assert "at most this many" in f.message and f"{np.sum(now == 'new')} current values" in f.message
    fewer = _categories(rng, 3000, [0.45, 0.45, 0.1])
    rep = DriftDetector(last, backend="cpu").compare(cudrift.profile({"c": fewer}, like=ref0, backend="cpu"))
    assert not [f for f in rep.findings if f.check == "unseen_categories"]


def test_unseen_share_of_two_windows_of_one_distribution_is_not_a_finding(rng):
    """Against a reference that is itself a window, the unseen_categories finding needs the current share larger
    beyond sampling noise (one-sided two-proportion z-test at 0.01): with no tolerance it came on about every
    other pair of windows of one distribution (50.7% against 50.1%)."""
    ref0 = cudrift.profile({"c": rng.choice(["a", "b"], 4000)}, backend="cpu")
    p = [0.25, 0.25, 0.5]
    last = cudrift.profile({"c": _categories(rng, 5000, p)}, like=ref0, backend="cpu")
    shares = []
    for _ in range(20):
        now = cudrift.profile({"c": _categories(rng, 5000, p)}, like=ref0, backend="cpu")
        rep = DriftDetector(last, backend="cpu").compare(now)
        shares.append(now.columns["c"].unseen_count > last.columns["c"].unseen_count)
        assert not [f for f in rep.findings if f.check == "unseen_categories"]
    assert any(shares), "some windows had the larger share, by noise"
    # a share that grew: reported, with the z-test's p-value written out here
    grown = _categories(rng, 5000, [0.22, 0.22, 0.56])
    rep = DriftDetector(last, backend="cpu").compare(cudrift.profile({"c": grown}, like=ref0, backend="cpu"))
    (f,) = [f for f in rep.findings if f.check == "unseen_categories"]
    n1, x1 = 5000, last.columns["c"].unseen_count
    n2, x2 = 5000, int(np.sum(grown == "new"))
    pool = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    assert f"p = {st.norm.cdf(z):.2g})" in f.message


def test_a_window_made_like_another_reference_is_refused_by_name(rng):
    """A categorical window profiled like= a profile of other categories counted this reference's categories it
    lacks as unseen: the count tests read that as drift (JS 0.59 on one distribution)."""
    data = {"c": rng.choice(["a", "b", "c"], 3000)}
    ref = cudrift.profile(data, backend="cpu")
    other = cudrift.profile({"c": rng.choice(["a", "b", "z"], 3000)}, backend="cpu")
    with pytest.raises(cudrift.IncompatibleSketchError, match=r"column 'c': the current profile was made like= a profile of "
                                                      r"other categories \(1 not in this reference's dictionary, 1 "
                                                      r"of it missing; 3 in it\)"):
        DriftDetector(ref, backend="cpu").compare(cudrift.profile(data, like=other, backend="cpu"))
    # like= the reference itself, or like= a window of it (which passes the reference's dictionary on): compared
    w = cudrift.profile(data, like=ref, backend="cpu")
    for cur in (w, cudrift.profile(data, like=w, backend="cpu")):
        assert DriftDetector(ref, backend="cpu").compare(cur)["c"].statistic == 0.0


def _share_bounds(f):
    """(value, upper end) of an out_of_range finding: 'between 1.2% and 1.5%', 'about 1.2%' (ends that print
    alike to 3 digits), or one share when exact."""
    import re

    upper = re.search(r"between [0-9.e+-]+% and ([0-9.e+-]+)%", f.message)
    if upper:
        return f.value, float(upper.group(1)) / 100
    return f.value, f.value * (1 + 1e-2) if "about" in f.message else f.value


@pytest.mark.parametrize("n", [300, 20_000])
def test_out_of_range_is_measured_against_the_references_own_range(rng, n):
    """The current window's outer histogram bins count values outside the edges, which come from the profile
    its windows were made like=: against a window as reference, or a reference grown by update(), they are not
    the reference's range. Outside its [min, max] the share then comes from the current quantile sketch, an
    interval that holds the true share (update() to U(0, 10) read 89.7% of a U(0, 10) window as outside)."""
    ref0 = cudrift.profile({"x": rng.normal(size=20_000)}, backend="cpu")
    narrow = cudrift.profile({"x": rng.normal(0.0, 0.5, size=20_000)}, like=ref0, backend="cpu")
    grown = cudrift.profile({"x": rng.uniform(0, 1, size=20_000)}, backend="cpu")
    grown.update({"x": rng.uniform(0, 10, size=20_000)})
    for ref, x in ((narrow, rng.normal(size=n)), (narrow, rng.normal(0.0, 0.5, size=n)),
                   (grown, rng.uniform(0, 10, size=n)), (grown, rng.uniform(-5, 20, size=n))):
        m = ref.columns["x"].moments
        truth = np.mean((x < m.min) | (x > m.max))
        for cur in ({"x": x}, cudrift.profile({"x": x}, like=ref0 if ref is narrow else grown, backend="cpu")):
            found = [f for f in DriftDetector(ref, backend="cpu").compare(cur).findings if f.check == "out_of_range"]
            if not found:
                assert truth < 0.01
                continue
            lo, hi = _share_bounds(found[0])
            assert lo <= truth * (1 + 1e-12) and truth <= hi * (1 + 5e-3) + 1e-12, (lo, truth, hi)
            assert hi - lo <= 0.02 and (lo == hi or "estimated from the current quantile sketch" in found[0].message)
    # a window of the reference's own rows is not outside it
    same = cudrift.profile({"x": rng.normal(0.0, 0.5, size=n)}, like=ref0, backend="cpu")
    assert not DriftDetector(same, backend="cpu").compare(same).findings


def test_a_window_whose_shared_columns_are_all_unreadable_gets_error_rows(rng):
    """A one-feature monitor's window whose column cannot be read raised (EmptyInputError when the column failed
    its type, SchemaError when it failed being read), though one unreadable column among others gets an error
    row: every such column now gets its row with the reason, nothing is tested and the dataset is not
    compared. A window of no rows is still refused."""
    det = DriftDetector({"x": np.arange(100.0)}, backend="cpu")
    rep = det.compare(pd.DataFrame({"x": pd.date_range("2024", periods=10)}))
    assert rep["x"].status == "error" and "datetime" in rep["x"].message
    assert (rep.n_tested, rep.n_drifted, rep.share_drifted, rep.dataset_drift) == (0, 0, 0.0, False)
    assert rep.n_current_rows == 10 and [(f.check, f.column) for f in rep.findings] == [("bad_column", "x")]
    assert "not compared — none of the 1 columns could be tested" in rep.summary_table()
    assert DriftReport.from_json(rep.to_json()) == rep
    # one column failing its type, one failing while read (non-integer values for categories), one not shared
    det = DriftDetector({"q": rng.integers(0, 5, 3000), "t": rng.normal(size=3000)}, backend="cpu")
    rep = det.compare({"q": rng.integers(0, 5, 3000) + 0.5, "t": pd.date_range("2024", periods=3000).values,
                       "z": np.ones(3000)})
    assert [(f.column, f.status) for f in rep] == [("q", "error"), ("t", "error")] and rep.n_tested == 0
    assert "non-integer values" in rep["q"].message and "datetime" in rep["t"].message
    assert {(f.check, f.column) for f in rep.findings} == {("bad_column", "q"), ("bad_column", "t"),
                                                          ("extra_column", "z")}
    assert DriftReport.from_json(rep.to_json()) == rep
    for empty in ({"q": np.zeros(0, dtype=np.int64), "t": np.zeros(0)},
                  {"q": np.zeros(0, dtype="datetime64[ns]"), "t": np.zeros(0)}):
        with pytest.raises(EmptyInputError, match="no rows"):
            det.compare(empty)


def test_a_column_of_only_infinities_says_it_has_no_finite_values(rng):
    det = DriftDetector({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)}, backend="cpu")
    rep = det.compare({"x": np.array([np.inf, -np.inf, np.inf, np.nan]), "c": np.array(["a", None, "b", "a"])})
    assert rep["x"].status == "no_data"
    assert rep["x"].message == "no finite values (3 infinite, 1 NaN) in the current window"
    rep = det.compare(pd.DataFrame({"x": pd.array([np.inf, None], dtype="Float64"), "c": ["a", "b"]}))
    assert rep["x"].message == "no finite values (1 infinite, 1 null) in the current window"
    (f,) = [f for f in rep.findings if f.check == "no_data"]
    assert f.message == "column 'x' has no finite values (1 infinite, 1 null) in the current window"
    rep = det.compare({"x": np.array([np.nan, np.nan]), "c": np.array([None, None], dtype=object)})
    assert rep["x"].message == "no finite values (2 NaN) in the current window"
    assert rep["c"].message == "no non-null values in the current window"


def test_the_finding_docstring_names_every_check_compare_emits():
    import inspect
    import re

    from cudrift.detect import detector
    from cudrift.detect.report import Finding

    emitted = set(re.findall(r'Finding\(\s*"([a-z_]+)"', inspect.getsource(detector)))
    assert {"bad_column", "pvalue_floor", "out_of_range"} <= emitted
    documented = set(re.findall(r"``([a-z_]+)``", Finding.__doc__))
    assert emitted <= documented, emitted - documented


def test_report_reader_refuses_numbers_past_the_float_range_and_deep_nesting_as_format_errors(rng):
    """A huge JSON integer in a float field raised OverflowError, one past Python's 4300 digits ValueError, and
    deeply nested JSON RecursionError, where a reader expects FormatError."""
    rep = DriftDetector({"x": rng.normal(size=300)}, backend="cpu").compare({"x": rng.normal(size=300)})
    d = json.loads(rep.to_json())
    with pytest.raises(cudrift.FormatError, match=r"drift_share should be float, got an integer of 1329 bits"):
        DriftReport.from_json(json.dumps({**d, "drift_share": 10 ** 400}))
    with pytest.raises(cudrift.FormatError, match=r"statistic should be float\?, got an integer"):
        DriftReport.from_dict({**d, "features": [{**d["features"][0], "statistic": 10 ** 400}]})
    with pytest.raises(cudrift.FormatError, match=r"column should be str, got an integer of 16610 bits"):
        DriftReport.from_dict({**d, "features": [{**d["features"][0], "column": 10 ** 5000}]})
    with pytest.raises(cudrift.FormatError, match="not valid JSON"):
        DriftReport.from_json(json.dumps(d).replace('"n_tested": 1', '"n_tested": ' + "1" * 5000))
    for deep in ("[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000):
        with pytest.raises(cudrift.FormatError, match="nested too deeply"):
            DriftReport.from_json(deep)


def test_report_metadata_reads_back_as_json_gives_it(rng):
    """to_json writes metadata as JSON; what JSON holds reads back equal, and a NaN or infinity (written as a
    string, as JSON has none) reads back as that string, as to_json documents: metadata has no field types."""
    import dataclasses

    rep = DriftDetector({"x": rng.normal(size=300)}, backend="cpu").compare({"x": rng.normal(size=300)})
    plain = dataclasses.replace(rep, metadata={**rep.metadata, "run": 7, "share": 0.25, "tags": ["a", None],
                                               "nested": {"ok": True}})
    assert DriftReport.from_json(plain.to_json()) == plain
    odd = dataclasses.replace(rep, metadata={"nan": float("nan"), "inf": np.float64(-np.inf), "pair": (1, 2)})
    back = DriftReport.from_json(odd.to_json())
    assert back.metadata == {"nan": "NaN", "inf": "-Infinity", "pair": [1, 2]}
    assert "a NaN or infinite float in it as the string" in " ".join(DriftReport.to_json.__doc__.split())


def test_out_of_range_of_a_constant_reference_is_counted_exactly(rng):
    """A constant reference's single bin is [v, nextafter(v)]: its top edge is not its maximum, and the share was
    estimated from the current sketch ("between 20% and 20%", 0.1997) instead of counted (0.2)."""
    ref = cudrift.profile({"c": np.full(1000, 5.0)}, backend="cpu")
    cur = np.full(200_000, 5.0)
    cur[:30_000] = rng.uniform(5, 6, 30_000)
    cur[30_000:40_000] = rng.uniform(4, 5, 10_000)
    (f,) = [f for f in DriftDetector(ref, backend="cpu").compare({"c": cur}).findings if f.check == "out_of_range"]
    assert f.value == np.mean(cur != 5.0) and "estimated" not in f.message


def test_out_of_range_of_a_window_reference_counts_values_below_its_own_minimum(rng):
    """A window used as the reference whose minimum lay one float16 step inside its edges' original reference
    was counted from the outer bins as if the edges were its range, missing the values in between (0 found of
    10%)."""
    r = cudrift.profile({"p": rng.integers(4000, 8000, 10_000) / 4}, backend="cpu")  # min 1000.0
    w1 = rng.integers(4001, 8000, 10_000) / 4  # min 1000.25
    cur = np.r_[rng.integers(4001, 8000, 9000) / 4, np.full(1000, 1000.0)]
    rep = DriftDetector(cudrift.profile({"p": w1}, like=r, backend="cpu"), backend="cpu").compare(
        cudrift.profile({"p": cur}, like=r, backend="cpu"))
    (f,) = [f for f in rep.findings if f.check == "out_of_range"]
    lo, hi = _share_bounds(f)
    truth = np.mean((cur < w1.min()) | (cur > w1.max()))
    assert truth == 0.1 and lo <= truth <= hi


def test_a_window_reference_narrowed_to_some_columns_stays_a_window(rng):
    """DriftDetector(columns=) rebuilt the reference without its window flag: a window's subset read as a
    reference (whose update() fixes edges a window must not have)."""
    ref = cudrift.profile({"x": rng.normal(size=300), "y": rng.normal(size=300)}, backend="cpu")
    w = cudrift.profile({"x": rng.normal(size=100), "y": rng.normal(size=100)}, like=ref, backend="cpu")
    assert DriftDetector(w, columns=["x"], backend="cpu").reference.window is True
    assert DriftDetector(ref, columns=["x"], backend="cpu").reference.window is False


def test_a_narrow_reference_range_is_printed_with_the_digits_that_tell_its_ends_apart(rng):
    """1 + U(0, 1e-9) was 'outside the reference range [1, 1]', which reads as a constant reference."""
    from cudrift.detect.detector import _distinct, _p_text

    ref = 1 + rng.uniform(0, 1e-9, 2000)
    cur = np.r_[1 + rng.uniform(0, 1e-9, 900), [1 + 2e-9] * 100]
    (f,) = [f for f in DriftDetector({"x": ref}, backend="cpu").compare({"x": cur}).findings
            if f.check == "out_of_range"]
    lo, hi = f.message.split("reference range [")[1].split("]")[0].split(", ")
    assert lo != hi and float(lo) <= ref.min() * (1 + 1e-12) and float(hi) >= ref.max() * (1 - 1e-12)
    assert _distinct(5.0, 5.0) == "5, 5" and _distinct(1.5, 2.5) == "1.5, 2.5"
    assert _distinct(0.3, 0.30000000000000004) == "0.3, 0.30000000000000004"
    assert _p_text(0.0) == "< 1e-300" and _p_text(3.14e-5) == "= 3.1e-05"



def test_a_float32_window_of_a_rounded_float64_feature_is_compared_at_its_precision(rng):
    """float32(0.7) is not 0.7: a float32 window of a feature rounded to one decimal was binned a bin below every
    atom whose float32 lies under it (PSI 0.63 on one distribution), and rank tests saw each atom as two values
    (KS p 9e-25). Both windows are compared at float32 precision: the tests equal SciPy's on the reference rounded
    to float32."""
    ref64 = np.round(rng.normal(50, 5, 20_000), 1)
    cur32 = np.round(rng.normal(50, 5, 5_000), 1).astype(np.float32)
    ref = cudrift.profile({"p": ref64}, backend="cpu")
    window = cudrift.profile({"p": cur32}, like=ref, backend="cpu")
    psi = DriftDetector(ref, policy="psi", backend="cpu").compare(window)["p"]
    assert psi.statistic < 0.05 and not psi.drifted
    # the window's histogram is the reference values' own, rounded to float32, on the reference's bins
    same = cudrift.profile({"p": ref64[:5_000].astype(np.float32)}, like=ref, backend="cpu")
    assert same["p"].histogram.counts.tolist() == cudrift.profile({"p": ref64[:5_000]}, like=ref,
                                                                  backend="cpu")["p"].histogram.counts.tolist()
    ref_at, cur_at = ref64.astype(np.float32).astype(np.float64), cur32.astype(np.float64)  # (SciPy in float64)
    want = st.ks_2samp(ref_at, cur_at)
    exact = DriftDetector({"p": ref64}, policy="ks", backend="cpu").compare({"p": cur32})["p"]
    assert exact.statistic == pytest.approx(want.statistic, abs=1e-12) and exact.pvalue == pytest.approx(
        want.pvalue, rel=1e-9) and not exact.drifted
    sketch = DriftDetector(ref, policy="ks", backend="cpu").compare(window)["p"]
    assert sketch.statistic <= want.statistic + 1e-12 <= sketch.statistic + sketch.statistic_error + 2e-12
    mw = DriftDetector({"p": ref64}, policy="mannwhitneyu", backend="cpu").compare({"p": cur32})["p"]
    assert mw.pvalue == pytest.approx(st.mannwhitneyu(ref_at, cur_at).pvalue, rel=1e-9)
    # and a float64 window against a float32 reference the same way
    back = DriftDetector({"p": ref64.astype(np.float32)}, policy="ks", backend="cpu").compare({"p": cur32 + 0.0})
    assert back["p"].statistic == pytest.approx(want.statistic, abs=1e-12)


def test_the_reference_is_rounded_to_a_windows_precision_only_for_tests_that_read_it(rng, monkeypatch):
    """Rounding a float64 reference to a float32 window's precision copies it on every compare: MMD (run on the
    samples) and a t-test of a window not kept sorted (run on the moments) do not read it, and do not pay."""
    ref = rng.normal(size=20_000)
    cur = rng.normal(size=2_000).astype(np.float32)
    rounded = []
    at_precision = _compute.sorted_at_precision

    def counted(x, dtype):
        if dtype is not None:  # (rounded to a float type: a copy)
            rounded.append(x.size)
        return at_precision(x, dtype)

    monkeypatch.setattr(_compute, "sorted_at_precision", counted)
    reference = cudrift.profile({"x": ref}, backend="cpu")
    window = cudrift.profile({"x": cur}, like=reference, backend="cpu")
    for test, current in (("mmd", {"x": cur}), ("ttest", window)):
        detector = DriftDetector({"x": ref}, policy=test, backend="cpu")
        rounded.clear()
        got = detector.compare(current)["x"]
        assert got.status == "ok" and ref.size not in rounded, (test, rounded)
    # (the t-test's moments are the window's own: as SciPy's on the values)
    assert got.statistic == pytest.approx(st.ttest_ind(ref, cur.astype(np.float64), equal_var=False).statistic,
                                          rel=1e-9)
    # the tests that read it still round it
    DriftDetector({"x": ref}, policy="ks", backend="cpu").compare({"x": cur})
    assert ref.size in rounded
    # but not a float32 reference (kept sorted as float64) for a float32 window: rounding changes none of its values
    rounded.clear()
    got = DriftDetector({"x": ref.astype(np.float32)}, policy="ks", backend="cpu").compare({"x": cur})["x"]
    assert rounded == [] and got.statistic == st.ks_2samp(ref.astype(np.float32), cur).statistic


def test_a_float16_window_of_a_float32_reference_is_compared_at_float16(rng):
    """A float32 reference is finer than a float16 window: its bins were not merged at float16 precision as a
    float64 reference's were (PSI 7.35 on one distribution about 1000, spread 0.5; 0.0018 from float64)."""
    ref = 1000 + rng.normal(0, 0.5, 20_000)
    cur = (1000 + rng.normal(0, 0.5, 5_000)).astype(np.float16)
    got = [DriftDetector({"x": r}, policy="psi", backend="cpu").compare({"x": cur})["x"].statistic
           for r in (ref.astype(np.float32), ref)]
    assert got[0] < 0.05 and got[0] == pytest.approx(got[1], rel=0.5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_reference_of_neighbouring_narrow_floats_is_counted_as_its_windows_are(rng, dtype):
    """A reference's counting pass binned a float16 column read widened to float32, or a float32 one kept sorted as
    float64, finer than a window of the same rows (the window at its own precision): PSI 3.7 and drift on
    identical data of neighbouring float16 (float32) values. Counted at the column's precision, and as
    np.histogram counts the values on the edges rounded so."""
    values = dtype(1) + np.arange(10, dtype=dtype) * np.finfo(dtype).eps
    x = rng.choice(values, 2000).astype(dtype)
    ref = cudrift.profile({"x": x}, backend="cpu")
    for reference in (ref, {"x": x}):
        got = DriftDetector(reference, policy="psi", backend="cpu").compare({"x": x})["x"]
        assert got.statistic == 0.0 and not got.drifted
    h = ref["x"].histogram
    rounded = h.edges.astype(dtype).astype(np.float64)  # (nearest of the type: the edges are midpoints or values)
    inner = np.histogram(x.astype(np.float64), bins=rounded)[0]
    assert h.counts[1:-1].tolist() == inner.tolist() and h.counts[0] == h.counts[-1] == 0


def test_reference_values_past_the_windows_float_type_keep_their_own(rng):
    """Rounded to a float32 window's precision, a float64 reference's 1e300 became inf: Wasserstein inf (it was
    2.5e297), and 'overflow encountered in cast'. Values past the type's range keep their float64 value."""
    ref = rng.normal(size=2000)
    ref[:5] = 1e300
    cur = rng.normal(size=500).astype(np.float32)
    with np.errstate(over="ignore"):
        at = np.where(np.abs(ref) > np.finfo(np.float32).max, ref, ref.astype(np.float32).astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = DriftDetector({"x": ref}, policy="wasserstein", backend="cpu").compare({"x": cur})["x"]
        ks = DriftDetector({"x": ref}, policy="ks", backend="cpu").compare({"x": cur})["x"]
    assert got.statistic == pytest.approx(st.wasserstein_distance(at, cur.astype(np.float64)), rel=1e-9)
    assert ks.statistic == pytest.approx(st.ks_2samp(at, cur.astype(np.float64)).statistic, abs=1e-12)
    assert np.isfinite(got.statistic)


def test_out_of_range_from_the_sketch_is_measured_at_the_windows_precision(rng):
    """Against a window given as the reference (edges not its range), the share outside its [min, max] comes
    from the current sketch: a float32 window of the reference's own values had 64.6% 'outside [0.7, 1.1]', its
    float32(0.7) lying under 0.7."""
    wide = cudrift.profile({"x": rng.uniform(0, 2, 3000)}, backend="cpu")
    vals = rng.choice([0.7, 0.8, 1.1], 3000)
    ref = cudrift.profile({"x": vals}, like=wide, backend="cpu")
    assert not ref["x"].edges_are_range
    cur = cudrift.profile({"x": vals.astype(np.float32)}, like=ref, backend="cpu")
    assert not [f for f in DriftDetector(ref, backend="cpu").compare(cur).findings if f.check == "out_of_range"]
    below = np.r_[vals[:2700], np.full(300, 0.6)].astype(np.float32)
    (f,) = [f for f in DriftDetector(ref, backend="cpu").compare(cudrift.profile({"x": below}, like=ref,
                                                                                  backend="cpu")).findings
            if f.check == "out_of_range"]
    assert f.value == pytest.approx(0.1)


def test_workers_caps_the_threads_of_a_comparison_with_the_columns_pools(rng, monkeypatch):
    """workers=N ran N column threads, each of which could start N more for its own work (the exact grid of a
    large rank test): N * N threads. The columns' pools now share what the column threads leave."""
    from cudrift.backends import cpu_workers

    seen = []
    real = _compute.run_test

    def run_test(*a, **k):
        seen.append(cpu_workers(limit=64))
        return real(*a, **k)

    monkeypatch.setattr(_compute, "run_test", run_test)
    monkeypatch.setattr("cudrift.backends.usable_cpus", lambda: 64)
    data = {f"c{j}": rng.normal(size=200) for j in range(4)}
    DriftDetector(data, workers=4, backend="cpu").compare(data)
    assert seen == [1, 1, 1, 1]  # 4 column threads: none to spare (each saw 4)
    seen.clear()
    DriftDetector(data, workers=8, backend="cpu").compare(data)
    assert seen == [2, 2, 2, 2]
    seen.clear()
    DriftDetector({"c0": data["c0"]}, workers=8, backend="cpu").compare({"c0": data["c0"]})
    assert seen == [8]  # one column: all of them for its own work


def test_histogram_tests_of_a_float32_window_finer_than_float32_count_the_reference_at_its_precision(rng):
    """Edges closer than float32 tells apart (values about 1e6, spread 0.5; float32 steps 0.0625 there): the
    window's collapsed bins were empty and the reference's full, PSI 3.79 on identical data. The kept sorted
    reference is counted again rounded (exact: 0); from its profile, bins that collapse are merged (an estimate:
    statistic_error NaN)."""
    a = rng.normal(1e6, 0.5, 50_000)
    a32 = a.astype(np.float32)
    exact = DriftDetector({"v": a}, policy="psi", backend="cpu").compare({"v": a32})["v"]
    assert exact.statistic == 0.0 and exact.statistic_error == 0.0
    ref = cudrift.profile({"v": a}, backend="cpu")
    merged = DriftDetector(ref, policy="psi", backend="cpu").compare({"v": a32})["v"]
    assert merged.statistic < 0.05 and not merged.drifted and math.isnan(merged.statistic_error)
    js = DriftDetector({"v": a}, policy="jensenshannon", backend="cpu").compare({"v": a32})["v"]
    assert js.statistic == 0.0
    # the recount is the window's own binning of the rounded values (rounded as the detector hands them over)
    edges = ref["v"].histogram.edges
    want = cudrift.profile({"v": a32}, like=ref, backend="cpu")["v"].histogram.counts
    rounded = _compute.sorted_at_precision(np.sort(a), np.float32)
    assert _compute._recounted(edges, rounded, np.float32).tolist() == want.tolist()
    # a window of float32 and float64 parts binned only some of its values at float32: no recount, the estimate
    mixed = cudrift.profile({"v": a32[:100]}, like=ref, backend="cpu") + cudrift.profile({"v": a[100:]}, like=ref,
                                                                                         backend="cpu")
    assert mixed["v"].dtype == "float32|float64"
    res = DriftDetector({"v": a}, policy="psi", backend="cpu").compare(mixed)["v"]
    assert res.statistic < 0.05 and not res.drifted and math.isnan(res.statistic_error)


def test_a_float64_window_of_a_float32_references_values_is_in_its_range(rng):
    """float64 0.1 lies under float32 0.1: a float64 window of a float32 reference's own values had '33% of
    current values outside the reference range'."""
    x = rng.choice([0.1, 0.2, 0.3], 5000)
    for ref in ({"few": x.astype(np.float32)}, cudrift.profile({"few": x.astype(np.float32)}, backend="cpu")):
        rep = DriftDetector(ref, backend="cpu").compare({"few": x})
        assert not [f for f in rep.findings if f.check == "out_of_range"], rep.findings


def test_a_t_test_from_moments_a_float32_window_cannot_hold_runs_on_the_rounded_samples(rng):
    """1e6 + {0, 0.01} is 1e6 in float32: the moments said t 141 on one distribution. Where rounding could move
    the t statistic (half a float32 step at the largest value against 1% of the standard error) the samples are
    compared, rounded; elsewhere the moments are (a rounded N(50, 5): half a step 2e-6, standard error 0.08)."""
    a = 1e6 + rng.choice([0.0, 0.01], 20_000)
    res = DriftDetector({"v": a}, policy="ttest", exact="never", backend="cpu").compare({"v": a.astype(np.float32)})
    assert not res["v"].drifted
    r, c = np.round(rng.normal(50, 5, 20_000), 1), np.round(rng.normal(50, 5, 5_000), 1).astype(np.float32)
    res = DriftDetector(cudrift.profile({"v": r}, backend="cpu"), policy="ttest", backend="cpu").compare({"v": c})
    want = st.ttest_ind(r, c.astype(np.float64), equal_var=False)
    assert res["v"].statistic == pytest.approx(want.statistic, rel=1e-6) and res["v"].statistic_error == 0.0
    # a large window whose standard error is below float32's steps, but its spread far above: still the moments
    # (the samples lost the shift of 0.03: t -1.1 against -4.1)
    big_r, big_c = rng.normal(1e4, 5, 1_000_000), rng.normal(1e4 + 0.03, 5, 1_000_000).astype(np.float32)
    res = DriftDetector(cudrift.profile({"v": big_r}, backend="cpu"), policy="ttest",
                        backend="cpu").compare({"v": big_c})["v"]
    want = st.ttest_ind(big_r, big_c.astype(np.float64), equal_var=False)
    assert res.statistic == pytest.approx(want.statistic, rel=1e-6) and res.drifted


def test_a_reference_of_values_a_float32_window_merges_gets_one_test_from_values_and_sketches(rng):
    """A reference of six values that float32 makes three got wasserstein_normalized from its sorted values
    (counted at float64) and jensenshannon from its sketches (counted at float32)."""
    six = 1.0 + np.array([0, 1, 2, 2**30, 2**30 + 1, 2**31]) * 2.0**-52  # three float32 values
    ref = rng.choice(six, 3000)
    cur = rng.choice(six, 1000).astype(np.float32)
    tests = {DriftDetector({"v": ref}, exact=e, backend="cpu").compare({"v": cur})["v"].test for e in ("auto", "never")}
    assert len(tests) == 1


def test_a_float16_windows_out_of_range_share_is_measured_at_its_precision(rng):
    """A float16 window is binned on float32 thresholds, and float16(0.1) lies under float32(0.1): its outer
    bins said 66.5% of the reference's own values lay outside [0.1, 0.3]."""
    x = rng.choice([0.1, 0.2, 0.3], 5000)
    for ref in ({"v": x}, cudrift.profile({"v": x}, backend="cpu")):
        for window in ({"v": x.astype(np.float16)}, pa.table({"v": pa.array(x.astype(np.float16))})):
            rep = DriftDetector(ref, backend="cpu").compare(window)
            assert not [f for f in rep.findings if f.check == "out_of_range"], rep.findings


def test_a_float16_window_of_a_rounded_float64_feature_does_not_drift(rng):
    """Binned on float32 thresholds, a float16 window of a feature rounded to one decimal gave PSI 0.39 against
    the reference's profile (NumPy or Arrow input); on float16 ones, as its reference is counted again."""
    r = np.round(rng.normal(50, 5, 20_000), 1)
    c = np.round(rng.normal(50, 5, 5_000), 1).astype(np.float16)
    ref = cudrift.profile({"p": r}, backend="cpu")
    for window in ({"p": c}, pa.table({"p": pa.array(c)})):
        for reference in (ref, {"p": r}):
            res = DriftDetector(reference, policy="psi", backend="cpu").compare(window)["p"]
            assert res.statistic < 0.05 and not res.drifted, res
