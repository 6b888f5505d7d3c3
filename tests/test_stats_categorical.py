"""Categorical and binary two-sample tests: chi-square, Fisher, two-proportion z-test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon
from scipy.special import ndtr

from cudrift.errors import EmptyInputError, SchemaError
from cudrift.stats import (
    chisquare_2samp,
    chisquare_2samp_labels,
    count_labels,
    fisher_exact,
    fisher_exact_labels,
    ztest_proportions,
    ztest_proportions_labels,
)


def close(a, b, rtol=1e-9):
    np.testing.assert_allclose(float(a), float(b), rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("k", [2, 3, 8, 40])
@pytest.mark.parametrize("scale", [10, 1000, 100_000])
def test_chisquare_matches_chi2_contingency(rng, k, scale):
    p = rng.dirichlet(np.ones(k))
    r = rng.multinomial(scale, p).astype(float)
    c = rng.multinomial(int(scale * 0.7), rng.dirichlet(np.ones(k)) * 0.3 + p * 0.7).astype(float)
    keep = (r + c) > 0
    for correction in (True, False):
        for lambda_ in (None, "log-likelihood", 0.5):
            ours = chisquare_2samp(r, c, correction, lambda_)
            ref = st.chi2_contingency(np.vstack((r[keep], c[keep])), correction=correction, lambda_=lambda_)
            close(ours.statistic, ref.statistic)
            close(ours.pvalue, ref.pvalue)
            assert ours.details["dof"] == ref.dof
            assert ours.method == "chisquare"


def test_chisquare_drops_categories_empty_in_both():
    res = chisquare_2samp([10, 0, 5, 7], [12, 0, 1, 9])
    ref = st.chi2_contingency([[10, 5, 7], [12, 1, 9]])
    close(res.statistic, ref.statistic)
    assert res.details["n_categories_dropped"] == 1 and res.details["dof"] == 2


def test_chisquare_yates_applies_with_one_degree_of_freedom():
    r, c = [30, 10, 0], [20, 20, 0]
    res = chisquare_2samp(r, c)
    ref = st.chi2_contingency([[30, 10], [20, 20]], correction=True)
    close(res.statistic, ref.statistic)
    assert res.statistic < chisquare_2samp(r, c, correction=False).statistic


def test_chisquare_single_category_has_no_evidence():
    res = chisquare_2samp([5, 0], [9, 0])
    assert (res.statistic, res.pvalue, res.details["dof"]) == (0.0, 1.0, 0)


def test_chisquare_labels_equal_counts(rng):
    cats = np.array(["a", "b", "c", "d"], dtype=object)
    ref = rng.choice(cats, 500, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(cats[:3], 300)
    cur = np.r_[cur, [None, np.nan]]
    res = chisquare_2samp_labels(ref, cur)
    r = np.array([(ref == v).sum() for v in cats], float)
    c = np.array([(cur == v).sum() for v in cats], float)
    close(res.statistic, chisquare_2samp(r, c).statistic)
    assert res.details["n_dropped_current"] == 2


def test_count_labels_mixed_types_are_ordered_by_repr():
    r, c, cats, dropped = count_labels(np.array([1, "a", 1], dtype=object), np.array(["a", 2.5], dtype=object))
    assert cats == sorted({1, "a", 2.5}, key=repr)
    assert r.sum() == 3 and c.sum() == 2 and dropped == (0, 0)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_fisher_matches_scipy(rng, alternative):
    for _ in range(20):
        r = rng.integers(0, 40, 2)
        c = rng.integers(0, 40, 2)
        if r.sum() == 0 or c.sum() == 0:
            continue
        ours = fisher_exact(r, c, alternative)
        ref = st.fisher_exact([r, c], alternative=alternative)
        np.testing.assert_allclose(ours.statistic, ref.statistic, rtol=1e-12, equal_nan=True)
        close(ours.pvalue, ref.pvalue)


def test_fisher_labels_builds_the_table():
    res = fisher_exact_labels([False, False, True, False], np.array([1, 1, 0, 1], dtype=bool))
    assert res.details["table"] == ((3, 1), (1, 3))
    close(res.pvalue, st.fisher_exact([[3, 1], [1, 3]]).pvalue)
    one = fisher_exact_labels([1, 1], [1, 1, 1])
    assert one.details["table"] == ((0, 2), (0, 3))


def _z_by_hand(x1, n1, x2, n2):
    p1, p2 = x1 / n1, x2 / n2
    p = (x1 + x2) / (n1 + n2)
    return (p1 - p2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_ztest_matches_formula_and_chi2(rng, alternative):
    for _ in range(20):
        n1, n2 = rng.integers(20, 5000, 2)
        x1, x2 = rng.integers(1, n1), rng.integers(1, n2)
        res = ztest_proportions([n1 - x1, x1], [n2 - x2, x2], alternative)
        z = _z_by_hand(x1, n1, x2, n2)
        close(res.statistic, z)
        expected = {"two-sided": 2 * ndtr(-abs(z)), "less": ndtr(z), "greater": ndtr(-z)}[alternative]
        close(res.pvalue, expected)
        # independent check: z^2 is the uncorrected Pearson chi-square of the 2x2 table
        chi2 = st.chi2_contingency([[n1 - x1, x1], [n2 - x2, x2]], correction=False).statistic
        close(res.statistic**2, chi2, rtol=1e-8)


def test_ztest_degenerate_proportions_give_no_evidence():
    res = ztest_proportions([10, 0], [25, 0])
    assert (res.statistic, res.pvalue) == (0.0, 1.0)
    res = ztest_proportions_labels([True] * 5, [True] * 3)
    assert (res.statistic, res.pvalue) == (0.0, 1.0)


def test_ztest_labels(rng):
    a = rng.random(200) < 0.3
    b = rng.random(150) < 0.5
    res = ztest_proportions_labels(a, b)
    close(res.statistic, _z_by_hand(a.sum(), 200, b.sum(), 150))


@pytest.mark.parametrize(
    "call,exc,message",
    [
        (lambda: chisquare_2samp([1, 2, 3], [1, 2]), SchemaError, "aligned"),
        (lambda: chisquare_2samp([1, -2, 3], [1, 2, 3]), ValueError, "non-negative"),
        (lambda: chisquare_2samp([1, np.nan], [1, 2]), ValueError, "finite"),
        (lambda: chisquare_2samp([0, 0], [1, 2]), EmptyInputError, "reference counts"),
        (lambda: chisquare_2samp([], []), EmptyInputError, "empty"),
        (lambda: chisquare_2samp([[1, 2]], [[1, 2]]), SchemaError, "1-D"),
        (lambda: chisquare_2samp([1, 2], [1, 2], lambda_="bogus"), ValueError, "Invalid value for lambda_: 'bogus'"),
        (lambda: chisquare_2samp([1, 2], [1, 2], correction="no"), ValueError, "Invalid value for correction"),
        (lambda: fisher_exact([1, 2, 3], [1, 2, 3]), SchemaError, "two counts"),
        (lambda: fisher_exact([1.5, 2], [1, 2]), ValueError, "whole numbers"),
        (lambda: fisher_exact([1, 2], [1, 2], "sideways"), ValueError, "Invalid value for alternative: 'sideways'"),
        (lambda: ztest_proportions([1, 2], [1, 2], "up"), ValueError, "Invalid value for alternative: 'up'"),
        (lambda: fisher_exact_labels([1, 2, 3], [1]), SchemaError, "two distinct labels"),
        (lambda: chisquare_2samp_labels([], ["a"]), EmptyInputError, "reference"),
        (lambda: chisquare_2samp_labels(["a"], [None, np.nan]), EmptyInputError, "current"),
        (lambda: chisquare_2samp_labels([["a"]], ["a"]), SchemaError, "1-D"),
    ],
)
def test_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def _aligned_table(ref_labels, cur_labels):
    """Counts of both samples on their sorted common labels, written out with a dict."""
    cats = sorted(set(ref_labels) | set(cur_labels))
    return (np.array([list(ref_labels).count(v) for v in cats], float),
            np.array([list(cur_labels).count(v) for v in cats], float))


@pytest.mark.parametrize("k", [2, 3, 9])
def test_value_counts_are_aligned_on_their_labels(rng, k):
    # value_counts() sorts each Series by frequency: the same label sits at different positions
    pd = pytest.importorskip("pandas")
    cats = [f"c{i}" for i in range(k)]
    ref = rng.choice(cats, size=int(rng.integers(200, 2000)), p=rng.dirichlet(np.ones(k)))
    cur = rng.choice(cats[1:] if k > 2 else cats, size=int(rng.integers(200, 2000)), p=None)
    r, c = _aligned_table(ref, cur)
    rs, cs_ = pd.Series(ref).value_counts(), pd.Series(cur).value_counts()
    for correction in (True, False):
        res = chisquare_2samp(rs, cs_, correction)
        ref_res = st.chi2_contingency(np.vstack((r, c)), correction=correction)
        close(res.statistic, ref_res.statistic)
        close(res.pvalue, ref_res.pvalue)
    assert res.details["n_categories"] == len(r)
    if k == 2:
        table = np.vstack((r, c)).astype(int)
        res = fisher_exact(rs, cs_)
        ref_res = st.fisher_exact(table)
        close(res.statistic, ref_res.statistic)
        close(res.pvalue, ref_res.pvalue)
        z = ztest_proportions(rs, cs_)
        assert z.statistic == ztest_proportions(r, c).statistic == ztest_proportions_labels(ref, cur).statistic


def test_value_counts_example_from_the_bug_report():
    pd = pytest.importorskip("pandas")
    ref = pd.Series(["a"] * 700 + ["b"] * 300).value_counts()
    cur = pd.Series(["a"] * 300 + ["b"] * 700).value_counts()
    res = chisquare_2samp(ref, cur)
    ref_res = st.chi2_contingency([[700, 300], [300, 700]])
    close(res.statistic, ref_res.statistic)
    close(res.pvalue, ref_res.pvalue)
    # the positive class is the larger label, whichever is more frequent in the reference
    assert fisher_exact(ref, cur).details["table"] == ((700, 300), (300, 700))
    bools = pd.Series([True] * 7 + [False] * 3).value_counts()  # index [True, False]
    assert ztest_proportions(bools, pd.Series([False] * 2 + [True] * 8).value_counts()).details[
        "proportion_reference"] == 0.7


def test_counts_without_two_label_indexes_are_aligned_by_position():
    pd = pytest.importorskip("pandas")
    s = pd.Series([30.0, 70.0], index=["b", "a"])
    assert chisquare_2samp(s, [30, 70]).statistic == 0.0
    assert chisquare_2samp([30, 70], s).statistic == 0.0
    repeated = pd.Series([30.0, 70.0], index=["a", "a"])
    assert chisquare_2samp(repeated, pd.Series([70.0, 30.0], index=["b", "a"])).statistic > 0
    with pytest.raises(SchemaError):
        chisquare_2samp(pd.Series([1.0, 2.0, 3.0], index=["a", "a", "b"]), pd.Series([1.0, 2.0], index=["a", "b"]))
    # a default RangeIndex numbers positions: Series of different lengths are refused, not zero-padded
    with pytest.raises(SchemaError, match="lengths 3 and 2"):
        chisquare_2samp(pd.Series([1.0, 2.0, 3.0]), pd.Series([1.0, 2.0]))
    # rows of one long table (indexes 0..3 and 4..7, a RangeIndex each) pair by position: two equal distributions
    # were laid on 8 disjoint bins (p 1e-39)
    long = pd.DataFrame({"window": [0] * 4 + [1] * 4, "n": [10.0, 20.0, 30.0, 40.0] * 2})
    assert chisquare_2samp(long[long.window == 0]["n"], long[long.window == 1]["n"]).pvalue == 1.0
    # rows of a table in another order (integer labels, no label in common) cannot be told from integer categories
    # that all changed: refused, saying both ways; as arrays they pair by position
    ref = pd.Series([10.0, 20.0, 30.0, 40.0], index=[0, 2, 5, 7])
    cur = pd.Series([10.0, 20.0, 30.0, 40.0], index=[1, 3, 4, 6])
    with pytest.raises(SchemaError, match=r"share none \(\[0, 2, 5, 7\] and \[1, 3, 4, 6\]\).*to_numpy"):
        chisquare_2samp(ref, cur)
    assert chisquare_2samp(ref.to_numpy(), cur.to_numpy()).pvalue == 1.0


@pytest.mark.parametrize("ref, cur", [(["a"] * 60 + ["b"] * 40, ["c"] * 60 + ["d"] * 40),
                                      ([True] * 80, [False] * 50), ([200] * 70 + [404] * 30, [500] * 60 + [503])])
def test_value_counts_of_disjoint_categories_are_total_drift(ref, cur):
    """value_counts() of two windows with no category in common were paired by position, as rows of one table
    are: every distance said 0 and chi-square p = 1 on a complete change. Labels that cannot number rows (text,
    flags) are aligned on their union; integer ones (HTTP status codes) are refused unless the categories are
    said (reindexed on their union, as here)."""
    pd = pytest.importorskip("pandas")
    from cudrift import stats

    rs, cs_ = pd.Series(ref).value_counts(), pd.Series(cur).value_counts()
    if isinstance(ref[0], int) and not isinstance(ref[0], bool):
        with pytest.raises(SchemaError, match="every category changed"):
            stats.tvd(rs, cs_)
        labels = sorted(set(ref) | set(cur))
        rs, cs_ = rs.reindex(labels, fill_value=0), cs_.reindex(labels, fill_value=0)
    r, c = _aligned_table(ref, cur)
    assert stats.tvd(rs, cs_).statistic == 1.0 == 0.5 * np.abs(r / r.sum() - c / c.sum()).sum()
    assert stats.jensenshannon(rs, cs_).statistic == pytest.approx(
        jensenshannon(r / r.sum(), c / c.sum()), rel=1e-12)
    close(chisquare_2samp(rs, cs_).pvalue, st.chi2_contingency(np.vstack((r, c))).pvalue)


def test_every_kind_of_missing_label_is_dropped(rng):
    """pd.NA (nullable string, boolean, Int64 arrays), float32 NaN in objects, NaT: removed and counted, not categories.

    They were counted as a category (string NA, NaT), made a binary test see three labels (boolean NA), or
    broke np.unique (a float32 NaN among Python floats).
    """
    pd = pytest.importorskip("pandas")
    a = list(rng.choice(["x", "y"], size=int(rng.integers(20, 60))))
    b = list(rng.choice(["x", "y"], size=int(rng.integers(20, 60))))
    r, c = _aligned_table(a, b)
    want = st.chi2_contingency(np.vstack((r, c)))
    cases = [
        (pd.array(a + [pd.NA, pd.NA], dtype="string"), pd.array([pd.NA] + b, dtype="string"), 2, 1),
        (np.array(a + [np.float32("nan"), pd.NA, pd.NaT, None], dtype=object), np.array(b, dtype=object), 4, 0),
        (pd.Categorical(a + [None]), pd.Series(b + [np.nan]), 1, 1),
    ]
    for ref, cur, dr, dc in cases:
        res = chisquare_2samp_labels(ref, cur)
        close(res.statistic, want.statistic)
        close(res.pvalue, want.pvalue)
        assert (res.details["n_dropped_reference"], res.details["n_dropped_current"]) == (dr, dc)
        assert (res.n_reference, res.n_current) == (len(a), len(b))

    bits_a = [bool(v) for v in rng.integers(0, 2, 30)]
    bits_b = [bool(v) for v in rng.integers(0, 2, 25)]
    table = [[bits_a.count(False), bits_a.count(True)], [bits_b.count(False), bits_b.count(True)]]
    res = fisher_exact_labels(pd.array(bits_a + [None], dtype="boolean"), pd.array([None] + bits_b, dtype="boolean"))
    close(res.pvalue, st.fisher_exact(table).pvalue)
    assert res.details["table"] == tuple(map(tuple, table)) and res.details["n_dropped_reference"] == 1
    z = ztest_proportions_labels(pd.array([int(v) for v in bits_a] + [None], dtype="Int64"),
                                 pd.array([int(v) for v in bits_b], dtype="Int64"))
    assert z.statistic == ztest_proportions(*np.array(table, float)).statistic

    days = np.array(["2020-01-01", "NaT", "2020-01-02", "2020-01-01"], dtype="datetime64[D]")
    res = chisquare_2samp_labels(days, np.array(["2020-01-02", "2020-01-01", "NaT"], dtype="datetime64[ns]"))
    assert res.details["n_categories"] == 2 and res.details["n_dropped_reference"] == 1
    close(res.statistic, st.chi2_contingency([[2, 1], [1, 1]]).statistic)
    r, c, cats, dropped = count_labels(np.array([1.5, np.float32("nan"), 2.5], dtype=object), [2.5, np.nan])
    assert cats == [1.5, 2.5] and dropped == (1, 1)


def test_fisher_refuses_counts_past_int64_by_name():
    """Counts of 2**63 and more wrapped to negative int64, and SciPy said the table held negative values."""
    with pytest.raises(ValueError, match=r"fisher_exact: counts must be below 2\*\*63"):
        fisher_exact([2.0**63, 1], [5, 5])
