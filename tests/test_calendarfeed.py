"""deploybot.web.calendarfeed: /calendar.ics is valid RFC 5545 whatever a plan file holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from deploybot.plans.files import load_paths, load_plan
from deploybot.plans.model import ApiBreak, Plan, Staging
from deploybot.web.calendarfeed import (
    MAX_LINE_OCTETS,
    calendar_feed,
    clean_text,
    escape_text,
    fold_line,
)
from tests.planfactory import make_plan, utc

REPO = Path(__file__).resolve().parent.parent
NOW = utc(2026, 12, 1, 9, 30)

INJECTION = "\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil@x\r\nSUMMARY:evil"


# -- an independent reader: unfold, split properties, unescape --------------------------


def unfold(text: str) -> str:
    """RFC 5545 §3.1: a CRLF followed by one space or tab is removed."""
    return re.sub(r"\r\n[ \t]", "", text)


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)


def content_lines(feed: str) -> list[tuple[str, str]]:
    """``(NAME, raw value)`` of each unfolded content line (no parameters are used)."""
    assert feed.endswith("\r\n")
    assert not re.search(r"\r(?!\n)|(?<!\r)\n", feed), "a bare CR or LF"
    lines = unfold(feed).split("\r\n")[:-1]
    pairs = []
    for line in lines:
        name, sep, value = line.partition(":")
        assert sep, f"not a content line: {line!r}"
        assert re.fullmatch(r"[A-Z][A-Z0-9-]*", name), f"bad property name {name!r}"
        pairs.append((name, value))
    return pairs


def events(feed: str) -> list[dict[str, str]]:
    """The VEVENTs as ``{NAME: raw value}``; checks BEGIN/END nesting on the way."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    stack: list[str] = []
    for name, value in content_lines(feed):
        if name == "BEGIN":
            stack.append(value)
            if value == "VEVENT":
                current = {}
        elif name == "END":
            assert stack and stack.pop() == value, f"END:{value} closes nothing"
            if value == "VEVENT":
                assert current is not None
                found.append(current)
                current = None
        elif current is not None:
            assert name not in current, f"{name} twice in one event"
            current[name] = value
    assert stack == [], f"unclosed {stack}"
    return found


def feed_of(*plans: Plan, notice_days: int = 14) -> str:
    return calendar_feed(plans, now=NOW, notice_days=notice_days)


# -- structure --------------------------------------------------------------------------


def test_empty_plan_list_gives_a_valid_empty_calendar() -> None:
    """No plan: a VCALENDAR with its required properties and no event."""
    feed = feed_of()
    pairs = content_lines(feed)
    assert pairs[0] == ("BEGIN", "VCALENDAR")
    assert pairs[-1] == ("END", "VCALENDAR")
    names = dict(pairs)
    assert names["VERSION"] == "2.0"
    assert names["PRODID"]
    assert names["CALSCALE"] == "GREGORIAN"
    assert names["METHOD"] == "PUBLISH"
    assert events(feed) == []


def test_one_event_per_plan_with_utc_times_and_stable_uid() -> None:
    """UID is ``id@deploybot``; DTSTAMP is now, DTSTART/DTEND the window, all UTC ``Z``."""
    paris = timezone(timedelta(hours=1))
    plan = make_plan(when=datetime(2026, 12, 15, 14, 0, tzinfo=paris))
    [event] = events(calendar_feed([plan], now=NOW.astimezone(paris)))
    assert event["UID"] == "pkgdb2-2.0@deploybot"
    assert event["DTSTAMP"] == "20261201T093000Z"
    assert event["DTSTART"] == "20261215T130000Z"
    assert event["DTEND"] == "20261215T210000Z"


def test_uid_is_the_same_across_runs() -> None:
    """Two feeds at different times give the same UIDs (only DTSTAMP changes)."""
    plan = make_plan()
    first = calendar_feed([plan], now=NOW)
    later = calendar_feed([plan], now=NOW + timedelta(hours=5))
    assert [e["UID"] for e in events(first)] == [e["UID"] for e in events(later)]
    assert first.replace("20261201T093000Z", "") == later.replace("20261201T143000Z", "")


