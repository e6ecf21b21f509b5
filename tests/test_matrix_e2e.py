"""`deploybot run` on Matrix, end to end against a real Synapse on 127.0.0.1 (issue 15).

The bot runs with a `[matrix]` section and no `[bot]` (Matrix only) as a real process; its
users are registered on the session's Synapse with the shared-secret admin API and talk
to it with the small syncing client of tests/synapse.py.  The session's server is shared
by the tests of a worker, so every room alias is made unique.
"""

from __future__ import annotations

import asyncio
import html
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploybot.plans.model import Plan, Roster, Shift
from deploybot.store import Store
from tests.apischema import check_answer
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
from tests.ircd.servers import NgircdServer, free_port
from tests.planfactory import make_plan
from tests.synapse import MatrixAccount, MatrixClient, MatrixClients, RoomEvent, SynapseServer
from tests.test_deploy_day_e2e import same_day_ahead
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


def matrix_bot(
    bot_process: BotProcesses,
    synapse: SynapseServer,
    account: MatrixAccount,
    channel: str,
    *,
    admins: str,
    irc_port: int = 0,
    countdowns: str = "14d 7d 3d 1d 4h 1h 15m 0",
    deploybot_settings: dict[str, str] | None = None,
    **matrix: str,
) -> BotProcess:
    """A bot logged in to Matrix as `account`, its admin channel `channel`; Matrix only (no
    `[bot]`) unless `irc_port` is given: then on the IRC server there too, unthrottled."""
    bot = bot_process(
        port=irc_port,
        nick=account.localpart,
        admin_channel=channel,
        admins=admins,
        irc=bool(irc_port),
        matrix_settings={},
        countdowns=countdowns,
        deploybot_settings=deploybot_settings,
        bot_settings=UNTHROTTLED,
    )
    token = bot.workdir / "matrix-token"
    token.write_text(account.access_token + "\n")
    bot.matrix_settings.update(
        {
            "homeserver": synapse.url,
            "user_id": account.user_id,
            "access_token_file": str(token),
            "room_alias_server": synapse.server_name,
            "user_pattern": "@{nick}:" + synapse.server_name,
            "reconnect_delay": "0.2",
            "reconnect_max_delay": "1",
            "sync_timeout": "5",
            **matrix,
        }
    )
    bot.write_config()
    return bot


def joined_by(bot: MatrixAccount, room: str) -> Callable[[RoomEvent], bool]:
    def match(event: RoomEvent) -> bool:
        return (
            event.room_id == room
            and event.type == "m.room.member"
            and event.event.get("state_key") == bot.user_id
            and event.content.get("membership") == "join"
        )

    return match


async def start_in(
    bot: BotProcess, account: MatrixAccount, watcher: MatrixClient, room: str
) -> None:
    """Spawn the bot; return once `watcher` (in `room`) sees it there and it has synced."""
    since = watcher.mark()
    mark = bot.log_mark()
    bot.spawn()
    await bot.wait_log("Matrix: synced with", since=mark, timeout=30)
    await watcher.wait_for(joined_by(account, room), 30, what="the bot joining", since=since)


async def said(
    watcher: MatrixClient, bot: MatrixAccount, text: str, since: int, room: str | None = None
) -> RoomEvent:
    return await watcher.wait_message(bot.user_id, text, room_id=room, since=since)


async def setup_room(synapse: SynapseServer, owner: MatrixClient) -> tuple[str, str]:
    """A public room with a fresh alias: (channel name, room ID)."""
    name = synapse.unique("fedora-admin")
    room = await owner.create_room(name)
    return f"#{name}", room


