"""PromQL for an SLI over a window, and the raw series that drive it in promtool tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from peakshop.slo.spec import SLI, WINDOW_PLACEHOLDER, EventsSLI, LatencySLI, RawSLI
from peakshop.slo.windows import format_duration


def number(value: float) -> str:
    """A float as PromQL and YAML want it: no binary noise (0.0005, not 0.0005000000000000004)."""
    rounded = round(value, 12)
    return str(int(rounded)) if rounded == int(rounded) and abs(rounded) < 1e15 else repr(rounded)


def _with_window(query: str, window: int) -> str:
    return WINDOW_PLACEHOLDER.sub(format_duration(window), query).strip()


def _selector(metric: str, matchers: str) -> str:
    return f"{metric}{{{matchers}}}" if matchers else metric


def _latency_good(sli: LatencySLI, window: int) -> str:
    matchers = ",".join(m for m in (sli.selector, f'le="{sli.le}"') if m)
    return f"sum(rate({_selector(sli.histogram + '_bucket', matchers)}[{format_duration(window)}]))"


def total_query(sli: SLI, window: int) -> str | None:
    """All events over the window as a per-second rate; None for a raw SLI, which has no count."""
    if isinstance(sli, EventsSLI):
        return _with_window(sli.total_query, window)
    if isinstance(sli, LatencySLI):
        return f"sum(rate({_selector(sli.histogram + '_count', sli.selector)}[{format_duration(window)}]))"
    return None


def error_query(sli: SLI, window: int) -> str | None:
    """Bad events over the window, or zero when none has happened yet (never an empty result)."""
    total = total_query(sli, window)
    if isinstance(sli, EventsSLI):
        # An error series that has never been exported (no 5xx yet) makes the error query empty,
        # and an empty numerator would hide the SLI altogether; `or 0 * total` keeps it at zero
        # with the total's labels, so it also works for queries that group by a label.
        return f"({_with_window(sli.error_query, window)}) or (0 * ({total}))"
    if isinstance(sli, LatencySLI):
        return f"({total}) - ({_latency_good(sli, window)})"
    return None


def error_ratio_query(sli: SLI, window: int) -> str:
    """The fraction of bad events over the window, Sloth's `slo:sli_error:ratio_rate<window>`."""
    if isinstance(sli, RawSLI):
        return _with_window(sli.error_ratio_query, window)
    if isinstance(sli, LatencySLI):
        return f"1 - (({_latency_good(sli, window)}) / ({total_query(sli, window)}))"
    return f"({error_query(sli, window)})\n/\n({total_query(sli, window)})"


# --- Series for promtool tests -------------------------------------------------------------------

_SIMPLE_RATE = re.compile(
    r"^\s*sum\s*\(\s*(?:rate|increase)\s*\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*"
    r"\[\s*\{\{\s*\.window\s*\}\}\s*\]\s*\)\s*\)\s*$",
    re.DOTALL,
)
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
# Values tried, in order, for a label whose matcher is a regex: common status codes and words.
_CANDIDATES = ("500", "200", "503", "429", "404", "ok", "success", "error", "x")


@dataclass(frozen=True)
class Series:
    """A counter to synthesise; `role` says what it counts: errors, good events or all events."""

    selector: str
    role: str


