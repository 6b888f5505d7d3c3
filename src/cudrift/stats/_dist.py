"""Null distributions of the rank statistics, shared by the raw-array and sketch paths.

Each function reproduces the p-value SciPy 1.17 attaches to a statistic, using
SciPy's public distribution and special functions. The one place we compute
a value ourselves instead of calling SciPy is the large-sample Smirnov tail
(:func:`_smirnov_sf_sum`), because ``scipy.special.smirnov`` evaluates its
series term by term in double-double arithmetic and takes about 1.5 us per
sample (0.8 s for a 10^6 x 10^6 comparison); the vectorized series below
agrees with it to ~1e-12 relative and is tested against it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special
from scipy.stats import distributions

from cudrift.sketches._common import dot

__all__ = [
    "ks_asymp_pvalue",
    "kstwo_sf",
    "kstwo_sf_many",
    "ks_asymp_pvalues",
    "cvm_asymptotic_pvalue",
    "cdf_cvm_inf",
    "sf_cvm_inf",
    "anderson_2samp_normalize",
    "anderson_pvalue",
]

# xsf cephes MINLOG = log(2**-1075): below exp(MINLOG) a double underflows; smirnov() returns 0 there.
_MINLOG = -7.451332191019412076235e2
# scipy.special.smirnov switches to an approximation above this n.
_SMIRNOV_MAX_COMPUTE_N = 1_000_000


def _stirlerr(k: np.ndarray) -> np.ndarray:
    """``log(k!) - (k log k - k + log(2 pi k) / 2)`` for integers ``k >= 1``.

    Small ``k`` uses lgamma directly (the difference is of modest numbers);
    large ``k`` uses the Stirling series, which avoids subtracting two
    numbers of size ``k log k`` and losing ~1e-9 of absolute accuracy.
    """
    k = np.asarray(k, dtype=np.float64)
    out = np.empty_like(k)
    small = k < 16
    ks = k[small]
    out[small] = special.gammaln(ks + 1) - (ks * np.log(ks) - ks + 0.5 * np.log(2 * np.pi * ks))
    kl = k[~small]
    inv = 1.0 / kl
    inv2 = inv * inv
    out[~small] = inv * (
        1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 * (1 / 1188))))
    )
    return out


def _smirnov_sf_sum(n: int, x: float) -> float:
    """One-sided Smirnov tail ``P(D+_n >= x)`` by the Birnbaum-Tingey series.

    ``x * sum_{v=0}^{V} C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1)`` with
    ``V = ceil(n (1 - x)) - 1`` (the term with a zero base is excluded, as in
    SciPy). Each term's logarithm is assembled from pieces of size ~n*x
    instead of ~n*log(n) so that its absolute error stays near 1e-13:
    ``log C(n, v) = n H(v/n) - log(2 pi v (n-v) / n) / 2 + stirlerr terms`` and
    the entropy part cancels analytically against the two powers.
    Valid for ``2 <= n x < n - 1``; used only where SciPy itself sums the series.
    """
    nxfl = math.floor(n * x)
    alpha = n * x - nxfl
    v_max = n - nxfl - 1 if alpha != 0 else n - nxfl - 1
    v = np.arange(1, v_max + 1, dtype=np.float64)
    nf = float(n)
    logs = np.empty(v.size + 1)
    # v = 0: (1 - x)^n / x
    logs[0] = nf * math.log1p(-x) - math.log(x)
    nv = nf - v
    logs[1:] = (
        0.5 * np.log(nf / (2 * np.pi * v * nv))
        + _stirlerr(np.array([nf]))[0]
        - _stirlerr(v)
        - _stirlerr(nv)
        + nv * np.log1p(-x * nf / nv)
        + v * np.log1p(x * nf / v)
        - np.log(x + v / nf)
    )
    top = float(np.max(logs))
    total = float(np.sum(np.exp(logs - top)))
    prob = x * math.exp(top + math.log(total))
    return min(max(prob, 0.0), 1.0)


def kstwo_sf(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``, with the slow large-n Smirnov branch vectorized.

    SciPy's ``kolmogn`` evaluates the two-sided tail as ``2 * smirnov(n, d)``
    when ``n > 140`` and ``2.2 <= n d^2 < 370``; that is the only branch
    replaced here, the rest is a direct call.
    """
    d = float(d)
    n_int = int(n)
    if _smirnov_branch(d, n_int):
        return _smirnov_twice(d, n_int)
    return float(distributions.kstwo.sf(d, n_int))


