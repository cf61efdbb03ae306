"""`peakshop slo`: validate specs, generate rules, tests and dashboards, convert OpenSLO, report budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from peakshop.slo.generate import generate as generate_files
from peakshop.slo.openslo import export_openslo, import_openslo
from peakshop.slo.promtests import ScenarioError
from peakshop.slo.report import ReportError, SLOStatus, from_prometheus, from_rehearsal
from peakshop.slo.spec import SpecError, load_specs
from peakshop.slo.windows import parse_duration

app = typer.Typer(
    name="slo",
    help="SLOs as code: validate specs, generate Prometheus rules, promtool tests and Grafana dashboards, "
    "convert to and from OpenSLO, and report error budgets.",
    no_args_is_help=True,
)
_out = Console()
_err = Console(stderr=True)
DEFAULT_SPECS = "slo"
DEFAULT_OUT = "slo/_gen"


def _spec_files(files: list[Path] | None) -> list[Path]:
    if files:
        return files
    found = sorted(Path(DEFAULT_SPECS).glob("*.yaml"))
    if not found:
        _err.print(f"[red]no spec files given and none in {DEFAULT_SPECS}/*.yaml[/red]")
        raise typer.Exit(2)
    return found


def _fail(exc: SpecError) -> typer.Exit:
    for problem in exc.problems:
        _err.print(f"[red]✗[/red] {problem}", highlight=False, markup=True)
    _err.print(f"[red]{len(exc.problems)} problem(s); nothing written.[/red]")
    return typer.Exit(1)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="SLO spec files (prometheus/v1 YAML).")],
) -> None:
    """Check spec files; print every problem with its file, field and reason. Exit 1 if any."""
    try:
        specs = load_specs(files)
    except SpecError as exc:
        raise _fail(exc) from exc
    for spec in specs:
        _out.print(f"[green]✓[/green] {spec.source}: {spec.service}, {len(spec.slos)} SLO(s)")


@app.command()
def generate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help=f"SLO spec files; default {DEFAULT_SPECS}/*.yaml.", show_default=False),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for rules, promtool tests and dashboards.")] = Path(
        DEFAULT_OUT
    ),
) -> None:
    """Write rules.yaml, rules.test.yaml and dashboards/*.json; nothing is written if a spec is invalid."""
    try:
        written, notes = generate_files(_spec_files(files), out)
    except SpecError as exc:
        raise _fail(exc) from exc
    except ScenarioError as exc:
        _err.print(f"[red]cannot build promtool tests: {exc}; nothing written.[/red]")
        raise typer.Exit(1) from exc
    for note in notes:
        _err.print(f"[yellow]![/yellow] {note}")
    for path in written:
        _out.print(f"wrote {path}")


@app.command("import-openslo")
def import_command(
    file: Annotated[Path, typer.Argument(help="OpenSLO v1 YAML with kind: SLO documents of one service.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the prometheus/v1 spec here instead of stdout.")
    ] = None,
) -> None:
    """Convert OpenSLO v1 SLOs (ratioMetric good/total or bad/total, or raw) to a prometheus/v1 spec."""
    try:
        spec = import_openslo(file.read_text(encoding="utf-8"), str(file))
    except SpecError as exc:
        raise _fail(exc) from exc
    _emit(spec, out)


@app.command("export-openslo")
def export_command(
    file: Annotated[Path, typer.Argument(help="A prometheus/v1 SLO spec file.")],
    out: Annotated[Path | None, typer.Option(help="Write the OpenSLO YAML here instead of stdout.")] = None,
) -> None:
    """Convert a prometheus/v1 spec to OpenSLO v1 `kind: SLO` documents."""
    try:
        (spec,) = load_specs([file])
    except SpecError as exc:
        raise _fail(exc) from exc
    _emit(export_openslo(spec), out)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        _out.print(f"wrote {out}")


@app.command()
def report(
    prometheus: Annotated[
        str | None, typer.Option(help="Prometheus base URL; reads the recording rules.")
    ] = None,
    rehearsal: Annotated[
        Path | None, typer.Option(help="Rehearsal output folder holding summary.json.", file_okay=False)
    ] = None,
    files: Annotated[
        list[Path] | None, typer.Option("--spec", help="Spec files; default slo/*.yaml.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Error budget remaining and burn rate per window for each SLO, from Prometheus or a rehearsal."""
    if (prometheus is None) == (rehearsal is None):
        _err.print("[red]give exactly one of --prometheus URL or --rehearsal DIR[/red]")
        raise typer.Exit(2)
    try:
        specs = load_specs(_spec_files(files))
        statuses = (
            from_prometheus(specs, prometheus) if prometheus else from_rehearsal(specs, rehearsal or Path())
        )
    except SpecError as exc:
        raise _fail(exc) from exc
    except ReportError as exc:
        _err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in statuses], indent=2, sort_keys=True))
        return
    _out.print(_table(statuses, "Rehearsal" if rehearsal else "Prometheus"))


def _table(statuses: list[SLOStatus], source: str) -> Table:
    windows = sorted({w for s in statuses for w in s.burn_rates}, key=_window_order)
    table = Table(title=f"Error budgets ({source})")
    for column in ("service", "SLO", "objective", "period", "budget left"):
        table.add_column(column)
    for window in windows:
        table.add_column(f"burn {window}", justify="right")
    table.add_column("note")
    for status in statuses:
        left = status.budget_remaining
        colour = (
            "green"
            if left is not None and left > 0.5
            else "yellow"
            if left is not None and left > 0
            else "red"
        )
        table.add_row(
            status.service,
            status.slo,
            f"{status.objective:g}%",
            status.period,
            f"[{colour}]{left:.1%}[/{colour}]" if left is not None else "-",
            *(
                f"{status.burn_rates[w]:.2f}x" if status.burn_rates.get(w) is not None else "-"
                for w in windows
            ),
            status.note,
        )
    return table


def _window_order(window: str) -> tuple[int, str]:
    try:
        return (parse_duration(window), window)
    except ValueError:
        return (0, window)
