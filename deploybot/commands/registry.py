"""The bot's commands: one fresh :class:`~deploybot.commands.base.Registry` per bot.

Each command module lists its commands, module-level handlers declared with
:func:`~deploybot.commands.base.command`, in ``COMMANDS``; nothing is registered at
import time, so there is no module-level registry to share or reset between tests.
"""

from __future__ import annotations

from deploybot.commands import (
    admin,
    consumers,
    deployday,
    deploys,
    digest,
    drift,
    freeze,
    incidents,
    postmortem,
    status,
)
from deploybot.commands.base import Registry
from deploybot.commands.help import help_command


def build_registry() -> Registry:
    """A registry holding every IRC-free command of SPEC §3, in the order ``!help``
    lists them; ``!help`` last, answering about this registry."""
    registry = Registry()
    for module in (
        deploys,
        consumers,
        incidents,
        deployday,
        digest,
        postmortem,
        drift,
        freeze,
        status,
        admin,
    ):
        registry.add(*module.COMMANDS)
    registry.add(help_command(registry))
    return registry
