"""The bar above the map: method and parameters, layer slider, colouring, sweep, and scores.

The parameter form is built from :data:`engine.projection.PARAMETERS`, so a parameter added
to the engine appears here with its range and help text, and every value is checked by the
engine's own parser (one sentence on a bad value).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BadInputError
from engine.projection import METHODS, PARAMETERS, ParamSpec, ProjectionParams, Value

COLOURINGS = ("label", "cluster", "faithfulness")
_METHOD_NAMES = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}


class MapControls(QWidget):
    """Emits what the user asks for; the window does the work and reports back."""

    params_applied = Signal(object)  # ProjectionParams
    layer_changed = Signal(int)
    layers_requested = Signal()
    colouring_changed = Signal(str)
    sweep_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = QComboBox()
        for method in METHODS:
            self.method.addItem(_METHOD_NAMES.get(method, method), method)
        self.method.setCurrentIndex(list(METHODS).index("umap"))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(42)
        self.seed.setPrefix("seed ")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Compute the map with these settings (cached results come back at once)")
        self.sweep_button = QPushButton("Sweep…")
        self.sweep_button.setToolTip("A grid of small maps over two parameters, with their trustworthiness")
        self.colouring = QComboBox()
        for name in COLOURINGS:
            self.colouring.addItem(f"colour: {name}", name)
        self.layers_button = QPushButton("Layers…")
        self.layers_button.setToolTip("Map every layer, aligned, to see the representation evolve")
        self.layer = QSlider(Qt.Orientation.Horizontal)
        self.layer.setEnabled(False)
        self.layer.setMinimumWidth(120)
        self.layer_label = QLabel("")
        self.score = QLabel("")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020")
        self._form = QHBoxLayout()
        self._editors: dict[str, QWidget] = {}

        top = QHBoxLayout()
        top.addWidget(self.method)
        top.addLayout(self._form)
        top.addWidget(self.seed)
        top.addWidget(self.apply_button)
        top.addWidget(self.sweep_button)
        top.addStretch(1)
        top.addWidget(self.colouring)
        bottom = QHBoxLayout()
        bottom.addWidget(self.layers_button)
        bottom.addWidget(self.layer, 1)
        bottom.addWidget(self.layer_label)
        bottom.addWidget(self.score)
        bottom.addWidget(self.error, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(top)
        layout.addLayout(bottom)

        self.method.currentIndexChanged.connect(self._rebuild_form)
        self.apply_button.clicked.connect(self.apply)
        self.sweep_button.clicked.connect(self.sweep_requested)
        self.layers_button.clicked.connect(self.layers_requested)
        self.layer.valueChanged.connect(self._on_layer)
        self.colouring.currentIndexChanged.connect(
            lambda _: self.colouring_changed.emit(str(self.colouring.currentData()))
        )
        self._rebuild_form()

    # -- reading and writing the form ----------------------------------------------------

    def params(self) -> ProjectionParams:
        """The parameters in the form; raises :class:`BadInputError` with one sentence."""
        options = {name: _read(editor) for name, editor in self._editors.items()}
        return ProjectionParams.from_options(str(self.method.currentData()), options, seed=self.seed.value())

    def set_params(self, params: ProjectionParams) -> None:
        """Show ``params`` in the form (after a sweep cell or a session was chosen)."""
        self.method.setCurrentIndex(list(METHODS).index(params.method))
        self.seed.setValue(params.seed)
        for name, value in params.settings().items():
            _write(self._editors[name], value)

    def apply(self) -> None:
        try:
            params = self.params()
        except BadInputError as exc:
            self.error.setText(str(exc))
            return
        self.error.setText("")
        self.params_applied.emit(params)

    def set_layer_count(self, layers: int) -> None:
        """Enable the slider over hidden states 0..layers, on the last one."""
        self.layer.blockSignals(True)
        self.layer.setRange(0, layers)
        self.layer.setValue(layers)
        self.layer.blockSignals(False)
        self.layer.setEnabled(True)
        self.layer_label.setText(f"layer {layers}")

    def set_columns(self, columns: list[str]) -> None:
        """Offer the dataset's own columns as colourings too (after the built-in ones)."""
        current = self.colouring.currentData()
        self.colouring.blockSignals(True)
        while self.colouring.count() > len(COLOURINGS):
            self.colouring.removeItem(self.colouring.count() - 1)
        for column in columns:
            self.colouring.addItem(f"colour: column {column}", f"column:{column}")
        index = self.colouring.findData(current)
        self.colouring.setCurrentIndex(index if index >= 0 else 0)
        self.colouring.blockSignals(False)

    def set_score(self, text: str) -> None:
        self.score.setText(text)

    def _on_layer(self, value: int) -> None:
        self.layer_label.setText(f"layer {value}")
        self.layer_changed.emit(value)

    def _rebuild_form(self) -> None:
        while self._form.count():
            item = self._form.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._editors = {}
        for name, spec in PARAMETERS[self.method.currentData()].items():
            editor = _editor(name, spec)
            editor.setToolTip(f"{name}: {spec.help}")
            self._form.addWidget(editor)
            self._editors[name] = editor


def _editor(name: str, spec: ParamSpec) -> QWidget:
    """A widget for one parameter, labelled with its name, holding its default."""
    editor: QWidget
    if spec.kind == "choice":
        combo = QComboBox()
        combo.addItems(list(spec.choices))
        editor = combo
    elif spec.kind == "bool":
        editor = QCheckBox(name)
    elif spec.kind == "int":
        box = QSpinBox()
        box.setRange(int(spec.minimum or 0), int(spec.maximum or 10**6))
        box.setPrefix(f"{name} ")
        editor = box
    elif spec.words:  # a number or a word such as "auto": free text, parsed by the engine
        line = QLineEdit()
        line.setPlaceholderText(name)
        line.setMaximumWidth(140)
        editor = line
    else:
        spin = QDoubleSpinBox()
        spin.setDecimals(3)
        spin.setSingleStep(0.05)
        spin.setRange(float(spec.minimum or 0.0), float(spec.maximum or 1e6))
        spin.setPrefix(f"{name} ")
        editor = spin
    editor.setObjectName(name)
    editor.setProperty("default", spec.default)
    _write(editor, spec.default)
    return editor


def _read(editor: QWidget) -> Value:
    if isinstance(editor, QComboBox):
        return editor.currentText()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QSpinBox | QDoubleSpinBox):
        return editor.value()
    assert isinstance(editor, QLineEdit)
    text = editor.text().strip()
    return text if text else str(editor.property("default"))


def _write(editor: QWidget, value: object) -> None:
    if isinstance(editor, QComboBox):
        editor.setCurrentText(str(value))
    elif isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QSpinBox):
        editor.setValue(int(value))  # type: ignore[call-overload]
    elif isinstance(editor, QDoubleSpinBox):
        editor.setValue(float(value))  # type: ignore[arg-type]
    elif isinstance(editor, QLineEdit):
        editor.setText(str(value))
