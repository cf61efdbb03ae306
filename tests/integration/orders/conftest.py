"""Real PostgreSQL for orders, with inventory and payments hosted in-process on the same server.

Unreachable PostgreSQL skips these tests, or fails them when `PEAKSHOP_REQUIRE_SERVICES=1` (as in CI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from peakshop.platform.settings import load_platform_settings
from tests.unit.orders.orders_shop import Shop, close_shop, open_shop

MakePgShop = Callable[..., Awaitable[Shop]]


@pytest.fixture
async def make_pg_shop(scratch_postgres_url: str, tmp_path: Path) -> AsyncIterator[MakePgShop]:
    opened: list[Shop] = []
    settings = load_platform_settings(
        {},
        topology="split",
        postgres_url=scratch_postgres_url,
        webhook_secret="integration-test-webhook-secret",
        data_dir=tmp_path,
        db_pool_size=20,
    )

    async def make(**orders_overrides: Any) -> Shop:
        shop = await open_shop(settings, migrate=not opened, **orders_overrides)
        opened.append(shop)
        return shop

    yield make
    for shop in reversed(opened):
        await close_shop(shop)


@pytest.fixture
async def pg_shop(make_pg_shop: MakePgShop) -> Shop:
    shop = await make_pg_shop()
    await shop.restock("sku-red", 10)
    await shop.restock("sku-blue", 10)
    await shop.restock("sku-last", 1)
    shop.cart.fill("cart-1", "acct-1", sku_red=2, sku_blue=1)
    return shop
