"""``loupe``'s command line (DESIGN.md §5): headless commands, and the door to the desktop.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr, no traceback),
1 an unexpected failure (traceback in the log), 130 interrupted. Progress goes to stderr,
data to files. The desktop is started through ``open_gui``, injected by
``desktop.launcher`` so that this module never imports Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cache.keys import KINDS
from engine.errors import LoupeError
from engine.runtime.jobs import Progress, ProgressMeter

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from engine.core.engine import Engine
    from engine.data.datasets import Dataset
    from engine.maps.projection import ProjectionParams

log = logging.getLogger("loupe")
# engine.user.export's bounds, repeated so that ``--help`` needs no numpy (a test checks they agree).
MIN_DPI, MAX_DPI = 30, 1200
GuiOpener = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="model folder or alias (default: the settings', else minilm)")
    common.add_argument(
        "--device", choices=["auto", "cpu", "cuda", "mps"], help="default: the settings', else auto"
    )
    common.add_argument(
        "--allow-download",
        action="store_true",
        help="fetch a hub model missing from the local Hugging Face cache (default: offline)",
    )
    common.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let a model folder run its own Python code (only for sources you trust)",
    )
    common.add_argument(
        "--pooling", choices=["mean", "cls", "last", "max"], help="override the model's pooling (embeddings)"
    )
    common.add_argument("--redis", metavar="URL", help="use this Redis/Valkey server as the cache")
    common.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common.add_argument("--verbose", action="store_true", help="log details to stderr")

    parser = argparse.ArgumentParser(prog="loupe", description="Look at a dataset through a model's eyes.")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", parents=[common], help="the built-in demo, end to end")
    demo.add_argument("--no-gui", action="store_true", help="run headless and write files")
    demo.add_argument("--out", type=Path, default=Path("loupe-demo"), help="folder for headless output")
    demo.add_argument(
        "--rows", type=_positive_int, default=4000, help="rows of the demo dataset (default 4000)"
    )

    open_ = sub.add_parser("open", parents=[common], help="open a dataset or a .loupe.json session")
    open_.add_argument("path", type=Path)
    open_.add_argument("--text-column", help="the column of text to embed (default: the longest texts)")
    open_.add_argument(
        "--label-column", help="the column that colours the map (default: one named like a label)"
    )

    embed = sub.add_parser("embed", parents=[common], help="embed a CSV's text column to .npy")
    embed.add_argument("path", type=Path)
    embed.add_argument("--out", type=Path, required=True)
    embed.add_argument("--text-column")
    embed.add_argument(
        "--layer",
        type=_layer_argument,
        default=-1,
        help="hidden state to pool: 0 = embeddings, -1 = last (default), 'all' = every layer in one pass",
    )

    mapping = argparse.ArgumentParser(add_help=False)  # what project and export share
    mapping.add_argument("path", type=Path)
    mapping.add_argument("--text-column")
    mapping.add_argument("--label-column")
    mapping.add_argument("--method", default="umap", choices=["umap", "pca", "tsne"])
    mapping.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the method, e.g. n_neighbors=30 (repeat for more)",
    )
    mapping.add_argument("--seed", type=int, default=42)
    mapping.add_argument(
        "--layer",
        type=_layer_argument,
        default=-1,
        help="the layer to map (-1 = last); 'all' writes every layer's map, aligned, as layer,row,x,y,label",
    )
    mapping.add_argument(
        "--analyse",
        action="store_true",
        help="add cluster, cluster_name and faithfulness columns and print the map's trustworthiness",
    )

    project = sub.add_parser(
        "project", parents=[common, mapping], help="map a dataset's rows to 2-D coordinates"
    )
    project.add_argument("--out", type=Path, required=True)

    export = sub.add_parser(
        "export", parents=[common, mapping], help="the map as a figure and/or data file, with provenance"
    )
    export.add_argument("--figure", type=Path, help="F.png, F.svg or F.pdf (vector: one mark per point)")
    export.add_argument(
        "--data",
        type=Path,
        help="F.csv or F.parquet: coordinates, labels (and --analyse columns), then the texts",
    )
    export.add_argument("--title", default="")
    export.add_argument("--width", type=float, default=8.0, help="figure width in inches (default 8)")
    export.add_argument("--height", type=float, default=6.5, help="figure height in inches (default 6.5)")
    export.add_argument(
        "--dpi",
        type=_positive_int,  # the range is checked with the figure's size, in one sentence
        default=200,
        help=f"PNG resolution, {MIN_DPI} to {MAX_DPI} (default 200): below {MIN_DPI} points blur into "
        f"each other, above {MAX_DPI} no printer gains and the image's memory grows with its square",
    )
    export.add_argument("--no-legend", action="store_true")
    export.add_argument("--axes", action="store_true", help="draw the axes with ticks")

    attention = sub.add_parser("attention", parents=[common], help="attention maps of one text to .npz")
    attention.add_argument("--text", required=True)
    attention.add_argument("--out", type=Path, required=True)
    attention.add_argument(
        "--words",
        action="store_true",
        help="merge subword tokens into words (keys summed, queries averaged), as the window's words view",
    )

    cache = sub.add_parser("cache", parents=[common], help="cache statistics or clearing")
    cache.add_argument("action", choices=["stats", "clear"])
    cache.add_argument("--kind", choices=list(KINDS))

    logs = sub.add_parser("logs", help="print the log file's path, or follow it")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="print new log lines as they come (Ctrl-C stops)"
    )
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


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
        return _logs(args)
    _fill_defaults(args)
    try:
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
        ("redis", None),
        ("no_cache", False),
        ("quiet", False),
    ):
        if not hasattr(args, name):
            setattr(args, name, value)
    if args.model is None or args.device is None:
        from engine.user.settings import load_settings

        settings = load_settings()
        args.model = args.model or settings.model
        args.device = args.device or settings.device


def has_display() -> bool:
    """True where a window can be shown (always off Linux; on Linux, X11/Wayland or a Qt platform)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _run_headless(args: argparse.Namespace) -> int:
    from engine.cache.connect import open_cache
    from engine.core.engine import Engine

    cache = open_cache(args.redis, args.no_cache)
    if not args.quiet and args.command != "cache":
        print(f"loupe: cache: {cache.description}", file=sys.stderr)
    engine = Engine(
        cache,
        model=args.model,
        device=args.device,
        allow_download=getattr(args, "allow_download", False),
        trust_remote_code=getattr(args, "trust_remote_code", False),
        pooling=getattr(args, "pooling", None),
    )
    report = ProgressMeter(_stderr_progress(args.quiet))
    try:
        return int(_COMMANDS[args.command](engine, args, report))
    finally:
        cache.close()


