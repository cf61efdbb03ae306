"""Logs and traces: structlog JSON lines that carry the trace id, and OpenTelemetry spans.

Tracing is an SDK provider only when something will receive the spans (`OTEL_EXPORTER_OTLP_ENDPOINT`,
or a test's in-memory exporter); otherwise the API's no-op tracer keeps the hot path free.
"""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar
from typing import Any

import structlog
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

# The id of the request being served, for log lines and for calls this request makes to others.
request_id: ContextVar[str | None] = ContextVar("peakshop_request_id", default=None)

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    current = request_id.get()
    if current is not None:
        event.setdefault("request_id", current)
    return event


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def configure_logging(level: str = "info", fmt: str = "json", process: str | None = None) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        _add_trace_ids,
        structlog.processors.format_exc_info,
        renderer,
    ]
    if process:
        processors.insert(0, lambda _l, _m, e: {"process": process, **e})
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library; keep them quiet unless something is wrong.
    logging.basicConfig(level=max(_LEVELS[level], logging.WARNING), stream=sys.stderr)


def configure_tracing(service_name: str, exporter: SpanExporter | None = None) -> bool:
    """Install an SDK tracer provider when spans have somewhere to go; return whether it did."""
    if exporter is None and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
        processor: Any = BatchSpanProcessor(exporter)
    elif exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    else:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return True


def inject_trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add W3C `traceparent` for the current span, so the next service joins the same trace."""
    propagate.inject(headers)
    return headers


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
