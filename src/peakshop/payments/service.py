"""The payments service as a process hosts it."""

from __future__ import annotations

import time
from pathlib import Path

from litestar import Router

from peakshop.payments.api import create_router
from peakshop.payments.client import LocalPaymentsClient
from peakshop.payments.domain import SCHEMA
from peakshop.payments.gateway import PaymentGateway
from peakshop.payments.handlers import Clock, PaymentsHandlers
from peakshop.payments.sandbox import SandboxGateway, WebhookDeliverer
from peakshop.payments.settings import PaymentsSettings
from peakshop.platform.db import Database
from peakshop.platform.outbox import OutboxRelay
from peakshop.platform.problems import Unavailable
from peakshop.platform.service import Infrastructure

MIGRATIONS = Path(__file__).parent / "migrations"


class PaymentsService:
    """Routes and handlers exist from construction; the database, gateway and relay from `start` on.

    With the sandbox gateway, the sandbox's webhooks are signed and delivered to this service's own
    webhook handler, as a provider would POST them, so signature checks run on every delivery.
    """

    name = "payments"

    def __init__(
        self,
        infra: Infrastructure,
        settings: PaymentsSettings,
        *,
        gateway: PaymentGateway | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._infra = infra
        self.settings = settings
        self._clock = clock
        self._gateway = gateway
        self.handlers = PaymentsHandlers(
            settings,
            infra.metrics,
            infra.settings.webhook_secret,
            clock=clock,
            outbox_written=self._wake_relay,
        )
        self._db: Database | None = None
        self._relay: OutboxRelay | None = None
        self._webhooks: WebhookDeliverer | None = None

    @property
    def migrations(self) -> Path:
        return MIGRATIONS

    def routers(self) -> list[Router]:
        return [create_router(self.handlers)]

    def client(self) -> LocalPaymentsClient:
        """The in-process client other services hosted in this process use."""
        return LocalPaymentsClient(self)

    async def start(self) -> None:
        self._db = await self._infra.database(SCHEMA)
        gateway = self._gateway
        if gateway is None:
            sandbox = SandboxGateway(self._db, self.settings, clock=self._clock)
            self._webhooks = WebhookDeliverer(
                sandbox,
                self._infra.settings.webhook_secret,
                self.handlers.receive_webhook,
                interval=self.settings.sandbox_webhook_interval_seconds,
                clock=self._clock,
            )
            gateway = sandbox
        self.handlers.attach(self._db, gateway)
        self._relay = self._infra.outbox_relay(self._db)
        self._relay.start()
        if self._webhooks is not None:
            self._webhooks.start()

    async def deliver_webhooks(self) -> int:
        """Deliver the sandbox provider's pending webhooks now, instead of at the next interval."""
        return 0 if self._webhooks is None else await self._webhooks.deliver_pending()

    async def stop(self) -> None:
        if self._webhooks is not None:
            await self._webhooks.stop()
            self._webhooks = None
        self.handlers.detach()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        # The connection pool belongs to `Infrastructure`, which closes every database it opened.
        self._db = None

    async def check_ready(self) -> None:
        if self._db is None:
            raise Unavailable("The payments service is not started.", service="payments")
        await self._db.ping()

    def _wake_relay(self) -> None:
        if self._relay is not None:
            self._relay.wake()
