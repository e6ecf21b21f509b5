"""Deploy day (SPEC §4): pages, acknowledgements and escalation.

One :class:`Pager` per running bot (``DeployDay.pager``, shared with the
:class:`~deploybot.deployday.firefight.Firefight`), holding the core and an
:class:`~deploybot.outbox.Outbox`; a plan's firefighting channel is
:func:`~deploybot.deployday.roster.firefight_channel` (the admin channel stands in for a
plan without one).  Everything that must survive a restart is in the store; the
in-memory set of who was paged only avoids a ledger lookup per sweep.  Time is always
passed in (``now``, aware).

Paging
    A page is one stored :class:`~deploybot.store.Page` (numbered) per person, a private
    message ``[page #N] …; reply !ack N``, and a highlight in the firefighting and admin
    channels; highlights of several people are coalesced into as few lines as fit.  Each
    deploy pages a person at most once automatically (ledger key
    ``firefight-page:ID:nick``, claimed in the page's own transaction, which also stores
    its message when the outbox is a :class:`~deploybot.deployday.posts.StoredOutbox`,
    :meth:`Pager.page_people`): at opening, or — for someone
    whose shift starts later in the window — by the sweep when their shift begins
    ("shift follow-up", :meth:`~deploybot.deployday.firefight.Firefight.follow_shifts`), which also
    refreshes the topic's "on shift" list.  ``!page`` (:meth:`Pager.page`) pages a nick
    or the on-shift members of a team by hand; ``!ack`` acknowledges (in the store,
    :meth:`~deploybot.store.Store.ack_pages`; reply :func:`ack_text`), which stops escalation.

Who may acknowledge
    Each page stores the services account its target is logged in to *when it is
    sent*, if the transport knows it (:class:`~deploybot.outbox.AccountLookup`; on IRC
    the bot knows the accounts of the nicks it shares a channel with, from
    extended-join, account-notify, WHOX and message tags).  Such a page may be
    acknowledged only by someone logged in to that account (``!ack N`` with any nick;
    a bare ``!ack`` takes the pages to one's nick), or by an admin: a nick alone does
    not do.  When the account was
    not known (the target was not in any of the bot's channels, or not logged in, or
    the server has no services), the page may be acknowledged by whoever uses the
    target's nick, as before; the acknowledger's nick, mask and account are stored with
    the page either way, so that an ack can be checked afterwards.

Escalation (:meth:`Pager.escalate_due`)
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
    once :meth:`~Pager.schedule_escalations` has given the pager a scheduler (at
    start-up, for the pages already pending), every page with an ``escalate_at`` gets a
    date job then (:data:`ESCALATION_JOB_PREFIX`), rather than waiting up to a sweep
    interval; the firefight's periodic sweep still escalates whatever those jobs missed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from deploybot.deployday.busmessages import page_escalated
from deploybot.deployday.roster import (
    Pagee,
    firefight_channel,
    nick_key,
    team_members_on_shift,
    team_named,
)
from deploybot.durations import plural
from deploybot.errors import DeploybotError
from deploybot.jobs import add_date_job
from deploybot.lines import fits, one_line, shorten
from deploybot.plans.model import Plan
from deploybot.store import Page
from deploybot.texts import elapsed_text

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from deploybot.core import Core
    from deploybot.outbox import AccountLookup, Outbox

__all__ = [
    "BOT_SENDER",
    "ESCALATION_JOB_PREFIX",
    "ESCALATION_STALE_AFTER",
    "NobodyOnShiftError",
    "Pager",
    "Target",
    "ack_text",
    "highlight_lines",
    "page_line",
    "page_targets",
]

log = logging.getLogger(__name__)

#: ``sender_nick`` of the pages the bot sends by itself (opening, shifts, escalation).
BOT_SENDER = "deploybot"
#: Highlight lines are kept to this many UTF-8 bytes (the transport's line budget is
#: about 400 minus the target; this leaves room for long channel names).
HIGHLIGHT_BUDGET = 350
#: A page that came due for escalation longer ago than this (the bot was down) is
#: reported in the admin channel instead of escalated.
ESCALATION_STALE_AFTER = timedelta(hours=1)
#: APScheduler job ids of the escalations at a page's ``escalate_at`` (one job per
#: second: pages due together are escalated together).  Not under
#: :data:`~deploybot.deployday.firefight.JOB_PREFIX`, which
#: :meth:`~deploybot.deployday.firefight.Firefight.reschedule` replaces on every plan reload.
ESCALATION_JOB_PREFIX = "escalate:"


class NobodyOnShiftError(DeploybotError):
    """``!page TEAM`` when nobody of that team is on shift in a running deploy."""


def highlight_lines(nicks: Sequence[str], text: str, budget: int = HIGHLIGHT_BUDGET) -> list[str]:
    """``a b c: text`` lines naming every nick once, as few lines as fit ``budget`` bytes.

    >>> highlight_lines(["pingou", "dgilmore"], "deploy started")
    ['pingou dgilmore: deploy started']
    """
    lines: list[str] = []
    current: list[str] = []
    for nick in nicks:
        if current and not fits(f"{' '.join([*current, nick])}: {text}", budget):
            lines.append(f"{' '.join(current)}: {text}")
            current = []
        current.append(nick)
    if current:
        lines.append(f"{' '.join(current)}: {text}")
    return lines


@dataclass(frozen=True)
class Target:
    """Someone to page: their ``team`` (stored with the page) and the deploy the page
    belongs to (if any)."""

    nick: str
    team: str | None
    plan: Plan | None


def page_targets(who: str, team: str | None, live: Sequence[Plan], now: datetime) -> list[Target]:
    """Whom ``!page WHO`` pages among the running deploys ``live``.

    A ``team`` (the one ``who`` names, or None): its members on shift at ``now``
    (:func:`~deploybot.deployday.roster.team_members_on_shift`), each once, with the first
    deploy they are on shift in; :class:`NobodyOnShiftError` when there are none.
    Otherwise the nick ``who``, with the deploy whose roster, escalation list, owners or
    consumer contacts name them (else the first running, else none).
    """
    if team is None:
        return [Target(who, None, _plan_of(who, live))]
    targets: dict[str, Target] = {}
    for plan in live:
        for nick in team_members_on_shift((plan,), team, now):
            targets.setdefault(nick_key(nick), Target(nick, team, plan))
    if not targets:
        why = "" if live else " (no deploy is running)"
        raise NobodyOnShiftError(
            f"nobody of team {team} is on shift now{why}; page someone by nick: !page NICK message"
        )
    return list(targets.values())


def page_line(sender_nick: str, team: str | None, message: str, pages: Sequence[Page]) -> str:
    """The channel line of a ``!page`` (after the highlighted nicks)::

    page #4 from alice: compose broken — !ack 4
    rel-eng paged by alice (#5 #6): please look — !ack to acknowledge
    """
    if team is None:
        (page,) = pages
        return f"page #{page.number} from {sender_nick}: {message} — !ack {page.number}"
    numbers = " ".join(f"#{page.number}" for page in pages)
    return f"{team} paged by {sender_nick} ({numbers}): {message} — !ack to acknowledge"


def ack_text(nick: str, pages: Sequence[Page], others: Sequence[Page] = ()) -> str:
    """The reply to ``!ack``: which pages were acknowledged, or that none were pending;
    ``others``: pages to this nick still pending because they are for a services account
    the sender is not logged in to.

    >>> ack_text("pingou", [], [Page(5, "pingou", None, None, None, "m", "deploybot",
    ...     datetime(2026, 1, 1), None, None, None, None, "pingou")])
    'pingou: page #5 is for pingou logged in as pingou; log in to services to acknowledge it'
    """
    if not pages and not others:
        return f"{nick}: you have no pending pages"
    parts: list[str] = []
    if pages:
        numbers = ", ".join(f"#{page.number}" for page in pages)
        parts.append(f"acknowledged {'page' if len(pages) == 1 else 'pages'} {numbers}")
    parts += [
        f"page #{page.number} is for {page.target_nick} logged in as {page.target_account}"
        for page in others
    ]
    tail = "; log in to services to acknowledge it" if others else ""
    return f"{nick}: {'; '.join(parts)}{tail}"


@dataclass(frozen=True)
class _Unpaged:
    """An automatic page that could not be stored, to try again (:meth:`Pager.retry_unpaged`)."""

    plan: Plan
    channel: str
    person: Pagee
    message: str
    highlight: str


class Pager:
    """Pages, acknowledgements and escalation for one bot; see the module documentation."""

    def __init__(self, core: Core, outbox: Outbox, accounts: AccountLookup | None = None) -> None:
        self.core = core
        self.outbox = outbox
        # Where a target's services account is looked up when they are paged (None: never
        # known, so every page may be acknowledged by its nick).
        self._accounts = accounts
        # (plan id, nick key) already paged for this deploy: no ledger lookup per sweep.
        self._paged: set[tuple[str, str]] = set()
        # Automatic pages that could not be stored, by (plan id, nick key): retried.
        self._unpaged: dict[tuple[str, str], _Unpaged] = {}
        # Where escalations are scheduled on time (see schedule_escalations); None: only
        # the periodic sweep escalates.
        self._scheduler: BaseScheduler | None = None

    def account_of(self, nick: str) -> str | None:
        """The services account ``nick`` is logged in to, if the transport knows it now."""
        return None if self._accounts is None else self._accounts.account_of(nick)

    # -- pages of a deploy ---------------------------------------------------------------

    def has_paged(self, plan: Plan, nick: str) -> bool:
        """Whether this process has paged ``nick`` for ``plan`` (or found them paged)."""
        return (plan.id, nick_key(nick)) in self._paged

    def page_people(
        self,
        plan: Plan,
        channel: str,
        people: Iterable[Pagee],
        now: datetime,
        *,
        message: str,
        highlight: str,
    ) -> list[Page]:
        """Page each person once per deploy: stored page, private message, highlights.

        The once-per-deploy claim and the page are one transaction
        (:meth:`~deploybot.store.Store.create_page_once`): when a page cannot be stored (a
        database error), the claim is not used up either; the error is logged, the others
        are still paged, and :meth:`retry_unpaged` (each sweep) tries that person again
        while the deploy runs.
        """
        escalate_at = now + self.core.config.page_escalate_after
        pages: list[Page] = []
        store = self.core.store
        with store.transaction():  # the caller's, if it has one (opening firefighting)
            for person in people:
                key = (plan.id, nick_key(person.nick))
                try:
                    with store.transaction():  # this page and its message, or neither
                        page = store.create_page_once(
                            f"firefight-page:{plan.id}:{key[1]}",
                            target_nick=person.nick,
                            team=person.team,
                            plan_id=plan.id,
                            message=message,
                            sender_nick=BOT_SENDER,
                            now=now,
                            escalate_at=escalate_at,
                            target_account=self.account_of(person.nick),
                        )
                        if page is not None:
                            self.outbox.post(
                                person.nick,
                                f"[page #{page.number}] {message} ({person.why});"
                                f" reply !ack {page.number}",
                            )
                except Exception:
                    log.exception(
                        "paging %s for %s failed; trying again later", person.nick, plan.id
                    )
                    self._unpaged[key] = _Unpaged(plan, channel, person, message, highlight)
                    continue
                store.after_commit(functools.partial(self._paged_now, key))
                if page is not None:  # else paged already (e.g. by an earlier run)
                    pages.append(page)
            if pages:
                channels = _distinct(channel, self.core.config.admin_channel)
                self._highlight(channels, pages, highlight)
        if pages:
            self._escalate_at(escalate_at)
            log.info("paged %s for %s: %s", len(pages), plan.id, _pages_text(pages))
        return pages

    def _paged_now(self, key: tuple[str, str]) -> None:
        """The page for ``key`` (plan id, nick key) is stored: not to be tried again."""
        self._paged.add(key)
        self._unpaged.pop(key, None)

    def retry_unpaged(self, now: datetime) -> list[Page]:
        """Page the people whose automatic page could not be stored (:meth:`page_people`),
        while their deploy runs; return the pages sent."""
        groups: dict[tuple[str, str, str, str], list[_Unpaged]] = {}
        for key, item in list(self._unpaged.items()):
            if item.plan.running_at(now):
                group = (item.plan.id, item.channel, item.message, item.highlight)
                groups.setdefault(group, []).append(item)
            else:
                del self._unpaged[key]
        pages: list[Page] = []
        for (_, channel, message, highlight), items in groups.items():
            people = [item.person for item in items]
            pages += self.page_people(
                items[0].plan, channel, people, now, message=message, highlight=highlight
            )
        return pages

    # -- pages by hand -------------------------------------------------------------------

    def page(
        self,
        sender_nick: str,
        who: str,
        message: str,
        now: datetime,
        plans_running: Iterable[Plan],
        repeats: list[Page] | None = None,
    ) -> list[Page]:
        """``!page WHO message``: page a nick, or the on-shift members of a team.

        Identical pages are not sent twice: a target who has a pending (unacknowledged)
        page with the same text is skipped, that page appended to ``repeats`` and the
        skip logged.

        ``who`` is a team when some plan in force names that team
        (:func:`~deploybot.deployday.roster.team_named`; a team wins over a nick of the
        same name), and the people paged are :func:`page_targets`.  Each gets a stored
        page (escalated like any other) and a private message
        ``[page #N from alice] message — reply !ack N``; a line (:func:`page_line`) goes to
        the firefighting channel of each running deploy (the admin channel when none is
        running, or none of them has a channel).
        """
        live = tuple(plans_running)
        message = one_line(message)
        team = team_named(self.core.plans, who)
        targets = []
        for target in page_targets(who, team, live, now):
            same = self._pending_same(target.nick, message)
            if same is None:
                targets.append(target)
                continue
            log.info(
                "not paging %s again for %s: page #%s with that text is pending",
                target.nick,
                sender_nick,
                same.number,
            )
            if repeats is not None:
                repeats.append(same)
        if not targets:
            return []
        config = self.core.config
        with self.core.store.transaction():  # the pages and their posts, or none of them
            pages = self._record(targets, message, sender_nick, now)
            for page in pages:
                self.outbox.post(
                    page.target_nick,
                    f"[page #{page.number} from {sender_nick}] {message}"
                    f" — reply !ack {page.number}",
                )
            channels = _distinct(
                *(channel for plan in live if (channel := firefight_channel(plan, config)))
            ) or [config.admin_channel]
            self._highlight(channels, pages, page_line(sender_nick, team, message, pages))
        log.info("%s paged %s: %s", sender_nick, who, _pages_text(pages))
        return pages

    # -- recording and highlighting -----------------------------------------------------

    def _pending_same(self, nick: str, message: str) -> Page | None:
        """A pending page to ``nick`` (as the server compares nicks) saying ``message``."""
        key = nick_key(nick)
        for page in self.core.store.list_pages(pending=True):
            if page.message == message and nick_key(page.target_nick) == key:
                return page
        return None

    def _record(
        self, targets: Sequence[Target], message: str, sender_nick: str, now: datetime
    ) -> list[Page]:
        """Store a page per target, escalating after ``page_escalate_after`` (on time)."""
        escalate_at = now + self.core.config.page_escalate_after
        pages = [
            self.core.store.create_page(
                target_nick=target.nick,
                team=target.team,
                plan_id=target.plan.id if target.plan is not None else None,
                message=message,
                sender_nick=sender_nick,
                now=now,
                escalate_at=escalate_at,
                target_account=self.account_of(target.nick),
            )
            for target in targets
        ]
        if pages:
            self._escalate_at(escalate_at)
        return pages

    def _highlight(self, channels: Iterable[str], pages: Sequence[Page], text: str) -> None:
        """``nick nick: text`` in each channel, naming everyone paged (:func:`highlight_lines`)."""
        nicks = [page.target_nick for page in pages]
        for channel in channels:
            for line in highlight_lines(nicks, text):
                self.outbox.post(channel, line)

    # -- escalation ----------------------------------------------------------------------

    def escalate_due(self, now: datetime) -> list[Page]:
        """Escalate every page unacknowledged past its ``escalate_at``; return those pages.

        Each is marked escalated before anything is sent, so it is escalated once ever.
        A page that came due more than :data:`ESCALATION_STALE_AFTER` ago (the bot was
        down) is not escalated hours late: it is marked escalated and listed in one line
        in the admin channel instead (and not returned).
        """
        with self.core.store.transaction():  # the marks and the posts: kept together
            return self._escalate_due(now)

    def _escalate_due(self, now: datetime) -> list[Page]:
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
            line = shorten(
                f"⚠ {plural(len(stale), 'page')} went unacknowledged while the bot was offline "
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
        add_date_job(
            self._scheduler, self.escalate_job, at, f"{ESCALATION_JOB_PREFIX}{at.isoformat()}"
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
                target_account=self.account_of(nick),
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
        for page in pages:  # on the bus too (when the bot publishes), in this transaction
            self.core.publish(page_escalated(page, now=now, escalated_to=targets))
        line = f"⚠ {word} {about} not acknowledged after {waited} — {outcome}"
        channel = None
        if plan is not None and plan.running_at(now):
            channel = firefight_channel(plan, self.core.config)
        self.outbox.post(channel or self.core.config.admin_channel, line)
        log.warning("%s", line)


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


def _pages_text(pages: Iterable[Page]) -> str:
    """``#3 pingou, #4 dgilmore`` (for the log)."""
    return ", ".join(f"#{page.number} {page.target_nick}" for page in pages)


def _distinct(*channels: str) -> list[str]:
    """The channels, each once (ignoring case)."""
    seen: dict[str, str] = {}
    for channel in channels:
        seen.setdefault(channel.casefold(), channel)
    return list(seen.values())
