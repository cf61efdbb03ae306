"""The users tables, in plain SQL through the database port (the same statements on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from peakshop.contracts.users import Account, Address
from peakshop.platform.db import Database, Executor, Row
from peakshop.users.domain import SCHEMA

_ACCOUNT_COLUMNS = "a.id, a.email, a.name, a.created_at"
_ADDRESS_COLUMNS = "id, name, line1, line2, city, postal_code, country, phone"


def _account(row: Row) -> Account:
    return Account(id=row["id"], email=row["email"], name=row["name"], created_at=float(row["created_at"]))


def _address(row: Row) -> Address:
    return Address(
        id=row["id"],
        name=row["name"],
        line1=row["line1"],
        line2=row["line2"],
        city=row["city"],
        postal_code=row["postal_code"],
        country=row["country"],
        phone=row["phone"],
    )


class UsersRepository:
    """Reads run on the database; writes take the `Executor` of the caller's unit of work."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def email_taken(self, email: str) -> bool:
        row = await self._db.fetchrow(f"SELECT 1 FROM {SCHEMA}.accounts WHERE email = $1", email)
        return row is not None

    async def insert_account(self, tx: Executor, account: Account, password_hash: str) -> bool:
        """Add the account; False when the email is already registered (the unique constraint decides)."""
        inserted = await tx.execute(
            f"INSERT INTO {SCHEMA}.accounts (id, email, name, password_hash, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            account.id,
            account.email,
            account.name,
            password_hash,
            account.created_at,
        )
        return inserted == 1

    async def account_with_hash(self, email: str) -> tuple[Account, str] | None:
        row = await self._db.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS}, a.password_hash FROM {SCHEMA}.accounts a WHERE a.email = $1", email
        )
        return None if row is None else (_account(row), row["password_hash"])

    async def replace_password_hash(self, tx: Executor, account_id: str, password_hash: str) -> None:
        await tx.execute(
            f"UPDATE {SCHEMA}.accounts SET password_hash = $1 WHERE id = $2", password_hash, account_id
        )

    async def insert_session(
        self, tx: Executor, token_hash: str, account_id: str, created_at: float, expires_at: float
    ) -> None:
        await tx.execute(
            f"INSERT INTO {SCHEMA}.sessions (token_hash, account_id, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4)",
            token_hash,
            account_id,
            created_at,
            expires_at,
        )

    async def delete_expired_sessions(self, tx: Executor, account_id: str, now: float) -> int:
        return await tx.execute(
            f"DELETE FROM {SCHEMA}.sessions WHERE account_id = $1 AND expires_at <= $2", account_id, now
        )

    async def delete_session(self, tx: Executor, token_hash: str) -> int:
        return await tx.execute(f"DELETE FROM {SCHEMA}.sessions WHERE token_hash = $1", token_hash)

    async def account_of_session(self, token_hash: str, now: float) -> Account | None:
        """The account a live session belongs to; None for an unknown or expired token."""
        row = await self._db.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS} FROM {SCHEMA}.sessions s "
            f"JOIN {SCHEMA}.accounts a ON a.id = s.account_id "
            "WHERE s.token_hash = $1 AND s.expires_at > $2",
            token_hash,
            now,
        )
        return None if row is None else _account(row)

    async def lock_account(self, tx: Executor, account_id: str) -> bool:
        """Serialise writes to one account's rows until the transaction ends.

        PostgreSQL takes the row lock; SQLite's `BEGIN IMMEDIATE` already holds the only write lock.
        """
        lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        row = await tx.fetchrow(f"SELECT id FROM {SCHEMA}.accounts WHERE id = $1{lock}", account_id)
        return row is not None

    async def count_addresses(self, tx: Executor, account_id: str) -> int:
        count: Any = await tx.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.addresses WHERE account_id = $1", account_id
        )
        return int(count)

    async def insert_address(
        self, tx: Executor, account_id: str, address: Address, created_at: float
    ) -> None:
        await tx.execute(
            f"INSERT INTO {SCHEMA}.addresses "
            "(id, account_id, name, line1, line2, city, postal_code, country, phone, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            address.id,
            account_id,
            address.name,
            address.line1,
            address.line2,
            address.city,
            address.postal_code,
            address.country,
            address.phone,
            created_at,
        )

    async def addresses(self, account_id: str) -> list[Address]:
        rows = await self._db.fetch(
            f"SELECT {_ADDRESS_COLUMNS} FROM {SCHEMA}.addresses "
            "WHERE account_id = $1 ORDER BY created_at, id",
            account_id,
        )
        return [_address(row) for row in rows]
