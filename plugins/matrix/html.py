"""Message contents for Matrix: the plain ``body`` and its ``org.matrix.custom.html``
``formatted_body``.

Everything in a text — what people and plans wrote included — is HTML-escaped; the only
markup is the bot's own: an ``⚠ API BREAK`` line is bold, the lines of one answer are one
message (``<br>`` between them), ``http(s)://`` links are
clickable, and people named at the start of a highlight line (``pingou dgilmore: …``)
are mentions (a link to their Matrix ID, and ``m.mentions``).  Control characters are
replaced, so a body is what it shows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["message_content"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}'\""
BREAK_MARK = "API BREAK"


def _links(text: str) -> str:
    """``text`` escaped, with its http(s) URLs as links."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        start, end = match.start(), match.start() + len(url)
        out.append(html.escape(text[last:start]))
        shown = html.escape(url)
        out.append(f'<a href="{shown}">{shown}</a>')
        last = end
    out.append(html.escape(text[last:]))
    return "".join(out)


def message_content(
    text: str | Sequence[str], mentions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``m.room.message`` content of ``text`` — one line, or several lines of one
    answer (one event, lines joined by a line break); ``mentions`` maps the nicks that start
    the first line (``a b: …``) to the Matrix IDs they mention."""
    lines = [_CONTROL.sub(" ", line) for line in ([text] if isinstance(text, str) else text)]
    users: list[str] = []
    formatted: list[str] = []
    for number, line in enumerate(lines):
        rest, lead = line, ""
        if mentions and number == 0:
            names, _, rest = line.partition(": ")
            pills = []
            for nick in names.split(" "):
                mxid = mentions[nick]
                users.append(mxid)
                link = html.escape(f"https://matrix.to/#/{mxid}")
                pills.append(f'<a href="{link}">{html.escape(nick)}</a>')
            lead = " ".join(pills) + ": "
        shown = lead + _links(rest)
        formatted.append(f"<strong>{shown}</strong>" if BREAK_MARK in line else shown)
    return {
        "msgtype": "m.text",
        "body": "\n".join(lines),
        "format": "org.matrix.custom.html",
        "formatted_body": "<br>".join(formatted),
        "m.mentions": {"user_ids": users} if users else {},
    }


def highlighted(text: str, known: Mapping[str, str]) -> dict[str, str] | None:
    """Nick → Matrix ID of the people named at the start of a highlight line (``a b: …``),
    when every word before the ``: `` is a person in ``known`` (nick in lower case → ID);
    else None."""
    names, sep, _ = text.partition(": ")
    if not sep or not names:
        return None
    found: dict[str, str] = {}
    for nick in names.split(" "):
        mxid = known.get(nick.lower())
        if mxid is None:
            return None
        found[nick] = mxid
    return found
