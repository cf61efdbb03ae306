"""Getting a topology's data ready before it serves: migrations, then a seeded catalog if empty."""

from __future__ import annotations

from collections.abc import Callable

from peakshop.catalog.seed import seed_catalog, stock_levels
from peakshop.contracts.inventory import SetStock, StockLevel
from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.settings import load_inventory_settings
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
    """The synthetic catalog, and stock for each of its SKUs from the same seed."""
    db = await _catalog_db(settings)
    try:
        await seed_catalog(db, products, seed, progress)
    finally:
        await db.close()
    db = await _db(settings, "inventory")
    try:
        await InventoryHandlers(load_inventory_settings(), database=db).seed_stock(
            stock_levels(products, seed)
        )
    finally:
        await db.close()


async def set_stock(
    settings: PlatformSettings, sku_id: str, quantity: int, per_customer_limit: int | None
) -> StockLevel:
    db = await _db(settings, "inventory")
    try:
        handlers = InventoryHandlers(load_inventory_settings(), database=db)
        return await handlers.set_stock(SetStock(sku_id, quantity, per_customer_limit))
    finally:
        await db.close()


async def _catalog_db(settings: PlatformSettings) -> database.Database:
    return await _db(settings, "catalog")


async def _db(settings: PlatformSettings, schema: str) -> database.Database:
    return await database.connect_as_configured(settings, schema, pool_size=2)
