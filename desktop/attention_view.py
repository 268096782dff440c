"""Attention for one row: a heatmap of one layer and head (or the mean of the heads)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.inference import AttentionMaps

MEAN_OF_HEADS = "mean of heads"


class AttentionView(QWidget):
    """Shows :class:`AttentionMaps`; the layer and head selectors redraw without recomputing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.maps: AttentionMaps | None = None
        self.title = QLabel("Click a point on the map to see how the model attends over its tokens.")
        self.title.setWordWrap(True)
        self.layer = QSpinBox()
        self.layer.setPrefix("layer ")
        self.head = QComboBox()
        self.head.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.hide_special = QCheckBox("hide special tokens")
        self.hide_special.setChecked(True)
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

        controls = QHBoxLayout()
        for widget in (self.layer, self.head, self.hide_special):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(controls)
        layout.addWidget(self.plot_widget, 1)
        self.layer.valueChanged.connect(self._redraw)
        self.head.currentIndexChanged.connect(self._redraw)
        self.hide_special.toggled.connect(self._redraw)
        self._set_controls_enabled(False)

    def set_maps(self, maps: AttentionMaps, title: str) -> None:
        """Show ``maps``; keeps the chosen layer and head when the new row has them."""
        self.maps = maps
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
        self._set_controls_enabled(True)
        self._redraw()

    def shown_matrix(self) -> tuple[npt.NDArray[np.float32], list[str]]:
        """The matrix and token labels as currently drawn (after the selectors and the filter)."""
        assert self.maps is not None
        per_layer = self.maps.attentions[self.layer.value()]
        head = self.head.currentIndex() - 1
        matrix = per_layer.mean(axis=0) if head < 0 else per_layer[head]
        keep = [
            i
            for i, special in enumerate(self.maps.special)
            if not (special and self.hide_special.isChecked())
        ]
        if len(keep) < 2:
            keep = list(range(len(self.maps.tokens)))
        return matrix[np.ix_(keep, keep)], [self.maps.tokens[i] for i in keep]

    def _redraw(self) -> None:
        if self.maps is None:
            return
        matrix, tokens = self.shown_matrix()
        self.image.setImage(matrix, levels=(0.0, float(matrix.max()) or 1.0))
        ticks = [(i + 0.5, token) for i, token in enumerate(tokens)]
        self.plot.getAxis("left").setTicks([ticks])
        self.plot.getAxis("bottom").setTicks([ticks])
        self.plot.autoRange(padding=0)

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in (self.layer, self.head, self.hide_special):
            widget.setEnabled(enabled)
