"""The store on PostgreSQL: a psycopg 3 connection that runs the store's one SQL source.

:class:`PgConnection` gives the table mixins the few things they use of a
:class:`sqlite3.Connection` (``execute``, ``cursor``, rows readable by position and by
column name, ``rowcount``, ``in_transaction``), with every statement rewritten by
:func:`deploybot.store.dialect.dml`.  :class:`PostgresBackend` holds what differs beyond
SQL: how a write transaction starts, which errors mean "not now", where the schema
version is kept.

- **One writer at a time**, as on SQLite: a write transaction starts with
  ``pg_advisory_xact_lock`` on one key, so read-check-write methods (``take``, approving a
  freeze break) see no concurrent writer, whatever the isolation level.  Waiting for it is
  bounded by ``lock_timeout`` = the busy timeout: beyond, :class:`StoreBusyError`.
- **Autocommit** outside :meth:`Store.transaction` and the write methods; a commit returns
  once PostgreSQL has it on disk (``synchronous_commit`` as the server has it: ``on`` by
  default).
- **The password** comes from ``password`` (``database_password_file``) or from libpq's own
  sources (``PGPASSWORD``, ``~/.pgpass``); it is never part of :attr:`Store.path` or of a
  message.  A URL holding one is refused (:func:`parse_url`).
- **A lost connection** (the server restarted) is opened again by the next statement
  made outside a transaction, which then runs on the new one; a transaction that loses
  its connection fails whole (:class:`~deploybot.store.StoreWriteError`: nothing of it
  was kept), and the next one opens a new connection.
- Text cannot hold NUL in PostgreSQL: a NUL in a value written is stored as U+FFFD.

psycopg is imported only here, and only when a ``postgresql://`` database is opened.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from deploybot.errors import DeploybotError
from deploybot.store.dialect import dml
from deploybot.store.errors import StoreBusyError, StoreUnavailableError, StoreWriteError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgConnection", "PostgresBackend", "is_url", "parse_url", "safe_url"]

#: The key of the advisory lock every write transaction takes (``deploybot`` in ASCII).
WRITE_LOCK = 0x6465706C6F79626F

SCHEMA_TABLE = "deploybot_schema"


def is_url(database: str) -> bool:
    """Whether the ``database`` setting names a PostgreSQL database (else: an SQLite file)."""
    return database.startswith(("postgresql://", "postgres://"))


def parse_url(database: str) -> urllib.parse.SplitResult:
    """``postgresql://USER@HOST:PORT/DBNAME`` split; :class:`DeploybotError` when it holds
    a password or lacks a database name."""
    parts = urllib.parse.urlsplit(database)
    if parts.password is not None:
        raise DeploybotError(
            f"{safe_url(database)}: a password in the URL would be logged and shown; "
            "put it in database_password_file (or PGPASSWORD, ~/.pgpass)"
        )
    if not parts.path.strip("/"):
        raise DeploybotError(f"{safe_url(database)}: no database name (…/DBNAME)")
    return parts


def safe_url(database: str) -> str:
    """The URL with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", database)


class Row:
    """A result row, read by position or by column name (as :class:`sqlite3.Row`)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


def _clean(value: object) -> object:
    return value.replace("\0", "\ufffd") if isinstance(value, str) else value


def _params(params: Any) -> Any:
    if params is None:
        return ()  # psycopg reads the statement's %% only when given parameters
    if isinstance(params, dict):
        return {key: _clean(value) for key, value in params.items()}
    return [_clean(value) for value in params]


class PgCursor:
    """The part of :class:`sqlite3.Cursor` the store uses."""

    def __init__(self, connection: PgConnection) -> None:
        self._connection = connection
        self._cursor: Any = None
        #: None: plain tuples (as ``sqlite3.Cursor.row_factory = None``); else named rows.
        self.row_factory: object | None = Row

    def execute(self, sql: str, params: Any = None) -> PgCursor:
        import psycopg

        statement, values = dml(sql), _params(params)
        for attempt in (1, 2):
            raw = self._connection._raw()
            self._cursor = (
                raw.cursor(row_factory=_row_factory) if self.row_factory else raw.cursor()
            )
            try:
                self._cursor.execute(statement, values)
            except psycopg.OperationalError:
                # the server restarted since the last call: once more on a new connection,
                # unless a transaction was open (its earlier statements are lost with it)
                if attempt == 2 or not raw.broken or self._connection.transaction_open:
                    raise
                continue
            break
        return self

    def executemany(self, sql: str, rows: Iterable[Any]) -> PgCursor:
        total = 0
        for params in rows:
            self.execute(sql, params)
            total += max(self.rowcount, 0)
        self._total: int | None = total
        return self

    @property
    def rowcount(self) -> int:
        total = getattr(self, "_total", None)
        return int(self._cursor.rowcount if total is None else total)

    @property
    def lastrowid(self) -> int:
        """The number the last INSERT drew from its table's identity (``lastval()``): read
        it right after the INSERT.  The store's own SQL uses ``RETURNING``."""
        row = self._connection._raw().execute("SELECT lastval()").fetchone()
        assert row is not None
        return int(row[0])

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall()) if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        # row by row from the result: a digest's 100,000 rows are never all Python objects
        return iter(self._cursor) if self._cursor.description else iter(())


