"""The `peakshop` command: run the shop, prepare its data, and the SRE tools around it."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from peakshop.platform.settings import PlatformSettings, SettingsError, load_platform_settings
from peakshop.platform.telemetry import configure_logging, configure_tracing
from peakshop.rehearsal.cli import rehearse
from peakshop.slo.cli import app as slo_app

app = typer.Typer(
    name="peakshop",
    help="An online shop built to stay up and stay correct through the peak, and to prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, highlight=False)

TopologyOpt = Annotated[
    str,
    typer.Option(
        "--topology",
        "-t",
        help="local (one process, SQLite), split (one process per service), grouped (the checkout together), or a file.",
    ),
]
HostOpt = Annotated[str, typer.Option(help="Address the storefront listens on.")]
PortOpt = Annotated[int, typer.Option(help="Port the storefront listens on.")]
DataDirOpt = Annotated[
    Path,
    typer.Option(
        "--data-dir", help="Where the local topology keeps its SQLite files. [env: PEAKSHOP_DATA_DIR]"
    ),
]


def _settings(topology_name: str, data_dir: Path | None = None) -> PlatformSettings:
    """Flags win over the environment; they are exported so that child processes see the same."""
    from peakshop.runtime.topology import load_topology

    topology = load_topology(topology_name)
    os.environ["PEAKSHOP_TOPOLOGY"] = "local" if topology.embedded else "split"
    if data_dir is not None:
        os.environ["PEAKSHOP_DATA_DIR"] = str(data_dir)
    if not topology.embedded and "PEAKSHOP_WEBHOOK_SECRET" not in os.environ:
        # A throwaway secret shared by this run's processes only: never the development default.
        os.environ["PEAKSHOP_WEBHOOK_SECRET"] = secrets.token_urlsafe(32)
    return load_platform_settings()


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


async def _prepare(topology_name: str, settings: PlatformSettings, products: int, seed: int) -> None:
    from peakshop.runtime import prepare
    from peakshop.runtime.topology import load_topology

    topology = load_topology(topology_name)
    with console.status("migrating…"):
        await prepare.migrate_all(topology, settings)
    if products and await prepare.catalog_size(settings) == 0:
        await _seed_with_progress(settings, products, seed)


async def _seed_with_progress(settings: PlatformSettings, products: int, seed: int) -> None:
    from peakshop.runtime import prepare

    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("seeding catalog", total=products)
        await prepare.seed(
            settings,
            products=products,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    console.print(f"seeded {products:,} products in {time.perf_counter() - started:.1f} s")


@app.command()
def up(
    topology: TopologyOpt = "local",
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    data_dir: DataDirOpt = Path(".peakshop"),
    products: Annotated[
        int | None,
        typer.Option(help="Products to seed on first start (0: none). [env: PEAKSHOP_SEED_PRODUCTS]"),
    ] = None,
) -> None:
    """Run the whole shop: one process on SQLite (local) or one process per service (split).

    The catalog is migrated and, on first start, seeded. Ctrl-C stops everything cleanly.

    With several processes, one that dies after the shop is up is started again while the rest serve;
    so is one that hangs (PEAKSHOP_LIVENESS_FAILURES checks of /healthz in a row unanswered within
    PEAKSHOP_LIVENESS_TIMEOUT_SECONDS, one every PEAKSHOP_LIVENESS_PERIOD_SECONDS), after it is killed.

    (The pause before a restart doubles from 0.5 s to 30 s with quick deaths; a failed start stops all.)
    """
    try:
        settings = _settings(topology, data_dir)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format, process="supervisor")
    count = settings.seed_products if products is None else products
    asyncio.run(_prepare(topology, settings, count, settings.seed))
    from peakshop.runtime.supervisor import UP_MESSAGE, Liveness, Supervisor
    from peakshop.runtime.topology import load_topology

    topo = load_topology(topology)
    if len(topo.processes) == 1:
        (process,) = topo.processes
        console.print(f"[bold green]{UP_MESSAGE}[/] ({topo.name}): http://{host}:{port}/api/products")
        _serve_process(topology, process, host, port, settings)
        return

    liveness = Liveness(
        period=settings.liveness_period_seconds,
        timeout=settings.liveness_timeout_seconds,
        failures=settings.liveness_failures,
    )
    supervisor = Supervisor(topology, topo, host=host, storefront_port=port, liveness=liveness)
    status = asyncio.run(supervisor.run())
    raise typer.Exit(status)


@app.command()
def serve(
    process: Annotated[str, typer.Option(help="Which process of the topology to run.")],
    topology: TopologyOpt = "split",
    host: HostOpt = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: the topology's for this process).")] = None,
) -> None:
    """Run one process of a topology (what `up` starts per process, and what a container runs)."""
    try:
        settings = _settings(topology)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    _serve_process(topology, process, host, port, settings)


def _serve_process(
    topology_name: str, process: str, host: str, port: int | None, settings: PlatformSettings
) -> None:
    from peakshop.runtime.composition import Process
    from peakshop.runtime.server import PortInUse, ServerDidNotStart, ensure_port_free, run
    from peakshop.runtime.server import serve as serve_app
    from peakshop.runtime.topology import load_topology

    topo = load_topology(topology_name)
    if process not in topo.processes:
        raise _fail(
            f"topology {topo.name!r} has no process {process!r} (it has: {', '.join(topo.processes)})"
        )
    listen_port = port if port is not None else topo.processes[process].port
    try:
        ensure_port_free(host, listen_port)
    except PortInUse as exc:
        raise _fail(f"{process}: {exc}") from exc
    topo = topo.with_port(process, listen_port, host)
    configure_logging(settings.log_level, settings.log_format, process=process)
    configure_tracing(f"peakshop-{process}")
    shop = Process(topo, process, settings)
    server = topo.processes[process].server
    try:
        run(
            serve_app(
                shop.app(),
                shop.readiness,
                host=host,
                port=listen_port,
                drain_seconds=settings.drain_seconds,
                server_kind=server,
            ),
            settings.event_loop,
        )
    except ServerDidNotStart as exc:
        raise _fail(f"{process}: {exc}") from exc


@app.command()
def migrate(topology: TopologyOpt = "local", data_dir: DataDirOpt = Path(".peakshop")) -> None:
    """Bring every service's schema to the newest migration."""
    from peakshop.runtime import prepare
    from peakshop.runtime.topology import load_topology

    try:
        settings = _settings(topology, data_dir)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format)
    migrated = asyncio.run(prepare.migrate_all(load_topology(topology), settings))
    console.print(f"migrated: {', '.join(migrated)}")


