"""Where the window's size, place and dock layout are kept between runs: Qt's own bytes, in a
small JSON file of the desktop's (``window-layout.json`` in the per-user config folder).

They are not settings: only Qt can read them, and the engine, which owns the settings, has no Qt.
Settings files of version 1 and 2 held them; the first time no layout file exists, what such a
file held is taken over (and written here), and the settings are never asked again.

Reading never raises (a missing or broken file is the default layout, logged); writing is atomic.
GUI thread (the window calls these when it opens and closes).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from pathlib import Path

from engine.runtime.atomic import write_text_atomic
from engine.runtime.paths import config_dir
from engine.user.settings import stored_window_layout

log = logging.getLogger(__name__)
VERSION = 1
Layout = tuple[bytes | None, bytes | None]  # (Qt's saveGeometry(), saveState()); None: the default


def layout_path() -> Path:
    return config_dir() / "window-layout.json"


def load_layout() -> Layout:
    """The saved geometry and state, or those a version 1 or 2 settings file held (taken over
    once), or ``(None, None)``."""
    path = layout_path()
    if not path.exists():
        return _take_over_from_settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("window layout %s is unreadable (%s); using the default layout", path, exc)
        return None, None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        log.warning("window layout %s is not one this Loupe wrote; using the default layout", path)
        return None, None
    return _decoded(data.get("geometry")), _decoded(data.get("state"))


def save_layout(geometry: bytes | None, state: bytes | None) -> Path:
    """Keep the window's geometry and state for the next run; returns the file written."""
    data = {"version": VERSION, "geometry": _encoded(geometry), "state": _encoded(state)}
    path = layout_path()
    write_text_atomic(path, json.dumps(data, indent=2) + "\n", mode=0o600)
    return path


def _take_over_from_settings() -> Layout:
    geometry, state = (_decoded(text) for text in stored_window_layout())
    if geometry is not None or state is not None:
        try:
            save_layout(geometry, state)
        except OSError as exc:  # a read-only config folder: the layout is used, kept next time
            log.warning("cannot keep the window layout (%s)", exc)
    return geometry, state


def _encoded(value: bytes | None) -> str | None:
    return None if not value else base64.b64encode(value).decode("ascii")


def _decoded(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        log.warning("the stored window layout is not base64; using the default")
        return None
