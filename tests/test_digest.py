"""deploybot.deployday.digest: the day's incident digest — counts, times to acknowledge and repair,
open incidents with owners — per deploy, as IRC lines and as JSON-ready data."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploybot.deployday.digest import (
    MAX_SHORT_LINES,
    OTHER_TEAM,
    OUTSIDE_TITLE,
    Digest,
    Section,
    build_digest,
    day_period,
    digest_for_day,
    digest_to_dict,
    full_lines,
    short_lines,
)
from deploybot.plans.model import Consumer, Roster, Shift
from deploybot.store import Incident, IncidentSummary, Store
from deploybot.store.incidents import _SUMMARIES_BETWEEN_SQL
from tests.planfactory import make_plan, utc

DAY = date(2026, 12, 15)  # make_plan's default deploy: 13:00-21:00 UTC that day
PARIS = ZoneInfo("Europe/Paris")
M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "deploybot.sqlite3") as opened:
        yield opened


def record(
    store: Store,
    reported: datetime,
    *,
    nick: str = "alice",
    deploy: str | None = "pkgdb2-2.0",
    service: str = "pkgdb2",
    text: str = "acl page returns 500",
    take: tuple[str, timedelta] | None = None,
    ack: tuple[str, timedelta] | None = None,
    fix: tuple[str, timedelta] | None = None,
) -> int:
    """Report an incident through the store, then take / ack (a note) / fix it
    ``(nick, after)``."""
    number = store.report_incident(
        service=service,
        text=text,
        reporter_nick=nick,
        reporter_account=nick,
        channel=f"#{service}-firefight",
        now=reported,
        deploy_id=deploy,
    ).number
    if take is not None:
        store.take(number, take[0], take[0], reported + take[1])
    if ack is not None:
        store.add_note(number, ack[0], ack[0], "looking", reported + ack[1])  # acks, no owner
    if fix is not None:
        store.fix(number, fix[0], fix[0], reported + fix[1])
    return number


def hand_made(
    number: int,
    reported: datetime,
    *,
    acked: timedelta | None = None,
    fixed: timedelta | None = None,
    deploy: str | None = "pkgdb2-2.0",
    nick: str = "alice",
    owner: str | None = None,
) -> Incident:
    """An :class:`Incident` built by hand (no store), times relative to ``reported``."""
    return Incident(
        number=number,
        service="pkgdb2",
        deploy_id=deploy,
        minutes_into_deploy=None,
        text=f"problem {number}",
        reporter_nick=nick,
        reporter_account=None,
        channel="#pkgdb2-firefight",
        reported_at=reported,
        acknowledged_at=None if acked is None else reported + acked,
        acknowledged_by=None if acked is None else "nirik",
        owner=owner,
        fixed_at=None if fixed is None else reported + fixed,
        fixed_by=None if fixed is None else "nirik",
        timeline=(),
    )


def spelled_out(lines: Sequence[str]) -> None:
    """No line shows a Python empty value or an empty list."""
    for line in lines:
        assert "None" not in line and "[]" not in line and "()" not in line, line


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


LIST_KEYS = {"sections", "open", "teams"}


def check_json_shape(data: dict[str, Any]) -> None:
    """Lists are lists (never null), times are UTC with Z, durations whole seconds."""
    json.dumps(data)  # JSON-ready as it is
    for path, value in walk(data):
        key = path.rpartition(".")[2]
        if key in LIST_KEYS:
            assert isinstance(value, list), path
        if key in {"start", "end", "as_of", "reported_at"}:
            assert isinstance(value, str) and value.endswith("Z"), path
            assert datetime.fromisoformat(value).utcoffset() == timedelta(0), path
        if key.endswith("_seconds") or key == "seconds":
            assert value is None or type(value) is int, path


# -- numbers, through a real store --------------------------------------------------------


def test_a_deploy_day_counts_medians_means_and_open_incidents(store: Store) -> None:
    """Five incidents on pkgdb2's deploy day: acks after 2, 4, 10, 6 minutes (even count:
    median 5m, mean 5m30s), three repairs of 30m, 1h, 2h (odd count: median 1h, mean
    1h10m); the two still open at midnight are listed with their owners; the incident
    open for 8 hours is the slowest."""
    plan = make_plan()
    day = utc(2026, 12, 15)
    record(store, day + 13 * H + 10 * M, take=("nirik", 2 * M), fix=("nirik", 30 * M))
    record(store, day + 14 * H, nick="dgilmore", take=("pingou", 4 * M), fix=("pingou", H))
    record(store, day + 15 * H, ack=("abadger1999", 10 * M), fix=("abadger1999", 2 * H))
    record(store, day + 16 * H, nick="bob", text="login loops", take=("nirik", 6 * M))
    record(store, day + 20 * H, nick="carol")

    digest = digest_for_day(store, [plan], DAY, UTC)

    assert not digest.empty and digest.complete
    (section,) = digest.sections
    assert (section.title, section.deploy_id) == ("pkgdb2-2.0", "pkgdb2-2.0")
    assert (section.reported, section.fixed) == (5, 3)
    assert [(i.number, i.owner) for i in section.open] == [(4, "nirik"), (5, None)]
    assert (section.acknowledged, section.repaired) == (4, 3)
    assert section.median_ack == 5 * M
    assert section.mean_ack == 5 * M + timedelta(seconds=30)
    assert section.median_repair == H
    assert section.mean_repair == H + 10 * M
    assert section.slowest is not None
    assert (section.slowest.incident.number, section.slowest.time) == (4, 8 * H)
    assert not section.slowest.fixed
    assert section.teams == (("rel-eng", 1), (OTHER_TEAM, 4))
    assert digest.totals.reported == 5 and digest.totals.median_ack == 5 * M

    assert short_lines(digest, UTC) == [
        "incident digest Tue 2026-12-15 (UTC): 1 deploy, 5 reported, 3 fixed, 2 open",
        "pkgdb2-2.0: 5 reported, 3 fixed, 2 open (#4 nirik, #5 unowned)"
        " · ack median 5m · repair median 1h",
    ]
    full = full_lines(digest, UTC)
    assert full == [
        "incident digest Tue 2026-12-15 (UTC)",
        "pkgdb2-2.0 (window Tue 2026-12-15 13:00 UTC to 21:00 UTC): 5 reported, 3 fixed,"
        " 2 open at the end of the day",
        "  time to acknowledge: median 5m, mean 5m (4 of 5 acknowledged)",
        "  time to repair: median 1h, mean 1h 10m (3 of 5 fixed)",
        "  slowest: #4 pkgdb2: login loops — still open after 8h",
        "  reporters by team: rel-eng 1, other 4",
        "  open: #4 pkgdb2: login loops — owner nirik, open 8h"
        " (reported by bob 16:00 UTC, deploy pkgdb2-2.0)",
        "  open: #5 pkgdb2: acl page returns 500 — no owner, open 4h"
        " (reported by carol 20:00 UTC, deploy pkgdb2-2.0)",
    ]
    data = digest_to_dict(digest)
    check_json_shape(data)
    (served,) = data["sections"]
    assert served["median_ack_seconds"] == 300 and served["mean_ack_seconds"] == 330
    assert served["median_repair_seconds"] == 3600 and served["mean_repair_seconds"] == 4200
    assert [item["number"] for item in served["open"]] == [4, 5]
    assert served["open"][1] == {
        "number": 5,
        "service": "pkgdb2",
        "deploy_id": "pkgdb2-2.0",
        "text": "acl page returns 500",
        "reporter": "carol",
        "owner": None,
        "reported_at": "2026-12-15T20:00:00Z",
        "age_seconds": 4 * 3600,
    }
    assert served["slowest"] == {
        "number": 4,
        "service": "pkgdb2",
        "text": "login loops",
        "seconds": 8 * 3600,
        "fixed": False,
    }
    assert served["teams"] == [
        {"team": "rel-eng", "reported": 1},
        {"team": "other", "reported": 4},
    ]
    assert data["start"] == "2026-12-15T00:00:00Z" and data["end"] == "2026-12-16T00:00:00Z"


def test_unacknowledged_incidents_are_left_out_of_the_ack_figures(store: Store) -> None:
    """An incident nobody but its reporter touched (own note, own fix) has no ack time:
    it counts in ``reported`` and its repair in the repair figures, not in the ack
    median, which is over the acknowledged ones only ("3 of 4 acknowledged")."""
    day = utc(2026, 12, 15)
    record(store, day + 13 * H, take=("nirik", 3 * M), fix=("nirik", 20 * M))
    record(store, day + 14 * H, ack=("pingou", 7 * M))
    record(store, day + 15 * H, nick="bob", take=("nirik", 20 * M))
    lonely = record(store, day + 16 * H, nick="bob", fix=("bob", 40 * M))
    store.add_note(lonely, "bob", "bob", "my own note", day + 16 * H + M)
    assert store.get(lonely).acknowledged_at is None

    digest = digest_for_day(store, [make_plan()], DAY, UTC)

    (section,) = digest.sections
    assert (section.reported, section.acknowledged, section.repaired) == (4, 3, 2)
    assert section.median_ack == 7 * M  # of 3, 7, 20 minutes
    assert section.mean_ack == 10 * M
    assert section.median_repair == 30 * M  # of 20 and 40 minutes
    assert "(3 of 4 acknowledged)" in full_lines(digest, UTC)[2]


def test_nothing_acknowledged_or_fixed_is_spelled_out(store: Store) -> None:
    """Incidents but no ack and no fix yet: the figures say so in words, and are null in
    the JSON; nothing reads "None"."""
    record(store, utc(2026, 12, 15, 14))
    digest = digest_for_day(store, [make_plan()], DAY, UTC)
    (section,) = digest.sections
    assert section.median_ack is None and section.mean_repair is None
    short = short_lines(digest, UTC)
    assert short[1].endswith("· none acknowledged · none repaired")
    full = full_lines(digest, UTC)
    assert "  time to acknowledge: no data (0 of 1 acknowledged)" in full
    assert "  time to repair: no data (0 of 1 fixed)" in full
    spelled_out(short + full)
    served = digest_to_dict(digest)["sections"][0]
    assert served["median_ack_seconds"] is None and served["mean_repair_seconds"] is None


# -- empty days ---------------------------------------------------------------------------


def test_a_day_with_no_deploy_and_no_incident_is_empty(store: Store) -> None:
    """No deploy meets the day and no incident concerns it: the digest is empty, says so
    in one line, and its JSON has empty lists, not nulls."""
    record(store, utc(2026, 12, 13, 10), fix=("nirik", H))  # fixed two days before
    record(store, utc(2026, 12, 16, 10))  # the next day
    other_day = make_plan(when=utc(2026, 12, 20, 13))

    digest = digest_for_day(store, [other_day], DAY, UTC)

    assert digest.empty
    assert digest.sections == ()
    assert short_lines(digest, UTC) == [
        "incident digest Tue 2026-12-15 (UTC): no deploys, no incidents"
    ]
    assert full_lines(digest, UTC) == short_lines(digest, UTC)
    data = digest_to_dict(digest)
    check_json_shape(data)
    assert data["empty"] is True and data["sections"] == []
    assert data["totals"]["open"] == [] and data["totals"]["teams"] == []
    assert data["totals"]["reported"] == 0 and data["totals"]["slowest"] is None


def test_a_deploy_without_incidents_has_a_section_of_zeros(store: Store) -> None:
    """A deploy day without any incident is not empty: its section has zero counts, no
    figures, and reads "no incidents"; there is no "outside deploys" section."""
    digest = digest_for_day(store, [make_plan()], DAY, UTC)

    assert not digest.empty
    (section,) = digest.sections
    assert section.quiet
    assert (section.reported, section.fixed, section.open) == (0, 0, ())
    assert section.median_ack is None and section.slowest is None and section.teams == ()
    assert short_lines(digest, UTC) == [
        "incident digest Tue 2026-12-15 (UTC): 1 deploy, no incidents",
        "pkgdb2-2.0: no incidents",
    ]
    assert full_lines(digest, UTC)[1].endswith(": no incidents")
    spelled_out(full_lines(digest, UTC))
    data = digest_to_dict(digest)
    check_json_shape(data)
    served = data["sections"][0]
    assert served["open"] == [] and served["teams"] == [] and served["median_ack_seconds"] is None


# -- days and midnight ----------------------------------------------------------------------


def test_incidents_spanning_midnight_in_paris(store: Store) -> None:
    """Days are Paris days (midnight to midnight CET = 23:00 to 23:00 UTC).  An incident
    reported at 23:30 on the 14th and fixed at 01:00 on the 15th is reported and still
    open in the 14th's digest, and counted in the 15th's ``fixed`` but not its
    ``reported``; its repair time belongs to the 14th (reported then), which was built
    with it still open, so it enters no repair median.  One reported at 00:30 Paris on
    the 15th (still the 14th in UTC) belongs to the 15th."""

    def paris(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 12, day, hour, minute, tzinfo=PARIS)

    spanning = record(store, paris(14, 23, 30), deploy=None, fix=("nirik", 90 * M))
    record(store, paris(15, 0, 30), deploy=None, take=("nirik", 5 * M), fix=("nirik", H))
    late = record(store, paris(15, 23), deploy=None, take=("pingou", 2 * M), fix=("pingou", 90 * M))

    before = digest_for_day(store, [], date(2026, 12, 14), PARIS)
    (section,) = before.sections
    assert section.title == OUTSIDE_TITLE and section.deploy_id is None
    assert (section.reported, section.fixed) == (1, 0)
    assert [i.number for i in section.open] == [spanning]
    assert section.repaired == 0 and section.median_repair is None
    assert section.slowest is not None and section.slowest.time == 30 * M
    assert before.end == datetime(2026, 12, 14, 23, tzinfo=UTC)

    digest = digest_for_day(store, [], DAY, PARIS)
    (section,) = digest.sections
    assert digest.start == datetime(2026, 12, 14, 23, tzinfo=UTC)
    assert (section.reported, section.fixed) == (2, 2)  # early, late / spanning, early
    assert [i.number for i in section.open] == [late]  # fixed at 00:30 on the 16th
    assert section.repaired == 1 and section.median_repair == H  # early only
    assert section.acknowledged == 2 and section.median_ack == timedelta(seconds=210)
    short = short_lines(digest, PARIS)
    assert (
        short[0] == "incident digest Tue 2026-12-15 (CET): 0 deploys, 2 reported, 2 fixed, 1 open"
    )
    assert short[1].startswith(f"{OUTSIDE_TITLE}: 2 reported, 2 fixed, 1 open (#{late} pingou)")
    spelled_out(full_lines(digest, PARIS))


def test_day_bounds_follow_daylight_saving_time() -> None:
    """The day the clocks go back in Paris lasts 25 hours, from 22:00 to 23:00 UTC."""
    start, end = day_period(date(2026, 10, 25), PARIS)
    assert start == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert end == datetime(2026, 10, 25, 23, tzinfo=UTC)


def test_boundaries_of_the_day() -> None:
    """Reported at midnight counts for that day, at the next midnight for the next one;
    an incident fixed exactly at the end of its day is neither open at the end nor in
    that day's ``fixed`` (the fix is the next day's), but its repair time is counted
    (fixed by the end of the day: ``fixed_at <= end``)."""
    start, end = day_period(DAY, UTC)
    at_start = hand_made(1, start, fixed=H)
    fixed_at_end = hand_made(2, end - 2 * H, fixed=2 * H)
    at_end = hand_made(3, end)
    digest = build_digest([at_start, fixed_at_end, at_end], [make_plan()], DAY, UTC)
    (section,) = digest.sections
    assert section.reported == 2
    assert section.fixed == 1
    assert section.open == ()
    assert section.repaired == 2 and section.median_repair == 1.5 * H
    next_day = build_digest([fixed_at_end], [], DAY + timedelta(days=1), UTC)
    assert next_day.totals.fixed == 1 and next_day.totals.reported == 0


# -- where incidents go -------------------------------------------------------------------


def test_incidents_without_a_deploy_or_of_another_day_are_outside_deploys(store: Store) -> None:
    """Sections: the day's deploys by start time (even the quiet one), then "outside
    deploys" for incidents with no deploy or a deploy of another day; an incident still
    open from an earlier day shows there as open; totals add the sections up."""
    morning = make_plan(id="fas-3.0", service="fas", when=utc(2026, 12, 15, 8), duration=2 * H)
    quiet = make_plan(id="ask-1.1", service="ask", when=utc(2026, 12, 15, 22), duration=H)
    pkgdb = make_plan()
    elsewhere = make_plan(id="koji-2.0", service="koji", when=utc(2026, 12, 1, 10))
    day = utc(2026, 12, 15)
    record(store, day + 8 * H + 5 * M, deploy="fas-3.0", service="fas", fix=("nirik", H))
    record(store, day + 14 * H, fix=("nirik", 30 * M))
    record(store, day + 11 * H, deploy=None, service="wiki", take=("smooge", 5 * M))
    record(store, day + 12 * H, deploy="koji-2.0", service="koji")
    old = record(store, utc(2026, 12, 1, 11), deploy="koji-2.0", service="koji")

    digest = digest_for_day(store, [pkgdb, elsewhere, quiet, morning], DAY, UTC)

    titles = [s.title for s in digest.sections]
    assert titles == ["fas-3.0", "pkgdb2-2.0", "ask-1.1", OUTSIDE_TITLE]
    fas, pkgdb2, ask, outside = digest.sections
    assert (fas.reported, fas.fixed, len(fas.open)) == (1, 1, 0)
    assert (pkgdb2.reported, pkgdb2.fixed, len(pkgdb2.open)) == (1, 1, 0)
    assert ask.quiet
    assert outside.deploy_id is None and outside.window is None
    assert (outside.reported, outside.fixed) == (2, 0)
    assert [i.number for i in outside.open] == [3, 4, old]
    assert outside.slowest is not None and outside.slowest.incident.number == 3  # open 13h
    totals = digest.totals
    assert (totals.reported, totals.fixed, len(totals.open)) == (4, 2, 3)
    assert totals.median_repair == 45 * M
    short = short_lines(digest, UTC)
    assert short[0].endswith(": 3 deploys, 4 reported, 2 fixed, 3 open")
    assert short[3] == "ask-1.1: no incidents"
    assert short[4].startswith(
        f"{OUTSIDE_TITLE}: 2 reported, 0 fixed, 3 open (#3 smooge, #4 unowned, #{old} unowned)"
    )
    full = full_lines(digest, UTC)
    assert "all incidents: 4 reported, 2 fixed, 3 open at the end of the day" in full
    assert any(
        line.startswith("  open: #5 koji:") and "Tue 2026-12-01 11:00" in line for line in full
    )
    spelled_out(short + full)
    check_json_shape(digest_to_dict(digest))


def test_reporters_are_counted_by_team_from_the_roster_and_consumers() -> None:
    """A reporter's team comes from the section's roster shifts (nicks in any case), then
    its consumers' contacts, then the other deploys of the day; anyone else is "other",
    listed last."""
    pkgdb = make_plan()  # shifts: pingou, abadger1999 (infrastructure), dgilmore (rel-eng)
    docs = make_plan(
        id="docs-1.0",
        when=utc(2026, 12, 15, 9),
        duration=2 * H,
        consumers=(Consumer(name="docs build", team="docs", contact="Randy"),),
        roster=Roster(
            shifts=(
                Shift("qa", ("adamw",), utc(2026, 12, 15, 9), utc(2026, 12, 15, 11)),
                Shift("rel-eng", ("pingou",), utc(2026, 12, 15, 9), utc(2026, 12, 15, 11)),
            )
        ),
    )
    start = utc(2026, 12, 15, 13)
    incidents = [
        hand_made(1, start, nick="PINGOU"),
        hand_made(2, start, nick="abadger1999"),
        hand_made(3, start, nick="randy"),
        hand_made(4, start, nick="adamw"),
        hand_made(5, start, nick="stranger"),
        hand_made(6, start, nick="Stranger2"),
        hand_made(7, utc(2026, 12, 15, 10), nick="pingou", deploy="docs-1.0"),
    ]
    digest = build_digest(incidents, [pkgdb, docs], DAY, UTC)
    docs_section, pkgdb_section = digest.sections
    assert pkgdb_section.teams == (("infrastructure", 2), ("docs", 1), ("qa", 1), ("other", 2))
    assert docs_section.teams == (("rel-eng", 1),)
    assert digest.totals.teams == (
        ("infrastructure", 2),
        ("docs", 1),
        ("qa", 1),
        ("rel-eng", 1),
        ("other", 2),
    )
    assert "  reporters by team: infrastructure 2, docs 1, qa 1, other 2" in full_lines(digest, UTC)


def test_the_slowest_is_the_longest_repair_or_the_longest_open() -> None:
    """Slowest: the longest time to repair among the day's reported incidents, where one
    still open counts with its time open so far; equal times go to the lower number;
    incidents carried over from an earlier day are not candidates."""
    start, _ = day_period(DAY, UTC)
    carried = hand_made(1, start - 5 * 24 * H)
    fixed_long = hand_made(2, start + H, fixed=5 * H)
    open_short = hand_made(3, start + 21 * H)  # open 3h at midnight
    tie = hand_made(4, start + 2 * H, fixed=5 * H)
    digest = build_digest([carried, fixed_long, open_short, tie], [], DAY, UTC)
    slowest = digest.totals.slowest
    assert slowest is not None and (slowest.incident.number, slowest.fixed) == (2, True)
    assert "  slowest: #2 pkgdb2: problem 2 — fixed after 5h" in full_lines(digest, UTC)
    digest = build_digest([carried, open_short], [], DAY, UTC)
    slowest = digest.totals.slowest
    assert slowest is not None and slowest.incident.number == 3 and slowest.time == 3 * H


def test_as_of_describes_the_day_so_far(store: Store) -> None:
    """``as_of`` (the posting time, or ``!digest`` during the day) is the moment shown:
    open incidents' ages are counted to it, the header says "as of"; what happens after
    it (a later report, a later fix) counts as not happened yet."""
    day = utc(2026, 12, 15)
    record(store, day + 14 * H, take=("nirik", 5 * M))
    record(store, day + 15 * H, fix=("nirik", 2 * H))  # fixed at 17:00
    record(store, day + 19 * H)  # after 16:00
    as_of = day + 16 * H

    digest = digest_for_day(store, [make_plan()], DAY, UTC, as_of=as_of)

    assert digest.as_of == as_of and not digest.complete
    (section,) = digest.sections
    assert (section.reported, section.fixed) == (2, 0)
    assert [i.number for i in section.open] == [1, 2]
    assert section.repaired == 0
    assert short_lines(digest, UTC)[0].startswith(
        "incident digest Tue 2026-12-15 (UTC) as of 16:00"
    )
    full = full_lines(digest, UTC)
    assert full[1].endswith("2 open at 16:00 UTC")
    assert any("owner nirik, open 2h" in line for line in full)
    assert digest_to_dict(digest)["as_of"] == "2026-12-15T16:00:00Z"
    whole = digest_for_day(store, [make_plan()], DAY, UTC, as_of=day + 3 * 24 * H)
    assert whole.as_of == whole.end and whole.complete  # clamped to the end of the day


def test_incidents_of_other_days_are_ignored() -> None:
    """build_digest takes any incidents: those fixed before the day or reported after it
    change nothing."""
    start, end = day_period(DAY, UTC)
    noise = [hand_made(1, start - 3 * H, fixed=H), hand_made(2, end + H)]
    digest = build_digest(noise, [], DAY, UTC)
    assert digest.empty


# -- the short form -----------------------------------------------------------------------


def test_short_form_fits_six_lines_with_many_deploys() -> None:
    """Nine deploys and incidents outside them: six lines, the busiest sections shown in
    digest order, the others summed up on the last line; the counts still add up."""
    plans = [
        make_plan(id=f"svc{n}-1.0", service=f"svc{n}", when=utc(2026, 12, 15, n + 1), duration=H)
        for n in range(9)
    ]
    incidents = []
    number = 0
    for n in range(9):
        for k in range(n % 4):  # sections with 0, 1, 2, 3 incidents
            number += 1
            incidents.append(
                hand_made(number, utc(2026, 12, 15, n + 1, 10 + k), deploy=f"svc{n}-1.0")
            )
    number += 1
    incidents.append(hand_made(number, utc(2026, 12, 15, 12), deploy=None, fixed=H))
    digest = build_digest(incidents, plans, DAY, UTC)
    assert len(digest.sections) == 10

    lines = short_lines(digest, UTC)

    assert len(lines) == MAX_SHORT_LINES
    assert lines[0].endswith(f": 9 deploys, {number} reported, 1 fixed, {number - 1} open")
    shown = [line.partition(":")[0] for line in lines[1:-1]]
    assert shown == ["svc2-1.0", "svc3-1.0", "svc6-1.0", "svc7-1.0"]  # 2, 3, 2, 3 open
    rest = [s for s in digest.sections if s.title not in shown]
    assert lines[-1] == (
        f"and {len(rest)} more sections: {sum(s.reported for s in rest)} reported, "
        f"{sum(s.fixed for s in rest)} fixed, {sum(len(s.open) for s in rest)} open"
    )
    spelled_out(lines)


def test_short_form_names_at_most_three_open_incidents_per_section() -> None:
    """A section with many open incidents names the first three (by number), then "+N
    more"."""
    start = utc(2026, 12, 15, 13)
    incidents = [hand_made(n, start + n * M, owner="nirik" if n % 2 else None) for n in range(1, 8)]
    line = short_lines(build_digest(incidents, [make_plan()], DAY, UTC), UTC)[1]
    assert "7 open (#1 nirik, #2 unowned, #3 nirik, +4 more)" in line


