"""Two-sample statistics on point clouds: kernel MMD and the energy distance in d dimensions.

Both are quadratic in the number of points and meant for bounded samples
(the profile's deterministic sample). Pairwise quantities are computed tile
by tile (``TILE`` points per side), so memory stays at a few tiles no matter
how many points there are; no (n+m) x (n+m) matrix is ever stored.

Inputs: ``(n, d)`` arrays, or 1-D arrays (one feature). Rows holding NaN or
±inf are removed and counted in ``details``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from ..errors import SchemaError
from ._backend import use_gpu
from ._result import TestResult
from ._validation import as_points, dropped_details, unit_scale

__all__ = ["mmd", "energy_distance_nd", "median_heuristic"]

TILE = 1024
# Up to this many features, squared distances are summed feature by feature
# (exact differences); above it, the |a|^2 + |b|^2 - 2 a.b expansion uses BLAS.
_DIRECT_MAX_D = 16
# Points used by the median heuristic (pairwise distances of a subsample).
_MEDIAN_POINTS = 1024


def _pair(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    x, dx = as_points(reference, "reference")
    y, dy = as_points(current, "current")
    if x.shape[1] != y.shape[1]:
        raise SchemaError(
            f"reference and current must have the same number of features, got {x.shape[1]} and {y.shape[1]}."
        )
    return x, y, (dx, dy)


def _sq_dists(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of two tiles."""
    if a.shape[1] <= _DIRECT_MAX_D:
        out = np.zeros((a.shape[0], b.shape[0]))
        for f in range(a.shape[1]):
            diff = a[:, f, None] - b[None, :, f]
            out += diff * diff
        return out
    out = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    # the expansion can round slightly below zero for (nearly) equal points
    np.maximum(out, 0.0, out=out)
    return out


def _tiles(n: int):
    return [(s, min(s + TILE, n)) for s in range(0, n, TILE)]


