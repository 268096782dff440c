"""What the views cost the GUI thread, call by call, at 200,000 and 1,000,000 rows.

Every call here runs on the GUI thread when a dataset opens, a map lands, the colouring
changes, the filter applies or a lasso selects: the map's ``set_points``, ``set_categories``,
``set_values``, ``set_annotations``, ``set_density``, ``set_visible_rows`` and a selection of a
third of the rows; the table's ``set_dataset``, ``set_visible_rows`` and ``select_rows``; the
filter bar's ``set_dataset`` and ``set_filter``. DESIGN allows no stall over 50 ms.

The dataset is what ``loupe`` opens: a Parquet table (text, label, score) with vectors beside
it, read by :func:`engine.data.datasets.load_dataset`, so labels and columns are Arrow-backed
sequences, as in the window. The map's coordinates are random clusters.

Each call is timed with ``time.perf_counter`` alone ("call"; with ``--clock thread``, the GUI
thread's own CPU time, ``time.thread_time``, which other processes on a shared machine do not
inflate), then the events it left behind
are processed and timed ("+events": repaints, layouts, timers due at once). The map draws what
its setters ask for in later turns of the event loop (points, then the legend; see
``MapView.draw_pending``): each such turn is timed alone, and "call" is the longest of the
call's own turn and those. The table sorts a column the first time, and searches, on the
interactive lane of the operations machinery, as in the window: the turns that apply the
answer when it comes are timed alone too, and count the same way. "first" is the
first call on a fresh view (or the first of its kind), "again" the median of the later ones.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/gui_thread_costs.py [--sizes 200000 1000000]

Writes what it prints to tests/bench/results/gui_thread_costs.txt as well (``--label`` names
the run in the file; earlier runs in it are kept).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.map.colours import CodedCategories
from desktop.map.filter_bar import FilterBar
from desktop.map.view import MapView
from desktop.operations.bridge import EngineBridge
from desktop.operations.operation import Operations
from desktop.panels.table_view import TableView
from engine.data.datasets import Dataset, load_dataset
from tests.bench.synthetic import synthetic_dataset

RESULT = Path(__file__).resolve().parent / "results" / "gui_thread_costs.txt"
BUDGET_MS = 50
CLOCK: list[Callable[[], float]] = [time.perf_counter]  # or time.thread_time (--clock thread)
REPEATS = 4


def map_coords(dataset: Dataset) -> np.ndarray:
    """2-D clusters, one per label, as a projection would place them."""
    rng = np.random.default_rng(1)
    codes = np.unique(np.asarray(dataset.labels, dtype=object).astype(str), return_inverse=True)[1]
    centres = rng.uniform(-30, 30, size=(codes.max() + 1, 2))
    return (centres[codes] + rng.normal(size=(len(codes), 2)) * 3).astype(np.float32)


class Timer:
    """Times calls on the GUI thread and keeps one row per call for the table."""

    def __init__(self, app: QApplication) -> None:
        self.app = app
        self.map_view: MapView | None = None  # whose drawing, turn by turn, a call may leave waiting
        self.table: TableView | None = None  # whose background sort or search a call may leave running
        self.rows: dict[str, dict[int, tuple[float, float, float, float]]] = {}

    def settle(self) -> float:
        """Process pending events (twice: a paint can post more); the ms it took."""
        started = CLOCK[0]()
        for _ in range(2):
            self.app.processEvents()
        return (CLOCK[0]() - started) * 1000

    def map_turns(self) -> list[float]:
        """The ms of each turn of the map's waiting drawing, one turn at a time, as its timer runs them."""
        turns = [0.0]
        while self.map_view is not None and self.map_view.draw_is_pending:
            started = CLOCK[0]()
            self.map_view._pending_step()
            turns.append((CLOCK[0]() - started) * 1000)
        return turns

    def table_turns(self) -> list[float]:
        """The ms of each turn of the event loop until the table's background work is applied."""
        turns = [0.0]
        while self.table is not None and getattr(self.table, "busy", False):
            time.sleep(0.001)  # the lane's thread runs; the GUI thread only looks for its answer
            started = CLOCK[0]()
            self.app.processEvents()
            turns.append((CLOCK[0]() - started) * 1000)
        return turns

    def measure(
        self,
        name: str,
        size: int,
        call: Callable[[], object],
        *,
        before: Callable[[], object] | None = None,
        repeats: int = REPEATS,
    ) -> None:
        calls, events = [], []
        for _ in range(repeats):
            if before is not None:
                before()
            self.settle()
            started = CLOCK[0]()
            call()
            own = (CLOCK[0]() - started) * 1000
            calls.append(max(own, *self.table_turns(), *self.map_turns()))
            events.append(self.settle())
        again_call = statistics.median(calls[1:]) if len(calls) > 1 else calls[0]
        again_events = statistics.median(events[1:]) if len(events) > 1 else events[0]
        self.rows.setdefault(name, {})[size] = (calls[0], events[0], again_call, again_events)
        print(f"  {name:<52} first {calls[0]:7.1f} (+{events[0]:5.1f})  again {again_call:7.1f}", flush=True)


