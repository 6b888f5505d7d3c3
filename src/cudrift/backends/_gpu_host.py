"""Host-side half of the GPU backend: plain NumPy, importable and tested on any machine.

The device computes per-batch pieces (counts, block moments, histogram
counts, a level-0 quantile summary, sample candidates, rank partial sums);
the functions here fold those pieces into the very objects the CPU path
builds (:class:`~cudrift.sketches.column.NumericColumnProfile`,
:class:`~cudrift.sketches.column.CategoricalColumnProfile`,
:class:`~cudrift.stats.TestResult`), following the CPU code step by step,
and plan how a host window is cut into pieces for the device. Nothing here
imports CuPy or Numba: the device side passes its results in as NumPy
arrays, or passes callables that fetch them.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, NamedTuple

import numpy as np

from cudrift.kernels._host import WANT_AD, WANT_CVM, WANT_DISTANCES, WANT_KS
from cudrift.sketches import sample as _sample
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile
from cudrift.sketches.histogram import Histogram, _precision
from cudrift.sketches.moments import Moments
from cudrift.sketches.quantiles import QuantileSketch, _add_stacks, _mk
from cudrift.stats import TestResult
from cudrift.stats._dist import (
    anderson_2samp_normalize,
    anderson_critical_values,
    anderson_pvalue,
    cvm_asymptotic_pvalue,
    ks_asymp_pvalue,
    ks_asymp_pvalues,
)
from cudrift.stats._validation import dropped_details
from cudrift.stats.univariate import CVM_EXACT_MAX, _normalizer, ks_asymptotic

__all__ = [
    "NumericParts",
    "absorb_numeric",
    "absorb_categorical",
    "sample_update",
    "histogram_thresholds",
    "add_histogram_bounds",
    "pack_edges",
    "sort_dtype",
    "plan_units",
    "group_units",
    "row_neighbours",
    "NEXT_COLUMN",
    "SAME_LINE",
    "LINE_BYTES",
    "plan_pieces",
    "stage_copy",
    "row_block",
    "stage_block",
    "TILE_BYTES",
    "int_code_offset",
    "RANK_TESTS",
    "RANK_WANT",
    "rank_want",
    "ks_pvalues",
    "finish_rank_test",
    "is_device_array",
]

#: Tests whose statistic the device computes from two sorted columns (``cudrift.kernels.rank``).
RANK_TESTS = ("ks", "wasserstein", "wasserstein_normalized", "energy_distance", "cramervonmises", "anderson")
#: The rank kernel's ``want`` bits each rank test needs (the kernel skips the rest).
RANK_WANT = {
    "ks": WANT_KS,
    "wasserstein": WANT_DISTANCES,
    "wasserstein_normalized": WANT_DISTANCES,
    "energy_distance": WANT_DISTANCES,
    "cramervonmises": WANT_CVM,
    "anderson": WANT_AD,
}


def rank_want(tests) -> int:
    """The ``want`` bits that serve every rank test in ``tests`` (one launch for all of them)."""
    bits = 0
    for t in tests:
        bits |= RANK_WANT.get(t, 0)
    return bits or WANT_KS


def ks_pvalues(stats: Sequence, n_a: Sequence[int], n_b: Sequence[int], tests: Sequence[str]) -> list[float | None]:
    """The two-sided KS p-values of a batch of rank statistics, in one vectorized call.

    Parameters
    ----------
    stats
        :class:`cudrift.kernels._host.RankStatistics`, one per column.
    n_a, n_b
        Each column's reference and current sample sizes.
    tests
        Each column's test.

    Returns
    -------
    list
        For the columns whose test is ``"ks"`` and whose p-value is
        asymptotic (:func:`ks_asymptotic`), the p-value that
        :func:`finish_rank_test` would form, from a single
        :func:`cudrift.stats._dist.ks_asymp_pvalues` call (identical to the
        per-column values) instead of one call per column; None for the
        others.

    Examples
    --------
    >>> from cudrift.kernels._host import RankStatistics
    >>> st = RankStatistics(0.02, 0.01, 0.02, 0.0, 0.0, 0.0, 0.0)
    >>> p = ks_pvalues([st, st], [20_000, 20_000], [20_000, 20_000], ["ks", "wasserstein"])
    >>> round(p[0], 6), p[1]
    (0.000662, None)
    """
    out: list[float | None] = [None] * len(stats)
    idx = [i for i, (t, a, b) in enumerate(zip(tests, n_a, n_b)) if t == "ks" and ks_asymptotic(a, b)]
    if idx:
        p = ks_asymp_pvalues([stats[i].ks for i in idx], [n_a[i] for i in idx], [n_b[i] for i in idx])
        for i, v in zip(idx, p):
            out[i] = float(v)
    return out


class NumericParts(NamedTuple):
    """What the device computed for one batch of one numeric column.

    Attributes
    ----------
    n_values
        Non-null values in the batch (NaN and infinities included).
    nulls
        Nulls the caller removed.
    nan, posinf, neginf
        Counts of NaN, ``+inf`` and ``-inf``.
    count, mean, m2, min, max
        Moments of the finite values (count 0: the rest is ignored).
    mean_lo
        The mean's remainder (``Moments.mean_lo``; last, with a default of 0.0).
    hist
        ``len(edges) + 1`` int64 histogram counts, or None when the column has no edges yet.
    summary
        The batch's level-0 quantile summary ``(values, lo, hi)``, or None without finite values.
    dtype
        The batch's input dtype, recorded when the column has none yet.
    """

    n_values: int
    nulls: int
    nan: int
    posinf: int
    neginf: int
    count: int
    mean: float
    m2: float
    min: float
    max: float
    hist: np.ndarray | None
    summary: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    dtype: str
    mean_lo: float = 0.0


def add_summary(q: QuantileSketch, summary: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Add one batch's level-0 summary to a quantile sketch, as ``_update_sorted_trusted`` does.

    Parameters
    ----------
    q
        The sketch, changed in place.
    summary
        ``(values, lo, hi)``: float64 / int64 / int64 arrays exactly as
        ``cudrift.sketches.quantiles._summarize_sorted`` returns them.
    """
    values, lo, hi = summary
    q._levels = _add_stacks(q._levels, [_mk(values, lo, hi)], q._k)
    q._n_batches += 1
    q._bounds = None


