"""Real PostgreSQL for the payments service: a scratch database per test, migrated here.

Unreachable PostgreSQL skips these tests, or fails them when `PEAKSHOP_REQUIRE_SERVICES=1` (as in CI):
the shared `scratch_postgres_url` fixture decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from peakshop.payments.handlers import PaymentsHandlers
from peakshop.payments.sandbox import SandboxGateway, WebhookDeliverer
from peakshop.payments.service import MIGRATIONS
from peakshop.payments.settings import PaymentsSettings
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade

SECRET = "integration-test-webhook-secret"


@dataclass
class PgPayments:
    handlers: PaymentsHandlers
    sandbox: SandboxGateway
    webhooks: WebhookDeliverer
    metrics: Metrics
    db: PostgresDatabase

    def count(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value("peakshop_payments_total", {"outcome": outcome})
        return value or 0.0

    async def scalar(self, sql: str, *args: Any) -> Any:
        row = await self.db.fetchrow(sql, *args)
        return None if row is None else row[0]


def build_on(db: PostgresDatabase, **overrides: Any) -> PgPayments:
    settings = PaymentsSettings(**overrides)
    metrics = Metrics()
    sandbox = SandboxGateway(db, settings)
    handlers = PaymentsHandlers(settings, metrics, SECRET, database=db, gateway=sandbox)
    webhooks = WebhookDeliverer(sandbox, SECRET, handlers.receive_webhook)
    return PgPayments(handlers, sandbox, webhooks, metrics, db)


@pytest.fixture
async def payments_pg_url(scratch_postgres_url: str) -> str:
    await asyncio.to_thread(
        upgrade, MIGRATIONS, "payments", embedded=False, data_dir=Path("."), postgres_url=scratch_postgres_url
    )
    return scratch_postgres_url


@pytest.fixture
async def pg_db(payments_pg_url: str) -> AsyncIterator[PostgresDatabase]:
    db = await PostgresDatabase.connect(payments_pg_url, "payments", pool_size=10)
    yield db
    await db.close()


@pytest.fixture
def make_pg_payments(pg_db: PostgresDatabase) -> Callable[..., PgPayments]:
    def make(**overrides: Any) -> PgPayments:
        return build_on(pg_db, **overrides)

    return make
