"""The catalog's internal HTTP API (`/internal/catalog/...`), what `HttpCatalogClient` talks to.

Document endpoints answer with the cached bytes as they are: a small ASGI response with precomputed
headers, no re-encoding, and `304 Not Modified` when the caller already holds the same ETag.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar import Router, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.types import Receive, Scope, Send

from peakshop.catalog.commands import ChangePrice, PriceSkus
from peakshop.catalog.domain import DEFAULT_LIMIT
from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.settings import CatalogSettings
from peakshop.contracts.catalog import ProductQuery, SkuPrice
from peakshop.contracts.common import Document

_CONTENT_TYPE = (b"content-type", b"application/json")


class DocumentResponse:
    """`200` with the document's bytes, or `304` when `If-None-Match` names its ETag."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 weak comparison, as `If-None-Match` requires: `*`, or any listed tag equal to ours."""
    if if_none_match == etag:
        return True
    for candidate in if_none_match.split(b","):
        tag = candidate.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False


def document_responder(cache_control: bytes) -> Callable[[Document, Scope], DocumentResponse]:
    """The function that turns a document into a response for one request's headers."""
    cache_header = (b"cache-control", cache_control)

    def respond(document: Document, scope: Scope) -> DocumentResponse:
        etag = document.etag.encode("ascii")
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if etag_matches(value, etag):
                    return DocumentResponse(304, [(b"etag", etag), cache_header], b"")
                break
        body = document.body
        return DocumentResponse(
            200,
            [_CONTENT_TYPE, (b"etag", etag), cache_header, (b"content-length", str(len(body)).encode())],
            body,
        )

    return respond


def create_router(handlers: CatalogHandlers, settings: CatalogSettings) -> Router:
    respond = document_responder(f"public, max-age={settings.cache_ttl}".encode("ascii"))
    product_document = handlers.product_document

    @get("/products/{product_id:str}")
    async def product(product_id: FromPath[str], scope: Scope) -> DocumentResponse:
        return respond(await product_document(product_id), scope)

    @get("/products")
    async def products(
        scope: Scope,
        q: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        limit: FromQuery[int] = DEFAULT_LIMIT,
        cursor: FromQuery[str | None] = None,
    ) -> DocumentResponse:
        query = ProductQuery(q=q, category=category, limit=limit, cursor=cursor)
        return respond(await handlers.product_page_document(query), scope)

    @get("/categories")
    async def categories(scope: Scope) -> DocumentResponse:
        return respond(await handlers.categories_document(), scope)

    @post("/prices", status_code=200)
    async def prices(data: JSONBody[PriceSkus]) -> list[SkuPrice]:
        return await handlers.price_skus(data.sku_ids)

    @put("/skus/{sku_id:str}/price")
    async def change_price(sku_id: FromPath[str], data: JSONBody[ChangePrice]) -> SkuPrice:
        return await handlers.change_price(sku_id, data.price)

    return Router(
        path="/internal/catalog",
        route_handlers=[product, products, categories, prices, change_price],
        opt={"service": "catalog"},
        include_in_schema=False,
    )
