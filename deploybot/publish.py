"""What the bot publishes on the message bus, kept in the store until the broker confirms it.

With ``amqp_publish = true`` (and an ``amqp_url``), the bot publishes its own events
(:mod:`deploybot_messages`: deploy start and complete, incident new and fixed, page
escalated, the digest) in fedora-messaging's wire format, so that other tools react to
them as they do to bodhi's or pagure's.

:class:`BusOutbox` is the durable outbox for them, the counterpart of
:class:`~deploybot.deployday.posts.StoredOutbox` for IRC posts: :meth:`BusOutbox.publish`
writes the whole message as it will go on the wire (:func:`wire`) to the store's
``bus_outbox`` table **in the caller's transaction** — the one that records the decision
(a bus event's facts, an incident, an escalation's mark, the digest's claim) — and hands
it to the transport (the AMQP publisher) only once that transaction has committed.  The
transport removes it when the broker has confirmed it.  So a committed decision's message
is never lost (a broker away, a crash, a kill -9: it waits in the store), and one
decision makes one message; what can be repeated is the same message, with the same
message id, published again when the broker's confirm did not reach the bot.

The wire format is fedora-messaging's (``Message._build_properties`` and
``_encoded_body`` in fedora-messaging 3.x; the tests read ours back with its own code):

* exchange ``amq.topic``, routing key ``PREFIX.ENVIRONMENT.TOPIC`` (``fedmsg_topic_prefix``
  and ``fedmsg_environment``: ``org.fedoraproject.prod.deploybot.deploy.start``);
* body ``json.dumps(body)`` in UTF-8 (ASCII, since ``json.dumps`` escapes the rest);
* properties: content type ``application/json``, encoding ``utf-8``, persistent
  (delivery mode 2), the message id (a uuid4, made when the message is decided);
* headers: ``fedora_messaging_schema`` (``deploybot.deploy.start.v1``),
  ``fedora_messaging_schema_package`` (``deploybot``), ``sent-at`` (the decision's time,
  ISO 8601 with ``+00:00``, whole seconds), ``fedora_messaging_severity``, ``priority``
  (0), and ``fedora_messaging_user_NAME: true`` for each of the message's ``usernames``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from deploybot_messages.schema import SCHEMA_PACKAGE, kind_of_topic

from deploybot.store import BusHeaders, Store, StoredBusMessage

__all__ = [
    "CONTENT_ENCODING",
    "CONTENT_TYPE",
    "ERROR",
    "EXCHANGE",
    "INFO",
    "WARNING",
    "BusMessage",
    "BusOutbox",
    "BusTransport",
    "wire",
]

log = logging.getLogger(__name__)

#: The exchange fedora-messaging publishes to (its ``publish_exchange`` default).
EXCHANGE = "amq.topic"
CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
#: fedora-messaging's severities (``fedora_messaging.message.INFO`` …).
INFO = 20
WARNING = 30
ERROR = 40


@dataclass(frozen=True)
class BusMessage:
    """A message to publish: its topic (after the prefix: ``deploybot.digest``), its
    body (JSON-ready, valid under the topic's schema) and severity."""

    topic: str
    body: Mapping[str, Any] = field(default_factory=dict)
    severity: int = INFO


class BusTransport(Protocol):
    """What a publisher offers :class:`BusOutbox`."""

    def send_bus_message(self, message: StoredBusMessage) -> None:
        """Publish a stored message, after those handed over before it; confirm it in
        the store (:meth:`~deploybot.store.Store.confirm_bus_messages`) once the broker
        has."""


def wire(
    message: BusMessage, *, prefix: str, environment: str, now: datetime
) -> tuple[str, BusHeaders, str]:
    """``(routing key, headers, body text)`` of ``message`` as fedora-messaging writes them
    (module documentation); ``now`` is its ``sent-at``."""
    kind = kind_of_topic(message.topic)
    headers: BusHeaders = {
        "fedora_messaging_schema": kind.schema_name,
        "fedora_messaging_schema_package": SCHEMA_PACKAGE,
        "sent-at": now.astimezone(UTC).replace(microsecond=0).isoformat(),
        "fedora_messaging_severity": message.severity,
        "priority": 0,
    }
    for name in kind.usernames(message.body):
        headers[f"fedora_messaging_user_{name}"] = True
    routing_key = ".".join((prefix.rstrip("."), environment, kind.topic))
    return routing_key, headers, json.dumps(message.body)


class BusOutbox:
    """Keeps the messages to publish in the store until the broker confirmed them; see the
    module.  ``transport`` may be given later (:attr:`transport`); until then messages
    are only stored."""

    def __init__(
        self,
        store: Store,
        *,
        prefix: str,
        environment: str,
        clock: Callable[[], datetime],
        transport: BusTransport | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.environment = environment
        self.transport = transport
        self._clock = clock

    def publish(self, message: BusMessage) -> StoredBusMessage:
        """Store ``message`` in the caller's transaction; hand it to the transport once
        that commits."""
        now = self._clock()
        routing_key, headers, body = wire(
            message, prefix=self.prefix, environment=self.environment, now=now
        )
        stored = self.store.add_bus_message(str(uuid.uuid4()), routing_key, headers, body, now)
        summary = kind_of_topic(message.topic).summary(message.body)
        self.store.after_commit(lambda: self._hand_over(stored, summary))
        return stored

    def _hand_over(self, stored: StoredBusMessage, summary: str) -> None:
        log.info("bus: publishing %s %s: %s", stored.routing_key, stored.message_id, summary)
        if self.transport is not None:
            self.transport.send_bus_message(stored)

    def resume(self) -> int:
        """Hand the transport the messages an earlier run left unconfirmed, oldest first;
        return how many.  Call it once, before anything is published."""
        pending = self.store.pending_bus_messages()
        if self.transport is not None:
            for message in pending:
                self.transport.send_bus_message(message)
        return len(pending)
