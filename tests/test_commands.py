"""The IRC-free commands of SPEC §3, driven through ``dispatch()`` with a real Core.

Each test builds a real SQLite store under ``tmp_path``, a PlanBook over a directory of
plan files written with ``dump_plan``, a validated Config and a clock it sets.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import deploybot.commands as commands_package
from deploybot.commands import base
from deploybot.commands.base import Example, Registry, Reply, Request
from deploybot.commands.dispatch import Outgoing, dispatch, flood_key
from deploybot.commands.registry import build_registry
from deploybot.config import Address, config_from_mapping
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.drift.report import Fetched
from deploybot.drift.runs import DriftRunner
from deploybot.errors import DeploybotError
from deploybot.health import HaStatus, IrcStatus
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.plans.freezes import Freeze
from deploybot.plans.model import ApiBreak, Consumer, Plan, Probe
from deploybot.store import NotLeaderError, Store
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc
from tests.test_drift_report import fetch_all

ADMINS = "account:alice mask:*!*@admin.test"
CHANNEL = "#fedora-admin"
PKGDB2_START = utc(2026, 12, 15, 13)  # the factory's default window: 13:00–21:00 UTC
BEFORE = utc(2026, 11, 27, 13)  # 18 days before: nothing running
DURING = PKGDB2_START + timedelta(minutes=20)


class Clock:
    """A clock the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fas_plan(**overrides: object) -> Plan:
    """A minor fas release, exempt from the policy, five days after pkgdb2."""
    fields: dict[str, object] = {
        "id": "fas-3.0",
        "service": "fas",
        "release": "3.0",
        "title": "FAS 3",
        "when": utc(2026, 12, 20, 9),
        "major": False,
        "essential": False,
        "api_breaks": (),
        "consumers": (),
        "teams": (),
    }
    fields.update(overrides)
    return make_plan(**fields)


def write_plan(directory: Path, plan: Plan) -> Path:
    path = directory / f"{plan.id}.yaml"
    path.write_text(dump_plan(plan), encoding="utf-8")
    return path


