"""The cache's API as the engine uses it: @cached, statistics shared across processes, float16."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from engine.cache.codec import Decoded, Expected
from engine.cache.connect import open_cache
from engine.cache.decorator import cached
from engine.cache.store import Cache
from engine.core.engine import Engine

ROOT = Path(__file__).resolve().parents[1]


class Squarer:
    """A toy engine: counts how often it really computes."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.computed = 0

    @cached("proj", key=lambda owner, n, power=2: {"n": n, "power": power})
    def powers(self, n: int, power: int = 2) -> npt.NDArray[np.float32]:
        self.computed += 1
        return (np.arange(n, dtype=np.float32)) ** power

    @cached(
        "proj",
        key=lambda owner, n: {"checked": n},
        load=lambda decoded, owner, n: _exactly(decoded, n),
    )
    def checked(self, n: int) -> npt.NDArray[np.float32]:
        self.computed += 1
        return np.ones(n, np.float32)


def _exactly(decoded: Decoded, n: int) -> Any:
    if decoded.array.shape != (n,):
        raise ValueError("wrong length")
    return decoded.array


def test_cached_computes_once_per_distinct_call(cache: Cache) -> None:
    squarer = Squarer(cache)
    first = squarer.powers(5)
    again = squarer.powers(5)
    cubes = squarer.powers(5, power=3)
    assert squarer.computed == 2
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(cubes, np.arange(5, dtype=np.float32) ** 3)
    assert cache.stats.hits == 1 and cache.stats.misses == 2


def test_cached_value_that_does_not_fit_is_recomputed_and_overwritten(cache: Cache) -> None:
    squarer = Squarer(cache)
    squarer.checked(4)
    from engine.cache.keys import cache_key

    cache.set("proj", cache_key("proj", {"checked": 4}), np.zeros(7, np.float32))  # a wrong value
    assert squarer.checked(4).shape == (4,)
    assert squarer.computed == 2
    assert squarer.checked(4).shape == (4,) and squarer.computed == 2  # the good value is back


def test_statistics_add_up_across_processes(cache: Cache) -> None:
    squarer = Squarer(cache)
    squarer.powers(3)
    squarer.powers(3)
    other = open_cache()  # a second client of the same embedded server, as a second process would be
    try:
        Squarer(other).powers(3)
        other.flush_stats()
    finally:
        other.close()
    totals = cache.totals()
    assert (totals.hits, totals.misses) == (2, 1)
    assert totals.get_calls == 3 and totals.get_us > 0 and totals.set_calls == 1
    assert totals.bytes_written > 0 and totals.bytes_read > 0
    assert "67% hits (2 hits, 1 misses, 0 invalid)" in totals.summary()


def test_cli_cache_stats_reports_totals_and_memory(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("text\nThe first sentence.\nAnother sentence here.\nA third, different one.\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}

    def loupe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "desktop.launcher", *args], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip

    loupe("embed", str(csv), "--out", str(tmp_path / "a.npy"), "--quiet")
    loupe("embed", str(csv), "--out", str(tmp_path / "b.npy"), "--quiet")
    stats = loupe("cache", "stats").stdout
    assert "emb: 3 values" in stats
    assert "memory: " in stats and "MiB used of 1024 MiB" in stats
    assert "all processes: 50% hits (3 hits, 3 misses, 0 invalid)" in stats


def test_float16_embeddings_stay_within_their_stated_error(
    monkeypatch: pytest.MonkeyPatch, cache: Cache, minilm: Any
) -> None:
    monkeypatch.setenv("LOUPE_CACHE_FLOAT16", "1")
    texts = ["Half precision in the cache.", "Exact float32 in memory.", "A third text."]
    engine = Engine(cache)
    engine._loaded = minilm
    exact = engine.embeddings(texts).vectors
    from_cache = engine.embeddings(texts)
    assert from_cache.from_cache == 3
    assert not np.array_equal(from_cache.vectors, exact)  # it really was stored as float16
    np.testing.assert_allclose(from_cache.vectors, exact, rtol=2**-11, atol=1e-7)


class TooBig:
    """A toy engine whose results are larger than what its own readers accept."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.computed = 0

    @cached("attn", key=lambda owner, n: {"too-big": n}, expect=lambda owner, n: Expected(max_bytes=64))
    def values(self, n: int) -> npt.NDArray[np.float32]:
        self.computed += 1
        return np.ones(n, np.float32)


def test_a_result_its_readers_would_refuse_is_not_written(cache: Cache) -> None:
    """A value no read accepts would only be rewritten on every run, pushing others out."""
    engine = TooBig(cache)
    engine.values(100)  # 400 bytes, more than the 64 a read accepts
    assert cache.count_by_kind().get("attn", 0) == 0
    engine.values(10)  # 40 bytes: cached, and the second call reads it
    engine.values(10)
    assert engine.computed == 2 and cache.count_by_kind()["attn"] == 1


def test_a_rejection_log_line_is_short_whatever_the_value_holds(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    cache.reject("loupe:v2:ana:x", "unknown codec " + "A" * 1_000_000, count=3)
    [record] = [r for r in caplog.records if "do not fit" in r.getMessage()]
    assert len(record.getMessage()) < 400 and record.getMessage().startswith("3 cache value(s)")
    assert cache.stats.invalid == 3
