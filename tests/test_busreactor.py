"""BusReactor: what the bot does with a bus event (repeats dropped, facts acted on, never raises).

Each test builds a real core: a SQLite store under ``tmp_path`` and a PlanBook over a plan
file written with ``dump_plan``: badges-1.0, the badges backend playbook that the real
ansible samples in ``tests/data/bus-samples`` ran, with its window on Tue 2026-12-15
13:00–21:00 UTC.  Events are decoded from those samples (re-dated into the window), and
the transport is the shared :class:`~tests.fakes.RecordingOutbox`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploybot.bus.events import (
    KINDS,
    BadMessage,
    BusEvent,
    from_fedmsg_envelope,
    from_fedora_messaging,
)
from deploybot.bus.reactor import RECENT_IDS, BusReactor
from deploybot.bus.rules import DeployFact, DeployFinished, DeployStarted, OpenFirefighting
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.deployday.firefight import Firefight
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.plans.model import Plan
from deploybot.store import Store, StoreBusyError
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc

SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"
PREFIX = "org.fedoraproject"
WHEN = utc(2026, 12, 15, 13)  # badges-1.0: Tue 13:00–21:00 UTC
END = WHEN + timedelta(hours=8)
NOW = WHEN + timedelta(minutes=10)
ADMIN = "#fedora-admin"
FIRE = "#badges-firefight"
PLAYBOOK = "groups/badges-backend.yml"
STARTED = f"deploy of badges started by ralph ({PLAYBOOK})"
FINISHED_OK = f"deploy of badges finished ok ({PLAYBOOK})"
# The fedora-messaging sample: update_ticketkey.yml, sent at 2026-11-27 09:17:36 UTC.
TICKETKEY_WHEN = utc(2026, 11, 27, 9)
LOGGER = "deploybot.bus.reactor"


def sample(name: str) -> dict[str, Any]:
    """A real bus message from ``tests/data/bus-samples``, without its ``_source`` note."""
    document: dict[str, Any] = json.loads((SAMPLES_DIR / name).read_text(encoding="utf-8"))
    document.pop("_source")
    return document


def ansible(kind: str, msg_id: str | None, at: datetime = NOW, **changes: Any) -> BusEvent:
    """The real ansible.playbook.KIND sample (ralph runs the badges backend playbook), sent
    ``at``, with ``msg_id`` (None: no id, as in the sample) and ``changes`` to its body."""
    envelope = sample(f"ansible.playbook.{kind}.json")
    envelope["timestamp"] = at.timestamp()
    if msg_id is not None:
        envelope["msg_id"] = msg_id
    envelope["msg"].update(changes)
    return from_fedmsg_envelope(envelope, prefix=PREFIX)


def failed_results() -> dict[str, Any]:
    """The complete sample's results with failures on the production host only."""
    results: dict[str, Any] = sample("ansible.playbook.complete.json")["msg"]["results"]
    results["badges-backend01.phx2.fedoraproject.org"]["failures"] = 2
    return results


def unrelated(msg_id: str) -> BusEvent:
    """A real nagios message (nothing to do with deploys) with id ``msg_id``."""
    envelope = sample("nagios.service.state.change.json")
    envelope["msg_id"] = msg_id
    return from_fedmsg_envelope(envelope, prefix=PREFIX)


def kinds(facts: list[DeployFact]) -> list[str]:
    return [type(fact).__name__ for fact in facts]


def acted_on(reactor: BusReactor, event: BusEvent) -> bool:
    """Hand ``event`` to the reactor; False when it was dropped as a repeat."""
    before = reactor.duplicates
    reactor.handle(event)
    return reactor.duplicates == before


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR]


