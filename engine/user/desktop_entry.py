"""Loupe in the application menu: install (and remove) its .desktop entry, icons, AppStream
metainfo and MIME types under a prefix such as ``~/.local``, for a pip or pipx install and for
the one-folder bundle.

The files come from ``resources/``: beside the source checkout, inside the bundle, or under
``<data>/share/loupe/resources`` where pip put a wheel's data files. Only the .desktop entry is
changed on the way: its ``Exec`` and ``TryExec`` name the absolute path of the executable that
runs Loupe here, since a pipx or bundle install is rarely on the menu's ``PATH``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BadInputError, LoupeError
from engine.runtime.atomic import write_bytes_atomic, write_text_atomic
from engine.runtime.paths import resource_folders

log = logging.getLogger(__name__)

APP_ID = "io.github.loupe_viz.Loupe"
ICON_SIZES = (48, 128, 256)
DEFAULT_PREFIX = Path("~/.local")
# Characters the Desktop Entry spec reserves in Exec: an argument holding one must be quoted.
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
# Cache refreshers are optional: a desktop without them rescans on its own, later.
_REFRESH_TIMEOUT_S = 30


@dataclass(frozen=True)
class Placement:
    """One installed file: where it comes from in ``resources/`` and where it goes under the prefix."""

    source: str  # relative to the resources folder
    target: str  # relative to the prefix


def placements() -> tuple[Placement, ...]:
    """Every file ``install`` writes, in the XDG layout (the .desktop entry first)."""
    icons = "share/icons/hicolor"
    return (
        Placement(f"{APP_ID}.desktop", f"share/applications/{APP_ID}.desktop"),
        Placement(f"{APP_ID}.metainfo.xml", f"share/metainfo/{APP_ID}.metainfo.xml"),
        Placement(f"{APP_ID}.mime.xml", f"share/mime/packages/{APP_ID}.xml"),
        Placement("icons/loupe.svg", f"{icons}/scalable/apps/{APP_ID}.svg"),
        *(
            Placement(
                f"icons/hicolor/{size}x{size}/apps/{APP_ID}.png", f"{icons}/{size}x{size}/apps/{APP_ID}.png"
            )
            for size in ICON_SIZES
        ),
    )


def resources_folder() -> Path:
    """The folder holding Loupe's desktop files, wherever this copy of Loupe was installed from."""
    for folder in resource_folders():
        if (folder / f"{APP_ID}.desktop").is_file():
            return folder
    raise LoupeError(
        "Loupe's desktop files (resources/) are missing from this installation; reinstall Loupe."
    )


def loupe_executable() -> Path:
    """The absolute path of the program that runs Loupe: the bundle's own executable when frozen,
    else the ``loupe`` script beside this Python (a venv's or pipx's ``bin``), else on ``PATH``."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).absolute()
    # Not resolved: a venv's python is a link to the system's, and its scripts sit beside the link.
    beside = shutil.which("loupe", path=str(Path(sys.executable).parent))
    found = beside or shutil.which("loupe")
    if found is None:
        raise LoupeError("No `loupe` program was found beside this Python or on PATH; reinstall Loupe.")
    return Path(found).absolute()


def quote_exec_argument(argument: str) -> str:
    """``argument`` as the Desktop Entry spec wants it in ``Exec``, written as a key-file string.

    Quoted with double quotes when it holds a reserved character (a space, say), with ``"``,
    `````, ``$`` and ``\\`` escaped inside; ``%`` doubled (field codes); then every backslash
    doubled once more, because ``Exec`` is itself a string value with its own escapes.
    """
    if "\n" in argument or "\r" in argument:
        raise BadInputError("A path with a line break cannot be written into a .desktop entry.")
    quoted = argument
    if not argument or set(argument) & _EXEC_RESERVED:
        escaped = "".join("\\" + char if char in '"`$\\' else char for char in argument)
        quoted = f'"{escaped}"'
    return quoted.replace("%", "%%").replace("\\", "\\\\")


