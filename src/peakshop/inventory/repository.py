"""The inventory tables in plain SQL through the database port.

Lists of values travel as one parameter each: a PostgreSQL array (`unnest`, `= ANY`) or a JSON array
on SQLite (`json_each`), so that a reservation of any number of lines costs the same few statements.
PostgreSQL locks stock rows in SKU order (`ORDER BY sku_id ... FOR UPDATE` in a materialised CTE,
which the update then joins) before changing them; SQLite's `BEGIN IMMEDIATE` already holds its one
write lock, so it runs the same updates without the CTE.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from peakshop.contracts.inventory import Reservation, ReservationLine, SetStock, StockLevel
from peakshop.inventory.domain import SCHEMA, LimitBreach, SkuTally, SoldReservation
from peakshop.platform.db import Database, Dialect, Executor, Row

_STOCK_COLUMNS = "sku_id, initial, available, reserved, sold, per_customer_limit"


def _stock_level(row: Row) -> StockLevel:
    return StockLevel(
        sku_id=row["sku_id"],
        initial=int(row["initial"]),
        available=int(row["available"]),
        reserved=int(row["reserved"]),
        sold=int(row["sold"]),
        per_customer_limit=None if row["per_customer_limit"] is None else int(row["per_customer_limit"]),
    )


@dataclass(frozen=True)
class ReservedSku:
    """A stock row the conditional update took units from."""

    sku_id: str
    per_customer_limit: int | None


# A customer's units of a SKU are those of their active and committed reservations: what a
# per-customer limit counts when a reservation is checked, and what the audit holds against it.
HELD = "r.status IN ('active', 'committed')"
# The moves of units between a SKU's counts that a reservation's status change makes.
MOVES = (("reserved", "available"), ("reserved", "sold"), ("sold", "available"))


class _Sql:
    """The statements whose text differs by dialect, built once per repository."""

    def __init__(self, dialect: Dialect) -> None:
        s = SCHEMA
        pg = dialect == "postgresql"

        def lines(skus: str, quantities: str) -> str:
            # A table of (sku_id, quantity) from two parallel list parameters.
            if pg:
                return f"unnest({skus}::text[], {quantities}::int[]) AS v(sku_id, quantity)"
            return (
                f"(SELECT k.value AS sku_id, q.value AS quantity FROM json_each({skus}) k "
                f"JOIN json_each({quantities}) q ON q.key = k.key) AS v"
            )

        def among(column: str, ids: str) -> str:
            return (
                f"{column} = ANY({ids}::text[])"
                if pg
                else f"{column} IN (SELECT value FROM json_each({ids}))"
            )

        self.among = among
        # Take units from every requested SKU that has enough; the caller compares the rows returned
        # with the lines asked for and rolls back on any shortfall.
        if pg:
            # One statement on PostgreSQL: lock in SKU order, take, and write the reservation's lines
            # for what was taken. A shortfall makes the caller roll the whole transaction back.
            self.take = (
                f"WITH wanted AS MATERIALIZED (SELECT s.sku_id, v.quantity FROM {s}.stock s "
                f"JOIN {lines('$1', '$2')} ON v.sku_id = s.sku_id ORDER BY s.sku_id FOR UPDATE OF s), "
                f"taken AS (UPDATE {s}.stock s SET available = s.available - w.quantity, "
                "reserved = s.reserved + w.quantity "
                "FROM wanted w WHERE s.sku_id = w.sku_id AND s.available >= w.quantity "
                "RETURNING s.sku_id, s.per_customer_limit, w.quantity), "
                f"held AS (INSERT INTO {s}.reservation_lines (reservation_id, sku_id, quantity, "
                "per_customer_limit) SELECT $3, t.sku_id, t.quantity, t.per_customer_limit FROM taken t) "
                "SELECT sku_id, per_customer_limit FROM taken"
            )
        else:
            self.take = (
                f"UPDATE {s}.stock AS s SET available = s.available - v.quantity, "
                "reserved = s.reserved + v.quantity "
                f"FROM {lines('$1', '$2')} WHERE s.sku_id = v.sku_id AND s.available >= v.quantity "
                # SQLite's RETURNING names the target table's columns bare, never through its alias.
                "RETURNING sku_id, per_customer_limit"
            )
        # Each line keeps the limit in force as it was taken, read from the stock row the same
        # transaction has just changed (and so holds).
        self.insert_lines = (
            f"INSERT INTO {s}.reservation_lines (reservation_id, sku_id, quantity, per_customer_limit) "
            f"SELECT $1, v.sku_id, v.quantity, s.per_customer_limit FROM {lines('$2', '$3')} "
            f"JOIN {s}.stock s ON s.sku_id = v.sku_id"
        )
        self.known_skus = f"SELECT sku_id FROM {s}.stock WHERE {among('sku_id', '$1')}"
        self.held_by_customer = (
            f"SELECT l.sku_id, sum(l.quantity) AS quantity FROM {s}.reservation_lines l "
            f"JOIN {s}.reservations r ON r.id = l.reservation_id "
            f"WHERE r.customer_id = $1 AND {HELD} AND r.id <> $2 "
            f"AND {among('l.sku_id', '$3')} GROUP BY l.sku_id"
        )
        # Moves the units of the given reservations between counts: out of `reserved` into
        # `available` (release, expiry) or `sold` (commit), or out of `sold` back into `available`
        # (return). The reservations' status has already changed in the same transaction, which is
        # what stops the units from being moved twice.
        freed = (
            f"SELECT sku_id, sum(quantity) AS quantity FROM {s}.reservation_lines "
            f"WHERE {among('reservation_id', '$1')} GROUP BY sku_id"
        )
        self.move: dict[tuple[str, str], str] = {}
        for source, target in MOVES:
            if pg:
                self.move[source, target] = (
                    f"WITH freed AS ({freed}), locked AS MATERIALIZED (SELECT s.sku_id, f.quantity "
                    f"FROM {s}.stock s JOIN freed f ON f.sku_id = s.sku_id ORDER BY s.sku_id FOR UPDATE OF s) "
                    f"UPDATE {s}.stock s SET {source} = s.{source} - k.quantity, "
                    f"{target} = s.{target} + k.quantity FROM locked k WHERE s.sku_id = k.sku_id "
                    "RETURNING s.sku_id, k.quantity"
                )
            else:
                # SQLite's RETURNING may not name the FROM clause, but a subquery there may read the
                # lines again; the target table goes unaliased so that the subquery can name it.
                self.move[source, target] = (
                    f"UPDATE {s}.stock SET {source} = {source} - f.quantity, "
                    f"{target} = {target} + f.quantity FROM ({freed}) AS f WHERE stock.sku_id = f.sku_id "
                    f"RETURNING sku_id, (SELECT sum(l.quantity) FROM {s}.reservation_lines l "
                    f"WHERE {among('l.reservation_id', '$1')} AND l.sku_id = stock.sku_id)"
                )
        if pg:
            # Commit in one statement on PostgreSQL: the status change, then the units of exactly
            # the reservation it changed, locked in SKU order like every other stock write.
            self.commit = (
                f"WITH changed AS (UPDATE {s}.reservations SET status = 'committed', updated_at = $2 "
                "WHERE id = $1 AND status = 'active' AND expires_at > $2 "
                "RETURNING id, customer_id, expires_at), "
                f"freed AS (SELECT l.sku_id, sum(l.quantity) AS quantity FROM {s}.reservation_lines l "
                "JOIN changed c ON c.id = l.reservation_id GROUP BY l.sku_id), "
                f"locked AS MATERIALIZED (SELECT s.sku_id, f.quantity FROM {s}.stock s "
                "JOIN freed f ON f.sku_id = s.sku_id ORDER BY s.sku_id FOR UPDATE OF s), "
                f"moved AS (UPDATE {s}.stock s SET reserved = s.reserved - k.quantity, "
                "sold = s.sold + k.quantity FROM locked k WHERE s.sku_id = k.sku_id "
                "RETURNING s.sku_id, k.quantity) "
                "SELECT c.id, c.customer_id, c.expires_at, m.sku_id, m.quantity FROM changed c JOIN moved m ON true"
            )
        lock = " FOR UPDATE SKIP LOCKED" if pg else ""
        # Replicas may sweep at once: SKIP LOCKED gives each its own batch instead of a queue.
        self.expire_due = (
            f"UPDATE {s}.reservations SET status = 'expired', updated_at = $1 "
            f"WHERE status = 'active' AND id IN (SELECT id FROM {s}.reservations "
            f"WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2{lock}) "
            "RETURNING id"
        )
        self.levels = f"SELECT {_STOCK_COLUMNS} FROM {s}.stock WHERE {among('sku_id', '$1')} ORDER BY sku_id"


class InventoryRepository:
    """Reads run on the database; writes take the `Executor` of the caller's unit of work."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pg = db.dialect == "postgresql"
        self._sql = _Sql(db.dialect)

    def _list(self, values: Sequence[Any]) -> Any:
        return list(values) if self._pg else json.dumps(list(values))

    # --- reserve ------------------------------------------------------------------------------------

    async def insert_reservation(self, tx: Executor, reservation: Reservation, now: float) -> bool:
        """Add the reservation's row; False when one with this id exists (the idempotent replay)."""
        inserted = await tx.execute(
            f"INSERT INTO {SCHEMA}.reservations (id, customer_id, status, expires_at, created_at, updated_at) "
            "VALUES ($1, $2, 'active', $3, $4, $4) ON CONFLICT (id) DO NOTHING",
            reservation.id,
            reservation.customer_id,
            reservation.expires_at,
            now,
        )
        return inserted == 1

    async def take_stock(
        self, tx: Executor, reservation_id: str, lines: Sequence[ReservationLine]
    ) -> list[ReservedSku]:
        """Move units from available to reserved for each line that can be met, and record the lines
        under the reservation; returns the SKUs taken (fewer than asked: roll back)."""
        sku_ids = self._list([line.sku_id for line in lines])
        quantities = self._list([line.quantity for line in lines])
        if self._pg:
            rows = await tx.fetch(self._sql.take, sku_ids, quantities, reservation_id)
        else:
            rows = await tx.fetch(self._sql.take, sku_ids, quantities)
            if len(rows) == len(lines):
                await self.insert_lines(tx, reservation_id, lines)
        return [ReservedSku(row[0], None if row[1] is None else int(row[1])) for row in rows]

    async def insert_lines(self, tx: Executor, reservation_id: str, lines: Sequence[ReservationLine]) -> None:
        await tx.execute(
            self._sql.insert_lines,
            reservation_id,
            self._list([line.sku_id for line in lines]),
            self._list([line.quantity for line in lines]),
        )

    async def known_skus(self, tx: Executor, sku_ids: Sequence[str]) -> set[str]:
        rows = await tx.fetch(self._sql.known_skus, self._list(sku_ids))
        return {row[0] for row in rows}

    async def held_by_customer(
        self, tx: Executor, customer_id: str, reservation_id: str, sku_ids: Sequence[str]
    ) -> dict[str, int]:
        """Units of these SKUs the customer holds in other active or committed reservations."""
        rows = await tx.fetch(self._sql.held_by_customer, customer_id, reservation_id, self._list(sku_ids))
        return {row[0]: int(row[1]) for row in rows}

    # --- status changes -----------------------------------------------------------------------------

    async def change_status(
        self,
        tx: Executor,
        reservation_id: str,
        status: str,
        now: float,
        *,
        source: str = "active",
        live_at: float | None = None,
    ) -> Row | None:
        """Move a reservation from `source` to `status`; None when it is not in `source` (or, with
        `live_at`, is due)."""
        due = " AND expires_at > $5" if live_at is not None else ""
        args: list[Any] = [reservation_id, status, now, source]
        if live_at is not None:
            args.append(live_at)
        return await tx.fetchrow(
            f"UPDATE {SCHEMA}.reservations SET status = $2, updated_at = $3 "
            f"WHERE id = $1 AND status = $4{due} RETURNING id, customer_id, expires_at",
            *args,
        )

    async def commit(
        self, tx: Executor, reservation_id: str, now: float
    ) -> tuple[Row, list[ReservationLine]] | None:
        """Active and not yet due → committed, its units reserved → sold; None when it was not so."""
        if self._pg:
            rows = await tx.fetch(self._sql.commit, reservation_id, now)
            if not rows:
                return None
            moved = sorted(
                (ReservationLine(r["sku_id"], int(r["quantity"])) for r in rows), key=lambda x: x.sku_id
            )
            return rows[0], moved
        row = await self.change_status(tx, reservation_id, "committed", now, live_at=now)
        if row is None:
            return None
        return row, await self.move_units(tx, [reservation_id], "reserved", "sold")

    async def move_units(
        self, tx: Executor, reservation_ids: Sequence[str], source: str, target: str
    ) -> list[ReservationLine]:
        """Move the reservations' units from `source` to `target`; returns the units per SKU moved."""
        rows = await tx.fetch(self._sql.move[source, target], self._list(reservation_ids))
        return sorted((ReservationLine(row[0], int(row[1])) for row in rows), key=lambda line: line.sku_id)

    async def expire_due(self, tx: Executor, now: float, batch: int) -> list[str]:
        rows = await tx.fetch(self._sql.expire_due, now, batch)
        return [row[0] for row in rows]

    # --- reads --------------------------------------------------------------------------------------

    async def reservation(self, executor: Executor | Database, reservation_id: str) -> Reservation | None:
        rows = await executor.fetch(
            f"SELECT r.id, r.customer_id, r.status, r.expires_at, l.sku_id, l.quantity "
            f"FROM {SCHEMA}.reservations r LEFT JOIN {SCHEMA}.reservation_lines l ON l.reservation_id = r.id "
            "WHERE r.id = $1 ORDER BY l.sku_id",
            reservation_id,
        )
        if not rows:
            return None
        first = rows[0]
        return Reservation(
            id=first["id"],
            customer_id=first["customer_id"],
            status=first["status"],
            expires_at=float(first["expires_at"]),
            lines=[ReservationLine(row["sku_id"], int(row["quantity"])) for row in rows if row["sku_id"]],
        )

    async def levels(self, sku_ids: Sequence[str]) -> list[StockLevel]:
        rows = await self._db.fetch(self._sql.levels, self._list(sku_ids))
        return [_stock_level(row) for row in rows]

    async def level(self, executor: Executor | Database, sku_id: str) -> StockLevel | None:
        row = await executor.fetchrow(
            f"SELECT {_STOCK_COLUMNS} FROM {SCHEMA}.stock WHERE sku_id = $1", sku_id
        )
        return None if row is None else _stock_level(row)

    # --- stock admin and audit ----------------------------------------------------------------------

    async def set_stock(self, tx: Executor, command: SetStock) -> StockLevel | None:
        """Create the SKU, or move initial and available by the difference; None if below reserved + sold."""
        row = await tx.fetchrow(
            f"INSERT INTO {SCHEMA}.stock AS s ({_STOCK_COLUMNS}) VALUES ($1, $2, $2, 0, 0, $3) "
            "ON CONFLICT (sku_id) DO UPDATE SET initial = excluded.initial, "
            "available = s.available + (excluded.initial - s.initial), "
            "per_customer_limit = excluded.per_customer_limit "
            "WHERE s.reserved + s.sold <= excluded.initial "
            f"RETURNING {_STOCK_COLUMNS}",
            command.sku_id,
            command.quantity,
            command.per_customer_limit,
        )
        return None if row is None else _stock_level(row)

    async def seed_levels(self, tx: Executor, levels: Sequence[tuple[str, int]]) -> None:
        """Initial stock for SKUs that have none yet (a seeded catalog); existing rows are kept."""
        await tx.executemany(
            f"INSERT INTO {SCHEMA}.stock (sku_id, initial, available, reserved, sold) "
            "VALUES ($1, $2, $2, 0, 0) ON CONFLICT (sku_id) DO NOTHING",
            levels,
        )

    async def tallies(self) -> list[SkuTally]:
        """Every SKU's counts beside its reservation lines' sums, read in one statement (one snapshot)."""
        rows = await self._db.fetch(
            "SELECT s.sku_id, s.initial, s.available, s.reserved, s.sold, "
            "coalesce(t.active, 0) AS active, coalesce(t.committed, 0) AS committed "
            f"FROM {SCHEMA}.stock s LEFT JOIN ("
            "SELECT l.sku_id, "
            "sum(CASE WHEN r.status = 'active' THEN l.quantity ELSE 0 END) AS active, "
            "sum(CASE WHEN r.status = 'committed' THEN l.quantity ELSE 0 END) AS committed "
            f"FROM {SCHEMA}.reservation_lines l JOIN {SCHEMA}.reservations r ON r.id = l.reservation_id "
            "GROUP BY l.sku_id) t ON t.sku_id = s.sku_id ORDER BY s.sku_id"
        )
        return [
            SkuTally(
                sku_id=row[0],
                initial=int(row[1]),
                available=int(row[2]),
                reserved=int(row[3]),
                sold=int(row[4]),
                active_lines=int(row[5]),
                committed_lines=int(row[6]),
            )
            for row in rows
        ]

    async def sold_reservations(self) -> list[SoldReservation]:
        """Every committed reservation with the units it sold per SKU, in one statement."""
        rows = await self._db.fetch(
            f"SELECT r.id, r.updated_at, l.sku_id, l.quantity FROM {SCHEMA}.reservations r "
            f"LEFT JOIN {SCHEMA}.reservation_lines l ON l.reservation_id = r.id "
            "WHERE r.status = 'committed' ORDER BY r.id, l.sku_id"
        )
        sold: list[SoldReservation] = []
        for row in rows:
            if not sold or sold[-1].id != row[0]:
                sold.append(SoldReservation(row[0], float(row[1]), {}))
            if row[2] is not None:
                sold[-1].units[row[2]] = int(row[3])
        return sold

    async def over_limit_holders(self) -> list[LimitBreach]:
        """Customers who hold more units of a SKU than any limit their holding was checked against.

        A reservation of a limited SKU passes `_take`'s check under the SKU's row lock, so the last
        of a customer's reservations to be checked saw every other unit they still hold: what they
        hold now is at most the limit that check used, and so at most the largest limit on their
        held lines. Above that, a check was skipped or wrong. A held line with no limit (none was in
        force, or it predates the record) gives no bound, so the SKU is left out for that customer.
        """
        rows = await self._db.fetch(
            "SELECT r.customer_id, l.sku_id, sum(l.quantity), max(l.per_customer_limit) "
            f"FROM {SCHEMA}.reservation_lines l JOIN {SCHEMA}.reservations r ON r.id = l.reservation_id "
            f"WHERE r.customer_id IS NOT NULL AND {HELD} "
            "GROUP BY r.customer_id, l.sku_id "
            "HAVING count(l.per_customer_limit) = count(*) AND sum(l.quantity) > max(l.per_customer_limit) "
            "ORDER BY r.customer_id, l.sku_id"
        )
        return [LimitBreach(row[0], row[1], int(row[2]), int(row[3])) for row in rows]

    async def orphan_lines(self) -> list[str]:
        """Reservation lines whose SKU has no stock row (SQLite does not enforce the foreign key)."""
        rows = await self._db.fetch(
            f"SELECT DISTINCT l.sku_id FROM {SCHEMA}.reservation_lines l "
            f"LEFT JOIN {SCHEMA}.stock s ON s.sku_id = l.sku_id WHERE s.sku_id IS NULL ORDER BY l.sku_id"
        )
        return [row[0] for row in rows]
