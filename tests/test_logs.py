"""Structured logging: the JSON file, the in-memory feed, redaction, the GELF sink against real
loopback GELF receivers (UDP with chunks, TCP, HTTP), the Valkey log forwarder and ``loupe logs``."""

from __future__ import annotations

import gc
import gzip
import json
import logging
import os
import queue
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import engine.logs.gelf
from engine.errors import LoupeError
from engine.logs.records import (
    SESSION_ID,
    LogEntry,
    add_listener,
    forward_server_log,
    recent_entries,
    redact,
    reset_logging,
    setup_logging,
    timed,
)
from engine.runtime.context import log_context
from engine.runtime.jobs import JobRunner
from engine.runtime.paths import log_dir

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("engine.test_logs")
SECRET = "hunter2-s3cr3t"


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


def decode_gelf(payload: bytes) -> dict[str, Any]:
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    elif payload[:1] == b"\x78":
        payload = zlib.decompress(payload)
    message: dict[str, Any] = json.loads(payload)
    return message


class UdpGelfServer:
    """A GELF UDP receiver on 127.0.0.1 that reassembles chunked messages."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.chunked = 0
        self._parts: dict[bytes, dict[int, bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-gelf-udp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            if data[:2] == b"\x1e\x0f":
                message_id, seq, count = data[2:10], data[10], data[11]
                parts = self._parts.setdefault(message_id, {})
                parts[seq] = data[12:]
                if len(parts) < count:
                    continue
                data = b"".join(parts[i] for i in range(count))
                del self._parts[message_id]
                self.chunked += 1
            self.messages.put(decode_gelf(data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class TcpGelfServer:
    """A GELF TCP receiver on 127.0.0.1: NUL-terminated frames; or one that never reads."""

    def __init__(self, *, read: bool = True, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if not read:  # a tiny receive buffer fills at once
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.read = read
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-gelf-tcp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffers: dict[socket.socket, bytes] = {}
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                if self.tls is not None:
                    conn.settimeout(5)
                    try:
                        conn = self.tls.wrap_socket(conn, server_side=True)
                    except (ssl.SSLError, OSError):
                        conn.close()
                        continue
                conn.settimeout(0.05)
                self.connections.append(conn)
                buffers[conn] = b""
            except TimeoutError:
                pass
            if not self.read:
                continue
            for conn in list(buffers):
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    del buffers[conn]
                    continue
                buffers[conn] += data
                *frames, buffers[conn] = buffers[conn].split(b"\0")
                for frame in frames:
                    self.messages.put(decode_gelf(frame))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.connections:
            conn.close()
        self.sock.close()


def wait_for(
    messages: queue.Queue[dict[str, Any]], match: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            message = messages.get(timeout=0.2)
        except queue.Empty:
            continue
        if match(message):
            return message
    raise AssertionError("the GELF receiver never got the message")


@pytest.fixture
def udp_server() -> Iterator[UdpGelfServer]:
    server = UdpGelfServer()
    yield server
    reset_logging()
    server.close()


@pytest.fixture
def tcp_server() -> Iterator[TcpGelfServer]:
    server = TcpGelfServer()
    yield server
    reset_logging()
    server.close()


def file_lines() -> list[dict[str, Any]]:
    path = log_dir() / "loupe.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the JSON file, context, the feed -------------------------------------------------------


def test_json_file_has_one_object_per_line_with_fields() -> None:
    setup = setup_logging()
    assert setup_logging() is setup, "same arguments: the running setup"
    with log_context(job_id=7, job="embed", dataset="fp123"), timed(log, "embedded", model="minilm"):
        log.info("working on %d rows", 12)
    logging.getLogger("desktop.view").warning("from the desktop")
    logging.getLogger("some.library").info("third-party chatter stays out")
    setup.close()
    lines = file_lines()
    assert [line["message"] for line in lines] == ["working on 12 rows", "embedded", "from the desktop"]
    first, timed_line, desktop = lines
    assert first["level"] == "INFO" and first["logger"] == "engine.test_logs"
    assert first["session_id"] == SESSION_ID and len(SESSION_ID) == 12
    assert first["job_id"] == 7 and first["job"] == "embed" and first["dataset"] == "fp123"
    assert first["time"].endswith("Z")
    assert timed_line["model"] == "minilm" and timed_line["duration_s"] >= 0 and timed_line["job_id"] == 7
    assert desktop["level"] == "WARNING" and "job_id" not in desktop
    assert setup.file_handler.maxBytes == 5 * 1024 * 1024 and setup.file_handler.backupCount == 5


def test_another_loupe_home_gets_its_own_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = setup_logging()
    monkeypatch.setenv("LOUPE_HOME", str(tmp_path))
    second = setup_logging()
    assert second is not first and first.closed
    log.info("in the second home")
    second.close()
    assert (tmp_path / "log" / "loupe.jsonl").read_text().count("in the second home") == 1


def test_listeners_get_info_and_above_from_any_thread() -> None:
    setup_logging()
    got: list[LogEntry] = []

    def broken(entry: LogEntry) -> None:
        raise RuntimeError("a broken view")

    unsubscribe_broken = add_listener(broken)
    unsubscribe = add_listener(got.append)
    log.debug("not delivered")

    def work() -> None:
        with log_context(job_id=3):
            log.info("from a worker")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    unsubscribe()
    unsubscribe_broken()
    log.info("after unsubscribing")
    assert [entry.message for entry in got] == ["from a worker"]
    assert got[0].fields["job_id"] == 3 and got[0].fields["session_id"] == SESSION_ID
    assert got[0].level == "INFO" and got[0].logger == "engine.test_logs" and got[0].exc_text is None
    assert [entry.message for entry in recent_entries(2)] == ["from a worker", "after unsubscribing"]


def test_jobs_log_start_finish_and_failures_with_their_ids() -> None:
    setup_logging()
    runner = JobRunner()

    def ok(*, token: object, report: object) -> int:
        log.info("inside the job")
        return 1

    def user_error(*, token: object, report: object) -> None:
        raise LoupeError("the column is empty")

    def crash(*, token: object, report: object) -> None:
        raise ValueError("boom")

    try:
        handles = [runner.submit("compute", name, fn) for name, fn in [("ok", ok), ("bad", user_error)]]
        handles.append(runner.submit("compute", "crash", crash))
        for handle in handles:
            handle.future.exception(timeout=10)
    finally:
        runner.shutdown()
    entries = {entry.message: entry for entry in recent_entries(20)}
    inside = entries["inside the job"]
    assert inside.fields["job_id"] == handles[0].job_id and inside.fields["job"] == "ok"
    assert entries["job ok started"].level == "INFO"
    assert entries["job ok finished"].fields["duration_s"] >= 0
    user = entries["job bad failed: the column is empty"]
    assert user.level == "WARNING" and user.exc_text is None and user.fields["job"] == "bad"
    crashed = entries["job crash failed"]
    assert crashed.level == "ERROR" and crashed.exc_text and "ValueError: boom" in crashed.exc_text


# --- redaction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://default:pw1@host:6379/0", "redis://default:***@host:6379/0"),
        ("rediss://:p%40ss@cache.example:6380", "rediss://:***@cache.example:6380"),
        ("unix://user:secret@/run/v.sock", "unix://user:***@/run/v.sock"),
        (
            "https://x/?password=abc&token=def&api_key=ghi&page=2",
            "https://x/?password=***&token=***&api_key=***&page=2",
        ),
        ("{'password': 'abc', 'user': 'me'}", "{'password': '***', 'user': 'me'}"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_secrets_never_reach_the_file_the_feed_or_gelf(udp_server: UdpGelfServer) -> None:
    setup_logging(gelf_url=f"udp://127.0.0.1:{udp_server.port}")
    got: list[LogEntry] = []
    unsubscribe = add_listener(got.append)
    log.warning("cache at %s", f"redis://default:{SECRET}@db:6379", extra={"url": f"password={SECRET}"})
    try:
        raise ConnectionError(f"AUTH failed for rediss://me:{SECRET}@db")
    except ConnectionError:
        log.exception("connecting failed")
    unsubscribe()
    first = wait_for(udp_server.messages, lambda m: m["short_message"].startswith("cache at"))
    second = wait_for(udp_server.messages, lambda m: m["short_message"] == "connecting failed")
    reset_logging()
    text = (log_dir() / "loupe.jsonl").read_text()
    assert "redis://default:***@db:6379" in text and "AUTH failed" in text
    for where in (text, json.dumps(first), json.dumps(second), repr(got)):
        assert SECRET not in where
    assert first["_url"] == "password=***"


# --- GELF ----------------------------------------------------------------------------------


def test_gelf_udp_levels_fields_and_jobs(udp_server: UdpGelfServer) -> None:
    setup_logging(verbose=True, gelf_url=f"udp://127.0.0.1:{udp_server.port}")
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        log.log(level, "level %s", logging.getLevelName(level), extra={"dataset": "fp9"})
    levels = {}
    for _ in range(4):
        message = wait_for(udp_server.messages, lambda m: m["short_message"].startswith("level "))
        levels[message["short_message"].removeprefix("level ")] = message["level"]
        assert message["_session_id"] == SESSION_ID and message["_dataset"] == "fp9"
        assert message["_logger"] == "engine.test_logs" and "_stack_info" not in message
    assert levels == {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3}

    runner = JobRunner()
    try:
        handle = runner.submit("model", "gelf-job", lambda *, token, report: log.info("job says hi"))
        handle.future.result(timeout=10)
    finally:
        runner.shutdown()
    message = wait_for(udp_server.messages, lambda m: m["short_message"] == "job says hi")
    assert message["_job_id"] == handle.job_id and message["_job"] == "gelf-job"
    finished = wait_for(udp_server.messages, lambda m: m["short_message"] == "job gelf-job finished")
    assert finished["_duration_s"] >= 0 and finished["level"] == 6


def test_gelf_udp_chunks_a_big_message(udp_server: UdpGelfServer) -> None:
    setup_logging(gelf_url=f"udp://127.0.0.1:{udp_server.port}")
    big = os.urandom(6000).hex()  # incompressible: 12 kB even after zlib, so ~10 chunks
    log.info("big %s", big)
    message = wait_for(udp_server.messages, lambda m: m["short_message"].startswith("big "))
    assert message["short_message"] == f"big {big}"
    assert udp_server.chunked >= 1


def test_gelf_tcp_sends_tracebacks_as_full_message(tcp_server: TcpGelfServer) -> None:
    setup_logging(gelf_url=f"tcp://127.0.0.1:{tcp_server.port}")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("dividing failed")
    message = wait_for(tcp_server.messages, lambda m: m["short_message"] == "dividing failed")
    assert message["level"] == 3 and "ZeroDivisionError" in message["full_message"]
    assert "Traceback" in message["full_message"] and message["_session_id"] == SESSION_ID


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_gelf_tls_verifies_the_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=loupe-test",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = TcpGelfServer(tls=context)
    try:
        setup_logging(gelf_url=f"tls://127.0.0.1:{server.port}")  # no CA given: not trusted
        log.info("untrusted")
        time.sleep(0.5)
        reset_logging()
        assert server.messages.empty()
        monkeypatch.setenv("LOUPE_GELF_CA", str(cert))
        setup_logging(gelf_url=f"tls://127.0.0.1:{server.port}")
        log.info("over tls")
        assert wait_for(server.messages, lambda m: m["short_message"] == "over tls")["level"] == 6
    finally:
        reset_logging()
        server.close()


def test_gelf_http() -> None:
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put({"path": self.path, **decode_gelf(body)})
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, name="test-gelf-http", daemon=True)
    thread.start()
    try:
        setup_logging(gelf_url=f"http://127.0.0.1:{server.server_address[1]}/gelf")
        log.warning("over http")
        message = wait_for(received, lambda m: m["short_message"] == "over http")
        assert message["path"] == "/gelf" and message["level"] == 4
    finally:
        reset_logging()
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_bad_gelf_url_is_a_user_error() -> None:
    with pytest.raises(LoupeError, match="GELF URL"):
        setup_logging(gelf_url="ftp://example:1")


def timed_calls(count: int, size: int) -> list[float]:
    """How long each of ``count`` log calls took. The garbage collector is paused: its pauses
    are not what this measures, and on a busy two-core runner they alone can exceed 5 ms."""
    filler = "x" * size
    durations = []
    gc.disable()
    try:
        for i in range(count):
            start = time.perf_counter()
            log.info("record %d %s", i, filler)
            durations.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return durations


def assert_never_blocks(durations: list[float]) -> None:
    """Under 5 ms a call (the issue's bound) for 99 % of calls; none anywhere near a network timeout.

    A single slow call on a shared two-core runner is scheduling noise, not blocking: a call that
    waited on the receiver would take the 2 s socket timeout.
    """
    ordered = sorted(durations)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    assert p99 < 0.005, f"99th percentile log call took {p99 * 1000:.1f} ms"
    assert ordered[-1] < 0.1, f"slowest log call took {ordered[-1] * 1000:.1f} ms"


def test_gelf_receiver_gone_never_blocks_logging() -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    setup = setup_logging(gelf_url=f"tcp://127.0.0.1:{port}")
    durations = timed_calls(1000, 100)
    setup.close()
    assert_never_blocks(durations)


def test_gelf_receiver_that_never_reads_drops_instead_of_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.logs.gelf, "QUEUE_SIZE", 20)
    server = TcpGelfServer(read=False)
    try:
        setup = setup_logging(gelf_url=f"tcp://127.0.0.1:{server.port}")
        durations = timed_calls(1000, 8000)  # 8 MB in all: far more than the socket buffers hold
        assert_never_blocks(durations)
        assert setup.gelf_dropped > 0
        started = time.monotonic()
        setup.close()
        assert time.monotonic() - started < 8, "closing gives up on a stuck receiver"
        assert not [t for t in threading.enumerate() if t.name == engine.logs.gelf.SENDER_THREAD]
    finally:
        server.close()


# --- the Valkey server's log -----------------------------------------------------------------


def test_valkey_log_lines_are_forwarded_with_their_levels() -> None:
    setup = setup_logging(verbose=True)
    path = log_dir() / "valkey.log"
    path.write_text(
        "1:M 01 Jan 2025 10:00:00.000 * Ready to accept connections unix\n"
        "1:M 01 Jan 2025 10:00:01.000 # WARNING overcommit_memory is set to 0\n"
        "1:M 01 Jan 2025 10:00:02.000 . DB 0: 3 keys\n"
        "1:M 01 Jan 2025 10:00:03.000 - Accepted conn"  # no newline yet: not forwarded
    )
    assert forward_server_log(path) == 3
    assert forward_server_log(path) == 0, "nothing twice"
    with path.open("a") as file:
        file.write("ection\n")
    setup.close()  # polls one last time
    lines = [line for line in file_lines() if line["logger"] == "engine.cache.valkey"]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "Ready to accept connections unix"),
        ("WARNING", "WARNING overcommit_memory is set to 0"),
        ("DEBUG", "DB 0: 3 keys"),
        ("INFO", "Accepted connection"),
    ]


# --- loupe logs ----------------------------------------------------------------------------


def loupe(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "desktop.launcher", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_loupe_logs_prints_the_path() -> None:
    process = loupe("logs")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip() == str(log_dir() / "loupe.jsonl")


def test_loupe_logs_follow_tails_the_file() -> None:
    setup = setup_logging()
    log.info("before following")
    process = loupe("logs", "--follow")
    assert process.stdout is not None
    seen = ""
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 30
            while "appended while following" not in seen and time.monotonic() < deadline:
                log.info("appended while following")  # again until the follower has opened the file
                if selector.select(timeout=0.5):
                    seen += process.stdout.readline()
        assert "appended while following" in seen
        assert json.loads(seen.splitlines()[0])["session_id"] == SESSION_ID
        assert "before following" not in seen
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        setup.close()
    assert process.returncode == 0, err
