"""The announcement e-mails (deploybot/announce.py) and ``deploybot announce``."""

from __future__ import annotations

import io
import subprocess
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.announce import KINDS, AnnounceError, announcement, default_kind, list_address
from deploybot.cli import main
from deploybot.plans.files import dump_plan
from deploybot.plans.model import ApiBreak, Consumer, Staging
from tests.botprocess import deploybot_executable
from tests.planfactory import make_plan

UTC_TZ = ZoneInfo("UTC")
CHANNEL = "#pkgdb2-firefight"
REPO = Path(__file__).resolve().parent.parent


def text_of(kind: str, **overrides: object) -> str:
    plan = make_plan(**overrides)
    return announcement(plan, kind, tz=UTC_TZ, firefight_channel=CHANNEL).as_text()  # type: ignore[arg-type]


def test_the_api_break_notice_lists_every_break_with_its_migration_and_the_consumers() -> None:
    """The loud, separate notice: subject says API BREAK and when; each break with its
    change and migration; consumers with contacts; how to register; where to report."""
    breaks = (
        ApiBreak("/api/packager/acl", "returns null instead of []", "treat null as []"),
        ApiBreak("/api/collections", "lowercase branch names"),
    )
    consumers = (Consumer("compose scripts", "rel-eng", "dgilmore"), Consumer("a cron job"))
    text = text_of("api-break", api_breaks=breaks, consumers=consumers, essential=True)
    head, body = text.split("\n\n", 1)
    assert head.splitlines() == [
        "To: infrastructure@lists.fedoraproject.org, devel@lists.fedoraproject.org",
        "Subject: [API BREAK] pkgdb2 2.0 on Tue 2026-12-15 13:00 UTC: "
        "2 API changes that break clients",
    ]
    assert "  1. /api/packager/acl" in body
    assert "     change:    returns null instead of []" in body
    assert "     migration: treat null as []" in body
    assert "     migration: (none given: ask the owners)" in body
    assert "  - compose scripts (rel-eng, contact dgilmore)" in body
    assert "  - a cron job\n" in body
    assert '"!uses pkgdb2 what-you-run"' in body
    assert f"the firefighting channel is {CHANNEL}" in body
    assert "separate from the outage announcement" in body


def test_a_service_that_is_not_essential_is_announced_to_infrastructure_only() -> None:
    text = text_of("api-break", essential=False)
    assert text.splitlines()[0] == "To: infrastructure@lists.fedoraproject.org"


def test_every_call_for_testing_of_a_breaking_release_says_so_first() -> None:
    """Post-mortem: "be clear that the new deployment means API breaks in every call for
    testing" — in the subject and before the consumers."""
    breaking = text_of("call-for-testing")
    assert breaking.splitlines()[1].startswith("Subject: [API BREAK] Call for testing: pkgdb2 2.0")
    assert breaking.index("⚠ This release BREAKS the API") < breaking.index("Known consumers")
    assert "⚠ This release BREAKS the API (1 change):" in breaking
    quiet = text_of("call-for-testing", api_breaks=())
    assert "API BREAK" not in quiet and "BREAKS" not in quiet
    assert "is in staging: https://" in quiet


def test_the_outage_notice_follows_fedoras_template_in_utc() -> None:
    """In UTC whatever the configured zone, with the `date -d` conversion line; a breaking
    release says it was announced separately."""
    plan = make_plan(duration=timedelta(hours=8))
    email = announcement(plan, "outage", tz=ZoneInfo("Europe/Paris"), firefight_channel=CHANNEL)
    lines = email.as_text().splitlines()
    assert lines[:2] == [
        "To: devel-announce@lists.fedoraproject.org, infrastructure@lists.fedoraproject.org",
        "Subject: Planned Outage: pkgdb2 - 2026-12-15 13:00 UTC",
    ]
    assert "date -d '2026-12-15 13:00 UTC'" in lines
    assert any("which will last approximately 8 hours." in line for line in lines)
    assert any("announced separately" in line for line in lines)


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(days=2), "2 days"),
        (timedelta(minutes=1), "1 minute"),
    ],
)
def test_the_window_is_said_in_words(duration: timedelta, words: str) -> None:
    assert f"approximately {words}." in text_of("outage", duration=duration)


