"""End to end: `deploybot run bot.ini` as a real process against real IRC servers.

The bot logs in with SASL to a NickServ account on atheme and connects to inspircd's
RELAXED client port without output pacing (`inspircd_bot`), unless a test says otherwise;
the flood test (section 7) puts it on the STOCK port (a default install's flood control: a
client that bursts is killed) with its default pacing of about one line a second. The
test's clients ("watchers") sit on the relaxed port. The bot's log is in its tmp directory
and in the report of a failing test (tests/botprocess.py).

Tests send their commands in a few bursts and assert on the coalesced replies
(`a · b · c`), never with fixed sleeps — except where the behaviour is about time passing
while the bot is dead.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploybot.durations import format_duration
from deploybot.lines import CONTINUATION, message_lines, one_line
from deploybot.plans.files import dump_plan
from deploybot.plans.model import ApiBreak, Consumer, Plan, Roster, Shift
from deploybot.texts import break_line, plan_line
from tests.botprocess import (
    BotProcess,
    BotProcesses,
    bot_lines,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    inspircd_bot,
    joined,
    nick_eq,
    said_by,
    wait_said,
)
from tests.ircd.client import IrcClient, Message
from tests.ircd.fixtures import IrcClientFactory, MakeAccount
from tests.ircd.servers import InspircdWithServices, NgircdServer, free_port
from tests.planfactory import make_plan
from tests.waiting import eventually

pytestmark = pytest.mark.irc

REPLY_TIMEOUT = 60.0  # on the stock class the bot sends ~1 line/s; replies are never older
# `deploybot_settings` of tests that send one person's commands in bursts larger than the
# flood control allows (5 in 10 s by default)
MANY_COMMANDS = {"command_flood_limit": "50"}
LATE_AFTER = timedelta(seconds=3)  # `countdown_late_after` of the crash test: later is "late"


def upcoming_plan(days: int = 30, **overrides: object) -> Plan:
    """The factory's ready pkgdb2 plan, `days` from now (whole minutes, as plans are written)."""
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=days)
    return make_plan(when=when, **overrides)


def plan_due_in(seconds: float, **overrides: object) -> tuple[Plan, datetime, str]:
    """A plan some 10 minutes ahead, its countdown due `seconds` from now, and the
    `countdowns` setting that makes it so (`when` is a whole minute, as plan rosters are)."""
    due = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    when = (due + timedelta(minutes=11)).replace(second=0)
    return make_plan(when=when, **overrides), due, format_duration(when - due)


def fas_deploy_starting_soon(channel: str | None = None) -> Plan:
    """A small fas deploy starting 4 s from now (an hour long, pingou on shift): the bot
    joins its firefighting channel (`channel`, default `#fas-firefight`) at runtime."""
    starts = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    window = timedelta(hours=1)
    return make_plan(
        id="fas-3.0",
        service="fas",
        release="3.0",
        title="fas 3",
        when=starts,
        duration=window,
        major=False,
        api_breaks=(),
        consumers=(),
        teams=(),
        playbooks=(),
        roster=Roster(
            channel=channel,
            shifts=(Shift("infrastructure", ("pingou",), starts, starts + window),),
        ),
    )


def text_of(client: IrcClient, bot: str, since: int = 0, target: str | None = None) -> str:
    """Everything `bot` said to `client` (channels it shares and privately), one per line."""
    return "\n".join(m.text for m in bot_lines(client, bot, target, since))


def acknowledged(text: str) -> set[int]:
    """The incident numbers a reply acknowledges: `recorded incident #3 (…)` and the
    merged `recorded incidents #4–#9, #12 (pkgdb2), #13 (fas)`."""
    numbers: set[int] = set()
    for single in re.findall(r"recorded incident #(\d+)", text):
        numbers.add(int(single))
    for merged in re.findall(r"recorded incidents ((?:#\d+(?:–#\d+)?(?:, | \(\w+\),? ?))+)", text):
        for first, last in re.findall(r"#(\d+)(?:–#(\d+))?", merged):
            numbers.update(range(int(first), int(last or first) + 1))
    return numbers


def incident_numbers(client: IrcClient, bot: str, since: int = 0) -> set[int]:
    return {number for m in bot_lines(client, bot, since=since) for number in acknowledged(m.text)}


