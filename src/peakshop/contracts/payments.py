"""What the payments service answers and accepts, and the events it publishes."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

OrderId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Minor units (cents); the upper bound keeps every amount well inside a 64-bit column.
Amount = Annotated[int, msgspec.Meta(gt=0, le=10**12)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
PaymentToken = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

PaymentStatus = Literal["pending", "authorized", "captured", "voided", "refunded", "declined", "failed"]


class Authorize(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hold `amount` on the buyer's payment method for one order; the order id is the idempotency key."""

    order_id: OrderId
    amount: Amount
    currency: Currency
    payment_token: PaymentToken


class AbandonPayment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An order's checkout ends before it asked for money: settle its payment as none, first.

    The reconciler sends this before it rolls back an order that has no payment, so that a request
    still on its way (stalled, not dead) finds the payment settled and takes no money.
    """

    order_id: OrderId
    amount: Amount
    currency: Currency


class Payment(msgspec.Struct, frozen=True):
    id: str
    order_id: str
    amount: int
    currency: str
    status: PaymentStatus
    gateway_reference: str | None
    decline_reason: str | None
    updated_at: float


# One line of the invariant audit: (order_id, status, amount).
AuditRow = tuple[str, PaymentStatus, int]


class WebhookReceipt(msgspec.Struct, frozen=True):
    event_id: str
    # False when the event changed nothing (the payment was already in that state or past it).
    applied: bool


class PaymentCaptured(msgspec.Struct, frozen=True):
    payment_id: str
    order_id: str
    amount: int
    currency: str


class PaymentVoided(msgspec.Struct, frozen=True):
    payment_id: str
    order_id: str
    amount: int
    currency: str


class PaymentRefunded(msgspec.Struct, frozen=True):
    payment_id: str
    order_id: str
    amount: int
    currency: str


TOPIC_PAYMENT_CAPTURED = "payments.captured"
TOPIC_PAYMENT_VOIDED = "payments.voided"
TOPIC_PAYMENT_REFUNDED = "payments.refunded"
