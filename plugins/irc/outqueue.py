"""What the bot says next, and what it merges or drops when too much is waiting.

Everything the bot sends besides registration, liveness and rejoins waits in an
:class:`OutputQueue` of three lanes, taken in this order:

1. **replies** — answers to commands and raw protocol lines; dropped when older than
   ``reply_ttl`` (the person asking has moved on);
2. **urgent posts** — private messages (pages, their repeats, escalation pages), topics
   and joins;
3. **channel posts** — countdowns, firefighting lines, highlights, digests, parts.

Within a lane the order is kept, except that replies take turns among the people who
asked (round robin, each person's own replies in order).  Replies go first, but after
:data:`REPLY_STREAK` replies in a row a waiting post gets its turn, so that no amount of
commands holds the deploy's own posts back; urgent posts always go before channel posts.
A join and a topic are urgent so that the channel posts that follow them (queued later,
in a lower lane) never overtake them; a part stays with the channel posts it follows.

**Merging.** When an item is taken, later items of its lane with the same command, target
and *person* (for a reply: who asked; posts have none) are appended to it with `` · ``
as long as the result stays one line.  Replies are always merged like that; posts only
while their lane holds more than :data:`MERGE_POSTS_ABOVE` items, so that a normal day
keeps one post a line.  A person's reply is never merged into someone else's.

**Bounds.** A person has at most :data:`REPLIES_PER_PERSON` replies and a nick
:data:`POSTS_PER_NICK` private posts waiting, a lane at most :data:`LANE_LIMITS` items.
Past a bound, the new item is merged into the last waiting one of the same command,
target and person when it fits on that line; otherwise it is dropped, with a WARNING in
the log, and counted: the next line to that target (and person) says ``(and N more not
sent: too many at once)``, or, when nothing else is waiting for it, a line of its own says
so once the queue has drained.  Since replies and posts have lanes of their own and each
person's replies are bounded, one person's burst of commands cannot push anyone's page or
the deploy's posts out, and holds them back by at most :data:`REPLY_STREAK` lines in
:data:`REPLY_STREAK` + 1.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from deploybot.lines import message_lines, one_line

from .throttle import command_cost

__all__ = [
    "LANE_LIMITS",
    "MERGE_POSTS_ABOVE",
    "POSTS_PER_NICK",
    "REPLIES_PER_PERSON",
    "REPLY_STREAK",
    "OutItem",
    "OutputQueue",
    "lane_of",
]
log = logging.getLogger(__name__)

REPLY, URGENT, CHANNEL = 0, 1, 2
LANE_NAMES = ("reply", "urgent post", "channel post")
#: Items a lane holds at most (replies, urgent posts, channel posts).
LANE_LIMITS = (200, 400, 400)
#: Reply lines one person may have waiting (a long private !deploy is some 15); more are
#: merged into the last one or dropped.  Per-person flood control of commands is the
#: commands' business; this is the queue's backstop.
REPLIES_PER_PERSON = 40
#: Private posts (pages) one nick may have waiting; more are merged or dropped.
POSTS_PER_NICK = 10
#: Replies sent in a row before a waiting post gets a turn.
REPLY_STREAK = 3
#: Posts are merged (same command and target) only while their lane holds more than this.
MERGE_POSTS_ABOVE = 20
MESSAGES = ("PRIVMSG", "NOTICE")


@dataclass
class OutItem:
    """One queued output: a message, a topic, a JOIN/PART, or a raw protocol line."""

    kind: str  # "post" (kept until sent) or "reply" (dropped after reply_ttl)
    created: float
    command: str  # PRIVMSG, NOTICE, TOPIC, JOIN, PART or "" for a raw line
    target: str
    text: str
    person: str = ""  # who asked, for a reply to a channel; "" for posts
    #: The store's outbox rows this item carries (a stored post; several once merged):
    #: confirmed when the server has confirmed the item, or when it is dropped.
    rows: tuple[int, ...] = ()
    #: When a stored post was decided (wall clock), to mark it late; None: just now.
    queued_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What two items must share to be merged: command, target, person."""
        return (self.command, self.target.lower(), self.person.lower())