async def test_commands_answered_where_asked_with_admins_by_mxid(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses, tmp_path: Path
) -> None:
    """A command in the room is answered in the room (plain body and HTML formatted body);
    an admin command works for the mxid: admin and is refused to an impostor who took the
    admin's display name; a long answer goes privately, into a direct-message room."""
    account = synapse.register("deploybot")
    alice_account = synapse.register("alice")
    alice = await matrix_client(alice_account)
    mallory = await matrix_client(synapse.register("mallory"))
    await alice.set_displayname("Alice Admin")
    await mallory.set_displayname("Alice Admin")
    channel, room = await setup_room(synapse, alice)
    await mallory.join(room)
    bot = matrix_bot(bot_process, synapse, account, channel, admins=f"mxid:{alice_account.user_id}")
    await start_in(bot, account, alice, room)
    bot.write_plan(make_plan())

    since = alice.mark()
    await alice.send_text(room, "!plans reload")
    answer = await said(alice, account, "plans reloaded", since, room)
    assert answer.content["format"] == "org.matrix.custom.html"

    since = alice.mark()
    await mallory.send_text(room, "!plans reload")
    refused = await said(alice, account, "not allowed", since, room)
    assert refused.body.startswith("not allowed: !plans is for admins")

    since = mallory.mark()
    await mallory.send_text(room, "!deploy pkgdb2-2.0")
    note = await said(mallory, account, "sent you", since, room)
    nick = mallory.user_id[1:].split(":")[0]
    assert note.body.startswith(f"{nick}: sent you ")
    invite = await mallory.wait_for(
        lambda e: e.invite and e.type == "m.room.member", what="an invite", since=since
    )
    await mallory.join(invite.room_id)
    await mallory.wait_message(account.user_id, "pkgdb2", room_id=invite.room_id, since=since)
    await bot.stop()


