"""promtool checks the generated rules and runs the generated tests that prove each alert."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.services import missing

REPO = Path(__file__).parents[3]
GEN = REPO / "slo" / "_gen"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


def test_the_generated_rules_pass_promtool_lint(promtool):
    result = _run(promtool, "check", "rules", "--lint-fatal", str(GEN / "rules.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_stays_quiet_and_resolves_as_the_generated_tests_expect(promtool):
    result = _run(promtool, "test", "rules", str(GEN / "rules.test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
