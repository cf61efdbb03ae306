"""How many SQL statements orders spends on one checkout on SQLite (the whole budget is checked on
PostgreSQL, where the shop runs at the peak: `tests/integration/orders/test_orders_statements_on_postgres.py`).

Counted with the database port's statement log around one checkout of the in-process shop. Left
out: the sandbox gateway's own tables (they stand for an external provider), the transaction
brackets, and the background outbox relays (they publish after the checkout, off its path).
"""

from __future__ import annotations

from collections import Counter

from peakshop.platform.db import Statement, statement_log
from tests.unit.orders.orders_shop import Shop, order_request


def on_the_checkout_path(statement: Statement) -> bool:
    return "sandbox_" not in statement.sql


async def counted_checkout(shop: Shop) -> Counter[str]:
    await shop.orders.handlers.place_order("acct-1", "warm-up", order_request())
    shop.cart.fill("cart-2", "acct-1", sku_red=1, sku_blue=3)
    # Only what this checkout sends is recorded: the relays and sweepers run in tasks of their own.
    log: list[Statement] = []
    token = statement_log.set(log)
    try:
        await shop.orders.handlers.place_order("acct-1", "counted", order_request("cart-2"))
    finally:
        statement_log.reset(token)
    statements = [s for s in log if on_the_checkout_path(s)]
    for statement in statements:
        print(f"  {statement.schema}/{statement.transaction}: {statement.sql[:110]}")
    return Counter(s.schema for s in statements)


async def test_orders_spends_five_statements_on_a_checkout_on_sqlite(shop: Shop) -> None:
    # attempt, lines, step `reserved`, confirm, OrderPlaced (PostgreSQL: 3, see the integration test).
    assert (await counted_checkout(shop))["orders"] == 5
