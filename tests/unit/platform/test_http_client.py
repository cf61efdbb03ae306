"""`ServiceHttpClient` against real servers on loopback: keep-alive, the pool, problems and hang-ups."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import pytest
from litestar import Router, get, post
from litestar.params import JSONBody

from peakshop.platform.http_client import ServiceHttpClient
from peakshop.platform.problems import Conflict, Problem, TooManyRequests, Unavailable
from peakshop.rehearsal.shop import free_port
from tests.served import served

# -- a bare HTTP/1.1 server that counts connections and requests


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


Reply = Callable[[Received], Awaitable[bytes | None]]  # the response bytes, or None to never answer


def response(status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 response with a Content-Length body."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {"content-type": "application/json"}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Echo(msgspec.Struct):
    method: str
    target: str


async def echo(request: Received) -> bytes:
    """Answer with the method and target the server received."""
    return response(200, msgspec.json.encode(Echo(request.method, request.target)))


async def read_request(reader: asyncio.StreamReader) -> Received | None:
    """The next request on a connection, or None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ConnectionError("the client closed the connection in the middle of a request") from exc
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
    method, target, _version = request_line.split(" ")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, target, headers, body)


class RawServer:
    """Answers each request with `reply`; counts connections, requests and requests in flight."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.url = ""
        self.received: list[Received] = []
        self.accepted = 0  # connections accepted so far
        self.open = 0  # connections open now
        self.most_open = 0
        self.in_flight = 0  # requests read and not answered yet
        self.most_in_flight = 0
        self.hang_up_after_answer = False  # close the connection after answering, without saying so
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()

    def _note_change(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait, at most five seconds, until the counts say what the client is about to make them say."""
        async with asyncio.timeout(5):
            while not condition():
                await self._changed.wait()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(writer)
        self.accepted += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self._note_change()
        try:
            while (request := await read_request(reader)) is not None:
                self.received.append(request)
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                self._note_change()
                try:
                    answer = await self.reply(request)
                finally:
                    self.in_flight -= 1
                    self._note_change()
                if answer is None:
                    continue  # never answered: wait for whatever the client does next
                writer.write(answer)
                await writer.drain()
                if self.hang_up_after_answer:
                    writer.write_eof()  # the reading loop ends when the client closes its side
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            self._note_change()
            self.writers.discard(writer)
            self.tasks.discard(task)
            writer.close()

    def drop_connections_now(self) -> None:
        """Close every connection at once, the way a server drops idle ones, and read nothing more."""
        for writer in list(self.writers):
            writer.get_extra_info("socket").shutdown(socket.SHUT_RDWR)  # the FIN leaves now
            writer.transport.abort()


@asynccontextmanager
async def raw_server(reply: Reply, port: int = 0) -> AsyncIterator[RawServer]:
    server = RawServer(reply)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", port)
    server.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()
        for writer in list(server.writers):
            writer.close()
        for task in list(server.tasks):
            task.cancel()
        await asyncio.gather(*server.tasks, return_exceptions=True)
        await listener.wait_closed()


@asynccontextmanager
async def http_client(base_url: str, **options: Any) -> AsyncIterator[ServiceHttpClient]:
    client = ServiceHttpClient("upstream", base_url, **options)
    try:
        yield client
    finally:
        await client.close()


# -- a Litestar upstream served by the shop's own app factory and Granian


class Line(msgspec.Struct):
    sku: str
    qty: int
    note: str | None = None


class PricedLine(msgspec.Struct):
    sku: str
    qty: int
    total: int
    note: str | None


@post("/lines/price", status_code=200)
async def price_line(data: JSONBody[Line]) -> PricedLine:
    return PricedLine(data.sku, data.qty, data.qty * 250, data.note)


@post("/lines")
async def add_line(data: JSONBody[Line]) -> None:
    raise Conflict(f"{data.sku} is sold out", slug="sold-out")


@get("/busy")
async def busy() -> None:
    raise TooManyRequests("slow down", retry_after=7)


def upstream_router() -> Router:
    return Router("/", route_handlers=[price_line, add_line, busy], opt={"service": "upstream"})


# -- the tests


async def test_a_json_call_round_trips_a_struct() -> None:
    """A Struct body is sent as JSON and the JSON answer is decoded into the asked type."""
    async with served("upstream", [upstream_router()]) as base_url, http_client(base_url) as client:
        priced = await client.call("POST", "/lines/price", PricedLine, body=Line("sku_1", 3, "crème brûlée"))
    assert priced == PricedLine("sku_1", 3, 750, "crème brûlée")


