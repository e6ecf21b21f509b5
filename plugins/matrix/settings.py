"""The ``[matrix]`` and ``[matrix.people]`` sections of ``bot.ini`` (SPEC §7), validated
like ``[deploybot]``: every problem at once, each as ``FILE:LINE: [matrix] KEY: message``.

``[matrix]`` switches the Matrix network on (no section: the bot is not on Matrix):

* ``homeserver`` — the client-server API's base URL (``https://matrix.fedoraproject.org``);
* ``user_id`` — the bot's Matrix ID (``@deploybot:fedoraproject.org``);
* ``access_token_file`` — a file holding the bot's access token, **or**
  ``access_token_credential`` — the name of a systemd credential holding it
  (``LoadCredential=NAME:FILE``, read from ``$CREDENTIALS_DIRECTORY``), **or** ``password_file``
  — a file holding its password: the bot logs in once with ``device_name`` and keeps the
  token and device in its database (the next start reuses them);
* ``device_name`` — the device's display name for a password login (``deploybot``);
* ``room_alias_server`` — channels in plans and config are room aliases on this server
  (``#fedora-admin`` → ``#fedora-admin:SERVER``; default: the server of ``user_id``);
* ``user_pattern`` — a roster nick's Matrix ID (``@{nick}:fedora.im``);
* ``reconnect_delay`` / ``reconnect_max_delay`` — the first and the longest wait before
  the bot tries an unreachable homeserver again (1 s, 60 s; doubled each time);
* ``sync_timeout`` — how long one /sync long-poll waits on the homeserver (30 s);
* ``reply_ttl`` — a reply not sent within this many seconds is dropped (60 s).

``[matrix.people]`` overrides ``user_pattern`` per person: ``nick = @someone:server``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from deploybot.config import (
    InvalidConfig,
    credential_name_problem,
    credential_path,
    positive_number,
    read_secret_file,
    read_section,
    read_token_file,
)
from deploybot.errors import ConfigError, Problem

__all__ = [
    "PEOPLE_SECTION",
    "SECTION",
    "MatrixSettings",
    "load_matrix_settings",
    "read_matrix_secret",
]

SECTION = "matrix"
PEOPLE_SECTION = "matrix.people"
DEFAULT_USER_PATTERN = "@{nick}:fedora.im"
_NUMBERS: Mapping[str, float] = MappingProxyType(
    {"reconnect_delay": 1.0, "reconnect_max_delay": 60.0, "sync_timeout": 30.0, "reply_ttl": 60.0}
)
KEYS = (
    "homeserver",
    "user_id",
    "access_token_file",
    "access_token_credential",
    "password_file",
    "device_name",
    "room_alias_server",
    "user_pattern",
    *_NUMBERS,
)
_SECRET_KEYS = ("access_token_file", "access_token_credential", "password_file")
_MXID = re.compile(r"@([a-z0-9._=\-/+]+):([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?")
_SERVER = re.compile(r"([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}\-]*")


@dataclass(frozen=True)
class MatrixSettings:
    """The validated ``[matrix]`` section (module doc)."""

    homeserver: str
    user_id: str
    access_token_file: Path | None = None
    #: A systemd credential holding the token ($CREDENTIALS_DIRECTORY/NAME).
    access_token_credential: str = ""
    password_file: Path | None = None
    device_name: str = "deploybot"
    room_alias_server: str = ""
    user_pattern: str = DEFAULT_USER_PATTERN
    #: nick (lower case) → Matrix ID, from ``[matrix.people]``.
    people: Mapping[str, str] = field(default_factory=dict)
    reconnect_delay: float = 1.0
    reconnect_max_delay: float = 60.0
    sync_timeout: float = 30.0
    reply_ttl: float = 60.0

    def alias_of(self, channel: str) -> str:
        """``#fedora-admin`` → ``#fedora-admin:SERVER`` (the room alias of a channel)."""
        return f"#{channel.lstrip('#&')}:{self.room_alias_server}"

    def mxid_of(self, nick: str) -> str:
        """A person's Matrix ID: ``[matrix.people]``, else ``user_pattern``; a target that
        is a Matrix ID already stays as it is."""
        if nick.startswith("@"):
            return nick
        return self.people.get(nick.lower()) or self.user_pattern.replace("{nick}", nick.lower())

    def nick_of(self, mxid: str) -> str:
        """The roster nick of a Matrix ID (the reverse of :meth:`mxid_of`); the Matrix ID
        itself when no nick maps to it."""
        for nick, known in self.people.items():
            if known == mxid:
                return nick
        before, _, after = self.user_pattern.partition("{nick}")
        if mxid.startswith(before) and mxid.endswith(after) and len(mxid) > len(before + after):
            nick = mxid[len(before) : len(mxid) - len(after)]
            if _NICK.fullmatch(nick) and nick.lower() not in self.people:
                return nick
        return mxid


def _mxid_problem(value: str) -> str | None:
    if not _MXID.fullmatch(value):
        return (
            f"{value!r} is not a Matrix ID: expected @NAME:SERVER "
            "(NAME in lower case letters, digits and ._=-/+)"
        )
    return None


