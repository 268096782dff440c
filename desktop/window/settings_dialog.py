"""Preferences: model, device, precision, pooling, layer, cache, default projection and theme.

:class:`SettingsDialog` edits a copy of the settings and refuses to close with OK while
anything is invalid (the reason in one sentence under the form); :func:`apply_settings`
saves the result and puts into effect at once what can be: a new engine for a new model,
device, precision, pooling or layer, the theme, the default projection. Cache changes need a restart
and say so. GUI thread only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.theme import apply_theme
from engine.cache.connect import SCHEMES
from engine.errors import BadInputError
from engine.maps.projection import METHODS, PARAMETERS, ProjectionParams, Value
from engine.model.models import PRECISIONS
from engine.user.settings import (
    DEVICES,
    POOLINGS,
    Settings,
    default_projection,
    load_settings,
    save_settings,
    without_password,
)

MEMORY = re.compile(r"([1-9]\d*)\s*(kb|mb|gb)", re.IGNORECASE)
THEME_NAMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
POOLING_NAMES = {"": "Model default", "mean": "Mean", "cls": "CLS token", "last": "Last token", "max": "Max"}
PRECISION_NAMES = {
    "auto": "Automatic (bf16/fp16 where the hardware has it and the model agrees)",
    "fp32": "fp32 (equal to sentence-transformers)",
    "bf16": "bf16",
    "fp16": "fp16 (GPU only)",
}
assert set(PRECISION_NAMES) == set(PRECISIONS)
_METHOD_NAMES = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
# The fields this dialog owns; everything else (recent files) is kept as saved.
DIALOG_FIELDS = (
    "model", "device", "precision", "pooling", "layer", "redis_url", "cache_maxmemory",
    "projection_method", "projection_params", "projection_seed", "theme",
)  # fmt: skip
RESTART = "The cache settings take effect the next time Loupe starts."


class SettingsDialog(QDialog):
    """Edit ``settings``; after OK, :meth:`result_settings` holds the checked values."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Loupe settings")
        self._base = settings
        self._result = settings

        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItem("minilm")
        self.model.setCurrentText(settings.model)
        self.model.setToolTip("minilm (the built-in all-MiniLM-L6-v2), a local model folder, or a hub id")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._choose_model_folder)
        self.device = _combo({name: name for name in DEVICES}, settings.device)
        self.precision = _combo(PRECISION_NAMES, settings.precision)
        self.precision.setToolTip(
            "What embeddings are computed in. Automatic uses the CPU's bf16 units or the GPU's"
            " fp16 only where the model agrees with fp32 to 0.9999 cosine (checked once per machine)."
        )
        self.pooling = _combo({name: POOLING_NAMES[name] for name in POOLINGS}, settings.pooling)
        self.layer = QSpinBox()
        self.layer.setRange(-1, 256)
        self.layer.setSpecialValueText("last layer")  # shown for -1
        self.layer.setValue(settings.layer)
        self.layer.setToolTip("The hidden state the map is made of: 0 = the embeddings, -1 = the last layer")

        self.embedded = QRadioButton("Embedded server (private to this computer)")
        self.remote = QRadioButton("Redis server:")
        self._cache_choice = QButtonGroup(self)
        self._cache_choice.addButton(self.embedded)
        self._cache_choice.addButton(self.remote)
        self.redis_url = QLineEdit(settings.redis_url)
        self.redis_url.setPlaceholderText("redis://user@host:6379/0 or rediss://…")
        (self.remote if settings.redis_url else self.embedded).setChecked(True)
        self.password_note = QLabel(
            "The password is never saved: give it in LOUPE_REDIS_PASSWORD or the system keyring."
        )
        self.password_note.setWordWrap(True)
        self.memory = QLineEdit(settings.cache_maxmemory)
        self.memory.setToolTip("The embedded server's memory limit, e.g. 512mb or 2gb")

        self.method = _combo({m: _METHOD_NAMES.get(m, m) for m in METHODS}, settings.projection_method)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(settings.projection_seed)
        self._params_form = QFormLayout()
        self._editors: dict[str, QWidget] = {}
        self.theme = _combo(THEME_NAMES, settings.theme)

        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d03040")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._build_layout()
        self._rebuild_params(default_projection(settings))

        self.method.currentIndexChanged.connect(lambda _: self._rebuild_params(None))
        for signal in (
            self.model.currentTextChanged, self.redis_url.textChanged, self.memory.textChanged,
            self.embedded.toggled, self.seed.valueChanged,
        ):  # fmt: skip
            signal.connect(self._validate)
        self._validate()

    def _build_layout(self) -> None:
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.browse)
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("Model", model_row)
        model_form.addRow("Device", self.device)
        model_form.addRow("Precision", self.precision)
        model_form.addRow("Pooling", self.pooling)
        model_form.addRow("Layer", self.layer)
        cache_box = QGroupBox("Cache")
        cache_form = QFormLayout(cache_box)
        cache_form.addRow(self.embedded)
        cache_form.addRow("Memory limit", self.memory)
        url_row = QHBoxLayout()
        url_row.addWidget(self.remote)
        url_row.addWidget(self.redis_url, 1)
        cache_form.addRow(url_row)
        cache_form.addRow(self.password_note)
        map_box = QGroupBox("New maps")
        map_form = QFormLayout(map_box)
        map_form.addRow("Method", self.method)
        map_form.addRow(self._params_form)
        map_form.addRow("Seed", self.seed)
        look = QFormLayout()
        look.addRow("Theme", self.theme)
        layout = QVBoxLayout(self)
        for box in (model_box, cache_box, map_box):
            layout.addWidget(box)
        layout.addLayout(look)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    # -- the projection's parameters ------------------------------------------------------

    def _rebuild_params(self, params: ProjectionParams | None) -> None:
        """A field per parameter of the chosen method, filled from ``params`` or the defaults."""
        while self._params_form.rowCount():
            self._params_form.removeRow(0)
        method = str(self.method.currentData())
        values = params.settings() if params is not None and params.method == method else {}
        self._editors = {}
        for name, spec in PARAMETERS[method].items():  # type: ignore[index]
            value = values.get(name, spec.default)
            editor: QWidget
            if spec.kind == "choice":
                editor = _combo({c: c for c in spec.choices}, str(value))
                editor.currentIndexChanged.connect(self._validate)
            elif spec.kind == "bool":
                editor = QCheckBox()
                editor.setChecked(bool(value))
            else:
                editor = QLineEdit(str(value))
                editor.textChanged.connect(self._validate)
            editor.setToolTip(spec.help)
            editor.setObjectName(name)
            self._params_form.addRow(name, editor)
            self._editors[name] = editor
        self._validate()

    def _projection(self) -> ProjectionParams:
        options: dict[str, Value] = {}
        for name, editor in self._editors.items():
            if isinstance(editor, QComboBox):
                options[name] = str(editor.currentData())
            elif isinstance(editor, QCheckBox):
                options[name] = editor.isChecked()
            elif isinstance(editor, QLineEdit):
                options[name] = editor.text()
        return ProjectionParams.from_options(str(self.method.currentData()), options, seed=self.seed.value())

    # -- checking and the result ----------------------------------------------------------

    def _read(self) -> Settings:
        """The settings in the form; :class:`BadInputError` with one sentence for the first bad value."""
        model = self.model.currentText().strip()
        if not model:
            raise BadInputError("Choose a model: minilm or a model folder.")
        if _looks_like_path(model):
            if not Path(model).expanduser().is_dir():
                raise BadInputError(f"There is no model folder at {model}.")
            model = str(Path(model).expanduser().resolve())  # the model loader takes no "~" or ".."
        memory = self.memory.text().strip().lower().replace(" ", "")
        if not MEMORY.fullmatch(memory):
            raise BadInputError(
                f"The memory limit must be a number with kb, mb or gb, such as 512mb or 2gb, not {memory!r}."
            )
        url = self.redis_url.text().strip() if self.remote.isChecked() else ""
        if self.remote.isChecked():
            _check_url(url)
        params = self._projection()
        return self._base.with_changes(
            model=model,
            device=str(self.device.currentData()),
            precision=str(self.precision.currentData()),
            pooling=str(self.pooling.currentData()),
            layer=self.layer.value(),
            redis_url=without_password(url),
            cache_maxmemory=memory,
            projection_method=params.method,
            projection_params=dict(params.settings()),
            projection_seed=params.seed,
            theme=str(self.theme.currentData()),
        )

    def _validate(self) -> bool:
        self.redis_url.setEnabled(self.remote.isChecked())
        ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            self._read()
        except BadInputError as exc:
            self.error.setText(str(exc))
            ok_button.setEnabled(False)
            return False
        url = self.redis_url.text().strip()
        has_password = self.remote.isChecked() and without_password(url) != url
        self.error.setText("The password in this URL will not be saved." if has_password else "")
        ok_button.setEnabled(True)
        return True

    def accept(self) -> None:
        """OK: close only with valid settings (the button is disabled otherwise; this is the guard)."""
        if not self._validate():
            return
        self._result = self._read()
        super().accept()

    def result_settings(self) -> Settings:
        """The settings as accepted (the ones given, if the dialog was cancelled)."""
        return self._result

    def _choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", str(Path.home()))
        if folder:
            self.model.setCurrentText(folder)


