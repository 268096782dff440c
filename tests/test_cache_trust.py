"""What a writer to a shared cache can and cannot do, against the real embedded Valkey server.

Values are planted through a raw client, the way someone with write access to a shared
server would. Without a team key the tag is an unkeyed BLAKE2b whose layout is documented,
so these values carry a *valid* tag (:func:`seal`): only the key binding, the checks of
what the caller expects and the loaders' validation stand between them and a result. Every
hostile value must be a miss (logged, counted invalid, recomputed and overwritten), never a
crash or a wrong result; a value moved to another key is a miss; with a team key, a value
not sealed with it is a miss; and crafted values cannot make a process allocate what they claim.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import redis
import zstandard

from engine.cache import codec
from engine.cache.connect import open_cache
from engine.cache.server import ServerPaths
from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.maps.projection import ProjectionParams

TEXTS = [
    "Ein Kätzchen schläft auf der Fensterbank.",
    "Кошка спит на коврике у двери.",
    "猫がマットの上で寝ている。",
    "The “quoted” cat 🐈 sat on the mat.",
    "Bonjour à tous, dit le chat.",
]
TEAM_KEY = "team-key-for-tests-7f3a9c2e5b1d4068a9e2"


def seal(header: dict[str, Any] | bytes, payload: bytes, key: str) -> bytes:
    """A value for ``key`` with a valid unkeyed tag: what anyone who can write to the server can make."""
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    return codec.pack(header_bytes, payload, key=key)


def raw_client() -> redis.Redis:
    from engine.runtime.paths import cache_dir

    return redis.Redis(
        unix_socket_path=str(ServerPaths.in_directory(cache_dir() / "valkey").socket), socket_timeout=5
    )


def keys_of(client: redis.Redis, kind: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=f"loupe:*:{kind}:*", count=1000))


def plant(kind: str, make: Any) -> list[str]:
    """Replace every stored value of ``kind`` with ``make(key)``; the keys it replaced."""
    client = raw_client()
    try:
        keys = keys_of(client, kind)
        assert keys, f"nothing of kind {kind} was cached"
        for key in keys:
            client.set(key, make(key), keepttl=True)
        return keys
    finally:
        client.close()


def stored_values_are_valid(kind: str, cache: Cache) -> None:
    """Every value of ``kind`` on the server decodes under its own key: the hostile ones were overwritten."""
    client = raw_client()
    try:
        for key in keys_of(client, kind):
            value = client.get(key)
            assert isinstance(value, bytes)
            codec.decode(value, key=key, secret=cache._secret)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def no_team_key_unless_a_test_sets_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOUPE_CACHE_KEY", "LOUPE_CACHE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


def float32_payload(array: npt.NDArray[Any]) -> bytes:
    return np.ascontiguousarray(array, np.float32).tobytes()


# --- embeddings ------------------------------------------------------------------------------

WIDTH = 384
HOSTILE_EMBEDDINGS = {
    # numpy refuses the reshape (ValueError) although the product of the axes is 0.
    "huge-axis": lambda key: seal({"dtype": "float32", "shape": [0, 2**70], "codec": "raw"}, b"", key),
    # q8 counted its maps in int64: OverflowError.
    "q8-huge-axis": lambda key: seal(
        {"dtype": "float32", "shape": [0, 2**70], "codec": "q8-zstd"},
        zstandard.ZstdCompressor().compress(b""),
        key,
    ),
    # Served as they were, they broke PCA and every distance.
    "nan": lambda key: seal(
        {"dtype": "float32", "shape": [WIDTH], "codec": "raw"}, float32_payload(np.full(WIDTH, np.nan)), key
    ),
    "infinity": lambda key: seal(
        {"dtype": "float32", "shape": [WIDTH], "codec": "raw"}, float32_payload(np.full(WIDTH, np.inf)), key
    ),
    "wrong-width": lambda key: seal(
        {"dtype": "float32", "shape": [WIDTH - 1], "codec": "raw"}, float32_payload(np.ones(WIDTH - 1)), key
    ),
    "precision-not-a-string": lambda key: seal(
        {"dtype": "float32", "shape": [WIDTH], "codec": "raw", "meta": {"precision": ["float16"]}},
        float32_payload(np.ones(WIDTH)),
        key,
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_EMBEDDINGS))
def test_hostile_embedding_values_are_recomputed(engine: Engine, case: str) -> None:
    first = engine.embeddings(TEXTS)
    assert first.computed == len(TEXTS)
    plant("emb", HOSTILE_EMBEDDINGS[case])
    invalid_before = engine.cache.stats.invalid

    again = engine.embeddings(TEXTS)

    assert again.computed == len(TEXTS) and again.from_cache == 0
    assert np.isfinite(again.vectors).all()
    assert np.allclose(again.vectors, first.vectors, atol=1e-6)
    assert engine.cache.stats.invalid - invalid_before == len(TEXTS)
    stored_values_are_valid("emb", engine.cache)
    assert engine.embeddings(TEXTS).from_cache == len(TEXTS)


def test_metadata_nested_about_a_thousand_deep_is_a_miss(cache: Cache) -> None:
    """The old checksum re-serialised the parsed header, which needs a few more levels of
    recursion than parsing it did: at one depth, which one depending on how deep the stack
    already is, json.loads passed and json.dumps raised RecursionError out of the cache.
    Every depth from 700 to 1,000 is tried, so that the window falls among them."""
    depths = range(700, 1001)
    keys = [f"loupe:v2:emb:deep-{depth}" for depth in depths]
    client = raw_client()
    try:
        for key, depth in zip(keys, depths, strict=True):
            header = b'{"dtype":"float32","shape":[1],"codec":"raw","meta":{"x":%s0%s}}' % (
                b"[" * depth,
                b"]" * depth,
            )
            client.set(key, seal(header, bytes(4), key), ex=600)
    finally:
        client.close()
    assert cache.get_many(keys) == [None] * len(keys)
    assert cache.stats.invalid == len(keys)


def test_nan_embeddings_never_reach_a_projection(engine: Engine) -> None:
    """NaN vectors from the cache made PCA fail; now they are recomputed and the map is finite."""
    first = engine.embeddings(TEXTS)
    plant("emb", HOSTILE_EMBEDDINGS["nan"])
    run = engine.embeddings(TEXTS)
    coords = engine.projection(run.vectors, ProjectionParams(method="pca"), input_id=run.input_id)
    assert run.input_id == first.input_id
    assert coords.shape == (len(TEXTS), 2) and np.isfinite(coords).all()


def test_a_value_copied_to_another_key_is_a_miss(engine: Engine) -> None:
    """Key binding: a valid value of one text moved onto another text's key is never served."""
    first = engine.embeddings(TEXTS)
    keys = engine.row_keys(TEXTS)
    client = raw_client()
    try:
        value = client.get(keys[0])
        assert isinstance(value, bytes)
        for key in keys[1:]:
            client.set(key, value, keepttl=True)
    finally:
        client.close()
    invalid_before = engine.cache.stats.invalid

    again = engine.embeddings(TEXTS)

    assert again.from_cache == 1 and again.computed == len(TEXTS) - 1
    assert np.allclose(again.vectors, first.vectors, atol=1e-6)
    assert engine.cache.stats.invalid - invalid_before == len(TEXTS) - 1


