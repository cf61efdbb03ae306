"""Buyers for end-to-end tests: accounts, carts and checkouts over the public API."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx

ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


@dataclass
class Buyer:
    email: str
    token: str
    cart_id: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, prefix: str = "buyer") -> Buyer:
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    credentials = {"email": email, "password": "correct horse battery"}
    (await client.post("/api/accounts", json={**credentials, "name": "Buyer"})).raise_for_status()
    session = await client.post("/api/sessions", json=credentials)
    session.raise_for_status()
    return Buyer(email, session.json()["token"])


async def sign_up_many(client: httpx.AsyncClient, count: int, prefix: str = "buyer") -> list[Buyer]:
    buyers: list[Buyer] = []
    for start in range(0, count, 50):  # in waves: a realistic pace for account creation
        buyers += await asyncio.gather(*(sign_up(client, prefix) for _ in range(min(50, count - start))))
    return buyers


async def add_to_cart(client: httpx.AsyncClient, buyer: Buyer, sku_id: str, quantity: int = 1) -> None:
    response = await client.post(
        "/api/cart/items", json={"sku_id": sku_id, "quantity": quantity}, headers=buyer.auth
    )
    response.raise_for_status()
    buyer.cart_id = response.json()["id"]


async def check_out(
    client: httpx.AsyncClient, buyer: Buyer, *, token: str = "tok_visa", key: str | None = None
) -> httpx.Response:
    body = {"cart_id": buyer.cart_id, "shipping_address": ADDRESS, "payment_token": token}
    headers = {**buyer.auth, "idempotency-key": key or uuid.uuid4().hex}
    return await client.post("/api/checkout", json=body, headers=headers)


def client_for(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(180.0),
        limits=httpx.Limits(max_connections=600, max_keepalive_connections=600),
    )


async def a_sku_in_stock(client: httpx.AsyncClient, skip: int = 0) -> str:
    products = (await client.get("/api/products", params={"limit": 50})).json()["items"]
    product = (await client.get(f"/api/products/{products[skip]['id']}")).json()
    return str(product["skus"][0]["id"])
