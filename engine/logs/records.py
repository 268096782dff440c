"""Centralised, structured logging: a JSON-lines file, an in-memory feed for the log view,
stderr, and optionally a GELF sink (Graylog).

Every component logs through :mod:`logging` as usual. :func:`setup_logging` puts the
handlers on the *root* logger and sets the level of Loupe's own namespaces (``loupe``,
``engine``, ``desktop``) to INFO (DEBUG with ``verbose``); the root logger stays at WARNING,
so third-party libraries reach the handlers only with warnings and errors.

Each record is stamped, on the thread that logs it, with the process's :data:`SESSION_ID`
and the fields bound by :func:`log_context` (contextvars, so per thread / per task), and
secrets in its message, arguments, string fields and traceback are redacted before any
handler formats it.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import logging
import logging.handlers
import os
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runtime.context import context_fields

SESSION_ID = uuid.uuid4().hex[:12]
OUR_LOGGERS = ("loupe", "engine", "desktop")
LOG_FILE = "loupe.jsonl"
MAX_BYTES, BACKUPS = 5 * 1024 * 1024, 5
RECENT = 5_000
VALKEY_LOGGER = "engine.cache.valkey"
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


# Secrets that end up in messages: URL passwords (redis://user:pw@host), key=value pairs
# (query strings, dicts, reprs) and HTTP Authorization headers. Over-redacting is fine.
_SECRETS = (
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@]+(@)", re.I), r"\1***\2"),
    (
        re.compile(r"(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)\s+)[^\s\"',;]+", re.I),
        r"\1***",
    ),
    (re.compile(r"(\bbearer\s+)[a-z0-9._~+/=-]{8,}", re.I), r"\1***"),
    (
        re.compile(
            r"(\b\w*(?:password|passwd|token|api[_-]?key|secret)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',;)}]+", re.I
        ),
        r"\1***",
    ),
)


def redact(text: str) -> str:
    """``text`` with passwords, tokens and API keys replaced by ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class LogEntry:
    """One record as plain data for the log view: ``time`` is epoch seconds."""

    time: float
    level: str
    logger: str
    message: str
    fields: dict[str, Any]
    exc_text: str | None


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: everything that is not a standard LogRecord attribute."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def is_standard_field(name: str) -> bool:
    """Whether ``name`` is a LogRecord attribute of its own (``extra=`` may not set it)."""
    return name in _STANDARD


@contextmanager
def timed(logger: logging.Logger, message: str, **fields: Any) -> Iterator[None]:
    """Log ``message`` at INFO when the block ends, with ``duration_s``; at WARNING if it raised."""
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        duration = round(time.perf_counter() - start, 4)
        logger.warning("%s (failed)", message, extra={**fields, "duration_s": duration})
        raise
    logger.info(message, extra={**fields, "duration_s": round(time.perf_counter() - start, 4)})


class _Stamp(logging.Filter):
    """Adds the session id and context fields, and redacts secrets, once per record.

    Runs on the logging thread (handlers call filters before emitting), which is what makes
    the contextvars visible. Shared by all of our handlers; the work is done only once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_loupe_stamped", False):
            return True
        record._loupe_stamped = True
        for key, value in {"session_id": SESSION_ID, **context_fields()}.items():
            if not hasattr(record, key):  # an explicit extra= wins over the context
                setattr(record, key, value)
        try:
            record.msg, record.args = redact(record.getMessage()), None
        except Exception:  # a bad format string: keep the record, let the formatter report it
            record.msg = redact(str(record.msg))
        for key, value in record_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters reuse exc_text, so the redacted traceback is the one every handler shows.
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, fields, exc_text."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, Any] = record_fields(record)
        line.update(
            time=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            level=record.levelname,
            logger=record.name,
            message=record.getMessage(),
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_text"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest and the CLI swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _Feed(logging.Handler):
    """Keeps the last :data:`RECENT` INFO+ entries and calls the listeners, from any thread.

    ``handle`` is overridden so that no handler lock is taken: the deque and the tuple of
    listeners are safe to use unlocked, and a listener that logs cannot deadlock.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.recent: deque[LogEntry] = deque(maxlen=RECENT)
        self.listeners: tuple[Callable[[LogEntry], None], ...] = ()
        self._busy = threading.local()

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record) or getattr(self._busy, "on", False):
            return False  # (a record logged by a listener itself is not fed back to it)
        entry = LogEntry(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            record_fields(record),
            record.exc_text,
        )
        self.recent.append(entry)
        self._busy.on = True
        try:
            for listener in self.listeners:
                with contextlib.suppress(Exception):  # a broken view must not break logging
                    listener(entry)
        finally:
            self._busy.on = False
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)


_stamp = _Stamp()
_feed = _Feed()
_feed.addFilter(_stamp)
_listeners_lock = threading.Lock()


def add_listener(callback: Callable[[LogEntry], None]) -> Callable[[], None]:
    """Call ``callback(entry)`` for every INFO+ record, on the thread that logged it.

    Keep it cheap (hop to your own thread); exceptions it raises are swallowed. Returns a
    function that unsubscribes. Thread-safe.
    """
    with _listeners_lock:
        _feed.listeners = (*_feed.listeners, callback)

    def unsubscribe() -> None:
        with _listeners_lock:
            _feed.listeners = tuple(cb for cb in _feed.listeners if cb is not callback)

    return unsubscribe


