"""Freeze breaks of :class:`~deploybot.store.Store` (``freeze_breaks``,
``freeze_break_approvals``): a request to deploy during an infrastructure freeze, and the
approvals it got, with who and when.

Two approvals from two distinct people make a break approved; the requester's own does not
count.  A person is their services account when they are logged in, else the host of
their mask (:func:`person_of`: a nick change does not make a second person).  Whether an
approver is an admin is the caller's business (the command is admin-only).
"""

from __future__ import annotations

from datetime import datetime

from deploybot.errors import DeploybotError
from deploybot.store.base import (
    Connection,
    StoreBase,
    db_time,
    from_db,
    from_db_or_none,
    same_nick,
)
from deploybot.store.records import FreezeApproval, FreezeBreak

__all__ = ["APPROVALS_NEEDED", "FreezeBreakTable", "person_of"]

#: Approvals that make a freeze break approved (Fedora: two from sysadmin-main or releng).
APPROVALS_NEEDED = 2


def person_of(account: str | None, mask: str) -> str:
    """``account:NAME`` when logged in, else ``host:HOST`` of the mask: nick and user name
    are the client's to choose, the host (a cloak such as ``fedora/sysadmin/carol``) is
    not.  Two admins behind one host count as one person (refused, never let through)."""
    if account:
        return f"account:{account}"
    return f"host:{mask.rpartition('@')[2] or mask}"


class FreezeBreakTable(StoreBase):
    """The freeze-break methods of :class:`~deploybot.store.Store`."""

    def request_freeze_break(
        self,
        *,
        plan_id: str,
        freezes: str,
        reason: str,
        nick: str,
        account: str | None,
        mask: str,
        now: datetime,
    ) -> FreezeBreak:
        """Open a freeze break for ``plan_id``; an error when one is open or approved."""
        with self._write() as db:
            current = _latest(db, plan_id)
            if current is not None:
                state = "approved" if current.approved else "already requested"
                raise DeploybotError(
                    f"freeze break #{current.number} for {plan_id} is {state} "
                    f"(by {current.requester_nick}); !freezebreaks lists them"
                )
            cursor = db.execute(
                "INSERT INTO freeze_breaks (plan_id, freezes, reason, requester_nick,"
                " requester_account, requester_mask, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " RETURNING number",
                (plan_id, freezes, reason, nick, account, mask, db_time(now)),
            )
            number = int(cursor.fetchone()[0])
            return _break(db, number)

    def approve_freeze_break(
        self, plan_id: str, *, nick: str, account: str | None, mask: str, now: datetime
    ) -> FreezeBreak:
        """Add an approval to the open freeze break of ``plan_id``: refused for the
        requester, for a second approval by the same person, and when there is nothing
        open.  The approval that makes :data:`APPROVALS_NEEDED` approves the break."""
        with self._write() as db:
            current = _latest(db, plan_id)
            if current is None:
                raise DeploybotError(
                    f"no freeze break requested for {plan_id}: !freezebreak {plan_id} REASON"
                )
            if current.approved:
                raise DeploybotError(
                    f"freeze break #{current.number} for {plan_id} is already approved by "
                    f"{', '.join(current.approvers)}"
                )
            person = person_of(account, mask)
            requester = person_of(current.requester_account, current.requester_mask)
            if person.casefold() == requester.casefold() or (
                (account is None or current.requester_account is None)
                and same_nick(nick, current.requester_nick)
            ):
                raise DeploybotError(
                    f"you requested freeze break #{current.number}: two other admins approve it"
                )
            for approval in current.approvals:
                if approval.person.casefold() == person.casefold():
                    raise DeploybotError(
                        f"you already approved freeze break #{current.number} (as "
                        f"{approval.nick}); it needs another admin"
                    )
            db.execute(
                "INSERT INTO freeze_break_approvals (freeze_break, person, nick, account, mask,"
                " at) VALUES (?, ?, ?, ?, ?, ?)",
                (current.number, person, nick, account, mask, db_time(now)),
            )
            if len(current.approvals) + 1 >= APPROVALS_NEEDED:
                db.execute(
                    "UPDATE freeze_breaks SET approved_at = ? WHERE number = ?",
                    (db_time(now), current.number),
                )
            return _break(db, current.number)

    def freeze_break_for(self, plan_id: str) -> FreezeBreak | None:
        """The latest freeze break of ``plan_id`` (open or approved), or None."""
        return _latest(self._db, plan_id)

    def freeze_breaks(self, *, limit: int = 50) -> tuple[FreezeBreak, ...]:
        """The freeze breaks, newest first."""
        rows = self._db.execute(
            "SELECT number FROM freeze_breaks ORDER BY number DESC LIMIT ?", (limit,)
        ).fetchall()
        return tuple(_break(self._db, row[0]) for row in rows)


def _latest(db: Connection, plan_id: str) -> FreezeBreak | None:
    row = db.execute(
        "SELECT number FROM freeze_breaks WHERE plan_id = ? ORDER BY number DESC LIMIT 1",
        (plan_id,),
    ).fetchone()
    return None if row is None else _break(db, row[0])


def _break(db: Connection, number: int) -> FreezeBreak:
    row = db.execute("SELECT * FROM freeze_breaks WHERE number = ?", (number,)).fetchone()
    approvals = tuple(
        FreezeApproval(
            person=a["person"],
            nick=a["nick"],
            account=a["account"],
            mask=a["mask"],
            at=from_db(a["at"]),
        )
        for a in db.execute(
            "SELECT * FROM freeze_break_approvals WHERE freeze_break = ? ORDER BY at, nick",
            (number,),
        )
    )
    return FreezeBreak(
        number=row["number"],
        plan_id=row["plan_id"],
        freezes=row["freezes"],
        reason=row["reason"],
        requester_nick=row["requester_nick"],
        requester_account=row["requester_account"],
        requester_mask=row["requester_mask"],
        requested_at=from_db(row["requested_at"]),
        approved_at=from_db_or_none(row["approved_at"]),
        approvals=approvals,
    )
