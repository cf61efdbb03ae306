"""Carts and their lines, with the cart outbox and inbox.

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

SCHEMA = "cart"


def upgrade() -> None:
    op.create_table(
        "carts",
        sa.Column("id", sa.Text, primary_key=True),
        # NULL for an anonymous cart, whose unguessable id is all that grants access to it.
        sa.Column("account_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("order_id", sa.Text, nullable=True),
        sa.Column("merged_into", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.CheckConstraint("status IN ('open', 'merged', 'checked_out')", name="carts_status_known"),
        schema=SCHEMA,
    )
    # One open cart per account: concurrent first adds of one account meet on this index (ON CONFLICT).
    op.create_index(
        "carts_open_per_account",
        "carts",
        ["account_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    # For the sweep of abandoned anonymous carts, oldest first.
    op.create_index("carts_by_age", "carts", ["status", "updated_at"], schema=SCHEMA)
    op.create_table(
        "lines",
        sa.Column(
            "cart_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.carts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("sku_id", sa.Text, primary_key=True),
        # A snapshot from the catalog when the line was added, for display if the catalog is slow;
        # the price is never stored: every read asks the catalog.
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("added_at", sa.Float, nullable=False),
        sa.CheckConstraint("quantity > 0", name="lines_quantity_positive"),
        schema=SCHEMA,
    )
    create_messaging_tables(SCHEMA)


def downgrade() -> None:
    drop_messaging_tables(SCHEMA)
    op.drop_table("lines", schema=SCHEMA)
    op.drop_index("carts_by_age", "carts", schema=SCHEMA)
    op.drop_index("carts_open_per_account", "carts", schema=SCHEMA)
    op.drop_table("carts", schema=SCHEMA)
