"""The bot's embedded SQLite database: incidents, ``!uses`` consumers, ledgers, pages.

One :class:`Store` wraps one :mod:`sqlite3` connection and is used from the asyncio
thread only (the connection is opened with ``check_same_thread`` on, so use from another
thread fails loudly).  Every operation is a few indexed statements on a local file, so
the bot calls them directly from its handlers, without an executor.  A write that finds
the database locked by another process (e.g. ``deploybot digest``) waits up to the busy
timeout (5 s by default) and blocks the loop meanwhile.

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
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self

from deploybot.errors import DeploybotError
from deploybot.migrations import SCHEMA_VERSION, migrate

__all__ = [
    "SCHEMA_VERSION",
    "AlreadyFixedError",
    "CountdownClaim",
    "Incident",
    "IncidentSummary",
    "Page",
    "PageAlreadyAckedError",
    "PageNotYoursError",
    "RegisteredConsumer",
    "Store",
    "StoreOpenError",
    "TimelineEntry",
    "TimelineKind",
    "UnknownIncidentError",
    "UnknownPageError",
]

TimelineKind = Literal["reported", "taken", "note", "fixed", "ack"]
IncidentState = Literal["open", "fixed"]

DEFAULT_BUSY_TIMEOUT = 5.0


# -- errors -----------------------------------------------------------------------------


class StoreOpenError(DeploybotError):
    """The database file cannot be opened or is not a (current) deploybot database."""


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
            f"incident {number} is already fixed (at {_db_time(fixed_at)} by {fixed_by})"
        )


class UnknownPageError(DeploybotError):
    def __init__(self, number: int) -> None:
        self.number = number
        super().__init__(f"no page {number}")


class PageNotYoursError(DeploybotError):
    def __init__(self, number: int, target_nick: str) -> None:
        self.number = number
        self.target_nick = target_nick
        super().__init__(f"page {number} is for {target_nick}, not for you")


class PageAlreadyAckedError(DeploybotError):
    def __init__(self, number: int, acked_at: datetime, acked_by: str) -> None:
        self.number = number
        self.acked_at = acked_at
        self.acked_by = acked_by
        super().__init__(
            f"page {number} was already acknowledged (at {_db_time(acked_at)} by {acked_by})"
        )


# -- records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One event in an incident's life, in the order it was recorded."""

    at: datetime
    nick: str
    kind: TimelineKind
    text: str
    account: str | None = None


@dataclass(frozen=True)
class Incident:
    """An incident as recorded, with its whole timeline.

    ``acknowledged_at``/``acknowledged_by``: the first take, ack, note or fix by someone
    other than the reporter while the incident was open (the reporter's own actions do
    not count).  ``owner``: the last person who took it.
    """

    number: int
    service: str
    deploy_id: str | None
    minutes_into_deploy: int | None
    text: str
    reporter_nick: str
    reporter_account: str | None
    channel: str
    reported_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    owner: str | None
    fixed_at: datetime | None
    fixed_by: str | None
    timeline: tuple[TimelineEntry, ...]

    @property
    def open(self) -> bool:
        return self.fixed_at is None

    def open_at(self, moment: datetime) -> bool:
        """Whether the incident was reported and not yet fixed at ``moment``."""
        return self.reported_at <= moment and (self.fixed_at is None or moment < self.fixed_at)

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        if self.acknowledged_at is None:
            return None
        return self.acknowledged_at - self.reported_at

    @property
    def time_to_repair(self) -> timedelta | None:
        if self.fixed_at is None:
            return None
        return self.fixed_at - self.reported_at


@dataclass(frozen=True)
class RegisteredConsumer:
    """Someone who said ``!uses SERVICE [what]``; ``updated_at`` is the latest ``!uses``."""

    service: str
    nick: str
    account: str | None
    what: str | None
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CountdownClaim:
    key: str
    claimed_at: datetime
    late: bool
    skipped: bool


