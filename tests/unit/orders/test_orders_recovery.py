from __future__ import annotations

import asyncio

import pytest
import structlog.testing

from peakshop.contracts.inventory import Reservation
from peakshop.contracts.orders import ReconciledOrder
from peakshop.contracts.payments import Authorize, Payment
from peakshop.orders.domain import checkout_abandoned
from peakshop.platform.problems import Problem
from tests.unit.orders.conftest import MakeShop
from tests.unit.orders.orders_shop import Crashed, Shop, order_request


async def stocked(make_shop: MakeShop, **overrides: object) -> Shop:
    shop = await make_shop(**overrides)
    await shop.restock("sku-red", 10)
    shop.cart.fill("cart-1", "acct-1", sku_red=2)
    return shop


async def only_order(shop: Shop, account_id: str = "acct-1") -> tuple[str, str]:
    (summary,) = (await shop.orders.handlers.orders_of(account_id)).items
    step = await shop.scalar("orders", "SELECT step FROM orders.orders WHERE id = $1", summary.id)
    return summary.id, step


async def test_a_gateway_timeout_is_503_pending_and_the_reconciler_confirms_with_one_capture(
    make_shop: MakeShop,
) -> None:
    shop = await stocked(make_shop, in_progress_wait_seconds=0)
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_timeout"))
    assert (raised.value.status, raised.value.slug) == (503, "payment-pending")
    assert raised.value.headers["Retry-After"] == "2"
    order_id, step = await only_order(shop)
    assert step == "reserved"  # never "failed" before the gateway was asked

    with pytest.raises(Problem) as repeat:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_timeout"))
    assert (repeat.value.status, repeat.value.slug) == (409, "checkout-in-progress")
    assert "Retry-After" in repeat.value.headers

    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "confirmed")]
    order = await shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_timeout"))
    assert (order.id, order.status) == (order_id, "confirmed")
    assert await shop.charges() == 1
    assert await shop.charges("captured") == 1
    assert (await shop.level("sku-red")).sold == 2
    assert await shop.orders.reconcile(0) == []  # nothing left to do
    assert await shop.placed_carts() == {order_id: "cart-1"}


async def test_a_crash_between_reserve_and_authorize_is_rolled_back_with_nothing_charged(
    make_shop: MakeShop,
) -> None:
    shop = await stocked(make_shop, crash_after="reserve")
    with pytest.raises(Crashed):
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    order_id, step = await only_order(shop)
    assert step == "reserved"
    assert (await shop.level("sku-red")).reserved == 2

    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "failed")]
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (10, 0, 0)
    assert await shop.charges() == 0
    with pytest.raises(Problem) as repeat:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert (repeat.value.status, repeat.value.slug) == (409, "checkout-abandoned")


async def test_a_restarted_process_finishes_a_crash_after_authorisation_at_start_up(
    make_shop: MakeShop,
) -> None:
    crashed = await stocked(make_shop, crash_after="authorize")
    with pytest.raises(Crashed):
        await crashed.orders.handlers.place_order("acct-1", "key-1", order_request())
    await crashed.orders.stop()
    assert await crashed.charges("authorized") == 1

    restarted = await make_shop()  # same files; start() runs one reconciler pass
    _, step = await only_order(restarted)
    assert step == "confirmed"
    assert await restarted.charges("captured") == 1
    assert (await restarted.level("sku-red")).sold == 2
    assert restarted.count("peakshop_orders_total", outcome="confirmed") == 1


async def test_a_reservation_that_lapsed_before_the_reconciler_came_voids_the_payment(
    make_shop: MakeShop,
) -> None:
    shop = await stocked(make_shop, crash_after="authorize")
    with pytest.raises(Crashed):
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    shop.inventory_clock.advance(shop.orders.settings.reservation_ttl_seconds + 1)
    await shop.inventory.sweep()

    order_id, _ = await only_order(shop)
    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "failed")]
    _, step = await only_order(shop)
    assert step == "failed"
    assert await shop.charges("voided") == 1
    assert await shop.charges("captured") == 0
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (10, 0, 0)


