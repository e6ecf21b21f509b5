"""deploybot.plans.files: plan files in, Plans out, every problem located by file, line and key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from deploybot.drift.shape import format_path
from deploybot.errors import PlanError, Problem
from deploybot.plans import files
from deploybot.plans.files import (
    API_BREAK,
    MAX_PLAN_BYTES,
    MAX_PLAN_DEPTH,
    PLAN,
    ROSTER,
    SHIFT,
    STAGING,
    dump_plan,
    flow_depth_exceeded,
    load_paths,
    load_plan,
    load_text,
)
from deploybot.plans.model import (
    Announcement,
    ApiBreak,
    Consumer,
    Plan,
    Probe,
    Production,
    Roster,
    Shift,
    Staging,
)

REPO = Path(__file__).resolve().parent.parent

SPEC_EXAMPLE = dedent(
    """\
    id: pkgdb2-2.0                 # unique; default: file name without .yaml
    service: pkgdb2
    release: 2.0
    title: pkgdb2 replaces pkgdb1
    when: 2014-05-28T13:00:00Z
    duration: 8h
    major: true
    leaf: false
    essential: true
    owners: [pingou]
    playbooks: [groups/pkgdb.yml]
    staging:    {url: https://admin.stg.fedoraproject.org/pkgdb, call_for_testing: 2014-05-01}
    production: {url: https://admin.fedoraproject.org/pkgdb}
    api_breaks:
      - endpoint: /api/packager/acl
        change: returns null instead of [] when the packager has no ACLs
        migration: treat null as an empty list
    consumers:
      - {name: rel-eng compose scripts, team: rel-eng, contact: dgilmore}
    announcements:
      - {list: infrastructure, date: 2014-05-10, api_break: true}
      - {list: devel, date: 2014-05-12, api_break: true}
    meetings: [2014-05-15]
    teams: [rel-eng, docs, qa, cvsadmins]
    roster:
      channel: "#pkgdb2-firefight"
      shifts:
        - {team: infrastructure, people: [pingou, abadger1999], from: 13:00, to: "21:00"}
        - {team: rel-eng, people: [dgilmore]}
      escalation: [nirik]
    """
)


def problems(text: str, file: str = "plan.yaml") -> list[Problem]:
    """The problems of a plan text (dedented), which must be refused."""
    with pytest.raises(PlanError) as caught:
        load_text(dedent(text), file)
    return caught.value.problems


def where(found: list[Problem]) -> list[tuple[str, int, str]]:
    return [(problem.file, problem.line, problem.key) for problem in found]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- good plans ----------------------------------------------------------------------------


def test_spec_example_loads_with_every_field() -> None:
    """The SPEC §1 example loads; unquoted 2.0 and 13:00 are read as written, not as numbers."""
    plan = load_text(SPEC_EXAMPLE, "deploy-plans/pkgdb2-2.0.yaml")
    window = (utc(2014, 5, 28, 13), utc(2014, 5, 28, 21))
    assert plan == Plan(
        id="pkgdb2-2.0",
        service="pkgdb2",
        release="2.0",
        title="pkgdb2 replaces pkgdb1",
        when=window[0],
        duration=timedelta(hours=8),
        major=True,
        essential=True,
        owners=("pingou",),
        playbooks=("groups/pkgdb.yml",),
        staging=Staging("https://admin.stg.fedoraproject.org/pkgdb", date(2014, 5, 1)),
        production=Production("https://admin.fedoraproject.org/pkgdb"),
        api_breaks=(
            ApiBreak(
                "/api/packager/acl",
                "returns null instead of [] when the packager has no ACLs",
                "treat null as an empty list",
            ),
        ),
        consumers=(Consumer("rel-eng compose scripts", "rel-eng", "dgilmore"),),
        announcements=(
            Announcement("infrastructure", date(2014, 5, 10), api_break=True),
            Announcement("devel", date(2014, 5, 12), api_break=True),
        ),
        meetings=(date(2014, 5, 15),),
        teams=("rel-eng", "docs", "qa", "cvsadmins"),
        roster=Roster(
            channel="#pkgdb2-firefight",
            shifts=(
                Shift("infrastructure", ("pingou", "abadger1999"), *window, "13:00", "21:00"),
                Shift("rel-eng", ("dgilmore",), *window),
            ),
            escalation=("nirik",),
        ),
    )


def test_source_records_the_line_of_every_key() -> None:
    """Plan.source names the file and the line of each dotted key, for policy messages."""
    plan = load_text(SPEC_EXAMPLE, "deploy-plans/pkgdb2-2.0.yaml")
    assert plan.source.file == "deploy-plans/pkgdb2-2.0.yaml"
    lines = dict(plan.source.lines)
    assert lines["when"] == 5
    assert lines["api_breaks[0].endpoint"] == 15
    assert lines["announcements[1].api_break"] == 22
    assert lines["roster.shifts[1].team"] == 29
    assert plan.source.line_of("consumers[0].contact") == 19


def test_minimal_plan_gets_defaults_and_id_from_file_name() -> None:
    """Only service, when and duration are required; id comes from the file name."""
    plan = load_text(
        dedent(
            """\
            service: paste
            when: 2026-12-01T10:00:00Z
            duration: 1h
            """
        ),
        "deploy-plans/paste-0.9.yml",
    )
    assert (plan.id, plan.title, plan.release) == ("paste-0.9", "", "")
    assert (plan.major, plan.leaf, plan.essential) == (False, False, False)
    assert plan.roster == Roster() and plan.staging == Staging() and plan.api_breaks == ()


def test_null_values_count_as_absent() -> None:
    """``api_breaks:`` with nothing after it means no API breaks, like leaving it out."""
    plan = load_text(
        dedent(
            """\
            service: paste
            when: 2026-12-01T10:00:00Z
            duration: 1h
            title:
            api_breaks:
            """
        ),
        "paste.yaml",
    )
    assert plan.api_breaks == () and plan.title == ""


def test_offset_is_kept_and_shift_times_are_read_in_it() -> None:
    """``when`` with +02:00 is stored in UTC; shift times are wall-clock in +02:00."""
    plan = load_text(
        dedent(
            """\
            service: fas
            when: 2026-12-01T15:00:00+02:00
            duration: 4h
            roster:
              shifts:
                - {team: infrastructure, people: [nirik], from: "15:00", to: 17:30}
                - {team: infrastructure, people: [kevin], from: "17:30"}
            """
        ),
        "fas.yaml",
    )
    assert plan.when == utc(2026, 12, 1, 13) and plan.when_offset == timedelta(hours=2)
    first, second = plan.roster.shifts
    assert (first.start, first.end) == (utc(2026, 12, 1, 13), utc(2026, 12, 1, 15, 30))
    assert (second.start, second.end) == (utc(2026, 12, 1, 15, 30), utc(2026, 12, 1, 17))
    assert (second.written_from, second.written_to) == ("17:30", None)


def test_shift_with_only_to_starts_with_the_window() -> None:
    """A shift with ``to`` only runs from the start of the window."""
    plan = load_text(
        dedent(
            """\
            service: fas
            when: 2026-12-01T13:00:00Z
            duration: 4h
            roster: {shifts: [{team: qa, people: [adamw], to: "14:00"}]}
            """
        ),
        "fas.yaml",
    )
    (shift,) = plan.roster.shifts
    assert (shift.start, shift.end) == (utc(2026, 12, 1, 13), utc(2026, 12, 1, 14))


# --- one test per kind of problem -------------------------------------------------------------


def test_yaml_syntax_error_names_the_line() -> None:
    """A YAML syntax error is reported at its line, with no key."""
    found = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        owners: [pingou
        duration: 8h
        """
    )
    assert where(found)[0][:2] == ("plan.yaml", 4) and found[0].key == ""
    assert "YAML syntax error" in found[0].message


def test_unknown_key_lists_the_valid_keys() -> None:
    """An unknown key (a typo) is named with the valid keys of its mapping."""
    found = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        roster:
          shifts:
            - team: qa
              people: [adamw]
              form: "13:00"
        """
    )
    assert where(found) == [("plan.yaml", 8, "roster.shifts[0].form")]
    assert "unknown key 'form'" in found[0].message
    assert found[0].message.endswith("valid keys: team, people, from, to")


def test_unknown_top_level_key_lists_the_plan_keys() -> None:
    """At the top level the valid keys are the keys of SPEC §1."""
    (found,) = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        colour: red
        """
    )
    assert (found.line, found.key) == (4, "colour")
    assert "valid keys: id, service, release, title, when, duration, major" in found.message


