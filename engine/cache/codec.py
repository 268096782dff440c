"""The cache's value format: a small versioned header plus raw array bytes, never Python objects.

Layout of an encoded value (format 2)::

    b"LOUP" | u8 format version | u8 seal | u32 header length (LE) | 32-byte tag | header JSON | payload

The tag is BLAKE2b-256 over the cache key the value is stored under, the prefix, the header
and the payload. ``seal`` says how it was made: 0, unkeyed (a checksum: it catches corruption
and a value copied to another key, but anyone can compute it), or 1, keyed with the team key
(a MAC: only holders of the key can make one; see :mod:`engine.cache.team_key`). A reader
accepts only values sealed the way it seals its own, so with a team key an unkeyed value is a
miss. The tag is checked first, before the header is parsed and before anything is
decompressed.

The header names the dtype (from an allow-list), the shape, the codec and optional JSON
metadata (for example the tokens of an attention map; no NaN or Infinity, at most
``MAX_META_DEPTH`` levels deep). Decoding is bounded by what the caller expects
(:class:`Expected`): dtype, shape and decoded size are checked before decompressing, and
non-finite numbers can be refused. Any failure raises :class:`CodecError`, which the cache
treats as a miss, so a corrupted, truncated, misplaced or hostile value is recomputed rather
than trusted.

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
import hmac
import json
import math
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

MAGIC = b"LOUP"
FORMAT_VERSION = 2
SEAL_CHECKSUM = 0  # unkeyed BLAKE2b: integrity and key binding, no authenticity
SEAL_MAC = 1  # BLAKE2b keyed with the team key: only key holders can write a valid value
TAG_BYTES = 32
ALLOWED_DTYPES = frozenset({"float32", "float16", "float64", "int32", "int64", "uint8"})
_DTYPES = {name: np.dtype(name) for name in ALLOWED_DTYPES}  # made once: np.dtype(name) is slow
MAX_HEADER_BYTES = 1 << 20
# The largest array a value may claim whatever the caller expects: far above what Loupe stores
# (the attention of a 512-token text in a 12x12 model is 151 MB). Callers bound it further.
MAX_ARRAY_BYTES = 1 << 31
MAX_DIMENSIONS = 32
MAX_META_DEPTH = 6  # {"names": {"0": "x"}} is 2 deep; nothing Loupe stores needs more
Codec = Literal["raw", "zstd", "f16-zstd", "q8-zstd"]
_PREFIX = struct.Struct("<4sBBI")
_TAG_PERSON = b"loupe-value-v2"  # BLAKE2b personalisation: these tags mean nothing elsewhere


class CodecError(ValueError):
    """An encoded value failed a check; the cache treats it as a miss."""


@dataclass(frozen=True)
class Decoded:
    """A decoded value: the array and the metadata stored beside it."""

    array: npt.NDArray[Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Expected:
    """What a caller will accept, checked before anything is decompressed.

    ``shape`` None accepts any shape; otherwise it fixes the number of axes, and each axis is
    either its exact length or None (any length). ``max_bytes`` bounds the decoded array (and
    any intermediate buffer decoding needs), ``max_header_bytes`` the header JSON. ``finite``
    refuses NaN and infinities in a floating-point array.
    """

    shape: tuple[int | None, ...] | None = None
    dtypes: frozenset[str] = ALLOWED_DTYPES
    max_bytes: int = MAX_ARRAY_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES
    finite: bool = False

    def check(self, dtype: str, shape: tuple[int, ...], decoded_bytes: int) -> None:
        """Raise :class:`CodecError` unless a value of ``dtype`` (a name) and ``shape`` fits."""
        if dtype not in self.dtypes:
            raise CodecError(f"dtype {dtype} is not what the caller expects")
        if self.shape is not None and (
            len(shape) != len(self.shape)
            or any(want is not None and want != got for want, got in zip(self.shape, shape, strict=True))
        ):
            raise CodecError(f"shape {list(shape)} is not what the caller expects")
        if decoded_bytes > self.max_bytes:
            raise CodecError(
                f"value would decode to {decoded_bytes} bytes, more than the {self.max_bytes} expected"
            )

    @property
    def max_value_bytes(self) -> int:
        """The longest stored value that can fit: all a reader needs to fetch of one."""
        header = min(self.max_header_bytes, MAX_HEADER_BYTES)
        return _PREFIX.size + TAG_BYTES + header + _stored_bound(self.max_bytes)


ANYTHING = Expected()


def encode(
    array: npt.NDArray[Any],
    codec: Codec = "zstd",
    meta: dict[str, Any] | None = None,
    *,
    key: str = "",
    secret: bytes | None = None,
) -> bytes:
    """Encode ``array`` (and JSON-able ``meta``) as the value stored under cache ``key``.

    ``secret`` is the team key's derived secret (a MAC), None for an unkeyed checksum.
    """
    array = np.asarray(array)  # not ascontiguousarray: it makes a 0-d array 1-d (tobytes is C order anyway)
    dtype = array.dtype.name
    if dtype not in ALLOWED_DTYPES:
        raise CodecError(f"dtype {dtype} is not allowed in the cache")
    if codec == "raw":
        payload = array.tobytes()
    elif codec == "zstd":
        payload = _compress(array.tobytes())
    elif codec == "f16-zstd" and _fits_float16(array):
        payload = _compress(array.astype(np.float16).tobytes())
    elif codec == "f16-zstd":  # float16 would make it infinite, a value no reader accepts
        codec = "zstd"
        payload = _compress(array.tobytes())
    elif codec == "q8-zstd":
        payload = _compress(_quantise(array))
    else:
        raise CodecError(f"unknown codec {codec!r}")
    header = {"dtype": dtype, "shape": list(array.shape), "codec": codec, "meta": meta or {}}
    try:
        header_bytes = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:
        raise CodecError(f"metadata is not storable: {exc}") from exc
    return pack(header_bytes, payload, key=key, secret=secret)


def pack(header: bytes, payload: bytes, *, key: str = "", secret: bytes | None = None) -> bytes:
    """A value from its header JSON and payload, sealed for ``key`` (see the module docstring).

    Public so that tests can build values of any content with a valid tag, as a writer who
    knows the layout (and, for a MAC, the key) could.
    """
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, SEAL_CHECKSUM if secret is None else SEAL_MAC, len(header))
    return prefix + _tag(key, prefix, header, payload, secret) + header + payload


def decode(
    value: bytes, *, key: str = "", secret: bytes | None = None, expect: Expected = ANYTHING
) -> Decoded:
    """Decode the value stored under ``key``; raise :class:`CodecError` on any mismatch.

    Order: prefix, sizes, tag (before any parsing), header, what the caller ``expect``s, and
    only then decompression.
    """
    start = _PREFIX.size + TAG_BYTES
    if len(value) < start:
        raise CodecError("value shorter than its prefix")
    magic, version, seal, header_length = _PREFIX.unpack_from(value)
    if magic != MAGIC:
        raise CodecError("bad magic")
    if version != FORMAT_VERSION:
        raise CodecError(f"unsupported format version {version}")
    if seal != (SEAL_CHECKSUM if secret is None else SEAL_MAC):
        raise CodecError(
            "value was written without the team key"
            if secret is not None
            else "value needs a team key to be read"
        )
    if header_length > min(expect.max_header_bytes, MAX_HEADER_BYTES) or start + header_length > len(value):
        raise CodecError("header length out of range")
    header_end = start + header_length
    if len(value) - header_end > _stored_bound(expect.max_bytes):
        raise CodecError("payload larger than any value the caller expects")
    header_bytes = value[start:header_end]
    payload = value[header_end:]
    tag = _tag(key, value[: _PREFIX.size], header_bytes, payload, secret)
    if not hmac.compare_digest(tag, value[_PREFIX.size : start]):
        raise CodecError(
            "checksum mismatch (altered, or written for another key)"
            if secret is None
            else "MAC mismatch (altered, written for another key or without this team key)"
        )
    dtype_name, shape, codec, meta = _header(header_bytes)
    dtype = _DTYPES[dtype_name]
    count = math.prod(shape)  # Python ints: no int64 wrap-around
    expect.check(dtype_name, shape, _decoded_bytes(codec, dtype, shape, count))
    if codec == "raw":
        array = _from_bytes(payload, dtype, count)
    elif codec == "zstd":
        array = _from_bytes(_decompress(payload, count * dtype.itemsize), dtype, count)
    elif codec == "f16-zstd":
        half = _from_bytes(_decompress(payload, count * 2), np.dtype(np.float16), count)
        array = half if dtype == np.float16 else half.astype(dtype)
    else:  # q8-zstd; _header allowed no other
        array = _dequantise(payload, shape, dtype)
    array = array.reshape(shape)
    if expect.finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CodecError("value holds NaN or infinite numbers")
    return Decoded(array=array, meta=meta)


def _tag(key: str, prefix: bytes, header: bytes, payload: bytes, secret: bytes | None) -> bytes:
    """BLAKE2b over the cache key (length-prefixed), the prefix, the header and the payload."""
    digest = hashlib.blake2b(digest_size=TAG_BYTES, key=secret or b"", person=_TAG_PERSON)
    name = key.encode("utf-8", "surrogatepass")
    digest.update(
        b"".join((len(name).to_bytes(4, "little"), name, prefix, len(header).to_bytes(4, "little"), header))
    )
    digest.update(payload)
    return digest.digest()


def _reject_constant(name: str) -> None:
    raise CodecError(f"{name} in a header")  # NaN, Infinity: never written by encode


def _header(header_bytes: bytes) -> tuple[str, tuple[int, ...], str, dict[str, Any]]:
    """(dtype name, shape, codec, metadata) from a header, each checked on its own."""
    try:
        header = json.loads(header_bytes.decode("ascii"), parse_constant=_reject_constant)
        if not isinstance(header, dict):
            raise CodecError("header is not an object")
        dtype = _allowed(header["dtype"])
        shape = _shape(header["shape"])
        codec = header["codec"]
        meta = header.get("meta", {})
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # CodecError is a ValueError
        raise CodecError(f"unreadable header: {exc}") from exc
    if codec not in ("raw", "zstd", "f16-zstd", "q8-zstd"):
        raise CodecError(f"unknown codec {codec!r}")
    if codec in ("f16-zstd", "q8-zstd") and _DTYPES[dtype].kind != "f":
        raise CodecError(f"codec {codec} needs a floating-point dtype")
    if not isinstance(meta, dict) or _depth(meta) > MAX_META_DEPTH:
        raise CodecError("bad metadata")
    return dtype, shape, codec, meta


def _depth(value: object) -> int:
    """How deeply ``value`` nests lists and objects (iterative: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > MAX_META_DEPTH:
                break
            stack.extend((child, level + 1) for child in item if isinstance(child, (list, dict)))
    return deepest


def _fits_float16(array: npt.NDArray[Any]) -> bool:
    """Whether every value of ``array`` is finite in float16 (at most 65,504 in magnitude)."""
    return array.size == 0 or float(np.max(np.abs(array))) <= float(np.finfo(np.float16).max)


def _shape(value: object) -> tuple[int, ...]:
    """A header's shape: a short list of non-negative ints whose array fits MAX_ARRAY_BYTES."""
    if not isinstance(value, list) or len(value) > MAX_DIMENSIONS:
        raise CodecError("bad shape")
    if not all(type(n) is int and n >= 0 for n in value):  # not bool, float or str
        raise CodecError("bad shape")
    # Each axis bounded too: a zero elsewhere makes the product small, but numpy still refuses
    # (ValueError) or overflows on an axis beyond int64 ([0, 2**70]).
    # The product with zeros counted as ones: numpy refuses [2**31, 0, 2**31, 2] ("array is too
    # big") although it holds nothing.
    if any(n > MAX_ARRAY_BYTES for n in value) or math.prod(max(n, 1) for n in value) * 8 > MAX_ARRAY_BYTES:
        raise CodecError("shape too large")
    return tuple(value)


def _allowed(dtype: object) -> str:
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise CodecError(f"dtype {dtype!r} is not allowed")
    return dtype


def _decoded_bytes(codec: str, dtype: np.dtype[Any], shape: tuple[int, ...], count: int) -> int:
    """The most memory decoding holds for one buffer: the array, or q8's larger intermediate."""
    final = count * dtype.itemsize
    if codec == "q8-zstd":
        n_maps, _ = _maps(shape)
        return max(final, n_maps * 8 + count)
    return final


def _stored_bound(max_bytes: int) -> int:
    """The largest payload that can decode to at most ``max_bytes`` (zstd's worst-case expansion)."""
    return max_bytes + (max_bytes >> 7) + 1024


def _compress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


_local = threading.local()


def _decompressor() -> Any:
    """This thread's zstd decompressor: making one per value cost more than decompressing it."""
    found = getattr(_local, "decompressor", None)
    if found is None:
        import zstandard

        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


def _decompress(data: bytes, expected_size: int) -> bytes:
    import zstandard

    try:
        # zstandard ignores max_output_size when the frame declares its content size and allocates
        # whatever the frame claims, so a declared size must be the one the shape implies.
        # encode always declares it; a frame without it (-1) could make the decompressor reserve
        # its window (up to 128 MiB for an 18-byte frame) before max_output_size stops it.
        declared = zstandard.frame_content_size(data)
        if declared != expected_size:
            raise CodecError("zstd frame size does not match the shape")
        out: bytes = _decompressor().decompress(data, max_output_size=max(expected_size, 1))
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
    """(number of maps, values per map) for quantisation over the last two axes (Python ints)."""
    per_map = math.prod(shape[-2:])
    total = math.prod(shape)
    return (total // per_map if per_map else 0), per_map


def _quantise(array: npt.NDArray[Any]) -> bytes:
    if array.dtype.kind != "f":
        raise CodecError("q8 needs a floating-point array")
    n_maps, per_map = _maps(array.shape)
    flat = array.astype(np.float32).reshape(n_maps, per_map)
    low = flat.min(axis=1) if per_map else np.zeros(n_maps, np.float32)
    high = flat.max(axis=1) if per_map else np.zeros(n_maps, np.float32)
    span = ((high - low) / 255.0).astype(np.float32)
    # A range too narrow for float32 to divide (1e-45 / 255 is 0) is quantised as a constant.
    scale = np.where(span > 0, span, np.float32(1.0)).astype(np.float32)
    quantised = np.rint((flat - low[:, None]) / scale[:, None]).clip(0, 255).astype(np.uint8)
    return low.astype(np.float32).tobytes() + scale.tobytes() + quantised.tobytes()


def _dequantise(payload: bytes, shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    n_maps, per_map = _maps(shape)
    data = _decompress(payload, n_maps * 8 + n_maps * per_map)
    low = np.frombuffer(data, np.float32, n_maps, 0)
    scale = np.frombuffer(data, np.float32, n_maps, n_maps * 4)
    quantised = np.frombuffer(data, np.uint8, n_maps * per_map, n_maps * 8).reshape(n_maps, per_map)
    values = quantised.astype(np.float32)  # one float32 buffer, scaled in place
    values *= scale[:, None]
    values += low[:, None]
    return values if dtype == np.float32 else values.astype(dtype)
