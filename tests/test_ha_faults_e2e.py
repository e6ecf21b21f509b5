"""Faults under an active/standby pair (issue 14's remaining tests): two `deploybot run`
on one PostgreSQL database and a real IRC server.

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
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    nick_eq,
    wait_said,
)
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer
from tests.planfactory import make_plan
from tests.postgres import PostgresDatabase, PostgresServer
from tests.test_ha_e2e import CHANNEL, LEASE_TIMEOUT, healthz, pair_member, wait_role

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
