from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from peakshop.rehearsal.shop import free_ports, topology_on_free_ports
from peakshop.runtime.supervisor import Liveness, RestartBackoff, Supervisor, watch_liveness
from peakshop.runtime.topology import load_topology


def test_quick_deaths_wait_twice_as_long_each_time_up_to_the_cap() -> None:
    backoff = RestartBackoff(first=0.5, cap=4.0, settle=60.0)
    assert [backoff.delay(uptime=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_process_that_stayed_up_long_enough_starts_again_at_once() -> None:
    backoff = RestartBackoff(first=0.5, cap=30.0, settle=60.0)
    assert [backoff.delay(uptime=2.0) for _ in range(3)] == [0.5, 1.0, 2.0]
    assert backoff.delay(uptime=60.0) == 0.5
    assert backoff.delay(uptime=59.9) == 1.0


# --- the liveness check, against a real server on loopback ----------------------------------------


class Peer:
    """A process's /healthz on a real port: answers 200 until told to hang or to fail."""

    def __init__(self) -> None:
        self.checks = 0
        self.hang_from: int | None = None  # checks from this one on are never answered
        self.status = 200
        self.hang_every_other = False

    async def healthz(self, request: web.Request) -> web.Response:
        self.checks += 1
        hanging = self.hang_from is not None and self.checks >= self.hang_from
        if hanging or (self.hang_every_other and self.checks % 2 == 0):
            await asyncio.Event().wait()  # like a process whose loop is blocked: the socket is open
        return web.json_response({"status": "ok"}, status=self.status)


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, str]]:
    state = Peer()
    app = web.Application()
    app.router.add_get("/healthz", state.healthz)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield state, f"http://127.0.0.1:{port}/healthz"
    await runner.cleanup()


FAST = Liveness(period=0.05, timeout=0.2, failures=3)


async def test_a_process_that_answers_is_never_reported(peer: tuple[Peer, str]) -> None:
    state, url = peer
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(watch_liveness(session, url, FAST), 1.0)
    assert state.checks >= 10


async def test_a_process_that_stops_answering_is_reported_after_the_misses_in_a_row(
    peer: tuple[Peer, str],
) -> None:
    state, url = peer
    state.hang_from = 4
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        started = loop.time()
        missed = await asyncio.wait_for(watch_liveness(session, url, FAST), 5.0)
        took = loop.time() - started
    assert missed == 3
    assert state.checks == 3 + 3  # three answered, then three left hanging, and no more asked
    assert took >= 3 * FAST.timeout


async def test_misses_that_are_not_in_a_row_are_not_reported(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.hang_every_other = True
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                watch_liveness(session, url, Liveness(period=0.05, timeout=0.1, failures=2)), 1.5
            )
    assert state.checks >= 6  # several misses, never two in a row


async def test_an_answer_other_than_200_is_a_miss(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.status = 503
    async with aiohttp.ClientSession() as session:
        assert await asyncio.wait_for(watch_liveness(session, url, FAST), 2.0) == 3
    assert state.checks == 3


async def test_a_refused_connection_is_a_miss() -> None:
    (port,) = free_ports(1)
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/healthz"
        assert await asyncio.wait_for(watch_liveness(session, url, FAST), 2.0) == 3


async def test_a_restarted_process_not_ready_in_time_is_killed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topology = tmp_path / "topology.toml"
    topology_on_free_ports("split", topology, "supervisor-test")
    supervisor = Supervisor(
        str(topology), load_topology(str(topology)), host="127.0.0.1", storefront_port=free_ports(1)[0],
        start_within=0.5,
    )  # fmt: skip
    # Stands in for a restarted `cart` that never answers /readyz: nothing listens on its port.
    child = await asyncio.create_subprocess_exec("sleep", "60")
    async with aiohttp.ClientSession() as session:
        came_up = await supervisor._ready_again(session, "cart", child, asyncio.Event())
    assert not came_up
    assert await asyncio.wait_for(child.wait(), 5) == -signal.SIGKILL
    assert "cart was not ready 0.5 s after it started; killing it" in capsys.readouterr().err
