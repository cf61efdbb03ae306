"""`peakshop rehearse` against a shop it starts itself: a compressed smoke passes and reports, and a
failing payment provider fails the gate with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def rehearse(out: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "peakshop", "rehearse", "--out", str(out), "--products", "200", *args]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def test_a_compressed_smoke_rehearsal_passes_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    done = rehearse(out, "--profile", "smoke", "--time-scale", "0.33", "--seed", "7")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "PASSED" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["audit_ok"] is True
    assert summary["errors_5xx"] == 0 and summary["orders_confirmed"] >= 1
    assert {j["name"] for j in summary["journeys"]} >= {"browse", "search", "product_page"}
    for name in ("report.html", "users_vs_5xx.png", "throughput.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_a_failing_payment_provider_fails_the_gate_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "failing"
    done = rehearse(out, "--profile", "smoke", "--time-scale", "0.33", "--payments-error-rate", "1")
    assert done.returncode == 1, done.stderr[-4000:]
    assert "FAILED" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["passed"]
    assert summary["orders_confirmed"] == 0
    broken = [t["name"] for t in summary["thresholds"] if not t["ok"]]
    assert "orders_confirmed" in broken
    # Each broken threshold is printed on its own line with what was measured.
    for name in broken:
        assert any(line.strip().startswith(f"{name}: ") for line in done.stderr.splitlines()), done.stderr[
            -3000:
        ]


def test_a_bad_profile_is_a_usage_error_naming_the_field(tmp_path: Path) -> None:
    profile = tmp_path / "mine.yaml"
    profile.write_text(
        "stages: [{duration_s: 5, arrival_rate: 1}]\njourneys: {brwose: 1}\nslo: {max_error_ratio_5xx: 0}\n"
    )
    done = rehearse(tmp_path / "out", "--profile", str(profile), timeout=60)
    assert done.returncode == 2
    assert "journeys.brwose" in done.stderr and "unknown field" in done.stderr
