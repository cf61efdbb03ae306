"""Checkout attempts and orders, their priced lines, and the orders outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2024-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from peakshop.platform.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "orders"
# The same predicate as the reconciler's query, so that the planner can use the partial index.
UNFINISHED = "step IN ('started', 'reserved', 'authorized')"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("request_fingerprint", sa.Text, nullable=False),
        sa.Column("cart_id", sa.Text, nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("failure_reason", sa.Text, nullable=True),
        # The problem the checkout failed with (JSON), so that every replay answers the same way.
        sa.Column("failure_problem", sa.Text, nullable=True),
        sa.Column("subtotal", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("shipping_address", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        # Until when a reconciler holds the attempt: others leave it alone until then.
        sa.Column("claimed_until", sa.Float, nullable=True),
        # One key, one order: the guard that makes a second order for a retried checkout impossible.
        sa.UniqueConstraint("account_id", "idempotency_key", name="orders_account_key"),
        sa.CheckConstraint(
            "step IN ('started', 'reserved', 'authorized', 'confirmed', 'failed')", name="orders_step_known"
        ),
        sa.CheckConstraint("status IN ('pending', 'confirmed', 'failed')", name="orders_status_known"),
        sa.CheckConstraint("total > 0 AND subtotal > 0", name="orders_amounts_positive"),
        schema=SCHEMA,
    )
    # The reconciler's scan: unfinished attempts, oldest first (finished ones are most rows, left out).
    op.create_index(
        "orders_unfinished",
        "orders",
        ["step", "updated_at"],
        schema=SCHEMA,
        postgresql_where=sa.text(UNFINISHED),
        sqlite_where=sa.text(UNFINISHED),
    )
    # Order history: one account's orders, newest first.
    op.create_index("orders_history", "orders", ["account_id", "created_at", "id"], schema=SCHEMA)
    op.create_table(
        "order_lines",
        sa.Column(
            "order_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.orders.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("sku_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.Column("line_total", sa.BigInteger, nullable=False),
        sa.CheckConstraint("quantity > 0", name="order_lines_quantity_positive"),
        sa.CheckConstraint("line_total = unit_price * quantity", name="order_lines_total_consistent"),
        schema=SCHEMA,
    )
    create_messaging_tables(SCHEMA)


def downgrade() -> None:
    drop_messaging_tables(SCHEMA)
    op.drop_table("order_lines", schema=SCHEMA)
    op.drop_index("orders_history", "orders", schema=SCHEMA)
    op.drop_index("orders_unfinished", "orders", schema=SCHEMA)
    op.drop_table("orders", schema=SCHEMA)
