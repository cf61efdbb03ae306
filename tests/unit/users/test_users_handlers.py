from __future__ import annotations

import asyncio
from collections.abc import Callable
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
from peakshop.platform.db import SqliteDatabase
from peakshop.platform.problems import Problem
from peakshop.users.handlers import UsersHandlers

ANN = NewAccount(email="Ann@Shop.Example", password="correct horse", name="Ann")
HOME = NewAddress(name="Ann", line1="1 Main St", city="Springfield", postal_code="12345", country="US")


async def count(db: SqliteDatabase, table: str) -> int:
    row = await db.fetchrow(f"SELECT count(*) FROM users.{table}")
    assert row is not None
    return int(row[0])


async def problem_of(call: object) -> Problem:
    with pytest.raises(Problem) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_a_shopper_registers_with_a_normalised_email(handlers: UsersHandlers) -> None:
    account = await handlers.register(ANN)
    assert account.email == "ann@shop.example"
    assert account.name == "Ann"
    assert len(account.id) == 32


async def test_the_password_is_stored_as_an_argon2id_hash(
    handlers: UsersHandlers, users_db: SqliteDatabase
) -> None:
    await handlers.register(ANN)
    row = await users_db.fetchrow("SELECT password_hash FROM users.accounts")
    assert row is not None
    assert row[0].startswith("$argon2id$")
    assert "correct horse" not in row[0]


