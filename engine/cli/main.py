"""``loupe``'s command line (DESIGN.md §5): headless commands, and the door to the desktop.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr, no traceback),
1 an unexpected failure (traceback in the log), 130 interrupted. Progress goes to stderr,
data to files. The desktop is started through ``open_gui``, injected by
``desktop.launcher`` so that this module never imports Qt.

The commands live beside this module: :mod:`engine.cli.parser` (the arguments),
:mod:`engine.cli.maps` (``project``, ``export``), :mod:`engine.cli.compare` (``compare``),
:mod:`engine.cli.commands` (``embed``, ``attention``, ``cache``, ``logs``), :mod:`engine.cli.demo`,
:mod:`engine.cli.self_test` (``self-test``) and :mod:`engine.cli.progress`.
They are imported when a command runs, so ``loupe --help`` loads no numpy, torch or Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from engine.cli.parser import build_parser
from engine.errors import LoupeError

GuiOpener = Callable[[argparse.Namespace], int]

__all__ = ["GuiOpener", "build_parser", "has_display", "main"]


def main(argv: Sequence[str] | None = None, open_gui: GuiOpener | None = None) -> int:
    """Run a command; ``open_gui`` starts the desktop (None when Qt is not wanted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from engine.logs.records import setup_logging
    from engine.user.settings import load_settings

    gelf_url = os.environ.get("LOUPE_GELF_URL") or load_settings().gelf_url or None
    try:
        logging_setup = setup_logging(verbose=getattr(args, "verbose", False), gelf_url=gelf_url)
    except LoupeError as exc:  # a bad LOUPE_GELF_URL
        print(f"loupe: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, open_gui)
    finally:
        logging_setup.close()


def _dispatch(args: argparse.Namespace, open_gui: GuiOpener | None) -> int:
    if args.command == "logs":
        from engine.cli.commands import logs_command

        return logs_command(args)
    if args.command == "install-desktop":  # no model, device or cache options
        from engine.cli.install_desktop import install_desktop_command

        return install_desktop_command(args)
    _fill_defaults(args)
    try:
        if args.command == "cluster":  # no engine, model or cache of its own: the cluster's
            from engine.cli.cluster import cluster_command

            return cluster_command(args)
        if args.command == "self-test":  # inside the try: Ctrl-C is "interrupted", not a traceback
            from engine.cli.self_test import self_test_command

            return self_test_command()
        if args.command in (None, "open") or (args.command == "demo" and not args.no_gui):
            if open_gui is not None and has_display():
                return open_gui(args)
            if args.command != "demo":
                raise LoupeError("No display found: the desktop app needs one (try `loupe demo --no-gui`).")
            print(f"No display found; running the demo headless into {args.out}/.", file=sys.stderr)
        return _run_headless(args)
    except LoupeError as exc:
        print(f"loupe: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be written, a full disk: what and where, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"loupe: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("loupe: interrupted", file=sys.stderr)
        return 130


def _fill_defaults(args: argparse.Namespace) -> None:
    """Give bare ``loupe`` the common options, and take model and device from the settings."""
    for name, value in (
        ("model", None),
        ("device", None),
        ("precision", None),
        ("redis", None),
        ("no_cache", False),
        ("quiet", False),
    ):
        if not hasattr(args, name):
            setattr(args, name, value)
    if args.model is None or args.device is None or args.precision is None:
        from engine.user.settings import load_settings

        settings = load_settings()
        args.model = args.model or settings.model
        args.device = args.device or settings.device
        args.precision = args.precision or settings.precision


def has_display() -> bool:
    """True where a window can be shown (always off Linux; on Linux, X11/Wayland or a Qt platform)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _run_headless(args: argparse.Namespace) -> int:
    """Open the cache, make the in-process engine service and run ``args.command`` on it, with
    progress on stderr. The service loads the model only when a command needs it."""
    from engine.cli.commands import attention_command, cache_command, embed_command
    from engine.cli.compare import compare_command
    from engine.cli.demo import demo_command
    from engine.cli.maps import export_command, project_command
    from engine.cli.progress import stderr_progress
    from engine.core.service import EngineService
    from engine.runtime.jobs import ProgressMeter
    from engine.user.settings import open_configured_cache

    commands = {
        "demo": demo_command,
        "embed": embed_command,
        "project": project_command,
        "export": export_command,
        "compare": compare_command,
        "attention": attention_command,
        "cache": cache_command,
    }
    cache = open_configured_cache(args.redis, args.no_cache)
    if not args.quiet and args.command != "cache":
        print(f"loupe: cache: {cache.description}", file=sys.stderr)
    service = EngineService(
        cache,
        model=args.model,
        device=args.device,
        allow_download=getattr(args, "allow_download", False),
        trust_remote_code=getattr(args, "trust_remote_code", False),
        precision=args.precision,
        # compare's --pooling is its first side's alone (a Side of its own): the engine keeps the
        # model's pooling, so a second side that names no pooling gets what its model says.
        pooling=None if args.command == "compare" else getattr(args, "pooling", None),
    )
    report = ProgressMeter(stderr_progress(args.quiet))
    try:
        return commands[args.command](service, args, report)
    finally:
        service.close()
        cache.close()


if __name__ == "__main__":
    sys.exit(main())
