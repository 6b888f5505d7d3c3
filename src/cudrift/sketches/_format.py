"""Versioned binary container shared by every sketch and by ``Profile``.

Layout (little endian)::

    b"CDRF"                      magic
    u16  container version       (``CONTAINER_VERSION``)
    u16  len(kind)  + kind        ascii, e.g. b"cudrift.moments"
    u16  payload format version   (per kind)
    u32  len(meta)  + meta        UTF-8 JSON object (settings, scalars)
    u32  number of arrays
    per array: u16 len(name) + name, u8 len(dtype) + dtype str (numpy ``.str``),
               u8 ndim, ndim * u64 shape, u64 nbytes, raw bytes
    u32  CRC32 of everything above

No pickle anywhere: only JSON scalars and plain numeric arrays (``object``
dtype is refused). Truncated, corrupted or foreign bytes raise
:class:`~cudrift.errors.FormatError` naming what was wrong.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from typing import Any

import numpy as np

from cudrift.errors import FormatError

#: One more than the largest count a sketch holds (int64's).
COUNT_LIMIT = 2**63


def json_count(v: object, limit: float = COUNT_LIMIT) -> bool:
    """Whether a meta value read from JSON is a count: an integer (a JSON ``true`` or ``1.0`` is none) in
    ``[0, limit)``."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit

MAGIC = b"CDRF"
CONTAINER_VERSION = 1
_ALLOWED_KINDS = set("biuf")  # bool, signed, unsigned, float; plus fixed bytes 'S'
_MAX_NDIM = 32  # numpy 1's limit (numpy 2 allows 64); cudrift itself writes 1-D arrays only


