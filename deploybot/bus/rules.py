"""What a bus event means for the deploys (SPEC §5): pure rules, their IRC text, counters.

:func:`interpret` maps one :class:`~deploybot.bus.events.BusEvent` to deploy facts, given the
plans in force, the current time, the configured environment (``fedmsg_environment``)
and the display timezone.  It never raises, whatever the event's body holds, and reads
nothing but its arguments.

Which events count
    Only ``ansible.playbook.start`` and ``ansible.playbook.complete`` in the configured
    environment (so ``stg`` runs are ignored when the bot watches ``prod``), whose body
    names a ``playbook`` (a string) that a plan lists in ``playbooks``.  Both sides are
    compared after :func:`playbook_path`, so ``/srv/web/infra/ansible/playbooks/groups/x.yml``,
    ``playbooks/groups/x.yml`` and ``groups/x.yml`` are the same playbook.  The user is the
    body's ``userid`` (``""`` when absent).  A start in check mode (``"check": true``, a dry
    run) changes nothing and yields no fact; its completion message does not say it was a
    dry run, so inside a window it is reported like any other.

The event's time
    ``sent_at`` when the sender gave one, else ``now``; a ``sent_at`` more than
    :data:`CLOCK_SKEW` ahead of ``now`` is not believed (``now`` is used).  So a message
    delivered late (a queue drained after a restart) is judged by when it was sent.

Windows and tolerances (``t`` is the event's time, ``[when, end)`` the plan's window)
    * A **start** with ``when − EARLY_GRACE <= t < end`` is the planned deploy:
      :class:`OpenFirefighting` then :class:`DeployStarted`.  Starting up to an hour
      early is normal (preparation), so it opens firefighting rather than warning.
    * A **start** outside that span is :class:`UnplannedDeploy`.  If it is earlier on the
      plan's day (the local date of ``when`` in ``tz``), the deploy has effectively begun,
      so it also opens firefighting (SPEC §4: "at ``when`` or on the first bus event of the
      deploy") — "opens firefighting even a bit before ``when``".
    * A **complete** with ``when − EARLY_GRACE <= t < end + FINISH_GRACE`` is
      :class:`DeployFinished` (a playbook started late in the window may finish after it).
      A complete outside that span yields nothing: its start already warned, and
      routine runs must not post a result line each time.
    * Unplanned warnings only concern plans near the run: from :data:`UNPLANNED_BEFORE`
      before ``when`` to :data:`UNPLANNED_AFTER` after ``end``.  A run months away from
      any plan of the service is routine maintenance, not an unplanned deploy.

A playbook in several plans
    The most relevant plan(s) win, in this order: every plan whose span contains ``t``
    (overlapping windows each get their facts); else the nearest upcoming plan on the
    same local day (unplanned + open firefighting); else the nearest plan within the
    unplanned horizon (distance from ``t`` to its window), unplanned.  Ties give a fact
    for each tied plan, in plan-id order.  Facts come in the order to act on them:
    :class:`OpenFirefighting` first.

Text
    :func:`fact_text` gives one line per fact.  Values from the message (user, playbook,
    host names) are cut to a sane length and cleaned of CR, LF, NUL and other controls, so
    the line is never multi-line whatever the message held; the transport cuts it to the
    IRC limit.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import TypedDict

from deploybot.bus.events import KINDS, BadMessage, BusEvent, Source
from deploybot.lines import one_line
from deploybot.plans.model import Plan

__all__ = [
    "ANSIBLE_COMPLETE",
    "ANSIBLE_START",
    "CLOCK_SKEW",
    "EARLY_GRACE",
    "FINISH_GRACE",
    "MAX_HOSTS_SHOWN",
    "UNPLANNED_AFTER",
    "UNPLANNED_BEFORE",
    "BusCounts",
    "BusStats",
    "DeployFact",
    "DeployFinished",
    "DeployStarted",
    "OpenFirefighting",
    "RateLimitedLog",
    "UnplannedDeploy",
    "event_time",
    "fact_text",
    "interpret",
    "playbook_path",
    "window_text",
]

ANSIBLE_START = "ansible.playbook.start"
ANSIBLE_COMPLETE = "ansible.playbook.complete"

#: A start this long before ``when`` is still the planned deploy (early, not unplanned).
EARLY_GRACE = timedelta(hours=1)
#: A completion this long after the window's end still belongs to the deploy.
FINISH_GRACE = timedelta(hours=3)
#: An out-of-window start warns about a plan starting at most this long after it …
UNPLANNED_BEFORE = timedelta(days=7)
#: … or that ended at most this long before it.
UNPLANNED_AFTER = timedelta(days=1)
#: A ``sent_at`` further than this in the future is not believed.
CLOCK_SKEW = timedelta(minutes=5)
#: :func:`fact_text` names at most this many failed hosts, then "and N more".
MAX_HOSTS_SHOWN = 5

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FEDORA_DOMAIN = ".fedoraproject.org"
_MAX_USER = 64
_MAX_PLAYBOOK = 160
_MAX_HOST = 80


# --- facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployStarted:
    """A planned playbook started (inside the window, or up to :data:`EARLY_GRACE` early)."""

    plan: Plan
    user: str
    playbook: str  # as normalised by playbook_path
    event: BusEvent


@dataclass(frozen=True)
class DeployFinished:
    """A planned playbook finished.  ``ok`` is True when every host reported no failures
    and no unreachable tasks; ``failed_hosts`` (in the message's order) are the others.
    ``has_results`` is False when the message carried no ``results`` (``ok`` is then
    False: success is not known)."""

    plan: Plan
    user: str
    playbook: str
    ok: bool
    failed_hosts: tuple[str, ...]
    event: BusEvent
    has_results: bool = True


@dataclass(frozen=True)
class UnplannedDeploy:
    """A playbook of a planned service started in the configured environment outside the
    plan's window (see the module doc for the tolerances)."""

    plan: Plan
    user: str
    playbook: str
    event: BusEvent


@dataclass(frozen=True)
class OpenFirefighting:
    """The deploy of ``plan`` has begun on the bus: open its firefighting (idempotent in
    :meth:`~deploybot.deployday.firefight.Firefight.open`)."""

    plan: Plan
    event: BusEvent


DeployFact = DeployStarted | DeployFinished | UnplannedDeploy | OpenFirefighting
_FACT_TYPES = (OpenFirefighting, DeployStarted, DeployFinished, UnplannedDeploy)


# --- rules -------------------------------------------------------------------------------


def playbook_path(value: str) -> str:
    """The playbook's path under ``playbooks/``, as plans list it.

    >>> playbook_path("/srv/web/infra/ansible/playbooks/groups/badges-backend.yml")
    'groups/badges-backend.yml'
    >>> playbook_path("playbooks/groups/badges-backend.yml")
    'groups/badges-backend.yml'

    The path is normalised (``./``, ``//`` and ``..`` resolved) and everything up to the
    last ``playbooks`` directory is dropped; a path without one is kept as it is
    (``groups/x.yml``).  Surrounding spaces are ignored; an empty value gives ``""``.
    """
    text = value.strip()
    if not text:
        return ""
    parts = posixpath.normpath(text).split("/")
    directories = parts[:-1]
    if "playbooks" in directories:
        last = len(directories) - 1 - directories[::-1].index("playbooks")
        parts = parts[last + 1 :]
    return "/".join(parts)


def event_time(event: BusEvent, now: datetime) -> datetime:
    """When the event happened: its ``sent_at``, unless absent or beyond :data:`CLOCK_SKEW`
    in the future, else ``now``."""
    sent = event.sent_at
    if sent is not None and (sent <= now or sent - now <= CLOCK_SKEW):
        return sent
    return now


def _text(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _count(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return value


def _failed_hosts(body: Mapping[str, object]) -> tuple[str, ...] | None:
    """Hosts with failures or unreachable tasks, or None when there are no ``results``."""
    results = body.get("results")
    if not isinstance(results, Mapping):
        return None
    return tuple(
        host
        for host, stats in results.items()
        if isinstance(stats, Mapping)
        and (_count(stats.get("failures")) > 0 or _count(stats.get("unreachable")) > 0)
    )


def _local_day(moment: datetime, tz: tzinfo) -> date | None:
    """The date of ``moment`` in ``tz``; None at the ends of time (year 1 or 9999), where
    the conversion overflows."""
    try:
        return moment.astimezone(tz).date()
    except OverflowError:
        return None


def _distance(plan: Plan, moment: datetime) -> timedelta:
    if moment < plan.when:
        return plan.when - moment
    return max(moment - plan.end, timedelta(0))


def _nearest(plans: Iterable[Plan], distance: Callable[[Plan], timedelta]) -> list[Plan]:
    """The plans at the smallest ``distance`` (all of them on a tie), in plan-id order."""
    candidates = sorted(plans, key=lambda plan: (distance(plan), plan.id))
    if not candidates:
        return []
    best = distance(candidates[0])
    return [plan for plan in candidates if distance(plan) == best]


def _by_id(plans: Iterable[Plan]) -> list[Plan]:
    return sorted(plans, key=lambda plan: plan.id)


def _start_facts(
    matching: Sequence[Plan],
    moment: datetime,
    user: str,
    playbook: str,
    event: BusEvent,
    tz: tzinfo,
) -> tuple[DeployFact, ...]:
    planned = [plan for plan in matching if plan.when - EARLY_GRACE <= moment < plan.end]
    if planned:
        facts: list[DeployFact] = []
        for plan in _by_id(planned):
            facts.append(OpenFirefighting(plan, event))
            facts.append(DeployStarted(plan, user, playbook, event))
        return tuple(facts)
    today = _local_day(moment, tz)
    early = [
        plan
        for plan in matching
        if today is not None and moment < plan.when and _local_day(plan.when, tz) == today
    ]
    if early:
        nearest = _nearest(early, lambda plan: plan.when - moment)
        facts = []
        for plan in nearest:
            facts.append(OpenFirefighting(plan, event))
            facts.append(UnplannedDeploy(plan, user, playbook, event))
        return tuple(facts)
    near = [
        plan
        for plan in matching
        if plan.when - UNPLANNED_BEFORE <= moment < plan.end + UNPLANNED_AFTER
    ]
    nearest = _nearest(near, lambda plan: _distance(plan, moment))
    return tuple(UnplannedDeploy(plan, user, playbook, event) for plan in nearest)


def interpret(
    event: BusEvent,
    plans: Sequence[Plan],
    now: datetime,
    environment: str,
    tz: tzinfo,
) -> tuple[DeployFact, ...]:
    """The deploy facts ``event`` establishes (possibly none); see the module doc.

    ``plans`` are the plans in force, ``now`` the current time (aware), ``environment``
    the configured ``fedmsg_environment`` and ``tz`` the configured timezone (it decides
    what "the plan's day" is).
    """
    if event.environment != environment:
        return ()
    if event.short_topic not in (ANSIBLE_START, ANSIBLE_COMPLETE):
        return ()
    body = event.body
    playbook = playbook_path(_text(body, "playbook"))
    if not playbook:
        return ()
    matching = [
        plan
        for plan in plans
        if any(playbook_path(listed) == playbook for listed in plan.playbooks)
    ]
    if not matching:
        return ()
    moment = event_time(event, now)
    user = _text(body, "userid")
    if event.short_topic == ANSIBLE_START:
        if body.get("check") is True:
            return ()
        return _start_facts(matching, moment, user, playbook, event, tz)
    failed = _failed_hosts(body)
    finished = [
        plan for plan in matching if plan.when - EARLY_GRACE <= moment < plan.end + FINISH_GRACE
    ]
    return tuple(
        DeployFinished(
            plan,
            user,
            playbook,
            ok=failed is not None and not failed,
            failed_hosts=failed or (),
            event=event,
            has_results=failed is not None,
        )
        for plan in _by_id(finished)
    )


# --- text --------------------------------------------------------------------------------


def _piece(text: str, limit: int) -> str:
    """Outside text for a line: one line, at most ``limit`` characters."""
    clean = one_line(text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _host(name: str) -> str:
    """``db01.phx2`` for ``db01.phx2.fedoraproject.org``: the domain everyone knows is cut."""
    if name.endswith(_FEDORA_DOMAIN) and len(name) > len(_FEDORA_DOMAIN):
        name = name[: -len(_FEDORA_DOMAIN)]
    return _piece(name, _MAX_HOST)


def _hosts(names: Sequence[str]) -> str:
    shown = ", ".join(_host(name) for name in names[:MAX_HOSTS_SHOWN])
    more = len(names) - MAX_HOSTS_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def window_text(plan: Plan, tz: tzinfo) -> str:
    """``Tue 2026-12-15 13:00–21:00 UTC`` (the end gets its date when on another day)."""
    start = plan.when.astimezone(tz)
    end = plan.end.astimezone(tz)
    end_text = end.strftime("%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M")
    day = _DAYS[start.weekday()]
    return f"{day} {start:%Y-%m-%d %H:%M}–{end_text} {start.tzname() or ''}".rstrip()


def fact_text(fact: DeployFact, tz: tzinfo) -> str:
    """One IRC line for ``fact``, e.g. ``deploy of pkgdb2 started by pingou
    (groups/pkgdb.yml)``; ``tz`` shows the window of an unplanned deploy."""
    playbook = _piece(getattr(fact, "playbook", ""), _MAX_PLAYBOOK)
    user = _piece(getattr(fact, "user", ""), _MAX_USER)
    service = fact.plan.service
    if isinstance(fact, DeployStarted):
        by = f" by {user}" if user else ""
        text = f"deploy of {service} started{by} ({playbook})"
    elif isinstance(fact, DeployFinished):
        if not fact.has_results:
            outcome = "finished, no results reported"
        elif fact.ok:
            outcome = "finished ok"
        else:
            outcome = f"finished with failures on {_hosts(fact.failed_hosts)}"
        text = f"deploy of {service} {outcome} ({playbook})"
    elif isinstance(fact, UnplannedDeploy):
        by = f" by {user}" if user else ""
        text = (
            f"⚠ unplanned deploy: {playbook} run{by} outside the {fact.plan.id} window "
            f"({window_text(fact.plan, tz)})"
        )
    else:
        text = f"deploy of {service} began on the bus: opening firefighting for {fact.plan.id}"
    return one_line(text)


# --- counting and logging ----------------------------------------------------------------


class BusCounts(TypedDict):
    """What :meth:`BusStats.as_dict` returns (the ``bus`` part of ``/metrics``)."""

    received: dict[str, int]
    received_total: int
    decoded: int
    dropped: dict[str, int]
    dropped_total: int
    facts: dict[str, int]


class BusStats:
    """Counters for the bus adapters, read by ``/metrics`` through :meth:`as_dict`.

    ``received`` (per source), ``decoded``, ``dropped`` (per :data:`~deploybot.bus.events.KINDS`
    kind) and ``facts`` (per fact type).  Every known key is present from the start with 0,
    so the metrics have a stable shape.
    """

    def __init__(self) -> None:
        self.received: dict[str, int] = {"fedmsg": 0, "fedora-messaging": 0, "webhook": 0}
        self.decoded = 0
        self.dropped: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.facts: dict[str, int] = {kind.__name__: 0 for kind in _FACT_TYPES}

    def count_received(self, source: Source) -> None:
        """One message arrived from ``source`` (before decoding)."""
        self.received[source] += 1

    def count_decoded(self) -> None:
        """One message decoded into a :class:`~deploybot.bus.events.BusEvent`."""
        self.decoded += 1

    def count_dropped(self, error: BadMessage) -> None:
        """One message dropped for ``error.kind``."""
        self.dropped[error.kind] = self.dropped.get(error.kind, 0) + 1

    def count_facts(self, facts: Iterable[DeployFact]) -> None:
        """The facts :func:`interpret` drew from one event."""
        for fact in facts:
            name = type(fact).__name__
            self.facts[name] = self.facts.get(name, 0) + 1

    def as_dict(self) -> BusCounts:
        """``{"received": {...}, "received_total", "decoded", "dropped": {...},
        "dropped_total", "facts": {...}}`` — fresh dicts, never None."""
        return {
            "received": dict(self.received),
            "received_total": sum(self.received.values()),
            "decoded": self.decoded,
            "dropped": dict(self.dropped),
            "dropped_total": sum(self.dropped.values()),
            "facts": dict(self.facts),
        }


class RateLimitedLog:
    """Log dropped messages at most once per ``interval`` seconds per kind.

    Time is passed in (``now``: seconds on a monotonic clock, e.g. ``loop.time()``).  The
    first drop of a kind is logged; later ones within ``interval`` are only counted, and
    the next logged line of that kind says how many were suppressed.  :meth:`flush` logs
    the counts still pending once their interval has passed (call it periodically, so a
    burst followed by silence is still reported).
    """

    def __init__(
        self, logger: logging.Logger, interval: float = 60.0, level: int = logging.WARNING
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.level = level
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def _due(self, kind: str, now: float) -> bool:
        last = self._last.get(kind)
        return last is None or not 0 <= now - last < self.interval

    def _more(self, count: int) -> str:
        return f" ({count} more like it since the last report)" if count else ""

    def dropped(self, error: BadMessage, now: float, origin: str = "") -> bool:
        """Report ``error`` (from ``origin``, e.g. an endpoint); True if a line was logged."""
        kind = error.kind
        if not self._due(kind, now):
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        more = self._more(self._suppressed.pop(kind, 0))
        where = f" from {one_line(origin)}" if origin else ""
        self.logger.log(
            self.level,
            "dropped a bus message%s (%s): %s%s",
            where,
            kind,
            one_line(error.detail),
            more,
        )
        return True

    def flush(self, now: float) -> int:
        """Log the suppressed counts whose interval has passed; the number of lines logged."""
        logged = 0
        for kind in sorted(self._suppressed):
            if self._due(kind, now):
                count = self._suppressed.pop(kind)
                self._last[kind] = now
                self.logger.log(
                    self.level,
                    "dropped %d more bus message(s) (%s) since the last report",
                    count,
                    kind,
                )
                logged += 1
        return logged

    def suppressed(self) -> dict[str, int]:
        """Drops counted but not yet reported, per kind (a fresh dict)."""
        return dict(self._suppressed)
