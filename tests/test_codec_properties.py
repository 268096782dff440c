"""Property tests (Hypothesis) of the cache value codec and of cache key derivation.

The codec's contract: whatever bytes a value holds, ``decode`` returns a value or raises
``CodecError`` (which the cache turns into a miss), never another exception. Random bytes
rarely get past the tag, so most properties here seal what they generate with a valid tag,
as a writer who knows the documented layout (and, for a MAC, the team key) can: the header
JSON, the shape, the metadata and the payload are then what reaches the other checks.

Key derivation: any Unicode text, lone surrogates included, has one key, in the documented
form, usable as a Redis key and by the codec.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import zstandard
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.cache import codec
from engine.cache.codec import ALLOWED_DTYPES, CodecError, Expected, decode, encode, pack
from engine.cache.keys import PREFIX, cache_key, text_key_factory
from engine.core.runs import input_id

SECRET = bytes(range(32))
FLOAT32 = frozenset({"float32"})
EXPECTATIONS = st.sampled_from(
    [
        codec.ANYTHING,
        Expected(shape=(384,), dtypes=FLOAT32, max_bytes=1536, max_header_bytes=4096, finite=True),
        Expected(shape=(None, 2), max_bytes=1 << 16, finite=True),
        Expected(shape=(6, 12, None, None), dtypes=FLOAT32, max_bytes=1 << 20),
    ]
)
# Any Unicode code point, surrogates too (Hypothesis leaves category Cs out by default).
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=200)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=20,
)
NOT_ALLOWED = ["object", "bool", "<U4", "complex64"]
DTYPES = st.sampled_from(sorted(ALLOWED_DTYPES)) | st.sampled_from(NOT_ALLOWED) | JSON
SHAPES = (
    st.lists(st.integers(min_value=0, max_value=8) | st.sampled_from([2**31, 2**62, 2**70, -1]), max_size=5)
    | JSON
)
CODEC_NAMES = st.sampled_from(["raw", "zstd", "f16-zstd", "q8-zstd"]) | ANY_TEXT


def decodes_or_refuses(value: bytes, *, key: str = "", secret: bytes | None = None, expect: Expected) -> None:
    """The contract: a Decoded that fits ``expect``, or CodecError; anything else fails the test."""
    try:
        decoded = decode(value, key=key, secret=secret, expect=expect)
    except CodecError:
        return
    array = decoded.array
    assert isinstance(array, np.ndarray) and isinstance(decoded.meta, dict)
    assert array.dtype.name in expect.dtypes and array.nbytes <= expect.max_bytes
    if expect.shape is not None:
        assert len(array.shape) == len(expect.shape)
        assert all(want in (None, got) for want, got in zip(expect.shape, array.shape, strict=True))
    if expect.finite and array.dtype.kind == "f":
        assert np.isfinite(array).all()


@given(value=st.binary(max_size=4096), secret=st.sampled_from([None, SECRET]), expect=EXPECTATIONS)
def test_any_bytes_decode_or_raise_codec_error(value: bytes, secret: bytes | None, expect: Expected) -> None:
    decodes_or_refuses(value, secret=secret, expect=expect)
    decodes_or_refuses(codec.MAGIC + bytes([codec.FORMAT_VERSION]) + value, secret=secret, expect=expect)


@given(
    header=st.binary(max_size=512),
    payload=st.binary(max_size=2048),
    key=ANY_TEXT,
    secret=st.sampled_from([None, SECRET]),
    expect=EXPECTATIONS,
)
def test_any_sealed_header_bytes_decode_or_raise_codec_error(
    header: bytes, payload: bytes, key: str, secret: bytes | None, expect: Expected
) -> None:
    decodes_or_refuses(pack(header, payload, key=key, secret=secret), key=key, secret=secret, expect=expect)


@st.composite
def sealed_values(draw: st.DrawFn) -> bytes:
    """A value with a valid tag whose header is JSON of arbitrary, often nonsensical, content."""
    header: dict[str, Any] = {"dtype": draw(DTYPES), "shape": draw(SHAPES), "codec": draw(CODEC_NAMES)}
    if draw(st.booleans()):
        header["meta"] = draw(JSON)
    if draw(st.booleans()):
        header[draw(ANY_TEXT)] = draw(JSON)
    raw = draw(st.binary(max_size=2048))
    payload = zstandard.ZstdCompressor().compress(raw) if draw(st.booleans()) else raw
    text = json.dumps(header, allow_nan=False)
    return pack(text.encode("utf-8", "surrogatepass"), payload)


@given(value=sealed_values(), expect=EXPECTATIONS)
def test_any_sealed_header_json_decodes_or_raises_codec_error(value: bytes, expect: Expected) -> None:
    decodes_or_refuses(value, expect=expect)


@st.composite
def deep_meta(draw: st.DrawFn) -> Any:
    depth = draw(st.integers(min_value=1, max_value=3000))
    wrapper = draw(st.sampled_from(["[", '{"a":']))
    close = "]" if wrapper == "[" else "}"
    return wrapper * depth + "0" + close * depth


@given(meta=deep_meta(), payload=st.binary(max_size=64))
def test_deeply_nested_metadata_is_refused_not_a_recursion_error(meta: str, payload: bytes) -> None:
    header = f'{{"dtype":"uint8","shape":[{len(payload)}],"codec":"raw","meta":{{"x":{meta}}}}}'.encode()
    decodes_or_refuses(pack(header, payload), expect=codec.ANYTHING)


ARRAYS = hnp.arrays(
    dtype=st.sampled_from(sorted(ALLOWED_DTYPES)).map(np.dtype),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
)


@given(
    array=ARRAYS,
    codec_name=st.sampled_from(["raw", "zstd"]),
    key=ANY_TEXT,
    other=ANY_TEXT,
    secret=st.sampled_from([None, SECRET]),
)
def test_lossless_round_trip_under_its_key_and_a_miss_under_any_other(
    array: Any, codec_name: codec.Codec, key: str, other: str, secret: bytes | None
) -> None:
    value = encode(array, codec_name, {"k": key}, key=key, secret=secret)
    decoded = decode(value, key=key, secret=secret)
    assert decoded.array.dtype == array.dtype and decoded.array.shape == array.shape
    assert decoded.array.tobytes() == array.tobytes()  # bit for bit, NaN included
    assert decoded.meta == {"k": key}
    assume(other != key)
    for wrong_key, wrong_secret in [(other, secret), (key, None if secret else SECRET), (key, bytes(32))]:
        try:
            decode(value, key=wrong_key, secret=wrong_secret)
        except CodecError:
            continue
        raise AssertionError(f"decoded under {wrong_key!r} with another secret")


@given(
    array=hnp.arrays(
        np.float32, hnp.array_shapes(max_dims=4, max_side=6), elements=st.floats(-1e6, 1e6, width=32)
    ),
    position=st.integers(min_value=0),
    change=st.integers(min_value=1, max_value=255),
    secret=st.sampled_from([None, SECRET]),
)
def test_any_changed_byte_is_refused(array: Any, position: int, change: int, secret: bytes | None) -> None:
    value = bytearray(encode(array, "q8-zstd", {"tokens": ["a"]}, key="loupe:v2:attn:x", secret=secret))
    value[position % len(value)] ^= change
    try:
        decode(bytes(value), key="loupe:v2:attn:x", secret=secret)
    except CodecError:
        return
    raise AssertionError("a changed byte was accepted")


# --- key derivation --------------------------------------------------------------------------

KEY_FORM = re.compile(rf"^{re.escape(PREFIX)}emb:[0-9a-f]{{40}}$")


@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=5), context=st.dictionaries(ANY_TEXT, JSON, max_size=4))
def test_any_text_has_one_key_in_the_documented_form(texts: list[str], context: dict[str, Any]) -> None:
    key_for = text_key_factory("emb", context)
    keys = [key_for(text) for text in texts]
    assert all(KEY_FORM.match(key) for key in keys)
    assert keys == [text_key_factory("emb", dict(context))(text) for text in texts]  # deterministic
    assert len(set(keys)) == len(set(texts))  # distinct texts, distinct keys
    for key in keys:  # a key is ASCII, so it is a Redis key and binds a value as it is
        key.encode("ascii")
        assert decode(encode(np.zeros(2, np.float32), key=key), key=key).array.shape == (2,)
    assert KEY_FORM.match(cache_key("emb", {**context, "texts": texts}))
    ids = input_id(texts)
    assert re.fullmatch(r"[0-9a-f]{40}", ids) and ids == input_id(list(texts))
