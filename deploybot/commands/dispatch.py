"""From a typed line to the messages that answer it, with the two kinds of error.

Expected errors (:class:`~deploybot.errors.DeploybotError` and its usage/permission
subclasses) are shown as they are.  Anything else is a bug: it is logged with a
traceback under a short reference, and the user gets only that reference.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deploybot.commands.base import (
    CHANNEL_LINE_LIMIT,
    NotAllowed,
    Registry,
    Reply,
    Request,
    UsageError,
)
from deploybot.durations import plural
from deploybot.errors import DeploybotError

if TYPE_CHECKING:
    from deploybot.core import Core

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    target: str
    text: str


async def dispatch(core: Core, registry: Registry, request: Request) -> list[Outgoing]:
    """Run the command in ``request`` and return what to send (possibly nothing)."""
    command = registry.get(request.name)
    if command is None:
        if request.channel is None:
            return [Outgoing(request.nick, f"unknown command !{request.name}; try !help")]
        return []  # in a channel, another bot may own that command
    try:
        if command.admin and not core.is_admin(request.account, request.mask, request.casemapping):
            raise NotAllowed(
                f"not allowed: !{command.name} is for admins "
                "(a services account or host mask named in the bot's config)"
            )
        reply = await command.handler(core, request)
    except UsageError as exc:
        reply = Reply.say(f"{exc} — usage: {command.usage}")
    except DeploybotError as exc:
        # Only the LFs the message was written with: splitlines() would also break at
        # \x1c, \x85 or U+2028 in echoed user text, which would then start a line.
        reply = Reply.say(*str(exc).split("\n"))
    except Exception:
        ref = secrets.token_hex(3)
        log.exception("internal error (ref %s) in %r from %s", ref, request.name, request.mask)
        reply = Reply.say(f"internal error (ref {ref}); the admins can find it in the log")
    return route(request, reply)


def route(request: Request, reply: Reply) -> list[Outgoing]:
    """Where each line goes: long or private output goes to the requester (SPEC §3)."""
    lines = [line for line in reply.lines if line]
    if not lines:
        return []
    private = reply.private or request.channel is None or len(lines) > CHANNEL_LINE_LIMIT
    if not private:
        return [Outgoing(request.reply_target, line) for line in lines]
    out = [Outgoing(request.nick, line) for line in lines]
    if request.channel is not None:
        out.insert(
            0,
            Outgoing(
                request.channel,
                f"{request.nick}: sent you {plural(len(lines), 'line')}",
            ),
        )
    return out
