"""The cache as the engine uses it, against real Valkey servers (never a mock).

The embedded server comes from ``open_cache()`` inside the per-test LOUPE_HOME; "a second
server" is a plain ``valkey-server`` started here on a Unix socket or a free loopback port,
with a finaliser that kills it. Values are poisoned through a raw client, the way a hostile
or broken writer to a shared cache would, and the engine must recompute, never trust them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import redis

from engine.cache import codec
from engine.cache import server as server_module
from engine.cache import store as store_module
from engine.cache.connect import open_cache
from engine.cache.keys import KINDS, cache_key
from engine.cache.server import ServerPaths
from engine.cache.store import TTL_SECONDS, Cache
from engine.core.engine import Engine
from tests.conftest import free_port, timed, valkey_pids_under

TEXTS = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "Redis keeps the embeddings.",
    "Valkey is a fork of Redis.",
    "Attention is all you need.",
    "Bonjour tout le monde.",
    "Numbers: 1, 2, 3, 4, 5.",
    "An empty-ish line",
    "Pickles belong in jars, not in caches.",
    "The last of ten texts.",
]


# --- helpers -----------------------------------------------------------------------------


def embedded_client() -> redis.Redis:
    """A raw client to the embedded server of this test's LOUPE_HOME."""
    from engine.runtime.paths import cache_dir

    paths = ServerPaths.in_directory(cache_dir() / "valkey")
    return redis.Redis(unix_socket_path=str(paths.socket), socket_timeout=5)


def loupe_keys(client: redis.Redis, kind: str | None = None) -> list[bytes]:
    return sorted(client.scan_iter(match=f"loupe:*:{kind or '*'}:*", count=1000))


