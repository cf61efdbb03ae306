"""Serve one process's app with Granian or uvicorn, and stop it the way a load balancer expects.

On SIGTERM or Ctrl-C: report not-ready at once, keep serving for `drain_seconds` so that traffic can
move elsewhere, then stop accepting, let in-flight requests finish, and close pools (the lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Coroutine, Iterator
from typing import Any

import structlog
import uvicorn
from granian.constants import Interfaces
from granian.errors import FatalError as GranianFatalError
from granian.server.embed import Server as Granian
from litestar import Litestar

from peakshop.platform.web import Readiness
from peakshop.runtime.topology import SERVERS, ServerKind

log = structlog.get_logger("peakshop.server")


class PortInUse(Exception):
    """Another process already listens on the address this process was given."""


def ensure_port_free(host: str, port: int) -> None:
    """Refuse an address another process already listens on.

    Granian binds with SO_REUSEPORT, so a second server on a taken port starts without complaint
    and the kernel hands each new connection to either of them: half a service's calls would reach
    some other service. A plain bind, without that option, fails on a listening port instead.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"{host}:{port} is already in use by another process") from exc
            raise


def run(main: Coroutine[Any, Any, None], event_loop: str = "uvloop") -> None:
    """Run a process's main coroutine on uvloop (libuv's loop, much faster at sockets) or asyncio's."""
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # not built for this platform: the standard loop does the same work
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


class ServerDidNotStart(Exception):
    """The app's startup failed before the server took its first request."""


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, run inside this process's loop; `serve` below owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True  # stop accepting, let requests in flight finish, then the lifespan

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets)
        except SystemExit as exc:  # uvicorn logs why the app's startup failed, then exits
            raise ServerDidNotStart("the app did not start: the log above says why") from exc


def _server(kind: ServerKind, app: Litestar, host: str, port: int) -> Granian | _Uvicorn:
    """The HTTP server a topology process asks for (ADR 0004).

    Granian (Rust I/O threads) holds its tail latency best with many client connections at once;
    uvicorn (everything on the process's own loop) costs a service call about a third less when
    calls arrive one or two at a time, because no request crosses threads.
    """
    if kind == "granian":
        # Granian announces its embedded mode on every start; that is not news to our users.
        logging.getLogger("_granian").setLevel(logging.ERROR)
        return Granian(
            app, address=host, port=port, interface=Interfaces.ASGI, log_enabled=False, backlog=2048
        )
    if kind == "uvicorn":
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="none",  # run in the loop `run` made
            http="httptools",
            ws="none",
            lifespan="on",
            log_config=None,  # keep the process's own logging
            log_level=logging.WARNING,
            access_log=False,
            proxy_headers=False,  # as Granian: the peer is the client; trusting a proxy is a deployment choice
            server_header=False,
            # Service clients drop a connection idle for 10 s; the server must not close it first.
            timeout_keep_alive=75,
            backlog=2048,
        )
        return _Uvicorn(config)
    raise ValueError(f"unknown server {kind!r}: use one of {', '.join(SERVERS)}")


async def serve(
    app: Litestar,
    readiness: Readiness,
    *,
    host: str,
    port: int,
    drain_seconds: float,
    server_kind: ServerKind = "granian",
) -> None:
    server = _server(server_kind, app, host, port)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            return
        log.info("shutdown_requested", signal=signal.Signals(signum).name, drain_seconds=drain_seconds)
        readiness.draining = True
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)

    async def stop_after_drain() -> None:
        await stopping.wait()
        await asyncio.sleep(drain_seconds)
        server.stop()

    stopper = asyncio.create_task(stop_after_drain())
    log.info("listening", url=f"http://{host}:{port}", server=server_kind)
    try:
        await server.serve()
    except GranianFatalError as exc:  # Granian's way of saying the same
        raise ServerDidNotStart(f"the app did not start ({exc}): the log above says why") from exc
    finally:
        stopper.cancel()
