"""The GELF sink: Loupe's log records to Graylog (or any GELF receiver) without ever blocking.

A log call only puts the record on a bounded queue (:class:`DroppingQueueHandler`); one
sender thread, ``loupe-gelf``, takes records off it and hands them to a pygelf handler. When
the receiver is slow or gone the queue fills and further records are counted as dropped,
so a logging call never waits on the network.

Supported URLs: ``udp://host:port`` (zlib-compressed, chunked above 1,300 bytes),
``tcp://host:port`` (NUL-terminated frames), ``tls://host:port`` (certificate verified
against the system CAs, or against ``LOUPE_GELF_CA`` / ``ca_file``), ``http://host:port/path``
and ``https://host:port/path`` (path defaults to ``/gelf``).
"""

from __future__ import annotations

import copy
import http.client
import logging
import logging.handlers
import os
import queue
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from pygelf import GelfTcpHandler, GelfTlsHandler, GelfUdpHandler  # type: ignore[import-untyped]
from pygelf import gelf as pygelf_format

from engine.errors import LoupeError

SCHEMES = ("udp", "tcp", "tls", "http", "https")
QUEUE_SIZE = 10_000
SENDER_THREAD = "loupe-gelf"
# GELF has syslog levels only; a custom level (say 25) goes to the standard one below it.
_STANDARD_LEVELS = (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)


def make_gelf_handler(url: str, *, ca_file: str | None = None) -> logging.Handler:
    """A pygelf handler for ``url``; raises :class:`LoupeError` for a URL it cannot use.

    The handler is meant to run on the sender thread only (it is not shared).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname or parts.port is None:
        raise LoupeError(
            f"The GELF URL {url!r} is not one Loupe can use: give udp://, tcp://, tls://, http:// or "
            "https:// with a host and a port."
        )
    host, port = parts.hostname, parts.port
    common: dict[str, Any] = {"include_extra_fields": True, "_application": "loupe"}
    handler: Any
    if scheme == "udp":
        handler = GelfUdpHandler(host=host, port=port, compress=True, chunk_size=1300, **common)
    elif scheme == "tcp":
        handler = GelfTcpHandler(host=host, port=port, **common)
    elif scheme == "tls":
        handler = _GelfTlsHandler(host=host, port=port, validate=False, **common)
        # pygelf only verifies with an explicit CA bundle; we always verify, with the system's
        # CAs unless a private CA is given.
        handler.ctx = ssl.create_default_context(cafile=ca_file)
    else:
        handler = _GelfHttpHandler(
            host, port, path=parts.path or "/gelf", tls=scheme == "https", ca_file=ca_file, fields=common
        )
    if isinstance(handler, logging.handlers.SocketHandler):
        # Close the socket and reconnect later (with the stdlib's backoff) on a send error,
        # instead of printing "--- Logging error ---" to stderr for every record.
        handler.closeOnError = True
    assert isinstance(handler, logging.Handler)
    return handler


class _GelfTlsHandler(GelfTlsHandler):  # type: ignore[misc]
    """pygelf's TLS handler leaks the socket when the handshake fails (say, an untrusted
    certificate), once per reconnection attempt; this one closes it."""

    def makeSocket(self, timeout: float = 1) -> socket.socket:  # noqa: N802 (the stdlib's name)
        plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        plain.settimeout(timeout)
        try:
            wrapped: ssl.SSLSocket = self.ctx.wrap_socket(plain, server_hostname=self.host)
        except BaseException:
            plain.close()
            raise
        try:  # the wrapped socket now owns the descriptor
            wrapped.connect((self.host, self.port))
        except BaseException:
            wrapped.close()
            raise
        return wrapped


class _GelfHttpHandler(logging.Handler):
    """POSTs one GELF message per record. pygelf's HTTP handlers neither read the response nor
    close the connection (leaking a socket per record) and let errors escape ``emit``."""

    def __init__(
        self, host: str, port: int, *, path: str, tls: bool, ca_file: str | None, fields: dict[str, Any]
    ) -> None:
        super().__init__()
        self.host, self.port, self.path = host, port, path
        self.context = ssl.create_default_context(cafile=ca_file) if tls else None
        self.fields = {key: value for key, value in fields.items() if key.startswith("_")}
        self.domain = os.uname().nodename
        self.failures = 0  # only touched by the sender thread

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = pygelf_format.make(record, self.domain, False, "1.1", self.fields, None, True)
            body = pygelf_format.pack(message, True, pygelf_format.object_to_json)
            connection: http.client.HTTPConnection
            if self.context is not None:
                connection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=2, context=self.context
                )
            else:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
            try:
                connection.request("POST", self.path, body, {"Content-Encoding": "deflate"})
                connection.getresponse().read()
            finally:
                connection.close()
        except Exception:  # the receiver is down or refuses: the record is lost, logging goes on
            self.failures += 1


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler that never blocks: a full queue counts the record as dropped.

    Thread-safe; ``emit`` runs on whichever thread logged and costs a copy and a
    ``put_nowait``. ``prepare`` turns the record into plain data for the sender thread.
    """

    def __init__(self, q: queue.Queue[Any]) -> None:
        super().__init__(q)
        self.dropped = 0
        self._count_lock = threading.Lock()

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        prepared = copy.copy(record)  # other handlers still see the original
        prepared.msg = record.getMessage()
        prepared.args = None
        text = record.exc_text
        if text is None and record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            text = f"{text}\n{record.stack_info}" if text else record.stack_info
        prepared.exc_info, prepared.exc_text = None, text  # pygelf sends exc_text as full_message
        del prepared.stack_info  # else it becomes a "_stack_info": null field
        prepared.logger = record.name
        prepared.levelno = next((lv for lv in _STANDARD_LEVELS if record.levelno >= lv), logging.DEBUG)
        return prepared


class _Sender(logging.handlers.QueueListener):
    """The queue's consumer thread, which stops within a deadline even if the receiver hangs."""

    def __init__(self, q: queue.Queue[Any], handler: logging.Handler) -> None:
        super().__init__(q, handler)
        self._q = q

    def start(self) -> None:
        super().start()
        assert self._thread is not None
        self._thread.name = SENDER_THREAD

    def stop_within(self, seconds: float) -> None:
        """Send what is queued if that takes under ``seconds``, else drop it; join the thread."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + seconds
        try:
            self._q.put(self._sentinel, timeout=seconds)  # type: ignore[attr-defined]
        except queue.Full:
            while True:  # the receiver is stuck: discard the backlog so the sentinel fits
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    break
            self._q.put_nowait(self._sentinel)  # type: ignore[attr-defined]
        # One record in flight can still take a socket timeout (1-2 s) to fail.
        thread.join(max(deadline - time.monotonic(), 0) + 3)
        self._thread = None


class GelfSink:
    """The queue, its non-blocking handler (attach it to loggers) and the sender thread.

    Create and :meth:`close` from one thread; :attr:`handler` may be used from any thread.
    """

    def __init__(self, url: str, *, ca_file: str | None = None, queue_size: int | None = None) -> None:
        self.url = url
        self.target = make_gelf_handler(url, ca_file=ca_file)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size or QUEUE_SIZE)
        self.handler = DroppingQueueHandler(self._queue)
        self._sender = _Sender(self._queue, self.target)
        self._sender.start()

    @property
    def dropped(self) -> int:
        return self.handler.dropped

    def close(self, timeout: float = 2.0) -> None:
        """Flush within ``timeout`` (best effort), stop the sender thread, close the socket."""
        self._sender.stop_within(timeout)
        self.target.close()
