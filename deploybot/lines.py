"""Text that is safe to put on an IRC line.

Anything the bot sends may carry text from outside (plan files, bus messages, webhooks,
IRC itself).  :func:`one_line` removes what could end or corrupt a protocol line
(CR, LF, NUL and other C0 controls except IRC formatting codes), and :func:`fit`
cuts a message so that the whole line, with its prefix, fits the 512-byte limit,
splitting on UTF-8 character boundaries (preferably at a space).
"""

from __future__ import annotations

import re

# C0 controls that would break or confuse the protocol; IRC formatting codes
# (bold \x02, colour \x03, reset \x0f, reverse \x16, italics \x1d, underline \x1f)
# and CTCP's \x01 framing are handled by the sender, so only these are removed.
# NEL and the Unicode line/paragraph separators are no protocol hazard, but clients and
# str.splitlines() treat them as line breaks: they could fake a new line on screen.
_UNSAFE = re.compile(r"[\x00\r\n\x04-\x08\x0b\x0c\x0e\x10-\x15\x17-\x1c\x7f\x85\u2028\u2029]+")
_SPACES = re.compile(r"[ \t]+")

# RFC 1459/2812: 512 bytes including CR LF.  The server relays our PRIVMSG to others
# prefixed with ":nick!user@host "; keep room for that (nick 30 + user 10 + host 63 + 4).
MAX_LINE_BYTES = 510
RELAY_PREFIX_ALLOWANCE = 110


def one_line(text: str) -> str:
    """``text`` with CR, LF, NUL and other control characters turned into single spaces."""
    return _SPACES.sub(" ", _UNSAFE.sub(" ", text)).strip()


def fit(text: str, budget: int) -> list[str]:
    """Split ``text`` (already one line) into pieces of at most ``budget`` UTF-8 bytes.

    Pieces are cut at the last space inside the budget when there is one, otherwise on
    a character boundary; no piece is empty and no character is split.
    """
    if budget < 4:
        raise ValueError("budget must leave room for at least one character")
    pieces: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > budget:
        raw = rest.encode("utf-8")[:budget]
        cut = raw.decode("utf-8", errors="ignore")  # drops a trailing partial character
        space = cut.rfind(" ")
        if space > len(cut) // 2:
            cut = cut[:space]
        pieces.append(cut.rstrip())
        rest = rest[len(cut) :].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return [p for p in pieces if p] or [""]


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
    """Complete ``COMMAND target :text`` lines, cleaned and cut to fit the line limit."""
    target = one_line(target).replace(" ", "")
    prefix = f"{command} {target} :"
    budget = MAX_LINE_BYTES - RELAY_PREFIX_ALLOWANCE - len(prefix.encode("utf-8"))
    return [prefix + piece for piece in fit(one_line(text), budget)]