# -- the lean store read -------------------------------------------------------------------


def test_summaries_are_the_days_incidents_without_timelines(store: Store) -> None:
    """Store.incident_summaries_between (the digest's read) returns the incidents open at
    some moment of the day or fixed in it, with the values of the whole incidents, as
    lean tuples; and a digest from whole Incident objects equals the one from the
    summaries."""
    day = utc(2026, 12, 15)
    record(store, day - 40 * 24 * H, deploy=None)  # open for weeks
    record(store, day - 3 * H, fix=("nirik", 5 * H))  # fixed during the day
    record(store, day - 3 * 24 * H, fix=("nirik", 4 * 24 * H))  # spans the whole day
    record(store, day - 5 * H, fix=("nirik", H))  # fixed before: left out
    record(store, day + 2 * H, take=("nirik", M), fix=("pingou", H))
    record(store, day + 23 * H, ack=("pingou", 10 * M), fix=("pingou", 2 * H))
    record(store, day + 24 * H)  # the next day: left out
    end = day + 24 * H

    summaries = sorted(store.incident_summaries_between(day, end))
    whole = [
        incident
        for incident in store.list_incidents()
        if incident.reported_at < end and (incident.fixed_at is None or incident.fixed_at >= day)
    ]

    assert [s.number for s in summaries] == [i.number for i in whole] == [1, 2, 3, 5, 6]
    for summary, incident in zip(summaries, whole, strict=True):
        assert isinstance(summary, IncidentSummary)
        for field in IncidentSummary._fields:
            assert getattr(summary, field) == getattr(incident, field), field
        assert summary.reported_at.tzinfo is not None
    plans = [make_plan()]
    from_summaries = build_digest(summaries, plans, DAY, UTC)
    from_incidents = build_digest(whole, plans, DAY, UTC)
    assert digest_to_dict(from_summaries) == digest_to_dict(from_incidents)
    assert short_lines(from_summaries, UTC) == short_lines(from_incidents, UTC)


