"""What the chat transports tell ``/healthz`` and ``/metrics`` about themselves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IrcStatus:
    """Whether the bot is registered on its IRC server, and if not, why.  Every chat
    network reports itself with one (``/healthz``'s ``networks``, by network name: on
    another network "connected" means its last sync or login succeeded).

    ``why`` is the latest reason (``SASL login as deploybot failed: the server offers no
    SASL login (services not linked?)``, ``cannot connect to …``, ``connection lost: …``),
    None while connected; ``down_seconds`` how long the bot has been without a registered
    connection (0 while connected); ``login_failures`` the transient login failures since
    the start (the bot reconnects after each).
    """

    connected: bool
    why: str | None = None
    down_seconds: float = 0.0
    login_failures: int = 0


#: The status of every chat network the bot runs on, by network name (``irc``, ...).
NetworkStatuses = dict[str, IrcStatus]


@dataclass(frozen=True)
class Role:
    """Whether this instance is the ``active`` one or a ``standby`` (several ``deploybot
    run`` on one PostgreSQL database; with SQLite always active), and its ``instance`` id
    (``host:pid``; None when unknown); ``epoch`` the leadership's epoch as this instance
    last saw it (PostgreSQL; None with SQLite or before it was read)."""

    role: str = "active"
    instance: str | None = None
    epoch: int | None = None
