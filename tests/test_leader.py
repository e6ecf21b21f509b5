"""deploybot.store.leader on a real PostgreSQL: one active instance among several, takeover
when the lock is free or the holder's lease is stale (its backend ended), and fencing: an
old active's renewal and fenced writes are refused after a takeover (issue 14).

A paused holder (SIGSTOP, a hung VM) is an instance that keeps its connection open and
stops renewing: here, a Leadership that is simply not renewed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

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


def _writes(store: Store, tag: str) -> dict[str, Callable[[], object]]:
    """One write of each kind that leads to output, by what it is."""
    return {
        "countdown claim": lambda: store.claim_countdown(f"countdown:{tag}", T0),
        "ledger claim": lambda: store.claim_once(f"digest:{tag}", T0),
        "outbox post": lambda: store.add_post("PRIVMSG", "#fire", f"post {tag}", T0),
        "page": lambda: store.create_page(
            target_nick=f"pingou-{tag}",
            team=None,
            plan_id="pkgdb2",
            message="help",
            sender_nick="alice",
            now=T0,
            escalate_at=None,
        ),
        "page once": lambda: store.create_page_once(
            f"page:{tag}",
            target_nick=f"ralph-{tag}",
            team=None,
            plan_id="pkgdb2",
            message="help",
            sender_nick="alice",
            now=T0,
            escalate_at=None,
        ),
        "firefight state": lambda: store.claim_once(f"firefight-open:{tag}", T0),
        "claim and post": lambda: _claim_and_post(store, tag),
    }


def _claim_and_post(store: Store, tag: str) -> None:
    with store.transaction():
        store.claim_once(f"firefight-close:{tag}", T0)
        store.add_post("TOPIC", "#fire", f"closed {tag}", T0)


def _rows(url: str) -> dict[str, int]:
    with Store.open(url) as store:
        db = store._db
        return {
            table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("countdown_posts", "once_claims", "outbox", "pages")
        }


def test_a_fenced_store_writes_nothing_once_another_instance_took_over(url: str) -> None:
    """Two instances' stores on one database: A active with epoch 1 and fenced with it;
    B takes over (epoch 2) and fences its store.  Every write of A that leads to output —
    a countdown claim, a ledger claim, an outbox post, a page, firefight state, a claim and
    its post in one transaction, and the same through a store A reopened — is refused
    with NotLeaderError and leaves no row; A's callback hears of each refusal; B's writes
    go through.  Without the fence A's writes all land (the first assertion fails)."""
    a_lead = Leadership(url, instance="bot-a", lease_timeout=5)
    b_lead = Leadership(url, instance="bot-b", lease_timeout=5)
    a_store, b_store = Store.open(url), Store.open(url)
    a_worker = a_store.reopen()
    refused: list[NotLeaderError] = []
    try:
        epoch = a_lead.try_acquire()
        assert epoch == 1
        a_store.fence(epoch, refused.append)
        assert a_store.claim_once("before", T0)  # A is active: its writes go through
        a_lead.release()
        epoch = b_lead.try_acquire()
        assert epoch == 2
        b_store.fence(epoch)
        before = _rows(url)
        for what, write in (
            *_writes(a_store, "a").items(),
            ("reopened", _writes(a_worker, "w")["outbox post"]),
        ):
            with pytest.raises(NotLeaderError, match="epoch 1, current 2"):
                write()
            assert _rows(url) == before, f"{what}: written by the old active"
        assert len(refused) == len(_writes(a_store, "a")) + 1
        assert not a_store.in_transaction
        for write in _writes(b_store, "b").values():
            write()
        after = _rows(url)
        assert after == {
            "countdown_posts": before["countdown_posts"] + 1,
            "once_claims": before["once_claims"] + 4,
            "outbox": before["outbox"] + 2,
            "pages": before["pages"] + 2,
        }
        # reads are not fenced: the old active still reads (its /healthz, its digest)
        assert a_store.claimed("digest:b") and not a_store.claimed("digest:a")
    finally:
        a_lead.close()
        b_lead.close()
        for store in (a_store, b_store, a_worker):
            store.close()