def test_events_are_sorted_by_start_time() -> None:
    """Events come by start time, whatever the order of the plans given."""
    late = make_plan(id="late", when=utc(2027, 1, 5, 10))
    early = make_plan(id="early", when=utc(2026, 12, 20, 10))
    middle = make_plan(id="middle", when=utc(2026, 12, 28, 10))
    uids = [e["UID"] for e in events(feed_of(late, early, middle))]
    assert uids == ["early@deploybot", "middle@deploybot", "late@deploybot"]


def test_every_line_ends_with_crlf() -> None:
    """No bare LF or CR anywhere: every line break is CRLF."""
    feed = feed_of(make_plan())
    assert "\n" not in feed.replace("\r\n", "")
    assert "\r" not in feed.replace("\r\n", "")


def test_summary_says_api_break_first() -> None:
    """A plan with API breaks: ``⚠ API BREAK: deploy SERVICE RELEASE``; without: plain."""
    breaking = make_plan()
    quiet = make_plan(id="quiet", api_breaks=(), major=False)
    by_uid = {e["UID"]: e for e in events(feed_of(breaking, quiet))}
    assert unescape(by_uid["pkgdb2-2.0@deploybot"]["SUMMARY"]) == ("⚠ API BREAK: deploy pkgdb2 2.0")
    assert unescape(by_uid["quiet@deploybot"]["SUMMARY"]) == "deploy pkgdb2 2.0"
    assert "API break" in unescape(by_uid["pkgdb2-2.0@deploybot"]["CATEGORIES"])


def test_description_lists_breaks_readiness_and_staging() -> None:
    """DESCRIPTION has each break with its migration, every rule met/missing, staging."""
    plan = make_plan(
        api_breaks=(
            ApiBreak("/api/a", "returns null", "treat null as []"),
            ApiBreak("/api/b", "removed"),
        ),
        meetings=(),
    )
    [event] = events(feed_of(plan))
    text = unescape(event["DESCRIPTION"])
    assert "⚠ API BREAK: /api/a — returns null" in text
    assert "migration: treat null as []" in text
    assert "⚠ API BREAK: /api/b — removed" in text
    assert "no migration note" in text
    assert "readiness: NOT READY (5 of 6 rules met)" in text
    assert "MISSING: discussed in a weekly infrastructure meeting" in text
    assert "met: call for testing in staging" in text
    assert "staging: https://admin.stg.fedoraproject.org/pkgdb (call for testing" in text
    assert "not ready" in unescape(event["CATEGORIES"])


def test_readiness_uses_notice_days() -> None:
    """A call for testing 10 days ahead is met with notice_days=7, missing with 14."""
    plan = make_plan(staging=Staging(url="", call_for_testing=utc(2026, 12, 5).date()))
    relaxed = unescape(events(feed_of(plan, notice_days=7))[0]["DESCRIPTION"])
    strict = unescape(events(feed_of(plan, notice_days=14))[0]["DESCRIPTION"])
    assert "readiness: READY (6 of 6 rules met)" in relaxed
    assert "MISSING: call for testing in staging" in strict


def test_exempt_plan_says_so() -> None:
    """A minor release without API breaks is exempt, and its description says why."""
    plan = make_plan(api_breaks=(), major=False)
    text = unescape(events(feed_of(plan))[0]["DESCRIPTION"])
    assert "no API break" in text
    assert "readiness: EXEMPT — minor release without API breaks" in text


def test_zero_length_window_has_no_dtend() -> None:
    """RFC 5545 wants DTEND after DTSTART: an empty window is given by DTSTART alone."""
    [event] = events(feed_of(make_plan(duration=timedelta(0))))
    assert "DTEND" not in event
    assert event["DTSTART"] == "20261215T130000Z"


def test_naive_now_is_refused() -> None:
    """``now`` without a timezone is a programming mistake, not a guess."""
    with pytest.raises(ValueError, match="aware"):
        calendar_feed([], now=datetime(2026, 12, 1))


# -- escaping and injection -------------------------------------------------------------


