"""The catalog serves from its database when the cache is away (a Redis down or not answering)."""

from __future__ import annotations

import asyncio

import msgspec

from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.repository import CatalogRepository
from peakshop.catalog.seed import GeneratedCatalog
from peakshop.catalog.settings import CatalogSettings
from peakshop.contracts.catalog import Category, Product, ProductPage, ProductQuery
from peakshop.platform.cache import CacheUnavailable, MemoryCache
from peakshop.platform.db import SqliteDatabase
from peakshop.platform.metrics import Metrics


class SwitchableCache(MemoryCache):
    """The memory twin, with a switch that makes every call fail as `RedisCache` does when Redis is away."""

    away = False

    async def get(self, key: str) -> bytes | None:
        self._fail_if_away()
        return await super().get(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._fail_if_away()
        await super().set(key, value, ttl)

    async def delete(self, *keys: str) -> None:
        self._fail_if_away()
        await super().delete(*keys)

    def _fail_if_away(self) -> None:
        if self.away:
            raise CacheUnavailable("the test switched the cache off")


class CountingRepository(CatalogRepository):
    def __init__(self, db: SqliteDatabase) -> None:
        super().__init__(db)
        self.product_reads = 0

    async def get_product(self, product_id: str) -> Product | None:
        self.product_reads += 1
        return await super().get_product(product_id)


def errors(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value(
        "peakshop_cache_lookups_total", {"cache": "catalog", "result": "error"}
    )


async def test_every_read_is_served_from_the_database_while_the_cache_is_away(
    catalog: GeneratedCatalog, catalog_db: SqliteDatabase
) -> None:
    cache, metrics = SwitchableCache(), Metrics()
    handlers = CatalogHandlers(cache, metrics, CatalogSettings(), CatalogRepository(catalog_db))
    product_id = catalog.products[0].id
    with_cache = (
        await handlers.product_document(product_id),
        await handlers.product_page_document(ProductQuery(limit=5)),
        await handlers.product_page_document(ProductQuery(q="cotton", limit=5)),
        await handlers.categories_document(),
    )
    cache.away = True
    without = (
        await handlers.product_document(product_id),
        await handlers.product_page_document(ProductQuery(limit=5)),
        await handlers.product_page_document(ProductQuery(q="cotton", limit=5)),
        await handlers.categories_document(),
    )
    assert without == with_cache
    assert msgspec.json.decode(without[0].body, type=Product).id == product_id
    assert len(msgspec.json.decode(without[1].body, type=ProductPage).items) == 5
    assert msgspec.json.decode(without[3].body, type=list[Category])
    # One failed lookup per document (a listing's generation lookup fails, and its page is not looked up).
    assert errors(metrics) == 4.0


async def test_reads_of_one_product_load_it_once_while_the_cache_is_away(
    catalog: GeneratedCatalog, catalog_db: SqliteDatabase
) -> None:
    cache, repository = SwitchableCache(), CountingRepository(catalog_db)
    handlers = CatalogHandlers(cache, Metrics(), CatalogSettings(), repository)
    cache.away = True
    product_id = catalog.products[0].id
    documents = await asyncio.gather(*(handlers.product_document(product_id) for _ in range(50)))
    assert len({d.etag for d in documents}) == 1
    assert repository.product_reads == 1
    # Kept in the process's standby meanwhile: the next reads do not reach the database either.
    await handlers.product_document(product_id)
    assert repository.product_reads == 1
    # The standby is for the cache's absence only: once it is back, the product is read and stored there.
    cache.away = False
    await handlers.product_document(product_id)
    await handlers.product_document(product_id)
    assert repository.product_reads == 2


async def test_a_price_change_is_saved_and_shown_while_the_cache_is_away(
    catalog: GeneratedCatalog, catalog_db: SqliteDatabase
) -> None:
    cache, metrics = SwitchableCache(), Metrics()
    handlers = CatalogHandlers(cache, metrics, CatalogSettings(), CatalogRepository(catalog_db))
    sku = catalog.skus[0]
    cache.away = True
    await handlers.product_document(sku.product_id)  # now in the standby
    changed = await handlers.change_price(sku.id, sku.price + 500)
    assert changed.price == sku.price + 500
    assert (await handlers.price_skus([sku.id]))[0].price == sku.price + 500
    document = await handlers.product_document(sku.product_id)
    assert any(s.price == sku.price + 500 for s in msgspec.json.decode(document.body, type=Product).skus)
    # This process's standby forgot the old document with the change.
    assert errors(metrics) == 3.0  # two product lookups, and the dropped invalidation
