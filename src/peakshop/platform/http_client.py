"""The HTTP side of every `client.py`: pooled keep-alive HTTP/1.1, msgspec bodies, problems re-raised.

A remote call that fails with problem+json raises the same `Problem` the local client would have
raised, which is what lets one contract suite run against both.

The services talk to each other through this small client rather than a general-purpose one: every
hop of a checkout pays for its client, and a general client spends most of its time on what these
calls never use (cookies, redirects, proxies, URL objects, compression). Here a call is: take a
kept-alive connection from the pool (or open one), write the request in one piece, and let
`httptools` (the llhttp parser) read the answer. ADR 0003 has the measurements.

What it guarantees:
- at most `pool_size` connections per service; callers beyond that wait for one;
- `timeout` bounds the whole call, connecting included; a call that runs out is `Unavailable`;
- a connection that fails, times out or answers `Connection: close` is never reused;
- idle connections are dropped after `idle_seconds` (well before a server would close them), and a
  request that meets a connection the server closed while it was idle is sent again on a new one
  only when that is safe: the method is idempotent (RFC 9110 §9.2.2) and no byte of an answer came;
- a refused connection (nothing listens: the service is down, or starting again after a crash) is
  tried again, 50 ms later and then up to every 0.5 s, for `connect_patience` seconds (3 by default,
  within `timeout`), whatever the method: no byte was sent. A process that `peakshop up` restarts
  is back within about two seconds, so its callers wait for it instead of answering 503. A request
  already sent when its server died is not sent again, unless it was idempotent and met a
  connection closed while idle, as above.

What it does not do, because the shop's services never need it: HEAD (refused: the parser would
wait for the body the length announces), answers whose body ends when the server closes the
connection (Granian always sends a length or chunks), TLS, redirects, compression.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import httptools
import msgspec
from multidict import CIMultiDict

from peakshop.platform.problems import Problem, Unavailable
from peakshop.platform.telemetry import inject_trace_headers
from peakshop.platform.telemetry import request_id as current_request_id

T = TypeVar("T")

IDEMPOTENT = frozenset({"GET", "OPTIONS", "PUT", "DELETE"})
_FORBIDDEN_IN_HEADERS = frozenset("\r\n\0")


class RawResponse(NamedTuple):
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


class _Closed(ConnectionError):
    """The peer closed the connection; `answered` says whether any byte of a response had come."""

    def __init__(self, answered: bool) -> None:
        super().__init__("the connection was closed before the response was complete")
        self.answered = answered


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time, parsed with llhttp."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[RawResponse] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._answered = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, same methods

    def data_received(self, data: bytes) -> None:
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(_Closed(self._answered))

    # -- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        response = RawResponse(
            self._parser.get_status_code(), CIMultiDict(self._headers), b"".join(self._body)
        )
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # -- use

    async def exchange(self, request: bytes) -> RawResponse:
        assert self.transport is not None and self._waiter is None
        self._headers, self._body, self._answered = [], [], False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class ServiceHttpClient:
    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        timeout: float = 10.0,
        pool_size: int = 100,
        idle_seconds: float = 10.0,
        connect_patience: float = 3.0,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{service}: a base URL like http://host:port is needed, not {base_url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._prefix = parts.path
        self._host_header = parts.netloc
        self._timeout = timeout
        self._idle_seconds = idle_seconds
        self._connect_patience = connect_patience
        self._pool_size = pool_size
        self._slots: asyncio.Semaphore | None = None
        self._idle: deque[_Connection] = deque()
        self._open: set[_Connection] = set()

    async def start(self) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._pool_size)

    async def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        request_id = current_request_id.get()
        if request_id:
            headers["x-request-id"] = request_id
        if extra:
            headers.update(extra)
        return inject_trace_headers(headers)

    def _request_bytes(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"host: {self._host_header}", f"content-length: {len(body)}"]
        for name, value in headers.items():
            if _FORBIDDEN_IN_HEADERS.intersection(name) or _FORBIDDEN_IN_HEADERS.intersection(value):
                raise ValueError(f"header {name!r}: a value cannot hold CR, LF or NUL")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def raw(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse:
        """Send a request; return the body as bytes with the headers, or raise the problem it got."""
        if method == "HEAD":
            raise ValueError("HEAD is not supported: use GET")
        target = self._prefix + path
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if query:
            target += "?" + urlencode(query)
        data = msgspec.json.encode(body) if body is not None else b""
        request = self._request_bytes(method, target, self._headers(headers), data)
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._send(request, retry=method in IDEMPOTENT)
        except TimeoutError as exc:
            raise Unavailable(f"{self.service} did not answer in time", service=self.service) from exc
        except OSError as exc:
            raise Unavailable(f"{self.service} is unreachable: {exc}", service=self.service) from exc
        if response.status >= 400:
            raise self._problem(response.status, response.body, response.headers.get("retry-after"))
        return response

    async def _send(self, request: bytes, *, retry: bool) -> RawResponse:
        if self._slots is None:
            await self.start()
        assert self._slots is not None  # for the type checker: start() just made it
        async with self._slots:
            while True:
                connection, reused = await self._connection()
                try:
                    response = await connection.exchange(request)
                except _Closed as exc:
                    self._open.discard(connection)
                    if reused and retry and not exc.answered:
                        continue  # the server closed it while it was idle: nothing was done
                    raise
                except BaseException:
                    connection.close()  # a cancelled or failed exchange leaves it in an unknown state
                    self._open.discard(connection)
                    raise
                if connection.closed:
                    self._open.discard(connection)
                else:
                    connection.idle_since = time.monotonic()
                    self._idle.append(connection)
                return response

    async def _connection(self) -> tuple[_Connection, bool]:
        """A kept-alive connection that is still fresh, else a new one; and whether it was reused."""
        stale_before = time.monotonic() - self._idle_seconds
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and connection.idle_since > stale_before:
                return connection, True
            connection.close()
            self._open.discard(connection)
        loop = asyncio.get_running_loop()
        give_up = time.monotonic() + self._connect_patience
        pause = 0.05
        while True:
            try:
                _, connection = await loop.create_connection(_Connection, self._host, self._port)
            except ConnectionRefusedError:
                # Nothing listens there: the service is down or starting again, and nothing was sent.
                # Asking again for a while turns a restart into a pause for the caller, not an error.
                left = give_up - time.monotonic()
                if left <= 0:
                    raise
                await asyncio.sleep(min(pause, left))
                pause = min(2 * pause, 0.5)
                continue
            self._open.add(connection)
            return connection, False

    async def call(
        self,
        method: str,
        path: str,
        type_: type[T],
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> T:
        """Send a request and decode the JSON answer as `type_` (`type(None)` for no body)."""
        response = await self.raw(method, path, body=body, params=params, headers=headers)
        if type_ is type(None):
            return None
        return msgspec.json.decode(response.body, type=type_)

    def _problem(self, status: int, payload: bytes, retry_after: str | None) -> Problem:
        try:
            body = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            body = None
        if isinstance(body, dict) and "type" in body:
            # Headers that tell the caller what to do next travel on with the problem.
            return Problem.from_dict(body, {"Retry-After": retry_after} if retry_after else None)
        return Problem(f"{self.service} answered {status}", status=status, slug="upstream-error")


def service_client(service: str, http: ServiceHttpClient | str, timeout: float = 10.0) -> ServiceHttpClient:
    """`http` itself when it is a client already (the composition root builds them, with every
    setting), else a client for the base URL `http` with this timeout and defaults (tests, scripts)."""
    return http if isinstance(http, ServiceHttpClient) else ServiceHttpClient(service, http, timeout=timeout)
