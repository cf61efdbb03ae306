"""What the cart service answers and accepts. Prices are integer minor units with an ISO 4217 currency.

Requests carry SKU ids and quantities only: a body with a `price`, `total` or any other unknown field is
refused (400), because the cart prices every line from the catalog when it is read.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

# The hard bound a request may ask for; the shop's own, lower limit per line is a cart setting (409).
MAX_REQUESTED_QUANTITY = 1_000

Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_REQUESTED_QUANTITY)]
SkuId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
OrderId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

CartOwner = Literal["anonymous", "account"]
CartStatus = Literal["open", "merged", "checked_out"]


class AddItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Put `quantity` more of a SKU in the cart (added to what the line already holds)."""

    sku_id: SkuId
    quantity: Quantity


class ChangeQuantity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Set a line's quantity; remove a line with DELETE, not with zero."""

    quantity: Quantity


class MarkCheckedOut(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Close the cart: its lines became this order."""

    order_id: OrderId


class CartLine(msgspec.Struct, frozen=True):
    sku_id: str
    product_id: str
    name: str
    quantity: int
    unit_price: int
    line_total: int
    currency: str


class Cart(msgspec.Struct, frozen=True):
    """A cart priced from the catalog at the moment it was read.

    `status` is `open` while the cart takes changes; `merged` (its lines moved to an account's cart at
    log-in) and `checked_out` (its lines became an order) are closed for good.
    """

    id: str
    owner: CartOwner
    account_id: str | None
    status: CartStatus
    lines: list[CartLine]
    item_count: int
    subtotal: int
    currency: str
    updated_at: float


class CartCheckedOut(msgspec.Struct, frozen=True):
    cart_id: str
    order_id: str
    account_id: str | None


TOPIC_CART_CHECKED_OUT = "cart.checked_out"
