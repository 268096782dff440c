"""Take a real screenshot of Loupe's window: the demo mapped, clusters named, a row clicked
(or, with ``--group``, a cluster selected and its attention statistics shown).

Run under an X server, for example Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tests/screenshot.py shot.png [--rows N]
    ... tests/screenshot.py shot.png --data my.csv [--click ROW]    (a dataset file, not the demo)
    ... tests/screenshot.py shot.png --compare    (Map ▸ Compare with… layer 1: two maps, linked)
    ... tests/screenshot.py shot.png --data my.csv --redis URL --cluster-dialog
                                                  (File ▸ Send to cluster… over the mapped dataset)

It grabs the whole screen (window decorations and all) with the xcb platform, not the
offscreen one, so what it saves is what a user would see. Exits 1 if the map never appears.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--timeout", type=float, default=400)
    parser.add_argument("--group", action="store_true", help="select a cluster: its attention statistics")
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    parser.add_argument("--data", type=Path, help="open this dataset file instead of the demo")
    parser.add_argument("--click", type=int, default=3, help="the row to click")
    parser.add_argument("--compare", action="store_true", help="compare with layer 1: a second map")
    parser.add_argument("--redis", help="a shared cache's URL (the window's cache; default embedded)")
    parser.add_argument("--cluster-dialog", action="store_true", help="open File ▸ Send to cluster…")
    options = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from desktop.app import create_window

    args = argparse.Namespace(
        command="demo", model="minilm", device="cpu", redis=options.redis, no_cache=False, rows=options.rows
    )
    from desktop.theme import apply_theme

    window = create_window(args)
    apply_theme(app, options.theme)  # type: ignore[arg-type]
    window.resize(1500, 900)
    window.show()
    if options.data is not None:
        window.open_path(options.data)
    else:
        window.start_demo(rows=options.rows)

    def wait(condition: object, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.05)
        return bool(condition())  # type: ignore[operator]

    def mapped() -> bool:
        shown = window.model.shown
        real = shown is not None and not shown.preview and shown.map.params.method == "umap"
        return real and window.model.scores is not None

    ready = wait(mapped, options.timeout)
    if ready:
        window.map_controls.colouring.setCurrentIndex(window.map_controls.colouring.findData("cluster"))
        window.map_view.click_row(options.click)
        wait(lambda: window.neighbours_view.list.count() > 0, 60)
        scores = window.model.scores
        if options.group and scores is not None:
            import numpy as np

            group = np.flatnonzero(scores.labels == scores.labels[options.click])
            window.map_view.set_selection(group)
            window.map_view.rows_selected.emit(group)
            wait(lambda: window.group_view.stats is not None, 120)
        if options.compare:
            from desktop.model.comparison import CompareChoice

            window.comparison.start(CompareChoice(layer=1))
            ready = wait(lambda: window.model.comparison is not None, options.timeout)
            window.map_view.click_row(options.click)
            wait(lambda: window.comparison.last_pair is not None, 120)
            wait(lambda: bool(window.comparison.moved_view.neighbour_rows()[0]), 60)
        if options.cluster_dialog:
            window.send_to_cluster()
            ready = wait(lambda: window.cluster.dialog is not None and window.cluster.dialog.isVisible(), 30)
        wait(lambda: False, 1.0)  # let the last paints land
    app.primaryScreen().grabWindow(0).save(str(options.out))
    # The points must be where the plot looks: once the preview's range was put back on the
    # UMAP map by the colouring change, and the screenshot showed an empty plot.
    on_screen = _share_in_view(window) if ready else 0.0
    window.close()
    state = "NO MAP" if not ready else f"map shown, {on_screen:.0%} of its points in view"
    print(f"screenshot: {options.out} ({state})")
    return 0 if ready and on_screen >= 0.9 else 1


def _share_in_view(window: object) -> float:
    """The share of the shown map's points inside the plot's visible range."""
    import numpy as np

    coords = window.model.shown.coords  # type: ignore[attr-defined]
    (x0, x1), (y0, y1) = window.map_view.plot.getViewBox().viewRange()  # type: ignore[attr-defined]
    inside = (coords[:, 0] >= x0) & (coords[:, 0] <= x1) & (coords[:, 1] >= y0) & (coords[:, 1] <= y1)
    return float(np.mean(inside))


if __name__ == "__main__":
    sys.exit(main())
