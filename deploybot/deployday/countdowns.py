"""Countdown posts (SPEC §4): sent once, never repeated, never silently lost.

:meth:`CountdownPoster.post_due` is the one step that sends: for every due post it
claims the key in the store's ledger and, only if the claim is new, hands the text to
the outbox, in the same transaction (through a
:class:`~deploybot.deployday.posts.StoredOutbox` the posts are stored with the claim).
Check and write are one SQLite statement, so a restart (or two overlapping sweeps)
cannot post twice; a post that came due while the bot was down is found by the sweep at
start-up and sent once, marked late.  Older passed countdowns are recorded as
skipped without posting (never "7 days to go" after "3 days to go").

:meth:`CountdownPoster.reschedule` turns the future countdowns into APScheduler date
jobs, each of which runs a sweep; it replaces every earlier countdown job, so reloading
plans reschedules without duplicates.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from deploybot.jobs import add_date_job, remove_jobs
from deploybot.plans.schedule import due_countdowns, future_countdowns
from deploybot.texts import countdown_post

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from deploybot.core import Core
    from deploybot.outbox import Outbox

log = logging.getLogger(__name__)

JOB_PREFIX = "countdown:"


class CountdownPoster:
    def __init__(self, core: Core, outbox: Outbox) -> None:
        self.core = core
        self.outbox = outbox

    def post_due(self, now: datetime | None = None) -> list[str]:
        """Send every due countdown post once; return the keys posted."""
        now = now or self.core.now()
        config = self.core.config
        store = self.core.store
        posted: list[str] = []
        for due in due_countdowns(
            self.core.plans,
            config.countdowns,
            config.timezone,
            now,
            store.sent_countdown_keys(),
            grace=config.countdown_late_after,
        ):
            if due.superseded:
                store.claim_countdown(due.key, now, skipped=True)
                continue
            freeze = self.core.freeze_standing(due.plan).marker()
            lines = countdown_post(
                due.plan, due.countdown.offset, now, config.timezone, due.late, freeze
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

    async def _post_due_job(self) -> None:
        """The scheduled job.  A coroutine function, so that AsyncIOScheduler runs it in the
        event loop's thread: a plain function would run in a worker thread, away from the
        store's SQLite connection (bound to its thread) and the outbox (not thread-safe)."""
        self.post_due()

    def reschedule(self, scheduler: BaseScheduler, now: datetime | None = None) -> int:
        """Replace all countdown jobs by one date job per future countdown; return how many."""
        now = now or self.core.now()
        remove_jobs(scheduler, JOB_PREFIX)
        config = self.core.config
        future = future_countdowns(self.core.plans, config.countdowns, config.timezone, now)
        for countdown in future:
            add_date_job(scheduler, self._post_due_job, countdown.at, JOB_PREFIX + countdown.key)
        return len(future)
