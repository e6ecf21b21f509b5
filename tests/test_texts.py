"""How plans, API breaks, countdown posts and incidents read on IRC."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from deploybot.plans.model import ApiBreak
from deploybot.store import Incident, TimelineEntry
from deploybot.texts import (
    MAX_BREAKS_IN_POST,
    break_line,
    break_lines,
    clock_text,
    countdown_post,
    elapsed_text,
    incident_detail,
    incident_line,
    plan_line,
    when_text,
)
from tests.planfactory import make_plan, utc

PARIS = ZoneInfo("Europe/Paris")
WHEN = utc(2026, 12, 15, 13)  # the factory's default: Tue 13:00–21:00 UTC
TWO_BREAKS = (
    ApiBreak(
        "/api/packager/acl",
        "returns null instead of [] when the packager has no ACLs",
        "treat null as an empty list",
    ),
    ApiBreak("/api/collections", "removed"),
)


def no_line_breaks(lines: list[str]) -> bool:
    return all("\n" not in line and "\r" not in line for line in lines)


# --- times -------------------------------------------------------------------------------


def test_when_text_shows_day_date_time_and_zone() -> None:
    """A moment reads as day, date, time and zone abbreviation, in the given timezone."""
    assert when_text(WHEN, UTC) == "Tue 2026-12-15 13:00 UTC"
    assert when_text(WHEN, ZoneInfo("UTC")) == "Tue 2026-12-15 13:00 UTC"
    assert when_text(WHEN, PARIS) == "Tue 2026-12-15 14:00 CET"
    assert when_text(utc(2026, 12, 15, 23, 30), PARIS) == "Wed 2026-12-16 00:30 CET"


def test_clock_text_adds_the_date_only_on_another_day() -> None:
    """A time on the reference day is just HH:MM and zone; on another day, the full text."""
    assert clock_text(utc(2026, 12, 15, 21), UTC, WHEN) == "21:00 UTC"
    assert clock_text(utc(2026, 12, 16, 5), UTC, WHEN) == "Wed 2026-12-16 05:00 UTC"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=20), "<1m"),
        (timedelta(minutes=42), "42m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=5), "3h 5m"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=4), "2 days 4h"),
        (timedelta(minutes=-3), "<1m"),
    ],
)
def test_elapsed_text(delta: timedelta, text: str) -> None:
    """Spans read in minutes, hours and days; never negative."""
    assert elapsed_text(delta) == text


# --- plans -------------------------------------------------------------------------------


def test_plan_line_upcoming_with_breaks() -> None:
    """An upcoming plan: id, service, release, title, when, countdown, ⚠ and how many breaks."""
    plan = make_plan(api_breaks=TWO_BREAKS)
    assert plan_line(plan, utc(2026, 11, 27, 13), UTC) == (
        "pkgdb2-2.0 — pkgdb2 2.0 'pkgdb2 replaces pkgdb1' Tue 2026-12-15 13:00 UTC "
        "(in 18 days) ⚠ 2 API breaks"
    )


def test_plan_line_without_breaks_running_and_ended() -> None:
    """No ⚠ without breaks; a running plan says when it started and ends; a past one ended."""
    plan = make_plan(api_breaks=(), title="")
    running = plan_line(plan, WHEN + timedelta(hours=2), UTC)
    assert running == (
        "pkgdb2-2.0 — pkgdb2 2.0 Tue 2026-12-15 13:00 UTC (running: started 2h ago, ends 21:00 UTC)"
    )
    ended = plan_line(plan, utc(2026, 12, 16, 9), UTC)
    assert ended.endswith("(ended Tue 2026-12-15 21:00 UTC)")


def test_break_lines_with_and_without_migration() -> None:
    """Each break: ⚠ API BREAK, endpoint, change, and the migration (or that there is none)."""
    assert break_lines(make_plan(api_breaks=TWO_BREAKS)) == [
        "⚠ API BREAK: /api/packager/acl — returns null instead of [] when the packager has no "
        "ACLs — migration: treat null as an empty list",
        "⚠ API BREAK: /api/collections — removed — no migration note",
    ]
    assert break_lines(make_plan(api_breaks=())) == []


# --- countdown posts ---------------------------------------------------------------------


def test_countdown_post_says_api_breaks_first() -> None:
    """With API breaks, the post lists them first, then the countdown headline."""
    plan = make_plan(api_breaks=TWO_BREAKS)
    post = countdown_post(plan, timedelta(days=7), utc(2026, 12, 8, 13), UTC, late=False)
    assert post == [
        *break_lines(plan),
        "pkgdb2 2.0 deploys in 7 days (Tue 2026-12-15 13:00 UTC, 8h window)",
    ]
    assert no_line_breaks(post)


def test_countdown_post_without_breaks_is_the_headline() -> None:
    """Without API breaks the post is the headline alone, counting down by the offset."""
    plan = make_plan(api_breaks=())
    post = countdown_post(plan, timedelta(hours=4), utc(2026, 12, 15, 9), PARIS, late=False)
    assert post == ["pkgdb2 2.0 deploys in 4h (Tue 2026-12-15 14:00 CET, 8h window)"]


def test_countdown_post_counts_by_offset_across_dst() -> None:
    """An on-time "7 days" post says 7 days even when a DST change makes it 7 days ± 1h."""
    plan = make_plan(api_breaks=(), when=utc(2026, 4, 1, 11))  # after Paris springs forward
    post = countdown_post(plan, timedelta(days=7), utc(2026, 3, 25, 12), PARIS, late=False)
    assert post[0].startswith("pkgdb2 2.0 deploys in 7 days (")


def test_countdown_post_at_zero_is_deploying_now() -> None:
    """Offset 0: "deploying now", and how to report a problem."""
    plan = make_plan()
    post = countdown_post(plan, timedelta(0), WHEN, UTC, late=False)
    assert post[0].startswith("⚠ API BREAK: /api/packager/acl")
    assert post[1:] == [
        "pkgdb2 2.0 deploying now (Tue 2026-12-15 13:00 UTC, 8h window)",
        "problems? !broke pkgdb2 what broke",
    ]


def test_late_post_is_marked_and_counts_from_now() -> None:
    """A late post starts with the late marker and the due time, before the API breaks,
    and counts down from the real time, not the offset."""
    plan = make_plan()
    now = utc(2026, 12, 15, 11, 20)  # the 4h countdown was due at 09:00
    post = countdown_post(plan, timedelta(hours=4), now, UTC, late=True)
    assert post[0].startswith("(late: due 09:00) ⚠ API BREAK: /api/")
    assert post[1] == "pkgdb2 2.0 deploys in 1h 40m (Tue 2026-12-15 13:00 UTC, 8h window)"


def test_late_post_due_another_day_gives_the_date() -> None:
    """A late post whose due time was on another day names that day."""
    plan = make_plan(api_breaks=())
    post = countdown_post(plan, timedelta(days=1), utc(2026, 12, 15, 8), UTC, late=True)
    assert post[0].startswith("(late: due Mon 2026-12-14 13:00) pkgdb2")


def test_late_zero_post_after_start_says_since_when() -> None:
    """A late "now" post sent after the start says how long ago the deploy started."""
    plan = make_plan(api_breaks=())
    post = countdown_post(plan, timedelta(0), WHEN + timedelta(minutes=12), UTC, late=True)
    assert post[0] == (
        "(late: due 13:00) pkgdb2 2.0 deploying now, started 12m ago "
        "(Tue 2026-12-15 13:00 UTC, 8h window)"
    )


def test_countdown_post_caps_the_breaks_it_lists() -> None:
    """Many API breaks: the first few are listed, then a pointer to !breaks ID."""
    breaks = tuple(ApiBreak(f"/api/{n}", "removed") for n in range(MAX_BREAKS_IN_POST + 2))
    post = countdown_post(make_plan(api_breaks=breaks), timedelta(days=1), WHEN, UTC, False)
    assert post[:MAX_BREAKS_IN_POST] == [break_line(b) for b in breaks[:MAX_BREAKS_IN_POST]]
    assert post[MAX_BREAKS_IN_POST] == "⚠ and 2 more API breaks: !breaks pkgdb2-2.0"
    assert post[-1].startswith("pkgdb2 2.0 deploys in 1 day")


# --- incidents -----------------------------------------------------------------------------


def incident(**overrides: object) -> Incident:
    fields: dict[str, object] = {
        "number": 3,
        "service": "pkgdb2",
        "deploy_id": "pkgdb2-2.0",
        "minutes_into_deploy": 20,
        "text": "the acl page returns 500",
        "reporter_nick": "alice",
        "reporter_account": "alice",
        "channel": "#pkgdb2-firefight",
        "reported_at": WHEN + timedelta(minutes=20),
        "acknowledged_at": None,
        "acknowledged_by": None,
        "owner": None,
        "fixed_at": None,
        "fixed_by": None,
        "timeline": (),
    }
    fields.update(overrides)
    return Incident(**fields)  # type: ignore[arg-type]


def test_incident_line_shows_state_owner_and_reporter() -> None:
    """One incident per line: number, state and owner, service, text, reporter, time."""
    now = WHEN + timedelta(hours=1)
    assert incident_line(incident(), UTC, now) == (
        "#3 [open, no owner] pkgdb2: the acl page returns 500 (alice, 13:20 UTC)"
    )
    assert incident_line(incident(owner="bob"), PARIS, now).startswith("#3 [open, owner bob]")


def test_incident_detail_of_an_open_incident() -> None:
    """An open incident says who reported it, that nobody owns it, and for how long it is
    open; notes are shown, the latest last."""
    reported = WHEN + timedelta(minutes=20)
    notes = tuple(
        TimelineEntry(reported + timedelta(minutes=n), "bob", "note", f"note {n}")
        for n in range(1, 5)
    )
    lines = incident_detail(incident(timeline=notes), UTC, WHEN + timedelta(hours=1))
    assert lines == [
        "incident #3 OPEN (pkgdb2, deploy pkgdb2-2.0 +20 min): the acl page returns 500",
        "reported by alice in #pkgdb2-firefight at Tue 2026-12-15 13:20 UTC; "
        "owner: nobody (!take 3)",
        "open for 40m",
        "last 3 notes (1 earlier):",
        "  note 13:22 UTC bob: note 2",
        "  note 13:23 UTC bob: note 3",
        "  note 13:24 UTC bob: note 4",
    ]
