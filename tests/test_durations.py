"""deploybot.durations: durations as people write them, with one canonical spelling."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.durations import (
    DEFAULT_COUNTDOWNS,
    format_duration,
    iso_utc,
    parse_countdowns,
    parse_day,
    parse_duration,
    plural,
    whole_seconds,
)
from deploybot.errors import DateError, DurationError

TEN_YEARS = 10 * 365 * 86400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8h", timedelta(hours=8)),
        ("15m", timedelta(minutes=15)),
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("45s", timedelta(seconds=45)),
        ("2d3h4m5s", timedelta(days=2, hours=3, minutes=4, seconds=5)),
        ("0", timedelta(0)),
        (" 8h ", timedelta(hours=8)),
    ],
)
def test_parse_examples(text: str, expected: timedelta) -> None:
    """The spellings used in plans and config (``8h``, ``1d12h``, ``0``) parse as meant."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "0"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(hours=8), "8h"),
        (timedelta(days=14), "14d"),
        (timedelta(seconds=61), "1m1s"),
    ],
)
def test_format_examples(delta: timedelta, expected: str) -> None:
    """Formatting gives the shortest spelling, largest unit first."""
    assert format_duration(delta) == expected


@pytest.mark.parametrize(
    "text", ["", " ", "5", "h", "1x", "-1h", "1m1h", "1h1h", "1.5h", "8 h", "3651d", None]
)
def test_parse_rejects(text: str | None) -> None:
    """Empty, unitless, unknown units, negative, out-of-order, too long or not text: refused."""
    with pytest.raises(DurationError):
        parse_duration(cast(str, text))


def test_rejection_is_a_value_error_with_a_readable_message() -> None:
    """DurationError is a ValueError whose text tells the user how to write a duration."""
    with pytest.raises(ValueError, match=r"'5' is not a duration: use a number with a unit"):
        parse_duration("5")


@pytest.mark.parametrize("delta", [timedelta(seconds=-1), timedelta(milliseconds=1500)])
def test_format_rejects_negative_and_fractional(delta: timedelta) -> None:
    """Only non-negative whole seconds have a spelling."""
    with pytest.raises(DurationError):
        format_duration(delta)


@given(st.integers(0, TEN_YEARS))
def test_format_then_parse_round_trips(seconds: int) -> None:
    """parse_duration(format_duration(d)) == d for every whole-second d up to ten years."""
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


_part = st.none() | st.integers(0, 500)


@given(_part, _part, _part, _part)
def test_parse_then_format_is_canonical(
    days: int | None, hours: int | None, minutes: int | None, seconds: int | None
) -> None:
    """Any valid spelling (``90m``, ``0h5s``) formats to the canonical one of the same value."""
    parts = zip((days, hours, minutes, seconds), "dhms", strict=True)
    text = "".join(f"{count}{unit}" for count, unit in parts if count is not None)
    if not text:
        return
    parsed = parse_duration(text)
    canonical = format_duration(parsed)
    assert parse_duration(canonical) == parsed
    assert format_duration(parse_duration(canonical)) == canonical
    # canonical: each unit below its carry, no zero parts
    for count, unit in zip(*_split(canonical), strict=True):
        assert count > 0
        assert unit == "d" or count < {"h": 24, "m": 60, "s": 60}[unit]


def _split(text: str) -> tuple[list[int], list[str]]:
    if text == "0":
        return [], []
    counts: list[int] = []
    units: list[str] = []
    number = ""
    for char in text:
        if char.isdigit():
            number += char
        else:
            counts.append(int(number))
            units.append(char)
            number = ""
    return counts, units


# --- machine spellings for JSON ----------------------------------------------------------


def test_iso_utc_is_utc_with_z_and_whole_seconds_truncated() -> None:
    """A moment in any zone is spelled in UTC with ``Z``, its fraction of a second dropped."""
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 15, 14, 0, 59, 999999, tzinfo=paris)
    assert iso_utc(moment) == "2026-12-15T13:00:59Z"


