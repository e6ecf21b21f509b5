"""End to end: a simulated deploy day (SPEC §3 deploy-day commands, §4 deploy day and
digest), with `deploybot run bot.ini` as a real process against a real IRC server.

The bot is on inspircd's RELAXED client port without output pacing, logged in with SASL
to a NickServ account on atheme (`inspircd_bot`, as in tests/test_bot_e2e.py, whose flood
test covers the stock class); the people of the deploy are test clients on the relaxed
port too. Times are real: the window starts some 8 s after the bot, lasts half a minute
or less, and the digest is due a few seconds after it ends (`digest_time` as HH:MM:SS,
UTC); `page_escalate_after` is some ten seconds.

The firefighting channel is created by a test client (who is its operator) before the bot
joins it: that client sets `-t` so that the bot, not an operator there, may set the topic.
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from markdown_it import MarkdownIt

from deploybot.cli import main as cli_main
from deploybot.deployday.record import deploy_record
from deploybot.plans.files import load_paths
from deploybot.plans.freezes import FreezeStanding
from deploybot.plans.model import Consumer, Plan, Roster, Shift
from deploybot.store import Store
from tests.botprocess import (
    BotProcess,
    BotProcesses,
    bot_lines,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    inspircd_bot,
    nick_eq,
    wait_said,
)
from tests.ircd.client import IrcClient, Message
from tests.ircd.fixtures import Account, IrcClientFactory, MakeAccount
from tests.ircd.servers import InspircdWithServices
from tests.planfactory import make_plan, on_shift_plan
from tests.test_postmortem import HEADINGS

pytestmark = pytest.mark.irc

LEAD = timedelta(seconds=8)  # from spawning the bot to the start of the window
PACE_TIMEOUT = 40.0  # generous, for a loaded machine: the bot answers at once when it can
PAGE_PREFIX = "[page #"


# -- helpers ---------------------------------------------------------------------------------


async def deploy_day_bot(
    net: InspircdWithServices,
    make_account: MakeAccount,
    bot_process: BotProcesses,
    account: Account,
    admin_channel: str,
    *,
    window: timedelta,
    escalate_after: timedelta,
    digest_delay: timedelta,
    stock: bool = False,
) -> tuple[BotProcess, datetime, datetime, datetime]:
    """The bot (not started) on the relaxed port (`stock`: the stock port with the default
    pacing), logged in to `account`, with the one
    countdown "0", pages escalated `escalate_after` after they are sent and the digest due
    `digest_delay` after a `window` that starts LEAD from now; and that window's start, its
    end and the digest's time."""
    when = (datetime.now(UTC) + LEAD).replace(microsecond=0)
    end = when + window
    digest_at = end + digest_delay
    bot = await inspircd_bot(
        net,
        make_account,
        bot_process,
        account,
        stock=stock,
        admin_channel=admin_channel,
        countdowns="0",
        deploybot_settings={
            "page_escalate_after": f"{escalate_after.seconds}s",
            "digest_time": f"{digest_at.astimezone(UTC):%H:%M:%S}",
        },
    )
    return bot, when, end, digest_at


