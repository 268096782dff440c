"""The progressive map (:mod:`engine.core.progressive`): a large dataset's sample mapped first,
the other rows placed as they are embedded, then the real map, on the in-process
:class:`~engine.core.service.EngineService` with the real model and the real embedded cache.

"Large" is made small here: the threshold comes from ``LOUPE_PROGRESSIVE_ABOVE_ROWS``, lowered
for these tests to below the 400 rows of real text (standard library docstrings and sentences
in German, Russian, Japanese, French and Spanish with emoji and typographic quotes).
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api.flow import Preview, map_flow
from engine.api.types import (
    Embed,
    EmbeddedRun,
    MapSample,
    OpenDataset,
    PlaceRows,
    ProgressiveMap,
    ProjectedMap,
)
from engine.core.progressive import ABOVE_ROWS_VARIABLE, spread_order
from engine.errors import JobCancelled, LoupeError
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken

ROWS = 400
PCA = ProjectionParams(method="pca", seed=3)
# UMAP's first fit in a process compiles for minutes on a busy machine: the tests map with PCA,
# t-SNE shows the asked-for method is fitted on the sample (its own flow, not PCA's).
TSNE = ProjectionParams(method="tsne", options=(("perplexity", 10.0),))
MULTILINGUAL = [
    "Ein Kätzchen schläft auf der warmen Fensterbank.",
    "Кошка спит на коврике у двери весь день.",
    "猫がマットの上で静かに寝ている。",
    "The “quoted” cat 🐈 sat on the mat and purred.",
    "Les marchés 📉 ont chuté après l’annonce de la banque centrale.",
    "El perro corre feliz por la playa al atardecer.",
    "Рецепт борща: свёкла, капуста и немного укропа.",
    "味噌汁には豆腐とわかめを入れます。",
]


def write_rows(path: Path, rows: int = ROWS) -> Path:
    """A CSV of ``rows`` real texts: docstrings, with a multilingual sentence every 20 rows."""
    from engine.data.demo_data import build_stdlib_dataset

    docs = build_stdlib_dataset(rows).texts
    texts = [
        MULTILINGUAL[(i // 20) % len(MULTILINGUAL)] + f" ({i})" if i % 20 == 0 else docs[i]
        for i in range(rows)
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)
    return path


@pytest.fixture
def lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ABOVE_ROWS_VARIABLE, "300")


@pytest.fixture
def dataset_id(service: Any, tmp_path: Path, lowered: None) -> str:
    return str(service.open_dataset(OpenDataset(write_rows(tmp_path / "rows.csv"))).dataset_id)


def progressive_steps(steps: list[Any]) -> list[ProgressiveMap]:
    return [step for step in steps if isinstance(step, ProgressiveMap)]


def test_a_large_dataset_shows_its_sample_then_places_the_rest_then_the_real_map(
    service: Any, dataset_id: str
) -> None:
    steps = list(map_flow(service, dataset_id, TSNE, progressive=True, scores=False))
    maps = progressive_steps(steps)
    assert [type(step) for step in steps] == [ProgressiveMap] * len(maps) + [EmbeddedRun, ProjectedMap]
    first, last = maps[0], maps[-1]
    sample, _rest = spread_order(ROWS, TSNE.seed)
    assert first.placed == len(sample) == 100 and first.total == ROWS and len(maps) > 3
    placed = np.isfinite(first.coords).all(axis=1)
    np.testing.assert_array_equal(np.flatnonzero(placed), sample)  # the others hidden (NaN)
    assert first.coords.dtype == np.float32 and first.coords.shape == (ROWS, 2)
    # Each step places more rows, where the last step put them: placed rows never move.
    for before, after in itertools.pairwise(maps):
        assert after.placed > before.placed
        kept = np.isfinite(before.coords).all(axis=1)
        np.testing.assert_array_equal(after.coords[kept], before.coords[kept])
        assert np.isfinite(after.coords).all(axis=1).sum() == after.placed
    assert last.placed == ROWS and np.isfinite(last.coords).all()
    assert all(step.run is None for step in maps[:-1]) and last.run is not None
    run, shown = steps[-2], steps[-1]
    assert run == last.run and isinstance(shown, ProjectedMap) and shown.run_id == run.run_id
    assert (run.rows, run.computed, run.from_cache) == (ROWS, ROWS, 0)
    # The run assembled from the steps is the dataset's run: the same rows, named the same.
    whole = service.embed(Embed(dataset_id))
    assert whole.input_id == run.input_id and whole.from_cache == ROWS
    # Placed rows land among the sample's map, not at the origin or far off.
    low, high = first.coords[placed].min(axis=0), first.coords[placed].max(axis=0)
    assert ((last.coords >= low - 1e-4) & (last.coords <= high + 1e-4)).all()


def test_the_same_dataset_gives_the_same_progressive_map(service: Any, dataset_id: str) -> None:
    first = service.map_sample(MapSample(dataset_id, PCA)).progressive
    again = service.map_sample(MapSample(dataset_id, PCA)).progressive  # the sample from the cache now
    assert first is not None and again is not None and first.progressive_id != again.progressive_id
    np.testing.assert_array_equal(first.coords, again.coords)
    for _ in range(3):
        first = service.place_rows(PlaceRows(first.progressive_id))
        again = service.place_rows(PlaceRows(again.progressive_id))
        np.testing.assert_array_equal(first.coords, again.coords)


def test_cancelling_between_progressive_steps_stops_the_flow(service: Any, dataset_id: str) -> None:
    token = CancelToken()
    flow = map_flow(service, dataset_id, PCA, progressive=True, token=token)
    assert isinstance(next(flow), ProgressiveMap)
    assert isinstance(next(flow), ProgressiveMap)
    token.cancel()
    with pytest.raises(JobCancelled):
        next(flow)


def test_a_cached_map_skips_the_progressive_map(service: Any, dataset_id: str) -> None:
    list(map_flow(service, dataset_id, PCA, progressive=True, scores=False))
    warm = list(map_flow(service, dataset_id, PCA, progressive=True, scores=False))
    assert [type(step) for step in warm] == [EmbeddedRun, ProjectedMap]
    assert service.map_sample(MapSample(dataset_id, PCA)).progressive is None


def test_not_at_or_below_the_threshold_nor_without_asking(
    service: Any, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # loupe project, export and the demo do not ask: their flow never maps a sample.
    assert [type(step) for step in map_flow(service, dataset_id, TSNE, scores=False)] == [
        EmbeddedRun,
        Preview,
        ProjectedMap,
    ]
    monkeypatch.setenv(ABOVE_ROWS_VARIABLE, str(ROWS))
    steps = list(map_flow(service, dataset_id, ProjectionParams(method="pca", seed=7), progressive=True))
    assert not progressive_steps(steps) and isinstance(steps[0], EmbeddedRun)


def test_the_sample_is_spread_and_the_rest_shuffled_by_the_seed() -> None:
    sample, rest = spread_order(50_000, 42)
    assert len(sample) == 5_000 and sample[0] == 0 and sample[-1] == 49_999
    assert np.all(np.diff(sample) == 10) or np.ptp(np.diff(sample)) <= 1
    assert len(np.intersect1d(sample, rest)) == 0 and len(sample) + len(rest) == 50_000
    np.testing.assert_array_equal(spread_order(50_000, 42)[1], rest)
    assert not np.array_equal(spread_order(50_000, 43)[1], rest)


def test_a_progressive_map_crosses_the_process_boundary() -> None:
    from engine.process.wire import TYPES

    assert {"MapSample", "PlaceRows", "ProgressiveMap", "MaybeProgressive"} <= set(TYPES)


def test_a_step_cancelled_inside_the_engine_lets_go_of_its_map(service: Any, dataset_id: str) -> None:
    started = service.map_sample(MapSample(dataset_id, PCA)).progressive
    assert started is not None
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        service.place_rows(PlaceRows(started.progressive_id), token=token)
    with pytest.raises(LoupeError, match="no longer holds this progressive map"):
        service.place_rows(PlaceRows(started.progressive_id))
