"""Load profiles: stages of arrival rates, the journey mix, the flash sale, payments and the SLO gate.

A profile is a YAML file; the shipped ones live in `profiles/` and are meant to be copied and edited.
Every problem is reported with the file, the field path and what is wrong, all at once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

JOURNEYS = ("browse", "search", "product_page", "add_to_cart", "checkout", "flash_sale")
BUILTIN = ("smoke", "baseline", "black-friday", "flash-sale", "soak")
ARRIVAL_PROCESSES = ("poisson", "even")


class ProfileError(Exception):
    """A profile could not be read or is invalid; the message names file, field and problem."""


@dataclass(frozen=True)
class Stage:
    """A stretch of the run whose arrival rate (journeys/s) goes linearly from `start_rate` to `end_rate`."""

    name: str
    duration_s: float
    start_rate: float
    end_rate: float

    @property
    def journeys(self) -> float:
        """Expected journeys started in this stage (the area under the rate)."""
        return (self.start_rate + self.end_rate) / 2 * self.duration_s


@dataclass(frozen=True)
class FlashSale:
    quantity: int
    per_customer_limit: int | None


@dataclass(frozen=True)
class SLO:
    max_error_ratio_5xx: float
    max_dropped_starts_ratio: float
    p99_ms: dict[str, float] = field(default_factory=dict)
    p95_ms: dict[str, float] = field(default_factory=dict)
    max_error_ratio_4xx: float | None = None
    min_orders_confirmed: int | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    source: str
    description: str
    stages: tuple[Stage, ...]
    journeys: dict[str, float]
    slo: SLO
    payments: dict[str, float]
    flash_sale: FlashSale | None = None
    arrivals: str = "poisson"
    buyers: int = 20
    max_in_flight: int = 500
    late_tolerance_ms: float = 100.0
    request_timeout_s: float = 15.0
    think_time_s: float = 0.0
    """A shopper's pause between two steps of a journey, on average (each pause is drawn uniformly
    between half and one and a half times it). It is what makes journeys overlap as real visits do:
    concurrent users = arrival rate x journey length."""

    @property
    def duration_s(self) -> float:
        return sum(stage.duration_s for stage in self.stages)

    def scaled(self, time_scale: float) -> Profile:
        """The same profile with every stage's duration times `time_scale` (0.1: ten times shorter), rates unchanged."""
        if not time_scale > 0 or not math.isfinite(time_scale):
            raise ProfileError(f"--time-scale must be a positive number, not {time_scale}")
        stages = tuple(
            Stage(s.name, s.duration_s * time_scale, s.start_rate, s.end_rate) for s in self.stages
        )
        return _replace(self, stages=stages)


def _replace(profile: Profile, **changes: Any) -> Profile:
    return dataclasses.replace(profile, **changes)


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("peakshop.rehearsal") / "profiles" / f"{name}.yaml"))


