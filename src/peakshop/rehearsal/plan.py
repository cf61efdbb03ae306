"""Everything a load-generator process needs to run its share of a rehearsal, as one JSON file.

The command prepares the shop (a catalog sample, signed-in buyers, the flash-sale SKU) and writes
the plan; the engine processes (in-process, or a master and its workers) read it, so every one of
them computes the same schedule from the same seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peakshop.rehearsal.profile import Profile, Stage


@dataclass
class CatalogSample:
    """What journeys pick from: category slugs, product ids, (product id, SKU id) pairs, search words."""

    categories: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    skus: list[tuple[str, str]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


@dataclass
class Plan:
    target: str
    stages: list[Stage]
    journeys: dict[str, float]
    payments: dict[str, float]
    seed: int
    run_id: str
    catalog: CatalogSample
    buyer_tokens: list[str] = field(default_factory=list)
    flash_sale_sku: tuple[str, str] | None = None
    arrivals: str = "poisson"
    max_in_flight: int = 500
    late_tolerance_ms: float = 100.0
    request_timeout_s: float = 15.0
    think_time_s: float = 0.0
    workers: int = 0
    samples_path: str = "samples.json"

    @property
    def duration_s(self) -> float:
        return sum(stage.duration_s for stage in self.stages)

    @property
    def max_in_flight_per_process(self) -> int:
        """The profile's limit is for the whole run; each worker holds its share of it."""
        return max(1, -(-self.max_in_flight // max(1, self.workers)))

    @property
    def drain_s(self) -> float:
        """How long journeys still in flight at the end may take before they are abandoned."""
        return min(60.0, 2 * self.request_timeout_s + 6 * self.think_time_s)

    @classmethod
    def for_profile(
        cls, profile: Profile, *, target: str, seed: int, run_id: str, catalog: CatalogSample, **extra: Any
    ) -> Plan:
        return cls(
            target=target,
            stages=list(profile.stages),
            journeys=dict(profile.journeys),
            payments=dict(profile.payments),
            seed=seed,
            run_id=run_id,
            catalog=catalog,
            arrivals=profile.arrivals,
            max_in_flight=profile.max_in_flight,
            late_tolerance_ms=profile.late_tolerance_ms,
            request_timeout_s=profile.request_timeout_s,
            think_time_s=profile.think_time_s,
            **extra,
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Plan:
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["stages"] = [Stage(**stage) for stage in raw["stages"]]
        catalog = raw["catalog"]
        catalog["skus"] = [tuple(pair) for pair in catalog["skus"]]
        raw["catalog"] = CatalogSample(**catalog)
        if raw.get("flash_sale_sku") is not None:
            raw["flash_sale_sku"] = tuple(raw["flash_sale_sku"])
        return cls(**raw)
