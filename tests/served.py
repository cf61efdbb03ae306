"""Serving routers over real HTTP for client contract tests: the same server the shop runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
from granian.constants import Interfaces
from granian.server.embed import Server
from litestar import Router

from peakshop.platform.metrics import Metrics
from peakshop.platform.web import Readiness, create_app
from peakshop.rehearsal.shop import free_port


async def wait_until_serving(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):  # a starting server, bounded: at most about ten seconds
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the test server at {url} did not start")


@asynccontextmanager
async def served(
    name: str,
    routers: Sequence[Router],
    *,
    metrics: Metrics | None = None,
    readiness: Readiness | None = None,
) -> AsyncIterator[str]:
    """Serve `routers` on a free loopback port with the shop's app factory; yield the base URL."""
    app = create_app(
        name=name,
        routers=routers,
        lifespan=None,
        metrics=metrics or Metrics(),
        readiness=readiness or Readiness(),
    )
    port = free_port()
    server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False)
    serving = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_serving(base_url)
        yield base_url
    finally:
        server.stop()
        await asyncio.wait_for(serving, 10)
