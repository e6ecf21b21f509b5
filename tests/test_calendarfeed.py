"""deploybot.web.calendarfeed: /calendar.ics is valid RFC 5545 whatever a plan file holds;
read back with the icalendar library, and line by line where the bytes matter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import icalendar
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from deploybot.plans.files import load_paths, load_plan
from deploybot.plans.model import ApiBreak, Plan, Staging
from deploybot.web.calendarfeed import calendar_feed, clean_text
from tests.planfactory import make_plan, utc

REPO = Path(__file__).resolve().parent.parent
NOW = utc(2026, 12, 1, 9, 30)
BASE = "http://127.0.0.1:8080/"
#: RFC 5545 §3.1: content lines SHOULD NOT be longer than 75 octets, line break excluded.
MAX_LINE_OCTETS = 75

INJECTION = "\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil@x\r\nSUMMARY:evil"


# -- reading the feed back --------------------------------------------------------------


def octets(line: str) -> int:
    return len(line.encode("utf-8"))


def physical_lines(feed: str) -> list[str]:
    """The feed's lines as sent: CRLF only, each at most 75 octets, whole UTF-8."""
    assert feed.endswith("\r\n")
    assert not re.search(r"\r(?!\n)|(?<!\r)\n", feed), "a bare CR or LF"
    lines = feed.split("\r\n")[:-1]
    for line in lines:
        assert octets(line) <= MAX_LINE_OCTETS, line
        line.encode("utf-8").decode("utf-8")
    return lines


def unfolded(feed: str) -> list[str]:
    """RFC 5545 §3.1: a CRLF followed by one space or tab is removed."""
    return re.sub(r"\r\n[ \t]", "", feed).split("\r\n")[:-1]


def parse(feed: str) -> icalendar.Calendar:
    """The feed read by icalendar, which found nothing wrong in it."""
    physical_lines(feed)
    calendar = icalendar.Calendar.from_ical(feed)
    assert isinstance(calendar, icalendar.Calendar)
    for component in calendar.walk():
        assert component.errors == [], component.errors
    return calendar


def events(feed: str) -> list[icalendar.Event]:
    found = parse(feed).walk("VEVENT")
    assert all(isinstance(event, icalendar.Event) for event in found)
    return [event for event in found if isinstance(event, icalendar.Event)]


def text(event: icalendar.Event, name: str) -> str:
    """A TEXT property's value, unescaped by icalendar."""
    return str(event[name])


def categories(event: icalendar.Event) -> list[str]:
    value = event["CATEGORIES"]
    assert isinstance(value, icalendar.vCategory)
    return [str(category) for category in value.cats]


def feed_of(*plans: Plan, notice_days: int = 14) -> str:
    return calendar_feed(plans, now=NOW, notice_days=notice_days, base_url=BASE)


# -- structure --------------------------------------------------------------------------


def test_empty_plan_list_gives_a_valid_empty_calendar() -> None:
    """No plan: a VCALENDAR with its required properties and no event."""
    feed = feed_of()
    lines = unfolded(feed)
    assert (lines[0], lines[-1]) == ("BEGIN:VCALENDAR", "END:VCALENDAR")
    calendar = parse(feed)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"])
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["X-WR-CALNAME"]) == "deploys"
    assert events(feed) == []


def test_one_event_per_plan_with_utc_times_stable_uid_and_page_url() -> None:
    """UID is ``id@deploybot``; DTSTAMP is now, DTSTART/DTEND the window, all UTC ``Z``;
    URL is the deploy page under the server's address."""
    paris = timezone(timedelta(hours=1))
    plan = make_plan(when=datetime(2026, 12, 15, 14, 0, tzinfo=paris))
    feed = calendar_feed([plan], now=NOW.astimezone(paris), base_url=BASE)
    [event] = events(feed)
    assert text(event, "UID") == "pkgdb2-2.0@deploybot"
    assert event.decoded("DTSTAMP") == NOW
    assert event.decoded("DTSTART") == utc(2026, 12, 15, 13)
    assert event.decoded("DTEND") == utc(2026, 12, 15, 21)
    assert event.decoded("DTSTART").tzinfo.utcoffset(None) == timedelta(0)
    assert str(event["URL"]) == "http://127.0.0.1:8080/deployments/pkgdb2-2.0"
    lines = unfolded(feed)
    for line in ("DTSTAMP:20261201T093000Z", "DTSTART:20261215T130000Z", "DTEND:20261215T210000Z"):
        assert line in lines
    assert "BEGIN:VTIMEZONE" not in lines


def test_no_url_without_the_servers_address() -> None:
    [event] = events(calendar_feed([make_plan()], now=NOW))
    assert "URL" not in event


def test_uid_is_the_same_across_runs() -> None:
    """Two feeds at different times give the same UIDs (only DTSTAMP changes)."""
    plan = make_plan()
    first = calendar_feed([plan], now=NOW)
    later = calendar_feed([plan], now=NOW + timedelta(hours=5))
    assert [text(e, "UID") for e in events(first)] == [text(e, "UID") for e in events(later)]
    assert first.replace("20261201T093000Z", "") == later.replace("20261201T143000Z", "")


