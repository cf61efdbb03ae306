"""One contract for the database port on SQLite and PostgreSQL: the unit of work, outbox and inbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from peakshop.platform import db as database
from peakshop.platform import migrations
from peakshop.platform.bus import InProcessBus
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.outbox import OutboxRelay, add_to_outbox, inbox_handler, write_to_outbox

DEMO_MIGRATIONS = Path(__file__).parent / "demo_migrations"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[database.Database]:
    embedded = request.param == "sqlite"
    url = "" if embedded else request.getfixturevalue("scratch_postgres_url")
    await asyncio.to_thread(
        migrations.upgrade, DEMO_MIGRATIONS, "demo", embedded=embedded, data_dir=tmp_path, postgres_url=url
    )
    # Running the migrations twice is a no-op, as it is at every start of a service.
    await asyncio.to_thread(
        migrations.upgrade, DEMO_MIGRATIONS, "demo", embedded=embedded, data_dir=tmp_path, postgres_url=url
    )
    d = await database.connect(embedded=embedded, schema="demo", data_dir=tmp_path, postgres_url=url)
    yield d
    await d.close()


async def test_a_unit_of_work_commits_when_the_block_ends(db: database.Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "a", 3)
        assert await tx.fetchval("SELECT qty FROM demo.things WHERE id = $1", "a") == 3
    row = await db.fetchrow("SELECT id, qty FROM demo.things WHERE id = $1", "a")
    assert row is not None and (row["id"], row["qty"]) == ("a", 3)


async def test_a_unit_of_work_rolls_back_everything_when_the_block_raises(db: database.Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "b", 1)
            raise RuntimeError("handler failed half way")
    assert await db.fetch("SELECT id FROM demo.things") == []


async def test_a_failed_statement_leaves_nothing_behind(db: database.Database) -> None:
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "c", 5)
            await tx.execute("UPDATE demo.things SET qty = qty - $1 WHERE id = $2", 6, "c")
    assert await db.fetch("SELECT id FROM demo.things") == []


async def test_execute_reports_the_rows_it_changed(db: database.Database) -> None:
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO demo.things (id, qty) VALUES ($1, $2)", [("x", 1), ("y", 1), ("z", 5)]
        )
        # the conditional update of an oversell guard: only rows that can afford it change
        changed = await tx.execute("UPDATE demo.things SET qty = qty - $1 WHERE qty >= $1", 2)
        assert changed == 1
        assert await tx.execute("UPDATE demo.things SET qty = 0 WHERE id = $1", "missing") == 0


async def test_concurrent_units_of_work_do_not_lose_updates(db: database.Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "n", 0)

    async def bump() -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE demo.things SET qty = qty + 1 WHERE id = $1", "n")

    await asyncio.gather(*(bump() for _ in range(50)))
    row = await db.fetchrow("SELECT qty FROM demo.things WHERE id = $1", "n")
    assert row is not None and row[0] == 50


async def test_the_outbox_relay_publishes_committed_events_once(db: database.Database) -> None:
    bus = InProcessBus()
    received: list[Envelope] = []

    async def collect(envelope: Envelope) -> None:
        received.append(envelope)

    bus.subscribe("collector", ["demo.thing_added"], collect)
    await bus.start()
    relay = OutboxRelay(db, bus, Metrics())
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "t", 1)
        sent = await add_to_outbox(tx, "demo", "demo.thing_added", {"id": "t"})
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await add_to_outbox(tx, "demo", "demo.thing_added", {"id": "never"})
            raise RuntimeError("rolled back: its event must never leave")
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    await bus.drain()
    await bus.close()
    assert [e.id for e in received] == [sent.id]
    assert received[0].decode(dict) == {"id": "t"}
    assert await relay.backlog() == 0
    assert await db.fetch("SELECT id FROM demo.outbox") == []  # published rows are deleted


class _Recorder(InProcessBus):
    """A bus that records what it is given, and refuses while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Envelope] = []
        self.down = False

    async def publish(self, envelope: Envelope) -> None:
        if self.down:
            raise ConnectionError("the broker is away")
        await asyncio.sleep(0)  # a real broker answers later: let other relays run meanwhile
        self.published.append(envelope)


async def _add_events(db: database.Database, times: list[float]) -> list[str]:
    ids = []
    async with db.transaction() as tx:
        for at in times:
            envelope = Envelope.wrap("demo.thing_added", {"at": at})
            envelope = Envelope(envelope.id, envelope.topic, at, envelope.payload)
            await write_to_outbox(tx, "demo", envelope)
            ids.append(envelope.id)
    return ids


async def test_a_failed_publish_keeps_the_events_for_the_next_round(db: database.Database) -> None:
    bus = _Recorder()
    relay = OutboxRelay(db, bus, Metrics())
    ids = await _add_events(db, [1.0, 2.0])
    bus.down = True
    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    assert await relay.backlog() == 2  # taking them out was rolled back with the failed publish
    bus.down = False
    assert await relay.publish_pending() == 2
    assert [e.id for e in bus.published] == ids
    assert await relay.backlog() == 0


async def test_the_relay_publishes_the_oldest_events_first(db: database.Database) -> None:
    bus = _Recorder()
    relay = OutboxRelay(db, bus, Metrics(), batch=3)
    ids = await _add_events(db, [5.0, 1.0, 4.0, 2.0, 3.0])
    assert await relay.publish_pending() == 3
    assert await relay.publish_pending() == 2
    assert [e.occurred_at for e in bus.published] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sorted(e.id for e in bus.published) == sorted(ids)


