"""The daily incident digest (SPEC §4): per deploy of a day, what broke and how fast it
was acknowledged and repaired — "mean time to repair matters more than mean time between
failures" (the pkgdb2 post-mortem).

:func:`build_digest` is a pure function of the incidents, the plans, the day and the
timezone; :func:`digest_for_day` fetches the incidents from the store and calls it.  The
result, a :class:`Digest`, is shown on IRC with :func:`short_lines` (at most six lines,
for the admin and firefighting channels) or :func:`full_lines` (everything, for the web
page and ``deploybot digest``), and served as JSON with :func:`digest_to_dict`.

The day and the moment described
    ``day`` is a calendar day in ``tz``: ``[start, end)`` from local midnight to the next
    local midnight (23 or 25 hours across a DST change).  ``as_of`` (default: ``end``) is
    the moment the digest describes, clamped to ``[start, end]``: the digest posted at
    ``digest_time`` (22:00) or asked for with ``!digest`` during the day passes the current
    time, so that open incidents read "open 3h" and not their age at midnight.  Reports
    at or after ``as_of``, and acknowledgements and fixes after it, are treated as not
    having happened yet (the store has none of them when ``as_of`` is now).  Below,
    *period* is ``[start, as_of)``.

Sections
    One per deploy whose window meets the day (:func:`deploybot.plans.schedule.today`: by start
    time, then id), even when it had no incident ("no incidents"); then one titled
    ``outside deploys`` for the incidents with no ``deploy_id`` or a deploy that is not
    one of the day's — only when there are such incidents.  The totals are a section over
    all the incidents (its medians are computed over all of them, not averaged).  A digest
    with no section (no deploy that day and no incident) is :attr:`Digest.empty`.

Which incidents count, and where
    The incidents considered are those reported before ``as_of`` and not fixed before
    ``start`` (exactly what :meth:`Store.incident_summaries_between` returns); others are
    ignored.
    That includes an incident still open from an earlier day, so a forgotten open incident
    keeps the digest coming every day, on purpose.

    * ``reported``: reported in the period.
    * ``fixed``: fixed in the period, whenever reported.  An incident reported at 23:00
      and fixed at 01:00 is counted in the next day's ``fixed``, not in its ``reported``
      (and a fix at midnight exactly is the next day's).
    * ``open``: not fixed by ``as_of``, whenever reported,
      with its current owner (the latest ``!take``; not replayed from the timeline).
    * Times to acknowledge and to repair (median, mean, and how many values they are
      over) belong to the day the incident was **reported**: they are computed over the
      incidents reported in the period that were acknowledged (``acknowledged_at``: first
      take/ack/note/fix by someone other than the reporter) / fixed by ``as_of``
      (``<= as_of``).  So an incident still open at the end of its day never enters any
      day's repair median — the digest of its day shows it as open instead, with its
      age, and as the slowest incident when it is the longest.  The same rule makes a
      past day's digest reproducible: later fixes do not change it.
    * ``slowest``: among the incidents reported in the period, the one with the longest
      time to repair, where an incident still open at ``as_of`` counts with the time it
      has been open so far (so a long-open incident beats a shorter repair); ties go to
      the lower number.
    * ``teams``: who reported in the period, counted by team: a reporter's nick (ASCII
      case-insensitive) is looked up in the section's plan — roster shifts, then the
      consumers' contacts — then in the other plans of the day; anyone else is ``other``.
      Ordered by count (most first), then name; ``other`` last.

Medians of an even count are the mean of the two middle values.  Means and medians are
exact :class:`~datetime.timedelta` values; the JSON form rounds them to whole seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from deploybot.durations import iso_utc, plural, whole_seconds
from deploybot.plans.model import Plan
from deploybot.plans.schedule import day_bounds, today
from deploybot.texts import clock_text, elapsed_text, when_text

__all__ = [
    "MAX_SHORT_LINES",
    "OTHER_TEAM",
    "OUTSIDE_TITLE",
    "TOTAL_TITLE",
    "Digest",
    "DigestSource",
    "IncidentFacts",
    "Section",
    "Slowest",
    "build_digest",
    "by_number",
    "day_period",
    "digest_for_day",
    "digest_to_dict",
    "full_lines",
    "median",
    "short_lines",
    "slowest_text",
    "team_of",
    "teams_of",
]

#: The title of the section for incidents of no deploy of the day.
OUTSIDE_TITLE = "outside deploys"
#: The title of the totals.
TOTAL_TITLE = "all incidents"
#: The team of a reporter found in no roster shift and no consumer contact.
OTHER_TEAM = "other"
#: :func:`short_lines` returns at most this many lines.
MAX_SHORT_LINES = 6
#: A short line names at most this many open incidents, then "+N more".
MAX_OPEN_IN_SHORT = 3

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class IncidentFacts(Protocol):
    """What the digest reads of an incident.

    :class:`deploybot.store.Incident` has all of it; so has the lean
    :class:`deploybot.store.IncidentSummary` the store offers for digests.
    """

    @property
    def number(self) -> int: ...
    @property
    def service(self) -> str: ...
    @property
    def deploy_id(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def reporter_nick(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def reported_at(self) -> datetime: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def fixed_at(self) -> datetime | None: ...


class DigestSource(Protocol):
    """What :func:`digest_for_day` needs of the store."""

    def incident_summaries_between(
        self, start: datetime, end: datetime
    ) -> Iterable[IncidentFacts]: ...


# -- the digest -------------------------------------------------------------------------


@dataclass(frozen=True)
class Slowest:
    """The slowest incident of a section: repaired after ``time``, or (``fixed`` False)
    still open after ``time`` at the digest's ``as_of``."""

    incident: IncidentFacts
    time: timedelta
    fixed: bool


