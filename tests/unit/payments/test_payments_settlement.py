from __future__ import annotations

import pytest

from peakshop.contracts.payments import AbandonPayment, Authorize
from peakshop.payments.gateway import GatewayConflict
from peakshop.platform.problems import Problem

from .conftest import Payments


async def authorised(payments: Payments, order_id: str = "order-1") -> None:
    await payments.handlers.authorize(
        Authorize(order_id=order_id, amount=1_000, currency="USD", payment_token="tok_visa")
    )


async def expect_conflict(slug: str, call: object) -> None:
    with pytest.raises(Problem) as raised:
        await call  # type: ignore[misc]
    assert (raised.value.status, raised.value.slug) == (409, slug)


async def test_an_authorisation_can_be_voided_once(payments: Payments) -> None:
    await authorised(payments)
    voided = await payments.handlers.void("order-1")
    assert voided.status == "voided"
    assert await payments.handlers.void("order-1") == voided
    charge = await payments.sandbox.find("order-1")
    assert charge is not None and charge.status == "voided"
    assert payments.count("voided") == 1


async def test_a_voided_payment_cannot_be_captured_or_refunded(payments: Payments) -> None:
    await authorised(payments)
    await payments.handlers.void("order-1")
    await expect_conflict("payment-not-capturable", payments.handlers.capture("order-1"))
    await expect_conflict("payment-not-refundable", payments.handlers.refund("order-1"))


async def test_an_uncaptured_payment_cannot_be_refunded(payments: Payments) -> None:
    await authorised(payments)
    await expect_conflict("payment-not-refundable", payments.handlers.refund("order-1"))


async def test_a_captured_payment_is_refunded_not_voided(payments: Payments) -> None:
    await authorised(payments)
    await payments.handlers.capture("order-1")
    await expect_conflict("payment-not-voidable", payments.handlers.void("order-1"))
    refunded = await payments.handlers.refund("order-1")
    assert refunded.status == "refunded"
    assert await payments.handlers.refund("order-1") == refunded
    assert payments.count("refunded") == 1


async def test_voiding_a_payment_that_holds_nothing_is_a_no_op(payments: Payments) -> None:
    with pytest.raises(Problem):
        await payments.handlers.authorize(
            Authorize(order_id="order-1", amount=1_000, currency="USD", payment_token="tok_decline")
        )
    assert (await payments.handlers.void("order-1")).status == "declined"


async def test_the_provider_enforces_the_same_state_rules(payments: Payments) -> None:
    charge = await payments.sandbox.authorize("k", 500, "USD", "tok_visa")
    with pytest.raises(GatewayConflict):
        await payments.sandbox.refund(charge.id, "k:refund")
    assert (await payments.sandbox.capture(charge.id, "k:capture")).status == "captured"
    assert (await payments.sandbox.capture(charge.id, "k:capture")).status == "captured"
    with pytest.raises(GatewayConflict):
        await payments.sandbox.void(charge.id, "k:void")
    with pytest.raises(GatewayConflict):
        # A key already used for the capture cannot be used for something else.
        await payments.sandbox.refund(charge.id, "k:capture")
    assert (await payments.sandbox.refund(charge.id, "k:refund")).status == "refunded"


async def test_a_provider_side_change_is_adopted_when_our_call_conflicts(payments: Payments) -> None:
    await authorised(payments)
    payment = await payments.handlers.get("order-1")
    assert payment.gateway_reference is not None
    # Voided at the provider (its dashboard, say) and the webhook not delivered yet.
    await payments.sandbox.void(payment.gateway_reference, "dashboard-void")
    with pytest.raises(Problem) as raised:
        await payments.handlers.capture("order-1")
    assert (raised.value.status, raised.value.slug) == (409, "payment-provider-conflict")
    assert (await payments.handlers.get("order-1")).status == "voided"


async def test_the_audit_sees_every_payment_with_its_status_and_amount(payments: Payments) -> None:
    await authorised(payments, "order-a")
    await authorised(payments, "order-b")
    await payments.handlers.capture("order-b")
    with pytest.raises(Problem):
        await payments.handlers.authorize(
            Authorize(order_id="order-c", amount=1_000, currency="USD", payment_token="tok_timeout")
        )
    assert await payments.handlers.audit_rows() == [
        ("order-a", "authorized", 1_000),
        ("order-b", "captured", 1_000),
        ("order-c", "pending", 1_000),
    ]


async def test_capture_refund_and_void_write_events_to_the_outbox(payments: Payments) -> None:
    await authorised(payments, "order-a")
    await authorised(payments, "order-b")
    await payments.handlers.capture("order-a")
    await payments.handlers.refund("order-a")
    await payments.handlers.void("order-b")
    rows = await payments.db.fetch("SELECT topic FROM payments.outbox ORDER BY occurred_at")
    assert sorted(row[0] for row in rows) == ["payments.captured", "payments.refunded", "payments.voided"]


async def test_an_order_without_a_payment_is_settled_as_none_and_a_late_authorisation_takes_nothing(
    payments: Payments,
) -> None:
    abandoned = await payments.handlers.abandon(AbandonPayment("order-1", 1_000, "USD"))
    assert (abandoned.status, abandoned.decline_reason, abandoned.gateway_reference) == (
        "voided",
        "checkout_abandoned",
        None,
    )
    assert await payments.handlers.abandon(AbandonPayment("order-1", 1_000, "USD")) == abandoned
    late = await payments.handlers.authorize(
        Authorize(order_id="order-1", amount=1_000, currency="USD", payment_token="tok_visa")
    )
    assert late == abandoned
    assert await payments.sandbox.find("order-1") is None  # the provider was never asked
    assert payments.count("abandoned") == 1
    assert payments.count("authorized") == 0


async def test_abandoning_an_order_that_has_a_payment_changes_nothing(payments: Payments) -> None:
    await authorised(payments)
    payment = await payments.handlers.get("order-1")
    assert await payments.handlers.abandon(AbandonPayment("order-1", 1_000, "USD")) == payment
    assert payments.count("abandoned") == 0


async def test_abandon_checks_the_contract_as_the_http_route_does(payments: Payments) -> None:
    with pytest.raises(Problem) as raised:
        await payments.handlers.abandon(AbandonPayment("order-1", 0, "USD"))
    assert raised.value.status == 400
    with pytest.raises(Problem):
        await payments.handlers.get("order-1")  # nothing was recorded
