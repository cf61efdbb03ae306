"""The orders use cases: place an order (the checkout saga) and read an account's orders.

The saga, one step at a time, each step's outcome recorded before the next remote call:

1. record the attempt under its idempotency key with the server's prices (`started`);
2. reserve the stock with the order id as the reservation id (`reserved`);
3. authorise the payment with the order id as the payment's idempotency key;
4. commit the reservation, capture the payment, then confirm the order and write `OrderPlaced` to the
   outbox in one transaction (`confirmed`).

A definite refusal (sold out, declined, provider error) rolls back what was done and fails the order,
keeping the problem so that every repeat of the request gets the same answer. An unknown outcome (a
timeout, an unreachable service) fails nothing: the attempt stays unfinished and the reconciler, which
asks payments what really happened, finishes it one way or the other. No step runs inside a database
transaction, so a slow provider never holds a connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import structlog

from peakshop.contracts.cart import Cart
from peakshop.contracts.inventory import ReservationLine, ReserveStock
from peakshop.contracts.orders import (
    TOPIC_ORDER_FAILED,
    TOPIC_ORDER_PLACED,
    Order,
    OrderFailed,
    OrderLine,
    OrderPage,
    OrderPlaced,
    PlaceOrder,
)
from peakshop.contracts.payments import Authorize
from peakshop.orders.domain import (
    Attempt,
    Step,
    cart_being_ordered,
    cart_ordered,
    checked_account,
    checked_key,
    checked_limit,
    checkout_abandoned,
    checkout_interrupted,
    decode_cursor,
    encode_cursor,
    fingerprint,
    in_progress,
    key_reused,
    new_order_id,
    order_not_found,
    payment_cancelled,
    payment_pending,
    priced_lines,
    replayed_problem,
    reservation_lapsed,
    stored_problem,
    sum_of,
    validated,
)
from peakshop.orders.repository import OrdersRepository
from peakshop.orders.settings import OrdersSettings
from peakshop.platform.db import Database
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import Problem, Unavailable

if TYPE_CHECKING:  # services meet only through their clients, handed over by the composition root
    from peakshop.inventory.client import InventoryClient
    from peakshop.payments.client import PaymentsClient

log = structlog.get_logger("peakshop.orders")
Clock = Callable[[], float]
Crash = Callable[[str], None]


class CartForCheckout(Protocol):
    """The cart call a checkout makes; the cart service's clients provide it. (The cart closes itself
    when `orders.placed` reaches it: orders never calls the cart after pricing.)"""

    async def checkout_lines(self, cart_id: str, account_id: str) -> Cart: ...


def kill_process(step: str) -> None:
    """The crash hook's default: die at once, as a power cut would (no cleanup, no finally blocks)."""
    log.critical("crash_hook_fired", after=step)
    os.kill(os.getpid(), signal.SIGKILL)


def unknown_outcome(problem: Problem) -> bool:
    """True when the callee may or may not have acted: only asking again can tell."""
    if problem.slug == "payment-provider-error":  # payments says so: the provider failed before acting
        return False
    return problem.status >= 500 or problem.status in (408, 429)


