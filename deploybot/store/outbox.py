"""The outbox part of :class:`~deploybot.store.Store`: every post the bot decided to make
(a message, a topic, a join or part), kept until the IRC server has confirmed it.

A post is added inside the transaction of the decision that caused it
(:meth:`~deploybot.store.Store.transaction`), so that both are kept or neither; the
transport learns of it once that transaction has committed
(:meth:`~deploybot.store.Store.after_commit`) and removes it with :meth:`OutboxTable.confirm_posts`
once the server has confirmed it.  What is left after a crash is sent again at the next
start, in order (:meth:`OutboxTable.pending_posts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from deploybot.store.base import StoreBase, db_time, from_db
from deploybot.store.records import PostCommand, StoredPost

__all__ = ["POST_COMMANDS", "OutboxTable"]

POST_COMMANDS: frozenset[str] = frozenset({"PRIVMSG", "TOPIC", "JOIN", "PART"})


class OutboxTable(StoreBase):
    """The outbox methods of :class:`~deploybot.store.Store`."""

    def add_post(self, command: PostCommand, target: str, text: str, now: datetime) -> StoredPost:
        """Keep a post until it is confirmed (inside the caller's transaction, if any)."""
        if command not in POST_COMMANDS:
            raise ValueError(f"not a post command: {command!r}")
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO outbox (queued_at, command, target, text) VALUES (?, ?, ?, ?)",
                (db_time(now), command, target, text),
            )
        number = cursor.lastrowid
        assert number is not None
        return StoredPost(number, from_db(db_time(now)), command, target, text)

    def pending_posts(self) -> tuple[StoredPost, ...]:
        """The posts not confirmed yet, in the order they were decided."""
        rows = self._db.execute(
            "SELECT id, queued_at, command, target, text FROM outbox ORDER BY id"
        )
        return tuple(
            StoredPost(
                row["id"],
                from_db(row["queued_at"]),
                cast(PostCommand, row["command"]),
                row["target"],
                row["text"],
            )
            for row in rows
        )

    def confirm_posts(self, ids: Iterable[int]) -> int:
        """Forget the posts ``ids`` (the server confirmed them); how many there were."""
        numbers = [(number,) for number in ids]
        if not numbers:
            return 0
        with self._write() as db:
            cursor = db.executemany("DELETE FROM outbox WHERE id = ?", numbers)
        return cursor.rowcount
