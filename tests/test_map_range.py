"""The map on screen after a colouring change: the view must stay on the map's points.

A real screenshot of the default window (demo mapped, coloured by cluster at once) showed an
empty plot: the PCA preview's visible range, kept in the model, was put back on the UMAP map by
the colouring change, and UMAP's points lay outside it. This drives the presenter and the map
view the way the window's operations do, with no engine (the values are made here), so the
order of events is exact.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pytestqt.qtbot import QtBot

from desktop.map.controls import MapControls
from desktop.map.presenter import MapPresenter
from desktop.map.view import MapView
from desktop.model.document import AppModel, Source
from engine.api.types import EmbeddedRun, MapScores, OpenedDataset, ProjectedMap
from engine.data.datasets import Dataset
from engine.maps.projection import ProjectionParams

ROWS = 40


def _map(map_id: str, centre: float, method: str = "umap") -> ProjectedMap:
    rng = np.random.default_rng(3)
    coords = (rng.normal(size=(ROWS, 2)) + centre).astype(np.float32)
    return ProjectedMap(map_id, "r1", ProjectionParams(method=method), coords)  # type: ignore[arg-type]


def _inside(view: MapView, coords: np.ndarray) -> float:
    (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
    inside = (coords[:, 0] >= x0) & (coords[:, 0] <= x1) & (coords[:, 1] >= y0) & (coords[:, 1] <= y1)
    return float(inside.mean())


def test_colouring_by_cluster_right_after_the_map_lands_keeps_its_points_in_view(qtbot: QtBot) -> None:
    model, view, controls = AppModel(), MapView(), MapControls()
    qtbot.addWidget(view)
    qtbot.addWidget(controls)
    view.resize(800, 600)
    view.show()
    presenter = MapPresenter(model, view, controls)
    texts = [f"Ligne {i} — café, 東京, مرحبا" for i in range(ROWS)]
    model.open(Source("rows"))
    model.set_dataset(OpenedDataset("d1", Dataset("rows", texts, ["a", "b"] * (ROWS // 2))))
    assert model.set_run(EmbeddedRun("r1", "d1", -1, ROWS, 4, ROWS, 0, 0, "input"))

    preview = _map("pca", centre=-50.0, method="pca")
    assert model.show_map(preview, preview=True)
    # The preview stayed long enough for its range to reach the model (the presenter's timer).
    qtbot.waitUntil(lambda: model.view.x_range is not None, timeout=5000)

    umap = _map("m1", centre=+50.0)  # far from the preview: the two ranges do not overlap
    assert model.show_map(umap)
    labels = (np.arange(ROWS) % 3).astype(np.int32)
    names = {0: "café", 1: "東京", 2: "مرحبا"}
    assert model.set_scores(MapScores("m1", labels, names, 0.9, ((50.0, 50.0, "café"),)))
    # At once, before the presenter's range timer runs: the screenshot's order.
    model.set_view(replace(model.view, colouring="cluster"))
    qtbot.wait(50)
    assert _inside(view, umap.coords) == 1.0, view.plot.getViewBox().viewRange()
    # ...and once the view settles, the model holds the map's range, not the preview's.
    qtbot.waitUntil(lambda: model.view.x_range is not None, timeout=5000)
    assert model.view.x_range[0] > 0  # type: ignore[index]
    del presenter
