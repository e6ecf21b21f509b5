"""The demo IRC server's channel commands (:mod:`deploybot_plugins.demo.ircd.server`).

:class:`ChannelCommands` (a part of :class:`~deploybot_plugins.demo.ircd.server.DemoIrcServer`)
answers ``JOIN``, ``NAMES``, ``PART``, ``TOPIC``, ``LIST`` and ``MODE`` (channel modes
and the user's own).
"""

from __future__ import annotations

import re
import time

from .network import Channel, Client, Network
from .wire import BODY, chunks, irc_lower

__all__ = ["CHANNELLEN", "TOPICLEN", "ChannelCommands"]

CHANNELLEN = 50
TOPICLEN = 300

_CHANNEL = re.compile(r"#[^\x00-\x20,\x07:]+")


class ChannelCommands(Network):
    """``JOIN``, ``NAMES``, ``PART``, ``TOPIC``, ``LIST`` and ``MODE``."""

    def _cmd_join(self, client: Client, params: list[str]) -> None:
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
                channel = self.channels[key] = Channel(name)
                channel.ops.add(client)
            else:
                channel = found
            channel.members[client] = None
            client.channels[key] = channel
            self._to_channel(channel, f":{client.mask} JOIN {channel.name}")
            if channel.topic:
                self._topic_numerics(client, channel)
            self._names(client, channel)

    def _names(self, client: Client, channel: Channel) -> None:
        names = [channel.prefixed(member) for member in channel.members]
        head = f":{self.name} 353 {client.me} = {channel.name} :"
        for chunk in chunks(names, BODY - len(head.encode())):
            client.send(head + chunk)
        client.numeric("366", channel.name, "End of /NAMES list.")

    def _cmd_names(self, client: Client, params: list[str]) -> None:
        if not params or not params[0]:
            client.numeric("366", "*", "End of /NAMES list.")
            return
        for name in params[0].split(","):
            channel = self._channel(name)
            if channel is None:
                client.numeric("366", name, "End of /NAMES list.")
            else:
                self._names(client, channel)

    def _cmd_part(self, client: Client, params: list[str]) -> None:
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

    def _part(self, client: Client, channel: Channel, reason: str) -> None:
        tail = f" :{reason}" if reason else ""
        self._to_channel(channel, f":{client.mask} PART {channel.name}{tail}")
        self._leave(client, channel)

    def _cmd_topic(self, client: Client, params: list[str]) -> None:
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

    def _topic_numerics(self, client: Client, channel: Channel) -> None:
        client.numeric("332", channel.name, channel.topic)
        client.send(
            f":{self.name} 333 {client.me} {channel.name} {channel.topic_by} {channel.topic_at}"
        )

    def _cmd_list(self, client: Client, params: list[str]) -> None:
        client.numeric("321", "Channel", "Users  Name")
        for channel in list(self.channels.values()):
            client.numeric("322", channel.name, str(len(channel.members)), channel.topic)
        client.numeric("323", "End of /LIST")

    # -- modes -----------------------------------------------------------------------------

    def _cmd_mode(self, client: Client, params: list[str]) -> None:
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

    def _channel_mode(self, client: Client, channel: Channel, args: list[str]) -> None:
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
