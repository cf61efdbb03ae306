"""promtool unit tests that prove each SLO's alerts fire, stay quiet and resolve when they should.

Each test feeds synthetic counters through the real rules. The expected alerts are not written by
hand: a small model of the scenario computes every window's error ratio, and a tier is expected to
fire when both of its windows are over the threshold (and the traffic guard passes) at the moment
checked and `for` earlier. A value within 3% of a threshold is never allowed to decide an outcome,
so a test does not depend on how Prometheus rounds or extrapolates.

promtool evaluates every rule in the file at every step of every test, so SLOs whose synthetic
series no other SLO selects share a test group: one group per kind of test, not per SLO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from peakshop.slo.queries import Series, number, selected_by, test_series
from peakshop.slo.rules import alert_annotations, alert_labels, selector, series_labels
from peakshop.slo.spec import ServiceSpec, SLOSpec
from peakshop.slo.windows import TIERS, Tier, format_duration, format_span, parse_duration

EVALUATION_INTERVAL = 300
_MARGIN = 0.03
_HEALTHY_LEAD = 3600


class ScenarioError(Exception):
    """No scenario gives a stable expectation (a value would sit on a threshold)."""


@dataclass(frozen=True)
class Phase:
    seconds: int
    per_second: float
    error_ratio: float


@dataclass(frozen=True)
class Scenario:
    phases: tuple[Phase, ...]

    def counts(self, start: int, end: int) -> tuple[float, float]:
        """Error and total events between two instants, clipped to the data."""
        errors = total = 0.0
        at = 0
        for phase in self.phases:
            overlap = max(0, min(end, at + phase.seconds) - max(start, at))
            total += overlap * phase.per_second
            errors += overlap * phase.per_second * phase.error_ratio
            at += phase.seconds
        return errors, total

    def ratio(self, window: int, at: int) -> float | None:
        # rate() scales errors and total alike when the window reaches past the first sample, so
        # the ratio over the data inside the window is what the rules see.
        errors, total = self.counts(max(0, at - window), at)
        return errors / total if total else None

    def rate(self, window: int, at: int) -> float:
        return self.counts(at - window, at)[1] / window


@dataclass(frozen=True)
class _Subject:
    slo: SLOSpec
    service_labels: dict[str, str]
    series: list[Series]

    @property
    def tiers(self) -> list[Tier]:
        return [t for t in TIERS if t.name in self.slo.alerting.enabled_tiers()]


@dataclass
class _Group:
    name: str
    step: int
    series: list[dict[str, str]]
    alerts: list[dict[str, Any]]
    exprs: list[dict[str, Any]]


def tests_document(specs: list[ServiceSpec], rule_file: str) -> tuple[dict[str, Any], list[str]]:
    """The promtool test file for every SLO, and a note for each SLO no test could be derived for."""
    subjects: list[_Subject] = []
    notes: list[str] = []
    for spec in specs:
        for slo in spec.slos:
            series, reason = test_series(slo.sli)
            if reason is not None:
                notes.append(f"{spec.source}: {slo.name}: no promtool tests: {reason}")
            else:
                subjects.append(_Subject(slo, spec.labels, series))
    tests: list[dict[str, Any]] = []
    for number_, batch in enumerate(_batches(subjects), start=1):
        kinds: dict[str, _Group] = {}
        for subject in batch:
            for kind, step, inputs, alerts, exprs in _subject_tests(subject):
                group = kinds.setdefault(kind, _Group(kind, step, [], [], []))
                group.series.extend(inputs)
                group.alerts.extend(alerts)
                group.exprs.extend(exprs)
        for group in kinds.values():
            test: dict[str, Any] = {
                "name": f"batch {number_}: {group.name}",
                "interval": format_duration(group.step),
                "input_series": group.series,
                "alert_rule_test": group.alerts,
            }
            if group.exprs:
                test["promql_expr_test"] = group.exprs
            tests.append(test)
    document = {
        "rule_files": [rule_file],
        "evaluation_interval": format_duration(EVALUATION_INTERVAL),
        "tests": tests,
    }
    return document, notes


def _batches(subjects: list[_Subject]) -> list[list[_Subject]]:
    """Greedy split so that no SLO in a batch selects another's synthetic series."""
    batches: list[list[_Subject]] = []
    for subject in subjects:
        for batch in batches:
            if not any(_cross_talk(subject, other) for other in batch):
                batch.append(subject)
                break
        else:
            batches.append([subject])
    return batches


