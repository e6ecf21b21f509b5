"""deploybot.store.leader on a real PostgreSQL: one active instance among several, takeover
when the lock is free or the holder's lease is stale (its backend ended), and fencing: an
old active's renewal and fenced writes are refused after a takeover (issue 14).

A paused holder (SIGSTOP, a hung VM) is an instance that keeps its connection open and
stops renewing: here, a Leadership that is simply not renewed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from deploybot.store import Store
from deploybot.store.leader import Leadership, NotLeaderError
from tests.postgres import PostgresDatabase

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture
def url(postgres_database: PostgresDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    Store.open(postgres_database.url).close()  # the schema, with the leader table
    yield postgres_database.url


def test_one_instance_is_active_and_the_next_takes_over_when_it_stops(url: str) -> None:
    """The first to ask gets epoch 1; another stays standby while the first renews; when
    the first lets go, the other takes over with epoch 2 and the first cannot renew."""
    first = Leadership(url, instance="bot-a", lease_timeout=5)
    second = Leadership(url, instance="bot-b", lease_timeout=5)
    try:
        assert first.try_acquire() == 1
        assert second.try_acquire() is None
        assert first.renew()
        state = second.state()
        assert state is not None and (state.instance, state.epoch) == ("bot-a", 1)
        assert state.age < 5
        first.release()
        assert second.try_acquire() == 2
        assert not first.renew()
        assert first.try_acquire() is None
        state = first.state()
        assert state is not None and (state.instance, state.epoch) == ("bot-b", 2)
    finally:
        first.close()
        second.close()


def test_a_paused_active_is_ended_after_the_lease_timeout_and_is_fenced(url: str) -> None:
    """The active stops renewing but keeps its connection (paused): before the lease
    timeout a standby stays standby; after it, the standby ends the holder's backend and
    takes over; the old active, waking up, finds its renewal refused and every fenced
    write refused before anything is changed, while the new one's go through."""
    paused = Leadership(url, instance="bot-a", lease_timeout=0.5)
    standby = Leadership(url, instance="bot-b", lease_timeout=0.5)
    old_store, new_store = Store.open(url), Store.open(url)
    try:
        assert paused.try_acquire() == 1
        assert standby.try_acquire() is None  # lease fresh: the lock holder is alive
        time.sleep(0.7)
        assert standby.try_acquire() == 2
        # the old active wakes up
        with pytest.raises(NotLeaderError, match="epoch 1, current 2"), old_store.transaction():
            old_store.require_epoch(1)
            old_store.claim_once("digest:2026-11-27", T0)
        assert not old_store.claimed("digest:2026-11-27")  # nothing was changed
        assert not paused.renew()
        assert paused.epoch is None
        with new_store.transaction():
            new_store.require_epoch(2)
            assert new_store.claim_once("digest:2026-11-27", T0)
        assert standby.renew()
    finally:
        paused.close()
        standby.close()
        old_store.close()
        new_store.close()


def test_a_takeover_waits_for_a_fenced_transaction_in_progress(url: str) -> None:
    """While the active's fenced transaction runs, the lease row is share-locked: a
    takeover's new epoch is written only after it commits, so a fenced write either
    commits before the takeover or is refused after it — never both sides at once."""
    active = Leadership(url, instance="bot-a", lease_timeout=0.3)
    standby = Leadership(url, instance="bot-b", lease_timeout=0.3)
    store = Store.open(url)
    try:
        assert active.try_acquire() == 1
        active.release()  # the lock is free; the lease row stays epoch 1
        with store.transaction():
            store.require_epoch(1)
            store.claim_once("countdown:x", T0)
            started = time.monotonic()
            taken: list[int | None] = []
            taker = threading.Thread(target=lambda: taken.append(standby.try_acquire()))
            taker.start()
            time.sleep(0.3)
            assert taken == []  # the epoch update waits for this transaction
        taker.join(10)
        assert taken == [2] and time.monotonic() - started >= 0.3
        assert store.claimed("countdown:x")
    finally:
        standby.close()
        store.close()


_ACTIVE = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from deploybot.store import Store
    from deploybot.store.leader import Leadership, NotLeaderError

    url = sys.argv[1]
    lead = Leadership(url, instance="bot-a", lease_timeout=0.5)
    epoch = lead.try_acquire()
    store = Store.open(url)
    print("active", epoch, flush=True)
    n = 0
    while True:
        if not lead.renew():
            print("lost", flush=True)
            break
        try:
            with store.transaction():
                store.require_epoch(epoch)
                n += 1
                store.add_post("PRIVMSG", "#fire", f"a {n}", datetime.now(UTC))
        except NotLeaderError:
            print("fenced", flush=True)
            break
        time.sleep(0.05)
    """
)


@pytest.mark.e2e  # starts a Python process
def test_a_sigstopped_active_sends_nothing_after_the_takeover(url: str) -> None:
    """A real process, active and writing fenced posts, is stopped (SIGSTOP: its
    connection stays open); the standby takes over after the lease timeout; the old one,
    continued, notices before writing anything: no post of it after the takeover."""
    child = subprocess.Popen(
        [sys.executable, "-c", _ACTIVE, url],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    standby = Leadership(url, instance="bot-b", lease_timeout=0.5)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split() == ["active", "1"]
        time.sleep(0.3)  # a few posts
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while standby.try_acquire() is None:
            assert time.monotonic() < deadline, "no takeover"
            time.sleep(0.1)
        assert standby.epoch == 2
        with Store.open(url) as store:
            before = [p.text for p in store.pending_posts()]
            os.kill(child.pid, signal.SIGCONT)
            assert child.wait(timeout=20) == 0
            after = [p.text for p in store.pending_posts()]
        assert before and after == before, "the old active wrote after the takeover"
        assert child.stdout.read().split() in (["lost"], ["fenced"])
    finally:
        if child.poll() is None:  # failed half-way: it may be stopped
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
        standby.close()
