"""Screenshots of the real window while a large dataset's progressive map is on show: the
spread sample's map, then with more rows placed, then the real map that replaced it.

The window is the one ``loupe demo``/``loupe open`` run (:func:`desktop.app.create_window`,
its engine in a child process, UMAP warmed up at start when it is the method). Rows must be embedded for a
progressive map (a dataset that brings its own vectors gets none), so the rows are texts the
model embeds: by default the demo's real, labelled rows (every documented name of this Python's
standard library, 3,926 here, coloured by category) with ``LOUPE_PROGRESSIVE_ABOVE_ROWS``
lowered below them; with ``--data`` a dataset file at the threshold given (default: Loupe's).
The threshold is set before the engine process starts, which inherits it. Cached embeddings
are placed too fast to catch, so ``LOUPE_HOME`` is a fresh folder unless given.

Run under an X server, for example Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tests/bench/progressive_screenshot.py DIR
    ... tests/bench/progressive_screenshot.py DIR --data rows.csv [--above 20000]

It writes ``DIR/1-sample.png`` (the sample's map, nothing placed yet), ``DIR/2-placing.png``
(the first step at or past half the rows placed) and ``DIR/3-final.png`` (the real map, its
clusters named), each the window as :meth:`QWidget.grab` renders it, Jobs panel open, and a
line per shot with the map's title, the status bar, the rows shown and the points drawn. Exits
1 if a shot is missing or its plot has no points drawn.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# The grab waits for the event loop's next turn after a step: the status bar hears of the step
# after the map, and a later step must not have replaced it yet (grab() renders synchronously).
SETTLE_MS = 0


@dataclass(frozen=True)
class Shot:
    """One saved screenshot and what the window said when it was taken."""

    path: Path
    title: str
    status: str
    shown: int  # rows the map may draw (on a progressive map, those placed)
    drawn: int  # points in the plot's items as grabbed
    rows: int
    seconds: float  # since the dataset was opened


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder the screenshots go to")
    parser.add_argument("--rows", type=int, default=4000, help="the demo's rows (at most 3,926 here)")
    parser.add_argument("--data", type=Path, help="open this dataset file instead of the demo")
    parser.add_argument("--above", type=int, help="progressive above this many rows (default: see above)")
    parser.add_argument("--method", default="umap", choices=["umap", "tsne", "pca"])
    parser.add_argument("--home", type=Path, help="LOUPE_HOME (default: a fresh folder)")
    parser.add_argument("--size", default="1500x900", help="the window's width x height")
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    parser.add_argument("--timeout", type=float, default=900)
    options = parser.parse_args()

    from engine.core.progressive import ABOVE_ROWS_VARIABLE

    above = options.above if options.above is not None else (None if options.data else options.rows // 4)
    if above is not None:
        os.environ[ABOVE_ROWS_VARIABLE] = str(above)
    home = options.home or Path(tempfile.mkdtemp(prefix="loupe-progressive-"))
    os.environ["LOUPE_HOME"] = str(home)
    options.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from desktop.app import create_window, prepare_gui_process
    from desktop.theme import apply_theme
    from engine.api.types import ProgressiveMap
    from engine.maps.projection import ProjectionParams

    args = argparse.Namespace(
        command="demo", model="minilm", device="cpu", redis=None, no_cache=False, rows=options.rows
    )
    # As the app does, UMAP's kernels compile while the first rows embed; not for another method
    # (the test's PCA), where they would only take the CPU from the embedding.
    window = create_window(args, warm_up=options.method == "umap")
    prepare_gui_process()
    apply_theme(app, options.theme)  # type: ignore[arg-type]
    width, height = (int(side) for side in options.size.split("x"))
    window.resize(width, height)
    window.show()
    window.jobs_view.show()
    window.model.set_params(ProjectionParams(method=options.method))

    shots: list[Shot] = []
    started = time.monotonic()  # set again when the dataset is opened
    wanted = {"1-sample", "2-placing"}

    def grab(name: str) -> None:
        path = options.out / f"{name}.png"
        # The map draws its points a turn or two after a step (MapView.draw_pending): a grab at
        # once showed the sample's title over an empty plot.
        window.map_view.draw_pending()
        window.grab().save(str(path))
        view = window.map_view
        drawn = sum(len(item.data) for item in view._items)  # as tests/test_map_view.py counts them
        status = window.status.label.text()
        shown, seconds = len(view.visible_rows), time.monotonic() - started
        shots.append(Shot(path, window.presenter.title, status, shown, drawn, window.model.rows, seconds))

    def later(name: str) -> Callable[[], None]:
        return lambda: grab(name)

    def on_progressive(progressive: ProgressiveMap | None) -> None:
        if progressive is None or progressive.run is not None:
            return
        name = "1-sample" if "1-sample" in wanted else "2-placing"
        if name == "2-placing" and progressive.placed * 2 < progressive.total:
            return
        if name in wanted:
            wanted.discard(name)
            QTimer.singleShot(SETTLE_MS, later(name))

    window.model.progressive_changed.connect(on_progressive)
    started = time.monotonic()
    if options.data is not None:
        window.open_path(options.data)
    else:
        window.start_demo(rows=options.rows)

    def final() -> bool:
        shown = window.model.shown
        real = shown is not None and not shown.preview and shown.map.params.method == options.method
        return real and window.model.scores is not None and not window.bridge.running

    deadline = time.monotonic() + options.timeout
    while not final() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    if final():
        window.map_controls.colouring.setCurrentIndex(window.map_controls.colouring.findData("cluster"))
        settle = time.monotonic() + 1.0  # let the last paints land
        while time.monotonic() < settle:
            app.processEvents()
            time.sleep(0.02)
        grab("3-final")
    print(f"LOUPE_HOME {home}; {ABOVE_ROWS_VARIABLE}={os.environ.get(ABOVE_ROWS_VARIABLE, 'unset')}")
    print(f"{time.monotonic() - started:.1f} s from opening to the last shot")
    for shot in shots:
        size = shot.path.stat().st_size // 1024
        counts = f"{shot.shown:,} of {shot.rows:,} rows shown, {shot.drawn:,} points drawn"
        print(f"{shot.path.name} ({size} KiB) at {shot.seconds:.1f} s: {counts}")
        print(f"  title:  {shot.title}\n  status: {shot.status}")
    window.close()
    window.bridge.shutdown()
    window.engine.close()
    window.engine.cache.close()
    names = {shot.path.stem for shot in shots}
    missing = sorted({"1-sample", "2-placing", "3-final"} - names)
    if missing or any(shot.drawn == 0 for shot in shots):
        print(f"FAILED: missing {missing}" if missing else "FAILED: a shot shows no points")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
