"""``loupe install-desktop``: put Loupe in the application menu (or take it out with ``--uninstall``).

Imports only the standard library until the command runs, so ``loupe --help`` stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.errors import LoupeError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "install-desktop",
        help="add Loupe to the application menu: a .desktop entry, icons, metainfo and MIME types",
    )
    command.add_argument(
        "--prefix",
        type=Path,
        default=Path("~/.local"),
        help="install under PREFIX/share (default: ~/.local, your own menu)",
    )
    command.add_argument("--uninstall", action="store_true", help="remove what install-desktop installed")


def install_desktop_command(args: argparse.Namespace) -> int:
    from engine.user.desktop_entry import install, uninstall

    prefix: Path = args.prefix
    try:
        if args.uninstall:
            result = uninstall(prefix)
            if result.files:
                print(f"Removed Loupe's menu entry, icons and metainfo ({len(result.files)} files).")
            else:
                print(f"Loupe's menu entry is not installed under {prefix.expanduser()}.")
            return 0
        result = install(prefix)
    except LoupeError as exc:
        print(f"loupe: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a prefix that cannot be written: what and where, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"loupe: cannot install the desktop files: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 2
    entry = result.files[0]
    print(f"Installed Loupe's menu entry {entry} ({len(result.files)} files), running {result.executable}.")
    share = entry.parents[1]
    if not _on_data_path(share):
        print(f"Note: {share} is not among XDG_DATA_HOME/XDG_DATA_DIRS, so menus will not look there.")
    return 0


def _on_data_path(share: Path) -> bool:
    """Whether menus look in ``share`` (the XDG base directories, with the spec's defaults)."""
    home = os.environ.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    dirs = (os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")
    known = {Path(folder).expanduser().absolute() for folder in [home, *dirs] if folder}
    return share.absolute() in known
