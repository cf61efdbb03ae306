"""The SLO spec: Sloth's `prometheus/v1` YAML, extended with latency SLIs, periods and tier switches.

A Sloth file is accepted unchanged. The extensions are all optional:

- `period` (service or SLO level, default 30d)
- `histogram_buckets` (service level): latency thresholds must be one of them
- `sli.latency: {histogram, threshold_seconds, selector}`
- `alerting.tiers: {page_fast, page_slow, ticket_fast, ticket_slow}` (booleans, all on by default)
- `alerting.for`, `alerting.min_events_per_second`
- `runbook`, `rehearsal_journey` (SLO level)

Every problem is reported with the file, the field path and the reason, and callers write nothing
unless every file is valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from peakshop.slo.spec.model import (
    DEFAULT_PERIOD,
    SLI,
    WINDOW_PLACEHOLDER,
    Alerting,
    AlertSeverityGroup,
    EventsSLI,
    LatencySLI,
    RawSLI,
    ServiceSpec,
    SLOSpec,
)
from peakshop.slo.spec.reader import Problem, Reader, SpecError
from peakshop.slo.windows import TIER_NAMES, TIERS, format_duration, parse_duration

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:]*$")
_METRIC_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"^(?:{_MATCHER}(?:,{_MATCHER})*,?)?\s*$")


def load_specs(paths: Iterable[str | Path]) -> list[ServiceSpec]:
    """Parse and validate every file; raise one SpecError listing every problem in every file."""
    specs: list[ServiceSpec] = []
    problems: list[Problem] = []
    for path in sorted({Path(p) for p in paths}, key=str):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(Problem(str(path), "", f"cannot read the file: {exc.strerror}"))
            continue
        try:
            specs.append(parse_spec(text, str(path)))
        except SpecError as exc:
            problems.extend(exc.problems)
    problems.extend(_cross_file_problems(specs))
    if problems:
        raise SpecError(problems)
    return specs


def parse_spec(text: str, source: str) -> ServiceSpec:
    """Parse one `prometheus/v1` document; `source` names the file in every problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([Problem(source, "", f"not valid YAML: {exc}")]) from exc
    reader = Reader(source)
    spec = _read_service(reader, document)
    if reader.problems or spec is None:
        raise SpecError(reader.problems)
    return spec


def _read_service(r: Reader, doc: object) -> ServiceSpec | None:
    top = r.fields(
        doc,
        "",
        required=("version", "service", "slos"),
        optional=("labels", "period", "histogram_buckets", "slo_plugins"),
    )
    if top is None:
        return None
    if "slo_plugins" in top:
        r.problem("slo_plugins", "Sloth SLO plugins are not supported; express the SLI as a query")
    version = r.string(top.get("version"), "version")
    if version is not None and version != "prometheus/v1":
        r.problem("version", f"must be 'prometheus/v1' (got {version!r})")
    service = r.name(top.get("service"), "service", _NAME)
    labels = r.labels(top.get("labels"), "labels")
    period = _read_period(r, top.get("period"), "period", DEFAULT_PERIOD)
    buckets = _read_buckets(r, top.get("histogram_buckets"))
    raw_slos = top.get("slos")
    if not isinstance(raw_slos, list) or not raw_slos:
        r.problem("slos", "must be a non-empty list of SLOs")
        return None
    slos: list[SLOSpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_slos):
        path = f"slos[{index}]"
        slo = _read_slo(r, raw, path, service or "", period, buckets)
        if slo is None:
            continue
        if slo.name in seen:
            r.problem(f"{path}.name", f"duplicate SLO name {slo.name!r} (also slos[{seen[slo.name]}])")
        seen.setdefault(slo.name, index)
        slos.append(slo)
    if service is None:
        return None
    return ServiceSpec(r.source, service, labels, tuple(slos), period)


