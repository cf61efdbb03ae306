"""Serve one process's app with Granian, and stop it the way a load balancer expects.

On SIGTERM or Ctrl-C: report not-ready at once, keep serving for `drain_seconds` so that traffic can
move elsewhere, then stop accepting, let in-flight requests finish, and close pools (the lifespan).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Coroutine
from typing import Any

import structlog
from granian.constants import Interfaces
from granian.server.embed import Server
from litestar import Litestar

from peakshop.platform.web import Readiness

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


async def serve(app: Litestar, readiness: Readiness, *, host: str, port: int, drain_seconds: float) -> None:
    # Granian announces its embedded mode on every start; that is not news to our users.
    logging.getLogger("_granian").setLevel(logging.ERROR)
    server = Server(app, address=host, port=port, interface=Interfaces.ASGI, log_enabled=False, backlog=2048)
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
    log.info("listening", url=f"http://{host}:{port}")
    try:
        await server.serve()
    finally:
        stopper.cancel()
