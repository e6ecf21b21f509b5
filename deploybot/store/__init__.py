"""The bot's database: incidents, ``!uses`` consumers, ledgers, pages, the ids of the bus
events acted on, the outbox, freeze breaks and what happened to each deploy — in an
embedded SQLite file (the default), or in PostgreSQL (``postgresql://USER@HOST:PORT/DB``:
:mod:`deploybot.store.postgresql`), with the same methods and the same results: the SQL
is written once (:mod:`deploybot.store.dialect` says how PostgreSQL runs it).

The package owns every line of SQL; it may import only :mod:`deploybot.errors` (no plans,
no clock, no core).

One :class:`Store` wraps one :mod:`sqlite3` connection and is used from the asyncio
thread only (the connection is opened with ``check_same_thread`` on, so use from another
thread fails loudly).  Every operation is a few indexed statements on a local file, so
the bot calls them directly from its handlers, without an executor — except reads that
may take long (a big day's digest), which run in a :class:`ReadWorker`: a thread with a
store of its own (:meth:`Store.reopen`).  A write that finds
the database locked by another process waits up to the busy timeout and blocks the loop
meanwhile: the bot opens it with ``database_busy_timeout`` (0.5 s by default, SPEC §7), the
command-line tools with :data:`DEFAULT_BUSY_TIMEOUT`.  A write that still cannot be made
(locked beyond that, a full disk, a read-only file) is rolled back whole and raises
:class:`StoreUnavailableError` (:class:`StoreBusyError`, :class:`StoreWriteError`), whose
message tells the user that nothing was changed; :meth:`Store.check_writable` probes for it
without writing (``/healthz``).

Several writes (a decision and the posts it causes) form one transaction inside
:meth:`Store.transaction`: each write joins it as a savepoint, and
:meth:`Store.after_commit` callbacks run once it has committed.

Durability: WAL journal, ``synchronous=FULL``: every write method commits before it
returns, and a commit is on disk when it returns, so an incident survives the bot being
killed (or the machine losing power) right after the reply "incident 3 recorded".

Time is always passed in by the caller (``now`` parameters); the store never reads a
clock.  Datetimes must be timezone-aware; they are stored as UTC ISO 8601 text with
``Z`` at **whole seconds** (``2026-11-27T10:00:00Z``, the form the API serves) and come
back as aware UTC datetimes.  Sub-second parts are dropped on the way in, for stored
values and query bounds alike, so comparisons stay consistent.

Nicks and service names are matched ASCII-case-insensitively (``Pingou`` is ``pingou``)
and returned as they were first written.  The store keeps whatever text it is given:
validating and cleaning user text is the caller's job; no SQL is ever built from values
(only ``?``/``:name`` parameters).

Expected problems (unknown incident, already fixed, a page that is someone else's) raise
subclasses of :class:`~deploybot.errors.DeploybotError` with a one-line message for the
user.  Programming mistakes (a naive datetime, an unknown ``state``) raise ``ValueError``.

The store is assembled from one mixin per part, each in its own module over the shared
connection of :mod:`deploybot.store.base`: :mod:`deploybot.store.incidents`,
:mod:`deploybot.store.consumers`, :mod:`deploybot.store.ledger`,
:mod:`deploybot.store.pages`, :mod:`deploybot.store.busevents`,
:mod:`deploybot.store.outbox` (the posts not yet confirmed by the server),
:mod:`deploybot.store.busoutbox` (the bus messages not yet confirmed by the broker),
:mod:`deploybot.store.eventinbox` (webhook events a standby accepted for the active one),
:mod:`deploybot.store.freezebreaks`, :mod:`deploybot.store.deployevents`,
:mod:`deploybot.store.driftruns` and :mod:`deploybot.store.leader` (PostgreSQL: the fencing
check of an active/standby pair, and the lease itself).  The records
they return are in :mod:`deploybot.store.records`, the errors in
:mod:`deploybot.store.errors`; all are re-exported here, so callers import them from
:mod:`deploybot.store`.
"""

from __future__ import annotations

import os
import sqlite3
from types import TracebackType
from typing import Self

from deploybot.errors import DeploybotError
from deploybot.store.busevents import BusEventTable
from deploybot.store.busoutbox import BusOutboxTable
from deploybot.store.consumers import ConsumerTable
from deploybot.store.deployevents import DeployEventTable
from deploybot.store.driftruns import DriftRunTable, StoredDriftRun
from deploybot.store.errors import (
    AlreadyFixedError,
    NotLeaderError,
    PageAlreadyAckedError,
    PageNotYoursError,
    StoreBusyError,
    StoreOpenError,
    StoreUnavailableError,
    StoreWriteError,
    TooManyNotesError,
    UnknownIncidentError,
    UnknownPageError,
)
from deploybot.store.eventinbox import EventInboxTable
from deploybot.store.freezebreaks import APPROVALS_NEEDED, FreezeBreakTable
from deploybot.store.incidents import IncidentTable
from deploybot.store.leader import LeaderTable
from deploybot.store.ledger import LedgerTable
from deploybot.store.migrations import (
    SCHEMA_VERSION,
    migrate,
    migrate_postgresql,
    postgresql_version,
)
from deploybot.store.outbox import OutboxTable
from deploybot.store.pages import PageTable
from deploybot.store.postgresql import (
    PgConnection,
    PostgresBackend,
    is_url,
    parse_url,
    safe_url,
)
from deploybot.store.reads import ReadWorker
from deploybot.store.records import (
    BusHeaders,
    CountdownClaim,
    DeployEvent,
    FreezeApproval,
    FreezeBreak,
    Incident,
    IncidentState,
    IncidentSummary,
    Page,
    QueuedEvent,
    RegisteredConsumer,
    StoredBusMessage,
    StoredPost,
    TimelineEntry,
    TimelineKind,
)