def pack(kind: str, version: int, meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """Serialize ``meta`` (JSON-able) and ``arrays`` under a kind tag and version."""
    out = bytearray()
    out += MAGIC
    out += struct.pack("<H", CONTAINER_VERSION)
    kb = kind.encode("ascii")
    out += struct.pack("<H", len(kb)) + kb
    out += struct.pack("<H", int(version))
    mb = json.dumps(meta, separators=(",", ":"), sort_keys=True, allow_nan=True).encode("utf-8")
    out += struct.pack("<I", len(mb)) + mb
    arrays = arrays or {}
    out += struct.pack("<I", len(arrays))
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        if a.dtype.kind not in _ALLOWED_KINDS and a.dtype.kind != "S":
            raise TypeError(f"cannot serialize array {name!r} of dtype {a.dtype}")
        if a.ndim > _MAX_NDIM:
            raise ValueError(f"cannot serialize array {name!r} of {a.ndim} dimensions (at most {_MAX_NDIM})")
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        nb = name.encode("utf-8")
        ds = a.dtype.str.encode("ascii")
        out += struct.pack("<H", len(nb)) + nb
        out += struct.pack("<B", len(ds)) + ds
        out += struct.pack("<B", a.ndim)
        out += struct.pack(f"<{a.ndim}Q", *a.shape)
        raw = a.tobytes()
        out += struct.pack("<Q", len(raw)) + raw
    out += struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes, kind: str):
        self.data = memoryview(data)
        self.pos = 0
        self.kind = kind

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(
                f"truncated {self.kind} bytes: needed {n} bytes for {what} at offset {self.pos}, "
                f"only {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def peek_kind(data: bytes) -> tuple[str, int]:
    """Return ``(kind, payload_version)`` of serialized bytes without checking the CRC."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    r = _Reader(bytes(data), "cudrift")
    if bytes(r.take(4, "magic")) != MAGIC:
        raise FormatError("not cudrift bytes: bad magic (expected b'CDRF')")
    (cv,) = r.unpack("<H", "container version")
    if cv != CONTAINER_VERSION:
        raise FormatError(f"unsupported container version {cv} (this cudrift reads {CONTAINER_VERSION})")
    (kl,) = r.unpack("<H", "kind length")
    kind = bytes(r.take(kl, "kind")).decode("ascii", errors="replace")
    (ver,) = r.unpack("<H", "payload version")
    return kind, ver


def unpack(data: bytes, kind: str, max_version: int) -> tuple[int, dict[str, Any], dict[str, np.ndarray]]:
    """Read bytes written by :func:`pack`, checking magic, kind, version and CRC.

    Returns ``(version, meta, arrays)``; arrays are fresh writable copies.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"expected bytes for {kind}, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError(f"not {kind} bytes: bad magic (expected b'CDRF', got {data[:4]!r})")
    if len(data) < 8:
        raise FormatError(f"truncated {kind} bytes: {len(data)} bytes")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    # The CRC first: a flipped bit in the container version or the kind is corruption, not a future
    # container or a foreign kind (those messages are for bytes whose CRC holds).
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise FormatError(f"corrupted or truncated {kind} bytes: CRC mismatch")
    got_kind, version = peek_kind(body)
    if got_kind != kind:
        raise FormatError(f"expected {kind} bytes, got {got_kind} bytes")
    if version > max_version or version < 1:
        raise FormatError(
            f"{kind} format version {version} is not supported (this cudrift reads versions 1..{max_version})"
        )
    r = _Reader(body, kind)
    r.take(4, "magic")
    r.unpack("<H", "container version")
    (kl,) = r.unpack("<H", "kind length")
    r.take(kl, "kind")
    r.unpack("<H", "payload version")
    (ml,) = r.unpack("<I", "meta length")
    try:
        meta = json.loads(bytes(r.take(ml, "meta")).decode("utf-8"))
    # (ValueError: bad UTF-8, bad JSON, an int past Python's digit limit; RecursionError: deep nesting)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"corrupted {kind} metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise FormatError(f"corrupted {kind} metadata: a JSON {type(meta).__name__}, not an object")
    (na,) = r.unpack("<I", "array count")
    arrays: dict[str, np.ndarray] = {}
    for _ in range(na):
        (nl,) = r.unpack("<H", "array name length")
        try:
            name = bytes(r.take(nl, "array name")).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"corrupted {kind} bytes: an array name is not UTF-8") from None
        (dl,) = r.unpack("<B", f"dtype length of {name!r}")
        raw_dtype = bytes(r.take(dl, f"dtype of {name!r}"))
        try:
            dstr = raw_dtype.decode("ascii")
            dtype = np.dtype(dstr)
        except (UnicodeDecodeError, TypeError, ValueError, SyntaxError):  # np.dtype("f8,,") raises SyntaxError
            raise FormatError(f"corrupted {kind} bytes: bad dtype {raw_dtype!r} for array {name!r}") from None
        # (numpy never makes arrays of itemsize 0: np.zeros(3, "S0") is "S1", so pack never writes one)
        if (dtype.kind not in _ALLOWED_KINDS and dtype.kind != "S") or dtype.itemsize == 0:
            raise FormatError(f"refusing array {name!r} of dtype {dtype} in {kind} bytes")
        (nd,) = r.unpack("<B", f"ndim of {name!r}")
        if nd > _MAX_NDIM:
            raise FormatError(f"corrupted {kind} bytes: array {name!r} has {nd} dimensions (at most {_MAX_NDIM})")
        shape = r.unpack(f"<{nd}Q", f"shape of {name!r}")
        (nb,) = r.unpack("<Q", f"size of {name!r}")
        expected = math.prod(shape) * dtype.itemsize  # Python ints: no wrap-around
        if nb != expected:
            raise FormatError(f"corrupted {kind} bytes: array {name!r} has {nb} bytes, shape {shape} needs {expected}")
        # numpy bounds the nonzero extents of an empty array too: (0, 2**63) cannot be made
        if math.prod(max(d, 1) for d in shape) * dtype.itemsize > np.iinfo(np.intp).max:
            raise FormatError(f"corrupted {kind} bytes: array {name!r} of shape {shape} is too large for numpy")
        raw = r.take(nb, f"array {name!r}")
        arrays[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if r.pos != len(body):
        raise FormatError(f"corrupted {kind} bytes: {len(body) - r.pos} trailing bytes")
    return version, meta, arrays