def absorb_numeric(col: NumericColumnProfile, parts: NumericParts) -> None:
    """Fold one batch's device results into a column profile (all but the sample).

    Follows :meth:`NumericColumnProfile.update` step by step, so that a
    profile fed this way equals one fed the raw batch: counts, histogram and
    quantile sketch exactly, moments to rounding (the device sums Welford
    blocks merged by Chan's formula, the CPU a shifted two-pass sum). The
    sample is updated separately by :func:`sample_update`.

    Examples
    --------
    >>> import numpy as np
    >>> col = NumericColumnProfile.empty(edges=[0.0, 1.0])
    >>> absorb_numeric(col, NumericParts(3, 1, 1, 0, 0, 2, 0.5, 0.5, 0.0, 1.0,
    ...                                  np.array([0, 1, 1], dtype=np.int64), None, "float64"))
    >>> col.count, col.null_count, col.nan_count, col.moments.count, col.histogram.counts.tolist()
    (4, 1, 1, 2, [0, 1, 1])
    """
    if col.dtype is None:
        col.dtype = parts.dtype
    col.count += parts.n_values + parts.nulls
    col.null_count += parts.nulls
    if parts.n_values == 0:
        return
    col.neginf_count += parts.neginf
    col.posinf_count += parts.posinf
    col.nan_count += parts.nan
    if parts.count:
        col.moments.absorb(Moments(int(parts.count), float(parts.mean), max(float(parts.m2), 0.0),
                                   float(parts.min) + 0.0, float(parts.max) + 0.0, float(parts.mean_lo)))
    if col.histogram is not None and parts.hist is not None:
        col.histogram._counts += parts.hist
    if parts.summary is not None:
        add_summary(col.quantiles, parts.summary)


