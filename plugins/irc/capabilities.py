"""IRCv3 capability negotiation and SASL PLAIN login, as an irc3 plugin.

Replaces ``irc3.plugins.sasl``, which never sends ``CAP END`` after a failed login (the
server then drops the bot at its registration timeout, forever, silently).  Here:

* ``CAP LS 302`` goes out before USER/NICK (from the ``connection_ready`` hook), so the
  server holds registration until ``CAP END``;
* we request what we use and the server offers: ``account-tag``, ``account-notify``,
  ``extended-join``, ``echo-message`` (our messages come back: the confirmation of a
  stored post), and ``sasl`` when a password is set — never ``message-tags`` or
  ``server-time``, whose tag prefix irc3's "connected" regexes do not accept;
* SASL PLAIN via ``AUTHENTICATE`` (base64, 400-byte chunks, ``+`` for an empty one);
  ``903`` ends negotiation.  A failed login is judged by its cause:

  - the credentials refused (``904``) before this process ever logged in: the password or
    the account is wrong, and retrying cannot help.  ``bot.fatal()`` logs the reason, sends
    ``CAP END`` and ``QUIT`` and makes ``start()`` / ``bot.failed`` report it (exit 1);
  - anything else — no ``sasl`` offered (InspIRCd hides it while its services are not
    linked), no PLAIN among the mechanisms, ``902/904/905/906/908`` once this process has
    logged in, a server that registers us without SASL — is transient:
    ``bot.login_failed()`` warns, leaves, and reconnects with the usual backoff, forever.

:func:`resolve_sasl_password` reads the secret from a file, a systemd credential or an
environment variable named in ``[bot]``, so it need not sit in the ini.

The bot object must provide ``sasl_password``, ``sasl_username``, ``send(line)``,
``fatal(message)`` and ``login_failed(message)`` (see
:class:`deploybot_plugins.irc.bot.DeployIrcBot`).
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from typing import Any

import irc3

from deploybot.config import (
    BOT_SECRET_KEYS,
    credential_name_problem,
    credential_path,
    read_secret_file,
)
from deploybot.errors import ConfigError, DeploybotError

from .port import IrcBotPort

log = logging.getLogger(__name__)

WANTED = ("account-tag", "account-notify", "extended-join", "echo-message")
SASL_FAILURES = {"902", "904", "905", "906", "908"}
#: The server (its services) refused the account and password.
CREDENTIALS_REFUSED = "904"
CHUNK = 400
SECRET_KEYS = BOT_SECRET_KEYS


class BotConfigError(ConfigError):
    """A bad value in the ``[bot]`` section."""

    def __init__(self, key: str, message: str, file: str | None = None) -> None:
        self.key, self.message, self.file = key, message, file
        where = f"{file}: " if file else ""
        DeploybotError.__init__(self, f"{where}[bot] {key}: {message}")


class IrcLoginError(DeploybotError):
    """The server refused to log the bot in; reconnecting would not help."""


def resolve_sasl_password(bot_section: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The SASL password named by ``[bot]``, or None when no login is configured.

    At most one of ``sasl_password_file`` (a file holding the password; one trailing
    newline is ignored), ``sasl_password_env`` (the name of an environment variable),
    ``sasl_password_credential`` (the name of a systemd credential: the file of that name
    in ``$CREDENTIALS_DIRECTORY``, as ``LoadCredential=`` puts it there) and
    ``sasl_password`` (the password itself, in the ini — discouraged) may be set.
    """
    given = [key for key in SECRET_KEYS if str(bot_section.get(key) or "").strip()]
    if len(given) > 1:
        raise BotConfigError(given[1], f"set only one of {', '.join(given)}")
    if not given:
        return None
    key = given[0]
    value = str(bot_section[key]).strip()
    try:
        if key == "sasl_password_file":
            return read_secret_file(os.path.expanduser(value))
        if key == "sasl_password_credential":
            if problem := credential_name_problem(value):
                raise ValueError(problem)
            return read_secret_file(credential_path(value, environ))
    except ValueError as error:
        raise BotConfigError(key, str(error)) from None
    if key == "sasl_password_env":
        if value not in environ:
            raise BotConfigError(key, f"the environment variable {value} is not set")
        password, where = environ[value], f"the environment variable {value}"
    else:
        password, where = value, "sasl_password"
    if not password:
        raise BotConfigError(key, f"{where} is empty")
    return password


def authenticate_lines(username: str, password: str) -> list[str]:
    """The ``AUTHENTICATE`` lines carrying a SASL PLAIN response for ``username``."""
    payload = f"{username}\0{username}\0{password}".encode()
    encoded = base64.b64encode(payload).decode("ascii")
    chunks = [encoded[i : i + CHUNK] for i in range(0, len(encoded), CHUNK)]
    if not chunks or len(chunks[-1]) == CHUNK:
        chunks.append("+")
    return [f"AUTHENTICATE {chunk}" for chunk in chunks]


def _cap_names(text: str) -> dict[str, str]:
    """``{name: value}`` from a CAP LS/ACK list such as ``sasl=PLAIN,EXTERNAL away-notify``."""
    caps: dict[str, str] = {}
    for item in text.split():
        name, _, value = item.lstrip("-~=").partition("=")
        caps[name.lower()] = value
    return caps


