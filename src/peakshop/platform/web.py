"""The Litestar app every process serves: problem+json errors, request ids, metrics, traces, health.

`create_app` takes the routers of the services hosted in the process and a lifespan that starts and
stops them; everything else here is the same for every service and every topology.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import msgspec
import structlog
from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from peakshop import __version__
from peakshop.platform.metrics import METRICS_CONTENT_TYPE, Metrics
from peakshop.platform.problems import PROBLEM_CONTENT_TYPE, InvalidInput, Problem
from peakshop.platform.telemetry import request_id as request_id_var

log = structlog.get_logger("peakshop.web")

# Litestar raises these for what went wrong before a handler ran; each gets a stable problem type.
_HTTP_SLUGS = {
    400: ("invalid-request", "The request is not valid"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "The request body is too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


T = TypeVar("T")


async def strict_body(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """The request body decoded strictly: `"2"` is not an integer here, nor is `2.0`.

    Litestar converts bodies leniently (as it must for query strings); routes that take quantities or
    amounts decode again from the raw bytes, which Litestar keeps, so a wrong type is a 400 that names
    the field.
    """
    try:
        return msgspec.json.decode(await request.body(), type=type_)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc).replace("`$.", "`").replace("`$", "`body")) from exc
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from exc


class Readiness:
    """Whether this process should receive traffic: dependencies up and not draining."""

    def __init__(self) -> None:
        self.draining = False
        self.checks: list[Callable[[], Awaitable[None]]] = []

    async def problems(self) -> list[str]:
        if self.draining:
            return ["draining"]
        failed = []
        for check in self.checks:
            try:
                await check()
            except Exception as exc:
                failed.append(f"{getattr(check, '__qualname__', check)}: {exc}")
        return failed


def problem_response(problem: Problem, instance: str | None = None) -> Response[Any]:
    return Response(
        content=problem.to_dict(instance),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def _on_problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return problem_response(exc, request.url.path)


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    detail = "; ".join(
        f"{e.get('key') or e.get('source') or 'body'}: {e.get('message')}"
        for e in errors
        if isinstance(e, dict)
    )
    problem = Problem(
        detail or str(exc.detail),
        status=400,
        slug="invalid-request",
        title="The request is not valid",
        errors=errors,
    )
    return problem_response(problem, request.url.path)


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    if exc.status_code >= 500:
        log.error("http_error", status=exc.status_code, detail=exc.detail)
    headers = dict(exc.headers or {})
    problem = Problem(str(exc.detail), status=exc.status_code, slug=slug, title=title, headers=headers)
    return problem_response(problem, request.url.path)


def _on_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # A real fault: log it in full here, and tell the client nothing it could use against us.
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    problem = Problem(
        "The server failed to handle this request; it has been logged.",
        status=500,
        slug="internal-error",
        title="Internal server error",
    )
    return problem_response(problem, request.url.path)


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_json(headers: dict[str, str]) -> bool:
    """A body, if any, must be JSON: `application/json` or a `+json` type."""
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return True
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _unsupported_media_type(headers: dict[str, str]) -> Problem:
    got = headers.get("content-type") or "none"
    return Problem(
        f"the body must be JSON (Content-Type: application/json); got {got!r}",
        status=415,
        slug="unsupported-media-type",
        title="Unsupported media type",
    )


async def _send_problem(send: Send, problem: Problem, instance: str, request_id: str) -> None:
    body = msgspec.json.encode(problem.to_dict(instance))
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": problem.status,
        "headers": [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


# The only request headers the middleware reads; everything else is left for the handler.
_WANTED_HEADERS = frozenset(
    {"x-request-id", "content-type", "content-length", "transfer-encoding", "traceparent", "tracestate"}
)


class TelemetryMiddleware:
    """Request id, server span and the HTTP metrics of brief §6, in one pass per request.

    This runs on every request, so it keeps to the bone: metric children are looked up once per label
    set, only the headers it needs are decoded, and spans are made only when a tracer provider that
    records them is installed.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, default_service: str) -> None:
        self.app = app
        self.metrics = metrics
        self.default_service = default_service
        self.tracer = trace.get_tracer("peakshop.web")
        self._durations: dict[tuple[str, str, str, int], Any] = {}
        self._active: dict[str, Any] = {}

    def _observe(self, service: str, route: str, method: str, status: int, seconds: float) -> None:
        key = (service, route, method, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self.metrics.http_duration.labels(
                service, route, method, str(status)
            )
        child.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        opt = handler.opt if handler is not None else {}
        if opt.get("untracked"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        service = opt.get("service", self.default_service)
        route = scope.get("path_template") or "unmatched"
        method: str = scope["method"]  # type: ignore[typeddict-item]  # an http scope has one
        headers = {
            name: value.decode("latin-1")
            for raw, value in scope["headers"]
            if (name := raw.decode("latin-1")) in _WANTED_HEADERS
        }
        request_id = headers.get("x-request-id") or os.urandom(16).hex()
        if method in _BODY_METHODS and not _is_json(headers):
            await _send_problem(send, _unsupported_media_type(headers), scope["path"], request_id)
            self._observe(service, route, method, 415, time.perf_counter() - started)
            return
        status = 500
        request_id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        active = self._active.get(service)
        if active is None:
            active = self._active[service] = self.metrics.http_active.labels(service)
        active.inc()
        token = request_id_var.set(request_id)
        try:
            if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
                await self.app(scope, receive, send_with_id)  # no tracer installed: no span to make
            else:
                await self._traced(scope, receive, send_with_id, headers, f"{method} {route}", service)
        finally:
            request_id_var.reset(token)
            active.dec()
            self._observe(service, route, method, status, time.perf_counter() - started)

    async def _traced(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], name: str, service: str
    ) -> None:
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        context = propagate.extract(headers)
        with self.tracer.start_as_current_span(name, context=context, kind=SpanKind.SERVER) as span:
            try:
                await self.app(scope, receive, send_recording_status)
            finally:
                span.set_attribute("http.route", scope.get("path_template") or "unmatched")
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("peakshop.service", service)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def _operations_router(metrics: Metrics, readiness: Readiness) -> Router:
    @get("/healthz", media_type=MediaType.JSON, include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", media_type=MediaType.JSON, include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        failed = await readiness.problems()
        if failed:
            return Response({"status": "unavailable", "problems": failed}, status_code=503)
        return Response({"status": "ready"})

    @get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response[bytes]:
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return Router(path="/", route_handlers=[healthz, readyz, metrics_endpoint], opt={"untracked": True})


def create_app(
    *,
    name: str,
    routers: Sequence[Router],
    lifespan: Callable[[Litestar], AbstractAsyncContextManager[None]] | None,
    metrics: Metrics,
    readiness: Readiness,
    max_body_bytes: int = 65_536,
) -> Litestar:
    """The ASGI app of one process, hosting the given services' routers."""
    return Litestar(
        route_handlers=[_operations_router(metrics, readiness), *routers],
        exception_handlers={
            Problem: _on_problem,
            ValidationException: _on_validation,
            HTTPException: _on_http,
            Exception: _on_crash,
        },
        middleware=[lambda app: TelemetryMiddleware(app, metrics, name)],
        lifespan=[lifespan] if lifespan else [],
        openapi_config=OpenAPIConfig(
            title=f"peakshop {name}",
            version=__version__,
            path="/schema",
        ),
        request_max_body_size=max_body_bytes,
        logging_config=None,
    )
