from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from peakshop.contracts.payments import Authorize
from peakshop.payments.gateway import GatewayConflict
from peakshop.platform.problems import PROBLEM_BASE, Problem

from .conftest import FakeClock, Payments, build, open_payments_db


def order(order_id: str = "order-1", token: str = "tok_visa", amount: int = 4_200) -> Authorize:
    return Authorize(order_id=order_id, amount=amount, currency="EUR", payment_token=token)


async def charges(payments: Payments, key: str | None = None) -> int:
    if key is None:
        return int(await payments.scalar("SELECT count(*) FROM payments.sandbox_charges"))
    return int(
        await payments.scalar("SELECT count(*) FROM payments.sandbox_charges WHERE idempotency_key = $1", key)
    )


async def test_a_visa_token_is_authorised_with_the_order_id_as_the_key(payments: Payments) -> None:
    payment = await payments.handlers.authorize(order())
    assert (payment.status, payment.amount, payment.currency) == ("authorized", 4_200, "EUR")
    charge = await payments.sandbox.find("order-1")
    assert charge is not None and charge.id == payment.gateway_reference
    assert charge.status == "authorized"
    assert payments.count("authorized") == 1


async def test_a_declined_card_is_a_402_and_is_recorded_as_declined(payments: Payments) -> None:
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order(token="tok_decline"))
    assert (raised.value.status, raised.value.slug) == (402, "payment-declined")
    assert raised.value.extra["reason"] == "card_declined"
    payment = await payments.handlers.get("order-1")
    assert (payment.status, payment.decline_reason) == ("declined", "card_declined")
    assert payments.count("declined") == 1


async def test_nothing_is_captured_after_a_decline(payments: Payments) -> None:
    with pytest.raises(Problem):
        await payments.handlers.authorize(order(token="tok_decline"))
    with pytest.raises(Problem) as raised:
        await payments.handlers.capture("order-1")
    assert (raised.value.status, raised.value.slug) == (409, "payment-not-capturable")
    captured = await payments.scalar(
        "SELECT count(*) FROM payments.sandbox_charges WHERE status = 'captured'"
    )
    assert captured == 0
    assert payments.count("captured") == 0


async def test_a_repeated_declined_order_is_declined_again_without_a_new_charge(payments: Payments) -> None:
    for _ in range(3):
        with pytest.raises(Problem) as raised:
            await payments.handlers.authorize(order(token="tok_decline"))
        assert raised.value.status == 402
    assert await charges(payments) == 1


async def test_an_unknown_token_is_declined_as_invalid(payments: Payments) -> None:
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order(token="tok_nonsense"))
    assert raised.value.extra["reason"] == "invalid_token"


async def test_a_provider_error_records_nothing_at_the_provider_and_fails_the_payment(
    payments: Payments,
) -> None:
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order(token="tok_error"))
    assert (raised.value.status, raised.value.slug) == (502, "payment-provider-error")
    assert (await payments.handlers.get("order-1")).status == "failed"
    assert await charges(payments) == 0
    assert payments.count("error") == 1


async def test_a_timeout_is_pending_not_failed_while_the_provider_holds_the_charge(
    payments: Payments,
) -> None:
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order(token="tok_timeout"))
    assert (raised.value.status, raised.value.slug) == (503, "payment-pending")
    assert raised.value.headers["Retry-After"] == "2"
    assert (await payments.handlers.get("order-1")).status == "pending"
    charge = await payments.sandbox.find("order-1")
    assert charge is not None and charge.status == "authorized"
    assert payments.count("timeout") == 1


async def test_resolving_a_timeout_finds_the_charge_and_it_is_captured_exactly_once(
    payments: Payments,
) -> None:
    with pytest.raises(Problem):
        await payments.handlers.authorize(order(token="tok_timeout"))
    resolved = await payments.handlers.resolve("order-1")
    assert resolved.status == "authorized"
    assert resolved.gateway_reference is not None

    captured = await asyncio.gather(*(payments.handlers.capture("order-1") for _ in range(5)))
    assert {p.status for p in captured} == {"captured"}
    assert await payments.handlers.capture("order-1") == captured[0]
    events = await payments.scalar(
        "SELECT count(*) FROM payments.sandbox_events WHERE type = 'charge.captured'"
    )
    assert events == 1
    assert payments.count("captured") == 1


