"""Export from the window: the shown map as a figure, its data as a table, each with the
provenance sidecar that ``loupe export`` writes, plus what only the window knows (the
colouring, the filter, the selection).

The figure is what the map shows: the rows the filter keeps, in the current colours.
The data has every row, with ``kept`` saying which ones the filter keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PySide6.QtWidgets import QFileDialog

from engine.errors import LoupeError
from engine.maps.projection import ProjectionParams

if TYPE_CHECKING:
    from desktop.window.main_window import MainWindow

_DIALOGS = {
    "map": ("Export the map", "map.svg", "Figures (*.svg *.pdf *.png)"),
    "data": ("Export the data", "map.csv", "Data (*.csv *.parquet)"),
}


def choose_export(window: MainWindow, what: str) -> None:
    """File ▸ Export map… / Export data…: a save dialog, then the export; the outcome in the status bar."""
    title, default, formats = _DIALOGS[what]
    chosen, _ = QFileDialog.getSaveFileName(window, title, default, formats)
    if chosen:
        export = export_map if what == "map" else export_data
        report_export(window, lambda: export(window, Path(chosen)))


def report_export(window: MainWindow, export: Callable[[], list[Path]]) -> None:
    try:
        written = export()
    except LoupeError as exc:
        window.status_label.setText(f"Export failed: {exc}")
        return
    except OSError as exc:  # a folder that cannot be written, a full disk
        window.status_label.setText(f"Export failed: {exc.strerror or exc} ({exc.filename or 'the file'}).")
        return
    window.status_label.setText(wrote(written))


def wrote(paths: Sequence[Path]) -> str:
    return "Wrote " + ", ".join(str(path) for path in paths)


def export_map(window: MainWindow, path: Path) -> list[Path]:
    """The shown map as a vector SVG/PDF or a PNG, in its current colours, with a provenance sidecar."""
    from engine.user.export import write_sidecar
    from engine.user.figures import save_map_figure

    coords = _shown_coords(window)
    _refuse_inputs(window, path)
    kept = _kept_rows(window)
    categories = shown_categories(window)
    record = window_provenance(window)
    figure = save_map_figure(
        path,
        coords[kept],
        [categories[row] for row in kept],
        title=window.map_view.plot.titleLabel.text,
        provenance=record,
    )
    return [figure, write_sidecar(figure, record)]


def export_data(window: MainWindow, path: Path) -> list[Path]:
    """Coordinates, labels, clusters, faithfulness, the filter, the selection and each row's text
    as CSV or Parquet (the columns of ``loupe export --data``, plus ``kept`` and ``selected``),
    with a sidecar."""
    from engine.user.data_files import write_data
    from engine.user.export import write_sidecar

    coords = _shown_coords(window)
    _refuse_inputs(window, path)
    assert window.dataset is not None
    extra: dict[str, list[object]] = {}
    scores, faithfulness = window.scores, window.faithfulness
    if scores is not None and scores.coords is window.coords:
        names = scores.clustering.names
        extra["cluster"] = [int(c) for c in scores.clustering.labels]
        extra["cluster_name"] = [names.get(int(c), "") for c in scores.clustering.labels]
    if faithfulness is not None and faithfulness.coords is window.coords:
        extra["faithfulness"] = [float(v) for v in faithfulness.values]
    kept = np.zeros(len(coords), dtype=bool)
    kept[_kept_rows(window)] = True
    extra["kept"] = kept.tolist()
    selected = np.zeros(len(coords), dtype=bool)
    selected[window.map_view.selected_rows] = True
    extra["selected"] = selected.tolist()
    record = window_provenance(window)
    dataset = window.dataset
    written = write_data(path, coords, dataset.labels, texts=dataset.texts, extra=extra, provenance=record)
    return [written, write_sidecar(written, record)]


def shown_categories(window: MainWindow) -> list[str]:
    """What the figure's colours mean: clusters when the map is coloured by them, else labels."""
    assert window.dataset is not None
    scores = window.scores
    if window.map_controls.colouring.currentData() == "cluster" and scores is not None:
        names = scores.clustering.names
        return [names.get(int(c), "noise") for c in scores.clustering.labels]
    return list(window.dataset.labels)


def window_provenance(window: MainWindow) -> dict[str, object]:
    """``loupe export``'s record for the shown map, plus the colouring, filter and selection."""
    from engine.user.export import provenance

    assert window.dataset is not None
    params = window.shown_params or ProjectionParams(method="pca")
    trust = window.scores.trustworthiness if window.scores is not None else None
    record = provenance(window.engine, window.dataset, params, window.layer, trust)
    record["colouring"] = window.map_controls.colouring.currentData()
    record["filter"] = window.filter_bar.description
    record["selection"] = window.map_view.selected_rows
    return record


def _shown_coords(window: MainWindow) -> npt.NDArray[np.float32]:
    if window.dataset is None or window.coords is None:
        raise LoupeError("There is no map to export yet: open a dataset first.")
    return window.map_view.coords


def _refuse_inputs(window: MainWindow, path: Path) -> None:
    """An export (or its sidecar) never replaces the open dataset or its vectors."""
    from engine.runtime.atomic import refuse_overwriting_inputs
    from engine.user.data_files import dataset_files
    from engine.user.export import sidecar_path

    if window.dataset_path is not None:
        for output in (path, sidecar_path(path)):
            refuse_overwriting_inputs(output, dataset_files(window.dataset_path), "export")


def _kept_rows(window: MainWindow) -> npt.NDArray[np.intp]:
    rows = window.filter_bar.rows
    return np.arange(len(window.map_view.coords), dtype=np.intp) if rows is None else rows
