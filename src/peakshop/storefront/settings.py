"""Storefront settings (`PEAKSHOP_STOREFRONT_*`)."""

from __future__ import annotations

import msgspec

from peakshop.platform.settings import SettingsError, from_env


class StorefrontSettings(msgspec.Struct, kw_only=True, frozen=True):
    max_age: int = 30  # Cache-Control max-age of catalog reads, seconds
    max_checkouts_in_flight: int = 1024  # per process; more get 429 with Retry-After

    def __post_init__(self) -> None:
        if not 0 <= self.max_age <= 86_400:
            raise SettingsError("PEAKSHOP_STOREFRONT_MAX_AGE must be between 0 and 86400")
        if self.max_checkouts_in_flight < 1:
            raise SettingsError("PEAKSHOP_STOREFRONT_MAX_CHECKOUTS_IN_FLIGHT must be at least 1")


def load_storefront_settings() -> StorefrontSettings:
    return from_env(StorefrontSettings, "PEAKSHOP_STOREFRONT_")
