"""The ``[deploybot]`` section of ``bot.ini`` (SPEC §7): read once, validated once, typed.

The file is an INI file shared with irc3: irc3 owns ``[bot]`` (nick, host, port, ssl,
sasl, autojoins, includes) and any ``[irc3.*]`` sections; this module owns
``[deploybot]``.  Like fedora-messaging's config, the defaults below are merged with the
file and the result is validated in one pass:

* an unknown key is an error that lists the valid keys;
* a bad value is an error that names the key, shows the value and says what is expected;
* every problem is reported at once, in one :class:`InvalidConfig` (a
  :class:`~deploybot.errors.ConfigError` whose ``.key`` is the first problem's key and
  whose text has one line per problem, ``FILE:LINE: [deploybot] KEY: message``);
* a file that is missing, unreadable or not INI is an error naming the file (and line).

A missing ``[deploybot]`` section means "all defaults".

Reading rules for ``[deploybot]``:

* ``key = value ; comment`` — a ``;`` preceded by whitespace starts a comment.  ``#`` does
  *not* start an inline comment, so ``admin_channel = #fedora-admin`` is a channel.
  (A line whose first non-blank character is ``#`` or ``;`` is a whole-line comment, as in
  any INI file; so write several channels on one line, ``#a #b``, not one per indented
  line — an indented ``#channel`` line would be swallowed, and is reported as an error.)
* Keys are case-sensitive (as irc3 reads them).  No interpolation: ``$`` is literal.
* List values are separated by spaces (or by line breaks from indented continuation
  lines); a value of any other key must fit on one line.  No value may contain a control
  character (CR, NUL, BEL…); channel names may not contain spaces or commas either.
* Relative paths (``plans_dir``, ``freezes``, ``database``, ``fedmsg_ca_cert``, ``fedmsg_crl``,
  ``web_read_token_file``) are resolved against the directory holding the ini file, so
  the bot behaves the same whatever its working directory; ``~`` means the home
  directory.  Paths are not checked for existence here: the parts that use them report
  that.

Keys beyond SPEC §7: ``fedmsg_crl`` (the certificate revocation list used with
``fedmsg_ca_cert`` when validating signatures; SPEC mentions it in a comment).

``[bot]`` belongs to irc3, which reads it as an unvalidated dict, but deploybot reads it too
(README, ``deploybot run``) and adds keys of its own: :func:`bot_section` returns it as irc3
would read it, and :func:`load_bot_section` also checks it like ``[deploybot]``, every problem
as ``FILE:LINE: [bot] KEY: message``:

* deploybot's own keys (:data:`BOT_KEYS`): the numbers (:data:`BOT_NUMBERS`) must be
  positive, at most one of the SASL secret's sources may be set, and a SASL secret needs
  ``ssl = true`` unless ``host`` is loopback or ``allow_plaintext_sasl = true``;
* irc3's ``port`` must be a TCP port and ``ssl`` a yes/no value (``ssl = ture`` would
  otherwise be a silent "no");
* any other key goes to irc3 and its plugins, unchecked, unless it looks like a misspelt
  deploybot or irc3 key (``throttle_brust``, ``autojoin``) or starts like deploybot's own
  (``throttle_…``, ``sasl_…``, ``reconnect_…``): that is an error with a suggestion.
"""

from __future__ import annotations

import configparser
import difflib
import ipaddress
import os
import re
import string
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deploybot.casemapping import DEFAULT as DEFAULT_CASEMAPPING
from deploybot.casemapping import irc_equal, irc_fold
from deploybot.durations import DEFAULT_COUNTDOWNS, parse_countdowns, parse_duration
from deploybot.errors import ConfigError, DurationError, Problem

__all__ = [
    "ADDRESS_KINDS",
    "BOT_KEYS",
    "BOT_NUMBERS",
    "BOT_SECRET_KEYS",
    "CREDENTIALS_ENV",
    "DEFAULTS",
    "IRC3_KEYS",
    "KEY_HELP",
    "MAX_BUSY_TIMEOUT",
    "MIN_WEBHOOK_SECRET",
    "SECTION",
    "VALID_KEYS",
    "WEBHOOK_SECRET_KEYS",
    "Address",
    "AdminRule",
    "Config",
    "InvalidConfig",
    "bot_section",
    "check_bot_section",
    "config_from_mapping",
    "credential_name_problem",
    "credential_path",
    "load_bot_section",
    "load_config",
    "parse_flag",
    "positive_number",
    "read_secret_file",
    "read_section",
    "resolve_webhook_secret",
    "tcp_port",
]

SECTION = "deploybot"
#: The longest ``database_busy_timeout`` accepted, in seconds.
MAX_BUSY_TIMEOUT = 10.0
#: The range of ``ha_lease_timeout`` accepted, in seconds.
MIN_LEASE_TIMEOUT = 1.0
MAX_LEASE_TIMEOUT = 300.0
#: The shortest ``webhook_secret`` accepted (UTF-8 bytes), when there is one.
MIN_WEBHOOK_SECRET = 32

