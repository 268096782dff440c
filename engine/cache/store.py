"""The cache as the engine uses it: typed arrays in, typed arrays out, never an exception.

:class:`Cache` wraps one backend (a Redis/Valkey client, an in-process dictionary, or
nothing) and turns every failure into a miss: a value that fails the codec's checks (its tag
over the key it is stored under, the team key's MAC when there is one, and what the caller
expects of it) is logged and treated as absent (the caller recomputes and overwrites it), and
a server that
stops answering switches the cache off until a back-off delay has passed, when one cheap
PING decides whether writes resume. Jobs therefore finish with correct results whether or
not the cache is there. Thread-safe: redis-py's pool and the dictionary's lock make every
method callable from any job lane.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.cache import codec
from engine.cache.backends import Backend
from engine.cache.keys import KINDS
from engine.cache.team_key import TeamKey

log = logging.getLogger(__name__)

# How long each kind of value lives. Embeddings are the costliest to recompute.
TTL_SECONDS = {
    "emb": 90 * 86400,
    "proj": 90 * 86400,
    "attn": 30 * 86400,
    "ana": 90 * 86400,
    "cmp": 90 * 86400,
}
_BATCH = 500
_RETRY_AFTER_S = 5.0
# What a lookup accepts when its caller states nothing narrower: finite numbers, and at most
# this much decoded per value (the attention of 512 tokens in a 24x16 model is 400 MB).
DEFAULT_EXPECTED = codec.Expected(max_bytes=512 << 20, finite=True)


STATS_KEY = "loupe:stats"  # a hash of counters every Loupe process adds to (no TTL)


@dataclass
class CacheStats:
    """Counters of one process, or (from :meth:`Cache.totals`) of every process together.

    Latencies are kept as totals in microseconds with their call counts, so they add up
    across processes; ``mean_get_ms``/``mean_set_ms`` turn them into per-call figures.
    """

    hits: int = 0
    misses: int = 0
    invalid: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    errors: int = 0
    get_calls: int = 0
    get_us: int = 0
    set_calls: int = 0
    set_us: int = 0

    @property
    def hit_rate(self) -> float | None:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else None

    @property
    def mean_get_ms(self) -> float | None:
        return self.get_us / self.get_calls / 1000 if self.get_calls else None

    @property
    def mean_set_ms(self) -> float | None:
        return self.set_us / self.set_calls / 1000 if self.set_calls else None

    def as_counters(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in self.__dataclass_fields__}

    def summary(self) -> str:
        """One line for the status bar and ``loupe cache stats``."""
        rate = f"{self.hit_rate:.0%} hits" if self.hit_rate is not None else "no lookups yet"
        get_ms = f", get {self.mean_get_ms:.1f} ms" if self.mean_get_ms is not None else ""
        set_ms = f", set {self.mean_set_ms:.1f} ms" if self.mean_set_ms is not None else ""
        return (
            f"{rate} ({self.hits} hits, {self.misses} misses, {self.invalid} invalid), "
            f"{_mib(self.bytes_read)} read, {_mib(self.bytes_written)} written{get_ms}{set_ms}"
        )


def _short(reason: str, limit: int = 200) -> str:
    """``reason`` cut to ``limit`` characters: a message may quote what a hostile value holds."""
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f} MiB"


class Cache:
    """Array-valued cache over one backend; see the module docstring for the failure rules."""

    def __init__(
        self,
        backend: Backend | None,
        on_close: Callable[[], None] | None = None,
        *,
        team_key: TeamKey | None = None,
    ) -> None:
        """``team_key``: seal every value with its MAC and accept only values that carry a valid one."""
        self._backend = backend
        self._on_close = on_close
        self._secret: bytes | None = None
        self.team_key_source: str | None = None  # where the team key came from, never the key
        self.use_team_key(team_key)
        # Not yet known: the first use PINGs (retry_at is 0), so an unreachable server is
        # reported from the start rather than after the first failed operation.
        self._available = False
        self._checked = False
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self.stats = CacheStats()
        self._flushed = CacheStats()  # what has already been added to the server's counters

    def use_team_key(self, team_key: TeamKey | None) -> None:
        """Seal values with ``team_key``'s MAC from now on (None: an unkeyed checksum).

        Call before the cache is shared between threads (``open_cache`` does, right after
        opening it).
        """
        self._secret = team_key.secret if team_key is not None else None
        self.team_key_source = team_key.source if team_key is not None else None
        if team_key is not None:
            log.info("cache values are sealed with the team key from %s", team_key.source)

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

    def get_many(
        self, keys: Sequence[str], expect: codec.Expected = DEFAULT_EXPECTED
    ) -> list[codec.Decoded | None]:
        """Decoded values for ``keys``, None for each miss or invalid value.

        Each value must be the one written for its own key (and, with a team key, carry its
        MAC) and fit ``expect``, all checked before it is decompressed; so a batch decodes at
        most ``len(keys) * expect.max_bytes``, which for per-row embeddings is exactly the
        matrix the caller builds. Values are fetched and decoded ``_BATCH`` at a time, and
        never more of a value than ``expect`` allows, so a writer cannot make a reader hold
        a huge value either.
        """
        out: list[codec.Decoded | None] = []
        invalid: list[tuple[str, str]] = []
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            for key, value in zip(chunk, self._get_raw(chunk, expect.max_value_bytes), strict=True):
                if value is None:
                    out.append(None)
                    continue
                try:
                    out.append(codec.decode(value, key=key, secret=self._secret, expect=expect))
                except Exception as exc:  # CodecError, or a check this code failed to make: a miss
                    invalid.append((key, str(exc) if isinstance(exc, codec.CodecError) else repr(exc)))
                    out.append(None)
        if invalid:
            # One line per call, not per value: a stale cache can hold thousands of them.
            key, reason = invalid[0]
            log.warning(
                "%d cache value(s) failed their checks and will be recomputed (%s: %s)",
                len(invalid),
                key,
                _short(reason),
            )
            with self._lock:
                self.stats.invalid += len(invalid)
        with self._lock:
            found = sum(v is not None for v in out)
            self.stats.hits += found
            self.stats.misses += len(out) - found
        return out

    def get(self, key: str, expect: codec.Expected = DEFAULT_EXPECTED) -> codec.Decoded | None:
        return self.get_many([key], expect)[0]

    def reject(self, key: str, reason: str, count: int = 1) -> None:
        """Count ``count`` values their caller could not use (a loader failed) as invalid, and
        log why in one line, naming the first (``key``).

        The lookup counted them as hits; they become the misses they really were. The caller
        then recomputes the results and overwrites the values. ``reason`` may quote a hostile
        value: it is cut short so that one value cannot write a megabyte into the log.
        """
        log.warning(
            "%d cache value(s) do not fit their call and will be recomputed (%s: %s)",
            count,
            key,
            _short(reason),
        )
        with self._lock:
            self.stats.hits -= count
            self.stats.misses += count
            self.stats.invalid += count

    def set_many(
        self,
        kind: str,
        items: Sequence[tuple[str, npt.NDArray[Any]]],
        codec_name: codec.Codec = "zstd",
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store arrays under their keys with the TTL of ``kind``; failures are logged only."""
        if not items or not self._usable():
            return
        encoded = [
            (key, codec.encode(array, codec_name, meta, key=key, secret=self._secret)) for key, array in items
        ]
        assert self._backend is not None
        started = time.perf_counter()
        try:
            for start in range(0, len(encoded), _BATCH):
                self._backend.set_many(encoded[start : start + _BATCH], TTL_SECONDS.get(kind, 30 * 86400))
        except Exception as exc:  # any client error: the cache is optional, the result is not
            self._mark_unavailable(exc)
            return
        with self._lock:
            self.stats.bytes_written += sum(len(v) for _, v in encoded)
            self.stats.set_calls += 1
            self.stats.set_us += int((time.perf_counter() - started) * 1e6)

    def set(self, kind: str, key: str, array: npt.NDArray[Any], **kwargs: Any) -> None:
        self.set_many(kind, [(key, array)], **kwargs)

    def clear(self, kind: str | None = None) -> int:
        if self._backend is None or not self._usable():
            return 0
        try:
            return self._backend.clear(kind)
        except Exception as exc:
            self._mark_unavailable(exc)
            return 0

    def count_present(self, keys: Sequence[str]) -> int | None:
        """How many of ``keys`` the cache holds (values unread, so unchecked); None if unreachable.

        A cheap "is this all done?" for a cluster job's rerun; a key counted here can still turn
        out to be a miss when its value is read and checked.
        """
        if self._backend is None or not self._usable():
            return None
        try:
            return self._backend.present(keys)
        except Exception as exc:
            self._mark_unavailable(exc)
            return None

    def count_by_kind(self) -> dict[str, int]:
        """How many values of each kind the cache holds (a SCAN: seconds for millions of keys)."""
        if self._backend is None or not self._usable():
            return {}
        try:
            return {kind: self._backend.count(kind) for kind in KINDS}
        except Exception as exc:
            self._mark_unavailable(exc)
            return {}

    def memory(self) -> tuple[int, int] | None:
        """(bytes used, byte limit or 0) of the cache's store, or None when it cannot be asked."""
        if self._backend is None or not self._usable():
            return None
        try:
            return self._backend.memory()
        except Exception as exc:
            self._mark_unavailable(exc)
            return None

    def flush_stats(self) -> None:
        """Add this process's counters since the last flush to the store's shared totals."""
        if self._backend is None or not self._available:
            return
        with self._lock:
            now = self.stats.as_counters()
            before = self._flushed.as_counters()
            self._flushed = CacheStats(**now)
        deltas = {name: now[name] - before[name] for name in now if now[name] != before[name]}
        if not deltas:
            return
        try:
            self._backend.add_counters(STATS_KEY, deltas)
        except Exception as exc:
            self._mark_unavailable(exc)

    def totals(self) -> CacheStats:
        """Counters of every process that used this store, this one's unflushed ones included."""
        self.flush_stats()
        if self._backend is None or not self._usable():
            return CacheStats(**self.stats.as_counters())
        try:
            stored = self._backend.read_counters(STATS_KEY)
        except Exception as exc:
            self._mark_unavailable(exc)
            return CacheStats(**self.stats.as_counters())
        known = CacheStats.__dataclass_fields__
        return CacheStats(**{name: value for name, value in stored.items() if name in known})

    def close(self) -> None:
        """Flush the statistics, close the client and release the embedded server, if held."""
        self.flush_stats()
        backend, self._backend, self._available = self._backend, None, False
        if backend is not None:
            backend.close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def _get_raw(self, keys: Sequence[str], max_bytes: int) -> list[bytes | None]:
        if not keys or not self._usable():
            return [None] * len(keys)
        assert self._backend is not None
        started = time.perf_counter()
        try:
            out = self._backend.get_many(keys, max_bytes)
        except Exception as exc:
            self._mark_unavailable(exc)
            return [None] * len(keys)
        with self._lock:
            self.stats.bytes_read += sum(len(v) for v in out if v is not None)
            self.stats.get_calls += 1
            self.stats.get_us += int((time.perf_counter() - started) * 1e6)
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


def as_float32(decoded: codec.Decoded) -> npt.NDArray[np.float32]:
    return np.asarray(decoded.array, dtype=np.float32)
