"""Read-only facts the invariant audit checks: what orders says was sold, and keys used twice."""

from __future__ import annotations

from peakshop.contracts.orders import OrdersAudit
from peakshop.orders.repository import OrdersRepository
from peakshop.platform.db import Database


async def audit_facts(db: Database) -> OrdersAudit:
    """Confirmed orders with their totals, and every idempotency key with more than one order.

    The second list is empty by the UNIQUE (account_id, idempotency_key) constraint; the audit checks
    it anyway, so that a migration that ever dropped the constraint would be caught.
    """
    repository = OrdersRepository(db)
    return OrdersAudit(
        confirmed=await repository.confirmed_totals(),
        duplicated_keys=await repository.duplicated_keys(),
    )
