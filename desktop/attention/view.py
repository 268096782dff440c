"""Attention for one row, in four modes.

* heatmap: one layer and head (or the mean of the heads) as a query x key image;
* all heads: a layers x heads grid of thumbnails; clicking one opens it as the heatmap;
* token lines: the tokens in two columns (query left, key right) joined by lines whose
  width and opacity follow the attention of the chosen layer and head (bertviz head view);
* rollout: attention rollout over all layers (Abnar & Zuidema, residual included).

The hide-special-tokens switch and the tokens/words switch apply to every mode. In the words
view subword tokens are merged into the words they spell (:func:`engine.model.attention.words_of`:
the attention a word receives is the sum over its tokens, the attention it pays the mean).

The heatmap labels only as many tokens as fit its size, and recomputes them when the view is
resized or zoomed (:class:`desktop.attention.heatmap.TokenHeatmap`): drag a rectangle or turn
the wheel to zoom, drag with the middle button to pan, "Reset zoom" to see every token again.
Hovering a cell names its query and key and gives the value; the text box under the views
highlights the query's characters (and the key's, in blue).

"Export figure…" writes the shown heatmap or rollout with a provenance sidecar
(:mod:`desktop.attention.figure_export`); the window supplies the dataset and model part of
the record through ``provenance_source``. The all-heads grid, the token lines and the text box
are drawn by :mod:`~desktop.attention.heads_grid`, :mod:`~desktop.attention.token_lines` and
:mod:`~desktop.attention.row_text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.attention.colours import BACKGROUND, FOREGROUND, colour_axes
from desktop.attention.figure_export import FigureView, FigureWrite, save_row_attention
from desktop.attention.heads_grid import HeadsGrid
from desktop.attention.heatmap import TokenHeatmap
from desktop.attention.row_text import RowText
from desktop.attention.token_lines import draw_token_lines
from engine.errors import LoupeError
from engine.model.attention import merge_words, rollout, token_spans, without_special, word_groups, words_of
from engine.model.inference import AttentionMaps

MEAN_OF_HEADS = "mean of heads"
HEATMAP, ALL_HEADS, TOKEN_LINES, ROLLOUT = "heatmap", "all heads", "token lines", "rollout"
MODES = (HEATMAP, ALL_HEADS, TOKEN_LINES, ROLLOUT)
TOKENS, WORDS = "tokens", "words"
UNITS = (TOKENS, WORDS)
HOVER_HINT = "Hover a cell for its query, key and value; drag a rectangle or turn the wheel to zoom."
UNIT_TIP = (
    "words: subword tokens merged into the words they spell. A word receives the sum of the "
    "attention its tokens receive and pays the mean of what its tokens pay, so rows still sum to 1."
)
EXPORT_TIP = (
    "Write the shown heatmap or rollout as PNG, SVG or PDF with a provenance sidecar. "
    "In the all-heads and token-lines modes this is the heatmap of the chosen layer and head."
)


class AttentionView(FigureView):
    """Shows :class:`AttentionMaps`; the selectors redraw without recomputing the model.

    ``exported(list[Path])`` and ``export_failed(str)`` follow an export started from the
    button (GUI thread). ``provenance_source``, when the window sets it, returns the
    dataset/model record that every exported figure's sidecar starts from.
    """

    figure_size = (7.0, 6.0)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.maps: AttentionMaps | None = None
        self._dark = False
        self._rollout: npt.NDArray[np.float32] | None = None  # over tokens, whatever the unit
        self._words: AttentionMaps | None = None  # self.maps merged into words, made on first use
        self._shown_tokens: list[int] = []  # indices into shown_maps().tokens drawn now
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
        self.hide_special = QCheckBox("hide special")  # short: the row must fit the ~550-pixel tab
        self.hide_special.setToolTip("Hide the special tokens ([CLS], [SEP], <s>, …) in every mode")
        self.hide_special.setChecked(True)
        self.unit = QComboBox()
        self.unit.addItems(list(UNITS))
        self.unit.setToolTip(UNIT_TIP)
        self.reset_zoom = QPushButton("Reset zoom")
        self.reset_zoom.setToolTip("Show every token again after zooming in")
        self.export_button = QPushButton("Export figure…")
        self.export_button.setToolTip(EXPORT_TIP)

        # heatmap (also used by rollout)
        self.plot_widget = TokenHeatmap()
        self.plot, self.image = self.plot_widget.plot, self.plot_widget.image
        self.query_axis, self.key_axis = self.plot_widget.query_axis, self.plot_widget.key_axis
        self.plot_widget.scene().sigMouseMoved.connect(self._heatmap_hover)

        # all heads
        self.grid = HeadsGrid()
        self.grid.chosen.connect(self.choose_thumbnail)

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

        self.readout = QLabel(HOVER_HINT)
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        # Wrapped, so the hint never sets the pane's minimum width: unwrapped, its 510 pixels
        # made the window wider than a 1600-pixel screen when it opened.
        self.readout.setWordWrap(True)
        self.text_box = RowText()

        # The export button sits beside the title, not after the controls: one row of all of
        # them made the pane, and so the window, too wide for a 1366-pixel laptop screen.
        heading = QHBoxLayout()
        heading.addWidget(self.title, 1)
        heading.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignTop)
        controls = QHBoxLayout()
        for widget in (self.mode, self.layer, self.head, self.unit, self.hide_special):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(heading)
        layout.addLayout(controls)
        layout.addWidget(self.stack, 1)
        under = QHBoxLayout()
        under.addWidget(self.readout, 1)
        under.addWidget(self.reset_zoom)
        layout.addLayout(under)
        layout.addWidget(self.text_box)
        self.mode.currentIndexChanged.connect(self._redraw)
        self.layer.valueChanged.connect(self._redraw)
        self.head.currentIndexChanged.connect(self._redraw)
        self.hide_special.toggled.connect(self._redraw)
        self.unit.currentIndexChanged.connect(self._redraw)
        self.reset_zoom.clicked.connect(self.zoom_to_all)
        self.export_button.clicked.connect(self.choose_export)
        self._set_controls_enabled(False)

    # -- public -------------------------------------------------------------------------------

    @property
    def thumbnails(self) -> dict[tuple[int, int], Any]:
        """The all-heads images by (layer, head), once that mode has been shown."""
        return self.grid.thumbnails

    def set_maps(self, maps: AttentionMaps, title: str) -> None:
        """Show ``maps``; keeps the chosen mode, layer and head when the new row has them."""
        self.maps = maps
        self._rollout = None
        self._words = None
        self.plot_widget.forget_zoom()
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
        self.text_box.set_text(maps.text)
        self.highlighted = None
        self._set_controls_enabled(True)
        self._redraw()

    def current_mode(self) -> str:
        return self.mode.currentText()

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(MODES.index(mode))

    def current_unit(self) -> str:
        """ "tokens" or "words": what the rows and columns of every mode are."""
        return self.unit.currentText()

    def set_unit(self, unit: str) -> None:
        self.unit.setCurrentIndex(UNITS.index(unit))

    def shown_maps(self) -> AttentionMaps:
        """The maps over the chosen unit: ``maps`` itself, or merged into words."""
        assert self.maps is not None
        if self.current_unit() == TOKENS:
            return self.maps
        if self._words is None:
            self._words = words_of(self.maps)
        return self._words

    def shown_indices(self) -> list[int]:
        """Indices into ``shown_maps().tokens`` of the tokens (or words) drawn, special ones filtered."""
        shown = self.shown_maps()
        if self.hide_special.isChecked():
            keep = [i for i, special in enumerate(shown.special) if not special]
            if len(keep) >= 2:
                return keep
        return list(range(len(shown.tokens)))

    def shown_matrix(self) -> tuple[npt.NDArray[np.float32], list[str]]:
        """The matrix and labels as currently drawn (after the selectors, the unit and the filter).

        In rollout mode this is the rollout over all layers; otherwise the chosen layer and
        head. Rollout runs over every token (the model's own units) and is then merged into
        words and filtered, so attention that flows through special tokens still counts.
        """
        assert self.maps is not None
        keep = self.shown_indices()
        if self.current_mode() == ROLLOUT:
            if self._rollout is None:
                self._rollout = rollout(self.maps, residual=True)
            full = self._rollout
            if self.current_unit() == WORDS:
                full = merge_words(full, word_groups(self.maps))
            matrix = full[np.ix_(keep, keep)]
        else:
            filtered = self._filtered_maps()
            per_layer = filtered.attentions[self.layer.value()]
            head = self.head.currentIndex() - 1
            matrix = per_layer.mean(axis=0) if head < 0 else per_layer[head]
        labels = self.shown_maps().tokens
        return matrix, [labels[i] for i in keep]

    def zoom_to_all(self) -> None:
        """Show the whole heatmap again (the "Reset zoom" button)."""
        self.plot_widget.zoom_to_all()

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

    def highlight_token(self, i: int | None, key: int | None = None) -> None:
        """Highlight token (or word) ``i`` in the text box, and ``key`` in blue; None clears.

        Both index ``shown_maps().tokens``. Special tokens have no characters to highlight.
        """
        shown = self.shown_maps() if self.maps is not None else None
        if shown is None or i is None or not 0 <= i < len(shown.tokens):
            self.highlighted = None
            self.text_box.highlight(None)
            return
        self.highlighted = i
        spans = token_spans(shown)
        key_span = spans[key] if key is not None and key != i and 0 <= key < len(spans) else None
        self.text_box.highlight(spans[i], key_span)

    def figure_writer(
        self, path: Path, provenance: Mapping[str, Any] | None, *, width: float, height: float, dpi: int
    ) -> FigureWrite:
        """The shown view's figure and its sidecar: heatmap and rollout as shown; all heads and
        token lines as the heatmap of the chosen layer and head. ``provenance`` is the window's
        record (dataset, model), completed with the view, layer, head and text."""
        if self.maps is None:
            raise LoupeError("There is no attention to export yet: click a point on the map first.")
        maps, rollout_shown = self.maps, self.current_mode() == ROLLOUT
        head = self.head.currentIndex() - 1 if self.head.currentIndex() > 0 else None
        write = partial(
            save_row_attention,
            path,
            maps,
            provenance,
            rollout_shown=rollout_shown,
            layer=self.layer.value(),
            head=head,
            hide_special=self.hide_special.isChecked(),
            unit=self.current_unit(),
            shown_mode=self.current_mode(),
            title=self._figure_title("rollout" if rollout_shown else "heatmap", head),
            size=(width, height),
            dpi=dpi,
        )
        return write

    def choose_export(self) -> None:
        """Ask for a file, size and resolution, then export through ``export_runner`` (the
        window's runs it as a job); reports by signal on the GUI thread."""
        if self.maps is None:
            return
        name = "attention-rollout" if self.current_mode() == ROLLOUT else "attention"
        name += "-words.svg" if self.current_unit() == WORDS else ".svg"
        self.ask_and_export(name)

    def set_dark(self, dark: bool) -> None:
        """Dark or light plot backgrounds, axes and token labels (called by the theme)."""
        self._dark = dark
        for widget in (self.plot_widget, self.grid, self.lines_widget):
            widget.setBackground(BACKGROUND[dark])
        colour_axes([self.plot.getAxis("left"), self.plot.getAxis("bottom")], dark)
        self.grid.set_dark(dark)
        self._redraw()

    def _figure_title(self, view: str, head: int | None) -> str:
        words = " · words" if self.current_unit() == WORDS else ""
        if view == "rollout":
            return f"Attention rollout over all layers{words}"
        return f"Layer {self.layer.value()} · {MEAN_OF_HEADS if head is None else f'head {head}'}{words}"

    # -- drawing ------------------------------------------------------------------------------

    def _filtered_maps(self) -> AttentionMaps:
        shown = self.shown_maps()
        if len(self.shown_indices()) < len(shown.tokens):
            return without_special(shown)
        return shown

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
        matrix, labels = self.shown_matrix()
        self.plot_widget.show_matrix(
            matrix,
            labels,
            thing="word" if self.current_unit() == WORDS else "token",
            rollout=self.current_mode() == ROLLOUT,
            zoom_key=(id(self.maps), self.current_unit(), tuple(self.shown_indices())),
        )

    def _draw_grid(self) -> None:
        # Built on first use, not on the first click: 72 view boxes cost the GUI thread ~0.3 s.
        self.grid.draw(self._filtered_maps().attentions)

    def _draw_lines(self) -> None:
        matrix, tokens = self.shown_matrix()
        self.token_line_pairs = draw_token_lines(self.lines_plot, matrix, tokens, FOREGROUND[self._dark])

    # -- mouse --------------------------------------------------------------------------------

    def _heatmap_hover(self, pos: QPointF) -> None:
        if self.maps is None or not self._shown_tokens or self.plot_widget.matrix is None:
            return
        point = self.plot.getViewBox().mapSceneToView(pos)
        self.hover_at(point.x(), point.y())

    def hover_at(self, x: float, y: float) -> None:
        """What hovering the heatmap at data point ``(x, y)`` does: the readout and the highlight.

        Over a cell: the query, the key and the value, and both highlighted in the text. Left
        of the image (the query axis) or under it (the key axis): that token alone.
        """
        if self.maps is None or self.plot_widget.matrix is None:
            return
        n = len(self._shown_tokens)
        labels = self.shown_maps().tokens
        query = int(np.floor(y)) if 0 <= y < n else None
        key = int(np.floor(x)) if 0 <= x < n else None
        if query is not None and key is not None:
            value = float(self.plot_widget.matrix[query, key])
            q, k = self._shown_tokens[query], self._shown_tokens[key]
            self.readout.setText(f"query {labels[q]!r} ({query})  →  key {labels[k]!r} ({key}):  {value:.4f}")
            self.highlight_token(q, k)
        elif query is not None and x < 0:  # over the query axis
            self.readout.setText(f"query {labels[self._shown_tokens[query]]!r} ({query})")
            self.highlight_token(self._shown_tokens[query])
        elif key is not None and y >= n:  # under the image: the key axis
            self.readout.setText(f"key {labels[self._shown_tokens[key]]!r} ({key})")
            self.highlight_token(self._shown_tokens[key])
        else:
            self.readout.setText(HOVER_HINT)
            self.highlight_token(None)

    def _lines_hover(self, pos: QPointF) -> None:
        if self.maps is None or not self._shown_tokens:
            return
        point = self.lines_plot.getViewBox().mapSceneToView(pos)
        shown = round(point.y())
        if 0 <= shown < len(self._shown_tokens):
            self.highlight_token(self._shown_tokens[shown])
        else:
            self.highlight_token(None)

    def _set_selectors_for(self, mode: str) -> None:
        enabled = self.maps is not None
        self.layer.setEnabled(enabled and mode in (HEATMAP, TOKEN_LINES))
        self.head.setEnabled(enabled and mode in (HEATMAP, TOKEN_LINES))
        self.reset_zoom.setEnabled(enabled and mode in (HEATMAP, ROLLOUT))
        for widget in (self.readout, self.reset_zoom):  # the heatmap's: hidden with it
            widget.setVisible(mode in (HEATMAP, ROLLOUT))

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in (self.mode, self.layer, self.head, self.unit, self.hide_special, self.export_button):
            widget.setEnabled(enabled)
        if enabled:
            self._set_selectors_for(self.current_mode())
