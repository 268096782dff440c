"""The context a piece of work runs in (job, lane, dataset, model), for every log record it makes.

Fields bound with :func:`log_context` live in a contextvar, so each thread (each job lane) has
its own; :mod:`engine.logs` stamps them on every record, and the engine process forwards them
with each call so the child's records carry the caller's job id. It lives in the runtime, below
logging, because jobs bind it and logging only reads it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "loupe_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged inside the block, on this thread (contextvars)."""
    token = _context.set(MappingProxyType({**_context.get(), **fields}))
    try:
        yield
    finally:
        _context.reset(token)


def context_fields() -> dict[str, Any]:
    """The fields :func:`log_context` has set on this thread, to log records made elsewhere with."""
    return dict(_context.get())
