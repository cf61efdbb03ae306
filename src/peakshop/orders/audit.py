"""Read-only facts the invariant audit checks: what orders says was sold, keys and carts used twice."""

from __future__ import annotations

from peakshop.contracts.orders import OrdersAudit
from peakshop.orders.repository import OrdersRepository
from peakshop.platform.db import Database


async def audit_facts(db: Database) -> OrdersAudit:
    """Confirmed orders with their totals and units, the other orders with their step, every
    idempotency key with more than one order, and every cart with more than one order that did not fail.

    The last two lists are empty by the UNIQUE (account_id, idempotency_key) constraint and the unique
    index `orders_one_live_per_cart`; the audit checks them anyway, so that a migration that ever
    dropped either would be caught.
    """
    repository = OrdersRepository(db)
    confirmed, unconfirmed = await repository.outcome_facts()
    return OrdersAudit(
        confirmed=confirmed,
        unconfirmed=unconfirmed,
        duplicated_keys=await repository.duplicated_keys(),
        carts_ordered_twice=await repository.carts_ordered_twice(),
    )
