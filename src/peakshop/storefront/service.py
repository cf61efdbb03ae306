"""The storefront as a hosted service: no data of its own, only the clients of those it composes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Router

from peakshop.storefront.settings import StorefrontSettings

if TYPE_CHECKING:  # services meet only through their clients, handed over by the composition root
    from peakshop.catalog.client import CatalogClient
    from peakshop.users.client import UsersClient


class StorefrontService:
    name = "storefront"
    migrations: Path | None = None

    def __init__(self, settings: StorefrontSettings, catalog: CatalogClient, users: UsersClient) -> None:
        self.settings = settings
        self.catalog = catalog
        self.users = users

    def routers(self) -> list[Router]:
        from peakshop.storefront.api import create_router

        return [create_router(self)]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def check_ready(self) -> None:
        return None
