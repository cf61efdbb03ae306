from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import PROBLEM_BASE, Problem
from peakshop.platform.web import Readiness, create_app
from tests.unit.orders.orders_shop import Shop, order_request

BODY = {
    "cart_id": "cart-1",
    "shipping_address": {
        "name": "Ada Buyer",
        "line1": "1 Market Street",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
    },
    "payment_token": "tok_visa",
}
BUYER = {"x-peakshop-account-id": "acct-1"}


@pytest.fixture
async def api(shop: Shop) -> AsyncIterator[AsyncTestClient]:
    app = create_app(
        name="orders", routers=shop.orders.routers(), lifespan=None, metrics=Metrics(), readiness=Readiness()
    )
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_history_is_newest_first_in_pages_and_holds_failed_orders(shop: Shop) -> None:
    placed = []
    for n in range(5):
        shop.cart.fill(f"cart-h{n}", "acct-1", sku_red=1)
        token = "tok_decline" if n == 2 else "tok_visa"
        try:
            placed.append(
                (
                    await shop.orders.handlers.place_order(
                        "acct-1", f"h{n}", order_request(f"cart-h{n}", token)
                    )
                ).id
            )
        except Problem:
            placed.append((await shop.orders.handlers.orders_of("acct-1", 1)).items[0].id)
    first = await shop.orders.handlers.orders_of("acct-1", limit=2)
    second = await shop.orders.handlers.orders_of("acct-1", limit=2, cursor=first.next_cursor)
    third = await shop.orders.handlers.orders_of("acct-1", limit=2, cursor=second.next_cursor)
    ids = [o.id for page in (first, second, third) for o in page.items]
    assert ids == list(reversed(placed))
    assert third.next_cursor is None
    assert [o.status for o in second.items] == ["failed", "confirmed"]
    assert (await shop.orders.handlers.orders_of("acct-2")).items == []


async def test_another_buyers_order_is_not_found_never_forbidden(shop: Shop) -> None:
    order = await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert (await shop.orders.handlers.order("acct-1", order.id)) == order
    for account_id, order_id in (("acct-2", order.id), ("acct-1", "ord_missing")):
        with pytest.raises(Problem) as raised:
            await shop.orders.handlers.order(account_id, order_id)
        assert (raised.value.status, raised.value.slug) == (404, "not-found")


async def test_a_bad_cursor_is_a_400(shop: Shop) -> None:
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.orders_of("acct-1", cursor="not-a-cursor")
    assert (raised.value.status, raised.value.slug) == (400, "invalid-cursor")


async def test_the_audit_lists_confirmed_totals_and_no_reused_key(shop: Shop) -> None:
    order = await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    facts = await shop.orders.audit_facts()
    assert [(f.order_id, f.total, f.currency) for f in facts.confirmed] == [(order.id, order.total, "EUR")]
    assert facts.duplicated_keys == []
    assert facts.carts_ordered_twice == []


async def test_place_and_read_an_order_over_http(api: AsyncTestClient) -> None:
    created = await api.post("/internal/orders", json=BODY, headers={**BUYER, "Idempotency-Key": "k1"})
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "confirmed"
    repeated = await api.post("/internal/orders", json=BODY, headers={**BUYER, "Idempotency-Key": "k1"})
    assert (repeated.status_code, repeated.json()) == (201, order)
    read = await api.get(f"/internal/orders/{order['id']}", headers=BUYER)
    assert read.json() == order
    foreign = await api.get(f"/internal/orders/{order['id']}", headers={"x-peakshop-account-id": "acct-2"})
    assert (foreign.status_code, foreign.json()["type"]) == (404, PROBLEM_BASE + "not-found")
    page = await api.get("/internal/orders", headers=BUYER, params={"limit": 5})
    assert [o["id"] for o in page.json()["items"]] == [order["id"]]
    audit = await api.get("/internal/orders/audit")
    assert audit.json()["duplicated_keys"] == []


async def test_a_price_sent_by_the_client_is_refused_with_400(api: AsyncTestClient) -> None:
    for extra in ({"total": 1}, {"price": 1}):
        response = await api.post(
            "/internal/orders", json={**BODY, **extra}, headers={**BUYER, "Idempotency-Key": "k1"}
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_missing_key_is_428_over_http(api: AsyncTestClient) -> None:
    response = await api.post("/internal/orders", json=BODY, headers=BUYER)
    assert (response.status_code, response.json()["type"]) == (428, PROBLEM_BASE + "idempotency-key-required")


async def test_a_timeout_is_a_503_with_retry_after_over_http(api: AsyncTestClient) -> None:
    body = {**BODY, "payment_token": "tok_timeout"}
    response = await api.post("/internal/orders", json=body, headers={**BUYER, "Idempotency-Key": "k1"})
    assert (response.status_code, response.headers["retry-after"]) == (503, "2")
    assert response.json()["type"] == PROBLEM_BASE + "payment-pending"
    reconciled = await api.post("/internal/orders/reconcile", params={"older_than": 0})
    assert [r["outcome"] for r in reconciled.json()] == ["confirmed"]