@dataclass(frozen=True)
class Page:
    """A page to one nick (a team page is one :class:`Page` per person, ``team`` set).

    ``escalate_at`` None: never escalated.  ``incident``: the incident it pages about;
    acknowledging the page acknowledges the incident too.
    """

    number: int
    target_nick: str
    team: str | None
    plan_id: str | None
    incident: int | None
    message: str
    sender_nick: str
    created_at: datetime
    escalate_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    escalated_at: datetime | None

    @property
    def pending(self) -> bool:
        """Not acknowledged yet."""
        return self.acked_at is None


# -- SQL --------------------------------------------------------------------------------

_INCIDENT_COLUMNS = (
    "number, service, deploy_id, minutes_into_deploy, text, reporter_nick, "
    "reporter_account, channel, reported_at, acknowledged_at, acknowledged_by, owner, "
    "fixed_at, fixed_by"
)

_PAGE_COLUMNS = (
    "number, target_nick, team, plan_id, incident, message, sender_nick, created_at, "
    "escalate_at, acked_at, acked_by, escalated_at"
)

# Incidents that were open at some moment of [:start, :end), or fixed in it:
#   reported_at < :end AND (fixed_at IS NULL OR fixed_at >= :start)
# written as a union of four index range searches so that it stays fast with millions of
# incidents (an OR over two columns would scan).  The last part, incidents reported
# before :start and fixed after :end, is bounded below by :span_start = :start minus the
# longest repair time ever recorded (those incidents cannot have been reported earlier).
_INCIDENTS_BETWEEN_SQL = f"""
SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE number IN (
    SELECT number FROM incidents INDEXED BY incidents_reported_at
        WHERE reported_at >= :start AND reported_at < :end
    UNION
    SELECT number FROM incidents INDEXED BY incidents_fixed_at
        WHERE fixed_at >= :start AND fixed_at < :end AND reported_at < :end
    UNION
    SELECT number FROM incidents INDEXED BY incidents_open
        WHERE fixed_at IS NULL AND reported_at < :start
    UNION
    SELECT number FROM incidents INDEXED BY incidents_reported_at
        WHERE reported_at >= :span_start AND reported_at < :start AND fixed_at >= :end
)
ORDER BY number
"""

_TIMELINES_SQL = """
SELECT incident, at, nick, account, kind, text FROM incident_events
WHERE incident IN (SELECT value FROM json_each(:numbers))
ORDER BY incident, id
"""


# -- lean reads for the digest (added for deploybot.digest) -----------------------------


class IncidentSummary(NamedTuple):
    """The columns of an incident that a digest reads, without its timeline.

    A tuple, so that building one per row stays cheap (a day's digest may read 100,000);
    the field names and types are those of :class:`Incident`.
    """

    number: int
    service: str
    deploy_id: str | None
    text: str
    reporter_nick: str
    owner: str | None
    reported_at: datetime
    acknowledged_at: datetime | None
    fixed_at: datetime | None


_SUMMARY_COLUMNS = (
    "number, service, deploy_id, text, reporter_nick, owner, reported_at, acknowledged_at, fixed_at"
)

# The incidents of _INCIDENTS_BETWEEN_SQL as three disjoint index range searches, so no
# UNION de-duplication, no number lookup and no sort: reported in the period; reported
# before it (but not before :span_start, see above) and fixed at or after :start; and
# reported before it and still open.  The middle part replaces the search of fixed_at
# there, which reads every incident fixed in the period to keep the few reported before.
_SUMMARIES_BETWEEN_SQL = f"""
SELECT {_SUMMARY_COLUMNS} FROM incidents INDEXED BY incidents_reported_at
    WHERE reported_at >= :start AND reported_at < :end
UNION ALL
SELECT {_SUMMARY_COLUMNS} FROM incidents INDEXED BY incidents_reported_at
    WHERE reported_at >= :span_start AND reported_at < :start AND fixed_at >= :start
UNION ALL
SELECT {_SUMMARY_COLUMNS} FROM incidents INDEXED BY incidents_open
    WHERE fixed_at IS NULL AND reported_at < :start
"""


