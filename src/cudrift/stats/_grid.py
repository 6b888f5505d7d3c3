"""Two counting functions on a common grid, and the statistics written against it.

Every rank statistic here is a function of the two counting functions
``A(x) = #{reference <= x}`` and ``B(x) = #{current <= x}``. Both the raw-array
path (two sorted samples, where the counts are exact) and the sketch path
(:class:`~cudrift.sketches._cdf.CdfBounds`, where each count is only known to
lie in an interval) describe them the same way, as a :class:`Grid`: the union
of support points ``z[0] < z[1] < ...`` and, on each half-open segment
``[z[k], z[k+1])``, bounds ``a_lo[k] <= A(x) <= a_hi[k]`` and likewise for ``B``.
Each statistic is written once against a grid; exact grids carry ``lo is hi``
and take the cheap branch of the same formula.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from cudrift.backends import cpu_workers, submit, thread_limit
from cudrift.sketches._common import dot
from cudrift.stats._validation import pow2_above

__all__ = [
    "Grid",
    "grid_from_sorted",
    "ks_bounds",
    "lp_integral_bounds",
    "lp_integral_bounds_scaled",
    "mannwhitney_u1_ties",
    "cvm_scipy",
    "anderson_a2kn_exact",
]


@dataclass(frozen=True)
class Grid:
    """Bounds on the two counting functions over the segments of a common grid.

    Attributes
    ----------
    z
        Strictly increasing union of the support points (float64).
    a_lo, a_hi, b_lo, b_hi
        Count bounds on ``[z[k], z[k+1])`` (the last segment extends to +inf,
        where both counts are their totals). For exact data ``a_lo is a_hi``.
    n_a, n_b
        Sample sizes.
    """

    z: np.ndarray
    a_lo: np.ndarray
    a_hi: np.ndarray
    b_lo: np.ndarray
    b_hi: np.ndarray
    n_a: int
    n_b: int

    @property
    def exact(self) -> bool:
        return self.a_lo is self.a_hi and self.b_lo is self.b_hi


# Below this many pooled values one thread merges faster than several.
_PARALLEL_MIN = 1 << 18
# Values per side in one merge chunk / elements per block of a blockwise pass:
# small enough for the temporaries to stay in cache.
_BLOCK = 1 << 16
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        with thread_limit(None):  # sized for the machine, not for the limit of the call that first needs it
            n = cpu_workers()
        _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="cudrift-grid")
    return _POOL


def _forget_pool_in_child() -> None:
    """A forked child (Dask, multiprocessing) inherits the pool object but not its threads: tasks submitted to
    it would never run. The child makes its own."""
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _merge_chunk(a, b, lo_a, hi_a, lo_b, hi_b, z_out, a_out, b_out, new_out) -> None:
    """Merge ``a[lo_a:hi_a]`` and ``b[lo_b:hi_b]`` into their slice of the outputs."""
    ca, cb = a[lo_a:hi_a], b[lo_b:hi_b]
    start, stop = lo_a + lo_b, hi_a + hi_b
    if stop == start:
        return
    pooled = np.concatenate((ca, cb))
    order = np.argsort(pooled, kind="stable")
    z = pooled[order]
    z_out[start:stop] = z
    # an int64 cumsum of an int64 array beats the mixed bool -> int64 one
    counts = np.cumsum((order < ca.size).astype(np.int64))
    counts += lo_a
    a_out[start:stop] = counts
    np.subtract(np.arange(start + 1, stop + 1, dtype=np.int64), counts, out=b_out[start:stop])
    np.not_equal(z[1:], z[:-1], out=new_out[start : stop - 1])
    # chunks are split at values, so the last element of one chunk is strictly
    # below the first element of the next
    new_out[stop - 1] = True


def _merge_chunks(a, b, ia, ib, first, last, outs) -> None:
    for k in range(first, last):
        _merge_chunk(a, b, ia[k], ia[k + 1], ib[k], ib[k + 1], *outs)


def grid_from_sorted(a: np.ndarray, b: np.ndarray) -> Grid:
    """Exact grid of two sorted finite float64 samples, in O(n) after a merge.

    The two sorted samples are cut at common pivot values into chunks of at
    most ``_BLOCK`` values from each side; a chunk never splits a run of equal
    values. Each chunk is merged by a stable argsort (timsort merges two
    sorted runs in linear time) and its counts are prefix sums of the labels.
    Working chunk by chunk keeps every temporary in cache, which measured
    twice as fast as whole-array passes, and lets large inputs use several
    threads (NumPy releases the GIL in its sort). The counts are then read at
    the last element of each run of equal values.
    """
    n_a, n_b = a.size, b.size
    N = n_a + n_b
    z_all = np.empty(N, dtype=np.float64)
    a_all = np.empty(N, dtype=np.int64)
    b_all = np.empty(N, dtype=np.int64)
    new_value = np.empty(N, dtype=bool)
    outs = (z_all, a_all, b_all, new_value)
    # pivots from both samples, so that no chunk holds more than _BLOCK of either
    cuts = np.union1d(a[_BLOCK::_BLOCK], b[_BLOCK::_BLOCK])
    ia = np.concatenate(([0], np.searchsorted(a, cuts, "left"), [n_a]))
    ib = np.concatenate(([0], np.searchsorted(b, cuts, "left"), [n_b]))
    n_chunks = ia.size - 1
    workers = min(cpu_workers(), n_chunks) if N >= _PARALLEL_MIN else 1
    if workers == 1:
        _merge_chunks(a, b, ia, ib, 0, n_chunks, outs)
    else:
        edges = np.linspace(0, n_chunks, workers + 1).astype(int)
        futures = [submit(_pool(), _merge_chunks, a, b, ia, ib, edges[w], edges[w + 1], outs)
                   for w in range(workers)]
        for f in futures:
            f.result()
    if new_value.all():
        # no ties anywhere (the common case for continuous data): every
        # merged position is its own grid point
        return Grid(z_all, a_all, a_all, b_all, b_all, int(n_a), int(n_b))
    last = np.flatnonzero(new_value)
    a_cnt = a_all[last]
    b_cnt = b_all[last]
    return Grid(z_all[last], a_cnt, a_cnt, b_cnt, b_cnt, int(n_a), int(n_b))


def _diff_bounds(g: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on ``A/n_a - B/n_b`` per segment (identical arrays when exact)."""
    if g.exact:
        d = g.a_lo / g.n_a - g.b_lo / g.n_b
        return d, d
    return g.a_lo / g.n_a - g.b_hi / g.n_b, g.a_hi / g.n_a - g.b_lo / g.n_b


