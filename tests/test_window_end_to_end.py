"""The window as a user runs it, end to end, on text nobody here wrote in ASCII.

pytest-qt, offscreen; the engine (and the real MiniLM) in its child process, as the app
starts it. The dataset has accents, Cyrillic, CJK, Arabic, emoji, typographic quotes, a cell
with a line break and one 1 MB cell. The steps are the user's: open → map (clusters and
trustworthiness too) → click a point → its attention → File ▸ Export map… as SVG, PNG and PDF
and Export data… as CSV and Parquet → File ▸ Save session… → reopen it in a new window →
attention of the restored selection. The menu actions run as the user triggers them; only the
file dialogs are answered with the path a user would pick.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from desktop.app import create_window
from desktop.attention.figure_export import FigureExportDialog, FigureRequest
from desktop.window.main_window import MainWindow
from engine.process.proxy import EngineProcess
from tests.conftest import window_args
from tests.test_map_view import pixel

WAIT_MS = 240_000
LABELS = ("français", "Русский", "日本語", "العربية", "English “quoted”", "emoji 🎉")
SENTENCES = {
    "français": [
        "Le café « du coin » ouvre à {n} h ; l’été, on y mange une crème brûlée.",
        "Élodie a réparé la bibliothèque numéro {n} avant Noël, déçue mais sûre d’elle.",
    ],
    "Русский": [
        "Поезд номер {n} прибыл в Москву рано утром, и все пассажиры вышли на перрон.",
        "Библиотека на улице Пушкина работает до {n} часов вечера по будням.",
    ],
    "日本語": [
        "東京の駅で{n}番目の電車を待っていると、雨が降り始めました。",
        "図書館は午前{n}時に開きます。日曜日は休館です。",
    ],
    "العربية": [
        "وصل القطار رقم {n} إلى المحطة في الصباح الباكر.",
        "تفتح المكتبة أبوابها في الساعة {n} صباحاً كل يوم.",
    ],
    "English “quoted”": [
        "She said “it’s fine” and left the meeting at {n} o’clock — nobody followed.",
        "The ‘quick’ patch number {n} broke the build,\nso we reverted it on Friday.",
    ],
    "emoji 🎉": [
        "Party 🎉 number {n} was great 😀, the cake 🎂 was gone by midnight 🌙.",
        "Rain ☔ again on day {n} 🙃; the cat 🐈 stayed inside by the window 🪟.",
    ],
}
BIG_ROW = 7  # the row with the 1 MB cell
CLICKED, SELECTED = 13, [2, 26, 39, 50]  # French/Russian/Japanese/Arabic/... rows, not the big one


def _dataset(path: Path) -> tuple[list[str], list[str]]:
    """60 rows, ten per language, as a CSV a user might export from a spreadsheet."""
    texts, labels = [], []
    for label, patterns in SENTENCES.items():
        for n in range(10):
            texts.append(patterns[n % 2].format(n=n + 1))
            labels.append(label)
    big = "« Très long » texte — Привет, 世界 🎉 “quoted” …"
    texts[BIG_ROW] = " ".join([big] * (1_000_000 // len(big.encode("utf-8")) + 1))
    assert len(texts[BIG_ROW].encode("utf-8")) > 1_000_000
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "n"])
        writer.writerows([texts[row], labels[row], row] for row in range(len(texts)))
    return texts, labels


def _action(window: MainWindow, text: str) -> QAction:
    for menu in window.menus:
        for action in menu.actions():
            if action.text().replace("&", "") == text:
                return action
    raise AssertionError(f"no menu action {text!r}")


def _answer_dialogs_with(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """The next file dialog returns ``path``, as if the user had picked it."""
    picked = staticmethod(lambda *args, **kwargs: (str(path), ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", picked)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", picked)


def _shown_method(window: MainWindow) -> str | None:
    """The method of the real map on show (None: none yet, or only the PCA preview)."""
    shown = window.model.shown
    return None if shown is None or shown.preview else shown.map.params.method


def _wait_for_scored_map(qtbot: QtBot, window: MainWindow, failures: list[str]) -> None:
    qtbot.waitUntil(
        lambda: bool(failures) or (_shown_method(window) == "umap" and window.model.scores is not None),
        timeout=WAIT_MS,
    )
    assert not failures, failures


def _written(qtbot: QtBot, window: MainWindow) -> str:
    """The status line once an export (a job) has finished: "Wrote …" or "Export failed: …"."""
    done = ("Wrote ", "Export failed")
    qtbot.waitUntil(lambda: window.status_label.text().startswith(done), timeout=WAIT_MS)
    return window.status_label.text()


def test_a_multilingual_dataset_end_to_end_in_the_window(
    qtbot: QtBot,
    window: MainWindow,
    reopened: list[MainWindow],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "multilingual.csv"
    texts, labels = _dataset(data)
    failures: list[str] = []
    window.job_failed.connect(failures.append)

    # Open → map, with clusters and trustworthiness (they failed on any non-ASCII text).
    window.open_path(data)
    _wait_for_scored_map(qtbot, window, failures)
    dataset = window.model.dataset
    assert dataset is not None and len(dataset) == 60
    assert list(dataset.texts) == texts and list(dataset.labels) == labels
    assert window.map_view.coords.shape == (60, 2) and np.isfinite(window.map_view.coords).all()
    assert 0.5 < window.model.scores.trustworthiness <= 1.0  # type: ignore[union-attr]
    assert "failed" not in window.status_label.text().lower()

    # Click a point (a real mouse click where it is drawn) → its attention.
    x, y = (float(v) for v in window.map_view.coords[CLICKED])
    window.map_view.set_view_range(x - 0.5, x + 0.5, y - 0.5, y + 0.5)  # zoomed in: no neighbour is nearer
    with qtbot.waitSignal(window.attention_ready, timeout=WAIT_MS) as clicked:
        at = pixel(window.map_view, x, y)
        qtbot.mouseClick(window.map_view.plot_widget.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert clicked.args == [CLICKED]
    maps = window.attention_view.maps
    assert maps is not None and maps.text == texts[CLICKED]
    assert window.attention_view.title.text() == f"Row {CLICKED} · Русский\n{texts[CLICKED]}"
    window.map_view.plot.enableAutoRange()  # back to the whole map for the exports

    # The row's attention figure, from its Export button: written as a job too (on an engine
    # lane of the window's process), never on the GUI thread; its sidecar names the row's text.
    from engine.user import attention_figures

    drawn_on: list[str] = []
    draw = attention_figures.save_attention_figure

    def recorded(*args: Any, **kwargs: Any) -> Path:
        drawn_on.append(threading.current_thread().name)
        return draw(*args, **kwargs)

    monkeypatch.setattr(attention_figures, "save_attention_figure", recorded)
    figure = tmp_path / "out" / "внимание.svg"
    figure.parent.mkdir(exist_ok=True)
    request = FigureRequest(figure, 6.0, 5.0, 150)
    monkeypatch.setattr(FigureExportDialog, "ask", classmethod(lambda cls, *a, **k: request))
    with qtbot.waitSignal(window.attention_view.exported, timeout=WAIT_MS) as figure_written:
        window.attention_view.export_button.click()
    assert figure_written.args == [[figure, figure.with_name(figure.name + ".json")]]
    assert drawn_on and drawn_on[0] != threading.main_thread().name, drawn_on
    attention_record = json.loads(figure.with_name(figure.name + ".json").read_text(encoding="utf-8"))
    assert attention_record["text"] == texts[CLICKED]

    # File ▸ Export map… as SVG, PNG and PDF; Export data… as CSV and Parquet.
    window.map_controls.colouring.setCurrentIndex(window.map_controls.colouring.findData("cluster"))
    written: dict[str, Path] = {}
    for suffix, action in (
        (".svg", "Export map…"),
        (".png", "Export map…"),
        (".pdf", "Export map…"),
        (".csv", "Export data…"),
        (".parquet", "Export data…"),
    ):
        target = tmp_path / "out" / f"карта 地図{suffix}"  # a non-ASCII file name too
        target.parent.mkdir(exist_ok=True)
        _answer_dialogs_with(monkeypatch, target)
        window.status_label.setText("")
        _action(window, action).trigger()  # written as a job: the window goes on meanwhile
        said = _written(qtbot, window)
        assert said.startswith("Wrote "), said
        assert target.is_file() and target.stat().st_size > 0
        written[suffix] = target
        record = json.loads(target.with_name(target.name + ".json").read_text(encoding="utf-8"))
        assert record["model"].startswith("model@") and record["pooling"] == "mean"
        assert record["dataset"]["fingerprint"] == dataset.fingerprint
        assert record["dataset"]["rows"] == 60 and record["method"] == "umap"
        assert record["selection"] == [CLICKED] and record["colouring"] == "cluster"

    svg = ElementTree.parse(written[".svg"]).getroot()
    assert svg.tag.endswith("svg")
    assert written[".svg"].read_text(encoding="utf-8").count("<use") >= 60
    png = QImage(str(written[".png"]))
    assert not png.isNull() and png.width() > 500
    assert png.text("Description").startswith("Loupe map: umap")
    pdf = written[".pdf"].read_bytes()
    assert pdf.startswith(b"%PDF") and b"Loupe map: umap" in pdf

    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))  # the 1 MB cell: over the 128 KiB default
    with written[".csv"].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["row"]) for row in rows] == list(range(60))
    assert [row["label"] for row in rows] == labels
    assert [row["text"] for row in rows] == texts  # line breaks, quotes and the 1 MB cell too
    assert [row["selected"] for row in rows].count("True") == 1 and rows[CLICKED]["selected"] == "True"
    np.testing.assert_allclose(
        [[float(row["x"]), float(row["y"])] for row in rows], window.map_view.coords, rtol=1e-5, atol=1e-5
    )
    import pyarrow.parquet as pq

    table = pq.read_table(written[".parquet"])
    assert table.column("row").to_pylist() == list(range(60))
    assert table.column("label").to_pylist() == labels
    assert table.column("text").to_pylist() == texts
    scores = window.model.scores
    assert scores is not None
    assert set(table.column("cluster_name").to_pylist()) - {""} <= set(scores.names.values())
    embedded = json.loads(table.schema.metadata[b"loupe"])
    assert embedded["dataset"]["fingerprint"] == dataset.fingerprint

    # File ▸ Save session… with a selection, then quit.
    window.select_rows(SELECTED)
    coords = window.map_view.coords.copy()
    session = tmp_path / "mixed.loupe.json"
    _answer_dialogs_with(monkeypatch, session)
    _action(window, "Save session…").trigger()
    assert session.is_file(), window.status_label.text()
    window.close()

    # Loupe again: File ▸ Open session… restores the map (from the cache) and the selection.
    again = create_window(window_args(command=None))
    reopened.append(again)
    assert isinstance(again.engine, EngineProcess)
    qtbot.addWidget(again)
    again.show()
    again_failures: list[str] = []
    again.job_failed.connect(again_failures.append)
    _answer_dialogs_with(monkeypatch, session)
    _action(again, "Open session…").trigger()
    qtbot.waitUntil(lambda: bool(again_failures) or again.map_view.selected_rows == SELECTED, timeout=WAIT_MS)
    assert not again_failures, again_failures
    assert again.model.dataset is not None and list(again.model.dataset.texts) == texts
    assert _shown_method(again) == "umap"
    np.testing.assert_array_equal(again.map_view.coords, coords)  # the same map, bit for bit
    assert again.statusBar().currentMessage() == "Session mixed.loupe.json restored."

    # Map ▸ Attention statistics of the selection.
    _action(again, "Attention statistics of the selection").trigger()
    qtbot.waitUntil(lambda: bool(again_failures) or again.group_view.stats is not None, timeout=WAIT_MS)
    assert not again_failures, again_failures
    stats = again.group_view.stats
    assert stats is not None and stats.rows == len(SELECTED)
    assert again.status_label.text() == f"Attention statistics of {len(SELECTED)} rows ready."
