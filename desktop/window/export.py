"""Export from the window: the shown map as a figure, its data as a table, each with the
provenance sidecar that ``loupe export`` writes, plus what only the window knows (the colouring,
the filter, the selection).

Two steps, so that the writing runs as a job and the GUI never waits for a disk:
:meth:`ExportSnapshot.take` (GUI thread) keeps references to what the application model shows
(the model replaces its arrays and never changes them, so they stay as they were); then
:func:`export_map` or :func:`export_data` (a job thread) draws or writes them. The figure is what
the map shows: the rows the filter keeps, in the current colours. The data has every row, with
``kept`` saying which ones the filter keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PySide6.QtWidgets import QFileDialog, QWidget

from desktop.model.document import AppModel, Rows
from engine.api.types import EngineIdentity, Faithfulness, MapScores
from engine.data.datasets import Dataset
from engine.errors import LoupeError
from engine.maps.projection import ProjectionParams

DIALOGS = {
    "map": ("Export the map", "map.svg", "Figures (*.svg *.pdf *.png)"),
    "data": ("Export the data", "map.csv", "Data (*.csv *.parquet)"),
}


@dataclass(frozen=True)
class ExportSnapshot:
    """What the map shows at one moment, to be written on another thread."""

    dataset: Dataset
    dataset_path: Path | None  # the file or folder opened; None for the demo
    coords: npt.NDArray[np.float32]  # the map on show, rows x 2 in dataset order
    params: ProjectionParams
    layer: int
    colouring: str
    kept: Rows | None  # the rows the filter keeps; None: every row
    filter_description: str | None
    selection: Rows
    scores: MapScores | None  # of this map (the model keeps no other)
    faithfulness: Faithfulness | None
    identity: EngineIdentity | None  # None: the map is of the dataset's own vectors, no model made it
    title: str

    @classmethod
    def take(cls, model: AppModel, identity: EngineIdentity, title: str) -> ExportSnapshot:
        """References to what ``model`` shows (GUI thread; nothing is copied or computed);
        :class:`LoupeError` when there is no map yet."""
        dataset, shown = model.dataset, model.shown
        if dataset is None or shown is None:
            raise LoupeError("There is no map to export yet: open a dataset first.")
        row_filter = model.filter
        return cls(
            dataset=dataset,
            dataset_path=model.source.path if model.source is not None else None,
            coords=shown.coords,
            params=shown.map.params,
            layer=model.run.layer if model.run is not None else model.engine.layer,
            colouring=model.view.colouring,
            kept=row_filter.rows if row_filter is not None else None,
            filter_description=row_filter.description if row_filter is not None else None,
            selection=model.selection,
            scores=model.scores,
            faithfulness=model.faithfulness,
            identity=None if model.opened is not None and model.opened.own_vectors else identity,
            title=title,
        )

    def kept_rows(self) -> Rows:
        return np.arange(len(self.coords), dtype=np.intp) if self.kept is None else self.kept

    def categories(self) -> list[str]:
        """What the figure's colours mean: clusters when the map is coloured by them, else labels."""
        if self.colouring == "cluster" and self.scores is not None:
            names = self.scores.names
            return [names.get(int(c), "noise") for c in self.scores.labels]
        return list(self.dataset.labels)

    def record(self) -> dict[str, object]:
        """``loupe export``'s provenance of the shown map, plus the colouring, filter and selection."""
        from engine.user.export import provenance

        trust = self.scores.trustworthiness if self.scores is not None else None
        record: dict[str, object] = provenance(self.identity, self.dataset, self.params, self.layer, trust)
        record["colouring"] = self.colouring
        record["filter"] = self.filter_description
        record["selection"] = [int(row) for row in self.selection]
        return record


def export_map(snapshot: ExportSnapshot, path: Path) -> list[Path]:
    """The shown map as a vector SVG/PDF or a PNG, in its colours, with a provenance sidecar.
    Any thread (a job's); raises :class:`LoupeError` (one sentence) or :class:`OSError`."""
    from engine.user.export import write_sidecar
    from engine.user.figures import save_map_figure

    _refuse_inputs(snapshot, path)
    kept = snapshot.kept_rows()
    categories = snapshot.categories()
    record = snapshot.record()
    figure = save_map_figure(
        path,
        snapshot.coords[kept],
        [categories[row] for row in kept],
        title=snapshot.title,
        provenance=record,
    )
    return [figure, write_sidecar(figure, record)]


def export_data(snapshot: ExportSnapshot, path: Path) -> list[Path]:
    """Coordinates, labels, clusters, faithfulness, the filter, the selection and each row's text
    as CSV or Parquet (the columns of ``loupe export --data``, plus ``kept`` and ``selected``),
    with a sidecar. Any thread (a job's)."""
    from engine.user.data_files import write_data
    from engine.user.export import write_sidecar

    _refuse_inputs(snapshot, path)
    rows = len(snapshot.coords)
    extra: dict[str, list[object]] = {}
    scores, faithfulness = snapshot.scores, snapshot.faithfulness
    if scores is not None:
        extra["cluster"] = [int(c) for c in scores.labels]
        extra["cluster_name"] = [scores.names.get(int(c), "") for c in scores.labels]
    if faithfulness is not None:
        extra["faithfulness"] = [float(v) for v in faithfulness.values]
    kept = np.zeros(rows, dtype=bool)
    kept[snapshot.kept_rows()] = True
    extra["kept"] = kept.tolist()
    selected = np.zeros(rows, dtype=bool)
    selected[snapshot.selection] = True
    extra["selected"] = selected.tolist()
    record = snapshot.record()
    dataset = snapshot.dataset
    written = write_data(
        path, snapshot.coords, dataset.labels, texts=dataset.texts, extra=extra, provenance=record
    )
    return [written, write_sidecar(written, record)]


def ask_export_path(parent: QWidget | None, what: str) -> Path | None:
    """File ▸ Export map… / Export data…: the save dialog (``what`` is "map" or "data")."""
    title, default, formats = DIALOGS[what]
    chosen, _ = QFileDialog.getSaveFileName(parent, title, default, formats)
    return Path(chosen) if chosen else None


def _refuse_inputs(snapshot: ExportSnapshot, path: Path) -> None:
    """An export (or its sidecar) never replaces the open dataset or its vectors."""
    from engine.runtime.atomic import refuse_overwriting_inputs
    from engine.user.data_files import dataset_files
    from engine.user.export import sidecar_path

    if snapshot.dataset_path is not None:
        for output in (path, sidecar_path(path)):
            refuse_overwriting_inputs(output, dataset_files(snapshot.dataset_path), "export")
