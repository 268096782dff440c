"""EngineService: the engine's API in this process, with the real model, on data that looks like
users' (several languages, accents, emoji); ids name what it holds and go stale in one sentence."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.api.flow import Preview, map_flow
from engine.api.protocol import EngineAPI
from engine.api.types import (
    AttendRow,
    AttendRows,
    CloseDataset,
    Embed,
    EmbeddedRun,
    FindCachedMap,
    FindNeighbours,
    Identify,
    MapScores,
    OpenDataset,
    Project,
    ProjectedMap,
    ScoreMap,
    ScoreRows,
    Sweep,
)
from engine.cache.store import Cache
from engine.core.service import KEEP_DATASETS, EngineService
from engine.errors import BadInputError, LoupeError
from engine.maps.projection import ProjectionParams

# Short texts in several scripts, with accents and emoji, as users' files have them.
TEXTS = [
    "Crème brûlée au caramel 🍮",
    "Le café est très chaud ☕",
    "Schöne Grüße aus München 🏔️",
    "Über den Wolken ist die Freiheit",
    "¿Dónde está la biblioteca? 📚",
    "Mañana vamos a la playa 🏖️",
    "Привет, как дела?",
    "Москва — столица России",
    "日本語の文章です",
    "東京は大きな都市です 🗼",
    "مرحبا بالعالم",
    "The quick brown fox 🦊 jumps",
    "A lazy dog sleeps all day 🐕",
    "Python est un langage 🐍",
    "Ελληνικά γράμματα αβγ",
    "Οι φιλόσοφοι της Αθήνας",
    "Çok güzel bir gün ☀️",
    "Ça va très bien, merci !",
    "नमस्ते दुनिया",
    "한국어 문장입니다 🇰🇷",
    "Zażółć gęślą jaźń",
    "Ångström and naïve façade",
    "I love pizza 🍕🍕",
    "Les élèves étudient à l'école",
]
LABELS = ["food", "food", "travel", "travel", "place", "travel", "chat", "place"]
LABELS += ["lang", "place", "chat", "animal", "animal", "lang", "lang", "place"]
LABELS += ["chat", "chat", "chat", "lang", "lang", "lang", "food", "place"]


STALE = r"^The engine no longer holds this .*; open the dataset again\.$"


def write_dataset(folder: Path, texts: list[str] = TEXTS, name: str = "mixed") -> Path:
    path = folder / f"{name}.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, LABELS[: len(texts)], strict=True))
    return path


@pytest.fixture
def service(cache: Cache, minilm: object) -> Iterator[EngineService]:
    """A service on the embedded cache (a real Valkey) that reuses the session's model."""
    made = EngineService(cache, "minilm", "cpu")
    made.engine._spec = minilm.spec  # type: ignore[attr-defined]
    made.engine._loaded = minilm  # type: ignore[assignment]
    yield made
    made.close()


def test_the_service_is_an_engine_api(service: EngineService) -> None:
    assert isinstance(service, EngineAPI)
    identity = service.identify(Identify())
    assert identity.model_name == "minilm" and identity.pooling == "mean"
    assert identity.model_identity.startswith("model@") and identity.layers == 6


def test_identify_never_loads_the_model() -> None:
    fresh = EngineService(Cache(None), "minilm", "cpu")
    assert fresh.identify(Identify()).max_length > 0
    assert not fresh.engine.model_loaded


def test_map_flow_runs_end_to_end_on_users_data(service: EngineService, tmp_path: Path) -> None:
    opened = service.open_dataset(OpenDataset(write_dataset(tmp_path)))
    assert list(opened.dataset.texts) == TEXTS and opened.dataset.has_labels
    progress: list[str] = []
    steps = list(
        map_flow(
            service,
            opened.dataset_id,
            ProjectionParams.from_options("umap", {"n_neighbors": 5}, seed=1),
            report=lambda done, total, message="": progress.append(message),
        )
    )
    assert [type(step) for step in steps] == [EmbeddedRun, Preview, ProjectedMap, MapScores]
    run, preview, shown, scores = steps
    assert isinstance(run, EmbeddedRun) and isinstance(preview, Preview)
    assert isinstance(shown, ProjectedMap) and isinstance(scores, MapScores)
    assert (run.rows, run.width, run.computed, run.from_cache) == (len(TEXTS), 384, len(TEXTS), 0)
    assert preview.map.params.method == "pca" and preview.map.coords.shape == (len(TEXTS), 2)
    assert shown.coords.shape == (len(TEXTS), 2) and shown.run_id == run.run_id
    assert scores.map_id == shown.map_id and scores.labels.shape == (len(TEXTS),)
    assert 0.0 <= scores.trustworthiness <= 1.0
    assert {name for _x, _y, name in scores.centres} == set(scores.names.values())
    assert "Embedding" in progress

    again = service.embed(Embed(opened.dataset_id))  # the rows are cached now
    assert (again.computed, again.from_cache, again.input_id) == (0, len(TEXTS), run.input_id)
    faithful = service.score_rows(ScoreRows(shown.map_id, k=5))
    assert faithful.values.shape == (len(TEXTS),) and 0 <= faithful.values.min() <= faithful.values.max() <= 1
    near = service.find_neighbours(FindNeighbours(run.run_id, row=0, k=3))
    assert near.row == 0 and len(near.indices) == 3 and 0 not in near.indices
    row = service.attend_row(AttendRow(opened.dataset_id, 0))
    assert row.maps.text == TEXTS[0] and row.maps.attentions.shape[0] == 6
    group = service.attend_rows(AttendRows(opened.dataset_id, (0, 8, 22)))
    assert group.rows == (0, 8, 22) and group.statistics.requested == 3
    grid = service.sweep(
        Sweep(
            run.run_id,
            ProjectionParams(method="umap", seed=1),
            "n_neighbors",
            ("4", "6"),
            "min_dist",
            ("0.1",),
        )
    )
    assert len(grid.cells) == 1 and len(grid.cells[0]) == 2