def test_events_are_sorted_by_start_time() -> None:
    """Events come by start time, whatever the order of the plans given."""
    late = make_plan(id="late", when=utc(2027, 1, 5, 10))
    early = make_plan(id="early", when=utc(2026, 12, 20, 10))
    middle = make_plan(id="middle", when=utc(2026, 12, 28, 10))
    uids = [text(e, "UID") for e in events(feed_of(late, early, middle))]
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
    by_uid = {text(e, "UID"): e for e in events(feed_of(breaking, quiet))}
    assert text(by_uid["pkgdb2-2.0@deploybot"], "SUMMARY") == "⚠ API BREAK: deploy pkgdb2 2.0"
    assert text(by_uid["quiet@deploybot"], "SUMMARY") == "deploy pkgdb2 2.0"
    assert categories(by_uid["pkgdb2-2.0@deploybot"]) == ["deploy", "pkgdb2", "API break"]
    assert categories(by_uid["quiet@deploybot"]) == ["deploy", "pkgdb2"]


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
    description = text(event, "DESCRIPTION")
    assert "⚠ API BREAK: /api/a — returns null" in description
    assert "migration: treat null as []" in description
    assert "⚠ API BREAK: /api/b — removed" in description
    assert "no migration note" in description
    assert "readiness: NOT READY (5 of 6 rules met)" in description
    assert "MISSING: discussed in a weekly infrastructure meeting" in description
    assert "met: call for testing in staging" in description
    assert "staging: https://admin.stg.fedoraproject.org/pkgdb (call for testing" in description
    assert "not ready" in categories(event)


def test_readiness_uses_notice_days() -> None:
    """A call for testing 10 days ahead is met with notice_days=7, missing with 14."""
    plan = make_plan(staging=Staging(url="", call_for_testing=utc(2026, 12, 5).date()))
    relaxed = text(events(feed_of(plan, notice_days=7))[0], "DESCRIPTION")
    strict = text(events(feed_of(plan, notice_days=14))[0], "DESCRIPTION")
    assert "readiness: READY (6 of 6 rules met)" in relaxed
    assert "MISSING: call for testing in staging" in strict


def test_exempt_plan_says_so() -> None:
    """A minor release without API breaks is exempt, and its description says why."""
    plan = make_plan(api_breaks=(), major=False)
    description = text(events(feed_of(plan))[0], "DESCRIPTION")
    assert "no API break" in description
    assert "readiness: EXEMPT — minor release without API breaks" in description


def test_zero_length_window_has_no_dtend() -> None:
    """RFC 5545 wants DTEND after DTSTART: an empty window is given by DTSTART alone."""
    [event] = events(feed_of(make_plan(duration=timedelta(0))))
    assert "DTEND" not in event
    assert event.decoded("DTSTART") == utc(2026, 12, 15, 13)


def test_naive_now_is_refused() -> None:
    """``now`` without a timezone is a programming mistake, not a guess."""
    with pytest.raises(ValueError, match="aware"):
        calendar_feed([], now=datetime(2026, 12, 1))


# -- escaping and injection -------------------------------------------------------------


def test_text_values_are_escaped() -> None:
    """Backslash, comma, semicolon and newline are escaped on the wire; icalendar reads
    them back."""
    plan = make_plan(service="svc,one;two\\three", release="1\n2")
    feed = feed_of(plan)
    assert "SUMMARY:⚠ API BREAK: deploy svc\\,one\\;two\\\\three 1\\n2" in unfolded(feed)
    [event] = events(feed)
    assert text(event, "SUMMARY") == "⚠ API BREAK: deploy svc,one;two\\three 1\n2"
    assert "svc,one;two\\three" in categories(event)


def test_control_characters_are_removed() -> None:
    """CR, NUL, other C0 and C1 controls and DEL go; TAB and LF stay; LS/PS/NEL become LF."""
    assert clean_text("a\rb\x00c\x1bd\x7fe\x9bf") == "abcdef"
    assert clean_text("a\tb\nc") == "a\tb\nc"
    assert clean_text("a\u2028b\u2029c\x85d") == "a\nb\nc\nd"
    assert clean_text("a\r\nb") == "a\nb"


def test_a_backslash_n_in_plan_text_is_a_line_break_as_icalendar_reads_it() -> None:
    """icalendar turns a literal ``\\N`` it is given into a line break; clean_text does
    it first, so what the feed says is what clean_text documents."""
    assert clean_text("C:\\Net") == "C:\net"
    [event] = events(feed_of(make_plan(title="C:\\Net \\\\N")))
    assert text(event, "DESCRIPTION").startswith(clean_text("C:\\Net \\\\N") + "\n")


