"""Choosing and opening the cache: remote URL, embedded server, or in-process fallback.

Order: ``--no-cache`` → no cache; ``--redis URL`` or ``LOUPE_REDIS_URL`` → that server;
otherwise the embedded Valkey server in the per-user cache directory; if no server binary
exists for this platform, an in-process cache, with a warning. Loupe never refuses to start
for want of a cache: an unreachable server means cache misses, said in the description.

A remote URL is ``redis://`` (plain TCP), ``rediss://`` (TLS; the server's certificate and
host name are always verified, against the system's authorities plus the PEM bundle named
by ``LOUPE_REDIS_CA``) or ``unix://``, with an optional ACL user and password:
``redis://user:password@host:6379/0``. A password absent from the URL is taken from
``LOUPE_REDIS_PASSWORD``, else from the OS keyring (service ``loupe``, the URL's user name
or ``default``) when the optional ``keyring`` package is installed. The password is never
logged, shown or stored: messages and descriptions carry :func:`_redacted` URLs only. Of query
options only :data:`QUERY_OPTIONS` are taken; any other, such as ``ssl_cert_reqs=none``, is
refused in one sentence.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from engine.cache.backends import MemoryBackend, RedisBackend
from engine.cache.keyring_entry import keyring_secret
from engine.cache.store import Cache
from engine.cache.team_key import TeamKeyError, find_team_key
from engine.errors import BadInputError, LoupeError

log = logging.getLogger(__name__)
DEFAULT_MAXMEMORY = "1gb"
KEYRING_SERVICE = "loupe"
SCHEMES = ("redis", "rediss", "unix")
_URL_FORM = (
    "it should look like redis://[user[:password]@]host[:port][/db], rediss://… (TLS) or "
    "unix://[user[:password]@]/path/to/socket; a password containing / # ? or @ must be "
    "percent-encoded, or given in LOUPE_REDIS_PASSWORD instead"
)
# The query options a URL may carry. redis-py hands every query option to its connection as a
# keyword, where it overrides Loupe's own: ``ssl_cert_reqs=none`` would turn verification off.
QUERY_OPTIONS = ("db", "username", "password", "client_name")
# Configuration warnings already given in this process: each is said once, not on every open.
_WARNED: set[str] = set()


def open_cache(
    redis_url: str | None = None,
    no_cache: bool = False,
    *,
    saved_url: str = "",
    saved_maxmemory: str = "1gb",
) -> Cache:
    """Open the cache the user asked for; never raises for an unreachable server.

        ``redis_url`` is the command line's ``--redis``; without it ``LOUPE_REDIS_URL``, then
    ``saved_url`` (the settings' ``redis_url``, saved without a password) is used;
    ``saved_maxmemory`` is the settings' size for the embedded server (``LOUPE_CACHE_MAXMEMORY``
    overrides it). The settings are read by :func:`engine.user.settings.open_configured_cache`,
    which callers use: the cache sits below the user's files and does not read them itself.
        Raises :class:`BadInputError` (one sentence, without the password) only for a URL that
        cannot be read at all. The team key, if any (:mod:`engine.cache.team_key`), seals and
        checks every value; one that is configured but unreadable turns the cache off, with a
        warning, rather than letting it accept values anyone can forge.
    """
    if no_cache:
        return Cache(None)
    url = redis_url or os.environ.get("LOUPE_REDIS_URL") or saved_url
    try:  # before any server starts: a configured key that cannot be read turns the cache off
        team_key = find_team_key(shared=bool(url))
    except TeamKeyError as exc:
        # Running without it would accept values anyone can forge, so no cache rather than that.
        log.warning("%s The cache is off until it can be read.", exc)
        return Cache(None)
    if url:
        cache = _open_remote(url, on_command_line=bool(redis_url))
    else:
        cache = _open_embedded(os.environ.get("LOUPE_CACHE_MAXMEMORY") or saved_maxmemory)
    cache.use_team_key(team_key)
    return cache


def _open_remote(url: str, on_command_line: bool) -> Cache:
    shown = _redacted(url)
    parts = _parsed(url, shown)
    password: str | None = None  # None: redis-py takes the URL's own, or there is none
    if _has_password(parts):
        source = "the URL"
        if on_command_line:
            # /proc/<pid>/cmdline and shell history are readable where the environment is not.
            _warn_once(
                "password-in-url",
                "the cache password is part of the --redis URL, where other users of this computer "
                "can read it; LOUPE_REDIS_PASSWORD or the system keyring keeps it private",
            )
    else:
        password, source = _separate_password(_username(parts))
    log.info("cache password: %s", source)
    if parts.scheme == "redis" and not _is_loopback(parts.hostname or "localhost"):
        _warn_once(
            "plaintext",
            "the connection to the cache at %s is not encrypted: its traffic, including the password, "
            "can be read on the network; use rediss://",
            shown,
        )
    ca_file = _ca_bundle() if parts.scheme == "rediss" else None
    try:
        backend = RedisBackend(url, f"shared cache at {shown}", password=password, ca_file=ca_file)
    except ValueError as exc:  # redis-py's own checks of query options; they never echo a value
        raise BadInputError(f"The cache URL {shown} is not usable: {exc} ({_URL_FORM}).") from None
    cache = Cache(backend)
    if not cache.available:
        log.warning("cache at %s is unreachable; continuing without it", shown)
    return cache


def _open_embedded(maxmemory: str = DEFAULT_MAXMEMORY) -> Cache:
    from engine.cache.server import EmbeddedServer, ServerPaths
    from engine.runtime.paths import cache_dir, log_dir

    paths = ServerPaths.in_directory(cache_dir() / "valkey", log_directory=log_dir())
    try:
        server = EmbeddedServer.start_or_attach(paths, maxmemory=maxmemory)
    except LoupeError as exc:
        log.warning("%s Using an in-process cache instead.", exc)
        return Cache(MemoryBackend())
    backend = RedisBackend(server.url, f"embedded Valkey ({paths.directory})")
    cache = Cache(backend, on_close=server.release)
    cache.available  # noqa: B018 (one PING now, so the first status shown is the true one)
    return cache


def _parsed(url: str, shown: str) -> SplitResult:
    """``url`` split, or a BadInputError naming what is wrong (never quoting the URL's parts)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here, not at first use)
    except ValueError:
        raise BadInputError(
            f"The cache URL {shown} is not usable: its host or port is malformed ({_URL_FORM})."
        ) from None
    if parts.scheme not in SCHEMES:
        raise BadInputError(f"The cache URL {shown} is not usable: unknown scheme ({_URL_FORM}).")
    if parts.scheme == "unix" and not parts.path:
        raise BadInputError(f"The cache URL {shown} is not usable: it names no socket ({_URL_FORM}).")
    # Option names as written, not decoded: redis-py decodes them, so a name spelled with
    # percent escapes (pass%77ord) would pass an allow-list of decoded names unnoticed.
    if ";" in parts.query:  # redis-py splits options on & only: "db=1;password=x" would be one value
        raise BadInputError(f"The cache URL {shown} is not usable: separate its options with &, not ;.")
    for option in [chunk.partition("=")[0] for chunk in re.split(r"[&;]", parts.query) if chunk]:
        if unquote(option).lower().startswith("ssl"):
            raise BadInputError(
                f"The cache URL {shown} is not usable: its option {option[:40]!r} would change how "
                "TLS is checked, and Loupe always verifies the server's certificate and host name "
                "(LOUPE_REDIS_CA can name another certificate authority)."
            )
        if option not in QUERY_OPTIONS:
            raise BadInputError(
                f"The cache URL {shown} is not usable: Loupe does not accept its option "
                f"{option[:40]!r} (only {', '.join(QUERY_OPTIONS)})."
            )
    return parts


def _has_password(parts: SplitResult) -> bool:
    # An empty password ("user:@host") is no password, as redis-py reads it.
    return bool(parts.password) or bool(parse_qs(parts.query).get("password"))


def _username(parts: SplitResult) -> str:
    """The ACL user the URL names (in its authority, else in its query), else ``default``."""
    named = unquote(parts.username or "") or parse_qs(parts.query).get("username", [""])[0]
    return named or "default"


def _separate_password(username: str) -> tuple[str | None, str]:
    """(password, where it came from): ``LOUPE_REDIS_PASSWORD``, else the keyring, else none."""
    from_environment = os.environ.get("LOUPE_REDIS_PASSWORD")
    if from_environment:
        return from_environment, "LOUPE_REDIS_PASSWORD"
    from_keyring = _keyring_password(username)
    if from_keyring:
        return from_keyring, f"the system keyring (service {KEYRING_SERVICE!r}, user {username!r})"
    return None, "none"


def _keyring_password(username: str) -> str | None:
    """The keyring's password for (service ``loupe``, ``username``), or None."""
    return keyring_secret(KEYRING_SERVICE, username)


def _ca_bundle() -> str | None:
    """The PEM file named by ``LOUPE_REDIS_CA``, or None (the system's authorities only).

    A name that is not a file is reported and ignored: verification stays on either way, so
    this can only make a connection fail, never make it insecure.
    """
    named = os.environ.get("LOUPE_REDIS_CA")
    if not named:
        return None
    if not Path(named).is_file():
        log.warning(
            "LOUPE_REDIS_CA=%s is not a file; the cache server's certificate is checked against "
            "the system's certificate authorities only",
            named,
        )
        return None
    return named


def _is_loopback(host: str) -> bool:
    """True for a host that never leaves this computer: ``localhost``, 127.0.0.0/8, ``::1``.

    Judged as written, without a DNS lookup: a name that happens to resolve to a loopback
    address still counts as remote (a needless warning at worst, never a missing one).
    """
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])  # "%eth0": an IPv6 zone
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _warn_once(topic: str, message: str, *args: object) -> None:
    """Log ``message`` at WARNING the first time ``topic`` comes up in this process."""
    if topic in _WARNED:
        return
    _WARNED.add(topic)
    log.warning(message, *args)