__all__ = [
    "APPROVALS_NEEDED",
    "SCHEMA_VERSION",
    "AlreadyFixedError",
    "BusHeaders",
    "CountdownClaim",
    "DeployEvent",
    "FreezeApproval",
    "FreezeBreak",
    "Incident",
    "IncidentState",
    "IncidentSummary",
    "NotLeaderError",
    "Page",
    "PageAlreadyAckedError",
    "PageNotYoursError",
    "QueuedEvent",
    "ReadWorker",
    "RegisteredConsumer",
    "Store",
    "StoreBusyError",
    "StoreOpenError",
    "StoreUnavailableError",
    "StoreWriteError",
    "StoredBusMessage",
    "StoredDriftRun",
    "StoredPost",
    "TimelineEntry",
    "TimelineKind",
    "TooManyNotesError",
    "UnknownIncidentError",
    "UnknownPageError",
]

DEFAULT_BUSY_TIMEOUT = 5.0


class Store(
    IncidentTable,
    ConsumerTable,
    LedgerTable,
    PageTable,
    BusEventTable,
    OutboxTable,
    BusOutboxTable,
    EventInboxTable,
    FreezeBreakTable,
    DeployEventTable,
    DriftRunTable,
    LeaderTable,
):
    """The database.  Open with :meth:`open`; close with :meth:`close` or ``with``."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        password: str | None = None,
    ) -> Self:
        """Open (creating it unless ``create`` is false) and migrate the database file.

        ``":memory:"`` gives a private in-memory database (for tests of other modules).
        Raises :class:`StoreOpenError` naming the path when the file is missing (with
        ``create=False``), unreadable, not an SQLite file, someone else's database, or
        from a newer deploybot.

        A ``postgresql://USER@HOST:PORT/DBNAME`` URL opens that PostgreSQL database
        instead (the database must exist; its schema is made or migrated, unless
        ``create`` is false and it has none yet), with ``password`` or else libpq's own
        (``PGPASSWORD``, ``~/.pgpass``); a password in the URL is refused.
        """
        name = os.fspath(path)
        if is_url(name):
            return cls._open_postgresql(name, create, busy_timeout, password)
        if not create and name != ":memory:" and not os.path.exists(name):
            raise StoreOpenError(f"{name}: no such database file")
        try:
            connection = sqlite3.connect(name, timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreOpenError(f"{name}: cannot open the database: {error}") from error
        try:
            connection.row_factory = sqlite3.Row
            # The first statement reads the file header: "file is not a database" is here.
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            connection.execute("SELECT json_valid('[]')").fetchone()
            migrate(connection, path=name)
        except DeploybotError as error:
            connection.close()
            raise StoreOpenError(str(error)) from error
        except sqlite3.Error as error:
            connection.close()
            if isinstance(error, sqlite3.DatabaseError) and "not a database" in str(error):
                raise StoreOpenError(
                    f"{name}: not an SQLite database (check the 'database' setting)"
                ) from error
            raise StoreOpenError(f"{name}: cannot use the database: {error}") from error
        except BaseException:
            connection.close()
            raise
        store = cls(connection, name)
        store._reopen_args = (name, busy_timeout, None)
        return store

    @classmethod
    def _open_postgresql(
        cls, url: str, create: bool, busy_timeout: float, password: str | None
    ) -> Self:
        shown = safe_url(url)
        try:
            parse_url(url)
            import psycopg
        except DeploybotError as error:
            raise StoreOpenError(str(error)) from error
        except ImportError as error:
            raise StoreOpenError(
                f"{shown}: PostgreSQL needs psycopg 3 (pip install 'deploybot[postgresql]'): "
                f"{error}"
            ) from error
        try:
            connection = PgConnection(url, password, busy_timeout)
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else error
            raise StoreOpenError(f"{shown}: cannot connect: {reason}") from error
        backend = PostgresBackend()
        try:
            if not create and postgresql_version(connection) is None:
                raise StoreOpenError(f"{shown}: no deploybot database there yet")
            migrate_postgresql(connection, backend, path=shown)
        except StoreOpenError:
            connection.close()
            raise
        except DeploybotError as error:
            connection.close()
            raise StoreOpenError(str(error)) from error
        except psycopg.Error as error:
            connection.close()
            raise StoreOpenError(f"{shown}: cannot use the database: {error}") from error
        except BaseException:
            connection.close()
            raise
        store = cls(connection, shown, backend)
        store._reopen_args = (url, busy_timeout, password)
        return store

    def reopen(self) -> Self:
        """Another store on the same database, with a connection of its own (for a
        :class:`~deploybot.store.reads.ReadWorker`; ``:memory:`` gives a new, empty one).
        It shares this store's fence (:meth:`fence`, now and later)."""
        name, busy_timeout, password = self._reopen_args
        store = type(self).open(name, create=False, busy_timeout=busy_timeout, password=password)
        store._fence = self._fence
        return store

    def close(self) -> None:
        """Close the connection (idempotent).  Everything is already committed."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