@given(st.datetimes(timezones=st.just(UTC)))
def test_iso_utc_reads_back_as_the_same_second(moment: datetime) -> None:
    """``datetime.fromisoformat`` reads the spelling back as the moment, to the second."""
    assert datetime.fromisoformat(iso_utc(moment)) == moment.replace(microsecond=0)


def test_whole_seconds_rounds_and_keeps_none() -> None:
    """Spans become whole seconds, rounded; a missing span stays None."""
    assert whole_seconds(timedelta(minutes=5)) == 300
    assert whole_seconds(timedelta(seconds=89.6)) == 90
    assert whole_seconds(timedelta(seconds=-0.4)) == 0
    assert whole_seconds(None) is None


# --- days --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("20261215", "'20261215' is not a date; write it as YYYY-MM-DD"),
        ("2026-W51-2", "'2026-W51-2' is not a date; write it as YYYY-MM-DD"),
        ("2026-12-1", "'2026-12-1' is not a date; write it as YYYY-MM-DD"),
        (" 2026-12-15", "' 2026-12-15' is not a date; write it as YYYY-MM-DD"),
        ("２０２６-12-15", "'２０２６-12-15' is not a date; write it as YYYY-MM-DD"),
        ("2026-02-30", "'2026-02-30' is not a valid date: day is out of range for month"),
        ("1899-12-31", "'1899-12-31' is out of range (years 1900 to 9000)"),
        ("9001-01-01", "'9001-01-01' is out of range (years 1900 to 9000)"),
    ],
)
def test_parse_day_refuses_what_is_not_a_yyyy_mm_dd_day(text: str, says: str) -> None:
    """Only ``YYYY-MM-DD`` of a day that exists, in years 1900 to 9000, is a day."""
    with pytest.raises(DateError) as error:
        parse_day(text)
    assert str(error.value) == says


def test_parse_day_names_the_value_by_its_label() -> None:
    """The caller's label replaces the quoted value (the API says ``since='x'``)."""
    with pytest.raises(DateError, match=r"^since='x' is not a date; write it as YYYY-MM-DD$"):
        parse_day("x", "since='x'")


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(9000, 12, 31)))
def test_parse_day_reads_every_day_in_range(day: date) -> None:
    """Every day from 1900 to 9000, written YYYY-MM-DD, reads back as itself."""
    assert parse_day(day.isoformat()) == day


# --- parse_countdowns ---------------------------------------------------------------------


def test_parse_default_countdowns_largest_first() -> None:
    """The default config string gives the eight offsets, largest first."""
    expected = (
        timedelta(days=14),
        timedelta(days=7),
        timedelta(days=3),
        timedelta(days=1),
        timedelta(hours=4),
        timedelta(hours=1),
        timedelta(minutes=15),
        timedelta(0),
    )
    assert parse_countdowns(DEFAULT_COUNTDOWNS) == expected


def test_parse_countdowns_sorts_and_removes_duplicates() -> None:
    """Order does not matter, equal offsets (1h, 60m) count once, commas are allowed."""
    assert parse_countdowns("15m, 1h 60m\t3d 0 0") == (
        timedelta(days=3),
        timedelta(hours=1),
        timedelta(minutes=15),
        timedelta(0),
    )


def test_parse_countdowns_empty_is_no_countdowns() -> None:
    """An empty setting means no countdown posts."""
    assert parse_countdowns("  ") == ()


def test_parse_countdowns_rejects_a_bad_offset() -> None:
    """A bad offset raises the duration error naming it and the expected offsets."""
    with pytest.raises(DurationError, match=r"^'2w' is not a duration: expected offsets such as"):
        parse_countdowns("14d 2w")


# --- counted words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "word", "many", "expected"),
    [
        (1, "day", None, "1 day"),
        (0, "day", None, "0 days"),
        (2, "API break", None, "2 API breaks"),
        (1, "person", "people", "1 person"),
        (3, "person", "people", "3 people"),
    ],
)
def test_plural_counts_a_word(count: int, word: str, many: str | None, expected: str) -> None:
    """One is singular, every other count (zero too) plural, irregular ones as given."""
    assert plural(count, word, many) == expected
