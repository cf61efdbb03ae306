"""The orders service's settings (`PEAKSHOP_ORDERS_*`), validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from peakshop.platform.settings import SettingsError, from_env

CrashPoint = Literal["", "reserve", "authorize"]


class OrdersSettings(msgspec.Struct, kw_only=True, frozen=True):
    reservation_ttl_seconds: int = 900
    """How long a checkout's reservation holds its units: long enough for a slow payment to settle."""
    reconcile_interval_seconds: float = 15.0
    """Seconds between reconciler passes over unfinished checkouts."""
    reconcile_after_seconds: float = 60.0
    """How long an attempt must sit untouched before the reconciler takes it over. Keep it above the
    longest a live checkout can take (payments' gateway timeout and more), or the reconciler could
    roll back a checkout that is still running."""
    reconcile_lease_seconds: float = 120.0
    """How long a reconciler keeps an attempt it claimed from other replicas (and, when the payment's
    outcome is still unknown, from its own next passes)."""
    reconcile_retry_seconds: float = 10.0
    """When a pass could not settle an attempt because a service or the provider did not answer, how
    soon to try it again (shorter than the lease: an outage of seconds should not cost minutes)."""
    reconcile_batch_size: int = 100
    """Attempts one reconciler pass claims at most."""
    in_progress_wait_seconds: float = 10.0
    """How long a repeated request waits for the first one with its key before answering 409."""
    retry_after_seconds: int = 2
    """Retry-After of the 503 and 409 answers that ask the buyer to repeat the request."""
    crash_after: CrashPoint = ""
    """Test hook, never for production: kill this process with SIGKILL right after the named step
    (`reserve`: stock held and recorded; `authorize`: payment authorised), to prove that the
    reconciler finishes what a crash leaves. Empty (the default) turns it off."""

    def __post_init__(self) -> None:
        if not 60 <= self.reservation_ttl_seconds <= 86_400:
            raise SettingsError("PEAKSHOP_ORDERS_RESERVATION_TTL_SECONDS must be between 60 and 86400")
        if not 0.05 <= self.reconcile_interval_seconds <= 3_600:
            raise SettingsError("PEAKSHOP_ORDERS_RECONCILE_INTERVAL_SECONDS must be between 0.05 and 3600")
        if not 0 <= self.reconcile_after_seconds <= 86_400:
            raise SettingsError("PEAKSHOP_ORDERS_RECONCILE_AFTER_SECONDS must be between 0 and 86400")
        if self.reconcile_after_seconds >= self.reservation_ttl_seconds:
            raise SettingsError(
                "PEAKSHOP_ORDERS_RECONCILE_AFTER_SECONDS must be below "
                "PEAKSHOP_ORDERS_RESERVATION_TTL_SECONDS, or stuck checkouts lose their stock first"
            )
        if not 1 <= self.reconcile_lease_seconds <= 3_600:
            raise SettingsError("PEAKSHOP_ORDERS_RECONCILE_LEASE_SECONDS must be between 1 and 3600")
        if not 0.05 <= self.reconcile_retry_seconds <= self.reconcile_lease_seconds:
            raise SettingsError(
                "PEAKSHOP_ORDERS_RECONCILE_RETRY_SECONDS must be between 0.05 and the lease seconds"
            )
        if not 1 <= self.reconcile_batch_size <= 10_000:
            raise SettingsError("PEAKSHOP_ORDERS_RECONCILE_BATCH_SIZE must be between 1 and 10000")
        if not 0 <= self.in_progress_wait_seconds <= 30:
            raise SettingsError("PEAKSHOP_ORDERS_IN_PROGRESS_WAIT_SECONDS must be between 0 and 30")
        if not 1 <= self.retry_after_seconds <= 600:
            raise SettingsError("PEAKSHOP_ORDERS_RETRY_AFTER_SECONDS must be between 1 and 600")


def load_orders_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> OrdersSettings:
    return from_env(OrdersSettings, "PEAKSHOP_ORDERS_", environ, **overrides)
