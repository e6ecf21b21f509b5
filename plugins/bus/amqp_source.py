"""fedora-messaging over AMQP: broker messages in, :class:`~deploybot.bus.reactor.BusReactor` out.

Fedora's message bus today is fedora-messaging: publishers send to the ``amq.topic``
exchange of a RabbitMQ broker, routing key = topic (``org.fedoraproject.prod.ansible.
playbook.start``), body = UTF-8 JSON (the old fedmsg ``msg``), AMQP headers with
``fedora_messaging_schema``, ``sent-at`` (ISO 8601), ``priority``…, and the message id in
the ``message_id`` property.  :class:`AmqpSource` reads that format without the
fedora-messaging library itself (which runs on Twisted): it uses **aio-pika**, an asyncio
AMQP 0-9-1 client, on the bot's own event loop.

What it does (config keys from SPEC §7)
    * ``amqp_url`` — ``amqp://`` or ``amqps://``; aio-pika reads TLS options from the
      query (``?cafile=…&certfile=…&keyfile=…``) and ``heartbeat=…``.  The password is
      masked in every line this module logs (:func:`redact_url`).
    * ``amqp_queue`` — a name: a **durable** queue of that name, so messages sent while the
      bot is down (or reconnecting) wait for it.  Empty: a private queue, exclusive and
      auto-deleted, named ``deploybot-<uuid4>`` by the client (as fedora-messaging names
      its default queue): a server-named ``amq.gen-…`` queue could not be declared again
      under its name after a reconnect.
    * ``amqp_bindings`` — each key binds the queue to ``amq.topic`` (``*`` one word, ``#``
      any number), so the broker sends only matching topics.

    The connection is aio-pika's *robust* connection: when the broker goes away it
    reconnects by itself every ``reconnect_interval`` seconds and declares the channel's
    prefetch limit, the queue, its bindings and the consumer again.  A broker that is not
    there at start-up is retried the same way; :meth:`AmqpSource.run` returns only after
    :meth:`AmqpSource.close` (or when cancelled).

Each message
    is counted as received, decoded with :func:`~deploybot.bus.events.from_fedora_messaging`
    (routing key, body bytes, headers, message id; topics outside ``prefix`` are refused)
    and handed to :meth:`BusReactor.handle`, then **acknowledged** — only once its
    actions are recorded.  When the store could not record them (the database locked
    beyond its busy timeout, a full disk: :class:`~deploybot.store.StoreUnavailableError`)
    the reactor did not remember the event, and the message is **rejected with requeue**
    after :data:`REQUEUE_DELAY`, so the broker delivers it again and the retry does the
    whole of it.  One that does not decode goes to :meth:`BusReactor.reject` (counted,
    logged rate-limited) and is **rejected without requeue**, as is one whose handling
    raised anything else: a poison message is dropped (or dead-lettered, if the queue has
    a policy for it), never redelivered in a loop.  Bodies over ``max_bytes`` are refused
    (``too-large``) before parsing; the broker's own ``max_message_size`` (128 MiB by
    default) bounds what arrives at all.  At most ``prefetch`` messages are in flight
    unacknowledged.  A message whose ack was lost with the connection comes back
    redelivered: the reactor recognises its id and does not announce it twice
    (:meth:`BusReactor.handle` drops repeats of events already acted on).  Nothing a
    message holds makes an exception escape the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from yarl import URL

from deploybot.bus.events import DEFAULT_MAX_BYTES, BadMessage, Source, from_fedora_messaging
from deploybot.store import StoreUnavailableError

if TYPE_CHECKING:
    from deploybot.bus.reactor import BusReactor

__all__ = [
    "EXCHANGE",
    "PREFETCH",
    "RECONNECT_INTERVAL",
    "REQUEUE_DELAY",
    "AmqpSource",
    "private_queue_name",
    "redact_url",
]

log = logging.getLogger(__name__)

#: The exchange fedora-messaging publishes to.
EXCHANGE = "amq.topic"
#: Unacknowledged messages the broker may send ahead of our acks.
PREFETCH = 10
#: Seconds between connection attempts while the broker is unreachable.
RECONNECT_INTERVAL = 5.0
#: Seconds one connection attempt may take (TCP, TLS and the AMQP handshake).
CONNECT_TIMEOUT = 30.0
#: Seconds a message the store could not record waits before it is requeued (no hot loop
#: while the database stays locked).
REQUEUE_DELAY = 1.0
SOURCE: Source = "fedora-messaging"


def redact_url(url: str) -> str:
    """``url`` with everything between ``://`` and the last ``@`` (the credentials)
    replaced by ``***`` but the user name, safe to log.

    The last ``@``, not the URL parser's netloc: a password with an unencoded ``/``, ``?``
    or ``#`` ends the netloc early, and the rest of the password would be logged as the
    path (the config refuses such URLs; this stays safe for any string).

    >>> redact_url("amqps://fedora:s3cret@rabbitmq.example.org/%2Fpublic_pubsub")
    'amqps://fedora:***@rabbitmq.example.org/%2Fpublic_pubsub'
    >>> redact_url("amqp://fedora:s3/cr?e#t@localhost/")
    'amqp://fedora:***@localhost/'
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "<amqp url>"  # not a URL: show nothing that could be a secret
    userinfo, at, hostinfo = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    if not colon:
        return url  # a user name only: no password to hide
    shown = user if user and not set(user) & set("/?#") else "***"
    return f"{scheme}://{shown}:***@{hostinfo}"


def private_queue_name() -> str:
    """A unique name for a private (exclusive, auto-deleted) queue."""
    return f"deploybot-{uuid.uuid4()}"


