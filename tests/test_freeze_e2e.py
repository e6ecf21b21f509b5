"""End to end: `deploybot run` on a real IRC server (ngircd) with a freezes file — the
countdowns of plans in a freeze say so, and a playbook start on the bus (a real ZeroMQ
socket) of a plan without an approved freeze break is flagged in the admin channel and
recorded on the deploy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import zmq
from deploybot_plugins.bus.fedmsg_source import fedmsg_frames, make_envelope

from deploybot.store import Store
from tests.botprocess import (
    UNTHROTTLED,
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    wait_said,
)
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer
from tests.planfactory import badges_plan, make_plan
from tests.test_bus_e2e import (  # noqa: F401  (the xpub fixture)
    START,
    SUBSCRIPTION,
    TIMEOUT,
    ansible_msg,
    subscriptions,
    xpub,
)
from tests.test_freezes import approved_break

pytestmark = pytest.mark.irc

ADMIN = "#ops"


async def test_countdowns_and_a_playbook_start_in_a_freeze(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    xpub: tuple[zmq.Socket[bytes], str],  # noqa: F811  (the fixture imported above)
) -> None:
    """Two plans start in 21 minutes, inside the F42 Final freeze of the freezes file:
    pkgdb2-2.0 without a freeze break, badges-1.0 with one approved by alice and carol
    (stored before the start). Their 30m countdowns (sent late, at start) begin with
    "⚠ IN FREEZE (F42 Final freeze) — no approved freeze break" and "… — freeze break
    approved by alice, carol". A playbook start of pkgdb2 on the bus says "⚠ deploy
    during the F42 Final freeze without an approved freeze break (pkgdb2-2.0)" in the
    admin channel, and the deploy records the start and the warning."""
    sock, endpoint = xpub
    now = datetime.now(UTC)
    when = (now + timedelta(minutes=21)).replace(second=0, microsecond=0)
    pkgdb2 = make_plan(when=when, duration=timedelta(hours=2))
    badges = badges_plan(when, duration=timedelta(hours=2))
    bot = bot_process(
        port=ngircd_server.port,
        nick="deploybot",
        admin_channel=ADMIN,
        countdowns="30m",
        bot_settings=UNTHROTTLED,
        deploybot_settings={"fedmsg_endpoints": endpoint, "freezes": "freezes.yaml"},
    )
    first, last = (now - timedelta(days=1)).date(), (now + timedelta(days=2)).date()
    (bot.workdir / "freezes.yaml").write_text(
        f"- {{name: F42 Final freeze, from: {first}, to: {last}}}\n", encoding="utf-8"
    )
    bot.write_plan(pkgdb2)
    bot.write_plan(badges)
    with Store.open(bot.database) as store:
        approved_break(store, "badges-1.0", now)
    watcher = await joined(irc_client, ngircd_server.port, "watcher", [ADMIN])
    since = watcher.mark()
    await bot.start(watcher)

    for text in (
        "⚠ IN FREEZE (F42 Final freeze) — no approved freeze break",
        "⚠ IN FREEZE (F42 Final freeze) — freeze break approved by alice, carol",
    ):
        await wait_said(watcher, bot.nick, text, target=ADMIN, since=since, timeout=TIMEOUT)

    assert await subscriptions(sock, bot) == [SUBSCRIPTION]
    sock.send_multipart(fedmsg_frames(make_envelope(START, ansible_msg("start", userid="ralph"))))
    warning = "⚠ deploy during the F42 Final freeze without an approved freeze break"
    await wait_said(
        watcher, bot.nick, f"{warning} (pkgdb2-2.0)", target=ADMIN, since=since, timeout=TIMEOUT
    )
    await bot.stop(watcher)
    rows = bot.read_db(
        "SELECT kind, nick, text FROM deploy_events WHERE plan_id = 'pkgdb2-2.0' ORDER BY id"
    )
    kinds = [row[0] for row in rows]
    assert "playbook-start" in kinds and "freeze-warning" in kinds, rows
    assert ("freeze-warning", "ralph", warning) in rows
    assert "Traceback" not in bot.log_text()
