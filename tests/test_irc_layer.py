"""The IRC layer (deploybot_plugins.irc.bot/capabilities/accounts) against real servers.

The bot connects to inspircd's RELAXED port without output pacing (`UNTHROTTLED`), with
atheme providing NickServ and SASL; watchers sit on the relaxed port too. The flood tests
put it on the STOCK port (a default install's flood control: a client that bursts is
killed): with its default pacing it survives, without it it is killed. Reconnect and hang
tests use ngircd, which restarts in milliseconds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import irc3
import pytest
from deploybot_plugins.irc.bot import (
    BotConfigError,
    DeployIrcBot,
    IrcLoginError,
    IrcOutbox,
    resolve_sasl_password,
)
from deploybot_plugins.irc.capabilities import authenticate_lines

from deploybot.lines import CONTINUATION
from deploybot.outbox import Outbox
from tests.botprocess import UNTHROTTLED
from tests.ircd.client import Message
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import HOST, InspircdWithServices, NgircdServer
from tests.waiting import eventually


class RecordingBot(DeployIrcBot):
    """A DeployIrcBot whose ``sent`` lists every line it sent, as sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []
        self.attach_events(
            irc3.event(r"^(?P<line>.*)$", lambda line, **_: self.sent.append(line), iotype="out")
        )


BotFactory = Callable[..., RecordingBot]
_Bot = TypeVar("_Bot", bound=DeployIrcBot)


@pytest.fixture
async def make_bot() -> AsyncIterator[BotFactory]:
    """``make_bot(port, nick, channels, sasl_password=None, **settings)``: a RecordingBot on
    the running loop; all stopped at teardown."""
    bots: list[DeployIrcBot] = []

    def make(
        port: int, nick: str, channels: list[str], sasl_password: str | None = None, **extra: Any
    ) -> RecordingBot:
        config = {"nick": nick, "host": HOST, "port": str(port), "autojoins": " ".join(channels)}
        bot = RecordingBot(
            config, loop=asyncio.get_running_loop(), sasl_password=sasl_password, **extra
        )
        bots.append(bot)
        return bot

    try:
        yield make
    finally:
        for bot in bots:
            await bot.stop("test over")


def log_lines(caplog: pytest.LogCaptureFixture, prefix: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]


async def started(bot: _Bot) -> _Bot:
    await asyncio.wait_for(bot.start(), 15)
    await eventually(lambda: bot.ready, "bot back in its channels", 15)
    return bot


def from_bot(bot: DeployIrcBot, channel: str) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return m.command == "PRIVMSG" and m.nick == bot.nick and m.target == channel

    return match


# -- no server ---------------------------------------------------------------------------------