async def same_day_ahead(span: timedelta) -> None:
    """Wait past midnight UTC if the next `span` would cross it: the test's deploy and
    digest must fall on one day (the digest is per day)."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if now + span >= midnight:
        await asyncio.sleep((midnight - now).total_seconds() + 1)


async def connect_all(irc_client: IrcClientFactory, port: int, nicks: list[str]) -> list[IrcClient]:
    """Connect one client per nick, at once (inspircd registers clients once a second)."""
    return list(await asyncio.gather(*(irc_client(port, nick) for nick in nicks)))


async def create_channel(op: IrcClient, channel: str) -> None:
    """`op` creates `channel` (and is its operator) and lets anyone set the topic (-t)."""
    await op.join(channel)
    since = op.mark()
    await op.send(f"MODE {channel} -t")
    await op.wait_for(
        lambda m: m.command == "MODE" and nick_eq(m.target, channel) and "-t" in m.params,
        5.0,
        what=f"MODE {channel} -t",
        since=since,
    )


async def join_all(clients: list[IrcClient], *channels: str) -> None:
    for channel in channels:
        await asyncio.gather(*(client.join(channel) for client in clients))


def deploy_plan(
    when: datetime,
    window: timedelta,
    channel: str,
    *,
    infra: str,
    releng: str,
    escalation: str,
    contact: str | None = None,
) -> Plan:
    """The factory's pkgdb2 plan (one API break) with a small roster: `infra` on the
    infrastructure shift and `releng` on the rel-eng shift, both the whole window; a
    consumer whose contact is `contact` (if given); `escalation` as the escalation list."""
    end = when + window
    consumers = (Consumer("compose scripts", "rel-eng", contact),) if contact else ()
    return make_plan(
        when=when,
        duration=window,
        teams=(),
        consumers=consumers,
        roster=Roster(
            channel=channel,
            shifts=(
                Shift("infrastructure", (infra,), when, end),
                Shift("rel-eng", (releng,), when, end),
            ),
            escalation=(escalation,),
        ),
    )


def private_pages(client: IrcClient, bot: str, since: int = 0) -> list[str]:
    """The texts of the "[page #…" private messages `client` got from the bot."""
    return [
        m.text for m in bot_lines(client, bot, client.nick, since) if m.text.startswith(PAGE_PREFIX)
    ]


def page_number(text: str) -> int:
    match = re.match(r"\[page #(\d+)", text)
    assert match, text
    return int(match[1])


def highlights(m: Message, nick: str) -> bool:
    """Whether a bot line `a b c: text` names `nick` before its colon."""
    head, sep, _ = m.text.partition(": ")
    return bool(sep) and any(nick_eq(word, nick) for word in head.split())


async def wait_highlight(
    client: IrcClient,
    bot: str,
    channel: str,
    text: str,
    timeout: float = PACE_TIMEOUT,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
) -> Message:
    """A line from the bot in `channel` containing `text` that highlights `client`."""
    for m in bot_lines(client, bot, channel):
        if text in m.text and highlights(m, client.nick):
            return m
    return await client.wait_for(
        lambda m: (
            m.command == "PRIVMSG"
            and nick_eq(m.nick, bot)
            and nick_eq(m.target, channel)
            and text in m.text
            and highlights(m, client.nick)
        ),
        timeout,
        what=f"a highlight of {client.nick} in {channel} containing {text!r}",
    )


async def wait_bot_event(
    client: IrcClient,
    bot: str,
    command: str,
    channel: str,
    *,
    since: int = 0,
    timeout: float,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
) -> Message:
    """The bot's next TOPIC or PART (`command`) in `channel` as seen by `client`."""
    return await client.wait_for(
        lambda m: m.command == command and nick_eq(m.nick, bot) and nick_eq(m.target, channel),
        timeout,
        what=f"{command} {channel} by {bot}",
        since=since,
    )


def channel_texts(client: IrcClient, bot: str, channel: str, text: str) -> list[str]:
    return [m.text for m in bot_lines(client, bot, channel) if text in m.text]


def joins_of(client: IrcClient, nick: str, channel: str) -> int:
    return sum(
        1
        for m in client.messages
        if m.command == "JOIN" and nick_eq(m.nick, nick) and nick_eq(m.target, channel)
    )


def seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


