"""The load generator: Locust as a library, driven by an open (arrival-rate) schedule.

Locust's own users run a closed loop (a user waits for its answer before its next request), so a
slow shop would quietly lower the load it is offered. Here each generator process runs a single
Locust `FastHttpUser` whose one task is a scheduler: it starts every journey of the schedule at
its intended time in a greenlet of its own, whatever the shop is doing, up to `max_in_flight`
journeys at once. A start with no free slot is dropped; a start made later than the tolerance is
counted late. Every request's latency is timed from when it was meant to be sent (for a journey's
first request, the journey's intended start), so waiting for the generator or for a connection is
part of the latency the report shows, as it would be for a shopper.

Run as `python -m peakshop.rehearsal.engine PLAN` (in-process, or the master of `workers`
worker processes it starts itself) or `... --worker --master-port P PLAN` (one worker). The master
prints one `progress {json}` line a second and writes the merged samples to the plan's path.
"""

from __future__ import annotations

# Locust patches the standard library for gevent as it is imported: it must come first.
import locust  # isort: skip

import argparse
import json
import logging
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.pool
import locust.runners
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.exception import StopUser

from peakshop.rehearsal.journeys import JOURNEY_FUNCTIONS, Answer, Visit, classify
from peakshop.rehearsal.plan import Plan
from peakshop.rehearsal.samples import Recorder
from peakshop.rehearsal.schedule import arrivals, rate_at
from peakshop.rehearsal.shop import free_port

log = logging.getLogger("peakshop.rehearsal")

START_MESSAGE = "peakshop_rehearsal_start"
DONE_MESSAGE = "peakshop_rehearsal_done"
IN_FLIGHT_SAMPLE_S = 0.1
START_DELAY_S = 0.5
EARLY_START_S = 0.001


class JourneyRandom(random.Random):
    """A journey's own random choices: SplitMix64, which seeds in a microsecond where the standard
    generator takes several, for thousands of journeys a second. Not for anything secret."""

    _MASK = (1 << 64) - 1

    def seed(self, a: Any = None, version: int = 2) -> None:
        self._state = int(a or 0) & self._MASK

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & self._MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self._MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self._MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        return (self._next() >> 11) * (1.0 / (1 << 53))

    def getrandbits(self, k: int) -> int:
        bits = 0
        for shift in range(0, k, 64):
            bits |= self._next() << shift
        return bits & ((1 << k) - 1)


class Driver:
    """Starts this process's share of the schedule and runs each journey it starts."""

    def __init__(self, plan: Plan, recorder: Recorder) -> None:
        self.plan = plan
        self.recorder = recorder
        self.started_at = gevent.event.AsyncResult()  # the run's common start (epoch seconds)
        self.finished = gevent.event.Event()
        self.share = (0, 1)  # (this worker's index, how many workers)

    def run(self, user: FastHttpUser) -> None:
        t0 = self.started_at.get(timeout=60)
        plan = self.plan
        index, count = self.share
        pool = gevent.pool.Pool(plan.max_in_flight_per_process)
        sampler = gevent.spawn(self._sample_in_flight, pool, t0)
        tolerance = plan.late_tolerance_ms / 1000
        try:
            for arrival in arrivals(plan.stages, plan.journeys, process=plan.arrivals, seed=plan.seed):
                if arrival.index % count != index:
                    continue
                due = t0 + arrival.at
                delay = due - time.time()
                # Starts due within a millisecond go now: one sleep per start would cost more
                # than the start itself at thousands a second. Latency is still timed from `due`.
                if delay > EARLY_START_S:
                    gevent.sleep(delay)
                if pool.full():
                    self.recorder.arrival(arrival.at, "dropped")
                    continue
                late = time.time() - due > tolerance
                self.recorder.arrival(arrival.at, "late" if late else "started")
                pool.spawn(self._journey, user, arrival.index, arrival.journey, due, t0)
            pool.join(timeout=plan.drain_s)
            self.recorder.abandoned += len(pool)
            pool.kill(block=True, timeout=5)
        finally:
            sampler.kill()
            self.finished.set()

    def _sample_in_flight(self, pool: gevent.pool.Pool, t0: float) -> None:
        while True:
            gevent.sleep(IN_FLIGHT_SAMPLE_S)
            self.recorder.in_flight(time.time() - t0, len(pool))

    def _journey(self, user: FastHttpUser, index: int, journey: str, due: float, t0: float) -> None:
        recorder = self.recorder
        intended = due
        first = True
        rng = JourneyRandom(self.plan.seed * 1_000_003 + index)
        think = self.plan.think_time_s

        def send(
            method: str, path: str, step: str, *, body: Any = None, headers: dict[str, str] | None = None
        ) -> Answer:
            nonlocal intended, first
            if not first and think > 0:
                # The shopper reads the page before the next click; the click's intended time is
                # then, and any lateness beyond it is the generator's or the shop's, and counted.
                intended += rng.uniform(0.5 * think, 1.5 * think)
                gevent.sleep(max(0.0, intended - time.time()))
            first = False
            request_headers = dict(headers or {})
            data = None
            if body is not None:
                data = json.dumps(body)
                request_headers["Content-Type"] = "application/json"
            with user.client.request(
                method,
                path,
                name=f"{journey}: {step}",
                data=data,
                headers=request_headers,
                catch_response=True,
            ) as response:
                ended = time.time()
                status = int(getattr(response, "status_code", 0) or 0)
                content = (response.content or b"") if status else b""
                kind = classify(status, content)
                latency_ms = max(0.0, ended - intended) * 1000
                # Locust's own statistics see the same latency, timed from the intended start.
                response.request_meta["response_time"] = latency_ms
                if kind in ("ok", "business"):
                    response.success()
                else:
                    response.failure(f"{kind}: HTTP {status}" if status else f"transport: {response.error!r}")
            recorder.request(journey, step, ended - t0, latency_ms, kind)
            intended = ended
            return Answer(status, content, response.headers or {})

        visit = Visit(index, self.plan, rng, send, recorder.outcome)
        began = time.time()
        try:
            JOURNEY_FUNCTIONS[journey](visit)
        except Exception:
            log.exception("journey %s #%d crashed", journey, index)
            recorder.outcome("journey_crashed")
        finally:
            recorder.journey_span(began - t0, time.time() - t0)


