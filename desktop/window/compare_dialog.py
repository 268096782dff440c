"""Map ▸ Compare with…: the other side of a comparison (a model folder or a hub id, its layer,
its pooling, and k for the neighbour overlap).

It opens on the model the window shows, at layer 1, so "how did this layer change" is one
click. The first side is what the window shows now (its model, layer, pooling and map
parameters). Window-modal and opened, never exec'd: jobs keep reporting while it is open.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop.model.comparison import CompareChoice
from desktop.window.settings_dialog import POOLING_NAMES
from engine.user.settings import POOLINGS


class CompareDialog(QDialog):
    """Asks for the other side; :meth:`choice` once accepted."""

    def __init__(self, current_model: str, base: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare with…")
        self.model = QLineEdit(current_model)
        self.model.setToolTip("A model folder, or a hub id already in the local Hugging Face cache")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(browse)
        self.layer = QSpinBox()
        self.layer.setRange(-1, 256)
        self.layer.setValue(1)
        self.layer.setSpecialValueText("last")  # -1
        self.pooling = QComboBox()
        for name in POOLINGS:
            self.pooling.addItem(POOLING_NAMES.get(name, name), name)
        self.k = QSpinBox()
        self.k.setRange(1, 200)
        self.k.setValue(10)
        self.k.setToolTip("Neighbours per row whose overlap is measured")
        form = QFormLayout(self)
        form.addRow(QLabel(f"A (shown now): {base}"))
        form.addRow("B: model", model_row)
        form.addRow("Layer", self.layer)
        form.addRow("Pooling", self.pooling)
        form.addRow("Neighbours (k)", self.k)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Compare")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def choice(self) -> CompareChoice:
        model = self.model.text().strip()
        pooling = str(self.pooling.currentData() or "")
        return CompareChoice(model or None, self.layer.value(), pooling or None, self.k.value())

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "A model folder", self.model.text())
        if chosen:
            self.model.setText(chosen)
