"""A process never shares its port: the server binds with SO_REUSEPORT, which the kernel would allow."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from peakshop.platform.settings import SettingsError
from peakshop.rehearsal.shop import free_port, free_ports, topology_on_free_ports
from peakshop.runtime.server import PortInUse, ensure_port_free
from peakshop.runtime.topology import load_topology


@contextmanager
def listening_as_granian_does() -> Iterator[int]:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def test_a_port_another_server_listens_on_is_refused() -> None:
    with (
        listening_as_granian_does() as port,
        pytest.raises(PortInUse, match=re.escape(f"127.0.0.1:{port} is already in use")),
    ):
        ensure_port_free("127.0.0.1", port)


def test_a_free_port_is_accepted_and_left_free() -> None:
    port = free_port()
    ensure_port_free("127.0.0.1", port)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_serve_on_a_taken_port_exits_with_a_clear_error(tmp_path: Path) -> None:
    with listening_as_granian_does() as port:
        result = subprocess.run(
            [sys.executable, "-m", "peakshop", "serve", "--topology", "local", "--process", "shop",
             "--port", str(port)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "PEAKSHOP_DATA_DIR": str(tmp_path)},
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"127.0.0.1:{port} is already in use" in result.stdout + result.stderr


def test_a_topology_with_two_processes_on_one_port_is_refused(tmp_path: Path) -> None:
    clash = tmp_path / "clash.toml"
    clash.write_text(
        'name = "clash"\nembedded = false\n'
        '[processes.a]\nservices = ["catalog"]\nport = 9001\n'
        '[processes.b]\nservices = ["users"]\nport = 9001\n'
    )
    with pytest.raises(SettingsError, match=re.escape("'a' and 'b' both listen on 127.0.0.1:9001")):
        load_topology(str(clash))


def test_free_ports_never_repeat_within_one_call() -> None:
    for _ in range(200):  # bind(0) alone repeats a port within eight picks about once in 300 tries
        ports = free_ports(8)
        assert len(set(ports)) == 8


def test_a_topology_on_free_ports_keeps_its_processes_and_moves_every_port(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    storefront = topology_on_free_ports("split", path, "split-test")
    split, moved = load_topology("split"), load_topology(str(path))
    assert {n: p.services for n, p in moved.processes.items()} == {
        n: p.services for n, p in split.processes.items()
    }
    assert moved.processes["storefront"].port == storefront
    assert len({p.port for p in moved.processes.values()}) == len(split.processes)
