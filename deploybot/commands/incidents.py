"""Incidents (SPEC §3): ``!broke``, ``!take``, ``!note``, ``!fixed``, ``!incident``,
``!incidents``.

Every change is committed by the store before the reply is built, so "recorded incident
#3" is never said about an incident a crash could lose.  Who did what is recorded with
the nick *and* the services account (None when not logged in).

``!broke`` during a deploy also highlights the on-shift roster in the deploy's
firefighting channel (:meth:`~deploybot.deployday.firefight.Firefight.on_incident`) when the bot
is connected (``request.deploy_day``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from deploybot.commands.base import (
    Reply,
    Request,
    UsageError,
    command,
    example,
    number_argument,
)
from deploybot.commands.consumers import known_service, planned_services
from deploybot.deployday.busmessages import incident_fixed, incident_reported
from deploybot.durations import plural
from deploybot.plans.model import Plan
from deploybot.plans.schedule import day_bounds, running
from deploybot.store import Incident, UnknownIncidentError
from deploybot.texts import deploy_link, elapsed_text, incident_detail, incident_line

if TYPE_CHECKING:
    from deploybot.core import Core

log = logging.getLogger(__name__)

#: ``!incidents`` shows at most this many incidents, then says how many more there are.
MAX_LISTED = 15


def incident_number(word: str) -> int:
    """``3`` or ``#3`` as an incident number; a usage error for anything else."""
    return number_argument(word, "incident", UnknownIncidentError)


def split_number(request: Request, needs_text: str | None = None) -> tuple[int, str]:
    """``"3 some text"`` → ``(3, "some text")``.

    ``needs_text``: the usage error to raise when the text is missing (None: optional).
    """
    word, _, rest = request.args.strip().partition(" ")
    if not word:
        raise UsageError("say which incident (its number)")
    number = incident_number(word)
    text = rest.strip()
    if needs_text is not None and not text:
        raise UsageError(needs_text)
    return number, text


def running_deploy_of(plans: tuple[Plan, ...], service: str) -> Plan | None:
    """The running deploy of ``service`` that started first, if any."""
    for plan in plans:
        if plan.service == service:
            return plan
    return None


def broke_target(core: Core, request: Request) -> tuple[str, str, Plan | None]:
    """(service, what broke, running deploy of that service) for ``!broke``."""
    args = request.args.strip()
    if not args:
        raise UsageError("say what broke")
    first, _, rest = args.partition(" ")
    live = running(core.plans, request.now)
    service = known_service(core, first)
    if service is not None:
        text = rest.strip()
        if not text:
            raise UsageError(f"say what broke in {service}")
        return service, text, running_deploy_of(live, service)
    live_services = list(dict.fromkeys(plan.service for plan in live))
    if len(live_services) == 1:
        (service,) = live_services
        return service, args, running_deploy_of(live, service)
    if not live_services:
        known = planned_services(core)
        hint = f" (planned services: {', '.join(known)})" if known else ""
        raise UsageError(
            f"no deploy is running; say which service: !broke SERVICE what broke{hint}"
        )
    raise UsageError(
        f"{len(live_services)} deploys are running ({', '.join(live_services)}); "
        "say which service: !broke SERVICE what broke"
    )


def _listing(
    title: str, incidents: tuple[Incident, ...], core: Core, request: Request
) -> list[str]:
    tz = core.config.timezone
    shown = incidents[:MAX_LISTED]
    lines = [title, *(incident_line(incident, tz, request.now) for incident in shown)]
    if len(incidents) > len(shown):
        lines.append(f"… and {len(incidents) - len(shown)} more (see the web page)")
    return lines


