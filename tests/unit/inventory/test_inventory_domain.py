"""The plain-Python rules: line checks, limits, the audit's arithmetic, settings."""

from __future__ import annotations

import pytest

from peakshop.contracts.inventory import ReservationLine, ReserveStock
from peakshop.inventory.domain import SkuTally, merged_lines, over_limit
from peakshop.inventory.settings import load_inventory_settings
from peakshop.platform.settings import SettingsError

L = ReservationLine


def test_lines_are_merged_per_sku_and_sorted() -> None:
    request = ReserveStock("r1", None, [L("b", 1), L("a", 2), L("b", 3)])
    assert merged_lines(request) == [L("a", 2), L("b", 4)]


def test_the_limit_counts_what_the_customer_already_holds() -> None:
    lines = [L("a", 2), L("b", 1), L("c", 5)]
    assert over_limit(lines, {"a": 3, "b": 5}, {"a": 2}) == ["a"]


def test_a_balanced_sku_has_no_violations() -> None:
    assert SkuTally("a", 10, 5, 3, 2, active_lines=3, committed_lines=2).violations() == []


def test_an_unbalanced_sku_says_what_is_wrong() -> None:
    found = SkuTally("a", 10, -1, 3, 2, active_lines=2, committed_lines=2).violations()
    assert found == [
        "a: available is negative (-1)",
        "a: initial 10 != available -1 + reserved 3 + sold 2 (4)",
        "a: reserved 3 != active reservation lines 2",
    ]


def test_settings_come_from_the_environment_and_are_checked() -> None:
    settings = load_inventory_settings({"PEAKSHOP_INVENTORY_RESERVATION_TTL_SECONDS": "120"})
    assert (settings.reservation_ttl_seconds, settings.sweep_interval_seconds) == (120, 5.0)
    with pytest.raises(SettingsError, match="SWEEP_BATCH_SIZE"):
        load_inventory_settings({"PEAKSHOP_INVENTORY_SWEEP_BATCH_SIZE": "0"})
    with pytest.raises(SettingsError, match="RESERVATION_TTL_SECONDS"):
        load_inventory_settings({"PEAKSHOP_INVENTORY_RESERVATION_TTL_SECONDS": "999999"})
