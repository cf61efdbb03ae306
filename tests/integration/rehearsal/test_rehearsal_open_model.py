"""The open model against a deliberately slow server: arrivals keep their schedule whatever the
server does, starts that cannot be made are counted, and latency includes the wait."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from peakshop.rehearsal.plan import CatalogSample, Plan
from peakshop.rehearsal.profile import Stage
from peakshop.rehearsal.samples import Recorder
from peakshop.rehearsal.shop import free_port

SERVICE_S = 0.2  # each request takes this long to serve
SERVER_SLOTS = 2  # and only this many are served at once: 10 requests/s at most


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: list[web.AppRunner] = []

    slots: list[asyncio.Semaphore] = []

    async def product(request: web.Request) -> web.Response:
        async with slots[0]:
            await asyncio.sleep(SERVICE_S)
        return web.json_response({"id": request.match_info["id"], "skus": []})

    async def start() -> None:
        slots.append(asyncio.Semaphore(SERVER_SLOTS))
        app = web.Application()
        app.router.add_get("/api/products/{id}", product)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runner_box.append(runner)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(10)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _run(plan: Plan, tmp_path: Path) -> tuple[Recorder, dict]:  # type: ignore[type-arg]
    plan.samples_path = str(tmp_path / "samples.json")
    plan.save(tmp_path / "plan.json")
    done = subprocess.run(
        [sys.executable, "-m", "peakshop.rehearsal.engine", str(tmp_path / "plan.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    progress = [json.loads(line.removeprefix("progress ")) for line in done.stdout.splitlines()]
    assert progress, "the engine reports progress every second"
    samples = json.loads((tmp_path / "samples.json").read_text())
    return Recorder.from_json(samples["recorder"]), samples


def _plan(target: str, rate: float, seconds: float, **extra: object) -> Plan:
    return Plan(
        target=target,
        stages=[Stage("steady", seconds, rate, rate)],
        journeys={"product_page": 1},
        payments={"tok_visa": 1},
        seed=1,
        run_id="slow",
        catalog=CatalogSample(product_ids=["p1", "p2", "p3"]),
        arrivals="even",
        request_timeout_s=10,
        **extra,  # type: ignore[arg-type]
    )


def test_an_overloaded_server_does_not_slow_the_arrivals_and_its_queue_shows_in_latency(
    slow_server: str, tmp_path: Path
) -> None:
    # 20 journeys/s offered to a server that serves 10/s, with room for 15 journeys in flight.
    recorder, samples = _run(_plan(slow_server, 20, 4, max_in_flight=15), tmp_path)
    seconds = [recorder.seconds[t] for t in range(4)]
    # Every second of the schedule got its 20 starts offered, whatever the server did.
    assert [s.scheduled for s in seconds] == [20, 20, 20, 20]
    starts = recorder.window(10, 10)
    assert starts.scheduled == 80
    # With 15 slots and 10/s served, the slots run out: those starts are dropped and counted.
    assert starts.dropped > 0
    assert starts.started + starts.dropped == 80
    assert max(s.in_flight_max for s in recorder.seconds.values()) == 15
    total = recorder.total()
    assert total.requests == starts.started and total.errors_5xx == 0
    # Latency counts from the intended start, so the queue's wait is in it: far above 200 ms.
    assert total.latency.percentile(0.5) > 3 * SERVICE_S * 1000
    assert total.latency.percentile(0.99) > 1000
    assert total.latency.percentile(0.01) >= SERVICE_S * 1000 * 0.95
    assert samples["locust"]["requests"] == total.requests  # Locust's own statistics agree


def test_starts_later_than_the_tolerance_are_counted_late_and_their_lateness_is_latency(
    slow_server: str, tmp_path: Path
) -> None:
    # A tolerance of a microsecond: every start the scheduler makes is, measurably, late.
    recorder, _ = _run(_plan(slow_server, 5, 2, max_in_flight=50, late_tolerance_ms=0.001), tmp_path)
    starts = recorder.window(10, 10)
    assert starts.scheduled == 10
    assert starts.dropped == 0
    assert starts.late == starts.started == 10


def test_a_server_within_its_capacity_gets_its_rate_without_drops(slow_server: str, tmp_path: Path) -> None:
    recorder, _ = _run(_plan(slow_server, 5, 3, max_in_flight=50), tmp_path)
    starts = recorder.window(10, 10)
    assert (starts.scheduled, starts.started, starts.dropped, starts.late) == (15, 15, 0, 0)
    latency = recorder.total().latency
    assert SERVICE_S * 1000 * 0.95 <= latency.percentile(0.5) < 2 * SERVICE_S * 1000


def test_distributed_workers_share_one_schedule_between_them(slow_server: str, tmp_path: Path) -> None:
    recorder, samples = _run(_plan(slow_server, 6, 3, max_in_flight=50, workers=2), tmp_path)
    starts = recorder.window(10, 10)
    assert samples["workers"] == 2
    assert (starts.scheduled, starts.started, starts.dropped) == (18, 18, 0)
    assert recorder.total().requests == 18
    assert samples["locust"]["requests"] == 18  # the master's Locust statistics merged both workers
