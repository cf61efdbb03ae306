"""`peakshop rehearse`: drive a surge at the shop, report what happened, and gate on the SLOs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from peakshop.rehearsal.plan import Plan
from peakshop.rehearsal.preparation import PreparationError, ShopClient, sample_catalog, sign_in_buyers
from peakshop.rehearsal.profile import BUILTIN, Profile, ProfileError, load_profile
from peakshop.rehearsal.progress import LiveView
from peakshop.rehearsal.shop import ShopError, StartedShop, audit, set_stock, start_shop

# Exit codes: the gate's verdict is 0 or 1; 2 is a mistake in how it was called; 3 means the
# rehearsal could not run at all (the shop did not start, the generator crashed).
PASSED, GATE_FAILED, USAGE, COULD_NOT_RUN = 0, 1, 2, 3

console = Console(stderr=True, highlight=False)


def _rate(value: float | None, flag: str) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise _usage(f"{flag} must be between 0 and 1, not {value}")
    return value


def _usage(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(USAGE)


def rehearse(
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            "-p",
            help=f"A shipped profile ({', '.join(BUILTIN)}) or the path of a profile YAML file.",
        ),
    ] = "smoke",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for report.html, the PNGs and summary.json. [default: rehearsals/<UTC time>]"
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="Base URL of a running shop. Without it, a fresh shop is started, seeded, and stopped after."
        ),
    ] = None,
    topology: Annotated[
        str, typer.Option("--topology", "-t", help="Topology of the shop started when there is no --target.")
    ] = "local",
    time_scale: Annotated[
        float,
        typer.Option(
            help="Multiply every stage's duration by this (rates unchanged): 0.1 runs the surge ten times shorter, for CI."
        ),
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(help="Seed of the schedule and the journeys' choices: same seed, same run.")
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(min=0, max=64, help="Locust worker processes under one master; 0 runs in this process."),
    ] = 0,
    products: Annotated[int, typer.Option(min=1, help="Products to seed in a self-started shop.")] = 500,
    payments_error_rate: Annotated[
        float | None, typer.Option(help="Self-started shop: share of payments the sandbox fails (0..1).")
    ] = None,
    payments_decline_rate: Annotated[
        float | None, typer.Option(help="Self-started shop: share of payments the sandbox declines (0..1).")
    ] = None,
    payments_timeout_rate: Annotated[
        float | None, typer.Option(help="Self-started shop: share of payments the sandbox times out (0..1).")
    ] = None,
    payments_latency_ms: Annotated[
        float | None, typer.Option(min=0, help="Self-started shop: latency of each sandbox payment call, ms.")
    ] = None,
    audit_topology: Annotated[
        str | None, typer.Option(help="With --target: the topology whose databases `peakshop audit` checks.")
    ] = None,
    audit_data_dir: Annotated[
        Path | None, typer.Option(help="With --target: the data directory `peakshop audit` checks (local).")
    ] = None,
    require_audit: Annotated[
        bool,
        typer.Option(
            help="Fail the gate when the invariants could not be audited (always so without --target)."
        ),
    ] = False,
) -> None:
    """Rehearse a surge: start journeys on an open arrival-rate schedule, report, and gate on the SLOs.

    Exit 0 when every threshold of the profile's `slo` holds and the invariant audit is clean, 1 when the gate fails (one line per broken threshold, audit violation or process of a shop it started that died under the load), 2 for a bad invocation or profile, 3 when the rehearsal could not run.
    """
    try:
        chosen = load_profile(profile).scaled(time_scale)
    except ProfileError as exc:
        raise _usage(str(exc)) from exc
    rates = {
        "ERROR_RATE": _rate(payments_error_rate, "--payments-error-rate"),
        "DECLINE_RATE": _rate(payments_decline_rate, "--payments-decline-rate"),
        "TIMEOUT_RATE": _rate(payments_timeout_rate, "--payments-timeout-rate"),
    }
    if sum(v for v in rates.values() if v is not None) > 1.0 + 1e-9:
        raise _usage("the --payments-*-rate options must add up to at most 1")
    payments_env = {f"PEAKSHOP_PAYMENTS_SANDBOX_{k}": str(v) for k, v in rates.items() if v is not None}
    if payments_latency_ms is not None:
        payments_env["PEAKSHOP_PAYMENTS_SANDBOX_LATENCY_MS"] = str(payments_latency_ms)
    if target is not None:
        if not target.startswith(("http://", "https://")):
            raise _usage(f"--target must be an http(s) URL, not {target!r}")
        if payments_env:
            raise _usage(
                "the --payments-* options configure a self-started shop; they cannot reach a --target"
            )
    out = out or Path("rehearsals") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    if target is None and (out / "shop-data").exists():
        raise _usage(f"{out} already holds a rehearsal's shop data: choose a fresh --out")

    code = _run(
        chosen,
        out=out,
        target=target,
        topology=topology,
        seed=seed,
        workers=workers,
        products=products,
        payments_env=payments_env,
        audit_topology=audit_topology,
        audit_data_dir=audit_data_dir,
        require_audit=require_audit or target is None,
        time_scale=time_scale,
    )
    raise typer.Exit(code)


def _run(
    profile: Profile,
    *,
    out: Path,
    target: str | None,
    topology: str,
    seed: int,
    workers: int,
    products: int,
    payments_env: dict[str, str],
    audit_topology: str | None,
    audit_data_dir: Path | None,
    require_audit: bool,
    time_scale: float,
) -> int:
    run_id = f"{seed}-{uuid.uuid4().hex[:8]}"
    shop: StartedShop | None = None
    notes: list[str] = []
    shop_died = False
    try:
        if target is None:
            env_extra = {
                **payments_env,
                # Every simulated buyer signs in from this one address before the load starts.
                "PEAKSHOP_USERS_LOGIN_ATTEMPTS_PER_CLIENT": str(max(1000, 4 * profile.buyers)),
            }
            with console.status(f"starting the shop ({topology}, {products} products)…"):
                shop = start_shop(
                    topology=topology,
                    data_dir=(out / "shop-data").resolve(),
                    log=out / "shop.log",
                    products=products,
                    env_extra=env_extra,
                )
            base_url = shop.base_url
            audit_topology, audit_data_dir, audit_env = topology, shop.data_dir, shop.env
        else:
            base_url = target
            audit_env = dict(os.environ)
        plan = _prepare(
            profile, base_url, out, seed, run_id, workers, audit_topology, audit_data_dir, audit_env, notes
        )
        console.print(
            f"rehearsing [bold]{profile.name}[/] against {base_url}: {profile.duration_s:.0f} s, "
            f"{len(plan.buyer_tokens)} buyers, {'in-process' if workers == 0 else f'{workers} workers'}; "
            f"report in {out}"
        )
        engine_code = _run_engine(plan, out, profile)
        if shop is not None and shop.process is not None and shop.process.poll() is not None:
            shop_died = True
    except (ShopError, PreparationError) as exc:
        console.print(f"[bold red]the rehearsal could not run:[/] {exc}")
        if shop is not None:
            shop.stop()
        return COULD_NOT_RUN
    finally:
        shop_exit = shop.stop() if shop is not None else None
    # `peakshop up` starts a dead process again, so the shop lives on; a crash under load is still a
    # defect the gate must report.
    restarts = shop.restarts() if shop is not None else []

    samples_path = out / "samples.json"
    if not samples_path.exists():
        console.print(
            f"[bold red]the load generator failed[/] (exit {engine_code}); see {out / 'engine.log'}"
        )
        return COULD_NOT_RUN
    samples = json.loads(samples_path.read_text(encoding="utf-8"))

    if audit_topology is not None and (audit_data_dir is not None or audit_topology != "local"):
        with console.status("auditing the invariants…"):
            audit_result = audit(audit_topology, audit_data_dir or Path(".peakshop"), audit_env)
    else:
        audit_result = {
            "ok": None,
            "note": "not audited: give --audit-topology (and --audit-data-dir for local) to audit a --target",
            "checks": [],
            "violations": [],
        }
    return _conclude(
        profile,
        samples,
        out=out,
        audit_result=audit_result,
        require_audit=require_audit,
        notes=notes,
        environment=_environment(profile, target, topology, workers, time_scale, seed, samples, shop_exit),
        shop_died=shop_died,
        restarts=restarts,
    )


def _prepare(
    profile: Profile,
    base_url: str,
    out: Path,
    seed: int,
    run_id: str,
    workers: int,
    audit_topology: str | None,
    audit_data_dir: Path | None,
    env: dict[str, str],
    notes: list[str],
) -> Plan:
    client = ShopClient(base_url, timeout=profile.request_timeout_s)
    with console.status("learning the catalog…"):
        catalog = sample_catalog(client)
    flash_sku = None
    if "flash_sale" in profile.journeys and profile.flash_sale is not None:
        flash_sku = catalog.skus.pop()  # kept out of ordinary checkouts, so their limits don't meet
        if audit_topology is not None and (audit_data_dir is not None or audit_topology != "local"):
            problem = set_stock(
                flash_sku[1],
                profile.flash_sale.quantity,
                profile.flash_sale.per_customer_limit,
                audit_topology,
                audit_data_dir or Path(".peakshop"),
                env,
            )
        else:
            problem = "no --audit-topology/--audit-data-dir to set its stock with"
        if problem:
            notes.append(f"flash-sale SKU {flash_sku[1]} kept its stock: {problem}")
            console.print(f"[yellow]note:[/] {notes[-1]}")
    tokens: list[str] = []
    if {"checkout", "flash_sale"} & set(profile.journeys):
        with console.status(f"signing in {profile.buyers} buyers…"):
            tokens = sign_in_buyers(client, profile.buyers, run_id)
        if not tokens:
            raise PreparationError("no buyer could be signed in (log-in keeps answering 429?)")
        if len(tokens) < profile.buyers:
            notes.append(f"only {len(tokens)} of {profile.buyers} buyers could be signed in in time")
    plan = Plan.for_profile(
        profile,
        target=base_url,
        seed=seed,
        run_id=run_id,
        catalog=catalog,
        buyer_tokens=tokens,
        flash_sale_sku=flash_sku,
        workers=workers,
        samples_path=str((out / "samples.json").resolve()),
    )
    plan.save(out / "plan.json")
    return plan


def _run_engine(plan: Plan, out: Path, profile: Profile) -> int:
    """Run the generator in a child process (gevent's patching stays out of this one), showing progress."""
    command = [sys.executable, "-m", "peakshop.rehearsal.engine", str((out / "plan.json").resolve())]
    with (out / "engine.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        # The engine stops itself; this is the backstop should it hang.
        watchdog = threading.Timer(plan.duration_s + plan.drain_s + 180, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            with LiveView(console, plan.duration_s, profile.name) as view:
                for raw in process.stdout:
                    if raw.startswith("progress "):
                        view.update(json.loads(raw.removeprefix("progress ")))
            return process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()


def _conclude(
    profile: Profile,
    samples: dict[str, Any],
    *,
    out: Path,
    audit_result: dict[str, Any],
    require_audit: bool,
    notes: list[str],
    environment: dict[str, Any],
    shop_died: bool,
    restarts: list[str],
) -> int:
    from peakshop.rehearsal import report
    from peakshop.rehearsal.samples import Recorder
    from peakshop.rehearsal.summary import broken, summarise

    recorder = Recorder.from_json(samples["recorder"])
    summary = summarise(
        recorder,
        profile.slo,
        profile=profile.name,
        duration_s=profile.duration_s,
        audit=audit_result,
        require_audit=require_audit,
        extra={
            "notes": notes,
            "environment": environment,
            "generator_timed_out": samples.get("timed_out", False),
        },
    )
    lines = broken(summary, require_audit)
    if shop_died:
        lines.append("the shop exited during the rehearsal")
    lines += [f"a process of the shop died during the rehearsal: {line}" for line in restarts]
    summary["shop_restarts"] = restarts
    if samples.get("timed_out"):
        lines.append("the load generator did not finish its schedule in time")
    summary["passed"] = summary["passed"] and not lines
    summary["failures"] = lines
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    pngs = report.charts(
        recorder, list(profile.stages), out, max_error_ratio_5xx=profile.slo.max_error_ratio_5xx
    )
    html_path = report.write_html(summary, pngs, out, lines)

    console.print(
        f"{summary['requests']:,} requests, {summary['errors_5xx']} server errors "
        f"({100 * summary['error_ratio_5xx']:.4f}%), p99 {summary['p99_ms']} ms, "
        f"{summary['dropped_starts']} dropped and {summary['late_starts']} late starts, "
        f"{summary['orders_confirmed']} orders confirmed; audit: "
        f"{ {True: 'clean', False: 'VIOLATIONS', None: 'not audited'}[summary['audit_ok']] }"
    )
    console.print(f"report: {html_path}")
    if summary["passed"]:
        console.print("[bold green]PASSED[/]: every threshold holds")
        return PASSED
    console.print("[bold red]FAILED[/]:")
    for line in lines:
        console.print(f"  {line}")
    return GATE_FAILED


def _environment(
    profile: Profile,
    target: str | None,
    topology: str,
    workers: int,
    time_scale: float,
    seed: int,
    samples: dict[str, Any],
    shop_exit: int | None,
) -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    memory = ""
    try:
        for row in Path("/proc/meminfo").read_text().splitlines():
            if row.startswith("MemTotal:"):
                memory = f"{int(row.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "profile": f"{profile.name} ({profile.source})",
        "target": target or f"self-started ({topology})",
        "topology": topology if target is None else "unknown (external target)",
        "time_scale": time_scale,
        "seed": seed,
        "generator": "in-process" if workers == 0 else f"Locust master + {workers} workers",
        "generator_peak_rss_mb": samples.get("generator", {}).get("peak_rss_mb"),
        "shop_exit_code": shop_exit,
        "peakshop": version("peakshop"),
        "locust": samples.get("locust_version") or version("locust"),
        "matplotlib": version("matplotlib"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "memory": memory,
        "started_at": datetime.fromtimestamp(float(samples.get("t0", 0)), UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    """Run `rehearse` on its own (`python -m peakshop.rehearsal`)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(rehearse)
    app(prog_name="peakshop rehearse")
