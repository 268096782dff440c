"""The window's analysis tools, end to end with the real model: parameters, clusters,
faithfulness, neighbours, per-layer maps and the sweep grid."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from desktop.app import create_window
from desktop.window.main_window import MainWindow
from engine.api.types import FindNeighbours
from engine.process.proxy import EngineProcess
from tests.conftest import exported, valkey_pids_under, window_args
from tests.test_desktop import ROWS

WAIT_MS = 240_000


def wait_for_map(qtbot: QtBot, window: MainWindow, method: str = "umap") -> None:
    shown: list[str] = []
    failures: list[str] = []
    window.map_ready.connect(shown.append)
    window.job_failed.connect(failures.append)
    qtbot.waitUntil(lambda: method in shown or bool(failures), timeout=WAIT_MS)
    assert not failures, failures


@pytest.fixture(scope="module")
def returning_home() -> Iterator[Path]:
    """One LOUPE_HOME for this module's maps: the first test fills its cache, the others open the
    demo as a returning user does, the embeddings, map and scores served from that cache (the
    cold path runs in the first test and in test_desktop.py). Each test skipped a model load, an
    embedding run and a UMAP fit in the engine process, about 15 s of CPU each."""
    home = Path(tempfile.mkdtemp(prefix="lr", dir="/tmp"))
    yield home
    for pid in valkey_pids_under(home):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def mapped(qtbot: QtBot, returning_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MainWindow]:
    """The demo mapped, with clusters and scores, in a window as the app makes it (engine in a
    child process) on the module's cache."""
    monkeypatch.setenv("LOUPE_HOME", str(returning_home))
    window = create_window(window_args())
    assert isinstance(window.engine, EngineProcess)
    qtbot.addWidget(window)
    window.show()
    window.start_demo(rows=ROWS)
    wait_for_map(qtbot, window)
    qtbot.waitUntil(lambda: window.model.scores is not None, timeout=WAIT_MS)
    yield window
    window.close()


def test_the_map_shows_trustworthiness_and_cluster_names(qtbot: QtBot, mapped: MainWindow) -> None:
    scores = mapped.model.scores
    assert scores is not None
    assert 0.5 < scores.trustworthiness <= 1.0
    assert "trustworthiness 0." in mapped.map_controls.score.text()
    mapped.map_controls.colouring.setCurrentIndex(mapped.map_controls.colouring.findData("cluster"))
    assert mapped.model.view.colouring == "cluster"
    names = set(scores.names.values())
    assert names and set(mapped.map_view.annotations) == names
    # Cluster names are drawn on the map, so the legend (of the dataset's labels) is hidden,
    # and each cluster (noise aside, in grey) has a colour of its own.
    assert not mapped.map_view.legend.isVisible()
    assert len(mapped.map_view._items) == len(names) + (scores.labels == -1).any()


def test_faithfulness_colours_each_point_by_its_value(qtbot: QtBot, mapped: MainWindow) -> None:
    mapped.map_controls.colouring.setCurrentIndex(mapped.map_controls.colouring.findData("faithfulness"))
    qtbot.waitUntil(lambda: mapped.model.faithfulness is not None, timeout=WAIT_MS)
    values = mapped.model.faithfulness.values  # type: ignore[union-attr]
    assert values.shape == (ROWS,) and values.min() >= 0 and values.max() <= 1
    [item] = mapped.map_view._items  # one item, a colour per point
    brushes = {brush.color().name() for brush in item.data["brush"]}
    assert len(brushes) > 3


def test_clicking_a_row_lists_its_model_space_neighbours(qtbot: QtBot, mapped: MainWindow) -> None:
    mapped.map_view.click_row(5)
    qtbot.waitUntil(lambda: mapped.neighbours_view.list.count() == 10, timeout=WAIT_MS)
    rows = mapped.neighbours_view.rows()
    assert 5 not in rows
    # The list is the engine's answer for the run on show: its 10 nearest of every row, in order
    # (the engine's own tests check them against the vectors, which stay in the engine's process).
    run = mapped.model.run
    assert run is not None
    everyone = mapped.engine.find_neighbours(FindNeighbours(run.run_id, 5, k=ROWS - 1))
    assert rows == [int(row) for row in everyone.indices[:10]]
    assert np.all(np.diff(everyone.distances) >= 0)
    # Choosing a neighbour selects it.
    with qtbot.waitSignal(mapped.map_view.row_clicked) as blocker:
        mapped.neighbours_view.row_chosen.emit(rows[0])
    assert blocker.args == [rows[0]]


def test_a_bad_parameter_is_one_sentence_in_the_bar(qtbot: QtBot, mapped: MainWindow) -> None:
    controls = mapped.map_controls
    controls.set_params(controls.params().with_options(min_dist=0.9, spread=0.5))
    applied: list[object] = []
    controls.params_applied.connect(applied.append)
    controls.apply()
    assert not applied
    assert controls.error.text() == "min_dist must not be larger than spread (0.5), not 0.9."


