"""From tallies to the verdict: percentiles, merging workers, thresholds, and what the gate prints."""

from __future__ import annotations

import random

import pytest

from peakshop.rehearsal.journeys import classify
from peakshop.rehearsal.profile import SLO
from peakshop.rehearsal.samples import Histogram, Recorder
from peakshop.rehearsal.summary import broken, summarise, thresholds


def test_percentiles_from_the_histogram_are_within_two_percent() -> None:
    rng = random.Random(1)
    values = sorted(rng.lognormvariate(3, 1) for _ in range(20_000))
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    for q in (0.5, 0.95, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert histogram.percentile(q) == pytest.approx(exact, rel=0.02)
    assert Histogram().percentile(0.99) is None


def _recorder(requests: list[tuple[str, str, float, float, str]]) -> Recorder:
    recorder = Recorder()
    for journey, step, ended, ms, kind in requests:
        recorder.request(journey, step, ended, ms, kind)
    return recorder


def test_what_workers_export_adds_up_at_the_master() -> None:
    one = _recorder(
        [("browse", "category_page", 0.5, 10, "ok"), ("checkout", "place_order", 1.2, 300, "server")]
    )
    one.arrival(0.1, "started")
    one.arrival(0.3, "dropped")
    one.journey_span(0.5, 2.25)
    two = _recorder([("browse", "category_page", 1.5, 20, "ok")])
    two.arrival(1.1, "late")
    two.outcome("order_confirmed")
    master = Recorder()
    master.absorb(one.export())
    master.absorb(two.export())
    assert not one.steps and not one.seconds  # an export starts afresh
    total = master.total()
    assert total.requests == 3 and total.errors_5xx == 1
    assert master.journeys()["browse"].requests == 2
    assert master.outcomes["order_confirmed"] == 1
    assert master.seconds[0].scheduled == 2 and master.seconds[0].dropped == 1
    assert master.seconds[1].late == 1
    assert master.seconds[1].user_seconds == pytest.approx(1.0)
    assert master.seconds[2].user_seconds == pytest.approx(0.25)
    assert Recorder.from_json(master.to_json()).to_json() == master.to_json()


def test_slow_requests_are_counted_exactly_at_each_threshold() -> None:
    recorder = _recorder([("search", "search", 0, ms, "ok") for ms in (100, 260, 499, 501, 1200)])
    over = recorder.total().over
    assert over[0.25] == 4
    assert over[0.5] == 2
    assert over[1.0] == 1
    assert over.get(1.5, 0) == 0


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, b"{}", "ok"),
        (0, None, "transport"),
        (503, b'{"type": "https://peakshop.dev/problems/payment-pending"}', "server"),
        (409, b'{"type": "https://peakshop.dev/problems/sold-out"}', "business"),
        (409, b'{"type": "https://peakshop.dev/problems/purchase-limit"}', "business"),
        (402, b'{"type": "https://peakshop.dev/problems/payment-declined"}', "business"),
        (409, b'{"type": "https://peakshop.dev/problems/cart-empty"}', "client"),
        (429, b"{}", "shed"),
        (404, b"{}", "client"),
    ],
)
def test_answers_are_classified_and_business_answers_are_not_errors(
    status: int, body: bytes | None, kind: str
) -> None:
    assert classify(status, body) == kind


SLO_UNDER_TEST = SLO(
    max_error_ratio_5xx=0.01,
    max_dropped_starts_ratio=0.1,
    p99_ms={"browse": 100, "checkout": 100},
    max_error_ratio_4xx=0.5,
    min_orders_confirmed=1,
)


def test_each_threshold_is_measured_and_judged() -> None:
    recorder = _recorder(
        [("browse", "category_page", 0, 20, "ok")] * 98
        + [("browse", "category_page", 0, 30, "server"), ("checkout", "place_order", 0, 900, "business")]
    )
    for i in range(10):
        recorder.arrival(i / 10, "late" if i == 0 else "started")
    checks = {c.name: c for c in thresholds(SLO_UNDER_TEST, recorder)}
    assert checks["error_ratio_5xx"].measured == pytest.approx(0.01) and checks["error_ratio_5xx"].ok
    assert checks["dropped_starts_ratio"].measured == pytest.approx(0.1) and checks["dropped_starts_ratio"].ok
    assert checks["p99_ms.browse"].ok
    assert not checks["p99_ms.checkout"].ok
    assert checks["orders_confirmed"].measured == 0 and not checks["orders_confirmed"].ok


def test_a_journey_with_no_requests_cannot_pass_its_latency_threshold() -> None:
    recorder = _recorder([("browse", "category_page", 0, 20, "ok")])
    checks = {c.name: c for c in thresholds(SLO_UNDER_TEST, recorder)}
    assert checks["p99_ms.checkout"].measured is None and not checks["p99_ms.checkout"].ok


def test_the_summary_passes_only_with_every_threshold_and_a_clean_audit() -> None:
    recorder = _recorder([("checkout", "place_order", 0.5, 50, "ok")])
    recorder.arrival(0.1, "started")
    recorder.outcome("order_confirmed")
    slo = SLO(0.0001, 0.01, {"checkout": 100})
    clean = {"ok": True, "checks": [], "violations": []}
    summary = summarise(recorder, slo, profile="t", duration_s=1, audit=clean, require_audit=True)
    assert summary["passed"] and broken(summary, True) == []
    for field in ("passed", "profile", "requests", "errors_5xx", "error_ratio_5xx", "p50_ms", "p95_ms",
                  "p99_ms", "dropped_starts", "orders_confirmed", "audit_ok", "duration_s"):  # fmt: skip
        assert field in summary
    (journey,) = summary["journeys"]
    assert {"name", "requests", "errors_5xx", "p50_ms", "p95_ms", "p99_ms"} <= set(journey)
    # `peakshop slo report --rehearsal` matches these keys as floats against SLO thresholds.
    assert {float(k) for k in journey["latency_over_threshold"]} >= {0.25, 0.3, 0.5, 1.0, 1.5}
    assert summary["thresholds"][0] == {
        "name": "error_ratio_5xx", "limit": 0.0001, "measured": 0.0, "ok": True, "comparison": "<=",
    }  # fmt: skip

    dirty = {"ok": False, "violations": ["order o1 has two captured payments"], "checks": []}
    failed = summarise(recorder, slo, profile="t", duration_s=1, audit=dirty, require_audit=False)
    assert not failed["passed"]
    assert broken(failed, False) == ["audit: 1 invariant violation(s): order o1 has two captured payments"]

    unaudited = {"ok": None, "note": "no data dir", "checks": [], "violations": []}
    assert summarise(recorder, slo, profile="t", duration_s=1, audit=unaudited, require_audit=False)["passed"]
    strict = summarise(recorder, slo, profile="t", duration_s=1, audit=unaudited, require_audit=True)
    assert not strict["passed"] and "not audited" in broken(strict, True)[0]


def test_the_gate_prints_one_line_per_broken_threshold() -> None:
    recorder = _recorder([("checkout", "place_order", 0.5, 5000, "server")])
    summary = summarise(
        recorder, SLO(0.0001, 0.01, {"checkout": 100}), profile="t", duration_s=1,
        audit={"ok": True}, require_audit=False,
    )  # fmt: skip
    lines = broken(summary, False)
    assert lines[0] == "error_ratio_5xx: 1 (limit <= 0.0001) broken"
    assert any(line.startswith("p99_ms.checkout: ") and "broken" in line for line in lines)
