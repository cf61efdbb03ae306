"""Reaching the real servers tests need, and scratch PostgreSQL databases.

When `PEAKSHOP_REQUIRE_SERVICES=1` (CI), a service that cannot be reached fails the test instead of
skipping it, so a green run always means the real PostgreSQL, Redis and RabbitMQ were exercised.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest

POSTGRES_ADMIN_URL = os.environ.get("PEAKSHOP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PEAKSHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("PEAKSHOP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REQUIRE_SERVICES = os.environ.get("PEAKSHOP_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) when a service the test needs is not listening."""
    if _reachable(host, port):
        return
    missing(f"{name} is not reachable at {host}:{port}")


def missing(message: str) -> NoReturn:
    """Skip a test whose service or tool is absent; in CI (PEAKSHOP_REQUIRE_SERVICES=1) fail it."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}, and PEAKSHOP_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(message)


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


def _in_thread(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` on a loop in a thread of its own: fixtures may sit inside a running loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result()


def _admin(sql: str) -> None:
    """Run one statement as the admin."""

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(run())


def drop_namespace_exchange(namespace: str) -> None:
    """Delete the events exchange a test shop declared in RabbitMQ: its queues expire on their own
    (`PEAKSHOP_QUEUE_EXPIRES_SECONDS`), an exchange never does."""

    async def run() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(f"{namespace}.events")

    _in_thread(run())


@contextmanager
def scratch_database() -> Iterator[str]:
    """Create a PostgreSQL database of its own, yield its URL, and drop it afterwards."""
    name = f"peakshop_t_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES_ADMIN_URL, name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_REDIS_ADDRESS = (urlsplit(REDIS_URL).hostname or "127.0.0.1", urlsplit(REDIS_URL).port or 6379)


class RedisLink:
    """A TCP relay to the real Redis, which a test can cut.

    Cut, it keeps every connection open and passes nothing on, as a Redis that hangs or a network
    that drops packets does: commands wait for answers that never come. `held` counts the bytes it
    kept back.
    """

    def __init__(self, database: int = 15) -> None:
        self.cut = False
        self.held = 0
        self._database = database
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RedisLink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/{self._database}"
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*_REDIS_ADDRESS)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pass(reader, upstream_writer), self._pass(upstream_reader, writer), return_exceptions=True
        )
        writer.close()
        upstream_writer.close()

    async def _pass(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65_536):
            if self.cut:
                self.held += len(data)
            else:
                sink.write(data)
                await sink.drain()
        sink.close()
