"""Prometheus recording and alerting rules for each SLO, under Sloth's metric and label names."""

from __future__ import annotations

from typing import Any

from peakshop.slo.queries import error_query, error_ratio_query, number, total_query
from peakshop.slo.spec import RawSLI, ServiceSpec, SLOSpec
from peakshop.slo.windows import ALERT_WINDOWS, TIERS, Tier, format_duration

Rule = dict[str, Any]


def rules_document(specs: list[ServiceSpec]) -> dict[str, Any]:
    """Every SLO's rule groups, in file order then SLO order, for one rules file."""
    groups: list[dict[str, Any]] = []
    for spec in specs:
        for slo in spec.slos:
            groups.extend(slo_rule_groups(slo, spec.labels))
    return {"groups": groups}


def slo_rule_groups(slo: SLOSpec, service_labels: dict[str, str]) -> list[dict[str, Any]]:
    groups = [
        {"name": f"slo-sli-recordings-{slo.id}", "rules": _sli_rules(slo, service_labels)},
        {"name": f"slo-meta-recordings-{slo.id}", "rules": _meta_rules(slo, service_labels)},
    ]
    alerts = [
        _alert_rule(slo, service_labels, tier) for tier in TIERS if tier.name in slo.alerting.enabled_tiers()
    ]
    if alerts:
        groups.append({"name": f"slo-alerts-{slo.id}", "rules": alerts})
    return groups


def series_labels(slo: SLOSpec, service_labels: dict[str, str]) -> dict[str, str]:
    """Labels every recorded series of the SLO carries, apart from `sloth_window`."""
    return {
        **service_labels,
        **slo.labels,
        "sloth_id": slo.id,
        "sloth_service": slo.service,
        "sloth_slo": slo.name,
    }


def selector(slo: SLOSpec) -> str:
    return f'{{sloth_id="{slo.id}", sloth_service="{slo.service}", sloth_slo="{slo.name}"}}'


def guard_windows(slo: SLOSpec) -> list[int]:
    """Short windows whose request rate gates the alerts, when a minimum rate is set."""
    if slo.alerting.min_events_per_second is None:
        return []
    return sorted({t.short for t in TIERS if t.name in slo.alerting.enabled_tiers()})


def _sli_rules(slo: SLOSpec, service_labels: dict[str, str]) -> list[Rule]:
    labels = series_labels(slo, service_labels)
    rules: list[Rule] = []
    for window in ALERT_WINDOWS:
        rules.append(
            {
                "record": f"slo:sli_error:ratio_rate{format_duration(window)}",
                "expr": error_ratio_query(slo.sli, window),
                "labels": {**labels, "sloth_window": format_duration(window)},
            }
        )
    period = slo.period_name
    if isinstance(slo.sli, RawSLI):
        # A raw SLI gives ratios only, with no counts to add up, so the period value can only be the
        # time average of the 5m ratios (Sloth's method). It over-weights quiet hours; prefer an
        # events or latency SLI when the counts exist.
        period_expr = f"avg_over_time(slo:sli_error:ratio_rate5m{selector(slo)}[{period}])"
    else:
        for window in sorted({300, *guard_windows(slo)}):
            rules.append(
                {
                    "record": f"slo:sli_total:rate{format_duration(window)}",
                    "expr": total_query(slo.sli, window),
                    "labels": {**labels, "sloth_window": format_duration(window)},
                }
            )
        rules.append(
            {
                "record": "slo:sli_errors:rate5m",
                "expr": error_query(slo.sli, 300),
                "labels": {**labels, "sloth_window": "5m"},
            }
        )
        # The period SLI is a ratio of sums: all bad events over all events in the period. Averaging
        # the 5m ratios instead (Sloth's sum_over_time(ratio_rate5m)/count_over_time) gives a quiet
        # night's minute as much weight as the peak's. Summing the recorded 5m rates counts each
        # event once per evaluation that sees it (5m / interval times), the same for both series,
        # so the factor cancels and the quotient is the true event ratio, at the cost of reading
        # two recorded series instead of a month of raw samples.
        period_expr = (
            f"sum_over_time(slo:sli_errors:rate5m{selector(slo)}[{period}])\n"
            f"/\n"
            f"sum_over_time(slo:sli_total:rate5m{selector(slo)}[{period}])"
        )
    rules.append(
        {
            "record": f"slo:sli_error:ratio_rate{period}",
            "expr": period_expr,
            "labels": {**labels, "sloth_window": period},
        }
    )
    return rules