def render_desktop_entry(template: str, executable: Path) -> str:
    """The shipped entry with ``Exec`` and ``TryExec`` pointing at ``executable``."""
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec=loupe"):  # "Exec=loupe open %f": keep the arguments
            line = "Exec=" + quote_exec_argument(str(executable)) + line[len("Exec=loupe") :]
        elif line.startswith("TryExec="):  # a plain string: only the key file's escape applies
            line = "TryExec=" + str(executable).replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class InstallResult:
    files: tuple[Path, ...]
    executable: Path | None  # None for an uninstall


def install(prefix: Path, executable: Path | None = None) -> InstallResult:
    """Write Loupe's desktop files under ``prefix`` (each atomically) and refresh the menu's caches."""
    prefix = _absolute_prefix(prefix)
    executable = executable or loupe_executable()
    resources = resources_folder()
    written = []
    for placement in placements():
        source, target = resources / placement.source, prefix / placement.target
        target.parent.mkdir(parents=True, exist_ok=True)
        if placement.source.endswith(".desktop"):
            template = source.read_text(encoding="utf-8")
            write_text_atomic(target, render_desktop_entry(template, executable), mode=0o644)
        else:
            write_bytes_atomic(target, source.read_bytes(), mode=0o644)
        written.append(target)
    refresh_caches(prefix)
    return InstallResult(tuple(written), executable)


def uninstall(prefix: Path) -> InstallResult:
    """Remove what :func:`install` wrote under ``prefix``, then the folders and caches it left
    behind for Loupe alone (a prefix that held nothing else is left as it was found)."""
    prefix = _absolute_prefix(prefix)
    removed = []
    for placement in placements():
        target = prefix / placement.target
        if target.is_file() or target.is_symlink():
            target.unlink()
            removed.append(target)
    if removed:
        refresh_caches(prefix)
        _prune_caches_without_sources(prefix)
        for target in removed:
            _remove_empty_parents(target.parent, stop=prefix)
    return InstallResult(tuple(removed), None)


def _absolute_prefix(prefix: Path) -> Path:
    prefix = prefix.expanduser()
    if prefix.exists() and not prefix.is_dir():
        raise BadInputError(f"The prefix {prefix} is a file, not a folder.")
    return prefix.absolute()


def refresh_caches(prefix: Path) -> None:
    """Run the freedesktop cache tools that are installed; a missing or failing one is only logged."""
    share = prefix / "share"
    refreshers: tuple[tuple[str, tuple[str, ...], Path], ...] = (
        ("update-desktop-database", ("-q",), share / "applications"),
        ("gtk-update-icon-cache", ("-f", "-t", "-q"), share / "icons" / "hicolor"),
        ("update-mime-database", (), share / "mime"),
    )
    for tool, options, folder in refreshers:
        program = shutil.which(tool)
        if program is None or not folder.is_dir():
            log.debug("not refreshing %s: %s", folder, "no folder" if program else f"no {tool}")
            continue
        try:
            subprocess.run(
                [program, *options, str(folder)], check=True, capture_output=True, timeout=_REFRESH_TIMEOUT_S
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("%s failed on %s: %s", tool, folder, exc)


def _prune_caches_without_sources(prefix: Path) -> None:
    """Remove the caches the tools made in a folder that no longer holds any of their sources:
    they only described Loupe's files. Left alone wherever anything else is installed."""
    share = prefix / "share"
    applications = share / "applications"
    if applications.is_dir() and not any(applications.glob("*.desktop")):
        (applications / "mimeinfo.cache").unlink(missing_ok=True)
    hicolor = share / "icons" / "hicolor"
    if hicolor.is_dir() and not any(p.is_file() and p.name != "icon-theme.cache" for p in hicolor.rglob("*")):
        (hicolor / "icon-theme.cache").unlink(missing_ok=True)
        _remove_empty_folders(hicolor)
    mime = share / "mime"
    packages = mime / "packages"
    if mime.is_dir() and not (packages.is_dir() and any(packages.iterdir())):
        # Everything in a MIME folder but packages/ is generated from packages/, which is empty.
        shutil.rmtree(mime)


def _remove_empty_folders(root: Path) -> None:
    for folder in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone with its caches): stop climbing
            if folder.exists():
                return
        folder = folder.parent
