"""Text that is safe to put on an IRC line.

Anything the bot sends may carry text from outside (plan files, bus messages, webhooks,
IRC itself).  :func:`one_line` removes what could end or corrupt a protocol line (CR,
LF, NUL and every other control character) and what would change how a line reads:
CTCP's ``\x01`` (a ``\x01ACTION …`` line is a ``/me`` by the bot) and IRC's
formatting codes (bold, colour with its numbers, italics, reset…); the bot itself
uses none of them.  :func:`fit` cuts a message so that the whole line, with its
prefix, fits the 512-byte limit, splitting on UTF-8 character boundaries (preferably at
a space), and :func:`message_lines` starts every line after the first with ``… ``: text
from outside never begins a line, so it cannot look like a ``!command`` to other bots.
"""

from __future__ import annotations

import re

# IRC formatting, removed with what belongs to it: bold \x02, colour \x03 (with its
# "fg[,bg]" numbers), hex colour \x04 (with its RRGGBB[,RRGGBB]), reset \x0f, monospace
# \x11, reverse \x16, italics \x1d, strikethrough \x1e, underline \x1f; and CTCP's \x01.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?"
    r"|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?"
    r"|[\x01\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
# Every other control character (C0, DEL, C1) becomes a space; so do the Unicode line and
# paragraph separators, no protocol hazard, but clients and str.splitlines() treat them
# as line breaks: they could fake a new line on screen.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"[ \t]+")

# RFC 1459/2812: 512 bytes including CR LF.  The server relays our PRIVMSG to others
# prefixed with ":nick!user@host "; keep room for that (nick 30 + user 10 + host 63 + 4).
MAX_LINE_BYTES = 510
RELAY_PREFIX_ALLOWANCE = 110
#: What starts every line of a message after its first.
CONTINUATION = "… "


def one_line(text: str) -> str:
    """``text`` without formatting codes or CTCP delimiters, and with CR, LF, NUL and
    every other control character turned into single spaces."""
    return _SPACES.sub(" ", _UNSAFE.sub(" ", _FORMATTING.sub("", text))).strip()


def fit(text: str, budget: int, *, mark: str = "") -> list[str]:
    """Split ``text`` (already one line) into pieces of at most ``budget`` UTF-8 bytes.

    Pieces are cut at the last space inside the budget when there is one, otherwise on
    a character boundary; no piece is empty and no character is split.  Every piece after
    the first starts with ``mark`` (within the budget).
    """
    marked = budget - len(mark.encode("utf-8"))
    if marked < 4:
        raise ValueError("budget must leave room for at least one character")
    pieces: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > (marked if pieces else budget):
        raw = rest.encode("utf-8")[: marked if pieces else budget]
        cut = raw.decode("utf-8", errors="ignore")  # drops a trailing partial character
        space = cut.rfind(" ")
        if space > len(cut) // 2:
            cut = cut[:space]
        pieces.append(cut.rstrip())
        rest = rest[len(cut) :].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    pieces = [p for p in pieces if p] or [""]
    return pieces[:1] + [mark + piece for piece in pieces[1:]]


def fits(text: str, budget: int) -> bool:
    """Whether ``text`` is at most ``budget`` UTF-8 bytes."""
    return len(text.encode("utf-8")) <= budget


def shorten(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` UTF-8 bytes on a character boundary, ending in ``…``
    when cut (e.g. a channel topic)."""
    if fits(text, budget):
        return text
    raw = text.encode("utf-8")[: budget - len("…".encode())]
    return raw.decode("utf-8", errors="ignore").rstrip() + "…"


def message_lines(command: str, target: str, text: str) -> list[str]:
    """Complete ``COMMAND target :text`` lines, cleaned and cut to fit the line limit;
    every line after the first starts with :data:`CONTINUATION`."""
    target = one_line(target).replace(" ", "")
    prefix = f"{command} {target} :"
    budget = MAX_LINE_BYTES - RELAY_PREFIX_ALLOWANCE - len(prefix.encode("utf-8"))
    return [prefix + piece for piece in fit(one_line(text), budget, mark=CONTINUATION)]
