"""The outbox part of :class:`~deploybot.store.Store`: every post the bot decided to make
(a message, a topic, a join or part), kept until the IRC server has confirmed it.

A post is added inside the transaction of the decision that caused it
(:meth:`~deploybot.store.Store.transaction`), so that both are kept or neither; the
transport learns of it once that transaction has committed
(:meth:`~deploybot.store.Store.after_commit`) and removes it with :meth:`OutboxTable.confirm_posts`
once the server has confirmed it.  What is left after a crash is sent again at the next
start, in order (:meth:`OutboxTable.pending_posts`).

When the bot runs on several chat networks (:attr:`OutboxTable.post_networks`), each
confirms for itself (``confirm_posts(ids, network)``) and a post is removed once all of
them have; until then :attr:`~deploybot.store.records.StoredPost.confirmed_by` says which
did, so that a restart sends it again only where it was not confirmed.  The networks'
own bits of state (a sync position, a direct-message room per person) are kept by
:meth:`OutboxTable.network_value` / :meth:`OutboxTable.set_network_value`.
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

    #: The networks every post must be confirmed by (set once at start-up); with one or
    #: none, a confirmation removes the post at once.
    post_networks: tuple[str, ...] = ()

    def add_post(self, command: PostCommand, target: str, text: str, now: datetime) -> StoredPost:
        """Keep a post until it is confirmed (inside the caller's transaction, if any)."""
        if command not in POST_COMMANDS:
            raise ValueError(f"not a post command: {command!r}")
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO outbox (queued_at, command, target, text) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (db_time(now), command, target, text),
            )
            number = int(cursor.fetchone()[0])
        return StoredPost(number, from_db(db_time(now)), command, target, text)

    def pending_posts(self) -> tuple[StoredPost, ...]:
        """The posts not confirmed yet, in the order they were decided, with the networks
        that confirmed them already."""
        confirmed: dict[int, set[str]] = {}
        for row in self._db.execute("SELECT post, network FROM post_confirmations"):
            confirmed.setdefault(row["post"], set()).add(row["network"])
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
                frozenset(confirmed.get(row["id"], ())),
            )
            for row in rows
        )

    def confirm_posts(self, ids: Iterable[int], network: str | None = None) -> int:
        """``network`` (None: the only one) confirmed the posts ``ids``; forget those that
        every network of :attr:`post_networks` has confirmed now; how many they were."""
        numbers = [(number,) for number in ids]
        if not numbers:
            return 0
        networks = self.post_networks
        with self._write() as db:
            if network is None or len(networks) <= 1:
                cursor = db.executemany("DELETE FROM outbox WHERE id = ?", numbers)
                return cursor.rowcount
            db.executemany(
                "INSERT INTO post_confirmations (post, network)"
                " SELECT id, ? FROM outbox WHERE id = ? ON CONFLICT DO NOTHING",
                [(network, number) for (number,) in numbers],
            )
            marks = ", ".join("?" * len(networks))
            done = [
                (row[0],)
                for (number,) in numbers
                for row in db.execute(
                    "SELECT post FROM post_confirmations WHERE post = ?"
                    f" AND network IN ({marks}) GROUP BY post HAVING count(*) = ?",
                    (number, *networks, len(networks)),
                )
            ]
            db.executemany("DELETE FROM post_confirmations WHERE post = ?", done)
            cursor = db.executemany("DELETE FROM outbox WHERE id = ?", done)
        return cursor.rowcount

    def network_value(self, network: str, key: str) -> str | None:
        """What ``network``'s adapter kept under ``key`` (None: nothing)."""
        row = self._db.execute(
            "SELECT value FROM network_state WHERE network = ? AND key = ?", (network, key)
        ).fetchone()
        return None if row is None else str(row["value"])

    def network_items(self, network: str, prefix: str = "") -> dict[str, str]:
        """Everything ``network``'s adapter kept under keys starting with ``prefix``."""
        rows = self._db.execute(
            "SELECT key, value FROM network_state WHERE network = ? AND substr(key, 1, ?) = ?",
            (network, len(prefix), prefix),
        )
        return {str(row["key"]): str(row["value"]) for row in rows}

    def set_network_value(self, network: str, key: str, value: str | None) -> None:
        """Keep ``value`` under ``key`` for ``network`` (None: forget it)."""
        with self._write() as db:
            if value is None:
                db.execute(
                    "DELETE FROM network_state WHERE network = ? AND key = ?", (network, key)
                )
            else:
                db.execute(
                    "INSERT INTO network_state (network, key, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (network, key) DO UPDATE SET value = excluded.value",
                    (network, key, value),
                )
