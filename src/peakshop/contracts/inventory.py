"""What the inventory service accepts, answers and announces.

Limits (quantities, line counts) are checked by the service itself rather than on decode, so that an
in-process caller and an HTTP caller get the same problem for the same mistake.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ReservationStatus = Literal["active", "committed", "released", "expired", "returned"]
"""`active` holds units; `committed` sold them; `released` and `expired` gave held units back;
`returned` put sold units back on sale (an order that failed after its units were sold)."""


class ReservationLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku_id: str
    quantity: int


class ReserveStock(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hold stock for every line or for none.

    `reservation_id` is the caller's idempotency key: the same id with the same lines returns the
    first reservation; `ttl_seconds` of None takes the service's default.
    """

    reservation_id: str
    customer_id: str | None
    lines: list[ReservationLine]
    ttl_seconds: int | None = None


class Reservation(msgspec.Struct, frozen=True):
    id: str
    customer_id: str | None
    status: ReservationStatus
    expires_at: float
    lines: list[ReservationLine]
    """One line per SKU, ordered by SKU id."""


class StockLevel(msgspec.Struct, frozen=True):
    """One SKU's counts; `initial == available + reserved + sold` always holds."""

    sku_id: str
    initial: int
    available: int
    reserved: int
    sold: int
    per_customer_limit: int | None


class SetStock(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Make `quantity` the SKU's initial stock: new SKUs start with it, restocks move by the difference."""

    sku_id: str
    quantity: int
    per_customer_limit: int | None = None


class ReservationExpired(msgspec.Struct, frozen=True):
    reservation_id: str


class StockReleased(msgspec.Struct, frozen=True):
    reservation_id: str
    lines: list[ReservationLine]


class StockReturned(msgspec.Struct, frozen=True):
    """Sold units back on sale: the order they were sold for failed after the sale."""

    reservation_id: str
    lines: list[ReservationLine]


TOPIC_RESERVATION_EXPIRED = "inventory.reservation_expired"
TOPIC_STOCK_RELEASED = "inventory.stock_released"
TOPIC_STOCK_RETURNED = "inventory.stock_returned"
