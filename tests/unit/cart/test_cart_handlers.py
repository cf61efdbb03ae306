"""The cart's use cases on SQLite, in front of a stub catalog."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peakshop.cart.domain import CART_ID_PREFIX
from peakshop.cart.handlers import CartHandlers
from peakshop.cart.settings import CartSettings
from peakshop.contracts.cart import AddItem, ChangeQuantity
from peakshop.platform.db import SqliteDatabase, sqlite_path
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Problem
from tests.unit.cart.conftest import FakeClock, StubCatalog


async def problem_of(call: Any) -> Problem:
    with pytest.raises(Problem) as raised:
        await call
    return raised.value


def quantities(cart: Any) -> dict[str, int]:
    return {line.sku_id: line.quantity for line in cart.lines}


async def test_the_first_add_makes_an_anonymous_cart_with_an_unguessable_id(cart: CartHandlers) -> None:
    first = await cart.add_item(None, None, AddItem("sku_a", 2))
    other = await cart.add_item(None, None, AddItem("sku_a", 1))
    assert first.id.startswith(CART_ID_PREFIX) and len(first.id) >= len(CART_ID_PREFIX) + 22
    assert first.id != other.id
    assert (first.owner, first.account_id, first.status) == ("anonymous", None, "open")
    assert quantities(first) == {"sku_a": 2}
    assert (first.item_count, first.subtotal, first.currency) == (2, 2_500, "USD")
    line = first.lines[0]
    assert (line.unit_price, line.line_total, line.product_id) == (1_250, 2_500, "p_a")
    assert await cart.get_cart(first.id, None) == first


async def test_lines_are_added_changed_and_removed(cart: CartHandlers) -> None:
    shown = await cart.add_item(None, None, AddItem("sku_a", 1))
    shown = await cart.add_item(shown.id, None, AddItem("sku_b", 2))
    shown = await cart.add_item(shown.id, None, AddItem("sku_a", 3))
    assert quantities(shown) == {"sku_a": 4, "sku_b": 2}
    assert [line.sku_id for line in shown.lines] == ["sku_a", "sku_b"]  # in the order first added
    shown = await cart.change_quantity(shown.id, None, "sku_b", ChangeQuantity(7))
    assert quantities(shown) == {"sku_a": 4, "sku_b": 7}
    assert shown.subtotal == 4 * 1_250 + 7 * 399
    shown = await cart.remove_line(shown.id, None, "sku_a")
    assert quantities(shown) == {"sku_b": 7}
    # Removing again is not an error: a retried DELETE must not fail.
    assert await cart.remove_line(shown.id, None, "sku_a") == await cart.get_cart(shown.id, None)
    missing = await problem_of(cart.change_quantity(shown.id, None, "sku_c", ChangeQuantity(1)))
    assert (missing.status, missing.slug, missing.extra["sku_id"]) == (404, "line-not-found", "sku_c")


async def test_an_account_has_one_open_cart(cart: CartHandlers) -> None:
    first = await cart.add_item(None, "acct-1", AddItem("sku_a", 1))
    again = await cart.add_item(None, "acct-1", AddItem("sku_b", 1))
    assert again.id == first.id and (again.owner, again.account_id) == ("account", "acct-1")
    assert (await cart.account_cart("acct-1")).id == first.id
    empty = await cart.account_cart("acct-2")
    assert (empty.lines, empty.subtotal, empty.currency, empty.owner) == ([], 0, "USD", "account")
    assert (await cart.add_item(None, "acct-2", AddItem("sku_c", 1))).id == empty.id


async def test_concurrent_first_adds_of_one_account_share_one_cart(cart: CartHandlers) -> None:
    shown = await asyncio.gather(
        *(cart.add_item(None, "acct-1", AddItem(s, 1)) for s in ("sku_a", "sku_b", "sku_c"))
    )
    assert len({c.id for c in shown}) == 1
    assert quantities(await cart.account_cart("acct-1")) == {"sku_a": 1, "sku_b": 1, "sku_c": 1}


async def test_a_line_holds_at_most_the_quantity_limit(cart: CartHandlers) -> None:
    over = await problem_of(cart.add_item(None, None, AddItem("sku_a", 11)))
    assert (over.status, over.slug, over.extra) == (
        409,
        "cart-limit",
        {"limit": "max_line_quantity", "maximum": 10},
    )
    shown = await cart.add_item(None, None, AddItem("sku_a", 6))
    over = await problem_of(cart.add_item(shown.id, None, AddItem("sku_a", 5)))
    assert (over.slug, over.extra["limit"]) == ("cart-limit", "max_line_quantity")
    over = await problem_of(cart.change_quantity(shown.id, None, "sku_a", ChangeQuantity(11)))
    assert (over.slug, over.extra["limit"]) == ("cart-limit", "max_line_quantity")
    shown = await cart.add_item(shown.id, None, AddItem("sku_a", 4))
    assert quantities(shown) == {"sku_a": 10}  # the refused adds changed nothing


async def test_a_cart_holds_at_most_the_line_limit(make_cart: Callable[..., CartHandlers]) -> None:
    cart = make_cart(max_lines=2)
    shown = await cart.add_item(None, None, AddItem("sku_a", 1))
    shown = await cart.add_item(shown.id, None, AddItem("sku_b", 1))
    full = await problem_of(cart.add_item(shown.id, None, AddItem("sku_c", 1)))
    assert (full.status, full.slug, full.extra) == (409, "cart-limit", {"limit": "max_lines", "maximum": 2})
    # A SKU already in the cart still takes more.
    assert quantities(await cart.add_item(shown.id, None, AddItem("sku_a", 1))) == {"sku_a": 2, "sku_b": 1}


async def test_concurrent_adds_of_different_skus_respect_the_line_limit(
    make_cart: Callable[..., CartHandlers], stub_catalog: StubCatalog
) -> None:
    cart = make_cart(max_lines=5)
    for n in range(20):
        stub_catalog.add(f"sku_{n:02d}", 100)
    shown = await cart.add_item(None, None, AddItem("sku_00", 1))
    results = await asyncio.gather(
        *(cart.add_item(shown.id, None, AddItem(f"sku_{n:02d}", 1)) for n in range(1, 20)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Problem)]
    assert all(r.slug == "cart-limit" for r in refused) and len(refused) == 15
    assert len((await cart.get_cart(shown.id, None)).lines) == 5


@pytest.mark.parametrize("quantity", [0, -1, 1.5, 2.0, 10**12, "2", True, None])
async def test_a_quantity_must_be_a_sensible_integer(cart: CartHandlers, quantity: Any) -> None:
    shown = await cart.add_item(None, None, AddItem("sku_a", 1))
    for call in (
        cart.add_item(None, None, AddItem("sku_a", quantity)),
        cart.add_item(shown.id, None, AddItem("sku_a", quantity)),
        cart.change_quantity(shown.id, None, "sku_a", ChangeQuantity(quantity)),
    ):
        refused = await problem_of(call)
        assert (refused.status, refused.slug, refused.extra["field"]) == (400, "invalid-request", "quantity")
        assert refused.detail.startswith("quantity: ")
    assert quantities(await cart.get_cart(shown.id, None)) == {"sku_a": 1}


async def test_an_unknown_sku_is_not_found_and_makes_no_cart(
    cart: CartHandlers, cart_db: SqliteDatabase
) -> None:
    unknown = await problem_of(cart.add_item(None, None, AddItem("sku_nope", 1)))
    assert (unknown.status, unknown.slug, unknown.extra["sku_id"]) == (404, "unknown-sku", "sku_nope")
    assert "sku_nope" in unknown.detail
    assert await cart_db.fetch("SELECT id FROM cart.carts") == []


async def test_prices_come_from_the_catalog_when_the_cart_is_read(
    cart: CartHandlers, stub_catalog: StubCatalog
) -> None:
    shown = await cart.add_item(None, None, AddItem("sku_a", 2))
    assert shown.subtotal == 2_500
    stub_catalog.add("sku_a", 999, name="Item A, renamed")
    again = await cart.get_cart(shown.id, None)
    assert (again.lines[0].unit_price, again.lines[0].name, again.subtotal) == (999, "Item A, renamed", 1_998)
    assert (await cart.checkout_lines(shown.id, None)).subtotal == 1_998


async def test_a_sku_the_catalog_dropped_leaves_the_view_but_fails_checkout(
    cart: CartHandlers, stub_catalog: StubCatalog
) -> None:
    shown = await cart.add_item(None, None, AddItem("sku_a", 1))
    shown = await cart.add_item(shown.id, None, AddItem("sku_b", 1))
    del stub_catalog.prices["sku_b"]
    assert quantities(await cart.get_cart(shown.id, None)) == {"sku_a": 1}
    gone = await problem_of(cart.checkout_lines(shown.id, None))
    assert (gone.status, gone.slug, gone.extra["sku_id"]) == (404, "unknown-sku", "sku_b")


async def test_a_cart_keeps_to_one_currency(cart: CartHandlers, stub_catalog: StubCatalog) -> None:
    stub_catalog.add("sku_eur", 500, currency="EUR")
    shown = await cart.add_item(None, None, AddItem("sku_a", 1))
    mixed = await problem_of(cart.add_item(shown.id, None, AddItem("sku_eur", 1)))
    assert (mixed.status, mixed.slug) == (409, "currency-mismatch")


async def test_log_in_merges_the_anonymous_cart_into_the_accounts(cart: CartHandlers) -> None:
    mine = await cart.add_item(None, "acct-1", AddItem("sku_a", 8))
    anonymous = await cart.add_item(None, None, AddItem("sku_a", 5))
    anonymous = await cart.add_item(anonymous.id, None, AddItem("sku_b", 2))
    merged = await cart.merge(anonymous.id, "acct-1")
    assert merged.id == mine.id
    assert quantities(merged) == {"sku_a": 10, "sku_b": 2}  # 8 + 5, capped at the line limit
    assert await cart.get_cart(mine.id, "acct-1") == merged
    left = await cart.get_cart(anonymous.id, None)
    assert (left.status, left.lines) == ("merged", [])
    # Idempotent: a retried log-in changes nothing.
    assert quantities(await cart.merge(anonymous.id, "acct-1")) == {"sku_a": 10, "sku_b": 2}
    # The merged cart takes no changes; an add through its id goes to a new anonymous cart.
    closed = await problem_of(cart.change_quantity(anonymous.id, None, "sku_a", ChangeQuantity(1)))
    assert (closed.status, closed.slug, closed.extra["cart_status"]) == (409, "cart-closed", "merged")
    fresh = await cart.add_item(anonymous.id, None, AddItem("sku_c", 1))
    assert fresh.id not in {anonymous.id, mine.id} and quantities(fresh) == {"sku_c": 1}
    # Another account cannot claim a cart merged into someone else's.
    assert (await problem_of(cart.merge(anonymous.id, "acct-2"))).slug == "cart-not-found"


async def test_merging_into_an_account_without_a_cart_makes_one(cart: CartHandlers) -> None:
    anonymous = await cart.add_item(None, None, AddItem("sku_a", 3))
    merged = await cart.merge(anonymous.id, "acct-9")
    assert (merged.owner, merged.account_id, quantities(merged)) == ("account", "acct-9", {"sku_a": 3})
    assert merged.id != anonymous.id


async def test_a_merge_keeps_what_fits_in_the_line_limit(make_cart: Callable[..., CartHandlers]) -> None:
    cart = make_cart(max_lines=2)
    await cart.add_item(None, "acct-1", AddItem("sku_a", 1))
    anonymous = await cart.add_item(None, None, AddItem("sku_b", 1))
    anonymous = await cart.add_item(anonymous.id, None, AddItem("sku_c", 1))
    assert quantities(await cart.merge(anonymous.id, "acct-1")) == {"sku_a": 1, "sku_b": 1}


async def test_another_shoppers_cart_is_not_found(cart: CartHandlers) -> None:
    mine = await cart.add_item(None, "acct-1", AddItem("sku_a", 1))
    unknown = "cart_" + "x" * 22
    for cart_id, account_id in [(mine.id, "acct-2"), (mine.id, None), (unknown, "acct-1"), ("nope", None)]:
        for call in (
            cart.get_cart(cart_id, account_id),
            cart.add_item(cart_id, account_id, AddItem("sku_a", 1)),
            cart.change_quantity(cart_id, account_id, "sku_a", ChangeQuantity(2)),
            cart.remove_line(cart_id, account_id, "sku_a"),
            cart.checkout_lines(cart_id, account_id),
            cart.merge(cart_id, account_id or "acct-3"),
        ):
            found = await problem_of(call)
            assert (found.status, found.slug) == (404, "cart-not-found")
    assert quantities(await cart.get_cart(mine.id, "acct-1")) == {"sku_a": 1}
    # An anonymous cart is anyone's who holds its id, signed in or not.
    anonymous = await cart.add_item(None, None, AddItem("sku_b", 1))
    assert (await cart.get_cart(anonymous.id, "acct-2")).id == anonymous.id


async def test_a_checked_out_cart_is_closed_and_the_next_add_starts_a_new_one(cart: CartHandlers) -> None:
    empty = await problem_of(cart.checkout_lines((await cart.account_cart("acct-1")).id, "acct-1"))
    assert (empty.status, empty.slug) == (409, "cart-empty")
    shown = await cart.add_item(None, "acct-1", AddItem("sku_a", 2))
    lines = await cart.checkout_lines(shown.id, "acct-1")
    assert (lines.subtotal, lines.status) == (2_500, "open")
    await cart.mark_checked_out(shown.id, "order-1")
    await cart.mark_checked_out(shown.id, "order-1")  # idempotent for the same order
    other = await problem_of(cart.mark_checked_out(shown.id, "order-2"))
    assert (other.status, other.slug) == (409, "cart-closed")
    assert (await cart.get_cart(shown.id, "acct-1")).status == "checked_out"
    for call in (
        cart.change_quantity(shown.id, "acct-1", "sku_a", ChangeQuantity(1)),
        cart.remove_line(shown.id, "acct-1", "sku_a"),
        cart.checkout_lines(shown.id, "acct-1"),
    ):
        closed = await problem_of(call)
        assert (closed.status, closed.slug, closed.extra["cart_status"]) == (
            409,
            "cart-closed",
            "checked_out",
        )
    after = await cart.add_item(shown.id, "acct-1", AddItem("sku_b", 1))
    assert after.id != shown.id and quantities(after) == {"sku_b": 1}
    assert (await cart.account_cart("acct-1")).id == after.id
    assert (await problem_of(cart.mark_checked_out("cart_unknown", "order-3"))).slug == "cart-not-found"


async def test_carts_survive_closing_and_reopening_the_database(
    tmp_path: Path, cart_db: SqliteDatabase, stub_catalog: StubCatalog
) -> None:
    before = CartHandlers(CartSettings(), Metrics(), stub_catalog, database=cart_db, clock=FakeClock())
    anonymous = await before.add_item(None, None, AddItem("sku_a", 2))
    account = await before.add_item(None, "acct-1", AddItem("sku_b", 3))
    await cart_db.close()
    reopened = await SqliteDatabase.connect(sqlite_path(tmp_path, "cart"), "cart")
    try:
        after = CartHandlers(CartSettings(), Metrics(), stub_catalog, database=reopened, clock=FakeClock())
        assert await after.get_cart(anonymous.id, None) == anonymous
        assert quantities(await after.account_cart("acct-1")) == {"sku_b": 3}
        assert (await after.account_cart("acct-1")).id == account.id
    finally:
        await reopened.close()


async def test_an_add_costs_one_catalog_call_and_three_statements_in_one_transaction(
    cart: CartHandlers, cart_db: SqliteDatabase, stub_catalog: StubCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = await cart.add_item(None, None, AddItem("sku_a", 1))
    statements: list[str] = []
    real_transaction = cart_db.transaction

    def counting_transaction() -> Any:
        manager = real_transaction()

        class Counting:
            async def __aenter__(self) -> Any:
                tx = await manager.__aenter__()
                for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
                    method = getattr(tx, name)

                    async def counted(sql: str, *args: Any, _method: Any = method) -> Any:
                        statements.append(sql.split()[0])
                        return await _method(sql, *args)

                    setattr(tx, name, counted)
                return tx

            async def __aexit__(self, *exc: Any) -> Any:
                return await manager.__aexit__(*exc)

        return Counting()

    monkeypatch.setattr(cart_db, "transaction", counting_transaction)
    stub_catalog.calls.clear()
    await cart.add_item(shown.id, None, AddItem("sku_a", 1))
    # Claim (lock) the cart, read its lines, upsert the line; the new SKU's price is the only lookup.
    assert statements == ["UPDATE", "SELECT", "INSERT"]
    assert stub_catalog.calls == [["sku_a"]]