def _read_slo(
    r: Reader, raw: object, path: str, service: str, default_period: int, buckets: Sequence[float] | None
) -> SLOSpec | None:
    slo = r.fields(
        raw,
        path,
        required=("name", "objective", "sli"),
        optional=(
            "description",
            "labels",
            "alerting",
            "period",
            "runbook",
            "rehearsal_journey",
            "plugins",
        ),
    )
    if slo is None:
        return None
    if "plugins" in slo:
        r.problem(f"{path}.plugins", "Sloth SLO plugins are not supported; express the SLI as a query")
    name = r.name(slo.get("name"), f"{path}.name", _NAME)
    objective = r.number(slo.get("objective"), f"{path}.objective")
    if objective is not None and not 0 < objective < 100:
        r.problem(f"{path}.objective", f"must be strictly between 0 and 100 (got {objective:g})")
    period = _read_period(r, slo.get("period"), f"{path}.period", default_period)
    sli = _read_sli(r, slo.get("sli"), f"{path}.sli", buckets)
    alerting = _read_alerting(r, slo.get("alerting"), f"{path}.alerting", service, name)
    description = r.string(slo.get("description", ""), f"{path}.description") or ""
    runbook = r.optional_string(slo.get("runbook"), f"{path}.runbook")
    if runbook is not None and not re.match(r"^(https?://\S+|[\w./-]+)$", runbook):
        r.problem(f"{path}.runbook", "must be an http(s) URL or a path inside the repository")
    journey = r.optional_string(slo.get("rehearsal_journey"), f"{path}.rehearsal_journey")
    labels = r.labels(slo.get("labels"), f"{path}.labels")
    if name is None or objective is None or sli is None or alerting is None:
        return None
    _check_alerting_fits(r, alerting, sli, period, objective, path)
    return SLOSpec(
        service=service,
        name=name,
        objective=objective,
        sli=sli,
        alerting=alerting,
        period=period,
        description=description,
        labels=labels,
        runbook=runbook,
        rehearsal_journey=journey,
    )


def _read_sli(r: Reader, raw: object, path: str, buckets: Sequence[float] | None) -> SLI | None:
    sli = r.fields(raw, path, optional=("events", "raw", "latency", "plugin"))
    if sli is None:
        return None
    kinds = [kind for kind in ("events", "raw", "latency", "plugin") if kind in sli]
    if len(kinds) != 1:
        r.problem(path, "needs exactly one of events, raw or latency")
        return None
    kind = kinds[0]
    at = f"{path}.{kind}"
    if kind == "plugin":
        r.problem(at, "Sloth SLI plugins are not supported; use events, raw or latency")
        return None
    if kind == "events":
        body = r.fields(sli[kind], at, required=("error_query", "total_query"))
        if body is None:
            return None
        error = _read_query(r, body.get("error_query"), f"{at}.error_query")
        total = _read_query(r, body.get("total_query"), f"{at}.total_query")
        return EventsSLI(error, total) if error and total else None
    if kind == "raw":
        body = r.fields(sli[kind], at, required=("error_ratio_query",))
        if body is None:
            return None
        ratio = _read_query(r, body.get("error_ratio_query"), f"{at}.error_ratio_query")
        return RawSLI(ratio) if ratio else None
    body = r.fields(sli[kind], at, required=("histogram", "threshold_seconds"), optional=("selector",))
    if body is None:
        return None
    histogram = r.name(body.get("histogram"), f"{at}.histogram", _METRIC_NAME)
    if histogram and histogram.endswith(("_bucket", "_count", "_sum")):
        r.problem(f"{at}.histogram", "give the histogram's base name, without _bucket, _count or _sum")
    threshold = r.number(body.get("threshold_seconds"), f"{at}.threshold_seconds")
    if threshold is not None and threshold <= 0:
        r.problem(f"{at}.threshold_seconds", f"must be above 0 (got {threshold:g})")
    elif threshold is not None and buckets is not None and threshold not in buckets:
        known = ", ".join(f"{b:g}" for b in buckets)
        r.problem(
            f"{at}.threshold_seconds",
            f"{threshold:g} is not a bucket boundary of the histogram; choose one of: {known}",
        )
    selector = r.string(body.get("selector", ""), f"{at}.selector") or ""
    selector = selector.strip().removeprefix("{").removesuffix("}").strip().rstrip(",")
    if not _SELECTOR.match(selector):
        r.problem(f"{at}.selector", 'must be label matchers like service="cart",http_route=~"/api/cart.*"')
    if re.search(r"\ble\s*[=!]", selector):
        r.problem(f"{at}.selector", "must not match on `le`; the threshold sets it")
    if histogram is None or threshold is None:
        return None
    return LatencySLI(histogram, threshold, selector)


def _read_query(r: Reader, raw: object, path: str) -> str | None:
    query = r.string(raw, path)
    if query is not None and not WINDOW_PLACEHOLDER.search(query):
        r.problem(path, "must contain the {{.window}} placeholder, e.g. rate(x[{{.window}}])")
        return None
    return query