async def test_sequential_calls_share_one_connection() -> None:
    """Calls one after another go over one kept-alive TCP connection."""
    async with raw_server(echo) as server, http_client(server.url) as client:
        answers = [await client.call("GET", f"/things/{n}", Echo) for n in range(5)]
    assert [answer.target for answer in answers] == [f"/things/{n}" for n in range(5)]
    assert server.accepted == 1
    assert len(server.received) == 5


async def test_the_pool_never_opens_more_than_pool_size_connections() -> None:
    """Ten concurrent calls with pool_size=2 use two connections, the rest wait, and all succeed."""
    gate = asyncio.Event()

    async def slow(request: Received) -> bytes:
        await gate.wait()
        return await echo(request)

    async with raw_server(slow) as server, http_client(server.url, pool_size=2) as client:
        calls = [asyncio.create_task(client.call("GET", f"/slow/{n}", Echo)) for n in range(10)]
        await server.wait_until(lambda: server.in_flight >= 2)  # two calls are held by the server
        gate.set()
        answers = await asyncio.gather(*calls)
    assert [answer.target for answer in answers] == [f"/slow/{n}" for n in range(10)]
    assert server.accepted == 2
    assert server.most_open == 2
    assert server.most_in_flight == 2


async def test_a_problem_answer_raises_the_same_problem() -> None:
    """problem+json comes back as a Problem with its status and slug, and Retry-After travels on."""
    async with served("upstream", [upstream_router()]) as base_url, http_client(base_url) as client:
        with pytest.raises(Problem) as busy:
            await client.call("GET", "/busy", type(None))
        with pytest.raises(Problem) as sold_out:
            await client.call("POST", "/lines", type(None), body=Line("sku_1", 1))
    assert (busy.value.status, busy.value.slug, busy.value.detail) == (429, "too-many-requests", "slow down")
    assert busy.value.headers == {"Retry-After": "7"}
    assert busy.value.extra["retry_after"] == 7
    assert (sold_out.value.status, sold_out.value.slug) == (409, "sold-out")
    assert sold_out.value.detail == "sku_1 is sold out"
    assert sold_out.value.headers == {}


async def test_a_5xx_that_is_not_a_problem_is_an_upstream_error() -> None:
    """A 5xx with an HTML or plain JSON body raises Problem(slug="upstream-error") with its status."""

    async def broken(request: Received) -> bytes:
        if request.target == "/html":
            return response(502, b"<html>Bad gateway</html>", {"content-type": "text/html"})
        return response(500, b'{"error": "boom"}')

    async with raw_server(broken) as server, http_client(server.url) as client:
        for target, status in [("/html", 502), ("/json", 500)]:
            with pytest.raises(Problem) as raised:
                await client.call("GET", target, Echo)
            assert (raised.value.status, raised.value.slug) == (status, "upstream-error")


async def test_a_connection_close_answer_is_not_reused() -> None:
    """After `Connection: close` the next call opens a new connection (the server left it open)."""

    async def closing(request: Received) -> bytes:
        body = msgspec.json.encode(Echo(request.method, request.target))
        return response(200, body, {"content-type": "application/json", "connection": "close"})

    async with raw_server(closing) as server, http_client(server.url) as client:
        first = await client.call("GET", "/first", Echo)
        second = await client.call("GET", "/second", Echo)
        await server.wait_until(lambda: server.open == 1)  # the client closed the first one itself
    assert (first.target, second.target) == ("/first", "/second")
    assert server.accepted == 2


async def test_a_chunked_body_is_read_whole() -> None:
    """A Transfer-Encoding: chunked body is joined whole, and the connection stays usable."""
    numbers = list(range(3000))
    payload = msgspec.json.encode(numbers)
    pieces = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"

    async def in_chunks(request: Received) -> bytes:
        return head + chunked

    async with raw_server(in_chunks) as server, http_client(server.url) as client:
        assert len(pieces) > 10
        assert await client.call("GET", "/numbers", list[int]) == numbers
        assert await client.call("GET", "/numbers", list[int]) == numbers
    assert server.accepted == 1


