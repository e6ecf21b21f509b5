"""The demo's people (``deploybot demo``): a small IRC client and the transcript.

* :class:`IrcPerson` is a raw asyncio IRC client (no CAP, no irc3): each scripted person
  and the observer (``transcript``) is one;
* :class:`Transcript` prints, timestamped, the channels as the observer sees them, the
  scripted people's private messages (their pages) and what the demo puts on the bus:
  the demo's output.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from .day import ADMIN, FIREFIGHT, START_TIMEOUT
from .errors import DemoError
from .ircd.wire import irc_lower

__all__ = ["IrcPerson", "Line", "Transcript", "same"]


# -- a small IRC client ----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line from the server."""

    prefix: str
    command: str
    params: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str) -> Line | None:
        rest = raw
        if rest.startswith("@"):
            rest = rest.partition(" ")[2].lstrip(" ")
        prefix = ""
        if rest.startswith(":"):
            prefix, _, rest = rest[1:].partition(" ")
        head, sep, trailing = rest.partition(" :")
        words = head.split()
        if not words:
            return None
        return cls(prefix, words[0].upper(), (*words[1:], *([trailing] if sep else [])))

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]

    @property
    def target(self) -> str:
        return self.params[0] if self.params else ""

    @property
    def text(self) -> str:
        return self.params[-1] if self.params else ""

    @property
    def from_user(self) -> bool:
        return "!" in self.prefix


def same(a: str, b: str) -> bool:
    return irc_lower(a) == irc_lower(b)


class IrcPerson:
    """A raw asyncio IRC client (no CAP, no irc3): registers, answers PING, keeps every
    line, calls ``on_line`` for each; ``wait_for`` waits for a line matching a test."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        nick: str,
        on_line: Callable[[IrcPerson, Line], None] | None,
    ) -> None:
        self.nick = nick
        self.lines: list[Line] = []
        self._reader = reader
        self._writer = writer
        self._on_line = on_line
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read(), name=f"irc-{nick}")

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        nick: str,
        on_line: Callable[[IrcPerson, Line], None] | None = None,
        timeout: float = START_TIMEOUT,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> IrcPerson:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as error:
            raise DemoError(f"cannot connect to the IRC server {host}:{port}: {error}") from None
        person = cls(reader, writer, nick, on_line)
        try:
            await person._register(timeout)
        except BaseException:
            await person.close()
            raise
        return person

    async def _register(self, timeout: float) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        wanted = self.nick
        self.send(f"NICK {wanted}")
        self.send(f"USER {self.nick} 0 * :deploybot demo ({self.nick})")
        since = 0
        for _ in range(5):
            line = await self.wait_for(
                lambda m: m.command in {"001", "432", "433", "ERROR"},
                timeout,
                f"registration as {wanted}",
                since,
            )
            since = self.lines.index(line) + 1
            if line.command == "001":
                self.nick = line.target
                await self.wait_for(lambda m: m.command in {"376", "422"}, timeout, "the MOTD")
                return
            if line.command == "ERROR":
                raise DemoError(f"the IRC server refused {wanted}: {line.text}")
            wanted += "_"  # nick in use (or refused): try another, as clients do
            self.send(f"NICK {wanted}")
        raise DemoError(f"the IRC server refused the nick {self.nick} and its variants")

    async def _read(self) -> None:
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    break
                line = Line.parse(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
                if line is None:
                    continue
                if line.command == "PING":
                    self.send(f"PONG :{line.text}")
                self.lines.append(line)
                if self._on_line is not None:
                    self._on_line(self, line)
                self._changed.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    def send(self, line: str) -> None:
        if "\r" in line or "\n" in line or "\0" in line:
            raise ValueError(f"not one IRC line: {line!r}")
        if not self._writer.is_closing():
            self._writer.write(line.encode("utf-8") + b"\r\n")

    def mark(self) -> int:
        return len(self.lines)

    async def wait_for(
        self,
        test: Callable[[Line], bool],
        timeout: float,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        what: str,
        since: int = 0,
    ) -> Line:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = since
        while True:
            while index < len(self.lines):
                if test(self.lines[index]):
                    return self.lines[index]
                index += 1
            if self.closed.is_set():
                raise DemoError(f"{self.nick}: the IRC server closed the connection ({what})")
            left = deadline - loop.time()
            if left <= 0:
                raise DemoError(f"{what}: nothing within {timeout:.0f} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def join(self, channel: str) -> None:
        since = self.mark()
        self.send(f"JOIN {channel}")
        await self.wait_for(
            lambda m: m.command == "366" and len(m.params) > 1 and same(m.params[1], channel),
            START_TIMEOUT,
            f"{self.nick} joining {channel}",
            since,
        )
        if any(m.command == "353" and f"@{self.nick}" in m.text.split() for m in self.lines):
            # We created it: let anyone set the topic (the bot sets the firefighting one).
            self.send(f"MODE {channel} -t")

    def say(self, target: str, text: str) -> None:
        self.send(f"PRIVMSG {target} :{text}")

    async def quit(self, reason: str) -> None:
        with contextlib.suppress(ConnectionError, OSError, ValueError):
            self.send(f"QUIT :{reason}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 2.0)
        await self.close()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# -- the transcript --------------------------------------------------------------------------


@dataclass
class Transcript:
    """Timestamped lines on ``out``: the channels as the observer sees them, the scripted
    people's private messages, and what the demo puts on the bus."""

    out: TextIO
    tz: ZoneInfo
    quiet_nicks: set[str] = field(default_factory=set)  # their joins are not shown
    shown: int = 0
    private: int = 0

    def write(self, where: str, text: str) -> None:
        stamp = datetime.now(self.tz).strftime("%H:%M:%S")
        width = max(len(ADMIN), len(FIREFIGHT))
        print(f"{stamp} {where:<{width}} {text}", file=self.out, flush=True)
        self.shown += 1

    def note(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def observed(self, _: IrcPerson, line: Line) -> None:
        """The observer's view of its channels."""
        nick, command = line.nick, line.command
        if command in {"PRIVMSG", "NOTICE"} and line.target.startswith("#") and line.from_user:
            text = line.text
            if text.startswith("\x01ACTION ") and text.endswith("\x01"):
                self.write(line.target, f"* {nick} {text[8:-1]}")
            else:
                self.write(line.target, f"<{nick}> {text}")
        elif command == "TOPIC":
            self.write(line.target, f"* {nick} sets the topic: {line.text}")
        elif command == "JOIN" and not self._quiet(nick):
            self.write(line.target, f"* {nick} joined")
        elif command == "PART" and not self._quiet(nick):
            reason = f" ({line.params[1]})" if len(line.params) > 1 else ""
            self.write(line.target, f"* {nick} left{reason}")
        elif command == "QUIT" and not self._quiet(nick):
            self.write("", f"* {nick} quit ({line.text})")
        elif command == "KICK" and len(line.params) > 1:
            self.write(line.target, f"* {nick} kicked {line.params[1]}")
        elif command == "NICK" and not self._quiet(nick):
            self.write("", f"* {nick} is now {line.text}")

    def personal(self, person: IrcPerson, line: Line) -> None:
        """A scripted person's private messages (the observer cannot see them)."""
        if (
            line.command in {"PRIVMSG", "NOTICE"}
            and line.from_user
            and same(line.target, person.nick)
        ):
            self.write("(private)", f"<{line.nick} → {person.nick}> {line.text}")
            self.private += 1

    def _quiet(self, nick: str) -> bool:
        return irc_lower(nick) in self.quiet_nicks
