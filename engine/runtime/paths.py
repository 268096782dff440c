"""Per-user directories (platformdirs, so ``XDG_CACHE_HOME`` and friends are honoured).

``LOUPE_HOME`` moves everything under one folder, which is how tests get a fresh, private
cache and log directory.
"""

from __future__ import annotations

import os
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
