"""Infrastructure freezes (issue 13): the freezes file and calendar, the readiness rule
``freeze``, freeze breaks with their approvals, the countdown's wording, the bus warning
and ``/api/v1/freezes``.

Each test uses a real core (SQLite under ``tmp_path``, plan files written with
``dump_plan``) with freezes put in force through its :class:`FreezeBook`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.bus.reactor import BusReactor
from deploybot.commands.base import Registry
from deploybot.commands.registry import build_registry
from deploybot.core import Core
from deploybot.deployday.countdowns import CountdownPoster
from deploybot.errors import PlanError
from deploybot.plans.files import dump_plan, load_text
from deploybot.plans.freezes import (
    Freeze,
    FreezeBook,
    freezes_from_ical,
    load_freezes_text,
)
from deploybot.plans.model import FreezeExemption
from deploybot.plans.policy import assess
from deploybot.store import Store
from deploybot.web.api import freezes_document, plan_to_dict
from deploybot.web.calendarfeed import calendar_feed
from deploybot.web.pages import deployment_page_of, front_page
from tests.apischema import schema_errors
from tests.fakes import RecordingOutbox
from tests.planfactory import badges_plan, make_plan, utc
from tests.test_busreactor import ansible
from tests.test_commands import Clock, make_core, say

PARIS = ZoneInfo("Europe/Paris")
# F42 Final freeze: Tue 2026-12-08 00:00 to Wed 2026-12-16 00:00 UTC (whole days).
FINAL = Freeze("F42 Final freeze", utc(2026, 12, 8), utc(2026, 12, 16), "freezes.yaml:1")
PKGDB2 = utc(2026, 12, 15, 13)  # the factory plan's window: 13:00–21:00 UTC


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 12, 1, 12))


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    """pkgdb2-2.0 (13:00–21:00 UTC on Dec 15) inside the F42 Final freeze; admins are the
    account alice and anyone at admin.test."""
    core = make_core(tmp_path, clock, [make_plan()])
    core.freezes.set_calendar([FINAL])
    yield core
    core.store.close()


@pytest.fixture
def registry() -> Registry:
    return build_registry()


def approved_break(store: Store, plan_id: str, now: datetime) -> None:
    """A freeze break for ``plan_id`` (F42 Final freeze) requested by bob and approved by
    alice and carol at ``now``."""
    store.request_freeze_break(
        plan_id=plan_id,
        freezes="F42 Final freeze",
        reason="it cannot wait",
        nick="bob",
        account="bob",
        mask="bob!bob@example.test",
        now=now,
    )
    for nick in ("alice", "carol"):
        store.approve_freeze_break(plan_id, nick=nick, account=nick, mask=f"{nick}!x@y", now=now)


# --- the freezes file --------------------------------------------------------------------


def test_dates_are_whole_days_in_the_configured_zone_and_times_keep_their_offset() -> None:
    """A date ``from`` starts at midnight in the zone, a date ``to`` includes that day; a
    time with an offset is that moment."""
    text = (
        "- {name: F42 Beta freeze, from: 2026-02-17, to: 2026-03-03}\n"
        "- name: F42 Final freeze\n"
        "  from: 2026-04-07T00:00:00-04:00\n"
        "  to: 2026-04-21T23:30:00+02:00\n"
    )
    beta, final = load_freezes_text(text, PARIS, "freezes.yaml")
    assert beta.start == utc(2026, 2, 16, 23)  # midnight in Paris (CET)
    assert beta.end == utc(2026, 3, 3, 23)  # the next midnight after 2026-03-03
    assert final.start == utc(2026, 4, 7, 4)
    assert final.end == utc(2026, 4, 21, 21, 30)
    assert (beta.origin, final.origin) == ("freezes.yaml:1", "freezes.yaml:2")


def test_a_freeze_file_with_errors_names_file_line_and_key() -> None:
    """Every problem of the file at once, each as FILE:LINE: KEY: message."""
    text = (
        "- {name: ok, from: 2026-02-17, to: 2026-03-03}\n"
        "- name: backwards\n"
        "  from: 2026-05-01\n"
        "  to: 2026-04-01\n"
        "- {name: x, from: tomorrow, to: 2026-01-01, until: 1}\n"
        "- {from: 2026-01-01, to: 2026-01-02}\n"
        "- {name: naive, from: 2026-01-01T10:00, to: 2026-01-02}\n"
    )
    with pytest.raises(PlanError) as raised:
        load_freezes_text(text, PARIS, "freezes.yaml")
    shown = str(raised.value).splitlines()
    assert shown == [
        "freezes.yaml:4: [1].to: the freeze ends before it starts (to ≤ from)",
        "freezes.yaml:5: [2].until: unknown key 'until' in a freeze; valid keys: name, from, to",
        "freezes.yaml:5: [2].from: 'tomorrow' is neither a date (2026-04-07) nor a date and "
        "time with a UTC offset (2026-04-07T00:00:00Z)",
        "freezes.yaml:6: [3].name: missing: a freeze needs name, from and to",
        "freezes.yaml:7: [4].from: '2026-01-01T10:00' has no UTC offset; write e.g. "
        "2026-01-01T10:00:00Z",
    ]


def test_the_file_must_be_a_list() -> None:
    with pytest.raises(PlanError, match=r"freezes.yaml:1: -: the freezes file is a list"):
        load_freezes_text("name: F42\n", PARIS, "freezes.yaml")
    assert load_freezes_text("", PARIS) == ()


def test_a_bad_edit_keeps_the_last_good_file(tmp_path: Path) -> None:
    """Reloaded like plans: a file that goes bad keeps its last good freezes, and says why."""
    path = tmp_path / "freezes.yaml"
    path.write_text("- {name: F42 Final freeze, from: 2026-12-08, to: 2026-12-15}\n")
    book = FreezeBook(path, ZoneInfo("UTC"))
    assert book.reload() == ()
    assert [f.name for f in book.freezes] == ["F42 Final freeze"]
    path.write_text("- {name: F42 Final freeze, from: 2026-12-08}\n")
    assert book.changed()
    problems = book.reload()
    assert [str(p) for p in problems] == [
        f"{path}:1: [0].to: missing: a freeze needs name, from and to"
    ]
    assert [f.name for f in book.freezes] == ["F42 Final freeze"]


def test_calendar_events_named_like_a_freeze_are_freezes() -> None:
    """All-day events are whole days in the zone (DTEND exclusive); other events are not
    freezes."""
    feed = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:F42 Final Freeze\r\n"
        b"DTSTART;VALUE=DATE:20260407\r\nDTEND;VALUE=DATE:20260422\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:2\r\nSUMMARY:F42 Final release\r\n"
        b"DTSTART;VALUE=DATE:20260428\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:3\r\nSUMMARY:Mass rebuild freeze\r\n"
        b"DTSTART:20260101T100000Z\r\nDTEND:20260102T100000Z\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    found = freezes_from_ical(feed, PARIS)
    assert [(f.name, f.start, f.end) for f in found] == [
        ("Mass rebuild freeze", utc(2026, 1, 1, 10), utc(2026, 1, 2, 10)),
        ("F42 Final Freeze", utc(2026, 4, 6, 22), utc(2026, 4, 21, 22)),
    ]
    with pytest.raises(ValueError, match="not an iCalendar feed"):
        freezes_from_ical(b"<html>", PARIS)


# --- the readiness rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "inside"),
    [
        (utc(2026, 12, 8), utc(2026, 12, 16), True),  # the window inside
        (utc(2026, 12, 15, 20), utc(2026, 12, 16), True),  # straddling its start
        (utc(2026, 12, 1), utc(2026, 12, 15, 14), True),  # straddling its end
        (utc(2026, 12, 15, 21), utc(2026, 12, 20), False),  # starts as the window ends
        (utc(2026, 12, 1), utc(2026, 12, 15, 13), False),  # ends as the window starts
    ],
)
def test_a_plan_overlapping_a_freeze_misses_the_freeze_rule(
    core: Core, start: datetime, end: datetime, inside: bool
) -> None:
    """Inside or straddling: the seventh rule, missing; outside: no such rule."""
    core.freezes.set_calendar([Freeze("F42 Final freeze", start, end)])
    readiness = core.readiness(core.plans[0])
    rules = [check.rule for check in readiness.checks]
    assert ("freeze" in rules) is inside
    assert readiness.ready is not inside


def test_an_offset_window_is_compared_as_a_moment(core: Core) -> None:
    """A freeze ending at 23:59+14:00 ended before a window at 13:00Z the same day."""
    plan = make_plan(when=utc(2026, 12, 15, 13))
    book = FreezeBook()
    book.set_calendar(
        load_freezes_text("- {name: F, from: 2026-12-01, to: 2026-12-15T23:59:00+14:00}\n", PARIS)
    )
    assert book.over(plan.when, plan.end) == ()
    book.set_calendar(
        load_freezes_text("- {name: F, from: 2026-12-01, to: 2026-12-15T23:59:00-12:00}\n", PARIS)
    )
    assert [f.name for f in book.over(plan.when, plan.end)] == ["F"]


def test_an_exempt_plan_in_a_freeze_still_needs_the_rule(core: Core) -> None:
    """A freeze covers every change: a minor release in it is NOT READY until approved;
    an outage fix is exempt."""
    minor = make_plan(major=False, api_breaks=())
    standing = core.freeze_standing(minor)
    readiness = assess(minor, 14, standing)
    assert readiness.verdict == "NOT READY"
    assert [c.rule for c in readiness.missing] == ["freeze"]
    fix = make_plan(
        major=False, api_breaks=(), freeze_exempt=FreezeExemption("outage-fix", "koji down")
    )
    fixed = assess(fix, 14, core.freeze_standing(fix))
    assert fixed.verdict == "EXEMPT"
    assert "exempt as an outage fix (koji down)" in fixed.checks[0].reason


# --- freeze breaks -----------------------------------------------------------------------


async def test_two_admins_approve_and_the_rule_is_met(core: Core, registry: Registry) -> None:
    """bob requests; alice (account) and carol (admin mask) approve: the rule is met, the
    break is stored with who and when."""
    plan = core.plans[0]
    assert not core.readiness(plan).ready
    asked = await say(
        core, registry, "!freezebreak pkgdb2-2.0 the acl fix", nick="bob", account="bob"
    )
    assert asked[0] == "bob: sent you 7 lines"
    assert asked[1].startswith("freeze break #1 requested for pkgdb2-2.0 (F42 Final freeze)")
    assert (
        "Subject: Freeze break request: pkgdb2 2.0 (pkgdb2-2.0) during the F42 Final freeze"
        in asked
    )
    first = await say(core, registry, "!approve pkgdb2-2.0")
    assert first == [
        "freeze break #1 for pkgdb2-2.0: approved by alice (1 of 2); one more admin: "
        "!approve pkgdb2-2.0"
    ]
    assert not core.readiness(plan).ready
    second = await say(core, registry, "!approve #1", nick="carol", account=None, host="admin.test")
    assert second == [
        "freeze break #1 for pkgdb2-2.0 is approved by alice, carol: the freeze rule is met"
    ]
    readiness = core.readiness(plan)
    assert readiness.ready
    assert readiness.checks[-1].reason.endswith(": freeze break #1 approved by alice, carol")
    stored = core.store.freeze_break_for("pkgdb2-2.0")
    assert stored is not None and stored.approved_at is not None
    assert [(a.nick, a.account, a.person) for a in stored.approvals] == [
        ("alice", "alice", "account:alice"),
        ("carol", None, "host:admin.test"),
    ]
    listed = await say(core, registry, "!freezebreaks")
    assert listed[0].startswith("#1 pkgdb2-2.0 (F42 Final freeze) approved by alice, carol")


async def test_a_nick_impostor_cannot_approve(core: Core, registry: Registry) -> None:
    """The nick alice without the account alice (nor an admin host) is no admin."""
    await say(core, registry, "!freezebreak pkgdb2-2.0 why", nick="bob", account="bob")
    refused = await say(core, registry, "!approve pkgdb2-2.0", nick="alice", account=None)
    assert len(refused) == 1 and "admin" in refused[0]
    stored = core.store.freeze_break_for("pkgdb2-2.0")
    assert stored is not None and stored.approvals == ()


async def test_the_requester_cannot_approve_nor_one_admin_twice(
    core: Core, registry: Registry
) -> None:
    """alice requests: her approval is refused; carol approves, then carol again (another
    nick, same host) is refused: the break still needs a second person."""
    await say(core, registry, "!freezebreak pkgdb2-2.0 the acl fix")
    mine = await say(core, registry, "!approve pkgdb2-2.0")
    assert mine == ["you requested freeze break #1: two other admins approve it"]
    await say(core, registry, "!approve pkgdb2-2.0", nick="carol", account=None, host="admin.test")
    again = await say(
        core, registry, "!approve pkgdb2-2.0", nick="carol_", account=None, host="admin.test"
    )
    assert again == ["you already approved freeze break #1 (as carol); it needs another admin"]
    assert not core.readiness(core.plans[0]).ready


async def test_a_plan_out_of_every_freeze_needs_no_break(core: Core, registry: Registry) -> None:
    core.freezes.set_calendar([])
    assert await say(core, registry, "!freezebreak pkgdb2-2.0 why") == [
        "pkgdb2-2.0 is not in a freeze: no freeze break needed"
    ]


async def test_freeze_says_whether_we_are_frozen_now(
    core: Core, registry: Registry, clock: Clock
) -> None:
    clock.now = utc(2026, 12, 10, 12)
    (line,) = await say(core, registry, "!freeze")
    assert line.startswith(
        "⚠ frozen now: F42 Final freeze until Wed 2026-12-16 00:00 UTC (5 days 12h left)"
    )
    assert line.endswith("; deploys in it: pkgdb2-2.0")
    clock.now = utc(2026, 12, 20)
    assert await say(core, registry, "!freeze") == ["not frozen now; no freeze planned"]


# --- what the bot says -------------------------------------------------------------------


def test_countdowns_in_a_freeze_say_so_first(core: Core, clock: Clock) -> None:
    """Without approval: no approved freeze break; with one: who approved it."""
    outbox = RecordingOutbox()
    poster = CountdownPoster(core, outbox)
    clock.now = PKGDB2 - timedelta(days=7)
    poster.post_due(clock.now)
    assert (
        outbox.to("#fedora-admin")[0] == "⚠ IN FREEZE (F42 Final freeze) — no approved freeze break"
    )
    approved_break(core.store, "pkgdb2-2.0", clock.now)
    outbox.clear()
    clock.now = PKGDB2 - timedelta(days=3)
    poster.post_due(clock.now)
    assert outbox.to("#fedora-admin")[0] == (
        "⚠ IN FREEZE (F42 Final freeze) — freeze break approved by alice, carol"
    )


def test_a_playbook_start_in_a_freeze_without_approval_warns_and_is_recorded(
    core: Core,
) -> None:
    """The admin channel is told, and the deploy records it (the post-mortem reads it)."""
    plan = badges_plan(PKGDB2)
    core.book.directory.joinpath("badges-1.0.yaml").write_text(dump_plan(plan))
    core.book.reload()
    outbox = RecordingOutbox()
    reactor = BusReactor(core, outbox)
    at = PKGDB2 + timedelta(minutes=5)
    reactor.handle(ansible("start", "m-1", at=at), now=at)
    warning = "⚠ deploy during the F42 Final freeze without an approved freeze break"
    assert f"{warning} (badges-1.0)" in outbox.to("#fedora-admin")
    events = core.store.deploy_events("badges-1.0")
    assert [(e.kind, e.text) for e in events] == [
        ("playbook-start", "deploy of badges started by ralph (groups/badges-backend.yml)"),
        ("freeze-warning", warning),
    ]
    assert events[0].at == at


def test_the_api_lists_freezes_and_breaks(core: Core, clock: Clock) -> None:
    clock.now = utc(2026, 12, 10)
    document = freezes_document(core)
    assert document["frozen_now"] is True
    assert document["freezes"] == [
        {
            "name": "F42 Final freeze",
            "start": "2026-12-08T00:00:00Z",
            "end": "2026-12-16T00:00:00Z",
            "origin": "freezes.yaml:1",
            "now": True,
            "deployments": ["pkgdb2-2.0"],
        }
    ]
    assert document["freeze_breaks"] == []
    deployment = plan_to_dict(core.plans[0], core, clock.now)
    standing = deployment["freeze"]
    assert standing["in_freeze"] is True and standing["cleared"] is False
    assert standing["freeze_break"] is None
    core.store.request_freeze_break(
        plan_id="pkgdb2-2.0",
        freezes="F42 Final freeze",
        reason="r",
        nick="bob",
        account=None,
        mask="bob!b@h",
        now=clock.now,
    )
    core.store.approve_freeze_break(
        "pkgdb2-2.0", nick="alice", account="alice", mask="alice!a@h2", now=clock.now
    )
    document = freezes_document(core)
    assert [(b["state"], len(b["approvals"])) for b in document["freeze_breaks"]] == [("open", 1)]
    assert schema_errors("freezes", document) == []
    deployment = plan_to_dict(core.plans[0], core, clock.now)
    assert deployment["freeze"]["freeze_break"]["requested_by"] == "bob"
    assert schema_errors("deployment", {"as_of": document["as_of"], "deployment": deployment}) == []


def test_freeze_exempt_reads_back_and_only_outage_fix_exists() -> None:
    """``freeze_exempt: {kind: outage-fix, reason}`` round-trips through the plan file;
    another kind is an error naming its line and key."""
    plan = make_plan(freeze_exempt=FreezeExemption("outage-fix", "koji is down"))
    assert load_text(dump_plan(plan), "pkgdb2-2.0.yaml") == plan
    text = dump_plan(make_plan()) + "freeze_exempt: {kind: urgent, reason: please}\n"
    with pytest.raises(PlanError) as raised:
        load_text(text, "p.yaml")
    (problem,) = raised.value.problems
    assert (problem.key, problem.line) == ("freeze_exempt.kind", text.count("\n"))
    assert "the only exemption from a freeze is outage-fix" in problem.message


def test_the_calendar_feed_and_the_pages_show_the_freeze(core: Core, clock: Clock) -> None:
    """/calendar.ics has an event per freeze (with the deploys in it); / says we are
    frozen; the deploy page shows its freeze and that no freeze break is approved."""
    clock.now = utc(2026, 12, 10)
    feed = calendar_feed(
        core.plans,
        now=clock.now,
        freezes=core.freezes.freezes,
        readiness=core.readiness,
    )
    calendar = icalendar.Calendar.from_ical(feed)
    (event,) = [e for e in calendar.walk("VEVENT") if str(e["SUMMARY"]).startswith("FREEZE")]
    assert str(event["SUMMARY"]) == "FREEZE: F42 Final freeze"
    assert event.decoded("DTSTART") == FINAL.start and event.decoded("DTEND") == FINAL.end
    assert "Deploys in it: pkgdb2-2.0" in str(event["DESCRIPTION"])
    deploy = next(e for e in calendar.walk("VEVENT") if str(e["UID"]) == "pkgdb2-2.0@deploybot")
    assert "MISSING: an approved freeze break" in str(deploy["DESCRIPTION"])
    assert "⚠ infrastructure freeze now: F42 Final freeze until" in front_page(core)
    page = deployment_page_of(core, "pkgdb2-2.0")
    assert page is not None
    assert "⚠ IN FREEZE (F42 Final freeze) — no approved freeze break" in page


@given(
    name=st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"),
        min_size=1,
        max_size=40,
    ).filter(lambda text: text.strip() != ""),
    first=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    days=st.integers(min_value=0, max_value=60),
)
def test_any_named_freeze_reads_back(name: str, first: date, days: int) -> None:
    """A freeze written with a quoted name and two dates reads back as that name over whole
    days in the zone, whatever the name holds (quotes, colons, #, YAML words)."""
    quoted = json.dumps(name, ensure_ascii=False)  # a YAML double-quoted scalar
    last = first + timedelta(days=days)
    (freeze,) = load_freezes_text(f"- {{name: {quoted}, from: {first}, to: {last}}}\n", PARIS)
    assert freeze.name == name
    assert freeze.start == datetime.combine(first, time(0), PARIS).astimezone(UTC)
    assert freeze.end == datetime.combine(last + timedelta(days=1), time(0), PARIS).astimezone(UTC)