def test_wrong_types_name_the_expected_type() -> None:
    """A list for a string, ``yes`` for a bool, a Python tag...: each names the expected type."""
    found = problems(
        """\
        service: [pkgdb2]
        when: 2026-12-15T13:00:00Z
        duration: 8h
        major: yes
        owners: pingou
        essential: "true"
        staging: https://admin.stg.fedoraproject.org/pkgdb
        title: !!python/object/apply:os.system [echo pwned]
        """
    )
    assert where(found) == [
        ("plan.yaml", 1, "service"),
        ("plan.yaml", 4, "major"),
        ("plan.yaml", 5, "owners"),
        ("plan.yaml", 6, "essential"),
        ("plan.yaml", 7, "staging"),
        ("plan.yaml", 8, "title"),
    ]
    messages = [problem.message for problem in found]
    assert messages[0] == "expected a string, got a list"
    assert messages[1] == "expected true or false, got 'yes'"
    assert messages[2] == "expected a list of nicks, got a string 'pingou'"
    assert messages[3] == "expected true or false, got a string 'true'"
    assert messages[4].startswith("expected a mapping (key: value) for staging")
    assert messages[5] == (
        "expected a string, got a value with the unsupported YAML tag "
        "tag:yaml.org,2002:python/object/apply:os.system"
    )


