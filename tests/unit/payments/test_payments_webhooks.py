from __future__ import annotations

import msgspec
import pytest

from peakshop.contracts.payments import Authorize
from peakshop.payments.webhooks import (
    SIGNATURE_HEADER,
    ChargeData,
    WebhookEvent,
    WebhookRejected,
    signature,
    signed_webhook,
    verify,
)
from peakshop.platform.problems import Problem

from .conftest import SECRET, FakeClock, Payments

BODY = b'{"id":"evt_1"}'
NOW = 1_700_000_000


def test_a_signature_made_with_the_secret_verifies() -> None:
    verify(SECRET, f"t={NOW},v1={signature(SECRET, NOW, BODY)}", BODY, NOW)


@pytest.mark.parametrize(
    ("header", "body", "reason"),
    [
        (None, BODY, "missing"),
        ("v1=abc", BODY, "malformed"),
        (f"t={NOW},v1={signature('another-secret', NOW, BODY)}", BODY, "signature"),
        (f"t={NOW},v1={signature(SECRET, NOW, BODY)}", BODY + b" ", "signature"),
        (f"t={NOW + 1},v1={signature(SECRET, NOW, BODY)}", BODY, "signature"),
        (f"t={NOW - 301},v1={signature(SECRET, NOW - 301, BODY)}", BODY, "stale"),
    ],
)
def test_a_delivery_that_is_unsigned_tampered_or_stale_is_rejected(
    header: str | None, body: bytes, reason: str
) -> None:
    with pytest.raises(WebhookRejected) as raised:
        verify(SECRET, header, body, NOW)
    assert raised.value.reason == reason


def test_any_of_several_signatures_may_match_while_a_secret_is_rotated() -> None:
    header = f"t={NOW},v1={signature('old-secret', NOW, BODY)},v1={signature(SECRET, NOW, BODY)}"
    verify(SECRET, header, BODY, NOW)


async def captured_payment(payments: Payments) -> str:
    await payments.handlers.authorize(
        Authorize(order_id="order-1", amount=2_500, currency="EUR", payment_token="tok_visa")
    )
    payment = await payments.handlers.capture("order-1")
    assert payment.gateway_reference is not None
    return payment.gateway_reference


def refunded_event(charge_id: str, clock: FakeClock, event_id: str = "evt_refund") -> WebhookEvent:
    data = ChargeData(charge_id, "order-1", 2_500, "EUR", "refunded")
    return WebhookEvent(id=event_id, type="charge.refunded", created=int(clock()), data=data)


async def test_a_signed_refund_webhook_is_applied_once(payments: Payments, clock: FakeClock) -> None:
    charge_id = await captured_payment(payments)
    headers, body = signed_webhook(SECRET, refunded_event(charge_id, clock), clock())
    receipt = await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    assert (receipt.event_id, receipt.applied) == ("evt_refund", True)
    assert (await payments.handlers.get("order-1")).status == "refunded"
    assert payments.count("refunded") == 1


async def test_a_replayed_event_id_is_a_409(payments: Payments, clock: FakeClock) -> None:
    charge_id = await captured_payment(payments)
    headers, body = signed_webhook(SECRET, refunded_event(charge_id, clock), clock())
    await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    clock.advance(5)
    headers, body = signed_webhook(SECRET, refunded_event(charge_id, clock), clock())
    with pytest.raises(Problem) as raised:
        await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    assert (raised.value.status, raised.value.slug) == (409, "webhook-replayed")
    assert payments.count("refunded") == 1


async def test_a_badly_signed_webhook_is_a_400_and_changes_nothing(
    payments: Payments, clock: FakeClock
) -> None:
    charge_id = await captured_payment(payments)
    headers, body = signed_webhook("not-the-secret", refunded_event(charge_id, clock), clock())
    with pytest.raises(Problem) as raised:
        await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    assert (raised.value.status, raised.value.slug) == (400, "webhook-signature-invalid")
    assert (await payments.handlers.get("order-1")).status == "captured"


async def test_a_webhook_older_than_five_minutes_is_a_400(payments: Payments, clock: FakeClock) -> None:
    charge_id = await captured_payment(payments)
    headers, body = signed_webhook(SECRET, refunded_event(charge_id, clock), clock() - 301)
    with pytest.raises(Problem) as raised:
        await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    assert (raised.value.status, raised.value.slug) == (400, "webhook-stale")
    assert (await payments.handlers.get("order-1")).status == "captured"


async def test_a_signed_body_that_is_no_event_is_a_400(payments: Payments, clock: FakeClock) -> None:
    body = msgspec.json.encode({"hello": "world"})
    with pytest.raises(Problem) as raised:
        await payments.handlers.receive_webhook(
            body, f"t={int(clock())},v1={signature(SECRET, int(clock()), body)}"
        )
    assert raised.value.status == 400


async def test_the_sandbox_delivers_its_events_and_a_timeout_is_settled_by_them(
    payments: Payments,
) -> None:
    with pytest.raises(Problem):
        await payments.handlers.authorize(
            Authorize(order_id="order-1", amount=2_500, currency="EUR", payment_token="tok_timeout")
        )
    assert await payments.webhooks.deliver_pending() == 1
    assert (await payments.handlers.get("order-1")).status == "authorized"
    await payments.handlers.capture("order-1")
    # Our own capture comes back as a webhook too: received, and a no-op.
    assert await payments.webhooks.deliver_pending() == 1
    assert await payments.webhooks.deliver_pending() == 0
    assert (await payments.handlers.get("order-1")).status == "captured"
    assert payments.count("captured") == 1


async def test_remembered_event_ids_are_kept_twice_the_tolerance_then_forgotten(
    payments: Payments, clock: FakeClock
) -> None:
    """Ids stay long enough that a replay fails on its id or its timestamp, and no longer than 3x."""
    charge_id = await captured_payment(payments)
    tolerance = payments.handlers.settings.webhook_tolerance_seconds
    remembered = "SELECT count(*) FROM payments.webhook_events"
    headers, body = signed_webhook(SECRET, refunded_event(charge_id, clock, "evt_old"), clock())
    await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    assert await payments.scalar(remembered) == 1
    clock.advance(2 * tolerance)  # not older than twice the tolerance yet: kept
    headers, body = signed_webhook(SECRET, refunded_event(charge_id, clock, "evt_mid"), clock())
    await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    assert await payments.scalar(remembered) == 2
    clock.advance(tolerance + 1)  # evt_old is past 3x: the next delivery sweeps it
    headers, body = signed_webhook(SECRET, refunded_event(charge_id, clock, "evt_new"), clock())
    await payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER])
    ids = await payments.scalar("SELECT group_concat(event_id) FROM payments.webhook_events")
    assert sorted(ids.split(",")) == ["evt_mid", "evt_new"]