def make_core(tmp_path: Path, clock: Clock, plans: list[Plan], timezone: str = "UTC") -> Core:
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir(exist_ok=True)
    for plan in plans:
        write_plan(plans_dir, plan)
    config = config_from_mapping(
        {
            "admins": ADMINS,
            "timezone": timezone,
            "plans_dir": str(plans_dir),
            "database": str(tmp_path / "deploybot.sqlite3"),
        }
    )
    book = PlanBook(plans_dir)
    report = book.reload()
    assert not report.problems, report.problems
    store = Store.open(tmp_path / "deploybot.sqlite3")
    return Core(config=config, store=store, book=book, clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock(BEFORE)


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    core = make_core(tmp_path, clock, [make_plan(), fas_plan()])
    yield core
    core.store.close()


@pytest.fixture
def registry() -> Registry:
    return build_registry()


def request(
    core: Core,
    line: str,
    *,
    nick: str = "alice",
    account: str | None = "alice",
    host: str = "users.test",
    channel: str | None = CHANNEL,
    deploy_day: DeployDay | None = None,
) -> Request:
    assert line.startswith("!")
    name, _, args = line[1:].partition(" ")
    return Request(
        nick=nick,
        mask=f"{nick}!{nick}@{host}",
        account=account,
        channel=channel,
        name=name,
        args=args.strip(),
        now=core.now(),
        deploy_day=deploy_day,
    )


async def send(
    core: Core,
    registry: Registry,
    line: str,
    *,
    nick: str = "alice",
    account: str | None = "alice",
    host: str = "users.test",
    channel: str | None = CHANNEL,
) -> list[Outgoing]:
    """Type ``line`` (by default as alice, logged in as alice, in #fedora-admin)."""
    typed = request(core, line, nick=nick, account=account, host=host, channel=channel)
    return await dispatch(core, registry, typed)


async def say(
    core: Core,
    registry: Registry,
    line: str,
    *,
    nick: str = "alice",
    account: str | None = "alice",
    host: str = "users.test",
    channel: str | None = CHANNEL,
) -> list[str]:
    """Type ``line`` and return the texts of every message sent back, in order."""
    out = await send(core, registry, line, nick=nick, account=account, host=host, channel=channel)
    return [message.text for message in out]


def assert_clean(lines: list[str]) -> None:
    """Replies are explicit: no Python reprs of nothing, no line breaks."""
    assert lines, "no reply at all"
    for line in lines:
        assert "\r" not in line and "\n" not in line, line
        assert not re.search(r"\bNone\b|\[\]|\(\)", line.replace("instead of []", "")), line


# --- the examples are the tests ----------------------------------------------------------

EXAMPLES = [
    pytest.param(command.name, example, id=example.line)
    for command in build_registry().commands.values()
    for example in command.examples
]


def test_every_command_has_usage_help_and_an_example(registry: Registry) -> None:
    """Each command carries a usage line starting with its name, a help text, an example."""
    assert registry.commands
    for command in registry.commands.values():
        assert command.usage.startswith(f"!{command.name}"), command.usage
        assert command.help.strip(), command.name
        assert command.examples, command.name
        for example in command.examples:
            assert example.line.startswith(f"!{command.name}"), example


def test_every_declared_command_is_registered(registry: Registry) -> None:
    """Every command declared at module level in deploybot.commands is in the registry:
    a handler left out of its module's COMMANDS, or a module left out of
    build_registry, fails here."""
    declared = [
        value
        for info in pkgutil.iter_modules(commands_package.__path__)
        for value in vars(importlib.import_module(f"deploybot.commands.{info.name}")).values()
        if isinstance(value, base.Command)
    ]
    assert len(declared) == len(registry.commands) - 1  # !help is bound to the registry
    for command in declared:
        assert registry.get(command.name) is command


#: The active instance of the examples' world.
EXAMPLE_ACTIVE = "bot1.example.org:4242"

#: The probes of the examples' pkgdb2-2.0: its declared break, and one that answers alike.
EXAMPLE_PROBES = ("/api/packager/acl?packagername=toshio", "/api/critpath")


async def fetch_2014(plan: Plan) -> list[Fetched]:
    return fetch_all(plan)


@pytest.fixture
def example_world(tmp_path: Path, clock: Clock) -> Iterator[DeployDay]:
    """The world every example runs in (see :class:`~deploybot.commands.base.Example`):
    pkgdb2-2.0 and fas-3.0, the bot connected, incident #1 reported by alice at 13:20
    during the pkgdb2 deploy, and the clock at 13:25 UTC."""
    pkgdb2 = make_plan(probes=tuple(Probe(path) for path in EXAMPLE_PROBES))
    core = make_core(tmp_path, clock, [pkgdb2, fas_plan()])
    # The drift probe asks the 2014 answers (the network is the boundary replaced here);
    # a run at 12:00 found no undeclared drift.
    core.drift = DriftRunner(core.store, fetch_2014, clock)
    clock.now = utc(2026, 12, 15, 12)
    asyncio.run(core.drift.run(core.plans[0]))
    clock.now = DURING
    core.store.report_incident(
        service="pkgdb2",
        text="the acl page returns 500",
        reporter_nick="alice",
        reporter_account="alice",
        channel=CHANNEL,
        now=DURING,
        deploy_id="pkgdb2-2.0",
        minutes_into_deploy=20,
    )
    # A freeze over fas-3.0's window, and a freeze break requested earlier for pkgdb2-2.0.
    core.freezes.set_calendar([Freeze("F44 Beta freeze", utc(2026, 12, 18), utc(2026, 12, 22))])
    core.store.request_freeze_break(
        plan_id="pkgdb2-2.0",
        freezes="F44 Beta freeze",
        reason="the acl fix cannot wait",
        nick="bob",
        account="bob",
        mask="bob!bob@example.test",
        now=utc(2026, 12, 15, 12),
    )
    # The pair: bot1.example.org:4242 active since 13:00 (epoch 2), one standby; IRC up.
    core.ha_status = lambda: HaStatus("postgresql", EXAMPLE_ACTIVE, utc(2026, 12, 15, 13), 2, 1)
    core.network_status = lambda: {"irc": IrcStatus(True)}
    clock.now = DURING + timedelta(minutes=5)
    yield DeployDay(core, RecordingOutbox())
    core.store.close()


def shown_as(example: Example, lines: tuple[str, ...]) -> list[str]:
    """The example's expected reply as text: a pattern that matches its line shows as
    that line, so that a failing comparison shows only the lines that differ."""
    padded = (*lines, *[""] * len(example.reply))[: len(example.reply)]
    return [
        expected
        if isinstance(expected, str)
        else (got if expected.fullmatch(got) else f"re:{expected.pattern}")
        for expected, got in zip(example.reply, padded, strict=True)
    ]


@pytest.mark.parametrize(("name", "example"), EXAMPLES)
async def test_example_gets_its_reply(
    example_world: DeployDay, registry: Registry, name: str, example: Example
) -> None:
    """Every example of every command, typed alone in the examples' world, gets exactly
    the reply it declares (each line equal, or matching its pattern)."""
    command = registry.get(name)
    assert command is not None
    core = example_world.core
    reply = await command(core, request(core, example.line, deploy_day=example_world))
    assert isinstance(reply, Reply)
    assert_clean(list(reply.lines))
    assert list(reply.lines) == shown_as(example, reply.lines)
    assert example.matches(reply.lines)


def test_example_matches_exact_lines_and_patterns() -> None:
    """An example matches the whole reply: every line, in order, equal or matching its
    pattern in full; a missing, extra or different line does not match."""
    shown = base.example("!x", "one", re.compile(r"two \d+"))
    assert shown.matches(["one", "two 2"])
    assert not shown.matches(["one", "two 2", "three"])
    assert not shown.matches(["one"])
    assert not shown.matches(["one", "two 2 and more"])
    assert not shown.matches(["One", "two 2"])


# --- wrong or incomplete calls get the usage line ------------------------------------------

BAD_CALLS = [
    ("!deploys now", "takes no arguments"),
    ("!deploy", "say which plan"),
    ("!deploy pkgdb2-2.0 fas-3.0", "one plan id only"),
    ("!breaks a b", "one plan id only"),
    ("!ready", "say which plan"),
    ("!uses", "say which service"),
    ("!uses pkg$db what", "is not a service name"),
    ("!uses --remove", "say which service after --remove"),
    ("!uses --remove pkgdb2 fas", "one service only"),
    ("!consumers", "say which service"),
    ("!consumers pkgdb2 fas", "one service only"),
    ("!broke", "say what broke"),
    ("!broke pkgdb2", "say what broke in pkgdb2"),
    ("!take abc", "incident number must be a number, got 'abc'"),
    ("!take", "say which incident"),
    ("!note 1", "say what to note"),
    ("!note x hello", "incident number must be a number, got 'x'"),
    ("!fixed -1", "incident number must be a number, got '-1'"),
    ("!incident", "say which incident"),
    ("!incidents open today", "one of open, today or a service"),
    ("!incidents nosuchthing", "neither open, today nor a known service"),
    ("!plans", "the only action is reload"),
    ("!plans reboot", "the only action is reload, got 'reboot'"),
    ("!help broke take", "one command at a time"),
    ("!help frobnicate", "no command !frobnicate"),
    ("!roster a b", "one plan id only"),
    ("!oncall now", "takes no arguments"),
    ("!page", "say whom to page"),
    ("!ack x", "page number must be a number, got 'x'"),
    ("!firefight", "say open or close, then the plan id"),
    ("!digest 2026-13-01", "is not a valid date: month must be in 1..12"),
    ("!digest 20261215", "is not a date; write it as YYYY-MM-DD"),
    ("!digest 0001-01-01", "is out of range (years 1900 to 9000)"),
    ("!digest 2026-12-01 2026-12-02", "one date only"),
    ("!freeze now", "takes no arguments"),
    ("!postmortem", "say which plan"),
    ("!drift", "say which plan"),
    ("!freezebreak fas-3.0", "say which plan and why"),
    ("!approve", "say which deploy's freeze break"),
    ("!freezebreaks all", "takes no arguments"),
    ("!status now", "takes no arguments"),
]


def test_every_command_has_a_bad_call_below(registry: Registry) -> None:
    """The bad-call table covers every registered command (a new command needs a row)."""
    covered = {line.split()[0].removeprefix("!") for line, _ in BAD_CALLS}
    assert covered == set(registry.commands)


@pytest.mark.parametrize(("line", "why"), BAD_CALLS, ids=[line for line, _ in BAD_CALLS])
async def test_bad_call_gets_reason_and_usage(
    core: Core, registry: Registry, line: str, why: str
) -> None:
    """A wrong or incomplete call is answered with what was wrong and the usage line."""
    command = registry.get(line.split()[0].removeprefix("!"))
    assert command is not None
    lines = await say(core, registry, line)
    assert len(lines) == 1, lines
    assert why in lines[0]
    assert lines[0].endswith(f"usage: {command.usage}")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("!take #99", "no incident 99"),
        ("!take 99999999999999999999", "no incident 99999999999999999999"),
        ("!take \u0663", "incident number must be a number, got '\u0663'"),
        ("!ack #99", "no page 99"),
        ("!ack 99999999999999999999", "no page 99999999999999999999"),
        ("!ack \u0663", "page number must be a number, got '\u0663'"),
    ],
)
async def test_incident_and_page_numbers_are_read_alike(
    core: Core, registry: Registry, line: str, says: str
) -> None:
    """Incident and page numbers are ASCII digits, ``#`` allowed; a number beyond any
    stored one is simply unknown, never a database error."""
    lines = await say(core, registry, line)
    assert lines == [says] or (len(lines) == 1 and lines[0].startswith(says + " ")), lines