@app.command()
def seed(
    products: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="How many products to generate.")
    ] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed gives the same catalog.")
    ] = 42,
    topology: TopologyOpt = "local",
    data_dir: DataDirOpt = Path(".peakshop"),
) -> None:
    """Fill the catalog with a realistic, deterministic synthetic one."""
    from peakshop.runtime import prepare
    from peakshop.runtime.topology import load_topology

    try:
        settings = _settings(topology, data_dir)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format)

    async def run() -> None:
        await prepare.migrate_all(load_topology(topology), settings)
        await _seed_with_progress(settings, products, seed)

    asyncio.run(run())


@app.command()
def audit(
    topology: TopologyOpt = "local",
    data_dir: DataDirOpt = Path(".peakshop"),
    as_json: Annotated[bool, typer.Option("--json", help="Print {ok, checks, violations} as JSON.")] = False,
) -> None:
    """Check the invariants of a checkout against the live databases; exit 1 on any violation.

    No unit sold twice or lost (each confirmed order's units sold, and no other order's), every confirmed order paid once, no charge without an order, one order per idempotency key and per cart, no reservation left holding stock, no per-customer limit passed.
    """
    import msgspec
    from rich.table import Table

    from peakshop.runtime.audit import run_audit

    try:
        settings = _settings(topology, data_dir)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    report = asyncio.run(run_audit(settings))
    if as_json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        table = Table(title=f"peakshop audit ({topology})")
        table.add_column("check")
        table.add_column("result")
        for check in report.checks:
            table.add_row(check.name, "[green]ok[/]" if check.ok else f"[red]{check.detail}[/]")
        Console().print(table)
        for violation in report.violations[:50]:
            console.print(f"[red]violation:[/] {violation}")
        if len(report.violations) > 50:
            console.print(f"… and {len(report.violations) - 50} more (use --json for all)")
    raise typer.Exit(0 if report.ok else 1)


stock_app = typer.Typer(
    name="stock", help="Look at and set stock levels (for sales, restocks and rehearsals)."
)


@stock_app.command("set")
def stock_set(
    sku_id: Annotated[str, typer.Argument(help="The SKU, e.g. sku_000042_1.")],
    quantity: Annotated[
        int,
        typer.Option(min=0, help="The SKU's stock: new SKUs start with it, restocks move by the difference."),
    ],
    per_customer_limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many units per customer (a flash-sale SKU).")
    ] = None,
    topology: TopologyOpt = "local",
    data_dir: DataDirOpt = Path(".peakshop"),
) -> None:
    """Set one SKU's stock and per-customer limit, and print its levels."""
    from peakshop.runtime import prepare

    try:
        settings = _settings(topology, data_dir)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    level = asyncio.run(prepare.set_stock(settings, sku_id, quantity, per_customer_limit))
    console.print(
        f"{level.sku_id}: initial {level.initial}, available {level.available}, reserved {level.reserved}, "
        f"sold {level.sold}, per-customer limit {level.per_customer_limit or 'none'}"
    )


app.command("rehearse")(rehearse)
app.add_typer(stock_app)
app.add_typer(slo_app, name="slo")


def main() -> None:
    app(prog_name="peakshop")


if __name__ == "__main__":
    main()
