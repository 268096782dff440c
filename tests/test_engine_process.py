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

from engine.api.protocol import EngineAPI
from engine.api.types import (
    AttendRow,
    AttendRows,
    Embed,
    EmbeddedRun,
    OpenDataset,
    OpenedDataset,
    Project,
    ScoreMap,
)
from engine.cache.connect import open_cache
from engine.cache.store import Cache
from engine.core.service import EngineService
from engine.data.demo_data import build_stdlib_dataset
from engine.errors import BadInputError, JobCancelled, LoupeError
from engine.maps.projection import ProjectionParams
from engine.process.proxy import EngineCallFailed, EngineProcess, EngineProcessStopped, start_engine
from engine.runtime.context import log_context
from engine.runtime.jobs import CancelToken

PCA = ProjectionParams(method="pca")


@pytest.fixture
def engine() -> Iterator[EngineProcess]:
    engine = EngineProcess(Cache(None), "minilm", "cpu", precision="fp32", no_cache=True)
    yield engine
    engine.close()


@pytest.fixture
def local(minilm: object) -> EngineService:
    """The same engine in this process, with the session's model."""
    service = EngineService(Cache(None), "minilm", "cpu", precision="fp32")
    service.engine._loaded = minilm  # type: ignore[assignment]
    return service


def vectors_dataset(folder: Path, rows: int = 20) -> Path:
    """A table with its own vectors beside it: embedding it needs no model."""
    path = folder / "own.csv"
    path.write_text("text\n" + "".join(f"row {i} é 🙂\n" for i in range(rows)), encoding="utf-8")
    np.save(folder / "own.npy", np.random.default_rng(0).random((rows, 8), dtype=np.float32))
    return path


def mapped(engine: EngineAPI, path: Path) -> tuple[EmbeddedRun, np.ndarray[Any, Any]]:
    """Opens ``path``, embeds it and projects it with PCA (the engine serves)."""
    opened = engine.open_dataset(OpenDataset(path))
    run = engine.embed(Embed(opened.dataset_id))
    return run, engine.project(Project(run.run_id, PCA)).coords


def test_results_match_the_engine_in_this_process(engine: EngineProcess, local: EngineService) -> None:
    opened = engine.open_dataset(OpenDataset(demo_rows=80))
    assert opened.dataset == build_stdlib_dataset(max_rows=80)
    here_opened = local.open_dataset(OpenDataset(demo_rows=80))

    progress: list[tuple[int, int, str]] = []
    run = engine.embed(
        Embed(opened.dataset_id),
        report=lambda done, total, message="": progress.append((done, total, message)),
    )
    here = local.embed(Embed(here_opened.dataset_id))
    assert (run.computed, run.from_cache, run.input_id, run.width) == (
        here.computed,
        here.from_cache,
        here.input_id,
        here.width,
    )
    assert (80, 80, "Embedding") in progress

    shown = engine.project(Project(run.run_id, PCA))
    here_shown = local.project(Project(here.run_id, PCA))
    np.testing.assert_allclose(shown.coords, here_shown.coords, atol=1e-4)
    scores = engine.score_map(ScoreMap(shown.map_id))
    expected = local.score_map(ScoreMap(here_shown.map_id))
    assert np.array_equal(scores.labels, expected.labels) and scores.names == expected.names
    assert scores.trustworthiness == pytest.approx(expected.trustworthiness)

    maps = engine.attend_row(AttendRow(opened.dataset_id, 3)).maps
    local_maps = local.attend_row(AttendRow(here_opened.dataset_id, 3)).maps
    assert (maps.tokens, maps.offsets, maps.special) == (
        local_maps.tokens,
        local_maps.offsets,
        local_maps.special,
    )
    np.testing.assert_allclose(maps.attentions, local_maps.attentions, atol=1e-5)
    rows = tuple(range(6))
    stats = engine.attend_rows(AttendRows(opened.dataset_id, rows)).statistics
    here_stats = local.attend_rows(AttendRows(here_opened.dataset_id, rows)).statistics
    np.testing.assert_allclose(stats.entropy, here_stats.entropy, atol=1e-5)


def test_failures_come_back_as_the_same_kind_in_words(engine: EngineProcess, tmp_path: Path) -> None:
    run, _coords = mapped(engine, vectors_dataset(tmp_path))
    with pytest.raises(BadInputError, match="Unknown projection method 'nope'"):
        engine.project(Project(run.run_id, ProjectionParams(method="nope")))  # type: ignore[arg-type]
    with pytest.raises(LoupeError, match=r"no call named .os\.system."):
        engine.call("os.system", "true")
    with pytest.raises(EngineCallFailed) as failed:  # a bug, not the user's input: with its traceback
        engine.open_dataset(OpenDataset(demo_rows="many"))  # type: ignore[arg-type]
    assert str(failed.value).startswith("ValueError: invalid literal for int()")
    assert "Traceback" in failed.value.details
    assert engine.project(Project(run.run_id, PCA)).coords.shape == (20, 2)  # still serving


