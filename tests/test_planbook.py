"""PlanBook: the last good version of each plan file stays in force."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from deploybot.errors import Problem
from deploybot.plans.book import PlanBook, ReloadReport
from deploybot.plans.files import dump_plan
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