def median_heuristic(points: np.ndarray, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of a pooled point cloud (RBF bandwidth).

    Uses at most 1024 points (a seeded random subset when there are more),
    counting each unordered pair of distinct rows once. When more than half
    of the pairs coincide the median is 0; the median of the non-zero
    distances is used then, and 1.0 if all points are equal.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import median_heuristic
    >>> median_heuristic(np.array([[0.0], [1.0], [3.0]]))
    2.0
    """
    z = np.asarray(points, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.shape[0] > _MEDIAN_POINTS:
        idx = np.random.default_rng(seed).choice(z.shape[0], _MEDIAN_POINTS, replace=False)
        z = z[np.sort(idx)]
    z, scale = unit_scale(z)  # exact, and the squares stay finite
    z = z - z.mean(axis=0)
    sq = (z * z).sum(axis=1)
    d = np.sqrt(_sq_dists(z, z, sq, sq))
    upper = d[np.triu_indices(z.shape[0], k=1)]
    if upper.size == 0:
        return 1.0
    med = float(np.median(upper))
    if med > 0:
        return med * scale
    positive = upper[upper > 0]
    return float(np.median(positive)) * scale if positive.size else 1.0


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum:
        return int(value)
    raise ValueError(f"Invalid value for {name}: {value!r}; expected an integer >= {minimum}.")


def mmd(
    reference: Any,
    current: Any,
    bandwidth: float | None = None,
    n_permutations: int = 100,
    seed: int = 0,
    *,
    backend: str = "auto",
) -> TestResult:
    """Maximum mean discrepancy with an RBF kernel and a permutation p-value.

    Kernel ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))``; ``sigma`` is
    ``bandwidth`` or, when None, :func:`median_heuristic` of the pooled
    sample. The statistic is the unbiased estimate

        MMD^2 = 1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j)
                - 2/(n m) sum_{i,j} k(x_i, y_j)

    (it can be slightly negative when the samples agree). The p-value is
    ``(1 + #{permutations with MMD^2 >= observed}) / (1 + n_permutations)``
    over random relabelings of the pooled sample drawn from
    ``numpy.random.default_rng(seed)``.

    All permutations are evaluated in one pass over the kernel tiles: with
    the pooled sample's labels stacked as columns of a 0/1 matrix ``S`` (the
    observed labeling first), each tile ``K_ab`` adds
    ``colsum(S_a * (K_ab @ S_b))`` to ``s^T K s`` for every labeling at once,
    and the row sums of ``K`` give the remaining terms.

    Parameters
    ----------
    reference, current
        ``(n, d)`` and ``(m, d)`` points (1-D: one feature); n, m >= 2.
    bandwidth
        RBF length scale ``sigma`` > 0, or None for the median heuristic.
    n_permutations
        Number of permutations; 0 skips the test (``pvalue=None``).
    seed
        Seed of the permutations and of the median heuristic's subsample.
    backend
        ``"auto"`` (default: the GPU when an input is already on one),
        ``"cpu"`` or ``"gpu"`` (the kernel tiles on the device, same result);
        see :mod:`cudrift.stats._backend`.

    Returns
    -------
    TestResult
        ``method="mmd"``; ``details`` holds ``bandwidth``,
        ``n_permutations`` and ``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> from cudrift.stats import mmd
    >>> rng = np.random.default_rng(0)
    >>> res = mmd(rng.normal(size=(200, 3)), rng.normal(0.5, size=(150, 3)))
    >>> res.pvalue < 0.05
    True
    """
    _check_mmd_options(bandwidth, n_permutations, seed)
    if use_gpu(backend, reference, current):
        from cudrift.backends import _gpu

        return _gpu.mmd(reference, current, bandwidth=bandwidth, n_permutations=n_permutations, seed=seed)
    inp = mmd_inputs(reference, current, bandwidth, n_permutations, seed)
    z, labels, n, m, sigma = inp.z, inp.labels, inp.n, inp.m, inp.sigma
    N = n + m

    sq = (z * z).sum(axis=1)
    gamma = -1.0 / (2.0 * sigma * sigma)
    row_sums = np.zeros(N)
    quad = np.zeros(n_permutations + 1)  # s^T K s (zero diagonal) per labeling
    tiles = _tiles(N)
    for i, (a0, a1) in enumerate(tiles):
        for b0, b1 in tiles[i:]:
            k = np.exp(gamma * _sq_dists(z[a0:a1], z[b0:b1], sq[a0:a1], sq[b0:b1]))
            if a0 == b0:
                # the unbiased estimate leaves out k(x_i, x_i)
                np.fill_diagonal(k, 0.0)
            contrib = np.einsum("ip,ip->p", labels[a0:a1], k @ labels[b0:b1])
            row_sums[a0:a1] += k.sum(axis=1)
            if a0 == b0:
                quad += contrib
            else:
                # the tile below the diagonal is the transpose of this one
                quad += 2.0 * contrib
                row_sums[b0:b1] += k.sum(axis=0)
    total = row_sums.sum()
    s_r = labels.T @ row_sums
    xx = quad / (n * (n - 1))
    yy = (total - 2.0 * s_r + quad) / (m * (m - 1))
    xy = (s_r - quad) / (n * m)
    return mmd_result(xx + yy - 2.0 * xy, inp)


class MmdInputs(NamedTuple):
    """What :func:`mmd` computes on, prepared once for the NumPy and the device tiles."""

    z: np.ndarray  # pooled points, centered, (n + m, d)
    labels: np.ndarray  # 0/1 labelings as columns, the observed one first
    n: int
    m: int
    sigma: float
    details: dict


def _check_mmd_options(bandwidth: Any, n_permutations: Any, seed: Any) -> tuple[int, int]:
    n_permutations = _check_int("n_permutations", n_permutations, 0)
    seed = _check_int("seed", seed, 0)
    if bandwidth is not None:
        ok = isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool)
        if not (ok and math.isfinite(float(bandwidth)) and float(bandwidth) > 0):
            raise ValueError(f"Invalid value for bandwidth: {bandwidth!r}; expected None or a positive number.")
    return n_permutations, seed


def mmd_inputs(reference: Any, current: Any, bandwidth: Any, n_permutations: Any, seed: Any) -> MmdInputs:
    """Checked options, the pooled centered sample, the bandwidth and the labelings of :func:`mmd`."""
    n_permutations, seed = _check_mmd_options(bandwidth, n_permutations, seed)
    x, y, dropped = _pair(reference, current)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd needs at least 2 points in each sample, got {n} and {m}.")
    # a common scale and the centering change no kernel value: the first keeps the squares finite, the
    # second keeps the BLAS expansion accurate
    z, scale = unit_scale(np.concatenate((x, y)))
    z -= z.mean(axis=0)
    sigma = float(bandwidth) / scale if bandwidth is not None else median_heuristic(z, seed)
    big_n = n + m
    labels = np.zeros((big_n, n_permutations + 1))
    labels[:n, 0] = 1.0
    rng = np.random.default_rng(seed)
    for p in range(1, n_permutations + 1):
        labels[rng.permutation(big_n)[:n], p] = 1.0
    details = dropped_details(dropped)
    details.update(bandwidth=sigma * scale, n_permutations=n_permutations, seed=seed, kernel="rbf")
    return MmdInputs(z, labels, n, m, sigma, details)


def mmd_result(mmd2: np.ndarray, inp: MmdInputs) -> TestResult:
    """The :func:`mmd` result from MMD² per labeling (observed first).

    The p-value counts relabelings that tie with the observed one as
    ``>=``, as ``scipy.stats.permutation_test`` does, but within an absolute
    ``MMD_TIE`` (1e-11) rather than SciPy's relative tolerance: MMD²
    is a difference of kernel means of at most 1, so labelings that tie in
    exact arithmetic (discrete data) differ by rounding of that size,
    whatever order each backend sums in
    (:func:`cudrift.kernels._host.mmd_pvalue`, NumPy only).
    """
    from cudrift.kernels._host import mmd_pvalue

    observed, pvalue = mmd_pvalue(mmd2)
    return TestResult(observed, pvalue, "mmd", inp.n, inp.m, 0.0, dict(inp.details))


def energy_distance_nd(reference: Any, current: Any) -> TestResult:
    """Energy statistic between two point clouds in d dimensions.

    ``E = 2 E|X - Y| - E|X - X'| - E|Y - Y'|`` over the empirical
    distributions (V-statistics: means over all ordered pairs, the zero
    diagonal included), with Euclidean norms; ``E >= 0`` and 0 only for equal
    samples. ``details["distance"] = sqrt(E)``. In one dimension
    ``E = 2 integral (F_ref - F_cur)^2 dx``, so ``details["distance"]``
    equals ``scipy.stats.energy_distance`` (and :func:`energy_distance`),
    which is that square root.

    Examples
    --------
    >>> from cudrift.stats import energy_distance_nd
    >>> res = energy_distance_nd([0.0], [2.0])
    >>> res.statistic, res.details["distance"]
    (4.0, 2.0)
    """
    x, y, dropped = _pair(reference, current)
    n, m = x.shape[0], y.shape[0]
    z, scale = unit_scale(np.concatenate((x, y)))  # exact: every distance scales with it
    z -= z.mean(axis=0)
    x, y = z[:n], z[n:]
    sx, sy = (x * x).sum(axis=1), (y * y).sum(axis=1)
    # in units of scale, where the distances are below 4: multiplied by it first, the means of values spanning
    # +-1e308 overflowed and their difference gave inf (or NaN) for equal samples
    mxy = _mean_pairwise(x, y, sx, sy, symmetric=False)
    mxx = _mean_pairwise(x, x, sx, sx, symmetric=True)
    myy = _mean_pairwise(y, y, sy, sy, symmetric=True)
    # rounding can leave a tiny negative value for identical samples
    e = max(2.0 * mxy - mxx - myy, 0.0)
    with np.errstate(over="ignore"):
        mean_xy, mean_xx, mean_yy = (float(np.float64(v) * scale) for v in (mxy, mxx, myy))
        details = dropped_details(dropped)
        details.update(distance=math.sqrt(e) * math.sqrt(scale), mean_xy=mean_xy, mean_xx=mean_xx, mean_yy=mean_yy)
        e = float(np.float64(e) * scale)
    return TestResult(e, None, "energy_distance_nd", n, m, 0.0, details)


def _mean_pairwise(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray, *, symmetric: bool) -> float:
    """Mean Euclidean distance over all ordered pairs (a_i, b_j), tile by tile."""
    total = 0.0
    ta, tb = _tiles(a.shape[0]), _tiles(b.shape[0])
    for i, (a0, a1) in enumerate(ta):
        for b0, b1 in (tb[i:] if symmetric else tb):
            d2 = _sq_dists(a[a0:a1], b[b0:b1], sa[a0:a1], sb[b0:b1])
            if symmetric and a0 == b0:
                # a point's distance to itself is exactly 0, whatever the rounding
                np.fill_diagonal(d2, 0.0)
            s = float(np.sqrt(d2).sum())
            total += s if (not symmetric or a0 == b0) else 2.0 * s
    return total / (a.shape[0] * b.shape[0])
