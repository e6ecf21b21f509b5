"""What the chat transports tell ``/healthz`` and ``/metrics`` about themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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


@dataclass(frozen=True)
class HaStatus:
    """Which instance of the bot is active and since when, and how many standbys renewed
    their presence in the last minute (``/healthz``'s ``ha``, ``!status``; SPEC §8).

    ``backend`` is ``postgresql`` (an active/standby pair, maybe) or ``sqlite`` (one
    instance: ``active`` is this one, ``since`` its start, ``epoch`` None); ``active`` None
    while no lease was read (PostgreSQL: no instance was ever active, or the database did
    not answer yet); ``epoch`` the leadership's epoch (raised at every takeover).
    """

    backend: str
    active: str | None = None
    since: datetime | None = None
    epoch: int | None = None
    standbys_last_minute: int = 0
