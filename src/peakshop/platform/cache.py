"""The cache port: bytes by key with a time to live, and counters for rate limits.

`MemoryCache` is the embedded twin for the one-process topology; `RedisCache` is what split runs on.
Both pass the same contract suite (`tests/contract/test_cache.py`).

A cache is never the only copy of anything, so its callers carry on without it: a Redis that is down,
failing over or not answering raises `CacheUnavailable` within the command timeout, a read then counts
as a miss, and a write is skipped. `RedisCache` is also a circuit breaker: after a failure it does not
ask Redis for a short rest, then lets one command through to find out whether Redis is back, while
every other command fails at once. So an unreachable server costs each request nothing, rather than
a timeout each.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

log = structlog.get_logger("peakshop.cache")
T = TypeVar("T")


class CacheUnavailable(Exception):
    """The cache could not be asked; nothing is known about the key."""


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def incr(self, key: str, ttl: float) -> int:
        """Add one to a counter that expires `ttl` seconds after its first increment."""
        ...

    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryCache:
    """A dict with expiry; bounded so that an endless stream of keys cannot exhaust memory."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] | None = None) -> None:
        self._entries: dict[str, tuple[float, bytes | int]] = {}
        self._max = max_entries
        self._now = clock or time.monotonic

    def _live(self, key: str) -> bytes | int | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._now():
            del self._entries[key]
            return None
        return value

    def _make_room(self) -> None:
        if len(self._entries) < self._max:
            return
        now = self._now()
        for key in [k for k, (exp, _) in self._entries.items() if exp <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max:
            # dicts keep insertion order: the oldest entry goes first
            del self._entries[next(iter(self._entries))]

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._make_room()
        self._entries[key] = (self._now() + ttl, value)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def incr(self, key: str, ttl: float) -> int:
        current = self._live(key)
        if isinstance(current, int):
            expires = self._entries[key][0]
            self._entries[key] = (expires, current + 1)
            return current + 1
        self._make_room()
        self._entries[key] = (self._now() + ttl, 1)
        return 1

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "peakshop:",
        *,
        rest_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._ns = namespace
        self._rest = rest_seconds
        self._now = clock
        self._failing = False  # the last command failed; until one succeeds, only a probe asks Redis
        self._resting_until = float("-inf")
        self._probing = False

    @classmethod
    def from_url(
        cls,
        url: str,
        namespace: str = "peakshop:",
        *,
        max_connections: int = 64,
        timeout: float = 1.0,
        rest_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> RedisCache:
        # With every connection busy, a command waits for one, as a caller of the database pool
        # does. redis-py's default pool raises "Too many connections" at once instead: a surge past
        # what the process serves turned into a 500 for every request over. `timeout` bounds that
        # wait, connecting, and each answer; redis-py waits for ever by default, so a server that
        # stopped answering would have held every read until its caller gave up.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        return cls(redis.Redis.from_pool(pool), namespace, rest_seconds=rest_seconds, clock=clock)

    async def _ask(self, command: Callable[[], Awaitable[T]]) -> T:
        probe = False
        if self._failing:
            if self._probing or self._now() < self._resting_until:
                raise CacheUnavailable(
                    "Redis failed a moment ago; one command at a time finds out if it is back"
                )
            probe = self._probing = True
        try:
            result = await command()
        except RedisError as exc:
            if not self._failing or probe:
                log.warning(
                    "cache_unavailable", error=str(exc) or type(exc).__name__, rest_seconds=self._rest
                )
            self._failing = True
            self._resting_until = self._now() + self._rest
            raise CacheUnavailable(str(exc)) from exc
        finally:
            if probe:
                self._probing = False
        if self._failing:
            self._failing = False
            log.warning("cache_available_again")
        return result

    async def get(self, key: str) -> bytes | None:
        value = await self._ask(lambda: self._redis.get(self._ns + key))
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._ask(lambda: self._redis.set(self._ns + key, value, px=max(1, int(ttl * 1000))))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._ask(lambda: self._redis.delete(*(self._ns + k for k in keys)))

    async def incr(self, key: str, ttl: float) -> int:
        return await self._ask(lambda: self._incr(self._ns + key, ttl))

    async def _incr(self, name: str, ttl: float) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            # NX: the window starts at the first increment and is not pushed back by later ones
            pipe.pexpire(name, max(1, int(ttl * 1000)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def ping(self) -> None:
        await self._ask(self._redis.ping)

    async def close(self) -> None:
        await self._redis.aclose()
