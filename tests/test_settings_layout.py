"""The window's geometry and dock layout: Qt's bytes in the desktop's own file, not in the
settings (version 3); a version 1 or 2 settings file's layout is taken over once."""

from __future__ import annotations

import base64
import json
import stat

from desktop.window.layout_store import layout_path, load_layout, save_layout
from engine.user.settings import Settings, load_settings, save_settings, settings_path

GEOMETRY = b"\x01\xd9\xd0\xcb\x00\x03\x00\x00geometry"
STATE = b"\x00\x00\x00\xffstate"


def _version_2_file(**extra: object) -> None:
    data = {
        "version": 2,
        "model": "/models/mine",
        "recent_files": ["/data/a.csv"],
        "window_geometry": base64.b64encode(GEOMETRY).decode(),
        "window_state": base64.b64encode(STATE).decode(),
        **extra,
    }
    settings_path().write_text(json.dumps(data), encoding="utf-8")


def test_no_layout_anywhere_is_the_default() -> None:
    assert load_layout() == (None, None)
    assert not layout_path().exists()  # nothing taken over, nothing written


def test_the_layout_round_trips_in_its_own_private_file() -> None:
    path = save_layout(GEOMETRY, STATE)
    assert load_layout() == (GEOMETRY, STATE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not settings_path().exists()  # the settings are not touched
    save_layout(GEOMETRY, None)
    assert load_layout() == (GEOMETRY, None)


def test_a_version_2_settings_files_layout_is_taken_over_once() -> None:
    _version_2_file()
    assert load_layout() == (GEOMETRY, STATE)
    assert layout_path().exists()
    # The settings load without the window's fields and save as version 3, keeping the rest.
    loaded = load_settings()
    assert loaded == Settings(model="/models/mine", recent_files=["/data/a.csv"])
    save_settings(loaded)
    saved = json.loads(settings_path().read_text(encoding="utf-8"))
    assert saved["version"] == 3 and "window_geometry" not in saved
    assert load_layout() == (GEOMETRY, STATE)  # from the layout file now
    # Once taken over, the settings file is never asked again: a newer layout wins over it.
    _version_2_file()
    save_layout(b"newer", None)
    assert load_layout() == (b"newer", None)


def test_a_version_1_settings_files_layout_is_taken_over_too() -> None:
    data = {"version": 1, "window_geometry": base64.b64encode(GEOMETRY).decode(), "window_state": ""}
    settings_path().write_text(json.dumps(data), encoding="utf-8")
    assert load_layout() == (GEOMETRY, None)


def test_a_broken_layout_file_or_value_is_the_default_layout() -> None:
    layout_path().write_text("{not json", encoding="utf-8")
    assert load_layout() == (None, None)
    layout_path().write_text(json.dumps({"version": 1, "geometry": "not base64!", "state": 3}))
    assert load_layout() == (None, None)
    layout_path().write_text(json.dumps({"version": 99, "geometry": "AAA="}))
    assert load_layout() == (None, None)
    _version_2_file(window_geometry=["odd"], window_state="%%%")
    layout_path().unlink()
    assert load_layout() == (None, None)  # nothing usable to take over
