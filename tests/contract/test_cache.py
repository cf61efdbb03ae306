"""One contract for both caches: what the memory twin does, Redis does too."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from peakshop.platform.cache import Cache, CacheUnavailable, MemoryCache, RedisCache
from tests.services import RedisLink


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        c: Cache = MemoryCache()
    else:
        url = request.getfixturevalue("redis_url")
        c = RedisCache.from_url(url, namespace=f"test:{uuid.uuid4().hex}:")
    yield c
    await c.close()


async def _until_gone(cache: Cache, key: str, limit: float = 2.0) -> bool:
    # Expiry is the behaviour under test, so waiting for it is the point; bounded, polled, not a guess.
    deadline = asyncio.get_running_loop().time() + limit
    while asyncio.get_running_loop().time() < deadline:
        if await cache.get(key) is None:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_value_set_can_be_read_back(cache: Cache) -> None:
    await cache.set("k", b"v", ttl=30)
    assert await cache.get("k") == b"v"
    assert await cache.get("other") is None


async def test_a_value_expires_after_its_ttl(cache: Cache) -> None:
    await cache.set("short", b"v", ttl=0.05)
    await cache.set("long", b"v", ttl=30)
    assert await _until_gone(cache, "short")
    assert await cache.get("long") == b"v"


async def test_delete_removes_every_named_key(cache: Cache) -> None:
    await cache.set("a", b"1", ttl=30)
    await cache.set("b", b"2", ttl=30)
    await cache.delete("a", "b", "never-set")
    assert await cache.get("a") is None
    assert await cache.get("b") is None


async def test_incr_counts_within_a_window_and_restarts_after_it(cache: Cache) -> None:
    assert [await cache.incr("n", ttl=0.2) for _ in range(3)] == [1, 2, 3]
    await asyncio.sleep(0.3)  # the window itself is under test: let it pass
    assert await cache.incr("n", ttl=0.2) == 1


async def test_ping_answers_when_connected(cache: Cache) -> None:
    await cache.ping()


def test_the_memory_cache_stays_within_its_bound() -> None:
    async def fill() -> int:
        c = MemoryCache(max_entries=100)
        for i in range(1_000):
            await c.set(f"k{i}", b"x", ttl=60)
        return len(c._entries)

    assert asyncio.run(fill()) <= 100


async def test_more_commands_at_once_than_connections_wait_their_turn(redis_url: str) -> None:
    """A surge must queue for Redis connections, not fail: the pool is smaller than the crowd."""
    cache = RedisCache.from_url(redis_url, namespace=f"test:{uuid.uuid4().hex}:", max_connections=2)
    try:
        await cache.set("k", b"v", ttl=30)
        answers = await asyncio.gather(*(cache.get("k") for _ in range(200)))
        counts = await asyncio.gather(*(cache.incr("n", ttl=30) for _ in range(50)))
    finally:
        await cache.close()
    assert answers == [b"v"] * 200
    assert sorted(counts) == list(range(1, 51))


async def _until(condition: Callable[[], bool], limit: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_a_redis_that_stops_answering_is_away_within_the_timeout_and_then_probed_one_at_a_time() -> (
    None
):
    now = [0.0]
    loop = asyncio.get_running_loop()
    async with RedisLink() as link:
        cache = RedisCache.from_url(
            link.url,
            namespace=f"test:{uuid.uuid4().hex}:",
            timeout=0.2,
            rest_seconds=1.0,
            clock=lambda: now[0],
        )
        try:
            await cache.set("k", b"v", ttl=30)
            link.cut = True
            started = loop.time()
            with pytest.raises(CacheUnavailable):
                await cache.get("k")
            assert 0.15 <= loop.time() - started < 2.0
            held = link.held
            assert held > 0
            # Within the rest every command fails at once, and nothing is sent.
            started = loop.time()
            for command in (cache.get("k"), cache.set("k", b"v", 30), cache.incr("n", 30), cache.delete("k")):
                with pytest.raises(CacheUnavailable):
                    await command
            assert loop.time() - started < 0.1
            assert link.held == held
            # After it, one command asks Redis; the others fail at once meanwhile.
            now[0] = 1.5
            probe = asyncio.ensure_future(cache.get("k"))
            await _until(lambda: link.held > held)
            held = link.held
            others = await asyncio.gather(*(cache.get("k") for _ in range(20)), return_exceptions=True)
            assert all(isinstance(other, CacheUnavailable) for other in others)
            assert link.held == held
            with pytest.raises(CacheUnavailable):
                await probe
            # Redis back: after the next rest the probe succeeds, and every command goes through again.
            link.cut = False
            now[0] = 3.0
            assert await cache.get("k") == b"v"
            assert await asyncio.gather(*(cache.get("k") for _ in range(20))) == [b"v"] * 20
        finally:
            await cache.close()


async def test_a_redis_that_refuses_connections_is_away_at_once() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = RedisCache.from_url(f"redis://127.0.0.1:{port}/0", timeout=5.0)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        with pytest.raises(CacheUnavailable):
            await cache.get("k")
        assert loop.time() - started < 1.0
    finally:
        await cache.close()
