"""`deploybot run` on Matrix, end to end against a real Synapse on 127.0.0.1 (issue 15).

The bot runs with a `[matrix]` section and no `[bot]` (Matrix only) as a real process; its
users are registered on the session's Synapse with the shared-secret admin API and talk
to it with the small syncing client of tests/synapse.py.  The session's server is shared
by the tests of a worker, so every room alias is made unique.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from tests.botprocess import (
    BotProcess,
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
)
from tests.planfactory import make_plan
from tests.synapse import MatrixAccount, MatrixClient, MatrixClients, RoomEvent, SynapseServer

pytestmark = pytest.mark.e2e


def matrix_bot(
    bot_process: BotProcesses,
    synapse: SynapseServer,
    account: MatrixAccount,
    channel: str,
    *,
    admins: str,
    **matrix: str,
) -> BotProcess:
    """A Matrix-only bot (no `[bot]`) logged in as `account`, its admin channel `channel`."""
    bot = bot_process(
        port=0,
        nick=account.localpart,
        admin_channel=channel,
        admins=admins,
        irc=False,
        matrix_settings={},
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


def joined(bot: MatrixAccount, room: str) -> object:
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
    await watcher.wait_for(joined(account, room), 30, what="the bot joining", since=since)  # type: ignore[arg-type]


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
    """The sync position is kept: after a restart the bot acts on a command said while
    it was down, and on none it had acted on; on its very first start it ignored a command
    said before it."""
    account = synapse.register("deploybot")
    alice = await matrix_client(synapse.register("alice"))
    channel, room = await setup_room(synapse, alice)
    await alice.send_text(room, "!broke pkgdb2 said before the bot ever ran")
    bot = matrix_bot(bot_process, synapse, account, channel, admins="account:nobody")
    bot.write_plan(make_plan())
    await start_in(bot, account, alice, room)
    since = alice.mark()
    await alice.send_text(room, "!broke pkgdb2 first")
    await said(alice, account, "recorded incident #1", since, room)
    await bot.stop()
    await alice.send_text(room, "!broke pkgdb2 while the bot was down")
    since = alice.mark()
    bot.spawn()
    await said(alice, account, "recorded incident #2", since, room)
    await alice.send_text(room, "!incidents")
    await said(alice, account, "#2", since, room)
    texts = [text for (text,) in bot.read_db("SELECT text FROM incidents ORDER BY number")]
    assert texts == ["first", "while the bot was down"]
    assert not [e for e in alice.messages(account.user_id, room, since) if "#3" in e.body]
    await bot.stop()
