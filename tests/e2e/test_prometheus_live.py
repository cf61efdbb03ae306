"""No dead queries: a real Prometheus scrapes the split topology and evaluates the generated rules.

Every metric that a recording rule, an alert or a dashboard panel names must be exported by the shop,
and every recording rule must evaluate to a value. A rename on either side fails here, not in a
dashboard on the night of the sale.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from peakshop.rehearsal.shop import free_port
from tests.e2e.conftest import Shop
from tests.services import missing

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "slo" / "_gen"

# Words in PromQL that are not metric names.
_PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "avg", "min", "max", "count", "by", "without", "on", "ignoring",
    "group_left", "group_right", "histogram_quantile", "clamp_min", "clamp_max", "vector", "scalar",
    "or", "and", "unless", "bool", "offset", "avg_over_time", "sum_over_time", "max_over_time",
    "min_over_time", "count_over_time", "absent", "label_replace", "time", "abs", "topk", "bottomk",
    "le", "inf", "nan", "e",
}  # fmt: skip
_BUILT_IN = {"ALERTS", "ALERTS_FOR_STATE", "up"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (a careful lexer, not a parser: enough for our rules)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    names: set[str] = set()
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", text):
        word = match.group(1)
        if word.lower() not in _PROMQL_WORDS and not re.fullmatch(r"\d+\w*", word):
            names.add(word)
    return names - _BUILT_IN


def _rules() -> list[dict]:  # type: ignore[type-arg]
    groups = yaml.safe_load((GENERATED / "rules.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _panel_exprs() -> list[str]:
    exprs: list[str] = []
    for path in sorted((GENERATED / "dashboards").glob("*.json")):
        stack: list[object] = [json.loads(path.read_text())]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("expr"), str):
                    exprs.append(node["expr"])
                if isinstance(node.get("query"), str) and "label_values(" in node["query"]:
                    exprs.append(node["query"].split("(", 1)[1].split(",", 1)[0])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return exprs


def test_the_name_lexer_finds_what_a_query_reads() -> None:
    expr = 'sum by (service) (rate(http_server_request_duration_seconds_count{service=~"a|b"}[5m])) / 0.5'
    assert metric_names(expr) == {"http_server_request_duration_seconds_count"}
    assert metric_names('slo:sli_error:ratio_rate5m{sloth_id="x"} > (14.4 * 0.001)') == {
        "slo:sli_error:ratio_rate5m"
    }


@pytest.fixture
def prometheus(split_shop: Shop, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        missing("the prometheus binary is not installed (Debian package prometheus)")
    topology = tomllib.loads(Path(split_shop.topology).read_text())
    shop_port = split_shop.base_url.rsplit(":", 1)[1]
    targets = [
        f"127.0.0.1:{shop_port if 'storefront' in spec['services'] else spec['port']}"
        for spec in topology["processes"].values()
    ]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(GENERATED / "rules.yaml")],
        "scrape_configs": [{"job_name": "peakshop", "static_configs": [{"targets": targets}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # polling a starting server, bounded by the deadline
        else:
            raise AssertionError((tmp_path / "prometheus.log").read_text()[-3000:])
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _shop_traffic(base: str) -> None:
    """A little of every request class the SLOs watch."""
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/api/products", params={"limit": 5}).json()
        product = client.get(f"/api/products/{page['items'][0]['id']}").json()
        client.get("/api/categories")
        client.get("/api/search", params={"q": product["name"].split()[0]})
        email = f"prom-{uuid.uuid4().hex[:8]}@example.com"
        client.post("/api/accounts", json={"email": email, "password": "correct horse", "name": "P"})
        token = client.post("/api/sessions", json={"email": email, "password": "correct horse"}).json()[
            "token"
        ]
        auth = {"authorization": f"Bearer {token}"}
        in_stock = next(s for s in product["skus"])
        cart = client.post("/api/cart/items", json={"sku_id": in_stock["id"], "quantity": 1}, headers=auth)
        client.get("/api/cart", headers=auth)
        address = {
            "name": "P",
            "line1": "1 Main St",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
        }
        body = {"cart_id": cart.json()["id"], "shipping_address": address, "payment_token": "tok_visa"}
        client.post("/api/checkout", json=body, headers={**auth, "idempotency-key": uuid.uuid4().hex})
        client.get("/api/orders", headers=auth)


def _query(url: str, expr: str) -> list[dict]:  # type: ignore[type-arg]
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert response["status"] == "success", (expr, response)
    return response["data"]["result"]  # type: ignore[no-any-return]


def test_every_metric_a_rule_or_panel_reads_is_exported_and_every_rule_evaluates(
    split_shop: Shop, prometheus: str
) -> None:
    _shop_traffic(split_shop.base_url)
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    deadline = time.monotonic() + 90
    missing_values: list[str] = sorted(recorded)
    while time.monotonic() < deadline and missing_values:
        # Recording rules need a few scrapes and evaluations; wait for them, bounded.
        time.sleep(2)
        missing_values = [name for name in sorted(recorded) if not _query(prometheus, name)]
    exported = set(httpx.get(f"{prometheus}/api/v1/label/__name__/values").json()["data"])
    read = set()
    for expr in [rule["expr"] for rule in rules] + _panel_exprs():
        read |= metric_names(expr)
    dead = sorted(name for name in read - recorded if name not in exported)
    assert not dead, f"rules or panels read metrics the shop does not export: {dead}"
    assert not missing_values, f"recording rules without a value: {missing_values}"
