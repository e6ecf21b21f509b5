"""Infrastructure freezes: the file that lists them, the iCalendar feed, and where a
plan's window stands against them (issue 13).

Before each Beta and Final release Fedora infrastructure is frozen: a change to a frozen
host needs an approved *freeze break* (two approvals from sysadmin-main or releng); a fix
for an outage is exempt (a plan's ``freeze_exempt``).

The freezes file (``[deploybot] freezes = PATH``) is a YAML list::

    - {name: F42 Beta freeze, from: 2026-02-17, to: 2026-03-03}
    - name: F42 Final freeze
      from: 2026-04-07               # whole days in the configured time zone …
      to: 2026-04-21T23:00:00+02:00  # … or times with an offset

A date ``from`` is the start of that day in the configured time zone; a date ``to``
includes that whole day (the freeze ends at the next midnight).  Every problem is a
:class:`~deploybot.errors.Problem` naming file, line and key (``[1].to``), like a plan's.

A freeze calendar (``freeze_calendar = URL``) is an iCalendar feed: each ``VEVENT`` whose
``SUMMARY`` has the word "freeze" in it is a freeze (:func:`freezes_from_ical`).  The
adapter that fetches it hands the result to :meth:`FreezeBook.set_calendar`.

Pure but for reading the file: no store, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

import yaml

from deploybot.errors import PlanError, Problem
from deploybot.plans.files import compose_document
from deploybot.plans.yamlnodes import (
    Field,
    Invalid,
    NodeReader,
    Schema,
    build_with,
    day_or_moment,
    name,
    read_mapping,
)

__all__ = [
    "FREEZE_WORD",
    "Freeze",
    "FreezeBook",
    "FreezeStanding",
    "freezes_from_ical",
    "frozen_at",
    "load_freezes",
    "load_freezes_text",
    "next_freeze",
    "overlapping",
]

#: A calendar event is a freeze when its summary has this word (any case).
FREEZE_WORD = re.compile(r"\bfreeze\b", re.IGNORECASE)


@dataclass(frozen=True)
class Freeze:
    """A freeze ``[start, end)`` (aware UTC datetimes); ``origin`` says where it came
    from (``freezes.yaml:3`` or ``calendar``)."""

    name: str
    start: datetime
    end: datetime
    origin: str = ""

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` shares any moment with the freeze."""
        return self.start < end and start < self.end

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def overlapping(freezes: Iterable[Freeze], start: datetime, end: datetime) -> tuple[Freeze, ...]:
    """The freezes ``[start, end)`` overlaps, by start."""
    return tuple(sorted((f for f in freezes if f.overlaps(start, end)), key=_order))


def frozen_at(freezes: Iterable[Freeze], moment: datetime) -> tuple[Freeze, ...]:
    """The freezes in force at ``moment``, by start."""
    return tuple(sorted((f for f in freezes if f.covers(moment)), key=_order))


def next_freeze(freezes: Iterable[Freeze], moment: datetime) -> Freeze | None:
    """The first freeze that starts after ``moment``."""
    later = sorted((f for f in freezes if f.start > moment), key=_order)
    return later[0] if later else None


def _order(freeze: Freeze) -> tuple[datetime, datetime, str]:
    return (freeze.start, freeze.end, freeze.name)


@dataclass(frozen=True)
class FreezeStanding:
    """Where a plan's window stands against the freezes: the freezes it overlaps, its
    exemption (``freeze_exempt``), and the approved freeze break (its number and
    approvers) or the open request, if any."""

    plan_id: str
    freezes: tuple[Freeze, ...] = ()
    exempt_reason: str | None = None
    approved_break: int | None = None
    approvers: tuple[str, ...] = ()
    open_break: int | None = None
    open_approvers: tuple[str, ...] = ()

    @property
    def in_freeze(self) -> bool:
        return bool(self.freezes)

    @property
    def cleared(self) -> bool:
        """Not in a freeze, exempt, or with an approved freeze break."""
        return not self.freezes or self.exempt_reason is not None or self.approved_break is not None

    @property
    def names(self) -> str:
        """``F42 Final freeze`` (several joined with ``, ``)."""
        return ", ".join(freeze.name for freeze in self.freezes)

    def marker(self) -> str | None:
        """The countdown's line: ``⚠ IN FREEZE (F42 Final freeze) — freeze break approved
        by X, Y``; ``⚠ IN FREEZE (…) — no approved freeze break``; None out of a freeze."""
        if not self.freezes:
            return None
        head = f"⚠ IN FREEZE ({self.names})"
        if self.approved_break is not None:
            return f"{head} — freeze break approved by {', '.join(self.approvers)}"
        if self.exempt_reason is not None:
            return f"{head} — exempt as an outage fix: {self.exempt_reason}"
        return f"{head} — no approved freeze break"


# --- the freezes file ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Draft:
    name: str
    from_: date | datetime
    to: date | datetime


_FREEZE = Schema(
    "a freeze",
    {
        "name": Field(name, required=True),
        "from": Field(day_or_moment, required=True, attr="from_"),
        "to": Field(day_or_moment, required=True),
    },
    build_with(_Draft),
)


def _start(value: date | datetime, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tz).astimezone(UTC)


def _end(value: date | datetime, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value + timedelta(days=1), time(0), tz).astimezone(UTC)