def test_bad_date_is_refused() -> None:
    """An impossible date (month 13) is an error at its key."""
    (found,) = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        announcements:
          - {list: infrastructure, date: 2026-11-30, api_break: true}
          - {list: devel, date: 2014-13-45, api_break: true}
        """
    )
    assert (found.file, found.line, found.key) == ("plan.yaml", 6, "announcements[1].date")
    assert found.message.startswith("'2014-13-45' is not a valid date")


def test_bad_datetime_is_refused() -> None:
    """``when`` that is not a date and time, or is only a date, is an error."""
    found = problems(
        """\
        service: pkgdb2
        when: next tuesday
        duration: 8h
        """
    )
    assert where(found) == [("plan.yaml", 2, "when")]
    assert "is not a date and time" in found[0].message


def test_naive_datetime_asks_for_an_offset() -> None:
    """``when`` without a UTC offset is refused with an example of the fix."""
    (found,) = problems(
        """\
        service: pkgdb2
        when: 2014-05-28T13:00:00
        duration: 8h
        """
    )
    assert (found.line, found.key) == (2, "when")
    assert found.message == (
        "'2014-05-28T13:00:00' has no UTC offset; write e.g. 2014-05-28T13:00:00Z"
    )


def test_bad_duration_gives_the_duration_parser_message() -> None:
    """A duration without a unit is refused with the durations module's explanation."""
    (found,) = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8
        """
    )
    assert (found.line, found.key) == (3, "duration")
    assert "'8' is not a duration" in found.message


def test_zero_duration_is_refused() -> None:
    """A window must last longer than 0."""
    (found,) = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 0
        """
    )
    assert (found.line, found.key, found.message) == (3, "duration", "must be longer than 0")


def test_bad_time_is_refused() -> None:
    """A shift time such as 25:00 is an error at that shift's key."""
    (found,) = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        roster:
          shifts:
            - {team: infrastructure, people: [pingou], from: "13:00"}
            - {team: infrastructure, people: [kevin], from: "25:00"}
        """
    )
    assert (found.line, found.key) == (7, "roster.shifts[1].from")
    assert "not a valid time" in found.message


def test_shift_ending_before_it_starts_is_refused_on_to() -> None:
    """``to`` before (or equal to) ``from`` is an error on the shift's ``to``."""
    found = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        roster:
          shifts:
            - team: infrastructure
              people: [pingou]
              from: "17:00"
              to: "15:00"
            - {team: qa, people: [adamw], from: "14:00", to: "14:00"}
        """
    )
    assert where(found) == [
        ("plan.yaml", 9, "roster.shifts[0].to"),
        ("plan.yaml", 10, "roster.shifts[1].to"),
    ]
    assert found[0].message.startswith("the shift ends at 15:00, not after it starts (17:00)")


def test_shift_outside_the_window_is_refused() -> None:
    """A shift starting before the window opens or ending after it closes is an error."""
    found = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        roster:
          shifts:
            - team: infrastructure
              people: [pingou]
              from: "12:00"
            - team: qa
              people: [adamw]
              to: "22:00"
            - {team: docs, people: [jsmith], from: "21:00"}
        """
    )
    assert where(found) == [
        ("plan.yaml", 8, "roster.shifts[0].from"),
        ("plan.yaml", 11, "roster.shifts[1].to"),
        ("plan.yaml", 12, "roster.shifts[2].from"),
    ]
    assert found[0].message == (
        "the shift starts at 2026-12-15 12:00 UTC, "
        "outside the window 2026-12-15 13:00 UTC to 2026-12-15 21:00 UTC"
    )


def test_missing_required_keys_are_named() -> None:
    """Missing ``service``, an API break's ``change`` and a shift's ``people`` are each named."""
    found = problems(
        """\
        when: 2026-12-15T13:00:00Z
        duration: 8h
        api_breaks:
          - endpoint: /api/packager/acl
        roster:
          shifts:
            - {team: qa}
        """
    )
    assert where(found) == [
        ("plan.yaml", 1, "service"),
        ("plan.yaml", 4, "api_breaks[0].change"),
        ("plan.yaml", 7, "roster.shifts[0].people"),
    ]
    assert found[1].message == "missing: an API break needs endpoint and change"


