"""The cache as the engine uses it: typed arrays in, typed arrays out, never an exception.

:class:`Cache` wraps one backend (a Redis/Valkey client, an in-process dictionary, or
nothing) and turns every failure into a miss: a value that fails the codec's checks is
logged and treated as absent (the caller recomputes and overwrites it), and a server that
stops answering switches the cache off until a back-off delay has passed, when one cheap
PING decides whether writes resume. Jobs therefore finish with correct results whether or
not the cache is there. Thread-safe: redis-py's pool and the dictionary's lock make every
method callable from any job lane.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from engine.cache import codec
from engine.cache.keys import KINDS, kind_pattern

log = logging.getLogger(__name__)

# How long each kind of value lives. Embeddings are the costliest to recompute.
TTL_SECONDS = {"emb": 90 * 86400, "proj": 90 * 86400, "attn": 30 * 86400}
_BATCH = 500
_RETRY_AFTER_S = 5.0


class Backend(Protocol):
    description: str

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: int) -> None: ...
    def ping(self) -> bool: ...
    def clear(self, kind: str | None) -> int: ...
    def count(self, kind: str) -> int: ...
    def close(self) -> None: ...


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    invalid: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    errors: int = 0


class Cache:
    """Array-valued cache over one backend; see the module docstring for the failure rules."""

    def __init__(self, backend: Backend | None, on_close: Callable[[], None] | None = None) -> None:
        self._backend = backend
        self._on_close = on_close
        # Not yet known: the first use PINGs (retry_at is 0), so an unreachable server is
        # reported from the start rather than after the first failed operation.
        self._available = False
        self._checked = False
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self.stats = CacheStats()

    @property
    def description(self) -> str:
        if self._backend is None:
            return "cache off"
        # Never does I/O (the GUI reads this on its thread): the state is the last one seen.
        state = "" if self._available else " (unreachable: results are not being cached)"
        return self._backend.description + state

    @property
    def available(self) -> bool:
        return self._backend is not None and self._usable()

    def get_arrays(self, keys: Sequence[str]) -> list[codec.Decoded | None]:
        """Decoded values for ``keys``, None for each miss or invalid value."""
        raw = self._get_raw(keys)
        out: list[codec.Decoded | None] = []
        invalid: list[tuple[str, str]] = []
        for key, value in zip(keys, raw, strict=True):
            try:
                out.append(None if value is None else codec.decode(value))
            except codec.CodecError as exc:
                invalid.append((key, str(exc)))
                out.append(None)
        if invalid:
            # One line per call, not per value: a stale cache can hold thousands of them.
            key, reason = invalid[0]
            log.warning(
                "%d cache value(s) failed their checks and will be recomputed (%s: %s)",
                len(invalid),
                key,
                reason,
            )
            with self._lock:
                self.stats.invalid += len(invalid)
        with self._lock:
            found = sum(v is not None for v in out)
            self.stats.hits += found
            self.stats.misses += len(out) - found
        return out

    def get_array(self, key: str) -> codec.Decoded | None:
        return self.get_arrays([key])[0]

    def put_arrays(
        self,
        kind: str,
        items: Sequence[tuple[str, npt.NDArray[Any]]],
        codec_name: codec.Codec = "zstd",
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store arrays under their keys with the TTL of ``kind``; failures are logged only."""
        if not items or not self._usable():
            return
        encoded = [(key, codec.encode(array, codec_name, meta)) for key, array in items]
        assert self._backend is not None
        try:
            for start in range(0, len(encoded), _BATCH):
                self._backend.set_many(encoded[start : start + _BATCH], TTL_SECONDS.get(kind, 30 * 86400))
        except Exception as exc:  # any client error: the cache is optional, the result is not
            self._mark_unavailable(exc)
            return
        with self._lock:
            self.stats.bytes_written += sum(len(v) for _, v in encoded)

    def put_array(self, kind: str, key: str, array: npt.NDArray[Any], **kwargs: Any) -> None:
        self.put_arrays(kind, [(key, array)], **kwargs)

    def clear(self, kind: str | None = None) -> int:
        if self._backend is None or not self._usable():
            return 0
        return self._backend.clear(kind)

    def count_by_kind(self) -> dict[str, int]:
        """How many values of each kind the cache holds (a SCAN: seconds for millions of keys)."""
        if self._backend is None or not self._usable():
            return {}
        return {kind: self._backend.count(kind) for kind in KINDS}

    def close(self) -> None:
        """Close the client and, for the embedded server, release this process's hold on it."""
        backend, self._backend, self._available = self._backend, None, False
        if backend is not None:
            backend.close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def _get_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys or not self._usable():
            return [None] * len(keys)
        assert self._backend is not None
        out: list[bytes | None] = []
        try:
            for start in range(0, len(keys), _BATCH):
                out.extend(self._backend.get_many(keys[start : start + _BATCH]))
        except Exception as exc:
            self._mark_unavailable(exc)
            return [None] * len(keys)
        with self._lock:
            self.stats.bytes_read += sum(len(v) for v in out if v is not None)
        return out

    def _usable(self) -> bool:
        if self._available:
            return True
        if self._backend is None or time.monotonic() < self._retry_at:
            return False
        try:
            alive = self._backend.ping()
        except Exception:
            alive = False
        with self._lock:
            self._available = alive
            self._retry_at = time.monotonic() + _RETRY_AFTER_S
            was_checked, self._checked = self._checked, True
        if alive and was_checked:
            log.info("cache is back: %s", self._backend.description)
        return alive

    def _mark_unavailable(self, exc: BaseException) -> None:
        with self._lock:
            self.stats.errors += 1
            was_available, self._available = self._available, False
            self._retry_at = time.monotonic() + _RETRY_AFTER_S
        if was_available:
            log.warning("cache unreachable (%s); continuing without it", exc)


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

    def close(self) -> None:
        self._client.close()


class MemoryBackend:
    """An in-process LRU dictionary, used when no server can be had; bounded in bytes."""

    description = "in-process cache (no Valkey/Redis server available; results last until exit)"

    def __init__(self, max_bytes: int = 512 << 20) -> None:
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
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

    def close(self) -> None:
        pass


def as_float32(decoded: codec.Decoded) -> npt.NDArray[np.float32]:
    return np.asarray(decoded.array, dtype=np.float32)
