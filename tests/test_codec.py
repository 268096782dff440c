"""The cache value format (engine.cache.codec): exact or bounded round trips, and every check.

Hostile values are forged here the way an attacker with write access to a shared Redis would
forge them: the layout is documented and, without a team key, the tag is an unkeyed BLAKE2b,
so a forged value carries a *valid* tag and only the other checks stand between it and the
application. (tests/test_cache_trust.py covers the key binding and the team key's MAC.)
Whatever a value holds, ``decode`` must either return an array or raise ``CodecError`` (which
the cache turns into a miss) — never another exception, and never allocate without bound.
"""

from __future__ import annotations

import hashlib
import json
import struct
import tracemalloc
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import zstandard

from engine.cache import codec
from engine.cache.codec import ALLOWED_DTYPES, FORMAT_VERSION, MAGIC, CodecError, decode, encode

PREFIX = struct.Struct("<4sBBI")  # b"LOUP" | u8 version | u8 seal | u32 header length (little endian)
TAG_BYTES = 32
CODECS: tuple[codec.Codec, ...] = ("raw", "zstd", "f16-zstd", "q8-zstd")
F16_RELATIVE_ERROR = 2.0**-11  # about 4.9e-4
Q8_ATTENTION_ERROR = 0.5 / 255 + 1e-7


def tag(prefix: bytes, header: bytes, payload: bytes, key: str = "", secret: bytes | None = None) -> bytes:
    """The documented tag, computed here independently of the codec: BLAKE2b-256 (keyed with the
    team secret, if any; personalised ``loupe-value-v2``) over the length-prefixed cache key, the
    prefix, the length-prefixed header and the payload."""
    digest = hashlib.blake2b(digest_size=TAG_BYTES, key=secret or b"", person=b"loupe-value-v2")
    name = key.encode("utf-8", "surrogatepass")
    digest.update(len(name).to_bytes(4, "little") + name + prefix)
    digest.update(len(header).to_bytes(4, "little") + header + payload)
    return digest.digest()


def forge(
    header: dict[str, Any] | bytes,
    payload: bytes,
    *,
    magic: bytes = MAGIC,
    version: int = FORMAT_VERSION,
    header_length: int | None = None,
    key: str = "",
) -> bytes:
    """An encoded value built by hand from the documented layout, with a valid (unkeyed) tag."""
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(header_bytes) if header_length is None else header_length
    prefix = PREFIX.pack(magic, version, 0, length)
    return prefix + tag(prefix, header_bytes, payload, key) + header_bytes + payload


def header_for(
    payload: bytes, *, dtype: Any = "float32", shape: Any = (4,), codec_name: Any = "raw", **extra: Any
) -> dict[str, Any]:
    """A header describing ``payload`` (the tag that covers both is added by :func:`forge`)."""
    shape_value = list(shape) if isinstance(shape, tuple) else shape
    return {"dtype": dtype, "shape": shape_value, "codec": codec_name, **extra}