def test_sasl_password_comes_from_a_file_an_environment_variable_or_the_ini(
    tmp_path: Path,
) -> None:
    """File (one trailing newline dropped), environment variable, inline value, a systemd
    credential, or none."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret pass\n")
    assert resolve_sasl_password({"sasl_password_file": str(secret)}, {}) == "s3cret pass"
    env = {"BOT_PW": "from-env"}
    assert resolve_sasl_password({"sasl_password_env": "BOT_PW"}, env) == "from-env"
    assert resolve_sasl_password({"sasl_password": "inline"}, {}) == "inline"
    assert resolve_sasl_password({"nick": "bot"}, env) is None
    # systemd's LoadCredential=sasl-password:FILE: the file of that name in the directory
    # $CREDENTIALS_DIRECTORY names
    (tmp_path / "sasl-password").write_text("from systemd\n")
    credentials = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    section = {"sasl_password_credential": "sasl-password"}
    assert resolve_sasl_password(section, credentials) == "from systemd"


@pytest.mark.parametrize(
    ("section", "environ", "message"),
    [
        ({"sasl_password_file": "/nonexistent/pw"}, {}, "sasl_password_file: cannot read"),
        ({"sasl_password_env": "NOPE"}, {}, "environment variable NOPE is not set"),
        ({"sasl_password_env": "EMPTY"}, {"EMPTY": ""}, "EMPTY is empty"),
        (
            {"sasl_password_credential": "sasl-password"},
            {},
            "sasl_password_credential: $CREDENTIALS_DIRECTORY is not set",
        ),
        (
            {"sasl_password_credential": "sasl-password"},
            {"CREDENTIALS_DIRECTORY": "/nonexistent"},
            "cannot read /nonexistent/sasl-password",
        ),
        ({"sasl_password_credential": "../pw"}, {}, "'../pw' is not a credential name"),
        (
            {"sasl_password": "x", "sasl_password_env": "Y"},
            {"Y": "y"},
            "set only one of sasl_password, sasl_password_env",
        ),
    ],
)
def test_sasl_password_problems_are_clear_config_errors(
    section: dict[str, str], environ: dict[str, str], message: str
) -> None:
    """A missing file or variable, an empty secret, or two sources: an error naming [bot] key."""
    with pytest.raises(BotConfigError, match="\\[bot\\] ") as error:
        resolve_sasl_password(section, environ)
    assert message in str(error.value)


def test_sasl_plain_payload_is_split_in_400_byte_chunks() -> None:
    """A long response goes in 400-byte AUTHENTICATE chunks; an exact multiple ends with '+'."""
    lines = authenticate_lines("bot", "p" * 600)  # 608 bytes: 812 base64 characters
    assert [len(line.removeprefix("AUTHENTICATE ")) for line in lines] == [400, 400, 12]
    exact = authenticate_lines("b", "p" * (300 - 4))  # base64 of 300 bytes is 400 characters
    assert exact[-1] == "AUTHENTICATE +" and len(exact) == 2


def test_the_outbox_implements_the_core_outbox_protocol() -> None:
    """IrcOutbox has every method of deploybot.outbox.Outbox, with the same signature."""
    for name in ("post", "reply", "notice", "join", "part", "set_topic"):
        expected = inspect.signature(getattr(Outbox, name))
        assert inspect.signature(getattr(IrcOutbox, name)) == expected, name


async def test_constructing_the_bot_leaves_logging_alone() -> None:
    """irc3's dictConfig is neutralised: asyncio keeps its level, no handler is added or closed."""
    root, aio = logging.getLogger(), logging.getLogger("asyncio")
    before = (aio.level, aio.propagate, list(root.handlers), list(aio.handlers))
    bot = DeployIrcBot({"nick": "quiet"}, loop=asyncio.get_running_loop())
    assert (aio.level, aio.propagate, list(root.handlers), list(aio.handlers)) == before
    assert aio.level == logging.NOTSET
    assert logging.getLogger("irc3").handlers == []
    with pytest.raises(RuntimeError, match="start"):
        bot.run()
    await bot.stop()


