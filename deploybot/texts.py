"""The bot's words: how plans, API breaks, countdowns and incidents read on IRC.

Pure functions of their arguments (the current time ``now`` and the display timezone
``tz`` are passed in), shared by the commands and the countdown posts.  Each function
returns one line or a list of lines; no line contains CR or LF of ours (text that comes
from plan files or from users is cleaned and cut by the transport, see
:mod:`deploybot.lines`).  Times are shown in ``tz`` with its abbreviation, e.g.
``Tue 2026-12-15 13:00 UTC``; day names are English whatever the locale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from deploybot.durations import format_duration, plural
from deploybot.plans.model import ApiBreak, Plan
from deploybot.plans.schedule import countdown_at, describe_countdown
from deploybot.store import Incident, TimelineEntry

__all__ = [
    "MAX_BREAKS_IN_POST",
    "break_line",
    "break_lines",
    "clock_text",
    "countdown_post",
    "deploy_link",
    "elapsed_text",
    "incident_detail",
    "incident_line",
    "irc_back_line",
    "named",
    "plan_line",
    "when_text",
]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

#: A countdown post lists at most this many API breaks, then points to ``!breaks ID``.
MAX_BREAKS_IN_POST = 3
#: ``!incident N`` shows at most this many of the latest notes.
MAX_NOTES_SHOWN = 3


# --- times -------------------------------------------------------------------------------


def when_text(moment: datetime, tz: tzinfo) -> str:
    """``Tue 2026-12-15 13:00 UTC``: a moment in ``tz``, with its day and zone name."""
    local = moment.astimezone(tz)
    return f"{_DAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname() or ''}".rstrip()


def clock_text(moment: datetime, tz: tzinfo, today: datetime | None = None) -> str:
    """``13:00 UTC`` when ``moment`` falls on the same day in ``tz`` as ``today``
    (default: itself), else the full :func:`when_text`."""
    local = moment.astimezone(tz)
    reference = (today or moment).astimezone(tz)
    if local.date() != reference.date():
        return when_text(moment, tz)
    return f"{local:%H:%M} {local.tzname() or ''}".rstrip()


def elapsed_text(delta: timedelta) -> str:
    """A non-negative span for people: ``<1m``, ``42m``, ``3h 5m``, ``2 days 4h``."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes == 0:
        return "<1m"
    if minutes < 60:
        return f"{minutes}m"
    hours, mins = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    days, hours = divmod(hours, 24)
    text = plural(days, "day")
    return f"{text} {hours}h" if hours else text


def irc_back_line(
    away: timedelta, since: datetime, lost: str | None, last: str, failures: int
) -> str:
    """What the bot says in the admin channel once back on IRC after an outage: how long,
    since when (UTC), what happened (``lost``: why the connection went; None when the bot
    could not get on at start) and the failed attempts since, with the latest reason.

    >>> irc_back_line(timedelta(minutes=2, seconds=5), datetime(2026, 12, 15, 14, 2, tzinfo=UTC),
    ...               "connection lost: closed by the server", "SASL login as deploybot failed:"
    ...               " the server offers no SASL login (services not linked?)", 7)
    '⚠ back on IRC after 2m5s away (since 14:02 UTC): connection lost: closed by the server; \
then 7 failed attempts, the last: SASL login as deploybot failed: the server offers no SASL \
login (services not linked?)'
    """
    spent = format_duration(max(timedelta(seconds=int(away.total_seconds())), timedelta(seconds=1)))
    began = f"{since.astimezone(UTC):%H:%M} UTC"
    head = f"⚠ back on IRC after {spent} away (since {began})"
    if lost is None:
        head = f"⚠ on IRC after {spent} of trying (since {began})"
    said = [lost] if lost is not None else []
    if failures:
        tried = plural(failures, "failed attempt")
        said.append(
            f"{tried}, the last: {last}" if lost is None else f"then {tried}, the last: {last}"
        )
    return f"{head}: {'; '.join(said)}"


