"""What simulated shoppers do: each journey is a few requests against the public API.

Journeys are plain functions of a `Visit`, which makes the requests (the engine times and records
them) and carries this journey's own seeded random choices. A journey stops at the first answer
it cannot go on from, as a shopper would.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from peakshop.rehearsal.plan import Plan

PROBLEM_BASE = "https://peakshop.dev/problems/"
# The shop's correct answers to a buyer it cannot serve: not errors, but counted as outcomes.
BUSINESS_PROBLEMS = {
    409: {"sold-out", "purchase-limit"},
    402: {"payment-declined", "payment-cancelled"},
}


@dataclass
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name) or self.headers.get(name.lower())


def problem_slug(body: bytes | None) -> str:
    if not body or b'"type"' not in body:
        return ""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    slug = document.get("type", "") if isinstance(document, dict) else ""
    return str(slug).removeprefix(PROBLEM_BASE)


def classify(status: int, body: bytes | None) -> str:
    """The kind of an answer (see `samples`): ok, business, shed, client, server or transport."""
    if status == 0:
        return "transport"
    if status < 400:
        return "ok"
    if status >= 500:
        return "server"
    if status == 429:
        return "shed"
    if status in BUSINESS_PROBLEMS and problem_slug(body) in BUSINESS_PROBLEMS[status]:
        return "business"
    return "client"


class Requester(Protocol):
    def __call__(
        self, method: str, path: str, step: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer: ...


@dataclass
class Visit:
    """One journey's run: its index in the schedule, its random choices, and its way to the shop."""

    index: int
    plan: Plan
    rng: random.Random
    send: Requester
    outcome: Callable[[str], None]

    def get(self, path: str, step: str, headers: dict[str, str] | None = None) -> Answer:
        return self.send("GET", path, step, headers=headers)

    def post(self, path: str, step: str, body: Any, headers: dict[str, str] | None = None) -> Answer:
        return self.send("POST", path, step, body=body, headers=headers)


def browse(visit: Visit) -> None:
    catalog = visit.plan.catalog
    if visit.rng.random() < 0.2:
        visit.get("/api/categories", "categories")
    category = quote(visit.rng.choice(catalog.categories)) if catalog.categories else ""
    query = f"/api/products?limit=20&category={category}" if category else "/api/products?limit=20"
    page = visit.get(query, "category_page")
    if page.ok and visit.rng.random() < 0.5:
        cursor = (page.json() or {}).get("next_cursor")
        if cursor:
            visit.get(f"{query}&cursor={quote(cursor)}", "next_page")


def search(visit: Visit) -> None:
    words = visit.plan.catalog.words or ["shirt"]
    text = " ".join(visit.rng.sample(words, k=min(len(words), visit.rng.choice((1, 1, 2)))))
    visit.get(f"/api/search?q={quote(text)}&limit=20", "search")


def product_page(visit: Visit) -> None:
    visit.get(f"/api/products/{quote(visit.rng.choice(visit.plan.catalog.product_ids))}", "product")


def _add(visit: Visit, product_id: str, sku_id: str) -> str | None:
    """View the product and put one of the SKU in a new anonymous cart; the cart's id, or None."""
    if not visit.get(f"/api/products/{quote(product_id)}", "product").ok:
        return None
    added = visit.post("/api/cart/items", "add_item", {"sku_id": sku_id, "quantity": 1})
    if not added.ok:
        return None
    cart_id = added.header("Cart-Id") or (added.json() or {}).get("id")
    return str(cart_id) if cart_id else None


def add_to_cart(visit: Visit) -> None:
    product_id, sku_id = visit.rng.choice(visit.plan.catalog.skus)
    cart_id = _add(visit, product_id, sku_id)
    if cart_id:
        visit.get("/api/cart", "view_cart", headers={"Cart-Id": cart_id})


def _place_order(visit: Visit, cart_id: str) -> None:
    plan = visit.plan
    tokens = sorted(plan.payments)
    token = visit.rng.choices(tokens, weights=[plan.payments[t] for t in tokens])[0]
    body = {
        "cart_id": cart_id,
        "shipping_address": {
            "name": f"Rehearsal Buyer {visit.index}",
            "line1": f"{visit.index % 997 + 1} Main Street",
            "city": "Springfield",
            "postal_code": f"{10000 + visit.index % 89999}",
            "country": "US",
        },
        "payment_token": token,
    }
    headers = {
        "Authorization": f"Bearer {visit.rng.choice(plan.buyer_tokens)}",
        # One key per order attempt; a retry of the same attempt would reuse it.
        "Idempotency-Key": f"{plan.run_id}-{visit.index}",
    }
    placed = visit.post("/api/checkout", "place_order", body, headers)
    if placed.status == 201:
        status = (placed.json() or {}).get("status")
        visit.outcome("order_confirmed" if status == "confirmed" else f"order_{status}")
    else:
        visit.outcome(problem_slug(placed.body).replace("-", "_") or f"status_{placed.status}")


def checkout(visit: Visit) -> None:
    if not visit.plan.buyer_tokens:
        return
    product_id, sku_id = visit.rng.choice(visit.plan.catalog.skus)
    cart_id = _add(visit, product_id, sku_id)
    if cart_id:
        _place_order(visit, cart_id)


def flash_sale(visit: Visit) -> None:
    if not visit.plan.buyer_tokens or visit.plan.flash_sale_sku is None:
        return
    product_id, sku_id = visit.plan.flash_sale_sku
    cart_id = _add(visit, product_id, sku_id)
    if cart_id:
        _place_order(visit, cart_id)


JOURNEY_FUNCTIONS: dict[str, Callable[[Visit], None]] = {
    "browse": browse,
    "search": search,
    "product_page": product_page,
    "add_to_cart": add_to_cart,
    "checkout": checkout,
    "flash_sale": flash_sale,
}