def _map_blocks(fn, n: int) -> list:
    """Apply ``fn(start, stop)`` to cache-sized blocks of ``range(n)``, on up to :func:`cpu_workers` threads
    when large.

    Small blocks keep each temporary in cache (and avoid fresh page faults
    for large temporaries); the list of results is in block order.
    """
    bounds = list(range(0, n, _BLOCK)) + [n]
    spans = list(zip(bounds[:-1], bounds[1:]))
    workers = min(cpu_workers(), len(spans)) if n >= _PARALLEL_MIN else 1
    if workers == 1:
        return [fn(lo, hi) for lo, hi in spans]
    # one run of consecutive blocks per thread
    edges = np.linspace(0, len(spans), workers + 1).astype(int)
    futures = [submit(_pool(), lambda part: [fn(lo, hi) for lo, hi in part], spans[edges[w] : edges[w + 1]])
               for w in range(workers)]
    return [r for f in futures for r in f.result()]


def _extreme(parts: list, largest: bool) -> tuple[int, np.ndarray]:
    """Combine per-block ``(value, indices)`` of a max (or min) into the global ones."""
    best = max(p[0] for p in parts) if largest else min(p[0] for p in parts)
    return best, np.concatenate([p[1] for p in parts if p[0] == best])


def _diff_weights(na: int, nb: int) -> tuple[int, int] | None:
    """``(wa, wb)`` with ``wa * A - wb * B`` ordered as ``A/n_a - B/n_b`` and exact in int64 for counts
    ``A <= n_a``, ``B <= n_b`` (the counts' gcd taken out); None where even that could pass 2**62: profiles
    merged past n_a n_b ~ 1e19 (``n_b A - n_a B`` had wrapped silently there), whose keys are then floats.

    Examples
    --------
    >>> _diff_weights(6, 4), _diff_weights(10**10, 6 * 10**9 + 1) is None
    ((2, 3), True)
    """
    g = math.gcd(int(na), int(nb)) or 1
    wa, wb = int(nb) // g, int(na) // g
    return (wa, wb) if wa * int(na) < 1 << 62 else None


