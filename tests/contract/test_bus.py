"""One contract for both buses: in-process and RabbitMQ deliver the same way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from peakshop.platform.bus import Bus, InProcessBus, RabbitBus
from peakshop.platform.messages import Envelope
from tests.services import drop_namespace_exchange


@pytest.fixture(params=["in-process", "rabbitmq"])
def make_bus(request: pytest.FixtureRequest) -> Iterator[Callable[[], Bus]]:
    if request.param == "in-process":
        yield InProcessBus
        return
    url = request.getfixturevalue("amqp_url")
    # A namespace of the test's own: the default one is a running shop's.
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield lambda: RabbitBus(url, namespace=namespace, queue_expires=60)
    drop_namespace_exchange(namespace)


@pytest.fixture
async def bus(make_bus: Callable[[], Bus]) -> AsyncIterator[Bus]:
    b = make_bus()
    yield b
    await b.close()


class Received:
    def __init__(self, expected: int) -> None:
        self.items: list[Envelope] = []
        self.expected = expected
        self.done = asyncio.Event()

    async def handler(self, envelope: Envelope) -> None:
        self.items.append(envelope)
        if len(self.items) >= self.expected:
            self.done.set()

    async def wait(self) -> None:
        async with asyncio.timeout(10):
            await self.done.wait()


def _unique(name: str) -> str:
    # Queues and routing keys unique per test, so a RabbitMQ left with old messages cannot interfere.
    return f"{name}.{uuid.uuid4().hex[:8]}"


async def test_a_subscriber_gets_each_event_of_its_topics(bus: Bus) -> None:
    topic, other = _unique("t"), _unique("other")
    got = Received(expected=3)
    bus.subscribe(_unique("c"), [topic], got.handler)
    await bus.start()
    sent = [Envelope.wrap(topic, {"n": i}) for i in range(3)]
    await bus.publish(Envelope.wrap(other, {"n": -1}))
    for env in sent:
        await bus.publish(env)
    await got.wait()
    assert sorted(e.id for e in got.items) == sorted(e.id for e in sent)
    assert {e.topic for e in got.items} == {topic}


async def test_every_consumer_gets_its_own_copy(bus: Bus) -> None:
    topic = _unique("t")
    first, second = Received(1), Received(1)
    bus.subscribe(_unique("a"), [topic], first.handler)
    bus.subscribe(_unique("b"), [topic], second.handler)
    await bus.start()
    env = Envelope.wrap(topic, {"x": 1})
    await bus.publish(env)
    await first.wait()
    await second.wait()
    assert first.items[0].id == second.items[0].id == env.id
    assert first.items[0].decode(dict) == {"x": 1}


async def test_a_failing_handler_gets_the_event_again(bus: Bus) -> None:
    topic = _unique("t")
    attempts: list[str] = []
    delivered = asyncio.Event()

    async def flaky(envelope: Envelope) -> None:
        attempts.append(envelope.id)
        if len(attempts) == 1:
            raise RuntimeError("first delivery fails")
        delivered.set()

    bus.subscribe(_unique("c"), [topic], flaky)
    await bus.start()
    await bus.publish(Envelope.wrap(topic, {}))
    await asyncio.wait_for(delivered.wait(), 10)
    assert len(attempts) == 2 and attempts[0] == attempts[1]


async def test_ping_answers_after_start(bus: Bus) -> None:
    await bus.start()
    await bus.ping()