def bench_size(timer: Timer, rows: int, repeats: int, operations: Operations) -> None:
    with tempfile.TemporaryDirectory(prefix="loupe-gui-costs-") as folder:  # 300 MB at 1M rows
        dataset = load_dataset(synthetic_dataset(rows, Path(folder)))  # read into memory
    bench_dataset(timer, dataset, repeats, operations)


def bench_dataset(timer: Timer, dataset: Dataset, repeats: int, operations: Operations) -> None:
    coords = map_coords(dataset)
    n = len(dataset)
    print(f"\n{n:,} rows", flush=True)
    labels = dataset.labels
    kept_label = str(labels[0])
    label_rows = np.flatnonzero(np.asarray(labels, dtype=object) == kept_label)
    # Clusters as the window colours them (desktop/map/presenter.py): the cluster numbers are
    # the codes (-1, noise, first) and the names a short list, a tenth of the rows noise.
    rng = np.random.default_rng(2)
    clusters = rng.integers(-1, 20, n)
    names = CodedCategories(["noise", *(f"cluster {c}: some words" for c in range(20))], clusters + 1)
    scores = np.asarray(dataset.columns["score"], dtype=np.float64)
    third = np.arange(0, n, 3, dtype=np.intp)
    annotations = [(float(x), float(y), f"cluster {i}") for i, (x, y) in enumerate(coords[:20])]
    measure = timer.measure

    table, bar, view = TableView(), FilterBar(), MapView()
    if hasattr(table, "use_operations"):  # the code before issue 19 sorts and searches on the spot
        table.use_operations(operations)
    table.resize(1000, 400)
    view.resize(1200, 800)
    for widget in (table, bar, view):
        widget.show()
    timer.map_view, timer.table = view, table
    timer.settle()

    # The table and the filter bar, as a dataset opens and a filter applies.
    measure("TableView.set_dataset", n, lambda: table.set_dataset(dataset), repeats=repeats)
    measure("FilterBar.set_dataset", n, lambda: bar.set_dataset(dataset), repeats=repeats)
    measure(
        "FilterBar.set_filter label = (one label)",
        n,
        lambda: bar.set_filter("label", kept_label),
        before=bar.clear,
        repeats=repeats,
    )
    measure("FilterBar.set_filter score > 0.5", n, lambda: bar.set_filter("score", "> 0.5"), repeats=repeats)
    measure("FilterBar.clear", n, bar.clear, before=lambda: bar.set_filter("score", "> 0.5"))
    measure(
        "TableView.set_visible_rows (one label)",
        n,
        lambda: table.set_visible_rows(label_rows),
        before=lambda: table.set_visible_rows(None),
        repeats=repeats,
    )
    measure(
        "TableView.set_visible_rows (None)",
        n,
        lambda: table.set_visible_rows(None),
        before=lambda: table.set_visible_rows(label_rows),
        repeats=repeats,
    )
    measure(
        "TableView.select_rows (a third of the rows)",
        n,
        lambda: table.select_rows(third),
        before=lambda: table.select_rows([]),
        repeats=repeats,
    )
    for column, name in ((2, "label"), (3, "score")):
        measure(
            f"TableView sort by {name}",
            n,
            lambda column=column: table.table.sortByColumn(column, Qt.SortOrder.AscendingOrder),
            before=lambda: table.table.sortByColumn(0, Qt.SortOrder.AscendingOrder),
            repeats=2,
        )
    table.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def search(text: str) -> None:
        table.search.setText(text)
        getattr(table, "start_search", table.flush_search)()  # as the typing pause ends

    measure(
        "TableView search 'of cluster 1'",
        n,
        lambda: search("of cluster 1"),
        before=lambda: search(""),
        repeats=2,
    )
    search("")
    table.select_rows([])

    # The map, as a layout lands and the colouring, density, filter and selection change.
    measure(
        "MapView.set_points",
        n,
        lambda: view.set_points(coords, labels, dataset.texts, "map"),
        repeats=repeats,
    )
    measure("MapView.set_categories (labels)", n, lambda: view.set_categories(labels), repeats=repeats)
    measure(
        "MapView.set_categories (clusters, muted, no legend)",
        n,
        lambda: view.set_categories(names, muted="noise", legend=False),
        repeats=repeats,
    )
    measure("MapView.set_annotations (20)", n, lambda: view.set_annotations(annotations), repeats=repeats)
    measure("MapView.set_values (score)", n, lambda: view.set_values(scores, "score"), repeats=repeats)
    view.set_categories(labels)
    measure(
        "MapView.set_density(True)",
        n,
        lambda: view.set_density(True),
        before=lambda: view.set_density(False),
        repeats=repeats,
    )
    measure(
        "MapView.set_density(False)",
        n,
        lambda: view.set_density(False),
        before=lambda: view.set_density(True),
        repeats=repeats,
    )
    measure(
        "MapView.set_visible_rows (one label's rows)",
        n,
        lambda: view.set_visible_rows(label_rows),
        before=lambda: view.set_visible_rows(None),
        repeats=repeats,
    )
    measure(
        "MapView.set_visible_rows (None)",
        n,
        lambda: view.set_visible_rows(None),
        before=lambda: view.set_visible_rows(label_rows),
        repeats=repeats,
    )
    # Two labels' rows: few enough (under LOD_POINTS at 200k) to be drawn as points, hoverable.
    two_labels = np.union1d(label_rows, np.flatnonzero(np.asarray(labels, dtype=object) == str(labels[1])))
    measure(
        "MapView.set_visible_rows (two labels' rows)",
        n,
        lambda: view.set_visible_rows(two_labels),
        before=lambda: view.set_visible_rows(None),
        repeats=repeats,
    )
    view.set_visible_rows(two_labels)
    measure(
        "MapView.set_values (two labels' rows shown)",
        n,
        lambda: view.set_values(scores, "score"),
        repeats=repeats,
    )
    measure(
        "MapView.set_categories (two labels' rows shown)",
        n,
        lambda: view.set_categories(labels),
        repeats=repeats,
    )
    view.set_visible_rows(None)
    measure(
        "MapView.set_selection (a third of the rows)",
        n,
        lambda: view.set_selection(third),
        before=lambda: view.set_selection([]),
        repeats=repeats,
    )

    # The filter as the window wires it (MainWindow._on_filter), a third of the rows selected.
    def on_filter(kept: object) -> None:
        table.set_visible_rows(kept)  # type: ignore[arg-type]
        view.set_visible_rows(kept)  # type: ignore[arg-type]
        view.set_sizes(None)
        view.set_density(False)

    table.select_rows(third)
    bar.filter_changed.connect(on_filter)
    measure(
        "filter chain: one label (bar, table, map)",
        n,
        lambda: bar.set_filter("label", kept_label),
        before=bar.clear,
        repeats=repeats,
    )
    measure(
        "filter chain: clear (bar, table, map)",
        n,
        bar.clear,
        before=lambda: bar.set_filter("label", kept_label),
        repeats=repeats,
    )
    bar.filter_changed.disconnect(on_filter)

    x, y = (float(c) for c in coords[0])
    view.set_view_range(x - 2, x + 2, y - 2, y + 2)
    measure(
        "MapView.set_view_range (zoomed in: points)",
        n,
        lambda: view.set_view_range(x - 2, x + 2, y - 2, y + 2),
    )
    for widget in (table, bar, view):
        widget.close()
        widget.deleteLater()
    timer.map_view, timer.table = None, None
    timer.settle()


