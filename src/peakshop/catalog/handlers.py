"""The catalog's use cases: cached read documents, server-side pricing, price changes and imports.

Read paths return a `Document` (encoded JSON and its ETag) and keep it in the cache as one value: the
34-byte ETag followed by the body, so a hit is one lookup and a slice. Product documents are keyed by
id alone, and a price change deletes its key; listings and the category tree include a generation
that every change bumps, so a change reaches them at once without finding their keys. Whatever a race
leaves stale (a load that started before a change and stored after it) expires within the TTL; money
never depends on it, because `price_skus` always reads the database.

The cache being away (`CacheUnavailable`) must not take the catalog down with it during a sale, nor
send every read to the database: each process then keeps the documents it builds in a bounded
standby of its own memory, for the same TTL, and serves them from there until the cache is back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import structlog

from peakshop.catalog.domain import (
    ETAG_LENGTH,
    MAX_ID_LENGTH,
    MAX_SKUS_PER_PRICE_REQUEST,
    BrowseKey,
    CategoryRecord,
    ProductRecord,
    SearchKey,
    SkuRecord,
    cursor_context,
    decode_browse_cursor,
    decode_search_cursor,
    encode_cursor,
    entity_tag,
    search_terms,
    validate_limit,
    validate_price,
    validate_query,
)
from peakshop.catalog.repository import CatalogRepository
from peakshop.catalog.settings import CatalogSettings
from peakshop.contracts.catalog import (
    TOPIC_PRICE_CHANGED,
    Product,
    ProductPage,
    ProductQuery,
    ProductSummary,
    SkuPrice,
)
from peakshop.contracts.common import Document
from peakshop.platform.cache import Cache, CacheUnavailable, MemoryCache
from peakshop.platform.metrics import Metrics
from peakshop.platform.outbox import add_to_outbox
from peakshop.platform.problems import InvalidInput, NotFound, Unavailable

log = structlog.get_logger("peakshop.catalog")

# The document format's version: bump it when the JSON shape changes, and old entries are never read.
_PREFIX = "catalog:v1:"
_GENERATION_KEY = _PREFIX + "generation"
_GENERATION_TTL = 7 * 86_400.0
# Documents a process keeps for itself while the shared cache is away: a few thousand hot pages,
# tens of megabytes at most.
STANDBY_ENTRIES = 10_000


def _document_of(stored: bytes) -> Document:
    return Document(stored[ETAG_LENGTH:], stored[:ETAG_LENGTH].decode("ascii"))


def _product_not_found(product_id: str) -> NotFound:
    return NotFound(f"There is no product {product_id!r}.", product_id=product_id)


class CatalogHandlers:
    """Built with the process's cache and metrics; the repository is bound when the service starts."""

    def __init__(
        self,
        cache: Cache,
        metrics: Metrics,
        settings: CatalogSettings,
        repository: CatalogRepository | None = None,
    ) -> None:
        self._cache = cache
        self._settings = settings
        self._ttl = float(settings.cache_ttl)
        self._hits = metrics.cache_lookups.labels("catalog", "hit")
        self._misses = metrics.cache_lookups.labels("catalog", "miss")
        self._errors = metrics.cache_lookups.labels("catalog", "error")
        self._standby = MemoryCache(max_entries=STANDBY_ENTRIES)
        self._encode = msgspec.json.Encoder().encode
        self._loading: dict[str, asyncio.Future[Document]] = {}
        self._repository = repository
        self._after_commit: Callable[[], None] = lambda: None
        self._product_prefix = _PREFIX + "product:"

    def bind(self, repository: CatalogRepository, after_commit: Callable[[], None] | None = None) -> None:
        """Attach the database; `after_commit` is told when events were committed (to wake the relay)."""
        self._repository = repository
        self._after_commit = after_commit or (lambda: None)

    def unbind(self) -> None:
        self._repository = None

    @property
    def repository(self) -> CatalogRepository:
        if self._repository is None:
            raise Unavailable("The catalog is not started.", service="catalog")
        return self._repository

    # --- cached documents ---------------------------------------------------------------------------

    async def product_document(self, product_id: str) -> Document:
        key = self._product_prefix + product_id
        return await self._document(key, lambda: self._product_body(product_id))

    async def product_page_document(self, query: ProductQuery) -> Document:
        limit = validate_limit(query.limit)
        q = validate_query(query.q)
        category = query.category or ""
        cursor = query.cursor or ""
        generation = await self._generation()
        # Lengths delimit the free-text parts, so no two different queries can share a key.
        key = (
            f"{_PREFIX}{generation}:page:{limit}:{len(category)}:{category}:{len(cursor)}:{cursor}:{q or ''}"
        )
        return await self._document(
            key,
            lambda: self._page_body(q, query.category, query.cursor, limit),
            cached=generation is not None,
        )

    async def categories_document(self) -> Document:
        generation = await self._generation()
        key = f"{_PREFIX}{generation}:categories"
        return await self._document(key, self._categories_body, cached=generation is not None)

    async def _generation(self) -> str | None:
        """The listings' generation; None when the cache cannot say (listings are then not cached)."""
        try:
            value = await self._cache.get(_GENERATION_KEY)
        except CacheUnavailable:
            self._errors.inc()
            return None
        return "0" if value is None else value.decode("ascii")

    async def _document(
        self, key: str, build: Callable[[], Awaitable[bytes]], cached: bool = True
    ) -> Document:
        """The document stored at `key`, or built and stored there (in the standby while the cache is away)."""
        if cached:
            try:
                stored = await self._cache.get(key)
            except CacheUnavailable:
                self._errors.inc()
                cached = False
            else:
                if stored is not None:
                    self._hits.inc()
                    return _document_of(stored)
                self._misses.inc()
        if not cached and (kept := await self._standby.get(key)) is not None:
            return _document_of(kept)
        return await self._load(key, build, store=cached)

    async def _load(self, key: str, build: Callable[[], Awaitable[bytes]], store: bool) -> Document:
        # One load per key at a time: when a popular entry expires under load, one request rebuilds it
        # and the others wait for that result instead of all querying the database. The same holds
        # while the cache is away, when every read is a load.
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._build_and_store(key, build, store))
            self._loading[key] = pending
            pending.add_done_callback(lambda _f: self._loading.pop(key, None))
        return await asyncio.shield(pending)

    async def _build_and_store(
        self, key: str, build: Callable[[], Awaitable[bytes]], store: bool
    ) -> Document:
        body = await build()
        etag = entity_tag(body)
        stored = etag.encode("ascii") + body
        if store:
            try:
                await self._cache.set(key, stored, self._ttl)
                return Document(body, etag)
            except CacheUnavailable:
                self._errors.inc()
        await self._standby.set(key, stored, self._ttl)
        return Document(body, etag)

    async def _product_body(self, product_id: str) -> bytes:
        if len(product_id) > MAX_ID_LENGTH:
            raise _product_not_found(product_id)
        product = await self.repository.get_product(product_id)
        if product is None:
            raise _product_not_found(product_id)
        return self._encode(product)

    async def _page_body(self, q: str | None, category: str | None, cursor: str | None, limit: int) -> bytes:
        return self._encode(await self.product_page(q, category, cursor, limit))

    async def _categories_body(self) -> bytes:
        return self._encode(await self.repository.categories())

    # --- uncached reads -----------------------------------------------------------------------------

    async def product_page(
        self, q: str | None, category: str | None, cursor: str | None, limit: int
    ) -> ProductPage:
        """One page of a browse (by name) or a search (by relevance), after `cursor`."""
        repository = self.repository
        category_id: str | None = None
        if category:
            category_id = await repository.find_category(category)
            if category_id is None:
                raise NotFound(f"There is no category {category!r}.", category=category)
        items: list[ProductSummary]
        last: BrowseKey | SearchKey | None
        if q is None:
            context = cursor_context("browse", category_id, None)
            after = decode_browse_cursor(cursor, context) if cursor else None
            browsed = await repository.browse(category_id, after, limit + 1)
            items = [summary for summary, _ in browsed[:limit]]
            last = browsed[limit - 1][1] if len(browsed) > limit else None
        else:
            terms = search_terms(q)
            context = cursor_context("search", category_id, terms)
            found_after = decode_search_cursor(cursor, context) if cursor else None
            found = await repository.search(terms, category_id, found_after, limit + 1) if terms else []
            items = [summary for summary, _ in found[:limit]]
            last = found[limit - 1][1] if len(found) > limit else None
        return ProductPage(items, encode_cursor(last, context) if last is not None else None)

    async def get_product(self, product_id: str) -> Product:
        return msgspec.json.decode((await self.product_document(product_id)).body, type=Product)

    async def price_skus(self, sku_ids: Sequence[str]) -> list[SkuPrice]:
        """Today's price of each SKU, in the order asked, read from the database (never the cache)."""
        if len(sku_ids) > MAX_SKUS_PER_PRICE_REQUEST:
            raise InvalidInput(
                f"at most {MAX_SKUS_PER_PRICE_REQUEST} SKUs can be priced at once", field="sku_ids"
            )
        wanted = [s for s in sku_ids if len(s) <= MAX_ID_LENGTH]
        prices = await self.repository.sku_prices(list(dict.fromkeys(wanted))) if wanted else {}
        missing = [s for s in sku_ids if s not in prices]
        if missing:
            raise NotFound(f"There is no SKU {missing[0]!r}.", sku_ids=missing)
        return [prices[s] for s in sku_ids]

    # --- writes -------------------------------------------------------------------------------------

    async def change_price(self, sku_id: str, new_price: int) -> SkuPrice:
        """Write the price and its `PriceChanged` event in one transaction, then drop cached copies."""
        validate_price(new_price)
        repository = self.repository
        async with repository.db.transaction() as tx:
            changed = await repository.change_price(tx, sku_id, new_price)
            if changed is None:
                raise NotFound(f"There is no SKU {sku_id!r}.", sku_ids=[sku_id])
            price, event = changed
            if event.old_price != event.new_price:
                await add_to_outbox(tx, repository.db.schema, TOPIC_PRICE_CHANGED, event)
        if event.old_price != event.new_price:
            self._after_commit()
            await self.invalidate([price.product_id])
        return price

    async def import_products(
        self,
        categories: Sequence[CategoryRecord],
        products: Sequence[ProductRecord],
        skus: Sequence[SkuRecord],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Bulk upsert (the seeder's path); cached documents of what changed are dropped after."""
        await self.repository.import_catalog(
            categories, products, skus, batch=self._settings.import_batch, progress=progress
        )
        await self.invalidate([p.id for p in products])

    async def invalidate(self, product_ids: Sequence[str]) -> None:
        """Forget these products' documents and every listing and category tree.

        The change is committed by then, so a cache that is away does not fail it: what the cache
        still holds of the old catalog expires within the TTL, and no price charged is read from it.
        """
        keys = [self._product_prefix + product_id for product_id in product_ids]
        await self._standby.close()  # whatever this process kept while the cache was away
        try:
            await self._cache.set(_GENERATION_KEY, uuid.uuid4().hex[:12].encode("ascii"), _GENERATION_TTL)
            for start in range(0, len(keys), 500):
                await self._cache.delete(*keys[start : start + 500])
        except CacheUnavailable:
            self._errors.inc()
            log.warning("catalog_cache_not_invalidated", products=len(keys), expires_within_seconds=self._ttl)
