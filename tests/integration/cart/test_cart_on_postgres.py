"""The cart on PostgreSQL: the same behaviour as on SQLite, and limits that hold under concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from peakshop.cart.handlers import CartHandlers
from peakshop.cart.settings import CartSettings
from peakshop.contracts.cart import AddItem, ChangeQuantity
from peakshop.contracts.catalog import SkuPrice
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Problem
from tests.integration.cart.conftest import PricedCatalog


async def problem_of(call: Any) -> Problem:
    with pytest.raises(Problem) as raised:
        await call
    return raised.value


def quantities(cart: Any) -> dict[str, int]:
    return {line.sku_id: line.quantity for line in cart.lines}


async def test_a_cart_lives_its_life_on_postgres(
    pg_cart: CartHandlers, priced_catalog: PricedCatalog
) -> None:
    anonymous = await pg_cart.add_item(None, None, AddItem("sku_01", 2))
    anonymous = await pg_cart.add_item(anonymous.id, None, AddItem("sku_02", 9))
    anonymous = await pg_cart.change_quantity(anonymous.id, None, "sku_01", ChangeQuantity(3))
    assert quantities(anonymous) == {"sku_01": 3, "sku_02": 9}
    assert anonymous.subtotal == 3 * 101 + 9 * 102
    for bad in (0, -1, 1.5, 10**12, "2"):
        refused = await problem_of(pg_cart.add_item(anonymous.id, None, AddItem("sku_01", bad)))
        assert (refused.status, refused.extra["field"]) == (400, "quantity")
    assert (
        await problem_of(pg_cart.add_item(anonymous.id, None, AddItem("sku_nope", 1)))
    ).slug == "unknown-sku"
    over = await problem_of(pg_cart.add_item(anonymous.id, None, AddItem("sku_02", 2)))
    assert (over.status, over.extra["limit"]) == (409, "max_line_quantity")

    mine = await pg_cart.add_item(None, "acct-1", AddItem("sku_02", 5))
    assert (await problem_of(pg_cart.get_cart(mine.id, "acct-2"))).slug == "cart-not-found"
    assert (await problem_of(pg_cart.get_cart(mine.id, None))).slug == "cart-not-found"
    merged = await pg_cart.merge(anonymous.id, "acct-1")
    assert merged.id == mine.id and quantities(merged) == {"sku_02": 10, "sku_01": 3}
    assert quantities(await pg_cart.merge(anonymous.id, "acct-1")) == quantities(merged)

    priced_catalog.prices["sku_01"] = SkuPrice("sku_01", "p_sku_01", "Item", 555, "USD")  # after the add
    assert (await pg_cart.checkout_lines(mine.id, "acct-1")).subtotal == 10 * 102 + 3 * 555
    await pg_cart.mark_checked_out(mine.id, "order-1")
    await pg_cart.mark_checked_out(mine.id, "order-1")
    assert (await problem_of(pg_cart.mark_checked_out(mine.id, "order-2"))).slug == "cart-closed"
    after = await pg_cart.add_item(None, "acct-1", AddItem("sku_03", 1))
    assert after.id != mine.id


async def test_concurrent_adds_cannot_pass_the_line_limit(pg_cart: CartHandlers) -> None:
    shown = await pg_cart.add_item(None, None, AddItem("sku_00", 1))
    results = await asyncio.gather(
        *(pg_cart.add_item(shown.id, None, AddItem(f"sku_{n:02d}", 1)) for n in range(1, 25)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Problem)]
    assert len(refused) == 20 and {r.slug for r in refused} == {"cart-limit"}
    assert len((await pg_cart.get_cart(shown.id, None)).lines) == 5


async def test_concurrent_adds_of_one_sku_cannot_pass_the_quantity_limit(pg_cart: CartHandlers) -> None:
    shown = await pg_cart.add_item(None, None, AddItem("sku_00", 1))
    results = await asyncio.gather(
        *(pg_cart.add_item(shown.id, None, AddItem("sku_00", 1)) for _ in range(20)), return_exceptions=True
    )
    assert sum(isinstance(r, Problem) for r in results) == 11
    assert quantities(await pg_cart.get_cart(shown.id, None)) == {"sku_00": 10}


async def test_concurrent_first_adds_and_merges_of_one_account_meet_in_one_cart(
    pg_cart: CartHandlers,
) -> None:
    shown = await asyncio.gather(
        *(pg_cart.add_item(None, "acct-1", AddItem(f"sku_{n:02d}", 1)) for n in range(4))
    )
    assert len({c.id for c in shown}) == 1
    anonymous = await pg_cart.add_item(None, None, AddItem("sku_00", 2))
    merges = await asyncio.gather(*(pg_cart.merge(anonymous.id, "acct-1") for _ in range(5)))
    assert {c.id for c in merges} == {shown[0].id}
    # Poured in exactly once, however many log-ins raced.
    assert quantities(await pg_cart.account_cart("acct-1"))["sku_00"] == 3


async def test_carts_survive_a_new_connection_pool(
    cart_pg_url: str, pg_cart: CartHandlers, priced_catalog: PricedCatalog
) -> None:
    shown = await pg_cart.add_item(None, "acct-1", AddItem("sku_05", 4))
    db = await PostgresDatabase.connect(cart_pg_url, "cart", pool_size=2)
    try:
        other = CartHandlers(CartSettings(), Metrics(), priced_catalog, database=db)
        assert await other.get_cart(shown.id, "acct-1") == shown
    finally:
        await db.close()
