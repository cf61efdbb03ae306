"""The rehearsal as CI runs it: a smoke and a compressed Black-Friday surge against a fresh local
shop, each gated on the profile's SLOs and the invariant audit (exit 0 only if all hold)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("profile", "time_scale"),
    [
        ("smoke", "1"),  # 30 s
        ("black-friday", "0.08"),  # 750 s compressed to 60 s, at the profile's full rates
    ],
)
def test_the_rehearsal_gate_passes(profile: str, time_scale: str, tmp_path: Path) -> None:
    out = tmp_path / profile
    command = [
        sys.executable, "-m", "peakshop", "rehearse", "--profile", profile, "--time-scale", time_scale,
        "--out", str(out), "--products", "400", "--seed", "42",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["audit_ok"] is True
    assert summary["error_ratio_5xx"] <= 0.0001
    assert all(t["ok"] for t in summary["thresholds"])
    assert (out / "report.html").exists() and (out / "users_vs_5xx.png").exists()
