"""Countdown times and keys, due/superseded/late posts, and which deploys are when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.config import Config
from deploybot.durations import DEFAULT_COUNTDOWNS, parse_countdowns
from deploybot.plans.model import Plan
from deploybot.plans.schedule import (
    Countdown,
    countdown_at,
    countdowns_for,
    day_bounds,
    describe_countdown,
    due_countdowns,
    future_countdowns,
    running,
    today,
    upcoming,
    window,
)
from tests.planfactory import make_plan, utc

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
OFFSETS = parse_countdowns(DEFAULT_COUNTDOWNS)
WHEN = utc(2026, 12, 15, 13)  # the factory's default: 13:00–21:00 UTC
GRACE = Config().countdown_late_after  # the default: 1 minute


def d(text: str) -> timedelta:
    (offset,) = parse_countdowns(text)
    return offset


def by_key(countdowns: tuple[Countdown, ...]) -> dict[str, datetime]:
    return {c.key: c.at for c in countdowns}


# --- countdowns_for: keys and times -------------------------------------------------------


def test_countdown_keys_and_times_in_utc() -> None:
    """In UTC each countdown is exactly `when − offset`; keys are plan@canonical-offset."""
    countdowns = countdowns_for(make_plan(), OFFSETS, UTC)
    assert by_key(countdowns) == {
        "pkgdb2-2.0@14d": utc(2026, 12, 1, 13),
        "pkgdb2-2.0@7d": utc(2026, 12, 8, 13),
        "pkgdb2-2.0@3d": utc(2026, 12, 12, 13),
        "pkgdb2-2.0@1d": utc(2026, 12, 14, 13),
        "pkgdb2-2.0@4h": utc(2026, 12, 15, 9),
        "pkgdb2-2.0@1h": utc(2026, 12, 15, 12),
        "pkgdb2-2.0@15m": utc(2026, 12, 15, 12, 45),
        "pkgdb2-2.0@0": WHEN,
    }
    assert [c.at for c in countdowns] == sorted(c.at for c in countdowns)
    assert all(c.at.tzinfo is UTC for c in countdowns)


def test_countdown_key_uses_the_canonical_spelling() -> None:
    """`36h` and `1d12h` are the same offset and the same key."""
    (countdown,) = countdowns_for(make_plan(), parse_countdowns("36h"), UTC)
    assert countdown.key == "pkgdb2-2.0@1d12h"


def test_whole_days_are_calendar_days_across_spring_forward() -> None:
    """Paris, clocks go forward on 2026-03-29: "1d"/"3d" keep 13:00 local; "4h" is 4 real hours."""
    when = datetime(2026, 3, 30, 13, 0, tzinfo=PARIS).astimezone(UTC)  # 11:00 UTC
    times = by_key(countdowns_for(make_plan(id="p", when=when), OFFSETS, PARIS))
    assert times["p@1d"] == utc(2026, 3, 29, 11)  # 13:00 CEST: 24 real hours
    assert times["p@3d"] == utc(2026, 3, 27, 12)  # 13:00 CET: 71 real hours
    assert when - times["p@3d"] == timedelta(hours=71)
    assert times["p@3d"].astimezone(PARIS).hour == 13
    assert times["p@4h"] == utc(2026, 3, 30, 7)


def test_whole_days_are_calendar_days_across_fall_back() -> None:
    """New York, clocks go back on 2026-11-01: "3d" before 09:00 EST is 09:00 EDT, 73 hours."""
    when = datetime(2026, 11, 2, 9, 0, tzinfo=NEW_YORK).astimezone(UTC)  # 14:00 UTC
    times = by_key(countdowns_for(make_plan(id="p", when=when), OFFSETS, NEW_YORK))
    assert times["p@3d"] == utc(2026, 10, 30, 13)
    assert when - times["p@3d"] == timedelta(hours=73)
    assert times["p@1d"] == utc(2026, 11, 1, 14)  # already EST: 24 real hours
    assert times["p@1h"] == utc(2026, 11, 2, 13)


def test_day_part_is_calendar_and_sub_day_part_is_absolute() -> None:
    """ "1d12h": 13:00 local the day before (across the change), minus twelve real hours."""
    when = datetime(2026, 3, 30, 13, 0, tzinfo=PARIS).astimezone(UTC)
    at = countdown_at(when, d("1d12h"), PARIS)
    assert at == utc(2026, 3, 29, 11) - timedelta(hours=12)


def test_same_offsets_in_utc_ignore_the_dst_change() -> None:
    """With timezone UTC the day before is exactly 24 hours before, DST or not."""
    when = datetime(2026, 3, 30, 13, 0, tzinfo=PARIS).astimezone(UTC)
    assert countdown_at(when, d("3d"), UTC) == when - timedelta(hours=72)


def test_nonexistent_local_time_lands_after_the_gap() -> None:
    """02:30 on 2026-03-29 does not exist in Paris: "1d" before 02:30 on the 30th is 03:30 CEST."""
    when = datetime(2026, 3, 30, 2, 30, tzinfo=PARIS).astimezone(UTC)
    at = countdown_at(when, d("1d"), PARIS)
    assert at == utc(2026, 3, 29, 1, 30)
    assert at.astimezone(PARIS).strftime("%H:%M %Z") == "03:30 CEST"


def test_negative_offset_is_refused() -> None:
    """An offset after `when` is a programming error."""
    with pytest.raises(ValueError, match="negative"):
        countdown_at(WHEN, -timedelta(hours=1), UTC)


# --- future_countdowns --------------------------------------------------------------------


def test_future_countdowns_are_those_still_to_come_in_time_order() -> None:
    """Between the 3d and 1d posts, the 1d…0 posts of the plan remain, soonest first."""
    now = utc(2026, 12, 13)
    keys = [c.key for c in future_countdowns([make_plan()], OFFSETS, UTC, now)]
    assert keys == [f"pkgdb2-2.0@{o}" for o in ("1d", "4h", "1h", "15m", "0")]


def test_future_countdowns_interleave_plans() -> None:
    """Countdowns of several plans are merged by time."""
    a = make_plan(id="a", when=utc(2026, 12, 15, 13))
    b = make_plan(id="b", when=utc(2026, 12, 15, 13, 30))
    keys = [
        c.key for c in future_countdowns([b, a], parse_countdowns("1h 0"), UTC, utc(2026, 12, 1))
    ]
    assert keys == ["a@1h", "b@1h", "a@0", "b@0"]


def test_plan_in_the_past_has_no_future_countdowns() -> None:
    """A plan whose `when` has passed (even while it is still running) yields none."""
    now = WHEN + timedelta(minutes=1)
    assert future_countdowns([make_plan()], OFFSETS, UTC, now) == ()
    assert future_countdowns([make_plan(when=utc(2020, 1, 1))], OFFSETS, PARIS, now) == ()


@given(
    whens=st.lists(
        st.datetimes(
            min_value=datetime(2025, 1, 1),
            max_value=datetime(2028, 1, 1),
            timezones=st.just(UTC),
        ),
        min_size=1,
        max_size=4,
    ),
    offsets=st.lists(st.timedeltas(timedelta(0), timedelta(days=30)), max_size=8),
    now=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from([UTC, PARIS, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]),
)
def test_future_countdowns_property(
    whens: list[datetime], offsets: list[timedelta], now: datetime, zone: ZoneInfo
) -> None:
    """Property: future countdowns are after now, sorted, keyed uniquely, none after `when`."""
    offsets = [timedelta(seconds=int(o.total_seconds())) for o in offsets]
    plans = [make_plan(id=f"p{i}", when=when) for i, when in enumerate(whens)]
    future = future_countdowns(plans, offsets, zone, now)
    assert all(c.at > now for c in future)
    assert [c.at for c in future] == sorted(c.at for c in future)
    assert len({c.key for c in future}) == len(future)
    whens_by_id = {p.id: p.when for p in plans}
    assert all(c.at <= whens_by_id[c.plan_id] for c in future)


@given(
    when=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ).map(lambda t: t.replace(hour=12, microsecond=0)),
    days=st.integers(0, 400),
)
def test_whole_day_offsets_keep_the_local_wall_time(when: datetime, days: int) -> None:
    """Property: in Paris, "Nd" before a midday deploy is at the same local time of day."""
    at = countdown_at(when, timedelta(days=days), PARIS)
    local_when, local_at = when.astimezone(PARIS), at.astimezone(PARIS)
    assert local_at.time() == local_when.time()
    assert local_when.date() - local_at.date() == timedelta(days=days)


# --- due_countdowns -----------------------------------------------------------------------


def test_due_post_on_time_is_not_late() -> None:
    """Just after the 7d time: post 7d (not late); the unsent 14d is superseded."""
    now = utc(2026, 12, 8, 13, 0, 30)
    due = due_countdowns([make_plan()], OFFSETS, UTC, now, sent_keys=set(), grace=GRACE)
    assert [(p.key, p.superseded, p.late) for p in due] == [
        ("pkgdb2-2.0@14d", True, True),
        ("pkgdb2-2.0@7d", False, False),
    ]
    assert due[1].plan == make_plan()


def test_sent_countdowns_are_not_due_again() -> None:
    """Keys already in the ledger are not returned: after a restart nothing is repeated."""
    now = utc(2026, 12, 8, 13, 0, 30)
    sent = {"pkgdb2-2.0@14d", "pkgdb2-2.0@7d"}
    assert due_countdowns([make_plan()], OFFSETS, UTC, now, sent, grace=GRACE) == ()
    due = due_countdowns([make_plan()], OFFSETS, UTC, now, {"pkgdb2-2.0@14d"}, grace=GRACE)
    assert [(p.key, p.superseded) for p in due] == [("pkgdb2-2.0@7d", False)]


def test_missed_posts_while_down_send_only_the_latest_marked_late() -> None:
    """Down since before 14d, back 2 days before: 3d is posted late, 14d and 7d superseded."""
    now = utc(2026, 12, 13, 13)
    due = due_countdowns([make_plan()], OFFSETS, UTC, now, sent_keys=(), grace=GRACE)
    posts = [p for p in due if not p.superseded]
    assert [(p.key, p.late) for p in posts] == [("pkgdb2-2.0@3d", True)]
    assert [p.key for p in due if p.superseded] == ["pkgdb2-2.0@14d", "pkgdb2-2.0@7d"]


def test_older_unsent_post_is_superseded_when_the_latest_was_sent() -> None:
    """If 3d was already posted, an unsent older 7d is only superseded, never posted."""
    now = utc(2026, 12, 13, 13)
    due = due_countdowns(
        [make_plan()], OFFSETS, UTC, now, {"pkgdb2-2.0@14d", "pkgdb2-2.0@3d"}, grace=GRACE
    )
    assert [(p.key, p.superseded) for p in due] == [("pkgdb2-2.0@7d", True)]


def test_late_means_more_than_the_grace_period() -> None:
    """At exactly the grace period it is on time; one second more is late; grace is a parameter."""
    at = utc(2026, 12, 15, 12)  # the 1h countdown
    sent = {f"pkgdb2-2.0@{o}" for o in ("14d", "7d", "3d", "1d", "4h")}

    def late(now: datetime, grace: timedelta = GRACE) -> bool:
        (post,) = due_countdowns([make_plan()], OFFSETS, UTC, now, sent, grace=grace)
        return post.late

    assert not late(at)
    assert not late(at + timedelta(minutes=1))
    assert late(at + timedelta(minutes=1, seconds=1))
    assert not late(at + timedelta(minutes=5), grace=timedelta(minutes=10))


def test_nothing_is_due_before_the_first_countdown() -> None:
    """Before the 14d time nothing has passed."""
    assert due_countdowns([make_plan()], OFFSETS, UTC, utc(2026, 11, 30), (), grace=GRACE) == ()


def test_zero_countdown_is_due_during_the_window() -> None:
    """Back during the window after being down: the `0` post is sent late, the rest superseded."""
    now = WHEN + timedelta(hours=2)
    due = due_countdowns([make_plan()], OFFSETS, UTC, now, (), grace=GRACE)
    posts = [p for p in due if not p.superseded]
    assert [(p.key, p.late) for p in posts] == [("pkgdb2-2.0@0", True)]
    assert len(due) == len(OFFSETS)


def test_nothing_is_due_after_the_window_ended() -> None:
    """Once the window is over (now >= end) no countdown of the plan is due, not even flagged."""
    end = WHEN + timedelta(hours=8)
    assert due_countdowns([make_plan()], OFFSETS, UTC, end, (), grace=GRACE) == ()
    assert (
        len(
            due_countdowns([make_plan()], OFFSETS, UTC, end - timedelta(seconds=1), (), grace=GRACE)
        )
        == 8
    )


def test_due_posts_of_several_plans() -> None:
    """Each plan gets its own latest post; the result is ordered by time."""
    a = make_plan(id="a", when=utc(2026, 12, 15, 13))
    b = make_plan(id="b", when=utc(2026, 12, 10, 13))
    now = utc(2026, 12, 9, 14)
    due = due_countdowns([a, b], parse_countdowns("7d 1d"), UTC, now, (), grace=GRACE)
    assert [(p.key, p.superseded, p.late) for p in due] == [
        ("b@7d", True, True),
        ("a@7d", False, True),
        ("b@1d", False, True),
    ]


def test_due_uses_calendar_days_in_the_zone() -> None:
    """In Paris, "1d" before a 13:00 local deploy after spring forward is due at 13:00 local."""
    when = datetime(2026, 3, 30, 13, 0, tzinfo=PARIS).astimezone(UTC)
    plan = make_plan(id="p", when=when)
    just_before = datetime(2026, 3, 29, 12, 59, tzinfo=PARIS)
    assert due_countdowns([plan], [d("1d")], PARIS, just_before, (), grace=GRACE) == ()
    (post,) = due_countdowns(
        [plan], [d("1d")], PARIS, just_before + timedelta(minutes=1), (), grace=GRACE
    )
    assert post.key == "p@1d"
    assert not post.late


@given(
    now_minutes=st.integers(-20 * 24 * 60, 10 * 60),
    sent=st.sets(st.sampled_from([f"pkgdb2-2.0@{o}" for o in DEFAULT_COUNTDOWNS.split()])),
)
def test_due_property(now_minutes: int, sent: set[str]) -> None:
    """Property: due posts have passed and are unsent, at most one per plan is to be posted."""
    now = WHEN + timedelta(minutes=now_minutes)
    due = due_countdowns([make_plan()], OFFSETS, UTC, now, sent, grace=GRACE)
    assert all(p.countdown.at <= now and p.key not in sent for p in due)
    posts = [p for p in due if not p.superseded]
    assert len(posts) <= 1
    if posts:
        assert all(p.countdown.at <= posts[0].countdown.at for p in due)


# --- window, running, today, upcoming -----------------------------------------------------


def late_evening_plan() -> Plan:
    """23:00–03:00 Paris summer time on 10–11 June 2026 (21:00–01:00 UTC)."""
    return make_plan(id="night", when=utc(2026, 6, 10, 21), duration=timedelta(hours=4))


def test_window_is_when_to_end() -> None:
    """The window is [when, when + duration)."""
    assert window(make_plan()) == (WHEN, utc(2026, 12, 15, 21))


def test_running_includes_start_and_excludes_end() -> None:
    """A plan runs from `when` inclusive to its end exclusive."""
    plan = make_plan()
    assert running([plan], WHEN) == (plan,)
    assert running([plan], WHEN - timedelta(seconds=1)) == ()
    assert running([plan], utc(2026, 12, 15, 21)) == ()


def test_running_across_midnight() -> None:
    """A window across midnight runs on both sides of it."""
    plan = late_evening_plan()
    assert running([plan], utc(2026, 6, 10, 23, 30)) == (plan,)
    assert running([plan], utc(2026, 6, 11, 0, 30)) == (plan,)


def test_today_across_midnight_in_a_non_utc_zone() -> None:
    """The window belongs to both local days it touches in Paris, and not to the next one."""
    plan = late_evening_plan()
    assert today([plan], utc(2026, 6, 10, 8), PARIS) == (plan,)  # 10 June local
    assert today([plan], utc(2026, 6, 11, 20), PARIS) == (plan,)  # 22:00 11 June local
    assert today([plan], utc(2026, 6, 11, 22, 30), PARIS) == ()  # 00:30 12 June local


def test_today_depends_on_the_zone() -> None:
    """00:30 on 10 June in Paris is still 9 June in UTC: only the Paris day holds the plan."""
    plan = make_plan(id="morning", when=utc(2026, 6, 10, 5), duration=timedelta(hours=2))
    now = utc(2026, 6, 9, 22, 30)
    assert today([plan], now, PARIS) == (plan,)
    assert today([plan], now, UTC) == ()


def test_day_bounds_follow_dst() -> None:
    """The local day of the spring change in Paris is 23 hours long."""
    start, end = day_bounds(utc(2026, 3, 29, 12), PARIS)
    assert (start, end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))


def test_today_includes_a_zero_length_window_starting_that_day() -> None:
    """A plan with no duration is today's when its start is today."""
    plan = make_plan(duration=timedelta(0))
    assert today([plan], utc(2026, 12, 15), UTC) == (plan,)
    assert today([plan], utc(2026, 12, 16), UTC) == ()


