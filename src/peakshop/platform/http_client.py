"""The HTTP side of every `client.py`: pooled aiohttp, msgspec bodies, problems re-raised as such.

A remote call that fails with problem+json raises the same `Problem` the local client would have
raised, which is what lets one contract suite run against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar

import aiohttp
import msgspec
from multidict import CIMultiDict

from peakshop.platform.problems import Problem, Unavailable
from peakshop.platform.telemetry import inject_trace_headers
from peakshop.platform.telemetry import request_id as current_request_id

T = TypeVar("T")


class RawResponse(NamedTuple):
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


class ServiceHttpClient:
    def __init__(self, service: str, base_url: str, *, timeout: float = 10.0, pool_size: int = 100) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30),
                timeout=self._timeout,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        request_id = current_request_id.get()
        if request_id:
            headers["x-request-id"] = request_id
        if extra:
            headers.update(extra)
        return inject_trace_headers(headers)

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
        if self._session is None:
            await self.start()
        assert self._session is not None  # for the type checker: start() just made it
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        data = msgspec.json.encode(body) if body is not None else None
        try:
            async with self._session.request(
                method, self.base_url + path, data=data, params=query, headers=self._headers(headers)
            ) as response:
                payload = await response.read()
                if response.status >= 400:
                    raise self._problem(response.status, payload, response.headers.get("retry-after"))
                return RawResponse(response.status, CIMultiDict(response.headers), payload)
        except aiohttp.ClientConnectionError as exc:
            raise Unavailable(f"{self.service} is unreachable: {exc}", service=self.service) from exc
        except TimeoutError as exc:
            raise Unavailable(f"{self.service} did not answer in time", service=self.service) from exc

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
