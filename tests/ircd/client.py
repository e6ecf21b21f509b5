"""A small raw asyncio IRC client for tests (no irc3).

`IrcClient.connect()` negotiates IRCv3 capabilities, optionally logs in with SASL PLAIN and
registers; afterwards every line the server sends is parsed into a `Message` and kept in
`client.messages`. PINGs are answered. Every wait has a timeout and fails with an
`AssertionError` that shows the last lines sent and received, so a test never hangs.

`wait_for()` hands out each received message at most once: two waits for "a PRIVMSG" return
two different PRIVMSGs, in arrival order, and a message that arrived before the wait started
still counts (no race between sending a command and waiting for its reply).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

DEFAULT_CAPS = ("account-tag", "account-notify", "extended-join")
"""Capabilities `connect()` asks for when the server offers them. Add "echo-message" to
get your own PRIVMSGs back (then `wait_privmsg` may match them unless `from_nick` is set)."""

REGISTRATION_ERRORS = frozenset({"431", "432", "433", "436", "437", "465", "ERROR"})
SASL_SUCCESS = frozenset({"900", "903"})
SASL_FAILURE = frozenset({"902", "904", "905", "906", "907", "908"})

_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_FORMATTING = re.compile(r"\x03(\d{1,2}(,\d{1,2})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]")


def strip_formatting(text: str) -> str:
    """`text` without mIRC bold/colour/italic/underline/reset codes."""
    return _FORMATTING.sub("", text)


def _unescape_tag_value(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_TAG_UNESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Message:
    """One line from the server, parsed (IRCv3 message tags included)."""

    raw: str
    tags: dict[str, str]
    prefix: str | None
    command: str
    params: tuple[str, ...]

    @classmethod
    def parse(cls, line: str) -> Message:
        """Parse a raw line (no CR LF): tag values unescaped, the command upper-cased."""
        rest = line
        tags: dict[str, str] = {}
        if rest.startswith("@"):
            tag_text, _, rest = rest[1:].partition(" ")
            for item in tag_text.split(";"):
                if item:
                    key, _, value = item.partition("=")
                    tags[key] = _unescape_tag_value(value)
            rest = rest.lstrip(" ")
        prefix: str | None = None
        if rest.startswith(":"):
            prefix, _, rest = rest[1:].partition(" ")
            rest = rest.lstrip(" ")
        head, sep, trailing = rest.partition(" :")
        words = head.split()
        if not words:
            raise ValueError(f"no command in IRC line {line!r}")
        params = words[1:]
        if sep:
            params.append(trailing)
        return cls(line, tags, prefix, words[0].upper(), tuple(params))

    @property
    def nick(self) -> str | None:
        """The nick (or server name) that sent the line, from the prefix."""
        if self.prefix is None:
            return None
        return self.prefix.split("!", 1)[0]

    @property
    def target(self) -> str:
        """The first parameter (the channel or nick a PRIVMSG/NOTICE went to), or ''."""
        return self.params[0] if self.params else ""

    @property
    def text(self) -> str:
        """The last parameter (the text of a PRIVMSG/NOTICE/numeric), or ''."""
        return self.params[-1] if self.params else ""

    @property
    def account(self) -> str | None:
        """The `account` message tag (IRCv3 account-tag), or None when absent."""
        return self.tags.get("account")

    def __str__(self) -> str:
        return self.raw


class SaslFailed(AssertionError):
    """SASL authentication ended with a failure numeric (904 wrong password, ...)."""

    def __init__(self, numeric: str, message: str) -> None:
        super().__init__(message)
        self.numeric = numeric


def _nick_eq(a: str | None, b: str | None) -> bool:
    """RFC 1459 case-insensitive nick/channel comparison (inspircd and ngircd defaults)."""
    if a is None or b is None:
        return a is b
    table = str.maketrans("[]\\~", "{}|^")
    return a.lower().translate(table) == b.lower().translate(table)


@dataclass
class _Waiters:
    futures: set[asyncio.Future[None]] = field(default_factory=set)

    def wake(self) -> None:
        for future in self.futures:
            if not future.done():
                future.set_result(None)
        self.futures.clear()


class IrcClient:
    """A connected, registered raw IRC client. Create it with `await IrcClient.connect(...)`."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, nick: str
    ) -> None:
        self.nick = nick
        self.host, self.port = writer.get_extra_info("peername")[:2]
        self.messages: list[Message] = []
        """Every line received, parsed, in order (PINGs included)."""
        self.sent: list[str] = []
        """Every line sent, in order."""
        self.caps: frozenset[str] = frozenset()
        """The capabilities the server acknowledged."""
        self.account: str | None = None
        """The account name after a successful SASL login (from numeric 900)."""
        self._reader = reader
        self._writer = writer
        self._consumed: set[int] = set()
        self._first_unconsumed = 0
        self._waiters = _Waiters()
        self._closed = asyncio.Event()
        self._close_reason = ""
        self._read_task = asyncio.create_task(self._read_loop(), name=f"irc-client-{nick}")

    # -- connecting -------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        nick: str,
        *,
        caps: Iterable[str] = DEFAULT_CAPS,
        sasl: tuple[str, str] | None = None,
        user: str | None = None,
        realname: str = "deploybot test client",
        timeout: float = 10.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> IrcClient:
        """Connect, negotiate `caps` (those offered), log in with SASL PLAIN if `sasl` is
        `(account, password)`, register as `nick` and wait for the end of the MOTD.

        Raises `SaslFailed` (with `.numeric`) when the login is refused, and AssertionError
        when registration fails or takes longer than `timeout`; the connection is closed then.
        """
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        client = cls(reader, writer, nick)
        try:
            await client._register(tuple(caps), sasl, user or "tester", realname, timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def _register(
        self,
        wanted: tuple[str, ...],
        sasl: tuple[str, str] | None,
        user: str,
        realname: str,
        timeout: float,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def left() -> float:
            return max(0.0, deadline - loop.time())

        await self.send("CAP LS 302")
        await self.send(f"NICK {self.nick}")
        await self.send(f"USER {user} 0 * :{realname}")
        offered: set[str] = set()
        while True:
            ls = await self.wait_for(
                lambda m: (
                    m.command in REGISTRATION_ERRORS
                    or (m.command == "CAP" and len(m.params) >= 3 and m.params[1] == "LS")
                ),
                timeout=left(),
                what="CAP LS",
            )
            self._raise_on_registration_error(ls)
            offered.update(token.split("=", 1)[0] for token in ls.text.split())
            if ls.params[2] != "*":  # "CAP * LS * :..." means more lines follow (302)
                break
        request = [cap for cap in wanted if cap in offered]
        if sasl is not None:
            if "sasl" not in offered:
                raise AssertionError(
                    f"SASL requested but the server offers no 'sasl' capability "
                    f"(offered: {sorted(offered)})\n{self.summary()}"
                )
            request.append("sasl")
        if request:
            await self.send(f"CAP REQ :{' '.join(request)}")
            reply = await self.wait_for(
                lambda m: (
                    m.command == "CAP" and len(m.params) >= 3 and m.params[1] in {"ACK", "NAK"}
                ),
                timeout=left(),
                what="CAP ACK/NAK",
            )
            if reply.params[1] == "NAK":
                raise AssertionError(f"server refused CAP REQ {request}\n{self.summary()}")
            self.caps = frozenset(reply.text.split())
        if sasl is not None:
            await self._sasl_plain(*sasl, timeout=left())
        await self.send("CAP END")
        welcome = await self.wait_for(
            lambda m: m.command == "001" or m.command in REGISTRATION_ERRORS,
            timeout=left(),
            what="001 welcome",
        )
        self._raise_on_registration_error(welcome)
        self.nick = welcome.target
        await self.wait_for(
            lambda m: m.command in {"376", "422"}, timeout=left(), what="end of MOTD"
        )

    def _raise_on_registration_error(self, message: Message) -> None:
        if message.command in REGISTRATION_ERRORS:
            raise AssertionError(
                f"registration as {self.nick!r} failed: {message.raw}\n{self.summary()}"
            )

    async def _sasl_plain(self, account: str, password: str, *, timeout: float) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        await self.send("AUTHENTICATE PLAIN")
        await self.wait_for(
            lambda m: m.command == "AUTHENTICATE" or m.command in SASL_FAILURE,
            timeout=timeout,
            what="AUTHENTICATE +",
        )
        payload = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()
        chunks = [payload[i : i + 400] for i in range(0, len(payload), 400)]
        if len(chunks[-1]) == 400:
            chunks.append("+")
        for chunk in chunks:
            await self.send(f"AUTHENTICATE {chunk}")
        result = await self.wait_for(
            lambda m: m.command in SASL_SUCCESS | SASL_FAILURE,
            timeout=timeout,
            what="SASL result (900/903 or 904)",
        )
        if result.command in SASL_FAILURE:
            raise SaslFailed(
                result.command,
                f"SASL PLAIN login as {account!r} failed: {result.raw}\n{self.summary()}",
            )
        if result.command == "900":
            self.account = result.params[2] if len(result.params) >= 4 else account
            await self.wait_for(lambda m: m.command in SASL_SUCCESS - {"900"}, timeout=timeout)
        else:
            self.account = account

    # -- reading ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    self._close_reason = self._close_reason or "server closed the connection"
                    return
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line.strip():
                    continue
                message = Message.parse(line)
                self.messages.append(message)
                if message.command == "PING":
                    self._write_line(f"PONG :{message.text}")
                elif message.command == "ERROR":
                    self._close_reason = f"server sent {line!r}"
                self._waiters.wake()
        except (ConnectionError, OSError) as exc:
            self._close_reason = f"connection lost: {exc!r}"
        finally:
            self._closed.set()
            self._waiters.wake()

    @property
    def closed(self) -> bool:
        """True once the connection is gone (server closed it, or `quit()`/`close()`)."""
        return self._closed.is_set()

    async def wait_for(
        self,
        predicate: Callable[[Message], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        *,
        what: str | None = None,
        since: int = 0,
    ) -> Message:
        """The first received message (index >= `since`) matching `predicate` that no earlier
        wait returned; waits up to `timeout` seconds for it to arrive.

        Raises AssertionError, naming `what` and showing recent traffic, on timeout or when
        the connection closes first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = max(since, self._first_unconsumed)
        while True:
            while index < len(self.messages):
                if index not in self._consumed and predicate(self.messages[index]):
                    self._consume(index)
                    return self.messages[index]
                index += 1
            description = what or getattr(predicate, "__name__", "a matching message")
            if self.closed:
                raise AssertionError(
                    f"{self.nick}: connection closed ({self._close_reason}) while waiting for "
                    f"{description}\n{self.summary()}"
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.nick}: no {description} within {timeout:.1f}s\n{self.summary()}"
                )
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.futures.add(future)
            try:
                await asyncio.wait_for(future, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.futures.discard(future)

    def _consume(self, index: int) -> None:
        self._consumed.add(index)
        while self._first_unconsumed in self._consumed:
            self._consumed.discard(self._first_unconsumed)
            self._first_unconsumed += 1

    def mark(self) -> int:
        """The index the next received message will get; pass it as `since=` to ignore the past."""
        return len(self.messages)

    async def wait_privmsg(
        self,
        from_nick: str | None = None,
        target: str | None = None,
        contains: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        *,
        command: str = "PRIVMSG",
        since: int = 0,
    ) -> Message:
        """The next PRIVMSG (or `command="NOTICE"`) from `from_nick`, to `target`, whose text
        contains `contains`; each filter is optional, nicks and channels case-insensitive."""

        def matches(m: Message) -> bool:
            return (
                m.command == command
                and (from_nick is None or _nick_eq(m.nick, from_nick))
                and (target is None or _nick_eq(m.target, target))
                and (contains is None or contains in m.text)
            )

        filters = ", ".join(
            f"{name}={value!r}"
            for name, value in (("from", from_nick), ("to", target), ("contains", contains))
            if value is not None
        )
        return await self.wait_for(
            matches, timeout, what=f"{command} ({filters or 'any'})", since=since
        )

    async def wait_closed(self, timeout: float = 5.0) -> str:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """Wait until the server closes the connection; returns why (e.g. its ERROR line)."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.nick}: connection still open after {timeout:.1f}s\n{self.summary()}"
            ) from None
        return self._close_reason

    def summary(self, lines: int = 25) -> str:
        """The last lines sent and received, for assertion messages and failure reports."""
        sent = "\n".join(f"  >> {line}" for line in self.sent[-lines // 2 :]) or "  (nothing)"
        received = "\n".join(f"  << {m.raw}" for m in self.messages[-lines:]) or "  (nothing)"
        return (
            f"--- {self.nick} @ {self.host}:{self.port}, last lines sent:\n{sent}\n"
            f"--- last lines received:\n{received}"
        )

    # -- writing ----------------------------------------------------------------------------

    def _write_line(self, line: str) -> None:
        if self._writer.is_closing():
            return
        self.sent.append(line)
        self._writer.write(line.encode() + b"\r\n")

    async def send(self, line: str) -> None:
        """Send one raw line (no CR/LF inside; the client adds the line ending)."""
        if "\r" in line or "\n" in line:
            raise ValueError(f"IRC line contains CR or LF: {line!r}")
        if self._writer.is_closing():
            raise AssertionError(f"{self.nick}: cannot send {line!r}, connection is closed")
        self._write_line(line)
        await self._writer.drain()

    async def send_many(self, lines: Iterable[str]) -> None:
        """Send several raw lines in one write (a burst, as a flooding client would)."""
        batch = list(lines)
        for line in batch:
            if "\r" in line or "\n" in line:
                raise ValueError(f"IRC line contains CR or LF: {line!r}")
        self.sent.extend(batch)
        self._writer.write(b"".join(line.encode() + b"\r\n" for line in batch))
        await self._writer.drain()

    async def privmsg(self, target: str, text: str) -> None:
        """Send `PRIVMSG target :text`."""
        await self.send(f"PRIVMSG {target} :{text}")

    async def notice(self, target: str, text: str) -> None:
        """Send `NOTICE target :text`."""
        await self.send(f"NOTICE {target} :{text}")

    async def join(self, channel: str, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """Join `channel` and wait for our own JOIN echo and the end of the NAMES list."""
        since = self.mark()
        await self.send(f"JOIN {channel}")
        await self.wait_for(
            lambda m: (
                m.command == "JOIN"
                and _nick_eq(m.nick, self.nick)
                and bool(m.params)
                and _nick_eq(m.params[0], channel)
            ),
            timeout,
            what=f"own JOIN {channel}",
            since=since,
        )
        await self.wait_for(
            lambda m: m.command == "366" and len(m.params) >= 2 and _nick_eq(m.params[1], channel),
            timeout,
            what=f"end of NAMES for {channel}",
            since=since,
        )

    async def register_account(self, password: str, email: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """Register the current nick as a NickServ account (atheme) and wait for the success
        notice; the client is logged in to the account afterwards. Fails on any other reply."""
        since = self.mark()
        await self.privmsg("NickServ", f"REGISTER {password} {email}")
        reply = await self.wait_privmsg(
            from_nick="NickServ", command="NOTICE", timeout=timeout, since=since
        )
        if "is now registered" not in strip_formatting(reply.text):
            raise AssertionError(
                f"NickServ REGISTER for {self.nick!r} failed: {reply.text!r}\n{self.summary()}"
            )
        self.account = self.nick

    # -- closing ----------------------------------------------------------------------------

    async def quit(self, message: str = "bye", timeout: float = 5.0) -> None:  # noqa: ASYNC109 (the deadline's failure says what was awaited)
        """Send QUIT, wait (up to `timeout`) for the server to close, then close our side.
        Safe to call twice or after the server dropped us."""
        if not self.closed and not self._writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                await self.send(f"QUIT :{message}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout)
        await self.close()

    async def close(self) -> None:
        """Close the connection at once (no QUIT) and stop the reader task."""
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        if not self._read_task.done():
            self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task
        self._closed.set()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<IrcClient {self.nick} {self.host}:{self.port} {state}>"
