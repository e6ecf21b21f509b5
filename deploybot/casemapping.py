"""How an IRC server compares names: its ``CASEMAPPING`` (ISUPPORT), never Unicode folding.

A server folds only ASCII letters (``ascii``), and with ``rfc1459`` also ``[]\\~`` to
``{}|^`` (``strict-rfc1459``: ``[]\\`` only).  Nothing else is folded: Python's
``casefold``/``lower`` and ``re.IGNORECASE`` would make ``straße`` equal ``strasse``, the
Kelvin sign ``K`` (U+212A) equal ``k`` and a dotless ``ı`` equal ``i``, which the server
treats as different nicks and accounts.

The mapping comes from the server's ``005`` line (the IRC adapter passes it on with each
request); without one, :data:`DEFAULT` (``rfc1459``, RFC 2812's rule) applies, and a
mapping this module does not know (e.g. ``rfc7613``) is treated as ``ascii``, the one that
folds least, so that no two names are taken as one that the server keeps apart.

>>> irc_fold("Pingou[away]")
'pingou{away}'
>>> irc_fold("Pingou[away]", "ascii")
'pingou[away]'
>>> irc_equal("straße", "STRASSE")
False
"""

from __future__ import annotations

__all__ = ["ASCII", "DEFAULT", "RFC1459", "STRICT_RFC1459", "irc_equal", "irc_fold", "known"]

ASCII = "ascii"
RFC1459 = "rfc1459"
STRICT_RFC1459 = "strict-rfc1459"
#: What a server that announces no CASEMAPPING uses.
DEFAULT = RFC1459

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_TABLES = {
    ASCII: str.maketrans(_UPPER, _LOWER),
    RFC1459: str.maketrans(_UPPER + "[]\\~", _LOWER + "{}|^"),
    STRICT_RFC1459: str.maketrans(_UPPER + "[]\\", _LOWER + "{}|"),
}


def known(casemapping: str | None) -> str:
    """The mapping to use for a server's ``CASEMAPPING`` token (None: it sent none).

    >>> known(None), known("RFC1459"), known("rfc7613")
    ('rfc1459', 'rfc1459', 'ascii')
    """
    if casemapping is None:
        return DEFAULT
    name = casemapping.lower()
    return name if name in _TABLES else ASCII


def irc_fold(name: str, casemapping: str = DEFAULT) -> str:
    """``name`` as the server compares it (see the module doc for unknown mappings)."""
    return name.translate(_TABLES[known(casemapping)])


def irc_equal(a: str, b: str, casemapping: str = DEFAULT) -> bool:
    """Whether the server takes ``a`` and ``b`` for the same nick, channel or account."""
    return irc_fold(a, casemapping) == irc_fold(b, casemapping)