# key: (default as written in bot.ini, one-line help).  Order = SPEC §7 order.
_KEYS: dict[str, tuple[str, str]] = {
    "plans_dir": ("deploy-plans", "directory of plan files (*.yaml)"),
    "freezes": (
        "",
        "YAML file listing infrastructure freezes ({name, from, to}); empty: none",
    ),
    "freeze_calendar": (
        "",
        "http(s):// URL of an iCalendar feed whose events named like a freeze are freezes; "
        "empty: none",
    ),
    "freeze_calendar_refresh": ("1h", "how often the freeze calendar is fetched again"),
    "database": (
        "deploybot.sqlite3",
        "SQLite file (the embedded default), or postgresql://USER@HOST:PORT/DBNAME",
    ),
    "database_password_file": (
        "",
        "file holding the PostgreSQL password (else PGPASSWORD or ~/.pgpass); empty: none",
    ),
    "database_busy_timeout": (
        "0.5",
        "seconds (0 to 10) a write waits for a database another program has locked; "
        "the bot's loop waits meanwhile",
    ),
    "ha_lease_timeout": (
        "10",
        "PostgreSQL only: seconds (1 to 300) without a lease renewal after which a standby "
        "takes over from the active instance",
    ),
    "timezone": ("UTC", "IANA time zone used to show times, e.g. Europe/Paris"),
    "admin_channel": ("#fedora-admin", "channel for admin notices, pages and digests"),
    "announce_channels": ("#fedora-admin", "space-separated channels for countdowns"),
    "firefight_channel": (
        "#{service}-firefight",
        "firefighting channel pattern; placeholders {service} and {id}",
    ),
    "countdowns": (
        DEFAULT_COUNTDOWNS,
        "space-separated offsets before a deploy at which to post a countdown",
    ),
    "notice_days": ("14", "days of notice the policy asks for (API breaks, staging)"),
    "digest_time": (
        "22:00",
        "HH:MM or HH:MM:SS (in timezone) when the daily incident digest is posted",
    ),
    "page_escalate_after": ("10m", "an unacknowledged page is repeated and escalated after"),
    "countdown_late_after": (
        "1m",
        "a countdown posted more than this after its time is marked late",
    ),
    "max_notes_per_incident": (
        "200",
        "!note is refused on an incident that has this many notes (1 to 100000)",
    ),
    "command_flood_limit": (
        "5",
        "commands one person (account, or mask when not logged in) may give within"
        " command_flood_window; more and they are told once, then ignored",
    ),
    "command_flood_window": ("10s", "the window command_flood_limit counts in"),
    "command_flood_ignore": (
        "1m",
        "how long a flooding person's commands are ignored (their !broke is still recorded)",
    ),
    "page_flood_limit": ("3", "!page one person may send within page_flood_window"),
    "page_flood_total": ("20", "!page everyone together may send within page_flood_window"),
    "page_flood_window": ("10m", "the window the !page limits count in"),
    "uses_flood_limit": ("3", "!uses one person may register within uses_flood_window"),
    "uses_flood_total": ("30", "!uses everyone together may register within uses_flood_window"),
    "uses_flood_window": ("10m", "the window the !uses limits count in"),
    "admins": (
        "account:pingou mask:*!*@fedora/sysadmin/*",
        "space-separated account:NAME (services account), mask:NICK!USER@HOST or "
        "mxid:@NAME:SERVER (an address on another network)",
    ),
    "fedmsg_endpoints": ("", "space-separated tcp://HOST:PORT, ipc:// or inproc://; empty: no bus"),
    "fedmsg_topic_prefix": ("org.fedoraproject", "fedmsg topic prefix to subscribe to"),
    "fedmsg_environment": ("prod", "prod, stg or dev"),
    "fedmsg_validate_signatures": ("false", "check fedmsg signatures (true/false)"),
    "fedmsg_ca_cert": ("", "CA certificate for signature validation; empty: none"),
    "fedmsg_crl": ("", "certificate revocation list for signature validation; empty: none"),
    "fedmsg_receive_queue": (
        "100",
        "messages ZeroMQ may hold per endpoint before the bot reads them (RCVHWM; 1 to 100000)",
    ),
    "amqp_url": ("", "fedora-messaging broker, amqp://… or amqps://…; empty: off"),
    "amqp_queue": ("", "durable queue name; empty: a private one"),
    "amqp_bindings": ("org.fedoraproject.*.ansible.#", "space-separated AMQP topic bindings"),
    "amqp_publish": (
        "false",
        "publish deploybot's own events (deploybot.deploy.start, …) to amqp_url's amq.topic "
        "under fedmsg_topic_prefix.fedmsg_environment (true/false)",
    ),
    "web_host": ("127.0.0.1", "address the web server listens on"),
    "web_port": ("8080", "port of the web server; 0: no web server"),
    "web_public_names": (
        "",
        "space-separated host names the web server is reached by (besides web_host, "
        "localhost and IP addresses); any other Host header is refused (421)",
    ),
    "web_read_token_file": (
        "",
        "file holding a token (32+ characters) the API, pages, calendar and /metrics ask "
        "for as Authorization: Bearer TOKEN; empty: no token",
    ),
    "webhook_secret": (
        "",
        "HMAC-SHA256 secret for POST /api/v1/events, 32 bytes or more; empty: webhook off",
    ),
    "webhook_secret_file": ("", "file holding webhook_secret instead; empty: none"),
    "webhook_secret_credential": (
        "",
        "name of a systemd credential holding webhook_secret instead (LoadCredential=NAME:FILE, "
        "read from $CREDENTIALS_DIRECTORY by deploybot run); empty: none",
    ),
    "probe_timeout": (
        "10s",
        "drift probe: the longest one GET to staging or production may take (redirects too)",
    ),
    "probe_max_size": (
        "8MiB",
        "drift probe: an answer larger than this (B, KiB or MiB) is not read further",
    ),
    "probe_concurrency": ("4", "drift probe: GETs under way at once (1 to 64)"),
    "probe_token_file_staging": (
        "",
        "file holding a token sent to staging as Authorization: Bearer TOKEN; empty: none",
    ),
    "probe_token_file_production": (
        "",
        "file holding a token sent to production as Authorization: Bearer TOKEN; empty: none",
    ),
}

#: Every valid ``[deploybot]`` key, in SPEC §7 order.
VALID_KEYS: tuple[str, ...] = tuple(_KEYS)
#: The default of every key, as it would be written in ``bot.ini``.
DEFAULTS: Mapping[str, str] = MappingProxyType({k: v[0] for k, v in _KEYS.items()})
#: A one-line description of every key (used for ``bot.ini``'s comments and help).
KEY_HELP: Mapping[str, str] = MappingProxyType({k: v[1] for k, v in _KEYS.items()})

_LIST_KEYS = frozenset(
    {
        "announce_channels",
        "countdowns",
        "admins",
        "fedmsg_endpoints",
        "amqp_bindings",
        "web_public_names",
    }
)
_SECRET_KEYS = frozenset({"amqp_url", "webhook_secret"})
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_IN_LIST = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # LF separates list items
_CHANNEL_FORBIDDEN = re.compile(r"[\s,\x00-\x1f\x7f]")
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9*](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)"
_TCP_ENDPOINT = re.compile(rf"tcp://{_HOST}:([0-9]{{1,5}})")
_DIGEST_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_Environment = Literal["prod", "stg", "dev"]
_ENVIRONMENTS: dict[str, _Environment] = {"prod": "prod", "stg": "stg", "dev": "dev"}
_PLACEHOLDERS = ("service", "id")

# irc3.utils.parse_config's DEFAULT section (see bot_section).
_IRC3_DEFAULTS_KEYS = ("here", "hash", "#", "##")

#: deploybot's numbers in ``[bot]`` (README, ``deploybot run``) and their defaults: output
#: pacing (lines at once, lines per second) and seconds.
BOT_NUMBERS: Mapping[str, float] = MappingProxyType(
    {
        "throttle_burst": 4.0,
        "throttle_rate": 1.0,
        "ping_interval": 30.0,
        "hang_timeout": 90.0,
        "reconnect_delay": 1.0,
        "reconnect_max_delay": 60.0,
        "reconnect_reset_after": 60.0,
        "reply_ttl": 60.0,
        "join_timeout": 15.0,
        "quit_timeout": 3.0,
        "connect_timeout": 30.0,
        "late_after": 120.0,
        "flush_timeout": 3.0,
    }
)
#: Where the SASL secret is: at most one of them (``sasl_password`` inline is discouraged).
BOT_SECRET_KEYS = (
    "sasl_password",
    "sasl_password_file",
    "sasl_password_env",
    "sasl_password_credential",
)
#: Where the webhook secret is: at most one of them.
WEBHOOK_SECRET_KEYS = ("webhook_secret", "webhook_secret_file", "webhook_secret_credential")
#: The variable systemd sets to the directory of a service's credentials (``LoadCredential=``).
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
#: Every ``[bot]`` key deploybot itself reads.
BOT_KEYS: tuple[str, ...] = (
    "sasl_username",
    *BOT_SECRET_KEYS,
    "allow_plaintext_sasl",
    *BOT_NUMBERS,
)
#: irc3's own ``[bot]`` keys (irc3/base.py and irc3/__init__.py defaults, and what its
#: core reads); they go to irc3 (only ``port`` and ``ssl`` are checked here).
IRC3_KEYS = (
    "nick",
    "host",
    "port",
    "ssl",
    "ssl_verify",
    "autojoins",
    "includes",
    "username",
    "realname",
    "password",
    "passwords",
    "vhost",
    "mode",
    "encoding",
    "timeout",
    "max_lag",
    "max_length",
    "flood_burst",
    "flood_rate",
    "flood_rate_delay",
    "ctcp",
    "url",
    "verbose",
    "debug",
    "level",
    "autojoin_delay",
    "storage",
)
# A key starting so is deploybot's, never irc3's: if it is not one of BOT_KEYS, it is a typo.
_BOT_PREFIXES = ("sasl_", "throttle_", "reconnect_")


