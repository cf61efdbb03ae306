from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from peakshop.contracts.users import (
    TOPIC_ACCOUNT_REGISTERED,
    AccountRegistered,
    Credentials,
    NewAccount,
    NewAddress,
)
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.problems import Problem
from peakshop.users.handlers import UsersHandlers

pytestmark = pytest.mark.services

ANN = NewAccount(email="Ann@Shop.Example", password="correct horse", name="Ann")
RIGHT = Credentials("ann@shop.example", "correct horse")
WRONG = Credentials("ann@shop.example", "wrong password")
HOME = NewAddress(name="Ann", line1="1 Main St", city="Springfield", postal_code="12345", country="US")


async def problem_of(call: Awaitable[Any]) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


async def count(db: PostgresDatabase, table: str) -> int:
    row = await db.fetchrow(f"SELECT count(*) FROM users.{table}")
    assert row is not None
    return int(row[0])


async def test_registering_stores_the_account_and_its_event_together(
    handlers: UsersHandlers, users_db: PostgresDatabase
) -> None:
    account = await handlers.register(ANN)
    assert account.email == "ann@shop.example"
    rows = await users_db.fetch("SELECT topic, payload FROM users.outbox")
    assert [row["topic"] for row in rows] == [TOPIC_ACCOUNT_REGISTERED]
    assert msgspec.json.decode(rows[0]["payload"], type=AccountRegistered).account_id == account.id
    row = await users_db.fetchrow("SELECT password_hash FROM users.accounts")
    assert row is not None and row[0].startswith("$argon2id$")


async def test_simultaneous_registrations_of_one_email_make_one_account_and_one_event(
    handlers: UsersHandlers, users_db: PostgresDatabase
) -> None:
    spellings = ["ann@shop.example", "ANN@shop.example", "Ann@Shop.Example", "ann@SHOP.example"]
    results = await asyncio.gather(
        *(handlers.register(NewAccount(email=e, password="correct horse", name="Ann")) for e in spellings),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert {(r.status, r.slug) for r in results if isinstance(r, Problem)} == {(409, "email-taken")}
    assert await count(users_db, "accounts") == 1
    assert await count(users_db, "outbox") == 1


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    wrong = await problem_of(handlers.log_in(WRONG, "203.0.113.7"))
    unknown = await problem_of(handlers.log_in(Credentials("bob@shop.example", "x"), "203.0.113.7"))
    assert wrong.to_dict() == unknown.to_dict()
    assert (wrong.status, wrong.slug) == (401, "invalid-credentials")


async def test_log_in_me_log_out(handlers: UsersHandlers) -> None:
    account = await handlers.register(ANN)
    session = await handlers.log_in(RIGHT, "203.0.113.7")
    assert await handlers.me(session.token) == account
    await handlers.log_out(session.token)
    assert (await problem_of(handlers.me(session.token))).slug == "unauthorized"


async def test_an_expired_session_is_refused(handlers: UsersHandlers, clock: Any) -> None:
    await handlers.register(ANN)
    session = await handlers.log_in(RIGHT, "203.0.113.7")
    clock.advance(7 * 24 * 3600)
    assert (await problem_of(handlers.authenticate(session.token))).status == 401


async def test_failed_log_ins_lock_the_account_in_redis(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    for _ in range(5):
        assert (await problem_of(handlers.log_in(WRONG, "203.0.113.7"))).status == 401
    locked = await problem_of(handlers.log_in(RIGHT, "198.51.100.1"))
    assert (locked.status, locked.headers["Retry-After"]) == (429, "300")


async def test_the_lock_is_shared_by_every_replica(
    make_handlers: Callable[..., UsersHandlers],
) -> None:
    replica_a, replica_b = make_handlers(), make_handlers()
    await replica_a.register(ANN)
    for replica in (replica_a, replica_b, replica_a, replica_b, replica_a):
        await problem_of(replica.log_in(WRONG, "203.0.113.7"))
    assert (await problem_of(replica_b.log_in(RIGHT, "203.0.113.7"))).status == 429


async def test_successful_log_ins_do_not_use_up_the_failure_budget(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    for _ in range(4):
        await problem_of(handlers.log_in(WRONG, "203.0.113.7"))
    for _ in range(5):
        await handlers.log_in(RIGHT, "203.0.113.7")
    assert (await problem_of(handlers.log_in(WRONG, "203.0.113.7"))).status == 401
    assert (await problem_of(handlers.log_in(RIGHT, "203.0.113.7"))).status == 429


async def test_one_client_address_is_limited_per_window(
    make_handlers: Callable[..., UsersHandlers], clock: Any
) -> None:
    handlers = make_handlers(login_attempts_per_client=3)
    await handlers.register(ANN)
    clock.now = 1_700_000_080.0
    await asyncio.gather(*(handlers.log_in(RIGHT, "203.0.113.7") for _ in range(3)))
    limited = await problem_of(handlers.log_in(RIGHT, "203.0.113.7"))
    assert (limited.status, limited.headers["Retry-After"]) == (429, "20")
    await handlers.log_in(RIGHT, "198.51.100.1")


async def test_concurrent_additions_never_pass_the_address_limit(
    handlers: UsersHandlers, users_db: PostgresDatabase
) -> None:
    await handlers.register(ANN)
    token = (await handlers.log_in(RIGHT, "203.0.113.7")).token
    results = await asyncio.gather(
        *(handlers.add_address(token, HOME) for _ in range(26)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 6
    assert all(isinstance(r, Problem) and r.slug == "address-limit-reached" for r in refused)
    assert len(await handlers.addresses(token)) == 20
    assert await count(users_db, "addresses") == 20
