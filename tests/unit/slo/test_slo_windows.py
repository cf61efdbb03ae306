import pytest

from peakshop.slo.windows import TIERS, format_span, parse_duration, tier_named

DAY = 86400


@pytest.mark.parametrize(
    ("period", "factors"),
    [
        (30 * DAY, [14.4, 6, 3, 1]),
        # 28d and 7d keep the consumed budget fraction: factor = fraction * period / long window.
        (28 * DAY, [13.44, 5.6, 2.8, 0.933333]),
        (7 * DAY, [3.36, 1.4, 0.7, 0.233333]),
    ],
)
def test_burn_factors_keep_the_budget_fraction_for_every_period(period, factors):
    assert [tier.factor(period) for tier in TIERS] == pytest.approx(factors, abs=1e-6)


def test_the_windows_are_the_workbook_ones():
    assert [(t.name, t.long_name, t.short_name) for t in TIERS] == [
        ("page_fast", "1h", "5m"),
        ("page_slow", "6h", "30m"),
        ("ticket_fast", "1d", "2h"),
        ("ticket_slow", "3d", "6h"),
    ]


def test_exhaustion_is_the_time_to_spend_the_whole_budget_at_the_tier_burn():
    assert [t.exhaustion() for t in TIERS] == ["2d2h", "5d", "10d", "30d"]
    assert tier_named("page_fast").factor(30 * DAY) * 50 * 3600 == pytest.approx(30 * DAY)


def test_durations_parse_and_print():
    assert parse_duration("30d") == 30 * DAY
    assert parse_duration("4w") == 28 * DAY
    assert format_span(90 * 60) == "1h30m"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1M")
