"""Both orders clients, local and HTTP (a real server), give the same answers and the same problems."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from granian.constants import Interfaces
from granian.server.embed import Server

from peakshop.orders.client import HttpOrdersClient, OrdersClient
from peakshop.platform.problems import Problem
from peakshop.platform.web import Readiness, create_app
from tests.unit.orders.orders_shop import Shop, order_request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_serving(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the test server did not start")


@pytest.fixture(params=["local", "http"])
async def orders(request: pytest.FixtureRequest, pg_shop: Shop) -> AsyncIterator[OrdersClient]:
    if request.param == "local":
        yield pg_shop.orders.client()
        return
    app = create_app(
        name="orders",
        routers=pg_shop.orders.routers(),
        lifespan=None,
        metrics=pg_shop.metrics,
        readiness=Readiness(),
    )
    port = free_port()
    server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False)
    serving = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{port}"
    await wait_until_serving(base_url)
    client = HttpOrdersClient(base_url, timeout=10)
    await client.start()
    try:
        yield client
    finally:
        await client.close()
        server.stop()
        await asyncio.wait_for(serving, 10)


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
