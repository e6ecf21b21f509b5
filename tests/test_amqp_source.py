"""AmqpSource against a real RabbitMQ (tests/rabbitmq.py): fedora-messaging messages in,
a real BusReactor (real Core on a tmp SQLite file, a recording outbox) out."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from deploybot_plugins.bus.amqp_source import AmqpSource, redact_url

from deploybot.bus.events import BusEvent
from deploybot.bus.reactor import BusReactor
from deploybot.bus.rules import DeployFact
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.store import Store
from tests.fakes import RecordingOutbox
from tests.ircd.servers import free_port
from tests.planfactory import make_plan
from tests.rabbitmq import (
    RabbitmqServer,
    delete_queue,
    fedora_message,
    publish,
    queue_counts,
    sample,
)
from tests.waiting import eventually

ADMIN = "#admin"
START = "org.fedoraproject.prod.ansible.playbook.start"
COMPLETE = "org.fedoraproject.prod.ansible.playbook.complete"
PLAYBOOK = "playbooks/update_ticketkey.yml"  # the fedora-messaging sample's playbook
SHOWN = "update_ticketkey.yml"  # …as the announcements show it (and the plan lists it)
TIMEOUT = 20.0


class RecordingReactor(BusReactor):
    """The real reactor, also keeping every event it was handed."""

    def __init__(self, core: Core, outbox: RecordingOutbox) -> None:
        super().__init__(core, outbox)
        self.recording = outbox
        self.events: list[BusEvent] = []

    def handle(self, event: BusEvent, now: datetime | None = None) -> list[DeployFact]:
        self.events.append(event)
        return super().handle(event, now)

    @property
    def ids(self) -> list[str]:
        return [event.id for event in self.events]

    @property
    def posts(self) -> list[tuple[str, str]]:
        return self.recording.posts


@pytest.fixture
def reactor(tmp_path: Path) -> Iterator[RecordingReactor]:
    """A BusReactor over a real Core: one plan (pkgdb2, playbook update_ticketkey.yml)
    whose window runs now."""
    plans = tmp_path / "plans"
    plans.mkdir()
    when = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    plan = make_plan(when=when, playbooks=(SHOWN,))
    (plans / "pkgdb2.yaml").write_text(dump_plan(plan), encoding="utf-8")
    book = PlanBook(plans)
    assert not book.reload().problems
    store = Store.open(tmp_path / "db.sqlite3", busy_timeout=0.2)
    core = Core(config=config_from_mapping({"admin_channel": ADMIN}), store=store, book=book)
    try:
        yield RecordingReactor(core, RecordingOutbox())
    finally:
        store.close()


class Sources:
    """Starts `AmqpSource.run()` tasks against the test broker; closes them at teardown and
    checks that each run ended cleanly."""

    def __init__(self, url: str, reactor: RecordingReactor) -> None:
        self.url = url
        self.reactor = reactor
        self.running: list[tuple[AmqpSource, asyncio.Task[None]]] = []

    async def __call__(
        self,
        queue: str = "",
        bindings: tuple[str, ...] = ("org.fedoraproject.*.ansible.#",),
        **kwargs: Any,
    ) -> AmqpSource:
        """A source consuming (queue declared, bound, consumer on) when this returns."""
        kwargs.setdefault("reconnect_interval", 0.5)
        source = AmqpSource(
            self.url, queue, bindings, self.reactor, prefix="org.fedoraproject", **kwargs
        )
        task = asyncio.create_task(source.run(), name="amqp-source")
        self.running.append((source, task))
        await asyncio.wait_for(source.consuming.wait(), TIMEOUT)
        return source

    async def stop(self, source: AmqpSource) -> None:
        """close(); the run task ends by itself, without an error."""
        for running, task in self.running:
            if running is source:
                await source.close()
                await asyncio.wait_for(task, 10)

    async def close_all(self) -> None:
        for source, task in self.running:
            await source.close()
            await asyncio.wait_for(task, 10)  # re-raises whatever ended run()


@pytest.fixture
async def sources(rabbitmq: RabbitmqServer, reactor: RecordingReactor) -> AsyncIterator[Sources]:
    """`await sources(queue, bindings, **kwargs)` → a consuming `AmqpSource` on the test
    broker feeding `reactor` (reconnecting every 0.5 s); all closed at teardown."""
    factory = Sources(rabbitmq.url, reactor)
    try:
        yield factory
    finally:
        await factory.close_all()


def start_message(**kwargs: Any) -> aio_pika.Message:
    """A fedora-messaging ansible.playbook.start of the sample's playbook by dudemcpants."""
    body = {
        "playbook": PLAYBOOK,
        "userid": "dudemcpants",
        "check": False,
        "extra_vars": {},
        "inventory": ["inventory/"],
        "playbook_checksum": "0123abcd",
    }
    headers = {"fedora_messaging_user_dudemcpants": True}
    return fedora_message(body, schema="ansible.playbook.start", headers=headers, **kwargs)


