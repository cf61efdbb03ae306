"""The rules of a checkout attempt, as plain Python: steps, fingerprints, problems, cursors."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from peakshop.contracts.cart import Cart
from peakshop.contracts.orders import (
    Order,
    OrderLine,
    OrderStatus,
    OrderSummary,
    PlaceOrder,
    ShippingAddress,
)
from peakshop.platform.problems import Conflict, InvalidInput, NotFound, Problem

SCHEMA = "orders"

# Where a checkout attempt is. `started`: recorded and priced; `reserved`: stock held; `authorized`:
# the payment is known to be authorised but the order is not finished yet (set when finishing was
# interrupted; the happy path goes from `reserved` straight to `confirmed`, because payments, not
# orders, is the record of an authorisation). Only `confirmed` and `failed` are final.
Step = Literal["started", "reserved", "authorized", "confirmed", "failed"]
UNFINISHED: tuple[Step, ...] = ("started", "reserved", "authorized")
FINAL: tuple[Step, ...] = ("confirmed", "failed")

STATUS_OF: dict[Step, OrderStatus] = {
    "started": "pending",
    "reserved": "pending",
    "authorized": "pending",
    "confirmed": "confirmed",
    "failed": "failed",
}

MAX_KEY_LENGTH = 200
MAX_ACCOUNT_ID_LENGTH = 128
MAX_PAGE = 100
_KEY = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: what a header can carry without surprises


def new_order_id() -> str:
    return "ord_" + uuid.uuid4().hex


# --- problems --------------------------------------------------------------------------------------


def key_required() -> Problem:
    return Problem(
        "Send an `Idempotency-Key` header (a fresh random value per checkout, reused on retries).",
        status=428,
        slug="idempotency-key-required",
        title="Idempotency key required",
    )


def key_reused() -> Problem:
    return Problem(
        "This Idempotency-Key was used for another checkout request; use a new key for a new order.",
        status=422,
        slug="idempotency-key-reused",
        title="Idempotency key reused",
    )


def in_progress(order_id: str, retry_after: int) -> Conflict:
    return Conflict(
        "A checkout with this Idempotency-Key is still being processed; ask again shortly.",
        slug="checkout-in-progress",
        title="Checkout in progress",
        headers={"Retry-After": str(retry_after)},
        order_id=order_id,
        retry_after=retry_after,
    )


def cart_being_ordered(cart_id: str, order_id: str | None, retry_after: int) -> Conflict:
    """Another checkout of the cart is pending; `order_id` only when it is the asking buyer's."""
    pending = Conflict(
        "Another checkout of this cart is still being processed; if it fails, the cart can be "
        "checked out again. Ask again shortly.",
        slug="cart-checkout-in-progress",
        title="Cart checkout in progress",
        headers={"Retry-After": str(retry_after)},
        cart_id=cart_id,
        retry_after=retry_after,
    )
    if order_id:
        pending.extra["order_id"] = order_id
    return pending


def cart_ordered(cart_id: str, order_id: str | None) -> Conflict:
    """The cart service's answer for a closed cart, given before `orders.placed` has closed it;
    `order_id` only when it is the asking buyer's."""
    closed = Conflict(
        "The cart was checked out as another order.",
        slug="cart-closed",
        title="Cart closed",
        cart_id=cart_id,
        cart_status="checked_out",
    )
    if order_id:
        closed.extra["order_id"] = order_id
    return closed


def cart_empty(cart_id: str) -> Conflict:
    return Conflict("The cart has no lines to order.", slug="cart-empty", title="Cart empty", cart_id=cart_id)


def mixed_currencies(cart_id: str) -> Conflict:
    return Conflict(
        "The cart's lines are priced in more than one currency.",
        slug="cart-mixed-currencies",
        title="Cart in several currencies",
        cart_id=cart_id,
    )


def order_not_found(order_id: str) -> NotFound:
    # The same answer for someone else's order as for no order: ids are not confirmed to strangers.
    return NotFound(f"There is no order {order_id}.", order_id=order_id)


def payment_pending(order_id: str, retry_after: int) -> Problem:
    return Problem(
        "The payment's outcome is not known yet; the order will be settled. Ask again with the same key.",
        status=503,
        slug="payment-pending",
        title="Payment pending",
        headers={"Retry-After": str(retry_after)},
        order_id=order_id,
        retry_after=retry_after,
    )


def checkout_interrupted(order_id: str, retry_after: int, service: str) -> Problem:
    return Problem(
        f"The checkout could not reach {service}; it will be finished or rolled back. "
        "Ask again with the same key.",
        status=503,
        slug="checkout-interrupted",
        title="Checkout interrupted",
        headers={"Retry-After": str(retry_after)},
        order_id=order_id,
        retry_after=retry_after,
    )


def payment_declined(order_id: str, reason: str | None) -> Problem:
    """The same problem payments raises for a decline, for attempts the reconciler settles."""
    return Problem(
        "The payment was declined.",
        status=402,
        slug="payment-declined",
        title="Payment declined",
        order_id=order_id,
        reason=reason or "card_declined",
    )


