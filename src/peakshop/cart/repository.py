"""The cart tables in plain SQL through the database port (the same statements on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable

from peakshop.cart.domain import SCHEMA, StoredCart, StoredLine
from peakshop.platform.db import Database, Executor, Row

_CART = "id, account_id, status, order_id, merged_into, created_at, updated_at"
_LINE = "sku_id, product_id, name, currency, quantity, added_at"
_CART_AND_LINES = (
    "c.id, c.account_id, c.status, c.order_id, c.merged_into, c.created_at, c.updated_at, "
    "l.sku_id, l.product_id, l.name, l.currency, l.quantity, l.added_at"
)


def _cart(row: Row) -> StoredCart:
    return StoredCart(
        id=row[0],
        account_id=row[1],
        status=row[2],
        order_id=row[3],
        merged_into=row[4],
        created_at=float(row[5]),
        updated_at=float(row[6]),
    )


def _line(row: Row, at: int = 0) -> StoredLine:
    return StoredLine(
        sku_id=row[at],
        product_id=row[at + 1],
        name=row[at + 2],
        currency=row[at + 3],
        quantity=int(row[at + 4]),
        added_at=float(row[at + 5]),
    )


def _cart_with_lines(rows: list[Row]) -> tuple[StoredCart, list[StoredLine]] | None:
    if not rows:
        return None
    return _cart(rows[0]), [_line(row, 7) for row in rows if row[7] is not None]


class CartRepository:
    """Reads run on the database; writes (and reads that must see them) take the caller's `Executor`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- reads ----------------------------------------------------------------------------------

    async def cart_with_lines(self, cart_id: str) -> tuple[StoredCart, list[StoredLine]] | None:
        rows = await self.db.fetch(
            f"SELECT {_CART_AND_LINES} FROM {SCHEMA}.carts c "
            f"LEFT JOIN {SCHEMA}.lines l ON l.cart_id = c.id WHERE c.id = $1",
            cart_id,
        )
        return _cart_with_lines(rows)

    async def open_cart_of(self, account_id: str) -> tuple[StoredCart, list[StoredLine]] | None:
        rows = await self.db.fetch(
            f"SELECT {_CART_AND_LINES} FROM {SCHEMA}.carts c "
            f"LEFT JOIN {SCHEMA}.lines l ON l.cart_id = c.id "
            "WHERE c.account_id = $1 AND c.status = 'open'",
            account_id,
        )
        return _cart_with_lines(rows)

    # --- inside a unit of work ------------------------------------------------------------------

    async def claim_open(
        self, tx: Executor, cart_id: str, account_id: str | None, now: float
    ) -> StoredCart | None:
        """Touch an open cart the caller may change, locking it until the transaction ends.

        The lock is what keeps the line limit exact when two adds to one cart race on PostgreSQL
        (SQLite's single writer already serialises them). None: unknown, foreign or closed.
        """
        row = await tx.fetchrow(
            f"UPDATE {SCHEMA}.carts SET updated_at = $3 "
            "WHERE id = $1 AND status = 'open' AND (account_id IS NULL OR account_id = $2) "
            f"RETURNING {_CART}",
            cart_id,
            account_id,
            now,
        )
        return None if row is None else _cart(row)

    async def lock(self, tx: Executor, cart_id: str) -> StoredCart | None:
        """Any cart, whatever its state, locked until the transaction ends."""
        lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        row = await tx.fetchrow(f"SELECT {_CART} FROM {SCHEMA}.carts WHERE id = $1{lock}", cart_id)
        return None if row is None else _cart(row)

    async def claim_account_cart(self, tx: Executor, account_id: str, new_id: str, now: float) -> StoredCart:
        """The account's open cart, made under `new_id` if it has none; locked either way."""
        row = await tx.fetchrow(
            f"INSERT INTO {SCHEMA}.carts (id, account_id, status, created_at, updated_at) "
            "VALUES ($1, $2, 'open', $3, $3) "
            "ON CONFLICT (account_id) WHERE status = 'open' DO UPDATE SET updated_at = excluded.updated_at "
            f"RETURNING {_CART}",
            new_id,
            account_id,
            now,
        )
        assert row is not None  # an upsert with RETURNING always yields its row
        return _cart(row)

    async def insert_anonymous_cart(self, tx: Executor, cart_id: str, now: float) -> StoredCart:
        await tx.execute(
            f"INSERT INTO {SCHEMA}.carts (id, account_id, status, created_at, updated_at) "
            "VALUES ($1, NULL, 'open', $2, $2)",
            cart_id,
            now,
        )
        return StoredCart(cart_id, None, "open", None, None, now, now)

    async def lines_of(self, tx: Executor, *cart_ids: str) -> dict[str, list[StoredLine]]:
        placeholders = ", ".join(f"${n}" for n in range(1, len(cart_ids) + 1))
        rows = await tx.fetch(
            f"SELECT cart_id, {_LINE} FROM {SCHEMA}.lines WHERE cart_id IN ({placeholders})", *cart_ids
        )
        found: dict[str, list[StoredLine]] = {cart_id: [] for cart_id in cart_ids}
        for row in rows:
            found[row[0]].append(_line(row, 1))
        return found

    async def put_lines(self, tx: Executor, cart_id: str, lines: Iterable[StoredLine]) -> None:
        """Write lines with their absolute quantities (the domain decided them under the cart's lock)."""
        rows = [
            (cart_id, line.sku_id, line.product_id, line.name, line.currency, line.quantity, line.added_at)
            for line in lines
        ]
        if not rows:
            return
        sql = (
            f"INSERT INTO {SCHEMA}.lines (cart_id, sku_id, product_id, name, currency, quantity, added_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (cart_id, sku_id) DO UPDATE SET quantity = excluded.quantity, "
            "product_id = excluded.product_id, name = excluded.name"
        )
        if len(rows) == 1:
            await tx.execute(sql, *rows[0])
        else:
            await tx.executemany(sql, rows)

    async def set_quantity(self, tx: Executor, cart_id: str, sku_id: str, quantity: int) -> bool:
        changed = await tx.execute(
            f"UPDATE {SCHEMA}.lines SET quantity = $3 WHERE cart_id = $1 AND sku_id = $2",
            cart_id,
            sku_id,
            quantity,
        )
        return changed == 1

    async def delete_line(self, tx: Executor, cart_id: str, sku_id: str) -> None:
        await tx.execute(f"DELETE FROM {SCHEMA}.lines WHERE cart_id = $1 AND sku_id = $2", cart_id, sku_id)

    async def mark_merged(self, tx: Executor, cart_id: str, into: str, now: float) -> None:
        """Close an anonymous cart whose lines moved to `into` (they are deleted here)."""
        await tx.execute(f"DELETE FROM {SCHEMA}.lines WHERE cart_id = $1", cart_id)
        await tx.execute(
            f"UPDATE {SCHEMA}.carts SET status = 'merged', merged_into = $2, updated_at = $3 WHERE id = $1",
            cart_id,
            into,
            now,
        )

    async def mark_checked_out(
        self, tx: Executor, cart_id: str, order_id: str, now: float
    ) -> StoredCart | None:
        """Close an open cart as `order_id`; None when it is not open (the caller finds out why)."""
        row = await tx.fetchrow(
            f"UPDATE {SCHEMA}.carts SET status = 'checked_out', order_id = $2, updated_at = $3 "
            f"WHERE id = $1 AND status = 'open' RETURNING {_CART}",
            cart_id,
            order_id,
            now,
        )
        return None if row is None else _cart(row)