def _smirnov_twice(d: float, n_int: int) -> float:
    """``2 * smirnov(n, d)``, clipped to [0, 1]: the value of the branch :func:`_smirnov_branch` selects."""
    if float(-2 * n_int) * d * d < _MINLOG:
        return 0.0
    return min(max(2.0 * _smirnov_sf_sum(n_int, d), 0.0), 1.0)


def _smirnov_branch(d: float, n_int: int) -> bool:
    """Whether SciPy's ``kolmogn`` takes its ``2 * smirnov(n, d)`` branch (the one :func:`kstwo_sf` replaces)."""
    t = n_int * d
    return 140 < n_int <= _SMIRNOV_MAX_COMPUTE_N and 0.0 < d < 0.5 and 1.0 < t < n_int - 1 and 2.2 <= t * d < 370.0


def kstwo_sf_many(d, n) -> np.ndarray:
    """:func:`kstwo_sf` of many ``(d, n)`` at once, equal to it element by element.

    The entries off the replaced branch go to SciPy in one vectorized
    ``kstwo.sf`` call: one call's overhead (about 0.1 ms) instead of one per
    column, which is most of what finishing a batch of device KS tests costs.
    """
    d = np.asarray(d, dtype=np.float64).ravel()
    n = np.asarray(n, dtype=np.int64).ravel()
    out = np.empty(d.size)
    rest = []
    for i, (di, ni) in enumerate(zip(d.tolist(), n.tolist())):
        if _smirnov_branch(di, ni):
            out[i] = _smirnov_twice(di, ni)
        else:
            rest.append(i)
    if rest:
        out[rest] = np.asarray(distributions.kstwo.sf(d[rest], n[rest]), dtype=np.float64)
    return out


def ks_asymp_pvalues(d, n1, n2) -> np.ndarray:
    """Two-sided :func:`ks_asymp_pvalue` of many statistics and sample sizes at once (equal element by element)."""
    n1 = np.asarray(n1, dtype=np.float64)
    n2 = np.asarray(n2, dtype=np.float64)
    m, n = np.maximum(n1, n2), np.minimum(n1, n2)
    en = np.round(m * n / (m + n)).astype(np.int64)
    return np.clip(kstwo_sf_many(d, en), 0, 1)


def ks_asymp_pvalue(d: float, n1: int, n2: int, alternative: str) -> float:
    """SciPy's ``ks_2samp(..., method='asymp')`` p-value for statistic ``d``."""
    if alternative == "two-sided":
        return float(ks_asymp_pvalues([d], [n1], [n2])[0])
    m, n = sorted([float(n1), float(n2)], reverse=True)
    z = np.sqrt(m * n / (m + n)) * d
    # Hodges' approximation (eq. 5.3); m must be the larger sample size
    expt = -2 * z**2 - 2 * z * (m + 2 * n) / np.sqrt(m * n * (m + n)) / 3.0
    return float(np.clip(np.exp(expt), 0, 1))


def cdf_cvm_inf(x: float) -> float:
    """Limiting CDF of the Cramer-von Mises statistic (Csorgo & Faraway 1996, eq. 1.2).

    Same series and stopping rule as SciPy's private ``_cdf_cvm_inf``, built
    from the public ``scipy.special.kv`` and ``gammaln``.
    """
    tot = 0.0
    k = 0
    while True:
        u = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (np.pi**1.5 * np.sqrt(x))
        y = 4 * k + 1
        q = y**2 / (16 * x)
        z = u * math.sqrt(y) * np.exp(-q) * special.kv(0.25, q)
        tot = tot + z
        if not abs(z) >= 1e-7:
            break
        k += 1
    return float(tot)


