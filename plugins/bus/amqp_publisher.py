"""Publishing deploybot's own messages to the AMQP broker, with publisher confirms.

:class:`AmqpPublisher` is the transport of :class:`~deploybot.publish.BusOutbox`: the
outbox hands it each stored message once the decision that made it has committed (and,
at start-up, those an earlier run left unconfirmed); it publishes them **one at a time, in
the order they were decided**, to ``amq.topic`` with their routing key, headers and
properties exactly as stored (fedora-messaging's format, :mod:`deploybot.publish`), on a
channel in confirm mode, and removes a message from the store
(:meth:`~deploybot.store.Store.confirm_bus_messages`) only once the broker has
acknowledged it (``Basic.Ack``: the broker has taken responsibility for it; a persistent
message is on its disk for the durable queues it was routed to).

When the broker is away (not there at start-up, restarted, the connection lost, a
publish not confirmed within ``confirm_timeout``, a ``Basic.Nack``), the message stays
first in line and in the store; the publisher connects again every
``reconnect_interval`` seconds and publishes it again, the same message with the same
id.  So a message is published again only when its confirm did not reach the bot: the
broker may then have it twice, and fedora-messaging consumers recognise the repeat by its
message id.  Like fedora-messaging, it publishes without ``mandatory``: a message that no
queue is bound for is dropped by the broker, which still confirms it.

The connection is its own (``connection_name`` ``deploybot-publisher``), separate from
the consumer's (:mod:`deploybot_plugins.bus.amqp_source`), so that a slow consumer never
holds publishing back.  The password in ``amqp_url`` is masked in every log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange
from yarl import URL

from deploybot.publish import CONTENT_ENCODING, CONTENT_TYPE, EXCHANGE
from deploybot.store import StoredBusMessage, StoreUnavailableError

from .amqp_source import CONNECT_TIMEOUT, RECONNECT_INTERVAL, redact_url

__all__ = ["CONFIRM_TIMEOUT", "AmqpPublisher", "amqp_message"]

log = logging.getLogger(__name__)

#: Seconds the broker may take to confirm one message before the connection is dropped
#: and the message sent again on a new one.
CONFIRM_TIMEOUT = 30.0


def amqp_message(message: StoredBusMessage) -> aio_pika.Message:
    """The AMQP message of a stored one, with fedora-messaging's properties."""
    return aio_pika.Message(
        message.body.encode("utf-8"),
        content_type=CONTENT_TYPE,
        content_encoding=CONTENT_ENCODING,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=dict(message.headers),
        message_id=message.message_id,
    )


class AmqpPublisher:
    """Publish the bus outbox's messages to ``url`` (module doc); ``confirm`` removes
    confirmed messages from the store (:meth:`~deploybot.store.Store.confirm_bus_messages`)."""

    def __init__(
        self,
        url: str,
        confirm: Callable[[Iterable[int]], int],
        *,
        reconnect_interval: float = RECONNECT_INTERVAL,
        connect_timeout: float = CONNECT_TIMEOUT,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        self.url = url
        self.confirm = confirm
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self.shown_url = redact_url(url)
        #: Messages confirmed by the broker since start.
        self.published = 0
        #: Publishes that failed (and were tried again).
        self.failures = 0
        #: Set while connected with a confirm channel (tests wait on it).
        self.connected = asyncio.Event()
        self._pending: deque[StoredBusMessage] = deque()
        self._queued: set[int] = set()
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._connection: AbstractConnection | None = None

    @property
    def waiting(self) -> int:
        """Messages handed over and not confirmed yet."""
        return len(self._pending)

    def send_bus_message(self, message: StoredBusMessage) -> None:
        """Queue ``message`` behind those handed over before it (once)."""
        if message.id in self._queued:
            return
        self._queued.add(message.id)
        self._pending.append(message)
        self._wake.set()

    # --- life cycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and publish until :meth:`close`, reconnecting as needed."""
        try:
            if not URL(self.url).host:
                raise ValueError("no host")
        except ValueError as error:
            log.error("amqp: amqp_url %s is not usable (%s); not publishing", self.shown_url, error)
            return
        while not self._closing.is_set():
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self._closing.is_set():
                    break  # close() cut the connection under a publish: it stays stored
                self.failures += 1
                log.warning(
                    "amqp: publishing to %s: %s: %s; %d message(s) wait, retrying in %gs",
                    self.shown_url,
                    type(error).__name__,
                    error,
                    len(self._pending),
                    self.reconnect_interval,
                )
            finally:
                self.connected.clear()
                await self._disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.reconnect_interval)

    async def close(self) -> None:
        """Stop publishing and close the connection (idempotent); what is not confirmed
        stays in the store for the next start."""
        self._closing.set()
        self._wake.set()
        await self._disconnect()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                log.debug("amqp: error closing the publishing connection", exc_info=True)

    async def _session(self) -> None:
        """One connection: publish whatever waits, until closing or a failure (raised)."""
        connection = await aio_pika.connect(
            URL(self.url),
            timeout=self.connect_timeout,
            client_properties={"connection_name": "deploybot-publisher"},
        )
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        log.info("amqp: publishing to %s on %s", EXCHANGE, self.shown_url)
        self.connected.set()
        while not self._closing.is_set():
            if not self._pending:
                self._wake.clear()
                await self._wait_for_work(connection)
                continue
            await self._publish(exchange, self._pending[0])

    async def _wait_for_work(self, connection: AbstractConnection) -> None:
        """Until a message is handed over, :meth:`close`, or the connection is lost."""
        lost: asyncio.Future[Any] = asyncio.ensure_future(connection.closed())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({lost, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (lost, woken):
                waiter.cancel()
            await asyncio.gather(lost, woken, return_exceptions=True)
        if lost.done() and not lost.cancelled() and not self._closing.is_set():
            raise ConnectionError("the connection was closed")

    async def _publish(self, exchange: AbstractExchange, message: StoredBusMessage) -> None:
        """Publish ``message`` and wait for the broker's confirm; then forget it."""
        await exchange.publish(
            amqp_message(message),
            routing_key=message.routing_key,
            mandatory=False,
            timeout=self.confirm_timeout,
        )
        try:
            self.confirm([message.id])
        except StoreUnavailableError as error:
            # Published and confirmed, but still stored: it would be published again at
            # the next start (the same message; consumers drop the repeat).
            log.warning("amqp: %s confirmed, not removed from the store: %s", message.id, error)
        self._pending.popleft()
        self._queued.discard(message.id)
        self.published += 1
        log.debug("amqp: %s %s confirmed", message.routing_key, message.message_id)
