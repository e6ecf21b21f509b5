"""Pacing for outgoing IRC lines: a token bucket, and the reconnect backoff.

Pure code: time is passed in (``now``, seconds on any monotonic clock), nothing sleeps.

Why these defaults (``capacity=4``, ``rate=1.0`` line per second): InspIRCd 3's stock
connect class (``threshold="10" commandrate="1000"``, fakelag on) adds a *penalty* of
``1000 × cost`` for each command and removes 1000 per second, once a second; at 10 000 it
stops reading the client, whose unread lines then pile up in its RecvQ until the server
kills it ("RecvQ exceeded", or "Excess Flood" without fakelag).  The bucket mirrors that
counter: a line may go when the bucket holds ``min(cost, capacity)`` tokens, so the
server-side penalty stays at or below ``max(capacity, cost)`` plus one second of timer
granularity, i.e. about 6 of its 10 — whatever and however fast the bot sends.
``COMMAND_COST`` carries InspIRCd 3.15's per-command penalties (at least 1 each, since
other servers count lines).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from deploybot.config import BOT_NUMBERS

# deploybot's defaults for [bot] throttle_burst and throttle_rate (tokens ≈ commands per second)
DEFAULT_CAPACITY = BOT_NUMBERS["throttle_burst"]
DEFAULT_RATE = BOT_NUMBERS["throttle_rate"]

# InspIRCd 3.15 ``Command::Penalty`` values above the default of 1 (src/coremods, src/modules);
# a NICK change after registration costs 4 (cmd_nick.cpp), the first NICK nothing.
COMMAND_COST = {
    "JOIN": 2,
    "TOPIC": 2,
    "WHOIS": 2,
    "WHOWAS": 2,
    "ADMIN": 2,
    "COMMANDS": 3,
    "INVITE": 4,
    "INFO": 4,
    "MODULES": 4,
    "NICK": 4,
    "PART": 5,
    "LIST": 5,
    "KNOCK": 5,
}


REGISTRATION_COST = {"NICK": 0, "USER": 0, "PASS": 0}


def command_cost(line: str, registered: bool = True) -> int:
    """Tokens a protocol line costs: its command's server penalty.

    Every command costs at least 1 (other servers count lines), except what InspIRCd
    charges nothing for while registering: the first NICK, USER and PASS.
    """
    command = line.split(" ", 1)[0].upper()
    if not registered and command in REGISTRATION_COST:
        return REGISTRATION_COST[command]
    return COMMAND_COST.get(command, 1)


class TokenBucket:
    """A token bucket: ``capacity`` tokens, refilled at ``rate`` tokens per second.

    ``take`` always succeeds and may leave the bucket in debt (lines that must go out at
    once, such as registration or PONG, still count); ``delay_until_available`` says how
    long a line of a given cost has to wait so that the debt is paid first.
    """

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.capacity = float(capacity)
        self.rate = float(rate)
        self._tokens = float(capacity)
        self._stamp = now

    def tokens(self, now: float) -> float:
        """Tokens in the bucket at ``now`` (negative while in debt)."""
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        return self._tokens

    def delay_until_available(self, now: float, cost: float = 1) -> float:
        """Seconds from ``now`` until a line costing ``cost`` may be sent (0 if it may now)."""
        need = min(float(cost), self.capacity)
        missing = need - self.tokens(now)
        return max(0.0, missing / self.rate)

    def take(self, now: float, cost: float = 1) -> None:
        """Count a line of ``cost`` as sent at ``now``."""
        self._tokens = self.tokens(now) - cost

    def reset(self, now: float) -> None:
        """Fill the bucket (a new connection starts with no server-side penalty)."""
        self._tokens, self._stamp = self.capacity, now


def backoff_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 60.0,
    jitter: float = 0.2,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before reconnect attempt number ``attempt`` (0 for the first).

    ``base · 2**attempt`` capped at ``cap``, then spread by ±``jitter`` (a fraction) so
    that bots restarted together do not reconnect in lockstep.
    """
    raw = min(cap, base * 2.0 ** min(attempt, 30))
    return raw * (1.0 + jitter * (2.0 * rand() - 1.0))
