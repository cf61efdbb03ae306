"""Payments and received webhook ids; the sandbox provider's charges, requests and events; outbox, inbox.

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

SCHEMA = "payments"


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("gateway_reference", sa.Text, nullable=True),
        sa.Column("decline_reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        # One payment per order: the guard that makes a second charge for an order impossible.
        sa.UniqueConstraint("order_id", name="payments_order_id_key"),
        sa.CheckConstraint("amount > 0", name="payments_amount_positive"),
        schema=SCHEMA,
    )
    op.create_index("payments_status_updated", "payments", ["status", "updated_at"], schema=SCHEMA)
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("webhook_events_received", "webhook_events", ["received_at"], schema=SCHEMA)
    # --- the sandbox provider's own state (a real provider keeps this on its side) ----------------
    op.create_table(
        "sandbox_charges",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("decline_reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("idempotency_key", name="sandbox_charges_idempotency_key_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "sandbox_requests",
        # The key of a capture, void or refund, and what it was first used for.
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("operation", sa.Text, nullable=False),
        sa.Column("charge_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "sandbox_events",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float, nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "sandbox_events_undelivered",
        "sandbox_events",
        ["created_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text("delivered_at IS NULL"),
        sqlite_where=sa.text("delivered_at IS NULL"),
    )
    create_messaging_tables(SCHEMA)


def downgrade() -> None:
    drop_messaging_tables(SCHEMA)
    op.drop_index("sandbox_events_undelivered", "sandbox_events", schema=SCHEMA)
    op.drop_table("sandbox_events", schema=SCHEMA)
    op.drop_table("sandbox_requests", schema=SCHEMA)
    op.drop_table("sandbox_charges", schema=SCHEMA)
    op.drop_index("webhook_events_received", "webhook_events", schema=SCHEMA)
    op.drop_table("webhook_events", schema=SCHEMA)
    op.drop_index("payments_status_updated", "payments", schema=SCHEMA)
    op.drop_table("payments", schema=SCHEMA)
