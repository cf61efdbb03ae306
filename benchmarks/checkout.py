"""Checkout throughput of the split topology against a plain asyncpg replay of the same SQL, in one run.

What it does, in order, on a scratch PostgreSQL database (dropped at the end, even on error):

1. migrates and seeds a small catalog, raises the stock of a pool of SKUs, and, in this process, runs
   an all-in-one topology (every service in one process, on PostgreSQL, Redis and RabbitMQ) to make
   the buyers (an account, a session and a cart of two lines each, one cart per checkout) and to
   record the SQL of ONE checkout (`orders.place_order` through the local client) with the
   database port's statement log; it prints the statements per service, with and without the
   sandbox gateway's own tables (`payments.sandbox_*`, which stand for the external provider), and
   the round trips (every statement, plus BEGIN and COMMIT for each transaction);
2. starts the split topology (`peakshop up`, one process per service; the sandbox gateway answers
   at once) and drives `POST /api/checkout` over HTTP with a fixed number of checkouts in flight,
   a warm-up, then a measured run: checkouts/s, p50, p99 and every answer that is not a 201;
3. replays the recorded statements with asyncpg alone (a pool per service of the shop's size, the
   same texts, grouped into the same transactions, in the same order, as fast as it can) with fresh
   ids in every iteration (the cart's too, in orders' rows), for as long and as many in flight as
   the shop had, after the shop has stopped, and checks that every replayed checkout confirmed its
   order; the events it writes (to the outbox, and the sandbox provider's webhooks) are removed
   after it, so that the shop's next round does not publish and deliver them on its own clock;
4. repeats 2 and 3 in alternation, `--rounds` times: this machine's speed drifts by 20% and more
   within minutes, and alternating rounds put each slow spell on both sides.

The table gives the median round of each side, and the median of the rounds' own ratios (a shop
round and the replay round after it ran under the same conditions), then every round. It also gives
what a checkout costs in CPU time (read from /proc at the start and the end of each window): the
side's own processes, and the servers (PostgreSQL, RabbitMQ, Redis) beside them; and how often the
side's own processes left the CPU per checkout (context switches, from /proc: every wait for a
socket is one, and every wake after it costs CPU). Goals: the shop >= 50% of the plain-SQL rate, and at
most 12 statements per checkout without the sandbox provider's.

CPU placement (2 cores): the shop's Python processes all run on core 0 and the load generator on
core 1; the replay runs on core 0, where the shop's Python ran. PostgreSQL, Redis and RabbitMQ are
not pinned. Both sides therefore get one core for their own Python and share the server's.

    python benchmarks/checkout.py [--products 500] [--duration 10] [--warmup 3] [--concurrency 16]
                                  [--rounds 3] [--topology split] [--json]

Needs PostgreSQL (a role that may create databases), Redis, RabbitMQ, and `taskset` (util-linux).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from peakshop.rehearsal.shop import ready, topology_on_free_ports
from peakshop.runtime.supervisor import UP_MESSAGE

SHOP_CORE, LOAD_CORE = 0, 1
SEED = 7
STOCK = 10_000_000
PASSWORD = "correct horse battery"
ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
# Ids the checkout makes: `ord_…`, `ch_…`, `evt_…` and bare uuid4 hex (payment, outbox rows, key).
CREATED_ID = re.compile(r"\b(?:[a-z]+_)?[0-9a-f]{32}\b")
SANDBOX_TABLE = re.compile(r"\bpayments\.sandbox_\w+")


# --- the run's own database and namespace --------------------------------------------------------


@dataclass
class Scratch:
    admin_url: str
    database: str = field(default_factory=lambda: f"peakshop_bench_{uuid.uuid4().hex[:10]}")
    namespace: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:10]}")
    consumers: list[str] = field(default_factory=list)  # RabbitMQ queues to delete afterwards

    @property
    def url(self) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{self.database}"

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.database}"')

    async def drop(self, redis_url: str, amqp_url: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            import redis.asyncio as redis

            client = redis.Redis.from_url(redis_url)
            async for key in client.scan_iter(match=f"{self.namespace}:*", count=1000):
                await client.delete(key)
            await client.aclose()
        with contextlib.suppress(Exception):
            import aio_pika

            connection = await aio_pika.connect(amqp_url)
            async with connection:
                channel = await connection.channel()
                for consumer in self.consumers:
                    await channel.queue_delete(f"{self.namespace}.{consumer}")
                await channel.exchange_delete(f"{self.namespace}.events")


def _environment(args: argparse.Namespace, scratch: Scratch) -> dict[str, str]:
    return {
        "PEAKSHOP_POSTGRES_URL": scratch.url,
        "PEAKSHOP_NAMESPACE": scratch.namespace,
        "PEAKSHOP_TOPOLOGY": "split",
        "PEAKSHOP_WEBHOOK_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        "PEAKSHOP_LOG_LEVEL": "warning",
        "PEAKSHOP_PAYMENTS_SANDBOX_LATENCY_MS": "0",
        "PEAKSHOP_PAYMENTS_SANDBOX_LATENCY_JITTER_MS": "0",
        # Buyers are made by the thousand before the run; their password hashes are not measured.
        "PEAKSHOP_USERS_ARGON2_TIME_COST": "1",
        "PEAKSHOP_USERS_ARGON2_MEMORY_KIB": "1024",
        "PEAKSHOP_USERS_LOGIN_ATTEMPTS_PER_CLIENT": "10000000",
        "PEAKSHOP_DB_POOL_SIZE": str(args.pool_size),
    }


# --- step 1: buyers and one recorded checkout, in this process -----------------------------------


@dataclass
class Buyer:
    account_id: str
    token: str
    cart_id: str
    skus: tuple[str, str]


@dataclass
class Recording:
    statements: list[Any]  # peakshop.platform.db.Statement
    authenticate: list[Any]
    buyer: Buyer


def _all_in_one() -> Any:
    from peakshop.runtime.composition import BUILD_ORDER
    from peakshop.runtime.topology import ProcessSpec, Topology

    return Topology(
        name="bench-all-in-one", embedded=False, processes={"all": ProcessSpec(list(BUILD_ORDER), 1)}
    )


async def _sku_pairs(url: str, pairs: int) -> list[tuple[str, str]]:
    """SKUs spread over the catalog, in pairs; each cart holds one pair."""
    conn = await asyncpg.connect(url)
    try:
        skus = [row[0] for row in await conn.fetch("SELECT sku_id FROM inventory.stock ORDER BY sku_id")]
    finally:
        await conn.close()
    step = max(1, len(skus) // (2 * pairs))
    spread = skus[::step][: 2 * pairs]
    return list(zip(spread[::2], spread[1::2], strict=False))


async def _make_buyer(process: Any, skus: tuple[str, str]) -> Buyer:
    from peakshop.contracts.cart import AddItem
    from peakshop.contracts.users import Credentials, NewAccount

    users, cart = process.users(), process.cart()
    email = f"bench-{uuid.uuid4().hex[:16]}@example.com"
    account = await users.register(NewAccount(email, PASSWORD, "Bench Buyer"))
    session = await users.log_in(Credentials(email, PASSWORD), "127.0.0.1")
    basket = await cart.add_item(None, account.id, AddItem(skus[0], 1))
    basket = await cart.add_item(basket.id, account.id, AddItem(skus[1], 1))
    return Buyer(account.id, session.token, basket.id, skus)


async def _place(process: Any, buyer: Buyer) -> Any:
    from peakshop.contracts.orders import PlaceOrder, ShippingAddress

    request = PlaceOrder(buyer.cart_id, ShippingAddress(**ADDRESS), "tok_visa")
    return await process.orders().place_order(buyer.account_id, uuid.uuid4().hex, request)


async def prepare(
    args: argparse.Namespace, scratch: Scratch, carts: int
) -> tuple[Recording, list[Buyer], list[tuple[str, str]]]:
    import peakshop.runtime.prepare as preparation
    from peakshop.contracts.inventory import SetStock
    from peakshop.platform.db import statement_log
    from peakshop.platform.settings import load_platform_settings
    from peakshop.runtime.composition import Process

    settings = load_platform_settings()
    topology = _all_in_one()
    await preparation.migrate_all(topology, settings)
    await preparation.seed(settings, products=args.products, seed=SEED, progress=None)
    pairs = await _sku_pairs(settings.postgres_url, args.skus // 2)
    process = Process(topology, "all", settings)
    async with process.lifespan():
        # The services subscribed while starting: their queues are this run's to delete at the end.
        scratch.consumers = [sub.consumer for sub in getattr(process.infra.bus, "_subs", [])]
        inventory = process.inventory()
        for sku in itertools.chain.from_iterable(pairs):
            await inventory.set_stock(SetStock(sku, STOCK, None))
        # Two checkouts first, so that the recorded one meets warm caches, as the measured ones will.
        for warm in range(2):
            order = await _place(process, await _make_buyer(process, pairs[warm % len(pairs)]))
            if order.status != "confirmed":
                raise SystemExit(f"a warm-up checkout ended {order.status}: {order.failure_reason}")
        buyer = await _make_buyer(process, pairs[0])
        log: list[Any] = []
        token = statement_log.set(log)
        try:
            order = await _place(process, buyer)
        finally:
            statement_log.reset(token)
        if order.status != "confirmed":
            raise SystemExit(f"the recorded checkout ended {order.status}: {order.failure_reason}")
        auth_log: list[Any] = []
        token = statement_log.set(auth_log)
        try:
            await process.users().authenticate(buyer.token)
        finally:
            statement_log.reset(token)
        buyers: list[Buyer] = []
        started = time.perf_counter()
        cycle = itertools.cycle(pairs)
        while len(buyers) < carts:
            wave = [next(cycle) for _ in range(min(64, carts - len(buyers)))]
            buyers += await asyncio.gather(*(_make_buyer(process, skus) for skus in wave))
        _note(f"{carts:,} buyers with carts in {time.perf_counter() - started:.1f} s (not timed)")
    return Recording(log, auth_log, buyer), buyers, pairs


# --- statement counts --------------------------------------------------------------------------


def _is_sandbox(statement: Any) -> bool:
    return bool(SANDBOX_TABLE.search(statement.sql))


def count_statements(statements: list[Any]) -> dict[str, Any]:
    def tally(chosen: list[Any]) -> dict[str, Any]:
        transactions = {(s.schema, s.transaction) for s in chosen if s.transaction}
        return {
            "statements": len(chosen),
            "transactions": len(transactions),
            "round_trips": len(chosen) + 2 * len(transactions),  # BEGIN and COMMIT of each
            "by_service": dict(Counter(s.schema for s in chosen)),
        }

    return {"all": tally(statements), "without_sandbox": tally([s for s in statements if not _is_sandbox(s)])}


# --- step 2: the split shop over HTTP ------------------------------------------------------------


TOPOLOGY = "split"  # set from --topology


@contextlib.contextmanager
def running_shop(workdir: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The shop's base URL and the process id of its supervisor, while it runs."""
    topology = workdir / "topology.toml"
    port = topology_on_free_ports(TOPOLOGY, topology, "split-bench")
    log = workdir / "shop.log"
    command = [
        "taskset", "-c", str(SHOP_CORE), sys.executable, "-m", "peakshop", "up",
        "--topology", str(topology), "--port", str(port),
        "--data-dir", str(workdir / "data"), "--products", "0",
    ]  # fmt: skip
    with log.open("wb") as sink:
        shop = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, shop, log)
        yield base, shop.pid
    finally:
        if shop.poll() is None:
            shop.send_signal(signal.SIGINT)
            try:
                shop.wait(60)
            except subprocess.TimeoutExpired:
                shop.kill()
                shop.wait()