class BrokenOutbox(RecordingOutbox):
    """A transport whose posts fail while ``broken`` (other calls are recorded)."""

    def __init__(self, broken: bool = True) -> None:
        super().__init__()
        self.broken = broken

    def post(self, target: str, text: str) -> None:
        if self.broken:
            raise ConnectionError("transport exploded")
        super().post(target, text)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    """A real core: badges-1.0 (and ticketkey-1.0 for the fedora-messaging sample), the
    clock at 13:10 on the deploy day, no firefighting (no transport) yet."""
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    plans = [
        make_plan(
            id="badges-1.0",
            service="badges",
            release="1.0",
            playbooks=(PLAYBOOK,),
            when=WHEN,
        ),
        make_plan(
            id="ticketkey-1.0",
            service="ticketkey",
            release="1.0",
            playbooks=("update_ticketkey.yml",),
            when=TICKETKEY_WHEN,
        ),
    ]
    for plan in plans:
        (plans_dir / f"{plan.id}.yaml").write_text(dump_plan(plan), encoding="utf-8")
    book = PlanBook(plans_dir)
    report = book.reload()
    assert not report.problems, report.problems
    store = Store.open(tmp_path / "db.sqlite3")
    config = config_from_mapping({"admin_channel": ADMIN})
    yield Core(config=config, store=store, book=book, clock=lambda: NOW)
    store.close()


@pytest.fixture
def outbox() -> RecordingOutbox:
    return RecordingOutbox()


@pytest.fixture
def reactor(core: Core, outbox: RecordingOutbox) -> BusReactor:
    return BusReactor(core, outbox)


@pytest.fixture
def fire(core: Core, outbox: RecordingOutbox, reactor: BusReactor) -> Firefight:
    """Firefighting on the same transport as the reactor, as in the running bot."""
    reactor.deploy_day = DeployDay(core, outbox)
    return reactor.deploy_day.firefight


def badges(core: Core) -> Plan:
    plan = core.book.get("badges-1.0")
    assert plan is not None
    return plan


# --- repeats -----------------------------------------------------------------------------


def test_the_same_id_twice_is_acted_on_once(reactor: BusReactor, outbox: RecordingOutbox) -> None:
    """A redelivered message (same msg_id) is counted as a duplicate and does nothing."""
    done = ansible("complete", "2026-done")
    assert kinds(reactor.handle(done)) == ["DeployFinished"]
    assert reactor.handle(done) == []
    assert outbox.posts == [(ADMIN, FINISHED_OK)]
    assert reactor.duplicates == 1
    assert reactor.stats.decoded == 2
    assert reactor.stats.facts["DeployFinished"] == 1


def test_the_same_id_from_fedmsg_and_amqp_is_acted_on_once(
    reactor: BusReactor, outbox: RecordingOutbox
) -> None:
    """A message bridged onto both buses (same id) is acted on once, whichever comes first."""
    document = sample("fedora-messaging.ansible.playbook.complete.json")
    amqp = from_fedora_messaging(
        document["topic"], document["body"], document["headers"], document["id"], prefix=PREFIX
    )
    fedmsg = from_fedmsg_envelope(
        {
            "topic": document["topic"],
            "msg": document["body"],
            "msg_id": document["id"],
            "timestamp": amqp.sent_at.timestamp() if amqp.sent_at else None,
        },
        prefix=PREFIX,
    )
    assert (amqp.source, fedmsg.source) == ("fedora-messaging", "fedmsg")
    assert kinds(reactor.handle(amqp, now=TICKETKEY_WHEN + timedelta(hours=1))) == [
        "DeployFinished"
    ]
    assert reactor.handle(fedmsg, now=TICKETKEY_WHEN + timedelta(hours=1)) == []
    assert outbox.posts == [(ADMIN, "deploy of ticketkey finished ok (update_ticketkey.yml)")]
    assert reactor.duplicates == 1


def test_events_without_an_id_are_never_dropped_as_repeats(
    reactor: BusReactor, outbox: RecordingOutbox
) -> None:
    """Old fedmsg messages have no msg_id (id ""): each is acted on, however many arrive."""
    done = ansible("complete", None)
    assert done.id == ""
    for _ in range(3):
        assert kinds(reactor.handle(done)) == ["DeployFinished"]
    assert outbox.posts == [(ADMIN, FINISHED_OK)] * 3
    assert reactor.duplicates == 0