def user_class(plan: Plan, driver: Driver) -> type[FastHttpUser]:
    """The one Locust user of each process; its task is the scheduler (built per plan)."""

    class RehearsalArrivals(FastHttpUser):
        host = plan.target
        wait_time = constant(0)
        # One shared connection pool for every journey in flight in this process.
        concurrency = plan.max_in_flight_per_process
        network_timeout = plan.request_timeout_s
        connection_timeout = min(10.0, plan.request_timeout_s)
        max_retries = 0

        @task
        def run_schedule(self) -> None:
            driver.run(self)
            raise StopUser()

    return RehearsalArrivals


def _progress(plan: Plan, recorder: Recorder, t0: float, workers_done: int) -> dict[str, Any]:
    elapsed = max(0.0, time.time() - t0)
    now = int(elapsed)
    recent = recorder.window(now, 5)
    last = recorder.window(now, 1)
    latency = recorder.window(now, 10).requests.latency
    total = recorder.total()
    starts = recorder.window(now + 1, now + 1)
    requests = recent.requests.requests
    return {
        "elapsed_s": round(elapsed, 1),
        "remaining_s": round(max(0.0, plan.duration_s - elapsed), 1),
        "arrival_rate": round(rate_at(plan.stages, elapsed), 2),
        "concurrent_users": max(last.in_flight_max, round(last.user_seconds)),
        "rps": round(requests / 5, 1),
        "error_ratio_5xx": (recent.requests.errors_5xx / requests) if requests else 0.0,
        "p99_ms": latency.percentile(0.99),
        "requests": total.requests,
        "errors_5xx": total.errors_5xx,
        "dropped": starts.dropped,
        "late": starts.late,
        "workers_done": workers_done,
    }


