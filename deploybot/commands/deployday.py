"""Deploy-day commands (SPEC §3): ``!roster``, ``!oncall``, ``!page``, ``!ack``,
``!firefight``.

``!roster``, ``!oncall`` and ``!ack`` only read or write the store, so they work
anywhere.  ``!page`` and ``!firefight`` send messages through the request's
:class:`~deploybot.deployday.day.DeployDay` (its
:class:`~deploybot.deployday.firefight.Firefight` and
:class:`~deploybot.deployday.paging.Pager`); without a transport (``request.deploy_day``
is None) they check their arguments and then answer :data:`NOT_CONNECTED`, changing
nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deploybot.commands.base import (
    Reply,
    Request,
    UsageError,
    command,
    example,
    number_argument,
)
from deploybot.commands.deploys import find_plan, no_arguments
from deploybot.deployday.paging import ack_text
from deploybot.deployday.roster import firefight_channel, on_shift, roster_lines, team_named
from deploybot.errors import DeploybotError
from deploybot.plans.model import Plan
from deploybot.plans.schedule import running, upcoming
from deploybot.store import Page, UnknownPageError
from deploybot.texts import plan_line, when_text

if TYPE_CHECKING:
    from deploybot.core import Core

#: What the commands that send pages say when the bot has no transport.
NOT_CONNECTED = "the bot is not connected to IRC, so it cannot page or open channels now"

# RFC 2812 nicks (letters, digits, []\`_^{|} and -, not starting with a digit or -).
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}")


def page_number(word: str) -> int:
    """``3`` or ``#3`` as a page number; a usage error for anything else."""
    return number_argument(word, "page", UnknownPageError)


def default_plan(core: Core, request: Request) -> Plan:
    """The running deploy that started first, else the next upcoming one."""
    live = running(core.plans, request.now)
    if live:
        return live[0]
    coming = upcoming(core.plans, request.now)
    if coming:
        return coming[0]
    raise DeploybotError("no deploy is running or planned; say which plan: !roster ID")


def oncall_lines(core: Core, request: Request) -> list[str]:
    """The lines of ``!oncall``: per running deploy, who is on shift by team."""
    lines: list[str] = []
    for plan in running(core.plans, request.now):
        by_team: dict[str, list[str]] = {}
        for person in on_shift(plan, request.now):
            by_team.setdefault(person.team, []).append(person.nick)
        if not by_team:
            continue
        channel = firefight_channel(plan, core.config)
        where = f" ({channel})" if channel else ""
        teams = "; ".join(f"{team}: {' '.join(nicks)}" for team, nicks in by_team.items())
        lines.append(f"{plan.id}{where}: {teams}")
    if lines:
        return lines
    coming = upcoming(core.plans, request.now)
    if running(core.plans, request.now) or not coming:
        return ["nobody is on shift now"]
    nxt = plan_line(coming[0], request.now, core.config.timezone)
    return [f"nobody is on shift now (no deploy is running; next: {nxt})"]


#: The reply of both ``!roster`` examples (pkgdb2-2.0 runs in the examples' world).
EXAMPLE_ROSTER = (
    "pkgdb2-2.0 roster (#pkgdb2-firefight), ● = on shift now:",
    "infrastructure: ●pingou 13:00–17:00 UTC; abadger1999 17:00–21:00 UTC",
    "rel-eng: ●dgilmore whole window",
    "escalation: nirik",
)


@command(
    "!roster [ID]",
    "the firefighting roster of a deploy (default: the running one, else the next); "
    "● marks who is on shift now",
    example("!roster", *EXAMPLE_ROSTER),
    example("!roster pkgdb2-2.0", *EXAMPLE_ROSTER),
)
async def roster(core: Core, request: Request) -> Reply:
    """The lines of :func:`~deploybot.deployday.roster.roster_lines` for the plan named
    or :func:`default_plan`."""
    words = request.args.split()
    if len(words) > 1:
        raise UsageError(f"one plan id only, got {len(words)} words")
    plan = find_plan(core, words[0]) if words else default_plan(core, request)
    return Reply.say(*roster_lines(plan, request.now, core.config))


@command(
    "!oncall",
    "who is on shift now in the running deploys, by team",
    example("!oncall", "pkgdb2-2.0 (#pkgdb2-firefight): infrastructure: pingou; rel-eng: dgilmore"),
)
async def oncall(core: Core, request: Request) -> Reply:
    """The lines of :func:`oncall_lines`."""
    no_arguments(request)
    return Reply.say(*oncall_lines(core, request))


