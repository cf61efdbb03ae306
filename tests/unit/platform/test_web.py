"""The app factory: every mistake is problem+json, every request is measured."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar import Router, get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient

from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Conflict, NotFound, TooManyRequests
from peakshop.platform.web import Readiness, create_app


class Order(msgspec.Struct, forbid_unknown_fields=True):
    qty: int


@get("/things/{thing_id:str}")
async def thing(thing_id: FromPath[str]) -> dict[str, str]:
    if thing_id == "missing":
        raise NotFound("no thing 'missing'")
    if thing_id == "busy":
        raise TooManyRequests("slow down", retry_after=7)
    if thing_id == "crash":
        raise RuntimeError("secret internals")
    return {"id": thing_id}


@post("/things")
async def make(data: JSONBody[Order]) -> dict[str, int]:
    if data.qty == 0:
        raise Conflict("zero things", slug="nothing-to-make")
    return {"qty": data.qty}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
def client(metrics: Metrics, readiness: Readiness) -> Iterator[TestClient]:
    router = Router("/", route_handlers=[thing, make], opt={"service": "catalog"})
    app = create_app(
        name="test",
        routers=[router],
        lifespan=None,
        metrics=metrics,
        readiness=readiness,
        max_body_bytes=2048,
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _problem(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == response.status_code
    assert body["type"].startswith("https://peakshop.dev/problems/")
    return body


def test_a_raised_problem_becomes_problem_json(client: TestClient) -> None:
    body = _problem(client.get("/things/missing"))
    assert body["detail"] == "no thing 'missing'" and body["instance"] == "/things/missing"


def test_a_custom_slug_is_the_stable_type(client: TestClient) -> None:
    body = _problem(client.post("/things", json={"qty": 0}))
    assert body["type"].endswith("/nothing-to-make") and body["status"] == 409


def test_too_many_requests_says_when_to_come_back(client: TestClient) -> None:
    response = client.get("/things/busy")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"


def test_a_crash_is_a_500_that_reveals_nothing(client: TestClient) -> None:
    response = client.get("/things/crash")
    body = _problem(response)
    assert response.status_code == 500 and "secret" not in response.text and "Traceback" not in response.text
    assert body["type"].endswith("/internal-error")


@pytest.mark.parametrize(
    ("content", "headers", "status", "needle"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "malformed"),
        (b'{"qty": "three"}', {"content-type": "application/json"}, 400, "qty"),
        (b'{"qty": 1, "price": 1}', {"content-type": "application/json"}, 400, "price"),
        (b"{}", {"content-type": "application/json"}, 400, "qty"),
        (b'{"qty": 1}', {"content-type": "text/plain"}, 415, "JSON"),
        (b"x" * 5000, {"content-type": "application/json"}, 413, ""),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_problem(
    client: TestClient, content: bytes, headers: dict[str, str], status: int, needle: str
) -> None:
    response = client.post("/things", content=content, headers=headers)
    assert response.status_code == status
    assert needle.lower() in _problem(response)["detail"].lower()


def test_unknown_routes_and_methods_are_problems_too(client: TestClient) -> None:
    assert _problem(client.get("/nowhere"))["status"] == 404
    assert _problem(client.delete("/things"))["status"] == 405


def test_requests_are_measured_by_service_route_method_and_status(
    client: TestClient, metrics: Metrics
) -> None:
    client.get("/things/a")
    client.get("/things/b")
    client.get("/things/missing")
    text = client.get("/metrics").text
    ok = (
        'http_server_request_duration_seconds_count{http_request_method="GET",'
        'http_response_status_code="200",http_route="/things/{thing_id}",service="catalog"} 2.0'
    )
    assert ok in text
    assert 'http_response_status_code="404",http_route="/things/{thing_id}"' in text
    assert "/metrics" not in "".join(line for line in text.splitlines() if "http_route" in line)


def test_every_response_carries_a_request_id_and_echoes_the_callers(client: TestClient) -> None:
    assert len(client.get("/things/a").headers["x-request-id"]) == 32
    assert client.get("/things/a", headers={"x-request-id": "abc"}).headers["x-request-id"] == "abc"


def test_readiness_turns_off_while_draining(client: TestClient, readiness: Readiness) -> None:
    assert client.get("/readyz").status_code == 200
    readiness.draining = True
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["problems"] == ["draining"]
    assert client.get("/healthz").status_code == 200


def test_readiness_names_the_failing_dependency(client: TestClient, readiness: Readiness) -> None:
    async def database_down() -> None:
        raise ConnectionError("database down")

    readiness.checks.append(database_down)
    response = client.get("/readyz")
    assert response.status_code == 503 and "database down" in response.text
