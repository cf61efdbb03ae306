"""The orders service's internal HTTP API, served under `/internal/orders` to the storefront.

The storefront authenticates the buyer and passes the account id on in `x-peakshop-account-id`; the
buyer's `Idempotency-Key` travels on unchanged (its absence is answered with 428 by the handlers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from litestar import Router, get, post
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from peakshop.contracts.orders import Order, OrderPage, OrdersAudit, PlaceOrder, ReconciledOrder
from peakshop.orders.domain import MAX_ACCOUNT_ID_LENGTH, MAX_PAGE

if TYPE_CHECKING:
    from peakshop.orders.service import OrdersService

PREFIX = "/internal/orders"
ACCOUNT_HEADER = "x-peakshop-account-id"
IDEMPOTENCY_HEADER = "Idempotency-Key"

AccountId = Annotated[
    str, HeaderParameter(name=ACCOUNT_HEADER, min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH)
]
IdempotencyKey = Annotated[str | None, HeaderParameter(name=IDEMPOTENCY_HEADER)]
OrderId = Annotated[str, PathParameter(min_length=1, max_length=100)]


def create_router(service: OrdersService) -> Router:
    handlers = service.handlers

    @post("/", status_code=201)
    async def place_order(
        data: JSONBody[PlaceOrder], account_id: AccountId, idempotency_key: IdempotencyKey = None
    ) -> Order:
        return await handlers.place_order(account_id, idempotency_key, data)

    @get("/")
    async def orders_of(
        account_id: AccountId,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 20,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> OrderPage:
        return await handlers.orders_of(account_id, limit, cursor)

    @get("/{order_id:str}")
    async def order(account_id: AccountId, order_id: OrderId) -> Order:
        return await handlers.order(account_id, order_id)

    @post("/reconcile", status_code=200)
    async def reconcile(
        older_than: Annotated[float | None, QueryParameter(ge=0, le=86_400)] = None,
    ) -> list[ReconciledOrder]:
        return await service.reconcile(older_than)

    @get("/audit")
    async def audit() -> OrdersAudit:
        return await service.audit_facts()

    return Router(
        path=PREFIX,
        route_handlers=[place_order, orders_of, order, reconcile, audit],
        opt={"service": "orders"},
        include_in_schema=False,
    )