def _combo(items: dict[str, str], current: str) -> QComboBox:
    """A combo box of ``{data: shown text}`` with ``current`` chosen (the first if it is not there)."""
    combo = QComboBox()
    for data, text in items.items():
        combo.addItem(text, data)
    combo.setCurrentIndex(max(combo.findData(current), 0))
    return combo


def _looks_like_path(model: str) -> bool:
    # A hub id ("org/name") also has a slash; a folder is written from the root, home or here.
    return model.startswith(("/", "~", ".", "\\")) or Path(model).is_absolute()


def _check_url(url: str) -> None:
    """Raise :class:`BadInputError` (one sentence, never quoting a password) unless ``url`` is usable."""
    form = "such as redis://user@host:6379/0, rediss://… or unix:///path/to/socket"
    if not url:
        raise BadInputError(f"Give the Redis server's URL, {form}.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadInputError(f"The Redis URL's host or port is malformed; use one {form}.") from None
    if parts.scheme not in SCHEMES:
        raise BadInputError(f"The Redis URL must start with redis://, rediss:// or unix://, {form}.")
    if parts.scheme == "unix" and not parts.path:
        raise BadInputError("A unix:// Redis URL must name the socket, such as unix:///run/redis.sock.")
    if parts.scheme != "unix" and not parts.hostname:
        raise BadInputError(f"The Redis URL names no host; use one {form}.")
    if port == 0:
        raise BadInputError("The Redis URL's port must be from 1 to 65535.")


# -- putting new settings into effect ------------------------------------------------------


# model, device, pooling (None: the model's own), layer, precision
Reconfigure = Callable[[str, str, str | None, int, str], object]
UseProjection = Callable[[ProjectionParams], object]  # the projection new maps get


def apply_settings(
    old: Settings, new: Settings, *, reconfigure: Reconfigure, use_projection: UseProjection
) -> list[str]:
    """Save ``new`` (only the fields this dialog edits, over what is saved now) and put it into
    effect: ``reconfigure`` for another model, device, precision, pooling or layer, ``use_projection`` for
    another default projection; returns the messages for the status bar."""
    current = load_settings()
    save_settings(current.with_changes(**{name: getattr(new, name) for name in DIALOG_FIELDS}))
    messages: list[str] = []
    recipe = ("model", "device", "precision", "pooling", "layer")
    if any(getattr(old, name) != getattr(new, name) for name in recipe):
        reconfigure(new.model, new.device, new.pooling or None, new.layer, new.precision)
        messages.append(f"Now using {new.model} on {new.device}; the open data is embedded again.")
    if new.theme != old.theme:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, new.theme)
    if default_projection(new) != default_projection(old):
        use_projection(default_projection(new))
        messages.append("New maps use the new projection settings (Apply to remake this one).")
    if (new.redis_url, new.cache_maxmemory) != (old.redis_url, old.cache_maxmemory):
        messages.append(RESTART)
    return messages
