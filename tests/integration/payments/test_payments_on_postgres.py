from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from peakshop.contracts.payments import TOPIC_PAYMENT_CAPTURED, AbandonPayment, Authorize, PaymentCaptured
from peakshop.payments.service import PaymentsService
from peakshop.payments.settings import PaymentsSettings
from peakshop.payments.webhooks import SIGNATURE_HEADER, ChargeData, WebhookEvent, signed_webhook
from peakshop.platform.bus import InProcessBus
from peakshop.platform.cache import MemoryCache
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Problem
from peakshop.platform.service import Infrastructure
from peakshop.platform.settings import PlatformSettings

from .conftest import SECRET, PgPayments, build_on


def order(token: str = "tok_visa", order_id: str = "order-1", amount: int = 7_300) -> Authorize:
    return Authorize(order_id=order_id, amount=amount, currency="USD", payment_token=token)


async def test_a_hundred_concurrent_authorisations_make_one_charge_and_one_payment(
    make_pg_payments: Callable[..., PgPayments],
) -> None:
    payments = make_pg_payments(sandbox_latency_ms=5, sandbox_latency_jitter_ms=5)
    results = await asyncio.gather(*(payments.handlers.authorize(order()) for _ in range(100)))
    assert {p.id for p in results} == {results[0].id}
    assert {p.status for p in results} == {"authorized"}
    assert await payments.scalar("SELECT count(*) FROM payments.sandbox_charges") == 1
    assert await payments.scalar("SELECT count(*) FROM payments.payments") == 1
    assert payments.count("authorized") == 1

    captures = await asyncio.gather(*(payments.handlers.capture("order-1") for _ in range(20)))
    assert {p.status for p in captures} == {"captured"}
    events = await payments.scalar(
        "SELECT count(*) FROM payments.sandbox_events WHERE type = 'charge.captured'"
    )
    assert events == 1
    assert payments.count("captured") == 1


async def test_concurrent_replicas_sharing_the_database_make_one_charge(pg_db: PostgresDatabase) -> None:
    replicas = [build_on(pg_db, sandbox_seed=seed) for seed in range(4)]
    results = await asyncio.gather(*(replicas[i % 4].handlers.authorize(order()) for i in range(40)))
    assert len({p.id for p in results}) == 1
    assert await replicas[0].scalar("SELECT count(*) FROM payments.sandbox_charges") == 1


async def test_abandon_racing_authorisations_either_settles_as_none_or_finds_the_payment(
    make_pg_payments: Callable[..., PgPayments],
) -> None:
    """The reconciler's abandon and a late request's authorisation, at once, many times over: per
    order, either no money is asked for at all, or abandon returns the payment that asks for it (still
    pending, which the reconciler leaves for its next pass, or authorised)."""
    payments = make_pg_payments()
    for i in range(30):
        order_id = f"order-{i}"
        abandon = payments.handlers.abandon(AbandonPayment(order_id, 7_300, "USD"))
        authorize = payments.handlers.authorize(order(order_id=order_id))
        if i % 2:  # either may send its statement first
            authorised, abandoned = await asyncio.gather(authorize, abandon)
        else:
            abandoned, authorised = await asyncio.gather(abandon, authorize)
        assert abandoned.id == authorised.id
        charge = await payments.sandbox.find(order_id)
        if authorised.status == "voided":
            assert abandoned == authorised and charge is None
        else:
            assert abandoned.status in ("pending", "authorized")
            assert authorised.status == "authorized" and charge is not None
    assert payments.count("abandoned") + payments.count("authorized") == 30
    assert payments.count("abandoned") > 0 and payments.count("authorized") > 0  # both orders were seen


async def test_timeout_then_resolve_then_exactly_one_capture(
    make_pg_payments: Callable[..., PgPayments],
) -> None:
    payments = make_pg_payments()
    with pytest.raises(Problem) as raised:
        await payments.handlers.authorize(order("tok_timeout"))
    assert (raised.value.status, raised.value.slug) == (503, "payment-pending")
    assert (await payments.handlers.get("order-1")).status == "pending"
    assert (await payments.handlers.resolve("order-1")).status == "authorized"
    await asyncio.gather(*(payments.handlers.capture("order-1") for _ in range(10)))
    assert (await payments.handlers.get("order-1")).status == "captured"
    assert (
        await payments.scalar("SELECT count(*) FROM payments.sandbox_requests WHERE operation = 'capture'")
        == 1
    )
    assert payments.count("captured") == 1


