"""The ``/calendar.ics`` feed (SPEC §6): the deploy windows as an iCalendar (RFC 5545).

:func:`calendar_feed` is a pure function of the plans, ``now`` and ``notice_days``; the
HTTP layer serves its result encoded as UTF-8 with ``Content-Type: text/calendar;
charset=utf-8``.

The calendar
    ``VERSION:2.0``, a ``PRODID``, ``CALSCALE:GREGORIAN``, ``METHOD:PUBLISH`` and a display
    name (``X-WR-CALNAME``); then one ``VEVENT`` per plan, by start time (then id).  No
    plan gives a valid calendar with no event.

An event
    ``UID`` ``{plan.id}@deploybot`` (stable across runs and restarts, so a calendar client
    updates the event when the plan changes); ``DTSTAMP`` is ``now``; ``DTSTART``/``DTEND``
    the window ``[when, end)``, all in UTC (``20261215T130000Z``), so no ``VTIMEZONE`` is
    needed.  ``SUMMARY`` is ``deploy SERVICE RELEASE``, prefixed ``⚠ API BREAK: `` when the
    plan breaks an API.  ``DESCRIPTION`` is several lines: the title, each API break (or
    "no API break"), the readiness of :func:`deploybot.plans.policy.assess` (a verdict, then
    each rule as ``met``/``MISSING`` with its reason, times in UTC), staging (URL and call
    for testing), production, owners, teams and the firefighting roster.  ``CATEGORIES``:
    ``deploy``, the service, and ``API break`` / ``not ready`` when they apply.

Text from plan files
    Every TEXT value is cleaned, then escaped: CR, NUL and the other control characters
    (C0 but TAB and LF, DEL, C1) and lone surrogates are removed; the Unicode line breaks
    NEL, LS and PS become LF; then backslash, ``;`` and ``,`` are escaped with a backslash
    and LF is written ``\\n``.  So no value can end a content line or start a property:
    ``"\\r\\nEND:VEVENT"`` in a plan stays inside its property.  Content lines are folded
    (CRLF and one space) so that no line is longer than 75 octets, never inside a UTF-8
    character nor inside a backslash escape.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from deploybot.durations import format_duration
from deploybot.plans.model import Plan
from deploybot.plans.policy import DEFAULT_NOTICE_DAYS, Readiness, Span, assess

__all__ = [
    "MAX_LINE_OCTETS",
    "PRODID",
    "calendar_feed",
    "clean_text",
    "escape_text",
    "fold_line",
]

PRODID = "-//deploybot//deploy calendar//EN"
CALENDAR_NAME = "deploys"
#: RFC 5545 §3.1: content lines SHOULD NOT be longer than 75 octets, line break excluded.
MAX_LINE_OCTETS = 75

_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")
# One escape (backslash and the character it escapes) or one character: the units that a
# fold never splits.
_UNITS = re.compile(r"\\.|.", re.DOTALL)


# -- values -----------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """``value`` without what may not appear in iCalendar TEXT, line breaks as LF.

    >>> clean_text("a\\r\\nb\\x00c\\u2028d")
    'a\\nbc\\nd'
    """
    value = _LINE_BREAKS.sub("\n", value)
    return "".join(
        ch for ch in value if ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cs")
    )


def escape_text(value: str) -> str:
    """``value`` cleaned (:func:`clean_text`) and escaped as an RFC 5545 TEXT value.

    >>> escape_text("a, b; c\\\\d\\ne")
    'a\\\\, b\\\\; c\\\\\\\\d\\\\ne'
    """
    return (
        clean_text(value)
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
    )


def fold_line(line: str) -> list[str]:
    """The physical lines of the content line ``line`` (continuations start with a space),
    each at most :data:`MAX_LINE_OCTETS` octets in UTF-8; joined with CRLF they unfold
    back to ``line``.  A character, or a backslash escape, is never split."""
    lines: list[str] = []
    current: list[str] = []
    size = 0
    for unit in _UNITS.findall(line):
        octets = len(unit.encode("utf-8"))
        if size + octets > MAX_LINE_OCTETS and current:
            lines.append("".join(current))
            current, size = [" "], 1
        current.append(unit)
        size += octets
    lines.append("".join(current))
    return lines


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# -- the feed ---------------------------------------------------------------------------


def calendar_feed(
    plans: Sequence[Plan], *, now: datetime, notice_days: int = DEFAULT_NOTICE_DAYS
) -> str:
    """The iCalendar text of ``plans`` (CRLF line ends), stamped ``now``; readiness is
    assessed with ``notice_days``.  See the module documentation."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{CALENDAR_NAME}",
    ]
    for plan in sorted(plans, key=lambda p: (p.when, p.id)):
        lines += _event(plan, now, assess(plan, notice_days))
    lines.append("END:VCALENDAR")
    return "".join(f"{physical}\r\n" for line in lines for physical in fold_line(line))


def _event(plan: Plan, now: datetime, readiness: Readiness) -> Iterator[str]:
    summary = f"deploy {plan.service} {plan.release}".strip()
    if plan.breaks_api:
        summary = f"⚠ API BREAK: {summary}"
    categories = ["deploy", plan.service]
    if plan.breaks_api:
        categories.append("API break")
    if not readiness.ready:
        categories.append("not ready")
    yield "BEGIN:VEVENT"
    yield f"UID:{escape_text(plan.id)}@deploybot"
    yield f"DTSTAMP:{_utc(now)}"
    yield f"DTSTART:{_utc(plan.when)}"
    if plan.duration > timedelta(0):  # DTEND must be later than DTSTART
        yield f"DTEND:{_utc(plan.end)}"
    yield f"SUMMARY:{escape_text(summary)}"
    yield f"DESCRIPTION:{escape_text(_description(plan, readiness))}"
    yield "CATEGORIES:" + ",".join(escape_text(c) for c in categories if c)
    yield "END:VEVENT"


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
    if not readiness.under_policy:
        return [f"readiness: EXEMPT — {readiness.exemption}"]
    counted = f"{readiness.met_count} of {len(readiness.checks)} rules met"
    lines = [f"readiness: {readiness.verdict} ({counted})"]
    for check in readiness.checks:
        lines.append(f"  {'met' if check.met else 'MISSING'}: {check.title} — {check.reason}")
    return lines