def payment_cancelled(order_id: str) -> Problem:
    """The capture was refused after the sale: the authorisation was cancelled (by the provider, or
    voided behind the saga's back), so no money was taken and the units are back on sale."""
    return Problem(
        "The payment was cancelled before the money was taken; nothing was charged. "
        "Pay again with a new Idempotency-Key.",
        status=402,
        slug="payment-cancelled",
        title="Payment cancelled",
        order_id=order_id,
    )


def checkout_abandoned(order_id: str) -> Conflict:
    return Conflict(
        "The checkout did not finish and was rolled back; nothing was charged. "
        "Start again with a new Idempotency-Key.",
        slug="checkout-abandoned",
        title="Checkout abandoned",
        order_id=order_id,
    )


def reservation_lapsed(order_id: str) -> Conflict:
    return Conflict(
        "The stock held for this order was released before payment completed; nothing was charged.",
        slug="reservation-expired",
        title="Reservation expired",
        order_id=order_id,
    )


def stored_problem(problem: Problem) -> bytes:
    """The problem an order failed with, as kept on the order to answer every replay the same way."""
    return msgspec.json.encode(problem.to_dict())


def replayed_problem(stored: bytes | str | None, reason: str | None) -> Problem:
    if not stored:
        return Conflict(f"The checkout failed: {reason}.", slug=reason or "checkout-failed")
    return Problem.from_dict(msgspec.json.decode(stored))


# --- requests --------------------------------------------------------------------------------------


def checked_key(idempotency_key: str | None) -> str:
    if idempotency_key is None or not idempotency_key.strip():
        raise key_required()
    if len(idempotency_key) > MAX_KEY_LENGTH or not _KEY.match(idempotency_key):
        raise InvalidInput(
            f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} visible ASCII characters", field="Idempotency-Key"
        )
    return idempotency_key


def checked_account(account_id: str) -> str:
    if not 0 < len(account_id) <= MAX_ACCOUNT_ID_LENGTH:
        raise InvalidInput(f"account id: 1 to {MAX_ACCOUNT_ID_LENGTH} characters", field="account_id")
    return account_id


def validated(request: PlaceOrder) -> PlaceOrder:
    """Check the contract's constraints, as decoding a body would (in-process callers skip decoding)."""
    try:
        return msgspec.convert(msgspec.to_builtins(request), PlaceOrder)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc


def fingerprint(request: PlaceOrder) -> str:
    """A digest of the canonical request: same body, same fingerprint (the token is never stored)."""
    canonical = msgspec.json.encode(msgspec.to_builtins(request), order="sorted")
    return hashlib.sha256(canonical).hexdigest()


# --- history cursors -------------------------------------------------------------------------------


class InvalidCursor(InvalidInput):
    slug = "invalid-cursor"
    title = "The pagination cursor is not valid"


def encode_cursor(created_at: float, order_id: str) -> str:
    raw = msgspec.json.encode([created_at, order_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, order_id = msgspec.json.decode(raw, type=tuple[float, str])
    except (ValueError, msgspec.DecodeError) as exc:
        raise InvalidCursor("The cursor is malformed.", field="cursor") from exc
    return created_at, order_id


def checked_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: between 1 and {MAX_PAGE}", field="limit")
    return limit


def as_json(value: Any) -> bytes:
    return msgspec.json.encode(value)


# --- the attempt as stored -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One checkout attempt: the order row with what the saga and the reconciler need to continue."""

    id: str
    account_id: str
    idempotency_key: str
    fingerprint: str
    cart_id: str
    step: Step
    failure_reason: str | None
    failure_problem: str | None
    subtotal: int
    total: int
    currency: str
    item_count: int
    shipping_address: ShippingAddress
    created_at: float
    updated_at: float

    @property
    def finished(self) -> bool:
        return self.step in FINAL

    def order(self, lines: list[OrderLine]) -> Order:
        return Order(
            id=self.id,
            account_id=self.account_id,
            status=STATUS_OF[self.step],
            failure_reason=self.failure_reason,
            lines=lines,
            subtotal=self.subtotal,
            total=self.total,
            currency=self.currency,
            shipping_address=self.shipping_address,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def summary(self) -> OrderSummary:
        return OrderSummary(
            id=self.id,
            status=STATUS_OF[self.step],
            failure_reason=self.failure_reason,
            item_count=self.item_count,
            total=self.total,
            currency=self.currency,
            created_at=self.created_at,
        )


def priced_lines(cart: Cart) -> tuple[list[OrderLine], str]:
    """The order's lines from the cart as the server priced it, with the currency they share.

    Totals are computed here from unit price and quantity: nothing a client sent enters a total.
    """
    if not cart.lines:
        raise cart_empty(cart.id)
    currencies = {line.currency for line in cart.lines}
    if len(currencies) != 1:
        raise mixed_currencies(cart.id)
    lines = [
        OrderLine(
            sku_id=line.sku_id,
            product_id=line.product_id,
            name=line.name,
            quantity=line.quantity,
            unit_price=line.unit_price,
            line_total=line.unit_price * line.quantity,
        )
        for line in cart.lines
    ]
    if any(line.quantity < 1 or line.unit_price < 0 for line in lines) or sum_of(lines) < 1:
        raise Conflict("The cart's lines cannot be ordered as priced.", slug="cart-unpriceable")
    return lines, currencies.pop()


def sum_of(lines: list[OrderLine]) -> int:
    return sum(line.line_total for line in lines)
