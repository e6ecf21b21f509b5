"""DigestPoster: the end-of-day digest is posted once per day, restart-safe, late if missed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from deploybot.cli import main
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.digestpost import JOB_ID, DigestPoster
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.store import ReadWorker, Store
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc

PARIS = ZoneInfo("Europe/Paris")
WHEN = utc(2026, 12, 15, 13)  # 14:00 in Paris


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
    config = config_from_mapping(
        {
            "timezone": "Europe/Paris",
            "digest_time": "22:00",
            "admin_channel": "#fedora-admin",
            "database": str(tmp_path / "db.sqlite3"),
            "plans_dir": str(plans),
        }
    )
    store = Store.open(tmp_path / "db.sqlite3")
    book = PlanBook(plans)
    book.reload()
    yield Core(config=config, store=store, book=book)
    store.close()


def report(core: Core, at: datetime, *, fixed_after: timedelta | None = None) -> int:
    incident = core.store.report_incident(
        service="pkgdb2",
        text="acl page 500",
        reporter_nick="dgilmore",
        reporter_account="dgilmore",
        channel="#pkgdb2-firefight",
        now=at,
        deploy_id="pkgdb2-2.0",
        minutes_into_deploy=int((at - WHEN).total_seconds() // 60),
    )
    if fixed_after is not None:
        core.store.fix(incident.number, "pingou", "pingou", at + fixed_after)
    return incident.number


def test_digest_is_posted_at_digest_time_to_admin_and_firefight_channels(core: Core) -> None:
    """At 22:00 Paris the short digest goes to the admin and the deploy's channel, ≤ 6 lines."""
    report(core, WHEN + timedelta(minutes=30), fixed_after=timedelta(minutes=40))
    report(core, WHEN + timedelta(hours=2))
    outbox = RecordingOutbox()
    poster = DigestPoster(core, outbox)
    assert poster.post_due(utc(2026, 12, 15, 20, 59)) == []  # 21:59 Paris: not yet
    assert poster.post_due(utc(2026, 12, 15, 21, 0)) == [WHEN.date()]
    by_channel: dict[str, list[str]] = {}
    for target, text in outbox.posts:
        by_channel.setdefault(target, []).append(text)
    assert set(by_channel) == {"#fedora-admin", "#pkgdb2-firefight"}
    lines = by_channel["#fedora-admin"]
    assert 1 < len(lines) <= 6
    assert "2 reported, 1 fixed, 1 open" in " ".join(lines)
    assert "repair median 40m" in " ".join(lines)


def test_a_firefighting_channel_the_bot_left_is_visited_for_the_digest(core: Core) -> None:
    """After the window closed (the bot parted), the digest joins, posts and parts again;
    the admin channel, where the bot stays, is posted to directly."""
    report(core, WHEN)
    outbox = RecordingOutbox()
    DigestPoster(core, outbox).post_due(utc(2026, 12, 15, 21, 0))
    fire = [call for call in outbox.calls if call[1] == "#pkgdb2-firefight"]
    assert fire[0][0] == "join" and fire[-1][0] == "part"
    assert {call[0] for call in fire[1:-1]} == {"post"}
    admin = {call[0] for call in outbox.calls if call[1] == "#fedora-admin"}
    assert admin == {"post"}


def test_digest_is_posted_once_even_after_a_restart(core: Core, tmp_path: Path) -> None:
    """A second sweep, or a new poster on a reopened store, posts nothing more that day."""
    report(core, WHEN)
    DigestPoster(core, RecordingOutbox()).post_due(utc(2026, 12, 15, 21, 0))
    core.store.close()
    core.store = Store.open(tmp_path / "db.sqlite3")
    outbox = RecordingOutbox()
    assert DigestPoster(core, outbox).post_due(utc(2026, 12, 15, 21, 30)) == []
    assert outbox.posts == []


