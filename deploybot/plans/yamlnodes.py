"""Typed values from PyYAML nodes, each problem located by file, line and dotted key.

We read the *composed* node tree (``yaml.compose`` with the safe loader), never the
constructed Python objects: YAML 1.1 implicit typing would turn ``release: 2.0`` into a
float, ``from: 13:00`` into the integer 780 and ``when: ...`` into a naive or aware
datetime depending on how it was written.  Every converter here takes the scalar's text
as written and checks it itself, so ``release: 2.0`` is the string ``"2.0"`` and
``from: 13:00`` is the time 13:00, quoted or not.

A converter is a function ``(reader, node, key) -> value``.  When the value is wrong it
records a :class:`~deploybot.errors.Problem` on the reader and raises :class:`Invalid`;
:func:`read_mapping` catches that per key, so one pass reports every problem of a file.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Protocol, TypeVar

import yaml

from deploybot.drift.shape import format_path, parse_path
from deploybot.durations import DAY, parse_day, parse_duration
from deploybot.errors import DateError, DurationError, Problem

T = TypeVar("T")

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, TIMESTAMP = (
    _TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)
MAP, SEQ = _TAG + "map", _TAG + "seq"
_SCALAR_TAGS = {STR: "a string", INT: "a number", FLOAT: "a number", BOOL: "true/false"}
_SCALAR_TAGS |= {TIMESTAMP: "a date", NULL: "nothing"}

# Characters that would end an IRC line or a log line: refused with their own message.
_LINE_BREAKS = frozenset("\r\n\0\x85\u2028\u2029")
_OTHER_BREAKS = re.compile("[\x85\u2028\u2029]|\r(?!\n)")


class Mark(Protocol):
    """Where a node or event starts: PyYAML's marks, from either parser."""

    line: int  # 0-based, counting YAML 1.1's line breaks
    index: int  # characters from the start of the text


class Invalid(Exception):
    """The value was wrong; its problem has already been recorded on the reader."""


class NodeReader:
    """Collects the problems and the key lines of one file while converters read it."""

    def __init__(self, file: str, text: str = "") -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.lines: dict[str, int] = {}  # dotted key -> 1-based line
        # YAML 1.1 also breaks lines at NEL, U+2028, U+2029 and a lone CR, where editors
        # do not: with one of them in the text, lines are counted from the LFs.
        self._line_ends = (
            [index for index, char in enumerate(text) if char == "\n"]
            if _OTHER_BREAKS.search(text)
            else None
        )

    def line(self, mark: Mark) -> int:
        """The 1-based line of ``mark``, as an editor numbers it (by LFs)."""
        if self._line_ends is None:
            return mark.line + 1
        return bisect.bisect_left(self._line_ends, mark.index) + 1

    def fail(self, where: yaml.Node | int, key: str, message: str) -> Invalid:
        """Record a problem at a node (or a line number); return the exception to raise."""
        line = where if isinstance(where, int) else self.line(where.start_mark)
        self.problems.append(Problem(self.file, line, key, message))
        return Invalid(message)


def describe(node: yaml.Node) -> str:
    """How a node reads to a person: ``a list``, ``a string 'x'``, ``nothing``."""
    if node.tag not in _SCALAR_TAGS and node.tag not in (MAP, SEQ):
        return f"a value with the unsupported YAML tag {node.tag}"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kind = _SCALAR_TAGS[node.tag]
    return kind if node.tag == NULL else f"{kind} {_short(node.value)!r}"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL


# --- scalars ---------------------------------------------------------------------------


