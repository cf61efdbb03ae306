"""What one service-to-service call costs: the shop's client against a pooled aiohttp session, and
each HTTP server a topology process may run (ADR 0004), in one run.

Both clients call the same internal-style route (a JSON body decoded into a msgspec struct and sent
back) on the shop's own app factory (telemetry, problem handlers) served the way `peakshop serve`
serves it, in a child process: once on Granian, once on uvicorn. Client and server share one core,
as the services of the split topology do in `benchmarks/checkout.py`, so every microsecond either
side spends is on that core.

For each server and client it prints calls/s, the client's CPU time per call and the server's, and
the ratio against aiohttp on the same server; then each server's CPU per call against Granian's.
The aiohttp session is set up the way a careful caller would (a kept-alive connection pool, no
cookie jar, a pre-built URL), so the baseline is not a strawman. Run it with `--concurrency 1` as
well: a service in the split topology mostly sees one or two calls at a time.

A second table takes the server apart, layer by layer, with the shop's client: the same echo on
uvicorn as a Litestar route (what every service serves), as a Litestar ASGI route (Litestar's
routing, middleware and exception handlers, but no parameter parsing, signature model or response
object), as a bare ASGI app, and as an asyncio protocol over httptools with no ASGI at all. Each
step down shows what the layer it removed costs a call.

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
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from peakshop.rehearsal.shop import free_port
from peakshop.runtime.topology import SERVERS, ServerKind

CORE = 0
T = TypeVar("T")


class Line(msgspec.Struct, frozen=True):
    sku_id: str
    quantity: int
    reservation_id: str
    account_id: str


BODY = Line("sku_0001_blue_xl", 2, "res_" + "a" * 32, "acc_" + "b" * 32)
PATH = "/internal/bench/echo"


# The layers of the second table, top to bottom: each removes one layer of the one above.
LAYERS = {
    "litestar route": "the shop's app, the echo a Litestar route (as every service serves)",
    "litestar asgi route": "the shop's app, the echo an ASGI route inside it",
    "bare asgi app": "an ASGI app of its own on uvicorn",
    "asyncio protocol": "an asyncio protocol over httptools, no ASGI",
}
DECODE = msgspec.json.Decoder(Line)
ENCODE = msgspec.json.Encoder()


async def _echo_asgi(scope: Any, receive: Any, send: Any) -> None:
    """The echo with nothing around it: read the body, decode it strictly, answer it."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = ENCODE.encode(DECODE.decode(body))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def _serve(port: int, server: ServerKind, layer: str) -> None:
    """The child process: one echo route, served at `layer` (the shop's app: as every service is)."""
    from litestar import Router, asgi, post
    from litestar.params import JSONBody
    from litestar.types import Receive, Scope, Send

    from peakshop.platform.metrics import Metrics
    from peakshop.platform.web import Readiness, create_app
    from peakshop.runtime.server import run, serve

    if layer == "asyncio protocol":
        run(_serve_protocol(port))
        return
    if layer == "bare asgi app":
        run(_serve_asgi(port))
        return
    if layer == "litestar asgi route":

        @asgi("/echo", is_mount=False, copy_scope=False)
        async def echo_asgi(scope: Scope, receive: Receive, send: Send) -> None:
            await _echo_asgi(scope, receive, send)

        handler: Any = echo_asgi
    else:

        @post("/echo", status_code=200)
        async def echo(data: JSONBody[Line]) -> Line:
            return data

        handler = echo
    readiness = Readiness()
    app = create_app(
        name="bench",
        routers=[Router(path="/internal/bench", route_handlers=[handler], opt={"service": "bench"})],
        lifespan=None,
        metrics=Metrics(),
        readiness=readiness,
    )
    run(serve(app, readiness, host="127.0.0.1", port=port, drain_seconds=0, server_kind=server))


async def _serve_asgi(port: int) -> None:
    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await _echo_asgi(scope, receive, send)

    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    await uvicorn.Server(config).serve()


class _EchoProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive over httptools' parser, answering every request with its body echoed."""

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpRequestParser(self)
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a TCP server's transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer = ENCODE.encode(DECODE.decode(b"".join(self._body)))
        self._body.clear()
        assert self._transport is not None
        self._transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
            % (len(answer), answer)
        )


async def _serve_protocol(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_EchoProtocol, "127.0.0.1", port)
    await server.serve_forever()


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


async def _measure_shop_client(port: int, server: int, args: argparse.Namespace) -> dict[str, float]:
    from peakshop.platform.http_client import ServiceHttpClient

    client = ServiceHttpClient("bench", f"http://127.0.0.1:{port}")
    await client.start()
    try:
        return await _drive(
            lambda: client.call("POST", PATH, Line, body=BODY), args.seconds, args.concurrency, server
        )
    finally:
        await client.close()


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


def _serve_and_measure(
    server: ServerKind,
    layer: str,
    measure: Callable[[int, int, argparse.Namespace], Coroutine[Any, Any, T]],
    args: argparse.Namespace,
) -> T:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--server", server, "--layer", layer],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, child)
        import uvloop

        return uvloop.run(measure(port, child.pid, args))
    finally:
        child.terminate()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="seconds per client (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight (default 16)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--server", choices=SERVERS, default="granian", help=argparse.SUPPRESS)
    parser.add_argument("--layer", choices=LAYERS, default="litestar route", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.server, args.layer)
        return
    os.sched_setaffinity(0, {CORE})
    results = {server: _serve_and_measure(server, "litestar route", _measure, args) for server in SERVERS}
    layers = {layer: _serve_and_measure("uvicorn", layer, _measure_shop_client, args) for layer in LAYERS}
    if args.json:
        print(json.dumps({"servers": results, "layers": layers}, indent=2))
        return
    print(
        f"one service call, client and server on core {CORE}, {args.concurrency} in flight, {args.seconds:g} s each"
    )
    print(
        f"{'server':8} {'client':28} {'calls/s':>9} {'client µs':>10} {'server µs':>10} {'vs baseline':>12}"
    )
    for server, by_client in results.items():
        base = by_client["aiohttp (baseline)"]
        for name, r in by_client.items():
            ratio = r["calls_per_second"] / base["calls_per_second"]
            print(
                f"{server:8} {name:28} {r['calls_per_second']:9.0f} {r['client_cpu_us']:10.0f} "
                f"{r['server_cpu_us']:10.0f} {ratio:11.2f}x"
            )
        saved = base["client_cpu_us"] - by_client["peakshop ServiceHttpClient"]["client_cpu_us"]
        print(f"{server:8} client CPU saved per call: {saved:.0f} µs ({saved / base['client_cpu_us']:.0%})")
    shop = "peakshop ServiceHttpClient"
    granian = results["granian"][shop]
    for server, by_client in results.items():
        r = by_client[shop]
        print(
            f"{server} with the shop's client: server CPU per call {r['server_cpu_us'] / granian['server_cpu_us']:.0%} "
            f"of Granian's, calls/s {r['calls_per_second'] / granian['calls_per_second']:.2f}x"
        )
    print()
    print("the server's CPU per call, layer by layer (uvicorn, the shop's client):")
    print(f"{'served as':22} {'calls/s':>9} {'server µs':>10} {'less than above':>16}")
    above = None
    for layer, r in layers.items():
        less = "" if above is None else f"{above - r['server_cpu_us']:.0f} µs"
        print(f"{layer:22} {r['calls_per_second']:9.0f} {r['server_cpu_us']:10.0f} {less:>16}")
        above = r["server_cpu_us"]
    for layer, what in LAYERS.items():
        print(f"  {layer}: {what}")


if __name__ == "__main__":
    main()