async def test_notes_beyond_max_notes_per_incident_are_refused_and_said_so(
    core: Core, registry: Registry, clock: Clock
) -> None:
    """With max_notes_per_incident = 3, the fourth !note on an incident is refused with
    a reply that says why and what to do; nothing is added; other incidents still take
    notes."""
    core.config = replace(core.config, max_notes_per_incident=3)
    await say(core, registry, "!broke pkgdb2 acl page 500")
    await say(core, registry, "!broke pkgdb2 login loops")
    for n in range(3):
        assert await say(core, registry, f"!note 1 finding {n}") == [
            "noted on incident #1 (pkgdb2)"
        ]
    (refused,) = await say(core, registry, "!note 1 one more")
    assert refused == (
        "not noted: incident 1 already has 3 notes, the most one incident may have "
        "(max_notes_per_incident); put further findings in a document and link it from "
        "a new incident, or ask an admin to raise the limit"
    )
    notes = [e for e in core.store.get(1).timeline if e.kind == "note"]
    assert [e.text for e in notes] == ["finding 0", "finding 1", "finding 2"]
    assert await say(core, registry, "!note 2 fine") == ["noted on incident #2 (pkgdb2)"]


async def test_unknown_plan_lists_known_ids(core: Core, registry: Registry) -> None:
    """An unknown plan id is an error naming the known ids, without a usage line."""
    for line in ("!deploy nope", "!breaks nope", "!ready nope"):
        assert await say(core, registry, line) == ["no plan 'nope'; known: pkgdb2-2.0, fas-3.0"]


