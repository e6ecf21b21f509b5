"""What the tables of :class:`~deploybot.store.Store` share: the connection (SQLite's, or
PostgreSQL's through :mod:`deploybot.store.postgresql`), the write transaction, and how
values are stored and compared.

Times are stored as UTC ISO 8601 text with ``Z`` at whole seconds and read back as aware
UTC datetimes (:func:`db_time`, :func:`from_db`); nicks and accounts are compared
ASCII-case-insensitively, like SQLite's NOCASE (:func:`same_nick`, :func:`same_person`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Protocol

from deploybot.store.errors import (
    NotLeaderError,
    StoreUnavailableError,
    StoreWriteError,
    unavailable,
)
from deploybot.store.times import db_time, floor, from_db, from_db_or_none

__all__ = [
    "Backend",
    "Connection",
    "Fence",
    "Row",
    "SqliteBackend",
    "StoreBase",
    "Where",
    "db_time",
    "floor",
    "from_db",
    "from_db_or_none",
    "same_account",
    "same_nick",
    "same_person",
    "select_sql",
]

log = logging.getLogger(__name__)

#: A result row: read by position or by column name (``sqlite3.Row``, or
#: :class:`deploybot.store.postgresql.Row`).
Row = Any


class Cursor(Protocol):
    """What the tables use of a cursor (``sqlite3.Cursor`` or ``PgCursor``)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the tables use of a connection: ``sqlite3.Connection`` (in autocommit mode), or
    :class:`deploybot.store.postgresql.PgConnection`, which runs the same SQL on PostgreSQL
    (:mod:`deploybot.store.dialect`)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...

    def cursor(self) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """What differs between the databases beyond SQL: starting, ending a write
    transaction, and which errors mean "not now"."""

    name: str
    errors: tuple[type[BaseException], ...]

    def begin(self, db: Any) -> None: ...

    def commit(self, db: Any) -> None: ...

    def rollback(self, db: Any) -> None: ...

    def active(self, db: Any) -> bool:
        """A transaction is open (on PostgreSQL: failed or not)."""
        ...

    def unavailable(self, error: BaseException) -> StoreUnavailableError | None: ...


