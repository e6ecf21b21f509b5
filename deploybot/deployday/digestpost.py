"""The end-of-day incident digest, posted once a day (SPEC §4).

At ``digest_time`` (configured timezone) on every day with a deploy or an incident, the
short form goes to the admin channel and to that day's firefighting channels.  "Once" is
the store's ledger (``digest:YYYY-MM-DD``), claimed in the transaction that stores the
posts, so a restart never posts twice; a digest whose time passed while the bot was down
(today's, or yesterday's if the bot was down over its time) is posted when the bot is
back, marked late.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING

from deploybot.deployday.busmessages import digest_posted
from deploybot.deployday.digest import Digest, digest_for_day, short_lines
from deploybot.deployday.roster import firefight_channel
from deploybot.plans.schedule import today

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from deploybot.core import Core
    from deploybot.deployday.firefight import Firefight
    from deploybot.outbox import Outbox
    from deploybot.plans.model import Plan
    from deploybot.store import Store

log = logging.getLogger(__name__)

JOB_ID = "digest"
LATE_AFTER = timedelta(minutes=5)


def _digest_of(
    store: Store, *, plans: tuple[Plan, ...], day: date, tz: tzinfo, now: datetime
) -> Digest:
    return digest_for_day(store, plans, day, tz, as_of=now)


class DigestPoster:
    """Posts each day's digest once; ``firefight`` tells which firefighting channels the
    bot is in (None: it is in none, so it visits each)."""

    def __init__(self, core: Core, outbox: Outbox, firefight: Firefight | None = None) -> None:
        self.core = core
        self.outbox = outbox
        self.firefight = firefight

    def due_at(self, day: date) -> datetime:
        """When the digest of ``day`` is due (aware, in the configured timezone)."""
        config = self.core.config
        return datetime.combine(day, config.digest_time, tzinfo=config.timezone)

    def channels_for(self, day: date) -> list[str]:
        """The admin channel and the firefighting channels of the day's deploys (those
        that have one: :func:`~deploybot.deployday.roster.firefight_channel`)."""
        config = self.core.config
        noon = datetime.combine(day, config.digest_time, tzinfo=config.timezone)
        channels = [config.admin_channel]
        for plan in today(self.core.plans, noon, config.timezone):
            channel = firefight_channel(plan, config)
            if channel is not None and channel.lower() not in {c.lower() for c in channels}:
                channels.append(channel)
        return channels

    def post_due(self, now: datetime | None = None) -> list[date]:
        """Post every digest whose time has come and that was not posted yet."""
        now = now or self.core.now()
        local_today = now.astimezone(self.core.config.timezone).date()
        posted = []
        for day in (local_today - timedelta(days=1), local_today):
            if now < self.due_at(day) or not self._post(day, now):
                continue
            posted.append(day)
        return posted

    async def post_due_job(self) -> None:
        """The scheduled job (a coroutine: APScheduler runs it in the loop's thread): as
        :meth:`post_due`, with each digest read off the loop (:meth:`Core.read`)."""
        now = self.core.now()
        plans, tz = self.core.plans, self.core.config.timezone
        local_today = now.astimezone(tz).date()
        for day in (local_today - timedelta(days=1), local_today):
            if now < self.due_at(day) or self.core.store.claimed(f"digest:{day.isoformat()}"):
                continue
            digest = await self.core.read(partial(_digest_of, plans=plans, day=day, tz=tz, now=now))
            self._post_digest(day, now, digest)

    def schedule(self, scheduler: BaseScheduler) -> None:
        """A daily job at ``digest_time`` in the configured timezone."""
        config = self.core.config
        scheduler.add_job(
            self.post_due_job,
            "cron",
            hour=config.digest_time.hour,
            minute=config.digest_time.minute,
            second=config.digest_time.second,  # HH:MM:SS is accepted (tests use it)
            timezone=config.timezone,
            id=JOB_ID,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def _post(self, day: date, now: datetime) -> bool:
        config = self.core.config
        digest = digest_for_day(self.core.store, self.core.plans, day, config.timezone, as_of=now)
        return self._post_digest(day, now, digest)

    def _post_digest(self, day: date, now: datetime, digest: Digest) -> bool:
        """Post ``digest`` of ``day`` once (the claim and the posts in one transaction)."""
        if digest.empty:
            return False  # nothing to say; a later incident that day may still make one
        lines = self.lines(digest, now)
        present = self._present_channels(day, now)
        store = self.core.store
        with store.transaction():  # the claim and the posts: kept together or not at all
            if not store.claim_once(f"digest:{day.isoformat()}", now):
                return False
            for channel in self.channels_for(day):
                visiting = channel.lower() not in present
                if visiting:  # the bot left it at the end of the window (+n: must be inside)
                    self.outbox.join(channel)
                for line in lines:
                    self.outbox.post(channel, line)
                if visiting:
                    self.outbox.part(channel, "incident digest posted")
            self.core.publish(digest_posted(digest))  # on the bus too, with the claim
        log.info("digest of %s posted to %s", day, ", ".join(self.channels_for(day)))
        return True

    def _present_channels(self, day: date, now: datetime) -> set[str]:
        """Lower-cased channels the bot is in: the admin channel and open firefights."""
        config = self.core.config
        present = {config.admin_channel.lower(), *(c.lower() for c in config.announce_channels)}
        firefight = self.firefight
        if firefight is not None:
            for plan in self.core.plans:
                channel = firefight_channel(plan, config)
                if channel is not None and firefight.is_open(plan):
                    present.add(channel.lower())
        return present

    def lines(self, digest: Digest, now: datetime) -> list[str]:
        lines = short_lines(digest, self.core.config.timezone)
        if now - self.due_at(digest.day) > LATE_AFTER and lines:
            lines[0] = f"(late: the bot was offline at digest time) {lines[0]}"
        return lines