def _diff_key(A: np.ndarray, B: np.ndarray, na: int, nb: int, w: tuple[int, int] | None) -> np.ndarray:
    """Keys ordered as ``A/n_a - B/n_b``: exact integers by :func:`_diff_weights`, else those floats."""
    if w is not None:
        return w[0] * A - w[1] * B
    return A / na - B / nb


def ks_bounds(g: Grid, alternative: str) -> tuple[float, float, int, int]:
    """Kolmogorov-Smirnov statistic: bounds, grid index of the extremum, and its sign.

    ``D+ = max(A/n_a - B/n_b)`` (SciPy's ``greater``), ``D- = max(B/n_b - A/n_a)``
    (``less``); two-sided takes the larger and, like SciPy, prefers ``D+`` on
    a tie. On each segment the difference lies in ``[dlo, dhi]`` everywhere,
    so ``max(dlo) <= D+ <= max(dhi)``. Beyond the data both CDFs equal 1, so
    the statistics are never negative.

    The search runs on the integers ``n_b A - n_a B`` over their gcd (exact,
    and cheaper than two float divisions per point; :func:`_diff_weights`);
    the float value is then formed as SciPy forms it, ``A/n_a - B/n_b``, at
    the extremum.
    """
    na, nb = g.n_a, g.n_b
    exact = g.exact
    w = _diff_weights(na, nb)

    def block(lo: int, hi: int):
        k_lo = _diff_key(g.a_lo[lo:hi], g.b_hi[lo:hi], na, nb, w)
        k_hi = k_lo if exact else _diff_key(g.a_hi[lo:hi], g.b_lo[lo:hi], na, nb, w)
        out = []
        for key, largest in ((k_hi, True), (k_lo, False)) + (() if exact else ((k_lo, True), (k_hi, False))):
            v = key.max() if largest else key.min()
            out.append((v, lo + np.flatnonzero(key == v)))
        return out

    parts = _map_blocks(block, g.z.size)
    cols = list(zip(*parts))
    _, cand = _extreme(list(cols[0]), True)
    i_plus = _float_pick(cand, g.a_hi, g.b_lo, na, nb, largest=True)
    _, cand = _extreme(list(cols[1]), False)
    i_minus = _float_pick(cand, g.a_lo, g.b_hi, na, nb, largest=False)
    plus_hi = max(float(g.a_hi[i_plus] / na - g.b_lo[i_plus] / nb), 0.0)
    minus_hi = max(-float(g.a_lo[i_minus] / na - g.b_hi[i_minus] / nb), 0.0)
    if exact:
        plus_lo, minus_lo = plus_hi, minus_hi
    else:
        _, cand = _extreme(list(cols[2]), True)
        j = _float_pick(cand, g.a_lo, g.b_hi, na, nb, largest=True)
        plus_lo = max(float(g.a_lo[j] / na - g.b_hi[j] / nb), 0.0)
        _, cand = _extreme(list(cols[3]), False)
        j = _float_pick(cand, g.a_hi, g.b_lo, na, nb, largest=False)
        minus_lo = max(-float(g.a_hi[j] / na - g.b_lo[j] / nb), 0.0)
    if alternative == "greater":
        return plus_lo, plus_hi, i_plus, 1
    if alternative == "less":
        return minus_lo, minus_hi, i_minus, -1
    if minus_hi > plus_hi:
        return max(plus_lo, minus_lo), minus_hi, i_minus, -1
    return max(plus_lo, minus_lo), plus_hi, i_plus, 1


def _float_pick(cand: np.ndarray, a: np.ndarray, b: np.ndarray, na, nb, *, largest: bool) -> int:
    """Among points with the same extreme integer key, the one SciPy's float argmax/argmin reaches.

    Equal keys mean mathematically equal differences, whose float values may
    still differ by an ulp; picking as SciPy does keeps the statistic
    identical to the bit (SciPy takes the first index on exact float ties).
    """
    if cand.size == 1:
        return int(cand[0])
    vals = a[cand] / na - b[cand] / nb
    return int(cand[np.argmax(vals) if largest else np.argmin(vals)])


