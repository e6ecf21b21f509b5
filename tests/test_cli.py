"""`deploybot check`: readiness of the shipped plans, file:line: key errors, exit status."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploybot.cli import main

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


def test_notice_days_from_config_changes_the_verdict(tmp_path: Path) -> None:
    """notice_days comes from the config: a longer notice makes the ready plan not ready."""
    ini = write(tmp_path, "bot.ini", "[deploybot]\nnotice_days = 60\n")
    plan = REPO / "deploy-plans" / "pkgdb2-2.0.yaml"
    status, output = run("check", str(plan), "--config", str(ini))
    assert status == 0
    assert "pkgdb2-2.0: NOT READY" in output


def test_console_script_is_installed() -> None:
    """`deploybot check` works as an installed command, not only in-process."""
    exe = Path(sys.executable).with_name("deploybot")
    result = subprocess.run(
        [str(exe), "check", "deploy-plans"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 plans, 0 problems" in result.stdout
