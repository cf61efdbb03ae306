"""One checkout on the split topology is one trace, and its log lines carry that trace's id.

The shop's processes export spans over OTLP/HTTP to a collector this test runs in memory; the W3C
`traceparent` header is what must carry the trace from the storefront to orders, inventory and
payments.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from peakshop.rehearsal.shop import free_port
from tests.e2e.buyers import a_sku_in_stock, add_to_cart, check_out, client_for, sign_up
from tests.e2e.conftest import fresh_shop

pytestmark = pytest.mark.e2e


class Collector:
    """An OTLP/HTTP trace receiver that keeps (service, trace id, span name) in memory."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append((attributes.get("service.name", ""), span.trace_id.hex(), span.name))
        return web.Response(status=200)


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    sink = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", sink.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield sink, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_one_checkout_is_one_trace_across_the_services(
    collector: tuple[Collector, str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    sink, endpoint = collector
    telemetry = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "PEAKSHOP_LOG_LEVEL": "info",
    }
    with fresh_shop("split", tmp_path, telemetry) as setup:
        shop = setup.start()
        try:
            async with client_for(shop.base_url) as client:
                buyer = await sign_up(client, "traced")
                await add_to_cart(client, buyer, await a_sku_in_stock(client, skip=13))
                response = await check_out(client, buyer)
                assert response.status_code == 201, response.text
                request_id = response.headers["x-request-id"]
            checkout_traces = set()
            for _ in range(100):  # spans leave in batches; wait for them, bounded
                checkout_traces = {t for service, t, name in sink.spans if name == "POST /api/checkout"}
                if checkout_traces:
                    services = {service for service, t, _ in sink.spans if t in checkout_traces}
                    if {"peakshop-orders", "peakshop-inventory", "peakshop-payments"} <= services:
                        break
                await asyncio.sleep(0.1)
        finally:
            assert shop.stop() == 0
    assert len(checkout_traces) == 1, sink.spans
    (trace_id,) = checkout_traces
    services = {service for service, t, _ in sink.spans if t == trace_id}
    assert services >= {"peakshop-storefront", "peakshop-orders", "peakshop-inventory", "peakshop-payments"}
    lines = [json.loads(line.split("│", 1)[1]) for line in shop.output().splitlines() if "│ {" in line]
    of_request = [line for line in lines if line.get("request_id") == request_id]
    assert of_request, "the checkout logged nothing"
    assert all(line.get("trace_id") == trace_id for line in of_request), of_request
