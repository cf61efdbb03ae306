from pathlib import Path

import pytest
import yaml

from peakshop.slo.openslo import export_openslo, import_openslo
from peakshop.slo.spec import SpecError, load_specs, parse_spec

EXAMPLES = Path(__file__).parent / "examples"
REPO = Path(__file__).parents[3]


@pytest.mark.parametrize(
    "path", [EXAMPLES / "sloth-getting-started.yaml", EXAMPLES / "latency.yaml", REPO / "slo/storefront.yaml"]
)
def test_an_openslo_round_trip_keeps_objective_period_and_queries(path):
    (original,) = load_specs([path])
    back = parse_spec(import_openslo(export_openslo(original), "exported.yaml"), "imported.yaml")
    assert back.service == original.service
    assert [(s.name, s.objective, s.period, s.sli) for s in back.slos] == [
        (s.name, s.objective, s.period, s.sli) for s in original.slos
    ]


def test_the_export_is_openslo_v1_slo_documents():
    (spec,) = load_specs([EXAMPLES / "sloth-getting-started.yaml"])
    (document,) = yaml.safe_load_all(export_openslo(spec))
    assert document["apiVersion"] == "openslo/v1"
    assert document["kind"] == "SLO"
    assert document["spec"]["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert document["spec"]["objectives"][0]["target"] == 0.999
    assert set(document["spec"]["indicator"]["spec"]["ratioMetric"]) == {"counter", "bad", "total"}


def test_a_good_over_total_ratio_imports_as_events():
    text = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: web-availability}
spec:
  service: web
  budgetingMethod: Occurrences
  timeWindow: [{duration: 4w, isRolling: true}]
  objectives: [{targetPercent: 99.5}]
  indicator:
    metadata: {name: web-sli}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(ok_total[{{.window}}]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(all_total[{{.window}}]))'}}}
"""
    spec = parse_spec(import_openslo(text, "in.yaml"), "out.yaml")
    (slo,) = spec.slos
    assert slo.objective == 99.5
    assert slo.period == 28 * 86400
    assert slo.sli.error_query == "(sum(rate(all_total[{{.window}}]))) - (sum(rate(ok_total[{{.window}}])))"


def test_a_calendar_window_is_refused_with_its_field():
    text = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: a}
spec:
  service: web
  timeWindow: [{duration: 1M, isRolling: true}]
  objectives: [{target: 0.99}]
  indicator: {spec: {raw: {metricSource: {spec: {query: 'x[{{.window}}]'}}}}}
"""
    with pytest.raises(SpecError) as caught:
        import_openslo(text, "in.yaml")
    assert caught.value.problems[0].path == "documents[0].spec.timeWindow[0].duration"
