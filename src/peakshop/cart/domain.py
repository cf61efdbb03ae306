"""The rules of a cart, as plain Python: who may see it, what it may hold, how two carts merge."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import msgspec

from peakshop.contracts.cart import Cart, CartLine, CartStatus
from peakshop.contracts.catalog import SkuPrice
from peakshop.platform.problems import Conflict, InvalidInput, NotFound

SCHEMA = "cart"
CART_ID_PREFIX = "cart_"
# 16 random bytes (128 bits) are 22 base64url characters: an anonymous cart's id is its only key.
CART_ID_BYTES = 16
MAX_CART_ID_LENGTH = 64
MAX_ACCOUNT_ID_LENGTH = 128

S = TypeVar("S", bound=msgspec.Struct)


def new_cart_id() -> str:
    return CART_ID_PREFIX + secrets.token_urlsafe(CART_ID_BYTES)


_CART_ID = re.compile(rf"^{CART_ID_PREFIX}[A-Za-z0-9_-]{{1,{MAX_CART_ID_LENGTH - len(CART_ID_PREFIX)}}}$")


def plausible_cart_id(cart_id: str) -> bool:
    """Worth looking up: shaped like an id this service issues (anything else is simply not found)."""
    return _CART_ID.match(cart_id) is not None


@dataclass(frozen=True)
class Limits:
    max_line_quantity: int
    max_lines: int


@dataclass(frozen=True)
class StoredCart:
    id: str
    account_id: str | None
    status: CartStatus
    order_id: str | None
    merged_into: str | None
    created_at: float
    updated_at: float

    def visible_to(self, account_id: str | None) -> bool:
        """An anonymous cart is anyone's who holds its id; an account's cart is that account's only."""
        return self.account_id is None or self.account_id == account_id

    @property
    def open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class StoredLine:
    sku_id: str
    product_id: str
    name: str
    currency: str
    quantity: int
    added_at: float


# --- problems -----------------------------------------------------------------------------------


def cart_not_found(cart_id: str) -> NotFound:
    # The same answer for an unknown id and for another shopper's cart: ids reveal nothing.
    return NotFound("There is no such cart.", slug="cart-not-found", title="Cart not found", cart_id=cart_id)


def cart_closed(cart: StoredCart) -> Conflict:
    reason = "was checked out" if cart.status == "checked_out" else "was merged into an account's cart"
    return Conflict(
        f"The cart {reason} and takes no more changes.",
        slug="cart-closed",
        title="Cart closed",
        cart_id=cart.id,
        cart_status=cart.status,
    )


def cart_empty(cart_id: str) -> Conflict:
    return Conflict(
        "The cart has no lines to check out.", slug="cart-empty", title="Cart empty", cart_id=cart_id
    )


def line_not_found(sku_id: str) -> NotFound:
    return NotFound(
        f"The cart has no line for SKU {sku_id!r}.",
        slug="line-not-found",
        title="Line not found",
        sku_id=sku_id,
    )


def unknown_sku(sku_id: str) -> NotFound:
    return NotFound(f"There is no SKU {sku_id!r}.", slug="unknown-sku", title="Unknown SKU", sku_id=sku_id)


def cart_limit(limit: str, maximum: int, detail: str) -> Conflict:
    return Conflict(detail, slug="cart-limit", title="Cart limit reached", limit=limit, maximum=maximum)


def currency_mismatch(sku_id: str, currency: str, cart_currency: str) -> Conflict:
    return Conflict(
        f"SKU {sku_id!r} is sold in {currency}, the cart holds {cart_currency}.",
        slug="currency-mismatch",
        title="Currency mismatch",
        sku_id=sku_id,
    )


def already_checked_out(cart_id: str) -> Conflict:
    return Conflict(
        "The cart was checked out as another order.",
        slug="cart-closed",
        title="Cart closed",
        cart_id=cart_id,
        cart_status="checked_out",
    )


# --- requests -----------------------------------------------------------------------------------

