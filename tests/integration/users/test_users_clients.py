"""The users service hosted for real (PostgreSQL, Redis, an HTTP server), reached by both clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest

from peakshop.contracts.users import (
    TOPIC_ACCOUNT_REGISTERED,
    AccountRegistered,
    Credentials,
    NewAccount,
    NewAddress,
)
from peakshop.platform.bus import InProcessBus
from peakshop.platform.cache import RedisCache
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.http_client import ServiceHttpClient
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Problem
from peakshop.platform.service import Infrastructure
from peakshop.platform.settings import PlatformSettings
from peakshop.platform.web import Readiness
from peakshop.users.client import HttpUsersClient, LocalUsersClient, UsersClient
from peakshop.users.service import UsersService
from peakshop.users.settings import UsersSettings
from tests.served import served

pytestmark = pytest.mark.services

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}
ANN = NewAccount(email="Ann@Shop.Example", password="correct horse", name="Ann")
RIGHT = Credentials("ann@shop.example", "correct horse")
WRONG = Credentials("ann@shop.example", "wrong password")
HOME = NewAddress(name="Ann", line1="1 Main St", city="Springfield", postal_code="12345", country="US")


@dataclass
class Hosted:
    service: UsersService
    local: LocalUsersClient
    http: HttpUsersClient
    published: list[Envelope]


@pytest.fixture
async def hosted(
    postgres_url: str, users_db: PostgresDatabase, cache: RedisCache, clock: Any
) -> AsyncIterator[Hosted]:
    published: list[Envelope] = []

    async def record(envelope: Envelope) -> None:
        published.append(envelope)

    bus = InProcessBus()
    bus.subscribe("users-test", [TOPIC_ACCOUNT_REGISTERED], record)
    await bus.start()
    platform = PlatformSettings(
        topology="split", postgres_url=postgres_url, webhook_secret="integration-tests"
    )
    infra = Infrastructure(settings=platform, metrics=Metrics(), bus=bus, cache=cache)
    service = UsersService(infra, UsersSettings(**FAST_ARGON2), clock=clock)
    await service.start()
    readiness = Readiness()
    readiness.checks.append(service.check_ready)
    try:
        async with served("users", service.routers(), metrics=infra.metrics, readiness=readiness) as base_url:
            remote = HttpUsersClient(ServiceHttpClient("users", base_url))
            await remote.start()
            try:
                yield Hosted(service, service.client(), remote, published)
            finally:
                await remote.close()
    finally:
        await service.stop()
        await infra.close_databases()
        await bus.close()


@pytest.fixture(params=["local", "http"])
def users(request: pytest.FixtureRequest, hosted: Hosted) -> UsersClient:
    client: UsersClient = getattr(hosted, request.param)
    return client


async def problem_of(call: Awaitable[Any]) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


def shape(problem: Problem) -> tuple[int, str, str, str, str | None]:
    return (problem.status, problem.slug, problem.title, problem.detail, problem.headers.get("Retry-After"))


async def test_the_whole_journey_through_either_client(users: UsersClient) -> None:
    account = await users.register(ANN)
    session = await users.log_in(RIGHT, "203.0.113.7")
    assert session.account == account
    assert await users.me(session.token) == account
    assert await users.authenticate(session.token) == account
    address = await users.add_address(session.token, HOME)
    assert await users.addresses(session.token) == [address]
    await users.log_out(session.token)
    assert (await problem_of(users.me(session.token))).status == 401


async def test_both_clients_raise_the_same_problems(hosted: Hosted) -> None:
    await hosted.local.register(ANN)
    for call in (
        lambda u: u.register(ANN),
        lambda u: u.register(NewAccount(email="bob@shop.example", password="short", name="Bob")),
        lambda u: u.log_in(WRONG, "203.0.113.7"),
        lambda u: u.log_in(Credentials("bob@shop.example", "x"), "203.0.113.7"),
        lambda u: u.me("no-such-token"),
        lambda u: u.authenticate(""),
        lambda u: u.addresses("no-such-token"),
        lambda u: u.add_address("no-such-token", HOME),
    ):
        local = await problem_of(call(hosted.local))
        remote = await problem_of(call(hosted.http))
        if local.slug == "invalid-request":
            # Validation wording comes from the framework on one side and msgspec on the other.
            assert (local.status, local.slug) == (remote.status, remote.slug)
        else:
            assert shape(local) == shape(remote)


async def test_both_clients_are_told_when_to_retry(hosted: Hosted) -> None:
    await hosted.local.register(ANN)
    for _ in range(5):
        await problem_of(hosted.local.log_in(WRONG, "203.0.113.7"))
    local = await problem_of(hosted.local.log_in(RIGHT, "203.0.113.7"))
    remote = await problem_of(hosted.http.log_in(RIGHT, "203.0.113.7"))
    assert shape(local) == shape(remote)
    assert remote.headers["Retry-After"] == "300"


async def test_the_relay_publishes_account_registered(hosted: Hosted) -> None:
    account = await hosted.http.register(ANN)
    for _ in range(100):
        if hosted.published:
            break
        await asyncio.sleep(0.02)
    assert [e.decode(AccountRegistered) for e in hosted.published] == [
        AccountRegistered(account_id=account.id, email="ann@shop.example")
    ]


async def test_the_service_is_ready_only_while_started(hosted: Hosted) -> None:
    await hosted.service.check_ready()
    await hosted.service.stop()
    with pytest.raises(Problem):
        await hosted.service.check_ready()
    assert (await problem_of(hosted.http.register(ANN))).status == 503
    await hosted.service.start()
    await hosted.http.register(ANN)
