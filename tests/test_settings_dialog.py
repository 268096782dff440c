"""The settings dialog: fill it, OK, the file has the values; bad values are refused in words;
apply_settings puts each change into effect or says when it will."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QLineEdit, QPushButton
from pytestqt.qtbot import QtBot

from desktop.map.controls import MapControls
from desktop.theme import apply_theme
from desktop.window.settings_dialog import DIALOG_FIELDS, RESTART, SettingsDialog, apply_settings
from engine.user.settings import Settings, load_settings, save_settings, settings_path


class FakeWindow:
    """What apply_settings calls back, recorded: a new engine, and the map controls' projection."""

    def __init__(self) -> None:
        self.map_controls = MapControls()
        self.engines: list[tuple[str, str, str | None, int, str]] = []

    def configure_engine(
        self, model: str, device: str, pooling: str | None, layer: int, precision: str
    ) -> None:
        self.engines.append((model, device, pooling, layer, precision))

    def apply(self, old: Settings, new: Settings) -> list[str]:
        return apply_settings(
            old, new, reconfigure=self.configure_engine, use_projection=self.map_controls.set_params
        )


def _dialog(qtbot: QtBot, settings: Settings | None = None) -> SettingsDialog:
    dialog = SettingsDialog(settings or Settings())
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _ok(dialog: SettingsDialog) -> QPushButton:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def _editor(dialog: SettingsDialog, name: str) -> QLineEdit:
    editor = dialog.findChild(QLineEdit, name)
    assert isinstance(editor, QLineEdit)
    return editor


def test_the_dialog_owns_only_real_settings() -> None:
    assert set(DIALOG_FIELDS) <= {spec.name for spec in fields(Settings)}


def test_filled_in_and_ok_saves_every_value(qtbot: QtBot, qapp: QApplication, tmp_path: Path) -> None:
    save_settings(Settings(recent_files=["/data/a.csv"], gelf_url="udp://logs.example.test:12201"))
    dialog = _dialog(qtbot, load_settings())
    dialog.model.setCurrentText(str(tmp_path))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.pooling.setCurrentIndex(dialog.pooling.findData("cls"))
    dialog.layer.setValue(3)
    dialog.remote.setChecked(True)
    dialog.redis_url.setText("rediss://loupe:hunter2@cache.example.test:6380/1")
    assert "password in this URL will not be saved" in dialog.error.text()
    dialog.method.setCurrentIndex(dialog.method.findData("tsne"))
    _editor(dialog, "perplexity").setText("12")
    dialog.seed.setValue(9)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.precision.setCurrentIndex(dialog.precision.findData("fp32"))
    assert _ok(dialog).isEnabled()
    _ok(dialog).click()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted

    window = FakeWindow()
    try:
        messages = window.apply(Settings(), dialog.result_settings())
    finally:
        apply_theme(qapp, "light")
    saved = json.loads(settings_path().read_text())
    assert saved["model"] == str(tmp_path) and saved["device"] == "cpu" and saved["precision"] == "fp32"
    assert (saved["pooling"], saved["layer"], saved["theme"]) == ("cls", 3, "dark")
    assert saved["redis_url"] == "rediss://loupe@cache.example.test:6380/1"
    assert "hunter2" not in settings_path().read_text()
    assert saved["projection_method"] == "tsne" and saved["projection_params"]["perplexity"] == 12.0
    assert saved["projection_seed"] == 9
    assert saved["recent_files"] == ["/data/a.csv"]  # kept, as is what the dialog does not edit
    assert saved["gelf_url"] == "udp://logs.example.test:12201" and "window_geometry" not in saved
    # Each change took effect, or says when it will.
    assert window.engines == [(str(tmp_path), "cpu", "cls", 3, "fp32")]
    shown = window.map_controls.params()
    assert (shown.method, shown.seed, shown.value("perplexity")) == ("tsne", 9, 12.0)
    assert RESTART in messages


def test_nothing_to_restart_or_rebuild_when_only_the_theme_changes(qtbot: QtBot, qapp: QApplication) -> None:
    window = FakeWindow()
    try:
        messages = window.apply(Settings(), Settings(theme="dark"))
    finally:
        apply_theme(qapp, "light")
    assert messages == [] and window.engines == []
    assert load_settings().theme == "dark"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "memory",
            "lots",
            "The memory limit must be a number with kb, mb or gb, such as 512mb or 2gb, not 'lots'.",
        ),
        ("memory", "0gb", "The memory limit must be a number"),
        ("url", "http://cache.example.test", "The Redis URL must start with redis://, rediss:// or unix://"),
        ("url", "redis://cache.example.test:port/0", "The Redis URL's host or port is malformed"),
        ("url", "redis:///0", "The Redis URL names no host"),
        ("url", "", "Give the Redis server's URL"),
        ("model", "/no/such/model/folder", "There is no model folder at /no/such/model/folder."),
        ("model", " ", "Choose a model"),
        ("n_neighbors", "1", "n_neighbors must be at least 2, not 1."),
        ("min_dist", "0.5x", "min_dist must be a number, not '0.5x'."),
    ],
)
def test_a_bad_value_is_shown_in_words_and_not_saved(
    qtbot: QtBot, field: str, value: str, message: str
) -> None:
    dialog = _dialog(qtbot)
    if field == "memory":
        dialog.memory.setText(value)
    elif field == "url":
        dialog.remote.setChecked(True)
        dialog.redis_url.setText(value)
    elif field == "model":
        dialog.model.setCurrentText(value)
    else:
        _editor(dialog, field).setText(value)
    assert message in dialog.error.text()
    assert "Traceback" not in dialog.error.text()
    assert not _ok(dialog).isEnabled()
    dialog.accept()  # even if OK were pressed somehow, the dialog stays open with nothing saved
    assert dialog.isVisible() and dialog.result_settings() == Settings()
    assert not settings_path().exists()


def test_browse_puts_the_chosen_folder_in_the_model_field(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path))
    dialog = _dialog(qtbot)
    dialog.browse.click()
    assert dialog.model.currentText() == str(tmp_path)
    assert _ok(dialog).isEnabled()


def test_cancel_keeps_the_settings(qtbot: QtBot) -> None:
    dialog = _dialog(qtbot, Settings(theme="light"))
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.reject()
    assert dialog.result_settings() == Settings(theme="light")
