"""The cache's value format: a small versioned header plus raw array bytes, never Python objects.

Layout of an encoded value::

    b"LOUP" | u8 format version | u32 header length (little endian) | header JSON | payload

The header names the dtype (from an allow-list), the shape, the codec, a checksum of the
header and payload and optional JSON metadata (for example the tokens of an attention map). Decoding
checks every one of these; any failure raises :class:`CodecError`, which the cache treats as
a miss, so a corrupted, truncated or hostile value is recomputed rather than trusted.

Codecs:

* ``raw``: the array's bytes as they are.
* ``zstd``: the same, zstd-compressed.
* ``f16-zstd``: float32 stored as float16 (relative error below 2**-11, about 4.9e-4).
* ``q8-zstd``: each map over the last two axes quantised to uint8 between its own minimum and
  maximum; the absolute error is at most (max - min) / 510, so at most 0.5/255 for attention
  probabilities, which lie in [0, 1].
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

MAGIC = b"LOUP"
FORMAT_VERSION = 1
ALLOWED_DTYPES = frozenset({"float32", "float16", "float64", "int32", "int64", "uint8"})
MAX_HEADER_BYTES = 1 << 20
# The largest array a value may claim: far above what Loupe stores (the attention of a 512-token
# text in a 12x12 model is 151 MB), and a bound on what a hostile header can make decode allocate.
MAX_ARRAY_BYTES = 1 << 31
MAX_DIMENSIONS = 32
Codec = Literal["raw", "zstd", "f16-zstd", "q8-zstd"]
_PREFIX = struct.Struct("<4sBI")


class CodecError(ValueError):
    """An encoded value failed a check; the cache treats it as a miss."""


@dataclass(frozen=True)
class Decoded:
    """A decoded value: the array and the metadata stored beside it."""

    array: npt.NDArray[Any]
    meta: dict[str, Any] = field(default_factory=dict)


def encode(array: npt.NDArray[Any], codec: Codec = "zstd", meta: dict[str, Any] | None = None) -> bytes:
    """Encode ``array`` (and JSON-able ``meta``) as bytes for the cache."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.name
    if dtype not in ALLOWED_DTYPES:
        raise CodecError(f"dtype {dtype} is not allowed in the cache")
    if codec == "raw":
        payload = array.tobytes()
    elif codec == "zstd":
        payload = _compress(array.tobytes())
    elif codec == "f16-zstd":
        payload = _compress(array.astype(np.float16).tobytes())
    elif codec == "q8-zstd":
        payload = _compress(_quantise(array))
    else:
        raise CodecError(f"unknown codec {codec!r}")
    header: dict[str, Any] = {"dtype": dtype, "shape": list(array.shape), "codec": codec, "meta": meta or {}}
    header["checksum"] = _checksum(header, payload)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes + payload


def decode(value: bytes) -> Decoded:
    """Decode bytes written by :func:`encode`; raise :class:`CodecError` on any mismatch."""
    if len(value) < _PREFIX.size:
        raise CodecError("value shorter than its prefix")
    magic, version, header_length = _PREFIX.unpack_from(value)
    if magic != MAGIC:
        raise CodecError("bad magic")
    if version != FORMAT_VERSION:
        raise CodecError(f"unsupported format version {version}")
    if header_length > MAX_HEADER_BYTES or _PREFIX.size + header_length > len(value):
        raise CodecError("header length out of range")
    header_end = _PREFIX.size + header_length
    try:
        header = json.loads(value[_PREFIX.size : header_end].decode("utf-8"))
        dtype = np.dtype(_allowed(header["dtype"]))
        shape = _shape(header["shape"])
        codec = header["codec"]
        checksum = str(header["checksum"])
        meta = header.get("meta") or {}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise CodecError(f"unreadable header: {exc}") from exc
    if not isinstance(meta, dict):
        raise CodecError("bad metadata")
    payload = value[header_end:]
    if _checksum(header, payload) != checksum:
        raise CodecError("checksum mismatch")
    count = math.prod(shape)  # Python ints: no int64 wrap-around
    if codec == "raw":
        array = _from_bytes(payload, dtype, count)
    elif codec == "zstd":
        array = _from_bytes(_decompress(payload, count * dtype.itemsize), dtype, count)
    elif codec == "f16-zstd":
        array = _from_bytes(_decompress(payload, count * 2), np.dtype(np.float16), count).astype(dtype)
    elif codec == "q8-zstd":
        array = _dequantise(payload, shape, dtype)
    else:
        raise CodecError(f"unknown codec {codec!r}")
    return Decoded(array=array.reshape(shape), meta=meta)


