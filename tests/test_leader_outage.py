"""deploybot.store.leader across a restart of PostgreSQL (issue 14: "PostgreSQL restarted
under a running pair: they reconnect; exactly one active afterwards"): the active's renewal
says the database was away (not "lost"), it takes the free lock again under a new epoch,
and a standby whose connection failed leaves the free lock to it while its lease is young
— but takes it once the lease is older than the timeout (the active did not come back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from deploybot.store import Store
from deploybot.store.leader import DatabaseAwayError, Leadership
from tests.postgres import PostgresDatabase, PostgresServer


@pytest.fixture
def pair(
    postgres: PostgresServer,
    postgres_database: PostgresDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Leadership, Leadership]]:
    """bot-a active (epoch 1), bot-b standby, lease timeout 2 s; then PostgreSQL restarted."""
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    Store.open(postgres_database.url).close()  # the schema, with the leader table
    first = Leadership(postgres_database.url, instance="bot-a", lease_timeout=2)
    second = Leadership(postgres_database.url, instance="bot-b", lease_timeout=2)
    try:
        assert first.try_acquire() == 1
        assert second.try_acquire() is None
        postgres.restart()
        yield first, second
    finally:
        first.close()
        second.close()


def test_the_active_takes_its_lock_again_after_a_restart(
    pair: tuple[Leadership, Leadership],
) -> None:
    first, second = pair
    with pytest.raises(psycopg.OperationalError):
        second.try_acquire()  # its session was ended: it notes the outage
    assert second.try_acquire() is None  # the lock is free, but bot-a's lease is young
    with pytest.raises(DatabaseAwayError):
        first.renew()  # not "lost": nobody else took over
    assert first.epoch is None
    assert first.try_acquire() == 2
    assert first.renew()
    assert second.try_acquire() is None
    state = second.state()
    assert state is not None and (state.instance, state.epoch) == ("bot-a", 2)


def test_a_standby_takes_over_when_the_active_does_not_come_back(
    pair: tuple[Leadership, Leadership],
) -> None:
    first, second = pair
    with pytest.raises(psycopg.OperationalError):
        second.try_acquire()
    assert second.try_acquire() is None
    time.sleep(2.1)  # bot-a's lease is older than the timeout now
    assert second.try_acquire() == 2
    assert not first.renew()  # bot-b took over: lost, not merely away
    assert first.try_acquire() is None