# --- plans -------------------------------------------------------------------------------


def named(plan: Plan) -> str:
    """``pkgdb2 2.0``: the service and release people talk about."""
    return f"{plan.service} {plan.release}".strip()


def plan_line(plan: Plan, now: datetime, tz: tzinfo) -> str:
    """One line for ``!deploys``, e.g.::

        pkgdb2-2.0 — pkgdb2 2.0 'pkgdb2 replaces pkgdb1' Tue 2026-12-15 13:00 UTC
        (in 18 days) ⚠ 2 API breaks

    (on one line).  A running deploy says when it started and when it ends; a finished
    one says it ended.
    """
    title = f" '{plan.title}'" if plan.title else ""
    if plan.running_at(now):
        state = (
            f"running: {describe_countdown(plan.when - now)}, ends {clock_text(plan.end, tz, now)}"
        )
    elif now >= plan.end:
        state = f"ended {clock_text(plan.end, tz, now)}"
    else:
        state = describe_countdown(plan.when - now)
    line = f"{plan.id} — {named(plan)}{title} {when_text(plan.when, tz)} ({state})"
    if plan.api_breaks:
        line += f" ⚠ {plural(len(plan.api_breaks), 'API break')}"
    return line


def break_line(api_break: ApiBreak) -> str:
    """``⚠ API BREAK: /api/packager/acl — returns null … — migration: treat null as …``."""
    migration = f"migration: {api_break.migration}" if api_break.migration else "no migration note"
    return f"⚠ API BREAK: {api_break.endpoint} — {api_break.change} — {migration}"


def break_lines(plan: Plan) -> list[str]:
    """One :func:`break_line` per API break of ``plan`` (empty when it breaks none)."""
    return [break_line(api_break) for api_break in plan.api_breaks]


def countdown_post(
    plan: Plan,
    countdown_offset: timedelta,
    now: datetime,
    tz: tzinfo,
    late: bool,
    freeze: str | None = None,
    drift: Sequence[str] = (),
) -> list[str]:
    """The announce-channel post for the countdown ``countdown_offset`` before ``plan``.

    API breaks come first (at most :data:`MAX_BREAKS_IN_POST`, then a pointer to
    ``!breaks ID``), then ``drift`` — the ``⚠ UNDECLARED API BREAK`` lines of the plan's
    drift run (:meth:`~deploybot.drift.report.DriftRun.countdown_lines`) —, then the
    headline, e.g. ``pkgdb2 2.0 deploys in 7 days (Tue 2026-12-15 13:00 UTC, 8h
    window)``; offset 0 is "deploying now" and says how to report a problem.  An on-time
    post counts down by the offset; a ``late`` post (sent after the bot was offline at the
    due time) counts from ``now`` and its first line starts with ``(late: due 13:00)``
    (the bot was offline then, or the plan was added after that time).  ``freeze`` (a
    plan in a freeze: ``⚠ IN FREEZE (F42 Final freeze) — …``,
    :meth:`~deploybot.plans.freezes.FreezeStanding.marker`) is the first line.
    """
    window = f"({when_text(plan.when, tz)}, {format_duration(plan.duration)} window)"
    remaining = plan.when - now if late else countdown_offset
    if countdown_offset <= timedelta(0) or remaining <= timedelta(seconds=30):
        started = now - plan.when
        since = f", started {elapsed_text(started)} ago" if started >= timedelta(minutes=1) else ""
        headline = f"{named(plan)} deploying now{since} {window}"
        footer = [f"problems? !broke {plan.service} what broke"]
    else:
        headline = f"{named(plan)} deploys {describe_countdown(remaining)} {window}"
        footer = []
    lines: list[str] = [freeze] if freeze else []
    if plan.api_breaks:
        shown = plan.api_breaks[:MAX_BREAKS_IN_POST]
        lines += [break_line(api_break) for api_break in shown]
        more = len(plan.api_breaks) - len(shown)
        if more:
            lines.append(f"⚠ and {plural(more, 'more API break')}: !breaks {plan.id}")
    lines += drift
    lines.append(headline)
    lines += footer
    if late:
        due = countdown_at(plan.when, countdown_offset, tz)
        lines[0] = f"(late: due {_due_text(due, now, tz)}) {lines[0]}"
    return lines


