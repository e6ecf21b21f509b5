"""Freeze commands (issue 13, SPEC §3): ``!freeze``, ``!freezebreak ID reason``,
``!approve ID`` (admins) and ``!freezebreaks``.

A plan whose window overlaps an infrastructure freeze misses the readiness rule
``freeze`` until a freeze break is approved: someone requests it with ``!freezebreak``
(which also gives the mail for the infrastructure list), two admins other than the
requester approve it with ``!approve``.  Admins are services accounts or host masks
(checked by the dispatcher), never nicks; two approvals count only from two distinct
people (:func:`deploybot.store.freezebreaks.person_of`).  Everything is stored with who and
when.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, UsageError, command, example
from deploybot.commands.deploys import find_plan, no_arguments
from deploybot.durations import plural
from deploybot.errors import DeploybotError
from deploybot.lines import one_line
from deploybot.plans.freezes import Freeze, frozen_at, next_freeze
from deploybot.plans.model import Plan
from deploybot.plans.schedule import describe_countdown
from deploybot.store import APPROVALS_NEEDED, FreezeBreak
from deploybot.texts import named, when_text

if TYPE_CHECKING:
    from datetime import tzinfo

    from deploybot.core import Core

log = logging.getLogger(__name__)

#: ``!freezebreaks`` lists at most this many breaks.
MAX_BREAKS_LISTED = 10
#: The list a freeze break request goes to.
FREEZE_BREAK_LIST = "infrastructure@lists.fedoraproject.org"
#: The longest reason kept (a mail subject and an IRC line must stay readable).
MAX_REASON = 300


def freeze_span(freeze: Freeze, tz: tzinfo) -> str:
    """``F44 Beta freeze (Fri 2026-12-18 00:00 UTC to Tue 2026-12-22 00:00 UTC)``."""
    return f"{freeze.name} ({when_text(freeze.start, tz)} to {when_text(freeze.end, tz)})"


@command(
    "!freeze",
    "are we in an infrastructure freeze now, until when, and what is next",
    example(
        "!freeze",
        "not frozen now; next: F44 Beta freeze (Fri 2026-12-18 00:00 UTC to Tue 2026-12-22 "
        "00:00 UTC), in 2 days 11h; deploys in it: fas-3.0",
    ),
)
async def freeze(core: Core, request: Request) -> Reply:
    """Whether ``now`` is in a freeze (until when), else the next freeze, with the plans in
    force whose window overlaps it."""
    no_arguments(request)
    tz = core.config.timezone
    now = request.now
    freezes = core.freezes.freezes
    current = frozen_at(freezes, now)
    if current:
        last = max(current, key=lambda f: f.end)
        names = ", ".join(f.name for f in current)
        return Reply.say(
            f"⚠ frozen now: {names} until {when_text(last.end, tz)} "
            f"({describe_countdown(last.end - now).removeprefix('in ')} left); a deploy needs "
            "an approved freeze break (!freezebreak ID REASON) unless it fixes an outage"
            + _deploys_in(core, last)
        )
    coming = next_freeze(freezes, now)
    if coming is None:
        return Reply.say("not frozen now; no freeze planned")
    return Reply.say(
        f"not frozen now; next: {freeze_span(coming, tz)}, "
        f"{describe_countdown(coming.start - now)}" + _deploys_in(core, coming)
    )


def _deploys_in(core: Core, frozen: Freeze) -> str:
    ids = [plan.id for plan in core.plans if frozen.overlaps(plan.when, plan.end)]
    return f"; deploys in it: {', '.join(ids)}" if ids else ""


@command(
    "!freezebreak ID reason",
    "request a freeze break for a deploy in a freeze; prints the mail for the list",
    example(
        "!freezebreak fas-3.0 the FAS 3 schema must ship with the koji update",
        "freeze break #2 requested for fas-3.0 (F44 Beta freeze): two admins other than "
        "you approve it with !approve fas-3.0; mail this to the infrastructure list:",
        f"To: {FREEZE_BREAK_LIST}",
        "Subject: Freeze break request: fas 3.0 (fas-3.0) during the F44 Beta freeze",
        "Freeze break request #2, by alice: deploy fas 3.0 'FAS 3' in the window Sun "
        "2026-12-20 09:00 UTC to Sun 2026-12-20 17:00 UTC, during the F44 Beta freeze (Fri "
        "2026-12-18 00:00 UTC to Tue 2026-12-22 00:00 UTC).",
        "Why: the FAS 3 schema must ship with the koji update",
        "API breaks: none. Owners: pingou.",
        "Approval: two +1s from sysadmin-main or releng members, here and with "
        "!approve fas-3.0 on IRC (the bot records them).",
    ),
)
async def freezebreak(core: Core, request: Request) -> Reply:
    """Open a freeze break request for a plan in a freeze; reply with the mail (privately:
    it is long) and tell the admin channel."""
    plan_id, _, reason = request.args.strip().partition(" ")
    reason = one_line(reason.strip())
    if not plan_id or not reason:
        raise UsageError("say which plan and why it cannot wait for the end of the freeze")
    if len(reason) > MAX_REASON:
        raise UsageError(f"the reason is {len(reason)} characters; at most {MAX_REASON}")
    plan = find_plan(core, plan_id)
    standing = core.freeze_standing(plan)
    if not standing.in_freeze:
        raise DeploybotError(f"{plan.id} is not in a freeze: no freeze break needed")
    if standing.exempt_reason is not None:
        raise DeploybotError(
            f"{plan.id} is exempt from the freeze as an outage fix ({standing.exempt_reason}): "
            "no freeze break needed"
        )
    created = core.store.request_freeze_break(
        plan_id=plan.id,
        freezes=standing.names,
        reason=reason,
        nick=request.nick,
        account=request.account,
        mask=request.mask,
        now=request.now,
    )
    log.info("freeze break #%d for %s requested by %s", created.number, plan.id, request.mask)
    _tell_admins(
        core,
        request,
        f"freeze break #{created.number} requested by {request.nick} for {plan.id} "
        f"({standing.names}): {reason} — admins: !approve {plan.id}",
    )
    tz = core.config.timezone
    head = (
        f"freeze break #{created.number} requested for {plan.id} ({standing.names}): two "
        f"admins other than you approve it with !approve {plan.id}; mail this to the "
        "infrastructure list:"
    )
    return Reply.say(head, *freeze_break_mail(plan, created, standing.freezes, tz), private=True)


def freeze_break_mail(
    plan: Plan, request: FreezeBreak, freezes: tuple[Freeze, ...], tz: tzinfo
) -> list[str]:
    """The freeze break request for the infrastructure list: ``To:``, ``Subject:`` and
    one line per paragraph (every value on one line)."""
    spans = ", ".join(freeze_span(f, tz) for f in freezes)
    breaks = (
        plural(len(plan.api_breaks), "API break") + " (deploybot announce " + plan.id + ")"
        if plan.api_breaks
        else "none"
    )
    title = f" '{one_line(plan.title)}'" if plan.title else ""
    return [
        f"To: {FREEZE_BREAK_LIST}",
        f"Subject: Freeze break request: {named(plan)} ({plan.id}) during the {request.freezes}",
        f"Freeze break request #{request.number}, by {request.requester_nick}: deploy "
        f"{named(plan)}{title} in the window {when_text(plan.when, tz)} to "
        f"{when_text(plan.end, tz)}, during the {spans}.",
        f"Why: {request.reason}",
        f"API breaks: {breaks}. Owners: {', '.join(plan.owners) or 'none listed'}.",
        f"Approval: two +1s from sysadmin-main or releng members, here and with "
        f"!approve {plan.id} on IRC (the bot records them).",
    ]


@command(
    "!approve ID",
    "approve the freeze break of a deploy (ID: plan id, or #N); two admins, not the requester",
    example(
        "!approve #1",
        "freeze break #1 for pkgdb2-2.0: approved by alice (1 of 2); one more admin: "
        "!approve pkgdb2-2.0",
    ),
    admin=True,
)
async def approve(core: Core, request: Request) -> Reply:
    """One admin's approval; the second makes the break approved (said in the admin
    channel too)."""
    words = request.args.split()
    if len(words) != 1:
        raise UsageError("say which deploy's freeze break: its plan id, or #N")
    plan_id = _break_plan(core, words[0])
    approved = core.store.approve_freeze_break(
        plan_id, nick=request.nick, account=request.account, mask=request.mask, now=request.now
    )
    who = ", ".join(approved.approvers)
    log.info("freeze break #%d approved by %s (%s)", approved.number, request.mask, who)
    if approved.approved:
        text = (
            f"freeze break #{approved.number} for {plan_id} is approved by {who}: the freeze "
            "rule is met"
        )
        _tell_admins(core, request, text)
        return Reply.say(text)
    got = len(approved.approvals)
    return Reply.say(
        f"freeze break #{approved.number} for {plan_id}: approved by {who} "
        f"({got} of {APPROVALS_NEEDED}); one more admin: !approve {plan_id}"
    )


def _break_plan(core: Core, word: str) -> str:
    """The plan id of ``word``: ``#N``/``N`` a freeze break's number, else a plan id."""
    digits = word.removeprefix("#")
    if digits.isascii() and digits.isdecimal():
        for known in core.store.freeze_breaks(limit=10_000):
            if known.number == int(digits):
                return known.plan_id
        raise DeploybotError(f"no freeze break #{digits}; !freezebreaks lists them")
    return find_plan(core, word).id


