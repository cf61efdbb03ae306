"""The transactional outbox, its relay, and the inbox.

A service that changes state and must tell others writes the event into its own `outbox` table in the
same transaction as the change: both commit or neither does. The relay publishes committed rows to the
bus and deletes them, so the table holds only what waits; a crash between publish and delete
re-publishes, so consumers run each handler inside the inbox, which records the message id in the same
transaction as the handler's own writes. The relay also prunes inbox ids older than the inbox's
retention, a window far longer than any redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import structlog

from peakshop.platform.bus import Bus, Handler
from peakshop.platform.db import Database, Executor, Row
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics

log = structlog.get_logger("peakshop.outbox")

# Seconds between a relay's polls when no commit wakes it sooner: every writer wakes its relay at
# once, so the poll only finds rows that a stopped replica left.
POLL_SECONDS = 1.0


async def add_to_outbox(tx: Executor, schema: str, topic: str, event: Any) -> Envelope:
    """Record `event` for publication; call inside the transaction that makes the change."""
    envelope = Envelope.wrap(topic, event)
    await write_to_outbox(tx, schema, envelope)
    return envelope


async def write_to_outbox(tx: Executor, schema: str, envelope: Envelope) -> None:
    """Record an envelope already made (its id is what consumers deduplicate on)."""
    await tx.execute(
        f"INSERT INTO {schema}.outbox (id, topic, payload, occurred_at) VALUES ($1, $2, $3, $4)",
        envelope.id,
        envelope.topic,
        envelope.payload,
        envelope.occurred_at,
    )


async def update_announcing(
    tx: Executor, schema: str, update: str, args: Sequence[Any], returning: str, event: Envelope
) -> Row | None:
    """Run a conditional UPDATE and, only if it changed a row, add `event` to the outbox.

    `update` is an `UPDATE … WHERE …` without RETURNING, numbered from `$1` over `args`. On
    PostgreSQL both writes go in one statement (the insert reads the update's RETURNING); on SQLite in
    two, inside the same transaction. Returns the changed row (`returning` columns) or None.
    """
    n = len(args)
    event_args = (event.id, event.topic, event.payload, event.occurred_at)
    if tx.dialect == "postgresql":
        return await tx.fetchrow(
            f"WITH changed AS ({update} RETURNING {returning}), "
            f"announced AS (INSERT INTO {schema}.outbox (id, topic, payload, occurred_at) "
            f"SELECT ${n + 1}, ${n + 2}, ${n + 3}::bytea, ${n + 4}::double precision FROM changed) "
            "SELECT * FROM changed",
            *args,
            *event_args,
        )
    row = await tx.fetchrow(f"{update} RETURNING {returning}", *args)
    if row is not None:
        await write_to_outbox(tx, schema, event)
    return row


class OutboxRelay:
    """Moves committed outbox rows to the bus, oldest first; several replicas may run at once."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        metrics: Metrics,
        *,
        interval: float = POLL_SECONDS,
        batch: int = 200,
        linger: float = 0.05,
        inbox_retention: float = 7 * 86_400,
        prune_every: float = 3_600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._bus = bus
        self._metrics = metrics
        self._interval = interval
        self._batch = batch
        self._linger = linger
        self._inbox_retention = inbox_retention
        self._prune_every = prune_every
        self._now = clock
        self._pruned_at = float("-inf")
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Publish soon, instead of at the next poll (call after a commit that added events)."""
        self._wakeup.set()

    async def publish_pending(self) -> int:
        schema = self._db.schema
        # SKIP LOCKED lets relays of several replicas share the backlog without publishing a row twice
        # at the same time; SQLite has one writer, so it needs no such clause.
        lock = " FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        async with self._db.transaction() as tx:
            # Taken and deleted in one statement; the delete commits only after the broker has
            # confirmed every row, and a failed publish rolls it back, so the rows wait for the next
            # round. One round trip fewer per batch than selecting, then deleting.
            rows = await tx.fetch(
                f"DELETE FROM {schema}.outbox WHERE id IN "
                f"(SELECT id FROM {schema}.outbox ORDER BY occurred_at, id LIMIT $1{lock}) "
                "RETURNING id, topic, payload, occurred_at",
                self._batch,
            )
            rows.sort(key=_oldest_first)  # RETURNING keeps no order
            # Confirms for a batch are awaited together: one broker round trip, not one per event.
            await asyncio.gather(
                *(self._bus.publish(Envelope(row[0], row[1], float(row[3]), bytes(row[2]))) for row in rows)
            )
        if rows:
            self._metrics.outbox_published.labels(schema).inc(len(rows))
        return len(rows)

    async def backlog(self) -> int:
        row = await self._db.fetchrow(f"SELECT count(*) FROM {self._db.schema}.outbox")
        return int(row[0]) if row else 0

    async def prune_inbox(self) -> int:
        """Forget the ids of messages handled longer ago than the inbox's retention."""
        async with self._db.transaction() as tx:
            pruned = await tx.execute(
                f"DELETE FROM {self._db.schema}.inbox WHERE handled_at < $1",
                self._now() - self._inbox_retention,
            )
        if pruned:
            log.info("inbox_pruned", schema=self._db.schema, ids=pruned)
        return pruned

    async def _prune_when_due(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at >= self._prune_every:
            self._pruned_at = now
            await self.prune_inbox()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._interval)
            if self._wakeup.is_set() and self._linger:
                # A round costs a transaction and a broker round trip whatever it carries: waiting
                # for company turns the many one-row rounds of a busy shop into a few of many rows
                # (benchmarks/outbox_relay.py: about 450 µs per event alone, 160 µs in tens).
                await asyncio.sleep(self._linger)
            self._wakeup.clear()
            try:
                while await self.publish_pending() == self._batch:
                    pass
                await self._prune_when_due()
            except Exception:
                # The bus or the database is away; the rows stay and the next round tries again.
                log.exception("outbox_relay_failed", schema=self._db.schema)
                await asyncio.sleep(min(5.0, self._interval * 10))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox:{self._db.schema}")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        # One last pass so that events of the final requests leave before the process does.
        with contextlib.suppress(Exception):
            await self.publish_pending()


def _oldest_first(row: Row) -> tuple[float, str]:
    return (float(row[3]), str(row[0]))


def inbox_handler(
    db: Database,
    consumer: str,
    event_type: type[Any],
    handle: Callable[[Executor, Any], Awaitable[None]],
) -> Handler:
    """Wrap `handle(tx, event)` so each message id is handled at most once per consumer."""
    schema = db.schema

    async def on_envelope(envelope: Envelope) -> None:
        event = msgspec.json.decode(envelope.payload, type=event_type)
        async with db.transaction() as tx:
            claimed = await tx.execute(
                f"INSERT INTO {schema}.inbox (message_id, consumer, handled_at) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                envelope.id,
                consumer,
                time.time(),
            )
            if claimed:
                await handle(tx, event)

    return on_envelope
