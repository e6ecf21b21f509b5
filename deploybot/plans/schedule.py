"""When things happen: countdown posts, and which deploys are running, today or upcoming.

Every function here is pure: the current time (``now``, aware) and the configured
timezone (``tz``, a :class:`zoneinfo.ZoneInfo` or any ``tzinfo``) are passed in.
Returned datetimes are aware UTC.

Countdown offsets (SPEC §4, config ``countdowns``)
    A countdown at offset ``d`` is due at ``when − d``, where the whole-day part of ``d``
    (``d.days``) counts **calendar days in tz** and the rest (hours, minutes, seconds) is
    **absolute** time.  So "1d" before 13:00 Paris time is 13:00 Paris time the day before,
    even across a DST change (23 or 25 real hours), while "4h" is always four real hours,
    and "1d12h" is 13:00 local the day before, minus twelve real hours.  Offsets are
    :class:`~datetime.timedelta` values, so "24h" is the same offset as "1d" (a calendar
    day).  A local time that does not exist (spring forward) lands just after the gap, an
    ambiguous one (fall back) on its first occurrence (PEP 495, ``fold=0``).

Due posts (:func:`due_countdowns`)
    For each plan whose window has not ended, the countdowns that have passed
    (``at <= now``) and are not in ``sent_keys`` are returned as :class:`DuePost`:
    the most recent passed countdown of the plan (if not already sent) with
    ``superseded=False`` — post it; every older unsent one with ``superseded=True`` — record
    it as skipped in the ledger without posting.  If the most recent passed countdown was
    already sent, the older unsent ones are all superseded (never post "7 days to go"
    after "3 days to go").  ``late`` is set when ``at`` is more than ``grace`` before now
    (config ``countdown_late_after``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from deploybot.durations import format_duration, plural
from deploybot.plans.model import Plan


@dataclass(frozen=True)
class Countdown:
    """One countdown post of a plan: ``offset`` before ``when``, due ``at`` (aware UTC)."""

    plan_id: str
    offset: timedelta
    at: datetime

    @property
    def key(self) -> str:
        """Stable ledger key, e.g. ``pkgdb2-2.0@1d``."""
        return f"{self.plan_id}@{format_duration(self.offset)}"


@dataclass(frozen=True)
class DuePost:
    """A passed, unsent countdown: post it, or (``superseded``) only record it as skipped."""

    plan: Plan
    countdown: Countdown
    superseded: bool
    late: bool

    @property
    def key(self) -> str:
        return self.countdown.key


def countdown_at(when: datetime, offset: timedelta, tz: tzinfo) -> datetime:
    """``when − offset``: whole days in calendar days of ``tz``, the rest absolute; UTC."""
    if offset < timedelta(0):
        raise ValueError(f"a countdown offset cannot be negative: {offset!r}")
    days = timedelta(days=offset.days)
    rest = offset - days
    wall = when.astimezone(tz).replace(tzinfo=None) - days
    return wall.replace(tzinfo=tz).astimezone(UTC) - rest


def countdowns_for(plan: Plan, offsets: Iterable[timedelta], tz: tzinfo) -> tuple[Countdown, ...]:
    """The plan's countdowns, in time order (ties: the larger offset first)."""
    countdowns = {
        offset: Countdown(plan.id, offset, countdown_at(plan.when, offset, tz))
        for offset in offsets
    }
    return tuple(sorted(countdowns.values(), key=lambda c: (c.at, -c.offset)))


def due_countdowns(
    plans: Iterable[Plan],
    offsets: Iterable[timedelta],
    tz: tzinfo,
    now: datetime,
    sent_keys: Iterable[str],
    *,
    grace: timedelta,
) -> tuple[DuePost, ...]:
    """Passed, unsent countdowns of plans whose window has not ended; see the module doc.

    Ordered by ``at`` (then plan id); at most one per plan has ``superseded=False``.
    """
    sent = set(sent_keys)
    offsets = tuple(offsets)
    due: list[DuePost] = []
    for plan in plans:
        if now >= plan.end:
            continue
        passed = [c for c in countdowns_for(plan, offsets, tz) if c.at <= now]
        if not passed:
            continue
        latest = passed[-1]
        for countdown in passed:
            if countdown.key in sent:
                continue
            due.append(
                DuePost(
                    plan=plan,
                    countdown=countdown,
                    superseded=countdown is not latest,
                    late=now - countdown.at > grace,
                )
            )
    return tuple(sorted(due, key=lambda p: (p.countdown.at, p.plan.id, -p.countdown.offset)))


def future_countdowns(
    plans: Iterable[Plan], offsets: Iterable[timedelta], tz: tzinfo, now: datetime
) -> tuple[Countdown, ...]:
    """Countdowns still to come (``at > now``), in time order (then plan id)."""
    offsets = tuple(offsets)
    future = [c for plan in plans for c in countdowns_for(plan, offsets, tz) if c.at > now]
    return tuple(sorted(future, key=lambda c: (c.at, c.plan_id, -c.offset)))


def window(plan: Plan) -> tuple[datetime, datetime]:
    """The deploy (and firefighting) window ``[when, end)``."""
    return plan.when, plan.end


def _by_when(plans: Iterable[Plan]) -> tuple[Plan, ...]:
    return tuple(sorted(plans, key=lambda p: (p.when, p.id)))


def running(plans: Iterable[Plan], now: datetime) -> tuple[Plan, ...]:
    """Plans whose window contains ``now`` (``when <= now < end``), by start time."""
    return _by_when(p for p in plans if p.running_at(now))


def day_bounds(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The calendar day of ``now`` in ``tz`` as ``[midnight, next midnight)``, in UTC."""
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def today(plans: Iterable[Plan], now: datetime, tz: tzinfo) -> tuple[Plan, ...]:
    """Plans whose window meets the calendar day of ``now`` in ``tz``, by start time.

    A window meets the day when it overlaps it; an empty window (zero duration) when its
    start falls on the day.
    """
    day_start, day_end = day_bounds(now, tz)
    return _by_when(
        p for p in plans if p.when < day_end and (p.end > day_start or p.when >= day_start)
    )


def upcoming(plans: Iterable[Plan], now: datetime) -> tuple[Plan, ...]:
    """Plans that have not started (``when > now``), soonest first."""
    return _by_when(p for p in plans if p.when > now)


def describe_countdown(delta: timedelta) -> str:
    """``delta = when − now`` for people: "in 14 days", "in 3h 20m", "now", "started 2h ago".

    Under a day it is rounded to the minute, from a day on to the hour; under 30 seconds
    either way is "now".

    >>> describe_countdown(timedelta(hours=3, minutes=20))
    'in 3h 20m'
    >>> describe_countdown(-timedelta(hours=2))
    'started 2h ago'
    """
    seconds = abs(delta.total_seconds())
    minutes = int((seconds + 30) // 60)
    if minutes == 0:
        return "now"
    if minutes < 24 * 60:
        hours, mins = divmod(minutes, 60)
        parts = [f"{hours}h"] if hours else []
        if mins:
            parts.append(f"{mins}m")
        text = " ".join(parts)
    else:
        days, hours = divmod((minutes + 30) // 60, 24)
        text = plural(days, "day")
        if hours:
            text += f" {hours}h"
    return f"in {text}" if delta > timedelta(0) else f"started {text} ago"