def _summaries(rows: Iterable[tuple[Any, ...]]) -> Iterator[IncidentSummary]:
    parse = datetime.fromisoformat  # "...Z" gives an aware UTC datetime
    new = tuple.__new__
    for number, service, deploy, text, nick, owner, reported, acked, fixed in rows:
        yield new(
            IncidentSummary,
            (
                number,
                service,
                deploy,
                text,
                nick,
                owner,
                parse(reported),
                None if acked is None else parse(acked),
                None if fixed is None else parse(fixed),
            ),
        )


# -- end of the lean reads ----------------------------------------------------------------


# -- the store --------------------------------------------------------------------------


def _select(
    columns: str,
    table: str,
    conditions: list[str],
    order: str,
    limit: int | None,
    values: list[object],
) -> str:
    """``SELECT columns FROM table [WHERE …] ORDER BY order [LIMIT ?]`` for the list
    methods; the conditions are fixed SQL fragments with ``?`` placeholders, and the
    limit's value is appended to ``values``."""
    sql = f"SELECT {columns} FROM {table}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f" ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT ?"
        values.append(max(limit, 0))
    return sql


class Store:
    """The database.  Open with :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        """Wrap an already configured and migrated connection; use :meth:`open`."""
        self._db = connection
        self.path = path

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Self:
        """Open (creating it unless ``create`` is false) and migrate the database file.

        ``":memory:"`` gives a private in-memory database (for tests of other modules).
        Raises :class:`StoreOpenError` naming the path when the file is missing (with
        ``create=False``), unreadable, not an SQLite file, someone else's database, or
        from a newer deploybot.
        """
        name = os.fspath(path)
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
        return cls(connection, name)

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

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (durably) when the block ends normally."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- incidents ---------------------------------------------------------------------

    def report_incident(
        self,
        *,
        service: str,
        text: str,
        reporter_nick: str,
        reporter_account: str | None,
        channel: str,
        now: datetime,
        deploy_id: str | None = None,
        minutes_into_deploy: int | None = None,
    ) -> Incident:
        """Record a new incident; it is committed when this returns.

        Numbers start at 1 and are never reused.
        """
        at = _db_time(now)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO incidents (service, deploy_id, minutes_into_deploy, text,"
                " reporter_nick, reporter_account, channel, reported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    deploy_id,
                    minutes_into_deploy,
                    text,
                    reporter_nick,
                    reporter_account,
                    channel,
                    at,
                ),
            )
            number = cursor.lastrowid
            assert number is not None
            _add_event(db, number, at, reporter_nick, reporter_account, "reported", text)
        return self.get(number)

    def get(self, number: int) -> Incident:
        """The incident ``number``; :class:`UnknownIncidentError` if there is none."""
        row = self._db.execute(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE number = ?", (number,)
        ).fetchone()
        if row is None:
            raise UnknownIncidentError(number)
        return self._with_timelines([row])[0]

    def take(self, number: int, nick: str, account: str | None, now: datetime) -> Incident:
        """Make ``nick`` the owner of an open incident (taking it over from someone else
        is allowed and noted in the timeline; taking one's own again changes nothing)."""
        at = _db_time(now)
        with self._write() as db:
            row = _open_incident_row(db, number)
            owner: str | None = row["owner"]
            if owner is not None and _same_nick(owner, nick):
                return self._with_timelines([row])[0]
            _ack_if_first(db, row, nick, account, at)
            db.execute("UPDATE incidents SET owner = ? WHERE number = ?", (nick, number))
            text = f"from {owner}" if owner is not None else ""
            _add_event(db, number, at, nick, account, "taken", text)
        return self.get(number)

    def acknowledge(
        self, number: int, nick: str, account: str | None, now: datetime, text: str = ""
    ) -> Incident:
        """Record that ``nick`` has seen the open incident (without taking it)."""
        at = _db_time(now)
        with self._write() as db:
            row = _open_incident_row(db, number)
            _ack_if_first(db, row, nick, account, at)
            _add_event(db, number, at, nick, account, "ack", text)
        return self.get(number)

    def add_note(
        self, number: int, nick: str, account: str | None, text: str, now: datetime
    ) -> Incident:
        """Add a note; allowed on fixed incidents too (follow-ups, post-mortem links)."""
        at = _db_time(now)
        with self._write() as db:
            row = _incident_row(db, number)
            _ack_if_first(db, row, nick, account, at)
            _add_event(db, number, at, nick, account, "note", text)
        return self.get(number)

    def fix(
        self,
        number: int,
        nick: str,
        account: str | None,
        now: datetime,
        note: str | None = None,
    ) -> Incident:
        """Mark the incident fixed by ``nick``; :class:`AlreadyFixedError` if it was.

        Anyone may fix any incident (SPEC §3); the owner is left as it was.
        """
        at = _db_time(now)
        with self._write() as db:
            row = _open_incident_row(db, number)
            _ack_if_first(db, row, nick, account, at)
            repair = int((_from_db(at) - _from_db(row["reported_at"])).total_seconds())
            db.execute(
                "UPDATE incidents SET fixed_at = ?, fixed_by = ?, repair_seconds = ?"
                " WHERE number = ?",
                (at, nick, repair, number),
            )
            _add_event(db, number, at, nick, account, "fixed", note or "")
        return self.get(number)

    def list_incidents(
        self,
        *,
        state: IncidentState | None = None,
        service: str | None = None,
        deploy_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> tuple[Incident, ...]:
        """Incidents by number (descending if ``newest_first``), filtered.

        ``since``/``until`` bound ``reported_at`` as [since, until).  ``limit`` keeps the
        first ``limit`` in that order (with ``newest_first``: the latest ones).
        """
        # Only constant fragments are joined; every value is a parameter.
        conditions: list[str] = []
        values: list[object] = []
        if state == "open":
            conditions.append("fixed_at IS NULL")
        elif state == "fixed":
            conditions.append("fixed_at IS NOT NULL")
        elif state is not None:
            raise ValueError(f"state must be 'open', 'fixed' or None, not {state!r}")
        if service is not None:
            conditions.append("service = ?")
            values.append(service)
        if deploy_id is not None:
            conditions.append("deploy_id = ?")
            values.append(deploy_id)
        if since is not None:
            conditions.append("reported_at >= ?")
            values.append(_db_time(since))
        if until is not None:
            conditions.append("reported_at < ?")
            values.append(_db_time(until))
        order = "number DESC" if newest_first else "number"
        sql = _select(_INCIDENT_COLUMNS, "incidents", conditions, order, limit, values)
        return self._with_timelines(self._db.execute(sql, values).fetchall())

    def incident_counts(self) -> dict[str, int]:
        """``{"open": n, "fixed": m}``: every incident ever recorded, by state (one query)."""
        total, fixed = self._db.execute(
            "SELECT COUNT(*), COUNT(fixed_at) FROM incidents"
        ).fetchone()
        return {"open": total - fixed, "fixed": fixed}

    def incidents_between(self, start: datetime, end: datetime) -> tuple[Incident, ...]:
        """Everything a digest of the period [start, end) needs, by number.

        That is every incident that was open at some moment of the period or changed
        state in it: reported in [start, end), or still open at ``start`` (reported
        before, fixed at or after ``start`` or never), or fixed in [start, end).  In one
        condition: ``reported_at < end and (fixed_at is None or fixed_at >= start)``.
        Incidents reported after ``end`` are left out even if a digest is computed
        later.  The digest decides from each incident's times what it was at ``end``:
        :meth:`Incident.open_at` ``(end)`` is "still open at the end of the day", which
        differs from :attr:`Incident.open` (open now) for a past day.

        Each part of the query is an index range search (see ``_INCIDENTS_BETWEEN_SQL``),
        so the cost follows the number of incidents returned, not the table size.
        """
        rows = self._db.execute(_INCIDENTS_BETWEEN_SQL, self._between_params(start, end))
        return self._with_timelines(rows.fetchall())

    def _between_params(self, start: datetime, end: datetime) -> dict[str, str]:
        row = self._db.execute("SELECT max(repair_seconds) FROM incidents").fetchone()
        longest = max(int(row[0] or 0), 0)
        first = _floor(start)
        return {
            "start": _db_time(first),
            "end": _db_time(end),
            "span_start": _db_time(first - timedelta(seconds=longest)),
        }

    # -- lean reads for the digest (added for deploybot.digest) ----------------------

    def incident_summaries_between(
        self, start: datetime, end: datetime
    ) -> Iterator[IncidentSummary]:
        """The incidents of :meth:`incidents_between` as :class:`IncidentSummary`, in no
        particular order, read from the database as they are iterated.

        For a day's digest: only the columns it needs and no timelines, so the cost is
        one index range search per part and a small tuple per incident, and nothing is
        held in memory but the row being read.  The query runs when this is called
        (``ValueError`` for a naive datetime then); iterate the result to the end at
        once, before other writes on this store.
        """
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples: much cheaper than sqlite3.Row
        cursor.execute(_SUMMARIES_BETWEEN_SQL, self._between_params(start, end))
        return _summaries(cursor)

    # -- end of the lean reads --------------------------------------------------------

    def _with_timelines(self, rows: Sequence[sqlite3.Row]) -> tuple[Incident, ...]:
        if not rows:
            return ()
        numbers = [int(row["number"]) for row in rows]
        entries: dict[int, list[TimelineEntry]] = {number: [] for number in numbers}
        for event in self._db.execute(_TIMELINES_SQL, {"numbers": json.dumps(numbers)}):
            entries[event["incident"]].append(
                TimelineEntry(
                    at=_from_db(event["at"]),
                    nick=event["nick"],
                    kind=event["kind"],
                    text=event["text"],
                    account=event["account"],
                )
            )
        return tuple(_incident(row, tuple(entries[row["number"]])) for row in rows)

    # -- consumers (!uses) -------------------------------------------------------------

    def add_consumer(
        self, service: str, nick: str, account: str | None, what: str | None, now: datetime
    ) -> RegisteredConsumer:
        """Register ``nick`` as a consumer of ``service``, or update the registration.

        One registration per service and nick: repeating ``!uses`` updates the account,
        ``updated_at`` and ``what`` (a ``None`` ``what`` keeps the earlier one).
        """
        at = _db_time(now)
        with self._write() as db:
            db.execute(
                "INSERT INTO consumers (service, nick, account, what, registered_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (service, nick) DO UPDATE SET"
                " account = excluded.account,"
                " what = coalesce(excluded.what, consumers.what),"
                " updated_at = excluded.updated_at",
                (service, nick, account, what, at, at),
            )
            row = db.execute(
                "SELECT * FROM consumers WHERE service = ? AND nick = ?", (service, nick)
            ).fetchone()
        return _consumer(row)

    def remove_consumer(self, service: str, nick: str) -> bool:
        """Forget ``nick`` as a consumer of ``service``; False if it was not registered."""
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM consumers WHERE service = ? AND nick = ?", (service, nick)
            )
        return cursor.rowcount > 0

    def consumers(self, service: str) -> tuple[RegisteredConsumer, ...]:
        """The registered consumers of ``service``, oldest registration first."""
        rows = self._db.execute(
            "SELECT * FROM consumers WHERE service = ? ORDER BY registered_at, nick",
            (service,),
        )
        return tuple(_consumer(row) for row in rows)

    # -- ledgers -----------------------------------------------------------------------

    def claim_countdown(
        self, key: str, now: datetime, *, late: bool = False, skipped: bool = False
    ) -> bool:
        """Record that the countdown post ``key`` is being sent (or deliberately skipped).

        True for exactly one caller ever (the check and the write are one statement);
        False when the key was already claimed, also by an earlier run of the bot.
        Claim *before* sending: a crash between the claim and the send loses that post
        rather than sending it twice.
        """
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO countdown_posts (key, claimed_at, late, skipped)"
                " VALUES (?, ?, ?, ?)",
                (key, _db_time(now), int(late), int(skipped)),
            )
        return cursor.rowcount == 1

    def sent_countdown_keys(self) -> frozenset[str]:
        """Every claimed countdown key (sent, sent late, or skipped)."""
        return frozenset(row[0] for row in self._db.execute("SELECT key FROM countdown_posts"))

    def countdown_claims(self) -> tuple[CountdownClaim, ...]:
        """Every countdown claim with its time and flags, oldest first."""
        rows = self._db.execute(
            "SELECT key, claimed_at, late, skipped FROM countdown_posts ORDER BY claimed_at, key"
        )
        return tuple(
            CountdownClaim(
                key=row["key"],
                claimed_at=_from_db(row["claimed_at"]),
                late=bool(row["late"]),
                skipped=bool(row["skipped"]),
            )
            for row in rows
        )

    def claimed(self, key: str) -> bool:
        """Whether ``key`` was ever claimed with :meth:`claim_once` (read-only)."""
        row = self._db.execute("SELECT 1 FROM once_claims WHERE key = ?", (key,)).fetchone()
        return row is not None

    def claim_once(self, key: str, now: datetime) -> bool:
        """True the first time ``key`` is claimed, False ever after (across restarts).

        For things done once per key, e.g. ``firefight-open:pkgdb2-2.0`` or
        ``digest:2026-11-27``.
        """
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO once_claims (key, claimed_at) VALUES (?, ?)",
                (key, _db_time(now)),
            )
        return cursor.rowcount == 1

    # -- pages -------------------------------------------------------------------------

    def create_page(
        self,
        *,
        target_nick: str,
        team: str | None,
        plan_id: str | None,
        message: str,
        sender_nick: str,
        now: datetime,
        escalate_at: datetime | None,
        incident: int | None = None,
    ) -> Page:
        """Record a page to ``target_nick``; numbered from 1, never reused."""
        with self._write() as db:
            if incident is not None:
                _incident_row(db, incident)
            cursor = db.execute(
                "INSERT INTO pages (target_nick, team, plan_id, incident, message,"
                " sender_nick, created_at, escalate_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    target_nick,
                    team,
                    plan_id,
                    incident,
                    message,
                    sender_nick,
                    _db_time(now),
                    None if escalate_at is None else _db_time(escalate_at),
                ),
            )
            number = cursor.lastrowid
            assert number is not None
            return _page(_page_row(db, number))

    def get_page(self, number: int) -> Page:
        """The page ``number``; :class:`UnknownPageError` if there is none."""
        return _page(_page_row(self._db, number))

    def ack_pages(
        self,
        nick: str,
        now: datetime,
        number: int | None = None,
        *,
        account: str | None = None,
    ) -> tuple[Page, ...]:
        """Acknowledge ``nick``'s pending pages (all, or just page ``number``).

        Returns the pages acknowledged now (empty when ``nick`` had none pending).  With
        ``number``: :class:`UnknownPageError`, :class:`PageNotYoursError` or
        :class:`PageAlreadyAckedError` when it cannot be acknowledged.  An escalated
        page can still be acknowledged.  A page about an open incident also acknowledges
        the incident (an ``ack`` in its timeline), in the same transaction.
        """
        at = _db_time(now)
        with self._write() as db:
            if number is None:
                rows = db.execute(
                    f"SELECT {_PAGE_COLUMNS} FROM pages"
                    " WHERE target_nick = ? AND acked_at IS NULL ORDER BY number",
                    (nick,),
                ).fetchall()
            else:
                row = _page_row(db, number)
                if not _same_nick(row["target_nick"], nick):
                    raise PageNotYoursError(number, row["target_nick"])
                if row["acked_at"] is not None:
                    raise PageAlreadyAckedError(number, _from_db(row["acked_at"]), row["acked_by"])
                rows = [row]
            acked: list[Page] = []
            for row in rows:
                db.execute(
                    "UPDATE pages SET acked_at = ?, acked_by = ? WHERE number = ?",
                    (at, nick, row["number"]),
                )
                if row["incident"] is not None:
                    incident = _incident_row(db, row["incident"])
                    if incident["fixed_at"] is None:
                        _ack_if_first(db, incident, nick, account, at)
                        page_text = f"page {row['number']}"
                        _add_event(db, row["incident"], at, nick, account, "ack", page_text)
                acked.append(_page(_page_row(db, row["number"])))
        return tuple(acked)

    def pending_escalations(self, now: datetime) -> tuple[Page, ...]:
        """Pages due for escalation: not acknowledged, ``escalate_at <= now``, not yet
        escalated (see :meth:`mark_escalated`); by number."""
        rows = self._db.execute(
            f"SELECT {_PAGE_COLUMNS} FROM pages"
            " WHERE acked_at IS NULL AND escalated_at IS NULL AND escalate_at <= ?"
            " ORDER BY number",
            (_db_time(now),),
        )
        return tuple(_page(row) for row in rows)

    def mark_escalated(self, number: int, now: datetime) -> bool:
        """Record that page ``number`` was escalated; False (and nothing changes) if it
        was already escalated or acknowledged meanwhile."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE pages SET escalated_at = ?"
                " WHERE number = ? AND escalated_at IS NULL AND acked_at IS NULL",
                (_db_time(now), number),
            )
            if cursor.rowcount == 0:
                _page_row(db, number)  # UnknownPageError if it does not exist
                return False
        return True

    def list_pages(
        self,
        *,
        pending: bool | None = None,
        target_nick: str | None = None,
        plan_id: str | None = None,
        incident: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> tuple[Page, ...]:
        """Pages by number, filtered; ``since``/``until`` bound ``created_at`` as
        [since, until); ``pending`` True: not acknowledged, False: acknowledged."""
        conditions: list[str] = []
        values: list[object] = []
        if pending is True:
            conditions.append("acked_at IS NULL")
        elif pending is False:
            conditions.append("acked_at IS NOT NULL")
        if target_nick is not None:
            conditions.append("target_nick = ?")
            values.append(target_nick)
        if plan_id is not None:
            conditions.append("plan_id = ?")
            values.append(plan_id)
        if incident is not None:
            conditions.append("incident = ?")
            values.append(incident)
        if since is not None:
            conditions.append("created_at >= ?")
            values.append(_db_time(since))
        if until is not None:
            conditions.append("created_at < ?")
            values.append(_db_time(until))
        sql = _select(_PAGE_COLUMNS, "pages", conditions, "number", limit, values)
        return tuple(_page(row) for row in self._db.execute(sql, values))


# -- helpers ----------------------------------------------------------------------------


def _floor(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware datetimes, got {moment!r}")
    return moment.astimezone(UTC).replace(microsecond=0)


def _db_time(moment: datetime) -> str:
    """``2026-11-27T10:00:00Z``: fixed width, so text order is time order."""
    return _floor(moment).replace(tzinfo=None).isoformat() + "Z"


def _from_db(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _from_db_or_none(text: str | None) -> datetime | None:
    return None if text is None else _from_db(text)


def _ascii_lower(text: str) -> str:
    """Lower-case A-Z only, like SQLite's NOCASE."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _same_nick(a: str, b: str) -> bool:
    return _ascii_lower(a) == _ascii_lower(b)


