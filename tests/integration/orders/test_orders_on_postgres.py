from __future__ import annotations

import asyncio

import msgspec
import pytest

from peakshop.contracts.orders import ReconciledOrder
from peakshop.platform.problems import Problem
from tests.integration.orders.conftest import MakePgShop
from tests.unit.orders.orders_shop import (
    ADDRESS,
    PRICES,
    Crashed,
    Shop,
    one_order_from_checkouts_under_many_keys,
    order_request,
)


async def steps(shop: Shop) -> list[str]:
    rows = await shop.infra.databases[-1].fetch("SELECT step FROM orders.orders ORDER BY created_at")
    return [row[0] for row in rows]


async def test_a_checkout_confirms_and_writes_order_placed_in_one_statement_with_the_confirmation(
    pg_shop: Shop,
) -> None:
    order = await pg_shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert order.status == "confirmed"
    assert order.total == 2 * PRICES["sku-red"] + PRICES["sku-blue"]
    assert await pg_shop.orders.handlers.order("acct-1", order.id) == order
    assert [line.sku_id for line in order.lines] == ["sku-blue", "sku-red"]
    assert len(await pg_shop.events("orders.placed")) == 1
    assert await pg_shop.charges("captured") == 1
    red = await pg_shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (8, 0, 2)


async def test_sold_out_and_decline_fail_the_order_and_give_the_stock_back(pg_shop: Shop) -> None:
    pg_shop.cart.fill("cart-2", "acct-1", sku_last=2)
    with pytest.raises(Problem) as sold_out:
        await pg_shop.orders.handlers.place_order("acct-1", "key-2", order_request("cart-2"))
    assert (sold_out.value.status, sold_out.value.slug) == (409, "sold-out")
    with pytest.raises(Problem) as declined:
        await pg_shop.orders.handlers.place_order("acct-1", "key-3", order_request(token="tok_decline"))
    assert (declined.value.status, declined.value.slug) == (402, "payment-declined")
    assert await steps(pg_shop) == ["failed", "failed"]
    assert (await pg_shop.level("sku-red")).available == 10
    assert await pg_shop.charges("captured") == 0
    assert len(await pg_shop.events("orders.failed")) == 2


async def test_a_hundred_concurrent_requests_with_one_key_make_one_order_and_one_charge(
    pg_shop: Shop,
) -> None:
    results = await asyncio.gather(
        *(pg_shop.orders.handlers.place_order("acct-1", "key-1", order_request()) for _ in range(100)),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await pg_shop.scalar("orders", "SELECT count(*) FROM orders.orders") == 1
    assert await pg_shop.charges() == 1
    assert await pg_shop.charges("captured") == 1
    assert (await pg_shop.orders.audit_facts()).duplicated_keys == []


async def test_the_same_key_with_another_body_is_422(pg_shop: Shop) -> None:
    await pg_shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    other = order_request(address=msgspec.structs.replace(ADDRESS, postal_code="99999"))
    with pytest.raises(Problem) as raised:
        await pg_shop.orders.handlers.place_order("acct-1", "key-1", other)
    assert raised.value.status == 422


async def test_ten_buyers_racing_for_the_last_unit_make_one_order(pg_shop: Shop) -> None:
    for n in range(10):
        pg_shop.cart.fill(f"cart-r{n}", f"acct-r{n}", sku_last=1)
    results = await asyncio.gather(
        *(
            pg_shop.orders.handlers.place_order(f"acct-r{n}", "k", order_request(f"cart-r{n}"))
            for n in range(10)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    last = await pg_shop.level("sku-last")
    assert (last.available, last.reserved, last.sold) == (0, 0, 1)
    assert await pg_shop.charges("captured") == 1


async def test_a_timeout_after_the_charge_is_settled_by_the_reconciler_with_one_capture(
    make_pg_shop: MakePgShop,
) -> None:
    shop = await make_pg_shop()
    await shop.restock("sku-red", 10)
    shop.cart.fill("cart-1", "acct-1", sku_red=1)
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_timeout"))
    assert (raised.value.status, raised.value.slug) == (503, "payment-pending")
    assert await steps(shop) == ["reserved"]
    (reconciled,) = await shop.orders.reconcile(0)
    assert reconciled.outcome == "confirmed"
    assert await shop.charges("captured") == 1
    assert await shop.orders.reconcile(0) == []


async def test_a_crash_between_reserve_and_authorize_is_released_and_failed(make_pg_shop: MakePgShop) -> None:
    shop = await make_pg_shop(crash_after="reserve")
    await shop.restock("sku-red", 10)
    shop.cart.fill("cart-1", "acct-1", sku_red=3)
    with pytest.raises(Crashed):
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    (summary,) = (await shop.orders.handlers.orders_of("acct-1")).items
    assert await shop.orders.reconcile(0) == [ReconciledOrder(summary.id, "failed")]
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (10, 0, 0)
    assert await shop.charges() == 0


async def test_replicas_reconciling_at_once_settle_each_attempt_once(make_pg_shop: MakePgShop) -> None:
    shop = await make_pg_shop(crash_after="authorize")
    other = await make_pg_shop()  # a second replica (its start-up pass finds nothing yet)
    await shop.restock("sku-red", 50)
    for n in range(6):
        shop.cart.fill(f"cart-{n}", "acct-1", sku_red=1)
        with pytest.raises(Crashed):
            await shop.orders.handlers.place_order("acct-1", f"key-{n}", order_request(f"cart-{n}"))
    reports = await asyncio.gather(shop.orders.reconcile(0), other.orders.reconcile(0))
    settled = [r.order_id for report in reports for r in report]
    assert len(settled) == len(set(settled)) == 6
    assert await shop.charges("captured") == 6
    assert (await shop.level("sku-red")).sold == 6


async def test_history_and_a_foreign_order(pg_shop: Shop) -> None:
    order = await pg_shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    page = await pg_shop.orders.handlers.orders_of("acct-1")
    assert [o.id for o in page.items] == [order.id]
    with pytest.raises(Problem) as raised:
        await pg_shop.orders.handlers.order("acct-2", order.id)
    assert raised.value.status == 404


async def test_concurrent_checkouts_of_one_cart_under_many_keys_make_one_order(pg_shop: Shop) -> None:
    order = await one_order_from_checkouts_under_many_keys(pg_shop)
    with pytest.raises(Problem) as later:
        await pg_shop.orders.handlers.place_order("acct-1", "key-late", order_request())
    assert (later.value.slug, later.value.extra["order_id"]) == ("cart-closed", order.id)