async def test_unknown_incident_is_the_stores_error(core: Core, registry: Registry) -> None:
    """An unknown incident number gets the store's "no incident N"."""
    for line in ("!take 7", "!note 7 hi", "!fixed 7", "!incident #7"):
        assert await say(core, registry, line) == ["no incident 7"]


# --- deploys ---------------------------------------------------------------------------------


async def test_deploys_lists_upcoming_with_countdown_and_breaks(
    core: Core, registry: Registry
) -> None:
    """!deploys shows each upcoming plan with its countdown and ⚠ on API breaks."""
    assert await say(core, registry, "!deploys") == [
        "pkgdb2-2.0 — pkgdb2 2.0 'pkgdb2 replaces pkgdb1' Tue 2026-12-15 13:00 UTC "
        "(in 18 days) ⚠ 1 API break",
        "fas-3.0 — fas 3.0 'FAS 3' Sun 2026-12-20 09:00 UTC (in 22 days 20h)",
    ]


async def test_deploys_shows_running_first(core: Core, registry: Registry, clock: Clock) -> None:
    """A running deploy is listed (first) with when it started and when it ends."""
    clock.now = DURING
    lines = await say(core, registry, "!deploys")
    assert "running: started 20m ago, ends 21:00 UTC" in lines[0]
    assert lines[1].startswith("fas-3.0")


async def test_deploys_says_when_there_are_none(
    tmp_path: Path, registry: Registry, clock: Clock
) -> None:
    """With no plans, !deploys and !breaks say so in words."""
    core = make_core(tmp_path, clock, [])
    try:
        assert await say(core, registry, "!deploys") == ["no deploys running or planned"]
        assert await say(core, registry, "!breaks") == [
            "no API breaks in running or upcoming deploys"
        ]
        assert await say(core, registry, "!ready x") == ["no plan 'x'; no plans are loaded"]
    finally:
        core.store.close()


async def test_deploy_long_output_goes_privately(core: Core, registry: Registry) -> None:
    """!deploy ID answers in many lines, so they go to the requester, with a channel note."""
    out = await send(core, registry, "!deploy pkgdb2-2.0")
    assert out[0] == Outgoing(CHANNEL, f"alice: sent you {len(out) - 1} lines")
    assert all(message.target == "alice" for message in out[1:])
    texts = [message.text for message in out[1:]]
    assert_clean([t.replace("instead of []", "") for t in texts])
    assert texts[0].startswith("pkgdb2-2.0 — pkgdb2 2.0")
    assert any(t.startswith("⚠ API BREAK: /api/packager/acl") for t in texts)
    assert any(
        "pkgdb2-2.0 roster (#pkgdb2-firefight), deploy starts Tue 2026-12-15 13:00 UTC: "
        "infrastructure: pingou 13:00–17:00 UTC; abadger1999 17:00–21:00 UTC | "
        "rel-eng: dgilmore whole window | escalation: nirik" in t
        for t in texts
    )
    assert texts[-1] == "pkgdb2-2.0: READY (6/6) — !ready pkgdb2-2.0 for the checklist"


async def test_breaks_lists_breaks_with_migration(core: Core, registry: Registry) -> None:
    """!breaks lists the API breaks of upcoming deploys with their migration notes."""
    assert await say(core, registry, "!breaks") == [
        "pkgdb2-2.0 (Tue 2026-12-15 13:00 UTC, in 18 days):",
        "⚠ API BREAK: /api/packager/acl — returns null instead of [] when the packager has "
        "no ACLs — migration: treat null as an empty list",
    ]
    assert await say(core, registry, "!breaks fas-3.0") == ["fas-3.0 has no API breaks"]


