"""How many SQL statements one checkout costs, per service (brief: at most 12 in all).

Counted with SQLite's statement trace on every connection of the in-process shop. Left out: the
sandbox gateway's own tables (they stand for an external provider), the transaction brackets, and
the background outbox relays (they publish after the checkout, off its path).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from peakshop.platform.db import SqliteDatabase
from tests.unit.orders.orders_shop import Shop, order_request

BUDGET = 12


async def trace(shop: Shop) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for db in shop.infra.databases:
        assert isinstance(db, SqliteDatabase)
        for conn in (db._writer, db._reader):
            await conn.set_trace_callback(lambda sql, schema=db.schema: seen.append((schema, sql)))
    return seen


def on_the_checkout_path(sql: str) -> bool:
    text = sql.strip().upper()
    if text in ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
        return False
    return "SANDBOX_" not in text and "PUBLISHED_AT" not in text


async def counted_checkout(shop: Shop) -> Counter[str]:
    await shop.orders.handlers.place_order("acct-1", "warm-up", order_request())
    shop.cart.fill("cart-2", "acct-1", sku_red=1, sku_blue=3)
    await asyncio.sleep(0.3)  # let the relays publish the warm-up's events first
    seen = await trace(shop)
    await shop.orders.handlers.place_order("acct-1", "counted", order_request("cart-2"))
    statements = [(schema, sql) for schema, sql in seen if on_the_checkout_path(sql)]
    for schema, sql in statements:
        print(f"  {schema}: {sql[:110]}")
    return Counter(schema for schema, _ in statements)


async def test_orders_spends_five_statements_on_a_checkout_on_sqlite(shop: Shop) -> None:
    # attempt, lines, step `reserved`, confirm, OrderPlaced (PostgreSQL: 3, see the integration test).
    assert (await counted_checkout(shop))["orders"] == 5


@pytest.mark.xfail(reason="inventory (6) and payments (5) spend more than their share; see docs/orders.md")
async def test_a_whole_checkout_costs_at_most_twelve_statements(shop: Shop) -> None:
    by_service = await counted_checkout(shop)
    assert sum(by_service.values()) <= BUDGET, dict(by_service)
