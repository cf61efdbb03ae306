"""Schemathesis generates requests from the storefront's own OpenAPI document.

No generated request may get a 5xx, and every response must match the schema the API publishes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Shop

pytestmark = pytest.mark.e2e
MIN_CASES = 200


def test_generated_requests_find_no_server_error_and_no_schema_breach(
    local_shop: Shop, tmp_path: Path
) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    report = tmp_path / "report.json"
    command = [
        st, "run", f"{local_shop.base_url}/schema/openapi.json",
        "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance",
        "--max-examples", "40", "--seed", "20261129", "--workers", "1", "--no-color",
        "--report", "json", "--report-json-path", str(report),
        "--suppress-health-check", "all", "--generation-database", "none",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = json.loads(report.read_text())
    cases = _count_cases(summary)
    assert cases >= MIN_CASES, f"only {cases} generated cases:\n{output[-3000:]}"


def _count_cases(summary: dict) -> int:  # type: ignore[type-arg]
    # The run report counts test cases per operation; add them up wherever the version puts them.
    total = 0
    stack: list[object] = [summary]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"total_cases", "cases_total", "test_cases"} and isinstance(value, int):
                    total += value
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return total
