"""What the core needs from a chat transport, as a protocol the adapters implement.

The core decides *what* to say; an adapter (``deploybot_plugins``) decides how: it
cleans every line (:mod:`deploybot.lines`), throttles, and holds posts while it is
disconnected.  Two kinds of output differ in what happens when the bot is offline:

* ``post`` — countdowns, pages, digests, firefighting messages: queued and delivered
  once the bot is back in its channels, never dropped; through
  :class:`deploybot.deployday.posts.StoredOutbox` kept in the store (with the decision
  that caused them) until the server has confirmed them, so a crash loses none;
* ``reply`` — answers to a command: dropped (with a log line) if they could not be
  sent within a minute, since the person asking has moved on.

Replies go out before posts waiting at the same time, and private posts (pages) and
topics before channel posts; the adapter bounds what waits and may join short lines to
one target with `` · `` (never one person's reply with another's); SPEC §4 says how.
"""

from __future__ import annotations

from typing import Protocol


class Outbox(Protocol):
    def post(self, target: str, text: str) -> None:
        """Deliver ``text`` to a channel or nick, even if that means waiting for a reconnect."""

    def reply(self, target: str, text: str) -> None:
        """Answer a command; may be dropped when it is more than a minute late."""

    def notice(self, target: str, text: str) -> None:
        """A NOTICE (used for private error messages); dropped like a reply."""

    def join(self, channel: str) -> None:
        """Join ``channel`` now and after every reconnect."""

    def part(self, channel: str, reason: str = "") -> None:
        """Leave ``channel`` and stop rejoining it."""

    def set_topic(self, channel: str, topic: str) -> None:
        """Set the topic of ``channel`` (queued like a post)."""


class AccountLookup(Protocol):
    """Who is logged in to which services account, as far as the transport knows."""

    def account_of(self, nick: str) -> str | None:
        """The account ``nick`` is logged in to; None when not logged in or not known
        (on IRC: known only for nicks that share a channel with the bot)."""