# --- attention, clusters, faithfulness, maps: the @cached loaders ---------------------------


def attention_value(key: str, maps: Any, **meta_changes: Any) -> bytes:
    """The real maps for the text, raw float32, with its real token metadata changed as given."""
    meta: dict[str, Any] = {
        "tokens": list(maps.tokens),
        "offsets": [list(o) for o in maps.offsets],
        "special": list(maps.special),
    }
    meta.update(meta_changes)
    header = {"dtype": "float32", "shape": list(maps.attentions.shape), "codec": "raw", "meta": meta}
    return seal(json.dumps(header).encode(), float32_payload(maps.attentions), key)  # json: Infinity as is


HOSTILE_ATTENTION = {
    # int(inf): OverflowError in the old loader.
    "infinity-offsets": lambda maps: {"offsets": [[0, float("inf")]] * len(maps.tokens)},
    "offsets-beyond-the-text": lambda maps: {"offsets": [[0, 10**6]] * len(maps.tokens)},
    "tokens-not-strings": lambda maps: {"tokens": list(range(len(maps.tokens)))},
    "special-not-booleans": lambda maps: {"special": ["yes"] * len(maps.tokens)},
    "tokens-a-string": lambda maps: {"tokens": "abc"},
}


@pytest.mark.parametrize("case", sorted([*HOSTILE_ATTENTION, "nan-maps"]))
def test_hostile_attention_values_are_recomputed(
    engine: Engine, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = TEXTS[3]
    first = engine.attention(text)
    if case == "nan-maps":
        broken = first.attentions.copy()
        broken[0, 0, 0, 0] = np.nan
        nan_maps = type(first)(first.text, first.tokens, first.offsets, first.special, broken)
        plant("attn", lambda key: attention_value(key, nan_maps))
    else:
        plant("attn", lambda key: attention_value(key, first, **HOSTILE_ATTENTION[case](first)))
    invalid_before = engine.cache.stats.invalid

    with caplog.at_level(logging.WARNING, logger="engine.cache"):
        again = engine.attention(text)

    assert engine.cache.stats.invalid - invalid_before == 1
    assert "recomput" in caplog.text
    assert (again.tokens, again.offsets, again.special) == (first.tokens, first.offsets, first.special)
    assert np.array_equal(again.attentions, first.attentions)  # computed again, not the q8 copy
    stored_values_are_valid("attn", engine.cache)


def blobs(rows_per_blob: int = 20) -> tuple[npt.NDArray[np.float32], list[str]]:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [20, 0], [0, 20]], np.float32)
    coords = np.concatenate([c + rng.standard_normal((rows_per_blob, 2)).astype(np.float32) for c in centres])
    words = ["apple banana cherry", "valkey redis cache", "attention head layer"]
    texts = [f"{words[i // rows_per_blob]} row {i}" for i in range(len(coords))]
    return coords, texts