def test_control_characters_are_refused_in_every_string() -> None:
    """CR, LF or NUL (escaped or in a block scalar) in a one-line value is an error."""
    found = problems(
        """\
        service: pkgdb2
        title: "pkgdb2\\r\\nPRIVMSG #fedora-admin :hi"
        when: 2026-12-15T13:00:00Z
        duration: 8h
        consumers:
          - {name: "compose\\0scripts", contact: dgilmore}
        api_breaks:
          - endpoint: /api/packager/acl
            change: |
              returns null
              instead of []
        owners: ["ping\\tou"]
        """
    )
    assert where(found) == [
        ("plan.yaml", 2, "title"),
        ("plan.yaml", 6, "consumers[0].name"),
        ("plan.yaml", 9, "api_breaks[0].change"),
        ("plan.yaml", 12, "owners[0]"),
    ]
    assert found[0].message == "contains a line break or NUL; write it on one line"
    assert found[3].message == "contains a control character (U+0009)"


def test_duplicate_id_across_files_is_reported_on_the_second(tmp_path: Path) -> None:
    """The second file with an id already loaded is an error naming the first; it is dropped."""
    (tmp_path / "a-pkgdb2.yaml").write_text(
        "id: pkgdb2-2.0\nservice: pkgdb2\nwhen: 2026-12-15T13:00:00Z\nduration: 8h\n"
    )
    (tmp_path / "b-pkgdb2-copy.yaml").write_text(
        "service: pkgdb2\nwhen: 2026-12-16T13:00:00Z\nduration: 8h\nid: pkgdb2-2.0\n"
    )
    result = load_paths([tmp_path])
    assert [plan.when for plan in result.plans] == [utc(2026, 12, 15, 13)]
    (found,) = result.problems
    assert (found.file, found.line, found.key) == (str(tmp_path / "b-pkgdb2-copy.yaml"), 4, "id")
    assert str(tmp_path / "a-pkgdb2.yaml") in found.message


def test_duplicate_key_in_a_mapping_is_refused() -> None:
    """A key written twice in one mapping is an error on the second."""
    (found,) = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        service: pkgdb
        """
    )
    assert (found.line, found.key) == (4, "service")
    assert found.message.startswith("duplicate key")


def test_bad_channel_id_nick_and_url_are_refused() -> None:
    """Channels need # or &, ids their pattern, nicks no spaces, URLs http(s)."""
    found = problems(
        """\
        id: -pkgdb2
        service: pkgdb2
        when: 2026-12-15T13:00:00Z
        duration: 8h
        production: {url: admin.fedoraproject.org}
        roster:
          channel: pkgdb2-firefight
          escalation: ["nirik", "kevin fenzi", ""]
        """
    )
    assert where(found) == [
        ("plan.yaml", 1, "id"),
        ("plan.yaml", 5, "production.url"),
        ("plan.yaml", 7, "roster.channel"),
        ("plan.yaml", 8, "roster.escalation[1]"),
        ("plan.yaml", 8, "roster.escalation[2]"),
    ]


@pytest.mark.parametrize(
    "bad", ["+#pkgdb2", "%#pkgdb2", "@#pkgdb2", "#pkgdb2", "9lives", "-dash", "a.b", "é", "a" * 31]
)
@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("owners: [{nick}]", "owners[0]"),
        ("roster: {{shifts: [{{team: infra, people: [{nick}]}}]}}", "roster.shifts[0].people[0]"),
        ("roster: {{escalation: [{nick}]}}", "roster.escalation[0]"),
        ("consumers: [{{name: fmn, contact: {nick}}}]", "consumers[0].contact"),
    ],
)
def test_a_nick_outside_the_rfc_2812_grammar_is_refused(bad: str, where: str, key: str) -> None:
    """Every nick of a plan is a nick by RFC 2812 (up to 30 characters): never a
    status-message target such as ``+#chan``, which a page would send to a channel."""
    quoted = '"' + bad + '"'
    (found,) = problems(
        "service: pkgdb2\nwhen: 2026-12-15T13:00:00Z\nduration: 8h\n" + where.format(nick=quoted)
    )
    assert (found.line, found.key) == (4, key)
    assert found.message.startswith(f"{bad[:39]!r} is not a nick")


def test_nicks_with_specials_and_thirty_characters_are_accepted() -> None:
    """Specials anywhere, digits and '-' after the first character, 30 characters."""
    nicks = ["[m]", "`x", "nirik_", "a-b9", "{}|^\\", "a" * 30]
    quoted = ", ".join(f"'{nick}'" for nick in nicks)  # in single quotes \\ is literal
    plan = load_text(
        f"service: pkgdb2\nwhen: 2026-12-15T13:00:00Z\nduration: 8h\nowners: [{quoted}]\n",
        "plan.yaml",
    )
    assert plan.owners == tuple(nicks)