def absorb_categorical(
    col: CategoricalColumnProfile, key_type: str | None, keys: list, counts: np.ndarray, n_values: int, nulls: int,
    name: str | None = None,
) -> None:
    """Fold one batch's category counts, made on the device, into a column profile.

    Parameters
    ----------
    col
        The profile, changed in place exactly as :meth:`CategoricalColumnProfile.update`
        changes it for the same batch.
    key_type, keys, counts
        What :func:`cudrift.sketches.categorical.count_categories` returns for the batch.
    n_values
        Keys in the batch (no nulls among them).
    nulls
        Nulls the caller removed.
    name
        Column name for error messages.
    """
    col._add_counted(key_type, keys, counts, n_values, nulls, 0, name)


def sample_update(
    sample: _sample.Sample,
    m: int,
    candidates: Callable[[int, int, int, int | None], tuple[np.ndarray, np.ndarray]],
    gather: Callable[[np.ndarray], np.ndarray],
) -> None:
    """Offer a batch of ``m`` finite values, held elsewhere, to a bottom-k sample.

    The decisions of :meth:`Sample._update_trusted` (which priority limit
    to select with, when to select again) taken on the host; the work on
    the batch is done by the two callables, so the values may stay on a
    device.

    Parameters
    ----------
    sample
        The sample, changed in place.
    m
        Finite values in the batch.
    candidates
        ``candidates(start, m, key, below)`` returns ``(positions,
        priorities)`` of the batch positions whose priority
        ``splitmix64(key ^ (start + position))`` is below ``below`` (all
        positions when ``below`` is None), in any order (the result does not
        depend on it), as ``cudrift.sketches.sample._candidates``.
    gather
        ``gather(positions)`` returns the batch's finite values at those
        positions (any float or integer dtype).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(50.0)
    >>> a = _sample.Sample.empty(size=5, seed=3)
    >>> sample_update(a, x.size, _sample._candidates, lambda pos: x[pos])
    >>> a == _sample.Sample.empty(size=5, seed=3).update(x)
    True
    """
    if m == 0:
        return
    k = sample._size
    below = int(sample._pri[-1]) + 1 if sample._pri.size == k else None
    guess = (k + _sample._SIGMAS * math.sqrt(k) + _sample._SLACK) / m
    estimated = max(0, int(guess * _sample._U64)) if guess < 1.0 else None
    start, key = sample._start, sample._key  # (the seed's key, see cudrift.sketches.sample.seed_key)
    if estimated is not None and (below is None or estimated < below):
        pos, pri = candidates(start, m, key, estimated)
        if pos.size < k:
            pos, pri = candidates(start, m, key, below)
    else:
        pos, pri = candidates(start, m, key, below)
    # +0.0 maps -0.0 to +0.0, as the CPU sample stores it.
    val = np.asarray(gather(pos)).astype(np.float64) + 0.0
    sample._pri, sample._val = _sample._bottom(
        np.concatenate((sample._pri, pri)), np.concatenate((sample._val, val)), k
    )
    sample._n_seen += m


def histogram_thresholds(h: Histogram, dtype: np.dtype, precision: Any = None) -> tuple[np.ndarray, float]:
    """Left thresholds and the closing edge with which ``h`` counts sorted data of ``dtype``.

    Data is counted at the precision its values are binned at: ``precision``
    (float32, float16: a float32 column kept sorted as float64, a float16 one
    widened to float32), else ``dtype``'s own (float32 data against the edges
    rounded to the nearest float32, see
    ``cudrift.sketches.histogram._narrow_thresholds``; other data against
    the float64 edges). Returns ``(left[:-1], last)`` for
    :func:`add_histogram_bounds`.
    """
    precision = precision or _precision(np.dtype(dtype))
    left, last = (h._edges, h._edges[-1]) if precision is None else h._thresholds(precision)
    return left[:-1], last


