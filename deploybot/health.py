"""What the IRC transport tells ``/healthz`` and ``/metrics`` about itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IrcStatus:
    """Whether the bot is registered on its IRC server, and if not, why.

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
