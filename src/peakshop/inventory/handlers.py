"""The inventory use cases: reserve, commit, release, expire, return, restock, read and audit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import structlog

from peakshop.contracts.inventory import (
    TOPIC_RESERVATION_EXPIRED,
    TOPIC_STOCK_RELEASED,
    TOPIC_STOCK_RETURNED,
    Reservation,
    ReservationExpired,
    ReservationLine,
    ReservationStatus,
    ReserveStock,
    SetStock,
    StockLevel,
    StockReleased,
    StockReturned,
)
from peakshop.inventory.domain import (
    SCHEMA,
    checked_sku_ids,
    checked_stock,
    checked_ttl,
    merged_lines,
    over_limit,
)
from peakshop.inventory.repository import InventoryRepository
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.db import Database, Executor, Row
from peakshop.platform.metrics import Metrics
from peakshop.platform.outbox import add_to_outbox
from peakshop.platform.problems import Conflict, NotFound, Unavailable

log = structlog.get_logger("peakshop.inventory")
Clock = Callable[[], float]


def sold_out(sku_ids: list[str]) -> Conflict:
    return Conflict(
        f"Not enough stock for {', '.join(sku_ids)}.", slug="sold-out", title="Sold out", sku_ids=sku_ids
    )


def purchase_limit(sku_ids: list[str]) -> Conflict:
    return Conflict(
        f"This would pass the per-customer limit for {', '.join(sku_ids)}.",
        slug="purchase-limit",
        title="Purchase limit reached",
        sku_ids=sku_ids,
    )


def unknown_skus(sku_ids: list[str]) -> NotFound:
    return NotFound(f"No stock is kept for {', '.join(sku_ids)}.", slug="unknown-sku", sku_ids=sku_ids)


def reservation_not_found(reservation_id: str) -> NotFound:
    return NotFound(
        f"There is no reservation {reservation_id}.",
        slug="reservation-not-found",
        title="Reservation not found",
        reservation_id=reservation_id,
    )


def reservation_mismatch(reservation_id: str) -> Conflict:
    return Conflict(
        f"Reservation {reservation_id} already exists with other lines or another customer.",
        slug="reservation-mismatch",
        title="Reservation id reused",
        reservation_id=reservation_id,
    )


def reservation_expired(reservation: Reservation) -> Conflict:
    return Conflict(
        f"Reservation {reservation.id} is {reservation.status} and its stock is no longer held.",
        slug="reservation-expired",
        title="Reservation expired",
        reservation_id=reservation.id,
        reservation_status=reservation.status,
    )


def reservation_not_sold(reservation: Reservation) -> Conflict:
    return Conflict(
        f"Reservation {reservation.id} is {reservation.status}: only sold units can be returned.",
        slug="reservation-not-sold",
        title="Reservation not sold",
        reservation_id=reservation.id,
        reservation_status=reservation.status,
    )


def stock_below_held(sku_id: str, held: int) -> Conflict:
    return Conflict(
        f"SKU {sku_id} has {held} units reserved or sold; its stock cannot be set below that.",
        slug="stock-below-held",
        title="Stock below units held",
        sku_id=sku_id,
        held=held,
    )


class InventoryHandlers:
    """The use cases over one database, attached when the service starts."""

    def __init__(
        self,
        settings: InventorySettings,
        metrics: Metrics | None = None,
        *,
        database: Database | None = None,
        clock: Clock = time.time,
        outbox_written: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._reservations = metrics.reservations if metrics is not None else None
        self._now = clock
        self._outbox_written = outbox_written
        self._db: Database | None = None
        self._repository: InventoryRepository | None = None
        if database is not None:
            self.attach(database)

    def attach(self, database: Database) -> None:
        self._db = database
        self._repository = InventoryRepository(database)

    def detach(self) -> None:
        self._db = None
        self._repository = None

    @property
    def _store(self) -> tuple[Database, InventoryRepository]:
        if self._db is None or self._repository is None:
            raise Unavailable("The inventory service is not started.", service="inventory")
        return self._db, self._repository

    def _count(self, outcome: str, amount: int = 1) -> None:
        if self._reservations is not None and amount:
            self._reservations.labels(outcome).inc(amount)

    def _wake_relay(self) -> None:
        if self._outbox_written is not None:
            self._outbox_written()

    # --- reserve ------------------------------------------------------------------------------------

    async def reserve(self, request: ReserveStock) -> Reservation:
        """Hold every line or none, in one transaction; the same id again returns the first answer."""
        lines = merged_lines(request)
        s = self.settings
        ttl = checked_ttl(request.ttl_seconds, s.reservation_ttl_seconds, s.max_reservation_ttl_seconds)
        db, repository = self._store
        now = self._now()
        reservation = Reservation(
            id=request.reservation_id,
            customer_id=request.customer_id,
            status="active",
            expires_at=now + ttl,
            lines=lines,
        )
        try:
            async with db.transaction() as tx:
                if not await repository.insert_reservation(tx, reservation, now):
                    return await self._replay(tx, repository, reservation)
                await self._take(tx, repository, reservation)
        except Conflict as conflict:
            if conflict.slug in ("sold-out", "purchase-limit"):
                self._count("rejected")
            raise
        self._count("reserved")
        return reservation

    async def _take(self, tx: Executor, repository: InventoryRepository, reservation: Reservation) -> None:
        lines = reservation.lines
        taken = await repository.take_stock(tx, reservation.id, lines)
        if len(taken) < len(lines):
            missing = sorted({line.sku_id for line in lines} - {sku.sku_id for sku in taken})
            known = await repository.known_skus(tx, missing)
            unknown = [sku_id for sku_id in missing if sku_id not in known]
            # Raising rolls the whole transaction back, the units already taken included.
            if unknown:
                raise unknown_skus(unknown)
            raise sold_out(missing)
        limits = {sku.sku_id: sku.per_customer_limit for sku in taken if sku.per_customer_limit is not None}
        if limits and reservation.customer_id is not None:
            # Runs after the stock rows are locked, so a customer's concurrent reservations of a
            # limited SKU are counted one after the other, never both against the same total.
            held = await repository.held_by_customer(
                tx, reservation.customer_id, reservation.id, list(limits)
            )
            refused = over_limit(lines, limits, held)
            if refused:
                raise purchase_limit(refused)

    async def _replay(self, tx: Executor, repository: InventoryRepository, asked: Reservation) -> Reservation:
        existing = await repository.reservation(tx, asked.id)
        if existing is None:  # the row was there a statement ago; only a concurrent purge could do this
            raise reservation_not_found(asked.id)
        if existing.lines != asked.lines or existing.customer_id != asked.customer_id:
            raise reservation_mismatch(asked.id)
        return existing

    # --- commit and release -------------------------------------------------------------------------

    async def commit(self, reservation_id: str) -> Reservation:
        """Turn an active reservation's units into sold ones; committing twice is not an error."""
        db, repository = self._store
        now = self._now()
        async with db.one_statement() as tx:
            done = await repository.commit(tx, reservation_id, now)
        if done is not None:
            row, moved = done
            self._count("committed")
            return _reservation(row, "committed", moved)
        current = await repository.reservation(db, reservation_id)
        if current is None:
            raise reservation_not_found(reservation_id)
        if current.status == "committed":
            return current
        # Released, expired, or active past its expiry (the sweeper has not reached it yet): its units
        # may already be someone else's, so the order must fail or reserve again.
        raise reservation_expired(current)

    async def release(self, reservation_id: str) -> Reservation:
        """Give an active reservation's units back; a committed one is left as it is and returned."""
        released, current = await self._move(
            reservation_id,
            "active",
            "released",
            ("reserved", "available"),
            TOPIC_STOCK_RELEASED,
            StockReleased,
        )
        if released is not None:
            return released
        if current is None:
            raise reservation_not_found(reservation_id)
        if current.status == "committed":
            log.info("release_of_committed_reservation_ignored", reservation_id=reservation_id)
        return current

    async def return_sold(self, reservation_id: str) -> Reservation:
        """Put a committed reservation's units back on sale (sold → available); returning twice is not
        an error.

        For an order that failed after its units were sold: the provider cancelled the authorisation
        between the sale and the capture. Without this the units would stay sold to nobody.
        """
        returned, current = await self._move(
            reservation_id,
            "committed",
            "returned",
            ("sold", "available"),
            TOPIC_STOCK_RETURNED,
            StockReturned,
        )
        if returned is not None:
            log.warning("sold_units_returned", reservation_id=reservation_id, lines=len(returned.lines))
            return returned
        if current is None:
            raise reservation_not_found(reservation_id)
        if current.status != "returned":
            raise reservation_not_sold(current)
        return current

    async def _move(
        self,
        reservation_id: str,
        source: ReservationStatus,
        target: ReservationStatus,
        units: tuple[str, str],
        topic: str,
        event: type[StockReleased | StockReturned],
    ) -> tuple[Reservation | None, Reservation | None]:
        """Move a reservation from `source` to `target` and its units between two counts (`units`), and
        announce it, in one transaction. Returns (the moved reservation, None), or, when it was not in
        `source`, (None, the reservation as it is, None if there is none)."""
        db, repository = self._store
        now = self._now()
        async with db.transaction() as tx:
            row = await repository.change_status(tx, reservation_id, target, now, source=source)
            if row is None:
                return None, await repository.reservation(tx, reservation_id)
            moved = await repository.move_units(tx, [reservation_id], *units)
            await add_to_outbox(tx, SCHEMA, topic, event(reservation_id, moved))
        self._count(target)
        self._wake_relay()
        return _reservation(row, target, moved), None

    async def expire_due(self, now: float | None = None) -> list[str]:
        """Expire every active reservation due by `now`, a batch per transaction; returns their ids."""
        db, repository = self._store
        at = self._now() if now is None else now
        batch = self.settings.sweep_batch_size
        expired: list[str] = []
        while True:
            async with db.transaction() as tx:
                ids = await repository.expire_due(tx, at, batch)
                if ids:
                    await repository.move_units(tx, ids, "reserved", "available")
                    for reservation_id in ids:
                        await add_to_outbox(
                            tx, SCHEMA, TOPIC_RESERVATION_EXPIRED, ReservationExpired(reservation_id)
                        )
            expired += ids
            if len(ids) < batch:
                break
        if expired:
            self._count("expired", len(expired))
            self._wake_relay()
            log.info("reservations_expired", count=len(expired))
        return expired

    # --- reads and admin ----------------------------------------------------------------------------

    async def reservation(self, reservation_id: str) -> Reservation:
        db, repository = self._store
        found = await repository.reservation(db, reservation_id)
        if found is None:
            raise reservation_not_found(reservation_id)
        return found

    async def set_stock(self, command: SetStock) -> StockLevel:
        command = checked_stock(command)
        db, repository = self._store
        async with db.transaction() as tx:
            level = await repository.set_stock(tx, command)
            if level is None:
                current = await repository.level(tx, command.sku_id)
        if level is not None:
            return level
        held = 0 if current is None else current.reserved + current.sold
        raise stock_below_held(command.sku_id, held)

    async def stock(self, sku_ids: Iterable[str]) -> list[StockLevel]:
        """The levels of the SKUs asked for that exist, in SKU order."""
        wanted = checked_sku_ids(sku_ids)
        if not wanted:
            return []
        _, repository = self._store
        return await repository.levels(wanted)

    async def seed_stock(self, levels: Iterable[tuple[str, int]], batch: int = 5_000) -> int:
        """Give every listed SKU its initial stock unless it has some already; return how many were given."""
        db, repository = self._store
        count = 0
        chunk: list[tuple[str, int]] = []
        for level in levels:
            chunk.append(level)
            if len(chunk) == batch:
                async with db.transaction() as tx:
                    await repository.seed_levels(tx, chunk)
                count, chunk = count + len(chunk), []
        if chunk:
            async with db.transaction() as tx:
                await repository.seed_levels(tx, chunk)
            count += len(chunk)
        return count

    async def audit(self) -> list[str]:
        """Every broken stock invariant, one sentence each; empty when the books balance."""
        _, repository = self._store
        found = [problem for tally in await repository.tallies() for problem in tally.violations()]
        found += [
            f"{sku_id}: reservation lines name a SKU with no stock row"
            for sku_id in await repository.orphan_lines()
        ]
        return found


def _reservation(row: Row, status: ReservationStatus, lines: list[ReservationLine]) -> Reservation:
    """The reservation a status change returned, with the lines whose units it moved."""
    return Reservation(
        id=row["id"],
        customer_id=row["customer_id"],
        status=status,
        expires_at=float(row["expires_at"]),
        lines=lines,
    )