def add_histogram_bounds(h: Histogram, left_counts: np.ndarray, last_count: int, n: int) -> None:
    """Add the counts of a sorted batch of ``n`` values from its search results.

    ``left_counts[i] = #{x < left[i]}`` for the thresholds of
    :func:`histogram_thresholds` and ``last_count = #{x <= last}``: the
    bounds ``Histogram._update_sorted_trusted`` computes with
    ``np.searchsorted``.
    """
    bounds = np.empty(h._counts.size + 1, dtype=np.int64)
    bounds[0] = 0
    bounds[1:-2] = np.asarray(left_counts, dtype=np.int64)
    bounds[-2] = int(last_count)
    bounds[-1] = int(n)
    h._counts += np.diff(bounds)


def pack_edges(edge_list: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column edges (or None) as the profile kernel takes them.

    Returns
    -------
    tuple of numpy.ndarray
        ``(edges, n_edges, uniform)``: ``(cols, max_edges)`` float64 padded
        with zeros (at least one column wide), ``(cols,)`` int64 edge counts
        (0: no histogram) and ``(cols,)`` uint8, 1 where the edges are exactly
        ``numpy.linspace`` of their ends (the kernel then estimates the bin
        in closed form; the answer is the same either way).

    Examples
    --------
    >>> e, n, u = pack_edges([np.array([0.0, 0.5, 1.0]), None])
    >>> e.shape, n.tolist(), u.tolist()
    ((2, 3), [3, 0], [1, 0])
    """
    width = max([len(e) for e in edge_list if e is not None] + [1])
    edges = np.zeros((len(edge_list), width))
    n_edges = np.zeros(len(edge_list), dtype=np.int64)
    uniform = np.zeros(len(edge_list), dtype=np.uint8)
    for c, e in enumerate(edge_list):
        if e is None:
            continue
        edges[c, : len(e)] = e
        n_edges[c] = len(e)
        # (infinite ends have no linspace: a float16 column's thresholds past 65504)
        uniform[c] = bool(np.isfinite(e[0]) and np.isfinite(e[-1])) and np.array_equal(
            e, np.linspace(e[0], e[-1], len(e)))
    return edges, n_edges, uniform


def sort_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a batch is sorted in: float32 for float16/float32, float64 otherwise (``as_float``)."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype in (np.float16, np.float32) else np.dtype(np.float64)


def plan_units(lengths: Sequence[int], max_rows: int, piece_rows: int | None = None) -> list[tuple[int, int, int]]:
    """Cut columns of the given lengths into units of at most ``max_rows`` values.

    Every unit becomes one batch of the column's sketches. A column is first
    cut into pieces of ``piece_rows`` (the CPU path's
    :data:`~cudrift.sketches.column.MAX_BATCH_ROWS`; None: no such cut), and
    each piece into equal parts of at most ``max_rows``: when a piece fits,
    it is one unit, and the column's sketches equal the CPU path's. An empty
    column still gets one (empty) unit, so its nulls are counted.

    Returns
    -------
    list of tuple
        ``(column index, start, stop)`` in column order.

    Examples
    --------
    >>> plan_units([10, 0, 25], 10)
    [(0, 0, 10), (1, 0, 0), (2, 0, 8), (2, 8, 16), (2, 16, 25)]
    >>> plan_units([25], 10, piece_rows=10)  # pieces of 10 rows, as the CPU path cuts
    [(0, 0, 10), (0, 10, 20), (0, 20, 25)]
    >>> plan_units([25], 4, piece_rows=10)  # each piece in equal parts
    [(0, 0, 3), (0, 3, 6), (0, 6, 10), (0, 10, 13), (0, 13, 16), (0, 16, 20), (0, 20, 22), (0, 22, 25)]
    """
    if max_rows < 1:
        raise ValueError(f"Invalid value for max_rows: {max_rows!r} (expected an integer >= 1)")
    if piece_rows is not None and piece_rows < 1:
        raise ValueError(f"Invalid value for piece_rows: {piece_rows!r} (expected an integer >= 1)")
    units = []
    for c, n in enumerate(lengths):
        n = int(n)
        step = int(piece_rows) if piece_rows is not None else max(n, 1)
        for a, b in [(a, min(a + step, n)) for a in range(0, n, step)] or [(0, 0)]:
            parts = max(1, -(-(b - a) // max_rows))
            cuts = [a + (i * (b - a)) // parts for i in range(parts + 1)]
            units.extend((c, cuts[i], cuts[i + 1]) for i in range(parts))
    return units


#: Bytes of a host cache line: the unit in which a row-major array's rows are read.
LINE_BYTES = 64


#: :func:`row_neighbours`' links: a column that follows the one before it in one row-major array, and one that
#: also starts inside that column's cache line.
NEXT_COLUMN, SAME_LINE = 1, 2


def row_neighbours(columns: Sequence[np.ndarray]) -> list[int]:
    """For each column, how it follows the one before it: 0 unrelated, :data:`NEXT_COLUMN` the next column of
    the same row-major host array, :data:`SAME_LINE` that and starting inside the same cache line (judged on
    the first row: exact when a row is a whole number of lines, as a 64-column float32 matrix's is).

    Staging reads whole lines: two groups that split a :data:`SAME_LINE` pair both read that line, for every
    row. :func:`group_units` keeps such pairs together.

    Examples
    --------
    >>> buf = np.zeros(4 * 32 + 16, dtype=np.float32)
    >>> m = buf[(-buf.ctypes.data % 64) // 4 :][: 4 * 32].reshape(4, 32)  # each row two whole lines
    >>> links = row_neighbours([m[:, j] for j in range(32)])
    >>> links[:3], links[15:18], links.count(SAME_LINE)
    ([0, 2, 2], [2, 1, 2], 30)
    >>> row_neighbours([np.zeros(4), np.zeros(4)]), row_neighbours([np.asfortranarray(m)[:, 0], m[:, 1]])
    ([0, 0], [0, 0])
    """
    out = [0] * len(columns)
    for c in range(1, len(columns)):
        a, b = columns[c - 1], columns[c]
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.ndim != 1 or b.ndim != 1:
            continue
        item = a.dtype.itemsize
        pa, pb = a.__array_interface__["data"][0], b.__array_interface__["data"][0]
        if (a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides and a.strides[0] > item
                and pb - pa == item):
            out[c] = SAME_LINE if pa // LINE_BYTES == pb // LINE_BYTES else NEXT_COLUMN
    return out


def group_units(units: Sequence[tuple[int, int, int]], lengths: Sequence[int], dtypes: Sequence[Any],
                max_rows: int, group_bytes: int,
                links: Sequence[int] | None = None) -> list[list[tuple[int, int, int]]]:
    """Gather :func:`plan_units`' whole-column units into groups that are staged and profiled together.

    A group is consecutive columns of one dtype and one length, at most
    ``max_rows`` values and ``group_bytes`` bytes in all (a single column
    may exceed ``group_bytes``): they are copied into one column-major
    device block and profiled by one launch, their moments merged and their
    summaries read back once. Several groups rather than one keep the copy
    of group g + 1 overlapping the work on group g. Parts of a cut column
    and empty columns stay alone.

    ``links`` (:func:`row_neighbours`): in a group of adjacent columns of one
    row-major array, a column that starts inside the last one's cache line
    joins the group past ``group_bytes`` (``max_rows`` still holds;
    ``group_bytes=0`` still means every column alone), so that the columns
    of a C-ordered matrix are grouped by whole lines and staging reads each
    line once (a group whose columns are not adjacent, such as every other
    column, is left as the budget makes it: it stays one evenly spaced
    :func:`row_block`). With ``group_bytes`` holding 6 of a 64-column
    float32 matrix's columns, each group had read the lines of its 6
    columns out of 16 for every row, 11 groups in all: each line was read
    2.75 to 5.5 times (the C-ordered host window took 3.9x the time of the
    same values column-major on an H200, 2026-11-27).

    Examples
    --------
    >>> group_units(plan_units([4, 4, 4, 4, 0, 9], 8), [4, 4, 4, 4, 0, 9], ["f4"] * 6, 8, 32)
    [[(0, 0, 4), (1, 0, 4)], [(2, 0, 4), (3, 0, 4)], [(4, 0, 0)], [(5, 0, 4)], [(5, 4, 9)]]
    >>> group_units(plan_units([4] * 4, 8), [4] * 4, ["f4"] * 4, 16, 16, [0, 2, 2, 1])
    [[(0, 0, 4), (1, 0, 4), (2, 0, 4)], [(3, 0, 4)]]
    """
    groups: list[list[tuple[int, int, int]]] = []
    rows = size = 0
    key = None
    run = False  # the open group is adjacent columns of one row-major array
    for c, a, b in units:
        n = int(lengths[c])
        whole = a == 0 and b == n and n > 0
        itemsize = np.dtype(dtypes[c]).itemsize
        link = links[c] if links is not None else 0
        if (whole and groups and key == (np.dtype(dtypes[c]), n) and rows + n <= max_rows
                and (size + n * itemsize <= group_bytes
                     or (group_bytes > 0 and run and link == SAME_LINE and groups[-1][-1][0] == c - 1))):
            groups[-1].append((c, a, b))
            run = run and link != 0 and groups[-1][-2][0] == c - 1
        else:
            groups.append([(c, a, b)])
            rows = size = 0
            run = whole
        rows += b - a
        size += (b - a) * itemsize
        key = (np.dtype(dtypes[c]), n) if whole else None
    return groups


def plan_pieces(n: int, itemsize: int, piece_bytes: int) -> list[tuple[int, int]]:
    """Row ranges of at most ``piece_bytes`` that cover ``n`` values: one pinned-buffer transfer each.

    Examples
    --------
    >>> plan_pieces(10, 4, 16)
    [(0, 4), (4, 8), (8, 10)]
    """
    rows = max(1, int(piece_bytes) // int(itemsize))
    return [(s, min(s + rows, n)) for s in range(0, n, rows)]


def row_block(columns: Sequence[np.ndarray]) -> np.ndarray | None:
    """The ``(rows, k)`` strided view that holds ``columns`` side by side, when they are evenly spaced columns of
    one row-major host array (``matrix[:, j0:j1]`` of a C-ordered matrix, or every ``s``-th column); else None.

    The staging then reads the group's rows a tile at a time (:func:`stage_block`): each row's values of the
    group share its cache lines, so reading them column by column, as separate strided columns, would fetch
    every line once per column (16 times over for 64 float32 columns). Contiguous columns (column-major data)
    and columns that are not evenly spaced get None: copying them one by one is already a plain copy, or the
    only way.

    Examples
    --------
    >>> m = np.arange(12.0).reshape(4, 3)
    >>> row_block([m[:, 0], m[:, 1]]).tolist()
    [[0.0, 1.0], [3.0, 4.0], [6.0, 7.0], [9.0, 10.0]]
    >>> row_block([m[:, 0], m[:, 2]]).shape, row_block([m[:, 1], m[:, 0]]) is None
    ((4, 2), True)
    >>> row_block([np.asfortranarray(m)[:, 0], np.asfortranarray(m)[:, 1]]) is None
    True
    """
    first = columns[0]
    k = len(columns)
    if k < 2 or first.ndim != 1 or first.shape[0] < 2:
        return None
    step = int(first.strides[0])
    item = first.dtype.itemsize
    ptrs = [c.__array_interface__["data"][0] for c in columns]
    gap = ptrs[1] - ptrs[0]
    if (step <= item or gap < item or gap * (k - 1) + item > step
            or any(c.shape != first.shape or c.dtype != first.dtype or c.strides != first.strides
                   or p - ptrs[0] != i * gap for i, (c, p) in enumerate(zip(columns, ptrs)))):
        return None
    # Element (r, j) of the view is at ptrs[0] + r * step + j * gap = ptrs[j] + r * step: column j's own r-th
    # value, whatever arrays the columns are views of (a memory-mapped matrix's columns each have their own).
    return np.lib.stride_tricks.as_strided(first, shape=(first.shape[0], k), strides=(step, gap), writeable=False)


#: Bytes of a :func:`row_block`'s rows (the cache lines its columns span) a staging thread copies at a time:
#: they stay in the core's cache while each of the group's columns is taken out of them.
TILE_BYTES = 256 << 10


def _in_parallel(copy, n: int, values: int, pool: Executor | None, parts: int) -> None:
    """``copy(a, b)`` over ``[0, n)``: in ``parts`` row ranges on ``pool`` when there are enough ``values``.

    NumPy releases the GIL while it copies plain numbers, so a few threads
    copy faster than one. Every range has finished before this returns, even
    when one failed (the caller reuses the buffer as soon as it does); the
    first failure is then raised.
    """
    if pool is None or values < (1 << 16) or parts <= 1:
        copy(0, n)
        return
    cuts = [(i * n) // parts for i in range(parts + 1)]
    futures = [pool.submit(copy, a, b) for a, b in zip(cuts[:-1], cuts[1:])]
    concurrent.futures.wait(futures)
    for f in futures:
        f.result()


def stage_block(dst: np.ndarray, src: np.ndarray, pool: Executor | None = None, parts: int = 4) -> None:
    """Copy a ``(rows, k)`` :func:`row_block` slice ``src`` into ``dst``, ``(k, rows)`` C-ordered (a pinned
    staging buffer: each column's rows contiguous), tile by tile, in parallel row ranges when a pool is given.
    """
    n, k = src.shape
    span = (k - 1) * int(src.strides[1]) + src.dtype.itemsize  # bytes of a row the group's columns span
    tile = max(64, TILE_BYTES // (64 * -(-span // 64) + 64))  # rows whose lines fit a tile (one more if unaligned)

    def rows(a: int, b: int) -> None:
        for t in range(a, b, tile):
            np.copyto(dst[:, t : min(b, t + tile)], src[t : min(b, t + tile)].T, casting="no")

    _in_parallel(rows, n, n * k, pool, parts)


def stage_copy(dst: np.ndarray, src: np.ndarray, pool: Executor | None = None, parts: int = 4) -> None:
    """Copy ``src`` into ``dst`` (a pinned staging buffer), in parallel slices when a pool is given."""

    def rows(a: int, b: int) -> None:
        np.copyto(dst[a:b], src[a:b], casting="no")

    _in_parallel(rows, src.shape[0], src.shape[0], pool, parts)


def int_code_offset(lo: int, hi: int, max_span: int) -> int | None:
    """Offset that turns integer keys in ``[lo, hi]`` into dense codes, or None when the span is too wide.

    Codes are ``key - offset`` in ``[0, hi - offset]``; non-negative keys
    are their own codes (offset 0) so that no shifted copy is made.

    Examples
    --------
    >>> int_code_offset(3, 9, 100), int_code_offset(-2, 5, 100), int_code_offset(0, 10**9, 100)
    (0, -2, None)
    """
    offset = 0 if lo >= 0 else lo
    return offset if hi - offset + 1 <= max_span else None


def finish_rank_test(
    test: str, stats, n_a: int, n_b: int, *, reference_std: float | None = None, distinct: bool = True,
    ks_pvalue: float | None = None,
) -> TestResult | None:
    """The detector's result for a rank test from the device's rank statistics, when they suffice.

    Parameters
    ----------
    test
        One of :data:`RANK_TESTS`.
    stats
        :class:`cudrift.kernels._host.RankStatistics` of the sorted reference
        and current column.
    n_a, n_b
        Sample sizes.
    reference_std
        Standard deviation of the reference (``wasserstein_normalized``).
    distinct
        Whether the pooled sample holds at least two distinct values.
    ks_pvalue
        For ``"ks"``, the asymptotic p-value when the caller computed it
        for a whole batch (:func:`ks_pvalues`); computed here when None.

    Returns
    -------
    TestResult or None
        The result the CPU ``*_sorted`` function returns (statistic within
        rounding, p-value from the same null-distribution function), or
        None when the CPU function needs the samples themselves (exact
        small-sample p-values) or would raise; the caller then runs it.
    """
    details = dropped_details((0, 0))
    if test == "ks":
        if not ks_asymptotic(n_a, n_b):
            return None
        d = float(stats.ks)
        details.update(statistic_sign=-1 if stats.ks_minus > stats.ks_plus else 1, pvalue_method="asymp")
        p = float(ks_asymp_pvalue(d, n_a, n_b, "two-sided") if ks_pvalue is None else ks_pvalue)
        return TestResult(d, p, "ks", n_a, n_b, 0.0, details)
    if test in ("wasserstein", "wasserstein_normalized"):
        w = float(stats.wasserstein)
        details["kind"] = "distance"
        if test == "wasserstein":
            return TestResult(w, None, "wasserstein", n_a, n_b, 0.0, details)
        if reference_std is None or not math.isfinite(reference_std):
            return None  # overflowed moments: the CPU function rescales the values themselves
        std = float(reference_std)
        norm = _normalizer(std)  # the CPU path's rule: a constant reference divides by 1
        details.update(reference_std=std, normalizer=norm)
        return TestResult(w / norm, None, "wasserstein_normalized", n_a, n_b, 0.0, details)
    if test == "energy_distance":
        details["kind"] = "distance"
        return TestResult(float(stats.energy), None, "energy_distance", n_a, n_b, 0.0, details)
    if test == "cramervonmises":
        if min(n_a, n_b) < 2 or max(n_a, n_b) <= CVM_EXACT_MAX:
            return None
        t = float(stats.cramervonmises)
        details["pvalue_method"] = "asymptotic"
        return TestResult(t, cvm_asymptotic_pvalue(t, n_a, n_b), "cramervonmises", n_a, n_b, 0.0, details)
    if test == "anderson":
        if n_a + n_b < 4 or not distinct:
            return None
        a2 = anderson_2samp_normalize(float(stats.anderson_a2kn), n_a, n_b)
        p, clipped = anderson_pvalue(a2)
        details.update(variant="midrank", pvalue_clipped=clipped,
                       critical_values=tuple(float(c) for c in anderson_critical_values()))
        return TestResult(a2, p, "anderson", n_a, n_b, 0.0, details)
    return None


# DLPack device types that a CUDA kernel can read: kDLCUDA and kDLCUDAManaged.
_DLPACK_CUDA = (2, 13)


def is_device_array(obj: object) -> bool:
    """Whether ``obj`` is array data a CUDA kernel can read in place.

    True for objects exporting ``__cuda_array_interface__`` (CuPy, Numba,
    PyTorch CUDA tensors, cuDF columns; Numba's mapped and managed arrays
    too, which are also NumPy arrays) and for DLPack exporters whose
    ``__dlpack_device__`` is CUDA or CUDA-managed memory; False for NumPy
    arrays and host DLPack exporters.

    Examples
    --------
    >>> import numpy as np
    >>> class Dev:
    ...     __cuda_array_interface__ = {"shape": (1,), "typestr": "<f4", "data": (0, False), "version": 3}
    >>> is_device_array(np.zeros(3)), is_device_array(Dev())
    (False, True)
    """
    if hasattr(obj, "__cuda_array_interface__"):
        return True
    if isinstance(obj, np.ndarray):
        return False  # host memory, whatever its DLPack export says
    device = getattr(obj, "__dlpack_device__", None)
    if device is None:
        return False
    try:
        return int(device()[0]) in _DLPACK_CUDA
    except Exception:  # a broken exporter is simply not device data
        return False