async def test_ready_gives_the_checklist(core: Core, registry: Registry) -> None:
    """!ready ID gives the verdict and one line per rule; an exempt plan says why."""
    lines = await say(core, registry, "!ready pkgdb2-2.0", channel=None)
    assert lines[0] == "pkgdb2-2.0: READY (6/6)"
    assert len(lines) == 7
    assert await say(core, registry, "!ready fas-3.0") == [
        "fas-3.0: EXEMPT — minor release without API breaks"
    ]


# --- consumers -------------------------------------------------------------------------------


async def test_uses_then_consumers(core: Core, registry: Registry) -> None:
    """!uses registers the caller; !consumers lists plan consumers and registered ones."""
    lines = await say(core, registry, "!uses PKGDB2 the packager report", nick="bob", account=None)
    assert lines[0] == (
        "bob: registered as a consumer of pkgdb2 (the packager report); "
        "you will be paged on its deploy day"
    )
    assert lines[1].startswith("next: pkgdb2-2.0")
    (entry,) = core.store.consumers("pkgdb2")
    assert (entry.nick, entry.account, entry.what) == ("bob", None, "the packager report")
    assert await say(core, registry, "!consumers pkgdb2") == [
        "2 known consumers of pkgdb2:",
        "rel-eng compose scripts (team rel-eng, contact dgilmore) — plan pkgdb2-2.0",
        "bob: the packager report (!uses, since 2026-11-27)",
    ]


async def test_uses_remove_takes_back_only_your_own_registration(
    core: Core, registry: Registry
) -> None:
    """!uses --remove SERVICE forgets the caller's registration (service in any case) and
    says what it was; someone else's stays; a second removal says there was none."""
    await say(core, registry, "!uses pkgdb2 the packager report", nick="bob")
    await say(core, registry, "!uses pkgdb2", nick="carol")
    assert await say(core, registry, "!uses --remove PKGDB2", nick="bob") == [
        "bob: removed your registration as a consumer of pkgdb2 (the packager report)"
    ]
    assert [entry.nick for entry in core.store.consumers("pkgdb2")] == ["carol"]
    assert await say(core, registry, "!uses --remove pkgdb2", nick="bob") == [
        "bob: you were not registered as a consumer of pkgdb2 (!consumers pkgdb2 lists who is)"
    ]
    assert await say(core, registry, "!uses --remove pkgdb2", nick="carol") == [
        "carol: removed your registration as a consumer of pkgdb2"
    ]
    assert core.store.consumers("pkgdb2") == ()


async def test_consumers_empty_and_unplanned_service(core: Core, registry: Registry) -> None:
    """No consumers is said in words; !uses works for a service with no plan yet."""
    assert await say(core, registry, "!consumers fas") == [
        "no known consumers of fas; register with !uses fas [what]"
    ]
    lines = await say(core, registry, "!uses koji")
    assert lines == [
        "alice: registered as a consumer of koji; you will be paged on its deploy day",
        "no deploy of koji is planned yet",
    ]


# --- incidents -------------------------------------------------------------------------------


async def test_broke_defaults_to_the_running_deploy(
    core: Core, registry: Registry, clock: Clock
) -> None:
    """During a deploy, !broke without a service records it against that deploy, with the
    reporter's nick, account and channel and the minutes since the deploy started."""
    clock.now = DURING
    lines = await say(
        core, registry, "!broke the acl page returns 500", nick="bob", account="bobby"
    )
    assert lines == ["recorded incident #1 (pkgdb2, deploy pkgdb2-2.0 +20 min); fix with !fixed 1"]
    incident = core.store.get(1)
    assert incident.service == "pkgdb2"
    assert incident.text == "the acl page returns 500"
    assert (incident.reporter_nick, incident.reporter_account) == ("bob", "bobby")
    assert incident.channel == CHANNEL
    assert (incident.deploy_id, incident.minutes_into_deploy) == ("pkgdb2-2.0", 20)
    assert incident.reported_at == DURING


async def test_broke_with_service_links_its_running_deploy(
    core: Core, registry: Registry, clock: Clock
) -> None:
    """Naming the running deploy's service links the deploy too; the name is not kept
    in the text."""
    clock.now = PKGDB2_START + timedelta(hours=2, minutes=3)
    lines = await say(core, registry, "!broke pkgdb2 the acl page returns 500")
    assert lines == ["recorded incident #1 (pkgdb2, deploy pkgdb2-2.0 +123 min); fix with !fixed 1"]
    assert core.store.get(1).text == "the acl page returns 500"


async def test_broke_without_running_deploy(core: Core, registry: Registry) -> None:
    """With no deploy running, !broke needs a known service first; otherwise it is a usage
    error that says so, and nothing is recorded."""
    lines = await say(core, registry, "!broke the acl page returns 500")
    assert lines[0].startswith("no deploy is running; say which service: !broke SERVICE what broke")
    assert "usage: !broke [SERVICE] what broke" in lines[0]
    assert core.store.list_incidents() == ()
    assert await say(core, registry, "!broke fas login is slow") == [
        "recorded incident #1 (fas); fix with !fixed 1"
    ]
    incident = core.store.get(1)
    assert (incident.deploy_id, incident.minutes_into_deploy) == (None, None)


