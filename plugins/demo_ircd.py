"""A small IRC server for ``deploybot demo`` — and for nothing else.

It exists so that the demo runs on a fresh machine after ``pip install`` alone: no Debian
package, no root, nothing downloaded.  It listens on 127.0.0.1 only, keeps everything in
memory, has no services, no flood control, no operators' commands, no linking, no TLS
and no limits beyond the line length.  Never expose it or use it for anything else:
``deploybot run`` belongs on a real server (ngircd, InspIRCd, …).

What it speaks (RFC 1459/2812 and the modern client protocol, just enough for the bot,
the demo's own clients and irssi/WeeChat/HexChat):

* registration: ``NICK``/``USER`` (``PASS`` ignored), then 001–005, ``LUSERS`` (251) and
  the MOTD (375/372/376).  ``CAP LS`` is answered with an empty list and holds
  registration until ``CAP END`` (as IRCv3 servers do); ``CAP REQ`` gets ``NAK``; a
  client that never says ``CAP`` registers on ``NICK``+``USER``.  Nick rules: 432 for a
  bad nick, 433 when it is in use (RFC 1459 case mapping: ``[]\\~`` = ``{}|^``).
* ``PING``/``PONG``, ``QUIT`` (``ERROR`` to the client, ``QUIT`` to its peers; a dropped
  connection is a QUIT too), ``NICK`` changes.
* channels (``#name``): ``JOIN`` (comma lists, ``JOIN 0``), with the topic (332/333) and
  ``NAMES`` (353/366); ``PART``; ``TOPIC`` (query and set); ``NAMES``; ``LIST``.  The
  first member of a new channel is its operator (``@``).  New channels are ``+n`` only:
  **anyone in a channel may set its topic** (demo-only: the bot can set the firefighting
  topic whoever created the channel); an operator may set ``+t``/``-t``, ``+n``/``-n``
  and ``+o``/``-o``.  ``MODE #chan`` answers 324/329; ban/except/invite list queries
  answer an empty list; user modes ``+i``/``+w`` are accepted.
* ``PRIVMSG``/``NOTICE`` to channels (404 from outside a ``+n`` channel) and nicks (401
  when absent; never an error reply to a NOTICE); ``WHO`` (352/315, no WHOX),
  ``WHOIS`` (311/319/312/318), ``ISON``, ``USERHOST``, ``AWAY``, ``MOTD``, ``VERSION``.
  Anything else is 421 (unknown command); before registration, 451.

Line safety, the one rule every server must keep: a line ends at LF (a CR before it is
dropped); CR and NUL *inside* a line are turned into spaces, so a client can never make
the server relay a second line; every line the server writes is cut to 512 bytes with
its CR LF, on a UTF-8 character boundary, and passes through one function
(:meth:`_Client.send`) that blanks CR, LF and NUL again.  An incoming line longer than
512 bytes is cut to its first 510.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

__all__ = ["MAX_LINE", "DemoIrcServer"]

log = logging.getLogger(__name__)

MAX_LINE = 512  # bytes, CR LF included (RFC 1459 §2.3)
_BODY = MAX_LINE - 2
_READ_CHUNK = 4096
NICKLEN = 30
CHANNELLEN = 50
TOPICLEN = 300
VERSION = "deploybot-demo-ircd-1"
NETWORK = "deploybot-demo"

_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
_CHANNEL = re.compile(r"#[^\x00-\x20,\x07:]+")
_RFC1459 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")
_UNSAFE = str.maketrans({"\r": " ", "\n": " ", "\0": " "})

MOTD = (
    "This is deploybot's built-in demo IRC server (deploybot demo).",
    "It is for trying deploybot out on this machine only: no services, no flood",
    "control, nothing kept. Run the bot for real on a real IRC server.",
)


def irc_lower(name: str) -> str:
    """``name`` case-folded with RFC 1459 rules (the mapping announced in 005)."""
    return name.translate(_RFC1459)


def cut(line: str) -> bytes:
    """``line`` as it goes on the wire: CR/LF/NUL blanked, at most 510 bytes (never half a
    UTF-8 character), then CR LF."""
    data = line.translate(_UNSAFE).encode("utf-8")
    if len(data) > _BODY:
        data = data[:_BODY].decode("utf-8", errors="ignore").encode("utf-8")
    return data + b"\r\n"


def parse(line: str) -> tuple[str, list[str]]:
    """``(COMMAND, params)`` of a client line; message tags and a prefix are ignored."""
    rest = line
    if rest.startswith("@"):
        rest = rest.partition(" ")[2].lstrip(" ")
    if rest.startswith(":"):
        rest = rest.partition(" ")[2].lstrip(" ")
    head, sep, trailing = rest.partition(" :")
    words = head.split()
    if not words:
        return "", []
    params = words[1:15]
    if sep:
        params.append(trailing)
    return words[0].upper(), params


@dataclass(eq=False)
class _Channel:
    name: str
    created: int = field(default_factory=lambda: int(time.time()))
    members: dict[_Client, None] = field(default_factory=dict)  # in joining order
    ops: set[_Client] = field(default_factory=set)
    modes: set[str] = field(default_factory=lambda: {"n"})
    topic: str = ""
    topic_by: str = ""
    topic_at: int = 0

    def prefixed(self, client: _Client) -> str:
        return ("@" if client in self.ops else "") + (client.nick or "*")

    def mode_text(self) -> str:
        return "+" + "".join(sorted(self.modes))


class _Client:
    """One connection; :meth:`send` is the only way bytes reach its socket."""

    def __init__(self, server: DemoIrcServer, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.host = str(peer[0]) if peer else "127.0.0.1"
        self.nick: str | None = None
        self.user: str | None = None
        self.realname = ""
        self.registered = False
        self.cap_hold = False  # CAP LS seen, CAP END not yet: registration waits
        self.channels: dict[str, _Channel] = {}
        self.away = ""
        self.modes: set[str] = set()
        self.closing = False

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    @property
    def me(self) -> str:
        """How numerics address this client: its nick, or ``*`` before it has one."""
        return self.nick or "*"

    def send(self, line: str) -> None:
        if self.closing or self.writer.is_closing():
            return
        self.writer.write(cut(line))

    def numeric(self, code: str, *params: str) -> None:
        """``:server CODE me params…``; the last parameter is always sent as trailing."""
        head = " ".join(params[:-1])
        text = f" {head}" if head else ""
        last = f" :{params[-1]}" if params else ""
        self.send(f":{self.server.name} {code} {self.me}{text}{last}")


class DemoIrcServer:
    """``server = DemoIrcServer(); port = await server.start(); …; await server.close()``.

    ``port=0`` picks a free port; :meth:`start` raises :class:`OSError` when it cannot
    listen.  The host is 127.0.0.1 unless a test says otherwise.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "demo.deploybot"):
        self.host = host
        self.port = port
        self.name = name
        self.created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.clients: set[_Client] = set()
        self.nicks: dict[str, _Client] = {}
        self.channels: dict[str, _Channel] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("demo IRC server listening on %s:%s", self.host, self.port)
        return self.port

    async def close(self, reason: str = "server shutting down") -> None:
        """Tell every client, close every connection, stop listening."""
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.send(f"ERROR :Closing Link: {client.host} ({reason})")
            client.closing = True
            client.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> DemoIrcServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one connection --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client = _Client(self, writer)
        self.clients.add(client)
        reason = "Connection closed"
        try:
            async for line in _lines(reader):
                if line:
                    self._dispatch(client, line)
                if client.closing:
                    reason = ""
                    break
                await writer.drain()
        except (ConnectionError, OSError) as error:
            reason = f"Connection error: {error.__class__.__name__}"
        except asyncio.CancelledError:
            reason = ""
        finally:
            self._gone(client, reason)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)

    def _gone(self, client: _Client, reason: str) -> None:
        """Forget ``client``; its peers see a QUIT with ``reason`` (if any)."""
        if client not in self.clients:
            return
        self.clients.discard(client)
        if reason and client.registered:
            self._to_peers(client, f":{client.mask} QUIT :{reason}")
        for channel in list(client.channels.values()):
            self._leave(client, channel)
        if client.nick and self.nicks.get(irc_lower(client.nick)) is client:
            del self.nicks[irc_lower(client.nick)]

    # -- helpers ---------------------------------------------------------------------------

    def _peers(self, client: _Client) -> list[_Client]:
        """Everyone sharing a channel with ``client`` (not ``client``), each once."""
        seen: dict[_Client, None] = {}
        for channel in client.channels.values():
            for member in channel.members:
                if member is not client:
                    seen[member] = None
        return list(seen)

    def _to_peers(self, client: _Client, line: str) -> None:
        for peer in self._peers(client):
            peer.send(line)

    def _to_channel(self, channel: _Channel, line: str, *, but: _Client | None = None) -> None:
        for member in channel.members:
            if member is not but:
                member.send(line)

    def _leave(self, client: _Client, channel: _Channel) -> None:
        channel.members.pop(client, None)
        channel.ops.discard(client)
        client.channels.pop(irc_lower(channel.name), None)
        if not channel.members:
            self.channels.pop(irc_lower(channel.name), None)

    def _channel(self, name: str) -> _Channel | None:
        return self.channels.get(irc_lower(name))

    def _need(self, client: _Client, params: list[str], count: int, command: str) -> bool:
        if len(params) >= count and all(params[:count]):
            return True
        client.numeric("461", command, "Not enough parameters")
        return False

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, client: _Client, line: str) -> None:
        command, params = parse(line)
        if not command:
            return
        if not client.registered and command not in _BEFORE_REGISTRATION:
            client.numeric("451", "You have not registered")
            return
        handler = getattr(self, f"_cmd_{command.lower()}", None)
        if handler is None or command not in _COMMANDS:
            client.numeric("421", command, "Unknown command")
            return
        handler(client, params)

    # -- registration ----------------------------------------------------------------------

    def _cmd_cap(self, client: _Client, params: list[str]) -> None:
        sub = params[0].upper() if params else ""
        if sub == "LS":
            client.cap_hold = not client.registered
            client.send(f":{self.name} CAP {client.me} LS :")
        elif sub == "LIST":
            client.send(f":{self.name} CAP {client.me} LIST :")
        elif sub == "REQ":
            client.send(f":{self.name} CAP {client.me} NAK :{params[1] if len(params) > 1 else ''}")
        elif sub == "END":
            client.cap_hold = False
            self._try_register(client)
        else:
            client.numeric("410", sub or "*", "Invalid CAP command")

    def _cmd_pass(self, client: _Client, params: list[str]) -> None:
        if client.registered:
            client.numeric("462", "You may not reregister")

    def _cmd_user(self, client: _Client, params: list[str]) -> None:
        if client.registered:
            client.numeric("462", "You may not reregister")
            return
        if not self._need(client, params, 4, "USER"):
            return
        user = re.sub(r"[^A-Za-z0-9_.\-]", "", params[0])[:10] or "user"
        client.user = "~" + user
        client.realname = params[3][:100]
        self._try_register(client)

    def _cmd_nick(self, client: _Client, params: list[str]) -> None:
        if not params or not params[0]:
            client.numeric("431", "No nickname given")
            return
        nick = params[0]
        if len(nick) > NICKLEN or not _NICK.fullmatch(nick):
            client.numeric("432", nick, "Erroneous nickname")
            return
        holder = self.nicks.get(irc_lower(nick))
        if holder is not None and holder is not client:
            client.numeric("433", nick, "Nickname is already in use")
            return
        if client.nick == nick:
            return
        old = client.nick
        if old is not None and self.nicks.get(irc_lower(old)) is client:
            del self.nicks[irc_lower(old)]
        self.nicks[irc_lower(nick)] = client
        if client.registered:
            line = f":{client.mask} NICK :{nick}"
            client.send(line)
            self._to_peers(client, line)
        client.nick = nick
        self._try_register(client)

    def _try_register(self, client: _Client) -> None:
        if client.registered or client.cap_hold or not client.nick or not client.user:
            return
        client.registered = True
        me = client.nick
        client.numeric("001", f"Welcome to the {NETWORK} IRC network, {client.mask}")
        client.numeric("002", f"Your host is {self.name}, running version {VERSION}")
        client.numeric("003", f"This server was created {self.created}")
        client.send(f":{self.name} 004 {me} {self.name} {VERSION} iw nto o")
        isupport = (
            "CASEMAPPING=rfc1459",
            "CHANTYPES=#",
            "CHANMODES=,,,nt",
            "PREFIX=(o)@",
            f"NICKLEN={NICKLEN}",
            f"CHANNELLEN={CHANNELLEN}",
            f"TOPICLEN={TOPICLEN}",
            "MODES=4",
            f"NETWORK={NETWORK}",
        )
        client.numeric("005", *isupport, "are supported by this server")
        self._lusers(client)
        self._motd(client)

    def _lusers(self, client: _Client) -> None:
        count = sum(1 for c in self.clients if c.registered)
        client.numeric("251", f"There are {count} users and 0 invisible on 1 server")

    def _motd(self, client: _Client) -> None:
        client.numeric("375", f"- {self.name} Message of the day - ")
        for text in MOTD:
            client.numeric("372", f"- {text}")
        client.numeric("376", "End of /MOTD command.")

    # -- connection ------------------------------------------------------------------------

    def _cmd_ping(self, client: _Client, params: list[str]) -> None:
        if not params:
            client.numeric("409", "No origin specified")
            return
        client.send(f":{self.name} PONG {self.name} :{params[-1]}")

    def _cmd_pong(self, client: _Client, params: list[str]) -> None:
        pass

    def _cmd_quit(self, client: _Client, params: list[str]) -> None:
        reason = f"Quit: {params[0]}" if params and params[0] else "Quit"
        client.send(f"ERROR :Closing Link: {client.host} ({reason})")
        self._gone(client, reason)
        client.closing = True

    def _cmd_motd(self, client: _Client, params: list[str]) -> None:
        self._motd(client)

    def _cmd_lusers(self, client: _Client, params: list[str]) -> None:
        self._lusers(client)

    def _cmd_version(self, client: _Client, params: list[str]) -> None:
        client.numeric("351", f"{VERSION}.", self.name, "deploybot demo server")

    def _cmd_away(self, client: _Client, params: list[str]) -> None:
        client.away = params[0] if params else ""
        if client.away:
            client.numeric("306", "You have been marked as being away")
        else:
            client.numeric("305", "You are no longer marked as being away")

    # -- channels --------------------------------------------------------------------------

    def _cmd_join(self, client: _Client, params: list[str]) -> None:
        if not self._need(client, params, 1, "JOIN"):
            return
        if params[0] == "0":
            for channel in list(client.channels.values()):
                self._part(client, channel, "Left all channels")
            return
        for name in params[0].split(","):
            if len(name) > CHANNELLEN or not _CHANNEL.fullmatch(name):
                client.numeric("403", name or "*", "No such channel")
                continue
            key = irc_lower(name)
            if key in client.channels:
                continue
            found = self.channels.get(key)
            if found is None:
                channel = self.channels[key] = _Channel(name)
                channel.ops.add(client)
            else:
                channel = found
            channel.members[client] = None
            client.channels[key] = channel
            self._to_channel(channel, f":{client.mask} JOIN {channel.name}")
            if channel.topic:
                self._topic_numerics(client, channel)
            self._names(client, channel)

    def _names(self, client: _Client, channel: _Channel) -> None:
        names = [channel.prefixed(member) for member in channel.members]
        head = f":{self.name} 353 {client.me} = {channel.name} :"
        for chunk in _chunks(names, _BODY - len(head.encode())):
            client.send(head + chunk)
        client.numeric("366", channel.name, "End of /NAMES list.")

    def _cmd_names(self, client: _Client, params: list[str]) -> None:
        if not params or not params[0]:
            client.numeric("366", "*", "End of /NAMES list.")
            return
        for name in params[0].split(","):
            channel = self._channel(name)
            if channel is None:
                client.numeric("366", name, "End of /NAMES list.")
            else:
                self._names(client, channel)

    def _cmd_part(self, client: _Client, params: list[str]) -> None:
        if not self._need(client, params, 1, "PART"):
            return
        reason = params[1] if len(params) > 1 else ""
        for name in params[0].split(","):
            channel = self._channel(name)
            if channel is None:
                client.numeric("403", name, "No such channel")
            elif client not in channel.members:
                client.numeric("442", channel.name, "You're not on that channel")
            else:
                self._part(client, channel, reason)

    def _part(self, client: _Client, channel: _Channel, reason: str) -> None:
        tail = f" :{reason}" if reason else ""
        self._to_channel(channel, f":{client.mask} PART {channel.name}{tail}")
        self._leave(client, channel)

    def _cmd_topic(self, client: _Client, params: list[str]) -> None:
        if not self._need(client, params, 1, "TOPIC"):
            return
        channel = self._channel(params[0])
        if channel is None:
            client.numeric("403", params[0], "No such channel")
            return
        if len(params) == 1:
            if channel.topic:
                self._topic_numerics(client, channel)
            else:
                client.numeric("331", channel.name, "No topic is set")
            return
        if client not in channel.members:
            client.numeric("442", channel.name, "You're not on that channel")
            return
        if "t" in channel.modes and client not in channel.ops:
            client.numeric("482", channel.name, "You're not channel operator")
            return
        channel.topic = params[1][:TOPICLEN]
        channel.topic_by, channel.topic_at = client.mask, int(time.time())
        self._to_channel(channel, f":{client.mask} TOPIC {channel.name} :{channel.topic}")

    def _topic_numerics(self, client: _Client, channel: _Channel) -> None:
        client.numeric("332", channel.name, channel.topic)
        client.send(
            f":{self.name} 333 {client.me} {channel.name} {channel.topic_by} {channel.topic_at}"
        )

    def _cmd_list(self, client: _Client, params: list[str]) -> None:
        client.numeric("321", "Channel", "Users  Name")
        for channel in list(self.channels.values()):
            client.numeric("322", channel.name, str(len(channel.members)), channel.topic)
        client.numeric("323", "End of /LIST")

    # -- modes -----------------------------------------------------------------------------

    def _cmd_mode(self, client: _Client, params: list[str]) -> None:
        if not self._need(client, params, 1, "MODE"):
            return
        target = params[0]
        if target.startswith("#"):
            channel = self._channel(target)
            if channel is None:
                client.numeric("403", target, "No such channel")
            else:
                self._channel_mode(client, channel, params[1:])
            return
        if client.nick is None or irc_lower(target) != irc_lower(client.nick):
            if irc_lower(target) in self.nicks:
                client.numeric("502", "Can't change mode for other users")
            else:
                client.numeric("401", target, "No such nick/channel")
            return
        if len(params) == 1:
            client.numeric("221", "+" + "".join(sorted(client.modes)))
            return
        added: list[str] = []
        adding = True
        for letter in params[1]:
            if letter in "+-":
                adding = letter == "+"
            elif letter in "iw":
                if adding and letter not in client.modes:
                    client.modes.add(letter)
                    added.append("+" + letter)
                elif not adding and letter in client.modes:
                    client.modes.discard(letter)
                    added.append("-" + letter)
            else:
                client.numeric("501", "Unknown MODE flag")
        if added:
            client.send(f":{client.nick} MODE {client.nick} :{''.join(added)}")

    def _channel_mode(self, client: _Client, channel: _Channel, args: list[str]) -> None:
        if not args:
            client.numeric("324", channel.name, channel.mode_text())
            client.send(f":{self.name} 329 {client.me} {channel.name} {channel.created}")
            return
        lists = {
            "b": ("368", "End of channel ban list"),
            "e": ("349", "End of channel exception list"),
            "I": ("347", "End of channel invite list"),
        }
        letters = args[0].lstrip("+")
        if len(args) == 1 and len(letters) == 1 and letters in lists:
            code, text = lists[letters]
            client.numeric(code, channel.name, text)
            return
        if client not in channel.ops:
            client.numeric("482", channel.name, "You're not channel operator")
            return
        changes: list[tuple[str, str]] = []  # ("+t", "") or ("+o", nick)
        values = iter(args[1:])
        adding = True
        for letter in args[0]:
            if letter in "+-":
                adding = letter == "+"
            elif letter in "nt":
                if adding != (letter in channel.modes):
                    (channel.modes.add if adding else channel.modes.discard)(letter)
                    changes.append((("+" if adding else "-") + letter, ""))
            elif letter == "o":
                nick = next(values, "")
                member = self.nicks.get(irc_lower(nick)) if nick else None
                if member is None or member not in channel.members:
                    if nick:
                        client.numeric("441", nick, channel.name, "They aren't on that channel")
                    continue
                if adding != (member in channel.ops):
                    (channel.ops.add if adding else channel.ops.discard)(member)
                    changes.append((("+" if adding else "-") + "o", member.nick or nick))
            else:
                client.numeric("472", letter, "is unknown mode char to me")
        for change, arg in changes:
            tail = f" {arg}" if arg else ""
            self._to_channel(channel, f":{client.mask} MODE {channel.name} {change}{tail}")

    # -- messages --------------------------------------------------------------------------

    def _cmd_privmsg(self, client: _Client, params: list[str]) -> None:
        self._message(client, "PRIVMSG", params)

    def _cmd_notice(self, client: _Client, params: list[str]) -> None:
        self._message(client, "NOTICE", params)

    def _message(self, client: _Client, command: str, params: list[str]) -> None:
        errors = command == "PRIVMSG"  # a NOTICE never gets an automatic reply
        if not params or not params[0]:
            if errors:
                client.numeric("411", f"No recipient given ({command})")
            return
        if len(params) < 2 or not params[1]:
            if errors:
                client.numeric("412", "No text to send")
            return
        text = params[1]
        for target in params[0].split(",")[:4]:
            if target.startswith("#"):
                channel = self._channel(target)
                if channel is None:
                    if errors:
                        client.numeric("403", target, "No such channel")
                    continue
                if "n" in channel.modes and client not in channel.members:
                    if errors:
                        client.numeric("404", channel.name, "Cannot send to channel")
                    continue
                self._to_channel(
                    channel, f":{client.mask} {command} {channel.name} :{text}", but=client
                )
                continue
            peer = self.nicks.get(irc_lower(target))
            if peer is None or not peer.registered:
                if errors:
                    client.numeric("401", target, "No such nick/channel")
                continue
            peer.send(f":{client.mask} {command} {peer.nick} :{text}")
            if errors and peer.away:
                client.numeric("301", peer.nick or target, peer.away)

    # -- queries ---------------------------------------------------------------------------

    def _who_line(self, client: _Client, where: str, other: _Client, op: bool) -> None:
        flags = ("G" if other.away else "H") + ("@" if op else "")
        client.send(
            f":{self.name} 352 {client.me} {where} {other.user} {other.host} {self.name} "
            f"{other.nick} {flags} :0 {other.realname}"
        )

    def _cmd_who(self, client: _Client, params: list[str]) -> None:
        mask = params[0] if params and params[0] else "*"
        channel = self._channel(mask) if mask.startswith("#") else None
        if channel is not None:
            for member in channel.members:
                self._who_line(client, channel.name, member, member in channel.ops)
        else:
            other = self.nicks.get(irc_lower(mask))
            if other is not None and other.registered:
                self._who_line(client, "*", other, False)
        client.numeric("315", mask, "End of /WHO list.")

    def _cmd_whois(self, client: _Client, params: list[str]) -> None:
        if not params or not params[0]:
            client.numeric("431", "No nickname given")
            return
        nick = params[-1].split(",")[0]
        other = self.nicks.get(irc_lower(nick))
        if other is None or not other.registered:
            client.numeric("401", nick, "No such nick/channel")
        else:
            shown = other.nick or nick
            client.numeric("311", shown, other.user or "", other.host, "*", other.realname)
            names = " ".join(c.prefixed(other) for c in other.channels.values())
            if names:
                client.numeric("319", other.nick or nick, names)
            client.numeric("312", other.nick or nick, self.name, "deploybot demo server")
            if other.away:
                client.numeric("301", other.nick or nick, other.away)
        client.numeric("318", nick, "End of /WHOIS list.")

    def _cmd_ison(self, client: _Client, params: list[str]) -> None:
        words = " ".join(params).split()
        online = [
            other.nick
            for word in words
            if (other := self.nicks.get(irc_lower(word))) is not None and other.nick
        ]
        client.numeric("303", " ".join(online))

    def _cmd_userhost(self, client: _Client, params: list[str]) -> None:
        replies = []
        for word in " ".join(params).split()[:5]:
            other = self.nicks.get(irc_lower(word))
            if other is not None and other.registered:
                away = "-" if other.away else "+"
                replies.append(f"{other.nick}={away}{other.user}@{other.host}")
        client.numeric("302", " ".join(replies))


