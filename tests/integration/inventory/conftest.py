"""Real PostgreSQL for the inventory service: a scratch database per test, migrated here.

The shared `scratch_postgres_url` fixture skips these tests when PostgreSQL is not listening, or fails
them when `PEAKSHOP_REQUIRE_SERVICES=1` (as in CI).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.service import MIGRATIONS
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade
from tests.unit.inventory.inventory_scenarios import FakeClock

# Enough connections that hundreds of concurrent reservations really queue on the row lock in
# PostgreSQL rather than on the pool.
POOL_SIZE = 40


@pytest.fixture
async def inventory_url(scratch_postgres_url: str) -> str:
    await asyncio.to_thread(
        upgrade,
        MIGRATIONS,
        "inventory",
        embedded=False,
        data_dir=Path("."),
        postgres_url=scratch_postgres_url,
    )
    return scratch_postgres_url


@pytest.fixture
async def inventory_db(inventory_url: str) -> AsyncIterator[PostgresDatabase]:
    db = await PostgresDatabase.connect(inventory_url, "inventory", pool_size=POOL_SIZE)
    yield db
    await db.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def make_handlers(
    inventory_db: PostgresDatabase, clock: FakeClock, metrics: Metrics
) -> Callable[..., InventoryHandlers]:
    def make(**overrides: Any) -> InventoryHandlers:
        return InventoryHandlers(InventorySettings(**overrides), metrics, database=inventory_db, clock=clock)

    return make


@pytest.fixture
def handlers(make_handlers: Callable[..., InventoryHandlers]) -> InventoryHandlers:
    return make_handlers()