@command(
    "!broke [SERVICE] what broke",
    "record an incident; the service defaults to the deploy that is running",
    example(
        "!broke pkgdb2 the acl page returns 500",
        "recorded incident #2 (pkgdb2, deploy pkgdb2-2.0 +25 min); fix with !fixed 2",
    ),
)
async def broke(core: Core, request: Request) -> Reply:
    """Record the incident (with the minutes into the service's running deploy), then
    alert that deploy's firefighting channel; a failing alert is logged, not replied."""
    service, text, deploy = broke_target(core, request)
    minutes = None
    if deploy is not None:
        minutes = int((request.now - deploy.when).total_seconds() // 60)
    with core.store.transaction():  # the incident and its bus message: kept together
        incident = core.store.report_incident(
            service=service,
            text=text,
            reporter_nick=request.nick,
            reporter_account=request.account,
            channel=request.channel or "",
            now=request.now,
            deploy_id=deploy.id if deploy is not None else None,
            minutes_into_deploy=minutes,
        )
        core.publish(incident_reported(incident))
    if deploy is not None and request.deploy_day is not None:
        try:
            request.deploy_day.firefight.on_incident(incident, deploy, request.now)
        except Exception:  # the incident is recorded: say so whatever the alert did
            log.exception(
                "alerting the firefighting channel of incident %s failed", incident.number
            )
    link = deploy_link(incident)
    where = f"{service}, {link}" if link else service
    n = incident.number
    return Reply(
        (f"recorded incident #{n} ({where}); fix with !fixed {n}",), recorded=((n, service),)
    )


@command(
    "!take N",
    "make incident N yours (you are working on it)",
    example("!take 1", "incident #1 (pkgdb2) is now owned by alice"),
)
async def take(core: Core, request: Request) -> Reply:
    """Make the requester the owner (the first take acknowledges the incident)."""
    number, extra = split_number(request)
    if extra:
        raise UsageError(f"!take takes only the incident number, got {extra!r} after it")
    before = core.store.get(number)
    incident = core.store.take(number, request.nick, request.account, request.now)
    if before.owner == incident.owner:
        return Reply.say(f"incident #{number} ({incident.service}) is already yours")
    taken_from = f", taken from {before.owner}" if before.owner else ""
    return Reply.say(
        f"incident #{number} ({incident.service}) is now owned by {request.nick}{taken_from}"
    )


@command(
    "!note N text",
    "add a note to incident N (what you found, what you tried)",
    example(
        "!note 1 rolled back the acl endpoint; watching the logs",
        "noted on incident #1 (pkgdb2)",
    ),
)
async def note(core: Core, request: Request) -> Reply:
    """Add the note with the requester's nick and account; refused (and said so) once
    the incident has ``max_notes_per_incident`` notes."""
    number, text = split_number(request, needs_text="say what to note after the number")
    incident = core.store.add_note(
        number,
        request.nick,
        request.account,
        text,
        request.now,
        max_notes=core.config.max_notes_per_incident,
    )
    return Reply.say(f"noted on incident #{number} ({incident.service})")


@command(
    "!fixed N [note]",
    "mark incident N fixed, with an optional note on the fix",
    example(
        "!fixed 1 the acl endpoint returns [] again",
        "incident #1 (pkgdb2) fixed by alice after 5m; 0 open incidents left",
    ),
)
async def fixed(core: Core, request: Request) -> Reply:
    """Fix the incident, say its time to repair and how many incidents are still open."""
    number, text = split_number(request)
    with core.store.transaction():  # the fix and its bus message: kept together
        incident = core.store.fix(
            number, request.nick, request.account, request.now, note=text or None
        )
        core.publish(incident_fixed(incident, account=request.account, note=text or None))
    repair = incident.time_to_repair
    after = f" after {elapsed_text(repair)}" if repair is not None else ""
    still_open = len(core.store.list_incidents(state="open"))
    return Reply.say(
        f"incident #{number} ({incident.service}) fixed by {request.nick}{after}; "
        f"{plural(still_open, 'open incident')} left"
    )


@command(
    "!incident N",
    "one incident: state, service, deploy, reporter, owner, times and the last notes",
    example(
        "!incident 1",
        "incident #1 OPEN (pkgdb2, deploy pkgdb2-2.0 +20 min): the acl page returns 500",
        "reported by alice in #fedora-admin at Tue 2026-12-15 13:20 UTC; owner: nobody (!take 1)",
        "open for 5m",
    ),
)
async def incident(core: Core, request: Request) -> Reply:
    """The lines of :func:`~deploybot.texts.incident_detail`."""
    number, extra = split_number(request)
    if extra:
        raise UsageError(f"!incident takes only the number, got {extra!r} after it")
    found = core.store.get(number)
    return Reply.say(*incident_detail(found, core.config.timezone, request.now))


@command(
    "!incidents [open|today|SERVICE]",
    "open incidents (the default), today's, or the latest of one service",
    example(
        "!incidents",
        "1 open incident:",
        "#1 [open, no owner] pkgdb2: the acl page returns 500 (alice, 13:20 UTC)",
    ),
    example(
        "!incidents today",
        "1 incident reported today (2026-12-15 UTC), 1 open:",
        "#1 [open, no owner] pkgdb2: the acl page returns 500 (alice, 13:20 UTC)",
    ),
    example(
        "!incidents pkgdb2",
        "latest incidents of pkgdb2, newest first:",
        "#1 [open, no owner] pkgdb2: the acl page returns 500 (alice, 13:20 UTC)",
    ),
)
async def incidents(core: Core, request: Request) -> Reply:
    """The lines of :func:`list_incidents`."""
    words = request.args.split()
    if len(words) > 1:
        raise UsageError(f"one of open, today or a service, got {len(words)} words")
    what = words[0] if words else "open"
    return Reply.say(*list_incidents(core, request, what))


def list_incidents(core: Core, request: Request, what: str) -> list[str]:
    """The lines of ``!incidents WHAT``."""
    tz = core.config.timezone
    if what.lower() == "open":
        found = core.store.list_incidents(state="open")
        if not found:
            return ["no open incidents"]
        return _listing(f"{plural(len(found), 'open incident')}:", found, core, request)
    if what.lower() == "today":
        start, end = day_bounds(request.now, tz)
        day = f"{start.astimezone(tz):%Y-%m-%d} {core.config.tz_name}"
        found = core.store.list_incidents(since=start, until=end)
        if not found:
            return [f"no incidents reported today ({day})"]
        still_open = sum(1 for incident in found if incident.open)
        title = f"{plural(len(found), 'incident')} reported today ({day}), {still_open} open:"
        return _listing(title, found, core, request)
    service = known_service(core, what) or what
    found = core.store.list_incidents(service=service, newest_first=True, limit=MAX_LISTED + 1)
    if not found:
        if known_service(core, what) is None:
            raise UsageError(f"{what!r} is neither open, today nor a known service")
        return [f"no incidents recorded for {service}"]
    title = f"latest incidents of {service}, newest first:"
    lines = _listing(title, found[:MAX_LISTED], core, request)
    if len(found) > MAX_LISTED:
        lines.append("… older ones: see the web page or !incident N")
    return lines


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (broke, take, note, fixed, incident, incidents)