def test_an_id_is_remembered_for_RECENT_IDS_events(reactor: BusReactor) -> None:
    """With RECENT_IDS - 1 other ids in between, a repeat is still recognised."""
    done = ansible("complete", "2026-done")
    filler = unrelated("filler")
    assert acted_on(reactor, done)
    for n in range(RECENT_IDS - 1):
        assert acted_on(reactor, dataclasses.replace(filler, id=f"filler-{n}"))
    assert not acted_on(reactor, done)
    assert reactor.duplicates == 1


def test_the_oldest_id_is_forgotten_first(reactor: BusReactor, outbox: RecordingOutbox) -> None:
    """After RECENT_IDS other ids the first one leaves the memory, and the ids after it
    leave in the order they came; the first one, acted on, is still known to the store."""
    done = ansible("complete", "2026-done")
    filler = unrelated("filler")
    reactor.handle(done)
    for n in range(RECENT_IDS):
        reactor.handle(dataclasses.replace(filler, id=f"filler-{n}"))
    assert reactor.duplicates == 0
    # filler-0 is now the oldest id remembered (its repeat does not evict anything) …
    assert not acted_on(reactor, dataclasses.replace(filler, id="filler-0"))
    # … while the first id left the memory, but the store knows it: not posted again,
    # and it comes back into the memory, evicting filler-1,
    assert not acted_on(reactor, done)
    assert outbox.posts == [(ADMIN, FINISHED_OK)]
    # … which is therefore new again, while filler-2 is still remembered.
    assert acted_on(reactor, dataclasses.replace(filler, id="filler-1"))
    assert not acted_on(reactor, dataclasses.replace(filler, id="filler-3"))
    assert reactor.duplicates == 3


def test_a_repeat_makes_an_id_recent_again(reactor: BusReactor, outbox: RecordingOutbox) -> None:
    """Ids are forgotten least recently *seen* first: an id seen again lately outlives
    ids first seen after it."""
    done = ansible("complete", "2026-done")
    filler = unrelated("filler")
    reactor.handle(done)
    for n in range(RECENT_IDS - 1):
        reactor.handle(dataclasses.replace(filler, id=f"filler-{n}"))
    assert not acted_on(reactor, done)  # seen again: now the most recent id
    # One more new id: RECENT_IDS + 1 distinct ids, so the least recently seen one goes.
    assert acted_on(reactor, dataclasses.replace(filler, id=f"filler-{RECENT_IDS - 1}"))
    assert not acted_on(reactor, done)  # kept
    assert acted_on(reactor, dataclasses.replace(filler, id="filler-0"))  # forgotten
    assert outbox.posts == [(ADMIN, FINISHED_OK)]
    assert reactor.duplicates == 2


def test_an_event_acted_on_is_known_after_a_restart_for_a_day(
    core: Core, outbox: RecordingOutbox
) -> None:
    """The id of an event that meant facts is kept in the store: a new reactor (the bot
    restarted) drops its repeat; a day later it is forgotten.  Unrelated traffic is not
    written to the store."""
    done = ansible("complete", "2026-done")
    assert kinds(BusReactor(core, outbox).handle(done)) == ["DeployFinished"]
    BusReactor(core, outbox).handle(unrelated("nagios-1"))
    restarted = BusReactor(core, outbox)
    assert not acted_on(restarted, done)
    assert acted_on(restarted, unrelated("nagios-1"))  # no facts: never in the store
    assert outbox.posts == [(ADMIN, FINISHED_OK)]
    assert not core.store.event_seen("nagios-1", NOW - timedelta(days=1))
    later = BusReactor(core, outbox)
    assert kinds(later.handle(done, now=NOW + timedelta(days=1, seconds=1))) == ["DeployFinished"]


