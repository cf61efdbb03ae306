"""The cart service's own settings (`PEAKSHOP_CART_*`), validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from peakshop.contracts.cart import MAX_REQUESTED_QUANTITY
from peakshop.platform.settings import SettingsError, from_env


class CartSettings(msgspec.Struct, kw_only=True, frozen=True):
    max_line_quantity: int = 10
    """Units of one SKU a cart may hold; more is a 409 `cart-limit` (merges cap at it instead)."""
    max_lines: int = 50
    """Different SKUs a cart may hold."""
    default_currency: str = "USD"
    """The currency an empty cart shows; a cart with lines shows theirs."""
    relay_interval: float = 1.0
    """Seconds between outbox polls when nothing wakes the relay sooner."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_line_quantity <= MAX_REQUESTED_QUANTITY:
            raise SettingsError(
                f"PEAKSHOP_CART_MAX_LINE_QUANTITY must be between 1 and {MAX_REQUESTED_QUANTITY}"
            )
        # The catalog prices at most 500 SKUs per request; a cart is priced in one.
        if not 1 <= self.max_lines <= 500:
            raise SettingsError("PEAKSHOP_CART_MAX_LINES must be between 1 and 500")
        if len(self.default_currency) != 3 or not self.default_currency.isupper():
            raise SettingsError("PEAKSHOP_CART_DEFAULT_CURRENCY must be an ISO 4217 code such as USD")
        if not 0.01 <= self.relay_interval <= 60:
            raise SettingsError("PEAKSHOP_CART_RELAY_INTERVAL must be between 0.01 and 60 seconds")


def load_cart_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> CartSettings:
    return from_env(CartSettings, "PEAKSHOP_CART_", environ, **overrides)