def test_what_a_plan_cannot_announce_is_a_clear_error() -> None:
    with pytest.raises(AnnounceError, match=r"pkgdb2-2\.0 has no api_breaks"):
        text_of("api-break", api_breaks=())
    with pytest.raises(AnnounceError, match=r"has no staging\.url"):
        text_of("call-for-testing", staging=Staging())


def test_the_default_kind_is_the_api_break_notice_when_there_is_one() -> None:
    assert default_kind(make_plan()) == "api-break"
    assert default_kind(make_plan(api_breaks=())) == "outage"


def test_list_addresses() -> None:
    assert list_address("devel") == "devel@lists.fedoraproject.org"
    assert list_address("ops@example.org") == "ops@example.org"


hostile = st.lists(
    st.sampled_from(["a", " ", "\r", "\n", "\x00", "\x85", "\u2028", ":", "Bcc", "é"]),
    min_size=1,
    max_size=12,
).map("".join)


@given(hostile, hostile, hostile, st.sampled_from(KINDS))
def test_plan_values_never_add_a_header_or_break_a_line(
    title: str, change: str, contact: str, kind: str
) -> None:
    """A plan value with line breaks (YAML block scalars allow them) stays on its line:
    the message has exactly two headers, and no body line is a value's second half."""
    text = text_of(
        kind,
        title=title + "\r\nBcc: evil@example.org",
        api_breaks=(ApiBreak("/x", change + "\nSubject: spoof", "m"),),
        consumers=(Consumer("c", "t", contact + "\n"),),
    )
    head = text.split("\n\n", 1)[0].splitlines()
    assert [line.split(":", 1)[0] for line in head] == ["To", "Subject"]
    assert "\r" not in text and "\x00" not in text
    assert not any(line.startswith(("Bcc:", "Subject: spoof")) for line in text.splitlines())


# --- the command line --------------------------------------------------------------------


def write_config(tmp_path: Path, plans: Path) -> Path:
    ini = tmp_path / "bot.ini"
    ini.write_text(f"[deploybot]\nplans_dir = {plans}\ntimezone = UTC\n", encoding="utf-8")
    return ini


def test_cli_prints_the_default_announcement_of_a_plan(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan()), encoding="utf-8")
    out = io.StringIO()
    assert (
        main(["announce", "pkgdb2-2.0", "--config", str(write_config(tmp_path, plans))], out) == 0
    )
    assert out.getvalue().splitlines()[1].startswith("Subject: [API BREAK] pkgdb2 2.0")


def test_cli_a_plan_without_a_firefighting_channel_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pattern makes no channel name of a service with a comma: the announcement,
    which names the channel, is not written, and the error says how to give it one."""
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = make_plan(service="pkg,db")
    (plans / "pkgdb2.yaml").write_text(dump_plan(plan), encoding="utf-8")
    out = io.StringIO()
    ini = str(write_config(tmp_path, plans))
    assert main(["announce", "pkgdb2-2.0", "--config", ini], out) == 1
    assert out.getvalue() == ""
    assert "pkgdb2-2.0 has no firefighting channel" in capsys.readouterr().err


@pytest.mark.e2e  # starts a Python process
def test_cli_unknown_plan_and_impossible_kind_exit_1_with_the_reason(tmp_path: Path) -> None:
    """Run as a newcomer would: the installed ``deploybot`` on the repo's own plans."""
    ini = write_config(tmp_path, REPO / "deploy-plans")
    unknown = subprocess.run(
        [deploybot_executable(), "announce", "nope", "--config", str(ini)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 1
    assert "no plan 'nope'" in unknown.stderr and "pkgdb2-2.0" in unknown.stderr
    assert unknown.stdout == ""
    no_breaks = subprocess.run(
        [
            deploybot_executable(),
            "announce",
            "nuancier-1.3",
            "--kind",
            "api-break",
            "--config",
            str(ini),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert no_breaks.returncode == 1
    assert "nuancier-1.3 has no api_breaks" in no_breaks.stderr
    bad_kind = subprocess.run(
        [deploybot_executable(), "announce", "pkgdb2-2.0", "--kind", "party"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad_kind.returncode == 2
    assert "invalid choice: 'party'" in bad_kind.stderr
