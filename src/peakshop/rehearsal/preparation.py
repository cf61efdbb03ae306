"""Before the load: learn the catalog, create and sign in the buyers, and pick the flash-sale SKU.

Plain blocking HTTP (this runs once, before the generator starts). Log-in is rate limited per
client address, so buyers are signed in once here and their tokens reused by every journey; a 429
is waited out as its `Retry-After` says, within the overall deadline.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from peakshop.rehearsal.plan import CatalogSample


class PreparationError(Exception):
    """The shop could not be prepared for the rehearsal."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class ShopClient:
    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw, response_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, response_headers = error.code, error.read(), error.headers
        except (OSError, ValueError) as exc:
            raise PreparationError(f"{method} {self.base_url}{path} failed: {exc}") from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return Reply(status, {k.lower(): v for k, v in response_headers.items()}, parsed)

    def get_ok(self, path: str) -> Any:
        reply = self.request("GET", path)
        if reply.status != 200:
            raise PreparationError(f"GET {path} answered {reply.status}: {reply.body}")
        return reply.body


def sample_catalog(client: ShopClient, *, products: int = 60, pages: int = 3) -> CatalogSample:
    """Categories, product ids, SKUs of up to `products` products, and common words of their names."""
    categories = client.get_ok("/api/categories")
    category_slugs = [
        str(c["slug"])
        for c in categories
        if isinstance(c, dict) and c.get("slug") and c.get("product_count", 1)
    ]
    product_ids: list[str] = []
    names: list[str] = []
    cursor = None
    for _ in range(pages):
        path = "/api/products?limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
        page = client.get_ok(path)
        for item in page.get("items", []):
            product_ids.append(str(item["id"]))
            names.append(str(item.get("name", "")))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if not product_ids:
        raise PreparationError("the catalog is empty: seed it first (peakshop seed)")
    skus: list[tuple[str, str]] = []
    for product_id in product_ids[:products]:
        product = client.get_ok(f"/api/products/{quote(product_id)}")
        skus.extend((product_id, str(sku["id"])) for sku in product.get("skus", []) if sku.get("id"))
    if not skus:
        raise PreparationError("no product in the catalog sample has a SKU")
    words = Counter(
        word.lower() for name in names for word in name.split() if word.isalpha() and len(word) >= 4
    )
    return CatalogSample(
        categories=category_slugs,
        product_ids=product_ids,
        skus=skus,
        words=[word for word, _ in words.most_common(60)],
    )


def sign_in_buyers(client: ShopClient, count: int, run_id: str, *, deadline_s: float = 180.0) -> list[str]:
    """Create `count` accounts and sign each in once; their bearer tokens (fewer if time ran out)."""
    deadline = time.monotonic() + deadline_s
    password = f"rehearsal-{run_id}-password"
    tokens: list[str] = []
    for i in range(count):
        email = f"buyer-{i}-{run_id}@rehearsal.example.com"
        account = {"email": email, "password": password, "name": f"Rehearsal Buyer {i}"}
        created = _within(deadline, client, "/api/accounts", account)
        if created is None:
            break
        if created.status not in (201, 409):
            raise PreparationError(f"creating a buyer account answered {created.status}: {created.body}")
        session = _within(deadline, client, "/api/sessions", {"email": email, "password": password})
        if session is None:
            break
        if session.status != 201 or not isinstance(session.body, dict) or "token" not in session.body:
            raise PreparationError(f"signing a buyer in answered {session.status}: {session.body}")
        tokens.append(str(session.body["token"]))
    return tokens


def _within(deadline: float, client: ShopClient, path: str, body: dict[str, str]) -> Reply | None:
    """POST until the answer is not a 429, waiting as told; None when the deadline comes first."""
    while True:
        reply = client.request("POST", path, body)
        if reply.status != 429:
            return reply
        wait = float(reply.headers.get("retry-after", "1") or 1)
        if time.monotonic() + wait > deadline:
            return None
        time.sleep(wait)  # the shop asked for this pause; the deadline bounds it