def test_file_name_that_cannot_be_an_id_needs_an_id() -> None:
    """Without ``id``, a file name that is not a valid id is an error on key ``id``."""
    (found,) = problems(
        "service: pkgdb2\nwhen: 2026-12-15T13:00:00Z\nduration: 8h\n", "my plan.yaml"
    )
    assert (found.line, found.key) == (1, "id")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 0, "the file is empty"),
        ("# nothing yet\n", 0, "the file is empty"),
        ("- service: pkgdb2\n", 1, "a plan file must be a mapping"),
        ("service: a\n---\nservice: b\n", 2, "a second YAML document"),
        ("owners: &o [pingou]\nescalation: *o\n", 2, "YAML aliases"),
    ],
)
def test_files_that_are_not_one_mapping_are_refused(text: str, line: int, message: str) -> None:
    """Empty files, non-mappings, several documents and aliases get a clear whole-file error."""
    (found,) = problems(text)
    assert (found.line, found.key) == (line, "")
    assert found.message.startswith(message)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    """Problems in unrelated places are all reported, in line order, not just the first."""
    found = problems(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00:00
        duration: 8h
        colour: red
        meetings: [2026-02-30]
        """
    )
    assert [(problem.line, problem.key) for problem in found] == [
        (2, "when"),
        (4, "colour"),
        (5, "meetings[0]"),
    ]


# --- files and directories --------------------------------------------------------------------


def good(service: str, when: str) -> str:
    return f"service: {service}\nwhen: {when}\nduration: 2h\n"


def test_directory_gives_good_plans_and_all_problems(tmp_path: Path) -> None:
    """Good plans come back sorted by when then id; every bad file's problems too."""
    (tmp_path / "zz-ask.yaml").write_text(good("ask", "2026-12-01T10:00:00Z"))
    (tmp_path / "bodhi.yml").write_text(good("bodhi", "2026-12-01T10:00:00Z"))
    (tmp_path / "nuancier.yaml").write_text(good("nuancier", "2026-11-30T10:00:00Z"))
    (tmp_path / "broken.yaml").write_text("service: fas\nwhen: soon\nduration: 2h\ncolour: red\n")
    (tmp_path / "syntax.yaml").write_text("service: [fas\n")
    (tmp_path / "README.md").write_text("# not a plan\n")
    (tmp_path / ".#bodhi.yaml").write_text("editor lock file")
    result = load_paths([tmp_path])
    assert [plan.id for plan in result.plans] == ["nuancier", "bodhi", "zz-ask"]
    assert [(Path(p.file).name, p.line, p.key) for p in result.problems] == [
        ("broken.yaml", 2, "when"),
        ("broken.yaml", 4, "colour"),
        ("syntax.yaml", 2, ""),
    ]
    assert not result.ok


def test_paths_mix_files_and_directories_and_report_missing_ones(tmp_path: Path) -> None:
    """``check PATH…`` takes files and directories; a missing path is a line-0 problem."""
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "ask.yaml").write_text(good("ask", "2026-12-01T10:00:00Z"))
    single = tmp_path / "paste.plan"
    single.write_text(good("paste", "2026-12-02T10:00:00Z"))
    missing = tmp_path / "nope.yaml"
    result = load_paths([plans_dir, single, missing, plans_dir / "ask.yaml"])
    assert [plan.id for plan in result.plans] == ["ask", "paste"]
    assert result.problems == (Problem(str(missing), 0, "", "no such file or directory"),)


def test_unreadable_file_is_a_line_zero_problem(tmp_path: Path) -> None:
    """A missing or non-UTF-8 file is a PlanError with line 0 and no key."""
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("title: café\n".encode("latin-1"))
    for path in (tmp_path / "missing.yaml", latin1):
        with pytest.raises(PlanError) as caught:
            load_plan(path)
        assert where(caught.value.problems) == [(str(path), 0, "")]


def test_example_plans_in_the_repository_load() -> None:
    """The plans shipped in deploy-plans/ are valid."""
    result = load_paths([REPO / "deploy-plans"])
    assert result.problems == ()
    assert {plan.id for plan in result.plans} >= {"pkgdb2-2.0", "bodhi-2.0", "nuancier-1.3"}


# --- dump and round trip ------------------------------------------------------------------


def test_dump_writes_canonical_yaml_without_defaults() -> None:
    """dump_plan uses SPEC key order, quotes strings, leaves defaults out, keeps the offset."""
    plan = load_text(
        dedent(
            """\
            title: "null"
            release: 2.0
            service: ask
            duration: 90m
            leaf: true
            when: 2026-12-01T15:00:00+02:00
            roster: {shifts: [{team: qa, people: [adamw], from: "16:00"}, {team: x, people: [y]}]}
            """
        ),
        "ask-2.0.yaml",
    )
    assert dump_plan(plan) == dedent(
        """\
        id: "ask-2.0"
        service: "ask"
        release: "2.0"
        title: "null"
        when: 2026-12-01T15:00:00+02:00
        duration: 1h30m
        leaf: true
        roster:
          shifts:
            - team: "qa"
              people: ["adamw"]
              from: "16:00"
            - team: "x"
              people: ["y"]
        """
    )


def test_spec_example_round_trips() -> None:
    """Loading what dump_plan wrote gives back the same plan."""
    plan = load_text(SPEC_EXAMPLE, "pkgdb2-2.0.yaml")
    assert load_text(dump_plan(plan)) == plan


