"""`deploybot check`: readiness of the shipped plans, file:line: key errors, exit status."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploybot.cli import main
from deploybot.plans.files import dump_plan
from deploybot.store import Store
from tests.botprocess import run_refused
from tests.planfactory import make_plan

REPO = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def test_shipped_examples_print_readiness_and_exit_0() -> None:
    """The three example plans load; each is shown ready, not ready or exempt; exit 0."""
    status, output = run("check", str(REPO / "deploy-plans"), "--config", str(REPO / "bot.ini"))
    assert status == 0, output
    assert "pkgdb2-2.0: READY (6/6)" in output
    assert re.search(r"bodhi-2\.0: NOT READY \(\d/6\)", output)
    assert "nuancier-1.3: EXEMPT" in output
    assert output.rstrip().endswith("3 plans, 0 problems")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_broken_directory_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    """Every problem is one `file:line: key: message` line; good plans are still reported."""
    write(
        tmp_path,
        "good.yaml",
        """
        service: paste
        when: 2027-02-01T10:00:00Z
        duration: 1h
        """,
    )
    bad_key = write(
        tmp_path,
        "typo.yaml",
        """
        service: ask
        when: 2027-02-01T10:00:00Z
        duration: 1h
        majr: true
        """,
    )
    naive = write(
        tmp_path,
        "naive.yaml",
        """
        service: elections
        duration: 2h
        when: 2027-02-01T10:00:00
        """,
    )
    status, output = run("check", str(tmp_path))
    assert status == 1
    lines = output.splitlines()
    assert any(line.startswith(f"{bad_key}:4: majr: ") for line in lines), output
    assert any(line.startswith(f"{naive}:3: when: ") for line in lines), output
    assert "good: paste" in output
    assert lines[-1] == "1 plan, 2 problems"


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    """A path that does not exist is reported (line 0) and fails the check."""
    status, output = run("check", str(tmp_path / "nope"))
    assert status == 1
    assert f"{tmp_path / 'nope'}:0: -: " in output


def test_bad_config_exits_1_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad config value stops the check with a message naming the key."""
    ini = write(tmp_path, "bot.ini", "[deploybot]\nnotice_days = soon\n")
    status, _ = run("check", str(tmp_path), "--config", str(ini))
    assert status == 1
    assert "notice_days" in capsys.readouterr().err


def run_bot(tmp_path: Path, bot_lines: str) -> subprocess.CompletedProcess[str]:
    """`deploybot run` with `bot_lines` in [bot] (after nick and host: line 3 on), refused
    before connecting (see run_refused) and before opening anything."""
    (tmp_path / "plans").mkdir()
    done = run_refused(
        lambda port: write(
            tmp_path,
            "bot.ini",
            f"[bot]\nnick = deploybot\nhost = 127.0.0.1\n{bot_lines}"
            f"port = {port}\n\n[deploybot]\nplans_dir = plans\nweb_port = 0\n",
        )
    )
    assert not (tmp_path / "deploybot.sqlite3").exists()
    return done


@pytest.mark.e2e  # starts the bot
def test_run_refuses_a_bad_ssl_flag_before_connecting(tmp_path: Path) -> None:
    """`ssl = ture` in [bot] is no silent "no": `deploybot run` exits 1 with
    `bot.ini:LINE: [bot] ssl: ...` before connecting or opening anything."""
    done = run_bot(tmp_path, "ssl = ture\n")
    assert done.stderr == (
        f"deploybot: {tmp_path / 'bot.ini'}:4: [bot] ssl: 'ture' is not a yes/no value: "
        "expected true or false (or yes/no, on/off, 1/0)\n"
    )


@pytest.mark.e2e  # starts the bot
def test_run_suggests_the_key_for_a_misspelt_bot_key(tmp_path: Path) -> None:
    """A misspelt deploybot key in [bot] is an error with a suggestion (one line each),
    a bad number names its key; irc3's own keys and unknown plugin keys pass."""
    done = run_bot(
        tmp_path,
        "throttle_brust = 8\nping_interval = soon\nautojoins = ${#}ops\nmy_plugin = x\n",
    )
    ini = tmp_path / "bot.ini"
    lines = done.stderr.splitlines()
    assert lines[0].startswith(
        f"deploybot: {ini}:4: [bot] throttle_brust: unknown key (did you mean throttle_burst?);"
    ), done.stderr
    assert lines[1] == (
        f"{ini}:5: [bot] ping_interval: expected a number of seconds/lines, not 'soon'"
    ), done.stderr
    assert len(lines) == 2, done.stderr