def test_the_lean_read_checks_its_arguments_at_once(store: Store) -> None:
    """The query runs when incident_summaries_between is called, so a naive datetime is
    refused there, not later while the digest reads the rows."""
    with pytest.raises(ValueError, match="timezone-aware"):
        store.incident_summaries_between(datetime(2026, 12, 15), utc(2026, 12, 16))


def test_the_lean_read_searches_indexes_and_never_scans(store: Store) -> None:
    """EXPLAIN QUERY PLAN of the digest's read: three index range searches, no scan and
    no temporary b-tree (no UNION de-duplication, no sort), so its cost follows the
    number of incidents of the day, not the size of the table."""
    record(store, utc(2026, 12, 15, 10), fix=("nirik", H))
    params = store._between_params(utc(2026, 12, 15), utc(2026, 12, 16))
    plan = [
        row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + _SUMMARIES_BETWEEN_SQL, params)
    ]
    searches = [line for line in plan if "incidents" in line]
    assert len(searches) == 3, plan
    assert all(line.startswith("SEARCH incidents USING INDEX") for line in searches), plan
    assert not [line for line in plan if line.startswith("SCAN") or "TEMP B-TREE" in line], plan


# -- properties ---------------------------------------------------------------------------

ZONES = [UTC, PARIS, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")]
DAYS = [date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1), DAY]

