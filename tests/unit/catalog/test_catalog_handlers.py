import msgspec
import pytest

from peakshop.catalog.domain import InvalidCursor
from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.repository import CatalogRepository
from peakshop.catalog.seed import GeneratedCatalog, seed_catalog
from peakshop.contracts.catalog import (
    TOPIC_PRICE_CHANGED,
    Category,
    PriceChanged,
    Product,
    ProductPage,
    ProductQuery,
)
from peakshop.platform.db import SqliteDatabase
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import InvalidInput, NotFound


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


async def test_browsing_walks_every_product_exactly_once_in_name_order(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    ids = await walk(catalog_handlers, limit=7)
    assert sorted(ids) == sorted(p.id for p in catalog.products)
    expected = [p.id for p in sorted(catalog.products, key=lambda p: (p.name.encode(), p.id))]
    assert ids == expected


async def test_a_page_carries_the_lowest_sku_price(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    first = (await page(catalog_handlers, limit=5)).items[0]
    prices = [s.price for s in catalog.skus if s.product_id == first.id]
    assert first.price_from == min(prices)
    assert first.currency == "USD"


@pytest.mark.parametrize("limit", [0, 101, -1])
async def test_a_limit_out_of_bounds_is_refused_naming_limit(
    catalog_handlers: CatalogHandlers, limit: int
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await page(catalog_handlers, limit=limit)
    assert refused.value.status == 400
    assert refused.value.to_dict()["field"] == "limit"


async def test_limits_at_the_bounds_are_served(catalog_handlers: CatalogHandlers) -> None:
    assert len((await page(catalog_handlers, limit=1)).items) == 1
    assert len((await page(catalog_handlers, limit=100)).items) == 100


async def test_a_category_filter_by_slug_or_id_gives_the_same_products(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    by_slug = await walk(catalog_handlers, category="sweaters", limit=9)
    by_id = await walk(catalog_handlers, category="c_sweaters", limit=9)
    expected = {p.id for p in catalog.products if p.category_id == "c_sweaters"}
    assert by_slug == by_id
    assert set(by_slug) == expected and len(by_slug) == len(expected)


async def test_a_top_level_category_includes_its_children(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    ids = await walk(catalog_handlers, category="clothing", limit=50)
    children = {c.id for c in catalog.categories if c.parent_id == "c_clothing"}
    assert set(ids) == {p.id for p in catalog.products if p.category_id in children}


async def test_an_unknown_category_is_not_found(catalog_handlers: CatalogHandlers) -> None:
    with pytest.raises(NotFound) as missing:
        await page(catalog_handlers, category="no-such-thing")
    assert missing.value.status == 404


async def test_search_finds_a_product_by_the_words_of_its_name(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    product = catalog.products[17]
    brand, *_, noun = product.name.split()
    ids = await walk(catalog_handlers, q=f"{brand.lower()} {noun.upper()}", limit=3)
    assert product.id in ids
    assert len(ids) == len(set(ids))
    expected = {p.id for p in catalog.products if brand in p.name.split() and noun in p.name.split()}
    assert expected <= set(ids)


async def test_search_pages_walk_each_match_once(catalog_handlers: CatalogHandlers) -> None:
    everything = await walk(catalog_handlers, q="warranty", limit=100)
    paged = await walk(catalog_handlers, q="warranty", limit=4)
    assert paged == everything
    assert len(paged) == len(set(paged)) > 4


async def test_search_within_a_category(catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers) -> None:
    ids = await walk(catalog_handlers, q="the", category="c_laptops", limit=10)
    laptops = {p.id for p in catalog.products if p.category_id == "c_laptops"}
    assert ids and set(ids) <= laptops


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '""""',
        "laptop*",
        "* OR *",
        "NEAR(laptop oak)",
        "-laptop",
        "(((",
        ")",
        "name:laptop",
        "description : oak",
        "lap\x00top",
        "'; DROP TABLE catalog.products; --",
        "a AND OR NOT",
        "^laptop",
        "\u202e",
        "x" * 200,
    ],
)
async def test_hostile_search_strings_return_pages_not_errors(
    catalog_handlers: CatalogHandlers, q: str
) -> None:
    result = await page(catalog_handlers, q=q, limit=10)
    assert isinstance(result.items, list)


async def test_a_search_longer_than_200_characters_is_refused(catalog_handlers: CatalogHandlers) -> None:
    with pytest.raises(InvalidInput) as refused:
        await page(catalog_handlers, q="x" * 201)
    assert refused.value.to_dict()["field"] == "q"


async def test_a_forged_cursor_is_refused_naming_the_field(catalog_handlers: CatalogHandlers) -> None:
    for cursor in ("garbage", "AAAAAAAAAAAAAAAAAAAA", "%%%"):
        with pytest.raises(InvalidCursor) as refused:
            await page(catalog_handlers, cursor=cursor)
        assert refused.value.slug == "invalid-cursor"
        assert refused.value.to_dict()["field"] == "cursor"


async def test_a_cursor_cannot_be_reused_for_another_query(catalog_handlers: CatalogHandlers) -> None:
    cursor = (await page(catalog_handlers, limit=2)).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        await page(catalog_handlers, cursor=cursor, category="sweaters")
    with pytest.raises(InvalidCursor):
        await page(catalog_handlers, cursor=cursor, q="oak")


async def test_a_product_document_has_the_product_and_a_stable_etag(
    catalog_handlers: CatalogHandlers,
) -> None:
    first = await catalog_handlers.product_document("p_000003")
    again = await catalog_handlers.product_document("p_000003")
    assert first == again
    product = msgspec.json.decode(first.body, type=Product)
    assert product.id == "p_000003"
    assert [s.id for s in product.skus] and product.price_from <= product.price_to
    # Rebuilt from the database, the same product gets the same tag.
    await catalog_handlers.invalidate(["p_000003"])
    assert (await catalog_handlers.product_document("p_000003")).etag == first.etag


async def test_an_unknown_product_is_not_found(catalog_handlers: CatalogHandlers) -> None:
    for product_id in ("p_999999", "x" * 500, "'; --"):
        with pytest.raises(NotFound):
            await catalog_handlers.product_document(product_id)


async def test_cache_lookups_are_counted(catalog_handlers: CatalogHandlers, catalog_metrics: Metrics) -> None:
    await catalog_handlers.product_document("p_000001")
    await catalog_handlers.product_document("p_000001")
    await catalog_handlers.product_document("p_000001")
    hits = catalog_metrics.registry.get_sample_value(
        "peakshop_cache_lookups_total", {"cache": "catalog", "result": "hit"}
    )
    misses = catalog_metrics.registry.get_sample_value(
        "peakshop_cache_lookups_total", {"cache": "catalog", "result": "miss"}
    )
    assert (hits, misses) == (2.0, 1.0)


async def test_a_price_change_changes_the_etag_and_the_listing(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    sku = catalog.skus[0]
    category_id = next(p.category_id for p in catalog.products if p.id == sku.product_id)
    before = await catalog_handlers.product_document(sku.product_id)
    await page(catalog_handlers, category=category_id, limit=100)
    categories_before = await catalog_handlers.categories_document()
    changed = await catalog_handlers.change_price(sku.id, 199)
    assert changed.price == 199
    after = await catalog_handlers.product_document(sku.product_id)
    assert after.etag != before.etag
    assert msgspec.json.decode(after.body, type=Product).price_from == 199
    listed = (await page(catalog_handlers, category=category_id, limit=100)).items
    assert next(s for s in listed if s.id == sku.product_id).price_from == 199
    # Category counts did not change, so neither does the tree's body or tag.
    assert (await catalog_handlers.categories_document()).etag == categories_before.etag


async def test_a_price_change_writes_its_event_in_the_same_transaction(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers, catalog_db: SqliteDatabase
) -> None:
    sku = catalog.skus[1]
    await catalog_handlers.change_price(sku.id, sku.price + 100)
    rows = await catalog_db.fetch("SELECT topic, payload FROM catalog.outbox")
    assert len(rows) == 1
    assert rows[0][0] == TOPIC_PRICE_CHANGED
    event = msgspec.json.decode(rows[0][1], type=PriceChanged)
    assert event == PriceChanged(sku.id, sku.product_id, sku.price, sku.price + 100, "USD")
    # Setting the same price again changes nothing and tells no one.
    await catalog_handlers.change_price(sku.id, sku.price + 100)
    assert len(await catalog_db.fetch("SELECT id FROM catalog.outbox")) == 1


async def test_a_failed_price_change_leaves_no_trace(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers, catalog_db: SqliteDatabase
) -> None:
    with pytest.raises(NotFound):
        await catalog_handlers.change_price("sku_nope", 500)
    with pytest.raises(InvalidInput):
        await catalog_handlers.change_price(catalog.skus[0].id, 0)
    assert await catalog_db.fetch("SELECT id FROM catalog.outbox") == []


async def test_skus_are_priced_from_the_database_in_the_order_asked(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    wanted = [catalog.skus[5].id, catalog.skus[2].id, catalog.skus[5].id]
    prices = await catalog_handlers.price_skus(wanted)
    assert [p.sku_id for p in prices] == wanted
    assert prices[1].price == catalog.skus[2].price
    assert prices[1].name.startswith(
        next(p.name for p in catalog.products if p.id == catalog.skus[2].product_id)
    )


async def test_pricing_an_unknown_sku_names_it(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    with pytest.raises(NotFound) as missing:
        await catalog_handlers.price_skus([catalog.skus[0].id, "sku_missing"])
    assert missing.value.to_dict()["sku_ids"] == ["sku_missing"]
    assert "sku_missing" in missing.value.detail


async def test_the_category_tree_counts_products_of_children_in_parents(
    catalog: GeneratedCatalog, catalog_handlers: CatalogHandlers
) -> None:
    tree = msgspec.json.decode((await catalog_handlers.categories_document()).body, type=list[Category])
    assert len(tree) == 25
    top = [c for c in tree if c.parent_id is None]
    assert sum(c.product_count for c in top) == len(catalog.products)
    for parent in top:
        assert parent.product_count == sum(c.product_count for c in tree if c.parent_id == parent.id)


async def test_seeding_again_replaces_and_never_duplicates(
    catalog: GeneratedCatalog, catalog_db: SqliteDatabase, catalog_seed: int
) -> None:
    await seed_catalog(catalog_db, len(catalog.products), catalog_seed, batch=50)
    counts = [
        (await catalog_db.fetchrow(f"SELECT count(*) FROM catalog.{table}"))[0]  # type: ignore[index]
        for table in ("categories", "products", "skus")
    ]
    assert counts == [25, len(catalog.products), len(catalog.skus)]
    fts = await catalog_db.fetchrow(
        "SELECT count(*) FROM catalog.products_fts WHERE products_fts MATCH 'warranty'"
    )
    assert fts is not None and fts[0] > 0
    repository = CatalogRepository(catalog_db)
    assert len(await repository.search(["warranty"], None, None, 1000)) == fts[0]


async def test_the_catalog_is_unavailable_until_started(catalog_metrics: Metrics) -> None:
    from peakshop.catalog.settings import CatalogSettings
    from peakshop.platform.cache import MemoryCache
    from peakshop.platform.problems import Unavailable

    handlers = CatalogHandlers(MemoryCache(), catalog_metrics, CatalogSettings())
    with pytest.raises(Unavailable):
        await handlers.product_document("p_000001")
