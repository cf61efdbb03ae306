from collections.abc import AsyncIterator

import httpx
import pytest

from peakshop.catalog.api import create_router
from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.settings import CatalogSettings
from peakshop.platform.metrics import Metrics
from peakshop.platform.web import Readiness, create_app

BASE = "/internal/catalog"


@pytest.fixture
async def catalog_http(catalog_handlers: CatalogHandlers) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        name="catalog",
        routers=[create_router(catalog_handlers, CatalogSettings(cache_ttl=30))],
        lifespan=None,
        metrics=Metrics(),
        readiness=Readiness(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://catalog") as client:
        yield client


async def test_a_product_is_served_with_etag_and_cache_control(catalog_http: httpx.AsyncClient) -> None:
    response = await catalog_http.get(f"{BASE}/products/p_000001")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=30"
    assert response.json()["id"] == "p_000001"
    etag = response.headers["etag"]
    again = await catalog_http.get(f"{BASE}/products/p_000001", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag


async def test_a_stale_etag_gets_the_new_body(catalog_http: httpx.AsyncClient) -> None:
    etag = (await catalog_http.get(f"{BASE}/products/p_000001")).headers["etag"]
    sku_id = (await catalog_http.get(f"{BASE}/products/p_000001")).json()["skus"][0]["id"]
    changed = await catalog_http.put(f"{BASE}/skus/{sku_id}/price", json={"price": 4242})
    assert changed.status_code == 200 and changed.json()["price"] == 4242
    response = await catalog_http.get(f"{BASE}/products/p_000001", headers={"if-none-match": etag})
    assert response.status_code == 200
    assert response.headers["etag"] != etag


async def test_listing_and_categories_are_documents(catalog_http: httpx.AsyncClient) -> None:
    listing = await catalog_http.get(f"{BASE}/products", params={"limit": 5, "category": "jackets"})
    assert listing.status_code == 200 and len(listing.json()["items"]) == 5
    assert (
        await catalog_http.get(
            f"{BASE}/products", params={"cursor": listing.json()["next_cursor"], "category": "jackets"}
        )
    ).status_code == 200
    tree = await catalog_http.get(f"{BASE}/categories")
    assert tree.status_code == 200 and len(tree.json()) == 25
    assert tree.headers["etag"]


@pytest.mark.parametrize(
    ("params", "status", "problem"),
    [
        ({"limit": 0}, 400, "invalid-request"),
        ({"limit": 101}, 400, "invalid-request"),
        ({"limit": "ten"}, 400, "invalid-request"),
        ({"q": "x" * 201}, 400, "invalid-request"),
        ({"cursor": "not-a-cursor"}, 400, "invalid-cursor"),
        ({"category": "nowhere"}, 404, "not-found"),
    ],
)
async def test_listing_mistakes_are_problems(
    catalog_http: httpx.AsyncClient, params: dict[str, object], status: int, problem: str
) -> None:
    response = await catalog_http.get(f"{BASE}/products", params=params)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + problem)


async def test_hostile_search_is_a_normal_answer(catalog_http: httpx.AsyncClient) -> None:
    response = await catalog_http.get(f"{BASE}/products", params={"q": '") OR 1=1 -- NEAR(*) "x":y'})
    assert response.status_code == 200


async def test_skus_are_priced_and_unknown_ones_named(catalog_http: httpx.AsyncClient) -> None:
    priced = await catalog_http.post(f"{BASE}/prices", json={"sku_ids": ["sku_000001_1"]})
    assert priced.status_code == 200 and priced.json()[0]["sku_id"] == "sku_000001_1"
    missing = await catalog_http.post(f"{BASE}/prices", json={"sku_ids": ["sku_000001_1", "sku_nope"]})
    assert missing.status_code == 404 and missing.json()["sku_ids"] == ["sku_nope"]


async def test_an_invalid_price_is_refused(catalog_http: httpx.AsyncClient) -> None:
    response = await catalog_http.put(f"{BASE}/skus/sku_000001_1/price", json={"price": 0})
    assert response.status_code == 400 and response.json()["field"] == "price"
    unknown = await catalog_http.put(f"{BASE}/skus/sku_nope/price", json={"price": 100})
    assert unknown.status_code == 404
