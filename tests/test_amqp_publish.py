"""AmqpPublisher against a real RabbitMQ (tests/rabbitmq.py): what deploybot publishes
reaches a consumer that reads it with fedora-messaging's own code and message classes;
a message decided while the broker is away is delivered once it is back, once; a
re-send is the same message.

The messages are the six samples of tests/busmessages.py, stored by a real
:class:`BusOutbox` in a real store and published by the publisher the bot runs.  The
consumer is aio-pika on a durable queue bound to ``org.fedoraproject.prod.deploybot.#``
(durable: it keeps what arrives while the test is not reading), and each delivery is
handed to ``fedora_messaging.message.get_message``, which finds the class through the
``fedora.messages`` entry points and validates it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from deploybot_plugins.bus.amqp_publisher import AmqpPublisher

from deploybot.publish import BusMessage, BusOutbox
from deploybot.store import Store
from deploybot_messages import messages as classes
from tests.busmessages import (
    ENVIRONMENT,
    PREFIX,
    TOPICS,
    WHEN,
    bound_queue,
    drain,
    sample_messages,
)
from tests.rabbitmq import RabbitmqServer, delete_queue, queue_counts
from tests.waiting import eventually

TIMEOUT = 20.0


@pytest.fixture
def samples(tmp_path: Path) -> Iterator[dict[str, BusMessage]]:
    with sample_messages(tmp_path) as messages:
        yield messages


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "db.sqlite3")
    yield store
    store.close()


@pytest.fixture
async def queue(rabbitmq: RabbitmqServer) -> AsyncIterator[str]:
    """A durable queue bound to deploybot's topics, deleted afterwards."""
    name = await bound_queue(rabbitmq.url)
    yield name
    if rabbitmq.running:
        await delete_queue(rabbitmq.url, name)


class Publishers:
    """Runs `AmqpPublisher` tasks for the test; closes them at teardown."""

    def __init__(self, url: str, store: Store) -> None:
        self.url = url
        self.store = store
        self.running: list[tuple[AmqpPublisher, asyncio.Task[None]]] = []

    def __call__(self, **kwargs: Any) -> tuple[AmqpPublisher, BusOutbox]:
        kwargs.setdefault("confirm", self.store.confirm_bus_messages)
        publisher = AmqpPublisher(self.url, reconnect_interval=0.2, **kwargs)
        outbox = BusOutbox(
            self.store, prefix=PREFIX, environment=ENVIRONMENT, clock=lambda: WHEN,
            transport=publisher,
        )  # fmt: skip
        task = asyncio.create_task(publisher.run(), name="amqp-publisher")
        self.running.append((publisher, task))
        return publisher, outbox

    async def stop(self, publisher: AmqpPublisher) -> None:
        for running, task in self.running:
            if running is publisher:
                await publisher.close()
                await asyncio.wait_for(task, 10)

    async def close_all(self) -> None:
        for publisher, task in self.running:
            await publisher.close()
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def publishers(rabbitmq: RabbitmqServer, store: Store) -> AsyncIterator[Publishers]:
    factory = Publishers(rabbitmq.url, store)
    try:
        yield factory
    finally:
        await factory.close_all()


@pytest.mark.e2e
async def test_every_kind_reaches_a_fedora_messaging_consumer_as_its_class(
    rabbitmq: RabbitmqServer,
    queue: str,
    store: Store,
    publishers: Publishers,
    samples: dict[str, BusMessage],
) -> None:
    """The six kinds, decided in one transaction, arrive in order as DeployStartV1 …
    DigestV1, validated, with their ids; the store keeps none once confirmed."""
    publisher, outbox = publishers()
    with store.transaction():
        stored = [outbox.publish(message) for message in samples.values()]
    got = await drain(rabbitmq.url, queue, len(TOPICS))
    assert [type(m) for m in got] == [
        classes.DeployStartV1,
        classes.DeployCompleteV1,
        classes.IncidentNewV1,
        classes.IncidentFixedV1,
        classes.PageEscalatedV1,
        classes.DigestV1,
    ]
    assert [m.id for m in got] == [s.message_id for s in stored]
    assert [m.topic for m in got] == [f"{PREFIX}.{ENVIRONMENT}.{t}" for t in TOPICS]
    for message in got:
        message.validate()
        assert message._headers["fedora_messaging_schema_package"] == "deploybot"
        assert message.summary and "\n" not in message.summary
    assert got[2].summary.startswith("dgilmore reported incident #1 on pkgdb2")
    await eventually(lambda: store.pending_bus_messages() == (), "all confirmed")
    assert publisher.published == len(TOPICS) and publisher.waiting == 0


@pytest.mark.e2e
async def test_messages_decided_while_the_broker_is_down_arrive_once_it_is_back_once_each(
    rabbitmq: RabbitmqServer,
    queue: str,
    store: Store,
    publishers: Publishers,
    samples: dict[str, BusMessage],
) -> None:
    """The broker stops; three events happen; nothing is lost meanwhile (the messages
    wait in the store, the publisher retries); once the broker is back each arrives
    exactly once, in order."""
    publisher, outbox = publishers()
    await asyncio.wait_for(publisher.connected.wait(), TIMEOUT)
    await rabbitmq.astop()
    chosen = [samples[t] for t in ("deploybot.incident.new", "deploybot.page.escalated")]
    stored = [outbox.publish(message) for message in (*chosen, samples["deploybot.digest"])]
    await eventually(lambda: publisher.failures >= 2, "the publisher retried", TIMEOUT)
    assert [s.id for s in store.pending_bus_messages()] == [s.id for s in stored]
    await rabbitmq.astart()
    await eventually(lambda: store.pending_bus_messages() == (), "all confirmed", TIMEOUT)
    got = await drain(rabbitmq.url, queue, len(stored), settle=1.0)
    assert [m.id for m in got] == [s.message_id for s in stored]
    assert [type(m) for m in got] == [
        classes.IncidentNewV1,
        classes.PageEscalatedV1,
        classes.DigestV1,
    ]
    assert publisher.published == len(stored)
    assert await queue_counts(rabbitmq.url, queue) == (0, 0)


@pytest.mark.e2e
async def test_a_message_whose_confirm_was_lost_is_published_again_as_the_same_message(
    rabbitmq: RabbitmqServer,
    queue: str,
    store: Store,
    publishers: Publishers,
    samples: dict[str, BusMessage],
) -> None:
    """The broker confirmed, but the bot died before forgetting the message (here: a
    confirm that removes nothing).  The next start publishes it again: the broker has two
    copies, with the same message id, headers and body, so a consumer drops the second;
    then the store is empty."""
    lost, outbox = publishers(confirm=lambda ids: 0)
    stored = outbox.publish(samples["deploybot.deploy.start"])
    await eventually(lambda: lost.published == 1, "published once")
    await publishers.stop(lost)
    assert store.pending_bus_messages() == (stored,)
    again, outbox = publishers()
    assert outbox.resume() == 1
    await eventually(lambda: store.pending_bus_messages() == (), "confirmed", TIMEOUT)
    first, second = await drain(rabbitmq.url, queue, 2)
    assert first.id == second.id == stored.message_id
    assert first == second  # fedora-messaging's equality: class, topic, body, headers
    assert first._headers["sent-at"] == second._headers["sent-at"] == "2026-12-15T13:00:00+00:00"
    assert again.published == 1