HOSTILE_CLUSTERS = {
    "names-a-list": lambda labels: ({"names": ["apple", "valkey"]}, labels),  # AttributeError before
    "names-not-strings": lambda labels: ({"names": {str(k): {"x": 1} for k in set(labels) - {-1}}}, labels),
    "names-not-numbered": lambda labels: ({"names": {"first": "apple"}}, labels),
    "labels-2d": lambda labels: ({"names": {}}, np.stack([labels, labels])),
    "labels-below-noise": lambda labels: ({"names": {}}, np.full_like(labels, -7)),
    "names-for-other-labels": lambda labels: ({"names": {"99": "ghost"}}, labels),
    # The window lists clusters 0..highest: 2**31 - 1 would be a list of two billion names.
    "a-cluster-number-past-the-rows": lambda labels: (
        {"names": {"2147483647": "huge"}},
        np.where(labels >= 0, 2147483647, -1).astype(np.int32),
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CLUSTERS))
def test_hostile_cluster_values_are_recomputed(cache: Cache, case: str) -> None:
    engine = Engine(cache)
    coords, texts = blobs()
    first = engine.clusters(coords, texts)
    assert len(first.names) == 3

    def make(key: str) -> bytes:
        meta, labels = HOSTILE_CLUSTERS[case](first.labels)
        header = {"dtype": "int32", "shape": list(labels.shape), "codec": "raw", "meta": meta}
        return seal(header, np.ascontiguousarray(labels, np.int32).tobytes(), key)

    plant("ana", make)
    invalid_before = cache.stats.invalid

    again = engine.clusters(coords, texts)

    assert cache.stats.invalid - invalid_before == 1
    assert np.array_equal(again.labels, first.labels) and again.names == first.names
    stored_values_are_valid("ana", cache)


def test_a_two_dimensional_faithfulness_value_is_recomputed(cache: Cache) -> None:
    engine = Engine(cache)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    coords = vectors[:, :2].copy()
    first = engine.faithfulness(vectors, coords, k=5)
    plant("ana", lambda key: seal({"dtype": "float32", "shape": [2, 40], "codec": "raw"}, bytes(320), key))

    again = engine.faithfulness(vectors, coords, k=5)

    assert again.shape == (40,) and np.array_equal(again, first)
    assert cache.stats.invalid == 1