def _meta_rules(slo: SLOSpec, service_labels: dict[str, str]) -> list[Rule]:
    labels = series_labels(slo, service_labels)
    budget = number(slo.error_budget)
    period = slo.period_name
    return [
        {"record": "slo:objective:ratio", "expr": f"vector({number(slo.objective_ratio)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({budget})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({number(slo.period / 86400)})", "labels": labels},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate5m{selector(slo)} / {budget}",
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{period}{selector(slo)} / {budget}",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{selector(slo)}",
            "labels": labels,
        },
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": {
                **labels,
                "sloth_mode": "peakshop",
                "sloth_objective": number(slo.objective),
                "sloth_period": period,
            },
        },
    ]


def alert_labels(slo: SLOSpec, tier: Tier) -> dict[str, str]:
    """Labels set on a tier's alert rule (the expression adds the SLO's series labels)."""
    group = slo.alerting.group_for(tier.severity)
    return {
        "severity": tier.severity,
        "sloth_severity": tier.severity,
        "burn_tier": tier.name,
        "long": tier.long_name,
        "short": tier.short_name,
        "exhaustion": tier.exhaustion(),
        **slo.alerting.labels,
        **group.labels,
    }


def alert_annotations(slo: SLOSpec, tier: Tier) -> dict[str, str]:
    factor = number(tier.factor(slo.period))
    budget_percent = number(slo.error_budget * 100)
    what = slo.description.rstrip(".") or f"{slo.service} {slo.name}"
    annotations = {
        "summary": f"{slo.service} {slo.name}: error budget burning at over {factor}x "
        f"({tier.long_name} and {tier.short_name} windows)",
        "description": f"{what}. Over both the last {tier.long_name} and {tier.short_name} the error ratio "
        f"is above {factor}x the {budget_percent}% budget of a {number(slo.objective)}% objective over "
        f"{slo.period_name}: {number(tier.budget_fraction * 100)}% of the budget is gone and at this "
        f"rate the rest lasts {tier.exhaustion()}.",
    }
    if slo.runbook:
        annotations["runbook_url"] = slo.runbook
    return {**annotations, **slo.alerting.annotations, **slo.alerting.group_for(tier.severity).annotations}


def _alert_rule(slo: SLOSpec, service_labels: dict[str, str], tier: Tier) -> Rule:
    threshold = f"({number(tier.factor(slo.period))} * {number(slo.error_budget)})"
    sel = selector(slo)
    expr = (
        "(\n"
        f"  max(slo:sli_error:ratio_rate{tier.long_name}{sel} > {threshold}) without (sloth_window)\n"
        "  and\n"
        f"  max(slo:sli_error:ratio_rate{tier.short_name}{sel} > {threshold}) without (sloth_window)\n"
        ")"
    )
    minimum = slo.alerting.min_events_per_second
    if minimum is not None:
        # Below this rate a handful of failures looks like a huge burn (the Workbook's low-traffic
        # case), so the tier stays quiet until the short window carries enough requests.
        expr += (
            "\nand\n"
            f"max(slo:sli_total:rate{tier.short_name}{sel} >= {number(minimum)}) without (sloth_window)"
        )
    rule: Rule = {
        "alert": slo.alerting.name,
        "expr": expr,
        "labels": alert_labels(slo, tier),
        "annotations": alert_annotations(slo, tier),
    }
    if slo.alerting.for_:
        rule["for"] = slo.alerting.for_
    return rule