def _same_person(
    nick: str, account: str | None, other_nick: str, other_account: str | None
) -> bool:
    """Accounts decide when both are known (nicks change); otherwise nicks."""
    if account is not None and other_account is not None:
        return _ascii_lower(account) == _ascii_lower(other_account)
    return _same_nick(nick, other_nick)


def _incident_row(db: sqlite3.Connection, number: int) -> sqlite3.Row:
    row: sqlite3.Row | None = db.execute(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE number = ?", (number,)
    ).fetchone()
    if row is None:
        raise UnknownIncidentError(number)
    return row


def _open_incident_row(db: sqlite3.Connection, number: int) -> sqlite3.Row:
    row = _incident_row(db, number)
    if row["fixed_at"] is not None:
        raise AlreadyFixedError(number, _from_db(row["fixed_at"]), row["fixed_by"])
    return row


def _ack_if_first(
    db: sqlite3.Connection, row: sqlite3.Row, nick: str, account: str | None, at: str
) -> None:
    """Record the first acknowledgement of an open incident by someone not its reporter."""
    if row["acknowledged_at"] is not None or row["fixed_at"] is not None:
        return
    if _same_person(nick, account, row["reporter_nick"], row["reporter_account"]):
        return
    db.execute(
        "UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ?"
        " WHERE number = ? AND acknowledged_at IS NULL",
        (at, nick, row["number"]),
    )


