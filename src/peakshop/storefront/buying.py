"""Routes of the public API for buying: the cart, the checkout and the buyer's orders.

A cart is addressed by the `Cart-Id` header a client keeps (anonymous shoppers) or by the bearer
token (signed-in shoppers, whose anonymous cart is merged in at log-in). Bodies that carry quantities
are decoded strictly, so `"2"` or `2.0` is a 400 naming the field, not a quantity.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import JSONBody, Parameter, PathParameter
from litestar.status_codes import HTTP_201_CREATED

from peakshop.contracts.cart import AddItem, Cart, ChangeQuantity
from peakshop.contracts.orders import Order, OrderPage, PlaceOrder
from peakshop.platform.problems import NotFound, Problem
from peakshop.platform.web import strict_body
from peakshop.storefront.api import READ_PROBLEMS, WRITE_PROBLEMS, Cursor, _bearer, _problems
from peakshop.storefront.service import StorefrontService

CART_HEADER = "cart-id"
IDEMPOTENCY_HEADER = "idempotency-key"


class NewCart(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Lines to start a cart with; the answer's `id` is the cart id to keep."""

    items: Annotated[list[AddItem], msgspec.Meta(min_length=1, max_length=50)]


SkuRef = Annotated[str, PathParameter(min_length=1, max_length=100, description="SKU id.")]
OrderRef = Annotated[str, PathParameter(min_length=1, max_length=100, description="Order id.")]
CHECKOUT_PROBLEMS = _problems(400, 401, 402, 404, 409, 413, 415, 422, 428, 429, 502, 503)


def create_buying_router(shop: StorefrontService) -> Router:
    async def account_of(request: Request[Any, Any, State], *, required: bool) -> str | None:
        if not required and "authorization" not in request.headers:
            return None
        return (await shop.users.authenticate(_bearer(request))).id

    def cart_id_of(request: Request[Any, Any, State]) -> str | None:
        return request.headers.get(CART_HEADER) or None

    def cart_response(cart: Cart, status_code: int = 200) -> Response[Cart]:
        return Response(cart, status_code=status_code, headers={"Cart-Id": cart.id})

    async def current_cart(request: Request[Any, Any, State]) -> tuple[str | None, str | None]:
        """(cart id, account id) for this request; an anonymous cart is merged into the account's."""
        account = await account_of(request, required=False)
        cart_id = cart_id_of(request)
        if account is not None:
            cart = await (shop.cart.merge(cart_id, account) if cart_id else shop.cart.account_cart(account))
            return cart.id, account
        return cart_id, None

    @get("/cart", responses=_problems(401, 404, 503), summary="The shopper's cart")
    async def get_cart(request: Request[Any, Any, State]) -> Response[Cart]:
        cart_id, account = await current_cart(request)
        if cart_id is None:
            raise NotFound(
                "no cart yet: add an item with POST /api/cart/items, then send its `Cart-Id` header"
            )
        return cart_response(await shop.cart.get_cart(cart_id, account))

    @post("/cart", status_code=HTTP_201_CREATED, responses=WRITE_PROBLEMS, summary="Start a cart with lines")
    async def new_cart(request: Request[Any, Any, State], data: JSONBody[NewCart]) -> Response[Cart]:
        body = await strict_body(request, NewCart)
        cart_id, account = await current_cart(request)
        cart = None
        for item in body.items:
            cart = await shop.cart.add_item(cart_id, account, item)
            cart_id = cart.id
        assert cart is not None  # at least one item, by the contract
        return cart_response(cart, HTTP_201_CREATED)

    @post("/cart/items", status_code=200, responses=WRITE_PROBLEMS, summary="Add a SKU to the cart")
    async def add_item(request: Request[Any, Any, State], data: JSONBody[AddItem]) -> Response[Cart]:
        item = await strict_body(request, AddItem)
        cart_id, account = await current_cart(request)
        return cart_response(await shop.cart.add_item(cart_id, account, item))

    @patch("/cart/items/{sku_id:str}", responses=WRITE_PROBLEMS, summary="Change a line's quantity")
    async def change_quantity(
        request: Request[Any, Any, State], sku_id: SkuRef, data: JSONBody[ChangeQuantity]
    ) -> Response[Cart]:
        change = await strict_body(request, ChangeQuantity)
        cart_id, account = await current_cart(request)
        if cart_id is None:
            raise NotFound("no cart: send the `Cart-Id` header of your cart")
        return cart_response(await shop.cart.change_quantity(cart_id, account, sku_id, change))

    @delete("/cart/items/{sku_id:str}", status_code=200, responses=WRITE_PROBLEMS, summary="Remove a line")
    async def remove_line(request: Request[Any, Any, State], sku_id: SkuRef) -> Response[Cart]:
        cart_id, account = await current_cart(request)
        if cart_id is None:
            raise NotFound("no cart: send the `Cart-Id` header of your cart")
        return cart_response(await shop.cart.remove_line(cart_id, account, sku_id))

    @post("/checkout", status_code=HTTP_201_CREATED, responses=CHECKOUT_PROBLEMS, summary="Place an order")
    async def checkout(request: Request[Any, Any, State], data: JSONBody[PlaceOrder]) -> Order:
        """Turn a cart into an order. Send an `Idempotency-Key` header: a retry with the same key and
        body returns the same order and never charges twice."""
        account = await account_of(request, required=True)
        assert account is not None  # required=True raised otherwise
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if not key:
            raise Problem(
                "send an `Idempotency-Key` header (a fresh random value per order, reused on retries)",
                status=428,
                slug="idempotency-key-required",
                title="Idempotency key required",
            )
        order_request = await strict_body(request, PlaceOrder)
        async with shop.admission.slot():
            return await shop.orders.place_order(account, key, order_request)

    @get("/orders", responses=_problems(400, 401, 503), summary="The signed-in buyer's orders, newest first")
    async def orders(
        request: Request[Any, Any, State],
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        cursor: Cursor = None,
    ) -> OrderPage:
        account = await account_of(request, required=True)
        assert account is not None
        return await shop.orders.orders_of(account, limit, cursor)

    @get(
        "/orders/{order_id:str}",
        responses=READ_PROBLEMS | _problems(401),
        summary="One of the buyer's orders",
    )
    async def order(request: Request[Any, Any, State], order_id: OrderRef) -> Order:
        account = await account_of(request, required=True)
        assert account is not None
        return await shop.orders.order(account, order_id)

    return Router(
        path="/api",
        route_handlers=[get_cart, new_cart, add_item, change_quantity, remove_line, checkout, orders, order],
        opt={"service": "storefront"},
    )
