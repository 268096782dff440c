"""The attention view's modes on synthetic maps: no model needed."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from desktop.attention.token_lines import LINE_THRESHOLD
from desktop.attention.view import ALL_HEADS, HEATMAP, ROLLOUT, TOKEN_LINES, AttentionView
from engine.model.attention import rollout
from engine.model.inference import AttentionMaps

TEXT = "hello big world"
TOKENS = ("[CLS]", "hello", "big", "world", "[SEP]")
OFFSETS = ((0, 0), (0, 5), (6, 9), (10, 15), (0, 0))
SPECIAL = (True, False, False, False, True)


def synthetic_maps(seed: int = 0) -> AttentionMaps:
    logits = np.random.default_rng(seed).normal(size=(2, 3, 5, 5)) * 2.0
    weights = np.exp(logits)
    attentions: npt.NDArray[np.float32] = (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)
    return AttentionMaps(text=TEXT, tokens=TOKENS, offsets=OFFSETS, special=SPECIAL, attentions=attentions)


@pytest.fixture
def view(qtbot: QtBot) -> AttentionView:
    widget = AttentionView()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_maps(synthetic_maps(), "row 0")
    return widget


def colours(widget: QWidget) -> int:
    """How many distinct colours a sample of the widget's pixels has (1 means blank)."""
    image = widget.grab().toImage()
    seen = {
        image.pixel(x, y)
        for x in range(0, image.width(), max(image.width() // 60, 1))
        for y in range(0, image.height(), max(image.height() // 60, 1))
    }
    return len(seen)


@pytest.mark.parametrize("mode", [HEATMAP, ALL_HEADS, TOKEN_LINES, ROLLOUT])
def test_each_mode_renders(view: AttentionView, qtbot: QtBot, mode: str) -> None:
    view.set_mode(mode)
    qtbot.wait(20)
    assert view.current_mode() == mode
    assert colours(view.stack.currentWidget()) > 5


def test_heatmap_keeps_the_layer_and_head_matrix(view: AttentionView) -> None:
    maps = synthetic_maps()
    view.layer.setValue(1)
    view.head.setCurrentIndex(3)  # head 2
    matrix, tokens = view.shown_matrix()
    np.testing.assert_allclose(matrix, maps.attentions[1, 2][1:4, 1:4])
    assert tokens == ["hello", "big", "world"]


def test_choosing_a_thumbnail_opens_it_as_the_heatmap(view: AttentionView) -> None:
    view.set_mode(ALL_HEADS)
    assert len(view.thumbnails) == 2 * 3
    view.choose_thumbnail(0, 1)
    assert view.current_mode() == HEATMAP
    assert (view.layer.value(), view.head.currentIndex()) == (0, 2)


def test_clicking_a_thumbnail_opens_it_as_the_heatmap(view: AttentionView, qtbot: QtBot) -> None:
    view.set_mode(ALL_HEADS)
    qtbot.wait(20)
    box = view.grid.boxes[(1, 2)]
    centre = view.grid.mapFromScene(box.sceneBoundingRect().center())
    button, at = Qt.MouseButton.LeftButton, QPoint(centre.x(), centre.y())
    qtbot.mouseClick(view.grid.viewport(), button, pos=at)  # type: ignore[no-untyped-call]
    qtbot.waitUntil(lambda: view.current_mode() == HEATMAP, timeout=2000)
    assert (view.layer.value(), view.head.currentIndex()) == (1, 3)


def test_token_lines_draw_every_weight_above_the_threshold(view: AttentionView) -> None:
    maps = synthetic_maps()
    view.set_mode(TOKEN_LINES)
    view.layer.setValue(0)
    view.head.setCurrentIndex(1)  # head 0
    expected = maps.attentions[0, 0][1:4, 1:4]
    assert len(view.token_line_pairs) == int((expected >= LINE_THRESHOLD).sum())
    view.hide_special.setChecked(False)
    full = maps.attentions[0, 0]
    assert len(view.token_line_pairs) == int((full >= LINE_THRESHOLD).sum())
    assert all(w >= LINE_THRESHOLD for _, _, w in view.token_line_pairs)


def test_rollout_shows_the_engines_rollout(view: AttentionView) -> None:
    maps = synthetic_maps()
    view.set_mode(ROLLOUT)
    view.hide_special.setChecked(False)
    matrix, tokens = view.shown_matrix()
    np.testing.assert_allclose(matrix, rollout(maps, residual=True))
    np.testing.assert_allclose(view.image.image, rollout(maps, residual=True))
    assert tokens == list(TOKENS)
    view.hide_special.setChecked(True)
    matrix, _ = view.shown_matrix()
    np.testing.assert_allclose(matrix, rollout(maps, residual=True)[1:4, 1:4])


@pytest.mark.parametrize("mode", [HEATMAP, ALL_HEADS, TOKEN_LINES, ROLLOUT])
def test_hide_special_drops_those_tokens_in_every_mode(view: AttentionView, mode: str) -> None:
    view.set_mode(mode)
    view.hide_special.setChecked(True)
    matrix, tokens = view.shown_matrix()
    assert matrix.shape == (3, 3) and "[CLS]" not in tokens and "[SEP]" not in tokens
    assert view.shown_indices() == [1, 2, 3]
    if mode == ALL_HEADS:
        assert view.thumbnails[(0, 0)].image.shape == (3, 3)
    view.hide_special.setChecked(False)
    assert view.shown_matrix()[0].shape == (5, 5)
    if mode == ALL_HEADS:
        assert view.thumbnails[(0, 0)].image.shape == (5, 5)


def test_highlight_token_selects_its_characters(view: AttentionView) -> None:
    assert view.text_box.toPlainText() == TEXT and view.text_box.isReadOnly()
    view.highlight_token(2)
    (selection,) = view.text_box.extraSelections()
    assert (selection.cursor.selectionStart(), selection.cursor.selectionEnd()) == OFFSETS[2]
    assert selection.cursor.selectedText() == "big"
    view.highlight_token(0)  # a special token has no characters
    assert view.text_box.extraSelections() == []


def test_hovering_a_token_highlights_it(view: AttentionView, qtbot: QtBot) -> None:
    # Heatmap: the second shown row is token 2 ("big") once [CLS] is hidden.
    scene_pos = view.plot.getViewBox().mapViewToScene(QPointF(1.5, 1.5))
    view._heatmap_hover(scene_pos)
    assert view.highlighted == 2
    view.set_mode(TOKEN_LINES)
    qtbot.wait(20)
    scene_pos = view.lines_plot.getViewBox().mapViewToScene(QPointF(0.0, 2.0))
    view._lines_hover(scene_pos)
    assert view.highlighted == 3
    (selection,) = view.text_box.extraSelections()
    assert selection.cursor.selectedText() == "world"
