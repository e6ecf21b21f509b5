"""Deploy day (SPEC §4): the firefighting channel, pages, acknowledgements, escalation.

One :class:`Firefight` per running bot (``Core.firefight``), holding the core and an
:class:`~deploybot.outbox.Outbox`.  Everything that must survive a restart is in the
store; the few in-memory sets only avoid redundant work within one process.  Time is
always passed in (``now``, aware).

Opening (:meth:`Firefight.open`) — "the deploy started"
    Called by the periodic :meth:`~Firefight.sweep` once ``when`` has come, by
    ``!firefight open ID``, by ``!broke`` during the window (if the sweep has not run
    yet), and later by bus events.  The ledger key ``firefight-open:ID``
    (:meth:`~deploybot.store.Store.claim_once`) makes it happen once ever: the first call
    joins the channel, sets the topic, posts the API breaks and pages everyone
    :func:`~deploybot.roster.pagees` names; every later call (e.g. after a restart during
    the window) only joins the channel again and refreshes the topic — nobody is paged
    twice.  The claim is made *before* anything is sent: a crash in between loses
    pages rather than repeating them (roster people are then still paged by the shift
    follow-up below).

Paging
    A page is one stored :class:`~deploybot.store.Page` (numbered) per person, a private
    message ``[page #N] …; reply !ack N``, and a highlight in the firefighting and admin
    channels; highlights of several people are coalesced into as few lines as fit.  Each
    deploy pages a person at most once automatically (ledger key
    ``firefight-page:ID:nick``): at opening, or — for someone whose shift starts later in
    the window — by the sweep when their shift begins ("shift follow-up"), which also
    refreshes the topic's "on shift" list.

Escalation (:meth:`Firefight.escalate_due`)
    A page not acknowledged ``page_escalate_after`` (config) after it was sent is marked
    escalated *first* (so a restart never escalates it twice), repeated once to its
    target, and sent as a new page to each nick of the plan's ``roster.escalation``,
    with a visible ``⚠ page #N to X not acknowledged after 10m — escalating to Y`` line
    in the firefighting channel (the admin channel when the deploy is not running or
    the page has no plan).  Pages due together for one plan are coalesced: one
    escalation page per escalation nick, one channel line.  **Escalation pages are
    stored with** ``escalate_at=None`` **and so never escalate further.**  Pages that
    came due while the bot was down for over :data:`ESCALATION_STALE_AFTER` are not
    escalated late but listed in one line in the admin channel.  Escalation is on time:
    once :meth:`~Firefight.schedule_escalations` has given the firefight a scheduler
    (at start-up, for the pages already pending), every page with an ``escalate_at``
    gets a date job then (:data:`ESCALATION_JOB_PREFIX`), rather than waiting up to a
    sweep interval; the periodic sweep still escalates whatever those jobs missed.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from deploybot.errors import DeploybotError
from deploybot.lines import one_line
from deploybot.plans import Plan
from deploybot.roster import Pagee, nick_key, on_shift, on_shift_nicks, pagees, teams_of
from deploybot.schedule import running
from deploybot.store import Incident, Page
from deploybot.texts import break_lines, clock_text, elapsed_text, incident_line

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from deploybot.config import Config
    from deploybot.core import Core
    from deploybot.outbox import Outbox

__all__ = [
    "BOT_SENDER",
    "CLOSE_LATE_LIMIT",
    "ESCALATION_JOB_PREFIX",
    "ESCALATION_STALE_AFTER",
    "JOB_PREFIX",
    "TOPIC_LIMIT",
    "DueActions",
    "Firefight",
    "NobodyOnShiftError",
    "SweepReport",
    "ack_text",
    "channel_of",
    "highlight_lines",
]

log = logging.getLogger(__name__)

#: ``sender_nick`` of the pages the bot sends by itself (opening, shifts, escalation).
BOT_SENDER = "deploybot"
#: The topic is kept to this many UTF-8 bytes (servers cut topics at ~300–390).
TOPIC_LIMIT = 300
#: Highlight lines are kept to this many UTF-8 bytes (the transport's line budget is
#: about 400 minus the target; this leaves room for long channel names).
HIGHLIGHT_BUDGET = 350
#: A plan whose window ended longer ago than this is not closed by the sweep.
CLOSE_LATE_LIMIT = timedelta(days=1)
#: A page that came due for escalation longer ago than this (the bot was down) is
#: reported in the admin channel instead of escalated.
ESCALATION_STALE_AFTER = timedelta(hours=1)
#: The close summary lists at most this many open incidents.
MAX_OPEN_LISTED = 5
#: APScheduler job ids of the sweeps at each plan's start and end.
JOB_PREFIX = "firefight:"
#: APScheduler job ids of the escalations at a page's ``escalate_at`` (one job per
#: second: pages due together are escalated together).  Not under :data:`JOB_PREFIX`,
#: which :meth:`Firefight.reschedule` replaces on every plan reload.
ESCALATION_JOB_PREFIX = "escalate:"


class NobodyOnShiftError(DeploybotError):
    """``!page TEAM`` when nobody of that team is on shift in a running deploy."""


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


def _named(plan: Plan) -> str:
    return f"{plan.service} {plan.release}".strip()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _fits(text: str, budget: int) -> bool:
    return len(text.encode("utf-8")) <= budget


def highlight_lines(nicks: Sequence[str], text: str, budget: int = HIGHLIGHT_BUDGET) -> list[str]:
    """``a b c: text`` lines naming every nick once, as few lines as fit ``budget`` bytes.

    >>> highlight_lines(["pingou", "dgilmore"], "deploy started")
    ['pingou dgilmore: deploy started']
    """
    lines: list[str] = []
    current: list[str] = []
    for nick in nicks:
        if current and not _fits(f"{' '.join([*current, nick])}: {text}", budget):
            lines.append(f"{' '.join(current)}: {text}")
            current = []
        current.append(nick)
    if current:
        lines.append(f"{' '.join(current)}: {text}")
    return lines


def ack_text(nick: str, pages: Sequence[Page]) -> str:
    """The reply to ``!ack``: which pages were acknowledged, or that none were pending."""
    if not pages:
        return f"{nick}: you have no pending pages"
    numbers = ", ".join(f"#{page.number}" for page in pages)
    word = "page" if len(pages) == 1 else "pages"
    return f"{nick}: acknowledged {word} {numbers}"


class Firefight:
    """Deploy-day actions for one bot; see the module documentation."""

    def __init__(self, core: Core, outbox: Outbox) -> None:
        self.core = core
        self.outbox = outbox
        # Plan ids this process opened or rejoined (their channel is joined).
        self._active: set[str] = set()
        # Plan ids this process closed (or found closed): not opened again by a sweep.
        self._finished: set[str] = set()
        # (plan id, nick key) already paged for this deploy: no ledger lookup per sweep.
        self._paged: set[tuple[str, str]] = set()
        # The last topic set per plan id.
        self._topics: dict[str, str] = {}
        # Where escalations are scheduled on time (see schedule_escalations); None: only
        # the periodic sweep escalates.
        self._scheduler: BaseScheduler | None = None

    # -- where ---------------------------------------------------------------------------

    def channel_for(self, plan: Plan) -> str:
        """The plan's ``roster.channel``, or the config's ``firefight_channel`` pattern."""
        return channel_of(plan, self.core.config)

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
        first = self.core.store.claim_once(f"firefight-open:{plan.id}", now)
        self.outbox.join(channel)
        self._active.add(plan.id)
        self._finished.discard(plan.id)
        if not first:
            log.info("firefighting for %s already open: rejoined %s (%s)", plan.id, channel, reason)
            self._refresh_topic(plan, channel, now, force=True)
            return False
        log.info("opening firefighting for %s in %s (%s)", plan.id, channel, reason)
        # People on the first shift are paged even when the deploy starts early.
        shift_time = max(now, plan.when)
        self._refresh_topic(plan, channel, shift_time, force=True)
        tz = self.core.config.timezone
        self.outbox.post(
            channel,
            f"{_named(plan)} deploy started ({reason}) — firefighting until "
            f"{clock_text(plan.end, tz, now)}; report problems: !broke {plan.service} what broke",
        )
        for line in break_lines(plan):
            self.outbox.post(channel, line)
        people = pagees(plan, self.core.store, shift_time)
        self._page_people(
            plan,
            channel,
            people,
            now,
            message=f"deploy of {_named(plan)} started: firefighting in {channel}",
            highlight=f"{_named(plan)} deploy started — join {channel}; !ack to acknowledge",
        )
        return True

    def _page_people(
        self,
        plan: Plan,
        channel: str,
        people: Iterable[Pagee],
        now: datetime,
        *,
        message: str,
        highlight: str,
    ) -> list[Page]:
        """Page each person once per deploy: stored page, private message, highlights."""
        store = self.core.store
        escalate_at = now + self.core.config.page_escalate_after
        pages: list[Page] = []
        for person in people:
            key = nick_key(person.nick)
            self._paged.add((plan.id, key))
            if not store.claim_once(f"firefight-page:{plan.id}:{key}", now):
                continue  # paged for this deploy already (e.g. by an earlier run)
            page = store.create_page(
                target_nick=person.nick,
                team=person.team,
                plan_id=plan.id,
                message=message,
                sender_nick=BOT_SENDER,
                now=now,
                escalate_at=escalate_at,
            )
            pages.append(page)
            self.outbox.post(
                person.nick,
                f"[page #{page.number}] {message} ({person.why}); reply !ack {page.number}",
            )
        if pages:
            self._escalate_at(escalate_at)
            for target in self._channels(channel, self.core.config.admin_channel):
                for line in highlight_lines([page.target_nick for page in pages], highlight):
                    self.outbox.post(target, line)
            log.info(
                "paged %s for %s: %s",
                len(pages),
                plan.id,
                ", ".join(f"#{page.number} {page.target_nick}" for page in pages),
            )
        return pages

    @staticmethod
    def _channels(*channels: str) -> list[str]:
        """The channels, each once (ignoring case)."""
        seen: dict[str, str] = {}
        for channel in channels:
            seen.setdefault(channel.casefold(), channel)
        return list(seen.values())

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
        parts = [f"{plan.id}: {_named(plan)} deploy {start:%H:%M}–{end_text} {start.tzname()}"]
        if plan.api_breaks:
            parts.append(f"⚠ {_plural(len(plan.api_breaks), 'API break')}: !breaks {plan.id}")
        parts.append(f"report: !broke {plan.service} what broke")
        head = " | ".join(parts)
        nicks = list(on_shift_nicks(plan, now))
        if not nicks:
            return _cut(f"{head} | on shift: nobody", TOPIC_LIMIT)
        for shown in range(len(nicks), 0, -1):
            more = len(nicks) - shown
            tail = f" +{more} more: !oncall" if more else ""
            text = f"{head} | on shift: {' '.join(nicks[:shown])}{tail}"
            if _fits(text, TOPIC_LIMIT):
                return text
        return _cut(f"{head} | on shift: !oncall", TOPIC_LIMIT)

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
            if (plan.id, nick_key(person.nick)) not in self._paged
        ]
        starts = f"your shift on the {_named(plan)} deploy starts now"
        pages = self._page_people(
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

    # -- pages by hand -------------------------------------------------------------------

    def page(
        self,
        sender_nick: str,
        who: str,
        message: str,
        now: datetime,
        plans_running: Iterable[Plan],
    ) -> list[Page]:
        """``!page WHO message``: page a nick, or the on-shift members of a team.

        ``who`` is a team when some plan in force names that team (any case; a team
        wins over a nick of the same name): its members on shift at ``now`` in
        ``plans_running`` are paged, or :class:`NobodyOnShiftError` if there are none.
        Otherwise ``who`` is a nick.  Each person gets a stored page (escalated like
        any other), a private message ``[page #N from alice] message — reply !ack N``,
        and a line goes to the firefighting channel of each running deploy (the admin
        channel when none is running).
        """
        live = tuple(plans_running)
        message = one_line(message)
        team = next(
            (name for name in teams_of(self.core.plans) if name.casefold() == who.casefold()),
            None,
        )
        targets: list[tuple[str, Plan | None]] = []
        if team is not None:
            seen: set[str] = set()
            for plan in live:
                for person in on_shift(plan, now):
                    key = nick_key(person.nick)
                    if person.team.casefold() == team.casefold() and key not in seen:
                        seen.add(key)
                        targets.append((person.nick, plan))
            if not targets:
                why = "" if live else " (no deploy is running)"
                raise NobodyOnShiftError(
                    f"nobody of team {team} is on shift now{why}; page someone by nick: "
                    "!page NICK message"
                )
        else:
            targets.append((who, _plan_of(who, live)))
        store = self.core.store
        escalate_at = now + self.core.config.page_escalate_after
        pages: list[Page] = []
        for nick, target_plan in targets:
            page = store.create_page(
                target_nick=nick,
                team=team,
                plan_id=target_plan.id if target_plan is not None else None,
                message=message,
                sender_nick=sender_nick,
                now=now,
                escalate_at=escalate_at,
            )
            pages.append(page)
            self.outbox.post(
                nick,
                f"[page #{page.number} from {sender_nick}] {message} — reply !ack {page.number}",
            )
        self._escalate_at(escalate_at)
        channels = self._channels(*(self.channel_for(plan) for plan in live)) or [
            self.core.config.admin_channel
        ]
        if team is None:
            (page,) = pages
            text = f"page #{page.number} from {sender_nick}: {message} — !ack {page.number}"
        else:
            numbers = " ".join(f"#{page.number}" for page in pages)
            text = f"{team} paged by {sender_nick} ({numbers}): {message} — !ack to acknowledge"
        for channel in channels:
            for line in highlight_lines([page.target_nick for page in pages], text):
                self.outbox.post(channel, line)
        log.info(
            "%s paged %s: %s",
            sender_nick,
            who,
            ", ".join(f"#{p.number} {p.target_nick}" for p in pages),
        )
        return pages

    def ack(
        self, nick: str, account: str | None, number: int | None, now: datetime
    ) -> tuple[Page, ...]:
        """``!ack [N]``: acknowledge ``nick``'s pending pages (all, or page N).

        Store errors (no such page, someone else's, already acknowledged) propagate;
        their text is for the user.  See :func:`ack_text` for the reply.
        """
        return self.core.store.ack_pages(nick, now, number, account=account)

    # -- escalation ----------------------------------------------------------------------

    def escalate_due(self, now: datetime) -> list[Page]:
        """Escalate every page unacknowledged past its ``escalate_at``; return those pages.

        Each is marked escalated before anything is sent, so it is escalated once ever.
        A page that came due more than :data:`ESCALATION_STALE_AFTER` ago (the bot was
        down) is not escalated hours late: it is marked escalated and listed in one line
        in the admin channel instead (and not returned).
        """
        store = self.core.store
        groups: dict[str | None, list[Page]] = {}
        stale: list[Page] = []
        for page in store.pending_escalations(now):
            if not store.mark_escalated(page.number, now):
                continue
            if page.escalate_at is not None and now - page.escalate_at > ESCALATION_STALE_AFTER:
                stale.append(page)
            else:
                groups.setdefault(page.plan_id, []).append(page)
        escalated: list[Page] = []
        for plan_id, pages in groups.items():
            plan = self.core.book.get(plan_id) if plan_id is not None else None
            self._escalate(plan, pages, now)
            escalated += pages
        if stale:
            about = ", ".join(f"#{page.number} to {page.target_nick}" for page in stale)
            line = _cut(
                f"⚠ {_plural(len(stale), 'page')} went unacknowledged while the bot was offline "
                f"and {'was' if len(stale) == 1 else 'were'} not escalated: {about}",
                HIGHLIGHT_BUDGET,
            )
            self.outbox.post(self.core.config.admin_channel, line)
            log.warning("%s", line)
        return escalated

    def schedule_escalations(self, scheduler: BaseScheduler, now: datetime | None = None) -> int:
        """Escalate on time from now on: a date job at the ``escalate_at`` of each page
        pending now (e.g. sent before a restart), and of each page sent later; return how
        many jobs were added for the pending pages."""
        self._scheduler = scheduler
        now = now or self.core.now()
        due = {
            page.escalate_at
            for page in self.core.store.list_pages(pending=True)
            if page.escalate_at is not None and page.escalated_at is None and page.escalate_at > now
        }
        for at in due:
            self._escalate_at(at)
        return len(due)

    def _escalate_at(self, at: datetime) -> None:
        """A date job that escalates what is due at ``at`` (no-op without a scheduler)."""
        if self._scheduler is None:
            return
        # The store keeps whole seconds: one second later, the page is due even if the
        # job fires a little early.
        at = at.replace(microsecond=0) + timedelta(seconds=1)
        self._scheduler.add_job(
            self.escalate_job,
            trigger="date",
            run_date=at,
            id=f"{ESCALATION_JOB_PREFIX}{at.isoformat()}",
            replace_existing=True,
            misfire_grace_time=None,  # run late rather than never
            coalesce=True,
        )

    async def escalate_job(self) -> None:
        """The scheduled escalation (a coroutine function: it runs in the loop's thread)."""
        try:
            self.escalate_due(self.core.now())
        except Exception:
            log.exception("escalating pages failed")

    def _escalate(self, plan: Plan | None, pages: list[Page], now: datetime) -> None:
        store = self.core.store
        for page in pages:
            waited = elapsed_text(now - page.created_at)
            self.outbox.post(
                page.target_nick,
                f"[page #{page.number}, repeated] {page.message} — not acknowledged after "
                f"{waited}; reply !ack {page.number}",
            )
        paged = {nick_key(page.target_nick) for page in pages}
        escalation = [] if plan is None else list(plan.roster.escalation)
        targets = [nick for nick in escalation if nick_key(nick) not in paged]
        waited = elapsed_text(now - min(page.created_at for page in pages))
        about = ", ".join(f"#{page.number} to {page.target_nick}" for page in pages)
        word = "page" if len(pages) == 1 else "pages"
        messages = {page.message for page in pages}
        what = f": {next(iter(messages))}" if len(messages) == 1 else ""
        incidents = {page.incident for page in pages}
        incident = next(iter(incidents)) if len(incidents) == 1 else None
        for nick in targets:
            message = f"{word} {about} not acknowledged after {waited}{what}"
            escalation_page = store.create_page(
                target_nick=nick,
                team=None,
                plan_id=plan.id if plan is not None else None,
                message=message,
                sender_nick=BOT_SENDER,
                now=now,
                escalate_at=None,  # escalation pages never escalate further
                incident=incident,
            )
            self.outbox.post(
                nick,
                f"[page #{escalation_page.number}] {message} — reply !ack {escalation_page.number}",
            )
        if targets:
            outcome = f"escalating to {' '.join(targets)}"
        elif escalation:
            outcome = "repeated (the escalation list is the people paged)"
        else:
            outcome = "repeated; no escalation list (roster.escalation) to page"
        line = f"⚠ {word} {about} not acknowledged after {waited} — {outcome}"
        if plan is not None and plan.running_at(now):
            channel = self.channel_for(plan)
        else:
            channel = self.core.config.admin_channel
        self.outbox.post(channel, line)
        log.warning("%s", line)

    # -- closing -------------------------------------------------------------------------

    def close(self, plan: Plan, now: datetime, reason: str) -> bool:
        """End firefighting once ever: summary, "closed" topic, leave; True if this call
        closed it.  A plan never opened is only marked closed (and returns False)."""
        channel = self.channel_for(plan)
        was_active = plan.id in self._active
        self._active.discard(plan.id)
        self._finished.add(plan.id)
        store = self.core.store
        # Claiming the opening here means "never opened" can be told apart, and a plan
        # closed by hand before it was opened will not be opened afterwards.
        never_opened = store.claim_once(f"firefight-open:{plan.id}", now)
        first = store.claim_once(f"firefight-close:{plan.id}", now)
        if never_opened or not first:
            if was_active:
                self._leave(plan, channel, reason)
            log.info(
                "firefighting for %s %s",
                plan.id,
                "never opened" if never_opened else "already closed",
            )
            return False
        if not was_active:
            self.outbox.join(channel)  # e.g. the window ended while the bot was down
        for line in self.summary(plan, now, reason):
            self.outbox.post(channel, line)
        self.outbox.set_topic(channel, self.closed_topic(plan, now))
        self._topics.pop(plan.id, None)
        self._leave(plan, channel, reason)
        log.info("closed firefighting for %s in %s (%s)", plan.id, channel, reason)
        return True

    def _leave(self, plan: Plan, channel: str, reason: str) -> None:
        """Part ``channel`` unless another open deploy uses it too."""
        for other_id in self._active:
            other = self.core.book.get(other_id)
            if other is not None and self.channel_for(other).casefold() == channel.casefold():
                return
        self.outbox.part(channel, f"{_named(plan)} firefighting closed ({reason})")

    def summary(self, plan: Plan, now: datetime, reason: str) -> list[str]:
        """The closing lines: counts of incidents and pages, then the open incidents."""
        tz = self.core.config.timezone
        incidents = self.core.store.list_incidents(deploy_id=plan.id)
        still_open = [incident for incident in incidents if incident.open]
        fixed = len(incidents) - len(still_open)
        pages = self.core.store.list_pages(plan_id=plan.id)
        acked = sum(1 for page in pages if not page.pending)
        lines = [
            f"{_named(plan)} firefighting closed ({reason}): "
            f"{_plural(len(incidents), 'incident')} reported, {fixed} fixed, "
            f"{len(still_open)} open; {_plural(len(pages), 'page')}, {acked} acknowledged"
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
        text = (
            f"closed: {_named(plan)} deploy ended {ended} — {_plural(len(incidents), 'incident')}"
        )
        if still_open:
            text += f", {still_open} open: !incidents {plan.service}"
        return _cut(text, TOPIC_LIMIT)

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
        after a restart), page people whose shift began, escalate unacknowledged pages.

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
            except Exception:
                log.exception("opening firefighting for %s failed", plan.id)
        for plan in running(self.core.plans, now):
            if plan.id in self._active:
                try:
                    shift_pages += self.follow_shifts(plan, now)
                except Exception:
                    log.exception("paging the shifts of %s failed", plan.id)
        escalated: list[Page] = []
        try:
            escalated = self.escalate_due(now)
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
        for job in scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX):
                job.remove()
        count = 0
        for plan in self.core.plans:
            for edge, at in (("open", plan.when), ("close", plan.end)):
                if at <= now:
                    continue
                scheduler.add_job(
                    self.sweep_job,
                    trigger="date",
                    run_date=at,
                    id=f"{JOB_PREFIX}{plan.id}@{edge}",
                    replace_existing=True,
                    misfire_grace_time=None,  # run late rather than never
                    coalesce=True,
                )
                count += 1
        return count


def channel_of(plan: Plan, config: Config) -> str:
    """The firefighting channel of ``plan``: its ``roster.channel``, or the config's
    ``firefight_channel`` pattern (:class:`ValueError` if that makes no channel name)."""
    return plan.roster.channel or config.firefight_channel_for(plan.service, plan.id)


def _plan_of(nick: str, live: Sequence[Plan]) -> Plan | None:
    """The running deploy a page to ``nick`` belongs to: the first whose roster,
    escalation list, owners or consumer contacts name them, else the first running."""
    key = nick_key(nick)
    for plan in live:
        named = (
            *(person for shift in plan.roster.shifts for person in shift.people),
            *plan.roster.escalation,
            *plan.owners,
            *(consumer.contact for consumer in plan.consumers),
        )
        if any(nick_key(other) == key for other in named):
            return plan
    return live[0] if live else None


def _cut(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` UTF-8 bytes on a character boundary, with ``…``."""
    if _fits(text, budget):
        return text
    raw = text.encode("utf-8")[: budget - len("…".encode())]
    return raw.decode("utf-8", errors="ignore").rstrip() + "…"