class InvalidConfig(ConfigError):
    """Every problem found in one section of a configuration, reported together.

    ``.problems`` holds each as an :class:`~deploybot.errors.Problem` (``key`` is the
    bare key of ``.section``, empty for a problem with the file as a whole; ``line`` is 0
    when unknown).  ``.key``, ``.message`` and ``.file`` are the first problem's.  The text
    has one line per problem: ``FILE:LINE: [SECTION] KEY: message``.
    """

    def __init__(
        self, problems: Sequence[Problem], file: str | None = None, *, section: str = SECTION
    ) -> None:
        if not problems:
            raise ValueError("InvalidConfig needs at least one problem")
        self.problems = tuple(problems)
        self.section = section
        first = self.problems[0]
        super().__init__(first.key, first.message, file)
        self.args = ("\n".join(_describe(p, file, section) for p in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])


def _describe(problem: Problem, file: str | None, section: str) -> str:
    if file:
        where = f"{file}:{problem.line}: " if problem.line else f"{file}: "
    else:
        where = f"line {problem.line}: " if problem.line else ""
    what = f"[{section}] {problem.key}: " if problem.key else ""
    return f"{where}{what}{problem.message}"


#: The kinds of address a person has on a network other than IRC, as admin rules name them
#: (``mxid:@pingou:fedora.im``); a sender from such a network carries one
#: (:attr:`deploybot.commands.base.Request.address`) and only rules of its kind match it.
ADDRESS_KINDS = ("mxid",)
_ADDRESS = {"mxid": re.compile(r"@[^\s:@]+:[^\s:@]+(?::[0-9]{1,5})?")}
_AddressKind = Literal["mxid"]


@dataclass(frozen=True)
class Address:
    """A person's address on a network, as that network authenticated it: ``kind`` is how
    admin rules name such addresses (:data:`ADDRESS_KINDS`), ``value`` the address itself
    (``mxid``, ``@pingou:fedora.im``).  An IRC sender has none: IRC names people by
    services account and hostmask (``account:``, ``mask:``)."""

    kind: _AddressKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class AdminRule:
    """Who is an admin: a services ``account`` name, a hostmask ``mask`` (IRC), or an
    address on another network (``mxid``: a user ID such as ``@pingou:fedora.im``,
    compared exactly).

    Masks use IRC wildcards only: ``*`` (any run of characters) and ``?`` (one
    character).  Case is ignored the way the server ignores it (its CASEMAPPING,
    :mod:`deploybot.casemapping`), never with Unicode folding: ``mask:pingou!*@*`` does
    not cover ``pıngou`` (dotless ı), ``account:strasse`` is not ``straße``.  A sender with
    an :class:`Address` is matched by rules of that address's kind only, never by
    ``account:`` or ``mask:``; an IRC sender never by an address rule.
    """

    kind: Literal["account", "mask", "mxid"]
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    def matches(
        self,
        account: str | None,
        hostmask: str,
        casemapping: str = DEFAULT_CASEMAPPING,
        address: Address | None = None,
    ) -> bool:
        """Whether a user logged in as ``account`` (None: not logged in) with
        ``hostmask`` (``nick!user@host``) is covered by this rule, on a server with
        ``casemapping``; or, for a sender from another network, its ``address``."""
        if address is not None:
            return self.kind == address.kind and self.value == address.value
        if self.kind == "account":
            return account is not None and irc_equal(account, self.value, casemapping)
        if self.kind != "mask":
            return False
        pattern = _mask_regex(irc_fold(self.value, casemapping))
        return pattern.fullmatch(irc_fold(hostmask, casemapping)) is not None


def _mask_regex(mask: str) -> re.Pattern[str]:
    """The wildcards of an (already folded) mask as a case-sensitive pattern."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    return re.compile(pattern, re.DOTALL)


@dataclass(frozen=True)
class Config:
    """The validated ``[deploybot]`` section; one field per key (see :data:`KEY_HELP`)."""

    plans_dir: Path = Path("deploy-plans")
    #: None: no freezes file.
    freezes: Path | None = None
    #: Empty: no freeze calendar.
    freeze_calendar: str = ""
    freeze_calendar_refresh: timedelta = timedelta(hours=1)
    #: An SQLite file, or a ``postgresql://USER@HOST:PORT/DBNAME`` URL (text, no password).
    database: Path | str = Path("deploybot.sqlite3")
    #: The file holding the PostgreSQL password (:func:`database_password` reads it).
    database_password_file: Path | None = None
    #: Seconds a write waits for a lock held by another connection, then fails whole
    #: (:class:`~deploybot.store.StoreBusyError`: "database busy, try again").
    database_busy_timeout: float = 0.5
    #: PostgreSQL: seconds the active instance's lease lasts without a renewal; a standby
    #: takes over after that (:mod:`deploybot.store.leader`).
    ha_lease_timeout: float = 10.0
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    #: The name ``timezone`` was given as (``ZoneInfo.key`` of the field above).
    tz_name: str = "UTC"
    admin_channel: str = "#fedora-admin"
    announce_channels: tuple[str, ...] = ("#fedora-admin",)
    firefight_channel: str = "#{service}-firefight"
    #: Sorted longest first, no duplicates.
    countdowns: tuple[timedelta, ...] = parse_countdowns(DEFAULT_COUNTDOWNS)
    notice_days: int = 14
    digest_time: time = time(22, 0)
    page_escalate_after: timedelta = timedelta(minutes=10)
    countdown_late_after: timedelta = timedelta(minutes=1)
    max_notes_per_incident: int = 200
    command_flood_limit: int = 5
    command_flood_window: timedelta = timedelta(seconds=10)
    command_flood_ignore: timedelta = timedelta(minutes=1)
    page_flood_limit: int = 3
    page_flood_total: int = 20
    page_flood_window: timedelta = timedelta(minutes=10)
    uses_flood_limit: int = 3
    uses_flood_total: int = 30
    uses_flood_window: timedelta = timedelta(minutes=10)
    admins: tuple[AdminRule, ...] = (
        AdminRule("account", "pingou"),
        AdminRule("mask", "*!*@fedora/sysadmin/*"),
    )
    #: Empty: no fedmsg bus.
    fedmsg_endpoints: tuple[str, ...] = ()
    fedmsg_topic_prefix: str = "org.fedoraproject"
    fedmsg_environment: _Environment = "prod"
    fedmsg_validate_signatures: bool = False
    fedmsg_ca_cert: Path | None = None
    fedmsg_crl: Path | None = None
    fedmsg_receive_queue: int = 100
    #: Empty: no AMQP.  Not shown in repr (it may hold a password).
    amqp_url: str = field(default="", repr=False)
    #: Empty: a private (server-named) queue.
    amqp_queue: str = ""
    amqp_bindings: tuple[str, ...] = ("org.fedoraproject.*.ansible.#",)
    #: Publish deploybot.* messages to the broker of ``amqp_url`` (which it requires).
    amqp_publish: bool = False
    web_host: str = "127.0.0.1"
    #: 0: no web server.
    web_port: int = 8080
    #: Host names (lower case) a request's Host header may name besides web_host.
    web_public_names: tuple[str, ...] = ()
    #: None: the pages and the API ask for no token.
    web_read_token_file: Path | None = None
    #: The secret itself; with ``webhook_secret_file`` or ``webhook_secret_credential`` it
    #: is empty until :func:`resolve_webhook_secret` reads it (``deploybot run`` does).
    webhook_secret: str = field(default="", repr=False)
    webhook_secret_file: Path | None = None
    webhook_secret_credential: str = ""
    probe_timeout: timedelta = timedelta(seconds=10)
    #: Bytes.
    probe_max_size: int = 8 * 1024 * 1024
    probe_concurrency: int = 4
    #: None: no token for that environment.
    probe_token_file_staging: Path | None = None
    probe_token_file_production: Path | None = None

    @classmethod
    def defaults(cls) -> Config:
        """The configuration of an empty ``[deploybot]`` section (paths left relative)."""
        return config_from_mapping({})

    def firefight_channel_for(self, service: str, plan_id: str) -> str:
        """The firefighting channel of a plan, from the ``firefight_channel`` pattern.

        Raises :class:`ValueError` if ``service`` or ``plan_id`` make it no channel name
        (e.g. they contain a space).
        """
        name = self.firefight_channel.format(service=service, id=plan_id)
        problem = _channel_problem(name)
        if problem:
            raise ValueError(f"{name!r} is not a channel name: {problem}")
        return name

    def is_admin(
        self,
        account: str | None,
        hostmask: str,
        casemapping: str = DEFAULT_CASEMAPPING,
        address: Address | None = None,
    ) -> bool:
        """Whether a user (services ``account`` or None, ``nick!user@host``; or the
        ``address`` of a sender from another network) is an admin, names compared with the
        server's ``casemapping`` (:class:`AdminRule`)."""
        return any(rule.matches(account, hostmask, casemapping, address) for rule in self.admins)