# -- 1. a whole deploy day ------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_deploy_day_from_the_opening_to_the_digest(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """A deploy day on a real server, as people see it. At `when` the bot joins the
    firefighting channel, sets its topic (the deploy, its API break, how to report with
    `!broke`, who is on shift) and posts the API break with its migration; the two roster
    people and the consumer's contact each get a highlight in the firefighting channel
    and in the admin channel and a private "[page #N] …". The two who `!ack` are never
    paged again; the page nobody acknowledged is repeated privately to its target
    `page_escalate_after` later — on time, not at the next periodic sweep — the
    escalation list gets a private page of its own and "escalating" is said in the
    firefighting channel. `!broke SERVICE text` is linked to the deploy (the reply names
    it) and highlights the people on shift; `!take` and `!fixed` work on it. At the end of
    the window the channel gets a summary (1 incident, 1 fixed; 4 pages, 2 acknowledged),
    its topic says closed and the bot leaves. At `digest_time` the short digest (1
    reported, 1 fixed, ack and repair medians) comes to the admin channel once, and
    `!digest` sends the full form privately."""
    net = inspircd_services
    window, escalate_after, digest_delay = (
        timedelta(seconds=30),
        timedelta(seconds=10),
        timedelta(seconds=5),
    )
    await same_day_ahead(LEAD + window + digest_delay + timedelta(seconds=60))
    admin_chan, fire_chan = "#" + net.unique_name("dd-admin"), "#" + net.unique_name("dd-fire")
    account = await make_account("deploybot")
    infra, releng, contact, boss = await connect_all(
        irc_client,
        net.relaxed_port,
        [net.unique_name(role) for role in ("infra", "releng", "contact", "boss")],
    )
    people = [infra, releng, contact, boss]
    await infra.join(admin_chan)
    await create_channel(infra, fire_chan)
    await join_all([releng, contact, boss], admin_chan, fire_chan)

    bot, when, end, digest_at = await deploy_day_bot(
        net,
        make_account,
        bot_process,
        account,
        admin_chan,
        window=window,
        escalate_after=escalate_after,
        digest_delay=digest_delay,
    )
    bot.write_plan(
        deploy_plan(
            when,
            window,
            fire_chan,
            infra=infra.nick,
            releng=releng.nick,
            escalation=boss.nick,
            contact=contact.nick,
        )
    )
    b = account.name
    await bot.start(infra, admin_chan)
    assert datetime.now(UTC) < when, "the bot took too long to start: the window had begun"

    # -- the opening: channel, topic, API break -------------------------------------------
    await bot.wait_joined(infra, fire_chan, timeout=seconds_until(when) + PACE_TIMEOUT)
    topic = await wait_bot_event(infra, b, "TOPIC", fire_chan, timeout=PACE_TIMEOUT)
    assert topic.text.startswith("pkgdb2-2.0: pkgdb2 2.0 deploy "), topic.text
    assert "⚠ 1 API break: !breaks pkgdb2-2.0" in topic.text
    assert "report: !broke pkgdb2 what broke" in topic.text
    assert topic.text.endswith(f"on shift: {infra.nick} {releng.nick}"), topic.text
    started = await wait_said(infra, b, "pkgdb2 2.0 deploy started (", target=fire_chan)
    assert "report problems: !broke pkgdb2 what broke" in started.text
    api_break = await wait_said(infra, b, "⚠ API BREAK: /api/packager/acl", target=fire_chan)
    assert api_break.text.endswith("— migration: treat null as an empty list"), api_break.text

    # -- pages: private, then highlights in both channels; two of the three !ack at once ---
    pages: dict[str, Message] = {}
    whys = {
        infra.nick: "infrastructure shift",
        releng.nick: "rel-eng shift",
        contact.nick: "consumer: compose scripts",
    }
    for client in (releng, contact, infra):
        page = await wait_said(client, b, PAGE_PREFIX, target=client.nick, timeout=PACE_TIMEOUT)
        pages[client.nick] = page
        n = page_number(page.text)
        assert page.text == (
            f"[page #{n}] deploy of pkgdb2 2.0 started: firefighting in {fire_chan} "
            f"({whys[client.nick]}); reply !ack {n}"
        )
        if client is not infra:
            await client.privmsg(fire_chan, "!ack")
    infra_page = page_number(pages[infra.nick].text)
    assert sorted(page_number(page.text) for page in pages.values()) == [1, 2, 3]
    for client in (infra, releng, contact):
        for channel in (fire_chan, admin_chan):
            await wait_highlight(
                client, b, channel, f"pkgdb2 2.0 deploy started — join {fire_chan}; !ack"
            )
    for client in (releng, contact):
        n = page_number(pages[client.nick].text)
        await wait_said(
            client, b, f"{client.nick}: acknowledged page #{n}", target=fire_chan, timeout=60
        )
    await wait_said(infra, b, "pkgdb2 2.0 deploying now", target=admin_chan)  # countdown "0"

    # -- escalation of the page nobody acknowledged ----------------------------------------
    repeated = await wait_said(
        infra,
        b,
        f"[page #{infra_page}, repeated]",
        target=infra.nick,
        timeout=seconds_until(when + escalate_after) + PACE_TIMEOUT,
    )
    late_by = datetime.now(UTC) - (when + escalate_after)
    # on time: the periodic sweep (every 30 s from start-up) would only see it ~14 s late
    assert timedelta(0) <= late_by < timedelta(seconds=6), late_by
    assert "not acknowledged after <1m; reply !ack" in repeated.text
    escalation = await wait_said(boss, b, PAGE_PREFIX, target=boss.nick, timeout=PACE_TIMEOUT)
    n = page_number(escalation.text)
    assert escalation.text == (
        f"[page #{n}] page #{infra_page} to {infra.nick} not acknowledged after <1m: deploy of "
        f"pkgdb2 2.0 started: firefighting in {fire_chan} — reply !ack {n}"
    )
    said = await wait_said(boss, b, "escalating to", target=fire_chan, timeout=PACE_TIMEOUT)
    assert said.text == (
        f"⚠ page #{infra_page} to {infra.nick} not acknowledged after <1m — "
        f"escalating to {boss.nick}"
    )

    # -- an incident during the window -------------------------------------------------------
    await contact.privmsg(fire_chan, "!broke pkgdb2 the compose fails on /api/packager/acl")
    recorded = await wait_said(contact, b, "recorded incident #1", target=fire_chan, timeout=60)
    assert recorded.text == (
        "recorded incident #1 (pkgdb2, deploy pkgdb2-2.0 +0 min); fix with !fixed 1"
    )
    for client in (infra, releng):
        alert = await wait_said(client, b, "⚠ incident #1 (pkgdb2, +0 min)", target=fire_chan)
        assert alert.text == (
            "⚠ incident #1 (pkgdb2, +0 min): the compose fails on /api/packager/acl — "
            f"on shift: {infra.nick} {releng.nick}; !take 1"
        )
    await infra.send_many(
        f"PRIVMSG {fire_chan} :{command}" for command in ("!take 1", "!fixed 1 rolled back")
    )
    await wait_said(infra, b, f"incident #1 (pkgdb2) is now owned by {infra.nick}", timeout=60)
    await wait_said(
        infra,
        b,
        f"incident #1 (pkgdb2) fixed by {infra.nick} after <1m; 0 open incidents left",
        target=fire_chan,
        timeout=60,
    )
    assert datetime.now(UTC) < end, "too slow: the window ended before the incident was fixed"

    # -- the end of the window ---------------------------------------------------------------
    summary = await wait_said(
        infra,
        b,
        "pkgdb2 2.0 firefighting closed (end of the deploy window)",
        target=fire_chan,
        timeout=seconds_until(end) + PACE_TIMEOUT,
    )
    assert summary.text.endswith(
        ": 1 incident reported, 1 fixed, 0 open; 4 pages, 2 acknowledged"
    ), summary.text
    closed = await wait_bot_event(infra, b, "TOPIC", fire_chan, timeout=PACE_TIMEOUT)
    assert closed.text.startswith(f"closed: pkgdb2 2.0 deploy ended {end:%H:%M}"), closed.text
    assert closed.text.endswith("— 1 incident"), closed.text
    part = await wait_bot_event(infra, b, "PART", fire_chan, timeout=PACE_TIMEOUT)
    assert part.text == "pkgdb2 2.0 firefighting closed (end of the deploy window)"

    # -- the digest at digest_time, and !digest ----------------------------------------------
    header = await wait_said(
        infra,
        b,
        "incident digest ",
        target=admin_chan,
        timeout=seconds_until(digest_at) + PACE_TIMEOUT,
    )
    assert datetime.now(UTC) >= digest_at
    day = f"{when:%a %Y-%m-%d}"
    assert re.fullmatch(
        rf"incident digest {day} \(UTC\) as of \d\d:\d\d UTC: "
        "1 deploy, 1 reported, 1 fixed, 0 open",
        header.text,
    ), header.text
    section = await wait_said(infra, b, "pkgdb2-2.0: ", target=admin_chan)
    # SPEC §4: the day's firefighting channel gets the digest too. The bot left it at the
    # end of the window (and a +n channel refuses messages from outside), so it visits.
    fire_copy = await wait_said(
        infra, b, "incident digest ", target=fire_chan, timeout=PACE_TIMEOUT
    )
    assert fire_copy.text == header.text
    assert re.fullmatch(
        r"pkgdb2-2\.0: 1 reported, 1 fixed, 0 open · ack median (<1m|\d+m) · "
        r"repair median (<1m|\d+m)",
        section.text,
    ), section.text

    mark = boss.mark()
    await boss.privmsg(admin_chan, "!digest")
    await wait_said(boss, b, f"{boss.nick}: sent you ", target=admin_chan, since=mark, timeout=60)
    await wait_said(boss, b, "open: none", target=boss.nick, since=mark, timeout=60)  # the last
    full = "\n".join(m.text for m in bot_lines(boss, b, boss.nick, since=mark))
    assert full.startswith(f"incident digest {day} (UTC) as of "), full
    assert ": 1 reported, 1 fixed, 0 open at " in full
    assert "time to acknowledge: median <1m, mean <1m (1 of 1 acknowledged)" in full
    assert "time to repair: median <1m, mean <1m (1 of 1 fixed)" in full
    assert "slowest: #1 pkgdb2: the compose fails on /api/packager/acl — fixed after" in full
    assert "reporters by team: rel-eng 1" in full
    assert "open: none" in full

    # -- nothing was said twice --------------------------------------------------------------
    assert len(channel_texts(infra, b, admin_chan, "incident digest ")) == 1
    assert [len(private_pages(client, b)) for client in people] == [2, 1, 1, 1]
    assert len(channel_texts(infra, b, fire_chan, "escalating to")) == 1
    assert len(channel_texts(infra, b, fire_chan, "deploy started (")) == 1
    await bot.stop(infra)
    assert "Traceback" not in bot.log_text()
    check_post_mortem(bot, when, end, infra=infra.nick, releng=releng.nick, boss=boss.nick)


def check_post_mortem(
    bot: BotProcess, when: datetime, end: datetime, *, infra: str, releng: str, boss: str
) -> None:
    """The post-mortem draft of the recorded day (issue 13): its timeline holds every
    event in order at the time the database holds for it, and `deploybot postmortem`'s
    Markdown reads back with its sections and those lines."""
    with Store.open(bot.database, create=False) as store:
        plan = store_plan(bot)
        record = deploy_record(store, plan, FreezeStanding(plan.id), datetime.now(UTC))
        pages = {p.target_nick.lower(): p for p in store.list_pages(plan_id=plan.id)}
        (incident,) = store.list_incidents(deploy_id=plan.id)
    day = [m for m in record.timeline if not m.day_only and m.kind != "countdown"]
    assert [m.at for m in day] == sorted(m.at for m in day)
    texts = [m.text for m in day]

    def at(prefix: str) -> int:
        return next(i for i, text in enumerate(texts) if text.startswith(prefix))

    opened, closed = at("firefighting opened in "), at("firefighting closed in ")
    escalated = at(f"page #{pages[infra.lower()].number} to {infra} not acknowledged")
    boss_page = at(f"page #{pages[boss.lower()].number} to {boss}")
    reported, taken, fixed = at("#1 reported (pkgdb2): "), at("#1 taken"), at("#1 fixed")
    acks = [at(f"page #{pages[n.lower()].number} acknowledged") for n in (releng,)]
    assert opened < min(acks) and opened < escalated <= boss_page < reported < taken < fixed
    assert fixed < closed == len(texts) - 1
    assert when - timedelta(seconds=2) <= day[opened].at <= when + timedelta(seconds=10)
    assert end <= day[closed].at <= end + timedelta(seconds=40)
    assert day[escalated].at == pages[infra.lower()].escalated_at
    assert day[reported].at == incident.reported_at and day[fixed].at == incident.fixed_at
    assert (day[reported].who, day[fixed].who) == (incident.reporter_nick, infra)
    out = io.StringIO()
    assert cli_main(["postmortem", plan.id, "--config", str(bot.ini)], out) == 0
    draft = out.getvalue()
    tokens = MarkdownIt("commonmark").parse(draft)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[1:] == HEADINGS[1:]
    assert "- Incidents: 1 reported, 1 fixed, 0 open." in draft
    assert "observed: incident #1." in draft  # the report names /api/packager/acl
    stamp = f"{incident.reported_at:%Y-%m-%d %H:%M} UTC"
    assert f"- **{stamp}** — {incident.reporter_nick}: #1 reported (pkgdb2): " in draft


def store_plan(bot: BotProcess) -> Plan:
    """The plan the bot ran, read back from its plans directory."""
    (plan,) = load_paths([bot.plans_dir]).plans
    return plan


# -- 2. a crash in the middle of the window -----------------------------------------------------


@pytest.mark.slow
async def test_a_crash_mid_window_repeats_no_page_and_the_digest_comes_once(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """SIGKILL during the window, after the opening pages (one acknowledged, one not yet
    due for escalation), then a new start: the bot is back in the firefighting channel,
    nobody is paged again (no "[page #" other than the escalation's repeat), the pending
    escalation fires once, on time, from the restarted process; the window still closes
    with its summary; the digest comes to the admin channel once at `digest_time`, and a
    further restart after it neither repeats it, nor the countdown, nor rejoins the closed
    firefighting channel."""
    net = inspircd_services
    window, escalate_after, digest_delay = (
        timedelta(seconds=22),
        timedelta(seconds=12),
        timedelta(seconds=4),
    )
    await same_day_ahead(LEAD + window + digest_delay + timedelta(seconds=60))
    admin_chan, fire_chan = "#" + net.unique_name("rs-admin"), "#" + net.unique_name("rs-fire")
    account = await make_account("deploybot")
    infra, releng, boss = await connect_all(
        irc_client,
        net.relaxed_port,
        [net.unique_name(role) for role in ("infra", "releng", "boss")],
    )
    await infra.join(admin_chan)
    await create_channel(infra, fire_chan)
    await join_all([releng, boss], admin_chan, fire_chan)

    bot, when, end, digest_at = await deploy_day_bot(
        net,
        make_account,
        bot_process,
        account,
        admin_chan,
        window=window,
        escalate_after=escalate_after,
        digest_delay=digest_delay,
    )
    bot.write_plan(
        deploy_plan(
            when, window, fire_chan, infra=infra.nick, releng=releng.nick, escalation=boss.nick
        )
    )
    b = account.name

    # run 1: the opening; rel-eng acknowledges; killed before the other page escalates
    await bot.start(infra, admin_chan)
    await bot.wait_joined(infra, fire_chan, timeout=seconds_until(when) + PACE_TIMEOUT)
    releng_page = await wait_said(releng, b, PAGE_PREFIX, target=releng.nick, timeout=PACE_TIMEOUT)
    await releng.privmsg(fire_chan, "!ack")
    infra_page = page_number(
        (await wait_said(infra, b, PAGE_PREFIX, target=infra.nick, timeout=PACE_TIMEOUT)).text
    )
    for channel in (fire_chan, admin_chan):
        await wait_highlight(infra, b, channel, "pkgdb2 2.0 deploy started — join")
    await wait_said(
        releng,
        b,
        f"acknowledged page #{page_number(releng_page.text)}",
        target=fire_chan,
        timeout=60,
    )
    await bot.kill()
    if datetime.now(UTC) >= when + escalate_after - timedelta(seconds=3):
        pytest.fail("the bot was too slow: the page came due for escalation before the kill")
    rows = bot.read_db(
        "SELECT target_nick, acked_at IS NOT NULL, escalated_at IS NOT NULL FROM pages"
        " ORDER BY number",
    )
    assert rows == [(infra.nick, 0, 0), (releng.nick, 1, 0)], rows

    # run 2: back in the channel; no new pages; the escalation, on time, once
    since = infra.mark()
    await bot.start(infra, admin_chan)
    await bot.wait_joined(infra, fire_chan, since=since)
    assert "firefighting for pkgdb2-2.0 already open: rejoined" in bot.current_run_log()
    repeated = await wait_said(
        infra,
        b,
        f"[page #{infra_page}, repeated]",
        target=infra.nick,
        timeout=seconds_until(when + escalate_after) + PACE_TIMEOUT,
    )
    late_by = datetime.now(UTC) - (when + escalate_after)
    # on time, from the restarted process (its periodic sweep first runs after the window)
    assert timedelta(0) <= late_by < timedelta(seconds=10), late_by
    assert "not acknowledged after <1m" in repeated.text
    escalation = await wait_said(boss, b, PAGE_PREFIX, target=boss.nick, timeout=PACE_TIMEOUT)
    assert f"page #{infra_page} to {infra.nick} not acknowledged" in escalation.text
    await wait_said(infra, b, f"escalating to {boss.nick}", target=fire_chan, timeout=PACE_TIMEOUT)

    # the window closes, then the digest
    summary = await wait_said(
        infra,
        b,
        "pkgdb2 2.0 firefighting closed (end of the deploy window)",
        target=fire_chan,
        timeout=seconds_until(end) + PACE_TIMEOUT,
    )
    assert summary.text.endswith(": 0 incidents reported, 0 fixed, 0 open; 3 pages, 1 acknowledged")
    await wait_bot_event(infra, b, "PART", fire_chan, timeout=PACE_TIMEOUT)
    visit = infra.mark()  # what comes after the end of the window
    header = await wait_said(
        infra,
        b,
        "incident digest ",
        target=admin_chan,
        timeout=seconds_until(digest_at) + PACE_TIMEOUT,
    )
    assert header.text.endswith(": 1 deploy, no incidents"), header.text
    await wait_said(infra, b, "pkgdb2-2.0: no incidents", target=admin_chan)
    # …and its copy in the day's firefighting channel, by a visit (join, post, part): the
    # bot is stopped only once the visit is over (stopping it between the admin channel's
    # lines and the visit's JOIN made the count below depend on timing).
    fire_copy = await wait_said(infra, b, "incident digest ", target=fire_chan, since=visit)
    assert fire_copy.text == header.text
    await wait_bot_event(infra, b, "PART", fire_chan, since=visit, timeout=PACE_TIMEOUT)

    # run 3, after the digest: nothing is repeated. Posts queued at start-up go out before
    # any reply, so once !oncall is answered, a repeated post would have been seen.
    # The joins so far: the opening, the rejoin after the crash, the digest's visit.
    joins_before = joins_of(infra, b, fire_chan)
    assert joins_before == 3
    await bot.stop(infra)
    await bot.start(infra, admin_chan)
    mark = infra.mark()
    await infra.privmsg(admin_chan, "!oncall")
    await wait_said(infra, b, "nobody is on shift now", target=admin_chan, since=mark, timeout=60)

    assert len(channel_texts(infra, b, admin_chan, "incident digest ")) == 1
    assert len(channel_texts(infra, b, fire_chan, "incident digest ")) == 1
    assert len(channel_texts(infra, b, admin_chan, "pkgdb2 2.0 deploying now")) == 1
    assert [len(private_pages(client, b)) for client in (infra, releng, boss)] == [2, 1, 1]
    assert len(channel_texts(infra, b, fire_chan, "deploy started (")) == 1
    assert len(channel_texts(infra, b, admin_chan, "deploy started —")) == 1
    assert len(channel_texts(infra, b, fire_chan, "escalating to")) == 1
    assert len(channel_texts(infra, b, fire_chan, "firefighting closed")) == 1
    assert joins_of(infra, b, fire_chan) == joins_before  # run 3: no rejoin of the closed one
    rows = bot.read_db("SELECT count(*) FROM pages WHERE escalated_at IS NOT NULL")
    assert rows == [(1,)]
    await bot.stop(infra)
    assert "Traceback" not in bot.log_text()


# -- 3. replies before the opening burst ----------------------------------------------------------


async def test_a_report_is_answered_within_2s_while_pages_to_ten_people_wait(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """The opening of a deploy with ten people on shift queues the topic, the API break,
    ten private pages and their highlights: a dozen seconds of output on the stock class.
    A `!broke` sent as soon as the bot joins the channel is answered within 2 s — command replies go
    before queued posts — while pages are still arriving after the answer."""
    net = inspircd_services
    window = timedelta(seconds=60)
    admin_chan, fire_chan = "#" + net.unique_name("rp-admin"), "#" + net.unique_name("rp-fire")
    account = await make_account("deploybot")
    people = await connect_all(
        irc_client, net.relaxed_port, [net.unique_name(f"oncall{i}") for i in range(10)]
    )
    reporter = people[0]
    await reporter.join(admin_chan)
    await create_channel(reporter, fire_chan)
    bot, when, _end, _digest = await deploy_day_bot(
        net,
        make_account,
        bot_process,
        account,
        admin_chan,
        window=window,
        escalate_after=timedelta(seconds=600),
        digest_delay=timedelta(seconds=600),
        stock=True,
    )
    plan = on_shift_plan(when, window, fire_chan, [p.nick for p in people])
    bot.write_plan(plan)
    b = account.name
    await bot.start(reporter, admin_chan)
    # the JOIN is the opening's first line: the topic, the break and the pages are queued
    await bot.wait_joined(reporter, fire_chan, timeout=seconds_until(when) + PACE_TIMEOUT)

    loop = asyncio.get_running_loop()
    asked_at = loop.time()
    await reporter.privmsg(fire_chan, "!broke pkgdb2 the compose fails")
    await wait_said(reporter, b, "recorded incident #1", target=fire_chan, timeout=PACE_TIMEOUT)
    answered_in = loop.time() - asked_at
    answered_at = [len(client.messages) for client in people]

    for client in people:
        await wait_said(client, b, PAGE_PREFIX, target=client.nick, timeout=PACE_TIMEOUT)
    paged_after = [
        client.nick
        for client, since in zip(people, answered_at, strict=True)
        if private_pages(client, b, since)
    ]
    assert answered_in <= 2.0, f"the reply took {answered_in:.1f} s"
    assert paged_after, "every page went out before the reply: nothing was queued"
    await bot.stop(reporter)


# -- 4. a crash in the opening burst --------------------------------------------------------------

LATE_MARK = re.compile(r"^\(late: queued \d\d:\d\d UTC\) ")


def unmarked(text: str) -> str:
    """`text` without its `(late: queued 14:02 UTC) ` mark."""
    return LATE_MARK.sub("", text)


@pytest.mark.slow
async def test_a_kill_in_the_opening_burst_loses_nothing_and_repeats_nothing(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """On the stock class the opening (join, topic, API break, "started" line, six pages,
    their highlights) takes some 15 s. SIGKILL half a second after the bot's JOIN, then a
    restart past `late_after` (1 s here): every page, the topic, the break and the
    "started" line reach their target exactly once, in their original wording (no page is
    "repeated": nothing comes from escalation), and each line the second run sends is marked
    `(late: queued HH:MM UTC)`; what the first run got confirmed is not sent again. At the
    end the store's outbox is empty."""
    net = inspircd_services
    window = timedelta(seconds=300)
    admin_chan, fire_chan = "#" + net.unique_name("kb-admin"), "#" + net.unique_name("kb-fire")
    account = await make_account("deploybot")
    people = await connect_all(
        irc_client, net.relaxed_port, [net.unique_name(f"burst{i}") for i in range(6)]
    )
    watcher = people[0]
    await watcher.join(admin_chan)
    await create_channel(watcher, fire_chan)
    bot, when, _end, _digest = await deploy_day_bot(
        net,
        make_account,
        bot_process,
        account,
        admin_chan,
        window=window,
        escalate_after=timedelta(seconds=600),
        digest_delay=timedelta(seconds=600),
        stock=True,
    )
    bot.configure(bot_settings={"late_after": "1"})
    plan = on_shift_plan(when, window, fire_chan, [p.nick for p in people])
    bot.write_plan(plan)
    b = account.name

    await bot.start(watcher, admin_chan)
    await bot.wait_joined(watcher, fire_chan, timeout=seconds_until(when) + PACE_TIMEOUT)
    await asyncio.sleep(0.5)
    await bot.kill()
    killed_at = [len(client.messages) for client in people]
    left = bot.read_db("SELECT count(*) FROM outbox")[0][0]
    assert isinstance(left, int) and left > 0, "the burst was over before the kill"
    await asyncio.sleep(1.5)  # the posts left are now older than late_after

    await bot.start(watcher, admin_chan)
    for client in people:
        await wait_said(client, b, PAGE_PREFIX, target=client.nick, timeout=PACE_TIMEOUT)
    for channel in (fire_chan, admin_chan):  # late-marked: not `nick nick: …` any more
        await wait_said(watcher, b, "deploy started — join", target=channel, timeout=PACE_TIMEOUT)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PACE_TIMEOUT
    while bot.read_db("SELECT count(*) FROM outbox") != [(0,)]:
        assert loop.time() < deadline, bot.read_db("SELECT * FROM outbox")
        await asyncio.sleep(0.2)
    # one more line through the same queue: anything repeated would have come before it
    mark = watcher.mark()
    await watcher.privmsg(admin_chan, "!oncall")
    await wait_said(
        watcher, b, "infrastructure: ", target=admin_chan, since=mark, timeout=PACE_TIMEOUT
    )

    # every page once, in its wording, to its person; never "repeated"
    numbers = {}
    for client in people:
        texts = [unmarked(m.text) for m in bot_lines(client, b, client.nick)]
        pages = [text for text in texts if text.startswith(PAGE_PREFIX)]
        assert len(pages) == 1, (client.nick, pages)
        assert pages[0].endswith(
            f"] deploy of pkgdb2 2.0 started: firefighting in {fire_chan}"
            f" (infrastructure shift); reply !ack {page_number(pages[0])}"
        ), pages[0]
        numbers[client.nick] = page_number(pages[0])
    rows = bot.read_db("SELECT target_nick, number FROM pages ORDER BY number")
    assert sorted(numbers.items(), key=lambda item: item[1]) == rows
    # the topic once; the break, the "started" line and each highlight line once
    topics = [m for m in watcher.messages if m.command == "TOPIC" and nick_eq(m.nick, b)]
    assert len(topics) == 1, [m.text for m in topics]
    assert topics[0].text.startswith("pkgdb2-2.0: pkgdb2 2.0 deploy"), topics[0].text
    fire_lines = [unmarked(m.text) for m in bot_lines(watcher, b, fire_chan)]
    assert len(fire_lines) == len(set(fire_lines)), fire_lines
    assert sum("deploy started (scheduled at" in text for text in fire_lines) == 1
    assert sum("API BREAK" in text for text in fire_lines) == 1, fire_lines
    admin_lines = [unmarked(m.text) for m in bot_lines(watcher, b, admin_chan)]
    highlights_seen = [text for text in admin_lines if "deploy started — join" in text]
    assert len(highlights_seen) == len(set(highlights_seen)), highlights_seen
    named = " ".join(highlights_seen)
    assert all(client.nick in named for client in people), highlights_seen
    # what the second run sent is marked late; what the first run sent is not
    for client, since in zip(people, killed_at, strict=True):
        for m in client.messages[:since]:
            if m.command == "PRIVMSG" and nick_eq(m.nick, b):
                assert not LATE_MARK.match(m.text), m.text
        for m in client.messages[since:]:
            if m.command == "PRIVMSG" and nick_eq(m.nick, b) and "infrastructure: " not in m.text:
                assert LATE_MARK.match(m.text), m.text
    assert "already open: rejoined" in bot.current_run_log()
    await bot.stop(watcher)
    assert "Traceback" not in bot.log_text()
