"""What the load generator observed, kept as mergeable per-second tallies and latency histograms.

Raw samples would grow with the run (millions of rows in a soak); tallies stay small and add up
across distributed workers. Latency goes into logarithmic buckets 2% wide, so a percentile read
from them is within about 1% of the exact value; slow-request counts per SLO threshold are exact.

Request kinds: `ok` (2xx/3xx), `business` (sold out, over the purchase limit, payment declined:
the shop's correct answer), `shed` (429: admission control turned the request away), `client`
(other 4xx: a broken journey or a broken contract), `server` (5xx) and `transport` (no answer at
all: refused, reset or timed out), which counts as a server error.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

KINDS = ("ok", "business", "shed", "client", "server", "transport")
ERROR_KINDS = ("server", "transport")
# Latency thresholds (seconds) at which slow requests are counted exactly: every SLO threshold the
# shop uses is among them, so `peakshop slo report --rehearsal` need not guess from percentiles.
THRESHOLDS_S = (0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)

_GROWTH = 1.02
_SCALE = 1 / math.log(_GROWTH)


def bucket_of(ms: float) -> int:
    return 0 if ms < 1.0 else 1 + int(math.log(ms) * _SCALE)


def bucket_value(bucket: int) -> float:
    """The midpoint (in ms) of a bucket."""
    if bucket <= 0:
        return 0.5
    low = math.exp((bucket - 1) / _SCALE)
    return low * (1 + _GROWTH) / 2


class Histogram:
    """Counts of latencies by logarithmic bucket; mergeable by addition."""

    __slots__ = ("counts", "max_ms", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = defaultdict(int)
        self.total = 0
        self.max_ms = 0.0

    def add(self, ms: float, count: int = 1) -> None:
        self.counts[bucket_of(ms)] += count
        self.total += count
        if ms > self.max_ms:
            self.max_ms = ms

    def merge(self, other: Histogram) -> None:
        for bucket, count in other.counts.items():
            self.counts[bucket] += count
        self.total += other.total
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) in ms, or None without samples."""
        if self.total == 0:
            return None
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return min(bucket_value(bucket), self.max_ms)
        return self.max_ms

    def to_json(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items() if v}, "max_ms": self.max_ms}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Histogram:
        histogram = cls()
        for key, count in raw.get("counts", {}).items():
            histogram.counts[int(key)] += int(count)
            histogram.total += int(count)
        histogram.max_ms = float(raw.get("max_ms", 0.0))
        return histogram


