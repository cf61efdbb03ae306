"""Profiles: the shipped ones are sound, and a broken one is refused naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakshop.rehearsal.profile import BUILTIN, ProfileError, load_profile, parse_profile
from peakshop.rehearsal.schedule import rate_at

GOOD = """
stages:
  - {name: steady, duration_s: 10, arrival_rate: 2}
journeys: {browse: 1}
slo: {max_error_ratio_5xx: 0.0001}
"""


@pytest.mark.parametrize("name", BUILTIN)
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.duration_s > 0
    assert profile.slo.max_error_ratio_5xx == 0.0001


def test_black_friday_ramps_to_five_times_baseline_then_spikes_above_it() -> None:
    profile = load_profile("black-friday")
    stages = list(profile.stages)
    baseline = rate_at(stages, 1)
    rates = [rate_at(stages, t) for t in range(int(profile.duration_s))]
    assert max(rates) > 5 * baseline
    hold = next(s for s in stages if s.name == "hold 5x")
    assert hold.start_rate == hold.end_rate == 5 * baseline
    assert stages[-1].end_rate == baseline


def test_flash_sale_reaches_ten_times_baseline_within_a_minute_on_one_limited_sku() -> None:
    profile = load_profile("flash-sale")
    stages = list(profile.stages)
    baseline = rate_at(stages, 1)
    first_at_peak = next(t for t in range(int(profile.duration_s)) if rate_at(stages, t) >= 10 * baseline)
    start_of_rise = stages[0].duration_s
    assert first_at_peak - start_of_rise <= 60
    assert profile.flash_sale is not None and profile.flash_sale.per_customer_limit == 1
    assert max(profile.journeys, key=profile.journeys.__getitem__) == "flash_sale"


def test_a_minimal_profile_gets_defaults() -> None:
    profile = parse_profile(GOOD, "mini.yaml")
    assert profile.name == "mini"
    assert profile.payments == {"tok_visa": 1}
    assert profile.arrivals == "poisson"


def test_time_scale_shortens_every_stage_and_keeps_the_rates() -> None:
    profile = load_profile("black-friday")
    scaled = profile.scaled(0.1)
    assert scaled.duration_s == pytest.approx(profile.duration_s / 10)
    assert [s.start_rate for s in scaled.stages] == [s.start_rate for s in profile.stages]
    with pytest.raises(ProfileError, match="time-scale"):
        profile.scaled(0)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (GOOD.replace("journeys:", "jorneys: {}\njourneys:"), "(top level).jorneys", "unknown field"),
        (GOOD.replace("arrival_rate: 2", "arrival_rate: -1"), "stages[0].arrival_rate", "at least 0"),
        (GOOD.replace("arrival_rate: 2", "arrival_rate: fast"), "stages[0].arrival_rate", "must be a number"),
        (GOOD.replace("arrival_rate: 2", "arrival_rate: 2, from: 1"), "stages[0]", "not both"),
        (GOOD.replace("duration_s: 10, ", ""), "stages[0].duration_s", "required field is missing"),
        (GOOD.replace("browse: 1", "browse: 1, flash_sale: 1"), "flash_sale", "required when"),
        (GOOD.replace("0.0001}", "0.0001, p99_ms: {checkuot: 5}}"), "slo.p99_ms.checkuot", "unknown field"),
        (
            GOOD.replace("max_error_ratio_5xx: 0.0001", "max_error_ratio_5xx: 2"),
            "slo.max_error_ratio_5xx",
            "at most 1",
        ),
        (GOOD + "payments: {visa: 1}\n", "payments.visa", "sandbox payment token"),
        (
            GOOD.replace("slo: {max_error_ratio_5xx: 0.0001}", ""),
            "(top level).slo",
            "required field is missing",
        ),
    ],
)
def test_a_broken_profile_is_refused_naming_file_field_and_problem(
    text: str, field: str, problem: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "profiles/mine.yaml")
    message = str(caught.value)
    assert f"profiles/mine.yaml: {field}: " in message
    assert problem in message


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("arrival_rate: 2", "arrival_rate: -1").replace("browse: 1", "brwose: 1")
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "x.yaml")
    assert len(str(caught.value).splitlines()) == 2


def test_an_unknown_profile_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="shipped profiles: smoke"):
        load_profile("black-fryday")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(str(bad))
