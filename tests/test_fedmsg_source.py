"""FedmsgSource: fedmsg's ZeroMQ wire format in, bus events to the reactor, nothing escapes.

Real ZeroMQ sockets on 127.0.0.1 (random ports): a PUB (or an XPUB, which also shows the
test what the bot subscribed to and when) stands in for the fedmsg hub.  PUB/SUB drops
what is sent while a subscriber is still connecting, so a test either waits for the
subscription to reach its XPUB or publishes again until something arrives (bounded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zmq
from deploybot_plugins.bus.fedmsg_source import (
    DEFAULT_RECEIVE_QUEUE,
    FIX,
    MAX_FRAMES,
    MAXMSGSIZE_FACTOR,
    RULE_TOPICS,
    FedmsgSource,
    SignatureCheckUnavailable,
    fedmsg_frames,
    make_envelope,
    make_validator,
    subscriptions,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from deploybot.bus.events import BadMessage, BusEvent, from_fedmsg_frames, thaw
from deploybot.bus.reactor import BusReactor
from deploybot.bus.rules import ANSIBLE_COMPLETE, ANSIBLE_START, BusStats
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.errors import ConfigError
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.store import Store
from tests.botprocess import run_refused
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc
from tests.waiting import eventually

with warnings.catch_warnings():
    # The test extra installs fedmsg (its own publisher and encoder are the reference);
    # with the signatures extra, pyOpenSSL 24.x deprecates the CRL API fedmsg imports.
    warnings.simplefilter("ignore", DeprecationWarning)
    import fedmsg.core
    import fedmsg.encoding

SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"
PREFIX = "org.fedoraproject"
START = "org.fedoraproject.prod.ansible.playbook.start"
COMPLETE = "org.fedoraproject.prod.ansible.playbook.complete"
SUBSCRIBED = "org.fedoraproject.prod.ansible.playbook."
WHEN = utc(2026, 12, 15, 13)
NOW = WHEN + timedelta(minutes=10)
ADMIN = "#fedora-admin"
TIMEOUT = 10.0
NEEDS_EXTRA = f"needs {FIX} (fedmsg's x509 validator is a disabled stub in this environment)"


def sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SAMPLES_DIR / name).read_text(encoding="utf-8"))
    document.pop("_source")
    return document


def ansible_msg(kind: str, **changes: Any) -> dict[str, Any]:
    """The body of the real ansible.playbook.KIND sample, run on pkgdb's playbook."""
    msg: dict[str, Any] = sample(f"ansible.playbook.{kind}.json")["msg"]
    msg["playbook"] = "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml"
    msg.update(changes)
    return msg


def failed_results() -> dict[str, Any]:
    ok = {"changed": 1, "failures": 0, "ok": 56, "skipped": 9, "unreachable": 0}
    return {
        "pkgdb01.phx2.fedoraproject.org": ok,
        "pkgdb02.phx2.fedoraproject.org": {**ok, "failures": 2},
    }


async def publish_until(
    pub: zmq.Socket[bytes],
    frames: Callable[[], list[bytes]],
    check: Callable[[], object],
    what: str,
    timeout: float = TIMEOUT,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
) -> int:
    """Publish ``frames()`` every 20 ms until ``check()`` (PUB/SUB drops what is sent while
    the subscriber connects); the number of sends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    sent = 0
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s ({sent} sends) waiting for {what}")
        pub.send_multipart(frames())
        sent += 1
        await asyncio.sleep(0.02)
    return sent


class RecordingSink:
    """Stands in for the BusReactor: records events and rejections, counts like it."""

    def __init__(self) -> None:
        self.stats = BusStats()
        self.events: list[BusEvent] = []
        self.rejected: list[tuple[BadMessage, str]] = []

    def handle(self, event: BusEvent) -> None:
        self.stats.count_decoded()
        self.events.append(event)

    def reject(self, error: BadMessage, origin: str = "") -> None:
        self.stats.count_dropped(error)
        self.rejected.append((error, origin))

    def ids(self) -> list[str]:
        return [event.id for event in self.events]


class Hub:
    """The test's side of the bus: PUB/XPUB sockets on 127.0.0.1, kept until teardown."""

    def __init__(self) -> None:
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sockets: list[zmq.Socket[bytes]] = []

    def socket(self, kind: int = zmq.PUB) -> zmq.Socket[bytes]:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        self.sockets.append(sock)
        return sock

    def bind(self, kind: int = zmq.PUB) -> tuple[zmq.Socket[bytes], str]:
        """A new socket bound on a free port, and the endpoint to connect to."""
        sock = self.socket(kind)
        if kind == zmq.XPUB:
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, even a repeated one
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        return sock, f"tcp://127.0.0.1:{port}"

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.context.term()


