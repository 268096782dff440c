"""The comparison in the window, as a user runs it: the engine (and the real MiniLM) in its
child process, a dataset in many scripts, PCA maps (the method does not matter here).

Map ▸ Compare with… (the dialog's default: the same model at layer 1) puts a second map beside
the first; both follow the model (selection, filter, colouring, hover); the "Moved most" panel
lists the rows by displacement and shows a row's neighbours before and after; a clicked row's
attention comes under both models; a session keeps the comparison; Close comparison returns to
one map; a cancelled comparison leaves the window as it was; a bad model folder is one sentence.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog
from pytestqt.qtbot import QtBot

from desktop.app import create_window
from desktop.model.comparison import CompareChoice
from desktop.window.compare_dialog import CompareDialog
from desktop.window.main_window import MainWindow
from desktop.window.sessions import filter_rows, save_session_as, search_rows
from engine.api.types import FindNeighbours
from engine.maps.projection import ProjectionParams
from tests.conftest import window_args

WAIT_MS = 180_000
PCA = ProjectionParams.from_options("pca", {}, seed=0)
SENTENCES = {
    "français": ["Le café « du coin » ouvre à {n} h ; l’été, on y mange une crème brûlée."],
    "Русский": ["Поезд номер {n} прибыл в Москву рано утром, и все пассажиры вышли."],
    "日本語": ["東京の駅で{n}番目の電車を待っていると、雨が降り始めました。"],
    "العربية": ["وصل القطار رقم {n} إلى المحطة في الصباح الباكر."],
    "emoji 🎉": ["Party 🎉 number {n} was great 😀, the cake 🎂 was gone by midnight 🌙."],
}
PER_LABEL = 6


def _dataset(path: Path) -> tuple[list[str], list[str]]:
    """30 rows, six per script, labels in those scripts too."""
    texts, labels = [], []
    for label, patterns in SENTENCES.items():
        for n in range(PER_LABEL):
            texts.append(patterns[0].format(n=n + 1) + (" " + label) * (n % 3))
            labels.append(label)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return texts, labels


def _action(window: MainWindow, text: str) -> QAction:
    for menu in window.menus:
        for action in menu.actions():
            if action.text().replace("&", "") == text:
                return action
    raise AssertionError(f"no menu action {text!r}")


def _open_mapped(qtbot: QtBot, window: MainWindow, path: Path) -> None:
    """Open ``path`` with PCA maps and wait for the real map."""
    failures: list[str] = []
    window.job_failed.connect(failures.append)
    window.model.set_params(PCA)
    window.open_path(path)
    qtbot.waitUntil(lambda: bool(failures) or _mapped(window), timeout=WAIT_MS)
    assert not failures, failures


def _mapped(window: MainWindow) -> bool:
    shown = window.model.shown
    return shown is not None and not shown.preview


def _compared(qtbot: QtBot, window: MainWindow, layer: int = 1) -> Any:
    def arrived() -> bool:
        comparison = window.model.comparison
        return comparison is not None and comparison.against.side.layer == layer

    qtbot.waitUntil(lambda: arrived() or "failed" in window.status_label.text(), timeout=WAIT_MS)
    assert arrived(), window.status_label.text()
    return window.model.comparison


def test_compare_with_layer_1_links_two_maps(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, reopened: list[MainWindow]
) -> None:
    texts, labels = _dataset(tmp_path / "scripts.csv")
    _open_mapped(qtbot, window, tmp_path / "scripts.csv")
    pair, first = window.comparison.pair, window.map_view
    second = pair.second
    assert not pair.comparing

    # Map ▸ Compare with…: the dialog opens on the same model at layer 1; Compare runs it.
    _action(window, "Compare with…").trigger()
    dialogs = [d for d in window.findChildren(CompareDialog) if d.isVisible()]
    assert len(dialogs) == 1
    assert dialogs[0].choice() == CompareChoice("minilm", 1, None, 10)
    dialogs[0].accept()
    comparison = _compared(qtbot, window)
    assert pair.comparing and second.isVisible()
    assert np.array_equal(second.coords, comparison.against.map.coords)
    assert "all-MiniLM-L6-v2 · layer 1" in pair.second_title.text()
    assert "all-MiniLM-L6-v2 · layer 6" in pair.first_title.text()
    assert "CKA" in pair.scores.text() and "exact" in pair.scores.text()
    assert 0.0 < comparison.mean_overlap < 1.0

    # Selection: a click on the second map selects on both; a box on the first rings on the second.
    second.click_row(4)
    assert list(window.model.selection) == [4] and first.selected_rows == [4] == second.selected_rows
    boxed = np.array([1, 2, 7], np.intp)
    first.set_selection(boxed)
    first.rows_selected.emit(boxed)
    assert second.selected_rows == [1, 2, 7]

    # Hover on the first map marks the same row on the second.
    x, y = first.coords[9]
    scene = first.plot.getViewBox().mapViewToScene(QPointF(float(x), float(y)))
    first.plot.scene().sigMouseMoved.emit(scene)
    assert pair.second.isVisible() and window.comparison.presenter.hover.marked(second) == 9

    # A filter hides rows on both; colour by overlap colours both on a continuous scale.
    dataset = window.model.dataset
    assert dataset is not None
    window.model.set_filter(filter_rows(dataset, "label", "日本語"))
    kept = [row for row, label in enumerate(labels) if label == "日本語"]
    assert list(first.visible_rows) == kept == list(second.visible_rows)
    window.model.set_filter(None)
    window.model.set_search(search_rows(dataset, "東京"))
    assert first.match_count == PER_LABEL == second.match_count
    window.model.set_search(search_rows(dataset, ""))
    combo = window.map_controls.colouring
    for colouring, legend in (("displacement", "displacement"), ("overlap", "neighbour overlap")):
        combo.setCurrentIndex(combo.findData(colouring))
        assert window.model.view.colouring == colouring
        for view in (first, second):
            view.draw_pending()
            assert view._shade_of is not None  # a shade per row
            assert any(legend in label.text for _, label in view.legend.items)

    # Moved most: sorted by displacement; choosing a row selects it on both maps and lists its
    # neighbours before and after (those of each side's own run).
    moved = window.comparison.moved_view
    assert moved.isVisible()
    rows, shown = moved.rows(), moved.displacements()
    assert shown == sorted(shown, reverse=True) and len(rows) == len(texts)
    assert rows[0] == int(np.argmax(comparison.displacement))
    moved.tree.itemClicked.emit(moved.tree.topLevelItem(1), 0)
    chosen = rows[1]
    assert list(window.model.selection) == [chosen] and second.selected_rows == [chosen]
    qtbot.waitUntil(lambda: bool(moved.neighbour_rows()[0]), timeout=WAIT_MS)
    before, after = moved.neighbour_rows()
    engine = window.engine
    expected_before = engine.find_neighbours(FindNeighbours(comparison.base.run.run_id, chosen, 10))
    expected_after = engine.find_neighbours(FindNeighbours(comparison.against.run.run_id, chosen, 10))
    assert before == expected_before.indices.tolist() and after == expected_after.indices.tolist()
    assert texts[chosen][:40] in moved.heading.text()

    # The chosen row's attention under both models, for the paired view.
    qtbot.waitUntil(lambda: window.comparison.last_pair is not None, timeout=WAIT_MS)
    attention = window.comparison.last_pair
    assert attention is not None and attention.row == chosen
    assert attention.base.tokens == attention.against.tokens  # the same model: the same tokens
    assert attention.base.attentions.shape == attention.against.attentions.shape
    paired = window.comparison.pair_view
    if paired is not None:  # the paired attention view, where this Loupe has it
        assert paired.row == chosen and paired.base is attention.base and paired.against is attention.against

    # A session keeps the comparison; reopened, it shows both maps again (from the cache).
    session = save_session_as(window.model, tmp_path / "compared")
    saved = json.loads(session.read_text(encoding="utf-8"))
    assert saved["comparison"] == {"model": "minilm", "layer": 1, "pooling": None, "k": 10}
    again = create_window(window_args())
    reopened.append(again)
    qtbot.addWidget(again)
    again.show()
    again.open_session(session)
    restored = _compared(qtbot, again)
    assert restored.k == 10 and again.comparison.pair.comparing
    assert np.allclose(restored.overlap, comparison.overlap)

    # Apply with other parameters: the comparison is made again for the new map.
    reseeded = ProjectionParams.from_options("pca", {}, seed=5)
    window.apply_params(reseeded)
    qtbot.waitUntil(
        lambda: window.model.comparison is not None and window.model.comparison.params == reseeded,
        timeout=WAIT_MS,
    )
    assert window.model.comparison.against.side.layer == 1 and pair.comparing

    # Close comparison: one map again, and its colourings leave with it.
    _action(window, "Close comparison").trigger()
    assert window.model.comparison is None and not pair.comparing and not moved.isVisible()
    assert combo.findData("overlap") < 0 and window.model.view.colouring == "label"


@pytest.mark.skipif(
    importlib.util.find_spec("engine.user.compare_figure") is None,
    reason="the comparison's writers (engine/user/compare_*.py) land from another branch",
)
def test_the_comparison_exports_as_a_figure_and_rows(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, _labels = _dataset(tmp_path / "scripts.csv")
    _open_mapped(qtbot, window, tmp_path / "scripts.csv")
    window.comparison.start(CompareChoice(layer=1))
    comparison = _compared(qtbot, window)
    entries = (("Export comparison figure…", "pair.svg"), ("Export comparison rows…", "pair.csv"))
    for menu_entry, name in entries:
        path = tmp_path / name
        window.status_label.setText("")
        picked = staticmethod(lambda *args, path=path, **kwargs: (str(path), ""))
        monkeypatch.setattr(QFileDialog, "getSaveFileName", picked)  # the user picks this file
        _action(window, menu_entry).trigger()
        sidecar = path.with_name(path.name + ".json")
        qtbot.waitUntil(lambda: sidecar.is_file() or "failed" in window.status_label.text(), timeout=WAIT_MS)  # noqa: B023
        assert sidecar.is_file(), window.status_label.text()
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        text = json.dumps(record, ensure_ascii=False)
        assert "all-MiniLM-L6-v2" in text and '"k": 10' in text
        assert str(comparison.against.side.layer) in text
    svg = (tmp_path / "pair.svg").read_text(encoding="utf-8")
    assert "<svg" in svg
    with (tmp_path / "pair.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["text"] for row in rows] == texts
    assert np.allclose([float(row["displacement"]) for row in rows], comparison.displacement, atol=1e-5)


def test_a_cancelled_or_failed_comparison_leaves_one_map(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    _dataset(tmp_path / "scripts.csv")
    _open_mapped(qtbot, window, tmp_path / "scripts.csv")
    failures: list[str] = []
    window.job_failed.connect(failures.append)

    # Cancelled at once: nothing changes.
    window.comparison.start(CompareChoice(layer=2))
    assert window.operations.running("compare")
    window.cancel_jobs()
    qtbot.waitUntil(lambda: not window.operations.running("compare"), timeout=WAIT_MS)
    QApplication.processEvents()
    assert window.model.comparison is None and not window.comparison.pair.comparing

    # A folder that is not a model: one sentence in the status line, no dialog, one map.
    broken = tmp_path / "not a model"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json", encoding="utf-8")
    window.comparison.start(CompareChoice(model=str(broken), layer=1))
    qtbot.waitUntil(lambda: "failed" in window.status_label.text(), timeout=WAIT_MS)
    said = window.status_label.text()
    assert said.startswith("The comparison failed: ") and "\n" not in said and "Traceback" not in said
    assert said.rstrip().endswith(".") and not failures
    assert window.model.comparison is None and not window.comparison.pair.comparing
