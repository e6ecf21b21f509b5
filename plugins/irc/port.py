"""What the IRC plugins need of the bot they are loaded into, as a protocol.

:class:`~deploybot_plugins.irc.accounts.Accounts` and
:class:`~deploybot_plugins.irc.capabilities.Capabilities` are irc3 plugins that
:class:`~deploybot_plugins.irc.bot.DeployIrcBot` loads; typing their ``bot`` as that class
would make the modules import each other (a cycle, even if only for the type checker).
They are typed against this port instead, which the bot satisfies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class IrcBotPort(Protocol):
    """The bot as its own plugins see it."""

    nick: str
    #: irc3's plugin registry (``registry.plugins``: name → plugin instance).
    registry: Any
    #: ISUPPORT tokens the server announced (``WHOX``, ``CASEMAPPING``…).
    server_config: Mapping[str, str]
    sasl_username: str
    sasl_password: str | None

    def send(self, data: str) -> None:
        """Send one line through the bot's single output path."""

    def fatal(self, message: str) -> None:
        """Stop the bot with a clear error (credentials refused)."""

    def login_failed(self, message: str) -> None:
        """A login that may work later: warn, leave, reconnect with backoff."""
