"""A table of things, with the outbox and inbox every service has."""

import sqlalchemy as sa
from alembic import op

from peakshop.platform.migrations import create_messaging_tables, delete_published_events

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "things",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.CheckConstraint("qty >= 0", name="qty_not_negative"),
        schema="demo",
    )
    create_messaging_tables("demo")
    delete_published_events("demo")
