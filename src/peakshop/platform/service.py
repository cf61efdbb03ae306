"""What a service is to the composition root, and the shared parts it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from litestar import Router

from peakshop.platform import db as database
from peakshop.platform.bus import Bus
from peakshop.platform.cache import Cache
from peakshop.platform.db import Database
from peakshop.platform.metrics import Metrics
from peakshop.platform.outbox import POLL_SECONDS, OutboxRelay
from peakshop.platform.settings import PlatformSettings


@dataclass
class Infrastructure:
    """The process-wide parts services share: settings, metrics, bus, cache, and database access."""

    settings: PlatformSettings
    metrics: Metrics
    bus: Bus
    cache: Cache
    databases: list[database.Database] = field(default_factory=list)

    async def database(self, schema: str) -> database.Database:
        db = await database.connect_as_configured(self.settings, schema, pool_size=self.settings.db_pool_size)
        self.databases.append(db)
        return db

    def outbox_relay(self, db: Database, *, interval: float = POLL_SECONDS) -> OutboxRelay:
        """The relay of a service's outbox, which also prunes its inbox."""
        return OutboxRelay(
            db,
            self.bus,
            self.metrics,
            interval=interval,
            linger=self.settings.outbox_linger_seconds,
            inbox_retention=self.settings.inbox_retention_seconds,
        )

    async def close_databases(self) -> None:
        while self.databases:
            await self.databases.pop().close()


class HostedService(Protocol):
    """A service as a process hosts it: routes to serve, migrations to run, a start and a stop."""

    name: str

    @property
    def migrations(self) -> Path | None: ...

    def routers(self) -> list[Router]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def check_ready(self) -> None: ...