class OrdersHandlers:
    """The use cases over one database (attached at start) and the clients of cart, inventory, payments."""

    def __init__(
        self,
        settings: OrdersSettings,
        metrics: Metrics,
        *,
        cart: CartForCheckout,
        inventory: InventoryClient,
        payments: PaymentsClient,
        database: Database | None = None,
        clock: Clock = time.time,
        outbox_written: Callable[[], None] | None = None,
        crash: Crash = kill_process,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self.cart = cart
        self.inventory = inventory
        self.payments = payments
        self._now = clock
        self._outbox_written = outbox_written
        self._crash = crash
        self._db: Database | None = None
        self._repository: OrdersRepository | None = None
        if database is not None:
            self.attach(database)

    def attach(self, database: Database) -> None:
        self._db = database
        self._repository = OrdersRepository(database)

    def detach(self) -> None:
        self._db = None
        self._repository = None

    @property
    def store(self) -> tuple[Database, OrdersRepository]:
        if self._db is None or self._repository is None:
            raise Unavailable("The orders service is not started.", service="orders")
        return self._db, self._repository

    def _crash_point(self, step: str) -> None:
        if self.settings.crash_after == step:
            self._crash(step)

    # --- place an order ---------------------------------------------------------------------------

    async def place_order(self, account_id: str, idempotency_key: str | None, request: PlaceOrder) -> Order:
        """Run the checkout once per key; a repeat with the same body gets the first outcome again."""
        started = time.perf_counter()
        outcome = "failed"
        try:
            order = await self._place(
                checked_account(account_id), checked_key(idempotency_key), validated(request)
            )
            outcome = order.status
            return order
        except Problem as problem:
            if unknown_outcome(problem) or problem.slug == "checkout-in-progress":
                outcome = "pending"
            raise
        finally:
            self._metrics.checkout_duration.labels(outcome).observe(time.perf_counter() - started)

    async def _place(self, account_id: str, key: str, request: PlaceOrder) -> Order:
        db, repository = self.store
        digest = fingerprint(request)
        try:
            cart = await self.cart.checkout_lines(request.cart_id, account_id)
            lines, currency = priced_lines(cart)
        except Problem:
            # A repeat of a placed order finds its cart checked out: the stored outcome answers it.
            existing = await repository.by_key(account_id, key)
            if existing is not None:
                return await self._replay(existing, digest)
            raise
        now = self._now()
        total = sum_of(lines)
        attempt = Attempt(
            id=new_order_id(),
            account_id=account_id,
            idempotency_key=key,
            fingerprint=digest,
            cart_id=request.cart_id,
            step="started",
            failure_reason=None,
            failure_problem=None,
            subtotal=total,
            total=total,
            currency=currency,
            item_count=sum(line.quantity for line in lines),
            shipping_address=request.shipping_address,
            created_at=now,
            updated_at=now,
        )
        async with db.one_statement() as tx:
            created = await repository.insert_attempt(tx, attempt, lines)
        if not created:
            existing = await repository.by_key(account_id, key)
            if existing is not None:
                return await self._replay(existing, digest)
            raise await self._cart_taken(request.cart_id, account_id)
        self._metrics.checkouts_started.inc()
        return await self._run(attempt, lines, request.payment_token)

    async def _cart_taken(self, cart_id: str, account_id: str) -> Problem:
        """Why the cart cannot be ordered under a new key: it has an order that has not failed.

        Two tabs, or a client that makes a key per click, must not buy one cart twice. The cart closes
        only when `orders.placed` reaches it, so orders keeps the rule itself, with a unique index.
        The other order is named only to its own buyer: an anonymous cart is anyone's who holds its
        id, and order ids are not confirmed to strangers.
        """
        _, repository = self.store
        live = await repository.live_order_of_cart(cart_id)
        theirs = live.id if live is not None and live.account_id == account_id else None
        if live is not None and live.step == "confirmed":
            return cart_ordered(cart_id, theirs)
        # Pending, or failed between the insert and this read (then the next try goes through).
        return cart_being_ordered(cart_id, theirs, self.settings.retry_after_seconds)

    async def _run(self, attempt: Attempt, lines: list[OrderLine], payment_token: str) -> Order:
        retry_after = self.settings.retry_after_seconds
        try:
            await self.inventory.reserve(
                ReserveStock(
                    reservation_id=attempt.id,
                    customer_id=attempt.account_id,
                    lines=[ReservationLine(line.sku_id, line.quantity) for line in lines],
                    ttl_seconds=self.settings.reservation_ttl_seconds,
                )
            )
        except Problem as problem:
            if unknown_outcome(problem):
                raise checkout_interrupted(attempt.id, retry_after, "inventory") from problem
            # A reservation is all or nothing: a refused one holds nothing to give back.
            await self.fail(attempt.id, problem)
            raise
        if not await self._advance(attempt.id, "reserved", ("started",)):
            return await self._outcome(attempt.id)
        self._crash_point("reserve")
        try:
            payment = await self.payments.authorize(
                Authorize(attempt.id, attempt.total, attempt.currency, payment_token)
            )
        except Problem as problem:
            if unknown_outcome(problem):
                # Never "failed" before the gateway was asked: the reconciler resolves it.
                raise payment_pending(attempt.id, retry_after) from problem
            if not await self.roll_back(attempt.id, problem):
                return await self._outcome(attempt.id)
            raise
        if payment.status not in ("authorized", "captured"):
            # Settled without money while this call travelled (a reconciler resolved it first).
            abandoned = checkout_abandoned(attempt.id)
            if not await self.roll_back(attempt.id, abandoned):
                return await self._outcome(attempt.id)
            raise abandoned
        self._crash_point("authorize")
        return await self.finish(attempt, lines)

    # --- the steps the saga and the reconciler share --------------------------------------------

    async def finish(self, attempt: Attempt, lines: list[OrderLine]) -> Order:
        """Payment authorised: sell the reserved units, take the money, confirm the order."""
        retry_after = self.settings.retry_after_seconds
        try:
            await self.inventory.commit(attempt.id)
        except Problem as problem:
            if problem.slug == "reservation-expired" or problem.status == 404:
                # The units may be someone else's by now: give the money back and fail the order.
                await self.give_back(attempt.id)
                lapsed = reservation_lapsed(attempt.id)
                await self.fail(attempt.id, lapsed)
                raise lapsed from problem
            await self._advance(attempt.id, "authorized", ("started", "reserved"))
            raise checkout_interrupted(attempt.id, retry_after, "inventory") from problem
        try:
            await self.payments.capture(attempt.id)
        except Problem as problem:
            await self._advance(attempt.id, "authorized", ("started", "reserved"))
            if unknown_outcome(problem):
                raise checkout_interrupted(attempt.id, retry_after, "payments") from problem
            # Not capturable (voided or refunded behind our back): no money, so no order, and the
            # units just sold go back on sale before the order fails (a crash in between leaves the
            # order unfinished, and the reconciler returns them and fails it).
            log.error("payment_not_capturable", order_id=attempt.id, problem=problem.slug)
            await self._return_sold(attempt.id)
            cancelled = payment_cancelled(attempt.id)
            await self.fail(attempt.id, cancelled)
            raise cancelled from problem
        confirmed_at = self._now()
        if not await self._confirm(attempt, lines, confirmed_at):
            current = await self._current(attempt.id)
            if current.step == "failed":
                # Captured, yet failed meanwhile by someone who could not know: return the money.
                log.error("captured_payment_for_failed_order", order_id=attempt.id)
                await self.give_back(attempt.id)
            return await self._answer(current)
        # The cart closes when the cart service takes `OrderPlaced` from the bus: off this path, and
        # certain to happen once the order is confirmed (the event commits with the confirmation).
        confirmed = dataclasses.replace(attempt, step="confirmed", updated_at=confirmed_at)
        return confirmed.order(lines)

    async def roll_back(self, order_id: str, problem: Problem) -> bool:
        """No money is held: give the stock back, then fail the order with `problem`.

        The units may turn out to be sold already. Only `finish` sells them, after an authorisation,
        so either a request thought lost (stalled past the reconciler's wait) has paid meanwhile and
        is confirming the order, or the provider cancelled the authorisation after the sale. Payments
        tells which: while the payment holds or may hold money this returns False and leaves the
        order as it is (failing it would keep its units sold to nobody); once it holds none, the units
        go back on sale and the order fails.
        """
        try:
            reservation = await self.inventory.release(order_id)
        except Problem as failure:
            if failure.status != 404:  # 404: nothing was reserved
                raise checkout_interrupted(
                    order_id, self.settings.retry_after_seconds, "inventory"
                ) from failure
        else:
            if reservation.status == "committed":
                if await self._may_hold_money(order_id):
                    log.warning("roll_back_found_units_sold", order_id=order_id)
                    return False
                await self._return_sold(order_id)
        await self.fail(order_id, problem)
        return True

    async def _may_hold_money(self, order_id: str) -> bool:
        try:
            payment = await self.payments.get(order_id)
        except Problem as problem:
            if unknown_outcome(problem):
                raise checkout_interrupted(
                    order_id, self.settings.retry_after_seconds, "payments"
                ) from problem
            raise
        return payment.status in ("pending", "authorized", "captured")

    async def _return_sold(self, order_id: str) -> None:
        """Put the order's sold units back on sale: its money is gone, so it will never be confirmed."""
        try:
            await self.inventory.return_sold(order_id)
        except Problem as problem:
            raise checkout_interrupted(order_id, self.settings.retry_after_seconds, "inventory") from problem

    async def give_back(self, order_id: str) -> None:
        """Void an authorisation, or refund a capture; nothing when the payment holds no money."""
        try:
            await self.payments.void(order_id)
        except Problem as problem:
            if problem.status == 404:
                return
            if problem.slug != "payment-not-voidable":
                raise checkout_interrupted(
                    order_id, self.settings.retry_after_seconds, "payments"
                ) from problem
            await self.payments.refund(order_id)

    async def fail(self, order_id: str, problem: Problem) -> bool:
        """Record the failure and its problem, with `OrderFailed`; False when already finished."""
        db, repository = self.store
        failed = Envelope.wrap(TOPIC_ORDER_FAILED, OrderFailed(order_id, problem.slug))
        async with db.one_statement() as tx:
            moved = await repository.fail(
                tx, order_id, self._now(), problem.slug, stored_problem(problem), failed
            )
        if moved:
            self._metrics.orders.labels("failed").inc()
            self._wake_relay()
            log.info("order_failed", order_id=order_id, reason=problem.slug)
        return moved

    async def _confirm(self, attempt: Attempt, lines: list[OrderLine], now: float) -> bool:
        db, repository = self.store
        placed = OrderPlaced(
            attempt.id, attempt.account_id, attempt.total, attempt.currency, lines, attempt.cart_id
        )
        async with db.one_statement() as tx:
            moved = await repository.confirm(tx, attempt.id, now, Envelope.wrap(TOPIC_ORDER_PLACED, placed))
        if moved:
            self._metrics.orders.labels("confirmed").inc()
            self._wake_relay()
            log.info("order_confirmed", order_id=attempt.id, total=attempt.total, currency=attempt.currency)
        return moved

    async def _advance(self, order_id: str, target: Step, sources: tuple[Step, ...]) -> bool:
        db, repository = self.store
        async with db.one_statement() as tx:
            return await repository.move(tx, order_id, target, self._now(), sources)

    def _wake_relay(self) -> None:
        if self._outbox_written is not None:
            self._outbox_written()

    # --- repeats of a key -------------------------------------------------------------------------

    async def _replay(self, existing: Attempt, digest: str) -> Order:
        if existing.fingerprint != digest:
            raise key_reused()
        if not existing.finished:
            existing = await self._wait_for(existing)
        return await self._answer(existing)

    async def _wait_for(self, attempt: Attempt) -> Attempt:
        """Poll an unfinished attempt with a short backoff, for at most the configured bound."""
        deadline = time.monotonic() + self.settings.in_progress_wait_seconds
        delay = 0.02
        while not attempt.finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise in_progress(attempt.id, self.settings.retry_after_seconds)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
            attempt = await self._current(attempt.id)
        return attempt

    async def _answer(self, attempt: Attempt) -> Order:
        """The stored outcome: the order when confirmed, its problem when failed."""
        if attempt.step == "failed":
            raise replayed_problem(attempt.failure_problem, attempt.failure_reason)
        if attempt.step != "confirmed":
            raise in_progress(attempt.id, self.settings.retry_after_seconds)
        _, repository = self.store
        return attempt.order(await repository.lines(attempt.id))

    async def _outcome(self, order_id: str) -> Order:
        """The answer for an attempt someone else has taken over: theirs, once they finish."""
        return await self._answer(await self._wait_for(await self._current(order_id)))

    async def _current(self, order_id: str) -> Attempt:
        _, repository = self.store
        attempt = await repository.get(order_id)
        if attempt is None:  # pragma: no cover - attempts are never deleted
            raise order_not_found(order_id)
        return attempt

    # --- reads ------------------------------------------------------------------------------------

    async def order(self, account_id: str, order_id: str) -> Order:
        _, repository = self.store
        attempt = await repository.get(order_id)
        if attempt is None or attempt.account_id != account_id:
            raise order_not_found(order_id)
        return attempt.order(await repository.lines(order_id))

    async def orders_of(self, account_id: str, limit: int = 20, cursor: str | None = None) -> OrderPage:
        """An account's orders, newest first (failed and pending ones too: they are its history)."""
        _, repository = self.store
        limit = checked_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        found = await repository.history(checked_account(account_id), limit + 1, before)
        page = found[:limit]
        more = len(found) > limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
        return OrderPage(items=[attempt.summary() for attempt in page], next_cursor=next_cursor)
