"""Durations as people write them in plans and config: ``8h``, ``90m``, ``1d12h``, ``0``.

Units are ``d`` (days), ``h``, ``m`` and ``s``; parts appear at most once, largest first.
:func:`format_duration` gives the canonical spelling, and
``parse_duration(format_duration(d)) == d`` for every non-negative whole-second ``d``.

Counted words, ``1 day`` / ``3 days`` (:func:`plural`), for every layer above.

The countdown offsets of the config (:func:`parse_countdowns`, default
:data:`DEFAULT_COUNTDOWNS`) are a list of durations.

Also days as people type them, ``2026-12-15`` (:func:`parse_day`, for commands, the CLI,
the API and plan files), and the machine spellings of times and spans in JSON documents
(:func:`iso_utc`, :func:`whole_seconds`), shared by the API and the digest.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from deploybot.errors import DateError, DurationError

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PATTERN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_MAX_SECONDS = 10 * 365 * 86400
#: When countdowns are posted unless the config says otherwise: before the deploy by these.
DEFAULT_COUNTDOWNS = "14d 7d 3d 1d 4h 1h 15m 0"
#: A day's spelling: ``YYYY-MM-DD``, ASCII digits (``date.fromisoformat`` alone also
#: takes ``20261215`` and ``2026-W51-2``).
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: The years :func:`parse_day` accepts: wide enough for any deploy, narrow enough that a
#: day's bounds in any timezone stay within :class:`datetime`'s range.
FIRST_YEAR = 1900
LAST_YEAR = 9000


def parse_duration(text: str) -> timedelta:
    """Parse ``text`` into a :class:`timedelta`; raise :class:`DurationError` if it is not one.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    if not isinstance(text, str):
        raise DurationError(f"expected a duration such as 8h or 15m, got {text!r}")
    spelled = text.strip()
    if spelled == "0":
        return timedelta(0)
    match = _PATTERN.fullmatch(spelled)
    if not spelled or match is None or not any(match.groups()):
        raise DurationError(
            f"{text!r} is not a duration: use a number with a unit d, h, m or s "
            "(e.g. 8h, 90m, 1d12h, or 0)"
        )
    seconds = sum(
        int(value) * size for value, (_, size) in zip(match.groups(), _UNITS, strict=True) if value
    )
    if seconds > _MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than ten years")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The canonical spelling of ``delta`` (whole seconds, not negative).

    >>> format_duration(timedelta(days=1, hours=12))
    '1d12h'
    """
    seconds = int(delta.total_seconds())
    if seconds < 0 or delta != timedelta(seconds=seconds):
        raise DurationError(f"cannot spell {delta!r} as a duration")
    if seconds == 0:
        return "0"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 incident``, ``2 incidents``; ``many`` for an irregular plural.

    >>> plural(1, "day"), plural(0, "day"), plural(2, "person", "people")
    ('1 day', '0 days', '2 people')
    """
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"


def parse_countdowns(text: str) -> tuple[timedelta, ...]:
    """Countdown offsets from the config string, largest first, without duplicates.

    Separated by spaces (commas are accepted too); raises :class:`DurationError` naming a
    bad one.

    >>> [format_duration(d) for d in parse_countdowns("1h 14d, 0 1h")]
    ['14d', '1h', '0']
    """
    offsets: set[timedelta] = set()
    for word in re.split(r"[\s,]+", text):
        if not word:
            continue
        try:
            offsets.add(parse_duration(word))
        except DurationError as error:
            raise DurationError(
                f"{word!r} is not a duration: expected offsets such as 14d 7d 4h 15m 0 ({error})"
            ) from None
    return tuple(sorted(offsets, reverse=True))


def parse_day(text: str, label: str | None = None) -> date:
    """``2026-12-15`` → a :class:`date`; :class:`DateError` otherwise.

    The error names the value as ``label`` (default: ``repr(text)``), e.g. ``date='x'``.

    >>> parse_day("2026-12-15")
    datetime.date(2026, 12, 15)
    >>> parse_day("2026-13-01")
    Traceback (most recent call last):
    ...
    deploybot.errors.DateError: '2026-13-01' is not a valid date: month must be in 1..12
    """
    shown = repr(text) if label is None else label
    if not isinstance(text, str) or not DAY.fullmatch(text):
        raise DateError(f"{shown} is not a date; write it as YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError as error:
        raise DateError(f"{shown} is not a valid date: {error}") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise DateError(f"{shown} is out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return day


def iso_utc(moment: datetime) -> str:
    """``2026-12-15T13:00:00Z``: UTC, whole seconds (truncated), ``Z`` — as in JSON.

    >>> from datetime import timezone
    >>> iso_utc(datetime(2026, 12, 15, 14, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1))))
    '2026-12-15T13:00:00Z'
    """
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def whole_seconds(delta: timedelta | None) -> int | None:
    """A span as whole seconds (rounded) for JSON; None stays None.

    >>> whole_seconds(timedelta(seconds=89.6)), whole_seconds(None)
    (90, None)
    """
    return None if delta is None else round(delta.total_seconds())
