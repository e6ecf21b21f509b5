"""The demo IRC server's state (:mod:`deploybot_plugins.demo.ircd.server`): who is connected, by
which nick, in which channels.

:class:`Client` is one connection (its :meth:`Client.send` is the only way bytes reach its
socket, through :func:`~deploybot_plugins.demo.ircd.wire.cut`); :class:`Channel` is one
channel; :class:`Network` is what the server knows of both, with the helpers every
command uses to reach them.  :class:`~deploybot_plugins.demo.ircd.server.DemoIrcServer` is a
:class:`Network` (through its command classes).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .wire import cut, irc_lower

__all__ = ["Channel", "Client", "Network"]


@dataclass(eq=False)
class Channel:
    name: str
    created: int = field(default_factory=lambda: int(time.time()))
    members: dict[Client, None] = field(default_factory=dict)  # in joining order
    ops: set[Client] = field(default_factory=set)
    modes: set[str] = field(default_factory=lambda: {"n"})
    topic: str = ""
    topic_by: str = ""
    topic_at: int = 0

    def prefixed(self, client: Client) -> str:
        return ("@" if client in self.ops else "") + (client.nick or "*")

    def mode_text(self) -> str:
        return "+" + "".join(sorted(self.modes))


class Client:
    """One connection; :meth:`send` is the only way bytes reach its socket."""

    def __init__(self, server: Network, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.host = str(peer[0]) if peer else "127.0.0.1"
        self.nick: str | None = None
        self.user: str | None = None
        self.realname = ""
        self.registered = False
        self.cap_hold = False  # CAP LS seen, CAP END not yet: registration waits
        self.channels: dict[str, Channel] = {}
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


class Network:
    """The server's state; :class:`~deploybot_plugins.demo.ircd.server.DemoIrcServer` sets it up."""

    name: str
    clients: set[Client]
    nicks: dict[str, Client]  # by irc_lower(nick)
    channels: dict[str, Channel]  # by irc_lower(name)

    # -- helpers ---------------------------------------------------------------------------

    def _peers(self, client: Client) -> list[Client]:
        """Everyone sharing a channel with ``client`` (not ``client``), each once."""
        seen: dict[Client, None] = {}
        for channel in client.channels.values():
            for member in channel.members:
                if member is not client:
                    seen[member] = None
        return list(seen)

    def _to_peers(self, client: Client, line: str) -> None:
        for peer in self._peers(client):
            peer.send(line)

    def _to_channel(self, channel: Channel, line: str, *, but: Client | None = None) -> None:
        for member in channel.members:
            if member is not but:
                member.send(line)

    def _leave(self, client: Client, channel: Channel) -> None:
        channel.members.pop(client, None)
        channel.ops.discard(client)
        client.channels.pop(irc_lower(channel.name), None)
        if not channel.members:
            self.channels.pop(irc_lower(channel.name), None)

    def _channel(self, name: str) -> Channel | None:
        return self.channels.get(irc_lower(name))

    def _need(self, client: Client, params: list[str], count: int, command: str) -> bool:
        if len(params) >= count and all(params[:count]):
            return True
        client.numeric("461", command, "Not enough parameters")
        return False
