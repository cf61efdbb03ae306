"""Stock, reservations and their lines, with the inventory outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2024-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from peakshop.platform.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "inventory"


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("sku_id", sa.Text, primary_key=True),
        sa.Column("initial", sa.Integer, nullable=False),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False),
        sa.Column("sold", sa.Integer, nullable=False),
        sa.Column("per_customer_limit", sa.Integer, nullable=True),
        sa.CheckConstraint("available >= 0", name="stock_available_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
        sa.CheckConstraint("sold >= 0", name="stock_sold_not_negative"),
        # Every statement moves units between the counts together, so the balance holds per row at
        # all times; the database refuses any statement that would break it.
        sa.CheckConstraint("initial = available + reserved + sold", name="stock_balanced"),
        sa.CheckConstraint(
            "per_customer_limit IS NULL OR per_customer_limit > 0", name="stock_limit_positive"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'committed', 'released', 'expired')", name="reservations_status_known"
        ),
        schema=SCHEMA,
    )
    # The sweeper's scan: active reservations, soonest expiry first.
    op.create_index("reservations_due", "reservations", ["status", "expires_at"], schema=SCHEMA)
    # Per-customer limits sum one customer's held units.
    op.create_index(
        "reservations_customer",
        "reservations",
        ["customer_id", "status"],
        schema=SCHEMA,
        postgresql_where=sa.text("customer_id IS NOT NULL"),
        sqlite_where=sa.text("customer_id IS NOT NULL"),
    )
    op.create_table(
        "reservation_lines",
        sa.Column(
            "reservation_id",
            sa.Text,
            sa.ForeignKey(f"{SCHEMA}.reservations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sku_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.stock.sku_id"), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.CheckConstraint("quantity > 0", name="reservation_lines_quantity_positive"),
        schema=SCHEMA,
    )
    create_messaging_tables(SCHEMA)


def downgrade() -> None:
    drop_messaging_tables(SCHEMA)
    op.drop_table("reservation_lines", schema=SCHEMA)
    op.drop_index("reservations_customer", "reservations", schema=SCHEMA)
    op.drop_index("reservations_due", "reservations", schema=SCHEMA)
    op.drop_table("reservations", schema=SCHEMA)
    op.drop_table("stock", schema=SCHEMA)
