"""The payments service's internal HTTP API, served under `/internal/payments` to the other services."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.params import JSONBody, PathParameter

from peakshop.contracts.payments import AbandonPayment, AuditRow, Authorize, Payment, WebhookReceipt
from peakshop.payments.handlers import PaymentsHandlers
from peakshop.payments.webhooks import SIGNATURE_HEADER

PREFIX = "/internal/payments"

OrderIdPath = Annotated[str, PathParameter(min_length=1, max_length=100)]


def create_router(handlers: PaymentsHandlers) -> Router:
    @post("/authorizations", status_code=200)
    async def authorize(data: JSONBody[Authorize]) -> Payment:
        return await handlers.authorize(data)

    @post("/abandonments", status_code=200)
    async def abandon(data: JSONBody[AbandonPayment]) -> Payment:
        return await handlers.abandon(data)

    @get("/orders/{order_id:str}")
    async def get_payment(order_id: OrderIdPath) -> Payment:
        return await handlers.get(order_id)

    @post("/orders/{order_id:str}/capture", status_code=200)
    async def capture(order_id: OrderIdPath) -> Payment:
        return await handlers.capture(order_id)

    @post("/orders/{order_id:str}/void", status_code=200)
    async def void(order_id: OrderIdPath) -> Payment:
        return await handlers.void(order_id)

    @post("/orders/{order_id:str}/refund", status_code=200)
    async def refund(order_id: OrderIdPath) -> Payment:
        return await handlers.refund(order_id)

    @post("/orders/{order_id:str}/resolve", status_code=200)
    async def resolve(order_id: OrderIdPath) -> Payment:
        return await handlers.resolve(order_id)

    @get("/audit")
    async def audit() -> list[AuditRow]:
        return await handlers.audit_rows()

    @post("/webhooks", status_code=200)
    async def webhook(request: Request[Any, Any, Any]) -> WebhookReceipt:
        # The signature covers the exact bytes received, so the body is read raw, not decoded first.
        body = await request.body()
        return await handlers.receive_webhook(body, request.headers.get(SIGNATURE_HEADER))

    return Router(
        path=PREFIX,
        route_handlers=[
            authorize,
            abandon,
            get_payment,
            capture,
            void,
            refund,
            resolve,
            audit,
            webhook,
        ],
        opt={"service": "payments"},
        include_in_schema=False,
    )