def _cross_talk(a: _Subject, b: _Subject) -> bool:
    return any(selected_by(b.slo.sli, s) for s in a.series) or any(
        selected_by(a.slo.sli, s) for s in b.series
    )


_Test = tuple[str, int, list[dict[str, str]], list[dict[str, Any]], list[dict[str, Any]]]


def _subject_tests(subject: _Subject) -> list[_Test]:
    tests = [_healthy_test(subject)]
    tests.extend(_tier_test(subject, tier) for tier in subject.tiers)
    if subject.slo.alerting.min_events_per_second is not None and subject.tiers:
        tests.append(_low_traffic_test(subject))
    return tests


def _healthy_test(subject: _Subject) -> _Test:
    # Busy hours with few errors, then quiet hours with more: an average of ratios would say half
    # the budget is gone, the ratio of sums says about a quarter. Both stay under every tier.
    slo = subject.slo
    lowest = min([1.0, *(t.factor(slo.period) for t in subject.tiers)]) * slo.error_budget
    busy = _traffic(slo)
    half = 6 * 3600
    scenario = Scenario((Phase(half, busy, 0.2 * lowest), Phase(half, busy / 10, 0.8 * lowest)))
    end = 2 * half
    checks = sorted({min(t.long, end) for t in subject.tiers} | {end})
    alerts = [_alert_check(subject, scenario, at, expect_none=True) for at in checks]
    errors, total = scenario.counts(0, end)
    remaining = 1 - errors / total / slo.error_budget
    labels = {**series_labels(slo, subject.service_labels), "sloth_window": slo.period_name}
    budget = f"slo:period_error_budget_remaining:ratio{selector(slo)}"
    expr = {
        "expr": f"({budget} > bool {number(remaining - 0.01)}) * ({budget} < bool {number(remaining + 0.01)})",
        "eval_time": format_span(end),
        "exp_samples": [{"labels": _label_text(labels), "value": 1}],
    }
    name = "healthy traffic stays quiet and the period SLI is a ratio of sums"
    return name, 60, _input_series(scenario, 60, subject.series), alerts, [expr]


