"""The shop as users run it: `peakshop up` in a subprocess, reached over HTTP.

One shop per topology for the whole session (seeding is the slow part); each is stopped with
SIGINT at the end and must exit cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from peakshop.runtime.topology import load_topology
from tests.services import need_service, scratch_database

PRODUCTS = 400
SEED = 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Shop:
    topology: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

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


def start_shop(topology: str, workdir: Path, env_extra: dict[str, str], timeout: float = 120) -> Shop:
    port = _free_port()
    log = workdir / f"shop-{Path(topology).stem}.log"
    env = {**os.environ, "PEAKSHOP_LOG_LEVEL": "warning", **env_extra}
    command = [
        sys.executable, "-m", "peakshop", "up", "--topology", topology, "--port", str(port),
        "--data-dir", str(workdir / "data"), "--products", str(PRODUCTS),
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    shop = Shop(topology, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"peakshop up exited with {process.returncode}:\n{shop.output()[-4000:]}")
        try:
            if httpx.get(shop.base_url + "/readyz", timeout=1).status_code == 200:
                return shop
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a starting server; the deadline above bounds it
    shop.stop()
    raise AssertionError(f"peakshop up was not ready in {timeout:.0f} s:\n{shop.output()[-4000:]}")


def _split_topology(path: Path) -> str:
    """The built-in split topology on free ports, so a test never collides with a running shop."""
    split = load_topology("split")
    lines = ['name = "split-test"', "embedded = false"]
    for name, spec in split.processes.items():
        services = ", ".join(f'"{s}"' for s in spec.services)
        lines += [f"[processes.{name}]", f"services = [{services}]", f"port = {_free_port()}"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def local_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    shop = start_shop("local", tmp_path_factory.mktemp("local"), {})
    yield shop
    assert shop.stop() == 0, shop.output()[-3000:]


@pytest.fixture(scope="session")
def split_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    need_service("PostgreSQL", "127.0.0.1", 5432)
    need_service("Redis", "127.0.0.1", 6379)
    need_service("RabbitMQ", "127.0.0.1", 5672)
    workdir = tmp_path_factory.mktemp("split")
    topology = _split_topology(workdir / "topology.toml")
    with scratch_database() as url:
        env = {
            "PEAKSHOP_POSTGRES_URL": url,
            "PEAKSHOP_NAMESPACE": f"t{uuid.uuid4().hex[:10]}",
            "PEAKSHOP_REDIS_URL": "redis://127.0.0.1:6379/14",
        }
        shop = start_shop(topology, workdir, env)
        yield shop
        assert shop.stop() == 0, shop.output()[-3000:]


@pytest.fixture(params=["local", "split"])
def shop(request: pytest.FixtureRequest) -> Shop:
    return request.getfixturevalue(f"{request.param}_shop")  # type: ignore[no-any-return]
