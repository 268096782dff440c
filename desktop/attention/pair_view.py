"""One row's attention under two models side by side, and their difference.

The window shows this view when a row is clicked in a comparison (Map ▸ Compare with…): the
same layer and head choice drives both sides, both are drawn on one colour scale so they
compare by eye, and when the two tokenizers split the row identically a third panel shows the
difference (against − base) in diverging colours centred on 0. When they split it differently
the view says so in one sentence and shows the two grids only. Models of different depth or
width are matched as :mod:`engine.user.attention_pair_figure` explains (relative depth; a head
past a model's last shows its last), and the panel captions say what each side shows.

While the grids agree the three panels zoom and pan together. "Export figure…" writes what is
shown (:func:`engine.user.attention_pair_figure.write_attention_pair`) with a sidecar that
records both sides, through the window's ``export_runner`` like every :class:`FigureView`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.attention.colours import BACKGROUND, colour_axes
from desktop.attention.figure_export import FigureView, FigureWrite
from desktop.attention.heatmap import TokenHeatmap
from engine.errors import LoupeError
from engine.model.inference import AttentionMaps
from engine.user.attention_pair_figure import (
    PairedAttention,
    pair_ranges,
    paired_attention,
    side_caption,
    write_attention_pair,
)

MEAN_OF_HEADS = "mean of heads"
TOKENS, WORDS = "tokens", "words"
UNITS = (TOKENS, WORDS)
WAITING = "Click a row in the comparison to see its attention under both models."
HOVER_HINT = "Hover a cell for both models' values; drag a rectangle or turn the wheel to zoom."
DIFFERENCE_COLOURS = "CET-D1"  # pyqtgraph's blue-white-red: the figure's RdBu_r, white at 0
EXPORT_TIP = (
    "Write both panels (and the difference, when shown) as PNG, SVG or PDF with a provenance sidecar."
)


class PairedAttentionView(FigureView):
    """Two models' attention for one row: base, against and, when the grids agree, the difference.

    :meth:`show_pair` shows a row and :meth:`clear` empties the view; both run on the GUI thread.
    ``exported``/``export_failed``, ``provenance_source`` and ``export_runner`` work as on every
    :class:`FigureView`; the record ``provenance_source`` returns may hold each side's model
    record under ``base`` and ``against`` (the comparison's provenance), completed in the
    sidecar with what each side shows.
    """

    figure_size = (12.0, 4.8)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: int | None = None
        self.base: AttentionMaps | None = None
        self.against: AttentionMaps | None = None
        self.titles: tuple[str, str] = ("base", "against")
        self.pair: PairedAttention | None = None  # what is drawn now

        self.title = QLabel(WAITING)
        self.title.setWordWrap(True)
        self.export_button = QPushButton("Export figure…")
        self.export_button.setToolTip(EXPORT_TIP)
        self.layer = QSpinBox()
        self.layer.setPrefix("layer ")
        self.layer.setToolTip(
            "One layer for both models; a shallower model shows the layer at the same depth"
        )
        self.head = QComboBox()
        self.head.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.unit = QComboBox()
        self.unit.addItems(list(UNITS))
        self.unit.setToolTip("words: subword tokens merged into the words they spell, on both sides")
        self.hide_special = QCheckBox("hide special")
        self.hide_special.setToolTip("Hide the special tokens ([CLS], [SEP], <s>, …) on both sides")
        self.hide_special.setChecked(True)
        self.reset_zoom = QPushButton("Reset zoom")

        self.heatmaps = (TokenHeatmap(), TokenHeatmap(), TokenHeatmap())  # base, against, difference
        self.base_map, self.against_map, self.difference_map = self.heatmaps
        self.difference_map.image.setColorMap(pg.colormap.get(DIFFERENCE_COLOURS))
        self.captions = (QLabel(), QLabel(), QLabel())
        self.panels = panels = QGridLayout()
        for column, (caption, heatmap) in enumerate(zip(self.captions, self.heatmaps, strict=True)):
            caption.setTextFormat(Qt.TextFormat.PlainText)
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            caption.setWordWrap(True)
            panels.addWidget(caption, 0, column)
            panels.addWidget(heatmap, 1, column)
            panels.setColumnStretch(column, 1)
            heatmap.scene().sigMouseMoved.connect(partial(self._hover, heatmap))
            heatmap.plot.getViewBox().sigRangeChangedManually.connect(partial(self._follow, heatmap))
        panels.setRowStretch(1, 1)
        self.note = QLabel()  # why there is no difference panel, how the sides are matched
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.readout = QLabel(HOVER_HINT)
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.TextFormat.PlainText)

        heading = QHBoxLayout()
        heading.addWidget(self.title, 1)
        heading.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignTop)
        controls = QHBoxLayout()
        for widget in (self.layer, self.head, self.unit, self.hide_special):
            controls.addWidget(widget)
        controls.addStretch(1)
        under = QHBoxLayout()
        under.addWidget(self.readout, 1)
        under.addWidget(self.reset_zoom)
        layout = QVBoxLayout(self)
        layout.addLayout(heading)
        layout.addLayout(controls)
        layout.addWidget(self.note)
        layout.addLayout(panels, 1)
        layout.addLayout(under)
        self.layer.valueChanged.connect(self._redraw)
        self.head.currentIndexChanged.connect(self._redraw)
        self.unit.currentIndexChanged.connect(self._redraw)
        self.hide_special.toggled.connect(self._redraw)
        self.reset_zoom.clicked.connect(self.zoom_to_all)
        self.export_button.clicked.connect(self.choose_export)
        self.set_dark(False)  # pyqtgraph's own default is black; the theme calls again
        self.clear()

    # -- public -------------------------------------------------------------------------------

    def show_pair(
        self, row: int, base: AttentionMaps, against: AttentionMaps, titles: tuple[str, str]
    ) -> None:
        """Show row ``row``'s attention under two models, named by ``titles`` (base, against).

        Keeps the chosen layer, head, unit and filter when the new pair has them; a first pair
        opens at the last layer and the mean of the heads.
        """
        first = self.head.count() == 0  # later pairs, after a clear() too, keep the choice
        self.row, self.base, self.against, self.titles = row, base, against, titles
        layers, heads = pair_ranges(base, against)
        previous_head = self.head.currentIndex()
        self.layer.blockSignals(True)
        self.head.blockSignals(True)
        self.layer.setRange(0, layers - 1)
        self.layer.setValue(layers - 1 if first else min(self.layer.value(), layers - 1))
        self.head.clear()
        self.head.addItems([MEAN_OF_HEADS] + [f"head {h}" for h in range(heads)])
        self.head.setCurrentIndex(previous_head if 0 <= previous_head <= heads else 0)
        self.layer.blockSignals(False)
        self.head.blockSignals(False)
        self.title.setText(f"Row {row}: {titles[0]}  vs  {titles[1]}")
        for heatmap in self.heatmaps:
            heatmap.forget_zoom()
        self._set_controls_enabled(True)
        self._redraw()

    def clear(self, message: str = "") -> None:
        """Show nothing but ``message`` (or the hint to click a row); the controls wait."""
        self.row = self.base = self.against = self.pair = None
        self.title.setText(message or WAITING)
        self.note.clear()
        self.note.setVisible(False)
        for caption, heatmap in zip(self.captions, self.heatmaps, strict=True):
            caption.clear()
            heatmap.image.clear()
            heatmap.matrix = None
            heatmap.labels = []
            heatmap.query_axis.set_labels([])
            heatmap.key_axis.set_labels([])
        self._show_difference(False)
        self.readout.setText(HOVER_HINT)
        self._set_controls_enabled(False)

    def current_head(self) -> int | None:
        """The picked head, None for the mean of each model's heads."""
        return self.head.currentIndex() - 1 if self.head.currentIndex() > 0 else None

    def set_head(self, head: int | None) -> None:
        self.head.setCurrentIndex(0 if head is None else head + 1)

    def current_unit(self) -> str:
        """ "tokens" or "words": what both sides' rows and columns are."""
        return self.unit.currentText()

    def set_unit(self, unit: str) -> None:
        self.unit.setCurrentIndex(UNITS.index(unit))

    def difference_shown(self) -> bool:
        """Whether the difference panel is part of what is shown (the grids agree)."""
        return self.pair is not None and self.pair.difference is not None

    def zoom_to_all(self) -> None:
        """Show every token again on every panel."""
        for heatmap in self.heatmaps:
            heatmap.zoom_to_all()

    def figure_writer(
        self, path: Path, provenance: Mapping[str, Any] | None, *, width: float, height: float, dpi: int
    ) -> FigureWrite:
        """Both panels, and the difference when shown, as read now; written later on any thread."""
        if self.base is None or self.against is None or self.row is None:
            raise LoupeError("There is no attention pair to export yet: click a row in the comparison first.")
        write = partial(
            write_attention_pair,
            path,
            self.base,
            self.against,
            provenance,
            row=self.row,
            layer=self.layer.value(),
            head=self.current_head(),
            hide_special=self.hide_special.isChecked(),
            unit=self.current_unit(),
            titles=self.titles,
            size=(width, height),
            dpi=dpi,
        )
        return write

    def choose_export(self) -> None:
        """Ask for a file, size and resolution, then export through ``export_runner``."""
        if self.base is not None:
            self.ask_and_export(
                "attention-pair-words.svg" if self.current_unit() == WORDS else "attention-pair.svg"
            )

    def set_dark(self, dark: bool) -> None:
        """Dark or light plot backgrounds, axes and token labels (called by the theme)."""
        for heatmap in self.heatmaps:
            heatmap.setBackground(BACKGROUND[dark])
            colour_axes([heatmap.query_axis, heatmap.key_axis], dark)

    # -- drawing ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        if self.base is None or self.against is None:
            return
        unit = self.current_unit()
        self.pair = pair = paired_attention(
            self.base,
            self.against,
            layer=self.layer.value(),
            head=self.current_head(),
            hide_special=self.hide_special.isChecked(),
            unit=unit,
        )
        thing = "word" if unit == WORDS else "token"
        zoom_key = (id(self.base), id(self.against), unit, self.hide_special.isChecked())
        sides = (
            (pair.base, pair.base_labels, side_caption(self.titles[0], pair.base_layer, pair.base_head)),
            (
                pair.against,
                pair.against_labels,
                side_caption(self.titles[1], pair.against_layer, pair.against_head),
            ),
        )
        for heatmap, caption, (matrix, labels, text) in zip(
            self.heatmaps, self.captions, sides, strict=False
        ):
            heatmap.show_matrix(matrix, labels, thing=thing, rollout=False, zoom_key=zoom_key)
            heatmap.image.setLevels((0.0, pair.scale))  # one scale for both sides
            caption.setText(text.replace("\n", " · "))
        if pair.difference is not None:
            self.difference_map.show_matrix(
                pair.difference, pair.base_labels, thing=thing, rollout=False, zoom_key=zoom_key
            )
            self.difference_map.image.setLevels((-pair.difference_limit, pair.difference_limit))
            self.captions[2].setText(
                "difference (against − base)" + (": 0, identical" if pair.identical else "")
            )
        self._show_difference(pair.difference is not None)
        self.note.setText(pair.note)
        self.note.setVisible(bool(pair.note))

    def _show_difference(self, shown: bool) -> None:
        """Show or hide the third panel (and give its room to the other two when hidden)."""
        self.difference_map.setVisible(shown)
        self.captions[2].setVisible(shown)
        self.panels.setColumnStretch(2, 1 if shown else 0)  # two panels then share the width
        if not shown:
            self.difference_map.image.clear()
            self.difference_map.matrix = None
            self.difference_map.forget_zoom()

    def _follow(self, leader: TokenHeatmap, *_: object) -> None:
        """After the user zooms or pans one panel, show the same cells on the others (while the
        grids agree). Copied by hand rather than by pyqtgraph's view links: linked views that
        lock their aspect ratio keep widening each other's range when the panels are resized."""
        if not self.difference_shown():
            return
        x_range, y_range = leader.plot.getViewBox().viewRange()
        for heatmap in self.heatmaps:
            if heatmap is not leader:
                heatmap.plot.getViewBox().setRange(xRange=x_range, yRange=y_range, padding=0)

    # -- mouse --------------------------------------------------------------------------------

    def _hover(self, heatmap: TokenHeatmap, pos: QPointF) -> None:
        if self.pair is None or heatmap.matrix is None:
            return
        point = heatmap.plot.getViewBox().mapSceneToView(pos)
        self.hover_at(self.heatmaps.index(heatmap), point.x(), point.y())

    def hover_at(self, panel: int, x: float, y: float) -> None:
        """The readout for data point ``(x, y)`` of panel ``panel`` (0 base, 1 against, 2
        difference): the cell's query and key and, while the grids agree, all three values."""
        pair = self.pair
        if pair is None:
            return
        labels = pair.against_labels if panel == 1 else pair.base_labels
        n = len(labels)
        if not (0 <= x < n and 0 <= y < n):
            self.readout.setText(HOVER_HINT)
            return
        query, key = int(np.floor(y)), int(np.floor(x))
        where = f"query {labels[query]!r} ({query})  →  key {labels[key]!r} ({key}):  "
        if pair.difference is not None:
            self.readout.setText(
                where + f"{self.titles[0]} {pair.base[query, key]:.4f}, {self.titles[1]} "
                f"{pair.against[query, key]:.4f}, difference {pair.difference[query, key]:+.4f}"
            )
        else:
            matrix = pair.against if panel == 1 else pair.base
            self.readout.setText(where + f"{self.titles[panel]} {matrix[query, key]:.4f}")

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in (
            self.layer,
            self.head,
            self.unit,
            self.hide_special,
            self.export_button,
            self.reset_zoom,
        ):
            widget.setEnabled(enabled)
