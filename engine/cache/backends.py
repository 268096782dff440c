"""Where cache bytes live: a Redis/Valkey server, an in-process dictionary.

A backend moves bytes and nothing else; :class:`engine.cache.store.Cache` decides what a
failure means (a miss) and what the bytes are (the codec).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from engine.cache.keys import kind_pattern

if TYPE_CHECKING:
    from redis.retry import Retry

# Every network wait is bounded: a cache that answers slower than this is worth less than
# recomputing, and the GUI's job lanes must not stall behind it.
TIMEOUT_S = 2.0
HEALTH_CHECK_S = 30  # an idle pooled connection is PINGed before reuse after this long
RETRIES = 2
T = TypeVar("T")


class Backend(Protocol):
    description: str

    def get_many(self, keys: Sequence[str], max_bytes: int | None = None) -> list[bytes | None]:
        """The values of ``keys`` (None: absent), each cut after ``max_bytes + 1`` bytes.

        A value longer than ``max_bytes`` thus arrives one byte too long (and fails the codec's
        size check) instead of whole: a writer cannot make a reader hold a 512 MB value.
        """
        ...

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None: ...
    def ping(self) -> bool: ...
    def present(self, keys: Sequence[str]) -> int: ...
    def clear(self, kind: str | None) -> int: ...
    def count(self, kind: str) -> int: ...
    def add_counters(self, key: str, deltas: dict[str, int]) -> None: ...
    def read_counters(self, key: str) -> dict[str, int]: ...
    def memory(self) -> tuple[int, int]: ...
    def close(self) -> None: ...


def retry_policy() -> Retry:
    """Two more tries, 0.1 s then 0.2 s later, of a step that failed with a transient ConnectionError.

    Such an error comes at once (refused, reset, closed by a restarted server, a TLS
    handshake cut off), so retrying it costs well under a second and rides out a server
    restart or a stale pooled connection. Not retried: a rejected password or ACL (it will
    be rejected again, and every try lands in the server's ACL log), and a TimeoutError,
    which already cost ``TIMEOUT_S`` and would cost three times that per operation from a
    silent server (stopped, overloaded, a dropped route), where the cache's contract is a few
    seconds at most before :class:`engine.cache.store.Cache` switches itself off. redis-py
    applies the policy to connecting and again to the command, so a server that accepts and
    drops every connection sees at most (1 + RETRIES)² = 9 of them, about 1.2 s, per operation.
    """
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import AuthenticationError, AuthorizationError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    class Rejected(Exception):
        """Carries an AUTH/ACL rejection past the retry loop, which retries every ConnectionError."""

        def __init__(self, error: Exception) -> None:
            self.error = error

    class TransientRetry(Retry):
        # Wraps ``do`` rather than passing ``is_retryable``: call_with_retry's signature has
        # grown across redis-py releases, and this works with each of them.
        def call_with_retry(self, do: Callable[[], T], fail: Any, *args: Any, **kwargs: Any) -> T:
            def attempt() -> T:
                try:
                    return do()
                except (AuthenticationError, AuthorizationError) as error:
                    raise Rejected(error) from error

            try:
                return super().call_with_retry(attempt, fail, *args, **kwargs)
            except Rejected as rejected:
                raise rejected.error from None

    return TransientRetry(
        ExponentialBackoff(cap=0.5, base=0.05), retries=RETRIES, supported_errors=(RedisConnectionError,)
    )


class RedisBackend:
    """A Redis/Valkey server through redis-py: bounded timeouts, health checks, bounded retries.

    ``url`` is ``redis://``, ``rediss://`` or ``unix://``, as redis-py reads it. ``password``
    is used only when the URL carries none (redis-py lets the URL win). For ``rediss://`` the
    server's certificate and host name are always verified, against the system's authorities
    plus ``ca_file`` when given. Construction does no I/O and raises ``ValueError`` only for
    a URL redis-py cannot read. Every operation finishes or raises a redis-py error within
    about ``TIMEOUT_S`` plus ``RETRIES`` quick retries (a host name's DNS lookup, which no
    socket timeout covers, aside).
    """

    def __init__(
        self, url: str, description: str, *, password: str | None = None, ca_file: str | None = None
    ) -> None:
        import redis

        self.description = description
        options: dict[str, Any] = {}
        if password is not None:
            options["password"] = password
        scheme = urlsplit(url).scheme
        if scheme in ("redis", "rediss"):
            # TCP keepalive lets the kernel notice a peer that vanished without a FIN; a
            # Unix socket has no such option (redis-py refuses it there).
            options["socket_keepalive"] = True
        if scheme == "rediss":
            # redis-py's defaults already verify; stating them keeps a future default change
            # from silently turning verification off.
            options.update(ssl_cert_reqs="required", ssl_check_hostname=True)
            if ca_file is not None:
                options["ssl_ca_certs"] = ca_file
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            retry=retry_policy(),
            **options,
        )

    def get_many(self, keys: Sequence[str], max_bytes: int | None = None) -> list[bytes | None]:
        if max_bytes is None:
            values = self._client.mget(list(keys))
            return [v if isinstance(v, bytes) else None for v in values]
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.getrange(key, 0, max_bytes)  # end inclusive: max_bytes + 1 bytes at most
        out: list[bytes | None] = []
        for reply in pipe.execute(raise_on_error=False):
            # A key holding a hash or a list (anyone can write one) is a miss for that key only;
            # any other error (the connection, an ACL without GETRANGE) is the cache's.
            if isinstance(reply, Exception) and not str(reply).startswith("WRONGTYPE"):
                raise reply
            out.append(reply if isinstance(reply, bytes) and reply else None)  # b"": no such key
        return out

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, value in items:
            pipe.set(key, value, ex=ttl)
        pipe.execute()

    def ping(self) -> bool:
        return bool(self._client.ping())

    def present(self, keys: Sequence[str]) -> int:
        # EXISTS with many keys answers how many exist: one round trip per chunk, no value read.
        return sum(
            int(self._client.exists(*keys[start : start + 10_000])) for start in range(0, len(keys), 10_000)
        )

    def clear(self, kind: str | None) -> int:
        removed = 0
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=kind_pattern(kind), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += int(self._client.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(self._client.unlink(*batch))
        return removed

    def count(self, kind: str) -> int:
        return sum(1 for _ in self._client.scan_iter(match=kind_pattern(kind), count=1000))

    def add_counters(self, key: str, deltas: dict[str, int]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for field, delta in deltas.items():
            if delta:
                pipe.hincrby(key, field, delta)
        pipe.expire(key, 365 * 86400)  # every key has a TTL; each flush renews this one
        pipe.execute()

    def read_counters(self, key: str) -> dict[str, int]:
        raw = self._client.hgetall(key)
        return {k.decode(): int(v) for k, v in raw.items()}  # type: ignore[union-attr]

    def memory(self) -> tuple[int, int]:
        """(bytes used, maxmemory; 0 when unlimited) as the server reports them."""
        info = self._client.info("memory")
        return int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))

    def close(self) -> None:
        self._client.close()


class MemoryBackend:
    """An in-process LRU dictionary, used when no server can be had; bounded in bytes."""

    description = "in-process cache (no Valkey/Redis server available; results last until exit)"

    def __init__(self, max_bytes: int = 512 << 20) -> None:
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str], max_bytes: int | None = None) -> list[bytes | None]:
        with self._lock:
            out = []
            for key in keys:
                value = self._data.get(key)
                if value is not None:
                    self._data.move_to_end(key)
                    value = value if max_bytes is None else value[: max_bytes + 1]
                out.append(value)
            return out

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None:
        with self._lock:
            for key, value in items:
                old = self._data.pop(key, None)
                self._bytes += len(value) - (len(old) if old else 0)
                self._data[key] = value
            while self._bytes > self._max_bytes and self._data:
                _, dropped = self._data.popitem(last=False)
                self._bytes -= len(dropped)

    def ping(self) -> bool:
        return True

    def present(self, keys: Sequence[str]) -> int:
        with self._lock:
            return sum(1 for key in keys if key in self._data)

    def clear(self, kind: str | None) -> int:
        prefix = kind_pattern(kind).rstrip("*")
        with self._lock:
            doomed = [k for k in self._data if kind is None or k.startswith(prefix)]
            for key in doomed:
                self._bytes -= len(self._data.pop(key))
            return len(doomed)

    def count(self, kind: str) -> int:
        prefix = kind_pattern(kind).rstrip("*")
        with self._lock:
            return sum(1 for key in self._data if key.startswith(prefix))

    def add_counters(self, key: str, deltas: dict[str, int]) -> None:
        with self._lock:
            for field, delta in deltas.items():
                self._counters[field] = self._counters.get(field, 0) + delta

    def read_counters(self, key: str) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def memory(self) -> tuple[int, int]:
        with self._lock:
            return self._bytes, self._max_bytes

    def close(self) -> None:
        pass
