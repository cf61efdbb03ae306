"""What one service-to-service call costs: the shop's client against a pooled aiohttp session, one run.

Both clients call the same internal-style route (a JSON body decoded into a msgspec struct and sent
back) on the same server: the shop's own app factory (telemetry, problem handlers) on the embedded
Granian server, in a child process. Client and server share one core, as the services of the split
topology do in `benchmarks/checkout.py`, so every microsecond either side spends is on that core.

For each client it prints calls/s, the client's CPU time per call and the server's, and the ratios
against aiohttp. The aiohttp session is set up the way a careful caller would (a kept-alive
connection pool, no cookie jar, a pre-built URL), so the baseline is not a strawman.

    python benchmarks/service_call.py [--seconds 5] [--concurrency 16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from peakshop.rehearsal.shop import free_port

CORE = 0


class Line(msgspec.Struct, frozen=True):
    sku_id: str
    quantity: int
    reservation_id: str
    account_id: str


BODY = Line("sku_0001_blue_xl", 2, "res_" + "a" * 32, "acc_" + "b" * 32)
PATH = "/internal/bench/echo"


def _serve(port: int) -> None:
    """The child process: the shop's app with one echo route, served as every service is."""
    from litestar import Router, post
    from litestar.params import JSONBody

    from peakshop.platform.metrics import Metrics
    from peakshop.platform.web import Readiness, create_app
    from peakshop.runtime.server import run, serve

    @post("/echo", status_code=200)
    async def echo(data: JSONBody[Line]) -> Line:
        return data

    readiness = Readiness()
    app = create_app(
        name="bench",
        routers=[Router(path="/internal/bench", route_handlers=[echo], opt={"service": "bench"})],
        lifespan=None,
        metrics=Metrics(),
        readiness=readiness,
    )
    run(serve(app, readiness, host="127.0.0.1", port=port, drain_seconds=0))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(
    call: Callable[[], Awaitable[Any]], seconds: float, concurrency: int, server: int
) -> dict[str, float]:
    for _ in range(300):  # warm: connections open, caches filled
        await call()
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    server_before, client_before, started = _cpu_seconds(server), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "calls_per_second": done / elapsed,
        "client_cpu_us": (time.process_time() - client_before) / done * 1e6,
        "server_cpu_us": (_cpu_seconds(server) - server_before) / done * 1e6,
    }


async def _measure(port: int, server: int, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    import aiohttp
    import yarl

    from peakshop.platform.http_client import ServiceHttpClient

    base = f"http://127.0.0.1:{port}"
    results = {}
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=10),
    )
    url = yarl.URL(base + PATH)
    headers = {"content-type": "application/json"}

    async def with_aiohttp() -> Line:
        async with session.post(url, data=msgspec.json.encode(BODY), headers=headers) as response:
            return msgspec.json.decode(await response.read(), type=Line)

    results["aiohttp (baseline)"] = await _drive(with_aiohttp, args.seconds, args.concurrency, server)
    await session.close()

    client = ServiceHttpClient("bench", base)
    await client.start()

    async def with_shop_client() -> Line:
        return await client.call("POST", PATH, Line, body=BODY)

    results["peakshop ServiceHttpClient"] = await _drive(
        with_shop_client, args.seconds, args.concurrency, server
    )
    await client.close()
    return results


def _wait_listening(port: int, child: subprocess.Popen[bytes], limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the server exited with {child.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)  # a starting server, bounded by the deadline
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="seconds per client (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight (default 16)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    os.sched_setaffinity(0, {CORE})
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_listening(port, child)
        import uvloop

        results = uvloop.run(_measure(port, child.pid, args))
    finally:
        child.terminate()
        child.wait()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    base = results["aiohttp (baseline)"]
    print(
        f"one service call, client and server on core {CORE}, {args.concurrency} in flight, {args.seconds:g} s each"
    )
    print(f"{'client':28} {'calls/s':>9} {'client µs':>10} {'server µs':>10} {'vs baseline':>12}")
    for name, r in results.items():
        ratio = r["calls_per_second"] / base["calls_per_second"]
        print(
            f"{name:28} {r['calls_per_second']:9.0f} {r['client_cpu_us']:10.0f} "
            f"{r['server_cpu_us']:10.0f} {ratio:11.2f}x"
        )
    saved = base["client_cpu_us"] - results["peakshop ServiceHttpClient"]["client_cpu_us"]
    print(f"client CPU saved per call: {saved:.0f} µs ({saved / base['client_cpu_us']:.0%})")


if __name__ == "__main__":
    main()
