"""When each journey starts: the open (arrival-rate) model's schedule, computed before the run.

The rate within a stage is linear, r(t) = a + (b - a) t / D, so the expected number of starts by
time t is the area under it, a t + (b - a) t² / 2D. Arrivals are laid out in that "area" space
(at 0.5, 1.5, 2.5, ... for evenly spaced starts; at the partial sums of unit exponentials for a
Poisson process) and mapped back to time by inverting the area, which is what makes a ramp's
starts bunch up correctly towards its high end. The same seed always gives the same schedule, so
every worker of a distributed run computes it alike and takes its own share.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from peakshop.rehearsal.profile import Stage


@dataclass(frozen=True)
class Arrival:
    index: int
    at: float
    """Seconds from the start of the run at which the journey is meant to start."""
    journey: str


def rate_at(stages: Sequence[Stage], t: float) -> float:
    """The intended arrival rate (journeys/s) at `t` seconds into the run; 0 after the last stage."""
    offset = 0.0
    for stage in stages:
        if t < offset + stage.duration_s:
            into = max(0.0, t - offset)
            return stage.start_rate + (stage.end_rate - stage.start_rate) * into / stage.duration_s
        offset += stage.duration_s
    return 0.0


def expected_arrivals(stages: Sequence[Stage]) -> float:
    return sum(stage.journeys for stage in stages)


def stage_at(stages: Sequence[Stage], t: float) -> str:
    offset = 0.0
    for stage in stages:
        offset += stage.duration_s
        if t < offset:
            return stage.name
    return stages[-1].name if stages else ""


def _time_within(stage: Stage, area: float) -> float:
    """Inverse of the area under the stage's rate: the time at which `area` starts are due."""
    a = stage.start_rate
    c = (stage.end_rate - stage.start_rate) / (2 * stage.duration_s)
    # a t + c t² = area, solved in the form that stays exact when c is 0 or negative.
    root = math.sqrt(max(0.0, a * a + 4 * c * area))
    if a + root == 0:
        return 0.0
    return min(stage.duration_s, 2 * area / (a + root))


def arrival_times(stages: Sequence[Stage], *, process: str = "poisson", seed: int = 0) -> Iterator[float]:
    """Intended start times in seconds from the beginning, ascending."""
    rng = random.Random(seed)

    def targets() -> Iterator[float]:
        area = 0.0 if process == "poisson" else -0.5
        while True:
            area += rng.expovariate(1.0) if process == "poisson" else 1.0
            yield area

    offset = 0.0
    passed = 0.0  # the area of the stages already behind
    upcoming = targets()
    target = next(upcoming)
    for stage in stages:
        end = passed + stage.journeys
        while target < end:
            yield offset + _time_within(stage, target - passed)
            target = next(upcoming)
        passed = end
        offset += stage.duration_s


def arrivals(
    stages: Sequence[Stage], weights: dict[str, float], *, process: str = "poisson", seed: int = 0
) -> Iterator[Arrival]:
    """The schedule: each start's time and the journey it runs, drawn from the weights."""
    names = sorted(weights)
    cumulative = []
    total = 0.0
    for name in names:
        total += weights[name]
        cumulative.append(total)
    pick = random.Random(seed ^ 0x5EED)
    from bisect import bisect_right

    for index, at in enumerate(arrival_times(stages, process=process, seed=seed)):
        chosen = names[min(len(names) - 1, bisect_right(cumulative, pick.random() * total))]
        yield Arrival(index, at, chosen)