@command(
    "!page WHO message",
    "page a nick, or the members of a team who are on shift now; !ack acknowledges",
    example("!page dgilmore the compose is failing on /api/packager/acl", "paged dgilmore (#1)"),
    example("!page rel-eng please check the compose", "paged rel-eng on shift: dgilmore (#1)"),
)
async def page(core: Core, request: Request) -> Reply:
    """Check WHO (a plan's team, or a nick) and page through the deploy day's pager."""
    who, _, message = request.args.strip().partition(" ")
    if not who:
        raise UsageError("say whom to page (a nick or a team) and why")
    message = message.strip()
    if not message:
        raise UsageError(f"say what the page to {who} is about")
    is_team = team_named(core.plans, who) is not None
    if not is_team and not _NICK.fullmatch(who):
        raise UsageError(f"{who!r} is neither a team of a plan nor a nick")
    if request.deploy_day is None:
        return Reply.say(NOT_CONNECTED)
    repeats: list[Page] = []
    pages = request.deploy_day.pager.page(
        request.nick, who, message, request.now, running(core.plans, request.now), repeats
    )
    paged = ", ".join(f"{p.target_nick} (#{p.number})" for p in pages)
    already = ", ".join(f"{p.target_nick} (#{p.number})" for p in repeats)
    if not pages:
        return Reply.say(f"not paged again: that page is pending (not acknowledged) for {already}")
    said = f"; already pending for {already}" if already else ""
    if is_team:
        return Reply.say(f"paged {who} on shift: {paged}{said}")
    return Reply.say(f"paged {paged}{said}")


@command(
    "!ack [N]",
    "acknowledge your pending pages (all, or page N); stops their escalation. A page "
    "sent while you were logged in to services needs that account; admins may ack any",
    example("!ack", "alice: you have no pending pages"),
)
async def ack(core: Core, request: Request) -> Reply:
    """Acknowledge in the store (which stops escalation), whether or not the bot is
    connected, with the rules of :meth:`~deploybot.store.Store.ack_pages`: a page sent
    to a known services account needs that account (or an admin); pages to this nick
    that stay pending for that reason are named in the reply."""
    words = request.args.split()
    if len(words) > 1:
        raise UsageError(f"one page number at most, got {len(words)} words")
    number = page_number(words[0]) if words else None
    admin = core.is_admin(*request.is_admin_for)
    pages = core.store.ack_pages(
        request.nick,
        request.now,
        number,
        account=request.account,
        mask=request.mask,
        admin=admin,
        vouched=request.vouched,
    )
    others = (
        () if number is not None else core.store.list_pages(pending=True, target_nick=request.nick)
    )
    return Reply.say(ack_text(request.nick, pages, others))


@command(
    "!firefight open|close ID",
    "open a deploy's firefighting channel by hand (join, topic, pages) or close it "
    "(summary, leave)",
    example(
        "!firefight open pkgdb2-2.0",
        "opened firefighting for pkgdb2-2.0 in #pkgdb2-firefight: topic set, "
        "roster on shift and consumers paged",
    ),
    example(
        "!firefight close pkgdb2-2.0",
        "firefighting for pkgdb2-2.0 was already closed (or never opened); nothing to post",
    ),
    admin=True,
)
async def firefight(core: Core, request: Request) -> Reply:
    """Open or close the plan's firefighting channel; closing a deploy that has not
    started (and is not open) is refused, so that a slip cannot cancel its deploy day."""
    words = request.args.split()
    if len(words) != 2 or words[0].lower() not in ("open", "close"):
        got = f", got {request.args.strip()!r}" if words else ""
        raise UsageError(f"say open or close, then the plan id{got}")
    action = words[0].lower()
    plan = find_plan(core, words[1])
    if request.deploy_day is None:
        return Reply.say(NOT_CONNECTED)
    fire = request.deploy_day.firefight
    channel = fire.channel_for(plan)
    reason = f"{'opened' if action == 'open' else 'closed'} by {request.nick}"
    if action == "open":
        if fire.open(plan, request.now, reason=reason):
            return Reply.say(
                f"opened firefighting for {plan.id} in {channel}: topic set, "
                "roster on shift and consumers paged"
            )
        return Reply.say(f"firefighting for {plan.id} was already open; rejoined {channel}")
    if request.now < plan.when and not fire.is_open(plan):
        raise DeploybotError(
            f"{plan.id} has not started (it opens "
            f"{when_text(plan.when, core.config.timezone)}); nothing to close"
        )
    if fire.close(plan, request.now, reason=reason):
        return Reply.say(f"closed firefighting for {plan.id}: summary posted in {channel}")
    return Reply.say(
        f"firefighting for {plan.id} was already closed (or never opened); nothing to post"
    )


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (roster, oncall, page, ack, firefight)
