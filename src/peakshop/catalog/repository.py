"""The catalog's SQL, written once for PostgreSQL and SQLite through the database port.

Search is where the engines differ: SQLite reads an FTS5 table kept in step by triggers, PostgreSQL a
generated `tsvector` column behind a GIN index. Both are asked the same question (every term as a word
prefix, no stemming) and rank the same way (name matches first, then by id), so a topology never
changes an answer; the keyset cursor is (score, id) on both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from peakshop.catalog.domain import (
    BrowseKey,
    CategoryRecord,
    ProductRecord,
    SearchKey,
    SkuRecord,
    fts5_query,
    sku_display_name,
    tsquery_text,
)
from peakshop.contracts.catalog import Category, PriceChanged, Product, ProductSummary, Sku, SkuPrice
from peakshop.platform.db import Database, Executor, Row

S = "catalog"

_PRICE_OF = (
    f"(SELECT min(s.price) FROM {S}.skus s WHERE s.product_id = p.id) AS price_from, "
    f"(SELECT min(s.currency) FROM {S}.skus s WHERE s.product_id = p.id) AS currency"
)
_SUMMARY = f"p.id, p.slug, p.name, p.category_id, {_PRICE_OF}"
# A category filter takes in the category and its children (the tree has two levels).
_IN_CATEGORY = f"p.category_id IN (SELECT c.id FROM {S}.categories c WHERE c.id = $1 OR c.parent_id = $1)"


def _browse_sql(*, category: bool, after: bool) -> str:
    where: list[str] = []
    n = 1
    if category:
        where.append(_IN_CATEGORY)
        n = 2
    if after:
        where.append(f"(p.name, p.id) > (${n}, ${n + 1})")
        n += 2
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    return f"SELECT {_SUMMARY} FROM {S}.products p {clause}ORDER BY p.name, p.id LIMIT ${n}"


def _search_sql(dialect: str, *, category: bool, after: bool) -> str:
    # $1 matches anywhere, $2 only in the name (the better tier); the category, if any, is $3.
    n = 3
    outer: list[str] = []
    inner = ""
    if category:
        inner = " AND " + _IN_CATEGORY.replace("$1", "$3")
        n = 4
    if after:
        outer.append(f"(m.score, m.id) > (${n}, ${n + 1})")
        n += 2
    outer_clause = f"WHERE {' AND '.join(outer)} " if outer else ""
    if dialect == "postgresql":
        matches = (
            f"SELECT {_SUMMARY}, CASE WHEN p.search @@ to_tsquery('simple', $2) THEN 0 ELSE 1 END AS score "
            f"FROM {S}.products p WHERE p.search @@ to_tsquery('simple', $1){inner}"
        )
    else:
        matches = (
            f"SELECT {_SUMMARY}, CASE WHEN p.seq IN "
            f"(SELECT rowid FROM {S}.products_fts WHERE products_fts MATCH $2) THEN 0 ELSE 1 END AS score "
            f"FROM {S}.products p WHERE p.seq IN "
            f"(SELECT rowid FROM {S}.products_fts WHERE products_fts MATCH $1){inner}"
        )
    return (
        f"SELECT m.id, m.slug, m.name, m.category_id, m.price_from, m.currency, m.score "
        f"FROM ({matches}) m {outer_clause}ORDER BY m.score, m.id LIMIT ${n}"
    )


def _summary(row: Row) -> ProductSummary:
    return ProductSummary(
        id=row[0],
        slug=row[1],
        name=row[2],
        category_id=row[3],
        price_from=int(row[4] or 0),
        currency=row[5] or "USD",
    )


class CatalogRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        postgres = db.dialect == "postgresql"
        variants = [(c, a) for c in (False, True) for a in (False, True)]
        self._browse = {(c, a): _browse_sql(category=c, after=a) for c, a in variants}
        self._search = {(c, a): _search_sql(db.dialect, category=c, after=a) for c, a in variants}
        self._search_text: Callable[..., str] = tsquery_text if postgres else fts5_query
        # A list parameter: an array on PostgreSQL, a JSON array read by json_each on SQLite.
        self._id_list = "SELECT unnest($1::text[])" if postgres else "SELECT value FROM json_each($1)"
        self._ids: Callable[[list[str]], Any] = list if postgres else json.dumps
        self._lock = " FOR UPDATE OF s" if postgres else ""

    # --- reads --------------------------------------------------------------------------------------

    async def get_product(self, product_id: str) -> Product | None:
        row = await self.db.fetchrow(
            f"SELECT p.id, p.slug, p.name, p.description, p.category_id, c.name "
            f"FROM {S}.products p JOIN {S}.categories c ON c.id = p.category_id WHERE p.id = $1",
            product_id,
        )
        if row is None:
            return None
        sku_rows = await self.db.fetch(
            f"SELECT id, code, product_id, attributes, price, currency FROM {S}.skus "
            f"WHERE product_id = $1 ORDER BY price, id",
            product_id,
        )
        skus = [Sku(r[0], r[1], r[2], json.loads(r[3]), int(r[4]), r[5]) for r in sku_rows]
        prices = [s.price for s in skus]
        return Product(
            id=row[0],
            slug=row[1],
            name=row[2],
            description=row[3],
            category_id=row[4],
            category=row[5],
            price_from=min(prices, default=0),
            price_to=max(prices, default=0),
            currency=skus[0].currency if skus else "USD",
            skus=skus,
        )

    async def browse(
        self, category_id: str | None, after: BrowseKey | None, limit: int
    ) -> list[tuple[ProductSummary, BrowseKey]]:
        args: list[Any] = []
        if category_id is not None:
            args.append(category_id)
        if after is not None:
            args += [after.name, after.id]
        args.append(limit)
        rows = await self.db.fetch(self._browse[category_id is not None, after is not None], *args)
        return [(_summary(r), BrowseKey(r[2], r[0])) for r in rows]

    async def search(
        self, terms: list[str], category_id: str | None, after: SearchKey | None, limit: int
    ) -> list[tuple[ProductSummary, SearchKey]]:
        args: list[Any] = [self._search_text(terms), self._search_text(terms, name_only=True)]
        if category_id is not None:
            args.append(category_id)
        if after is not None:
            args += [after.score, after.id]
        args.append(limit)
        rows = await self.db.fetch(self._search[category_id is not None, after is not None], *args)
        return [(_summary(r), SearchKey(float(r[6]), r[0])) for r in rows]

    async def find_category(self, ref: str) -> str | None:
        """The id of the category whose id or slug is `ref`."""
        row = await self.db.fetchrow(f"SELECT id FROM {S}.categories WHERE id = $1 OR slug = $1", ref)
        return None if row is None else str(row[0])

    async def categories(self) -> list[Category]:
        rows = await self.db.fetch(f"SELECT id, slug, name, parent_id FROM {S}.categories")
        counts = {
            r[0]: int(r[1])
            for r in await self.db.fetch(
                f"SELECT category_id, count(*) FROM {S}.products GROUP BY category_id"
            )
        }
        totals = dict(counts)
        for r in rows:
            if r[3] is not None:
                totals[r[3]] = totals.get(r[3], 0) + counts.get(r[0], 0)
        # Tree order: each top-level category, then its children, both by name.
        names = {r[0]: r[2] for r in rows}
        ordered = sorted(
            rows,
            key=lambda r: (names.get(r[3] or r[0], ""), r[3] or r[0], r[3] is not None, r[2], r[0]),
        )
        return [Category(r[0], r[1], r[2], r[3], totals.get(r[0], 0)) for r in ordered]

    async def sku_prices(self, sku_ids: Sequence[str]) -> dict[str, SkuPrice]:
        rows = await self.db.fetch(
            f"SELECT s.id, s.product_id, p.name, s.attributes, s.price, s.currency "
            f"FROM {S}.skus s JOIN {S}.products p ON p.id = s.product_id "
            f"WHERE s.id IN ({self._id_list})",
            self._ids(list(sku_ids)),
        )
        return {
            r[0]: SkuPrice(r[0], r[1], sku_display_name(r[2], json.loads(r[3])), int(r[4]), r[5])
            for r in rows
        }

    # --- writes -------------------------------------------------------------------------------------

    async def change_price(
        self, tx: Executor, sku_id: str, new_price: int
    ) -> tuple[SkuPrice, PriceChanged] | None:
        """Set the price (row locked on PostgreSQL); `None` for an unknown SKU."""
        row = await tx.fetchrow(
            f"SELECT s.id, s.product_id, p.name, s.attributes, s.price, s.currency "
            f"FROM {S}.skus s JOIN {S}.products p ON p.id = s.product_id WHERE s.id = $1{self._lock}",
            sku_id,
        )
        if row is None:
            return None
        old_price = int(row[4])
        if old_price != new_price:
            await tx.execute(f"UPDATE {S}.skus SET price = $2 WHERE id = $1", sku_id, new_price)
        price = SkuPrice(row[0], row[1], sku_display_name(row[2], json.loads(row[3])), new_price, row[5])
        return price, PriceChanged(row[0], row[1], old_price, new_price, row[5])

    async def upsert_categories(self, tx: Executor, categories: Sequence[CategoryRecord]) -> None:
        # Parents first, so that a child's parent exists when the foreign key is checked.
        ordered = sorted(categories, key=lambda c: c.parent_id is not None)
        await tx.executemany(
            f"INSERT INTO {S}.categories (id, slug, name, parent_id) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name = excluded.name, "
            "parent_id = excluded.parent_id",
            [(c.id, c.slug, c.name, c.parent_id) for c in ordered],
        )

    async def upsert_products(self, tx: Executor, products: Sequence[ProductRecord]) -> None:
        await tx.executemany(
            f"INSERT INTO {S}.products (id, slug, name, description, category_id, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name = excluded.name, "
            "description = excluded.description, category_id = excluded.category_id, "
            "created_at = excluded.created_at",
            [(p.id, p.slug, p.name, p.description, p.category_id, p.created_at) for p in products],
        )

    async def upsert_skus(self, tx: Executor, skus: Sequence[SkuRecord]) -> None:
        await tx.executemany(
            f"INSERT INTO {S}.skus (id, code, product_id, attributes, price, currency) "
            "VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (id) DO UPDATE SET code = excluded.code, product_id = excluded.product_id, "
            "attributes = excluded.attributes, price = excluded.price, currency = excluded.currency",
            [
                (s.id, s.code, s.product_id, json.dumps(s.attributes, sort_keys=True), s.price, s.currency)
                for s in skus
            ],
        )

    async def import_catalog(
        self,
        categories: Sequence[CategoryRecord],
        products: Sequence[ProductRecord],
        skus: Sequence[SkuRecord],
        *,
        batch: int = 1_000,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Upsert everything, one transaction per batch of products with their SKUs (re-runs replace)."""
        async with self.db.transaction() as tx:
            await self.upsert_categories(tx, categories)
        skus_of: dict[str, list[SkuRecord]] = {}
        for sku in skus:
            skus_of.setdefault(sku.product_id, []).append(sku)
        total = len(products)
        for start in range(0, total, batch):
            chunk = products[start : start + batch]
            async with self.db.transaction() as tx:
                await self.upsert_products(tx, chunk)
                await self.upsert_skus(tx, [s for p in chunk for s in skus_of.get(p.id, ())])
            if progress is not None:
                progress(min(start + batch, total), total)
