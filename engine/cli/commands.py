"""The headless commands that are not maps: ``embed``, ``attention``, ``cache`` and ``logs``.

``embed`` and ``attention TEXT`` work on a file's texts or one text given on the command line,
not on a map or a row of an opened dataset, so they use the service's vector-level
:class:`~engine.core.engine.Engine` (``EngineService.engine``) directly. Each command returns its exit code;
messages a user reads go to stderr, data to files (``cache`` and ``logs`` print to stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.outputs import check_out
from engine.cli.progress import end_progress_line

if TYPE_CHECKING:  # numpy and the engine load when a command runs, not for ``loupe logs``
    from engine.core.service import EngineService
    from engine.runtime.jobs import ProgressMeter


def embed_command(service: EngineService, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe embed``: a dataset's embeddings at one layer (or every layer) to ``.npy``."""
    import numpy as np

    from engine.data.datasets import load_dataset
    from engine.runtime.atomic import atomic_path

    engine = service.engine
    check_out(args.out, ".npy", [args.path])
    dataset = load_dataset(args.path, text_column=args.text_column)
    if args.layer == "all":
        run = engine.all_layer_embeddings(dataset.texts, report=report)
    else:
        run = engine.embeddings(dataset.texts, layer=args.layer, report=report)
    end_progress_line(args.quiet)
    with atomic_path(args.out) as tmp, tmp.open("wb") as handle:
        np.save(handle, run.vectors, allow_pickle=False)
    if not args.quiet:
        print(
            f"loupe: wrote {args.out} {run.vectors.shape} ({run.computed} computed, "
            f"{run.from_cache} from cache, {run.truncated} truncated to {engine.spec.max_length} tokens)",
            file=sys.stderr,
        )
    return 0


def attention_command(service: EngineService, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe attention --text T``: every layer's and head's attention of one text to ``.npz``."""
    import numpy as np

    from engine.runtime.atomic import atomic_path

    check_out(args.out, ".npz")
    maps = service.engine.attention(args.text)
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


def cache_command(service: EngineService, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe cache stats|clear``: what the cache holds, or empty it (one kind or all)."""
    cache = service.cache
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


def logs_command(args: argparse.Namespace) -> int:
    """``loupe logs``: the JSON-lines log's path; with ``--follow``, its new lines until Ctrl-C."""
    from engine.logs.records import LOG_FILE
    from engine.runtime.paths import log_dir

    path = log_dir() / LOG_FILE
    if not args.follow:
        print(path)
        return 0
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops following
        follow(path)
    return 0


def follow(path: Path, interval: float = 0.2) -> None:
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
