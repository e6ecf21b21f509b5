"""The firefighting roster: its channel, who is on shift, and whom to page on deploy day.

Pure functions: the current time ``now`` (aware) and the display timezone ``tz`` are
passed in; :func:`pagees` also reads the ``!uses`` registrations from the store.
:func:`firefight_channel` is the one place that says which channel a plan's
firefighting happens in.

Nicks are compared ASCII-case-insensitively, like the store does (``Pingou`` is
``pingou``), and shown as they were first written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from deploybot.config import Config
from deploybot.errors import DeploybotError
from deploybot.plans.model import Plan, Shift
from deploybot.store import Store
from deploybot.texts import when_text

__all__ = [
    "ON_SHIFT_MARK",
    "NoFirefightChannelError",
    "OnShift",
    "Pagee",
    "firefight_channel",
    "nick_key",
    "on_shift",
    "on_shift_nicks",
    "pagees",
    "roster_line",
    "roster_lines",
    "shift_hours",
    "team_members_on_shift",
    "team_named",
    "teams_of",
]

#: Marks a person who is on shift now in ``!roster``.
ON_SHIFT_MARK = "●"

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def nick_key(nick: str) -> str:
    """The key two nicks are the same person by: ASCII lower case (like the store)."""
    return nick.translate(_ASCII_LOWER)


def firefight_channel(plan: Plan, config: Config) -> str | None:
    """The firefighting channel of ``plan``: its ``roster.channel``, else the config's
    ``firefight_channel`` pattern filled with the plan's service and id.

    None when the pattern makes no channel name of them (a service with a comma, say):
    such a plan has no firefighting channel.  It is shown without one (``!roster``,
    ``!deploy``, ``!oncall``, the API's ``null``), it is never opened (the sweep and
    ``!firefight open`` raise :class:`NoFirefightChannelError`), and what would go to its
    channel goes to the admin channel only (the digest, ``!page``, escalations).
    """
    if plan.roster.channel:
        return plan.roster.channel
    try:
        return config.firefight_channel_for(plan.service, plan.id)
    except ValueError:
        return None


class NoFirefightChannelError(DeploybotError):
    """A plan whose firefighting channel is needed has none (see :func:`firefight_channel`)."""

    def __init__(self, plan: Plan, config: Config) -> None:
        super().__init__(
            f"{plan.id} has no firefighting channel: the firefight_channel pattern "
            f"{config.firefight_channel!r} makes no channel name of service {plan.service!r}; "
            "give the plan a roster.channel"
        )


@dataclass(frozen=True)
class OnShift:
    """One person on shift: their roster ``team`` and ``nick``."""

    team: str
    nick: str


@dataclass(frozen=True)
class Pagee:
    """Someone to page when a deploy starts, with every reason why (``reasons``).

    ``team``: the team of the first reason that has one (roster team, or the consumer's
    team), stored with the page.
    """

    nick: str
    reasons: tuple[str, ...]
    team: str | None = None

    @property
    def why(self) -> str:
        """``infrastructure shift; consumer: rel-eng compose scripts``."""
        return "; ".join(self.reasons)


def on_shift(plan: Plan, now: datetime) -> tuple[OnShift, ...]:
    """Everyone whose shift covers ``now``, in roster order; each (team, nick) once."""
    seen: set[tuple[str, str]] = set()
    found: list[OnShift] = []
    for shift in plan.roster.shifts:
        if not shift.covers(now):
            continue
        for nick in shift.people:
            key = (shift.team.casefold(), nick_key(nick))
            if key not in seen:
                seen.add(key)
                found.append(OnShift(shift.team, nick))
    return tuple(found)


def on_shift_nicks(plan: Plan, now: datetime) -> tuple[str, ...]:
    """The nicks on shift at ``now``, each once (someone in two teams is listed once)."""
    return _unique(person.nick for person in on_shift(plan, now))


def teams_of(plans: Iterable[Plan]) -> tuple[str, ...]:
    """Every team named in the plans (roster shifts, ``teams``, consumers), each once."""
    names: dict[str, str] = {}
    for plan in plans:
        for team in (
            *(shift.team for shift in plan.roster.shifts),
            *plan.teams,
            *(consumer.team for consumer in plan.consumers),
        ):
            if team:
                names.setdefault(team.casefold(), team)
    return tuple(names.values())


def team_named(plans: Iterable[Plan], name: str) -> str | None:
    """The team of ``plans`` called ``name`` (any case), spelled as the plans write it;
    None when no plan names such a team."""
    folded = name.casefold()
    return next((team for team in teams_of(plans) if team.casefold() == folded), None)


def team_members_on_shift(plans: Iterable[Plan], team: str, now: datetime) -> tuple[str, ...]:
    """The nicks of ``team`` (any case) on shift at ``now`` in any of ``plans``, each once."""
    folded = team.casefold()
    return _unique(
        person.nick
        for plan in plans
        for person in on_shift(plan, now)
        if person.team.casefold() == folded
    )


def pagees(plan: Plan, store: Store, now: datetime) -> tuple[Pagee, ...]:
    """Everyone to page when ``plan``'s deploy starts at ``now``, each once.

    In this order: the roster people on shift at ``now`` ("infrastructure shift"), the
    plan's consumer contacts ("consumer: rel-eng compose scripts"), then the people who
    registered with ``!uses`` for the plan's service ("!uses: my script", or "!uses"
    when they said nothing more).  Someone with several reasons is paged once, with all
    of them.
    """
    reasons: dict[str, list[str]] = {}
    nicks: dict[str, str] = {}
    teams: dict[str, str | None] = {}

    def add(nick: str, reason: str, team: str | None) -> None:
        key = nick_key(nick)
        if key not in reasons:
            reasons[key] = []
            nicks[key] = nick
            teams[key] = team
        elif teams[key] is None:
            teams[key] = team
        if reason not in reasons[key]:
            reasons[key].append(reason)

    for person in on_shift(plan, now):
        add(person.nick, f"{person.team} shift", person.team)
    for consumer in plan.consumers:
        if consumer.contact:
            add(consumer.contact, f"consumer: {consumer.name}", consumer.team or None)
    for registered in store.consumers(plan.service):
        add(registered.nick, f"!uses: {registered.what}" if registered.what else "!uses", None)
    return tuple(Pagee(nicks[key], tuple(reasons[key]), teams[key]) for key in reasons)


def shift_hours(shift: Shift, tz: tzinfo) -> str:
    """``13:00–21:00 UTC`` in ``tz`` (a date is added to an end on another day), or
    ``whole window`` for a shift written without times."""
    if shift.written_from is None and shift.written_to is None:
        return "whole window"
    start = shift.start.astimezone(tz)
    end = shift.end.astimezone(tz)
    end_text = end.strftime("%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M")
    return f"{start:%H:%M}–{end_text} {start.tzname() or ''}".rstrip()


def roster_lines(plan: Plan, now: datetime, config: Config) -> list[str]:
    """The roster as ``!roster`` shows it: a heading, one line per team, then escalation.

    The one rendering of a roster (``!deploy`` shows the same in one line,
    :func:`roster_line`).  Its rules: the heading names the plan and its firefighting
    channel (:func:`firefight_channel`; ``no channel`` when it has none) and says when
    the deploy starts (before it), that it ended (after it), or what ● means (during it);
    a team's shifts share its line, in roster order, each with its people (● on shift
    now; ``nobody`` for none) and :func:`shift_hours` in the config's timezone; a roster
    without shifts is ``nobody yet``.  For example, during the deploy::

        pkgdb2-2.0 roster (#pkgdb2-firefight), ● = on shift now:
        infrastructure: ●pingou 13:00–17:00 UTC; abadger1999 17:00–21:00 UTC
        rel-eng: ●dgilmore whole window
        escalation: nirik
    """
    tz = config.timezone
    where = f" ({firefight_channel(plan, config) or 'no channel'})"
    if not plan.roster.shifts:
        lines = [f"{plan.id} roster{where}: nobody yet"]
    else:
        if now < plan.when:
            legend = f"deploy starts {when_text(plan.when, tz)}"
        elif now >= plan.end:
            legend = f"deploy ended {when_text(plan.end, tz)}"
        elif on_shift(plan, now):
            legend = f"{ON_SHIFT_MARK} = on shift now"
        else:
            legend = "nobody is on shift now"
        lines = [f"{plan.id} roster{where}, {legend}:"]
        by_team: dict[str, tuple[str, list[str]]] = {}
        for shift in plan.roster.shifts:
            mark = ON_SHIFT_MARK if shift.covers(now) else ""
            people = ", ".join(f"{mark}{nick}" for nick in shift.people) or "nobody"
            entry = f"{people} {shift_hours(shift, tz)}"
            by_team.setdefault(shift.team.casefold(), (shift.team, []))[1].append(entry)
        lines += [f"{team}: {'; '.join(entries)}" for team, entries in by_team.values()]
    if plan.roster.escalation:
        lines.append(f"escalation: {', '.join(plan.roster.escalation)}")
    return lines


def roster_line(plan: Plan, now: datetime, config: Config) -> str:
    """:func:`roster_lines` in one line (for ``!deploy``): the heading, then the other
    lines joined by `` | ``, e.g. ``pkgdb2-2.0 roster (#pkgdb2-firefight), ● = on shift
    now: infrastructure: ●pingou 13:00–17:00 UTC; abadger1999 17:00–21:00 UTC | rel-eng:
    ●dgilmore whole window | escalation: nirik``."""
    heading, *parts = roster_lines(plan, now, config)
    if not parts:
        return heading
    return f"{heading}{' ' if heading.endswith(':') else ' | '}{' | '.join(parts)}"


def _unique(nicks: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for nick in nicks:
        seen.setdefault(nick_key(nick), nick)
    return tuple(seen.values())
