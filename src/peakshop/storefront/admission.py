"""Admission control: a ceiling on checkouts in flight in this process.

A checkout holds a database transaction, a stock lock and a payment call; past a point, more of them
at once only make every one slower. Those over the ceiling are told at once to come back (429 with
Retry-After) instead of queueing until they time out, which keeps the ones admitted fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from peakshop.platform.metrics import Metrics
from peakshop.platform.problems import TooManyRequests


class Admission:
    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.in_flight = 0
        self._admitted = metrics.admissions.labels("admitted")
        self._rejected = metrics.admissions.labels("rejected")

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.limit:
            self._rejected.inc()
            raise TooManyRequests(
                f"the shop is taking {self.limit} checkouts at once; try again in a second",
                retry_after=1,
                slug="checkout-busy",
            )
        self.in_flight += 1
        self._admitted.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
