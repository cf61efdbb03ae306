"""Schemathesis generates requests from the storefront's own OpenAPI document.

No generated request may get a 5xx, and every response must match the schema the API publishes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Shop

pytestmark = pytest.mark.e2e
MIN_CASES = 200


def _bearer_token(shop: Shop) -> str:
    # Signed in, the generated requests reach the account endpoints' logic, not only their 401.
    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": "correct horse battery"}
    httpx.post(f"{shop.base_url}/api/accounts", json={**credentials, "name": "Fuzz"}).raise_for_status()
    response = httpx.post(f"{shop.base_url}/api/sessions", json=credentials)
    response.raise_for_status()
    return str(response.json()["token"])


def test_generated_requests_find_no_server_error_and_no_schema_breach(
    local_shop: Shop, tmp_path: Path
) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    token = _bearer_token(local_shop)
    report = tmp_path / "report.json"
    command = [
        st, "run", f"{local_shop.base_url}/schema/openapi.json",
        "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance",
        "--max-examples", "40", "--seed", "20261129", "--workers", "1", "--no-color",
        "--report", "json", "--report-json-path", str(report),
        "--suppress-health-check", "all", "--generation-database", "none",
        "--header", f"Authorization: Bearer {token}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = json.loads(report.read_text())
    assert summary["test_cases"]["with_failures"] == 0 and summary["test_cases"]["errored"] == 0
    generated = summary["test_cases"]["generated"]
    assert generated >= MIN_CASES, f"only {generated} generated cases:\n{output[-3000:]}"
