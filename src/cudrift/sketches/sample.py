"""Bounded deterministic sample: a bottom-k sketch over hash priorities.

Every value gets the priority ``splitmix64(key ^ i)`` where ``i`` is its
global index (the number of values the sketch had seen before the batch plus
its position in the batch) and ``key = splitmix64(seed) ^ splitmix64(0)``:
0 for the default seed 0, a scrambled 64-bit number for any other, so that
different seeds draw independent samples. (Samples written before payload
version 2 used ``key = seed``, under which seeds 1, 2, 3 drew seed 0's
positions XOR-shifted, nearly the same sample; they still load and keep
that key, and are refused in merges with samples of the same seed made
since, see :meth:`Sample.merge`.) The sample keeps the ``size`` values with the
smallest priorities; equal priorities are ordered by a hash of the value,
then the value. Priorities are a bijective hash of distinct indices, so
within one stream the sample is a uniform random subset of the positions,
chosen without any random state: the same input in the same order always
gives the same sample, however it is cut into batches.

Merging keeps the ``size`` smallest of the union, which is exactly
associative and commutative, with ``empty()`` as identity.

A part that extends a stream continues its indices
(:meth:`Sample.continuing`; ``cudrift.profile(..., like=p)`` and
``Profile.update`` do this for each column), so a window built from many
small parts samples like one built in one pass. Shards that do not continue
each other count their indices from 0 and select the *same positions*, ties
broken by the hash of the value: each value still enters with the same
probability, but the merged sample is stratified by position, which matters
when row position carries meaning shared by the shards (every shard sorted
by time of day, say), and shards of one row each of a column with few
distinct values keep or drop whole groups of equal values.

``splitmix64`` here is the SplitMix64 output function applied to ``x``:
``z = x + 0x9E3779B97F4A7C15``, then ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31`` (mod 2**64).
"""

from __future__ import annotations

import math

import numpy as np

from cudrift.errors import FormatError, IncompatibleSketchError
from cudrift.sketches import _format
from cudrift.sketches._common import as_numeric_1d, require_finite

__all__ = ["Sample", "seed_key", "splitmix64"]

KIND = "cudrift.sample"
VERSION = 2
DEFAULT_SIZE = 10_000

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_U64 = 1 << 64
# Hash in blocks that stay in L2 cache: about 1.5x faster than whole-array
# passes for million-row batches.
_BLOCK = 1 << 15
# The first selection pass expects k + _SIGMAS * sqrt(k) + _SLACK candidates;
# falling short of k (a 4-sigma event) only costs a second pass.
_SIGMAS = 4.0
_SLACK = 16.0