def _wait_ready(base: str, shop: subprocess.Popen[bytes], log: Path, limit: float = 120) -> None:
    """Until `up` says every process is ready: the storefront alone answers before the services it calls."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if shop.poll() is not None:
            raise SystemExit(f"the shop exited with {shop.returncode}:\n{log.read_text()[-3000:]}")
        if UP_MESSAGE in log.read_text(errors="replace") and ready(base):
            return
        time.sleep(0.2)  # polling a starting shop; the deadline bounds it
    raise SystemExit(f"the shop was not ready in {limit:.0f} s:\n{log.read_text()[-3000:]}")


@dataclass
class Run:
    """Checkouts finished in one timed window."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ran_out: bool = False
    pg_transactions: int = 0
    cpu_seconds: float = 0.0  # the side's own processes: the shop's, or the replay's
    servers_cpu_seconds: float = 0.0  # PostgreSQL's, RabbitMQ's and Redis's, in the same window
    switches: int = 0  # times the side's own processes left the CPU (waiting, or made to)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

        done = len(self.latencies)
        return {
            "checkouts": done,
            "seconds": round(self.seconds, 3),
            "per_second": done / self.seconds if self.seconds else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "non_201": {k: v for k, v in self.statuses.items() if k != "201"},
            "ran_out_of_carts": self.ran_out,
            "pg_transactions_per_checkout": self.pg_transactions / done if done else 0.0,
            "cpu_ms_per_checkout": self.cpu_seconds / done * 1000 if done else 0.0,
            "servers_cpu_ms_per_checkout": self.servers_cpu_seconds / done * 1000 if done else 0.0,
            "switches_per_checkout": self.switches / done if done else 0.0,
        }