async def test_relays_running_at_once_publish_each_event_once(db: database.Database) -> None:
    bus = _Recorder()
    ids = await _add_events(db, [float(i) for i in range(120)])
    relays = [OutboxRelay(db, bus, Metrics(), batch=7) for _ in range(4)]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.publish_pending():
            pass

    await asyncio.gather(*(drain(relay) for relay in relays))
    assert sorted(e.id for e in bus.published) == sorted(ids)  # every one, none twice
    assert await relays[0].backlog() == 0


async def test_events_committed_while_the_relay_lingers_leave_in_one_round(db: database.Database) -> None:
    bus = _Recorder()
    relay = _CountingRelay(db, bus, Metrics(), linger=0.3)
    relay.start()
    try:
        for at in (1.0, 2.0, 3.0):  # three commits, each waking the relay, well within its linger
            await _add_events(db, [at])
            relay.wake()
        while len(bus.published) < 3:
            await relay.published_a_round.wait()
            relay.published_a_round.clear()
    finally:
        await relay.stop()
    assert relay.rounds == 1
    assert [e.occurred_at for e in bus.published] == [1.0, 2.0, 3.0]


class _CountingRelay(OutboxRelay):
    """Counts the rounds that published something, and says when one did."""

    rounds = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published_a_round = asyncio.Event()

    async def publish_pending(self) -> int:
        published = await super().publish_pending()
        if published:
            self.rounds += 1
            self.published_a_round.set()
        return published


async def test_the_relay_prunes_inbox_ids_past_their_retention(db: database.Database) -> None:
    now = 1_800_000_000.0
    relay = OutboxRelay(db, InProcessBus(), Metrics(), inbox_retention=3_600, clock=lambda: now)
    async with db.transaction() as tx:
        for message_id, age in (("old", 3_601), ("edge", 3_599), ("new", 5)):
            await tx.execute(
                "INSERT INTO demo.inbox (message_id, consumer, handled_at) VALUES ($1, $2, $3)",
                message_id,
                "demo-consumer",
                now - age,
            )
    assert await relay.prune_inbox() == 1
    rows = await db.fetch("SELECT message_id FROM demo.inbox ORDER BY message_id")
    assert [r[0] for r in rows] == ["edge", "new"]


async def test_the_inbox_runs_a_handler_once_per_message(db: database.Database) -> None:
    calls: list[str] = []

    async def add_thing(tx: database.Executor, event: dict[str, str]) -> None:
        calls.append(event["id"])
        await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", event["id"], 1)

    handle = inbox_handler(db, "demo-consumer", dict, add_thing)
    envelope = Envelope.wrap("demo.thing_added", {"id": "once"})
    await asyncio.gather(handle(envelope), handle(envelope), return_exceptions=True)
    await handle(envelope)
    assert calls.count("once") >= 1
    rows = await db.fetch("SELECT id FROM demo.things")
    assert [r[0] for r in rows] == ["once"]


async def test_the_statement_log_records_what_a_block_sends_grouped_by_transaction(
    db: database.Database,
) -> None:
    log: list[database.Statement] = []
    token = database.statement_log.set(log)
    try:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "s", 1)
            await tx.fetchval("SELECT qty FROM demo.things WHERE id = $1", "s")
        async with db.transaction() as tx:
            await tx.execute("UPDATE demo.things SET qty = 2 WHERE id = $1", "s")
        await db.fetch("SELECT id FROM demo.things")
    finally:
        database.statement_log.reset(token)
    await db.fetch("SELECT 1")  # outside the block: not recorded
    assert [s.sql.split()[0] for s in log] == ["INSERT", "SELECT", "UPDATE", "SELECT"]
    assert log[0].transaction == log[1].transaction != log[2].transaction
    assert log[3].transaction == 0 and {s.schema for s in log} == {"demo"}
    assert log[0].args == ("s", 1)


async def test_a_one_statement_unit_runs_its_statement_and_commits(db: database.Database) -> None:
    log: list[database.Statement] = []
    token = database.statement_log.set(log)
    try:
        async with db.one_statement() as tx:
            assert await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "o", 4) == 1
    finally:
        database.statement_log.reset(token)
    assert [tuple(row) for row in await db.fetch("SELECT id, qty FROM demo.things")] == [("o", 4)]
    # On PostgreSQL the statement runs alone, so a replay sends it without BEGIN and COMMIT either.
    assert (log[0].transaction == 0) == (db.dialect == "postgresql")


async def test_a_failing_one_statement_unit_leaves_nothing_behind(db: database.Database) -> None:
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        async with db.one_statement() as tx:
            await tx.execute(
                "WITH first AS (INSERT INTO demo.things (id, qty) VALUES ('p', 1)) "
                "INSERT INTO demo.things (id, qty) VALUES ('q', -1)"
                if db.dialect == "postgresql"
                else "INSERT INTO demo.things (id, qty) VALUES ('p', 1), ('q', -1)"
            )
    assert await db.fetch("SELECT id FROM demo.things") == []


async def test_a_second_statement_in_a_one_statement_unit(db: database.Database) -> None:
    """PostgreSQL refuses it (it would run outside any transaction); SQLite's unit is a transaction."""

    async def two_inserts() -> None:
        async with db.one_statement() as tx:
            await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "r", 1)
            await tx.execute("INSERT INTO demo.things (id, qty) VALUES ($1, $2)", "s", 1)

    if db.dialect == "postgresql":
        with pytest.raises(RuntimeError, match="second statement"):
            await two_inserts()
        expected = ["r"]
    else:
        await two_inserts()
        expected = ["r", "s"]
    assert [row[0] for row in await db.fetch("SELECT id FROM demo.things ORDER BY id")] == expected
