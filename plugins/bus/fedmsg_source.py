"""fedmsg over ZeroMQ: SUB sockets on the configured endpoints, events to the bus reactor.

fedmsg (SPEC §5, config keys ``fedmsg_*`` in §7) publishes on ZeroMQ PUB sockets; every
message is two frames, ``[topic, envelope]`` (:mod:`deploybot.bus.events` describes them).
fedmsg itself has no asyncio consumer, so :class:`FedmsgSource` reads the wire format
directly with ``zmq.asyncio`` on the bot's event loop:

* one SUB socket per endpoint in ``fedmsg_endpoints``, *connected* (the hub binds);
* subscribed only to the topics the rules read (:func:`subscriptions`:
  ``{fedmsg_topic_prefix}.{fedmsg_environment}.ansible.playbook.``), so the publisher's
  ZeroMQ filters the rest of the bus before it reaches this process;
* ZeroMQ connects and reconnects by itself, every :data:`RECONNECT_IVL_MS` at first,
  backing off to :data:`RECONNECT_IVL_MAX_MS` (fedmsg's own values); TCP keepalive
  (fedmsg's values) notices a silently dead connection.  A socket monitor logs each
  connection and loss (``fedmsg: connected to …`` / ``disconnected from …``).  libzmq
  (4.3) reconnects after a network failure but *not* after a protocol error such as an
  oversized frame, which would leave the endpoint silently dead for good: when a loss is
  not followed by libzmq's own retry within :data:`GIVE_UP_GRACE` seconds, the source
  first handles what is still queued, then disconnects and connects the endpoint again
  (``disconnect`` with a message still queued can make libzmq abort on the next read,
  zeromq/libzmq#2163).  PUB/SUB is fire-and-forget: what is published while a
  connection is down or being set up is lost, and nothing can ask for it again;
* each socket's file descriptor is watched with ``loop.add_reader``; what is queued is
  read without waiting, at most :data:`BATCH` messages before the loop's other work (IRC
  commands) gets a turn;
* each message is counted as received, decoded with
  :func:`~deploybot.bus.events.from_fedmsg_frames` (with the signature check when
  ``fedmsg_validate_signatures`` is on) and handed to the reactor's ``handle``; one that
  does not decode — or that has other than two frames — goes to its ``reject`` (counted,
  logged rate-limited).  Nothing a message holds, and no exception from the reactor,
  ends the receive loop: it is logged with its traceback and the next message is read;
* a frame larger than ``max_bytes`` is refused as ``too-large``; libzmq refuses frames over
  :data:`MAXMSGSIZE_FACTOR` × ``max_bytes`` itself (ZMQ_MAXMSGSIZE) by dropping the
  connection (which the source then makes again), so a hostile or broken peer cannot
  make the bot buffer an unbounded frame.  Such a cut is seen only as a disconnection in
  the log, and loses what the hub sends until the reconnection;
* ZMQ_MAXMSGSIZE bounds each *frame*, and libzmq hands over a multipart message only
  once all its frames arrived: a message of many frames is bounded as a whole here, by
  bytes (more than :data:`MAXMSGSIZE_FACTOR` × ``max_bytes`` in all) and frames (more
  than :data:`MAX_FRAMES`); it is dropped, counted ``too-large``, without a copy of its
  frames.  libzmq itself still assembles such a message before the bot sees it: only
  signed messages (or CURVE, or a firewall) keep strangers off the bus;
* ZMQ_RCVHWM (``fedmsg_receive_queue``, default :data:`DEFAULT_RECEIVE_QUEUE`) bounds the
  messages libzmq holds for an endpoint before the bot reads them; beyond it libzmq stops
  reading that connection and the publisher drops what it cannot send;
* :meth:`FedmsgSource.close` closes the sockets with linger 0.

Signature validation (:func:`make_validator`) uses fedmsg's own x509 code
(``fedmsg.crypto``), imported only when ``fedmsg_validate_signatures = true``.  That code
works only with pyOpenSSL < 24.3 (24.3 removed the CRL functions it imports) and
cryptography 43; otherwise fedmsg silently replaces its validator by a stub that refuses
every message (it returns None), with nothing but a Python warning to say so.  So the bot
refuses to start, before connecting anywhere, when fedmsg is missing or its validator is
that stub (:class:`SignatureCheckUnavailable`), and names the fix:
``pip install 'deploybot[fedmsg-signatures]'`` (pinned versions).

:func:`make_envelope` and :func:`fedmsg_frames` write the same wire format, byte for byte
as ``fedmsg.publish`` does (tests/test_fedmsg_source.py proves it against fedmsg): for
tests, benchmarks and the demo's simulated bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from deploybot.bus.events import (
    DEFAULT_MAX_BYTES,
    BadMessage,
    BusEvent,
    Source,
    Verifier,
    from_fedmsg_frames,
)
from deploybot.bus.rules import BusStats
from deploybot.config import Config
from deploybot.errors import ConfigError

__all__ = [
    "DEFAULT_RECEIVE_QUEUE",
    "FIX",
    "GIVE_UP_GRACE",
    "MAXMSGSIZE_FACTOR",
    "MAX_FRAMES",
    "RECONNECT_IVL_MAX_MS",
    "RECONNECT_IVL_MS",
    "RULE_TOPICS",
    "EventSink",
    "FedmsgSource",
    "SignatureCheckUnavailable",
    "fedmsg_frames",
    "make_envelope",
    "make_validator",
    "subscriptions",
]

log = logging.getLogger(__name__)

SOURCE: Source = "fedmsg"
#: What the rules read (:mod:`deploybot.bus.rules`): the short-topic prefix subscribed to.
RULE_TOPICS = ("ansible.playbook.",)

#: First reconnect delay and the ceiling of its back-off (fedmsg's defaults).
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 1000
#: TCP keepalive: probe after 60 s idle, every 5 s, give up after 3 (fedmsg's defaults).
TCP_KEEPALIVE_IDLE = 60
TCP_KEEPALIVE_INTVL = 5
TCP_KEEPALIVE_CNT = 3
#: libzmq drops a connection that sends a frame larger than this × ``max_bytes``; frames
#: between ``max_bytes`` and that reach the decoder and are counted ``too-large``.
MAXMSGSIZE_FACTOR = 2
#: A fedmsg message is 2 frames; one of more than this is dropped as ``too-large`` (more
#: than 2 and up to this: ``wrong-frames``).
MAX_FRAMES = 8
#: Messages libzmq may hold per endpoint before the bot reads them (ZMQ_RCVHWM).
DEFAULT_RECEIVE_QUEUE = 100
#: Messages read in one go before letting the rest of the bot run.
BATCH = 64
#: After a disconnection libzmq schedules its retry at once (EVENT_CONNECT_RETRIED); with
#: no retry nor connection this many seconds later it has given up on the endpoint.
GIVE_UP_GRACE = 1.0

#: How to get a working validator (the optional extra pins the versions below).
FIX = "pip install 'deploybot[fedmsg-signatures]'"
_PINS = "pyOpenSSL<24.3 and cryptography>=43,<44"
_MONITORED = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED


class EventSink(Protocol):
    """What a bus source feeds: :class:`~deploybot.bus.reactor.BusReactor` (or a stand-in)."""

    stats: BusStats

    def handle(self, event: BusEvent) -> object: ...

    def reject(self, error: BadMessage, origin: str = "") -> None: ...


def subscriptions(config: Config) -> tuple[str, ...]:
    """The topic prefixes to subscribe to: only what the rules read, in the configured
    environment (``org.fedoraproject.prod.ansible.playbook.``)."""
    head = f"{config.fedmsg_topic_prefix.rstrip('.')}.{config.fedmsg_environment}."
    return tuple(head + topic for topic in RULE_TOPICS)


class FedmsgSource:
    """Receive fedmsg messages from ``endpoints`` into ``reactor`` (see the module doc).

    ``topic_prefixes`` are the ZeroMQ subscriptions (:func:`subscriptions`); ``prefix``
    is the configured ``fedmsg_topic_prefix`` the decoder checks topics against;
    ``validator`` checks envelope signatures (:func:`make_validator`), None: no check.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        topic_prefixes: Sequence[str],
        reactor: EventSink,
        *,
        prefix: str = "org.fedoraproject",
        validator: Verifier | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        receive_queue: int = DEFAULT_RECEIVE_QUEUE,
        reconnect_ivl_ms: int = RECONNECT_IVL_MS,
        reconnect_ivl_max_ms: int = RECONNECT_IVL_MAX_MS,
    ) -> None:
        if not endpoints:
            raise ValueError("FedmsgSource needs at least one endpoint")
        self.endpoints = tuple(endpoints)
        self.topic_prefixes = tuple(topic_prefixes)
        self.reactor = reactor
        self.prefix = prefix
        self.validator = validator
        self.max_bytes = max_bytes
        self.receive_queue = receive_queue
        self.reconnect_ivl_ms = reconnect_ivl_ms
        self.reconnect_ivl_max_ms = reconnect_ivl_max_ms
        self._context: zmq.asyncio.Context | None = None
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        self._monitors: list[zmq.asyncio.Socket] = []
        self._monitor_of: dict[str, zmq.asyncio.Socket] = {}
        self._give_up: dict[str, asyncio.TimerHandle] = {}
        self._watched: list[tuple[asyncio.AbstractEventLoop, int]] = []
        self._closed = False

    @classmethod
    def from_config(
        cls, config: Config, reactor: EventSink, validator: Verifier | None = None
    ) -> FedmsgSource:
        return cls(
            config.fedmsg_endpoints,
            subscriptions(config),
            reactor,
            prefix=config.fedmsg_topic_prefix,
            validator=validator,
            receive_queue=config.fedmsg_receive_queue,
        )

    # --- sockets -------------------------------------------------------------------------

    def open(self) -> None:
        """Create one connected, subscribed SUB socket per endpoint (once)."""
        if self._context is not None or self._closed:
            return
        self._context = zmq.asyncio.Context()
        for endpoint in self.endpoints:
            socket = self._context.socket(zmq.SUB)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ivl_ms)
            socket.setsockopt(zmq.RECONNECT_IVL_MAX, self.reconnect_ivl_max_ms)
            socket.setsockopt(zmq.TCP_KEEPALIVE, 1)
            socket.setsockopt(zmq.TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_IDLE)
            socket.setsockopt(zmq.TCP_KEEPALIVE_INTVL, TCP_KEEPALIVE_INTVL)
            socket.setsockopt(zmq.TCP_KEEPALIVE_CNT, TCP_KEEPALIVE_CNT)
            socket.setsockopt(zmq.MAXMSGSIZE, self.max_bytes * MAXMSGSIZE_FACTOR)
            socket.setsockopt(zmq.RCVHWM, self.receive_queue)
            for topic in self.topic_prefixes:
                socket.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
            monitor = socket.get_monitor_socket(_MONITORED)
            self._monitors.append(monitor)
            self._monitor_of[endpoint] = monitor
            socket.connect(endpoint)
            self._sockets[endpoint] = socket
        log.info(
            "fedmsg: subscribed to %s on %s",
            " ".join(self.topic_prefixes) or "(nothing)",
            " ".join(self.endpoints),
        )

    def close(self) -> None:
        """Close every socket (linger 0) and the context; idempotent."""
        self._closed = True
        for timer in self._give_up.values():
            timer.cancel()
        self._give_up.clear()
        for loop, fd in self._watched:  # before the FDs close (and their numbers are reused)
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
        self._watched.clear()
        context, self._context = self._context, None
        if context is None:
            return
        for socket in self._sockets.values():
            with contextlib.suppress(zmq.ZMQError):
                socket.disable_monitor()
        for socket in [*self._monitors, *self._sockets.values()]:
            socket.close(linger=0)
        self._sockets.clear()
        self._monitors.clear()
        self._monitor_of.clear()
        context.term()

    # --- receiving -----------------------------------------------------------------------

    async def run(self) -> None:
        """Receive until cancelled (or closed); the sockets are closed on the way out.

        Each SUB socket's file descriptor is watched with ``loop.add_reader``, and what is
        queued is read with plain non-blocking calls in that callback: one epoll wake-up
        per burst, rather than pyzmq's future per ``await`` (measured: the futures cost
        several times the decoding of a message)."""
        self.open()
        loop = asyncio.get_running_loop()
        try:
            for endpoint, socket in self._sockets.items():
                reader: zmq.Socket[bytes] = zmq.Socket.shadow(socket.underlying)
                fd = socket.fileno()  # ZMQ_FD
                loop.add_reader(fd, self._readable, endpoint, reader)
                self._watched.append((loop, fd))
                loop.call_soon(self._readable, endpoint, reader)  # anything queued already
            async with asyncio.TaskGroup() as group:
                for endpoint, monitor in self._monitor_of.items():
                    group.create_task(self._watch(endpoint, monitor), name=f"fedmsg {endpoint}")
        finally:
            self.close()

    def _readable(self, endpoint: str, reader: zmq.Socket[bytes]) -> None:
        """Handle what is queued on ``endpoint``'s socket, :data:`BATCH` messages at a time
        (then the rest after the loop's other callbacks had a turn).  Never raises.

        ZeroMQ's FD only says "look at ZMQ_EVENTS" and is edge-triggered: messages are read
        until none is left, then ZMQ_EVENTS is read (which also re-arms the FD), and the
        callback ends only when it says nothing is queued."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        try:
            for _ in range(BATCH):
                frames = _read(reader)
                if frames is None:
                    if not cast(int, reader.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                        return
                    continue
                self._dispatch(frames, endpoint)
            loop.call_soon(self._readable, endpoint, reader)
        except Exception:
            if self._closed:
                return
            log.exception("fedmsg: receiving from %s failed; going on", endpoint)
            loop.call_later(0.5, self._readable, endpoint, reader)

    def _dispatch(self, frames: tuple[bytes, bytes, int, int], endpoint: str) -> None:
        """Decode one message (:func:`_read`'s result) and hand it on; never raises."""
        reactor = self.reactor
        topic, body, count, size = frames
        try:
            reactor.stats.received[SOURCE] += 1
            limit = self.max_bytes * MAXMSGSIZE_FACTOR
            if size > limit or count > MAX_FRAMES:
                raise BadMessage(
                    "too-large",
                    f"a fedmsg message of {size} bytes in {count} frames "
                    f"(at most {limit} bytes in {MAX_FRAMES} frames)",
                )
            if count != 2:
                raise BadMessage(
                    "wrong-frames", f"a fedmsg message has 2 frames [topic, body], not {count}"
                )
            event = from_fedmsg_frames(
                topic, body, prefix=self.prefix, max_bytes=self.max_bytes, verify=self.validator
            )
        except BadMessage as error:
            try:
                reactor.reject(error, endpoint)
            except Exception:
                log.exception("fedmsg: rejecting a message from %s failed", endpoint)
            return
        except Exception:
            log.exception("fedmsg: decoding a message from %s failed", endpoint)
            return
        try:
            reactor.handle(event)
        except Exception:
            log.exception("fedmsg: handling %s (%s) failed", event.id, event.topic)

    async def _watch(self, endpoint: str, monitor: zmq.asyncio.Socket) -> None:
        """Follow the connection to ``endpoint`` through its socket monitor."""
        while not self._closed:
            try:
                event = parse_monitor_message(await monitor.recv_multipart())
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closed:
                    return
                log.exception("fedmsg: watching %s failed", endpoint)
                await asyncio.sleep(0.5)
                continue
            self._connection_event(endpoint, event["event"])

    def _connection_event(self, endpoint: str, kind: int) -> None:
        """Log connections and losses (PUB/SUB loses what is sent meanwhile); after a loss,
        expect libzmq's retry within :data:`GIVE_UP_GRACE` seconds (:meth:`_check_retry`)."""
        if kind in (zmq.EVENT_CONNECTED, zmq.EVENT_CONNECT_RETRIED):
            timer = self._give_up.pop(endpoint, None)
            if timer is not None:
                timer.cancel()
        if kind == zmq.EVENT_CONNECTED:
            log.info("fedmsg: connected to %s", endpoint)
        elif kind == zmq.EVENT_DISCONNECTED:
            log.warning(
                "fedmsg: disconnected from %s; reconnecting (what is published meanwhile is lost)",
                endpoint,
            )
            if endpoint not in self._give_up and not self._closed:
                loop = asyncio.get_running_loop()
                self._give_up[endpoint] = loop.call_later(
                    GIVE_UP_GRACE, self._check_retry, endpoint
                )

    def _check_retry(self, endpoint: str) -> None:
        """No retry was seen since the loss: read the monitor's pending events (the loop may
        have been too busy to), and if libzmq really gave up, connect again."""
        self._give_up.pop(endpoint, None)
        socket, monitor = self._sockets.get(endpoint), self._monitor_of.get(endpoint)
        if socket is None or monitor is None or self._closed:
            return
        events: zmq.Socket[bytes] = zmq.Socket.shadow(monitor.underlying)
        retried = False
        while True:
            try:
                kind = parse_monitor_message(events.recv_multipart(zmq.NOBLOCK))["event"]
            except zmq.Again:
                break
            self._connection_event(endpoint, kind)
            retried = retried or kind in (zmq.EVENT_CONNECTED, zmq.EVENT_CONNECT_RETRIED)
        if retried or endpoint in self._give_up:
            return
        self._reconnect(endpoint, socket)

    def _reconnect(self, endpoint: str, socket: zmq.asyncio.Socket) -> None:
        """libzmq gave up on ``endpoint`` (a protocol error, e.g. a frame over MAXMSGSIZE):
        connect it again; the SUB socket sends its subscriptions on the new connection.

        ``connect`` alone would do nothing (the endpoint is still listed), and
        ``disconnect`` with a message still queued can make libzmq abort on the next read
        (zeromq/libzmq#2163).  So, in one synchronous step (no receive callback is running:
        we are between two messages), what was queued before the cut is read and handled
        first, then the endpoint is disconnected and connected again."""
        log.warning("fedmsg: ZeroMQ gave up on %s (a protocol error); connecting again", endpoint)
        try:
            reader: zmq.Socket[bytes] = zmq.Socket.shadow(socket.underlying)
            while (frames := _read(reader)) is not None:
                self._dispatch(frames, endpoint)
            with contextlib.suppress(zmq.ZMQError):
                socket.disconnect(endpoint)
            socket.connect(endpoint)
        except zmq.ZMQError:
            log.exception("fedmsg: connecting to %s again failed", endpoint)


def _read(reader: zmq.Socket[bytes]) -> tuple[bytes, bytes, int, int] | None:
    """``(first frame, second frame or b"", number of frames, bytes in all frames)`` of one
    queued message, without waiting; None when none is queued.  Frames after the second
    are read, measured and dropped without copying (such a message is refused anyway);
    the first two are copied only when there is no third.

    Frames are received as :class:`zmq.Frame` for their ``more`` flag: asking the socket
    (``RCVMORE``) costs more than the copy (measured: 1.5 against 2.5 µs a message)."""
    try:
        first = reader.recv(zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return None
    if not first.more:
        data = first.bytes
        return data, b"", 1, len(data)
    second = reader.recv(zmq.NOBLOCK, copy=False)
    if not second.more:
        head, body = first.bytes, second.bytes
        return head, body, 2, len(head) + len(body)
    count, size, last = 2, len(first) + len(second), second  # len(): no copy
    while last.more:
        last = reader.recv(zmq.NOBLOCK, copy=False)
        count += 1
        size += len(last)
    return b"", b"", count, size


class SignatureCheckUnavailable(ConfigError):
    """``fedmsg_validate_signatures = true`` cannot be honoured here; the text says why and
    how to fix it.  A :class:`~deploybot.errors.ConfigError`: ``deploybot run`` prints it
    and exits 1 before connecting anywhere."""

    def __init__(self, message: str, file: str | None = None) -> None:
        super().__init__("fedmsg_validate_signatures", message, file)
        # The message starts with the key already: "FILE: [deploybot] MESSAGE".
        Exception.__init__(
            self, f"{file}: [deploybot] {message}" if file else f"[deploybot] {message}"
        )


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def _why_disabled() -> str:
    """Why fedmsg's x509 code fell back to its stub: the import that fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import cryptography.x509  # noqa: F401
            from OpenSSL.crypto import (  # noqa: F401
                FILETYPE_PEM,
                X509Store,
                X509StoreContext,
                X509StoreContextError,
                X509StoreFlags,
                load_certificate,
                load_crl,
            )
    except ImportError as error:
        return str(error)
    return "its x509 module was imported before the packages it needs were installed"


def _fedmsg_crypto(file: str | None) -> Any:
    """``fedmsg.crypto``, if it can really check x509 signatures here; else refuse."""
    try:
        with warnings.catch_warnings():
            # pyOpenSSL 24.x deprecates the CRL functions fedmsg imports: say it once here
            # rather than as an error under ``-W error``.
            warnings.simplefilter("ignore", DeprecationWarning)
            import fedmsg.crypto
            import fedmsg.crypto.x509
    except ImportError as error:
        raise SignatureCheckUnavailable(
            f"fedmsg_validate_signatures = true needs fedmsg with working x509 signing: "
            f"{FIX} (importing fedmsg failed: {error})",
            file,
        ) from None
    x509 = fedmsg.crypto.x509
    if not getattr(x509, "_cryptography", False) or x509.validate.__name__ == "_disabled_validate":
        raise SignatureCheckUnavailable(
            f"fedmsg_validate_signatures = true, but fedmsg {_version('fedmsg')} cannot check "
            f"signatures here: its x509 validation is a disabled stub that would drop every "
            f"message ({_why_disabled()}; installed: pyOpenSSL {_version('pyOpenSSL')}, "
            f"cryptography {_version('cryptography')}). It needs {_PINS} "
            f"(pyOpenSSL 24.3 removed the CRL functions fedmsg uses): {FIX}",
            file,
        )
    return fedmsg.crypto


def _read_pem(path: Path, key: str, what: str, file: str | None) -> None:
    """Refuse at start-up a CA or CRL file that is missing or not what it should be."""
    from cryptography import x509

    load = x509.load_pem_x509_certificate if what == "certificate" else x509.load_pem_x509_crl
    try:
        load(path.read_bytes())
    except OSError as error:
        raise ConfigError(key, f"cannot read {path}: {error.strerror or error}", file) from None
    except ValueError:
        raise ConfigError(key, f"{path} is not a PEM {what}", file) from None


def make_validator(config: Config, file: str | None = None) -> Verifier | None:
    """The signature check for fedmsg envelopes, or None when validation is off.

    With ``fedmsg_validate_signatures = true`` it is ``fedmsg.crypto.validate`` with the
    x509 backend, the CA certificate ``fedmsg_ca_cert`` and the CRL ``fedmsg_crl`` (local
    files: fedmsg would otherwise fetch Fedora's over HTTPS), and no routing policy (any
    certificate the CA signed may send any topic).  It returns True only for a message
    that fedmsg says is signed by a valid, unrevoked certificate of that CA.

    Raises :class:`SignatureCheckUnavailable` when fedmsg is missing or cannot check
    signatures in this environment, and :class:`~deploybot.errors.ConfigError` when the
    CA or CRL file cannot be read; call it before connecting anything.
    """
    if not config.fedmsg_validate_signatures:
        return None
    crypto = _fedmsg_crypto(file)
    if config.fedmsg_ca_cert is None:  # config validation already requires it
        raise ConfigError("fedmsg_ca_cert", "required when validating signatures", file)
    _read_pem(config.fedmsg_ca_cert, "fedmsg_ca_cert", "certificate", file)
    if config.fedmsg_crl is not None:
        _read_pem(config.fedmsg_crl, "fedmsg_crl", "CRL", file)
    settings: dict[str, Any] = {
        "validate_signatures": True,
        "crypto_backend": "x509",
        "crypto_validate_backends": ["x509"],
        "ssldir": str(config.fedmsg_ca_cert.parent),
        "ca_cert_location": str(config.fedmsg_ca_cert),
        # "" means no CRL; leaving it out would make fedmsg download Fedora's.
        "crl_location": str(config.fedmsg_crl) if config.fedmsg_crl is not None else "",
        "routing_policy": {},
        "routing_nitpicky": False,
    }
    crypto.init(**settings)
    # fedmsg logs every verdict (a warning per good message without a routing policy, an
    # error with the whole message per bad one); the reactor counts and logs drops,
    # rate-limited, instead.
    for name in ("fedmsg.crypto.utils", "fedmsg.crypto.x509_ng"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    validate = crypto.validate

    def verify(envelope: Mapping[str, Any]) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return validate(dict(envelope), **settings) is True

    return verify


# --- the wire format, for publishers (tests, benchmarks, the demo) -----------------------


def make_envelope(
    topic: str,
    msg: Mapping[str, Any],
    *,
    msg_id: str | None = None,
    timestamp: float | datetime | None = None,
    i: int = 1,
    username: str | None = None,
) -> dict[str, Any]:
    """The envelope ``fedmsg.publish`` builds (``topic`` is the full topic): ``msg_id`` is
    ``YEAR-UUID4`` and ``timestamp`` whole epoch seconds (now) unless given."""
    if isinstance(timestamp, datetime):
        timestamp = int(timestamp.timestamp())
    moment = int(time.time()) if timestamp is None else timestamp
    if msg_id is None:
        msg_id = f"{datetime.now(UTC).year}-{uuid.uuid4()}"
    return {
        "topic": topic,
        "msg": dict(msg),
        "timestamp": moment,
        "msg_id": msg_id,
        "i": i,
        "username": getpass.getuser() if username is None else username,
    }


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def fedmsg_frames(envelope: Mapping[str, Any]) -> list[bytes]:
    """The two frames fedmsg sends for ``envelope``: ``[topic, fedmsg.encoding.dumps]``."""
    return [envelope["topic"].encode("utf-8"), _ENCODE(envelope).encode("utf-8")]
