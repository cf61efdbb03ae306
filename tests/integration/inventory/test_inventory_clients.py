"""The inventory service hosted for real (PostgreSQL, an HTTP server), reached by both clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest

from peakshop.contracts.inventory import (
    TOPIC_RESERVATION_EXPIRED,
    TOPIC_STOCK_RELEASED,
    ReservationExpired,
    ReservationLine,
    ReserveStock,
    SetStock,
    StockReleased,
)
from peakshop.inventory.client import HttpInventoryClient, InventoryClient, LocalInventoryClient
from peakshop.inventory.service import InventoryService
from peakshop.inventory.settings import InventorySettings
from peakshop.platform.bus import InProcessBus
from peakshop.platform.cache import MemoryCache
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Problem
from peakshop.platform.service import Infrastructure
from peakshop.platform.settings import PlatformSettings
from peakshop.platform.web import Readiness
from tests.served import served
from tests.unit.inventory.inventory_scenarios import FakeClock

pytestmark = pytest.mark.services

L = ReservationLine


@dataclass
class Hosted:
    service: InventoryService
    local: LocalInventoryClient
    http: HttpInventoryClient
    published: list[Envelope]
    clock: FakeClock


async def eventually(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


@pytest.fixture
async def hosted(inventory_url: str) -> AsyncIterator[Hosted]:
    published: list[Envelope] = []

    async def record(envelope: Envelope) -> None:
        published.append(envelope)

    bus = InProcessBus()
    bus.subscribe("inventory-test", [TOPIC_STOCK_RELEASED, TOPIC_RESERVATION_EXPIRED], record)
    await bus.start()
    platform = PlatformSettings(
        topology="split", postgres_url=inventory_url, webhook_secret="integration-tests"
    )
    infra = Infrastructure(settings=platform, metrics=Metrics(), bus=bus, cache=MemoryCache())
    clock = FakeClock()
    service = InventoryService(infra, InventorySettings(sweep_interval_seconds=0.05), clock=clock)
    await service.start()
    readiness = Readiness()
    readiness.checks.append(service.check_ready)
    try:
        async with served(
            "inventory", service.routers(), metrics=infra.metrics, readiness=readiness
        ) as base_url:
            http = HttpInventoryClient(base_url, 10.0)
            await http.start()
            try:
                yield Hosted(service, LocalInventoryClient(service), http, published, clock)
            finally:
                await http.close()
    finally:
        await service.stop()
        await infra.close_databases()
        await bus.close()


@pytest.fixture(params=["local", "http"])
def inventory(request: pytest.FixtureRequest, hosted: Hosted) -> InventoryClient:
    client: InventoryClient = getattr(hosted, request.param)
    return client


async def problem_of(call: Awaitable[Any]) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


def shape(problem: Problem) -> tuple[int, str, str, str, dict[str, Any]]:
    return (problem.status, problem.slug, problem.title, problem.detail, problem.extra)


async def test_a_checkout_through_either_client(inventory: InventoryClient) -> None:
    await inventory.set_stock(SetStock("apple", 5))
    reservation = await inventory.reserve(ReserveStock("order-1", "ann", [L("apple", 2)]))
    assert await inventory.reserve(ReserveStock("order-1", "ann", [L("apple", 2)])) == reservation
    assert await inventory.reservation("order-1") == reservation
    committed = await inventory.commit("order-1")
    assert committed.status == "committed"
    [level] = await inventory.stock(["apple"])
    assert (level.available, level.reserved, level.sold) == (3, 0, 2)
    assert await inventory.audit() == []
    returned = await inventory.return_sold("order-1")  # the capture was refused: back on sale
    assert (returned.status, returned.lines) == ("returned", committed.lines)
    [level] = await inventory.stock(["apple"])
    assert (level.available, level.reserved, level.sold) == (5, 0, 0)
    assert await inventory.audit() == []


async def test_both_clients_raise_the_same_problems(hosted: Hosted) -> None:
    await hosted.local.set_stock(SetStock("apple", 1, per_customer_limit=1))
    await hosted.local.reserve(ReserveStock("taken", "ann", [L("apple", 1)]))
    await hosted.local.release("taken")
    for call in (
        lambda c: c.reserve(ReserveStock("r1", None, [L("apple", 2)])),
        lambda c: c.reserve(ReserveStock("r1", None, [L("ghost", 1)])),
        lambda c: c.reserve(ReserveStock("r1", None, [L("apple", 0)])),
        lambda c: c.reserve(ReserveStock("taken", "ann", [L("apple", 2)])),
        lambda c: c.commit("taken"),
        lambda c: c.commit("missing"),
        lambda c: c.release("missing"),
        lambda c: c.return_sold("taken"),
        lambda c: c.return_sold("missing"),
        lambda c: c.set_stock(SetStock("apple", -1)),
    ):
        local = await problem_of(call(hosted.local))
        remote = await problem_of(call(hosted.http))
        assert shape(local) == shape(remote)


async def test_releases_and_expiries_reach_the_bus(hosted: Hosted) -> None:
    await hosted.local.set_stock(SetStock("apple", 5))
    await hosted.http.reserve(ReserveStock("r1", None, [L("apple", 1)]))
    await hosted.http.release("r1")
    await hosted.http.reserve(ReserveStock("r2", None, [L("apple", 2)], ttl_seconds=30))
    hosted.clock.advance(30)
    # The background sweeper and the outbox relay do the rest; nothing here calls them.
    await eventually(lambda: len(hosted.published) == 2)
    by_topic = {envelope.topic: envelope for envelope in hosted.published}
    assert by_topic[TOPIC_STOCK_RELEASED].decode(StockReleased) == StockReleased("r1", [L("apple", 1)])
    assert by_topic[TOPIC_RESERVATION_EXPIRED].decode(ReservationExpired) == ReservationExpired("r2")
    assert (await hosted.http.reservation("r2")).status == "expired"
    [level] = await hosted.http.stock(["apple"])
    assert level.available == 5


async def test_the_service_is_ready_only_while_started(hosted: Hosted) -> None:
    await hosted.service.check_ready()
    await hosted.service.stop()
    with pytest.raises(Problem):
        await hosted.service.check_ready()
    assert (await problem_of(hosted.http.stock(["apple"]))).status == 503
    await hosted.service.start()
    assert await hosted.http.stock(["apple"]) == []
