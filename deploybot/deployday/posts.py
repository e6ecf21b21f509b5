"""Posts kept in the store until the server confirms them (the durable outbox).

:class:`StoredOutbox` is the :class:`~deploybot.outbox.Outbox` the deploy-day parts, the
countdowns, the digest and the bus reactor speak through.  Each *post* — a message, a
topic, a join or a part — is written to the store's outbox table
(:meth:`~deploybot.store.Store.add_post`) inside the caller's transaction, so that the
decision that caused it (a ledger claim, a page, a firefight's opening) and the post are
kept together or not at all (wrap both in :meth:`~deploybot.store.Store.transaction`).
Only once that transaction has committed is the post handed to the transport
(:class:`PostTransport`); the transport removes it from the store when the server has
confirmed it (:meth:`~deploybot.store.Store.confirm_posts`).  At start-up,
:meth:`StoredOutbox.resume` hands the transport what an earlier run left unconfirmed,
in the order it was decided, before anything new.

Replies and notices are not kept: they go straight to the transport (best effort).

On several chat networks at once, :class:`Networks` is the one transport
:class:`StoredOutbox` speaks to: every post goes to each network (each confirms it for
itself; the store removes it once all have), and after a restart only to the networks
that had not confirmed it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from deploybot.store import Store, StoredPost
from deploybot.store.records import PostCommand

__all__ = ["Networks", "PostTransport", "StoredOutbox"]


class PostTransport(Protocol):
    """What a transport offers :class:`StoredOutbox`."""

    def reply(self, target: str, text: str) -> None:
        """Answer a command (best effort)."""

    def notice(self, target: str, text: str) -> None:
        """A private NOTICE (best effort)."""

    def keep_joined(self, channel: str, joined: bool) -> None:
        """Whether to be in ``channel`` (and rejoin it after a reconnect); the JOIN or
        PART itself comes as a post."""

    def send_post(self, post: StoredPost) -> None:
        """Send a stored post, after those handed over before it; confirm it in the
        store (:meth:`~deploybot.store.Store.confirm_posts`) once the server has."""


class StoredOutbox:
    """An :class:`~deploybot.outbox.Outbox` whose posts survive a crash; see the module."""

    def __init__(
        self, store: Store, transport: PostTransport, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.transport = transport
        self._clock = clock

    def resume(self) -> int:
        """Hand the transport the posts an earlier run left unconfirmed, oldest first;
        return how many.  Call it once at start-up, before anything is posted."""
        pending = self.store.pending_posts()
        for post in pending:
            self.transport.send_post(post)
        return len(pending)

    # -- the Outbox protocol -------------------------------------------------------------

    def post(self, target: str, text: str) -> None:
        self._keep("PRIVMSG", target, text)

    def reply(self, target: str, text: str) -> None:
        self.transport.reply(target, text)

    def notice(self, target: str, text: str) -> None:
        self.transport.notice(target, text)

    def join(self, channel: str) -> None:
        with self.store.transaction():
            self.store.after_commit(lambda: self.transport.keep_joined(channel, True))
            self._keep("JOIN", channel, "")

    def part(self, channel: str, reason: str = "") -> None:
        with self.store.transaction():
            self.store.after_commit(lambda: self.transport.keep_joined(channel, False))
            self._keep("PART", channel, reason)

    def set_topic(self, channel: str, topic: str) -> None:
        self._keep("TOPIC", channel, topic)

    def _keep(self, command: PostCommand, target: str, text: str) -> None:
        """Store the post (in the caller's transaction); send it once that commits."""
        post = self.store.add_post(command, target, text, self._clock())
        self.store.after_commit(lambda: self.transport.send_post(post))


class Networks:
    """Several transports, by network name, as one :class:`PostTransport` (module doc)."""

    def __init__(self, transports: Mapping[str, PostTransport]) -> None:
        self.transports = dict(transports)

    def reply(self, target: str, text: str) -> None:
        for transport in self.transports.values():
            transport.reply(target, text)

    def notice(self, target: str, text: str) -> None:
        for transport in self.transports.values():
            transport.notice(target, text)

    def keep_joined(self, channel: str, joined: bool) -> None:
        for transport in self.transports.values():
            transport.keep_joined(channel, joined)

    def send_post(self, post: StoredPost) -> None:
        for network, transport in self.transports.items():
            if network not in post.confirmed_by:
                transport.send_post(post)
