"""The expected errors of :class:`~deploybot.store.Store`, each with a one-line message
for the user (an unknown incident, one already fixed, a page that is someone else's, a
database that cannot be written just now)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from deploybot.errors import DeploybotError
from deploybot.store.times import db_time

__all__ = [
    "AlreadyFixedError",
    "NotLeaderError",
    "PageAlreadyAckedError",
    "PageNotYoursError",
    "StoreBusyError",
    "StoreOpenError",
    "StoreUnavailableError",
    "StoreWriteError",
    "TooManyNotesError",
    "UnknownIncidentError",
    "UnknownPageError",
]


class StoreOpenError(DeploybotError):
    """The database file cannot be opened or is not a (current) deploybot database."""


class StoreUnavailableError(DeploybotError):
    """A write could not be made, and nothing of it was (its transaction was rolled back):
    the caller may try again later.  The message is for the user, without SQLite's text."""


class StoreBusyError(StoreUnavailableError):
    """Another connection held the database's write lock longer than the busy timeout."""

    def __init__(self) -> None:
        super().__init__(
            "the database is busy (another program is writing to it); nothing was changed: "
            "try again in a moment"
        )


class StoreWriteError(StoreUnavailableError):
    """The database file cannot be written (disk full, read-only, I/O error)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"the database cannot be written ({reason}); nothing was changed: "
            "the admins can find the cause in the log"
        )


class NotLeaderError(StoreUnavailableError):
    """A write by an instance that is no longer the active one (its fence's epoch is not
    the current one, PostgreSQL active/standby): refused, nothing of its transaction was
    kept.  A :class:`StoreUnavailableError`, so that every caller that leaves the work for
    later (the webhook's 503, the AMQP source's requeue, the publisher's stored message)
    leaves it to the active instance; it must not be retried here."""

    def __init__(self, epoch: int, current: int | None) -> None:
        self.epoch = epoch
        self.current = current
        super().__init__(
            f"not the active instance any more (epoch {epoch}, current {current}): "
            "nothing was changed"
        )


class UnknownIncidentError(DeploybotError):
    def __init__(self, number: int) -> None:
        self.number = number
        super().__init__(f"no incident {number}")


class AlreadyFixedError(DeploybotError):
    def __init__(self, number: int, fixed_at: datetime, fixed_by: str) -> None:
        self.number = number
        self.fixed_at = fixed_at
        self.fixed_by = fixed_by
        super().__init__(
            f"incident {number} is already fixed (at {db_time(fixed_at)} by {fixed_by})"
        )


class TooManyNotesError(DeploybotError):
    """The incident has as many notes as one incident may have; nothing was added."""

    def __init__(self, number: int, limit: int) -> None:
        self.number = number
        self.limit = limit
        super().__init__(
            f"not noted: incident {number} already has {limit} notes, the most one incident "
            "may have (max_notes_per_incident); put further findings in a document and "
            "link it from a new incident, or ask an admin to raise the limit"
        )


class UnknownPageError(DeploybotError):
    def __init__(self, number: int) -> None:
        self.number = number
        super().__init__(f"no page {number}")


class PageNotYoursError(DeploybotError):
    """Someone else's page: another nick's, or (``account`` given) the page of a services
    account the sender is not logged in to."""

    def __init__(self, number: int, target_nick: str, account: str | None = None) -> None:
        self.number = number
        self.target_nick = target_nick
        self.account = account
        if account is None:
            super().__init__(f"page {number} is for {target_nick}, not for you")
        else:
            super().__init__(
                f"page {number} is for {target_nick} logged in as {account}; "
                f"log in to services as {account} to acknowledge it"
            )


class PageAlreadyAckedError(DeploybotError):
    def __init__(self, number: int, acked_at: datetime, acked_by: str) -> None:
        self.number = number
        self.acked_at = acked_at
        self.acked_by = acked_by
        super().__init__(
            f"page {number} was already acknowledged (at {db_time(acked_at)} by {acked_by})"
        )


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
    """The :class:`StoreUnavailableError` that ``error`` means (a busy or
    locked database, a full disk, a read-only file, an I/O error), or None for any other
    error (a bug)."""
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    if primary in _BUSY_CODES:
        return StoreBusyError()
    reason = _WRITE_FAILURES.get(primary)
    return StoreWriteError(reason) if reason is not None else None
