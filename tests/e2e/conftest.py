"""The shop as users run it: `peakshop up` in a subprocess, reached over HTTP.

One shop per topology for the whole session (seeding is the slow part); each is stopped with
SIGINT at the end and must exit cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from peakshop.rehearsal.shop import free_port, topology_on_free_ports
from peakshop.runtime.supervisor import UP_MESSAGE
from tests.services import drop_namespace_exchange, need_service, scratch_database

PRODUCTS = 400
SEED = 7

# What every test shop runs with: cheap password hashes (the tests sign in hundreds of buyers), a
# log-in limit per address that hundreds of buyers on one loopback address do not hit, a reconciler
# that acts within seconds so recovery can be watched, and small connection pools, so that a split
# shop (seven processes) leaves PostgreSQL's 100 connections to the other tests running beside it.
TEST_SHOP_ENV = {
    "PEAKSHOP_LOG_LEVEL": "warning",
    "PEAKSHOP_DB_POOL_SIZE": "4",
    "PEAKSHOP_QUEUE_EXPIRES_SECONDS": "600",  # a test's queues go away after it
    "PEAKSHOP_USERS_ARGON2_TIME_COST": "1",
    "PEAKSHOP_USERS_ARGON2_MEMORY_KIB": "1024",
    "PEAKSHOP_USERS_LOGIN_ATTEMPTS_PER_CLIENT": "100000",
    "PEAKSHOP_ORDERS_RECONCILE_INTERVAL_SECONDS": "0.5",
    # Longer than a checkout can take in the 500-buyer flash sale on a slow spell of a 2-core
    # machine: the reconciler takes an attempt untouched for this long for an abandoned one, and at
    # 1 s it once released a live checkout's units (the buyer got `reservation-expired`).
    "PEAKSHOP_ORDERS_RECONCILE_AFTER_SECONDS": "5",
}


@dataclass
class Shop:
    topology: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path
    env: dict[str, str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `peakshop` command against this shop's databases."""
        command = [
            sys.executable,
            "-m",
            "peakshop",
            *args,
            "--topology",
            self.topology,
            "--data-dir",
            str(self.data_dir),
        ]
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)

    def audit(self) -> dict:  # type: ignore[type-arg]
        result = self.cli("audit", "--json")
        report = json.loads(result.stdout)
        assert result.returncode == (0 if report["ok"] else 1), result.stderr
        return report  # type: ignore[no-any-return]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"{self.topology} shop ignored Ctrl-C:\n{self.output()[-3000:]}"
                ) from None
        return self.process.returncode


def start_shop(
    topology: str, workdir: Path, env_extra: dict[str, str], timeout: float = 120, port: int | None = None
) -> Shop:
    port = port or free_port()
    log = workdir / f"shop-{Path(topology).stem}.log"
    env = {**os.environ, **TEST_SHOP_ENV, **env_extra}
    data_dir = workdir / "data"
    command = [
        sys.executable, "-m", "peakshop", "up", "--topology", topology, "--port", str(port),
        "--data-dir", str(data_dir), "--products", str(PRODUCTS),
    ]  # fmt: skip
    earlier_starts = log.read_text(errors="replace").count(UP_MESSAGE) if log.exists() else 0
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    shop = Shop(topology, f"http://127.0.0.1:{port}", process, log, data_dir, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"peakshop up exited with {process.returncode}:\n{shop.output()[-4000:]}")
        try:
            everyone_up = shop.output().count(UP_MESSAGE) > earlier_starts
            if everyone_up and httpx.get(shop.base_url + "/readyz", timeout=1).status_code == 200:
                return shop
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a starting server; the deadline above bounds it
    shop.stop()
    raise AssertionError(f"peakshop up was not ready in {timeout:.0f} s:\n{shop.output()[-4000:]}")


@contextmanager
def fresh_shop(topology: str, workdir: Path, env_extra: dict[str, str] | None = None) -> Iterator[ShopSetup]:
    """A shop of its own (data and servers' namespaces), for tests that crash or restart it."""
    if topology == "local":
        yield ShopSetup("local", workdir, dict(env_extra or {}))
        return
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        need_service(name, "127.0.0.1", port)
    namespace = f"t{uuid.uuid4().hex[:10]}"
    with scratch_database() as url:
        env = {
            "PEAKSHOP_POSTGRES_URL": url,
            "PEAKSHOP_NAMESPACE": namespace,
            "PEAKSHOP_REDIS_URL": "redis://127.0.0.1:6379/14",
            # Also for a shop started by something else than `start`, such as a rehearsal.
            "PEAKSHOP_QUEUE_EXPIRES_SECONDS": TEST_SHOP_ENV["PEAKSHOP_QUEUE_EXPIRES_SECONDS"],
            **(env_extra or {}),
        }
        topology_file = workdir / "topology.toml"
        port = topology_on_free_ports("split", topology_file, "split-test")
        try:
            yield ShopSetup(str(topology_file), workdir, env, port)
        finally:
            drop_namespace_exchange(namespace)


@dataclass
class ShopSetup:
    topology: str
    workdir: Path
    env: dict[str, str]
    port: int | None = None  # the storefront's; None: a free one at each start

    def start(self, **more_env: str) -> Shop:
        return start_shop(self.topology, self.workdir, {**self.env, **more_env}, port=self.port)


@pytest.fixture(scope="session")
def local_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    shop = start_shop("local", tmp_path_factory.mktemp("local"), {})
    yield shop
    assert shop.stop() == 0, shop.output()[-3000:]


@pytest.fixture(scope="session")
def split_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with fresh_shop("split", tmp_path_factory.mktemp("split")) as setup:
        shop = setup.start()
        yield shop
        assert shop.stop() == 0, shop.output()[-3000:]


@pytest.fixture(params=["local", "split"])
def shop(request: pytest.FixtureRequest) -> Shop:
    return request.getfixturevalue(f"{request.param}_shop")  # type: ignore[no-any-return]
