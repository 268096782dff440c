"""The one map flow (:func:`engine.api.flow.map_flow`), run synchronously on the in-process
:class:`~engine.core.service.EngineService` with the real model and the real embedded cache.

No window and no job lane: the flow is a plain generator, and each test reads its steps one by
one, as the window, ``loupe project``/``export`` and the demo do. The data is small but real:
accents, Cyrillic, CJK, emoji and typographic quotes, in a CSV with a label column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api.flow import Preview, map_flow
from engine.api.types import EmbeddedRun, MapScores, OpenDataset, ProjectedMap
from engine.errors import JobCancelled
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken

TEXTS = [
    ("Ein Kätzchen schläft auf der warmen Fensterbank.", "animals"),
    ("Кошка спит на коврике у двери весь день.", "animals"),
    ("猫がマットの上で静かに寝ている。", "animals"),
    ("The “quoted” cat 🐈 sat on the mat and purred.", "animals"),
    ("Le chien aboie après le facteur chaque matin.", "animals"),
    ("El perro corre feliz por la playa al atardecer.", "animals"),
    ("Die Börse fiel stark, nachdem die Zinsen stiegen.", "finance"),
    ("Рынки акций упали после повышения ставок.", "finance"),
    ("株価は金利の上昇を受けて大きく下落した。", "finance"),
    ("Les marchés 📉 ont chuté après l’annonce de la banque centrale.", "finance"),
    ("The central bank raised interest rates by half a point.", "finance"),
    ("Inflation rose faster than economists had “expected”.", "finance"),
    ("Knead the dough for ten minutes, then let it rise 🍞.", "food"),
    ("Faites revenir les oignons dans du beurre doré.", "food"),
    ("Рецепт борща: свёкла, капуста и немного укропа.", "food"),
    ("味噌汁には豆腐とわかめを入れます。", "food"),
    ("Die Soße köchelt eine Stunde bei schwacher Hitze.", "food"),
    ("Add a pinch of salt and stir the soup 🍲 gently.", "food"),
]
UMAP = ProjectionParams(method="umap", options=(("n_neighbors", 5),))


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    path = tmp_path / "multilingual.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(TEXTS)
    return path


@pytest.fixture
def service(cache: Any, minilm: Any) -> Iterator[Any]:
    """An in-process EngineService on the embedded cache, computing with the session's model
    (float32, so fp32 it is)."""
    from engine.core.service import EngineService

    made = EngineService(cache, device="cpu", precision="fp32")
    made.engine._spec = minilm.spec
    made.engine._loaded = minilm
    yield made
    made.close()


def open_rows(service: Any, path: Path) -> str:
    return str(service.open_dataset(OpenDataset(path, label_column="label")).dataset_id)


def test_steps_arrive_in_order_embedded_preview_map_scores(service: Any, data_csv: Path) -> None:
    dataset_id = open_rows(service, data_csv)
    steps = list(map_flow(service, dataset_id, UMAP))
    assert [type(step) for step in steps] == [EmbeddedRun, Preview, ProjectedMap, MapScores]
    run, preview, shown, scores = steps
    assert isinstance(run, EmbeddedRun) and isinstance(preview, Preview)
    assert isinstance(shown, ProjectedMap) and isinstance(scores, MapScores)
    rows = len(TEXTS)
    assert (run.dataset_id, run.rows, run.width, run.computed, run.from_cache) == (
        dataset_id,
        rows,
        384,
        rows,
        0,
    )
    assert preview.map.params.method == "pca" and preview.map.run_id == run.run_id
    assert shown.params == UMAP and shown.run_id == run.run_id
    for coords in (preview.map.coords, shown.coords):
        assert coords.shape == (rows, 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    assert not np.allclose(preview.map.coords, shown.coords)  # the preview is another map
    assert scores.map_id == shown.map_id and scores.labels.shape == (rows,)
    assert 0.0 <= scores.trustworthiness <= 1.0
    assert set(scores.names) <= {int(label) for label in scores.labels if label >= 0}

    # A second flow on the same rows: embeddings and both maps come from the cache, identical.
    again = list(map_flow(service, dataset_id, UMAP, scores=False))
    assert [type(step) for step in again] == [EmbeddedRun, Preview, ProjectedMap]
    assert again[0].from_cache == rows and again[0].computed == 0  # type: ignore[union-attr]
    np.testing.assert_array_equal(again[2].coords, shown.coords)  # type: ignore[union-attr]


def test_a_given_run_skips_embedding_and_pca_has_no_preview(service: Any, data_csv: Path) -> None:
    dataset_id = open_rows(service, data_csv)
    run = next(map_flow(service, dataset_id, UMAP))
    assert isinstance(run, EmbeddedRun)
    steps = list(map_flow(service, dataset_id, ProjectionParams(method="pca"), run=run, scores=False))
    assert [type(step) for step in steps] == [ProjectedMap]
    assert steps[0].run_id == run.run_id  # type: ignore[union-attr]
    without_preview = list(map_flow(service, dataset_id, UMAP, run=run, preview=False, scores=False))
    assert [type(step) for step in without_preview] == [ProjectedMap]


def test_a_warm_cache_gives_just_the_map_without_loading_the_model(
    service: Any, cache: Any, data_csv: Path
) -> None:
    from engine.core.service import EngineService

    cold = list(map_flow(service, open_rows(service, data_csv), UMAP, preview=False, scores=False))
    assert [type(step) for step in cold] == [EmbeddedRun, ProjectedMap]

    fresh = EngineService(cache, device="cpu", precision="fp32")  # no model given, none loaded yet
    try:
        warm = list(
            map_flow(fresh, open_rows(fresh, data_csv), UMAP, preview=False, scores=False, cached_first=True)
        )
        assert [type(step) for step in warm] == [ProjectedMap]
        np.testing.assert_array_equal(warm[0].coords, cold[1].coords)  # type: ignore[union-attr]
        assert not fresh.engine.model_loaded
    finally:
        fresh.close()


def test_cached_first_on_a_cold_cache_embeds_as_usual(service: Any, data_csv: Path) -> None:
    dataset_id = open_rows(service, data_csv)
    steps = list(map_flow(service, dataset_id, UMAP, preview=False, scores=False, cached_first=True))
    assert [type(step) for step in steps] == [EmbeddedRun, ProjectedMap]


def test_cancelling_between_steps_stops_the_flow(service: Any, data_csv: Path) -> None:
    token = CancelToken()
    flow = map_flow(service, open_rows(service, data_csv), UMAP, token=token)
    assert isinstance(next(flow), EmbeddedRun)
    token.cancel()
    with pytest.raises(JobCancelled):
        next(flow)


def test_cancelling_between_steps_stops_the_flow_on_a_warm_cache(service: Any, data_csv: Path) -> None:
    """Every step here is a cache hit, so no step checks the token inside: the flow itself must."""
    dataset_id = open_rows(service, data_csv)
    list(map_flow(service, dataset_id, UMAP, scores=False))  # warms the embeddings and both maps
    token = CancelToken()
    flow = map_flow(service, dataset_id, UMAP, scores=False, token=token)
    assert isinstance(next(flow), EmbeddedRun)
    token.cancel()
    with pytest.raises(JobCancelled):
        next(flow)
