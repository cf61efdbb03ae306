"""The catalog as a process hosts it: its routes, its migrations, its start and its stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from litestar import Router

from peakshop.catalog.api import create_router
from peakshop.catalog.client import LocalCatalogClient
from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.repository import CatalogRepository
from peakshop.catalog.seed import SeedResult, generate_catalog
from peakshop.catalog.settings import CatalogSettings
from peakshop.platform.db import Database
from peakshop.platform.outbox import OutboxRelay
from peakshop.platform.problems import Unavailable
from peakshop.platform.service import Infrastructure

MIGRATIONS = Path(__file__).parent / "migrations"


class CatalogService:
    """Implements `HostedService`; the composition root runs `migrations` before `start()`."""

    name = "catalog"

    def __init__(self, infra: Infrastructure, settings: CatalogSettings) -> None:
        self._infra = infra
        self.settings = settings
        # The use cases exist from the start, so routers and local clients can be wired before the
        # database is open; they answer `Unavailable` until `start()` binds it.
        self.handlers = CatalogHandlers(infra.cache, infra.metrics, settings)
        self._db: Database | None = None
        self._relay: OutboxRelay | None = None

    @property
    def migrations(self) -> Path:
        return MIGRATIONS

    def routers(self) -> list[Router]:
        return [create_router(self.handlers, self.settings)]

    def client(self) -> LocalCatalogClient:
        return LocalCatalogClient(self.handlers)

    @property
    def database(self) -> Database:
        if self._db is None:
            raise Unavailable("The catalog is not started.", service=self.name)
        return self._db

    async def start(self) -> None:
        self._db = await self._infra.database(self.name)
        self._relay = self._infra.outbox_relay(self._db, interval=self.settings.relay_interval)
        self._relay.start()
        self.handlers.bind(CatalogRepository(self._db), self._relay.wake)

    async def stop(self) -> None:
        # The database itself is closed by `Infrastructure.close_databases`, which opened it.
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        self.handlers.unbind()

    async def check_ready(self) -> None:
        await self.database.ping()

    async def seed(
        self, products: int, seed: int, progress: Callable[[int, int], None] | None = None
    ) -> SeedResult:
        """Seed the running catalog (idempotent) and drop whatever the cache held of the old one."""
        started = time.perf_counter()
        catalog = generate_catalog(products, seed)
        await self.handlers.import_products(
            catalog.categories, catalog.products, catalog.skus, progress=progress
        )
        return SeedResult(
            len(catalog.categories), len(catalog.products), len(catalog.skus), time.perf_counter() - started
        )