# ---------------------------------------------------------------------------------------
# Value parsers.  Each takes the stripped text and raises _Bad with a message that
# shows the value and says what is expected.


class _Bad(Exception):
    """A value that does not parse; the message is for people."""


_T = TypeVar("_T")


@dataclass
class _Reader:
    raw: Mapping[str, str]
    base: Path | None
    lines: Mapping[str, int]
    problems: list[Problem]
    file: str
    failed: set[str] = field(default_factory=set)

    def add(self, key: str, message: str) -> None:
        self.failed.add(key)
        self.problems.append(Problem(self.file, self.lines.get(key, 0), key, message))

    def get(self, key: str, parse: Callable[[str], _T]) -> _T:
        """The parsed value of ``key``; on error, record it and return the default's."""
        text = self.raw.get(key, DEFAULTS[key])
        control = (_CONTROL_IN_LIST if key in _LIST_KEYS else _CONTROL).search(text)
        try:
            if control:
                shown = "the value" if key in _SECRET_KEYS else repr(text)
                line_break = " (a line break: the value must fit on one line)"
                raise _Bad(
                    f"{shown} contains the control character U+{ord(control[0]):04X}"
                    + (line_break if control[0] == "\n" else "")
                )
            return parse(text)
        except _Bad as bad:
            self.add(key, str(bad))
            return parse(DEFAULTS[key])

    def path(self, text: str) -> Path:
        if not text:
            raise _Bad("expected a path, got an empty value")
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # "~user/…" for a user this machine does not have
            user = text.split("/", 1)[0]
            raise _Bad(f"{text!r}: no user {user[1:]!r} on this machine for {user!r}") from None
        if self.base is not None and not path.is_absolute():
            path = self.base / path
        return path

    def optional_path(self, text: str) -> Path | None:
        return self.path(text) if text else None


def _words(text: str) -> list[str]:
    return text.split()


def _timezone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _Bad(
            f"{text!r} is not a known time zone: expected an IANA name such as UTC, "
            "Europe/Paris or America/New_York"
        ) from None


def _channel_problem(name: str) -> str | None:
    if not name.startswith(("#", "&")):
        return "a channel name starts with # or &"
    if len(name) < 2:
        return "a channel name needs at least one character after # or &"
    bad = _CHANNEL_FORBIDDEN.search(name)
    if bad:
        what = {" ": "a space", ",": "a comma"}.get(bad[0], f"U+{ord(bad[0]):04X}")
        return f"a channel name cannot contain {what}"
    return None


def _channel(text: str) -> str:
    problem = _channel_problem(text)
    if problem:
        hint = " (one channel only)" if text.startswith(("#", "&")) and " " in text else ""
        raise _Bad(f"{text!r} is not a channel: {problem}{hint}")
    return text


def _channels(text: str) -> tuple[str, ...]:
    if "," in text:
        raise _Bad(f"{text!r}: separate channels with spaces, not commas")
    seen: dict[str, str] = {}
    for word in _words(text):
        problem = _channel_problem(word)
        if problem:
            raise _Bad(f"{word!r} is not a channel: {problem}")
        seen.setdefault(word.casefold(), word)
    return tuple(seen.values())


def _firefight_channel(text: str) -> str:
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None
        ]
    except ValueError as error:
        raise _Bad(
            f"{text!r} is not a pattern: {error} (write {{service}} or {{id}}, "
            "and nothing else in braces)"
        ) from None
    for name, spec, conversion in fields:
        if name not in _PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            raise _Bad(f"{text!r}: unknown placeholder {shown}: use {{service}} or {{id}}")
    if not fields:
        raise _Bad(
            f"{text!r} has no placeholder: include {{service}} (or {{id}}) so each deploy "
            "gets its own channel, e.g. #{service}-firefight"
        )
    sample = text.format(service="pkgdb2", id="pkgdb2-2.0")
    problem = _channel_problem(sample)
    if problem:
        raise _Bad(f"{text!r} does not make a channel (e.g. {sample!r}): {problem}")
    return text


def _countdowns(text: str) -> tuple[timedelta, ...]:
    try:
        return parse_countdowns(text)
    except DurationError as error:
        raise _Bad(str(error)) from None


def _whole_number(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise _Bad(f"{text!r} is not {what}: expected a whole number such as 14")
    return int(text)


def _notice_days(text: str) -> int:
    days = _whole_number(text, "a number of days")
    if days > 3650:
        raise _Bad(f"{text!r}: expected at most 3650 days")
    return days


def _count(what: str, most: int = 100_000) -> Callable[[str], int]:
    """A parser of a limit, a whole number of ``what`` from 1 to ``most``."""

    def parse(text: str) -> int:
        count = _whole_number(text, f"a number of {what}")
        if not 1 <= count <= most:
            raise _Bad(f"{text!r}: expected 1 to {most} {what}")
        return count

    return parse


def _receive_queue(text: str) -> int:
    messages = _whole_number(text, "a number of messages")
    if not 1 <= messages <= 100_000:
        raise _Bad(f"{text!r}: expected 1 to 100000 messages")
    return messages


def _digest_time(text: str) -> time:
    match = _DIGEST_TIME.fullmatch(text)
    hour, minute, second = (
        (int(match[1]), int(match[2]), int(match[3] or 0)) if match else (99, 99, 99)
    )
    if hour > 23 or minute > 59 or second > 59:
        raise _Bad(f"{text!r} is not a time of day: expected HH:MM from 00:00 to 23:59")
    return time(hour, minute, second)


def _positive_duration(examples: str) -> Callable[[str], timedelta]:
    """A parser of a duration longer than 0 whose errors suggest `examples` ("10m or 1h")."""

    def parse(text: str) -> timedelta:
        try:
            delay = parse_duration(text)
        except DurationError as error:
            raise _Bad(f"expected a duration such as {examples}: {error}") from None
        if not delay:
            first = examples.split()[0]
            raise _Bad(f"{text!r}: expected a duration longer than 0, such as {first}")
        return delay

    return parse


def _probe_timeout(text: str) -> timedelta:
    delay = _positive_duration("10s or 1m")(text)
    if delay > timedelta(minutes=10):
        raise _Bad(f"{text!r}: expected at most 10m")
    return delay


_SIZE = re.compile(r"([0-9]+)\s*(B|KiB|MiB)?")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024 * 1024}