def test_an_event_whose_action_the_locked_store_refused_is_not_remembered(
    core: Core, outbox: RecordingOutbox, reactor: BusReactor, fire: Firefight
) -> None:
    """Another connection holds the write lock: opening firefighting fails, handle raises
    StoreBusyError, the start is not posted and its id is not remembered; once the lock
    is gone the same event does the whole of it."""
    core.store._db.execute("PRAGMA busy_timeout = 50")
    start = ansible("start", "2026-start")
    with sqlite3.connect(core.store.path, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusyError, match="nothing was changed"):
            reactor.handle(start)
        other.execute("ROLLBACK")
    assert outbox.posts == [] and sum(reactor.stats.facts.values()) == 0
    assert not core.store.event_seen(start.id, NOW - timedelta(days=1))
    assert kinds(reactor.handle(start)) == ["OpenFirefighting", "DeployStarted"]
    assert fire.is_open(badges(core))
    assert STARTED in outbox.to(ADMIN)
    assert reactor.duplicates == 0


# --- acting on facts ---------------------------------------------------------------------


def test_a_planned_start_opens_firefighting_and_is_told_in_both_channels(
    core: Core, reactor: BusReactor, outbox: RecordingOutbox, fire: Firefight
) -> None:
    """A start of a planned playbook in the window opens firefighting (joined before
    anything is said there), then "started by" goes to the admin and firefighting
    channels.  A second start (another id) does not open it again."""
    facts = reactor.handle(ansible("start", "2026-start"))
    assert kinds(facts) == ["OpenFirefighting", "DeployStarted"]
    assert isinstance(facts[0], OpenFirefighting) and facts[0].plan == badges(core)
    assert fire.is_open(badges(core))
    assert fire.channel_for(badges(core)) == FIRE
    assert outbox.calls[0] == ("join", FIRE)
    assert outbox.to(ADMIN)[-1] == STARTED
    assert outbox.to(FIRE)[-1] == STARTED
    assert core.store.list_pages()  # the on-shift people were paged, once

    outbox.clear()
    again = ansible("start", "2026-start-again", at=NOW + timedelta(minutes=5))
    assert kinds(reactor.handle(again)) == ["OpenFirefighting", "DeployStarted"]
    assert outbox.posts == [(ADMIN, STARTED), (FIRE, STARTED)]  # no new pages, no intro


def test_a_complete_with_failures_names_the_failing_host(
    core: Core, reactor: BusReactor, outbox: RecordingOutbox, fire: Firefight
) -> None:
    """Only the host with failures is named (domain cut), in both channels."""
    reactor.handle(ansible("start", "2026-start"))
    outbox.clear()
    done = ansible("complete", "2026-done", at=NOW + timedelta(minutes=4), results=failed_results())
    facts = reactor.handle(done)
    assert kinds(facts) == ["DeployFinished"]
    assert isinstance(facts[0], DeployFinished) and not facts[0].ok
    text = f"deploy of badges finished with failures on badges-backend01.phx2 ({PLAYBOOK})"
    assert outbox.posts == [(ADMIN, text), (FIRE, text)]


