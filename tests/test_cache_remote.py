"""A shared / remote cache (DESIGN.md §3, §6): ACL users, passwords kept secret, TLS, retries.

Every server is a real ``valkey-server`` started here on loopback (TCP or a Unix socket)
and killed by a fixture finaliser. The bundled binary is built without TLS, so ``rediss://``
is exercised twice: against valkey's own TLS port (skipped, with the binary's reason, where
it has none) and through a TLS-terminating relay in front of a plain server, which is how
managed Redis services and stunnel front ends look to a client. Nothing here sends a packet
off this machine: the one non-loopback host name is resolved to 127.0.0.1 by the test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine.cache import connect as connect_module
from engine.cache import store as store_module
from engine.cache.backends import RETRIES
from engine.cache.connect import _is_loopback, _redacted, open_cache
from engine.cache.keys import cache_key
from engine.cache.server import find_server_binary
from engine.cache.store import Cache
from engine.errors import BadInputError
from tests.conftest import free_port, timed

ROOT = Path(__file__).resolve().parent.parent
USER = "loupe"
SECRET = "s3cret-Loupe-7Qx"  # distinctive, so finding it anywhere in output is never a coincidence
ACL = ["--user", USER, "on", f">{SECRET}", "~loupe:*", "+@all", "--user", "default", "off"]
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


# --- helpers -----------------------------------------------------------------------------


def vector(seed: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal(384).astype(np.float32)


def round_trips(cache: Cache, seed: int = 0) -> bool:
    """True when an array written through ``cache`` reads back equal."""
    key = cache_key("emb", {"remote-test": seed, "at": time.time_ns()})
    written = vector(seed)
    timed(lambda: cache.set("emb", key, written))
    found = timed(lambda: cache.get(key))
    return found is not None and np.array_equal(found.array, written)


def works_as_misses(cache: Cache) -> None:
    """Assert ``cache`` is off, says so, and answers every call with a quick miss."""
    key = cache_key("emb", {"remote-test": "miss"})
    for _ in range(2):
        timed(lambda: cache.set("emb", key, vector(1)))
        assert timed(lambda: cache.get(key)) is None
        assert timed(cache.count_by_kind) == {}
    assert not cache.available
    assert "unreachable" in cache.description


@dataclass
class Server:
    """One valkey-server process; ``probe`` holds redis.Redis arguments that reach it."""

    directory: Path
    options: list[str]
    probe: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def start(self) -> None:
        """Start it and wait until it answers; skips the test if it cannot serve TLS."""
        command = [str(find_server_binary()), *self.options]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        # No retries: redis-py's default back-off would stretch each failed probe to seconds.
        client = redis.Redis(
            socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0), **self.probe
        )
        deadline = time.monotonic() + 10
        try:
            while True:
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping():
                        return
                if self.process.poll() is not None:
                    self._explain_exit()
                assert time.monotonic() < deadline, f"valkey-server did not answer: {self.log.read_text()}"
                time.sleep(0.02)
        finally:
            client.close()

    def _explain_exit(self) -> None:
        text = self.log.read_text(errors="replace")
        no_tls = re.search(r"# (.*TLS.*)$", text, flags=re.MULTILINE)
        if "--tls-port" in self.options and no_tls:
            pytest.skip(f"bundled valkey-server has no TLS: {no_tls.group(1)}")
        raise AssertionError(f"valkey-server exited at start-up:\n{text}")

    def send(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL ends a SIGSTOPped process too
            self.process.wait(timeout=10)


StartServer = Callable[[str, list[str], dict[str, Any]], Server]


@pytest.fixture
def start_server(loupe_home: Path) -> Iterator[StartServer]:
    """A factory of running servers, each in ``loupe_home/<name>``, killed after the test whatever happens."""
    started: list[Server] = []

    def start(name: str, options: list[str], probe: dict[str, Any]) -> Server:
        directory = loupe_home / name
        directory.mkdir()
        server = Server(directory, options, probe)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


@dataclass
class AclServer:
    """A server whose only user is ``loupe`` with ``SECRET`` (default user off), on TCP and a socket."""

    server: Server
    port: int
    socket: Path

    def url(self, with_password: bool = True, transport: str = "tcp") -> str:
        userinfo = f"{USER}:{SECRET}@" if with_password else f"{USER}@"
        if transport == "unix":
            return f"unix://{userinfo}{self.socket}"
        return f"redis://{userinfo}127.0.0.1:{self.port}"


@pytest.fixture
def acl_server(loupe_home: Path, start_server: StartServer) -> AclServer:
    port = free_port()
    socket_path = loupe_home / "acl" / "v.sock"
    options = ["--port", str(port), "--bind", "127.0.0.1", "--unixsocket", str(socket_path)]
    options += ["--unixsocketperm", "700", *ACL]
    probe = {"host": "127.0.0.1", "port": port, "username": USER, "password": SECRET}
    return AclServer(start_server("acl", options, probe), port, socket_path)


@pytest.fixture(autouse=True)
def only_what_the_test_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """No password, CA or keyring from the machine running the tests; warnings fresh per test."""
    for name in ("LOUPE_REDIS_PASSWORD", "LOUPE_REDIS_CA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "keyring", None)  # None in sys.modules: "not installed"
    monkeypatch.setattr(connect_module, "_WARNED", set())


def no_secret_in(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


# --- ACL user and password ---------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_acl_user_with_password_in_the_url(
    acl_server: AclServer, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.DEBUG)
    cache = timed(lambda: open_cache(acl_server.url(transport=transport)))
    try:
        assert cache.available
        assert round_trips(cache)
        assert cache.description.startswith(
            f"shared cache at {transport.replace('tcp', 'redis')}://loupe:***@"
        )
        no_secret_in(cache.description, cache.totals().summary())
    finally:
        cache.close()
    no_secret_in(caplog.text)


def test_wrong_password_is_an_unavailable_cache(
    acl_server: AclServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = acl_server.url().replace(SECRET, "not-the-password")
    cache = timed(lambda: open_cache(url))
    try:
        works_as_misses(cache)
        no_secret_in(cache.description)
        assert "not-the-password" not in cache.description
    finally:
        cache.close()
    assert "not-the-password" not in caplog.text


def test_no_password_for_an_acl_server_is_an_unavailable_cache(acl_server: AclServer) -> None:
    cache = timed(lambda: open_cache(acl_server.url(with_password=False)))
    try:
        works_as_misses(cache)
    finally:
        cache.close()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_password_from_the_environment(
    acl_server: AclServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    transport: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LOUPE_REDIS_PASSWORD", SECRET)
    monkeypatch.setenv("LOUPE_REDIS_URL", acl_server.url(with_password=False, transport=transport))
    cache = timed(open_cache)
    try:
        assert cache.available and round_trips(cache)
        no_secret_in(cache.description)
    finally:
        cache.close()
    no_secret_in(caplog.text)
    assert "cache password: LOUPE_REDIS_PASSWORD" in caplog.text
    assert "part of the --redis URL" not in caplog.text


def fake_keyring(answer: Callable[[str, str], str | None]) -> tuple[SimpleNamespace, list[tuple[str, str]]]:
    """A stand-in for the ``keyring`` module and the (service, user) pairs it was asked for."""
    asked: list[tuple[str, str]] = []

    def get_password(service: str, username: str) -> str | None:
        asked.append((service, username))
        return answer(service, username)

    return SimpleNamespace(get_password=get_password), asked


def passwords_asked(asked: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The password lookups (service ``loupe``); the cache's team key has a service of its own."""
    return [pair for pair in asked if pair[0] == "loupe"]


