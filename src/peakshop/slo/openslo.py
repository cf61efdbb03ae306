"""OpenSLO v1 import and export: `kind: SLO` with an inline ratioMetric or raw indicator.

Export writes one SLO document per SLO. Queries keep their `{{.window}}` placeholder so a round
trip gives back the same queries; a latency SLI also travels as `peakshop.dev/*` annotations, so
it comes back as a latency SLI rather than as two opaque queries. Alerting is not carried across
(OpenSLO conditions have one lookback window each); an import gets the default alert name and
all four tiers.
"""

from __future__ import annotations

from typing import Any

import yaml

from peakshop.slo.queries import number
from peakshop.slo.spec import EventsSLI, LatencySLI, Problem, ServiceSpec, SpecError, parse_spec
from peakshop.slo.windows import format_duration, parse_duration

_PREFIX = "peakshop.dev/"


def _prometheus(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def export_openslo(spec: ServiceSpec) -> str:
    """The service's SLOs as a multi-document OpenSLO v1 YAML stream."""
    documents = []
    for slo in spec.slos:
        annotations: dict[str, str] = {f"{_PREFIX}alert-name": slo.alerting.name}
        if isinstance(slo.sli, EventsSLI):
            indicator: dict[str, Any] = {
                "ratioMetric": {
                    "counter": True,
                    "bad": _prometheus(slo.sli.error_query),
                    "total": _prometheus(slo.sli.total_query),
                }
            }
        elif isinstance(slo.sli, LatencySLI):
            window = "{{.window}}"
            matchers = ",".join(m for m in (slo.sli.selector, f'le="{slo.sli.le}"') if m)
            count = (
                f"{slo.sli.histogram}_count{{{slo.sli.selector}}}"
                if slo.sli.selector
                else f"{slo.sli.histogram}_count"
            )
            indicator = {
                "ratioMetric": {
                    "counter": True,
                    "good": _prometheus(f"sum(rate({slo.sli.histogram}_bucket{{{matchers}}}[{window}]))"),
                    "total": _prometheus(f"sum(rate({count}[{window}]))"),
                }
            }
            annotations |= {
                f"{_PREFIX}latency-histogram": slo.sli.histogram,
                f"{_PREFIX}latency-threshold-seconds": number(slo.sli.threshold_seconds),
                f"{_PREFIX}latency-selector": slo.sli.selector,
            }
        else:
            indicator = {"rawType": "failure", "raw": _prometheus(slo.sli.error_ratio_query)}
        metadata: dict[str, Any] = {"name": slo.id[:63], "displayName": slo.name, "annotations": annotations}
        labels = {**spec.labels, **slo.labels}
        if labels:
            metadata["labels"] = labels
        documents.append(
            {
                "apiVersion": "openslo/v1",
                "kind": "SLO",
                "metadata": metadata,
                "spec": {
                    "description": slo.description,
                    "service": slo.service,
                    "indicator": {"metadata": {"name": f"{slo.id}-sli"[:63]}, "spec": indicator},
                    "timeWindow": [{"duration": slo.period_name, "isRolling": True}],
                    "budgetingMethod": "Occurrences",
                    "objectives": [{"displayName": slo.name, "target": round(slo.objective / 100, 10)}],
                },
            }
        )
    return yaml.safe_dump_all(documents, sort_keys=True, width=10_000)


def import_openslo(text: str, source: str) -> str:
    """A `prometheus/v1` spec from OpenSLO v1 SLO documents of one service; SpecError otherwise."""
    problems: list[Problem] = []
    services: set[str] = set()
    slos: list[dict[str, Any]] = []
    for index, document in enumerate(yaml.safe_load_all(text)):
        where = f"documents[{index}]"
        if not isinstance(document, dict) or document.get("kind") != "SLO":
            continue
        if document.get("apiVersion") != "openslo/v1":
            problems.append(Problem(source, f"{where}.apiVersion", "must be openslo/v1"))
            continue
        try:
            service, slo = _import_slo(document, where, source)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        services.add(service)
        slos.append(slo)
    if not slos and not problems:
        problems.append(Problem(source, "", "no `kind: SLO` documents found"))
    if len(services) > 1:
        problems.append(
            Problem(source, "", f"SLOs of several services ({', '.join(sorted(services))}); split the file")
        )
    if problems:
        raise SpecError(problems)
    periods = [slo.pop("period") for slo in slos]
    spec: dict[str, Any] = {"version": "prometheus/v1", "service": services.pop()}
    if len(set(periods)) == 1:
        spec["period"] = periods[0]
    else:
        for slo, period in zip(slos, periods, strict=True):
            slo["period"] = period
    spec["slos"] = slos
    out = yaml.safe_dump(spec, sort_keys=False, width=10_000)
    parse_spec(out, source)  # refuse to hand back a spec our own validator rejects
    return out


def _import_slo(document: dict[str, Any], where: str, source: str) -> tuple[str, dict[str, Any]]:
    def fail(path: str, message: str) -> SpecError:
        return SpecError([Problem(source, f"{where}.{path}", message)])

    metadata = document.get("metadata") or {}
    spec = document.get("spec") or {}
    annotations = metadata.get("annotations") or {}
    service = spec.get("service")
    if not isinstance(service, str) or not service:
        raise fail("spec.service", "is required")
    objectives = spec.get("objectives") or []
    if len(objectives) != 1:
        raise fail("spec.objectives", "exactly one objective is supported")
    objective = objectives[0]
    if "target" in objective:
        percent = float(objective["target"]) * 100
    elif "targetPercent" in objective:
        percent = float(objective["targetPercent"])
    else:
        raise fail("spec.objectives[0]", "needs target or targetPercent")
    windows = spec.get("timeWindow") or []
    if len(windows) != 1 or not windows[0].get("isRolling", False):
        raise fail("spec.timeWindow", "needs exactly one rolling window")
    try:
        period = format_duration(parse_duration(str(windows[0].get("duration", ""))))
    except ValueError as exc:
        raise fail(
            "spec.timeWindow[0].duration", f"{exc} (calendar units M, Q, Y are not supported)"
        ) from exc
    indicator = ((spec.get("indicator") or {}).get("spec")) or {}
    name = metadata.get("displayName") or metadata.get("name")
    slo: dict[str, Any] = {"name": name, "objective": round(percent, 10)}
    if spec.get("description"):
        slo["description"] = spec["description"]
    slo["period"] = period
    slo["sli"] = _import_sli(indicator, annotations, fail)
    slo["alerting"] = {
        "name": annotations.get(f"{_PREFIX}alert-name") or _camel(f"{service} {name}") + "BudgetBurn"
    }
    labels = metadata.get("labels") or {}
    if labels:
        slo["labels"] = {k: v if isinstance(v, str) else ",".join(v) for k, v in labels.items()}
    return service, slo


def _import_sli(indicator: dict[str, Any], annotations: dict[str, str], fail: Any) -> dict[str, Any]:
    histogram = annotations.get(f"{_PREFIX}latency-histogram")
    if histogram:
        latency: dict[str, Any] = {
            "histogram": histogram,
            "threshold_seconds": float(annotations.get(f"{_PREFIX}latency-threshold-seconds", "0")),
        }
        if annotations.get(f"{_PREFIX}latency-selector"):
            latency["selector"] = annotations[f"{_PREFIX}latency-selector"]
        return {"latency": latency}
    if "ratioMetric" in indicator:
        ratio = indicator["ratioMetric"]
        total = _query(ratio.get("total"))
        if total is None:
            raise fail("spec.indicator.spec.ratioMetric.total", "needs a Prometheus query")
        if ratio.get("bad") is not None:
            bad = _query(ratio["bad"])
            if bad is None:
                raise fail("spec.indicator.spec.ratioMetric.bad", "needs a Prometheus query")
            return {"events": {"error_query": bad, "total_query": total}}
        good = _query(ratio.get("good"))
        if good is None:
            raise fail("spec.indicator.spec.ratioMetric", "needs good or bad with a Prometheus query")
        return {"events": {"error_query": f"({total}) - ({good})", "total_query": total}}
    if "raw" in indicator:
        query = _query(indicator["raw"])
        if query is None:
            raise fail("spec.indicator.spec.raw", "needs a Prometheus query")
        if indicator.get("rawType", "failure") == "success":
            query = f"1 - ({query})"
        return {"raw": {"error_ratio_query": query}}
    raise fail(
        "spec.indicator", "needs an inline ratioMetric or raw indicator (thresholdMetric is not supported)"
    )


def _query(source: Any) -> str | None:
    try:
        query = source["metricSource"]["spec"]["query"]
    except (KeyError, TypeError):
        return None
    return query if isinstance(query, str) else None


def _camel(text: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in text.replace("-", " ").replace("_", " ").split())
