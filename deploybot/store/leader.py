"""Which instance is the active one, when several bots share one PostgreSQL database
(issue 14's active/standby pair): the leadership primitive and the store's fence.

An instance is active while it holds a **session-level advisory lock** on a connection of
its own (:class:`Leadership`: TCP keepalives and a short ``tcp_user_timeout``, so a dead
host's lock goes with its connection) and renews a **lease** in the table ``leader``
(instance, epoch, since, renewed at — the database server's clock).  Taking over:

- the lock is free (the holder stopped, or its connection died): take it, raise the
  epoch;
- the lock is held but the lease was not renewed for ``lease_timeout`` (the holder is
  paused: SIGSTOP, a hung VM — its TCP connection looks alive): end the holder's backend
  (``pg_terminate_backend``, as GoAlert does), then take the lock and raise the epoch.

**Fencing**: once an instance is active with epoch E, its store is fenced with E
(:meth:`~deploybot.store.leader.LeaderTable.fence`): every write transaction (so every
write that leads to output: outbox posts, ledger claims, pages, firefight state, and the
rest) checks first, inside the transaction, that E is the current epoch, share-locking
the row: a takeover's epoch change waits for that transaction, and any later transaction
of the old active fails.  An old active that wakes up finds its renewal
refused (:meth:`Leadership.renew` is False) and each fenced write refused
(:class:`NotLeaderError`) before anything goes out.

**Presence** (table ``instances``): every instance, active or standby, renews a row of its
own (:meth:`Leadership.mark_present`, at least every :data:`PRESENCE_SECONDS`); the lease's
:meth:`Leadership.state` counts the standbys seen in the last :data:`PRESENCE_WINDOW_MS`.
Rows not renewed for :data:`PRESENCE_KEPT_MS` are pruned; a clean stop deletes its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from deploybot.errors import DeploybotError
from deploybot.store.base import StoreBase, current_epoch
from deploybot.store.errors import NotLeaderError
from deploybot.store.postgresql import WRITE_LOCK

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "LEADER_LOCK",
    "PRESENCE_SECONDS",
    "DatabaseAwayError",
    "LeaderState",
    "LeaderTable",
    "Leadership",
    "NotLeaderError",
]

#: The advisory lock the active instance holds (the store's write lock's key plus one).
LEADER_LOCK = WRITE_LOCK + 1

_NOW_MS = "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"

#: Every instance renews its presence at least this often (seconds).
PRESENCE_SECONDS = 5.0
#: A standby counts (/healthz, !status) while its presence is younger than this.
PRESENCE_WINDOW_MS = 60_000
#: Presence rows older than this are deleted (an instance gone without a clean stop).
PRESENCE_KEPT_MS = 86_400_000


class DatabaseAwayError(DeploybotError):
    """The lease could not be renewed because the lock's connection was lost (the database
    restarted, the network failed): whether this instance is still the active one is not
    known until it campaigns again (:meth:`Leadership.try_acquire`)."""


class LeaderState:
    """The lease as stored: ``instance``, ``epoch``, active ``since`` and the lease's
    ``age`` (seconds since it was renewed), all by the database server's clock; and
    ``standbys``, how many other instances renewed their presence as standbys within
    :data:`PRESENCE_WINDOW_MS`."""

    def __init__(
        self, instance: str, epoch: int, since_ms: int, age_ms: int, standbys: int = 0
    ) -> None:
        self.instance = instance
        self.epoch = epoch
        self.since = since_ms / 1000
        self.age = age_ms / 1000
        self.standbys = standbys

    def __repr__(self) -> str:
        return f"LeaderState({self.instance!r}, epoch={self.epoch}, age={self.age:.1f}s)"


class LeaderTable(StoreBase):
    """The fencing of :class:`~deploybot.store.Store` (PostgreSQL)."""

    def fence(
        self, epoch: int | None, on_refused: Callable[[NotLeaderError], None] | None = None
    ) -> None:
        """From now on, every write transaction of this store and of the stores it
        reopens checks first, inside the transaction, that ``epoch`` is still the
        leadership's current one, share-locking the lease row until it ends (one more
        statement per transaction, not per write); if not, it is rolled back and
        :class:`NotLeaderError` raised before anything is written, ``on_refused`` told
        first.  None: no check.  PostgreSQL only (``ValueError`` on SQLite)."""
        if epoch is not None and self.backend != "postgresql":
            raise ValueError("fencing needs the PostgreSQL store (the table leader)")
        self._fence.epoch = epoch
        self._fence.on_refused = on_refused

    @property
    def fenced_epoch(self) -> int | None:
        """The epoch the writes are fenced with (None: not fenced)."""
        return self._fence.epoch

    def require_epoch(self, epoch: int) -> None:
        """Inside a write transaction (:meth:`~deploybot.store.Store.transaction`): refuse
        with :class:`NotLeaderError` unless ``epoch`` is the current one; the lease row
        stays share-locked until the transaction ends, so no takeover changes the epoch
        while it runs.  (:meth:`fence` does this for every transaction.)"""
        with self._write() as db:
            current = current_epoch(db)
            if current != epoch:
                raise NotLeaderError(epoch, current)


class Leadership:
    """One instance's claim to be active, on a dedicated connection (see the module)."""

    def __init__(
        self,
        url: str,
        *,
        instance: str,
        password: str | None = None,
        lease_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.instance = instance
        self.lease_timeout = lease_timeout
        self._password = password
        self._connection: psycopg.Connection[Any] | None = None
        #: The epoch this instance is active under; None: standby.
        self.epoch: int | None = None
        #: The connection failed since this instance last saw an active one: the lease's
        #: holder may be reconnecting too, so a free lock is not taken while its lease is
        #: younger than ``lease_timeout`` (the active keeps its place across a restart of
        #: the database).
        self._outage = False

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._connection is None or self._connection.closed or self._connection.broken:
            options: dict[str, Any] = {
                "autocommit": True,
                "connect_timeout": max(1, int(self.lease_timeout)),
                "application_name": f"deploybot leader {self.instance}"[:63],
                "keepalives": 1,
                "keepalives_idle": max(1, int(self.lease_timeout / 4)),
                "keepalives_interval": 1,
                "keepalives_count": 3,
                # unacknowledged data for longer than this: the connection is dead
                "tcp_user_timeout": max(1000, int(self.lease_timeout * 500)),
            }
            if self._password is not None:
                options["password"] = self._password
            self._connection = psycopg.connect(self.url, **options)
        return self._connection

    def try_acquire(self) -> int | None:
        """Become active if the lock is free, or its holder's lease is stale (its backend
        is ended first); the new epoch, or None (another instance is active)."""
        if self.epoch is not None:
            return self.epoch
        with self._noting_outage():
            return self._try_acquire()

    def _try_acquire(self) -> int | None:
        db = self._connect()
        if self._outage and self._incumbent_may_return(db):
            return None
        if not self._try_lock(db):
            self._outage = False  # another instance is active again
            holder = self._stale_holder(db)
            if holder is None:
                return None
            db.execute("SELECT pg_terminate_backend(%s)", (holder,))
            deadline = time.monotonic() + 5.0
            while not self._try_lock(db):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.05)
        row = db.execute(
            "INSERT INTO leader (id, instance, epoch, since_ms, renewed_ms)"
            f" VALUES (1, %s, 1, {_NOW_MS}, {_NOW_MS})"
            " ON CONFLICT (id) DO UPDATE SET instance = excluded.instance,"
            " epoch = leader.epoch + 1, since_ms = excluded.since_ms,"
            " renewed_ms = excluded.renewed_ms"
            " RETURNING epoch",
            (self.instance,),
        ).fetchone()
        assert row is not None
        self._outage = False
        self.epoch = int(row[0])
        return self.epoch

    def renew(self) -> bool:
        """Renew the lease; False (now a standby) when leadership was lost meanwhile:
        another epoch is current, or this one's lock is gone.  Raises
        :class:`DatabaseAwayError` (no longer active either) when the lock's connection
        failed and no other instance is known to have taken over (the database restarted,
        or is away): campaign again (:meth:`try_acquire`) to find out."""
        import psycopg

        if self.epoch is None:
            return False
        connection = self._connection
        try:
            if connection is None or connection.closed or connection.broken:
                raise psycopg.OperationalError("the leader lock's connection was lost")
            cursor = connection.execute(
                f"UPDATE leader SET renewed_ms = {_NOW_MS}"
                " WHERE id = 1 AND epoch = %s AND instance = %s"
                " AND pg_backend_pid() IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND classid = CAST(%s AS oid) AND objid = CAST(%s AS oid)"
                " AND objsubid = 1 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()))",
                (self.epoch, self.instance, *_lock_parts()),
            )
            held = cursor.rowcount == 1
        except psycopg.OperationalError as error:
            self.close()
            if not self._taken_over():
                self.epoch = None
                self._outage = True
                self.close()
                raise DatabaseAwayError(f"the lease could not be renewed: {error}") from None
            held = False
        except psycopg.Error:
            held = False
        if not held:
            self.epoch = None
            self.close()
        return held

    def _taken_over(self) -> bool:
        """After the lock's connection failed: whether the lease (read on a new
        connection, if the database answers) names another instance or epoch."""
        import psycopg

        try:
            state = self.state()
        except psycopg.Error:
            return False
        return state is not None and (state.instance, state.epoch) != (self.instance, self.epoch)

    def state(self) -> LeaderState | None:
        """The lease as stored (None before any instance was active)."""
        with self._noting_outage():
            row = (
                self._connect()
                .execute(
                    f"SELECT instance, epoch, since_ms, {_NOW_MS} - renewed_ms,"
                    " (SELECT count(*) FROM instances WHERE role = 'standby'"
                    f" AND instance <> leader.instance AND seen_ms >= {_NOW_MS} - %s)"
                    " FROM leader",
                    (PRESENCE_WINDOW_MS,),
                )
                .fetchone()
            )
        return None if row is None else LeaderState(*row)

    def mark_present(self, role: str) -> None:
        """Renew this instance's presence row as ``role`` (``active`` or ``standby``) by
        the server's clock, and delete the rows not renewed for :data:`PRESENCE_KEPT_MS`."""
        with self._noting_outage():
            db = self._connect()
            db.execute(
                "INSERT INTO instances (instance, role, started_ms, seen_ms)"
                f" VALUES (%s, %s, {_NOW_MS}, {_NOW_MS})"
                " ON CONFLICT (instance) DO UPDATE SET role = excluded.role,"
                " seen_ms = excluded.seen_ms",
                (self.instance, role),
            )
            db.execute(f"DELETE FROM instances WHERE seen_ms < {_NOW_MS} - %s", (PRESENCE_KEPT_MS,))

    @contextlib.contextmanager
    def _noting_outage(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError:
            self._outage = True
            self.close()
            raise

    def _incumbent_may_return(self, db: psycopg.Connection[Any]) -> bool:
        """After an outage: whether another instance's lease is younger than the timeout
        (it may be reconnecting to take its lock again)."""
        row = db.execute(
            f"SELECT instance, {_NOW_MS} - renewed_ms FROM leader WHERE id = 1"
        ).fetchone()
        return row is not None and row[0] != self.instance and row[1] < self.lease_timeout * 1000

    def release(self) -> None:
        """Stop: this instance's presence row is deleted and, if active, the lock is let
        go at once (not only when the server notices the connection closed), then the
        connection is closed; idempotent."""
        import psycopg

        if self._connection is not None and not self._connection.closed:
            with contextlib.suppress(psycopg.Error):  # a clean stop: no presence any more
                self._connection.execute(
                    "DELETE FROM instances WHERE instance = %s", (self.instance,)
                )
            if self.epoch is not None:
                with contextlib.suppress(psycopg.Error):
                    self._connection.execute("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK,))
        self.epoch = None
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _try_lock(self, db: psycopg.Connection[Any]) -> bool:
        row = db.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
        return bool(row and row[0])

    def _stale_holder(self, db: psycopg.Connection[Any]) -> int | None:
        """The backend pid holding the lock when the lease is older than the timeout."""
        row = db.execute(f"SELECT {_NOW_MS} - renewed_ms FROM leader WHERE id = 1").fetchone()
        if row is None or row[0] < self.lease_timeout * 1000:
            return None
        holder = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = CAST(%s AS oid) AND objid = CAST(%s AS oid) AND objsubid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            _lock_parts(),
        ).fetchone()
        return None if holder is None else int(holder[0])


def _lock_parts() -> tuple[int, int]:
    """``pg_locks``' classid and objid of a bigint advisory key (its high and low halves)."""
    return (LEADER_LOCK >> 32) & 0xFFFFFFFF, LEADER_LOCK & 0xFFFFFFFF
