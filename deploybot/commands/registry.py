"""The bot's commands: one fresh :class:`~deploybot.commands.base.Registry` per bot.

Each command module exposes ``register(registry)``; nothing is registered at import
time, so there is no module-level registry to share or reset between tests.
"""

from __future__ import annotations

from deploybot.commands import (
    admin,
    consumers,
    deployday,
    deploys,
    digest,
    help,
    incidents,
)
from deploybot.commands.base import Registry


def build_registry() -> Registry:
    """A registry holding every IRC-free command of SPEC §3 written so far."""
    registry = Registry()
    for module in (deploys, consumers, incidents, deployday, digest, admin, help):
        module.register(registry)
    return registry