async def test_an_email_registers_only_once_whatever_its_case(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    problem = await problem_of(
        handlers.register(NewAccount(email="ANN@Shop.EXAMPLE", password="another one", name="Imposter"))
    )
    assert (problem.status, problem.slug) == (409, "email-taken")


async def test_two_simultaneous_registrations_of_one_email_make_one_account(
    handlers: UsersHandlers, users_db: SqliteDatabase
) -> None:
    results = await asyncio.gather(*(handlers.register(ANN) for _ in range(5)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(r.slug == "email-taken" for r in results if isinstance(r, Problem))
    assert await count(users_db, "accounts") == 1


async def test_registering_writes_account_registered_to_the_outbox(
    handlers: UsersHandlers, users_db: SqliteDatabase
) -> None:
    account = await handlers.register(ANN)
    rows = await users_db.fetch("SELECT topic, payload FROM users.outbox")
    assert len(rows) == 1
    assert rows[0]["topic"] == TOPIC_ACCOUNT_REGISTERED
    event = msgspec.json.decode(rows[0]["payload"], type=AccountRegistered)
    assert event == AccountRegistered(account_id=account.id, email="ann@shop.example")


async def test_a_refused_registration_leaves_no_event(
    handlers: UsersHandlers, users_db: SqliteDatabase
) -> None:
    await handlers.register(ANN)
    await problem_of(handlers.register(ANN))
    assert await count(users_db, "outbox") == 1


async def test_registration_checks_the_contract_limits_in_process_too(handlers: UsersHandlers) -> None:
    problem = await problem_of(
        handlers.register(NewAccount(email="ann@shop.example", password="short", name="A"))
    )
    assert (problem.status, problem.slug) == (400, "invalid-request")


async def test_a_shopper_logs_in_and_the_token_finds_the_account(
    handlers: UsersHandlers, users_db: SqliteDatabase, clock: Any
) -> None:
    account = await handlers.register(ANN)
    session = await handlers.log_in(Credentials("ANN@shop.example", "correct horse"), "203.0.113.7")
    assert session.account == account
    assert session.expires_at == clock.now + 7 * 24 * 3600
    assert await handlers.me(session.token) == account
    assert await handlers.authenticate(session.token) == account
    stored = await users_db.fetch("SELECT token_hash FROM users.sessions")
    assert [row[0] for row in stored] != [session.token]
    assert session.token not in stored[0][0]


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    wrong = await problem_of(
        handlers.log_in(Credentials("ann@shop.example", "wrong password"), "203.0.113.7")
    )
    unknown = await problem_of(
        handlers.log_in(Credentials("bob@shop.example", "correct horse"), "203.0.113.7")
    )
    assert wrong.to_dict() == unknown.to_dict()
    assert (wrong.status, wrong.slug) == (401, "invalid-credentials")
    assert wrong.headers == unknown.headers


async def test_an_unknown_email_still_costs_a_password_verification(
    handlers: UsersHandlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    original = handlers.passwords.verify

    async def counting_verify(password_hash: str, password: str) -> bool:
        verified.append(password)
        return await original(password_hash, password)

    monkeypatch.setattr(handlers.passwords, "verify", counting_verify)
    await problem_of(handlers.log_in(Credentials("nobody@shop.example", "guess one"), "203.0.113.7"))
    assert verified == ["guess one"]


async def test_failed_log_ins_lock_the_account_with_retry_after(handlers: UsersHandlers, clock: Any) -> None:
    await handlers.register(ANN)
    for _ in range(5):
        problem = await problem_of(handlers.log_in(Credentials("ann@shop.example", "guess"), "203.0.113.7"))
        assert problem.status == 401
    # Even the right password is refused while locked: the lock is what stops guessing.
    locked = await problem_of(
        handlers.log_in(Credentials("ann@shop.example", "correct horse"), "198.51.100.1")
    )
    assert (locked.status, locked.slug) == (429, "too-many-requests")
    assert locked.headers["Retry-After"] == "300"
    clock.advance(120)
    locked = await problem_of(
        handlers.log_in(Credentials("ann@shop.example", "correct horse"), "198.51.100.1")
    )
    assert locked.headers["Retry-After"] == "180"
    clock.advance(181)
    session = await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "198.51.100.1")
    assert session.account.email == "ann@shop.example"


async def test_an_unknown_email_locks_just_like_a_known_one(handlers: UsersHandlers) -> None:
    for _ in range(5):
        await problem_of(handlers.log_in(Credentials("ghost@shop.example", "guess"), "203.0.113.7"))
    locked = await problem_of(handlers.log_in(Credentials("ghost@shop.example", "guess"), "203.0.113.7"))
    assert locked.status == 429


async def test_successful_log_ins_do_not_use_up_the_failure_budget(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    right = Credentials("ann@shop.example", "correct horse")
    wrong = Credentials("ann@shop.example", "guess")
    for _ in range(4):
        await problem_of(handlers.log_in(wrong, "203.0.113.7"))
    for _ in range(10):
        await handlers.log_in(right, "203.0.113.7")
    assert (await problem_of(handlers.log_in(wrong, "203.0.113.7"))).status == 401
    assert (await problem_of(handlers.log_in(right, "203.0.113.7"))).status == 429


async def test_one_client_address_gets_a_fixed_number_of_attempts_per_window(
    make_handlers: Callable[..., UsersHandlers], clock: Any
) -> None:
    handlers = make_handlers(login_attempts_per_client=3, login_client_window_seconds=60)
    await handlers.register(ANN)
    right = Credentials("ann@shop.example", "correct horse")
    clock.now = 1_700_000_080.0  # 20 seconds before the minute turns
    for _ in range(3):
        await handlers.log_in(right, "203.0.113.7")
    limited = await problem_of(handlers.log_in(right, "203.0.113.7"))
    assert (limited.status, limited.headers["Retry-After"]) == (429, "20")
    assert limited.extra["retry_after"] == 20
    # Another client is not affected; this one is let in again once the window turns.
    await handlers.log_in(right, "198.51.100.1")
    clock.advance(20)
    await handlers.log_in(right, "203.0.113.7")


async def test_logging_out_ends_the_session(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    session = await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")
    other = await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")
    await handlers.log_out(session.token)
    problem = await problem_of(handlers.me(session.token))
    assert (problem.status, problem.slug) == (401, "unauthorized")
    assert (await handlers.me(other.token)).email == "ann@shop.example"
    await handlers.log_out(session.token)  # a retried log-out is fine


async def test_an_expired_session_is_refused(
    handlers: UsersHandlers, clock: Any, users_db: SqliteDatabase
) -> None:
    await handlers.register(ANN)
    session = await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")
    clock.advance(7 * 24 * 3600 - 1)
    await handlers.authenticate(session.token)
    clock.advance(1)
    problem = await problem_of(handlers.authenticate(session.token))
    assert (problem.status, problem.slug) == (401, "unauthorized")
    # The next log-in clears the account's dead sessions away.
    await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")
    assert await count(users_db, "sessions") == 1


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 500])
async def test_missing_or_unknown_tokens_get_one_answer(handlers: UsersHandlers, token: str | None) -> None:
    problem = await problem_of(handlers.me(token))
    assert (problem.status, problem.slug) == (401, "unauthorized")
    assert problem.detail == "A valid session token is required."


async def test_addresses_are_kept_in_the_order_they_were_added(handlers: UsersHandlers, clock: Any) -> None:
    await handlers.register(ANN)
    token = (await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")).token
    first = await handlers.add_address(token, HOME)
    clock.advance(1)
    second = await handlers.add_address(token, NewAddress("Ann", "2 Side St", "Shelbyville", "54321", "US"))
    assert await handlers.addresses(token) == [first, second]
    assert first.line2 == "" and first.country == "US"


async def test_addresses_belong_to_their_account(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    await handlers.register(NewAccount(email="bob@shop.example", password="bobs password", name="Bob"))
    ann = (await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")).token
    bob = (await handlers.log_in(Credentials("bob@shop.example", "bobs password"), "203.0.113.7")).token
    await handlers.add_address(ann, HOME)
    assert await handlers.addresses(bob) == []


async def test_an_account_keeps_at_most_twenty_addresses(handlers: UsersHandlers) -> None:
    await handlers.register(ANN)
    token = (await handlers.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")).token
    await asyncio.gather(*(handlers.add_address(token, HOME) for _ in range(20)))
    problem = await problem_of(handlers.add_address(token, HOME))
    assert (problem.status, problem.slug) == (409, "address-limit-reached")
    assert len(await handlers.addresses(token)) == 20


async def test_address_needs_a_session(handlers: UsersHandlers) -> None:
    problem = await problem_of(handlers.add_address("no-such-token", HOME))
    assert problem.status == 401


async def test_a_hash_made_at_an_older_cost_is_upgraded_at_log_in(
    make_handlers: Callable[..., UsersHandlers], users_db: SqliteDatabase
) -> None:
    old = make_handlers(argon2_time_cost=1)
    await old.register(ANN)
    new = make_handlers(argon2_time_cost=2)
    await new.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")
    row = await users_db.fetchrow("SELECT password_hash FROM users.accounts")
    assert row is not None and ",t=2," in row[0]
    await new.log_in(Credentials("ann@shop.example", "correct horse"), "203.0.113.7")


async def test_requests_before_the_database_is_attached_are_unavailable(
    make_handlers: Callable[..., UsersHandlers],
) -> None:
    handlers = make_handlers()
    handlers.detach()
    problem = await problem_of(handlers.register(ANN))
    assert (problem.status, problem.slug) == (503, "unavailable")
