"""A cart on SQLite in the test's own directory, in front of a small stub catalog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from peakshop.cart.handlers import CartHandlers
from peakshop.cart.service import MIGRATIONS
from peakshop.cart.settings import CartSettings
from peakshop.contracts.catalog import SkuPrice
from peakshop.platform.db import SqliteDatabase, sqlite_path
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade
from peakshop.platform.problems import InvalidInput, NotFound


class StubCatalog:
    """Prices SKUs the way the catalog does: in the order asked, 404 naming every unknown one."""

    def __init__(self) -> None:
        self.prices: dict[str, SkuPrice] = {}
        self.calls: list[list[str]] = []

    def add(self, sku_id: str, price: int, *, currency: str = "USD", name: str | None = None) -> SkuPrice:
        product_id = "p_" + sku_id.removeprefix("sku_")
        self.prices[sku_id] = SkuPrice(sku_id, product_id, name or f"Item {sku_id}", price, currency)
        return self.prices[sku_id]

    async def price_skus(self, sku_ids: Sequence[str]) -> list[SkuPrice]:
        self.calls.append(list(sku_ids))
        if len(sku_ids) > 500:
            raise InvalidInput("at most 500 SKUs can be priced at once", field="sku_ids")
        missing = [s for s in sku_ids if s not in self.prices]
        if missing:
            raise NotFound(f"There is no SKU {missing[0]!r}.", sku_ids=missing)
        return [self.prices[s] for s in sku_ids]


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001  # every change is later than the one before
        return self.now


async def migrate(data_dir: Path) -> None:
    await asyncio.to_thread(upgrade, MIGRATIONS, "cart", embedded=True, data_dir=data_dir, postgres_url="")


@pytest.fixture
def stub_catalog() -> StubCatalog:
    catalog = StubCatalog()
    catalog.add("sku_a", 1_250)
    catalog.add("sku_b", 399)
    catalog.add("sku_c", 10_000)
    return catalog


@pytest.fixture
async def cart_db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    await migrate(tmp_path)
    db = await SqliteDatabase.connect(sqlite_path(tmp_path, "cart"), "cart")
    yield db
    await db.close()


@pytest.fixture
def make_cart(cart_db: SqliteDatabase, stub_catalog: StubCatalog) -> Callable[..., CartHandlers]:
    def make(**overrides: Any) -> CartHandlers:
        return CartHandlers(
            CartSettings(**overrides), Metrics(), stub_catalog, database=cart_db, clock=FakeClock()
        )

    return make


@pytest.fixture
def cart(make_cart: Callable[..., CartHandlers]) -> CartHandlers:
    return make_cart()
