"""A scratch PostgreSQL database per run, migrated and seeded, and a Redis cache in its own namespace.

Unreachable services skip these tests, unless `PEAKSHOP_REQUIRE_SERVICES=1`, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis

from peakshop.catalog.seed import GeneratedCatalog, generate_catalog, seed_catalog
from peakshop.catalog.service import MIGRATIONS
from peakshop.platform.cache import RedisCache
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.migrations import upgrade
from tests.services import missing

ADMIN_URL = os.environ.get("PEAKSHOP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PEAKSHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SEEDED_PRODUCTS = 240
SEED = 11


def _url_for(database: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def catalog_postgres_url() -> Iterator[str]:
    name = f"peakshop_catalog_test_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        missing(f"PostgreSQL is not reachable: {exc}")
    url = _url_for(name)
    try:
        upgrade(MIGRATIONS, "catalog", embedded=False, data_dir=Path("."), postgres_url=url)

        async def seed() -> None:
            db = await PostgresDatabase.connect(url, "catalog", pool_size=2)
            try:
                await seed_catalog(db, SEEDED_PRODUCTS, SEED)
            finally:
                await db.close()

        asyncio.run(seed())
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def catalog() -> GeneratedCatalog:
    return generate_catalog(SEEDED_PRODUCTS, SEED)


@pytest.fixture(scope="session")
def catalog_seed() -> int:
    return SEED


@pytest.fixture
async def catalog_pg(catalog_postgres_url: str) -> AsyncIterator[PostgresDatabase]:
    db = await PostgresDatabase.connect(catalog_postgres_url, "catalog", pool_size=4)
    yield db
    await db.close()


@pytest.fixture
async def catalog_redis() -> AsyncIterator[RedisCache]:
    namespace = f"peakshop-test-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        await client.aclose()
        missing(f"Redis is not reachable: {exc}")
    yield RedisCache(client, namespace)
    keys = [key async for key in client.scan_iter(match=f"{namespace}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
