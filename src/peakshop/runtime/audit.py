"""The invariant audit of brief §3, run against the live databases of a topology.

Read-only: it opens each service's database, asks each service's own audit queries, and joins the
answers here, the one place allowed to know every service. Run it after a rehearsal, after a chaos
test, or whenever the books must be proven to balance.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec

from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.settings import load_inventory_settings
from peakshop.orders.audit import audit_facts
from peakshop.payments.repository import PaymentsRepository
from peakshop.platform import db as database
from peakshop.platform.settings import PlatformSettings

# A reservation may outlive its expiry by up to one sweep; past this it counts as stuck.
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
        db = await database.connect(
            embedded=settings.embedded,
            schema=schema,
            data_dir=settings.data_dir,
            postgres_url=settings.postgres_url,
            pool_size=2,
        )
        opened.append(db)
        return db

    try:
        inventory_db, payments_db, orders_db = (
            await connect("inventory"),
            await connect("payments"),
            await connect("orders"),
        )
        checks = [
            await _check("stock balances: initial = available + reserved + sold, none negative",
                         InventoryHandlers(load_inventory_settings(), database=inventory_db).audit),
            *await _money_checks(payments_db, orders_db),
            await _check("no reservation outlives its expiry or its failed order",
                         lambda: _stuck_reservations(inventory_db, orders_db, now or time.time())),
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


async def _money_checks(payments_db: database.Database, orders_db: database.Database) -> list[Check]:
    orders = await audit_facts(orders_db)
    payments = {
        order_id: (status, amount)
        for order_id, status, amount in await PaymentsRepository(payments_db).audit_rows()
    }
    confirmed = {fact.order_id: fact for fact in orders.confirmed}

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
            if status == "captured" and order_id not in confirmed
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
            if row[0] not in confirmed
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


async def _stuck_reservations(
    inventory_db: database.Database, orders_db: database.Database, now: float
) -> list[str]:
    active = await inventory_db.fetch(
        "SELECT id, expires_at FROM inventory.reservations WHERE status = 'active'"
    )
    failed = {row[0] for row in await orders_db.fetch("SELECT id FROM orders.orders WHERE status = 'failed'")}
    found = []
    for reservation_id, expires_at in ((row[0], float(row[1])) for row in active):
        if reservation_id in failed:
            found.append(f"reservation {reservation_id} still holds stock for a failed order")
        elif expires_at + STUCK_GRACE_SECONDS < now:
            found.append(
                f"reservation {reservation_id} expired {now - expires_at:.0f} s ago and still holds stock"
            )
    return found
