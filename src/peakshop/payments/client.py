"""How other services reach payments: in-process or over HTTP, with the same calls and the same problems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

import msgspec

from peakshop.contracts.payments import AbandonPayment, AuditRow, Authorize, Payment, WebhookReceipt
from peakshop.payments.api import PREFIX
from peakshop.payments.webhooks import SIGNATURE_HEADER
from peakshop.platform.http_client import ServiceHttpClient, service_client

if TYPE_CHECKING:
    from peakshop.payments.service import PaymentsService


class PaymentsClient(Protocol):
    async def authorize(self, request: Authorize) -> Payment: ...
    async def abandon(self, request: AbandonPayment) -> Payment: ...
    async def get(self, order_id: str) -> Payment: ...
    async def capture(self, order_id: str) -> Payment: ...
    async def void(self, order_id: str) -> Payment: ...
    async def refund(self, order_id: str) -> Payment: ...
    async def resolve(self, order_id: str) -> Payment: ...
    async def audit_rows(self) -> list[AuditRow]: ...
    async def receive_webhook(self, body: bytes, signature: str | None) -> WebhookReceipt:
        """Pass on a provider's delivery exactly as received (the signature covers these bytes)."""
        ...


class LocalPaymentsClient:
    """Calls the payments handlers in this process."""

    def __init__(self, service: PaymentsService) -> None:
        self._handlers = service.handlers

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def authorize(self, request: Authorize) -> Payment:
        return await self._handlers.authorize(request)

    async def abandon(self, request: AbandonPayment) -> Payment:
        return await self._handlers.abandon(request)

    async def get(self, order_id: str) -> Payment:
        return await self._handlers.get(order_id)

    async def capture(self, order_id: str) -> Payment:
        return await self._handlers.capture(order_id)

    async def void(self, order_id: str) -> Payment:
        return await self._handlers.void(order_id)

    async def refund(self, order_id: str) -> Payment:
        return await self._handlers.refund(order_id)

    async def resolve(self, order_id: str) -> Payment:
        return await self._handlers.resolve(order_id)

    async def audit_rows(self) -> list[AuditRow]:
        return await self._handlers.audit_rows()

    async def receive_webhook(self, body: bytes, signature: str | None) -> WebhookReceipt:
        return await self._handlers.receive_webhook(body, signature)


def _order_path(order_id: str, action: str = "") -> str:
    return f"/orders/{quote(order_id, safe='')}{action}"


class HttpPaymentsClient:
    """Calls the payments service's internal API over HTTP; problems come back as the same `Problem`."""

    def __init__(self, http: ServiceHttpClient | str, timeout: float = 10.0) -> None:
        self._http = service_client("payments", http, timeout)

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def _payment(
        self, method: str, path: str, body: Authorize | AbandonPayment | None = None
    ) -> Payment:
        payment: Payment = await self._http.call(method, PREFIX + path, Payment, body=body)
        return payment

    async def authorize(self, request: Authorize) -> Payment:
        return await self._payment("POST", "/authorizations", request)

    async def abandon(self, request: AbandonPayment) -> Payment:
        return await self._payment("POST", "/abandonments", request)

    async def get(self, order_id: str) -> Payment:
        return await self._payment("GET", _order_path(order_id))

    async def capture(self, order_id: str) -> Payment:
        return await self._payment("POST", _order_path(order_id, "/capture"))

    async def void(self, order_id: str) -> Payment:
        return await self._payment("POST", _order_path(order_id, "/void"))

    async def refund(self, order_id: str) -> Payment:
        return await self._payment("POST", _order_path(order_id, "/refund"))

    async def resolve(self, order_id: str) -> Payment:
        return await self._payment("POST", _order_path(order_id, "/resolve"))

    async def audit_rows(self) -> list[AuditRow]:
        rows: list[AuditRow] = await self._http.call("GET", PREFIX + "/audit", list[AuditRow])
        return rows

    async def receive_webhook(self, body: bytes, signature: str | None) -> WebhookReceipt:
        headers = {SIGNATURE_HEADER: signature} if signature is not None else None
        # `Raw` sends the bytes as they are: re-encoding would change what the signature covers.
        receipt: WebhookReceipt = await self._http.call(
            "POST", PREFIX + "/webhooks", WebhookReceipt, body=msgspec.Raw(body), headers=headers
        )
        return receipt
