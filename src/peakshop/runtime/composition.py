"""The composition root: builds one process of a topology from data you can read on one screen.

For each service the topology places in this process, a builder makes the service from the shared
infrastructure and the clients of the services it calls; a client is local (in-process) when the
callee lives here too, and HTTP when it lives elsewhere. The process's lifespan migrates, starts and
stops every hosted service itself (mounted sub-apps would not get their lifespans entered).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import structlog
from litestar import Litestar, Router

from peakshop.cart.client import CartClient, HttpCartClient
from peakshop.cart.service import CartService
from peakshop.cart.settings import load_cart_settings
from peakshop.catalog.client import CatalogClient, HttpCatalogClient
from peakshop.catalog.service import CatalogService
from peakshop.catalog.settings import load_catalog_settings
from peakshop.inventory.client import HttpInventoryClient, InventoryClient, LocalInventoryClient
from peakshop.inventory.service import InventoryService
from peakshop.inventory.settings import load_inventory_settings
from peakshop.orders.client import HttpOrdersClient, OrdersClient
from peakshop.orders.service import OrdersService
from peakshop.orders.settings import load_orders_settings
from peakshop.payments.client import HttpPaymentsClient, PaymentsClient
from peakshop.payments.service import PaymentsService
from peakshop.payments.settings import load_payments_settings
from peakshop.platform import migrations
from peakshop.platform.bus import Bus, InProcessBus, RabbitBus
from peakshop.platform.cache import Cache, MemoryCache, RedisCache
from peakshop.platform.http_client import ServiceHttpClient
from peakshop.platform.metrics import Metrics
from peakshop.platform.service import HostedService, Infrastructure
from peakshop.platform.settings import PlatformSettings
from peakshop.platform.web import Readiness, create_app
from peakshop.runtime.topology import Topology
from peakshop.storefront.service import StorefrontService
from peakshop.storefront.settings import load_storefront_settings
from peakshop.users.client import HttpUsersClient, UsersClient
from peakshop.users.service import UsersService
from peakshop.users.settings import load_users_settings

log = structlog.get_logger("peakshop.runtime")


class RemoteClient(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


C = TypeVar("C", bound=RemoteClient)


class Process:
    """One OS process of a topology: its infrastructure, its services and the clients they use."""

    def __init__(self, topology: Topology, name: str, settings: PlatformSettings) -> None:
        self.topology = topology
        self.name = name
        self.settings = settings
        self.metrics = Metrics()
        self.readiness = Readiness()
        if topology.embedded:
            bus: Bus = InProcessBus()
            cache: Cache = MemoryCache()
        else:
            bus = RabbitBus(
                settings.amqp_url, namespace=settings.namespace, queue_expires=settings.queue_expires_seconds
            )
            cache = RedisCache.from_url(
                settings.redis_url, namespace=f"{settings.namespace}:", timeout=settings.redis_timeout_seconds
            )
        self.infra = Infrastructure(settings, self.metrics, bus, cache)
        self.services: dict[str, HostedService] = {}
        self._remote_clients: list[RemoteClient] = []  # started and closed with the process
        hosted = topology.processes[name].services
        for service in BUILD_ORDER:
            if service in hosted:
                self.services[service] = BUILDERS[service](self)

    # --- clients: local when the callee is hosted here, HTTP otherwise ---------------------------

    def _http(self, service: str) -> ServiceHttpClient:
        return ServiceHttpClient(
            service,
            self.topology.url_of(service),
            timeout=self.settings.http_client_timeout,
            connect_patience=self.settings.http_connect_patience_seconds,
        )

    def _remote(self, client: C) -> C:
        self._remote_clients.append(client)
        return client

    def catalog(self) -> CatalogClient:
        if isinstance(service := self.services.get("catalog"), CatalogService):
            return service.client()
        return self._remote(HttpCatalogClient(self._http("catalog")))

    def cart(self) -> CartClient:
        if isinstance(service := self.services.get("cart"), CartService):
            return service.client()
        return self._remote(HttpCartClient(self._http("cart")))

    def inventory(self) -> InventoryClient:
        if isinstance(service := self.services.get("inventory"), InventoryService):
            return LocalInventoryClient(service)
        return self._remote(HttpInventoryClient(self._http("inventory")))

    def orders(self) -> OrdersClient:
        if isinstance(service := self.services.get("orders"), OrdersService):
            return service.client()
        return self._remote(HttpOrdersClient(self._http("orders")))

    def payments(self) -> PaymentsClient:
        if isinstance(service := self.services.get("payments"), PaymentsService):
            return service.client()
        return self._remote(HttpPaymentsClient(self._http("payments")))

    def users(self) -> UsersClient:
        if isinstance(service := self.services.get("users"), UsersService):
            return service.client()
        return self._remote(HttpUsersClient(self._http("users")))

    # --- the ASGI app and its lifespan ------------------------------------------------------------

    def app(self, extra_routers: Sequence[Router] = ()) -> Litestar:
        routers = [router for service in self.services.values() for router in service.routers()]
        routers += extra_routers
        return create_app(
            name=self.name,
            routers=routers,
            lifespan=self.lifespan,
            metrics=self.metrics,
            readiness=self.readiness,
            max_body_bytes=self.settings.max_body_bytes,
        )

    async def migrate(self) -> None:
        s = self.settings
        for service in self.services.values():
            if service.migrations is not None:
                await asyncio.to_thread(
                    migrations.upgrade,
                    service.migrations,
                    service.name,
                    embedded=s.embedded,
                    data_dir=s.data_dir,
                    postgres_url=s.postgres_url,
                )

    @asynccontextmanager
    async def lifespan(self, _app: Litestar | None = None) -> AsyncIterator[None]:
        await self.migrate()
        started: list[HostedService] = []
        try:
            for service in self.services.values():
                await service.start()
                started.append(service)
                self.readiness.checks.append(service.check_ready)
            for client in self._remote_clients:
                await client.start()
            # Subscriptions were made by the services' start(); the bus starts consuming after them.
            await self.infra.bus.start()
            # Not the cache: every process serves without it (platform/cache.py), and a Redis outage
            # that made every replica unready would take the whole shop out of its load balancer.
            self.readiness.checks.append(self.infra.bus.ping)
            log.info("process_started", process=self.name, services=list(self.services))
            yield
        finally:
            self.readiness.draining = True
            for service in reversed(started):
                await service.stop()
            for client in self._remote_clients:
                await client.close()
            await self.infra.bus.close()
            await self.infra.cache.close()
            await self.infra.close_databases()
            log.info("process_stopped", process=self.name)


# Dependencies first: a service's clients must exist before the service that calls them.
BUILD_ORDER = ("catalog", "users", "cart", "inventory", "payments", "orders", "storefront")

BUILDERS: dict[str, Callable[[Process], HostedService]] = {
    "catalog": lambda p: CatalogService(p.infra, load_catalog_settings()),
    "users": lambda p: UsersService(p.infra, load_users_settings()),
    "cart": lambda p: CartService(p.infra, load_cart_settings(), p.catalog()),
    "inventory": lambda p: InventoryService(p.infra, load_inventory_settings()),
    "payments": lambda p: PaymentsService(p.infra, load_payments_settings()),
    "orders": lambda p: OrdersService(
        p.infra, load_orders_settings(), cart=p.cart(), inventory=p.inventory(), payments=p.payments()
    ),
    "storefront": lambda p: StorefrontService(
        load_storefront_settings(),
        p.metrics,
        catalog=p.catalog(),
        users=p.users(),
        cart=p.cart(),
        orders=p.orders(),
    ),
}
