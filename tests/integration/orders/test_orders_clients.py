"""Both orders clients, local and HTTP (a real server), give the same answers and the same problems."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from peakshop.orders.client import HttpOrdersClient, OrdersClient
from peakshop.platform.problems import Problem
from tests.served import served
from tests.unit.orders.orders_shop import Shop, order_request


@pytest.fixture(params=["local", "http"])
async def orders(request: pytest.FixtureRequest, pg_shop: Shop) -> AsyncIterator[OrdersClient]:
    if request.param == "local":
        yield pg_shop.orders.client()
        return
    async with served("orders", pg_shop.orders.routers(), metrics=pg_shop.metrics) as base_url:
        client = HttpOrdersClient(base_url, timeout=10)
        await client.start()
        try:
            yield client
        finally:
            await client.close()


async def test_place_repeat_read_and_list_through_either_client(orders: OrdersClient) -> None:
    order = await orders.place_order("acct-1", "key-1", order_request())
    assert order.status == "confirmed"
    assert await orders.place_order("acct-1", "key-1", order_request()) == order
    assert await orders.order("acct-1", order.id) == order
    assert [o.id for o in (await orders.orders_of("acct-1", limit=5)).items] == [order.id]
    facts = await orders.audit_facts()
    assert [f.order_id for f in facts.confirmed] == [order.id]
    assert await orders.reconcile(0) == []


async def test_problems_are_the_same_through_either_client(orders: OrdersClient) -> None:
    for call, status, slug in (
        (orders.place_order("acct-1", None, order_request()), 428, "idempotency-key-required"),
        (orders.order("acct-2", "ord_nope"), 404, "not-found"),
        (orders.place_order("acct-1", "key-9", order_request(token="tok_decline")), 402, "payment-declined"),
    ):
        with pytest.raises(Problem) as raised:
            await call
        assert (raised.value.status, raised.value.slug) == (status, slug)
    with pytest.raises(Problem) as pending:
        await orders.place_order("acct-1", "key-t", order_request(token="tok_timeout"))
    assert (pending.value.status, pending.value.slug) == (503, "payment-pending")
    assert pending.value.headers["Retry-After"] == "2"