incident_specs = st.lists(
    st.tuples(
        st.integers(-3 * 24 * 60, 2 * 24 * 60),  # reported, minutes from the day's start
        st.one_of(st.none(), st.integers(0, 600)),  # ack after, minutes
        st.one_of(st.none(), st.integers(0, 3 * 24 * 60)),  # fixed after, minutes
        st.sampled_from([None, "a", "b", "elsewhere"]),
        st.sampled_from(["pingou", "Dgilmore", "alice", "bob"]),
    ),
    max_size=40,
)


def _values(
    incidents: Sequence[Incident], start: datetime, cut: datetime, deploys: set[str | None]
) -> tuple[list[timedelta], list[timedelta]]:
    """The ack and repair times the documentation promises, computed plainly."""
    mine = [i for i in incidents if i.deploy_id in deploys and start <= i.reported_at < cut]
    acks = [
        i.acknowledged_at - i.reported_at
        for i in mine
        if i.acknowledged_at is not None and i.acknowledged_at <= cut
    ]
    repairs = [
        i.fixed_at - i.reported_at for i in mine if i.fixed_at is not None and i.fixed_at <= cut
    ]
    return acks, repairs


def _check_figures(section: Section, acks: list[timedelta], repairs: list[timedelta]) -> None:
    assert section.acknowledged == len(acks) and section.repaired == len(repairs)
    for values, median, mean in (
        (acks, section.median_ack, section.mean_ack),
        (repairs, section.median_repair, section.mean_repair),
    ):
        if not values:
            assert median is None and mean is None
            continue
        assert median is not None and mean is not None
        assert min(values) <= median <= max(values)
        assert min(values) <= mean <= max(values)


