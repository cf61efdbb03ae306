"""Catalog: categories, products, SKUs, full-text search, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2024-11-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from peakshop.platform.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "catalog"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # Byte order for names and ids on PostgreSQL too, so that browse order and keyset cursors are the
    # same on both databases whatever collation the server was created with.
    binary = "C" if postgres else None

    op.create_table(
        "categories",
        sa.Column("id", sa.Text(collation=binary), primary_key=True),
        sa.Column("slug", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("parent_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.categories.id"), nullable=True),
        schema=SCHEMA,
    )
    op.create_index("categories_parent", "categories", ["parent_id"], schema=SCHEMA)

    key: list[sa.Column[Any]]
    if postgres:
        key = [sa.Column("id", sa.Text(collation=binary), primary_key=True)]
    else:
        # FTS5's external content is keyed by an integer rowid that VACUUM must not renumber, so SQLite
        # gets an explicit INTEGER PRIMARY KEY and the text id becomes a unique key.
        key = [
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("id", sa.Text, nullable=False, unique=True),
        ]
    op.create_table(
        "products",
        *key,
        sa.Column("slug", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text(collation=binary), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("category_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.categories.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("products_by_name", "products", ["name", "id"], schema=SCHEMA)
    op.create_index("products_by_category", "products", ["category_id", "name", "id"], schema=SCHEMA)

    op.create_table(
        "skus",
        sa.Column("id", sa.Text(collation=binary), primary_key=True),
        sa.Column("code", sa.Text, nullable=False, unique=True),
        sa.Column("product_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.products.id"), nullable=False),
        sa.Column("attributes", sa.Text, nullable=False, server_default="{}"),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.CheckConstraint("price > 0", name="skus_price_positive"),
        schema=SCHEMA,
    )
    op.create_index("skus_by_product", "skus", ["product_id", "price"], schema=SCHEMA)

    if postgres:
        op.execute(
            f"ALTER TABLE {SCHEMA}.products ADD COLUMN search tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('simple', name), 'A') || "
            "setweight(to_tsvector('simple', description), 'B')) STORED"
        )
        op.execute(f"CREATE INDEX products_search ON {SCHEMA}.products USING gin (search)")
    else:
        op.execute(
            f"CREATE VIRTUAL TABLE {SCHEMA}.products_fts USING fts5(name, description, "
            "content='products', content_rowid='seq', tokenize='unicode61 remove_diacritics 0')"
        )
        # Triggers keep the index in step with every write, whoever makes it.
        op.execute(
            f"CREATE TRIGGER {SCHEMA}.products_fts_insert AFTER INSERT ON products BEGIN "
            "INSERT INTO products_fts (rowid, name, description) "
            "VALUES (new.seq, new.name, new.description); "
            "END"
        )
        op.execute(
            f"CREATE TRIGGER {SCHEMA}.products_fts_delete AFTER DELETE ON products BEGIN "
            "INSERT INTO products_fts (products_fts, rowid, name, description) "
            "VALUES ('delete', old.seq, old.name, old.description); "
            "END"
        )
        op.execute(
            f"CREATE TRIGGER {SCHEMA}.products_fts_update AFTER UPDATE OF name, description ON products "
            "WHEN old.name IS NOT new.name OR old.description IS NOT new.description BEGIN "
            "INSERT INTO products_fts (products_fts, rowid, name, description) "
            "VALUES ('delete', old.seq, old.name, old.description); "
            "INSERT INTO products_fts (rowid, name, description) "
            "VALUES (new.seq, new.name, new.description); "
            "END"
        )

    create_messaging_tables(SCHEMA)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    drop_messaging_tables(SCHEMA)
    if not postgres:
        for trigger in ("products_fts_insert", "products_fts_delete", "products_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {SCHEMA}.{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {SCHEMA}.products_fts")
    op.drop_table("skus", schema=SCHEMA)
    op.drop_table("products", schema=SCHEMA)
    op.drop_table("categories", schema=SCHEMA)
