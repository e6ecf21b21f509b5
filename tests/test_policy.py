"""Readiness against the deployment policy (SPEC §2)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.plans.model import Announcement, Consumer, Plan, Roster, Source, Staging
from deploybot.plans.policy import (
    LEAF_EXEMPTION,
    MINOR_EXEMPTION,
    Check,
    Readiness,
    Span,
    assess,
    coverage_gaps,
    format_readiness,
)
from tests.planfactory import make_plan, make_shift, utc

# The factory's default plan: deploy 2026-12-15 13:00–21:00 UTC, so with 14 days' notice
# the deadline for announcements and the call for testing is 2026-12-01.
DEADLINE = date(2026, 12, 1)
RULES = (
    "api-break-announcement",
    "devel-announcement",
    "meeting",
    "staging-call",
    "roster-coverage",
    "consumer-contacts",
)
PARIS = ZoneInfo("Europe/Paris")


def check(plan: Plan, rule: str, notice_days: int = 14) -> Check:
    readiness = assess(plan, notice_days)
    (found,) = [c for c in readiness.checks if c.rule == rule]
    return found


def with_staging_call(plan: Plan, day: date | None) -> Plan:
    return dataclasses.replace(plan, staging=Staging(url=plan.staging.url, call_for_testing=day))


# --- the whole verdict --------------------------------------------------------------------


def test_complete_plan_is_ready_with_six_checks_in_rule_order() -> None:
    """A plan meeting every rule is under policy, ready, with the six rules in order."""
    readiness = assess(make_plan())
    assert readiness.under_policy
    assert readiness.exempt_reason is None
    assert readiness.ready
    assert readiness.missing == ()
    assert tuple(c.rule for c in readiness.checks) == RULES
    assert all(c.met for c in readiness.checks)


def test_one_missing_rule_makes_the_plan_not_ready() -> None:
    """A single unmet rule makes the verdict not ready and is the only one in `missing`."""
    readiness = assess(make_plan(meetings=()))
    assert not readiness.ready
    assert [c.rule for c in readiness.missing] == ["meeting"]


def test_negative_notice_days_is_refused() -> None:
    """notice_days below zero is a programming error, not a verdict."""
    with pytest.raises(ValueError, match="notice_days"):
        assess(make_plan(), -1)


# --- scope and exemptions -----------------------------------------------------------------


def test_leaf_service_is_exempt_even_when_major_with_api_breaks() -> None:
    """A leaf plan is exempt (leaf reason), ready, and gets no checks."""
    readiness = assess(make_plan(leaf=True, announcements=(), meetings=()))
    assert not readiness.under_policy
    assert readiness.exempt_reason == LEAF_EXEMPTION
    assert readiness.checks == ()
    assert readiness.ready
    assert readiness.missing == ()


def test_minor_release_without_api_breaks_is_exempt() -> None:
    """Neither major nor breaking an API: exempt as a minor release, whatever else is missing."""
    readiness = assess(make_plan(major=False, api_breaks=(), announcements=(), roster=Roster()))
    assert not readiness.under_policy
    assert readiness.exempt_reason == MINOR_EXEMPTION
    assert readiness.ready


def test_minor_leaf_release_is_exempt_as_minor() -> None:
    """When both exemptions hold, the minor-release one is given (it holds regardless)."""
    readiness = assess(make_plan(major=False, api_breaks=(), leaf=True))
    assert readiness.exempt_reason == MINOR_EXEMPTION


def test_minor_release_with_api_breaks_is_under_policy() -> None:
    """API breaks put a non-major release under policy."""
    readiness = assess(make_plan(major=False, announcements=()))
    assert readiness.under_policy
    assert not readiness.ready


def test_major_release_without_api_breaks_is_under_policy() -> None:
    """A major release is under policy even without API breaks."""
    readiness = assess(make_plan(api_breaks=()))
    assert readiness.under_policy
    assert readiness.ready


# --- rule 1: API-break announcement to infrastructure -------------------------------------


def test_infrastructure_announcement_met_names_the_date_and_lead_time() -> None:
    """Met: the reason gives the announcement date and how many days ahead it was."""
    found = check(make_plan(), "api-break-announcement")
    assert found.met
    assert found.reason == "announced to infrastructure on 2026-11-20 (25 days ahead)"
    assert found.key == "announcements[0]"


def test_infrastructure_announcement_on_the_deadline_is_met() -> None:
    """An announcement dated exactly notice_days before the deploy day is in time."""
    plan = make_plan(
        announcements=(Announcement("infrastructure", DEADLINE, api_break=True),), essential=False
    )
    assert check(plan, "api-break-announcement").met


def test_infrastructure_announcement_missing_says_by_when_and_separately() -> None:
    """Missing: the reason gives the deadline, the notice and asks for a separate notice."""
    found = check(make_plan(announcements=()), "api-break-announcement")
    assert not found.met
    assert found.reason == (
        "no API-break announcement to the infrastructure list by 2026-12-01 "
        "(14 days before the deploy); send one separate from the outage notice"
    )
    assert found.key == "announcements"


def test_infrastructure_announcement_too_late_is_missing() -> None:
    """An API-break announcement after the deadline does not count; the reason says how late."""
    plan = make_plan(announcements=(Announcement("infrastructure", date(2026, 12, 5), True),))
    found = check(plan, "api-break-announcement")
    assert not found.met
    assert "on 2026-12-05 is only 10 days ahead" in found.reason
    assert found.reason.endswith("it was due by 2026-12-01 (14 days before the deploy)")
    assert found.key == "announcements[0]"


def test_announcement_after_the_deploy_is_missing() -> None:
    """An API-break announcement dated after the deploy day says so and asks for a timely one."""
    plan = make_plan(announcements=(Announcement("infrastructure", date(2026, 12, 20), True),))
    found = check(plan, "api-break-announcement")
    assert not found.met
    assert found.reason.startswith(
        "the API-break announcement to infrastructure on 2026-12-20 is after the deploy"
    )


def test_outage_notice_without_api_break_flag_does_not_count() -> None:
    """An announcement not marked api_break (an outage notice) does not satisfy rule 1."""
    plan = make_plan(announcements=(Announcement("infrastructure", date(2026, 11, 1), False),))
    found = check(plan, "api-break-announcement")
    assert not found.met
    assert "does not say api_break" in found.reason


def test_devel_announcement_does_not_satisfy_the_infrastructure_rule() -> None:
    """Rule 1 wants the infrastructure list specifically."""
    plan = make_plan(announcements=(Announcement("devel", date(2026, 11, 1), True),))
    assert not check(plan, "api-break-announcement").met
    assert check(plan, "devel-announcement").met


# --- rule 2: devel list when essential ----------------------------------------------------


def test_essential_plan_needs_a_devel_announcement() -> None:
    """Essential: a timely API-break announcement to devel is required; missing names devel."""
    plan = make_plan(announcements=(Announcement("infrastructure", date(2026, 11, 1), True),))
    found = check(plan, "devel-announcement")
    assert not found.met
    assert found.reason.startswith("no API-break announcement to the devel list by 2026-12-01")


def test_essential_plan_with_devel_announcement_is_met() -> None:
    """Essential with a timely devel announcement: met, with its date."""
    found = check(make_plan(), "devel-announcement")
    assert found.met
    assert found.reason == "announced to devel on 2026-11-22 (23 days ahead)"
    assert found.key == "announcements[1]"


def test_non_essential_plan_reports_devel_as_not_required() -> None:
    """Not essential: the devel rule is reported met, saying it is not required."""
    plan = make_plan(
        essential=False,
        announcements=(Announcement("infrastructure", date(2026, 11, 1), True),),
    )
    found = check(plan, "devel-announcement")
    assert found.met
    assert found.reason == "not essential: devel list not required"
    assert assess(plan).ready


# --- rule 3: meeting ----------------------------------------------------------------------


def test_meeting_before_the_deploy_day_is_met() -> None:
    """A meeting the day before the deploy counts; the latest one is named."""
    found = check(make_plan(meetings=(date(2026, 12, 2), date(2026, 12, 14))), "meeting")
    assert found.met
    assert found.reason == "discussed at the weekly meeting on 2026-12-14"


def test_meeting_on_the_deploy_day_does_not_count() -> None:
    """A meeting on the deploy day itself is not before it."""
    found = check(make_plan(meetings=(date(2026, 12, 15),)), "meeting")
    assert not found.met
    assert "no meeting before the deploy day 2026-12-15" in found.reason


def test_no_meeting_is_missing_and_says_what_to_do() -> None:
    """No meeting: missing, asking to put it on an agenda before the deploy day."""
    found = check(make_plan(meetings=()), "meeting")
    assert not found.met
    assert found.reason == (
        "not discussed in any weekly infrastructure meeting; "
        "put it on the agenda of one before 2026-12-15"
    )
    assert found.key == "meetings"


def test_dates_are_compared_in_utc() -> None:
    """The deploy day is the UTC date of `when`: 00:30 Paris time on the 15th is the 14th."""
    when = datetime(2026, 12, 15, 0, 30, tzinfo=PARIS).astimezone(UTC)
    assert check(make_plan(when=when, meetings=(date(2026, 12, 13),)), "meeting").met
    assert not check(make_plan(when=when, meetings=(date(2026, 12, 14),)), "meeting").met


# --- rule 4: staging call for testing -----------------------------------------------------


def test_staging_call_in_time_is_met() -> None:
    """A call for testing on or before the deadline is met, with its date."""
    found = check(make_plan(), "staging-call")
    assert found.met
    assert found.reason == "call for testing in staging sent on 2026-11-17 (28 days ahead)"
    assert check(with_staging_call(make_plan(), DEADLINE), "staging-call").met


def test_staging_call_missing() -> None:
    """No call for testing: missing, with the deadline; key points at the plan field."""
    found = check(with_staging_call(make_plan(), None), "staging-call")
    assert not found.met
    assert found.reason == (
        "no call for testing in staging; send one by 2026-12-01 (14 days before the deploy), "
        "saying the API breaks"
    )
    assert found.key == "staging.call_for_testing"


def test_staging_call_too_late() -> None:
    """A call for testing after the deadline is missing; the reason says how far ahead it was."""
    found = check(with_staging_call(make_plan(), date(2026, 12, 2)), "staging-call")
    assert not found.met
    assert "on 2026-12-02 is only 13 days ahead" in found.reason


# --- rule 5: roster -----------------------------------------------------------------------


def test_roster_covering_the_window_with_every_team_is_met() -> None:
    """Shifts whose union is the window, with every team present: met."""
    found = check(make_plan(), "roster-coverage")
    assert found.met
    assert found.reason == (
        "window 13:00–21:00 UTC covered by 3 people; every team present (rel-eng)"
    )


def test_roster_gap_is_reported_with_its_times() -> None:
    """A gap between shifts is named with its start and end."""
    shifts = (
        make_shift("infrastructure", ["pingou"], utc(2026, 12, 15, 13), utc(2026, 12, 15, 17)),
        make_shift("rel-eng", ["dgilmore"], utc(2026, 12, 15, 19), utc(2026, 12, 15, 21)),
    )
    found = check(make_plan(roster=Roster(shifts=shifts)), "roster-coverage")
    assert not found.met
    assert found.reason == "nobody on shift 17:00–19:00 UTC; add shifts to the roster"
    assert found.key == "roster.shifts"


def test_roster_gap_is_shown_in_the_configured_timezone() -> None:
    """reason_in(tz) renders the same gap in local time with the zone's abbreviation."""
    shifts = (make_shift("rel-eng", ["dgilmore"], utc(2026, 12, 15, 13), utc(2026, 12, 15, 20)),)
    found = check(make_plan(roster=Roster(shifts=shifts)), "roster-coverage")
    assert found.reason_in(PARIS).startswith("nobody on shift 21:00–22:00 CET")


