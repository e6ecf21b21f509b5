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

Where it is: this module holds the server (:class:`DemoIrcServer`: listening, one task a
connection, dispatch, registration and the connection commands); the line-safety layer
(every line read or written is one line, at most 512 bytes, CR/LF/NUL never relayed) is
:mod:`deploybot_plugins.demo.ircd.wire`; the state (connections, nicks, channels) is
:mod:`deploybot_plugins.demo.ircd.network`; the channel commands are
:mod:`deploybot_plugins.demo.ircd.channels`; messages and queries,
:mod:`deploybot_plugins.demo.ircd.messages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from .channels import CHANNELLEN, TOPICLEN, ChannelCommands
from .messages import MessageCommands
from .network import Channel, Client
from .wire import MAX_LINE, irc_lower, parse, read_lines

__all__ = ["MAX_LINE", "DemoIrcServer"]

log = logging.getLogger(__name__)

NICKLEN = 30
VERSION = "deploybot-demo-ircd-1"
NETWORK = "deploybot-demo"

_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")

MOTD = (
    "This is deploybot's built-in demo IRC server (deploybot demo).",
    "It is for trying deploybot out on this machine only: no services, no flood",
    "control, nothing kept. Run the bot for real on a real IRC server.",
)


class DemoIrcServer(ChannelCommands, MessageCommands):
    """``server = DemoIrcServer(); port = await server.start(); …; await server.close()``.

    ``port=0`` picks a free port; :meth:`start` raises :class:`OSError` when it cannot
    listen.  The host is 127.0.0.1 unless a test says otherwise.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "demo.deploybot"):
        self.host = host
        self.port = port
        self.name = name
        self.created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.clients: set[Client] = set()
        self.nicks: dict[str, Client] = {}
        self.channels: dict[str, Channel] = {}
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
        client = Client(self, writer)
        self.clients.add(client)
        reason = "Connection closed"
        try:
            async for line in read_lines(reader):
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

    def _gone(self, client: Client, reason: str) -> None:
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

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, client: Client, line: str) -> None:
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

    def _cmd_cap(self, client: Client, params: list[str]) -> None:
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

    def _cmd_pass(self, client: Client, params: list[str]) -> None:
        if client.registered:
            client.numeric("462", "You may not reregister")

    def _cmd_user(self, client: Client, params: list[str]) -> None:
        if client.registered:
            client.numeric("462", "You may not reregister")
            return
        if not self._need(client, params, 4, "USER"):
            return
        user = re.sub(r"[^A-Za-z0-9_.\-]", "", params[0])[:10] or "user"
        client.user = "~" + user
        client.realname = params[3][:100]
        self._try_register(client)

    def _cmd_nick(self, client: Client, params: list[str]) -> None:
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

    def _try_register(self, client: Client) -> None:
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

    def _lusers(self, client: Client) -> None:
        count = sum(1 for c in self.clients if c.registered)
        client.numeric("251", f"There are {count} users and 0 invisible on 1 server")

    def _motd(self, client: Client) -> None:
        client.numeric("375", f"- {self.name} Message of the day - ")
        for text in MOTD:
            client.numeric("372", f"- {text}")
        client.numeric("376", "End of /MOTD command.")

    # -- connection ------------------------------------------------------------------------

    def _cmd_ping(self, client: Client, params: list[str]) -> None:
        if not params:
            client.numeric("409", "No origin specified")
            return
        client.send(f":{self.name} PONG {self.name} :{params[-1]}")

    def _cmd_pong(self, client: Client, params: list[str]) -> None:
        pass

    def _cmd_quit(self, client: Client, params: list[str]) -> None:
        reason = f"Quit: {params[0]}" if params and params[0] else "Quit"
        client.send(f"ERROR :Closing Link: {client.host} ({reason})")
        self._gone(client, reason)
        client.closing = True

    def _cmd_motd(self, client: Client, params: list[str]) -> None:
        self._motd(client)

    def _cmd_lusers(self, client: Client, params: list[str]) -> None:
        self._lusers(client)

    def _cmd_version(self, client: Client, params: list[str]) -> None:
        client.numeric("351", f"{VERSION}.", self.name, "deploybot demo server")

    def _cmd_away(self, client: Client, params: list[str]) -> None:
        client.away = params[0] if params else ""
        if client.away:
            client.numeric("306", "You have been marked as being away")
        else:
            client.numeric("305", "You are no longer marked as being away")


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
