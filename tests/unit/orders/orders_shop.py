"""A shop for orders tests: real inventory and payments services in-process, a small fake cart.

Used by the SQLite tests here and by the PostgreSQL ones in `tests/integration/orders`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec

from peakshop.contracts.cart import Cart, CartLine
from peakshop.contracts.inventory import SetStock, StockLevel
from peakshop.contracts.orders import TOPIC_ORDER_PLACED, Order, OrderPlaced, PlaceOrder, ShippingAddress
from peakshop.inventory.client import LocalInventoryClient
from peakshop.inventory.service import MIGRATIONS as INVENTORY_MIGRATIONS
from peakshop.inventory.service import InventoryService
from peakshop.inventory.settings import InventorySettings
from peakshop.orders.service import MIGRATIONS as ORDERS_MIGRATIONS
from peakshop.orders.service import OrdersService
from peakshop.orders.settings import OrdersSettings
from peakshop.payments.service import MIGRATIONS as PAYMENTS_MIGRATIONS
from peakshop.payments.service import PaymentsService
from peakshop.payments.settings import PaymentsSettings
from peakshop.platform.bus import InProcessBus
from peakshop.platform.cache import MemoryCache
from peakshop.platform.db import Database
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade
from peakshop.platform.problems import NotFound, Problem
from peakshop.platform.service import Infrastructure
from peakshop.platform.settings import PlatformSettings

PRICES = {"sku-red": 1_250, "sku-blue": 990, "sku-last": 5_000}
ADDRESS = ShippingAddress(
    name="Ada Buyer", line1="1 Market Street", city="Berlin", postal_code="10115", country="DE"
)


class Crashed(BaseException):
    """Stands in for SIGKILL in-process: nothing in the saga catches it, so nothing is compensated."""


def crash(step: str) -> None:
    raise Crashed(step)


class FakeClock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeCart:
    """Carts priced from a fixed price list, for the one call a checkout makes. Like a real cart before
    `orders.placed` reaches it, a cart stays open after its order is confirmed."""

    carts: dict[str, tuple[str | None, dict[str, int]]] = field(default_factory=dict)
    reads: int = 0

    def fill(self, cart_id: str, account_id: str | None, **quantities: int) -> None:
        """An account's cart, or with `account_id=None` an anonymous one: anyone's who holds its id."""
        self.carts[cart_id] = (account_id, {sku.replace("_", "-"): qty for sku, qty in quantities.items()})

    async def checkout_lines(self, cart_id: str, account_id: str) -> Cart:
        self.reads += 1
        found = self.carts.get(cart_id)
        if found is None or found[0] not in (None, account_id):
            raise NotFound(f"There is no cart {cart_id}.", slug="cart-not-found")
        owner, quantities = found
        lines = [
            CartLine(sku, "prod-" + sku, sku.title(), qty, PRICES[sku], PRICES[sku] * qty, "EUR")
            for sku, qty in sorted(quantities.items())
        ]
        subtotal = sum(line.line_total for line in lines)
        count = sum(line.quantity for line in lines)
        kind = "anonymous" if owner is None else "account"
        return Cart(cart_id, kind, owner, "open", lines, count, subtotal, "EUR", 0.0)


@dataclass
class RecordingBus(InProcessBus):
    """The in-process bus, keeping every event it was handed."""

    published: list[Envelope] = field(default_factory=list)

    async def publish(self, envelope: Envelope) -> None:
        self.published.append(envelope)
        await super().publish(envelope)


@dataclass
class Shop:
    infra: Infrastructure
    inventory: InventoryService
    payments: PaymentsService
    orders: OrdersService
    cart: FakeCart
    stock: LocalInventoryClient
    inventory_clock: FakeClock

    @property
    def metrics(self) -> Metrics:
        return self.infra.metrics

    def count(self, metric: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(metric, labels) or 0.0

    def database(self, service: str) -> Database:
        return next(db for db in self.infra.databases if db.schema == service)

    async def scalar(self, service: str, sql: str, *args: Any) -> Any:
        row = await self.database(service).fetchrow(sql, *args)
        return None if row is None else row[0]

    async def charges(self, status: str | None = None) -> int:
        if status is None:
            return int(await self.scalar("payments", "SELECT count(*) FROM payments.sandbox_charges"))
        sql = "SELECT count(*) FROM payments.sandbox_charges WHERE status = $1"
        return int(await self.scalar("payments", sql, status))

    async def events(self, topic: str) -> list[bytes]:
        """Payloads of every `topic` event orders wrote: those its relay has published (and deleted
        from the outbox) and those still waiting in the outbox."""
        db = self.database("orders")
        # The outbox first: a row the relay deletes after this read was published before its delete.
        rows = await db.fetch("SELECT id, payload FROM orders.outbox WHERE topic = $1", topic)
        bus = cast(RecordingBus, self.infra.bus)
        found = {e.id: e.payload for e in bus.published if e.topic == topic}
        found.update((row[0], bytes(row[1])) for row in rows)
        return list(found.values())

    async def placed_carts(self) -> dict[str, str]:
        """Order id → cart id, from the `OrderPlaced` events orders wrote."""
        events = [msgspec.json.decode(p, type=OrderPlaced) for p in await self.events(TOPIC_ORDER_PLACED)]
        return {event.order_id: event.cart_id for event in events}

    async def level(self, sku_id: str) -> StockLevel:
        (found,) = await self.stock.stock([sku_id])
        return found

    async def provider_cancels(self, order_id: str) -> None:
        """The provider voids the order's authorisation on its own, as a fraud check or an expired
        authorisation does at a real provider; payments learns of it when it next asks the provider."""
        async with self.database("payments").one_statement() as tx:
            cancelled = await tx.execute(
                "UPDATE payments.sandbox_charges SET status = 'voided' "
                "WHERE idempotency_key = $1 AND status = 'authorized'",
                order_id,
            )
        assert cancelled == 1, "no authorised charge to cancel"

    async def restock(self, sku_id: str, quantity: int) -> None:
        await self.stock.set_stock(SetStock(sku_id, quantity))


def order_request(cart_id: str = "cart-1", token: str = "tok_visa", **changes: Any) -> PlaceOrder:
    return PlaceOrder(cart_id=cart_id, shipping_address=changes.pop("address", ADDRESS), payment_token=token)


async def one_order_from_checkouts_under_many_keys(shop: Shop, keys: int = 20) -> Order:
    """Check out cart-1 under `keys` keys at once: one order and one charge, every other a clean 409."""
    results = await asyncio.gather(
        *(shop.orders.handlers.place_order("acct-1", f"key-{n}", order_request()) for n in range(keys)),
        return_exceptions=True,
    )
    orders = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if not isinstance(r, Order)]
    assert len(orders) == 1 and orders[0].status == "confirmed", results
    assert all(isinstance(r, Problem) and r.status == 409 for r in refused), refused
    assert {r.slug for r in refused if isinstance(r, Problem)} <= {"cart-checkout-in-progress", "cart-closed"}
    assert await shop.scalar("orders", "SELECT count(*) FROM orders.orders") == 1
    assert await shop.charges() == 1
    return orders[0]


async def migrate_all(settings: PlatformSettings) -> None:
    for script, schema in (
        (INVENTORY_MIGRATIONS, "inventory"),
        (PAYMENTS_MIGRATIONS, "payments"),
        (ORDERS_MIGRATIONS, "orders"),
    ):
        await asyncio.to_thread(
            upgrade,
            script,
            schema,
            embedded=settings.embedded,
            data_dir=settings.data_dir,
            postgres_url=settings.postgres_url,
        )


async def open_shop(
    settings: PlatformSettings,
    *,
    migrate: bool = True,
    orders_clock: Callable[[], float] = time.time,
    **orders_overrides: Any,
) -> Shop:
    """Start inventory, payments and orders on `settings`' databases; crash hooks raise `Crashed`."""
    if migrate:
        await migrate_all(settings)
    infra = Infrastructure(settings, Metrics(), RecordingBus(), MemoryCache())
    inventory_clock = FakeClock()
    inventory = InventoryService(
        infra, InventorySettings(sweep_interval_seconds=3_600), clock=inventory_clock
    )
    payments = PaymentsService(infra, PaymentsSettings(sandbox_webhook_interval_seconds=3_600))
    cart = FakeCart()
    stock = LocalInventoryClient(inventory)
    orders_overrides.setdefault("reconcile_interval_seconds", 3_600)
    orders_overrides.setdefault("reconcile_after_seconds", 0)
    orders = OrdersService(
        infra,
        OrdersSettings(**orders_overrides),
        cart=cart,
        inventory=stock,
        payments=payments.client(),
        clock=orders_clock,
        crash=crash,
    )
    for service in (inventory, payments, orders):
        await service.start()
    return Shop(infra, inventory, payments, orders, cart, stock, inventory_clock)


async def close_shop(shop: Shop) -> None:
    for service in (shop.orders, shop.payments, shop.inventory):
        await service.stop()
    await shop.infra.bus.close()
    await shop.infra.close_databases()
