"""The cart's internal HTTP API (`/internal/cart/...`), what `HttpCartClient` talks to.

The shopper's account travels in `x-peakshop-account-id`, set by the storefront after it has
authenticated the shopper's token with users; without it the caller is anonymous. Bodies are decoded
strictly from the raw bytes rather than by Litestar's lax conversion, which would turn `"2"` and
`2.0` into the integer 2: a quantity must be a JSON integer.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Router, delete, get, post, put
from litestar.params import HeaderParameter, PathParameter, RawBody

from peakshop.cart.domain import MAX_ACCOUNT_ID_LENGTH, MAX_CART_ID_LENGTH, decode_request
from peakshop.cart.handlers import CartHandlers
from peakshop.contracts.cart import AddItem, Cart, ChangeQuantity, MarkCheckedOut

PREFIX = "/internal/cart"
ACCOUNT_HEADER = "x-peakshop-account-id"

# Ids too long to be real are answered by the handlers (as not found), the same as in-process.
CartId = Annotated[str, PathParameter(min_length=1, max_length=4 * MAX_CART_ID_LENGTH)]
SkuIdPath = Annotated[str, PathParameter(min_length=1, max_length=256)]
OptionalAccount = Annotated[
    str | None, HeaderParameter(name=ACCOUNT_HEADER, max_length=MAX_ACCOUNT_ID_LENGTH, required=False)
]
Account = Annotated[str, HeaderParameter(name=ACCOUNT_HEADER, min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH)]


def create_router(handlers: CartHandlers) -> Router:
    @post("/items", status_code=200)
    async def add_to_new_or_account_cart(body: RawBody, account_id: OptionalAccount = None) -> Cart:
        return await handlers.add_item(None, account_id or None, decode_request(body, AddItem))

    @post("/carts/{cart_id:str}/items", status_code=200)
    async def add_item(cart_id: CartId, body: RawBody, account_id: OptionalAccount = None) -> Cart:
        return await handlers.add_item(cart_id, account_id or None, decode_request(body, AddItem))

    @get("/carts/{cart_id:str}")
    async def get_cart(cart_id: CartId, account_id: OptionalAccount = None) -> Cart:
        return await handlers.get_cart(cart_id, account_id or None)

    # `:path`, so that a SKU id with a slash in it still reaches the handler (and is not found there).
    @put("/carts/{cart_id:str}/lines/{sku_id:path}")
    async def change_quantity(
        cart_id: CartId, sku_id: SkuIdPath, body: RawBody, account_id: OptionalAccount = None
    ) -> Cart:
        change = decode_request(body, ChangeQuantity)
        return await handlers.change_quantity(cart_id, account_id or None, sku_id.lstrip("/"), change)

    @delete("/carts/{cart_id:str}/lines/{sku_id:path}", status_code=200)
    async def remove_line(cart_id: CartId, sku_id: SkuIdPath, account_id: OptionalAccount = None) -> Cart:
        return await handlers.remove_line(cart_id, account_id or None, sku_id.lstrip("/"))

    @post("/account-cart", status_code=200)
    async def account_cart(account_id: Account) -> Cart:
        return await handlers.account_cart(account_id)

    @post("/carts/{cart_id:str}/merge", status_code=200)
    async def merge(cart_id: CartId, account_id: Account) -> Cart:
        return await handlers.merge(cart_id, account_id)

    @get("/carts/{cart_id:str}/checkout-lines")
    async def checkout_lines(cart_id: CartId, account_id: OptionalAccount = None) -> Cart:
        return await handlers.checkout_lines(cart_id, account_id or None)

    @put("/carts/{cart_id:str}/checkout", status_code=204)
    async def mark_checked_out(cart_id: CartId, body: RawBody) -> None:
        await handlers.mark_checked_out(cart_id, decode_request(body, MarkCheckedOut).order_id)

    return Router(
        path=PREFIX,
        route_handlers=[
            add_to_new_or_account_cart,
            add_item,
            get_cart,
            change_quantity,
            remove_line,
            account_cart,
            merge,
            checkout_lines,
            mark_checked_out,
        ],
        opt={"service": "cart"},
        include_in_schema=False,
    )
