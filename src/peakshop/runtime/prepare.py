"""Getting a topology's data ready before it serves: migrations, then a seeded catalog if empty."""

from __future__ import annotations

from collections.abc import Callable

from peakshop.catalog.seed import seed_catalog
from peakshop.platform import db as database
from peakshop.platform.settings import PlatformSettings
from peakshop.runtime.composition import Process
from peakshop.runtime.topology import Topology

Progress = Callable[[int, int], None]


async def migrate_all(topology: Topology, settings: PlatformSettings) -> list[str]:
    """Migrate every service of the topology; return their names."""
    migrated = []
    for name in topology.processes:
        process = Process(topology, name, settings)
        await process.migrate()
        migrated += [s for s in process.services if process.services[s].migrations is not None]
    return migrated


async def catalog_size(settings: PlatformSettings) -> int:
    db = await _catalog_db(settings)
    try:
        row = await db.fetchrow("SELECT count(*) FROM catalog.products")
        return int(row[0]) if row else 0
    finally:
        await db.close()


async def seed(settings: PlatformSettings, *, products: int, seed: int, progress: Progress | None) -> None:
    db = await _catalog_db(settings)
    try:
        await seed_catalog(db, products, seed, progress)
    finally:
        await db.close()


async def _catalog_db(settings: PlatformSettings) -> database.Database:
    return await database.connect(
        embedded=settings.embedded,
        schema="catalog",
        data_dir=settings.data_dir,
        postgres_url=settings.postgres_url,
        pool_size=2,
    )