@command(
    "!freezebreaks",
    "the freeze breaks, open and approved, newest first",
    example(
        "!freezebreaks",
        "#1 pkgdb2-2.0 (F44 Beta freeze) open, 0 of 2 approvals — requested by bob "
        "Tue 2026-12-15 12:00 UTC: the acl fix cannot wait",
    ),
)
async def freezebreaks(core: Core, request: Request) -> Reply:
    """Newest first, at most :data:`MAX_BREAKS_LISTED`."""
    no_arguments(request)
    tz = core.config.timezone
    found = core.store.freeze_breaks(limit=MAX_BREAKS_LISTED + 1)
    if not found:
        return Reply.say("no freeze breaks requested")
    lines = [break_line(item, tz) for item in found[:MAX_BREAKS_LISTED]]
    if len(found) > MAX_BREAKS_LISTED:
        lines.append(f"… only the newest {MAX_BREAKS_LISTED} are shown (the web page lists all)")
    return Reply.say(*lines)


def break_line(item: FreezeBreak, tz: tzinfo) -> str:
    """``#1 pkgdb2-2.0 (F44 Beta freeze) approved by X, Y — requested by bob … : why``."""
    if item.approved:
        state = f"approved by {', '.join(item.approvers)}"
    else:
        got = len(item.approvals)
        by = f" ({', '.join(item.approvers)})" if got else ""
        state = f"open, {got} of {APPROVALS_NEEDED} approvals{by}"
    return (
        f"#{item.number} {item.plan_id} ({item.freezes}) {state} — requested by "
        f"{item.requester_nick} {when_text(item.requested_at, tz)}: {item.reason}"
    )


def _tell_admins(core: Core, request: Request, text: str) -> None:
    """Say ``text`` in the admin channel (unless the command was given there: the reply
    says it)."""
    day = request.deploy_day
    admin = core.config.admin_channel
    if day is None or (request.channel or "").casefold() == admin.casefold():
        return
    day.outbox.post(admin, text)


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (freeze, freezebreak, approve, freezebreaks)
