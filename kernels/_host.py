"""Host-side finishing steps for the kernels' per-block outputs, in plain NumPy.

Kernels write small partial results (per-block moments, per-block rank
sums, rank-spaced points); these functions turn them, once copied to the
host, into what the CPU sketches and statistics hold. They import NumPy
only, so they run and are tested anywhere.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "float32_edges",
    "nearest_float_edges",
    "merge_block_moments",
    "moments_need_sorted",
    "MOMENT_BUDGET",
    "PointSummary",
    "summary_from_points",
    "summary_from_run_ends",
    "RankStatistics",
    "rank_statistics",
    "WANT_KS",
    "WANT_DISTANCES",
    "WANT_CVM",
    "WANT_AD",
    "WANT_ALL",
    "mmd_pvalue",
]


def float32_edges(edges) -> np.ndarray:
    """Float64 ``edges`` rounded up to float32: the comparison edges of float32 values.

    For every float32 ``v`` and float64 ``e``, ``v < e`` exactly when
    ``v < r`` with ``r`` the smallest float32 ``>= e`` (an ``e`` between two
    float32 neighbours lies above every float32 ``v`` that the lower one
    bounds). So a float32 value binned against these edges in float32 lands
    in the same bin as against the float64 edges, with comparisons and
    edge loads at half the width; edges past float32's range become ``inf``
    or the most negative float32, which bound float32 values the same way.
    Distinct edges may round to the same float32: the bin between them is
    then empty for float32 values, as it is against the float64 edges.

    Examples
    --------
    >>> r = float32_edges(np.array([0.1, 1.0, 1e300, -1e300]))
    >>> r.dtype, bool(r[0] >= 0.1), float(r[1]), float(r[2]), bool(r[3] == -np.finfo(np.float32).max)
    (dtype('float32'), True, 1.0, inf, True)
    """
    e = np.asarray(edges, dtype=np.float64)
    with np.errstate(over="ignore"):  # past float32's range is inf, as wanted
        r = e.astype(np.float32)
        below = r.astype(np.float64) < e
        r[below] = np.nextafter(r[below], np.float32(np.inf))
    return r


def nearest_float_edges(edges, dtype=np.float32) -> np.ndarray:
    """Float64 ``edges`` rounded to the nearest ``dtype`` (float32 or float16), as float64: the edges values of
    that type are binned on.

    A float32 value stands for every real that rounds to it, so it is
    binned at its own precision: ``v`` lies in ``[e_i, e_i+1)`` when
    ``fl32(e_i) <= v < fl32(e_i+1)``. A float32 window's 0.7 (0.69999999)
    is then in the bin a float64 reference's 0.7 opened, where against the
    exact edge it fell in the bin below (every atom of a rounded feature
    whose float32 lies under it moved a bin: PSI 0.63 on identical data).
    float16 values (profiled as float32) likewise on edges rounded to float16.
    Edges past the type's range become ``inf``, or its most negative value
    (as :func:`float32_edges` makes them), which bound its values as the
    float64 edges do. Distinct edges may round to one value: the bin
    between them is then empty for values of the type. :func:`float32_edges`
    of the result is the result itself, in float32.

    Examples
    --------
    >>> e = nearest_float_edges(np.array([-1e300, 0.7, 1.0, 1e300]))
    >>> bool(e[0] == -np.finfo(np.float32).max), bool(e[1] == np.float32(0.7)), float(e[2]), float(e[3])
    (True, True, 1.0, inf)
    >>> float(nearest_float_edges(np.array([0.1, 1e5]), np.float16)[1])
    inf
    """
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore"):  # past the type's range is inf, as wanted
        r = np.asarray(edges, dtype=np.float64).astype(dtype)
    r[r == -np.inf] = -np.finfo(dtype).max
    return r.astype(np.float64)


#: Magnitude from which the profile kernels take a value into the moments by the overflow-safe Welford step
#: (its squared differences could overflow), and below which a value can be their origin (``moment_shift``).
MOMENT_HUGE = 1e150


def moment_shifts(first_rows) -> np.ndarray:
    """The origins the profile kernels accumulate each column's moments from (``moment_shift``): per column,
    the first value of ``first_rows`` that is finite and below 1e150 in magnitude, as float64, else 0. Add
    them to the means that :func:`merge_block_moments` returns.

    ``first_rows`` is the launch's chunk's first ``SHIFT_ROWS`` rows (or
    fewer) on the host, ``(rows, columns)``: float32 values as they are
    (float32 to float64 is exact), integers and booleans as float64, as the
    kernels convert them.

    Examples
    --------
    >>> moment_shifts(np.array([[1e12, np.nan, -np.inf, 3e200, 7], [5, 2, 3e200, np.nan, 8]])).tolist()
    [1000000000000.0, 2.0, 0.0, 0.0, 7.0]
    """
    s = np.asarray(first_rows).astype(np.float64)
    s = s.reshape(s.shape[0] if s.ndim > 1 else 1, -1)
    with np.errstate(invalid="ignore"):
        ok = np.abs(s) < MOMENT_HUGE
    first = np.argmax(ok, axis=0)
    cols = np.arange(s.shape[1])
    return np.where(ok[first, cols], s[first, cols], 0.0)


#: Relative error of M2 that the profile kernels' moment sums may carry before :func:`moments_need_sorted` has
#: the caller take the moments again (the contract with the NumPy path is 1e-9).
MOMENT_BUDGET = 1e-10


def moments_need_sorted(mean: float, shift: float, m2: float, count: int, run: int) -> bool:
    """Whether a column's moments from the profile kernels may be off by more than :data:`MOMENT_BUDGET`, so
    that the caller takes them again from its sorted values.

    Each thread sums ``v - shift`` and its square over up to ``run`` values
    (the kernels' one run of sums per thread; ``run`` is what
    :func:`cudrift.kernels.profile.launch_profile` returns), and M2 is the
    difference ``s2 - s1**2 / n``. Its relative error is then bounded by
    about ``eps * run * (1 + k**2) / 4``, ``k`` the distance of the origin
    ``shift`` from the mean in standard deviations: the squares' sum carries
    ``(1 + k**2)`` times M2, and each addition rounds at the partial sum's
    ulp. On continuous data the roundings mostly cancel; on discrete data
    (prices in steps of 0.1, ratings) the same few squares are added over
    and over and they do not: 20 + 0.1 * {0, 1, 2} behind a first row 85
    standard deviations out, 40,000 values a thread, had M2 6.8e-9 off. The
    origin is a column's first usable row, so ``k`` is small unless that row
    is an outlier, the case this catches.

    Examples
    --------
    >>> moments_need_sorted(20.1, 20.0, 0.0067 * 1e6, 10**6, 4000)   # origin 1.2 sd out
    False
    >>> moments_need_sorted(20.1, 27.0, 0.0067 * 1e6, 10**6, 40000)  # 85 sd out, long runs
    True
    >>> moments_need_sorted(20.1, 27.0, 0.0067 * 1e6, 10**6, 3)      # 85 sd out, runs of 3
    False
    """
    if count <= 0:
        return False
    if not m2 >= 0:
        return True  # NaN or overflowed: the sorted values rescale
    room = 4.0 * MOMENT_BUDGET / (np.finfo(np.float64).eps * max(int(run), 1)) - 1.0  # the (1 + k**2) allowed, less 1
    if room <= 0.0:
        return True
    # k**2 <= room, compared without squaring (Python floats raise OverflowError past 1e154; inf <= inf holds)
    return not abs(mean - shift) <= math.sqrt(room) * math.sqrt(m2 / count)


def merge_block_moments(counts, means, m2s) -> tuple:
    """Fold per-block (count, mean, M2) into one per column with Chan's formula.

    Parameters
    ----------
    counts, means, m2s
        ``(blocks,)`` or ``(columns, blocks)`` arrays as written by
        :func:`cudrift.kernels.profile.profile_kernel`; blocks with count 0
        are skipped.

    Returns
    -------
    tuple
        ``(count, mean, m2)``: int64, float64, float64 arrays of one entry per
        column (scalars for 1-D input). An empty column has mean NaN and M2
        0.0, as ``Moments.empty()``.

    Notes
    -----
    Adjacent blocks are merged pairwise, level by level (a tree of depth
    ``log2(blocks)``), each merge being the kernels' ``chan_combine`` (the
    mean moves from the first side, so equal means stay equal), all
    columns and pairs of a level in one vectorized step: a grid of a
    thousand blocks costs ten NumPy steps instead of a thousand, and the
    pairwise order rounds no worse than a left-to-right fold.

    Examples
    --------
    >>> merge_block_moments([2, 0, 1], [1.5, 0.0, 4.0], [0.5, 0.0, 0.0])
    (3, 2.333333333333333, 4.666666666666666)
    """
    c = np.asarray(counts, dtype=np.int64)
    mu = np.asarray(means, dtype=np.float64)
    q = np.asarray(m2s, dtype=np.float64)
    one = c.ndim == 1
    if one:
        c, mu, q = c[None, :], mu[None, :], q[None, :]
    # Empty blocks: count 0 and mean NaN, so that a column left empty ends as Moments.empty().
    mu = np.where(c > 0, mu, np.nan)
    q = np.where(c > 0, q, 0.0)
    if c.shape[1] == 0:
        c, mu, q = (np.zeros((c.shape[0], 1), dtype=np.int64), np.full((c.shape[0], 1), np.nan),
                    np.zeros((c.shape[0], 1)))
    while c.shape[1] > 1:
        if c.shape[1] % 2:
            c = np.concatenate((c, np.zeros((c.shape[0], 1), dtype=np.int64)), axis=1)
            mu = np.concatenate((mu, np.full((mu.shape[0], 1), np.nan)), axis=1)
            q = np.concatenate((q, np.zeros((q.shape[0], 1))), axis=1)
        na, nb = c[:, 0::2], c[:, 1::2]
        ma, mb = mu[:, 0::2], mu[:, 1::2]
        qa, qb = q[:, 0::2], q[:, 1::2]
        both = (na > 0) & (nb > 0)
        tot = np.where(both, na + nb, 1)
        with np.errstate(over="ignore", invalid="ignore"):
            fa, fb = na / tot, nb / tot
            delta = mb - ma
            # as the kernels' chan_combine: equal means stay equal
            merged_mean = np.where(np.isinf(delta), ma * fa + mb * fb, ma + delta * fb)
            merged_m2 = (qa + qb) + delta * delta * (na.astype(np.float64) * nb / tot)
        mu = np.where(both, merged_mean, np.where(na > 0, ma, mb))
        q = np.where(both, merged_m2, np.where(na > 0, qa, qb))
        c = na + nb
    n, mean, m2 = c[:, 0], mu[:, 0], q[:, 0]
    if one:
        return int(n[0]), float(mean[0]), float(m2[0])
    return n, mean, m2


class PointSummary(NamedTuple):
    """A level-0 quantile summary built from rank-spaced points.

    Attributes
    ----------
    values
        Distinct kept values (float64, -0.0 stored as +0.0).
    lo, hi
        ``lo[i] = #{x <= values[i]}``, ``hi[i] = #{x < values[i+1]}`` and
        ``hi[-1] = n`` (int64).
    exact
        ``hi == lo``: no value lies between two kept points.
    """

    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    exact: bool


def summary_from_points(values, count_lt, count_le, n: int) -> PointSummary:
    """Summary of a sorted batch of ``n`` values from its ``k + 1`` rank-spaced points.

    Parameters
    ----------
    values, count_lt, count_le
        Outputs of :func:`cudrift.kernels.quantiles.launch_quantile_points`.
    n
        Batch size (``> k + 1``; smaller batches are summarized exactly with
        :func:`summary_from_run_ends`).

    Returns
    -------
    PointSummary
        Points whose value repeats the previous one are dropped.

    Notes
    -----
    ``QuantileSketch`` keeps this summary when it is exact or when more than
    ``k`` distinct points remain. Otherwise (repeated points hint at low
    cardinality) it counts the batch's distinct values, which
    :func:`cudrift.kernels.quantiles.launch_run_ends` does with capacity
    ``k + 1``: at most ``k + 1`` runs means :func:`summary_from_run_ends`
    replaces this summary.

    Examples
    --------
    >>> s = summary_from_points([0.0, 1.0, 1.0, 5.0], [0, 2, 2, 9], [1, 8, 8, 10], 10)
    >>> s.values.tolist(), s.lo.tolist(), s.hi.tolist(), s.exact
    ([0.0, 1.0, 5.0], [1, 8, 10], [2, 9, 10], False)
    """
    v = np.asarray(values, dtype=np.float64)
    lt = np.asarray(count_lt, dtype=np.int64)
    le = np.asarray(count_le, dtype=np.int64)
    keep = np.r_[True, v[1:] != v[:-1]]
    v, lt, le = v[keep], lt[keep], le[keep]
    hi = np.empty_like(le)
    hi[:-1] = lt[1:]
    hi[-1] = n
    # Adding 0.0 maps -0.0 to +0.0, as the CPU summary stores it.
    return PointSummary(v + 0.0, le, hi, bool(np.array_equal(hi, le)))


def summary_from_run_ends(ends, end_values, n_runs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact summary of a sorted batch from the ends of its runs of equal values.

    Parameters
    ----------
    ends, end_values, n_runs
        Outputs of :func:`cudrift.kernels.quantiles.launch_run_ends` (in any order).

    Returns
    -------
    tuple of numpy.ndarray
        ``(values, lo, hi)`` with ``lo == hi`` the counts ``<=`` of each
        distinct value.

    Raises
    ------
    ValueError
        If more runs were found than ``ends`` could hold.

    Examples
    --------
    >>> summary_from_run_ends([4, 1], [7.0, 3.0], 2)[1].tolist()
    [2, 5]
    """
    e = np.asarray(ends, dtype=np.int64)
    n_runs = int(n_runs)
    if n_runs > e.size:
        raise ValueError(f"Invalid value for n_runs: {n_runs} runs do not fit {e.size} slots")
    order = np.argsort(e[:n_runs], kind="stable")
    counts = e[:n_runs][order] + 1
    values = np.asarray(end_values, dtype=np.float64)[:n_runs][order] + 0.0
    return values, counts, counts.copy()


