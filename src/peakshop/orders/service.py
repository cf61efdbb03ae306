"""The orders service as a process hosts it: routes, the outbox relay and the reconciler."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from litestar import Router

from peakshop.contracts.orders import OrdersAudit, ReconciledOrder
from peakshop.orders.audit import audit_facts
from peakshop.orders.client import LocalOrdersClient
from peakshop.orders.domain import SCHEMA
from peakshop.orders.handlers import CartForCheckout, Clock, Crash, OrdersHandlers, kill_process
from peakshop.orders.reconciler import Reconciler
from peakshop.orders.settings import OrdersSettings
from peakshop.platform.db import Database
from peakshop.platform.outbox import OutboxRelay
from peakshop.platform.problems import Unavailable
from peakshop.platform.service import Infrastructure

if TYPE_CHECKING:  # services meet only through their clients, handed over by the composition root
    from peakshop.inventory.client import InventoryClient
    from peakshop.payments.client import PaymentsClient

log = structlog.get_logger("peakshop.orders")

MIGRATIONS = Path(__file__).parent / "migrations"


class OrdersService:
    """Routes and handlers exist from construction; the database, relay and reconciler from `start` on.

    `start` runs one reconciler pass before it returns, so a process restarted after a crash finishes
    what the crash left (attempts older than the reconciler's threshold; younger ones at a later pass).
    """

    name = "orders"

    def __init__(
        self,
        infra: Infrastructure,
        settings: OrdersSettings,
        *,
        cart: CartForCheckout,
        inventory: InventoryClient,
        payments: PaymentsClient,
        clock: Clock = time.time,
        crash: Crash = kill_process,
    ) -> None:
        self._infra = infra
        self.settings = settings
        self.handlers = OrdersHandlers(
            settings,
            infra.metrics,
            cart=cart,
            inventory=inventory,
            payments=payments,
            clock=clock,
            outbox_written=self._wake_relay,
            crash=crash,
        )
        self.reconciler = Reconciler(self.handlers, clock)
        self._db: Database | None = None
        self._relay: OutboxRelay | None = None

    @property
    def migrations(self) -> Path:
        return MIGRATIONS

    def routers(self) -> list[Router]:
        from peakshop.orders.api import create_router

        return [create_router(self)]

    def client(self) -> LocalOrdersClient:
        """The in-process client other services hosted in this process use."""
        return LocalOrdersClient(self)

    async def start(self) -> None:
        if self.settings.crash_after:
            log.warning("crash_hook_armed", after=self.settings.crash_after)
        call_timeout = self._infra.settings.http_client_timeout
        if self.settings.reconcile_after_seconds <= call_timeout:
            # Allowed (tests shorten it), but a live checkout waiting on one slow call can then be
            # taken for abandoned: it fails cleanly and gives the money back, yet the buyer loses it.
            log.warning(
                "reconcile_after_below_call_timeout",
                reconcile_after_seconds=self.settings.reconcile_after_seconds,
                http_client_timeout=call_timeout,
            )
        self._db = await self._infra.database(SCHEMA)
        self.handlers.attach(self._db)
        self._relay = self._infra.outbox_relay(self._db)
        self._relay.start()
        s = self.settings
        try:
            await self.reconciler.reconcile(s.reconcile_after_seconds)
        except Exception:
            # Not fatal: the background pass tries again.
            log.exception("startup_reconcile_failed")
        self.reconciler.start(s.reconcile_interval_seconds, s.reconcile_after_seconds)

    async def stop(self) -> None:
        await self.reconciler.stop()
        self.handlers.detach()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        # The connection pool belongs to `Infrastructure`, which closes every database it opened.
        self._db = None

    async def check_ready(self) -> None:
        if self._db is None:
            raise Unavailable("The orders service is not started.", service="orders")
        await self._db.ping()

    async def reconcile(self, older_than_seconds: float | None = None) -> list[ReconciledOrder]:
        """One reconciler pass now (the threshold defaults to the configured one)."""
        threshold = (
            self.settings.reconcile_after_seconds if older_than_seconds is None else older_than_seconds
        )
        return await self.reconciler.reconcile(threshold)

    async def audit_facts(self) -> OrdersAudit:
        db, _ = self.handlers.store
        return await audit_facts(db)

    def _wake_relay(self) -> None:
        if self._relay is not None:
            self._relay.wake()