class FileCreator:
    """Unpickling this creates ``path``: the payload an attacker would plant in the cache."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str, str]]:
        return (open, (str(self.path), "w"))


def forged_object_value(payload: bytes, key: str) -> bytes:
    """A well-formed Loupe envelope for ``key``, valid (unkeyed) tag included, holding a pickle
    as dtype object: what a writer who knows the documented layout, but no team key, can make."""
    header = {"dtype": "object", "shape": [1], "codec": "raw", "meta": {}}
    return codec.pack(json.dumps(header).encode(), payload, key=key)


def poisoner(kind: str, marker: Path) -> Callable[[bytes, str], bytes]:
    """A function from a valid stored value and its key to its poisoned replacement."""
    import pickle  # only to build the hostile bytes; nothing here ever unpickles

    planted = pickle.dumps(FileCreator(marker), protocol=pickle.HIGHEST_PROTOCOL)
    assert b"open" in planted and str(marker).encode() in planted
    rng = np.random.default_rng(7)
    return {
        "pickle": lambda valid, key: planted,
        "pickle-in-envelope": lambda valid, key: forged_object_value(planted, key),
        "random": lambda valid, key: rng.bytes(len(valid)),
        "truncated": lambda valid, key: valid[: len(valid) // 2],
    }[kind]


POISONS = ["pickle", "pickle-in-envelope", "random", "truncated"]


class PlainServer:
    """A plain valkey-server (no persistence) on a Unix socket or a loopback TCP port."""

    def __init__(self, directory: Path, transport: str) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket = directory / "v.sock"
        self.port = free_port() if transport == "tcp" else 0
        self.url = f"redis://127.0.0.1:{self.port}" if self.port else f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(server_module.find_server_binary()), "--port", str(self.port)]
        command += ["--bind", "127.0.0.1"] if self.port else ["--unixsocket", str(self.socket)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping():
                        return
                assert self.process.poll() is None, "valkey-server exited at start-up"
                assert time.monotonic() < deadline, "valkey-server did not answer"
                time.sleep(0.01)
        finally:
            client.close()

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def plain_server(loupe_home: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str], PlainServer]]:
    """A factory of plain servers, each killed after the test whatever happens."""
    started: list[PlainServer] = []

    def make(transport: str) -> PlainServer:
        server = PlainServer(loupe_home / f"second{len(started)}", transport)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        with contextlib.suppress(ProcessLookupError):
            server.signal(signal.SIGCONT)
        server.kill()


def arrays(count: int, seed: int = 0) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(384).astype(np.float32) for _ in range(count)]


# --- the embedded server -----------------------------------------------------------------


def test_put_get_and_stats(cache: Cache) -> None:
    vectors = arrays(5)
    keys = [cache_key("emb", {"row": i}) for i in range(5)]
    assert cache.available and "unreachable" not in cache.description
    assert cache.get_many(keys) == [None] * 5
    assert (cache.stats.hits, cache.stats.misses, cache.stats.bytes_read) == (0, 5, 0)

    cache.set_many("emb", list(zip(keys[:3], vectors[:3], strict=True)))
    written = sum(len(codec.encode(v, "zstd")) for v in vectors[:3])
    assert cache.stats.bytes_written == written

    got = cache.get_many(keys)
    assert [g is not None for g in got] == [True, True, True, False, False]
    for decoded, vector in zip(got[:3], vectors[:3], strict=False):
        assert decoded is not None and decoded.array.dtype == np.float32
        assert np.array_equal(decoded.array, vector)
    assert (cache.stats.hits, cache.stats.misses) == (3, 7)
    assert cache.stats.bytes_read == written
    assert cache.stats.invalid == 0 and cache.stats.errors == 0

    single = cache_key("attn", {"text": "x"})
    attention = np.full((2, 3, 3), 1 / 3, np.float32)
    cache.set("attn", single, attention, codec_name="q8-zstd", meta={"tokens": ["a", "b", "c"]})
    hit = cache.get(single)
    assert hit is not None and hit.meta == {"tokens": ["a", "b", "c"]}
    assert np.abs(hit.array - attention).max() <= 0.5 / 255 + 1e-7
    assert cache.stats.hits == 4


def test_values_carry_the_ttl_of_their_kind(cache: Cache) -> None:
    for kind in KINDS:
        cache.set(kind, cache_key(kind, {"n": 1}), np.ones(3, np.float32))
    client = embedded_client()
    try:
        for kind in KINDS:
            (key,) = loupe_keys(client, kind)
            assert TTL_SECONDS[kind] - 60 <= client.ttl(key) <= TTL_SECONDS[kind]
    finally:
        client.close()


def test_count_by_kind_and_clear(cache: Cache) -> None:
    wanted = {"emb": 4, "proj": 2, "attn": 3, "ana": 1, "cmp": 2}
    for kind, count in wanted.items():
        cache.set_many(kind, [(cache_key(kind, {"i": i}), np.full(2, i, np.float32)) for i in range(count)])
    client = embedded_client()
    try:
        client.set("someone-else:data", b"not ours")  # a shared server holds other keys too
        client.set("loupe:v0:emb:old-schema", b"not this schema")
        assert cache.count_by_kind() == wanted

        assert cache.clear("proj") == 2
        assert cache.count_by_kind() == {"emb": 4, "proj": 0, "attn": 3, "ana": 1, "cmp": 2}
        assert cache.get(cache_key("emb", {"i": 3})) is not None  # other kinds untouched
        assert cache.get(cache_key("proj", {"i": 1})) is None

        assert cache.clear() == 10
        assert cache.count_by_kind() == {"emb": 0, "proj": 0, "attn": 0, "ana": 0, "cmp": 0}
        assert client.get("someone-else:data") == b"not ours"
        assert client.get("loupe:v0:emb:old-schema") == b"not this schema"
    finally:
        client.close()


def test_values_persist_across_close_and_reopen(loupe_home: Path) -> None:
    key = cache_key("emb", {"persist": True})
    vector = arrays(1, seed=3)[0]
    first = open_cache()
    first.set("emb", key, vector)
    assert valkey_pids_under(loupe_home)
    first.close()
    assert valkey_pids_under(loupe_home) == []  # the only holder left: the server stopped

    second = open_cache()
    try:
        assert valkey_pids_under(loupe_home)
        hit = second.get(key)
        assert hit is not None and np.array_equal(hit.array, vector)
        assert second.stats.hits == 1
    finally:
        second.close()
    assert valkey_pids_under(loupe_home) == []


# --- poisoned values through the engine --------------------------------------------------


@pytest.mark.parametrize("poison", POISONS)
def test_poisoned_embeddings_are_recomputed(engine: Engine, loupe_home: Path, poison: str) -> None:
    marker = loupe_home / "unpickled-the-cache"
    first = engine.embeddings(TEXTS)
    assert first.computed == len(TEXTS) and first.from_cache == 0
    assert engine.embeddings(TEXTS).from_cache == len(TEXTS)

    client = embedded_client()
    try:
        keys = loupe_keys(client, "emb")
        assert len(keys) == len(TEXTS)
        make_bad = poisoner(poison, marker)
        for key in keys:
            valid = client.get(key)
            assert isinstance(valid, bytes)
            client.set(key, make_bad(valid, key.decode()), keepttl=True)
        invalid_before = engine.cache.stats.invalid

        again = engine.embeddings(TEXTS)

        assert not marker.exists()
        assert again.computed == len(TEXTS) and again.from_cache == 0
        assert np.allclose(again.vectors, first.vectors, atol=1e-6)
        assert engine.cache.stats.invalid - invalid_before == len(TEXTS)
        assert loupe_keys(client, "emb") == keys
        for key in keys:  # the server holds valid values again
            stored = client.get(key)
            assert isinstance(stored, bytes)
            decoded = codec.decode(stored, key=key.decode())
            assert decoded.array.shape == (first.vectors.shape[1],)
            assert client.ttl(key) > 0
        assert engine.embeddings(TEXTS).from_cache == len(TEXTS)
    finally:
        client.close()
    assert not marker.exists()


@pytest.mark.parametrize("poison", POISONS)
def test_poisoned_attention_is_recomputed(engine: Engine, loupe_home: Path, poison: str) -> None:
    marker = loupe_home / "unpickled-the-cache"
    text = "The cat sat on the mat."
    first = engine.attention(text)
    client = embedded_client()
    try:
        (key,) = loupe_keys(client, "attn")
        valid = client.get(key)
        assert isinstance(valid, bytes)
        client.set(key, poisoner(poison, marker)(valid, key.decode()), keepttl=True)
        invalid_before = engine.cache.stats.invalid

        again = engine.attention(text)

        assert not marker.exists()
        assert engine.cache.stats.invalid - invalid_before == 1
        assert again.tokens == first.tokens and again.offsets == first.offsets
        assert again.special == first.special
        assert np.allclose(again.attentions, first.attentions, atol=1e-6)
        stored = client.get(key)
        assert isinstance(stored, bytes)
        decoded = codec.decode(stored, key=key.decode())
        assert list(decoded.meta["tokens"]) == list(first.tokens)
        assert client.ttl(key) > 0

        hits_before = engine.cache.stats.hits
        cached = engine.attention(text)  # now from the cache, quantised
        assert engine.cache.stats.hits == hits_before + 1
        assert cached.tokens == first.tokens
        assert np.abs(cached.attentions - first.attentions).max() <= 0.5 / 255 + 1e-7
    finally:
        client.close()


def test_wrong_shaped_embedding_value_is_recomputed(engine: Engine) -> None:
    first = engine.embeddings(TEXTS[:4])
    client = embedded_client()
    try:
        keys = loupe_keys(client, "emb")
        for key, wrong in zip(keys, [np.zeros(3, np.float32), np.zeros((2, 384), np.float32)], strict=False):
            client.set(key, codec.encode(wrong, "raw", key=key.decode()), keepttl=True)
    finally:
        client.close()
    again = engine.embeddings(TEXTS[:4])
    assert again.vectors.shape == first.vectors.shape
    assert np.allclose(again.vectors, first.vectors, atol=1e-6)


# --- a server that goes away -------------------------------------------------------------


@pytest.mark.parametrize(("transport", "failure"), [("unix", "kill"), ("tcp", "kill"), ("unix", "hang")])
def test_degrades_to_misses_and_recovers(
    plain_server: Callable[[str], PlainServer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    transport: str,
    failure: str,
) -> None:
    monkeypatch.setattr(store_module, "_RETRY_AFTER_S", 0.2)
    server = plain_server(transport)
    cache = timed(lambda: open_cache(redis_url=server.url))
    try:
        assert cache.available and "unreachable" not in cache.description
        vectors = arrays(3)
        keys = [cache_key("emb", {"degrade": i}) for i in range(3)]
        cache.set_many("emb", list(zip(keys, vectors, strict=True)))
        assert all(hit is not None for hit in cache.get_many(keys))

        if failure == "kill":
            server.kill()
        else:
            server.signal(signal.SIGSTOP)  # alive but silent: only timeouts can tell
        with caplog.at_level(logging.WARNING, logger="engine.cache.store"):
            for _ in range(3):
                timed(lambda: cache.set_many("emb", [(keys[0], vectors[0])]))
                assert timed(lambda: cache.get_many(keys)) == [None, None, None]
                assert timed(lambda: cache.get(keys[1])) is None
                assert timed(cache.count_by_kind) == {}
                assert timed(cache.clear) == 0
        assert not cache.available
        assert "unreachable" in cache.description
        assert cache.stats.errors >= 1
        assert "unreachable" in caplog.text

        if failure == "kill":
            server.start()  # same socket / port, empty (no persistence)
        else:
            server.signal(signal.SIGCONT)
        time.sleep(0.3)  # past the retry delay
        fresh = cache_key("emb", {"after": True})
        timed(lambda: cache.set("emb", fresh, vectors[2]))
        hit = timed(lambda: cache.get(fresh))
        assert hit is not None and np.array_equal(hit.array, vectors[2])
        assert cache.available and "unreachable" not in cache.description
    finally:
        timed(cache.close)


def test_unreachable_url_at_start_works_as_misses(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://loupe:s3cret-pass@127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.DEBUG):
        cache = timed(lambda: open_cache(redis_url=url))
        try:
            key = cache_key("emb", {"x": 1})
            for _ in range(3):
                timed(lambda: cache.set("emb", key, np.ones(4, np.float32)))
                assert timed(lambda: cache.get(key)) is None
            assert not cache.available
            assert "unreachable" in cache.description
            assert "s3cret-pass" not in cache.description
        finally:
            cache.close()
    assert "s3cret-pass" not in caplog.text


def test_unreachable_url_is_reported_at_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_REDIS_URL", f"redis://127.0.0.1:{free_port()}")
    cache = timed(open_cache)
    try:
        assert not cache.available
        assert "unreachable" in cache.description
    finally:
        cache.close()


def test_url_from_environment_is_used(
    plain_server: Callable[[str], PlainServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = plain_server("tcp")
    monkeypatch.setenv("LOUPE_REDIS_URL", server.url)
    cache = open_cache()
    try:
        assert cache.description.startswith("shared cache at redis://127.0.0.1:")
        key = cache_key("proj", {"env": 1})
        cache.set("proj", key, np.ones((3, 2), np.float32))
        assert cache.get(key) is not None
        client = redis.Redis.from_url(server.url)
        try:
            assert client.exists(key) == 1
        finally:
            client.close()
    finally:
        cache.close()


# --- no server at all --------------------------------------------------------------------


def test_in_process_fallback_without_a_server_binary(
    monkeypatch: pytest.MonkeyPatch, loupe_home: Path
) -> None:
    def no_binary() -> Path:
        raise server_module.NoServerBinary("no server binary in this test")

    monkeypatch.setattr(server_module, "find_server_binary", no_binary)
    cache = timed(open_cache)
    try:
        assert "in-process" in cache.description
        assert cache.available
        assert valkey_pids_under(loupe_home) == []
        key = cache_key("emb", {"memory": 1})
        vector = arrays(1)[0]
        cache.set("emb", key, vector)
        hit = cache.get(key)
        assert hit is not None and np.array_equal(hit.array, vector)
        assert cache.count_by_kind() == {"emb": 1, "proj": 0, "attn": 0, "ana": 0, "cmp": 0}
        assert cache.clear("emb") == 1 and cache.get(key) is None
        assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    finally:
        cache.close()


def test_no_cache(loupe_home: Path) -> None:
    cache = open_cache(no_cache=True)
    try:
        assert cache.description == "cache off"
        assert not cache.available
        key = cache_key("emb", {"off": 1})
        cache.set("emb", key, np.ones(4, np.float32))
        assert cache.get(key) is None
        assert cache.get_many([key, key]) == [None, None]
        assert cache.count_by_kind() == {} and cache.clear() == 0
        assert cache.stats.bytes_written == 0 and cache.stats.hits == 0
        assert valkey_pids_under(loupe_home) == []
    finally:
        cache.close()


def test_cli_uses_the_server_given_with_redis(
    plain_server: Callable[[str], PlainServer], loupe_home: Path, tmp_path: Path
) -> None:
    """`--redis URL` caches there, and the embedded server is never started."""
    server = plain_server("tcp")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    command = [
        sys.executable,
        "-m",
        "desktop.launcher",
        "attention",
        "--text",
        "A shared cache.",
        "--redis",
        server.url,
    ]
    stderr = {}
    for name in ("first", "second"):
        done = subprocess.run(
            [*command, "--out", str(tmp_path / f"{name}.npz"), "--verbose"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        stderr[name] = done.stderr
    assert "loading model" in stderr["first"]
    assert "loading model" not in stderr["second"], "the second run was served from the shared server"
    client = redis.Redis.from_url(server.url)
    try:
        assert len(loupe_keys(client, "attn")) == 1
    finally:
        client.close()
    assert not (loupe_home / "cache" / "valkey" / "valkey.sock").exists()
