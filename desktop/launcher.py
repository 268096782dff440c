"""The ``loupe`` console entry point: headless commands run without ever importing Qt.

In a frozen build (the PyInstaller bundle in ``packaging/``) the same executable is also the
engine's child processes: ``loupe --engine-child MODULE ARGS...`` runs MODULE as ``python -m``
would (see :func:`engine.runtime.channel.python_command`), because the bundle has no Python.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engine.cli import main as cli
from engine.runtime import channel


def _open_gui(args: argparse.Namespace) -> int:
    from desktop.app import run_app

    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if channel.is_frozen():
        # This executable answers --engine-child, so the engine and its one-shot tasks run in
        # child processes (the window's GUI thread never waits on them); children inherit it.
        os.environ["LOUPE_FROZEN_CHILDREN"] = "1"
        if args[:1] == [channel.ENGINE_CHILD_FLAG]:
            return channel.run_engine_child(args[1:])
    return cli.main(args, open_gui=_open_gui)


if __name__ == "__main__":
    sys.exit(main())
