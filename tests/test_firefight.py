"""Deploy day: opening, pages, acknowledgements, escalation, ``!broke`` and closing.

Each test builds a real SQLite store under ``tmp_path``, a PlanBook over plan files
written with ``dump_plan``, and a :class:`RecordingOutbox` that records every call the
core makes on the transport (the boundary of these tests).  Time is passed in.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from deploybot.commands.base import Registry, Request
from deploybot.commands.deployday import NOT_CONNECTED
from deploybot.commands.dispatch import dispatch
from deploybot.commands.registry import build_registry
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.deployday.digestpost import DigestPoster
from deploybot.deployday.firefight import JOB_PREFIX, TOPIC_LIMIT, Firefight, SweepReport
from deploybot.deployday.paging import (
    BOT_SENDER,
    ESCALATION_JOB_PREFIX,
    NobodyOnShiftError,
    Target,
    highlight_lines,
    page_targets,
)
from deploybot.deployday.roster import NoFirefightChannelError
from deploybot.errors import DeploybotError
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.plans.model import Plan, Roster, Shift
from deploybot.store import Page, Store
from deploybot.web.api import plan_to_dict
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, make_shift, utc

WHEN = utc(2026, 12, 15, 13)  # pkgdb2-2.0: 13:00–21:00 UTC
END = WHEN + timedelta(hours=8)
FIRE = "#pkgdb2-firefight"
ADMIN = "#fedora-admin"
ADMINS = "account:alice mask:*!*@admin.test"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build_core(tmp_path: Path, clock: Clock, plans: list[Plan]) -> Core:
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir(exist_ok=True)
    for plan in plans:
        (plans_dir / f"{plan.id}.yaml").write_text(dump_plan(plan), encoding="utf-8")
    config = config_from_mapping({"admins": ADMINS, "admin_channel": ADMIN})
    book = PlanBook(plans_dir)
    report = book.reload()
    assert not report.problems, report.problems
    store = Store.open(tmp_path / "db.sqlite3")
    return Core(config=config, store=store, book=book, clock=clock)


def restart(core: Core, tmp_path: Path) -> tuple[Firefight, RecordingOutbox]:
    """Close and reopen the store and start a new Firefight: what a restart keeps."""
    core.store.close()
    core.store = Store.open(tmp_path / "db.sqlite3")
    outbox = RecordingOutbox()
    return DeployDay(core, outbox).firefight, outbox


@pytest.fixture
def clock() -> Clock:
    return Clock(WHEN - timedelta(days=1))


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    core = build_core(tmp_path, clock, [make_plan(when=WHEN)])
    core.store.add_consumer("pkgdb2", "threebean", None, "my script", WHEN - timedelta(days=3))
    yield core
    core.store.close()


@pytest.fixture
def outbox() -> RecordingOutbox:
    return RecordingOutbox()


@pytest.fixture
def day(core: Core, outbox: RecordingOutbox) -> DeployDay:
    """The bot connected: deploy day on the recording transport."""
    return DeployDay(core, outbox)


@pytest.fixture
def fire(day: DeployDay) -> Firefight:
    return day.firefight


def plan_of(core: Core) -> Plan:
    plan = core.book.get("pkgdb2-2.0")
    assert plan is not None
    return plan


# --- opening ---------------------------------------------------------------------------


def test_open_joins_sets_topic_posts_breaks_and_pages_everyone(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """Opening joins the channel, sets a topic (≤ 300 bytes) with breaks, how to report
    and who is on shift, posts the API breaks, and pages the on-shift roster, the
    consumer contacts and the !uses registrants: a stored page each (escalating after
    10m), a private message each, and one coalesced highlight in the firefighting and
    admin channels.  Off-shift people are not paged."""
    assert fire.open(plan_of(core), WHEN, reason="scheduled") is True
    assert outbox.calls[0] == ("join", FIRE)
    ((_, channel, topic),) = outbox.kinds("topic")
    assert channel == FIRE
    assert topic.startswith("pkgdb2-2.0: pkgdb2 2.0 deploy 13:00–21:00 UTC")
    assert "⚠ 1 API break: !breaks pkgdb2-2.0" in topic
    assert "report: !broke pkgdb2 what broke" in topic
    assert topic.endswith("on shift: pingou dgilmore")
    assert len(topic.encode()) <= TOPIC_LIMIT
    in_channel = outbox.to(FIRE)
    assert any(line.startswith("⚠ API BREAK: /api/packager/acl") for line in in_channel)
    assert "migration: treat null as an empty list" in "".join(in_channel)

    pages = core.store.list_pages()
    assert [p.target_nick for p in pages] == ["pingou", "dgilmore", "threebean"]
    for page in pages:
        assert page.plan_id == "pkgdb2-2.0"
        assert page.sender_nick == BOT_SENDER
        assert page.escalate_at == WHEN + timedelta(minutes=10)
        assert page.message == f"deploy of pkgdb2 2.0 started: firefighting in {FIRE}"
        (private,) = outbox.to(page.target_nick)
        assert private.startswith(f"[page #{page.number}] deploy of pkgdb2 2.0 started")
        assert private.endswith(f"reply !ack {page.number}")
    assert "(rel-eng shift; consumer: rel-eng compose scripts)" in outbox.to("dgilmore")[0]
    assert "(!uses: my script)" in outbox.to("threebean")[0]
    assert outbox.to("abadger1999") == []

    highlight = (
        "pingou dgilmore threebean: pkgdb2 2.0 deploy started — join #pkgdb2-firefight; "
        "!ack to acknowledge"
    )
    assert highlight in in_channel
    assert outbox.to(ADMIN) == [highlight]


def test_opening_again_after_a_restart_rejoins_without_paging(
    core: Core, fire: Firefight, tmp_path: Path
) -> None:
    """A second open (a restart during the window) joins the channel again and refreshes
    the topic, returns False, and pages nobody and posts nothing."""
    fire.open(plan_of(core), WHEN, reason="scheduled")
    again, outbox = restart(core, tmp_path)
    assert again.open(plan_of(core), WHEN + timedelta(minutes=30), reason="scheduled") is False
    assert [call[0] for call in outbox.calls] == ["join", "topic"]
    assert len(core.store.list_pages()) == 3


def test_a_page_that_cannot_be_stored_is_not_claimed_and_is_sent_at_the_next_sweep(
    core: Core, fire: Firefight, outbox: RecordingOutbox, tmp_path: Path
) -> None:
    """The once-per-deploy claim and the page are one transaction: when the database
    refuses threebean's page (a trigger, set from a second connection, raises on that
    INSERT), the others are still paged, threebean's claim is not used up and nothing is
    sent to them; once the database works again, the next sweep pages threebean (a
    consumer, not on any shift) exactly once, and nobody else again."""
    other = sqlite3.connect(tmp_path / "db.sqlite3")
    other.execute(
        "CREATE TRIGGER refuse_threebean BEFORE INSERT ON pages"
        " WHEN NEW.target_nick = 'threebean'"
        " BEGIN SELECT RAISE(ABORT, 'simulated database failure'); END"
    )
    other.commit()
    assert fire.open(plan_of(core), WHEN, reason="scheduled") is True
    assert [p.target_nick for p in core.store.list_pages()] == ["pingou", "dgilmore"]
    assert not core.store.claimed("firefight-page:pkgdb2-2.0:threebean")
    assert outbox.to("threebean") == []

    other.execute("DROP TRIGGER refuse_threebean")
    other.commit()
    other.close()
    report = fire.sweep(WHEN + timedelta(minutes=1))
    assert [p.target_nick for p in report.shift_pages] == ["threebean"]
    assert [p.target_nick for p in core.store.list_pages()] == ["pingou", "dgilmore", "threebean"]
    (private,) = outbox.to("threebean")
    assert private.startswith("[page #3] deploy of pkgdb2 2.0 started")
    fire.sweep(WHEN + timedelta(minutes=2))
    assert len(core.store.list_pages()) == 3


def test_open_after_the_window_is_refused(core: Core, fire: Firefight) -> None:
    """Nothing opens once the window is over: an error says when it ended."""
    with pytest.raises(DeploybotError, match="ended at 21:00 UTC; nothing to open"):
        fire.open(plan_of(core), END, reason="late")


def test_topic_shortens_the_on_shift_list_to_fit(tmp_path: Path, clock: Clock) -> None:
    """With many people on shift the topic stays ≤ 300 bytes and points to !oncall."""
    people = tuple(f"sysadmin{i:02d}" for i in range(40))
    plan = make_plan(when=WHEN, roster=Roster(shifts=(Shift("infrastructure", people, WHEN, END),)))
    core = build_core(tmp_path, clock, [plan])
    try:
        topic = DeployDay(core, RecordingOutbox()).firefight.topic(plan_of(core), WHEN)
        assert len(topic.encode()) <= TOPIC_LIMIT
        assert topic.endswith("more: !oncall")
        assert "sysadmin00" in topic
    finally:
        core.store.close()


def test_highlights_are_split_into_lines_that_fit() -> None:
    """Many nicks make several highlight lines, each within budget, each nick once."""
    nicks = [f"person{i:02d}" for i in range(60)]
    lines = highlight_lines(nicks, "deploy started", budget=120)
    assert len(lines) > 1
    assert all(len(line.encode()) <= 120 for line in lines)
    named = [nick for line in lines for nick in line.split(":")[0].split()]
    assert named == nicks


# --- acknowledgement and escalation ------------------------------------------------------


def test_ack_stops_escalation(core: Core, fire: Firefight, outbox: RecordingOutbox) -> None:
    """An acknowledged page is not escalated; the others are."""
    fire.open(plan_of(core), WHEN, reason="scheduled")
    acked = core.store.ack_pages("dgilmore", WHEN + timedelta(minutes=2), account="dgilmore")
    assert [p.target_nick for p in acked] == ["dgilmore"]
    outbox.clear()
    escalated = fire.pager.escalate_due(WHEN + timedelta(minutes=10))
    assert sorted(p.target_nick for p in escalated) == ["pingou", "threebean"]
    assert outbox.to("dgilmore") == []


def test_unacknowledged_page_escalates_exactly_once(
    core: Core, fire: Firefight, outbox: RecordingOutbox, tmp_path: Path
) -> None:
    """Ten minutes on, an unacknowledged page is repeated to its target once, paged to
    the escalation list (a stored page that never escalates itself) and announced in
    the firefighting channel; later sweeps, even after a restart, do not repeat it."""
    fire.open(plan_of(core), WHEN, reason="scheduled")
    core.store.ack_pages("pingou", WHEN + timedelta(minutes=1), account=None)
    core.store.ack_pages("threebean", WHEN + timedelta(minutes=1), account=None)
    assert fire.pager.escalate_due(WHEN + timedelta(minutes=9)) == []
    outbox.clear()
    due = WHEN + timedelta(minutes=10)
    (page,) = fire.pager.escalate_due(due)
    assert page.target_nick == "dgilmore"
    (repeat,) = outbox.to("dgilmore")
    assert repeat.startswith(f"[page #{page.number}, repeated] deploy of pkgdb2 2.0 started")
    assert "not acknowledged after 10m" in repeat
    assert outbox.to(FIRE) == [
        f"⚠ page #{page.number} to dgilmore not acknowledged after 10m — escalating to nirik"
    ]
    (to_nirik,) = core.store.list_pages(target_nick="nirik")
    assert to_nirik.escalate_at is None
    assert to_nirik.message.startswith(f"page #{page.number} to dgilmore not acknowledged")
    (private,) = outbox.to("nirik")
    assert private.endswith(f"reply !ack {to_nirik.number}")
    assert core.store.get_page(page.number).escalated_at == due

    outbox.clear()
    assert fire.pager.escalate_due(due + timedelta(minutes=1)) == []
    again, after_restart = restart(core, tmp_path)
    assert again.pager.escalate_due(due + timedelta(hours=3)) == []
    assert outbox.calls == [] and after_restart.calls == []


def test_escalations_of_one_deploy_are_coalesced(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """Three pages due together make one page to the escalation nick and one line."""
    fire.open(plan_of(core), WHEN, reason="scheduled")
    outbox.clear()
    escalated = fire.pager.escalate_due(WHEN + timedelta(minutes=12))
    assert len(escalated) == 3
    (line,) = outbox.to(FIRE)
    assert line.startswith("⚠ pages #1 to pingou, #2 to dgilmore, #3 to threebean")
    assert line.endswith("not acknowledged after 12m — escalating to nirik")
    assert len(core.store.list_pages(target_nick="nirik")) == 1


def test_escalation_without_an_escalation_list_goes_to_the_admin_channel(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """A page outside any deploy is repeated and reported in the admin channel."""
    now = WHEN - timedelta(hours=2)
    (page,) = fire.pager.page("alice", "pingou", "are you around?", now, ())
    outbox.clear()
    assert fire.pager.escalate_due(now + timedelta(minutes=10)) == [page]
    assert outbox.to(ADMIN) == [
        f"⚠ page #{page.number} to pingou not acknowledged after 10m — repeated; "
        "no escalation list (roster.escalation) to page"
    ]


# --- pages by hand -----------------------------------------------------------------------


def test_an_identical_pending_page_is_not_sent_again(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """The same text to the same person (any case) while the first page is pending: no
    new page, no message, no escalation; the pending page is named instead. Another
    text, or the same once acknowledged, pages again."""
    now = WHEN - timedelta(hours=2)
    (first,) = fire.pager.page("alice", "pingou", "are you around?", now, ())
    outbox.clear()
    repeats: list[Page] = []
    assert fire.pager.page("bob", "PINGOU", "are you around?", now, (), repeats) == []
    assert repeats == [first]
    assert outbox.calls == []
    assert len(core.store.list_pages(target_nick="pingou")) == 1
    (other,) = fire.pager.page("alice", "pingou", "db is slow", now, ())
    core.store.ack_pages("pingou", now, first.number)
    (again,) = fire.pager.page("alice", "pingou", "are you around?", now, ())
    assert again.number not in (first.number, other.number)


def test_page_team_pages_only_members_on_shift(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """``!page infrastructure`` at 14:00 pages pingou (on shift), not abadger1999
    (later shift): stored page, private message, line in the firefighting channel."""
    now = WHEN + timedelta(hours=1)
    pages = fire.pager.page("alice", "infrastructure", "db is slow", now, (plan_of(core),))
    assert [(p.target_nick, p.team, p.plan_id) for p in pages] == [
        ("pingou", "infrastructure", "pkgdb2-2.0")
    ]
    n = pages[0].number
    assert outbox.to("pingou") == [f"[page #{n} from alice] db is slow — reply !ack {n}"]
    assert outbox.to(FIRE) == [
        f"pingou: infrastructure paged by alice (#{n}): db is slow — !ack to acknowledge"
    ]
    assert outbox.to("abadger1999") == []


def test_page_targets_are_each_team_member_on_shift_once_with_their_first_deploy() -> None:
    """Someone on shift for the team in two running deploys is paged once, for the first;
    members of other teams and off-shift members are not; a nick is paged for the deploy
    that names them (else the first running one)."""
    first = make_plan(when=WHEN)
    second = make_plan(id="fas-3.0", service="fas", when=WHEN)
    now = WHEN + timedelta(hours=1)
    assert page_targets("infra", "infrastructure", (first, second), now) == [
        Target("pingou", "infrastructure", first)
    ]
    assert page_targets("nirik", None, (second, first), now) == [Target("nirik", None, second)]
    assert page_targets("kevin", None, (), now) == [Target("kevin", None, None)]


def test_page_team_with_nobody_on_shift_is_an_error(core: Core, fire: Firefight) -> None:
    """A team with nobody on shift (or no deploy running) is an error; nothing stored."""
    with pytest.raises(NobodyOnShiftError, match="nobody of team rel-eng is on shift now"):
        fire.pager.page("alice", "REL-ENG", "hello", WHEN - timedelta(hours=1), ())
    assert core.store.list_pages() == ()


def test_page_nick_without_running_deploy_goes_to_admin_channel(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """A nick page with no deploy running has no plan and is shown in the admin channel."""
    (page,) = fire.pager.page("alice", "nirik", "ping", WHEN - timedelta(hours=1), ())
    assert page.plan_id is None and page.team is None
    assert outbox.to(ADMIN) == [f"nirik: page #{page.number} from alice: ping — !ack 1"]


# --- during the window -------------------------------------------------------------------


def test_next_shift_is_paged_when_it_starts_and_only_once(
    core: Core, fire: Firefight, outbox: RecordingOutbox, tmp_path: Path
) -> None:
    """At 17:00 the sweep pages abadger1999 (whose shift starts) and updates the topic;
    a later sweep, even after a restart, does not page again."""
    fire.sweep(WHEN)
    outbox.clear()
    report = fire.sweep(WHEN + timedelta(hours=4))
    assert [p.target_nick for p in report.shift_pages] == ["abadger1999"]
    assert outbox.to("abadger1999")[0].startswith("[page #4] your shift on the pkgdb2 2.0")
    ((_, _, topic),) = outbox.kinds("topic")
    assert topic.endswith("on shift: abadger1999 dgilmore")
    assert fire.sweep(WHEN + timedelta(hours=4, minutes=1)).shift_pages == ()
    again, _ = restart(core, tmp_path)
    assert again.sweep(WHEN + timedelta(hours=4, minutes=2)).shift_pages == ()
    assert len(core.store.list_pages(target_nick="abadger1999")) == 1


async def test_broke_during_the_deploy_highlights_the_on_shift_roster(
    day: DeployDay, outbox: RecordingOutbox, clock: Clock
) -> None:
    """``!broke`` 42 minutes into the deploy highlights who is on shift in the
    firefighting channel (opening it first if the sweep has not yet)."""
    clock.now = WHEN + timedelta(minutes=42)
    lines = await say(day, build_registry(), "!broke pkgdb2 the acl page returns 500")
    assert lines == ["recorded incident #1 (pkgdb2, deploy pkgdb2-2.0 +42 min); fix with !fixed 1"]
    assert ("join", FIRE) in outbox.calls
    assert outbox.to(FIRE)[-1] == (
        "⚠ incident #1 (pkgdb2, +42 min): the acl page returns 500 — "
        "on shift: pingou dgilmore; !take 1"
    )


async def test_broke_with_nobody_on_shift_names_the_escalation_list(
    tmp_path: Path, clock: Clock
) -> None:
    """When nobody is on shift the incident line names the escalation list instead."""
    plan = make_plan(
        when=WHEN,
        roster=Roster(
            shifts=(make_shift("infrastructure", ["pingou"], WHEN, WHEN + timedelta(hours=1)),),
            escalation=("nirik",),
        ),
    )
    core = build_core(tmp_path, clock, [plan])
    try:
        outbox = RecordingOutbox()
        clock.now = WHEN + timedelta(hours=2)
        await say(DeployDay(core, outbox), build_registry(), "!broke pkgdb2 login loops")
        assert outbox.to(FIRE)[-1] == (
            "⚠ incident #1 (pkgdb2, +120 min): login loops — "
            "nobody on shift — escalation: nirik; !take 1"
        )
    finally:
        core.store.close()


class BrokenOutbox(RecordingOutbox):
    def post(self, target: str, text: str) -> None:
        raise RuntimeError("transport exploded")


async def test_broke_is_recorded_even_if_the_alert_fails(
    core: Core, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure while alerting the firefighting channel is logged with its traceback;
    the reporter still hears that the incident was recorded."""
    clock.now = WHEN + timedelta(minutes=5)
    lines = await say(DeployDay(core, BrokenOutbox()), build_registry(), "!broke pkgdb2 acl 500")
    assert lines[0].startswith("recorded incident #1")
    assert core.store.get(1).text == "acl 500"
    assert "alerting the firefighting channel of incident 1 failed" in caplog.text


