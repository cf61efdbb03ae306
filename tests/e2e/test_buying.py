"""Buying under contention, retries, a slow provider and a crash, on both topologies.

Every test ends with `peakshop audit` against the shop's live databases: no unit oversold, no order
lost or doubled, no charge without an order.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.buyers import a_sku_in_stock, add_to_cart, check_out, client_for, sign_up, sign_up_many
from tests.e2e.conftest import Shop, fresh_shop

pytestmark = pytest.mark.e2e


def _assert_audit_clean(shop: Shop) -> None:
    report = shop.audit()
    assert report["ok"], report["violations"]


async def test_a_flash_sale_sells_exactly_the_units_there_are(shop: Shop) -> None:
    """500 buyers, 50 units, one SKU: 50 orders, 450 clean sold-outs, no 5xx."""
    async with client_for(shop.base_url) as client:
        sku = await a_sku_in_stock(client, skip=3)
        result = shop.cli("stock", "set", sku, "--quantity", "50")
        assert result.returncode == 0, result.stderr
        buyers = await sign_up_many(client, 500, "flash")
        for start in range(0, 500, 100):
            await asyncio.gather(*(add_to_cart(client, b, sku) for b in buyers[start : start + 100]))
        responses = await asyncio.gather(*(check_out(client, b) for b in buyers))
    statuses = collections.Counter(r.status_code for r in responses)
    slugs = collections.Counter(
        r.json().get("type", "").rsplit("/", 1)[-1] for r in responses if r.status_code != 201
    )
    assert statuses == {201: 50, 409: 450}, (statuses, slugs)
    assert slugs == {"sold-out": 450}
    assert all(r.json()["status"] == "confirmed" for r in responses if r.status_code == 201)
    _assert_audit_clean(shop)


async def test_one_idempotency_key_makes_one_order_however_often_it_is_sent(shop: Shop) -> None:
    async with client_for(shop.base_url) as client:
        buyer = await sign_up(client, "retry")
        await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=5))
        key = uuid.uuid4().hex
        responses = await asyncio.gather(*(check_out(client, buyer, key=key) for _ in range(100)))
        statuses = collections.Counter(r.status_code for r in responses)
        assert set(statuses) <= {201, 409}, statuses
        assert {r.json()["id"] for r in responses if r.status_code == 201} and len(
            {r.json()["id"] for r in responses if r.status_code == 201}
        ) == 1
        in_progress = [r for r in responses if r.status_code == 409]
        assert all(r.json()["type"].endswith("/checkout-in-progress") for r in in_progress)
        orders = (await client.get("/api/orders", headers=buyer.auth)).json()["items"]
        assert len(orders) == 1 and orders[0]["status"] == "confirmed"
        other_body = await client.post(
            "/api/checkout",
            json={"cart_id": buyer.cart_id, "shipping_address": {"name": "Someone else", "line1": "2 Side St",
                  "city": "Shelbyville", "postal_code": "54321", "country": "US"}, "payment_token": "tok_visa"},
            headers={**buyer.auth, "idempotency-key": key},
        )  # fmt: skip
        assert other_body.status_code == 422
    _assert_audit_clean(shop)


async def test_one_cart_checked_out_under_many_keys_makes_one_order(shop: Shop) -> None:
    """A double click from a client that makes a key per click: one order, one charge, clean 409s."""
    async with client_for(shop.base_url) as client:
        buyer = await sign_up(client, "clicks")
        await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=6))
        responses = await asyncio.gather(*(check_out(client, buyer) for _ in range(10)))
        statuses = collections.Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: 9}, statuses
        (placed,) = [r.json() for r in responses if r.status_code == 201]
        slugs = {r.json()["type"].rsplit("/", 1)[-1] for r in responses if r.status_code == 409}
        assert slugs <= {"cart-checkout-in-progress", "cart-closed"}, slugs
        orders = (await client.get("/api/orders", headers=buyer.auth)).json()["items"]
        assert [(o["id"], o["status"]) for o in orders] == [(placed["id"], "confirmed")]
    _assert_audit_clean(shop)


async def test_a_payment_that_times_out_after_the_charge_ends_in_one_order_and_one_capture(
    shop: Shop,
) -> None:
    async with client_for(shop.base_url) as client:
        buyer = await sign_up(client, "timeout")
        await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=7))
        key = uuid.uuid4().hex
        first = await check_out(client, buyer, token="tok_timeout", key=key)
        assert first.status_code == 503 and first.json()["type"].endswith("/payment-pending")
        assert "retry-after" in first.headers
        deadline = time.monotonic() + 60
        while True:  # the buyer retries with the same key, as told; the reconciler settles meanwhile
            retry = await check_out(client, buyer, token="tok_timeout", key=key)
            if retry.status_code == 201 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert retry.status_code == 201, retry.text
        orders = (await client.get("/api/orders", headers=buyer.auth)).json()["items"]
        assert [o["status"] for o in orders] == ["confirmed"]
    _assert_audit_clean(shop)


async def test_a_declined_card_releases_the_stock_and_says_so(shop: Shop) -> None:
    async with client_for(shop.base_url) as client:
        buyer = await sign_up(client, "decline")
        await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=9))
        response = await check_out(client, buyer, token="tok_decline")
        assert response.status_code == 402 and response.json()["type"].endswith("/payment-declined")
        missing = await client.post("/api/checkout", json={}, headers=buyer.auth)
        assert missing.status_code == 400
        no_key = await client.post(
            "/api/checkout",
            json={"cart_id": buyer.cart_id, "shipping_address": {"name": "A", "line1": "1", "city": "X",
                  "postal_code": "1", "country": "US"}, "payment_token": "tok_visa", "total": 1},
            headers=buyer.auth,
        )  # fmt: skip
        assert no_key.status_code == 400 and "total" in no_key.text
    _assert_audit_clean(shop)


@pytest.mark.parametrize("topology", ["local", "split"])
async def test_a_crash_between_reservation_and_payment_is_recovered_at_restart(
    topology: str, tmp_path: Path
) -> None:
    with fresh_shop(topology, tmp_path) as setup:
        crashing = setup.start(PEAKSHOP_ORDERS_CRASH_AFTER="reserve")
        try:
            async with client_for(crashing.base_url) as client:
                buyer = await sign_up(client, "crash")
                sku = await a_sku_in_stock(client, skip=11)
                await add_to_cart(client, buyer, sku)
                try:
                    response = await check_out(client, buyer)
                    # split: the storefront lives on and reports its lost peer as a 5xx
                    assert response.status_code >= 500
                except Exception:  # local: the one process died under the request
                    pass
        finally:
            crashing.stop()
        restarted = setup.start()
        try:
            async with client_for(restarted.base_url) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    orders = (await client.get("/api/orders", headers=buyer.auth)).json()["items"]
                    if orders and orders[0]["status"] != "pending":
                        break
                    await asyncio.sleep(0.5)
                assert [o["status"] for o in orders] == ["failed"], orders
            _assert_audit_clean(restarted)
        finally:
            assert restarted.stop() == 0


async def test_the_cart_closes_once_its_order_is_placed(shop: Shop) -> None:
    async with client_for(shop.base_url) as client:
        buyer = await sign_up(client, "closing")
        await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=15))
        placed = await check_out(client, buyer)
        assert placed.status_code == 201, placed.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the cart service closes it on OrderPlaced, off the request
            cart = (await client.get("/api/cart", headers=buyer.auth)).json()
            if cart["id"] != buyer.cart_id:
                break
            await asyncio.sleep(0.1)
        assert cart["id"] != buyer.cart_id and cart["lines"] == [], cart
        again = await check_out(client, buyer)  # the closed cart cannot be bought twice
        assert again.status_code in (404, 409), again.text
