"""Start the desktop app: QApplication, the engine and its cache, the main window."""

from __future__ import annotations

import argparse
import signal
import sys

import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from desktop.bridge import EngineBridge
from desktop.main_window import MainWindow
from engine.cache.connect import open_cache
from engine.pipeline import Engine
from engine.projection import warm_up_in_background


def create_window(args: argparse.Namespace) -> MainWindow:
    """The window with a fresh engine, cache and bridge; the caller owns ``app.exec()``."""
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    cache = open_cache(args.redis, args.no_cache)
    engine = Engine(cache, model=args.model, device=args.device)
    return MainWindow(engine, EngineBridge())


def run_app(args: argparse.Namespace) -> int:
    """Run the desktop app until its window closes; stops the cache server it started."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Loupe")
    window = create_window(args)
    wake = _close_on_signals(app, window)
    # Compile (or load) UMAP's numba kernels while the model embeds, so the first map of the
    # session does not wait for them; a daemon thread, so quitting never waits for it.
    warm_up_in_background(rows=getattr(args, "rows", None) if args.command == "demo" else None)
    try:
        window.show()
        if args.command == "demo":
            window.start_demo(rows=args.rows)
        elif args.command == "open":
            window.open_path(args.path)
        return int(app.exec())
    finally:
        wake.stop()
        window.bridge.shutdown()
        window.engine.cache.close()


def _close_on_signals(app: QCoreApplication, window: MainWindow) -> QTimer:
    """Ctrl-C or SIGTERM (a logout, ``kill``) closes the window the normal way: jobs are
    cancelled, threads joined and the embedded server released, as with the close button.

    Python runs signal handlers only when it gets control, which Qt's event loop does not
    give it; the returned timer wakes the interpreter four times a second for that.
    """
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: window.close())
    wake = QTimer(app)
    wake.timeout.connect(lambda: None)
    wake.start(250)
    return wake
