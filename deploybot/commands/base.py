"""The command framework: requests, replies, usage errors and the registry."""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from deploybot.casemapping import DEFAULT as DEFAULT_CASEMAPPING
from deploybot.config import Address
from deploybot.errors import DeploybotError

if TYPE_CHECKING:
    from deploybot.core import Core
    from deploybot.deployday.day import DeployDay

PREFIX = "!"
# More reply lines than this go privately instead of into the channel (SPEC §3).
CHANNEL_LINE_LIMIT = 4


@dataclass(frozen=True)
class Request:
    """One command as typed by someone, with what we know about them.

    ``deploy_day`` is the bot's deploy day (pages, firefighting channels) that the command
    may act on; None when the bot has no transport (the commands that must send then say
    so).
    """

    nick: str
    mask: str  # nick!user@host
    account: str | None  # services account, None when not logged in or unknown
    channel: str | None  # None for a private message
    name: str
    args: str
    now: datetime
    deploy_day: DeployDay | None = None
    #: How the server compares nicks and accounts (ISUPPORT CASEMAPPING; see
    #: :mod:`deploybot.casemapping`).
    casemapping: str = DEFAULT_CASEMAPPING
    #: The sender's address on a network other than IRC, as that network authenticated
    #: it (:class:`~deploybot.config.Address`); then ``mask`` is that address too,
    #: ``account`` None, and admin rules of its kind alone can match.  None on IRC.
    address: Address | None = None
    #: The network vouches that the sender is the person ``nick`` names: their
    #: authenticated ``address`` is that nick's in the config (never set on IRC, where a
    #: nick proves nothing).
    vouched: bool = False

    @property
    def is_admin_for(self) -> tuple[str | None, str, str, Address | None]:
        """The arguments :meth:`~deploybot.core.Core.is_admin` judges this sender by."""
        return (self.account, self.mask, self.casemapping, self.address)

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
    #: The incidents this reply acknowledges, as (number, service): a report's reply that
    #: flood control merges with the reporter's other pending ones.
    recorded: tuple[tuple[int, str], ...] = ()
    #: When the lines go privately from a channel (too many, or ``private``), the one line
    #: the channel gets instead of "sent you N lines" (``!drift``: the run's summary).
    summary: str = ""

    @classmethod
    def say(cls, *lines: str, private: bool = False) -> Reply:
        return cls(tuple(lines), private)


class UsageError(DeploybotError):
    """The command was called wrongly; the reply is this text plus the usage line."""


#: No incident or page has a larger number (beyond SQLite's integers), whatever it is.
LARGEST_NUMBER = 2**62


def number_argument(word: str, what: str, unknown: Callable[[int], DeploybotError]) -> int:
    """``3`` or ``#3`` as the number of a ``what`` (an incident, a page); a usage error
    for anything else, ``unknown(number)`` for a number no ``what`` can have."""
    digits = word.removeprefix("#")
    if not (digits.isascii() and digits.isdecimal()):
        raise UsageError(f"{what} number must be a number, got {word!r}")
    number = int(digits)
    if number > LARGEST_NUMBER:
        raise unknown(number)
    return number


class NotAllowed(DeploybotError):
    """The requester may not run this command."""


Handler = Callable[["Core", Request], Awaitable[Reply]]


@dataclass(frozen=True)
class Example:
    """A command line and the reply it gets, shown by ``!help`` and run as a test.

    ``reply`` is every line of the handler's reply, in order: a string is compared
    exactly, a compiled pattern must match the whole line.  tests/test_commands.py runs
    each example alone, in one world: the plans ``pkgdb2-2.0`` (Tue 2026-12-15
    13:00–21:00 UTC, one API break, two probes — staging answers the 2014 pkgdb2 answers,
    ``null`` where production answers ``[]``; a drift run at 12:00 found no undeclared
    drift) and ``fas-3.0`` (Sun 2026-12-20 09:00 UTC, exempt);
    the bot connected (IRC), with ``#fedora-admin`` as the admin channel, instance
    ``bot1.example.org:4242`` active since 13:00 UTC under epoch 2 with one standby seen in
    the last minute (PostgreSQL); incident #1
    "pkgdb2: the acl page returns 500" reported by alice in ``#fedora-admin`` at 13:20;
    the example typed at 13:25 UTC in ``#fedora-admin`` by alice, an admin.
    """

    line: str
    reply: tuple[str | re.Pattern[str], ...]

    def matches(self, lines: Sequence[str]) -> bool:
        """Whether ``lines`` are the reply this example expects."""
        return len(lines) == len(self.reply) and all(
            expected == line if isinstance(expected, str) else expected.fullmatch(line)
            for expected, line in zip(self.reply, lines, strict=True)
        )


def example(line: str, *reply: str | re.Pattern[str]) -> Example:
    """``example("!take 1", "incident #1 (pkgdb2) is now owned by alice")``."""
    return Example(line, reply)


@dataclass(frozen=True)
class Command:
    """A command of SPEC §3: its usage line (``!name`` first), help, handler, examples."""

    usage: str  # "!broke [SERVICE] what broke"
    help: str
    handler: Handler
    examples: tuple[Example, ...]
    admin: bool = False

    @property
    def name(self) -> str:
        """``"plans"`` for ``"!plans reload"``."""
        return self.usage.split()[0].removeprefix(PREFIX)

    async def __call__(self, core: Core, request: Request) -> Reply:
        """Run the handler (no admin check: :func:`~deploybot.commands.dispatch.dispatch`
        makes it)."""
        return await self.handler(core, request)


def command(
    usage: str, help: str, *examples: Example, admin: bool = False
) -> Callable[[Handler], Command]:
    """Declare a module-level handler as a command::

        @command("!take N", "make incident N yours", example("!take 1", "…"))
        async def take(core: Core, request: Request) -> Reply: ...

    Nothing is registered: each command module lists its commands in ``COMMANDS`` and
    :func:`~deploybot.commands.registry.build_registry` adds them to a fresh registry.
    """

    def declare(handler: Handler) -> Command:
        return Command(usage, help, handler, examples, admin)

    return declare


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)

    def add(self, *commands: Command) -> None:
        """Add ``commands``, in the order ``!help`` lists them; a name only once."""
        for new in commands:
            if new.name in self.commands:
                raise ValueError(f"command {new.name!r} registered twice")
            self.commands[new.name] = new

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