class SqliteBackend:
    """SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock (waiting up to the busy
    timeout)."""

    name = "sqlite"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def begin(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")

    def commit(self, db: sqlite3.Connection) -> None:
        db.execute("COMMIT")

    def rollback(self, db: sqlite3.Connection) -> None:
        if db.in_transaction:
            db.execute("ROLLBACK")

    def active(self, db: sqlite3.Connection) -> bool:
        return db.in_transaction

    def unavailable(self, error: BaseException) -> StoreUnavailableError | None:
        return unavailable(error) if isinstance(error, sqlite3.Error) else None


class Fence:
    """The epoch under which a store (and the stores :meth:`~deploybot.store.Store.reopen`
    makes from it: they share it) may write: PostgreSQL's active/standby fencing, set by
    :meth:`~deploybot.store.leader.LeaderTable.fence`.  None (the default, and always on
    SQLite): no check."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        #: Told of each refusal (after its rollback, before it is raised).
        self.on_refused: Callable[[NotLeaderError], None] | None = None

    def refusal(self, db: Connection) -> NotLeaderError | None:
        """Inside a write transaction: None if the epoch is still the current one (the
        lease row then stays share-locked until the transaction ends, so a takeover's
        new epoch waits for it), else the error to raise."""
        if self.epoch is None:
            return None
        current = current_epoch(db)
        return None if current == self.epoch else NotLeaderError(self.epoch, current)

    def tell(self, error: NotLeaderError) -> None:
        if self.on_refused is not None:
            try:
                self.on_refused(error)
            except Exception:
                log.exception("store: the fence's callback failed")


def current_epoch(db: Connection) -> int | None:
    """The leadership's epoch (None: no instance was ever active), its row share-locked
    until the transaction ends (PostgreSQL only: the table ``leader``)."""
    row = db.execute("SELECT epoch FROM leader WHERE id = 1 FOR SHARE").fetchone()
    return None if row is None else int(row[0])


class StoreBase:
    """The connection the table mixins of :class:`~deploybot.store.Store` work on."""

    def __init__(self, connection: Connection, path: str, backend: Backend | None = None) -> None:
        """Wrap an already configured and migrated connection; use ``Store.open``."""
        self._db = connection
        #: The SQLite file, or the PostgreSQL URL (never with a password).
        self.path = path
        self._backend: Backend = backend or SqliteBackend()
        #: How :meth:`~deploybot.store.Store.reopen` opens the same database again.
        self._reopen_args: tuple[str, float, str | None] = (path, 5.0, None)
        #: Why the last write failed (a :class:`~deploybot.store.StoreUnavailableError`'s
        #: message), None once a write succeeds again (``/healthz`` reports it).
        self.last_write_error: str | None = None
        #: The open transaction's levels (outermost first), each with the callbacks to
        #: run after the outermost commits; empty outside a transaction.
        self._levels: list[list[Callable[[], None]]] = []
        #: The active instance's epoch its write transactions check (PostgreSQL).
        self._fence = Fence()

    def transaction(self) -> AbstractContextManager[None]:
        """One transaction around several store writes and the posts they cause.

        Every write method of the store called inside joins it (as a savepoint: a write
        that fails inside rolls back only its own part, and the caller may go on), and
        everything commits when the outermost block ends normally, or rolls back whole
        when it raises.  :meth:`after_commit` callbacks registered inside run once the
        outermost block has committed.  Blocks may nest; they must not span an ``await``
        (the connection is the loop's)."""
        return self._block()

    @contextmanager
    def _block(self) -> Iterator[None]:
        with self._write():
            yield

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current transaction has committed (now, outside one);
        never when it rolls back (also when only the savepoint it was registered in
        does).  A callback that raises is logged; the others still run."""
        if self._levels:
            self._levels[-1].append(callback)
        else:
            _run_callbacks([callback])

    @property
    def in_transaction(self) -> bool:
        """Whether a :meth:`transaction` (or a write) is open."""
        return bool(self._levels)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.name

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction, committed (durably) when the block ends normally.

        Inside another (:meth:`transaction`), it is a savepoint of that one: kept when
        the block ends normally, rolled back alone when it raises.

        A database locked by another connection beyond the busy timeout, a full disk, a
        read-only file or an I/O error rolls the whole transaction back and raises
        :class:`~deploybot.store.StoreUnavailableError` (recorded in
        :attr:`last_write_error` until a write succeeds): nothing of the write is kept.

        Fenced (PostgreSQL, the active instance: :class:`Fence`), the transaction first
        checks that the fence's epoch is the current one, and raises
        :class:`~deploybot.store.NotLeaderError` before anything is written if not."""
        if self._levels:
            with self._savepoint():
                yield self._db
            return
        with self._unavailable_raised():
            self._backend.begin(self._db)
            refused = self._refused()
            if refused is not None:
                self._backend.rollback(self._db)
                self._fence.tell(refused)
                raise refused
            self._levels.append([])
            try:
                yield self._db
                if not self._db.in_transaction:
                    raise StoreWriteError("the database rolled the transaction back")
                self._backend.commit(self._db)
            except BaseException:
                self._backend.rollback(self._db)
                raise
            finally:
                callbacks = self._levels.pop()
        self.last_write_error = None
        _run_callbacks(callbacks)

    def _refused(self) -> NotLeaderError | None:
        """The fence's check, first thing in a write transaction (rolled back on error)."""
        try:
            return self._fence.refusal(self._db)
        except BaseException:
            self._backend.rollback(self._db)
            raise

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """A savepoint inside the open transaction (see :meth:`_write`)."""
        name = f"nested_{len(self._levels)}"
        with self._unavailable_raised():
            if not self._db.in_transaction:  # rolled the outer one back (I/O, disk full)
                raise StoreWriteError("the database rolled the transaction back")
            self._db.execute(f"SAVEPOINT {name}")
            self._levels.append([])
            try:
                yield
            except BaseException:
                self._levels.pop()
                if self._backend.active(self._db):  # failed (PostgreSQL) or not
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                raise
            callbacks = self._levels.pop()
            self._db.execute(f"RELEASE {name}")
            self._levels[-1].extend(callbacks)

    def check_writable(self) -> None:
        """Take the write lock and let it go, changing nothing: raises
        :class:`~deploybot.store.StoreUnavailableError` when a write would wait beyond the
        busy timeout now.  (It writes nothing, so it leaves :attr:`last_write_error` as
        it is: only a real write proves the disk takes writes again.)"""
        error = self.last_write_error
        try:
            with self._unavailable_raised():
                try:
                    self._backend.begin(self._db)
                finally:
                    self._backend.rollback(self._db)
        finally:
            self.last_write_error = error

    @contextmanager
    def _unavailable_raised(self) -> Iterator[None]:
        """Database errors that mean "not now" as StoreUnavailableError, recorded and logged."""
        try:
            yield
        except self._backend.errors as error:
            failure = self._backend.unavailable(error)
            if failure is None:
                raise
            self.last_write_error = str(failure)
            log.warning("store: a write to %s failed: %s (%s)", self.path, error, failure)
            raise failure from error


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("store: an after-commit callback failed")


class Where:
    """The WHERE clause of a list query: fixed SQL fragments with ``?`` placeholders (column
    names come from this package, never from input) and their values, in order.  A filter
    given as None adds nothing."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.values: list[object] = []

    def equal(self, column: str, value: object | None, *, nocase: bool = False) -> None:
        """``column = value``; ``nocase``: ASCII case ignored (a ``COLLATE NOCASE`` column:
        the SQL says so, for PostgreSQL's sake)."""
        if value is not None:
            self.conditions.append(f"{column} = ?" + (" COLLATE NOCASE" if nocase else ""))
            self.values.append(value)

    def null(self, column: str, is_null: bool | None) -> None:
        """``column IS NULL`` (True), ``IS NOT NULL`` (False), or nothing (None)."""
        if is_null is not None:
            self.conditions.append(f"{column} IS {'' if is_null else 'NOT '}NULL")

    def between(self, column: str, since: datetime | None, until: datetime | None) -> None:
        """``column`` (a stored time) in [since, until); either end may be open."""
        if since is not None:
            self.conditions.append(f"{column} >= ?")
            self.values.append(db_time(since))
        if until is not None:
            self.conditions.append(f"{column} < ?")
            self.values.append(db_time(until))


def select_sql(
    columns: str, table: str, where: Where, order: str, limit: int | None
) -> tuple[str, list[object]]:
    """``SELECT columns FROM table [WHERE …] ORDER BY order [LIMIT ?]`` for the list
    methods, with its parameters (the limit's last)."""
    sql = f"SELECT {columns} FROM {table}"
    values = list(where.values)
    if where.conditions:
        sql += " WHERE " + " AND ".join(where.conditions)
    sql += f" ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT ?"
        values.append(max(limit, 0))
    return sql, values


# -- nicks ------------------------------------------------------------------------------


def _ascii_lower(text: str) -> str:
    """Lower-case A-Z only, like SQLite's NOCASE."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def same_nick(a: str, b: str) -> bool:
    return _ascii_lower(a) == _ascii_lower(b)


def same_account(a: str | None, b: str | None) -> bool:
    """Both known and the same account (ASCII case ignored)."""
    return a is not None and b is not None and _ascii_lower(a) == _ascii_lower(b)


def same_person(nick: str, account: str | None, other_nick: str, other_account: str | None) -> bool:
    """Accounts decide when both are known (nicks change); otherwise nicks."""
    if account is not None and other_account is not None:
        return same_account(account, other_account)
    return same_nick(nick, other_nick)
