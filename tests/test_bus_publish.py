"""Where the bot decides to publish (no broker: tests/test_amqp_publish.py has it): each
event stores exactly one bus message, in the transaction of the decision that causes it.

A real core (SQLite under ``tmp_path``, the factory plan pkgdb2-2.0 with the playbook
``groups/pkgdb.yml``, Tue 2026-12-15 13:00–21:00 UTC) with a :class:`BusOutbox` whose
transport keeps what it is handed; the store's ``bus_outbox`` table is what is asserted on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploybot.bus.events import from_fedora_messaging
from deploybot.bus.reactor import BusReactor
from deploybot.commands.dispatch import dispatch
from deploybot.commands.registry import build_registry
from deploybot.config import InvalidConfig, config_from_mapping, load_config
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.deployday.digestpost import DigestPoster
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.publish import BusMessage, BusOutbox
from deploybot.store import Store, StoreWriteError
from tests.fakes import HandedBusMessages, RecordingOutbox
from tests.planfactory import make_plan, utc

WHEN = utc(2026, 12, 15, 13)
PLAYBOOK = "groups/pkgdb.yml"
PREFIX = "org.fedoraproject"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(WHEN + timedelta(minutes=5))


@pytest.fixture
def handed() -> HandedBusMessages:
    return HandedBusMessages()


@pytest.fixture
def core(tmp_path: Path, clock: Clock, handed: HandedBusMessages) -> Iterator[Core]:
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = make_plan(playbooks=(PLAYBOOK,), when=WHEN)
    (plans / f"{plan.id}.yaml").write_text(dump_plan(plan), encoding="utf-8")
    book = PlanBook(plans)
    assert not book.reload().problems
    store = Store.open(tmp_path / "db.sqlite3")
    config = config_from_mapping({"admin_channel": "#fedora-admin", "digest_time": "22:00"})
    core = Core(config=config, store=store, book=book, clock=clock)
    core.bus_outbox = BusOutbox(
        store, prefix=PREFIX, environment="prod", clock=clock, transport=handed
    )
    yield core
    core.store.close()


def topics(core: Core) -> list[str]:
    """The topics stored in the bus outbox, in order (after the prefix and environment)."""
    pending = core.store.pending_bus_messages()
    return [m.routing_key.removeprefix(f"{PREFIX}.prod.") for m in pending]


def bodies(core: Core) -> list[dict[str, Any]]:
    return [json.loads(m.body) for m in core.store.pending_bus_messages()]


def playbook(kind: str, message_id: str, at: datetime, **body: Any) -> Any:
    return from_fedora_messaging(
        f"{PREFIX}.prod.ansible.playbook.{kind}",
        {"playbook": f"/srv/web/infra/ansible/playbooks/{PLAYBOOK}", "userid": "pingou", **body},
        {"sent-at": at.isoformat()},
        message_id,
        prefix=PREFIX,
    )


# --- the outbox in the store -----------------------------------------------------------


def test_messages_are_kept_in_order_until_confirmed_across_reopen(
    tmp_path: Path, core: Core, handed: HandedBusMessages
) -> None:
    for day in ("2026-12-14", "2026-12-15"):
        core.publish(BusMessage("deploybot.digest", {"date": day}))
    assert [json.loads(m.body)["date"] for m in handed.messages] == ["2026-12-14", "2026-12-15"]
    core.store.close()
    core.store = Store.open(tmp_path / "db.sqlite3")
    first, second = core.store.pending_bus_messages()
    assert (first.message_id, first.headers, first.body) == (
        handed.messages[0].message_id,
        handed.messages[0].headers,
        handed.messages[0].body,
    )
    assert core.store.confirm_bus_messages([first.id]) == 1
    assert core.store.pending_bus_messages() == (second,)


def test_a_decision_rolled_back_leaves_no_message_and_hands_none_over(
    core: Core, handed: HandedBusMessages
) -> None:
    with pytest.raises(RuntimeError), core.store.transaction():
        core.store.claim_once("digest:2026-12-15", WHEN)
        core.publish(BusMessage("deploybot.digest", {"date": "2026-12-15"}))
        raise RuntimeError("the decision failed after the message was written")
    assert core.store.pending_bus_messages() == ()
    assert handed.messages == []
    assert core.store.claim_once("digest:2026-12-15", WHEN)  # the claim went too


def test_a_message_id_is_stored_once(core: Core) -> None:
    stored = core.store.add_bus_message("id-1", "a.b", {}, "{}", WHEN)
    with pytest.raises((sqlite3.IntegrityError, StoreWriteError)):
        core.store.add_bus_message(stored.message_id, "a.b", {}, "{}", WHEN)


def test_nothing_is_stored_when_the_bot_does_not_publish(core: Core) -> None:
    core.bus_outbox = None
    core.publish(BusMessage("deploybot.digest", {"date": "2026-12-15"}))
    assert core.store.pending_bus_messages() == ()


def test_amqp_publish_needs_amqp_url(tmp_path: Path) -> None:
    ini = tmp_path / "bot.ini"
    ini.write_text("[deploybot]\namqp_publish = true\n", encoding="utf-8")
    with pytest.raises(InvalidConfig, match=r"bot.ini:2: \[deploybot\] amqp_publish: .*amqp_url"):
        load_config(ini)
    ini.write_text(
        "[deploybot]\namqp_publish = yes\namqp_url = amqp://127.0.0.1/\n", encoding="utf-8"
    )
    assert load_config(ini).amqp_publish is True


# --- where events happen -----------------------------------------------------------------


def test_a_planned_start_and_complete_each_publish_once(core: Core, clock: Clock) -> None:
    """deploy.start and deploy.complete at the events' times; the same message id again
    (a redelivery) publishes nothing more; an unplanned run publishes nothing."""
    said = RecordingOutbox()
    reactor = BusReactor(core, said, DeployDay(core, RecordingOutbox()))
    started = playbook("start", "start-1", WHEN + timedelta(minutes=2))
    reactor.handle(started)
    reactor.handle(started)
    results = {"pkgdb01.phx2.fedoraproject.org": {"failures": 1, "unreachable": 0}}
    clock.now = WHEN + timedelta(hours=1)
    reactor.handle(playbook("complete", "done-1", clock.now, results=results))
    clock.now = WHEN + timedelta(days=1)
    reactor.handle(playbook("start", "unplanned-1", clock.now))
    assert "unplanned deploy" in said.to("#fedora-admin")[-1]
    assert topics(core) == ["deploybot.deploy.start", "deploybot.deploy.complete"]
    start, complete = bodies(core)
    assert start["started_at"] == "2026-12-15T13:02:00Z" and start["user"] == "pingou"
    assert start["deployment"]["id"] == "pkgdb2-2.0" and start["playbook"] == PLAYBOOK
    assert complete["result"] == "failed"
    assert complete["failed_hosts"] == ["pkgdb01.phx2.fedoraproject.org"]


def test_a_start_whose_actions_the_store_refused_publishes_nothing(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy event could not be recorded: the event is not remembered, and no
    message is kept (the redelivery does the whole of it, once)."""
    reactor = BusReactor(core, RecordingOutbox())

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise StoreWriteError("disk full")

    monkeypatch.setattr(core.store, "record_deploy_event", refuse)
    with pytest.raises(StoreWriteError):
        reactor.handle(playbook("start", "start-1", WHEN + timedelta(minutes=2)))
    assert topics(core) == []
    monkeypatch.undo()
    reactor.handle(playbook("start", "start-1", WHEN + timedelta(minutes=2)))
    assert topics(core) == ["deploybot.deploy.start"]