@dataclass(frozen=True)
class Section:
    """One deploy of the day (``deploy_id`` set), the incidents outside deploys, or the
    totals; see the module documentation for what each number counts."""

    title: str
    deploy_id: str | None
    #: The deploy window ``[when, end)``; None for the outside and total sections.
    window: tuple[datetime, datetime] | None
    reported: int
    fixed: int
    #: Still open at ``as_of``, by number.
    open: tuple[IncidentFacts, ...]
    #: How many of the reported incidents were acknowledged / fixed by ``as_of``: the
    #: number of values the ack / repair median and mean are computed over.
    acknowledged: int
    repaired: int
    median_ack: timedelta | None
    mean_ack: timedelta | None
    median_repair: timedelta | None
    mean_repair: timedelta | None
    slowest: Slowest | None
    #: ``(team, incidents reported)``, most first; ``other`` last.
    teams: tuple[tuple[str, int], ...]

    @property
    def quiet(self) -> bool:
        """Nothing to say: nothing reported, fixed or open."""
        return not (self.reported or self.fixed or self.open)


@dataclass(frozen=True)
class Digest:
    """A day's digest; ``start``, ``end``, ``as_of`` are aware UTC."""

    day: date
    start: datetime
    end: datetime
    as_of: datetime
    sections: tuple[Section, ...]
    totals: Section

    @property
    def empty(self) -> bool:
        """No deploy that day and no incident: nothing to post."""
        return not self.sections

    @property
    def complete(self) -> bool:
        """The digest describes the whole day (``as_of`` is its end)."""
        return self.as_of >= self.end


# -- building ---------------------------------------------------------------------------


