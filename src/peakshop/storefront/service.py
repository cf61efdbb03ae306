"""The storefront as a hosted service: no data of its own, only the clients of those it composes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Router

from peakshop.platform.metrics import Metrics
from peakshop.storefront.admission import Admission
from peakshop.storefront.settings import StorefrontSettings

if TYPE_CHECKING:  # services meet only through their clients, handed over by the composition root
    from peakshop.cart.client import CartClient
    from peakshop.catalog.client import CatalogClient
    from peakshop.orders.client import OrdersClient
    from peakshop.users.client import UsersClient


class StorefrontService:
    name = "storefront"
    migrations: Path | None = None

    def __init__(
        self,
        settings: StorefrontSettings,
        metrics: Metrics,
        *,
        catalog: CatalogClient,
        users: UsersClient,
        cart: CartClient,
        orders: OrdersClient,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.users = users
        self.cart = cart
        self.orders = orders
        self.admission = Admission(settings.max_checkouts_in_flight, metrics)

    def routers(self) -> list[Router]:
        from peakshop.storefront.api import create_router
        from peakshop.storefront.buying import create_buying_router

        return [create_router(self), create_buying_router(self)]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def check_ready(self) -> None:
        return None