async def test_broke_and_fixed_publish_the_incident(core: Core, clock: Clock) -> None:
    registry = build_registry()

    async def say(line: str, nick: str, account: str | None) -> list[str]:
        name, _, args = line[1:].partition(" ")
        from deploybot.commands.base import Request

        request = Request(
            nick=nick,
            mask=f"{nick}!{nick}@users.test",
            account=account,
            channel="#fedora-admin",
            name=name,
            args=args,
            now=clock(),
        )
        return [out.text for out in await dispatch(core, registry, request)]

    await say("!broke pkgdb2 the acl page returns 500", "dgilmore", None)
    clock.now += timedelta(minutes=15)
    await say("!fixed 1 rolled back", "pingou", "pingou")
    assert "already fixed" in " ".join(await say("!fixed 1", "nirik", "nirik"))
    assert topics(core) == ["deploybot.incident.new", "deploybot.incident.fixed"]
    new, fixed = bodies(core)
    assert new["incident"]["reporter"] == "dgilmore"
    assert new["incident"]["reporter_account"] is None
    assert new["incident"]["deployment_id"] == "pkgdb2-2.0"
    assert new["incident"]["minutes_into_deploy"] == 5
    assert fixed["incident"]["fixed_by_account"] == "pingou"
    assert fixed["incident"]["repair_seconds"] == 900
    assert fixed["note"] == "rolled back"


def test_each_escalated_page_is_published_once(core: Core, clock: Clock) -> None:
    day = DeployDay(core, RecordingOutbox())
    plan = core.book.get("pkgdb2-2.0")
    assert plan is not None
    day.firefight.open(plan, WHEN, reason="scheduled")
    paged = core.store.list_pages(pending=True)
    assert len(paged) >= 2
    escalated = day.firefight.pager.escalate_due(WHEN + timedelta(minutes=10))
    assert escalated and day.firefight.pager.escalate_due(WHEN + timedelta(minutes=11)) == []
    published = [b for t, b in zip(topics(core), bodies(core), strict=True) if "page" in t]
    assert sorted(b["page"]["number"] for b in published) == sorted(p.number for p in escalated)
    assert all(b["escalated_to"] == list(plan.roster.escalation) for b in published)
    assert all(b["waited_seconds"] == 600 for b in published)


def test_the_digest_is_published_with_its_claim_once(core: Core) -> None:
    core.store.report_incident(
        service="pkgdb2",
        text="acl page 500",
        reporter_nick="dgilmore",
        reporter_account=None,
        channel="#pkgdb2-firefight",
        now=WHEN + timedelta(minutes=20),
        deploy_id="pkgdb2-2.0",
        minutes_into_deploy=20,
    )
    poster = DigestPoster(core, RecordingOutbox())
    at = WHEN + timedelta(hours=9, minutes=1)
    assert poster.post_due(at) and poster.post_due(at + timedelta(minutes=5)) == []
    assert topics(core) == ["deploybot.digest"]
    (digest,) = bodies(core)
    assert digest["date"] == "2026-12-15"
    assert digest["totals"]["reported"] == 1 and digest["totals"]["open"] == 1
    assert [s["deployment_id"] for s in digest["sections"]] == ["pkgdb2-2.0"]