def test_text_values_are_escaped() -> None:
    """Backslash, comma, semicolon and newline are escaped; unescaping gives them back."""
    assert escape_text("a\\b,c;d\ne") == "a\\\\b\\,c\\;d\\ne"
    plan = make_plan(service="svc,one;two\\three", release="1\n2")
    [event] = events(feed_of(plan))
    assert event["SUMMARY"] == "⚠ API BREAK: deploy svc\\,one\\;two\\\\three 1\\n2"
    assert unescape(event["SUMMARY"]) == "⚠ API BREAK: deploy svc,one;two\\three 1\n2"


def test_control_characters_are_removed() -> None:
    """CR, NUL, other C0 and C1 controls and DEL go; TAB and LF stay; LS/PS/NEL become LF."""
    assert clean_text("a\rb\x00c\x1bd\x7fe\x9bf") == "abcdef"
    assert clean_text("a\tb\nc") == "a\tb\nc"
    assert clean_text("a\u2028b\u2029c\x85d") == "a\nb\nc\nd"
    assert clean_text("a\r\nb") == "a\nb"


def test_plan_values_cannot_inject_properties_or_events() -> None:
    """CRLF + END:VEVENT in any plan text stays inside its property: one event, and its
    SUMMARY and DESCRIPTION carry the text (CR removed)."""
    plan = make_plan(
        id="pkgdb2" + INJECTION,
        service="pkgdb2" + INJECTION,
        title="title" + INJECTION,
        api_breaks=(ApiBreak("/api" + INJECTION, "change" + INJECTION, INJECTION),),
        staging=Staging(url="https://stg" + INJECTION),
    )
    feed = feed_of(plan)
    physical = re.split(r"\r\n|\r|\n", feed)  # as a lenient reader would split it
    assert physical.count("BEGIN:VEVENT") == 1
    assert physical.count("END:VEVENT") == 1
    assert not any(line.startswith("UID:evil") for line in physical)
    [event] = events(feed)
    assert event["UID"].endswith("@deploybot")
    assert unescape(event["UID"]).startswith("pkgdb2\nEND:VEVENT\nBEGIN:VEVENT")
    assert INJECTION.replace("\r", "") in unescape(event["SUMMARY"])
    assert "title" + INJECTION.replace("\r", "") in unescape(event["DESCRIPTION"])


def test_a_lone_surrogate_cannot_break_utf8_encoding() -> None:
    """Text that cannot be encoded is dropped, so the feed always encodes to UTF-8."""
    feed = feed_of(make_plan(title="bad \udc80 text"))
    feed.encode("utf-8")
    assert "bad  text" in unescape(events(feed)[0]["DESCRIPTION"])


# -- folding ----------------------------------------------------------------------------


def octets(line: str) -> int:
    return len(line.encode("utf-8"))


def test_long_lines_are_folded_to_75_octets() -> None:
    """A long DESCRIPTION is folded; every physical line is at most 75 octets and each
    continuation starts with one space; unfolding gives the value back."""
    title = "x" * 500
    feed = feed_of(make_plan(title=title))
    physical = feed.split("\r\n")[:-1]
    assert max(octets(line) for line in physical) == MAX_LINE_OCTETS
    assert all(octets(line) <= MAX_LINE_OCTETS for line in physical)
    description = next(i for i, line in enumerate(physical) if line.startswith("DESCRIPTION:"))
    assert physical[description + 1].startswith(" x")
    assert unescape(events(feed)[0]["DESCRIPTION"]).startswith(title + "\n")


def test_short_lines_are_not_folded() -> None:
    """A line of exactly 75 octets stays one line; 76 octets make two."""
    exact = "SUMMARY:" + "a" * (MAX_LINE_OCTETS - 8)
    assert fold_line(exact) == [exact]
    assert fold_line(exact + "b") == [exact, " b"]


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_folding_never_splits_a_utf8_character(char: str) -> None:
    """Multi-byte characters at every offset: each physical line is whole UTF-8 (it
    decodes on its own) within 75 octets, and lines are filled as far as they can be."""
    for lead in range(4):
        line = "DESCRIPTION:" + "a" * lead + char * 60
        physical = fold_line(line)
        for piece in physical:
            assert octets(piece) <= MAX_LINE_OCTETS
            piece.encode("utf-8").decode("utf-8")
        for piece in physical[:-1]:
            assert octets(piece) > MAX_LINE_OCTETS - octets(char)
        assert "".join(p.removeprefix(" ") if i else p for i, p in enumerate(physical)) == line


