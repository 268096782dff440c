"""The engine in a child process: the same results as in this process, in words when it fails,
stoppable, restartable after a crash, sharing the cache, and gone when closed."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.cache.connect import open_cache
from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.data.demo_data import build_stdlib_dataset
from engine.errors import BadInputError, JobCancelled, LoupeError
from engine.logs.records import log_context
from engine.maps.projection import ProjectionParams
from engine.process.proxy import EngineCallFailed, EngineProcess, EngineProcessStopped, start_engine
from engine.runtime.jobs import CancelToken


@pytest.fixture
def engine() -> Iterator[EngineProcess]:
    engine = EngineProcess(Cache(None), "minilm", "cpu", no_cache=True)
    yield engine
    engine.close()


@pytest.fixture
def local(minilm: object) -> Engine:
    """The same engine in this process, with the session's model."""
    engine = Engine(Cache(None), "minilm", "cpu")
    engine._loaded = minilm  # type: ignore[assignment]
    return engine


def test_results_match_the_engine_in_this_process(engine: EngineProcess, local: Engine) -> None:
    dataset = engine.demo_dataset(80)
    assert dataset == build_stdlib_dataset(max_rows=80)
    texts = list(dataset.texts)

    progress: list[tuple[int, int, str]] = []
    run = engine.embeddings(
        texts, report=lambda done, total, message="": progress.append((done, total, message))
    )
    here = local.embeddings(texts)
    assert (run.computed, run.from_cache, run.input_id) == (here.computed, here.from_cache, here.input_id)
    np.testing.assert_allclose(run.vectors, here.vectors, atol=1e-5)
    assert (80, 80, "Embedding") in progress

    pca = ProjectionParams(method="pca")
    coords = engine.projection(run.vectors, pca, input_id=run.input_id)
    np.testing.assert_allclose(coords, local.projection(run.vectors, pca), atol=1e-5)
    clustering = engine.clusters(coords, texts)
    expected = local.clusters(coords, texts)
    assert np.array_equal(clustering.labels, expected.labels) and clustering.names == expected.names
    assert engine.trustworthiness(run.vectors, coords) == pytest.approx(
        local.trustworthiness(run.vectors, coords)
    )

    maps, local_maps = engine.attention(texts[3]), local.attention(texts[3])
    assert (maps.tokens, maps.offsets, maps.special) == (
        local_maps.tokens,
        local_maps.offsets,
        local_maps.special,
    )
    np.testing.assert_allclose(maps.attentions, local_maps.attentions, atol=1e-5)
    stats = engine.attention_statistics(texts[:6])
    np.testing.assert_allclose(stats.entropy, local.attention_statistics(texts[:6]).entropy, atol=1e-5)


def test_failures_come_back_as_the_same_kind_in_words(engine: EngineProcess) -> None:
    vectors = np.random.default_rng(0).random((20, 8), dtype=np.float32)
    with pytest.raises(BadInputError, match="Unknown projection method 'nope'"):
        engine.projection(vectors, ProjectionParams(method="nope"))  # type: ignore[arg-type]
    with pytest.raises(LoupeError, match=r"no call named .os\.system."):
        engine.call("os.system", "true")
    with pytest.raises(EngineCallFailed) as failed:  # a bug, not the user's input: with its traceback
        engine.call("demo_dataset", "many")
    assert str(failed.value).startswith("ValueError: invalid literal for int()")
    assert "Traceback" in failed.value.details
    assert engine.projection(vectors, ProjectionParams(method="pca")).shape == (20, 2)  # still serving


def _run_until_embedding(
    engine: EngineProcess, token: CancelToken
) -> tuple[threading.Thread, dict[str, Any]]:
    """Embeds 2,000 demo rows on a thread; returns once the first batch is reported."""
    texts = list(build_stdlib_dataset(max_rows=2000).texts)
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def report(done: int, total: int, message: str = "") -> None:
        if message == "Embedding" and done > 0:
            started.set()

    def run() -> None:
        try:
            outcome["result"] = engine.embeddings(texts, token=token, report=report)
        except BaseException as exc:  # the test looks at what it was
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(120), "the embedding never started"
    return thread, outcome


def test_cancel_returns_at_once_and_the_engine_serves_on(engine: EngineProcess) -> None:
    token = CancelToken()
    thread, outcome = _run_until_embedding(engine, token)
    asked = time.monotonic()
    token.cancel()
    thread.join(10)
    assert isinstance(outcome.get("error"), JobCancelled)
    assert outcome["ended"] - asked < 1.0
    pid = engine.pid
    assert engine.projection(np.eye(4, dtype=np.float32), ProjectionParams(method="pca")).shape == (4, 2)
    assert engine.pid == pid, "a cancel stops the call, not the process"


def test_a_killed_engine_fails_its_calls_in_words_and_the_next_call_restarts_it(
    engine: EngineProcess,
) -> None:
    thread, outcome = _run_until_embedding(engine, CancelToken())
    first = engine.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # as the out-of-memory killer would
    thread.join(30)
    error = outcome.get("error")
    assert isinstance(error, EngineProcessStopped)
    assert str(error).startswith("The engine process was stopped by the system (signal 9")
    assert engine.projection(np.eye(4, dtype=np.float32), ProjectionParams(method="pca")).shape == (4, 2)
    assert engine.pid not in (None, first)


def test_the_child_logs_here_with_the_callers_job_context(
    engine: EngineProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with log_context(job_id=41):
        engine.embeddings(["one text to log about"])
    (ready,) = [
        r for r in caplog.records if r.name == "engine.core.engine" and r.getMessage() == "embeddings ready"
    ]
    assert ready.job_id == 41  # type: ignore[attr-defined]
    assert ready.rows == 1  # type: ignore[attr-defined]  # the child's own structured fields come along


def test_the_child_shares_this_process_cache_and_reports_its_counters(
    minilm: object, loupe_home: Path
) -> None:
    cache = open_cache()  # the embedded server; the child attaches to the same one
    assert "embedded Valkey" in cache.description
    engine = start_engine(cache, "minilm", "cpu")
    assert isinstance(engine, EngineProcess)
    try:
        texts = [f"a sentence about shared caches number {i}" for i in range(12)]
        assert engine.embeddings(texts).computed == 12
        assert cache.stats.misses >= 12 and cache.stats.bytes_written > 0  # the child's, added here
        here = Engine(cache, "minilm", "cpu")
        here._loaded = minilm  # type: ignore[assignment]
        assert here.embeddings(texts).from_cache == 12  # what the child computed is in the shared cache
    finally:
        engine.close()
        cache.close()


def test_close_ends_the_child_and_later_calls_say_so(engine: EngineProcess) -> None:
    engine.projection(np.eye(3, dtype=np.float32), ProjectionParams(method="pca"))  # the child is up
    pid = engine.pid
    assert pid is not None
    # The engine runs below the desktop's CPU priority, so the window keeps its share of the cores.
    assert os.getpriority(os.PRIO_PROCESS, pid) - os.getpriority(os.PRIO_PROCESS, 0) == 10
    engine.close()
    assert engine.pid is None and not Path(f"/proc/{pid}").exists()
    with pytest.raises(LoupeError, match="closed"):
        engine.projection(np.eye(3, dtype=np.float32), ProjectionParams(method="pca"))


def test_in_process_when_asked(loupe_home: Path) -> None:
    engine = start_engine(Cache(None), "minilm", "cpu", in_process=True)
    assert isinstance(engine, Engine)
    assert engine.reconfigured("minilm", "cpu", "cls")._pooling == "cls"
