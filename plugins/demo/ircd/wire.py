"""The demo IRC server's line safety (:mod:`.server`): bytes in, bytes out.

The one rule every server must keep: a line ends at LF (a CR before it is dropped); CR and
NUL *inside* a line are turned into spaces, so a client can never make the server relay a
second line (:func:`read_lines`); every line the server writes is cut to 512 bytes with
its CR LF, on a UTF-8 character boundary, and passes through one function
(:meth:`deploybot_plugins.demo.ircd.network.Client.send`, through :func:`cut`) that
blanks CR, LF and NUL again.  An incoming line longer than 512 bytes is cut to its first
510.

Also the parsing of a client's line (:func:`parse`), RFC 1459 case folding
(:func:`irc_lower`) and the splitting of a long list into lines (:func:`chunks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

__all__ = ["BODY", "MAX_LINE", "chunks", "cut", "irc_lower", "parse", "read_lines"]

MAX_LINE = 512  # bytes, CR LF included (RFC 1459 §2.3)
BODY = MAX_LINE - 2
_READ_CHUNK = 4096

_RFC1459 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")
_UNSAFE = str.maketrans({"\r": " ", "\n": " ", "\0": " "})


def irc_lower(name: str) -> str:
    """``name`` case-folded with RFC 1459 rules (the mapping announced in 005)."""
    return name.translate(_RFC1459)


def cut(line: str) -> bytes:
    """``line`` as it goes on the wire: CR/LF/NUL blanked, at most 510 bytes (never half a
    UTF-8 character), then CR LF."""
    data = line.translate(_UNSAFE).encode("utf-8")
    if len(data) > BODY:
        data = data[:BODY].decode("utf-8", errors="ignore").encode("utf-8")
    return data + b"\r\n"


def parse(line: str) -> tuple[str, list[str]]:
    """``(COMMAND, params)`` of a client line; message tags and a prefix are ignored."""
    rest = line
    if rest.startswith("@"):
        rest = rest.partition(" ")[2].lstrip(" ")
    if rest.startswith(":"):
        rest = rest.partition(" ")[2].lstrip(" ")
    head, sep, trailing = rest.partition(" :")
    words = head.split()
    if not words:
        return "", []
    params = words[1:15]
    if sep:
        params.append(trailing)
    return words[0].upper(), params


def chunks(words: Iterable[str], budget: int) -> list[str]:
    """Space-joined groups of ``words``, each at most ``budget`` bytes."""
    chunks: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and len(candidate.encode()) > budget:
            chunks.append(current)
            candidate = word
        current = candidate
    if current:
        chunks.append(current)
    return chunks


async def read_lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """Lines as the server reads them: split at LF, a CR before the LF dropped, CR and NUL
    inside turned into spaces, each cut to 510 bytes (the rest of an overlong line is
    discarded), decoded as UTF-8 (invalid bytes replaced)."""
    buffer = bytearray()
    discarding = False  # inside the tail of an overlong line
    while True:
        chunk = await reader.read(_READ_CHUNK)
        if not chunk:
            return
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > BODY:
                    if not discarding:
                        yield _clean(bytes(buffer[:BODY]))
                        discarding = True
                    buffer.clear()
                break
            raw = bytes(buffer[:end])
            del buffer[: end + 1]
            if discarding:
                discarding = False
                continue
            yield _clean(raw[:BODY] if len(raw) > BODY else raw)


def _clean(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    raw = raw.replace(b"\r", b" ").replace(b"\0", b" ")
    return raw.decode("utf-8", errors="replace")
