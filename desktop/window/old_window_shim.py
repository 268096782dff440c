"""TEMPORARY: an :class:`AppModel` read from the old window's widgets, so that the old window
(which holds no model yet) can use the model-based sessions and exports meanwhile.

Delete this module when main_window.py holds an AppModel: every caller then passes
``window.model``. It takes the window as ``Any`` so that nothing here imports main_window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from desktop.model.document import AppModel, EngineChoice, RowFilter, Search, ShownMap, Source, ViewOptions
from engine.api.types import EmbeddedRun, EngineIdentity, Faithfulness, MapScores, OpenedDataset, ProjectedMap
from engine.maps.projection import ProjectionParams

_ID = "old-window"


def model_of_window(window: Any) -> AppModel:
    """What the old window shows, as a model (fields set directly: nobody listens to it)."""
    model = AppModel()
    model.engine = EngineChoice(window.engine.model_name, window.engine.device, window.pooling, window.layer)
    text_column, label_column = window.dataset_columns
    if window.dataset_path is not None:
        path = window.dataset_path
        model.source = Source(path.name, path, text_column=text_column, label_column=label_column)
    elif window.demo_rows is not None:
        model.source = Source("the demo dataset", demo_rows=window.demo_rows)
    dataset = window.dataset
    if dataset is None:
        return model
    model.opened = OpenedDataset(_ID, dataset)
    if window.coords is not None:
        model.run = EmbeddedRun(_ID, _ID, window.layer, len(dataset), 0, 0, 0, 0, _ID)
        params = window.shown_params
        projected = ProjectedMap(_ID, _ID, params or ProjectionParams(method="pca"), window.map_view.coords)
        model.shown = ShownMap(projected, preview=params is None)
        scores = window.scores
        if scores is not None and scores.coords is window.coords:
            centres = tuple((float(x), float(y), str(name)) for x, y, name in scores.centres)
            clustering = scores.clustering
            model.scores = MapScores(
                _ID, clustering.labels, clustering.names, scores.trustworthiness, centres
            )
        if window.faithfulness is not None and window.faithfulness.coords is window.coords:
            model.faithfulness = Faithfulness(_ID, window.faithfulness.values)
    controls = window.map_controls
    x_range = y_range = None
    if window.coords is not None:
        x0, x1, y0, y1 = window.map_view.view_range()
        x_range, y_range = (x0, x1), (y0, y1)
    model.view = ViewOptions(
        colouring=str(controls.colouring.currentData() or "label"),
        size_by=str(controls.size_by.currentData() or "") or None,
        density=controls.density.isChecked(),
        layer_slider=controls.layer.value() if controls.layer.isEnabled() else None,
        x_range=x_range,
        y_range=y_range,
    )
    bar = window.filter_bar
    if bar.rows is not None:
        model.filter = RowFilter(bar.column.currentText(), bar.condition.text().strip(), bar.rows)
    search = window.table_view.search.text()
    model.search = Search(search, window.table_view.matches) if search else Search()
    model.selection = np.asarray(window.map_view.selected_rows, dtype=np.intp)
    model.bookmarks = dict(window.bookmarks_view.bookmarks())
    return model


def identity_of(engine: Any) -> EngineIdentity:
    """The old window's engine, as the identity that provenance now takes."""
    spec = engine.spec
    return EngineIdentity(
        model_name=engine.model_name,
        model_identity=spec.identity,
        display_name=spec.name,
        pooling=spec.pooling,
        device=engine.device,
        max_length=spec.max_length,
        layers=spec.layers,
    )