async def test_each_token_behaves_as_documented(make_pg_payments: Callable[..., PgPayments]) -> None:
    payments = make_pg_payments()
    assert (await payments.handlers.authorize(order("tok_visa", "o-visa"))).status == "authorized"
    expected = {
        "tok_decline": (402, "payment-declined", "declined"),
        "tok_bogus": (402, "payment-declined", "declined"),
        "tok_error": (502, "payment-provider-error", "failed"),
        "tok_timeout": (503, "payment-pending", "pending"),
    }
    for token, (status, slug, recorded) in expected.items():
        with pytest.raises(Problem) as raised:
            await payments.handlers.authorize(order(token, f"o-{token}"))
        assert (raised.value.status, raised.value.slug) == (status, slug)
        assert (await payments.handlers.get(f"o-{token}")).status == recorded
    assert await payments.sandbox.find("o-tok_error") is None
    assert (await payments.sandbox.find("o-tok_bogus")).decline_reason == "invalid_token"


async def test_void_and_refund_follow_the_rules(make_pg_payments: Callable[..., PgPayments]) -> None:
    payments = make_pg_payments()
    await payments.handlers.authorize(order(order_id="a"))
    await payments.handlers.authorize(order(order_id="b"))
    assert (await payments.handlers.void("a")).status == "voided"
    with pytest.raises(Problem, match="not allowed"):
        await payments.handlers.capture("a")
    await payments.handlers.capture("b")
    with pytest.raises(Problem, match="not allowed"):
        await payments.handlers.void("b")
    refunds = await asyncio.gather(*(payments.handlers.refund("b") for _ in range(5)))
    assert {p.status for p in refunds} == {"refunded"}
    assert payments.count("refunded") == 1


async def test_a_decline_rate_of_one_declines_every_visa_on_postgres(
    make_pg_payments: Callable[..., PgPayments],
) -> None:
    payments = make_pg_payments(sandbox_decline_rate=1.0, sandbox_seed=3)
    for i in range(10):
        with pytest.raises(Problem) as raised:
            await payments.handlers.authorize(order(order_id=f"o{i}"))
        assert raised.value.status == 402
    assert (
        await payments.scalar("SELECT count(*) FROM payments.sandbox_charges WHERE status = 'authorized'")
        == 0
    )


async def test_the_same_webhook_delivered_concurrently_is_applied_once(
    make_pg_payments: Callable[..., PgPayments],
) -> None:
    import time

    payments = make_pg_payments()
    charge_id = (await payments.handlers.authorize(order())).gateway_reference
    await payments.handlers.capture("order-1")
    assert charge_id is not None
    event = WebhookEvent(
        id="evt_dup",
        type="charge.refunded",
        created=int(time.time()),
        data=ChargeData(charge_id, "order-1", 7_300, "USD", "refunded"),
    )
    headers, body = signed_webhook(SECRET, event, time.time())
    results = await asyncio.gather(
        *(payments.handlers.receive_webhook(body, headers[SIGNATURE_HEADER]) for _ in range(10)),
        return_exceptions=True,
    )
    applied = [r for r in results if not isinstance(r, BaseException)]
    replays = [r for r in results if isinstance(r, Problem) and r.slug == "webhook-replayed"]
    assert (len(applied), len(replays)) == (1, 9)
    assert (await payments.handlers.get("order-1")).status == "refunded"


async def test_a_restart_keeps_charges_and_idempotency(payments_pg_url: str) -> None:
    db = await PostgresDatabase.connect(payments_pg_url, "payments")
    first = await build_on(db).handlers.authorize(order())
    await db.close()
    db = await PostgresDatabase.connect(payments_pg_url, "payments")
    try:
        again = build_on(db)
        assert await again.handlers.authorize(order()) == first
        assert await again.scalar("SELECT count(*) FROM payments.sandbox_charges") == 1
        assert (await again.handlers.capture("order-1")).status == "captured"
    finally:
        await db.close()


async def test_the_hosted_service_delivers_webhooks_and_publishes_captures(payments_pg_url: str) -> None:
    settings = PlatformSettings(topology="split", postgres_url=payments_pg_url, webhook_secret=SECRET)
    bus = InProcessBus()
    published: list[Envelope] = []

    async def on_captured(envelope: Envelope) -> None:
        published.append(envelope)

    bus.subscribe("test", [TOPIC_PAYMENT_CAPTURED], on_captured)
    infra = Infrastructure(settings, Metrics(), bus, MemoryCache())
    service = PaymentsService(infra, PaymentsSettings(sandbox_webhook_interval_seconds=0.05))
    await service.start()
    await bus.start()
    try:
        await service.check_ready()
        client = service.client()
        with pytest.raises(Problem):
            await client.authorize(order("tok_timeout"))
        # The sandbox's charge.authorized webhook settles the timed-out payment on its own.
        for _ in range(100):
            if (await client.get("order-1")).status == "authorized":
                break
            await asyncio.sleep(0.05)
        assert (await client.get("order-1")).status == "authorized"
        await client.capture("order-1")
        for _ in range(100):
            if published:
                break
            await asyncio.sleep(0.05)
        assert [e.decode(PaymentCaptured).order_id for e in published] == ["order-1"]
    finally:
        await service.stop()
        await bus.close()
        await infra.close_databases()
