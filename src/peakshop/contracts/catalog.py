"""What the catalog answers. Prices are integer minor units (cents) with an ISO 4217 currency."""

from __future__ import annotations

import msgspec


class Sku(msgspec.Struct, frozen=True):
    id: str
    code: str
    product_id: str
    attributes: dict[str, str]
    price: int
    currency: str


class Product(msgspec.Struct, frozen=True):
    id: str
    slug: str
    name: str
    description: str
    category_id: str
    category: str
    price_from: int
    price_to: int
    currency: str
    skus: list[Sku]


class ProductSummary(msgspec.Struct, frozen=True):
    id: str
    slug: str
    name: str
    category_id: str
    price_from: int
    currency: str


class ProductPage(msgspec.Struct, frozen=True):
    items: list[ProductSummary]
    next_cursor: str | None


class Category(msgspec.Struct, frozen=True):
    id: str
    slug: str
    name: str
    parent_id: str | None
    product_count: int


class SkuPrice(msgspec.Struct, frozen=True):
    """The price of one SKU right now, as carts and orders must use it (never the client's)."""

    sku_id: str
    product_id: str
    name: str
    price: int
    currency: str


class ProductQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    q: str | None = None
    category: str | None = None
    limit: int = 20
    cursor: str | None = None


class PriceChanged(msgspec.Struct, frozen=True):
    sku_id: str
    product_id: str
    old_price: int
    new_price: int
    currency: str


TOPIC_PRICE_CHANGED = "catalog.price_changed"
