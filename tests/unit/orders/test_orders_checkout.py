from __future__ import annotations

import asyncio

import msgspec
import pytest

from peakshop.contracts.orders import OrderPlaced, PlaceOrder
from peakshop.platform.problems import Problem
from tests.unit.orders.orders_shop import (
    ADDRESS,
    PRICES,
    Shop,
    one_order_from_checkouts_under_many_keys,
    order_request,
)


async def test_a_checkout_reserves_charges_and_confirms_an_order_priced_by_the_server(shop: Shop) -> None:
    order = await shop.orders.handlers.place_order("acct-1", "key-1", order_request())

    assert (order.status, order.failure_reason, order.currency) == ("confirmed", None, "EUR")
    expected = 2 * PRICES["sku-red"] + PRICES["sku-blue"]
    assert (order.subtotal, order.total) == (expected, expected)
    assert [(line.sku_id, line.quantity, line.line_total) for line in order.lines] == [
        ("sku-blue", 1, PRICES["sku-blue"]),
        ("sku-red", 2, 2 * PRICES["sku-red"]),
    ]
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (8, 0, 2)
    payment = await shop.payments.client().get(order.id)
    assert (payment.status, payment.amount) == ("captured", expected)
    assert await shop.placed_carts() == {order.id: "cart-1"}  # the cart service closes it on this
    assert shop.count("peakshop_orders_total", outcome="confirmed") == 1
    assert shop.count("peakshop_checkouts_started_total") == 1
    assert shop.count("peakshop_checkout_duration_seconds_count", outcome="confirmed") == 1
    (payload,) = await shop.events("orders.placed")
    placed = msgspec.json.decode(payload, type=OrderPlaced)
    assert (placed.order_id, placed.total, len(placed.lines)) == (order.id, expected, 2)


async def test_the_same_key_and_body_returns_the_stored_order_without_a_second_charge(shop: Shop) -> None:
    first = await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    again = await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert again == first
    assert await shop.charges() == 1
    assert shop.count("peakshop_checkouts_started_total") == 1


async def test_the_same_key_with_another_body_is_refused_with_422(shop: Shop) -> None:
    await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    other = order_request(address=msgspec.structs.replace(ADDRESS, city="Paris"))
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", other)
    assert (raised.value.status, raised.value.slug) == (422, "idempotency-key-reused")
    assert await shop.scalar("orders", "SELECT count(*) FROM orders.orders") == 1


async def test_a_missing_key_is_428(shop: Shop) -> None:
    for key in (None, "", "  "):
        with pytest.raises(Problem) as raised:
            await shop.orders.handlers.place_order("acct-1", key, order_request())
        assert (raised.value.status, raised.value.slug) == (428, "idempotency-key-required")


async def test_a_sold_out_sku_fails_the_order_and_every_repeat_gets_the_same_409(shop: Shop) -> None:
    shop.cart.fill("cart-2", "acct-1", sku_last=2)
    for _ in range(2):
        with pytest.raises(Problem) as raised:
            await shop.orders.handlers.place_order("acct-1", "key-2", order_request("cart-2"))
        assert (raised.value.status, raised.value.slug) == (409, "sold-out")
        assert raised.value.extra["sku_ids"] == ["sku-last"]
    (order,) = (await shop.orders.handlers.orders_of("acct-1")).items
    assert (order.status, order.failure_reason) == ("failed", "sold-out")
    assert await shop.charges() == 0
    last = await shop.level("sku-last")
    assert (last.available, last.reserved, last.sold) == (1, 0, 0)
    assert shop.count("peakshop_orders_total", outcome="failed") == 1


async def test_a_declined_card_releases_the_stock_and_fails_the_order_with_402(shop: Shop) -> None:
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_decline"))
    assert (raised.value.status, raised.value.slug) == (402, "payment-declined")
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (10, 0, 0)
    with pytest.raises(Problem) as again:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_decline"))
    assert (again.value.status, again.value.slug) == (402, "payment-declined")
    assert await shop.charges("captured") == 0
    assert await shop.placed_carts() == {}


async def test_a_provider_error_releases_the_stock_and_fails_with_502(shop: Shop) -> None:
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_error"))
    assert (raised.value.status, raised.value.slug) == (502, "payment-provider-error")
    assert (await shop.level("sku-red")).available == 10


