"""A seeded SQLite catalog made once per run; each test gets its own copy of the file."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.repository import CatalogRepository
from peakshop.catalog.seed import GeneratedCatalog, generate_catalog, seed_catalog
from peakshop.catalog.service import MIGRATIONS
from peakshop.catalog.settings import CatalogSettings
from peakshop.platform.cache import MemoryCache
from peakshop.platform.db import SqliteDatabase, sqlite_path
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade

SEEDED_PRODUCTS = 240
SEED = 7


@pytest.fixture(scope="session")
def catalog_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("catalog-template")
    upgrade(MIGRATIONS, "catalog", embedded=True, data_dir=data_dir, postgres_url="")

    async def seed() -> None:
        db = await SqliteDatabase.connect(sqlite_path(data_dir, "catalog"), "catalog")
        try:
            await seed_catalog(db, SEEDED_PRODUCTS, SEED)
        finally:
            await db.close()

    asyncio.run(seed())
    return sqlite_path(data_dir, "catalog")


@pytest.fixture
async def catalog_db(catalog_template: Path, tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    path = sqlite_path(tmp_path, "catalog")
    shutil.copyfile(catalog_template, path)
    db = await SqliteDatabase.connect(path, "catalog")
    yield db
    await db.close()


@pytest.fixture
def catalog_metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def catalog_handlers(catalog_db: SqliteDatabase, catalog_metrics: Metrics) -> CatalogHandlers:
    return CatalogHandlers(MemoryCache(), catalog_metrics, CatalogSettings(), CatalogRepository(catalog_db))


@pytest.fixture(scope="session")
def catalog() -> GeneratedCatalog:
    """What the template was seeded with, to compare answers against."""
    return generate_catalog(SEEDED_PRODUCTS, SEED)


@pytest.fixture(scope="session")
def catalog_seed() -> int:
    return SEED
