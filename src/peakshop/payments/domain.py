"""The payment state machine, idempotency keys and the problems payments answers with, as plain Python."""

from __future__ import annotations

import uuid
from typing import TypeVar

import msgspec

from peakshop.contracts.payments import AbandonPayment, Authorize, Payment, PaymentStatus
from peakshop.payments.webhooks import WebhookRejected
from peakshop.platform.problems import Conflict, InvalidInput, NotFound, Problem

SCHEMA = "payments"

# Where each status may go. Transitions only move forward, so applying the same fact twice (a retry,
# a webhook after our own call, the reconciler after a late answer) changes nothing the second time.
# `pending` may jump to any status the provider reports, since its outcome was simply not known yet.
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    "pending": frozenset({"authorized", "captured", "voided", "refunded", "declined", "failed"}),
    "authorized": frozenset({"captured", "voided", "refunded"}),
    "captured": frozenset({"refunded"}),
    "voided": frozenset(),
    "refunded": frozenset(),
    "declined": frozenset(),
    "failed": frozenset(),
}

# No money is held for these, and nothing more will happen to them.
SETTLED_WITHOUT_MONEY: frozenset[PaymentStatus] = frozenset({"voided", "declined", "failed"})
# The reason of a payment settled as none before it was asked for (`PaymentsHandlers.abandon`).
ABANDONED = "checkout_abandoned"


# What our own follow-up calls require and leave (stricter than TRANSITIONS, which also admits what
# the provider reports having done on its side, such as refunding an authorisation it captured).
OPERATIONS: dict[str, tuple[PaymentStatus, PaymentStatus]] = {
    "capture": ("authorized", "captured"),
    "void": ("authorized", "voided"),
    "refund": ("captured", "refunded"),
}


# The local status a provider's charge status corresponds to.
FROM_CHARGE: dict[str, PaymentStatus] = {
    "authorized": "authorized",
    "captured": "captured",
    "voided": "voided",
    "refunded": "refunded",
    "declined": "declined",
}


def sources_of(target: PaymentStatus) -> tuple[PaymentStatus, ...]:
    """Every status from which `target` may be reached (the WHERE of a conditional update)."""
    return tuple(source for source, targets in TRANSITIONS.items() if target in targets)


def operation_key(order_id: str, operation: str) -> str:
    """The idempotency key of a follow-up call: one capture, one void, one refund per order."""
    return f"{order_id}:{operation}"


def first_payment(
    request: Authorize | AbandonPayment, status: PaymentStatus, reason: str | None, now: float
) -> Payment:
    """An order's payment as first recorded: no charge at the provider yet."""
    return Payment(
        id=uuid.uuid4().hex,
        order_id=request.order_id,
        amount=request.amount,
        currency=request.currency,
        status=status,
        gateway_reference=None,
        decline_reason=reason,
        updated_at=now,
    )


# --- problems ---------------------------------------------------------------------------------------


def payment_not_found(order_id: str) -> NotFound:
    return NotFound(
        f"No payment exists for order {order_id}.",
        slug="payment-not-found",
        title="Payment not found",
        order_id=order_id,
    )


def payment_mismatch(existing: Payment) -> Conflict:
    return Conflict(
        "This order already has a payment for another amount or currency.",
        slug="payment-mismatch",
        title="Payment mismatch",
        order_id=existing.order_id,
        amount=existing.amount,
        currency=existing.currency,
    )


def payment_declined(payment: Payment) -> Problem:
    return Problem(
        "The payment was declined.",
        status=402,
        slug="payment-declined",
        title="Payment declined",
        order_id=payment.order_id,
        reason=payment.decline_reason or "card_declined",
    )


def payment_pending(order_id: str, retry_after: int) -> Problem:
    return Problem(
        "The payment provider did not answer in time; the outcome is not known yet.",
        status=503,
        slug="payment-pending",
        title="Payment pending",
        headers={"Retry-After": str(retry_after)},
        order_id=order_id,
        retry_after=retry_after,
    )


def provider_timeout(order_id: str, retry_after: int) -> Problem:
    return Problem(
        "The payment provider did not answer in time; the request may be repeated safely.",
        status=503,
        slug="payment-provider-timeout",
        title="Payment provider timeout",
        headers={"Retry-After": str(retry_after)},
        order_id=order_id,
        retry_after=retry_after,
    )


def provider_error(order_id: str) -> Problem:
    return Problem(
        "The payment provider failed; no money was taken.",
        status=502,
        slug="payment-provider-error",
        title="Payment provider error",
        order_id=order_id,
    )


_NOT_ALLOWED = {
    "capture": "payment-not-capturable",
    "void": "payment-not-voidable",
    "refund": "payment-not-refundable",
}


def wrong_status(payment: Payment, operation: str) -> Conflict:
    return Conflict(
        f"The payment is {payment.status}: {operation} is not allowed.",
        slug=_NOT_ALLOWED[operation],
        title="Payment in the wrong state",
        order_id=payment.order_id,
        payment_status=payment.status,
    )


def provider_conflict(order_id: str, reason: str) -> Conflict:
    return Conflict(
        "The payment provider refused the request in the charge's current state.",
        slug="payment-provider-conflict",
        title="Payment provider conflict",
        order_id=order_id,
        reason=reason,
    )


def webhook_rejected(rejection: WebhookRejected) -> InvalidInput:
    slug = "webhook-stale" if rejection.reason == "stale" else "webhook-signature-invalid"
    return InvalidInput(rejection.detail, slug=slug, title="Webhook rejected")


def webhook_replayed(event_id: str) -> Conflict:
    return Conflict(
        "This webhook event was received before.",
        slug="webhook-replayed",
        title="Webhook replayed",
        event_id=event_id,
    )


R = TypeVar("R", Authorize, AbandonPayment)


def validated(value: R) -> R:
    """Check the contract's constraints, as decoding a request body would (msgspec checks on decode)."""
    try:
        return msgspec.convert(msgspec.to_builtins(value), type(value))
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc
