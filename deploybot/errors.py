"""Errors whose text is meant for people.

Expected problems (a bad plan, a bad config value, a bad command argument) raise a
subclass of :class:`DeploybotError`; adapters show ``str(error)`` as it is.  Anything
else is a bug: adapters log it with a traceback and show only a reference.
"""

from __future__ import annotations

from dataclasses import dataclass


class DeploybotError(Exception):
    """An expected error; its text is shown to the user unchanged."""


@dataclass(frozen=True)
class Problem:
    """One problem in a file: where it is and what is wrong.

    ``line`` is 1-based; 0 means the file as a whole (e.g. it cannot be read).
    ``key`` is a dotted path such as ``roster.shifts[1].from`` (empty for the whole file).
    """

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        key = self.key or "-"
        return f"{self.file}:{self.line}: {key}: {self.message}"


class PlanError(DeploybotError):
    """One or more problems in a plan file."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(DeploybotError):
    """A bad configuration value; names the file (if any) and the key."""

    def __init__(self, key: str, message: str, file: str | None = None) -> None:
        self.key = key
        self.message = message
        self.file = file
        where = f"{file}: " if file else ""
        super().__init__(f"{where}[deploybot] {key}: {message}")


class DurationError(DeploybotError, ValueError):
    """A duration string that does not parse."""


class DateError(DeploybotError, ValueError):
    """A day that is not written ``YYYY-MM-DD`` or does not exist."""