def _tier_test(subject: _Subject, tier: Tier) -> _Test:
    """Healthy lead-in, a burn just over the tier's factor until it fires, then healthy again."""
    slo = subject.slo
    rate = _traffic(slo)
    step = 300 if tier.long >= 86400 else 60
    lead = min(tier.long // 2, _HEALTHY_LEAD)
    burn = _burn_just_over(slo, tier)
    hold = _hold(slo)
    open_ended = Scenario((Phase(lead, rate, 0.0), Phase(4 * tier.long, rate, burn)))
    for fire in range(lead + EVALUATION_INTERVAL, lead + 3 * tier.long, EVALUATION_INTERVAL):
        try:
            if tier.name not in _firing(subject, open_ended, fire):
                continue
            checked = fire + hold
            scenario = Scenario(
                (
                    Phase(lead, rate, 0.0),
                    Phase(checked - lead, rate, burn),
                    Phase(tier.short + 3600, rate, 0.0),
                )
            )
            resolved = checked + _align(tier.short + step)
            fired_check = _alert_check(subject, scenario, checked)
            resolved_check = _alert_check(subject, scenario, resolved)
        except ScenarioError:
            continue
        if tier.name in _firing(subject, scenario, checked) and tier.name not in _firing(
            subject, scenario, resolved
        ):
            break
    else:
        raise ScenarioError(f"{slo.id}: no stable scenario makes {tier.name} fire and resolve")
    name = f"{tier.name} fires on a burn just over its factor and resolves once it stops"
    return name, step, _input_series(scenario, step, subject.series), [fired_check, resolved_check], []


def _low_traffic_test(subject: _Subject) -> _Test:
    """A burn over every tier's factor, from the start, on traffic under the guard: nothing fires."""
    slo = subject.slo
    minimum = slo.alerting.min_events_per_second or 0.0
    top = max(subject.tiers, key=lambda t: t.factor(slo.period))
    hold = _hold(slo)
    # With the burn from the first sample every window sees it, the longest included, so by the
    # end of the longest short window every tier would fire if it weren't for the guard.
    checks = sorted({_align(t.short) + hold for t in subject.tiers} | {6 * 3600 + hold})
    scenario = Scenario((Phase(checks[-1] + 3600, minimum / 2, _burn_just_over(slo, top)),))
    for tier in subject.tiers:
        if not _burning(slo, scenario, tier, checks[-1], guarded=False):
            raise ScenarioError(f"{slo.id}: the low-traffic burn does not reach {tier.name}")
    alerts = [_alert_check(subject, scenario, at, expect_none=True) for at in checks]
    name = "a burn on traffic under the minimum rate stays quiet"
    return name, 60, _input_series(scenario, 60, subject.series), alerts, []


def _alert_check(subject: _Subject, scenario: Scenario, at: int, expect_none: bool = False) -> dict[str, Any]:
    slo = subject.slo
    firing = _firing(subject, scenario, at)
    if expect_none and firing:
        raise ScenarioError(f"{slo.id}: {', '.join(firing)} would fire in a scenario meant to stay quiet")
    base = series_labels(slo, subject.service_labels)
    expected = [
        {"exp_labels": {**base, **alert_labels(slo, tier)}, "exp_annotations": alert_annotations(slo, tier)}
        for tier in subject.tiers
        if tier.name in firing
    ]
    return {"eval_time": format_span(at), "alertname": slo.alerting.name, "exp_alerts": expected}


def _firing(subject: _Subject, scenario: Scenario, at: int) -> list[str]:
    """Tiers whose condition holds at `at` and `for` earlier (ratios move one way within a phase)."""
    slo, hold = subject.slo, _hold(subject.slo)
    return [
        t.name
        for t in subject.tiers
        if _burning(slo, scenario, t, at) and _burning(slo, scenario, t, at - hold)
    ]


def _burning(slo: SLOSpec, scenario: Scenario, tier: Tier, at: int, guarded: bool = True) -> bool:
    """Whether the tier's condition holds; a value near its threshold only matters if it decides."""
    threshold = tier.factor(slo.period) * slo.error_budget
    checks: list[tuple[float, float, str]] = []
    for window in (tier.long, tier.short):
        ratio = scenario.ratio(window, at)
        if ratio is None:
            return False
        checks.append((ratio, threshold, f"{format_duration(window)} error ratio"))
    minimum = slo.alerting.min_events_per_second
    if guarded and minimum is not None:
        checks.append((scenario.rate(tier.short, at), minimum, "request rate"))
    if any(value < limit * (1 - _MARGIN) for value, limit, _ in checks):
        return False
    for value, limit, what in checks:
        if value <= limit * (1 + _MARGIN):
            raise ScenarioError(
                f"{slo.id}: {tier.name}: the {what} at {format_span(at)} is too close to its threshold"
            )
    return True


def _burn_just_over(slo: SLOSpec, tier: Tier) -> float:
    threshold = tier.factor(slo.period) * slo.error_budget
    return min(1.1 * threshold, (threshold + 1) / 2)


def _traffic(slo: SLOSpec) -> float:
    """Events per second in a test: ten times the guard, so the guard never decides a firing test."""
    return max(1.0, 10 * (slo.alerting.min_events_per_second or 0.0))


def _align(seconds: int) -> int:
    return math.ceil(seconds / EVALUATION_INTERVAL) * EVALUATION_INTERVAL


def _hold(slo: SLOSpec) -> int:
    """`for`, rounded up to whole evaluations: an alert can only turn firing on an evaluation."""
    return _align(parse_duration(slo.alerting.for_)) if slo.alerting.for_ else 0


def _input_series(scenario: Scenario, step: int, series: list[Series]) -> list[dict[str, str]]:
    return [{"series": s.selector, "values": _values(scenario, step, s.role)} for s in series]


def _values(scenario: Scenario, step: int, role: str) -> str:
    """promtool's expanding notation for a counter that grows phase by phase from zero.

    Increments are rounded to multiples of 2**-16 so that promtool's running sums are exact: with
    decimal increments the sum drifts, the next phase can start a hair lower, and rate() reads that
    as a counter reset.
    """
    parts: list[str] = []
    value = 0.0
    for phase in scenario.phases:
        total = _dyadic(phase.per_second * step)
        errors = _dyadic(phase.per_second * step * phase.error_ratio)
        increment = {"errors": errors, "good": total - errors, "total": total}[role]
        samples = phase.seconds // step
        if not parts:
            parts.append(f"0+{_exact(increment)}x{samples}")
        else:
            parts.append(f"{_exact(value + increment)}+{_exact(increment)}x{samples - 1}")
        value += increment * samples
    return " ".join(parts)


def _dyadic(value: float) -> float:
    return round(value * 65536) / 65536


def _exact(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _label_text(labels: dict[str, str]) -> str:
    body = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{{{body}}}"