def test_plan_values_cannot_inject_properties_or_events() -> None:
    """CRLF + END:VEVENT in any plan text stays inside its property: one event, and its
    SUMMARY and DESCRIPTION carry the text (CR removed); the URL quotes the id."""
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
    assert text(event, "UID").endswith("@deploybot")
    assert text(event, "UID").startswith("pkgdb2\nEND:VEVENT\nBEGIN:VEVENT")
    assert INJECTION.replace("\r", "") in text(event, "SUMMARY")
    assert "title" + INJECTION.replace("\r", "") in text(event, "DESCRIPTION")
    assert str(event["URL"]).startswith(BASE + "deployments/pkgdb2%0D%0AEND%3AVEVENT")


def test_a_lone_surrogate_cannot_break_utf8_encoding() -> None:
    """Text that cannot be encoded is dropped, so the feed always encodes to UTF-8."""
    feed = feed_of(make_plan(title="bad \udc80 text"))
    feed.encode("utf-8")
    assert "bad  text" in text(events(feed)[0], "DESCRIPTION")


# -- folding ----------------------------------------------------------------------------


def test_long_lines_are_folded_to_75_octets() -> None:
    """A long DESCRIPTION is folded; every physical line is at most 75 octets and each
    continuation starts with one space; unfolding gives the value back."""
    title = "x" * 500
    feed = feed_of(make_plan(title=title))
    physical = physical_lines(feed)
    assert max(octets(line) for line in physical) >= MAX_LINE_OCTETS - 1
    description = next(i for i, line in enumerate(physical) if line.startswith("DESCRIPTION:"))
    assert physical[description + 1].startswith(" x")
    assert text(events(feed)[0], "DESCRIPTION").startswith(title + "\n")


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_folding_never_splits_a_utf8_character(char: str) -> None:
    """Multi-byte characters at every offset: each physical line is whole UTF-8 (it
    decodes on its own) within 75 octets, and the value reads back whole."""
    for lead in range(4):
        title = "a" * lead + char * 60
        feed = feed_of(make_plan(title=title))
        physical_lines(feed)
        assert text(events(feed)[0], "DESCRIPTION").startswith(title + "\n")


NASTY = st.sampled_from(["\\", ",", ";", "\n", "\r", "\x00", "\u2028", "é", "€", "😀", ":"])


@given(st.text(st.characters(codec="utf-8") | NASTY, max_size=200))
@example("\\n" * 40)
@example("é" * 80)
@example(INJECTION)
@example("\\N")
def test_any_title_keeps_the_feed_structure_and_reads_back(title: str) -> None:
    """Whatever the title, the feed has one event, lines within 75 octets, CRLF only,
    and icalendar reads the title back as it was, cleaned (only control characters are
    lost)."""
    feed = feed_of(make_plan(title=title))
    physical = re.split(r"\r\n|\r|\n", feed)
    assert physical.count("BEGIN:VEVENT") == 1
    [event] = events(feed)
    description = text(event, "DESCRIPTION")
    cleaned = clean_text(title)
    assert description.startswith(cleaned + "\n") if cleaned else description


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=200))
def test_a_service_without_controls_reads_back_unchanged(service: str) -> None:
    """Text with no control characters (nor Unicode line breaks, nor ``\\N``, which
    clean_text makes a line break as icalendar reads it) is kept exactly, in the SUMMARY
    and the CATEGORIES."""
    service = re.sub("[\u2028\u2029]", "", service)
    while "\\N" in service:  # (removing one may join a backslash to another N)
        service = service.replace("\\N", "")
    [event] = events(feed_of(make_plan(service=service, release="2.0")))
    assert text(event, "SUMMARY") == f"⚠ API BREAK: deploy {service} 2.0"
    if service:
        assert service in categories(event)


# -- real plans -------------------------------------------------------------------------


def test_real_plan_file() -> None:
    """deploy-plans/pkgdb2-2.0.yaml gives its event: times, summary, breaks, staging."""
    plan = load_plan(REPO / "deploy-plans" / "pkgdb2-2.0.yaml")
    [event] = events(feed_of(plan))
    assert text(event, "UID") == f"{plan.id}@deploybot"
    assert event.decoded("DTSTART") == plan.when.astimezone(UTC)
    assert event.decoded("DTEND") == plan.end.astimezone(UTC)
    assert text(event, "SUMMARY") == f"⚠ API BREAK: deploy {plan.service} {plan.release}"
    description = text(event, "DESCRIPTION")
    for api_break in plan.api_breaks:
        assert f"⚠ API BREAK: {api_break.endpoint} — {api_break.change}" in description
    assert plan.staging.url in description
    assert "readiness: " in description
    assert str(event["URL"]) == f"{BASE}deployments/{plan.id}"


def test_all_shipped_plans_make_one_valid_feed() -> None:
    """Every plan of deploy-plans/ is an event, by start time, within 75 octets."""
    result = load_paths([REPO / "deploy-plans"])
    assert result.ok, result.problems
    feed = feed_of(*reversed(result.plans))
    uids = [text(e, "UID") for e in events(feed)]
    expected = sorted(result.plans, key=lambda p: (p.when, p.id))
    assert uids == [f"{plan.id}@deploybot" for plan in expected]
