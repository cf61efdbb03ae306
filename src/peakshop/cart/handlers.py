"""The cart use cases: add, change, remove, read, merge at log-in, and the two steps orders calls.

Every change runs in one transaction that first claims the cart (an UPDATE that checks ownership and
state and holds the cart's row lock), then reads its lines, lets the domain decide, and writes. Prices
come from the catalog on every read; the cart stores SKU ids and quantities (and a name snapshot).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import structlog

from peakshop.cart.domain import (
    SCHEMA,
    Limits,
    StoredCart,
    StoredLine,
    added,
    already_checked_out,
    by_sku,
    cart_closed,
    cart_empty,
    cart_not_found,
    check_line_quantity,
    line_not_found,
    merged,
    new_cart_id,
    plausible_cart_id,
    priced,
    problem_extra,
    unknown_sku,
    validated,
)
from peakshop.cart.repository import CartRepository
from peakshop.cart.settings import CartSettings
from peakshop.contracts.cart import (
    TOPIC_CART_CHECKED_OUT,
    AddItem,
    Cart,
    CartCheckedOut,
    ChangeQuantity,
    MarkCheckedOut,
)
from peakshop.contracts.catalog import SkuPrice
from peakshop.platform.db import Database, Executor
from peakshop.platform.metrics import Metrics
from peakshop.platform.outbox import add_to_outbox
from peakshop.platform.problems import Problem, Unavailable

if TYPE_CHECKING:  # services meet only through their clients, handed over by the composition root
    from peakshop.catalog.client import CatalogClient

log = structlog.get_logger("peakshop.cart")
Clock = Callable[[], float]


class CartHandlers:
    """The use cases over the cart database (bound when the service starts) and the catalog client."""

    def __init__(
        self,
        settings: CartSettings,
        metrics: Metrics,
        catalog: CatalogClient,
        *,
        database: Database | None = None,
        clock: Clock = time.time,
        outbox_written: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.limits = Limits(settings.max_line_quantity, settings.max_lines)
        self._metrics = metrics
        self._catalog = catalog
        self._now = clock
        self._outbox_written = outbox_written
        self._repository: CartRepository | None = None
        if database is not None:
            self.bind(database)

    def bind(self, database: Database) -> None:
        self._repository = CartRepository(database)

    def unbind(self) -> None:
        self._repository = None

    @property
    def repository(self) -> CartRepository:
        if self._repository is None:
            raise Unavailable("The cart service is not started.", service="cart")
        return self._repository

    # --- reads ------------------------------------------------------------------------------------

    async def get_cart(self, cart_id: str, account_id: str | None) -> Cart:
        cart, lines = await self._visible(cart_id, account_id)
        return await self._priced(cart, lines)

    async def account_cart(self, account_id: str) -> Cart:
        """The account's open cart, made empty if it has none yet."""
        repository = self.repository
        found = await repository.open_cart_of(account_id)
        if found is not None:
            return await self._priced(*found)
        async with repository.db.transaction() as tx:
            cart = await repository.claim_account_cart(tx, account_id, new_cart_id(), self._now())
            lines = (await repository.lines_of(tx, cart.id))[cart.id]
        return await self._priced(cart, lines)

    # --- changes ----------------------------------------------------------------------------------

    async def add_item(self, cart_id: str | None, account_id: str | None, item: AddItem) -> Cart:
        """Add to the given cart; with no cart (or a closed one) to the account's, or to a new one.

        The answer carries the cart's id, which is new when the cart was: callers keep that one.
        """
        item = validated(item)
        check_line_quantity(item.quantity, self.limits)  # before asking the catalog anything
        price = await self._price_one(item.sku_id)
        repository = self.repository
        now = self._now()
        async with repository.db.transaction() as tx:
            cart, made = await self._cart_to_add_to(tx, cart_id, account_id, now)
            # A cart made by this very statement has no lines to read.
            lines = {} if made else by_sku((await repository.lines_of(tx, cart.id))[cart.id])
            line = added(lines, price, item.quantity, now, self.limits)
            await repository.put_lines(tx, cart.id, [line])
        lines[line.sku_id] = line
        self._metrics.cart_additions.inc()
        return await self._priced(cart, lines.values(), {price.sku_id: price})

    async def change_quantity(
        self, cart_id: str, account_id: str | None, sku_id: str, change: ChangeQuantity
    ) -> Cart:
        change = validated(change)
        check_line_quantity(change.quantity, self.limits)
        repository = self.repository
        async with repository.db.transaction() as tx:
            cart = await self._claim(tx, cart_id, account_id)
            if not await repository.set_quantity(tx, cart.id, sku_id, change.quantity):
                raise line_not_found(sku_id)
            lines = (await repository.lines_of(tx, cart.id))[cart.id]
        return await self._priced(cart, lines)

    async def remove_line(self, cart_id: str, account_id: str | None, sku_id: str) -> Cart:
        """Remove a SKU's line; removing one that is not there is not an error (retries are safe)."""
        repository = self.repository
        async with repository.db.transaction() as tx:
            cart = await self._claim(tx, cart_id, account_id)
            await repository.delete_line(tx, cart.id, sku_id)
            lines = (await repository.lines_of(tx, cart.id))[cart.id]
        return await self._priced(cart, lines)

    async def merge(self, anonymous_cart_id: str, account_id: str) -> Cart:
        """Pour an anonymous cart into the account's open cart at log-in; repeating it changes nothing."""
        repository = self.repository
        if not plausible_cart_id(anonymous_cart_id):
            raise cart_not_found(anonymous_cart_id)
        now = self._now()
        async with repository.db.transaction() as tx:
            source = await repository.lock(tx, anonymous_cart_id)
            if source is None or not source.visible_to(account_id):
                raise cart_not_found(anonymous_cart_id)
            if source.status == "merged" and not await self._merged_into_account(tx, source, account_id):
                # Merged into someone else's cart: to this caller, the id no longer names a cart.
                raise cart_not_found(anonymous_cart_id)
            target = await repository.claim_account_cart(tx, account_id, new_cart_id(), now)
            if source.id == target.id or not source.open:
                lines = (await repository.lines_of(tx, target.id))[target.id]
                return await self._priced(target, lines)
            both = await repository.lines_of(tx, target.id, source.id)
            target_lines = by_sku(both[target.id])
            changed = merged(target_lines, both[source.id], self.limits)
            await repository.put_lines(tx, target.id, changed)
            await repository.mark_merged(tx, source.id, target.id, now)
        kept = len(changed)
        if kept < len(both[source.id]):
            log.info("cart_merge_left_lines", cart_id=source.id, moved=kept, left=len(both[source.id]) - kept)
        target_lines.update(by_sku(changed))
        return await self._priced(target, target_lines.values())

    # --- for the orders saga ----------------------------------------------------------------------

    async def checkout_lines(self, cart_id: str, account_id: str | None) -> Cart:
        """The open cart priced now, for an order to snapshot; closed or empty carts are 409."""
        cart, lines = await self._visible(cart_id, account_id)
        if not cart.open:
            raise cart_closed(cart)
        if not lines:
            raise cart_empty(cart.id)
        # Strict: an order must not silently drop a line whose SKU the catalog no longer sells.
        prices = await self._prices_strict([line.sku_id for line in lines])
        return priced(cart, lines, prices, self.settings.default_currency)

    async def mark_checked_out(self, cart_id: str, order_id: str) -> None:
        """Close the cart as `order_id` (idempotent for the same order); the next add starts a new cart."""
        order_id = validated(MarkCheckedOut(order_id)).order_id
        if not plausible_cart_id(cart_id):
            raise cart_not_found(cart_id)
        repository = self.repository
        async with repository.db.transaction() as tx:
            closed = await repository.mark_checked_out(tx, cart_id, order_id, self._now())
            if closed is None:
                cart = await repository.lock(tx, cart_id)
                if cart is None:
                    raise cart_not_found(cart_id)
                if cart.status == "checked_out" and cart.order_id == order_id:
                    return
                if cart.status == "checked_out":
                    raise already_checked_out(cart_id)
                raise cart_closed(cart)
            event = CartCheckedOut(cart_id=cart_id, order_id=order_id, account_id=closed.account_id)
            await add_to_outbox(tx, SCHEMA, TOPIC_CART_CHECKED_OUT, event)
        if self._outbox_written is not None:
            self._outbox_written()

    async def close_for_order(self, tx: Executor, cart_id: str, order_id: str) -> None:
        """Close the cart an order was placed from, inside the caller's unit of work (the inbox's)."""
        closed = await self.repository.mark_checked_out(tx, cart_id, order_id, self._now())
        if closed is None:
            # Already closed (by an earlier delivery, or by `mark_checked_out`): nothing to do.
            return
        event = CartCheckedOut(cart_id=cart_id, order_id=order_id, account_id=closed.account_id)
        await add_to_outbox(tx, SCHEMA, TOPIC_CART_CHECKED_OUT, event)
        if self._outbox_written is not None:
            self._outbox_written()

    # --- the parts ----------------------------------------------------------------------------------

    async def _visible(self, cart_id: str, account_id: str | None) -> tuple[StoredCart, list[StoredLine]]:
        found = await self.repository.cart_with_lines(cart_id) if plausible_cart_id(cart_id) else None
        if found is None or not found[0].visible_to(account_id):
            raise cart_not_found(cart_id)
        return found

    async def _claim(self, tx: Executor, cart_id: str, account_id: str | None) -> StoredCart:
        """The open cart the caller may change, locked; 404 for unknown or foreign, 409 for closed."""
        if not plausible_cart_id(cart_id):
            raise cart_not_found(cart_id)
        repository = self.repository
        cart = await repository.claim_open(tx, cart_id, account_id, self._now())
        if cart is not None:
            return cart
        cart = await repository.lock(tx, cart_id)
        if cart is None or not cart.visible_to(account_id):
            raise cart_not_found(cart_id)
        raise cart_closed(cart)

    async def _cart_to_add_to(
        self, tx: Executor, cart_id: str | None, account_id: str | None, now: float
    ) -> tuple[StoredCart, bool]:
        """The cart an add goes to, locked, and whether it was made just now."""
        repository = self.repository
        if cart_id is not None:
            if not plausible_cart_id(cart_id):
                raise cart_not_found(cart_id)
            cart = await repository.claim_open(tx, cart_id, account_id, now)
            if cart is not None:
                return cart, False
            closed = await repository.lock(tx, cart_id)
            if closed is None or not closed.visible_to(account_id):
                raise cart_not_found(cart_id)
            # A closed cart takes no more lines: the add starts the shopper's next cart.
        if account_id is not None:
            return await repository.claim_account_cart(tx, account_id, new_cart_id(), now), False
        return await repository.insert_anonymous_cart(tx, new_cart_id(), now), True

    async def _merged_into_account(self, tx: Executor, source: StoredCart, account_id: str) -> bool:
        if source.merged_into is None:
            return False
        target = await self.repository.lock(tx, source.merged_into)
        return target is not None and target.account_id == account_id

    async def _price_one(self, sku_id: str) -> SkuPrice:
        try:
            (price,) = await self._catalog.price_skus([sku_id])
        except Problem as problem:
            if problem.status == 404:
                raise unknown_sku(sku_id) from problem
            raise
        return price

    async def _prices_strict(self, sku_ids: list[str]) -> dict[str, SkuPrice]:
        try:
            return {price.sku_id: price for price in await self._catalog.price_skus(sku_ids)}
        except Problem as problem:
            missing = problem_extra(problem, "sku_ids")
            if problem.status == 404 and missing:
                raise unknown_sku(missing[0]) from problem
            raise

    async def _prices(self, sku_ids: list[str]) -> dict[str, SkuPrice]:
        """Today's prices; SKUs the catalog no longer knows are left out rather than failing the read."""
        wanted = list(sku_ids)
        while wanted:
            try:
                return {price.sku_id: price for price in await self._catalog.price_skus(wanted)}
            except Problem as problem:
                missing = set(problem_extra(problem, "sku_ids"))
                if problem.status != 404 or not missing & set(wanted):
                    raise
                log.warning("cart_skus_gone", sku_ids=sorted(missing))
                wanted = [sku for sku in wanted if sku not in missing]
        return {}

    async def _priced(
        self,
        cart: StoredCart,
        lines: Iterable[StoredLine],
        known: Mapping[str, SkuPrice] | None = None,
    ) -> Cart:
        lines = list(lines)
        prices = dict(known or {})
        unpriced = [line.sku_id for line in lines if line.sku_id not in prices]
        if unpriced:
            prices.update(await self._prices(unpriced))
        return priced(cart, lines, prices, self.settings.default_currency)