@settings(max_examples=200, deadline=None)
@given(
    specs=incident_specs,
    zone=st.sampled_from(ZONES),
    day=st.sampled_from(DAYS),
    as_of_minutes=st.one_of(st.none(), st.integers(-60, 26 * 60)),
)
def test_figures_hold_for_any_incidents(
    specs: list[tuple[int, int | None, int | None, str | None, str]],
    zone: tzinfo,
    day: date,
    as_of_minutes: int | None,
) -> None:
    """For random incidents, days, zones and as_of: each median and mean lies between the
    smallest and largest value it summarises; sections' counts add up to the totals and
    to the plain definitions (reported in the period, fixed in it, open at as_of); every
    open incident is in exactly one section; teams add up to the reported."""
    start, end = day_period(day, zone)
    plans = [
        make_plan(id="a", when=start + 2 * H, duration=3 * H),
        make_plan(id="b", when=start + 10 * H, duration=20 * H),
        make_plan(id="elsewhere", when=start - 10 * 24 * H, duration=H),
    ]
    incidents = [
        replace(
            hand_made(n, start + reported * M, deploy=deploy, nick=nick),
            acknowledged_at=None if ack is None else start + (reported + ack) * M,
            fixed_at=None if fix is None else start + (reported + max(fix, ack or 0)) * M,
        )
        for n, (reported, ack, fix, deploy, nick) in enumerate(specs, start=1)
    ]
    as_of = None if as_of_minutes is None else start + as_of_minutes * M
    digest = build_digest(incidents, plans, day, zone, as_of=as_of)
    cut = digest.as_of
    assert start <= cut <= end and digest.start == start and digest.end == end

    considered = [
        i for i in incidents if i.reported_at < cut and (i.fixed_at is None or i.fixed_at >= start)
    ]
    sections = digest.sections
    totals = digest.totals
    assert not digest.empty  # plans a and b meet the day
    assert [s.title for s in sections][:2] == ["a", "b"]
    assert sum(s.reported for s in sections) == totals.reported
    assert totals.reported == sum(1 for i in considered if i.reported_at >= start)
    assert sum(s.fixed for s in sections) == totals.fixed
    assert totals.fixed == sum(
        1 for i in considered if i.fixed_at is not None and start <= i.fixed_at < cut
    )
    open_numbers = [i.number for s in sections for i in s.open]
    assert sorted(open_numbers) == [i.number for i in totals.open]
    assert len(set(open_numbers)) == len(open_numbers)
    assert [i.number for i in totals.open] == [
        i.number for i in considered if i.fixed_at is None or i.fixed_at > cut
    ]
    for section in sections:
        assert sum(count for _, count in section.teams) == section.reported
        assert section.acknowledged <= section.reported
        assert section.repaired <= section.reported
        deploys: set[str | None] = {section.deploy_id} if section.deploy_id else {None, "elsewhere"}
        _check_figures(section, *_values(incidents, start, cut, deploys))
    _check_figures(totals, *_values(incidents, start, cut, {None, "a", "b", "elsewhere"}))
    lines = short_lines(digest, zone)
    assert 1 <= len(lines) <= MAX_SHORT_LINES
    spelled_out(lines + full_lines(digest, zone))
    check_json_shape(digest_to_dict(digest))


def test_digest_is_a_frozen_value() -> None:
    """A digest cannot be changed after it is built (it is shared by IRC, web and API)."""
    digest = build_digest([], [make_plan()], DAY, UTC)
    assert isinstance(digest, Digest)
    with pytest.raises(AttributeError):
        digest.day = DAY  # type: ignore[misc]