def lp_integral_bounds(g: Grid, p: int) -> tuple[float, float]:
    """Bounds on ``integral |A/n_a - B/n_b|^p dx`` (p = 1: Wasserstein-1; p = 2: energy).

    The integrand is piecewise constant on exact grids; on approximate ones
    its absolute value on segment k lies between ``max(0, dlo, -dhi)`` and
    ``max(|dlo|, |dhi|)`` at every point, so integrating those bounds over
    the segment widths bounds the integral.
    """
    lo, hi, c = lp_integral_bounds_scaled(g, p)
    with np.errstate(over="ignore"):
        return float(np.float64(lo) * c), float(np.float64(hi) * c)


def lp_integral_bounds_scaled(g: Grid, p: int) -> tuple[float, float, float]:
    """:func:`lp_integral_bounds` in units of a power of two ``c``: ``(lo, hi, c)``, the bounds being ``lo c, hi c``.

    ``c`` is 1 unless the grid spans more than float64's range (-1e308 to
    1e308), where the segment widths overflowed to inf (a zero integrand
    times inf gave NaN for equal samples, while the merge-free Wasserstein
    form was finite); the values are then divided by ``c`` (exactly) first,
    so the bounds stay finite in those units even where ``lo c`` is not.
    """
    z = g.z
    c = 1.0
    if z.size > 1 and not math.isfinite(float(z[-1]) - float(z[0])):
        c = pow2_above(max(abs(float(z[0])), abs(float(z[-1]))))
        z = z / c
    widths = np.diff(z)
    dlo, dhi = _diff_bounds(g)
    dlo, dhi = dlo[:-1], dhi[:-1]
    if g.exact:
        mag = np.abs(dlo)
        val = dot(mag, widths) if p == 1 else dot(mag * mag, widths)
        return val, val, c
    mag_hi = np.maximum(np.abs(dlo), np.abs(dhi))
    mag_lo = np.maximum(np.maximum(dlo, -dhi), 0.0)
    if p == 2:
        mag_hi, mag_lo = mag_hi * mag_hi, mag_lo * mag_lo
    return dot(mag_lo, widths), dot(mag_hi, widths), c


def _multiplicities(cum: np.ndarray) -> np.ndarray:
    """Counts at each grid point from exact cumulative counts."""
    return np.diff(cum, prepend=0)


def mannwhitney_u1_ties(g: Grid) -> tuple[float, float]:
    """``U1`` of the reference sample and SciPy's tie term ``sum(t^3 - t)``.

    ``U1 = sum over reference values x of (#current < x + #current == x / 2)``,
    which equals SciPy's ``R1 - n1 (n1 + 1) / 2`` with midranks; every term is
    a half-integer, so the float64 sum is exact below 2^52.
    """
    a = _multiplicities(g.a_lo).astype(np.float64)
    b = _multiplicities(g.b_lo).astype(np.float64)
    b_below = (g.b_lo - _multiplicities(g.b_lo)).astype(np.float64)
    u1 = dot(a, b_below + b / 2.0)
    t = a + b
    ties = float(np.sum(t**3 - t))
    return u1, ties


def cvm_scipy(g: Grid) -> float:
    """Two-sample Cramer-von Mises ``T`` formed exactly as SciPy forms it.

    ``U = m sum (r_i - i)^2 + n sum (s_j - j)^2`` over the midranks of the
    sorted samples, then ``T = U / (m n N) - (4 m n - 1) / (6 N)``. The
    elementwise terms and their order are SciPy's, so ``T`` agrees to the last
    bit; this matters for tiny p-values, which SciPy computes as ``1 - cdf``
    with ~1e-16 absolute accuracy, so that any other rounding of ``T`` moves
    them by far more than 1e-9 relative. The sketch path uses a
    cancellation-free rewriting of the same quantity
    (:func:`cudrift.stats.rank._cvm_bounds`).
    """
    nx, ny = g.n_a, g.n_b
    pooled_cum = g.a_lo + g.b_lo
    t = _multiplicities(pooled_cum)
    midrank = 0.5 * (pooled_cum + (pooled_cum - t) + 1)
    rx = np.repeat(midrank, _multiplicities(g.a_lo))
    ry = np.repeat(midrank, _multiplicities(g.b_lo))
    u = nx * np.sum((rx - np.arange(1, nx + 1, dtype=np.float64)) ** 2) + ny * np.sum(
        (ry - np.arange(1, ny + 1, dtype=np.float64)) ** 2
    )
    k, N = nx * ny, nx + ny
    return float(u / (k * N) - (4 * k - 1) / (6 * N))


