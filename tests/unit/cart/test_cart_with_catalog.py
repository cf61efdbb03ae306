"""The cart hosted as a service, in front of the real catalog service, both on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peakshop.cart.service import CartService
from peakshop.cart.settings import CartSettings
from peakshop.catalog.service import CatalogService
from peakshop.catalog.settings import CatalogSettings
from peakshop.contracts.cart import TOPIC_CART_CHECKED_OUT, AddItem, CartCheckedOut, ChangeQuantity
from peakshop.platform.bus import InProcessBus
from peakshop.platform.cache import MemoryCache
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade
from peakshop.platform.problems import Problem
from peakshop.platform.service import HostedService, Infrastructure
from peakshop.platform.settings import PlatformSettings


class Shop:
    """A catalog and a cart in one process, as the local topology hosts them."""

    def __init__(self, data_dir: Path, bus: InProcessBus) -> None:
        self.infra = Infrastructure(PlatformSettings(data_dir=data_dir), Metrics(), bus, MemoryCache())
        self.catalog = CatalogService(self.infra, CatalogSettings())
        self.cart = CartService(self.infra, CartSettings(), self.catalog.client())
        self.services: list[HostedService] = [self.catalog, self.cart]

    async def start(self) -> None:
        for service in self.services:
            await asyncio.to_thread(
                upgrade,
                service.migrations,
                service.name,
                embedded=True,
                data_dir=self.infra.settings.data_dir,
                postgres_url="",
            )
            await service.start()

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        await self.infra.close_databases()


@pytest.fixture
async def bus() -> AsyncIterator[InProcessBus]:
    bus = InProcessBus()
    yield bus
    await bus.close()


async def test_the_cart_prices_from_the_real_catalog(tmp_path: Path, bus: InProcessBus) -> None:
    shop = Shop(tmp_path, bus)
    await shop.start()
    try:
        await shop.catalog.seed(5, 3)
        await shop.cart.check_ready()
        catalog = shop.catalog.client()
        cart = shop.cart.client()
        first, second = await catalog.price_skus(["sku_000001_1", "sku_000002_1"])
        shown = await cart.add_item(None, None, AddItem("sku_000001_1", 2))
        shown = await cart.add_item(shown.id, None, AddItem("sku_000002_1", 1))
        assert [(line.sku_id, line.unit_price, line.name) for line in shown.lines] == [
            ("sku_000001_1", first.price, first.name),
            ("sku_000002_1", second.price, second.name),
        ]
        assert shown.subtotal == 2 * first.price + second.price
        with pytest.raises(Problem) as unknown:
            await cart.add_item(shown.id, None, AddItem("sku_999999_9", 1))
        assert (unknown.value.status, unknown.value.slug) == (404, "unknown-sku")
        # The catalog changes the price after the add: the cart shows the new one.
        await catalog.change_price("sku_000001_1", first.price + 100)
        again = await cart.get_cart(shown.id, None)
        assert again.lines[0].unit_price == first.price + 100
        assert again.subtotal == 2 * (first.price + 100) + second.price
        assert shop.infra.metrics.cart_additions._value.get() == 2
    finally:
        await shop.stop()


async def test_carts_survive_a_restart_and_checkout_is_announced(tmp_path: Path, bus: InProcessBus) -> None:
    announced: list[Envelope] = []

    async def record(envelope: Envelope) -> None:
        announced.append(envelope)

    bus.subscribe("cart-test", [TOPIC_CART_CHECKED_OUT], record)
    await bus.start()
    shop = Shop(tmp_path, bus)
    await shop.start()
    try:
        await shop.catalog.seed(5, 3)
        anonymous = await shop.cart.client().add_item(None, None, AddItem("sku_000003_1", 1))
        mine = await shop.cart.client().add_item(None, "acct-1", AddItem("sku_000004_1", 2))
    finally:
        await shop.stop()
    with pytest.raises(Problem) as stopped:
        await shop.cart.client().get_cart(anonymous.id, None)
    assert stopped.value.status == 503

    restarted = Shop(tmp_path, bus)
    await restarted.start()
    try:
        cart = restarted.cart.client()
        assert (await cart.get_cart(anonymous.id, None)).lines == anonymous.lines
        merged = await cart.merge(anonymous.id, "acct-1")
        assert merged.id == mine.id and merged.item_count == 3
        merged = await cart.change_quantity(mine.id, "acct-1", "sku_000004_1", ChangeQuantity(1))
        await cart.checkout_lines(mine.id, "acct-1")
        await cart.mark_checked_out(mine.id, "order-1")
        for _ in range(200):
            if announced:
                break
            await asyncio.sleep(0.01)
        assert [e.decode(CartCheckedOut) for e in announced] == [CartCheckedOut(mine.id, "order-1", "acct-1")]
    finally:
        await restarted.stop()