def _shape(value: object) -> tuple[int, ...]:
    """A header's shape: a short list of non-negative ints whose array fits MAX_ARRAY_BYTES."""
    if not isinstance(value, list) or len(value) > MAX_DIMENSIONS:
        raise CodecError("bad shape")
    if not all(type(n) is int and n >= 0 for n in value):  # not bool, float or str
        raise CodecError("bad shape")
    if math.prod(value) * 8 > MAX_ARRAY_BYTES:  # 8: the widest allowed dtype
        raise CodecError("shape too large")
    return tuple(value)


def _allowed(dtype: object) -> str:
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise CodecError(f"dtype {dtype!r} is not allowed")
    return dtype


def _checksum(header: dict[str, Any], payload: bytes) -> str:
    """blake2b over the header (its canonical JSON, less the checksum) and the payload.

    Covering the header too means a changed shape or metadata (an attention map's tokens) is
    caught, not only a changed array.
    """
    described = {key: value for key, value in header.items() if key != "checksum"}
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(described, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    digest.update(payload)
    return digest.hexdigest()


def _compress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _decompress(data: bytes, expected_size: int) -> bytes:
    import zstandard

    try:
        # zstandard ignores max_output_size when the frame declares its content size and allocates
        # whatever the frame claims, so a declared size must be the one the shape implies.
        declared = zstandard.frame_content_size(data)
        if declared not in (-1, expected_size):  # -1: not declared; max_output_size then bounds it
            raise CodecError("zstd frame size does not match the shape")
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=max(expected_size, 1))
    except zstandard.ZstdError as exc:
        raise CodecError(f"zstd: {exc}") from exc
    if len(out) != expected_size:
        raise CodecError("decompressed size does not match the shape")
    return out


def _from_bytes(data: bytes, dtype: np.dtype[Any], count: int) -> npt.NDArray[Any]:
    if len(data) != count * dtype.itemsize:
        raise CodecError("payload size does not match the shape")
    return np.frombuffer(data, dtype=dtype, count=count).copy()


def _maps(shape: tuple[int, ...]) -> tuple[int, int]:
    """(number of maps, values per map) for quantisation over the last two axes."""
    per_map = int(np.prod(shape[-2:], dtype=np.int64)) if len(shape) >= 2 else int(np.prod(shape))
    total = int(np.prod(shape, dtype=np.int64))
    return (total // per_map if per_map else 0), per_map


def _quantise(array: npt.NDArray[Any]) -> bytes:
    if array.dtype.kind != "f":
        raise CodecError("q8 needs a floating-point array")
    n_maps, per_map = _maps(array.shape)
    flat = array.astype(np.float32).reshape(n_maps, per_map)
    low = flat.min(axis=1) if per_map else np.zeros(n_maps, np.float32)
    high = flat.max(axis=1) if per_map else np.zeros(n_maps, np.float32)
    scale = np.where(high > low, (high - low) / 255.0, 1.0).astype(np.float32)
    quantised = np.rint((flat - low[:, None]) / scale[:, None]).clip(0, 255).astype(np.uint8)
    return low.astype(np.float32).tobytes() + scale.tobytes() + quantised.tobytes()


def _dequantise(payload: bytes, shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    n_maps, per_map = _maps(shape)
    data = _decompress(payload, n_maps * 8 + n_maps * per_map)
    low = np.frombuffer(data, np.float32, n_maps, 0)
    scale = np.frombuffer(data, np.float32, n_maps, n_maps * 4)
    quantised = np.frombuffer(data, np.uint8, n_maps * per_map, n_maps * 8).reshape(n_maps, per_map)
    values = quantised.astype(np.float32) * scale[:, None] + low[:, None]
    return values.astype(dtype)
