"""The users use cases: register, log in and out, resolve a session, keep addresses."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import structlog
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from peakshop.contracts.users import (
    TOPIC_ACCOUNT_REGISTERED,
    Account,
    AccountRegistered,
    Address,
    Credentials,
    NewAccount,
    NewAddress,
    Session,
)
from peakshop.platform.cache import Cache
from peakshop.platform.db import Database
from peakshop.platform.outbox import add_to_outbox
from peakshop.platform.problems import (
    Conflict,
    InvalidInput,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from peakshop.users.domain import (
    SCHEMA,
    FixedWindow,
    LoginPolicy,
    hash_token,
    new_session_token,
    normalise_email,
    plausible_token,
    remaining_seconds,
)
from peakshop.users.repository import UsersRepository
from peakshop.users.settings import UsersSettings

log = structlog.get_logger("peakshop.users")
Clock = Callable[[], float]
S = TypeVar("S", bound=msgspec.Struct)


def email_taken() -> Conflict:
    return Conflict("An account with this email already exists.", slug="email-taken", title="Email taken")


def invalid_credentials() -> Unauthorized:
    # One problem for an unknown email and a wrong password, so the answer reveals no accounts.
    return Unauthorized(
        "The email or password is not correct.", slug="invalid-credentials", title="Invalid credentials"
    )


def not_authenticated() -> Unauthorized:
    return Unauthorized("A valid session token is required.")


def address_limit(limit: int) -> Conflict:
    return Conflict(
        f"An account keeps at most {limit} addresses.",
        slug="address-limit-reached",
        title="Address limit reached",
        limit=limit,
    )


def validated(value: S) -> S:
    """Check a contract value's constraints, as decoding it from a request body would.

    msgspec validates on decode, not on construction, so an in-process caller would otherwise get
    past limits an HTTP caller cannot.
    """
    try:
        return msgspec.convert(msgspec.to_builtins(value), type(value))
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc


class Passwords:
    """argon2id hashing off the event loop, with a bound on how many hashes run at once.

    A hash holds a core and `argon2_memory_kib` for its whole duration; the bound keeps a surge of
    log-ins from queueing dozens of them in threads and starving everything else in the process.
    """

    _DECOY_PASSWORD = "peakshop-decoy-password"

    def __init__(self, settings: UsersSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(settings.hash_concurrency)
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, password_hash, password)
            except VerifyMismatchError:
                return False
            except (InvalidHashError, VerificationError):
                log.error("password_hash_unusable")
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    async def spend_one_verification(self, password: str) -> None:
        """Do the work of a verification for an email with no account, so both take the same time."""
        if self._decoy is None:
            self._decoy = await self.hash(self._DECOY_PASSWORD)
        await self.verify(self._decoy, password)

    async def warm_up(self) -> None:
        if self._decoy is None:
            self._decoy = await self.hash(self._DECOY_PASSWORD)


class LoginLimiter:
    """The log-in limits of `LoginPolicy`, counted in the shared cache so every replica sees them.

    The cache being away must not stop people logging in during a sale: the limiter then lets the
    attempt through and logs it (argon2 still makes each guess expensive).
    """

    def __init__(self, cache: Cache, policy: LoginPolicy, clock: Clock) -> None:
        self._cache = cache
        self._policy = policy
        self._now = clock

    async def admit(self, email: str, client_ip: str) -> None:
        """Raise 429 when this client or this email has used up its attempts."""
        now = self._now()
        window = self._policy.per_client
        try:
            attempts = await self._cache.incr(self._policy.client_counter(client_ip, now), window.seconds)
            locked = await self._cache.get(self._policy.lock(email))
        except Exception:
            log.warning("login_limits_unavailable", exc_info=True)
            return
        if attempts > window.limit:
            raise TooManyRequests(
                "Too many log-in attempts from this address; try again later.",
                retry_after=window.retry_after(now),
            )
        if locked is not None:
            raise TooManyRequests(
                "Too many failed log-ins for this account; try again later.",
                retry_after=remaining_seconds(_float(locked, now + self._policy.lockout), now),
            )

    async def record_failure(self, email: str) -> None:
        now = self._now()
        policy = self._policy
        try:
            failures = await self._cache.incr(policy.failure_counter(email), policy.failure_window)
            if failures >= policy.failures_per_account:
                until = now + policy.lockout
                await self._cache.set(policy.lock(email), repr(until).encode(), policy.lockout)
                # The lock now holds the account; the count starts again once it lifts.
                await self._cache.delete(policy.failure_counter(email))
        except Exception:
            log.warning("login_limits_unavailable", exc_info=True)


def _float(raw: bytes, default: float) -> float:
    try:
        return float(raw.decode())
    except ValueError:
        return default


class UsersHandlers:
    """The use cases, over one database (attached when the service starts) and the shared cache."""

    def __init__(
        self,
        settings: UsersSettings,
        cache: Cache,
        *,
        database: Database | None = None,
        clock: Clock = time.time,
        outbox_written: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._now = clock
        self._outbox_written = outbox_written
        self.passwords = Passwords(settings)
        self.limiter = LoginLimiter(
            cache,
            LoginPolicy(
                per_client=FixedWindow(
                    settings.login_attempts_per_client, settings.login_client_window_seconds
                ),
                failures_per_account=settings.login_failures_per_account,
                failure_window=settings.login_failure_window_seconds,
                lockout=settings.login_lockout_seconds,
            ),
            clock,
        )
        self._db: Database | None = None
        self._repository: UsersRepository | None = None
        if database is not None:
            self.attach(database)

    def attach(self, database: Database) -> None:
        self._db = database
        self._repository = UsersRepository(database)

    def detach(self) -> None:
        self._db = None
        self._repository = None

    @property
    def _store(self) -> tuple[Database, UsersRepository]:
        if self._db is None or self._repository is None:
            raise Unavailable("The users service is not started.", service="users")
        return self._db, self._repository

    async def register(self, new: NewAccount) -> Account:
        new = validated(new)
        db, repository = self._store
        email = normalise_email(new.email)
        # A cheap read first, so a repeated registration does not cost an argon2 hash; the unique
        # constraint below still decides a race between two registrations of one email.
        if await repository.email_taken(email):
            raise email_taken()
        password_hash = await self.passwords.hash(new.password)
        account = Account(id=uuid.uuid4().hex, email=email, name=new.name, created_at=self._now())
        async with db.transaction() as tx:
            if not await repository.insert_account(tx, account, password_hash):
                raise email_taken()
            await add_to_outbox(
                tx, SCHEMA, TOPIC_ACCOUNT_REGISTERED, AccountRegistered(account_id=account.id, email=email)
            )
        if self._outbox_written is not None:
            self._outbox_written()
        log.info("account_registered", account_id=account.id)
        return account

    async def log_in(self, credentials: Credentials, client_ip: str) -> Session:
        credentials = validated(credentials)
        db, repository = self._store
        email = normalise_email(credentials.email)
        await self.limiter.admit(email, client_ip)
        found = await repository.account_with_hash(email)
        if found is None:
            await self.passwords.spend_one_verification(credentials.password)
            await self.limiter.record_failure(email)
            raise invalid_credentials()
        account, password_hash = found
        if not await self.passwords.verify(password_hash, credentials.password):
            await self.limiter.record_failure(email)
            raise invalid_credentials()
        # The cost parameters changed since this hash was made: store one at today's cost.
        new_hash = (
            await self.passwords.hash(credentials.password)
            if self.passwords.needs_rehash(password_hash)
            else None
        )
        token = new_session_token()
        now = self._now()
        expires_at = now + self.settings.session_ttl_seconds
        async with db.transaction() as tx:
            await repository.delete_expired_sessions(tx, account.id, now)
            await repository.insert_session(tx, hash_token(token), account.id, now, expires_at)
            if new_hash is not None:
                await repository.replace_password_hash(tx, account.id, new_hash)
        return Session(token=token, account=account, expires_at=expires_at)

    async def log_out(self, token: str | None) -> None:
        """End the session; ending one that has already ended is not an error (retries are safe)."""
        token_hash = _token_hash(token)
        db, repository = self._store
        async with db.transaction() as tx:
            await repository.delete_session(tx, token_hash)

    async def authenticate(self, token: str | None) -> Account:
        """The account behind a bearer token; 401 for a missing, unknown or expired one."""
        token_hash = _token_hash(token)
        _, repository = self._store
        account = await repository.account_of_session(token_hash, self._now())
        if account is None:
            raise not_authenticated()
        return account

    async def me(self, token: str | None) -> Account:
        return await self.authenticate(token)

    async def add_address(self, token: str | None, new: NewAddress) -> Address:
        new = validated(new)
        account = await self.authenticate(token)
        db, repository = self._store
        address = Address(id=uuid.uuid4().hex, **_fields(new))
        limit = self.settings.max_addresses
        async with db.transaction() as tx:
            # The lock makes count-then-insert safe against two concurrent additions.
            if not await repository.lock_account(tx, account.id):
                raise not_authenticated()
            if await repository.count_addresses(tx, account.id) >= limit:
                raise address_limit(limit)
            await repository.insert_address(tx, account.id, address, self._now())
        return address

    async def addresses(self, token: str | None) -> list[Address]:
        account = await self.authenticate(token)
        _, repository = self._store
        return await repository.addresses(account.id)


def _token_hash(token: str | None) -> str:
    if token is None or not plausible_token(token):
        raise not_authenticated()
    return hash_token(token)


def _fields(value: msgspec.Struct) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__struct_fields__}
