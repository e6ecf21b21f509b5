"""Two `deploybot run` on one PostgreSQL database and a real IRC server (ngircd) form one
bot (issue 14): exactly one is active and in the admin channel, the other a standby that
serves /healthz only; kill -9 of the active → the standby joins within `ha_lease_timeout`
+ 5 s and answers a command; SIGSTOP of the active → the same, and the old one, woken up,
sends nothing and exits 3.  /healthz's `ha` and `!status` say which instance is active,
since when, and how many standbys renewed their presence in the last minute.  A signed
webhook event sent to the standby is kept in the store and acted on by the active, once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploybot.web.api import signature
from tests.botprocess import (
    UNTHROTTLED,
    BotProcess,
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    nick_eq,
    said_by,
    wait_said,
)
from tests.ircd.client import IrcClient
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import HOST, NgircdServer, free_port
from tests.planfactory import make_plan
from tests.postgres import PostgresDatabase

LEASE_TIMEOUT = 5.0
CHANNEL = "#ops"
SECRET = "an HA e2e webhook secret of 32 bytes or more"
START = "org.fedoraproject.prod.ansible.playbook.start"
PLAYBOOK = "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml"
SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"


def pair_member(
    bot_process: BotProcesses,
    server: NgircdServer,
    database: PostgresDatabase,
    nick: str,
    **settings: str,
) -> BotProcess:
    """One of the pair: on `database`, with the short lease and a web server of its own
    (`settings`: more of `[deploybot]`)."""
    return bot_process(
        port=server.port,
        nick=nick,
        admin_channel=CHANNEL,
        bot_settings=UNTHROTTLED,
        deploybot_settings={
            "database": database.url,
            "database_password_file": str(database.password_file),
            "ha_lease_timeout": f"{LEASE_TIMEOUT:g}",
            "web_host": HOST,
            "web_port": str(free_port()),
            **settings,
        },
    )


def web_get(bot: BotProcess, path: str) -> bytes:
    port = bot.deploybot_settings["web_port"]
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as answer:
        body: bytes = answer.read()
        return body


def healthz(bot: BotProcess) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(web_get(bot, "/healthz"))
    return document


def post_event(bot: BotProcess, payload: bytes) -> tuple[int, dict[str, Any]]:
    """POST `payload` to `bot`'s webhook, signed now: the status and the JSON answer."""
    port = bot.deploybot_settings["web_port"]
    stamp = str(int(time.time()))
    request = urllib.request.Request(
        f"http://{HOST}:{port}/api/v1/events",
        data=payload,
        headers={
            "Content-Type": "application/json",
            "X-Deploybot-Timestamp": stamp,
            "X-Deploybot-Signature": signature(SECRET, stamp, payload),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def wait_role(bot: BotProcess, role: str, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    deadline = time.monotonic() + timeout
    while True:
        try:
            document = await asyncio.to_thread(healthz, bot)
            if document["role"] == role:
                return document
        except OSError:
            document = {}
        if time.monotonic() > deadline:
            raise AssertionError(f"{bot.workdir}: not {role} within {timeout}s: {document}")
        await asyncio.sleep(0.2)


async def wait_ha(bot: BotProcess, standbys: int, active: str) -> dict[str, Any]:
    """`bot`'s /healthz `ha` once it names `active` and counts `standbys` (it reads the
    lease and the presence rows every ha_lease_timeout/3 as the active, every second as
    a standby)."""
    deadline = time.monotonic() + 15
    while True:
        ha: dict[str, Any] = (await asyncio.to_thread(healthz, bot))["ha"]
        if (
            ha["standbys_last_minute"] == standbys
            and (ha["active"] or {}).get("instance") == active
        ):
            return ha
        if time.monotonic() > deadline:
            raise AssertionError(f"{bot.workdir}: /healthz ha is still {ha}")
        await asyncio.sleep(0.2)


def since(ha: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(ha["active"]["since"])


async def status(me: IrcClient, bot: BotProcess) -> str:
    """What `bot` answers `!status` in the channel."""
    mark = me.mark()
    await me.privmsg(CHANNEL, "!status")
    said = await wait_said(me, bot.nick, "seen in the last minute", since=mark, timeout=30)
    return said.text


def assert_status(line: str, active: str, epoch: str, standbys: str) -> None:
    """A `!status` line: `active` since some time, under `epoch`, `standbys`, IRC up."""
    shape = (
        f"active: {re.escape(active)} since .+ \\({epoch}\\); {standbys} seen in the last minute"
    )
    assert re.search(f"{shape}; irc: connected", line), line


async def test_the_standby_takes_over_when_the_active_is_killed(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    postgres_database: PostgresDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    chan = CHANNEL
    bots = [
        pair_member(bot_process, ngircd_server, postgres_database, "deploybot") for _ in range(2)
    ]
    first, second = bots
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=20)
    for bot in bots:
        bot.write_plan(make_plan(when=when))
    me = await joined(irc_client, ngircd_server.port, "alice", [chan])
    await first.start(me, chan)
    active = await wait_role(first, "active")
    second.spawn()
    standby = await wait_role(second, "standby")
    assert active["instance"] == f"{active['instance'].split(':')[0]}:{first.pid}"
    assert standby["instance"] != active["instance"]
    await second.wait_log(f"standby: instance {active['instance']} is active")
    # both say who is active since when, and count the standby
    ha = await wait_ha(first, 1, active["instance"])
    assert (ha["backend"], ha["active"]["epoch"]) == ("postgresql", 1)
    assert since(ha) <= datetime.now(UTC)
    assert await wait_ha(second, 1, active["instance"]) == ha
    assert_status(await status(me, first), active["instance"], "epoch 1", "1 standby")
    # the standby stays off IRC: one deploybot in the channel, who answers once
    mark = me.mark()
    await me.privmsg(chan, "!broke pkgdb2 broken before the failover")
    await wait_said(me, first.nick, "recorded incident #1", since=mark, timeout=30)
    await asyncio.sleep(1.0)
    joins = [m for m in me.messages if m.command == "JOIN" and nick_eq(m.nick, "deploybot")]
    assert len(joins) == 1
    assert sum("recorded incident" in m.text for m in me.messages[mark:]) == 1

    mark = me.mark()
    killed = time.monotonic()
    await first.kill()
    await second.wait_joined(me, chan, since=mark, timeout=LEASE_TIMEOUT + 5)
    took = time.monotonic() - killed
    assert took <= LEASE_TIMEOUT + 5
    assert (await wait_role(second, "active"))["instance"] == standby["instance"]
    # active since the takeover, under the next epoch; the killed one is no standby
    ha = await wait_ha(second, 0, standby["instance"])
    assert ha["active"]["epoch"] == 2
    assert datetime.now(UTC) - timedelta(seconds=took + 1) <= since(ha) <= datetime.now(UTC)
    assert_status(await status(me, second), standby["instance"], "epoch 2", "0 standbys")
    metrics = (await asyncio.to_thread(web_get, second, "/metrics")).decode()
    assert "\ndeploybot_ha_active 1.0\n" in metrics
    assert "\ndeploybot_ha_takeovers_total 1.0\n" in metrics
    mark = me.mark()
    await me.privmsg(chan, "!incidents")
    await wait_said(me, second.nick, "broken before the failover", since=mark, timeout=30)
    await second.stop(me)
    assert postgres_database.password not in second.log_text()
    with postgres_database.admin() as admin:
        rows = admin.execute("SELECT instance, role FROM instances").fetchall()
    # a clean stop deletes its presence; the killed one's stays until pruned (a day)
    assert rows == [(active["instance"], "active")]


async def test_a_paused_active_is_replaced_and_sends_nothing_when_it_wakes_up(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    postgres_database: PostgresDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGSTOP of the active (its TCP connections stay open): the standby ends its database
    session after `ha_lease_timeout` and takes over; a report said meanwhile waits in the
    paused one's socket too, yet at SIGCONT it neither records it again nor answers (its
    lease has run out: commands are not acted on, output is held), finds the lease lost,
    and exits 3.  The two have their own nicks here:
    the paused one still holds its nick on the server."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    chan = CHANNEL
    first, second = (
        pair_member(bot_process, ngircd_server, postgres_database, nick)
        for nick in ("deploybot-a", "deploybot-b")
    )
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=20)
    for bot in (first, second):
        bot.write_plan(make_plan(when=when))
    me = await joined(irc_client, ngircd_server.port, "alice", [chan])
    await first.start(me, chan)
    await wait_role(first, "active")
    second.spawn()
    await wait_role(second, "standby")
    assert first.pid is not None
    mark = me.mark()
    paused = time.monotonic()
    os.kill(first.pid, signal.SIGSTOP)
    try:
        await second.wait_joined(me, chan, since=mark, timeout=LEASE_TIMEOUT + 5)
        assert time.monotonic() - paused <= LEASE_TIMEOUT + 5
        mark = me.mark()
        await me.privmsg(chan, "!broke pkgdb2 said while the first was paused")
        await wait_said(me, second.nick, "recorded incident #1", since=mark, timeout=30)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    log_mark = first.log_mark()
    assert await first.wait_exit(20) == 3
    assert "leadership lost" in first.log_since(log_mark)
    await asyncio.sleep(1.0)
    assert not [m for m in me.messages[mark:] if said_by(first.nick)(m)]
    with postgres_database.admin() as admin:
        rows = admin.execute("SELECT number, text FROM incidents").fetchall()
    assert rows == [(1, "said while the first was paused")]  # acted on once, not twice
    await second.stop(me)


async def test_a_webhook_event_sent_to_the_standby_is_acted_on_by_the_active_once(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    postgres_database: PostgresDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signed start of pkgdb's playbook POSTed to the standby: 202 `"queued": true`,
    the standby says nothing (it is not on IRC) and the active says "deploy of pkgdb2
    started by ralph" in the admin channel within a few seconds, once; the event is
    recorded once on the deploy and gone from the inbox; the same id sent to the standby
    again is a 200 duplicate."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    chan = CHANNEL
    first, second = (
        pair_member(bot_process, ngircd_server, postgres_database, nick, webhook_secret=SECRET)
        for nick in ("deploybot-a", "deploybot-b")
    )
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=20)
    for bot in (first, second):
        bot.write_plan(make_plan(when=when, duration=timedelta(hours=2)))
    me = await joined(irc_client, ngircd_server.port, "alice", [chan])
    await first.start(me, chan)
    await wait_role(first, "active")
    second.spawn()
    await wait_role(second, "standby")
    sample = json.loads((SAMPLES_DIR / "ansible.playbook.start.json").read_text("utf-8"))
    body = {**sample["msg"], "playbook": PLAYBOOK, "userid": "ralph"}
    payload = json.dumps({"topic": START, "body": body, "id": "ha-e2e-start-1"}).encode()

    mark = me.mark()
    sent = time.monotonic()
    status, answer = await asyncio.to_thread(post_event, second, payload)
    assert (status, answer["queued"], answer["facts"]) == (202, True, []), answer
    started = "deploy of pkgdb2 started by ralph (groups/pkgdb.yml)"
    await wait_said(me, first.nick, started, target=chan, since=mark, timeout=10)
    took = time.monotonic() - sent
    assert took < 5, took
    status, answer = await asyncio.to_thread(post_event, second, payload)
    assert (status, answer["duplicate"], answer["queued"]) == (200, True, False), answer
    await asyncio.sleep(2.0)
    said = [m for m in me.messages[mark:] if "started by ralph" in m.text]
    assert len(said) == 1 and nick_eq(said[0].nick, first.nick), said
    with postgres_database.admin() as admin:
        kinds = admin.execute("SELECT kind FROM deploy_events ORDER BY id").fetchall()
        left = admin.execute("SELECT count(*) FROM event_inbox").fetchone()
    assert (kinds, left) == ([("firefight-opened",), ("playbook-start",)], (0,))
    assert "queued for the active instance" in second.log_text()
    assert "webhook (queued by a standby)" in first.log_text()
    print(f"queued on the standby -> said by the active in {took:.2f} s")
    await second.stop()  # a standby: not on IRC, no QUIT to wait for
    await first.stop(me)
