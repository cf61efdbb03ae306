"""The rehearsal's report: PNG charts and one self-contained HTML page with them embedded."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from peakshop.rehearsal.profile import Stage
from peakshop.rehearsal.samples import Recorder
from peakshop.rehearsal.schedule import rate_at

CHARTS = {
    "users_vs_5xx.png": "Concurrent users vs server error rate (5xx)",
    "throughput.png": "Throughput",
    "latency.png": "Latency percentiles (from the intended start)",
}


def _series(recorder: Recorder, length: int) -> dict[str, list[float]]:
    seconds = [recorder.seconds.get(t, None) for t in range(length)]

    def each(pick: Any) -> list[float]:
        return [pick(s) if s is not None else 0.0 for s in seconds]

    def percentile(q: float) -> list[float]:
        values = []
        for s in seconds:
            value = s.requests.latency.percentile(q) if s is not None else None
            values.append(value if value is not None else float("nan"))
        return values

    return {
        "users": each(lambda s: s.user_seconds),
        "rps": each(lambda s: s.requests.requests),
        "errors_5xx": each(lambda s: s.requests.errors_5xx),
        "ratio_5xx": each(
            lambda s: 100 * s.requests.errors_5xx / s.requests.requests if s.requests.requests else 0.0
        ),
        "started": each(lambda s: s.started),
        "dropped": each(lambda s: s.dropped + s.late),
        "p50": percentile(0.50),
        "p95": percentile(0.95),
        "p99": percentile(0.99),
    }


def _mark_stages(axes: Any, stages: list[Stage]) -> None:
    offset = 0.0
    for stage in stages[:-1]:
        offset += stage.duration_s
        axes.axvline(offset, color="#bbbbbb", linewidth=0.8, linestyle=":")


def charts(
    recorder: Recorder, stages: list[Stage], out: Path, *, max_error_ratio_5xx: float | None = None
) -> dict[str, Path]:
    """Write the charts as PNGs into `out`; their paths by file name."""
    duration = sum(stage.duration_s for stage in stages)
    length = max([int(duration) + 1, *(k + 1 for k in recorder.seconds)])
    series = _series(recorder, length)
    t = list(range(length))
    written: dict[str, Path] = {}

    def save(figure: Figure, name: str) -> None:
        figure.tight_layout()
        path = out / name
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written[name] = path

    figure, users_axes = plt.subplots(figsize=(10, 4.2))
    users_axes.plot(t, series["users"], color="#1f77b4", label="concurrent users (journeys in flight)")
    users_axes.set_xlabel("seconds")
    users_axes.set_ylabel("concurrent users", color="#1f77b4")
    error_axes = users_axes.twinx()
    error_axes.plot(t, series["ratio_5xx"], color="#d62728", label="5xx rate (%)")
    if max_error_ratio_5xx is not None:
        error_axes.axhline(
            100 * max_error_ratio_5xx, color="#d62728", linestyle="--", linewidth=0.8, label="5xx SLO"
        )
    error_axes.set_ylabel("server errors (% of requests)", color="#d62728")
    error_axes.set_ylim(bottom=0, top=max(1.0, max(series["ratio_5xx"], default=0) * 1.2))
    _mark_stages(users_axes, stages)
    users_axes.set_title(CHARTS["users_vs_5xx.png"])
    lines = users_axes.get_legend_handles_labels()
    more = error_axes.get_legend_handles_labels()
    users_axes.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    save(figure, "users_vs_5xx.png")

    figure, axes = plt.subplots(figsize=(10, 4.2))
    axes.plot(t, series["rps"], label="requests/s (completed)")
    axes.plot(t, series["started"], label="journeys started/s")
    axes.plot(t, [rate_at(stages, x + 0.5) for x in t], linestyle="--", label="intended arrival rate")
    axes.plot(t, series["dropped"], color="#d62728", label="starts dropped or late/s")
    _mark_stages(axes, stages)
    axes.set_xlabel("seconds")
    axes.set_ylabel("per second")
    axes.set_title(CHARTS["throughput.png"])
    axes.legend(loc="upper left", fontsize=8)
    save(figure, "throughput.png")

    figure, axes = plt.subplots(figsize=(10, 4.2))
    for key, colour in (("p50", "#2ca02c"), ("p95", "#ff7f0e"), ("p99", "#d62728")):
        axes.plot(t, series[key], color=colour, label=key)
    _mark_stages(axes, stages)
    axes.set_xlabel("seconds")
    axes.set_ylabel("ms")
    axes.set_ylim(bottom=0)
    axes.set_title(CHARTS["latency.png"])
    axes.legend(loc="upper left", fontsize=8)
    save(figure, "latency.png")
    return written


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}
.verdict{font-size:1.4em;padding:0.4em 0.8em;display:inline-block;border-radius:4px}
.pass{background:#e6f4ea}.fail{background:#fdecea}img{max-width:100%}code{background:#f3f3f3;padding:0 0.2em}
"""


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_html(summary: dict[str, Any], pngs: dict[str, Path], out: Path, gate_lines: list[str]) -> Path:
    passed = bool(summary.get("passed"))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Rehearsal {html.escape(str(summary.get('profile')))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Rehearsal: {html.escape(str(summary.get('profile')))}</h1>",
        f"<p class='verdict {'pass' if passed else 'fail'}'>{'PASSED' if passed else 'FAILED'}</p>",
    ]
    if gate_lines:
        parts.append(
            "<ul>" + "".join(f"<li class='bad'>{html.escape(line)}</li>" for line in gate_lines) + "</ul>"
        )
    headline: list[list[Any]] = [
        ["requests", summary.get("requests")],
        ["server errors (5xx and no answer)", summary.get("errors_5xx")],
        ["5xx ratio", summary.get("error_ratio_5xx")],
        ["client errors (4xx, not business answers)", summary.get("errors_4xx")],
        ["turned away (429)", summary.get("shed_429")],
        [
            "p50 / p95 / p99 ms",
            f"{_cell(summary.get('p50_ms'))} / {_cell(summary.get('p95_ms'))} / {_cell(summary.get('p99_ms'))}",
        ],
        ["journeys scheduled / started", f"{summary.get('scheduled_starts')} / {summary.get('started')}"],
        ["starts dropped / late", f"{summary.get('dropped_starts')} / {summary.get('late_starts')}"],
        ["orders confirmed", summary.get("orders_confirmed")],
        ["peak concurrent users", summary.get("peak_concurrent_users")],
        ["duration (s)", summary.get("duration_s")],
    ]
    parts.append("<h2>Headline</h2>" + _table(["", "value"], headline))
    for name, title in CHARTS.items():
        if name in pngs:
            encoded = base64.b64encode(pngs[name].read_bytes()).decode("ascii")
            parts.append(
                f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{encoded}'>"
            )
    checks = summary.get("thresholds", [])
    parts.append(
        "<h2>SLO verdict</h2>"
        + _table(
            ["threshold", "limit", "measured", "verdict"],
            [
                [
                    c["name"],
                    f"{c.get('comparison', '<=')} {_cell(c['limit'])}",
                    c["measured"],
                    "holds" if c["ok"] else "BROKEN",
                ]
                for c in checks
            ],
            ["ok" if c["ok"] else "bad" for c in checks],
        )
    )
    rows, classes = [], []
    for journey in summary.get("journeys", []):
        rows.append(_journey_row(journey["name"], journey))
        classes.append("")
        for step in journey.get("steps", []):
            rows.append(_journey_row(f"  · {step['name']}", step))
            classes.append("")
    parts.append(
        "<h2>Journeys</h2>"
        + _table(
            [
                "journey / step",
                "requests",
                "5xx",
                "4xx",
                "429",
                "business",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
            ],
            rows,
            classes,
        )
    )
    if summary.get("outcomes"):
        parts.append(
            "<h2>Outcomes</h2>"
            + _table(["outcome", "count"], [[k, v] for k, v in summary["outcomes"].items()])
        )
    audit = summary.get("audit", {})
    audit_state = {True: "clean", False: "VIOLATIONS", None: "not audited"}[audit.get("ok")]
    parts.append(f"<h2>Invariant audit: {audit_state}</h2>")
    if audit.get("note"):
        parts.append(f"<p>{html.escape(str(audit['note']))}</p>")
    if audit.get("checks") or audit.get("violations"):
        parts.append(
            f"<pre>{html.escape(json.dumps({k: audit.get(k) for k in ('checks', 'violations')}, indent=1))}</pre>"
        )
    environment = summary.get("environment", {})
    parts.append("<h2>Environment</h2>" + _table(["", ""], [[k, v] for k, v in environment.items()]))
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _journey_row(label: str, figures: dict[str, Any]) -> list[Any]:
    return [
        label,
        figures.get("requests"),
        figures.get("errors_5xx"),
        figures.get("errors_4xx"),
        figures.get("shed_429"),
        figures.get("business_answers"),
        figures.get("p50_ms"),
        figures.get("p95_ms"),
        figures.get("p99_ms"),
        figures.get("max_ms"),
    ]
