"""What a wake-up costs on this machine: the same tiny request, answered at different rates.

A service in the split topology spends most of its time waiting: for the next request, for a
database answer, for the broker. Each wait ends with a wake-up, and a process that wakes after a
pause finds its caches cold and pays for it again. This script measures that cost alone, with no
peakshop code in the way: an asyncio server (on uvloop, as the services run) on one core answers
64-byte requests with 8 bytes, sent over one connection by a client on the other core at a fixed
rate. Per request it prints the server's CPU time (user and system, from getrusage) and its context
switches (from /proc), at each rate, with the ratio against the fastest rate in the same run.

Read it beside `benchmarks/checkout.py`, which prints switches per checkout for the shop and for
the plain-SQL replay: when the CPU per request here falls steeply with the rate, a process that
waits more often per checkout (a hop between services, a round trip not overlapped with others)
pays for every wait, and the split shop's ratio to the replay follows the machine as much as the
code.

    python benchmarks/wakeups.py [--requests 2000] [--rates 100,300,1000,3000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

SERVER_CORE, CLIENT_CORE = 0, 1
REQUEST, ANSWER = b"q" * 64, b"a" * 8
WARMUP = 50  # requests before the measured ones: the connection and the loop settle


def _switches() -> int:
    """Context switches of this process's threads so far."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _serve(requests: int, listening: Any, result: Any) -> None:
    """Answer `WARMUP + requests` requests on one connection; report CPU and switches per request."""
    finished = asyncio.Event()
    marks: dict[str, float] = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(WARMUP + requests):
            if n == WARMUP:
                marks["cpu"], marks["switches"] = _cpu(), _switches()
            await reader.readexactly(len(REQUEST))
            writer.write(ANSWER)
        marks["cpu"], marks["switches"] = _cpu() - marks["cpu"], _switches() - marks["switches"]
        writer.close()
        finished.set()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    listening.send(server.sockets[0].getsockname()[1])
    async with server:
        await finished.wait()
    result.send((marks["cpu"] / requests, marks["switches"] / requests))


def _server(requests: int, listening: Any, result: Any) -> None:
    os.sched_setaffinity(0, {SERVER_CORE})
    uvloop.run(_serve(requests, listening, result))


async def _send(port: int, requests: int, rate: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    due = time.perf_counter()
    for _ in range(WARMUP + requests):
        writer.write(REQUEST)
        await reader.readexactly(len(ANSWER))
        due += 1 / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
    writer.close()


def measure(requests: int, rate: float) -> tuple[float, float]:
    """(CPU seconds, context switches) the server spends per request at `rate` requests a second."""
    import multiprocessing

    listening_recv, listening_send = multiprocessing.Pipe(duplex=False)
    result_recv, result_send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=_server, args=(requests, listening_send, result_send))
    server.start()
    try:
        port = listening_recv.recv()
        os.sched_setaffinity(0, {CLIENT_CORE})
        uvloop.run(_send(port, requests, rate))
        cpu, switches = result_recv.recv()
    finally:
        server.join(timeout=10)
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    return cpu, switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests per rate (default 2000)"
    )
    parser.add_argument(
        "--rates",
        default="100,300,1000,3000",
        help="requests a second, comma-separated (default 100,300,1000,3000)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two cores: the server on one, the client on the other")
    rates = sorted(float(rate) for rate in args.rates.split(","))
    results = []
    for rate in rates:
        print(f"{rate:.0f}/s: {args.requests / rate:.0f} s…", file=sys.stderr, flush=True)
        cpu, switches = measure(args.requests, rate)
        results.append({"rate": rate, "cpu_us_per_request": cpu * 1e6, "switches_per_request": switches})
    fastest = results[-1]["cpu_us_per_request"]
    if args.json:
        print(json.dumps({"requests": args.requests, "results": results}, indent=2))
        return
    print(f"{'requests/s':>10}{'server CPU µs/request':>24}{'vs fastest':>12}{'switches/request':>18}")
    for r in results:
        print(
            f"{r['rate']:>10.0f}{r['cpu_us_per_request']:>24.0f}"
            f"{r['cpu_us_per_request'] / fastest:>11.1f}x{r['switches_per_request']:>18.2f}"
        )


if __name__ == "__main__":
    main()
