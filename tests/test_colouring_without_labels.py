"""Rows without labels (issue 14 follow-up): the map is not coloured by a "label" nobody wrote
(one meaningless colour with a legend entry); "none" takes its place in the colour-by list and
is the default."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from desktop.map.controls import MapControls
from desktop.window.main_window import MainWindow
from engine.maps.projection import ProjectionParams
from tests.conftest import shown_method

WAIT_MS = 240_000


def offered(controls: MapControls) -> list[str]:
    return [str(controls.colouring.itemData(i)) for i in range(controls.colouring.count())]


def test_the_colour_by_list_offers_no_label_the_rows_do_not_have(qtbot: QtBot) -> None:
    controls = MapControls()
    qtbot.addWidget(controls)
    controls.set_columns(["title"], labels=False)
    assert offered(controls) == ["none", "cluster", "faithfulness", "column:title"]
    assert controls.colouring.currentData() == "none"
    controls.set_columns(["title"], labels=True)  # a labelled dataset next: "label" is back, chosen
    assert offered(controls) == ["label", "cluster", "faithfulness", "column:title"]
    assert controls.colouring.currentData() == "label"
    controls.colouring.setCurrentIndex(controls.colouring.findData("cluster"))
    controls.set_columns(["title"], labels=False)
    assert controls.colouring.currentData() == "cluster"  # a choice that still applies is kept


def _wait_for_map(qtbot: QtBot, window: MainWindow, failures: list[str]) -> None:
    qtbot.waitUntil(lambda: bool(failures) or shown_method(window) == "pca", timeout=WAIT_MS)
    assert not failures, failures


def legend_entries(window: MainWindow) -> list[str]:
    window.map_view.draw_pending()  # the legend is filled a turn after the points
    legend = window.map_view.legend
    return [label.text for _, label in legend.items] if legend.isVisible() else []


def test_a_file_without_labels_opens_uncoloured(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    rows = [f'"A sentence number {row} about the weather and the sea.",{row * 1.5}' for row in range(20)]
    path.write_text("text,score\n" + "\n".join(rows) + "\n", encoding="utf-8")
    failures: list[str] = []
    window.job_failed.connect(failures.append)
    window.model.set_params(ProjectionParams(method="pca"))
    window.open_path(path)
    _wait_for_map(qtbot, window, failures)
    assert window.model.dataset is not None and not window.model.dataset.has_labels
    assert window.map_controls.colouring.currentData() == "none"
    assert offered(window.map_controls) == ["none", "cluster", "faithfulness", "column:score"]
    assert legend_entries(window) == []
