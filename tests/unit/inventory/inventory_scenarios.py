"""Scenarios the SQLite (unit) and PostgreSQL (integration) inventory suites both run.

`InventoryMachine` is a model-based hypothesis state machine: every step runs against the real
handlers and a plain-Python model of the same shop, and after every step the two must agree and the
audit must find nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from peakshop.contracts.inventory import Reservation, ReservationLine, ReserveStock, SetStock
from peakshop.inventory.domain import SCHEMA, LimitBreach
from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.repository import InventoryRepository
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.db import Database, Executor, Row
from peakshop.platform.problems import Problem

T = TypeVar("T")
TABLES = ("reservation_lines", "reservations", "stock", "outbox", "inbox")


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def clear(db: Database) -> None:
    async with db.transaction() as tx:
        for table in TABLES:
            await tx.execute(f"DELETE FROM {SCHEMA}.{table}")


# --- counting statements -----------------------------------------------------------------------------


class _CountingExecutor:
    def __init__(self, inner: Executor, log: list[str]) -> None:
        self._inner = inner
        self._log = log
        self.dialect = inner.dialect

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self._log.append(sql)
        return await self._inner.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        self._log.append(sql)
        return await self._inner.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self._log.append(sql)
        return await self._inner.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        self._log.append(sql)
        return await self._inner.execute(sql, *args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        self._log.append(sql)
        await self._inner.executemany(sql, args)


class CountingDatabase:
    """The same database, recording every statement sent (BEGIN and COMMIT are not counted)."""

    def __init__(self, inner: Database) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.schema = inner.schema
        self.statements: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._inner.transaction() as tx:
            yield _CountingExecutor(tx, self.statements)

    @asynccontextmanager
    async def one_statement(self) -> AsyncIterator[Executor]:
        async with self._inner.one_statement() as tx:
            yield _CountingExecutor(tx, self.statements)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self.statements.append(sql)
        return await self._inner.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        self.statements.append(sql)
        return await self._inner.fetchrow(sql, *args)

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken


# --- the flash-sale rush -------------------------------------------------------------------------------


@dataclass
class RushResult:
    reserved: int
    sold_out: int
    other: list[BaseException]


async def rush(handlers: InventoryHandlers, *, buyers: int, units: int, sku_id: str = "hot") -> RushResult:
    """`buyers` concurrent reservations of one unit each for a SKU with `units` in stock."""
    await handlers.set_stock(SetStock(sku_id, units))
    outcomes = await asyncio.gather(
        *(
            handlers.reserve(ReserveStock(f"rush-{i}", f"buyer-{i}", [ReservationLine(sku_id, 1)]))
            for i in range(buyers)
        ),
        return_exceptions=True,
    )
    reserved = sum(isinstance(o, Reservation) for o in outcomes)
    sold_out = sum(isinstance(o, Problem) and o.slug == "sold-out" for o in outcomes)
    other = [
        o
        for o in outcomes
        if isinstance(o, BaseException) and not (isinstance(o, Problem) and o.slug == "sold-out")
    ]
    return RushResult(reserved, sold_out, other)


async def limits_judged_by_the_limit_in_force(handlers: InventoryHandlers, db: Database) -> None:
    """The audit's limit check: a sale under a limit stays clean after the limit is lowered, and a
    unit held past every limit it was checked against is a breach."""
    audit = InventoryRepository(db).over_limit_holders
    await handlers.set_stock(SetStock("plum", 10, per_customer_limit=2))
    await handlers.reserve(ReserveStock("r1", "ann", [ReservationLine("plum", 2)]))
    await handlers.commit("r1")
    assert await audit() == []
    await handlers.set_stock(SetStock("plum", 10, per_customer_limit=1))  # lowered after the sale
    assert await audit() == []
    with pytest.raises(Problem) as refused:
        await handlers.reserve(ReserveStock("r2", "ann", [ReservationLine("plum", 1)]))
    assert refused.value.slug == "purchase-limit"
    # One more unit held as a skipped or wrong check would leave it, written straight in.
    async with db.transaction() as tx:
        await tx.execute(
            f"INSERT INTO {SCHEMA}.reservations (id, customer_id, status, expires_at, created_at, "
            "updated_at) VALUES ('r3', 'ann', 'active', $1, $1, $1)",
            4e9,
        )
        await tx.execute(
            f"INSERT INTO {SCHEMA}.reservation_lines (reservation_id, sku_id, quantity, per_customer_limit) "
            "VALUES ('r3', 'plum', 1, 1)"
        )
        await tx.execute(
            f"UPDATE {SCHEMA}.stock SET available = available - 1, reserved = reserved + 1 WHERE sku_id = 'plum'"
        )
    assert await handlers.audit() == []  # the books balance: only the limit check can see it
    assert await audit() == [LimitBreach("ann", "plum", 3, 2)]


# --- the model-based state machine ---------------------------------------------------------------------

SKUS = ("sku-a", "sku-b", "sku-c")
LIMITED = "sku-c"
LIMIT = 3
IDS = tuple(f"res-{i}" for i in range(8))
CUSTOMERS = (None, "ann", "bob")
TTL = 60


@dataclass
class ModelReservation:
    customer_id: str | None
    status: str
    expires_at: float
    lines: list[ReservationLine]


@dataclass
class Model:
    stock: dict[str, list[int]] = field(default_factory=dict)  # initial, available, reserved, sold
    limits: dict[str, int | None] = field(default_factory=dict)
    reservations: dict[str, ModelReservation] = field(default_factory=dict)

    def move(self, lines: Iterable[ReservationLine], source: int, target: int) -> None:
        for line in lines:
            counts = self.stock[line.sku_id]
            counts[source] -= line.quantity
            counts[target] += line.quantity


AVAILABLE, RESERVED, SOLD = 1, 2, 3

lines_strategy = st.lists(
    st.tuples(st.sampled_from((*SKUS, "sku-ghost")), st.integers(1, 4)), min_size=1, max_size=4
)


def merge(pairs: list[tuple[str, int]]) -> list[ReservationLine]:
    totals: dict[str, int] = {}
    for sku_id, quantity in pairs:
        totals[sku_id] = totals.get(sku_id, 0) + quantity
    return [ReservationLine(sku_id, totals[sku_id]) for sku_id in sorted(totals)]


class InventoryMachine(RuleBasedStateMachine):
    """Reserve, commit, release, expire, return, restock and restart, checked against a model at every
    step."""

    def __init__(self, open_database: Callable[[], Coroutine[Any, Any, Database]]) -> None:
        super().__init__()
        self._runner = asyncio.Runner()
        self._open = open_database
        self.clock = FakeClock()
        self.model = Model()
        self.db: Database = self.run(self._open())
        self.run(clear(self.db))
        self.handlers = self._handlers()
        for sku_id in SKUS:
            limit = LIMIT if sku_id == LIMITED else None
            self.run(self.handlers.set_stock(SetStock(sku_id, 6, limit)))
            self.model.stock[sku_id] = [6, 6, 0, 0]
            self.model.limits[sku_id] = limit

    def _handlers(self) -> InventoryHandlers:
        settings = InventorySettings(reservation_ttl_seconds=TTL, sweep_batch_size=2)
        return InventoryHandlers(settings, database=self.db, clock=self.clock)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def outcome(self, coroutine: Coroutine[Any, Any, T]) -> T | Problem:
        try:
            return self.run(coroutine)
        except Problem as problem:
            return problem

    def teardown(self) -> None:
        try:
            self.run(self.db.close())
        finally:
            self._runner.close()

    # --- rules ---

    @rule(
        reservation_id=st.sampled_from(IDS),
        customer_id=st.sampled_from(CUSTOMERS),
        pairs=lines_strategy,
        ttl=st.sampled_from((None, 30, 90)),
    )
    def reserve(
        self, reservation_id: str, customer_id: str | None, pairs: list[tuple[str, int]], ttl: int | None
    ) -> None:
        lines = merge(pairs)
        request = ReserveStock(reservation_id, customer_id, [ReservationLine(s, q) for s, q in pairs], ttl)
        got = self.outcome(self.handlers.reserve(request))
        m = self.model
        existing = m.reservations.get(reservation_id)
        if existing is not None:
            if existing.lines == lines and existing.customer_id == customer_id:
                assert got == Reservation(
                    reservation_id, customer_id, existing.status, existing.expires_at, lines
                )
            else:
                assert isinstance(got, Problem) and got.slug == "reservation-mismatch", got
            return
        unknown = [line.sku_id for line in lines if line.sku_id not in m.stock]
        short = [
            line.sku_id
            for line in lines
            if line.sku_id in m.stock and m.stock[line.sku_id][AVAILABLE] < line.quantity
        ]
        over = []
        if customer_id is not None:
            for line in lines:
                limit = m.limits.get(line.sku_id)
                if limit is not None:
                    held = sum(
                        other.quantity
                        for r in m.reservations.values()
                        if r.customer_id == customer_id and r.status in ("active", "committed")
                        for other in r.lines
                        if other.sku_id == line.sku_id
                    )
                    if held + line.quantity > limit:
                        over.append(line.sku_id)
        if unknown:
            assert isinstance(got, Problem) and (got.status, got.slug) == (404, "unknown-sku"), got
            assert got.extra["sku_ids"] == unknown
        elif short:
            assert isinstance(got, Problem) and (got.status, got.slug) == (409, "sold-out"), got
            assert got.extra["sku_ids"] == short
        elif over:
            assert isinstance(got, Problem) and (got.status, got.slug) == (409, "purchase-limit"), got
            assert got.extra["sku_ids"] == over
        else:
            expires_at = self.clock() + (ttl or TTL)
            assert got == Reservation(reservation_id, customer_id, "active", expires_at, lines), got
            m.reservations[reservation_id] = ModelReservation(customer_id, "active", expires_at, lines)
            m.move(lines, AVAILABLE, RESERVED)

    @rule(reservation_id=st.sampled_from(IDS))
    def commit(self, reservation_id: str) -> None:
        got = self.outcome(self.handlers.commit(reservation_id))
        r = self.model.reservations.get(reservation_id)
        if r is None:
            assert isinstance(got, Problem) and got.status == 404, got
        elif r.status == "committed":
            assert isinstance(got, Reservation) and got.status == "committed", got
        elif r.status == "active" and r.expires_at > self.clock():
            assert isinstance(got, Reservation) and got.status == "committed" and got.lines == r.lines, got
            r.status = "committed"
            self.model.move(r.lines, RESERVED, SOLD)
        else:
            assert isinstance(got, Problem) and got.slug == "reservation-expired", got

    @rule(reservation_id=st.sampled_from(IDS))
    def release(self, reservation_id: str) -> None:
        got = self.outcome(self.handlers.release(reservation_id))
        r = self.model.reservations.get(reservation_id)
        if r is None:
            assert isinstance(got, Problem) and got.status == 404, got
            return
        if r.status == "active":
            r.status = "released"
            self.model.move(r.lines, RESERVED, AVAILABLE)
        assert isinstance(got, Reservation) and (got.status, got.lines) == (r.status, r.lines), got

    @rule(reservation_id=st.sampled_from(IDS))
    def return_sold(self, reservation_id: str) -> None:
        got = self.outcome(self.handlers.return_sold(reservation_id))
        r = self.model.reservations.get(reservation_id)
        if r is None:
            assert isinstance(got, Problem) and got.status == 404, got
            return
        if r.status in ("active", "released", "expired"):
            assert isinstance(got, Problem) and got.slug == "reservation-not-sold", got
            return
        if r.status == "committed":
            r.status = "returned"
            self.model.move(r.lines, SOLD, AVAILABLE)
        assert isinstance(got, Reservation) and (got.status, got.lines) == ("returned", r.lines), got

    @rule(seconds=st.integers(0, 100))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        expired = self.run(self.handlers.expire_due(self.clock()))
        due = sorted(
            rid
            for rid, r in self.model.reservations.items()
            if r.status == "active" and r.expires_at <= self.clock()
        )
        assert sorted(expired) == due
        for rid in due:
            r = self.model.reservations[rid]
            r.status = "expired"
            self.model.move(r.lines, RESERVED, AVAILABLE)

    @rule(sku_id=st.sampled_from(SKUS), quantity=st.integers(0, 12))
    def restock(self, sku_id: str, quantity: int) -> None:
        got = self.outcome(self.handlers.set_stock(SetStock(sku_id, quantity, self.model.limits[sku_id])))
        counts = self.model.stock[sku_id]
        if quantity < counts[RESERVED] + counts[SOLD]:
            assert isinstance(got, Problem) and got.slug == "stock-below-held", got
        else:
            counts[AVAILABLE] += quantity - counts[0]
            counts[0] = quantity

    @rule(limit=st.sampled_from((None, 1, 2, 5)))
    def change_limit(self, limit: int | None) -> None:
        """An admin changes the flash-sale SKU's per-customer limit, before or after sales."""
        initial = self.model.stock[LIMITED][0]
        self.run(self.handlers.set_stock(SetStock(LIMITED, initial, limit)))
        self.model.limits[LIMITED] = limit

    @rule()
    def restart(self) -> None:
        """Close the database and open it again, as a crash and restart of the process would."""
        self.run(self.db.close())
        self.db = self.run(self._open())
        self.handlers = self._handlers()

    # --- invariants ---

    @invariant()
    def books_balance(self) -> None:
        assert self.run(self.handlers.audit()) == []

    @invariant()
    def no_customer_holds_more_than_a_limit_allowed(self) -> None:
        """The audit's limit check, which judges holdings by the limits they were checked against,
        holds however the limit moved."""
        assert self.run(InventoryRepository(self.db).over_limit_holders()) == []

    @invariant()
    def levels_match_the_model(self) -> None:
        levels = self.run(self.handlers.stock(SKUS))
        assert {
            level.sku_id: [level.initial, level.available, level.reserved, level.sold] for level in levels
        } == self.model.stock

    @invariant()
    def statuses_match_the_model(self) -> None:
        for rid, r in self.model.reservations.items():
            assert self.run(self.handlers.reservation(rid)).status == r.status