#: Gauss-Legendre nodes and weights on [0, 1] for the integrals of :func:`sf_cvm_inf` (32 give ~1e-15).
_GL_NODES, _GL_WEIGHTS = (lambda x, w: ((x + 1.0) / 2.0, w / 2.0))(*np.polynomial.legendre.leggauss(32))
#: The integrand of :func:`sf_cvm_inf` is cut where it falls below exp(-_SF_CUT) of its largest value.
_SF_CUT = 50.0
#: From this normalized statistic on, the p-value is :func:`sf_cvm_inf` (the limiting sf there is 0.496).
CVM_TAIL_FROM = 0.12


def sf_cvm_inf(x: float) -> float:
    """Limiting survival function of the Cramer-von Mises statistic, to ~1e-14 relative down to 1e-308.

    Smirnov's (1936) formula, as Anderson & Darling (1952, eq. 4.4) give it::

        P(W > x) = 1/pi sum_{k>=1} (-1)^(k+1) int_{(2k-1)pi}^{2k pi} sqrt(-u / sin u) exp(-x u^2 / 2) 2/u du

    Each integral is positive, the first dominates (the k-th is about
    ``exp(-x ((2k-1)^2 - 1) pi^2 / 2)`` of it), so the sum does not cancel,
    unlike ``1 - cdf``. With ``u = (2k-1) pi + e``, ``e = pi sin^2(theta/2)``,
    the endpoint singularities cancel and the integrand in ``theta`` is
    smooth; it is integrated by 32-point Gauss-Legendre over the range where
    it exceeds ``exp(-50)`` of its value at ``u = (2k-1) pi``.
    """
    if not x > 0:
        return 1.0
    total = 0.0
    k = 1
    while True:
        a = (2 * k - 1) * math.pi
        if k > 1 and x * (a * a - math.pi**2) / 2 > _SF_CUT:
            break
        # exp(-x e (2a + e) / 2) = exp(-_SF_CUT) at e = e_max (the root, written without cancellation)
        w = 2.0 * _SF_CUT / x
        e_max = w / (a + math.sqrt(a * a + w))
        theta_max = math.pi if e_max >= math.pi else 2.0 * math.asin(math.sqrt(e_max / math.pi))
        theta = _GL_NODES * theta_max
        s2, c2 = np.sin(theta / 2) ** 2, np.cos(theta / 2) ** 2
        e = math.pi * s2
        # (u - a)(b - u) / (-sin u) = e (pi - e) / sin(e), sin taken of the nearer end (accurate at both)
        r = math.pi**2 * s2 * c2 / np.sin(math.pi * np.minimum(s2, c2))
        f = 2.0 * np.sqrt(r / (a + e)) * np.exp(-x * e * (2 * a + e) / 2)
        term = math.exp(-x * a * a / 2) * theta_max * dot(_GL_WEIGHTS, f)
        total += term if k % 2 else -term
        k += 1
    return min(max(total / math.pi, 0.0), 1.0)