def _demo(engine: object, args: argparse.Namespace, report: ProgressMeter) -> int:
    from engine.cli.demo import run_demo
    from engine.core.engine import Engine

    assert isinstance(engine, Engine)
    start = time.perf_counter()
    result = run_demo(engine, args.out, rows=args.rows, report=report)
    _done_line(args.quiet)
    if not args.quiet:
        print(
            f"loupe: demo: {result.rows} rows ({result.computed} embedded, {result.rows - result.computed} "
            f"from cache), map in {result.timings['map']:.1f} s, total {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        for path in result.files:
            print(f"loupe: wrote {path}", file=sys.stderr)
    return 0


def _layer_argument(value: str) -> int | str:
    """``--layer``: an integer (negative counts from the end) or ``all``."""
    if value.strip().lower() == "all":
        return "all"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a layer number or 'all'") from None


def _embed(engine: object, args: argparse.Namespace, report: ProgressMeter) -> int:
    import numpy as np

    from engine.core.engine import Engine
    from engine.data.datasets import load_dataset
    from engine.runtime.atomic import atomic_path

    assert isinstance(engine, Engine)
    _check_out(args.out, ".npy", [args.path])
    dataset = load_dataset(args.path, text_column=args.text_column)
    if args.layer == "all":
        run = engine.all_layer_embeddings(dataset.texts, report=report)
    else:
        run = engine.embeddings(dataset.texts, layer=args.layer, report=report)
    _done_line(args.quiet)
    with atomic_path(args.out) as tmp, tmp.open("wb") as handle:
        np.save(handle, run.vectors, allow_pickle=False)
    if not args.quiet:
        print(
            f"loupe: wrote {args.out} {run.vectors.shape} ({run.computed} computed, "
            f"{run.from_cache} from cache, {run.truncated} truncated to {engine.spec.max_length} tokens)",
            file=sys.stderr,
        )
    return 0


@dataclass
class ComputedMap:
    """One map of a dataset, as ``project`` and ``export`` compute it, and its analysis columns."""

    dataset: Dataset
    params: ProjectionParams
    coords: npt.NDArray[np.float32]
    extra: dict[str, Sequence[object]] = field(default_factory=dict)
    trust: float | None = None


def _map_inputs(args: argparse.Namespace) -> tuple[Dataset, ProjectionParams]:
    """The dataset and projection parameters that ``project`` and ``export`` were given."""
    from engine.data.datasets import load_dataset
    from engine.maps.projection import ProjectionParams

    params = ProjectionParams.from_options(args.method, _param_options(args.param), seed=args.seed)
    return load_dataset(args.path, text_column=args.text_column, label_column=args.label_column), params


def compute_map(engine: Engine, args: argparse.Namespace, report: ProgressMeter) -> ComputedMap:
    """The map asked for by ``--method/--param/--seed/--layer`` (cached where possible)."""
    dataset, params = _map_inputs(args)
    # A cached map is found from the texts alone: no embeddings read, no model, no torch.
    coords = None
    if dataset.vectors is None:
        coords = engine.cached_map(dataset.texts, params, layer=args.layer)
    if coords is not None and coords.shape != (len(dataset), 2):
        # A cached map not of this dataset's shape (a crafted value) is recomputed, never written.
        log.warning("cached map has shape %s for %d rows; computing it again", coords.shape, len(dataset))
        coords = None
    run = None
    if coords is None or args.analyse:
        run = engine.dataset_embeddings(dataset, layer=args.layer, report=report)
    if coords is None:
        assert run is not None
        coords = engine.projection(run.vectors, params, input_id=run.input_id, report=report)
    result = ComputedMap(dataset, params, coords)
    if args.analyse:
        from engine.maps.analysis import trust_neighbours, trustworthiness

        assert run is not None
        clustering = engine.clusters(coords, dataset.texts)
        result.extra["cluster"] = [int(c) for c in clustering.labels]
        result.extra["cluster_name"] = [clustering.names.get(int(c), "") for c in clustering.labels]
        result.extra["faithfulness"] = [
            float(v) for v in engine.faithfulness(run.vectors, coords, input_id=run.input_id, report=report)
        ]
        result.trust = trustworthiness(run.vectors, coords, k=trust_neighbours(len(coords)))
    return result


def _project(engine: object, args: argparse.Namespace, report: ProgressMeter) -> int:
    from engine.core.engine import Engine
    from engine.user.data_files import dataset_files, write_coords_csv

    assert isinstance(engine, Engine)
    _check_out(args.out, ".csv", dataset_files(args.path))
    if args.layer == "all":
        return _project_layers(engine, *_map_inputs(args), args, report)
    computed = compute_map(engine, args, report)
    _done_line(args.quiet)
    write_coords_csv(args.out, computed.coords, computed.dataset.labels, extra=computed.extra)
    if not args.quiet:
        print(f"loupe: wrote {args.out} ({len(computed.dataset)} rows)", file=sys.stderr)
        if computed.trust is not None:
            print(f"loupe: trustworthiness {computed.trust:.3f} (cosine)", file=sys.stderr)
    return 0


def _export(engine: object, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe export``: the map as a figure and/or data file, each with a provenance sidecar."""
    from engine.core.engine import Engine
    from engine.user.data_files import DATA_FORMATS, dataset_files, write_data
    from engine.user.export import provenance, sidecar_path, write_sidecar
    from engine.user.figures import FIGURE_FORMATS, check_map_figure, save_map_figure

    assert isinstance(engine, Engine)
    if args.figure is None and args.data is None:
        raise LoupeError("loupe export needs --figure F.png|svg|pdf, --data F.csv|parquet, or both.")
    if args.layer == "all":
        raise LoupeError("loupe export maps one layer; use loupe project --layer all for every layer.")
    inputs = dataset_files(args.path)
    for path, formats in ((args.figure, FIGURE_FORMATS), (args.data, DATA_FORMATS)):
        if path is not None:
            _check_out(path, formats, inputs)
            _check_out(sidecar_path(path), ".json", inputs)
    if args.figure is not None:
        check_map_figure(args.figure, (args.width, args.height), args.dpi)
    computed = compute_map(engine, args, report)
    record = provenance(engine, computed.dataset, computed.params, args.layer, computed.trust)
    _done_line(args.quiet)
    written: list[Path] = []
    if args.figure is not None:
        written.append(
            save_map_figure(
                args.figure,
                computed.coords,
                computed.dataset.labels,
                title=args.title,
                dpi=args.dpi,
                size=(args.width, args.height),
                legend=not args.no_legend,
                axes=args.axes,
                provenance=record,
            )
        )
    if args.data is not None:
        dataset = computed.dataset
        written.append(
            write_data(
                args.data,
                computed.coords,
                dataset.labels,
                texts=dataset.texts,  # as the window's Export data…: which text each point is
                extra=computed.extra,
                provenance=record,
            )
        )
    written += [write_sidecar(path, record) for path in list(written)]
    if not args.quiet:
        for path in written:
            print(f"loupe: wrote {path}", file=sys.stderr)
    return 0


def _project_layers(
    engine: Engine,
    dataset: Dataset,
    params: ProjectionParams,
    args: argparse.Namespace,
    report: ProgressMeter,
) -> int:
    """``loupe project --layer all``: every layer's map, aligned, in one long CSV."""
    import csv

    from engine.runtime.atomic import atomic_path

    maps = engine.layer_maps(dataset.texts, params, report=report)
    _done_line(args.quiet)
    with atomic_path(args.out) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["layer", "row", "x", "y", "label"])
        for layer, coords in enumerate(maps):
            for row, ((x, y), label) in enumerate(zip(coords.tolist(), dataset.labels, strict=True)):
                writer.writerow([layer, row, f"{x:.6g}", f"{y:.6g}", label])
    if not args.quiet:
        print(f"loupe: wrote {args.out} ({len(maps)} layers x {len(dataset)} rows)", file=sys.stderr)
    return 0


def _param_options(pairs: Sequence[str]) -> dict[str, str]:
    """``--param name=value`` pairs as a dict; the engine parses and checks the values."""
    options: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise LoupeError(f"--param takes NAME=VALUE, not {pair!r}.")
        options[name.strip()] = value.strip()
    return options


def _attention(engine: object, args: argparse.Namespace, report: ProgressMeter) -> int:
    import numpy as np

    from engine.core.engine import Engine
    from engine.runtime.atomic import atomic_path

    assert isinstance(engine, Engine)
    _check_out(args.out, ".npz")
    maps = engine.attention(args.text)
    if args.words:
        from engine.model.attention import words_of

        maps = words_of(maps)
    with atomic_path(args.out) as tmp, tmp.open("wb") as handle:
        np.savez(
            handle,
            attentions=maps.attentions,
            tokens=np.array(maps.tokens, dtype=str),
            offsets=np.array(maps.offsets, dtype=np.int64).reshape(-1, 2),
        )
    if not args.quiet:
        print(f"loupe: wrote {args.out} attentions {maps.attentions.shape}", file=sys.stderr)
    return 0


def _cache(engine: object, args: argparse.Namespace, report: ProgressMeter) -> int:
    from engine.core.engine import Engine

    assert isinstance(engine, Engine)
    cache = engine.cache
    if args.action == "clear":
        removed = cache.clear(args.kind)
        print(f"loupe: removed {removed} cached values from {cache.description}")
        return 0
    print(f"cache: {cache.description}")
    for kind, count in cache.count_by_kind().items():
        print(f"{kind}: {count} values")
    memory = cache.memory()
    if memory is not None:
        used, limit = memory
        print(f"memory: {used / 2**20:.1f} MiB used of {f'{limit / 2**20:.0f} MiB' if limit else 'no limit'}")
    print(f"all processes: {cache.totals().summary()}")
    return 0


_COMMANDS: dict[str, Callable[[object, argparse.Namespace, ProgressMeter], int]] = {
    "demo": _demo,
    "embed": _embed,
    "project": _project,
    "export": _export,
    "attention": _attention,
    "cache": _cache,
}


def _check_out(path: Path, suffixes: str | tuple[str, ...], inputs: Sequence[Path] = ()) -> None:
    """Refuse, before any work starts, an output path that cannot be written or that is one of
    the command's ``inputs`` (under any spelling: a link, ``./x/../data.csv``)."""
    from engine.data.datasets import check_writable
    from engine.runtime.atomic import refuse_overwriting_inputs

    check_writable(path, (suffixes,) if isinstance(suffixes, str) else suffixes)
    refuse_overwriting_inputs(path, inputs)


def _stderr_progress(quiet: bool) -> Callable[[Progress], None]:
    state = {"last": 0.0}
    tty = sys.stderr.isatty()

    def show(progress: Progress) -> None:
        now = time.monotonic()
        final = progress.done >= progress.total
        if quiet or (now - state["last"] < (0.2 if tty else 5.0) and not final):
            return
        state["last"] = now
        if progress.total <= 1:  # a single step (a UMAP fit): no count or rate to show
            line = f"{progress.message}: {'done' if final else 'running'}"
        else:
            rate = f", {progress.rate:.0f}/s" if progress.rate else ""
            eta = f", ETA {progress.eta_s:.0f} s" if progress.eta_s is not None and not final else ""
            line = (
                f"{progress.message}: {progress.done}/{progress.total} ({progress.fraction:.0%}{rate}{eta})"
            )
        print(f"\r{line:<70}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show


def _done_line(quiet: bool) -> None:
    if not quiet and sys.stderr.isatty():
        print(file=sys.stderr)


def _logs(args: argparse.Namespace) -> int:
    """``loupe logs``: the JSON-lines log's path; with ``--follow``, its new lines until Ctrl-C."""
    from engine.logs.records import LOG_FILE
    from engine.user.paths import log_dir

    path = log_dir() / LOG_FILE
    if not args.follow:
        print(path)
        return 0
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops following
        _follow(path)
    return 0


def _follow(path: Path, interval: float = 0.2) -> None:
    """Print lines appended to ``path`` forever, reopening it after rotation (like ``tail -F``)."""
    file = None
    inode = None
    pending = b""  # a half-written line waits for its end
    try:
        while True:
            if file is None and path.exists():
                file, inode = path.open("rb"), path.stat().st_ino
                file.seek(0, os.SEEK_END)  # only new lines, as tail -f does after its history
            chunk = file.read() if file is not None else b""
            if chunk:
                pending += chunk
                complete, _, pending = pending.rpartition(b"\n")
                if complete:
                    sys.stdout.write(complete.decode("utf-8", errors="replace") + "\n")
                    sys.stdout.flush()
                continue
            time.sleep(interval)
            try:
                rotated = path.stat().st_ino != inode
            except FileNotFoundError:
                rotated = True
            if rotated and file is not None:
                rest = pending + file.read()  # what was written just before the rotation
                if rest:
                    sys.stdout.write(rest.decode("utf-8", errors="replace").rstrip("\n") + "\n")
                    sys.stdout.flush()
                file.close()
                file, pending = None, b""
    finally:
        if file is not None:
            file.close()
