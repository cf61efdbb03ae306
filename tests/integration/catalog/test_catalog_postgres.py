"""The catalog's repository behaviours on PostgreSQL, and its documents through the Redis cache."""

import msgspec
import pytest

from peakshop.catalog.domain import InvalidCursor
from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.repository import CatalogRepository
from peakshop.catalog.seed import GeneratedCatalog, seed_catalog
from peakshop.catalog.settings import CatalogSettings
from peakshop.contracts.catalog import TOPIC_PRICE_CHANGED, PriceChanged, Product, ProductPage, ProductQuery
from peakshop.platform.cache import MemoryCache, RedisCache
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import InvalidInput, NotFound

pytestmark = pytest.mark.services


@pytest.fixture
def handlers(catalog_pg: PostgresDatabase) -> CatalogHandlers:
    return CatalogHandlers(MemoryCache(), Metrics(), CatalogSettings(), CatalogRepository(catalog_pg))


async def page(handlers: CatalogHandlers, **query: object) -> ProductPage:
    document = await handlers.product_page_document(ProductQuery(**query))  # type: ignore[arg-type]
    return msgspec.json.decode(document.body, type=ProductPage)


async def walk(handlers: CatalogHandlers, **query: object) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        current = await page(handlers, cursor=cursor, **query)
        ids += [item.id for item in current.items]
        if current.next_cursor is None:
            return ids
        cursor = current.next_cursor


async def test_browsing_walks_every_product_once_in_the_same_order_as_sqlite(
    handlers: CatalogHandlers, catalog: GeneratedCatalog
) -> None:
    ids = await walk(handlers, limit=9)
    # Byte order of names, then ids: what SQLite does, whatever the server's collation.
    assert ids == [p.id for p in sorted(catalog.products, key=lambda p: (p.name.encode(), p.id))]


async def test_a_category_filter_includes_children(
    handlers: CatalogHandlers, catalog: GeneratedCatalog
) -> None:
    children = {c.id for c in catalog.categories if c.parent_id == "c_electronics"}
    ids = await walk(handlers, category="electronics", limit=25)
    assert set(ids) == {p.id for p in catalog.products if p.category_id in children}
    assert await walk(handlers, category="c_laptops", limit=5) == await walk(
        handlers, category="laptops", limit=5
    )
    with pytest.raises(NotFound):
        await page(handlers, category="nowhere")


async def test_search_finds_by_name_words_and_pages_once(
    handlers: CatalogHandlers, catalog: GeneratedCatalog
) -> None:
    product = catalog.products[21]
    brand, *_, noun = product.name.split()
    ids = await walk(handlers, q=f"{brand} {noun}", limit=2)
    assert product.id in ids and len(ids) == len(set(ids))
    assert await walk(handlers, q="warranty", limit=3) == await walk(handlers, q="warranty", limit=100)


@pytest.mark.parametrize(
    "q", ['"', "laptop*", "NEAR(a b)", "-x", "(((", "a:b", "lap\x00top", "' OR 1=1 --", "!!&|<->", "x" * 200]
)
async def test_hostile_search_strings_are_answered(handlers: CatalogHandlers, q: str) -> None:
    assert isinstance((await page(handlers, q=q)).items, list)


async def test_bounds_and_cursors_are_checked(handlers: CatalogHandlers) -> None:
    with pytest.raises(InvalidInput):
        await page(handlers, limit=101)
    with pytest.raises(InvalidInput):
        await page(handlers, q="x" * 201)
    with pytest.raises(InvalidCursor):
        await page(handlers, cursor="forged")
    cursor = (await page(handlers, q="warranty", limit=2)).next_cursor
    with pytest.raises(InvalidCursor):
        await page(handlers, q="oak", cursor=cursor)


async def test_a_price_change_and_its_event_commit_together(
    handlers: CatalogHandlers, catalog_pg: PostgresDatabase, catalog: GeneratedCatalog
) -> None:
    sku = catalog.skus[3]
    before = await handlers.product_document(sku.product_id)
    await handlers.change_price(sku.id, sku.price + 1)
    after = await handlers.product_document(sku.product_id)
    assert after.etag != before.etag
    rows = await catalog_pg.fetch(
        "SELECT topic, payload FROM catalog.outbox WHERE topic = $1 ORDER BY occurred_at", TOPIC_PRICE_CHANGED
    )
    events = [msgspec.json.decode(r[1], type=PriceChanged) for r in rows]
    assert PriceChanged(sku.id, sku.product_id, sku.price, sku.price + 1, "USD") in events
    priced = await handlers.price_skus([sku.id])
    assert priced[0].price == sku.price + 1
    with pytest.raises(NotFound):
        await handlers.price_skus(["sku_nope"])


async def test_seeding_again_never_duplicates(
    catalog_pg: PostgresDatabase, catalog: GeneratedCatalog, catalog_seed: int
) -> None:
    await seed_catalog(catalog_pg, len(catalog.products), catalog_seed, batch=100)
    row = await catalog_pg.fetchrow(
        "SELECT (SELECT count(*) FROM catalog.products), (SELECT count(*) FROM catalog.skus)"
    )
    assert row is not None and (row[0], row[1]) == (len(catalog.products), len(catalog.skus))


async def test_documents_go_through_redis_and_are_invalidated(
    catalog_pg: PostgresDatabase, catalog_redis: RedisCache, catalog: GeneratedCatalog
) -> None:
    metrics = Metrics()
    handlers = CatalogHandlers(catalog_redis, metrics, CatalogSettings(), CatalogRepository(catalog_pg))
    sku = catalog.skus[7]
    first = await handlers.product_document(sku.product_id)
    second = await handlers.product_document(sku.product_id)
    assert first == second
    listing = await handlers.product_page_document(ProductQuery(limit=3))
    assert listing == await handlers.product_page_document(ProductQuery(limit=3))
    sample = metrics.registry.get_sample_value
    assert sample("peakshop_cache_lookups_total", {"cache": "catalog", "result": "hit"}) == 2.0
    # Another replica with its own handlers reads the same entries.
    replica = CatalogHandlers(catalog_redis, Metrics(), CatalogSettings(), CatalogRepository(catalog_pg))
    assert await replica.product_document(sku.product_id) == first
    await handlers.change_price(sku.id, sku.price + 2)
    changed = await replica.product_document(sku.product_id)
    assert changed.etag != first.etag
    assert msgspec.json.decode(changed.body, type=Product).skus
