"""The inventory service's internal HTTP API, served under `/internal/inventory` to other services."""

from __future__ import annotations

from typing import Annotated

from litestar import Router, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from peakshop.contracts.inventory import Reservation, ReserveStock, SetStock, StockLevel
from peakshop.inventory.domain import MAX_ID_LENGTH
from peakshop.inventory.handlers import InventoryHandlers

PREFIX = "/internal/inventory"

ReservationId = Annotated[str, PathParameter(min_length=1, max_length=MAX_ID_LENGTH)]
SkuIds = Annotated[list[str], QueryParameter(name="sku_id")]


def create_router(handlers: InventoryHandlers) -> Router:
    @post("/reservations", status_code=201)
    async def reserve(data: JSONBody[ReserveStock]) -> Reservation:
        return await handlers.reserve(data)

    @get("/reservations/{reservation_id:str}")
    async def reservation(reservation_id: ReservationId) -> Reservation:
        return await handlers.reservation(reservation_id)

    @post("/reservations/{reservation_id:str}/commit", status_code=200)
    async def commit(reservation_id: ReservationId) -> Reservation:
        return await handlers.commit(reservation_id)

    @post("/reservations/{reservation_id:str}/release", status_code=200)
    async def release(reservation_id: ReservationId) -> Reservation:
        return await handlers.release(reservation_id)

    @post("/reservations/{reservation_id:str}/return", status_code=200)
    async def return_sold(reservation_id: ReservationId) -> Reservation:
        return await handlers.return_sold(reservation_id)

    @post("/stock", status_code=200)
    async def set_stock(data: JSONBody[SetStock]) -> StockLevel:
        return await handlers.set_stock(data)

    @get("/stock")
    async def stock(sku_ids: SkuIds) -> list[StockLevel]:
        return await handlers.stock(sku_ids)

    @get("/audit")
    async def audit() -> list[str]:
        return await handlers.audit()

    return Router(
        path=PREFIX,
        route_handlers=[reserve, reservation, commit, release, return_sold, set_stock, stock, audit],
        opt={"service": "inventory"},
        include_in_schema=False,
    )
