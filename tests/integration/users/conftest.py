"""Real PostgreSQL (a scratch database made and dropped here) and real Redis for the users service.

Unreachable services skip these tests, or fail them when `PEAKSHOP_REQUIRE_SERVICES=1` (as in CI).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from peakshop.platform.cache import RedisCache
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.migrations import upgrade
from peakshop.users.handlers import UsersHandlers
from peakshop.users.service import MIGRATIONS
from peakshop.users.settings import UsersSettings
from tests.services import REDIS_URL, need_service, scratch_database

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}
TABLES = "users.accounts, users.sessions, users.addresses, users.outbox, users.inbox"


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch database with the users schema migrated, shared by the users integration tests, then dropped."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    with scratch_database() as url:
        # Alembic runs its own event loop: give it a thread of its own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(
                upgrade, MIGRATIONS, "users", embedded=False, data_dir=Path("."), postgres_url=url
            ).result()
        yield url


@pytest.fixture
async def users_db(postgres_url: str) -> AsyncIterator[PostgresDatabase]:
    db = await PostgresDatabase.connect(postgres_url, "users", pool_size=10)
    async with db.transaction() as tx:
        await tx.execute(f"TRUNCATE {TABLES}")
    yield db
    await db.close()


@pytest.fixture
async def cache() -> AsyncIterator[RedisCache]:
    """The Redis cache under a namespace of this test's own, removed afterwards."""
    need_service("Redis", "127.0.0.1", 6379)
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    namespace = f"peakshop-test:users:{uuid.uuid4().hex}:"
    yield RedisCache(client, namespace)
    keys = [key async for key in client.scan_iter(match=namespace + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_handlers(
    users_db: PostgresDatabase, cache: RedisCache, clock: FakeClock
) -> Callable[..., UsersHandlers]:
    def make(**overrides: Any) -> UsersHandlers:
        settings = UsersSettings(**{**FAST_ARGON2, **overrides})
        return UsersHandlers(settings, cache, database=users_db, clock=clock)

    return make


@pytest.fixture
def handlers(make_handlers: Callable[..., UsersHandlers]) -> UsersHandlers:
    return make_handlers()