def complete_message() -> aio_pika.Message:
    """The fedora-messaging sample (ansible.playbook.complete), sent now with a new id."""
    document = sample("fedora-messaging.ansible.playbook.complete")
    headers = document["headers"]
    return fedora_message(
        document["body"], schema=headers["fedora_messaging_schema"], headers=headers
    )


def test_redact_url_masks_the_password_and_keeps_the_rest() -> None:
    """The URL as logged: the password is ***, user, host, port, vhost and query stay;
    a URL without a password is unchanged."""
    assert (
        redact_url("amqps://fedora:s3cret@rabbitmq.example.org:5671/%2Fpublic_pubsub?cafile=x")
        == "amqps://fedora:***@rabbitmq.example.org:5671/%2Fpublic_pubsub?cafile=x"
    )
    assert redact_url("amqp://guest:p@ss:w@rd@localhost/") == "amqp://guest:***@localhost/"
    assert redact_url("amqp://localhost/") == "amqp://localhost/"
    assert redact_url("amqp://user@localhost/") == "amqp://user@localhost/"
    assert redact_url("not a url: s3cret") == "<amqp url>"


@pytest.mark.parametrize("password", ["s3/cret", "s3?cret", "s3#cret", "/s3cret", "s3c@r/et"])
def test_redact_url_hides_a_password_with_unencoded_delimiters(password: str) -> None:
    """A password with a / ? or # (which ends the URL parser's host) is hidden all the
    same: everything between :// and the last @ goes, but the user name."""
    shown = redact_url(f"amqps://fedora:{password}@rabbit.example.org:5671/%2Fv")
    assert shown == "amqps://fedora:***@rabbit.example.org:5671/%2Fv"


async def test_playbook_start_and_complete_reach_the_reactor_and_are_acknowledged(
    sources: Sources, reactor: RecordingReactor, rabbitmq: RabbitmqServer
) -> None:
    """fedora-messaging's start and complete, published to amq.topic, reach the reactor
    as events with the routing key as topic, the message id and `sent-at`, and become
    "deploy of pkgdb2 started by dudemcpants" and "finished ok" in the admin channel; both
    are acknowledged (the durable queue holds nothing once the consumer is gone)."""
    queue = f"deploybot-test-{uuid.uuid4()}"
    await sources(queue)
    sent_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    start = start_message(sent_at=sent_at)
    complete = complete_message()
    await publish(rabbitmq.url, START, start)
    await publish(rabbitmq.url, COMPLETE, complete)
    await eventually(lambda: len(reactor.posts) >= 2, "two posts", TIMEOUT)
    assert reactor.posts == [
        (ADMIN, f"deploy of pkgdb2 started by dudemcpants ({SHOWN})"),
        (ADMIN, f"deploy of pkgdb2 finished ok ({SHOWN})"),
    ]
    first, second = reactor.events
    assert (first.topic, first.short_topic, first.environment) == (
        START,
        "ansible.playbook.start",
        "prod",
    )
    assert (first.id, first.sent_at, first.source) == (
        start.message_id,
        sent_at,
        "fedora-messaging",
    )
    assert first.body["userid"] == "dudemcpants"
    assert (second.topic, second.id) == (COMPLETE, complete.message_id)
    stats = reactor.stats.as_dict()
    assert stats["received"] == {"fedmsg": 0, "fedora-messaging": 2, "webhook": 0}
    assert stats["decoded"] == 2 and stats["dropped_total"] == 0
    await sources.close_all()  # unacknowledged messages would now be ready again
    assert await queue_counts(rabbitmq.url, queue) == (0, 0)
    await delete_queue(rabbitmq.url, queue)


