"""The inventory use cases on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
import pytest

from peakshop.contracts.inventory import (
    TOPIC_RESERVATION_EXPIRED,
    TOPIC_STOCK_RELEASED,
    TOPIC_STOCK_RETURNED,
    ReservationExpired,
    ReservationLine,
    ReserveStock,
    SetStock,
    StockReleased,
    StockReturned,
)
from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.db import SqliteDatabase
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Problem
from tests.unit.inventory.inventory_scenarios import (
    CountingDatabase,
    FakeClock,
    limits_judged_by_the_limit_in_force,
    rush,
)

L = ReservationLine


def order(
    reservation_id: str, *lines: tuple[str, int], customer: str | None = "ann", ttl: int | None = None
) -> ReserveStock:
    return ReserveStock(reservation_id, customer, [L(s, q) for s, q in lines], ttl)


async def problem_of(call: object) -> Problem:
    with pytest.raises(Problem) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def levels(handlers: InventoryHandlers, *sku_ids: str) -> dict[str, tuple[int, int, int, int]]:
    return {
        level.sku_id: (level.initial, level.available, level.reserved, level.sold)
        for level in await handlers.stock(list(sku_ids))
    }


async def outbox(db: SqliteDatabase) -> list[tuple[str, bytes]]:
    rows = await db.fetch("SELECT topic, payload FROM inventory.outbox ORDER BY occurred_at, id")
    return [(row[0], bytes(row[1])) for row in rows]


@pytest.fixture
async def stocked(handlers: InventoryHandlers) -> InventoryHandlers:
    await handlers.set_stock(SetStock("apple", 10))
    await handlers.set_stock(SetStock("pear", 2))
    await handlers.set_stock(SetStock("plum", 5, per_customer_limit=2))
    return handlers


async def test_a_reservation_holds_every_line_merged_per_sku_in_sku_order(stocked: InventoryHandlers) -> None:
    reservation = await stocked.reserve(order("r1", ("pear", 1), ("apple", 3), ("pear", 1)))
    assert reservation.status == "active"
    assert reservation.lines == [L("apple", 3), L("pear", 2)]
    assert await levels(stocked, "apple", "pear") == {"apple": (10, 7, 3, 0), "pear": (2, 0, 2, 0)}
    assert await stocked.audit() == []


async def test_one_short_line_refuses_the_whole_reservation(stocked: InventoryHandlers) -> None:
    problem = await problem_of(stocked.reserve(order("r1", ("apple", 4), ("pear", 3))))
    assert (problem.status, problem.slug, problem.extra["sku_ids"]) == (409, "sold-out", ["pear"])
    assert await levels(stocked, "apple", "pear") == {"apple": (10, 10, 0, 0), "pear": (2, 2, 0, 0)}
    assert (await problem_of(stocked.reservation("r1"))).status == 404


async def test_an_unknown_sku_is_a_404_naming_it(stocked: InventoryHandlers) -> None:
    problem = await problem_of(stocked.reserve(order("r1", ("apple", 1), ("durian", 1))))
    assert (problem.status, problem.slug, problem.extra["sku_ids"]) == (404, "unknown-sku", ["durian"])
    assert await levels(stocked, "apple") == {"apple": (10, 10, 0, 0)}


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (order("r1", ("apple", 0)), "lines[0].quantity"),
        (order("r1", ("apple", 1), ("pear", 10_001)), "lines[1].quantity"),
        (order("r1", ("apple", 6_000), ("apple", 6_000)), "lines"),
        (ReserveStock("r1", None, [L(f"s{i}", 1) for i in range(101)]), "lines"),
        (ReserveStock("r1", None, []), "lines"),
        (order("", ("apple", 1)), "reservation_id"),
        (order("a/b", ("apple", 1)), "reservation_id"),
        (order("r1", ("", 1)), "lines[0].sku_id"),
        (order("r1", ("apple", 1), ttl=0), "ttl_seconds"),
    ],
)
async def test_malformed_requests_are_400s_naming_the_field(
    stocked: InventoryHandlers, request_: ReserveStock, field: str
) -> None:
    problem = await problem_of(stocked.reserve(request_))
    assert (problem.status, problem.slug, problem.extra["field"]) == (400, "invalid-request", field)


async def test_reserving_again_with_the_same_id_returns_the_first_reservation(
    stocked: InventoryHandlers,
) -> None:
    first = await stocked.reserve(order("r1", ("apple", 2), ("pear", 1)))
    again = await stocked.reserve(order("r1", ("pear", 1), ("apple", 1), ("apple", 1)))
    assert again == first
    assert await levels(stocked, "apple", "pear") == {"apple": (10, 8, 2, 0), "pear": (2, 1, 1, 0)}


async def test_the_same_id_with_other_lines_is_a_mismatch(stocked: InventoryHandlers) -> None:
    await stocked.reserve(order("r1", ("apple", 2)))
    problem = await problem_of(stocked.reserve(order("r1", ("apple", 3))))
    assert (problem.status, problem.slug) == (409, "reservation-mismatch")
    problem = await problem_of(stocked.reserve(order("r1", ("apple", 2), customer="bob")))
    assert problem.slug == "reservation-mismatch"
    assert await levels(stocked, "apple") == {"apple": (10, 8, 2, 0)}


async def test_a_customer_cannot_hold_more_than_the_per_customer_limit(stocked: InventoryHandlers) -> None:
    await stocked.reserve(order("r1", ("plum", 1)))
    await stocked.commit("r1")
    await stocked.reserve(order("r2", ("plum", 1), ("apple", 1)))
    problem = await problem_of(stocked.reserve(order("r3", ("plum", 1))))
    assert (problem.status, problem.slug, problem.extra["sku_ids"]) == (409, "purchase-limit", ["plum"])
    # Another customer has a limit of their own; a released reservation no longer counts.
    await stocked.reserve(order("r4", ("plum", 2), customer="bob"))
    await stocked.release("r2")
    await stocked.reserve(order("r5", ("plum", 1)))
    assert await levels(stocked, "plum") == {"plum": (5, 1, 3, 1)}


async def test_the_audit_judges_a_customer_by_the_limits_they_were_checked_against(
    handlers: InventoryHandlers, inventory_db: SqliteDatabase
) -> None:
    await limits_judged_by_the_limit_in_force(handlers, inventory_db)


async def test_commit_moves_reserved_to_sold_once(stocked: InventoryHandlers) -> None:
    reservation = await stocked.reserve(order("r1", ("apple", 3)))
    committed = await stocked.commit("r1")
    assert committed.status == "committed" and committed.lines == reservation.lines
    assert await stocked.commit("r1") == committed
    assert await levels(stocked, "apple") == {"apple": (10, 7, 0, 3)}


async def test_release_gives_units_back_once_and_announces_it(
    stocked: InventoryHandlers, inventory_db: SqliteDatabase
) -> None:
    await stocked.reserve(order("r1", ("apple", 3), ("pear", 1)))
    released = await stocked.release("r1")
    assert released.status == "released"
    assert await stocked.release("r1") == released
    assert await levels(stocked, "apple", "pear") == {"apple": (10, 10, 0, 0), "pear": (2, 2, 0, 0)}
    [(topic, payload)] = await outbox(inventory_db)
    assert topic == TOPIC_STOCK_RELEASED
    assert msgspec.json.decode(payload, type=StockReleased) == StockReleased(
        "r1", [L("apple", 3), L("pear", 1)]
    )


async def test_releasing_a_committed_reservation_changes_nothing(stocked: InventoryHandlers) -> None:
    await stocked.reserve(order("r1", ("apple", 3)))
    committed = await stocked.commit("r1")
    assert await stocked.release("r1") == committed
    assert await levels(stocked, "apple") == {"apple": (10, 7, 0, 3)}


async def test_returning_a_sale_puts_its_units_back_on_sale_once_and_announces_it(
    stocked: InventoryHandlers, inventory_db: SqliteDatabase
) -> None:
    await stocked.reserve(order("r1", ("plum", 2), ("pear", 1)))
    await stocked.commit("r1")
    assert (await problem_of(stocked.reserve(order("r2", ("plum", 1))))).slug == "purchase-limit"

    returned = await stocked.return_sold("r1")
    assert (returned.status, returned.lines) == ("returned", [L("pear", 1), L("plum", 2)])
    assert await stocked.return_sold("r1") == returned
    assert await levels(stocked, "plum", "pear") == {"plum": (5, 5, 0, 0), "pear": (2, 2, 0, 0)}
    assert (await stocked.reservation("r1")).status == "returned"
    # Returned units count against nobody's per-customer limit, and cannot be sold again under r1.
    assert (await stocked.reserve(order("r2", ("plum", 2)))).status == "active"
    assert (await problem_of(stocked.commit("r1"))).extra["reservation_status"] == "returned"
    assert await stocked.audit() == []
    [(topic, payload)] = await outbox(inventory_db)
    assert topic == TOPIC_STOCK_RETURNED
    assert msgspec.json.decode(payload, type=StockReturned) == StockReturned(
        "r1", [L("pear", 1), L("plum", 2)]
    )


async def test_only_a_sale_can_be_returned(stocked: InventoryHandlers, clock: FakeClock) -> None:
    await stocked.reserve(order("r1", ("apple", 1)))
    problem = await problem_of(stocked.return_sold("r1"))
    assert (problem.status, problem.slug, problem.extra["reservation_status"]) == (
        409,
        "reservation-not-sold",
        "active",
    )
    await stocked.release("r1")
    assert (await problem_of(stocked.return_sold("r1"))).extra["reservation_status"] == "released"
    assert (await problem_of(stocked.return_sold("nope"))).status == 404
    assert await levels(stocked, "apple") == {"apple": (10, 10, 0, 0)}


async def test_a_released_or_lapsed_reservation_cannot_be_committed(
    stocked: InventoryHandlers, clock: FakeClock
) -> None:
    await stocked.reserve(order("r1", ("apple", 1)))
    await stocked.release("r1")
    problem = await problem_of(stocked.commit("r1"))
    assert (problem.status, problem.slug, problem.extra["reservation_status"]) == (
        409,
        "reservation-expired",
        "released",
    )

    await stocked.reserve(order("r2", ("apple", 1), ttl=60))
    clock.advance(60)
    # Due but not yet swept: refused all the same, so the outcome never depends on sweep timing.
    assert (await problem_of(stocked.commit("r2"))).slug == "reservation-expired"
    assert await stocked.expire_due(clock()) == ["r2"]
    assert (await problem_of(stocked.commit("r2"))).extra["reservation_status"] == "expired"
    assert (await problem_of(stocked.commit("nope"))).status == 404
    assert (await problem_of(stocked.release("nope"))).status == 404


async def test_the_sweeper_expires_only_due_reservations_in_batches(
    make_handlers: Callable[..., InventoryHandlers], clock: FakeClock, inventory_db: SqliteDatabase
) -> None:
    handlers = make_handlers(sweep_batch_size=2)
    await handlers.set_stock(SetStock("apple", 10))
    for i in range(5):
        await handlers.reserve(order(f"due-{i}", ("apple", 1), ttl=30))
    await handlers.reserve(order("later", ("apple", 1), ttl=300))
    await handlers.reserve(order("paid", ("apple", 1), ttl=30))
    await handlers.commit("paid")
    clock.advance(30)
    assert sorted(await handlers.expire_due(clock())) == [f"due-{i}" for i in range(5)]
    assert await handlers.expire_due(clock()) == []
    assert await levels(handlers, "apple") == {"apple": (10, 8, 1, 1)}
    events = await outbox(inventory_db)
    assert sorted(msgspec.json.decode(p, type=ReservationExpired).reservation_id for t, p in events) == [
        f"due-{i}" for i in range(5)
    ]
    assert {topic for topic, _ in events} == {TOPIC_RESERVATION_EXPIRED}
    assert await handlers.audit() == []


async def test_restocking_moves_initial_and_available_together(stocked: InventoryHandlers) -> None:
    await stocked.reserve(order("r1", ("apple", 3)))
    await stocked.commit("r1")
    await stocked.reserve(order("r2", ("apple", 2)))
    assert (await stocked.set_stock(SetStock("apple", 25))).available == 20
    assert (await stocked.set_stock(SetStock("apple", 5))).available == 0
    problem = await problem_of(stocked.set_stock(SetStock("apple", 4)))
    assert (problem.status, problem.slug, problem.extra["held"]) == (409, "stock-below-held", 5)
    assert (await problem_of(stocked.set_stock(SetStock("apple", -1)))).status == 400
    assert await levels(stocked, "apple") == {"apple": (5, 0, 2, 3)}


async def test_the_audit_names_what_does_not_balance(
    stocked: InventoryHandlers, inventory_db: SqliteDatabase
) -> None:
    await stocked.reserve(order("r1", ("apple", 3)))
    async with inventory_db.transaction() as tx:
        # Corrupt the books the way a bug would: reserved units with no reservation behind them.
        await tx.execute(
            "UPDATE inventory.stock SET available = available - 1, reserved = reserved + 1 WHERE sku_id = 'pear'"
        )
        await tx.execute("UPDATE inventory.reservation_lines SET quantity = 2 WHERE reservation_id = 'r1'")
    assert await stocked.audit() == [
        "apple: reserved 3 != active reservation lines 2",
        "pear: reserved 1 != active reservation lines 0",
    ]


async def test_outcomes_are_counted(stocked: InventoryHandlers, metrics: Metrics, clock: FakeClock) -> None:
    await stocked.reserve(order("r1", ("apple", 1)))
    await stocked.reserve(order("r1", ("apple", 1)))
    await problem_of(stocked.reserve(order("r2", ("pear", 5))))
    await stocked.commit("r1")
    await stocked.reserve(order("r3", ("apple", 1)))
    await stocked.release("r3")
    await stocked.reserve(order("r4", ("apple", 1), ttl=1))
    clock.advance(1)
    await stocked.expire_due(clock())

    def count(outcome: str) -> float:
        return metrics.registry.get_sample_value("peakshop_reservations_total", {"outcome": outcome}) or 0.0

    assert [count(o) for o in ("reserved", "committed", "released", "expired", "rejected")] == [3, 1, 1, 1, 1]


async def test_a_reservation_costs_the_same_few_statements_for_any_number_of_lines(
    inventory_db: SqliteDatabase, clock: FakeClock
) -> None:
    counting = CountingDatabase(inventory_db)
    handlers = InventoryHandlers(InventorySettings(), database=counting, clock=clock)
    skus = [f"sku-{i:03}" for i in range(100)]
    for sku_id in skus:
        await handlers.set_stock(
            SetStock(sku_id, 100, per_customer_limit=50 if sku_id == "sku-099" else None)
        )
    counting.take()
    for n in (1, 10, 99):
        await handlers.reserve(ReserveStock(f"r{n}", "ann", [L(s, 1) for s in skus[:n]]))
        assert len(counting.take()) == 3
    await handlers.reserve(ReserveStock("limited", "ann", [L(s, 1) for s in skus]))
    assert len(counting.take()) == 4  # the limit adds one read of the customer's held units
    await handlers.reserve(ReserveStock("r1", "ann", [L(skus[0], 1)]))
    assert len(counting.take()) == 2  # a replay: the insert that finds the id, and the read
    await handlers.commit("r10")
    assert len(counting.take()) == 2  # status, stock
    await handlers.release("r99")
    assert len(counting.take()) == 3  # as commit, plus the outbox row


async def test_five_hundred_buyers_for_fifty_units_on_sqlite(handlers: InventoryHandlers) -> None:
    result = await rush(handlers, buyers=500, units=50)
    assert (result.reserved, result.sold_out, result.other) == (50, 450, [])
    assert await levels(handlers, "hot") == {"hot": (50, 0, 50, 0)}
    assert await handlers.audit() == []


async def test_orders_naming_skus_in_opposite_order_both_go_through(stocked: InventoryHandlers) -> None:
    await asyncio.gather(
        stocked.reserve(order("r1", ("apple", 1), ("pear", 1))),
        stocked.reserve(order("r2", ("pear", 1), ("apple", 1))),
    )
    assert await levels(stocked, "apple", "pear") == {"apple": (10, 8, 2, 0), "pear": (2, 0, 2, 0)}


async def test_nothing_works_before_a_database_is_attached() -> None:
    handlers = InventoryHandlers(InventorySettings())
    assert (await problem_of(handlers.reserve(order("r1", ("apple", 1))))).status == 503