class Tally:
    """Requests by kind, their latency, and exact counts over each threshold."""

    __slots__ = ("kinds", "latency", "over")

    def __init__(self) -> None:
        self.kinds: dict[str, int] = defaultdict(int)
        self.latency = Histogram()
        self.over: dict[float, int] = defaultdict(int)

    @property
    def requests(self) -> int:
        return sum(self.kinds.values())

    @property
    def errors_5xx(self) -> int:
        return sum(self.kinds[k] for k in ERROR_KINDS)

    def add(self, kind: str, ms: float) -> None:
        self.kinds[kind] += 1
        self.latency.add(ms)
        seconds = ms / 1000
        for threshold in THRESHOLDS_S:
            if seconds <= threshold:
                break
            self.over[threshold] += 1

    def merge(self, other: Tally) -> None:
        for kind, count in other.kinds.items():
            self.kinds[kind] += count
        self.latency.merge(other.latency)
        for threshold, count in other.over.items():
            self.over[threshold] += count

    def to_json(self) -> dict[str, Any]:
        return {
            "kinds": dict(self.kinds),
            "latency": self.latency.to_json(),
            "over": {repr(k): v for k, v in self.over.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Tally:
        tally = cls()
        for kind, count in raw.get("kinds", {}).items():
            tally.kinds[kind] += int(count)
        tally.latency = Histogram.from_json(raw.get("latency", {}))
        for key, count in raw.get("over", {}).items():
            tally.over[float(key)] += int(count)
        return tally


class Second:
    """One second of the run: starts by outcome, journeys in flight, and requests completed."""

    __slots__ = ("dropped", "in_flight_max", "late", "requests", "scheduled", "started", "user_seconds")

    def __init__(self) -> None:
        self.scheduled = 0
        self.started = 0
        self.late = 0
        self.dropped = 0
        self.user_seconds = 0.0  # journeys in flight, integrated over the second
        self.in_flight_max = 0  # the most journeys seen in flight at once (sampled)
        self.requests = Tally()

    def merge(self, other: Second) -> None:
        self.scheduled += other.scheduled
        self.started += other.started
        self.late += other.late
        self.dropped += other.dropped
        self.user_seconds += other.user_seconds
        # Workers' peaks may not coincide; their sum bounds the whole run's peak from above.
        self.in_flight_max += other.in_flight_max
        self.requests.merge(other.requests)

    def to_json(self) -> dict[str, Any]:
        return {
            "scheduled": self.scheduled,
            "started": self.started,
            "late": self.late,
            "dropped": self.dropped,
            "user_seconds": round(self.user_seconds, 4),
            "in_flight_max": self.in_flight_max,
            "requests": self.requests.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Second:
        second = cls()
        second.scheduled = int(raw.get("scheduled", 0))
        second.started = int(raw.get("started", 0))
        second.late = int(raw.get("late", 0))
        second.dropped = int(raw.get("dropped", 0))
        second.user_seconds = float(raw.get("user_seconds", 0.0))
        second.in_flight_max = int(raw.get("in_flight_max", 0))
        second.requests = Tally.from_json(raw.get("requests", {}))
        return second


class Recorder:
    """Everything one generator process (or, merged, the whole run) observed.

    Times are seconds from the run's common start. A worker `export()`s what it gathered since its
    last export and the master `absorb()`s it, so nothing is counted twice.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.seconds: dict[int, Second] = defaultdict(Second)
        self.steps: dict[tuple[str, str], Tally] = defaultdict(Tally)
        self.outcomes: dict[str, int] = defaultdict(int)
        self.abandoned = 0

    # --- recording (hot path) ---------------------------------------------------------------------

    def arrival(self, at: float, outcome: str) -> None:
        """A start that was due at `at`: `started`, `late` (started, but behind) or `dropped`."""
        second = self.seconds[int(at)]
        second.scheduled += 1
        if outcome == "dropped":
            second.dropped += 1
        else:
            second.started += 1
            if outcome == "late":
                second.late += 1

    def request(self, journey: str, step: str, ended: float, ms: float, kind: str) -> None:
        self.seconds[int(ended)].requests.add(kind, ms)
        self.steps[(journey, step)].add(kind, ms)

    def journey_span(self, started: float, ended: float) -> None:
        """A journey was in flight from `started` to `ended`: its share of each second's user count."""
        at = started
        while at < ended:
            boundary = min(ended, int(at) + 1.0)
            self.seconds[int(at)].user_seconds += boundary - at
            at = boundary

    def in_flight(self, at: float, journeys: int) -> None:
        second = self.seconds[int(at)]
        if journeys > second.in_flight_max:
            second.in_flight_max = journeys

    def outcome(self, name: str) -> None:
        """A business outcome worth counting: `order_confirmed`, `sold_out`, `payment_declined`, ..."""
        self.outcomes[name] += 1

    # --- moving and merging -----------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """What was recorded since the last export, as JSON; this recorder starts afresh."""
        data = self.to_json()
        self._reset()
        return data

    def absorb(self, raw: Mapping[str, Any]) -> None:
        for key, second in raw.get("seconds", {}).items():
            self.seconds[int(key)].merge(Second.from_json(second))
        for entry in raw.get("steps", []):
            self.steps[(entry["journey"], entry["step"])].merge(Tally.from_json(entry["tally"]))
        for name, count in raw.get("outcomes", {}).items():
            self.outcomes[name] += int(count)
        self.abandoned += int(raw.get("abandoned", 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": {str(k): v.to_json() for k, v in sorted(self.seconds.items())},
            "steps": [
                {"journey": journey, "step": step, "tally": tally.to_json()}
                for (journey, step), tally in sorted(self.steps.items())
            ],
            "outcomes": dict(self.outcomes),
            "abandoned": self.abandoned,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Recorder:
        recorder = cls()
        recorder.absorb(raw)
        return recorder

    # --- reading ----------------------------------------------------------------------------------

    def journeys(self) -> dict[str, Tally]:
        by_journey: dict[str, Tally] = defaultdict(Tally)
        for (journey, _step), tally in self.steps.items():
            by_journey[journey].merge(tally)
        return dict(by_journey)

    def total(self) -> Tally:
        return merged(self.steps.values())

    def window(self, end: int, length: int) -> Second:
        """The seconds [end - length, end) added together."""
        total = Second()
        for key in range(end - length, end):
            if key in self.seconds:
                total.merge(self.seconds[key])
        return total


def merged(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total