@pytest.mark.parametrize(
    ("at", "opens"),
    [
        pytest.param(WHEN - timedelta(hours=3), True, id="earlier-on-the-plan-day"),
        pytest.param(WHEN - timedelta(days=2), False, id="two-days-before"),
    ],
)
def test_an_unplanned_production_run_is_told_in_the_admin_channel_only(
    core: Core,
    reactor: BusReactor,
    outbox: RecordingOutbox,
    fire: Firefight,
    at: datetime,
    opens: bool,
) -> None:
    """A start outside the window warns in the admin channel only — even when it is on
    the plan's day, where it also opens firefighting: the warning is for the admins."""
    facts = reactor.handle(ansible("start", "2026-early", at=at), now=at + timedelta(minutes=1))
    expected = ["OpenFirefighting", "UnplannedDeploy"] if opens else ["UnplannedDeploy"]
    assert kinds(facts) == expected
    assert fire.is_open(badges(core)) is opens
    warning = (
        f"⚠ unplanned deploy: {PLAYBOOK} run by ralph outside the badges-1.0 window "
        "(Tue 2026-12-15 13:00–21:00 UTC)"
    )
    warned = [(target, text) for target, text in outbox.posts if "unplanned" in text]
    assert warned == [(ADMIN, warning)]
    if not opens:
        assert outbox.calls == [("post", ADMIN, warning)]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(unrelated("2015-nagios"), id="nagios"),
        *(
            pytest.param(from_fedmsg_envelope(sample(f"{name}.json"), prefix=PREFIX), id=name)
            for name in (
                "announce.announcement",
                "github.deployment_status",
                "infragit.receive.ansible",
            )
        ),
        pytest.param(ansible("start", "2026-other", playbook="groups/koji.yml"), id="unplanned"),
        pytest.param(ansible("start", "2026-dry", check=True), id="check-mode"),
    ],
)
def test_unrelated_traffic_does_nothing(
    reactor: BusReactor, outbox: RecordingOutbox, fire: Firefight, event: BusEvent
) -> None:
    """Other topics, playbooks no plan lists and dry runs: no facts, no call at all."""
    assert reactor.handle(event) == []
    assert outbox.calls == []
    assert reactor.stats.decoded == 1
    assert set(reactor.stats.facts.values()) == {0}


def test_a_staging_run_does_nothing(core: Core, outbox: RecordingOutbox) -> None:
    """The same playbook run in stg does nothing when the bot watches prod."""
    envelope = sample("ansible.playbook.start.json")
    envelope["topic"] = envelope["topic"].replace(".prod.", ".stg.")
    envelope["timestamp"] = NOW.timestamp()
    reactor = BusReactor(core, outbox)
    assert reactor.handle(from_fedmsg_envelope(envelope, prefix=PREFIX)) == []
    assert outbox.calls == []


def test_a_start_after_the_window_ended_does_not_open_firefighting(
    core: Core,
    reactor: BusReactor,
    outbox: RecordingOutbox,
    fire: Firefight,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A start sent in the window but handled after its end (a queue drained late) is
    still told in the admin channel, but opens nothing — quietly, without an error."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    late = ansible("start", "2026-late", at=END - timedelta(minutes=10))
    facts = reactor.handle(late, now=END + timedelta(minutes=5))
    assert kinds(facts) == ["OpenFirefighting", "DeployStarted"]
    assert not fire.is_open(badges(core))
    assert outbox.kinds("join") == []
    assert outbox.calls == [("post", ADMIN, STARTED)]
    assert errors(caplog) == []


# --- messages that did not decode --------------------------------------------------------


def test_reject_counts_every_drop_and_logs_once_per_kind(
    reactor: BusReactor, outbox: RecordingOutbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Each rejected message is counted by kind; within the rate-limit interval only the
    first of each kind is logged, and the next line says how many were held back."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for n in range(3):
        reactor.reject(BadMessage("not-json", f"junk {n}"), "tcp://hub:9940")
    for _ in range(2):
        reactor.reject(BadMessage("bad-topic", "'x.y'"))
    assert reactor.stats.dropped == {
        kind: {"not-json": 3, "bad-topic": 2}.get(kind, 0) for kind in KINDS
    }
    assert reactor.stats.as_dict()["dropped_total"] == 5
    assert reactor.stats.decoded == 0
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    assert logged == [
        (logging.WARNING, "dropped a bus message from tcp://hub:9940 (not-json): junk 0"),
        (logging.WARNING, "dropped a bus message (bad-topic): 'x.y'"),
    ]
    assert reactor.bad_log.suppressed() == {"not-json": 2, "bad-topic": 1}

    # flush_log (the application calls it every interval) tells what was held back only
    # once the interval has passed: a burst followed by silence is not lost.
    caplog.clear()
    assert reactor.flush_log() == 0
    reactor.bad_log.interval = 0.01
    time.sleep(0.02)
    assert reactor.flush_log() == 2
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "dropped 1 more bus message(s) (bad-topic) since the last report",
        "dropped 2 more bus message(s) (not-json) since the last report",
    ]
    reactor.bad_log.interval = 60
    for _ in range(2):
        reactor.reject(BadMessage("not-json", "junk"))

    # The interval is what holds them back: without it the next drop is logged at once.
    caplog.clear()
    reactor.bad_log.interval = 0
    reactor.reject(BadMessage("not-json", "junk 3"))
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "dropped a bus message (not-json): junk 3 (2 more like it since the last report)"
    ]
    assert outbox.calls == []


