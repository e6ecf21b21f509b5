"""The command framework: requests, replies, usage errors and the registry."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from deploybot.errors import DeploybotError

if TYPE_CHECKING:
    from deploybot.core import Core

PREFIX = "!"
# More reply lines than this go privately instead of into the channel (SPEC §3).
CHANNEL_LINE_LIMIT = 4


@dataclass(frozen=True)
class Request:
    """One command as typed by someone, with what we know about them."""

    nick: str
    mask: str  # nick!user@host
    account: str | None  # services account, None when not logged in or unknown
    channel: str | None  # None for a private message
    name: str
    args: str
    now: datetime

    @property
    def reply_target(self) -> str:
        return self.channel or self.nick

    def words(self) -> list[str]:
        """The arguments split like a shell would; a stray quote is a usage error."""
        try:
            return shlex.split(self.args)
        except ValueError as exc:
            raise UsageError(f"cannot parse the arguments: {exc}") from None


@dataclass(frozen=True)
class Reply:
    """What to answer: lines, and whether they go privately to the requester."""

    lines: tuple[str, ...] = ()
    private: bool = False

    @classmethod
    def say(cls, *lines: str, private: bool = False) -> Reply:
        return cls(tuple(lines), private)


class UsageError(DeploybotError):
    """The command was called wrongly; the reply is this text plus the usage line."""


class NotAllowed(DeploybotError):
    """The requester may not run this command."""


Handler = Callable[["Core", Request], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    name: str  # "plans" for "!plans reload"
    usage: str  # "!broke [SERVICE] what broke"
    help: str
    examples: tuple[str, ...]
    handler: Handler
    admin: bool = False


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)

    def command(
        self, usage: str, help: str, *examples: str, admin: bool = False
    ) -> Callable[[Handler], Handler]:
        """Register a handler; ``usage`` starts with ``!name``."""
        name = usage.split()[0].removeprefix(PREFIX)

        def register(handler: Handler) -> Handler:
            if name in self.commands:
                raise ValueError(f"command {name!r} registered twice")
            self.commands[name] = Command(name, usage, help, examples, handler, admin)
            return handler

        return register

    def get(self, name: str) -> Command | None:
        return self.commands.get(name.lower())


def parse_command_line(text: str) -> tuple[str, str] | None:
    """``"!broke pkgdb2 acl page"`` → ``("broke", "pkgdb2 acl page")``; None if not a command."""
    if not text.startswith(PREFIX) or len(text) == len(PREFIX):
        return None
    name, _, args = text[len(PREFIX) :].partition(" ")
    if not name or not name.replace("-", "").isalnum():
        return None
    return name.lower(), args.strip()