def load_matrix_settings(path: str | os.PathLike[str]) -> MatrixSettings | None:
    """``[matrix]`` of the ini file at ``path``, validated; None when there is none.
    Raises :class:`~deploybot.config.InvalidConfig` (section ``matrix`` or
    ``matrix.people``) listing every problem.  The secret files are not read here."""
    file = os.fspath(path)
    found = read_section(file, SECTION)
    people_found = read_section(file, PEOPLE_SECTION)
    if found is None:
        if people_found is not None:
            raise InvalidConfig(
                [Problem(file, 0, "", "[matrix.people] without a [matrix] section")],
                file,
                section=PEOPLE_SECTION,
            )
        return None
    raw, lines = found
    base = Path(os.path.abspath(file)).parent
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(file, lines.get(key, 0), key, message))

    for key, value in raw.items():
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            bad(key, f"unknown key{hint}; valid keys: {', '.join(KEYS)}")
        elif any(ord(c) < 32 or ord(c) == 127 for c in value):
            bad(key, "the value contains a control character or a line break")
    text = {key: value.strip() for key, value in raw.items() if key in KEYS}

    homeserver = text.get("homeserver", "")
    parts = urlsplit(homeserver)
    if not homeserver:
        bad("homeserver", "required: the homeserver's URL, e.g. https://matrix.example.org")
    elif parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        bad("homeserver", f"expected an http:// or https:// URL, got {homeserver!r}")
    user_id = text.get("user_id", "")
    if not user_id:
        bad("user_id", "required: the bot's Matrix ID, e.g. @deploybot:example.org")
    elif problem := _mxid_problem(user_id):
        bad("user_id", problem)

    def path_of(key: str) -> Path | None:
        value = text.get(key, "")
        if not value:
            return None
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    token_file, password_file = path_of("access_token_file"), path_of("password_file")
    credential = text.get("access_token_credential", "")
    if credential and (problem := credential_name_problem(credential)):
        bad("access_token_credential", problem)
    sources = [key for key in _SECRET_KEYS if text.get(key, "")]
    if not sources:
        bad(
            "access_token_file",
            "required: a file holding the access token (or access_token_credential, "
            "or password_file)",
        )
    elif len(sources) > 1:
        bad(sources[1], f"set only one of {', '.join(_SECRET_KEYS)}")
    device_name = text.get("device_name", "") or "deploybot"
    server = text.get("room_alias_server", "") or (
        user_id.partition(":")[2] if _MXID.fullmatch(user_id) else ""
    )
    if "room_alias_server" in text and not _SERVER.fullmatch(server):
        bad(
            "room_alias_server", f"expected a server name such as fedoraproject.org, got {server!r}"
        )
    pattern = text.get("user_pattern", "") or DEFAULT_USER_PATTERN
    if pattern.count("{nick}") != 1:
        bad("user_pattern", f"expected {{nick}} once, e.g. {DEFAULT_USER_PATTERN}, got {pattern!r}")
    elif problem := _mxid_problem(pattern.replace("{nick}", "nick")):
        bad("user_pattern", problem.replace("'@nick", "'@{nick}"))
    numbers: dict[str, float] = {}
    for key, default in _NUMBERS.items():
        try:
            numbers[key] = positive_number(text[key]) if key in text else default
        except ValueError as error:
            bad(key, str(error))
            numbers[key] = default
    if problems:
        problems.sort(key=lambda problem: problem.line)
        raise InvalidConfig(problems, file, section=SECTION)
    people = _people(file, people_found)
    return MatrixSettings(
        homeserver=homeserver.rstrip("/"),
        user_id=user_id,
        access_token_file=token_file,
        access_token_credential=credential,
        password_file=password_file,
        device_name=device_name,
        room_alias_server=server,
        user_pattern=pattern,
        people=MappingProxyType(people),
        **numbers,
    )


def _people(file: str, found: tuple[dict[str, str], dict[str, int]] | None) -> dict[str, str]:
    """``[matrix.people]``: nick (lower case) → Matrix ID."""
    people: dict[str, str] = {}
    problems: list[Problem] = []
    raw, lines = found or ({}, {})
    for nick, value in raw.items():
        mxid = value.strip()
        problem = _mxid_problem(mxid)
        if not _NICK.fullmatch(nick):
            problem = f"{nick!r} is not a nick"
        elif nick.lower() in people:
            problem = f"{nick!r} is given twice (nicks are compared in lower case)"
        if problem:
            problems.append(Problem(file, lines.get(nick, 0), nick, problem))
        else:
            people[nick.lower()] = mxid
    if problems:
        raise InvalidConfig(problems, file, section=PEOPLE_SECTION)
    return people


def read_matrix_secret(
    settings: MatrixSettings, file: str, environ: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(access token, password) from their files, read by ``deploybot run`` at start;
    :class:`~deploybot.config.InvalidConfig` naming the key when the file cannot be read,
    is empty or holds more than one token (the content is never shown)."""
    try:
        if settings.access_token_file is not None:
            return read_token_file(settings.access_token_file, "access_token_file"), None
        if settings.access_token_credential:
            key = "access_token_credential"
            try:
                path = credential_path(settings.access_token_credential, environ)
            except ValueError as error:
                raise ConfigError(key, str(error)) from None
            return read_token_file(path, key), None
        assert settings.password_file is not None
        return None, read_secret_file(settings.password_file)
    except ConfigError as error:
        message = error.message
        key = error.key or "access_token_file"
    except ValueError as error:
        message, key = str(error), "password_file"
    raise InvalidConfig([Problem(file, 0, key, message)], file, section=SECTION)
