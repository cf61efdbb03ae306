"""Every service's migrations go up, come all the way down, and go up again, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from peakshop.orders.audit import audit_facts
from peakshop.platform import db as database
from peakshop.platform import migrations
from peakshop.platform.settings import load_platform_settings
from peakshop.runtime.composition import BUILD_ORDER, Process
from peakshop.runtime.topology import load_topology

SERVICES_WITH_DATA = [name for name in BUILD_ORDER if name != "storefront"]


def _migrations_of(service: str, tmp_path: Path) -> Path:
    process = Process(load_topology("local"), "shop", load_platform_settings({}, data_dir=str(tmp_path)))
    script = process.services[service].migrations
    assert script is not None
    return script


async def _tables(db: database.Database) -> int:
    if db.dialect == "postgresql":
        row = await db.fetchrow(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", db.schema
        )
    else:
        row = await db.fetchrow(f"SELECT count(*) FROM {db.schema}.sqlite_master WHERE type = 'table'")
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("service", SERVICES_WITH_DATA)
async def test_migrations_go_up_down_and_up_again(
    service: str, dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    embedded = dialect == "sqlite"
    url = "" if embedded else request.getfixturevalue("scratch_postgres_url")
    where = {"embedded": embedded, "data_dir": tmp_path, "postgres_url": url}
    script = _migrations_of(service, tmp_path)
    counts = []
    for step in (migrations.upgrade, migrations.downgrade, migrations.upgrade):
        await asyncio.to_thread(step, script, service, **where)  # type: ignore[operator]
        db = await database.connect(schema=service, pool_size=1, **where)  # type: ignore[arg-type]
        try:
            counts.append(await _tables(db))
        finally:
            await db.close()
    up, down, up_again = counts
    assert up > 3 and up_again == up
    assert down == 1  # only Alembic's own version table is left


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("service", SERVICES_WITH_DATA)
async def test_upgrading_the_outbox_keeps_what_waits_and_drops_what_was_published(
    service: str, dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Revision 0002 drops `published_at`: a published row left behind would be published again."""
    embedded = dialect == "sqlite"
    url = "" if embedded else request.getfixturevalue("scratch_postgres_url")
    where = {"embedded": embedded, "data_dir": tmp_path, "postgres_url": url}
    script = _migrations_of(service, tmp_path)
    await asyncio.to_thread(migrations.upgrade, script, service, revision="0001", **where)  # type: ignore[arg-type]
    db = await database.connect(schema=service, pool_size=1, **where)  # type: ignore[arg-type]
    try:
        async with db.transaction() as tx:
            for event_id, published_at in (("sent", 1.0), ("waiting", None)):
                await tx.execute(
                    f"INSERT INTO {service}.outbox (id, topic, payload, occurred_at, published_at) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    event_id,
                    "demo.topic",
                    b"{}",
                    1.0,
                    published_at,
                )
    finally:
        await db.close()
    await asyncio.to_thread(migrations.upgrade, script, service, **where)  # type: ignore[arg-type]
    db = await database.connect(schema=service, pool_size=1, **where)  # type: ignore[arg-type]
    try:
        assert [row[0] for row in await db.fetch(f"SELECT id FROM {service}.outbox")] == ["waiting"]
    finally:
        await db.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_a_cart_sold_twice_before_revision_0003_stops_the_upgrade_and_shows_in_the_audit(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Orders 0003 makes a cart's order unique among those that did not fail; older data may break it."""
    embedded = dialect == "sqlite"
    url = "" if embedded else request.getfixturevalue("scratch_postgres_url")
    where = {"embedded": embedded, "data_dir": tmp_path, "postgres_url": url}
    script = _migrations_of("orders", tmp_path)
    await asyncio.to_thread(migrations.upgrade, script, "orders", revision="0002", **where)  # type: ignore[arg-type]
    db = await database.connect(schema="orders", pool_size=1, **where)  # type: ignore[arg-type]
    try:
        async with db.transaction() as tx:
            for order_id, key in (("ord_a", "key-a"), ("ord_b", "key-b")):
                await tx.execute(
                    "INSERT INTO orders.orders (id, account_id, idempotency_key, request_fingerprint, "
                    "cart_id, step, status, subtotal, total, currency, item_count, shipping_address, "
                    "created_at, updated_at) VALUES ($1, 'acct', $2, 'f', 'cart-1', 'confirmed', "
                    "'confirmed', 100, 100, 'EUR', 1, '{}', 1.0, 1.0)",
                    order_id,
                    key,
                )
        with pytest.raises(Exception, match=r"(?i)unique"):
            await asyncio.to_thread(migrations.upgrade, script, "orders", **where)  # type: ignore[arg-type]
        (fact,) = (await audit_facts(db)).carts_ordered_twice
        assert (fact.cart_id, fact.order_ids) == ("cart-1", ["ord_a", "ord_b"])
        # Once a person has settled it (one order failed), the upgrade goes through.
        async with db.transaction() as tx:
            await tx.execute("UPDATE orders.orders SET step = 'failed', status = 'failed' WHERE id = 'ord_b'")
        await asyncio.to_thread(migrations.upgrade, script, "orders", **where)  # type: ignore[arg-type]
        assert (await audit_facts(db)).carts_ordered_twice == []
    finally:
        await db.close()
