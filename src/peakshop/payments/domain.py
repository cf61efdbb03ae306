"""The payment state machine and idempotency keys, as plain Python."""

from __future__ import annotations

from peakshop.contracts.payments import PaymentStatus

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


def sources_of(target: PaymentStatus) -> tuple[PaymentStatus, ...]:
    """Every status from which `target` may be reached (the WHERE of a conditional update)."""
    return tuple(source for source, targets in TRANSITIONS.items() if target in targets)


def operation_key(order_id: str, operation: str) -> str:
    """The idempotency key of a follow-up call: one capture, one void, one refund per order."""
    return f"{order_id}:{operation}"
