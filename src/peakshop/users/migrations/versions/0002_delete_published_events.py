"""Users: the outbox deletes what it published; the inbox is indexed by age for pruning.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from peakshop.platform.migrations import delete_published_events, keep_published_events

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "users"


def upgrade() -> None:
    delete_published_events(SCHEMA)


def downgrade() -> None:
    keep_published_events(SCHEMA)
