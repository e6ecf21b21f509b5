"""Which services account each nick is logged in to, as an irc3 plugin.

Sources, most authoritative first:

* the ``account=`` message tag (cap ``account-tag``) on every PRIVMSG/NOTICE: present means
  logged in as that account, absent means not logged in — this is what a command handler
  should trust (:func:`account_from_tags` on the handler's own ``tags`` argument, so that
  no later line can race it);
* ``extended-join`` JOIN lines (``JOIN #chan account :realname``, ``*`` = none);
* ``account-notify`` ACCOUNT lines;
* WHOX replies (``WHO #chan %tcnuhfa,42`` → 354, sent when the bot joins a channel and
  the server advertises WHOX).

A nick is forgotten when it quits or no longer shares a channel with the bot; a nick change
carries the account over (services accounts survive nick changes).  Everything is cleared
on a new connection.  Nicks are compared with the server's CASEMAPPING (ISUPPORT; rfc1459
when it announces none), never with Unicode folding.  irc3's command guard never sees
message tags, hence this plugin.
"""

from __future__ import annotations

import logging
from typing import Any

import irc3
from irc3 import tags as irc3_tags

from deploybot.casemapping import RFC1459, irc_fold, known

from .port import IrcBotPort

log = logging.getLogger(__name__)

WHOX_TOKEN = "42"


def irc_lower(name: str) -> str:
    """``name`` folded with the rfc1459 casemapping (what InspIRCd and ngircd use): ASCII
    letters and ``[]\\~`` only, never Unicode folding."""
    return irc_fold(name, RFC1459)


def account_from_tags(tags: str | None) -> str | None:
    """The ``account`` tag of a raw IRCv3 tag string, or None (absent, ``*`` or malformed)."""
    if not tags:
        return None
    try:
        value = irc3_tags.decode(tags).get("account")
    except ValueError:
        log.warning("ignoring malformed message tags %r", tags)
        return None
    return value if value and value != "*" else None


def _nick(mask: str) -> str:
    return mask.split("!", 1)[0]


