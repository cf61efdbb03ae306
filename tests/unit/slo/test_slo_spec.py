from pathlib import Path

import pytest

from peakshop.slo.generate import generate
from peakshop.slo.spec import EventsSLI, LatencySLI, SpecError, load_specs

EXAMPLES = Path(__file__).parent / "examples"
SLOTH_SPEC = (EXAMPLES / "sloth-getting-started.yaml").read_text(encoding="utf-8")
LATENCY_SPEC = (EXAMPLES / "latency.yaml").read_text(encoding="utf-8")


def test_a_sloth_file_is_accepted_unchanged(write_spec):
    (spec,) = load_specs([write_spec(SLOTH_SPEC)])
    (slo,) = spec.slos
    assert spec.service == "myservice"
    assert spec.labels == {"owner": "myteam", "repo": "myorg/myservice", "tier": "2"}
    assert slo.objective == 99.9
    assert isinstance(slo.sli, EventsSLI)
    assert slo.alerting.page_alert.labels == {"severity": "pageteam", "routing_key": "myteam"}
    assert slo.alerting.enabled_tiers() == ["page_fast", "page_slow", "ticket_fast", "ticket_slow"]
    assert slo.period == 30 * 86400


def test_the_extensions_are_read(write_spec):
    (spec,) = load_specs([write_spec(LATENCY_SPEC)])
    (slo,) = spec.slos
    assert slo.sli == LatencySLI(
        "http_server_request_duration_seconds", 0.3, 'service="storefront",http_route="/api/search"'
    )
    assert slo.period == 28 * 86400
    assert slo.alerting.for_ == "2m"
    assert slo.alerting.min_events_per_second == 0.5
    assert slo.alerting.enabled_tiers() == ["page_fast", "page_slow", "ticket_fast"]
    assert slo.runbook == "https://runbooks.example.org/search"
    assert slo.rehearsal_journey == "search"


BAD_INPUTS = {
    "objective of 100": (
        SLOTH_SPEC.replace("objective: 99.9", "objective: 100"),
        "slos[0].objective",
        "strictly between 0 and 100",
    ),
    "objective of 0": (
        SLOTH_SPEC.replace("objective: 99.9", "objective: 0"),
        "slos[0].objective",
        "strictly between 0 and 100",
    ),
    "a window the period cannot hold": (
        LATENCY_SPEC.replace("period: 28d", "period: 2d").replace("ticket_slow: false", "ticket_slow: true"),
        "slos[0].alerting.tiers.ticket_slow",
        "does not fit in the 2d period",
    ),
    "a query without the window placeholder": (
        SLOTH_SPEC.replace('code=~"(5..|429)"}[{{.window}}]', 'code=~"(5..|429)"}[5m]'),
        "slos[0].sli.events.error_query",
        "{{.window}}",
    ),
    "an unknown field": (
        SLOTH_SPEC.replace("    objective: 99.9", "    objective: 99.9\n    objectve: 99"),
        "slos[0].objectve",
        "unknown field",
    ),
    "a duplicate SLO name": (
        LATENCY_SPEC + LATENCY_SPEC.split("slos:\n", 1)[1].replace("SearchLatencyBurn", "Other"),
        "slos[1].name",
        "duplicate SLO name 'search-latency'",
    ),
    "a threshold that is not a bucket": (
        LATENCY_SPEC.replace("threshold_seconds: 0.3", "threshold_seconds: 0.4"),
        "slos[0].sli.latency.threshold_seconds",
        "not a bucket boundary",
    ),
    "a tier that can never fire": (
        SLOTH_SPEC.replace("objective: 99.9", "objective: 90"),
        "slos[0].alerting.tiers.page_fast",
        "can never fire",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_a_bad_spec_is_refused_with_file_field_and_reason_and_nothing_is_written(case, write_spec, tmp_path):
    text, field, reason = BAD_INPUTS[case]
    good = write_spec(SLOTH_SPEC.replace("myservice", "other").replace("MyService", "Other"), "good.yaml")
    bad = write_spec(text, "bad.yaml")
    out = tmp_path / "out"
    with pytest.raises(SpecError) as caught:
        generate([good, bad], out)
    matching = [p for p in caught.value.problems if p.path == field]
    assert matching, caught.value.problems
    assert matching[0].file == str(bad)
    assert reason in matching[0].message
    assert f"{bad}: {field}: " in str(caught.value)
    assert not out.exists()


def test_the_same_slo_in_two_files_is_refused(write_spec):
    first = write_spec(SLOTH_SPEC, "a.yaml")
    second = write_spec(SLOTH_SPEC.replace("MyServiceHighErrorRate", "Another"), "b.yaml")
    with pytest.raises(SpecError) as caught:
        load_specs([first, second])
    (problem,) = caught.value.problems
    assert problem.file == str(second)
    assert problem.path == "slos[0].name"
    assert "also defined in" in problem.message


def test_every_problem_in_a_file_is_reported_at_once(write_spec):
    text = SLOTH_SPEC.replace("objective: 99.9", "objective: 100").replace("version:", "versoin:")
    with pytest.raises(SpecError) as caught:
        load_specs([write_spec(text)])
    paths = {p.path for p in caught.value.problems}
    assert {"versoin", "version", "slos[0].objective"} <= paths


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path):
    with pytest.raises(SpecError, match="cannot read"):
        load_specs([tmp_path / "nope.yaml"])