_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]*)`")


def invalid_request(error: msgspec.MsgspecError) -> InvalidInput:
    """A 400 that names the offending field, the same whether the body came over HTTP or in-process."""
    message = str(error)
    field = ""
    if match := _AT_PATH.search(message):
        field = match.group(1)
        message = message[: match.start()]
    if match := _NAMED_FIELD.search(message):
        field = f"{field}.{match.group(1)}" if field else match.group(1)
    detail = f"{field}: {message}" if field else message
    return InvalidInput(detail, field=field or "body")


def decode_request(body: bytes, type_: type[S]) -> S:
    """Decode a request body strictly: `"2"` and `2.0` are not the integer 2, unknown fields are refused."""
    try:
        return msgspec.json.decode(body, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise invalid_request(exc) from exc


def validated(value: S) -> S:
    """Check a request built in-process against its constraints, as decoding it would have.

    msgspec validates on decode, not on construction, so an in-process caller would otherwise get past
    bounds (and types) that an HTTP caller cannot.
    """
    try:
        return msgspec.convert(msgspec.to_builtins(value), type(value), strict=True)
    except msgspec.ValidationError as exc:
        raise invalid_request(exc) from exc


# --- limits and merging -------------------------------------------------------------------------


def check_line_quantity(quantity: int, limits: Limits) -> None:
    if quantity > limits.max_line_quantity:
        raise cart_limit(
            "max_line_quantity",
            limits.max_line_quantity,
            f"A cart holds at most {limits.max_line_quantity} of one SKU.",
        )


def added(
    lines: Mapping[str, StoredLine], price: SkuPrice, quantity: int, now: float, limits: Limits
) -> StoredLine:
    """The line after adding `quantity` of a SKU: refused (409) past a limit, never silently capped."""
    existing = lines.get(price.sku_id)
    if existing is None:
        if len(lines) >= limits.max_lines:
            raise cart_limit(
                "max_lines", limits.max_lines, f"A cart holds at most {limits.max_lines} different SKUs."
            )
        currencies = {line.currency for line in lines.values()}
        if currencies and price.currency not in currencies:
            raise currency_mismatch(price.sku_id, price.currency, min(currencies))
        check_line_quantity(quantity, limits)
        return StoredLine(price.sku_id, price.product_id, price.name, price.currency, quantity, now)
    total = existing.quantity + quantity
    check_line_quantity(total, limits)
    return replace(existing, quantity=total, name=price.name, product_id=price.product_id)


def merged(
    target: Mapping[str, StoredLine], source: Iterable[StoredLine], limits: Limits
) -> list[StoredLine]:
    """The target's lines that change when `source` is poured into it.

    Quantities add and are capped at the per-line limit; SKUs the target cannot take (it is full, or
    they are in another currency) stay behind. Merging happens at log-in, where refusing the whole
    log-in over one line would be worse than keeping what fits.
    """
    result = dict(target)
    changed: dict[str, StoredLine] = {}
    currencies = {line.currency for line in target.values()}
    for line in sorted(source, key=lambda line: (line.added_at, line.sku_id)):
        existing = result.get(line.sku_id)
        if existing is not None:
            quantity = min(existing.quantity + line.quantity, limits.max_line_quantity)
            if quantity != existing.quantity:
                result[line.sku_id] = changed[line.sku_id] = replace(existing, quantity=quantity)
            continue
        if len(result) >= limits.max_lines or (currencies and line.currency not in currencies):
            continue
        currencies.add(line.currency)
        moved = replace(line, quantity=min(line.quantity, limits.max_line_quantity))
        result[line.sku_id] = changed[line.sku_id] = moved
    return list(changed.values())


# --- pricing ------------------------------------------------------------------------------------


def priced(
    cart: StoredCart,
    lines: Iterable[StoredLine],
    prices: Mapping[str, SkuPrice],
    default_currency: str,
    updated_at: float | None = None,
) -> Cart:
    """The cart as the shopper sees it: today's catalog prices, never any price a client sent.

    Lines whose SKU the catalog no longer knows are left out of the view (and of the subtotal).
    """
    shown: list[CartLine] = []
    for line in sorted(lines, key=lambda line: (line.added_at, line.sku_id)):
        price = prices.get(line.sku_id)
        if price is None:
            continue
        shown.append(
            CartLine(
                sku_id=line.sku_id,
                product_id=price.product_id,
                name=price.name,
                quantity=line.quantity,
                unit_price=price.price,
                line_total=price.price * line.quantity,
                currency=price.currency,
            )
        )
    return Cart(
        id=cart.id,
        owner="anonymous" if cart.account_id is None else "account",
        account_id=cart.account_id,
        status=cart.status,
        lines=shown,
        item_count=sum(line.quantity for line in shown),
        subtotal=sum(line.line_total for line in shown),
        currency=shown[0].currency if shown else default_currency,
        updated_at=cart.updated_at if updated_at is None else updated_at,
    )


def by_sku(lines: Iterable[StoredLine]) -> dict[str, StoredLine]:
    return {line.sku_id: line for line in lines}


def problem_extra(problem: Any, key: str) -> list[str]:
    """A list-valued field of a problem (such as the catalog's `sku_ids`), or nothing."""
    value = getattr(problem, "extra", {}).get(key)
    return [str(v) for v in value] if isinstance(value, list) else []
