"""Every sketch's bytes: round trip, and FormatError (never another exception) on bad bytes."""

from __future__ import annotations

import numpy as np
import pytest

from cudrift.errors import FormatError
from cudrift.sketches import _format
from cudrift.sketches.categorical import CategoryCounts
from cudrift.sketches.column import CategoricalColumnProfile, NumericColumnProfile
from cudrift.sketches.histogram import Histogram
from cudrift.sketches.moments import Moments
from cudrift.sketches.quantiles import QuantileSketch
from cudrift.sketches.sample import Sample


def _examples(rng):
    x = rng.standard_normal(300)
    return {
        Moments: Moments.empty().update(x),
        Histogram: Histogram.empty([-1.0, 0.0, 1.0]).update(x),
        QuantileSketch: QuantileSketch.empty(8).update(x).update(x[:50]),
        Sample: Sample.empty(10, 3).update(x),
        CategoryCounts: CategoryCounts.empty(3).update(rng.integers(0, 6, 100)),
        NumericColumnProfile: NumericColumnProfile.empty(edges=[0.0, 1.0], quantile_k=8, sample_size=5).update(x),
        CategoricalColumnProfile: CategoricalColumnProfile.empty(reference_categories={"a"}).update(["a", "b"]),
    }


CLASSES = [Moments, Histogram, QuantileSketch, Sample, CategoryCounts, NumericColumnProfile, CategoricalColumnProfile]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_round_trip_truncation_and_bit_flips(cls, rng):
    sketch = _examples(rng)[cls]
    data = sketch.to_bytes()
    back = cls.from_bytes(data)
    assert back == sketch and back.to_bytes() == data
    assert cls.from_bytes(bytearray(data)) == sketch
    for cut in sorted(set(rng.integers(0, len(data), 40).tolist()) | {0, 3, 8, len(data) - 1}):
        with pytest.raises(FormatError):
            cls.from_bytes(data[:cut])
    for pos in rng.integers(0, len(data), 40).tolist():
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(FormatError):
            cls.from_bytes(bytes(bad))
    with pytest.raises(FormatError):
        cls.from_bytes(data + b"\x00")
    with pytest.raises(FormatError):
        cls.from_bytes("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_foreign_kinds_and_future_versions(cls, rng):
    examples = _examples(rng)
    own = examples[cls].to_bytes()
    kind, version = _format.peek_kind(own)
    # (a sample of a nonzero seed is written as version 2: its seed's key, see cudrift.sketches.sample; moments
    # as version 2 since their mean's remainder)
    want = 2 if kind == "cudrift.moments" or (kind == "cudrift.sample" and examples[cls].seed) else 1
    assert version == want and kind.startswith("cudrift.")
    for other_cls, other in examples.items():
        if other_cls is not cls:
            with pytest.raises(FormatError, match=kind):
                cls.from_bytes(other.to_bytes())
    _, meta, arrays = _format.unpack(own, kind, version)
    future = 3 if kind in ("cudrift.sample", "cudrift.moments") else 2
    with pytest.raises(FormatError, match=f"version {future}"):
        cls.from_bytes(_format.pack(kind, future, meta, arrays))
    with pytest.raises(FormatError):
        cls.from_bytes(_format.pack(kind, 1, {}, {}))


def test_kinds_are_distinct(rng):
    kinds = {_format.peek_kind(s.to_bytes())[0] for s in _examples(rng).values()}
    assert len(kinds) == len(CLASSES)


def _more(cls):
    """A batch that ``cls.update`` takes."""
    if cls is CategoricalColumnProfile:
        return np.array(["z"], dtype=object)
    return np.array([7]) if cls is CategoryCounts else np.array([0.5, 2.0])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_copy_is_independent(cls, rng):
    sketch = _examples(rng)[cls]
    before = sketch.to_bytes()
    dup = sketch.copy()
    assert dup == sketch
    dup.update(_more(cls))
    assert sketch.to_bytes() == before


def test_checksummed_nonsense_is_a_format_error():
    """Bytes whose checksum is right but whose content is not (a writer's bug, a crafted file): FormatError."""
    import cudrift
    from cudrift import Profile

    rng = np.random.default_rng(0)
    prof = cudrift.profile({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    window = cudrift.profile({"x": rng.normal(size=50), "c": rng.choice(["a", "b"], 50)}, like=prof)
    version, meta, arrays = _format.unpack(window.to_bytes(), "cudrift.profile", 99)

    def repacked(meta=meta, arrays=arrays):
        return _format.pack("cudrift.profile", version, meta, arrays)

    with pytest.raises(FormatError, match="corrupted profile metadata"):
        Profile.from_bytes(repacked({**meta, "n_rows": float("inf")}))
    # n_rows that int() made something of (True, 3.7, "100"), fewer rows than the columns count, a repeated name
    for n_rows in (True, 3.7, "100", 49):
        with pytest.raises(FormatError, match="corrupted profile metadata.*n_rows"):
            Profile.from_bytes(repacked({**meta, "n_rows": n_rows}))
    with pytest.raises(FormatError, match="repeated column names"):
        Profile.from_bytes(repacked({**meta, "columns": [meta["columns"][0]] * 2}))
    assert Profile.from_bytes(repacked()).n_rows == 50
    # the categorical column's reference dictionary with a key type that is not a string
    i = meta["columns"].index("c")
    cv, cmeta, carrays = _format.unpack(arrays[f"c{i}"].tobytes(), "cudrift.column.categorical", 99)
    cmeta = {**cmeta, "reference": {**cmeta["reference"], "types": [[]] * len(cmeta["reference"]["types"])}}
    bad = np.frombuffer(_format.pack("cudrift.column.categorical", cv, cmeta, carrays), dtype=np.uint8)
    with pytest.raises(FormatError):
        Profile.from_bytes(repacked(arrays={**arrays, f"c{i}": bad}))


def _raw_pack(kind, meta_json, arrays=(), container_version=1, version=1):
    """Container bytes with a valid CRC around whatever header, meta and array records are given: what
    :func:`_format.pack` cannot write (``arrays``: ``(name, dtype str, shape, raw bytes)``)."""
    import struct
    import zlib

    kb = kind.encode()
    out = bytearray(_format.MAGIC) + struct.pack("<HH", container_version, len(kb)) + kb + struct.pack("<H", version)
    out += struct.pack("<I", len(meta_json)) + meta_json + struct.pack("<I", len(arrays))
    for name, dtype, shape, raw in arrays:
        out += struct.pack("<H", len(name)) + name.encode() + struct.pack("<B", len(dtype)) + dtype.encode()
        out += struct.pack(f"<B{len(shape)}Q", len(shape), *shape) + struct.pack("<Q", len(raw)) + raw
    return bytes(out + struct.pack("<I", zlib.crc32(out)))


@pytest.mark.parametrize("dtype, shape, raw, match", [
    ("<f8", (2**32, 2**32), b"", "needs 147573952589676412928"),  # wrapped to 0 in int64
    ("<f8", (2**63, 2), b"", "needs"),
    ("<u1", (0, 2**63), b"", "too large"),  # 0 bytes are right, but numpy cannot make the shape
    ("<u1", (1,) * 33, b"\x00", "33 dimensions"),
    ("|S0", (3,), b"", "refusing array 'a' of dtype"),
], ids=["wraps-int64", "past-intp", "empty-past-intp", "ndim", "itemsize-0"])
def test_impossible_array_records_are_format_errors(dtype, shape, raw, match):
    with pytest.raises(FormatError, match=match):
        _format.unpack(_raw_pack("cudrift.test", b"{}", [("a", dtype, shape, raw)]), "cudrift.test", 1)


@pytest.mark.parametrize("meta, match", [
    (b"[" * 100_000, "recursion"),
    (b"1" * 5000, "digits"),  # past Python's limit on an int's digits: a ValueError, not a JSONDecodeError
    (b"[1, 2]", "not an object"),
    (b'{"a": 1', "corrupted cudrift.test metadata"),
])
def test_bad_meta_json_is_a_format_error(meta, match):
    with pytest.raises(FormatError, match=match):
        _format.unpack(_raw_pack("cudrift.test", meta), "cudrift.test", 1)


def test_a_flipped_header_bit_is_corruption_not_a_future_container_or_a_foreign_kind():
    data = Moments.empty().update(np.arange(5.0)).to_bytes()
    for pos, bit in ((4, 1), (4, 2), (9, 4), (12, 1)):  # container version, then the kind (b"cudrift.moments")
        bad = bytearray(data)
        bad[pos] ^= bit
        with pytest.raises(FormatError, match="CRC mismatch"):
            Moments.from_bytes(bytes(bad))
    # bytes whose CRC holds are what their header says
    with pytest.raises(FormatError, match="unsupported container version 2"):
        Moments.from_bytes(_raw_pack("cudrift.moments", b"{}", container_version=2))
    with pytest.raises(FormatError, match="expected cudrift.moments bytes, got cudrift.momentz bytes"):
        Moments.from_bytes(_raw_pack("cudrift.momentz", b"{}"))


_BAD_SCALARS = [10**400, 2**64, -1, 1.5, float("nan"), float("inf"), None, True, "x", [], {}, [1, 2]]


def _crafted(data):
    """``(what, bytes)``: ``data`` re-packed, CRC and all, with one meta value or array made wrong."""
    kind, version = _format.peek_kind(data)
    _, meta, arrays = _format.unpack(data, kind, version)

    def packed(m=meta, a=arrays):
        return _format.pack(kind, version, m, a)

    for key in meta:
        yield f"meta {key} missing", packed({k: v for k, v in meta.items() if k != key})
        for v in _BAD_SCALARS:
            yield f"meta {key}={str(v)[:20]}", packed({**meta, key: v})
    for name, a in arrays.items():
        others = {k: v for k, v in arrays.items() if k != name}
        variants = {
            "missing": None, "2-D row": a[None], "2-D column": a.reshape(-1, 1), "0-D": a[:1].reshape(()),
            "one short": a[:-1], "one more": np.concatenate([a, a[:1]]), "empty": a[:0],
            "float64": a.astype(np.float64), "int64": a.astype(np.int64), "uint64": a.astype(np.uint64),
            "int32": a.astype(np.int32), "float32": a.astype(np.float32), "bool": a.astype(bool),
        }
        for what, v in variants.items():
            yield f"array {name} {what}", packed(a=others if v is None else {**others, name: v})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_crafted_payloads_with_a_valid_crc_are_format_errors_or_usable(cls, rng):
    """Each meta value and array of each sketch replaced by a wrong one (a crafted file, a writer's bug): the
    bytes load as FormatError, never another exception, or as a sketch that serializes and merges."""
    from cudrift.errors import IncompatibleSketchError

    sketch = _examples(rng)[cls]
    wrong = []
    for what, data in _crafted(sketch.to_bytes()):
        try:
            back = cls.from_bytes(data)
        except FormatError:
            continue
        except Exception as exc:  # noqa: BLE001 - the contract under test
            wrong.append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        uses = [_round_trips, lambda s: s.merge(s.copy()),
                lambda s: s.copy().update(_more(cls)), sketch.merge]
        for use in uses:
            try:
                use(back)
            except IncompatibleSketchError:  # (settings of its own: it merges with none of the example's)
                pass
            except Exception as exc:  # noqa: BLE001
                wrong.append(f"{what} loaded, then: {type(exc).__name__}: {exc}")
    assert not wrong, "\n".join(wrong)


def _round_trips(sketch) -> None:
    back = type(sketch).from_bytes(sketch.to_bytes())
    assert back == sketch, f"{back!r} != {sketch!r}"


_WRAPPING = np.full(4, 2**62, dtype=np.int64)  # counts whose int64 sum wraps to 0


# (class, what is wrong, the change to the example's (meta, arrays), what the FormatError says)
_CRAFTED = [
    (Histogram, "edges of another dtype", lambda m, a: (m, {**a, "edges": a["edges"].astype(np.int64)}),
     "edges of dtype int64"),
    (Histogram, "counts past int64", lambda m, a: (m, {**a, "counts": _WRAPPING}), "past int64"),
    (Sample, "a size past a float", lambda m, a: ({**m, "size": 10**400}, a), "size"),
    (Sample, "n_seen a bool", lambda m, a: ({**m, "n_seen": True}, a), "n_seen"),
    (Sample, "base a bool", lambda m, a: ({**m, "base": True}, a), "base"),
    (Sample, "fewer values than min(size, n_seen)",
     lambda m, a: (m, {k: v[:-1] for k, v in a.items()}), "inconsistent sample"),
    (CategoryCounts, "counts whose int64 sum wraps",
     lambda m, a: ({**m, "key_type": "int", "keys": [0, 1, 2, 3], "max_categories": 4, "n": m["folded"]},
                   {"counts": _WRAPPING}), "inconsistent counts"),
    (CategoryCounts, "n past int64",
     lambda m, a: ({**m, "n": m["n"] - m["folded"] + 2**63, "folded": 2**63}, a), "inconsistent counts"),
]


@pytest.mark.parametrize("cls, what, change, match", _CRAFTED, ids=[f"{c.__name__}: {w}" for c, w, _, _ in _CRAFTED])
def test_crafted_payloads_that_loaded_or_raised_another_error(cls, what, change, match, rng):
    """Payloads with a valid CRC that loaded as a sketch that was wrong (or failed later), or raised another
    exception than FormatError."""
    data = _examples(rng)[cls].to_bytes()
    kind, version = _format.peek_kind(data)
    _, meta, arrays = _format.unpack(data, kind, version)
    with pytest.raises(FormatError, match=match):
        cls.from_bytes(_format.pack(kind, version, *change(meta, arrays)))