def _size(text: str) -> int:
    """``8MiB``, ``512KiB``, ``65536`` (bytes): from 1 KiB to 1 GiB."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise _Bad(f"{text!r} is not a size: expected e.g. 8MiB, 512KiB or 65536 (bytes)")
    size = int(match[1]) * _SIZE_UNITS[match[2]]
    if not 1024 <= size <= 1024**3:
        raise _Bad(f"{text!r}: expected 1KiB to 1024MiB")
    return size


def read_token_file(
    path: str | os.PathLike[str], key: str, *, min_length: int = 1, hint: str = ""
) -> str:
    """The token in a file (one line, surrounding blanks ignored); a
    :class:`~deploybot.errors.ConfigError` naming ``key`` when the file cannot be read or
    holds no token of ``min_length`` printable characters without spaces (``hint`` says
    how to make one).  The content is never shown."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read(4096)
    except UnicodeDecodeError:
        raise ConfigError(key, f"cannot read {os.fspath(path)}: not UTF-8 text") from None
    except OSError as error:
        reason = os.strerror(error.errno).lower() if error.errno else "cannot read it"
        raise ConfigError(key, f"cannot read {os.fspath(path)}: {reason}") from None
    token = text.strip()
    if len(token) < min_length or any(c.isspace() or not c.isprintable() for c in token):
        length = "" if min_length <= 1 else f" of {min_length} printable characters or more"
        raise ConfigError(
            key,
            f"{os.fspath(path)} does not hold a token{length} without spaces{hint}",
        )
    return token


def _admins(text: str) -> tuple[AdminRule, ...]:
    rules: dict[AdminRule, None] = {}
    for word in _words(text):
        kind, sep, value = word.partition(":")
        if sep and value and kind == "account":
            rules[AdminRule("account", value)] = None
        elif sep and kind == "mask" and re.fullmatch(r"[^!@]+![^!@]+@[^!@]+", value):
            rules[AdminRule("mask", value)] = None
        elif sep and kind == "mxid" and _ADDRESS["mxid"].fullmatch(value):
            rules[AdminRule("mxid", value)] = None
        else:
            raise _Bad(
                f"bad entry {word!r}: expected account:NAME (a services account), "
                "mask:NICK!USER@HOST (wildcards * and ?) or mxid:@NAME:SERVER "
                "(a user ID on another network)"
            )
    return tuple(rules)


def _fedmsg_endpoints(text: str) -> tuple[str, ...]:
    endpoints: dict[str, None] = {}
    for word in _words(text):
        tcp = _TCP_ENDPOINT.fullmatch(word)
        ok = (tcp is not None and 0 < int(tcp[1]) <= 65535) or (
            word.startswith(("ipc://", "inproc://")) and len(word.partition("://")[2]) > 0
        )
        if not ok:
            raise _Bad(
                f"{word!r} is not a ZeroMQ endpoint: expected tcp://HOST:PORT "
                "(e.g. tcp://hub.fedoraproject.org:9940), ipc://PATH or inproc://NAME"
            )
        endpoints[word] = None
    return tuple(endpoints)


def _token(text: str, what: str) -> str:
    if any(c.isspace() for c in text):
        raise _Bad(f"{text!r} is not {what}: it cannot contain spaces")
    return text


def _environment(text: str) -> _Environment:
    if text in _ENVIRONMENTS:
        return _ENVIRONMENTS[text]
    raise _Bad(f"{text!r} is not an environment: expected one of {', '.join(_ENVIRONMENTS)}")


def parse_flag(value: object) -> bool:
    """A yes/no value: ``true/yes/on/1`` or ``false/no/off/0`` (any case), or a bool.

    >>> parse_flag("Yes"), parse_flag("off"), parse_flag(True)
    (True, False, True)
    >>> parse_flag("ture")
    Traceback (most recent call last):
    ValueError: 'ture' is not a yes/no value: expected true or false (or yes/no, on/off, 1/0)
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(
        f"{value!r} is not a yes/no value: expected true or false (or yes/no, on/off, 1/0)"
    )


def positive_number(value: str | float) -> float:
    """A number above 0 (``[bot]``'s pacing and seconds), from text or a number.

    >>> positive_number("1.5"), positive_number(4)
    (1.5, 4.0)
    >>> positive_number("0")
    Traceback (most recent call last):
    ValueError: must be positive, not '0'
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds/lines, not {value!r}") from None
    if not number > 0:
        raise ValueError(f"must be positive, not {value!r}")
    return number


def tcp_port(value: str | int) -> int:
    """A TCP port, 1 to 65535, from text or a number.

    >>> tcp_port("6697")
    6697
    >>> tcp_port("66970")
    Traceback (most recent call last):
    ValueError: expected a TCP port number, not '66970'
    """
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"expected a TCP port number, not {value!r}")
    return port


def _boolean(text: str) -> bool:
    try:
        return parse_flag(text)
    except ValueError as error:
        raise _Bad(str(error)) from None


def _amqp_url(text: str) -> str:
    if text and not text.startswith(("amqp://", "amqps://")):
        # The value may hold a password: show only its scheme.
        scheme = text.partition("://")[0] if "://" in text else text[:10] + "…"
        raise _Bad(
            f"a URL starting with {scheme!r}: expected amqp://… or amqps://… "
            "(or nothing, to turn AMQP off)"
        )
    if any(c.isspace() for c in text):
        raise _Bad("the URL cannot contain spaces")
    host_and_after = text.partition("://")[2]
    authority = re.split(r"[/?#]", host_and_after, maxsplit=1)[0]
    if "@" in host_and_after[len(authority) :]:
        # The password holds a / ? or #: parsers end the host there, and the rest of the
        # password would be read (and logged) as the path.  The value is not shown.
        raise _Bad(
            "an '@' after the host: percent-encode '/', '?', '#' and '@' in the user name "
            "and password (%2F, %3F, %23, %40), e.g. amqps://user:pa%2Fss@host/vhost"
        )
    return text


def _busy_timeout(text: str) -> float:
    """Seconds, 0 to :data:`MAX_BUSY_TIMEOUT`: the loop stops that long per locked write."""
    try:
        seconds = float(text) if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) else -1.0
    except ValueError:  # pragma: no cover - the pattern only lets numbers through
        seconds = -1.0
    if not 0 <= seconds <= MAX_BUSY_TIMEOUT:
        raise _Bad(
            f"{text!r}: expected seconds from 0 to {MAX_BUSY_TIMEOUT:g}, such as 0.5 "
            "(every command and event waits while a write waits)"
        )
    return seconds


def _lease_timeout(text: str) -> float:
    """Seconds, :data:`MIN_LEASE_TIMEOUT` to :data:`MAX_LEASE_TIMEOUT`."""
    seconds = float(text) if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) else -1.0
    if not MIN_LEASE_TIMEOUT <= seconds <= MAX_LEASE_TIMEOUT:
        raise _Bad(
            f"{text!r}: expected seconds from {MIN_LEASE_TIMEOUT:g} to "
            f"{MAX_LEASE_TIMEOUT:g}, such as 10 (a standby takes over after that long "
            "without a renewal)"
        )
    return seconds


def _bindings(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_words(text)))


def _web_host(text: str) -> str:
    if not text:
        raise _Bad("expected an address such as 127.0.0.1 or ::1, got an empty value")
    return _token(text, "an address")


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
)


