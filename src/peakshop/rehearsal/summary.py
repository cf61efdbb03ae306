"""From what the generator observed to `summary.json`: totals, per-journey figures and the SLO verdict.

`peakshop slo report --rehearsal DIR` reads the same file: `duration_s` and, per journey, `name`,
`requests`, `errors_5xx`, the percentiles and `latency_over_threshold` (slow-request counts keyed by
threshold in seconds), so error budgets can be judged from a rehearsal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from peakshop.rehearsal.profile import SLO
from peakshop.rehearsal.samples import THRESHOLDS_S, Recorder, Tally


@dataclass
class Threshold:
    name: str
    limit: float
    measured: float | None
    ok: bool
    comparison: str = "<="

    def describe(self) -> str:
        if self.measured is None:
            return f"{self.name}: not measured (no requests), limit {self.comparison} {_fmt(self.limit)}"
        verdict = "holds" if self.ok else "broken"
        return f"{self.name}: {_fmt(self.measured)} (limit {self.comparison} {_fmt(self.limit)}) {verdict}"


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return f"{int(value)}"
    return f"{value:.6g}"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def tally_figures(tally: Tally) -> dict[str, Any]:
    requests = tally.requests
    latency = tally.latency
    return {
        "requests": requests,
        "errors_5xx": tally.errors_5xx,
        "errors_transport": tally.kinds.get("transport", 0),
        "errors_4xx": tally.kinds.get("client", 0),
        "shed_429": tally.kinds.get("shed", 0),
        "business_answers": tally.kinds.get("business", 0),
        "error_ratio_5xx": (tally.errors_5xx / requests) if requests else 0.0,
        "p50_ms": _ms(latency.percentile(0.50)),
        "p95_ms": _ms(latency.percentile(0.95)),
        "p99_ms": _ms(latency.percentile(0.99)),
        "max_ms": _ms(latency.max_ms) if requests else None,
        # Every threshold, zeros included: a missing key would make readers fall back to estimates.
        "latency_over_threshold": {repr(k): tally.over.get(k, 0) for k in THRESHOLDS_S},
    }


def journey_figures(recorder: Recorder) -> list[dict[str, Any]]:
    steps: dict[str, list[dict[str, Any]]] = {}
    for (journey, step), tally in sorted(recorder.steps.items()):
        steps.setdefault(journey, []).append({"name": step, **tally_figures(tally)})
    return [
        {"name": name, **tally_figures(tally), "steps": steps.get(name, [])}
        for name, tally in sorted(recorder.journeys().items())
    ]


def starts(recorder: Recorder) -> dict[str, int]:
    scheduled = started = late = dropped = 0
    for second in recorder.seconds.values():
        scheduled += second.scheduled
        started += second.started
        late += second.late
        dropped += second.dropped
    return {"scheduled": scheduled, "started": started, "late": late, "dropped": dropped}


def thresholds(slo: SLO, recorder: Recorder) -> list[Threshold]:
    """One entry per threshold of the profile's `slo`, with what was measured."""
    total = recorder.total()
    journeys = recorder.journeys()
    counts = starts(recorder)
    checks: list[Threshold] = []

    def ratio(numerator: float, denominator: float) -> float | None:
        return numerator / denominator if denominator else None

    def at_most(name: str, limit: float, measured: float | None) -> None:
        checks.append(Threshold(name, limit, measured, measured is not None and measured <= limit))

    at_most("error_ratio_5xx", slo.max_error_ratio_5xx, ratio(total.errors_5xx, total.requests))
    at_most(
        "dropped_starts_ratio",
        slo.max_dropped_starts_ratio,
        ratio(counts["dropped"] + counts["late"], counts["scheduled"]),
    )
    if slo.max_error_ratio_4xx is not None:
        at_most(
            "error_ratio_4xx", slo.max_error_ratio_4xx, ratio(total.kinds.get("client", 0), total.requests)
        )
    for key, quantile, limits in (("p95_ms", 0.95, slo.p95_ms), ("p99_ms", 0.99, slo.p99_ms)):
        for journey, limit in sorted(limits.items()):
            tally = total if journey == "all" else journeys.get(journey)
            measured = tally.latency.percentile(quantile) if tally is not None else None
            at_most(f"{key}.{journey}", limit, None if measured is None else round(measured, 1))
    if slo.min_orders_confirmed is not None:
        confirmed = float(recorder.outcomes.get("order_confirmed", 0))
        checks.append(
            Threshold(
                "orders_confirmed",
                slo.min_orders_confirmed,
                confirmed,
                confirmed >= slo.min_orders_confirmed,
                ">=",
            )
        )
    return checks


def summarise(
    recorder: Recorder,
    slo: SLO,
    *,
    profile: str,
    duration_s: float,
    audit: dict[str, Any],
    require_audit: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole summary; `passed` is true only if every threshold holds and the audit allows it."""
    total = recorder.total()
    counts = starts(recorder)
    checks = thresholds(slo, recorder)
    audit_ok = audit.get("ok")
    audit_passes = audit_ok is True or (audit_ok is None and not require_audit)
    per_second = [recorder.seconds[k] for k in sorted(recorder.seconds)]
    summary: dict[str, Any] = {
        "passed": all(check.ok for check in checks) and audit_passes,
        "profile": profile,
        "duration_s": round(duration_s, 3),
        **{k: v for k, v in tally_figures(total).items() if k != "latency_over_threshold"},
        "scheduled_starts": counts["scheduled"],
        "started": counts["started"],
        "dropped_starts": counts["dropped"],
        "late_starts": counts["late"],
        "dropped_starts_ratio": (counts["dropped"] + counts["late"]) / counts["scheduled"]
        if counts["scheduled"]
        else 0.0,
        "abandoned_journeys": recorder.abandoned,
        "orders_confirmed": recorder.outcomes.get("order_confirmed", 0),
        "outcomes": dict(sorted(recorder.outcomes.items())),
        "peak_concurrent_users": round(max((s.user_seconds for s in per_second), default=0.0), 1),
        "peak_rps": max((s.requests.requests for s in per_second), default=0),
        "audit_ok": audit_ok,
        "audit": audit,
        "journeys": journey_figures(recorder),
        "thresholds": [asdict(check) for check in checks],
    }
    if extra:
        summary.update(extra)
    return summary


def broken(summary: dict[str, Any], require_audit: bool) -> list[str]:
    """One line per reason the gate fails."""
    lines = [
        Threshold(**{k: v for k, v in check.items()}).describe()
        for check in summary.get("thresholds", [])
        if not check["ok"]
    ]
    audit = summary.get("audit", {})
    if audit.get("ok") is False:
        violations = audit.get("violations") or []
        detail = "; ".join(str(v) for v in violations[:5]) or audit.get("note", "")
        lines.append(f"audit: {len(violations)} invariant violation(s){': ' + detail if detail else ''}")
    elif audit.get("ok") is None and require_audit:
        lines.append(
            f"audit: not audited ({audit.get('note', 'no audit was run')}) and --require-audit is set"
        )
    return lines
