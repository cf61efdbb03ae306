"""The live view of a running rehearsal, fed by the engine's one-a-second progress lines."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

QUIET_INTERVAL_S = 10.0


def _fmt_ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def line(state: dict[str, Any]) -> str:
    """One line of progress, for logs that are not a terminal."""
    return (
        f"{state['elapsed_s']:>6.0f} s elapsed, {state['remaining_s']:>5.0f} s left | "
        f"rate {state['arrival_rate']:.1f}/s | users {state['concurrent_users']:.0f} | "
        f"{state['rps']:.0f} req/s | 5xx {100 * state['error_ratio_5xx']:.3f}% | "
        f"p99 {_fmt_ms(state['p99_ms'])} | dropped/late {state['dropped']}/{state['late']}"
    )


def render(state: dict[str, Any], duration_s: float, profile: str) -> Group:
    bar = ProgressBar(total=max(duration_s, 0.001), completed=min(state["elapsed_s"], duration_s), width=50)
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column in ("elapsed", "remaining", "arrival rate", "users", "req/s", "5xx", "p99", "dropped/late"):
        table.add_column(column, justify="right")
    error_style = "red" if state["error_ratio_5xx"] > 0 else "green"
    table.add_row(
        f"{state['elapsed_s']:.0f} s",
        f"{state['remaining_s']:.0f} s",
        f"{state['arrival_rate']:.1f}/s",
        f"{state['concurrent_users']:.0f}",
        f"{state['rps']:.0f}",
        f"[{error_style}]{100 * state['error_ratio_5xx']:.3f}%[/]",
        _fmt_ms(state["p99_ms"]),
        f"{state['dropped']}/{state['late']}",
    )
    title = Table.grid(padding=(0, 1))
    title.add_row(f"[bold]rehearsing {profile}[/]", bar)
    return Group(title, table)


class LiveView:
    """A rich live panel on a terminal; a line every ten seconds otherwise (CI logs)."""

    def __init__(self, console: Console, duration_s: float, profile: str) -> None:
        self.console = console
        self.duration_s = duration_s
        self.profile = profile
        self.live: Live | None = None
        self.last_line = 0.0
        self.state: dict[str, Any] | None = None
        self.printed: dict[str, Any] | None = None

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def update(self, state: dict[str, Any]) -> None:
        self.state = state
        if self.live is not None:
            self.live.update(render(state, self.duration_s, self.profile))
        elif state["elapsed_s"] - self.last_line >= QUIET_INTERVAL_S:
            self.last_line = state["elapsed_s"]
            self.printed = state
            self.console.print(line(state), highlight=False, soft_wrap=True)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.__exit__(kind, value, traceback)
        elif self.state is not None and self.state != self.printed:
            self.console.print(line(self.state), highlight=False, soft_wrap=True)