def anderson_a2kn_exact(g: Grid) -> float:
    """SciPy's midrank ``A2akN`` (Scholz & Stephens eq. 7) for two samples, from exact counts.

    The grid points are SciPy's ``Zstar``; every elementwise term is formed
    exactly as SciPy forms it, so the result agrees to the last bits.
    """
    N = g.n_a + g.n_b
    L = (g.a_lo + g.b_lo) - (_multiplicities(g.a_lo) + _multiplicities(g.b_lo))
    lj = (_multiplicities(g.a_lo) + _multiplicities(g.b_lo)) if N != g.z.size else 1.0
    Bj = L + lj / 2.0
    total = 0.0
    for cum, n_i in ((g.a_lo, g.n_a), (g.b_lo, g.n_b)):
        Mij = cum.astype(float)
        fij = _multiplicities(cum)
        Mij -= fij / 2.0
        inner = lj / float(N) * (N * Mij - Bj * n_i) ** 2 / (Bj * (N - Bj) - N * lj / 4.0)
        total += inner.sum() / n_i
    total *= (N - 1.0) / N
    return float(total)


# ----------------------------------------------------------------- fast paths
#
# The grid above merges both samples: O(n) but ~40 ns per value in NumPy.
# Two statistics the detector runs on every large column have cheaper exact
# routes on sorted samples, written here because they are the hot path of
# ``DriftDetector.compare`` (policy "auto" on large windows and policy "ks").

#: Pooled size from which the fast paths pay for themselves.
FAST_MIN = 1 << 15
# Every _COARSE-th value of each sample is a coarse grid point.
_COARSE = 64


