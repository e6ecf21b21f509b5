"""deploybot.store: the webhook's inbox (``event_inbox``: events a standby accepted for the
active instance), on a real SQLite file and on PostgreSQL (`store_db`: each test runs on
both)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from deploybot.store import QueuedEvent, Store
from deploybot.store.migrations import MIGRATIONS
from tests.storedb import StoreDatabase

T0 = datetime(2026, 12, 15, 13, 10, 0, tzinfo=UTC)
START = "org.fedoraproject.prod.ansible.playbook.start"
BODY = '{"topic": "%s", "body": {"userid": "pingou"}, "id": "%s"}'


@pytest.fixture
def store(store_db: StoreDatabase) -> Iterator[Store]:
    with Store.open(store_db.location) as opened:
        yield opened


def queue(store: Store, event_id: str, at: datetime = T0) -> bool:
    return store.queue_event(
        event_id, START, BODY % (START, event_id), at, source="webhook 192.0.2.1"
    )


def test_events_are_kept_in_order_once_per_id_across_reopen(store_db: StoreDatabase) -> None:
    """Queued events come back in the order they arrived, as they were given, after a
    reopen; an id queued already is refused (False) and the first copy stays; ``limit``
    gives the first ones."""
    with Store.open(store_db.location) as store:
        assert queue(store, "a-1")
        assert queue(store, "b-2", T0 + timedelta(seconds=1))
        assert not queue(store, "a-1", T0 + timedelta(seconds=2))
    with Store.open(store_db.location) as store:
        first, second = store.queued_events(10)
        assert first == QueuedEvent(
            first.seq, T0, "webhook 192.0.2.1", "a-1", START, BODY % (START, "a-1")
        )
        assert (second.id, second.received_at) == ("b-2", T0 + timedelta(seconds=1))
        assert first.seq < second.seq
        assert store.queued_events(1) == (first,)


def test_an_event_is_taken_once(store_db: StoreDatabase, store: Store) -> None:
    """Taking deletes it: True the first time, False after, also for another process."""
    queue(store, "a-1")
    (event,) = store.queued_events(10)
    with Store.open(store_db.location) as other:
        assert other.take_queued_event(event.seq)
    assert not store.take_queued_event(event.seq)
    assert store.queued_events(10) == ()
    assert queue(store, "a-1")  # gone from the inbox: the id may come again (the reactor
    # remembers what was acted on)


def test_taking_commits_or_rolls_back_with_what_the_event_caused(store: Store) -> None:
    """Taken inside the transaction of its actions: a failure rolls both back (the event
    stays queued, nothing recorded); a commit keeps both."""
    queue(store, "a-1")
    (event,) = store.queued_events(10)
    with pytest.raises(RuntimeError), store.transaction():
        assert store.take_queued_event(event.seq)
        store.record_deploy_event("pkgdb2", "playbook-start", T0, nick="pingou", text="started")
        raise RuntimeError("killed before the commit")
    assert store.queued_events(10) == (event,)
    assert store.deploy_events("pkgdb2") == ()
    with store.transaction():
        assert store.take_queued_event(event.seq)
        store.record_deploy_event("pkgdb2", "playbook-start", T0, nick="pingou", text="started")
    assert store.queued_events(10) == ()
    assert len(store.deploy_events("pkgdb2")) == 1


def test_the_inbox_is_added_to_a_database_of_the_previous_schema(
    store_db: StoreDatabase,
) -> None:
    """A database of the schema before the inbox is upgraded in place, its data kept."""
    before = MIGRATIONS[-1].version - 1
    assert MIGRATIONS[-1].description.startswith("the webhook's inbox")
    store_db.make_version(before)
    with store_db.other() as raw:
        raw.execute("INSERT INTO once_claims VALUES ('digest:2026-12-15', '2026-12-15T10:00:00Z')")
    assert not store_db.table_exists("event_inbox")
    with Store.open(store_db.location) as store:
        assert store.claimed("digest:2026-12-15")
        assert queue(store, "a-1")
    assert store_db.table_exists("event_inbox")
