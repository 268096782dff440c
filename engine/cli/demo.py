"""The built-in demo, headless: stdlib docstrings → embeddings → PCA, UMAP → files.

The desktop runs the same steps as separate jobs so that it can show the PCA preview while
UMAP runs; this module is the headless path used by ``loupe demo --no-gui``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.cli.progress import end_progress_line
from engine.core.engine import Engine
from engine.data.demo_data import build_stdlib_dataset
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken, ProgressMeter, Report, silent_report
from engine.user.export import save_map_figure, write_coords_csv

DEMO_ROWS = 4000


@dataclass(frozen=True)
class DemoResult:
    rows: int
    computed: int
    files: tuple[Path, ...]
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(
    engine: Engine,
    out_dir: Path,
    *,
    rows: int = DEMO_ROWS,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> DemoResult:
    """Run the whole demo and write ``map.png``, ``map.svg`` and ``coords.csv`` to ``out_dir``."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    dataset = build_stdlib_dataset(max_rows=rows)
    timings["dataset"] = time.perf_counter() - start
    run = engine.embeddings(dataset.texts, token=token, report=report)
    timings["embeddings"] = time.perf_counter() - start
    for method in ("pca", "umap"):  # the same steps, and cache entries, as the window's
        coords = engine.projection(
            run.vectors, ProjectionParams(method=method), input_id=run.input_id, token=token, report=report
        )
    timings["map"] = time.perf_counter() - start
    model_name = "all-MiniLM-L6-v2" if engine.model_name == "minilm" else engine.spec.path.name
    title = f"{dataset.name}: {len(dataset)} rows, {model_name}, UMAP"
    files = (
        save_map_figure(out_dir / "map.png", coords, dataset.labels, title=title),
        save_map_figure(out_dir / "map.svg", coords, dataset.labels, title=title),
        write_coords_csv(out_dir / "coords.csv", coords, dataset.labels, dataset.texts),
    )
    timings["files"] = time.perf_counter() - start
    return DemoResult(rows=len(dataset), computed=run.computed, files=files, timings=timings)


def demo_command(engine: Engine, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe demo --no-gui`` (or without a display): the demo's files and one summary line."""
    start = time.perf_counter()
    result = run_demo(engine, args.out, rows=args.rows, report=report)
    end_progress_line(args.quiet)
    if not args.quiet:
        print(
            f"loupe: demo: {result.rows} rows ({result.computed} embedded, {result.rows - result.computed} "
            f"from cache), map in {result.timings['map']:.1f} s, total {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        for path in result.files:
            print(f"loupe: wrote {path}", file=sys.stderr)
    return 0
