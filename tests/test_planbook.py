"""PlanBook: the last good version of each plan file stays in force."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from deploybot.errors import Problem
from deploybot.plans.book import PlanBook, ReloadReport
from deploybot.plans.files import dump_plan, load_plan
from deploybot.plans.model import Plan
from tests.planfactory import make_plan


def test_bad_edit_keeps_the_last_good_version(tmp_path: Path) -> None:
    """A file that stops loading keeps its previous plan; the problem names file and line."""
    path = tmp_path / "pkgdb2.yaml"
    path.write_text(dump_plan(make_plan()), encoding="utf-8")
    book = PlanBook(tmp_path)
    first = book.reload()
    assert first.added == ("pkgdb2-2.0",) and not first.problems
    path.write_text(dump_plan(make_plan()).replace("duration: 8h", "duration: 8 hours"))
    report = book.reload()
    assert report.kept == ("pkgdb2-2.0",)
    assert [(p.file, p.key) for p in report.problems] == [(str(path), "duration")]
    assert report.problems[0].line > 1
    plan = book.get("pkgdb2-2.0")
    assert plan is not None and plan.duration == timedelta(hours=8)


def test_changes_additions_and_removals_are_reported(tmp_path: Path) -> None:
    """A reload says which plans were added, changed and removed."""
    (tmp_path / "a.yaml").write_text(dump_plan(make_plan(id="a", service="a")))
    (tmp_path / "b.yaml").write_text(dump_plan(make_plan(id="b", service="b")))
    book = PlanBook(tmp_path)
    book.reload()
    (tmp_path / "a.yaml").write_text(dump_plan(make_plan(id="a", service="a", release="9")))
    (tmp_path / "b.yaml").unlink()
    (tmp_path / "c.yaml").write_text(dump_plan(make_plan(id="c", service="c")))
    report = book.reload()
    assert (report.added, report.changed, report.removed) == (("c",), ("a",), ("b",))
    assert [p.id for p in book.plans] == ["a", "c"]


def test_duplicate_id_in_a_later_file_is_ignored(tmp_path: Path) -> None:
    """Two files with one id: the later file (by name) is reported and left out."""
    (tmp_path / "a.yaml").write_text(dump_plan(make_plan(id="same", service="a")))
    (tmp_path / "b.yaml").write_text(dump_plan(make_plan(id="same", service="b")))
    book = PlanBook(tmp_path)
    report = book.reload()
    assert [p.service for p in book.plans] == ["a"]
    (problem,) = report.problems
    assert problem.file == str(tmp_path / "b.yaml") and problem.key == "id"
    assert "a.yaml" in problem.message


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    """The fingerprint (used to notice edits) moves when a file is added or rewritten."""
    book = PlanBook(tmp_path)
    empty = book.fingerprint()
    (tmp_path / "a.yaml").write_text(dump_plan(make_plan(id="a")))
    one = book.fingerprint()
    assert one != empty
    (tmp_path / "a.yaml").write_text(dump_plan(make_plan(id="a", release="3.0-longer")))
    assert book.fingerprint() != one


def test_report_summary_counts_in_words() -> None:
    """The summary says "1 plan" and "1 problem", "2 plans" and "6 problems"."""
    one = ReloadReport(loaded=("a",), problems=(Problem("x.yaml", 1, "when", "bad"),))
    assert one.summary() == "1 plan in force; 1 problem"
    many = ReloadReport(
        loaded=("a", "b"), added=("b",), problems=(Problem("x.yaml", 1, "", "bad"),) * 6
    )
    assert many.summary() == "2 plans in force; added: b; 6 problems"


def test_problem_lines_name_files_in_the_plans_directory_and_count_the_rest(
    tmp_path: Path,
) -> None:
    """The first five problems, files relative to the plans directory (others as they
    are), then how many more: one list for !plans reload and the admin channel."""
    inside = Problem(str(tmp_path / "pkgdb2.yaml"), 7, "when", "not a date and time")
    outside = Problem("/elsewhere/fas.yaml", 0, "", "no such file")
    assert ReloadReport(problems=(inside, outside)).problem_lines(tmp_path) == [
        "pkgdb2.yaml:7: when: not a date and time",
        "/elsewhere/fas.yaml:0: -: no such file",
    ]
    six = ReloadReport(problems=(inside,) * 6).problem_lines(tmp_path)
    assert six[:5] == ["pkgdb2.yaml:7: when: not a date and time"] * 5
    assert six[5:] == ["… and 1 more problem; `deploybot check` lists them all"]


async def test_the_loop_goes_on_while_a_slow_reload_reads_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload reads and parses in a worker thread: while a plan file takes 0.6 s to load,
    a ticker on the loop keeps ticking every 10 ms, and the plan is then in force."""
    (tmp_path / "pkgdb2.yaml").write_text(dump_plan(make_plan()), encoding="utf-8")

    def slow_load(path: Path) -> Plan:
        time.sleep(0.6)  # a plan the parser is slow on (holds no loop, only this thread)
        return load_plan(path)

    monkeypatch.setattr("deploybot.plans.book.load_plan", slow_load)
    book = PlanBook(tmp_path)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.02)
        started = time.monotonic()
        report = await book.reload_in_worker()
        finished = time.monotonic()
    finally:
        ticking.cancel()
    during = [tick for tick in ticks if started <= tick <= finished]
    assert finished - started >= 0.6
    assert len(during) >= 20, f"the loop ticked {len(during)} times in {finished - started:.2f} s"
    assert max(b - a for a, b in itertools.pairwise([started, *during, finished])) < 0.2
    assert report.added == ("pkgdb2-2.0",)


