"""The all-heads mode: a layers x heads grid of small heatmaps; clicking one chooses it."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Signal

from desktop.attention.colours import FOREGROUND


class HeadsGrid(pg.GraphicsLayoutWidget):  # type: ignore[misc]
    """One thumbnail per layer and head, labelled ``h<head>`` across and ``L<layer>`` down.

    ``chosen(layer, head)`` is emitted on the GUI thread when a thumbnail is clicked.
    """

    chosen = Signal(int, int)

    def __init__(self) -> None:
        super().__init__()
        self.boxes: dict[tuple[int, int], Any] = {}  # (layer, head) -> its view box
        self.thumbnails: dict[tuple[int, int], Any] = {}  # (layer, head) -> its image
        self.scene().sigMouseClicked.connect(self._clicked)

    def draw(self, attentions: npt.NDArray[np.float32]) -> None:
        """Show ``attentions`` (layers x heads x queries x keys), each thumbnail on its own scale."""
        layers, heads = attentions.shape[:2]
        self._build(layers, heads)
        for (layer, head), image in self.thumbnails.items():
            matrix = attentions[layer, head]
            image.setImage(matrix, levels=(0.0, float(matrix.max()) or 1.0))
            self.boxes[(layer, head)].autoRange(padding=0)

    def set_dark(self, dark: bool) -> None:
        """The layer and head labels in the theme's foreground colour."""
        for item in self.ci.items:
            if isinstance(item, pg.LabelItem):
                item.setText(item.text, color=FOREGROUND[dark])

    def _build(self, layers: int, heads: int) -> None:
        """One small view box per layer and head; rebuilt only when the shape changes."""
        if self.boxes and max(self.boxes) == (layers - 1, heads - 1):
            return
        self.clear()
        self.boxes.clear()
        self.thumbnails.clear()
        colormap = pg.colormap.get("viridis")
        for head in range(heads):
            self.addLabel(f"h{head}", row=0, col=head + 1, size="8pt")
        for layer in range(layers):
            self.addLabel(f"L{layer}", row=layer + 1, col=0, size="8pt")
            for head in range(heads):
                box = self.addViewBox(row=layer + 1, col=head + 1, lockAspect=True, enableMouse=False)
                box.invertY(True)
                box.setMenuEnabled(False)
                image = pg.ImageItem(axisOrder="row-major")
                image.setColorMap(colormap)
                box.addItem(image)
                self.boxes[(layer, head)] = box
                self.thumbnails[(layer, head)] = image

    def _clicked(self, event: Any) -> None:
        pos = event.scenePos()
        for (layer, head), box in self.boxes.items():
            if box.sceneBoundingRect().contains(pos):
                event.accept()
                self.chosen.emit(layer, head)
                return
