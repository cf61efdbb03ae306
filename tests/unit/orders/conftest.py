from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from peakshop.platform.settings import load_platform_settings
from tests.unit.orders.orders_shop import Shop, close_shop, open_shop

MakeShop = Callable[..., Awaitable[Shop]]


@pytest.fixture
async def make_shop(tmp_path: Path) -> AsyncIterator[MakeShop]:
    """Open a shop on SQLite files in the test's directory; every shop opened is closed afterwards."""
    opened: list[Shop] = []
    settings = load_platform_settings({}, data_dir=tmp_path)

    async def make(**orders_overrides: Any) -> Shop:
        shop = await open_shop(settings, migrate=not opened, **orders_overrides)
        opened.append(shop)
        return shop

    yield make
    for shop in reversed(opened):
        await close_shop(shop)


@pytest.fixture
async def shop(make_shop: MakeShop) -> Shop:
    shop = await make_shop()
    await shop.restock("sku-red", 10)
    await shop.restock("sku-blue", 10)
    await shop.restock("sku-last", 1)
    shop.cart.fill("cart-1", "acct-1", sku_red=2, sku_blue=1)
    return shop
