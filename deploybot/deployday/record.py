"""What the bot recorded about one deploy, gathered for its post-mortem and its picture
(issue 13): a pure reading of the store and the plan, no transport.

:func:`deploy_record` collects, for a plan:

* the **timeline** (:class:`Moment`, in time order): the announcements, meetings and the
  staging call from the plan (dates: shown as days), the countdown posts (from the
  ledger), drift findings (:data:`DRIFT_HOOK`), the freeze break (requested, each
  approval), what the bus and the firefighting channel recorded on the deploy
  (playbook start/finish, unplanned runs, freeze warnings, firefighting opened/closed),
  every page with its acknowledgement and escalation, and every incident's timeline
  (reported, taken, noted, acknowledged, fixed) with who and when;
* the **numbers** (:class:`Numbers`): incidents, fixed and open, median times to
  acknowledge and to repair (as the digest defines them), pages acknowledged and how fast,
  escalations;
* API breaks **declared vs observed** (:class:`BreakSeen`): a declared break is observed
  when an incident's text (or a note) names its endpoint, up to its first placeholder
  (``/acls/name/<package>`` is named by ``/acls/name/kernel``); incidents that name none
  are listed for people to judge (a heuristic the draft says it is);
* **who was affected**: incidents by the reporter's team (as the digest counts them) and
  by consumer (the plan's consumers whose contact reported, or whose name an incident
  mentions; ``!uses`` registrations of the service);
* the open incidents with their owners.

Times are aware UTC; the draft shows them in the configured zone with UTC beside.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from deploybot.deployday.digest import median, team_of, teams_of
from deploybot.drift.runs import latest_run
from deploybot.durations import format_duration, plural
from deploybot.lines import one_line
from deploybot.plans.freezes import FreezeStanding
from deploybot.plans.model import Plan
from deploybot.store import DeployEvent, FreezeBreak, Incident, Page, Store

if TYPE_CHECKING:
    from deploybot.core import Core

__all__ = [
    "DRIFT_HOOK",
    "BreakSeen",
    "DeployRecord",
    "Moment",
    "Numbers",
    "deploy_record",
    "record_of",
    "summary_line",
]


@dataclass(frozen=True)
class Moment:
    """One line of the timeline.  ``day_only``: a date from the plan (no time of day).
    ``kind`` groups them (``plan``, ``countdown``, ``drift``, ``freeze``, ``bus``,
    ``firefight``, ``page``, ``incident``); ``who`` may be empty; ``incident`` is the
    incident's number for its lines."""

    at: datetime
    kind: str
    text: str
    who: str = ""
    day_only: bool = False
    incident: int | None = None


def drift_moments(store: Store, plan: Plan) -> tuple[Moment, ...]:
    """The drift probe's findings (issue 12) for the timeline: the plan's latest stored
    run (the store keeps the latest few; older ones are not read back) — its summary, then
    a line per finding, failure and declared break not observed — at the time it ran."""
    if not plan.probes:
        return ()
    run = latest_run(store, plan.id)
    if run is None:
        return ()
    runs = store.drift_run_count(plan.id)
    summary = run.summary(UTC).partition("): ")[2] or run.summary(UTC)
    head = f"drift probe, latest of {plural(runs, 'run')}: {summary}"
    return (
        Moment(run.ran_at, "drift", head),
        *(Moment(run.ran_at, "drift", line) for line in run.lines(UTC)[1:]),
    )


#: Where drift findings (issue 12) enter the timeline: a function of the store and the
#: plan giving their :class:`Moment` s (kind ``drift``); tests may pass another.
DRIFT_HOOK: Callable[[Store, Plan], Sequence[Moment]] = drift_moments


@dataclass(frozen=True)
class BreakSeen:
    """A declared API break and the incidents that name its endpoint."""

    endpoint: str
    change: str
    incidents: tuple[int, ...]


@dataclass(frozen=True)
class Numbers:
    incidents: int
    fixed: int
    open: int
    median_ack: timedelta | None
    acknowledged: int
    median_repair: timedelta | None
    repaired: int
    pages: int
    pages_acked: int
    median_page_ack: timedelta | None
    escalated: int


@dataclass(frozen=True)
class DeployRecord:
    plan: Plan
    as_of: datetime
    timeline: tuple[Moment, ...]
    incidents: tuple[Incident, ...]
    pages: tuple[Page, ...]
    events: tuple[DeployEvent, ...]
    numbers: Numbers
    breaks_seen: tuple[BreakSeen, ...]
    unmatched: tuple[Incident, ...]
    by_team: tuple[tuple[str, int], ...]
    by_consumer: tuple[tuple[str, tuple[int, ...]], ...]
    registered: tuple[str, ...]
    freeze: FreezeStanding
    freeze_break: FreezeBreak | None = None
    drift: tuple[Moment, ...] = field(default=())

    @property
    def open_incidents(self) -> tuple[Incident, ...]:
        return tuple(incident for incident in self.incidents if incident.open)

    @property
    def started(self) -> datetime | None:
        """The first playbook start on the bus, if any."""
        return next((e.at for e in self.events if e.kind == "playbook-start"), None)

    @property
    def finished(self) -> datetime | None:
        """The last playbook finish on the bus, if any."""
        done = [e.at for e in self.events if e.kind == "playbook-finish"]
        return done[-1] if done else None


