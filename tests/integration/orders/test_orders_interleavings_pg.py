"""The checkout and reconciler interleavings once more, on PostgreSQL, with fewer examples."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peakshop.platform import db as database
from peakshop.platform.settings import PlatformSettings, load_platform_settings
from tests.unit.orders.orders_shop import migrate_all
from tests.unit.orders.test_orders_interleavings import TOKENS, play

pytestmark = pytest.mark.services

SCHEMAS = ("inventory", "payments", "orders")


async def _emptied(where: PlatformSettings) -> PlatformSettings:
    """Every table of the three services emptied, Alembic's own left as it is."""
    for schema in SCHEMAS:
        db = await database.connect_as_configured(where, schema, pool_size=1)
        try:
            rows = await db.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'alembic_version'",
                schema,
            )
            await db.fetch(f"TRUNCATE {', '.join(f'{schema}.{row[0]}' for row in rows)} CASCADE")
        finally:
            await db.close()
    return where


def test_any_interleaving_of_checkouts_and_the_reconciler_keeps_the_books_on_postgres(
    scratch_postgres_url: str, tmp_path: Path
) -> None:
    where = load_platform_settings(
        {},
        topology="split",
        postgres_url=scratch_postgres_url,
        webhook_secret="integration-test-webhook-secret",
        data_dir=tmp_path,
    )
    asyncio.run(migrate_all(where))

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data(), tokens=TOKENS)
    def interleaving(data: st.DataObject, tokens: tuple[str, str, str]) -> None:
        async def on_empty_tables() -> None:
            await play(data, await _emptied(where), tokens)

        asyncio.run(on_empty_tables())

    interleaving()