# Strings a plan may hold: one line, no control characters (escapes keep the rest safe).
_CHARS = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))
_WORD_CHARS = st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"))
texts = st.text(_CHARS, max_size=30)
names = texts.filter(str.strip)
words = st.text(_WORD_CHARS, min_size=1, max_size=20).filter(lambda s: not s.isspace())
nicks = st.from_regex(r"[A-Za-z_\[\]\\`^{|}][A-Za-z0-9_\[\]\\`^{|}-]{0,15}", fullmatch=True)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)
channels = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from("#&"),
    words.filter(lambda s: "," not in s and ":" not in s),
)
urls = st.one_of(st.just(""), words.map(lambda s: "https://" + s))
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def shifts(draw: st.DrawFn, when: datetime, end: datetime, offset: timedelta) -> Shift:
    """A shift inside the window, with no times, ``from``, ``to`` or both."""
    zone = timezone(offset)
    local = when.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0)
    start_s = int((local - midnight).total_seconds())
    end_s = start_s + int((end - when).total_seconds())
    # whole minutes m (HH:MM on the local day) with start <= m < end, or start < m <= end
    from_range = (-(-start_s // 60), min(-(-end_s // 60) - 1, 1439))
    to_range = (start_s // 60 + 1, min(end_s // 60, 1439))

    def at(minute: int) -> datetime:
        return (midnight + timedelta(minutes=minute)).astimezone(UTC)

    kinds = ["none"]
    if from_range[0] <= from_range[1]:
        kinds.append("from")
    if to_range[0] <= to_range[1]:
        kinds.append("to")
    if from_range[0] <= from_range[1] and max(from_range[0] + 1, to_range[0]) <= to_range[1]:
        kinds.append("both")
    kind = draw(st.sampled_from(kinds))
    team, people = draw(words), tuple(draw(st.lists(nicks, min_size=1, max_size=3)))
    if kind == "none":
        return Shift(team, people, when, end)
    if kind == "from":
        first = draw(st.integers(*from_range))
        return Shift(team, people, at(first), end, _hhmm(first))
    if kind == "to":
        last = draw(st.integers(*to_range))
        return Shift(team, people, when, at(last), None, _hhmm(last))
    first = draw(st.integers(from_range[0], to_range[1] - 1).filter(lambda m: m <= from_range[1]))
    last = draw(st.integers(max(first + 1, to_range[0]), to_range[1]))
    return Shift(team, people, at(first), at(last), _hhmm(first), _hhmm(last))


probe_paths = st.from_regex(
    r"/[A-Za-z0-9_./-]{0,20}(\?[A-Za-z0-9_=&%-]{0,15})?", fullmatch=True
).filter(
    # '//host' is a protocol-relative URL and '..' a climb out: both refused by the validator.
    lambda path: not path.startswith("//") and ".." not in path.split("?")[0].split("/")
)
json_paths = st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=4).map(
    lambda parts: format_path(tuple(parts))
)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """Any valid plan, with ``when`` in any whole-minute offset."""
    offset = timedelta(minutes=draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
    naive = draw(st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)))
    when = naive.replace(microsecond=0, tzinfo=UTC)
    duration = timedelta(seconds=draw(st.integers(1, 3 * 86400)))
    staging = Staging(draw(urls), draw(st.none() | days))
    production = Production(draw(urls))
    probes: tuple[Probe, ...] = ()
    if staging.url and production.url:
        paths = draw(st.lists(probe_paths, max_size=3, unique=True))
        probes = tuple(Probe(path, tuple(draw(st.lists(json_paths, max_size=2)))) for path in paths)
    roster = Roster(
        channel=draw(st.none() | channels),
        shifts=tuple(draw(st.lists(shifts(when, when + duration, offset), max_size=3))),
        escalation=tuple(draw(st.lists(nicks, max_size=3))),
    )
    return Plan(
        id=draw(ids),
        service=draw(words),
        release=draw(texts),
        title=draw(texts),
        when=when,
        duration=duration,
        major=draw(st.booleans()),
        leaf=draw(st.booleans()),
        essential=draw(st.booleans()),
        owners=tuple(draw(st.lists(nicks, max_size=3))),
        playbooks=tuple(draw(st.lists(names, max_size=3))),
        staging=staging,
        production=production,
        api_breaks=tuple(draw(st.lists(st.builds(ApiBreak, names, names, texts), max_size=3))),
        probes=probes,
        consumers=tuple(
            draw(
                st.lists(
                    st.builds(Consumer, names, words | st.just(""), nicks | st.just("")),
                    max_size=3,
                )
            )
        ),
        announcements=tuple(
            draw(st.lists(st.builds(Announcement, words, days, st.booleans()), max_size=3))
        ),
        meetings=tuple(draw(st.lists(days, max_size=3))),
        teams=tuple(draw(st.lists(words, max_size=3))),
        roster=roster,
        when_offset=offset,
    )


@given(plans())
def test_load_of_dump_is_the_same_plan(plan: Plan) -> None:
    """For any valid plan, load_text(dump_plan(plan)) == plan."""
    assert load_text(dump_plan(plan), "generated.yaml") == plan


@given(plans())
def test_dumped_strings_survive_plain_yaml_loaders(plan: Plan) -> None:
    """Strings are quoted: even yaml.safe_load (YAML 1.1 typing) reads them as strings."""
    data = yaml.safe_load(dump_plan(plan))
    assert data["id"] == plan.id and data["service"] == plan.service
    assert data.get("release", "") == plan.release and data.get("title", "") == plan.title


@given(st.text(max_size=200))
def test_any_text_gives_a_plan_or_located_problems(text: str) -> None:
    """Whatever the text, loading returns a Plan or raises PlanError, never anything else."""
    try:
        load_text(text, "fuzz.yaml")
    except PlanError as error:
        assert error.problems
        assert all(p.file == "fuzz.yaml" and p.line >= 0 for p in error.problems)


_plan_keys = st.sampled_from(
    sorted({key for schema in (PLAN, ROSTER, SHIFT, API_BREAK, STAGING) for key in schema.fields})
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.sampled_from(["2026-12-15T13:00:00Z", "13:00", "8h", "2026-12-01", "#chan", "pingou"]),
)
_yaml_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_plan_keys, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_plan_keys, _yaml_values, max_size=8))
def test_any_yaml_mapping_gives_a_plan_or_problems_on_real_keys(data: dict[str, object]) -> None:
    """Random YAML shaped like a plan loads or fails with problems on lines of the file."""
    text = yaml.safe_dump(data, allow_unicode=True)
    try:
        load_text(text, "fuzz.yaml")
    except PlanError as error:
        assert error.problems
        assert all(0 <= p.line <= text.count("\n") + 1 for p in error.problems)


