"""The payments service's settings (`PEAKSHOP_PAYMENTS_*`), validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from peakshop.platform.settings import SettingsError, from_env


class PaymentsSettings(msgspec.Struct, kw_only=True, frozen=True):
    """The gateway to use, how long to wait for it, and the sandbox's behaviour.

    The sandbox knobs let a rehearsal make the provider slow or flaky: each call sleeps
    `latency_ms` ± `latency_jitter_ms` (uniform), and a new `tok_visa` authorisation is declined,
    timed out or failed with the given probabilities, drawn from an RNG seeded with `sandbox_seed`.
    """

    gateway: Literal["sandbox"] = "sandbox"
    # The longest the service waits for one gateway call before treating it as a timeout.
    gateway_timeout_seconds: float = 10.0
    # Retry-After of the 503 `payment-pending` and `payment-provider-timeout` problems.
    retry_after_seconds: int = 2
    webhook_tolerance_seconds: int = 300
    sandbox_latency_ms: float = 0.0
    sandbox_latency_jitter_ms: float = 0.0
    sandbox_decline_rate: float = 0.0
    sandbox_timeout_rate: float = 0.0
    sandbox_error_rate: float = 0.0
    sandbox_seed: int = 42
    # How often the sandbox delivers its pending webhooks to the service.
    sandbox_webhook_interval_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.gateway_timeout_seconds <= 0:
            raise SettingsError("PEAKSHOP_PAYMENTS_GATEWAY_TIMEOUT_SECONDS must be positive")
        if self.retry_after_seconds < 1:
            raise SettingsError("PEAKSHOP_PAYMENTS_RETRY_AFTER_SECONDS must be at least 1")
        if not 1 <= self.webhook_tolerance_seconds <= 3600:
            raise SettingsError("PEAKSHOP_PAYMENTS_WEBHOOK_TOLERANCE_SECONDS must be between 1 and 3600")
        if self.sandbox_latency_ms < 0 or self.sandbox_latency_jitter_ms < 0:
            raise SettingsError("PEAKSHOP_PAYMENTS_SANDBOX_LATENCY_MS and _JITTER_MS must not be negative")
        if self.sandbox_webhook_interval_seconds <= 0:
            raise SettingsError("PEAKSHOP_PAYMENTS_SANDBOX_WEBHOOK_INTERVAL_SECONDS must be positive")
        rates = {
            "DECLINE_RATE": self.sandbox_decline_rate,
            "TIMEOUT_RATE": self.sandbox_timeout_rate,
            "ERROR_RATE": self.sandbox_error_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise SettingsError(f"PEAKSHOP_PAYMENTS_SANDBOX_{name} must be between 0 and 1")
        # One draw decides among the three, so together they cannot exceed certainty.
        if sum(rates.values()) > 1.0 + 1e-9:
            raise SettingsError("the PEAKSHOP_PAYMENTS_SANDBOX_*_RATE settings must add up to at most 1")


def load_payments_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> PaymentsSettings:
    return from_env(PaymentsSettings, "PEAKSHOP_PAYMENTS_", environ, **overrides)
