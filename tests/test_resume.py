"""Embedding jobs resume after a crash, and survive losing the cache server mid-job.

* ``loupe embed`` killed with SIGKILL half-way, then started again, computes only the rows the
  killed run had not yet cached (each finished batch is stored at once), and the embedded
  Valkey server — a daemon of its own — outlives the killed client.
* :meth:`Engine.embeddings` whose cache server is SIGKILLed mid-job still returns the full,
  correct matrix: the cache is optional, the result is not.

Progress of the subprocess is read from the server itself (how many embedding keys it holds),
not from the command's progress lines, which are throttled when stderr is not a terminal.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import redis

from engine.cache.connect import open_cache
from engine.cache.keys import kind_pattern
from engine.cache.store import Cache
from engine.core.engine import Engine
from tests.conftest import valkey_pids_under

ROOT = Path(__file__).resolve().parent.parent
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
RESUME_ROWS = 1200
KILL_AT = 0.5  # of the rows cached when the first run is killed
MAX_RECOMPUTED = 0.55  # of the rows the second run may compute
SERVER_KILL_ROWS = 600
ATOL = 1e-5


@functools.cache
def real_texts(count: int, max_chars: int) -> tuple[str, ...]:
    """``count`` distinct stdlib docstring paragraphs of at most ``max_chars`` (short = fast on a CPU)."""
    from engine.data.demo_data import build_stdlib_dataset

    texts = [text for text in build_stdlib_dataset(max_rows=10_000).texts if len(text) <= max_chars]
    assert len(texts) >= count, f"only {len(texts)} stdlib texts of <= {max_chars} characters"
    assert len(set(texts[:count])) == count
    return tuple(texts[:count])


def cli_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}


def loupe_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "desktop.launcher", *(str(arg) for arg in args)]


def reference_engine(minilm: object) -> Engine:
    """An engine without a cache that shares the session's loaded model."""
    engine = Engine(Cache(None))
    engine._loaded = minilm  # type: ignore[assignment]
    return engine


def count_keys(client: redis.Redis, pattern: str) -> int:
    return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


def wait_for_cached_rows(
    process: subprocess.Popen[str], socket: Path, wanted: int, timeout: float
) -> tuple[int, list[int]]:
    """Poll the server every ~50 ms until it holds ``wanted`` embeddings; then SIGKILL ``process``.

    Returns the key count seen just before the kill and the server pids at that moment.
    """
    deadline = time.monotonic() + timeout
    client: redis.Redis | None = None
    try:
        while True:
            assert process.poll() is None, f"the first run ended (exit {process.returncode}) before the kill"
            assert time.monotonic() < deadline, f"fewer than {wanted} rows cached after {timeout:.0f} s"
            if client is None and socket.exists():
                client = redis.Redis(unix_socket_path=str(socket), socket_timeout=2.0)
            count = 0
            if client is not None:
                try:
                    count = count_keys(client, kind_pattern("emb"))
                except redis.ConnectionError:
                    count = 0  # the socket file exists before the server accepts connections
            if count >= wanted:
                servers = valkey_pids_under(socket.parent)
                os.kill(process.pid, signal.SIGKILL)
                return count, servers
            time.sleep(0.05)
    finally:
        if client is not None:
            client.close()


def test_killed_embed_job_resumes_from_the_cache(tmp_path: Path, loupe_home: Path, minilm: object) -> None:
    texts = real_texts(RESUME_ROWS, 100)
    data = tmp_path / "docs.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)
    out = tmp_path / "vectors.npy"
    command = loupe_command("embed", data, "--out", out, "--device", "cpu", "--precision", "fp32")  # vs fp32
    socket = loupe_home / "cache" / "valkey" / "valkey.sock"

    first = subprocess.Popen(
        command, cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        cached_at_kill, servers = wait_for_cached_rows(first, socket, int(KILL_AT * RESUME_ROWS), timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
        first_stderr = first.communicate(timeout=30)[1]
    assert first.returncode == -signal.SIGKILL, first_stderr
    assert not out.exists(), "the killed run must not have written its output"
    assert cached_at_kill < RESUME_ROWS, "the first run finished before it could be killed"

    # The server is its own daemon: it outlives the killed client, with everything it stored.
    assert len(servers) == 1, servers
    time.sleep(0.2)
    assert valkey_pids_under(loupe_home) == servers, "the cache server died with its client"
    with redis.Redis(unix_socket_path=str(socket), socket_timeout=2.0) as client:
        assert count_keys(client, kind_pattern("emb")) >= cached_at_kill

    second = subprocess.run(
        [*command, "--verbose"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert second.returncode == 0, f"exit {second.returncode}\nstderr:\n{second.stderr}"
    assert "Traceback" not in second.stderr, second.stderr
    # The rerun attached to the surviving server (no restart), and as its last live holder —
    # the killed run's lease is dead — stopped it on exit.
    assert f"Attached to cache server {servers[0]}" in second.stderr, second.stderr
    assert valkey_pids_under(loupe_home) == [], "the rerun left the cache server running"

    found = re.search(r"\((\d+) computed, (\d+) from cache", second.stderr)
    assert found, second.stderr
    computed, from_cache = int(found[1]), int(found[2])
    print(f"{cached_at_kill} rows cached at the kill; the rerun: {computed} computed, {from_cache} cached")
    assert computed + from_cache == RESUME_ROWS
    assert from_cache >= cached_at_kill, (from_cache, cached_at_kill)
    assert computed <= MAX_RECOMPUTED * RESUME_ROWS, (
        f"the rerun computed {computed} of {RESUME_ROWS} rows; {cached_at_kill} were cached at the kill"
    )

    vectors = np.load(out, allow_pickle=False)
    assert vectors.shape == (RESUME_ROWS, 384) and vectors.dtype == np.float32
    # Rows from both runs (the killed run embedded the longest texts first) against a fresh
    # computation without any cache.
    sample = list(range(0, RESUME_ROWS, 8))
    expected = reference_engine(minilm).embeddings([texts[i] for i in sample]).vectors
    np.testing.assert_allclose(vectors[sample], expected, atol=ATOL, rtol=0)


def test_cache_server_killed_mid_job_still_gives_the_full_result(loupe_home: Path, minilm: object) -> None:
    texts = list(real_texts(SERVER_KILL_ROWS, 80))
    started = time.monotonic()
    expected = reference_engine(minilm).embeddings(texts).vectors
    reference_s = time.monotonic() - started

    cache = open_cache()
    try:
        assert cache.available, cache.description
        servers = valkey_pids_under(loupe_home)
        assert len(servers) == 1, servers
        engine = Engine(cache)
        engine._loaded = minilm  # type: ignore[assignment]
        killed_at: list[int] = []

        def report(done: int, total: int, message: str = "") -> None:
            if not killed_at and done >= total / 4:
                os.kill(servers[0], signal.SIGKILL)
                killed_at.append(done)

        started = time.monotonic()
        run = engine.embeddings(texts, report=report)
        elapsed = time.monotonic() - started
        assert killed_at and killed_at[0] < len(texts), killed_at
        assert valkey_pids_under(loupe_home) == []
        assert run.computed == len(texts) and run.from_cache == 0
        np.testing.assert_allclose(run.vectors, expected, atol=ATOL, rtol=0)
        assert not engine.cache.available
        assert elapsed < 2 * reference_s + 20, f"{elapsed:.1f} s with the server gone vs {reference_s:.1f} s"
    finally:
        cache.close()
