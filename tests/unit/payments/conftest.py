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
from peakshop.platform.db import SqliteDatabase, sqlite_path
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade

SECRET = "unit-test-webhook-secret"


class FakeClock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Payments:
    handlers: PaymentsHandlers
    sandbox: SandboxGateway
    webhooks: WebhookDeliverer
    metrics: Metrics
    db: SqliteDatabase

    def count(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value("peakshop_payments_total", {"outcome": outcome})
        return value or 0.0

    async def scalar(self, sql: str, *args: Any) -> Any:
        row = await self.db.fetchrow(sql, *args)
        return None if row is None else row[0]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


async def open_payments_db(data_dir: Path) -> SqliteDatabase:
    return await SqliteDatabase.connect(sqlite_path(data_dir, "payments"), "payments")


@pytest.fixture
async def payments_db(data_dir: Path) -> AsyncIterator[SqliteDatabase]:
    await asyncio.to_thread(
        upgrade, MIGRATIONS, "payments", embedded=True, data_dir=data_dir, postgres_url=""
    )
    db = await open_payments_db(data_dir)
    yield db
    await db.close()


def build(db: SqliteDatabase, clock: FakeClock, **overrides: Any) -> Payments:
    settings = PaymentsSettings(**overrides)
    metrics = Metrics()
    sandbox = SandboxGateway(db, settings, clock=clock)
    handlers = PaymentsHandlers(settings, metrics, SECRET, database=db, gateway=sandbox, clock=clock)
    webhooks = WebhookDeliverer(sandbox, SECRET, handlers.receive_webhook, clock=clock)
    return Payments(handlers, sandbox, webhooks, metrics, db)


@pytest.fixture
def make_payments(payments_db: SqliteDatabase, clock: FakeClock) -> Callable[..., Payments]:
    def make(**overrides: Any) -> Payments:
        return build(payments_db, clock, **overrides)

    return make


@pytest.fixture
def payments(make_payments: Callable[..., Payments]) -> Payments:
    return make_payments()
