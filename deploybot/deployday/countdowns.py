"""Countdown posts (SPEC §4): sent once, never repeated, never silently lost.

:meth:`CountdownPoster.post_due` is the one step that sends: for every due post it
claims the key in the store's ledger and, only if the claim is new, hands the text to
the outbox, in the same transaction (through a
:class:`~deploybot.deployday.posts.StoredOutbox` the posts are stored with the claim).
Check and write are one SQLite statement, so a restart (or two overlapping sweeps)
cannot post twice; a post that came due while the bot was down is found by the sweep at
start-up and sent once, marked late.  Older passed countdowns are recorded as
skipped without posting (never "7 days to go" after "3 days to go").

The drift probe (issue 12) runs at every countdown of :data:`DRIFT_FROM` (1 day) or more
before a plan with ``probes``: the scheduled job first runs it (:meth:`probe_due`, through
:attr:`Core.drift <deploybot.core.Core.drift>`; the run is stored like any other), then
posts, and the post carries the ``⚠ UNDECLARED API BREAK`` findings of the plan's latest
run, which says when it probed.  :meth:`~CountdownPoster.post_due` alone (a sweep that
cannot wait for the network: at start-up, after a plan reload) leaves such a countdown to
:meth:`~CountdownPoster.sweep`, which the application starts beside it; without a runner
(:attr:`Core.drift <deploybot.core.Core.drift>` None) it posts it with the latest stored
run.

:meth:`CountdownPoster.reschedule` turns the future countdowns into APScheduler date
jobs, each of which runs a sweep; it replaces every earlier countdown job, so reloading
plans reschedules without duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from deploybot.drift.runs import latest_run
from deploybot.jobs import add_date_job, remove_jobs
from deploybot.plans.schedule import DuePost, due_countdowns, future_countdowns
from deploybot.texts import countdown_post

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from deploybot.core import Core
    from deploybot.outbox import Outbox

log = logging.getLogger(__name__)

JOB_PREFIX = "countdown:"
#: Countdowns this long or longer before a plan with probes run its drift probe first.
DRIFT_FROM = timedelta(days=1)


class CountdownPoster:
    def __init__(self, core: Core, outbox: Outbox) -> None:
        self.core = core
        self.outbox = outbox

    def _due(self, now: datetime) -> tuple[DuePost, ...]:
        config = self.core.config
        return due_countdowns(
            self.core.plans,
            config.countdowns,
            config.timezone,
            now,
            self.core.store.sent_countdown_keys(),
            grace=config.countdown_late_after,
        )

    @staticmethod
    def _probes(due: DuePost) -> bool:
        """Whether this countdown runs the plan's drift probe and carries its findings."""
        return bool(due.plan.probes) and due.countdown.offset >= DRIFT_FROM

    async def probe_due(self, now: datetime) -> int:
        """Run the drift probe of every plan whose due countdown carries its findings (one
        run per plan, all at once); a run that fails is logged, the countdown still goes
        out.  Returns how many runs were stored."""
        runner = self.core.drift
        if runner is None:
            return 0
        due = [due for due in self._due(now) if not due.superseded and self._probes(due)]
        plans = {item.plan.id: item.plan for item in due}
        results = await asyncio.gather(
            *(runner.run(plan) for plan in plans.values()), return_exceptions=True
        )
        for plan_id, result in zip(plans, results, strict=True):
            if isinstance(result, BaseException):
                log.error("drift probe of %s before its countdown failed", plan_id, exc_info=result)
        return sum(1 for result in results if not isinstance(result, BaseException))

    def post_due(self, now: datetime | None = None, *, probed: bool = False) -> list[str]:
        """Send every due countdown post once; return the keys posted.  A countdown that
        runs the drift probe is left to :meth:`sweep` when there is a runner, unless
        ``probed`` (the probes of the countdowns due at ``now`` have just run)."""
        now = now or self.core.now()
        config = self.core.config
        store = self.core.store
        posted: list[str] = []
        for due in self._due(now):
            if due.superseded:
                store.claim_countdown(due.key, now, skipped=True)
                continue
            drift: list[str] = []
            if self._probes(due):
                if self.core.drift is not None and not probed:
                    continue  # sweep() runs its probe first, then posts it
                run = latest_run(store, due.plan.id)
                drift = run.countdown_lines(config.timezone) if run is not None else []
            freeze = self.core.freeze_standing(due.plan).marker()
            lines = countdown_post(
                due.plan, due.countdown.offset, now, config.timezone, due.late, freeze, drift
            )
            with store.transaction():  # the claim and its posts: both kept, or neither
                if not store.claim_countdown(due.key, now, late=due.late):
                    continue  # another sweep got there first
                for channel in config.announce_channels:
                    for line in lines:
                        self.outbox.post(channel, line)
            log.info("countdown %s posted%s", due.key, " (late)" if due.late else "")
            posted.append(due.key)
        return posted

    async def sweep(self) -> None:
        """The scheduled job.  A coroutine function, so that AsyncIOScheduler runs it in the
        event loop's thread: a plain function would run in a worker thread, away from the
        store's SQLite connection (bound to its thread) and the outbox (not thread-safe).
        The drift probes of the countdowns due run first (:meth:`probe_due`), so that the
        posts carry what they found."""
        now = self.core.now()
        await self.probe_due(now)
        self.post_due(now, probed=True)

    def reschedule(self, scheduler: BaseScheduler, now: datetime | None = None) -> int:
        """Replace all countdown jobs by one date job per future countdown; return how many."""
        now = now or self.core.now()
        remove_jobs(scheduler, JOB_PREFIX)
        config = self.core.config
        future = future_countdowns(self.core.plans, config.countdowns, config.timezone, now)
        for countdown in future:
            add_date_job(scheduler, self.sweep, countdown.at, JOB_PREFIX + countdown.key)
        return len(future)
