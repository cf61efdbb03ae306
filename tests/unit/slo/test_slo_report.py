import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from peakshop.slo.report import from_prometheus, from_rehearsal
from peakshop.slo.spec import load_specs

EXAMPLES = Path(__file__).parent / "examples"


def test_a_rehearsal_spends_budget_in_proportion_to_its_duration(tmp_path):
    summary = {
        "requests": 10000,
        "errors_5xx": 5,
        "error_ratio_5xx": 0.0005,
        "p99_ms": 200,
        "duration_s": 86400,
        "journeys": [
            {
                "name": "search",
                "requests": 10000,
                "errors_5xx": 5,
                "p50_ms": 50,
                "p95_ms": 120,
                "p99_ms": 280,
                "latency_over_threshold": 200,
            }
        ],
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (status,) = from_rehearsal(load_specs([EXAMPLES / "latency.yaml"]), tmp_path)
    # 2% slow against a 1% budget is a burn of 2; one day of a 28-day period spends 2/28 of it.
    assert status.burn_rates == {"rehearsal": pytest.approx(2.0)}
    assert status.budget_remaining == pytest.approx(1 - 2 / 28)


def test_without_counts_a_latency_slo_reports_a_percentile_bound(tmp_path):
    summary = {
        "duration_s": 600,
        "journeys": [
            {"name": "search", "requests": 100, "errors_5xx": 0, "p50_ms": 50, "p95_ms": 120, "p99_ms": 290}
        ],
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (status,) = from_rehearsal(load_specs([EXAMPLES / "latency.yaml"]), tmp_path)
    assert status.burn_rates == {"rehearsal": pytest.approx(1.0)}
    assert "upper bound from p99_ms" in status.note


class _Prometheus(BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)["query"][0]
        value = "0.75" if query == "slo:period_error_budget_remaining:ratio" else "0.02"
        body = {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": {"sloth_id": "shop-search-latency"}, "value": [0, value]}],
            },
        }
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_a_prometheus_report_reads_the_recording_rules():
    server = HTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (status,) = from_prometheus(
            load_specs([EXAMPLES / "latency.yaml"]), f"http://127.0.0.1:{server.server_port}"
        )
    finally:
        server.shutdown()
    assert status.budget_remaining == 0.75
    assert status.burn_rates["1h"] == pytest.approx(2.0)
