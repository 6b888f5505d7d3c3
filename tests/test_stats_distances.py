"""Histogram / category-count distances: PSI, KL, Jensen-Shannon, Hellinger, TVD."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon as scipy_js

from cudrift.errors import EmptyInputError, SchemaError
from cudrift.stats import hellinger, jensenshannon, kl_divergence, psi, tvd

EPS = 1e-4


def _counts(rng, k, with_zeros):
    r = rng.multinomial(rng.integers(50, 50_000), rng.dirichlet(np.ones(k))).astype(float)
    c = rng.multinomial(rng.integers(50, 50_000), rng.dirichlet(np.ones(k))).astype(float)
    if with_zeros and k > 2:
        r[0] = 0.0
        c[-1] = 0.0
    return r, c


def _props(r, c):
    return r / r.sum(), c / c.sum()


cases = pytest.mark.parametrize("k,with_zeros", [(2, False), (5, True), (12, False), (60, True)])


@cases
def test_psi_formula(rng, k, with_zeros):
    r, c = _counts(rng, k, with_zeros)
    p, q = _props(r, c)
    p, q = np.where(p == 0, EPS, p), np.where(q == 0, EPS, q)
    res = psi(r, c)
    np.testing.assert_allclose(res.statistic, np.sum((q - p) * np.log(q / p)), rtol=1e-12)
    assert res.pvalue is None and res.method == "psi" and res.details["kind"] == "divergence"
    np.testing.assert_allclose(psi(c, r).statistic, res.statistic, rtol=1e-12)


@cases
def test_kl_matches_scipy_entropy(rng, k, with_zeros):
    r, c = _counts(rng, k, with_zeros)
    p, q = _props(r, c)
    p, q = np.where(p == 0, EPS, p), np.where(q == 0, EPS, q)
    for base in (None, 2):
        res = kl_divergence(r, c, base=base)
        np.testing.assert_allclose(res.statistic, st.entropy(p, q, base=base), rtol=1e-12)
    assert kl_divergence(r, c).details["kind"] == "divergence"


@cases
def test_jensenshannon_matches_scipy(rng, k, with_zeros):
    r, c = _counts(rng, k, with_zeros)
    for base in (None, 2, 10):
        res = jensenshannon(r, c, base=base)
        np.testing.assert_allclose(res.statistic, scipy_js(r, c, base=base), rtol=1e-12)
    assert res.details["kind"] == "distance"


@cases
def test_hellinger_and_tvd_formulas(rng, k, with_zeros):
    r, c = _counts(rng, k, with_zeros)
    p, q = _props(r, c)
    np.testing.assert_allclose(hellinger(r, c).statistic, np.sqrt(max(1.0 - np.sum(np.sqrt(p * q)), 0.0)), rtol=1e-6)
    np.testing.assert_allclose(tvd(r, c).statistic, 0.5 * np.abs(p - q).sum(), rtol=1e-12)
    assert 0.0 <= hellinger(r, c).statistic <= 1.0 and 0.0 <= tvd(r, c).statistic <= 1.0


@pytest.mark.parametrize("func", [psi, kl_divergence, jensenshannon, hellinger, tvd])
def test_identical_distributions_are_at_zero(func):
    assert func([3, 0, 7], [30, 0, 70]).statistic == pytest.approx(0.0, abs=1e-15)


def test_disjoint_supports_hit_the_maximum():
    assert hellinger([1, 0], [0, 1]).statistic == pytest.approx(1.0)
    assert tvd([1, 0], [0, 1]).statistic == pytest.approx(1.0)
    assert jensenshannon([1, 0], [0, 1], base=2).statistic == pytest.approx(1.0)


def test_eps_is_reported_and_configurable():
    a = psi([10, 0], [5, 5])
    b = psi([10, 0], [5, 5], eps=1e-6)
    assert a.details["eps"] == 1e-4 and b.statistic > a.statistic


@pytest.mark.parametrize("func", [psi, kl_divergence, jensenshannon, hellinger, tvd])
@pytest.mark.parametrize(
    "ref,cur,exc,message",
    [
        ([1, 2, 3], [1, 2], SchemaError, "aligned"),
        ([1, -1], [1, 2], ValueError, "non-negative"),
        ([1, np.inf], [1, 2], ValueError, "finite"),
        ([0, 0], [1, 2], EmptyInputError, "total count of 0"),
        ([[1, 2]], [[1, 2]], SchemaError, "1-D"),
        (["a", "b"], [1, 2], ValueError, "real numbers"),
    ],
)
def test_bad_counts(func, ref, cur, exc, message):
    with pytest.raises(exc, match=message):
        func(ref, cur)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: psi([1, 2], [1, 2], eps=0), "Invalid value for eps: 0"),
        (lambda: kl_divergence([1, 2], [1, 2], eps="x"), "Invalid value for eps: 'x'"),
        (lambda: kl_divergence([1, 2], [1, 2], base=1), "Invalid value for base: 1"),
        (lambda: jensenshannon([1, 2], [1, 2], base=-2), "Invalid value for base: -2"),
    ],
)
def test_bad_options(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("k", [2, 4, 15])
def test_value_counts_are_aligned_on_their_labels(rng, k):
    pd = pytest.importorskip("pandas")
    cats = np.array([f"c{i}" for i in range(k)])
    ref = rng.choice(cats, size=int(rng.integers(300, 3000)), p=rng.dirichlet(np.ones(k)))
    cur = rng.choice(cats[: max(2, k - 1)], size=int(rng.integers(300, 3000)), p=None)
    rs, cs_ = pd.Series(ref).value_counts(), pd.Series(cur).value_counts()
    r = np.array([np.count_nonzero(ref == v) for v in cats], float)  # written out on the common labels
    c = np.array([np.count_nonzero(cur == v) for v in cats], float)
    p, q = _props(r, c)
    np.testing.assert_allclose(jensenshannon(rs, cs_).statistic, scipy_js(p, q), rtol=1e-9)
    np.testing.assert_allclose(tvd(rs, cs_).statistic, 0.5 * np.abs(p - q).sum(), rtol=1e-12)
    np.testing.assert_allclose(hellinger(rs, cs_).statistic, np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()),
                               rtol=1e-12)
    pe, qe = np.where(p == 0, EPS, p), np.where(q == 0, EPS, q)
    np.testing.assert_allclose(psi(rs, cs_).statistic, np.sum((qe - pe) * np.log(qe / pe)), rtol=1e-12)
    np.testing.assert_allclose(kl_divergence(rs, cs_).statistic, st.entropy(pe / pe.sum(), qe / qe.sum()), rtol=1e-12)
    assert psi(rs, cs_).details["n_bins"] == k


def _js_exact(r, c, base=None):
    """Jensen-Shannon distance at 80 digits (decimal), from the integer counts; 0 for a rounding error."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 80
        R, C = sum(Decimal(int(v)) for v in r), sum(Decimal(int(v)) for v in c)
        js = Decimal(0)
        for a, b in zip(r, c):
            p, q = Decimal(int(a)) / R, Decimal(int(b)) / C
            m = (p + q) / 2
            js += (p * (p / m).ln() if p else 0) + (q * (q / m).ln() if q else 0)
        js /= 2
        if base is not None:
            js /= Decimal(base).ln()
        return 0.0 if abs(js) < Decimal("1e-70") else float(js.sqrt())


