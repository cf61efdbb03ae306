"""`peakshop up` keeps a split shop up when one of its processes dies, and loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from peakshop.runtime.topology import load_topology
from tests.e2e.buyers import Buyer, a_sku_in_stock, add_to_cart, check_out, client_for, sign_up
from tests.e2e.conftest import Shop, fresh_shop

pytestmark = pytest.mark.e2e


def _pid_of(shop: Shop, process: str) -> int:
    """The pid of the child of `peakshop up` that serves `process`."""
    up = shop.process.pid
    children = Path(f"/proc/{up}/task/{up}/children").read_text().split()
    for pid in children:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"--process" in argv and argv[argv.index(b"--process") + 1] == process.encode():
            return int(pid)
    raise AssertionError(f"no process {process!r} among the children of peakshop up")


async def _cart_once_back(
    client: httpx.AsyncClient, shop: Shop, buyer: Buyer, process: str, restarts: int
) -> dict:  # type: ignore[type-arg]
    """The buyer's cart, read once the supervisor has said `process` is ready again."""
    deadline = time.monotonic() + 60
    announced = f"{process} is ready again (restart 1)"
    while shop.output().count(announced) < restarts:
        assert time.monotonic() < deadline, f"{process} did not come back:\n{shop.output()[-3000:]}"
        await asyncio.sleep(0.2)
    while True:  # the storefront's own restart drops the client's kept-alive connections once
        try:
            response = await client.get("/api/cart", headers=buyer.auth)
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the storefront did not answer after its restart"
            await asyncio.sleep(0.2)
            continue
        assert response.status_code == 200, (process, response.text)
        return response.json()  # type: ignore[no-any-return]


async def test_the_shop_lives_through_the_death_of_any_one_process(tmp_path: Path) -> None:
    with fresh_shop("split", tmp_path) as setup:
        shop = setup.start()
        try:
            async with client_for(shop.base_url) as client:
                buyer = await sign_up(client, "survivor")
                await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=19), quantity=2)
                cart = (await client.get("/api/cart", headers=buyer.auth)).json()
                for process in load_topology(shop.topology).processes:
                    pid = _pid_of(shop, process)
                    os.kill(pid, signal.SIGKILL)
                    after = await _cart_once_back(client, shop, buyer, process, restarts=1)
                    assert after == cart, f"the cart changed when {process} died"
                    assert _pid_of(shop, process) != pid
                placed = await check_out(client, buyer)
                assert placed.status_code == 201, placed.text
            report = shop.audit()
            assert report["ok"], report["violations"]
        finally:
            assert shop.stop() == 0, shop.output()[-3000:]
