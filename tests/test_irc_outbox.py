"""The IRC layer's side of the durable outbox (``DeployIrcBot.outbox.send_post``), against
real servers: a stored post is confirmed in the store only once the server has confirmed
it — by its echo on inspircd (``echo-message``), by a PING barrier's PONG on ngircd (no
echo-message) — what a lost connection left unconfirmed goes out again in its order, a
post queued long ago is marked late, a topic is wanted state, and stop() flushes for at
most ``flush_timeout`` s.

The store is replaced by a recorder of the rows confirmed (``bot.confirm_posts``); the
store's own table and transactions are tested in tests/test_store_outbox.py."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import irc3
import pytest
from deploybot_plugins.irc.bot import DeployIrcBot

from deploybot.store import StoredPost
from deploybot.store.records import PostCommand
from tests.botprocess import UNTHROTTLED
from tests.ircd.client import IrcClient, Message
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import HOST, InspircdWithServices, NgircdServer
from tests.waiting import eventually

pytestmark = pytest.mark.irc


class ConfirmingBot(DeployIrcBot):
    """A DeployIrcBot whose ``sent`` lists every line it sent and ``confirmed`` every
    stored row it confirmed, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []
        self.confirmed: list[int] = []
        self.confirm_posts = self._record
        self.attach_events(
            irc3.event(r"^(?P<line>.*)$", lambda line, **_: self.sent.append(line), iotype="out")
        )
        self._rows = 0

    def _record(self, ids: Iterable[int]) -> None:
        self.confirmed += ids

    def stored(self, command: PostCommand, target: str, text: str = "", *, age: float = 0.0) -> int:
        """Hand the bot a stored post (as StoredOutbox does); its row number."""
        self._rows += 1
        queued = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=age)
        self.outbox.send_post(StoredPost(self._rows, queued, command, target, text))
        return self._rows


BotFactory = Callable[..., ConfirmingBot]


@pytest.fixture
async def make_bot() -> AsyncIterator[BotFactory]:
    bots: list[DeployIrcBot] = []

    def make(port: int, nick: str, channels: list[str], **extra: Any) -> ConfirmingBot:
        config = {"nick": nick, "host": HOST, "port": str(port), "autojoins": " ".join(channels)}
        bot = ConfirmingBot(config, loop=asyncio.get_running_loop(), **extra)
        bots.append(bot)
        return bot

    try:
        yield make
    finally:
        for bot in bots:
            await bot.stop("test over")


async def started(bot: ConfirmingBot) -> ConfirmingBot:
    await asyncio.wait_for(bot.start(), 15)
    await eventually(lambda: bot.ready, "bot back in its channels", 15)
    return bot


def said(bot: DeployIrcBot, target: str) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return m.command == "PRIVMSG" and m.nick == bot.nick and m.target == target

    return match


def texts(client: IrcClient, bot: DeployIrcBot, target: str, since: int = 0) -> list[str]:
    return [m.text for m in client.messages[since:] if said(bot, target)(m)]


def barriers(bot: ConfirmingBot) -> list[str]:
    return [line for line in bot.sent if line.startswith("PING :deploybot-confirm-")]