def _web_public_names(text: str) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for word in _words(text):
        name = word.lower().removesuffix(".")
        if not _HOST_NAME.fullmatch(name):
            raise _Bad(
                f"{word!r} is not a host name: expected names such as deploybot.example.org "
                "(no scheme, port or path)"
            )
        names[name] = None
    return tuple(names)


def _webhook_secret(text: str) -> str:
    size = len(text.encode("utf-8"))
    if 0 < size < MIN_WEBHOOK_SECRET:
        # The value is not shown, only its size.
        raise _Bad(
            f"the secret is {size} bytes: use at least {MIN_WEBHOOK_SECRET} "
            "(e.g. the output of: openssl rand -hex 32), or nothing to turn the webhook off"
        )
    return text


def _http_url(text: str) -> str:
    if text and (
        not text.startswith(("http://", "https://"))
        or any(c.isspace() for c in text)
        or len(text.partition("://")[2]) == 0
    ):
        raise _Bad(f"{text!r} is not an http:// or https:// URL (or nothing, for no calendar)")
    return text


_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,254}")


def credential_name_problem(text: str) -> str | None:
    """Why ``text`` is not the name of a systemd credential (a file name in
    ``$CREDENTIALS_DIRECTORY``: letters, digits, ``_ . @ -``, not starting with a dot), or
    None.

    >>> credential_name_problem("webhook-secret") is None
    True
    >>> credential_name_problem("../x").split(":")[0]
    "'../x' is not a credential name"
    """
    if _CREDENTIAL_NAME.fullmatch(text):
        return None
    return (
        f"{text!r} is not a credential name: expected the NAME of LoadCredential=NAME:FILE "
        "(letters, digits, _ . @ -, not starting with a dot)"
    )


def _credential_name(text: str) -> str:
    if text and (problem := credential_name_problem(text)):
        raise _Bad(problem)
    return text


def credential_path(name: str, environ: Mapping[str, str]) -> Path:
    """The file of systemd credential ``name``: ``$CREDENTIALS_DIRECTORY/name``.
    :class:`ValueError` (for people) when the variable is not set."""
    directory = environ.get(CREDENTIALS_ENV, "")
    if not directory:
        raise ValueError(
            f"${CREDENTIALS_ENV} is not set: systemd sets it for a service with "
            f"LoadCredential={name}:FILE (see contrib/deploybot.service)"
        )
    return Path(directory) / name


def read_secret_file(path: str | os.PathLike[str]) -> str:
    """The secret held in the file ``path``: its text without one trailing line break.
    :class:`ValueError` (for people, never showing the content) when the file cannot be
    read, is not UTF-8 or is empty."""
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1 << 16)
    except OSError as error:
        reason = error.strerror or "cannot read it"
        raise ValueError(f"cannot read {shown}: {reason}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{shown} is not UTF-8 text") from None
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ValueError(f"{shown} is empty")
    return secret


def resolve_webhook_secret(
    config: Config, environ: Mapping[str, str], file: str | None = None
) -> Config:
    """``config`` with ``webhook_secret`` read from ``webhook_secret_file`` or the systemd
    credential ``webhook_secret_credential`` (unchanged when neither is set).
    :class:`~deploybot.errors.ConfigError` naming the key (and ``file``) when the secret
    cannot be read or is shorter than :data:`MIN_WEBHOOK_SECRET` bytes."""
    if config.webhook_secret_file is not None:
        key, path = "webhook_secret_file", config.webhook_secret_file
    elif config.webhook_secret_credential:
        key = "webhook_secret_credential"
        try:
            path = credential_path(config.webhook_secret_credential, environ)
        except ValueError as error:
            raise ConfigError(key, str(error), file) from None
    else:
        return config
    try:
        secret = _webhook_secret(read_secret_file(path))
    except (ValueError, _Bad) as error:
        raise ConfigError(key, str(error), file) from None
    return replace(config, webhook_secret=secret)


#: The schemes of a PostgreSQL ``database`` (any other value is an SQLite file's path).
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def _database(text: str, reader: _Reader) -> Path | str:
    """An SQLite file's path, or a PostgreSQL URL: ``postgresql://USER@HOST:PORT/DBNAME``
    with a host and a database name and no password (it would be logged and shown)."""
    if not text.startswith(POSTGRESQL_SCHEMES):
        return reader.path(text)
    parts = urllib.parse.urlsplit(text)
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError:
        raise _Bad(f"{text!r}: the port is not a number") from None
    if parts.password is not None:
        raise _Bad(
            "a password in the URL would be logged and shown: put it in "
            "database_password_file (or PGPASSWORD, ~/.pgpass)"
        )
    if not parts.hostname or not parts.path.strip("/"):
        raise _Bad(f"{text!r}: expected postgresql://USER@HOST:PORT/DBNAME")
    return text


def database_password(config: Config, file: str | None = None) -> str | None:
    """The PostgreSQL password held in ``database_password_file`` (None when unset: libpq
    then reads PGPASSWORD or ~/.pgpass).  :class:`~deploybot.errors.ConfigError` naming
    the key (and ``file``) when it cannot be read or is empty; the content is never shown."""
    if config.database_password_file is None:
        return None
    try:
        return read_secret_file(config.database_password_file)
    except ValueError as error:
        raise ConfigError("database_password_file", str(error), file) from None


def _web_port(text: str) -> int:
    port = _whole_number(text, "a port")
    if port > 65535:
        raise _Bad(f"{text!r} is not a port: expected 0 to 65535 (0: no web server)")
    return port


# ---------------------------------------------------------------------------------------


def _as_text(value: object) -> str | None:
    """A mapping value as ini text; None if it is not text, a number, a bool or a list."""
    if isinstance(value, str):
        return value.strip(" \t")  # a CR or LF at the ends is still an error
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return " ".join(v.strip(" \t") for v in value)
    return None


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, VALID_KEYS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown key{hint}; valid keys: {', '.join(VALID_KEYS)}"