async def test_a_hundred_concurrent_requests_with_one_key_make_one_order_and_one_charge(shop: Shop) -> None:
    results = await asyncio.gather(
        *(shop.orders.handlers.place_order("acct-1", "key-1", order_request()) for _ in range(100)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert len({order.id for order in results if not isinstance(order, BaseException)}) == 1
    assert await shop.scalar("orders", "SELECT count(*) FROM orders.orders") == 1
    assert await shop.charges() == 1
    assert await shop.charges("captured") == 1
    assert (await shop.level("sku-red")).sold == 2


async def test_two_buyers_racing_for_the_last_unit_get_one_order(shop: Shop) -> None:
    shop.cart.fill("cart-a", "acct-a", sku_last=1)
    shop.cart.fill("cart-b", "acct-b", sku_last=1)
    results = await asyncio.gather(
        shop.orders.handlers.place_order("acct-a", "k", order_request("cart-a")),
        shop.orders.handlers.place_order("acct-b", "k", order_request("cart-b")),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Problem)]
    assert len(refused) == 1 and refused[0].slug == "sold-out"
    assert await shop.charges("captured") == 1
    last = await shop.level("sku-last")
    assert (last.available, last.reserved, last.sold) == (0, 0, 1)


async def test_an_empty_or_foreign_cart_is_refused(shop: Shop) -> None:
    shop.cart.fill("cart-empty", "acct-1")
    with pytest.raises(Problem) as empty:
        await shop.orders.handlers.place_order("acct-1", "key-e", order_request("cart-empty"))
    assert (empty.value.status, empty.value.slug) == (409, "cart-empty")
    with pytest.raises(Problem) as foreign:
        await shop.orders.handlers.place_order("acct-2", "key-f", order_request("cart-1"))
    assert foreign.value.status == 404
    assert await shop.scalar("orders", "SELECT count(*) FROM orders.orders") == 0


async def test_an_in_process_request_gets_the_contract_checked_as_over_http(shop: Shop) -> None:
    bad = PlaceOrder(
        cart_id="cart-1",
        shipping_address=msgspec.structs.replace(ADDRESS, country="Germany"),
        payment_token="tok_visa",
    )
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", bad)
    assert raised.value.status == 400


async def test_a_cart_ordered_under_one_key_is_refused_under_another(shop: Shop) -> None:
    # The fake cart, like the real one before `orders.placed` reaches it, is still open.
    first = await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-2", order_request())
    assert (raised.value.status, raised.value.slug) == (409, "cart-closed")
    assert raised.value.extra["order_id"] == first.id
    assert await shop.scalar("orders", "SELECT count(*) FROM orders.orders") == 1
    assert await shop.charges() == 1
    assert (await shop.level("sku-red")).sold == 2


async def test_concurrent_checkouts_of_one_cart_under_many_keys_make_one_order(shop: Shop) -> None:
    await one_order_from_checkouts_under_many_keys(shop)
    assert (await shop.level("sku-red")).sold == 2


async def test_the_other_order_of_a_shared_anonymous_cart_is_named_to_its_buyer_only(shop: Shop) -> None:
    shop.cart.fill("cart-anon", None, sku_red=1)
    first = await shop.orders.handlers.place_order("acct-1", "key-1", order_request("cart-anon"))
    with pytest.raises(Problem) as stranger:
        await shop.orders.handlers.place_order("acct-2", "key-2", order_request("cart-anon"))
    assert (stranger.value.status, stranger.value.slug) == (409, "cart-closed")
    assert "order_id" not in stranger.value.to_dict()
    with pytest.raises(Problem) as buyer:
        await shop.orders.handlers.place_order("acct-1", "key-3", order_request("cart-anon"))
    assert buyer.value.extra["order_id"] == first.id
    assert await shop.charges() == 1


async def test_a_cart_whose_checkout_failed_can_be_checked_out_under_a_new_key(shop: Shop) -> None:
    with pytest.raises(Problem):
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_decline"))
    order = await shop.orders.handlers.place_order("acct-1", "key-2", order_request())
    assert order.status == "confirmed"
    assert await shop.charges("captured") == 1