def recent_entries(limit: int = RECENT) -> list[LogEntry]:
    """The last ``limit`` INFO+ entries, oldest first (a snapshot; thread-safe)."""
    entries = list(_feed.recent)
    return entries[-limit:] if limit > 0 else []


_VALKEY_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d{4} [\d:.]+ ([.\-*#]) (.*)$")
_VALKEY_LEVELS = {".": logging.DEBUG, "-": logging.INFO, "*": logging.INFO, "#": logging.WARNING}


class ServerLogForwarder:
    """Re-logs new lines of the embedded Valkey server's log under ``engine.cache.valkey``.

    :meth:`poll` reads what was appended since the last call (from the end of the file as it
    was at construction, so earlier runs are not repeated). :meth:`start` polls every
    ``interval`` seconds on a daemon thread ``valkey-log-forwarder`` until :meth:`stop`,
    which polls once more. ``poll`` is serialised by a lock and may be called from any thread.
    """

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path, self.interval = path, interval
        self.log = logging.getLogger(VALKEY_LOGGER)
        self._offset = path.stat().st_size if path.exists() else 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> int:
        """Forward complete new lines; returns how many."""
        with self._lock:
            try:
                with self.path.open("rb") as file:
                    if os.fstat(file.fileno()).st_size < self._offset:
                        self._offset = 0  # truncated or replaced: start over
                    file.seek(self._offset)
                    data = file.read()
            except FileNotFoundError:
                return 0
            complete = data[: data.rfind(b"\n") + 1]  # a half-written line waits for the next poll
            self._offset += len(complete)
            lines = complete.decode(errors="replace").splitlines()
            for line in filter(None, lines):
                match = _VALKEY_LINE.match(line)
                level = _VALKEY_LEVELS[match[1]] if match else logging.INFO
                self.log.log(level, "%s", match[2] if match else line)
            return len(lines)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="valkey-log-forwarder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.poll()


def forward_server_log(path: Path) -> int:
    """Forward new lines of the server log at ``path`` now (e.g. when the cache closes).

    Uses the running setup's forwarder when it follows ``path``, so no line is logged twice.
    """
    with _setup_lock:
        current = _current
    if current is not None and current.server_log.path == path:
        return current.server_log.poll()
    forwarder = _forwarders.setdefault(path, ServerLogForwarder(path))
    return forwarder.poll()


_forwarders: dict[Path, ServerLogForwarder] = {}


class LoggingSetup:
    """The handlers :func:`setup_logging` installed. Close it from the thread that made it."""

    def __init__(self, *, verbose: bool, gelf_url: str | None, log_path: Path) -> None:
        from engine.logs.gelf import GelfSink

        self.verbose, self.gelf_url, self.log_path = verbose, gelf_url, log_path
        self.session_id = SESSION_ID
        self.file_handler = logging.handlers.RotatingFileHandler(
            log_path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
        self.file_handler.setFormatter(JsonFormatter())
        stderr = _StderrHandler(logging.DEBUG if verbose else logging.WARNING)
        stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        if not verbose:
            # The server warns about things a user cannot act on (vm.overcommit_memory) and says
            # "bye bye" at every exit: its lines go to the file, the view and GELF, not stderr.
            stderr.addFilter(lambda record: not record.name.startswith(VALKEY_LOGGER))
        self.gelf = GelfSink(gelf_url, ca_file=os.environ.get("LOUPE_GELF_CA")) if gelf_url else None
        self.handlers: list[logging.Handler] = [self.file_handler, stderr, _feed]
        if self.gelf is not None:
            self.handlers.append(self.gelf.handler)
        root = logging.getLogger()
        for handler in self.handlers:
            handler.addFilter(_stamp)
            root.addHandler(handler)
        for name in OUR_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
        # The embedded server writes its own log next to ours; its lines join this stream.
        self.server_log = ServerLogForwarder(log_path.parent / "valkey.log")
        self.server_log.start()
        self.closed = False

    @property
    def gelf_dropped(self) -> int:
        """Records the GELF sink dropped because its queue was full (0 without a sink)."""
        return self.gelf.dropped if self.gelf is not None else 0

    def close(self) -> None:
        """Forward the server's last lines, flush GELF (≤ 2 s), remove and close the handlers."""
        global _current
        if self.closed:
            return
        self.closed = True
        self.server_log.stop()
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
        if self.gelf is not None:
            self.gelf.close()
        self.file_handler.close()
        with _setup_lock:
            if _current is self:
                _current = None


_current: LoggingSetup | None = None
_setup_lock = threading.Lock()


def setup_logging(*, verbose: bool = False, gelf_url: str | None = None) -> LoggingSetup:
    """Install Loupe's logging for this process and return it; call from the main thread.

    Idempotent: the same arguments and log directory return the running setup. Anything
    different (another ``LOUPE_HOME`` in tests, a new GELF URL) closes it and starts anew.
    The setup is closed at exit if nobody closed it before.
    """
    global _current
    from engine.runtime.paths import log_dir

    log_path = log_dir() / LOG_FILE
    with _setup_lock:
        current = _current
    if current is not None:
        if (current.verbose, current.gelf_url, current.log_path) == (verbose, gelf_url, log_path):
            return current
        current.close()
    setup = LoggingSetup(verbose=verbose, gelf_url=gelf_url, log_path=log_path)
    with _setup_lock:
        _current = setup
    return setup


def reset_logging() -> None:
    """Close the current setup, if any (tests)."""
    with _setup_lock:
        current = _current
    if current is not None:
        current.close()


atexit.register(reset_logging)
