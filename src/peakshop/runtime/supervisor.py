"""Run every process of a topology as a child of this one, with their logs prefixed, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import aiohttp
from rich.console import Console

from peakshop.runtime.topology import Topology

# What `peakshop up` prints once every process of the topology answers /readyz. The storefront alone
# can be ready before the services it calls, so whoever waits for a shop waits for this line.
UP_MESSAGE = "peakshop is up"
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")


class Supervisor:
    def __init__(self, topology_ref: str, topology: Topology, *, host: str, storefront_port: int) -> None:
        self.topology_ref = topology_ref
        self.topology = topology
        self.host = host
        self.storefront_port = storefront_port
        self.console = Console(stderr=True, highlight=False)
        self.children: dict[str, asyncio.subprocess.Process] = {}

    def _command(self, process: str) -> list[str]:
        spec = self.topology.processes[process]
        port = self.storefront_port if "storefront" in spec.services else spec.port
        host = self.host if "storefront" in spec.services else spec.host
        return [
            sys.executable, "-m", "peakshop", "serve",
            "--topology", self.topology_ref, "--process", process, "--host", host, "--port", str(port),
        ]  # fmt: skip

    async def _pump(self, name: str, colour: str, stream: asyncio.StreamReader) -> None:
        prefix = f"[{colour}]{name:>10}[/{colour}] │ "
        while line := await stream.readline():
            self.console.print(prefix + line.decode(errors="replace").rstrip(), markup=True, soft_wrap=True)

    async def _wait_ready(self, within: float = 90.0) -> None:
        urls = []
        for name in self.children:
            spec = self.topology.processes[name]
            port = self.storefront_port if "storefront" in spec.services else spec.port
            urls.append((name, f"http://127.0.0.1:{port}/readyz"))
        deadline = asyncio.get_running_loop().time() + within
        async with aiohttp.ClientSession() as session:
            for name, url in urls:
                while True:
                    if self.children[name].returncode is not None:
                        raise RuntimeError(f"{name} exited with status {self.children[name].returncode}")
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                            if r.status == 200:
                                break
                    if asyncio.get_running_loop().time() > deadline:
                        raise RuntimeError(f"{name} was not ready after {within:.0f} s")
                    await asyncio.sleep(0.2)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        pumps = []
        # Backends first, the storefront last: it is the one users reach.
        order = sorted(
            self.topology.processes, key=lambda p: "storefront" in self.topology.processes[p].services
        )
        for index, name in enumerate(order):
            child = await asyncio.create_subprocess_exec(
                *self._command(name),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=os.environ.copy(),
                start_new_session=True,  # Ctrl-C reaches us only; we decide how children stop
            )
            self.children[name] = child
            assert child.stdout is not None
            pumps.append(asyncio.create_task(self._pump(name, _COLOURS[index % len(_COLOURS)], child.stdout)))
        exited = [asyncio.create_task(c.wait()) for c in self.children.values()]
        status = 0
        try:
            ready = asyncio.create_task(self._wait_ready())
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([ready, stopped, *exited], return_when=asyncio.FIRST_COMPLETED)
            if ready in done and ready.exception() is None:
                self.console.print(
                    f"[bold green]{UP_MESSAGE}[/] ({self.topology.name}): "
                    f"http://{self.host}:{self.storefront_port}/api/products"
                )
                done, _ = await asyncio.wait([stopped, *exited], return_when=asyncio.FIRST_COMPLETED)
            elif ready in done:
                self.console.print(f"[bold red]start failed:[/] {ready.exception()}")
                status = 1
            if not stop.is_set() and status == 0:
                self.console.print("[bold red]a process exited; stopping the others[/]")
                status = 1
        finally:
            await self._stop_all()
            for task in pumps:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 5)
        return status

    async def _stop_all(self, grace: float = 20.0) -> None:
        for child in self.children.values():
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for name, child in self.children.items():
            try:
                await asyncio.wait_for(child.wait(), grace)
            except TimeoutError:
                self.console.print(f"[red]{name} did not stop in {grace:.0f} s; killing it[/]")
                child.kill()
                await child.wait()