# Bits of the rank kernel's ``want`` argument: which statistics to accumulate.
# The KS extremes are always kept (they cost two integer products per
# value); the others cost float64 work per distinct value, the
# Anderson-Darling term a division, and Cramér-von Mises and
# Anderson-Darling need the counts below each run (a search where a run
# crosses a thread's start).
#
# They are defined here and not in rank.py because the host reads them too
# (rank_statistics below NaNs what was not asked for, and
# cudrift.backends._gpu_host picks the bits each test needs) and this
# module imports without Numba, which rank.py needs.

#: A KS-only request. The kernel never reads this bit (it keeps the KS
#: extremes whatever ``want`` says); it names a launch that asks for the KS
#: statistic and nothing else.
WANT_KS = 1
#: Wasserstein-1 and energy integrals.
WANT_DISTANCES = 2
#: Cramér-von Mises sums.
WANT_CVM = 4
#: Anderson-Darling sum.
WANT_AD = 8
WANT_ALL = WANT_KS | WANT_DISTANCES | WANT_CVM | WANT_AD


class RankStatistics(NamedTuple):
    """Two-sample rank statistics of a reference and a current sample, as the rank kernel computed them.

    Attributes
    ----------
    ks_plus, ks_minus
        ``max(A/m - B/n)`` and ``max(B/n - A/m)`` (SciPy's ``greater`` / ``less``).
    ks
        Two-sided KS statistic (``ks_plus`` on a tie, as SciPy).
    wasserstein
        ``scipy.stats.wasserstein_distance``.
    energy
        ``scipy.stats.energy_distance`` (``sqrt(2 integral (F_a - F_b)^2)``).
    cramervonmises
        ``scipy.stats.cramervonmises_2samp`` statistic ``T``.
    anderson_a2kn
        SciPy's midrank ``A2akN`` (normalize with the ``anderson_ksamp`` formula).
    ks_counts
        ``(A, B)``, the counts of reference and current values ``<= x`` at a
        point ``x`` where ``ks`` is attained (the statistic's location is the
        larger of ``a[A - 1]`` and ``b[B - 1]``); ``(0, 0)`` when unknown.

    Statistics that were not computed (see ``want`` of
    :func:`rank_statistics`) are NaN.
    """

    ks_plus: float
    ks_minus: float
    ks: float
    wasserstein: float
    energy: float
    cramervonmises: float
    anderson_a2kn: float
    ks_counts: tuple = (0, 0)


