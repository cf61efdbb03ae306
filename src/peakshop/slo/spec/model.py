"""The typed SLO spec: what a validated `prometheus/v1` file becomes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from peakshop.slo.windows import TIER_NAMES, TIERS, format_duration

DEFAULT_PERIOD = 30 * 86400
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")


@dataclass(frozen=True)
class EventsSLI:
    """Sloth's events SLI: two queries over `{{.window}}`, bad events and all events."""

    error_query: str
    total_query: str


@dataclass(frozen=True)
class RawSLI:
    """Sloth's raw SLI: a query that already yields the error ratio over `{{.window}}`."""

    error_ratio_query: str


@dataclass(frozen=True)
class LatencySLI:
    """A request is good when it finishes within `threshold_seconds`: bucket{le} over _count."""

    histogram: str
    threshold_seconds: float
    selector: str = ""

    @property
    def le(self) -> str:
        # prometheus-client renders bucket bounds as Go floats ("1.0", "0.3"), and Prometheus 3
        # normalises other exporters' "1" to "1.0" on ingestion, so this form matches both.
        return repr(float(self.threshold_seconds))


SLI = EventsSLI | RawSLI | LatencySLI


@dataclass(frozen=True)
class AlertSeverityGroup:
    """Sloth's `page_alert` / `ticket_alert`: extra labels and annotations, or off altogether."""

    disable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alerting:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    page_alert: AlertSeverityGroup = field(default_factory=AlertSeverityGroup)
    ticket_alert: AlertSeverityGroup = field(default_factory=AlertSeverityGroup)
    tiers: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(TIER_NAMES, True))
    for_: str | None = None
    min_events_per_second: float | None = None

    def enabled_tiers(self) -> list[str]:
        """Tier names that produce an alert, in the fixed tier order."""
        off = {"page": self.page_alert.disable, "ticket": self.ticket_alert.disable}
        return [t.name for t in TIERS if self.tiers.get(t.name, True) and not off[t.severity]]

    def group_for(self, severity: str) -> AlertSeverityGroup:
        return self.page_alert if severity == "page" else self.ticket_alert


@dataclass(frozen=True)
class SLOSpec:
    service: str
    name: str
    objective: float
    sli: SLI
    alerting: Alerting
    period: int = DEFAULT_PERIOD
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    runbook: str | None = None
    rehearsal_journey: str | None = None

    @property
    def id(self) -> str:
        """Sloth's `sloth_id`: service and SLO name joined by a dash."""
        return f"{self.service}-{self.name}"

    @property
    def objective_ratio(self) -> float:
        return round(self.objective / 100, 12)

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective / 100, 12)

    @property
    def period_name(self) -> str:
        return format_duration(self.period)


@dataclass(frozen=True)
class ServiceSpec:
    source: str
    service: str
    labels: dict[str, str]
    slos: tuple[SLOSpec, ...]
    period: int = DEFAULT_PERIOD
