"""The lines a cluster job's driver prints so that clients can follow it through its logs.

The Jobs REST API carries a job's status and its log, nothing else; the driver therefore prints
one ``loupe-progress {json}`` line every few seconds and, when it fails for a reason a user can
act on, one ``loupe-error {json}`` line holding a single sentence. Clients (``loupe cluster
status|submit --wait`` and the window's Jobs panel) read the last of each from the log and work
out rate and ETA themselves. Anything else in the log is Ray's or the libraries' and is ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PROGRESS_TAG = "loupe-progress "
ERROR_TAG = "loupe-error "
_LINE = re.compile(r"^(loupe-progress|loupe-error) (\{.*\})\s*$", re.MULTILINE)
PHASES = ("reading", "embedding", "mapping", "done")


@dataclass(frozen=True)
class JobProgress:
    """How far a job is: rows embedded out of ``total`` (0 while unknown), and in which phase."""

    phase: str
    done: int = 0
    total: int = 0
    computed: int = 0  # rows a model embedded on the cluster (the rest came from the cache)
    from_cache: int = 0
    elapsed_s: float = 0.0  # since the embedding phase began

    @property
    def rate(self) -> float:
        """Rows per second over the embedding phase so far (0 before any row)."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 and self.done else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far, None while it cannot be told."""
        if self.phase != "embedding" or not self.total or not self.rate:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def line(self) -> str:
        fields = {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "computed": self.computed,
            "from_cache": self.from_cache,
            "elapsed_s": round(self.elapsed_s, 2),
        }
        return PROGRESS_TAG + json.dumps(fields, sort_keys=True)

    def describe(self) -> str:
        """One line for a terminal or a status bar: phase, rows, rate and ETA."""
        if self.phase == "embedding" and self.total:
            text = f"embedding {self.done:,}/{self.total:,} rows"
            if self.rate:
                text += f", {self.rate:,.0f} rows/s"
            if self.eta_s is not None:
                text += f", ETA {format_duration(self.eta_s)}"
            return text
        if self.phase == "done":
            return (
                f"done: {self.total:,} rows ({self.computed:,} embedded, {self.from_cache:,} from the cache)"
            )
        return {"reading": "reading the dataset", "mapping": "fitting the map"}.get(self.phase, self.phase)


def error_line(sentence: str) -> str:
    first = (sentence.strip().splitlines() or ["the job failed"])[0]  # one sentence, one line
    return ERROR_TAG + json.dumps({"message": first})


def latest(log: str) -> tuple[JobProgress | None, str | None]:
    """The last progress and the last error sentence in ``log`` (None where there is none).

    Malformed lines are skipped: a log is text anyone's code on the cluster may print to.
    """
    progress: JobProgress | None = None
    error: str | None = None
    for match in _LINE.finditer(log):
        try:
            fields = json.loads(match.group(2))
        except ValueError:
            continue
        if not isinstance(fields, dict):
            continue
        if match.group(1) == "loupe-error":
            message = fields.get("message")
            if isinstance(message, str) and message:
                error = message[:500]
            continue
        parsed = _progress(fields)
        if parsed is not None:
            progress = parsed
    return progress, error


def _progress(fields: dict[str, object]) -> JobProgress | None:
    phase = fields.get("phase")
    if phase not in PHASES:
        return None
    numbers = {}
    for name in ("done", "total", "computed", "from_cache"):
        value = fields.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        numbers[name] = value
    elapsed = fields.get("elapsed_s", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, int | float) or not 0 <= elapsed < 1e9:
        return None
    return JobProgress(str(phase), elapsed_s=float(elapsed), **numbers)


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