class PgConnection:
    """A psycopg connection in autocommit mode, opened again after it was lost."""

    def __init__(self, conninfo: str, password: str | None, busy_timeout: float) -> None:
        self._conninfo = conninfo
        self._password = password
        self._busy_timeout = busy_timeout
        self._connection: psycopg.Connection[Any] | None = None
        #: Between BEGIN and COMMIT/ROLLBACK: a lost connection is then not opened again
        #: (the rest of the transaction would run in autocommit).
        self.transaction_open = False
        self._closed = False
        self._connect()

    def _connect(self) -> None:
        import psycopg

        options: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": 10,
            "application_name": "deploybot",
            # the lock a write waits for, and every statement, are bounded
            "options": f"-c lock_timeout={max(1, int(self._busy_timeout * 1000))}"
            " -c idle_in_transaction_session_timeout=60000",
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        if self._password is not None:
            options["password"] = self._password
        self._connection = psycopg.connect(self._conninfo, **options)

    def _raw(self) -> psycopg.Connection[Any]:
        if self._closed:
            import psycopg

            raise psycopg.InterfaceError("the store is closed")
        if self._connection is None or self._connection.closed or self._connection.broken:
            if self.transaction_open:
                import psycopg

                raise psycopg.OperationalError("the connection was lost during a transaction")
            if self._connection is not None and not self._connection.closed:
                self._connection.close()
            self._connect()
        assert self._connection is not None
        return self._connection

    def execute(self, sql: str, params: Any = None) -> PgCursor:
        return PgCursor(self).execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Any]) -> PgCursor:
        """``execute`` for each of ``rows``; ``rowcount`` is their sum (as SQLite's)."""
        return PgCursor(self).executemany(sql, rows)

    def execute_schema(self, sql: str) -> None:
        """A statement already written for PostgreSQL (:func:`~deploybot.store.dialect.ddl`),
        without parameters."""
        self._raw().execute(sql)

    def cursor(self) -> PgCursor:
        return PgCursor(self)

    @property
    def in_transaction(self) -> bool:
        """In a transaction that can still commit (a failed one cannot: see
        :meth:`needs_rollback`)."""
        from psycopg.pq import TransactionStatus

        connection = self._connection
        return connection is not None and connection.info.transaction_status in (
            TransactionStatus.INTRANS,
        )

    @property
    def needs_rollback(self) -> bool:
        """A transaction is open, failed or not."""
        from psycopg.pq import TransactionStatus

        connection = self._connection
        return (
            connection is not None
            and not connection.broken
            and connection.info.transaction_status
            in (TransactionStatus.INTRANS, TransactionStatus.INERROR)
        )

    def close(self) -> None:
        self._closed = True
        if self._connection is not None:
            self._connection.close()


class PostgresBackend:
    """What the store does differently on PostgreSQL, beyond SQL."""

    name = "postgresql"

    def __init__(self) -> None:
        import psycopg

        self.errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def begin(self, db: PgConnection) -> None:
        """Start a write transaction, the only writer (waits up to the busy timeout)."""
        db.execute("BEGIN")
        db.transaction_open = True
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        except BaseException:  # not the writer: no transaction is left open (as on SQLite)
            self.rollback(db)
            raise

    def commit(self, db: PgConnection) -> None:
        try:
            db.execute("COMMIT")
        finally:
            db.transaction_open = False

    def rollback(self, db: PgConnection) -> None:
        try:
            if db.needs_rollback:
                db.execute("ROLLBACK")
        finally:
            db.transaction_open = False

    def active(self, db: PgConnection) -> bool:
        return db.needs_rollback

    def unavailable(self, error: BaseException) -> StoreUnavailableError | None:
        """The :class:`StoreUnavailableError` a psycopg error means, or None (a bug)."""
        from psycopg import OperationalError, errors

        if isinstance(error, errors.LockNotAvailable | errors.QueryCanceled):
            return StoreBusyError()
        if isinstance(error, errors.DiskFull):
            return StoreWriteError("the disk is full")
        if isinstance(error, errors.ReadOnlySqlTransaction):
            return StoreWriteError("the database is read-only")
        if isinstance(error, errors.InsufficientResources):
            return StoreWriteError("the database server is out of resources")
        if isinstance(error, OperationalError):
            return StoreWriteError("the database server cannot be reached")
        return None
