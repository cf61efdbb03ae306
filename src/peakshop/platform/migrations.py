"""Alembic, run per service: each service migrates its own schema and keeps its own version table.

A service's `migrations/env.py` is two lines that call `run_env()`; the SQL dialect differences that
remain (full-text search, mostly) are handled inside the migration scripts themselves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from peakshop.platform.db import sqlite_path


def _config(script_location: Path, schema: str, url: str, sqlite_file: Path | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["schema"] = schema
    cfg.attributes["url"] = url
    cfg.attributes["sqlite_file"] = sqlite_file
    return cfg


def upgrade(
    script_location: Path,
    schema: str,
    *,
    embedded: bool,
    data_dir: Path,
    postgres_url: str,
    revision: str = "head",
) -> None:
    """Bring one service's schema to `revision`, the newest by default (blocking: call it in a thread)."""
    command.upgrade(_service_config(script_location, schema, embedded, data_dir, postgres_url), revision)


def downgrade(
    script_location: Path, schema: str, *, embedded: bool, data_dir: Path, postgres_url: str
) -> None:
    """Take one service's schema all the way back, leaving only Alembic's version table."""
    command.downgrade(_service_config(script_location, schema, embedded, data_dir, postgres_url), "base")


def _service_config(
    script_location: Path, schema: str, embedded: bool, data_dir: Path, postgres_url: str
) -> Config:
    if embedded:
        path = sqlite_path(data_dir, schema)
        path.parent.mkdir(parents=True, exist_ok=True)
        return _config(script_location, schema, "sqlite+aiosqlite://", path)
    url = postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return _config(script_location, schema, url, None)


def run_env() -> None:
    """The body of every service's `migrations/env.py`."""
    from alembic import context

    cfg = context.config
    schema: str = cfg.attributes["schema"]
    url: str = cfg.attributes["url"]
    sqlite_file: Path | None = cfg.attributes["sqlite_file"]

    def migrate(connection: sa.Connection) -> None:
        context.configure(
            connection=connection,
            version_table_schema=schema,
            include_schemas=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        if sqlite_file is not None:

            @event.listens_for(engine.sync_engine, "connect")
            def attach(dbapi_conn, _record):
                cursor = dbapi_conn.cursor()
                cursor.execute(f"ATTACH DATABASE '{sqlite_file}' AS {schema}")
                cursor.close()

        async with engine.connect() as conn:
            if sqlite_file is None:
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                await conn.commit()
            await conn.run_sync(migrate)
            await conn.commit()
        await engine.dispose()

    asyncio.run(main())


def create_messaging_tables(schema: str) -> None:
    """The outbox and inbox every service owns; call from a service's first migration."""
    from alembic import op

    op.create_table(
        "outbox",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("occurred_at", sa.Float, nullable=False),
        sa.Column("published_at", sa.Float, nullable=True),
        schema=schema,
    )
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["occurred_at", "id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("handled_at", sa.Float, nullable=False),
        schema=schema,
    )


def delete_published_events(schema: str) -> None:
    """The relay deletes an outbox row once the bus has it, instead of marking it published: the
    table holds only what waits, however many events a sale makes. The inbox gets an index on its
    age, so that ids past their dedupe window can be pruned without reading the whole table."""
    from alembic import op

    # Rows already published go first: without the column, the relay would take them for waiting.
    op.execute(f"DELETE FROM {schema}.outbox WHERE published_at IS NOT NULL")
    op.drop_index("outbox_unpublished", "outbox", schema=schema)
    op.drop_column("outbox", "published_at", schema=schema)
    op.create_index("outbox_oldest_first", "outbox", ["occurred_at", "id"], schema=schema)
    op.create_index("inbox_by_age", "inbox", ["handled_at"], schema=schema)


def keep_published_events(schema: str) -> None:
    """Undo `delete_published_events`."""
    from alembic import op

    op.drop_index("inbox_by_age", "inbox", schema=schema)
    op.drop_index("outbox_oldest_first", "outbox", schema=schema)
    op.add_column("outbox", sa.Column("published_at", sa.Float, nullable=True), schema=schema)
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["occurred_at", "id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def drop_messaging_tables(schema: str) -> None:
    """Undo `create_messaging_tables`; call from a service's first migration's downgrade."""
    from alembic import op

    op.drop_table("inbox", schema=schema)
    op.drop_index("outbox_unpublished", "outbox", schema=schema)
    op.drop_table("outbox", schema=schema)
