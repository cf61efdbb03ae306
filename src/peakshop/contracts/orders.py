"""What the orders service accepts, answers and announces. Amounts are integer minor units (cents).

A checkout request names a cart and says where to ship and how to pay; it never carries a price or a
total (unknown fields are refused with 400): orders prices the cart on the server.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

CartId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
PaymentToken = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
AddressLine = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
OptionalAddressLine = Annotated[str, msgspec.Meta(max_length=200)]
City = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
PostalCode = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
Phone = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9+()./ -]*$")]

OrderStatus = Literal["pending", "confirmed", "failed"]


class ShippingAddress(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Name
    line1: AddressLine
    line2: OptionalAddressLine | None = None
    city: City
    postal_code: PostalCode
    country: CountryCode
    """ISO 3166-1 alpha-2, upper case."""
    phone: Phone | None = None


class PlaceOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Turn a cart into an order. Sent with an `Idempotency-Key`: the same key always means this order."""

    cart_id: CartId
    shipping_address: ShippingAddress
    payment_token: PaymentToken


class OrderLine(msgspec.Struct, frozen=True):
    """One line as it was priced when the order was placed (later price changes do not touch it)."""

    sku_id: str
    product_id: str
    name: str
    quantity: int
    unit_price: int
    line_total: int


class Order(msgspec.Struct, frozen=True):
    id: str
    account_id: str
    status: OrderStatus
    failure_reason: str | None
    """The problem slug the checkout failed with (`sold-out`, `payment-declined`, ...)."""
    lines: list[OrderLine]
    subtotal: int
    total: int
    currency: str
    shipping_address: ShippingAddress
    created_at: float
    updated_at: float


class OrderSummary(msgspec.Struct, frozen=True):
    id: str
    status: OrderStatus
    failure_reason: str | None
    item_count: int
    total: int
    currency: str
    created_at: float


class OrderPage(msgspec.Struct, frozen=True):
    """One page of an account's orders, newest first; pass `next_cursor` back for the next one."""

    items: list[OrderSummary]
    next_cursor: str | None


ReconcileOutcome = Literal["confirmed", "failed", "unsettled"]


class ReconciledOrder(msgspec.Struct, frozen=True):
    order_id: str
    outcome: ReconcileOutcome
    """`unsettled`: the payment's outcome is still unknown, or a dependency did not answer; next round."""


class ConfirmedOrderFact(msgspec.Struct, frozen=True):
    order_id: str
    total: int
    currency: str
    units: dict[str, int]
    """Units bought per SKU: what the order's reservation must have sold, no more and no less."""


class UnconfirmedOrderFact(msgspec.Struct, frozen=True):
    """An order that failed, or one still on its way (`started`, `reserved`, `authorized`)."""

    order_id: str
    step: str
    updated_at: float


class DuplicatedKeyFact(msgspec.Struct, frozen=True):
    account_id: str
    idempotency_key: str
    orders: int


class CartOrderedTwiceFact(msgspec.Struct, frozen=True):
    cart_id: str
    order_ids: list[str]


class OrdersAudit(msgspec.Struct, frozen=True):
    """What the invariant audit needs from orders: every order's outcome, keys and carts used twice."""

    confirmed: list[ConfirmedOrderFact]
    unconfirmed: list[UnconfirmedOrderFact]
    duplicated_keys: list[DuplicatedKeyFact]
    """Must be empty: one idempotency key yields at most one order."""
    carts_ordered_twice: list[CartOrderedTwiceFact]
    """Must be empty: one cart yields at most one order that did not fail."""


class OrderPlaced(msgspec.Struct, frozen=True):
    order_id: str
    account_id: str
    total: int
    currency: str
    lines: list[OrderLine]
    cart_id: str
    """The cart the order was made from: the cart service closes it on this event."""


class OrderFailed(msgspec.Struct, frozen=True):
    order_id: str
    reason: str


TOPIC_ORDER_PLACED = "orders.placed"
TOPIC_ORDER_FAILED = "orders.failed"
