"""The rules of stock and reservations, as plain Python: no framework, driver or I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from peakshop.contracts.inventory import ReservationLine, ReserveStock, SetStock
from peakshop.platform.problems import InvalidInput

SCHEMA = "inventory"

MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_ID_LENGTH = 100
# Stock counts are 32-bit integers in the database.
MAX_STOCK = 1_000_000_000
MAX_STOCK_QUERY = 1_000


def invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


# Reservation ids travel in URL paths, where a decoded `/` would change the route.
_ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:~-")


def _check_id(field: str, value: str) -> None:
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise invalid(field, f"must be 1 to {MAX_ID_LENGTH} characters")


def _check_reservation_id(value: str) -> None:
    _check_id("reservation_id", value)
    if not _ID_CHARACTERS.issuperset(value):
        raise invalid("reservation_id", "may hold only letters, digits and . _ : ~ -")


def merged_lines(request: ReserveStock) -> list[ReservationLine]:
    """The request's lines checked, one per SKU, in SKU order: the one global lock order."""
    _check_reservation_id(request.reservation_id)
    if request.customer_id is not None:
        _check_id("customer_id", request.customer_id)
    if not request.lines:
        raise invalid("lines", "at least one line is required")
    if len(request.lines) > MAX_LINES:
        raise invalid("lines", f"at most {MAX_LINES} lines are allowed")
    totals: dict[str, int] = {}
    for index, line in enumerate(request.lines):
        _check_id(f"lines[{index}].sku_id", line.sku_id)
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise invalid(f"lines[{index}].quantity", f"must be between 1 and {MAX_QUANTITY}")
        totals[line.sku_id] = totals.get(line.sku_id, 0) + line.quantity
    for sku_id, quantity in totals.items():
        if quantity > MAX_QUANTITY:
            raise invalid("lines", f"SKU {sku_id} adds up to more than {MAX_QUANTITY} units")
    return [ReservationLine(sku_id, totals[sku_id]) for sku_id in sorted(totals)]


def checked_ttl(ttl_seconds: int | None, default: int, maximum: int) -> int:
    if ttl_seconds is None:
        return default
    if not 1 <= ttl_seconds <= maximum:
        raise invalid("ttl_seconds", f"must be between 1 and {maximum}")
    return ttl_seconds


def checked_stock(command: SetStock) -> SetStock:
    _check_id("sku_id", command.sku_id)
    if not 0 <= command.quantity <= MAX_STOCK:
        raise invalid("quantity", f"must be between 0 and {MAX_STOCK}")
    if command.per_customer_limit is not None and not 1 <= command.per_customer_limit <= MAX_STOCK:
        raise invalid("per_customer_limit", f"must be empty or between 1 and {MAX_STOCK}")
    return command


def checked_sku_ids(sku_ids: Iterable[str]) -> list[str]:
    unique = sorted(set(sku_ids))
    if len(unique) > MAX_STOCK_QUERY:
        raise invalid("sku_id", f"at most {MAX_STOCK_QUERY} SKUs per request")
    for sku_id in unique:
        _check_id("sku_id", sku_id)
    return unique


def over_limit(
    lines: Iterable[ReservationLine], limits: dict[str, int], already_held: dict[str, int]
) -> list[str]:
    """SKUs for which this customer's held units plus this request would pass the per-customer limit."""
    return [
        line.sku_id
        for line in lines
        if line.sku_id in limits and already_held.get(line.sku_id, 0) + line.quantity > limits[line.sku_id]
    ]


@dataclass(frozen=True)
class SoldReservation:
    """A committed reservation: the units it sold per SKU, for the audit to match against its order."""

    id: str
    updated_at: float
    units: dict[str, int]


@dataclass(frozen=True)
class LimitBreach:
    """A customer holding more units of a SKU than the per-customer limits they were checked against."""

    customer_id: str
    sku_id: str
    held: int
    limit: int

    def violation(self) -> str:
        return (
            f"customer {self.customer_id} holds {self.held} x {self.sku_id}, above the per-customer "
            f"limit of {self.limit} their reservations were checked against"
        )


@dataclass(frozen=True)
class SkuTally:
    """One SKU's counts next to what its reservation lines add up to: what the audit compares."""

    sku_id: str
    initial: int
    available: int
    reserved: int
    sold: int
    active_lines: int
    committed_lines: int

    def violations(self) -> list[str]:
        found: list[str] = []
        for name in ("initial", "available", "reserved", "sold"):
            value = getattr(self, name)
            if value < 0:
                found.append(f"{self.sku_id}: {name} is negative ({value})")
        total = self.available + self.reserved + self.sold
        if self.initial != total:
            found.append(
                f"{self.sku_id}: initial {self.initial} != available {self.available} + reserved "
                f"{self.reserved} + sold {self.sold} ({total})"
            )
        if self.reserved != self.active_lines:
            found.append(
                f"{self.sku_id}: reserved {self.reserved} != active reservation lines {self.active_lines}"
            )
        if self.sold != self.committed_lines:
            found.append(
                f"{self.sku_id}: sold {self.sold} != committed reservation lines {self.committed_lines}"
            )
        return found
