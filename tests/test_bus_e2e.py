"""End to end: fedmsg messages on a real ZeroMQ socket drive `deploybot run` on real IRC.

The test binds an XPUB socket on 127.0.0.1 (an XPUB is a PUB that also tells the
publisher what was subscribed, so the test publishes only once the bot's subscription has
arrived instead of guessing past PUB/SUB's slow-joiner window) and points the bot's
`fedmsg_endpoints` at it. The bot is a real process (tests/botprocess.py) on ngircd
without flood penalty; a watcher client sits in the admin and firefighting channels.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zmq
from deploybot_plugins.bus.fedmsg_source import fedmsg_frames, make_envelope

from tests.botprocess import (
    UNTHROTTLED,
    BotProcess,
    BotProcesses,
    bot_lines,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    wait_said,
)
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer
from tests.planfactory import make_plan

pytestmark = pytest.mark.irc

SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"
START = "org.fedoraproject.prod.ansible.playbook.start"
COMPLETE = "org.fedoraproject.prod.ansible.playbook.complete"
SUBSCRIPTION = b"\x01org.fedoraproject.prod.ansible.playbook."
PLAYBOOK = "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml"
ADMIN = "#ops"
FIREFIGHT = "#pkgdb2-firefight"  # the default firefight_channel pattern for pkgdb2
TIMEOUT = 30.0


@pytest.fixture
def xpub() -> Iterator[tuple[zmq.Socket[bytes], str]]:
    """An XPUB socket on a free 127.0.0.1 port (every subscription reported) and its
    endpoint; closed with linger 0 at teardown."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = context.socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield sock, f"tcp://127.0.0.1:{port}"
    finally:
        sock.close(linger=0)
        context.term()


def ansible_msg(kind: str, **changes: Any) -> dict[str, Any]:
    """The real ansible.playbook.KIND sample's body, run on pkgdb's playbook by ralph."""
    document = json.loads((SAMPLES_DIR / f"ansible.playbook.{kind}.json").read_text("utf-8"))
    msg: dict[str, Any] = document["msg"]
    msg["playbook"] = PLAYBOOK
    msg.update(changes)
    return msg


async def subscriptions(sock: zmq.Socket[bytes], bot: BotProcess) -> list[bytes]:
    """Wait for the bot's first subscription, then give it a moment to send any other;
    every (un)subscription message received."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not sock.poll(0):
        assert bot.running, f"the bot exited\n{bot.log_tail()}"
        assert loop.time() < deadline, f"the bot never subscribed\n{bot.log_tail()}"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    received = []
    while sock.poll(0):
        received.append(sock.recv())
    return received


async def test_playbook_runs_on_the_bus_open_firefighting_and_are_reported_once(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    xpub: tuple[zmq.Socket[bytes], str],
) -> None:
    """A plan for pkgdb2 (playbook groups/pkgdb.yml) starts in 20 minutes. The bot
    subscribes to nothing but the prod ansible playbook topics. Garbage on the bus is
    dropped and logged and changes nothing. `ansible.playbook.start` of that playbook by
    ralph — published twice, as a retrying publisher would, with one msg_id — opens
    firefighting (the bot joins #pkgdb2-firefight; the deploy is early but within the
    hour's grace) and "deploy of pkgdb2 started by ralph" is said once in the admin and
    firefighting channels; the `complete` with a failed host says "finished with
    failures on pkgdb02.phx2" there. The bot then stops cleanly (its bus socket closed
    before its store)."""
    sock, endpoint = xpub
    when = (datetime.now(UTC) + timedelta(minutes=21)).replace(second=0, microsecond=0)
    plan = make_plan(when=when, duration=timedelta(hours=2))
    assert plan.playbooks == ("groups/pkgdb.yml",) and plan.service == "pkgdb2"
    bot = bot_process(
        port=ngircd_server.port,
        nick="deploybot",
        admin_channel=ADMIN,
        countdowns="0",
        bot_settings=UNTHROTTLED,
        deploybot_settings={"fedmsg_endpoints": endpoint},
    )
    bot.write_plan(plan)
    watcher = await joined(irc_client, ngircd_server.port, "watcher", [ADMIN, FIREFIGHT])
    await bot.start(watcher)

    assert await subscriptions(sock, bot) == [SUBSCRIPTION]
    log_mark = bot.log_mark()
    since = watcher.mark()
    topic = START.encode()
    for garbage in ([topic, b"{not json"], [topic], [topic, b"[]"]):
        sock.send_multipart(garbage)
    start = make_envelope(START, ansible_msg("start", userid="ralph"))
    sock.send_multipart(fedmsg_frames(start))
    sock.send_multipart(fedmsg_frames(start))  # the same message again (same msg_id)

    await bot.wait_joined(watcher, FIREFIGHT, since=since, timeout=TIMEOUT)
    started = "deploy of pkgdb2 started by ralph (groups/pkgdb.yml)"
    await wait_said(watcher, bot.nick, started, target=ADMIN, since=since, timeout=TIMEOUT)
    await wait_said(watcher, bot.nick, started, target=FIREFIGHT, since=since, timeout=TIMEOUT)

    results = {
        "pkgdb01.phx2.fedoraproject.org": {"changed": 1, "failures": 0, "ok": 56},
        "pkgdb02.phx2.fedoraproject.org": {"changed": 0, "failures": 2, "ok": 12},
    }
    complete = make_envelope(COMPLETE, ansible_msg("complete", results=results))
    sock.send_multipart(fedmsg_frames(complete))
    finished = "deploy of pkgdb2 finished with failures on pkgdb02.phx2 (groups/pkgdb.yml)"
    for channel in (ADMIN, FIREFIGHT):
        await wait_said(watcher, bot.nick, finished, target=channel, since=since, timeout=TIMEOUT)

    # the complete came after both copies of the start: each was said once, no more
    for channel in (ADMIN, FIREFIGHT):
        lines = [m.text for m in bot_lines(watcher, bot.nick, channel, since)]
        assert sum(line.count(started) for line in lines) == 1, lines
        assert sum(line.count(finished) for line in lines) == 1, lines
    log = bot.log_since(log_mark)
    assert (
        f"opening firefighting for {plan.id} in {FIREFIGHT} (bus: ansible.playbook.start)" in log
    ), log
    assert f"dropped a bus message from {endpoint} (not-json)" in log, log
    assert "Traceback" not in bot.log_text()
    await bot.stop(watcher)
    assert "fedmsg: subscribed to org.fedoraproject.prod.ansible.playbook." in bot.log_text()
