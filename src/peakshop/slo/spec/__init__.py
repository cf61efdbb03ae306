"""The SLO spec: the typed model, the YAML reader that validates it, and its problems."""

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
from peakshop.slo.spec.parse import load_specs, parse_spec
from peakshop.slo.spec.reader import Problem, SpecError

__all__ = [
    "DEFAULT_PERIOD",
    "SLI",
    "WINDOW_PLACEHOLDER",
    "AlertSeverityGroup",
    "Alerting",
    "EventsSLI",
    "LatencySLI",
    "Problem",
    "RawSLI",
    "SLOSpec",
    "ServiceSpec",
    "SpecError",
    "load_specs",
    "parse_spec",
]
