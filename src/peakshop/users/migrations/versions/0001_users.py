"""Accounts, sessions and addresses, with the users outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2024-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from peakshop.platform.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "users"


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Text, primary_key=True),
        # Stored already lower-cased (domain.normalise_email), so a plain unique constraint is enough.
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("email", name="accounts_email_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "sessions",
        # SHA-256 of the bearer token; the token itself is never stored.
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column(
            "account_id",
            sa.Text,
            sa.ForeignKey(f"{SCHEMA}.accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("sessions_account", "sessions", ["account_id"], schema=SCHEMA)
    op.create_index("sessions_expiry", "sessions", ["expires_at"], schema=SCHEMA)
    op.create_table(
        "addresses",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column(
            "account_id",
            sa.Text,
            sa.ForeignKey(f"{SCHEMA}.accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("line1", sa.Text, nullable=False),
        sa.Column("line2", sa.Text, nullable=False, server_default=""),
        sa.Column("city", sa.Text, nullable=False),
        sa.Column("postal_code", sa.Text, nullable=False),
        sa.Column("country", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("addresses_account", "addresses", ["account_id", "created_at"], schema=SCHEMA)
    create_messaging_tables(SCHEMA)


def downgrade() -> None:
    drop_messaging_tables(SCHEMA)
    op.drop_index("addresses_account", "addresses", schema=SCHEMA)
    op.drop_table("addresses", schema=SCHEMA)
    op.drop_index("sessions_expiry", "sessions", schema=SCHEMA)
    op.drop_index("sessions_account", "sessions", schema=SCHEMA)
    op.drop_table("sessions", schema=SCHEMA)
    op.drop_table("accounts", schema=SCHEMA)
