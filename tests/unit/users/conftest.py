from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from peakshop.platform.cache import MemoryCache
from peakshop.platform.db import SqliteDatabase, sqlite_path
from peakshop.platform.migrations import upgrade
from peakshop.users.handlers import UsersHandlers
from peakshop.users.service import MIGRATIONS
from peakshop.users.settings import UsersSettings

# The smallest cost argon2 accepts: these tests check behaviour, not hash strength.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}


class FakeClock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> MemoryCache:
    return MemoryCache(clock=cast(Any, clock))


@pytest.fixture
async def users_db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    await asyncio.to_thread(upgrade, MIGRATIONS, "users", embedded=True, data_dir=tmp_path, postgres_url="")
    db = await SqliteDatabase.connect(sqlite_path(tmp_path, "users"), "users")
    yield db
    await db.close()


@pytest.fixture
def make_handlers(
    users_db: SqliteDatabase, cache: MemoryCache, clock: FakeClock
) -> Callable[..., UsersHandlers]:
    def make(**overrides: Any) -> UsersHandlers:
        settings = UsersSettings(**{**FAST_ARGON2, **overrides})
        return UsersHandlers(settings, cache, database=users_db, clock=clock)

    return make


@pytest.fixture
def handlers(make_handlers: Callable[..., UsersHandlers]) -> UsersHandlers:
    return make_handlers()