# --- CPU time, from /proc: what a checkout costs, whatever else the machine is doing -------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the process has ended
        return None


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes (those that still run)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _switches(pids: list[int]) -> int:
    """Context switches of these processes: each is a wait for I/O or a turn given up, and each wake
    after it costs CPU of its own (cold caches) that a busy process does not pay."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):  # the process has ended
            for task in Path(f"/proc/{pid}/task").iterdir():  # every thread: the status is per thread
                for line in (task / "status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
    return total


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _tree(root: int) -> list[int]:
    """`root` and every process under it (the shop's supervisor and the processes it started)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


SERVERS = frozenset({"postgres", "beam.smp", "redis-server"})  # PostgreSQL, RabbitMQ, Redis


def _servers() -> list[int]:
    """The processes of the servers the shop uses; the replay uses only PostgreSQL of them."""
    pids = []
    for pid in _all_pids():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() in SERVERS:
                pids.append(pid)
    return pids


async def _pg_commits(conn: asyncpg.Connection) -> int:
    # The server's own count (statistics lag by up to a second under load; the window is longer).
    return int(
        await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    )


async def _timed(
    worker: Any, concurrency: int, seconds: float, run: Run, db_url: str, processes: list[int]
) -> None:
    """Run `worker(deadline)` `concurrency` times at once until the deadline; count what ends before it.

    The CPU time of `processes` (the side being measured) and of the servers (PostgreSQL, RabbitMQ,
    Redis) is read at the start and at the deadline: divided by the checkouts, it is what one costs,
    however fast the machine ran.
    """
    stats = await asyncpg.connect(db_url)
    servers = _servers()
    try:
        before = await _pg_commits(stats)
        cpu_before, servers_before = _cpu_seconds(processes), _cpu_seconds(servers)
        switches_before = _switches(processes)
        started = time.perf_counter()
        deadline = started + seconds

        async def read_cpu_at_deadline() -> None:
            await asyncio.sleep(seconds)
            run.cpu_seconds = _cpu_seconds(processes) - cpu_before
            run.servers_cpu_seconds = _cpu_seconds(servers) - servers_before
            run.switches = _switches(processes) - switches_before

        await asyncio.gather(read_cpu_at_deadline(), *(worker(deadline, run) for _ in range(concurrency)))
        run.seconds = min(seconds, time.perf_counter() - started)
        run.pg_transactions = await _pg_commits(stats) - before
    finally:
        await stats.close()


async def measure_shop(
    base: str, queue: deque[Buyer], args: argparse.Namespace, db_url: str, processes: list[int]
) -> tuple[Run, Run]:
    """One round: a warm-up, then a measured window; each checkout takes (and spends) a buyer's cart."""
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.concurrency)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

        async def check_out(deadline: float, run: Run) -> None:
            while time.perf_counter() < deadline:
                if not queue:
                    run.ran_out = True
                    return
                buyer = queue.popleft()
                body = {"cart_id": buyer.cart_id, "shipping_address": ADDRESS, "payment_token": "tok_visa"}
                headers = {"authorization": f"Bearer {buyer.token}", "idempotency-key": uuid.uuid4().hex}
                started = time.perf_counter()
                try:
                    async with session.post("/api/checkout", json=body, headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                ended = time.perf_counter()
                if ended <= deadline:
                    run.statuses[status] += 1
                    if status == "201":
                        run.latencies.append(ended - started)

        warmup, measured = Run(), Run()
        await _timed(check_out, args.concurrency, args.warmup, warmup, db_url, processes)
        await _timed(check_out, args.concurrency, args.duration, measured, db_url, processes)
    return warmup, measured


# --- step 3: the same SQL with asyncpg alone -------------------------------------------------------


class NoResetConnection(asyncpg.Connection):
    """No reset query on release, as the shop's pools do (the connections carry no session state)."""

    def get_reset_query(self) -> str:
        return ""


@dataclass
class Replay:
    """The recorded checkout as transactions of (schema, [(sql, args)]), with the ids to renew."""

    units: list[tuple[str, bool, list[tuple[str, tuple[Any, ...]]]]]
    created: list[str]  # ids made by the recorded checkout: fresh ones in every iteration
    skus: tuple[str, str]
    cart_id: str  # kept for the cart's own statements, renewed in orders' (a cart has one live order)
    pattern: re.Pattern[str]
    pattern_bytes: re.Pattern[bytes]

    @classmethod
    def of(cls, recording: Recording) -> Replay:
        kept = {recording.buyer.account_id, recording.buyer.cart_id}
        found: dict[str, None] = {}
        for statement in recording.statements:
            for text in _texts(statement.args):
                for token in CREATED_ID.findall(text):
                    if token not in kept:
                        found[token] = None
        created = list(found)
        skus = recording.buyer.skus
        cart_id = recording.buyer.cart_id
        tokens = sorted([*created, *skus, cart_id], key=len, reverse=True)
        alternation = "|".join(re.escape(t) for t in tokens)
        units: list[tuple[str, bool, list[tuple[str, tuple[Any, ...]]]]] = []
        for (schema, tx), group in itertools.groupby(
            recording.statements, key=lambda s: (s.schema, s.transaction)
        ):
            items = [(s.sql, s.args) for s in group]
            if tx == 0:  # outside a transaction: one unit per statement, as the shop sends them
                units += [(schema, False, [item]) for item in items]
            else:
                units.append((schema, True, items))
        return cls(units, created, skus, cart_id, re.compile(alternation), re.compile(alternation.encode()))

    def fresh(self, pair: tuple[str, str]) -> list[tuple[str, bool, list[tuple[str, tuple[Any, ...]]]]]:
        """The units with new ids, and the iteration's SKU pair instead of the recorded one.

        The cart stays the recorded one where the cart service reads it, and is a new id in orders'
        rows: orders lets a cart have one order that did not fail, so a replay that ordered the same
        cart again would have its insert skipped and do less than a checkout does.
        """
        mapping = {old: _like(old) for old in self.created}
        mapping[self.skus[0]], mapping[self.skus[1]] = pair
        keep_cart = self._renewer({**mapping, self.cart_id: self.cart_id})
        new_cart = self._renewer({**mapping, self.cart_id: _like(self.cart_id)})
        return [
            (
                schema,
                tx,
                [
                    (sql, tuple((new_cart if schema == "orders" else keep_cart)(a) for a in args))
                    for sql, args in items
                ],
            )
            for schema, tx, items in self.units
        ]

    def _renewer(self, mapping: dict[str, str]) -> Callable[[Any], Any]:
        """A function that puts `mapping`'s ids in place of the recorded ones in an argument."""
        mapping_bytes = {k.encode(): v.encode() for k, v in mapping.items()}

        def renew(value: Any) -> Any:
            if isinstance(value, str):
                return self.pattern.sub(lambda m: mapping[m.group()], value)
            if isinstance(value, bytes):
                return self.pattern_bytes.sub(lambda m: mapping_bytes[m.group()], value)
            if isinstance(value, list | tuple):
                return type(value)(renew(v) for v in value)
            return value

        return renew


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def _like(old: str) -> str:
    """A new unique id of the same shape (prefix kept)."""
    prefix, _, _ = old.rpartition("_")
    return f"{prefix}_{uuid.uuid4().hex}" if prefix else uuid.uuid4().hex


@contextlib.asynccontextmanager
async def _pools(url: str, schemas: set[str], size: int) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    pools = {
        schema: await asyncpg.create_pool(url, min_size=1, max_size=size, connection_class=NoResetConnection)
        for schema in sorted(schemas)
    }
    try:
        yield pools
    finally:
        for pool in pools.values():
            await pool.close()


async def measure_replay(
    replay: Replay, pairs: list[tuple[str, str]], args: argparse.Namespace, db_url: str, pool_size: int
) -> tuple[Run, Run]:
    cycle = itertools.cycle(pairs)
    completed = 0
    async with _pools(db_url, {schema for schema, _, _ in replay.units}, pool_size) as pools:
        earlier = {table: await _ids(pools, table) for table in _work_queues(pools)}
        confirmed_before = await _confirmed_orders(pools)

        async def check_out(deadline: float, run: Run) -> None:
            nonlocal completed
            while time.perf_counter() < deadline:
                units = replay.fresh(next(cycle))
                started = time.perf_counter()
                for schema, in_transaction, items in units:
                    pool = pools[schema]
                    if not in_transaction:
                        sql, values = items[0]
                        await pool.fetch(sql, *values)
                        continue
                    async with pool.acquire() as conn, conn.transaction():
                        for sql, values in items:
                            await conn.fetch(sql, *values)
                ended = time.perf_counter()
                completed += 1
                if ended <= deadline:
                    run.statuses["done"] += 1
                    run.latencies.append(ended - started)

        warmup, measured = Run(), Run()
        await _timed(check_out, args.concurrency, args.warmup, warmup, db_url, [os.getpid()])
        await _timed(check_out, args.concurrency, args.duration, measured, db_url, [os.getpid()])
        # Statements that matched no row would make the replay cheaper than a checkout, not wrong:
        # every replayed checkout must have confirmed its order, as the shop's did.
        confirmed = await _confirmed_orders(pools) - confirmed_before
        if confirmed != completed:
            raise SystemExit(f"the replay confirmed {confirmed} orders in {completed} checkouts")
        for table, ids in earlier.items():
            await pools[table.partition(".")[0]].execute(
                f"DELETE FROM {table} WHERE NOT (id = ANY($1::text[]))", ids
            )
    return warmup, measured


def _work_queues(pools: dict[str, asyncpg.Pool]) -> list[str]:
    """Tables whose rows are work for the shop's background tasks: every outbox (the relays publish
    it) and the sandbox provider's events (delivered as webhooks). The replay writes them as a
    checkout does and does none of that work; left there, its rows would be worked off by the shop's
    next round, on the shop's clock. So what the replay added is removed after its window.
    """
    queues = [f"{schema}.outbox" for schema in pools]
    return [*queues, "payments.sandbox_events"] if "payments" in pools else queues


async def _confirmed_orders(pools: dict[str, asyncpg.Pool]) -> int:
    return int(
        await pools["orders"].fetchval("SELECT count(*) FROM orders.orders WHERE status = 'confirmed'")
    )


async def _ids(pools: dict[str, asyncpg.Pool], table: str) -> list[str]:
    return [row[0] for row in await pools[table.partition(".")[0]].fetch(f"SELECT id FROM {table}")]


# --- the run -------------------------------------------------------------------------------------


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pin(core: int) -> None:
    os.sched_setaffinity(0, {core})


async def _run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    scratch = Scratch(args.postgres_admin_url)
    env = _environment(args, scratch)
    os.environ.update(env)
    from peakshop.platform.settings import load_platform_settings
    from peakshop.platform.telemetry import configure_logging

    configure_logging("warning")
    settings = load_platform_settings()
    carts = args.carts or int(args.max_rate * (args.warmup + args.duration) * args.rounds)
    await scratch.create()
    try:
        _note(f"scratch database {scratch.database}: seeding {args.products:,} products…")
        recording, buyers, pairs = await prepare(args, scratch, carts)
        counts = count_statements(recording.statements)
        replay = Replay.of(recording)

        _note(f"starting the {TOPOLOGY} shop…")
        shop_rounds: list[dict[str, Any]] = []
        plain_rounds: list[dict[str, Any]] = []
        queue = deque(buyers)
        # Rounds alternate, so that a slow spell of the machine falls on both sides. The shop is
        # started for each round and stopped before the replay, which then has the core to itself.
        for number in range(1, args.rounds + 1):
            with running_shop(workdir, {**os.environ, **env}) as (base, pid):
                _pin(LOAD_CORE)
                _note(
                    f"round {number}/{args.rounds}: shop, {args.warmup} s warm-up, {args.duration} s "
                    f"measured, {args.concurrency} in flight…"
                )
                warmup, measured = await measure_shop(base, queue, args, scratch.url, _tree(pid))
                shop_rounds.append({**measured.summary(), "non_201_warmup": warmup.summary()["non_201"]})
            _pin(SHOP_CORE)
            _note(f"round {number}/{args.rounds}: plain SQL replay…")
            _, plain = await measure_replay(replay, pairs, args, scratch.url, settings.db_pool_size)
            plain_rounds.append(plain.summary())
            _note(
                f"round {number}/{args.rounds}: shop {shop_rounds[-1]['per_second']:.1f}/s, "
                f"plain {plain_rounds[-1]['per_second']:.1f}/s"
            )
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    finally:
        await scratch.drop(settings.redis_url, settings.amqp_url)
    shop_summary, plain_summary = _median(shop_rounds), _median(plain_rounds)
    # Every answer that was not a 201, in any round, counts: not only the median round's.
    for key in ("non_201", "non_201_warmup"):
        shop_summary[key] = dict(sum((Counter(r[key]) for r in shop_rounds), Counter()))
    shop_summary["ran_out_of_carts"] = any(r["ran_out_of_carts"] for r in shop_rounds)
    return {
        "machine": {"cores": os.cpu_count(), "shop_core": SHOP_CORE, "load_core": LOAD_CORE},
        "products": args.products,
        "topology": TOPOLOGY,
        "concurrency": args.concurrency,
        "pool_size_per_service": settings.db_pool_size,
        "statements": counts,
        "authenticate_statements": len(recording.authenticate),
        "renewed_ids": _kinds(replay.created),
        "cart_statements": sum(
            s.schema == "cart" and recording.buyer.cart_id in _texts(s.args) for s in recording.statements
        ),
        "recorded": [
            {
                "service": s.schema,
                "transaction": s.transaction,
                "sandbox": _is_sandbox(s),
                "sql": " ".join(s.sql.split()),
            }
            for s in recording.statements
        ],
        "rounds": [
            {
                "shop_per_second": a["per_second"],
                "plain_per_second": b["per_second"],
                "ratio": a["per_second"] / b["per_second"] if b["per_second"] else 0.0,
                "shop_cpu_ms": _cost(a),
                "plain_cpu_ms": _cost(b),
            }
            for a, b in zip(shop_rounds, plain_rounds, strict=True)
        ],
        "shop": shop_summary,
        "plain_sql": plain_summary,
        # What a checkout costs in CPU (own processes and the servers'), replay against shop: the
        # throughput the shop would have against the replay if both had the same CPU to spend.
        "cost_ratio": statistics.median(
            _cost(b) / _cost(a) if _cost(a) else 0.0 for a, b in zip(shop_rounds, plain_rounds, strict=True)
        ),
        # Each round's shop and replay ran minutes apart at most: their ratio is the measurement.
        "ratio": statistics.median(
            a["per_second"] / b["per_second"] if b["per_second"] else 0.0
            for a, b in zip(shop_rounds, plain_rounds, strict=True)
        ),
    }


def _cost(summary: dict[str, Any]) -> float:
    return float(summary["cpu_ms_per_checkout"] + summary["servers_cpu_ms_per_checkout"])


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate (the lower middle one for an even count), whole."""
    ordered = sorted(rounds, key=lambda r: r["per_second"])
    return ordered[(len(ordered) - 1) // 2]


def _kinds(created: list[str]) -> dict[str, int]:
    return dict(Counter(token.rpartition("_")[0] or "hex" for token in created))


def _report(result: dict[str, Any]) -> None:
    counts = result["statements"]
    every, own = counts["all"], counts["without_sandbox"]
    print(f"\none checkout's SQL (orders.place_order, recorded in process; {result['products']:,} products):")
    print(f"{'service':<12}{'statements':>12}{'w/o sandbox':>13}")
    for service, n in every["by_service"].items():
        print(f"{service:<12}{n:>12}{own['by_service'].get(service, 0):>13}")
    print(f"{'total':<12}{every['statements']:>12}{own['statements']:>13}")
    print(f"{'transactions':<12}{every['transactions']:>12}{own['transactions']:>13}")
    print(f"{'round trips':<12}{every['round_trips']:>12}{own['round_trips']:>13}")
    print(
        f"(+{result['authenticate_statements']} statement(s) of the route's bearer-token check in users, "
        "outside place_order and not replayed)"
    )
    shop, plain = result["shop"], result["plain_sql"]
    print(
        f"\n{'':<22}{'checkouts/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'PG tx/checkout':>16}"
        f"{'CPU ms/checkout':>17}{'+ servers':>11}{'switches/checkout':>19}"
        f"  ({result['concurrency']} in flight, {shop['seconds']:.0f} s)"
    )
    for name, r in ((f"{result['topology']} shop (HTTP)", shop), ("plain SQL (asyncpg)", plain)):
        print(
            f"{name:<22}{r['per_second']:>12.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{r['pg_transactions_per_checkout']:>16.1f}{r['cpu_ms_per_checkout']:>17.2f}"
            f"{r['servers_cpu_ms_per_checkout']:>11.2f}{r['switches_per_checkout']:>19.1f}"
        )
    print(f"{'ratio shop / plain':<22}{result['ratio']:>12.0%}   (goal >= 50%)")
    print(
        f"{'CPU cost plain / shop':<22}{result['cost_ratio']:>12.0%}   (from CPU time per checkout: "
        "the side's own processes plus PostgreSQL, RabbitMQ and Redis)"
    )
    rounds = result["rounds"]
    print(
        f"(rates: the median round of each side; ratio: the median of the {len(rounds)} rounds' own ratios)"
    )
    for number, r in enumerate(rounds, 1):
        print(
            f"  round {number}: shop {r['shop_per_second']:.1f}/s, plain {r['plain_per_second']:.1f}/s, "
            f"ratio {r['ratio']:.0%}; CPU per checkout shop {r['shop_cpu_ms']:.1f} ms, "
            f"plain {r['plain_cpu_ms']:.1f} ms"
        )
    print(
        f"statements per checkout: {every['statements']} all, {own['statements']} without the sandbox (goal <= 12)"
    )
    print(f"round trips per checkout: {every['round_trips']} all, {own['round_trips']} without the sandbox")
    for window, errors in (("measured, all rounds", shop["non_201"]), ("warm-up", shop["non_201_warmup"])):
        print(
            f"shop answers other than 201 ({window}): {sum(errors.values())}"
            + (f" {errors}" if errors else "")
        )
    if shop["ran_out_of_carts"]:
        print("note: the shop ran out of prepared carts before the window ended; raise --carts")
    kinds = ", ".join(f"{k} x{v}" for k, v in result["renewed_ids"].items())
    print(
        f"\nreplay: fresh ids per iteration ({kinds}); the recorded SKU pair is replaced by the pair "
        "the shop's carts cycle through, so that both sides lock the same stock rows. Rows that existed "
        "before the checkout (the buyer's account and cart) stay as recorded: "
        + (
            f"{result['cart_statements']} statement(s) name the recorded cart, which is checked out by "
            "then (a read finds it closed; an update of it matches 0 rows). Orders' rows get a fresh cart "
            "id each time, since a cart has one live order. "
            if result["cart_statements"]
            else ""
        )
        + "The replay sends every recorded statement whatever the answers. PG tx/checkout is the "
        "server's own commit count per checkout: for the shop it includes the background work each "
        "checkout causes (outbox relays, inbox consumers, webhooks), which the replay does not do."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="CPU placement: the shop on core 0, load on core 1."
    )
    parser.add_argument("--products", type=int, default=500, help="catalog size to seed (default 500)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each (default 3)")
    parser.add_argument("--concurrency", type=int, default=16, help="checkouts in flight (default 16)")
    parser.add_argument("--skus", type=int, default=200, help="SKUs the carts spread over (default 200)")
    parser.add_argument(
        "--carts",
        type=int,
        default=0,
        help="buyers with a cart to prepare (default: --max-rate x (warm-up + duration))",
    )
    parser.add_argument(
        "--max-rate",
        type=float,
        default=300,
        help="the shop rate the default --carts allows for (default 300/s)",
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("PEAKSHOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to for creating and dropping the scratch one",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=int(os.environ.get("PEAKSHOP_DB_POOL_SIZE", "10")),
        help="connections per service, for the shop and the replay alike (default PEAKSHOP_DB_POOL_SIZE or 10)",
    )
    parser.add_argument(
        "--topology",
        default="split",
        help="the shop's topology: split (default) or a topology file, e.g. one that hosts the checkout's services together",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of shop and replay; the medians are compared (default 3)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    global TOPOLOGY
    TOPOLOGY = args.topology
    if not shutil.which("taskset"):
        raise SystemExit("taskset is needed: apt-get install util-linux")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: one for the shop, one for the load")
    with tempfile.TemporaryDirectory(prefix="peakshop-bench-") as tmp:
        result = asyncio.run(_run(args, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _report(result)


if __name__ == "__main__":
    main()
