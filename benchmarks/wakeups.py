"""What a wake-up costs on this machine: the same tiny request, answered at different rates, and by
more or fewer processes sharing one core.

A service in the split topology spends most of its time waiting: for the next request, for a
database answer, for the broker. Each wait ends with a wake-up, and a process that wakes after a
pause, or after other processes had the core, finds its caches cold and pays for it again. This
script measures that cost with no peakshop code in the way: asyncio servers (on uvloop, as the
services run) on one core answer 64-byte requests with 8 bytes, sent by a client on the other core
at a fixed rate, one request at a time on each connection. It prints the servers' CPU time per
request (user and system, from getrusage) and their context switches (from /proc), with ratios
against a baseline measured in the same run:

1. by rate, one server process: how the cost of the same request grows as the process idles longer
   between requests (baseline: the fastest rate);
2. by processes, unpaced: eight requests kept in flight (eight connections) and answered by 1, 2,
   4 or 8 server processes on the same core, as fast as they can: the same work with the same
   concurrency, kept in one process as the plain-SQL replay keeps a checkout, or spread over
   several as `split` spreads it over seven and `grouped` over three (baseline: one process).

Read it beside `benchmarks/checkout.py`, which prints switches per checkout for the shop and for
the plain-SQL replay.

    python benchmarks/wakeups.py [--requests 4000] [--rates 100,300,1000,3000]
                                 [--processes 1,2,4,8] [--in-flight 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

SERVER_CORE, CLIENT_CORE = 0, 1
REQUEST, ANSWER = b"q" * 64, b"a" * 8
WARMUP = 50  # requests per server before the measured ones: the connection and the loop settle


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


async def _serve(connections: int, requests: int, listening: Any, result: Any) -> None:
    """Answer `WARMUP + requests` requests on each of `connections` connections; report the CPU
    seconds and switches spent on the measured ones (after every connection's warm-up)."""
    finished = asyncio.Event()
    marks: dict[str, float] = {}
    answered = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        for _ in range(WARMUP + requests):
            await reader.readexactly(len(REQUEST))
            writer.write(ANSWER)
            answered += 1
            if answered == connections * WARMUP:
                marks["cpu"], marks["switches"] = _cpu(), _switches()
        writer.close()
        if answered == connections * (WARMUP + requests):
            marks["cpu"], marks["switches"] = _cpu() - marks["cpu"], _switches() - marks["switches"]
            finished.set()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    listening.send(server.sockets[0].getsockname()[1])
    async with server:
        await finished.wait()
    result.send((marks["cpu"], marks["switches"]))


def _server(connections: int, requests: int, listening: Any, result: Any) -> None:
    os.sched_setaffinity(0, {SERVER_CORE})
    uvloop.run(_serve(connections, requests, listening, result))


async def _send(ports: list[int], requests: int, rate: float) -> float:
    """`WARMUP + requests` requests on each connection (one per port given), all connections at
    once, `rate` requests a second in all (0: as fast as the servers answer); the measured seconds."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for port in ports]

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(REQUEST)
        await reader.readexactly(len(ANSWER))

    due = started = time.perf_counter()
    for n in range(WARMUP + requests):
        if n == WARMUP:
            started = time.perf_counter()
        await asyncio.gather(*(one(reader, writer) for reader, writer in connections))
        if rate:
            due += len(connections) / rate
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
    seconds = time.perf_counter() - started
    for _, writer in connections:
        writer.close()
    return seconds


def measure(requests: int, rate: float, processes: int = 1, connections: int = 1) -> dict[str, float]:
    """Servers on one core answering about `requests` requests in all: `processes` processes, with
    `connections` connections spread evenly over them, one request in flight on each, `rate`
    requests a second in all (0: unpaced). CPU µs and switches per request, and requests/s."""
    per_process = max(1, connections // processes)
    each = max(1, requests // (per_process * processes))
    pipes = [
        (multiprocessing.Pipe(duplex=False), multiprocessing.Pipe(duplex=False)) for _ in range(processes)
    ]
    servers = [
        multiprocessing.Process(target=_server, args=(per_process, each, listening[1], result[1]))
        for listening, result in pipes
    ]
    for server in servers:
        server.start()
    try:
        ports = [listening[0].recv() for listening, _ in pipes]
        os.sched_setaffinity(0, {CLIENT_CORE})
        seconds = uvloop.run(_send(ports * per_process, each, rate))
        reports = [result[0].recv() for _, result in pipes]
    finally:
        for server in servers:
            server.join(timeout=10)
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    answered = each * per_process * processes
    return {
        "cpu_us_per_request": sum(cpu for cpu, _ in reports) / answered * 1e6,
        "switches_per_request": sum(switches for _, switches in reports) / answered,
        "per_second": answered / seconds,
    }


def _numbers(text: str) -> list[float]:
    return sorted(float(value) for value in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=4000, help="measured requests per line (default 4000)"
    )
    parser.add_argument(
        "--rates",
        default="100,300,1000,3000",
        help="one server's paced rates, requests/s (default 100,300,1000,3000)",
    )
    parser.add_argument(
        "--processes", default="1,2,4,8", help="server processes sharing the core, unpaced (default 1,2,4,8)"
    )
    parser.add_argument(
        "--in-flight", type=int, default=8, help="requests in flight in all, for the processes (default 8)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two cores: the servers on one, the client on the other")
    counts = [int(count) for count in _numbers(args.processes)]
    if any(args.in_flight % count for count in counts):
        sys.exit("--in-flight must be a multiple of every --processes count")
    by_rate, by_processes = [], []
    for rate in _numbers(args.rates):
        print(f"one process, {rate:.0f}/s…", file=sys.stderr, flush=True)
        by_rate.append({"rate": rate, **measure(args.requests, rate)})
    for count in counts:
        print(f"{count} process(es), {args.in_flight} in flight…", file=sys.stderr, flush=True)
        by_processes.append({"processes": count, **measure(args.requests, 0, count, args.in_flight)})
    if args.json:
        print(
            json.dumps(
                {"requests": args.requests, "by_rate": by_rate, "by_processes": by_processes}, indent=2
            )
        )
        return
    fastest = by_rate[-1]["cpu_us_per_request"]
    print(f"{'one process, paced at':>24}{'CPU µs/request':>16}{'vs fastest':>12}{'switches/request':>18}")
    for r in by_rate:
        print(
            f"{r['rate']:>22.0f}/s{r['cpu_us_per_request']:>16.0f}"
            f"{r['cpu_us_per_request'] / fastest:>11.1f}x{r['switches_per_request']:>18.2f}"
        )
    alone = by_processes[0]  # requests/s stay in the JSON only: the client's round trips bound them
    print(
        f"\n{f'{args.in_flight} in flight, unpaced':>24}{'CPU µs/request':>16}{'vs first':>12}"
        f"{'switches/request':>18}"
    )
    for r in by_processes:
        print(
            f"{r['processes']:>14} process(es){r['cpu_us_per_request']:>16.0f}"
            f"{r['cpu_us_per_request'] / alone['cpu_us_per_request']:>11.1f}x{r['switches_per_request']:>18.2f}"
        )


if __name__ == "__main__":
    main()
