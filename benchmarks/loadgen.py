"""The rehearsal's load generator on its own: requests per second from one core, and its memory.

A trivial HTTP server (raw asyncio, keep-alive, a fixed small JSON answer) runs pinned to one core;
the generator (`python -m peakshop.rehearsal.engine`, in-process mode) runs pinned to the other,
offered far more single-request journeys than it can start, so what it completes is its ceiling.
Prints the numbers; asserts nothing (the goal is >= 3,000 requests/s per core and <= 300 MB).

    python benchmarks/loadgen.py [--seconds 10] [--rate 8000] [--in-flight 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peakshop.rehearsal.shop import free_port

BODY = b'{"id":"p1","slug":"p1","name":"Bench","skus":[]}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class _Trivial(asyncio.Protocol):
    """Answers every request head with the same response, keeping the connection open."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = self.buffer.count(b"\r\n\r\n")
        if answers:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * answers)


def serve(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Trivial, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _pinned(core: int, command: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core), *command] if taskset and (os.cpu_count() or 1) > 1 else command


def _wait_for(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # the server is starting; the deadline bounds this
    raise SystemExit(f"the trivial server did not listen on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=8000.0, help="journeys/s offered (above the ceiling)")
    parser.add_argument(
        "--in-flight", type=int, default=64, help="journeys in flight at most (like 64 connections)"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    from peakshop.rehearsal.plan import CatalogSample, Plan
    from peakshop.rehearsal.profile import Stage
    from peakshop.rehearsal.samples import Recorder

    port = free_port()
    server = subprocess.Popen(_pinned(0, [sys.executable, __file__, "--serve", str(port)]))
    try:
        _wait_for(port)
        with tempfile.TemporaryDirectory() as scratch:
            plan = Plan(
                target=f"http://127.0.0.1:{port}",
                stages=[Stage("flat out", args.seconds, args.rate, args.rate)],
                journeys={"product_page": 1},
                payments={"tok_visa": 1},
                seed=1,
                run_id="bench",
                catalog=CatalogSample(product_ids=["p1"]),
                arrivals="even",
                max_in_flight=args.in_flight,
                request_timeout_s=10,
                samples_path=str(Path(scratch) / "samples.json"),
            )
            plan.save(Path(scratch) / "plan.json")
            command = [sys.executable, "-m", "peakshop.rehearsal.engine", str(Path(scratch) / "plan.json")]
            started = time.perf_counter()
            subprocess.run(
                _pinned(1, command), stdout=subprocess.DEVNULL, check=True, timeout=args.seconds + 120
            )
            wall = time.perf_counter() - started
            samples = json.loads(Path(plan.samples_path).read_text())
    finally:
        server.terminate()
        server.wait(10)
    recorder = Recorder.from_json(samples["recorder"])
    total = recorder.total()
    # Throughput over the schedule's own seconds (not the process's start-up and drain).
    busy = [recorder.seconds[t].requests.requests for t in range(int(args.seconds)) if t in recorder.seconds]
    steady = busy[1:] or busy
    print(f"generator: Locust {samples['locust_version']}, in-process, pinned to one core")
    print(f"requests completed: {total.requests:,} in {args.seconds:.0f} s of schedule ({wall:.1f} s wall)")
    print(f"requests/s per core: {sum(steady) / max(1, len(steady)):,.0f} (mean of whole seconds)")
    print(f"errors: {total.errors_5xx}, client errors: {total.kinds.get('client', 0)}")
    print(
        f"latency p50/p99 from intended start: {total.latency.percentile(0.5):.1f} / {total.latency.percentile(0.99):.1f} ms"
    )
    print(f"peak RSS of the generator: {samples['generator']['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
