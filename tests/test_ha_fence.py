"""An old active woken up after a takeover writes and sends nothing (issue 14's fencing),
in-process on a real PostgreSQL: the application's own wiring (`plugins/application.py`)
around real parts — the store fenced with the active's epoch, the countdown poster and the
stored outbox, an APScheduler job — with a recording transport for the chat network.

The pause is a Leadership that stops renewing: the standby takes over after the lease
timeout (ending the paused one's lock session), and the old active's scheduler then runs
the countdown that came due, as it does first thing after SIGCONT, before its renewal has
failed.  tests/test_ha_e2e.py covers the processes and the IRC server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from deploybot_plugins.application import (
    _JOB_LOG,
    LOST_LEADERSHIP_STATUS,
    Application,
    _quiet_refusals,
)

from deploybot.core import Core
from deploybot.deployday.countdowns import CountdownPoster
from deploybot.deployday.posts import StoredOutbox
from deploybot.health import Role
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.store import NotLeaderError, Store, StoredPost
from deploybot.store.leader import Leadership
from tests.planfactory import make_plan, utc
from tests.postgres import PostgresDatabase

WHEN = utc(2026, 12, 15, 13)
NOW = WHEN - timedelta(days=1)  # the 1d countdown is due
LEASE = 0.3


class Transport:
    """A chat network that records what it is handed."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def reply(self, target: str, text: str) -> None:
        self.sent.append(text)

    def notice(self, target: str, text: str) -> None:
        self.sent.append(text)

    def keep_joined(self, channel: str, joined: bool) -> None:
        pass

    def send_post(self, post: StoredPost) -> None:
        self.sent.append(post.text)


def counts(url: str) -> tuple[int, int]:
    with Store.open(url) as store:
        return len(store.countdown_claims()), len(store.pending_posts())


async def run_job(job: object) -> JobExecutionEvent:
    """Run ``job`` once on a real AsyncIOScheduler, its job log filtered as the
    application's; the execution's event."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    done: asyncio.Future[JobExecutionEvent] = asyncio.get_running_loop().create_future()
    scheduler.add_listener(done.set_result, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    _JOB_LOG.addFilter(_quiet_refusals)
    scheduler.start()
    try:
        scheduler.add_job(job, "date", run_date=datetime.now(UTC))
        return await asyncio.wait_for(done, 10)
    finally:
        scheduler.shutdown(wait=False)
        _JOB_LOG.removeFilter(_quiet_refusals)


async def test_an_old_active_woken_up_with_a_countdown_due_writes_and_sends_nothing(
    postgres_database: PostgresDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The woken-up old active's countdown job is refused by the fence: no claim and no
    post in the store, nothing handed to the network; the application takes it as the
    leadership lost (once: one ERROR line, no traceback; exit status 3, chat dropped, stop
    asked) — and the new active then posts that countdown itself, once.  Without the
    fence the job succeeds: the old one's claims and posts land (2 claims, 4 posts, all 4
    handed to the network), and the new one would post nothing."""
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    url = postgres_database.url
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
    ini = tmp_path / "bot.ini"
    ini.write_text(
        f"[deploybot]\ndatabase = {url}\nplans_dir = {plans}\nweb_port = 0\ntimezone = UTC\n"
        "announce_channels = #fedora-admin #fedora-apps\ncountdowns = 7d 1d 1h 0\n",
        encoding="utf-8",
    )
    app = Application(ini, clock=lambda: NOW)
    app._loop = asyncio.get_running_loop()
    book = PlanBook(plans)
    book.reload()
    old_store, new_store = Store.open(url), Store.open(url)
    old = Leadership(url, instance="bot-a", lease_timeout=LEASE)
    new = Leadership(url, instance="bot-b", lease_timeout=LEASE)
    try:
        app.core = Core(config=app.config, store=old_store, book=book, clock=app.clock)
        transport = Transport()
        poster = CountdownPoster(app.core, StoredOutbox(old_store, transport, app.clock))
        epoch = old.try_acquire()
        assert epoch == 1
        # what Application._campaign does on becoming active
        app.leadership = old
        app.role = Role("active", app.instance, epoch)
        old_store.fence(epoch, app._fence_refused)
        app._lease_renewed(time.monotonic())
        assert app._may_send()
        # paused: no renewal; the standby takes over once the lease has run out
        await asyncio.sleep(LEASE + 0.2)
        assert new.try_acquire() == 2
        caplog.clear()
        with caplog.at_level(logging.INFO):
            event = await run_job(poster.sweep)
            assert isinstance(event.exception, NotLeaderError)
            assert counts(url) == (0, 0), "the old active wrote after the takeover"
            assert transport.sent == []
            with pytest.raises(NotLeaderError):  # any later write too, told once only
                old_store.claim_once("firefight-open:pkgdb2-2.0", NOW)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            "leadership lost (another instance took over; a write was refused: not the "
            "active instance any more (epoch 1, current 2): nothing was changed): stopping "
            f"at once, exit status {LOST_LEADERSHIP_STATUS}"
        ]
        assert not any(r.exc_info for r in caplog.records)
        assert app._exit_status == LOST_LEADERSHIP_STATUS and app._stop.is_set()
        assert app.role.role == "standby" and not app._may_send()
        # the new active posts the countdown the old one could not claim
        new_store.fence(2)
        app.core.store = new_store
        new_transport = Transport()
        new_poster = CountdownPoster(app.core, StoredOutbox(new_store, new_transport, app.clock))
        assert new_poster.post_due(NOW) == ["pkgdb2-2.0@1d"]
        assert counts(url)[0] >= 1 and len(new_transport.sent) == counts(url)[1] > 0
    finally:
        old.close()
        new.close()
        old_store.close()
        new_store.close()
