"""Build valid :class:`~deploybot.plans.model.Plan` objects for tests, without YAML.

``make_plan()`` is a pkgdb2-like plan that is under policy and meets every rule with
the default ``notice_days`` of 14: its announcements, meeting, call for testing and
roster are derived from ``when`` and ``duration``, so overriding those keeps it ready.
Any :class:`Plan` field can be overridden by keyword.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from deploybot.plans.model import (
    Announcement,
    ApiBreak,
    Consumer,
    Plan,
    Production,
    Roster,
    Shift,
    Staging,
)

DEFAULT_WHEN = datetime(2026, 12, 15, 13, 0, tzinfo=UTC)
DEFAULT_DURATION = timedelta(hours=8)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """``utc(2026, 12, 15, 13)`` — an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def make_shift(
    team: str,
    people: tuple[str, ...] | list[str],
    start: datetime,
    end: datetime,
) -> Shift:
    """A shift with resolved times (as the plan loader would produce)."""
    return Shift(
        team=team,
        people=tuple(people),
        start=start,
        end=end,
        written_from=f"{start:%H:%M}",
        written_to=f"{end:%H:%M}",
    )


def within_one_day(when: datetime, duration: timedelta) -> datetime:
    """``when``, written in an offset where the window does not cross midnight.

    Shift times are wall-clock times on the day of ``when`` and cannot cross midnight, so
    a window of 16:06–00:06 UTC with timed shifts is not a valid plan.  Tests that make a
    plan around the current time would then fail in the evening only; the same instant
    written at local 00:06 (offset +08:00 for 16:06 UTC) keeps every shift on one day.
    Windows already within one day keep their offset (and so their expected texts).
    """
    end = when + duration
    if end.date() == when.date() and end.time() != datetime.min.time():
        return when
    utc_hour = when.astimezone(UTC).hour
    hours = -utc_hour if utc_hour <= 12 else 24 - utc_hour
    return when.astimezone(timezone(timedelta(hours=hours)))


def make_plan(**overrides: Any) -> Plan:
    """A valid, ready, under-policy plan; keyword arguments replace any field."""
    duration: timedelta = overrides.get("duration", DEFAULT_DURATION)
    when = within_one_day(overrides.get("when", DEFAULT_WHEN), duration)
    if when.utcoffset() != overrides.get("when", DEFAULT_WHEN).utcoffset():
        # as the loader keeps it: the instant in UTC, the offset it is written in apart
        overrides = {**overrides, "when": when.astimezone(UTC), "when_offset": when.utcoffset()}
    day = when.astimezone(UTC).date()
    middle = when + duration / 2
    fields: dict[str, Any] = {
        "id": "pkgdb2-2.0",
        "service": "pkgdb2",
        "release": "2.0",
        "title": "pkgdb2 replaces pkgdb1",
        "when": when,
        "duration": duration,
        "major": True,
        "leaf": False,
        "essential": True,
        "owners": ("pingou",),
        "playbooks": ("groups/pkgdb.yml",),
        "staging": Staging(
            url="https://admin.stg.fedoraproject.org/pkgdb",
            call_for_testing=day - timedelta(days=28),
        ),
        "production": Production(url="https://admin.fedoraproject.org/pkgdb"),
        "api_breaks": (
            ApiBreak(
                endpoint="/api/packager/acl",
                change="returns null instead of [] when the packager has no ACLs",
                migration="treat null as an empty list",
            ),
        ),
        "consumers": (
            Consumer(name="rel-eng compose scripts", team="rel-eng", contact="dgilmore"),
        ),
        "announcements": (
            Announcement(list="infrastructure", date=day - timedelta(days=25), api_break=True),
            Announcement(list="devel", date=day - timedelta(days=23), api_break=True),
        ),
        "meetings": (day - timedelta(days=13),),
        "teams": ("rel-eng",),
        "roster": Roster(
            shifts=(
                make_shift("infrastructure", ("pingou",), when, middle),
                make_shift("infrastructure", ("abadger1999",), middle, when + duration),
                Shift(team="rel-eng", people=("dgilmore",), start=when, end=when + duration),
            ),
            escalation=("nirik",),
        ),
    }
    fields.update(overrides)
    return Plan(**fields)


def on_shift_plan(when: datetime, window: timedelta, channel: str, people: list[str]) -> Plan:
    """The factory's plan opening at `when` for `window` in `channel`, with `people` all on
    one infrastructure shift the whole window (the first is the escalation list too), no
    teams and no consumers: its opening pages exactly `people`."""
    return make_plan(
        when=when,
        duration=window,
        teams=(),
        consumers=(),
        roster=Roster(
            channel=channel,
            shifts=(Shift("infrastructure", tuple(people), when, when + window),),
            escalation=(people[0],),
        ),
    )


def badges_plan(when: datetime, **overrides: object) -> Plan:
    """The factory's plan as badges-1.0, whose playbook is the badges backend one that the
    real ansible samples of ``tests/data/bus-samples`` ran."""
    fields: dict[str, object] = {
        "id": "badges-1.0",
        "service": "badges",
        "release": "1.0",
        "playbooks": ("groups/badges-backend.yml",),
        "when": when,
    }
    fields.update(overrides)
    return make_plan(**fields)