class AmqpSource:
    """Consume fedora-messaging messages from ``url`` into ``reactor`` (module doc).

    ``queue`` is the durable queue's name (``""``: a private queue), ``bindings`` the topic
    binding keys on :data:`EXCHANGE`, ``prefix`` the topic prefix events must be under.
    """

    def __init__(
        self,
        url: str,
        queue: str,
        bindings: Iterable[str],
        reactor: BusReactor,
        *,
        prefix: str,
        prefetch: int = PREFETCH,
        max_bytes: int = DEFAULT_MAX_BYTES,
        reconnect_interval: float = RECONNECT_INTERVAL,
        connect_timeout: float = CONNECT_TIMEOUT,
        requeue_delay: float = REQUEUE_DELAY,
    ) -> None:
        self.url = url
        self.durable = bool(queue)
        self.queue_name = queue or private_queue_name()
        self.bindings = tuple(bindings)
        self.reactor = reactor
        self.prefix = prefix
        self.prefetch = prefetch
        self.max_bytes = max_bytes
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.requeue_delay = requeue_delay
        self.shown_url = redact_url(url)
        #: Set once the queue is declared, bound and consumed from (tests wait on it).
        self.consuming = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._closing = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, subscribe and consume until :meth:`close` (reconnecting as needed).

        Returns at once, after logging an error, if ``url`` has no host or a bad port: no
        retry would fix that."""
        try:
            url = URL(self.url)
            if not url.host:
                raise ValueError("no host")
        except ValueError as error:
            log.error("amqp: amqp_url %s is not usable (%s); not consuming", self.shown_url, error)
            return
        try:
            while not self._closing.is_set():
                if await self._unless_closing(self._subscribe()):
                    await self._closing.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self.reconnect_interval)
        finally:
            await self._disconnect()

    async def _unless_closing(self, coro: Coroutine[Any, Any, bool]) -> bool:
        """``await coro``, unless :meth:`close` comes first (then it is cancelled: False)."""
        work = asyncio.ensure_future(coro)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({work, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not work.done():
                work.cancel()
            await asyncio.gather(work, closing, return_exceptions=True)
        return not work.cancelled() and work.result()

    async def close(self) -> None:
        """Stop consuming and close the connection (idempotent; unacknowledged messages go
        back to the queue)."""
        if not self._closing.is_set():
            log.info("amqp: closing the connection to %s", self.shown_url)
        self._closing.set()
        await self._disconnect()

    async def _subscribe(self) -> bool:
        """One connection and subscription; False (after a warning) if it failed."""
        log.info("amqp: connecting to %s", self.shown_url)
        connection = aio_pika.RobustConnection(
            URL(self.url),
            reconnect_interval=self.reconnect_interval,
            fail_fast=False,  # a broker that is down at start-up is retried, not fatal
            client_properties={"connection_name": "deploybot"},
        )
        self._connection = connection
        connection.reconnect_callbacks.add(self._reconnected)
        try:
            await connection.connect(timeout=self.connect_timeout)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            queue = await channel.declare_queue(
                self.queue_name,
                durable=self.durable,
                exclusive=not self.durable,
                auto_delete=not self.durable,
            )
            for key in self.bindings:
                await queue.bind(EXCHANGE, routing_key=key)
            await queue.consume(self._on_message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "amqp: cannot subscribe at %s: %s: %s; retrying in %gs",
                self.shown_url,
                type(error).__name__,
                error,
                self.reconnect_interval,
            )
            await self._disconnect()
            return False
        kind = "durable queue" if self.durable else "private queue"
        log.info(
            "amqp: consuming %s %s on %s, bound to %s with %s",
            kind,
            self.queue_name,
            self.shown_url,
            EXCHANGE,
            " ".join(self.bindings) or "(no bindings)",
        )
        self.consuming.set()
        return True

    def _reconnected(self, *_: Any) -> None:
        log.info("amqp: reconnected to %s; queue %s restored", self.shown_url, self.queue_name)

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self.consuming.clear()
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                log.warning("amqp: error closing the connection", exc_info=True)

    # --- messages ------------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """The consumer: never raises (aio-pika would only log it and leave the message
        unacknowledged, holding a prefetch slot)."""
        try:
            await self._process(message)
        except Exception:
            log.exception("amqp: unexpected error on a message; dropping it")
            with contextlib.suppress(Exception):
                await message.reject(requeue=False)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        self.reactor.stats.count_received(SOURCE)
        topic = message.routing_key or ""
        try:
            event = from_fedora_messaging(
                topic,
                message.body,
                message.headers,
                message.message_id,
                prefix=self.prefix,
                max_bytes=self.max_bytes,
            )
        except BadMessage as error:
            self.reactor.reject(error, f"amqp {topic[:100]!r}")
            await self._settle(message, ok=False)
            return
        try:
            self.reactor.handle(event)
        except StoreUnavailableError as error:
            log.warning(
                "amqp: %s (%s) not acted on: %s; requeued in %gs",
                event.id or "(no id)",
                event.topic,
                error,
                self.requeue_delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.requeue_delay)
            await self._settle(message, ok=False, requeue=True)
            return
        except Exception:
            log.exception("amqp: handling %s (%s) failed; dropping it", event.id, event.topic)
            await self._settle(message, ok=False)
            return
        await self._settle(message, ok=True)

    async def _settle(
        self, message: AbstractIncomingMessage, *, ok: bool, requeue: bool = False
    ) -> None:
        """Ack, or reject (without requeue unless asked); a lost channel only means a
        redelivery later."""
        try:
            if ok:
                await message.ack()
            else:
                await message.reject(requeue=requeue)
        except Exception as error:
            log.warning(
                "amqp: could not %s message %s: %s: %s (the broker redelivers it)",
                "acknowledge" if ok else "requeue" if requeue else "reject",
                message.message_id,
                type(error).__name__,
                error,
            )