async def test_bindings_choose_which_topics_the_broker_sends(
    sources: Sources, reactor: RecordingReactor, rabbitmq: RabbitmqServer
) -> None:
    """Only topics matching one of `amqp_bindings` on amq.topic arrive (an exact key and a
    `#` pattern here): other topics, environments and prefixes never reach the reactor."""
    await sources(bindings=(START, "org.fedoraproject.stg.#"))
    published = [
        (START, True),
        (COMPLETE, False),  # prod, but only prod *start* is bound
        ("org.fedoraproject.stg.ansible.playbook.complete", True),
        ("org.centos.prod.ansible.playbook.start", False),
        ("org.fedoraproject.prod.buildsys.build.state.change", False),
        ("org.fedoraproject.stg.buildsys.tag", True),
    ]
    for topic, _ in published:
        await publish(rabbitmq.url, topic, start_message())
    wanted = [topic for topic, bound in published if bound]
    await eventually(lambda: len(reactor.events) >= len(wanted), f"{wanted}", TIMEOUT)
    await publish(rabbitmq.url, START, start_message(message_id="barrier"))
    await eventually(lambda: "barrier" in reactor.ids, "the barrier message", TIMEOUT)
    assert [event.topic for event in reactor.events] == [*wanted, START]


async def test_bad_messages_are_dropped_counted_and_rejected_without_requeue(
    sources: Sources, reactor: RecordingReactor, rabbitmq: RabbitmqServer
) -> None:
    """A body that is not JSON, one over the 1 MB limit and a JSON array are counted as
    dropped (not-json, too-large, not-object) and rejected without requeue — the queue's
    dead-letter policy receives each of them once, with x-death reason "rejected", and
    nothing is redelivered — while the source goes on: the good messages around them are
    handled and acknowledged (never dead-lettered)."""
    queue = f"deploybot-dlx-{uuid.uuid4()}"
    policy = f"dlx-{queue}"
    rabbitmq.ctl(
        "set_policy", policy, f"^{queue}$", '{"dead-letter-exchange": "amq.fanout"}',
        "--apply-to", "queues",
    )  # fmt: skip
    dead: list[AbstractIncomingMessage] = []
    async with await aio_pika.connect(rabbitmq.url) as watcher:
        channel = await watcher.channel()
        dead_queue = await channel.declare_queue(exclusive=True)
        await dead_queue.bind("amq.fanout")

        async def on_dead(message: AbstractIncomingMessage) -> None:
            dead.append(message)
            await message.ack()

        await dead_queue.consume(on_dead)
        await sources(queue)
        bad = {
            "not-json": fedora_message(b"{this is not json"),
            "too-large": fedora_message({"playbook": "x" * 1_100_000}),
            "not-object": fedora_message(b'["playbook", "update_ticketkey.yml"]'),
        }
        first = start_message()
        last = start_message()
        await publish(rabbitmq.url, START, first, *bad.values(), last)
        await eventually(lambda: last.message_id in reactor.ids, "the last good message", TIMEOUT)
        await eventually(lambda: len(dead) >= 3, "three dead-lettered messages", TIMEOUT)
        await asyncio.sleep(0.5)  # time for a redelivery or a fourth dead letter, if any

    assert reactor.ids == [first.message_id, last.message_id]
    stats = reactor.stats.as_dict()
    assert stats["received"]["fedora-messaging"] == 5  # each bad one seen once: no loop
    assert {kind: n for kind, n in stats["dropped"].items() if n} == {
        "not-json": 1,
        "too-large": 1,
        "not-object": 1,
    }
    assert sorted(m.message_id or "" for m in dead) == sorted(
        m.message_id or "" for m in bad.values()
    )
    for message in dead:
        deaths = message.headers["x-death"]
        assert isinstance(deaths, list)
        death = deaths[0]
        assert isinstance(death, dict)
        assert death["reason"] == "rejected" and death["count"] == 1
        assert death["queue"] == queue
    assert len(reactor.posts) == 2  # both good starts announced
    await sources.close_all()
    assert await queue_counts(rabbitmq.url, queue) == (0, 0)  # nothing left unacknowledged
    await delete_queue(rabbitmq.url, queue)
    rabbitmq.ctl("clear_policy", policy)


