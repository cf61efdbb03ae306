"""How other services reach the cart: in-process, or over HTTP with the same contract types.

Both clients raise the same `Problem` for the same mistake, so callers and the contract suite cannot
tell them apart. `account_id` is the shopper the storefront authenticated, or None for anonymous.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

from peakshop.cart.api import ACCOUNT_HEADER, PREFIX
from peakshop.cart.domain import cart_not_found, plausible_cart_id
from peakshop.cart.handlers import CartHandlers
from peakshop.contracts.cart import AddItem, Cart, ChangeQuantity, MarkCheckedOut
from peakshop.platform.http_client import ServiceHttpClient, service_client


class CartClient(Protocol):
    async def add_item(self, cart_id: str | None, account_id: str | None, item: AddItem) -> Cart:
        """Add to `cart_id`; with None (or a closed cart) to the account's cart, or a new anonymous one."""
        ...

    async def get_cart(self, cart_id: str, account_id: str | None) -> Cart: ...
    async def account_cart(self, account_id: str) -> Cart: ...
    async def change_quantity(
        self, cart_id: str, account_id: str | None, sku_id: str, change: ChangeQuantity
    ) -> Cart: ...
    async def remove_line(self, cart_id: str, account_id: str | None, sku_id: str) -> Cart: ...
    async def merge(self, anonymous_cart_id: str, account_id: str) -> Cart:
        """At log-in: move the anonymous cart's lines into the account's cart (idempotent)."""
        ...

    async def checkout_lines(self, cart_id: str, account_id: str | None) -> Cart: ...
    async def mark_checked_out(self, cart_id: str, order_id: str) -> None: ...


class HasCartHandlers(Protocol):
    handlers: CartHandlers


class LocalCartClient:
    """The cart in this process: calls its use cases directly."""

    def __init__(self, cart: CartHandlers | HasCartHandlers) -> None:
        # Accepts the hosted `CartService` (anything with `.handlers`) or its handlers directly.
        handlers = cart if isinstance(cart, CartHandlers) else cart.handlers
        self.add_item = handlers.add_item
        self.get_cart = handlers.get_cart
        self.account_cart = handlers.account_cart
        self.change_quantity = handlers.change_quantity
        self.remove_line = handlers.remove_line
        self.merge = handlers.merge
        self.checkout_lines = handlers.checkout_lines
        self.mark_checked_out = handlers.mark_checked_out


def _segment(value: str) -> str:
    return quote(value, safe="")


def _cart(cart_id: str) -> str:
    """The cart's path segment; an id this service never issues is not found without a round trip.

    (Servers decode `%2F` before routing, so such an id would otherwise miss the route altogether
    and come back as a generic 404 instead of the cart's own.)
    """
    if not plausible_cart_id(cart_id):
        raise cart_not_found(cart_id)
    return f"{PREFIX}/carts/{_segment(cart_id)}"


def _as(account_id: str | None) -> dict[str, str] | None:
    return {ACCOUNT_HEADER: account_id} if account_id else None


class HttpCartClient:
    """The cart in another process, through the shared pooled HTTP client."""

    def __init__(self, http: ServiceHttpClient | str, timeout: float = 10.0) -> None:
        self._http = service_client("cart", http, timeout)

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def add_item(self, cart_id: str | None, account_id: str | None, item: AddItem) -> Cart:
        path = f"{PREFIX}/items" if cart_id is None else f"{_cart(cart_id)}/items"
        return await self._http.call("POST", path, Cart, body=item, headers=_as(account_id))

    async def get_cart(self, cart_id: str, account_id: str | None) -> Cart:
        return await self._http.call("GET", _cart(cart_id), Cart, headers=_as(account_id))

    async def account_cart(self, account_id: str) -> Cart:
        return await self._http.call(
            "POST", f"{PREFIX}/account-cart", Cart, headers={ACCOUNT_HEADER: account_id}
        )

    async def change_quantity(
        self, cart_id: str, account_id: str | None, sku_id: str, change: ChangeQuantity
    ) -> Cart:
        path = f"{_cart(cart_id)}/lines/{_segment(sku_id)}"
        return await self._http.call("PUT", path, Cart, body=change, headers=_as(account_id))

    async def remove_line(self, cart_id: str, account_id: str | None, sku_id: str) -> Cart:
        path = f"{_cart(cart_id)}/lines/{_segment(sku_id)}"
        return await self._http.call("DELETE", path, Cart, headers=_as(account_id))

    async def merge(self, anonymous_cart_id: str, account_id: str) -> Cart:
        path = f"{_cart(anonymous_cart_id)}/merge"
        return await self._http.call("POST", path, Cart, headers={ACCOUNT_HEADER: account_id})

    async def checkout_lines(self, cart_id: str, account_id: str | None) -> Cart:
        path = f"{_cart(cart_id)}/checkout-lines"
        return await self._http.call("GET", path, Cart, headers=_as(account_id))

    async def mark_checked_out(self, cart_id: str, order_id: str) -> None:
        path = f"{_cart(cart_id)}/checkout"
        await self._http.call("PUT", path, type(None), body=MarkCheckedOut(order_id))