def text(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """Any single-line scalar, as written (``2.0`` stays ``"2.0"``); may be empty."""
    if not isinstance(node, yaml.ScalarNode) or node.tag not in _SCALAR_TAGS or is_null(node):
        raise reader.fail(node, key, f"expected a string, got {describe(node)}")
    value: str = node.value
    for char in value:
        if char in _LINE_BREAKS:
            raise reader.fail(node, key, "contains a line break or NUL; write it on one line")
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise reader.fail(node, key, f"contains a control character (U+{ord(char):04X})")
    return value


def name(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """A non-empty single-line string (an endpoint, a change, a playbook...)."""
    value = text(reader, node, key)
    if not value.strip():
        raise reader.fail(node, key, "must not be empty")
    return value


def word(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """A non-empty string without spaces (a service, a team, a mailing list)."""
    value = name(reader, node, key)
    if any(char.isspace() for char in value):
        raise reader.fail(node, key, f"{value!r} must be one word, without spaces")
    return value


def optional_word(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """Like :func:`word`, but ``""`` is allowed (the same as leaving the key out)."""
    return "" if text(reader, node, key) == "" else word(reader, node, key)


#: RFC 2812 §2.3.1: a letter or special first, then letters, digits, specials and "-".
#: RFC 2812 caps a nick at 9 characters; servers today allow more (InspIRCd 30 by
#: default, Libera 16): we allow up to :data:`MAX_NICK_LENGTH`.
MAX_NICK_LENGTH = 30
_NICK = re.compile(rf"[A-Za-z\[\]\\^_`{{|}}][A-Za-z0-9\[\]\\^_`{{|}}-]{{0,{MAX_NICK_LENGTH - 1}}}")


def nick(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """An IRC nick by RFC 2812's grammar (at most 30 characters): never a channel or a
    status-message target such as ``+#chan`` or ``%#chan``, which a page would reach."""
    value = word(reader, node, key)
    if not _NICK.fullmatch(value):
        raise reader.fail(
            node,
            key,
            f"{_short(value)!r} is not a nick: a letter or one of [ ] \\ ^ _ ` {{ | }} first, "
            f"then letters, digits, those or '-', at most {MAX_NICK_LENGTH} characters",
        )
    return value


def optional_nick(reader: NodeReader, node: yaml.Node, key: str) -> str:
    return "" if text(reader, node, key) == "" else nick(reader, node, key)


IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def ident(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """A plan id: letters, digits, ``.``, ``_``, ``-``; starting with a letter or digit."""
    value = text(reader, node, key)
    if not IDENT.fullmatch(value):
        raise reader.fail(
            node, key, f"{value!r} is not a valid id: use letters, digits, '.', '_' and '-'"
        )
    return value


def channel(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """An IRC channel: starts with ``#`` or ``&``; no spaces, commas or control characters."""
    value = text(reader, node, key)
    if len(value) < 2 or value[0] not in "#&" or any(c.isspace() or c in ",:" for c in value):
        raise reader.fail(
            node, key, f'{value!r} is not a channel: write e.g. "#pkgdb2-firefight" (quoted)'
        )
    return value


def url(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """An ``http(s)://`` address without spaces, or ``""``."""
    value = text(reader, node, key)
    if value and (not value.startswith(("http://", "https://")) or any(c.isspace() for c in value)):
        raise reader.fail(node, key, f"{value!r} is not an http:// or https:// address")
    return value


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def probe_path(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """A GET path with its query string (``/api/packager/acl?packagername=toshio``): it is
    appended to ``staging.url`` and ``production.url``, so it may not name a host."""
    value = name(reader, node, key)
    if _SCHEME.match(value) or value.startswith("//"):
        raise reader.fail(
            node,
            key,
            f"{value!r} names a scheme or a host: write the path only (e.g. /api/...); "
            "it is appended to staging.url and production.url",
        )
    if not value.startswith("/"):
        raise reader.fail(node, key, f"{value!r} must start with / (a path on the service)")
    if any(char.isspace() for char in value) or "\\" in value:
        raise reader.fail(
            node, key, f"{value!r} contains a space or a backslash; percent-encode it (%20)"
        )
    if "#" in value:
        raise reader.fail(node, key, f"{value!r} has a fragment (#...), which is never sent")
    if ".." in value.split("?", 1)[0].split("/"):
        raise reader.fail(node, key, f"{value!r} has a .. segment: it would leave the service")
    return value


def json_path(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """A JSON path as :mod:`deploybot.drift.shape` writes them (``.acls[].packager``)."""
    value = name(reader, node, key)
    try:
        return format_path(parse_path(value))
    except ValueError as error:
        raise reader.fail(node, key, f"not a JSON path: {error}") from None


def boolean(reader: NodeReader, node: yaml.Node, key: str) -> bool:
    """Only YAML ``true`` or ``false`` (not ``yes``, ``on`` or ``"true"``)."""
    spelled = node.value.lower() if isinstance(node, yaml.ScalarNode) else ""
    if node.tag == BOOL and spelled in ("true", "false"):
        return spelled == "true"
    if node.tag == BOOL:  # yes, no, on, off: YAML 1.1 booleans we do not accept
        raise reader.fail(node, key, f"expected true or false, got {node.value!r}")
    raise reader.fail(node, key, f"expected true or false, got {describe(node)}")


def day(reader: NodeReader, node: yaml.Node, key: str) -> date:
    """A date written ``YYYY-MM-DD``."""
    value = text(reader, node, key)
    try:
        return parse_day(value)
    except DateError as error:
        raise reader.fail(node, key, str(error)) from None


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2}))?"
    r"[ \t]*(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<oh>\d{2})(?::?(?P<om>\d{2}))?)?"
)


def moment(reader: NodeReader, node: yaml.Node, key: str) -> datetime:
    """A date and time *with* a UTC offset, returned aware, in the offset it was written in."""
    value = text(reader, node, key)
    match = _DATETIME.fullmatch(value)
    if match is None:
        hint = "a date without a time" if DAY.fullmatch(value) else "not a date and time"
        raise reader.fail(
            node, key, f"{value!r} is {hint}; write e.g. 2014-05-28T13:00:00Z (with offset)"
        )
    try:
        year, month, days, hour, minute, second = (int(part or 0) for part in match.groups()[:6])
        naive = datetime(year, month, days, hour, minute, second)
    except ValueError as error:
        raise reader.fail(node, key, f"{value!r} is not a valid date and time: {error}") from None
    if match["utc"]:
        return naive.replace(tzinfo=UTC)
    if not match["sign"]:
        raise reader.fail(
            node, key, f"{value!r} has no UTC offset; write e.g. {naive.isoformat()}Z"
        )
    hours, minutes = int(match["oh"]), int(match["om"] or 0)
    if hours > 23 or minutes > 59:
        raise reader.fail(node, key, f"{value!r} has an impossible UTC offset")
    offset = timedelta(hours=hours, minutes=minutes) * (-1 if match["sign"] == "-" else 1)
    aware = naive.replace(tzinfo=timezone(offset))
    try:
        aware.astimezone(UTC)
    except OverflowError:
        raise reader.fail(node, key, f"{value!r} is out of range") from None
    return aware


def day_or_moment(reader: NodeReader, node: yaml.Node, key: str) -> date | datetime:
    """A date ``YYYY-MM-DD`` (a whole day, placed in a time zone by the caller) or a date
    and time with a UTC offset (:func:`moment`)."""
    value = text(reader, node, key)
    if DAY.fullmatch(value):
        return day(reader, node, key)
    if not _DATETIME.fullmatch(value):
        raise reader.fail(
            node,
            key,
            f"{value!r} is neither a date (2026-04-07) nor a date and time with a UTC offset "
            "(2026-04-07T00:00:00Z)",
        )
    return moment(reader, node, key)


def outage_fix(reader: NodeReader, node: yaml.Node, key: str) -> str:
    """``outage-fix``: the only kind of freeze exemption there is."""
    value = text(reader, node, key)
    if value != "outage-fix":
        raise reader.fail(
            node,
            key,
            f"{value!r}: the only exemption from a freeze is outage-fix (a fix for an "
            "outage); anything else needs a freeze break (!freezebreak)",
        )
    return value


def positive_duration(reader: NodeReader, node: yaml.Node, key: str) -> timedelta:
    """A duration such as ``8h`` or ``1d12h`` (see :mod:`deploybot.durations`), above 0."""
    value = text(reader, node, key)
    try:
        parsed = parse_duration(value)
    except DurationError as error:
        raise reader.fail(node, key, str(error)) from None
    if parsed <= timedelta(0):
        raise reader.fail(node, key, "must be longer than 0")
    return parsed


_TIME = re.compile(r"(\d{1,2}):(\d{2})")


def clock_time(reader: NodeReader, node: yaml.Node, key: str) -> time:
    """A wall-clock time ``HH:MM`` (quoted or not: ``13:00`` is not read as a number)."""
    value = text(reader, node, key)
    match = _TIME.fullmatch(value)
    if match is None:
        raise reader.fail(node, key, f'{value!r} is not a time; write HH:MM, e.g. "13:00"')
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise reader.fail(node, key, f"{value!r} is not a valid time: 00:00 to 23:59")
    return time(hour, minute)


# --- collections -----------------------------------------------------------------------

Converter = Callable[[NodeReader, yaml.Node, str], T]


def list_of(item: Converter[T], *, what: str, non_empty: bool = False) -> Converter[tuple[T, ...]]:
    """A converter for a YAML list whose items all go through ``item``."""

    def convert(reader: NodeReader, node: yaml.Node, key: str) -> tuple[T, ...]:
        if not isinstance(node, yaml.SequenceNode) or node.tag != SEQ:
            raise reader.fail(node, key, f"expected a list of {what}, got {describe(node)}")
        if non_empty and not node.value:
            raise reader.fail(node, key, f"must not be empty: list one or more {what}")
        values: list[T] = []
        ok = True
        for index, child in enumerate(node.value):
            child_key = f"{key}[{index}]"
            reader.lines.setdefault(child_key, reader.line(child.start_mark))
            try:
                values.append(item(reader, child, child_key))
            except Invalid:
                ok = False
        if not ok:
            raise Invalid(key)
        return tuple(values)

    return convert


@dataclass(frozen=True)
class Field:
    """One key of a mapping: how to convert its value, whether it must be there."""

    convert: Converter[Any]
    required: bool = False
    attr: str = ""  # the keyword for ``Schema.build``; default: the key itself
    default: Any = None  # given to ``Schema.build`` when the key is absent (None: nothing)


# (reader, dotted key of the mapping, mapping node, converted values) -> object
Builder = Callable[[NodeReader, str, yaml.Node, dict[str, Any]], T]


@dataclass(frozen=True)
class Schema:
    """A YAML mapping: its keys (in canonical order) and how to build the value.

    ``check``, if given, runs after the values are converted even when some of them are
    missing or bad, so checks across keys report their problems too; it may complete
    ``values`` and raises :class:`Invalid` for problems it records.  ``build`` runs only
    when nothing was wrong.
    """

    what: str  # "a shift": used in messages
    fields: Mapping[str, Field]
    build: Builder[Any]
    check: Builder[None] | None = None

    @property
    def keys(self) -> str:
        return ", ".join(self.fields)


def build_with(cls: Callable[..., T]) -> Builder[T]:
    """A ``Schema.build`` that calls ``cls(**values)``."""
    return lambda _reader, _key, _node, values: cls(**values)


def join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def read_mapping(reader: NodeReader, node: yaml.Node, key: str, schema: Schema) -> Any:
    """Check a mapping against ``schema`` and build it; record every problem found.

    Unknown and duplicate keys, missing required keys and bad values are all reported
    before :class:`Invalid` is raised.  A key whose value is null (``key:`` with nothing
    after it) counts as absent.
    """
    if not isinstance(node, yaml.MappingNode) or node.tag != MAP:
        raise reader.fail(
            node, key, f"expected a mapping (key: value) for {schema.what}, got {describe(node)}"
        )
    entries: dict[str, yaml.Node] = {}
    ok = True
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            reader.fail(key_node, key, f"keys must be plain names, got {describe(key_node)}")
            ok = False
            continue
        path = join(key, key_node.value)
        if key_node.value in entries:
            reader.fail(key_node, path, "duplicate key: it is already set above")
            ok = False
        elif key_node.value not in schema.fields:
            reader.fail(
                key_node,
                path,
                f"unknown key {key_node.value!r} in {schema.what}; valid keys: {schema.keys}",
            )
            ok = False
        else:
            entries[key_node.value] = value_node
            reader.lines[path] = reader.line(key_node.start_mark)
    values: dict[str, Any] = {}
    for field_key, field in schema.fields.items():
        path = join(key, field_key)
        value_node = entries.get(field_key)
        if value_node is None or is_null(value_node):
            if field.required:
                where = node if value_node is None else value_node
                reader.fail(where, path, f"missing: {schema.what} needs {_required(schema)}")
                ok = False
            elif field.default is not None:
                values[field.attr or field_key] = field.default
            continue
        try:
            values[field.attr or field_key] = field.convert(reader, value_node, path)
        except Invalid:
            ok = False
    if schema.check is not None:
        try:
            schema.check(reader, key, node, values)
        except Invalid:
            ok = False
    if not ok:
        raise Invalid(key)
    return schema.build(reader, key, node, values)


def _required(schema: Schema) -> str:
    names = [key for key, field in schema.fields.items() if field.required]
    return " and ".join(", ".join(names).rsplit(", ", 1))


def nested(schema: Schema) -> Converter[Any]:
    """A converter for a value that is itself a mapping described by ``schema``."""
    return lambda reader, node, key: read_mapping(reader, node, key, schema)