def _day(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def _plan_moments(plan: Plan) -> list[Moment]:
    moments = [
        Moment(
            _day(a.date),
            "plan",
            f"announced to the {a.list} list" + (" (API break)" if a.api_break else ""),
            day_only=True,
        )
        for a in plan.announcements
    ]
    moments += [
        Moment(_day(day), "plan", "discussed at the weekly infrastructure meeting", day_only=True)
        for day in plan.meetings
    ]
    if plan.staging.call_for_testing is not None:
        where = f" ({plan.staging.url})" if plan.staging.url else ""
        moments.append(
            Moment(
                _day(plan.staging.call_for_testing),
                "plan",
                f"call for testing in staging{where}",
                day_only=True,
            )
        )
    return moments


def _countdown_moments(store: Store, plan: Plan) -> list[Moment]:
    prefix = f"{plan.id}@"
    moments = []
    for claim in store.countdown_claims():
        if not claim.key.startswith(prefix):
            continue
        offset = claim.key.removeprefix(prefix)
        if claim.skipped:
            text = f"countdown {offset} skipped (the bot was offline; a later one was due)"
        else:
            text = f"countdown {offset} posted" + (" late" if claim.late else "")
        moments.append(Moment(claim.claimed_at, "countdown", text))
    return moments


_KIND_ORDER = {
    "plan": 0,
    "countdown": 1,
    "drift": 2,
    "bus": 3,
    "freeze": 4,
    "firefight": 5,
    "page": 6,
    "incident": 7,
}

_EVENT_KINDS = {
    "playbook-start": "bus",
    "playbook-finish": "bus",
    "unplanned": "bus",
    "freeze-warning": "freeze",
    "firefight-opened": "firefight",
    "firefight-closed": "firefight",
}


def _event_moments(events: Iterable[DeployEvent]) -> list[Moment]:
    return [
        Moment(event.at, _EVENT_KINDS.get(event.kind, "bus"), one_line(event.text), event.nick)
        for event in events
    ]


def _freeze_moments(found: FreezeBreak | None) -> list[Moment]:
    if found is None:
        return []
    moments = [
        Moment(
            found.requested_at,
            "freeze",
            f"freeze break #{found.number} requested ({found.freezes}): {one_line(found.reason)}",
            found.requester_nick,
        )
    ]
    moments += [
        Moment(approval.at, "freeze", f"freeze break #{found.number} approved", approval.nick)
        for approval in found.approvals
    ]
    return moments


def _page_moments(pages: Iterable[Page]) -> list[Moment]:
    moments = []
    for page in pages:
        about = f" about incident #{page.incident}" if page.incident is not None else ""
        team = f" ({page.team})" if page.team else ""
        moments.append(
            Moment(
                page.created_at,
                "page",
                f"page #{page.number} to {page.target_nick}{team}{about}",
                page.sender_nick,
            )
        )
        if page.escalated_at is not None:
            moments.append(
                Moment(
                    page.escalated_at,
                    "page",
                    f"page #{page.number} to {page.target_nick} not acknowledged: escalated",
                )
            )
        if page.acked_at is not None:
            delay = format_duration(_whole(page.acked_at - page.created_at))
            moments.append(
                Moment(
                    page.acked_at,
                    "page",
                    f"page #{page.number} acknowledged after {delay}",
                    page.acked_by or "",
                )
            )
    return moments


_INCIDENT_WORDS = {
    "reported": "reported",
    "taken": "taken",
    "note": "note",
    "fixed": "fixed",
    "ack": "acknowledged (page)",
}


def _incident_moments(incidents: Iterable[Incident]) -> list[Moment]:
    moments = []
    for incident in incidents:
        for entry in incident.timeline:
            word = _INCIDENT_WORDS.get(entry.kind, entry.kind)
            text = f"#{incident.number} {word}"
            if entry.kind == "reported":
                text += f" ({incident.service}): {one_line(incident.text)}"
            elif entry.text:
                text += f": {one_line(entry.text)}"
            moments.append(Moment(entry.at, "incident", text, entry.nick, incident=incident.number))
    return moments


def _whole(delta: timedelta) -> timedelta:
    return timedelta(seconds=max(int(delta.total_seconds()), 0))


def _numbers(incidents: Sequence[Incident], pages: Sequence[Page]) -> Numbers:
    acks = [i.time_to_acknowledge for i in incidents if i.time_to_acknowledge is not None]
    repairs = [i.time_to_repair for i in incidents if i.time_to_repair is not None]
    page_acks = [p.acked_at - p.created_at for p in pages if p.acked_at is not None]
    fixed = sum(1 for incident in incidents if not incident.open)
    return Numbers(
        incidents=len(incidents),
        fixed=fixed,
        open=len(incidents) - fixed,
        median_ack=median(list(acks)),
        acknowledged=len(acks),
        median_repair=median(list(repairs)),
        repaired=len(repairs),
        pages=len(pages),
        pages_acked=len(page_acks),
        median_page_ack=median(page_acks),
        escalated=sum(1 for page in pages if page.escalated_at is not None),
    )


def _mentions(incident: Incident, needle: str) -> bool:
    needle = needle.casefold().strip()
    if not needle:
        return False
    texts = [incident.text, *(entry.text for entry in incident.timeline)]
    return any(needle in text.casefold() for text in texts)


_PLACEHOLDER = re.compile(r"[<{].*$")


def _endpoint_stem(endpoint: str) -> str:
    """What an incident must name for a break: the endpoint up to its first placeholder
    (``/acls/name/<package>`` → ``/acls/name/``)."""
    return _PLACEHOLDER.sub("", endpoint.strip()) or endpoint


def _breaks_seen(
    plan: Plan, incidents: Sequence[Incident]
) -> tuple[tuple[BreakSeen, ...], tuple[Incident, ...]]:
    seen = tuple(
        BreakSeen(
            item.endpoint,
            item.change,
            tuple(i.number for i in incidents if _mentions(i, _endpoint_stem(item.endpoint))),
        )
        for item in plan.api_breaks
    )
    matched = {number for item in seen for number in item.incidents}
    return seen, tuple(i for i in incidents if i.number not in matched)


def _by_consumer(
    plan: Plan, incidents: Sequence[Incident]
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    rows = []
    for consumer in plan.consumers:
        contact = consumer.contact.casefold()
        numbers = tuple(
            i.number
            for i in incidents
            if (contact and i.reporter_nick.casefold() == contact) or _mentions(i, consumer.name)
        )
        rows.append((consumer.name, numbers))
    return tuple(rows)


def deploy_record(
    store: Store,
    plan: Plan,
    freeze: FreezeStanding,
    as_of: datetime,
    *,
    drift: Callable[[Store, Plan], Sequence[Moment]] = DRIFT_HOOK,
) -> DeployRecord:
    """Everything recorded about ``plan``'s deploy as of ``as_of`` (see the module doc)."""
    incidents = store.list_incidents(deploy_id=plan.id)
    pages = store.list_pages(plan_id=plan.id)
    events = store.deploy_events(plan.id)
    found = store.freeze_break_for(plan.id)
    drift_moments = tuple(drift(store, plan))
    moments = [
        *_plan_moments(plan),
        *_countdown_moments(store, plan),
        *drift_moments,
        *_freeze_moments(found),
        *_event_moments(events),
        *_page_moments(pages),
        *_incident_moments(incidents),
    ]
    # At the same second, causes before effects: a playbook start before the opening it
    # caused, the opening before its pages (the sort is stable within a kind).
    moments.sort(key=lambda m: (m.at, not m.day_only, _KIND_ORDER.get(m.kind, 9)))
    seen, unmatched = _breaks_seen(plan, incidents)
    rosters = (teams_of((plan,)),)
    teams = Counter(team_of(incident.reporter_nick, rosters) for incident in incidents)
    registered = tuple(
        f"{c.nick}" + (f" ({one_line(c.what)})" if c.what else "")
        for c in store.consumers(plan.service)
    )
    return DeployRecord(
        plan=plan,
        as_of=as_of,
        timeline=tuple(moments),
        incidents=tuple(incidents),
        pages=tuple(pages),
        events=tuple(events),
        numbers=_numbers(incidents, pages),
        breaks_seen=seen,
        unmatched=unmatched,
        by_team=tuple(sorted(teams.items(), key=lambda item: (-item[1], item[0]))),
        by_consumer=_by_consumer(plan, incidents),
        registered=registered,
        freeze=freeze,
        freeze_break=found,
        drift=drift_moments,
    )


def summary_line(record: DeployRecord) -> str:
    """One line: what was deployed, when, and how it went."""
    plan, numbers = record.plan, record.numbers
    head = f"{plan.service} {plan.release}".strip()
    parts = [
        f"{plural(numbers.incidents, 'incident')} ({numbers.fixed} fixed, {numbers.open} open)",
        f"{plural(numbers.pages, 'page')} ({numbers.pages_acked} acknowledged)",
    ]
    if plan.api_breaks:
        parts.append(f"{plural(len(plan.api_breaks), 'declared API break')}")
    return f"{head} ({plan.id}), {format_duration(plan.duration)} window: " + ", ".join(parts)


def record_of(core: Core, plan: Plan) -> DeployRecord:
    """:func:`deploy_record` of ``plan`` in ``core`` (its store and freezes), as of now."""
    return deploy_record(core.store, plan, core.freeze_standing(plan), core.now())
