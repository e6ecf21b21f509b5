"""The webhook's inbox of :class:`~deploybot.store.Store` (``event_inbox``): with an
active/standby pair on PostgreSQL (issue 14), a standby keeps each signed webhook event
it accepted here, and the active acts on it (:mod:`deploybot.bus.inbox`), deleting it with
:meth:`EventInboxTable.take_queued_event` in the transaction of what it caused — so an
event is kept until acted on, and acted on once."""

from __future__ import annotations

from datetime import datetime

from deploybot.store.base import StoreBase, db_time, from_db
from deploybot.store.records import QueuedEvent

__all__ = ["EventInboxTable"]


class EventInboxTable(StoreBase):
    """The webhook inbox methods of :class:`~deploybot.store.Store`."""

    def queue_event(
        self, event_id: str, topic: str, body: str, now: datetime, *, source: str
    ) -> bool:
        """Keep a webhook event for the active instance (committed when this returns);
        False, keeping nothing, when an event with that id is queued already."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO event_inbox (received_at, source, id, topic, body)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (db_time(now), source, event_id, topic, body),
            )
            return cursor.rowcount == 1

    def queued_events(self, limit: int) -> tuple[QueuedEvent, ...]:
        """The first ``limit`` events waiting, in the order they arrived."""
        rows = self._db.execute(
            "SELECT seq, received_at, source, id, topic, body FROM event_inbox"
            " ORDER BY seq LIMIT ?",
            (max(limit, 0),),
        )
        return tuple(
            QueuedEvent(
                row["seq"],
                from_db(row["received_at"]),
                row["source"],
                row["id"],
                row["topic"],
                row["body"],
            )
            for row in rows
        )

    def take_queued_event(self, seq: int) -> bool:
        """Delete the queued event ``seq`` (inside the caller's transaction, if any):
        False when it is no longer there (another instance took it)."""
        with self._write() as db:
            cursor = db.execute("DELETE FROM event_inbox WHERE seq = ?", (seq,))
            return cursor.rowcount == 1
