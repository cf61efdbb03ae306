"""Inventory: each reservation line keeps the per-customer limit in force when it was taken.

The limit on a SKU may change after a sale (an admin lowers it for the next wave), so the audit
cannot judge a customer's holdings by today's limit. It judges them by the limits their own
reservations were checked against (see `InventoryRepository.over_limit_holders`). Lines taken
before this revision carry none, and the audit leaves them out.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "inventory"


def upgrade() -> None:
    op.add_column(
        "reservation_lines", sa.Column("per_customer_limit", sa.Integer, nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    with op.batch_alter_table("reservation_lines", schema=SCHEMA) as batch:
        batch.drop_column("per_customer_limit")
