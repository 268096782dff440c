"""Choosing and opening the cache: remote URL, embedded server, or in-process fallback.

Order: ``--no-cache`` → no cache; ``--redis URL`` or ``LOUPE_REDIS_URL`` → that server;
otherwise the embedded Valkey server in the per-user cache directory; if no server binary
exists for this platform, an in-process cache, with a warning. Loupe never refuses to start
for want of a cache.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from engine.cache.backends import MemoryBackend, RedisBackend
from engine.cache.store import Cache
from engine.errors import LoupeError

log = logging.getLogger(__name__)
DEFAULT_MAXMEMORY = "1gb"


def open_cache(redis_url: str | None = None, no_cache: bool = False) -> Cache:
    """Open the cache the user asked for; never raises for an unreachable server."""
    if no_cache:
        return Cache(None)
    url = redis_url or os.environ.get("LOUPE_REDIS_URL")
    if url:
        backend = RedisBackend(url, f"shared cache at {_redacted(url)}")
        cache = Cache(backend)
        if not cache.available:
            log.warning("cache at %s is unreachable; continuing without it", _redacted(url))
        return cache
    return _open_embedded()


def _open_embedded() -> Cache:
    from engine.cache.server import EmbeddedServer, ServerPaths
    from engine.paths import cache_dir, log_dir

    paths = ServerPaths.in_directory(cache_dir() / "valkey", log_directory=log_dir())
    maxmemory = os.environ.get("LOUPE_CACHE_MAXMEMORY", DEFAULT_MAXMEMORY)
    try:
        server = EmbeddedServer.start_or_attach(paths, maxmemory=maxmemory)
    except LoupeError as exc:
        log.warning("%s Using an in-process cache instead.", exc)
        return Cache(MemoryBackend())
    backend = RedisBackend(server.url, f"embedded Valkey ({paths.directory})")
    cache = Cache(backend, on_close=server.release)
    cache.available  # noqa: B018 (one PING now, so the first status shown is the true one)
    return cache


def _redacted(url: str) -> str:
    """The URL without its password, for logs and the status bar."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
