"""The cart as a process hosts it: its routes, its migrations, its start and its stop."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Router

from peakshop.cart.api import create_router
from peakshop.cart.client import LocalCartClient
from peakshop.cart.domain import SCHEMA
from peakshop.cart.handlers import CartHandlers
from peakshop.cart.settings import CartSettings
from peakshop.contracts.orders import TOPIC_ORDER_PLACED, OrderPlaced
from peakshop.platform.db import Database, Executor
from peakshop.platform.outbox import OutboxRelay, inbox_handler
from peakshop.platform.problems import Unavailable
from peakshop.platform.service import Infrastructure

if TYPE_CHECKING:  # services meet only through their clients, handed over by the composition root
    from peakshop.catalog.client import CatalogClient

MIGRATIONS = Path(__file__).parent / "migrations"


class CartService:
    """Implements `HostedService`; the composition root runs `migrations` before `start()`.

    Routes and the local client exist from construction; until `start()` binds the database they
    answer 503 `unavailable` rather than crash.
    """

    name = "cart"

    def __init__(self, infra: Infrastructure, settings: CartSettings, catalog: CatalogClient) -> None:
        self._infra = infra
        self.settings = settings
        self.handlers = CartHandlers(settings, infra.metrics, catalog, outbox_written=self._wake_relay)
        self._db: Database | None = None
        self._relay: OutboxRelay | None = None

    @property
    def migrations(self) -> Path:
        return MIGRATIONS

    def routers(self) -> list[Router]:
        return [create_router(self.handlers)]

    def client(self) -> LocalCartClient:
        """The in-process client other services hosted in this process use."""
        return LocalCartClient(self.handlers)

    async def start(self) -> None:
        self._db = await self._infra.database(SCHEMA)
        self.handlers.bind(self._db)
        self._relay = self._infra.outbox_relay(self._db, interval=self.settings.relay_interval)
        self._relay.start()
        self._infra.bus.subscribe(
            "cart.close-on-order-placed",
            [TOPIC_ORDER_PLACED],
            inbox_handler(self._db, "cart.close-on-order-placed", OrderPlaced, self._close_for_order),
        )

    async def _close_for_order(self, tx: Executor, placed: OrderPlaced) -> None:
        await self.handlers.close_for_order(tx, placed.cart_id, placed.order_id)

    async def stop(self) -> None:
        self.handlers.unbind()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        # The database itself is closed by `Infrastructure.close_databases`, which opened it.
        self._db = None

    async def check_ready(self) -> None:
        if self._db is None:
            raise Unavailable("The cart service is not started.", service=self.name)
        await self._db.ping()

    def _wake_relay(self) -> None:
        if self._relay is not None:
            self._relay.wake()
