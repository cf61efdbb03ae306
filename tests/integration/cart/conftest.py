"""The cart on a scratch PostgreSQL database of its own, in front of a small stub catalog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from peakshop.cart.handlers import CartHandlers
from peakshop.cart.service import MIGRATIONS
from peakshop.cart.settings import CartSettings
from peakshop.contracts.catalog import SkuPrice
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade
from peakshop.platform.problems import NotFound


class PricedCatalog:
    """Prices SKUs as the catalog does, 404 naming the unknown ones."""

    def __init__(self, prices: dict[str, int]) -> None:
        self.prices = {s: SkuPrice(s, "p_" + s, f"Item {s}", p, "USD") for s, p in prices.items()}

    async def price_skus(self, sku_ids: Sequence[str]) -> list[SkuPrice]:
        missing = [s for s in sku_ids if s not in self.prices]
        if missing:
            raise NotFound(f"There is no SKU {missing[0]!r}.", sku_ids=missing)
        return [self.prices[s] for s in sku_ids]


@pytest.fixture
async def cart_pg_url(scratch_postgres_url: str) -> str:
    await asyncio.to_thread(
        upgrade, MIGRATIONS, "cart", embedded=False, data_dir=Path("."), postgres_url=scratch_postgres_url
    )
    return scratch_postgres_url


@pytest.fixture
async def cart_pg(cart_pg_url: str) -> AsyncIterator[PostgresDatabase]:
    db = await PostgresDatabase.connect(cart_pg_url, "cart", pool_size=8)
    yield db
    await db.close()


@pytest.fixture
def priced_catalog() -> PricedCatalog:
    return PricedCatalog({f"sku_{n:02d}": 100 + n for n in range(30)})


@pytest.fixture
def pg_cart(cart_pg: PostgresDatabase, priced_catalog: PricedCatalog) -> CartHandlers:
    return CartHandlers(CartSettings(max_lines=5), Metrics(), priced_catalog, database=cart_pg)
