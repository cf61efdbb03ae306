"""The shop under rehearsal when none is given: `peakshop up` in a subprocess, and the commands
run against its data afterwards (`peakshop audit`, `peakshop stock set`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakshop.runtime.supervisor import UP_MESSAGE, restarts_in


class ShopError(Exception):
    """The shop could not be started, or a command against its data failed to run."""


def free_ports(count: int) -> list[int]:
    """`count` different ports free on the loopback now (all held at once, so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


def topology_on_free_ports(base: str, path: Path, name: str) -> int:
    """Write `base` (a built-in topology or a file) to `path` with every process on a port free now,
    so that a test or benchmark never meets a shop already running. Returns the storefront's port."""
    from peakshop.runtime.topology import load_topology

    processes = load_topology(base).processes
    ports = dict(zip(processes, free_ports(len(processes)), strict=True))
    lines = [f"name = {json.dumps(name)}", "embedded = false"]
    for process, spec in processes.items():
        services = ", ".join(json.dumps(s) for s in spec.services)
        lines += [f"[processes.{process}]", f"services = [{services}]", f"port = {ports[process]}"]
        lines.append(f"server = {json.dumps(spec.server)}")
    path.write_text("\n".join(lines) + "\n")
    return next(ports[p] for p, spec in processes.items() if "storefront" in spec.services)


def peakshop(*args: str) -> list[str]:
    return [sys.executable, "-m", "peakshop", *args]


@dataclass
class StartedShop:
    topology: str
    data_dir: Path
    base_url: str
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def restarts(self) -> list[str]:
        """What the shop's supervisor said of processes that died after it was up (none for `local`)."""
        try:
            return restarts_in(self.log.read_text(errors="replace"))
        except OSError:
            return []

    def stop(self, timeout: float = 60) -> int | None:
        """Ask the shop to stop as Ctrl-C would; kill it if it ignores that."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode


def start_shop(
    *,
    topology: str,
    data_dir: Path,
    log: Path,
    products: int,
    env_extra: dict[str, str],
    timeout: float = 300,
) -> StartedShop:
    """Start `peakshop up` on a free port and wait until it is ready."""
    port = free_port()
    env = {**os.environ, "PEAKSHOP_LOG_LEVEL": "warning", **env_extra}
    command = peakshop(
        "up",
        "--topology",
        topology,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--products",
        str(products),
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    shop = StartedShop(topology, data_dir, f"http://127.0.0.1:{port}", log, env, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ShopError(f"peakshop up exited with {process.returncode}:\n{shop.tail()}")
        if UP_MESSAGE in shop.tail(chars=10**8) and ready(shop.base_url):
            return shop
        time.sleep(0.25)  # waiting for a starting server; the deadline bounds it
    shop.stop()
    raise ShopError(f"peakshop up was not ready within {timeout:.0f} s:\n{shop.tail()}")


def ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def command_available(name: str, env: dict[str, str] | None = None) -> bool:
    """Whether this peakshop has the subcommand `name` (`--help` succeeds)."""
    try:
        done = subprocess.run(peakshop(name, "--help"), capture_output=True, env=env, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def audit(
    topology: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> dict[str, Any]:
    """`peakshop audit --json` on the shop's databases: {ok: true|false|null, checks, violations, note}."""
    if not command_available("audit", env):
        return {"ok": None, "note": "this peakshop has no `audit` command", "checks": [], "violations": []}
    command = peakshop("audit", "--topology", topology, "--data-dir", str(data_dir), "--json")
    try:
        done = subprocess.run(command, capture_output=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {
            "ok": False,
            "note": f"the audit did not finish within {timeout:.0f} s",
            "checks": [],
            "violations": [],
        }
    result = _last_json_object(done.stdout.decode(errors="replace"))
    if result is None or "ok" not in result:
        note = f"the audit exited with {done.returncode} without a JSON verdict: {done.stderr.decode(errors='replace')[-500:]}"
        return {"ok": False, "note": note, "checks": [], "violations": []}
    result["ok"] = bool(result["ok"]) and done.returncode == 0
    result.setdefault("checks", [])
    result.setdefault("violations", [])
    return result


def _last_json_object(text: str) -> dict[str, Any] | None:
    try:
        whole = json.loads(text)
        return whole if isinstance(whole, dict) else None
    except ValueError:
        pass
    start = text.find("{")
    while start != -1:
        try:
            found = json.loads(text[start:])
            if isinstance(found, dict):
                return found
        except ValueError:
            pass
        start = text.find("{", start + 1)
    return None


def set_stock(
    sku_id: str,
    quantity: int,
    per_customer_limit: int | None,
    topology: str,
    data_dir: Path,
    env: dict[str, str],
) -> str | None:
    """Give the flash-sale SKU its stock and limit; None on success, else why it was not done."""
    command = peakshop(
        "stock",
        "set",
        sku_id,
        "--quantity",
        str(quantity),
        "--topology",
        topology,
        "--data-dir",
        str(data_dir),
    )
    if per_customer_limit is not None:
        command += ["--per-customer-limit", str(per_customer_limit)]
    try:
        done = subprocess.run(command, capture_output=True, env=env, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`peakshop stock set` did not finish: {exc}"
    if done.returncode != 0:
        return f"`peakshop stock set` exited with {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}"
    return None