async def test_a_repeated_message_id_is_acknowledged_but_announced_once(
    sources: Sources, reactor: RecordingReactor, rabbitmq: RabbitmqServer
) -> None:
    """The same message id twice (a redelivery after a lost ack looks like this): both
    copies are acknowledged, the reactor counts the second as a duplicate, and the deploy
    is announced once."""
    queue = f"deploybot-test-{uuid.uuid4()}"
    await sources(queue)
    once = start_message(message_id="same-id")
    await publish(rabbitmq.url, START, once, start_message(message_id="same-id"))
    await publish(rabbitmq.url, START, start_message(message_id="barrier"))
    await eventually(lambda: "barrier" in reactor.ids, "the barrier message", TIMEOUT)
    assert reactor.ids == ["same-id", "same-id", "barrier"]
    assert reactor.duplicates == 1
    assert reactor.stats.received["fedora-messaging"] == 3
    started = [text for _, text in reactor.posts if "started by dudemcpants" in text]
    assert len(started) == 2, reactor.posts  # "same-id" once, and the barrier
    await sources.close_all()
    assert await queue_counts(rabbitmq.url, queue) == (0, 0)  # all three acknowledged
    await delete_queue(rabbitmq.url, queue)


async def test_a_message_the_locked_store_could_not_record_is_requeued_until_it_can(
    sources: Sources, reactor: RecordingReactor, rabbitmq: RabbitmqServer
) -> None:
    """Another connection holds the database's write lock: opening firefighting fails,
    so the start is not acknowledged but requeued (and delivered again, announced by
    nobody) until the lock is gone; then it is acted on in full, once, and acknowledged."""
    reactor.deploy_day = DeployDay(reactor.core, reactor.recording)
    queue = f"deploybot-test-{uuid.uuid4()}"
    await sources(queue, requeue_delay=0.1)
    start = start_message(message_id="locked-start")
    with sqlite3.connect(reactor.core.store.path, isolation_level=None) as other:
        other.execute("BEGIN EXCLUSIVE")
        await publish(rabbitmq.url, START, start)
        await eventually(
            lambda: reactor.ids.count("locked-start") >= 3, "two redeliveries", TIMEOUT
        )
        assert reactor.posts == []
        other.execute("ROLLBACK")
    started = (ADMIN, f"deploy of pkgdb2 started by dudemcpants ({SHOWN})")
    await eventually(lambda: started in reactor.posts, "the start announced", TIMEOUT)
    plan = reactor.core.book.get("pkgdb2-2.0")
    assert plan is not None and reactor.deploy_day.firefight.is_open(plan)
    await sources.close_all()
    assert reactor.posts.count(started) == 1 and reactor.duplicates == 0
    assert await queue_counts(rabbitmq.url, queue) == (0, 0)  # acknowledged in the end
    await delete_queue(rabbitmq.url, queue)


async def test_a_private_queue_comes_back_after_a_broker_crash(
    sources: Sources, reactor: RecordingReactor, rabbitmq: RabbitmqServer
) -> None:
    """The broker is killed and started again on the same port: the robust connection
    reconnects by itself, declares the private queue again with its bindings, and later
    messages arrive — the run task never ends in between."""
    source = await sources()
    await publish(rabbitmq.url, START, start_message(message_id="before"))
    await eventually(lambda: "before" in reactor.ids, "the message before the crash", TIMEOUT)
    task = sources.running[-1][1]

    await rabbitmq.akill()
    assert not rabbitmq.processes(), "the broker left processes behind"
    await rabbitmq.astart()
    # the private queue is gone with the old broker; what is published before the source
    # declared it again is lost (no queue bound): publish until one arrives
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    n = 0
    while not any(i.startswith("after-") for i in reactor.ids):
        assert loop.time() < deadline, "no message arrived after the broker came back"
        n += 1
        await publish(rabbitmq.url, START, start_message(message_id=f"after-{n}"))
        await asyncio.sleep(0.2)
    await publish(rabbitmq.url, START, start_message(message_id="later"))
    await eventually(lambda: "later" in reactor.ids, "a later message", TIMEOUT)
    assert not task.done()
    assert source.consuming.is_set()
    assert reactor.ids[0] == "before" and reactor.ids[-1] == "later"


