from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from peakshop.payments.api import create_router
from peakshop.payments.webhooks import ChargeData, WebhookEvent, signed_webhook
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import PROBLEM_BASE
from peakshop.platform.web import Readiness, create_app

from .conftest import SECRET, FakeClock, Payments

VISA = {"order_id": "order-1", "amount": 1_999, "currency": "EUR", "payment_token": "tok_visa"}


@pytest.fixture
async def api(payments: Payments) -> AsyncIterator[AsyncTestClient]:
    app = create_app(
        name="payments",
        routers=[create_router(payments.handlers)],
        lifespan=None,
        metrics=Metrics(),
        readiness=Readiness(),
    )
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_authorise_capture_and_read_over_http(api: AsyncTestClient) -> None:
    authorised = await api.post("/internal/payments/authorizations", json=VISA)
    assert (authorised.status_code, authorised.json()["status"]) == (200, "authorized")
    captured = await api.post("/internal/payments/orders/order-1/capture")
    assert (captured.status_code, captured.json()["status"]) == (200, "captured")
    read = await api.get("/internal/payments/orders/order-1")
    assert read.json() == captured.json()
    audit = await api.get("/internal/payments/audit")
    assert audit.json() == [["order-1", "captured", 1_999]]


async def test_a_decline_is_a_402_problem_with_its_reason(api: AsyncTestClient) -> None:
    response = await api.post(
        "/internal/payments/authorizations", json={**VISA, "payment_token": "tok_decline"}
    )
    assert response.status_code == 402
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM_BASE + "payment-declined"
    assert response.json()["reason"] == "card_declined"


async def test_a_timeout_is_a_503_with_retry_after(api: AsyncTestClient) -> None:
    response = await api.post(
        "/internal/payments/authorizations", json={**VISA, "payment_token": "tok_timeout"}
    )
    assert (response.status_code, response.headers["retry-after"]) == (503, "2")
    assert response.json()["type"] == PROBLEM_BASE + "payment-pending"
    resolved = await api.post("/internal/payments/orders/order-1/resolve")
    assert resolved.json()["status"] == "authorized"


async def test_an_abandoned_order_is_settled_as_none_over_http(api: AsyncTestClient) -> None:
    body = {"order_id": "order-1", "amount": 1_999, "currency": "EUR"}
    abandoned = await api.post("/internal/payments/abandonments", json=body)
    assert (abandoned.status_code, abandoned.json()["status"]) == (200, "voided")
    late = await api.post("/internal/payments/authorizations", json=VISA)
    assert late.json() == abandoned.json()
    unknown = await api.post("/internal/payments/abandonments", json={**body, "token": "tok_visa"})
    assert unknown.status_code == 400


async def test_a_non_positive_amount_is_a_400(api: AsyncTestClient) -> None:
    response = await api.post("/internal/payments/authorizations", json={**VISA, "amount": 0})
    assert response.status_code == 400


async def test_webhooks_are_verified_over_http(
    api: AsyncTestClient,
    clock: FakeClock,
) -> None:
    charge_id = (await api.post("/internal/payments/authorizations", json=VISA)).json()["gateway_reference"]
    await api.post("/internal/payments/orders/order-1/capture")
    event = WebhookEvent(
        id="evt_http",
        type="charge.refunded",
        created=int(clock()),
        data=ChargeData(charge_id, "order-1", 1_999, "EUR", "refunded"),
    )
    headers, body = signed_webhook(SECRET, event, clock())
    accepted = await api.post("/internal/payments/webhooks", content=body, headers=headers)
    assert (accepted.status_code, accepted.json()) == (200, {"event_id": "evt_http", "applied": True})
    replayed = await api.post("/internal/payments/webhooks", content=body, headers=headers)
    assert (replayed.status_code, replayed.json()["type"]) == (409, PROBLEM_BASE + "webhook-replayed")
    forged = await api.post(
        "/internal/payments/webhooks", content=body, headers={"content-type": "application/json"}
    )
    assert (forged.status_code, forged.json()["type"]) == (400, PROBLEM_BASE + "webhook-signature-invalid")