async def test_a_server_that_never_answers_is_unavailable_after_the_timeout() -> None:
    """No answer within `timeout` raises Unavailable in about that time; the connection is dropped."""

    async def never_for_slow_paths(request: Received) -> bytes | None:
        return None if request.target == "/never" else await echo(request)

    async with raw_server(never_for_slow_paths) as server, http_client(server.url, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as raised:
            await client.call("GET", "/never", Echo)
        elapsed = time.monotonic() - started
        assert (await client.call("GET", "/fast", Echo)).target == "/fast"
    assert 0.19 <= elapsed < 1.0
    assert raised.value.status == 503
    assert server.accepted == 2


async def test_a_refused_connection_is_unavailable_once_patience_runs_out() -> None:
    """Nobody listening on the port, for longer than `connect_patience`, raises Unavailable."""
    async with http_client(f"http://127.0.0.1:{free_port()}", timeout=5, connect_patience=0.3) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as raised:
            await client.call("GET", "/anything", Echo)
        elapsed = time.monotonic() - started
    assert (raised.value.status, raised.value.slug) == (503, "unavailable")
    assert 0.2 <= elapsed < 1.5


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_call_to_a_service_starting_again_waits_for_it(method: str) -> None:
    """Refused while the upstream is down, the call is sent once it listens again, whatever the method."""
    port = free_port()
    async with http_client(f"http://127.0.0.1:{port}", timeout=5, connect_patience=3) as client:
        call = asyncio.create_task(client.call(method, "/after-restart", Echo))
        await asyncio.sleep(0.4)  # the upstream's downtime, which the call must sit out
        assert not call.done()
        async with raw_server(echo, port) as server:
            answer = await call
    assert answer == Echo(method, "/after-restart")
    assert [request.target for request in server.received] == ["/after-restart"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_connection_the_client_saw_closed_is_not_reused(method: str) -> None:
    """Once the client has read a hang-up of an idle connection, the next call goes on a new one, once."""
    async with raw_server(echo) as server, http_client(server.url) as client:
        server.hang_up_after_answer = True
        await client.call(method, "/first", Echo, body={"n": 1})
        await server.wait_until(lambda: server.open == 0)  # the client read the hang-up and closed its side
        second = await client.call(method, "/second", Echo, body={"n": 2})
    assert second.target == "/second"
    assert server.accepted == 2
    assert [request.target for request in server.received] == ["/first", "/second"]


async def test_a_get_that_meets_a_connection_closed_while_idle_is_sent_again() -> None:
    """A GET written on an idle connection the server had just closed is sent again on a new one."""
    async with raw_server(echo) as server, http_client(server.url) as client:
        await client.call("GET", "/first", Echo)
        server.drop_connections_now()
        # No await since the hang-up: the client cannot have read it, it will write on that connection.
        assert len(client._idle) == 1 and not client._idle[0].closed
        second = await client.call("GET", "/second", Echo)
    assert second.target == "/second"
    assert server.accepted == 2
    assert [request.target for request in server.received] == ["/first", "/second"]


async def test_a_post_that_meets_a_connection_closed_while_idle_is_not_sent_again() -> None:
    """A POST written on an idle connection the server had just closed raises Unavailable, sent once."""
    async with raw_server(echo) as server, http_client(server.url) as client:
        await client.call("POST", "/first", Echo, body={"n": 1})
        server.drop_connections_now()
        # No await since the hang-up: the client cannot have read it, it will write on that connection.
        assert len(client._idle) == 1 and not client._idle[0].closed
        with pytest.raises(Unavailable):
            await client.call("POST", "/second", Echo, body={"n": 2})
        assert server.accepted == 1
        third = await client.call("POST", "/third", Echo, body={"n": 3})
    assert third.target == "/third"
    assert server.accepted == 2
    assert [request.target for request in server.received] == ["/first", "/third"]


async def test_a_header_with_cr_lf_or_nul_is_refused_before_sending() -> None:
    """A header name or value holding CR, LF or NUL raises ValueError and nothing reaches the server."""
    forged = [
        {"x-note": "fine\r\nx-injected: 1"},
        {"x-note": "fine\nx-injected: 1"},
        {"x-note": "fine\rx-injected: 1"},
        {"x-note": "fine\0"},
        {"x-note\r\nx-injected": "1"},
    ]
    async with raw_server(echo) as server, http_client(server.url) as client:
        for headers in forged:
            with pytest.raises(ValueError):
                await client.call("GET", "/forged", Echo, headers=headers)
        await client.call("GET", "/clean", Echo, headers={"x-note": "fine"})
    assert [(request.target, request.headers.get("x-note")) for request in server.received] == [
        ("/clean", "fine")
    ]
    assert all("x-injected" not in request.headers for request in server.received)


async def test_query_params_are_url_encoded_and_none_is_dropped() -> None:
    """Spaces, '&', '=' and non-ASCII in a value arrive intact; a None value is not sent at all."""
    params = {"q": "red shoes & socks=cheap", "page": 2, "cursor": None, "tag": "été/ü?"}
    async with raw_server(echo) as server, http_client(server.url) as client:
        answer = await client.call("GET", "/search", Echo, params=params)
    path, _, query = answer.target.partition("?")
    assert path == "/search"
    assert parse_qsl(query, keep_blank_values=True, strict_parsing=True) == [
        ("q", "red shoes & socks=cheap"),
        ("page", "2"),
        ("tag", "été/ü?"),
    ]
    assert len(server.received) == 1
