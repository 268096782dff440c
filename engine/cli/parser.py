"""``loupe``'s arguments (DESIGN.md §5): one parser for every command, built without numpy.

``loupe --help`` imports only this module and the standard library's argparse (a test checks
that no numpy, torch or Qt is imported), so the figure's dpi bounds are repeated here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.cache.keys import KINDS
from engine.cli.cluster import add_parser as add_cluster_parser
from engine.cli.install_desktop import add_parser as add_install_desktop_parser
from engine.model.models import PRECISIONS
from engine.runtime.version import loupe_version

# engine.user.figures' bounds, repeated so that ``--help`` needs no numpy (a test checks they agree).
MIN_DPI, MAX_DPI = 30, 1200


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="model folder or alias (default: the settings', else minilm)")
    common.add_argument(
        "--device", choices=["auto", "cpu", "cuda", "mps"], help="default: the settings', else auto"
    )
    common.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="what embeddings are computed in (default: the settings', else auto: bf16 on CPUs with"
        " bf16 units, fp16 on GPUs, where the model agrees with fp32 to 0.9999 cosine)",
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
    parser.add_argument("--version", action=VersionAction, help="print Loupe's version and exit")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", parents=[common], help="the built-in demo, end to end")
    demo.add_argument("--no-gui", action="store_true", help="run headless and write files")
    demo.add_argument("--out", type=Path, default=Path("loupe-demo"), help="folder for headless output")
    demo.add_argument(
        "--rows", type=positive_int, default=4000, help="rows of the demo dataset (default 4000)"
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
        type=layer_argument,
        default=-1,
        help="hidden state to pool: 0 = embeddings, -1 = last (default), 'all' = every layer in one pass",
    )

    map_options = argparse.ArgumentParser(add_help=False)  # what project, export and cluster submit share
    map_options.add_argument("--text-column")
    map_options.add_argument("--label-column")
    map_options.add_argument("--method", default="umap", choices=["umap", "pca", "tsne"])
    map_options.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the method, e.g. n_neighbors=30 (repeat for more)",
    )
    map_options.add_argument("--seed", type=int, default=42)
    map_options.add_argument(
        "--layer",
        type=layer_argument,
        default=-1,
        help="the layer to map (-1 = last); 'all' writes every layer's map, aligned, as layer,row,x,y,label",
    )
    map_options.add_argument(
        "--analyse",
        action="store_true",
        help="add cluster, cluster_name and faithfulness columns and print the map's trustworthiness",
    )

    map_options.add_argument(
        "--fit-sample",
        type=positive_int,  # the least a method can fit is checked with its parameters, in one sentence
        metavar="N",
        help="for 100,000s of rows: fit the map on a spread sample of N rows (seeded by --seed) and "
        "place every other row by its nearest sampled rows; faster, somewhat less faithful (umap, tsne)",
    )

    mapping = argparse.ArgumentParser(add_help=False, parents=[map_options])
    mapping.add_argument("path", type=Path)

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
        type=positive_int,  # the range is checked with the figure's size, in one sentence
        default=200,
        help=f"PNG resolution, {MIN_DPI} to {MAX_DPI} (default 200): below {MIN_DPI} points blur into "
        f"each other, above {MAX_DPI} no printer gains and the image's memory grows with its square",
    )
    export.add_argument("--no-legend", action="store_true")
    export.add_argument("--axes", action="store_true", help="draw the axes with ticks")

    compare = sub.add_parser(
        "compare",
        parents=[common],
        help="what changed between two embeddings of the same rows (two models, layers or poolings)",
        description="Embed and map a dataset's rows twice (--model/--layer/--pooling against "
        "--against/--against-layer/--against-pooling), align the second map onto the first and "
        "write, per row, both positions, how far it moved and how many of its neighbours stayed.",
    )
    compare.add_argument("path", type=Path)
    compare.add_argument("--text-column")
    compare.add_argument("--label-column")
    compare.add_argument(
        "--layer",
        type=int,
        default=-1,
        help="the first side's layer (0 = embeddings, -1 = last: the default)",
    )
    compare.add_argument(
        "--against",
        required=True,
        metavar="MODEL",
        help="the second side's model: the same one (then another layer or pooling), a folder or a hub id",
    )
    compare.add_argument("--against-layer", type=int, default=-1, help="the second side's layer (default -1)")
    compare.add_argument(
        "--against-pooling",
        choices=["mean", "cls", "last", "max"],
        help="the second side's pooling (default: what its model says; --pooling is the first side's)",
    )
    compare.add_argument("--method", default="umap", choices=["umap", "pca", "tsne"])
    compare.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a parameter of the method"
    )
    compare.add_argument("--seed", type=int, default=42)
    compare.add_argument(
        "--k", type=int, default=10, help="neighbours per row for the neighbour overlap (default 10)"
    )
    compare.add_argument(
        "--out", type=Path, required=True, help="F.csv or F.parquet: one row per dataset row, and F.csv.json"
    )
    compare.add_argument("--figure", type=Path, help="F.svg, F.pdf or F.png: both maps side by side")

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

    sub.add_parser(
        "self-test",
        help="check this installation in seconds: cache server, model, UMAP, engine process, Qt",
        description="Check that this installation works: the cache server starts and answers, the "
        "default model gives the reference vectors, UMAP runs with its kernel cache, the engine's "
        "child process answers and Qt draws offscreen. One line per check; exit status 0 when all pass.",
    )

    logs = sub.add_parser("logs", help="print the log file's path, or follow it")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="print new log lines as they come (Ctrl-C stops)"
    )
    add_install_desktop_parser(sub)
    add_cluster_parser(sub, common, map_options, positive_int)
    return parser


class VersionAction(argparse.Action):
    """``--version``: print ``loupe <version>`` and exit; the version is looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"loupe {loupe_version()}")
        parser.exit()


def positive_int(value: str) -> int:
    """``--rows``, ``--dpi``: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def layer_argument(value: str) -> int | str:
    """``--layer``: an integer (negative counts from the end) or ``all``."""
    if value.strip().lower() == "all":
        return "all"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a layer number or 'all'") from None
