"""The ``loupe`` console entry point: headless commands run without ever importing Qt.

:func:`run` is the entry point (``loupe``, ``python -m desktop.launcher``, the bundle): a
headless command that finishes ends the process without Python's module teardown (see
engine.runtime.quick_exit: 0.6-0.9 s saved on every command that loaded the model). The desktop
window and the engine's child processes end the ordinary way. :func:`main` returns the exit
code, for callers inside a Python process (tests).

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
from engine.runtime.quick_exit import exit_without_teardown


def _open_gui(args: argparse.Namespace) -> int:
    from desktop.app import run_app

    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    return _main(list(sys.argv[1:] if argv is None else argv))[0]


def run() -> None:
    """The console entry point: run the command, then end the process (see the module's docstring)."""
    code, headless = _main(sys.argv[1:])
    if not headless:
        sys.exit(code)  # Qt and the engine's child processes clean up at the ordinary teardown
    exit_without_teardown(code)


def _main(args: list[str]) -> tuple[int, bool]:
    """The exit code, and whether a headless command ran (not the window, not an engine child)."""
    window_opened = False

    def open_gui(parsed: argparse.Namespace) -> int:
        nonlocal window_opened
        window_opened = True
        return _open_gui(parsed)

    if channel.is_frozen():
        # This executable answers --engine-child, so the engine and its one-shot tasks run in
        # child processes (the window's GUI thread never waits on them); children inherit it.
        os.environ["LOUPE_FROZEN_CHILDREN"] = "1"
        if args[:1] == [channel.ENGINE_CHILD_FLAG]:
            return channel.run_engine_child(args[1:]), False
    code = cli.main(args, open_gui=open_gui)
    return code, not window_opened


if __name__ == "__main__":
    run()