@pytest.fixture
def hub() -> Iterator[Hub]:
    bus = Hub()
    try:
        yield bus
    finally:
        bus.close()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[FedmsgSource], asyncio.Task[None]]]:
    """``running(source)`` starts ``source.run()``; at teardown it is cancelled and closed."""
    started: list[tuple[FedmsgSource, asyncio.Task[None]]] = []

    def start(source: FedmsgSource) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(source.run())
        started.append((source, task))
        return task

    yield start
    for source, task in started:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        source.close()


async def subscribed(xpub: zmq.Socket[bytes], timeout: float = TIMEOUT) -> bytes:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    """The next subscription message the XPUB receives (``\\x01`` + prefix)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if xpub.poll(0):
            message = xpub.recv()
            if message[:1] == b"\x01":
                return message
            continue  # an unsubscription
        if loop.time() > deadline:
            raise AssertionError("no subscription reached the publisher")
        await asyncio.sleep(0.005)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    """A real core on a tmp SQLite file: the pkgdb2 plan (window 13:00–21:00 on 2026-12-15,
    playbook groups/pkgdb.yml), the clock at 13:10 that day."""
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
    config = config_from_mapping({"admin_channel": ADMIN, "countdowns": "0"})
    store = Store.open(tmp_path / "db.sqlite3")
    book = PlanBook(plans)
    book.reload()
    yield Core(config=config, store=store, book=book, clock=lambda: NOW)
    store.close()


# -- the wire format ------------------------------------------------------------------------


def test_we_subscribe_only_to_what_the_rules_read() -> None:
    """The ZeroMQ subscriptions are the ansible playbook topics of the configured prefix
    and environment: nothing else of the bus is sent to the bot."""
    assert subscriptions(config_from_mapping({})) == (SUBSCRIBED,)
    assert all(topic.startswith(RULE_TOPICS) for topic in (ANSIBLE_START, ANSIBLE_COMPLETE))
    staging = config_from_mapping(
        {"fedmsg_topic_prefix": "org.example", "fedmsg_environment": "stg"}
    )
    assert subscriptions(staging) == ("org.example.stg.ansible.playbook.",)


async def test_our_frames_are_byte_identical_to_what_fedmsg_publish_sends() -> None:
    """fedmsg's own ``FedMsgContext.publish`` (publishing on a PUB socket we bound) sends
    exactly the frames our encoder makes of the same envelope, and :func:`make_envelope`
    builds the envelope publish builds (same keys, same values when given its id, time,
    counter and user); the frames decode to the message published."""
    context = fedmsg.core.FedMsgContext(
        io_threads=1,
        active=False,
        mute=True,  # no publisher of its own (it would bind on every interface)
        post_init_sleep=0,
        topic_prefix=PREFIX,
        environment="prod",
        sign_messages=False,
    )
    pub = context.context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    context.publisher = pub
    sub = context.context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{port}")
    published: dict[str, dict[str, Any]] = {}
    received: list[list[bytes]] = []
    msg = ansible_msg("start", userid="ralph", extra_vars={"é": ["ü", 1.5, None, True]})
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while not received:  # publish again until the SUB is connected (slow joiner)
            assert loop.time() < deadline, "nothing came through fedmsg's publisher"
            context.publish(
                topic="playbook.start",
                msg=msg,
                modname="ansible",
                pre_fire_hook=lambda envelope: published.update({envelope["msg_id"]: envelope}),
            )
            await asyncio.sleep(0.02)
            while sub.poll(0):
                received.append(sub.recv_multipart())
    finally:
        sub.close(linger=0)
        context.destroy()
    frames = received[0]
    envelope = published[json.loads(frames[1])["msg_id"]]
    assert envelope["topic"] == START
    assert frames == fedmsg_frames(envelope)
    assert frames == [START.encode(), fedmsg.encoding.dumps(envelope).encode("utf-8")]
    ours = make_envelope(
        START,
        msg,
        msg_id=envelope["msg_id"],
        timestamp=envelope["timestamp"],
        i=envelope["i"],
        username=envelope["username"],
    )
    assert ours == envelope
    assert fedmsg_frames(ours) == frames
    event = from_fedmsg_frames(frames[0], frames[1], prefix=PREFIX)
    assert (event.topic, event.id, thaw(event.body)) == (START, envelope["msg_id"], msg)
    # without an id or time, make_envelope picks them as fedmsg does
    fresh = make_envelope(START, msg)
    assert sorted(fresh) == sorted(envelope)
    assert fresh["msg_id"].startswith(f"{datetime.now(UTC).year}-")
    assert isinstance(fresh["timestamp"], int)


_JSON_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200)
@given(msg=st.dictionaries(_JSON_TEXT, _JSON, max_size=6), i=st.integers(1, 10**6))
def test_any_message_encodes_as_fedmsg_does_and_decodes_back(msg: dict[str, Any], i: int) -> None:
    """For any JSON body: our body frame is ``fedmsg.encoding.dumps`` of the envelope, and
    decoding our frames gives back the topic, the id and the body."""
    envelope = make_envelope(START, msg, msg_id="2026-x", timestamp=1_700_000_000, i=i)
    frames = fedmsg_frames(envelope)
    assert frames[1] == fedmsg.encoding.dumps(envelope).encode("utf-8")
    event = from_fedmsg_frames(frames[0], frames[1], prefix=PREFIX)
    assert (event.topic, event.id, thaw(event.body)) == (START, "2026-x", msg)


# -- receiving ------------------------------------------------------------------------------


async def test_events_from_a_real_publisher_reach_the_reactor_once_each(
    core: Core,
    hub: Hub,
    running: Callable[[FedmsgSource], asyncio.Task[None]],
) -> None:
    """A real PUB, FedmsgSource and BusReactor (real core, tmp SQLite): the pkgdb start
    opens firefighting and says "deploy of pkgdb2 started by ralph", the complete says
    "finished with failures on pkgdb02.phx2".  Each message is published again and again
    until it arrives (slow joiner), yet each distinct message id is posted once."""
    outbox = RecordingOutbox()
    day = DeployDay(core, outbox)
    reactor = BusReactor(core, outbox, day)
    pub, endpoint = hub.bind()
    running(FedmsgSource([endpoint], subscriptions(core.config), reactor, prefix=PREFIX))

    def said(text: str) -> list[str]:
        return [line for target, line in outbox.posts if target == ADMIN and text in line]

    start = make_envelope(START, ansible_msg("start"), timestamp=NOW)
    await publish_until(pub, lambda: fedmsg_frames(start), lambda: said("started by"), "start")
    complete = make_envelope(
        COMPLETE, ansible_msg("complete", results=failed_results()), timestamp=NOW
    )
    sends = await publish_until(
        pub, lambda: fedmsg_frames(complete), lambda: said("finished with"), "complete"
    )
    for _ in range(3):  # the connection is up: these copies arrive, and are ignored
        pub.send_multipart(fedmsg_frames(complete))
    last = make_envelope(COMPLETE, ansible_msg("complete"), timestamp=NOW)  # ok this time
    pub.send_multipart(fedmsg_frames(last))
    await eventually(lambda: said("finished ok"), "the last message")

    plan = core.plans[0]
    assert day.firefight.is_open(plan)
    assert said("started by") == ["deploy of pkgdb2 started by ralph (groups/pkgdb.yml)"]
    assert said("finished with") == [
        "deploy of pkgdb2 finished with failures on pkgdb02.phx2 (groups/pkgdb.yml)"
    ]
    firefight_channel = day.firefight.channel_for(plan)
    assert [line for target, line in outbox.posts if target == firefight_channel][-3:] == [
        said("started by")[0],
        said("finished with")[0],
        said("finished ok")[0],
    ]
    assert reactor.duplicates >= 3
    assert reactor.stats.received["fedmsg"] == reactor.stats.decoded >= sends + 5
    assert reactor.stats.as_dict()["dropped_total"] == 0


async def test_only_the_subscribed_prefix_ever_reaches_python(
    hub: Hub,
    running: Callable[[FedmsgSource], asyncio.Task[None]],
) -> None:
    """The socket's one subscription is the ansible playbook prefix of the configured
    environment; of 1,000 messages on other topics (staging, other services, look-alike
    topics) and 10 matching ones, only the 10 (and a last sentinel) are received at all."""
    xpub, endpoint = hub.bind(zmq.XPUB)
    sink = RecordingSink()
    running(FedmsgSource([endpoint], [SUBSCRIBED], sink, prefix=PREFIX))
    assert await subscribed(xpub) == b"\x01" + SUBSCRIBED.encode()
    await asyncio.sleep(0.05)
    assert not xpub.poll(0), "a second subscription"
    others = [
        "org.fedoraproject.stg.ansible.playbook.start",
        "org.fedoraproject.prod.buildsys.build.state.change",
        "org.fedoraproject.prod.ansible.playbook",  # no trailing dot: not under the prefix
        "org.fedoraproject.prod.ansiblex.playbook.start",
        "org.fedoraproject.dev.ansible.playbook.complete",
    ]
    wanted = []
    for n in range(1010):
        if n % 101 == 100:
            envelope = make_envelope(START, {"n": n}, msg_id=f"match-{n}")
            wanted.append(envelope["msg_id"])
        else:
            envelope = make_envelope(others[n % len(others)], {"n": n}, msg_id=f"other-{n}")
        xpub.send_multipart(fedmsg_frames(envelope))
    xpub.send_multipart(fedmsg_frames(make_envelope(COMPLETE, {}, msg_id="sentinel")))
    await eventually(lambda: "sentinel" in sink.ids(), "the sentinel")
    assert sink.ids() == [*wanted, "sentinel"]
    assert len(wanted) == 10
    assert sink.stats.received["fedmsg"] == 11
    assert sink.rejected == []


async def test_a_restarted_publisher_is_reconnected_by_itself(
    hub: Hub,
    running: Callable[[FedmsgSource], asyncio.Task[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hub restarts (its PUB closed, a new one bound on the same port): ZeroMQ
    reconnects and resubscribes by itself, events published after the restart arrive
    (sent again until one does, since PUB/SUB drops during the reconnect), and the log
    says the connection was lost and made again."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins.bus.fedmsg_source")
    pub, endpoint = hub.bind()
    sink = RecordingSink()
    task = running(FedmsgSource([endpoint], [SUBSCRIBED], sink, prefix=PREFIX))
    before = make_envelope(START, {"when": "before"})
    await publish_until(pub, lambda: fedmsg_frames(before), lambda: sink.events, "first event")
    pub.close(linger=0)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:  # the old listener closes in ZeroMQ's I/O thread: the port frees shortly
        new = hub.socket(zmq.PUB)
        try:
            new.bind(endpoint)
            break
        except zmq.ZMQError:
            new.close(linger=0)
            assert loop.time() < deadline, f"{endpoint} stayed in use"
            await asyncio.sleep(0.05)
    counter = iter(range(10**6))

    def after() -> list[bytes]:
        return fedmsg_frames(
            make_envelope(START, {"when": "after"}, msg_id=f"after-{next(counter)}")
        )

    def arrived() -> bool:
        return any(event.body.get("when") == "after" for event in sink.events)

    await publish_until(new, after, arrived, "an event after the restart")
    assert not task.done()
    log = caplog.text
    assert log.count(f"fedmsg: connected to {endpoint}") >= 2
    assert f"fedmsg: disconnected from {endpoint}; reconnecting" in log
    assert "gave up" not in log  # libzmq retried by itself


async def test_messages_queued_when_the_publisher_leaves_are_all_read(
    hub: Hub,
    running: Callable[[FedmsgSource], asyncio.Task[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A publisher sends 5,000 messages at once and goes away while most of them still
    wait in the bot's queue: every one is read and handed on, in order (no
    zeromq/libzmq#2163 abort from disconnecting a SUB with messages queued)."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins.bus.fedmsg_source")
    xpub, endpoint = hub.bind(zmq.XPUB)
    xpub.setsockopt(zmq.SNDHWM, 0)  # nothing dropped on the sending side
    sink = RecordingSink()
    count = 5000
    # the bot's queue takes the whole burst (libzmq's I/O thread fills it however slowly
    # the test's busy worker reads): with the default of 100 most of it would wait on the
    # publisher's side instead, and be lost when its 10 s linger ran out on a loaded CI
    # machine — not what this test is about.
    source = FedmsgSource([endpoint], [SUBSCRIBED], sink, prefix=PREFIX, receive_queue=count)
    running(source)
    await subscribed(xpub)
    for n in range(count):
        xpub.send_multipart(fedmsg_frames(make_envelope(START, {"n": n}, msg_id=str(n))))
    xpub.close(linger=10_000)  # flushes, then the connection is gone
    await eventually(lambda: len(sink.events) == count, f"{count} events", timeout=30)
    assert [event.body["n"] for event in sink.events] == list(range(count))
    await eventually(lambda: "fedmsg: disconnected from" in caplog.text, "the disconnection")
    assert "gave up" not in caplog.text


async def test_garbage_is_counted_and_dropped_and_the_loop_goes_on(
    hub: Hub,
    running: Callable[[FedmsgSource], asyncio.Task[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not JSON, one frame, three or five frames, a body over ``max_bytes``, a topic frame that
    is not the envelope's, a JSON array: each is counted as dropped by kind and the next
    good message still arrives.  A frame beyond ZeroMQ's MAXMSGSIZE (2 × ``max_bytes``)
    never reaches Python: libzmq drops the connection, which is made again, and the next
    message arrives too."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins.bus.fedmsg_source")
    max_bytes = 10_000
    xpub, endpoint = hub.bind(zmq.XPUB)
    sink = RecordingSink()
    task = running(FedmsgSource([endpoint], [SUBSCRIBED], sink, prefix=PREFIX, max_bytes=max_bytes))
    await subscribed(xpub)
    topic = START.encode()
    other_topic = fedmsg_frames(make_envelope(COMPLETE, {}))[1]
    garbage = [
        [topic, b"not json {"],
        [topic],
        [topic, fedmsg_frames(make_envelope(START, {}))[1], b"extra"],
        [topic, b"{}", b"", b"", b"x" * 1000],
        [topic, b'"' + b"x" * (max_bytes + 10) + b'"'],
        [topic, other_topic],
        [topic, b"[1, 2]"],
        [topic, b"\xff\xfe"],
    ]
    for frames in garbage:
        xpub.send_multipart(frames)
    xpub.send_multipart(fedmsg_frames(make_envelope(START, {}, msg_id="good-1")))
    await eventually(lambda: sink.ids() == ["good-1"], "the good message")
    dropped = sink.stats.as_dict()["dropped"]
    assert isinstance(dropped, dict)
    assert {kind: count for kind, count in dropped.items() if count} == {
        "not-json": 2,
        "wrong-frames": 3,
        "too-large": 1,
        "topic-mismatch": 1,
        "not-object": 1,
    }
    details = [error.detail for error, _ in sink.rejected]
    assert "a fedmsg message has 2 frames [topic, body], not 1" in details
    assert "a fedmsg message has 2 frames [topic, body], not 3" in details
    assert "a fedmsg message has 2 frames [topic, body], not 5" in details
    assert {origin for _, origin in sink.rejected} == {endpoint}
    assert sink.stats.received["fedmsg"] == len(garbage) + 1

    xpub.send_multipart([topic, b"x" * (MAXMSGSIZE_FACTOR * max_bytes + 1)])
    assert await subscribed(xpub) == b"\x01" + SUBSCRIBED.encode()  # after the reconnect
    xpub.send_multipart(fedmsg_frames(make_envelope(START, {}, msg_id="good-2")))
    await eventually(lambda: sink.ids() == ["good-1", "good-2"], "a message after the cut")
    assert sink.stats.received["fedmsg"] == len(garbage) + 2  # the huge one never came
    assert f"fedmsg: disconnected from {endpoint}" in caplog.text
    assert f"fedmsg: ZeroMQ gave up on {endpoint} (a protocol error); connecting again" in (
        caplog.text
    )
    assert not task.done()


async def test_a_message_too_large_as_a_whole_is_dropped_uncopied_and_counted(
    hub: Hub, running: Callable[[FedmsgSource], asyncio.Task[None]]
) -> None:
    """ZMQ_MAXMSGSIZE bounds each frame only: 41 frames just under it (600 KB where the
    limit is 20 KB) and 9 empty frames (more than MAX_FRAMES) are each dropped as
    ``too-large``, saying bytes and frames, and the next good message arrives."""
    max_bytes = 10_000
    xpub, endpoint = hub.bind(zmq.XPUB)
    sink = RecordingSink()
    running(FedmsgSource([endpoint], [SUBSCRIBED], sink, prefix=PREFIX, max_bytes=max_bytes))
    await subscribed(xpub)
    topic = START.encode()
    frame = b"x" * (MAXMSGSIZE_FACTOR * max_bytes - 1)  # each frame passes ZMQ_MAXMSGSIZE
    xpub.send_multipart([topic, *[frame] * 40])
    xpub.send_multipart([topic, *[b""] * MAX_FRAMES])
    xpub.send_multipart(fedmsg_frames(make_envelope(START, {}, msg_id="good-1")))
    await eventually(lambda: sink.ids() == ["good-1"], "the good message")
    dropped = sink.stats.as_dict()["dropped"]
    assert isinstance(dropped, dict)
    assert {kind: count for kind, count in dropped.items() if count} == {"too-large": 2}
    size = len(topic) + 40 * len(frame)
    assert [error.detail for error, _ in sink.rejected] == [
        f"a fedmsg message of {size} bytes in 41 frames (at most 20000 bytes in 8 frames)",
        f"a fedmsg message of {len(topic)} bytes in 9 frames (at most 20000 bytes in 8 frames)",
    ]


def test_the_receive_queue_is_bounded_by_config() -> None:
    """ZMQ_RCVHWM is fedmsg_receive_queue (default 100), not libzmq's default of 1000."""
    assert config_from_mapping({}).fedmsg_receive_queue == DEFAULT_RECEIVE_QUEUE == 100
    config = config_from_mapping(
        {"fedmsg_endpoints": "tcp://127.0.0.1:9", "fedmsg_receive_queue": "7"}
    )
    source = FedmsgSource.from_config(config, RecordingSink())
    source.open()
    try:
        for socket in source._sockets.values():
            assert socket.getsockopt(zmq.RCVHWM) == 7
    finally:
        source.close()
    for bad in ("0", "100001", "lots"):
        with pytest.raises(ConfigError, match="fedmsg_receive_queue"):
            config_from_mapping({"fedmsg_receive_queue": bad})


