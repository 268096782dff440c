"""Start the desktop app: QApplication, the engine and its cache, the main window."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from typing import cast

import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from desktop.model.document import AppModel, EngineChoice
from desktop.operations.bridge import EngineBridge
from desktop.theme import apply_theme, follow_system
from desktop.window.main_window import MainWindow
from engine.core.service import EngineService
from engine.maps.projection import warm_up_in_background
from engine.model.models import Pooling
from engine.process.proxy import start_engine
from engine.user.settings import (
    configured_redis_url,
    default_projection,
    load_settings,
    open_configured_cache,
)


def create_window(
    args: argparse.Namespace, *, warm_up: bool = False, in_process: bool | None = None
) -> MainWindow:
    """The window with a fresh engine, cache and bridge; the caller owns ``app.exec()``.

    The engine runs in a child process (:mod:`engine.process.proxy`) so that nothing it does
    can hold up the GUI thread; ``LOUPE_ENGINE_IN_PROCESS=1`` keeps it in this process (for a
    debugger), as does ``in_process=True``. With ``warm_up`` the engine compiles UMAP's kernels
    while the first dataset embeds, so the first map does not wait for them.

    What the command line leaves out comes from the settings: the command line has already
    taken model, device and precision from them, and :func:`open_configured_cache` the Redis
    URL and the embedded server's memory limit; pooling (``--pooling``, absent = None), the
    layer and the default projection are taken here. The theme is applied before the window is
    built, so its plots are born in the right colours.
    """
    settings = load_settings()
    pg.setConfigOptions(antialias=True)
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, settings.theme)
    # Both are checked already: argparse's choices, and load_settings() against POOLINGS.
    pooling = cast(Pooling | None, getattr(args, "pooling", None) or settings.pooling or None)
    cache = open_configured_cache(args.redis, args.no_cache)
    rows = getattr(args, "rows", None) if getattr(args, "command", None) == "demo" else None
    if in_process is None:
        in_process = os.environ.get("LOUPE_ENGINE_IN_PROCESS") == "1"
    precision = getattr(args, "precision", None) or settings.precision
    engine = start_engine(
        cache,
        model=args.model,
        device=args.device,
        pooling=pooling,
        precision=precision,
        redis_url=args.redis,
        no_cache=args.no_cache,
        warm_up_rows=rows if warm_up else False,
        in_process=in_process,
    )
    if warm_up and isinstance(engine, EngineService):
        warm_up_in_background(rows=rows)
    model = AppModel(engine=EngineChoice(args.model, args.device, pooling, settings.layer, precision))
    model.set_params(default_projection(settings))
    cache_url = configured_redis_url(args.redis, args.no_cache)
    window = MainWindow(engine, EngineBridge(), model, cache_url=cache_url)
    window.map_controls.set_params(model.params)
    if isinstance(app, QApplication):
        apply_theme(app, settings.theme)  # again, now that the window's views can take set_dark
    return window


# How long a thread may hold the interpreter while another waits (see prepare_gui_process).
SWITCH_INTERVAL_S = 0.001


def prepare_gui_process() -> None:
    """Pay, before the window shows and any job runs, what would otherwise stall the GUI thread.

    - A module's first import holds the interpreter for its whole run: pyarrow.compute (54 ms;
      the table, filter and map colours use it when the first dataset lands) and matplotlib.path
      (100 ms; the first finished lasso) each showed up as a stall in the probe when they were
      first imported there, on the GUI thread, while jobs ran.
    - A full garbage collection walks every object the process holds and stops every thread
      while it does (39 ms at 200,000 rows in the probe). What exists now (modules, Qt
      wrappers) lives as long as the app, so it is collected once and then frozen: later full
      collections walk only what was made since.
    - A paint calls into Python (pyqtgraph's items) many times, and each call waits for the
      interpreter while a job's thread runs Python (writing 200,000 texts for the engine
      process): up to the switch interval, 5 ms by default, every time. 1 ms keeps that wait
      short; the heavy work runs in the engine process, so this process switches little.
    """
    import matplotlib.path  # noqa: F401
    import pyarrow.compute  # noqa: F401

    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def run_app(args: argparse.Namespace) -> int:
    """Run the desktop app until its window closes; stops the cache server it started."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Loupe")
    app.setDesktopFileName(
        "io.github.loupe_viz.Loupe"
    )  # Wayland's app_id: the menu entry's icon and name match the window
    window = create_window(args, warm_up=True)
    prepare_gui_process()
    follow_system(app, lambda: load_settings().theme)
    wake = _close_on_signals(app, window)
    try:
        window.show()
        if args.command == "demo":
            window.start_demo(rows=args.rows)
        elif args.command == "open":
            window.open_path(args.path, text_column=args.text_column, label_column=args.label_column)
        return int(app.exec())
    finally:
        wake.stop()
        window.bridge.shutdown()
        window.engine.close()
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
