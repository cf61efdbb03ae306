"""`peakshop up` keeps a split shop up when one of its processes dies, and loses nothing; a rehearsal
still fails its gate when that happens under its load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from peakshop.runtime.supervisor import restarts_in
from peakshop.runtime.topology import load_topology
from tests.e2e.buyers import (
    Buyer,
    a_sku_in_stock,
    add_to_cart,
    check_out,
    client_for,
    sign_up,
    sign_up_many,
)
from tests.e2e.conftest import Shop, fresh_shop

pytestmark = pytest.mark.e2e


def _serving(root: int, process: str) -> int | None:
    """The pid of the `peakshop serve` process for `process` among the descendants of `root`."""
    for pid in Path(f"/proc/{root}/task/{root}/children").read_text().split():
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"--process" in argv and argv[argv.index(b"--process") + 1] == process.encode():
            return int(pid)
        if (found := _serving(int(pid), process)) is not None:
            return found
    return None


def _pid_of(shop: Shop, process: str) -> int:
    """The pid of the child of `peakshop up` that serves `process`."""
    pid = _serving(shop.process.pid, process)
    assert pid is not None, f"no process {process!r} among the children of peakshop up"
    return pid


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
            assert len(restarts_in(shop.output())) == len(load_topology(shop.topology).processes)
            report = shop.audit()
            assert report["ok"], report["violations"]
        finally:
            assert shop.stop() == 0, shop.output()[-3000:]


async def test_a_hung_process_is_killed_and_started_again(tmp_path: Path) -> None:
    """A stopped process keeps its port and never answers: the liveness check finds it, not a crash."""
    liveness = {
        "PEAKSHOP_LIVENESS_PERIOD_SECONDS": "0.5",
        "PEAKSHOP_LIVENESS_TIMEOUT_SECONDS": "1",
        "PEAKSHOP_LIVENESS_FAILURES": "3",
    }
    with fresh_shop("split", tmp_path, liveness) as setup:
        shop = setup.start()
        try:
            async with client_for(shop.base_url) as client:
                buyer = await sign_up(client, "patient")
                await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=29), quantity=3)
                cart = (await client.get("/api/cart", headers=buyer.auth)).json()
                hung = _pid_of(shop, "cart")
                os.kill(hung, signal.SIGSTOP)  # alive, its socket open, its loop never runs
                after = await _cart_once_back(client, shop, buyer, "cart", restarts=1)
                assert after == cart
                assert _pid_of(shop, "cart") != hung
                placed = await check_out(client, buyer)
                assert placed.status_code == 201, placed.text
            said = shop.output()
            assert "cart is hung: 3 checks of /healthz in a row unanswered within 1 s; killing it" in said
            assert restarts_in(said) == [
                "cart was killed for hanging; starting it again in 0.5 s (restart 1)"
            ]
            report = shop.audit()
            assert report["ok"], report["violations"]
        finally:
            assert shop.stop() == 0, shop.output()[-3000:]


# Answers that leave a checkout's outcome open: ask again with the same key.
_OPEN = {"checkout-in-progress", "cart-checkout-in-progress"}


def _settled(response: httpx.Response) -> bool:
    if response.status_code >= 500:
        return False
    return response.status_code == 201 or response.json().get("type", "").rsplit("/", 1)[-1] not in _OPEN


async def _final_answer(client: httpx.AsyncClient, buyer: Buyer, key: str) -> httpx.Response:
    """Repeat a checkout with its key until its outcome is known, as a client that lost one would."""
    deadline = time.monotonic() + 90
    while True:
        try:
            response = await check_out(client, buyer, key=key)
            if _settled(response):
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"no final answer for key {key}"
        await asyncio.sleep(0.5)


async def test_checkouts_cut_off_when_orders_dies_are_finished_or_released(tmp_path: Path) -> None:
    """Orders is killed under 60 concurrent checkouts of one SKU; the supervisor starts it again.

    Each buyer then repeats their checkout with its key until the answer is final. Whatever the kill
    interrupted, a buyer told 201 has one confirmed order, nobody has two, nothing stays pending, and
    the audit is clean (no unit oversold or stuck, no charge without its order).
    """
    with fresh_shop("split", tmp_path) as setup:
        shop = setup.start()
        try:
            async with client_for(shop.base_url) as client:
                buyers = await sign_up_many(client, 60, "cut-off")
                sku = await a_sku_in_stock(client, skip=23)
                await asyncio.gather(*(add_to_cart(client, buyer, sku) for buyer in buyers))
                keys = [uuid.uuid4().hex for _ in buyers]
                checkouts = [
                    asyncio.create_task(check_out(client, buyer, key=key))
                    for buyer, key in zip(buyers, keys, strict=True)
                ]
                await asyncio.wait(checkouts, return_when=asyncio.FIRST_COMPLETED)
                os.kill(_pid_of(shop, "orders"), signal.SIGKILL)
                first = await asyncio.gather(*checkouts, return_exceptions=True)
                cut = [a for a in first if isinstance(a, BaseException) or not _settled(a)]
                assert cut, "the kill came after every checkout had finished: nothing was tested"

                finals = await asyncio.gather(
                    *(_final_answer(client, buyer, key) for buyer, key in zip(buyers, keys, strict=True))
                )
                for buyer, final in zip(buyers, finals, strict=True):
                    orders = (await client.get("/api/orders", headers=buyer.auth)).json()["items"]
                    confirmed = [o["id"] for o in orders if o["status"] == "confirmed"]
                    assert all(o["status"] in ("confirmed", "failed") for o in orders), orders
                    if final.status_code == 201:
                        assert confirmed == [final.json()["id"]], (final.text, orders)
                    else:
                        assert confirmed == [], (final.text, orders)
            assert "orders is ready again (restart 1)" in shop.output()
            report = shop.audit()
            assert report["ok"], report["violations"]
        finally:
            assert shop.stop() == 0, shop.output()[-3000:]


def test_a_process_that_dies_under_a_rehearsal_fails_its_gate(tmp_path: Path) -> None:
    """The shop lives on, but a crash under load is a defect: the rehearsal names it and exits 1."""
    out = tmp_path / "rehearsal"
    with fresh_shop("split", tmp_path) as setup:
        command = [
            sys.executable, "-m", "peakshop", "rehearse", "--profile", "smoke", "--time-scale", "0.33",
            "--topology", setup.topology, "--products", "200", "--out", str(out),
        ]  # fmt: skip
        env = {**os.environ, **setup.env, "COLUMNS": "200"}
        rehearsal = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        assert rehearsal.stderr is not None
        said = []
        for line in rehearsal.stderr:  # the load starts once the rehearsal says so
            said.append(line)
            if line.startswith("rehearsing"):
                break
        cart = _serving(rehearsal.pid, "cart")
        assert cart is not None, "".join(said)
        os.kill(cart, signal.SIGKILL)
        said += rehearsal.stderr.readlines()
        assert rehearsal.wait(240) == 1, "".join(said)[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["passed"]
    assert summary["failures"] == [
        "a process of the shop died during the rehearsal: "
        "cart was killed by SIGKILL; starting it again in 0.5 s (restart 1)"
    ]
    assert summary["audit_ok"] is True
