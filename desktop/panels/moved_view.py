"""The "Moved most" panel: the rows whose place changed most between a comparison's two maps.

A dock with one line per row, the farthest first: its displacement (in units of the first
map's spread), its neighbour overlap (1: the same k neighbours under both sides), its label and
the start of its text. Choosing a line emits :attr:`row_chosen` (the window selects the row on
both maps and asks for its neighbours under each side); :meth:`set_neighbours` then lists them
before (the first side) and after (the other), with their texts. GUI thread only.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.model.comparison import moved_rows
from engine.api.types import Comparison

COLUMNS = ("Row", "Moved", "Overlap", "Label", "Text")
PREVIEW_CHARS = 120


class MovedMostView(QDockWidget):
    """The dock; ``row_chosen(row)`` when a line is clicked or opened."""

    row_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Moved most", parent)
        self.setObjectName("moved_most")  # saveState() needs a name to restore the dock
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for column, width in enumerate((50, 60, 60, 90)):
            self.tree.setColumnWidth(column, width)
        self.tree.setToolTip("Moved: distance between the row's two places, in units of map A's spread")
        self.tree.itemClicked.connect(self._chosen)
        self.tree.itemActivated.connect(self._chosen)
        self.heading = QLabel("Choose a row to see its neighbours before and after.")
        self.heading.setWordWrap(True)
        self.before_title, self.after_title = QLabel("Before (A)"), QLabel("After (B)")
        self.before, self.after = QListWidget(), QListWidget()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.tree)
        for title, chooser in ((self.before_title, self.before), (self.after_title, self.after)):
            title.setToolTip("● : not among the row's neighbours under the other side")
            chooser.itemClicked.connect(self._neighbour_chosen)
            side = QWidget()
            column_layout = QVBoxLayout(side)
            column_layout.setContentsMargins(0, 0, 0, 0)
            column_layout.addWidget(title)
            column_layout.addWidget(chooser)
            splitter.addWidget(side)
        splitter.setSizes([420, 330, 330])
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.heading)
        layout.addWidget(splitter, 1)
        self.setWidget(panel)

    def set_comparison(
        self,
        comparison: Comparison | None,
        texts: Sequence[str],
        labels: Sequence[str],
        titles: tuple[str, str],
    ) -> None:
        """List ``comparison``'s rows that moved most (None: empty the panel)."""
        self.tree.clear()
        self.before.clear()
        self.after.clear()
        self.heading.setText("Choose a row to see its neighbours before and after.")
        if comparison is None:
            return
        self.before_title.setText(f"Neighbours before ({titles[0]})")
        self.after_title.setText(f"Neighbours after ({titles[1]})")
        for row in moved_rows(comparison).tolist():
            start = texts[row][:4000]  # shortening a 1 MB text whole takes long
            item = QTreeWidgetItem(
                [
                    str(row),
                    f"{comparison.displacement[row]:.3f}",
                    f"{comparison.overlap[row]:.2f}",
                    labels[row],
                    textwrap.shorten(start, PREVIEW_CHARS) or start[:PREVIEW_CHARS],
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, row)
            item.setToolTip(4, textwrap.fill(textwrap.shorten(start, 600), 80))
            self.tree.addTopLevelItem(item)

    def rows(self) -> list[int]:
        """The rows listed, in order (the farthest first)."""
        return [int(item.data(0, Qt.ItemDataRole.UserRole)) for item in self._items()]

    def displacements(self) -> list[float]:
        """The displacements listed, as shown."""
        return [float(item.text(1)) for item in self._items()]

    def _items(self) -> list[QTreeWidgetItem]:
        found = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in found if item is not None]

    def set_neighbours(
        self,
        row: int,
        before: npt.NDArray[np.intp],
        after: npt.NDArray[np.intp],
        texts: Sequence[str],
        labels: Sequence[str],
    ) -> None:
        """``row``'s neighbours under each side; those under one side only are marked."""
        kept = len(set(before.tolist()) & set(after.tolist()))
        shown = textwrap.shorten(texts[row][:4000], 200)
        self.heading.setText(f"Row {row}: {kept} of {len(before)} neighbours kept (● lost or new). {shown}")
        for widget, rows, other in ((self.before, before, after), (self.after, after, before)):
            widget.clear()
            for index in rows.tolist():
                mark = "" if index in other else "● "  # not a neighbour under the other side
                label = f" · {labels[index]}" if labels[index] else ""
                item = QListWidgetItem(
                    f"{mark}row {index}{label}: {textwrap.shorten(texts[index][:4000], 110)}"
                )
                item.setData(Qt.ItemDataRole.UserRole, int(index))
                widget.addItem(item)

    def neighbour_rows(self) -> tuple[list[int], list[int]]:
        """The rows listed before and after."""
        return tuple(  # type: ignore[return-value]
            [int(widget.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(widget.count())]
            for widget in (self.before, self.after)
        )

    def _neighbour_chosen(self, item: QListWidgetItem) -> None:
        self.row_chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _chosen(self, item: QTreeWidgetItem) -> None:
        self.row_chosen.emit(int(item.data(0, Qt.ItemDataRole.UserRole)))