def test_series(sli: SLI) -> tuple[list[Series], str | None]:
    """Counters whose increments drive the SLI, or no series and the reason they can't be derived."""
    if isinstance(sli, RawSLI):
        return [], "a raw SLI hides its source series, so no input can be derived"
    if isinstance(sli, LatencySLI):
        labels = _labels_for(_parse_matchers(sli.selector))
        if labels is None:
            return [], f"no label values satisfy the selector {sli.selector!r}"
        bucket = {**labels, "le": sli.le}
        return [
            Series(_series(sli.histogram + "_bucket", bucket), "good"),
            Series(_series(sli.histogram + "_count", labels), "total"),
        ], None
    error_match = _SIMPLE_RATE.match(sli.error_query)
    total_match = _SIMPLE_RATE.match(sli.total_query)
    if error_match is None or total_match is None:
        return [], "only queries of the form sum(rate(metric{...}[{{.window}}])) get generated tests"
    error_metric, error_matchers = error_match.group(1), _parse_matchers(error_match.group(2) or "")
    total_metric, total_matchers = total_match.group(1), _parse_matchers(total_match.group(2) or "")
    if error_metric != total_metric:
        error_labels = _labels_for(error_matchers)
        total_labels = _labels_for(total_matchers)
        if error_labels is None or total_labels is None:
            return [], "no label values satisfy the queries' matchers"
        return [
            Series(_series(error_metric, error_labels), "errors"),
            Series(_series(total_metric, total_labels), "total"),
        ], None
    # One metric: a series the error query selects and one only the total query selects.
    bad = _labels_for(error_matchers + total_matchers)
    if bad is None:
        return [], "no label values satisfy both the error and the total query"
    good = _good_labels(bad, error_matchers, total_matchers)
    if good is None:
        return [], "no series is selected by the total query but not by the error query"
    return [Series(_series(error_metric, bad), "errors"), Series(_series(error_metric, good), "good")], None


def _parse_matchers(text: str) -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2), m.group(3).replace('\\"', '"')) for m in _MATCHER.finditer(text)]


def _matches(value: str, op: str, pattern: str) -> bool:
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    full = re.fullmatch(pattern.replace("\\\\", "\\"), value) is not None
    return full if op == "=~" else not full


def _regex_example(pattern: str) -> str:
    """A string the regex probably matches: first alternative, `.` as 0, optional parts dropped."""
    depth, first = 0, pattern
    for index, char in enumerate(pattern):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            first = pattern[:index]
            break
    text = first.replace("\\\\", "\\").strip("^$")
    text = re.sub(r"\(([^|)]*)\|[^)]*\)", r"\1", text)
    text = re.sub(r"\.\*|\.\+|\(|\)", lambda m: "x" if m.group() == ".+" else "", text)
    text = re.sub(r"\\(.)", r"\1", text.replace(".", "0"))
    return text


def _labels_for(matchers: list[tuple[str, str, str]]) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    for name, op, value in matchers:
        if op == "=":
            labels[name] = value
        elif op == "=~" and name not in labels:
            labels[name] = _regex_example(value)
    for name, op, value in matchers:
        current = labels.get(name, "")
        if not _matches(current, op, value):
            fix = next((c for c in _CANDIDATES if _matches(c, op, value)), None)
            if fix is None:
                return None
            labels[name] = fix
    if not all(_matches(labels.get(n, ""), op, v) for n, op, v in matchers):
        return None
    return labels


def _good_labels(
    bad: dict[str, str], error: list[tuple[str, str, str]], total: list[tuple[str, str, str]]
) -> dict[str, str] | None:
    for name in sorted({n for n, _, _ in error} - {n for n, op, _ in total if op == "="}):
        for candidate in _CANDIDATES:
            labels = {**bad, name: candidate}
            in_total = all(_matches(labels.get(n, ""), op, v) for n, op, v in total)
            in_error = all(_matches(labels.get(n, ""), op, v) for n, op, v in error)
            if in_total and not in_error:
                return labels
    return None


def _series(metric: str, labels: dict[str, str]) -> str:
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{body}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def selected_by(sli: SLI, series: Series) -> bool:
    """Whether any selector in the SLI's queries picks up the series (a test would cross-talk)."""
    name, _, body = series.selector.partition("{")
    labels = {n: v for n, _, v in _parse_matchers(body.rstrip("}"))}
    for metric, matchers in _selectors(sli):
        if metric == name and all(_matches(labels.get(n, ""), op, v) for n, op, v in matchers):
            return True
    return False


def _selectors(sli: SLI) -> list[tuple[str, list[tuple[str, str, str]]]]:
    if isinstance(sli, LatencySLI):
        base = _parse_matchers(sli.selector)
        return [(sli.histogram + "_count", base), (sli.histogram + "_bucket", [*base, ("le", "=", sli.le)])]
    if isinstance(sli, EventsSLI):
        found = []
        for query in (sli.error_query, sli.total_query):
            match = _SIMPLE_RATE.match(query)
            if match is not None:
                found.append((match.group(1), _parse_matchers(match.group(2) or "")))
        return found
    return []