def _run_until_embedding(
    engine: EngineProcess, token: CancelToken
) -> tuple[threading.Thread, dict[str, Any]]:
    """Embeds 2,000 demo rows on a thread; returns once the first batch is reported."""
    opened = engine.open_dataset(OpenDataset(demo_rows=2000))
    outcome: dict[str, Any] = {"opened": opened}
    started = threading.Event()

    def report(done: int, total: int, message: str = "") -> None:
        if message == "Embedding" and done > 0:
            started.set()

    def run() -> None:
        try:
            outcome["result"] = engine.embed(Embed(opened.dataset_id), token=token, report=report)
        except BaseException as exc:  # the test looks at what it was
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(120), "the embedding never started"
    return thread, outcome


def test_cancel_returns_at_once_and_the_engine_serves_on(engine: EngineProcess, tmp_path: Path) -> None:
    token = CancelToken()
    thread, outcome = _run_until_embedding(engine, token)
    asked = time.monotonic()
    token.cancel()
    thread.join(10)
    assert isinstance(outcome.get("error"), JobCancelled)
    assert outcome["ended"] - asked < 1.0
    pid = engine.pid
    assert mapped(engine, vectors_dataset(tmp_path))[1].shape == (20, 2)
    assert engine.pid == pid, "a cancel stops the call, not the process"


def test_a_killed_engine_fails_its_calls_in_words_and_the_next_call_restarts_it(
    engine: EngineProcess, tmp_path: Path
) -> None:
    thread, outcome = _run_until_embedding(engine, CancelToken())
    first = engine.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # as the out-of-memory killer would
    thread.join(30)
    error = outcome.get("error")
    assert isinstance(error, EngineProcessStopped)
    assert str(error).startswith("The engine process was stopped by the system (signal 9")
    # The new child does not hold the old one's dataset, and says so in one sentence.
    opened: OpenedDataset = outcome["opened"]
    with pytest.raises(LoupeError, match="open the dataset again"):
        engine.embed(Embed(opened.dataset_id))
    assert mapped(engine, vectors_dataset(tmp_path))[1].shape == (20, 2)
    assert engine.pid not in (None, first)


def test_the_child_logs_here_with_the_callers_job_context(
    engine: EngineProcess, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    (tmp_path / "one.csv").write_text("text\none text to log about\n", encoding="utf-8")
    opened = engine.open_dataset(OpenDataset(tmp_path / "one.csv"))
    with log_context(job_id=41):
        engine.embed(Embed(opened.dataset_id))
    (ready,) = [
        r for r in caplog.records if r.name == "engine.core.engine" and r.getMessage() == "embeddings ready"
    ]
    assert ready.job_id == 41  # type: ignore[attr-defined]
    assert ready.rows == 1  # type: ignore[attr-defined]  # the child's own structured fields come along


def test_the_child_shares_this_process_cache_and_reports_its_counters(
    minilm: object, loupe_home: Path, tmp_path: Path
) -> None:
    cache = open_cache()  # the embedded server; the child attaches to the same one
    assert "embedded Valkey" in cache.description
    engine = start_engine(cache, "minilm", "cpu")
    assert isinstance(engine, EngineProcess)
    try:
        path = tmp_path / "shared.csv"
        path.write_text("text\n" + "".join(f"a sentence about shared caches n° {i}\n" for i in range(12)))
        assert engine.embed(Embed(engine.open_dataset(OpenDataset(path)).dataset_id)).computed == 12
        assert cache.stats.misses >= 12 and cache.stats.bytes_written > 0  # the child's, added here
        here = EngineService(cache, "minilm", "cpu")
        here.engine._loaded = minilm  # type: ignore[assignment]
        opened = here.open_dataset(OpenDataset(path))
        assert here.embed(Embed(opened.dataset_id)).from_cache == 12  # the child's work, in the shared cache
    finally:
        engine.close()
        cache.close()


def test_close_ends_the_child_and_later_calls_say_so(engine: EngineProcess, tmp_path: Path) -> None:
    run, _coords = mapped(engine, vectors_dataset(tmp_path))  # the child is up
    pid = engine.pid
    assert pid is not None
    # The engine runs below the desktop's CPU priority, so the window keeps its share of the cores.
    assert os.getpriority(os.PRIO_PROCESS, pid) - os.getpriority(os.PRIO_PROCESS, 0) == 10
    engine.close()
    assert engine.pid is None and not Path(f"/proc/{pid}").exists()
    with pytest.raises(LoupeError, match="closed"):
        engine.project(Project(run.run_id, PCA))


def test_in_process_when_asked(loupe_home: Path) -> None:
    engine = start_engine(Cache(None), "minilm", "cpu", in_process=True)
    assert isinstance(engine, EngineService)
    assert engine.reconfigured("minilm", "cpu", "cls").engine._pooling == "cls"
