"""The pages part of :class:`~deploybot.store.Store`: create (also together with a
once-ever claim), acknowledge (which also acknowledges the incident paged about),
escalate and list pages."""

from __future__ import annotations

from datetime import datetime

from deploybot.store.base import (
    Connection,
    Row,
    StoreBase,
    Where,
    db_time,
    from_db,
    same_account,
    same_nick,
    select_sql,
)
from deploybot.store.errors import PageAlreadyAckedError, PageNotYoursError, UnknownPageError
from deploybot.store.incidents import ack_if_first, add_event, incident_row
from deploybot.store.ledger import claim
from deploybot.store.records import Page, page_from_row

__all__ = ["PageTable"]

_PAGE_COLUMNS = (
    "number, target_nick, team, plan_id, incident, message, sender_nick, created_at, "
    "escalate_at, acked_at, acked_by, escalated_at, target_account, acked_mask, acked_account"
)


class PageTable(StoreBase):
    """The page methods of :class:`~deploybot.store.Store`."""

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
        target_account: str | None = None,
    ) -> Page:
        """Record a page to ``target_nick`` (logged in as ``target_account``, None: not
        known); numbered from 1, never reused."""
        with self._write() as db:
            if incident is not None:
                incident_row(db, incident)
            return _insert_page(
                db,
                target_nick,
                target_account,
                team,
                plan_id,
                incident,
                message,
                sender_nick,
                now,
                escalate_at,
            )

    def create_page_once(
        self,
        key: str,
        *,
        target_nick: str,
        team: str | None,
        plan_id: str | None,
        message: str,
        sender_nick: str,
        now: datetime,
        escalate_at: datetime | None,
        target_account: str | None = None,
    ) -> Page | None:
        """Claim ``key`` (as :meth:`~deploybot.store.Store.claim_once` does) and record the
        page in the same transaction; None (nothing recorded) when ``key`` was already
        claimed.  A failure leaves neither, so the page can be tried again."""
        with self._write() as db:
            if not claim(db, key, now):
                return None
            return _insert_page(
                db,
                target_nick,
                target_account,
                team,
                plan_id,
                None,
                message,
                sender_nick,
                now,
                escalate_at,
            )

    def get_page(self, number: int) -> Page:
        """The page ``number``; :class:`UnknownPageError` if there is none."""
        return page_from_row(_page_row(self._db, number))

    def ack_pages(
        self,
        nick: str,
        now: datetime,
        number: int | None = None,
        *,
        account: str | None = None,
        mask: str | None = None,
        admin: bool = False,
        vouched: bool = False,
    ) -> tuple[Page, ...]:
        """Acknowledge, as ``nick`` (``mask``, logged in as ``account``), their pending pages
        (all, or just page ``number``).

        A page sent while its target's services account was known (``target_account``)
        is theirs only when ``account`` is that account (with any nick, for ``number``):
        a nick alone does not do.  A page without a known account is the nick's.  An
        ``admin`` may acknowledge any page (``number``) and all pages to their nick
        whatever the account.  ``vouched``: the network the command came from vouches that
        the sender is the person ``nick`` names (an address it authenticated, mapped to
        that nick by the config), so pages to ``nick`` are theirs whatever the account.

        Returns the pages acknowledged now (empty when ``nick`` had none pending that are
        theirs; see :meth:`list_pages` for the others).  With ``number``:
        :class:`UnknownPageError`, :class:`PageNotYoursError` or
        :class:`PageAlreadyAckedError` when it cannot be acknowledged.  An escalated
        page can still be acknowledged.  The acknowledger's nick, mask and account are
        stored with the page.  A page about an open incident also acknowledges the
        incident (an ``ack`` in its timeline, with the account), in the same transaction.
        """
        at = db_time(now)
        with self._write() as db:
            if number is None:
                rows = [
                    row
                    for row in db.execute(
                        f"SELECT {_PAGE_COLUMNS} FROM pages"
                        " WHERE target_nick = ? COLLATE NOCASE AND acked_at IS NULL"
                        " ORDER BY number",
                        (nick,),
                    )
                    if admin or _may_ack(row, nick, account, vouched)
                ]
            else:
                row = _page_row(db, number)
                if not admin and not _may_ack(row, nick, account, vouched):
                    theirs = same_nick(row["target_nick"], nick)
                    account_wanted = row["target_account"] if theirs else None
                    raise PageNotYoursError(number, row["target_nick"], account_wanted)
                if row["acked_at"] is not None:
                    raise PageAlreadyAckedError(number, from_db(row["acked_at"]), row["acked_by"])
                rows = [row]
            acked: list[Page] = []
            for row in rows:
                db.execute(
                    "UPDATE pages SET acked_at = ?, acked_by = ?, acked_mask = ?,"
                    " acked_account = ? WHERE number = ?",
                    (at, nick, mask, account, row["number"]),
                )
                if row["incident"] is not None:
                    incident = incident_row(db, row["incident"])
                    if incident["fixed_at"] is None:
                        ack_if_first(db, incident, nick, account, at)
                        page_text = _ack_event_text(row, nick, account)
                        add_event(db, row["incident"], at, nick, account, "ack", page_text)
                acked.append(page_from_row(_page_row(db, row["number"])))
        return tuple(acked)

    def pending_escalations(self, now: datetime) -> tuple[Page, ...]:
        """Pages due for escalation: not acknowledged, ``escalate_at <= now``, not yet
        escalated (see :meth:`mark_escalated`); by number."""
        rows = self._db.execute(
            f"SELECT {_PAGE_COLUMNS} FROM pages"
            " WHERE acked_at IS NULL AND escalated_at IS NULL AND escalate_at <= ?"
            " ORDER BY number",
            (db_time(now),),
        )
        return tuple(page_from_row(row) for row in rows)

    def mark_escalated(self, number: int, now: datetime) -> bool:
        """Record that page ``number`` was escalated; False (and nothing changes) if it
        was already escalated or acknowledged meanwhile."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE pages SET escalated_at = ?"
                " WHERE number = ? AND escalated_at IS NULL AND acked_at IS NULL",
                (db_time(now), number),
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
        where = Where()
        where.null("acked_at", pending)
        where.equal("target_nick", target_nick, nocase=True)
        where.equal("plan_id", plan_id)
        where.equal("incident", incident)
        where.between("created_at", since, until)
        sql, values = select_sql(_PAGE_COLUMNS, "pages", where, "number", limit)
        return tuple(page_from_row(row) for row in self._db.execute(sql, values))


def _insert_page(
    db: Connection,
    target_nick: str,
    target_account: str | None,
    team: str | None,
    plan_id: str | None,
    incident: int | None,
    message: str,
    sender_nick: str,
    now: datetime,
    escalate_at: datetime | None,
) -> Page:
    cursor = db.execute(
        "INSERT INTO pages (target_nick, target_account, team, plan_id, incident, message,"
        " sender_nick, created_at, escalate_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING number",
        (
            target_nick,
            target_account,
            team,
            plan_id,
            incident,
            message,
            sender_nick,
            db_time(now),
            None if escalate_at is None else db_time(escalate_at),
        ),
    )
    number = int(cursor.fetchone()[0])
    return page_from_row(_page_row(db, number))


def _may_ack(row: Row, nick: str, account: str | None, vouched: bool = False) -> bool:
    """Whether ``nick`` logged in as ``account`` is the target of the page ``row``: by
    account when the page has one (whatever the nick now), else by nick; a ``vouched``
    nick is the person (:meth:`PageTable.ack_pages`)."""
    if row["target_account"] is not None and not vouched:
        return same_account(row["target_account"], account)
    return same_nick(row["target_nick"], nick)


def _ack_event_text(row: Row, nick: str, account: str | None) -> str:
    """The text of an ``ack`` event: ``page 3``, saying so when an admin acknowledged
    someone else's page (the event's nick and account are the acknowledger's; the page
    keeps their mask)."""
    text = f"page {row['number']}"
    if not _may_ack(row, nick, account):
        return f"{text} to {row['target_nick']}, acknowledged by an admin"
    return text


def _page_row(db: Connection, number: int) -> Row:
    row: Row | None = db.execute(
        f"SELECT {_PAGE_COLUMNS} FROM pages WHERE number = ?", (number,)
    ).fetchone()
    if row is None:
        raise UnknownPageError(number)
    return row
