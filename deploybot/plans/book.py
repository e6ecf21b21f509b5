"""The plans in force: the last good version of every plan file.

A bad edit never takes a plan away (SPEC §1): when a file stops loading, the version
that loaded before stays in force and the problems are reported.  A file that is
deleted takes its plan with it.

The bot reloads with :meth:`PlanBook.reload_in_worker`: the files are read and parsed in
a worker thread (:meth:`PlanBook.read`), then put in force on the loop
(:meth:`PlanBook.apply`), so a slow file never stalls the IRC connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploybot.durations import plural
from deploybot.errors import PlanError, Problem
from deploybot.plans.files import load_plan, plan_files
from deploybot.plans.model import Plan

#: A reload report names at most this many problems, then says how many more there are.
MAX_PROBLEMS_SHOWN = 5


def problem_line(problem: Problem, plans_dir: Path) -> str:
    """``pkgdb2.yaml:7: when: …`` — the file named relative to the plans directory."""
    try:
        file = str(Path(problem.file).relative_to(plans_dir))
    except ValueError:
        file = problem.file
    return str(Problem(file, problem.line, problem.key, problem.message))


#: How long the bot waits for a reload's reading of the plan files (seconds).
RELOAD_SECONDS = 30.0


@dataclass(frozen=True)
class ReloadReport:
    loaded: tuple[str, ...] = ()  # plan ids now in force
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # ids kept at their last good version despite problems
    problems: tuple[Problem, ...] = ()

    def summary(self) -> str:
        parts = [f"{plural(len(self.loaded), 'plan')} in force"]
        for label, ids in (
            ("added", self.added),
            ("changed", self.changed),
            ("removed", self.removed),
            ("kept at last good version", self.kept),
        ):
            if ids:
                parts.append(f"{label}: {', '.join(ids)}")
        if self.problems:
            parts.append(plural(len(self.problems), "problem"))
        return "; ".join(parts)

    def problem_lines(self, plans_dir: Path) -> list[str]:
        """The first :data:`MAX_PROBLEMS_SHOWN` problems, files named relative to
        ``plans_dir``, then how many more there are (what ``!plans reload`` and the
        admin channel show)."""
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        lines = [problem_line(problem, plans_dir) for problem in shown]
        more = len(self.problems) - len(shown)
        if more:
            lines.append(f"… and {plural(more, 'more problem')}; `deploybot check` lists them all")
        return lines


@dataclass(frozen=True)
class Reading:
    """What :meth:`PlanBook.read` found: each file's plan or problems (by file name), or
    the problem of a directory that could not be listed."""

    results: Mapping[str, Plan | PlanError] = field(default_factory=dict)
    unreadable: Problem | None = None


@dataclass
class PlanBook:
    directory: Path
    reload_seconds: float = RELOAD_SECONDS  # the time limit of reload_in_worker
    _by_file: dict[str, Plan] = field(default_factory=dict)
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def plans(self) -> tuple[Plan, ...]:
        """Plans in force, by ``when`` then id."""
        return tuple(sorted(self._by_file.values(), key=lambda plan: (plan.when, plan.id)))

    def get(self, plan_id: str) -> Plan | None:
        for plan in self._by_file.values():
            if plan.id == plan_id:
                return plan
        return None

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Name, mtime and size of every plan file: changes when a file is edited."""
        try:
            files = plan_files(self.directory)
        except OSError:
            return ()
        stamps = []
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            stamps.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def reload(self) -> ReloadReport:
        """Read the directory again; keep the last good version of files that went bad.

        Reads on the calling thread: the bot's loop uses :meth:`reload_in_worker`."""
        return self.apply(self.read())

    async def reload_in_worker(self) -> ReloadReport:
        """:meth:`reload`, with the files read and parsed in a worker thread so that the
        event loop goes on meanwhile; one reload at a time.

        A reading that takes longer than ``reload_seconds`` changes nothing: the plans in
        force stay and the report has one problem saying so.  (The size and depth limits
        of :mod:`deploybot.plans.files` keep a reading to about a second per file; a thread
        cannot be stopped, so a late one runs out and its result is dropped.)"""
        async with self._reloading:
            try:
                reading = await asyncio.wait_for(asyncio.to_thread(self.read), self.reload_seconds)
            except TimeoutError:
                message = (
                    f"reading the plan files took longer than {self.reload_seconds:g} s: "
                    "the plans in force are kept"
                )
                return self._unchanged(Problem(str(self.directory), 0, "", message))
            return self.apply(reading)

    def read(self) -> Reading:
        """Load every plan file of the directory; changes nothing (any thread may call it)."""
        try:
            files = plan_files(self.directory)
        except OSError as error:
            problem = Problem(str(self.directory), 0, "", f"cannot read plans: {error.strerror}")
            return Reading(unreadable=problem)
        results: dict[str, Plan | PlanError] = {}
        for path in files:
            try:
                results[str(path)] = load_plan(path)
            except PlanError as error:
                results[str(path)] = error
        return Reading(results)

    def apply(self, reading: Reading) -> ReloadReport:
        """Put the plans of ``reading`` in force (see the module doc) and say what changed."""
        if reading.unreadable is not None:
            return self._unchanged(reading.unreadable)
        problems: list[Problem] = []
        fresh: dict[str, Plan] = {}
        kept: list[str] = []
        for file, result in reading.results.items():
            if isinstance(result, PlanError):
                problems.extend(result.problems)
                previous = self._by_file.get(file)
                if previous is not None:
                    fresh[file] = previous
                    kept.append(previous.id)
                continue
            fresh[file] = result
        fresh = self._without_duplicates(fresh, problems)
        old = {plan.id: plan for plan in self._by_file.values()}
        new = {plan.id: plan for plan in fresh.values()}
        self._by_file = fresh
        return ReloadReport(
            loaded=tuple(p.id for p in self.plans),
            added=tuple(sorted(new.keys() - old.keys())),
            changed=tuple(sorted(i for i in new.keys() & old.keys() if new[i] != old[i])),
            removed=tuple(sorted(old.keys() - new.keys())),
            kept=tuple(sorted(kept)),
            problems=tuple(problems),
        )

    def _unchanged(self, problem: Problem) -> ReloadReport:
        """The report of a reload that kept every plan in force, because of ``problem``."""
        ids = tuple(p.id for p in self.plans)
        return ReloadReport(loaded=ids, kept=ids, problems=(problem,))

    @staticmethod
    def _without_duplicates(plans: dict[str, Plan], problems: list[Problem]) -> dict[str, Plan]:
        """Drop a plan whose id an earlier file (by name) already uses, reporting it."""
        first_file: dict[str, str] = {}
        unique: dict[str, Plan] = {}
        for file in sorted(plans):
            plan = plans[file]
            if plan.id in first_file:
                problems.append(
                    Problem(
                        file,
                        plan.source.line_of("id"),
                        "id",
                        f"duplicate id {plan.id!r}: already used by {first_file[plan.id]}; "
                        "this plan is ignored",
                    )
                )
                continue
            first_file[plan.id] = file
            unique[file] = plan
        return unique
