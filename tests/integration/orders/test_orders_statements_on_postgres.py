"""The statements one checkout costs on PostgreSQL, per service (brief: at most 12 in all).

Counted by wrapping the database port's PostgreSQL methods for the length of one checkout; left out,
as on SQLite: the sandbox gateway's tables and the background outbox relays.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from peakshop.platform import db as database
from tests.unit.orders.orders_shop import Shop, order_request

_TABLE = re.compile(r"\b(orders|inventory|payments|cart|catalog)\.\w+")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []

    def counting(cls: type, name: str) -> None:
        original = getattr(cls, name)

        async def wrapper(self: Any, sql: str, *args: Any) -> Any:
            rows = len(args[0]) if name == "executemany" else 1
            seen.extend([sql] * rows)
            return await original(self, sql, *args)

        monkeypatch.setattr(cls, name, wrapper)

    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
        counting(database._PgExecutor, name)
    for name in ("fetch", "fetchrow"):
        counting(database.PostgresDatabase, name)
    yield seen


async def test_orders_spends_three_statements_on_a_checkout_on_postgres(
    pg_shop: Shop, recorded: list[str]
) -> None:
    await pg_shop.orders.handlers.place_order("acct-1", "warm-up", order_request())
    pg_shop.cart.fill("cart-2", "acct-1", sku_red=1, sku_blue=3)
    await asyncio.sleep(0.3)  # let the relays publish the warm-up's events first
    recorded.clear()
    await pg_shop.orders.handlers.place_order("acct-1", "counted", order_request("cart-2"))
    on_path = [sql for sql in recorded if "sandbox_" not in sql and "published_at" not in sql]
    by_service = Counter(m.group(1) if (m := _TABLE.search(sql)) else "?" for sql in on_path)
    print("statements per checkout on PostgreSQL:", dict(by_service), "total", sum(by_service.values()))
    # attempt with its lines; step `reserved`; confirmation with OrderPlaced.
    assert by_service["orders"] == 3