async def test_a_durable_queue_keeps_messages_while_the_consumer_is_away(
    sources: Sources, reactor: RecordingReactor, rabbitmq: RabbitmqServer
) -> None:
    """With `amqp_queue` set: across a broker restart the robust connection resubscribes to
    the durable queue and later messages arrive; messages published while no consumer is
    there (the bot stopped), kept over a second broker restart, are delivered in order to
    the next consumer of that queue."""
    queue = f"deploybot-test-{uuid.uuid4()}"
    source = await sources(queue)
    await publish(rabbitmq.url, START, start_message(message_id="m0"))
    await eventually(lambda: "m0" in reactor.ids, "m0", TIMEOUT)

    await rabbitmq.astop()
    assert not rabbitmq.processes(), "the broker left processes behind"
    await rabbitmq.astart()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (await queue_counts(rabbitmq.url, queue))[1] != 1:
        assert loop.time() < deadline, "the source did not resubscribe"
        await asyncio.sleep(0.1)
    await publish(rabbitmq.url, START, start_message(message_id="m1"))
    await eventually(lambda: "m1" in reactor.ids, "m1, after the broker restart", TIMEOUT)

    await sources.stop(source)  # the consumer goes away
    await publish(rabbitmq.url, START, *(start_message(message_id=i) for i in ("m2", "m3")))
    assert await queue_counts(rabbitmq.url, queue) == (2, 0)
    await rabbitmq.arestart()  # persistent messages in a durable queue survive it
    assert await queue_counts(rabbitmq.url, queue) == (2, 0)
    await sources(queue)
    await eventually(lambda: "m3" in reactor.ids, "m2 and m3", TIMEOUT)
    assert reactor.ids == ["m0", "m1", "m2", "m3"]
    await sources.close_all()
    await delete_queue(rabbitmq.url, queue)


async def test_close_returns_promptly_while_the_broker_is_unreachable_and_logs_no_password(
    reactor: RecordingReactor, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens at the URL: run() keeps retrying (it does not fail), close() ends it
    at once, and no log line shows the URL's password."""
    caplog.set_level(logging.DEBUG)
    url = f"amqp://deploybot:s3cret-pw@127.0.0.1:{free_port()}/"
    source = AmqpSource(
        url, "", ("#",), reactor, prefix="org.fedoraproject", reconnect_interval=0.2
    )
    task = asyncio.create_task(source.run())
    await asyncio.sleep(1.0)
    assert not task.done()
    await source.close()
    await asyncio.wait_for(task, 2)
    assert "amqp: connecting to amqp://deploybot:***@127.0.0.1" in caplog.text
    assert "s3cret" not in caplog.text
    assert json.dumps(reactor.stats.as_dict()["received"]) == json.dumps(
        {"fedmsg": 0, "fedora-messaging": 0, "webhook": 0}
    )


async def test_an_unusable_url_is_logged_without_its_password_and_run_returns(
    reactor: RecordingReactor, caplog: pytest.LogCaptureFixture
) -> None:
    """A URL no retry can fix (a port that is not a number, no host): run() logs one error,
    password masked, and returns instead of retrying forever."""
    for url in ("amqp://guest:s3cret-pw@broker:notaport/", "amqp://guest:s3cret-pw@/"):
        caplog.clear()
        source = AmqpSource(url, "", ("#",), reactor, prefix="org.fedoraproject")
        with caplog.at_level(logging.INFO):
            await asyncio.wait_for(source.run(), 2)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "amqp_url amqp://guest:***@" in errors[0], errors
        assert "s3cret" not in caplog.text
