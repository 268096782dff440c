"""The ``loupe`` console entry point: headless commands run without ever importing Qt."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.cli import main as cli


def _open_gui(args: argparse.Namespace) -> int:
    from desktop.app import run_app

    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, open_gui=_open_gui)


if __name__ == "__main__":
    sys.exit(main())
