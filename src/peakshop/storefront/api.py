"""Routes of the public API under `/api`, documented at `/schema/openapi.json`.

Read paths pass the catalog's encoded documents through untouched (with their ETag), so a cached
product page costs one lookup and no JSON work here.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from peakshop.contracts.catalog import Category, Product, ProductPage, ProductQuery
from peakshop.contracts.common import Document
from peakshop.contracts.users import Account, Address, Credentials, NewAccount, NewAddress, Session
from peakshop.platform.problems import PROBLEM_CONTENT_TYPE, NotFound, Unauthorized
from peakshop.storefront.service import StorefrontService


class ProblemDetails(msgspec.Struct):
    """RFC 9457 problem details, as every 4xx and 5xx of this API is shaped."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def _problems(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_CONTENT_TYPE,
            description="Problem details (RFC 9457)",
            generate_examples=False,
        )
        for code in codes
    }


READ_PROBLEMS = _problems(400, 404, 503)
WRITE_PROBLEMS = _problems(400, 401, 409, 413, 415, 429, 503)

Limit = Annotated[int, Parameter(ge=1, le=100, description="Items per page (1-100).")]
SearchText = Annotated[str | None, Parameter(max_length=200, description="Words to search for.")]
CategoryRef = Annotated[str | None, Parameter(max_length=100, description="Category slug or id.")]
Cursor = Annotated[str | None, Parameter(max_length=512, description="`next_cursor` of the previous page.")]


def _document(request: Request[Any, Any, State], doc: Document, max_age: int) -> Response[Any]:
    headers = {"etag": doc.etag, "cache-control": f"public, max-age={max_age}"}
    if request.headers.get("if-none-match") == doc.etag:
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=doc.body, media_type="application/json", headers=headers)


def _bearer(request: Request[Any, Any, State]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send `Authorization: Bearer <token>` from POST /api/sessions")
    return token


def _client_ip(request: Request[Any, Any, State]) -> str:
    return request.client.host if request.client else "unknown"


def create_router(shop: StorefrontService) -> Router:
    max_age = shop.settings.max_age

    @get("/products", responses=READ_PROBLEMS, summary="List or search products")
    async def list_products(
        request: Request[Any, Any, State],
        q: SearchText = None,
        category: CategoryRef = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> Response[ProductPage]:
        doc = await shop.catalog.product_page_document(ProductQuery(q, category, limit, cursor))
        return _document(request, doc, max_age)

    @get("/search", responses=READ_PROBLEMS, summary="Search products by words")
    async def search(
        request: Request[Any, Any, State],
        q: Annotated[str, Parameter(min_length=1, max_length=200, description="Words to search for.")],
        category: CategoryRef = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> Response[ProductPage]:
        doc = await shop.catalog.product_page_document(ProductQuery(q, category, limit, cursor))
        return _document(request, doc, max_age)

    @get("/products/{product_id:str}", responses=READ_PROBLEMS, summary="One product with its SKUs")
    async def product_detail(
        request: Request[Any, Any, State],
        product_id: Annotated[str, PathParameter(max_length=100)],
    ) -> Response[Product]:
        doc = await shop.catalog.product_document(product_id)
        return _document(request, doc, max_age)

    @get("/categories", responses=READ_PROBLEMS, summary="All categories")
    async def categories(request: Request[Any, Any, State]) -> Response[list[Category]]:
        doc = await shop.catalog.categories_document()
        return _document(request, doc, max_age)

    @post("/accounts", status_code=HTTP_201_CREATED, responses=WRITE_PROBLEMS, summary="Register")
    async def register(data: JSONBody[NewAccount]) -> Account:
        return await shop.users.register(data)

    @post("/sessions", status_code=HTTP_201_CREATED, responses=WRITE_PROBLEMS, summary="Log in")
    async def log_in(request: Request[Any, Any, State], data: JSONBody[Credentials]) -> Session:
        """Log in; an anonymous cart named by the `Cart-Id` header joins the account's cart."""
        session = await shop.users.log_in(data, _client_ip(request))
        if cart_id := request.headers.get("cart-id"):
            with contextlib.suppress(NotFound):  # a cart that is gone is no reason to refuse a log-in
                await shop.cart.merge(cart_id, session.account.id)
        return session

    @delete("/sessions/current", status_code=HTTP_204_NO_CONTENT, responses=WRITE_PROBLEMS, summary="Log out")
    async def log_out(request: Request[Any, Any, State]) -> None:
        await shop.users.log_out(_bearer(request))

    @get("/me", responses=_problems(401, 503), summary="The signed-in account")
    async def me(request: Request[Any, Any, State]) -> Account:
        return await shop.users.me(_bearer(request))

    @get("/me/addresses", responses=_problems(401, 503), summary="The signed-in account's addresses")
    async def addresses(request: Request[Any, Any, State]) -> list[Address]:
        return await shop.users.addresses(_bearer(request))

    @post("/me/addresses", status_code=HTTP_201_CREATED, responses=WRITE_PROBLEMS, summary="Add an address")
    async def add_address(request: Request[Any, Any, State], data: JSONBody[NewAddress]) -> Address:
        return await shop.users.add_address(_bearer(request), data)

    return Router(
        path="/api",
        route_handlers=[
            list_products,
            search,
            product_detail,
            categories,
            register,
            log_in,
            log_out,
            me,
            addresses,
            add_address,
        ],
        opt={"service": "storefront"},
    )
