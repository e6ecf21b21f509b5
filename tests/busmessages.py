"""One message of each kind deploybot publishes, made by the bot's own builders
(:mod:`deploybot.deployday.busmessages`) from real records: a plan with an API break, an
incident reported and fixed in a real store, an escalated page, the day's digest.

Shared by tests/test_bus_messages.py (schemas, fedora-messaging's classes, texts) and
tests/test_amqp_publish.py (the same messages through a real RabbitMQ), with a consumer
for the broker tests: :func:`bound_queue`, :func:`drain` (each delivery read by
fedora-messaging's ``get_message``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import aio_pika
import pika
from aio_pika.abc import AbstractIncomingMessage
from fedora_messaging import message as fm

from deploybot.config import Config, config_from_mapping
from deploybot.deployday.busmessages import (
    deploy_finished,
    deploy_started,
    digest_posted,
    incident_fixed,
    incident_reported,
    page_escalated,
)
from deploybot.deployday.digest import digest_for_day
from deploybot.plans.model import ApiBreak
from deploybot.publish import CONTENT_ENCODING, CONTENT_TYPE, BusMessage
from deploybot.store import Store, StoredBusMessage
from deploybot_messages import KINDS
from tests.planfactory import make_plan, utc

WHEN = utc(2026, 12, 15, 13)  # the factory plan pkgdb2-2.0: Tue 13:00–21:00 UTC
PREFIX = "org.fedoraproject"
ENVIRONMENT = "prod"
TOPICS = tuple(KINDS)
BINDING = f"{PREFIX}.{ENVIRONMENT}.deploybot.#"
#: How long :func:`drain` waits for the messages it expects.
DRAIN_TIMEOUT = 20.0


def config() -> Config:
    return config_from_mapping({"admin_channel": "#fedora-admin"})


@contextmanager
def sample_messages(tmp_path: Path) -> Iterator[dict[str, BusMessage]]:
    """One :class:`BusMessage` per topic, in :data:`TOPICS` order (a store under
    ``tmp_path`` holds the records they were made from)."""
    plan = make_plan(
        api_breaks=(
            ApiBreak("/api/packager/acl", "returns null instead of []", "treat null as []"),
        ),
    )
    store = Store.open(tmp_path / "samples.sqlite3")
    try:
        reported = store.report_incident(
            service="pkgdb2",
            text="the acl page returns 500",
            reporter_nick="dgilmore",
            reporter_account="dgilmore",
            channel="#pkgdb2-firefight",
            now=WHEN + timedelta(minutes=20),
            deploy_id=plan.id,
            minutes_into_deploy=20,
        )
        store.take(reported.number, "pingou", "pingou", WHEN + timedelta(minutes=22))
        fixed = store.fix(
            reported.number, "pingou", "pingou", WHEN + timedelta(minutes=35), note="rolled back"
        )
        page = store.create_page(
            target_nick="tflink",
            team="qa",
            plan_id=plan.id,
            message="deploy of pkgdb2 2.0 started: ⚠ API BREAK",
            sender_nick="deploybot",
            now=WHEN,
            escalate_at=WHEN + timedelta(minutes=10),
            target_account="tflink",
        )
        digest = digest_for_day(
            store, [plan], WHEN.date(), config().timezone, as_of=WHEN + timedelta(hours=9)
        )
        messages = [
            deploy_started(plan, config(), user="pingou", playbook="groups/pkgdb.yml", at=WHEN),
            deploy_finished(
                plan,
                config(),
                user="pingou",
                playbook="groups/pkgdb.yml",
                at=WHEN + timedelta(hours=1),
                ok=False,
                has_results=True,
                failed_hosts=("pkgdb01.phx2.fedoraproject.org",),
            ),
            incident_reported(reported),
            incident_fixed(fixed, account="pingou", note="rolled back"),
            page_escalated(page, now=WHEN + timedelta(minutes=10), escalated_to=["nirik"]),
            digest_posted(digest),
        ]
        by_topic = {message.topic: message for message in messages}
        assert tuple(by_topic) == TOPICS
        yield by_topic
    finally:
        store.close()


async def bound_queue(url: str) -> str:
    """A new durable queue bound to deploybot's topics (``…prod.deploybot.#``); its name."""
    name = f"deploybot-publish-test-{uuid.uuid4()}"
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(name, durable=True)
        await declared.bind("amq.topic", routing_key=BINDING)
    return name


async def drain(url: str, queue: str, expected: int, settle: float = 0.5) -> list[fm.Message]:
    """Consume the queue: at least ``expected`` messages (each read by fedora-messaging),
    then whatever else comes within ``settle`` seconds (so an extra copy is seen)."""
    got: list[fm.Message] = []
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        quiet_since = None
        while True:
            incoming = await declared.get(no_ack=True, fail=False)
            if incoming is not None:
                got.append(as_fedora_messaging(incoming))
                quiet_since = None
                continue
            now = loop.time()
            if len(got) >= expected:
                quiet_since = quiet_since or now
                if now - quiet_since >= settle:
                    return got
            elif now > deadline:
                raise AssertionError(f"{len(got)} of {expected} messages within {DRAIN_TIMEOUT} s")
            await asyncio.sleep(0.02)


def as_fedora_messaging(incoming: AbstractIncomingMessage) -> fm.Message:
    """What a fedora-messaging consumer makes of the delivery (its class, validated)."""
    properties = pika.BasicProperties(
        content_type=incoming.content_type,
        content_encoding=incoming.content_encoding,
        delivery_mode=int(incoming.delivery_mode),
        headers=dict(incoming.headers),
        message_id=incoming.message_id,
    )
    assert incoming.routing_key is not None
    return fm.get_message(incoming.routing_key, properties, incoming.body)


def pika_properties(message: StoredBusMessage) -> pika.BasicProperties:
    """The AMQP properties of a stored message, as pika (fedora-messaging) receives them."""
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        content_encoding=CONTENT_ENCODING,
        delivery_mode=2,
        headers=dict(message.headers),
        message_id=message.message_id,
    )
