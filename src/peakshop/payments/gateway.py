"""The port every payment provider sits behind, and the errors it may raise.

The three failure kinds differ in what the caller knows afterwards: `GatewayDeclined` and
`GatewayError` are definite (no money is held), `GatewayTimeout` is not (the provider may have acted),
so a timeout is resolved by asking `find` before anything is called failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ChargeStatus = Literal["authorized", "captured", "voided", "refunded", "declined"]


@dataclass(frozen=True)
class GatewayCharge:
    """What the provider holds for one idempotency key."""

    id: str
    idempotency_key: str
    amount: int
    currency: str
    status: ChargeStatus
    decline_reason: str | None = None


class GatewayDeclined(Exception):
    """The provider refused the charge (card declined, invalid token, ...); nothing is held."""

    def __init__(self, reason: str, charge_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.charge_id = charge_id


class GatewayTimeout(Exception):
    """No answer in time: the provider may or may not have acted. Ask `find` before deciding."""


class GatewayError(Exception):
    """The provider failed before acting: nothing happened, and the same request may be retried."""


class GatewayConflict(Exception):
    """The request contradicts the provider's state: a key reused for another amount or operation,
    or an operation the charge's status does not allow (capturing a voided charge)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentGateway(Protocol):
    """A payment provider. Every call carries an idempotency key: repeating a call repeats its answer."""

    async def authorize(self, idempotency_key: str, amount: int, currency: str, token: str) -> GatewayCharge:
        """Hold the amount; raises `GatewayDeclined` with the charge's reason when refused."""
        ...

    async def capture(self, charge_id: str, idempotency_key: str) -> GatewayCharge: ...

    async def void(self, charge_id: str, idempotency_key: str) -> GatewayCharge: ...

    async def refund(self, charge_id: str, idempotency_key: str) -> GatewayCharge: ...

    async def find(self, idempotency_key: str) -> GatewayCharge | None:
        """What the provider knows about an authorisation key; None when it never saw it."""
        ...
