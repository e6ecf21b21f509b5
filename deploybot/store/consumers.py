"""The ``!uses`` part of :class:`~deploybot.store.Store`: who consumes which service."""

from __future__ import annotations

from datetime import datetime

from deploybot.store.base import StoreBase, db_time
from deploybot.store.records import RegisteredConsumer, consumer_from_row

__all__ = ["ConsumerTable"]


class ConsumerTable(StoreBase):
    """The consumer methods of :class:`~deploybot.store.Store`."""

    def add_consumer(
        self, service: str, nick: str, account: str | None, what: str | None, now: datetime
    ) -> RegisteredConsumer:
        """Register ``nick`` as a consumer of ``service``, or update the registration.

        One registration per service and nick: repeating ``!uses`` updates the account,
        ``updated_at`` and ``what`` (a ``None`` ``what`` keeps the earlier one).
        """
        at = db_time(now)
        with self._write() as db:
            db.execute(
                "INSERT INTO consumers (service, nick, account, what, registered_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (service COLLATE NOCASE, nick COLLATE NOCASE) DO UPDATE SET"
                " account = excluded.account,"
                " what = coalesce(excluded.what, consumers.what),"
                " updated_at = excluded.updated_at",
                (service, nick, account, what, at, at),
            )
            row = db.execute(
                "SELECT * FROM consumers"
                " WHERE service = ? COLLATE NOCASE AND nick = ? COLLATE NOCASE",
                (service, nick),
            ).fetchone()
        return consumer_from_row(row)

    def remove_consumer(self, service: str, nick: str) -> RegisteredConsumer | None:
        """Forget ``nick`` as a consumer of ``service`` (both in any case): the registration
        removed, or None if there was none."""
        with self._write() as db:
            row = db.execute(
                "DELETE FROM consumers WHERE service = ? COLLATE NOCASE AND nick = ? COLLATE NOCASE"
                " RETURNING *",
                (service, nick),
            ).fetchone()
        return None if row is None else consumer_from_row(row)

    def consumers(self, service: str) -> tuple[RegisteredConsumer, ...]:
        """The registered consumers of ``service``, oldest registration first."""
        rows = self._db.execute(
            "SELECT * FROM consumers WHERE service = ? COLLATE NOCASE"
            " ORDER BY registered_at, nick COLLATE NOCASE",
            (service,),
        )
        return tuple(consumer_from_row(row) for row in rows)
