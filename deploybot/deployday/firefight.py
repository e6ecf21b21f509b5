"""Deploy day (SPEC §4): the firefighting channel's life — open, topic, shifts, close.

One :class:`Firefight` per running bot (``DeployDay.firefight``), holding the core, an
:class:`~deploybot.outbox.Outbox` and the :class:`~deploybot.deployday.paging.Pager` that sends
its pages (``Firefight.pager``: pages, ``!page``, ``!ack`` and escalation are described
in :mod:`deploybot.deployday.paging`).  A plan's channel is
:func:`~deploybot.deployday.roster.firefight_channel`; a plan without one is never
opened.  Everything that must survive a restart is in the store; the few in-memory sets
only avoid redundant work within one process.  Time is always passed in (``now``,
aware).

Opening (:meth:`Firefight.open`) — "the deploy started"
    Called by the periodic :meth:`~Firefight.sweep` once ``when`` has come, by
    ``!firefight open ID``, by ``!broke`` during the window (if the sweep has not run
    yet), and later by bus events.  The ledger key ``firefight-open:ID``
    (:meth:`~deploybot.store.Store.claim_once`) makes it happen once ever: the first call
    joins the channel, sets the topic, posts the API breaks and pages everyone
    :func:`~deploybot.deployday.roster.pagees` names
    (:meth:`~deploybot.deployday.paging.Pager.page_people`);
    every later call (e.g. after a restart during the window) only joins the channel
    again and refreshes the topic — nobody is paged twice.  The claim is made *before*
    anything is sent: a crash in between loses pages rather than repeating them
    (roster people are then still paged by the shift follow-up below).

During the window (:meth:`Firefight.follow_shifts`, :meth:`Firefight.on_incident`)
    The sweep pages, once per deploy, each person whose shift starts later in the
    window when it begins ("shift follow-up") and refreshes the topic's "on shift"
    list; ``!broke`` highlights who is on shift in the channel.

Closing (:meth:`Firefight.close`)
    At the end of the window (ledger key ``firefight-close:ID``): a summary of the
    deploy's incidents and pages in the channel, the topic "closed: …", and the bot
    leaves the channel (unless another running deploy uses the same channel).  A plan
    that was never opened is only marked closed (and can then no longer be opened).
    The sweep closes plans that ended less than :data:`CLOSE_LATE_LIMIT` ago, so a
    window that ended while the bot was down still gets its summary, but plans that
    ended long ago are left alone.

A deploy closed *by hand* before the end of its window stays closed across restarts:
:meth:`Firefight.due_actions` reads the ``firefight-close:ID`` claim
(:meth:`~deploybot.store.Store.claimed`) and does not rejoin it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from deploybot.deployday.paging import Pager
from deploybot.deployday.roster import (
    NoFirefightChannelError,
    Pagee,
    firefight_channel,
    on_shift,
    on_shift_nicks,
    pagees,
)
from deploybot.durations import plural
from deploybot.errors import DeploybotError
from deploybot.jobs import add_date_job, remove_jobs
from deploybot.lines import fits, one_line, shorten
from deploybot.plans.model import Plan
from deploybot.plans.schedule import running
from deploybot.store import Incident, Page
from deploybot.texts import break_lines, clock_text, incident_line, named

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from deploybot.core import Core
    from deploybot.outbox import Outbox

__all__ = [
    "CLOSE_LATE_LIMIT",
    "JOB_PREFIX",
    "TOPIC_LIMIT",
    "DueActions",
    "Firefight",
    "SweepReport",
]

log = logging.getLogger(__name__)

#: The topic is kept to this many UTF-8 bytes (servers cut topics at ~300–390).
TOPIC_LIMIT = 300
#: A plan whose window ended longer ago than this is not closed by the sweep.
CLOSE_LATE_LIMIT = timedelta(days=1)
#: The close summary lists at most this many open incidents.
MAX_OPEN_LISTED = 5
#: APScheduler job ids of the sweeps at each plan's start and end (the escalations'
#: are :data:`~deploybot.deployday.paging.ESCALATION_JOB_PREFIX`).
JOB_PREFIX = "firefight:"


@dataclass(frozen=True)
class DueActions:
    """What a sweep at ``now`` should do: plans to open (or rejoin) and to close."""

    open: tuple[Plan, ...] = ()
    close: tuple[Plan, ...] = ()


@dataclass(frozen=True)
class SweepReport:
    """What one :meth:`Firefight.sweep` did (plan ids and pages), for logs and tests."""

    opened: tuple[str, ...] = ()
    rejoined: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    shift_pages: tuple[Page, ...] = ()
    escalated: tuple[Page, ...] = ()


class Firefight:
    """The firefighting channels of one bot's deploys; see the module documentation."""

    def __init__(self, core: Core, outbox: Outbox, pager: Pager) -> None:
        self.core = core
        self.outbox = outbox
        # Pages, !page, !ack and escalation (through the same outbox).
        self.pager = pager
        # Plan ids this process opened or rejoined (their channel is joined).
        self._active: set[str] = set()
        # Plan ids this process closed (or found closed): not opened again by a sweep.
        self._finished: set[str] = set()
        #: plans already warned of having no channel (one warning, not one per sweep)
        self._no_channel_told: set[str] = set()
        # The last topic set per plan id.
        self._topics: dict[str, str] = {}

    # -- where ---------------------------------------------------------------------------

    def channel_for(self, plan: Plan) -> str:
        """The plan's firefighting channel (:func:`~deploybot.deployday.roster.firefight_channel`);
        :class:`~deploybot.deployday.roster.NoFirefightChannelError` when it has none."""
        channel = firefight_channel(plan, self.core.config)
        if channel is None:
            raise NoFirefightChannelError(plan, self.core.config)
        return channel

    def is_open(self, plan: Plan) -> bool:
        """Whether this process has the plan's firefighting channel open (joined)."""
        return plan.id in self._active

    # -- opening -------------------------------------------------------------------------

    def open(self, plan: Plan, now: datetime, reason: str) -> bool:
        """The deploy started: open firefighting once ever; True if this call opened it.

        Later calls (a restart during the window, a second ``!firefight open``) join
        the channel again and refresh the topic, and return False.  Raises
        :class:`~deploybot.errors.DeploybotError` when the window has already ended.
        """
        if now >= plan.end:
            raise DeploybotError(
                f"the window of {plan.id} ended at "
                f"{clock_text(plan.end, self.core.config.timezone, now)}; nothing to open"
            )
        channel = self.channel_for(plan)
        store = self.core.store
        # The claim, the posts and the pages are one transaction: kept together, or
        # (an error anywhere) none of them, and the next sweep opens it again.
        with store.transaction():
            first = store.claim_once(f"firefight-open:{plan.id}", now)
            self.outbox.join(channel)
            if first:
                self._announce_opening(plan, channel, now, reason)
            else:
                self._refresh_topic(plan, channel, now, force=True)
        self._active.add(plan.id)
        self._finished.discard(plan.id)
        if not first:
            log.info("firefighting for %s already open: rejoined %s (%s)", plan.id, channel, reason)
            return False
        log.info("opening firefighting for %s in %s (%s)", plan.id, channel, reason)
        return True

    def _announce_opening(self, plan: Plan, channel: str, now: datetime, reason: str) -> None:
        """The first opening's topic, "deploy started" line, API breaks and pages; the
        opening is recorded on the deploy (its post-mortem's timeline)."""
        self.core.store.record_deploy_event(
            plan.id, "firefight-opened", now, text=f"firefighting opened in {channel} ({reason})"
        )
        # People on the first shift are paged even when the deploy starts early.
        shift_time = max(now, plan.when)
        self._refresh_topic(plan, channel, shift_time, force=True)
        tz = self.core.config.timezone
        self.outbox.post(
            channel,
            f"{named(plan)} deploy started ({reason}) — firefighting until "
            f"{clock_text(plan.end, tz, now)}; report problems: !broke {plan.service} what broke",
        )
        for line in break_lines(plan):
            self.outbox.post(channel, line)
        people = pagees(plan, self.core.store, shift_time)
        self.pager.page_people(
            plan,
            channel,
            people,
            now,
            message=f"deploy of {named(plan)} started: firefighting in {channel}",
            highlight=f"{named(plan)} deploy started — join {channel}; !ack to acknowledge",
        )

    # -- topic ---------------------------------------------------------------------------

    def topic(self, plan: Plan, now: datetime) -> str:
        """The channel topic: deploy, window, API breaks, how to report, who is on shift.

        At most :data:`TOPIC_LIMIT` UTF-8 bytes: the "on shift" list is shortened first
        (``+2 more: !oncall``), then the whole text is cut.
        """
        tz = self.core.config.timezone
        start = plan.when.astimezone(tz)
        end = plan.end.astimezone(tz)
        end_text = end.strftime("%H:%M" if end.date() == start.date() else "%a %H:%M")
        parts = [f"{plan.id}: {named(plan)} deploy {start:%H:%M}–{end_text} {start.tzname()}"]
        if plan.api_breaks:
            parts.append(f"⚠ {plural(len(plan.api_breaks), 'API break')}: !breaks {plan.id}")
        parts.append(f"report: !broke {plan.service} what broke")
        head = " | ".join(parts)
        nicks = list(on_shift_nicks(plan, now))
        if not nicks:
            return shorten(f"{head} | on shift: nobody", TOPIC_LIMIT)
        for shown in range(len(nicks), 0, -1):
            more = len(nicks) - shown
            tail = f" +{more} more: !oncall" if more else ""
            text = f"{head} | on shift: {' '.join(nicks[:shown])}{tail}"
            if fits(text, TOPIC_LIMIT):
                return text
        return shorten(f"{head} | on shift: !oncall", TOPIC_LIMIT)

    def _refresh_topic(self, plan: Plan, channel: str, now: datetime, *, force: bool) -> None:
        topic = self.topic(plan, now)
        if force or self._topics.get(plan.id) != topic:
            self.outbox.set_topic(channel, topic)
            self._topics[plan.id] = topic

    # -- during the window ---------------------------------------------------------------

    def follow_shifts(self, plan: Plan, now: datetime) -> list[Page]:
        """Page the people whose shift has begun and who were not paged for this deploy
        yet; refresh the topic when the "on shift" list changed."""
        channel = self.channel_for(plan)
        fresh = [
            Pagee(person.nick, (f"{person.team} shift",), person.team)
            for person in on_shift(plan, now)
            if not self.pager.has_paged(plan, person.nick)
        ]
        starts = f"your shift on the {named(plan)} deploy starts now"
        pages = self.pager.page_people(
            plan,
            channel,
            fresh,
            now,
            message=f"{starts}: firefighting in {channel}",
            highlight=f"{starts} — join {channel}; !ack to acknowledge",
        )
        self._refresh_topic(plan, channel, now, force=False)
        return pages

    def on_incident(self, incident: Incident, plan: Plan, now: datetime) -> None:
        """``!broke`` during ``plan``'s window: highlight who is on shift in its channel.

        Opens firefighting first if that has not happened yet (the sweep may lag).
        """
        if plan.id not in self._active and plan.running_at(now):
            self.open(plan, now, reason=f"incident #{incident.number} reported")
        channel = self.channel_for(plan)
        minutes = incident.minutes_into_deploy
        where = incident.service + (f", +{minutes} min" if minutes is not None else "")
        nicks = on_shift_nicks(plan, now)
        if nicks:
            who = f"on shift: {' '.join(nicks)}"
        elif plan.roster.escalation:
            who = f"nobody on shift — escalation: {' '.join(plan.roster.escalation)}"
        else:
            who = "nobody on shift"
        self.outbox.post(
            channel,
            f"⚠ incident #{incident.number} ({where}): {one_line(incident.text)} — {who}; "
            f"!take {incident.number}",
        )

    # -- closing -------------------------------------------------------------------------

    def close(self, plan: Plan, now: datetime, reason: str) -> bool:
        """End firefighting once ever: summary, "closed" topic, leave; True if this call
        closed it.  A plan never opened is only marked closed (and returns False), also
        when it has no channel."""
        channel = firefight_channel(plan, self.core.config)
        was_active = plan.id in self._active
        self._active.discard(plan.id)
        self._finished.add(plan.id)
        store = self.core.store
        with store.transaction():  # the claims and the posts: kept together or not at all
            # Claiming the opening here means "never opened" can be told apart, and a plan
            # closed by hand before it was opened will not be opened afterwards.
            never_opened = store.claim_once(f"firefight-open:{plan.id}", now)
            first = store.claim_once(f"firefight-close:{plan.id}", now)
            if never_opened or not first:
                if was_active and channel is not None:
                    self._leave(plan, channel, reason)
            else:
                if channel is None:  # opened, then its plan was changed and lost its channel
                    raise NoFirefightChannelError(plan, self.core.config)
                store.record_deploy_event(
                    plan.id,
                    "firefight-closed",
                    now,
                    text=f"firefighting closed in {channel} ({reason})",
                )
                if not was_active:
                    self.outbox.join(channel)  # e.g. the window ended while the bot was down
                for line in self.summary(plan, now, reason):
                    self.outbox.post(channel, line)
                self.outbox.set_topic(channel, self.closed_topic(plan, now))
                self._leave(plan, channel, reason)
        if never_opened or not first:
            log.info(
                "firefighting for %s %s",
                plan.id,
                "never opened" if never_opened else "already closed",
            )
            return False
        self._topics.pop(plan.id, None)
        log.info("closed firefighting for %s in %s (%s)", plan.id, channel, reason)
        return True

    def _leave(self, plan: Plan, channel: str, reason: str) -> None:
        """Part ``channel`` unless another open deploy uses it too."""
        for other_id in self._active:
            other = self.core.book.get(other_id)
            theirs = firefight_channel(other, self.core.config) if other is not None else None
            if theirs is not None and theirs.casefold() == channel.casefold():
                return
        self.outbox.part(channel, f"{named(plan)} firefighting closed ({reason})")

    def summary(self, plan: Plan, now: datetime, reason: str) -> list[str]:
        """The closing lines: counts of incidents and pages, then the open incidents."""
        tz = self.core.config.timezone
        incidents = self.core.store.list_incidents(deploy_id=plan.id)
        still_open = [incident for incident in incidents if incident.open]
        fixed = len(incidents) - len(still_open)
        pages = self.core.store.list_pages(plan_id=plan.id)
        acked = sum(1 for page in pages if not page.pending)
        lines = [
            f"{named(plan)} firefighting closed ({reason}): "
            f"{plural(len(incidents), 'incident')} reported, {fixed} fixed, "
            f"{len(still_open)} open; {plural(len(pages), 'page')}, {acked} acknowledged"
        ]
        shown = still_open[:MAX_OPEN_LISTED]
        lines += [incident_line(incident, tz, now) for incident in shown]
        if len(still_open) > len(shown):
            lines.append(
                f"… and {len(still_open) - len(shown)} more open: !incidents {plan.service}"
            )
        if not incidents:
            lines.append("no incidents were reported during the window")
        return lines

    def closed_topic(self, plan: Plan, now: datetime) -> str:
        """``closed: pkgdb2 2.0 deploy ended 21:00 UTC — 3 incidents, 1 open: …``."""
        incidents = self.core.store.list_incidents(deploy_id=plan.id)
        still_open = sum(1 for incident in incidents if incident.open)
        ended = clock_text(min(plan.end, now), self.core.config.timezone, now)
        text = f"closed: {named(plan)} deploy ended {ended} — {plural(len(incidents), 'incident')}"
        if still_open:
            text += f", {still_open} open: !incidents {plan.service}"
        return shorten(text, TOPIC_LIMIT)

    # -- the sweep -----------------------------------------------------------------------

    def due_actions(self, now: datetime) -> DueActions:
        """Plans to open (running, not open in this process, not closed by it) and to
        close (ended less than :data:`CLOSE_LATE_LIMIT` ago, not closed by this
        process).  Opening an already opened plan only rejoins its channel."""
        plans = self.core.plans
        to_open = tuple(
            plan
            for plan in running(plans, now)
            if plan.id not in self._active
            and plan.id not in self._finished
            # closed by hand before its end (possibly by an earlier run of the bot)
            and not self.core.store.claimed(f"firefight-close:{plan.id}")
        )
        to_close = tuple(
            sorted(
                (
                    plan
                    for plan in plans
                    if plan.end <= now < plan.end + CLOSE_LATE_LIMIT
                    and plan.id not in self._finished
                ),
                key=lambda plan: (plan.end, plan.id),
            )
        )
        return DueActions(open=to_open, close=to_close)

    def sweep(self, now: datetime | None = None) -> SweepReport:
        """Everything due at ``now``: close ended deploys, open started ones (or rejoin
        after a restart), page people whose shift began (and again those whose automatic
        page could not be stored), escalate unacknowledged pages.

        Run it at start-up and periodically.  A failure with one plan is logged with
        its traceback and does not stop the others.
        """
        now = now or self.core.now()
        actions = self.due_actions(now)
        opened: list[str] = []
        rejoined: list[str] = []
        closed: list[str] = []
        shift_pages: list[Page] = []
        for plan in actions.close:  # before opening: a next deploy may use the channel
            try:
                if self.close(plan, now, reason="end of the deploy window"):
                    closed.append(plan.id)
            except Exception:
                log.exception("closing firefighting for %s failed", plan.id)
        for plan in actions.open:
            try:
                reason = f"scheduled at {clock_text(plan.when, self.core.config.timezone, now)}"
                (opened if self.open(plan, now, reason=reason) else rejoined).append(plan.id)
            except NoFirefightChannelError as error:  # the plan's problem, not the bot's
                if plan.id not in self._no_channel_told:
                    self._no_channel_told.add(plan.id)
                    log.warning("not opening firefighting: %s", error)
            except Exception:
                log.exception("opening firefighting for %s failed", plan.id)
        for plan in running(self.core.plans, now):
            if plan.id in self._active:
                try:
                    shift_pages += self.follow_shifts(plan, now)
                except Exception:
                    log.exception("paging the shifts of %s failed", plan.id)
        shift_pages += self.pager.retry_unpaged(now)  # it logs its own failures
        escalated: list[Page] = []
        try:
            escalated = self.pager.escalate_due(now)
        except Exception:
            log.exception("escalating pages failed")
        return SweepReport(
            opened=tuple(opened),
            rejoined=tuple(rejoined),
            closed=tuple(closed),
            shift_pages=tuple(shift_pages),
            escalated=tuple(escalated),
        )

    async def sweep_job(self) -> None:
        """The scheduled job.  A coroutine function, so that AsyncIOScheduler runs it in
        the event loop's thread (the store's connection and the outbox live there)."""
        self.sweep()

    def reschedule(self, scheduler: BaseScheduler, now: datetime | None = None) -> int:
        """Replace the date jobs that sweep at each future plan start and end (so opening
        and closing happen on time, between periodic sweeps); return how many."""
        now = now or self.core.now()
        remove_jobs(scheduler, JOB_PREFIX)
        count = 0
        for plan in self.core.plans:
            for edge, at in (("open", plan.when), ("close", plan.end)):
                if at <= now:
                    continue
                add_date_job(scheduler, self.sweep_job, at, f"{JOB_PREFIX}{plan.id}@{edge}")
                count += 1
        return count
