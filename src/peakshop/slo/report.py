"""Error budget remaining and burn rates, read from Prometheus or estimated from a rehearsal."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peakshop.slo.spec import LatencySLI, RawSLI, ServiceSpec, SLOSpec
from peakshop.slo.windows import ALERT_WINDOWS, format_duration


@dataclass
class SLOStatus:
    service: str
    slo: str
    objective: float
    period: str
    budget_remaining: float | None = None
    burn_rates: dict[str, float | None] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ReportError(Exception):
    """The source of the report could not be read."""


def from_prometheus(specs: list[ServiceSpec], url: str, timeout: float = 10.0) -> list[SLOStatus]:
    """Query the recording rules through Prometheus' HTTP API."""
    remaining = _by_id(_query(url, "slo:period_error_budget_remaining:ratio", timeout))
    ratios = {
        window: _by_id(_query(url, f"slo:sli_error:ratio_rate{format_duration(window)}", timeout))
        for window in ALERT_WINDOWS
    }
    statuses = []
    for slo in _slos(specs):
        status = _status(slo)
        status.budget_remaining = remaining.get(slo.id)
        status.burn_rates = {
            format_duration(w): (r[slo.id] / slo.error_budget if slo.id in r else None)
            for w, r in ratios.items()
        }
        if status.budget_remaining is None:
            status.note = "no data: are the rules loaded?"
        statuses.append(status)
    return statuses


def _query(url: str, expr: str, timeout: float) -> list[dict[str, Any]]:
    address = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            body = json.load(response)
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot query {url}: {exc}") from exc
    if body.get("status") != "success":
        raise ReportError(f"Prometheus refused {expr!r}: {body.get('error', 'unknown error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _by_id(result: list[dict[str, Any]]) -> dict[str, float]:
    values: dict[str, float] = {}
    for sample in result:
        sloth_id = sample.get("metric", {}).get("sloth_id")
        if sloth_id is not None:
            values[sloth_id] = float(sample["value"][1])
    return values


def from_rehearsal(specs: list[ServiceSpec], directory: Path) -> list[SLOStatus]:
    """Budget a rehearsal spent, from its summary.json, for SLOs that name a `rehearsal_journey`.

    The observed bad ratio over the budget is the burn rate during the rehearsal; the share of the
    period's budget spent is that burn times the rehearsal's duration over the period.
    """
    try:
        summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {directory / 'summary.json'}: {exc}") from exc
    journeys = {j.get("name"): j for j in summary.get("journeys", []) if isinstance(j, dict)}
    duration = float(summary.get("duration_s") or 0)
    statuses = []
    for slo in _slos(specs):
        status = _status(slo)
        journey = journeys.get(slo.rehearsal_journey) if slo.rehearsal_journey else None
        if journey is None:
            status.note = (
                f"journey {slo.rehearsal_journey!r} not in the rehearsal"
                if slo.rehearsal_journey
                else "no rehearsal_journey in the spec"
            )
        else:
            bad, note = _bad_ratio(slo, journey)
            if bad is not None:
                burn = bad / slo.error_budget
                status.burn_rates = {"rehearsal": burn}
                status.budget_remaining = 1 - burn * duration / slo.period
            status.note = note
        statuses.append(status)
    return statuses


def _bad_ratio(slo: SLOSpec, journey: dict[str, Any]) -> tuple[float | None, str]:
    requests = float(journey.get("requests") or 0)
    if requests <= 0:
        return None, "the journey made no requests"
    if isinstance(slo.sli, RawSLI):
        return None, "a raw SLI cannot be measured from a rehearsal"
    if not isinstance(slo.sli, LatencySLI):
        return float(journey.get("errors_5xx") or 0) / requests, ""
    over = journey.get("latency_over_threshold")
    threshold_ms = slo.sli.threshold_seconds * 1000
    if isinstance(over, dict):
        # Counts of requests slower than each threshold, keyed by the threshold in seconds.
        for key, count in over.items():
            if float(key) == slo.sli.threshold_seconds:
                return float(count) / requests, ""
    elif isinstance(over, int | float):
        return float(over) / requests, ""
    # Without counts, percentiles bound the slow share: if p99 is within the threshold at most 1%
    # of requests were slower, and so on. Report the bound and say so.
    for percentile, share in (("p99_ms", 0.01), ("p95_ms", 0.05), ("p50_ms", 0.5)):
        value = journey.get(percentile)
        if value is not None and float(value) <= threshold_ms:
            return share, f"upper bound from {percentile}"
    return 1.0, "upper bound: even p50 is over the threshold"


def _slos(specs: list[ServiceSpec]) -> list[SLOSpec]:
    return [slo for spec in specs for slo in spec.slos]


def _status(slo: SLOSpec) -> SLOStatus:
    return SLOStatus(slo.service, slo.name, slo.objective, slo.period_name)