def _mix_inplace(z: np.ndarray, tmp: np.ndarray) -> None:
    np.add(z, _GAMMA, out=z)
    np.right_shift(z, _S30, out=tmp)
    np.bitwise_xor(z, tmp, out=z)
    np.multiply(z, _M1, out=z)
    np.right_shift(z, _S27, out=tmp)
    np.bitwise_xor(z, tmp, out=z)
    np.multiply(z, _M2, out=z)
    np.right_shift(z, _S31, out=tmp)
    np.bitwise_xor(z, tmp, out=z)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 output function of each uint64 in ``x`` (vectorized, wraps mod 2**64).

    Examples
    --------
    >>> int(splitmix64(np.array([0], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    True
    """
    z = np.array(x, dtype=np.uint64)
    _mix_inplace(z, np.empty_like(z))
    return z


def seed_key(seed: int) -> int:
    """The key a sample of ``seed`` hashes indices with: ``splitmix64(seed) ^ splitmix64(0)`` (0 for seed 0).

    Examples
    --------
    >>> seed_key(0), seed_key(1) != 1
    (0, True)
    """
    both = splitmix64(np.array([seed, 0], dtype=np.uint64))
    return int(both[0] ^ both[1])


def _candidates(start: int, m: int, key: int, below: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``[0, m)`` and priorities (``splitmix64(key ^ index)``) of indices ``start + pos`` with
    priority ``< below``.

    ``below=None`` keeps every position.
    """
    block = min(_BLOCK, m)
    base = np.arange(block, dtype=np.uint64)
    z = np.empty(block, dtype=np.uint64)
    tmp = np.empty(block, dtype=np.uint64)
    mask = np.empty(block, dtype=bool)
    seed64 = np.uint64(key)
    thr = None if below is None or below >= _U64 else np.uint64(below)
    pos_parts, pri_parts = [], []
    for s0 in range(0, m, block):
        b = min(block, m - s0)
        zz, tt = z[:b], tmp[:b]
        # Indices wrap mod 2**64 like the hash itself.
        np.add(base[:b], np.uint64((start + s0) % _U64), out=zz)
        np.bitwise_xor(zz, seed64, out=zz)
        _mix_inplace(zz, tt)
        if thr is None:
            pos_parts.append(np.arange(s0, s0 + b, dtype=np.int64))
            pri_parts.append(zz.copy())
        else:
            mm = mask[:b]
            np.less(zz, thr, out=mm)
            keep = np.flatnonzero(mm)
            pos_parts.append(keep + s0)
            pri_parts.append(zz[keep])
    return np.concatenate(pos_parts), np.concatenate(pri_parts)


def _bottom(pri: np.ndarray, val: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest entries by priority, then a hash of the value, then the value."""
    order = np.argsort(pri, kind="stable")
    sp = pri[order]
    if sp.size > 1 and np.any(sp[1:] == sp[:-1]):
        # Equal priorities (the same index in two merged shards): break ties
        # so the result does not depend on argument order, by a hash of the
        # value first, which favours no range of values.
        order = np.lexsort((val, splitmix64(val.view(np.uint64)), pri))
    order = order[:k]
    return pri[order], val[order]


def _check_settings(size: object, seed: object) -> tuple[int, int]:
    # (no array holds 2**63 values, and past a float's range a size fails the first update's sqrt)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= int(size) < 2**63:
        raise ValueError(f"Invalid value for size: {size!r} (expected an integer in [1, 2**63))")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < _U64:
        raise ValueError(f"Invalid value for seed: {seed!r} (expected an integer in [0, 2**64))")
    return int(size), int(seed)


def _check_skip(skip: object) -> int:
    # (a negative skip could start the indices below 0: bytes that save but do not load)
    if isinstance(skip, bool) or not isinstance(skip, (int, np.integer)) or int(skip) < 0:
        raise ValueError(f"Invalid value for skip: {skip!r} (expected an integer >= 0)")
    return int(skip)


class Sample:
    """Deterministic bottom-k sample of at most ``size`` values.

    ``len(sample)`` is the number of values held (``min(size, n_seen)``).
    An empty sample holds no values: :attr:`values` is an empty float64 array
    and :attr:`n_seen` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> s = Sample.empty(size=3, seed=7).update(np.arange(100.0))
    >>> len(s), s.n_seen
    (3, 100)
    >>> set(s.values) <= set(np.arange(100.0))
    True
    """

    __slots__ = ("_size", "_seed", "_n_seen", "_pri", "_val", "_base", "_key")

    def __init__(self, size: int, seed: int, n_seen: int, priorities: np.ndarray, values: np.ndarray,
                 base: int = 0, key: int | None = None) -> None:
        self._size = size
        self._seed = seed
        # what indices are hashed with: seed_key(seed), or the seed itself in a sample read from version-1 bytes
        self._key = seed_key(seed) if key is None else key
        self._n_seen = n_seen
        self._pri = priorities
        self._val = values
        # index of this sample's first value in its stream (see continuing())
        self._base = base

    @classmethod
    def empty(cls, size: int = DEFAULT_SIZE, seed: int = 0) -> "Sample":
        """Sample of no values.

        Parameters
        ----------
        size
            Most values kept.
        seed
            Hash seed in ``[0, 2**64)``; sketches merge only with equal seeds.
        """
        size, seed = _check_settings(size, seed)
        return cls(size, seed, 0, np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float64))

    def continuing(self, skip: int = 0) -> "Sample":
        """An empty sample with this one's settings whose indices continue this one's, ``skip`` indices on.

        Merged into this sample, it gives what updating this sample with the
        same batches would: use it for a part that extends a stream. With a
        ``skip`` of at least the values another part of the stream will take,
        the two parts draw no index twice.

        Raises
        ------
        ValueError
            If ``skip`` is not an integer >= 0.
        """
        return Sample(self._size, self._seed, 0, np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float64),
                      self._base + self._n_seen + _check_skip(skip), self._key)

    @property
    def _start(self) -> int:
        """Index of the next value offered."""
        return self._base + self._n_seen

    def update(self, values: np.ndarray) -> "Sample":
        """Offer a batch of finite values in their original order; returns ``self``.

        Raises
        ------
        ValueError
            If a value is NaN or infinite.
        """
        x = as_numeric_1d(values, "Sample.update")
        require_finite(x, "Sample.update")
        return self._update_trusted(x)

    def _update_trusted(self, x: np.ndarray) -> "Sample":
        """Offer a finite numeric batch without validation (column profile path)."""
        m = x.size
        if m == 0:
            return self
        k = self._size
        # Only batch values below the current k-th priority can enter a full
        # sample; with room left, a threshold that passes about k + 4 sqrt(k)
        # values keeps the selection work near k instead of m.
        below = int(self._pri[-1]) + 1 if self._pri.size == k else None
        guess = (k + _SIGMAS * math.sqrt(k) + _SLACK) / m
        estimated = max(0, int(guess * _U64)) if guess < 1.0 else None
        if estimated is not None and (below is None or estimated < below):
            pos, pri = _candidates(self._start, m, self._key, estimated)
            if pos.size < k:
                # Fewer than k values below the guess: the answer may need
                # values above it, so select again with the exact limit.
                pos, pri = _candidates(self._start, m, self._key, below)
        else:
            pos, pri = _candidates(self._start, m, self._key, below)
        # +0.0 maps -0.0 to +0.0 so that ties by value never depend on order.
        val = x[pos].astype(np.float64) + 0.0
        self._pri, self._val = _bottom(np.concatenate((self._pri, pri)), np.concatenate((self._val, val)), k)
        self._n_seen += m
        return self

    # monoid ---------------------------------------------------------------
    def merge(self, other: "Sample") -> "Sample":
        """New sample: the ``size`` smallest ``(priority, value)`` of both; inputs unchanged.

        Raises
        ------
        IncompatibleSketchError
            If ``size`` or ``seed`` differ; the message names both settings.
        """
        if not isinstance(other, Sample):
            raise TypeError(f"cannot merge Sample with {type(other).__name__}")
        if (self._size, self._seed) != (other._size, other._seed):
            raise IncompatibleSketchError(
                f"cannot merge samples with different settings: size={self._size}, seed={self._seed} "
                f"vs size={other._size}, seed={other._seed}"
            )
        if self._key != other._key:
            raise IncompatibleSketchError(
                f"cannot merge samples of seed={self._seed} hashed two ways: one was written by a cudrift "
                "before sample payload version 2, which hashed positions with the seed itself; profile that "
                "data again to merge it (seed 0 samples are the same in both)"
            )
        pri, val = _bottom(np.concatenate((self._pri, other._pri)), np.concatenate((self._val, other._val)), self._size)
        # the first index of the two (an empty side has none: empty() stays the identity); of two empty ones,
        # the one further on, so that empty() + s.continuing() continues where s did (it restarted at 0)
        base = min([s._base for s in (self, other) if s._n_seen] or [max(self._base, other._base)])
        return Sample(self._size, self._seed, self._n_seen + other._n_seen, pri, val, base, self._key)

    def __add__(self, other: "Sample") -> "Sample":
        return self.merge(other)

    def copy(self) -> "Sample":
        """Independent copy."""
        return Sample(self._size, self._seed, self._n_seen, self._pri.copy(), self._val.copy(), self._base,
                      self._key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sample):
            return NotImplemented
        return (
            (self._size, self._seed, self._n_seen, self._base, self._key)
            == (other._size, other._seed, other._n_seen, other._base, other._key)
            and np.array_equal(self._pri, other._pri)
            and np.array_equal(self._val, other._val)
        )

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return int(self._val.size)

    def __repr__(self) -> str:
        return f"Sample(size={self._size}, seed={self._seed}, held={len(self)}, n_seen={self._n_seen})"

    # queries --------------------------------------------------------------
    @property
    def size(self) -> int:
        """Most values kept (the setting)."""
        return self._size

    @property
    def seed(self) -> int:
        """Hash seed (the setting)."""
        return self._seed

    @property
    def n_seen(self) -> int:
        """Values offered so far, over every merged sample."""
        return self._n_seen

    @property
    def values(self) -> np.ndarray:
        """The sample (float64) in priority order (a copy)."""
        return self._val.copy()

    @property
    def priorities(self) -> np.ndarray:
        """The uint64 priorities of :attr:`values`, ascending (a copy)."""
        return self._pri.copy()

    # serialization --------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned, CRC-checked bytes (kind ``"cudrift.sample"``): version 2, or 1 where the key is the seed
        itself (seed 0, whose key is 0 either way, and samples read from version-1 bytes), which version 1 means
        and earlier cudrift reads."""
        meta = {"size": self._size, "seed": self._seed, "n_seen": self._n_seen}
        if self._base:
            meta["base"] = self._base  # (absent in bytes written before it existed: 0)
        version = 1 if self._key == self._seed else VERSION
        return _format.pack(KIND, version, meta, {"priorities": self._pri, "values": self._val})

    @classmethod
    def from_bytes(cls, data: bytes) -> "Sample":
        """Read bytes written by :meth:`to_bytes`.

        Raises
        ------
        FormatError
            If the bytes are truncated, corrupted, foreign or inconsistent.
        """
        version, meta, arrays = _format.unpack(data, KIND, VERSION)
        try:
            size, seed = _check_settings(meta["size"], meta["seed"])
            n_seen = meta["n_seen"]
            base = meta.get("base", 0)
            pri, val = arrays["priorities"], arrays["values"]
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"corrupted {KIND} bytes: {exc!r}") from None
        if not all(_format.json_count(v, math.inf) for v in (n_seen, base)):  # (skip, hence base, has no bound)
            raise FormatError(f"corrupted {KIND} bytes: bad n_seen {n_seen!r} or base {base!r}")
        # a sample holds min(size, n_seen) values (update and merge keep the smallest of all they are offered)
        if (
            pri.dtype != np.uint64
            or val.dtype != np.float64
            or pri.shape != val.shape
            or pri.ndim != 1
            or pri.size != min(size, n_seen)
            or not np.all(np.isfinite(val))
            or np.any(pri[1:] < pri[:-1])
        ):
            raise FormatError(
                f"corrupted {KIND} bytes: inconsistent sample (priorities {pri.dtype} {pri.shape}, "
                f"values {val.dtype} {val.shape}, size={size}, n_seen={n_seen})"
            )
        return cls(size, seed, n_seen, pri, val, base, seed if version == 1 else None)
