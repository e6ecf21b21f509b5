"""Test doubles shared by the test modules.

:class:`RecordingOutbox` stands in for the chat transport: it implements the
:class:`deploybot.outbox.Outbox` protocol and records what the core asks it to send,
which is the boundary most core tests assert on.  :class:`HandedBusMessages` stands in for
the AMQP publisher behind :class:`deploybot.publish.BusOutbox`.
"""

from __future__ import annotations

from deploybot.store import StoredBusMessage


class RecordingOutbox:
    """An :class:`~deploybot.outbox.Outbox` that records every call, in order, and sends nothing.

    ``calls`` holds one tuple per call, in the order they were made:

    * ``("post", target, text)``, ``("reply", target, text)``, ``("notice", target, text)``
    * ``("join", channel)``, ``("part", channel, reason)``
    * ``("topic", channel, topic)`` for :meth:`set_topic`

    Views over ``calls``: :attr:`posts` (the ``(target, text)`` of every ``post``),
    :meth:`to` (the texts posted to one target) and :meth:`kinds` (the calls of one kind).
    Replies and notices are recorded in ``calls`` only, never in :attr:`posts`.

    Subclass it to make a transport that fails (override :meth:`post` to raise).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    # -- the Outbox protocol -------------------------------------------------------------

    def post(self, target: str, text: str) -> None:
        self.calls.append(("post", target, text))

    def reply(self, target: str, text: str) -> None:
        self.calls.append(("reply", target, text))

    def notice(self, target: str, text: str) -> None:
        self.calls.append(("notice", target, text))

    def join(self, channel: str) -> None:
        self.calls.append(("join", channel))

    def part(self, channel: str, reason: str = "") -> None:
        self.calls.append(("part", channel, reason))

    def set_topic(self, channel: str, topic: str) -> None:
        self.calls.append(("topic", channel, topic))

    # -- views -------------------------------------------------------------------------

    @property
    def posts(self) -> list[tuple[str, str]]:
        """``(target, text)`` of every ``post`` call, in order (a fresh list)."""
        return [(call[1], call[2]) for call in self.calls if call[0] == "post"]

    def to(self, target: str) -> list[str]:
        """The texts posted to ``target``, in order."""
        return [text for where, text in self.posts if where == target]

    def kinds(self, kind: str) -> list[tuple[str, ...]]:
        """The calls of one kind (``"post"``, ``"join"``, ``"topic"``…), in order."""
        return [call for call in self.calls if call[0] == kind]

    def clear(self) -> None:
        """Forget every call recorded so far."""
        self.calls.clear()


class HandedBusMessages:
    """A :class:`~deploybot.publish.BusTransport` that keeps what the bus outbox hands it
    (after the decision's commit), in order, and publishes nothing."""

    def __init__(self) -> None:
        self.messages: list[StoredBusMessage] = []

    def send_bus_message(self, message: StoredBusMessage) -> None:
        self.messages.append(message)
