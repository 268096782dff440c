"""Tasks for the runtime's own tests of :mod:`engine.runtime.isolated` (``python -P -m
engine.runtime.sample_tasks NAME DIR``): echo arrays back, fail, or sleep. None of them is
reachable from the desktop or the CLI."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from engine.runtime.isolated import Arrays, Task, TaskTable, serve

# The longest the sleeping task may sleep, so a stray call cannot hold a child for long.
MAX_SLEEP_S = 30.0


def _echo(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    """Every input array back, plus their sum scaled by ``params["scale"]``."""
    total = sum((np.asarray(a, np.float64).sum() for a in arrays.values()), np.float64(0.0))
    return {**arrays, "scaled_sum": np.array([total * float(params.get("scale", 1.0))])}


def _fail(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    """Raise the exception ``params["error"]`` names (from a fixed list)."""
    from engine.errors import BadInputError

    errors: dict[str, type[Exception]] = {
        "MemoryError": MemoryError,
        "ValueError": ValueError,
        "BadInputError": BadInputError,
    }
    raise errors[str(params.get("error", "ValueError"))](str(params.get("message", "")))


def _sleep(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    """Sleep ``params["seconds"]`` (at most :data:`MAX_SLEEP_S`), then return nothing."""
    time.sleep(min(float(params.get("seconds", 0.0)), MAX_SLEEP_S))
    return {}


TASKS = TaskTable(
    "engine.runtime.sample_tasks",
    {"echo": Task("test", _echo), "fail": Task("test", _fail), "sleep": Task("test", _sleep)},
)

if __name__ == "__main__":
    sys.exit(serve(TASKS))