def day_period(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """``day`` in ``tz`` as ``[local midnight, next local midnight)``, in UTC."""
    return day_bounds(datetime.combine(day, time(12), tzinfo=tz), tz)


def build_digest(
    incidents: Iterable[IncidentFacts],
    plans: Iterable[Plan],
    day: date,
    tz: tzinfo,
    *,
    as_of: datetime | None = None,
) -> Digest:
    """The digest of ``day`` in ``tz`` from ``incidents`` (any; the ones that do not
    concern the day are ignored) and ``plans``; see the module documentation.

    ``incidents`` is read once, as it comes (it may be a generator over a database
    cursor): only the open incidents, the slowest ones and the durations are kept.
    """
    start, end = day_period(day, tz)
    cut = _cut(start, end, as_of)
    day_plans = today(plans, datetime.combine(day, time(12), tzinfo=tz), tz)
    by_id = {plan.id: index for index, plan in enumerate(day_plans)}
    tallies = [_Tally() for _ in range(len(day_plans) + 1)]
    outside = tallies[-1]
    for incident in incidents:
        reported_at = incident.reported_at
        if reported_at >= cut:
            continue
        fixed_at = incident.fixed_at
        if fixed_at is not None:
            if fixed_at < start:
                continue
            if fixed_at > cut:
                fixed_at = None  # fixed after the moment described: open then
        deploy = incident.deploy_id
        tally = outside if deploy is None else tallies[by_id.get(deploy, -1)]
        if fixed_at is None:
            tally.open.append(incident)
        elif fixed_at < cut:
            tally.fixed += 1
        if reported_at < start:
            continue
        tally.reported += 1
        acknowledged_at = incident.acknowledged_at
        if acknowledged_at is not None and acknowledged_at <= cut:
            tally.acks.append(acknowledged_at - reported_at)
        if fixed_at is not None:
            took = fixed_at - reported_at
            tally.repairs.append(took)
        else:
            took = cut - reported_at
        best = tally.slowest
        if (
            best is None
            or took > best.time
            or (took == best.time and incident.number < best.incident.number)
        ):
            tally.slowest = Slowest(incident, took, fixed_at is not None)
        nick = incident.reporter_nick
        tally.reporters[nick] = tally.reporters.get(nick, 0) + 1

    everyone = teams_of(day_plans)
    sections = [
        tally.section(plan.id, plan.id, (plan.when, plan.end), (teams_of((plan,)), everyone))
        for plan, tally in zip(day_plans, tallies, strict=False)
    ]
    if outside.reported or outside.fixed or outside.open:
        sections.append(outside.section(OUTSIDE_TITLE, None, None, (everyone,)))
    return Digest(
        day=day,
        start=start,
        end=end,
        as_of=cut,
        sections=tuple(sections),
        totals=_totals(tallies, sections),
    )


def digest_for_day(
    store: DigestSource,
    plans: Iterable[Plan],
    day: date,
    tz: tzinfo,
    *,
    as_of: datetime | None = None,
) -> Digest:
    """The digest of ``day`` in ``tz`` from the incidents in ``store`` (see
    :func:`build_digest`): one query, over the day's incidents only, read as a stream
    (:meth:`deploybot.store.Store.incident_summaries_between`)."""
    start, end = day_period(day, tz)
    cut = _cut(start, end, as_of)
    return build_digest(store.incident_summaries_between(start, cut), plans, day, tz, as_of=cut)


def _cut(start: datetime, end: datetime, as_of: datetime | None) -> datetime:
    """``as_of`` clamped to ``[start, end]``, in UTC; ``end`` when None."""
    if as_of is None:
        return end
    return min(max(as_of.astimezone(UTC), start), end)


class _Tally:
    """What :func:`build_digest` keeps of a section's incidents while reading them."""

    __slots__ = ("acks", "fixed", "open", "repairs", "reported", "reporters", "slowest")

    def __init__(self) -> None:
        self.reported = 0
        self.fixed = 0
        self.open: list[IncidentFacts] = []
        self.acks: list[timedelta] = []
        self.repairs: list[timedelta] = []
        self.slowest: Slowest | None = None
        #: Reporter nick as written → incidents reported (teams are looked up at the end).
        self.reporters: dict[str, int] = {}

    def section(
        self,
        title: str,
        deploy_id: str | None,
        window: tuple[datetime, datetime] | None,
        rosters: Sequence[Mapping[str, str]],
    ) -> Section:
        teams: Counter[str] = Counter()
        for nick, count in self.reporters.items():
            teams[team_of(nick, rosters)] += count
        return Section(
            title=title,
            deploy_id=deploy_id,
            window=window,
            reported=self.reported,
            fixed=self.fixed,
            open=tuple(sorted(self.open, key=by_number)),
            acknowledged=len(self.acks),
            repaired=len(self.repairs),
            median_ack=median(self.acks),
            mean_ack=_mean(self.acks),
            median_repair=median(self.repairs),
            mean_repair=_mean(self.repairs),
            slowest=self.slowest,
            teams=_ordered_teams(teams),
        )


def by_number(incident: IncidentFacts) -> int:
    """Sort key: incidents in the order they were reported (their number)."""
    return incident.number


def _totals(tallies: Sequence[_Tally], sections: Sequence[Section]) -> Section:
    """All sections together (they share no incident): counts added up, medians and
    means over all the values, teams as counted in each section."""
    acks = [value for tally in tallies for value in tally.acks]
    repairs = [value for tally in tallies for value in tally.repairs]
    teams: Counter[str] = Counter()
    slowest: Slowest | None = None
    for section in sections:
        teams.update(dict(section.teams))
        candidate = section.slowest
        if candidate is not None and (
            slowest is None
            or candidate.time > slowest.time
            or (
                candidate.time == slowest.time
                and candidate.incident.number < slowest.incident.number
            )
        ):
            slowest = candidate
    return Section(
        title=TOTAL_TITLE,
        deploy_id=None,
        window=None,
        reported=sum(section.reported for section in sections),
        fixed=sum(section.fixed for section in sections),
        open=tuple(sorted((i for section in sections for i in section.open), key=by_number)),
        acknowledged=len(acks),
        repaired=len(repairs),
        median_ack=median(acks),
        mean_ack=_mean(acks),
        median_repair=median(repairs),
        mean_repair=_mean(repairs),
        slowest=slowest,
        teams=_ordered_teams(teams),
    )


def _ordered_teams(teams: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(teams.items(), key=lambda item: (item[0] == OTHER_TEAM, -item[1], item[0])))


def teams_of(plans: Iterable[Plan]) -> dict[str, str]:
    """Lower-cased nick → team, from roster shifts first, then consumer contacts; for
    several plans the first plan that knows a nick wins."""
    plans = tuple(plans)
    teams: dict[str, str] = {}
    for plan in plans:
        for shift in plan.roster.shifts:
            for person in shift.people:
                teams.setdefault(_fold(person), shift.team)
    for plan in plans:
        for consumer in plan.consumers:
            if consumer.contact and consumer.team:
                teams.setdefault(_fold(consumer.contact), consumer.team)
    return teams


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(nick: str) -> str:
    return nick.translate(_ASCII_LOWER)


def team_of(nick: str, rosters: Sequence[Mapping[str, str]]) -> str:
    folded = _fold(nick)
    for roster in rosters:
        team = roster.get(folded)
        if team is not None:
            return team
    return OTHER_TEAM


def median(values: list[timedelta]) -> timedelta | None:
    """The median (sorts ``values`` in place); of an even count, the mean of the middle two."""
    if not values:
        return None
    values.sort()
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


def _mean(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    return sum(values, timedelta(0)) / len(values)


# -- text -------------------------------------------------------------------------------


def _day_text(day: date) -> str:
    return f"{_DAYS[day.weekday()]} {day:%Y-%m-%d}"


def _counts(section: Section) -> str:
    return f"{section.reported} reported, {section.fixed} fixed, {len(section.open)} open"


def _owner(incident: IncidentFacts) -> str:
    return incident.owner or "unowned"


def _short_section(section: Section) -> str:
    if section.quiet:
        return f"{section.title}: no incidents"
    line = f"{section.title}: {_counts(section)}"
    if section.open:
        shown = [f"#{i.number} {_owner(i)}" for i in section.open[:MAX_OPEN_IN_SHORT]]
        more = len(section.open) - len(shown)
        if more:
            shown.append(f"+{more} more")
        line += f" ({', '.join(shown)})"
    return line + _short_times(section)


def _short_times(section: Section) -> str:
    if not section.reported:
        return ""
    ack = (
        f"ack median {elapsed_text(section.median_ack)}"
        if section.median_ack is not None
        else "none acknowledged"
    )
    repair = (
        f"repair median {elapsed_text(section.median_repair)}"
        if section.median_repair is not None
        else "none repaired"
    )
    return f" · {ack} · {repair}"


def _header(digest: Digest, tz: tzinfo) -> str:
    zone = digest.start.astimezone(tz).tzname() or ""
    head = f"incident digest {_day_text(digest.day)}" + (f" ({zone})" if zone else "")
    if not digest.complete:
        head += f" as of {clock_text(digest.as_of, tz)}"
    return head


def short_lines(digest: Digest, tz: tzinfo) -> list[str]:
    """At most :data:`MAX_SHORT_LINES` lines: a header with the totals, then one line per
    section, e.g. ``pkgdb2-2.0: 5 reported, 3 fixed, 2 open (#4 nirik, #5 unowned) ·
    ack median 4m · repair median 1h 10m``.  With more sections than fit, the busiest
    (most open, then most reported, then most fixed) are shown, in digest order, and
    the rest are summed up on the last line."""
    header = _header(digest, tz)
    if digest.empty:
        return [f"{header}: no deploys, no incidents"]
    deploys = sum(1 for section in digest.sections if section.deploy_id is not None)
    totals = digest.totals
    header += f": {plural(deploys, 'deploy')}, " + (
        _counts(totals) if not totals.quiet else "no incidents"
    )
    room = MAX_SHORT_LINES - 1
    sections = digest.sections
    if len(sections) <= room:
        return [header] + [_short_section(section) for section in sections]
    ranked = sorted(
        range(len(sections)),
        key=lambda i: (-len(sections[i].open), -sections[i].reported, -sections[i].fixed, i),
    )
    shown = sorted(ranked[: room - 1])
    rest = [sections[i] for i in ranked[room - 1 :]]
    reported = sum(section.reported for section in rest)
    fixed = sum(section.fixed for section in rest)
    still_open = sum(len(section.open) for section in rest)
    summary = (
        f"and {plural(len(rest), 'more section')}: "
        f"{reported} reported, {fixed} fixed, {still_open} open"
        if reported or fixed or still_open
        else f"and {plural(len(rest), 'more section')} with no incidents"
    )
    return [header] + [_short_section(sections[i]) for i in shown] + [summary]


def full_lines(digest: Digest, tz: tzinfo) -> list[str]:
    """Everything: per section the counts, medians and means (with how many incidents
    they are over), the slowest incident, the reporters' teams and each open incident
    with its owner and age; then the totals (when there is more than one section)."""
    header = _header(digest, tz)
    if digest.empty:
        return [f"{header}: no deploys, no incidents"]
    lines = [header]
    for section in digest.sections:
        lines += _full_section(section, digest, tz, with_open=True)
    if len(digest.sections) > 1:
        lines += _full_section(digest.totals, digest, tz, with_open=False)
    return lines


def _full_section(section: Section, digest: Digest, tz: tzinfo, *, with_open: bool) -> list[str]:
    title = section.title
    if section.window is not None:
        begin, finish = section.window
        title += f" (window {when_text(begin, tz)} to {clock_text(finish, tz, begin)})"
    if section.quiet:
        return [f"{title}: no incidents"]
    moment = "at the end of the day" if digest.complete else f"at {clock_text(digest.as_of, tz)}"
    lines = [f"{title}: {_counts(section)} {moment}"]
    if section.reported:
        lines.append(
            "  time to acknowledge: "
            + _stats(section.median_ack, section.mean_ack, section.acknowledged, section.reported)
            + " acknowledged)"
        )
        lines.append(
            "  time to repair: "
            + _stats(section.median_repair, section.mean_repair, section.repaired, section.reported)
            + " fixed)"
        )
        if section.slowest is not None:
            lines.append("  slowest: " + slowest_text(section.slowest))
        teams = ", ".join(f"{team} {count}" for team, count in section.teams)
        lines.append(f"  reporters by team: {teams}")
    else:
        lines.append("  no incidents reported")
    if with_open:
        if section.open:
            lines += ["  open: " + _open_text(incident, digest, tz) for incident in section.open]
        else:
            lines.append("  open: none")
    return lines


def _stats(median: timedelta | None, mean: timedelta | None, count: int, reported: int) -> str:
    if median is None or mean is None:
        return f"no data (0 of {reported}"
    return f"median {elapsed_text(median)}, mean {elapsed_text(mean)} ({count} of {reported}"


def slowest_text(slowest: Slowest) -> str:
    """``#N service: text — fixed after 2h``: the incident slowest to repair."""
    incident = slowest.incident
    state = "fixed after" if slowest.fixed else "still open after"
    took = elapsed_text(slowest.time)
    return f"#{incident.number} {incident.service}: {incident.text} — {state} {took}"


def _open_text(incident: IncidentFacts, digest: Digest, tz: tzinfo) -> str:
    """The report time is a clock time when it is on the digest's day, else with its date."""
    owner = f"owner {incident.owner}" if incident.owner else "no owner"
    deploy = f", deploy {incident.deploy_id}" if incident.deploy_id else ""
    age = elapsed_text(digest.as_of - incident.reported_at)
    reported = clock_text(incident.reported_at, tz, digest.start)
    return (
        f"#{incident.number} {incident.service}: {incident.text} — {owner}, open {age} "
        f"(reported by {incident.reporter_nick} {reported}{deploy})"
    )


# -- JSON -------------------------------------------------------------------------------


def digest_to_dict(digest: Digest) -> dict[str, Any]:
    """The digest as JSON-ready data: times as UTC ISO 8601 with ``Z``, durations as whole
    seconds (rounded), lists always lists (empty, never null); a value that does not
    exist (no median without data, no deploy for the outside section) is null."""
    return {
        "date": digest.day.isoformat(),
        "start": iso_utc(digest.start),
        "end": iso_utc(digest.end),
        "as_of": iso_utc(digest.as_of),
        "complete": digest.complete,
        "empty": digest.empty,
        "sections": [_section_dict(section, digest.as_of) for section in digest.sections],
        "totals": _section_dict(digest.totals, digest.as_of),
    }


def _section_dict(section: Section, as_of: datetime) -> dict[str, Any]:
    slowest = section.slowest
    return {
        "title": section.title,
        "deploy_id": section.deploy_id,
        "window": None
        if section.window is None
        else {"start": iso_utc(section.window[0]), "end": iso_utc(section.window[1])},
        "reported": section.reported,
        "fixed": section.fixed,
        "open_count": len(section.open),
        "open": [_incident_dict(incident, as_of) for incident in section.open],
        "acknowledged": section.acknowledged,
        "repaired": section.repaired,
        "median_ack_seconds": whole_seconds(section.median_ack),
        "mean_ack_seconds": whole_seconds(section.mean_ack),
        "median_repair_seconds": whole_seconds(section.median_repair),
        "mean_repair_seconds": whole_seconds(section.mean_repair),
        "slowest": None
        if slowest is None
        else {
            "number": slowest.incident.number,
            "service": slowest.incident.service,
            "text": slowest.incident.text,
            "seconds": whole_seconds(slowest.time),
            "fixed": slowest.fixed,
        },
        "teams": [{"team": team, "reported": count} for team, count in section.teams],
    }


def _incident_dict(incident: IncidentFacts, as_of: datetime) -> dict[str, Any]:
    return {
        "number": incident.number,
        "service": incident.service,
        "deploy_id": incident.deploy_id,
        "text": incident.text,
        "reporter": incident.reporter_nick,
        "owner": incident.owner,
        "reported_at": iso_utc(incident.reported_at),
        "age_seconds": whole_seconds(as_of - incident.reported_at),
    }