def test_roster_gap_across_midnight_names_the_end_date() -> None:
    """A gap ending on another day than it starts shows the end date."""
    when = utc(2026, 12, 15, 20)
    shifts = (make_shift("rel-eng", ["dgilmore"], when, utc(2026, 12, 15, 22)),)
    plan = make_plan(when=when, roster=Roster(shifts=shifts))
    assert "22:00–2026-12-16 04:00 UTC" in check(plan, "roster-coverage").reason


def test_shift_without_people_covers_nothing() -> None:
    """A shift with nobody in it leaves its time uncovered and its team absent."""
    shifts = (
        make_shift("infrastructure", ["pingou"], utc(2026, 12, 15, 13), utc(2026, 12, 15, 21)),
        make_shift("rel-eng", [], utc(2026, 12, 15, 13), utc(2026, 12, 15, 21)),
    )
    found = check(make_plan(roster=Roster(shifts=shifts)), "roster-coverage")
    assert not found.met
    assert found.reason == "no one on the roster for rel-eng; add shifts to the roster"
    assert found.key == "teams"


def test_missing_teams_are_named_along_with_gaps() -> None:
    """Every team without a person is named, after the uncovered times."""
    plan = make_plan(roster=Roster(), teams=("rel-eng", "docs", "qa"))
    found = check(plan, "roster-coverage")
    assert not found.met
    assert found.reason == (
        "nobody on shift 13:00–21:00 UTC; no one on the roster for rel-eng, docs, qa; "
        "add shifts to the roster"
    )


