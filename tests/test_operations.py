"""Operations against the engine's API in this process (EngineService, the real model and
cache): each updates the model as its results arrive, and a superseded one's are dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from desktop.model.document import AppModel, ShownMap, Source
from desktop.operations import engine_ops
from desktop.operations.bridge import EngineBridge
from desktop.operations.operation import Operation, Operations
from engine.api.types import GroupAttention, Neighbours, RowAttention
from engine.errors import LoupeError
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken, Report

WAIT_MS = 180_000


@pytest.fixture
def operations(qtbot: QtBot) -> Iterator[Operations]:
    bridge = EngineBridge()
    made = Operations(bridge)
    yield made
    bridge.shutdown()


def _csv(path: Path, topics: tuple[str, ...] = ("cats", "ships"), rows: int = 12) -> Path:
    lines = [f"A sentence about {topic} number {i}.,{topic}" for topic in topics for i in range(rows)]
    path.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _model(method: str = "umap") -> AppModel:
    model = AppModel()
    model.set_params(ProjectionParams.from_options(method, {}))
    return model


def _wait_idle(qtbot: QtBot, operations: Operations, failures: list[str]) -> None:
    qtbot.waitUntil(lambda: bool(failures) or not operations.busy, timeout=WAIT_MS)
    assert not failures, failures


def _failures(operations: Operations) -> list[str]:
    failures: list[str] = []
    operations.failed.connect(lambda handle, message: failures.append(message))
    return failures


def test_opening_a_dataset_fills_the_model_step_by_step(
    qtbot: QtBot, operations: Operations, service: Any, tmp_path: Path
) -> None:
    model = _model()
    shown: list[ShownMap | None] = []
    model.map_changed.connect(shown.append)
    notes: list[str] = []
    failures = _failures(operations)
    source = Source("mine.csv", path=_csv(tmp_path / "mine.csv"))
    engine_ops.open_dataset(service, model, source, notes.append).run(operations)
    assert model.source == source and model.opened is None  # cleared at once
    _wait_idle(qtbot, operations, failures)

    assert model.opened is not None and len(model.opened.dataset) == 24
    assert model.run is not None and model.run.dataset_id == model.opened.dataset_id
    maps = [each for each in shown if each is not None]
    assert [each.preview for each in maps] == [True, False]  # the PCA preview, then the map
    assert maps[-1].map.params.method == "umap" and maps[-1].coords.shape == (24, 2)
    assert model.scores is not None and model.scores.map_id == maps[-1].map.map_id
    assert 0.5 < model.scores.trustworthiness <= 1.0
    assert notes == ["24 rows embedded (24 computed, 0 from cache)"]


def test_a_newer_dataset_drops_everything_the_older_one_still_delivers(
    qtbot: QtBot, operations: Operations, service: Any, tmp_path: Path
) -> None:
    model = _model("pca")
    datasets: list[str | None] = []
    model.dataset_changed.connect(lambda opened: datasets.append(opened.dataset.name if opened else None))
    failures = _failures(operations)
    first = _csv(tmp_path / "first.csv", ("cats", "ships"))
    second = _csv(tmp_path / "second.csv", ("trains", "bread", "rain"), rows=5)
    engine_ops.open_dataset(service, model, Source("first", path=first), print).run(operations)
    engine_ops.open_dataset(service, model, Source("second", path=second), print).run(operations)
    _wait_idle(qtbot, operations, failures)
    qtbot.wait(200)  # anything the first job still queued has been delivered (and dropped) by now
    assert model.opened is not None and len(model.opened.dataset) == 15
    assert model.shown is not None and model.shown.coords.shape == (15, 2)
    assert model.scores is not None and len(model.scores.labels) == 15
    opened = [name for name in datasets if name is not None]
    assert len(opened) == 1 and "second" in opened[0], datasets


def test_apply_maps_the_same_run_again_and_the_newest_apply_wins(
    qtbot: QtBot, operations: Operations, service: Any, tmp_path: Path
) -> None:
    model = _model("pca")
    failures = _failures(operations)
    source = Source("mine.csv", path=_csv(tmp_path / "mine.csv"))
    engine_ops.open_dataset(service, model, source, print).run(operations)
    _wait_idle(qtbot, operations, failures)
    run = model.run
    shown: list[str] = []
    model.map_changed.connect(lambda each: shown.append(each.map.params.method) if each else None)
    engine_ops.remap(service, model, ProjectionParams.from_options("umap", {}), print).run(operations)
    engine_ops.remap(service, model, ProjectionParams.from_options("pca", {}, seed=7), print).run(operations)
    _wait_idle(qtbot, operations, failures)
    qtbot.wait(200)
    assert model.run is run  # no new embeddings
    assert shown == ["pca"]  # the first Apply was superseded before it showed anything
    assert model.shown is not None and model.shown.map.params.seed == 7
    assert model.scores is not None and model.scores.map_id == model.shown.map.map_id


def test_interactive_operations_show_only_the_newest_click(
    qtbot: QtBot, operations: Operations, service: Any, tmp_path: Path
) -> None:
    model = _model("pca")
    failures = _failures(operations)
    engine_ops.open_dataset(service, model, Source("m", path=_csv(tmp_path / "m.csv")), print).run(operations)
    _wait_idle(qtbot, operations, failures)
    attended: list[RowAttention] = []
    near: list[Neighbours] = []
    for row in (1, 2, 3):
        engine_ops.attention(service, model, row, attended.append).run(operations)
        engine_ops.neighbours(service, model, row, near.append).run(operations)
    qtbot.waitUntil(
        lambda: bool(attended) and bool(near) and not operations.running("attention"), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: not operations.running("neighbours"), timeout=WAIT_MS)
    assert [each.row for each in attended] == [3]
    assert attended[0].maps.text == model.opened.dataset.texts[3]  # type: ignore[union-attr]
    assert [each.row for each in near] == [3] and len(near[0].indices) == 10

    groups: list[GroupAttention] = []
    engine_ops.group_statistics(service, model, [0, 1, 2], groups.append).run(operations)
    engine_ops.group_statistics(service, model, [4, 5], groups.append).run(operations)
    _wait_idle(qtbot, operations, failures)
    assert [each.rows for each in groups] == [(4, 5)]

    engine_ops.faithfulness(service, model).run(operations)
    _wait_idle(qtbot, operations, failures)
    assert model.faithfulness is not None and model.faithfulness.values.shape == (24,)
    assert np.all((model.faithfulness.values >= 0) & (model.faithfulness.values <= 1))


def test_a_failure_reaches_the_window_once_unless_the_operation_reported_it(
    qtbot: QtBot, operations: Operations, service: Any, tmp_path: Path
) -> None:
    failures = _failures(operations)
    model = _model("pca")
    missing = Source("missing.csv", path=tmp_path / "missing.csv")
    engine_ops.open_dataset(service, model, missing, print).run(operations)
    qtbot.waitUntil(lambda: bool(failures), timeout=WAIT_MS)
    assert failures == [f"No such file or folder: {tmp_path / 'missing.csv'}"]
    assert not operations.busy

    notes: list[str] = []

    def cannot_write() -> list[Path]:
        raise PermissionError(13, "Permission denied", str(tmp_path / "out.svg"))

    engine_ops.export("Export map", cannot_write, notes.append).run(operations)
    qtbot.waitUntil(lambda: bool(notes), timeout=WAIT_MS)
    assert notes == [f"Export failed: Permission denied ({tmp_path / 'out.svg'})."]
    assert len(failures) == 1  # no dialog for it


def test_an_export_is_written_on_a_job_thread(qtbot: QtBot, operations: Operations, tmp_path: Path) -> None:
    import threading

    threads: list[str] = []
    target = tmp_path / "out.csv"

    def write() -> list[Path]:
        threads.append(threading.current_thread().name)
        target.write_text("x\n")
        return [target]

    notes: list[str] = []
    engine_ops.export("Export data", write, notes.append).run(operations)
    qtbot.waitUntil(lambda: bool(notes), timeout=WAIT_MS)
    assert notes == [f"Wrote {target}"] and threads[0].startswith("loupe-")


def test_a_streaming_job_hands_over_each_step_in_order(qtbot: QtBot, operations: Operations) -> None:
    steps: list[int] = []
    finished: list[object] = []

    def job(*, token: CancelToken, report: Report) -> Iterator[int]:
        yield from range(5)

    Operation("count", job).partial(steps.append).success(finished.append).run(operations)
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    assert steps == [0, 1, 2, 3, 4] and finished == [None]


def test_a_superseded_operation_delivers_nothing(qtbot: QtBot, operations: Operations) -> None:
    import threading

    release = threading.Event()
    delivered: list[str] = []

    def slow(*, token: CancelToken, report: Report) -> Iterator[str]:
        release.wait(10)
        yield "old step"

    def fast(*, token: CancelToken, report: Report) -> str:
        return "new"

    Operation("old", slow, key="k").partial(delivered.append).success(delivered.append).run(operations)
    Operation("new", fast, lane="interactive", key="k").success(delivered.append).run(operations)
    release.set()
    qtbot.waitUntil(lambda: not operations.busy, timeout=10_000)
    qtbot.wait(100)
    assert delivered == ["new"]


def test_errors_in_jobs_are_one_sentence(qtbot: QtBot, operations: Operations) -> None:
    failures = _failures(operations)

    def job(*, token: CancelToken, report: Report) -> None:
        raise LoupeError("That column is not there.")

    Operation("broken", job).run(operations)
    qtbot.waitUntil(lambda: bool(failures), timeout=10_000)
    assert failures == ["That column is not there."]
