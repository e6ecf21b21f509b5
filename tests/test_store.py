"""deploybot.store: the SQLite database keeps incidents, consumers, ledgers and pages."""

from __future__ import annotations

import os
import signal
import sqlite3
import string
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploybot.errors import DeploybotError
from deploybot.store import (
    SCHEMA_VERSION,
    AlreadyFixedError,
    Incident,
    Page,
    PageAlreadyAckedError,
    PageNotYoursError,
    Store,
    StoreOpenError,
    UnknownIncidentError,
    UnknownPageError,
    migrations,
)
from deploybot.store.incidents import _TIMELINES_SQL
from tests.storedb import StoreDatabase

T0 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "deploybot.sqlite3"


@pytest.fixture
def db_path(store_db: StoreDatabase) -> str:
    """The database of the test on each backend: an SQLite file, a PostgreSQL URL."""
    return store_db.location


@pytest.fixture
def store(db_path: str) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


@pytest.fixture
def sqlite_store(sqlite_path: Path) -> Iterator[Store]:
    """An SQLite store, for the tests of what only SQLite has (pragmas, plans, threads)."""
    with Store.open(sqlite_path) as opened:
        yield opened


def report(
    store: Store,
    now: datetime,
    *,
    service: str = "pkgdb2",
    text: str = "acl API returns null",
    nick: str = "alice",
    account: str | None = "alice",
) -> Incident:
    return store.report_incident(
        service=service,
        text=text,
        reporter_nick=nick,
        reporter_account=account,
        channel="#pkgdb2-firefight",
        now=now,
        deploy_id="pkgdb2-2.0",
        minutes_into_deploy=12,
    )


# -- opening, schema, migrations ----------------------------------------------------------


def test_open_creates_the_schema_with_durable_settings(
    sqlite_store: Store, sqlite_path: Path
) -> None:
    """A new file gets the current schema version, WAL, synchronous=FULL, foreign keys."""
    assert sqlite_path.exists()
    raw = sqlite_store._db  # the store's own connection: these pragmas are per connection
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"incidents", "incident_events", "consumers", "countdown_posts"} <= tables
    assert {"once_claims", "pages"} <= tables


def test_a_version_1_database_is_migrated_and_keeps_its_pages(sqlite_path: Path) -> None:
    """Migration 2 adds the page's target account and acknowledger's mask and account;
    a page stored by version 1 reads back with them unknown, and is the nick's to ack."""
    raw = sqlite3.connect(sqlite_path, isolation_level=None)
    migrations.MIGRATIONS[0].apply(raw)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO pages (target_nick, message, sender_nick, created_at)"
        " VALUES ('pingou', 'old page', 'deploybot', '2026-11-27T10:00:00Z')"
    )
    raw.close()
    with Store.open(sqlite_path) as store:
        (page,) = store.list_pages()
        assert (page.message, page.target_account, page.acked_mask) == ("old page", None, None)
        (acked,) = store.ack_pages("pingou", at(1), 1, account=None, mask="pingou!p@h")
        assert acked.acked_mask == "pingou!p@h"


def test_reopening_keeps_the_data(db_path: str) -> None:
    """Closing and reopening the file finds the same incidents, consumers and claims."""
    with Store.open(db_path) as first:
        report(first, at(0))
        first.add_consumer("pkgdb2", "dgilmore", None, "compose scripts", at(1))
        first.claim_once("digest:2026-11-27", at(2))
    with Store.open(db_path) as second:
        assert second.get(1).text == "acl API returns null"
        assert [c.nick for c in second.consumers("pkgdb2")] == ["dgilmore"]
        assert not second.claim_once("digest:2026-11-27", at(3))


def test_a_newer_schema_version_is_refused(store_db: StoreDatabase) -> None:
    """A database written by a newer deploybot is refused with a clear error, untouched."""
    Store.open(store_db.location).close()
    store_db.set_schema_version(SCHEMA_VERSION + 1)
    with pytest.raises(StoreOpenError) as caught:
        Store.open(store_db.location)
    message = str(caught.value)
    assert store_db.location in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "newer" in message
    assert store_db.schema_version() == SCHEMA_VERSION + 1


