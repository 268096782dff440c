"""The sweep dialog: choose two parameters and their values, then pick a map from the grid.

Each cell is a small map labelled with its parameters and trustworthiness; the most
trustworthy cell is outlined. Clicking a cell emits :attr:`SweepDialog.cell_chosen` and the
window makes it the main map. The grid is computed by the window as a job (every cell goes
through the cached projection), so the dialog never blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.maps.palette import label_colors
from engine.maps.projection import PARAMETERS, ProjectionParams
from engine.maps.sweep import SweepCell, SweepResult

# Values a first sweep tries, for the parameters people sweep most.
_SUGGESTED = {
    "n_neighbors": "5, 15, 50",
    "min_dist": "0.0, 0.1, 0.5",
    "spread": "0.5, 1.0, 2.0",
    "perplexity": "5, 30, 50",
    "early_exaggeration": "4, 12, 24",
}


class SweepDialog(QDialog):
    """Axis form plus result grid. ``run_requested`` carries ((name, values), (name, values))."""

    run_requested = Signal(object, object)
    cell_chosen = Signal(object)  # SweepCell

    def __init__(self, base: ProjectionParams, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Parameter sweep")
        self.resize(900, 760)
        self.base = base
        numeric = [name for name, spec in PARAMETERS[base.method].items() if spec.kind in ("int", "float")]
        self.x_name, self.x_values = QComboBox(), QLineEdit()
        self.y_name, self.y_values = QComboBox(), QLineEdit()
        for combo, values, start in ((self.x_name, self.x_values, 0), (self.y_name, self.y_values, 1)):
            combo.addItems(numeric)
            combo.setCurrentIndex(min(start, len(numeric) - 1))
            combo.currentTextChanged.connect(lambda name, box=values: box.setText(_SUGGESTED.get(name, "")))
            values.setText(_SUGGESTED.get(combo.currentText(), ""))
        self.run_button = QPushButton("Run sweep")
        self.run_button.clicked.connect(self._run)
        self.message = QLabel("Each cell is one map; the outlined one is the most trustworthy.")
        self.grid = QGridLayout()
        self.cells: list[tuple[pg.PlotWidget, SweepCell]] = []

        form = QHBoxLayout()
        for widget in (QLabel("x:"), self.x_name, self.x_values, QLabel("y:"), self.y_name, self.y_values):
            form.addWidget(widget)
        form.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addLayout(self.grid, 1)
        if len(numeric) < 2:
            self.run_button.setEnabled(False)
            self.message.setText(f"{base.method.upper()} has fewer than two numeric parameters to sweep.")

    def axes(self) -> tuple[tuple[str, list[str]], tuple[str, list[str]]]:
        """The two axes as typed: values stay strings; the engine parses and checks them."""

        def values(box: QLineEdit) -> list[str]:
            return [part.strip() for part in box.text().split(",") if part.strip()]

        x_axis = (self.x_name.currentText(), values(self.x_values))
        return x_axis, (self.y_name.currentText(), values(self.y_values))

    def _run(self) -> None:
        axis_x, axis_y = self.axes()
        self.message.setText("Computing the grid…")
        self.run_requested.emit(axis_x, axis_y)

    def show_error(self, message: str) -> None:
        self.message.setText(message)

    def show_result(self, result: SweepResult, labels: Sequence[str]) -> None:
        """Draw every cell; the best is outlined."""
        for plot, _ in self.cells:
            self.grid.removeWidget(plot)
            plot.deleteLater()
        self.cells = []
        best = result.best()
        colours = label_colors(list(labels))
        brushes = [pg.mkBrush(colours[label]) for label in labels]
        for j, row in enumerate(result.cells):
            for i, cell in enumerate(row):
                plot = pg.PlotWidget()
                plot.hideAxis("left")
                plot.hideAxis("bottom")
                plot.setMenuEnabled(False)
                plot.setMouseEnabled(x=False, y=False)
                plot.setTitle(
                    f"{result.x_name}={cell.x} · {result.y_name}={cell.y}<br>"
                    f"trustworthiness {cell.trustworthiness:.3f}",
                    size="8pt",
                )
                x, y = cell.coords[:, 0], cell.coords[:, 1]
                plot.addItem(pg.ScatterPlotItem(x=x, y=y, size=3, pen=None, brush=brushes))
                if cell is best:
                    plot.setStyleSheet("border: 3px solid #d00;")
                plot.scene().sigMouseClicked.connect(lambda _event, chosen=cell: self.choose(chosen))
                self.grid.addWidget(plot, j, i)
                self.cells.append((plot, cell))
        scores = np.array([cell.trustworthiness for _, cell in self.cells])
        self.message.setText(
            f"{len(self.cells)} maps, trustworthiness {scores.min():.3f} to {scores.max():.3f} "
            f"(on {result.trust_rows} rows). Click a map to make it the main map."
        )

    def choose(self, cell: SweepCell) -> None:
        self.cell_chosen.emit(cell)
