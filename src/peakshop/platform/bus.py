"""The bus port: at-least-once delivery of events to named consumers.

`InProcessBus` is the embedded twin; `RabbitBus` runs on RabbitMQ with a durable topic exchange,
quorum queues (one per consumer) and publisher confirms. Handlers must be idempotent: they run inside
the inbox (`peakshop.platform.outbox.Inbox`), which drops a message already handled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage

from peakshop.platform.messages import Envelope, decode_envelope, encode_envelope

Handler = Callable[[Envelope], Awaitable[None]]
log = structlog.get_logger("peakshop.bus")


@dataclass
class Subscription:
    consumer: str
    topics: tuple[str, ...]
    handler: Handler
    attempts: int = 5


class Bus(Protocol):
    def subscribe(self, consumer: str, topics: list[str], handler: Handler) -> None:
        """Register before `start`: `consumer` names a durable queue shared by its replicas."""
        ...

    async def publish(self, envelope: Envelope) -> None:
        """Return once the event is safely with the bus (a broker confirm for RabbitMQ)."""
        ...

    async def start(self) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


@dataclass
class InProcessBus:
    """Queues and worker tasks in this process; a failing handler is retried, then logged."""

    retry_delay: float = 0.05
    _subs: list[Subscription] = field(default_factory=list)
    _queues: dict[str, asyncio.Queue[Envelope]] = field(default_factory=dict)
    _workers: list[asyncio.Task[None]] = field(default_factory=list)

    def subscribe(self, consumer: str, topics: list[str], handler: Handler) -> None:
        self._subs.append(Subscription(consumer, tuple(topics), handler))

    async def start(self) -> None:
        for sub in self._subs:
            queue: asyncio.Queue[Envelope] = asyncio.Queue()
            self._queues[sub.consumer] = queue
            self._workers.append(asyncio.create_task(self._work(sub, queue), name=f"bus:{sub.consumer}"))

    async def publish(self, envelope: Envelope) -> None:
        for sub in self._subs:
            if envelope.topic in sub.topics:
                self._queues[sub.consumer].put_nowait(envelope)

    async def drain(self) -> None:
        """Wait until every queued event is handled (tests use this instead of sleeping)."""
        await asyncio.gather(*(q.join() for q in self._queues.values()))

    async def _work(self, sub: Subscription, queue: asyncio.Queue[Envelope]) -> None:
        while True:
            envelope = await queue.get()
            try:
                for attempt in range(1, sub.attempts + 1):
                    try:
                        await sub.handler(envelope)
                        break
                    except Exception:
                        log.exception(
                            "handler_failed", consumer=sub.consumer, id=envelope.id, attempt=attempt
                        )
                        await asyncio.sleep(self.retry_delay * attempt)
            finally:
                queue.task_done()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()


class RabbitBus:
    def __init__(
        self, url: str, *, namespace: str = "peakshop", prefetch: int = 32, queue_expires: float = 0
    ) -> None:
        self._url = url
        self._namespace = namespace
        self._queue_expires = queue_expires
        self._exchange_name = f"{namespace}.events"
        self._prefetch = prefetch
        self._subs: list[Subscription] = []
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._publish_channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    def subscribe(self, consumer: str, topics: list[str], handler: Handler) -> None:
        self._subs.append(Subscription(consumer, tuple(topics), handler))

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url)
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._publish_channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for sub in self._subs:
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            exchange = await channel.declare_exchange(
                self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(
                f"{self._namespace}.{sub.consumer}",
                durable=True,
                # Quorum queues are replicated; the delivery limit parks a poison message instead of
                # redelivering it forever.
                arguments=self._queue_arguments(sub),
            )
            for topic in sub.topics:
                await queue.bind(exchange, routing_key=topic)
            await queue.consume(self._consumer(sub))

    def _queue_arguments(self, sub: Subscription) -> dict[str, Any]:
        arguments: dict[str, Any] = {"x-queue-type": "quorum", "x-delivery-limit": sub.attempts}
        if self._queue_expires:
            # The broker deletes a queue nobody has consumed from for this long (test shops, and
            # namespaces given up), instead of keeping it and its messages forever.
            arguments["x-expires"] = int(self._queue_expires * 1000)
        return arguments

    def _consumer(self, sub: Subscription) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            # Ack only after the handler succeeded; an exception requeues for another try.
            async with message.process(requeue=True):
                await sub.handler(decode_envelope(message.body))

        return on_message

    async def publish(self, envelope: Envelope) -> None:
        if self._exchange is None:
            raise RuntimeError("RabbitBus.publish before start()")
        await self._exchange.publish(
            aio_pika.Message(
                encode_envelope(envelope),
                message_id=envelope.id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/msgpack",
            ),
            routing_key=envelope.topic,
            # Not mandatory: an event no service subscribes to yet is dropped by the exchange, as a
            # topic's subscribers are the consumers' business. Mandatory publishing made the broker
            # send every such event back, and the client build a message for each return.
            mandatory=False,
        )

    async def ping(self) -> None:
        if self._connection is None or self._connection.is_closed:
            raise ConnectionError("not connected to RabbitMQ")

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
