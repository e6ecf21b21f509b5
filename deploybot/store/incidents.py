"""The incidents part of :class:`~deploybot.store.Store`: report, take, note and fix an
incident (the first of those by someone else acknowledges it, as acknowledging a page
about it does), each step recorded in its timeline, and the queries that list them
(by filter, by period for the digests, counts by state).

:class:`IncidentTable` is a mixin; the helpers that read and change one incident inside
a write transaction (:func:`incident_row`, :func:`ack_if_first`, :func:`add_event`) are
shared with the pages, since acknowledging a page acknowledges its incident.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from deploybot.store.base import (
    Connection,
    Row,
    StoreBase,
    Where,
    db_time,
    floor,
    from_db,
    same_nick,
    same_person,
    select_sql,
)
from deploybot.store.errors import AlreadyFixedError, TooManyNotesError, UnknownIncidentError
from deploybot.store.records import (
    Incident,
    IncidentState,
    IncidentSummary,
    TimelineEntry,
    TimelineKind,
    incident_from_row,
    summaries_from_rows,
)

__all__ = [
    "IncidentTable",
    "ack_if_first",
    "add_event",
    "incident_row",
]

_INCIDENT_COLUMNS = (
    "number, service, deploy_id, minutes_into_deploy, text, reporter_nick, "
    "reporter_account, channel, reported_at, acknowledged_at, acknowledged_by, owner, "
    "fixed_at, fixed_by"
)

_TIMELINES_SQL = """
SELECT incident, at, nick, account, kind, text FROM incident_events
WHERE incident IN (SELECT value FROM json_each(:numbers))
ORDER BY incident, id
"""

# Part of each timeline: its entries at positions [:offset, :offset + :limit) (0 first).
_TIMELINE_PARTS_SQL = """
SELECT incident, at, nick, account, kind, text FROM (
    SELECT incident, at, nick, account, kind, text, id,
           row_number() OVER (PARTITION BY incident ORDER BY id) - 1 AS position
    FROM incident_events WHERE incident IN (SELECT value FROM json_each(:numbers))
) AS parts
WHERE position >= :offset AND position < :offset + :limit
ORDER BY incident, id
"""

_TIMELINE_TOTALS_SQL = """
SELECT incident, count(*) FROM incident_events
WHERE incident IN (SELECT value FROM json_each(:numbers))
GROUP BY incident
"""


# -- lean reads for the digest (added for deploybot.deployday.digest) -----------------------------

_SUMMARY_COLUMNS = (
    "number, service, deploy_id, text, reporter_nick, owner, reported_at, acknowledged_at, fixed_at"
)

# Incidents that were open at some moment of [:start, :end), or fixed in it:
#   reported_at < :end AND (fixed_at IS NULL OR fixed_at >= :start)
# written as three disjoint index range searches so that it stays fast with millions of
# incidents (an OR over two columns would scan), with no UNION de-duplication, no number
# lookup and no sort: reported in the period; reported before it and fixed at or after
# :start; and reported before it and still open.  The middle part is bounded below by
# :span_start = :start minus the longest repair time ever recorded (those incidents
# cannot have been reported earlier); a search of fixed_at instead would read every
# incident fixed in the period to keep the few reported before.
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


# -- end of the lean reads ----------------------------------------------------------------


class IncidentTable(StoreBase):
    """The incident methods of :class:`~deploybot.store.Store`."""

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
        at = db_time(now)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO incidents (service, deploy_id, minutes_into_deploy, text,"
                " reporter_nick, reporter_account, channel, reported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING number",
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
            number = int(cursor.fetchone()[0])
            add_event(db, number, at, reporter_nick, reporter_account, "reported", text)
        return self.get(number)

    def get(
        self, number: int, *, timeline_offset: int = 0, timeline_limit: int | None = None
    ) -> Incident:
        """The incident ``number``; :class:`UnknownIncidentError` if there is none.

        With ``timeline_limit`` (or an offset), its timeline holds only the entries from
        position ``timeline_offset`` (0: the first), at most ``timeline_limit`` of them,
        and ``timeline_total`` says how many there are in all.
        """
        row = self._db.execute(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE number = ?", (number,)
        ).fetchone()
        if row is None:
            raise UnknownIncidentError(number)
        return self._with_timelines([row], timeline_offset, timeline_limit)[0]

    def take(self, number: int, nick: str, account: str | None, now: datetime) -> Incident:
        """Make ``nick`` the owner of an open incident (taking it over from someone else
        is allowed and noted in the timeline; taking one's own again changes nothing)."""
        at = db_time(now)
        with self._write() as db:
            row = _open_incident_row(db, number)
            owner: str | None = row["owner"]
            if owner is not None and same_nick(owner, nick):
                return self._with_timelines([row])[0]
            ack_if_first(db, row, nick, account, at)
            db.execute("UPDATE incidents SET owner = ? WHERE number = ?", (nick, number))
            text = f"from {owner}" if owner is not None else ""
            add_event(db, number, at, nick, account, "taken", text)
        return self.get(number)

    def add_note(
        self,
        number: int,
        nick: str,
        account: str | None,
        text: str,
        now: datetime,
        *,
        max_notes: int | None = None,
    ) -> Incident:
        """Add a note; allowed on fixed incidents too (follow-ups, post-mortem links).

        :class:`TooManyNotesError` (nothing added) when the incident already has
        ``max_notes`` notes (None: no limit).
        """
        at = db_time(now)
        with self._write() as db:
            row = incident_row(db, number)
            if max_notes is not None:
                (notes,) = db.execute(
                    "SELECT count(*) FROM incident_events WHERE incident = ? AND kind = 'note'",
                    (number,),
                ).fetchone()
                if notes >= max_notes:
                    raise TooManyNotesError(number, max_notes)
            ack_if_first(db, row, nick, account, at)
            add_event(db, number, at, nick, account, "note", text)
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
        at = db_time(now)
        with self._write() as db:
            row = _open_incident_row(db, number)
            ack_if_first(db, row, nick, account, at)
            repair = int((from_db(at) - from_db(row["reported_at"])).total_seconds())
            db.execute(
                "UPDATE incidents SET fixed_at = ?, fixed_by = ?, repair_seconds = ?"
                " WHERE number = ?",
                (at, nick, repair, number),
            )
            add_event(db, number, at, nick, account, "fixed", note or "")
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
        timeline_limit: int | None = None,
    ) -> tuple[Incident, ...]:
        """Incidents by number (descending if ``newest_first``), filtered.

        ``since``/``until`` bound ``reported_at`` as [since, until).  ``limit`` keeps the
        first ``limit`` in that order (with ``newest_first``: the latest ones).
        ``timeline_limit``: each timeline holds at most its first ``timeline_limit``
        entries (see :meth:`get`).
        """
        if state not in (None, "open", "fixed"):
            raise ValueError(f"state must be 'open', 'fixed' or None, not {state!r}")
        where = Where()
        where.null("fixed_at", None if state is None else state == "open")
        where.equal("service", service, nocase=True)
        where.equal("deploy_id", deploy_id)
        where.between("reported_at", since, until)
        order = "number DESC" if newest_first else "number"
        sql, values = select_sql(_INCIDENT_COLUMNS, "incidents", where, order, limit)
        rows = self._db.execute(sql, values).fetchall()
        return self._with_timelines(rows, 0, timeline_limit)

    def incident_counts(self) -> dict[str, int]:
        """``{"open": n, "fixed": m}``: every incident ever recorded, by state (one query)."""
        total, fixed = self._db.execute(
            "SELECT COUNT(*), COUNT(fixed_at) FROM incidents"
        ).fetchone()
        return {"open": total - fixed, "fixed": fixed}

    def _between_params(self, start: datetime, end: datetime) -> dict[str, str]:
        row = self._db.execute("SELECT max(repair_seconds) FROM incidents").fetchone()
        longest = max(int(row[0] or 0), 0)
        first = floor(start)
        return {
            "start": db_time(first),
            "end": db_time(end),
            "span_start": db_time(first - timedelta(seconds=longest)),
        }

    # -- lean reads for the digest (added for deploybot.deployday.digest) ----------------------

    def incident_summaries_between(
        self, start: datetime, end: datetime
    ) -> Iterator[IncidentSummary]:
        """Everything a digest of the period [start, end) needs, as
        :class:`IncidentSummary`, in no particular order, read from the database as they
        are iterated.

        That is every incident that was open at some moment of the period or changed
        state in it: reported in [start, end), or still open at ``start`` (reported
        before, fixed at or after ``start`` or never), or fixed in [start, end).  In one
        condition: ``reported_at < end and (fixed_at is None or fixed_at >= start)``.
        Incidents reported after ``end`` are left out even if a digest is computed
        later.  The digest decides from each incident's times what it was at ``end``.

        For a day's digest: only the columns it needs and no timelines, so the cost is
        one index range search per part and a small tuple per incident, and nothing is
        held in memory but the row being read.  The query runs when this is called
        (``ValueError`` for a naive datetime then); iterate the result to the end at
        once, before other writes on this store.
        """
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples: much cheaper than named rows
        cursor.execute(_SUMMARIES_BETWEEN_SQL, self._between_params(start, end))
        return summaries_from_rows(cursor)

    # -- end of the lean reads --------------------------------------------------------

    def _with_timelines(
        self, rows: Sequence[Row], offset: int = 0, limit: int | None = None
    ) -> tuple[Incident, ...]:
        """The incidents of ``rows`` with their timelines (entries [offset, offset +
        limit) and the totals, when a part is asked for)."""
        if not rows:
            return ()
        numbers = [int(row["number"]) for row in rows]
        entries: dict[int, list[TimelineEntry]] = {number: [] for number in numbers}
        totals: dict[int, int] | None = None
        params: dict[str, object] = {"numbers": json.dumps(numbers)}
        sql = _TIMELINES_SQL
        if offset or limit is not None:
            whole = 2**62 if limit is None else max(limit, 0)  # no limit: to the end
            params |= {"offset": max(offset, 0), "limit": whole}
            sql = _TIMELINE_PARTS_SQL
            totals = dict.fromkeys(numbers, 0)
            for incident, count in self._db.execute(_TIMELINE_TOTALS_SQL, params):
                totals[incident] = count
        for event in self._db.execute(sql, params):
            entries[event["incident"]].append(
                TimelineEntry(
                    at=from_db(event["at"]),
                    nick=event["nick"],
                    kind=event["kind"],
                    text=event["text"],
                    account=event["account"],
                )
            )
        return tuple(
            incident_from_row(
                row,
                tuple(entries[row["number"]]),
                None if totals is None else totals[row["number"]],
            )
            for row in rows
        )


# -- one incident inside a write transaction ---------------------------------------------


def incident_row(db: Connection, number: int) -> Row:
    row: Row | None = db.execute(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE number = ?", (number,)
    ).fetchone()
    if row is None:
        raise UnknownIncidentError(number)
    return row


def _open_incident_row(db: Connection, number: int) -> Row:
    row = incident_row(db, number)
    if row["fixed_at"] is not None:
        raise AlreadyFixedError(number, from_db(row["fixed_at"]), row["fixed_by"])
    return row


def ack_if_first(db: Connection, row: Row, nick: str, account: str | None, at: str) -> None:
    """Record the first acknowledgement of an open incident by someone not its reporter."""
    if row["acknowledged_at"] is not None or row["fixed_at"] is not None:
        return
    if same_person(nick, account, row["reporter_nick"], row["reporter_account"]):
        return
    db.execute(
        "UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ?"
        " WHERE number = ? AND acknowledged_at IS NULL",
        (at, nick, row["number"]),
    )


def add_event(
    db: Connection,
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