def _print_progress(payload: dict[str, Any]) -> None:
    sys.stdout.write("progress " + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_master(
    plan_path: Path, *, bind_host: str = "127.0.0.1", bind_port: int = 0, spawn_workers: bool = True
) -> int:
    """Run the whole schedule, in this process or across `plan.workers` worker processes.

    Workers are started here as local processes, or (`spawn_workers=False`, e.g. worker pods on
    Kubernetes) are expected to connect to `bind_host:bind_port` by themselves.
    """
    plan = Plan.load(plan_path)
    recorder = Recorder()
    driver = Driver(plan, recorder)
    environment = Environment(user_classes=[user_class(plan, driver)], host=plan.target)
    deadline_after_start = plan.duration_s + plan.drain_s + 30
    workers: list[subprocess.Popen[bytes]] = []
    done = {"count": 0}

    if plan.workers <= 0:
        runner: locust.runners.Runner = environment.create_local_runner()
        t0 = time.time() + START_DELAY_S
        driver.started_at.set(t0)
        runner.start(1, spawn_rate=1)
        expected = 1

        def finished() -> bool:
            return driver.finished.is_set()
    else:
        port = bind_port or free_port()
        master = environment.create_master_runner(master_bind_host=bind_host, master_bind_port=port)
        runner = master

        def on_done(environment: Environment, msg: Any, **_: Any) -> None:
            recorder.absorb(msg.data or {})
            done["count"] += 1

        master.register_message(DONE_MESSAGE, on_done)

        @environment.events.worker_report.add_listener
        def on_report(client_id: str, data: dict[str, Any]) -> None:
            recorder.absorb(data.get("peakshop", {}))

        command = [sys.executable, "-m", "peakshop.rehearsal.engine", "--worker", "--master-port", str(port)]
        for _ in range(plan.workers if spawn_workers else 0):
            workers.append(subprocess.Popen([*command, str(plan_path)], stdout=subprocess.DEVNULL))
        # Pods may take a while to be scheduled; local processes connect within seconds.
        connect_by = time.time() + (60 if spawn_workers else 600)
        while master.worker_count < plan.workers and time.time() < connect_by:
            gevent.sleep(0.1)
        if master.worker_count < plan.workers:
            log.error("only %d of %d workers connected", master.worker_count, plan.workers)
            master.quit()
            _stop(workers)
            return 3
        t0 = time.time() + 2 * START_DELAY_S
        master.send_message(START_MESSAGE, {"t0": t0})
        master.start(plan.workers, spawn_rate=plan.workers)
        expected = plan.workers

        def finished() -> bool:
            return done["count"] >= expected

    deadline = t0 + deadline_after_start
    while not finished() and time.time() < deadline:
        gevent.sleep(1.0)
        _print_progress(_progress(plan, recorder, t0, done["count"]))
    timed_out = not finished()
    if plan.workers > 0:
        gevent.sleep(0.5)  # the last worker reports are on their way
    _print_progress(_progress(plan, recorder, t0, expected if not timed_out else done["count"]))
    runner.quit()
    _stop(workers)
    samples = {
        "t0": t0,
        "duration_s": plan.duration_s,
        "workers": plan.workers,
        "timed_out": timed_out,
        "locust_version": locust.__version__,
        "locust": {
            "requests": environment.stats.total.num_requests,
            "failures": environment.stats.total.num_failures,
        },
        "generator": {"peak_rss_mb": round(_peak_rss_mb(), 1), "pid": os.getpid()},
        "recorder": recorder.to_json(),
    }
    Path(plan.samples_path).write_text(json.dumps(samples), encoding="utf-8")
    return 0 if not timed_out else 4


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for process in workers:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_worker(plan_path: Path, master_port: int, master_host: str = "127.0.0.1") -> int:
    plan = Plan.load(plan_path)
    recorder = Recorder()
    driver = Driver(plan, recorder)
    environment = Environment(user_classes=[user_class(plan, driver)], host=plan.target)
    runner = environment.create_worker_runner(master_host, master_port)

    def on_start(environment: Environment, msg: Any, **_: Any) -> None:
        driver.share = (runner.worker_index, plan.workers)
        driver.started_at.set(float(msg.data["t0"]))

    runner.register_message(START_MESSAGE, on_start)

    @environment.events.report_to_master.add_listener
    def on_report(client_id: str, data: dict[str, Any]) -> None:
        data["peakshop"] = recorder.export()

    def report_when_finished() -> None:
        driver.finished.wait()
        runner.send_message(DONE_MESSAGE, recorder.export())

    gevent.spawn(report_when_finished)
    runner.greenlet.join(timeout=plan.duration_s + plan.drain_s + 180)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peakshop.rehearsal.engine", description=__doc__)
    parser.add_argument("plan", type=Path)
    parser.add_argument("--worker", action="store_true", help="run as a worker of a distributed run")
    parser.add_argument("--master-port", type=int, default=0, help="worker: the master's port")
    parser.add_argument("--master-host", default="127.0.0.1", help="worker: the master's address")
    parser.add_argument("--bind-host", default="127.0.0.1", help="master: address workers connect to")
    parser.add_argument("--bind-port", type=int, default=0, help="master: port (default: a free one)")
    parser.add_argument(
        "--external-workers",
        action="store_true",
        help="master: do not start workers; wait for `workers` of the plan to connect (pods)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Workers report every second rather than every three, so the live view keeps up.
    locust.runners.WORKER_REPORT_INTERVAL = 1.0
    if args.worker:
        return run_worker(args.plan, args.master_port, args.master_host)
    return run_master(
        args.plan, bind_host=args.bind_host, bind_port=args.bind_port, spawn_workers=not args.external_workers
    )


if __name__ == "__main__":
    sys.exit(main())
