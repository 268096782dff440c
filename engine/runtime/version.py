"""This Loupe's version, for ``loupe --version`` and for the cluster jobs that must match it."""

from __future__ import annotations

from pathlib import Path


def loupe_version() -> str:
    """This Loupe's version: from the source tree's pyproject.toml when the ``engine`` package
    runs from a checkout (an installed copy's metadata may be older than the tree), else from the
    installed distribution's metadata, else ``engine.__version__`` (a frozen build without either)."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            project = {}
        if project.get("name") == "loupe" and project.get("version"):
            return str(project["version"])
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loupe")
    except PackageNotFoundError:
        import engine

        return engine.__version__
