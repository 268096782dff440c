"""Per-user directories (platformdirs, so ``XDG_CACHE_HOME`` and friends are honoured).

``LOUPE_HOME`` moves everything under one folder, which is how tests get a fresh, private
cache and log directory.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
from pathlib import Path


def _base(kind: str) -> Path:
    home = os.environ.get("LOUPE_HOME")
    if home:
        return Path(home) / kind
    import platformdirs

    if kind == "cache":
        return Path(platformdirs.user_cache_dir("loupe", appauthor=False))
    if kind == "log":
        return Path(platformdirs.user_log_dir("loupe", appauthor=False))
    return Path(platformdirs.user_config_dir("loupe", appauthor=False))


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def cache_dir() -> Path:
    """Where the embedded server's data, the numba cache and model digests live (mode 0700)."""
    return _private_dir(_base("cache"))


def log_dir() -> Path:
    """Where Loupe's logs and the embedded server's own log go (mode 0700)."""
    return _private_dir(_base("log"))


def config_dir() -> Path:
    """Where settings live (mode 0700)."""
    return _private_dir(_base("config"))


def resource_folders() -> list[Path]:
    """Where this copy of Loupe may keep its ``resources/`` folder, most specific first: the
    frozen bundle's data, the source tree above this ``engine`` package, and ``share/loupe``
    where pip puts a wheel's data files (pyproject's data-files) for a venv or pipx, or --user."""
    folders = []
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller's folder of bundled data
    if bundle:
        folders.append(Path(bundle) / "resources")
    folders.append(Path(__file__).resolve().parents[2] / "resources")  # engine/runtime/ -> the tree
    for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user"):
        with contextlib.suppress(KeyError):
            folders.append(Path(sysconfig.get_path("data", scheme)) / "share" / "loupe" / "resources")
    return folders
