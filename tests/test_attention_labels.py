"""The attention heatmap of real, long, multilingual sentences through the real MiniLM: only the
labels that fit, none overlapping, recomputed on zoom and resize; the hover; the words view."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF, QImage, QPainter
from pytestqt.qtbot import QtBot

from desktop.attention.axis import LABEL_GAP, fitting_labels
from desktop.attention.view import ALL_HEADS, HEATMAP, ROLLOUT, TOKEN_LINES, TOKENS, WORDS, AttentionView
from engine.model.inference import AttentionMaps, attention_for_text

# Package descriptions as they read in a real archive: long compounds, accents, no spaces in
# Japanese, right-to-left Arabic. The German one is 72 WordPiece tokens without [CLS]/[SEP].
SENTENCES = {
    "de": (
        "Dieses Paket enthält die Werkzeuge zur Verwaltung von Softwarepaketen, einschließlich der "
        "Abhängigkeitsauflösung, der Überprüfung kryptografischer Signaturen und der automatischen "
        "Aktualisierung installierter Programme über das Netzwerk."
    ),
    "ja": "このパッケージには、ネットワーク経由でソフトウェアを自動的に更新するための"
    "ツールが含まれています。",
    "ar": (
        "تحتوي هذه الحزمة على أدوات لإدارة البرمجيات، بما في ذلك التحقق من التواقيع وتحديث البرامج "
        "تلقائيا عبر الشبكة."
    ),
}


@pytest.fixture(scope="module")
def real_maps(minilm: Any) -> dict[str, AttentionMaps]:
    return {language: attention_for_text(minilm, text) for language, text in SENTENCES.items()}


@pytest.fixture
def view(qtbot: QtBot) -> AttentionView:
    widget = AttentionView()
    qtbot.addWidget(widget)
    widget.set_dark(False)
    widget.resize(800, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def label_rects(axis: pg.AxisItem) -> list[QRectF]:
    """The rectangles pyqtgraph draws the axis's tick labels in, at their full line height."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
        height = QFontMetricsF(painter.font()).height()
    finally:
        painter.end()
    assert specs is not None
    rects = []
    for rect, _, _ in specs[2]:
        if axis.orientation == "left":  # pyqtgraph trims a line's height to 80 %; text can use all
            rect = QRectF(rect.x(), rect.center().y() - height / 2, rect.width(), height)
        rects.append(rect)
    return rects


def assert_labels_fit(axis: pg.AxisItem) -> int:
    """No two labels' rectangles touch, and no more are drawn than lines fit along the axis."""
    rects = label_rects(axis)
    along = (lambda r: r.center().y()) if axis.orientation == "left" else (lambda r: r.center().x())
    rects.sort(key=along)
    for first, second in pairwise(rects):
        assert not first.intersects(second), (first, second)
    bounds = axis.mapRectFromParent(axis.geometry())
    length = bounds.height() if axis.orientation == "left" else bounds.width()
    line = QFontMetricsF(axis.style["tickFont"] or axis.font()).height()
    assert len(rects) <= length / line + 1
    return len(rects)


def settle(qtbot: QtBot, view: AttentionView) -> None:
    """Let the plot lay out and paint (the axes choose their labels while painting)."""
    view.plot_widget.repaint()
    qtbot.wait(20)
    view.plot_widget.grab()


@pytest.mark.parametrize("language", list(SENTENCES))
def test_a_long_sentence_labels_only_what_fits(
    view: AttentionView, qtbot: QtBot, real_maps: dict[str, AttentionMaps], language: str
) -> None:
    maps = real_maps[language]
    if language == "de":
        assert len(maps.tokens) - 2 >= 60
    view.set_maps(maps, language)
    settle(qtbot, view)
    for axis in (view.plot.getAxis("left"), view.plot.getAxis("bottom")):
        shown = assert_labels_fit(axis)
        assert shown >= 5  # thinned, not emptied
    assert len(view.query_axis.shown) < len(maps.tokens) - 2 or language != "de"


def test_zooming_in_labels_more_of_the_visible_tokens(
    view: AttentionView, qtbot: QtBot, real_maps: dict[str, AttentionMaps]
) -> None:
    view.set_maps(real_maps["de"], "de")
    settle(qtbot, view)
    whole = len(view.query_axis.shown)
    view.plot.getViewBox().setRange(xRange=(20, 32), yRange=(20, 32), padding=0)
    settle(qtbot, view)
    low, high = sorted(view.plot.getViewBox().viewRange()[1])
    zoomed = view.query_axis.shown
    assert all(low <= i + 0.5 <= high for i in zoomed)
    assert len(zoomed) >= 0.8 * (high - low)  # about one label a row now
    assert assert_labels_fit(view.plot.getAxis("left")) == len(zoomed)
    assert assert_labels_fit(view.plot.getAxis("bottom")) > whole / 2
    view.reset_zoom.click()
    settle(qtbot, view)
    assert len(view.query_axis.shown) == whole


def test_a_larger_view_labels_more(
    view: AttentionView, qtbot: QtBot, real_maps: dict[str, AttentionMaps]
) -> None:
    view.set_maps(real_maps["de"], "de")
    settle(qtbot, view)
    small = len(view.query_axis.shown)
    view.resize(1400, 1300)
    qtbot.waitUntil(lambda: view.height() == 1300)
    settle(qtbot, view)
    assert len(view.query_axis.shown) > small
    assert_labels_fit(view.plot.getAxis("left"))
    assert_labels_fit(view.plot.getAxis("bottom"))


