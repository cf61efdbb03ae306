"""The metrics every service exports, by the names SLO rules, dashboards and the rehearsal read.

The names follow OpenTelemetry's HTTP semantic conventions as Prometheus exports them. A rename here
breaks rules and panels: `tests/integration/slo` checks that every metric they name is exported.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Every SLO latency threshold must be a bucket boundary, or the SLI cannot be computed exactly.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """One registry per process; every service hosted in the process records into it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            ["service", "http_route", "http_request_method", "http_response_status_code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_active = Gauge(
            "http_server_active_requests", "HTTP requests in flight.", ["service"], registry=r
        )
        self.orders = Counter("peakshop_orders", "Orders by outcome.", ["outcome"], registry=r)
        self.checkouts_started = Counter(
            "peakshop_checkouts_started", "Checkout attempts accepted for processing.", registry=r
        )
        self.checkout_duration = Histogram(
            "peakshop_checkout_duration_seconds",
            "Duration of a checkout from request to outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reservations = Counter(
            "peakshop_reservations", "Stock reservations by outcome.", ["outcome"], registry=r
        )
        self.payments = Counter(
            "peakshop_payments", "Payment operations by outcome.", ["outcome"], registry=r
        )
        self.oversell = Counter("peakshop_oversell", "Units sold beyond stock (must stay zero).", registry=r)
        self.admissions = Counter(
            "peakshop_admissions", "Admission control decisions.", ["outcome"], registry=r
        )
        self.cart_additions = Counter("peakshop_cart_additions", "Lines added to carts.", registry=r)
        self.cache_lookups = Counter(
            "peakshop_cache_lookups", "Read-cache lookups by result.", ["cache", "result"], registry=r
        )
        self.outbox_published = Counter(
            "peakshop_outbox_published", "Outbox events relayed to the bus.", ["service"], registry=r
        )
        # Zero-valued children make the series exist before the first event, so rules never see
        # "no data" where they should see "nothing happened".
        for counter, outcomes in (
            (self.orders, ("confirmed", "failed")),
            (self.checkout_duration, ("confirmed", "failed")),
            (self.reservations, ("reserved", "committed", "released", "expired", "returned", "rejected")),
            (
                self.payments,
                ("authorized", "captured", "declined", "error", "timeout", "voided", "refunded", "abandoned"),
            ),
            (self.admissions, ("admitted", "rejected")),
        ):
            for outcome in outcomes:
                counter.labels(outcome)

    def render(self) -> bytes:
        return generate_latest(self.registry)
