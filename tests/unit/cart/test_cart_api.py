"""The cart's internal HTTP API as raw requests see it: strict bodies, the account header, problems."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from peakshop.cart.api import ACCOUNT_HEADER, create_router
from peakshop.cart.handlers import CartHandlers
from peakshop.platform.metrics import Metrics
from peakshop.platform.web import Readiness, create_app

JSON = {"content-type": "application/json"}


@pytest.fixture
async def http(cart: CartHandlers) -> AsyncIterator[AsyncTestClient]:
    app = create_app(
        name="cart", routers=[create_router(cart)], lifespan=None, metrics=Metrics(), readiness=Readiness()
    )
    async with AsyncTestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"sku_id": "sku_a", "quantity": "2"}', "quantity"),
        ('{"sku_id": "sku_a", "quantity": 1.5}', "quantity"),
        ('{"sku_id": "sku_a", "quantity": 2.0}', "quantity"),
        ('{"sku_id": "sku_a", "quantity": 0}', "quantity"),
        ('{"sku_id": "sku_a", "quantity": -1}', "quantity"),
        ('{"sku_id": "sku_a", "quantity": 1000000000000}', "quantity"),
        ('{"sku_id": "sku_a", "quantity": 100000000000000000000000}', "quantity"),
        ('{"sku_id": "sku_a"}', "quantity"),
        ('{"sku_id": "sku_a", "quantity": 1, "price": 1}', "price"),
        ('{"sku_id": "sku_a", "quantity": 1, "total": 0}', "total"),
        ('{"sku_id": "", "quantity": 1}', "sku_id"),
    ],
)
async def test_a_body_is_decoded_strictly_and_the_field_is_named(
    http: AsyncTestClient, body: str, field: str
) -> None:
    response = await http.post("/internal/cart/items", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"].endswith("/invalid-request")
    assert problem["field"] == field and problem["detail"].startswith(f"{field}: ")
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_malformed_json_is_a_bad_request(http: AsyncTestClient) -> None:
    response = await http.post("/internal/cart/items", content="{not json", headers=JSON)
    assert response.status_code == 400


async def test_a_client_price_is_refused_and_the_catalog_price_is_shown(http: AsyncTestClient) -> None:
    refused = await http.post(
        "/internal/cart/items", content='{"sku_id": "sku_a", "quantity": 1, "unit_price": 1}', headers=JSON
    )
    assert refused.status_code == 400 and refused.json()["field"] == "unit_price"
    added = await http.post("/internal/cart/items", json={"sku_id": "sku_a", "quantity": 1})
    assert added.status_code == 200
    assert added.json()["lines"][0]["unit_price"] == 1_250


async def test_the_account_header_decides_whose_cart_it_is(http: AsyncTestClient) -> None:
    mine = await http.post(
        "/internal/cart/items", json={"sku_id": "sku_a", "quantity": 1}, headers={ACCOUNT_HEADER: "acct-1"}
    )
    cart = mine.json()
    assert (cart["owner"], cart["account_id"]) == ("account", "acct-1")
    path = f"/internal/cart/carts/{cart['id']}"
    assert (await http.get(path, headers={ACCOUNT_HEADER: "acct-1"})).status_code == 200
    for headers in ({}, {ACCOUNT_HEADER: "acct-2"}):
        foreign = await http.get(path, headers=headers)
        assert foreign.status_code == 404 and foreign.json()["type"].endswith("/cart-not-found")
    # Endpoints that act for an account require the header.
    assert (await http.post("/internal/cart/account-cart")).status_code == 400
    assert (await http.post(f"{path}/merge")).status_code == 400


async def test_lines_change_and_go_over_http(http: AsyncTestClient) -> None:
    cart = (await http.post("/internal/cart/items", json={"sku_id": "sku_a", "quantity": 1})).json()
    line = f"/internal/cart/carts/{cart['id']}/lines/sku_a"
    changed = await http.put(line, content='{"quantity": 3}', headers=JSON)
    assert changed.status_code == 200 and changed.json()["item_count"] == 3
    refused = await http.put(line, content='{"quantity": "3"}', headers=JSON)
    assert refused.status_code == 400 and refused.json()["field"] == "quantity"
    limited = await http.put(line, json={"quantity": 11})
    assert limited.status_code == 409 and limited.json()["limit"] == "max_line_quantity"
    removed = await http.delete(line)
    assert removed.status_code == 200 and removed.json()["lines"] == []
    checked_out = await http.put(f"/internal/cart/carts/{cart['id']}/checkout", json={"order_id": "o-1"})
    assert checked_out.status_code == 204
