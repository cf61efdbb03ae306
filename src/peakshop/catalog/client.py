"""How other services reach the catalog: in-process, or over HTTP with the same contract types.

Both clients return the same documents (bytes and ETag) and raise the same `Problem` for the same
mistake, so callers and the contract suite cannot tell them apart.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

import msgspec

from peakshop.catalog.commands import ChangePrice, PriceSkus
from peakshop.catalog.handlers import CatalogHandlers
from peakshop.contracts.catalog import Product, ProductQuery, SkuPrice
from peakshop.contracts.common import Document
from peakshop.platform.http_client import ServiceHttpClient, service_client

_BASE = "/internal/catalog"


class CatalogClient(Protocol):
    async def product_document(self, product_id: str) -> Document: ...
    async def product_page_document(self, query: ProductQuery) -> Document: ...
    async def categories_document(self) -> Document: ...
    async def get_product(self, product_id: str) -> Product: ...
    async def price_skus(self, sku_ids: list[str]) -> list[SkuPrice]: ...
    async def change_price(self, sku_id: str, new_price: int) -> SkuPrice: ...


class HasCatalogHandlers(Protocol):
    handlers: CatalogHandlers


class LocalCatalogClient:
    """The catalog in this process: calls its use cases directly."""

    def __init__(self, catalog: CatalogHandlers | HasCatalogHandlers) -> None:
        # Accepts the hosted `CatalogService` (anything with `.handlers`) or its handlers directly.
        handlers = catalog if isinstance(catalog, CatalogHandlers) else catalog.handlers
        self._handlers = handlers
        # Bound once: the document paths are the hottest calls another service makes.
        self.product_document = handlers.product_document
        self.product_page_document = handlers.product_page_document
        self.categories_document = handlers.categories_document

    async def get_product(self, product_id: str) -> Product:
        return await self._handlers.get_product(product_id)

    async def price_skus(self, sku_ids: list[str]) -> list[SkuPrice]:
        return await self._handlers.price_skus(sku_ids)

    async def change_price(self, sku_id: str, new_price: int) -> SkuPrice:
        return await self._handlers.change_price(sku_id, new_price)


def _path_segment(value: str) -> str:
    return quote(value, safe="")


class HttpCatalogClient:
    """The catalog in another process, through the shared pooled HTTP client."""

    def __init__(self, http: ServiceHttpClient | str, timeout: float = 10.0) -> None:
        self._http = service_client("catalog", http, timeout)

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def _document(self, path: str, params: dict[str, str] | None = None) -> Document:
        # A document keeps the exact bytes and ETag the catalog sent: no decoding on the way through.
        response = await self._http.raw("GET", path, params=params)
        return Document(response.body, response.headers.get("ETag", ""))

    async def product_document(self, product_id: str) -> Document:
        return await self._document(f"{_BASE}/products/{_path_segment(product_id)}")

    async def product_page_document(self, query: ProductQuery) -> Document:
        params = {"limit": str(query.limit)}
        if query.q is not None:
            params["q"] = query.q
        if query.category is not None:
            params["category"] = query.category
        if query.cursor is not None:
            params["cursor"] = query.cursor
        return await self._document(f"{_BASE}/products", params)

    async def categories_document(self) -> Document:
        return await self._document(f"{_BASE}/categories")

    async def get_product(self, product_id: str) -> Product:
        return msgspec.json.decode((await self.product_document(product_id)).body, type=Product)

    async def price_skus(self, sku_ids: list[str]) -> list[SkuPrice]:
        return await self._http.call("POST", f"{_BASE}/prices", list[SkuPrice], body=PriceSkus(sku_ids))

    async def change_price(self, sku_id: str, new_price: int) -> SkuPrice:
        path = f"{_BASE}/skus/{_path_segment(sku_id)}/price"
        return await self._http.call("PUT", path, SkuPrice, body=ChangePrice(new_price))
