"""How long each process of a split shop takes to answer its liveness check, idle and through a surge.

`peakshop up` kills and starts again a process that leaves `/healthz` unanswered for
`PEAKSHOP_LIVENESS_TIMEOUT_SECONDS`, `PEAKSHOP_LIVENESS_FAILURES` checks in a row (`docs/architecture.md`,
*Supervision*). A limit too tight kills a process that is only busy at peak, the worst moment to lose
one; this script measures what busy looks like, so that the limits are set from numbers.

On a scratch PostgreSQL database (dropped at the end, even on error) it starts a split shop with the
liveness check off, asks every process for `/healthz` every `--period` seconds for `--idle` seconds
with no load (the baseline), then runs a rehearsal (`--profile`, `--time-scale`) against the shop and
keeps asking throughout. Each process is asked by its own task, one check at a time, with no time
limit, so a slow answer is measured whole. It prints, per process, the median, p99 and slowest answer
idle and under the surge, the slowest under the surge against the idle p99, and how the slowest
compares with the supervisor's limits; then the rehearsal's own verdict.

    python benchmarks/liveness.py [--profile black-friday] [--time-scale 0.4] [--rate-scale 1]
                                  [--idle 20] [--period 0.5]

`--rate-scale 3` triples every arrival rate of the profile: past what a split shop on a 2-core machine
can serve, which is the busiest a process gets.

Needs PostgreSQL (a role that may create databases), Redis and RabbitMQ. Nothing is pinned: the shop,
the servers and the load share the machine, as in a rehearsal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from checkout import Scratch  # the checkout benchmark's scratch database and namespace

from peakshop.platform.settings import PlatformSettings
from peakshop.rehearsal.profile import BUILTIN, builtin_path
from peakshop.rehearsal.shop import StartedShop, peakshop, start_shop, topology_on_free_ports
from peakshop.runtime.topology import load_topology


@dataclass
class Probes:
    """Every check's answer time, in seconds, by process and phase (`idle`, `surge`)."""

    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    phase: str = "idle"
    rehearsal_status: int | None = None

    def record(self, process: str, took: float, ok: bool) -> None:
        self.seconds.setdefault((process, self.phase), []).append(took)
        if not ok:
            self.failures[(process, self.phase)] = self.failures.get((process, self.phase), 0) + 1