async def test_broke_service_with_registered_consumers_only(core: Core, registry: Registry) -> None:
    """A service known only from !uses counts as a service for !broke."""
    await say(core, registry, "!uses koji builds")
    assert await say(core, registry, "!broke koji builds fail") == [
        "recorded incident #1 (koji); fix with !fixed 1"
    ]


async def test_broke_asks_which_when_several_deploys_run(
    tmp_path: Path, registry: Registry, clock: Clock
) -> None:
    """With two deploys of different services running, !broke without a service asks which."""
    core = make_core(tmp_path, clock, [make_plan(), fas_plan(when=PKGDB2_START)])
    try:
        clock.now = DURING
        (line,) = await say(core, registry, "!broke everything is down")
        assert line.startswith("2 deploys are running (fas, pkgdb2); say which service")
        assert core.store.list_incidents() == ()
    finally:
        core.store.close()


async def test_incident_lifecycle(core: Core, registry: Registry, clock: Clock) -> None:
    """Report, take, note and fix an incident; each step is recorded and shown."""
    clock.now = DURING
    await say(core, registry, "!broke pkgdb2 the acl page returns 500")
    clock.now += timedelta(minutes=4)
    assert await say(core, registry, "!take 1", nick="bob", account="bob") == [
        "incident #1 (pkgdb2) is now owned by bob"
    ]
    assert await say(core, registry, "!take #1", nick="bob", account="bob") == [
        "incident #1 (pkgdb2) is already yours"
    ]
    assert await say(core, registry, "!incidents") == [
        "1 open incident:",
        "#1 [open, owner bob] pkgdb2: the acl page returns 500 (alice, 13:20 UTC)",
    ]
    clock.now += timedelta(minutes=6)
    assert await say(core, registry, "!note 1 it's the null ACL list", nick="bob") == [
        "noted on incident #1 (pkgdb2)"
    ]
    clock.now += timedelta(minutes=30)
    assert await say(core, registry, "!fixed 1 hotfix deployed", nick="bob", account="bob") == [
        "incident #1 (pkgdb2) fixed by bob after 40m; 0 open incidents left"
    ]
    lines = await say(core, registry, "!incident 1", channel=None)
    assert lines == [
        "incident #1 FIXED (pkgdb2, deploy pkgdb2-2.0 +20 min): the acl page returns 500",
        "reported by alice in #fedora-admin at Tue 2026-12-15 13:20 UTC; owner: bob",
        "acknowledged by bob after 4m; fixed by bob at 14:00 UTC after 40m",
        "last 2 notes:",
        "  note 13:30 UTC bob: it's the null ACL list",
        "  fixed 14:00 UTC bob: hotfix deployed",
    ]
    assert await say(core, registry, "!incidents") == ["no open incidents"]
    (again,) = await say(core, registry, "!fixed 1")
    assert again.startswith("incident 1 is already fixed")
    (late,) = await say(core, registry, "!take 1")
    assert late.startswith("incident 1 is already fixed")


async def test_incidents_today_uses_the_configured_timezone(
    tmp_path: Path, registry: Registry, clock: Clock
) -> None:
    """The "today" of !incidents is the calendar day in the configured timezone: at
    09:00 in Paris, an incident at 23:30 Paris time the day before (22:30 UTC) is not
    today's, one at 00:30 Paris time (23:30 UTC the day before) is."""
    core = make_core(tmp_path, clock, [make_plan()], timezone="Europe/Paris")
    try:
        clock.now = utc(2026, 12, 15, 22, 30)
        await say(core, registry, "!broke pkgdb2 yesterday's problem")
        clock.now = utc(2026, 12, 15, 23, 30)
        await say(core, registry, "!broke pkgdb2 after midnight in Paris")
        clock.now = utc(2026, 12, 16, 8)
        assert await say(core, registry, "!incidents today") == [
            "1 incident reported today (2026-12-16 Europe/Paris), 1 open:",
            "#2 [open, no owner] pkgdb2: after midnight in Paris (alice, 00:30 CET)",
        ]
        clock.now = utc(2026, 12, 16, 23, 30)  # 00:30 on the 17th in Paris
        assert await say(core, registry, "!incidents TODAY") == [
            "no incidents reported today (2026-12-17 Europe/Paris)"
        ]
    finally:
        core.store.close()


