"""The report: PNG charts beside a self-contained HTML page that embeds them."""

from __future__ import annotations

import base64
import random
from pathlib import Path

from peakshop.rehearsal import report
from peakshop.rehearsal.profile import SLO, Stage
from peakshop.rehearsal.samples import Recorder
from peakshop.rehearsal.summary import broken, summarise

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _synthetic_run(seconds: int = 60) -> Recorder:
    rng = random.Random(5)
    recorder = Recorder()
    for t in range(seconds):
        rate = 5 if t < 20 else 25
        for i in range(rate):
            at = t + i / rate
            recorder.arrival(at, "started" if rng.random() > 0.01 else "dropped")
            kind = "server" if t > 40 and rng.random() < 0.02 else "ok"
            ms = rng.lognormvariate(3 + (t > 20), 0.5)
            recorder.request(rng.choice(["browse", "checkout"]), "step", at + ms / 1000, ms, kind)
            recorder.journey_span(at, at + ms / 1000)
    return recorder


def test_the_report_writes_the_charts_and_embeds_them_in_one_html_file(tmp_path: Path) -> None:
    recorder = _synthetic_run()
    stages = [Stage("base", 20, 5, 5), Stage("surge", 40, 25, 25)]
    slo = SLO(0.0001, 0.01, {"browse": 50})
    summary = summarise(
        recorder, slo, profile="synthetic", duration_s=60, audit={"ok": True}, require_audit=True
    )
    summary["environment"] = {"topology": "local"}
    pngs = report.charts(recorder, stages, tmp_path, max_error_ratio_5xx=0.0001)
    assert set(pngs) == {"users_vs_5xx.png", "throughput.png", "latency.png"}
    for path in pngs.values():
        assert path.parent == tmp_path
        assert path.read_bytes().startswith(PNG_MAGIC)
        assert path.stat().st_size > 10_000

    page = report.write_html(summary, pngs, tmp_path, broken(summary, True)).read_text()
    assert page.count("src='data:image/png;base64,") == 3
    embedded = base64.b64encode(pngs["users_vs_5xx.png"].read_bytes()).decode()
    assert embedded in page
    assert "Concurrent users vs server error rate (5xx)" in page
    assert "SLO verdict" in page and "error_ratio_5xx" in page and "BROKEN" in page
    assert "Invariant audit: clean" in page
    assert "<td>local</td>" in page
    assert "FAILED" in page  # 2% server errors after t=40 break the 0.01% threshold
    # Self-contained: nothing is fetched from anywhere.
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_a_run_without_requests_still_reports(tmp_path: Path) -> None:
    recorder = Recorder()
    recorder.arrival(0.5, "dropped")
    summary = summarise(
        recorder, SLO(0.0001, 0.01), profile="empty", duration_s=1, audit={"ok": None}, require_audit=False
    )
    pngs = report.charts(recorder, [Stage("s", 1, 1, 1)], tmp_path)
    page = report.write_html(summary, pngs, tmp_path, broken(summary, False)).read_text()
    assert "not audited" in page and not summary["passed"]