def rank_statistics(fpart, ipart, n_a: int, n_b: int, want: int = WANT_ALL) -> RankStatistics:
    """Finish the rank statistics from :func:`cudrift.kernels.rank.launch_rank`'s per-block outputs.

    Parameters
    ----------
    fpart, ipart
        ``(blocks, 5)`` float64 and ``(blocks, 6)`` int64 partials.
    n_a, n_b
        Reference and current sample sizes.
    want
        The ``want`` bits the kernel ran with; statistics outside them are NaN.

    Returns
    -------
    RankStatistics
        The KS value is formed as SciPy forms it, ``A/m - B/n`` at the extreme
        integer key; Cramér–von Mises as ``(S/(3N) + psi/12 + m n/6) / (m n N)``
        (:func:`cudrift.stats.rank._cvm_bounds`), Anderson–Darling as
        ``(N - 1)/(N m n) * sum``.
    """
    f = np.asarray(fpart, dtype=np.float64).sum(axis=0)
    ip = np.asarray(ipart, dtype=np.int64)
    m, n = int(n_a), int(n_b)
    big_n = m + n
    hi = int(np.argmax(ip[:, 0]))
    lo = int(np.argmin(ip[:, 3]))
    # max(0.0, v) rather than max(v, 0.0): the latter keeps -0.0.
    plus = max(0.0, float(ip[hi, 1] / m - ip[hi, 2] / n))
    minus = max(0.0, -float(ip[lo, 4] / m - ip[lo, 5] / n))
    ks = minus if minus > plus else plus
    counts = (int(ip[lo, 4]), int(ip[lo, 5])) if minus > plus else (int(ip[hi, 1]), int(ip[hi, 2]))
    fm, fn, fN = float(m), float(n), float(big_n)
    cvm = (float(f[2]) / 3.0 / fN + float(f[3]) / 12.0 + fm * fn / 6.0) / (fm * fn * fN)
    a2kn = (fN - 1.0) / (fN * fm * fn) * float(f[4])
    w1, energy = float(f[0]), math.sqrt(2.0 * float(f[1]))
    if not want & WANT_DISTANCES:
        w1 = energy = math.nan
    if not want & WANT_CVM:
        cvm = math.nan
    if not want & WANT_AD:
        a2kn = math.nan
    return RankStatistics(plus, minus, ks, w1, energy, cvm, a2kn, counts)


