"""Durations, the four burn-rate tiers and the maths that ties them to an SLO period."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus-style duration with one unit, e.g. `30d`; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 5m, 6h, 30d or 4w")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest single-unit form when there is one (`30d`, `90m`), else days and hours (`2d2h`)."""
    for unit in ("d", "h", "m", "s"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def format_span(seconds: float) -> str:
    """A human span rounded to the minute, largest units first: `2d2h`, `5d`, `1h30m`."""
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value]
    return "".join(parts) or "0m"


@dataclass(frozen=True)
class Tier:
    """One multiwindow burn-rate alert: page or ticket when `budget_fraction` burns in `long`."""

    name: str
    severity: str
    budget_fraction: float
    long: int
    short: int

    def factor(self, period: int) -> float:
        """Burn rate that spends `budget_fraction` of a `period` budget in the long window.

        A burn of 1 spends the whole budget in exactly one period, so spending the fraction f within
        a window w takes f * period / w. For 30d this gives the Workbook's 14.4, 6, 3 and 1; for
        other periods the consumed fraction stays the same and the factor moves.
        """
        return round(self.budget_fraction * period / self.long, 6)

    def exhaustion(self) -> str:
        """Time to spend the whole budget at this tier's burn: long / fraction, whatever the period."""
        return format_span(self.long / self.budget_fraction)

    @property
    def long_name(self) -> str:
        return format_duration(self.long)

    @property
    def short_name(self) -> str:
        return format_duration(self.short)


# Workbook table 5-8 plus its 24h/2h ticket pair (Sloth's google-30d catalogue). The short window
# is a twelfth of the long one, so an alert resets soon after the burn stops.
TIERS: tuple[Tier, ...] = (
    Tier("page_fast", "page", 0.02, 3600, 300),
    Tier("page_slow", "page", 0.05, 6 * 3600, 1800),
    Tier("ticket_fast", "ticket", 0.10, 86400, 2 * 3600),
    Tier("ticket_slow", "ticket", 0.10, 3 * 86400, 6 * 3600),
)
TIER_NAMES: tuple[str, ...] = tuple(tier.name for tier in TIERS)

# Every window a rule is recorded for, shortest first: Sloth's set.
ALERT_WINDOWS: tuple[int, ...] = tuple(sorted({w for tier in TIERS for w in (tier.long, tier.short)}))


def tier_named(name: str) -> Tier:
    return next(tier for tier in TIERS if tier.name == name)
