"""The local and the HTTP client answer alike: same document bytes and ETags, same problems."""

from collections.abc import AsyncIterator

import pytest

from peakshop.catalog.api import create_router
from peakshop.catalog.client import CatalogClient, HttpCatalogClient, LocalCatalogClient
from peakshop.catalog.domain import InvalidCursor
from peakshop.catalog.handlers import CatalogHandlers
from peakshop.catalog.settings import CatalogSettings
from peakshop.contracts.catalog import ProductQuery
from peakshop.platform.http_client import ServiceHttpClient
from peakshop.platform.problems import Problem
from tests.served import served


@pytest.fixture
async def catalog_clients(
    catalog_handlers: CatalogHandlers,
) -> AsyncIterator[tuple[CatalogClient, CatalogClient]]:
    async with served("catalog", [create_router(catalog_handlers, CatalogSettings())]) as base_url:
        http = ServiceHttpClient("catalog", base_url)
        try:
            yield LocalCatalogClient(catalog_handlers), HttpCatalogClient(http)
        finally:
            await http.close()


async def test_documents_are_the_same_bytes_and_etags(
    catalog_clients: tuple[CatalogClient, CatalogClient],
) -> None:
    local, remote = catalog_clients
    assert await remote.product_document("p_000002") == await local.product_document("p_000002")
    query = ProductQuery(q="warranty", limit=5)
    first = await local.product_page_document(query)
    assert await remote.product_page_document(query) == first
    assert await remote.categories_document() == await local.categories_document()
    assert await remote.get_product("p_000002") == await local.get_product("p_000002")


async def test_both_clients_raise_the_same_problems(
    catalog_clients: tuple[CatalogClient, CatalogClient],
) -> None:
    async def problem_of(call: object) -> tuple[int, str, dict[str, object]]:
        with pytest.raises(Problem) as raised:
            await call  # type: ignore[misc]
        extra = {k: v for k, v in raised.value.to_dict().items() if k not in {"title", "instance"}}
        return raised.value.status, raised.value.slug, extra

    local, remote = catalog_clients
    mistakes = [
        lambda c: c.product_document("p_999999"),
        lambda c: c.product_page_document(ProductQuery(limit=0)),
        lambda c: c.product_page_document(ProductQuery(cursor="forged")),
        lambda c: c.product_page_document(ProductQuery(category="nowhere")),
        lambda c: c.price_skus(["sku_000001_1", "sku_nope"]),
        lambda c: c.change_price("sku_000001_1", 0),
        lambda c: c.change_price("sku_nope", 100),
    ]
    for mistake in mistakes:
        assert await problem_of(mistake(remote)) == await problem_of(mistake(local))
    with pytest.raises(Problem) as raised:
        await remote.product_page_document(ProductQuery(cursor="forged"))
    assert raised.value.slug == InvalidCursor.slug


async def test_prices_agree_over_both_clients(catalog_clients: tuple[CatalogClient, CatalogClient]) -> None:
    local, remote = catalog_clients
    changed = await remote.change_price("sku_000003_1", 777)
    assert changed.price == 777
    assert await remote.price_skus(["sku_000003_1"]) == await local.price_skus(["sku_000003_1"]) == [changed]