async def test_incidents_of_a_service(core: Core, registry: Registry) -> None:
    """!incidents SERVICE lists that service's incidents, newest first; a known service
    without incidents says so."""
    await say(core, registry, "!broke pkgdb2 first")
    await say(core, registry, "!broke fas second")
    await say(core, registry, "!broke pkgdb2 third")
    lines = await say(core, registry, "!incidents PKGDB2")
    assert lines[0] == "latest incidents of pkgdb2, newest first:"
    assert [line.split()[0] for line in lines[1:]] == ["#3", "#1"]
    await say(core, registry, "!uses koji")
    assert await say(core, registry, "!incidents koji") == ["no incidents recorded for koji"]


# --- admin -----------------------------------------------------------------------------------


def retitle(core: Core, title: str) -> None:
    """Change pkgdb2's title in its file (not yet reloaded)."""
    write_plan(core.book.directory, make_plan(title=title))


def title_in_force(core: Core) -> str:
    plan = core.book.get("pkgdb2-2.0")
    assert plan is not None
    return plan.title


async def test_plans_reload_by_account_admin(core: Core, registry: Registry) -> None:
    """An admin by services account reloads the plans and gets the summary."""
    retitle(core, "pkgdb2, second try")
    lines = await say(core, registry, "!plans reload", nick="alice", account="alice")
    assert lines == ["plans reloaded: 2 plans in force; changed: pkgdb2-2.0"]
    assert title_in_force(core) == "pkgdb2, second try"


async def test_plans_reload_refused_to_nick_without_account(core: Core, registry: Registry) -> None:
    """The admin's nick without the account is refused, and nothing is reloaded."""
    retitle(core, "pkgdb2, second try")
    (line,) = await say(core, registry, "!plans reload", nick="alice", account=None)
    assert line.startswith("not allowed")
    assert title_in_force(core) == "pkgdb2 replaces pkgdb1"


async def test_plans_reload_by_mask_admin(core: Core, registry: Registry) -> None:
    """An admin by host mask (not logged in) reloads the plans."""
    retitle(core, "pkgdb2, second try")
    lines = await say(
        core, registry, "!plans reload", nick="carol", account=None, host="admin.test"
    )
    assert lines[0].startswith("plans reloaded:")
    assert title_in_force(core) == "pkgdb2, second try"


async def test_sender_from_another_network_is_admin_by_address_only(
    core: Core, registry: Registry
) -> None:
    """A sender with a network address (mask is that address, no account) is refused by
    account:/mask: rules, even one covering every IRC mask, and admitted by its mxid: rule;
    flood control counts them by that address."""
    config = config_from_mapping({"admins": "account:alice mask:*!*@* mxid:@carol:fedora.im"})
    core.config = config
    for address, allowed in (("@alice:fedora.im", False), ("@carol:fedora.im", True)):
        typed = replace(
            request(core, "!plans reload", nick="alice", account=None),
            mask=address,
            address=Address("mxid", address),
        )
        assert flood_key(typed) == f"mxid:{address}"
        (out, *_) = await dispatch(core, registry, typed)
        assert out.text.startswith("plans reloaded:") is allowed, out.text


async def test_plans_reload_keeps_last_good_version(core: Core, registry: Registry) -> None:
    """A bad edit is reported as file:line: key: message, and the last good version of the
    plan stays in force."""
    path = core.book.directory / "pkgdb2-2.0.yaml"
    text = path.read_text(encoding="utf-8").replace("duration: 8h", "duration: eight hours")
    path.write_text(text.replace('title: "pkgdb2 replaces pkgdb1"', 'title: "broken"'))
    line_no = text.splitlines().index("duration: eight hours") + 1
    lines = await say(core, registry, "!plans reload")
    assert lines[0] == (
        "plans reloaded: 2 plans in force; kept at last good version: pkgdb2-2.0; 1 problem"
    )
    assert lines[1].startswith(f"pkgdb2-2.0.yaml:{line_no}: duration: ")
    assert title_in_force(core) == "pkgdb2 replaces pkgdb1"


async def test_plans_reload_caps_problems(core: Core, registry: Registry) -> None:
    """Many problems: the first few are shown, then how many more."""
    for n in range(8):
        (core.book.directory / f"bad{n}.yaml").write_text("service: [\n", encoding="utf-8")
    lines = await say(core, registry, "!plans reload", channel=None)
    assert len(lines) == 1 + 5 + 1
    assert lines[-1] == "… and 3 more problems; `deploybot check` lists them all"


# --- help ------------------------------------------------------------------------------------


async def test_help_lists_every_command(core: Core, registry: Registry) -> None:
    """!help lists every registered command on one line, and nothing that is not one."""
    (line,) = await say(core, registry, "!help")
    for name in registry.commands:
        assert f"!{name}" in line
    assert "ping" not in line
    assert "!plans (admin)" in line


