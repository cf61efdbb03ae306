"""The payments tables, in plain SQL through the database port (the same statements on SQLite and PostgreSQL)."""

from __future__ import annotations

from peakshop.contracts.payments import AuditRow, Payment, PaymentStatus
from peakshop.payments.domain import SCHEMA, sources_of
from peakshop.platform.db import Database, Executor, Row
from peakshop.platform.messages import Envelope
from peakshop.platform.outbox import update_announcing

_COLUMNS = "id, order_id, amount, currency, status, gateway_reference, decline_reason, updated_at"


def _payment(row: Row) -> Payment:
    return Payment(
        id=row["id"],
        order_id=row["order_id"],
        amount=int(row["amount"]),
        currency=row["currency"],
        status=row["status"],
        gateway_reference=row["gateway_reference"],
        decline_reason=row["decline_reason"],
        updated_at=float(row["updated_at"]),
    )


def _placeholders(start: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


class PaymentsRepository:
    """Reads run on the database; writes take the `Executor` of the caller's unit of work."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_first(self, tx: Executor, payment: Payment) -> Payment | None:
        """Add the order's payment as given; None when the order already has one (the unique key decides)."""
        row = await tx.fetchrow(
            f"INSERT INTO {SCHEMA}.payments "
            "(id, order_id, amount, currency, status, decline_reason, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $7) "
            f"ON CONFLICT (order_id) DO NOTHING RETURNING {_COLUMNS}",
            payment.id,
            payment.order_id,
            payment.amount,
            payment.currency,
            payment.status,
            payment.decline_reason,
            payment.updated_at,
        )
        return None if row is None else _payment(row)

    async def get(self, order_id: str, tx: Executor | None = None) -> Payment | None:
        sql = f"SELECT {_COLUMNS} FROM {SCHEMA}.payments WHERE order_id = $1"
        row = await (tx.fetchrow(sql, order_id) if tx is not None else self._db.fetchrow(sql, order_id))
        return None if row is None else _payment(row)

    async def move(
        self,
        tx: Executor,
        order_id: str,
        target: PaymentStatus,
        now: float,
        *,
        gateway_reference: str | None = None,
        decline_reason: str | None = None,
        event: Envelope | None = None,
    ) -> Payment | None:
        """Move the payment to `target` if its status allows it; None when it does not (or no longer).

        The status check is in the WHERE clause, so of two racing moves only one takes effect; an
        `event` goes to the outbox with the move, and only with it.
        """
        sources = sources_of(target)
        update = (
            f"UPDATE {SCHEMA}.payments SET status = $2, updated_at = $3, "
            "gateway_reference = COALESCE($4, gateway_reference), "
            "decline_reason = COALESCE($5, decline_reason) "
            f"WHERE order_id = $1 AND status IN ({_placeholders(6, len(sources))})"
        )
        args = (order_id, target, now, gateway_reference, decline_reason, *sources)
        if event is not None:
            row = await update_announcing(tx, SCHEMA, update, args, _COLUMNS, event)
        else:
            row = await tx.fetchrow(f"{update} RETURNING {_COLUMNS}", *args)
        return None if row is None else _payment(row)

    async def audit_rows(self) -> list[AuditRow]:
        rows = await self._db.fetch(
            f"SELECT order_id, status, amount FROM {SCHEMA}.payments ORDER BY order_id"
        )
        return [(row["order_id"], row["status"], int(row["amount"])) for row in rows]

    async def claim_webhook(self, tx: Executor, event_id: str, type_: str, now: float) -> bool:
        """Remember the event id; False when it was seen before (a replay or a second delivery)."""
        inserted = await tx.execute(
            f"INSERT INTO {SCHEMA}.webhook_events (event_id, type, received_at) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            event_id,
            type_,
            now,
        )
        return inserted == 1

    async def forget_webhooks(self, tx: Executor, received_before: float) -> int:
        return await tx.execute(
            f"DELETE FROM {SCHEMA}.webhook_events WHERE received_at < $1", received_before
        )