def table_text(timer: Timer, sizes: list[int]) -> str:
    """ms per call: the first call and the median of the later ones (+ the events they left)."""
    head = f"{'call':<52}" + "".join(f" | {f'{s:,} rows: first, again':>28}" for s in sizes)
    lines = [head, "-" * len(head)]
    for name, by_size in timer.rows.items():
        cells = []
        for size in sizes:
            if size not in by_size:
                cells.append(f" | {'':>28}")
                continue
            first, first_events, again, again_events = by_size[size]
            over = "!" if max(first, again) > BUDGET_MS else " "
            cells.append(f" | {first:6.1f} (+{first_events:5.1f}) {again:6.1f} (+{again_events:5.1f}){over}")
        label = name if len(name) <= 52 else name[:51] + "…"
        lines.append(f"{label:<52}" + "".join(cells))
    what = "CPU ms of the GUI thread" if CLOCK[0] is time.thread_time else "ms on the GUI thread"
    lines.append(f"{what}; (+n): the events processed right after; !: over {BUDGET_MS} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--label", default="", help="a name for this run in the results file")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument(
        "--clock", choices=("wall", "thread"), default="wall", help="thread: the GUI thread's CPU time"
    )
    options = parser.parse_args()
    CLOCK[0] = time.thread_time if options.clock == "thread" else time.perf_counter
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    timer = Timer(app)
    bridge = EngineBridge()
    operations = Operations(bridge)
    for size in options.sizes:
        repeats = options.repeats if size <= 200_000 else max(2, options.repeats - 1)
        bench_size(timer, size, repeats, operations)
    bridge.shutdown()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = (
        f"gui_thread_costs{', ' + options.label if options.label else ''}, {stamp}\n"
        f"{platform.machine()}, {os.cpu_count()} CPUs (load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}), Qt platform {os.environ['QT_QPA_PLATFORM']}"
    )
    text = heading + "\n" + table_text(timer, options.sizes) + "\n"
    print("\n" + text)
    if not options.no_save:
        RESULT.parent.mkdir(exist_ok=True)
        previous = RESULT.read_text() + "\n" if RESULT.is_file() else ""
        RESULT.write_text(previous + text)


if __name__ == "__main__":
    main()