def _redacted(url: str) -> str:
    """The URL without its password, for logs, messages and the status bar.

    Works on the raw text rather than a parse, so that a malformed URL (say, a password with
    an unencoded ``/``, which moves the password into the "path") is redacted too: all from
    the user name's colon to the last ``@`` goes, as does any ``password=`` query value.
    """
    scheme, separator, rest = url.partition("://")
    if separator:
        userinfo, at, location = rest.rpartition("@")
        if at and ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{location}"
        url = f"{scheme}://{rest}"
    return re.sub(
        r"([?&;])([^=&;#]*)=([^&;#]*)",
        lambda m: f"{m[1]}{m[2]}=***" if unquote(m[2]).lower() == "password" else m[0],
        url,
    )


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password, and the password a connection to it would use.

    The password is the URL's own, else ``LOUPE_REDIS_PASSWORD``, else the keyring's, as
    :func:`open_cache` takes it; None when there is none. A cluster submission uses this to send
    the password to its workers as a secret while the URL travels in the clear.
    """
    parts = _parsed(url, _redacted(url))
    if not _has_password(parts):
        return url, _separate_password(_username(parts))[0]
    password = unquote(parts.password or "") or parse_qs(parts.query)["password"][0]
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = "&".join(
        chunk for chunk in re.split(r"[&;]", parts.query) if chunk and chunk.partition("=")[0] != "password"
    )
    return parts._replace(netloc=netloc, query=query).geturl(), password


def redacted(url: str) -> str:
    """The URL as messages may show it (no password): see :func:`_redacted`."""
    return _redacted(url)


def ca_bundle() -> str | None:
    """The PEM file ``LOUPE_REDIS_CA`` names, or None: see :func:`_ca_bundle`."""
    return _ca_bundle()


def is_loopback(host: str) -> bool:
    """True for a host that never leaves this computer: see :func:`_is_loopback`."""
    return _is_loopback(host)
