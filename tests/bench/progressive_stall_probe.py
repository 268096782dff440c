"""Does the GUI thread stall while a large dataset's progressive map comes in? The real window.

The window (its engine in the child process, as the app runs it) opens ``--rows`` real texts
(first paragraphs of docstrings, :mod:`tests.bench.scale_texts`) in a CSV, above the progressive
threshold, with PCA as the asked-for map (so the time is the embedding's, not UMAP's compiling).
The 5 ms timer probe of :mod:`tests.bench.gui_stall_probe` runs on the GUI thread the whole
time; every gap between two ticks is time the event loop could not react. The gaps are split by
phase: before the sample's map, while rows are placed (a progressive map on show), and after the
real map replaced it. Each progressive step hands the window every row's coordinates.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/progressive_stall_probe.py --rows 50000
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LOUPE_HOME", tempfile.mkdtemp(prefix="lb", dir="/tmp"))

from PySide6.QtWidgets import QApplication

from desktop.app import create_window, prepare_gui_process
from engine.api.types import ProgressiveMap
from engine.core.progressive import progressive_above_rows
from engine.maps.projection import ProjectionParams
from tests.bench.gui_stall_probe import BUDGET_MS, Probe, shown, wait_until
from tests.bench.scale_texts import gather_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--where", type=float, help="print all stacks on each stall over this many ms")
    options = parser.parse_args()
    texts = gather_texts(options.rows)
    path = Path(tempfile.mkdtemp(dir="/tmp")) / "docstrings.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)
    print(f"{len(texts):,} rows, progressive above {progressive_above_rows():,}")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    args = argparse.Namespace(
        command="demo", model="minilm", device="cpu", redis=None, no_cache=True, rows=300
    )
    window = create_window(args)
    prepare_gui_process()
    window.show()
    # The demo the window opens is superseded by the file (the newest map wins), as a user's would be.

    steps: list[tuple[float, int, int]] = []  # seconds since opening, rows placed, rows drawn
    phase = ["before the sample's map"]
    started = time.perf_counter()

    def on_progressive(progressive: ProgressiveMap | None) -> None:
        if progressive is not None:
            phase[0] = "while rows are placed"
            steps.append(
                (time.perf_counter() - started, progressive.placed, len(window.map_view.visible_rows))
            )
        elif phase[0] == "while rows are placed":
            phase[0] = "after the real map"

    window.model.progressive_changed.connect(on_progressive)
    probe = Probe(window, options.where)
    window.model.set_params(ProjectionParams(method="pca"))
    labelled: list[tuple[float, str]] = []
    last = len(probe.gaps)

    def done() -> bool:
        nonlocal last
        for ms, _status, _busy in probe.gaps[last:]:
            labelled.append((ms, phase[0]))
        last = len(probe.gaps)
        return shown(window) == "pca" and window.model.rows == len(texts) and not window.bridge.running

    window.open_path(path)
    wait_until(app, done, 7200)
    total_s = time.perf_counter() - started
    probe.stop()
    print(f"to the real map: {total_s:.1f} s; progressive steps: {len(steps)}")
    for seconds, placed, drawn in steps:
        print(f"  {seconds:7.1f} s  {placed:>7,} rows placed, {drawn:>7,} drawn")
    for name in ("before the sample's map", "while rows are placed", "after the real map"):
        gaps = sorted(ms for ms, where in labelled if where == name)
        if not gaps:
            continue
        over = [ms for ms in gaps if ms > BUDGET_MS]
        print(
            f"{name}: {len(gaps):,} ticks, median {statistics.median(gaps):.1f} ms, "
            f"p99 {gaps[int(len(gaps) * 0.99)]:.1f} ms, worst {gaps[-1]:.1f} ms, "
            f"{len(over)} over {BUDGET_MS} ms {[round(ms) for ms in over[-8:]]}"
        )
    window.close()


if __name__ == "__main__":
    main()