@pytest.mark.parametrize("case", ["nan", "out-of-range"])
def test_faithfulness_outside_zero_to_one_is_recomputed(cache: Cache, case: str) -> None:
    engine = Engine(cache)
    vectors = np.random.default_rng(2).standard_normal((30, 8)).astype(np.float32)
    first = engine.faithfulness(vectors, vectors[:, :2].copy(), k=5)
    bad = np.full(30, np.nan if case == "nan" else 7.0, np.float32)
    plant("ana", lambda key: seal({"dtype": "float32", "shape": [30], "codec": "raw"}, bad.tobytes(), key))
    assert np.array_equal(engine.faithfulness(vectors, vectors[:, :2].copy(), k=5), first)


def test_a_nan_map_is_recomputed_never_written_out(cache: Cache) -> None:
    engine = Engine(cache)
    vectors = np.random.default_rng(3).standard_normal((50, 16)).astype(np.float32)
    params = ProjectionParams(method="pca")
    first = engine.projection(vectors, params, input_id="fifty-rows")
    nan_map = np.full((50, 2), np.nan, np.float32)
    plant(
        "proj",
        lambda key: seal({"dtype": "float32", "shape": [50, 2], "codec": "raw"}, nan_map.tobytes(), key),
    )

    again = engine.projection(vectors, params, input_id="fifty-rows")

    assert np.isfinite(again).all() and np.array_equal(again, first)
    assert cache.stats.invalid == 1


def test_a_map_of_another_length_is_a_miss(engine: Engine) -> None:
    """cached_map reads one value by the texts alone; one of the wrong row count is not served."""
    run = engine.embeddings(TEXTS)
    params = ProjectionParams(method="pca")
    engine.projection(run.vectors, params, input_id=run.input_id)
    assert engine.cached_map(TEXTS, params) is not None
    short = np.zeros((len(TEXTS) - 1, 2), np.float32)
    plant(
        "proj",
        lambda key: seal(
            {"dtype": "float32", "shape": list(short.shape), "codec": "raw"}, short.tobytes(), key
        ),
    )
    assert engine.cached_map(TEXTS, params) is None


# --- memory: what a crafted value claims is never allocated ---------------------------------

MEASURE = r"""
import json, sys, tracemalloc
from engine.cache.connect import open_cache
from engine.core.engine import Engine


def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


cache = open_cache()
engine = Engine(cache)
keys = engine.row_keys(json.loads(sys.argv[1]))
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # the peak RSS (VmHWM) starts again from the RSS now
rss_before = status_kib("VmRSS")
tracemalloc.start()
found = engine._cached_vectors(keys)
traced_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
peak = status_kib("VmHWM")
print(json.dumps({"rss_before_kib": rss_before, "peak_rss_kib": peak, "rise_kib": peak - rss_before,
                  "traced_peak": traced_peak, "hits": sum(v is not None for v in found),
                  "invalid": cache.stats.invalid, "errors": cache.stats.errors}))
cache.close()
"""