def test_apply_maps_with_the_chosen_method_and_parameters(qtbot: QtBot, mapped: MainWindow) -> None:
    controls = mapped.map_controls
    controls.method.setCurrentIndex(controls.method.findData("tsne"))
    controls.set_params(controls.params().with_options(perplexity=12.0))
    controls.apply()
    wait_for_map(qtbot, mapped, "tsne")
    assert mapped.map_view.plot.titleLabel.text.startswith("t-SNE perplexity=12.0")


@pytest.mark.slow
def test_layer_slider_glides_between_aligned_layer_maps(qtbot: QtBot, mapped: MainWindow) -> None:
    mapped.map_controls.layers_button.click()
    model = mapped.model
    qtbot.waitUntil(lambda: len(model.layer_maps) == 7, timeout=WAIT_MS)
    assert mapped.map_controls.layer.isEnabled() and mapped.map_controls.layer.maximum() == 6
    mapped.map_controls.layer.setValue(0)
    assert model.view.layer_slider == 0
    qtbot.waitUntil(lambda: np.allclose(mapped.map_view.coords, model.layer_maps[0]), timeout=5000)
    assert "Layer 0 of 6" in mapped.map_view.plot.titleLabel.text
    # The last layer's map is the main map (same cached projection, aligned frame of reference).
    assert model.shown is not None
    np.testing.assert_allclose(model.layer_maps[-1], model.shown.coords, atol=1e-5)


@pytest.mark.slow
def test_sweep_grid_cell_becomes_the_main_map(qtbot: QtBot, mapped: MainWindow) -> None:
    mapped.open_sweep()
    dialog = mapped.sweep_dialog
    assert dialog is not None
    dialog.x_values.setText("5, 15")
    dialog.y_values.setText("0.0, 0.5")
    dialog.run_button.click()
    qtbot.waitUntil(lambda: len(dialog.cells) == 4, timeout=WAIT_MS)
    assert "4 maps, trustworthiness" in dialog.message.text()
    _, cell = dialog.cells[3]
    dialog.choose(cell)  # the main map, from the cache the sweep filled
    model = mapped.model
    qtbot.waitUntil(
        lambda: model.shown is not None and model.shown.map.params == cell.params, timeout=WAIT_MS
    )
    np.testing.assert_array_equal(model.shown.coords, cell.coords)  # type: ignore[union-attr]
    form = mapped.map_controls.params()  # the form shows the cell's parameters (every one, filled in)
    assert (form.method, form.seed, form.settings()) == (
        cell.params.method,
        cell.params.seed,
        cell.params.settings(),
    )
    dialog.close()


def test_table_and_map_share_one_selection_and_search(qtbot: QtBot, mapped: MainWindow) -> None:
    table = mapped.table_view
    assert table.model.rowCount() == ROWS
    mapped.map_view.click_row(7)  # map → model → table
    assert list(table.selected_rows()) == [7] and mapped.model.selection.tolist() == [7]
    table.select_rows([2, 9])
    table.selection_changed.emit(table.selected_rows())  # as a user's selection would
    assert mapped.model.selection.tolist() == [2, 9]
    assert mapped.map_view.selected_rows == [2, 9]  # table → model → map
    table.search.setText("the")
    table.flush_search()
    assert mapped.map_view.match_count == table.model.rowCount() > 0
    assert mapped.model.search.query == "the" and mapped.model.search.matches is not None
    table.search.setText("")
    table.flush_search()
    assert mapped.map_view.match_count == 0


def test_export_from_the_window_with_provenance(qtbot: QtBot, mapped: MainWindow, tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    mapped.map_controls.colouring.setCurrentIndex(mapped.map_controls.colouring.findData("cluster"))
    mapped.map_view.click_row(4)
    figure, sidecar = exported(qtbot, mapped, "map", tmp_path / "map.svg")
    svg = figure.read_text(encoding="utf-8")
    assert svg.count("<use") >= ROWS and "<image" not in svg
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["method"] == "umap" and record["colouring"] == "cluster" and record["selection"] == [4]
    assert record["dataset"]["fingerprint"] == mapped.model.dataset.fingerprint  # type: ignore[union-attr]
    data, _ = exported(qtbot, mapped, "data", tmp_path / "map.parquet")
    table = pq.read_table(data)
    assert {"cluster", "cluster_name", "selected"} <= set(table.schema.names)
    assert table.column("selected").to_pylist().count(True) == 1


def test_window_layout_is_restored(qtbot: QtBot, window: MainWindow) -> None:
    # Qt fits a restored window to the screen, and the offscreen screen is only 800 pixels
    # wide, so the test changes the height.
    window.resize(window.width(), 555)
    window.close()
    # In this process: the test is about the window's layout and makes no engine call.
    again = create_window(window_args(), in_process=True)
    qtbot.addWidget(again)
    try:
        assert again.height() == 555 != 850  # 850: the default height
    finally:
        again.close()
