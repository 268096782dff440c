"""Progress on stderr for the headless commands (data goes to files, never to this stream).

On a terminal one line is redrawn at most five times a second; in a log (not a tty) a line is
printed at most every five seconds, so CI logs stay short. The last step always shows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from engine.runtime.jobs import Progress


def stderr_progress(quiet: bool) -> Callable[[Progress], None]:
    """A :class:`~engine.runtime.jobs.ProgressMeter` callback that prints to stderr (nothing when quiet)."""
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


def end_progress_line(quiet: bool) -> None:
    """End the redrawn progress line on a terminal, so the next message starts on its own line."""
    if not quiet and sys.stderr.isatty():
        print(file=sys.stderr)