def test_digest_missed_while_down_is_posted_late_next_morning(core: Core) -> None:
    """Down over 22:00: the next morning yesterday's digest is posted once, marked late."""
    report(core, WHEN)
    outbox = RecordingOutbox()
    assert DigestPoster(core, outbox).post_due(utc(2026, 12, 16, 7, 0)) == [WHEN.date()]
    assert outbox.posts[0][1].startswith("(late: the bot was offline at digest time)")


def test_quiet_day_posts_nothing(core: Core) -> None:
    """No deploy and no incident that day: no digest (and nothing claimed)."""
    outbox = RecordingOutbox()
    assert DigestPoster(core, outbox).post_due(utc(2026, 12, 20, 21, 30)) == []
    assert outbox.posts == []
    assert core.store.claim_once("digest:2026-12-20", utc(2026, 12, 20, 21, 30))


def test_daily_job_runs_at_digest_time_in_the_configured_timezone(core: Core) -> None:
    """The cron job fires at 22:00 Europe/Paris."""
    scheduler = AsyncIOScheduler()
    DigestPoster(core, RecordingOutbox()).schedule(scheduler)
    (job,) = [job for job in scheduler.get_jobs() if job.id == JOB_ID]
    fire = job.trigger.get_next_fire_time(None, datetime(2026, 12, 15, 12, tzinfo=PARIS))
    assert fire == datetime(2026, 12, 15, 22, tzinfo=PARIS)


def test_cli_prints_the_full_digest(
    core: Core, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deploybot digest --date` prints the full form from the database named in the config."""
    report(core, WHEN + timedelta(minutes=5), fixed_after=timedelta(minutes=20))
    ini = tmp_path / "bot.ini"
    ini.write_text(
        f"[deploybot]\ntimezone = Europe/Paris\ndatabase = {tmp_path / 'db.sqlite3'}\n"
        f"plans_dir = {tmp_path / 'plans'}\n"
    )
    assert main(["digest", "--date", "2026-12-15", "--config", str(ini)]) == 0
    out = capsys.readouterr().out
    assert "pkgdb2-2.0" in out and "1 reported, 1 fixed" in out
    assert "20m" in out


def test_cli_digest_of_a_missing_database_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config naming a database that does not exist fails clearly instead of creating one."""
    ini = tmp_path / "bot.ini"
    ini.write_text(f"[deploybot]\ndatabase = {tmp_path / 'nope.sqlite3'}\n")
    assert main(["digest", "--config", str(ini)]) == 1
    assert "nope.sqlite3" in capsys.readouterr().err
    assert not (tmp_path / "nope.sqlite3").exists()


def test_cli_digest_of_a_bad_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``--date`` that is not a YYYY-MM-DD day is refused by argparse (exit 2) with the same
    words as ``!digest`` and the API."""
    with pytest.raises(SystemExit) as exited:
        main(["digest", "--date", "2026-13-01"])
    assert exited.value.code == 2
    assert "'2026-13-01' is not a valid date: month must be in 1..12" in capsys.readouterr().err


async def test_the_scheduled_job_reads_the_digest_off_the_loop_and_posts_it_once(
    core: Core,
) -> None:
    """The daily job reads the digest in the store's read worker (a thread and a
    connection of its own, not the loop's) and posts it as post_due does, once."""
    report(core, WHEN + timedelta(minutes=30), fixed_after=timedelta(minutes=40))
    reads = ReadWorker(core.store.reopen)
    job_core = replace(core, reads=reads, clock=lambda: utc(2026, 12, 15, 21, 0))
    try:
        outbox = RecordingOutbox()
        poster = DigestPoster(job_core, outbox)
        await poster.post_due_job()
        assert reads.thread is not None and reads.thread != threading.get_ident()
        admin = [text for target, text in outbox.posts if target == "#fedora-admin"]
        assert "1 reported, 1 fixed" in " ".join(admin)
        await poster.post_due_job()
        assert [text for target, text in outbox.posts if target == "#fedora-admin"] == admin
    finally:
        reads.close()
