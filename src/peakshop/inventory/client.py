"""How other services reach inventory: in-process or over HTTP, with the same calls and problems."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

from peakshop.contracts.inventory import Reservation, ReserveStock, SetStock, StockLevel
from peakshop.inventory.api import PREFIX
from peakshop.inventory.service import InventoryService
from peakshop.platform.http_client import ServiceHttpClient, service_client


class InventoryClient(Protocol):
    async def reserve(self, request: ReserveStock) -> Reservation:
        """Hold every line or none: 409 `sold-out` / `purchase-limit`, 404 `unknown-sku`."""
        ...

    async def commit(self, reservation_id: str) -> Reservation:
        """Reserved → sold; 409 `reservation-expired` when the hold has lapsed or was released."""
        ...

    async def release(self, reservation_id: str) -> Reservation:
        """Reserved → available; a committed reservation is returned unchanged."""
        ...

    async def return_sold(self, reservation_id: str) -> Reservation:
        """Sold → available, for an order that failed after its sale; 409 `reservation-not-sold`."""
        ...

    async def reservation(self, reservation_id: str) -> Reservation: ...
    async def set_stock(self, command: SetStock) -> StockLevel: ...
    async def stock(self, sku_ids: list[str]) -> list[StockLevel]: ...
    async def audit(self) -> list[str]: ...


class LocalInventoryClient:
    """Calls the inventory handlers of the service hosted in this process."""

    def __init__(self, service: InventoryService) -> None:
        handlers = service.handlers
        self.reserve = handlers.reserve
        self.commit = handlers.commit
        self.release = handlers.release
        self.return_sold = handlers.return_sold
        self.reservation = handlers.reservation
        self.set_stock = handlers.set_stock
        self.audit = handlers.audit
        self._handlers = handlers

    async def stock(self, sku_ids: list[str]) -> list[StockLevel]:
        return await self._handlers.stock(sku_ids)

    async def start(self) -> None:
        """Nothing to open: present so that both clients have the same lifecycle."""

    async def close(self) -> None:
        """Nothing to close."""


def _path(reservation_id: str) -> str:
    return f"{PREFIX}/reservations/{quote(reservation_id, safe='')}"


class HttpInventoryClient:
    """Calls the inventory service's internal API over pooled HTTP."""

    def __init__(self, http: ServiceHttpClient | str, timeout: float = 10.0) -> None:
        self._http = service_client("inventory", http, timeout)

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def reserve(self, request: ReserveStock) -> Reservation:
        return await self._http.call("POST", f"{PREFIX}/reservations", Reservation, body=request)

    async def commit(self, reservation_id: str) -> Reservation:
        return await self._http.call("POST", _path(reservation_id) + "/commit", Reservation)

    async def release(self, reservation_id: str) -> Reservation:
        return await self._http.call("POST", _path(reservation_id) + "/release", Reservation)

    async def return_sold(self, reservation_id: str) -> Reservation:
        return await self._http.call("POST", _path(reservation_id) + "/return", Reservation)

    async def reservation(self, reservation_id: str) -> Reservation:
        return await self._http.call("GET", _path(reservation_id), Reservation)

    async def set_stock(self, command: SetStock) -> StockLevel:
        return await self._http.call("POST", f"{PREFIX}/stock", StockLevel, body=command)

    async def stock(self, sku_ids: list[str]) -> list[StockLevel]:
        if not sku_ids:
            return []
        query = "&".join(f"sku_id={quote(sku_id, safe='')}" for sku_id in sku_ids)
        return await self._http.call("GET", f"{PREFIX}/stock?{query}", list[StockLevel])

    async def audit(self) -> list[str]:
        return await self._http.call("GET", f"{PREFIX}/audit", list[str])
