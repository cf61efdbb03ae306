"""The cache port: bytes by key with a time to live, and counters for rate limits.

`MemoryCache` is the embedded twin for the one-process topology; `RedisCache` is what split runs on.
Both pass the same contract suite (`tests/contract/test_cache.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as redis


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
    def __init__(self, client: redis.Redis, namespace: str = "peakshop:") -> None:
        self._redis = client
        self._ns = namespace

    @classmethod
    def from_url(
        cls, url: str, namespace: str = "peakshop:", *, max_connections: int = 64, wait: float = 10.0
    ) -> RedisCache:
        # With every connection busy, a command waits up to `wait` seconds for one, as a caller of
        # the database pool does. redis-py's default pool raises "Too many connections" at once
        # instead: a surge past what the process serves turned into a 500 for every request over.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait)
        return cls(redis.Redis.from_pool(pool), namespace)

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._ns + key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(self._ns + key, value, px=max(1, int(ttl * 1000)))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(self._ns + k for k in keys))

    async def incr(self, key: str, ttl: float) -> int:
        name = self._ns + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            # NX: the window starts at the first increment and is not pushed back by later ones
            pipe.pexpire(name, max(1, int(ttl * 1000)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