class StalledRequest:
    """A checkout that stops just before it asks for money, until `wake` is set (a request stalled
    past the reconciler's wait, not dead)."""

    def __init__(self, shop: Shop) -> None:
        self.payments = shop.orders.handlers.payments
        self.authorize = self.payments.authorize
        self.stalled, self.wake = asyncio.Event(), asyncio.Event()
        self.payments.authorize = self._stalled_authorize  # type: ignore[method-assign]

    async def _stalled_authorize(self, request: Authorize) -> Payment:
        self.stalled.set()
        await self.wake.wait()
        return await self.authorize(request)


async def test_a_stalled_request_that_wakes_after_the_reconciler_rolled_it_back_takes_no_money(
    make_shop: MakeShop,
) -> None:
    """The reconciler finds no payment and rolls the order back; the request then wakes and asks for
    money, and its provider times out after charging. Had the reconciler not settled the payment as
    none first, the provider would hold that charge for an order that failed, and nobody would look."""
    shop = await stocked(make_shop)
    request = StalledRequest(shop)
    checkout = asyncio.create_task(
        shop.orders.handlers.place_order("acct-1", "key-1", order_request(token="tok_timeout"))
    )
    await request.stalled.wait()
    order_id, _ = await only_order(shop)

    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "failed")]
    request.wake.set()
    with pytest.raises(Problem) as raised:
        await checkout
    assert (raised.value.status, raised.value.slug) == (409, "checkout-abandoned")
    assert await shop.charges() == 0
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (10, 0, 0)


async def test_a_request_that_pays_while_the_reconciler_looks_is_confirmed_once(make_shop: MakeShop) -> None:
    """The reconciler finds no payment; before it can settle the payment as none, the request wakes,
    pays and sells the units. The reconciler then finds that payment and finishes the order with it."""
    shop = await stocked(make_shop)
    request = StalledRequest(shop)
    real_resolve, real_commit = request.payments.resolve, shop.orders.handlers.inventory.commit
    sold = asyncio.Event()

    async def commit_and_tell(reservation_id: str) -> Reservation:
        try:
            return await real_commit(reservation_id)
        finally:
            sold.set()

    async def resolve_while_the_request_pays(order_id: str) -> Payment:
        try:
            return await real_resolve(order_id)  # 404: the request has not asked for money yet
        finally:
            request.wake.set()
            await sold.wait()

    request.payments.resolve = resolve_while_the_request_pays  # type: ignore[method-assign]
    shop.orders.handlers.inventory.commit = commit_and_tell  # type: ignore[method-assign]
    checkout = asyncio.create_task(shop.orders.handlers.place_order("acct-1", "key-1", order_request()))
    await request.stalled.wait()
    order_id, _ = await only_order(shop)

    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "confirmed")]
    order = await checkout
    assert (order.id, order.status) == (order_id, "confirmed")
    assert await shop.charges() == 1
    assert await shop.charges("captured") == 1
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (8, 0, 2)


async def test_a_roll_back_that_finds_the_units_sold_leaves_the_order_to_be_finished(
    make_shop: MakeShop,
) -> None:
    """Only `finish` sells units, after an authorisation: a rollback that finds them sold must not fail
    the order, or the units stay sold to nobody and the buyer is refunded for nothing."""
    shop = await stocked(make_shop, crash_after="authorize")
    with pytest.raises(Crashed):
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    order_id, _ = await only_order(shop)
    await shop.stock.commit(order_id)  # a finisher sold the units, then stopped

    assert await shop.orders.handlers.roll_back(order_id, checkout_abandoned(order_id)) is False
    _, step = await only_order(shop)
    assert step == "reserved"
    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "confirmed")]
    assert await shop.charges("captured") == 1
    assert (await shop.level("sku-red")).sold == 2