def cvm_asymptotic_pvalue(t: float, nx: int, ny: int) -> float:
    """SciPy's ``cramervonmises_2samp(..., method='asymptotic')`` p-value, accurate in the tail.

    SciPy's p-value is ``1 - cdf`` of the limiting distribution: below 0.5
    that subtraction loses the digits the p-value has, and the series, which
    stops at terms below 1e-7, converges slowly for large statistics; its
    p-values grow again in the far tail (3.1e-7 for two fully separated
    samples of 10,000; 1.3e-4 for T = 1e8). From a normalized statistic of
    :data:`CVM_TAIL_FROM` on (p-values below 0.496) the p-value is the
    survival function itself (:func:`sf_cvm_inf`), monotone and accurate to
    ~1e-14 relative; below it, SciPy's value (accurate to ~2e-15 there).
    """
    k, N = nx * ny, nx + ny
    # expected value and variance of T (eqs. 11 and 14 in Anderson 1962)
    et = (1 + 1 / N) / 6
    vt = (N + 1) * (4 * k * N - 3 * (nx**2 + ny**2) - 2 * k)
    vt = vt / (45 * N**2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    # below 0.003 the limiting CDF is < 1.3e-18, so SciPy returns 1 directly
    if not tn >= 0.003:
        return 1.0
    if tn >= CVM_TAIL_FROM:
        return sf_cvm_inf(tn) if math.isfinite(tn) else 0.0
    return float(max(1.0 - cdf_cvm_inf(tn), 0.0))


# Table 2 of Scholz & Stephens (1987), interpolation coefficients of the
# critical values; with two samples m = k - 1 = 1.
_AD_B0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
_AD_B1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
_AD_B2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
_AD_SIG = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_AD_CRITICAL = _AD_B0 + _AD_B1 / math.sqrt(1) + _AD_B2 / 1
_AD_POLY = np.polyfit(_AD_CRITICAL, np.log(_AD_SIG), 2)


#: Pooled sizes up to which the Anderson-Darling variance's harmonic sums are added up as SciPy adds them.
_AD_SUM_MAX = 1 << 20


def _ad_harmonic_sums(N: int) -> tuple[float, float]:
    """Scholz & Stephens' ``h = sum_{i=1}^{N-1} 1/i`` and ``g = sum_{i=1}^{N-2} sum_{j=i+1}^{N-1} 1/((N-i) j)``.

    Up to :data:`_AD_SUM_MAX` they are added up as SciPy adds them (the same
    float value); past it, in closed form, ``h = H(N-1)`` and
    ``g = H2(N) - 2 H(N-1) / N - 1 / N**2`` (``H2`` the harmonic numbers of order
    2), from digamma and trigamma: SciPy's sums allocate ``N`` float64 values,
    23 GB for a profile of 1e9 rows. The two agree to 1e-14 relative where
    both run.
    """
    if N <= _AD_SUM_MAX:
        hs_cs = (1.0 / np.arange(N - 1, 1, -1)).cumsum()
        return float(hs_cs[-1] + 1), float((hs_cs / np.arange(2, N)).sum())
    h = float(special.digamma(N) + np.euler_gamma)  # H(N - 1)
    g = float(math.pi**2 / 6 - special.polygamma(1, N + 1)) - 2.0 * h / N - 1.0 / N**2
    return h, g


def anderson_2samp_normalize(a2kn: float, n1: int, n2: int) -> float:
    """Standardize ``A2akN`` to SciPy's ``statistic`` (Scholz & Stephens, eq. 4)."""
    k = 2
    n = np.array([n1, n2])
    N = n1 + n2
    H = (1.0 / n).sum()
    h, g = _ad_harmonic_sums(N)
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    sigmasq = (a * N**3 + b * N**2 + c * N + d) / ((N - 1.0) * (N - 2.0) * (N - 3.0))
    m = k - 1
    return float((a2kn - m) / math.sqrt(sigmasq))


def anderson_pvalue(a2: float) -> tuple[float, bool]:
    """SciPy's interpolated ``anderson_ksamp`` p-value and whether it was clipped.

    Outside the tabulated critical values SciPy floors the p-value at 0.001
    or caps it at 0.25 (and warns); we return the same number and report the
    clipping as a flag instead of a warning.
    """
    if a2 < _AD_CRITICAL.min():
        return float(_AD_SIG.max()), True
    if a2 > _AD_CRITICAL.max():
        return float(_AD_SIG.min()), True
    return float(math.exp(np.polyval(_AD_POLY, a2))), False


def anderson_critical_values() -> np.ndarray:
    """Critical values for significance levels 25%, 10%, 5%, 2.5%, 1%, 0.5%, 0.1%."""
    return _AD_CRITICAL.copy()
