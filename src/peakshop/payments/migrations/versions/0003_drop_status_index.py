"""Payments: drop the index on (status, updated_at), which no query reads any more.

It served a listing of unsettled payments that nothing called (the orders reconciler finds stuck
checkouts through orders, and asks payments about one order at a time). Every change of a payment's
status had to write a new entry into it; without it, PostgreSQL can make those updates in place
(HOT), with no index write at all.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "payments"


def upgrade() -> None:
    op.drop_index("payments_status_updated", "payments", schema=SCHEMA)


def downgrade() -> None:
    op.create_index("payments_status_updated", "payments", ["status", "updated_at"], schema=SCHEMA)