# --- never raising -----------------------------------------------------------------------


def test_an_event_that_cannot_be_interpreted_is_logged_and_dropped(
    core: Core, reactor: BusReactor, outbox: RecordingOutbox, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken clock (naive time) makes the rules raise: handle logs the error with its
    traceback and returns no facts; once the clock is right, events are acted on again."""
    core.clock = lambda: NOW.replace(tzinfo=None)
    assert reactor.handle(ansible("start", "2026-start")) == []
    (record,) = errors(caplog)
    assert record.getMessage() == (
        "bus event 2026-start (org.fedoraproject.prod.ansible.playbook.start) "
        "could not be interpreted"
    )
    assert record.exc_info is not None and record.exc_info[0] is TypeError
    assert outbox.calls == []
    assert set(reactor.stats.facts.values()) == {0}

    core.clock = lambda: NOW
    assert kinds(reactor.handle(ansible("complete", "2026-done"))) == ["DeployFinished"]
    assert outbox.posts == [(ADMIN, FINISHED_OK)]


def test_a_failing_transport_is_logged_and_later_events_still_work(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    """A post that raises does not escape handle (the facts are still returned); it is
    logged with its traceback, and once the transport works again so does the reactor."""
    outbox = BrokenOutbox()
    reactor = BusReactor(core, outbox)
    facts = reactor.handle(ansible("start", "2026-start"))
    assert kinds(facts) == ["OpenFirefighting", "DeployStarted"]
    (record,) = errors(caplog)
    assert record.getMessage() == f"posting a bus fact to {ADMIN} failed"
    assert record.exc_info is not None and record.exc_info[0] is ConnectionError

    outbox.broken = False
    assert kinds(reactor.handle(ansible("complete", "2026-done"))) == ["DeployFinished"]
    assert outbox.posts == [(ADMIN, FINISHED_OK)]


def test_a_failing_fact_does_not_stop_the_next_one(
    core: Core, reactor: BusReactor, outbox: RecordingOutbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening firefighting fails (its transport raises): the start is still told."""
    reactor.deploy_day = DeployDay(core, BrokenOutbox())
    facts = reactor.handle(ansible("start", "2026-start"))
    assert kinds(facts) == ["OpenFirefighting", "DeployStarted"]
    assert isinstance(facts[1], DeployStarted)
    assert [r.getMessage() for r in errors(caplog)] == ["acting on 'OpenFirefighting' failed"]
    assert outbox.to(ADMIN) == [STARTED]


class AdminRefusingOutbox(RecordingOutbox):
    """A transport that fails for the admin channel only."""

    def post(self, target: str, text: str) -> None:
        if target == ADMIN:
            raise ConnectionError("admin channel refused")
        super().post(target, text)


def test_a_target_that_fails_does_not_silence_the_others(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    """The admin channel's post raises: the firefighting channel still hears the start."""
    outbox = AdminRefusingOutbox()
    reactor = BusReactor(core, outbox, DeployDay(core, RecordingOutbox()))  # pages elsewhere
    reactor.handle(ansible("start", "2026-start"))
    assert outbox.to(FIRE)[-1] == STARTED
    assert [r.getMessage() for r in errors(caplog)] == [f"posting a bus fact to {ADMIN} failed"]
