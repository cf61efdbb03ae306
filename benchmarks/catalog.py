"""Catalog read paths against a bare hello-world endpoint served by the same server, in one run.

The shop runs on the local topology pinned to one core; wrk drives it from the other core. Each
scenario gets a warm-up, then a measured run; the table gives req/s, p50, p99 and the ratio of each
scenario's req/s to the baseline's: a bare Litestar hello-world route in the same server, without the
request telemetry every shop route carries (a second hello-world route with it shows what that costs).
Goals: product detail >= 50% of the baseline, list >= 35%.

    python benchmarks/catalog.py [--products 10000] [--duration 10] [--connections 64] [--json]

Needs `wrk` (Debian package `wrk`) and `taskset` (util-linux).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from peakshop.rehearsal.shop import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE, LOAD_CORE = "0", "1"


def serve(port: int, data_dir: str) -> None:
    """The server side: the local topology plus a hello-world route, in this process."""
    from litestar import Router, get

    from peakshop.platform.settings import load_platform_settings
    from peakshop.platform.telemetry import configure_logging
    from peakshop.runtime.composition import Process
    from peakshop.runtime.server import run
    from peakshop.runtime.server import serve as serve_app
    from peakshop.runtime.topology import load_topology

    @get("/hello", media_type="text/plain", opt={"untracked": True})
    async def hello() -> str:
        return "Hello, world!"

    @get("/hello-measured", media_type="text/plain")
    async def hello_measured() -> str:
        return "Hello, world!"

    # The baseline skips the telemetry every shop route pays for; the measured twin shows its cost.
    baseline = Router("/bench", route_handlers=[hello, hello_measured], opt={"service": "baseline"})
    settings = load_platform_settings(data_dir=data_dir, log_level="warning")
    configure_logging("warning")
    topology = load_topology("local").with_port("shop", port)
    process = Process(topology, "shop", settings)
    app = process.app(extra_routers=[baseline])
    run(serve_app(app, process.readiness, host="127.0.0.1", port=port, drain_seconds=0), settings.event_loop)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _wait_ready(base: str, process: subprocess.Popen[bytes], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            _get(base + "/readyz")
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server not ready in time")


def _paths(base: str, products: int) -> dict[str, list[str]]:
    """Realistic request mixes: many product ids, several pages and categories, varied searches."""
    ids: list[str] = []
    cursors: list[str] = []
    cursor = None
    while len(ids) < min(products, 2_000):
        page = json.loads(_get(f"{base}/api/products?limit=100" + (f"&cursor={cursor}" if cursor else "")))
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        cursors.append(cursor)
    categories = [c["slug"] for c in json.loads(_get(f"{base}/api/categories"))]
    detail = [f"/api/products/{i}" for i in ids[:1_000]]
    listing = ["/api/products?limit=20"] + [f"/api/products?limit=20&category={c}" for c in categories]
    words = sorted({w.lower() for i in ids[:200] for w in _name_words(base, i)})[:100]
    search = [f"/api/search?q={w}&limit=20" for w in words]
    return {"detail": detail, "list": listing, "search": search}


def _name_words(base: str, product_id: str) -> list[str]:
    product = json.loads(_get(f"{base}/api/products/{product_id}"))
    return [w for w in re.findall(r"[A-Za-z]+", product["name"]) if len(w) > 3][:2]


LUA = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def _wrk(base: str, paths: list[str], seconds: int, connections: int, script_dir: Path) -> dict[str, float]:
    script = script_dir / "paths.lua"
    script.write_text(LUA % ", ".join(json.dumps(p) for p in paths))
    command = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(script), base,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _latency(out: str, pct: str) -> float:
    value, unit = re.search(rf"^\s+{re.escape(pct)}\s+([\d.]+)(us|ms|s)", out, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=10_000, help="catalog size to seed (default 10000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per scenario (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.data_dir)
        return
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'}")

    with tempfile.TemporaryDirectory(prefix="peakshop-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        peakshop = [sys.executable, "-m", "peakshop"]
        print(f"seeding {args.products:,} products…", file=sys.stderr)
        started = time.perf_counter()
        subprocess.run(
            [*peakshop, "seed", "--products", str(args.products), "--data-dir", str(data_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seed_seconds = time.perf_counter() - started
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                "taskset",
                "-c",
                SERVER_CORE,
                sys.executable,
                __file__,
                "--serve",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            env={**os.environ, "PEAKSHOP_LOG_LEVEL": "warning"},
        )
        try:
            _wait_ready(base, server)
            mixes = _paths(base, args.products)
            scenarios = {
                "hello-world (baseline)": ["/bench/hello"],
                "hello-world, measured": ["/bench/hello-measured"],
                "product detail": mixes["detail"],
                "product list (20)": mixes["list"],
                "search": mixes["search"],
            }
            results = {}
            for name, paths in scenarios.items():
                print(f"running {name}…", file=sys.stderr)
                _wrk(base, paths, args.warmup, args.connections, Path(tmp))
                results[name] = _wrk(base, paths, args.duration, args.connections, Path(tmp))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)

    baseline = results["hello-world (baseline)"]["rps"]
    for r in results.values():
        r["ratio"] = r["rps"] / baseline
    if args.json:
        print(json.dumps({"seed_seconds": seed_seconds, "results": results}, indent=2))
        return
    print(f"\nseed: {args.products:,} products in {seed_seconds:.1f} s")
    print(f"{'scenario':<24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'vs baseline':>13}{'non-2xx':>10}")
    for name, r in results.items():
        print(
            f"{name:<24}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['ratio']:>12.0%}{r['errors']:>10.0f}"
        )


if __name__ == "__main__":
    main()
