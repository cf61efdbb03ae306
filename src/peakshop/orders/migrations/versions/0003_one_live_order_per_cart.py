"""Orders: a cart has at most one order that is not failed.

Two checkouts of one cart under different Idempotency-Keys (two tabs, a double click from a client
that makes a key per click) would otherwise both reserve and both charge before the cart closes on
`orders.placed`. A failed order leaves the index, so a cart whose payment was declined can be
checked out again.

A database that already holds two such orders for one cart (possible before this revision) cannot
take the index: the upgrade stops with a unique violation and changes nothing. `peakshop audit`
lists every such cart ("one cart yields at most one order that did not fail"); each is a buyer
charged twice, for a person to settle before the upgrade is run again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "orders"
LIVE = "status <> 'failed'"


def upgrade() -> None:
    op.create_index(
        "orders_one_live_per_cart",
        "orders",
        ["cart_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text(LIVE),
        sqlite_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("orders_one_live_per_cart", "orders", schema=SCHEMA)