@pytest.mark.e2e  # starts the bot
def test_run_refuses_sasl_over_plaintext_to_a_remote_host(tmp_path: Path) -> None:
    """A SASL secret with ssl = false and a host that is not loopback: `deploybot run`
    exits 1 before connecting, naming the secret's line and the ways out."""
    (tmp_path / "plans").mkdir()
    ini = tmp_path / "bot.ini"
    done = run_refused(
        lambda port: write(
            tmp_path,
            "bot.ini",
            f"[bot]\nnick = deploybot\nhost = 192.0.2.1\nport = {port}\nssl = false\n"
            "sasl_password_env = DEPLOYBOT_TEST_SASL\n\n"
            "[deploybot]\nplans_dir = plans\nweb_port = 0\n",
        ),
        env={**os.environ, "DEPLOYBOT_TEST_SASL": "hunter2"},
    )
    assert done.stderr == (
        f"deploybot: {ini}:6: [bot] sasl_password_env: SASL over plaintext refused: with "
        "ssl = false the password would cross the network to 192.0.2.1 in clear; set "
        "ssl = true (and the server's TLS port, usually 6697), or allow_plaintext_sasl = "
        "true if you accept that (only a loopback host is allowed without TLS)\n"
    )
    assert "hunter2" not in done.stderr + done.stdout


def test_check_with_config_reports_bot_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deploybot check --config` checks [bot] as `deploybot run` does: exit 1, the line."""
    ini = write(tmp_path, "bot.ini", "[bot]\nnick = deploybot\nport = 66970\n")
    status, _ = run("check", str(REPO / "deploy-plans"), "--config", str(ini))
    assert status == 1
    assert capsys.readouterr().err == (
        f"deploybot: {ini}:3: [bot] port: expected a TCP port number, not '66970'\n"
    )


def test_notice_days_from_config_changes_the_verdict(tmp_path: Path) -> None:
    """notice_days comes from the config: a longer notice makes the ready plan not ready."""
    ini = write(tmp_path, "bot.ini", "[deploybot]\nnotice_days = 60\n")
    plan = REPO / "deploy-plans" / "pkgdb2-2.0.yaml"
    status, output = run("check", str(plan), "--config", str(ini))
    assert status == 0
    assert "pkgdb2-2.0: NOT READY" in output


@pytest.mark.e2e  # starts a Python process
def test_console_script_is_installed() -> None:
    """`deploybot check` works as an installed command, not only in-process."""
    exe = Path(sys.executable).with_name("deploybot")
    result = subprocess.run(
        [str(exe), "check", "deploy-plans"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 plans, 0 problems" in result.stdout


def test_check_reads_the_freezes_file(tmp_path: Path) -> None:
    """With freezes set, a plan in a freeze gets the freeze rule, missing (no database:
    no freeze break known), and the freezes file's problems are listed and count."""
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "p.yaml").write_text(dump_plan(make_plan()), encoding="utf-8")
    write(
        tmp_path, "freezes.yaml", "- {name: F42 Final freeze, from: 2026-12-08, to: 2026-12-15}\n"
    )
    ini = write(tmp_path, "bot.ini", "[deploybot]\nplans_dir = plans\nfreezes = freezes.yaml\n")
    status, output = run("check", "--config", str(ini))
    assert "pkgdb2-2.0: NOT READY (6/7)" in output
    assert "✘ freeze: in the F42 Final freeze (2026-12-08 00:00–2026-12-16 00:00 UTC) " in output
    write(tmp_path, "freezes.yaml", "- {name: F42 Final freeze, from: 2026-12-08}\n")
    status, output = run("check", "--config", str(ini))
    assert status == 1
    assert (
        f"{tmp_path / 'freezes.yaml'}:1: [0].to: missing: a freeze needs name, from and to"
        in output
    )


def test_postmortem_needs_the_plan_and_the_database(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "p.yaml").write_text(dump_plan(make_plan()), encoding="utf-8")
    ini = write(tmp_path, "bot.ini", "[deploybot]\nplans_dir = plans\n")
    assert run("postmortem", "nope", "--config", str(ini))[0] == 1
    assert run("postmortem", "pkgdb2-2.0", "--config", str(ini))[0] == 1  # no database
    Store.open(tmp_path / "deploybot.sqlite3").close()
    status, output = run("postmortem", "pkgdb2-2.0", "--config", str(ini))
    assert status == 0 and output.startswith("# Post-mortem draft: pkgdb2 2.0 (pkgdb2-2.0)\n")
    status, output = run("postmortem", "pkgdb2-2.0", "--config", str(ini), "--format", "html")
    assert status == 0 and output.startswith("<!DOCTYPE html>") and "<svg " in output
