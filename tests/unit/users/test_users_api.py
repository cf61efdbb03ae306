from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import PROBLEM_BASE
from peakshop.platform.web import Readiness, create_app
from peakshop.users.api import create_router
from peakshop.users.handlers import UsersHandlers

ANN = {"email": "ann@shop.example", "password": "correct horse", "name": "Ann"}
ANN_LOGIN = {"email": "ann@shop.example", "password": "correct horse"}
IP = {"x-peakshop-client-ip": "203.0.113.7"}
HOME = {"name": "Ann", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


@pytest.fixture
async def api(handlers: UsersHandlers) -> AsyncIterator[AsyncTestClient]:
    app = create_app(
        name="users",
        routers=[create_router(handlers)],
        lifespan=None,
        metrics=Metrics(),
        readiness=Readiness(),
    )
    async with AsyncTestClient(app=app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_register_log_in_and_read_me_over_http(api: AsyncTestClient) -> None:
    created = await api.post("/internal/users/accounts", json=ANN)
    assert created.status_code == 201
    account = created.json()
    assert account["email"] == "ann@shop.example"
    assert "password" not in created.text

    logged_in = await api.post("/internal/users/sessions", json=ANN_LOGIN, headers=IP)
    assert logged_in.status_code == 201
    token = logged_in.json()["token"]

    me = await api.get("/internal/users/me", headers=bearer(token))
    assert (me.status_code, me.json()) == (200, account)


async def test_a_duplicate_email_is_a_409_problem(api: AsyncTestClient) -> None:
    await api.post("/internal/users/accounts", json=ANN)
    response = await api.post("/internal/users/accounts", json={**ANN, "email": "ANN@shop.example"})
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM_BASE + "email-taken"


async def test_a_malformed_body_is_a_400_problem(api: AsyncTestClient) -> None:
    response = await api.post("/internal/users/accounts", json={**ANN, "password": "short"})
    assert response.status_code == 400
    assert response.json()["type"] == PROBLEM_BASE + "invalid-request"


async def test_wrong_password_and_unknown_email_look_the_same_on_the_wire(
    api: AsyncTestClient,
) -> None:
    await api.post("/internal/users/accounts", json=ANN)
    wrong = await api.post("/internal/users/sessions", json={**ANN_LOGIN, "password": "nope"}, headers=IP)
    unknown = await api.post(
        "/internal/users/sessions", json={**ANN_LOGIN, "email": "bob@shop.example"}, headers=IP
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["type"] == PROBLEM_BASE + "invalid-credentials"


async def test_a_log_in_needs_the_client_address(api: AsyncTestClient) -> None:
    response = await api.post("/internal/users/sessions", json=ANN_LOGIN)
    assert response.status_code == 400


async def test_too_many_failures_answer_429_with_retry_after(api: AsyncTestClient) -> None:
    await api.post("/internal/users/accounts", json=ANN)
    for _ in range(5):
        await api.post("/internal/users/sessions", json={**ANN_LOGIN, "password": "nope"}, headers=IP)
    response = await api.post("/internal/users/sessions", json=ANN_LOGIN, headers=IP)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "300"
    assert response.json()["retry_after"] == 300


async def test_log_out_then_me_is_401(api: AsyncTestClient) -> None:
    await api.post("/internal/users/accounts", json=ANN)
    token = (await api.post("/internal/users/sessions", json=ANN_LOGIN, headers=IP)).json()["token"]
    assert (await api.delete("/internal/users/sessions", headers=bearer(token))).status_code == 204
    me = await api.get("/internal/users/me", headers=bearer(token))
    assert me.status_code == 401
    assert me.json()["type"] == PROBLEM_BASE + "unauthorized"


@pytest.mark.parametrize("headers", [{}, {"authorization": "Basic abc"}, {"authorization": "Bearer nope"}])
async def test_me_without_a_live_session_is_401(
    api: AsyncTestClient,
    headers: dict[str, str],
) -> None:
    response = await api.get("/internal/users/me", headers=headers)
    assert response.status_code == 401


async def test_addresses_over_http(api: AsyncTestClient) -> None:
    await api.post("/internal/users/accounts", json=ANN)
    token = (await api.post("/internal/users/sessions", json=ANN_LOGIN, headers=IP)).json()["token"]
    added = await api.post("/internal/users/me/addresses", json=HOME, headers=bearer(token))
    assert added.status_code == 201
    listed = await api.get("/internal/users/me/addresses", headers=bearer(token))
    assert listed.json() == [added.json()]
    bad = await api.post(
        "/internal/users/me/addresses", json={**HOME, "country": "usa"}, headers=bearer(token)
    )
    assert bad.status_code == 400


async def test_the_internal_api_stays_out_of_the_public_schema(api: AsyncTestClient) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    assert not any(path.startswith("/internal/users") for path in schema.get("paths", {}))


async def test_requests_are_measured_as_the_users_service(api: AsyncTestClient) -> None:
    await api.get("/internal/users/me")
    metrics = (await api.get("/metrics")).text
    assert 'service="users"' in metrics
    assert 'http_route="/internal/users/me"' in metrics