def test_a_file_that_is_not_sqlite_is_refused_naming_the_path(tmp_path: Path) -> None:
    """Pointing the config at a text file gives a DeploybotError naming that file."""
    path = tmp_path / "bot.ini"
    path.write_text("[deploybot]\n" * 200)
    with pytest.raises(StoreOpenError, match="not an SQLite database") as caught:
        Store.open(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, DeploybotError)
    assert path.read_text() == "[deploybot]\n" * 200


def test_someone_elses_sqlite_database_is_refused(tmp_path: Path) -> None:
    """An SQLite file with tables but no schema version is not taken over."""
    path = tmp_path / "other.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE incidents (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreOpenError, match="not a deploybot database") as caught:
        Store.open(path)
    assert str(path) in str(caught.value)


def test_a_path_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    """A database in a missing directory gives an error naming the path."""
    path = tmp_path / "no-such-dir" / "deploybot.sqlite3"
    with pytest.raises(StoreOpenError) as caught:
        Store.open(path)
    assert str(path) in str(caught.value)


def test_create_false_refuses_a_missing_file(tmp_path: Path) -> None:
    """With create=False (read-only tools) a missing file is an error, not a new database."""
    path = tmp_path / "missing.sqlite3"
    with pytest.raises(StoreOpenError, match="no such database file"):
        Store.open(path, create=False)
    assert not path.exists()


def test_a_new_migration_upgrades_an_existing_database(
    store_db: StoreDatabase, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reopening with one more step applies only that step and keeps the data."""
    with Store.open(db_path) as old:
        report(old, at(0))
    step = migrations.Migration(
        version=SCHEMA_VERSION + 1,
        description="test step",
        statements=("ALTER TABLE incidents ADD COLUMN severity TEXT",),
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, step))
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store.open(db_path) as new:
        assert new.get(1).service == "pkgdb2"
        assert new._db.execute("SELECT severity FROM incidents").fetchone()[0] is None
    assert store_db.schema_version() == SCHEMA_VERSION + 1


def test_a_failing_migration_leaves_the_database_untouched(
    store_db: StoreDatabase, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All pending steps run in one transaction: a failure rolls every one of them back
    (PostgreSQL's schema changes are transactional too)."""
    Store.open(db_path).close()

    def explode(connection: object) -> None:
        if store_db.backend == "sqlite":
            raise sqlite3.OperationalError("disk on fire")
        raise psycopg.OperationalError("disk on fire")

    steps = (
        migrations.Migration(SCHEMA_VERSION + 1, "ok", ("CREATE TABLE extra (x INTEGER)",)),
        migrations.Migration(SCHEMA_VERSION + 2, "bad", function=explode),
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, *steps))
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    with pytest.raises(StoreOpenError, match="disk on fire"):
        Store.open(db_path)
    assert store_db.schema_version() == SCHEMA_VERSION
    assert not store_db.table_exists("extra")


def test_the_store_closes_as_a_context_manager(db_path: str) -> None:
    """Leaving the ``with`` block closes the connection; close() may be repeated."""
    with Store.open(db_path) as opened:
        pass
    with pytest.raises((sqlite3.ProgrammingError, psycopg.InterfaceError)):
        opened.get(1)
    opened.close()


def test_use_from_another_thread_fails_loudly(sqlite_store: Store) -> None:
    """The connection belongs to the thread that opened it (the asyncio thread)."""
    errors: list[BaseException] = []

    store = sqlite_store

    def use() -> None:
        try:
            store.sent_countdown_keys()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert isinstance(errors[0], sqlite3.ProgrammingError)


# -- time ---------------------------------------------------------------------------------


