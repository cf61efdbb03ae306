"""The users service as a process hosts it."""

from __future__ import annotations

import time
from pathlib import Path

from litestar import Router

from peakshop.platform.db import Database
from peakshop.platform.outbox import OutboxRelay
from peakshop.platform.problems import Unavailable
from peakshop.platform.service import Infrastructure
from peakshop.users.api import create_router
from peakshop.users.client import LocalUsersClient
from peakshop.users.domain import SCHEMA
from peakshop.users.handlers import Clock, UsersHandlers
from peakshop.users.settings import UsersSettings

MIGRATIONS = Path(__file__).parent / "migrations"


class UsersService:
    """Routes and handlers exist from construction; the database and the relay from `start` on.

    Requests that arrive before `start` (or after `stop`) get a 503 problem rather than a crash.
    """

    name = "users"

    def __init__(self, infra: Infrastructure, settings: UsersSettings, *, clock: Clock = time.time) -> None:
        self._infra = infra
        self.settings = settings
        self.handlers = UsersHandlers(settings, infra.cache, clock=clock, outbox_written=self._wake_relay)
        self._db: Database | None = None
        self._relay: OutboxRelay | None = None

    @property
    def migrations(self) -> Path:
        return MIGRATIONS

    def routers(self) -> list[Router]:
        return [create_router(self.handlers)]

    def client(self) -> LocalUsersClient:
        """The in-process client other services hosted in this process use."""
        return LocalUsersClient(self.handlers)

    async def start(self) -> None:
        self._db = await self._infra.database(SCHEMA)
        self.handlers.attach(self._db)
        # The decoy hash that unknown-email log-ins verify against, made before the first request.
        await self.handlers.passwords.warm_up()
        self._relay = self._infra.outbox_relay(self._db)
        self._relay.start()

    async def stop(self) -> None:
        self.handlers.detach()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        # The connection pool belongs to `Infrastructure`, which closes every database it opened.
        self._db = None

    async def check_ready(self) -> None:
        if self._db is None:
            raise Unavailable("The users service is not started.", service="users")
        await self._db.ping()

    def _wake_relay(self) -> None:
        if self._relay is not None:
            self._relay.wake()