def _concat_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``np.concatenate([np.arange(s, e) for s, e in zip(starts, stops)])`` without a Python loop."""
    lens = stops - starts
    keep = lens > 0
    starts, lens = starts[keep], lens[keep]
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    step = np.ones(total, dtype=np.int64)
    first = np.cumsum(lens)[:-1]
    step[0] = starts[0]
    # at the first element of each range, jump from the previous range's end
    step[first] = starts[1:] - (starts[:-1] + lens[:-1] - 1)
    return np.cumsum(step)


def ks_sorted_fast(a: np.ndarray, b: np.ndarray, alternative: str) -> tuple[float, float, int]:
    """Exact KS statistic of two sorted finite float64 samples by branch and bound.

    Returns ``(statistic, location, sign)`` with the same meaning (and the
    same float value, formed as SciPy forms it) as :func:`ks_bounds` on the
    exact grid.

    Coarse points (every 64th value of each sample) are evaluated exactly with
    ``searchsorted``. Between two consecutive coarse points the counts are
    bounded by their values at the ends, so ``D`` on that open segment lies
    in a known interval; only segments whose interval could beat the best
    coarse value are evaluated point by point. On 1e6 + 1e6 values this
    touches a few dozen segments and takes ~10 ms instead of ~70 ms for the
    full merge, with the identical result.
    """
    na, nb = a.size, b.size
    s = _COARSE
    xs = np.union1d(np.r_[a[s - 1 :: s], a[-1]], np.r_[b[s - 1 :: s], b[-1]])
    A = np.searchsorted(a, xs, "right")
    B = np.searchsorted(b, xs, "right")
    Al = np.searchsorted(a, xs, "left")
    Bl = np.searchsorted(b, xs, "left")
    w = _diff_weights(na, nb)
    key = _diff_key(A, B, na, nb, w)  # exact integer form of A/n_a - B/n_b
    A0 = np.r_[0, A[:-1]]
    B0 = np.r_[0, B[:-1]]
    # on the open segment (xs[k-1], xs[k]): A in [A0, Al], B in [B0, Bl]
    seg_hi = _diff_key(Al, B0, na, nb, w)
    seg_lo = _diff_key(A0, Bl, na, nb, w)
    plus, minus = key.max(), -key.min()
    want_plus = alternative in ("two-sided", "greater")
    want_minus = alternative in ("two-sided", "less")
    cand = np.zeros(xs.size, dtype=bool)
    if want_plus:
        cand |= seg_hi > plus
    if want_minus:
        cand |= -seg_lo > minus
    k = np.flatnonzero(cand)
    pts, pA, pB = xs, A, B
    if k.size:
        extra = np.concatenate((a[_concat_ranges(A0[k], Al[k])], b[_concat_ranges(B0[k], Bl[k])]))
        pts = np.concatenate((xs, extra))
        pA = np.concatenate((A, np.searchsorted(a, extra, "right")))
        pB = np.concatenate((B, np.searchsorted(b, extra, "right")))
    keys = _diff_key(pA, pB, na, nb, w)

    def pick(largest: bool) -> int:
        target = keys.max() if largest else keys.min()
        cand_idx = np.flatnonzero(keys == target)
        if cand_idx.size > 1:  # equal keys: choose as SciPy's float argmax would
            cand_idx = cand_idx[np.argsort(pts[cand_idx], kind="stable")]
        return _float_pick(cand_idx, pA, pB, na, nb, largest=largest)

    i_plus, i_minus = pick(True), pick(False)
    d_plus = max(float(pA[i_plus] / na - pB[i_plus] / nb), 0.0)
    d_minus = max(-float(pA[i_minus] / na - pB[i_minus] / nb), 0.0)
    if alternative == "greater":
        return d_plus, float(pts[i_plus]), 1
    if alternative == "less":
        return d_minus, float(pts[i_minus]), -1
    if d_minus > d_plus:
        return d_minus, float(pts[i_minus]), -1
    return d_plus, float(pts[i_plus]), 1


def wasserstein1_sorted_fast(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Wasserstein-1 distance of two sorted samples, without merging them.

    ``W1 = integral_0^1 |Q_a(u) - Q_b(u)| du``. The quantile functions are
    step functions with breakpoints ``i / n_a`` and ``j / n_b``; at a
    breakpoint of one sample the other's quantile index is a closed form
    (``ceil(i n_b / n_a) - 1``), and so is the previous breakpoint, so the
    integral is two gathers and two dot products in exact integer arithmetic
    for the widths (~4x faster than the merged grid on 1e6 values; equal
    sizes reduce to ``mean |a - b|``).

    The weighted sum runs up to ``n_a n_b`` times the distance, so values
    near the float64 limit can overflow it while the distance itself is
    finite (10% of ``1.8e308`` against zeros): a sum that overflows is taken
    again on the values divided by a power of two (exact), as SciPy's
    merged form would give it.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        w = _w1_fast(a, b)
    if math.isfinite(w) or not a.size or not b.size:
        return w
    c = pow2_above(max(abs(float(a[0])), abs(float(a[-1])), abs(float(b[0])), abs(float(b[-1]))))
    return _w1_fast(a / c, b / c) * c


def _w1_fast(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`wasserstein1_sorted_fast` on values whose weighted sums stay finite."""
    na, nb = a.size, b.size
    if na == nb:
        return float(np.mean(np.abs(a - b)))
    i = np.arange(1, na + 1, dtype=np.int64)
    ea = i * nb  # breakpoint i / n_a, in units of 1 / (n_a n_b)
    jb = -(-ea // na) - 1  # current-sample quantile index at that breakpoint
    width = ea - np.maximum(ea - nb, jb * na)
    total = dot(width.astype(np.float64), np.abs(a - b[jb]))
    j = np.arange(1, nb + 1, dtype=np.int64)
    eb = j * na
    ia = -(-eb // nb) - 1
    width = eb - np.maximum(eb - na, ia * nb)
    width[eb % nb == 0] = 0  # breakpoints shared with the reference were counted above
    total += dot(width.astype(np.float64), np.abs(a[ia] - b))
    return total / (float(na) * float(nb))
