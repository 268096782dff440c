"""The bar above the map: method and parameters, layer slider, colouring, size, density,
the mouse tool (pan, box, lasso), sweep, and scores.

The parameter form is built from :data:`engine.maps.projection.PARAMETERS`, so a parameter added
to the engine appears here with its range and help text, and every value is checked by the
engine's own parser (one sentence on a bad value).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BadInputError
from engine.maps.projection import METHODS, PARAMETERS, ParamSpec, ProjectionParams, Value

COLOURINGS = ("label", "cluster", "faithfulness")
# Offered in place of "label" when the rows have none: one colour, no legend (a "label" colouring
# would be one meaningless colour with a legend entry for labels nobody wrote).
NO_COLOURING = "none"
# The mouse tools of the map: their names, buttons and one-key shortcuts (while the map has focus).
TOOLS = {"pan": ("Pan", "P"), "box": ("Box", "B"), "lasso": ("Lasso", "L")}
_METHOD_NAMES = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}


class MapControls(QWidget):
    """Emits what the user asks for; the window does the work and reports back."""

    params_applied = Signal(object)  # ProjectionParams
    layer_changed = Signal(int)
    layers_requested = Signal()
    colouring_changed = Signal(str)
    sweep_requested = Signal()
    size_changed = Signal(str)  # a numeric column, or "" for one size
    density_toggled = Signal(bool)
    tool_changed = Signal(str)  # one of TOOLS

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
        self.size_by = QComboBox()
        self.size_by.addItem("size: same", "")
        self.size_by.setToolTip("Size the points by a numeric column")
        self.density = QCheckBox("density")
        self.density.setToolTip("Draw how many points fall in each pixel instead of the points (D)")
        self.tools = QButtonGroup(self)
        self.tool_buttons: dict[str, QToolButton] = {}
        for name, (label, key) in TOOLS.items():
            button = QToolButton()
            button.setText(label)
            button.setCheckable(True)
            button.setToolTip(f"{label} ({key}){'' if name == 'pan' else '; Shift adds to the selection'}")
            button.setChecked(name == "pan")
            self.tools.addButton(button)
            self.tool_buttons[name] = button
        self.layers_button = QPushButton("Layers…")
        self.layers_button.setToolTip("Map every layer, aligned, to see the representation evolve")
        self.layer = QSlider(Qt.Orientation.Horizontal)
        self.layer.setEnabled(False)
        self.layer.setMinimumWidth(80)
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
        # What the points look like (colour, size, density) shares the second row with the tools,
        # and the score and error lines may be cut short (their tooltip has all): one row of
        # everything made the window wider than a 1366-pixel laptop screen.
        for shortened in (self.score, self.error):
            shortened.setMinimumWidth(1)  # whole when there is room, cut short when there is not
        bottom = QHBoxLayout()
        for button in self.tool_buttons.values():
            bottom.addWidget(button)
        bottom.addWidget(self.colouring)
        bottom.addWidget(self.size_by)
        bottom.addWidget(self.density)
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
        self.size_by.currentIndexChanged.connect(
            lambda _: self.size_changed.emit(str(self.size_by.currentData()))
        )
        self.density.toggled.connect(self.density_toggled)
        for name, button in self.tool_buttons.items():
            button.toggled.connect(lambda on, name=name: self._on_tool(name, on))
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
            self.error.setToolTip(str(exc))
            return
        self.error.setText("")
        self.error.setToolTip("")
        self.params_applied.emit(params)

    def set_layer_count(self, layers: int) -> None:
        """Enable the slider over hidden states 0..layers, on the last one."""
        self.layer.blockSignals(True)
        self.layer.setRange(0, layers)
        self.layer.setValue(layers)
        self.layer.blockSignals(False)
        self.layer.setEnabled(True)
        self.layer_label.setText(f"layer {layers}")

    def set_tool(self, name: str) -> None:
        """Choose the map's mouse tool (a keyboard shortcut, a session)."""
        self.tool_buttons[name].setChecked(True)

    @property
    def tool(self) -> str:
        return next(name for name, button in self.tool_buttons.items() if button.isChecked())

    def set_columns(
        self, columns: list[str], numeric: list[str] | None = None, *, labels: bool = True
    ) -> None:
        """Offer the dataset's own columns as colourings too (after the built-in ones), and its
        ``numeric`` columns as sizes. Without ``labels`` (the rows have none) "label" is not
        offered: "none" takes its place, and is chosen if "label" was."""
        current = self.colouring.currentData()
        self.colouring.blockSignals(True)
        self.colouring.clear()
        for name in (NO_COLOURING, *COLOURINGS[1:]) if not labels else COLOURINGS:
            self.colouring.addItem(f"colour: {name}", name)
        for column in columns:
            self.colouring.addItem(f"colour: column {column}", f"column:{column}")
        index = self.colouring.findData(current)
        self.colouring.setCurrentIndex(index if index >= 0 else 0)
        self.colouring.blockSignals(False)
        self.size_by.blockSignals(True)
        while self.size_by.count() > 1:
            self.size_by.removeItem(1)
        for column in numeric or []:
            self.size_by.addItem(f"size: {column}", column)
        self.size_by.setCurrentIndex(0)
        self.size_by.blockSignals(False)

    def set_extra_colourings(self, extra: dict[str, str]) -> None:
        """Offer ``extra`` colourings (data -> name: a comparison's overlap and displacement)
        after the built-in ones, in place of those offered before; when the chosen colouring is
        taken away, the first one is chosen (and announced)."""
        builtin = {*COLOURINGS, NO_COLOURING}
        current = self.colouring.currentData()
        self.colouring.blockSignals(True)
        for index in reversed(range(self.colouring.count())):
            data = str(self.colouring.itemData(index))
            if data not in builtin and not data.startswith("column:"):
                self.colouring.removeItem(index)
        at = sum(1 for i in range(self.colouring.count()) if self.colouring.itemData(i) in builtin)
        for offset, (data, name) in enumerate(extra.items()):
            self.colouring.insertItem(at + offset, f"colour: {name}", data)
        index = self.colouring.findData(current)
        self.colouring.setCurrentIndex(index if index >= 0 else 0)
        self.colouring.blockSignals(False)
        if index < 0:
            self.colouring_changed.emit(str(self.colouring.currentData()))

    def set_score(self, text: str) -> None:
        self.score.setText(text)
        self.score.setToolTip(text)

    def _on_tool(self, name: str, on: bool) -> None:
        if on:
            self.tool_changed.emit(name)

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
