"""The orders tables in plain SQL through the database port (the same statements on SQLite and PostgreSQL).

Every change of step is a conditional update (`WHERE step IN (...)`): of the saga and a reconciler
acting on the same attempt, the first to record a final step wins and the other sees it did not.
"""

from __future__ import annotations

import msgspec

from peakshop.contracts.orders import (
    CartOrderedTwiceFact,
    ConfirmedOrderFact,
    DuplicatedKeyFact,
    OrderLine,
    ShippingAddress,
    UnconfirmedOrderFact,
)
from peakshop.orders.domain import SCHEMA, Attempt, Step
from peakshop.platform.db import Database, Executor, Row
from peakshop.platform.messages import Envelope
from peakshop.platform.outbox import update_announcing

_COLUMNS = (
    "id, account_id, idempotency_key, request_fingerprint, cart_id, step, failure_reason, "
    "failure_problem, subtotal, total, currency, item_count, shipping_address, created_at, updated_at"
)
_LINE_COLUMNS = "sku_id, product_id, name, quantity, unit_price, line_total"
_decode_address = msgspec.json.Decoder(ShippingAddress).decode


def _attempt(row: Row) -> Attempt:
    return Attempt(
        id=row["id"],
        account_id=row["account_id"],
        idempotency_key=row["idempotency_key"],
        fingerprint=row["request_fingerprint"],
        cart_id=row["cart_id"],
        step=row["step"],
        failure_reason=row["failure_reason"],
        failure_problem=row["failure_problem"],
        subtotal=int(row["subtotal"]),
        total=int(row["total"]),
        currency=row["currency"],
        item_count=int(row["item_count"]),
        shipping_address=_decode_address(row["shipping_address"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _line(row: Row) -> OrderLine:
    return OrderLine(
        sku_id=row["sku_id"],
        product_id=row["product_id"],
        name=row["name"],
        quantity=int(row["quantity"]),
        unit_price=int(row["unit_price"]),
        line_total=int(row["line_total"]),
    )


def _placeholders(start: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


# The types of (position, sku_id, product_id, name, quantity, unit_price, line_total): PostgreSQL types
# a VALUES list from its parameters, which are text unless cast.
_LINE_TYPES = ("int", "text", "text", "text", "int", "bigint", "bigint")


def _line_values(lines: list[OrderLine], start: int, typed: bool) -> tuple[str, list[object]]:
    """A multi-row VALUES list of (position, sku_id, ...), numbered from `$start`, and its arguments."""
    width = len(_LINE_TYPES)

    def row(first: int) -> str:
        cells = [f"${first + k}" + (f"::{_LINE_TYPES[k]}" if typed else "") for k in range(width)]
        return "(" + ", ".join(cells) + ")"

    rows = ", ".join(row(start + i * width) for i in range(len(lines)))
    args: list[object] = []
    for position, line in enumerate(lines):
        args += [
            position,
            line.sku_id,
            line.product_id,
            line.name,
            line.quantity,
            line.unit_price,
            line.line_total,
        ]
    return rows, args


_UNFINISHED_IN = "step IN ('started', 'reserved', 'authorized')"
# An order that holds its cart: the predicate of the unique index `orders_one_live_per_cart`.
_LIVE = "status <> 'failed'"


class OrdersRepository:
    """Reads run on the database; writes take the `Executor` of the caller's unit of work."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pg = db.dialect == "postgresql"

    # --- the checkout -----------------------------------------------------------------------------

    async def insert_attempt(self, tx: Executor, attempt: Attempt, lines: list[OrderLine]) -> bool:
        """Record the attempt with its lines; False when its account already used the key, or when
        its cart already has an order that did not fail (`by_key` and `live_order_of_cart` tell which).

        PostgreSQL does both in one statement (the lines are inserted from the attempt the CTE
        returned, so a conflict inserts none); SQLite, which has no writing CTEs, takes two.
        """
        attempt_args = [
            attempt.id,
            attempt.account_id,
            attempt.idempotency_key,
            attempt.fingerprint,
            attempt.cart_id,
            attempt.step,
            attempt.subtotal,
            attempt.total,
            attempt.currency,
            attempt.item_count,
            msgspec.json.encode(attempt.shipping_address).decode(),
            attempt.created_at,
        ]
        insert_attempt = (
            f"INSERT INTO {SCHEMA}.orders (status, {_COLUMNS}) "
            "VALUES ('pending', $1, $2, $3, $4, $5, $6, NULL, NULL, $7, $8, $9, $10, $11, $12, $12) "
            "ON CONFLICT DO NOTHING RETURNING id"
        )
        if self._pg:
            values, line_args = _line_values(lines, start=len(attempt_args) + 1, typed=True)
            inserted = await tx.execute(
                f"WITH attempt AS ({insert_attempt}) "
                f"INSERT INTO {SCHEMA}.order_lines (order_id, position, {_LINE_COLUMNS}) "
                f"SELECT attempt.id, v.* FROM attempt, (VALUES {values}) "
                "AS v(position, sku_id, product_id, name, quantity, unit_price, line_total)",
                *attempt_args,
                *line_args,
            )
            return inserted > 0
        if await tx.fetchrow(insert_attempt, *attempt_args) is None:
            return False
        values, line_args = _line_values(lines, start=2, typed=False)
        await tx.execute(
            f"INSERT INTO {SCHEMA}.order_lines (order_id, position, {_LINE_COLUMNS}) "
            f"SELECT $1, v.* FROM (VALUES {values}) AS v",
            attempt.id,
            *line_args,
        )
        return True

    async def move(
        self, tx: Executor, order_id: str, target: Step, now: float, sources: tuple[Step, ...]
    ) -> bool:
        """Move an attempt on to an unfinished step if it is at one of `sources`."""
        changed = await tx.execute(
            f"UPDATE {SCHEMA}.orders SET step = $2, updated_at = $3 "
            f"WHERE id = $1 AND step IN ({_placeholders(4, len(sources))})",
            order_id,
            target,
            now,
            *sources,
        )
        return changed == 1

    async def confirm(self, tx: Executor, order_id: str, now: float, event: Envelope) -> bool:
        """Confirm an unfinished attempt and add `event` to the outbox, or do neither."""
        return await self._finish_with_event(
            tx,
            "step = 'confirmed', status = 'confirmed', updated_at = $2",
            [order_id, now],
            event,
        )

    async def fail(
        self, tx: Executor, order_id: str, now: float, reason: str, problem: bytes, event: Envelope
    ) -> bool:
        """Fail an unfinished attempt, keeping its problem, and add `event` to the outbox, or neither."""
        return await self._finish_with_event(
            tx,
            "step = 'failed', status = 'failed', updated_at = $2, failure_reason = $3, failure_problem = $4",
            [order_id, now, reason, problem.decode()],
            event,
        )

    async def _finish_with_event(
        self, tx: Executor, changes: str, args: list[object], event: Envelope
    ) -> bool:
        # The WHERE clause lets only the first to finish an attempt finish it; its event goes with it.
        update = f"UPDATE {SCHEMA}.orders SET {changes} WHERE id = $1 AND {_UNFINISHED_IN}"
        return await update_announcing(tx, SCHEMA, update, args, "id", event) is not None

    # --- reads ------------------------------------------------------------------------------------

    async def by_key(self, account_id: str, idempotency_key: str) -> Attempt | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.orders WHERE account_id = $1 AND idempotency_key = $2",
            account_id,
            idempotency_key,
        )
        return None if row is None else _attempt(row)

    async def live_order_of_cart(self, cart_id: str) -> Attempt | None:
        """The cart's order that is pending or confirmed (at most one: `orders_one_live_per_cart`)."""
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.orders WHERE cart_id = $1 AND {_LIVE}", cart_id
        )
        return None if row is None else _attempt(row)

    async def get(self, order_id: str) -> Attempt | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM {SCHEMA}.orders WHERE id = $1", order_id)
        return None if row is None else _attempt(row)

    async def lines(self, order_id: str) -> list[OrderLine]:
        rows = await self._db.fetch(
            f"SELECT {_LINE_COLUMNS} FROM {SCHEMA}.order_lines WHERE order_id = $1 ORDER BY position",
            order_id,
        )
        return [_line(row) for row in rows]

    async def history(self, account_id: str, limit: int, before: tuple[float, str] | None) -> list[Attempt]:
        """An account's attempts newest first, after the (created_at, id) of the previous page's last."""
        if before is None:
            rows = await self._db.fetch(
                f"SELECT {_COLUMNS} FROM {SCHEMA}.orders WHERE account_id = $1 "
                "ORDER BY created_at DESC, id DESC LIMIT $2",
                account_id,
                limit,
            )
        else:
            rows = await self._db.fetch(
                f"SELECT {_COLUMNS} FROM {SCHEMA}.orders WHERE account_id = $1 "
                "AND (created_at < $3 OR (created_at = $3 AND id < $4)) "
                "ORDER BY created_at DESC, id DESC LIMIT $2",
                account_id,
                limit,
                before[0],
                before[1],
            )
        return [_attempt(row) for row in rows]

    # --- the reconciler ---------------------------------------------------------------------------

    async def claim_unfinished(
        self, tx: Executor, untouched_since: float, now: float, lease_until: float, limit: int
    ) -> list[Attempt]:
        """Lease unfinished attempts untouched since `untouched_since` to this reconciler, oldest first.

        No other reconciler takes a leased attempt before `lease_until`, and SKIP LOCKED lets replicas
        claim disjoint batches at the same moment instead of queueing on the same rows.
        """
        lock = " FOR UPDATE SKIP LOCKED" if self._pg else ""
        free = "(claimed_until IS NULL OR claimed_until < $2)"
        rows = await tx.fetch(
            f"UPDATE {SCHEMA}.orders SET claimed_until = $3 WHERE id IN ("
            f"SELECT id FROM {SCHEMA}.orders WHERE {_UNFINISHED_IN} AND updated_at < $1 AND {free} "
            f"ORDER BY updated_at, id LIMIT $4{lock}) AND {_UNFINISHED_IN} AND {free} RETURNING {_COLUMNS}",
            untouched_since,
            now,
            lease_until,
            limit,
        )
        return sorted((_attempt(row) for row in rows), key=lambda a: (a.created_at, a.id))

    async def retry_claim_at(self, order_id: str, when: float) -> None:
        """Shorten the lease of an attempt a pass could not settle, so the next try comes sooner."""
        async with self._db.transaction() as tx:
            await tx.execute(f"UPDATE {SCHEMA}.orders SET claimed_until = $1 WHERE id = $2", when, order_id)

    # --- the audit --------------------------------------------------------------------------------

    async def outcome_facts(self) -> tuple[list[ConfirmedOrderFact], list[UnconfirmedOrderFact]]:
        """Every order: the confirmed ones with their total and units per SKU, the others with their step.

        One statement, so one snapshot: an order confirmed while the audit reads is in one list, never
        in both or neither.
        """
        rows = await self._db.fetch(
            f"SELECT o.id, o.step, o.updated_at, o.total, o.currency, l.sku_id, sum(l.quantity) AS units "
            f"FROM {SCHEMA}.orders o LEFT JOIN {SCHEMA}.order_lines l ON l.order_id = o.id "
            "GROUP BY o.id, o.step, o.updated_at, o.total, o.currency, l.sku_id ORDER BY o.id, l.sku_id"
        )
        confirmed: list[ConfirmedOrderFact] = []
        unconfirmed: list[UnconfirmedOrderFact] = []
        for row in rows:
            if row["step"] != "confirmed":
                if not unconfirmed or unconfirmed[-1].order_id != row["id"]:
                    unconfirmed.append(UnconfirmedOrderFact(row["id"], row["step"], float(row["updated_at"])))
                continue
            if not confirmed or confirmed[-1].order_id != row["id"]:
                confirmed.append(ConfirmedOrderFact(row["id"], int(row["total"]), row["currency"], {}))
            if row["sku_id"] is not None:
                confirmed[-1].units[row["sku_id"]] = int(row["units"])
        return confirmed, unconfirmed

    async def duplicated_keys(self) -> list[DuplicatedKeyFact]:
        rows = await self._db.fetch(
            f"SELECT account_id, idempotency_key, count(*) AS orders FROM {SCHEMA}.orders "
            "GROUP BY account_id, idempotency_key HAVING count(*) > 1 ORDER BY account_id, idempotency_key"
        )
        return [
            DuplicatedKeyFact(row["account_id"], row["idempotency_key"], int(row["orders"])) for row in rows
        ]

    async def carts_ordered_twice(self) -> list[CartOrderedTwiceFact]:
        rows = await self._db.fetch(
            f"SELECT cart_id, id FROM {SCHEMA}.orders WHERE cart_id IN ("
            f"SELECT cart_id FROM {SCHEMA}.orders WHERE {_LIVE} "
            f"GROUP BY cart_id HAVING count(*) > 1) AND {_LIVE} ORDER BY cart_id, id"
        )
        by_cart: dict[str, list[str]] = {}
        for row in rows:
            by_cart.setdefault(row["cart_id"], []).append(row["id"])
        return [CartOrderedTwiceFact(cart_id, ids) for cart_id, ids in by_cart.items()]
