"""The bus events of :class:`~deploybot.store.Store` that were acted on, by id, so that a
repeat of one (a webhook replayed, a redelivery after a restart) is recognised across
restarts (``bus_events_seen``; :class:`~deploybot.bus.reactor.BusReactor` keeps a day)."""

from __future__ import annotations

from datetime import datetime

from deploybot.store.base import StoreBase, db_time

__all__ = ["BusEventTable"]


class BusEventTable(StoreBase):
    """The bus-event methods of :class:`~deploybot.store.Store`."""

    def event_seen(self, event_id: str, since: datetime) -> bool:
        """Whether ``event_id`` was remembered at ``since`` or later (read-only)."""
        row = self._db.execute(
            "SELECT 1 FROM bus_events_seen WHERE id = ? AND seen_at >= ?",
            (event_id, db_time(since)),
        ).fetchone()
        return row is not None

    def remember_event(self, event_id: str, now: datetime, *, forget_before: datetime) -> None:
        """Remember ``event_id`` as acted on at ``now``; in the same transaction, forget
        the ids remembered before ``forget_before``.  Call it once the event's actions
        are committed: an event whose actions failed must stay unknown, so that its
        redelivery acts on it."""
        with self._write() as db:
            db.execute(
                "INSERT INTO bus_events_seen (id, seen_at) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                (event_id, db_time(now)),
            )
            db.execute("DELETE FROM bus_events_seen WHERE seen_at < ?", (db_time(forget_before),))
