"""API consumers (SPEC §3): ``!uses SERVICE [what]``, ``!uses --remove SERVICE`` and
``!consumers SERVICE``.

A service's consumers are those its plans list (``consumers:``) and the people who said
``!uses`` (kept in the store, paged on the service's deploy day).  Service names are
matched ignoring case and shown as the plans (or the first ``!uses``) spell them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, UsageError, command, example
from deploybot.durations import plural
from deploybot.plans.schedule import running, upcoming
from deploybot.texts import plan_line

if TYPE_CHECKING:
    from deploybot.core import Core

# What `!uses` accepts as a new service name (planned services are taken as spelled).
SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+/-]{0,63}")


def planned_service(core: Core, word: str) -> str | None:
    """The service of some plan in force named ``word`` (any case), as the plan spells it."""
    folded = word.casefold()
    for plan in core.plans:
        if plan.service.casefold() == folded:
            return plan.service
    return None


def known_service(core: Core, word: str) -> str | None:
    """``word`` as a known service: a planned one, or one with ``!uses`` consumers."""
    planned = planned_service(core, word)
    if planned is not None:
        return planned
    registered = core.store.consumers(word)
    return registered[0].service if registered else None


def planned_services(core: Core) -> list[str]:
    """Every planned service, once, in plan order."""
    return list(dict.fromkeys(plan.service for plan in core.plans))


#: ``!uses --remove SERVICE`` takes the requester's own registration back.
REMOVE = "--remove"


@command(
    f"!uses SERVICE [what] | !uses {REMOVE} SERVICE",
    "register yourself as a user of SERVICE's API; you are paged on its deploy day; "
    f"{REMOVE} takes your registration back",
    example(
        "!uses pkgdb2 the rel-eng compose scripts read /api/packager/acl",
        "alice: registered as a consumer of pkgdb2 (the rel-eng compose scripts read "
        "/api/packager/acl); you will be paged on its deploy day",
        "next: pkgdb2-2.0 — pkgdb2 2.0 'pkgdb2 replaces pkgdb1' Tue 2026-12-15 13:00 UTC "
        "(running: started 25m ago, ends 21:00 UTC) ⚠ 1 API break",
    ),
    example(
        f"!uses {REMOVE} pkgdb2",
        "alice: you were not registered as a consumer of pkgdb2 (!consumers pkgdb2 lists who is)",
    ),
)
async def uses(core: Core, request: Request) -> Reply:
    """Store the requester (nick and account) as a consumer and say when its next deploy is.

    A service not planned nor registered yet is taken as typed, if it looks like a name.
    """
    word, _, what = request.args.strip().partition(" ")
    if word == REMOVE:
        return _remove(core, request, what.split())
    if not word:
        raise UsageError("say which service you use")
    service = known_service(core, word)
    if service is None:
        if not SERVICE_NAME.fullmatch(word):
            raise UsageError(
                f"{word!r} is not a service name (letters, digits, '.', '_', '-', '+', '/')"
            )
        service = word
    entry = core.store.add_consumer(
        service, request.nick, request.account, what.strip() or None, request.now
    )
    detail = f" ({entry.what})" if entry.what else ""
    lines = [
        f"{request.nick}: registered as a consumer of {service}{detail}; "
        "you will be paged on its deploy day"
    ]
    next_deploys = [
        p
        for p in (*running(core.plans, request.now), *upcoming(core.plans, request.now))
        if p.service == service
    ]
    if next_deploys:
        lines.append(f"next: {plan_line(next_deploys[0], request.now, core.config.timezone)}")
    else:
        lines.append(f"no deploy of {service} is planned yet")
    return Reply.say(*lines)


def _remove(core: Core, request: Request, words: list[str]) -> Reply:
    """``!uses --remove SERVICE``: forget the requester's own registration, and say what
    it was or that there was none."""
    if len(words) != 1:
        raise UsageError(f"say which service after {REMOVE}" if not words else "one service only")
    service = known_service(core, words[0]) or words[0]
    removed = core.store.remove_consumer(service, request.nick)
    if removed is None:
        return Reply.say(
            f"{request.nick}: you were not registered as a consumer of {service} "
            f"(!consumers {service} lists who is)"
        )
    detail = f" ({removed.what})" if removed.what else ""
    return Reply.say(
        f"{request.nick}: removed your registration as a consumer of {removed.service}{detail}"
    )


@command(
    "!consumers SERVICE",
    "known users of SERVICE's API: from its plans and from !uses",
    example(
        "!consumers pkgdb2",
        "1 known consumer of pkgdb2:",
        "rel-eng compose scripts (team rel-eng, contact dgilmore) — plan pkgdb2-2.0",
    ),
)
async def consumers(core: Core, request: Request) -> Reply:
    """The consumers every plan of SERVICE lists (once each), then those of ``!uses``."""
    words = request.args.split()
    if len(words) != 1:
        raise UsageError("say which service" if not words else "one service only")
    service = known_service(core, words[0]) or words[0]
    lines: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for plan in core.plans:
        if plan.service != service:
            continue
        for consumer in plan.consumers:
            key = (consumer.name, consumer.team, consumer.contact)
            if key in seen:
                continue
            seen.add(key)
            team = f"team {consumer.team}, " if consumer.team else ""
            contact = f"contact {consumer.contact}" if consumer.contact else "NO CONTACT"
            lines.append(f"{consumer.name} ({team}{contact}) — plan {plan.id}")
    for entry in core.store.consumers(service):
        what = entry.what or "no details given"
        since = entry.registered_at.astimezone(core.config.timezone)
        lines.append(f"{entry.nick}: {what} (!uses, since {since:%Y-%m-%d})")
    if not lines:
        return Reply.say(f"no known consumers of {service}; register with !uses {service} [what]")
    return Reply.say(f"{plural(len(lines), 'known consumer')} of {service}:", *lines)


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (uses, consumers)
