"""The application model's rules for a progressive map (a large dataset's sample, the other rows
placed as they are embedded), without Qt or an engine."""

from __future__ import annotations

import numpy as np

from desktop.model.document import AppModel, Source
from engine.api.types import EmbeddedRun, OpenedDataset, ProgressiveMap, ProjectedMap
from engine.data.datasets import Dataset
from engine.maps.projection import ProjectionParams

ROWS = 6


def opened_model(dataset_id: str = "d1") -> AppModel:
    model = AppModel()
    model.open(Source("test"))
    model.set_dataset(
        OpenedDataset(dataset_id, Dataset("test", [f"row {i}" for i in range(ROWS)], ["a"] * ROWS))
    )
    return model


def progressive(dataset_id: str = "d1", placed: int = 2) -> ProgressiveMap:
    coords = np.full((ROWS, 2), np.nan, np.float32)
    coords[:placed] = np.arange(placed * 2, dtype=np.float32).reshape(placed, 2)
    return ProgressiveMap("p1", dataset_id, ProjectionParams(), coords, placed, ROWS)


def run_and_map(model: AppModel) -> ProjectedMap:
    assert model.set_run(EmbeddedRun("r1", "d1", -1, ROWS, 4, ROWS, 0, 0, "input"))
    return ProjectedMap("m1", "r1", ProjectionParams(), np.zeros((ROWS, 2), np.float32))


def test_a_progressive_map_is_shown_until_a_map_of_the_run_replaces_it() -> None:
    model = opened_model()
    seen: list[ProgressiveMap | None] = []
    model.progressive_changed.connect(seen.append)
    assert model.show_progressive(progressive(placed=2))
    assert model.show_progressive(progressive(placed=4))
    assert model.progressive is not None and model.progressive.placed == 4 and model.shown is None
    assert model.show_map(run_and_map(model))
    assert model.progressive is None and seen[-1] is None and len(seen) == 3
    # A late step (the flow's last one can cross the real map in the queue) is ignored.
    assert not model.show_progressive(progressive(placed=ROWS))
    assert model.progressive is None and model.shown is not None


def test_a_progressive_map_of_another_dataset_is_ignored_and_a_new_dataset_clears_it() -> None:
    model = opened_model()
    assert not model.show_progressive(progressive(dataset_id="other"))
    assert model.show_progressive(progressive())
    seen: list[ProgressiveMap | None] = []
    model.progressive_changed.connect(seen.append)
    model.open(Source("next"))
    assert model.progressive is None and seen == [None]
