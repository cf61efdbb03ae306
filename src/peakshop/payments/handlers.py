"""The payments use cases: authorise, capture, void, refund, resolve, and apply provider webhooks.

The gateway is never called inside a database transaction: a slow provider must not hold a
connection (or, on SQLite, the only write lock). Each call's outcome is then recorded with a
conditional update (`PaymentsRepository.move`), so racing calls, retries, webhooks and the
reconciler agree: the first to record a fact wins, the others read the row it left.

A timed-out authorisation answers 503 `payment-pending` rather than 504: the outcome is unknown
(the provider may hold the money), and 503 with Retry-After tells the caller to ask again, which
is safe because a repeated authorise for the order re-asks the provider under the same key; the
reconciler's `resolve` settles it otherwise. It is never reported, or recorded, as failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import structlog

from peakshop.contracts.payments import (
    TOPIC_PAYMENT_CAPTURED,
    TOPIC_PAYMENT_REFUNDED,
    TOPIC_PAYMENT_VOIDED,
    AbandonPayment,
    AuditRow,
    Authorize,
    Payment,
    PaymentCaptured,
    PaymentRefunded,
    PaymentStatus,
    PaymentVoided,
    WebhookReceipt,
)
from peakshop.payments.domain import (
    ABANDONED,
    FROM_CHARGE,
    OPERATIONS,
    SCHEMA,
    SETTLED_WITHOUT_MONEY,
    first_payment,
    operation_key,
    payment_declined,
    payment_mismatch,
    payment_not_found,
    payment_pending,
    provider_conflict,
    provider_error,
    provider_timeout,
    validated,
    webhook_rejected,
    webhook_replayed,
    wrong_status,
)
from peakshop.payments.gateway import (
    GatewayCharge,
    GatewayConflict,
    GatewayDeclined,
    GatewayError,
    GatewayTimeout,
    PaymentGateway,
)
from peakshop.payments.repository import PaymentsRepository
from peakshop.payments.settings import PaymentsSettings
from peakshop.payments.webhooks import WebhookRejected, decode_event, verify
from peakshop.platform.db import Database, Executor
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.outbox import write_to_outbox
from peakshop.platform.problems import InvalidInput, Unavailable

log = structlog.get_logger("peakshop.payments")
Clock = Callable[[], float]
T = TypeVar("T")

_EVENTS: dict[PaymentStatus, tuple[str, type[Any]]] = {
    "captured": (TOPIC_PAYMENT_CAPTURED, PaymentCaptured),
    "voided": (TOPIC_PAYMENT_VOIDED, PaymentVoided),
    "refunded": (TOPIC_PAYMENT_REFUNDED, PaymentRefunded),
}


# --- use cases --------------------------------------------------------------------------------------


class PaymentsHandlers:
    """The use cases, over one database and one gateway (both attached when the service starts)."""

    def __init__(
        self,
        settings: PaymentsSettings,
        metrics: Metrics,
        webhook_secret: str,
        *,
        database: Database | None = None,
        gateway: PaymentGateway | None = None,
        clock: Clock = time.time,
        outbox_written: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._webhook_secret = webhook_secret
        self._now = clock
        self._outbox_written = outbox_written
        self._webhooks_forgotten_at = float("-inf")
        self._db: Database | None = None
        self._repository: PaymentsRepository | None = None
        self._gateway: PaymentGateway | None = None
        if database is not None and gateway is not None:
            self.attach(database, gateway)

    def attach(self, database: Database, gateway: PaymentGateway) -> None:
        self._db = database
        self._repository = PaymentsRepository(database)
        self._gateway = gateway

    def detach(self) -> None:
        self._db = None
        self._repository = None
        self._gateway = None

    @property
    def _store(self) -> tuple[Database, PaymentsRepository, PaymentGateway]:
        if self._db is None or self._repository is None or self._gateway is None:
            raise Unavailable("The payments service is not started.", service="payments")
        return self._db, self._repository, self._gateway

    def _count(self, outcome: str) -> None:
        self._metrics.payments.labels(outcome).inc()

    def _count_move(self, target: PaymentStatus) -> None:
        # `failed` is not an outcome of its own: the `error` or `timeout` behind it was counted.
        if target != "failed":
            self._count(target)

    async def _ask(self, call: Awaitable[T]) -> T:
        """One gateway call, bounded by the configured timeout (which then counts as a gateway timeout)."""
        try:
            return await asyncio.wait_for(call, self.settings.gateway_timeout_seconds)
        except TimeoutError as exc:
            raise GatewayTimeout("no answer within the gateway timeout") from exc

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, order_id: str) -> Payment:
        _, repository, _ = self._store
        payment = await repository.get(order_id)
        if payment is None:
            raise payment_not_found(order_id)
        return payment

    async def audit_rows(self) -> list[AuditRow]:
        _, repository, _ = self._store
        return await repository.audit_rows()

    # --- authorise --------------------------------------------------------------------------------

    async def authorize(self, request: Authorize) -> Payment:
        """Hold the amount for the order; one payment per order however often this is called."""
        request = validated(request)
        db, repository, gateway = self._store
        fresh = first_payment(request, "pending", None, self._now())
        async with db.one_statement() as tx:
            payment = await repository.insert_first(tx, fresh)
        if payment is None:  # the order has one already: a repeat call, or a concurrent one
            payment = await repository.get(request.order_id)
        if payment is None:  # pragma: no cover - payments are never deleted
            raise payment_not_found(request.order_id)
        if (payment.amount, payment.currency) != (request.amount, request.currency):
            raise payment_mismatch(payment)
        if payment.status == "declined":
            raise payment_declined(payment)
        if payment.status == "failed":
            raise provider_error(payment.order_id)
        if payment.status != "pending":
            return payment
        # Pending: new, or a call whose outcome is not known yet (in flight, or timed out). Asking the
        # provider again under the same key is safe: it answers with the charge it already has.
        try:
            charge = await self._ask(
                gateway.authorize(request.order_id, request.amount, request.currency, request.payment_token)
            )
        except GatewayDeclined as declined:
            recorded = await self._record(
                request.order_id,
                "declined",
                gateway_reference=declined.charge_id,
                decline_reason=declined.reason,
            )
            if recorded.status == "declined":
                raise payment_declined(recorded) from None
            return recorded
        except GatewayTimeout:
            self._count("timeout")
            log.warning("payment_authorization_timed_out", order_id=request.order_id)
            current = await self.get(request.order_id)
            if current.status == "pending":
                raise payment_pending(request.order_id, self.settings.retry_after_seconds) from None
            return await self.authorize(request)  # settled meanwhile: answer as a repeat call would
        except GatewayError:
            self._count("error")
            recorded = await self._record(request.order_id, "failed", decline_reason="provider_error")
            if recorded.status == "failed":
                raise provider_error(request.order_id) from None
            return recorded
        except GatewayConflict as conflict:
            raise provider_conflict(request.order_id, conflict.reason) from None
        return await self._record_charge(request.order_id, charge)

    async def _record(
        self,
        order_id: str,
        target: PaymentStatus,
        *,
        gateway_reference: str | None = None,
        decline_reason: str | None = None,
        known: Payment | None = None,
    ) -> Payment:
        """Record a fact about the payment; returns the row as it now is, whoever recorded first.

        With the payment already `known` (capture, void, refund read it first), its event is built
        before the move and written with it: one statement less on PostgreSQL.
        """
        db, repository, _ = self._store
        event = self._event(known, target) if known is not None else None
        # One statement when the event is known beforehand or there is none to write: then the move
        # needs no transaction around it.
        unit = db.one_statement() if event is not None or target not in _EVENTS else db.transaction()
        async with unit as tx:
            moved = await repository.move(
                tx,
                order_id,
                target,
                self._now(),
                gateway_reference=gateway_reference,
                decline_reason=decline_reason,
                event=event,
            )
            if moved is not None and event is None:
                await self._announce(tx, moved)
        current = moved or await repository.get(order_id)
        if current is None:  # pragma: no cover - payments are never deleted
            raise payment_not_found(order_id)
        if moved is not None:
            self._count_move(target)
            if self._outbox_written is not None and target in _EVENTS:
                self._outbox_written()
        return current

    @staticmethod
    def _event(payment: Payment, status: PaymentStatus) -> Envelope | None:
        if status not in _EVENTS:
            return None
        topic, event_type = _EVENTS[status]
        return Envelope.wrap(
            topic,
            event_type(
                payment_id=payment.id,
                order_id=payment.order_id,
                amount=payment.amount,
                currency=payment.currency,
            ),
        )

    async def _announce(self, tx: Executor, payment: Payment) -> None:
        event = self._event(payment, payment.status)
        if event is not None:
            await write_to_outbox(tx, SCHEMA, event)

    async def _record_charge(
        self, order_id: str, charge: GatewayCharge, known: Payment | None = None
    ) -> Payment:
        """Bring the payment in line with what the provider holds for it."""
        target = FROM_CHARGE[charge.status]
        recorded = await self._record(
            order_id, target, gateway_reference=charge.id, decline_reason=charge.decline_reason, known=known
        )
        if recorded.status == "failed" and charge.status == "authorized":
            # The payment was settled as failed while this authorisation was still travelling: the
            # provider holds money no order will take, so give it back.
            await self._void_orphan(order_id, charge)
        return recorded

    async def _void_orphan(self, order_id: str, charge: GatewayCharge) -> None:
        _, _, gateway = self._store
        try:
            await self._ask(gateway.void(charge.id, operation_key(order_id, "void")))
        except (GatewayTimeout, GatewayError, GatewayConflict):
            # The reconciler's next `resolve` (or the provider's own expiry of uncaptured holds) retries.
            log.exception("orphan_authorization_not_voided", order_id=order_id, charge_id=charge.id)
        else:
            self._count("voided")
            log.warning("orphan_authorization_voided", order_id=order_id, charge_id=charge.id)

    # --- capture, void, refund --------------------------------------------------------------------

    async def capture(self, order_id: str) -> Payment:
        """Take the authorised money; capturing a captured payment returns it unchanged."""
        return await self._follow_up(order_id, "capture")

    async def void(self, order_id: str) -> Payment:
        """Release an authorisation; a payment that holds no money is returned unchanged."""
        payment = await self.get(order_id)
        if payment.status in SETTLED_WITHOUT_MONEY:
            return payment
        return await self._follow_up(order_id, "void")

    async def refund(self, order_id: str) -> Payment:
        """Give captured money back; refunding a refunded payment returns it unchanged."""
        return await self._follow_up(order_id, "refund")

    async def _follow_up(self, order_id: str, operation: str) -> Payment:
        _, _, gateway = self._store
        required, target = OPERATIONS[operation]
        payment = await self.get(order_id)
        if payment.status == "pending":
            # Never act on an unknown outcome: learn it from the provider first.
            payment = await self.resolve(order_id)
            if payment.status == "pending":
                raise payment_pending(order_id, self.settings.retry_after_seconds)
        if payment.status == target:
            return payment
        if payment.status != required or payment.gateway_reference is None:
            raise wrong_status(payment, operation)
        call = {"capture": gateway.capture, "void": gateway.void, "refund": gateway.refund}[operation]
        try:
            charge = await self._ask(call(payment.gateway_reference, operation_key(order_id, operation)))
        except GatewayTimeout:
            self._count("timeout")
            raise provider_timeout(order_id, self.settings.retry_after_seconds) from None
        except GatewayError:
            self._count("error")
            raise provider_error(order_id) from None
        except GatewayConflict as conflict:
            # The provider's state moved without us (a refund from its dashboard, a webhook not yet
            # delivered): align with it, then answer as if that state had been recorded already.
            aligned = await self.resolve(order_id)
            if aligned.status == target:
                return aligned
            raise provider_conflict(order_id, conflict.reason) from None
        except GatewayDeclined as declined:
            raise provider_conflict(order_id, declined.reason) from None
        return await self._record_charge(order_id, charge, known=payment)

    # --- reconciliation ---------------------------------------------------------------------------

    async def abandon(self, request: AbandonPayment) -> Payment:
        """Settle an order that has no payment as having none: the payment is recorded `voided`
        before any authorisation, so a late one finds it settled and asks the provider for nothing.

        An order that has a payment gets it back unchanged: then it is that payment that decides.
        """
        request = validated(request)
        db, repository, _ = self._store
        none = first_payment(request, "voided", ABANDONED, self._now())
        async with db.one_statement() as tx:
            payment = await repository.insert_first(tx, none)
        if payment is not None:
            self._count("abandoned")
            return payment
        return await self.get(request.order_id)

    async def resolve(self, order_id: str) -> Payment:
        """Bring the payment in line with the provider: the reconciler's answer to an unknown outcome.

        Pending with a charge at the provider → the charge's status; pending with nothing at the
        provider → failed (only safe once the original call can no longer arrive: the reconciler
        looks at payments untouched for longer than the gateway timeout).
        """
        _, _, gateway = self._store
        payment = await self.get(order_id)
        if payment.status not in ("pending", "authorized", "captured"):
            return payment
        try:
            charge = await self._ask(gateway.find(order_id))
        except GatewayTimeout:
            self._count("timeout")
            raise payment_pending(order_id, self.settings.retry_after_seconds) from None
        except GatewayError:
            self._count("error")
            raise payment_pending(order_id, self.settings.retry_after_seconds) from None
        if charge is None:
            if payment.status != "pending":
                log.error("payment_unknown_to_provider", order_id=order_id, status=payment.status)
                return payment
            return await self._record(order_id, "failed", decline_reason="not_at_provider")
        if (charge.amount, charge.currency) != (payment.amount, payment.currency):
            log.error("payment_differs_from_provider", order_id=order_id, charge_id=charge.id)
            return payment
        if FROM_CHARGE[charge.status] == payment.status:
            return payment
        return await self._record_charge(order_id, charge)

    # --- webhooks ---------------------------------------------------------------------------------

    async def receive_webhook(self, body: bytes, signature: str | None) -> WebhookReceipt:
        """Verify a provider's delivery and apply it once; 400 for a bad or stale one, 409 for a replay."""
        db, repository, _ = self._store
        now = self._now()
        try:
            verify(self._webhook_secret, signature, body, now, self.settings.webhook_tolerance_seconds)
        except WebhookRejected as rejection:
            log.warning("webhook_rejected", reason=rejection.reason)
            raise webhook_rejected(rejection) from None
        try:
            event = decode_event(body)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"the webhook body is not a charge event: {exc}") from None
        target = FROM_CHARGE[event.data.status]
        order_id = event.data.idempotency_key
        async with db.transaction() as tx:
            if not await repository.claim_webhook(tx, event.id, event.type, now):
                raise webhook_replayed(event.id)
            await self._forget_old_webhooks(tx, now)
            moved = await repository.move(
                tx,
                order_id,
                target,
                now,
                gateway_reference=event.data.charge_id,
                decline_reason=event.data.decline_reason,
            )
            if moved is not None:
                await self._announce(tx, moved)
            current = moved
            if moved is None and target == "authorized":
                # An authorisation that did not apply: if the payment failed meanwhile, it is voided.
                current = await repository.get(order_id, tx)
        if moved is not None:
            self._count_move(target)
            if self._outbox_written is not None and target in _EVENTS:
                self._outbox_written()
            log.info("webhook_applied", event_id=event.id, type=event.type, order_id=order_id)
        elif current is not None and current.status == "failed" and target == "authorized":
            await self._void_orphan(order_id, event.charge())
        return WebhookReceipt(event_id=event.id, applied=moved is not None)

    async def _forget_old_webhooks(self, tx: Executor, now: float) -> None:
        """Drop remembered webhook ids once they are too old to pass the timestamp check.

        An id is kept at least twice the tolerance (any older delivery is rejected by its timestamp
        alone) and at most three times it: the sweep runs once per tolerance period, not on every
        delivery, which spares each webhook a DELETE.
        """
        tolerance = self.settings.webhook_tolerance_seconds
        if now - self._webhooks_forgotten_at < tolerance:
            return
        self._webhooks_forgotten_at = now
        await self._store[1].forget_webhooks(tx, now - 2 * tolerance)