async def test_a_repeated_authorise_after_a_timeout_learns_the_outcome(payments: Payments) -> None:
    with pytest.raises(Problem):
        await payments.handlers.authorize(order(token="tok_timeout"))
    again = await payments.handlers.authorize(order(token="tok_timeout"))
    assert again.status == "authorized"
    assert await charges(payments) == 1


async def test_a_call_that_never_reached_the_provider_resolves_to_failed(
    make_payments: Callable[..., Payments],
) -> None:
    # The provider takes a second; the service waits 20 ms, so the request is abandoned in flight.
    payments = make_payments(sandbox_latency_ms=1_000, gateway_timeout_seconds=0.02)
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order())
    assert raised.value.slug == "payment-pending"
    fast = make_payments()
    resolved = await fast.handlers.resolve("order-1")
    assert (resolved.status, resolved.decline_reason) == ("failed", "not_at_provider")
    assert await charges(fast) == 0


async def test_the_same_order_id_returns_the_same_payment_and_one_charge(payments: Payments) -> None:
    first = await payments.handlers.authorize(order())
    second = await payments.handlers.authorize(order())
    assert first == second
    assert await charges(payments) == 1


async def test_the_same_order_id_with_another_amount_is_a_409_mismatch(payments: Payments) -> None:
    await payments.handlers.authorize(order())
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order(amount=9_999))
    assert (raised.value.status, raised.value.type) == (409, PROBLEM_BASE + "payment-mismatch")
    assert await charges(payments) == 1


async def test_the_provider_refuses_a_key_reused_for_another_amount(payments: Payments) -> None:
    await payments.sandbox.authorize("key-1", 100, "EUR", "tok_visa")
    again = await payments.sandbox.authorize("key-1", 100, "EUR", "tok_visa")
    assert again.amount == 100
    with pytest.raises(GatewayConflict):
        await payments.sandbox.authorize("key-1", 200, "EUR", "tok_visa")
    assert await charges(payments) == 1


async def test_a_hundred_concurrent_authorisations_of_one_order_make_one_charge(
    make_payments: Callable[..., Payments],
) -> None:
    payments = make_payments(sandbox_latency_ms=5, sandbox_latency_jitter_ms=5)
    results = await asyncio.gather(*(payments.handlers.authorize(order()) for _ in range(100)))
    assert {p.id for p in results} == {results[0].id}
    assert {p.status for p in results} == {"authorized"}
    assert await charges(payments) == 1
    assert await payments.scalar("SELECT count(*) FROM payments.payments") == 1
    assert payments.count("authorized") == 1


async def test_an_invalid_request_is_a_400_even_in_process(payments: Payments) -> None:
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order(amount=0))
    assert raised.value.status == 400


async def test_an_unknown_order_is_a_404(payments: Payments) -> None:
    with pytest.raises(Problem) as raised:
        await payments.handlers.get("nope")
    assert (raised.value.status, raised.value.slug) == (404, "payment-not-found")


async def test_charges_and_keys_survive_a_restart(
    data_dir: Path, payments: Payments, clock: FakeClock
) -> None:
    before = await payments.handlers.authorize(order())
    await payments.db.close()

    db = await open_payments_db(data_dir)
    try:
        reopened = build(db, clock)
        assert await reopened.handlers.authorize(order()) == before
        assert await reopened.sandbox.authorize(
            "order-1", 4_200, "EUR", "tok_visa"
        ) == await reopened.sandbox.find("order-1")
        assert await charges(reopened) == 1
        assert (await reopened.handlers.capture("order-1")).status == "captured"
    finally:
        await db.close()
