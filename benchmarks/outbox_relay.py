"""What publishing one event costs the service that made it: the outbox relay on PostgreSQL and RabbitMQ.

A checkout writes events (`orders.placed`, the payment's, the cart's `cart.checked_out`) and each
leaves through its service's outbox relay: a round takes the waiting rows out of the outbox in one
transaction, publishes them with publisher confirms, and commits once the broker has confirmed them.
This script measures the relay's CPU time per event, in this process, for rounds of 1, 2, 5, 10 and
50 events (what `PEAKSHOP_OUTBOX_LINGER_SECONDS` trades event latency for: a longer wait makes
bigger rounds at peak), and the two parts of a round on their own in the same run:

- the broker: `RabbitBus.publish` alone, one at a time and ten at once;
- the database: the round's transaction alone, with nothing published.

Each figure is CPU time per event (user and system, this process only: the relay's own cost, not
the servers'), on one core, on uvloop as the services run. Ratios against a one-event round are printed beside them.

    python benchmarks/outbox_relay.py [--events 2000] [--json]

Needs PostgreSQL (a role that may create databases) and RabbitMQ; the scratch database and the
exchange are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import uuid
from typing import Any

import aio_pika
import asyncpg
import uvloop

from peakshop.platform.bus import RabbitBus
from peakshop.platform.db import PostgresDatabase
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.outbox import OutboxRelay, write_to_outbox

CORE = 0
ROUND_SIZES = (1, 2, 5, 10, 50)
SCHEMA = "bench"
TOPIC = "bench.event"
# About the size of an `orders.placed` event.
PAYLOAD = b'{"order_id":"ord_' + b"a" * 32 + b'","cart_id":"' + b"c" * 32 + b'","total":12345,"lines":[]}'
TABLES = f"""
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.outbox (
    id text PRIMARY KEY, topic text NOT NULL, payload bytea NOT NULL, occurred_at double precision NOT NULL
);
CREATE INDEX ON {SCHEMA}.outbox (occurred_at, id);
CREATE TABLE {SCHEMA}.inbox (
    message_id text NOT NULL, consumer text NOT NULL, handled_at double precision NOT NULL,
    PRIMARY KEY (message_id, consumer)
);
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _add(db: PostgresDatabase, count: int) -> None:
    async with db.transaction() as tx:
        for _ in range(count):
            await write_to_outbox(tx, SCHEMA, Envelope(uuid.uuid4().hex, TOPIC, time.time(), PAYLOAD))


async def _relay_rounds(db: PostgresDatabase, relay: OutboxRelay, size: int, events: int) -> float:
    """CPU seconds per event of rounds of `size` events (the rows are written outside the clock)."""
    spent, published = 0.0, 0
    while published < events:
        await _add(db, size)
        started = _cpu()
        published += await relay.publish_pending()
        spent += _cpu() - started
    return spent / published


async def _publish_alone(bus: RabbitBus, at_once: int, events: int) -> float:
    started, sent = _cpu(), 0
    while sent < events:
        await asyncio.gather(
            *(bus.publish(Envelope(uuid.uuid4().hex, TOPIC, time.time(), PAYLOAD)) for _ in range(at_once))
        )
        sent += at_once
    return (_cpu() - started) / sent


async def _transaction_alone(relay: OutboxRelay, events: int) -> float:
    """The relay's round on an empty outbox: its own statement and transaction, nothing to publish."""
    started = _cpu()
    for _ in range(events):
        await relay.publish_pending()
    return (_cpu() - started) / events


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    database = f"peakshop_bench_{uuid.uuid4().hex[:10]}"
    namespace = f"bench-{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.postgres_admin_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    url = args.postgres_admin_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        setup = await asyncpg.connect(url)
        await setup.execute(TABLES)
        await setup.close()
        db = await PostgresDatabase.connect(url, SCHEMA, pool_size=2)
        bus = RabbitBus(args.amqp_url, namespace=namespace)
        await bus.start()
        try:
            relay = OutboxRelay(db, bus, Metrics())
            await _relay_rounds(db, relay, 10, 200)  # warm: connections, prepared statements
            rounds = {}
            for size in ROUND_SIZES:
                _note(f"rounds of {size}…")
                rounds[size] = await _relay_rounds(db, relay, size, args.events)
            _note("the parts alone…")
            parts = {
                "publish, one at a time": await _publish_alone(bus, 1, args.events // 2),
                "publish, ten at once": await _publish_alone(bus, 10, args.events // 2),
                "transaction, per round": await _transaction_alone(relay, args.events // 2),
            }
        finally:
            await bus.close()
            await db.close()
    finally:
        admin = await asyncpg.connect(args.postgres_admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        connection = await aio_pika.connect(args.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(f"{namespace}.events")
    return {
        "events_per_size": args.events,
        "relay_us_per_event": {str(size): seconds * 1e6 for size, seconds in rounds.items()},
        "parts_us_per_event": {name: seconds * 1e6 for name, seconds in parts.items()},
    }


def _report(result: dict[str, Any]) -> None:
    per_event = result["relay_us_per_event"]
    alone = per_event["1"]
    print(
        f"outbox relay on PostgreSQL and RabbitMQ, CPU of the relay's process, {result['events_per_size']} events each"
    )
    print(f"{'events per round':>16}  {'µs per event':>12}  {'vs one a round':>14}")
    for size, micros in per_event.items():
        print(f"{size:>16}  {micros:>12.0f}  {micros / alone:>14.0%}")
    print("the parts alone:")
    for name, micros in result["parts_us_per_event"].items():
        print(f"  {name:<24} {micros:>6.0f} µs per event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=2000, help="events published per round size (default 2000)"
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("PEAKSHOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to for creating and dropping the scratch one",
    )
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("PEAKSHOP_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        help="RabbitMQ (default PEAKSHOP_AMQP_URL or the local broker)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    os.sched_setaffinity(0, {CORE})
    result = uvloop.run(_run(args))  # the loop every service runs on
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _report(result)


if __name__ == "__main__":
    main()