async def test_broke_outside_a_deploy_highlights_nobody(
    day: DeployDay, outbox: RecordingOutbox, clock: Clock
) -> None:
    """An incident outside any deploy window is recorded without any channel post."""
    clock.now = WHEN - timedelta(days=1)
    await say(day, build_registry(), "!broke pkgdb2 slow pages")
    assert outbox.calls == []


# --- closing -----------------------------------------------------------------------------


def test_close_posts_summary_sets_topic_and_parts_once(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """At the end: a summary (incidents reported/fixed/open with owners, pages), the
    topic "closed: …", and the bot leaves; closing again does nothing."""
    fire.open(plan_of(core), WHEN, reason="scheduled")
    store = core.store
    for text in ("acl page 500", "search is slow"):
        store.report_incident(
            service="pkgdb2",
            text=text,
            reporter_nick="alice",
            reporter_account=None,
            channel=FIRE,
            now=WHEN + timedelta(minutes=30),
            deploy_id="pkgdb2-2.0",
            minutes_into_deploy=30,
        )
    store.fix(1, "pingou", None, WHEN + timedelta(hours=1))
    store.take(2, "abadger1999", None, WHEN + timedelta(hours=5))
    core.store.ack_pages("pingou", WHEN + timedelta(minutes=3), account=None)
    outbox.clear()
    assert fire.close(plan_of(core), END, reason="end of the deploy window") is True
    assert outbox.to(FIRE) == [
        "pkgdb2 2.0 firefighting closed (end of the deploy window): 2 incidents reported, "
        "1 fixed, 1 open; 3 pages, 1 acknowledged",
        "#2 [open, owner abadger1999] pkgdb2: search is slow (alice, 13:30 UTC)",
    ]
    assert outbox.kinds("topic") == [
        (
            "topic",
            FIRE,
            "closed: pkgdb2 2.0 deploy ended 21:00 UTC — 2 incidents, 1 open: !incidents pkgdb2",
        )
    ]
    assert outbox.calls[-1][:2] == ("part", FIRE)
    outbox.clear()
    assert fire.close(plan_of(core), END + timedelta(minutes=1), reason="again") is False
    assert outbox.calls == []


def test_closing_a_never_opened_deploy_only_marks_it(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """Closing what was never opened posts nothing, and it can no longer be opened."""
    assert fire.close(plan_of(core), WHEN + timedelta(hours=1), reason="by hand") is False
    assert outbox.calls == []
    assert fire.open(plan_of(core), WHEN + timedelta(hours=2), reason="late") is False
    assert core.store.list_pages() == ()


# --- the sweep ---------------------------------------------------------------------------


def test_sweep_opens_at_when_and_closes_at_the_end(
    core: Core, fire: Firefight, outbox: RecordingOutbox
) -> None:
    """Before the window nothing happens; at ``when`` it opens once; at the end it closes
    once; afterwards nothing is due."""
    assert fire.due_actions(WHEN - timedelta(seconds=1)).open == ()
    assert fire.sweep(WHEN - timedelta(seconds=1)).opened == ()
    assert outbox.calls == []
    assert fire.sweep(WHEN).opened == ("pkgdb2-2.0",)
    for nick in ("pingou", "dgilmore", "threebean"):
        core.store.ack_pages(nick, WHEN + timedelta(minutes=1), account=None)
    assert fire.due_actions(WHEN + timedelta(minutes=1)).open == ()
    assert fire.sweep(WHEN + timedelta(minutes=1)).opened == ()
    assert [p.id for p in fire.due_actions(END).close] == ["pkgdb2-2.0"]
    assert fire.sweep(END).closed == ("pkgdb2-2.0",)
    assert fire.due_actions(END + timedelta(minutes=1)).close == ()
    assert outbox.calls[-1][:2] == ("part", FIRE)


def test_restart_in_the_window_rejoins_without_paging(
    core: Core, fire: Firefight, tmp_path: Path
) -> None:
    """The sweep at start-up during the window rejoins the channel (open → False) and
    pages nobody again."""
    fire.sweep(WHEN)
    again, outbox = restart(core, tmp_path)
    report = again.sweep(WHEN + timedelta(minutes=5))
    assert report.rejoined == ("pkgdb2-2.0",) and report.opened == ()
    assert ("join", FIRE) in outbox.calls
    assert [call for call in outbox.calls if call[0] == "post"] == []


def test_a_deploy_closed_by_hand_stays_closed_after_a_restart(
    core: Core, fire: Firefight, tmp_path: Path
) -> None:
    """`!firefight close` before the end of the window survives a restart: the start-up
    sweep neither rejoins the channel nor touches its topic."""
    fire.sweep(WHEN)
    assert fire.close(plan_of(core), WHEN + timedelta(hours=1), reason="by hand")
    again, outbox = restart(core, tmp_path)
    report = again.sweep(WHEN + timedelta(hours=2))
    assert report.rejoined == () and report.opened == ()
    assert [call for call in outbox.calls if FIRE in call] == []


def test_window_that_ended_while_down_is_closed_at_start_up(
    core: Core, fire: Firefight, tmp_path: Path
) -> None:
    """A deploy opened before a crash whose window ended during the downtime gets its
    summary at start-up (the bot joins to post it, then leaves)."""
    fire.sweep(WHEN)
    again, outbox = restart(core, tmp_path)
    assert again.sweep(END + timedelta(hours=2)).closed == ("pkgdb2-2.0",)
    assert outbox.calls[0] == ("join", FIRE)
    assert outbox.to(FIRE)[0].startswith("pkgdb2 2.0 firefighting closed")
    assert ("part", FIRE) in [call[:2] for call in outbox.calls]


def test_long_ago_windows_are_left_and_stale_pages_not_escalated(
    core: Core, fire: Firefight, tmp_path: Path
) -> None:
    """After two days down, the ended deploy is left alone, and the pages that came due
    meanwhile are listed once in the admin channel instead of escalated days late."""
    fire.sweep(WHEN)
    again, outbox = restart(core, tmp_path)
    report = again.sweep(END + timedelta(days=2))
    assert report.closed == () and report.escalated == ()
    assert outbox.calls == [
        (
            "post",
            ADMIN,
            "⚠ 3 pages went unacknowledged while the bot was offline and were not "
            "escalated: #1 to pingou, #2 to dgilmore, #3 to threebean",
        )
    ]
    assert core.store.list_pages(target_nick="nirik") == ()
    assert again.sweep(END + timedelta(days=2, minutes=1)) == SweepReport()


def test_reschedule_adds_a_sweep_at_each_future_start_and_end(core: Core, fire: Firefight) -> None:
    """One date job at the plan's start and one at its end; rescheduling replaces them."""
    scheduler = AsyncIOScheduler()
    assert fire.reschedule(scheduler, WHEN - timedelta(hours=1)) == 2
    assert fire.reschedule(scheduler, WHEN + timedelta(hours=1)) == 1
    assert [job.id for job in scheduler.get_jobs()] == [f"{JOB_PREFIX}pkgdb2-2.0@close"]


async def test_escalation_date_jobs_for_pages_sent_now_and_pending_after_a_restart(
    core: Core, fire: Firefight, outbox: RecordingOutbox, clock: Clock, tmp_path: Path
) -> None:
    """Escalation on time: each page sent gets a date job one second after its
    escalate_at (the store keeps whole seconds), and its job escalates it; after a
    restart, the pages still pending get their jobs again (and only those)."""
    scheduler = AsyncIOScheduler()
    assert fire.pager.schedule_escalations(scheduler, WHEN) == 0  # nothing pending yet
    clock.now = WHEN
    fire.open(plan_of(core), WHEN, reason="scheduled")
    due = WHEN + timedelta(minutes=10)
    (job,) = [j for j in scheduler.get_jobs() if j.id.startswith(ESCALATION_JOB_PREFIX)]
    assert job.trigger.run_date == due + timedelta(seconds=1)

    core.store.ack_pages("pingou", WHEN + timedelta(minutes=1), account=None)
    clock.now = due + timedelta(seconds=1)
    outbox.clear()
    await job.func()  # what the scheduler runs at that time
    assert {page.target_nick for page in core.store.list_pages(pending=True)} >= {"nirik"}
    assert outbox.to(FIRE)[0].startswith("⚠ pages #")
    assert "pingou" not in " ".join(outbox.to(FIRE))

    again, _ = restart(core, tmp_path)
    later = AsyncIOScheduler()
    clock.now = WHEN + timedelta(minutes=5)
    core.store.create_page(
        target_nick="kevin",
        team=None,
        plan_id="pkgdb2-2.0",
        message="look at the acl page",
        sender_nick="pingou",
        now=clock.now,
        escalate_at=clock.now + timedelta(minutes=10),
    )
    assert again.pager.schedule_escalations(later, clock.now) == 1
    (pending,) = later.get_jobs()
    assert pending.trigger.run_date == clock.now + timedelta(minutes=10, seconds=1)


# --- commands ----------------------------------------------------------------------------


async def say(
    bot: Core | DeployDay,
    registry: Registry,
    line: str,
    *,
    nick: str = "alice",
    account: str | None = "alice",
    channel: str | None = ADMIN,
) -> list[str]:
    """Type ``line`` (by default as alice, an admin, in the admin channel) to a bot that
    is connected (its :class:`DeployDay`) or not (only its core)."""
    day = bot if isinstance(bot, DeployDay) else None
    core = bot.core if isinstance(bot, DeployDay) else bot
    name, _, args = line[1:].partition(" ")
    typed = Request(
        nick=nick,
        mask=f"{nick}!{nick}@users.test",
        account=account,
        channel=channel,
        name=name,
        args=args.strip(),
        now=core.now(),
        deploy_day=day,
    )
    return [message.text for message in await dispatch(core, registry, typed)]


#: The rows tests/test_commands.py's BAD_CALLS table needs for these commands.
BAD_CALLS = [
    ("!roster a b", "one plan id only"),
    ("!oncall now", "takes no arguments"),
    ("!page", "say whom to page"),
    ("!page dgilmore", "say what the page to dgilmore is about"),
    ("!page #chan hello", "is neither a team of a plan nor a nick"),
    ("!ack x", "page number must be a number, got 'x'"),
    ("!ack 1 2", "one page number at most"),
    ("!firefight", "say open or close, then the plan id"),
    ("!firefight reopen pkgdb2-2.0", "say open or close, then the plan id"),
]


@pytest.mark.parametrize(("line", "why"), BAD_CALLS, ids=[line for line, _ in BAD_CALLS])
async def test_bad_call_gets_reason_and_usage(core: Core, line: str, why: str) -> None:
    """A wrong deploy-day call is answered with the reason and the usage line, also
    when the bot is not connected."""
    registry = build_registry()
    command = registry.get(line.split()[0][1:])
    assert command is not None
    (reply,) = await say(core, registry, line)
    assert why in reply
    assert reply.endswith(f"usage: {command.usage}")


async def test_roster_command_defaults_to_the_running_then_next_deploy(
    core: Core, clock: Clock
) -> None:
    """``!roster`` shows the next deploy (with its date) before, the running one with ●
    during; ``!roster ID`` names a plan; an unknown id lists the known ones."""
    registry = build_registry()
    before = await say(core, registry, "!roster")
    assert before[0] == (
        "pkgdb2-2.0 roster (#pkgdb2-firefight), deploy starts Tue 2026-12-15 13:00 UTC:"
    )
    clock.now = WHEN + timedelta(hours=5)
    during = await say(core, registry, "!roster pkgdb2-2.0")
    assert "infrastructure: pingou 13:00–17:00 UTC; ●abadger1999 17:00–21:00 UTC" in during
    assert await say(core, registry, "!roster nope") == ["no plan 'nope'; known: pkgdb2-2.0"]


async def test_oncall_command(core: Core, clock: Clock) -> None:
    """``!oncall`` lists who is on shift by team in each running deploy, and says
    nobody is when no deploy is running."""
    registry = build_registry()
    (before,) = await say(core, registry, "!oncall")
    assert before.startswith("nobody is on shift now (no deploy is running; next: pkgdb2-2.0")
    clock.now = WHEN + timedelta(hours=1)
    assert await say(core, registry, "!oncall") == [
        "pkgdb2-2.0 (#pkgdb2-firefight): infrastructure: pingou; rel-eng: dgilmore"
    ]
    clock.now = END
    assert await say(core, registry, "!oncall") == ["nobody is on shift now"]


async def test_page_and_ack_commands(
    core: Core, day: DeployDay, outbox: RecordingOutbox, clock: Clock
) -> None:
    """``!page NICK`` and ``!page TEAM`` page and say whom; ``!ack N`` acknowledges one
    page, someone else's page is refused, ``!ack`` takes the rest."""
    clock.now = WHEN + timedelta(hours=1)
    registry = build_registry()
    assert await say(day, registry, "!page dgilmore compose broken") == ["paged dgilmore (#1)"]
    assert await say(day, registry, "!page rel-eng please look") == [
        "paged rel-eng on shift: dgilmore (#2)"
    ]
    assert outbox.to("dgilmore")[0] == "[page #1 from alice] compose broken — reply !ack 1"
    assert await say(day, registry, "!ack 1", nick="pingou", account=None) == [
        "page 1 is for dgilmore, not for you"
    ]
    assert await say(day, registry, "!ack #1", nick="dgilmore", account=None) == [
        "dgilmore: acknowledged page #1"
    ]
    assert await say(day, registry, "!ack", nick="dgilmore", account=None) == [
        "dgilmore: acknowledged page #2"
    ]
    assert await say(day, registry, "!ack", nick="dgilmore", account=None) == [
        "dgilmore: you have no pending pages"
    ]
    assert core.store.pending_escalations(WHEN + timedelta(days=1)) == ()


class Accounts:
    """The transport's account tracking: nick → services account (None: not logged in)."""

    def __init__(self, **accounts: str) -> None:
        self.accounts = accounts

    def account_of(self, nick: str) -> str | None:
        return self.accounts.get(nick.lower())


async def test_a_page_to_a_known_account_is_acked_only_by_that_account_or_an_admin(
    core: Core, outbox: RecordingOutbox, clock: Clock
) -> None:
    """dgilmore was logged in as dgilmore when paged: someone using the nick dgilmore
    without that account (not logged in, or logged in as someone else) cannot
    acknowledge the page, by number or with a bare !ack, and is told which account it
    needs; the page stays pending and escalates.  dgilmore's account acks it (the page
    keeps the acker's mask and account); an admin (alice) may ack someone else's page,
    which the incident's timeline says."""
    clock.now = WHEN + timedelta(hours=1)
    day = DeployDay(core, outbox, accounts=Accounts(dgilmore="dgilmore"))
    registry = build_registry()
    assert await say(day, registry, "!page dgilmore compose broken") == ["paged dgilmore (#1)"]
    assert core.store.get_page(1).target_account == "dgilmore"
    needs = "page 1 is for dgilmore logged in as dgilmore; log in to services as dgilmore"
    for account in (None, "mallory"):
        (refused,) = await say(day, registry, "!ack 1", nick="dgilmore", account=account)
        assert refused == f"{needs} to acknowledge it"
        assert await say(day, registry, "!ack", nick="DGilmore", account=account) == [
            "DGilmore: page #1 is for dgilmore logged in as dgilmore; "
            "log in to services to acknowledge it"
        ]
    assert core.store.get_page(1).pending
    assert [p.number for p in core.store.pending_escalations(WHEN + timedelta(days=1))] == [1]

    assert await say(day, registry, "!ack", nick="dgilmore", account="DGILMORE") == [
        "dgilmore: acknowledged page #1"
    ]
    assert [p.number for p in day.pager.page("alice", "dgilmore", "again", clock.now, [])] == [2]
    assert await say(day, registry, "!ack 2", nick="dgilmore_", account="dgilmore") == [
        "dgilmore_: acknowledged page #2"
    ]  # the account is who was paged, whatever the nick
    acked = core.store.get_page(1)
    assert (acked.acked_by, acked.acked_mask, acked.acked_account) == (
        "dgilmore",
        "dgilmore!dgilmore@users.test",
        "DGILMORE",
    )

    incident = core.store.report_incident(
        service="pkgdb2",
        text="acl page 500",
        reporter_nick="pingou",
        reporter_account="pingou",
        channel=ADMIN,
        now=clock.now,
    )
    about = core.store.create_page(
        target_nick="dgilmore",
        team=None,
        plan_id=None,
        message="look at the acl page",
        sender_nick="pingou",
        now=clock.now,
        escalate_at=None,
        incident=incident.number,
        target_account="dgilmore",
    )
    assert await say(day, registry, f"!ack {about.number}") == ["alice: acknowledged page #3"]
    assert core.store.get_page(about.number).acked_account == "alice"
    last = core.store.get(incident.number).timeline[-1]
    assert (last.kind, last.nick, last.account, last.text) == (
        "ack",
        "alice",
        "alice",
        "page 3 to dgilmore, acknowledged by an admin",
    )


async def test_a_page_sent_while_the_account_was_unknown_is_acked_by_the_nick(
    core: Core, outbox: RecordingOutbox, clock: Clock
) -> None:
    """When the target's account was not known at paging time (not in the bot's
    channels, not logged in, no services), the nick acknowledges, as documented; the
    page keeps who did it (mask and account) for checking afterwards."""
    clock.now = WHEN + timedelta(hours=1)
    day = DeployDay(core, outbox, accounts=Accounts())
    registry = build_registry()
    assert await say(day, registry, "!page dgilmore compose broken") == ["paged dgilmore (#1)"]
    assert core.store.get_page(1).target_account is None
    assert await say(day, registry, "!ack 1", nick="dgilmore", account=None) == [
        "dgilmore: acknowledged page #1"
    ]
    assert core.store.get_page(1).acked_mask == "dgilmore!dgilmore@users.test"


async def test_firefight_command_opens_and_closes(
    core: Core, day: DeployDay, outbox: RecordingOutbox, clock: Clock
) -> None:
    """An admin's ``!firefight open ID`` opens (pages) once, then only rejoins;
    ``!firefight close ID`` posts the summary and leaves, once."""
    clock.now = WHEN + timedelta(minutes=1)
    registry = build_registry()
    assert await say(day, registry, "!firefight open pkgdb2-2.0") == [
        f"opened firefighting for pkgdb2-2.0 in {FIRE}: topic set, "
        "roster on shift and consumers paged"
    ]
    assert len(core.store.list_pages()) == 3
    assert await say(day, registry, "!firefight open pkgdb2-2.0") == [
        f"firefighting for pkgdb2-2.0 was already open; rejoined {FIRE}"
    ]
    assert len(core.store.list_pages()) == 3
    assert await say(day, registry, "!firefight close pkgdb2-2.0") == [
        f"closed firefighting for pkgdb2-2.0: summary posted in {FIRE}"
    ]
    assert outbox.calls[-1] == ("part", FIRE, "pkgdb2 2.0 firefighting closed (closed by alice)")
    assert await say(day, registry, "!firefight close pkgdb2-2.0") == [
        "firefighting for pkgdb2-2.0 was already closed (or never opened); nothing to post"
    ]


async def test_firefight_close_before_the_deploy_is_refused(
    core: Core, day: DeployDay, outbox: RecordingOutbox
) -> None:
    """Closing a deploy that has not started (and is not open) is refused, so a slip
    cannot cancel its deploy day."""
    registry = build_registry()
    (reply,) = await say(day, registry, "!firefight close pkgdb2-2.0")
    assert reply.startswith("pkgdb2-2.0 has not started")
    assert outbox.calls == []
    assert day.firefight.open(plan_of(core), WHEN, reason="scheduled") is True


async def test_firefight_is_for_admins_only(
    core: Core, day: DeployDay, outbox: RecordingOutbox, clock: Clock
) -> None:
    """A non-admin's ``!firefight open`` is refused and changes nothing: the deploy
    still opens (and pages) later."""
    clock.now = WHEN + timedelta(minutes=1)
    registry = build_registry()
    (reply,) = await say(day, registry, "!firefight open pkgdb2-2.0", nick="mallory", account=None)
    assert reply.startswith("not allowed: !firefight is for admins")
    assert outbox.calls == [] and core.store.list_pages() == ()
    assert day.firefight.open(plan_of(core), clock.now, reason="scheduled") is True


async def test_commands_without_a_connection(core: Core, clock: Clock) -> None:
    """Without a transport, ``!page`` and ``!firefight`` say the bot is not connected
    and change nothing; ``!roster``, ``!oncall`` and ``!ack`` still work."""
    clock.now = WHEN + timedelta(minutes=1)
    registry = build_registry()
    assert await say(core, registry, "!page dgilmore hello") == [NOT_CONNECTED]
    assert await say(core, registry, "!firefight open pkgdb2-2.0") == [NOT_CONNECTED]
    assert core.store.list_pages() == ()
    assert await say(core, registry, "!ack") == ["alice: you have no pending pages"]
    assert (await say(core, registry, "!oncall"))[0].startswith("pkgdb2-2.0")


# --- one firefighting channel, wherever it is named --------------------------------------


def channel_case(kind: str) -> Plan:
    """The pkgdb2 plan with its own channel, with the config's pattern's, or with a
    service of which the pattern makes no channel name."""
    plan = make_plan(when=WHEN)
    if kind == "own":
        return replace(plan, roster=replace(plan.roster, channel="#own-fire"))
    if kind == "none":
        return replace(plan, service="pkg,db")
    return plan


@pytest.mark.parametrize(
    ("kind", "expected"), [("own", "#own-fire"), ("pattern", FIRE), ("none", None)]
)
async def test_every_place_names_the_same_firefighting_channel(
    tmp_path: Path, clock: Clock, kind: str, expected: str | None
) -> None:
    """The API, ``!roster``, ``!deploy``, ``!oncall``, the digest, ``!page`` and opening
    agree on a plan's channel: its own, else the pattern's; a plan of whose service the
    pattern makes no channel name has none anywhere (it is not opened, and the digest and
    pages go to the admin channel only)."""
    core = build_core(tmp_path, clock, [channel_case(kind)])
    try:
        plan = plan_of(core)
        outbox = RecordingOutbox()
        day = DeployDay(core, outbox)
        clock.now = WHEN + timedelta(hours=1)
        registry = build_registry()
        shown = f" ({expected})" if expected else ""
        named = f" ({expected or 'no channel'})"
        api = plan_to_dict(plan, core, clock.now)["roster"]["channel"]
        heading = (await say(core, registry, "!roster"))[0]
        deploy = [t for t in await say(core, registry, "!deploy pkgdb2-2.0") if "roster" in t]
        oncall = await say(core, registry, "!oncall")
        digest = DigestPoster(core, outbox).channels_for(WHEN.date())
        await say(day, registry, "!page dgilmore look")
        (paged_in,) = {target for target, text in outbox.posts if target.startswith("#")}
        assert api == expected
        assert heading.startswith(f"pkgdb2-2.0 roster{named}, ")
        assert len(deploy) == 1 and deploy[0].startswith(f"pkgdb2-2.0 roster{named}, ")
        assert oncall[0].startswith(f"pkgdb2-2.0{shown}: ")
        assert digest == [ADMIN, *([expected] if expected else [])]
        assert paged_in == (expected or ADMIN)
        if expected is None:
            with pytest.raises(NoFirefightChannelError):
                day.firefight.open(plan, clock.now, reason="test")
            assert outbox.kinds("join") == []
        else:
            assert day.firefight.open(plan, clock.now, reason="test") is True
            assert outbox.kinds("join") == [("join", expected)]
    finally:
        core.store.close()


def test_a_plan_without_a_channel_is_told_once_not_at_every_sweep(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A running plan of whose service the pattern makes no channel name cannot be
    opened: the sweep (every 30 s) says so once, as a warning naming the fix, without a
    traceback — not a logged exception at every sweep."""
    core = build_core(tmp_path, clock, [channel_case("none")])
    try:
        day = DeployDay(core, RecordingOutbox())
        caplog.set_level(logging.WARNING, logger="deploybot.deployday.firefight")
        for minutes in (1, 2, 3):
            report = day.firefight.sweep(WHEN + timedelta(minutes=minutes))
            assert report.opened == report.rejoined == ()
        told = [r for r in caplog.records if r.name == "deploybot.deployday.firefight"]
        assert [(r.levelno, r.exc_info) for r in told] == [(logging.WARNING, None)]
        assert "give the plan a roster.channel" in told[0].getMessage()
    finally:
        core.store.close()
