"""The inventory service's settings (`PEAKSHOP_INVENTORY_*`), validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from peakshop.platform.settings import SettingsError, from_env


class InventorySettings(msgspec.Struct, kw_only=True, frozen=True):
    reservation_ttl_seconds: int = 600
    """How long a reservation holds its units when the caller does not say."""
    max_reservation_ttl_seconds: int = 86_400
    """The longest hold a caller may ask for."""
    sweep_interval_seconds: float = 5.0
    """Seconds between sweeps that expire due reservations."""
    sweep_batch_size: int = 500
    """Reservations expired per transaction, so a backlog never holds locks for long."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_reservation_ttl_seconds <= 7 * 86_400:
            raise SettingsError("PEAKSHOP_INVENTORY_MAX_RESERVATION_TTL_SECONDS must be between 1 and 604800")
        if not 1 <= self.reservation_ttl_seconds <= self.max_reservation_ttl_seconds:
            raise SettingsError(
                "PEAKSHOP_INVENTORY_RESERVATION_TTL_SECONDS must be between 1 and "
                "PEAKSHOP_INVENTORY_MAX_RESERVATION_TTL_SECONDS"
            )
        if not 0.01 <= self.sweep_interval_seconds <= 3_600:
            raise SettingsError("PEAKSHOP_INVENTORY_SWEEP_INTERVAL_SECONDS must be between 0.01 and 3600")
        if not 1 <= self.sweep_batch_size <= 10_000:
            raise SettingsError("PEAKSHOP_INVENTORY_SWEEP_BATCH_SIZE must be between 1 and 10000")


def load_inventory_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> InventorySettings:
    return from_env(InventorySettings, "PEAKSHOP_INVENTORY_", environ, **overrides)
