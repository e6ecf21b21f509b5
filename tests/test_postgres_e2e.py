"""`deploybot run` on PostgreSQL (issue 14): the bot process itself, with `database =
postgresql://…` and `database_password_file` in its bot.ini, on a real IRC server (ngircd)
and the tests' own PostgreSQL server: incidents acknowledged "recorded" are in PostgreSQL,
a SIGKILL loses none of them, the next start lists them, `!digest` reads them off the
loop (the store's read worker), and the password shows nowhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.botprocess import (
    UNTHROTTLED,
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    said_by,
    wait_said,
)
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer
from tests.planfactory import make_plan
from tests.postgres import PostgresDatabase

REPLY_TIMEOUT = 30.0


async def test_the_bot_runs_on_postgresql_and_a_sigkill_loses_nothing(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    postgres_database: PostgresDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    chan = "#ops"
    bot = bot_process(
        port=ngircd_server.port,
        nick="deploybot",
        admin_channel=chan,
        bot_settings=UNTHROTTLED,
        deploybot_settings={
            "database": postgres_database.url,
            "database_password_file": str(postgres_database.password_file),
        },
    )
    bot.write_plan(
        make_plan(when=datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=20))
    )
    me = await joined(irc_client, ngircd_server.port, "alice", [chan])
    await bot.start(me, chan)
    mark = me.mark()
    for n in (1, 2, 3):
        await me.privmsg(chan, f"!broke pkgdb2 breakage number {n}")
        await wait_said(me, bot.nick, f"recorded incident #{n}", since=mark, timeout=REPLY_TIMEOUT)
    await bot.kill()
    with postgres_database.admin() as admin:
        rows = admin.execute("SELECT number, text FROM incidents ORDER BY number").fetchall()
    assert rows == [(n, f"breakage number {n}") for n in (1, 2, 3)]

    await bot.start(me, chan)
    mark = me.mark()
    await me.privmsg(chan, "!incidents")
    await wait_said(me, bot.nick, "3 open incidents:", since=mark, timeout=REPLY_TIMEOUT)
    await wait_said(me, bot.nick, "breakage number 3", since=mark, timeout=REPLY_TIMEOUT)
    assert [m for m in me.messages[mark:] if said_by(bot.nick)(m)]
    # the digest is read off the loop, in the store's read worker, from PostgreSQL too
    mark = me.mark()
    await me.privmsg(chan, "!digest")
    await wait_said(me, bot.nick, "3 reported", since=mark, timeout=REPLY_TIMEOUT)
    await bot.stop(me)
    log = bot.log_text()
    assert postgres_database.password not in log
    assert not (bot.workdir / "deploybot.sqlite3").exists()
