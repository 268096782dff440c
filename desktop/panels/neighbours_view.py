"""The clicked row's nearest neighbours in model space (cosine), with distances.

The map can mislead: two rows drawn side by side may be far apart for the model. This list
is the model's own answer; clicking a neighbour selects it on the map.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget


class NeighboursView(QWidget):
    row_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Nearest neighbours in model space: click a point")
        self.list = QListWidget()
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.list)

    def set_neighbours(
        self,
        row: int,
        indices: npt.NDArray[np.intp],
        distances: npt.NDArray[np.float32],
        texts: Sequence[str],
        labels: Sequence[str],
    ) -> None:
        self.title.setText(f"Nearest neighbours of row {row} (cosine distance)")
        self.list.clear()
        for index, distance in zip(indices.tolist(), distances.tolist(), strict=True):
            label = f" · {labels[index]}" if labels[index] else ""
            start = texts[index][:4000]  # shortening a 1 MB text whole took 0.4 s per row
            text = textwrap.shorten(start, 110)
            item = QListWidgetItem(f"{distance:.3f}  row {index}{label}: {text}")
            item.setData(Qt.ItemDataRole.UserRole, int(index))
            item.setToolTip(textwrap.fill(textwrap.shorten(start, 600), 80))
            self.list.addItem(item)

    def rows(self) -> list[int]:
        return [int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    def _chosen(self, item: QListWidgetItem) -> None:
        self.row_chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))
