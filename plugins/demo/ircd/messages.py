"""The demo IRC server's messages and queries (:mod:`deploybot_plugins.demo.ircd.server`).

:class:`MessageCommands` (a part of :class:`~deploybot_plugins.demo.ircd.server.DemoIrcServer`)
answers ``PRIVMSG``/``NOTICE`` to channels and nicks, ``WHO``, ``WHOIS``, ``ISON`` and
``USERHOST``.
"""

from __future__ import annotations

from .network import Client, Network
from .wire import irc_lower

__all__ = ["MessageCommands"]


class MessageCommands(Network):
    """``PRIVMSG``, ``NOTICE``, ``WHO``, ``WHOIS``, ``ISON`` and ``USERHOST``."""

    def _cmd_privmsg(self, client: Client, params: list[str]) -> None:
        self._message(client, "PRIVMSG", params)

    def _cmd_notice(self, client: Client, params: list[str]) -> None:
        self._message(client, "NOTICE", params)

    def _message(self, client: Client, command: str, params: list[str]) -> None:
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

    def _who_line(self, client: Client, where: str, other: Client, op: bool) -> None:
        flags = ("G" if other.away else "H") + ("@" if op else "")
        client.send(
            f":{self.name} 352 {client.me} {where} {other.user} {other.host} {self.name} "
            f"{other.nick} {flags} :0 {other.realname}"
        )

    def _cmd_who(self, client: Client, params: list[str]) -> None:
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

    def _cmd_whois(self, client: Client, params: list[str]) -> None:
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

    def _cmd_ison(self, client: Client, params: list[str]) -> None:
        words = " ".join(params).split()
        online = [
            other.nick
            for word in words
            if (other := self.nicks.get(irc_lower(word))) is not None and other.nick
        ]
        client.numeric("303", " ".join(online))

    def _cmd_userhost(self, client: Client, params: list[str]) -> None:
        replies = []
        for word in " ".join(params).split()[:5]:
            other = self.nicks.get(irc_lower(word))
            if other is not None and other.registered:
                away = "-" if other.away else "+"
                replies.append(f"{other.nick}={away}{other.user}@{other.host}")
        client.numeric("302", " ".join(replies))