async def test_help_for_one_command(core: Core, registry: Registry) -> None:
    """!help COMMAND gives its usage, help and example (with or without the !)."""
    expected = [
        "usage: !broke [SERVICE] what broke — record an incident; the service defaults to "
        "the deploy that is running",
        "example: !broke pkgdb2 the acl page returns 500",
    ]
    assert await say(core, registry, "!help broke") == expected
    assert await say(core, registry, "!help !broke") == expected
    (admin,) = (await say(core, registry, "!help plans"))[:1]
    assert admin.startswith("usage: !plans reload (admins only)")


# --- errors ----------------------------------------------------------------------------------


async def test_internal_error_gets_a_reference_and_is_logged(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a handler is logged with its traceback under a reference; the user gets
    only "internal error (ref …)", never the exception's text."""

    @base.command("!boom", "fails", base.example("!boom", "internal error"))
    async def boom(core: Core, request: Request) -> Reply:
        raise KeyError("secret internals")

    registry = Registry()
    registry.add(boom)

    with caplog.at_level(logging.ERROR, logger="deploybot.commands.dispatch"):
        (line,) = await say(core, registry, "!boom")
    match = re.fullmatch(r"internal error \(ref ([0-9a-f]{6})\).*", line)
    assert match, line
    assert "secret" not in line
    (record,) = caplog.records
    assert match[1] in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028"])
async def test_an_error_echoing_user_text_is_not_split_where_the_user_wants(
    core: Core, separator: str
) -> None:
    """An expected error is split into lines only at the LFs it was written with: a
    separator that str.splitlines() honours (VT, FF, FS, GS, RS, NEL, U+2028) inside
    echoed user text would make "!op" start a line of the bot's."""

    @base.command("!echo WORD", "fails", base.example("!echo x", "no x"))
    async def echo(core: Core, request: Request) -> Reply:
        raise DeploybotError(f"no such thing as {request.args}")

    registry = Registry()
    registry.add(echo)
    lines = await say(core, registry, f"!echo thing{separator}!op alice")
    assert len(lines) == 1 and lines[0].startswith("no such thing as thing"), lines


async def test_extra_breaks_and_consumers_in_deploy(tmp_path: Path, registry: Registry) -> None:
    """!deploy shows every API break (with or without migration) and flags a consumer
    without contact in the readiness line."""
    plan = make_plan(
        api_breaks=(
            ApiBreak("/api/a", "renamed"),
            ApiBreak("/api/b", "removed", "use /api/c"),
        ),
        consumers=(Consumer("mystery script"),),
    )
    core = make_core(tmp_path, Clock(BEFORE), [plan])
    try:
        lines = await say(core, registry, "!deploy pkgdb2-2.0", channel=None)
        assert "⚠ API BREAK: /api/a — renamed — no migration note" in lines
        assert "⚠ API BREAK: /api/b — removed — migration: use /api/c" in lines
        assert "consumers: mystery script (no contact)" in lines
        assert lines[-1] == (
            "pkgdb2-2.0: NOT READY (5/6): missing consumer-contacts — "
            "!ready pkgdb2-2.0 for the checklist"
        )
    finally:
        core.store.close()


async def test_a_command_refused_by_the_fence_is_answered_by_nobody(
    core: Core, clock: Clock, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old active (PostgreSQL active/standby) whose write the store's fence refused
    answers nothing, not even "nothing was changed": the new active acts and answers
    (the fence itself: tests/test_leader.py, tests/test_ha_fence.py).  Without the
    except clause the refusal was answered like "database busy"."""
    clock.now = DURING

    def refused(*args: object, **kwargs: object) -> None:
        raise NotLeaderError(1, 2)

    monkeypatch.setattr(core.store, "report_incident", refused)
    assert await send(core, registry, "!broke pkgdb2 acl page 500") == []
    assert core.store.list_incidents() == ()


async def test_a_command_on_a_locked_database_says_busy_and_changes_nothing(
    tmp_path: Path, clock: Clock, registry: Registry
) -> None:
    """Another program holds the database's write lock: !broke waits no longer than the
    busy timeout, answers that the database is busy and to try again (not an internal
    error), and no incident is recorded; once the lock is gone the same line works."""
    clock.now = DURING
    core = make_core(tmp_path, clock, [make_plan()])
    core.store.close()
    core.store = Store.open(tmp_path / "deploybot.sqlite3", busy_timeout=0.2)
    try:
        with sqlite3.connect(tmp_path / "deploybot.sqlite3", isolation_level=None) as other:
            other.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            out = await dispatch(core, registry, request(core, "!broke pkgdb2 acl page 500"))
            waited = time.monotonic() - started
            other.execute("ROLLBACK")
        assert [o.text for o in out] == [
            "the database is busy (another program is writing to it); nothing was changed: "
            "try again in a moment"
        ]
        assert waited < 2
        assert core.store.list_incidents() == ()
        out = await dispatch(core, registry, request(core, "!broke pkgdb2 acl page 500"))
        assert out[0].text.startswith("recorded incident #1")
    finally:
        core.store.close()
