"""What the tables of :class:`~deploybot.store.Store` share: the connection, the write
transaction, and how values are stored and compared.

Times are stored as UTC ISO 8601 text with ``Z`` at whole seconds and read back as aware
UTC datetimes (:func:`db_time`, :func:`from_db`); nicks and accounts are compared
ASCII-case-insensitively, like SQLite's NOCASE (:func:`same_nick`, :func:`same_person`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploybot.store.errors import StoreUnavailableError

__all__ = [
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
    "unavailable",
]

log = logging.getLogger(__name__)

# SQLite's primary result codes (the low byte of an extended code) that mean "this write
# cannot be made now", with words for the user; any other error is a bug and stays as it is.
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_WRITE_FAILURES = {
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_READONLY: "the file is read-only",
    sqlite3.SQLITE_IOERR: "an I/O error",
    sqlite3.SQLITE_CANTOPEN: "the file cannot be opened",
    sqlite3.SQLITE_PROTOCOL: "a locking protocol error",
}


def unavailable(error: sqlite3.Error) -> StoreUnavailableError | None:
    """The :class:`~deploybot.store.StoreUnavailableError` that ``error`` means (a busy or
    locked database, a full disk, a read-only file, an I/O error), or None for any other
    error (a bug)."""
    from deploybot.store.errors import StoreBusyError, StoreWriteError  # errors imports us

    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    if primary in _BUSY_CODES:
        return StoreBusyError()
    reason = _WRITE_FAILURES.get(primary)
    return StoreWriteError(reason) if reason is not None else None


class StoreBase:
    """The connection the table mixins of :class:`~deploybot.store.Store` work on."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        """Wrap an already configured and migrated connection; use ``Store.open``."""
        self._db = connection
        self.path = path
        #: Why the last write failed (a :class:`~deploybot.store.StoreUnavailableError`'s
        #: message), None once a write succeeds again (``/healthz`` reports it).
        self.last_write_error: str | None = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (durably) when the block ends normally.

        A database locked by another connection beyond the busy timeout, a full disk, a
        read-only file or an I/O error rolls the whole transaction back and raises
        :class:`~deploybot.store.StoreUnavailableError` (recorded in
        :attr:`last_write_error` until a write succeeds): nothing of the write is kept."""
        with self._unavailable_raised():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        self.last_write_error = None

    def check_writable(self) -> None:
        """Take the write lock and let it go, changing nothing: raises
        :class:`~deploybot.store.StoreUnavailableError` when a write would wait beyond the
        busy timeout now.  (It writes nothing, so it leaves :attr:`last_write_error` as
        it is: only a real write proves the disk takes writes again.)"""
        error = self.last_write_error
        try:
            with self._unavailable_raised():
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("ROLLBACK")
        finally:
            self.last_write_error = error

    @contextmanager
    def _unavailable_raised(self) -> Iterator[None]:
        """SQLite errors that mean "not now" as StoreUnavailableError, recorded and logged."""
        try:
            yield
        except sqlite3.Error as error:
            failure = unavailable(error)
            if failure is None:
                raise
            self.last_write_error = str(failure)
            log.warning("store: a write to %s failed: %s (%s)", self.path, error, failure)
            raise failure from error


class Where:
    """The WHERE clause of a list query: fixed SQL fragments with ``?`` placeholders (column
    names come from this package, never from input) and their values, in order.  A filter
    given as None adds nothing."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.values: list[object] = []

    def equal(self, column: str, value: object | None) -> None:
        if value is not None:
            self.conditions.append(f"{column} = ?")
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


# -- times ------------------------------------------------------------------------------


def floor(moment: datetime) -> datetime:
    """``moment`` in UTC without its sub-second part; ``ValueError`` if it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware datetimes, got {moment!r}")
    return moment.astimezone(UTC).replace(microsecond=0)


def db_time(moment: datetime) -> str:
    """``2026-11-27T10:00:00Z``: fixed width, so text order is time order."""
    return floor(moment).replace(tzinfo=None).isoformat() + "Z"


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def from_db_or_none(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


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