async def test_an_exception_in_the_reactor_is_logged_and_the_next_message_read(
    hub: Hub,
    running: Callable[[FedmsgSource], asyncio.Task[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """However the reactor fails (a bug), the receive loop logs it with its traceback and
    goes on with the next message."""

    class Failing(RecordingSink):
        def handle(self, event: BusEvent) -> None:
            super().handle(event)
            if event.id == "boom":
                raise RuntimeError("reactor bug")

    xpub, endpoint = hub.bind(zmq.XPUB)
    sink = Failing()
    task = running(FedmsgSource([endpoint], [SUBSCRIBED], sink, prefix=PREFIX))
    await subscribed(xpub)
    for msg_id in ("boom", "next"):
        xpub.send_multipart(fedmsg_frames(make_envelope(START, {}, msg_id=msg_id)))
    await eventually(lambda: sink.ids() == ["boom", "next"], "the message after the failure")
    failure = next(r for r in caplog.records if "handling boom" in r.getMessage())
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert "RuntimeError: reactor bug" in caplog.text
    assert not task.done()


async def test_close_ends_run_and_can_be_repeated(
    hub: Hub,
) -> None:
    """``close()`` while ``run()`` waits ends it at once (linger 0: nothing to flush),
    and closing again, or closing a source never run, does nothing."""
    _, endpoint = hub.bind()
    source = FedmsgSource([endpoint], [SUBSCRIBED], RecordingSink(), prefix=PREFIX)
    task = asyncio.get_running_loop().create_task(source.run())
    await asyncio.sleep(0.05)
    source.close()
    await asyncio.wait_for(task, 2)
    source.close()
    FedmsgSource([endpoint], [SUBSCRIBED], RecordingSink()).close()


# -- signatures -----------------------------------------------------------------------------


def _validating_config(tmp_path: Path, **extra: str) -> Any:
    ca = tmp_path / "ca.crt"
    if not ca.exists():
        ca.write_text("not a certificate\n")
    return config_from_mapping(
        {
            "fedmsg_endpoints": "tcp://127.0.0.1:9940",
            "fedmsg_validate_signatures": "true",
            "fedmsg_ca_cert": str(ca),
            **extra,
        }
    )


def _validator_is_stub() -> bool:
    import fedmsg.crypto.x509 as x509

    return not getattr(x509, "_cryptography", False) or (
        x509.validate.__name__ == "_disabled_validate"
    )


#: Set by .ci/run in its venv with the extra: there, a skip for want of it is a failure.
REQUIRE_SIGNATURES = "DEPLOYBOT_REQUIRE_SIGNATURES"


def _needs_working_validator() -> None:
    """Skip (or, under :data:`REQUIRE_SIGNATURES`, fail) where fedmsg's x509 is a stub."""
    if _validator_is_stub():
        if os.environ.get(REQUIRE_SIGNATURES):
            pytest.fail(f"{REQUIRE_SIGNATURES} is set, but fedmsg's x509 validator is a stub")
        pytest.skip(NEEDS_EXTRA)


def test_validation_is_refused_when_fedmsgs_validator_is_its_disabled_stub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a pyOpenSSL of 24.3 or later (this venv's case) fedmsg silently replaces its
    x509 validator by a stub; asked to validate, the bot refuses to start, as a config
    error on ``fedmsg_validate_signatures`` that says why and names the pinned fix."""
    import fedmsg.crypto.x509 as x509

    if not _validator_is_stub():  # the extra is installed: make it the stub case again
        monkeypatch.setattr(x509, "validate", x509._disabled_validate)
        monkeypatch.setattr(x509, "_cryptography", False)
    with pytest.raises(SignatureCheckUnavailable) as refused:
        make_validator(_validating_config(tmp_path), "bot.ini")
    error = refused.value
    assert isinstance(error, ConfigError) and error.key == "fedmsg_validate_signatures"
    text = str(error)
    assert text.startswith("bot.ini: [deploybot] fedmsg_validate_signatures = true, but fedmsg")
    assert "x509 validation is a disabled stub" in text
    assert "pyOpenSSL<24.3 and cryptography>=43,<44" in text
    assert "pyOpenSSL 24.3 removed the CRL functions fedmsg uses" in text
    assert text.endswith("pip install 'deploybot[fedmsg-signatures]'")


def test_validation_is_refused_without_fedmsg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without fedmsg installed, validation is refused with the install line."""
    for name in ("fedmsg", "fedmsg.crypto", "fedmsg.crypto.x509"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SignatureCheckUnavailable) as refused:
        make_validator(_validating_config(tmp_path))
    assert str(refused.value).startswith(
        "[deploybot] fedmsg_validate_signatures = true needs "
        "fedmsg with working x509 signing: pip install 'deploybot[fedmsg-signatures]'"
    )


def test_no_validator_when_validation_is_off() -> None:
    """Validation off (the default): no validator, and fedmsg is not needed."""
    assert make_validator(config_from_mapping({"fedmsg_endpoints": "tcp://127.0.0.1:1"})) is None


@pytest.mark.e2e  # starts the bot
def test_deploybot_run_refuses_to_start_before_connecting(tmp_path: Path) -> None:
    """``deploybot run`` with validation on and no working validator exits 1 with the
    reason and the fix on stderr, and never connects to the IRC server."""
    if not _validator_is_stub():
        pytest.skip("fedmsg can check signatures in this venv: nothing to refuse")
    ca = tmp_path / "ca.crt"
    ca.write_text("x\n")
    (tmp_path / "plans").mkdir()
    ini = tmp_path / "bot.ini"

    def write_ini(port: int) -> Path:
        ini.write_text(
            "[bot]\nnick = deploybot\nhost = 127.0.0.1\n"
            f"port = {port}\n\n[deploybot]\nplans_dir = plans\n"
            "fedmsg_endpoints = tcp://127.0.0.1:9\nfedmsg_validate_signatures = true\n"
            f"fedmsg_ca_cert = {ca}\nweb_port = 0\n"
        )
        return ini

    done = run_refused(write_ini, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.stderr.startswith(
        f"deploybot: {ini}: [deploybot] fedmsg_validate_signatures = true, but fedmsg"
    ), done.stderr
    assert "pip install 'deploybot[fedmsg-signatures]'" in done.stderr
    assert not (tmp_path / "deploybot.sqlite3").exists()  # nothing was opened either


def _make_pki(directory: Path) -> None:
    """A CA, two certificates it signed (``signer``, ``revoked``) and a CRL revoking the
    second, as PEM files in ``directory`` (fedmsg's ``ssldir`` layout: NAME.crt, NAME.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deploybot test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for serial, name in ((2, "signer"), (3, "revoked")):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}01")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(3)
        .revocation_date(now - timedelta(hours=1))
        .build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_name)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=1))
        .add_revoked_certificate(revoked)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


async def test_signed_messages_are_checked_with_fedmsgs_own_x509_code(
    tmp_path: Path,
    hub: Hub,
    running: Callable[[FedmsgSource], asyncio.Task[None]],
) -> None:
    """With the pinned extra installed: messages signed by fedmsg's own ``sign`` with a
    certificate of our CA pass; the same message with its body changed after signing, one
    signed by a revoked certificate (CRL), one signed by a certificate of another CA and
    an unsigned one are each dropped as ``bad-signature``."""
    _needs_working_validator()
    import fedmsg.crypto

    pki = tmp_path / "pki"
    pki.mkdir()
    _make_pki(pki)
    other = tmp_path / "other"
    other.mkdir()
    _make_pki(other)
    config = config_from_mapping(
        {
            "fedmsg_endpoints": "tcp://127.0.0.1:9940",
            "fedmsg_validate_signatures": "true",
            "fedmsg_ca_cert": str(pki / "ca.crt"),
            "fedmsg_crl": str(pki / "crl.pem"),
        }
    )
    validator = make_validator(config)
    assert validator is not None

    def signed(msg_id: str, ssldir: Path = pki, certname: str = "signer") -> dict[str, Any]:
        envelope = make_envelope(START, ansible_msg("start"), msg_id=msg_id)
        result: dict[str, Any] = fedmsg.crypto.sign(
            envelope, ssldir=str(ssldir), certname=certname, crypto_backend="x509"
        )
        return result

    tampered = signed("tampered")
    tampered["msg"]["userid"] = "mallory"
    messages: list[Mapping[str, Any]] = [
        signed("good-1"),
        tampered,
        signed("revoked", certname="revoked"),
        signed("other-ca", ssldir=other),
        make_envelope(START, ansible_msg("start"), msg_id="unsigned"),
        signed("good-2"),
    ]
    assert validator(messages[0]) is True and validator(messages[1]) is False

    xpub, endpoint = hub.bind(zmq.XPUB)
    sink = RecordingSink()
    running(FedmsgSource([endpoint], [SUBSCRIBED], sink, prefix=PREFIX, validator=validator))
    await subscribed(xpub)
    for envelope in messages:
        xpub.send_multipart(fedmsg_frames(envelope))
    await eventually(lambda: "good-2" in sink.ids(), "the last signed message")
    assert sink.ids() == ["good-1", "good-2"]
    assert [error.kind for error, _ in sink.rejected] == ["bad-signature"] * 4
    assert sink.events[0].body["userid"] == "ralph"


def test_a_missing_ca_file_is_refused_at_start_up(tmp_path: Path) -> None:
    """With validation available, an unreadable CA certificate or a CRL that is not one
    is a config error naming the key, at start-up (not every message dropped later)."""
    _needs_working_validator()
    missing = _validating_config(tmp_path, fedmsg_ca_cert=str(tmp_path / "nope.crt"))
    with pytest.raises(ConfigError, match=r"fedmsg_ca_cert: cannot read .*nope\.crt"):
        make_validator(missing)
    _make_pki(tmp_path)
    (tmp_path / "bad.pem").write_text("junk\n")
    bad_crl = _validating_config(tmp_path, fedmsg_crl=str(tmp_path / "bad.pem"))
    with pytest.raises(ConfigError, match=r"fedmsg_crl: .*bad\.pem is not a PEM CRL"):
        make_validator(bad_crl)
