"""The oversell guard under real contention, on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import asyncpg
import pytest

from peakshop.contracts.inventory import Reservation, ReservationLine, ReserveStock, SetStock
from peakshop.inventory.handlers import InventoryHandlers
from peakshop.inventory.repository import InventoryRepository
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.problems import Problem
from tests.unit.inventory.inventory_scenarios import (
    CountingDatabase,
    FakeClock,
    limits_judged_by_the_limit_in_force,
    rush,
)

pytestmark = pytest.mark.services

L = ReservationLine


async def levels(handlers: InventoryHandlers, *sku_ids: str) -> dict[str, tuple[int, int, int, int]]:
    return {
        level.sku_id: (level.initial, level.available, level.reserved, level.sold)
        for level in await handlers.stock(list(sku_ids))
    }


async def test_five_hundred_buyers_for_fifty_units_get_exactly_fifty(handlers: InventoryHandlers) -> None:
    result = await rush(handlers, buyers=500, units=50)
    assert (result.reserved, result.sold_out, result.other) == (50, 450, [])
    assert await levels(handlers, "hot") == {"hot": (50, 0, 50, 0)}
    assert await handlers.audit() == []


async def test_crossing_orders_never_deadlock(handlers: InventoryHandlers) -> None:
    skus = [f"sku-{i}" for i in range(6)]
    for sku_id in skus:
        await handlers.set_stock(SetStock(sku_id, 1_000))
    rng = random.Random(7)

    async def buy(i: int) -> Reservation:
        picked = rng.sample(skus, k=rng.randint(2, len(skus)))
        # Half the orders name their SKUs in reverse: the lock order must not depend on the caller.
        if i % 2:
            picked.reverse()
        reservation = await handlers.reserve(ReserveStock(f"r{i}", None, [L(s, 1) for s in picked]))
        await (handlers.commit if i % 3 else handlers.release)(reservation.id)
        return reservation

    outcomes = await asyncio.gather(*(buy(i) for i in range(300)), return_exceptions=True)
    deadlocks = [o for o in outcomes if isinstance(o, asyncpg.DeadlockDetectedError)]
    assert deadlocks == []
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert await handlers.audit() == []


async def test_a_customer_racing_themself_gets_no_more_than_the_limit(
    handlers: InventoryHandlers, inventory_db: PostgresDatabase
) -> None:
    await handlers.set_stock(SetStock("plum", 100, per_customer_limit=3))
    outcomes = await asyncio.gather(
        *(handlers.reserve(ReserveStock(f"r{i}", "ann", [L("plum", 1)])) for i in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Reservation) for o in outcomes) == 3
    assert {o.slug for o in outcomes if isinstance(o, Problem)} == {"purchase-limit"}
    assert await levels(handlers, "plum") == {"plum": (100, 97, 3, 0)}
    assert await InventoryRepository(inventory_db).over_limit_holders() == []


async def test_the_audit_judges_a_customer_by_the_limits_they_were_checked_against(
    handlers: InventoryHandlers, inventory_db: PostgresDatabase
) -> None:
    await limits_judged_by_the_limit_in_force(handlers, inventory_db)


async def test_the_same_reservation_sent_many_times_at_once_reserves_once(
    handlers: InventoryHandlers,
) -> None:
    await handlers.set_stock(SetStock("apple", 10))
    request = ReserveStock("r1", "ann", [L("apple", 2)])
    outcomes = await asyncio.gather(*(handlers.reserve(request) for _ in range(20)))
    assert len({(o.id, o.expires_at) for o in outcomes}) == 1
    assert await levels(handlers, "apple") == {"apple": (10, 8, 2, 0)}
    commits = await asyncio.gather(*(handlers.commit("r1") for _ in range(10)))
    assert {c.status for c in commits} == {"committed"}
    releases = await asyncio.gather(*(handlers.release("r1") for _ in range(10)))
    assert {r.status for r in releases} == {"committed"}
    assert await levels(handlers, "apple") == {"apple": (10, 8, 0, 2)}


async def test_sweepers_running_at_once_expire_each_reservation_once(
    make_handlers: Callable[..., InventoryHandlers], clock: FakeClock
) -> None:
    handlers = make_handlers(sweep_batch_size=7)
    await handlers.set_stock(SetStock("apple", 200))
    for i in range(100):
        await handlers.reserve(ReserveStock(f"r{i}", None, [L("apple", 1)], ttl_seconds=10))
    clock.advance(10)
    swept = await asyncio.gather(*(handlers.expire_due(clock()) for _ in range(4)))
    everything = [rid for batch in swept for rid in batch]
    assert sorted(everything) == sorted(f"r{i}" for i in range(100))
    assert await levels(handlers, "apple") == {"apple": (200, 200, 0, 0)}
    assert await handlers.audit() == []


async def test_expiry_racing_commit_settles_each_reservation_one_way(
    handlers: InventoryHandlers, clock: FakeClock
) -> None:
    await handlers.set_stock(SetStock("apple", 100))
    for i in range(50):
        await handlers.reserve(ReserveStock(f"r{i}", None, [L("apple", 1)], ttl_seconds=10))
    clock.advance(5)
    sweeping = handlers.expire_due(clock() + 5)
    outcomes = await asyncio.gather(
        sweeping, *(handlers.commit(f"r{i}") for i in range(50)), return_exceptions=True
    )
    expired = outcomes[0]
    assert isinstance(expired, list)
    committed = [o for o in outcomes[1:] if isinstance(o, Reservation)]
    refused = [o for o in outcomes[1:] if isinstance(o, Problem) and o.slug == "reservation-expired"]
    assert len(committed) + len(refused) == 50 and len(expired) == len(refused)
    assert await levels(handlers, "apple") == {"apple": (100, 100 - len(committed), 0, len(committed))}
    assert await handlers.audit() == []


async def test_statements_per_call_on_postgres(inventory_db: PostgresDatabase, clock: FakeClock) -> None:
    counting = CountingDatabase(inventory_db)
    handlers = InventoryHandlers(InventorySettings(), database=counting, clock=clock)
    skus = [f"sku-{i:03}" for i in range(100)]
    for sku_id in skus:
        await handlers.set_stock(SetStock(sku_id, 100))
    counting.take()
    for n in (1, 10, 100):
        await handlers.reserve(ReserveStock(f"r{n}", "ann", [L(s, 1) for s in skus[:n]]))
        assert len(counting.take()) == 2  # the reservation; take, lock and lines in one statement
        await handlers.commit(f"r{n}")
        assert len(counting.take()) == 1  # status, lock and stock in one statement
    await handlers.reserve(ReserveStock("r0", "ann", [L(skus[0], 1)]))
    counting.take()
    await handlers.release("r0")
    assert len(counting.take()) == 3  # status, stock, outbox row
