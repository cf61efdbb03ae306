"""The local and the HTTP client answer alike: the same carts and the same problems."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest

from peakshop.cart.api import create_router
from peakshop.cart.client import CartClient, HttpCartClient, LocalCartClient
from peakshop.cart.handlers import CartHandlers
from peakshop.contracts.cart import AddItem, Cart, ChangeQuantity
from peakshop.platform.problems import Problem
from tests.served import served


@pytest.fixture
async def cart_clients(cart: CartHandlers) -> AsyncIterator[tuple[CartClient, CartClient]]:
    async with served("cart", [create_router(cart)]) as base_url:
        remote = HttpCartClient(base_url)
        await remote.start()
        try:
            yield LocalCartClient(cart), remote
        finally:
            await remote.close()


def _shape(value: Any, ids: dict[str, str]) -> Any:
    """A cart with its ids renamed by first appearance and its clock left out, to compare two runs."""
    if isinstance(value, Cart):
        raw = msgspec.to_builtins(value)
        raw["id"] = ids.setdefault(value.id, f"cart-{len(ids)}")
        raw["account_id"] = value.account_id and value.account_id.split(":")[0]
        raw.pop("updated_at")
        return raw
    return value


async def _outcome(call: Awaitable[Any], ids: dict[str, str]) -> Any:
    try:
        return _shape(await call, ids)
    except Problem as problem:
        extra = {k: v for k, v in problem.to_dict().items() if k not in {"instance", "cart_id"}}
        return ("problem", problem.status, problem.slug, extra)


async def _journey(client: CartClient, run: str) -> list[Any]:
    x, y = f"acct-x:{run}", f"acct-y:{run}"
    ids: dict[str, str] = {}
    seen: list[Any] = []

    async def step(call: Callable[[], Awaitable[Any]]) -> Any:
        result = await _outcome(call(), ids)
        seen.append(result)
        return result

    first = await client.add_item(None, None, AddItem("sku_a", 2))
    seen.append(_shape(first, ids))
    anonymous = first.id
    await step(lambda: client.add_item(anonymous, None, AddItem("sku_b", 1)))
    await step(lambda: client.change_quantity(anonymous, None, "sku_b", ChangeQuantity(3)))
    await step(lambda: client.get_cart(anonymous, y))
    for bad in (0, -1, 1.5, 10**12, "2"):
        await step(lambda bad=bad: client.add_item(anonymous, None, AddItem("sku_a", bad)))
        await step(lambda bad=bad: client.change_quantity(anonymous, None, "sku_a", ChangeQuantity(bad)))
    await step(lambda: client.add_item(anonymous, None, AddItem("sku_a", 9)))
    await step(lambda: client.add_item(anonymous, None, AddItem("sku_nope", 1)))
    await step(lambda: client.change_quantity(anonymous, None, "sku_c", ChangeQuantity(1)))
    mine = await client.account_cart(x)
    seen.append(_shape(mine, ids))
    await step(lambda: client.add_item(None, x, AddItem("sku_a", 9)))
    await step(lambda: client.get_cart(mine.id, None))
    await step(lambda: client.get_cart(mine.id, y))
    await step(lambda: client.get_cart("cart_unknown", x))
    await step(lambda: client.get_cart("not/a cart?", None))
    await step(lambda: client.merge(anonymous, x))
    await step(lambda: client.merge(anonymous, x))
    await step(lambda: client.merge(anonymous, y))
    await step(lambda: client.remove_line(mine.id, x, "sku_b"))
    await step(lambda: client.change_quantity(mine.id, x, "sku/odd?", ChangeQuantity(1)))
    await step(lambda: client.remove_line(mine.id, x, "sku_b"))
    await step(lambda: client.checkout_lines(mine.id, x))
    await step(lambda: client.mark_checked_out(mine.id, f"order-1:{run}"))
    await step(lambda: client.mark_checked_out(mine.id, f"order-1:{run}"))
    await step(lambda: client.mark_checked_out(mine.id, f"order-2:{run}"))
    await step(lambda: client.mark_checked_out(mine.id, ""))
    await step(lambda: client.checkout_lines(mine.id, x))
    await step(lambda: client.change_quantity(mine.id, x, "sku_a", ChangeQuantity(1)))
    await step(lambda: client.add_item(mine.id, x, AddItem("sku_c", 1)))
    return seen


async def test_both_clients_tell_the_same_story(
    cart_clients: tuple[CartClient, CartClient],
) -> None:
    local, remote = cart_clients
    # Both journeys run on one database, each under account and order ids of its own.
    local_story = await _journey(local, "local")
    remote_story = await _journey(remote, "http")
    assert remote_story == local_story
    problems = [s for s in local_story if isinstance(s, tuple)]
    assert {p[2] for p in problems} >= {
        "cart-not-found",
        "invalid-request",
        "cart-limit",
        "unknown-sku",
        "line-not-found",
        "cart-closed",
    }


async def test_the_http_client_raises_problems_as_problems(
    cart_clients: tuple[CartClient, CartClient],
) -> None:
    _, remote = cart_clients
    with pytest.raises(Problem) as raised:
        await remote.add_item(None, None, AddItem("sku_a", "2"))
    assert (raised.value.status, raised.value.extra["field"]) == (400, "quantity")