def _add_event(
    db: sqlite3.Connection,
    number: int,
    at: str,
    nick: str,
    account: str | None,
    kind: TimelineKind,
    text: str,
) -> None:
    db.execute(
        "INSERT INTO incident_events (incident, at, nick, account, kind, text)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (number, at, nick, account, kind, text),
    )


def _incident(row: sqlite3.Row, timeline: tuple[TimelineEntry, ...]) -> Incident:
    return Incident(
        number=row["number"],
        service=row["service"],
        deploy_id=row["deploy_id"],
        minutes_into_deploy=row["minutes_into_deploy"],
        text=row["text"],
        reporter_nick=row["reporter_nick"],
        reporter_account=row["reporter_account"],
        channel=row["channel"],
        reported_at=_from_db(row["reported_at"]),
        acknowledged_at=_from_db_or_none(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        owner=row["owner"],
        fixed_at=_from_db_or_none(row["fixed_at"]),
        fixed_by=row["fixed_by"],
        timeline=timeline,
    )


def _consumer(row: sqlite3.Row) -> RegisteredConsumer:
    return RegisteredConsumer(
        service=row["service"],
        nick=row["nick"],
        account=row["account"],
        what=row["what"],
        registered_at=_from_db(row["registered_at"]),
        updated_at=_from_db(row["updated_at"]),
    )


def _page_row(db: sqlite3.Connection, number: int) -> sqlite3.Row:
    row: sqlite3.Row | None = db.execute(
        f"SELECT {_PAGE_COLUMNS} FROM pages WHERE number = ?", (number,)
    ).fetchone()
    if row is None:
        raise UnknownPageError(number)
    return row


def _page(row: sqlite3.Row) -> Page:
    return Page(
        number=row["number"],
        target_nick=row["target_nick"],
        team=row["team"],
        plan_id=row["plan_id"],
        incident=row["incident"],
        message=row["message"],
        sender_nick=row["sender_nick"],
        created_at=_from_db(row["created_at"]),
        escalate_at=_from_db_or_none(row["escalate_at"]),
        acked_at=_from_db_or_none(row["acked_at"]),
        acked_by=row["acked_by"],
        escalated_at=_from_db_or_none(row["escalated_at"]),
    )
