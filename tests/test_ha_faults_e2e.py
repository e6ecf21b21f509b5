"""Faults under an active/standby pair (issue 14's remaining tests): two `deploybot run`
on one PostgreSQL database and a real IRC server.

- kill -9 of the active during a deploy day's opening burst (inspircd's STOCK class, so
  the opening's topic, API break, pages and highlights are paced and some are still in
  the store's outbox at the kill): the standby is in both channels and has delivered
  what was left within 15 s; no line is seen twice by anyone, in a channel or in private;
  every report answered "recorded" before the kill is in PostgreSQL.

- PostgreSQL restarted under a running pair (ngircd): both reconnect; afterwards exactly
  one is active, it answers a command and records it, and neither process ended — the
  active whose lock connection died with the server campaigns again and, nobody else
  having taken the lock, keeps its IRC connection under a new epoch.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.botprocess import (
    BotProcess,
    BotProcesses,
    bot_lines,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    inspircd_bot,
    joined,
    nick_eq,
    wait_said,
)
from tests.ircd.fixtures import Account, IrcClientFactory, MakeAccount
from tests.ircd.servers import HOST, InspircdWithServices, NgircdServer, free_port
from tests.planfactory import make_plan, on_shift_plan
from tests.postgres import PostgresDatabase, PostgresServer
from tests.test_deploy_day_e2e import (
    PAGE_PREFIX,
    connect_all,
    create_channel,
    seconds_until,
    unmarked,
)
from tests.test_ha_e2e import CHANNEL, LEASE_TIMEOUT, healthz, pair_member, wait_role

pytestmark = pytest.mark.irc

TAKEOVER_DEADLINE = 15.0  # the issue's: from the kill to every channel joined and all sent
#: People on shift: the opening pages each and highlights them.
PEOPLE = 3
#: The kill comes when this many posts (or fewer) wait in the outbox.  On the stock class
#: the new active is in its channels some 3 s after the kill (1 s of inspircd's
#: registration, joins), then sends a line a second (the default pacing: burst 4, 1/s), and
#: an API break takes several lines: with 10 posts left (one person on shift, killed right
#: after the reports) the last was still unsent 15 s after the kill; with 15 left, 18 s.
KILL_AT = 6

DOWN_SECONDS = 3.0  # PostgreSQL stays stopped this long (less than the lease timeout)


async def test_postgresql_restarted_under_a_running_pair(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    postgres: PostgresServer,
    postgres_database: PostgresDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stop PostgreSQL (fast shutdown: every session ended, the leader lock with them) for
    3 s and start it again on the same port and data: the active, whose renewal fails,
    holds its output and campaigns again; the lock being free, it takes it (epoch 2)
    without leaving IRC; the standby stays one.  Afterwards exactly one is active by both
    /healthz, the bot in the channel answers `!broke` and the incident is in the store;
    both processes still run."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    first, second = (
        pair_member(bot_process, ngircd_server, postgres_database, "deploybot") for _ in range(2)
    )
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=20)
    for bot in (first, second):
        bot.write_plan(make_plan(when=when))
    me = await joined(irc_client, ngircd_server.port, "alice", [CHANNEL])
    await first.start(me, CHANNEL)
    first_id = (await wait_role(first, "active"))["instance"]
    second.spawn()
    await wait_role(second, "standby")
    mark = me.mark()

    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(postgres.start)

    # settled: one active and one standby, as both say, for a whole lease timeout
    deadline = time.monotonic() + 30
    stable_since: float | None = None
    roles: list[str] = []
    while stable_since is None or time.monotonic() - stable_since < LEASE_TIMEOUT:
        assert time.monotonic() < deadline, (roles, first.log_tail(), second.log_tail())
        assert first.running, f"the first exited\n{first.log_tail()}"
        assert second.running, f"the second exited\n{second.log_tail()}"
        try:
            roles = [(await asyncio.to_thread(healthz, bot))["role"] for bot in (first, second)]
        except OSError:
            roles = []
        if sorted(roles) == ["active", "standby"]:
            stable_since = stable_since or time.monotonic()
        else:
            stable_since = None
        await asyncio.sleep(0.2)
    active = (first, second)[roles.index("active")]
    await asyncio.sleep(0.5)
    joins = [
        m
        for m in me.messages[mark:]
        if m.command in {"JOIN", "QUIT"} and nick_eq(m.nick, "deploybot")
    ]
    mark = me.mark()
    await me.privmsg(CHANNEL, "!broke pkgdb2 said after the database came back")
    await wait_said(me, "deploybot", "recorded incident #1", since=mark, timeout=30)
    with postgres_database.admin() as admin:
        rows = admin.execute("SELECT number, text FROM incidents").fetchall()
    assert rows == [(1, "said after the database came back")]
    assert first.running and second.running
    # the active kept its place: it stayed on IRC (no QUIT, no new JOIN) under a new epoch
    assert active is first, (first.log_tail(), second.log_tail())
    assert joins == [], [m.command for m in joins]
    assert f"active again: instance {first_id}, epoch 2" in first.log_text()
    for bot in (second, first):
        await bot.stop()


async def stock_pair_member(
    net: InspircdWithServices,
    make_account: MakeAccount,
    bot_process: BotProcesses,
    account: Account,
    database: PostgresDatabase,
    admin_channel: str,
    when: datetime,
) -> BotProcess:
    """One of a pair on inspircd's stock port with the default pacing, logged in to
    `account` (both the same), on `database` with the short lease; countdown "0" only,
    pages not escalated and no digest during the test."""
    return await inspircd_bot(
        net,
        make_account,
        bot_process,
        account,
        stock=True,
        admin_channel=admin_channel,
        countdowns="0",
        deploybot_settings={
            "database": database.url,
            "database_password_file": str(database.password_file),
            "ha_lease_timeout": f"{LEASE_TIMEOUT:g}",
            "web_host": HOST,
            "web_port": str(free_port()),
            "page_escalate_after": "600s",
            "digest_time": f"{(when + timedelta(hours=6)).astimezone(UTC):%H:%M:%S}",
        },
    )


@pytest.mark.slow
async def test_a_kill_of_the_active_in_the_opening_burst(
    inspircd_services: InspircdWithServices,
    make_account: MakeAccount,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    postgres_database: PostgresDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two reports are answered "recorded" in the first seconds of the opening (replies go
    before queued posts), then the active is killed while posts wait in the outbox: the
    standby takes over, joins both channels and sends what was left, all within 15 s of
    the kill; each person got their page once, the topic was set once, no text came twice
    to any channel or person; both incidents are in PostgreSQL."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    net = inspircd_services
    admin_chan, fire_chan = "#" + net.unique_name("ha-admin"), "#" + net.unique_name("ha-fire")
    account = await make_account("deploybot")
    people = await connect_all(
        irc_client, net.relaxed_port, [net.unique_name(f"ha{i}") for i in range(PEOPLE)]
    )
    watcher = people[0]
    await watcher.join(admin_chan)
    await create_channel(watcher, fire_chan)
    await asyncio.gather(*(p.join(fire_chan) for p in people[1:]))
    when = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    window = timedelta(seconds=300)
    first, second = [
        await stock_pair_member(
            net, make_account, bot_process, account, postgres_database, admin_chan, when
        )
        for _ in range(2)
    ]
    for bot in (first, second):
        bot.write_plan(on_shift_plan(when, window, fire_chan, [p.nick for p in people]))
    b = account.name
    await first.start(watcher, admin_chan)
    await wait_role(first, "active")
    second.spawn()
    await wait_role(second, "standby")

    await first.wait_joined(watcher, fire_chan, timeout=seconds_until(when) + 30)
    reports = ["the compose fails", "koji builds time out"]
    mark = watcher.mark()
    for text in reports:
        await watcher.privmsg(fire_chan, f"!broke pkgdb2 {text}")
    for n in range(1, len(reports) + 1):
        await wait_said(
            watcher, b, f"recorded incident #{n}", target=fire_chan, since=mark, timeout=10
        )
    with postgres_database.admin() as admin:
        while True:  # kill when at most KILL_AT posts wait (some still must)
            outbox = admin.execute("SELECT command, target, left(text, 40) FROM outbox").fetchall()
            if len(outbox) <= KILL_AT:
                break
            await asyncio.sleep(0.02)
    left = len(outbox)
    mark = watcher.mark()
    killed = time.monotonic()
    await first.kill()
    assert left > 0, "the opening burst was over before the kill"

    for channel in (admin_chan, fire_chan):
        await second.wait_joined(
            watcher, channel, since=mark, timeout=killed + TAKEOVER_DEADLINE - time.monotonic()
        )
    while True:  # every post confirmed: sent, and echoed back to the bot
        with postgres_database.admin() as admin:
            waiting = admin.execute("SELECT count(*) FROM outbox").fetchone()[0]
        if waiting == 0:
            break
        assert time.monotonic() - killed < TAKEOVER_DEADLINE, (waiting, outbox)
        await asyncio.sleep(0.1)
    delivered_in = time.monotonic() - killed
    for client in people:  # each person's page seen (the last may still be in flight)
        await wait_said(client, b, PAGE_PREFIX, target=client.nick, timeout=5)
    # one more line through the same queue: anything repeated would have come before it
    mark = watcher.mark()
    await watcher.privmsg(admin_chan, "!oncall")
    await wait_said(watcher, b, "infrastructure: ", target=admin_chan, since=mark, timeout=15)

    for client in people:
        pages = [
            unmarked(m.text)
            for m in bot_lines(client, b, client.nick)
            if unmarked(m.text).startswith(PAGE_PREFIX)
        ]
        assert len(pages) == 1, (client.nick, pages)
        for channel in (admin_chan, fire_chan):
            texts = [unmarked(m.text) for m in bot_lines(client, b, channel)]
            assert len(texts) == len(set(texts)), (client.nick, channel, texts)
    topics = [m for m in watcher.messages if m.command == "TOPIC" and nick_eq(m.nick, b)]
    assert len(topics) == 1, [m.text for m in topics]
    fire_lines = [unmarked(m.text) for m in bot_lines(watcher, b, fire_chan)]
    assert sum("API BREAK" in text for text in fire_lines) == 1, fire_lines
    assert sum("deploy started (scheduled at" in text for text in fire_lines) == 1, fire_lines
    with postgres_database.admin() as admin:
        rows = admin.execute("SELECT number, text FROM incidents ORDER BY number").fetchall()
    assert rows == list(enumerate(reports, start=1))
    print(f"{left} posts waited at the kill; all delivered {delivered_in:.1f} s after it")
    await second.stop(watcher)
    assert "Traceback" not in second.log_text()