def test_password_from_the_keyring(
    acl_server: AclServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    module, asked = fake_keyring(lambda service, user: SECRET if (service, user) == ("loupe", USER) else None)
    monkeypatch.setitem(sys.modules, "keyring", module)
    cache = timed(lambda: open_cache(acl_server.url(with_password=False)))
    try:
        assert cache.available and round_trips(cache)
    finally:
        cache.close()
    assert passwords_asked(asked) == [("loupe", USER)]
    no_secret_in(caplog.text, cache.description)


def test_the_environment_wins_over_the_keyring(
    acl_server: AclServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, asked = fake_keyring(lambda service, user: "from-the-keyring")
    monkeypatch.setitem(sys.modules, "keyring", module)
    monkeypatch.setenv("LOUPE_REDIS_PASSWORD", SECRET)
    cache = timed(lambda: open_cache(acl_server.url(with_password=False)))
    try:
        assert cache.available
    finally:
        cache.close()
    assert passwords_asked(asked) == []


def test_a_failing_keyring_counts_as_empty(acl_server: AclServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(service: str, user: str) -> str | None:
        raise RuntimeError("no recommended backend was available")

    module, asked = fake_keyring(broken)
    monkeypatch.setitem(sys.modules, "keyring", module)
    # No user in the URL: the keyring is asked for the "default" user.
    url = f"redis://127.0.0.1:{acl_server.port}"
    cache = timed(lambda: open_cache(url))
    try:
        works_as_misses(cache)
    finally:
        cache.close()
    assert passwords_asked(asked) == [("loupe", "default")]


def run_cli(url: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "desktop.launcher", "cache", "stats", "--redis", url, "--verbose"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("where", ["url", "environment", "wrong"])
def test_the_cli_never_prints_the_password(acl_server: AclServer, where: str) -> None:
    if where == "url":
        done = run_cli(acl_server.url())
    elif where == "environment":
        done = run_cli(acl_server.url(with_password=False), {"LOUPE_REDIS_PASSWORD": SECRET})
    else:
        done = run_cli(acl_server.url(with_password=False), {"LOUPE_REDIS_PASSWORD": SECRET + "-wrong"})
    assert done.returncode == 0, done.stderr
    assert f"cache: shared cache at redis://loupe{':***' if where == 'url' else ''}@127.0.0.1:" in done.stdout
    assert ("unreachable" in done.stdout) == (where == "wrong")
    no_secret_in(done.stdout, done.stderr)
    assert ("part of the --redis URL" in done.stderr) == (where == "url")


def test_password_in_the_command_line_url_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://{USER}:{SECRET}@127.0.0.1:{free_port()}"  # nothing listens: no server needed
    with caplog.at_level(logging.WARNING, logger="engine.cache.connect"):
        for _ in range(2):
            timed(lambda: open_cache(url)).close()
    warnings = [r for r in caplog.records if "part of the --redis URL" in r.getMessage()]
    assert len(warnings) == 1
    no_secret_in(caplog.text)


def test_password_in_the_environment_url_is_not_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOUPE_REDIS_URL", f"redis://{USER}:{SECRET}@127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="engine.cache.connect"):
        timed(open_cache).close()
    assert "part of the --redis URL" not in caplog.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://loupe:pw@cache:6380/2", "redis://loupe:***@cache:6380/2"),
        ("rediss://:pw@cache", "rediss://:***@cache"),
        ("unix://loupe:pw@/run/v.sock?db=1", "unix://loupe:***@/run/v.sock?db=1"),
        ("unix:///run/v.sock?db=1&password=pw", "unix:///run/v.sock?db=1&password=***"),
        ("redis://loupe:p/w#x@cache:1", "redis://loupe:***@cache:1"),  # unencoded / and #
        ("redis://loupe:p@w@cache", "redis://loupe:***@cache"),
        ("redis://loupe@cache:6379", "redis://loupe@cache:6379"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_redacted(url: str, shown: str) -> None:
    assert _redacted(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        f"redis://loupe:pa/{SECRET}@cache:6379",  # an unencoded "/" makes "pa" the port
        f"redis://loupe:{SECRET}@cache:port",
        f"http://loupe:{SECRET}@cache:6379",
        f"unix://loupe:{SECRET}@",
    ],
)
def test_an_unreadable_url_is_bad_input_without_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BadInputError, match="is not usable") as raised:
        open_cache(url)
    no_secret_in(str(raised.value), caplog.text)


# --- plain TCP to another host -----------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("10.1.2.3", False),
        ("192.168.0.10", False),
        ("0.0.0.0", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("cache.example.com", False),
        ("localhost.example.com", False),
        ("foo.localhost", False),  # resolved by DNS on most systems, so not trusted as loopback
        ("127.0.0.1.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback


def test_plain_tcp_to_another_host_warns_once(
    acl_server: AclServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-loopback host name, resolved by the test to this machine: a real connection, no traffic out."""
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "cache.example.test":
            host = "127.0.0.1"
        elif not _is_loopback(str(host)):
            raise socket.gaierror(socket.EAI_NONAME, f"this test resolves no other name ({host})")
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    remote = acl_server.url().replace("127.0.0.1", "cache.example.test")
    with caplog.at_level(logging.WARNING, logger="engine.cache.connect"):
        for _ in range(2):
            cache = timed(lambda: open_cache(remote))
            try:
                assert cache.available and round_trips(cache)
            finally:
                cache.close()
        local = timed(lambda: open_cache(acl_server.url()))
        local.close()
    warnings = [r.getMessage() for r in caplog.records if "not encrypted" in r.getMessage()]
    assert len(warnings) == 1
    assert "cache.example.test" in warnings[0] and "rediss://" in warnings[0]
    no_secret_in(caplog.text)


def test_loopback_and_sockets_do_not_warn(acl_server: AclServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.cache.connect"):
        for url in (acl_server.url(), acl_server.url(transport="unix")):
            timed(lambda url=url: open_cache(url)).close()
        localhost = acl_server.url().replace("127.0.0.1", "localhost")
        timed(lambda: open_cache(localhost)).close()
    assert "not encrypted" not in caplog.text


# --- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path  # signs ``cert``
    other_ca: Path  # signs nothing here: a server vouched for by it must be refused
    cert: Path  # for IP 127.0.0.1 only, so "localhost" does not match it
    key: Path


OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA, a second CA, and a server certificate signed by the first (openssl CLI, EC keys)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make test certificates")
    directory = tmp_path_factory.mktemp("tls")
    config = directory / "openssl.cnf"
    config.write_text(OPENSSL_CONFIG)
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True, timeout=60)

    ca_options = ["req", "-x509", "-config", str(config), "-extensions", "ca_ext", "-days", "2", *new_key]
    for name in ("ca", "other-ca"):
        run(*ca_options, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=Loupe test {name}")
    run("req", "-new", "-config", str(config), *new_key, "-keyout", "server.key", "-out", "server.csr")
    sign = ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]
    run(*sign, "-out", "server.pem", "-days", "2", "-extfile", str(config), "-extensions", "server_ext")
    return Certificates(
        directory / "ca.pem", directory / "other-ca.pem", directory / "server.pem", directory / "server.key"
    )


@dataclass
class Listener:
    """A loopback TCP listener handing each connection to ``handle`` on a thread of its own.

    ``handle`` must return soon after ``stopping`` is set; :meth:`close` sets it and joins
    every thread, so no test leaves one behind.
    """

    handle: Callable[[socket.socket, threading.Event], None]
    accepted: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.port = int(self._socket.getsockname()[1])
        self._acceptor = threading.Thread(target=self._accept, name="test-listener", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            worker = threading.Thread(
                target=self._serve, args=(connection,), name="test-listener", daemon=True
            )
            self._threads.append(worker)
            worker.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):  # ssl.SSLError is an OSError
            self.handle(connection, self.stopping)

    def close(self) -> None:
        self.stopping.set()
        self._acceptor.join(timeout=10)
        for worker in self._threads:
            worker.join(timeout=10)
        self._socket.close()
        assert not self._acceptor.is_alive() and not any(w.is_alive() for w in self._threads)


@pytest.fixture
def listen() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], Listener]]:
    started: list[Listener] = []

    def make(handle: Callable[[socket.socket, threading.Event], None]) -> Listener:
        started.append(Listener(handle))
        return started[-1]

    yield make
    for listener in started:
        listener.close()


def tls_relay(certificates: Certificates, port: int) -> Callable[[socket.socket, threading.Event], None]:
    """A handler that ends TLS (with ``certificates``) and relays the bytes to loopback ``port``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert, certificates.key)

    def relay(connection: socket.socket, stopping: threading.Event) -> None:
        connection.settimeout(2)
        with (
            context.wrap_socket(connection, server_side=True) as tls,
            socket.create_connection(("127.0.0.1", port), timeout=2) as upstream,
        ):
            while not stopping.is_set():
                readable, _, _ = select.select([tls, upstream], [], [], 0.05)
                if tls in readable or tls.pending():
                    data = tls.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                if upstream in readable:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    tls.sendall(data)

    return relay


@pytest.fixture(params=["valkey-tls-port", "tls-relay"])
def tls_port(
    request: pytest.FixtureRequest,
    certificates: Certificates,
    start_server: StartServer,
    listen: Callable[[Callable[[socket.socket, threading.Event], None]], Listener],
) -> int:
    """A loopback port speaking TLS with ``certificates.cert`` in front of a server without a password."""
    if request.param == "tls-relay":
        port = free_port()
        start_server(
            "plain", ["--port", str(port), "--bind", "127.0.0.1"], {"host": "127.0.0.1", "port": port}
        )
        return listen(tls_relay(certificates, port)).port
    port = free_port()
    files = [("--tls-cert-file", certificates.cert), ("--tls-key-file", certificates.key)]
    files += [("--tls-ca-cert-file", certificates.ca)]
    options = ["--port", "0", "--bind", "127.0.0.1", "--tls-port", str(port), "--tls-auth-clients", "no"]
    options += [str(part) for pair in files for part in pair]
    probe = {"host": "127.0.0.1", "port": port, "ssl": True, "ssl_ca_certs": str(certificates.ca)}
    start_server("tls", options, probe)
    return port


@pytest.mark.parametrize(
    ("ca", "host", "works"),
    [
        ("ca", "127.0.0.1", True),
        (None, "127.0.0.1", False),  # the system's authorities do not know the test CA
        ("other_ca", "127.0.0.1", False),
        ("ca", "localhost", False),  # the certificate is for 127.0.0.1: host name checked
    ],
)
def test_rediss_verifies_the_server(
    tls_port: int,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    ca: str | None,
    host: str,
    works: bool,
) -> None:
    if ca is not None:
        monkeypatch.setenv("LOUPE_REDIS_CA", str(getattr(certificates, ca)))
    with caplog.at_level(logging.WARNING, logger="engine.cache.connect"):
        cache = timed(lambda: open_cache(f"rediss://{host}:{tls_port}"))
    try:
        if works:
            assert cache.available and round_trips(cache)
        else:
            works_as_misses(cache)
    finally:
        cache.close()
    assert "not encrypted" not in caplog.text


def test_a_missing_ca_file_is_reported_and_verification_stays_on(
    tls_port: int, monkeypatch: pytest.MonkeyPatch, loupe_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOUPE_REDIS_CA", str(loupe_home / "no-such-ca.pem"))
    with caplog.at_level(logging.WARNING, logger="engine.cache.connect"):
        cache = timed(lambda: open_cache(f"rediss://127.0.0.1:{tls_port}"))
    try:
        works_as_misses(cache)
    finally:
        cache.close()
    assert "LOUPE_REDIS_CA" in caplog.text and "not a file" in caplog.text


def test_rediss_to_a_plain_server_fails_cleanly(acl_server: AclServer) -> None:
    url = acl_server.url().replace("redis://", "rediss://")
    cache = timed(lambda: open_cache(url))
    try:
        works_as_misses(cache)
    finally:
        cache.close()


# --- timeouts and retries ----------------------------------------------------------------


def test_a_stopped_server_costs_one_timeout_then_recovers(
    acl_server: AclServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_RETRY_AFTER_S", 0.2)
    cache = timed(lambda: open_cache(acl_server.url()))
    try:
        assert round_trips(cache, seed=1)
        acl_server.server.send(signal.SIGSTOP)  # alive but silent: only a timeout can tell
        try:
            key = cache_key("emb", {"stopped": 1})
            assert timed(lambda: cache.get(key)) is None
            assert not cache.available and "unreachable" in cache.description
            timed(lambda: cache.set("emb", key, vector(2)))  # within the retry delay: no I/O
        finally:
            acl_server.server.send(signal.SIGCONT)
        time.sleep(0.3)  # past the retry delay
        assert round_trips(cache, seed=3)
        assert cache.available and "unreachable" not in cache.description
    finally:
        cache.close()


def test_a_restarted_server_is_reconnected_to_without_a_miss(acl_server: AclServer) -> None:
    cache = timed(lambda: open_cache(acl_server.url()))
    try:
        assert round_trips(cache)
        acl_server.server.kill()
        acl_server.server.start()  # same port, empty (no persistence)
        # The pooled connection is dead: the client reconnects rather than switching the cache off.
        assert round_trips(cache, seed=4)
        assert cache.available and cache.stats.errors == 0
    finally:
        cache.close()


def test_retries_are_bounded(
    listen: Callable[[Callable[[socket.socket, threading.Event], None]], Listener],
) -> None:
    """A server that hangs up on every connection is retried, boundedly and quickly, then a miss.

    redis-py applies the retry policy to connecting and again to the command, hence up to
    (1 + RETRIES)² connections for one operation.
    """

    def hang_up(connection: socket.socket, stopping: threading.Event) -> None:
        connection.close()

    listener = listen(hang_up)
    cache = timed(lambda: open_cache(f"redis://127.0.0.1:{listener.port}"))
    try:
        assert not cache.available
        tries = listener.accepted
        assert 1 < tries <= (1 + RETRIES) ** 2
        works_as_misses(cache)  # within the retry delay: no further connection
        assert listener.accepted == tries
    finally:
        cache.close()