async def test_a_provider_that_cancels_between_the_sale_and_the_capture_gets_the_units_back_on_sale(
    make_shop: MakeShop,
) -> None:
    """The units are sold, then the capture is refused: no money, so no order, and the units must not
    stay sold to nobody."""
    shop = await stocked(make_shop)
    real_commit = shop.orders.handlers.inventory.commit

    async def commit_then_the_provider_cancels(reservation_id: str) -> Reservation:
        sold = await real_commit(reservation_id)
        await shop.provider_cancels(reservation_id)
        return sold

    shop.orders.handlers.inventory.commit = commit_then_the_provider_cancels  # type: ignore[method-assign]
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert (raised.value.status, raised.value.slug) == (402, "payment-cancelled")
    order_id, step = await only_order(shop)
    assert step == "failed"
    assert (await shop.stock.reservation(order_id)).status == "returned"
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (10, 0, 0)
    assert await shop.charges("captured") == 0
    assert await shop.orders.reconcile(0) == []
    with pytest.raises(Problem) as repeated:  # the same click again gets the same answer
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert repeated.value.slug == "payment-cancelled"


async def test_the_reconciler_returns_the_units_of_a_sale_whose_authorisation_the_provider_cancelled(
    make_shop: MakeShop,
) -> None:
    """A crash after the sale; the provider cancels before the reconciler comes. The reconciler finds
    the payment voided and the units sold: it puts them back on sale and fails the order."""
    shop = await stocked(make_shop, crash_after="authorize")
    with pytest.raises(Crashed):
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    order_id, _ = await only_order(shop)
    await shop.stock.commit(order_id)  # a finisher sold the units, then stopped
    await shop.provider_cancels(order_id)  # payments learns of it when the reconciler asks

    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "failed")]
    _, step = await only_order(shop)
    assert step == "failed"
    red = await shop.level("sku-red")
    assert (red.available, red.reserved, red.sold) == (10, 0, 0)
    assert await shop.charges("captured") == 0
    with pytest.raises(Problem) as repeated:  # the buyer's retry learns what became of the payment
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert (repeated.value.status, repeated.value.slug) == (402, "payment-cancelled")


async def test_a_crash_before_reserving_leaves_an_attempt_the_reconciler_fails(make_shop: MakeShop) -> None:
    shop = await stocked(make_shop)

    async def unreachable(_: object) -> None:
        raise Problem("inventory is unreachable", status=503, slug="unavailable")

    shop.orders.handlers.inventory.reserve = unreachable  # type: ignore[method-assign]
    with pytest.raises(Problem) as raised:
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert (raised.value.status, raised.value.slug) == (503, "checkout-interrupted")
    shop.orders.handlers.inventory.reserve = shop.inventory.handlers.reserve  # type: ignore[method-assign]
    order_id, step = await only_order(shop)
    assert step == "started"
    assert await shop.orders.reconcile(0) == [ReconciledOrder(order_id, "failed")]
    assert await shop.charges() == 0


async def test_the_reconciler_leaves_young_attempts_to_their_own_request(make_shop: MakeShop) -> None:
    shop = await stocked(make_shop, crash_after="reserve")
    with pytest.raises(Crashed):
        await shop.orders.handlers.place_order("acct-1", "key-1", order_request())
    assert await shop.orders.reconcile(30) == []
    _, step = await only_order(shop)
    assert step == "reserved"


async def test_a_reconcile_delay_within_the_call_timeout_is_warned_about_at_start(
    make_shop: MakeShop,
) -> None:
    with structlog.testing.capture_logs() as logs:
        await make_shop(reconcile_after_seconds=5)  # the platform's call timeout is 10 s
        await make_shop(reconcile_after_seconds=60)
    warnings = [entry for entry in logs if entry["event"] == "reconcile_after_below_call_timeout"]
    assert [(w["reconcile_after_seconds"], w["http_client_timeout"]) for w in warnings] == [(5, 10.0)]
