"""Both HTTP servers a topology may name stop the way a load balancer expects, and fail clearly.

Each test runs `peakshop serve` as a real subprocess on the embedded databases, so that the signal
handling, the drain and the exit status are the ones a pod would see.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import uvicorn

from peakshop.platform.settings import SettingsError
from peakshop.rehearsal.shop import free_port, topology_on_free_ports
from peakshop.runtime.topology import SERVERS, load_topology


def _topology(tmp_path: Path, server: str, port: int) -> Path:
    path = tmp_path / f"{server}.toml"
    path.write_text(
        f'name = "one"\nembedded = true\n[processes.shop]\nservices = ["catalog"]\nport = {port}\n'
        f'server = "{server}"\n'
    )
    return path


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None  # not listening (yet, or any more)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PEAKSHOP_DATA_DIR": str(tmp_path), **extra}


def _wait_for(predicate: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)  # polling a process we do not control; the deadline bounds it
    raise AssertionError(f"{what} within {limit} s")


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_drains_then_exits_cleanly(tmp_path: Path, server: str) -> None:
    port = free_port()
    topology = _topology(tmp_path, server, port)
    command = [sys.executable, "-m", "peakshop", "serve", "--topology", str(topology), "--process", "shop"]
    subprocess.run(
        [sys.executable, "-m", "peakshop", "migrate", "--topology", str(topology), "--data-dir", str(tmp_path)],
        check=True, capture_output=True, timeout=60, env=_env(tmp_path),
    )  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
        env=_env(tmp_path, PEAKSHOP_DRAIN_SECONDS="1.5", PEAKSHOP_LOG_LEVEL="info"),
    )  # fmt: skip
    ready = f"http://127.0.0.1:{port}/readyz"
    try:
        _wait_for(lambda: _status(ready) == 200, 60, f"{server} did not become ready")
        process.send_signal(signal.SIGTERM)
        # While it drains, it still answers, and says it is not ready: traffic moves elsewhere.
        _wait_for(lambda: _status(ready) == 503, 1.0, f"{server} did not report draining")
        assert process.poll() is None
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    assert f'"server": "{server}"' in output.decode()
    assert _status(ready) is None  # it stopped listening


@pytest.mark.parametrize("server", SERVERS)
def test_a_failed_startup_exits_with_a_clear_error(tmp_path: Path, server: str) -> None:
    topology = _topology(tmp_path, server, free_port())
    topology.write_text(topology.read_text().replace("embedded = true", "embedded = false"))
    result = subprocess.run(
        [sys.executable, "-m", "peakshop", "serve", "--topology", str(topology), "--process", "shop"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=_env(tmp_path, PEAKSHOP_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none"),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: shop: the app did not start" in " ".join((result.stdout + result.stderr).split())


def test_an_unknown_server_is_refused_by_name(tmp_path: Path) -> None:
    path = _topology(tmp_path, "gunicorn", 9001)
    with pytest.raises(
        SettingsError, match=re.escape("Invalid enum value 'gunicorn' - at `$.processes[...].server`")
    ):
        load_topology(str(path))


def test_built_in_topologies_serve_buyers_on_granian_and_service_calls_on_uvicorn() -> None:
    for name in ("split", "grouped"):
        processes = load_topology(name).processes
        assert {p: s.server for p, s in processes.items() if "storefront" in s.services} == {
            "storefront": "granian"
        }
        assert {s.server for p, s in processes.items() if "storefront" not in s.services} == {"uvicorn"}
    assert load_topology("local").processes["shop"].server == "granian"


def test_moving_a_topology_to_free_ports_keeps_each_process_server(tmp_path: Path) -> None:
    path = tmp_path / "moved.toml"
    topology_on_free_ports("split", path, "moved")
    assert {n: p.server for n, p in load_topology(str(path)).processes.items()} == {
        n: p.server for n, p in load_topology("split").processes.items()
    }


def test_uvicorn_keeps_an_idle_connection_longer_than_a_service_client_does() -> None:
    # A POST that meets a connection the server closed while idle is not sent again (it may have
    # been acted on), so the server must never be the first to close an idle service connection.
    from litestar import Litestar

    from peakshop.platform.http_client import ServiceHttpClient
    from peakshop.runtime.server import _server

    server = _server("uvicorn", Litestar([]), "127.0.0.1", 0)
    assert isinstance(server, uvicorn.Server)
    assert server.config.timeout_keep_alive > ServiceHttpClient("x", "http://h:1")._idle_seconds