async def test_stored_posts_are_confirmed_by_their_echo_and_marked_late_when_old(
    inspircd_services: InspircdWithServices, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """On inspircd (ircv3_echomessage loaded) every stored post — messages, a topic, a
    JOIN and a PART — is confirmed by its echo, without a PING barrier; one queued 5
    minutes ago says `(late: queued HH:MM UTC)` before its text; a topic equal to the
    channel's is not set again (and is confirmed)."""
    net = inspircd_services
    channel, visited = "#" + net.unique_name("echo"), "#" + net.unique_name("visit")
    watcher = await irc_client(net.relaxed_port)
    await watcher.join(channel)
    await watcher.send(f"MODE {channel} -t")
    bot = await started(
        make_bot(net.relaxed_port, net.unique_name("bot"), [channel], **UNTHROTTLED)
    )
    caps = bot.get_plugin("deploybot_plugins.irc.capabilities.Capabilities")
    assert "echo-message" in caps.enabled
    rows = [
        bot.stored("PRIVMSG", channel, "fresh line"),
        bot.stored("TOPIC", channel, "the wanted topic"),
        bot.stored("PRIVMSG", channel, "old line", age=300),
        bot.stored("PRIVMSG", watcher.nick, "a page"),
        bot.stored("TOPIC", channel, "the wanted topic"),
        bot.stored("JOIN", visited),  # the server's JOIN and PART of us confirm them
        bot.stored("PART", visited, "visit over"),
    ]
    await eventually(lambda: sorted(bot.confirmed) == rows, "every row confirmed", 10)
    assert barriers(bot) == []  # a PING would cost a line of the bucket (issue 10's replies)
    fresh, old = texts(watcher, bot, channel)
    assert fresh == "fresh line"
    assert re.fullmatch(r"\(late: queued \d\d:\d\d UTC\) old line", old), old
    assert texts(watcher, bot, watcher.nick) == ["a page"]
    topics = [m.text for m in watcher.messages if m.command == "TOPIC" and m.nick == bot.nick]
    assert topics == ["the wanted topic"]


async def test_without_echo_message_a_ping_barrier_confirms(
    ngircd_server: NgircdServer, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """ngircd offers no echo-message: a PING sent after the stored lines confirms them
    all when its PONG comes back; nothing is confirmed before that."""
    port, channel = ngircd_server.port, "#barrier"
    watcher = await irc_client(port)
    await watcher.join(channel)
    bot = await started(make_bot(port, "deploybot", [channel]))
    rows = [bot.stored("PRIVMSG", channel, f"line {n}") for n in range(3)]
    await watcher.wait_for(lambda m: said(bot, channel)(m) and m.text == "line 2", 10)
    assert bot.confirmed == []  # no echo: the barrier comes BARRIER_DELAY later
    await eventually(lambda: bot.confirmed == rows, "the rows confirmed by the barrier", 10)
    assert barriers(bot) == [f"PING :deploybot-confirm-{len(rows)}"]


@pytest.mark.slow
async def test_what_a_lost_connection_left_unconfirmed_goes_out_again_in_order(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    make_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lines sent just before the server died (no barrier answered yet) are sent again
    after the reconnect, in their order and before a post queued while down; a confirmed
    line is not. The topic the bot had set is set again in the recreated channel."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    port, posts, topic = ngircd_server.port, "#posts", "#topic"
    bot = await started(
        make_bot(port, "deploybot", [posts, topic], reconnect_delay=0.5, **UNTHROTTLED)
    )
    early = await irc_client(port)
    await early.join(posts)
    confirmed_row = bot.stored("PRIVMSG", posts, "confirmed before")
    topic_row = bot.stored("TOPIC", topic, "kept topic")
    await eventually(
        lambda: sorted(bot.confirmed) == [confirmed_row, topic_row], "first rows confirmed", 10
    )
    rows = [bot.stored("PRIVMSG", posts, f"unconfirmed {n}") for n in range(3)]
    await early.wait_for(lambda m: said(bot, posts)(m) and m.text == "unconfirmed 2", 10)
    await ngircd_server.akill()  # before the barrier (BARRIER_DELAY after the lines)
    await eventually(lambda: bot.protocol is None, "bot notices the server is gone", 10)
    assert not set(rows) & set(bot.confirmed)
    bot.outbox.post(posts, "queued while down")
    await eventually(
        lambda: "cannot connect" in caplog.text and caplog.text.count("cannot connect") >= 2,
        "two failed attempts",
        10,
    )
    await ngircd_server.astart()
    watcher = await irc_client(port)
    await watcher.join(posts)
    await watcher.wait_for(lambda m: said(bot, posts)(m) and m.text == "queued while down", 20)
    assert texts(watcher, bot, posts) == [
        "unconfirmed 0",
        "unconfirmed 1",
        "unconfirmed 2",
        "queued while down",
    ]
    await eventually(lambda: set(rows) <= set(bot.confirmed), "the rows confirmed", 10)
    await eventually(lambda: bot.ready, "bot back in its channels", 15)
    late = await irc_client(port)
    await late.join(topic)
    told = [m.params[-1] for m in late.messages if m.command == "332"]
    assert told == ["kept topic"]
    assert bot.sent.count("TOPIC #topic :kept topic") == 2


async def test_stop_flushes_stored_posts_for_at_most_flush_timeout(
    inspircd_services: InspircdWithServices, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """stop() with more stored posts waiting than the pacing lets out in flush_timeout:
    it sends and confirms what it can in that time, in order, then quits; the rest stays
    unconfirmed (in the store: sent at the next start)."""
    net = inspircd_services
    channel = "#" + net.unique_name("flush")
    watcher = await irc_client(net.relaxed_port)
    await watcher.join(channel)
    bot = await started(
        make_bot(net.relaxed_port, net.unique_name("bot"), [channel], flush_timeout=1.5)
    )
    await asyncio.sleep(4)  # the pacing's bucket full again after the registration
    rows = [bot.stored("PRIVMSG", channel, f"post {n}") for n in range(12)]
    loop = asyncio.get_running_loop()
    began = loop.time()
    await bot.stop("shutting down")
    took = loop.time() - began
    assert took < 1.5 + 1.0, took
    assert 0 < len(bot.confirmed) < len(rows)
    assert bot.confirmed == rows[: len(bot.confirmed)]
