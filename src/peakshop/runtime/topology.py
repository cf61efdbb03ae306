"""Topology files: which services share a process, and where each process listens."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

import msgspec

from peakshop.platform.settings import SettingsError

# The HTTP servers a process may run (ADR 0004): Granian where buyers connect, uvicorn for service calls.
ServerKind = Literal["granian", "uvicorn"]
SERVERS: tuple[ServerKind, ...] = get_args(ServerKind)


class ProcessSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    services: list[str]
    port: int
    host: str = "127.0.0.1"
    server: ServerKind = "granian"


class Topology(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    embedded: bool
    processes: dict[str, ProcessSpec]

    def process_of(self, service: str) -> str:
        for name, spec in self.processes.items():
            if service in spec.services:
                return name
        raise SettingsError(f"topology {self.name!r} runs no process with service {service!r}")

    def url_of(self, service: str, environ: Mapping[str, str] | None = None) -> str:
        """Where `service` answers: `PEAKSHOP_<SERVICE>_URL` if set, else its process's address."""
        env = os.environ if environ is None else environ
        override = env.get(f"PEAKSHOP_{service.upper()}_URL")
        if override:
            return override.rstrip("/")
        spec = self.processes[self.process_of(service)]
        return f"http://{spec.host}:{spec.port}"

    def with_port(self, process: str, port: int, host: str | None = None) -> Topology:
        spec = self.processes[process]
        updated = msgspec.structs.replace(spec, port=port, host=host or spec.host)
        return msgspec.structs.replace(self, processes={**self.processes, process: updated})


BUILT_IN = ("local", "split", "grouped")


def load_topology(name_or_path: str) -> Topology:
    """A built-in topology by name, or a topology file by path."""
    if name_or_path in BUILT_IN:
        text = resources.files("peakshop.runtime").joinpath(f"topologies/{name_or_path}.toml").read_text()
        source = name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise SettingsError(
                f"no topology {name_or_path!r}: use one of {', '.join(BUILT_IN)} or a file path"
            )
        text, source = path.read_text(), str(path)
    try:
        topology = msgspec.convert(tomllib.loads(text), Topology)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"topology {source}: {exc}") from exc
    _refuse_shared_addresses(topology, source)
    return topology


def _refuse_shared_addresses(topology: Topology, source: str) -> None:
    """Two processes on one address would split its traffic between them: the server binds with
    SO_REUSEPORT, so the kernel would allow it and send each connection to either process."""
    seen: dict[tuple[str, int], str] = {}
    for name, spec in topology.processes.items():
        earlier = seen.setdefault((spec.host, spec.port), name)
        if earlier != name:
            raise SettingsError(
                f"topology {source}: processes {earlier!r} and {name!r} both listen on {spec.host}:{spec.port}"
            )