async def test_the_server_password_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """With ``password`` set the bot sends ``PASS <password>`` to the server, and the
    debug log of sent lines shows ``PASS ****`` (a plain TCP listener records the wire)."""
    received: list[bytes] = []
    got_nick = asyncio.Event()

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            received.append(line)
            if line.startswith(b"NICK "):
                got_nick.set()
        writer.close()

    server = await asyncio.start_server(listener, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    caplog.set_level(logging.DEBUG, logger="deploybot_plugins")
    config = {"nick": "pw", "host": HOST, "port": str(port), "password": "hunter2-secret"}
    bot = DeployIrcBot(config, loop=asyncio.get_running_loop())
    try:
        start = asyncio.ensure_future(bot.start())
        await asyncio.wait_for(got_nick.wait(), 10)
        assert b"PASS hunter2-secret\r\n" in received  # it was sent...
        assert "hunter2" not in caplog.text  # ...and not logged
        assert ">> PASS ****" in caplog.text
    finally:
        await bot.stop("test over")
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        server.close()
        await server.wait_closed()


# -- inspircd + atheme: the relaxed port, and the stock port's flood control -------------------


@pytest.mark.irc
async def test_bot_logs_in_with_sasl_and_a_watcher_sees_its_post(
    inspircd_services: InspircdWithServices,
    irc_client: IrcClientFactory,
    make_account: Any,
    make_bot: BotFactory,
) -> None:
    """SASL PLAIN as a registered account; the watcher sees the post tagged with that account."""
    net = inspircd_services
    account = await make_account("bot")
    channel = "#" + net.unique_name("login")
    watcher = await irc_client(net.relaxed_port, net.unique_name("watch"))
    await watcher.join(channel)
    bot = await started(
        make_bot(net.relaxed_port, account.name, [channel], account.password, **UNTHROTTLED)
    )
    bot.outbox.post(channel, "deploy window opens at 14:00")
    message = await watcher.wait_for(from_bot(bot, channel), 15)
    assert message.text == "deploy window opens at 14:00"
    assert message.account == account.name


@pytest.mark.irc
async def test_a_wrong_sasl_password_fails_start_fast_without_reconnecting(
    inspircd_services: InspircdWithServices,
    make_account: Any,
    make_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """start() raises IrcLoginError within 10 s naming the account and the config keys; no retry."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    account = await make_account("bot")
    bot = make_bot(
        inspircd_services.relaxed_port, account.name, [], "not-the-password", reconnect_delay=0.2
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(IrcLoginError, match=f"SASL login as {account.name} failed") as error:
        await asyncio.wait_for(bot.start(), 10)
    assert loop.time() - began < 10
    assert "sasl_password_file" in str(error.value)
    assert bot.failed.done()
    await asyncio.sleep(1.0)  # a reconnect loop would have tried twice by now (0.2 s, 0.4 s)
    assert len(log_lines(caplog, "connecting to")) == 1
    assert any("SASL login as" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


@pytest.mark.irc
async def test_account_of_tracks_logged_in_users_and_gives_impostors_none(
    inspircd_services: InspircdWithServices,
    irc_client: IrcClientFactory,
    make_account: Any,
    make_bot: BotFactory,
) -> None:
    """WHOX on join, extended-join and the account tag name the account; a quit forgets it;
    a client using the same nick without logging in gets None."""
    net = inspircd_services
    alice, bob = await asyncio.gather(make_account("alice"), make_account("bob"))
    channel = "#" + net.unique_name("acct")
    bob_client = await irc_client(net.relaxed_port, bob.name, sasl=(bob.name, bob.password))
    await bob_client.join(channel)
    bot = await started(
        make_bot(net.relaxed_port, net.unique_name("bot"), [channel], **UNTHROTTLED)
    )
    await eventually(lambda: bot.account_of(bob.name) == bob.name, "WHOX for bob", 10)

    alice_client = await irc_client(net.relaxed_port, alice.name, sasl=(alice.name, alice.password))
    await alice_client.join(channel)
    await eventually(lambda: bot.account_of(alice.name) == alice.name, "extended-join", 10)
    seen: list[str] = []
    bot.attach_events(
        irc3.event(r"^.* PRIVMSG \S+ :(?P<text>.*)$", lambda text, **_: seen.append(text))
    )
    await alice_client.privmsg(channel, "it is me")
    await eventually(lambda: "it is me" in seen, "the bot sees the message", 10)
    assert bot.account_of(alice.name) == alice.name
    assert bot.account_of(alice.name.upper()) == alice.name  # nicks are case-insensitive

    await alice_client.quit()
    await eventually(lambda: bot.account_of(alice.name) is None, "forgotten after QUIT", 10)
    impostor = await irc_client(net.relaxed_port, alice.name)
    await impostor.join(channel)
    await impostor.privmsg(channel, "it is me, honest")
    await eventually(lambda: "it is me, honest" in seen, "the bot sees the message", 10)
    assert bot.account_of(alice.name) is None
    assert bot.account_of("nobody-here") is None


@pytest.mark.irc
async def test_cr_lf_and_nul_in_text_never_start_a_new_protocol_line(
    inspircd_services: InspircdWithServices, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """Posts, replies and raw sends with CR/LF/NUL arrive as one line in #a; #x sees nothing."""
    net = inspircd_services
    chan_a, chan_x = "#" + net.unique_name("a"), "#" + net.unique_name("x")
    watch_a, watch_x = await asyncio.gather(
        irc_client(net.relaxed_port), irc_client(net.relaxed_port)
    )
    await asyncio.gather(watch_a.join(chan_a), watch_x.join(chan_x))
    bot = await started(
        make_bot(net.relaxed_port, net.unique_name("bot"), [chan_a, chan_x], **UNTHROTTLED)
    )
    for separator in ("\r\n", "\n", "\r", "\0"):
        bot.outbox.post(chan_a, f"hello{separator}PRIVMSG {chan_x} :pwned")
    bot.send(f"PRIVMSG {chan_a} :raw\r\nPRIVMSG {chan_x} :pwned")
    bot.privmsg(chan_a, f"irc3 api\nPRIVMSG {chan_x} :pwned")
    bot.outbox.post(chan_x, "sentinel")

    texts = [(await watch_a.wait_for(from_bot(bot, chan_a), 20)).text for _ in range(6)]
    assert f"hello PRIVMSG {chan_x} :pwned" in texts  # (the replies go before the posts)
    assert all(t.endswith(f"PRIVMSG {chan_x} :pwned") for t in texts)
    await watch_x.wait_for(lambda m: m.command == "PRIVMSG" and m.text == "sentinel", 20)
    assert not [m for m in watch_x.messages if "pwned" in m.raw]
    assert not [line for line in bot.sent if set(line) & {"\r", "\n", "\0"}]


@pytest.mark.irc
async def test_a_long_multibyte_text_arrives_whole_in_lines_of_at_most_512_bytes(
    inspircd_services: InspircdWithServices, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """2,000 characters with é and ⚠ (and a 250-character run of ⚠ that must be cut inside a
    word): several lines, none over 512 bytes, no character broken or lost; every line
    after the first starts with "… "."""
    net = inspircd_services
    channel = "#" + net.unique_name("long")
    words = [f"déploiement⚠{i}" for i in range(150)]
    words.insert(60, "⚠" * 250)
    text = " ".join(words)[:2000].rstrip()
    assert len(text) == 2000
    watcher = await irc_client(net.relaxed_port)
    await watcher.join(channel)
    bot = await started(
        make_bot(net.relaxed_port, net.unique_name("bot"), [channel], **UNTHROTTLED)
    )
    bot.outbox.post(channel, text)

    def compact(parts: list[Message]) -> str:
        texts = [m.text for m in parts[:1]] + [m.text.removeprefix(CONTINUATION) for m in parts[1:]]
        return "".join("".join(texts).split())

    parts: list[Message] = []
    while len(compact(parts)) < len("".join(text.split())):
        parts.append(await watcher.wait_for(from_bot(bot, channel), 30))
    assert compact(parts) == "".join(text.split())
    assert len(parts) >= 5
    assert all(m.text.startswith(CONTINUATION) for m in parts[1:])
    for message in parts:
        untagged = message.raw.split(" ", 1)[1] if message.raw.startswith("@") else message.raw
        assert len(untagged.encode()) + 2 <= 512
        assert "\ufffd" not in message.text
    assert all(len(line.encode()) + 2 <= 512 for line in bot.sent)


@pytest.mark.irc
@pytest.mark.slow
async def test_sixty_fast_posts_all_arrive_and_the_stock_class_never_kills_the_bot(
    inspircd_services: InspircdWithServices,
    irc_client: IrcClientFactory,
    make_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """60 long posts at once on the stock port (threshold 10, 1 command/s): the default bucket
    paces them, all 60 arrive in order, the connection is never lost (no Excess Flood)."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    net = inspircd_services
    channel = "#" + net.unique_name("flood")
    watcher = await irc_client(net.relaxed_port)
    await watcher.join(channel)
    bot = await started(make_bot(net.stock_port, net.unique_name("bot"), [channel]))
    protocol = bot.protocol
    assert protocol is not None
    for i in range(60):
        bot.outbox.post(channel, f"line {i:02d} " + "deploy-step " * 28)
    got = [(await watcher.wait_for(from_bot(bot, channel), 90)).text[:7] for _ in range(60)]
    assert got == [f"line {i:02d}" for i in range(60)]
    assert bot.protocol is protocol and not protocol.closed
    assert not log_lines(caplog, "IRC connection lost")
    assert not [m for m in watcher.messages if m.command == "QUIT" and m.nick == bot.nick]


@pytest.mark.irc
async def test_without_the_throttle_the_stock_class_does_kill_the_bot(
    inspircd_services: InspircdWithServices,
    irc_client: IrcClientFactory,
    make_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Control for the test above: the same posts with an effectively unlimited bucket get
    the bot disconnected by the stock class (so passing there is the throttle's doing)."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    net = inspircd_services
    channel = "#" + net.unique_name("flood")
    bot = make_bot(
        net.stock_port,
        net.unique_name("bot"),
        [channel],
        throttle_burst=1000,
        throttle_rate=1000,
        reconnect_delay=30,
    )
    await started(bot)
    for i in range(60):
        bot.outbox.post(channel, f"line {i:02d} " + "deploy-step " * 28)
    await eventually(lambda: bot.protocol is None, "the server drops the flooding bot", 10)
    assert log_lines(caplog, "IRC connection lost")


@pytest.mark.irc
async def test_short_replies_queued_together_are_coalesced(
    inspircd_services: InspircdWithServices, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """Replies to one target waiting in the queue go out as one line joined by ' · '."""
    net = inspircd_services
    channel = "#" + net.unique_name("coal")
    watcher = await irc_client(net.relaxed_port)
    await watcher.join(channel)
    bot = make_bot(net.relaxed_port, net.unique_name("bot"), [channel])
    for text in ("plan a: ok", "plan b: ok", "plan c: blocked"):
        bot.outbox.reply(channel, text)
    await started(bot)
    message = await watcher.wait_for(from_bot(bot, channel), 15)
    assert message.text == "plan a: ok · plan b: ok · plan c: blocked"


# -- ngircd: reconnects -------------------------------------------------------------------------


@pytest.mark.irc
@pytest.mark.slow
async def test_a_post_made_while_the_server_is_down_arrives_after_the_bot_rejoins(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    make_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Server killed; posts queued meanwhile reach the config channel and the one joined at
    run time, after the bot reconnected (with backoff) and rejoined both (not the parted one)."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    port = ngircd_server.port
    boot, later = "#boot", "#later"
    bot = await started(make_bot(port, "deploybot", [boot], reconnect_delay=0.5))
    early = await irc_client(port, "early")
    await early.join(later)
    bot.outbox.join(later)
    await early.wait_for(lambda m: m.command == "JOIN" and m.nick == "deploybot", 10)
    bot.outbox.join("#gone")
    await eventually(lambda: "JOIN #gone" in bot.sent, "JOIN #gone sent", 10)
    bot.outbox.part("#gone", "not needed")
    await eventually(lambda: "PART #gone :not needed" in bot.sent, "PART #gone sent", 10)
    assert bot.channels == [boot, later]

    await ngircd_server.akill()
    sent_before = len(bot.sent)
    await eventually(lambda: bot.protocol is None, "bot notices the server is gone", 10)
    bot.outbox.post(boot, "queued while down (boot)")
    bot.outbox.post(later, "queued while down (later)")
    # Two failed attempts (~0.5 s and ~1 s apart); the next one is >= 1.6 s away: enough
    # for the watchers to be back in the channels before the bot.
    await eventually(
        lambda: len(log_lines(caplog, "cannot connect")) >= 2, "two failed attempts", 10
    )
    await ngircd_server.astart()
    watch_boot, watch_later = await asyncio.gather(irc_client(port), irc_client(port))
    await asyncio.gather(watch_boot.join(boot), watch_later.join(later))

    for watcher, channel in ((watch_boot, boot), (watch_later, later)):
        join = await watcher.wait_for(lambda m: m.command == "JOIN" and m.nick == "deploybot", 15)
        post = await watcher.wait_for(from_bot(bot, channel), 15)
        assert post.text == f"queued while down ({channel[1:]})"
        assert watcher.messages.index(join) < watcher.messages.index(post)
    joins = [line for line in bot.sent[sent_before:] if line.startswith("JOIN")]
    assert joins == [f"JOIN {boot},{later}"]


@pytest.mark.irc
async def test_a_hung_server_is_noticed_within_the_hang_timeout_and_the_bot_comes_back(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    make_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP the server: the bot pings, gives up after hang_timeout (2 s) without data,
    and once the server runs again (SIGCONT) it reconnects, rejoins and posts."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    port, channel = ngircd_server.port, "#hang"
    watcher = await irc_client(port)
    await watcher.join(channel)
    bot = make_bot(
        port,
        "deploybot",
        [channel],
        ping_interval=1.5,
        hang_timeout=2,
        reconnect_delay=0.3,
        reconnect_max_delay=1,
    )
    await started(bot)
    assert ngircd_server.pid is not None
    loop = asyncio.get_running_loop()
    os.kill(ngircd_server.pid, signal.SIGSTOP)
    try:
        stopped_at = loop.time()
        await eventually(lambda: bot.protocol is None, "bot drops the hung connection", 5)
        noticed_after = loop.time() - stopped_at
        assert any("no data from the server" in m for m in log_lines(caplog, "IRC connection lost"))
        assert any(line.startswith("PING ") for line in bot.sent)
    finally:
        os.kill(ngircd_server.pid, signal.SIGCONT)
    assert noticed_after <= 2.0 + 0.5
    await eventually(lambda: bot.ready, "bot reconnected and rejoined", 15)
    bot.outbox.post(channel, "back again")
    message = await watcher.wait_for(from_bot(bot, channel), 15)
    assert message.text == "back again"


@pytest.mark.irc
async def test_replies_older_than_reply_ttl_are_dropped_but_posts_are_kept(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    make_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply that waited longer than reply_ttl for the connection is dropped with a log
    line; a post queued at the same moment is delivered."""
    caplog.set_level(logging.INFO, logger="deploybot_plugins")
    port = ngircd_server.port
    watcher = await irc_client(port)
    await watcher.join("#ttl")
    bot = make_bot(port, "deploybot", ["#ttl"], reply_ttl=0.5)
    bot.outbox.reply("#ttl", "stale answer")
    bot.outbox.post("#ttl", "still relevant")
    await asyncio.sleep(0.8)
    await started(bot)
    message = await watcher.wait_for(from_bot(bot, "#ttl"), 10)
    assert message.text == "still relevant"
    assert any("stale answer" in line for line in log_lines(caplog, "dropping a reply"))


@pytest.mark.irc
async def test_stop_quits_and_leaves_no_task_or_timer_behind(
    ngircd_server: NgircdServer, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """stop() sends QUIT with the reason, the server closes the link, nothing reconnects."""
    port = ngircd_server.port
    watcher = await irc_client(port)
    await watcher.join("#stop")
    bot = await started(make_bot(port, "deploybot", ["#stop"]))
    await watcher.wait_for(lambda m: m.command == "JOIN" and m.nick == "deploybot", 10)
    await bot.stop("maintenance")
    quit_message = await watcher.wait_for(lambda m: m.command == "QUIT", 5)
    assert "maintenance" in quit_message.text
    assert bot.protocol is None
    assert not bot._tasks and not bot._handles
    await asyncio.sleep(1.5)  # a reconnect would have happened by now
    assert bot.protocol is None


@pytest.mark.irc
async def test_refused_topic_and_join_are_told_in_the_report_channel_once(
    inspircd_services: InspircdWithServices, irc_client: IrcClientFactory, make_bot: BotFactory
) -> None:
    """A topic refused in a +t channel where the bot is not operator (482) and a join
    refused by an invite-only channel (473) are said in the report channel with what to do,
    each once however often it happens; nothing about the report channel itself."""
    net = inspircd_services
    admin, locked, closed = ("#" + net.unique_name(name) for name in ("admin", "locked", "inv"))
    owner = await irc_client(net.relaxed_port, net.unique_name("owner"))
    await owner.join(locked)
    await owner.join(closed)
    await owner.send(f"MODE {locked} +t")
    await owner.send(f"MODE {closed} +i")
    await owner.wait_for(lambda m: m.command == "MODE" and "+i" in m.params, 10)
    watcher = await irc_client(net.relaxed_port, net.unique_name("watch"))
    await watcher.join(admin)
    bot = make_bot(net.relaxed_port, net.unique_name("bot"), [admin, locked], **UNTHROTTLED)
    bot.report_channel = admin
    await started(bot)
    for _ in range(3):
        bot.outbox.set_topic(locked, "pkgdb2 deploy: report with !broke")
    bot.outbox.join(closed)
    bot.outbox.set_topic(admin, "refused too")  # the watcher opened #admin: 482, untold
    bot.outbox.post(admin, "sentinel")

    said = sorted([(await watcher.wait_for(from_bot(bot, admin), 20)).text for _ in range(3)])
    assert said[0] == "sentinel"
    assert said[1].startswith(f"⚠ I cannot join {closed}: ")
    assert said[1].endswith("(473); what I post there is lost")
    assert said[2].startswith(f"⚠ the server refused my topic or mode change in {locked}: ")
    assert said[2].endswith(
        "(482); make me a channel operator there, or -t, so I can set the topic"
    )
    await asyncio.sleep(2)
    assert len([m for m in watcher.messages if from_bot(bot, admin)(m)]) == 3
