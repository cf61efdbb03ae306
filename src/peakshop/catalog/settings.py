"""The catalog's own settings (`PEAKSHOP_CATALOG_*`), validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from peakshop.platform.settings import SettingsError, from_env


class CatalogSettings(msgspec.Struct, kw_only=True, frozen=True):
    cache_ttl: int = 30
    """Seconds a read document stays in the cache; also the `max-age` clients are told."""
    relay_interval: float = 1.0
    """Seconds between outbox polls when nothing wakes the relay sooner."""
    import_batch: int = 1_000
    """Products per transaction when importing or seeding."""

    def __post_init__(self) -> None:
        if not 1 <= self.cache_ttl <= 86_400:
            raise SettingsError("PEAKSHOP_CATALOG_CACHE_TTL must be between 1 and 86400 seconds")
        if not 0.01 <= self.relay_interval <= 60:
            raise SettingsError("PEAKSHOP_CATALOG_RELAY_INTERVAL must be between 0.01 and 60 seconds")
        if not 1 <= self.import_batch <= 50_000:
            raise SettingsError("PEAKSHOP_CATALOG_IMPORT_BATCH must be between 1 and 50000")


def load_catalog_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> CatalogSettings:
    return from_env(CatalogSettings, "PEAKSHOP_CATALOG_", environ, **overrides)
