import filecmp
from pathlib import Path

import yaml

from peakshop.slo.generate import generate, render
from peakshop.slo.spec import load_specs

EXAMPLES = Path(__file__).parent / "examples"
REPO = Path(__file__).parents[3]
SHOP_SPECS = sorted((REPO / "slo").glob("*.yaml"))


def test_generation_is_byte_identical_run_after_run(tmp_path):
    inputs = [EXAMPLES / "sloth-getting-started.yaml", EXAMPLES / "latency.yaml", *SHOP_SPECS]
    generate(inputs, tmp_path / "a")
    generate(list(reversed(inputs)), tmp_path / "b")
    comparison = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert comparison.diff_files == [] and comparison.left_only == [] and comparison.right_only == []
    assert filecmp.dircmp(tmp_path / "a/dashboards", tmp_path / "b/dashboards").diff_files == []


def test_the_committed_gen_folder_is_not_stale(tmp_path):
    written, _ = generate(SHOP_SPECS, tmp_path)
    for path in written:
        committed = REPO / "slo/_gen" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `peakshop slo generate`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: run `peakshop slo generate`"
        )


def _rules(spec_path: Path) -> list[dict]:
    files, _ = render(load_specs([spec_path]))
    return [rule for group in yaml.safe_load(files["rules.yaml"])["groups"] for rule in group["rules"]]


def test_the_period_sli_is_a_ratio_of_sums_not_an_average_of_ratios():
    (period,) = [
        r
        for r in _rules(EXAMPLES / "sloth-getting-started.yaml")
        if r.get("record") == "slo:sli_error:ratio_rate30d"
    ]
    assert "sum_over_time(slo:sli_errors:rate5m" in period["expr"]
    assert "sum_over_time(slo:sli_total:rate5m" in period["expr"]
    assert "ratio_rate5m" not in period["expr"]


def test_sloth_names_and_labels_are_recorded():
    rules = _rules(EXAMPLES / "sloth-getting-started.yaml")
    records = {r["record"] for r in rules if "record" in r}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{window}" in records
    assert {
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
    } <= records
    ratio = next(r for r in rules if r.get("record") == "slo:sli_error:ratio_rate1h")
    assert ratio["labels"]["sloth_id"] == "myservice-requests-availability"
    assert ratio["labels"]["sloth_window"] == "1h"


def test_one_alert_per_tier_with_its_labels_and_the_users_overrides():
    alerts = [r for r in _rules(EXAMPLES / "sloth-getting-started.yaml") if "alert" in r]
    assert [a["labels"]["burn_tier"] for a in alerts] == [
        "page_fast",
        "page_slow",
        "ticket_fast",
        "ticket_slow",
    ]
    page_fast = alerts[0]
    assert page_fast["labels"]["long"] == "1h" and page_fast["labels"]["short"] == "5m"
    assert page_fast["labels"]["exhaustion"] == "2d2h"
    assert page_fast["labels"]["severity"] == "pageteam"  # the Sloth file's page_alert label wins
    assert "(14.4 * 0.001)" in page_fast["expr"]
    assert page_fast["annotations"]["summary"] == "High error rate on 'myservice' requests responses"


def test_a_28d_latency_slo_gets_derived_factors_a_guard_for_and_runbook():
    alerts = [r for r in _rules(EXAMPLES / "latency.yaml") if "alert" in r]
    assert [a["labels"]["burn_tier"] for a in alerts] == ["page_fast", "page_slow", "ticket_fast"]
    assert "(13.44 * 0.01)" in alerts[0]["expr"]
    assert "slo:sli_total:rate5m" in alerts[0]["expr"] and ">= 0.5" in alerts[0]["expr"]
    assert alerts[0]["for"] == "2m"
    assert alerts[0]["annotations"]["runbook_url"] == "https://runbooks.example.org/search"
    ratio = next(
        r for r in _rules(EXAMPLES / "latency.yaml") if r.get("record") == "slo:sli_error:ratio_rate5m"
    )
    assert 'le="0.3"' in ratio["expr"] and "http_server_request_duration_seconds_count" in ratio["expr"]


def test_promtool_tests_cover_every_tier_healthy_traffic_and_the_guard():
    files, notes = render(load_specs([EXAMPLES / "latency.yaml"]))
    assert notes == []
    names = [t["name"] for t in yaml.safe_load(files["rules.test.yaml"])["tests"]]
    assert any("healthy" in n for n in names)
    assert any("minimum rate" in n for n in names)
    for tier in ("page_fast", "page_slow", "ticket_fast"):
        assert any(n.startswith(f"batch 1: {tier} fires") for n in names)


def test_dashboards_are_built_for_services_slos_and_business():
    files, _ = render(load_specs(SHOP_SPECS))
    assert {"dashboards/service-overview.json", "dashboards/slos.json", "dashboards/business.json"} <= set(
        files
    )
    business = files["dashboards/business.json"]
    for metric in (
        "peakshop_orders_total",
        "peakshop_checkouts_started_total",
        "peakshop_payments_total",
        "peakshop_reservations_total",
        "peakshop_oversell_total",
    ):
        assert metric in business
