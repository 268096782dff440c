"""Time from starting Loupe's demo to the final (UMAP) map on screen: first run vs second run.

Each run is a fresh process with the desktop window (offscreen unless DISPLAY is set), sharing
one fresh LOUPE_HOME, so the first run starts from an empty cache and the second finds what
the first stored. Prints both times, their ratio and whether the second run loaded the model.

    .venv/bin/python tests/bench/demo_time_to_map.py [--rows 4000]

Timings on a shared machine are noisy; compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child(rows: int, started: float) -> None:
    from PySide6.QtWidgets import QApplication

    from desktop.app import create_window

    app = QApplication([])
    args = argparse.Namespace(
        command="demo", model="minilm", device="auto", redis=None, no_cache=False, rows=rows
    )
    window = create_window(args)
    result: dict[str, object] = {}

    def on_map(method: str) -> None:
        if method == "umap":
            app.processEvents()  # let the repaint happen before the clock stops
            result["seconds_to_map"] = time.time() - started
            run = window.model.run  # the model was loaded when any row was computed, not all cached
            result["model_loaded"] = run is not None and run.computed > 0
            app.quit()

    window.map_ready.connect(on_map)
    window.job_failed.connect(lambda message: (result.update(error=message), app.quit()))
    window.show()
    window.start_demo(rows=rows)
    app.exec()
    window.close()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--child-started", type=float)
    args = parser.parse_args()
    if args.child_started is not None:
        child(args.rows, args.child_started)
        return
    env = dict(os.environ, LOUPE_HOME=tempfile.mkdtemp(prefix="lb", dir="/tmp"))
    env.setdefault("QT_QPA_PLATFORM", "offscreen" if not env.get("DISPLAY") else "")
    runs = []
    for label in ("first", "second"):
        started = time.time()
        done = subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--child-started", str(started)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(result)
        print(f"{label} run: {result}")
    first, second = (float(r["seconds_to_map"]) for r in runs)
    print(f"first {first:.1f} s, second {second:.1f} s, ratio {first / second:.1f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