async def wait_incident_numbers(
    client: IrcClient,
    bot: str,
    wanted: set[int],
    since: int,
    timeout: float = REPLY_TIMEOUT,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
) -> None:
    """Wait until the bot's replies acknowledged every incident number in `wanted`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not wanted <= incident_numbers(client, bot, since):
        missing = sorted(wanted - incident_numbers(client, bot, since))
        await client.wait_for(
            lambda m: said_by(bot)(m) and "recorded incident #" in m.text,
            max(0.0, deadline - loop.time()),
            what=f"acks of incidents {missing}",
            since=since,
        )


def quits_of(client: IrcClient, nick: str, since: int = 0) -> list[Message]:
    return [m for m in client.messages[since:] if m.command == "QUIT" and nick_eq(m.nick, nick)]


def log_count(bot: BotProcess, text: str, log: str | None = None) -> int:
    return sum(text in line for line in (bot.log_text() if log is None else log).splitlines())


# -- 1. commands ------------------------------------------------------------------------------


async def test_every_command_answers_end_to_end_and_a_bad_call_gets_its_usage(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """Every SPEC §3 command written so far (deploy day's included; the admin-only
    `!firefight` refused to a non-admin, `!plans reload` is in the accounts test) answers
    through the real process and server: short replies in the channel, long ones
    privately with a pointer in the channel; a wrong call gets its usage line; irc3's
    own `!ping` is not there (no reply at all)."""
    net = inspircd_services
    chan = "#" + net.unique_name("cmds")
    bot = await inspircd_bot(
        net, make_account, bot_process, admin_channel=chan, deploybot_settings=MANY_COMMANDS
    )
    bot.write_plan(upcoming_plan())
    me = await joined(irc_client, net.relaxed_port, net.unique_name("alice"), [chan])
    await bot.start(me, chan)

    mark = me.mark()
    say = [
        "!ping",  # irc3's built-in: not loaded, so nothing answers it
        "!help",
        "!deploys",
        "!breaks",
        "!ready pkgdb2-2.0",
        "!deploy pkgdb2-2.0",
        "!help broke",
        "!deploy",
        "!take x",
    ]
    await me.send_many(f"PRIVMSG {chan} :{command}" for command in say)
    await wait_said(me, bot.nick, "— usage: !take N", since=mark, timeout=REPLY_TIMEOUT)
    # replies keep the order of the commands: the first is !help's, nothing came for !ping
    first = bot_lines(me, bot.nick, since=mark)[0].text
    assert first.startswith("commands: !deploys !deploy !breaks !ready !uses"), first
    assert "!plans (admin)" in first and "— !help COMMAND for one" in first
    assert "pong" not in text_of(me, bot.nick, mark).lower()
    in_channel = text_of(me, bot.nick, mark, target=chan)
    private = text_of(me, bot.nick, mark, target=me.nick)
    # !deploys and !breaks
    assert "pkgdb2-2.0 — pkgdb2 2.0 'pkgdb2 replaces pkgdb1'" in in_channel
    assert "(in 30 days) ⚠ 1 API break" in in_channel
    assert "⚠ API BREAK: /api/packager/acl — returns null instead of []" in in_channel
    assert "migration: treat null as an empty list" in in_channel
    # !ready and !deploy are long: privately, with a pointer in the channel
    assert f"{me.nick}: sent you 7 lines" in in_channel
    assert f"{me.nick}: sent you 8 lines" in in_channel
    assert "pkgdb2-2.0: READY (6/6)" in private
    assert "✔ roster-coverage" in private
    assert "owners: pingou; playbooks: groups/pkgdb.yml" in private
    assert "pkgdb2-2.0 roster (#pkgdb2-firefight), deploy starts " in private
    assert "| rel-eng: dgilmore whole window" in private
    assert "READY (6/6) — !ready pkgdb2-2.0 for the checklist" in private
    # !help COMMAND, and usage lines for wrong calls
    assert "usage: !broke [SERVICE] what broke — record an incident" in in_channel
    assert "example: !broke pkgdb2 the acl page returns 500" in in_channel
    assert "say which plan (its id, as !deploys shows) — usage: !deploy ID" in in_channel
    assert "incident number must be a number, got 'x' — usage: !take N" in in_channel

    mark = me.mark()
    say = [
        "!uses pkgdb2 compose scripts",
        "!consumers pkgdb2",
        "!broke pkgdb2 the acl page returns 500",
        "!take 1",
        "!note 1 rolled back the acl endpoint",
        "!fixed 1 works again",
        "!incident 1",
        "!incidents today",
        "!incidents",
        "!roster pkgdb2-2.0",
        "!oncall",
        f"!page {me.nick} the compose is failing",
        "!ack",
        "!digest",
        "!firefight open pkgdb2-2.0",
        "!page",
    ]
    await me.send_many(f"PRIVMSG {chan} :{command}" for command in say)
    await wait_said(me, bot.nick, "— usage: !page WHO message", since=mark, timeout=REPLY_TIMEOUT)
    in_channel = text_of(me, bot.nick, mark, target=chan)
    private = text_of(me, bot.nick, mark, target=me.nick)
    assert f"{me.nick}: registered as a consumer of pkgdb2 (compose scripts)" in in_channel
    assert "next: pkgdb2-2.0 — pkgdb2 2.0" in in_channel
    assert "2 known consumers of pkgdb2:" in in_channel
    assert (
        "rel-eng compose scripts (team rel-eng, contact dgilmore) — plan pkgdb2-2.0" in in_channel
    )
    assert f"{me.nick}: compose scripts (!uses, since " in in_channel
    assert "recorded incident #1 (pkgdb2); fix with !fixed 1" in in_channel
    assert f"incident #1 (pkgdb2) is now owned by {me.nick}" in in_channel
    assert "noted on incident #1 (pkgdb2)" in in_channel
    assert f"incident #1 (pkgdb2) fixed by {me.nick} after <1m; 0 open incidents left" in (
        in_channel
    )
    assert f"{me.nick}: sent you 6 lines" in in_channel
    assert "incident #1 FIXED (pkgdb2): the acl page returns 500" in private
    assert "rolled back the acl endpoint" in private
    assert "works again" in private
    assert "1 incident reported today (" in in_channel
    assert f"#1 [fixed] pkgdb2: the acl page returns 500 ({me.nick}, " in in_channel
    assert "no open incidents" in in_channel
    # deploy day: roster, on call, a page and its acknowledgement, the digest; an admin
    # command refused to a non-admin
    assert "pkgdb2-2.0 roster (#pkgdb2-firefight), deploy starts " in in_channel
    assert "rel-eng: dgilmore whole window" in in_channel
    assert "nobody is on shift now (no deploy is running; next: pkgdb2-2.0" in in_channel
    assert f"paged {me.nick} (#1)" in in_channel
    assert f"{me.nick}: page #1 from {me.nick}: the compose is failing — !ack 1" in in_channel
    assert f"[page #1 from {me.nick}] the compose is failing — reply !ack 1" in private
    assert f"{me.nick}: acknowledged page #1" in in_channel
    assert "incident digest " in private
    assert "not allowed: !firefight is for admins" in in_channel
    assert "internal error" not in text_of(me, bot.nick)
    await bot.stop(me)
    assert "Traceback" not in bot.log_text()


# -- 2. accounts, 3. SASL ----------------------------------------------------------------------


async def test_the_bot_logs_in_and_only_an_admin_account_may_reload_plans(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """The bot logs in with SASL (`sasl_username`, `sasl_password_file`): its JOIN and its
    replies carry its account. `!plans reload` is for the services account named in
    `admins`: the same nick connected without logging in, and another logged-in account,
    get "not allowed" and the reload does not run; the admin, logged in, gets "plans
    reloaded"."""
    net = inspircd_services
    chan = "#" + net.unique_name("admins")
    boss, other, own = await asyncio.gather(
        make_account("boss"), make_account("other"), make_account("deploybot")
    )
    bot = await inspircd_bot(
        net, make_account, bot_process, own, admin_channel=chan, admins=f"account:{boss.name}"
    )
    bot.write_plan(upcoming_plan())
    impostor, someone = await asyncio.gather(
        joined(irc_client, net.relaxed_port, boss.name, [chan]),
        joined(irc_client, net.relaxed_port, other.name, [chan], sasl=(other.name, other.password)),
    )
    assert impostor.account is None and someone.account == other.name
    assert {"account-tag", "extended-join"} <= impostor.caps
    since = impostor.mark()
    bot.spawn()
    join = await bot.wait_joined(impostor, chan, since=since)
    assert join.params[1] == own.name  # extended-join: JOIN #chan ACCOUNT :realname
    assert f"SASL: logged in as {own.name}" in bot.log_text()

    mark = impostor.mark()
    await impostor.privmsg(chan, "!plans reload")
    refused = await wait_said(impostor, bot.nick, "not allowed", since=mark, timeout=REPLY_TIMEOUT)
    assert refused.account == own.name  # account-tag on the bot's own messages
    await someone.privmsg(chan, "!plans reload")
    await impostor.wait_for(
        lambda m: (
            said_by(bot.nick, chan)(m)
            and text_of(impostor, bot.nick, mark).count("not allowed: !plans is for admins") == 2
        ),
        REPLY_TIMEOUT,
        what="a second 'not allowed'",
        since=mark,
    )
    assert "plans reloaded" not in text_of(impostor, bot.nick, mark)
    assert log_count(bot, "plans reloaded by") == 0  # the handler never ran
    await impostor.quit()

    admin = await joined(
        irc_client, net.relaxed_port, boss.name, [chan], sasl=(boss.name, boss.password)
    )
    mark = admin.mark()
    await admin.privmsg(chan, "!plans reload")
    reply = await wait_said(admin, bot.nick, "plans reloaded", since=mark, timeout=REPLY_TIMEOUT)
    assert reply.text == "plans reloaded: 1 plan in force"
    assert log_count(bot, "plans reloaded by") == 1
    assert f"({boss.name}):" in await bot.wait_log("plans reloaded by")
    await bot.stop(admin)