# --- limits: size and depth, before the YAML parser sees the file --------------------------

HEAD = "service: pkgdb2\nwhen: 2026-12-15T13:00:00Z\nduration: 8h\n"


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    """A plan file over 256 KiB is a problem on line 0 before anything is parsed; one
    just under it is read (its problems are its own)."""
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + "#" * MAX_PLAN_BYTES, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.key) == (str(path), 0, "")
    assert problem.message.startswith("the file is larger than 256 KiB: not read")
    path.write_text(HEAD + "#" * (MAX_PLAN_BYTES - len(HEAD) - 1) + "\n", encoding="utf-8")
    assert load_plan(path).service == "pkgdb2"


@pytest.mark.parametrize(
    ("nesting", "line"),
    [
        ("owners: " + "[" * 21 + "]" * 21, 4),  # flow: found by the scan of the text
        ("owners: {a: " * 21 + "}" * 21, 4),
        ("owners:\n" + "".join("  " * i + "-\n" for i in range(1, 25)), 24),  # block
        ("owners:\n" + "- " * 5000 + "x", 5),  # compact block sequences on one line
    ],
)
def test_nesting_deeper_than_the_limit_is_a_problem_on_its_line(nesting: str, line: int) -> None:
    """More than 20 nested lists or mappings, flow or block, is one problem on the line
    where the limit is passed."""
    (problem,) = problems(HEAD + nesting + "\n")
    assert (problem.line, problem.key) == (line, "")
    assert problem.message == (
        f"lists and mappings nested more than {MAX_PLAN_DEPTH} deep: not read "
        "(a plan nests 5 deep at most)"
    )


def test_brackets_in_quoted_values_and_comments_do_not_count() -> None:
    """The depth scan skips quoted scalars (with escaped quotes) and comments."""
    text = HEAD + 'title: "[[[[[[[[[[[[[[[[[[[[[[\\"[[["\n'
    text += "release: '[[[[[[[[[[[[[[[[[[[[[[''[['  # [[[[[[[[[[[[[[[[[[[[[[[[\n"
    text += "owners: [alice, bob] # {{{{{{{{{{{{{{{{{{{{{{{{{{{{\n"
    plan = load_text(text, "plan.yaml")
    assert plan.title.startswith("[[[") and plan.owners == ("alice", "bob")
    assert flow_depth_exceeded(text, 1) is None


_flow_items = st.recursive(
    st.text(alphabet=st.sampled_from("ab '\"#[]{},:-\\"), max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text("ab", max_size=2), children, max_size=2)
    ),
    max_leaves=12,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@given(_flow_items)
def test_the_depth_scan_counts_flow_nesting_exactly(value: object) -> None:
    """For any flow YAML the dumper writes (strings full of brackets, quotes and '#'),
    the scan finds exactly the nesting of the value."""
    text = yaml.safe_dump({"owners": value}, default_flow_style=True, width=1_000_000)
    depth = 1 + _depth(value)  # the top mapping is a flow mapping too
    assert flow_depth_exceeded(text, depth) is None
    assert flow_depth_exceeded(text, depth - 1) == 1


