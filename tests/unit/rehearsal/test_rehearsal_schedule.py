"""The open model's schedule: how many journeys start, when, and which."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from peakshop.rehearsal.profile import Stage
from peakshop.rehearsal.schedule import arrival_times, arrivals, expected_arrivals, rate_at, stage_at


def test_a_steady_stage_starts_its_rate_times_its_duration_evenly_spaced() -> None:
    times = list(arrival_times([Stage("steady", 10, 5, 5)], process="even"))
    assert len(times) == 50
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {0.2}
    assert times[0] == pytest.approx(0.1)


def test_a_ramp_starts_the_area_under_its_rate_bunched_towards_the_high_end() -> None:
    ramp = [Stage("ramp", 20, 0, 10)]
    times = list(arrival_times(ramp, process="even"))
    assert len(times) == pytest.approx(expected_arrivals(ramp), abs=1)
    first_half = sum(1 for t in times if t < 10)
    # The area under a ramp from 0 is a quarter of the total by half time.
    assert first_half == pytest.approx(len(times) / 4, abs=1)
    assert times == sorted(times)
    assert all(0 <= t <= 20 for t in times)


def test_a_downward_ramp_and_stage_boundaries_keep_their_counts() -> None:
    stages = [Stage("up", 10, 2, 6), Stage("hold", 5, 6, 6), Stage("down", 10, 6, 0)]
    times = list(arrival_times(stages, process="even"))
    assert len(times) == round(expected_arrivals(stages)) == 40 + 30 + 30
    assert sum(1 for t in times if 10 <= t < 15) == 30
    assert sum(1 for t in times if t >= 15) == 30


def test_poisson_arrivals_average_the_rate_and_repeat_with_the_seed() -> None:
    stages = [Stage("steady", 200, 20, 20)]
    times = list(arrival_times(stages, seed=3))
    expected = expected_arrivals(stages)
    assert abs(len(times) - expected) < 4 * expected**0.5
    assert times == list(arrival_times(stages, seed=3))
    assert times != list(arrival_times(stages, seed=4))


def test_a_time_scale_compresses_the_schedule_without_changing_the_rate() -> None:
    full = [Stage("ramp", 100, 2, 10)]
    compressed = [Stage("ramp", 10, 2, 10)]
    assert len(list(arrival_times(compressed, process="even"))) == pytest.approx(
        len(list(arrival_times(full, process="even"))) / 10, abs=1
    )
    assert rate_at(compressed, 5) == rate_at(full, 50) == 6


def test_rate_and_stage_at_a_time() -> None:
    stages = [Stage("base", 10, 5, 5), Stage("ramp", 10, 5, 25)]
    assert rate_at(stages, 0) == 5
    assert rate_at(stages, 15) == 15
    assert rate_at(stages, 25) == 0
    assert stage_at(stages, 12) == "ramp"


def test_journeys_are_drawn_by_weight_and_repeat_with_the_seed() -> None:
    stages = [Stage("steady", 100, 50, 50)]
    weights = {"browse": 3, "checkout": 1}
    chosen = [a.journey for a in arrivals(stages, weights, seed=9)]
    counts = Counter(chosen)
    assert counts["browse"] / len(chosen) == pytest.approx(0.75, abs=0.03)
    assert chosen == [a.journey for a in arrivals(stages, weights, seed=9)]
    assert [a.index for a in arrivals(stages[:1], weights, seed=9)][:3] == [0, 1, 2]
