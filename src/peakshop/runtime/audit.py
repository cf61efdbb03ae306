"""The invariant audit of brief §3, run against the live databases of a topology.

Read-only: it opens each service's database, asks each service's own audit queries, and joins the
answers here, the one place allowed to know every service. Run it after a rehearsal, after a chaos
test, or whenever the books must be proven to balance.

The services' databases cannot be read in one snapshot, so orders is read first and the others after:
an order confirmed by then had its units sold and its payment captured before the later reads. What
a checkout still in flight may show (money taken or units sold for an order not yet confirmed) counts
only once its order has stayed unfinished for `STUCK_GRACE_SECONDS`, so that the audit of a shop
under load does not cry wolf.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec

from peakshop.contracts.orders import OrdersAudit
from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.repository import InventoryRepository
from peakshop.inventory.settings import load_inventory_settings
from peakshop.orders.audit import audit_facts
from peakshop.payments.repository import PaymentsRepository
from peakshop.platform import db as database
from peakshop.platform.settings import PlatformSettings

# A reservation may outlive its expiry by up to one sweep, and a checkout may sit between selling its
# units and confirming its order until the reconciler's next pass; past this either counts as stuck.
STUCK_GRACE_SECONDS = 120.0


class Check(msgspec.Struct, frozen=True):
    name: str
    ok: bool
    detail: str
    violations: list[str]


class AuditReport(msgspec.Struct, frozen=True):
    ok: bool
    checks: list[Check]
    violations: list[str]


async def run_audit(settings: PlatformSettings, *, now: float | None = None) -> AuditReport:
    opened: list[database.Database] = []

    async def connect(schema: str) -> database.Database:
        db = await database.connect_as_configured(settings, schema, pool_size=2)
        opened.append(db)
        return db

    try:
        orders_db, payments_db, inventory_db = (
            await connect("orders"),
            await connect("payments"),
            await connect("inventory"),
        )
        moment = now or time.time()
        orders = await audit_facts(orders_db)
        checks = [
            *await _money_checks(orders, payments_db, moment),
            await _check("stock balances: initial = available + reserved + sold, none negative",
                         InventoryHandlers(load_inventory_settings(), database=inventory_db).audit),
            await _check("every confirmed order's units are sold, and no other order's",
                         lambda: _sold_units(orders, inventory_db, moment)),
            await _check("no reservation outlives its expiry or its failed order",
                         lambda: _stuck_reservations(orders, inventory_db, moment)),
            await _check("no customer holds more of a SKU than its per-customer limit allowed",
                         lambda: _limits_kept(inventory_db)),
        ]  # fmt: skip
    finally:
        for db in opened:
            await db.close()
    violations = [v for check in checks for v in check.violations]
    return AuditReport(ok=not violations, checks=checks, violations=violations)


async def _check(name: str, find: Callable[[], Awaitable[list[str]]]) -> Check:
    found = await find()
    detail = "ok" if not found else f"{len(found)} violation(s)"
    return Check(name, not found, detail, found)


async def _money_checks(orders: OrdersAudit, payments_db: database.Database, now: float) -> list[Check]:
    payments = {
        order_id: (status, amount)
        for order_id, status, amount in await PaymentsRepository(payments_db).audit_rows()
    }
    confirmed = {fact.order_id: fact for fact in orders.confirmed}
    # Checkouts still running when orders was read: their money may be taken before they confirm.
    in_flight = {
        fact.order_id
        for fact in orders.unconfirmed
        if fact.step != "failed" and fact.updated_at + STUCK_GRACE_SECONDS >= now
    }

    def confirmed_orders_are_paid() -> list[str]:
        found = []
        for order_id, fact in confirmed.items():
            status, amount = payments.get(order_id, ("missing", 0))
            if status != "captured":
                found.append(f"order {order_id} is confirmed but its payment is {status}")
            elif amount != fact.total:
                found.append(f"order {order_id} totals {fact.total} but {amount} was captured")
        return found

    def captures_have_orders() -> list[str]:
        return [
            f"payment of order {order_id} is captured but the order is not confirmed"
            for order_id, (status, _) in payments.items()
            if status == "captured" and order_id not in confirmed and order_id not in in_flight
        ]

    async def provider_charges_have_payments() -> list[str]:
        # The provider's side: a charge the gateway holds that our books do not settle is a charge
        # without an order. (The sandbox keeps its ledger beside ours; a real provider is asked by API.)
        rows = await payments_db.fetch(
            "SELECT idempotency_key, status FROM payments.sandbox_charges WHERE status IN ('authorized', 'captured')"
        )
        return [
            f"the provider holds a {row[1]} charge for {row[0]}, which is not a confirmed order"
            for row in rows
            if row[0] not in confirmed and row[0] not in in_flight
        ]

    async def keys_used_once() -> list[str]:
        return [
            f"idempotency key {fact.idempotency_key!r} of account {fact.account_id} made {fact.orders} orders"
            for fact in orders.duplicated_keys
        ]

    async def carts_ordered_once() -> list[str]:
        return [
            f"cart {fact.cart_id} has {len(fact.order_ids)} orders that did not fail: "
            + ", ".join(fact.order_ids)
            for fact in orders.carts_ordered_twice
        ]

    async def sync(found: Callable[[], list[str]]) -> list[str]:
        return found()

    return [
        await _check("every confirmed order has one captured payment of its total",
                     lambda: sync(confirmed_orders_are_paid)),
        await _check("no captured payment lacks a confirmed order", lambda: sync(captures_have_orders)),
        await _check("no charge held at the provider lacks a confirmed order", provider_charges_have_payments),
        await _check("one idempotency key yields at most one order", keys_used_once),
        await _check("one cart yields at most one order that did not fail", carts_ordered_once),
    ]  # fmt: skip


async def _sold_units(orders: OrdersAudit, inventory_db: database.Database, now: float) -> list[str]:
    """A confirmed order whose units were not sold has sold them twice (they went back on the shelf);
    units sold for an order that failed, or that never finished, are lost to every buyer."""
    inventory = InventoryRepository(inventory_db)
    sold = {reservation.id: reservation for reservation in await inventory.sold_reservations()}
    others = {fact.order_id: fact for fact in orders.unconfirmed}
    found = []
    for fact in orders.confirmed:
        reservation = sold.pop(fact.order_id, None)
        if reservation is None:
            held = await inventory.reservation(inventory_db, fact.order_id)
            state = "no reservation" if held is None else f"a reservation that is {held.status}"
            found.append(f"order {fact.order_id} is confirmed but has {state}: its units were not sold")
        elif reservation.units != fact.units:
            found.append(
                f"order {fact.order_id} bought {_units(fact.units)} but its reservation sold "
                f"{_units(reservation.units)}"
            )
    for reservation in sold.values():
        order = others.get(reservation.id)
        if order is not None and order.step == "failed":
            found.append(
                f"reservation {reservation.id} sold {_units(reservation.units)} for an order that failed"
            )
        elif reservation.updated_at + STUCK_GRACE_SECONDS < now:
            state = "does not exist" if order is None else f"is still {order.step}"
            found.append(
                f"reservation {reservation.id} sold {_units(reservation.units)} "
                f"{now - reservation.updated_at:.0f} s ago for an order that {state}"
            )
    return found


def _units(units: dict[str, int]) -> str:
    return ", ".join(f"{quantity} x {sku_id}" for sku_id, quantity in sorted(units.items())) or "nothing"


async def _limits_kept(inventory_db: database.Database) -> list[str]:
    return [breach.violation() for breach in await InventoryRepository(inventory_db).over_limit_holders()]


async def _stuck_reservations(orders: OrdersAudit, inventory_db: database.Database, now: float) -> list[str]:
    active = await inventory_db.fetch(
        "SELECT id, expires_at FROM inventory.reservations WHERE status = 'active'"
    )
    failed = {fact.order_id for fact in orders.unconfirmed if fact.step == "failed"}
    found = []
    for reservation_id, expires_at in ((row[0], float(row[1])) for row in active):
        if reservation_id in failed:
            found.append(f"reservation {reservation_id} still holds stock for a failed order")
        elif expires_at + STUCK_GRACE_SECONDS < now:
            found.append(
                f"reservation {reservation_id} expired {now - expires_at:.0f} s ago and still holds stock"
            )
    return found
