"""The ledgers of :class:`~deploybot.store.Store`: keys claimed once ever, so that a
countdown post (``countdown_posts``) or a one-off action (``once_claims``) happens once
across restarts."""

from __future__ import annotations

from datetime import datetime

from deploybot.store.base import Connection, StoreBase, db_time, from_db
from deploybot.store.records import CountdownClaim

__all__ = ["LedgerTable", "claim"]


def claim(db: Connection, key: str, now: datetime) -> bool:
    """Claim ``key`` in ``once_claims`` inside the caller's transaction; False if it was
    already claimed.  A rollback of that transaction releases the claim."""
    cursor = db.execute(
        "INSERT INTO once_claims (key, claimed_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (key, db_time(now)),
    )
    return cursor.rowcount == 1


class LedgerTable(StoreBase):
    """The ledger methods of :class:`~deploybot.store.Store`."""

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
                "INSERT INTO countdown_posts (key, claimed_at, late, skipped)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (key, db_time(now), int(late), int(skipped)),
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
                claimed_at=from_db(row["claimed_at"]),
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
            return claim(db, key, now)
