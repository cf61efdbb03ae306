"""A shopper's requests against `peakshop up`, on both topologies."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import PRODUCTS, Shop

pytestmark = pytest.mark.e2e


def _problem(response: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body  # type: ignore[no-any-return]


def test_the_first_page_has_what_was_asked_for(shop: Shop) -> None:
    response = httpx.get(f"{shop.base_url}/api/products", params={"limit": 5})
    assert response.status_code == 200
    page = response.json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    assert all(item["price_from"] > 0 and item["currency"] == "USD" for item in page["items"])


def test_walking_the_cursor_visits_every_product_once(shop: Shop) -> None:
    seen: list[str] = []
    cursor = None
    with httpx.Client(base_url=shop.base_url) as client:
        for _ in range(PRODUCTS):  # bounded: a cursor that never ends fails the test below
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/products", params=params).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert len(seen) == len(set(seen)) == PRODUCTS


def test_a_product_page_is_cacheable_and_revalidates(shop: Shop) -> None:
    first = httpx.get(f"{shop.base_url}/api/products", params={"limit": 1}).json()["items"][0]
    response = httpx.get(f"{shop.base_url}/api/products/{first['id']}")
    assert response.status_code == 200
    product = response.json()
    assert product["id"] == first["id"] and product["skus"]
    assert min(sku["price"] for sku in product["skus"]) == product["price_from"] == first["price_from"]
    etag = response.headers["etag"]
    assert "max-age" in response.headers["cache-control"]
    again = httpx.get(f"{shop.base_url}/api/products/{first['id']}", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""


def test_categories_and_filtering_by_one(shop: Shop) -> None:
    categories = httpx.get(f"{shop.base_url}/api/categories").json()
    assert len(categories) >= 5
    for category in (c for c in categories if c["product_count"]):
        # a parent category holds its children's products too
        family = {category["id"]} | {c["id"] for c in categories if c["parent_id"] == category["id"]}
        params = {"category": category["slug"], "limit": 100}
        page = httpx.get(f"{shop.base_url}/api/products", params=params).json()
        assert page["items"] and {item["category_id"] for item in page["items"]} <= family


def test_search_finds_a_product_by_the_words_of_its_name(shop: Shop) -> None:
    product = httpx.get(f"{shop.base_url}/api/products", params={"limit": 1}).json()["items"][0]
    words = product["name"].split()[:2]
    found = httpx.get(f"{shop.base_url}/api/search", params={"q": " ".join(words), "limit": 100}).json()
    assert product["id"] in [item["id"] for item in found["items"]]


@pytest.mark.parametrize(
    "q", ["' OR 1=1 --", 'shirt" NEAR(a b)', "*", "-", "a:b AND (c OR", "'; DROP TABLE catalog.products; --"]
)
def test_search_text_full_of_syntax_is_only_text(shop: Shop, q: str) -> None:
    response = httpx.get(f"{shop.base_url}/api/search", params={"q": q})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["items"], list)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "9" * 40}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJmb3JnZWQiOiB0cnVlfQ"}, "cursor"),
        ({"q": "x" * 201}, "q"),
        ({"category": "no-such-category"}, "categor"),
    ],
)
def test_bad_listing_parameters_are_named_in_a_4xx(shop: Shop, params: dict, needle: str) -> None:  # type: ignore[type-arg]
    response = httpx.get(f"{shop.base_url}/api/products", params=params)
    assert 400 <= response.status_code < 500, response.text
    assert needle in _problem(response, response.status_code)["detail"].lower()


def test_an_unknown_product_is_a_404_problem(shop: Shop) -> None:
    body = _problem(httpx.get(f"{shop.base_url}/api/products/p_nope"), 404)
    assert "p_nope" in body["detail"]


def test_an_account_can_register_log_in_see_itself_and_log_out(shop: Shop) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=shop.base_url) as client:
        account = client.post(
            "/api/accounts", json={"email": email, "password": "correct horse", "name": "Ada"}
        )
        assert account.status_code == 201, account.text
        _problem(
            client.post("/api/accounts", json={"email": email, "password": "correct horse", "name": "A"}), 409
        )
        session = client.post("/api/sessions", json={"email": email, "password": "correct horse"})
        assert session.status_code == 201
        token = session.json()["token"]
        auth = {"authorization": f"Bearer {token}"}
        me = client.get("/api/me", headers=auth)
        assert me.status_code == 200 and me.json()["email"] == email
        address = {
            "name": "Ada",
            "line1": "1 Main St",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
        }
        assert client.post("/api/me/addresses", json=address, headers=auth).status_code == 201
        assert [a["city"] for a in client.get("/api/me/addresses", headers=auth).json()] == ["Springfield"]
        assert client.delete("/api/sessions/current", headers=auth).status_code == 204
        _problem(client.get("/api/me", headers=auth), 401)
        _problem(client.get("/api/me"), 401)


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"email": "a@b.co", "password": "12345678"', "application/json", 400),
        (b'{"email": "a@b.co", "password": "12345678", "name": "A", "admin": true}', "application/json", 400),
        (b'{"email": 5, "password": "12345678", "name": "A"}', "application/json", 400),
        (b'{"email": "a@b.co"}', "application/json", 400),
        (b'{"email": "a@b.co", "password": "12345678", "name": "A"}', "text/plain", 415),
        (b'{"name": "' + b"x" * 100_000 + b'"}', "application/json", 413),
    ],
)
def test_bad_bodies_are_4xx_problems(shop: Shop, content: bytes, content_type: str, status: int) -> None:
    response = httpx.post(
        f"{shop.base_url}/api/accounts", content=content, headers={"content-type": content_type}
    )
    _problem(response, status)


def test_metrics_carry_the_service_label(shop: Shop) -> None:
    httpx.get(f"{shop.base_url}/api/categories")
    text = httpx.get(f"{shop.base_url}/metrics").text
    assert "http_server_request_duration_seconds_count{" in text
    assert 'service="storefront"' in text and 'http_route="/api/categories"' in text


def test_the_openapi_document_describes_the_public_api(shop: Shop) -> None:
    schema = httpx.get(f"{shop.base_url}/schema/openapi.json").json()
    assert {"/api/products", "/api/products/{product_id}", "/api/sessions", "/api/me"} <= set(schema["paths"])
    assert not [path for path in schema["paths"] if path.startswith("/internal")]


def test_split_serves_the_same_answers_as_local(local_shop: Shop, split_shop: Shop) -> None:
    for path in ("/api/categories", "/api/products?limit=20", "/api/search?q=cotton&limit=10"):
        assert httpx.get(local_shop.base_url + path).json() == httpx.get(split_shop.base_url + path).json(), (
            path
        )
    first = httpx.get(local_shop.base_url + "/api/products?limit=1").json()["items"][0]["id"]
    local = httpx.get(f"{local_shop.base_url}/api/products/{first}")
    split = httpx.get(f"{split_shop.base_url}/api/products/{first}")
    assert local.json() == split.json() and local.headers["etag"] == split.headers["etag"]
