"""Grafana dashboards built with grafana-foundation-sdk: services, SLOs and error budgets, business."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import DataSourceRef

from peakshop.slo.queries import number
from peakshop.slo.rules import selector
from peakshop.slo.spec import ServiceSpec

_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_HTTP = "http_server_request_duration_seconds"


def dashboards(specs: list[ServiceSpec]) -> dict[str, dict[str, Any]]:
    """Dashboard name to Grafana JSON model; the SLO board follows the specs."""
    boards = {
        "service-overview": _service_overview(),
        "slos": _slos(specs),
        "business": _business(),
    }
    # Round-trip through the SDK's encoder so the result is plain, sortable JSON data.
    return {name: json.loads(json.dumps(board.build(), cls=JSONEncoder)) for name, board in boards.items()}


def _query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(_DATASOURCE)


def _series(title: str, unit: str, *queries: prometheus.Dataquery, width: int = 12) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(_DATASOURCE).span(width).height(8)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _stat(title: str, unit: str, query: prometheus.Dataquery, width: int = 6) -> stat.Panel:
    return (
        stat.Panel().title(title).unit(unit).datasource(_DATASOURCE).span(width).height(5).with_target(query)
    )


def _board(uid: str, title: str, tags: list[str]) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(tags)
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )


def _service_overview() -> dashboard.Dashboard:
    where = 'service=~"$service"'
    rate = f"sum by (service, http_route) (rate({_HTTP}_count{{{where}}}[$__rate_interval]))"
    errors = (
        f'sum by (service, http_route) (rate({_HTTP}_count{{{where},http_response_status_code=~"5.."}}'
        f"[$__rate_interval]))\n/\n{rate}"
    )

    def quantile(q: str) -> str:
        return (
            f"histogram_quantile({q}, sum by (service, http_route, le) "
            f"(rate({_HTTP}_bucket{{{where}}}[$__rate_interval])))"
        )

    return (
        _board("peakshop-services", "peakshop / services", ["peakshop", "services"])
        .with_variable(
            dashboard.QueryVariable("service")
            .label("Service")
            .query(f"label_values({_HTTP}_count, service)")
            .datasource(_DATASOURCE)
            .multi(True)
            .include_all(True)
        )
        .with_row(dashboard.Row("Traffic and errors"))
        .with_panel(
            _series("Requests per second by route", "reqps", _query(rate, "{{service}} {{http_route}}"))
        )
        .with_panel(
            _series("5xx ratio by route", "percentunit", _query(errors, "{{service}} {{http_route}}"))
        )
        .with_row(dashboard.Row("Duration"))
        .with_panel(
            _series("p50 duration", "s", _query(quantile("0.5"), "{{service}} {{http_route}}"), width=8)
        )
        .with_panel(
            _series("p95 duration", "s", _query(quantile("0.95"), "{{service}} {{http_route}}"), width=8)
        )
        .with_panel(
            _series("p99 duration", "s", _query(quantile("0.99"), "{{service}} {{http_route}}"), width=8)
        )
        .with_row(dashboard.Row("Saturation"))
        .with_panel(
            _series(
                "In-flight requests",
                "short",
                _query(f"sum by (service) (http_server_active_requests{{{where}}})", "{{service}}"),
                width=24,
            )
        )
    )


def _slos(specs: list[ServiceSpec]) -> dashboard.Dashboard:
    board = _board("peakshop-slos", "peakshop / SLOs and error budgets", ["peakshop", "slo"])
    for spec in specs:
        for slo in spec.slos:
            sel = selector(slo)
            board = (
                board.with_row(
                    dashboard.Row(f"{slo.service} / {slo.name} ({slo.objective:g}% over {slo.period_name})")
                )
                .with_panel(
                    _stat(
                        "Error budget remaining",
                        "percentunit",
                        _query(f"slo:period_error_budget_remaining:ratio{sel}", "remaining"),
                    )
                )
                .with_panel(
                    _stat("Burn rate now (5m)", "x", _query(f"slo:current_burn_rate:ratio{sel}", "burn"))
                )
                .with_panel(
                    _stat(
                        f"SLI over {slo.period_name}",
                        "percentunit",
                        _query(f"1 - slo:sli_error:ratio_rate{slo.period_name}{sel}", "sli"),
                    )
                )
                .with_panel(
                    _stat(
                        "Alerts firing",
                        "short",
                        _query(
                            f'count(ALERTS{{alertname="{slo.alerting.name}",alertstate="firing"}}) or vector(0)',
                            "firing",
                        ),
                    )
                )
                .with_panel(
                    _series(
                        "Burn rate by window",
                        "x",
                        _query(
                            f'{{__name__=~"slo:sli_error:ratio_rate(5m|1h|6h|1d|3d)",'
                            f'sloth_id="{slo.id}"}} / {number(slo.error_budget)}',
                            "{{sloth_window}}",
                        ),
                        width=24,
                    )
                )
            )
    return board


def _business() -> dashboard.Dashboard:
    window = "[$__rate_interval]"
    return (
        _board("peakshop-business", "peakshop / business", ["peakshop", "business"])
        .with_panel(
            _series(
                "Orders per minute",
                "short",
                _query(f"sum by (outcome) (rate(peakshop_orders_total{window})) * 60", "{{outcome}}"),
            )
        )
        .with_panel(
            _series(
                "Checkout conversion",
                "percentunit",
                _query(
                    f'sum(rate(peakshop_orders_total{{outcome="confirmed"}}{window}))\n/\n'
                    f"sum(rate(peakshop_checkouts_started_total{window}))",
                    "confirmed / started",
                ),
            )
        )
        .with_panel(
            _series(
                "Payment success",
                "percentunit",
                _query(
                    f'sum(rate(peakshop_payments_total{{outcome="authorized"}}{window}))\n/\n'
                    f'sum(rate(peakshop_payments_total{{outcome=~"authorized|declined|error|timeout"}}{window}))',
                    "authorized / attempted",
                ),
            )
        )
        .with_panel(
            _series(
                "Checkout duration p95",
                "s",
                _query(
                    "histogram_quantile(0.95, sum by (outcome, le) "
                    f"(rate(peakshop_checkout_duration_seconds_bucket{window})))",
                    "{{outcome}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Reservations by outcome per minute",
                "short",
                _query(f"sum by (outcome) (rate(peakshop_reservations_total{window})) * 60", "{{outcome}}"),
            )
        )
        .with_panel(
            _series(
                "Reservations expiring per minute",
                "short",
                _query(
                    f'sum(rate(peakshop_reservations_total{{outcome="expired"}}{window})) * 60', "expired"
                ),
            )
        )
        .with_panel(
            _stat(
                "Oversold units (must stay 0)",
                "short",
                _query("sum(peakshop_oversell_total) or vector(0)", "oversold"),
            )
        )
        .with_panel(
            _series(
                "Admissions",
                "reqps",
                _query(f"sum by (outcome) (rate(peakshop_admissions_total{window}))", "{{outcome}}"),
                width=9,
            )
        )
        .with_panel(
            _series(
                "Cart additions per minute",
                "short",
                _query(f"sum(rate(peakshop_cart_additions_total{window})) * 60", "added"),
                width=9,
            )
        )
    )
