"""The reconciler: finishes every checkout a crash, a timeout or an outage left unfinished.

It asks payments before it decides anything, because payments (through the provider) is the only
record of whether money was taken: an authorised or captured payment drives the order forward (sell
the units, capture, confirm); a declined, failed or absent one rolls it back (release the units, fail
the order). An outcome still unknown is left for the next pass. Attempts are claimed with a lease (see
`OrdersRepository.claim_unfinished`), so several replicas share the work without doing it twice;
an attempt left unsettled is tried again after `reconcile_retry_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from peakshop.contracts.orders import ReconciledOrder, ReconcileOutcome
from peakshop.contracts.payments import AbandonPayment, Payment
from peakshop.orders.domain import Attempt, checkout_abandoned, payment_cancelled, payment_declined
from peakshop.orders.handlers import OrdersHandlers, unknown_outcome
from peakshop.platform.problems import Problem

log = structlog.get_logger("peakshop.orders.reconciler")


class Reconciler:
    def __init__(self, handlers: OrdersHandlers, clock: Callable[[], float]) -> None:
        self._handlers = handlers
        self._now = clock
        self._task: asyncio.Task[None] | None = None

    async def reconcile(self, older_than_seconds: float) -> list[ReconciledOrder]:
        """One pass over the attempts untouched for `older_than_seconds`; what became of each."""
        db, repository = self._handlers.store
        settings = self._handlers.settings
        now = self._now()
        async with db.transaction() as tx:
            claimed = await repository.claim_unfinished(
                tx,
                now - older_than_seconds,
                now,
                now + settings.reconcile_lease_seconds,
                settings.reconcile_batch_size,
            )
        report: list[ReconciledOrder] = []
        for attempt in claimed:
            try:
                outcome: ReconcileOutcome = await self._settle(attempt)
            except Exception:
                log.exception("reconcile_failed", order_id=attempt.id)
                outcome = "unsettled"
            if outcome == "unsettled":
                _, repository = self._handlers.store
                await repository.retry_claim_at(attempt.id, self._now() + settings.reconcile_retry_seconds)
            report.append(ReconciledOrder(attempt.id, outcome))
        if report:
            log.info("reconciled", orders=[(r.order_id, r.outcome) for r in report])
        return report

    async def _settle(self, attempt: Attempt) -> ReconcileOutcome:
        handlers = self._handlers
        try:
            payment = await self._payment(attempt)
        except Problem as problem:  # the provider is still unsure, or payments is away
            log.info("reconcile_payment_unknown", order_id=attempt.id, problem=problem.slug)
            return "unsettled"
        if payment.status == "pending":
            return "unsettled"
        try:
            if payment.status in ("authorized", "captured"):
                _, repository = handlers.store
                await handlers.finish(attempt, await repository.lines(attempt.id))
                return "confirmed"
            if payment.status == "declined":
                failure = payment_declined(attempt.id, payment.decline_reason)
            elif payment.status == "voided" and payment.gateway_reference is not None:
                # Authorised at the provider, then cancelled before the capture (by the provider, or
                # by hand): the buyer is told what the request itself would have said.
                failure = payment_cancelled(attempt.id)
            else:
                failure = checkout_abandoned(attempt.id)
            # Not rolled back: the request that was thought lost paid after all and is finishing.
            return "failed" if await handlers.roll_back(attempt.id, failure) else "unsettled"
        except Problem as problem:
            if unknown_outcome(problem):
                return "unsettled"
            # `finish` failed the order (reservation lapsed, payment no longer capturable).
            return "failed"

    async def _payment(self, attempt: Attempt) -> Payment:
        """The attempt's payment as the provider knows it; one settled as none if there is none yet.

        No payment means the request stopped before asking for money, or is still on its way to
        (stalled, not dead). Settling it as none before rolling back means a late authorisation finds
        it settled and takes no money, instead of holding money for an order that failed.
        """
        payments = self._handlers.payments
        try:
            return await payments.resolve(attempt.id)
        except Problem as problem:
            if problem.status != 404:
                raise
        return await payments.abandon(AbandonPayment(attempt.id, attempt.total, attempt.currency))

    async def _run(self, interval: float, older_than: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reconcile(older_than)
            except Exception:
                # The database is away; the attempts wait for the next pass.
                log.exception("reconcile_pass_failed")

    def start(self, interval: float, older_than: float) -> None:
        self._task = asyncio.create_task(self._run(interval, older_than), name="orders:reconciler")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