@irc3.plugin
class Accounts:
    """Tracks nick → services account for the channels the bot is in."""

    def __init__(self, bot: IrcBotPort) -> None:
        self.bot = bot
        self._accounts: dict[str, str | None] = {}
        self._members: dict[str, set[str]] = {}

    # --- public API -------------------------------------------------------------------------
    @property
    def casemapping(self) -> str:
        """How this server compares nicks (its ISUPPORT CASEMAPPING; rfc1459 if none)."""
        return known(self.bot.server_config.get("CASEMAPPING"))

    def account_of(self, nick: str) -> str | None:
        """The services account ``nick`` is logged in to, or None if not (or not known)."""
        return self._accounts.get(self._fold(nick))

    # --- irc3 notify hooks ------------------------------------------------------------------
    def connection_made(self) -> None:
        self._accounts.clear()
        self._members.clear()

    def connection_lost(self) -> None:
        self.connection_made()

    # --- helpers ------------------------------------------------------------------------------
    def _fold(self, name: str) -> str:
        return irc_fold(name, self.casemapping)

    def _is_me(self, nick: str) -> bool:
        return self._fold(nick) == self._fold(self.bot.nick)

    def _set(self, nick: str, account: str | None) -> None:
        self._accounts[self._fold(nick)] = account if account not in (None, "*", "0") else None

    def _forget_if_unseen(self, lnick: str) -> None:
        if not any(lnick in members for members in self._members.values()):
            self._accounts.pop(lnick, None)

    def _left(self, lnick: str, channel: str) -> None:
        lchan = self._fold(channel)
        if self._is_me(lnick):
            for other in self._members.pop(lchan, set()):
                self._forget_if_unseen(other)
        else:
            self._members.get(lchan, set()).discard(lnick)
            self._forget_if_unseen(lnick)

    def _caps(self) -> set[str]:
        plugin = self.bot.registry.plugins.get("deploybot_plugins.irc.capabilities.Capabilities")
        return set(plugin.enabled) if plugin is not None else set()

    # --- server lines -------------------------------------------------------------------------
    @irc3.event(r"^(@(?P<tags>\S+) )?:(?P<mask>[^\s!]+)!\S+ (PRIVMSG|NOTICE) ")
    def on_message(self, mask: str = "", tags: str | None = None, **_: Any) -> None:
        if "account-tag" in self._caps():
            self._set(_nick(mask), account_from_tags(tags))
        elif tags:  # account-tag not negotiated but the tag is there anyway
            account = account_from_tags(tags)
            if account:
                self._set(_nick(mask), account)

    @irc3.event(r"^(@\S+ )?:(?P<mask>\S+) JOIN :?(?P<channel>\S+)( (?P<account>\S+) :.*)?$")
    def on_join(
        self, mask: str = "", channel: str = "", account: str | None = None, **_: Any
    ) -> None:
        nick = _nick(mask)
        lnick, lchan = self._fold(nick), self._fold(channel)
        if self._is_me(nick):
            self._members[lchan] = {lnick}
            if "WHOX" in self.bot.server_config:
                self.bot.send(f"WHO {channel} %tcnuhfa,{WHOX_TOKEN}")
            return
        self._members.setdefault(lchan, set()).add(lnick)
        if account is not None:
            self._set(nick, account)

    @irc3.event(r"^(@\S+ )?:(?P<srv>\S+) 353 \S+ \S+ (?P<channel>\S+) :(?P<names>.*)$")
    def on_names(self, channel: str = "", names: str = "", **_: Any) -> None:
        members = self._members.setdefault(self._fold(channel), set())
        for name in names.split():
            members.add(self._fold(_nick(name.lstrip("~&@%+!"))))

    @irc3.event(
        r"^(@\S+ )?:\S+ 354 \S+ " + WHOX_TOKEN + r" (?P<channel>\S+) \S+ \S+ "
        r"(?P<nick>\S+) \S+ :?(?P<account>\S+)$"
    )
    def on_whox(self, channel: str = "", nick: str = "", account: str = "", **_: Any) -> None:
        self._members.setdefault(self._fold(channel), set()).add(self._fold(nick))
        self._set(nick, account)

    @irc3.event(r"^(@\S+ )?:(?P<mask>\S+) ACCOUNT :?(?P<account>\S+)")
    def on_account(self, mask: str = "", account: str = "", **_: Any) -> None:
        self._set(_nick(mask), account)

    @irc3.event(r"^(@\S+ )?:(?P<mask>\S+) PART (?P<channel>\S+)")
    def on_part(self, mask: str = "", channel: str = "", **_: Any) -> None:
        self._left(self._fold(_nick(mask)), channel)

    @irc3.event(r"^(@\S+ )?:\S+ KICK (?P<channel>\S+) (?P<target>\S+)")
    def on_kick(self, channel: str = "", target: str = "", **_: Any) -> None:
        self._left(self._fold(target), channel)

    @irc3.event(r"^(@\S+ )?:(?P<mask>\S+) QUIT( |$)")
    def on_quit(self, mask: str = "", **_: Any) -> None:
        lnick = self._fold(_nick(mask))
        for members in self._members.values():
            members.discard(lnick)
        self._accounts.pop(lnick, None)

    @irc3.event(r"^(@\S+ )?:(?P<mask>\S+) NICK :?(?P<new>\S+)")
    def on_nick(self, mask: str = "", new: str = "", **_: Any) -> None:
        old, lnew = self._fold(_nick(mask)), self._fold(new)
        for members in self._members.values():
            if old in members:
                members.discard(old)
                members.add(lnew)
        if old in self._accounts:
            self._accounts[lnew] = self._accounts.pop(old)
        else:
            self._accounts.pop(lnew, None)