def _due_text(due: datetime, now: datetime, tz: tzinfo) -> str:
    local = due.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return f"{local:%H:%M}"
    return f"{_DAYS[local.weekday()]} {local:%Y-%m-%d %H:%M}"


# --- incidents ---------------------------------------------------------------------------


def deploy_link(incident: Incident) -> str:
    """``deploy pkgdb2-2.0 +20 min``, or empty when no deploy was running."""
    if incident.deploy_id is None:
        return ""
    minutes = incident.minutes_into_deploy
    return f"deploy {incident.deploy_id}" + (f" +{minutes} min" if minutes is not None else "")


def _state(incident: Incident) -> str:
    if not incident.open:
        return "fixed"
    return f"open, owner {incident.owner}" if incident.owner else "open, no owner"


def incident_line(incident: Incident, tz: tzinfo, now: datetime) -> str:
    """``#3 [open, owner bob] pkgdb2: the acl page returns 500 (alice, 13:20 UTC)``."""
    reported = clock_text(incident.reported_at, tz, now)
    return (
        f"#{incident.number} [{_state(incident)}] {incident.service}: {incident.text} "
        f"({incident.reporter_nick}, {reported})"
    )


def _note_line(entry: TimelineEntry, tz: tzinfo, now: datetime) -> str:
    return f"  {entry.kind} {clock_text(entry.at, tz, now)} {entry.nick}: {entry.text}"


def incident_detail(incident: Incident, tz: tzinfo, now: datetime) -> list[str]:
    """``!incident N``: number, state, service, deploy, reporter, owner, times, last notes."""
    link = deploy_link(incident)
    state = "OPEN" if incident.open else "FIXED"
    service = f"{incident.service}, {link}" if link else incident.service
    lines = [f"incident #{incident.number} {state} ({service}): {incident.text}"]
    where = f" in {incident.channel}" if incident.channel else ""
    lines.append(
        f"reported by {incident.reporter_nick}{where} at {when_text(incident.reported_at, tz)}"
        f"; owner: {incident.owner or 'nobody (!take ' + str(incident.number) + ')'}"
    )
    times: list[str] = []
    if incident.acknowledged_at is not None and incident.time_to_acknowledge is not None:
        times.append(
            f"acknowledged by {incident.acknowledged_by} after "
            f"{elapsed_text(incident.time_to_acknowledge)}"
        )
    if incident.fixed_at is not None and incident.time_to_repair is not None:
        times.append(
            f"fixed by {incident.fixed_by} at {clock_text(incident.fixed_at, tz, now)} "
            f"after {elapsed_text(incident.time_to_repair)}"
        )
    else:
        times.append(f"open for {elapsed_text(now - incident.reported_at)}")
    lines.append("; ".join(times))
    notes = _notes(incident.timeline)
    if notes:
        shown = notes[-MAX_NOTES_SHOWN:]
        hidden = len(notes) - len(shown)
        lines.append(
            f"last {plural(len(shown), 'note')}" + (f" ({hidden} earlier)" if hidden else "") + ":"
        )
        lines += [_note_line(entry, tz, now) for entry in shown]
    return lines


def _notes(timeline: Sequence[TimelineEntry]) -> list[TimelineEntry]:
    """Timeline entries that carry people's words: notes, and fixes with a note."""
    return [
        entry
        for entry in timeline
        if entry.kind == "note" or (entry.kind == "fixed" and entry.text)
    ]
