"""Where cache bytes live: a Redis/Valkey server, an in-process dictionary.

A backend moves bytes and nothing else; :class:`engine.cache.store.Cache` decides what a
failure means (a miss) and what the bytes are (the codec).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from engine.cache.keys import kind_pattern


class Backend(Protocol):
    description: str

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None: ...
    def ping(self) -> bool: ...
    def clear(self, kind: str | None) -> int: ...
    def count(self, kind: str) -> int: ...
    def add_counters(self, key: str, deltas: dict[str, int]) -> None: ...
    def read_counters(self, key: str) -> dict[str, int]: ...
    def memory(self) -> tuple[int, int]: ...
    def close(self) -> None: ...


class RedisBackend:
    """A Redis/Valkey server through redis-py, with short timeouts and no retries of its own."""

    def __init__(self, url: str, description: str) -> None:
        import redis

        self.description = description
        self._client = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
        )

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        values = self._client.mget(list(keys))
        return [v if isinstance(v, bytes) else None for v in values]

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, value in items:
            pipe.set(key, value, ex=ttl)
        pipe.execute()

    def ping(self) -> bool:
        return bool(self._client.ping())

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

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            out = []
            for key in keys:
                value = self._data.get(key)
                if value is not None:
                    self._data.move_to_end(key)
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
