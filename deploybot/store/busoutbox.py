"""The bus outbox part of :class:`~deploybot.store.Store`: every message the bot decided
to publish on the message bus (fedora-messaging over AMQP), kept until the broker has
confirmed it.

The whole message is stored as it goes on the wire — routing key, headers (with
``sent-at`` and the message id) and the exact body — inside the transaction of the
decision that caused it (:meth:`~deploybot.store.Store.transaction`), so both are kept or
neither.  The publisher learns of it once that transaction has committed
(:meth:`~deploybot.store.Store.after_commit`), publishes it, and removes it with
:meth:`BusOutboxTable.confirm_bus_messages` once the broker confirmed it (publisher
confirms).  A message sent again (after a lost connection or a restart) is the same
message, byte for byte, with the same id: consumers drop the repeat.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from deploybot.store.base import StoreBase, db_time, from_db
from deploybot.store.records import BusHeaders, StoredBusMessage

__all__ = ["BusOutboxTable"]


class BusOutboxTable(StoreBase):
    """The bus outbox methods of :class:`~deploybot.store.Store`."""

    def add_bus_message(
        self,
        message_id: str,
        routing_key: str,
        headers: BusHeaders,
        body: str,
        now: datetime,
    ) -> StoredBusMessage:
        """Keep a message until the broker confirms it (inside the caller's transaction,
        if any).  ``body`` is the JSON text published as it is (UTF-8)."""
        stored_headers = json.dumps(dict(headers), sort_keys=True)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO bus_outbox (queued_at, message_id, routing_key, headers, body)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (db_time(now), message_id, routing_key, stored_headers, body),
            )
            number = int(cursor.fetchone()[0])
        return StoredBusMessage(
            number, from_db(db_time(now)), message_id, routing_key, _headers(stored_headers), body
        )

    def pending_bus_messages(self) -> tuple[StoredBusMessage, ...]:
        """The messages the broker has not confirmed yet, in the order they were decided."""
        rows = self._db.execute(
            "SELECT id, queued_at, message_id, routing_key, headers, body"
            " FROM bus_outbox ORDER BY id"
        )
        return tuple(
            StoredBusMessage(
                row["id"],
                from_db(row["queued_at"]),
                row["message_id"],
                row["routing_key"],
                _headers(row["headers"]),
                row["body"],
            )
            for row in rows
        )

    def bus_outbox_state(self) -> tuple[int, datetime | None]:
        """How many messages wait for the broker's confirm, and when the oldest was
        decided (None: none waits)."""
        row = self._db.execute("SELECT COUNT(*), MIN(queued_at) FROM bus_outbox").fetchone()
        return int(row[0]), from_db(row[1]) if row[1] is not None else None

    def confirm_bus_messages(self, ids: Iterable[int]) -> int:
        """Forget the messages ``ids`` (the broker confirmed them); how many there were."""
        numbers = [(number,) for number in ids]
        if not numbers:
            return 0
        with self._write() as db:
            cursor = db.executemany("DELETE FROM bus_outbox WHERE id = ?", numbers)
        return cursor.rowcount


def _headers(text: str) -> BusHeaders:
    loaded = json.loads(text)
    assert isinstance(loaded, Mapping)
    return dict(loaded)