def split(value: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of an encoded value."""
    magic, _, _, length = PREFIX.unpack_from(value)
    assert magic == MAGIC
    start = PREFIX.size + TAG_BYTES
    return json.loads(value[start : start + length]), value[start + length :]


def sample(dtype: str, shape: tuple[int, ...] = (3, 5, 7), seed: int = 0) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    if dtype.startswith("float"):
        return (rng.standard_normal(shape) * 10).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def softmax_attention(shape: tuple[int, ...], seed: int = 0) -> npt.NDArray[np.float32]:
    logits = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities: npt.NDArray[np.float32] = (weights / weights.sum(axis=-1, keepdims=True)).astype(
        np.float32
    )
    return probabilities


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("codec_name", ["raw", "zstd"])
@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
def test_lossless_codecs_round_trip_exactly(codec_name: codec.Codec, dtype: str) -> None:
    for shape in [(3, 5, 7), (384,), (1,), (0,), (2, 0, 3)]:
        array = sample(dtype, shape)
        decoded = decode(encode(array, codec_name))
        assert decoded.array.dtype == array.dtype
        assert decoded.array.shape == array.shape
        assert np.array_equal(decoded.array, array)
        assert decoded.meta == {}


def test_lossless_round_trip_keeps_nan_inf_and_non_contiguous_input() -> None:
    array = np.array([[np.nan, np.inf, -np.inf, -0.0], [1e-45, 3.4e38, 1.0, 2.0]], np.float32)
    for codec_name in ("raw", "zstd"):
        decoded = decode(encode(array, codec_name)).array
        assert decoded.tobytes() == array.tobytes()  # bit for bit, NaN and -0.0 included
    view = sample("float64", (6, 8))[::2, ::-3]
    assert not view.flags.c_contiguous
    assert np.array_equal(decode(encode(view, "zstd")).array, view)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_f16_round_trip_within_relative_error(dtype: str) -> None:
    rng = np.random.default_rng(1)
    # Magnitudes well inside float16's normal range, where its relative error bound holds.
    array = (rng.uniform(1e-3, 6e4, (4, 50)) * rng.choice([-1.0, 1.0], (4, 50))).astype(dtype)
    decoded = decode(encode(array, "f16-zstd")).array
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    exact = array.astype(np.float64)
    assert (np.abs(decoded.astype(np.float64) - exact) / np.abs(exact)).max() <= F16_RELATIVE_ERROR


def test_f16_round_trip_of_embeddings_within_relative_error() -> None:
    vectors = np.random.default_rng(2).standard_normal((64, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    decoded = decode(encode(vectors, "f16-zstd")).array
    assert decoded.dtype == np.float32
    # Relative to each value; tiny values fall into float16's subnormal range, so bound those absolutely.
    error = np.abs(decoded - vectors)
    assert np.all(error <= np.maximum(np.abs(vectors) * F16_RELATIVE_ERROR, 2.0**-24))


def test_q8_attention_error_and_size() -> None:
    attention = softmax_attention((6, 12, 128, 128))
    encoded = encode(attention, "q8-zstd", meta={"tokens": ["[CLS]", "hello", "[SEP]"]})
    decoded = decode(encoded)
    raw_size = attention.astype(np.float32).nbytes
    print(f"q8-zstd attention {attention.shape}: {len(encoded)} bytes vs {raw_size} raw float32 bytes")
    assert decoded.array.dtype == np.float32 and decoded.array.shape == attention.shape
    assert np.abs(decoded.array - attention).max() <= Q8_ATTENTION_ERROR
    assert len(encoded) < raw_size / 5
    assert decoded.meta == {"tokens": ["[CLS]", "hello", "[SEP]"]}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_q8_error_bound_is_per_map_range(dtype: str) -> None:
    rng = np.random.default_rng(3)
    array = (rng.standard_normal((3, 2, 9, 11)) * rng.uniform(0.1, 100, (3, 2, 1, 1))).astype(dtype)
    decoded = decode(encode(array, "q8-zstd")).array
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    flat = array.astype(np.float64).reshape(6, -1)
    # Quantisation error, plus the rounding of the result to ``dtype`` (float16 rounds visibly).
    rounding = np.abs(flat).max(axis=1) * float(np.finfo(dtype).eps)
    bound = (flat.max(axis=1) - flat.min(axis=1)) / 510 * (1 + 1e-3) + rounding + 1e-6
    error = np.abs(decoded.astype(np.float64).reshape(6, -1) - flat).max(axis=1)
    assert np.all(error <= bound)


def test_q8_constant_and_degenerate_shapes() -> None:
    for array in [
        np.full((2, 3, 3), 0.25, np.float32),  # max == min: exact
        np.zeros((0, 4, 4), np.float32),
        np.arange(5, dtype=np.float32),  # one-dimensional
    ]:
        decoded = decode(encode(array, "q8-zstd")).array
        assert decoded.shape == array.shape
        assert np.allclose(decoded, array, atol=(float(array.max(initial=0)) + 1) / 510)


def test_meta_round_trips_for_every_codec() -> None:
    meta = {
        "tokens": ["[CLS]", "naïve", "日本", '"quoted"', "[SEP]"],
        "offsets": [[0, 0], [0, 5], [6, 8], [9, 17], [0, 0]],
        "special": [True, False, False, False, True],
        "nested": {"a": None, "b": 1.5},
    }
    array = softmax_attention((2, 5, 5))
    for codec_name in CODECS:
        assert decode(encode(array, codec_name, meta=meta)).meta == meta


# --- encode refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.array([{"a": 1}, None], dtype=object),
        np.array(["text"]),
        np.array([1 + 2j]),
        np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]),
        np.array([True]),
    ],
    ids=["object", "unicode", "complex", "structured", "bool"],
)
def test_encode_refuses_dtypes_outside_the_allow_list(array: npt.NDArray[Any]) -> None:
    for codec_name in CODECS:
        with pytest.raises(CodecError):
            encode(array, codec_name)


def test_encode_refuses_unknown_codec_and_q8_of_integers() -> None:
    with pytest.raises(CodecError):
        encode(np.ones(3, np.float32), "pickle")  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        encode(np.ones((2, 2), np.int32), "q8-zstd")


# --- decode refuses ----------------------------------------------------------------------


def good_value() -> bytes:
    return encode(np.arange(6, dtype=np.float32).reshape(2, 3), "raw", meta={"tokens": ["a", "b"]})


def test_forged_valid_value_decodes() -> None:
    """The forging helpers reproduce the real layout, so the refusals below test single faults."""
    payload = np.arange(4, dtype=np.float32).tobytes()
    decoded = decode(forge(header_for(payload), payload))
    assert np.array_equal(decoded.array, np.arange(4, dtype=np.float32))
    header, payload = split(good_value())
    assert decode(forge(header, payload)).meta == {"tokens": ["a", "b"]}


@pytest.mark.parametrize("magic", [b"LOUQ", b"\x80\x04\x95\x00", b"\0\0\0\0", b"loup"])
def test_bad_magic(magic: bytes) -> None:
    header, payload = split(good_value())
    with pytest.raises(CodecError, match="magic"):
        decode(forge(header, payload, magic=magic))


@pytest.mark.parametrize("version", [0, FORMAT_VERSION + 1, 255])
def test_wrong_version(version: int) -> None:
    header, payload = split(good_value())
    with pytest.raises(CodecError, match="version"):
        decode(forge(header, payload, version=version))


@pytest.mark.parametrize("codec_name", CODECS)
def test_every_truncation_is_refused(codec_name: codec.Codec) -> None:
    value = encode(softmax_attention((2, 3, 3)), codec_name, meta={"tokens": ["x", "y", "z"]})
    decode(value)  # the whole value is fine
    for length in range(len(value)):
        with pytest.raises(CodecError):
            decode(value[:length])


@pytest.mark.parametrize("codec_name", CODECS)
def test_every_flipped_payload_byte_fails_the_checksum(codec_name: codec.Codec) -> None:
    value = encode(softmax_attention((2, 4, 4)), codec_name)
    _, payload = split(value)
    start = len(value) - len(payload)
    for position in range(start, len(value)):
        for mask in (0x01, 0x80, 0xFF):
            corrupted = bytearray(value)
            corrupted[position] ^= mask
            with pytest.raises(CodecError, match="checksum"):
                decode(bytes(corrupted))


def test_appended_bytes_fail_the_checksum() -> None:
    with pytest.raises(CodecError, match="checksum"):
        decode(good_value() + b"\0")


@pytest.mark.parametrize(
    ("codec_name", "meta"),
    [("zstd", {}), ("raw", {"tokens": ["[CLS]", "cat", "[SEP]"]})],
    ids=["array-header", "meta"],
)
def test_every_single_bit_flip_in_the_header_is_refused_or_harmless(
    codec_name: codec.Codec, meta: dict[str, Any]
) -> None:
    """Any flip in the prefix or header (metadata included) is a miss or changes nothing."""
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    value = encode(array, codec_name, meta=meta)
    _, payload = split(value)
    for position in range(len(value) - len(payload)):
        for bit in range(8):
            corrupted = bytearray(value)
            corrupted[position] ^= 1 << bit
            try:
                decoded = decode(bytes(corrupted))
            except CodecError:
                continue
            assert np.array_equal(decoded.array, array) and decoded.array.dtype == array.dtype
            assert decoded.meta == meta


PAYLOAD16 = np.arange(4, dtype=np.float32).tobytes()


@pytest.mark.parametrize(
    "dtype",
    [
        "object",
        "O",
        "|O",
        "<U4",
        "complex64",
        "bool",
        "V16",
        "float128",
        "datetime64[s]",
        "",
        None,
        4,
        ["float32"],
    ],
)
def test_header_dtype_outside_the_allow_list(dtype: Any) -> None:
    # Payloads of every itemsize, so that one of them passes the size check and only the
    # allow-list can refuse it; the first is a pickle stream, as a dtype=object value would hold.
    for length in (1, 2, 4, 8, 16, 32):
        payload = (b"\x80\x04\x95" + bytes(length))[:length]
        with pytest.raises(CodecError):
            decode(forge(header_for(payload, dtype=dtype, shape=(1,)), payload))


@pytest.mark.parametrize(
    "shape",
    [
        [2**40],
        [1 << 20, 1 << 20],
        [10**6, 10**6, 10**6],
        [-4],
        [2, -2],
        [4, 1, -1],
        [None],
        ["x"],
        [[4]],
        {"n": 4},
    ],
)
@pytest.mark.parametrize("codec_name", CODECS)
def test_header_claiming_a_huge_or_bad_shape(shape: Any, codec_name: str) -> None:
    payloads = {
        "raw": PAYLOAD16,
        "zstd": zstandard.ZstdCompressor().compress(PAYLOAD16),
        "f16-zstd": zstandard.ZstdCompressor().compress(np.zeros(4, np.float16).tobytes()),
        "q8-zstd": zstandard.ZstdCompressor().compress(np.zeros(4 * 8 + 4 * 16, np.uint8).tobytes()),
    }
    payload = payloads[codec_name]
    tracemalloc.start()
    try:
        with pytest.raises(CodecError):
            decode(forge(header_for(payload, shape=shape, codec_name=codec_name), payload))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        (header_for(b"", shape=[2**32, 2**32]), b""),  # the int64 product wraps to 0
        (header_for(b"", shape=[2**62, 4]), b""),  # 2**64 wraps to 0 too
        (header_for(b"", shape=[10**30]), b""),
        (header_for(PAYLOAD16, shape=[1] * 65 + [4]), PAYLOAD16),
        (
            b'{"dtype":"float32","shape":[Infinity],"codec":"raw"}',
            b"",
        ),
        (b"[" * 200_000 + b"]" * 200_000, b""),
    ],
    ids=["wraps-to-zero", "wraps-again", "beyond-int64", "65-dims", "infinity", "deep-json"],
)
def test_header_that_overflows_is_a_codec_error(header: dict[str, Any] | bytes, payload: bytes) -> None:
    with pytest.raises(CodecError):
        decode(forge(header, payload))


@pytest.mark.parametrize(
    "header",
    [
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"a string"',
        b"null",
        b"42",
        b'{"dtype": "float32"',
        b"{}",
        b'{"dtype":"float32","shape":[4]}',  # no codec
        b'{"dtype":"float32","codec":"raw"}',  # no shape
    ],
)
def test_header_json_garbage(header: bytes) -> None:
    with pytest.raises(CodecError):
        decode(forge(header, PAYLOAD16))


def test_header_with_non_dict_meta_or_unknown_codec() -> None:
    for extra in ({"meta": ["x"]}, {"meta": "x"}, {"meta": 3}):
        with pytest.raises(CodecError):
            decode(forge(header_for(PAYLOAD16, **extra), PAYLOAD16))
    for codec_name in ("pickle", "lz4", "", None, "RAW"):
        with pytest.raises(CodecError):
            decode(forge(header_for(PAYLOAD16, codec_name=codec_name), PAYLOAD16))


@pytest.mark.parametrize(
    "header_length", [2**32 - 1, codec.MAX_HEADER_BYTES + 1, 10_000, "one-beyond"], ids=str
)
def test_header_length_beyond_the_value(header_length: int | str) -> None:
    header = json.dumps(header_for(PAYLOAD16)).encode()
    length = len(header) + len(PAYLOAD16) + 1 if header_length == "one-beyond" else int(header_length)
    with pytest.raises(CodecError, match="header length"):
        decode(forge(header, PAYLOAD16, header_length=length))


def test_header_length_cutting_the_json_short() -> None:
    header = json.dumps(header_for(PAYLOAD16)).encode()
    for length in (0, 1, len(header) // 2, len(header) - 1):
        with pytest.raises(CodecError):
            decode(forge(header, PAYLOAD16, header_length=length))


def test_payload_size_not_matching_the_shape() -> None:
    for shape in ([3], [5], [2, 3], [0]):
        with pytest.raises(CodecError):
            decode(forge(header_for(PAYLOAD16, shape=shape), PAYLOAD16))
    zipped = zstandard.ZstdCompressor().compress(PAYLOAD16)
    for shape in ([3], [5], [0]):
        with pytest.raises(CodecError):
            decode(forge(header_for(zipped, shape=shape, codec_name="zstd"), zipped))
    for not_zstd in (PAYLOAD16, b"", b"\x28\xb5\x2f\xfd"):
        with pytest.raises(CodecError):
            decode(forge(header_for(not_zstd, codec_name="zstd"), not_zstd))


def zstd_bomb(size: int, declare_size: bool) -> bytes:
    """``size`` zero bytes as one small zstd frame, its content size declared in the header or not."""
    compressor = zstandard.ZstdCompressor().compressobj(size=size if declare_size else -1)
    chunk = bytes(1 << 20)
    frame = b"".join(compressor.compress(chunk) for _ in range(size // len(chunk)))
    return frame + compressor.flush()


def forged_frame_header(content_size: int) -> bytes:
    """A zstd frame that claims ``content_size`` bytes and holds one empty last block."""
    descriptor = (3 << 6) | (1 << 5)  # 8-byte frame content size, single segment
    return struct.pack("<IBQ", 0xFD2FB528, descriptor, content_size) + bytes([1, 0, 0])


@pytest.mark.parametrize("codec_name", ["zstd", "f16-zstd", "q8-zstd"])
def test_zstd_bomb_without_declared_size_is_bounded(codec_name: str) -> None:
    bomb = zstd_bomb(256 << 20, declare_size=False)
    assert len(bomb) < 64 << 10 and zstandard.frame_content_size(bomb) == -1
    tracemalloc.start()
    try:
        with pytest.raises(CodecError):
            decode(forge(header_for(bomb, shape=(4, 4), codec_name=codec_name), bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


@pytest.mark.parametrize("codec_name", ["zstd", "f16-zstd", "q8-zstd"])
@pytest.mark.parametrize("kind", ["real-256MiB", "claims-1TiB"])
def test_zstd_frame_claiming_a_huge_content_size_is_bounded(codec_name: str, kind: str) -> None:
    bomb = zstd_bomb(256 << 20, declare_size=True) if kind == "real-256MiB" else forged_frame_header(1 << 40)
    assert zstandard.frame_content_size(bomb) in (256 << 20, 1 << 40)
    tracemalloc.start()
    try:
        with pytest.raises(CodecError):
            decode(forge(header_for(bomb, shape=(4, 4), codec_name=codec_name), bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_random_bytes_and_pickles_are_refused() -> None:
    rng = np.random.default_rng(4)
    candidates = [rng.bytes(n) for n in (0, 1, 8, 9, 100, 4096)]
    candidates += [b"\x80\x05\x95" + rng.bytes(40), MAGIC, MAGIC + bytes([FORMAT_VERSION])]
    candidates += [MAGIC + rng.bytes(200) for _ in range(50)]
    for value in candidates:
        with pytest.raises(CodecError):
            decode(value)


def test_a_shape_holding_nothing_but_too_big_for_numpy_is_the_codecs_error() -> None:
    """[2**31, 0, 2**31, 2] holds no element, yet numpy refuses to make it ("array is too big")."""
    value = forge(header_for(b"", shape=[2**31, 0, 2**31, 2]), b"")
    with pytest.raises(CodecError, match="shape too large"):
        codec.decode(value)


def test_a_zstd_frame_that_does_not_declare_its_size_is_refused() -> None:
    """Such a frame could make the decompressor reserve its whole window (128 MiB for 18 bytes)."""
    data = np.arange(4, dtype=np.float32).tobytes()
    undeclared = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    assert zstandard.frame_content_size(undeclared) == -1
    with pytest.raises(CodecError, match="frame size"):
        codec.decode(forge(header_for(undeclared, codec_name="zstd"), undeclared))
    declared = zstandard.ZstdCompressor().compress(data)
    assert codec.decode(forge(header_for(declared, codec_name="zstd"), declared)).array.tolist() == [
        0,
        1,
        2,
        3,
    ]


def test_f16_of_values_float16_cannot_hold_keeps_float32() -> None:
    """A component above 65,504 would become infinite, a value every reader refuses: stored exactly."""
    array = np.array([1.0, 70_000.0, -3.5], np.float32)
    decoded = codec.decode(codec.encode(array, "f16-zstd"))
    assert decoded.array.tolist() == array.tolist()
    small = np.array([1.0, 2.0], np.float32)
    assert split(codec.encode(small, "f16-zstd"))[0]["codec"] == "f16-zstd"
