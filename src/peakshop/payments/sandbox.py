"""The built-in sandbox provider: a `PaymentGateway` that behaves like a real one.

It keeps its own state in `payments.sandbox_*` tables, so charges survive restarts and every replica
sees the same ones. Authorisations are idempotent by key (same key and request → the same charge,
never a second; same key and another amount → a conflict); captures, voids and refunds follow the
charge's state and are idempotent too. Each change writes a webhook event in the same transaction,
which `WebhookDeliverer` later signs and delivers.

Tokens: `tok_visa` authorises (subject to the configured rates), `tok_decline` is declined with
`card_declined`, `tok_timeout` records the charge and then times out (the money is held although the
caller never hears so), `tok_error` fails before recording anything; any other token is declined with
`invalid_token`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec
import structlog

from peakshop.payments.domain import SCHEMA
from peakshop.payments.gateway import (
    ChargeStatus,
    GatewayCharge,
    GatewayConflict,
    GatewayDeclined,
    GatewayError,
    GatewayTimeout,
)
from peakshop.payments.settings import PaymentsSettings
from peakshop.payments.webhooks import ChargeData, EventType, WebhookEvent, signature_header
from peakshop.platform.db import Database, Executor, Row
from peakshop.platform.problems import Problem

log = structlog.get_logger("peakshop.payments.sandbox")

Clock = Callable[[], float]
Outcome = Literal["authorized", "declined", "timeout", "error"]
Operation = Literal["capture", "void", "refund"]

TOKENS: dict[str, Outcome] = {
    "tok_visa": "authorized",
    "tok_decline": "declined",
    "tok_timeout": "timeout",
    "tok_error": "error",
}

# operation → (the status it requires, the status it leaves, the webhook it sends)
_RULES: dict[Operation, tuple[ChargeStatus, ChargeStatus, EventType]] = {
    "capture": ("authorized", "captured", "charge.captured"),
    "void": ("authorized", "voided", "charge.voided"),
    "refund": ("captured", "refunded", "charge.refunded"),
}

_CHARGE_COLUMNS = "id, idempotency_key, amount, currency, status, decline_reason"


def _charge(row: Row) -> GatewayCharge:
    return GatewayCharge(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        amount=int(row["amount"]),
        currency=row["currency"],
        status=row["status"],
        decline_reason=row["decline_reason"],
    )


class SandboxGateway:
    """The sandbox provider over the payments database (its own tables, never the service's)."""

    def __init__(
        self,
        db: Database,
        settings: PaymentsSettings,
        *,
        clock: Clock = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._db = db
        self._settings = settings
        self._now = clock
        self._sleep = sleep
        # Separate streams, so that changing the latency does not change which charges fail.
        self._outcomes = random.Random(settings.sandbox_seed)
        self._latencies = random.Random(settings.sandbox_seed + 1)

    async def _network(self) -> None:
        """The round trip to the provider: the configured mean latency, give or take the jitter."""
        s = self._settings
        if s.sandbox_latency_ms <= 0 and s.sandbox_latency_jitter_ms <= 0:
            return
        jitter = self._latencies.uniform(-s.sandbox_latency_jitter_ms, s.sandbox_latency_jitter_ms)
        await self._sleep(max(0.0, s.sandbox_latency_ms + jitter) / 1000)

    def _outcome(self, token: str) -> tuple[Outcome, str | None]:
        outcome = TOKENS.get(token)
        if outcome is None:
            return "declined", "invalid_token"
        if outcome == "declined":
            return "declined", "card_declined"
        if outcome != "authorized":
            return outcome, None
        s = self._settings
        draw = self._outcomes.random()
        if draw < s.sandbox_error_rate:
            return "error", None
        if draw < s.sandbox_error_rate + s.sandbox_timeout_rate:
            return "timeout", None
        if draw < s.sandbox_error_rate + s.sandbox_timeout_rate + s.sandbox_decline_rate:
            return "declined", "card_declined"
        return "authorized", None

    async def authorize(self, idempotency_key: str, amount: int, currency: str, token: str) -> GatewayCharge:
        await self._network()
        outcome, reason = self._outcome(token)
        if outcome == "error":
            raise GatewayError("the sandbox provider failed before recording the charge")
        status: ChargeStatus = "declined" if outcome == "declined" else "authorized"
        now = self._now()
        async with self._db.transaction() as tx:
            row = await tx.fetchrow(
                f"INSERT INTO {SCHEMA}.sandbox_charges "
                "(id, idempotency_key, amount, currency, status, decline_reason, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $7) "
                f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_CHARGE_COLUMNS}",
                "ch_" + uuid.uuid4().hex,
                idempotency_key,
                amount,
                currency,
                status,
                reason,
                now,
            )
            created = row is not None
            if row is None:
                row = await tx.fetchrow(
                    f"SELECT {_CHARGE_COLUMNS} FROM {SCHEMA}.sandbox_charges WHERE idempotency_key = $1",
                    idempotency_key,
                )
                if row is None:  # pragma: no cover - the conflicting row cannot vanish: charges are kept
                    raise GatewayError("the sandbox lost a charge")
            charge = _charge(row)
            if created:
                await self._add_event(
                    tx, "charge.declined" if status == "declined" else "charge.authorized", charge, now
                )
        if not created and (charge.amount, charge.currency) != (amount, currency):
            raise GatewayConflict("idempotency_key_reused")
        if created and outcome == "timeout":
            # The charge is committed: the money is held, but the caller never hears so.
            raise GatewayTimeout("the sandbox provider did not answer in time")
        if charge.status == "declined":
            raise GatewayDeclined(charge.decline_reason or "card_declined", charge.id)
        return charge

    async def capture(self, charge_id: str, idempotency_key: str) -> GatewayCharge:
        return await self._change("capture", charge_id, idempotency_key)

    async def void(self, charge_id: str, idempotency_key: str) -> GatewayCharge:
        return await self._change("void", charge_id, idempotency_key)

    async def refund(self, charge_id: str, idempotency_key: str) -> GatewayCharge:
        return await self._change("refund", charge_id, idempotency_key)

    async def find(self, idempotency_key: str) -> GatewayCharge | None:
        await self._network()
        row = await self._db.fetchrow(
            f"SELECT {_CHARGE_COLUMNS} FROM {SCHEMA}.sandbox_charges WHERE idempotency_key = $1",
            idempotency_key,
        )
        return None if row is None else _charge(row)

    async def _change(self, operation: Operation, charge_id: str, idempotency_key: str) -> GatewayCharge:
        await self._network()
        required, target, event_type = _RULES[operation]
        now = self._now()
        lock = " FOR UPDATE" if self._db.dialect == "postgresql" else ""
        async with self._db.transaction() as tx:
            first_use = await tx.execute(
                f"INSERT INTO {SCHEMA}.sandbox_requests (idempotency_key, operation, charge_id, created_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                idempotency_key,
                operation,
                charge_id,
                now,
            )
            if not first_use:
                earlier = await tx.fetchrow(
                    f"SELECT operation, charge_id FROM {SCHEMA}.sandbox_requests WHERE idempotency_key = $1",
                    idempotency_key,
                )
                if earlier is None or (earlier["operation"], earlier["charge_id"]) != (operation, charge_id):
                    raise GatewayConflict("idempotency_key_reused")
            row = await tx.fetchrow(
                f"SELECT {_CHARGE_COLUMNS} FROM {SCHEMA}.sandbox_charges WHERE id = $1{lock}", charge_id
            )
            if row is None:
                raise GatewayConflict("no_such_charge")
            charge = _charge(row)
            if charge.status == target:
                return charge
            if charge.status != required:
                raise GatewayConflict(f"charge_{charge.status}")
            await tx.execute(
                f"UPDATE {SCHEMA}.sandbox_charges SET status = $1, updated_at = $2 WHERE id = $3",
                target,
                now,
                charge_id,
            )
            charge = GatewayCharge(
                charge.id, charge.idempotency_key, charge.amount, charge.currency, target, None
            )
            await self._add_event(tx, event_type, charge, now)
        return charge

    async def _add_event(self, tx: Executor, type_: EventType, charge: GatewayCharge, now: float) -> None:
        event = WebhookEvent(
            id="evt_" + uuid.uuid4().hex,
            type=type_,
            created=int(now),
            data=ChargeData(
                charge_id=charge.id,
                idempotency_key=charge.idempotency_key,
                amount=charge.amount,
                currency=charge.currency,
                status=charge.status,
                decline_reason=charge.decline_reason,
            ),
        )
        await tx.execute(
            f"INSERT INTO {SCHEMA}.sandbox_events (id, type, body, created_at) VALUES ($1, $2, $3, $4)",
            event.id,
            event.type,
            _encode(event),
            now,
        )

    async def undelivered_events(self, limit: int = 100) -> list[tuple[str, bytes]]:
        rows = await self._db.fetch(
            f"SELECT id, body FROM {SCHEMA}.sandbox_events WHERE delivered_at IS NULL "
            "ORDER BY created_at, id LIMIT $1",
            limit,
        )
        return [(row["id"], bytes(row["body"])) for row in rows]

    async def mark_delivered(self, event_ids: list[str]) -> None:
        if not event_ids:
            return
        now = self._now()
        async with self._db.transaction() as tx:
            await tx.executemany(
                f"UPDATE {SCHEMA}.sandbox_events SET delivered_at = $1 WHERE id = $2",
                [(now, event_id) for event_id in event_ids],
            )


_encode = msgspec.json.Encoder().encode


Deliver = Callable[[bytes, str], Awaitable[object]]


class WebhookDeliverer:
    """Signs the sandbox's pending events and hands them to the receiver, as a provider POSTs them.

    A 409 answer means the receiver has the event already (another replica delivered it), so it
    counts as delivered; any other failure leaves the event for the next round.
    """

    def __init__(
        self,
        sandbox: SandboxGateway,
        secret: str,
        deliver: Deliver,
        *,
        interval: float = 0.5,
        clock: Clock = time.time,
    ) -> None:
        self._sandbox = sandbox
        self._secret = secret
        self._deliver = deliver
        self._interval = interval
        self._now = clock
        self._task: asyncio.Task[None] | None = None

    async def deliver_pending(self) -> int:
        delivered: list[str] = []
        try:
            for event_id, body in await self._sandbox.undelivered_events():
                header = signature_header(self._secret, int(self._now()), body)
                try:
                    await self._deliver(body, header)
                except Problem as problem:
                    if problem.status != 409:
                        log.warning("webhook_rejected", event_id=event_id, problem=problem.slug)
                        break
                delivered.append(event_id)
        finally:
            await self._sandbox.mark_delivered(delivered)
        return len(delivered)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.deliver_pending()
            except Exception:
                log.exception("webhook_delivery_failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="payments:sandbox-webhooks")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
