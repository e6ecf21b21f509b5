"""The ``/calendar.ics`` feed (SPEC §6): the deploy windows as an iCalendar (RFC 5545),
built with the ``icalendar`` library.

:func:`calendar_feed` is a pure function of the plans, ``now``, ``notice_days`` and the
server's address; the HTTP layer serves its result with ``Content-Type: text/calendar;
charset=utf-8``.  The events are :class:`icalendar.Event` objects: the library writes
the content lines — escaping of TEXT values (backslash, ``;``, ``,``, line breaks),
folding at 75 octets (never inside a UTF-8 character), CRLF line ends, UTC times.

The calendar
    ``VERSION:2.0``, a ``PRODID``, ``CALSCALE:GREGORIAN``, ``METHOD:PUBLISH`` and a display
    name (``X-WR-CALNAME``); then one ``VEVENT`` per plan, by start time (then id).  No
    plan gives a valid calendar with no event.

An event
    ``UID`` ``{plan.id}@deploybot`` (stable across runs and restarts, so a calendar client
    updates the event when the plan changes); ``DTSTAMP`` is ``now``; ``DTSTART``/``DTEND``
    the window ``[when, end)``, all in UTC (``20261215T130000Z``), so no ``VTIMEZONE`` is
    needed (no ``DTEND`` for an empty window: it must be later than ``DTSTART``).
    ``SUMMARY`` is ``deploy SERVICE RELEASE``, prefixed ``⚠ API BREAK: `` when the plan
    breaks an API.  ``DESCRIPTION`` is several lines: the title, each API break (or "no
    API break"), the readiness of :func:`deploybot.plans.policy.assess` (a verdict, then
    each rule as ``met``/``MISSING`` with its reason, times in UTC), staging (URL and call
    for testing), production, owners, teams and the firefighting roster.  ``URL`` is the
    deploy page, ``{base_url}deployments/{id}`` (when the caller gives ``base_url``).
    ``CATEGORIES``: ``deploy``, the service, and ``API break`` / ``not ready`` when they
    apply.

Text from plan files
    Every TEXT value is cleaned before the library escapes it (:func:`clean_text`): CR,
    NUL and the other control characters (C0 but TAB and LF, DEL, C1) and lone
    surrogates are removed; the Unicode line breaks NEL, LS and PS, and ``\\N``, become
    LF.  So no value can end a content line or start a property: ``"\\r\\nEND:VEVENT"``
    in a plan stays inside its property, and the feed always encodes to UTF-8.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import icalendar

from deploybot.durations import format_duration
from deploybot.plans.freezes import Freeze
from deploybot.plans.model import Plan
from deploybot.plans.policy import DEFAULT_NOTICE_DAYS, Readiness, Span, assess
from deploybot.web.pages import path_segment

__all__ = [
    "CALENDAR_NAME",
    "PRODID",
    "calendar_feed",
    "clean_text",
    "deploy_page_url",
]

PRODID = "-//deploybot//deploy calendar//EN"
CALENDAR_NAME = "deploys"

_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")


def clean_text(value: str) -> str:
    """``value`` without what may not appear in iCalendar TEXT, line breaks as LF.

    ``\\N`` (a backslash and a capital N) is a line break too: icalendar reads it so
    in the values it is given (RFC 5545's other spelling of the ``\\n`` escape), so it
    is made one here, where it is documented and tested, rather than by surprise.

    >>> clean_text("a\\r\\nb\\x00c\\u2028d")
    'a\\nbc\\nd'
    >>> clean_text("a\\\\Nb")
    'a\\nb'
    """
    value = _LINE_BREAKS.sub("\n", value).replace("\\N", "\n")
    return "".join(
        ch for ch in value if ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cs")
    )


def deploy_page_url(base_url: str, plan_id: str) -> str:
    """The deploy page of ``plan_id`` under ``base_url`` (which ends with ``/``), the id
    quoted as one path segment.

    >>> deploy_page_url("http://127.0.0.1:8080/", "pkgdb2-2.0")
    'http://127.0.0.1:8080/deployments/pkgdb2-2.0'
    """
    return f"{base_url}deployments/{path_segment(plan_id)}"


def calendar_feed(
    plans: Sequence[Plan],
    *,
    now: datetime,
    notice_days: int = DEFAULT_NOTICE_DAYS,
    base_url: str | None = None,
    freezes: Sequence[Freeze] = (),
    readiness: Callable[[Plan], Readiness] | None = None,
) -> str:
    """The iCalendar text of ``plans`` (CRLF line ends), stamped ``now``; readiness is
    assessed with ``notice_days``; each event's ``URL`` is its deploy page under
    ``base_url`` (none without it).  ``readiness`` (a core's, with the freeze rule)
    replaces the policy with ``notice_days``.  Each of ``freezes`` is an event too
    (``UID`` ``freeze-{start}-{name}@deploybot``, ``SUMMARY`` ``FREEZE: {name}``, the
    deploys in it in ``DESCRIPTION``).  See the module documentation."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    calendar = icalendar.Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", CALENDAR_NAME)
    assessed = readiness or (lambda plan: assess(plan, notice_days))
    for plan in sorted(plans, key=lambda p: (p.when, p.id)):
        calendar.add_component(_event(plan, now, assessed(plan), base_url))
    for freeze in freezes:
        calendar.add_component(_freeze_event(freeze, plans, now))
    ical: bytes = calendar.to_ical()
    return ical.decode("utf-8")


def _event(
    plan: Plan, now: datetime, readiness: Readiness, base_url: str | None
) -> icalendar.Event:
    summary = f"deploy {plan.service} {plan.release}".strip()
    if plan.breaks_api:
        summary = f"⚠ API BREAK: {summary}"
    categories = ["deploy", plan.service]
    if plan.breaks_api:
        categories.append("API break")
    if not readiness.ready:
        categories.append("not ready")
    event = icalendar.Event()
    event.add("uid", f"{clean_text(plan.id)}@deploybot")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", plan.when.astimezone(UTC))
    if plan.duration > timedelta(0):  # DTEND must be later than DTSTART
        event.add("dtend", plan.end.astimezone(UTC))
    event.add("summary", clean_text(summary))
    event.add("description", clean_text(_description(plan, readiness)))
    if base_url is not None:
        event.add("url", deploy_page_url(base_url, plan.id))
    event.add("categories", [clean_text(c) for c in categories if c])
    return event


def _freeze_event(freeze: Freeze, plans: Sequence[Plan], now: datetime) -> icalendar.Event:
    event = icalendar.Event()
    name = clean_text(freeze.name)
    slug = "".join(c if c.isalnum() else "-" for c in name.lower())
    event.add("uid", f"freeze-{freeze.start:%Y%m%dT%H%M%SZ}-{slug}@deploybot")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", freeze.start.astimezone(UTC))
    event.add("dtend", freeze.end.astimezone(UTC))
    event.add("summary", f"FREEZE: {name}")
    inside = [plan.id for plan in plans if freeze.overlaps(plan.when, plan.end)]
    text = "Infrastructure freeze: a change to a frozen host needs an approved freeze break."
    if inside:
        text += "\nDeploys in it: " + ", ".join(inside)
    event.add("description", clean_text(text))
    event.add("categories", ["freeze"])
    return event


def _description(plan: Plan, readiness: Readiness) -> str:
    """The event's DESCRIPTION before escaping: plain lines for people."""
    lines: list[str] = []
    if plan.title:
        lines.append(plan.title)
    lines.append(f"{plan.id}: {format_duration(plan.duration)} window")
    if plan.api_breaks:
        lines.append("")
        for api_break in plan.api_breaks:
            migration = api_break.migration or "no migration note"
            lines.append(f"⚠ API BREAK: {api_break.endpoint} — {api_break.change}")
            lines.append(f"  migration: {migration}")
    else:
        lines.append("no API break")
    lines.append("")
    lines += _readiness_lines(readiness)
    lines.append("")
    staging = plan.staging.url or "no staging URL"
    called = plan.staging.call_for_testing
    staging += f" (call for testing {called})" if called else " (no call for testing)"
    lines.append(f"staging: {staging}")
    if plan.production.url:
        lines.append(f"production: {plan.production.url}")
    if plan.owners:
        lines.append(f"owners: {', '.join(plan.owners)}")
    if plan.teams:
        lines.append(f"teams: {', '.join(plan.teams)}")
    if plan.roster.channel:
        lines.append(f"firefighting channel: {plan.roster.channel}")
    for shift in plan.roster.shifts:
        whole = shift.written_from is None and shift.written_to is None
        hours = "whole window" if whole else Span(shift.start, shift.end).render(UTC)
        people = ", ".join(shift.people) or "nobody"
        lines.append(f"roster: {shift.team} ({hours}): {people}")
    return "\n".join(lines)


def _readiness_lines(readiness: Readiness) -> list[str]:
    if not readiness.under_policy and not readiness.checks:
        return [f"readiness: EXEMPT — {readiness.exemption}"]
    counted = f"{readiness.met_count} of {len(readiness.checks)} rules met"
    lines = [f"readiness: {readiness.verdict} ({counted})"]
    for check in readiness.checks:
        lines.append(f"  {'met' if check.met else 'MISSING'}: {check.title} — {check.reason}")
    return lines