def config_from_mapping(
    mapping: Mapping[str, object],
    file: str | os.PathLike[str] | None = None,
    *,
    lines: Mapping[str, int] | None = None,
) -> Config:
    """Validate a ``[deploybot]`` section given as a mapping of key to text.

    Missing keys take their default (:data:`DEFAULTS`).  ``file``, if given, is named in
    errors and its directory is the base for relative paths; without it, relative paths
    stay relative.  ``lines`` maps keys to line numbers for error messages.  Values may also
    be ints, bools or lists of strings (joined with spaces).  Raises :class:`InvalidConfig`
    listing every problem.

    Do not feed it irc3's parsed copy of ``[deploybot]``: irc3 keeps ``; comments`` in
    values.  Use :func:`load_config` for files.
    """
    file_name = os.fspath(file) if file is not None else None
    base = Path(os.path.abspath(os.path.expanduser(file_name))).parent if file_name else None
    problems: list[Problem] = []
    raw: dict[str, str] = {}
    reader = _Reader(raw, base, lines or {}, problems, file_name or "")
    for key, value in mapping.items():
        text = _as_text(value)
        if key not in _KEYS:
            reader.add(key, _unknown_key_message(key))
        elif text is None:
            reader.add(key, f"expected text, got {type(value).__name__} {value!r}")
        else:
            raw[key] = text

    get = reader.get
    timezone = get("timezone", _timezone)
    config = Config(
        plans_dir=get("plans_dir", reader.path),
        freezes=get("freezes", reader.optional_path),
        freeze_calendar=get("freeze_calendar", _http_url),
        freeze_calendar_refresh=get("freeze_calendar_refresh", _positive_duration("1h or 6h")),
        database=get("database", lambda text: _database(text, reader)),
        database_password_file=get("database_password_file", reader.optional_path),
        database_busy_timeout=get("database_busy_timeout", _busy_timeout),
        ha_lease_timeout=get("ha_lease_timeout", _lease_timeout),
        timezone=timezone,
        tz_name=timezone.key,
        admin_channel=get("admin_channel", _channel),
        announce_channels=get("announce_channels", _channels),
        firefight_channel=get("firefight_channel", _firefight_channel),
        countdowns=get("countdowns", _countdowns),
        notice_days=get("notice_days", _notice_days),
        digest_time=get("digest_time", _digest_time),
        page_escalate_after=get("page_escalate_after", _positive_duration("10m or 1h")),
        countdown_late_after=get("countdown_late_after", _positive_duration("1m or 30s")),
        max_notes_per_incident=get("max_notes_per_incident", _count("notes")),
        command_flood_limit=get("command_flood_limit", _count("commands")),
        command_flood_window=get("command_flood_window", _positive_duration("10s or 1m")),
        command_flood_ignore=get("command_flood_ignore", _positive_duration("1m or 5m")),
        page_flood_limit=get("page_flood_limit", _count("pages")),
        page_flood_total=get("page_flood_total", _count("pages")),
        page_flood_window=get("page_flood_window", _positive_duration("10m or 1h")),
        uses_flood_limit=get("uses_flood_limit", _count("registrations")),
        uses_flood_total=get("uses_flood_total", _count("registrations")),
        uses_flood_window=get("uses_flood_window", _positive_duration("10m or 1h")),
        admins=get("admins", _admins),
        fedmsg_endpoints=get("fedmsg_endpoints", _fedmsg_endpoints),
        fedmsg_topic_prefix=get("fedmsg_topic_prefix", lambda t: _token(t, "a topic prefix")),
        fedmsg_environment=get("fedmsg_environment", _environment),
        fedmsg_validate_signatures=get("fedmsg_validate_signatures", _boolean),
        fedmsg_ca_cert=get("fedmsg_ca_cert", reader.optional_path),
        fedmsg_crl=get("fedmsg_crl", reader.optional_path),
        fedmsg_receive_queue=get("fedmsg_receive_queue", _receive_queue),
        amqp_url=get("amqp_url", _amqp_url),
        amqp_queue=get("amqp_queue", lambda t: _token(t, "a queue name")),
        amqp_bindings=get("amqp_bindings", _bindings),
        amqp_publish=get("amqp_publish", _boolean),
        web_host=get("web_host", _web_host),
        web_port=get("web_port", _web_port),
        web_public_names=get("web_public_names", _web_public_names),
        web_read_token_file=get("web_read_token_file", reader.optional_path),
        webhook_secret=get("webhook_secret", _webhook_secret),
        webhook_secret_file=get("webhook_secret_file", reader.optional_path),
        webhook_secret_credential=get("webhook_secret_credential", _credential_name),
        probe_timeout=get("probe_timeout", _probe_timeout),
        probe_max_size=get("probe_max_size", _size),
        probe_concurrency=get("probe_concurrency", _count("requests", 64)),
        probe_token_file_staging=get("probe_token_file_staging", reader.optional_path),
        probe_token_file_production=get("probe_token_file_production", reader.optional_path),
    )
    webhook_sources = [key for key in WEBHOOK_SECRET_KEYS if raw.get(key, "")]
    if len(webhook_sources) > 1:
        reader.add(webhook_sources[1], f"set only one of {', '.join(webhook_sources)}")
    if (
        config.fedmsg_validate_signatures
        and config.fedmsg_ca_cert is None
        and not {"fedmsg_validate_signatures", "fedmsg_ca_cert"} & reader.failed
    ):
        reader.add(
            "fedmsg_ca_cert",
            "required when fedmsg_validate_signatures is true: "
            "the CA certificate that signed the bus certificates",
        )
    if config.amqp_publish and not config.amqp_url and not {"amqp_url"} & reader.failed:
        reader.add(
            "amqp_publish",
            "true needs amqp_url: the broker to publish deploybot's messages to",
        )
    if problems:
        problems.sort(key=lambda problem: problem.line)  # file order when lines are known
        raise InvalidConfig(problems, file_name)
    return config


# ---------------------------------------------------------------------------------------
# The file.


def _read_text(path: Path, file: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = "configuration file not found"
    except UnicodeDecodeError as error:
        message = f"not UTF-8 text ({error.reason} at byte {error.start})"
    except OSError as error:
        message = f"cannot read the configuration file: {error.strerror or error}"
    raise InvalidConfig([Problem(file, 0, "", message)], file)


def _parse_error(error: configparser.Error, file: str, text: str) -> InvalidConfig:
    lines = text.splitlines()

    def line(number: int) -> str:
        return lines[number - 1].strip() if 0 < number <= len(lines) else ""

    problems: list[Problem]
    if isinstance(error, configparser.DuplicateOptionError):
        key = error.option if error.section == SECTION else ""
        where = "" if key else f" in [{error.section}]"
        message = f"{error.option!r} is given twice{where}; keep one"
        problems = [Problem(file, error.lineno or 0, key, message)]
    elif isinstance(error, configparser.DuplicateSectionError):
        message = f"section [{error.section}] appears twice; merge them"
        problems = [Problem(file, error.lineno or 0, "", message)]
    elif isinstance(error, configparser.MissingSectionHeaderError):
        message = f"{line(error.lineno)!r} comes before any [section] header"
        problems = [Problem(file, error.lineno, "", message)]
    elif isinstance(error, configparser.ParsingError):
        problems = [
            Problem(file, lineno, "", f"not INI syntax (expected key = value): {line(lineno)!r}")
            for lineno, _ in error.errors
        ]
    else:
        problems = [Problem(file, 0, "", f"not a valid INI file: {error.message}")]
    return InvalidConfig(problems, file)


def _read_ini(file: str, parser: configparser.ConfigParser) -> str:
    """Read ``file`` into ``parser`` (keys case-sensitive); return the text."""
    text = _read_text(Path(file), file)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=file)
    except configparser.Error as error:
        raise _parse_error(error, file, text) from None
    return text


_HEADER = re.compile(r"\[(?P<name>[^]]+)\]")
_OPTION = re.compile(r"(?P<key>[^=:\s;#][^=:]*?)\s*[=:]")
_SWALLOWED = re.compile(r"#[^\s=:;]+(?:\s+[#&][^\s=:;]+)*")


