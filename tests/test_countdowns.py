"""CountdownPoster: each countdown post is sent once, late if missed, never repeated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.countdowns import JOB_PREFIX, CountdownPoster
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.store import Store
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc

WHEN = utc(2026, 12, 15, 13)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
    config = config_from_mapping(
        {"announce_channels": "#fedora-admin #fedora-apps", "countdowns": "7d 1d 1h 0"}
    )
    store = Store.open(tmp_path / "db.sqlite3")
    book = PlanBook(plans)
    book.reload()
    yield Core(config=config, store=store, book=book)
    store.close()


def test_due_post_is_sent_to_every_announce_channel_once(core: Core) -> None:
    """At 1d the post goes to both channels, API break first; a second sweep sends nothing."""
    outbox = RecordingOutbox()
    poster = CountdownPoster(core, outbox)
    now = WHEN - timedelta(days=1)
    assert poster.post_due(now) == ["pkgdb2-2.0@1d"]
    channels = {target for target, _ in outbox.posts}
    assert channels == {"#fedora-admin", "#fedora-apps"}
    first_line = next(text for target, text in outbox.posts if target == "#fedora-admin")
    assert first_line.startswith("⚠ API BREAK: /api/packager/acl")
    assert poster.post_due(now + timedelta(seconds=5)) == []


def test_restart_neither_repeats_nor_drops(core: Core, tmp_path: Path) -> None:
    """A new poster on a reopened store (a restart) does not post again what was sent."""
    CountdownPoster(core, RecordingOutbox()).post_due(WHEN - timedelta(days=1))
    core.store.close()
    core.store = Store.open(tmp_path / "db.sqlite3")
    outbox = RecordingOutbox()
    assert CountdownPoster(core, outbox).post_due(WHEN - timedelta(hours=23)) == []
    assert outbox.posts == []


def test_post_missed_while_down_is_sent_late_and_older_ones_are_skipped(core: Core) -> None:
    """Down from before 7d to 2h before: only 1d goes out, marked late; 7d is skipped."""
    outbox = RecordingOutbox()
    poster = CountdownPoster(core, outbox)
    assert poster.post_due(WHEN - timedelta(hours=2)) == ["pkgdb2-2.0@1d"]
    assert outbox.posts[0][1].startswith("(late: due")
    claims = {claim.key: claim for claim in core.store.countdown_claims()}
    assert claims["pkgdb2-2.0@7d"].skipped
    assert claims["pkgdb2-2.0@1d"].late and not claims["pkgdb2-2.0@1d"].skipped


def test_nothing_is_posted_after_the_window(core: Core) -> None:
    """Once the deploy window is over, missed countdowns are not posted at all."""
    outbox = RecordingOutbox()
    assert CountdownPoster(core, outbox).post_due(WHEN + timedelta(hours=9)) == []
    assert outbox.posts == []


def test_reschedule_replaces_jobs_without_duplicates(core: Core) -> None:
    """One date job per future countdown; rescheduling again replaces them (no duplicates)."""
    scheduler = AsyncIOScheduler()
    poster = CountdownPoster(core, RecordingOutbox())
    now = WHEN - timedelta(days=2)
    assert poster.reschedule(scheduler, now) == 3
    assert poster.reschedule(scheduler, now) == 3
    ids = sorted(job.id for job in scheduler.get_jobs())
    assert ids == [JOB_PREFIX + key for key in ("pkgdb2-2.0@0", "pkgdb2-2.0@1d", "pkgdb2-2.0@1h")]


@pytest.mark.parametrize(
    ("late_after", "late"), [(None, True), ("90s", False), ("1m30s", False), ("89s", True)]
)
def test_how_late_a_post_may_be_is_the_configured_countdown_late_after(
    core: Core, late_after: str | None, late: bool
) -> None:
    """A post 90 s after its time is late under the default `countdown_late_after` (1m)
    and on time when the key allows 90 s; one second less is late again."""
    if late_after is not None:
        core.config = config_from_mapping(
            {"countdowns": "7d 1d 1h 0", "countdown_late_after": late_after}
        )
    outbox = RecordingOutbox()
    assert CountdownPoster(core, outbox).post_due(WHEN - timedelta(hours=1, seconds=-90))
    assert outbox.posts[0][1].startswith("(late: due") is late
    (claim,) = (c for c in core.store.countdown_claims() if c.key == "pkgdb2-2.0@1h")
    assert claim.late is late