def test_times_are_stored_as_utc_text_with_z_and_come_back_aware(store: Store) -> None:
    """A +02:00 time with microseconds is stored as UTC whole seconds with Z."""
    paris = timezone(timedelta(hours=2))
    incident = report(store, datetime(2026, 11, 27, 12, 0, 5, 987654, tzinfo=paris))
    raw = store._db.execute("SELECT reported_at FROM incidents").fetchone()[0]
    assert raw == "2026-11-27T10:00:05Z"
    assert incident.reported_at == datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)
    assert incident.reported_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: Store) -> None:
    """A datetime without a timezone is a programming error, not silently local time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        report(store, datetime(2026, 11, 27, 10, 0))
    assert store.list_incidents() == ()


# -- incidents ----------------------------------------------------------------------------


def test_incident_lifecycle_with_timeline_and_acknowledgement(store: Store) -> None:
    """report → reporter's note → take → note → fixed: timeline in order; the ack is the
    first action by someone other than the reporter (the reporter's note does not count)."""
    incident = report(store, at(0))
    assert incident.number == 1
    assert incident.open
    assert incident.deploy_id == "pkgdb2-2.0"
    assert incident.minutes_into_deploy == 12

    incident = store.add_note(1, "alice", "alice", "happens on every ACL page", at(1))
    assert incident.acknowledged_at is None

    incident = store.take(1, "pingou", "pingou", at(3))
    assert incident.owner == "pingou"
    assert incident.acknowledged_at == at(3)
    assert incident.acknowledged_by == "pingou"

    store.add_note(1, "nirik", "kevin", "rolling back the proxy cache", at(5))
    incident = store.fix(1, "pingou", "pingou", at(20), note="hotfix 2.0.1")

    assert not incident.open
    assert incident.fixed_at == at(20)
    assert incident.fixed_by == "pingou"
    assert incident.acknowledged_at == at(3)  # later actions do not move it
    assert incident.time_to_acknowledge == timedelta(minutes=3)
    assert incident.time_to_repair == timedelta(minutes=20)
    assert [(e.kind, e.nick, e.text, e.at) for e in incident.timeline] == [
        ("reported", "alice", "acl API returns null", at(0)),
        ("note", "alice", "happens on every ACL page", at(1)),
        ("taken", "pingou", "", at(3)),
        ("note", "nirik", "rolling back the proxy cache", at(5)),
        ("fixed", "pingou", "hotfix 2.0.1", at(20)),
    ]
    assert store.get(1) == incident


def test_reporter_taking_their_own_incident_is_not_an_acknowledgement(store: Store) -> None:
    """The reporter may own it, but only someone else's take acknowledges it."""
    report(store, at(0))
    assert store.take(1, "alice", "alice", at(1)).acknowledged_at is None
    incident = store.take(1, "pingou", None, at(2))
    assert incident.owner == "pingou"
    assert incident.acknowledged_at == at(2)
    assert incident.timeline[-1].text == "from alice"


def test_the_reporter_under_another_nick_is_recognised_by_account(store: Store) -> None:
    """Same services account, different nick: still the reporter, so no acknowledgement."""
    report(store, at(0), nick="alice", account="alice")
    assert store.add_note(1, "alice_away", "alice", "still broken", at(1)).acknowledged_at is None
    assert store.add_note(1, "ALICE", None, "nick match", at(2)).acknowledged_at is None
    assert store.add_note(1, "bob", "bob", "on it", at(3)).acknowledged_at == at(3)


def test_taking_an_incident_you_own_changes_nothing(store: Store) -> None:
    """A repeated !take by the owner (any case) adds no timeline entry."""
    report(store, at(0))
    first = store.take(1, "pingou", "pingou", at(1))
    again = store.take(1, "Pingou", "pingou", at(2))
    assert again == first


def test_fixing_by_someone_else_counts_as_acknowledgement(store: Store) -> None:
    """An incident fixed straight away by a responder has its ack time; by the reporter, not."""
    report(store, at(0))
    report(store, at(1))
    assert store.fix(1, "pingou", None, at(6)).acknowledged_at == at(6)
    assert store.fix(2, "alice", "alice", at(7)).acknowledged_at is None


def test_fixing_twice_is_an_error_naming_when(store: Store) -> None:
    """A second !fixed says when and by whom it was fixed, and changes nothing."""
    report(store, at(0))
    store.fix(1, "pingou", None, at(20))
    with pytest.raises(AlreadyFixedError) as caught:
        store.fix(1, "nirik", None, at(30))
    assert str(caught.value) == "incident 1 is already fixed (at 2026-11-27T10:20:00Z by pingou)"
    assert caught.value.fixed_at == at(20)
    assert store.get(1).fixed_by == "pingou"
    assert len(store.get(1).timeline) == 2


def test_a_fixed_incident_cannot_be_taken_but_can_get_notes(store: Store) -> None:
    """Take after the fix is an error; notes (follow-ups) are fine and are no ack."""
    report(store, at(0))
    store.fix(1, "alice", "alice", at(5))
    with pytest.raises(AlreadyFixedError):
        store.take(1, "pingou", None, at(6))
    incident = store.add_note(1, "pingou", None, "post-mortem: wiki/pkgdb2", at(7))
    assert incident.timeline[-1].kind == "note"
    assert incident.acknowledged_at is None


@pytest.mark.parametrize("action", ["get", "take", "note", "fix"])
def test_unknown_incident_number_is_an_error(store: Store, action: str) -> None:
    """Every operation on a number that does not exist says "no incident 42"."""
    report(store, at(0))
    calls = {
        "get": lambda: store.get(42),
        "take": lambda: store.take(42, "bob", None, at(1)),
        "note": lambda: store.add_note(42, "bob", None, "x", at(1)),
        "fix": lambda: store.fix(42, "bob", None, at(1)),
    }
    with pytest.raises(UnknownIncidentError, match=r"^no incident 42$"):
        calls[action]()


def test_numbers_are_sequential_from_one_and_continue_after_reopen(db_path: str) -> None:
    """Incident numbers go 1, 2, 3 and carry on after a restart."""
    with Store.open(db_path) as first:
        assert [report(first, at(i)).number for i in range(3)] == [1, 2, 3]
    with Store.open(db_path) as second:
        assert report(second, at(9)).number == 4


def test_text_is_stored_exactly_as_given(store: Store) -> None:
    """Quotes, SQL-looking text, NUL and non-ASCII round-trip unchanged (parameters only);
    PostgreSQL's text cannot hold NUL: there it comes back as U+FFFD."""
    text = "'); DROP TABLE incidents; --\0 ⚠ café %s %(x)s ? :name"
    incident = report(store, at(0), text=text, service="pkg'db")
    if store.backend == "postgresql":
        text = text.replace("\0", "\ufffd")
    assert store.get(incident.number).text == text
    assert store.get(incident.number).service == "pkg'db"
    assert store.list_incidents(service="pkg'db") == (store.get(incident.number),)


def test_list_incidents_filters(store: Store) -> None:
    """State, service (any case), deploy, reported-at range, limit and order filter."""
    report(store, at(0), service="pkgdb2")
    report(store, at(10), service="fas")
    report(store, at(20), service="pkgdb2")
    report(store, at(30), service="pkgdb2")
    store.fix(3, "pingou", None, at(40))

    def numbers(**filters: object) -> list[int]:
        return [i.number for i in store.list_incidents(**filters)]  # type: ignore[arg-type]

    assert numbers() == [1, 2, 3, 4]
    assert numbers(state="open") == [1, 2, 4]
    assert numbers(state="fixed") == [3]
    assert numbers(service="PKGDB2") == [1, 3, 4]
    assert numbers(service="pkgdb2", state="open") == [1, 4]
    assert numbers(deploy_id="pkgdb2-2.0") == [1, 2, 3, 4]
    assert numbers(deploy_id="other") == []
    assert numbers(since=at(10)) == [2, 3, 4]
    assert numbers(until=at(20)) == [1, 2]
    assert numbers(since=at(10), until=at(30)) == [2, 3]
    assert numbers(limit=2) == [1, 2]
    assert numbers(limit=2, newest_first=True) == [4, 3]
    assert store.list_incidents(service="nothing") == ()
    with pytest.raises(ValueError, match="state"):
        store.list_incidents(state="closed")  # type: ignore[arg-type]


def test_timelines_are_read_through_their_index(sqlite_store: Store) -> None:
    """EXPLAIN QUERY PLAN: the timelines of listed incidents are an index search of
    incident_events, never a scan, so listing stays fast with millions of events."""
    store = sqlite_store
    report(store, at(0))
    timeline_plan = [
        row[3]
        for row in store._db.execute("EXPLAIN QUERY PLAN " + _TIMELINES_SQL, {"numbers": "[1]"})
    ]
    events = [line for line in timeline_plan if "incident_events" in line]
    assert events and all("USING INDEX incident_events_incident" in line for line in events)


# -- consumers ----------------------------------------------------------------------------


def test_uses_is_idempotent_per_service_and_nick(store: Store) -> None:
    """Repeating !uses updates the one registration (what, account, time), any nick case."""
    first = store.add_consumer("pkgdb2", "dgilmore", None, "compose scripts", at(0))
    store.add_consumer("pkgdb2", "DGilmore", "ausil", "mash", at(5))
    store.add_consumer("pkgdb2", "dgilmore", "ausil", None, at(6))  # no what: keep "mash"
    (only,) = store.consumers("PKGDB2")
    assert only.nick == "dgilmore"
    assert only.account == "ausil"
    assert only.what == "mash"
    assert only.registered_at == first.registered_at == at(0)
    assert only.updated_at == at(6)


def test_consumers_are_per_service_and_can_be_removed(store: Store) -> None:
    """Each service has its own list (oldest first); removing (any case) returns what was
    removed, or None."""
    store.add_consumer("pkgdb2", "dgilmore", None, None, at(0))
    store.add_consumer("pkgdb2", "ralph", None, "fedmsg", at(1))
    store.add_consumer("fas", "ralph", None, None, at(2))
    assert [c.nick for c in store.consumers("pkgdb2")] == ["dgilmore", "ralph"]
    assert [c.nick for c in store.consumers("fas")] == ["ralph"]
    removed = store.remove_consumer("PKGDB2", "RALPH")
    assert removed is not None
    assert (removed.service, removed.nick, removed.what) == ("pkgdb2", "ralph", "fedmsg")
    assert store.remove_consumer("pkgdb2", "ralph") is None
    assert [c.nick for c in store.consumers("pkgdb2")] == ["dgilmore"]
    assert store.consumers("nothing") == ()


# -- ledgers ------------------------------------------------------------------------------


def test_a_countdown_is_claimed_once_even_across_restarts(db_path: str) -> None:
    """claim_countdown is True the first time only, also after reopening the file."""
    key = "pkgdb2-2.0@2014-05-28T13:00:00Z/1d"
    with Store.open(db_path) as first:
        assert first.claim_countdown(key, at(0))
        assert not first.claim_countdown(key, at(1))
        assert first.claim_countdown("pkgdb2-2.0@2014-05-28T13:00:00Z/4h", at(2), late=True)
    with Store.open(db_path) as second:
        assert not second.claim_countdown(key, at(3), late=True)
        assert second.sent_countdown_keys() == frozenset(
            {key, "pkgdb2-2.0@2014-05-28T13:00:00Z/4h"}
        )
        claims = {c.key: c for c in second.countdown_claims()}
        assert claims[key].claimed_at == at(0)
        assert not claims[key].late
        assert claims["pkgdb2-2.0@2014-05-28T13:00:00Z/4h"].late


def test_two_connections_cannot_both_claim(db_path: str) -> None:
    """Check-and-write is one statement: a second process sees the claim and gets False."""
    with Store.open(db_path) as bot, Store.open(db_path) as other:
        assert bot.claim_countdown("k", at(0), skipped=True)
        assert not other.claim_countdown("k", at(0))
        assert other.countdown_claims()[0].skipped
        assert other.claim_once("digest:2026-11-27", at(0))
        assert not bot.claim_once("digest:2026-11-27", at(0))


def test_claim_once_is_true_once_per_key(db_path: str) -> None:
    """Each key is claimed once, independently of other keys, and stays claimed."""
    with Store.open(db_path) as first:
        assert first.claim_once("firefight-open:pkgdb2-2.0", at(0))
        assert not first.claim_once("firefight-open:pkgdb2-2.0", at(1))
        assert first.claim_once("digest:2026-11-27", at(1))
    with Store.open(db_path) as second:
        assert not second.claim_once("digest:2026-11-27", at(2))
        assert second.claim_once("digest:2026-11-28", at(2))


def test_claimed_reads_the_ledger_without_claiming(db_path: str) -> None:
    """claimed() says whether a key was claimed, across a reopen, and claims nothing."""
    with Store.open(db_path) as first:
        assert not first.claimed("firefight-close:pkgdb2-2.0")
        assert first.claim_once("firefight-close:pkgdb2-2.0", at(0))
    with Store.open(db_path) as second:
        assert second.claimed("firefight-close:pkgdb2-2.0")
        assert not second.claimed("firefight-close:bodhi-2.0")
        assert second.claim_once("firefight-close:bodhi-2.0", at(1))


# -- pages --------------------------------------------------------------------------------


def page(store: Store, nick: str, now: datetime, *, escalate: float | None = 10) -> int:
    return store.create_page(
        target_nick=nick,
        team="infrastructure",
        plan_id="pkgdb2-2.0",
        message="deploy of pkgdb2 starts",
        sender_nick="deploybot",
        now=now,
        escalate_at=None if escalate is None else now + timedelta(minutes=escalate),
    ).number


def test_create_page_once_claims_and_pages_together(store: Store) -> None:
    """The first call claims the key and stores the page; later calls store nothing."""

    def once(now: datetime) -> Page | None:
        return store.create_page_once(
            "firefight-page:x:pingou",
            target_nick="pingou",
            team=None,
            plan_id="pkgdb2-2.0",
            message="deploy started",
            sender_nick="deploybot",
            now=now,
            escalate_at=None,
        )

    first = once(at(0))
    assert first is not None and first.number == 1
    assert store.claimed("firefight-page:x:pingou")
    assert once(at(1)) is None
    assert len(store.list_pages()) == 1


def test_ack_acknowledges_all_of_my_pending_pages(store: Store) -> None:
    """!ack without a number acks every pending page of that nick (any case), not others'."""
    assert [page(store, "pingou", at(0)), page(store, "pingou", at(1))] == [1, 2]
    page(store, "nirik", at(1))
    acked = store.ack_pages("Pingou", at(3))
    assert [p.number for p in acked] == [1, 2]
    assert all(p.acked_at == at(3) and p.acked_by == "Pingou" for p in acked)
    assert not any(p.pending for p in acked)
    assert store.ack_pages("pingou", at(4)) == ()
    assert [p.number for p in store.list_pages(pending=True)] == [3]


def test_ack_one_page_by_number(store: Store) -> None:
    """!ack N acks that page only; someone else's, unknown, or already acked are errors."""
    page(store, "pingou", at(0))
    page(store, "pingou", at(0))
    page(store, "nirik", at(0))
    assert [p.number for p in store.ack_pages("pingou", at(1), 2)] == [2]
    assert store.get_page(1).pending
    with pytest.raises(PageNotYoursError, match=r"^page 3 is for nirik, not for you$"):
        store.ack_pages("pingou", at(2), 3)
    with pytest.raises(UnknownPageError, match=r"^no page 9$"):
        store.ack_pages("pingou", at(2), 9)
    with pytest.raises(PageAlreadyAckedError, match=r"already acknowledged .*by pingou"):
        store.ack_pages("pingou", at(2), 2)


def test_a_vouched_nick_acks_a_page_sent_to_an_account(store: Store) -> None:
    """A page sent while its target was logged in to services needs that account — unless
    the network the !ack came from vouches for the nick (an authenticated address that the
    config maps to it): then the page is theirs, with no account, by number or all."""
    for _ in range(2):
        store.create_page(
            target_nick="pingou",
            team="infrastructure",
            plan_id="pkgdb2-2.0",
            message="deploy of pkgdb2 starts",
            sender_nick="deploybot",
            now=at(0),
            escalate_at=None,
            target_account="pingou",
        )
    assert store.ack_pages("pingou", at(1)) == ()
    with pytest.raises(PageNotYoursError):
        store.ack_pages("pingou", at(1), 1, mask="@pingou:fedora.im")
    assert [p.number for p in store.ack_pages("pingou", at(2), 1, vouched=True)] == [1]
    assert store.ack_pages("nirik", at(2), vouched=True) == ()
    acked = store.ack_pages("pingou", at(3), mask="@pingou:fedora.im", vouched=True)
    assert [(p.number, p.acked_mask) for p in acked] == [(2, "@pingou:fedora.im")]


def test_pending_escalations_and_mark_escalated(store: Store) -> None:
    """Due, unacked, not yet escalated pages are pending; marking removes them, once."""
    page(store, "pingou", at(0))  # due at 10
    page(store, "nirik", at(0))  # due at 10, acked first
    page(store, "abadger1999", at(5))  # due at 15
    page(store, "dgilmore", at(0), escalate=None)  # never escalates
    store.ack_pages("nirik", at(2))
    assert store.pending_escalations(at(9)) == ()
    assert [p.number for p in store.pending_escalations(at(10))] == [1]
    assert [p.number for p in store.pending_escalations(at(60))] == [1, 3]
    assert store.mark_escalated(1, at(10))
    assert not store.mark_escalated(1, at(11))
    assert not store.mark_escalated(2, at(11))  # acknowledged: nothing to escalate
    assert store.get_page(1).escalated_at == at(10)
    assert [p.number for p in store.pending_escalations(at(60))] == [3]
    with pytest.raises(UnknownPageError):
        store.mark_escalated(99, at(11))
    # an escalated page can still be acknowledged late
    assert [p.number for p in store.ack_pages("pingou", at(12))] == [1]


def test_list_pages_filters(store: Store) -> None:
    """Pages filter by pending, target, plan, creation range and limit."""
    page(store, "pingou", at(0))
    page(store, "nirik", at(5))
    store.ack_pages("nirik", at(6))
    assert [p.number for p in store.list_pages()] == [1, 2]
    assert [p.number for p in store.list_pages(pending=False)] == [2]
    assert [p.number for p in store.list_pages(target_nick="PINGOU")] == [1]
    assert [p.number for p in store.list_pages(plan_id="pkgdb2-2.0", since=at(1))] == [2]
    assert [p.number for p in store.list_pages(until=at(5), limit=5)] == [1]


def test_acking_a_page_about_an_incident_acknowledges_the_incident(store: Store) -> None:
    """A page sent for !broke links the incident: its ack is the incident's ack time."""
    report(store, at(0))
    created = store.create_page(
        target_nick="pingou",
        team="infrastructure",
        plan_id="pkgdb2-2.0",
        message="incident 1: acl API returns null",
        sender_nick="alice",
        now=at(0),
        escalate_at=at(10),
        incident=1,
    )
    assert created.incident == 1
    store.ack_pages("pingou", at(2), account="pingou")
    incident = store.get(1)
    assert incident.acknowledged_at == at(2)
    assert incident.acknowledged_by == "pingou"
    assert (incident.timeline[-1].kind, incident.timeline[-1].text) == ("ack", "page 1")
    with pytest.raises(UnknownIncidentError):
        store.create_page(
            target_nick="pingou",
            team=None,
            plan_id=None,
            message="x",
            sender_nick="alice",
            now=at(3),
            escalate_at=None,
            incident=7,
        )


# -- durability ---------------------------------------------------------------------------

_REPORT_AND_HANG = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from deploybot.store import Store

    store = Store.open(sys.argv[1])
    incident = store.report_incident(
        service="pkgdb2", text="survives SIGKILL", reporter_nick="alice",
        reporter_account=None, channel="#pkgdb2-firefight",
        now=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
    )
    print("committed", incident.number, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.e2e  # starts a Python process
def test_a_reported_incident_survives_sigkill_right_after(sqlite_path: Path) -> None:
    """Once report_incident has returned, killing the process (no close, no checkpoint)
    loses nothing: reopening the file finds the incident."""
    with subprocess.Popen(
        [sys.executable, "-c", _REPORT_AND_HANG, str(sqlite_path)],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    assert line.split() == ["committed", "1"]
    wal = sqlite_path.with_name(sqlite_path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the commit lives in the WAL
    with Store.open(sqlite_path) as reopened:
        incident = reopened.get(1)
    assert incident.text == "survives SIGKILL"
    assert [e.kind for e in incident.timeline] == ["reported"]


def test_incident_counts_by_state(store: Store) -> None:
    """Every incident ever recorded, open or fixed (for /metrics): zeros when empty."""
    assert store.incident_counts() == {"open": 0, "fixed": 0}
    for _ in range(3):
        report(store, at(5))
    store.fix(2, "pingou", None, at(20))
    assert store.incident_counts() == {"open": 2, "fixed": 1}


# -- properties, on both backends ------------------------------------------------------------

#: The property tests below run on the test's store (one per backend), emptied by each
#: example; hypothesis's warning about function-scoped fixtures is about exactly that.
ON_EACH_BACKEND = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Letters whose case folding differs between ASCII (SQLite's NOCASE, the store's rule) and
# Unicode: dotless ı, É/é, ß/ẞ, the Kelvin sign K.
NICK_LETTERS = "aAbBiIıÉéßẞK[]{}\\|^~_-"


@ON_EACH_BACKEND
@given(
    registrations=st.lists(
        st.tuples(
            st.sampled_from(["pkgdb2", "PKGDB2", "fas", "Fas"]),
            st.text(NICK_LETTERS, min_size=1, max_size=4),
        ),
        max_size=12,
    ),
    asked=st.text(NICK_LETTERS, min_size=1, max_size=4),
)
def test_nicks_and_services_fold_ascii_case_only(
    store: Store, registrations: list[tuple[str, str]], asked: str
) -> None:
    """Any registrations: one per service and nick with ASCII case ignored (and nothing
    else folded: ı is not i, É is not é), kept as first written, listed in registration
    order then nick order with ASCII case ignored; removal finds them the same way.  On
    both backends, whatever PostgreSQL's locale."""
    store._db.execute("DELETE FROM consumers")

    def fold(text: str) -> str:
        return text.translate(str.maketrans(string.ascii_uppercase, string.ascii_lowercase))

    model: dict[tuple[str, str], tuple[int, str, str]] = {}
    for step, (service, nick) in enumerate(registrations):
        store.add_consumer(service, nick, None, None, at(step))
        model.setdefault((fold(service), fold(nick)), (step, service, nick))
    for service in ("pkgdb2", "FAS"):
        expected = sorted(
            (first, fold(nick), nick)
            for (svc, _), (first, _, nick) in model.items()
            if svc == fold(service)
        )
        assert [c.nick for c in store.consumers(service)] == [nick for _, _, nick in expected]
    removed = store.remove_consumer("PKGDB2", asked)
    kept = model.get(("pkgdb2", fold(asked)))
    assert (removed is None) == (kept is None)
    if removed is not None and kept is not None:
        assert removed.nick == kept[2]


@ON_EACH_BACKEND
@given(
    spans=st.lists(
        st.tuples(st.integers(0, 200), st.one_of(st.none(), st.integers(0, 200))),
        max_size=15,
    ),
    window=st.tuples(st.integers(0, 220), st.integers(0, 60)),
)
def test_digest_summaries_match_the_plain_definition_on_both_backends(
    store: Store, spans: list[tuple[int, int | None]], window: tuple[int, int]
) -> None:
    """For any incidents (hours from a start, fixed or not) and any period, the digest's
    lean read returns exactly ``reported < end and (fixed is None or fixed >= start)``,
    each once (tests/test_digest.py tests the digest built from it)."""
    store._db.execute("DELETE FROM incident_events")
    store._db.execute("DELETE FROM incidents")
    origin = at(0)
    for reported, repair in spans:
        moment = origin + timedelta(hours=reported)
        number = report(store, moment).number
        if repair is not None:
            store.fix(number, "bob", None, moment + timedelta(hours=repair))
    start = origin + timedelta(hours=window[0])
    end = start + timedelta(hours=window[1])
    expected = [
        i.number
        for i in store.list_incidents()
        if i.reported_at < end and (i.fixed_at is None or i.fixed_at >= start)
    ]
    assert sorted(s.number for s in store.incident_summaries_between(start, end)) == expected
