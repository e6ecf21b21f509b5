"""The roster: who is on shift, what ``!roster`` shows, whom a deploy's start pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from deploybot.config import config_from_mapping
from deploybot.deployday.roster import (
    ON_SHIFT_MARK,
    NoFirefightChannelError,
    OnShift,
    firefight_channel,
    nick_key,
    on_shift,
    on_shift_nicks,
    pagees,
    roster_line,
    roster_lines,
    shift_hours,
    team_members_on_shift,
    team_named,
    teams_of,
)
from deploybot.plans.model import Consumer, Roster, Shift
from deploybot.store import Store
from tests.planfactory import make_plan, make_shift, utc

WHEN = utc(2026, 12, 15, 13)
UTC = ZoneInfo("UTC")
CONFIG = config_from_mapping({})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "db.sqlite3") as opened:
        yield opened


def test_firefight_channel_is_the_plans_own_else_the_configs_pattern() -> None:
    """A plan's ``roster.channel`` wins; else the pattern is filled with its service and
    id; a pattern that makes no channel name of them gives None (and the error that says
    so names the plan and the fix)."""
    config = config_from_mapping({"firefight_channel": "#{service}-{id}"})
    own = make_plan(roster=Roster(channel="#own"))
    assert firefight_channel(own, config) == "#own"
    assert firefight_channel(make_plan(roster=Roster()), config) == "#pkgdb2-pkgdb2-2.0"
    comma = make_plan(id="pkg-1", service="pkg,db", roster=Roster())
    assert firefight_channel(comma, config) is None
    assert str(NoFirefightChannelError(comma, config)) == (
        "pkg-1 has no firefighting channel: the firefight_channel pattern '#{service}-{id}' "
        "makes no channel name of service 'pkg,db'; give the plan a roster.channel"
    )


def test_on_shift_follows_the_shift_times() -> None:
    """At 14:00 pingou (13–17) and dgilmore (whole window) are on shift; at 17:00 the
    infrastructure shift has passed to abadger1999 (a shift's end is exclusive)."""
    plan = make_plan(when=WHEN)
    assert on_shift(plan, WHEN + timedelta(hours=1)) == (
        OnShift("infrastructure", "pingou"),
        OnShift("rel-eng", "dgilmore"),
    )
    assert on_shift(plan, WHEN + timedelta(hours=4)) == (
        OnShift("infrastructure", "abadger1999"),
        OnShift("rel-eng", "dgilmore"),
    )
    assert on_shift(plan, WHEN - timedelta(minutes=1)) == ()
    assert on_shift(plan, WHEN + timedelta(hours=8)) == ()


def test_someone_in_two_teams_is_one_nick_on_shift() -> None:
    """A person on two teams' shifts is two OnShift entries but one nick (any case)."""
    end = WHEN + timedelta(hours=8)
    plan = make_plan(
        when=WHEN,
        roster=Roster(
            shifts=(
                Shift("infrastructure", ("Pingou",), WHEN, end),
                Shift("qa", ("pingou", "adamw"), WHEN, end),
            )
        ),
    )
    assert len(on_shift(plan, WHEN)) == 3
    assert on_shift_nicks(plan, WHEN) == ("Pingou", "adamw")
    assert nick_key("Pingou[m]") == "pingou[m]"


def test_teams_and_team_members_on_shift() -> None:
    """Teams come from shifts, ``teams`` and consumers; members are those on shift now; a
    team is named in any case and shown as the plan spells it."""
    plan = make_plan(when=WHEN, teams=("rel-eng", "docs"))
    assert teams_of([plan]) == ("infrastructure", "rel-eng", "docs")
    later = WHEN + timedelta(hours=5)
    assert team_members_on_shift([plan], "Infrastructure", later) == ("abadger1999",)
    assert team_members_on_shift([plan], "docs", later) == ()
    assert team_named([plan], "REL-ENG") == "rel-eng"
    assert team_named([plan], "pingou") is None


def test_roster_lines_mark_who_is_on_shift() -> None:
    """``!roster`` lists each team with its shifts' hours (untimed: whole window) and
    marks those on shift now with ●; the escalation list closes it."""
    plan = make_plan(when=WHEN)
    lines = roster_lines(plan, WHEN + timedelta(hours=1), CONFIG)
    assert lines == [
        f"pkgdb2-2.0 roster (#pkgdb2-firefight), {ON_SHIFT_MARK} = on shift now:",
        "infrastructure: ●pingou 13:00–17:00 UTC; abadger1999 17:00–21:00 UTC",
        "rel-eng: ●dgilmore whole window",
        "escalation: nirik",
    ]


def test_roster_lines_before_the_deploy_and_in_another_timezone() -> None:
    """Before the window the heading says when it starts and nobody is marked; hours
    are shown in the display timezone; after the window the heading says it ended."""
    plan = make_plan(when=WHEN)
    paris = config_from_mapping({"timezone": "Europe/Paris"})
    lines = roster_lines(plan, WHEN - timedelta(days=1), paris)
    assert (
        lines[0] == "pkgdb2-2.0 roster (#pkgdb2-firefight), deploy starts Tue 2026-12-15 14:00 CET:"
    )
    assert lines[1] == "infrastructure: pingou 14:00–18:00 CET; abadger1999 18:00–22:00 CET"
    assert ON_SHIFT_MARK not in "".join(lines)
    after = roster_lines(plan, WHEN + timedelta(days=1), CONFIG)
    assert (
        after[0] == "pkgdb2-2.0 roster (#pkgdb2-firefight), deploy ended Tue 2026-12-15 21:00 UTC:"
    )
    assert ON_SHIFT_MARK not in "".join(after)


def test_roster_lines_without_shifts_or_channel() -> None:
    """A plan without a roster says so plainly, and one without a firefighting channel
    says that."""
    plan = make_plan(when=WHEN, roster=Roster(channel="#own"))
    assert roster_lines(plan, WHEN, CONFIG) == ["pkgdb2-2.0 roster (#own): nobody yet"]
    nowhere = make_plan(when=WHEN, service="pkg,db", roster=Roster(escalation=("nirik",)))
    assert roster_lines(nowhere, WHEN, CONFIG) == [
        "pkgdb2-2.0 roster (no channel): nobody yet",
        "escalation: nirik",
    ]
    assert roster_line(nowhere, WHEN, CONFIG) == (
        "pkgdb2-2.0 roster (no channel): nobody yet | escalation: nirik"
    )


def test_roster_line_is_the_roster_lines_in_one_line() -> None:
    """``!deploy`` shows the roster by the same rules as ``!roster`` (heading, teams with
    ● and their hours, escalation), joined into one line."""
    plan = make_plan(when=WHEN)
    now = WHEN + timedelta(hours=1)
    assert roster_line(plan, now, CONFIG) == (
        f"pkgdb2-2.0 roster (#pkgdb2-firefight), {ON_SHIFT_MARK} = on shift now: "
        "infrastructure: ●pingou 13:00–17:00 UTC; abadger1999 17:00–21:00 UTC | "
        "rel-eng: ●dgilmore whole window | escalation: nirik"
    )


def test_shift_hours_across_midnight() -> None:
    """An end on another day than the start carries its date."""
    shift = make_shift("infrastructure", ["pingou"], utc(2026, 12, 15, 22), utc(2026, 12, 16, 2))
    assert shift_hours(shift, UTC) == "22:00–2026-12-16 02:00 UTC"


def test_pagees_are_on_shift_roster_consumers_and_uses_registrants(store: Store) -> None:
    """At opening: the roster on shift, the consumer contacts and the ``!uses``
    registrants, each once whatever the case, with every reason."""
    plan = make_plan(
        when=WHEN,
        consumers=(
            Consumer(name="rel-eng compose scripts", team="rel-eng", contact="dgilmore"),
            Consumer(name="fedocal", team="apps", contact="Threebean"),
            Consumer(name="orphaned thing", team="", contact=""),
        ),
    )
    store.add_consumer("pkgdb2", "threebean", None, "my script", WHEN - timedelta(days=3))
    store.add_consumer("pkgdb2", "ralph", None, None, WHEN - timedelta(days=2))
    store.add_consumer("fas", "nobody-else", None, None, WHEN - timedelta(days=2))
    found = pagees(plan, store, WHEN)
    assert [(p.nick, p.why, p.team) for p in found] == [
        ("pingou", "infrastructure shift", "infrastructure"),
        ("dgilmore", "rel-eng shift; consumer: rel-eng compose scripts", "rel-eng"),
        ("Threebean", "consumer: fedocal; !uses: my script", "apps"),
        ("ralph", "!uses", None),
    ]
