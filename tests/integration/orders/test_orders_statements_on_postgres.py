"""The statements one checkout costs on PostgreSQL, all services together (brief: at most 12).

Every service of the shop runs in this process on a scratch PostgreSQL database (a one-process
topology that is not embedded), and the database port's statement log records exactly what one
`place_order` sends, whichever service sends it. Left out: the sandbox gateway's own tables, which
stand for the external payment provider, and the transaction brackets. The relays, sweepers and
consumers run in tasks of their own, so what they send is not in the log.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peakshop.contracts.cart import AddItem
from peakshop.contracts.inventory import SetStock
from peakshop.contracts.orders import PlaceOrder, ShippingAddress
from peakshop.contracts.users import Credentials, NewAccount
from peakshop.platform.db import Statement, statement_log
from peakshop.platform.settings import load_platform_settings
from peakshop.runtime import prepare
from peakshop.runtime.composition import BUILD_ORDER, Process
from peakshop.runtime.topology import load_topology
from tests.services import drop_namespace_exchange

BUDGET = 12
ADDRESS = ShippingAddress(
    name="Ada", line1="1 Main St", city="Springfield", postal_code="12345", country="US"
)


@pytest.fixture
async def shop(
    scratch_postgres_url: str, redis_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[Process]:
    topology_file = tmp_path / "one-process-on-postgres.toml"
    services = ", ".join(f'"{s}"' for s in BUILD_ORDER)
    topology_file.write_text(
        f'name = "all-on-postgres"\nembedded = false\n[processes.shop]\nservices = [{services}]\nport = 1\n'
    )
    topology = load_topology(str(topology_file))
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = load_platform_settings(
        {},
        topology="split",
        postgres_url=scratch_postgres_url,
        redis_url=redis_url,
        amqp_url=amqp_url,
        namespace=namespace,
        queue_expires_seconds=600,  # the test's queues go away after it
        webhook_secret="s" * 32,
        data_dir=str(tmp_path),
        db_pool_size=4,
    )
    await prepare.migrate_all(topology, settings)
    await prepare.seed(settings, products=20, seed=3, progress=None)
    process = Process(topology, "shop", settings)
    try:
        async with process.lifespan():
            yield process
    finally:
        drop_namespace_exchange(namespace)


async def _buyer_with_a_cart(shop: Process, sku_id: str) -> tuple[str, str]:
    email = f"count-{uuid.uuid4().hex[:8]}@example.com"
    await shop.users().register(NewAccount(email, "correct horse", "Counted"))
    session = await shop.users().log_in(Credentials(email, "correct horse"), "127.0.0.1")
    cart = await shop.cart().add_item(None, session.account.id, AddItem(sku_id, 1))
    return session.account.id, cart.id


async def test_a_whole_checkout_costs_at_most_twelve_statements_on_postgres(shop: Process) -> None:
    product = await shop.catalog().get_product("p_000001")
    sku_id = product.skus[0].id
    await shop.inventory().set_stock(SetStock(sku_id, 100))
    account, cart = await _buyer_with_a_cart(shop, sku_id)
    await shop.orders().place_order(account, "warm-up", PlaceOrder(cart, ADDRESS, "tok_visa"))
    account, cart = await _buyer_with_a_cart(shop, sku_id)

    log: list[Statement] = []
    token = statement_log.set(log)
    try:
        order = await shop.orders().place_order(account, "counted", PlaceOrder(cart, ADDRESS, "tok_visa"))
    finally:
        statement_log.reset(token)
    assert order.status == "confirmed"
    on_path = [s for s in log if "sandbox_" not in s.sql]
    by_service = Counter(s.schema for s in on_path)
    for statement in on_path:
        print(f"  {statement.schema}: {statement.sql[:100]}")
    print("statements per checkout on PostgreSQL:", dict(by_service), "total", len(on_path))
    assert len(on_path) <= BUDGET, dict(by_service)