@irc3.plugin
class Capabilities:
    """CAP LS 302 / REQ / END and SASL PLAIN for one bot."""

    def __init__(self, bot: IrcBotPort) -> None:
        self.bot = bot
        self.offered: dict[str, str] = {}
        self.enabled: set[str] = set()
        self.negotiating = False
        self.logged_in_as: str | None = None
        #: True once any connection of this process logged in: the credentials are good,
        #: so a later refusal is the services' trouble, not the config's.
        self.logged_in_once = False
        #: True between ``AUTHENTICATE PLAIN`` and the services' answer.
        self.authenticating = False

    # --- irc3 notify hooks -------------------------------------------------------------
    def connection_ready(self) -> None:
        """A new connection: ask for the capability list before USER/NICK go out."""
        self.offered = {}
        self.enabled = set()
        self.logged_in_as = None
        self.negotiating = True
        self.authenticating = False
        self.bot.send("CAP LS 302")

    # --- server lines --------------------------------------------------------------------
    @irc3.event(r"^(@\S+ )?:\S+ CAP \S+ LS (?P<more>\* )?:?(?P<caps>.*)$")
    def on_cap_ls(self, caps: str = "", more: str | None = None, **_: Any) -> None:
        self.offered.update(_cap_names(caps))
        if more or not self.negotiating:
            return
        wanted = [cap for cap in WANTED if cap in self.offered]
        if self.bot.sasl_password is not None:
            mechanisms = self.offered.get("sasl")
            if mechanisms is None:
                self._fail("the server offers no SASL login (services not linked?)")
                return
            if mechanisms and "PLAIN" not in mechanisms.upper().split(","):
                self._fail(f"the server offers no SASL PLAIN login (only {mechanisms})")
                return
            wanted.append("sasl")
        if wanted:
            self.bot.send("CAP REQ :" + " ".join(wanted))
        else:
            self._end()

    @irc3.event(r"^(@\S+ )?:\S+ CAP \S+ (?P<verb>ACK|NAK) :?(?P<caps>.*)$")
    def on_cap_ack(self, verb: str = "", caps: str = "", **_: Any) -> None:
        names = _cap_names(caps)
        if verb == "NAK":
            log.warning("IRC server refused capabilities: %s", caps)
            if "sasl" in names and self.bot.sasl_password is not None:
                self._fail("the server refused the sasl capability")
            elif self.negotiating:
                self._end()
            return
        for item in caps.split():
            name = item.lstrip("=~").partition("=")[0].lower()
            if item.startswith("-"):
                self.enabled.discard(name.lstrip("-"))
            else:
                self.enabled.add(name)
        log.info("IRC capabilities enabled: %s", " ".join(sorted(self.enabled)) or "none")
        if not self.negotiating:
            return
        if "sasl" in names and self.bot.sasl_password is not None:
            self.authenticating = True
            self.bot.send("AUTHENTICATE PLAIN")
        else:
            self._end()

    @irc3.event(r"^(@\S+ )?(:\S+ )?AUTHENTICATE :?\+$")
    def on_authenticate(self, **_: Any) -> None:
        password = self.bot.sasl_password
        if password is None or not self.negotiating:
            return
        for line in authenticate_lines(self.bot.sasl_username, password):
            self.bot.send(line)

    @irc3.event(r"^(@\S+ )?:\S+ 900 \S+ \S+ (?P<account>[^ :]+) :?(?P<text>.*)$")
    def on_logged_in(self, account: str = "", **_: Any) -> None:
        self.logged_in_as = account
        self.logged_in_once = True
        log.info("SASL: logged in as %s", account)

    @irc3.event(r"^(@\S+ )?:\S+ (?P<code>903|907) \S+ :?(?P<text>.*)$")
    def on_sasl_success(self, **_: Any) -> None:
        self.authenticating = False
        if self.negotiating:
            self._end()

    @irc3.event(r"^(@\S+ )?:\S+ (?P<code>90[24568]) \S+ :?(?P<text>.*)$")
    def on_sasl_failure(self, code: str = "", text: str = "", **_: Any) -> None:
        if code in SASL_FAILURES and self.negotiating:
            wrong = code == CREDENTIALS_REFUSED and not self.logged_in_once
            self._fail(f"{text} ({code})", credentials=wrong)

    @irc3.event(r"^(@\S+ )?:\S+ 001 \S+ ")
    def on_welcome(self, **_: Any) -> None:
        """Registered.  A server that ignored CAP never logged us in: that is fatal too."""
        self.negotiating = False
        if self.bot.sasl_password is not None and self.logged_in_as is None:
            self._fail("the server registered the bot without SASL (no CAP support?)")

    # --- helpers ---------------------------------------------------------------------------
    def _end(self) -> None:
        self.negotiating = False
        self.bot.send("CAP END")

    def _fail(self, reason: str, *, credentials: bool = False) -> None:
        """A failed login: fatal when ``credentials`` (refused, never logged in before),
        else transient (the bot reconnects later)."""
        self.negotiating = self.authenticating = False
        failure = f"SASL login as {self.bot.sasl_username} failed: {reason}"
        if credentials:
            self.bot.fatal(
                f"{failure}; check sasl_username and sasl_password_file / sasl_password_env"
                " in [bot]"
            )
        else:
            self.bot.login_failed(failure)