def test_another_layer_keeps_the_zoomed_region(
    view: AttentionView, qtbot: QtBot, real_maps: dict[str, AttentionMaps]
) -> None:
    view.set_maps(real_maps["de"], "de")
    box = view.plot.getViewBox()
    box.setRange(xRange=(20, 32), yRange=(20, 32), padding=0)
    before = box.viewRange()
    view.layer.setValue(2)
    np.testing.assert_allclose(box.viewRange(), before)
    view.set_unit(WORDS)  # other rows and columns: the whole matrix again
    rows = view.shown_matrix()[0].shape[0]
    low, high = sorted(box.viewRange()[1])
    assert low <= 0 and high >= rows


@pytest.mark.parametrize("language", list(SENTENCES))
def test_words_view_of_a_real_sentence(
    view: AttentionView, qtbot: QtBot, real_maps: dict[str, AttentionMaps], language: str
) -> None:
    maps = real_maps[language]
    view.set_maps(maps, language)
    view.set_unit(WORDS)
    view.hide_special.setChecked(False)
    for mode in (HEATMAP, ROLLOUT):
        view.set_mode(mode)
        matrix, words = view.shown_matrix()
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-4)
        assert len(words) < len(maps.tokens)
        assert all(word in maps.text for word in words[1:-1])
    if language == "de":
        assert "Abhängigkeitsauflösung" in words and "Überprüfung" in words
    view.set_mode(HEATMAP)
    view.hide_special.setChecked(True)
    settle(qtbot, view)
    assert assert_labels_fit(view.plot.getAxis("left")) >= 5
    assert_labels_fit(view.plot.getAxis("bottom"))
    for mode in (ALL_HEADS, TOKEN_LINES):  # every mode draws words
        view.set_mode(mode)
        assert view.shown_matrix()[0].shape[0] == len(view.shown_indices())


def test_hover_names_query_key_and_value(view: AttentionView, real_maps: dict[str, AttentionMaps]) -> None:
    maps = real_maps["de"]
    view.set_maps(maps, "de")
    view.layer.setValue(3)
    view.head.setCurrentIndex(2)  # head 1
    view.hover_at(5.5, 9.5)  # key 5, query 9 of the shown (special-free) tokens
    expected = maps.attentions[3, 1, 10, 6]
    text = view.readout.text()
    assert f"query {maps.tokens[10]!r} (9)" in text and f"key {maps.tokens[6]!r} (5)" in text
    assert f"{expected:.4f}" in text
    highlighted = {s.cursor.selectedText() for s in view.text_box.extraSelections()}
    assert highlighted == {maps.text[slice(*maps.offsets[10])], maps.text[slice(*maps.offsets[6])]}
    view.set_unit(WORDS)
    view.hover_at(1.5, 0.5)
    assert "query 'Dieses' (0)" in view.readout.text() and "key 'Paket' (1)" in view.readout.text()
    view.hover_at(-3.0, 2.5)  # over the query axis
    assert view.readout.text() == "query 'enthält' (2)"
    view.hover_at(50.0, 50.0)
    assert "Hover a cell" in view.readout.text() and view.highlighted is None


def test_highlight_counts_characters_as_qt_does(view: AttentionView) -> None:
    """An emoji is one character to Python and two to Qt: the highlight after it must not shift."""
    text = "🙂 Paket"
    attentions = np.full((1, 1, 4, 4), 0.25, dtype=np.float32)
    offsets = ((0, 0), (0, 1), (2, 7), (0, 0))
    maps = AttentionMaps(
        text, ("[CLS]", "🙂", "paket", "[SEP]"), offsets, (True, False, False, True), attentions
    )
    view.set_maps(maps, "emoji")
    view.highlight_token(2)
    assert [s.cursor.selectedText() for s in view.text_box.extraSelections()] == ["Paket"]


def test_words_export_from_the_view(
    view: AttentionView, real_maps: dict[str, AttentionMaps], tmp_path: Path
) -> None:
    view.set_maps(real_maps["de"], "de")
    view.set_unit(WORDS)
    figure, sidecar = view.export_figure(tmp_path / "words.svg", {"dataset": {"fingerprint": "f"}})
    svg = figure.read_text(encoding="utf-8")
    assert "Abhängigkeitsauflösung" in svg and "##ung" not in svg
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["unit"] == WORDS
    view.set_unit(TOKENS)
    figure, sidecar = view.export_figure(tmp_path / "tokens.svg", {})
    assert "##ung" in figure.read_text(encoding="utf-8")
    assert json.loads(sidecar.read_text(encoding="utf-8"))["unit"] == TOKENS


@given(
    st.lists(st.floats(1.0, 200.0), min_size=1, max_size=80),
    st.floats(-20.0, 60.0),
    st.floats(0.5, 100.0),
    st.floats(10.0, 2000.0),
)
def test_fitting_labels_never_overlap(extents: list[float], low: float, width: float, length: float) -> None:
    high = low + width
    chosen = fitting_labels(extents, low, high, length, overflow=8.0)
    scale = length / width
    spans = [
        ((i + 0.5 - low) * scale - extents[i] / 2, (i + 0.5 - low) * scale + extents[i] / 2) for i in chosen
    ]
    assert chosen == sorted(set(chosen))
    assert all(start >= -8.0 and end <= length + 8.0 for start, end in spans)
    assert all(second[0] - first[1] >= LABEL_GAP - 1e-9 for first, second in pairwise(spans))
    if max(extents) + LABEL_GAP <= scale and low <= 0 and high >= len(extents):
        assert chosen == list(range(len(extents)))  # where every label fits, every cell has one
