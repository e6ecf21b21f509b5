"""Deploy commands (SPEC §3): ``!deploys``, ``!deploy ID``, ``!breaks [ID]``, ``!ready ID``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, UsageError, command, example
from deploybot.deployday.roster import roster_line
from deploybot.errors import DeploybotError
from deploybot.plans.model import Plan
from deploybot.plans.policy import format_readiness
from deploybot.plans.schedule import describe_countdown, running, upcoming
from deploybot.texts import break_lines, plan_line, when_text

if TYPE_CHECKING:
    from deploybot.core import Core

#: ``!deploys`` lists at most this many upcoming deploys (running ones are always shown).
MAX_UPCOMING = 10
#: An unknown plan id's error names at most this many known ids.
MAX_KNOWN_IDS = 10


def find_plan(core: Core, plan_id: str) -> Plan:
    """The plan in force with id ``plan_id`` (any case); an error listing the known ids."""
    plan = core.book.get(plan_id)
    if plan is not None:
        return plan
    for candidate in core.plans:
        if candidate.id.casefold() == plan_id.casefold():
            return candidate
    ids = [p.id for p in core.plans]
    if not ids:
        raise DeploybotError(f"no plan {plan_id!r}; no plans are loaded")
    known = ", ".join(ids[:MAX_KNOWN_IDS])
    if len(ids) > MAX_KNOWN_IDS:
        known += f" and {len(ids) - MAX_KNOWN_IDS} more (!deploys)"
    raise DeploybotError(f"no plan {plan_id!r}; known: {known}")


def one_plan_id(request: Request) -> str:
    """The single plan id argument of ``request``, or a usage error saying what is wrong."""
    words = request.args.split()
    if not words:
        raise UsageError("say which plan (its id, as !deploys shows)")
    if len(words) > 1:
        raise UsageError(f"one plan id only, got {len(words)} words")
    return words[0]


def no_arguments(request: Request) -> None:
    if request.args.strip():
        raise UsageError(f"!{request.name} takes no arguments, got {request.args.strip()!r}")


@command(
    "!deploys",
    "running and upcoming deploys with their countdown; ⚠ marks API breaks",
    example(
        "!deploys",
        "pkgdb2-2.0 — pkgdb2 2.0 'pkgdb2 replaces pkgdb1' Tue 2026-12-15 13:00 UTC "
        "(running: started 25m ago, ends 21:00 UTC) ⚠ 1 API break",
        "fas-3.0 — fas 3.0 'FAS 3' Sun 2026-12-20 09:00 UTC (in 4 days 20h)",
    ),
)
async def deploys(core: Core, request: Request) -> Reply:
    """Running deploys first, then at most :data:`MAX_UPCOMING` upcoming ones."""
    no_arguments(request)
    tz = core.config.timezone
    now = request.now
    now_running = running(core.plans, now)
    coming = upcoming(core.plans, now)
    if not now_running and not coming:
        return Reply.say("no deploys running or planned")
    lines = [plan_line(plan, now, tz) for plan in now_running]
    lines += [plan_line(plan, now, tz) for plan in coming[:MAX_UPCOMING]]
    if len(coming) > MAX_UPCOMING:
        lines.append(f"… and {len(coming) - MAX_UPCOMING} more upcoming deploys")
    return Reply.say(*lines)


@command(
    "!deploy ID",
    "one plan: when, what breaks, staging, teams, roster and readiness",
    example(
        "!deploy pkgdb2-2.0",
        "pkgdb2-2.0 — pkgdb2 2.0 'pkgdb2 replaces pkgdb1' Tue 2026-12-15 13:00 UTC "
        "(running: started 25m ago, ends 21:00 UTC) ⚠ 1 API break",
        "owners: pingou; playbooks: groups/pkgdb.yml",
        "⚠ API BREAK: /api/packager/acl — returns null instead of [] when the packager has "
        "no ACLs — migration: treat null as an empty list",
        "staging: https://admin.stg.fedoraproject.org/pkgdb (call for testing 2026-11-17); "
        "production: https://admin.fedoraproject.org/pkgdb",
        "teams to be ready: rel-eng",
        "pkgdb2-2.0 roster (#pkgdb2-firefight), ● = on shift now: infrastructure: ●pingou "
        "13:00–17:00 UTC; abadger1999 17:00–21:00 UTC | rel-eng: ●dgilmore whole window | "
        "escalation: nirik",
        "consumers: rel-eng compose scripts (dgilmore)",
        "pkgdb2-2.0: READY (7/7) — !ready pkgdb2-2.0 for the checklist",
    ),
)
async def deploy(core: Core, request: Request) -> Reply:
    """The lines of :func:`describe_plan`."""
    plan = find_plan(core, one_plan_id(request))
    return Reply.say(*describe_plan(core, plan, request))


@command(
    "!breaks [ID]",
    "API breaks of running and upcoming deploys (or of plan ID), with migration notes",
    example(
        "!breaks",
        "pkgdb2-2.0 (Tue 2026-12-15 13:00 UTC, started 25m ago):",
        "⚠ API BREAK: /api/packager/acl — returns null instead of [] when the packager has "
        "no ACLs — migration: treat null as an empty list",
    ),
    example(
        "!breaks pkgdb2-2.0",
        "pkgdb2-2.0 (Tue 2026-12-15 13:00 UTC):",
        "⚠ API BREAK: /api/packager/acl — returns null instead of [] when the packager has "
        "no ACLs — migration: treat null as an empty list",
    ),
)
async def breaks(core: Core, request: Request) -> Reply:
    """Per plan with API breaks (running, then upcoming, or the one named), its breaks."""
    tz = core.config.timezone
    now = request.now
    if request.args.strip():
        plan = find_plan(core, one_plan_id(request))
        if not plan.api_breaks:
            return Reply.say(f"{plan.id} has no API breaks")
        return Reply.say(f"{plan.id} ({when_text(plan.when, tz)}):", *break_lines(plan))
    plans = [p for p in (*running(core.plans, now), *upcoming(core.plans, now)) if p.api_breaks]
    if not plans:
        return Reply.say("no API breaks in running or upcoming deploys")
    lines: list[str] = []
    for plan in plans:
        countdown = describe_countdown(plan.when - now)
        lines.append(f"{plan.id} ({when_text(plan.when, tz)}, {countdown}):")
        lines += break_lines(plan)
    return Reply.say(*lines)


@command(
    "!ready ID",
    "the deployment policy checklist of a plan (SPEC §2): each rule met or missing",
    example(
        "!ready pkgdb2-2.0",
        "pkgdb2-2.0: READY (7/7)",
        "  ✔ api-break-announcement: announced to infrastructure on 2026-11-20 (25 days ahead)",
        "  ✔ devel-announcement: announced to devel on 2026-11-22 (23 days ahead)",
        "  ✔ meeting: discussed at the weekly meeting on 2026-12-02",
        "  ✔ staging-call: call for testing in staging sent on 2026-11-17 (28 days ahead)",
        "  ✔ roster-coverage: window 13:00–21:00 UTC covered by 3 people; "
        "every team present (rel-eng)",
        "  ✔ consumer-contacts: the consumer has a contact",
        "  ✔ no-undeclared-drift: no undeclared drift on 2 probes (probed 2026-12-15 12:00 UTC)",
    ),
)
async def ready(core: Core, request: Request) -> Reply:
    """The lines of :func:`~deploybot.plans.policy.format_readiness`."""
    plan = find_plan(core, one_plan_id(request))
    readiness = core.readiness(plan)
    return Reply.say(*format_readiness(readiness, core.config.timezone))


def describe_plan(core: Core, plan: Plan, request: Request) -> list[str]:
    """The lines of ``!deploy ID``."""
    tz = core.config.timezone
    lines = [plan_line(plan, request.now, tz)]
    people = [f"owners: {', '.join(plan.owners) or 'none listed'}"]
    if plan.playbooks:
        people.append(f"playbooks: {', '.join(plan.playbooks)}")
    lines.append("; ".join(people))
    lines += break_lines(plan) or ["no API breaks"]
    staging = f"staging: {plan.staging.url or 'none'}"
    if plan.staging.call_for_testing is not None:
        staging += f" (call for testing {plan.staging.call_for_testing})"
    if plan.production.url:
        staging += f"; production: {plan.production.url}"
    lines.append(staging)
    if plan.teams:
        lines.append(f"teams to be ready: {', '.join(plan.teams)}")
    lines.append(roster_line(plan, request.now, core.config))
    if plan.consumers:
        consumers = ", ".join(
            f"{c.name} ({c.contact})" if c.contact else f"{c.name} (no contact)"
            for c in plan.consumers
        )
        lines.append(f"consumers: {consumers}")
    readiness = core.readiness(plan)
    verdict = format_readiness(readiness, tz)[0]
    if readiness.missing:
        missing = ", ".join(check.rule for check in readiness.missing)
        verdict += f": missing {missing}"
    lines.append(f"{verdict} — !ready {plan.id} for the checklist")
    return lines


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (deploys, deploy, breaks, ready)
