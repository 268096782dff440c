"""User settings: a typed, versioned schema in one JSON file, read and written only here.

The file is ``settings.json`` in the per-user config directory. Every load migrates older
versions forward, ignores keys it does not know and replaces values of the wrong type with
defaults, so a hand-edited or old file never stops Loupe from starting.

Secrets are never stored: a Redis URL is saved without its password (give the password with
``LOUPE_REDIS_PASSWORD`` or the system keyring instead).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.paths import config_dir

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
RECENT_FILES = 8


@dataclass(frozen=True)
class Settings:
    """Everything Loupe remembers between runs (version 1)."""

    model: str = "minilm"
    device: str = "auto"
    redis_url: str = ""  # empty: the embedded server
    cache_maxmemory: str = "1gb"
    gelf_url: str = ""  # empty: no GELF sink (LOUPE_GELF_URL overrides)
    recent_files: list[str] = field(default_factory=list)  # newest first, at most RECENT_FILES
    window_geometry: str = ""  # Qt's saveGeometry(), base64; empty: the default size
    window_state: str = ""  # Qt's saveState() (docks, toolbars), base64

    def with_recent(self, path: str) -> Settings:
        """These settings with ``path`` first among the recent files."""
        recent = [path, *(p for p in self.recent_files if p != path)][:RECENT_FILES]
        return replace(self, recent_files=recent)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings() -> Settings:
    """The saved settings, or the defaults when there is no usable file."""
    path = settings_path()
    if not path.is_file():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("settings file %s is unreadable (%s); using defaults", path, exc)
        return Settings()
    if not isinstance(data, dict):
        return Settings()
    values = _migrate(data)
    defaults = Settings()
    known = {}
    for spec in fields(Settings):
        value = values.get(spec.name, getattr(defaults, spec.name))
        known[spec.name] = (
            value if isinstance(value, type(getattr(defaults, spec.name))) else getattr(defaults, spec.name)
        )
    return Settings(**known)


def save_settings(settings: Settings) -> Path:
    """Write the settings atomically (mode 0600), the Redis password removed from the URL."""
    data = {"version": SCHEMA_VERSION, **asdict(settings)}
    data["redis_url"] = without_password(settings.redis_url)
    path = settings_path()
    tmp = path.with_suffix(".tmp")
    with os.fdopen(
        os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8"
    ) as handle:
        json.dump(data, handle, indent=2)
    tmp.replace(path)
    return path


def without_password(url: str) -> str:
    """``url`` with any password removed (the user name is kept)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}@" if parts.username else ""
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{user}{host}").geturl()


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored dictionary of any known version up to :data:`SCHEMA_VERSION`."""
    version = data.get("version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        log.warning("settings version %r is newer than this Loupe knows; reading what it can", version)
    # Version 1 is the first; later versions add steps here, one per version.
    return data