def load_freezes_text(text: str, tz: tzinfo, file: str = "<string>") -> tuple[Freeze, ...]:
    """The freezes in ``text`` (dates in ``tz``), by start; :class:`PlanError` with every
    problem, each naming ``file``, its line and key (``[0].from``)."""
    reader = NodeReader(file, text)
    freezes: list[Freeze] = []
    node = _compose_list(reader, text)
    if node is not None:
        assert isinstance(node, yaml.SequenceNode)
        for index, item in enumerate(node.value):
            key = f"[{index}]"
            reader.lines.setdefault(key, reader.line(item.start_mark))
            try:
                draft: _Draft = read_mapping(reader, item, key, _FREEZE)
            except Invalid:
                continue
            start, end = _start(draft.from_, tz), _end(draft.to, tz)
            if end <= start:
                line = reader.lines.get(f"{key}.to", 0)
                reader.fail(line, f"{key}.to", "the freeze ends before it starts (to ≤ from)")
                continue
            origin = f"{Path(file).name}:{reader.lines.get(key, 0)}"
            freezes.append(Freeze(draft.name, start, end, origin))
    if reader.problems:
        raise PlanError(sorted(reader.problems, key=lambda problem: problem.line))
    return tuple(sorted(freezes, key=_order))


def _compose_list(reader: NodeReader, text: str) -> yaml.Node | None:
    """The document of ``text`` as a list node (None for an empty file or a problem)."""
    node = compose_document(reader, text)
    if node is None or (isinstance(node, yaml.ScalarNode) and node.value.strip() == ""):
        return None  # an empty file (or a problem already recorded)
    if not isinstance(node, yaml.SequenceNode):
        reader.fail(
            node, "", "the freezes file is a list: - {name: …, from: YYYY-MM-DD, to: YYYY-MM-DD}"
        )
        return None
    return node


def load_freezes(path: Path, tz: tzinfo) -> tuple[Freeze, ...]:
    """The freezes of the file at ``path`` (:func:`load_freezes_text`); a missing or
    unreadable file is a problem on line 0."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = "is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else "cannot be read"
        detail = getattr(error, "strerror", None) or ""
        raise PlanError(
            [Problem(str(path), 0, "", f"{why}{': ' + detail if detail else ''}")]
        ) from None
    return load_freezes_text(text, tz, str(path))


# --- the freeze calendar -------------------------------------------------------------------


def freezes_from_ical(data: bytes, tz: tzinfo) -> tuple[Freeze, ...]:
    """The freezes of an iCalendar feed: every ``VEVENT`` whose ``SUMMARY`` has the word
    "freeze".  All-day events (``DTSTART;VALUE=DATE``) are whole days in ``tz``, ``DTEND``
    exclusive as RFC 5545 says; an event without ``DTEND`` lasts a day (a date) or
    nothing (skipped).  Raises :class:`ValueError` when the data is not a calendar."""
    import icalendar  # here: only the calendar reader needs it

    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as error:  # the library raises ValueError and others
        raise ValueError(f"not an iCalendar feed: {error}") from None
    freezes: list[Freeze] = []
    for event in calendar.walk("VEVENT"):
        summary = str(event.get("SUMMARY", "")).strip()
        if not FREEZE_WORD.search(summary):
            continue
        start_prop, end_prop = event.get("DTSTART"), event.get("DTEND")
        if start_prop is None:
            continue
        start_value: Any = start_prop.dt
        end_value: Any = end_prop.dt if end_prop is not None else None
        start = _ical_moment(start_value, tz)
        if end_value is None:
            end = (
                _ical_moment(start_value + timedelta(days=1), tz) if _is_day(start_value) else start
            )
        else:
            end = _ical_moment(end_value, tz)
        if start is None or end is None or end <= start:
            continue
        name_text = " ".join(summary.split())[:120]
        freezes.append(Freeze(name_text, start, end, "calendar"))
    return tuple(sorted(freezes, key=_order))


def _is_day(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _ical_moment(value: object, tz: tzinfo) -> datetime | None:
    if isinstance(value, datetime):
        # A floating time (no zone) is read in the configured time zone.
        aware = value if value.tzinfo is not None else value.replace(tzinfo=tz)
        return aware.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tz).astimezone(UTC)
    return None


# --- the freezes in force ------------------------------------------------------------------


@dataclass
class FreezeBook:
    """The freezes in force: those of the file (its last good version) and of the
    calendar (its last good copy).  ``path`` None: no freezes file."""

    path: Path | None = None
    tz: tzinfo = UTC
    _file: tuple[Freeze, ...] = ()
    _calendar: tuple[Freeze, ...] = ()
    _stamp: tuple[int, int] | None = field(default=None)

    @property
    def freezes(self) -> tuple[Freeze, ...]:
        return tuple(sorted((*self._file, *self._calendar), key=_order))

    def fingerprint(self) -> tuple[int, int] | None:
        """mtime and size of the file (None: none or unreadable): changes on an edit."""
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def changed(self) -> bool:
        return self.fingerprint() != self._stamp

    def reload(self) -> tuple[Problem, ...]:
        """Read the file again; on problems keep its last good version and return them."""
        self._stamp = self.fingerprint()
        if self.path is None:
            return ()
        try:
            self._file = load_freezes(self.path, self.tz)
        except PlanError as error:
            return tuple(error.problems)
        return ()

    def set_calendar(self, freezes: Sequence[Freeze]) -> None:
        """The freezes of the calendar's last good copy (from its adapter)."""
        self._calendar = tuple(freezes)

    def over(self, start: datetime, end: datetime) -> tuple[Freeze, ...]:
        return overlapping(self.freezes, start, end)
