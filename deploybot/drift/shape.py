"""JSON paths and the shape of a JSON document (pure: no I/O, no clock).

A **path** names a place in a document, list elements merged: ``.`` is the document,
``.acls`` a member, ``.acls[]`` every element of that list, ``.acls[].packager`` a member of
each element; a member whose name is not an identifier is written ``.["fas name"]``.  As a
tuple, a member is its name and a list element is ``None``.

A **shape** gives, for every path seen in a document, which JSON types were found there
(``null`` is its own type: ``null`` is not ``[]`` and not ``{}``), which formats its
strings had (``date-time`` for ISO 8601 timestamps, else ``text``), the members its
objects had, whether its lists had elements, and a fingerprint of its scalar values (so
two answers can be told apart by value, in any list order).  A list's elements are merged
into one shape, so a list of 10^5 elements costs one path per member, not 10^5.  Below
:data:`MAX_DEPTH` levels nothing more is looked at (``truncated``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "MAX_DEPTH",
    "Path",
    "PathShape",
    "Shape",
    "describe_kinds",
    "format_path",
    "infer",
    "parse_path",
    "under",
]

#: A place in a document: member names, ``None`` for "every element of this list".
Path = tuple[str | None, ...]

#: The JSON types, in the order they are listed in messages.
KINDS = ("object", "array", "string", "number", "boolean", "null")

#: Levels below the document looked at; deeper values count only by their type.
MAX_DEPTH = 64

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ISO 8601 / RFC 3339 date and time, with "T" or a space (Python's str(datetime)).
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_MASK = (1 << 64) - 1


# --- paths --------------------------------------------------------------------------------


def format_path(path: Path) -> str:
    """``.acls[].packager``, ``.`` for the document, ``.["fas name"]`` for odd names.

    >>> format_path(("acls", None, "packager"))
    '.acls[].packager'
    >>> format_path(())
    '.'
    >>> format_path((None, "fas name"))
    '.[]["fas name"]'
    """
    out = []
    for part in path:
        if part is None:
            out.append("[]")
        elif _IDENTIFIER.fullmatch(part):
            out.append(f".{part}")
        else:
            out.append(f"[{_quoted(part)}]")
    text = "".join(out)
    return text if text.startswith(".") else "." + text


def _quoted(name: str) -> str:
    """A JSON string for ``name``, every character that does not print escaped."""
    quoted = json.dumps(name, ensure_ascii=False)
    return "".join(
        char
        if char.isprintable() or char == " "
        else f"\\u{ord(char):04x}"
        if ord(char) < 0x10000
        else json.dumps(char)[1:-1]
        for char in quoted
    )


def parse_path(text: str) -> Path:
    """The path written as :func:`format_path` writes it (the leading ``.`` optional).

    Raises ValueError with a message for people.

    >>> parse_path("acls[].packager")
    ('acls', None, 'packager')
    >>> parse_path('.["fas name"]')
    ('fas name',)
    """
    if text in (".", ""):
        if text == "":
            raise ValueError("an empty path; write . for the whole answer")
        return ()
    parts: list[str | None] = []
    position = 0
    written = text
    if text.startswith(".["):
        position = 1  # the document's dot, before a list element or an odd name
    elif text[0] not in ".[":
        text = "." + text
    decoder = json.JSONDecoder()
    while position < len(text):
        if text.startswith("[]", position):
            parts.append(None)
            position += 2
        elif text.startswith('["', position):
            start = position + 1
            try:
                name, end = decoder.raw_decode(text, start)
            except ValueError:
                raise ValueError(f'{written!r}: after [ write "name"] or ]') from None
            if not isinstance(name, str) or not text.startswith("]", end):
                raise ValueError(f'{written!r}: after [ write "name"] or ]')
            parts.append(name)
            position = end + 1
        elif text[position] == ".":
            match = _IDENTIFIER.match(text, position + 1)
            if match is None:
                raise ValueError(
                    f"{written!r}: a name after . is letters, digits and _ "
                    '(write .["other name"] for any other)'
                )
            parts.append(match.group())
            position = match.end()
        else:
            raise ValueError(
                f"{written!r}: unexpected {text[position]!r}; write e.g. .acls[].packager"
            )
    return tuple(parts)


def under(path: Path, prefix: Path) -> bool:
    """Whether ``path`` is ``prefix`` or inside it."""
    return path[: len(prefix)] == prefix


def describe_kinds(kinds: frozenset[str]) -> str:
    """``array``, ``array or null``; ``nothing`` for no type at all."""
    return " or ".join(kind for kind in KINDS if kind in kinds) or "nothing"


# --- shapes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathShape:
    """What was found at one path of a document (all list elements merged)."""

    kinds: frozenset[str]
    #: The formats of the strings here: ``date-time`` or ``text``.
    formats: frozenset[str] = frozenset()
    #: The members of the objects here.
    keys: frozenset[str] = frozenset()
    #: A list here had at least one element (so ``path[]`` says something).
    filled: bool = False
    #: The shape of everything at and below this path, as one number (equal shapes, equal
    #: signatures): what a renamed member keeps.
    signature: int = 0
    #: (how many scalar values, their order-free hash): values differ, fingerprints differ.
    #: Hashes of strings differ between processes: compare within one run only.
    values: tuple[int, int] = (0, 0)
    #: Deeper than :data:`MAX_DEPTH`: what is below was not looked at.
    truncated: bool = False


@dataclass(frozen=True)
class Shape:
    """Every path of a document with what was found there."""

    paths: Mapping[Path, PathShape]

    def __getitem__(self, path: Path) -> PathShape:
        return self.paths[path]

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


class _Node:
    """A path while a document is walked; turned into :class:`PathShape` at the end."""

    __slots__ = ("count", "element", "filled", "formats", "kinds", "members", "total", "truncated")

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.formats: set[str] = set()
        self.members: dict[str, _Node] = {}
        self.element: _Node | None = None
        self.filled = False
        self.truncated = False
        self.count = 0
        self.total = 0


def infer(document: Any) -> Shape:
    """The shape of a parsed JSON document (what :func:`json.loads` returns).

    >>> shape = infer({"acls": []})
    >>> sorted(format_path(path) for path in shape)
    ['.', '.acls']
    >>> describe_kinds(infer({"acls": None})[("acls",)].kinds)
    'null'
    """
    root = _Node()
    _walk([document], root, 0)
    paths: dict[Path, PathShape] = {}
    _flatten(root, (), paths)
    return Shape(paths)


_SCALARS = {str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}


def _walk(values: list[Any], node: _Node, depth: int) -> None:
    """Add every value found at one path (a column: all list elements at once) to ``node``.

    Column by column rather than value by value: a list of 10^5 objects costs one call
    per member, not one per value.
    """
    kinds = {type(value) for value in values}
    for kind in kinds:
        group = values if len(kinds) == 1 else [value for value in values if type(value) is kind]
        if kind is dict:
            node.kinds.add("object")
            if depth >= MAX_DEPTH:
                node.truncated = True
                continue
            columns: dict[str, list[Any]] = {}
            for value in group:
                for key, item in value.items():
                    column = columns.get(key)
                    if column is None:
                        columns[key] = [item]
                    else:
                        column.append(item)
            for key, column in columns.items():
                child = node.members.get(key)
                if child is None:
                    child = node.members[key] = _Node()
                _walk(column, child, depth + 1)
        elif kind is list:
            node.kinds.add("array")
            items = [item for value in group for item in value]
            if not items:
                continue
            node.filled = True
            if depth >= MAX_DEPTH:
                node.truncated = True
                continue
            if node.element is None:
                node.element = _Node()
            _walk(items, node.element, depth + 1)
        else:
            # Not from json.loads when not in _SCALARS: named so it never matches a JSON type.
            node.kinds.add(_SCALARS.get(kind, kind.__name__))
            if kind is str:
                dates = sum(1 for value in group if _DATE_TIME.fullmatch(value))
                if dates:
                    node.formats.add("date-time")
                if dates < len(group):
                    node.formats.add("text")
            node.count += len(group)
            node.total = (node.total + hash((kind, sum(map(hash, group)) & _MASK))) & _MASK


def _flatten(node: _Node, path: Path, out: dict[Path, PathShape]) -> int:
    """Add ``node`` and everything below it to ``out``; return its signature."""
    members = []
    for key in sorted(node.members):
        members.append((key, _flatten(node.members[key], (*path, key), out)))
    element = None if node.element is None else _flatten(node.element, (*path, None), out)
    kinds, formats = frozenset(node.kinds), frozenset(node.formats)
    signature = hash((kinds, formats, tuple(members), element))
    out[path] = PathShape(
        kinds=kinds,
        formats=formats,
        keys=frozenset(node.members),
        filled=node.filled,
        signature=signature,
        values=(node.count, node.total),
        truncated=node.truncated,
    )
    return signature