@given(
    window=st.integers(min_value=1, max_value=600),
    shifts=st.lists(
        st.tuples(st.integers(-60, 660), st.integers(1, 300)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=6,
    ),
)
def test_coverage_gaps_are_exactly_the_uncovered_minutes(
    window: int, shifts: list[tuple[int, int]]
) -> None:
    """Property: a minute of the window is in a gap iff no shift covers it; gaps are ordered."""
    base = utc(2026, 12, 15)

    def at(minute: int) -> datetime:
        return base + timedelta(minutes=minute)

    gaps = coverage_gaps([(at(a), at(b)) for a, b in shifts], at(0), at(window))
    for minute in range(window):
        covered = any(a <= minute < b for a, b in shifts)
        in_gap = any(g.start <= at(minute) < g.end for g in gaps)
        assert covered != in_gap
    starts = [g.start for g in gaps]
    assert starts == sorted(starts)
    assert all(g.start < g.end for g in gaps)


# --- rule 6: consumers --------------------------------------------------------------------


def test_consumers_all_with_contacts_is_met() -> None:
    """Every consumer with a contact: met."""
    consumers = (Consumer("compose", contact="dgilmore"), Consumer("fedocal", contact="pingou"))
    found = check(make_plan(consumers=consumers), "consumer-contacts")
    assert found.met
    assert found.reason == "all 2 consumers have a contact"


def test_consumers_without_contact_are_named() -> None:
    """Consumers without a contact (blank counts as none) are named; key is the first one's."""
    consumers = (
        Consumer("compose", contact="dgilmore"),
        Consumer("docs builder"),
        Consumer("qa checks", contact="  "),
    )
    found = check(make_plan(consumers=consumers), "consumer-contacts")
    assert not found.met
    assert found.reason == "no contact for docs builder, qa checks; add who to warn for each"
    assert found.key == "consumers[1].contact"


def test_no_consumers_is_met() -> None:
    """With no consumers listed, no consumer lacks a contact: met, and said so."""
    found = check(make_plan(consumers=()), "consumer-contacts")
    assert found.met
    assert found.reason == "no consumers listed"


# --- notice_days --------------------------------------------------------------------------


def test_notice_days_changes_the_verdict() -> None:
    """Notices 10 days ahead pass with notice_days=7 and fail with the default 14."""
    day = date(2026, 12, 5)
    plan = with_staging_call(
        make_plan(
            announcements=(
                Announcement("infrastructure", day, True),
                Announcement("devel", day, True),
            )
        ),
        day,
    )
    assert assess(plan, notice_days=7).ready
    lenient = check(plan, "api-break-announcement", notice_days=7)
    assert lenient.reason == "announced to infrastructure on 2026-12-05 (10 days ahead)"
    strict = assess(plan)
    assert not strict.ready
    assert [c.rule for c in strict.missing] == [
        "api-break-announcement",
        "devel-announcement",
        "staging-call",
    ]
    assert (
        "by 2026-12-08 (7 days before"
        in check(make_plan(announcements=()), "api-break-announcement", notice_days=7).reason
    )


# --- keys and formatting ------------------------------------------------------------------


def test_check_keys_resolve_to_plan_file_lines() -> None:
    """Each check's key finds a line through Source.line_of (falling back to the parent key)."""
    source = Source(
        file="deploy-plans/pkgdb2-2.0.yaml",
        lines=(("announcements", 12), ("consumers", 9), ("consumers[1]", 10), ("meetings", 15)),
    )
    plan = make_plan(
        source=source, meetings=(), consumers=(Consumer("a", contact="x"), Consumer("b"))
    )
    lines = {c.rule: plan.source.line_of(c.key) for c in assess(plan).missing}
    assert lines == {"meeting": 15, "consumer-contacts": 10}


def test_format_ready_plan() -> None:
    """A ready plan: a READY line with the count, then one ✔ line per rule."""
    lines = format_readiness(assess(make_plan()), UTC)
    assert lines[0] == "pkgdb2-2.0: READY (6/6)"
    assert (
        lines[1]
        == "  ✔ api-break-announcement: announced to infrastructure on 2026-11-20 (25 days ahead)"
    )
    assert len(lines) == 7
    assert all(line.startswith("  ✔ ") for line in lines[1:])


def test_format_missing_rules_in_the_configured_timezone() -> None:
    """A plan with problems: NOT READY with the count met, ✘ lines, times in the given zone."""
    shifts = (make_shift("rel-eng", ["dgilmore"], utc(2026, 12, 15, 13), utc(2026, 12, 15, 20)),)
    lines = format_readiness(assess(make_plan(roster=Roster(shifts=shifts), meetings=())), PARIS)
    assert lines[0] == "pkgdb2-2.0: NOT READY (4/6)"
    assert "  ✘ meeting: not discussed in any weekly infrastructure meeting" in lines[3]
    assert (
        lines[5] == "  ✘ roster-coverage: nobody on shift 21:00–22:00 CET; add shifts to the roster"
    )


def test_format_exempt_plan() -> None:
    """An exempt plan is one line: EXEMPT and the reason without its 'exempt:' prefix."""
    assert format_readiness(assess(make_plan(id="nuancier-1.3", leaf=True)), UTC) == [
        "nuancier-1.3: EXEMPT — leaf service (policy may be skipped)"
    ]
    minor = Readiness("ask-1.1", False, MINOR_EXEMPTION, ())
    assert format_readiness(minor, UTC) == ["ask-1.1: EXEMPT — minor release without API breaks"]


def test_span_renders_in_a_zone() -> None:
    """A Span renders as HH:MM–HH:MM with the zone's abbreviation (summer time in June)."""
    span = Span(utc(2026, 6, 1, 10), utc(2026, 6, 1, 12, 30))
    assert span.render(UTC) == "10:00–12:30 UTC"
    assert span.render(PARIS) == "12:00–14:30 CEST"