def zstd_zeros(size: int) -> bytes:
    """``size`` zero bytes as one zstd frame that does not declare its size: 8 KB for 256 MiB."""
    compressor = zstandard.ZstdCompressor(level=19).compressobj(size=-1)
    chunk = bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(size // len(chunk))) + compressor.flush()


def measure_lookup(texts: list[str]) -> dict[str, int]:
    """Memory and counters of one fresh process looking up the embeddings of ``texts``."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    measured: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def test_four_crafted_8kb_values_do_not_raise_memory(engine: Engine) -> None:
    """Four values of 8 KB, each claiming 256 MiB of float32, at the keys a batch reads.

    Measured in a fresh process (the rise of its peak RSS, VmHWM reset just before, and
    tracemalloc's peak, around the lookup alone; ru_maxrss would start from this pytest
    process's peak, which Linux hands on across fork and exec): before,
    each was decompressed in full and the batch was held at once (1.3 GB); now the claimed
    shape fails what the caller expects before anything is decompressed.
    """
    texts = TEXTS[:4]
    keys = engine.row_keys(texts)
    bomb = zstd_zeros(256 << 20)
    assert len(bomb) <= 8400
    client = raw_client()
    try:
        for key in keys:
            client.set(key, seal({"dtype": "float32", "shape": [2**26], "codec": "zstd"}, bomb, key), ex=600)
    finally:
        client.close()
    measured = measure_lookup(texts)
    print(f"four crafted 8 KB values: {measured}")
    assert measured["hits"] == 0 and measured["invalid"] == 4
    assert measured["rise_kib"] < 8 * 1024, measured  # a few MB at most, not 4 x 256 MiB
    assert measured["traced_peak"] < 4 << 20, measured


def test_a_huge_value_is_never_read_whole(engine: Engine) -> None:
    """A writer can store values of up to 512 MB. Only as much of one as the call can use is
    fetched (GETRANGE), and a key of another type (a hash) is a miss, not a cache error."""
    texts = TEXTS[:2]
    keys = engine.row_keys(texts)
    client = raw_client()
    try:
        header = {"dtype": "float32", "shape": [WIDTH], "codec": "raw"}
        client.set(keys[0], seal(header, bytes(64 << 20), keys[0]), ex=600)
        client.hset(keys[1], "not", "a string")
        client.expire(keys[1], 600)
    finally:
        client.close()
    measured = measure_lookup(texts)
    print(f"a 64 MiB value and a hash: {measured}")
    assert measured["hits"] == 0 and measured["invalid"] == 1 and measured["errors"] == 0
    assert measured["rise_kib"] < 8 * 1024, measured
    assert measured["traced_peak"] < 4 << 20, measured


# --- the team key ----------------------------------------------------------------------------


def test_with_a_team_key_a_value_without_its_mac_is_a_miss(
    monkeypatch: pytest.MonkeyPatch, minilm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOUPE_CACHE_KEY", TEAM_KEY)
    with caplog.at_level(logging.DEBUG):
        keyed = open_cache()
    try:
        assert keyed.team_key_source == "LOUPE_CACHE_KEY"
        engine = Engine(keyed)
        engine._spec, engine._loaded = minilm.spec, minilm
        first = engine.embeddings(TEXTS)
        keys = engine.row_keys(TEXTS)
        assert engine.embeddings(TEXTS).from_cache == len(TEXTS)  # its own values: hits

        # A writer without the key: values with a valid unkeyed tag, or a MAC under another key.
        forged = np.ones(WIDTH, np.float32)
        client = raw_client()
        try:
            for i, key in enumerate(keys):
                secret = None if i % 2 else bytes(32)
                client.set(key, codec.encode(forged, "raw", {"precision": "float32"}, key=key, secret=secret))
        finally:
            client.close()
        invalid_before = keyed.stats.invalid

        again = engine.embeddings(TEXTS)

        assert again.computed == len(TEXTS)
        assert np.allclose(again.vectors, first.vectors, atol=1e-6)
        assert keyed.stats.invalid - invalid_before == len(TEXTS)
        stored_values_are_valid("emb", keyed)
    finally:
        keyed.close()
    assert TEAM_KEY not in caplog.text

    # The values on the server are sealed with the key: a reader without it gets misses,
    # a reader with it gets hits.
    monkeypatch.delenv("LOUPE_CACHE_KEY")
    keyless = open_cache()
    try:
        assert keyless.team_key_source is None
        assert keyless.get_many(keys) == [None] * len(keys)
    finally:
        keyless.close()
    monkeypatch.setenv("LOUPE_CACHE_KEY", TEAM_KEY)
    again_keyed = open_cache()
    try:
        assert all(hit is not None for hit in again_keyed.get_many(keys))
    finally:
        again_keyed.close()


def test_team_key_from_a_file_and_never_in_settings_or_output(
    monkeypatch: pytest.MonkeyPatch, loupe_home: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "team.key"
    key_file.write_text(TEAM_KEY + "\n")
    key_file.chmod(0o600)
    monkeypatch.setenv("LOUPE_CACHE_KEY_FILE", str(key_file))
    cache = open_cache()
    try:
        assert cache.team_key_source is not None and str(key_file) in cache.team_key_source
        key = "loupe:v2:emb:" + "0" * 40
        cache.set("emb", key, np.ones(4, np.float32))
        assert cache.get(key) is not None
        assert TEAM_KEY not in repr(vars(cache)) and TEAM_KEY.encode() not in repr(vars(cache)).encode()
    finally:
        cache.close()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        [sys.executable, "-m", "desktop.launcher", "cache", "stats", "--verbose"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert TEAM_KEY not in done.stdout + done.stderr
    for written in loupe_home.rglob("*"):  # settings, logs, the server's files
        if written.is_file() and not written.is_socket():
            assert TEAM_KEY.encode() not in written.read_bytes(), written


def test_an_unreadable_team_key_file_turns_the_cache_off_instead_of_trusting_anyone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOUPE_CACHE_KEY_FILE", str(tmp_path / "missing.key"))
    with caplog.at_level(logging.WARNING):
        cache = open_cache()
    try:
        assert cache.description == "cache off"
        assert "missing.key" in caplog.text and "cache is off" in caplog.text
        cache.set("emb", "loupe:v2:emb:x", np.ones(2, np.float32))
        assert cache.get("loupe:v2:emb:x") is None
    finally:
        cache.close()
    (tmp_path / "empty.key").write_text("\n")
    monkeypatch.setenv("LOUPE_CACHE_KEY_FILE", str(tmp_path / "empty.key"))
    cache = open_cache()
    try:
        assert cache.description == "cache off"
    finally:
        cache.close()


def test_team_key_from_the_keyring_for_a_shared_cache_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyring (a stand-in module: the real one is optional) is asked only for a shared cache."""
    from types import SimpleNamespace

    from engine.cache.team_key import TeamKey, find_team_key

    asked: list[tuple[str, str]] = []

    def get_password(service: str, user: str) -> str | None:
        asked.append((service, user))
        return TEAM_KEY if (service, user) == ("loupe-cache", "team-key") else None

    monkeypatch.setitem(sys.modules, "keyring", SimpleNamespace(get_password=get_password))
    assert find_team_key(shared=False) is None and asked == []
    found = find_team_key(shared=True)
    assert found is not None and found.source == "the system keyring"
    assert found.secret == TeamKey(TEAM_KEY.encode(), "x").secret and TEAM_KEY not in repr(found)

    def broken(service: str, user: str) -> str | None:
        raise RuntimeError("no recommended backend was available")

    monkeypatch.setitem(sys.modules, "keyring", SimpleNamespace(get_password=broken))
    assert find_team_key(shared=True) is None


DOCUMENTED_ACL = ["~loupe:*", "+@read", "+@write", "+@keyspace", "+ping", "+info"]  # as the README says


@pytest.fixture
def acl_server_url(loupe_home: Path) -> Iterator[str]:
    """A plain valkey-server on a loopback port whose only user has the README's ACL."""
    from engine.cache.server import find_server_binary
    from tests.conftest import free_port

    port = free_port()
    command = [str(find_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(loupe_home), "--loglevel", "notice"]
    command += ["--user", "alice", "on", ">alice-pass-9Zq", *DOCUMENTED_ACL, "--user", "default", "off"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # blocks until the server says it is ready (or exits)
            if b"Ready to accept connections" in line:
                break
        else:
            raise AssertionError("valkey-server exited at start-up")
        process.stdout.close()  # the server writes on; a closed pipe only loses its log
        yield f"redis://alice:alice-pass-9Zq@127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_documented_acl_is_enough(acl_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_CACHE_KEY", TEAM_KEY)
    cache = open_cache(acl_server_url)
    try:
        key = "loupe:v2:emb:" + "1" * 40
        cache.set("emb", key, np.ones(WIDTH, np.float32))
        assert cache.get(key) is not None and cache.get_many([key, key + "0"])[1] is None
        assert cache.count_by_kind()["emb"] == 1 and cache.memory() is not None
        assert cache.totals().hits >= 1
        assert cache.clear() == 1
        assert cache.available and cache.stats.errors == 0
    finally:
        cache.close()