async def test_html_in_a_report_is_escaped_in_the_formatted_body(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """What people wrote comes back HTML-escaped in formatted_body, as it was in body."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    bot = matrix_bot(bot_process, synapse, account, channel, admins="account:nobody")
    bot.write_plan(make_plan())
    await start_in(bot, account, alice, room)
    evil = '<img src=x onerror="alert(1)"> & <a href="javascript:x">go</a>'
    since = alice.mark()
    await alice.send_text(room, f"!broke pkgdb2 {evil}")
    await said(alice, account, "recorded incident #1", since, room)
    since = alice.mark()
    await alice.send_text(room, "!incident 1")
    shown = await said(alice, account, "incident #1 OPEN", since, room)
    assert evil in shown.body
    formatted = shown.content["formatted_body"]
    assert html.escape(evil) in formatted
    assert "<img" not in formatted and '<a href="javascript' not in formatted
    await bot.stop()


async def test_a_restart_replays_no_command_and_misses_none(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """The sync position is kept: after a restart the bot acts on the commands said while
    it was down — all twelve, more than a room's default timeline in one sync — and on
    none it had acted on; on its very first start it ignored a command said before it."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    await alice.send_text(room, "!broke pkgdb2 said before the bot ever ran")
    bot = matrix_bot(
        bot_process,
        synapse,
        account,
        channel,
        admins="account:nobody",
        deploybot_settings={"command_flood_limit": "100"},
    )
    bot.write_plan(make_plan())
    await start_in(bot, account, alice, room)
    since = alice.mark()
    await alice.send_text(room, "!broke pkgdb2 first")
    await said(alice, account, "recorded incident #1", since, room)
    await bot.stop()
    down = [f"while the bot was down {n}" for n in range(1, 13)]
    for text in down:
        await alice.send_text(room, f"!broke pkgdb2 {text}")
    since = alice.mark()
    bot.spawn()
    await said(alice, account, "recorded incident #13", since, room)
    await alice.send_text(room, "!incidents")
    await said(alice, account, "#13", since, room)
    texts = [text for (text,) in bot.read_db("SELECT text FROM incidents ORDER BY number")]
    assert texts == ["first", *down]
    assert not [e for e in alice.messages(account.user_id, room, since) if "#14" in e.body]
    await bot.stop()


# -- deploy day ------------------------------------------------------------------------------

LEAD = timedelta(seconds=8)  # from spawning the bot to the start of the window


def day_plan(
    when: datetime, window: timedelta, fire: str, infra: str, releng: str, boss: str
) -> Plan:
    """The factory's pkgdb2 plan (one API break) with `infra` and `releng` on shift for the
    whole window in the firefighting channel `fire`, `boss` to escalate to, no consumers."""
    end = when + window
    return make_plan(
        when=when,
        duration=window,
        teams=(),
        consumers=(),
        roster=Roster(
            channel=fire,
            shifts=(
                Shift("infrastructure", (infra,), when, end),
                Shift("rel-eng", (releng,), when, end),
            ),
            escalation=(boss,),
        ),
    )


async def http_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return await answer.text()


async def healthz(port: int) -> dict[str, Any]:
    """GET /healthz of the bot's web server, checked against its schema."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as answer,
    ):
        document: dict[str, Any] = await answer.json()
        check_answer("GET", "/healthz", answer.status, document)
        return document


def invited(event: RoomEvent) -> bool:
    return event.invite and event.type == "m.room.member"


@pytest.mark.slow
async def test_a_deploy_day_on_matrix(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """At the window's start the bot creates the firefighting room (alias, name, topic), posts
    the API break, pages the two people on shift in direct-message rooms of their own with a
    highlight mentioning them (m.mentions) in the admin room, and invites them to the
    firefighting room; `!ack N` in the direct-message room acknowledges the page, `!ack` in
    the admin room the other; at the end of the window the topic says closed and the bot
    leaves the room (it stays)."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    bob = await matrix_client(synapse.register("bob"))
    boss = synapse.register("boss")
    channel, room = await setup_room(synapse, alice)
    await bob.join(room)
    fire = "#" + synapse.unique("pkgdb2-fire")
    window = timedelta(seconds=25)
    await same_day_ahead(LEAD + window + timedelta(seconds=60))  # the digest is per day
    when = (datetime.now(UTC) + LEAD).replace(microsecond=0)
    nick = {c.user_id: c.user_id[1:].split(":")[0] for c in (alice, bob)}
    bot = matrix_bot(
        bot_process,
        synapse,
        account,
        channel,
        admins="account:nobody",
        countdowns="0",
        deploybot_settings={
            "page_escalate_after": "10m",
            "digest_time": f"{when + window + timedelta(seconds=5):%H:%M:%S}",
        },
    )
    bot.write_plan(
        day_plan(when, window, fire, nick[alice.user_id], nick[bob.user_id], boss.localpart)
    )
    since = alice.mark()
    await start_in(bot, account, alice, room)

    # the opening: pages in direct-message rooms, highlights with mentions
    invite = await alice.wait_for(
        lambda e: invited(e) and e.sender == account.user_id and bool(e.content.get("is_direct")),
        LEAD.total_seconds() + 30,
        what="an invite to a direct-message room",
        since=since,
    )
    await alice.join(invite.room_id)
    page = await alice.wait_message(account.user_id, "[page #", room_id=invite.room_id, since=since)
    number = int(page.body.split("#", 1)[1].split("]", 1)[0])
    assert f"firefighting in {fire}" in page.body
    highlight = await alice.wait_message(
        account.user_id, nick[alice.user_id], room_id=room, since=since
    )
    assert alice.user_id in highlight.content["m.mentions"]["user_ids"]
    assert f'href="https://matrix.to/#/{alice.user_id}"' in highlight.content["formatted_body"]

    # the firefighting room: created with its alias, name and topic; alice invited to it
    fire_room = await alice.resolve_alias(f"{fire}:{synapse.server_name}")
    await alice.wait_for(
        lambda e: invited(e) and e.room_id == fire_room, 20, what="an invite", since=since
    )
    await alice.join(fire_room)
    assert (await alice.state(fire_room, "m.room.name"))["name"] == fire
    topic = (await alice.state(fire_room, "m.room.topic"))["topic"]
    assert topic.startswith("pkgdb2-2.0: pkgdb2 2.0 deploy "), topic

    # acknowledgements from a direct-message room and from the admin room
    mark = alice.mark()
    await alice.send_text(invite.room_id, f"!ack {number}")
    await alice.wait_message(account.user_id, "acknowledged", room_id=invite.room_id, since=mark)
    mark = bob.mark()
    await bob.send_text(room, "!ack")
    await bob.wait_message(account.user_id, "acknowledged", room_id=room, since=mark)
    pages = bot.read_db("SELECT target_nick, acked_by, acked_mask FROM pages ORDER BY number")
    assert sorted(pages) == sorted(
        (nick[c.user_id], nick[c.user_id], c.user_id) for c in (alice, bob)
    )

    # an incident in the firefighting room: reported, taken, fixed
    mark = alice.mark()
    await alice.send_text(fire_room, "!broke pkgdb2 the acl page returns <500>")
    recorded = await said(alice, account, "recorded incident #1", mark, fire_room)
    assert recorded.body.startswith("recorded incident #1 (pkgdb2, deploy pkgdb2-2.0 +")
    await alice.send_text(fire_room, "!take 1")
    await said(alice, account, f"is now owned by {nick[alice.user_id]}", mark, fire_room)
    await alice.send_text(fire_room, "!fixed 1 rolled back")
    await said(alice, account, f"fixed by {nick[alice.user_id]}", mark, fire_room)

    # the close: topic, then the bot leaves; the room stays
    left = await alice.wait_for(
        lambda e: (
            e.room_id == fire_room
            and e.type == "m.room.member"
            and e.event.get("state_key") == account.user_id
            and e.content.get("membership") == "leave"
        ),
        window.total_seconds() + 30,
        what="the bot leaving the firefighting room",
        since=since,
    )
    assert left
    topic = (await alice.state(fire_room, "m.room.topic"))["topic"]
    assert "closed" in topic, topic
    assert await alice.resolve_alias(f"{fire}:{synapse.server_name}") == fire_room
    # the digest at digest_time, in the admin room
    digest = await alice.wait_message(
        account.user_id, "incident digest ", room_id=room, since=since, timeout=30
    )
    assert "1 reported" in digest.body, digest.body
    await bot.stop()


@pytest.mark.slow
async def test_on_irc_and_matrix_at_once(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    synapse: SynapseServer,
    matrix_client: MatrixClients,
    bot_process: BotProcesses,
) -> None:
    """With [bot] and [matrix] the bot is on both networks: a command is answered on the
    network where it was asked only; posts (the highlight of a page) reach both; a person
    on both networks is paged on both (the same page), one !ack on Matrix clears it —
    it is never escalated, while the page nobody acknowledged is."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    bob = await matrix_client(synapse.register("bob"))
    nick = alice.user_id[1:].split(":")[0]
    channel, room = await setup_room(synapse, alice)
    await bob.join(room)
    watcher = await joined(irc_client, ngircd_server.port, nick, [channel])
    fire = "#" + synapse.unique("fire")
    web_port = free_port()
    window = timedelta(seconds=40)
    when = (datetime.now(UTC) + LEAD).replace(microsecond=0)
    bot = matrix_bot(
        bot_process,
        synapse,
        account,
        channel,
        admins="account:nobody",
        irc_port=ngircd_server.port,
        countdowns="0",
        deploybot_settings={"page_escalate_after": "6s", "web_port": str(web_port)},
    )
    bob_nick = bob.user_id[1:].split(":")[0]
    boss = synapse.register("boss")
    bot.write_plan(day_plan(when, window, fire, nick, bob_nick, boss.localpart))
    since, irc_since = alice.mark(), watcher.mark()
    bot.spawn()
    await bot.wait_joined(watcher, channel, since=irc_since)
    await alice.wait_for(joined_by(account, room), 30, what="the bot joining", since=since)

    # /healthz and /metrics report both networks
    health = await healthz(web_port)
    assert {name: status["connected"] for name, status in health["networks"].items()} == {
        "irc": True,
        "matrix": True,
    }
    assert health["irc_connected"] is True
    metrics = await http_text(f"http://127.0.0.1:{web_port}/metrics")
    assert 'deploybot_network_connected{network="matrix"} 1.0' in metrics
    assert 'deploybot_network_connected{network="irc"} 1.0' in metrics

    # a command is answered where it was asked, only there
    await watcher.privmsg(channel, "!incidents")
    await wait_said(watcher, bot.nick, "no open incidents", target=channel, since=irc_since)
    mark = alice.mark()
    await alice.send_text(room, "!freezebreaks")
    answer = await said(alice, account, "no freeze breaks requested", mark, room)
    assert not [e for e in alice.messages(account.user_id, room, since) if "incidents" in e.body]
    assert answer.body not in [m.text for m in bot_lines(watcher, bot.nick, None, irc_since)]

    # the page reaches alice on both networks; the highlight reaches both admin channels
    on_irc = await wait_said(
        watcher,
        bot.nick,
        "[page #",
        target=nick,
        since=irc_since,
        timeout=LEAD.total_seconds() + 30,
    )
    number = int(on_irc.text.split("#", 1)[1].split("]", 1)[0])
    invite = await alice.wait_for(
        lambda e: invited(e) and bool(e.content.get("is_direct")), 30, what="a DM", since=since
    )
    await alice.join(invite.room_id)
    on_matrix = await alice.wait_message(
        account.user_id, f"[page #{number}]", room_id=invite.room_id, since=since
    )
    assert on_matrix.body == on_irc.text
    await wait_said(watcher, bot.nick, f"{nick} ", target=channel, since=irc_since)
    await alice.wait_message(account.user_id, f"{nick} ", room_id=room, since=since)

    # one !ack, on Matrix, clears it everywhere: never escalated; bob's page is
    mark = alice.mark()
    await alice.send_text(invite.room_id, "!ack")
    await alice.wait_message(account.user_id, "acknowledged", room_id=invite.room_id, since=mark)

    def escalated() -> list[tuple[object, ...]]:
        return bot.read_db(
            "SELECT target_nick, escalated_at IS NOT NULL FROM pages WHERE target_nick != "
            f"'{boss.localpart}' ORDER BY number"
        )

    await eventually(lambda: (bob_nick, 1) in escalated(), "bob's page escalated", 30)
    assert sorted(escalated()) == sorted([(nick, 0), (bob_nick, 1)])
    paged = bot_lines(watcher, bot.nick, nick, irc_since)
    assert len([m for m in paged if "[page #" in m.text]) == 1
    await bot.stop(watcher)


async def test_the_homeserver_restarted_under_the_bot(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """Synapse is killed under the running bot: /healthz says Matrix is away and why, and
    the bot syncs again by itself once the homeserver is back (reconnect backoff at most
    1 s here), answering commands as before."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    web_port = free_port()
    bot = matrix_bot(
        bot_process,
        synapse,
        account,
        channel,
        admins="account:nobody",
        deploybot_settings={"web_port": str(web_port)},
    )
    await start_in(bot, account, alice, room)
    assert (await healthz(web_port))["networks"]["matrix"]["connected"] is True
    mark = bot.log_mark()
    await synapse.akill()
    await bot.wait_log("Matrix: cannot sync with", since=mark, timeout=30)
    away = (await healthz(web_port))["networks"]["matrix"]
    assert away["connected"] is False and away["why"].startswith("cannot sync with"), away
    await asyncio.sleep(2)
    assert (await healthz(web_port))["networks"]["matrix"]["down_seconds"] >= 1
    await synapse.astart()
    await bot.wait_log("Matrix: back after", since=mark, timeout=30)
    assert (await healthz(web_port))["networks"]["matrix"]["connected"] is True
    since = alice.mark()
    await alice.send_text(room, "!incidents")
    await said(alice, account, "no open incidents", since, room)
    await bot.stop()


async def test_rate_limited_sends_wait_retry_after_and_lose_nothing(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """With the bot's messages limited to 1/s (burst 1) by the homeserver, a burst of
    answers meets M_LIMIT_EXCEEDED: each is sent again after retry_after_ms, all arrive,
    in order."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    bot = matrix_bot(bot_process, synapse, account, channel, admins="account:nobody")
    bot.write_plan(make_plan())
    await start_in(bot, account, alice, room)
    synapse.override_ratelimit(account.user_id, 1, 1)
    since = alice.mark()
    for n in range(1, 5):
        await alice.send_text(room, f"!broke pkgdb2 burst {n}")
    await said(alice, account, "recorded incident #4", since, room)
    answers = [e.body for e in alice.messages(account.user_id, room, since)]
    assert [a.split(" (")[0] for a in answers if a.startswith("recorded")] == [
        f"recorded incident #{n}" for n in range(1, 5)
    ]
    assert "Matrix: rate limited; sending again in" in bot.log_text()
    await bot.stop()


async def test_a_password_login_keeps_its_device(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """With password_file the bot logs in once (device_name), keeps the token and device
    in its database, and a restart reuses them: no second login, no second device."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    bot = matrix_bot(bot_process, synapse, account, channel, admins="account:nobody")
    password = bot.workdir / "matrix-password"
    password.write_text(account.password + "\n")
    del bot.matrix_settings["access_token_file"]
    bot.matrix_settings.update({"password_file": str(password), "device_name": "deploybot test"})
    bot.write_config()
    await start_in(bot, account, alice, room)
    await bot.stop()
    since = alice.mark()
    bot.spawn()
    await alice.send_text(room, "!incidents")
    await said(alice, account, "no open incidents", since, room)
    assert bot.log_text().count("Matrix: logged in as") == 1
    ((token,),) = bot.read_db("SELECT value FROM network_state WHERE key = 'access_token'")
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
        session.get(f"{synapse.url}/_matrix/client/v3/devices") as answer,
    ):
        names = [d.get("display_name") for d in (await answer.json())["devices"]]
    assert names.count("deploybot test") == 1, names
    await bot.stop()


async def test_a_post_left_by_a_crash_goes_out_once(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """A post decided and not confirmed when the bot stopped goes out at the next start and
    is confirmed (the outbox empties); one sent but not confirmed before a crash is sent
    again with the same transaction ID, so the homeserver shows it once."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    bot = matrix_bot(bot_process, synapse, account, channel, admins="account:nobody")
    await start_in(bot, account, alice, room)
    await bot.stop()
    text = "decided just before the crash"
    with Store.open(bot.database) as store:
        post = store.add_post("PRIVMSG", channel, text, datetime.now(UTC))

    def outbox() -> list[tuple[object, ...]]:
        return bot.read_db("SELECT id FROM outbox")

    since = alice.mark()
    bot.spawn()
    await said(alice, account, text, since, room)
    await eventually(lambda: not outbox(), "the post confirmed", 20)
    await bot.kill()  # then as if the confirmation had not been written before a crash
    with sqlite3.connect(bot.database) as db:
        db.execute(
            "INSERT INTO outbox (id, queued_at, command, target, text) VALUES (?, ?, ?, ?, ?)",
            (post.id, post.queued_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "PRIVMSG", channel, text),
        )
    mark = bot.log_mark()
    bot.spawn()
    await bot.wait_log("Matrix: synced with", since=mark, timeout=30)
    await eventually(lambda: not outbox(), "the post confirmed again", 20)
    mark = alice.mark()
    await alice.send_text(room, "!incidents")  # something after it, to know it has all
    await said(alice, account, "no open incidents", mark, room)
    assert [e.body for e in alice.messages(account.user_id, room, since)].count(text) == 1
    await bot.stop()


async def test_a_direct_chat_someone_opens_with_the_bot(
    synapse: SynapseServer, matrix_client: MatrixClients, bot_process: BotProcesses
) -> None:
    """Invited to a direct chat, the bot joins it and answers commands there, privately;
    an invite to a room that is no direct chat is left alone."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    bot = matrix_bot(bot_process, synapse, account, channel, admins="account:nobody")
    await start_in(bot, account, alice, room)
    since = alice.mark()
    other = await alice.create_room(invite=[account.user_id])
    direct = await alice.create_room(
        invite=[account.user_id], is_direct=True, preset="trusted_private_chat"
    )
    await alice.wait_for(joined_by(account, direct), 30, what="the bot joining", since=since)
    await alice.send_text(direct, "!incidents")
    await said(alice, account, "no open incidents", since, direct)
    assert (direct,) in bot.read_db("SELECT value FROM network_state WHERE key LIKE 'dm:%'")
    assert not [e for e in alice.events[since:] if joined_by(account, other)(e)]
    await bot.stop()