@pytest.mark.parametrize("scale", [10**3, 10**6, 10**9, 10**13])
def test_jensenshannon_of_nearly_equal_counts_is_accurate(rng, scale):
    # the divergence is ~1/scale**2: summed as scipy sums it, it cancels to a tiny negative (NaN) or to 0
    assert _js_exact([891929, 876341], [891930, 876342]) == pytest.approx(3.5252881874952e-9, rel=1e-12)
    np.testing.assert_allclose(jensenshannon([891929, 876341], [891930, 876342]).statistic, 3.5252881874952197e-09,
                               rtol=1e-14)
    for _ in range(40):
        k = int(rng.integers(2, 12))
        r = rng.integers(scale, 2 * scale, k)
        c = r * int(rng.integers(1, 4)) + rng.integers(-2, 3, k)
        for base in (None, 2):
            res = jensenshannon(r.astype(float), c.astype(float), base=base)
            np.testing.assert_allclose(res.statistic, _js_exact(r, c, base), rtol=1e-13)
    r = rng.integers(0, 20, 7)
    c = rng.integers(0, 20, 7)
    r[0], c[1] = 0, 0
    np.testing.assert_allclose(jensenshannon(r, c).statistic, _js_exact(r, c), rtol=1e-13)
    assert jensenshannon([5, 0], [0, 3]).statistic == pytest.approx(np.sqrt(np.log(2)), rel=1e-15)
