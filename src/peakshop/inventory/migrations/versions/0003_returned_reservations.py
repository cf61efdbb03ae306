"""Inventory: a reservation may be `returned`, its sold units back on sale.

An order that fails after its units were sold (the provider cancelled the authorisation between the
sale and the capture) gives them back: committed → returned, sold → available. SQLite cannot alter a
CHECK constraint in place, so there the table is rebuilt (Alembic's batch mode), indexes and all.

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

SCHEMA = "inventory"
CHECK = "reservations_status_known"


def _statuses(*statuses: str) -> None:
    known = ", ".join(f"'{status}'" for status in statuses)
    with op.batch_alter_table("reservations", schema=SCHEMA) as batch:
        batch.drop_constraint(CHECK, type_="check")
        batch.create_check_constraint(CHECK, f"status IN ({known})")


def upgrade() -> None:
    _statuses("active", "committed", "released", "expired", "returned")


def downgrade() -> None:
    # Refused, changing nothing, while a returned reservation exists.
    _statuses("active", "committed", "released", "expired")