def test_the_c_loader_gives_the_same_problems_and_lines_as_the_python_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libyaml (used when PyYAML has it) keeps every node's line: a plan with problems
    on several lines reports the same file:line:key: message either way."""
    text = dedent(
        """\
        service: pkgdb2
        when: 2026-12-15T13:00
        duration: 8 hours
        owners: [pingou, "+#pkgdb2"]
        roster:
          shifts:
            - {team: infra, people: [nirik], from: "25:00"}
          escalation: nope
        bogus: 1
        """
    )
    assert files._FAST_LOADER is yaml.CSafeLoader  # this PyYAML was built with libyaml
    fast = problems(text)
    monkeypatch.setattr(files, "_FAST_LOADER", None)
    assert problems(text) == fast
    assert [(p.line, p.key) for p in fast] == [
        (2, "when"),
        (3, "duration"),
        (4, "owners[1]"),
        (7, "roster.shifts[0].from"),
        (8, "roster.escalation"),
        (9, "bogus"),
    ]


@pytest.mark.parametrize("odd_break", ["\x85", "\u2028", "\u2029", "\r"])
def test_lines_are_counted_as_an_editor_counts_them(odd_break: str) -> None:
    """YAML 1.1 also breaks lines at NEL, U+2028, U+2029 and a lone CR; editors do not,
    so problems after one keep the line an editor shows (hypothesis found line 6 of 5)."""
    text = f"title: 'a{odd_break}  b'\n" + HEAD + "bogus: 1\n"
    found = problems(text)
    assert [(p.line, p.key) for p in found][-1] == (5, "bogus")


# --- probes (issue 12) ---------------------------------------------------------------------

PROBED = dedent(
    """\
    service: pkgdb2
    when: 2014-05-28T13:00:00Z
    duration: 8h
    staging: {url: https://admin.stg.fedoraproject.org/pkgdb}
    production: {url: https://admin.fedoraproject.org/pkgdb}
    probes:
    """
)


def test_probes_are_paths_or_mappings_with_ignore() -> None:
    """A probe is a GET path with its query, or {path, ignore}; ignore paths are normalised
    to the form the drift report writes (leading dot)."""
    plan = load_text(
        PROBED
        + "  - /api/packager/acl?packagername=toshio\n"
        + "  - path: /api/collections\n"
        + '    ignore: ["collections[].date_updated", \'.["fas name"]\']\n',
        "pkgdb2.yaml",
    )
    assert plan.probes == (
        Probe("/api/packager/acl?packagername=toshio"),
        Probe("/api/collections", (".collections[].date_updated", '.["fas name"]')),
    )
    assert plan.probes[0].endpoint == "/api/packager/acl"
    assert plan.source.line_of("probes[1].ignore") == 9


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("https://evil.example/x", "names a scheme or a host"),
        ("javascript:alert(1)", "names a scheme or a host"),
        ("//evil.example/x", "names a scheme or a host"),
        ("api/x", "must start with /"),
        ('"/api/x\\r\\nHost: evil"', "line break"),
        ('"/api/x\\u0007"', "control character"),
        ("/api/a b", "percent-encode"),
        ("/api/x#top", "fragment"),
        ("/pkgdb/../../admin", ".. segment"),
        ("[/x]", "expected a path or a mapping"),
        ("{ignore: [.x]}", "missing: a probe needs path"),
        ("{path: /x, ignore: [.a b]}", "not a JSON path"),
        ("{path: /x, ignores: []}", "unknown key 'ignores' in a probe; valid keys: path, ignore"),
    ],
)
def test_bad_probes_are_located_by_file_line_and_key(written: str, message: str) -> None:
    """Absolute URLs, other schemes, another host, CR/LF and other path troubles are each
    an error naming the file, the line and the probe's key."""
    found = problems(PROBED + f"  - /api/fine\n  - {written}\n", "pkgdb2.yaml")
    assert len(found) == 1, found
    assert found[0].file == "pkgdb2.yaml" and found[0].line == 8
    assert found[0].key.startswith("probes[1]")
    assert message in found[0].message


def test_probes_need_both_urls_and_each_path_once() -> None:
    """Probe paths are appended to both URLs, so both must be there; a path listed twice is
    an error on its second line."""
    no_production = PROBED.replace("production: {url: https://admin.fedoraproject.org/pkgdb}\n", "")
    found = problems(no_production + "  - /api/x\n")
    assert where(found) == [("plan.yaml", 5, "probes")]
    assert "probes need production.url" in found[0].message
    found = problems(PROBED + "  - /api/x\n  - /api/y\n  - /api/x\n")
    assert where(found) == [("plan.yaml", 9, "probes[2]")]
    assert "already probes[0]" in found[0].message