def _read_alerting(r: Reader, raw: object, path: str, service: str, slo: str | None) -> Alerting | None:
    if raw is None:
        # Sloth requires a name; a default keeps a minimal spec short and still unique per SLO.
        raw = {"name": _default_alert_name(service, slo or "")}
    body = r.fields(
        raw,
        path,
        required=("name",),
        optional=(
            "labels",
            "annotations",
            "page_alert",
            "ticket_alert",
            "tiers",
            "for",
            "min_events_per_second",
        ),
    )
    if body is None:
        return None
    name = r.name(body.get("name"), f"{path}.name", _ALERT_NAME)
    groups = {
        key: _read_severity_group(r, body.get(key), f"{path}.{key}") for key in ("page_alert", "ticket_alert")
    }
    tiers = dict.fromkeys(TIER_NAMES, True)
    raw_tiers = r.fields(body.get("tiers", {}), f"{path}.tiers", optional=TIER_NAMES)
    for tier, value in (raw_tiers or {}).items():
        if isinstance(value, bool):
            tiers[tier] = value
        else:
            r.problem(f"{path}.tiers.{tier}", f"must be true or false (got {value!r})")
    for_ = r.optional_string(body.get("for"), f"{path}.for")
    if for_ is not None:
        try:
            parse_duration(for_)
        except ValueError as exc:
            r.problem(f"{path}.for", str(exc))
    min_eps = None
    if body.get("min_events_per_second") is not None:
        min_eps = r.number(body["min_events_per_second"], f"{path}.min_events_per_second")
        if min_eps is not None and min_eps <= 0:
            r.problem(f"{path}.min_events_per_second", f"must be above 0 (got {min_eps:g})")
    if name is None:
        return None
    return Alerting(
        name=name,
        labels=r.labels(body.get("labels"), f"{path}.labels"),
        annotations=r.string_map(body.get("annotations"), f"{path}.annotations"),
        page_alert=groups["page_alert"],
        ticket_alert=groups["ticket_alert"],
        tiers=tiers,
        for_=for_,
        min_events_per_second=min_eps,
    )


def _read_severity_group(r: Reader, raw: object, path: str) -> AlertSeverityGroup:
    body = r.fields(raw if raw is not None else {}, path, optional=("disable", "labels", "annotations"))
    if body is None:
        return AlertSeverityGroup()
    disable = body.get("disable", False)
    if not isinstance(disable, bool):
        r.problem(f"{path}.disable", f"must be true or false (got {disable!r})")
        disable = False
    return AlertSeverityGroup(
        disable=disable,
        labels=r.labels(body.get("labels"), f"{path}.labels"),
        annotations=r.string_map(body.get("annotations"), f"{path}.annotations"),
    )


def _check_alerting_fits(
    r: Reader, alerting: Alerting, sli: SLI, period: int, objective: float, path: str
) -> None:
    budget = 1 - objective / 100
    for tier in TIERS:
        if tier.name not in alerting.enabled_tiers():
            continue
        if tier.long > period:
            r.problem(
                f"{path}.alerting.tiers.{tier.name}",
                f"its {tier.long_name} window does not fit in the {format_duration(period)} period; "
                "turn the tier off or lengthen the period",
            )
        elif tier.factor(period) * budget >= 1:
            r.problem(
                f"{path}.alerting.tiers.{tier.name}",
                f"can never fire: a {tier.factor(period):g}x burn of a {budget:.4g} budget needs an error "
                "ratio above 1; turn the tier off or raise the objective",
            )
    if alerting.min_events_per_second is not None and isinstance(sli, RawSLI):
        r.problem(
            f"{path}.alerting.min_events_per_second",
            "needs an events or latency SLI: a raw error ratio carries no request rate",
        )


def _read_period(r: Reader, raw: object, path: str, default: int) -> int:
    if raw is None:
        return default
    text = r.string(raw, path)
    if text is None:
        return default
    try:
        period = parse_duration(text)
    except ValueError as exc:
        r.problem(path, str(exc))
        return default
    if period < 86400:
        r.problem(path, f"must be at least 1d (got {text})")
        return default
    return period


def _read_buckets(r: Reader, raw: object) -> list[float] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
        isinstance(b, int | float) and not isinstance(b, bool) for b in raw
    ):
        r.problem("histogram_buckets", "must be a list of numbers (bucket upper bounds in seconds)")
        return None
    return [float(b) for b in raw]


def _default_alert_name(service: str, slo: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", f"{service} {slo}")
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "BudgetBurn"


def _cross_file_problems(specs: Sequence[ServiceSpec]) -> list[Problem]:
    """The same SLO (service and name) or the same alert name in two places is refused."""
    problems: list[Problem] = []
    ids: dict[str, str] = {}
    alerts: dict[str, str] = {}
    for spec in specs:
        for index, slo in enumerate(spec.slos):
            where = f"{spec.source}:slos[{index}]"
            if slo.id in ids and not ids[slo.id].startswith(f"{spec.source}:"):
                problems.append(
                    Problem(
                        spec.source, f"slos[{index}].name", f"SLO {slo.id!r} is also defined in {ids[slo.id]}"
                    )
                )
            ids.setdefault(slo.id, where)
            # promtool's expected alerts are per alert name, so two SLOs must not share one.
            name = slo.alerting.name
            if name in alerts and alerts[name] != where:
                problems.append(
                    Problem(
                        spec.source,
                        f"slos[{index}].alerting.name",
                        f"alert name {name!r} is already used by {alerts[name]}",
                    )
                )
            alerts.setdefault(name, where)
    return problems