#: Absolute tolerance below which a permutation's MMD² ties with the observed one (the kernel means are at
#: most 1, and differ between labelings by multiples of about 1 / n**2, far above this).
MMD_TIE = 1e-11


def mmd_pvalue(mmd2) -> tuple[float, float | None]:
    """Observed MMD² and its permutation p-value from :func:`cudrift.kernels.mmd.launch_mmd`'s output.

    Parameters
    ----------
    mmd2
        MMD² per labeling, the observed labeling first.

    Returns
    -------
    tuple
        ``(observed, pvalue)``: ``pvalue = (1 + #{p >= 1: mmd2[p] >= observed})
        / len(mmd2)``, a permutation within :data:`MMD_TIE` of the observed
        value counting as a tie; None when there are no permutations.

    Examples
    --------
    >>> mmd_pvalue([0.5, 0.1, 0.7, 0.5])
    (0.5, 0.75)
    """
    v = np.asarray(mmd2, dtype=np.float64)
    observed = float(v[0])
    if v.size == 1:
        return observed, None
    if not math.isfinite(observed):
        return observed, math.nan  # no permutation compares with NaN: not a p-value of 1 / len(mmd2)
    # A labeling that ties with the observed one in exact arithmetic (discrete data ties often) must count
    # whatever order its sums were taken in: MMD² is a difference of kernel means of at most 1, so its
    # rounding is absolute, about 1e-16 to 1e-13, not relative to a small MMD²
    return observed, float((1 + np.count_nonzero(v[1:] >= observed - MMD_TIE)) / v.size)