def test_a_cached_map_is_found_without_embeddings_and_says_it_needs_them(
    service: EngineService, tmp_path: Path
) -> None:
    params = ProjectionParams(method="pca", seed=2)
    opened = service.open_dataset(OpenDataset(write_dataset(tmp_path)))
    assert service.find_cached_map(FindCachedMap(opened.dataset_id, params)).map is None
    run = service.embed(Embed(opened.dataset_id))
    made = service.project(Project(run.run_id, params))
    found = service.find_cached_map(FindCachedMap(opened.dataset_id, params)).map
    assert found is not None and found.run_id == "" and found.map_id != made.map_id
    np.testing.assert_allclose(found.coords, made.coords)
    with pytest.raises(LoupeError, match="embed the dataset first"):
        service.score_map(ScoreMap(found.map_id))


def test_a_datasets_own_vectors_are_its_embeddings(service: EngineService, tmp_path: Path) -> None:
    path = write_dataset(tmp_path, TEXTS[:12], "own")
    vectors = np.random.default_rng(0).random((12, 7), dtype=np.float32)
    np.save(tmp_path / "own.npy", vectors)
    opened = service.open_dataset(OpenDataset(path))
    run = service.embed(Embed(opened.dataset_id, layer=3))  # the layer does not matter to them
    assert (run.rows, run.width, run.computed, run.from_cache) == (12, 7, 0, 0)
    assert service.find_cached_map(FindCachedMap(opened.dataset_id, ProjectionParams())).map is None
    shown = service.project(Project(run.run_id, ProjectionParams(method="pca")))
    assert shown.coords.shape == (12, 2)


def test_ids_go_stale_in_one_sentence(service: EngineService, tmp_path: Path) -> None:
    first = service.open_dataset(OpenDataset(write_dataset(tmp_path, TEXTS[:10], "first")))
    run = service.embed(Embed(first.dataset_id))
    shown = service.project(Project(run.run_id, ProjectionParams(method="pca")))
    later = [
        service.open_dataset(OpenDataset(write_dataset(tmp_path, TEXTS[i : i + 10], f"later{i}")))
        for i in range(KEEP_DATASETS)
    ]
    # The oldest dataset was dropped with its run and map; the newer ones are still held.
    for stale in (
        lambda: service.embed(Embed(first.dataset_id)),
        lambda: service.project(Project(run.run_id, ProjectionParams(method="pca"))),
        lambda: service.score_map(ScoreMap(shown.map_id)),
        lambda: service.find_neighbours(FindNeighbours(run.run_id, 0)),
        lambda: service.attend_row(AttendRow(first.dataset_id, 0)),
    ):
        with pytest.raises(LoupeError, match=STALE):
            stale()
    assert service.embed(Embed(later[-1].dataset_id)).rows == 10
    service.close_dataset(CloseDataset(later[-1].dataset_id))
    service.close_dataset(CloseDataset("never-opened"))  # nothing to do
    with pytest.raises(LoupeError, match="open the dataset again"):
        service.embed(Embed(later[-1].dataset_id))
    with pytest.raises(LoupeError, match="open the dataset again"):
        service.embed(Embed("0123456789ab"))


def test_bad_requests_are_one_sentence(service: EngineService, tmp_path: Path) -> None:
    opened = service.open_dataset(OpenDataset(write_dataset(tmp_path, TEXTS[:6], "small")))
    with pytest.raises(BadInputError, match="Row 6 is not a row of this dataset"):
        service.attend_row(AttendRow(opened.dataset_id, 6))
    with pytest.raises(BadInputError, match="Name a dataset"):
        service.open_dataset(OpenDataset())
    with pytest.raises(BadInputError, match="Unknown pooling"):
        service.reconfigured("minilm", "cpu", "median")


def test_the_demo_dataset_and_reconfigured(service: EngineService) -> None:
    demo = service.open_dataset(OpenDataset(demo_rows=30))
    assert len(demo.dataset) == 30
    other = service.reconfigured("minilm", "cpu", "cls")
    assert other.identify(Identify()).pooling == "cls" and other.cache is service.cache
    with pytest.raises(LoupeError, match="open the dataset again"):
        service.embed(Embed(demo.dataset_id))  # the old engine was closed
