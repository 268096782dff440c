"""Attention for one row, in four modes.

* heatmap: one layer and head (or the mean of the heads) as a query x key image;
* all heads: a layers x heads grid of thumbnails; clicking one opens it as the heatmap;
* token lines: the tokens in two columns (query left, key right) joined by lines whose
  width and opacity follow the attention of the chosen layer and head (bertviz head view);
* rollout: attention rollout over all layers (Abnar & Zuidema, residual included).

The hide-special-tokens switch applies to every mode. Hovering a token (on the heatmap or
in the token lines) highlights its characters in the text box under the views.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QPen, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from engine.attention import rollout, token_spans, without_special
from engine.inference import AttentionMaps

MEAN_OF_HEADS = "mean of heads"
HEATMAP, ALL_HEADS, TOKEN_LINES, ROLLOUT = "heatmap", "all heads", "token lines", "rollout"
MODES = (HEATMAP, ALL_HEADS, TOKEN_LINES, ROLLOUT)
LINE_THRESHOLD = 0.02  # token lines: weights below this are not drawn, so long rows stay fast
LINE_BUCKETS = 8  # token lines: lines are drawn in this many width/opacity steps, one item each
HIGHLIGHT = QColor(255, 214, 64)


class AttentionView(QWidget):
    """Shows :class:`AttentionMaps`; the selectors redraw without recomputing the model."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.maps: AttentionMaps | None = None
        self._rollout: npt.NDArray[np.float32] | None = None
        self._shown_tokens: list[int] = []  # indices into maps.tokens of the tokens drawn now
        self._thumb_boxes: dict[tuple[int, int], Any] = {}
        self.thumbnails: dict[tuple[int, int], Any] = {}
        self.token_line_pairs: list[tuple[int, int, float]] = []  # (query, key, weight), shown indices
        self.highlighted: int | None = None

        self.title = QLabel("Click a point on the map to see how the model attends over its tokens.")
        self.title.setWordWrap(True)
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.layer = QSpinBox()
        self.layer.setPrefix("layer ")
        self.head = QComboBox()
        self.head.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.hide_special = QCheckBox("hide special tokens")
        self.hide_special.setChecked(True)

        # heatmap (also used by rollout)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("left", "query token")
        self.plot.setLabel("bottom", "key token")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self.plot_widget.scene().sigMouseMoved.connect(self._heatmap_hover)

        # all heads
        self.grid = pg.GraphicsLayoutWidget()
        self.grid.scene().sigMouseClicked.connect(self._grid_clicked)

        # token lines
        self.lines_widget = pg.PlotWidget()
        self.lines_plot = self.lines_widget.getPlotItem()
        self.lines_plot.invertY(True)
        self.lines_plot.setMenuEnabled(False)
        self.lines_plot.setMouseEnabled(x=False, y=False)
        self.lines_plot.hideButtons()
        self.lines_plot.hideAxis("left")
        self.lines_plot.hideAxis("bottom")
        self.lines_widget.scene().sigMouseMoved.connect(self._lines_hover)

        self.stack = QStackedWidget()
        for page in (self.plot_widget, self.grid, self.lines_widget):
            self.stack.addWidget(page)

        self.text_box = QTextEdit()
        self.text_box.setReadOnly(True)
        self.text_box.setMaximumHeight(90)
        self.text_box.setPlaceholderText("The row's text; hover a token to see its characters.")

        controls = QHBoxLayout()
        for widget in (self.mode, self.layer, self.head, self.hide_special):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(controls)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.text_box)
        self.mode.currentIndexChanged.connect(self._redraw)
        self.layer.valueChanged.connect(self._redraw)
        self.head.currentIndexChanged.connect(self._redraw)
        self.hide_special.toggled.connect(self._redraw)
        self._set_controls_enabled(False)

    # -- public -------------------------------------------------------------------------------

    def set_maps(self, maps: AttentionMaps, title: str) -> None:
        """Show ``maps``; keeps the chosen mode, layer and head when the new row has them."""
        self.maps = maps
        self._rollout = None
        self.title.setText(title)
        layer = min(self.layer.value(), maps.layers - 1)
        self.layer.blockSignals(True)
        self.head.blockSignals(True)
        self.layer.setRange(0, maps.layers - 1)
        self.layer.setValue(layer if self.head.count() else maps.layers - 1)
        previous = self.head.currentIndex()
        self.head.clear()
        self.head.addItems([MEAN_OF_HEADS] + [f"head {h}" for h in range(maps.heads)])
        self.head.setCurrentIndex(max(previous, 0) if previous <= maps.heads else 0)
        self.layer.blockSignals(False)
        self.head.blockSignals(False)
        self.text_box.setPlainText(maps.text)
        self.highlighted = None
        self._build_grid(maps)
        self._set_controls_enabled(True)
        self._redraw()

    def current_mode(self) -> str:
        return self.mode.currentText()

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(MODES.index(mode))

    def shown_indices(self) -> list[int]:
        """Indices into ``maps.tokens`` of the tokens drawn (after the special-token filter)."""
        assert self.maps is not None
        if self.hide_special.isChecked():
            keep = [i for i, special in enumerate(self.maps.special) if not special]
            if len(keep) >= 2:
                return keep
        return list(range(len(self.maps.tokens)))

    def shown_matrix(self) -> tuple[npt.NDArray[np.float32], list[str]]:
        """The matrix and token labels as currently drawn (after the selectors and the filter).

        In rollout mode this is the rollout over all layers; otherwise the chosen layer and
        head. Rollout runs over every token and the filter then drops rows and columns, so
        attention that flows through special tokens still counts.
        """
        assert self.maps is not None
        keep = self.shown_indices()
        if self.current_mode() == ROLLOUT:
            if self._rollout is None:
                self._rollout = rollout(self.maps, residual=True)
            matrix = self._rollout[np.ix_(keep, keep)]
        else:
            filtered = self._filtered_maps()
            per_layer = filtered.attentions[self.layer.value()]
            head = self.head.currentIndex() - 1
            matrix = per_layer.mean(axis=0) if head < 0 else per_layer[head]
        return matrix, [self.maps.tokens[i] for i in keep]

    def choose_thumbnail(self, layer: int, head: int) -> None:
        """Open ``layer``/``head`` (head -1 is the mean of heads) as the heatmap."""
        self.layer.blockSignals(True)
        self.head.blockSignals(True)
        self.mode.blockSignals(True)
        self.layer.setValue(layer)
        self.head.setCurrentIndex(head + 1)
        self.set_mode(HEATMAP)
        self.layer.blockSignals(False)
        self.head.blockSignals(False)
        self.mode.blockSignals(False)
        self._redraw()

    def highlight_token(self, i: int | None) -> None:
        """Highlight token ``i`` (an index into ``maps.tokens``) in the text box; None clears.

        Special tokens have no characters, so they clear the highlight too.
        """
        if self.maps is None or i is None or not 0 <= i < len(self.maps.tokens):
            self.highlighted = None
            self.text_box.setExtraSelections([])
            return
        self.highlighted = i
        span = token_spans(self.maps)[i]
        if span is None:
            self.text_box.setExtraSelections([])
            return
        selection = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.text_box.document())
        cursor.setPosition(span[0])
        cursor.setPosition(span[1], QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setBackground(HIGHLIGHT)
        selection.cursor = cursor
        selection.format = fmt
        self.text_box.setExtraSelections([selection])
        self.text_box.setTextCursor(QTextCursor(cursor.block()))
        self.text_box.ensureCursorVisible()

    # -- drawing ------------------------------------------------------------------------------

    def _filtered_maps(self) -> AttentionMaps:
        assert self.maps is not None
        keep = self.shown_indices()
        if len(keep) < len(self.maps.tokens):
            return without_special(self.maps)
        return self.maps

    def _redraw(self) -> None:
        mode = self.current_mode()
        self._set_selectors_for(mode)
        if self.maps is None:
            return
        self._shown_tokens = self.shown_indices()
        if mode in (HEATMAP, ROLLOUT):
            self.stack.setCurrentWidget(self.plot_widget)
            self._draw_heatmap()
        elif mode == ALL_HEADS:
            self.stack.setCurrentWidget(self.grid)
            self._draw_grid()
        else:
            self.stack.setCurrentWidget(self.lines_widget)
            self._draw_lines()

    def _draw_heatmap(self) -> None:
        matrix, tokens = self.shown_matrix()
        self.image.setImage(matrix, levels=(0.0, float(matrix.max()) or 1.0))
        ticks = [(i + 0.5, token) for i, token in enumerate(tokens)]
        self.plot.getAxis("left").setTicks([ticks])
        self.plot.getAxis("bottom").setTicks([ticks])
        self.plot.setLabel("left", "output token" if self.current_mode() == ROLLOUT else "query token")
        self.plot.setLabel("bottom", "input token" if self.current_mode() == ROLLOUT else "key token")
        self.plot.autoRange(padding=0)

    def _build_grid(self, maps: AttentionMaps) -> None:
        """One small view box per layer and head; rebuilt only when the shape changes."""
        if self._thumb_boxes and max(self._thumb_boxes) == (maps.layers - 1, maps.heads - 1):
            return
        self.grid.clear()
        self._thumb_boxes.clear()
        self.thumbnails.clear()
        colormap = pg.colormap.get("viridis")
        for head in range(maps.heads):
            self.grid.addLabel(f"h{head}", row=0, col=head + 1, size="8pt")
        for layer in range(maps.layers):
            self.grid.addLabel(f"L{layer}", row=layer + 1, col=0, size="8pt")
            for head in range(maps.heads):
                box = self.grid.addViewBox(row=layer + 1, col=head + 1, lockAspect=True, enableMouse=False)
                box.invertY(True)
                box.setMenuEnabled(False)
                image = pg.ImageItem(axisOrder="row-major")
                image.setColorMap(colormap)
                box.addItem(image)
                self._thumb_boxes[(layer, head)] = box
                self.thumbnails[(layer, head)] = image

    def _draw_grid(self) -> None:
        filtered = self._filtered_maps()
        for (layer, head), image in self.thumbnails.items():
            matrix = filtered.attentions[layer, head]
            image.setImage(matrix, levels=(0.0, float(matrix.max()) or 1.0))
            self._thumb_boxes[(layer, head)].autoRange(padding=0)

    def _draw_lines(self) -> None:
        matrix, tokens = self.shown_matrix()
        self.lines_plot.clear()
        n = len(tokens)
        for i, token in enumerate(tokens):
            left = pg.TextItem(token, color="#222", anchor=(1.0, 0.5))
            left.setPos(-0.05, i)
            right = pg.TextItem(token, color="#222", anchor=(0.0, 0.5))
            right.setPos(1.05, i)
            self.lines_plot.addItem(left)
            self.lines_plot.addItem(right)
        queries, keys = np.nonzero(matrix >= LINE_THRESHOLD)
        weights = matrix[queries, keys]
        self.token_line_pairs = [
            (int(q), int(k), float(w)) for q, k, w in zip(queries, keys, weights, strict=True)
        ]
        top = float(weights.max()) if len(weights) else 1.0
        buckets = np.minimum((weights / top * LINE_BUCKETS).astype(int), LINE_BUCKETS - 1)
        for bucket in range(LINE_BUCKETS):
            chosen = np.flatnonzero(buckets == bucket)
            if not len(chosen):
                continue
            strength = (bucket + 1) / LINE_BUCKETS
            pen = QPen(QColor(90, 170, 255, int(40 + 215 * strength)))
            pen.setWidthF(0.5 + 4.0 * strength)
            pen.setCosmetic(True)
            xs = np.zeros(2 * len(chosen))
            xs[1::2] = 1.0
            ys = np.empty(2 * len(chosen))
            ys[0::2] = queries[chosen]
            ys[1::2] = keys[chosen]
            self.lines_plot.addItem(pg.PlotCurveItem(xs, ys, pen=pen, connect="pairs"))
        self.lines_plot.setXRange(-1.0, 2.0, padding=0)
        self.lines_plot.setYRange(-0.5, max(n, 1) - 0.5, padding=0.02)

    # -- mouse --------------------------------------------------------------------------------

    def _heatmap_hover(self, pos: QPointF) -> None:
        if self.maps is None or not self._shown_tokens:
            return
        point = self.plot.getViewBox().mapSceneToView(pos)
        n = len(self._shown_tokens)
        x, y = point.x(), point.y()
        shown: int | None = None
        if 0 <= y < n and x < n:  # over a row of the image or the query axis
            shown = int(y)
        elif y >= n and 0 <= x < n:  # under the image: the key axis
            shown = int(x)
        self.highlight_token(None if shown is None else self._shown_tokens[shown])

    def _lines_hover(self, pos: QPointF) -> None:
        if self.maps is None or not self._shown_tokens:
            return
        point = self.lines_plot.getViewBox().mapSceneToView(pos)
        shown = round(point.y())
        if 0 <= shown < len(self._shown_tokens):
            self.highlight_token(self._shown_tokens[shown])
        else:
            self.highlight_token(None)

    def _grid_clicked(self, event: Any) -> None:
        pos = event.scenePos()
        for (layer, head), box in self._thumb_boxes.items():
            if box.sceneBoundingRect().contains(pos):
                event.accept()
                self.choose_thumbnail(layer, head)
                return

    def _set_selectors_for(self, mode: str) -> None:
        enabled = self.maps is not None
        self.layer.setEnabled(enabled and mode in (HEATMAP, TOKEN_LINES))
        self.head.setEnabled(enabled and mode in (HEATMAP, TOKEN_LINES))

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in (self.mode, self.layer, self.head, self.hide_special):
            widget.setEnabled(enabled)
        if enabled:
            self._set_selectors_for(self.current_mode())