async def test_only_the_paged_account_or_an_admin_may_ack_a_page(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """A page sent while its target was logged in (and in a channel with the bot) is
    theirs by account: the same nick connected again without logging in cannot `!ack`
    it and is told which account it needs; logged in again, the target acks it; an
    admin account acks another page to that nick."""
    net = inspircd_services
    chan = "#" + net.unique_name("acks")
    boss, paged, own = await asyncio.gather(
        make_account("boss"), make_account("paged"), make_account("deploybot")
    )
    bot = await inspircd_bot(
        net, make_account, bot_process, own, admin_channel=chan, admins=f"account:{boss.name}"
    )
    bot.write_plan(upcoming_plan())
    admin = await joined(
        irc_client, net.relaxed_port, boss.name, [chan], sasl=(boss.name, boss.password)
    )
    since = admin.mark()
    bot.spawn()
    await bot.wait_joined(admin, chan, since=since)
    target = await joined(
        irc_client, net.relaxed_port, paged.name, [chan], sasl=(paged.name, paged.password)
    )
    mark = admin.mark()
    await admin.privmsg(chan, f"!page {paged.name} compose broken")
    await wait_said(admin, bot.nick, f"paged {paged.name} (#1)", since=mark, timeout=REPLY_TIMEOUT)
    await target.quit()

    impostor = await joined(irc_client, net.relaxed_port, paged.name, [chan])
    assert impostor.account is None
    mark = impostor.mark()
    await impostor.privmsg(chan, "!ack 1")
    refused = await wait_said(
        impostor, bot.nick, "page 1 is for", since=mark, timeout=REPLY_TIMEOUT
    )
    assert (
        f"page 1 is for {paged.name} logged in as {paged.name}; "
        f"log in to services as {paged.name} to acknowledge it"
    ) in refused.text
    await impostor.quit()

    target = await joined(
        irc_client, net.relaxed_port, paged.name, [chan], sasl=(paged.name, paged.password)
    )
    mark = target.mark()
    await target.privmsg(chan, "!ack 1")
    await wait_said(
        target, bot.nick, f"{paged.name}: acknowledged page #1", since=mark, timeout=REPLY_TIMEOUT
    )
    mark = admin.mark()
    await admin.privmsg(chan, f"!page {paged.name} still broken")
    await wait_said(admin, bot.nick, f"paged {paged.name} (#2)", since=mark, timeout=REPLY_TIMEOUT)
    await admin.privmsg(chan, "!ack 2")
    await wait_said(
        admin, bot.nick, f"{boss.name}: acknowledged page #2", since=mark, timeout=REPLY_TIMEOUT
    )
    await bot.stop(admin)


async def test_a_wrong_sasl_password_ends_the_process_with_an_error_and_no_reconnect_loop(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    bot_process: BotProcesses,
) -> None:
    """A refused SASL login is fatal: `deploybot run` exits non-zero within seconds, its
    log says the login failed and which settings to check, and it connected only once."""
    net = inspircd_services
    account = await make_account("deploybot")
    bot = bot_process(
        port=net.relaxed_port,
        nick=account.name,
        sasl=(account.name, "not-" + account.password),
        admin_channel="#" + net.unique_name("sasl"),
    )
    began = time.monotonic()
    bot.spawn()
    status = await bot.wait_exit(timeout=15)
    assert status != 0, bot.log_tail()
    assert time.monotonic() - began < 15
    log = bot.log_text()
    assert f"cannot log in to IRC: SASL login as {account.name} failed" in log, log
    assert "check sasl_username and sasl_password_file / sasl_password_env in [bot]" in log
    assert log_count(bot, "connecting to") == 1, log
    assert "reconnecting" not in log, log
    assert "Traceback" not in log, log


# -- 4. restarts ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_sigkill_loses_nothing_and_a_countdown_missed_while_dead_is_posted_late_once(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """Crash recovery (SIGKILL, then a new start): a countdown that came due while the
    process was dead is posted once at the next start, marked late (SPEC §4); incidents
    acknowledged before a SIGKILL are all listed by `!incidents` after it; and a further
    restart repeats no post (the ledger in the database says so, not memory)."""
    net = inspircd_services
    chan = "#" + net.unique_name("restart")
    account = await make_account("deploybot")
    me = await joined(irc_client, net.relaxed_port, net.unique_name("ann"), [chan])
    plan, due, offset = plan_due_in(10)
    bot = await inspircd_bot(
        net,
        make_account,
        bot_process,
        account,
        admin_channel=chan,
        countdowns=offset,
        deploybot_settings={"countdown_late_after": format_duration(LATE_AFTER)},
    )
    bot.write_plan(plan)

    # run 1: the countdown is scheduled, then the process is killed before it is due
    await bot.start(me, chan)
    await bot.kill()
    if datetime.now(UTC) >= due:
        pytest.fail("the bot took too long to start: the countdown came due while it ran")
    assert not bot_lines(me, bot.nick)
    # dead until the countdown is more than LATE_AFTER overdue (so it must be marked late)
    await asyncio.sleep((due + LATE_AFTER - datetime.now(UTC)).total_seconds() + 1.5)

    # run 2: the missed countdown, late; three incidents, acknowledged, then SIGKILL
    await bot.start(me, chan)
    post = await wait_said(me, bot.nick, "(late: due", target=chan, timeout=REPLY_TIMEOUT)
    assert post.text.startswith(f"(late: due {due:%H:%M}) ⚠ API BREAK")
    await wait_said(me, bot.nick, "pkgdb2 2.0 deploys in ", timeout=REPLY_TIMEOUT)
    mark = me.mark()
    await me.send_many(f"PRIVMSG {chan} :!broke pkgdb2 breakage number {n}" for n in (1, 2, 3))
    await wait_incident_numbers(me, bot.nick, {1, 2, 3}, since=mark)
    await bot.kill()

    # run 3: posts queued at start-up go out before any reply, so once !incidents is
    # answered, a repeated countdown would have been seen
    await bot.start(me, chan)
    mark = me.mark()
    await me.privmsg(chan, "!incidents")
    await wait_said(me, bot.nick, "3 open incidents:", since=mark, timeout=REPLY_TIMEOUT)
    await wait_said(me, bot.nick, "breakage number 3", since=mark, timeout=REPLY_TIMEOUT)
    listing = text_of(me, bot.nick, mark, target=chan)
    for n in (1, 2, 3):
        assert f"#{n} [open, no owner] pkgdb2: breakage number {n} ({me.nick}, " in listing
    everything = text_of(me, bot.nick)
    assert everything.count("(late: due") == 1, everything
    assert everything.count("pkgdb2 2.0 deploys") == 1, everything
    await bot.stop(me)
    claims = bot.read_db("SELECT key, late, skipped FROM countdown_posts")
    assert claims == [(f"pkgdb2-2.0@{offset}", 1, 0)]


# -- 5. the IRC server goes away ----------------------------------------------------------------


@pytest.mark.slow
async def test_after_the_server_restarts_the_bot_rejoins_all_channels_and_posts_what_came_due(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """(ngircd, no SASL.) The server is killed and started again on the same port: the bot
    reconnects by itself, is back in every channel — the admin and announce channels and
    the firefighting channel it joined at runtime when a deploy started — and a countdown
    that came due while the server was away is delivered after the rejoin."""
    server = ngircd_server
    admin_chan, announce, firefight = "#ops", "#announce", "#fas-firefight"
    countdown_plan, due, offset = plan_due_in(9, api_breaks=())
    deploy = fas_deploy_starting_soon()
    bot = bot_process(
        port=server.port,
        nick="deploybot",
        admin_channel=admin_chan,
        announce_channels=(announce,),
        countdowns=offset,
        # every retry 3 s (±20 %) later: time to bring the watcher back first
        bot_settings={"reconnect_delay": "3", "reconnect_max_delay": "3"},
    )
    bot.write_plan(countdown_plan)
    bot.write_plan(deploy)
    channels = [admin_chan, announce, firefight]
    watcher = await joined(irc_client, server.port, "watcher", channels)
    since = watcher.mark()
    bot.spawn()
    for channel in (admin_chan, announce):
        await bot.wait_joined(watcher, channel, since=since)
    # the deploy starts: the bot joins the firefighting channel at runtime
    await bot.wait_joined(watcher, firefight, since=since)
    log = bot.log_text()
    assert log.index("IRC ready in") < log.index("opening firefighting for fas-3.0"), log

    await server.akill()
    await watcher.wait_closed()
    if datetime.now(UTC) >= due:
        pytest.fail("the bot took too long to start: the countdown came due before the kill")
    posted = await bot.wait_log(f"countdown pkgdb2-2.0@{offset} posted", timeout=30)
    assert "late" not in posted  # the bot was up: on time, only the server was away
    after_post = bot.log_mark()
    retry = await bot.wait_log("reconnecting to", since=after_post, timeout=10)
    await server.astart()
    watcher = await joined(irc_client, server.port, "watcher", channels)
    assert not any(nick_eq(m.nick, bot.nick) for m in watcher.messages if m.command == "JOIN"), (
        f"the bot came back before the watcher (retry: {retry})"
    )

    joins = {channel: await bot.wait_joined(watcher, channel) for channel in channels}
    post = await wait_said(watcher, bot.nick, "pkgdb2 2.0 deploys in ", target=announce)
    assert watcher.messages.index(post) > watcher.messages.index(joins[announce])
    assert not post.text.startswith("(late"), post.text
    assert "IRC connection lost" in bot.log_text()
    await bot.stop(watcher)


async def health_of(port: int) -> dict[str, Any]:
    """The bot's /healthz document."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        document: dict[str, Any] = await response.json()
        return document


@pytest.mark.slow
async def test_services_away_after_a_server_restart_is_retried_until_sasl_is_back(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """atheme is stopped and inspircd restarted: the server offers no SASL until the
    services link again.  The bot never exits: it retries with backoff (a WARNING each
    time), /healthz says `"irc": {"connected": false, "why": "…no SASL…"}` and /metrics
    counts the failures; within 15 s of the services being back it is again in every
    channel it was in — admin, announce and the firefighting channel it joined at runtime —
    and says in the admin channel how long it was away and why."""
    net = inspircd_services
    admin_chan, announce, firefight = (
        "#" + net.unique_name(name) for name in ("away", "awayann", "awayfire")
    )
    deploy = fas_deploy_starting_soon(firefight)
    web_port = free_port()
    bot = await inspircd_bot(
        net,
        make_account,
        bot_process,
        admin_channel=admin_chan,
        announce_channels=(announce,),
        deploybot_settings={"web_port": str(web_port)},
    )
    bot.write_plan(deploy)
    channels = [admin_chan, announce, firefight]
    watcher = await joined(irc_client, net.relaxed_port, net.unique_name("awayw"), channels)
    since = watcher.mark()
    bot.spawn()
    for channel in channels:
        await bot.wait_joined(watcher, channel, since=since)

    await net.services.astop()
    await net.ircd.arestart(probe=False)
    failing = bot.log_mark()
    for _ in range(2):  # two attempts at least, each a WARNING
        line = await bot.wait_log("IRC login failed (will reconnect)", since=failing, timeout=30)
        assert "WARNING" in line and "offers no SASL" in line, line
        failing = bot.log_mark()
    health = await health_of(web_port)
    assert health["irc_connected"] is False and health["irc"]["connected"] is False
    assert "offers no SASL" in health["irc"]["why"], health
    assert health["ok"] is True
    assert bot.running

    watcher = await joined(irc_client, net.relaxed_port, net.unique_name("awayw"), channels)
    since = watcher.mark()
    await net.services.astart()  # returns once NickServ and SaslServ are linked
    back = time.monotonic()
    for channel in channels:
        await bot.wait_joined(watcher, channel, since=since, timeout=15)
    assert time.monotonic() - back < 15
    said = await wait_said(watcher, bot.nick, "⚠ back on IRC after", target=admin_chan)
    assert "connection lost" in said.text and "offers no SASL" in said.text, said.text
    health = await health_of(web_port)
    assert health["irc"] == {
        "connected": True,
        "why": None,
        "down_seconds": 0,
        "login_failures": health["irc"]["login_failures"],
    }
    assert health["irc"]["login_failures"] >= 2
    assert "cannot log in to IRC" not in bot.log_text()
    await bot.stop(watcher)


# -- 6. injection ------------------------------------------------------------------------------


def filler_splitting_before(
    render: Callable[[str], str], target: str, payload: str, limit: int = 480
) -> str:
    """A run of x's such that `render(filler + " " + payload)`, sent to `target`, is cut
    by the transport right before `payload`: a naive splitter would start a raw line with
    it (ours starts it with "… "). Fails if no filler length does that (the formats
    changed)."""
    shown = one_line(payload)
    for n in range(1, limit):
        filler = "x" * n
        lines = message_lines("PRIVMSG", target, render(f"{filler} {payload}"))
        bodies = (line.split(" :", 1)[1].removeprefix(CONTINUATION) for line in lines[1:])
        if any(body.startswith(shown) for body in bodies):
            return filler
    raise AssertionError(f"no filler makes the transport cut right before {payload!r}")


async def test_no_input_path_gets_a_raw_protocol_line_out_of_the_bot(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """Nothing that reaches the bot today makes it send a protocol line of someone else's
    making: a watcher in #x (a channel the bot is in) never sees "pwned" from it, whatever
    carries "…PRIVMSG #x :pwned":

    * plan values with CR LF, LF, CR, NUL or U+2028 (YAML escapes), in files present at
      start-up or written while the bot runs (the plan watcher reloads them) — refused,
      each with a file:line: key error in the admin channel;
    * a plan FILE NAME with CR LF — its error line carries the name, kept on one line;
    * plan values cut by the transport right before "PRIVMSG #x :pwned" (too long for one
      line) — each continuation is a PRIVMSG of its own to the right channel;
    * text typed on IRC with the controls the server lets through (VT, FF, FS, NEL, U+2028;
      it turns NUL into a space and ends lines at CR/LF itself), echoed by !uses,
      !incident and !consumers.
    """
    net = inspircd_services
    admin_chan = "#" + net.unique_name("admin")
    x = "#" + net.unique_name("x")
    payload = f"PRIVMSG {x} :pwned"
    bot = await inspircd_bot(
        net,
        make_account,
        bot_process,
        admin_channel=admin_chan,
        announce_channels=(x,),
        deploybot_settings=MANY_COMMANDS,
    )

    def with_title(title: str) -> Plan:
        return upcoming_plan(title=title)

    def with_change(change: str) -> Plan:
        return upcoming_plan(api_breaks=(ApiBreak("/api/acl", change, "read the docs"),))

    def with_consumer(name: str) -> Plan:
        return upcoming_plan(consumers=(Consumer(name=name, team="rel-eng", contact="dgilmore"),))

    now = datetime.now(UTC)
    title = filler_splitting_before(
        lambda t: plan_line(with_title(t), now, UTC), admin_chan, payload
    )
    change = filler_splitting_before(
        lambda c: break_line(with_change(c).api_breaks[0]), admin_chan, payload
    )
    consumer = filler_splitting_before(
        lambda n: f"{n} (team rel-eng, contact dgilmore) — plan pkgdb2-2.0", admin_chan, payload
    )
    bot.write_plan(
        upcoming_plan(
            title=f"{title} {payload}",
            api_breaks=(ApiBreak("/api/acl", f"{change} {payload}", "read the docs"),),
            consumers=(Consumer(name=f"{consumer} {payload}", team="rel-eng", contact="dgilmore"),),
        )
    )
    good_text = dump_plan(upcoming_plan(id="bad-0"))

    def bad_plan(n: int, old: str, new: str) -> str:
        text = good_text.replace('id: "bad-0"', f'id: "bad-{n}"').replace(old, new)
        assert text.count(new) == 1
        return text

    title_line = 'title: "pkgdb2 replaces pkgdb1"'
    # file name: (YAML text, key reported); the escapes are YAML's, in double quotes
    at_start = {"bad-1-crlf.yaml": (bad_plan(1, title_line, rf'title: "a\r\n{payload}"'), "title")}
    # written while the bot runs (the plan watcher reloads them); the last one has CR LF
    # in its FILE NAME
    evil_name = f"bad-5\r\n{payload}.yaml"
    at_runtime = {
        "bad-2-lf.yaml": (
            bad_plan(2, 'change: "returns null', rf'change: "a\n{payload} '),
            "api_breaks[0].change",
        ),
        "bad-3-nul.yaml": (
            bad_plan(3, 'name: "rel-eng compose scripts"', rf'name: "a\0{payload}"'),
            "consumers[0].name",
        ),
        "bad-4-u2028.yaml": (bad_plan(4, title_line, rf'title: "a\L{payload}"'), "title"),
        evil_name: (bad_plan(5, title_line, rf'title: "a\r{payload}"'), "title"),
    }
    for name, (text, _) in at_start.items():
        bot.write_plan(text, name)

    def assert_problem_line(message: Message, shown: str, key: str) -> None:
        assert re.fullmatch(
            re.escape(shown) + rf":\d+: {re.escape(key)}: contains a line break or NUL; "
            "write it on one line",
            message.text,
        ), message.text

    admin, xwatch = await asyncio.gather(
        joined(irc_client, net.relaxed_port, net.unique_name("adm"), [admin_chan]),
        joined(irc_client, net.relaxed_port, net.unique_name("xw"), [x]),
    )
    await bot.start(admin, admin_chan)
    await bot.wait_joined(xwatch, x)
    for name, (text, _) in at_runtime.items():
        bot.write_plan(text, name)

    # (1) refused plan files, reported in the admin channel at start-up...
    summary = await wait_said(admin, bot.nick, "plan problems: ", target=admin_chan)
    assert summary.text.startswith("plan problems: 1 plan in force")
    assert summary.text.endswith("; 1 problem")
    for name, (_, key) in at_start.items():
        assert_problem_line(
            await wait_said(admin, bot.nick, f"{name}:", target=admin_chan), name, key
        )

    # (2) typed on IRC, echoed back; (3) long plan values cut right before the payload;
    # (4) an incident text cut right before a CTCP ACTION (a /me by the bot, before)
    typed = f"typed\x0b{payload}\x0cand\x1cmore\x85then\u2028end"
    action = "\x01ACTION pwns the channel\x01"
    ctcp = filler_splitting_before(lambda t: f"incident #2 OPEN (pkgdb2): {t}", admin_chan, action)
    mark = admin.mark()
    commands = [
        f"!broke pkgdb2 {typed}",
        f"!uses pkgdb2 {typed}",
        "!incident 1",
        "!deploys",
        "!breaks pkgdb2-2.0",
        "!consumers pkgdb2",
        f"!broke pkgdb2 {ctcp} {action}",
        "!incident 2",
    ]
    await admin.send_many(f"PRIVMSG {admin_chan} :{command}" for command in commands)

    # (1) ...and after the watcher's reload, with the name holding CR LF on one line
    summary = await wait_said(admin, bot.nick, "; 5 problems", target=admin_chan, timeout=30)
    assert summary.text.startswith("plan problems: 1 plan in force")
    for name, (_, key) in at_runtime.items():
        shown = " ".join(name.split())  # what is left of CR LF on one line: a space
        problem = await wait_said(admin, bot.nick, f"{shown}:", target=admin_chan, timeout=30)
        assert_problem_line(problem, shown, key)

    await wait_said(admin, bot.nick, "(!uses, since", since=mark, timeout=REPLY_TIMEOUT)
    await wait_said(
        admin, bot.nick, f"{CONTINUATION}ACTION pwns", since=mark, timeout=REPLY_TIMEOUT
    )
    said = [m.text for m in bot_lines(admin, bot.nick, admin_chan, since=mark)]
    assert not [m.raw for m in admin.messages if "\x01" in m.raw and bot.nick in m.raw]
    # incident text, !uses ack and !consumers: each echo whole, on one line (VT/FF/FS blanked)
    echo = re.compile(re.escape(f"typed {payload} and more") + r"\W?then\W?end")
    assert sum(len(echo.findall(text)) for text in said) == 3, said
    cut = [text for text in said if text.startswith(CONTINUATION + payload)]
    assert not [text for text in said if text.startswith((payload, "!", "\x01"))], said
    for kind in (
        "(in 30 days) ⚠ 1 API break",  # the title, in !deploys (and !uses' "next:")
        "— migration: read the docs",  # the API-break change, in !breaks
        "(team rel-eng, contact dgilmore) — plan pkgdb2-2.0",  # the consumer, in !consumers
    ):
        assert any(kind in text for text in cut), (kind, said)

    # barrier in #x: the bot's output is one queue, so everything above went out before it
    mark = xwatch.mark()
    await xwatch.privmsg(x, "!help take")
    await wait_said(xwatch, bot.nick, "usage: !take N", since=mark, timeout=REPLY_TIMEOUT)
    assert not [m.raw for m in xwatch.messages if "pwned" in m.raw]
    assert [m.text for m in bot_lines(xwatch, bot.nick)] == [
        "usage: !take N — make incident N yours (you are working on it) · example: !take 1"
    ]
    await bot.stop(admin)


# -- 7. flood -----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_two_hundred_reports_from_twenty_clients_are_all_recorded_with_bounded_output(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """Twenty clients send ten `!broke` each within two seconds (flood control at its
    defaults: 5 commands in 10 s). The bot, on the stock class, records all 200 and
    acknowledges every number, is never disconnected (no Excess Flood, no reconnect), and
    its channel output is bounded: at most 5 acknowledgements per person in the channel
    (100 here, coalesced: at most 25 lines); each person's other five come privately in
    one NOTICE that is also the flood notice — 20 lines, one per person."""
    net = inspircd_services
    chan = "#" + net.unique_name("flood")
    people, each, limit = 20, 10, 5
    bot = await inspircd_bot(net, make_account, bot_process, admin_channel=chan, stock=True)
    bot.write_plan(upcoming_plan())
    reporters = await asyncio.gather(
        *(
            joined(irc_client, net.relaxed_port, net.unique_name(f"rep{i}-"), [chan])
            for i in range(people)
        )
    )
    watcher = reporters[0]
    await bot.start(watcher, chan)
    for reporter in reporters[1:]:
        await bot.wait_joined(reporter, chan)

    marks = {reporter: reporter.mark() for reporter in reporters}
    began = time.monotonic()
    bursts = {
        reporter: [
            f"PRIVMSG {chan} :!broke pkgdb2 {reporter.nick} failure {j}" for j in range(each)
        ]
        for reporter in reporters
    }
    await asyncio.gather(*(reporter.send_many(lines) for reporter, lines in bursts.items()))
    assert time.monotonic() - began < 2

    def notices(reporter: IrcClient) -> list[Message]:
        return [
            m
            for m in reporter.messages[marks[reporter] :]
            if m.command == "NOTICE" and nick_eq(m.nick, bot.nick)
        ]

    def heard() -> set[int]:
        return set().union(
            *(incident_numbers(r, bot.nick, marks[r]) for r in reporters),
            *(acknowledged(m.text) for r in reporters for m in notices(r)),
        )

    await eventually(
        lambda: heard() >= set(range(1, people * each + 1)), "every report acknowledged", 90
    )
    in_channel = bot_lines(watcher, bot.nick, chan, since=marks[watcher])
    channel_acks = [n for m in in_channel for n in acknowledged(m.text)]
    assert len(channel_acks) <= people * limit, len(channel_acks)
    assert len(in_channel) <= people * limit // 4, [m.text for m in in_channel]
    for reporter in reporters:
        assert not bot_lines(reporter, bot.nick, reporter.nick, since=marks[reporter])
        (notice,) = notices(reporter)
        assert notice.text.startswith("recorded incidents #"), notice.text
        assert "I ignore your commands for 1m" in notice.text, notice.text
        assert len(acknowledged(notice.text)) == each - limit
        assert not quits_of(reporter, bot.nick), "the bot left during the flood"
    log = bot.current_run_log()
    assert log_count(bot, "connecting to", log) == 1, log
    assert "connection lost" not in log and "reconnecting" not in log, log

    await bot.stop(watcher)
    quit_reasons = [m.text for m in quits_of(watcher, bot.nick)]
    assert quit_reasons == ["Quit: deploybot shutting down"], quit_reasons
    rows = bot.read_db("SELECT reporter_nick, count(*) FROM incidents GROUP BY reporter_nick")
    assert sorted(rows) == sorted((reporter.nick, each) for reporter in reporters)
    texts = {row[0] for row in bot.read_db("SELECT text FROM incidents")}
    assert len(texts) == people * each


@pytest.mark.slow
async def test_a_command_flood_gets_one_notice_then_silence_while_others_are_answered(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """20 `!deploys` from one person within two seconds (flood control at its defaults:
    5 commands in 10 s, then ignored for 1m): five answers, one private notice, then
    nothing more for that person — while someone else's `!deploys` and `!help take`
    after the flood are still answered."""
    net = inspircd_services
    chan = "#" + net.unique_name("cmdflood")
    bot = await inspircd_bot(net, make_account, bot_process, admin_channel=chan, stock=True)
    bot.write_plan(upcoming_plan())
    flooder, other = await asyncio.gather(
        joined(irc_client, net.relaxed_port, net.unique_name("flooder"), [chan]),
        joined(irc_client, net.relaxed_port, net.unique_name("calm"), [chan]),
    )
    await bot.start(other, chan)
    await bot.wait_joined(flooder, chan)

    mark = flooder.mark()
    began = time.monotonic()
    await flooder.send_many(f"PRIVMSG {chan} :!deploys" for _ in range(20))
    assert time.monotonic() - began < 2
    notice = await flooder.wait_for(
        lambda m: m.command == "NOTICE" and nick_eq(m.nick, bot.nick),
        REPLY_TIMEOUT,
        what="the flood notice",
        since=mark,
    )
    assert nick_eq(notice.target, flooder.nick)
    assert "more than 5 commands in 10s: I ignore your commands for 1m" in notice.text
    other_mark = other.mark()
    await other.privmsg(chan, "!deploys")
    await other.privmsg(chan, "!help take")
    await wait_said(other, bot.nick, "usage: !take N", since=other_mark, timeout=REPLY_TIMEOUT)
    await flooder.privmsg(chan, "!help broke")  # still ignored
    await other.privmsg(chan, "!help fixed")  # a barrier: answered after the flooder's
    await wait_said(other, bot.nick, "usage: !fixed N", since=other_mark, timeout=REPLY_TIMEOUT)
    answers = [m.text for m in bot_lines(flooder, bot.nick, since=mark)]
    for_flooder = [t for t in answers if "pkgdb2-2.0 — pkgdb2 2.0" in t]
    assert sum(t.count("pkgdb2-2.0 — pkgdb2 2.0") for t in for_flooder) == 5 + 1, answers
    assert not any("usage: !broke" in t for t in answers), answers
    notices = [
        m for m in flooder.messages[mark:] if m.command == "NOTICE" and nick_eq(m.nick, bot.nick)
    ]
    assert len(notices) == 1
    assert "flood: mask:" in bot.log_text()
    await bot.stop(other)


# -- 8. SIGTERM ---------------------------------------------------------------------------------


async def test_sigterm_quits_irc_closes_the_store_and_exits_0(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """SIGTERM: the bot sends QUIT (watchers see it leave), closes the database cleanly
    (no WAL file left, every incident in it) and exits with status 0."""
    net = inspircd_services
    chan = "#" + net.unique_name("term")
    bot = await inspircd_bot(net, make_account, bot_process, admin_channel=chan)
    bot.write_plan(upcoming_plan())
    me = await joined(irc_client, net.relaxed_port, net.unique_name("term"), [chan])
    await bot.start(me, chan)
    mark = me.mark()
    await me.send_many(f"PRIVMSG {chan} :!broke pkgdb2 problem {n}" for n in (1, 2))
    await wait_incident_numbers(me, bot.nick, {1, 2}, since=mark)
    # open: the write-ahead log is in use
    assert Path(f"{bot.database}-wal").exists()  # noqa: ASYNC240 (one stat of a local file)

    await bot.stop(me)  # asserts exit status 0 and that `me` saw the QUIT
    assert [m.text for m in quits_of(me, bot.nick)] == ["Quit: deploybot shutting down"]
    log = bot.current_run_log()
    assert log.rstrip().endswith("stopped"), log
    assert "Traceback" not in log and "ERROR" not in log, log
    # closed: checkpointed and removed
    assert not Path(f"{bot.database}-wal").exists()  # noqa: ASYNC240 (one stat of a local file)
    rows = bot.read_db("SELECT number, text FROM incidents ORDER BY number")
    assert rows == [(1, "problem 1"), (2, "problem 2")]