def test_folding_keeps_a_backslash_escape_on_one_line() -> None:
    """A fold never separates a backslash from the character it escapes."""
    for lead in range(3):
        line = "DESCRIPTION:" + "a" * lead + "\\n" * 60
        for piece in fold_line(line):
            body = piece.removeprefix(" ") if piece.startswith(" ") else piece
            assert not re.search(r"(?<!\\)(\\\\)*\\$", body), piece
            assert octets(piece) <= MAX_LINE_OCTETS


def roundtrip(text: str) -> str:
    """escape, fold, unfold, unescape."""
    line = "DESCRIPTION:" + escape_text(text)
    physical = fold_line(line)
    for piece in physical:
        assert octets(piece) <= MAX_LINE_OCTETS
        assert "\r" not in piece
        assert "\n" not in piece
    unfolded = unfold("\r\n".join(physical))
    assert unfolded == line
    return unescape(unfolded.removeprefix("DESCRIPTION:"))


NASTY = st.sampled_from(["\\", ",", ";", "\n", "\r", "\x00", "\u2028", "é", "€", "😀"])


@given(st.text(st.characters(codec="utf-8") | NASTY))
@example("\\n" * 40)
@example("é" * 80)
@example(INJECTION)
def test_any_text_round_trips_through_escape_and_fold(text: str) -> None:
    """Any text comes back from escape + fold + unfold + unescape as it was, cleaned:
    only control characters are lost, and no physical line exceeds 75 octets."""
    assert roundtrip(text) == clean_text(text)


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cc"])))
def test_text_without_controls_round_trips_unchanged(text: str) -> None:
    """Text with no control characters (nor Unicode line breaks) is kept exactly."""
    text = re.sub("[\u2028\u2029]", "", text)
    assert roundtrip(text) == text


@given(st.text(st.characters(codec="utf-8") | NASTY, max_size=200))
def test_any_title_keeps_the_feed_structure(title: str) -> None:
    """Whatever the title, the feed has one event, lines within 75 octets, CRLF only."""
    feed = feed_of(make_plan(title=title))
    physical = feed.split("\r\n")[:-1]
    assert all(octets(line) <= MAX_LINE_OCTETS for line in physical)
    assert all("\r" not in line and "\n" not in line for line in physical)
    [event] = events(feed)
    assert unescape(event["DESCRIPTION"]).startswith(clean_text(title))


# -- real plans -------------------------------------------------------------------------


def test_real_plan_file() -> None:
    """deploy-plans/pkgdb2-2.0.yaml gives its event: times, summary, breaks, staging."""
    plan = load_plan(REPO / "deploy-plans" / "pkgdb2-2.0.yaml")
    [event] = events(feed_of(plan))
    assert event["UID"] == f"{plan.id}@deploybot"
    assert event["DTSTART"] == plan.when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert event["DTEND"] == plan.end.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert unescape(event["SUMMARY"]) == f"⚠ API BREAK: deploy {plan.service} {plan.release}"
    text = unescape(event["DESCRIPTION"])
    for api_break in plan.api_breaks:
        assert f"⚠ API BREAK: {api_break.endpoint} — {api_break.change}" in text
    assert plan.staging.url in text
    assert "readiness: " in text


def test_all_shipped_plans_make_one_valid_feed() -> None:
    """Every plan of deploy-plans/ is an event, by start time, within 75 octets."""
    result = load_paths([REPO / "deploy-plans"])
    assert result.ok, result.problems
    feed = feed_of(*reversed(result.plans))
    uids = [e["UID"] for e in events(feed)]
    expected = sorted(result.plans, key=lambda p: (p.when, p.id))
    assert uids == [f"{plan.id}@deploybot" for plan in expected]
    assert all(octets(line) <= MAX_LINE_OCTETS for line in feed.split("\r\n"))
