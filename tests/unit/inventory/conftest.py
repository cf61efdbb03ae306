from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.service import MIGRATIONS
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.db import SqliteDatabase, sqlite_path
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade
from tests.unit.inventory.inventory_scenarios import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def inventory_db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    await asyncio.to_thread(
        upgrade, MIGRATIONS, "inventory", embedded=True, data_dir=tmp_path, postgres_url=""
    )
    db = await SqliteDatabase.connect(sqlite_path(tmp_path, "inventory"), "inventory")
    yield db
    await db.close()


@pytest.fixture
def make_handlers(
    inventory_db: SqliteDatabase, clock: FakeClock, metrics: Metrics
) -> Callable[..., InventoryHandlers]:
    def make(**overrides: Any) -> InventoryHandlers:
        return InventoryHandlers(InventorySettings(**overrides), metrics, database=inventory_db, clock=clock)

    return make


@pytest.fixture
def handlers(make_handlers: Callable[..., InventoryHandlers]) -> InventoryHandlers:
    return make_handlers()