def _scan_section(
    text: str, name: str = SECTION
) -> tuple[dict[str, int], list[tuple[str, int, str]]]:
    """Line numbers of the keys of section ``name``, and indented ``#channel`` lines that
    configparser would drop as comments (key, line, text)."""
    lines: dict[str, int] = {}
    swallowed: list[tuple[str, int, str]] = []
    section: str | None = None
    key: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = _HEADER.fullmatch(stripped)
        if header and not line[:1].isspace():
            section, key = header["name"].strip(), None
            continue
        if section != name or not stripped:
            continue
        if not line[:1].isspace():
            option = _OPTION.match(line)
            if option:
                key = option["key"]
                lines.setdefault(key, number)
        elif key is not None and _SWALLOWED.fullmatch(stripped):
            swallowed.append((key, number, stripped))
    return lines, swallowed


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read ``[deploybot]`` from the ini file at ``path`` and validate it (see module doc).

    Raises :class:`InvalidConfig` (a :class:`~deploybot.errors.ConfigError`) naming the
    file, and the line and key where known, for every problem found.
    """
    file = os.fspath(path)
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    text = _read_ini(file, parser)
    lines, swallowed = _scan_section(text)
    if swallowed:
        problems = [
            Problem(
                file,
                number,
                key,
                f"the indented line {shown!r} is read as a comment, not as a value: "
                "write channels on the key's own line, separated by spaces",
            )
            for key, number, shown in swallowed
        ]
        raise InvalidConfig(problems, file)
    section = dict(parser[SECTION]) if parser.has_section(SECTION) else {}
    return config_from_mapping(section, file, lines=lines)


def read_section(
    path: str | os.PathLike[str], name: str
) -> tuple[dict[str, str], dict[str, int]] | None:
    """Section ``name`` of the ini file read with ``[deploybot]``'s rules (``; comment``
    after a value, no interpolation, keys case-sensitive) and the line of each key; None
    when the file has no such section.  For the sections adapters validate themselves."""
    file = os.fspath(path)
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    text = _read_ini(file, parser)
    if not parser.has_section(name):
        return None
    return dict(parser[name]), _scan_section(text, name)[0]


def bot_section(path: str | os.PathLike[str]) -> dict[str, str]:
    """irc3's ``[bot]`` section of the ini file, unvalidated, as irc3 itself reads it.

    That is, like ``irc3.utils.parse_config`` but keeping every value a string: extended
    interpolation with ``${#}`` → ``#``, ``${hash}`` → ``#``, ``${here}`` → the file's
    directory; keys case-sensitive; **no inline comments** (``; text`` after a value is
    part of it, as for irc3); the ``${…}`` helpers themselves are not returned.  Multi-line
    values keep their line breaks (irc3 splits them into lists).  An indented line starting
    with ``#`` is a comment, hence irc3's ``${#}channel`` spelling in lists.  A missing
    ``[bot]`` section gives ``{}``.  Raises :class:`InvalidConfig` for a missing or
    malformed file or a bad ``${…}`` reference.
    """
    return _bot_section(os.fspath(path))[0]


def _bot_section(file: str) -> tuple[dict[str, str], str]:
    """:func:`bot_section`'s result, and the file's text."""
    here = os.path.dirname(os.path.abspath(file))
    defaults = {"here": here, "hash": "#", "#": "#", "##": "##"}
    parser = configparser.ConfigParser(defaults, interpolation=configparser.ExtendedInterpolation())
    text = _read_ini(file, parser)
    if not parser.has_section("bot"):
        return {}, text
    own = [key for key in parser["bot"] if key not in _IRC3_DEFAULTS_KEYS]
    result: dict[str, str] = {}
    for key in own:
        try:
            result[key] = parser.get("bot", key)
        except configparser.InterpolationError as error:
            message = f"[bot] {key}: {_interpolation_problem(error)}"
            raise InvalidConfig([Problem(file, 0, "", message)], file) from None
    return result, text


def _interpolation_problem(error: configparser.InterpolationError) -> str:
    """What is wrong with a ``${…}`` in a ``[bot]`` value, without any of the value:
    configparser's own messages quote it (``found: '$3xyz-secret'``, ``Raw value: …``),
    and the value may be a password."""
    if isinstance(error, configparser.InterpolationMissingOptionError):
        problem = "a ${…} reference names no key of the file"
    elif isinstance(error, configparser.InterpolationDepthError):
        problem = "${…} references nest too deeply"
    else:
        problem = "a '$' that is neither '$$' nor a ${key} reference"
    return f"{problem}; write $$ for a literal $ (the value is not shown: it may be secret)"


def load_bot_section(path: str | os.PathLike[str]) -> dict[str, str]:
    """:func:`bot_section`, checked by :func:`check_bot_section` (with line numbers)."""
    file = os.fspath(path)
    section, text = _bot_section(file)
    check_bot_section(section, file, lines=_scan_section(text, "bot")[0])
    return section


def check_bot_section(
    section: Mapping[str, object],
    file: str | None = None,
    *,
    lines: Mapping[str, int] | None = None,
) -> None:
    """Check the ``[bot]`` keys deploybot reads or could mistake (see the module doc);
    raise :class:`InvalidConfig` (section ``bot``) listing every problem.

    >>> check_bot_section({"nick": "deploybot", "ssl": "yes", "my_plugin_key": "on"})
    >>> try:
    ...     check_bot_section({"port": "66970", "throttle_brust": "8"}, lines={"port": 4})
    ... except InvalidConfig as error:
    ...     for problem in error.problems:
    ...         print(problem.line, problem.key, problem.message.split(";")[0])
    0 throttle_brust unknown key (did you mean throttle_burst?)
    4 port expected a TCP port number, not '66970'
    """
    lines = lines or {}
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(file or "", lines.get(key, 0), key, message))

    checks: dict[str, Callable[[Any], object]] = {
        **dict.fromkeys(BOT_NUMBERS, positive_number),
        "port": tcp_port,
        "ssl": parse_flag,
        "allow_plaintext_sasl": parse_flag,
        "sasl_password_credential": _bot_credential_name,
    }
    for key, value in section.items():
        if key in checks:
            try:
                checks[key](value)
            except ValueError as error:
                bad(key, str(error))
        elif key not in BOT_KEYS and key not in IRC3_KEYS:
            close = difflib.get_close_matches(key, (*BOT_KEYS, *IRC3_KEYS), n=1, cutoff=0.8)
            if close or key.startswith(_BOT_PREFIXES):
                hint = f" (did you mean {close[0]}?)" if close else ""
                bad(
                    key,
                    f"unknown key{hint}; deploybot's keys in [bot]: {', '.join(BOT_KEYS)}; "
                    f"irc3's: {', '.join(IRC3_KEYS)}",
                )
    given = [key for key in BOT_SECRET_KEYS if str(section.get(key) or "").strip()]
    if len(given) > 1:
        bad(given[1], f"set only one of {', '.join(given)}")
    if given and (problem := _plaintext_sasl_problem(section)):
        bad(given[0], problem)
    if problems:
        problems.sort(key=lambda problem: problem.line)
        raise InvalidConfig(problems, file, section="bot")


def _bot_credential_name(value: object) -> None:
    text = str(value).strip()
    if text and (problem := credential_name_problem(text)):
        raise ValueError(problem)


def _plaintext_sasl_problem(section: Mapping[str, object]) -> str | None:
    """Why a SASL password must not be sent with this ``[bot]`` section, or None: without
    ``ssl`` it crosses the network in clear, which is refused unless ``host`` is a
    loopback address (irc3's default ``localhost`` is) or ``allow_plaintext_sasl`` is
    true.  A malformed ``ssl`` or ``allow_plaintext_sasl`` is reported on its own."""
    try:
        if parse_flag(section.get("ssl", False)) or parse_flag(
            section.get("allow_plaintext_sasl", False)
        ):
            return None
    except ValueError:
        return None
    host = str(section.get("host") or "localhost").strip()
    if _is_loopback(host):
        return None
    return (
        f"SASL over plaintext refused: with ssl = false the password would cross the network "
        f"to {host} in clear; set ssl = true (and the server's TLS port, usually 6697), or "
        "allow_plaintext_sasl = true if you accept that (only a loopback host is allowed "
        "without TLS)"
    )


def _is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1); no name is resolved.

    >>> _is_loopback("127.0.0.1"), _is_loopback("[::1]"), _is_loopback("irc.libera.chat")
    (True, True, False)
    """
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
