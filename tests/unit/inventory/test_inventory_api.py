"""The internal HTTP API: the same use cases, problems as problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from peakshop.contracts.inventory import SetStock
from peakshop.inventory.api import create_router
from peakshop.inventory.handlers import InventoryHandlers
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import PROBLEM_BASE
from peakshop.platform.web import Readiness, create_app

BASE = "/internal/inventory"


@pytest.fixture
async def api(handlers: InventoryHandlers) -> AsyncIterator[AsyncTestClient]:
    await handlers.set_stock(SetStock("apple", 3))
    await handlers.set_stock(SetStock("pear", 1))
    app = create_app(
        name="inventory",
        routers=[create_router(handlers)],
        lifespan=None,
        metrics=Metrics(),
        readiness=Readiness(),
    )
    async with AsyncTestClient(app=app) as client:
        yield client


def reserve_body(reservation_id: str, *lines: tuple[str, int]) -> dict[str, object]:
    return {
        "reservation_id": reservation_id,
        "customer_id": "ann",
        "lines": [{"sku_id": s, "quantity": q} for s, q in lines],
    }


async def test_reserve_commit_and_read_over_http(api: AsyncTestClient) -> None:
    created = await api.post(f"{BASE}/reservations", json=reserve_body("r:1", ("apple", 2)))
    assert created.status_code == 201
    assert created.json()["lines"] == [{"sku_id": "apple", "quantity": 2}]
    committed = await api.post(f"{BASE}/reservations/r:1/commit")
    assert (committed.status_code, committed.json()["status"]) == (200, "committed")
    read = await api.get(f"{BASE}/reservations/r:1")
    assert read.json() == committed.json()
    levels = await api.get(f"{BASE}/stock", params={"sku_id": ["apple", "pear", "ghost"]})
    assert [(lv["sku_id"], lv["available"], lv["sold"]) for lv in levels.json()] == [
        ("apple", 1, 2),
        ("pear", 1, 0),
    ]
    assert (await api.get(f"{BASE}/audit")).json() == []


async def test_sold_out_is_a_409_problem_listing_the_skus(api: AsyncTestClient) -> None:
    response = await api.post(f"{BASE}/reservations", json=reserve_body("r1", ("apple", 1), ("pear", 2)))
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["type"], body["sku_ids"]) == (PROBLEM_BASE + "sold-out", ["pear"])


async def test_a_bad_quantity_is_a_400_naming_the_field(api: AsyncTestClient) -> None:
    response = await api.post(f"{BASE}/reservations", json=reserve_body("r1", ("apple", 0)))
    assert response.status_code == 400
    assert response.json()["field"] == "lines[0].quantity"
    malformed = await api.post(f"{BASE}/reservations", json={"reservation_id": "r1"})
    assert (malformed.status_code, malformed.json()["type"]) == (400, PROBLEM_BASE + "invalid-request")


async def test_release_and_unknown_reservations(api: AsyncTestClient) -> None:
    await api.post(f"{BASE}/reservations", json=reserve_body("r1", ("pear", 1)))
    released = await api.post(f"{BASE}/reservations/r1/release")
    assert (released.status_code, released.json()["status"]) == (200, "released")
    expired = await api.post(f"{BASE}/reservations/r1/commit")
    assert (expired.status_code, expired.json()["type"]) == (409, PROBLEM_BASE + "reservation-expired")
    missing = await api.get(f"{BASE}/reservations/nope")
    assert (missing.status_code, missing.json()["type"]) == (404, PROBLEM_BASE + "reservation-not-found")


async def test_restock_over_http(api: AsyncTestClient) -> None:
    response = await api.post(
        f"{BASE}/stock", json={"sku_id": "apple", "quantity": 10, "per_customer_limit": 4}
    )
    assert response.json() == {
        "sku_id": "apple",
        "initial": 10,
        "available": 10,
        "reserved": 0,
        "sold": 0,
        "per_customer_limit": 4,
    }