def test_a_takeover_waits_for_a_fenced_transaction_then_the_old_one_is_refused(
    url: str,
) -> None:
    """A fenced transaction in progress holds the lease row: the takeover's new epoch is
    written once it has committed (its claim and post are kept, made before the takeover);
    the fenced store's next transaction is refused.  Without the fence the takeover does
    not wait (the first assertion fails)."""
    active = Leadership(url, instance="bot-a", lease_timeout=0.3)
    standby = Leadership(url, instance="bot-b", lease_timeout=0.3)
    store = Store.open(url)
    try:
        epoch = active.try_acquire()
        assert epoch == 1
        store.fence(epoch)
        active.release()  # the lock is free; the lease row stays epoch 1
        taken: list[int | None] = []
        taker = threading.Thread(target=lambda: taken.append(standby.try_acquire()))
        with store.transaction():
            store.claim_once("countdown:x", T0)
            taker.start()
            time.sleep(0.3)
            assert taken == []  # the epoch update waits for this transaction
            store.add_post("PRIVMSG", "#fire", "x", T0)
        taker.join(10)
        assert taken == [2]
        assert store.claimed("countdown:x") and len(store.pending_posts()) == 1
        with pytest.raises(NotLeaderError):
            store.claim_once("countdown:y", T0)
        assert not store.claimed("countdown:y")
    finally:
        active.close()
        standby.close()
        store.close()


def test_only_a_postgresql_store_is_fenced(tmp_path: Path) -> None:
    with Store.open(tmp_path / "bot.db") as store:
        with pytest.raises(ValueError, match="PostgreSQL"):
            store.fence(1)
        store.fence(None)
        assert store.fenced_epoch is None
        assert store.claim_once("x", T0)


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


def test_presence_counts_the_standbys_seen_in_the_last_minute(url: str) -> None:
    """Every instance renews a presence row; the lease's state counts the other
    instances seen as standbys in the last minute (by the server's clock): not the
    active, not one silent for over a minute; a row silent for a day is pruned at the
    next renewal, and a clean stop deletes its own row."""
    import psycopg

    active = Leadership(url, instance="bot-a", lease_timeout=5)
    standbys = [Leadership(url, instance=f"bot-{name}", lease_timeout=5) for name in "bc"]
    try:
        assert active.try_acquire() == 1
        active.mark_present("active")
        state = active.state()
        assert state is not None and (state.instance, state.standbys) == ("bot-a", 0)
        assert abs(state.since - time.time()) < 5
        for standby in standbys:
            standby.mark_present("standby")
            standby.mark_present("standby")  # renewed, not a second row
        state = standbys[0].state()
        assert state is not None and (state.instance, state.standbys) == ("bot-a", 2)
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("UPDATE instances SET seen_ms = seen_ms - 61000 WHERE instance = 'bot-c'")
            state = active.state()
            assert state is not None and state.standbys == 1
            db.execute("UPDATE instances SET seen_ms = seen_ms - 86400000 WHERE instance = 'bot-c'")
            standbys[0].mark_present("standby")
            rows = db.execute("SELECT instance, role FROM instances ORDER BY instance")
            assert rows.fetchall() == [("bot-a", "active"), ("bot-b", "standby")]
            standbys[0].release()
            rows = db.execute("SELECT instance FROM instances")
            assert rows.fetchall() == [("bot-a",)]
            active.release()
            assert db.execute("SELECT count(*) FROM instances").fetchone() == (0,)
    finally:
        active.close()
        for standby in standbys:
            standby.close()


def test_the_presence_table_is_in_the_sqlite_schema_too(tmp_path: Path) -> None:
    """Schema step 10 runs on both backends (one SQL source): SQLite gets the table,
    unused (one instance; /healthz and !status say so without it)."""
    with Store.open(tmp_path / "deploybot.sqlite3") as store:
        assert store.backend == "sqlite"
    raw = sqlite3.connect(tmp_path / "deploybot.sqlite3")
    try:
        columns = [row[1] for row in raw.execute("PRAGMA table_info(instances)")]
        assert columns == ["instance", "role", "started_ms", "seen_ms"]
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("INSERT INTO instances VALUES ('a:1', 'leader', 0, 0)")
    finally:
        raw.close()
