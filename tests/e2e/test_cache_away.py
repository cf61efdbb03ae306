"""A split shop keeps selling while Redis does not answer, and uses it again once it does."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest

from peakshop.runtime.topology import load_topology
from tests.e2e.buyers import a_sku_in_stock, add_to_cart, check_out, client_for, sign_up
from tests.e2e.conftest import fresh_shop
from tests.services import RedisLink

pytestmark = pytest.mark.e2e


def catalog_cache_lookups(metrics: str) -> dict[str, float]:
    found = re.findall(r'peakshop_cache_lookups_total\{cache="catalog",result="(\w+)"\} (\S+)', metrics)
    return {result: float(value) for result, value in found}


async def test_the_shop_starts_and_sells_while_redis_hangs_and_caches_again_after(tmp_path: Path) -> None:
    async with RedisLink(database=14) as link:
        with fresh_shop("split", tmp_path, {"PEAKSHOP_REDIS_URL": link.url}) as setup:
            link.cut = True  # from the start: no process may wait for Redis to be ready
            # Starting and stopping block: in threads, so that this loop keeps relaying meanwhile.
            shop = await asyncio.to_thread(setup.start, PEAKSHOP_REDIS_TIMEOUT_SECONDS="0.5")
            catalog_metrics = load_topology(setup.topology).url_of("catalog", {}) + "/metrics"
            try:
                async with client_for(shop.base_url) as client, httpx.AsyncClient() as plain:
                    link.cut = False
                    sku = await a_sku_in_stock(client, skip=3)
                    buyer = await sign_up(client, "cached")

                    link.cut = True
                    started = time.monotonic()
                    browsed = [
                        await client.get("/api/products", params={"limit": 20}),
                        await client.get("/api/search", params={"q": "cotton", "limit": 5}),
                        await client.get("/api/categories"),
                    ]
                    assert [r.status_code for r in browsed] == [200, 200, 200], [r.text for r in browsed]
                    product_id = browsed[0].json()["items"][5]["id"]
                    assert (await client.get(f"/api/products/{product_id}")).status_code == 200
                    # Log-in limits live in Redis too: they let the attempt through.
                    late = await sign_up(client, "uncached")
                    await add_to_cart(client, buyer, sku)
                    await add_to_cart(client, late, sku)
                    answers = [await check_out(client, buyer), await check_out(client, late)]
                    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
                    # Each request waited at most one command timeout, not one per request.
                    assert time.monotonic() - started < 20
                    during = catalog_cache_lookups((await plain.get(catalog_metrics)).text)
                    assert during.get("error", 0) > 0

                    link.cut = False
                    deadline = time.monotonic() + 10
                    while True:  # the cache rests a moment after its last failure, then is asked again
                        page = await client.get(f"/api/products/{product_id}")
                        assert page.status_code == 200
                        after = catalog_cache_lookups((await plain.get(catalog_metrics)).text)
                        if after.get("hit", 0) > during.get("hit", 0):
                            break
                        assert time.monotonic() < deadline, f"the catalog did not use Redis again: {after}"
                        await asyncio.sleep(0.2)
            finally:
                assert await asyncio.to_thread(shop.stop) == 0, shop.output()[-3000:]
            report = shop.audit()
            assert report["ok"], report["violations"]