def test_upcoming_is_not_started_plans_soonest_first() -> None:
    """Upcoming lists plans with `when` after now, sorted; running and past ones are not."""
    past = make_plan(id="past", when=utc(2026, 1, 1))
    soon = make_plan(id="soon", when=utc(2026, 12, 20))
    later = make_plan(id="later", when=utc(2027, 1, 5))
    now_running = make_plan(id="running", when=utc(2026, 12, 15, 10))
    plans = [later, past, now_running, soon]
    assert upcoming(plans, utc(2026, 12, 15, 12)) == (soon, later)
    assert running(plans, utc(2026, 12, 15, 12)) == (now_running,)


# --- describe_countdown -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=14), "in 14 days"),
        (timedelta(days=1, hours=4), "in 1 day 4h"),
        (timedelta(days=2, hours=3, minutes=40), "in 2 days 4h"),
        (timedelta(hours=23, minutes=59, seconds=45), "in 1 day"),
        (timedelta(hours=3, minutes=20), "in 3h 20m"),
        (timedelta(hours=4), "in 4h"),
        (timedelta(minutes=15), "in 15m"),
        (timedelta(minutes=14, seconds=50), "in 15m"),
        (timedelta(seconds=20), "now"),
        (timedelta(0), "now"),
        (-timedelta(seconds=29), "now"),
        (-timedelta(hours=2), "started 2h ago"),
        (-timedelta(hours=1, minutes=5), "started 1h 5m ago"),
        (-timedelta(days=3), "started 3 days ago"),
    ],
)
def test_describe_countdown(delta: timedelta, text: str) -> None:
    """Time to `when` in words: days (+hours) from a day on, h/m under, "now" within 30s."""
    assert describe_countdown(delta) == text
