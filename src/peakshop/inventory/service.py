"""The inventory service as a process hosts it: routes, the outbox relay and the expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog
from litestar import Router

from peakshop.inventory.api import create_router
from peakshop.inventory.domain import SCHEMA
from peakshop.inventory.handlers import Clock, InventoryHandlers
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.db import Database
from peakshop.platform.outbox import OutboxRelay
from peakshop.platform.problems import Unavailable
from peakshop.platform.service import Infrastructure

log = structlog.get_logger("peakshop.inventory")

MIGRATIONS = Path(__file__).parent / "migrations"


class InventoryService:
    """Routes and handlers exist from construction; the database, relay and sweeper from `start` on.

    Requests that arrive before `start` (or after `stop`) get a 503 problem rather than a crash.
    """

    name = "inventory"

    def __init__(
        self, infra: Infrastructure, settings: InventorySettings, *, clock: Clock = time.time
    ) -> None:
        self._infra = infra
        self.settings = settings
        self._clock = clock
        self.handlers = InventoryHandlers(
            settings, infra.metrics, clock=clock, outbox_written=self._wake_relay
        )
        self._db: Database | None = None
        self._relay: OutboxRelay | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def migrations(self) -> Path:
        return MIGRATIONS

    def routers(self) -> list[Router]:
        return [create_router(self.handlers)]

    async def start(self) -> None:
        self._db = await self._infra.database(SCHEMA)
        self.handlers.attach(self._db)
        self._relay = self._infra.outbox_relay(self._db)
        self._relay.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="inventory:sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.handlers.detach()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        # The connection pool belongs to `Infrastructure`, which closes every database it opened.
        self._db = None

    async def check_ready(self) -> None:
        if self._db is None:
            raise Unavailable("The inventory service is not started.", service="inventory")
        await self._db.ping()

    async def sweep(self) -> list[str]:
        """One sweep now: expire every reservation due by the service's clock."""
        return await self.handlers.expire_due(self._clock())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_seconds)
            try:
                await self.sweep()
            except Exception:
                # The database is away or busy; the due reservations wait for the next sweep.
                log.exception("inventory_sweep_failed")

    def _wake_relay(self) -> None:
        if self._relay is not None:
            self._relay.wake()