def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile file by path."""
    path = builtin_path(name_or_path) if name_or_path in BUILTIN else Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = "" if path.suffix else f" (shipped profiles: {', '.join(BUILTIN)})"
        raise ProfileError(f"cannot read profile {name_or_path}: {exc.strerror or exc}{hint}") from exc
    return parse_profile(text, str(path))


def parse_profile(text: str, source: str) -> Profile:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from exc
    checker = _Checker(source)
    profile = checker.profile(raw)
    if checker.problems or profile is None:
        raise ProfileError("\n".join(checker.problems))
    return profile


class _Checker:
    """Walks the YAML document, collecting one line per problem."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{self.source}: {path}: {problem}")

    def mapping(
        self, value: Any, path: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {type(value).__name__}")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(value)):
            self.fail(f"{path}.{key}", "required field is missing")
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        minimum: float = 0.0,
        above: bool = False,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float | None:
        kind = "a whole number" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(path, f"must be {kind}, not {value!r}")
            return None
        if integer and not float(value).is_integer():
            self.fail(path, f"must be {kind}, not {value!r}")
            return None
        if value < minimum or (above and value == minimum):
            self.fail(path, f"must be {'above' if above else 'at least'} {minimum:g}, not {value:g}")
            return None
        if maximum is not None and value > maximum:
            self.fail(path, f"must be at most {maximum:g}, not {value:g}")
            return None
        return float(value)

    def profile(self, raw: Any) -> Profile | None:
        top = self.mapping(
            raw,
            "(top level)",
            {
                "name", "description", "stages", "journeys", "flash_sale", "slo", "payments",
                "arrivals", "buyers", "max_in_flight", "late_tolerance_ms", "request_timeout_s", "think_time_s",
            },
            {"stages", "journeys", "slo"},
        )  # fmt: skip
        if not top:
            return None
        stages = self.stages(top.get("stages"))
        journeys = self.journeys(top.get("journeys"))
        flash_sale = self.flash_sale(top.get("flash_sale"), journeys)
        slo = self.slo(top.get("slo"))
        payments = self.payments(top.get("payments", {"tok_visa": 1}))
        arrivals = top.get("arrivals", "poisson")
        if arrivals not in ARRIVAL_PROCESSES:
            self.fail("arrivals", f"must be one of {', '.join(ARRIVAL_PROCESSES)}, not {arrivals!r}")
        name = top.get("name", Path(self.source).stem)
        if not isinstance(name, str) or not name:
            self.fail("name", "must be a non-empty string")
        description = top.get("description", "")
        if not isinstance(description, str):
            self.fail("description", "must be a string")
        options: dict[str, Any] = {}
        for key, kwargs, cast in (
            ("buyers", {"minimum": 1, "maximum": 10_000, "integer": True}, int),
            ("max_in_flight", {"minimum": 1, "maximum": 100_000, "integer": True}, int),
            ("late_tolerance_ms", {"minimum": 0, "above": True}, float),
            ("request_timeout_s", {"minimum": 0, "above": True, "maximum": 600}, float),
            ("think_time_s", {"minimum": 0, "maximum": 600}, float),
        ):
            if key in top:
                value = self.number(top[key], key, **kwargs)  # type: ignore[arg-type]
                if value is not None:
                    options[key] = cast(value)
        if self.problems or slo is None:
            return None
        return Profile(
            name=str(name),
            source=self.source,
            description=str(description),
            stages=tuple(stages),
            journeys=journeys,
            slo=slo,
            payments=payments,
            flash_sale=flash_sale,
            arrivals=str(arrivals),
            **options,
        )

    def stages(self, raw: Any) -> list[Stage]:
        if not isinstance(raw, list) or not raw:
            self.fail("stages", "must be a non-empty list of {name, duration_s, arrival_rate | from/to}")
            return []
        stages = []
        for i, item in enumerate(raw):
            path = f"stages[{i}]"
            stage = self.mapping(
                item, path, {"name", "duration_s", "arrival_rate", "from", "to"}, {"duration_s"}
            )
            if not stage:
                continue
            name = stage.get("name", f"stage {i + 1}")
            duration = self.number(stage.get("duration_s"), f"{path}.duration_s", above=True)
            if "arrival_rate" in stage and ("from" in stage or "to" in stage):
                self.fail(path, "give either arrival_rate or from/to, not both")
                continue
            if "arrival_rate" in stage:
                start = end = self.number(stage["arrival_rate"], f"{path}.arrival_rate")
            elif "from" in stage and "to" in stage:
                start = self.number(stage["from"], f"{path}.from")
                end = self.number(stage["to"], f"{path}.to")
            else:
                self.fail(path, "needs arrival_rate (journeys/s), or from and to for a ramp")
                continue
            if duration is None or start is None or end is None:
                continue
            stages.append(Stage(str(name), duration, start, end))
        if stages and not any(s.journeys > 0 for s in stages):
            self.fail("stages", "every stage has a zero arrival rate: nothing would run")
        return stages

    def journeys(self, raw: Any) -> dict[str, float]:
        weights = self.mapping(raw, "journeys", set(JOURNEYS))
        result = {}
        for name, value in weights.items():
            if name in JOURNEYS:
                weight = self.number(value, f"journeys.{name}")
                if weight is not None and weight > 0:
                    result[name] = weight
        if weights and not result and not self.problems:
            self.fail("journeys", "at least one journey needs a weight above 0")
        return result

    def flash_sale(self, raw: Any, journeys: dict[str, float]) -> FlashSale | None:
        if raw is None:
            if "flash_sale" in journeys:
                self.fail(
                    "flash_sale",
                    "required when journeys.flash_sale has a weight: {quantity, per_customer_limit}",
                )
            return None
        sale = self.mapping(raw, "flash_sale", {"quantity", "per_customer_limit"}, {"quantity"})
        quantity = self.number(sale.get("quantity"), "flash_sale.quantity", integer=True) if sale else None
        limit = None
        if sale.get("per_customer_limit") is not None:
            limit = self.number(
                sale["per_customer_limit"], "flash_sale.per_customer_limit", minimum=1, integer=True
            )
        if quantity is None:
            return None
        return FlashSale(int(quantity), int(limit) if limit is not None else None)

    def slo(self, raw: Any) -> SLO | None:
        allowed = {
            "max_error_ratio_5xx", "max_dropped_starts_ratio", "p99_ms", "p95_ms",
            "max_error_ratio_4xx", "min_orders_confirmed",
        }  # fmt: skip
        slo = self.mapping(raw, "slo", allowed, {"max_error_ratio_5xx"})
        if not slo:
            return None
        ratio_5xx = self.number(slo.get("max_error_ratio_5xx"), "slo.max_error_ratio_5xx", maximum=1)
        dropped = self.number(
            slo.get("max_dropped_starts_ratio", 0.01), "slo.max_dropped_starts_ratio", maximum=1
        )
        ratio_4xx = None
        if "max_error_ratio_4xx" in slo:
            ratio_4xx = self.number(slo["max_error_ratio_4xx"], "slo.max_error_ratio_4xx", maximum=1)
        orders = None
        if "min_orders_confirmed" in slo:
            found = self.number(slo["min_orders_confirmed"], "slo.min_orders_confirmed", integer=True)
            orders = int(found) if found is not None else None
        percentiles = {}
        for key in ("p99_ms", "p95_ms"):
            limits = self.mapping(slo.get(key, {}), f"slo.{key}", {*JOURNEYS, "all"})
            percentiles[key] = {
                journey: value
                for journey, raw_limit in limits.items()
                if journey in {*JOURNEYS, "all"}
                and (value := self.number(raw_limit, f"slo.{key}.{journey}", above=True)) is not None
            }
        if ratio_5xx is None or dropped is None:
            return None
        return SLO(ratio_5xx, dropped, percentiles["p99_ms"], percentiles["p95_ms"], ratio_4xx, orders)

    def payments(self, raw: Any) -> dict[str, float]:
        if not isinstance(raw, dict) or not raw:
            self.fail(
                "payments",
                "must be a mapping of sandbox payment token to weight, e.g. {tok_visa: 95, tok_decline: 5}",
            )
            return {}
        mix = {}
        for token, value in raw.items():
            if not isinstance(token, str) or not token.startswith("tok_"):
                self.fail(f"payments.{token}", "must be a sandbox payment token such as tok_visa")
                continue
            weight = self.number(value, f"payments.{token}")
            if weight:
                mix[token] = weight
        if not mix and not self.problems:
            self.fail("payments", "at least one token needs a weight above 0")
        return mix
