"""Run every process of a topology as a child of this one, with their logs prefixed, until Ctrl-C.

Once the shop is up, a process that dies (a crash, the kernel's OOM killer, a stray `kill -9`) is
started again, after a pause that doubles with each quick death, the way Kubernetes restarts a pod's
container: the other processes keep serving meanwhile. A process that dies before the shop was ever
up is a failed start (a wrong setting, a port in use), and stops everything with status 1.

A process can also hang without dying: a deadlock, a call that blocks its event loop, a stopped
process. It keeps its port, so its callers wait out their timeouts. Like a Kubernetes liveness probe,
the supervisor asks every ready process for `/healthz`; one that leaves several checks in a row
unanswered is killed, and so started again like any other dead process. `/healthz` is answered by the
event loop alone, so a process that is only busy at peak answers it, late; the limits are set far
above the slowest answer measured under a surge (`benchmarks/liveness.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from rich.console import Console

from peakshop.runtime.topology import Topology

# What `peakshop up` prints once every process of the topology answers /readyz. The storefront alone
# can be ready before the services it calls, so whoever waits for a shop waits for this line.
UP_MESSAGE = "peakshop is up"
# What `peakshop up` prints each time a process died after the shop was up (`restarts_in` finds them).
RESTART_MESSAGE = "starting it again in"
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")


def restarts_in(log: str) -> list[str]:
    """The lines of a `peakshop up` log that report a process dying after the shop was up."""
    return [line.strip() for line in log.splitlines() if RESTART_MESSAGE in line and "│" not in line]


@dataclass
class RestartBackoff:
    """How long to wait before starting a dead process again.

    The first restart waits `first` seconds and each quick death after it twice as long as the last,
    up to `cap`; a process that stayed up for `settle` seconds before it died starts from `first`
    again. Nothing is ever given up: a process that cannot stay up is retried every `cap` seconds,
    and says why in its log, while the rest of the shop goes on serving.
    """

    first: float = 0.5
    cap: float = 30.0
    settle: float = 60.0
    _next: float = field(default=0.0, init=False)

    def delay(self, uptime: float) -> float:
        """The pause before the next start of a process that died after `uptime` seconds."""
        if self._next == 0.0 or uptime >= self.settle:
            self._next = self.first
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay


@dataclass(frozen=True)
class Liveness:
    """When a process counts as hung: `failures` checks of /healthz in a row, one every `period`
    seconds, each unanswered within `timeout` seconds (or answered with anything but 200)."""

    period: float = 2.0
    timeout: float = 5.0
    failures: int = 3  # 0: never checked

    @property
    def on(self) -> bool:
        return self.failures > 0


async def watch_liveness(session: aiohttp.ClientSession, url: str, liveness: Liveness) -> int:
    """Return once `url` has missed `liveness.failures` checks in a row (the count); runs until then."""
    loop = asyncio.get_running_loop()
    missed = 0
    while True:
        started = loop.time()
        answered = False
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=liveness.timeout)) as response:
                answered = response.status == 200
        missed = 0 if answered else missed + 1
        if missed >= liveness.failures:
            return missed
        await asyncio.sleep(max(0.0, liveness.period - (loop.time() - started)))


def _killed_it(watch: asyncio.Future[bool] | None) -> bool:
    """Whether a liveness watcher ended by killing its process (not cancelled, not failed)."""
    if watch is None or not watch.done() or watch.cancelled() or watch.exception() is not None:
        return False
    return watch.result()


def _ended(returncode: int | None) -> str:
    """How a child ended, as an operator reads it: `killed by SIGKILL` rather than status -9."""
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


class Supervisor:
    def __init__(
        self,
        topology_ref: str,
        topology: Topology,
        *,
        host: str,
        storefront_port: int,
        liveness: Liveness | None = None,
        start_within: float = 90.0,
    ) -> None:
        self.topology_ref = topology_ref
        self.topology = topology
        self.host = host
        self.storefront_port = storefront_port
        self.liveness = liveness or Liveness()
        self.start_within = start_within
        self.console = Console(stderr=True, highlight=False)
        self.children: dict[str, asyncio.subprocess.Process] = {}
        self._colours: dict[str, str] = {}
        self._pumps: list[asyncio.Task[None]] = []

    def _address(self, process: str) -> tuple[str, int]:
        """Where `process` listens: the storefront's from the command line, the others' from the topology."""
        spec = self.topology.processes[process]
        if "storefront" in spec.services:
            return self.host, self.storefront_port
        return spec.host, spec.port

    def _command(self, process: str) -> list[str]:
        host, port = self._address(process)
        return [
            sys.executable, "-m", "peakshop", "serve",
            "--topology", self.topology_ref, "--process", process, "--host", host, "--port", str(port),
        ]  # fmt: skip

    def _url(self, process: str, path: str) -> str:
        return f"http://127.0.0.1:{self._address(process)[1]}{path}"

    async def _spawn(self, name: str) -> asyncio.subprocess.Process:
        child = await asyncio.create_subprocess_exec(
            *self._command(name),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=os.environ.copy(),
            start_new_session=True,  # Ctrl-C reaches us only; we decide how children stop
        )
        self.children[name] = child
        assert child.stdout is not None
        self._pumps.append(asyncio.create_task(self._pump(name, child.stdout)))
        return child

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        colour = self._colours[name]
        prefix = f"[{colour}]{name:>10}[/{colour}] │ "
        while line := await stream.readline():
            self.console.print(prefix + line.decode(errors="replace").rstrip(), markup=True, soft_wrap=True)

    async def _until_ready(
        self,
        session: aiohttp.ClientSession,
        name: str,
        child: asyncio.subprocess.Process,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Return once `child` answers /readyz (or `stop` is set); raise if it exits first."""
        url = self._url(name, "/readyz")
        while stop is None or not stop.is_set():
            if child.returncode is not None:
                raise RuntimeError(f"{name} exited with status {child.returncode}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)

    async def _wait_ready(self) -> None:
        async def every_one() -> None:
            async with aiohttp.ClientSession() as session:
                for name, child in list(self.children.items()):
                    await self._until_ready(session, name, child)

        try:
            await asyncio.wait_for(every_one(), self.start_within)
        except TimeoutError:
            raise RuntimeError(f"not every process was ready after {self.start_within:.0f} s") from None

    async def _keep(self, name: str, stop: asyncio.Event) -> None:
        """Start `name` again each time it dies, or hangs, until the supervisor stops."""
        loop = asyncio.get_running_loop()
        backoff = RestartBackoff()
        started = loop.time()
        restarts = 0
        ready = True  # the shop is up, so every process was ready once
        async with aiohttp.ClientSession() as session:
            while True:
                child = self.children[name]
                waiters: list[asyncio.Future[Any]] = [
                    asyncio.ensure_future(child.wait()),
                    asyncio.ensure_future(stop.wait()),
                ]
                watch: asyncio.Future[bool] | None = None
                if ready and self.liveness.on:
                    watch = asyncio.ensure_future(self._kill_if_hung(session, name, child))
                    waiters.append(watch)
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                if stop.is_set():
                    return
                await child.wait()  # at once, unless it is being killed for hanging
                hung = _killed_it(watch)
                delay = backoff.delay(loop.time() - started)
                restarts += 1
                self.console.print(
                    f"[bold red]{name} {'was killed for hanging' if hung else _ended(child.returncode)}[/]; "
                    f"{RESTART_MESSAGE} {delay:.1f} s (restart {restarts})"
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
                child = await self._spawn(name)
                started = loop.time()
                ready = await self._ready_again(session, name, child, stop)
                if ready and not stop.is_set():
                    self.console.print(f"[bold green]{name} is ready again[/] (restart {restarts})")

    async def _ready_again(
        self,
        session: aiohttp.ClientSession,
        name: str,
        child: asyncio.subprocess.Process,
        stop: asyncio.Event,
    ) -> bool:
        """Whether a restarted `child` came up; one not ready in time is killed, to be started again."""
        try:
            await asyncio.wait_for(self._until_ready(session, name, child, stop), self.start_within)
        except RuntimeError:  # died again: the caller's loop reports it
            return False
        except TimeoutError:
            self.console.print(
                f"[bold red]{name} was not ready {self.start_within:g} s after it started[/]; killing it"
            )
            child.kill()
            return False
        return True

    async def _kill_if_hung(
        self, session: aiohttp.ClientSession, name: str, child: asyncio.subprocess.Process
    ) -> bool:
        """Kill `child` once it misses its liveness checks (True); its keeper then starts it again."""
        missed = await watch_liveness(session, self._url(name, "/healthz"), self.liveness)
        if child.returncode is not None:
            return False  # it died on its own meanwhile
        self.console.print(
            f"[bold red]{name} is hung[/]: {missed} checks of /healthz in a row unanswered within "
            f"{self.liveness.timeout:g} s; killing it"
        )
        with contextlib.suppress(ProcessLookupError):  # it died this very moment
            child.kill()
        return True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # Backends first, the storefront last: it is the one users reach.
        order = sorted(
            self.topology.processes, key=lambda p: "storefront" in self.topology.processes[p].services
        )
        for index, name in enumerate(order):
            self._colours[name] = _COLOURS[index % len(_COLOURS)]
            await self._spawn(name)
        exited = [asyncio.create_task(c.wait()) for c in self.children.values()]
        ready = asyncio.create_task(self._wait_ready())
        stopped = asyncio.create_task(stop.wait())
        keepers: list[asyncio.Task[None]] = []
        status = 0
        try:
            done, _ = await asyncio.wait([ready, stopped, *exited], return_when=asyncio.FIRST_COMPLETED)
            if ready in done and ready.exception() is None:
                self.console.print(
                    f"[bold green]{UP_MESSAGE}[/] ({self.topology.name}): "
                    f"http://{self.host}:{self.storefront_port}/api/products"
                )
                keepers = [asyncio.create_task(self._keep(name, stop)) for name in order]
                await stopped
            elif ready in done:
                self.console.print(f"[bold red]start failed:[/] {ready.exception()}")
                status = 1
            elif not stop.is_set():
                self.console.print("[bold red]start failed:[/] a process exited before the shop was up")
                status = 1
        finally:
            stop.set()
            for task in (*exited, ready, stopped):
                task.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            await self._stop_all()
            for task in self._pumps:
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
