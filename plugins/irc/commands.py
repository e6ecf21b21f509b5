"""IRC commands: a PRIVMSG starting with ``!`` becomes a core request, its reply lines
go back through the bot's outbox.  All the logic is in :mod:`deploybot.commands`.

The sender's services account comes from the ``account`` message tag of the very line
(cap ``account-tag``), falling back to the account tracking of
:mod:`deploybot_plugins.irc.accounts` (extended-join, account-notify, WHOX); never the nick.
The request carries the server's CASEMAPPING, so that admin rules compare names as the
server does.

Flood control is the core's (:class:`~deploybot.commands.dispatch.FloodGuard`, one per
bot, from ``command_flood_*``, ``page_flood_*`` and ``uses_flood_*``); here only the
timing: a flooding person's held report replies go out as one private line
:data:`REPORT_MERGE_SECONDS` after the first of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import irc3

from deploybot.commands.base import Request, parse_command_line
from deploybot.commands.dispatch import FloodGuard, Outgoing, dispatch, flood_guard, flood_key
from deploybot.commands.registry import build_registry

from .accounts import account_from_tags
from .bot import DeployIrcBot

log = logging.getLogger(__name__)

#: Over-limit report replies of one person collected this long, then sent as one line.
REPORT_MERGE_SECONDS = 2.0

COMMAND_LINE = (
    r"^(@(?P<tags>\S+) )?:(?P<mask>[^\s!]+![^\s@]+@\S+) PRIVMSG (?P<target>\S+) :(?P<data>!.*)$"
)


@irc3.plugin
class Commands:
    def __init__(self, bot: DeployIrcBot) -> None:
        self.bot = bot
        self.registry = build_registry()
        self._flood: FloodGuard | None = None

    def flood(self, app: Any) -> FloodGuard:
        """The bot's flood bookkeeping (made from the config on first use)."""
        if self._flood is None:
            self._flood = flood_guard(app.core.config)
        return self._flood

    @irc3.event(COMMAND_LINE)
    def on_command(self, mask: str, target: str, data: str, tags: str | None = None) -> None:
        parsed = parse_command_line(data)
        if parsed is None or self.bot.is_me(mask):  # our own line, echoed (echo-message)
            return
        if not self.bot.may_send():  # a paused active woken up: the new active answers
            log.warning("command from %s not acted on: this instance's lease ran out", mask)
            return
        app = self.bot.config["deploybot_app"]
        nick = mask.split("!", 1)[0]
        account = self._account(nick, tags)
        channel = target if target[:1] in "#&" else None
        name, args = parsed
        request = Request(
            nick=nick,
            mask=str(mask),
            account=account,
            channel=channel,
            name=name,
            args=args,
            now=app.core.now(),
            deploy_day=app.deploy_day,
            casemapping=self.bot.casemapping,
        )
        app.spawn(self._answer(app, request), f"command !{name} from {nick}")

    def _account(self, nick: str, tags: str | None) -> str | None:
        """With account-tag, the line itself says (no tag: not logged in); else tracking."""
        caps = self.bot.get_plugin("deploybot_plugins.irc.capabilities.Capabilities")
        if "account-tag" in caps.enabled:
            return account_from_tags(tags)
        return self.bot.account_of(nick)

    async def _answer(self, app: Any, request: Request) -> None:
        flood = self.flood(app)
        for out in await dispatch(app.core, self.registry, request, flood):
            self._send(out, request.nick)
        who = flood_key(request)
        if flood.has_pending(who):
            self.bot.once_later(f"flood-reports {who}", REPORT_MERGE_SECONDS, self._held(who))

    def _send(self, out: Outgoing, person: str | None = None) -> None:
        """Send ``out``; a reply is joined only with ``person``'s other waiting replies."""
        if out.notice:
            self.bot.outbox.notice(out.target, out.text)
        else:
            self.bot.outbox.answer(out.target, out.text, person)

    def _held(self, who: str) -> Callable[[], None]:
        """Send ``who``'s held report replies as one private line."""

        def send() -> None:
            out = self.flood(self.bot.config["deploybot_app"]).take_pending(who)
            if out is not None:
                self._send(out)

        return send
