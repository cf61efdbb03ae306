"""How other services (the storefront) reach orders: in-process or over HTTP, same calls, same problems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from peakshop.contracts.orders import Order, OrderPage, OrdersAudit, PlaceOrder, ReconciledOrder
from peakshop.orders.api import ACCOUNT_HEADER, IDEMPOTENCY_HEADER, PREFIX
from peakshop.platform.http_client import ServiceHttpClient, service_client

if TYPE_CHECKING:
    from peakshop.orders.service import OrdersService


class OrdersClient(Protocol):
    async def place_order(self, account_id: str, idempotency_key: str | None, request: PlaceOrder) -> Order:
        """428 without a key, 422 for a key reused with another body, 409 while the first is running."""
        ...

    async def order(self, account_id: str, order_id: str) -> Order:
        """404 `not-found` for an unknown order and for another account's order alike."""
        ...

    async def orders_of(self, account_id: str, limit: int = 20, cursor: str | None = None) -> OrderPage: ...
    async def reconcile(self, older_than_seconds: float | None = None) -> list[ReconciledOrder]: ...
    async def audit_facts(self) -> OrdersAudit: ...


class LocalOrdersClient:
    """Calls the orders service hosted in this process."""

    def __init__(self, service: OrdersService) -> None:
        self._service = service
        self._handlers = service.handlers

    async def start(self) -> None:
        """Nothing to open: present so that both clients have the same lifecycle."""

    async def close(self) -> None:
        """Nothing to close."""

    async def place_order(self, account_id: str, idempotency_key: str | None, request: PlaceOrder) -> Order:
        return await self._handlers.place_order(account_id, idempotency_key, request)

    async def order(self, account_id: str, order_id: str) -> Order:
        return await self._handlers.order(account_id, order_id)

    async def orders_of(self, account_id: str, limit: int = 20, cursor: str | None = None) -> OrderPage:
        return await self._handlers.orders_of(account_id, limit, cursor)

    async def reconcile(self, older_than_seconds: float | None = None) -> list[ReconciledOrder]:
        return await self._service.reconcile(older_than_seconds)

    async def audit_facts(self) -> OrdersAudit:
        return await self._service.audit_facts()


class HttpOrdersClient:
    """Calls the orders service's internal API over pooled HTTP."""

    def __init__(self, http: ServiceHttpClient | str, timeout: float = 10.0) -> None:
        self._http = service_client("orders", http, timeout)

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def place_order(self, account_id: str, idempotency_key: str | None, request: PlaceOrder) -> Order:
        headers = {ACCOUNT_HEADER: account_id}
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        order: Order = await self._http.call("POST", PREFIX, Order, body=request, headers=headers)
        return order

    async def order(self, account_id: str, order_id: str) -> Order:
        found: Order = await self._http.call(
            "GET", f"{PREFIX}/{quote(order_id, safe='')}", Order, headers={ACCOUNT_HEADER: account_id}
        )
        return found

    async def orders_of(self, account_id: str, limit: int = 20, cursor: str | None = None) -> OrderPage:
        page: OrderPage = await self._http.call(
            "GET",
            PREFIX,
            OrderPage,
            params={"limit": limit, "cursor": cursor},
            headers={ACCOUNT_HEADER: account_id},
        )
        return page

    async def reconcile(self, older_than_seconds: float | None = None) -> list[ReconciledOrder]:
        params = {"older_than": older_than_seconds} if older_than_seconds is not None else None
        report: list[ReconciledOrder] = await self._http.call(
            "POST", f"{PREFIX}/reconcile", list[ReconciledOrder], params=params
        )
        return report

    async def audit_facts(self) -> OrdersAudit:
        facts: OrdersAudit = await self._http.call("GET", f"{PREFIX}/audit", OrdersAudit)
        return facts