async def _probe(
    session: aiohttp.ClientSession, process: str, port: int, period: float, probes: Probes
) -> None:
    url = f"http://127.0.0.1:{port}/healthz"
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        ok = False
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as response:
                await response.read()
                ok = response.status == 200
        took = loop.time() - started
        probes.record(process, took, ok)
        await asyncio.sleep(max(0.0, period - took))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(
    args: argparse.Namespace, env: dict[str, str], workdir: Path, ports: dict[str, int]
) -> Probes:
    """Check every process, idle for `--idle` seconds, then through the rehearsal; its status is kept."""
    probes = Probes()
    storefront = f"http://127.0.0.1:{ports['storefront']}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        tasks = [
            asyncio.create_task(_probe(session, name, port, args.period, probes))
            for name, port in ports.items()
        ]
        print(f"idle: checking /healthz of {len(tasks)} processes for {args.idle:.0f} s…", file=sys.stderr)
        await asyncio.sleep(args.idle)
        probes.phase = "surge"
        print(
            f"surge: peakshop rehearse --profile {args.profile} --time-scale {args.time_scale}…",
            file=sys.stderr,
        )
        rehearsal = await asyncio.create_subprocess_exec(
            *peakshop("rehearse", "--profile", _profile(args, workdir), "--time-scale", str(args.time_scale),
                      "--target", storefront, "--audit-topology", str(workdir / "topology.toml"),
                      "--audit-data-dir", str(workdir / "data"), "--out", str(workdir / "surge")),
            env=env, cwd=workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        probes.rehearsal_status = await rehearsal.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return probes


def _profile(args: argparse.Namespace, workdir: Path) -> str:
    """The profile to rehearse: the one named, with its arrival rates multiplied by `--rate-scale`."""
    if args.rate_scale == 1.0:
        return str(args.profile)
    source = builtin_path(args.profile) if args.profile in BUILTIN else Path(args.profile)
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    for stage in raw["stages"]:
        for key in ("arrival_rate", "from", "to"):
            if key in stage:
                stage[key] = stage[key] * args.rate_scale
    raw["name"] = f"{raw['name']}-x{args.rate_scale:g}"
    path = workdir / "profile.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def _run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    platform = PlatformSettings()
    scratch = Scratch(os.environ.get("PEAKSHOP_POSTGRES_URL", platform.postgres_url))
    scratch.consumers = ["cart.close-on-order-placed"]
    env = {
        "PEAKSHOP_POSTGRES_URL": scratch.url,
        "PEAKSHOP_NAMESPACE": scratch.namespace,
        "PEAKSHOP_WEBHOOK_SECRET": uuid.uuid4().hex * 2,
        "PEAKSHOP_LIVENESS_FAILURES": "0",  # measured, not acted on
    }
    topology = workdir / "topology.toml"
    topology_on_free_ports("split", topology, "liveness-bench")
    asyncio.run(scratch.create())
    shop: StartedShop | None = None
    try:
        print(
            f"scratch database {scratch.database}: starting a split shop with {args.products} products…",
            file=sys.stderr,
        )
        shop = start_shop(
            topology=str(topology),
            data_dir=workdir / "data",
            log=workdir / "shop.log",
            products=args.products,
            env_extra=env,
        )
        ports = {name: spec.port for name, spec in load_topology(str(topology)).processes.items()}
        ports["storefront"] = int(shop.base_url.rsplit(":", 1)[1])  # `up --port` moves it
        probes = asyncio.run(_measure(args, shop.env, workdir, ports))
        summary_file = workdir / "surge" / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    finally:
        if shop is not None:
            shop.stop()
        asyncio.run(scratch.drop(platform.redis_url, platform.amqp_url))
    return {"probes": probes, "summary": summary, "processes": list(ports)}


def _report(result: dict[str, Any], limits: PlatformSettings) -> None:
    probes: Probes = result["probes"]
    print(
        f"\nliveness limits of peakshop up: a check every {limits.liveness_period_seconds:g} s, "
        f"{limits.liveness_timeout_seconds:g} s to answer, {limits.liveness_failures} misses in a row\n"
    )
    print(
        f"{'process':<12} {'checks idle/surge':>18} {'idle p50':>9} {'idle p99':>9} {'surge p50':>10} "
        f"{'surge p99':>10} {'surge max':>10} {'max/idle p99':>13} {'failed':>7}"
    )
    worst = 0.0
    for name in result["processes"]:
        idle = probes.seconds.get((name, "idle"), [])
        surge = probes.seconds.get((name, "surge"), [])
        if not idle or not surge:
            print(f"{name:<12} no checks answered")
            continue
        worst = max(worst, max(surge))
        failed = probes.failures.get((name, "idle"), 0) + probes.failures.get((name, "surge"), 0)
        ms = 1000
        print(
            f"{name:<12} {f'{len(idle)}/{len(surge)}':>18} {statistics.median(idle) * ms:>7.1f}ms "
            f"{_percentile(idle, 0.99) * ms:>7.1f}ms {statistics.median(surge) * ms:>8.1f}ms "
            f"{_percentile(surge, 0.99) * ms:>8.1f}ms {max(surge) * ms:>8.1f}ms "
            f"{max(surge) / _percentile(idle, 0.99):>12.1f}x {failed:>7}"
        )
    print(
        f"\nslowest answer under the surge: {worst * 1000:.0f} ms, "
        f"{limits.liveness_timeout_seconds / worst:.0f}x below the limit of {limits.liveness_timeout_seconds:g} s"
        if worst
        else ""
    )
    summary = result["summary"]
    print(
        f"rehearsal: exit status {probes.rehearsal_status}, {summary.get('requests', '?')} requests, "
        f"{summary.get('errors_5xx', '?')} answered 5xx"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="black-friday", help="Rehearsal profile driving the surge.")
    parser.add_argument("--time-scale", type=float, default=0.4, help="Rehearsal time scale (default 0.4).")
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        help="Multiply every stage's arrival rate by this: above 1 drives the shop past what it can serve.",
    )
    parser.add_argument("--idle", type=float, default=20.0, help="Seconds of checks with no load first.")
    parser.add_argument("--period", type=float, default=0.5, help="Seconds between one process's checks.")
    parser.add_argument("--products", type=int, default=500, help="Products to seed.")
    parser.add_argument("--json", action="store_true", help="Print every check's answer time as JSON too.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="peakshop-liveness-") as workdir:
        result = _run(args, Path(workdir))
    _report(result, PlatformSettings())
    if args.json:
        probes: Probes = result["probes"]
        print(json.dumps({f"{p}/{phase}": v for (p, phase), v in probes.seconds.items()}))


if __name__ == "__main__":
    main()