def is_channel(target: str) -> bool:
    return target[:1] in "#&+!"


def lane_of(item: OutItem) -> int:
    """The lane an item waits in (see the module docstring)."""
    if item.kind == "reply":
        return REPLY
    if item.command in ("TOPIC", "JOIN"):
        return URGENT
    if item.command in MESSAGES and not is_channel(item.target):
        return URGENT
    return CHANNEL


def _merged(first: OutItem, second: OutItem) -> str | None:
    """``first`` and ``second`` as one line joined by `` · ``, or None when that is not
    one line (or they may not be merged)."""
    if first.key != second.key or first.command not in MESSAGES:
        return None
    if not one_line(second.text):
        return first.text
    text = f"{first.text} · {second.text}"
    return text if len(message_lines(first.command, first.target, text)) == 1 else None


class OutputQueue:
    """The bot's waiting output; see the module docstring."""

    def __init__(
        self, reply_ttl: float, discarded: Callable[[OutItem], None] | None = None
    ) -> None:
        self.reply_ttl = reply_ttl
        #: Called with each item dropped at a bound (a stored post is then confirmed: it
        #: was said that it was not sent, and it must not come back after a restart).
        self._discarded = discarded
        self._lanes: tuple[deque[OutItem], ...] = (deque(), deque(), deque())
        self._streak = 0
        #: When each person's reply was last taken (a turn number), for the round robin.
        self._served: dict[str, int] = {}
        self._turn = 0
        #: Items dropped, by lane and key, not yet told.
        self._dropped: Counter[tuple[int, tuple[str, str, str]]] = Counter()
        self._dropped_target: dict[tuple[int, tuple[str, str, str]], OutItem] = {}

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes)

    def waiting(self) -> bool:
        """Whether :meth:`take` has something to give (an item, or a note of drops)."""
        return any(self._lanes) or bool(self._dropped)

    def __iter__(self) -> Iterator[OutItem]:
        for lane in self._lanes:
            yield from lane

    def stale(self, kind: str, created: float, now: float) -> bool:
        """Whether a reply created at ``created`` is too old to send at ``now``."""
        return kind == "reply" and now - created > self.reply_ttl

    # -- adding ------------------------------------------------------------------------------
    def add(self, item: OutItem) -> None:
        """Queue ``item``, or merge or drop it when its lane or its person is at the bound."""
        n = lane_of(item)
        lane = self._lanes[n]
        why = f"{LANE_NAMES[n]} lane full ({len(lane)} waiting)"
        full = len(lane) >= LANE_LIMITS[n]
        if item.kind == "reply" and item.person and not full:
            mine = sum(1 for i in lane if i.person.lower() == item.person.lower())
            full, why = mine >= REPLIES_PER_PERSON, f"{mine} replies for {item.person} waiting"
        elif n == URGENT and item.command in MESSAGES and not full:
            theirs = sum(1 for i in lane if i.key == item.key)
            full, why = theirs >= POSTS_PER_NICK, f"{theirs} private posts to {item.target} waiting"
        if not full:
            lane.append(item)
            return
        last = next((i for i in reversed(lane) if i.key == item.key), None)
        text = _merged(last, item) if last is not None else None
        if last is not None and text is not None:
            last.text = text
            last.rows += item.rows
            log.info(
                "output queue: %s, merged into the last one: %s %s", why, item.target, item.text
            )
            return
        self._dropped[n, item.key] += 1
        self._dropped_target.setdefault((n, item.key), item)
        if self._discarded is not None:
            self._discarded(item)
        log.warning(
            "output queue: %s, dropped %s %s: %.120s",
            why,
            item.command or "raw line",
            item.target,
            item.text,
        )

    def requeue(self, items: list[OutItem]) -> None:
        """Put ``items`` (sent, not confirmed, in their order) back at the head of their
        lanes, before everything waiting; no bound applies (they were in already)."""
        for item in reversed(items):
            self._lanes[lane_of(item)].appendleft(item)

    def stored(self) -> bool:
        """Whether a stored post (an item with outbox rows) is waiting."""
        return any(item.rows for item in self)

    # -- taking ------------------------------------------------------------------------------
    def _lane_to_take(self) -> int | None:
        replies, urgent, channel = (bool(lane) for lane in self._lanes)
        if replies and (self._streak < REPLY_STREAK or not (urgent or channel)):
            return REPLY
        if urgent:
            return URGENT
        if channel:
            return CHANNEL
        return None

    def take(self, now: float) -> OutItem | None:
        """The next item to send (merged with its lane's like ones), or None when empty."""
        while True:
            n = self._lane_to_take()
            if n is None:
                return self._leftover_note(now)
            self._streak = self._streak + 1 if n == REPLY else 0
            lane = self._lanes[n]
            item = self._next_reply(lane) if n == REPLY else lane.popleft()
            if self.stale(item.kind, item.created, now):
                age = now - item.created
                log.info("dropping a reply queued %.0f s ago: %s %s", age, item.target, item.text)
                continue
            if item.command in MESSAGES and (n == REPLY or len(lane) >= MERGE_POSTS_ABOVE):
                self._merge_later(item, lane, now)
            dropped = self._dropped.pop((n, item.key), 0)
            if dropped:
                self._dropped_target.pop((n, item.key), None)
                item.text += f" (and {dropped} more not sent: too many at once)"
            return item

    def peek_cost(self) -> int:
        """Tokens (:func:`~deploybot_plugins.irc.throttle.command_cost`) of the item that
        :meth:`take` would give now; 1 when nothing is waiting."""
        n = self._lane_to_take()
        if n is None:
            return 1
        lane = self._lanes[n]
        item = self._reply_candidate(lane) if n == REPLY else lane[0]
        return command_cost(item.text if not item.command else item.command)

    def _reply_candidate(self, lane: deque[OutItem]) -> OutItem:
        """The oldest reply of the person served longest ago (round robin among people)."""
        firsts: dict[str, OutItem] = {}
        for item in lane:
            firsts.setdefault(item.person.lower(), item)
        return firsts[min(firsts, key=lambda p: self._served.get(p, -1))]

    def _next_reply(self, lane: deque[OutItem]) -> OutItem:
        item = self._reply_candidate(lane)
        self._turn += 1
        self._served[item.person.lower()] = self._turn
        lane.remove(item)
        return item

    def _merge_later(self, item: OutItem, lane: deque[OutItem], now: float) -> None:
        """Append to ``item`` the later items of ``lane`` it may be merged with, in order,
        until one does not fit on the line."""
        if len(message_lines(item.command, item.target, item.text)) != 1:
            return
        for later in [i for i in lane if i.key == item.key]:
            if self.stale(later.kind, later.created, now):
                continue
            text = _merged(item, later)
            if text is None:
                return
            item.text = text
            item.rows += later.rows
            lane.remove(later)

    def _leftover_note(self, now: float) -> OutItem | None:
        """Once everything is sent: a line telling a target about items dropped for it
        that no later line could carry."""
        while self._dropped:
            (n, key), count = next(iter(self._dropped.items()))
            del self._dropped[n, key]
            dropped = self._dropped_target.pop((n, key))
            if dropped.target:  # a raw line has no one to tell: the log said it
                return self._note(n, count, dropped, now)
        return None

    @staticmethod
    def _note(n: int, count: int, dropped: OutItem, now: float) -> OutItem:
        who = f"{dropped.person}: " if dropped.person and is_channel(dropped.target) else ""
        kind = "reply" if n == REPLY else "post"
        return OutItem(
            "post",
            now,
            "NOTICE" if dropped.command == "NOTICE" else "PRIVMSG",
            dropped.target,
            f"{who}({count} more {kind}{'s' if count != 1 else ''} not sent: too many at once)",
            dropped.person,
        )
