"""Signed webhooks: the provider's event format, HMAC-SHA256 signing, and verification.

The signature header reads `t=<unix seconds>,v1=<hex>` where the hex is HMAC-SHA256, keyed with the
shared webhook secret, over `<t>.<raw body>`. Signing the timestamp with the body stops an attacker from
replaying an old body under a fresh time; the tolerance window bounds how old a delivery may be, and
the receiver remembers event ids inside that window so a replay within it is refused too.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

import msgspec

from peakshop.payments.gateway import ChargeStatus, GatewayCharge

SIGNATURE_HEADER = "peakshop-signature"
TOLERANCE_SECONDS = 300

EventType = Literal[
    "charge.authorized", "charge.declined", "charge.captured", "charge.voided", "charge.refunded"
]


class ChargeData(msgspec.Struct, frozen=True):
    charge_id: str
    idempotency_key: str
    amount: int
    currency: str
    status: ChargeStatus
    decline_reason: str | None = None


class WebhookEvent(msgspec.Struct, frozen=True):
    id: str
    type: EventType
    created: int
    data: ChargeData

    def charge(self) -> GatewayCharge:
        """The provider's charge as this event reports it."""
        data = self.data
        return GatewayCharge(data.charge_id, data.idempotency_key, data.amount, data.currency, data.status)


class WebhookRejected(Exception):
    """A delivery that must not be applied; `reason` says which check it failed."""

    def __init__(self, reason: Literal["missing", "malformed", "signature", "stale"], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str | None, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS
) -> None:
    """Raise `WebhookRejected` unless `header` signs `body` with `secret` within the tolerance window."""
    if not header:
        raise WebhookRejected("missing", f"the {SIGNATURE_HEADER} header is missing")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            # Several v1 entries are allowed, so a secret can be rotated without dropping deliveries.
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookRejected("malformed", f"the {SIGNATURE_HEADER} header must read t=<unix>,v1=<hex>")
    expected = signature(secret, timestamp, body)
    # compare_digest takes the same time whether the first or the last character differs.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookRejected("signature", "the webhook signature does not match")
    # Checked after the signature, so an unsigned request learns nothing about the clock.
    if abs(now - timestamp) > tolerance:
        raise WebhookRejected("stale", f"the webhook timestamp is more than {tolerance} s from now")


def signed_webhook(secret: str, event: WebhookEvent, now: float) -> tuple[dict[str, str], bytes]:
    """The headers and body of a delivery of `event`, signed as the provider signs it."""
    body = msgspec.json.encode(event)
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: signature_header(secret, int(now), body),
    }
    return headers, body


decode_event = msgspec.json.Decoder(WebhookEvent).decode