_BEFORE_REGISTRATION = frozenset({"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})
_COMMANDS = frozenset(
    {
        *_BEFORE_REGISTRATION,
        "AWAY",
        "ISON",
        "JOIN",
        "LIST",
        "LUSERS",
        "MODE",
        "MOTD",
        "NAMES",
        "NOTICE",
        "PART",
        "PRIVMSG",
        "TOPIC",
        "USERHOST",
        "VERSION",
        "WHO",
        "WHOIS",
    }
)


def _chunks(words: Iterable[str], budget: int) -> list[str]:
    """Space-joined groups of ``words``, each at most ``budget`` bytes."""
    chunks: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and len(candidate.encode()) > budget:
            chunks.append(current)
            candidate = word
        current = candidate
    if current:
        chunks.append(current)
    return chunks


async def _lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """Lines as the server reads them: split at LF, a CR before the LF dropped, CR and NUL
    inside turned into spaces, each cut to 510 bytes (the rest of an overlong line is
    discarded), decoded as UTF-8 (invalid bytes replaced)."""
    buffer = bytearray()
    discarding = False  # inside the tail of an overlong line
    while True:
        chunk = await reader.read(_READ_CHUNK)
        if not chunk:
            return
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > _BODY:
                    if not discarding:
                        yield _clean(bytes(buffer[:_BODY]))
                        discarding = True
                    buffer.clear()
                break
            raw = bytes(buffer[:end])
            del buffer[: end + 1]
            if discarding:
                discarding = False
                continue
            yield _clean(raw[:_BODY] if len(raw) > _BODY else raw)


def _clean(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    raw = raw.replace(b"\r", b" ").replace(b"\0", b" ")
    return raw.decode("utf-8", errors="replace")