async def test_a_reload_slower_than_its_time_limit_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading over the time limit keeps the plans in force and says so, on the
    directory; the loop gets its answer at the limit, not when the reading ends."""
    path = tmp_path / "pkgdb2.yaml"
    path.write_text(dump_plan(make_plan()), encoding="utf-8")
    book = PlanBook(tmp_path)
    book.reload()
    path.write_text(dump_plan(make_plan(release="9")), encoding="utf-8")
    release = threading.Event()

    def stuck_load(path: Path) -> Plan:
        release.wait(5)
        return load_plan(path)

    monkeypatch.setattr("deploybot.plans.book.load_plan", stuck_load)
    started = time.monotonic()
    book.reload_seconds = 0.2
    report = await book.reload_in_worker()
    assert time.monotonic() - started < 1
    release.set()
    (problem,) = report.problems
    assert (problem.file, problem.line) == (str(tmp_path), 0)
    assert problem.message == (
        "reading the plan files took longer than 0.2 s: the plans in force are kept"
    )
    assert report.kept == ("pkgdb2-2.0",) and not report.changed
    plan = book.get("pkgdb2-2.0")
    assert plan is not None and plan.release == make_plan().release


async def test_a_60_kb_nested_list_is_refused_quickly_with_its_line(tmp_path: Path) -> None:
    """``owners: [[[…]]]`` 60 KB deep (31 s in PyYAML's parser before) is a plan problem
    on its line, found in milliseconds; the bot's other plans load."""
    good = make_plan(id="good")
    (tmp_path / "good.yaml").write_text(dump_plan(good), encoding="utf-8")
    bomb = "service: pkgdb2\nwhen: 2026-12-15T13:00:00Z\nduration: 8h\n"
    bomb += "owners: " + "[" * 30_000 + "]" * 30_000 + "\n"
    assert len(bomb) > 60_000
    (tmp_path / "bomb.yaml").write_text(bomb, encoding="utf-8")
    book = PlanBook(tmp_path)
    started = time.monotonic()
    report = await book.reload_in_worker()
    assert time.monotonic() - started < 0.5
    (problem,) = report.problems
    assert (problem.file, problem.line, problem.key) == (str(tmp_path / "bomb.yaml"), 4, "")
    assert problem.message.startswith("lists and mappings nested more than 20 deep")
    assert report.loaded == ("good",)
